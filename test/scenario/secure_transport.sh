#!/usr/bin/env bash
# test/scenario/secure_transport.sh — profile_guard.secure_transport: on a
# cluster of its own that listens on 127.0.0.1 too (pg_hba.conf: trust for
# host), a statement that would serve a sensitive cell over plain TCP is
# refused with 28000, a DETAIL naming table, column and tag, and a HINT —
# by every way of reading (plain select, view, prepared statement, cursor,
# COPY (SELECT …) TO, COPY table TO, row_to_json(t), a SQL function,
# PL/pgSQL that catches the error gets no value, a long-shape value);
# general tags are still served, and a masked cell is not refused.  With
# 'all' general tags are refused too; with 'off' everything is served.
# Over the local socket, and over TCP with SSL (a self-signed certificate
# made here with openssl), the sensitive cell is served.  Applications
# cannot change the setting (42501).  assess() reports §8 (secure
# transport) from pg_hba.conf and ssl.  The sweep over plain TCP and the
# erasure worker still erase.
# Uses test/lib/cluster.sh with PGBIN from the environment.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset PGTEST_PORT
. test/lib/cluster.sh

fail() { echo "error: $*" >&2; exit 1; }

pg_cluster_start transport "listen_addresses = '127.0.0.1'" \
	"profile_guard.database = 'postgres'" "profile_guard.sweep_interval = 1" || exit 1
trap 'pg_cluster_stop' EXIT
PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres)
TCP="host=127.0.0.1 port=$PGPORT dbname=postgres"

# as the application over plain TCP, the local socket, or SSL: the output,
# and the error with its SQLSTATE, DETAIL and HINT
app_tcp() { "$PGBIN/psql" -X -q -At -v VERBOSITY=verbose "$TCP user=regress_st_app sslmode=disable" 2>&1 <<< "$1" || true; }
app_local() { "$PGBIN/psql" -X -q -At -v VERBOSITY=verbose -d postgres -U regress_st_app 2>&1 <<< "$1" || true; }
app_ssl() { "$PGBIN/psql" -X -q -At -v VERBOSITY=verbose "$TCP user=regress_st_app sslmode=require" 2>&1 <<< "$1" || true; }

"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SET search_path = public, profile_guard;
CREATE ROLE regress_st_app LOGIN;
SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_purpose('care', 'care', ARRAY['interest.sports', 'health.condition']);
SELECT allow_purpose('regress_st_app', 'care');
ALTER ROLE regress_st_app SET profile_guard.purpose = 'care';
SELECT register_subject(s) FROM unnest(ARRAY['1', '2', '3']) s;
SELECT grant_consent('1', 'care', ARRAY['interest.sports', 'health.condition'], separate => true);
SELECT grant_consent('3', 'care', ARRAY['interest.sports', 'health.condition'], separate => true);
CREATE TABLE profiles (uid text PRIMARY KEY, sports text, health text);
SELECT protect('profiles', 'uid');
SELECT classify('profiles', 'sports', 'interest.sports');
SELECT classify('profiles', 'health', 'health.condition');
INSERT INTO profiles VALUES ('1', 'tennis', 'SECRET-ASTHMA'), ('3', 'golf', 'SECRET-GOUT');
-- subject 2: its health cell is written, then only an ordinary consent remains
SELECT grant_consent('2', 'care', ARRAY['interest.sports', 'health.condition'], separate => true);
INSERT INTO profiles VALUES ('2', 'chess', 'SECRET-HIDDEN');
SELECT grant_consent('2', 'care', ARRAY['interest.sports', 'health.condition']);
CREATE TABLE tag_rows (uid text, tag text, value text);
SELECT protect('tag_rows', 'uid', tag_column => 'tag', value_column => 'value');
INSERT INTO tag_rows VALUES ('1', 'interest.sports', 'squash'), ('1', 'health.condition', 'SECRET-LONG');
CREATE VIEW profiles_view AS SELECT uid, health FROM profiles;
CREATE FUNCTION health_of(text) RETURNS text LANGUAGE sql STABLE AS 'SELECT health FROM profiles WHERE uid = $1';
GRANT SELECT ON profiles, tag_rows, profiles_view TO regress_st_app;
SQL

# --- plain TCP, secure_transport = sensitive (the default) ---
out=$(app_tcp "SELECT health FROM profiles WHERE uid = '1'")
grep -q '^ERROR:  28000: sensitive tag "health.condition" is served only over a secure connection' <<< "$out" ||
	fail "plain select over TCP not refused: $out"
