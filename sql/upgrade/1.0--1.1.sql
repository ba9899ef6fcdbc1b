-- profile_guard--1.0--1.1.sql: assembled by the Makefile from this file,
-- the changed parts of sql/ext (functions re-created with OR REPLACE) and the
-- new parts (appended as they are).  test/scenario/upgrade.sh checks that an
-- updated database has exactly the objects of a fresh 1.1 install.

\echo Use "ALTER EXTENSION profile_guard UPDATE TO '1.1'" to load this file. \quit

-- 1.1 adds: the erasure engine (sweep, erasure_log, worker), accountability
-- (subject_report, assess, suggest_classification), the usage view and audit
-- trail, the long-shape value gate, the one-subject rule evaluator, table
-- ownership checks in protect/classify/declassify/unprotect; tag_state
-- loses its SET clause (so that it can be inlined).
