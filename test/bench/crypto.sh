#!/usr/bin/env bash
# test/bench/crypto.sh — the cost of encrypting sensitive tags, against the
# same statements on plaintext, on the same data in one run.  Prints a
# Markdown table of ratios (median of RUNS runs).
#   bash test/bench/crypto.sh            1,000,000 subjects
#   bash test/bench/crypto.sh --quick    100,000 subjects
#   SCALE=N RUNS=R                       override
#   SETUP_ONLY=1                         load the data, leave the cluster running
# Data: subjects 1..SCALE, three in four consent to the sensitive tag
# health.condition; sens_read holds one encrypted value per consenting
# subject, plain_read the same values in plaintext.  The reads count the
# values under the purpose (every cell decrypted), in a new connection each
# run (its data key cache is empty: it copies the data keys that the first
# read published in shared memory, and once more with that turned off) and
# warm (the same statement again in one backend), each in turn with the
# plaintext read, run for run; the warm read and the insert whose keys
# exist also in bytea columns (the envelope stored as it is, without the
# text form's base64), against plaintext bytea.  The cipher alone
# (cipher_floor.c, as many values as the read decrypts) added to the
# plaintext read gives the floor of both read ratios.  Look-ups of one
# sensitive cell by primary key (pgbench, 2 clients, new backends each
# run, LOOKUP_SECONDS each) are compared with the same look-ups of
# plaintext, in turn; each backend meets subjects whose keys it has not
# cached.  The inserts write one value per consenting subject, with their
# data keys existing (in turn
# with the unprotected insert, run for run), and with none existing (the
# keys are dropped before each run, so each insert makes SCALE * 3/4 data
# keys), and with every row collected by the collection trigger instead of
# the INSERT's plan.  An unprotected insert of plaintext as long as the stored
# ciphertext, in turn with the unprotected insert, gives what storing the
# ciphertext's bytes costs; with the cipher alone encrypting as many
# values (cipher_floor.c encrypt) added, the floor of the insert ratio.
# Both reads are planned in parallel (two workers; ours splits its gates
# over them); the reads in a new connection and warm are measured again
# with every plan serial.
# The data are checkpointed once loaded, and every run in a new connection
# (the reads in turn with plaintext, the inserts) starts after a
# CHECKPOINT: otherwise the checkpoint that the load sets off (about 900 MB
# at 1,000,000 subjects, spread over minutes) runs under whichever
# statements come then, and the inserts create log segments instead of
# reusing them.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/bench_data.sh

SCALE=${SCALE:-1000000}; RUNS=${RUNS:-3}
if [[ ${1:-} == --quick ]]; then SCALE=${SCALE_QUICK:-100000}; fi

bench_cluster_start crypto || exit 1

echo "generating $SCALE subjects (75% consent to the sensitive tag)..." >&2
"${PSQL[@]}" >/dev/null <<SQL
$(bench_profiles_sql "$SCALE" sensitive columns=)
CREATE EXTENSION pgcrypto;
CREATE TABLE sens_read (id bigint, health text);
CREATE TABLE plain_read (id bigint, health text);
CREATE TABLE sens_ins (id bigint, health text);
CREATE TABLE plain_ins (id bigint, health text);
CREATE TABLE plain_ins_sized (id bigint, health text);
CREATE TABLE sens_read_b (id bigint, health bytea);
CREATE TABLE plain_read_b (id bigint, health bytea);
CREATE TABLE sens_ins_b (id bigint, health bytea);
CREATE TABLE plain_ins_b (id bigint, health bytea);
SELECT profile_guard.protect(t, 'id'), profile_guard.classify(t, 'health', 'health.condition')
  FROM unnest(ARRAY['sens_read', 'sens_ins', 'sens_read_b', 'sens_ins_b']) t;