grep -q 'DETAIL:  The statement would serve sensitive tag "health.condition" of column "health" of table "profiles" over plain TCP without SSL, and profile_guard.secure_transport = sensitive.' <<< "$out" ||
	fail "DETAIL does not name table, column and tag: $out"
grep -q 'HINT:  Connect with sslmode=require' <<< "$out" || fail "no HINT: $out"
echo "plain select refused over TCP, with DETAIL and HINT"

ways=(
	"SELECT health FROM profiles_view WHERE uid = '1'"
	"PREPARE p AS SELECT health FROM profiles ORDER BY uid; EXECUTE p"
	"BEGIN; DECLARE c CURSOR FOR SELECT * FROM profiles ORDER BY uid; FETCH ALL FROM c; COMMIT"
	"COPY (SELECT health FROM profiles) TO STDOUT"
	"COPY profiles TO STDOUT"
	"SELECT row_to_json(t) FROM profiles t"
	"SELECT t::text FROM profiles t"
	"SELECT health_of('1')"
	"SELECT count(*) FROM profiles WHERE health = 'SECRET-ASTHMA'"
	"SELECT value FROM tag_rows WHERE tag = 'health.condition'"
	"SELECT value FROM tag_rows"
	"SELECT t FROM tag_rows t"
)
for q in "${ways[@]}"; do
	out=$(app_tcp "$q")
	grep -q 'ERROR:  28000' <<< "$out" || fail "not refused over TCP: $q: $out"
	grep -q 'SECRET' <<< "$out" && fail "a value was served over TCP: $q: $out"
