#!/usr/bin/env bash
# test/bench/run.sh — profile_guard against the baselines a DBA would use,
# on the same data in one run.  Prints a Markdown table of ratios (median of
# RUNS runs) and writes the same figures as CSV to test/bench/results.csv.
# The data are checkpointed once loaded, so that the checkpoint of the load
# does not run under the first figures.
#   bash test/bench/run.sh            1,000,000 subjects
#   bash test/bench/run.sh --quick    100,000 subjects, fewer runs
#   SCALE=N RUNS=R PGBENCH_ROUNDS=K   override (pgbench: K interleaved rounds)
#   SETUP_ONLY=1                      load the data, leave the cluster running
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/bench_data.sh

SCALE=${SCALE:-1000000}; RUNS=${RUNS:-5}; PGBENCH_SECONDS=${PGBENCH_SECONDS:-30}; PGBENCH_ROUNDS=${PGBENCH_ROUNDS:-3}
if [[ ${1:-} == --quick ]]; then SCALE=${SCALE_QUICK:-100000}; RUNS=3; PGBENCH_SECONDS=10; PGBENCH_ROUNDS=1; fi

bench_cluster_start bench || exit 1

echo "generating $SCALE subjects (75% consent, 5% minors, 2% opted out)..." >&2
# profiles_plain is the ungated baseline for key look-ups (a bypass role's
# reads of a guarded table are always audited)
"${PSQL[@]}" >/dev/null <<SQL
$(bench_profiles_sql "$SCALE" sensitive subjects=mixed plain_copy)
CREATE EXTENSION pgcrypto;
CREATE ROLE bench_bypass LOGIN BYPASSRLS;
GRANT SELECT ON profiles TO bench_bypass;
GRANT USAGE ON SCHEMA profile_guard TO bench_bypass;
GRANT SELECT ON profile_guard.consent TO bench_bypass;
CREATE TABLE plain_ins (id bigint, health text);
CREATE TABLE guarded_ins (id bigint, health text);
SELECT profile_guard.protect('guarded_ins', 'id');
SELECT profile_guard.classify('guarded_ins', 'health', 'health.condition');
GRANT SELECT ON guarded_ins, plain_ins TO bench_app, bench_bypass;
-- the benchmark reads its own backend's memory contexts
GRANT SELECT ON pg_backend_memory_contexts TO bench_app;
GRANT EXECUTE ON FUNCTION pg_get_backend_memory_contexts() TO bench_app;
VACUUM ANALYZE;
CHECKPOINT;
SQL
bench_setup_only

# median of the "Time:" lines of a psql session; $1 = role, $2 = setup, $3 = query
timed() {
	local role=$1 setup=$2 query=$3 args=()
	args+=(-c "SET ROLE $role" -c "$setup" -c "$query" -c '\timing on')
	for _ in $(seq "$RUNS"); do args+=(-c "$query"); done
	"${PSQL[@]}" -At "${args[@]}" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | bench_median
}
first_call_ms() {
	"${PSQL[@]}" -At -c "SET ROLE $1" -c "$2" -c '\timing on' -c "$3" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1
}

