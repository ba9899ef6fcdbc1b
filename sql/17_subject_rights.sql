--
-- 17_subject_rights: the subject's own switches (rule 9).  opt_out() turns
-- off every personalised purpose, marketing or not, and with erase => true
-- erases the tags held only for personalised purposes; the C rules (both
-- paths) agree with tag_state() throughout.
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
-- what the catalog holds of the subjects, for "nothing changed"
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(s::text, ';' ORDER BY subject) FROM subject s),
		(SELECT string_agg((e.subject, e.event, e.tag)::text, ';' ORDER BY event_id) FROM subject_event e),
		(SELECT string_agg(b.subject || b.tag, ';' ORDER BY 1) FROM tag_block b),
		(SELECT count(*) FROM consent)::text,
		(SELECT count(*) FROM erasure_log)::text,
		(SELECT string_agg(p::text, ';' ORDER BY purpose) FROM purpose p)))
$$;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('behavior.visits', 'behavior');
-- push: personalised, not marketing; ads: marketing, hence personalised;
-- recommendation and fraud: neither
SELECT define_purpose('push', 'personalised information push', ARRAY['interest.*'], personalised => true);
SELECT define_purpose('ads', 'targeted ads', ARRAY['interest.*'], marketing => true);
SELECT define_purpose('recommendation', 'recommend content', ARRAY['interest.*', 'behavior.visits']);
SELECT define_purpose('fraud', 'fraud detection', ARRAY['behavior.visits']);
SELECT purpose, version, marketing, personalised FROM purpose ORDER BY purpose;
-- a marketing purpose is personalised whatever the flag says
SELECT define_purpose('ads', 'targeted ads', ARRAY['interest.*'], marketing => true, personalised => false) AS unchanged_version;
-- switching personalised is a change: a new version, kept in the history
SELECT define_purpose('recommendation', 'recommend content', ARRAY['interest.*', 'behavior.visits'], personalised => true) AS new_version;
SELECT define_purpose('recommendation', 'recommend content', ARRAY['interest.*', 'behavior.visits']) AS back_version;
SELECT purpose, version, personalised FROM purpose_history WHERE purpose = 'recommendation' ORDER BY version;
-- the catalog refuses a marketing purpose that is not personalised
SELECT pg_temp.err($$UPDATE profile_guard.purpose SET personalised = false WHERE purpose = 'ads'$$) LIKE '23514:%' AS refused;
-- bad flags change nothing
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('push', 'personalised information push', ARRAY['interest.*'], personalised => NULL)$$);
SELECT pg_temp.state() = :'before' AS unchanged;

CREATE ROLE regress_rights_app LOGIN;
SELECT allow_purpose('regress_rights_app', p) FROM unnest(ARRAY['push', 'ads', 'recommendation', 'fraud']) p;
CREATE TABLE profiles (id int PRIMARY KEY, name text, sports text, music text, visits int);
CREATE TABLE tag_rows (subject text, tag text, value text);
GRANT SELECT ON profiles, tag_rows TO regress_rights_app;
SELECT protect('profiles', 'id');
SELECT classify('profiles', 'sports', 'interest.sports');
SELECT classify('profiles', 'music', 'interest.music');
SELECT classify('profiles', 'visits', 'behavior.visits');
SELECT protect('tag_rows', 'subject', tag_column => 'tag', value_column => 'value');
SELECT register_subject(s) FROM unnest(ARRAY['1', '2', '3']) s;
-- 1: push and ads for music and sports, recommendation for sports only;
-- 2: push only; 3: recommendation and fraud only
SELECT grant_consent('1', 'push', ARRAY['interest.*']) > 0 AS granted;
SELECT grant_consent('1', 'ads', ARRAY['interest.*']) > 0 AS granted;
SELECT grant_consent('1', 'recommendation', ARRAY['interest.sports', 'behavior.visits']) > 0 AS granted;
SELECT grant_consent('2', 'push', ARRAY['interest.*']) > 0 AS granted;
SELECT grant_consent('3', 'recommendation', ARRAY['interest.*']) > 0 AS granted;
SELECT grant_consent('3', 'fraud', ARRAY['behavior.visits']) > 0 AS granted;
INSERT INTO profiles VALUES (1, 'ann', 'football', 'jazz', 10), (2, 'bob', 'tennis', 'rock', NULL),
	(3, 'cat', 'golf', 'pop', 30);
INSERT INTO tag_rows VALUES ('1', 'interest.music', 'blues'), ('1', 'interest.sports', 'golf'),
	('2', 'interest.music', 'punk'), ('3', 'interest.music', 'folk');

CREATE FUNCTION pg_temp.reads(p text) RETURNS TABLE (id int, sports text, music text, visits int)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('profile_guard.purpose', p, true);
	RETURN QUERY SELECT t.id, t.sports, t.music, t.visits FROM public.profiles t ORDER BY t.id;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.reads(text) TO regress_rights_app;

-- before: push sees 1 and 2
SET ROLE regress_rights_app;
SELECT * FROM pg_temp.reads('push');
RESET ROLE;

-- opt_out switches off every personalised purpose: push (not marketing)
-- as well as ads; recommendation stays
SELECT opt_out('1');
SET ROLE regress_rights_app;
SELECT * FROM pg_temp.reads('push');
SELECT * FROM pg_temp.reads('ads');
SELECT * FROM pg_temp.reads('recommendation');
RESET ROLE;
SELECT purpose, tag, effective, reason FROM consent_status WHERE subject = '1' ORDER BY 1, 2;
-- a personalised purpose cannot collect for an opted-out subject either:
-- music is consented only to push and ads
SELECT pg_temp.err($$UPDATE public.profiles SET music = 'swing' WHERE id = 1$$) LIKE '42501:%' AS refused;
SELECT opt_in('1');
SET ROLE regress_rights_app;
SELECT * FROM pg_temp.reads('push');
RESET ROLE;
SELECT opt_out('1');

