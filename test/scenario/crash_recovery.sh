#!/usr/bin/env bash
# test/scenario/crash_recovery.sh — the server crashes (a backend killed with
# SIGKILL in the middle of a gated read, then an immediate shutdown with
# transactions in flight) and recovers with the policy intact:
#
#   - after crash recovery, committed consents, withdrawals and encrypted
#     writes are there and uncommitted ones are not (no half-written data
#     key, no plaintext);
#   - the gate answers exactly as before the crash, sensitive values
#     decrypt, a read without purpose is refused;
#   - new writes are encrypted and new consents take effect.
#
# Starts its own cluster.  Needs the PostgreSQL installation of PGBIN with
# profile_guard installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/ops.sh
trap '[[ -n ${BG:-} ]] && kill "$BG" 2>/dev/null; ops_stop_all' EXIT

DB=regress_crash
# synchronous_commit = on: the test cluster's default (off) may lose the
# last commits in a crash, as PostgreSQL documents; fsync can stay off (the
# operating system does not crash here)
ops_start C crash "synchronous_commit = on"
export PGHOST=$C_HOST PGPORT=$C_PORT
"$PGBIN/createdb" "$DB"
q -d "$DB" -c 'CREATE EXTENSION profile_guard' >/dev/null
q -d "$DB" -f test/lib/ops_fixture.sql >/dev/null || fail "loading the fixture failed"

reads() {
	qa -d "$DB" -U regress_ops_app <<'SQL'
SET profile_guard.purpose = 'rec';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
SET profile_guard.purpose = 'ads';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
SQL
}
wait_up() {
	local i
	for i in $(seq 1 300); do
		"$PGBIN/pg_isready" -q -t 1 && qa -d "$DB" -c 'SELECT 1' >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	fail "the server did not come back within 60 s"
}
before=$(reads) || fail "reads before the crash failed"
[[ $before == *SECRET-asthma-1* ]] || fail "reads before the crash are not as expected: $before"

# ---------- 1: SIGKILL a backend in the middle of a gated read
"$PGBIN/psql" -X -q -d "$DB" -U regress_ops_app -c "SET profile_guard.purpose = 'rec'" \
	-c 'SELECT count(health), pg_sleep(60) FROM profiles' >/dev/null 2>&1 &
BG=$!
pid=
for i in $(seq 1 100); do
	pid=$(qa -d postgres -c "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")
	[[ -n $pid ]] && break
	sleep 0.1
done
[[ -n $pid ]] || fail "the long read did not start"
ready=$(grep -c 'database system is ready to accept connections' "$C_DIR/server.log")
kill -9 "$pid"
wait "$BG" 2>/dev/null || true
BG=
# the postmaster notices, terminates every backend and reinitialises: wait
# for it to be ready again (bounded), not for the old processes
for i in $(seq 1 300); do
	[[ $(grep -c 'database system is ready to accept connections' "$C_DIR/server.log") -gt $ready ]] && break
	sleep 0.2
done
[[ $(grep -c 'database system is ready to accept connections' "$C_DIR/server.log") -gt $ready ]] ||
	fail "the server did not reinitialise within 60 s after the backend crash"
wait_up
grep -q 'terminated by signal 9' "$C_DIR/server.log" || fail "the killed backend was not reported"
after=$(reads 2>&1) || fail "reads after the backend crash failed: $after"
[[ $before == "$after" ]] || fail "the gate answers differently after a backend crash:
$(diff <(echo "$before") <(echo "$after"))"
echo "a backend killed during a gated read: the server restarted and the gate answers as before"

