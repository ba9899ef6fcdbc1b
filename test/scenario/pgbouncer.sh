#!/usr/bin/env bash
# test/scenario/pgbouncer.sh — the purpose through a real pooler.  pgbouncer
# (Debian's package) in transaction mode shares two server connections among
# six concurrent clients: two declare 'rec', two 'ads' and two nothing, each
# with SET LOCAL in every transaction.  Checked:
#
#   - every transaction starts with no purpose, whichever client used its
#     server connection before (nothing of one client's purpose survives);
#   - every read returns what the client's own purpose allows, and a client
#     without a purpose is refused every time (42501);
#   - the server connections really were shared across purposes;
#   - a consent withdrawn on a direct connection is honoured by the next
#     transaction on every pooled server connection (no cached answer of
#     before serves anybody after);
#   - a statement prepared by one client (SQL PREPARE, which lives on the
#     server connection) and executed by another is gated by the executing
#     transaction's purpose, never the preparer's.
#
# pgbouncer 1.18 (Debian 12) has no max_prepared_statements (1.21 added it),
# so protocol-level prepared statements through the pooler are tested only
# where the installed pgbouncer has it; the scenario says which it ran.
#
# Starts its own cluster and pgbouncer (Debian's package, which
# test/install_dependencies.sh installs).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/ops.sh

PGBOUNCER=$(command -v pgbouncer || dpkg -L pgbouncer 2>/dev/null | grep -m1 '/bin/pgbouncer$' || true)
[[ -n $PGBOUNCER && -x $PGBOUNCER ]] || fail "pgbouncer is not installed (run bash test/install_dependencies.sh)"
version=$("$PGBOUNCER" --version | sed -n 's/^[Pp]g[Bb]ouncer \([0-9.]*\).*/\1/p' | head -1)

cleanup() {
	local rc=$?
	if [[ -n ${C_DIR:-} && -s $C_DIR/pgbouncer.pid ]]; then
		kill "$(cat "$C_DIR/pgbouncer.pid")" 2>/dev/null || true
	fi
	ops_stop_all
	exit $rc
}
trap cleanup EXIT

DB=regress_pgbouncer
ops_start C pgbouncer
export PGHOST=$C_HOST PGPORT=$C_PORT
"$PGBIN/createdb" "$DB"
q -d "$DB" -c 'CREATE EXTENSION profile_guard' >/dev/null
q -d "$DB" -f test/lib/ops_fixture.sql >/dev/null || fail "loading the fixture failed"

# ---- pgbouncer: transaction pooling, two server connections ----
PGB_PORT=$(pg_free_port $((C_PORT + 1)))
pg_as_owner bash -c "cat > '$C_DIR/pgbouncer.ini'" <<INI
[databases]
$DB = host=$C_DIR port=$C_PORT dbname=$DB pool_size=2

[pgbouncer]
listen_addr =
listen_port = $PGB_PORT
unix_socket_dir = $C_DIR
auth_type = trust
auth_file = $C_DIR/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 50
ignore_startup_parameters = extra_float_digits
logfile = $C_DIR/pgbouncer.log
pidfile = $C_DIR/pgbouncer.pid
INI
pg_as_owner bash -c "printf '\"regress_ops_app\" \"\"\n\"postgres\" \"\"\n' > '$C_DIR/userlist.txt'"
# as a daemon (its pid file lets the clean-up stop it), logging to its file only
pg_as_owner "$PGBOUNCER" -d -q "$C_DIR/pgbouncer.ini" || fail "pgbouncer did not start"
for _ in $(seq 50); do
	"$PGBIN/pg_isready" -q -h "$C_DIR" -p "$PGB_PORT" -d "$DB" && break
	sleep 0.2
done
"$PGBIN/pg_isready" -q -h "$C_DIR" -p "$PGB_PORT" -d "$DB" || fail "pgbouncer did not start ($C_DIR/pgbouncer.log)"
echo "pgbouncer $version, transaction pooling, 2 server connections"

pooled() {		# psql through pgbouncer as the application
	"$PGBIN/psql" -X -q -At -h "$C_DIR" -p "$PGB_PORT" -d "$DB" -U regress_ops_app "$@"
}

# one client: N transactions; each reports the purpose it started with, then
# reads under its own purpose (none: no SET LOCAL at all)
client_script() {		# client_script NAME PURPOSE N
	local name=$1 purpose=$2 n=$3
	echo '\set VERBOSITY sqlstate'
	for _ in $(seq "$n"); do
		echo 'BEGIN;'
		echo "SELECT 'T|$name|' || coalesce(current_setting('profile_guard.purpose', true), '') || '|' || pg_backend_pid();"
		[[ $purpose != none ]] && echo "SET LOCAL profile_guard.purpose = '$purpose';"
		echo "SELECT 'R|$name|' || current_setting('profile_guard.purpose') || '|' || count(*) || '|' || count(health) || '|' || pg_backend_pid() FROM profiles WHERE sports IS NOT NULL OR music IS NOT NULL OR health IS NOT NULL;"
		echo 'COMMIT;'
		echo 'SELECT pg_sleep(0.002);'
	done
}

run_clients() {		# run_clients ROUND N: six concurrent clients; output in $C_DIR/ROUND.*
	local round=$1 n=$2 pids=() c
	for c in rec1:rec rec2:rec ads1:ads ads2:ads none1:none none2:none; do
		client_script "${c%%:*}" "${c#*:}" "$n" |
			pooled >"$C_DIR/$round.${c%%:*}" 2>&1 &
		pids+=($!)
	done
	for c in "${pids[@]}"; do wait "$c" || true; done
}

