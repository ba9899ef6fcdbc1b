-- Schema changes cannot let a tag out from under its classification:
-- renaming a guarded column or changing the type of a tag column is refused.
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;
CREATE ROLE regress_sc_app LOGIN;
DO $setup$ BEGIN
PERFORM profile_guard.define_tag('sc.luxury', 'preference');
PERFORM profile_guard.define_tag('sc.diagnosis', 'medical_health');
PERFORM profile_guard.define_purpose('sc_care', 'care', ARRAY['sc.*']);
PERFORM profile_guard.allow_purpose('regress_sc_app', 'sc_care');
PERFORM profile_guard.register_subject(s) FROM unnest(ARRAY['1', '2']) s;
PERFORM profile_guard.grant_consent('1', 'sc_care', ARRAY['sc.*'], separate => true);
PERFORM profile_guard.grant_consent('2', 'sc_care', ARRAY['sc.luxury']);
END $setup$;

-- wide shape
CREATE TABLE sc_profile (user_id int PRIMARY KEY, email text, luxury text, diagnosis text);
INSERT INTO sc_profile VALUES (1, 'a@x', 'yacht', 'flu-mild'), (2, 'b@x', 'watch', NULL);
SELECT profile_guard.protect('sc_profile', 'user_id');
SELECT profile_guard.classify('sc_profile', 'luxury', 'sc.luxury');
SELECT profile_guard.classify('sc_profile', 'diagnosis', 'sc.diagnosis');
SELECT profile_guard.withdraw_consent('2', 'sc_care');
GRANT SELECT, UPDATE ON sc_profile TO regress_sc_app;

ALTER TABLE sc_profile RENAME COLUMN luxury TO luxury_pref;
ALTER TABLE sc_profile RENAME COLUMN user_id TO uid;
ALTER TABLE sc_profile ALTER COLUMN diagnosis TYPE varchar(200);
ALTER TABLE sc_profile ALTER COLUMN luxury SET DATA TYPE varchar(50);
ALTER TABLE sc_profile ADD COLUMN note text, ALTER COLUMN luxury TYPE varchar(50);
-- the subject column may change type; other columns as they like
ALTER TABLE sc_profile ALTER COLUMN user_id TYPE bigint;
ALTER TABLE sc_profile RENAME COLUMN email TO mail;
ALTER TABLE sc_profile ALTER COLUMN mail TYPE varchar(100);
-- a new type's values may not be computed from a tag column or the whole
-- row: the rewrite would store them in a column no gate stands before
ALTER TABLE sc_profile ALTER COLUMN mail TYPE text USING mail || ':' || luxury;
ALTER TABLE sc_profile ALTER COLUMN mail TYPE text USING sc_profile.diagnosis;
ALTER TABLE sc_profile ALTER COLUMN mail TYPE text USING sc_profile::text;
ALTER TABLE sc_profile ALTER COLUMN mail TYPE text USING (sc_profile.*)::text;
ALTER TABLE sc_profile ALTER COLUMN mail TYPE text USING mail || '';
ALTER TABLE sc_profile ALTER COLUMN mail TYPE varchar(100) USING mail;
-- still gated, still decryptable
SET ROLE regress_sc_app;
SELECT user_id, mail FROM sc_profile ORDER BY 1;
SELECT user_id, luxury FROM sc_profile ORDER BY 1;
SET profile_guard.purpose = 'sc_care';
SELECT user_id, luxury, diagnosis FROM sc_profile ORDER BY 1;
RESET profile_guard.purpose;
RESET ROLE;

-- the way the hint shows: declassify, change, classify again
SELECT profile_guard.declassify('sc_profile', 'luxury');
ALTER TABLE sc_profile RENAME COLUMN luxury TO luxury_pref;
SELECT profile_guard.classify('sc_profile', 'luxury_pref', 'sc.luxury');
SET ROLE regress_sc_app;
SELECT user_id, luxury_pref FROM sc_profile ORDER BY 1;
SET profile_guard.purpose = 'sc_care';
SELECT user_id, luxury_pref FROM sc_profile ORDER BY 1;
RESET profile_guard.purpose;
RESET ROLE;

-- a parent's rename reaches its guarded children
CREATE TABLE sc_parent (user_id int, luxury text);
CREATE TABLE sc_child () INHERITS (sc_parent);
-- (a table under one that is not guarded cannot be protected: read
-- through that table, its tags would not be gated)
SELECT profile_guard.protect('sc_child', 'user_id');
SELECT profile_guard.protect('sc_parent', 'user_id');
SELECT profile_guard.classify('sc_parent', 'luxury', 'sc.luxury');
ALTER TABLE sc_parent RENAME COLUMN luxury TO lux;
ALTER TABLE sc_parent ALTER COLUMN luxury TYPE varchar(10);

-- long shape: the subject, tag and value columns
CREATE TABLE sc_tags (user_id text, tag text, value text);
SELECT profile_guard.protect('sc_tags', 'user_id', tag_column => 'tag', value_column => 'value');
ALTER TABLE sc_tags RENAME COLUMN value TO val;
ALTER TABLE sc_tags RENAME COLUMN tag TO label;
ALTER TABLE sc_tags RENAME user_id TO who;
ALTER TABLE sc_tags ALTER COLUMN value TYPE varchar(200);
ALTER TABLE sc_tags ALTER COLUMN tag TYPE varchar(200);
ALTER TABLE sc_tags ADD COLUMN note text;
ALTER TABLE sc_tags ALTER COLUMN note TYPE text USING tag || '=' || value;
ALTER TABLE sc_tags ALTER COLUMN note TYPE varchar(50) USING note || user_id;
-- through the parent, for every table below it
ALTER TABLE sc_parent ADD COLUMN memo text;
ALTER TABLE sc_parent ALTER COLUMN memo TYPE text USING luxury;

DROP TABLE sc_profile, sc_child, sc_parent, sc_tags;
DROP EXTENSION profile_guard CASCADE;
DROP OWNED BY regress_sc_app;
DROP ROLE regress_sc_app;
