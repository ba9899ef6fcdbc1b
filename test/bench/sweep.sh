#!/usr/bin/env bash
# test/bench/sweep.sh — the erasure sweep against a plain DELETE.
#
# A long-shape table of SCALE expired rows (collected 60 days ago, purpose
# retention 30 days) plus SCALE/10 recent rows, 10 rows per subject, with an
# index on the subject.  The background worker (the way erasure runs in
# production: batches of profile_guard.sweep_batch rows, one transaction
# each) erases the expired rows; on an identical, unguarded copy one plain
# DELETE removes the same rows.  Median of 3 runs of each; prints the ratio
# (target <= 2) and the longest batch, start to commit (target <= 1 s), an
# upper bound of how long a batch holds its locks.
#   bash test/bench/sweep.sh [SCALE]     default 1,000,000
#   bash test/bench/sweep.sh --quick     100,000
#   BATCH=N                              profile_guard.sweep_batch (10000)
#   GENERAL=1                            subject 1 also withdraws interest.*: each
#                                        batch then also runs the general
#                                        statement for the due subjects' rows
set -uo pipefail
cd "$(dirname "$0")/../.."
unset PGTEST_PORT
. test/lib/cluster.sh
. test/lib/bench_data.sh

SCALE=1000000
case ${1:-} in
	--quick) SCALE=100000 ;;
	'') ;;
	*) SCALE=$1 ;;
esac
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [SCALE | --quick]" >&2; exit 2; }
BATCH=${BATCH:-10000}
RUNS=3

bench_cluster_start sweepbench "autovacuum = off" "profile_guard.database = 'bench'" \
	"profile_guard.sweep_interval = 3600" "profile_guard.sweep_batch = $BATCH" || exit 1
PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d bench)

echo "generating $SCALE expired rows (+ $((SCALE / 10)) recent), $((SCALE / 10 + SCALE / 100)) subjects..." >&2
"${PSQL[@]}" >/dev/null <<SQL
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('behavior.visit', 'behavior');
SELECT profile_guard.define_tag('interest.sports', 'preference');
SELECT profile_guard.define_purpose('ads', 'advertising', ARRAY['behavior.*', 'interest.*'],
								   retention => '30 days');
-- the catalog in bulk, as a migration would fill it
INSERT INTO profile_guard.subject (subject)
SELECT i::text FROM generate_series(1, $((SCALE / 10 + SCALE / 100))) i;
INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags)
SELECT i::text, 'ads', 1, 'grant', ARRAY['behavior.*', 'interest.*']
FROM generate_series(1, $((SCALE / 10 + SCALE / 100))) i;
SELECT profile_guard._policy_changed();
SELECT profile_guard.withdraw_consent('1', 'ads', ARRAY['interest.*']) WHERE ${GENERAL:-0} = 1;
CREATE TABLE template AS
SELECT (i / 10)::bigint AS uid, CASE WHEN i % 3 = 0 THEN 'interest.sports' ELSE 'behavior.visit' END AS tag,
	   'value ' || i AS value,
	   CASE WHEN i <= $SCALE THEN now() - interval '60 days' ELSE now() END AS collected
FROM generate_series(1, $SCALE + $SCALE / 10) i;
SQL

# the worker connects once the database exists (it is restarted every 10 s
# until then) and sweeps once; from then on it waits for the reload
for ((i = 0; i < 600; i++)); do
	[[ $("${PSQL[@]}" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'
		AND datname = 'bench' AND state = 'idle'") == 1 ]] && break
	sleep 0.1
done

# fresh copy of the data set as table $1
make_table() {
	"${PSQL[@]}" >/dev/null <<SQL
DROP TABLE IF EXISTS $1;
CREATE TABLE $1 (uid bigint NOT NULL, tag text NOT NULL, value text, collected timestamptz NOT NULL);
INSERT INTO $1 SELECT * FROM template;
CREATE INDEX ON $1 (uid);
VACUUM ANALYZE $1;
CHECKPOINT;
SQL
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

sweep_ms=(); delete_ms=(); longest_ms=()
for ((r = 1; r <= RUNS; r++)); do
	# the sweep, by the worker: woken by a reload
	make_table events
	"${PSQL[@]}" -c "SELECT profile_guard.protect('events', 'uid', 'collected', 'tag', 'value')" >/dev/null
	before=$(grep -c 'sweep erased' "$CLUSTER_DIR/server.log")
	"${PSQL[@]}" -c "SELECT pg_reload_conf()" >/dev/null
	for ((i = 0; i < 6000; i++)); do
		[[ $(grep -c 'sweep erased' "$CLUSTER_DIR/server.log") -gt $before ]] && break
		sleep 0.1
	done
	line=$(grep 'sweep erased' "$CLUSTER_DIR/server.log" | tail -1)
	[[ $line =~ sweep\ erased\ ([0-9]+)\ rows\ in\ ([0-9]+)\ batches,\ ([0-9.]+)\ ms,\ longest\ batch\ ([0-9.]+)\ ms ]] ||
		{ echo "error: no sweep report in the server log" >&2; exit 1; }
	erased=${BASH_REMATCH[1]}
	left=$("${PSQL[@]}" -c "SELECT count(*) FROM events WHERE collected < now() - interval '30 days'")
	[[ $erased -eq $SCALE && $left -eq 0 ]] || { echo "error: the sweep erased $erased rows, $left expired left" >&2; exit 1; }
	sweep_ms+=("${BASH_REMATCH[3]}"); longest_ms+=("${BASH_REMATCH[4]}")
	echo "run $r: sweep $SCALE rows in ${BASH_REMATCH[2]} batches: ${BASH_REMATCH[3]} ms, longest batch ${BASH_REMATCH[4]} ms" >&2
	"${PSQL[@]}" -c "SELECT profile_guard.unprotect('events')" -c "DROP TABLE events" >/dev/null

	# the baseline: one plain DELETE of the same rows on an identical table
	make_table plain
	t=$("${PSQL[@]}" -c '\timing on' -c "DELETE FROM plain WHERE collected < now() - interval '30 days'" |
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
	n=$("${PSQL[@]}" -c "SELECT count(*) FROM plain")
	[[ $n -eq $((SCALE / 10)) ]] || { echo "error: the DELETE left $n rows" >&2; exit 1; }
	delete_ms+=("$t")
	echo "run $r: plain DELETE: $t ms" >&2
	"${PSQL[@]}" -c "DROP TABLE plain" >/dev/null
done

s=$(printf '%s\n' "${sweep_ms[@]}" | median)
d=$(printf '%s\n' "${delete_ms[@]}" | median)
l=$(printf '%s\n' "${longest_ms[@]}" | sort -n | tail -1)
ratio=$(awk -v s="$s" -v d="$d" 'BEGIN {printf "%.2f", s / d}')
echo
echo "| measure | value | target | result |"
echo "|---|---|---|---|"
echo "| sweep of $SCALE expired rows (worker, batches of $BATCH$([[ ${GENERAL:-0} == 1 ]] && echo ', one subject due')), median of $RUNS | $s ms | | |"
echo "| plain DELETE of the same rows, median of $RUNS | $d ms | | |"
echo "| sweep / DELETE | $ratio | <= 2 | $(awk -v r="$ratio" 'BEGIN {print (r <= 2) ? "PASS" : "FAIL"}') |"
echo "| longest batch, start to commit (all runs) | $l ms | <= 1000 ms | $(awk -v l="$l" 'BEGIN {print (l <= 1000) ? "PASS" : "FAIL"}') |"
