# t/030_long_shape_sensitive_read.pl — a fixed bug, kept as a regression test.
#
# Bug (wrong result): in a long-shape guarded table (protect(..., tag_column,
# value_column)) the trigger encrypts the value of a sensitive tag, but the
# read path only adds the row gate (src/gate.c: "long shape (rows only)"):
# a consented read under a purpose returns the raw ciphertext ("pgt1:...")
# instead of the value.  Expected: the decrypted value, as for a wide table.
# Then the ways around it: a subject whose sensitive tag has no separate
# consent must never show its value (nor ciphertext) through a view, a CTE,
# a SQL function, a prepared statement, a cursor, whole-row references,
# COPY (query) TO or CREATE TABLE AS, while the consented value decrypts in
# each.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $node = pfg_node('long_sensitive');
my $db = 'regress_long_sensitive';
pfg_create_extension($node, $db);

my $out = pfg_psql($node, $db, <<'SQL');
SET client_min_messages = warning;
SELECT profile_guard.define_tag('health.condition', 'medical_health') \gset
SELECT profile_guard.define_purpose('rec', 'r', ARRAY['health.condition']) \gset
DROP ROLE IF EXISTS regress_long_app;
CREATE ROLE regress_long_app;
SELECT profile_guard.allow_purpose('regress_long_app', 'rec') \gset
CREATE TABLE tags (uid bigint, tag text, value text);
GRANT SELECT ON tags TO regress_long_app;
SELECT profile_guard.protect('tags', 'uid', tag_column => 'tag', value_column => 'value') \gset
SELECT profile_guard.register_subject('1') \gset
SELECT profile_guard.grant_consent('1', 'rec', ARRAY['health.condition'], separate => true) \gset
INSERT INTO tags VALUES (1, 'health.condition', 'asthma');
-- subject 2: consent given as separate, written, then the separate consent
-- replaced by an ordinary one (not enough for a sensitive tag)
SELECT profile_guard.register_subject('2') \gset
SELECT profile_guard.grant_consent('2', 'rec', ARRAY['health.condition'], separate => true) \gset
INSERT INTO tags VALUES (2, 'health.condition', 'SECRET-2');
SELECT profile_guard.grant_consent('2', 'rec', ARRAY['health.condition']) \gset
SELECT 'stored encrypted: ' || bool_and(value LIKE 'pgt2%') FROM tags;
CREATE VIEW tags_view AS SELECT uid, value FROM tags;
GRANT SELECT ON tags_view TO regress_long_app;
CREATE FUNCTION tags_fn() RETURNS SETOF text LANGUAGE sql AS 'SELECT value FROM tags';
CREATE SCHEMA scratch AUTHORIZATION regress_long_app;
SET ROLE regress_long_app;
SET profile_guard.purpose = 'rec';
SELECT 'consented read: ' || value FROM tags;
SELECT 'view: ' || coalesce(value, '-') FROM tags_view ORDER BY uid;
WITH c AS (SELECT * FROM tags) SELECT 'cte: ' || coalesce(value, '-') FROM c ORDER BY uid;
SELECT 'function: ' || coalesce(v, '-') FROM tags_fn() v;
PREPARE p AS SELECT value FROM tags ORDER BY uid;
EXECUTE p;
BEGIN;
DECLARE cur CURSOR FOR SELECT value, t::text AS whole, row_to_json(t)::text AS js FROM tags t ORDER BY uid;
FETCH ALL FROM cur;
COMMIT;
COPY (SELECT * FROM tags ORDER BY uid) TO STDOUT;
CREATE TABLE scratch.copy_of AS SELECT * FROM tags;
SELECT 'ctas: ' || coalesce(value, '-') FROM scratch.copy_of ORDER BY uid;
SELECT 'probe: ' || count(*) FROM tags WHERE value = 'SECRET-2';
SQL
note($out);
like($out, qr/^consented read: asthma$/m,
	'a consented read of a sensitive long-shape value returns the value');
for my $way ('view: asthma', 'cte: asthma', 'function: asthma', 'ctas: asthma', 'probe: 0')
{
	like($out, qr/^\Q$way\E$/m, "expected \"$way\"");
}
my $lines_with_value = grep { /asthma/ } split /\n/, $out;
cmp_ok($lines_with_value, '>=', 8,
	'the consented value is there in every way of reading');
unlike($out, qr/SECRET-2/, 'no value without separate consent is served');
my $ciphertext_lines = grep { /pgt[12]/ } split /\n/, $out;
is($ciphertext_lines, 0, 'the application sees no ciphertext');

$node->stop;
done_testing();