# ---------- 2: immediate shutdown with transactions in flight
q -d "$DB" >/dev/null <<'SQL'
SELECT profile_guard.register_subject('7');
SELECT profile_guard.grant_consent('7', 'rec', ARRAY['interest.*', 'health.condition'], separate => true);
INSERT INTO profiles VALUES (7, 'gus', 'hockey', NULL, 'SECRET-committed-7');
SELECT profile_guard.withdraw_consent('2', 'rec');
SQL
# uncommitted at the crash: a consent, a new subject's data key, a write
coproc U { "$PGBIN/psql" -X -q -At -d "$DB" 2>&1; }
BG=$U_PID
cat >&"${U[1]}" <<'SQL'
BEGIN;
SELECT profile_guard.register_subject('8');
SELECT profile_guard.grant_consent('8', 'rec', ARRAY['health.condition'], separate => true);
INSERT INTO profiles VALUES (8, 'hal', NULL, NULL, 'SECRET-uncommitted-8');
SELECT profile_guard.withdraw_consent('1', 'rec');
\echo in-flight
SQL
read -r -t 30 line <&"${U[0]}" || true
for i in $(seq 1 50); do
	[[ $line == in-flight ]] && break
	read -r -t 30 line <&"${U[0]}" || true
done
[[ $line == in-flight ]] || fail "the in-flight transaction did not get going: $line"
pg_as_owner "$PGBIN/pg_ctl" -D "$C_DATA" -m immediate -w stop >/dev/null
kill "$BG" 2>/dev/null || true
BG=
pg_as_owner "$PGBIN/pg_ctl" -D "$C_DATA" -l "$C_DIR/server.log" -w -t 60 start >/dev/null || fail "the server did not restart"
grep -q 'database system was not properly shut down; automatic recovery in progress' "$C_DIR/server.log" ||
	fail "no crash recovery happened"
wait_up

expected=$(sed -e 's/^2|bob|tennis||$//' <<< "$before" | sed '/^$/d' |
	awk '{print} /^6\|fay/ && !done {print "7|gus|hockey||SECRET-committed-7"; done = 1}')
after=$(reads 2>&1) || fail "reads after crash recovery failed: $after"
if [[ $after != "$expected" ]]; then
	diff -u <(echo "$expected") <(echo "$after") >&2 || true
	fail "after crash recovery the gate does not answer as committed (diff above: - expected, + actual)"
fi
[[ $(qa -d "$DB" -c "SELECT count(*) FROM profile_guard.subject WHERE subject = '8'") == 0 &&
   $(qa -d "$DB" -c "SELECT count(*) FROM profile_guard.subject_key WHERE subject = '8'") == 0 &&
   $(qa -d "$DB" -c "SELECT count(*) FROM profiles WHERE id = 8") == 0 ]] ||
	fail "uncommitted work (subject 8, its data key or row) survived the crash"
[[ $(qa -d "$DB" -c "SELECT count(*) FROM profiles WHERE health LIKE '%SECRET%'") == 0 ]] ||
	fail "plaintext sensitive values after crash recovery"
echo "immediate shutdown with a transaction in flight: committed work there, uncommitted gone, gate as committed"

# ---------- 3: the recovered server keeps working
q -d "$DB" >/dev/null <<'SQL'
SELECT profile_guard.register_subject('8');
SELECT profile_guard.grant_consent('8', 'rec', ARRAY['health.condition'], separate => true);
INSERT INTO profiles VALUES (8, 'hal', NULL, NULL, 'SECRET-after-8');
SQL
[[ $(qa -d "$DB" -c "SELECT health LIKE 'pgt1:%' FROM profiles WHERE id = 8") == t ]] ||
	fail "a write after recovery was not encrypted"
[[ $(qa -d "$DB" -U regress_ops_app -c "SET profile_guard.purpose = 'rec'" -c 'SELECT health FROM profiles WHERE id = 8') == SECRET-after-8 ]] ||
	fail "a consent given after recovery does not take effect"
err=$("$PGBIN/psql" -X -q -d "$DB" -U regress_ops_app -c 'SELECT health FROM profiles' 2>&1 >/dev/null || true)
grep -q 'no purpose declared' <<< "$err" || fail "after recovery a read without purpose was not refused: $err"
echo "crash_recovery: gates, keys and consents survive a backend crash and an immediate shutdown"