-- the C rules, one subject at a time and in bulk, agree with tag_state()
\i test/lib/rules_check.sql
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

-- opt_out(erase => true): the tags held for personalised purposes are
-- erased now, except those a purpose in force that is not personalised
-- keeps.  Subject 2 holds music and sports for push only: both go, in both
-- shapes (wide: cells set to NULL, the row stays; long: rows deleted).
SELECT opt_out('2', erase => true);
SELECT * FROM profiles WHERE id = 2;
SELECT * FROM tag_rows WHERE subject = '2';
-- subject 1: sports is kept by recommendation, music goes
SELECT opt_out('1', erase => true);
SELECT * FROM profiles WHERE id = 1;
SELECT * FROM tag_rows WHERE subject = '1' ORDER BY tag;
-- subject 3 has no personalised purpose: nothing is erased
SELECT opt_out('3', erase => true);
SELECT * FROM profiles WHERE id = 3;
SELECT * FROM tag_rows WHERE subject = '3';
-- the ledger: per table and tag, reason opt_out, the subject as its keyed hash
SELECT relation, tag, reason, action, rows, subject_hash = _subject_hash('1') AS subject_1,
	   subject_hash = _subject_hash('2') AS subject_2
FROM erasure_log ORDER BY log_id;
-- the rules still agree
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

-- bad arguments change nothing
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.opt_out('1', erase => NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.opt_out(NULL, erase => true)$$);
SELECT pg_temp.err($$SELECT profile_guard.opt_out('', erase => true)$$);
SELECT pg_temp.err($$SELECT profile_guard.opt_out('nobody', erase => true)$$);
SET ROLE regress_rights_app;
SELECT pg_temp.err($$SELECT profile_guard.opt_out('3', erase => true)$$) LIKE '42501:%' AS refused;
RESET ROLE;
SELECT pg_temp.state() = :'before' AS unchanged;

-- erase_tag(): the subject deletes one tag.  Subject 3 holds music in both
-- shapes, consented to recommendation.
SET ROLE regress_rights_app;
SELECT * FROM pg_temp.reads('recommendation');
RESET ROLE;
SELECT erase_tag('3', 'interest.music') AS erased;
-- the next statement: gone from the gated read, and from the tables now
-- (wide: the cell set to NULL, the rest of the row kept; long: the row)
SET ROLE regress_rights_app;
SELECT * FROM pg_temp.reads('recommendation');
RESET ROLE;
SELECT * FROM profiles WHERE id = 3;
SELECT * FROM tag_rows WHERE subject = '3';
-- blocked: not served, and not collected again, in either shape
SELECT purpose, tag, effective, reason FROM consent_status WHERE subject = '3' ORDER BY 1, 2;
SELECT pg_temp.err($$UPDATE public.profiles SET music = 'swing' WHERE id = 3$$) LIKE '42501:%' AS refused;
SELECT pg_temp.err($$INSERT INTO public.tag_rows VALUES ('3', 'interest.music', 'swing')$$) LIKE '42501:%' AS refused;
-- ledgered (subject as its keyed hash) and in the subject's events
SELECT relation, tag, reason, action, rows, subject_hash = _subject_hash('3') AS subject_3
FROM erasure_log WHERE reason = 'erase_tag' ORDER BY log_id;
SELECT event, tag FROM subject_event WHERE subject = '3' AND tag IS NOT NULL ORDER BY event_id;
-- a tag with no stored value: nothing to erase, blocked all the same
SELECT erase_tag('2', 'behavior.visits') AS erased;
-- and the request is still ledgered: one row, relation '*', rows 0
SELECT relation, tag, reason, action, rows, subject_hash = _subject_hash('2') AS subject_2
FROM erasure_log WHERE reason = 'erase_tag' ORDER BY log_id;
SELECT subject, tag FROM tag_block ORDER BY 1, 2;
-- the rules still agree
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();
-- unblock_tag: the tag may be collected again
SELECT unblock_tag('3', 'interest.music');
UPDATE profiles SET music = 'swing' WHERE id = 3;
SET ROLE regress_rights_app;
SELECT * FROM pg_temp.reads('recommendation');
RESET ROLE;

-- bad arguments and roles change nothing
CREATE FUNCTION pg_temp.data() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|', (SELECT string_agg(p::text, ';' ORDER BY id) FROM public.profiles p),
						 (SELECT string_agg(t::text, ';' ORDER BY t::text) FROM public.tag_rows t)))
$$;
SELECT pg_temp.state() || pg_temp.data() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.erase_tag(NULL, 'interest.music')$$);
SELECT pg_temp.err($$SELECT profile_guard.erase_tag('', 'interest.music')$$);
SELECT pg_temp.err($$SELECT profile_guard.erase_tag('nobody', 'interest.music')$$);
SELECT pg_temp.err($$SELECT profile_guard.erase_tag('3', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.erase_tag('3', '')$$);
SELECT pg_temp.err($$SELECT profile_guard.erase_tag('3', 'interest.nosuch')$$);
SET ROLE regress_rights_app;
SELECT pg_temp.err($$SELECT profile_guard.erase_tag('3', 'interest.music')$$) LIKE '42501:%' AS refused;
RESET ROLE;
SELECT pg_temp.state() || pg_temp.data() = :'before' AS unchanged;

DROP EXTENSION profile_guard CASCADE;
DROP TABLE profiles, tag_rows;
DROP FUNCTION pg_temp.reads(text);
DROP ROLE regress_rights_app;
