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
#   DIRECT=1 bash test/bench/audit_overhead.sh
#        also the files written by each backend itself, one write() per
#        statement (audit_buffer_size = 0, a restart each round), against
#        the audit writer
#   OLD_SO=/path/profile_guard.so bash test/bench/audit_overhead.sh
#        also the files through the audit writer with another build (e.g.
#        the parent commit's: lines formatted by the backends rather than
#        by the writer), swapped in like BASE_SO
#   SCALE=N (5000) ROUNDS=R (3) PGBENCH_SECONDS=S (10) CLIENTS=C (2)
#
# The scale is small on purpose: every backend warms its consent cache
# (one subject at a time for key look-ups) first, so that the rounds measure
# the steady state, where the audit's share is largest.
#
# Each round runs every configuration once, in turn (interleaved, so that a
# noisy minute hits them alike); prints the median TPS of each
# configuration and its ratio to audit = off, and the median CPU time its
# backends and the audit writer spent per transaction (read from /proc: run it on the server's
# machine, as root or as the server's user) and the difference to off.
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
buffer_size() {	# buffer_size SIZE: audit_buffer_size, with a restart
	"$PGBIN/psql" -X -q -d bench -c "ALTER SYSTEM SET profile_guard.audit_buffer_size = '$1'" >/dev/null
	pg_as_owner "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$CLUSTER_DIR/server.log" -w -m fast restart >/dev/null
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
# CPU time (user + system, clock ticks) of the processes named
cpu_ticks() {
	local t=0 pid
	for pid in "$@"; do
		[[ -r /proc/$pid/stat ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
	done
	echo "$t"
}
# the audit writer's pid (it has no database: not in pg_stat_activity)
audit_writer() {
	pgrep -P "$(head -1 "$PGDATA_DIR/postmaster.pid")" -f 'profile_guard audit writer' || true
}
# tps AUDIT: prints the run's TPS and its backends' CPU time per transaction
# (µs; read from /proc between the run's first and last second: less
# sensitive than TPS to what else the machine runs)
tps() {
	"$PGBIN/psql" -X -q -d bench -c "ALTER ROLE bench_app SET profile_guard.audit = '$1'"
	PGOPTIONS="-c profile_guard.purpose=recommendation" "$PGBIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" \
		-T "$PGBENCH_SECONDS" -f "$CLUSTER_DIR/pk.sql" -U bench_app bench > "$CLUSTER_DIR/pgbench.out" 2>/dev/null &
	local bg=$! pids c1 c2 t1 t2 tps
	sleep 1
	# the backends, and the audit writer (its work is the trail's too)
	pids="$("$PGBIN/psql" -X -At -d bench -c "SELECT pid FROM pg_stat_activity WHERE usename = 'bench_app'") $(audit_writer)"
	c1=$(cpu_ticks $pids) t1=$(date +%s.%N)
	sleep $((PGBENCH_SECONDS - 2))
	c2=$(cpu_ticks $pids) t2=$(date +%s.%N)
	wait "$bg"
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$CLUSTER_DIR/pgbench.out")
	awk -v tps="$tps" -v c="$((c2 - c1))" -v hz="$(getconf CLK_TCK)" -v s="$(awk -v a="$t1" -v b="$t2" 'BEGIN {print b - a}')" \
		'BEGIN {printf "%.1f %.2f\n", tps, (tps > 0 && s > 0) ? c / hz * 1e6 / (tps * s) : 0}'
}
declare -A results cpu
run() {		# run CONFIGURATION AUDIT
	local out
	out=$(tps "$2")
	results[$1]+="${out%% *} "
	cpu[$1]+="${out##* } "
}
tps off >/dev/null		# warm-up (each run's backends load the consent cache anew)
for r in $(seq "$ROUNDS"); do
	if [[ -n ${BASE_SO:-} ]]; then
		restart_with "$BASE_SO"
		run base off
		restart_with "$OURS"
	fi
	destination file || exit 1
	if [[ -n ${DIRECT:-} ]]; then
		buffer_size 0
		run direct all
		buffer_size 1MB
	fi
	if [[ -n ${OLD_SO:-} ]]; then
		restart_with "$OLD_SO"
		run old all
		restart_with "$OURS"
	fi
	run off off
	run file all
	destination log || exit 1
	run log all
	echo "round $r: ${BASE_SO:+base ${results[base]} }off ${results[off]} file ${results[file]} ${OLD_SO:+old ${results[old]} }${DIRECT:+direct ${results[direct]} }log ${results[log]} (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
done
median() { tr ' ' '\n' <<<"${results[$1]}" | grep . | bench_median; }
median_cpu() { tr ' ' '\n' <<<"${cpu[$1]}" | grep . | bench_median; }
off=$(median off)
off_cpu=$(median_cpu off)
row() {		# row LABEL CONFIGURATION
	local t c
	t=$(median "$2") c=$(median_cpu "$2")
	printf '%-36s %12s %8s %14s %8s\n' "$1" "$t" "$(awk -v a="$t" -v o="$off" 'BEGIN {printf "%.3f", a / o}')" \
		"$c" "$(awk -v a="$c" -v o="$off_cpu" 'BEGIN {printf "%+.2f", a - o}')"
}
echo "pgbench PK lookups, $SCALE subjects, $CLIENTS clients, ${PGBENCH_SECONDS}s x $ROUNDS interleaved rounds (medians)"
printf '%-36s %12s %8s %14s %8s\n' configuration "TPS" "/ off" "CPU µs/tx" "- off"
row "audit = off (usage counters on)" off
row "audit = all, destination = file" file
[[ -n ${OLD_SO:-} ]] && row "  the same, with OLD_SO" old
[[ -n ${DIRECT:-} ]] && row "  the same, written by each backend" direct
row "audit = all, destination = log" log
[[ -n ${BASE_SO:-} ]] && row "without audit.c (BASE_SO)" base
echo "audit lines written: $(cat "$PGDATA_DIR"/profile_guard_audit/* 2>/dev/null | wc -l) in files, $(grep -c 'profile_guard audit:' "$CLUSTER_DIR/server.log") in the server log"
