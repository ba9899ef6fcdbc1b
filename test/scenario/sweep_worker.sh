#!/usr/bin/env bash
# test/scenario/sweep_worker.sh — the erasure worker: on a cluster of its own
# (profile_guard.database = postgres, sweep_interval = 1s, sweep_batch = 50)
# it
#   - logs once that the extension is missing and keeps waiting,
#   - erases due work by itself once there is some (awaited by a bounded
#     poll), in batches, logging it,
#   - follows a changed sweep_interval on SIGHUP (reload),
#   - ends on SIGTERM (pg_terminate_backend) and is started again.
# Uses test/lib/cluster.sh with PGBIN from the environment.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset PGTEST_PORT
. test/lib/cluster.sh

fail() { echo "error: $*" >&2; exit 1; }

pg_cluster_start worker "profile_guard.database = 'postgres'" \
	"profile_guard.sweep_interval = 1" "profile_guard.sweep_batch = 50" || exit 1
trap 'pg_cluster_stop' EXIT
PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres)

# wait until $1 (a query) prints t, at most $2 seconds
await() {
	local q=$1 limit=${2:-30} i
	for ((i = 0; i < limit * 10; i++)); do
		[[ $("${PSQL[@]}" -c "$q") == t ]] && return 0
		sleep 0.1
	done
	return 1
}

# the worker runs, and says once that the extension is missing
await "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'" 10 ||
	fail "no erasure worker in pg_stat_activity"
sleep 3		# three more intervals
n=$(grep -c 'extension profile_guard is not created in database "postgres"' "$CLUSTER_DIR/server.log" || true)
[[ $n -eq 1 ]] || fail "expected the missing extension to be logged once, found $n times"
echo "worker waits for the extension, logged once"

"${PSQL[@]}" >/dev/null <<'SQL'
BEGIN;
CREATE EXTENSION profile_guard;
SET search_path = public, profile_guard;
SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_purpose('rec', 'recommendations', ARRAY['interest.*']);
SELECT register_subject(i::text) FROM generate_series(1, 300) i;
SELECT grant_consent(i::text, 'rec', ARRAY['interest.*']) FROM generate_series(1, 300) i;
-- wide rows (about 14 a block), so that the due rows span many blocks
CREATE TABLE profiles (id int PRIMARY KEY, sports text, music text, pad text);
SELECT protect('profiles', 'id');
SELECT classify('profiles', 'sports', 'interest.sports');
SELECT classify('profiles', 'music', 'interest.music');
INSERT INTO profiles SELECT i, 'sport ' || i, 'music ' || i, repeat('x', 500) FROM generate_series(1, 300) i;
COMMIT;
-- due work: 100 subjects withdraw music, 100 ask for erasure
SELECT withdraw_consent(i::text, 'rec', ARRAY['interest.music']) FROM generate_series(1, 100) i;
SELECT request_erasure(i::text) FROM generate_series(101, 200) i;
SQL

await "SELECT count(*) = 200 AND count(music) = 100 FROM profiles" 30 ||
	fail "the worker did not erase the due work: $("${PSQL[@]}" -c 'SELECT count(*), count(music) FROM profiles')"
got=$("${PSQL[@]}" -c "SELECT string_agg(format('%s %s %s %s', tag, reason, action, total), ', ' ORDER BY tag, reason, action)
	FROM (SELECT tag, reason, action, sum(rows) AS total FROM profile_guard.erasure_log
		  WHERE relation = 'public.profiles' GROUP BY 1, 2, 3) x")
want="interest.music request delete 100, interest.music withdrawn null_cell 100, interest.sports request delete 100"
[[ $got == "$want" ]] || fail "erasure log: got '$got', want '$want'"
"${PSQL[@]}" -c "SELECT bool_and(id > 200 OR (id <= 100 AND music IS NULL AND sports IS NOT NULL)) FROM profiles" | grep -qx t ||
	fail "the wrong rows were erased"
"${PSQL[@]}" -c "SELECT count(*) = 100 FROM profile_guard.erasure_request WHERE completed_at IS NOT NULL" | grep -qx t ||
	fail "erasure requests not completed"
# a batch is a range of blocks holding about sweep_batch (50) rows, at least
# one block: the 200 rows over about 15 blocks take at least 4 transactions
xacts=$("${PSQL[@]}" -c "SELECT count(DISTINCT xmin::text) FROM profile_guard.erasure_log WHERE relation = 'public.profiles'")
[[ $xacts -ge 4 ]] || fail "expected batches of 50 rows in their own transactions, found $xacts transactions"
echo "worker erased 100 cells and 100 rows by itself in $xacts transactions, log matches"

# SIGHUP: a long interval is followed (work stays undone), a short one again
"${PSQL[@]}" -c "ALTER SYSTEM SET profile_guard.sweep_interval = 3600" -c "SELECT pg_reload_conf()" >/dev/null
sleep 2		# the reload wakes the worker; it sweeps once, then waits an hour
"${PSQL[@]}" -c "SELECT profile_guard.withdraw_consent('250', 'rec', ARRAY['interest.sports'])" >/dev/null
sleep 3
"${PSQL[@]}" -c "SELECT sports IS NOT NULL FROM profiles WHERE id = 250" | grep -qx t ||
	fail "the worker swept although sweep_interval was reloaded as 1 hour"
"${PSQL[@]}" -c "ALTER SYSTEM SET profile_guard.sweep_interval = 1" -c "SELECT pg_reload_conf()" >/dev/null
await "SELECT sports IS NULL FROM profiles WHERE id = 250" 15 ||
	fail "the worker did not sweep after sweep_interval was reloaded as 1 second"
echo "worker follows sweep_interval on reload"

# SIGTERM ends it; the postmaster starts it again
pid=$("${PSQL[@]}" -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'")
"${PSQL[@]}" -c "SELECT pg_terminate_backend($pid)" >/dev/null
await "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid" 5 || fail "the worker did not end on SIGTERM"
await "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'" 20 ||
	fail "the worker was not started again"
echo "worker ends on SIGTERM and is restarted"

# the settings are what they say
"${PSQL[@]}" -c "SELECT string_agg(name || '=' || context, ' ' ORDER BY name) FROM pg_settings
	WHERE name IN ('profile_guard.database', 'profile_guard.sweep_interval', 'profile_guard.sweep_batch')" |
	grep -qx 'profile_guard.database=postmaster profile_guard.sweep_batch=sighup profile_guard.sweep_interval=sighup' ||
	fail "setting contexts"
echo "sweep_worker: ok"
