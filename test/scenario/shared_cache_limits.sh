#!/usr/bin/env bash
# test/scenario/shared_cache_limits.sh — the consent answers one backend
# publishes in shared memory, at the edges of profile_guard.shared_cache_size:
# too small to hold them (each backend keeps its own), large enough (a new
# connection reads the published ones), and 0 (sharing off); for integer
# subjects (a dense array) and text subjects (a hash table of their text).
# Every variant must give the same rows, before and after a consent change.
#
# Starts its own cluster (the setting is read at reload).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh

pg_cluster_start shared_limits "profile_guard.shared_cache_size = '1MB'" || exit 1
trap 'pg_cluster_stop' EXIT
PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres)
fail() { echo "FAIL: $*"; exit 1; }

"$PGBIN/psql" -X -q -d postgres -c "CREATE ROLE regress_limits_app" -c "CREATE DATABASE texts" || fail "roles"
# the same data in both databases; subjects are "1".."100000" in postgres
# and "u1".."u100000" in texts
setup() {
	"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -v prefix="$2" -d "$1" >/dev/null <<'SQL' || fail "setup $1"
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_purpose('recommendation', 'recommend', ARRAY['interest.*']);
SELECT profile_guard.allow_purpose('regress_limits_app', 'recommendation');
-- 100,000 subjects: their published answers take 1.6 MB (integers) or
-- 8.6 MB (text)
INSERT INTO profile_guard.subject (subject) SELECT :'prefix' || i FROM generate_series(1, 100000) i;
INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags)
SELECT :'prefix' || i, 'recommendation', 1, 'grant', ARRAY['interest.*']
  FROM generate_series(1, 100000) i WHERE i % 4 <> 0;
SELECT profile_guard._policy_changed();
CREATE TABLE t (id text PRIMARY KEY, music text);
SELECT profile_guard.protect('t', 'id');
SELECT profile_guard.classify('t', 'music', 'interest.music');
INSERT INTO t SELECT :'prefix' || i, CASE WHEN i % 4 <> 0 THEN 'm' || i END FROM generate_series(1, 100000) i;
GRANT SELECT ON t TO regress_limits_app;
SQL
}
setup postgres ""
setup texts u

# a new connection's scan: "rows cells private-contexts"
scan() {
	"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "${1:-postgres}" -F ' ' -c "SET ROLE regress_limits_app" -c "SET profile_guard.purpose = 'recommendation'" \
		-c "SELECT count(id), count(music) FROM t" -c "RESET ROLE" \
		-c "SELECT count(*) FROM pg_backend_memory_contexts WHERE name = 'profile_guard subjects'" | tr '\n' ' ' | sed 's/ $//'
}
# reload a setting and wait (bounded) until new connections see it
set_size() {
	"${PSQL[@]}" -c "ALTER SYSTEM SET profile_guard.shared_cache_size = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
	for _ in $(seq 50); do
		[[ $("${PSQL[@]}" -c "SHOW profile_guard.shared_cache_size") == "$1" ]] && return 0
		sleep 0.1
	done
	fail "setting $1 not seen after reload"
}
expect() {
	local got=$1 want=$2 what=$3
	[[ $got == "$want" ]] || fail "$what: got '$got', want '$want'"
	echo "ok: $what ($got)"
}

# 1 MB: the answers do not fit; each backend keeps its own copy
expect "$(scan)" "75000 75000 1" "1MB, first connection"
expect "$(scan)" "75000 75000 1" "1MB, second connection loads its own"

# 64 MB: the first scan publishes, the next connection reads them in place
set_size 64MB
expect "$(scan)" "75000 75000 0" "64MB, first connection publishes"
expect "$(scan)" "75000 75000 0" "64MB, second connection attaches"

# a withdrawal: the next connection must not read the answers published before it
"${PSQL[@]}" -c "SELECT profile_guard.withdraw_consent('1', 'recommendation')" >/dev/null || fail "withdraw"
expect "$(scan)" "74999 74999 0" "64MB, after a withdrawal"
expect "$(scan)" "74999 74999 0" "64MB, after a withdrawal, attached"

# text subjects: published as a table of their text
expect "$(scan texts)" "75000 75000 0" "64MB, text subjects, first connection publishes"
expect "$(scan texts)" "75000 75000 0" "64MB, text subjects, second connection attaches"
point="SELECT string_agg(id || '=' || coalesce(music, '-'), ' ' ORDER BY id) FROM t WHERE id IN ('u1', 'u2', 'u4', 'u41', 'x', '1')"
points() {
	"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d texts -c "SET ROLE regress_limits_app" \
		-c "SET profile_guard.purpose = 'recommendation'" -c "SELECT count(music) FROM t" -c "$point" | tail -1
}
expect "$(points)" "u1=m1 u2=m2 u41=m41" "64MB, text subjects, key look-ups"
"$PGBIN/psql" -X -q -d texts -c "SELECT profile_guard.withdraw_consent('u2', 'recommendation')" >/dev/null || fail "withdraw u2"
expect "$(points)" "u1=m1 u41=m41" "64MB, text subjects, after a withdrawal"
expect "$(scan texts)" "74999 74999 0" "64MB, text subjects, after a withdrawal, attached"

# 0: sharing off
set_size 0
expect "$(scan)" "74999 74999 1" "0, first connection"
expect "$(scan)" "74999 74999 1" "0, second connection"
expect "$(scan texts)" "74999 74999 1" "0, text subjects"
echo "shared_cache_limits: ok"