P="SET profile_guard.purpose = 'recommendation'"
AGG="SELECT sum(visits), count(music) FROM profiles"
EXISTS_Q="SELECT sum(visits), count(music) FROM profiles p WHERE EXISTS (SELECT 1 FROM profile_guard.consent c WHERE c.subject = p.id::text AND c.purpose = 'recommendation' AND c.action = 'grant' AND 'behavior.visits' = ANY (c.tags))"
echo "1. full-scan aggregate" >&2
cache_load=$(first_call_ms bench_app "$P" "$AGG")
gated=$(timed bench_app "$P" "$AGG")
# serial, as the baselines below that run without workers
gated_serial=$(timed bench_app "$P; SET max_parallel_workers_per_gather = 0" "$AGG")
# the same with every gate a function call (no gated scan)
gated_calls=$(timed bench_app "$P; SET profile_guard.gated_scan = off; SET max_parallel_workers_per_gather = 0" "$AGG")
bypass=$(timed bench_bypass "SET max_parallel_workers_per_gather = 2" "$AGG")
bypass_serial=$(timed bench_bypass "SET max_parallel_workers_per_gather = 0" "$AGG")
exists_ms=$(timed bench_bypass "SET max_parallel_workers_per_gather = 0" "$EXISTS_Q")
# what a DBA would build without us: the consents in a table of their own
# (the latest grant per subject and purpose, indexed), row-level security
# with EXISTS over it, and a view that masks unconsented cells with CASE
"${PSQL[@]}" >/dev/null <<'SQL'
CREATE TABLE rls_consent (subject bigint, purpose text, tags text[], PRIMARY KEY (subject, purpose));
INSERT INTO rls_consent
SELECT DISTINCT ON (c.subject, c.purpose) c.subject::bigint, c.purpose, c.tags
FROM profile_guard.consent c WHERE c.action = 'grant' ORDER BY c.subject, c.purpose, c.consent_id DESC;
CREATE TABLE profiles_rls (LIKE profiles_plain INCLUDING ALL);
INSERT INTO profiles_rls SELECT * FROM profiles_plain;
ALTER TABLE profiles_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY consented ON profiles_rls FOR SELECT TO bench_app USING (EXISTS (
	SELECT 1 FROM rls_consent c WHERE c.subject = profiles_rls.id AND c.purpose = current_setting('app.purpose')));
CREATE VIEW profiles_rls_masked WITH (security_barrier) AS
SELECT p.id,
	CASE WHEN EXISTS (SELECT 1 FROM rls_consent c WHERE c.subject = p.id AND c.purpose = current_setting('app.purpose')
	                  AND ('interest.music' = ANY (c.tags) OR 'interest.*' = ANY (c.tags))) THEN p.music END AS music,
	CASE WHEN EXISTS (SELECT 1 FROM rls_consent c WHERE c.subject = p.id AND c.purpose = current_setting('app.purpose')
	                  AND 'behavior.visits' = ANY (c.tags)) THEN p.visits END AS visits
FROM profiles_rls p;
ALTER VIEW profiles_rls_masked OWNER TO bench_app;
GRANT SELECT ON rls_consent, profiles_rls TO bench_app;
VACUUM ANALYZE rls_consent, profiles_rls;
SQL
rls_ms=$(timed bench_app "SET app.purpose = 'recommendation'; SET max_parallel_workers_per_gather = 0" "SELECT sum(visits), count(music) FROM profiles_rls_masked")

