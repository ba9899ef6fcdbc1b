--
-- 18_lawful_basis_hold: lawful bases other than consent (rule 9a) and
-- legal holds (rule 9b).  A purpose based on a contract or a legal
-- obligation reads the tags of its list for every registered subject
-- without a consent record (a sensitive tag, and any tag of a child under
-- 14, only when its list names it), is never personalised, and still
-- follows blocks, erasure requests and minors' rules.  A legal hold hides
-- the subject from every purpose but a legal_obligation one, from the next
-- statement, in both table shapes and on every read path; the sweep keeps
-- its data, says so once in the ledger, and erases what fell due after the
-- hold ends.  The C rules (both paths) agree with tag_state() throughout.
--
CREATE EXTENSION profile_guard;
-- the rule checks compare many subjects in large queries: JIT compiling
-- them costs seconds and tests nothing here
SET jit = off;
SET search_path = public, profile_guard;
SET client_min_messages = warning;
\set SHOW_CONTEXT never
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; m text; d text; h text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
		d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	RETURN st || ': ' || m || E'\n  DETAIL: ' || coalesce(nullif(d, ''), '-')
		|| E'\n  HINT: ' || coalesce(nullif(h, ''), '-');
END $$;
-- what the catalog holds, for "nothing changed"
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(s::text, ';' ORDER BY subject) FROM subject s),
		(SELECT string_agg(b.subject || b.tag, ';' ORDER BY 1) FROM tag_block b),
		(SELECT count(*) FROM consent)::text,
		(SELECT count(*) FROM erasure_log)::text,
		(SELECT string_agg(h::text, ';' ORDER BY hold_id) FROM legal_hold h),
		(SELECT string_agg(p::text, ';' ORDER BY purpose) FROM purpose p),
		(SELECT string_agg(p::text, ';' ORDER BY purpose, version) FROM purpose_history p)))
$$;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('behavior.visits', 'behavior');
SELECT define_tag('health.condition', 'medical_health');

-- 1. lawful bases.  recommendation: consent.  billing: a contract, which
-- reaches health.condition only through a pattern (so never reads it).
-- tax: a legal obligation naming the sensitive tag it needs.
SELECT define_purpose('recommendation', 'recommend content', ARRAY['interest.*']);
SELECT define_purpose('billing', 'bill the subscription', ARRAY['interest.sports', 'behavior.visits', 'health.*'],
					  legal_basis => 'contract');
SELECT define_purpose('tax', 'keep the records the tax law requires', ARRAY['behavior.visits', 'health.condition'],
					  legal_basis => 'legal_obligation');
SELECT purpose, version, legal_basis, personalised FROM purpose ORDER BY purpose;
-- an identical redefinition changes nothing; a change of basis is a new version
SELECT define_purpose('billing', 'bill the subscription', ARRAY['interest.sports', 'behavior.visits', 'health.*'],
					  legal_basis => 'contract') AS unchanged_version;
SELECT define_purpose('billing', 'bill the subscription', ARRAY['interest.sports', 'behavior.visits', 'health.*'],
					  legal_basis => 'public_interest') AS new_version;
SELECT define_purpose('billing', 'bill the subscription', ARRAY['interest.sports', 'behavior.visits', 'health.*'],
					  legal_basis => 'contract') AS back_version;
SELECT purpose, version, legal_basis FROM purpose_history WHERE purpose = 'billing' ORDER BY version;
-- refused, and nothing changes: not personalised nor marketing without
-- consent, a tag list required, a basis of PIPL art. 13 only
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('billing', 'bill', ARRAY['interest.sports'], personalised => true, legal_basis => 'contract')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('offers', 'offers', ARRAY['interest.sports'], marketing => true, legal_basis => 'contract')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('archive', 'archive', NULL, legal_basis => 'legal_obligation')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('archive', 'archive', ARRAY['behavior.visits'], legal_basis => 'legitimate_interest')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('archive', 'archive', ARRAY['behavior.visits'], legal_basis => NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('archive', 'archive', ARRAY['behavior.visits'], legal_basis => '')$$);
SELECT pg_temp.err($$UPDATE profile_guard.purpose SET personalised = true WHERE purpose = 'billing'$$) LIKE '23514:%' AS catalog_refuses;
SELECT pg_temp.state() = :'before' AS unchanged;

