#!/usr/bin/env bash
# test/bench/bulk_build.sh — the consent cache's bulk load: the rules in C
# for every subject in one pass (pfg_rules_evaluate_all, through
# _bulk_answers()) against the SQL aggregate over tag_state() that the cache
# ran before, on the data of run.sh, in one run.  Prints a Markdown table of
# seconds (median of RUNS runs) and ratios, and the evaluator's memory.
#   bash test/bench/bulk_build.sh      1,000,000 subjects
#   SCALE=N RUNS=R                     override (default 3 runs)
#   SKIP_CACHE=1                       leave out the cache load through a guarded table
#   SETUP_ONLY=1                       load the data, leave the cluster running
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/bench_data.sh

SCALE=${SCALE:-1000000}; RUNS=${RUNS:-3}

bench_cluster_start bulk || exit 1

echo "generating $SCALE subjects (75% consent, 5% minors, 2% opted out)..." >&2
# run.sh's catalog; the guarded table (one tag column) only for the cache load
columns=sports
[[ -n ${SKIP_CACHE:-} ]] && columns=
bench_profiles_sql "$SCALE" sensitive subjects=mixed "columns=$columns" | "${PSQL[@]}" >/dev/null
"${PSQL[@]}" -c "VACUUM ANALYZE"
bench_setup_only

# one run of a query in a new session (as a backend's first bulk load):
# "wall cpu eval read bytes per_subject", wall and backend CPU (user +
# system) in seconds, then the evaluator's own DEBUG1 report, if any
run_once() {
	"${PSQL[@]}" -At -c "SET client_min_messages = debug1" -c "SET log_statement_stats = on" \
		-c '\timing on' -c "$1" 2>&1 | awk '
	/s user, .* s system, .* s elapsed/ { sub(/^!/, ""); cpu = $1 + $4 }
	/^Time: / { wall = $2 / 1000 }
	/profile_guard bulk rules under/ {
		match($0, /[0-9.]+ s \(reading [0-9.]+ s\), [0-9]+ bytes of memory \([0-9.]+ a subject\)/)
		split(substr($0, RSTART, RLENGTH), f, /[ (),]+/)
		ev = f[1]; rd = f[4]; mem = f[6]; per = f[10]
	}
	END { printf "%.3f %.3f %s %s %s %s\n", wall, cpu, ev == "" ? "-" : ev, rd == "" ? "-" : rd, mem == "" ? "-" : mem, per == "" ? "-" : per }'
}
# median of RUNS runs, column by column
measure() {
	for _ in $(seq "$RUNS"); do run_once "$1"; done | awk -v n="$RUNS" '
	{ for (i = 1; i <= NF; i++) v[i, NR] = $i; nf = NF }
	END {
		for (i = 1; i <= nf; i++) {
			for (r = 1; r <= n; r++) a[r] = v[i, r]
			for (x = 1; x <= n; x++) for (y = x + 1; y <= n; y++) if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
			printf "%s%s", a[int((n + 1) / 2)], i < nf ? " " : "\n"
		}
	}'
}

# the cache's bulk load before: one set-based query over tag_state()
SQL_PURPOSE="SELECT count(*) FROM (SELECT s.subject, array_agg(s.tag_id) FILTER (WHERE s.effective), min(s.valid_until)
	FROM profile_guard.tag_state('recommendation', NULL, false) s GROUP BY s.subject) x"
SQL_COLLECT="SELECT count(*) FROM (SELECT s.subject, array_agg(DISTINCT s.tag_id) FILTER (WHERE s.effective), min(s.valid_until)
	FROM profile_guard.purpose p CROSS JOIN LATERAL profile_guard.tag_state(p.purpose, NULL, false) s
	WHERE p.retired_at IS NULL GROUP BY s.subject) x"
C_PURPOSE="SELECT count(*) FROM profile_guard._bulk_answers('recommendation')"
C_COLLECT="SELECT count(*) FROM profile_guard._bulk_answers(NULL)"

