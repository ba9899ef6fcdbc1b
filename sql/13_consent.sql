--
-- 13_consent: subjects, grants, withdrawals, blocks, opt-out, erasure
-- requests, and the append-only consent ledger
--
CREATE EXTENSION profile_guard;
-- the rule checks compare many subjects in large queries: JIT compiling
-- them costs seconds and tests nothing here
SET jit = off;
SET search_path = profile_guard, public;
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
CREATE FUNCTION pg_temp.ledger() RETURNS text LANGUAGE sql AS $$
	SELECT (SELECT count(*) FROM subject) || ' subjects, '
		|| (SELECT count(*) FROM subject_event) || ' events, '
		|| (SELECT count(*) FROM consent) || ' consents, '
		|| (SELECT count(*) FROM tag_block) || ' blocks, '
		|| (SELECT count(*) FROM erasure_request) || ' erasure requests, '
		|| (SELECT md5(string_agg(s::text, ';' ORDER BY subject)) FROM subject s)
$$;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_purpose('recommendation', 'Recommend content', tags => ARRAY['interest.*', 'health.condition']);
SELECT define_purpose('old', 'A purpose retired later');

-- register_subject
SELECT register_subject('42');
SELECT register_subject('7', '2015-03-01');
SELECT register_subject('42');							-- no-op
SELECT register_subject('42', '1990-05-17');			-- records the birth date
SELECT register_subject('42');							-- NULL keeps it
SELECT register_subject('42', '1990-05-17');			-- no-op
SELECT subject, birth_date, opted_out, erasure_requested_at IS NULL AS no_erasure
FROM subject ORDER BY subject;
SELECT subject, event, tag, recorded_by FROM subject_event ORDER BY event_id;
SELECT grant_consent('42', 'old', ARRAY['interest.*']) > 0 AS granted;
SELECT retire_purpose('old');
SELECT pg_temp.ledger() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.register_subject(NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.register_subject('')$$);
SELECT pg_temp.err(format('SELECT profile_guard.register_subject(%L)', repeat('x', 201)));
-- the subjects of anonymised rows (never swept) are reserved
SELECT pg_temp.err($$SELECT profile_guard.register_subject('-5')$$);
SELECT pg_temp.err($$SELECT profile_guard.register_subject('anonymous:2b7e')$$);
-- a birth date later than today anywhere on Earth (the session's date + 2)
SELECT pg_temp.err($$SELECT profile_guard.register_subject('99', current_date + 2)$$);
SELECT pg_temp.err($$SELECT profile_guard.register_subject('42', current_date + 2)$$);
SELECT pg_temp.ledger() = :'before' AS unchanged;
-- 200 characters of two bytes each: a subject like any other
BEGIN;
SELECT register_subject(repeat('é', 200)) IS NOT NULL AS registered;
SELECT grant_consent(repeat('é', 200), 'recommendation', ARRAY['interest.music']) > 0 AS granted;
ROLLBACK;

-- grant_consent records the purpose's current version
SELECT grant_consent('42', 'recommendation', ARRAY['interest.*', 'interest.sports']) AS c1 \gset
SELECT grant_consent('42', 'recommendation', ARRAY['health.condition'], separate => true,
					 expires_at => now() + interval '1 year') AS c2 \gset
SELECT define_purpose('recommendation', 'Recommend content (v2)', tags => ARRAY['interest.*', 'health.condition']);
SELECT grant_consent('7', 'recommendation', ARRAY['interest.music'], guardian => true) AS c3 \gset
SELECT :c2 > :c1 AND :c3 > :c2 AS ids_increase;
SELECT subject, purpose, purpose_version, action, tags, separate, guardian,
	   expires_at IS NOT NULL AS expires, recorded_by
FROM consent ORDER BY consent_id;

-- grant_consent errors change nothing
SELECT pg_temp.ledger() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.grant_consent(NULL, 'recommendation', ARRAY['interest.*'])$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('1', 'recommendation', ARRAY['interest.*'])$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('42', NULL, ARRAY['interest.*'])$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('42', 'nope', ARRAY['interest.*'])$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('42', 'old', ARRAY['interest.*'])$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('42', 'recommendation', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('42', 'recommendation', '{}')$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('42', 'recommendation', ARRAY['interest'])$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('42', 'recommendation', ARRAY['interest.golf'])$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('42', 'recommendation', ARRAY['hobby.*'])$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('42', 'recommendation', ARRAY['interest.*'], separate => NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('42', 'recommendation', ARRAY['interest.*'], expires_at => now())$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('42', 'recommendation', ARRAY['interest.*'], expires_at => '2000-01-01')$$);
SELECT pg_temp.ledger() = :'before' AS unchanged;

-- withdraw_consent appends; NULL withdraws everything; allowed for a retired purpose
SELECT withdraw_consent('42', 'recommendation', ARRAY['interest.music']) > :c3 AS appended;
SELECT withdraw_consent('7', 'recommendation') > 0 AS appended;
SELECT withdraw_consent('42', 'old') > 0 AS appended;
SELECT subject, purpose, purpose_version, action, tags, separate, guardian, expires_at
FROM consent WHERE action = 'withdraw' ORDER BY consent_id;
SELECT pg_temp.ledger() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.withdraw_consent('1', 'recommendation')$$);
SELECT pg_temp.err($$SELECT profile_guard.withdraw_consent('42', 'nope')$$);
SELECT pg_temp.err($$SELECT profile_guard.withdraw_consent('42', 'recommendation', '{}')$$);
SELECT pg_temp.err($$SELECT profile_guard.withdraw_consent('42', 'recommendation', ARRAY['Interest.*'])$$);
SELECT pg_temp.err($$SELECT profile_guard.withdraw_consent('42', 'recommendation', ARRAY['interest.golf'])$$);
SELECT pg_temp.ledger() = :'before' AS unchanged;

-- block_tag / unblock_tag (repeating is a no-op)
SELECT block_tag('42', 'interest.sports');
SELECT block_tag('42', 'interest.sports');
SELECT subject, tag FROM tag_block ORDER BY 1, 2;
SELECT pg_temp.ledger() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.block_tag('1', 'interest.sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.block_tag('42', 'interest.golf')$$);
SELECT pg_temp.err($$SELECT profile_guard.block_tag('42', 'interest.*')$$);
SELECT pg_temp.err($$SELECT profile_guard.block_tag('42', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.unblock_tag(NULL, 'interest.sports')$$);
SELECT pg_temp.ledger() = :'before' AS unchanged;
SELECT unblock_tag('42', 'interest.sports');
SELECT unblock_tag('42', 'interest.sports');
SELECT block_tag('42', 'interest.music');
SELECT subject, tag FROM tag_block ORDER BY 1, 2;

-- opt_out / opt_in (repeating is a no-op)
SELECT opt_out('42');
SELECT opt_out('42');
SELECT subject, opted_out FROM subject ORDER BY subject;
SELECT opt_in('42');
SELECT opt_in('42');
SELECT opt_out('7');
SELECT subject, opted_out FROM subject ORDER BY subject;
SELECT pg_temp.err($$SELECT profile_guard.opt_out('1')$$);
SELECT pg_temp.err($$SELECT profile_guard.opt_in(NULL)$$);

-- request_erasure: one pending request per subject
SELECT request_erasure('7') AS r1 \gset
SELECT request_erasure('7') = :r1 AS same_request;
SELECT subject, completed_at FROM erasure_request ORDER BY request_id;
SELECT subject, erasure_requested_at IS NOT NULL AS erasure_requested FROM subject ORDER BY subject;
SELECT pg_temp.err($$SELECT profile_guard.request_erasure('1')$$);

-- what happened, in order
SELECT subject, event, tag FROM subject_event ORDER BY event_id;

-- the ledger is append-only, for the superuser too
SELECT pg_temp.ledger() AS before \gset
SELECT pg_temp.err($$UPDATE profile_guard.consent SET separate = true$$);
SELECT pg_temp.err($$DELETE FROM profile_guard.consent$$);
SELECT pg_temp.err($$TRUNCATE profile_guard.consent CASCADE$$);
SELECT pg_temp.ledger() = :'before' AS unchanged;

-- privileges: the consent role records consent, not policy
CREATE ROLE regress_clerk IN ROLE profile_guard_consent;
CREATE ROLE regress_app;
SET ROLE regress_clerk;
SELECT profile_guard.register_subject('100');
SELECT profile_guard.grant_consent('100', 'recommendation', ARRAY['interest.sports']) > 0 AS granted;
SELECT profile_guard.withdraw_consent('100', 'recommendation') > 0 AS withdrawn;
SELECT profile_guard.block_tag('100', 'interest.music');
SELECT profile_guard.opt_out('100');
SELECT profile_guard.request_erasure('100') > 0 AS requested;
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.golf', 'preference')$$);
SELECT pg_temp.err($$INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags) VALUES ('100', 'recommendation', 2, 'grant', '{interest.*}')$$);
SELECT subject, action, recorded_by FROM profile_guard.consent WHERE subject = '100' ORDER BY consent_id;
SET ROLE regress_app;
SELECT pg_temp.err($$SELECT profile_guard.register_subject('101')$$);
SELECT pg_temp.err($$SELECT profile_guard.grant_consent('100', 'recommendation', ARRAY['interest.sports'])$$);
SELECT pg_temp.err($$SELECT count(*) FROM profile_guard.consent$$);
RESET ROLE;
SELECT p.proname, p.prosecdef,
	   has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec,
	   has_function_privilege('profile_guard_consent', p.oid, 'EXECUTE') AS consent_exec,
	   has_function_privilege('profile_guard_admin', p.oid, 'EXECUTE') AS admin_exec
FROM pg_proc p
WHERE p.pronamespace = 'profile_guard'::regnamespace
  AND p.proname IN ('register_subject', 'grant_consent', 'withdraw_consent', 'block_tag',
					'unblock_tag', 'opt_out', 'opt_in', 'request_erasure')
ORDER BY 1;

RESET ROLE;
\i test/lib/rules_check.sql
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

-- the subjects a transaction changed are remembered until it ends, each
-- in what its identifier takes: 20,000 registrations hold well under the
-- 16 MB that the longest identifier's room (801 bytes) for each took
BEGIN;
SELECT count(profile_guard.register_subject('bulk-' || i)) AS registered
FROM generate_series(1, 20000) i;
SELECT sum(total_bytes) < 4000000 AS changes_held_small
FROM pg_backend_memory_contexts
WHERE name IN ('profile_guard changes of this transaction',
			   'profile_guard subjects changed here');
SELECT count(*) AS bulk_subjects FROM profile_guard.subject WHERE subject LIKE 'bulk-%';
ROLLBACK;

DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_clerk, regress_app;
