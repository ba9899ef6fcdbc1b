#!/usr/bin/env bash
# test/bench/recipient_use.sh — the cost of recording what was provided to a
# recipient, per person (docs/accountability.md): the same reads under a
# purpose without a recipient and under one with a recipient (whose served
# cells are counted per subject and written to recipient_use at commit), on
# the same data in one run.  Prints a Markdown table of ratios (median of
# RUNS runs, each in a new connection).
#   bash test/bench/recipient_use.sh            1,000,000 subjects
#   bash test/bench/recipient_use.sh --quick    100,000 subjects
#   SCALE=N RUNS=R                              override
#   SETUP_ONLY=1                                load the data, leave the cluster running
# Data: bench_profiles_sql's set; purpose share:acme is a copy of
# recommendation with recipient acme, and every consent of recommendation
# is given to it too.  Reads: every consented row's three tags (3 cells a
# subject), and a primary-key look-up of 1,000 subjects.  The record is
# emptied before each run, so each run writes one row per subject.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/bench_data.sh

SCALE=${SCALE:-1000000}; RUNS=${RUNS:-3}
if [[ ${1:-} == --quick ]]; then SCALE=${SCALE_QUICK:-100000}; fi

bench_cluster_start recipient_use || exit 1

echo "generating $SCALE subjects (75% consent)..." >&2
"${PSQL[@]}" >/dev/null <<SQL
$(bench_profiles_sql "$SCALE")
SELECT profile_guard.define_recipient('acme', 'CN', 'Acme Analytics');
SELECT profile_guard.define_purpose('share:acme', 'share with Acme', ARRAY['interest.*', 'behavior.visits'],
									recipient => 'acme');
SELECT profile_guard.allow_purpose('bench_app', 'share:acme');
INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags)
SELECT subject, 'share:acme', 1, 'grant', tags FROM profile_guard.consent WHERE purpose = 'recommendation';
SELECT profile_guard._policy_changed();
VACUUM ANALYZE;
SQL
bench_setup_only

ms() { sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }
# $1 = purpose, $2 = the timed statement; each run in a new connection,
# after a first statement under the purpose (the answers are loaded)
run() {
	for _ in $(seq "$RUNS"); do
		"${PSQL[@]}" -c "TRUNCATE profile_guard.recipient_use" >/dev/null
		"${PSQL[@]}" -At -c "SET ROLE bench_app" -c "SET profile_guard.purpose = '$1'" \
			-c "SELECT sports FROM profiles WHERE id = 1" -c '\timing on' -c "$2" | ms | tail -1
	done | bench_median
}
ALL="SELECT count(sports) + count(music) + count(visits) FROM profiles"
PK="SELECT count(sports) + count(music) + count(visits) FROM profiles WHERE id IN (SELECT (i * 7919) % $SCALE + 1 FROM generate_series(1, 1000) i)"

all_plain=$(run recommendation "$ALL"); all_rec=$(run share:acme "$ALL")
pk_plain=$(run recommendation "$PK"); pk_rec=$(run share:acme "$PK")
rows=$("${PSQL[@]}" -At -c "SELECT count(*) FROM profile_guard.recipient_use")

echo
echo "recipient record, $SCALE subjects, median of $RUNS runs (ms); each statement commits"
echo
echo "| read | without recipient | with recipient (recorded) | ratio |"
echo "|---|---|---|---|"
awk -v a="$all_plain" -v b="$all_rec" -v s="$SCALE" 'BEGIN { printf "| every consented row, 3 cells (%d subjects) | %.1f | %.1f | %.2f |\n", s * 3 / 4, a, b, b / a }'
awk -v a="$pk_plain" -v b="$pk_rec" 'BEGIN { printf "| 1,000 subjects by primary key | %.1f | %.1f | %.2f |\n", a, b, b / a }'
echo
echo "(rows in recipient_use after the last run: $rows)"