echo "1. the SQL aggregate over tag_state() (baseline), $RUNS runs each" >&2
read -r sp_wall sp_cpu _ <<<"$(measure "$SQL_PURPOSE")"
read -r sc_wall sc_cpu _ <<<"$(measure "$SQL_COLLECT")"
echo "2. _bulk_answers(), $RUNS runs each" >&2
read -r cp_wall cp_cpu cp_eval cp_read cp_mem cp_per <<<"$(measure "$C_PURPOSE")"
read -r cc_wall cc_cpu cc_eval cc_read cc_mem cc_per <<<"$(measure "$C_COLLECT")"
n_subjects=$("${PSQL[@]}" -At -c "$C_PURPOSE")
n_events=$("${PSQL[@]}" -At -c "SELECT count(*) FROM profile_guard.consent")
# the answers agree (the suites check it subject by subject on their data)
same=$("${PSQL[@]}" -At -c "SELECT count(*) FROM (
	(SELECT s.subject, array_agg(s.tag_id ORDER BY s.tag_id) FILTER (WHERE s.effective), min(s.valid_until)
	 FROM profile_guard.tag_state('recommendation', NULL, false) s GROUP BY s.subject
	 EXCEPT ALL SELECT * FROM profile_guard._bulk_answers('recommendation'))
	UNION ALL
	(SELECT * FROM profile_guard._bulk_answers('recommendation')
	 EXCEPT ALL SELECT s.subject, array_agg(s.tag_id ORDER BY s.tag_id) FILTER (WHERE s.effective), min(s.valid_until)
	 FROM profile_guard.tag_state('recommendation', NULL, false) s GROUP BY s.subject)) d")

cache_first=""; cache_warm=""; cache_eval=""
if [[ -z ${SKIP_CACHE:-} ]]; then
	echo "3. the consent cache's bulk load (first gated full scan)" >&2
	Q="SELECT count(sports) FROM profiles"
	out=$("${PSQL[@]}" -At -c "SET client_min_messages = debug1" -c "SET ROLE bench_app" \
		-c "SET profile_guard.purpose = 'recommendation'" -c '\timing on' -c "$Q" -c "$Q" 2>&1)
	cache_first=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | sed -n 1p)
	cache_warm=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | sed -n 2p)
	cache_eval=$(sed -n 's/.*profile_guard bulk rules under .*: [0-9]* subjects, [0-9]* events, \([0-9.]*\) s .*/\1/p' <<<"$out" | head -1)
fi

awk -v s="$SCALE" -v r="$RUNS" -v ns="$n_subjects" -v ne="$n_events" -v same="$same" \
	-v spw="$sp_wall" -v spc="$sp_cpu" -v scw="$sc_wall" -v scc="$sc_cpu" \
	-v cpw="$cp_wall" -v cpc="$cp_cpu" -v cpe="$cp_eval" -v cpr="$cp_read" -v cpm="$cp_mem" -v cpp="$cp_per" \
	-v ccw="$cc_wall" -v ccc="$cc_cpu" -v cce="$cc_eval" -v ccr="$cc_read" -v ccm="$cc_mem" -v ccp="$cc_per" \
	-v cf="$cache_first" -v cw="$cache_warm" -v ce="$cache_eval" '
function row(name, sql, c, unit) {
	printf "| %s | %.3f s | %.3f s | %.1f× | %.3f s |\n", name, sql, c, sql / c, c * 1000000 / s
}
BEGIN {
	printf "\n%d subjects, %d with a consent event (%d events); each figure the median of %d runs, each run in a new session\n\n", s, ns, ne, r
	print "| bulk answers for | SQL over tag_state() | _bulk_answers() | ratio | _bulk_answers() per 1,000,000 subjects |"
	print "|---|---|---|---|---|"
	row("purpose recommendation (wall)", spw, cpw)
	row("purpose recommendation (backend CPU)", spc, cpc)
	row("NULL, what may be collected (wall)", scw, ccw)
	row("NULL, what may be collected (backend CPU)", scc, ccc)
	printf "\nthe evaluator alone (pfg_rules_evaluate_all, wall): %.3f s for the purpose (reading the catalog %.3f s), %.3f s for NULL (reading %.3f s)\n", cpe, cpr, cce, ccr
	printf "evaluator memory: %.1f MB for the purpose, %.1f bytes a subject answered; %.1f MB, %.1f bytes a subject for NULL\n", cpm / 1048576, cpp, ccm / 1048576, ccp
	printf "answers that differ from tag_state(): %s\n", same
	if (cf != "")
		printf "consent cache: first gated full scan (loads the cache) %.3f s, of which the evaluator with the cache filling its entries %.3f s; the next scan %.3f s\n", cf / 1000, ce, cw / 1000
}'
