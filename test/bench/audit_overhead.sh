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
CREATE EXTENSION profile_guard;
CREATE ROLE bench_app LOGIN;
SELECT profile_guard.define_tag('interest.sports', 'preference');
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_tag('behavior.visits', 'behavior');
SELECT profile_guard.define_purpose('recommendation', 'recommend',
	ARRAY['interest.*', 'behavior.visits']);
SELECT profile_guard.allow_purpose('bench_app', 'recommendation');
INSERT INTO profile_guard.subject (subject, birth_date)
SELECT i::text, current_date - 30 * 365 FROM generate_series(1, $SCALE) i;
INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags)
SELECT i::text, 'recommendation', 1, 'grant', ARRAY['interest.*', 'behavior.visits']
FROM generate_series(1, $SCALE) i WHERE i % 4 <> 0;
SELECT profile_guard._policy_changed();
CREATE TABLE profiles (id bigint PRIMARY KEY, sports text, music text, visits int);
INSERT INTO profiles SELECT i, 'sport', 'music', i % 40 FROM generate_series(1, $SCALE) i;
SELECT profile_guard.protect('profiles', 'id');
SELECT profile_guard.classify('profiles', c, t) FROM (VALUES ('sports', 'interest.sports'),
	('music', 'interest.music'), ('visits', 'behavior.visits')) v(c, t);
GRANT SELECT ON profiles TO bench_app;
VACUUM ANALYZE;
SQL
cat > "$CLUSTER_DIR/pk.sql" <<PGB
\set id random(1, $SCALE)
SELECT sports, music, visits FROM profiles WHERE id = :id;
PGB

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
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

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
off=$(tr ' ' '\n' <<<"${results[off]}" | grep . | median)
all=$(tr ' ' '\n' <<<"${results[all]}" | grep . | median)
echo "pgbench PK lookups, $SCALE subjects, $CLIENTS clients, ${PGBENCH_SECONDS}s x $ROUNDS rounds (median TPS)"
echo "  audit = off (usage counters on): $off"
echo "  audit = all:                     $all   (all / off = $(awk -v a="$all" -v o="$off" 'BEGIN {printf "%.3f", a / o}'))"
if [[ -n ${BASE_SO:-} ]]; then
	base=$(tr ' ' '\n' <<<"${results[base]}" | grep . | median)
	echo "  without audit.c (BASE_SO):       $base   (off / base = $(awk -v a="$off" -v b="$base" 'BEGIN {printf "%.3f", a / b}'), all / base = $(awk -v a="$all" -v b="$base" 'BEGIN {printf "%.3f", a / b}'))"
fi
echo "  audit lines written: $(grep -c 'profile_guard audit:' "$CLUSTER_DIR/server.log")"
