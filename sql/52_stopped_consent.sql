--
-- 52_stopped_consent: a consent that stopped counting — given to an older
-- version of its purpose and never renewed, or suspended by an opt-out of
-- its personalised purpose — keeps its tags for
-- profile_guard.stopped_consent_grace (default 30 days) from the moment it
-- stopped; then the sweep erases the tags it alone held (reason
-- stopped_consent).  A tag that any purpose still keeps is not erased.
-- Both table shapes; every moment is relative to now().
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

-- the setting: seconds, -1 never, 0 at the next sweep; superusers only
SHOW profile_guard.stopped_consent_grace;
SELECT _stopped_consent_grace();
SET profile_guard.stopped_consent_grace = -1;
SELECT _stopped_consent_grace() IS NULL AS never;
SET profile_guard.stopped_consent_grace = 0;
SELECT _stopped_consent_grace();
SET profile_guard.stopped_consent_grace = '12h';
SELECT _stopped_consent_grace();
RESET profile_guard.stopped_consent_grace;
SELECT pg_temp.err($$SET profile_guard.stopped_consent_grace = -2$$) LIKE '22023:%' AS refused;
SELECT pg_temp.err($$SET profile_guard.stopped_consent_grace = 'soon'$$) LIKE '22023:%' AS refused;
SELECT pg_temp.err($$SET profile_guard.stopped_consent_grace = NULL$$) LIKE '42601:%' AS refused;
CREATE ROLE regress_grace_user;
SET ROLE regress_grace_user;
SELECT pg_temp.err($$SET profile_guard.stopped_consent_grace = 0$$) LIKE '42501:%' AS refused;
RESET ROLE;
SHOW profile_guard.stopped_consent_grace;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_purpose('rec', 'recommend content', ARRAY['interest.*']);
SELECT define_purpose('news', 'news digest', ARRAY['interest.*']);
SELECT define_purpose('push', 'personalised information push', ARRAY['interest.*'], personalised => true);
CREATE TABLE wg (id text PRIMARY KEY, sports text, music text);
CREATE TABLE lg (subject text, tag text, value text);
SELECT protect('wg', 'id');
SELECT classify('wg', 'sports', 'interest.sports');
SELECT classify('wg', 'music', 'interest.music');
SELECT protect('lg', 'subject', tag_column => 'tag', value_column => 'value');

-- outdated: rec gets a new version that old (o) renews and stale (s) does
-- not; news gets one too recently for its grace to have ended (n);
-- opted out: gone (g) stays out, back (b) opts in again within the grace,
-- both (k) is opted out of push but keeps sports for rec
SELECT register_subject(s) FROM unnest(ARRAY['s', 'o', 'n', 'g', 'b', 'k']) s;
SELECT grant_consent('s', 'rec', ARRAY['interest.*']) > 0 AS granted;
SELECT grant_consent('o', 'rec', ARRAY['interest.*']) > 0 AS granted;
SELECT grant_consent('n', 'news', ARRAY['interest.*']) > 0 AS granted;
SELECT grant_consent('g', 'push', ARRAY['interest.*']) > 0 AS granted;
SELECT grant_consent('b', 'push', ARRAY['interest.*']) > 0 AS granted;
SELECT grant_consent('k', 'push', ARRAY['interest.*']) > 0 AS granted;
SELECT grant_consent('k', 'rec', ARRAY['interest.sports']) > 0 AS granted;
INSERT INTO wg SELECT s, 'golf', 'jazz' FROM unnest(ARRAY['s', 'o', 'n', 'g', 'b', 'k']) s;
INSERT INTO lg SELECT s, t, v FROM unnest(ARRAY['s', 'o', 'n', 'g', 'b', 'k']) s,
	(VALUES ('interest.sports', 'golf'), ('interest.music', 'jazz')) x(t, v);

SELECT define_purpose('rec', 'recommend content and events', ARRAY['interest.*']) AS rec_version;
SELECT define_purpose('news', 'news digest, weekly', ARRAY['interest.*']) AS news_version;
SELECT grant_consent('o', 'rec', ARRAY['interest.*']) > 0 AS renewed;
SELECT grant_consent('k', 'rec', ARRAY['interest.sports']) > 0 AS renewed;
SELECT opt_out(s) FROM unnest(ARRAY['g', 'b', 'k']) s;
SELECT opt_in('b');
-- when these happened, from the catalog's history (moved into the past
-- here): rec's new version and the opt-outs 40 days ago, b's opt-in 35 days
-- ago (within the grace), news's new version 10 days ago
UPDATE purpose_history SET defined_at = now() - interval '40 days' WHERE purpose = 'rec' AND version = 2;
UPDATE purpose_history SET defined_at = now() - interval '10 days' WHERE purpose = 'news' AND version = 2;
UPDATE subject_event SET recorded_at = now() - interval '40 days' WHERE event = 'opt_out';
UPDATE subject_event SET recorded_at = now() - interval '35 days' WHERE event = 'opt_in';
SELECT subject, purpose, tag, effective, reason FROM consent_status ORDER BY 1, 2, 3;
SELECT subject, purpose, tag, _consent_stopped_at(purpose, subject, tag, reason) > now() - interval '41 days' AS stopped_recently
FROM consent_status WHERE reason IN ('outdated version', 'opted out') ORDER BY 1, 2, 3;

-- -1: kept for as long as the consent exists
SET profile_guard.stopped_consent_grace = -1;
SELECT * FROM sweep() ORDER BY relation, tag, reason, action;
SELECT count(*) AS wide_cells FROM wg WHERE sports IS NOT NULL OR music IS NOT NULL;
SELECT count(*) AS long_rows FROM lg;
-- the default grace: what stopped 40 days ago goes; a sweep looks only at
-- graces that ended since the last one, so after lengthening the window
-- the backlog needs a full sweep
RESET profile_guard.stopped_consent_grace;
SELECT * FROM sweep() ORDER BY relation, tag, reason, action;
SELECT * FROM sweep(full => true) ORDER BY relation, tag, reason, action;
-- s (not renewed) and g (opted out) lost everything; k lost music, held
-- only by push, and keeps sports for rec; o (renewed), n (grace not over)
-- and b (opted in again within the grace) keep everything
SELECT * FROM wg ORDER BY id;
SELECT * FROM lg ORDER BY subject, tag;
-- the ledger names the reason, and the subject only by its keyed hash
SELECT relation, tag, reason, action, rows,
	   CASE subject_hash WHEN _subject_hash('s') THEN 's' WHEN _subject_hash('g') THEN 'g'
						 WHEN _subject_hash('k') THEN 'k' END AS subject_is
FROM erasure_log ORDER BY relation, tag, subject_is;
-- nothing more to do
SELECT * FROM sweep(full => true);

-- 0: the next sweep erases what stopped counting, however recently: news's
-- new version is ten days old
SET profile_guard.stopped_consent_grace = 0;
SELECT * FROM sweep(full => true) ORDER BY relation, tag, reason, action;
SELECT * FROM wg WHERE id = 'n';
SELECT * FROM lg WHERE subject = 'n';
RESET profile_guard.stopped_consent_grace;

-- what the rules say is unchanged: erasure follows query time, it does not
-- decide it
\i test/lib/rules_check.sql
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

DROP TABLE wg, lg;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_grace_user;
