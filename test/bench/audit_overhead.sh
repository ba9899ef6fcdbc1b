#!/usr/bin/env bash
# test/bench/audit_overhead.sh — what the audit trail and the usage counters
# cost on the primary-key pgbench workload of test/bench/run.sh (gated reads
# of three tag columns by primary key).
#
#   bash test/bench/audit_overhead.sh               audit = off vs all (counters always on)
#   BASE_SO=/path/profile_guard.so bash test/bench/audit_overhead.sh
#        also against a build without them (e.g. the parent commit's), swapped
#        in and out of the installation between rounds (restart each time)
#   SCALE=N (5000) ROUNDS=R (3) PGBENCH_SECONDS=S (10) CLIENTS=C (2)
#
# The scale is small on purpose: every backend warms its consent cache
# (one subject at a time for key look-ups) first, so that the rounds measure
# the steady state, where the audit's share is largest.
#
# Prints the median TPS of each configuration and the ratios.
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
	results[off]+="$(tps off) "
	results[all]+="$(tps all) "
	echo "round $r: base ${results[base]:-} off ${results[off]} all ${results[all]}" >&2
done
off=$(tr ' ' '\n' <<<"${results[off]}" | grep . | bench_median)
all=$(tr ' ' '\n' <<<"${results[all]}" | grep . | bench_median)
echo "pgbench PK lookups, $SCALE subjects, $CLIENTS clients, ${PGBENCH_SECONDS}s x $ROUNDS rounds (median TPS)"
echo "  audit = off (usage counters on): $off"
echo "  audit = all:                     $all   (all / off = $(awk -v a="$all" -v o="$off" 'BEGIN {printf "%.3f", a / o}'))"
if [[ -n ${BASE_SO:-} ]]; then
	base=$(tr ' ' '\n' <<<"${results[base]}" | grep . | bench_median)
	echo "  without audit.c (BASE_SO):       $base   (off / base = $(awk -v a="$off" -v b="$base" 'BEGIN {printf "%.3f", a / b}'), all / base = $(awk -v a="$all" -v b="$base" 'BEGIN {printf "%.3f", a / b}'))"
fi
echo "  audit lines written: $(grep -c 'profile_guard audit:' "$CLUSTER_DIR/server.log")"