CREATE ROLE regress_basis_app LOGIN;
SELECT allow_purpose('regress_basis_app', p) FROM unnest(ARRAY['recommendation', 'billing', 'tax']) p;
CREATE TABLE profiles (id int PRIMARY KEY, name text, sports text, music text, visits int, health text);
CREATE TABLE tag_rows (subject text, tag text, value text);
GRANT SELECT ON profiles, tag_rows TO regress_basis_app;
SELECT protect('profiles', 'id');
SELECT classify('profiles', 'sports', 'interest.sports');
SELECT classify('profiles', 'music', 'interest.music');
SELECT classify('profiles', 'visits', 'behavior.visits');
SELECT classify('profiles', 'health', 'health.condition');
SELECT protect('tag_rows', 'subject', tag_column => 'tag', value_column => 'value');
-- 1 and 2 adults, 3 a child of ten; only 1 consents (to recommendation)
SELECT register_subject('1');
SELECT register_subject('2');
SELECT register_subject('3', (current_date - interval '10 years')::date);
SELECT grant_consent('1', 'recommendation', ARRAY['interest.*']) > 0 AS granted;

-- collection follows the same rules: what billing and tax read may be
-- collected without consent; music only where consented
INSERT INTO profiles VALUES (1, 'ann', 'golf', 'jazz', 10, 'asthma'), (2, 'bob', 'chess', NULL, 20, 'flu'),
	(3, 'cat', 'judo', NULL, 30, 'cold');
INSERT INTO tag_rows VALUES ('1', 'interest.music', 'blues'), ('1', 'interest.sports', 'golf'),
	('2', 'interest.sports', 'chess'), ('2', 'behavior.visits', '20'), ('3', 'interest.sports', 'judo');
SELECT pg_temp.err($$UPDATE public.profiles SET music = 'rock' WHERE id = 2$$) LIKE '42501:%' AS refused;
SELECT pg_temp.err($$INSERT INTO public.tag_rows VALUES ('2', 'interest.music', 'rock')$$) LIKE '42501:%' AS refused;

CREATE FUNCTION pg_temp.wide(p text) RETURNS TABLE (id int, sports text, music text, visits int, health text)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('profile_guard.purpose', p, true);
	RETURN QUERY SELECT t.id, t.sports, t.music, t.visits, t.health FROM public.profiles t ORDER BY t.id;
END $$;
CREATE FUNCTION pg_temp.long(p text) RETURNS TABLE (subject text, tag text, value text)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('profile_guard.purpose', p, true);
	RETURN QUERY SELECT t.subject, t.tag, t.value FROM public.tag_rows t ORDER BY 1, 2;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.wide(text), pg_temp.long(text) TO regress_basis_app;

SET ROLE regress_basis_app;
-- recommendation: only the consenting subject
SELECT * FROM pg_temp.wide('recommendation');
-- billing (contract): every registered subject, the tags it names; the
-- sensitive health.condition is reached only by a pattern: never served
SELECT * FROM pg_temp.wide('billing');
SELECT * FROM pg_temp.long('billing');
-- tax (legal obligation) names health.condition: served, also for the child
SELECT * FROM pg_temp.wide('tax');
RESET ROLE;
SELECT subject, tag, effective, reason FROM tag_state('billing') ORDER BY 1, 2;
SELECT subject, tag, effective, reason FROM tag_state('tax') ORDER BY 1, 2;
-- consent_status lists them with their basis
SELECT purpose, legal_basis, count(*) AS rows FROM consent_status GROUP BY 1, 2 ORDER BY 1;

-- blocks apply; opt-out does not (billing is not personalised)
SELECT block_tag('2', 'behavior.visits');
SELECT opt_out('2');
SET ROLE regress_basis_app;
SELECT * FROM pg_temp.wide('billing');
RESET ROLE;
SELECT unblock_tag('2', 'behavior.visits');
SELECT opt_in('2');

-- the C rules, one subject at a time and in bulk, agree with tag_state()
\i test/lib/rules_check.sql
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

-- the subject report and assess() show the bases
SELECT c->>'purpose' AS purpose, c->>'legal_basis' AS legal_basis,
	   jsonb_typeof(c->'ledger') = 'array' AS has_ledger
