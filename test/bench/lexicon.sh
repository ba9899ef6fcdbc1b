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
#   - unstamped: as text, in a table protected without one that opted out
#     of collection stamps (stamp_collection => false),
# each also into an unprotected table of the same shape.  The other guarded
# tables are protected without a collected_at column, so with collection
# stamps (the default: each write also logs its subject and tag in
# profile_guard.collection_stamp_log, which is only appended to, so it is
# not emptied between runs; docs/erasure.md).  Then the sweep's part of the stamps: merging the
# log of one run of the text table (every pair a new stamp, then every pair
# an existing one) into profile_guard.collection_stamp.
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
CREATE TABLE g_unstamped (id bigint, music text);
CREATE TABLE p_unstamped (id bigint, music text);
SELECT profile_guard.protect(t, 'id') FROM unnest(ARRAY['g_text', 'g_int', 'g_sens']) t;
SELECT profile_guard.classify('g_text', 'music', 'interest.music');
SELECT profile_guard.classify('g_int', 'visits', 'behavior.visits');
SELECT profile_guard.classify('g_sens', 'health', 'health.condition');
SELECT profile_guard.protect('g_long', 'id', tag_column => 'tag', value_column => 'value');
SELECT profile_guard.protect('g_collected', 'id', 'collected');
SELECT profile_guard.classify('g_collected', 'music', 'interest.music');
SELECT profile_guard.protect('g_unstamped', 'id', stamp_collection => false);
SELECT profile_guard.classify('g_unstamped', 'music', 'interest.music');
VACUUM ANALYZE;
SQL

timed() {
	local query=$1 args=(-c '\timing on')
	for _ in $(seq "$RUNS"); do args+=(-c "$query"); done
	"${PSQL[@]}" -At "${args[@]}" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | bench_median
}
ins() {	# $1 table, $2 columns' values
	timed "TRUNCATE $1; INSERT INTO $1 SELECT i, $2 FROM generate_series(1, $SCALE) i WHERE i % 4 <> 0"
}

echo "| insert ($((SCALE * 3 / 4)) rows) | guarded | unprotected | ratio |"
echo "|---|---|---|---|"
for kind in text int sens long collected unstamped; do
	case $kind in
		text) v="'music-style-' || i" ;;
		int) v="i % 100" ;;
		sens) v="'condition-' || i" ;;
		long) v="'interest.music', 'music-style-' || i" ;;
		collected | unstamped) v="'music-style-' || i" ;;
	esac
	g=$(ins "g_$kind" "$v")
	p=$(ins "p_$kind" "$v")
	awk -v k="$kind" -v g="$g" -v p="$p" 'BEGIN { printf "| %s | %.0f ms | %.0f ms | %.2f |\n", k, g, p, g / p }'
done

# the merge: the log of one run of the text table into collection_stamp,
# emptied first (every pair a new stamp), then not (every pair updates one)
merge_ms() {	# $1: also empty collection_stamp first
	local sql=""
	for _ in $(seq "$RUNS"); do
		sql+="\\timing off
TRUNCATE g_text, profile_guard.collection_stamp_log${1:+, profile_guard.collection_stamp};
INSERT INTO g_text SELECT i, 'music-style-' || i FROM generate_series(1, $SCALE) i WHERE i % 4 <> 0;
\\timing on
SELECT profile_guard._merge_collection_stamps();
"
	done
	"${PSQL[@]}" -At <<<"$sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | bench_median
}
pairs=$((SCALE * 3 / 4))
echo
echo "| sweep: merge the log ($pairs pairs) | time | per pair |"
echo "|---|---|---|"
for kind in new existing; do
	if [[ $kind == new ]]; then t=$(merge_ms empty); else t=$(merge_ms); fi
	awk -v k="$kind" -v t="$t" -v n="$pairs" 'BEGIN { printf "| into %s stamps | %.0f ms | %.1f µs |\n", k, t, t * 1000 / n }'
done
