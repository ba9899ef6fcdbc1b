#!/usr/bin/env bash
# test/scenario/sweep_crash.sh — a crash in the middle of a large sweep loses
# nothing and counts nothing twice.  On a cluster of its own, the erasure
# worker sweeps 200,000 rows (about 150,000 due: retention expired, and one
# subject who asked for erasure) in batches of 500; the server is stopped
# with "pg_ctl stop -m immediate" part-way, restarted, and the worker
# finishes.  At every moment rows left + rows logged = rows at the start;
# at the end exactly the due rows are gone, the other rows are all there, and
# the log counts each erased row (and the key destruction, the tombstones,
# the forgetting) exactly once; the subject who asked is forgotten in the
# transaction that completes the request.  Uses test/lib/cluster.sh with PGBIN from the environment.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset PGTEST_PORT
. test/lib/cluster.sh

fail() { echo "error: $*" >&2; exit 1; }
ROWS=${ROWS:-200000}

pg_cluster_start crash "profile_guard.database = 'postgres'" \
	"profile_guard.sweep_interval = 1" "profile_guard.sweep_batch = 500" || exit 1
trap 'pg_cluster_stop' EXIT
PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres)

await() {
	local q=$1 limit=${2:-60} i
	for ((i = 0; i < limit * 10; i++)); do
		[[ $("${PSQL[@]}" -c "$q" 2>/dev/null) == t ]] && return 0
		sleep 0.1
	done
	return 1
}

# everything in one transaction: the worker sees all of it or nothing
"${PSQL[@]}" >/dev/null <<SQL
BEGIN;
CREATE EXTENSION profile_guard;
SET search_path = public, profile_guard;
SELECT define_tag('behavior.visit', 'behavior');
SELECT define_tag('interest.sports', 'preference');
SELECT define_purpose('ads', 'advertising', ARRAY['behavior.*', 'interest.*'], retention => '30 days');
SELECT register_subject(i::text) FROM generate_series(1, 1000) i;
SELECT grant_consent(i::text, 'ads', ARRAY['behavior.*', 'interest.*']) FROM generate_series(1, 1000) i;
CREATE TABLE events (uid int NOT NULL, tag text NOT NULL, value text, collected timestamptz NOT NULL);
-- 3 of 4 rows are older than the retention
INSERT INTO events
SELECT 1 + i % 1000, CASE WHEN i % 5 = 0 THEN 'interest.sports' ELSE 'behavior.visit' END,
	   'v' || i, CASE WHEN i % 4 = 0 THEN now() ELSE now() - interval '60 days' END
FROM generate_series(1, $ROWS) i;
SELECT protect('events', 'uid', 'collected', 'tag', 'value');
SELECT request_erasure('7');
CREATE TABLE expected AS
SELECT count(*) AS total,
	   count(*) FILTER (WHERE collected < now() - interval '30 days' OR uid = 7) AS due
FROM events;
COMMIT;
SQL
read -r total due < <("${PSQL[@]}" -F ' ' -c "SELECT total, due FROM expected")
echo "$total rows, $due due"

logged_q="SELECT coalesce(sum(rows), 0) FROM profile_guard.erasure_log WHERE relation = 'public.events'"
# the invariant, in one snapshot: rows left + rows logged = rows at the start
invariant_q="SELECT (SELECT count(*) FROM events) + ($logged_q) = (SELECT total FROM expected)"

# wait until the worker is part-way, watching its progress report
seen_progress=0
for ((i = 0; i < 1200; i++)); do
	n=$("${PSQL[@]}" -c "$logged_q")
	if [[ $seen_progress -eq 0 ]] && "${PSQL[@]}" -c "SELECT query FROM pg_stat_activity
			WHERE backend_type = 'profile_guard erasure worker'" | grep -q '^profile_guard sweep: public.events, batch'; then
		seen_progress=1
	fi
	(( n >= due / 10 )) && break
	sleep 0.05
done
(( n < due )) || fail "the sweep finished before the crash could interrupt it ($n of $due logged)"
(( n > 0 )) || fail "the sweep did not start"
pg_as_owner "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null
echo "immediate stop after about $n of $due rows"
[[ $seen_progress -eq 1 ]] || fail "pg_stat_activity never showed the sweep's progress"

pg_as_owner "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$CLUSTER_DIR/server.log" -w -t 60 start >/dev/null ||
	fail "restart failed: $(tail -20 "$CLUSTER_DIR/server.log")"
"${PSQL[@]}" -c "$invariant_q" | grep -qx t ||
	fail "after the crash, rows left + rows logged <> rows at the start"
echo "after restart: rows left, rows logged: $("${PSQL[@]}" -F ', ' -c "SELECT (SELECT count(*) FROM events), ($logged_q)")"

