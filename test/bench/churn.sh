#!/usr/bin/env bash
# test/bench/churn.sh — the gate while consents change, on the same data in
# one run: a gated aggregate warm, right after one consent change, and while
# another client applies 100 and 1,000 consent changes a second; primary-key
# look-ups (pgbench) with and without that churn; the bulk build of a
# purpose's answers after a policy change, and their memory per subject.
# Prints a Markdown table of ratios (medians) and writes them as CSV to
# test/bench/churn.csv.
#   bash test/bench/churn.sh            1,000,000 subjects
#   bash test/bench/churn.sh --quick    100,000 subjects, shorter runs
#   SCALE=N RUNS=R PGBENCH_SECONDS=S    override
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/bench_data.sh

SCALE=${SCALE:-1000000}; RUNS=${RUNS:-7}; PGBENCH_SECONDS=${PGBENCH_SECONDS:-12}
if [[ ${1:-} == --quick ]]; then SCALE=${SCALE_QUICK:-100000}; RUNS=5; PGBENCH_SECONDS=6; fi

bench_cluster_start churn_bench || exit 1

echo "generating $SCALE subjects (three general tags, 75% consent)..." >&2
"${PSQL[@]}" >/dev/null <<SQL
$(bench_profiles_sql "$SCALE" plain_copy)
VACUUM ANALYZE;
SQL

P="SET profile_guard.purpose = 'recommendation'"
AGG="SELECT avg(visits), count(music) FROM profiles"
SERIAL="SET max_parallel_workers_per_gather = 0"
times() { sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }

# the consent changes another client makes: grants and withdrawals of
# random subjects, half and half
cat > "$CLUSTER_DIR/grant.sql" <<PGB
\set s random(1, $SCALE)
SELECT profile_guard.grant_consent(:s::text, 'recommendation', ARRAY['interest.*', 'behavior.visits']);
PGB
cat > "$CLUSTER_DIR/withdraw.sql" <<PGB
\set s random(1, $SCALE)
SELECT profile_guard.withdraw_consent(:s::text, 'recommendation');
PGB
churn_start() {	# $1 changes a second, for $2 seconds
	"$PGBIN/pgbench" -n -c 2 -j 2 -R "$1" -T "$2" -f "$CLUSTER_DIR/grant.sql@1" -f "$CLUSTER_DIR/withdraw.sql@1" bench \
		> "$CLUSTER_DIR/churn_$1.out" 2>&1 &
	CHURN_PID=$!
	sleep 2
}
churn_rate() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$CLUSTER_DIR/churn_$1.out" | head -1; }

# one long-lived reader session: warm answers, then RUNS statements
reader_times() {	# $@: psql -c commands between the timed statements
	local args=(-c "SET ROLE bench_app" -c "$P" -c "$SERIAL" -c "$AGG" -c "$AGG" -c '\timing on')
	for _ in $(seq "$RUNS"); do args+=("$@" -c "$AGG"); done
	"${PSQL[@]}" -At "${args[@]}" | times
}

echo "1. gated aggregate: warm, after one change, during churn" >&2
warm=$(reader_times | bench_median)
PLAIN_AGG="SELECT avg(visits), count(music) FROM profiles_plain"
floor_args=(-c "SET ROLE bench_app" -c "$SERIAL" -c "$PLAIN_AGG" -c '\timing on')
for _ in $(seq "$RUNS"); do floor_args+=(-c "$PLAIN_AGG"); done
serial_floor=$("${PSQL[@]}" -At "${floor_args[@]}" | times | bench_median)
# another session changes one consent and commits; then the timed statement
change="\\! $PGBIN/psql -X -q -At -d bench -c \"SELECT profile_guard.withdraw_consent((random() * $SCALE)::int::text, 'recommendation')\" > /dev/null"
after_one=$(reader_times -c "$change" | bench_median)
churn_start 100 $((RUNS * 3 + 30))
during_100=$(reader_times -c "SELECT pg_sleep(0.2)" | awk 'NR % 2 == 0' | bench_median)
wait "$CHURN_PID"; rate_100=$(churn_rate 100)
churn_start 1000 $((RUNS * 3 + 30))
during_1000=$(reader_times -c "SELECT pg_sleep(0.2)" | awk 'NR % 2 == 0' | bench_median)
wait "$CHURN_PID"; rate_1000=$(churn_rate 1000)

