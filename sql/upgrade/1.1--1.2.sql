-- profile_guard--1.1--1.2.sql: assembled by the Makefile from this file and
-- every function of sql/ext, re-created with OR REPLACE with its privileges.
-- test/scenario/upgrade.sh checks that an updated database has exactly the
-- objects of a fresh 1.2 install.

\echo Use "ALTER EXTENSION profile_guard UPDATE TO '1.2'" to load this file. \quit


-- in-place encryption and decryption of a column: one function, which
-- writes as the table's owner (50_guarded.sql)
DROP FUNCTION _encrypt_column(regclass, name, name, text);
DROP FUNCTION _decrypt_column(regclass, name, name, text);

-- consent answers follow a policy generation and a log of changed subjects
-- (10_catalog.sql)
CREATE TABLE policy_generation (
	singleton	boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	generation	bigint NOT NULL
);
INSERT INTO policy_generation VALUES (true, 1);

CREATE TABLE subject_change (
	subject		text PRIMARY KEY,
	changed_by	xid8 NOT NULL
);
CREATE INDEX subject_change_changed_by_idx ON subject_change (changed_by);
REVOKE ALL ON policy_generation, subject_change FROM PUBLIC;
