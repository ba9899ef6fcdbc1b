
-- Appended after the functions: what 1.2's protect and classify set up,
-- for the tables guarded under 1.1 (50_guarded.sql).  Row-level security,
-- so that no error quotes a value; extended statistics on tag columns
-- dropped; the collection trigger on inheritance children, and their
-- sensitive plaintext encrypted.  Generated columns and constraints that
-- 1.2 refuses are left to the owner: profile_guard.assess() lists them.
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
		-- inheritance children are written through the collection trigger
		IF g.relid <> g.root
		   AND NOT (SELECT c.relispartition FROM pg_catalog.pg_class c WHERE c.oid = g.relid) THEN
			PERFORM profile_guard._install_collect_trigger(g.relid);
		END IF;
		PERFORM profile_guard._tag_statistics(g.relid, c.col, NULL, true)
		FROM (SELECT cc.column_name AS col FROM profile_guard.classified_column cc WHERE cc.relid = g.root
			  UNION ALL SELECT g.value_column WHERE g.value_column IS NOT NULL) c;
	END LOOP;
	-- the plaintext that 1.1 let into inheritance children's sensitive
	-- columns is encrypted (each child converts the tables below it)
	FOR g IN
		SELECT i.inhrelid::regclass AS relid, x.subject_column, cc.column_name, cc.tag
		FROM profile_guard.guarded_table x
		JOIN pg_catalog.pg_inherits i ON i.inhparent = x.relid
		JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid AND NOT c.relispartition
		JOIN profile_guard.classified_column cc ON cc.relid = x.relid
		JOIN profile_guard.tag t ON t.tag = cc.tag AND t.sensitivity = 'sensitive'
		WHERE NOT EXISTS (SELECT 1 FROM profile_guard.guarded_table y WHERE y.relid = i.inhrelid)
		ORDER BY 1, 3
	LOOP
		PERFORM profile_guard._convert_column(g.relid, g.subject_column, g.column_name, g.tag, NULL, true);
	END LOOP;
END
$update$;

CREATE EVENT TRIGGER profile_guard_ddl ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TABLE AS', 'CREATE INDEX', 'ALTER INDEX',
				 'CREATE STATISTICS', 'ALTER STATISTICS',
				 'CREATE POLICY', 'ALTER POLICY', 'DROP POLICY')
	EXECUTE FUNCTION profile_guard._guard_ddl();