FROM jsonb_array_elements(subject_report('2')->'consents') c ORDER BY 1;
SELECT clause, status, detail FROM assess() WHERE clause LIKE '§5 b%' OR clause LIKE '§7.4%';

-- 2. legal holds.  A prepared statement and a view made before the hold.
CREATE VIEW billing_view AS SELECT id, sports, visits FROM profiles;
GRANT SELECT ON billing_view TO regress_basis_app;
CREATE FUNCTION pg_temp.sql_read() RETURNS SETOF int LANGUAGE sql AS
	$$ SELECT id FROM public.profiles ORDER BY id $$;
GRANT EXECUTE ON FUNCTION pg_temp.sql_read() TO regress_basis_app;
SET ROLE regress_basis_app;
SET profile_guard.purpose = 'billing';
PREPARE held_read AS SELECT id, sports, visits FROM profiles ORDER BY id;
EXECUTE held_read;
RESET ROLE;
SELECT place_legal_hold('2', 'tax audit of the 2025 accounts') AS hold_2 \gset
SELECT subject, basis, until, released_at IS NULL AS active, placed_by = session_user AS placed_by_caller
FROM legal_hold ORDER BY hold_id;
-- from the next statement, billing no longer reads subject 2, on every path
SET ROLE regress_basis_app;
EXECUTE held_read;
SELECT id, sports, visits FROM billing_view ORDER BY id;
SELECT * FROM pg_temp.sql_read();
SELECT * FROM pg_temp.wide('billing');
SELECT * FROM pg_temp.long('billing');
SET profile_guard.purpose = 'billing';
BEGIN;
DECLARE c CURSOR FOR SELECT id, sports FROM profiles ORDER BY id;
FETCH ALL FROM c;
COMMIT;
COPY (SELECT id, sports FROM profiles ORDER BY id) TO STDOUT;
SELECT row_to_json(t) FROM (SELECT id, sports, visits FROM profiles ORDER BY id) t;
-- a WHERE clause cannot probe the held subject's values
SELECT count(*) AS chess_players FROM profiles WHERE sports = 'chess';
SELECT count(*) AS held_rows FROM tag_rows WHERE subject = '2';
-- a parallel plan answers the same
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET force_parallel_mode = on;
SELECT id, sports FROM profiles ORDER BY id;
SELECT subject, tag FROM tag_rows ORDER BY 1, 2;
RESET force_parallel_mode;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
-- the legal obligation still reads it; consent purposes do not either
SELECT * FROM pg_temp.wide('tax');
RESET ROLE;
SELECT subject, tag, effective, reason FROM tag_state('billing', '2') ORDER BY 2;
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();
-- a held subject may not have its data erased at once
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.erase_tag('2', 'interest.sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.opt_out('2', erase => true)$$);
SELECT pg_temp.state() = :'before' AS unchanged;

-- the sweep keeps a held subject's data: an erasure request is accepted,
-- use stops, and the sweep defers it, saying so once per hold
SELECT request_erasure('2') > 0 AS requested;
SELECT relation, tag, reason, action, rows FROM sweep() ORDER BY 1, 2, 3, 4;
SELECT relation, tag, reason, action, rows FROM sweep() ORDER BY 1, 2, 3, 4;
SELECT relation, reason, action, rows, subject_hash = _subject_hash('2') AS subject_2
FROM erasure_log ORDER BY log_id;
SELECT id, name, sports FROM profiles WHERE id = 2;
SELECT count(*) AS rows_kept FROM tag_rows WHERE subject = '2';
SELECT count(*) AS pending_requests FROM erasure_request WHERE subject = '2' AND completed_at IS NULL;
SELECT r->'legal_holds'->0->>'basis' AS basis, r->'legal_holds'->0->>'active' AS active,
	   r->'erasure_requests'->0->>'status' AS request
FROM (SELECT subject_report('2') AS r) x;
SELECT clause, status, detail FROM assess() WHERE clause LIKE '§7.4%';

-- releasing the hold: the next sweep carries the request out
SELECT release_legal_hold(:hold_2);
SELECT subject, released_at IS NOT NULL AS released, released_by = session_user AS released_by_caller
FROM legal_hold ORDER BY hold_id;
SELECT relation, tag, reason, action, rows FROM sweep() ORDER BY 1, 2, 3, 4;
SELECT id, name, sports FROM profiles WHERE id = 2;
SELECT count(*) AS rows_left FROM tag_rows WHERE subject = '2';

-- retention that falls due during a hold waits for its end
SELECT define_tag('behavior.logins', 'behavior');
SELECT define_purpose('security_log', 'keep login records as the cybersecurity law requires',
					  ARRAY['behavior.logins'], retention => interval '30 days', legal_basis => 'legal_obligation');
CREATE TABLE login_rows (subject text, tag text, value text, collected timestamptz);
SELECT protect('login_rows', 'subject', collected_at_column => 'collected', tag_column => 'tag', value_column => 'value');
INSERT INTO login_rows VALUES ('3', 'behavior.logins', 'old', now() - interval '40 days'),
	('3', 'behavior.logins', 'new', now() - interval '1 day');
SELECT place_legal_hold('3', 'litigation about the account') AS hold_r \gset
SELECT relation, tag, reason, action, rows FROM sweep() ORDER BY 1, 2, 3, 4;
SELECT value FROM login_rows ORDER BY 1;
SELECT release_legal_hold(:hold_r);
SELECT relation, tag, reason, action, rows FROM sweep() ORDER BY 1, 2, 3, 4;
SELECT value FROM login_rows ORDER BY 1;

-- a hold with an end: the cached answers expire at that moment by
-- themselves (valid_until), with no event
SELECT place_legal_hold('1', 'court order', statement_timestamp() + interval '1 hour') AS hold_1 \gset
SELECT valid_until = (SELECT until FROM legal_hold WHERE hold_id = :hold_1) AS expires_with_hold
FROM _subject_answer('billing', '1');
SELECT valid_until = (SELECT until FROM legal_hold WHERE hold_id = :hold_1) AS expires_with_hold
FROM _bulk_answers('recommendation') WHERE subject = '1';
SET ROLE regress_basis_app;
SELECT * FROM pg_temp.wide('recommendation');
RESET ROLE;
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();
SELECT release_legal_hold(:hold_1);
-- a hold that ends in a few seconds: hidden now, served again once it
-- has ended, with no event in between
SELECT place_legal_hold('1', 'preservation order', statement_timestamp() + interval '8 seconds') AS hold_3 \gset
SET ROLE regress_basis_app;
SELECT * FROM pg_temp.wide('recommendation');
RESET ROLE;
SELECT pg_sleep(greatest(0, extract(epoch FROM until - clock_timestamp())) + 0.1)
FROM legal_hold WHERE hold_id = :hold_3;
SET ROLE regress_basis_app;
SELECT * FROM pg_temp.wide('recommendation');
RESET ROLE;
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

-- bad arguments and roles change nothing
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.place_legal_hold(NULL, 'court order')$$);
SELECT pg_temp.err($$SELECT profile_guard.place_legal_hold('', 'court order')$$);
SELECT pg_temp.err($$SELECT profile_guard.place_legal_hold('nobody', 'court order')$$);
SELECT pg_temp.err($$SELECT profile_guard.place_legal_hold('1', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.place_legal_hold('1', '  ')$$);
SELECT pg_temp.err($$SELECT profile_guard.place_legal_hold('1', 'court order', now() - interval '1 day')$$);
SELECT pg_temp.err($$SELECT profile_guard.release_legal_hold(NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.release_legal_hold(-1)$$);
SELECT pg_temp.err(format('SELECT profile_guard.release_legal_hold(%s)', :hold_2));
SET ROLE regress_basis_app;
SELECT pg_temp.err($$SELECT profile_guard.place_legal_hold('1', 'court order')$$) LIKE '42501:%' AS refused;
SELECT pg_temp.err(format('SELECT profile_guard.release_legal_hold(%s)', :hold_1)) LIKE '42501:%' AS refused;
SELECT pg_temp.err($$SELECT * FROM profile_guard.legal_hold$$) LIKE '42501:%' AS refused;
RESET ROLE;
SELECT pg_temp.state() = :'before' AS unchanged;

DROP VIEW billing_view;
DROP EXTENSION profile_guard CASCADE;
DROP TABLE profiles, tag_rows, login_rows;
DROP FUNCTION pg_temp.wide(text), pg_temp.long(text), pg_temp.sql_read();
DROP ROLE regress_basis_app;