INSERT INTO sens_read SELECT i, 'condition-' || i FROM generate_series(1, $SCALE) i WHERE i % 4 <> 0;
INSERT INTO plain_read SELECT i, 'condition-' || i FROM generate_series(1, $SCALE) i WHERE i % 4 <> 0;
INSERT INTO sens_read_b SELECT id, convert_to(health, 'UTF8') FROM plain_read;
INSERT INTO plain_read_b SELECT id, convert_to(health, 'UTF8') FROM plain_read;
CREATE TABLE pgp_read AS SELECT i AS id, pgp_sym_encrypt('condition-' || i, 'a passphrase') AS health
  FROM generate_series(1, $((SCALE / 100))) i;
GRANT SELECT ON sens_read, plain_read, sens_read_b, plain_read_b, pgp_read TO bench_app;
VACUUM ANALYZE;
CHECKPOINT;
SQL
bench_setup_only

P="SET profile_guard.purpose = 'recommendation'"
ms() { sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }
# each run in a new connection: $1 = setup, $2 = the timed statement
new_conn() {
	for _ in $(seq "$RUNS"); do
		"${PSQL[@]}" -At -c "SET ROLE bench_app" -c "$P" -c "$1" -c '\timing on' -c "$2" | ms | tail -1
	done | bench_median
}
# RUNS runs in one backend after a first one: $1 = the timed statement
warm() {
	local args=(-c "SET ROLE bench_app" -c "$P" -c "$1" -c '\timing on')
	for _ in $(seq "$RUNS"); do args+=(-c "$1"); done
	"${PSQL[@]}" -At "${args[@]}" | ms | bench_median
}
# two statements in turn, RUNS times each, in one backend after a first run
# of each (the machine's load should hit both alike); prints both medians
warm_pair() {
	local args=(-c "SET ROLE bench_app" -c "$P" -c "$1" -c "$2" -c '\timing on')
	for _ in $(seq "$RUNS"); do args+=(-c "$1" -c "$2"); done
	"${PSQL[@]}" -At "${args[@]}" | ms |
		awk 'NR % 2 == 1 {print "a", $1} NR % 2 == 0 {print "b", $1}' > "$PGHOST/pair"
	echo "$(awk '$1 == "a" {print $2}' "$PGHOST/pair" | bench_median)" \
		"$(awk '$1 == "b" {print $2}' "$PGHOST/pair" | bench_median)"
}
# as the table owner: $1 = set-up statements before each run, $2 = timed
insert_runs() {
	for _ in $(seq "$RUNS"); do
		"${PSQL[@]}" -At -c CHECKPOINT -c "$1" -c '\timing on' -c "$2" | ms | tail -1
	done | bench_median
}

# RUNS runs of two statements in turn, each run in a new connection: $1 the
# set-up and $2 the timed statement of the one, $3 and $4 of the other;
# prints both medians.  Each run starts after a CHECKPOINT (as
# insert_runs()): no statement meets a checkpoint that an earlier one's
# writes set off, and each reuses the log segments recycled before it
pair_runs() {
	local a=() b=()
	for _ in $(seq "$RUNS"); do
		a+=("$("${PSQL[@]}" -At -c CHECKPOINT -c "$1" -c '\timing on' -c "$2" | ms | tail -1)")
		b+=("$("${PSQL[@]}" -At -c CHECKPOINT -c "$3" -c '\timing on' -c "$4" | ms | tail -1)")
	done
	echo "$(printf '%s\n' "${a[@]}" | bench_median) $(printf '%s\n' "${b[@]}" | bench_median)"
}

