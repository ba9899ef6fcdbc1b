
-- Appended after the functions: what 1.2's protect and classify set up,
-- for the tables guarded under 1.1 (50_guarded.sql).  Row-level security,
-- so that no error quotes a value; extended statistics on tag columns
-- dropped.  Generated columns and constraints that 1.2 refuses are left to
-- the owner: profile_guard.assess() lists them.
DO $update$
DECLARE
	g	record;
BEGIN
	FOR g IN
		SELECT pt.relid, x.relid AS root, x.value_column
		FROM profile_guard.guarded_table x, profile_guard._relations(x.relid) pt(relid)
		ORDER BY 1
	LOOP
		PERFORM profile_guard._sync_row_security(g.relid, true, false);
		PERFORM profile_guard._tag_statistics(g.relid, c.col, NULL, true)
		FROM (SELECT cc.column_name AS col FROM profile_guard.classified_column cc WHERE cc.relid = g.root
			  UNION ALL SELECT g.value_column WHERE g.value_column IS NOT NULL) c;
	END LOOP;
END
$update$;

CREATE EVENT TRIGGER profile_guard_ddl ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TABLE AS', 'CREATE INDEX', 'ALTER INDEX',
				 'CREATE STATISTICS', 'ALTER STATISTICS',
				 'CREATE POLICY', 'ALTER POLICY', 'DROP POLICY')
	EXECUTE FUNCTION profile_guard._guard_ddl();
