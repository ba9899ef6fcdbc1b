/*
 * 10_catalog.sql — the catalog: every table that holds policy, consent and
 * state.  Tables are written only through the API functions (SECURITY
 * DEFINER); configuration tables are registered with pg_extension_config_dump
 * so pg_dump carries them.
 */

-- Roles that administer policy and record consent.  Roles are cluster-wide,
-- so they survive DROP EXTENSION and are created only when missing.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'profile_guard_admin') THEN
		CREATE ROLE profile_guard_admin NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'profile_guard_consent') THEN
		CREATE ROLE profile_guard_consent NOLOGIN;
	END IF;
END
$roles$;

CREATE TABLE category (
	category	text PRIMARY KEY CHECK (category ~ '^[a-z][a-z0-9_]{0,62}$'),
	sensitivity	text NOT NULL CHECK (sensitivity IN ('general', 'sensitive')),
	builtin		boolean NOT NULL DEFAULT false,
	description	text
);

CREATE SEQUENCE tag_id_seq;

CREATE TABLE tag (
	tag			text PRIMARY KEY,
	tag_id		integer NOT NULL UNIQUE DEFAULT nextval('tag_id_seq'),
	category	text NOT NULL REFERENCES category,
	-- effective sensitivity: max(declared, category, sources)
	sensitivity	text NOT NULL CHECK (sensitivity IN ('general', 'sensitive')),
	declared_sensitivity text CHECK (declared_sensitivity IN ('general', 'sensitive')),
	layer		text NOT NULL CHECK (layer IN ('fact', 'model', 'prediction')),
	derived_from text[] NOT NULL DEFAULT '{}',
	-- transitive closure of derived_from, maintained by define_tag
	all_sources	text[] NOT NULL DEFAULT '{}',
	description	text,
	defined_at	timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE tag_id_seq OWNED BY tag.tag_id;

-- The topics of the prohibited lexicon (rule 13): the guideline's, shipped
-- (builtin), and those the DBA adds with add_prohibited_topic().
CREATE TABLE prohibited_topic (
	topic		text PRIMARY KEY CHECK (topic ~ '^[a-z][a-z0-9_]{0,62}$'),
	description	text NOT NULL,
	builtin		boolean NOT NULL DEFAULT false
);

CREATE TABLE prohibited_term (
	term		text PRIMARY KEY CHECK (term = lower(term) AND length(term) > 0),
	topic		text NOT NULL REFERENCES prohibited_topic,
	builtin		boolean NOT NULL DEFAULT false
);

-- The parties a purpose provides profiles to (§8), defined with
-- define_recipient(); one whose country is not profile_guard.home_country
-- makes its purposes cross-border (PIPL art. 38-39).
CREATE TABLE recipient (
	recipient	text PRIMARY KEY,
	country		text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
	description	text,
	defined_at	timestamptz NOT NULL DEFAULT now()
);

-- Categories a prohibited topic does not apply to (rule 13): the values of
-- tags of such a category are not checked against the topic's terms (a
-- medical tag's value may name a disease).
CREATE TABLE prohibited_topic_exemption (
	topic		text NOT NULL REFERENCES prohibited_topic ON DELETE CASCADE,
	category	text NOT NULL REFERENCES category ON DELETE CASCADE,
	exempted_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (topic, category)
);

CREATE TABLE purpose (
	purpose		text PRIMARY KEY,
	version		integer NOT NULL DEFAULT 1,
	description	text NOT NULL,
	tags		text[],			-- names or prefix patterns; NULL: no list
	retention	interval,
	marketing	boolean NOT NULL DEFAULT false,
	automated_decision boolean NOT NULL DEFAULT false,
	recipient	text REFERENCES recipient,
	defined_at	timestamptz NOT NULL DEFAULT now(),
	retired_at	timestamptz,
	-- information push, personalised display, targeted ads: what opt_out()
	-- switches off (rule 9); every marketing purpose is one
	personalised boolean NOT NULL DEFAULT false,
	CONSTRAINT purpose_marketing_personalised CHECK (personalised OR NOT marketing),
	-- the lawful basis of PIPL art. 13 (1)-(7) (rule 9a): a purpose not based
	-- on consent is never personalised and always lists its tags
	legal_basis	text NOT NULL DEFAULT 'consent',
	CONSTRAINT purpose_legal_basis_check CHECK (legal_basis IN ('consent', 'contract',
		'legal_obligation', 'vital_interest', 'public_interest', 'news_reporting',
		'public_information')),
	CONSTRAINT purpose_basis_not_personalised CHECK (legal_basis = 'consent' OR NOT personalised),
	CONSTRAINT purpose_basis_tags CHECK (legal_basis = 'consent' OR tags IS NOT NULL)
);

-- every version a purpose ever had, for consent history and audits
CREATE TABLE purpose_history (
	purpose		text NOT NULL REFERENCES purpose ON DELETE CASCADE,
	version		integer NOT NULL,
	description	text NOT NULL,
	tags		text[],
	retention	interval,
	marketing	boolean NOT NULL,
	automated_decision boolean NOT NULL,
	recipient	text,
	defined_at	timestamptz NOT NULL,
	personalised boolean NOT NULL DEFAULT false,
	PRIMARY KEY (purpose, version),
	legal_basis	text NOT NULL DEFAULT 'consent'
);

CREATE TABLE assessment (
	assessment_id bigserial PRIMARY KEY,
	purpose		text NOT NULL REFERENCES purpose,
	purpose_version integer NOT NULL,
	assessor	text NOT NULL,
	conclusion	text NOT NULL,
	recorded_at	timestamptz NOT NULL DEFAULT now()
);

-- which roles may declare which purposes (by role name, so dumps restore)
CREATE TABLE purpose_role (
	role_name	name NOT NULL,
	purpose		text NOT NULL REFERENCES purpose,
	allowed_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (role_name, purpose)
);

CREATE TABLE guarded_table (
	relid		regclass PRIMARY KEY,
	subject_column name NOT NULL,
	collected_at_column name,
	tag_column	name,			-- long shape when set
	value_column name,
	on_erase	text NOT NULL DEFAULT 'delete' CHECK (on_erase IN ('delete', 'anonymise')),
	anonymise_columns name[] NOT NULL DEFAULT '{}',
	protected_at timestamptz NOT NULL DEFAULT now(),
	-- on_erase anonymise: the columns declared not identifying, kept (tag
	-- columns are kept only as their tag's category allows: docs/erasure.md)
	keep_columns name[] NOT NULL DEFAULT '{}',
	-- no collected_at column: the write path stamps its collections
	-- (collection_stamp) for retention; on by default, false opts out
	stamp_collection boolean NOT NULL DEFAULT true,
	CHECK ((tag_column IS NULL) = (value_column IS NULL)),
	CONSTRAINT guarded_table_stamp_collection_check
		CHECK (NOT stamp_collection OR collected_at_column IS NULL)
);

CREATE TABLE classified_column (
	relid		regclass NOT NULL REFERENCES guarded_table ON DELETE CASCADE,
	column_name	name NOT NULL,
	tag			text NOT NULL REFERENCES tag,
	classified_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (relid, column_name)
);

-- When each subject's tags were last collected in a guarded table
-- protected without a collected_at column and with stamp_collection
-- (docs/erasure.md, "Collection stamps"): merged by the sweep from
-- collection_stamp_log (_merge_collection_stamps()), read by its
-- retention.  relid is a regclass, as in classified_column, so a
-- dump restores it by name.  No foreign key: unprotect() and the sweep
-- delete the stamps of tables no longer guarded.  Room on each page for
-- HOT updates of collected_at.
CREATE TABLE collection_stamp (
	relid		regclass NOT NULL,
	subject		text NOT NULL,
	tag			text NOT NULL,
	collected_at timestamptz NOT NULL,
	PRIMARY KEY (relid, subject, tag)
) WITH (fillfactor = 80);

-- What the write path collected since the last merge (src/collection_stamp.c):
-- before a transaction commits, one row per guarded table and tag it
-- wrote, with the subjects collected as an array.  Append-only and without
-- an index, so that a pair costs the write about an array element; the
-- sweep merges it into collection_stamp and deletes the rows it merged.
CREATE TABLE collection_stamp_log (
	relid		regclass NOT NULL,
	tag			text NOT NULL,
	collected_at timestamptz NOT NULL,
	subjects	text[] NOT NULL
);
-- written once, merged soon: compressed with lz4 where the server has it
-- (pglz cost the write path more than writing the array)
DO $$
BEGIN
	ALTER TABLE collection_stamp_log ALTER COLUMN subjects SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
	NULL;		-- a server built without lz4: the default (pglz)
END
$$;

CREATE TABLE subject (
	subject		text PRIMARY KEY CHECK (length(subject) BETWEEN 1 AND 200),
	birth_date	date,
	opted_out	boolean NOT NULL DEFAULT false,
	registered_at timestamptz NOT NULL DEFAULT now(),
	erasure_requested_at timestamptz
);

-- history of what a subject did besides consent: opt-out/in, blocks, requests
CREATE TABLE subject_event (
	event_id	bigserial PRIMARY KEY,
	subject		text NOT NULL,
	event		text NOT NULL CHECK (event IN ('registered', 'birth_date', 'opt_out',
							'opt_in', 'block', 'unblock', 'erasure_requested', 'tag_erased')),
	tag			text,
	recorded_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	recorded_by	name NOT NULL DEFAULT current_user
);

CREATE TABLE tag_block (
	subject		text NOT NULL REFERENCES subject,
	tag			text NOT NULL REFERENCES tag,
	blocked_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (subject, tag)
);

-- the consent ledger: append-only; a withdrawal is a new row
CREATE TABLE consent (
	consent_id	bigserial PRIMARY KEY,
	subject		text NOT NULL REFERENCES subject,
	purpose		text NOT NULL REFERENCES purpose,
	purpose_version integer NOT NULL,
	action		text NOT NULL CHECK (action IN ('grant', 'withdraw')),
	tags		text[],			-- grant: names/patterns; withdraw: NULL = all
	separate	boolean NOT NULL DEFAULT false,
	guardian	boolean NOT NULL DEFAULT false,
	expires_at	timestamptz,
	recorded_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	recorded_by	name NOT NULL DEFAULT current_user,
	CHECK (action = 'grant' OR (NOT separate AND NOT guardian AND expires_at IS NULL)),
	CHECK (action = 'withdraw' OR tags IS NOT NULL)
);
CREATE INDEX consent_purpose_subject_idx ON consent (purpose, subject, consent_id);
CREATE INDEX consent_subject_idx ON consent (subject);

-- Once a request is carried out the subject is forgotten (rule 12): its
-- identifier gives way to the keyed hash of the erasure log
-- (_subject_hash()), which proves the request complete to whoever holds
-- the master key.  forgotten_by: the transaction that forgot it, until the
-- next sweep has pruned its entry in the log of changed subjects.
CREATE TABLE erasure_request (
	request_id	bigserial PRIMARY KEY,
	subject		text REFERENCES subject,
	requested_at timestamptz NOT NULL DEFAULT now(),
	completed_at timestamptz,
	subject_hash text CONSTRAINT erasure_request_subject_hash_check
		CHECK (subject_hash ~ '^[0-9a-f]{64}$'),
	forgotten_by xid8,
	CONSTRAINT erasure_request_subject_check CHECK (subject IS NOT NULL OR subject_hash IS NOT NULL)
);
CREATE INDEX erasure_request_subject_idx ON erasure_request (subject);
CREATE INDEX erasure_request_subject_hash_idx ON erasure_request (subject_hash)
	WHERE subject_hash IS NOT NULL;

-- Legal holds (rule 9b, §7.4): while a hold is active (not released, and
-- until is NULL or still ahead) the subject's data is kept but not used: no
-- purpose except a legal_obligation one reads it, and the sweep erases
-- nothing of it (it writes one ledger row per hold, deferral_logged_at).
-- No foreign key to subject: a hold outlives nothing it refers to, and the
-- subject row's life belongs to erasure.
CREATE TABLE legal_hold (
	hold_id		bigserial PRIMARY KEY,
	subject		text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
	basis		text NOT NULL CHECK (length(basis) BETWEEN 1 AND 1000),
	placed_at	timestamptz NOT NULL DEFAULT now(),
	until		timestamptz,
	placed_by	name NOT NULL,
	released_at	timestamptz,
	released_by	name,
	deferral_logged_at timestamptz,
	CHECK (until IS NULL OR until > placed_at),
	CHECK ((released_at IS NULL) = (released_by IS NULL))
);
CREATE INDEX legal_hold_subject_idx ON legal_hold (subject);

-- What every cache of consent answers (in each backend and in shared
-- memory) follows.  A policy-wide change (tags, purposes, their roles,
-- classification) advances the generation: cached answers are rebuilt.  A
-- change that concerns one subject (consent, block, opt-out, erasure
-- request, registration) records the subject and the transaction that made
-- it: caches refresh that subject alone, once the transaction has
-- committed.  Both tables are replicated, so hot standbys follow them too.
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

-- Nothing but the API writes the catalog.
REVOKE ALL ON ALL TABLES IN SCHEMA profile_guard FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA profile_guard FROM PUBLIC;
GRANT USAGE ON SCHEMA profile_guard TO PUBLIC;
GRANT SELECT ON category, tag, purpose, purpose_history, assessment,
	purpose_role, guarded_table, classified_column, prohibited_term,
	prohibited_topic, prohibited_topic_exemption TO profile_guard_admin, profile_guard_consent;
GRANT SELECT ON subject, subject_event, tag_block, consent, erasure_request
	TO profile_guard_admin, profile_guard_consent;
GRANT SELECT ON legal_hold TO profile_guard_admin, profile_guard_consent;
GRANT SELECT ON recipient TO profile_guard_admin, profile_guard_consent;
GRANT SELECT ON collection_stamp, collection_stamp_log TO profile_guard_admin;

-- pg_dump carries configuration and consent (shipped rows are re-created
-- by CREATE EXTENSION, so only user rows are dumped).
SELECT pg_catalog.pg_extension_config_dump('category', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('prohibited_topic', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('prohibited_term', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('prohibited_topic_exemption', '');
SELECT pg_catalog.pg_extension_config_dump('tag', '');
SELECT pg_catalog.pg_extension_config_dump('tag_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('purpose', '');
SELECT pg_catalog.pg_extension_config_dump('purpose_history', '');
SELECT pg_catalog.pg_extension_config_dump('assessment', '');
SELECT pg_catalog.pg_extension_config_dump('assessment_assessment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('purpose_role', '');
SELECT pg_catalog.pg_extension_config_dump('guarded_table', '');
SELECT pg_catalog.pg_extension_config_dump('classified_column', '');
SELECT pg_catalog.pg_extension_config_dump('collection_stamp', '');
SELECT pg_catalog.pg_extension_config_dump('collection_stamp_log', '');
SELECT pg_catalog.pg_extension_config_dump('subject', '');
SELECT pg_catalog.pg_extension_config_dump('subject_event', '');
SELECT pg_catalog.pg_extension_config_dump('subject_event_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tag_block', '');
SELECT pg_catalog.pg_extension_config_dump('consent', '');
SELECT pg_catalog.pg_extension_config_dump('consent_consent_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('erasure_request', '');
SELECT pg_catalog.pg_extension_config_dump('erasure_request_request_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('legal_hold', '');
SELECT pg_catalog.pg_extension_config_dump('legal_hold_hold_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('recipient', '');