done
out=$(app_tcp "DO \$\$
DECLARE v text;
BEGIN
	BEGIN
		SELECT health INTO v FROM profiles WHERE uid = '1';
	EXCEPTION WHEN OTHERS THEN
		RAISE NOTICE 'caught: %, v = %', SQLSTATE, coalesce(v, 'none');
	END;
	RAISE NOTICE 'after: v = %', coalesce(v, 'none');
END \$\$")
grep -q 'caught: 28000, v = none' <<< "$out" && grep -q 'after: v = none' <<< "$out" ||
	fail "PL/pgSQL catching the refusal: $out"
grep -q 'SECRET' <<< "$out" && fail "PL/pgSQL got the value: $out"
echo "every way of reading is refused over TCP: view, prepared statement, cursor, COPY, whole rows, functions, PL/pgSQL, long shape"

out=$(app_tcp "SELECT string_agg(sports, ',' ORDER BY uid) FROM profiles")
[[ $out == "tennis,chess,golf" ]] || fail "general tags over TCP: $out"
out=$(app_tcp "SELECT coalesce(health, 'masked') FROM profiles WHERE uid = '2'")
[[ $out == "masked" ]] || fail "a masked cell over TCP: $out"
out=$(app_tcp "SELECT value FROM tag_rows WHERE tag = 'interest.sports'")
[[ $out == "squash" ]] || fail "a general long-shape tag over TCP: $out"
echo "general tags and masked cells are served over TCP"

out=$(app_tcp "SET profile_guard.secure_transport = 'off'")
grep -q 'ERROR:  42501' <<< "$out" || fail "the application could change secure_transport: $out"
out=$(app_tcp "SELECT set_config('profile_guard.secure_transport', 'off', false)")
grep -q 'ERROR:  42501' <<< "$out" || fail "the application could change secure_transport by set_config: $out"
"${PSQL[@]}" -c "SELECT context FROM pg_settings WHERE name = 'profile_guard.secure_transport'" | grep -qx superuser ||
	fail "secure_transport is not a superuser setting"
echo "the application cannot change the setting (42501)"

# --- the local socket ---
out=$(app_local "SELECT health FROM profiles WHERE uid = '1'")
[[ $out == "SECRET-ASTHMA" ]] || fail "sensitive read over the local socket: $out"
echo "served over the local socket"

# --- all, off ---
"${PSQL[@]}" -c "ALTER ROLE regress_st_app SET profile_guard.secure_transport = 'all'" >/dev/null
out=$(app_tcp "SELECT sports FROM profiles WHERE uid = '1'")
grep -q 'ERROR:  28000: general tag "interest.sports" is served only over a secure connection' <<< "$out" ||
	fail "'all' does not refuse a general tag: $out"
grep -q 'secure_transport = all' <<< "$out" || fail "DETAIL does not name the setting: $out"
out=$(app_tcp "SELECT count(*) FROM profiles")
[[ $out == "3" ]] || fail "'all': a read of no tag cell: $out"
out=$(app_local "SELECT sports FROM profiles WHERE uid = '1'")
[[ $out == "tennis" ]] || fail "'all' over the local socket: $out"
"${PSQL[@]}" -c "ALTER ROLE regress_st_app SET profile_guard.secure_transport = 'off'" >/dev/null
out=$(app_tcp "SELECT health FROM profiles WHERE uid = '1'")
[[ $out == "SECRET-ASTHMA" ]] || fail "'off' over TCP: $out"
"${PSQL[@]}" -c "ALTER ROLE regress_st_app RESET profile_guard.secure_transport" >/dev/null
echo "'all' refuses general tags over TCP, 'off' serves everything"

# --- assess(): §8 (secure transport) ---
row=$("${PSQL[@]}" -c "SELECT status || ': ' || detail FROM profile_guard.assess() WHERE clause = '§8 (secure transport)'")
[[ $row == partly:*"host all all 127.0.0.1)"* ]] ||
	fail "assess §8 with host lines and 'sensitive': $row"
row=$("${PSQL[@]}" -c "SET profile_guard.secure_transport = 'off'" \
	-c "SELECT status FROM profile_guard.assess() WHERE clause = '§8 (secure transport)'")
[[ $row == not_met ]] || fail "assess §8 with 'off': $row"
echo "assess §8 (secure transport): partly with plain host lines, not_met when off"

# --- SSL: a self-signed certificate ---
pg_as_owner openssl req -new -x509 -days 2 -nodes -subj "/CN=localhost" \
	-keyout "$PGDATA_DIR/server.key" -out "$PGDATA_DIR/server.crt" >/dev/null 2>&1 ||
	fail "openssl could not make a certificate"
pg_as_owner chmod 600 "$PGDATA_DIR/server.key"
"${PSQL[@]}" -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
for ((i = 0; i < 50; i++)); do
	[[ $("${PSQL[@]}" -c "SHOW ssl") == on ]] && break
	sleep 0.1
done
out=$(app_ssl "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
[[ $out == t ]] || fail "no SSL connection: $out"
out=$(app_ssl "SELECT health FROM profiles WHERE uid = '1'")
[[ $out == "SECRET-ASTHMA" ]] || fail "sensitive read over SSL: $out"
out=$(app_ssl "COPY (SELECT health FROM profiles WHERE uid = '3') TO STDOUT")
[[ $out == "SECRET-GOUT" ]] || fail "COPY over SSL: $out"
out=$(app_tcp "SELECT health FROM profiles WHERE uid = '1'")
grep -q 'ERROR:  28000' <<< "$out" || fail "plain TCP no longer refused once ssl is on: $out"
echo "served over TCP with SSL; plain TCP still refused"

# only hostssl lines: met
pg_as_owner sed -i -E 's/^host(\s)/hostssl\1/' "$PGDATA_DIR/pg_hba.conf"
"${PSQL[@]}" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
row=$("${PSQL[@]}" -c "SELECT status || ': ' || detail FROM profile_guard.assess() WHERE clause = '§8 (secure transport)'")
[[ $row == "met: no pg_hba.conf line lets a client in over plain TCP; profile_guard.secure_transport = sensitive, ssl = on" ]] ||
	fail "assess §8 with hostssl lines only: $row"
echo "assess §8 (secure transport): met with hostssl lines only"

# --- erasure over TCP (SSL now) by sweep(), and by the worker ---
"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$TCP user=postgres sslmode=require" >/dev/null <<'SQL'
SELECT profile_guard.request_erasure('3');
SELECT * FROM profile_guard.sweep();
SQL
[[ $("${PSQL[@]}" -c "SELECT count(*) FROM profiles WHERE uid = '3'") == 0 ]] || fail "sweep() over TCP did not erase"
"${PSQL[@]}" -c "SELECT profile_guard.request_erasure('1')" >/dev/null
for ((i = 0; i < 300; i++)); do
	[[ $("${PSQL[@]}" -c "SELECT count(*) FROM profiles WHERE uid = '1'") == 0 ]] && break
	sleep 0.1
done
[[ $("${PSQL[@]}" -c "SELECT count(*) FROM profiles WHERE uid = '1'") == 0 ]] || fail "the erasure worker did not erase"
echo "sweep() and the erasure worker erase"
echo "secure_transport: ok"