echo "1. reads (the consent answers are published first)" >&2
"${PSQL[@]}" -At -c "SET ROLE bench_app" -c "$P" -c "SELECT count(health) FROM sens_read WHERE id = 1" >/dev/null
READ_S="SELECT count(health) FROM sens_read"
READ_P="SELECT count(health) FROM plain_read"
cells=$("${PSQL[@]}" -At -c "SET ROLE bench_app" -c "$P" -c "$READ_S" | tail -1)
APP="SET ROLE bench_app; $P"
read -r new_s new_p < <(pair_runs "$APP" "$READ_S" "$APP" "$READ_P")
# the same with the shared data keys turned off: each new connection reads
# and unwraps every key itself
set_shared_keys() {
	"${PSQL[@]}" -At -c "ALTER SYSTEM $1" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 1
}
set_shared_keys "SET profile_guard.shared_key_cache_size = 0"
new_own=$(new_conn "SELECT 1" "$READ_S")
set_shared_keys "RESET profile_guard.shared_key_cache_size"
read -r warm_s warm_p < <(warm_pair "$READ_S" "$READ_P")
# the plaintext read as PostgreSQL plans it is parallel (two workers); the
# gated scan is serial.  On a machine of few cores the serial plaintext
# read can be the faster one: both again, every plan serial
SERIAL="-c max_parallel_workers_per_gather=0"
read -r new_s1 new_p1 < <(PGOPTIONS="$SERIAL" pair_runs "$APP" "$READ_S" "$APP" "$READ_P")
read -r warm_s1 warm_p1 < <(PGOPTIONS="$SERIAL" warm_pair "$READ_S" "$READ_P")
# the same in a bytea column: the envelope as it is, no base64
read -r warm_sb warm_pb < <(warm_pair "SELECT count(health) FROM sens_read_b" "SELECT count(health) FROM plain_read_b")
# the floor of both read ratios: the plaintext read plus the cipher alone
# (test/bench/cipher_floor.c: as many values, each under its own key)
cipher_ns=0 cipher_enc_ns=0
if cc -O2 -o "$PGHOST/cipher_floor" test/bench/cipher_floor.c -lsodium; then
	cipher_ns=$("$PGHOST/cipher_floor" "$cells") || cipher_ns=0
	cipher_enc_ns=$("$PGHOST/cipher_floor" "$cells" encrypt) || cipher_enc_ns=0
fi
N_PGP=$((SCALE / 100))
pgp=$(warm "SELECT count(pgp_sym_decrypt(health, 'a passphrase')) FROM pgp_read")

# look-ups of one sensitive cell by primary key, 2 clients for LOOKUP_SECONDS
# each, against the same look-up of plaintext, in turn RUNS times; every
# run starts new backends, which meet subjects whose keys they have not
# cached (the published set serves them one by one)
LOOKUP_SECONDS=${LOOKUP_SECONDS:-8}
"${PSQL[@]}" -q -c "CREATE INDEX IF NOT EXISTS sens_read_id ON sens_read (id)" \
	-c "CREATE INDEX IF NOT EXISTS plain_read_id ON plain_read (id)" -c "ANALYZE sens_read, plain_read" >/dev/null
for t in sens plain; do
	printf '%s\n' "\\set id random(1, $SCALE)" "SET ROLE bench_app;" "$P;" \
		"SELECT health FROM ${t}_read WHERE id = :id;" > "$PGHOST/lookup_$t.sql"
