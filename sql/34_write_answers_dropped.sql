-- An UPDATE under a declared purpose checks every tag column it assigns
-- against that purpose's answers.  Collecting a value asks for the answers
-- of every purpose in force, and when a policy change has come in
-- meanwhile that drops every purpose's cached answers: the trigger must
-- look its purpose's answers up again for the next column, not read the
-- ones just dropped (freed memory).  The policy change here is queued by
-- the statement itself and taken in when the trigger reads the data key of
-- the sensitive column, as one committed by another session is taken in
-- whenever the trigger opens a table.
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;
CREATE ROLE regress_wd_app;
DO $setup$ BEGIN
PERFORM profile_guard.define_tag('wd.diagnosis', 'medical_health');
PERFORM profile_guard.define_tag('wd.sports', 'preference');
PERFORM profile_guard.define_tag('wd.music', 'preference');
PERFORM profile_guard.define_purpose('wd_care', 'care', ARRAY['wd.*']);
PERFORM profile_guard.define_purpose('wd_ads', 'ads', ARRAY['wd.*']);
PERFORM profile_guard.allow_purpose('regress_wd_app', 'wd_care');
PERFORM profile_guard.register_subject('1');
-- care may read the diagnosis and the sports of subject 1, not its music
PERFORM profile_guard.grant_consent('1', 'wd_care', ARRAY['wd.diagnosis'], separate => true);
PERFORM profile_guard.grant_consent('1', 'wd_care', ARRAY['wd.sports']);
PERFORM profile_guard.grant_consent('1', 'wd_ads', ARRAY['wd.music']);
END $setup$;
-- the sensitive column first: its data key is read before the others
CREATE TABLE wd_profile (id int PRIMARY KEY, diagnosis text, sports text, music text);
SELECT profile_guard.protect('wd_profile', 'id');
SELECT profile_guard.classify('wd_profile', 'diagnosis', 'wd.diagnosis');
SELECT profile_guard.classify('wd_profile', 'sports', 'wd.sports');
SELECT profile_guard.classify('wd_profile', 'music', 'wd.music');
INSERT INTO wd_profile VALUES (1, 'flu', 'golf', 'jazz');
GRANT SELECT, UPDATE ON wd_profile TO regress_wd_app;
-- the test's stand-in for another session's policy change
GRANT EXECUTE ON FUNCTION profile_guard._policy_changed(regclass) TO regress_wd_app;

-- a new session: no data key cached yet
\c -
SET ROLE regress_wd_app;
SET profile_guard.purpose = 'wd_care';
SELECT id, sports, music FROM wd_profile;
-- music is not care's to overwrite, policy change or not
BEGIN;
UPDATE wd_profile SET diagnosis = 'cold', sports = sports, music = music
 WHERE id = 1 AND (SELECT true FROM (SELECT profile_guard._policy_changed()) x);
ROLLBACK;
\c -
SET ROLE regress_wd_app;
SET profile_guard.purpose = 'wd_care';
BEGIN;
UPDATE wd_profile SET diagnosis = 'cold', sports = 'chess'
 WHERE id = 1 AND (SELECT true FROM (SELECT profile_guard._policy_changed()) x);
COMMIT;
SELECT id, diagnosis, sports, music FROM wd_profile;
RESET ROLE;
SELECT id, diagnosis LIKE 'pgt2%' AS encrypted, sports, music FROM wd_profile;

DROP TABLE wd_profile;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_wd_app;
