-- test/lib/rules_check.sql: included by the pg_regress suites that check the
-- consent cache's C rules (src/subject_rules.c) against tag_state().
-- the C rules for one subject (the consent cache's one-at-a-time path)
-- agree with tag_state() for every purpose and subject, and for what may
-- be collected (NULL purpose: every purpose in force)
CREATE FUNCTION pg_temp.rules_disagree()
RETURNS TABLE (purpose text, subject text, sql_tags integer[], c_tags integer[],
			   sql_until timestamptz, c_until timestamptz)
LANGUAGE sql AS $$
	WITH subjects AS (SELECT c.subject FROM profile_guard.consent c
					  UNION SELECT s.subject FROM profile_guard.subject s),
	purposes AS (SELECT p.purpose FROM profile_guard.purpose p UNION ALL SELECT NULL),
	sql_answer AS (
		SELECT p.purpose, s.subject,
			   (SELECT array_agg(DISTINCT x.tag_id ORDER BY x.tag_id) FILTER (WHERE x.effective)
				FROM profile_guard.purpose q
				CROSS JOIN LATERAL profile_guard.tag_state(q.purpose, s.subject, false) x
				WHERE (p.purpose IS NULL AND q.retired_at IS NULL) OR q.purpose = p.purpose) AS tags,
			   (SELECT min(x.valid_until)
				FROM profile_guard.purpose q
				CROSS JOIN LATERAL profile_guard.tag_state(q.purpose, s.subject, false) x
				WHERE (p.purpose IS NULL AND q.retired_at IS NULL) OR q.purpose = p.purpose) AS until
		FROM purposes p CROSS JOIN subjects s)
	SELECT a.purpose, a.subject, a.tags, c.tag_ids, a.until, c.valid_until
	FROM sql_answer a CROSS JOIN LATERAL profile_guard._subject_answer(a.purpose, a.subject) c
	WHERE a.tags IS DISTINCT FROM c.tag_ids OR a.until IS DISTINCT FROM c.valid_until
$$;
-- the C rules for every subject at once (the consent cache's bulk load)
-- answer, for every purpose and for what may be collected (NULL), exactly
-- the subjects tag_state() has rows for, with the same tags and
-- valid_until: the differences, counted both ways, are 0
CREATE FUNCTION pg_temp.bulk_differences()
RETURNS TABLE (purpose text, subjects bigint, only_tag_state bigint, only_bulk bigint)
LANGUAGE sql AS $$
	WITH purposes AS (SELECT p.purpose FROM profile_guard.purpose p UNION ALL SELECT NULL)
	SELECT p.purpose, d.subjects, d.only_tag_state, d.only_bulk
	FROM purposes p CROSS JOIN LATERAL (
		WITH sql_answer AS (
			SELECT x.subject,
				   array_agg(DISTINCT x.tag_id ORDER BY x.tag_id) FILTER (WHERE x.effective) AS tag_ids,
				   min(x.valid_until) AS valid_until
			FROM profile_guard.purpose q
			CROSS JOIN LATERAL profile_guard.tag_state(q.purpose, NULL, false) x
			WHERE (p.purpose IS NULL AND q.retired_at IS NULL) OR q.purpose = p.purpose
			GROUP BY x.subject),
		bulk_answer AS (
			SELECT b.subject, b.tag_ids, b.valid_until
			FROM profile_guard._bulk_answers(p.purpose) b)
		SELECT (SELECT count(*) FROM sql_answer) AS subjects,
			   (SELECT count(*) FROM (SELECT * FROM sql_answer
									  EXCEPT ALL SELECT * FROM bulk_answer) o) AS only_tag_state,
			   (SELECT count(*) FROM (SELECT * FROM bulk_answer
									  EXCEPT ALL SELECT * FROM sql_answer) o) AS only_bulk) d
	ORDER BY p.purpose NULLS LAST
$$;