# ---- round 1: six clients, 40 transactions each ----
run_clients r1 40
cat "$C_DIR"/r1.* > "$C_DIR/r1.all"
bad=$(grep '^T|' "$C_DIR/r1.all" | awk -F'|' '$3 != ""' | head -3)
[[ -z $bad ]] || fail "a transaction started with another's purpose: $bad"
[[ $(grep -c '^T|' "$C_DIR/r1.all") -eq 240 ]] || fail "not every transaction ran ($(grep -c '^T|' "$C_DIR/r1.all") of 240)"
echo "ok: 240 transactions on shared server connections, each started with no purpose"

check_reads() {		# check_reads ROUND REC ADS: every read matches its client's purpose
	local round=$1 rec=$2 ads=$3 c got
	for c in rec1 rec2; do
		got=$(grep '^R|' "$C_DIR/$round.$c" | cut -d'|' -f3-5 | sort | uniq -c | awk '{$1=$1; print}')
		[[ $got == "${4:-40} rec|$rec" ]] || fail "$round: client $c read [$got], expected ${4:-40} x rec|$rec"
	done
	for c in ads1 ads2; do
		got=$(grep '^R|' "$C_DIR/$round.$c" | cut -d'|' -f3-5 | sort | uniq -c | awk '{$1=$1; print}')
		[[ $got == "${4:-40} ads|$ads" ]] || fail "$round: client $c read [$got], expected ${4:-40} x ads|$ads"
	done
	for c in none1 none2; do
		grep -q '^R|' "$C_DIR/$round.$c" && fail "$round: client $c without a purpose read rows"
		got=$(grep -cE 'ERROR: +42501$' "$C_DIR/$round.$c" || true)
		[[ $got -eq ${4:-40} ]] || fail "$round: client $c was refused $got times, expected ${4:-40}"
	done
	return 0
}
check_reads r1 '4|2' '1|0'
echo "ok: rec read 4 rows and 2 health cells, ads 1 row and no health, no purpose was refused, every time"

pids=$(grep -hE '^[TR]\|' "$C_DIR/r1.all" | awk -F'|' '{print $NF}' | sort -u | wc -l)
[[ $pids -le 2 ]] || fail "$pids server connections served the clients; the pool has 2"
shared=$(grep -hE '^R\|' "$C_DIR/r1.all" | awk -F'|' '{print $NF, $3}' | sort -u | awk '{n[$1]++} END {for (p in n) if (n[p] > 1) s++; print s + 0}')
[[ $shared -ge 1 ]] || fail "no server connection served two purposes: the pool was not shared"
echo "ok: $pids server connections, $shared of them served both purposes"

# ---- round 2: a withdrawal on a direct connection, then the pooled reads ----
qa -d "$DB" -c "SELECT profile_guard.withdraw_consent('1', 'rec')" >/dev/null
run_clients r2 20
check_reads r2 '3|1' '1|0' 20
echo "ok: after subject 1 withdrew, every pooled transaction read 3 rows and 1 health cell under rec"

# ---- a statement prepared by one client, executed by others ----
pooled >"$C_DIR/prep.rec" 2>&1 <<'SQL'
\set VERBOSITY sqlstate
BEGIN;
SET LOCAL profile_guard.purpose = 'rec';
PREPARE pgb_health AS SELECT 'P|' || current_setting('profile_guard.purpose', true) || '|' || count(health) FROM profiles;
EXECUTE pgb_health;
COMMIT;
SQL
grep -qx 'P|rec|1' "$C_DIR/prep.rec" || fail "the preparing client did not read its own result: $(cat "$C_DIR/prep.rec")"
for purpose in ads none; do
	{
		echo '\set VERBOSITY sqlstate'
		for _ in $(seq 20); do
			echo 'BEGIN;'
			[[ $purpose != none ]] && echo "SET LOCAL profile_guard.purpose = '$purpose';"
			echo 'EXECUTE pgb_health;'
			echo 'COMMIT;'
		done
	} | pooled >"$C_DIR/prep.$purpose" 2>&1
done
# on the connection that holds it: gated by the executing purpose; on the
# other: it does not exist there (26000)
grep -E '^P\|' "$C_DIR/prep.ads" | grep -vqx 'P|ads|0' && fail "another client's prepared statement served it: $(grep '^P|' "$C_DIR/prep.ads" | sort -u)"
grep -qE '^P\|' "$C_DIR/prep.none" && fail "a client without a purpose read through another's prepared statement"
grep -E 'ERROR' "$C_DIR/prep.ads" | grep -vqE 'ERROR: +26000$' && fail "unexpected error under ads: $(grep ERROR "$C_DIR/prep.ads" | sort -u)"
grep -E 'ERROR' "$C_DIR/prep.none" | grep -vqE 'ERROR: +(26000|42501)$' && fail "unexpected error without purpose: $(grep ERROR "$C_DIR/prep.none" | sort -u)"
echo "ok: executed by others, the prepared statement served ads $(grep -c '^P|' "$C_DIR/prep.ads") times with no health cell and no purpose never"

# ---- protocol-level prepared statements: pgbouncer 1.21 and later ----
if [[ $(printf '%s\n' "$version" 1.21 | sort -V | head -1) == 1.21 ]]; then
	fail "pgbouncer $version has max_prepared_statements: extend this scenario to test it"
else
	echo "pgbouncer $version has no max_prepared_statements (1.21 added it): protocol-level prepared statements through the pooler are not tested here"
fi

ops_check_alive "$C_HOST" "$C_PORT" "$C_DIR/server.log"
echo "pgbouncer scenario passed"
