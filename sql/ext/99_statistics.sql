
-- Statistics for the catalog tables as this script leaves them.  PostgreSQL plans
-- a table that was never analysed as if it held hundreds of rows, which put
-- the views over several of them (consent_status) above jit_above_cost on
-- a fresh installation: each query was JIT-compiled, about 0.15 s.
-- Autovacuum analyses the tables again as they fill.
DO $$
DECLARE
	t regclass;
BEGIN
	FOR t IN SELECT c.oid FROM pg_class c
			 WHERE c.relnamespace = 'profile_guard'::regnamespace AND c.relkind = 'r'
			 ORDER BY c.relname
	LOOP
		EXECUTE format('ANALYZE %s', t);
	END LOOP;
END
$$;
