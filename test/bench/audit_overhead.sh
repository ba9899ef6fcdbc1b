#!/usr/bin/env bash
# test/bench/audit_overhead.sh — what the audit trail and the usage counters
# cost on the primary-key pgbench workload of test/bench/run.sh (gated reads
# of three tag columns by primary key).
#
#   bash test/bench/audit_overhead.sh               audit = off vs all, the
#        trail written to its files (audit_destination = file) and to the
#        server log (log); the usage counters are always on
#   BASE_SO=/path/profile_guard.so bash test/bench/audit_overhead.sh
#        also against a build without them (e.g. the parent commit's), swapped
#        in and out of the installation between rounds (restart each time)
#   SCALE=N (5000) ROUNDS=R (3) PGBENCH_SECONDS=S (10) CLIENTS=C (2)
#
# The scale is small on purpose: every backend warms its consent cache
# (one subject at a time for key look-ups) first, so that the rounds measure
# the steady state, where the audit's share is largest.
#
# Each round runs every configuration once, in turn (interleaved, so that a
# noisy minute hits them alike); prints the median TPS of each
# configuration and its ratio to audit = off.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/bench_data.sh

SCALE=${SCALE:-5000}; ROUNDS=${ROUNDS:-3}; PGBENCH_SECONDS=${PGBENCH_SECONDS:-10}; CLIENTS=${CLIENTS:-2}
pg_build_and_install || exit 1
PKGLIB=$("$PG_CONFIG" --pkglibdir)
OURS=$(mktemp /tmp/profile_guard_ours.XXXXXX.so)
cp "$PKGLIB/profile_guard.so" "$OURS"

pg_cluster_start bench_audit "shared_buffers = '256MB'" "jit = off" || exit 1
# never overwrite a loaded library in place: a new file, renamed over it
install_so() { cp "$1" "$PKGLIB/.profile_guard.so.new" && chmod 755 "$PKGLIB/.profile_guard.so.new" && mv "$PKGLIB/.profile_guard.so.new" "$PKGLIB/profile_guard.so"; }
restore() { pg_cluster_stop; install_so "$OURS"; rm -f "$OURS"; }
trap restore EXIT
"$PGBIN/psql" -X -q -c "CREATE DATABASE bench" postgres
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d bench >/dev/null <<SQL
$(bench_profiles_sql "$SCALE" subjects=adults values=constant)
VACUUM ANALYZE;
SQL
bench_pk_script "$SCALE" > "$CLUSTER_DIR/pk.sql"

restart_with() {	# restart_with LIBRARY
	pg_as_owner "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -w -m fast stop >/dev/null
	install_so "$1"
	pg_as_owner "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$CLUSTER_DIR/server.log" -w start >/dev/null
}
# audit_destination is a SIGHUP setting: set, reloaded, and awaited in a new
# session (the postmaster reloads asynchronously; new backends inherit its
# settings)
destination() {	# destination file|log
	"$PGBIN/psql" -X -q -d bench -c "ALTER SYSTEM SET profile_guard.audit_destination = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
	for _ in $(seq 100); do
		[[ $("$PGBIN/psql" -X -At -d bench -c "SHOW profile_guard.audit_destination") == "$1" ]] && return 0
		sleep 0.1
	done
	echo "audit_destination did not become $1" >&2
	return 1
}
tps() {		# tps AUDIT
	"$PGBIN/psql" -X -q -d bench -c "ALTER ROLE bench_app SET profile_guard.audit = '$1'"
	PGOPTIONS="-c profile_guard.purpose=recommendation" "$PGBIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" \
		-T "$PGBENCH_SECONDS" -f "$CLUSTER_DIR/pk.sql" -U bench_app bench 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}

declare -A results
tps off >/dev/null		# warm-up (each run's backends load the consent cache anew)
for r in $(seq "$ROUNDS"); do
	if [[ -n ${BASE_SO:-} ]]; then
		restart_with "$BASE_SO"
		results[base]+="$(tps off) "
		restart_with "$OURS"
	fi
	destination file || exit 1
	results[off]+="$(tps off) "
	results[file]+="$(tps all) "
	destination log || exit 1
	results[log]+="$(tps all) "
	echo "round $r: ${BASE_SO:+base ${results[base]} }off ${results[off]} file ${results[file]} log ${results[log]}" >&2
done
median() { tr ' ' '\n' <<<"${results[$1]}" | grep . | bench_median; }
off=$(median off)
ratio() { awk -v a="$1" -v o="$off" 'BEGIN {printf "%.3f", a / o}'; }
echo "pgbench PK lookups, $SCALE subjects, $CLIENTS clients, ${PGBENCH_SECONDS}s x $ROUNDS interleaved rounds"
printf '%-36s %12s %10s\n' configuration "median TPS" "/ off"
printf '%-36s %12s %10s\n' "audit = off (usage counters on)" "$off" "1.000"
printf '%-36s %12s %10s\n' "audit = all, destination = file" "$(median file)" "$(ratio "$(median file)")"
printf '%-36s %12s %10s\n' "audit = all, destination = log" "$(median log)" "$(ratio "$(median log)")"
if [[ -n ${BASE_SO:-} ]]; then
	printf '%-36s %12s %10s\n' "without audit.c (BASE_SO)" "$(median base)" "$(ratio "$(median base)")"
fi
echo "audit lines written: $(cat "$PGDATA_DIR"/profile_guard_audit/* 2>/dev/null | wc -l) in files, $(grep -c 'profile_guard audit:' "$CLUSTER_DIR/server.log") in the server log"
