--
-- 51_forget: once a subject's erasure request is carried out, the catalog
-- forgets the person (rule 12, §7.4 d, §10): no table of the extension
-- holds the identifier or the birth date, only the keyed hash of the
-- erasure log; a later registration of the same identifier starts a new,
-- clean record, and what a session cached of the old one never applies
-- to it.  Both table shapes.
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
-- every table of the extension's schema whose rows name a value, as text
CREATE FUNCTION pg_temp.holders(v text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE r record; n bigint;
BEGIN
	FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
			 WHERE c.relnamespace = 'profile_guard'::regnamespace AND c.relkind = 'r'
			 ORDER BY c.relname LOOP
		EXECUTE format('SELECT count(*) FROM %s t WHERE position(%L IN t::text) > 0', r.rel, v) INTO n;
		IF n > 0 THEN
			RETURN NEXT r.rel::text || ': ' || n;
		END IF;
	END LOOP;
END $$;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_purpose('rec', 'recommend content', ARRAY['interest.*', 'health.condition']);
SELECT define_purpose('push', 'personalised information push', ARRAY['interest.*'], personalised => true);
CREATE ROLE regress_forget_app LOGIN;
SELECT allow_purpose('regress_forget_app', 'rec');
SELECT allow_purpose('regress_forget_app', 'push');
CREATE TABLE wp (id text PRIMARY KEY, sports text, music text, health text);
CREATE TABLE lp (subject text, tag text, value text);
GRANT SELECT ON wp, lp TO regress_forget_app;
-- with collection stamps, which name the person too
SELECT protect('wp', 'id', stamp_collection => true);
SELECT classify('wp', 'sports', 'interest.sports');
SELECT classify('wp', 'music', 'interest.music');
SELECT classify('wp', 'health', 'health.condition');
SELECT protect('lp', 'subject', tag_column => 'tag', value_column => 'value', stamp_collection => true);

-- the person to forget, with a birth date, and a neighbour who stays
SELECT (current_date - 9000)::text AS bd \gset
SELECT register_subject('forget-me-4417', :'bd'::date);
SELECT register_subject('keeper-2290');
SELECT grant_consent('forget-me-4417', 'rec', ARRAY['interest.*', 'health.condition'], separate => true) > 0 AS granted;
SELECT grant_consent('forget-me-4417', 'push', ARRAY['interest.*']) > 0 AS granted;
SELECT grant_consent('keeper-2290', 'rec', ARRAY['interest.*']) > 0 AS granted;
INSERT INTO wp VALUES ('forget-me-4417', 'golf', 'jazz', 'asthma'), ('keeper-2290', 'chess', 'pop', NULL);
INSERT INTO lp VALUES ('forget-me-4417', 'interest.sports', 'golf'), ('forget-me-4417', 'health.condition', 'asthma'),
	('keeper-2290', 'interest.sports', 'chess');
SELECT block_tag('forget-me-4417', 'interest.music');
SELECT opt_out('forget-me-4417');
SELECT withdraw_consent('forget-me-4417', 'push') > 0 AS withdrawn;

-- the sessions' views of the subject, cached and published now
CREATE VIEW wp_view AS SELECT id, sports, health FROM wp;
GRANT SELECT ON wp_view TO regress_forget_app;
CREATE FUNCTION pg_temp.wide_sql() RETURNS SETOF wp LANGUAGE sql AS $$ SELECT * FROM public.wp ORDER BY id $$;
CREATE FUNCTION pg_temp.long_plpgsql() RETURNS TABLE (subject text, tag text, value text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY SELECT l.subject, l.tag, l.value FROM public.lp l ORDER BY 1, 2;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.wide_sql(), pg_temp.long_plpgsql() TO regress_forget_app;
SET ROLE regress_forget_app;
SET profile_guard.purpose = 'rec';
PREPARE wide_read AS SELECT id, sports, music, health FROM wp ORDER BY id;
PREPARE long_read AS SELECT subject, tag, value FROM lp ORDER BY subject, tag;
EXECUTE wide_read;
EXECUTE long_read;
RESET profile_guard.purpose;
RESET ROLE;

-- where the catalog names the person before the request
SELECT * FROM pg_temp.holders('forget-me-4417');
SELECT * FROM pg_temp.holders(:'bd');

-- the request, then the sweep: rows erased, key destroyed, consents
-- tombstoned, and in the transaction that completes the request, the
-- person forgotten (the ledger's 'forget' row, below)
SELECT request_erasure('forget-me-4417') > 0 AS requested;
SELECT * FROM sweep() ORDER BY relation, tag, reason, action;

-- what is left of the person: the request and the ledger, under the hash;
-- and, until the next sweep, the entry that tells every session's cache of
-- consent answers to drop what it holds of the person
SELECT * FROM pg_temp.holders('forget-me-4417');
SELECT * FROM pg_temp.holders(:'bd');
SELECT subject IS NULL AS forgotten, subject_hash = _subject_hash('forget-me-4417') AS by_hash,
	   completed_at IS NOT NULL AS completed, forgotten_by IS NOT NULL AS change_pending
FROM erasure_request;
SELECT relation, tag, reason, action, rows FROM erasure_log
WHERE subject_hash = _subject_hash('forget-me-4417') ORDER BY relation, action, tag;
-- the next sweep prunes that entry: nothing names the person any more
SELECT * FROM sweep();
SELECT * FROM pg_temp.holders('forget-me-4417');
SELECT forgotten_by IS NULL AS change_pruned FROM erasure_request;
SELECT subject = '' AS marker FROM subject_change WHERE subject NOT IN ('keeper-2290');
-- the neighbour keeps everything
SELECT * FROM wp ORDER BY id;
SELECT * FROM lp ORDER BY subject, tag;
SELECT subject, purpose, tag, effective FROM consent_status ORDER BY 1, 2, 3;

-- the report of a forgotten identifier: nothing held, the erasure carried out
SELECT r - 'report_generated_at' - 'erasure_requests' - 'erasures_done' AS report,
	   jsonb_array_length(r->'erasure_requests') AS requests,
	   r->'erasure_requests'->0->>'status' AS status, (r->'erasure_requests'->0->>'forgotten')::boolean AS forgotten,
	   (SELECT array_agg(DISTINCT e->>'action' ORDER BY e->>'action')
		FROM jsonb_array_elements(r->'erasures_done') e) AS erasures
FROM subject_report('forget-me-4417') r;
-- an identifier never registered is still unknown
SELECT pg_temp.err($$SELECT profile_guard.subject_report('never-seen-1')$$);
-- and the forgotten one is unknown to every other function
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('forget-me-4417', 'rec', ARRAY['interest.sports'])$$) LIKE '42704:%' AS unknown;
SELECT pg_temp.err($$SELECT profile_guard.request_erasure('forget-me-4417')$$) LIKE '42704:%' AS unknown;
SELECT pg_temp.err($$INSERT INTO public.lp VALUES ('forget-me-4417', 'interest.sports', 'golf')$$) LIKE '42501:%' AS refused;

-- while forgotten, the sessions' prepared reads find nothing of the person
SET ROLE regress_forget_app;
SET profile_guard.purpose = 'rec';
EXECUTE wide_read;
EXECUTE long_read;
RESET profile_guard.purpose;
RESET ROLE;

-- registering the identifier again starts a new record: no consent, block,
-- opt-out, erasure request or birth date of the old one applies
SELECT register_subject('forget-me-4417');
SELECT birth_date, opted_out, erasure_requested_at FROM subject WHERE subject = 'forget-me-4417';
SELECT event FROM subject_event WHERE subject = 'forget-me-4417' ORDER BY event_id;
SELECT count(*) AS blocks FROM tag_block WHERE subject = 'forget-me-4417';
SELECT count(*) AS consents FROM consent WHERE subject = 'forget-me-4417';
-- its new registration made it a new data key (the old one was destroyed)
SELECT count(*) AS keys, count(wrapped_key) AS live_keys FROM subject_key WHERE subject = 'forget-me-4417';
SELECT count(*) AS consent_rows FROM consent_status WHERE subject = 'forget-me-4417';
-- nothing is collected before it consents anew
SELECT pg_temp.err($$INSERT INTO public.lp VALUES ('forget-me-4417', 'interest.sports', 'tennis')$$) LIKE '42501:%' AS refused;
-- it consents to rec for interests, music included (the old block is gone),
-- not to health, and not to push; new values are stored under a new key
SELECT grant_consent('forget-me-4417', 'rec', ARRAY['interest.*']) > 0 AS granted;
INSERT INTO wp VALUES ('forget-me-4417', 'tennis', 'swing', NULL);
INSERT INTO lp VALUES ('forget-me-4417', 'interest.sports', 'tennis'), ('forget-me-4417', 'interest.music', 'swing');
SELECT pg_temp.err($$UPDATE public.wp SET health = 'flu' WHERE id = 'forget-me-4417'$$) LIKE '42501:%' AS refused;
SELECT subject, purpose, tag, effective, reason FROM consent_status
WHERE subject = 'forget-me-4417' ORDER BY 2, 3;
-- the old erasure request stays with the new record's report, by hash
SELECT r->'erasure_requests'->0->>'status' AS old_request, (r->'erasure_requests'->0->>'forgotten')::boolean AS forgotten,
	   r->'birth_date' AS birth_date, r->'opted_out' AS opted_out, jsonb_array_length(r->'tags') AS tags
FROM subject_report('forget-me-4417') r;

-- the new record is served from the next statement, wherever it is read
SET ROLE regress_forget_app;
SET profile_guard.purpose = 'rec';
EXECUTE wide_read;
EXECUTE long_read;
SELECT * FROM wp_view ORDER BY id;
SELECT id, sports, music, health FROM pg_temp.wide_sql();
SELECT * FROM pg_temp.long_plpgsql();
COPY (SELECT id, sports, music, health FROM wp ORDER BY id) TO STDOUT;
COPY (SELECT subject, tag, value FROM lp ORDER BY 1, 2) TO STDOUT;
SELECT row_to_json(t) FROM wp t ORDER BY id;
SELECT row_to_json(t) FROM lp t ORDER BY subject, tag;
-- a filter cannot probe the old health value, nor the unconsented cell
SELECT count(*) AS probe FROM wp WHERE health = 'asthma';
SELECT count(*) AS probe FROM lp WHERE value = 'asthma';
BEGIN;
DECLARE wc CURSOR FOR SELECT id, sports, health FROM wp ORDER BY id;
DECLARE lc CURSOR FOR SELECT subject, tag FROM lp ORDER BY 1, 2;
FETCH ALL FROM wc;
FETCH ALL FROM lc;
COMMIT;
-- push: the old push consent, opt-out and withdrawal do not carry over,
-- and the new record never consented to push
SET profile_guard.purpose = 'push';
EXECUTE wide_read;
EXECUTE long_read;
-- the same under a parallel plan
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET force_parallel_mode = on;
SET profile_guard.purpose = 'rec';
SELECT id, sports, music, health FROM wp ORDER BY id;
SELECT subject, tag, value FROM lp ORDER BY 1, 2;
SELECT count(*) AS rows_seen FROM lp;
RESET force_parallel_mode;
RESET max_parallel_workers_per_gather;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;
RESET profile_guard.purpose;
RESET ROLE;

-- the C rules, one subject at a time and in bulk, agree with tag_state()
\i test/lib/rules_check.sql
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

-- a second erasure of the new record: forgotten again, two requests by hash
SELECT request_erasure('forget-me-4417') > 0 AS requested;
SELECT relation, tag, reason, action, rows FROM sweep() ORDER BY relation, tag, reason, action;
SELECT count(*) AS requests, bool_and(subject IS NULL) AS forgotten,
	   bool_and(subject_hash = _subject_hash('forget-me-4417')) AS by_hash
FROM erasure_request;
SELECT * FROM sweep();
SELECT * FROM pg_temp.holders('forget-me-4417');

-- the ledger forbids what the forgetting does for anyone else
SELECT pg_temp.err($$DELETE FROM profile_guard.consent WHERE subject = 'keeper-2290'$$) LIKE '55000:%' AS refused;
SELECT count(*) AS consents_kept FROM consent WHERE subject = 'keeper-2290';

DEALLOCATE ALL;
DROP FUNCTION pg_temp.wide_sql(), pg_temp.long_plpgsql();
DROP VIEW wp_view;
DROP TABLE wp, lp;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_forget_app;