# the worker picks up where the crash left it
await "SELECT count(*) = 0 FROM events WHERE collected < now() - interval '30 days' OR uid = 7" 120 ||
	fail "the restarted worker did not finish: $("${PSQL[@]}" -c "SELECT count(*) FROM events WHERE collected < now() - interval '30 days' OR uid = 7") due rows left"
await "SELECT completed_at IS NOT NULL FROM profile_guard.erasure_request
	   WHERE subject_hash = profile_guard._subject_hash('7')" 30 ||
	fail "the erasure request was not completed"
# completed and forgotten in one transaction: the request keeps only the
# hash, and no table of the catalog names subject 7 any more (the log of
# changed subjects until the next sweep at most)
"${PSQL[@]}" -c "SELECT subject IS NULL AND forgotten_by IS NOT NULL OR subject IS NULL AND forgotten_by IS NULL
		FROM profile_guard.erasure_request" | grep -qx t || fail "the completed request still names its subject"
"${PSQL[@]}" -c "SELECT NOT EXISTS (SELECT 1 FROM profile_guard.subject WHERE subject = '7')
		AND NOT EXISTS (SELECT 1 FROM profile_guard.consent WHERE subject = '7')
		AND NOT EXISTS (SELECT 1 FROM profile_guard.subject_event WHERE subject = '7')
		AND NOT EXISTS (SELECT 1 FROM profile_guard.subject_key WHERE subject = '7')
		AND NOT EXISTS (SELECT 1 FROM profile_guard.tag_block WHERE subject = '7')" | grep -qx t ||
	fail "the catalog still holds subject 7 after its erasure was completed"
"${PSQL[@]}" -c "SELECT count(*) = 1 FROM profile_guard.erasure_log WHERE action = 'forget'
		AND subject_hash = profile_guard._subject_hash('7')" | grep -qx t || fail "the forgetting is not logged once"

"${PSQL[@]}" -c "$invariant_q" | grep -qx t || fail "rows left + rows logged <> rows at the start"
"${PSQL[@]}" -c "SELECT count(*) = (SELECT total - due FROM expected) FROM events" | grep -qx t ||
	fail "rows that were not due are missing: $("${PSQL[@]}" -c "SELECT count(*) FROM events")"
"${PSQL[@]}" -c "SELECT ($logged_q) = (SELECT due FROM expected)" | grep -qx t ||
	fail "the log counts $("${PSQL[@]}" -c "$logged_q") rows, $due were due"
"${PSQL[@]}" -c "SELECT sum(rows) FILTER (WHERE reason = 'request') = (SELECT count(*) FROM generate_series(1, $total) i WHERE 1 + i % 1000 = 7)
		FROM profile_guard.erasure_log WHERE relation = 'public.events'" | grep -qx t ||
	fail "the requested subject's rows are not all logged as request"
"${PSQL[@]}" -c "SELECT count(*) FILTER (WHERE action = 'destroy_key') = 1 AND count(*) FILTER (WHERE action = 'tombstone') = 1
		FROM profile_guard.erasure_log" | grep -qx t || fail "key destruction or tombstones logged more than once"
# a manual sweep now has nothing left to do
"${PSQL[@]}" -c "SELECT count(*) = 0 FROM profile_guard.sweep()" | grep -qx t || fail "a sweep after the worker still found work"
# and by now a later sweep has pruned the log of changed subjects too
"${PSQL[@]}" -c "SELECT NOT EXISTS (SELECT 1 FROM profile_guard.subject_change WHERE subject = '7')" | grep -qx t ||
	fail "the log of changed subjects still names subject 7"
# retention alone (the request is done): the per-tag DELETE path of sweep();
# the worker is parked first (a reload wakes it for one more sweep, then it
# waits an hour)
"${PSQL[@]}" -c "ALTER SYSTEM SET profile_guard.sweep_interval = 3600" -c "SELECT pg_reload_conf()" >/dev/null
await "SELECT state = 'idle' FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'" 30
sleep 1
await "SELECT state = 'idle' FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'" 30
"${PSQL[@]}" -c "INSERT INTO events SELECT 1 + i % 1000, 'behavior.visit', 'late', now() - interval '90 days'
	FROM generate_series(1, 1000) i WHERE 1 + i % 1000 <> 7" >/dev/null
got=$("${PSQL[@]}" -c "SELECT string_agg(format('%s %s %s %s', relation, tag, reason, action) || ' ' || rows, ', ')
	FROM profile_guard.sweep()")
[[ $got == 'public.events behavior.visit retention delete 999' ]] || fail "retention-only sweep: $got"
"${PSQL[@]}" -c "SELECT count(*) = 0 FROM events WHERE value = 'late'" | grep -qx t || fail "late rows left"
echo "sweep_crash: ok: $due due rows erased and logged exactly once across an immediate stop"
