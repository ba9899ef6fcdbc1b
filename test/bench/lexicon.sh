#!/usr/bin/env bash
# test/bench/lexicon.sh — the cost of checking tag values against the
# prohibited lexicon on the write path (rule 13), against the same inserts
# into an unprotected table and into a guarded table whose tag values the
# lexicon does not read.  Prints a Markdown table of times (median of RUNS).
#   bash test/bench/lexicon.sh           100,000 subjects
#   bash test/bench/lexicon.sh --quick   20,000 subjects
#   SCALE=N RUNS=R                       override
# Data: the data set of bench_data.sh; the inserts write one row per
# consenting subject (three in four) with
#   - text: a general tag in a text column (checked against the lexicon),
#   - int: a general tag in an integer column (not checked: not text),
#   - sensitive: a sensitive tag (encrypted, not checked),
#   - long: a general tag value in a long-shape table (checked),
#   - collected: as text, in a table protected with a collected_at column,
#   - stamped: as text, in a table protected without one but with
#     collection stamps (stamp_collection => true: each write also stamps
#     its subject and tag in profile_guard.collection_stamp, every pair a
#     new one: the stamps are emptied before each run; docs/erasure.md),
# each also into an unprotected table of the same shape.  The other guarded
# tables are protected without a collected_at column and without stamps
# (the default).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/bench_data.sh

SCALE=${SCALE:-100000}; RUNS=${RUNS:-3}
if [[ ${1:-} == --quick ]]; then SCALE=${SCALE_QUICK:-20000}; fi

bench_cluster_start lexicon || exit 1

echo "generating $SCALE subjects..." >&2
"${PSQL[@]}" >/dev/null <<SQL
$(bench_profiles_sql "$SCALE" sensitive)
CREATE TABLE g_text (id bigint, music text);
CREATE TABLE p_text (id bigint, music text);
CREATE TABLE g_int (id bigint, visits int);
CREATE TABLE p_int (id bigint, visits int);
CREATE TABLE g_sens (id bigint, health text);
CREATE TABLE p_sens (id bigint, health text);
CREATE TABLE g_long (id bigint, tag text, value text);
CREATE TABLE p_long (id bigint, tag text, value text);
CREATE TABLE g_collected (id bigint, music text, collected timestamptz NOT NULL DEFAULT now());
CREATE TABLE p_collected (id bigint, music text, collected timestamptz NOT NULL DEFAULT now());
CREATE TABLE g_stamped (id bigint, music text);
CREATE TABLE p_stamped (id bigint, music text);
SELECT profile_guard.protect(t, 'id') FROM unnest(ARRAY['g_text', 'g_int', 'g_sens']) t;
SELECT profile_guard.classify('g_text', 'music', 'interest.music');
SELECT profile_guard.classify('g_int', 'visits', 'behavior.visits');
SELECT profile_guard.classify('g_sens', 'health', 'health.condition');
SELECT profile_guard.protect('g_long', 'id', tag_column => 'tag', value_column => 'value');
SELECT profile_guard.protect('g_collected', 'id', 'collected');
SELECT profile_guard.classify('g_collected', 'music', 'interest.music');
SELECT profile_guard.protect('g_stamped', 'id', stamp_collection => true);
SELECT profile_guard.classify('g_stamped', 'music', 'interest.music');
VACUUM ANALYZE;
SQL

timed() {
	local query=$1 args=(-c '\timing on')
	for _ in $(seq "$RUNS"); do args+=(-c "$query"); done
	"${PSQL[@]}" -At "${args[@]}" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | bench_median
}
ins() {	# $1 table, $2 columns' values, $3 another table to empty first
	timed "TRUNCATE $1${3:+, $3}; INSERT INTO $1 SELECT i, $2 FROM generate_series(1, $SCALE) i WHERE i % 4 <> 0"
}

echo "| insert ($((SCALE * 3 / 4)) rows) | guarded | unprotected | ratio |"
echo "|---|---|---|---|"
for kind in text int sens long collected stamped; do
	case $kind in
		text) v="'music-style-' || i" ;;
		int) v="i % 100" ;;
		sens) v="'condition-' || i" ;;
		long) v="'interest.music', 'music-style-' || i" ;;
		collected | stamped) v="'music-style-' || i" ;;
	esac
	if [[ $kind == stamped ]]; then
		g=$(ins "g_$kind" "$v" profile_guard.collection_stamp)
	else
		g=$(ins "g_$kind" "$v")
	fi
	p=$(ins "p_$kind" "$v")
	awk -v k="$kind" -v g="$g" -v p="$p" 'BEGIN { printf "| %s | %.0f ms | %.0f ms | %.2f |\n", k, g, p, g / p }'
done