echo "2. primary-key lookups (pgbench)" >&2
bench_pk_script "$SCALE" > "$CLUSTER_DIR/pk.sql"
sed 's/FROM profiles /FROM profiles_plain /' "$CLUSTER_DIR/pk.sql" > "$CLUSTER_DIR/pk_plain.sql"
tps() {
	PGOPTIONS="$2" "$PGBIN/pgbench" -n -c 4 -j 2 -T "$PGBENCH_SECONDS" -f "$CLUSTER_DIR/${3:-pk.sql}" -U "$1" bench 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
# interleaved rounds, so that a noisy minute hits every variant alike; the
# audit trail on the same workload (profile_guard.audit is SUSET) in each
: > "$CLUSTER_DIR/tps"
for round in $(seq "$PGBENCH_ROUNDS"); do
	echo "gated $(tps bench_app "-c profile_guard.purpose=recommendation")" >> "$CLUSTER_DIR/tps"
	echo "plain $(tps bench_app "" pk_plain.sql)" >> "$CLUSTER_DIR/tps"
	echo "bypass $(tps bench_bypass "")" >> "$CLUSTER_DIR/tps"
	"${PSQL[@]}" -c "ALTER ROLE bench_app SET profile_guard.audit = 'all'"
	echo "audit $(tps bench_app "-c profile_guard.purpose=recommendation")" >> "$CLUSTER_DIR/tps"
	"${PSQL[@]}" -c "ALTER ROLE bench_app RESET profile_guard.audit"
done
tps_gated=$(awk '$1 == "gated" {print $2}' "$CLUSTER_DIR/tps" | bench_median)
tps_plain=$(awk '$1 == "plain" {print $2}' "$CLUSTER_DIR/tps" | bench_median)
tps_ungated=$(awk '$1 == "bypass" {print $2}' "$CLUSTER_DIR/tps" | bench_median)
tps_audit=$(awk '$1 == "audit" {print $2}' "$CLUSTER_DIR/tps" | bench_median)

echo "3. inserts and encryption" >&2
N_INS=$SCALE
ins_plain=$(timed postgres "SELECT 1" "TRUNCATE plain_ins; INSERT INTO plain_ins SELECT i, 'condition-' || i FROM generate_series(1, $N_INS) i WHERE i % 4 <> 0")
ins_guarded=$(timed postgres "SELECT 1" "TRUNCATE guarded_ins; INSERT INTO guarded_ins SELECT i, 'condition-' || i FROM generate_series(1, $N_INS) i WHERE i % 4 <> 0")
N_ENC=$((SCALE / 10))
enc_ours=$(timed postgres "SELECT 1" "SELECT count(profile_guard._encrypt(i::text, 'health.condition', 'condition-' || i)) FROM generate_series(1, $N_ENC) i")
enc_cbc=$(timed postgres "SELECT 1" "SELECT count(encrypt_iv(convert_to('condition-' || i, 'UTF8'), '\\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'::bytea, '\\x000102030405060708090a0b0c0d0e0f'::bytea, 'aes-cbc')) FROM generate_series(1, $N_ENC) i")
N_PGP=$((N_ENC / 10))
enc_pgp=$(timed postgres "SELECT 1" "SELECT count(pgp_sym_encrypt('condition-' || i, 'a passphrase')) FROM generate_series(1, $N_PGP) i")
read_plain=$(timed bench_app "$P" "SELECT count(health) FROM plain_ins")
read_sens=$(timed bench_app "$P" "SELECT count(health) FROM guarded_ins")

echo "4. erasure sweep vs DELETE (test/bench/sweep.sh, its own cluster)" >&2
if [[ $SCALE -ge 1000000 ]]; then sweep_arg=$SCALE; else sweep_arg=--quick; fi
sweep_out=$(bash test/bench/sweep.sh "$sweep_arg" 2>/dev/null)
sweep_ms=$(sed -n 's/^| sweep of .* | \([0-9.]*\) ms | .*/\1/p' <<<"$sweep_out")
delete_ms=$(sed -n 's/^| plain DELETE .* | \([0-9.]*\) ms | .*/\1/p' <<<"$sweep_out")
longest_ms=$(sed -n 's/^| longest batch.* | \([0-9.]*\) ms | .*/\1/p' <<<"$sweep_out")
sweep_rows=$(sed -n 's/^| sweep of \([0-9]*\) expired.*/\1/p' <<<"$sweep_out")

echo "5. memory" >&2
cache_bytes=$("${PSQL[@]}" -At -c "SET ROLE bench_app" -c "$P" -c "$AGG" -c "SELECT sum(total_bytes) FROM pg_backend_memory_contexts WHERE name IN ('profile_guard consent cache', 'profile_guard purpose', 'profile_guard subjects')" | tail -1)
key_bytes=$("${PSQL[@]}" -At -c "SET ROLE bench_app" -c "$P" -c "SELECT count(health) FROM guarded_ins" -c "SELECT sum(total_bytes) FROM pg_backend_memory_contexts WHERE name LIKE 'profile_guard data key%'" | tail -1)
shm_bytes=$("${PSQL[@]}" -At -c "SELECT sum(allocated_size) FROM pg_shmem_allocations WHERE name LIKE 'profile_guard%'")

awk -v s="$SCALE" -v r="$RUNS" -v rounds="$PGBENCH_ROUNDS" \
	-v gated="$gated" -v gated_serial="$gated_serial" -v gated_calls="$gated_calls" -v bypass="$bypass" -v bypass_serial="$bypass_serial" -v ex="$exists_ms" -v rls="${rls_ms:-0}" -v load="$cache_load" \
	-v tg="$tps_gated" -v tu="$tps_ungated" -v tpl="$tps_plain" \
	-v ip="$ins_plain" -v ig="$ins_guarded" \
	-v eo="$enc_ours" -v ec="$enc_cbc" -v ep="$enc_pgp" -v nenc="$N_ENC" -v npgp="$N_PGP" \
	-v rp="$read_plain" -v rs="$read_sens" -v mem="$cache_bytes" -v kmem="${key_bytes:-0}" -v shm="${shm_bytes:-0}" \
	-v ta="$tps_audit" -v sw="${sweep_ms:-0}" -v dl="${delete_ms:-1}" -v lb="${longest_ms:-0}" -v swn="${sweep_rows:-0}" '
function row(name, ours, base, ratio, target, pass) {
	printf "| %s | %s | %s | %.2f | %s | %s |\n", name, ours, base, ratio, target, target == "" ? "" : pass ? "pass" : "FAIL"
	printf "%s,%s,%s,%.4f,%s,%s\n", name, ours, base, ratio, target, target == "" ? "" : pass ? "pass" : "fail" >> "test/bench/results.csv"
}
BEGIN {
	printf "metric,ours,baseline,ratio,target,result\n" > "test/bench/results.csv"
	printf "\n%d subjects, median of %d runs (pgbench: of %d interleaved rounds)\n\n", s, r, rounds
	print "| measure | profile_guard | baseline | ratio | target | result |"
	print "|---|---|---|---|---|---|"
	row("aggregate gated / bypass (parallel allowed)", gated " ms", bypass " ms", gated / bypass, "<= 1.5", gated / bypass <= 1.5)
	row("aggregate gated / bypass (serial)", gated_serial " ms", bypass_serial " ms", gated_serial / bypass_serial, "<= 1.3", gated_serial / bypass_serial <= 1.3)
	row("aggregate, gates as function calls (gated_scan off) / bypass (serial)", gated_calls " ms", bypass_serial " ms", gated_calls / bypass_serial, "", 1)
	row("hand-written EXISTS / gated (serial)", ex " ms", gated_serial " ms", ex / gated_serial, ">= 5", ex / gated_serial >= 5)
	row("row-level security (EXISTS) and a CASE-masking view / gated (serial)", rls " ms", gated_serial " ms", rls / gated_serial, "", 1)
	row("pgbench PK lookups gated / same table unguarded TPS", tg, tpl, tg / tpl, ">= 0.90", tg / tpl >= 0.9)
	row("pgbench PK lookups gated / bypass role (audited) TPS", tg, tu, tg / tu, ">= 0.90", tg / tu >= 0.9)
	row("insert sensitive / unprotected", ig " ms", ip " ms", ig / ip, "<= 1.5", ig / ip <= 1.5)
	row("pgp_sym_encrypt / ours per value", ep / npgp * 1000 " us", eo / nenc * 1000 " us", (ep / npgp) / (eo / nenc), ">= 50", (ep / npgp) / (eo / nenc) >= 50)
	row("encrypt_iv aes-cbc / ours per value", ec / nenc * 1000 " us", eo / nenc * 1000 " us", ec / eo, ">= 1", ec / eo >= 1)
	row("read sensitive (decrypt) / plaintext", rs " ms", rp " ms", rs / rp, "<= 3", rs / rp <= 3)
	row("pgbench PK audit=all / audit=off TPS", ta, tg, ta / tg, ">= 0.95", ta / tg >= 0.95)
	row("sweep / plain DELETE of " swn " expired rows", sw " ms", dl " ms", sw / dl, "<= 2", sw / dl <= 2)
	row("longest sweep batch (locks held)", lb " ms", "1000 ms", lb / 1000, "<= 1", lb <= 1000)
	printf "\nconsent cache: first gated statement (loads the cache) %s ms; backend consent cache %.1f MB, data key cache %.1f MB; shared memory %.0f kB\n", load, mem / 1048576, kmem / 1048576, shm / 1024
}'