echo "2. primary-key look-ups (pgbench), without and with churn" >&2
bench_pk_script "$SCALE" > "$CLUSTER_DIR/pk.sql"
tps() {
	PGOPTIONS="-c profile_guard.purpose=recommendation" "$PGBIN/pgbench" -n -c 2 -j 1 -T "$PGBENCH_SECONDS" \
		-f "$CLUSTER_DIR/pk.sql" -U bench_app bench 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
# still and during 100 changes/s in turns, the medians of three of each, so
# that a drift of the machine's load falls on both sides alike
still_runs=""; churn_runs=""
for _ in 1 2 3; do
	still_runs+="$(tps)"$'\n'
	churn_start 100 $((PGBENCH_SECONDS + 5)); churn_runs+="$(tps)"$'\n'; wait "$CHURN_PID"
done
tps_still=$(printf '%s' "$still_runs" | median)
tps_100=$(printf '%s' "$churn_runs" | median)
churn_start 1000 $((PGBENCH_SECONDS + 5)); tps_1000=$(tps); wait "$CHURN_PID"

echo "3. bulk build after a policy change" >&2
policy="\\! $PGBIN/psql -X -q -At -d bench -c \"SELECT profile_guard._policy_changed()\" > /dev/null"
first_after_policy=$(reader_times -c "$policy" | bench_median)
build_ms=$(awk -v a="$first_after_policy" -v w="$warm" 'BEGIN {printf "%.0f", a - w}')
shared=$("${PSQL[@]}" -At -c "SELECT bytes FROM profile_guard.shared_answers() WHERE purpose = 'recommendation' AND state = 'published' ORDER BY generation DESC LIMIT 1")

awk -v s="$SCALE" -v r="$RUNS" -v warm="$warm" -v floor="$serial_floor" -v one="$after_one" \
	-v d100="$during_100" -v d1000="$during_1000" -v r100="${rate_100:-0}" -v r1000="${rate_1000:-0}" \
	-v ts="$tps_still" -v t100="$tps_100" -v t1000="$tps_1000" -v build="$build_ms" -v shared="${shared:-0}" '
function row(name, ours, base, ratio, target, pass) {
	printf "| %s | %s | %s | %.2f | %s | %s |\n", name, ours, base, ratio, target, target == "" ? "" : (pass ? "pass" : "FAIL")
	printf "%s,%s,%s,%.4f,%s,%s\n", name, ours, base, ratio, target, target == "" ? "" : (pass ? "pass" : "fail") >> "test/bench/churn.csv"
}
BEGIN {
	printf "metric,ours,baseline,ratio,target,result\n" > "test/bench/churn.csv"
	printf "\n%d subjects, medians of %d statements in one long-lived session\n\n", s, r
	print "| measure | profile_guard | baseline | ratio | target | result |"
	print "|---|---|---|---|---|---|"
	row("gated aggregate, warm / unguarded serial floor", warm " ms", floor " ms", warm / floor, "<= 1.5", warm / floor <= 1.5)
	row("right after one consent change / warm", one " ms", warm " ms", one / warm, "<= 1.2", one / warm <= 1.2)
	row("during " r100 " changes/s / warm", d100 " ms", warm " ms", d100 / warm, "<= 1.5", d100 / warm <= 1.5)
	row("during " r1000 " changes/s / warm", d1000 " ms", warm " ms", d1000 / warm, "", 1)
	row("PK TPS during " r100 " changes/s / still", t100, ts, t100 / ts, ">= 0.90", t100 / ts >= 0.9)
	row("PK TPS during " r1000 " changes/s / still", t1000, ts, t1000 / ts, "", 1)
	row("bulk build of one purpose (first statement after a policy change, less warm)", build " ms", "2000 ms per 1M", build / (2000 * s / 1000000), "<= 1", build <= 2000 * s / 1000000)
	printf "\nshared answers: %.1f MB, %.1f bytes per subject\n", shared / 1048576, shared / s
}'