done
tps() {
	"$PGBIN/pgbench" -n -c 2 -j 2 -T "$LOOKUP_SECONDS" -f "$PGHOST/lookup_$1.sql" bench 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
lk_s=() lk_p=()
for _ in $(seq "$RUNS"); do
	lk_p+=("$(tps plain)") lk_s+=("$(tps sens)")
done
look_s=$(printf '%s\n' "${lk_s[@]}" | bench_median)
look_p=$(printf '%s\n' "${lk_p[@]}" | bench_median)

echo "2. inserts" >&2
INS_S="INSERT INTO sens_ins SELECT i, 'condition-' || i FROM generate_series(1, $SCALE) i WHERE i % 4 <> 0"
INS_P="INSERT INTO plain_ins SELECT i, 'condition-' || i FROM generate_series(1, $SCALE) i WHERE i % 4 <> 0"
# alternated, run for run: the unprotected insert scatters most with the
# machine's load, and a noisy minute should hit both alike
read -r ins_p ins_s < <(pair_runs "TRUNCATE plain_ins" "$INS_P" "TRUNCATE sens_ins" "$INS_S")
# the same with every row collected by the collection trigger instead of
# the INSERT's plan (profile_guard.collect_in_plan off)
read -r ins_p3 ins_t < <(pair_runs "TRUNCATE plain_ins" "$INS_P" \
	"TRUNCATE sens_ins; SET profile_guard.collect_in_plan = off" "$INS_S")
# the floor of the insert ratio: plaintext as long as the stored ciphertext
# ("pgt2" and the unpadded base64 of the 28-byte IV and tag and the value:
# 63 characters for the 16 of most values here), unprotected: what storing the
# ciphertext's bytes costs before any check or cipher.  The padding is a
# constant joined in the same expression, so that making the longer value
# costs what making the short one does (a computed padding, rpad() over
# length(), cost more than the storage it stood for)
PAD=$(printf 'x%.0s' $(seq 47))
INS_Z="INSERT INTO plain_ins_sized SELECT i, 'condition-' || i || '$PAD' FROM generate_series(1, $SCALE) i WHERE i % 4 <> 0"
read -r ins_p2 ins_z < <(pair_runs "TRUNCATE plain_ins" "$INS_P" "TRUNCATE plain_ins_sized" "$INS_Z")
VALUE_B="convert_to('condition-' || i, 'UTF8')"
read -r ins_pb ins_sb < <(pair_runs "TRUNCATE plain_ins_b" \
	"INSERT INTO plain_ins_b SELECT i, $VALUE_B FROM generate_series(1, $SCALE) i WHERE i % 4 <> 0" \
	"TRUNCATE sens_ins_b" \
	"INSERT INTO sens_ins_b SELECT i, $VALUE_B FROM generate_series(1, $SCALE) i WHERE i % 4 <> 0")
# every subject new: its key was made when it was registered (as
# register_subject() makes it; create_data_keys() makes them all in bulk,
# timed too), and its first sensitive value finds it.  Last: this drops
# every data key (sens_read becomes unreadable)
KEYS_RESET="TRUNCATE sens_ins, profile_guard.subject_key"
reg=() keys=()
for _ in $(seq "$RUNS"); do
	read -r k i < <("${PSQL[@]}" -At -c "$KEYS_RESET" -c CHECKPOINT -c '\timing on' -c "SELECT profile_guard.create_data_keys()" \
		-c '\timing off' -c CHECKPOINT -c '\timing on' -c "$INS_S" | ms | tr '\n' ' ')
	keys+=("$k") reg+=("$i")
done
ins_reg=$(printf '%s\n' "${reg[@]}" | bench_median)
keys_ms=$(printf '%s\n' "${keys[@]}" | bench_median)
# subjects without a key (registered before 1.2, or while no master key
# was configured): the insert makes every key
ins_new=$(insert_runs "$KEYS_RESET" "$INS_S")
# what a registration costs, its data key included
REG_N=$((SCALE / 20))
reg_ms=$(insert_runs "DELETE FROM profile_guard.subject_event WHERE subject LIKE 'new-%'; DELETE FROM profile_guard.subject_key WHERE subject LIKE 'new-%'; DELETE FROM profile_guard.subject WHERE subject LIKE 'new-%'" \
	"SELECT count(profile_guard.register_subject('new-' || i)) FROM generate_series(1, $REG_N) i")

awk -v s="$SCALE" -v r="$RUNS" -v cells="$cells" -v ns="$new_s" -v np="$new_p" -v nown="$new_own" -v ws="$warm_s" -v wp="$warm_p" \
	-v pgp="$pgp" -v npgp="$N_PGP" -v is="$ins_s" -v ip="$ins_p" -v inew="$ins_new" -v rows="$cells" \
	-v ireg="$ins_reg" -v keys="$keys_ms" -v regms="$reg_ms" -v regn="$REG_N" -v nsub="$SCALE" \
	-v cns="$cipher_ns" -v wsb="$warm_sb" -v wpb="$warm_pb" -v isb="$ins_sb" -v ipb="$ins_pb" \
	-v ns1="$new_s1" -v np1="$new_p1" -v ws1="$warm_s1" -v wp1="$warm_p1" \
	-v iz="$ins_z" -v ip2="$ins_p2" -v it="$ins_t" -v ip3="$ins_p3" -v cens="$cipher_enc_ns" -v lks="$look_s" -v lkp="$look_p" '
function row(name, ours, base, ratio, target) {
	printf "| %s | %s | %s | %.2f | %s |\n", name, ours, base, ratio, target
}
BEGIN {
	printf "\n%d subjects, %d sensitive cells, median of %d runs\n\n", s, cells, r
	print "| measure | profile_guard | baseline | ratio | goal |"
	print "|---|---|---|---|---|"
	row("read sensitive cells, new connection / plaintext", ns " ms", np " ms", ns / np, "<= 4")
	row("read sensitive cells, new connection, data keys not shared / plaintext", nown " ms", np " ms", nown / np, "(reference)")
	row("read sensitive cells, warm backend / plaintext", ws " ms", wp " ms", ws / wp, "<= 4")
	if (cns > 0)
		row("the cipher alone (libsodium AES-256-GCM, a key per value) + plaintext / plaintext",
			sprintf("%.1f ms", wp + cns * cells / 1e6), wp " ms", (wp + cns * cells / 1e6) / wp,
			"(floor of the reads)")
	row("read sensitive cells, new connection / plaintext, serial plan", ns1 " ms", np1 " ms", ns1 / np1, "(reference)")
	row("read sensitive cells, warm backend / plaintext, serial plan", ws1 " ms", wp1 " ms", ws1 / wp1, "(reference)")
	row("read sensitive cells, warm backend, bytea column / plaintext bytea", wsb " ms", wpb " ms", wsb / wpb, "(reference)")
	if (lkp > 0)
		row("look-up of one sensitive cell by primary key, new backends / plaintext (TPS)", lks, lkp, lks / lkp, "(reference)")
	row("insert sensitive, keys exist / unprotected", is " ms", ip " ms", is / ip, "<= 2")
	row("insert sensitive, keys exist, collected by the trigger (collect_in_plan off) / unprotected", it " ms", ip3 " ms", it / ip3, "(reference)")
	row("insert plaintext as long as the stored ciphertext, unprotected / unprotected", iz " ms", ip2 " ms", iz / ip2, "(storage floor)")
	if (cens > 0)
		row("the same + the cipher alone (encrypting, a key per value) / unprotected",
			sprintf("%.1f ms", iz + cens * cells / 1e6), ip2 " ms", (iz + cens * cells / 1e6) / ip2,
			"(floor of the insert)")
	row("insert sensitive, keys exist, bytea column / unprotected bytea", isb " ms", ipb " ms", isb / ipb, "(reference)")
	row("insert sensitive, every subject new (key made at registration) / unprotected", ireg " ms", ip " ms", ireg / ip, "<= 3")
	row("insert sensitive, subjects without a key (the insert makes them) / unprotected", inew " ms", ip " ms", inew / ip, "(reference)")
	row("pgp_sym_decrypt per value / ours per cell (warm)", sprintf("%.3f us", pgp / npgp * 1000), sprintf("%.3f us", ws / cells * 1000), (pgp / npgp) / (ws / cells), "(reference)")
	printf "\nper cell: new connection %.3f us, warm %.3f us (plaintext %.3f us; the cipher alone %.3f us decrypting, %.3f us encrypting); per new data key (made by the insert) %.2f us\n",
		(ns - np) / cells * 1000, (ws - wp) / cells * 1000, wp / cells * 1000, cns / 1000, cens / 1000, (inew - ip) / rows * 1000
	printf "registration: create_data_keys() %.2f us a key (%d keys); register_subject() %.2f us a subject, its key included\n",
		keys / nsub * 1000, nsub, regms / regn * 1000
}'
