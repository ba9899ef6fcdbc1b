#!/usr/bin/env bash
# test/scenario/standby.sh — a streaming hot standby enforces what the
# primary enforces.  A primary and a standby made with pg_basebackup -R, both
# preloading profile_guard with the same master key (a copy of the key file):
#
#   - reads under a purpose give the same result sets on both (gated rows,
#     masked cells, sensitive values decrypted where consented);
#   - without a purpose the standby refuses (42501), as the primary does;
#   - a consent withdrawn and a tag blocked on the primary take effect on the
#     standby once replayed (bounded wait for the replay LSN), for new
#     sessions and for a session that was open (and had its consent cache
#     loaded) before the change;
#   - answers built on the standby are published in its shared memory and
#     patched, subject by subject, as replay applies consent changes;
#   - a standby with a different master key refuses to decrypt instead of
#     serving garbage.
#
# Starts its own clusters.  Needs the PostgreSQL installation of PGBIN with
# profile_guard installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/ops.sh
trap '[[ -n ${S_PID:-} ]] && kill "$S_PID" 2>/dev/null; ops_stop_all' EXIT

DB=regress_standby

# ---------- primary
ops_start P standby_primary "wal_level = replica" "max_wal_senders = 4" "hot_standby = on"
export PGHOST=$P_HOST PGPORT=$P_PORT
"$PGBIN/createdb" "$DB"
q -d "$DB" -c 'CREATE EXTENSION profile_guard' >/dev/null
q -d "$DB" -f test/lib/ops_fixture.sql >/dev/null || fail "loading the fixture on the primary failed"

# ---------- standby: base backup, its own port and socket, the same key
S_DIR=$(mktemp -d /tmp/profile_guard_standby_replica.XXXXXX)
chmod 755 "$S_DIR"
[[ $(id -u) -eq 0 ]] && chown postgres "$S_DIR"
ops_track "$S_DIR/data" "$S_DIR"
S_PORT=$(pg_free_port $((P_PORT + 1)))
pg_as_owner "$PGBIN/pg_basebackup" -h "$P_HOST" -p "$P_PORT" -U postgres -D "$S_DIR/data" -R -X stream -c fast ||
	fail "pg_basebackup failed"
pg_as_owner cp "$P_KEY" "$S_DIR/master.key"
pg_as_owner bash -c "cat >> '$S_DIR/data/postgresql.conf'" <<CONF
port = $S_PORT
unix_socket_directories = '$S_DIR'
profile_guard.master_key_file = '$S_DIR/master.key'
CONF
pg_as_owner "$PGBIN/pg_ctl" -D "$S_DIR/data" -l "$S_DIR/server.log" -w -t 60 start >/dev/null ||
	{ cat "$S_DIR/server.log" >&2; fail "the standby did not start"; }
[[ $(qa -h "$S_DIR" -p "$S_PORT" -d "$DB" -c 'SELECT pg_is_in_recovery()') == t ]] || fail "the standby is not in recovery"

# wait (bounded) until the standby replayed everything the primary wrote so
# far: the insert position, since with synchronous_commit = off a commit
# record may not be written out yet when its COMMIT returns
wait_replay() {
	local lsn i
	lsn=$(qa -h "$P_HOST" -p "$P_PORT" -d postgres -c 'SELECT pg_current_wal_insert_lsn()')
	for i in $(seq 1 300); do
		[[ $(qa -h "$S_DIR" -p "$S_PORT" -d postgres \
			-c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn") == t ]] && return 0
		sleep 0.1
	done
	fail "the standby did not replay $lsn within 30 s"
}

# the application's reads, as one string; $1 = host, $2 = port
reads() {
	qa -h "$1" -p "$2" -d "$DB" -U regress_ops_app <<'SQL'
\echo -- rec
SET profile_guard.purpose = 'rec';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
SELECT count(*) FROM profiles WHERE health IS NOT NULL;
\echo -- ads
SET profile_guard.purpose = 'ads';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
SQL
	# what the catalog says (as the superuser)
	qa -h "$1" -p "$2" -d "$DB" <<'SQL'
\echo -- status
SELECT purpose, subject, tag, effective FROM profile_guard.consent_status
WHERE subject IN ('1', '6') ORDER BY 1, 2, 3;
SQL
}

compare() {
	local what=$1 expect=$2 on_primary on_standby
	on_primary=$(reads "$P_HOST" "$P_PORT" 2>&1) || fail "$what: reads on the primary failed: $on_primary"
	on_standby=$(reads "$S_DIR" "$S_PORT" 2>&1) || fail "$what: reads on the standby failed: $on_standby"
	if [[ $on_primary != "$on_standby" ]]; then
		diff -u <(echo "$on_primary") <(echo "$on_standby") >&2 || true
		fail "$what: the standby's results differ from the primary's (diff above: - primary, + standby)"
	fi
	grep -qxF "$expect" <<< "$on_standby" || fail "$what: expected row \"$expect\" missing on the standby:
$on_standby"
	echo "$what: primary and standby agree ($(wc -l <<< "$on_standby") lines)"
}

wait_replay
compare "before the withdrawal" "6|fay|chess|folk|SECRET-diabetes-6"
grep -q 'SECRET-asthma-1' <<< "$(reads "$S_DIR" "$S_PORT")" || fail "the standby does not decrypt"

# no purpose: refused on the standby, with the documented SQLSTATE
err=$("$PGBIN/psql" -X -q -h "$S_DIR" -p "$S_PORT" -d "$DB" -U regress_ops_app -v VERBOSITY=verbose \
	-c 'SELECT health FROM profiles' 2>&1 >/dev/null || true)
grep -q '42501' <<< "$err" || fail "a read without purpose on the standby was not refused with 42501: $err"
echo "standby refuses a read without purpose (42501)"
# non-tag columns need no purpose on the standby either
[[ $(qa -h "$S_DIR" -p "$S_PORT" -d "$DB" -U regress_ops_app -c 'SELECT count(name) FROM profiles') == 6 ]] ||
	fail "non-tag columns are not readable on the standby"

# ---------- a session on the standby that stays open across the change
coproc S { "$PGBIN/psql" -X -q -At -h "$S_DIR" -p "$S_PORT" -d "$DB" -U regress_ops_app 2>&1; }
session() {	# send SQL, print its output up to a marker
	local line out=
	printf '%s\n\\echo __done__\n' "$1" >&"${S[1]}"
	while IFS= read -r -t 30 line <&"${S[0]}"; do
		[[ $line == __done__ ]] && { printf '%s' "$out"; return 0; }
		out+="$line"$'\n'
	done
	fail "the open standby session did not answer"
}
session "SET profile_guard.purpose = 'rec';" >/dev/null
before=$(session "SELECT id, music FROM profiles ORDER BY id;")
[[ $before == $'1|jazz\n2|\n3|pop\n6|folk' ]] || fail "open standby session, before: unexpected rows: $before"

# ---------- the change on the primary
q -h "$P_HOST" -p "$P_PORT" -d "$DB" >/dev/null <<'SQL'
SELECT profile_guard.withdraw_consent('6', 'rec');
SELECT profile_guard.block_tag('1', 'interest.music');
SQL
wait_replay
compare "after the withdrawal" "1|ann|football||SECRET-asthma-1"
reads "$S_DIR" "$S_PORT" | grep -q '^6|' && fail "subject 6 is still visible on the standby after the withdrawal"
after=$(session "SELECT id, music FROM profiles ORDER BY id;")
[[ $after == $'1|\n2|\n3|pop' ]] || fail "open standby session, after replay: expected rows 1|, 2|, 3|pop, got: $after"
echo "the open standby session sees the withdrawal and the block after replay"
kill "$S_PID" 2>/dev/null; wait "$S_PID" 2>/dev/null || true; S_PID=

# ---------- answers shared on the standby follow replay subject by subject
q -h "$P_HOST" -p "$P_PORT" -d "$DB" >/dev/null <<'SQL'
SET client_min_messages = warning;
INSERT INTO profile_guard.subject (subject) SELECT i::text FROM generate_series(1001, 4000) i;
INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags)
SELECT i::text, 'rec', p.version, 'grant', ARRAY['interest.*']
  FROM generate_series(1001, 4000) i, profile_guard.purpose p WHERE p.purpose = 'rec' AND i % 4 <> 0;
SELECT profile_guard._policy_changed();
CREATE TABLE many (id int PRIMARY KEY, music text);
INSERT INTO many SELECT i, 'm' || i FROM generate_series(1001, 4000) i;
SELECT profile_guard.protect('many', 'id');
SELECT profile_guard.classify('many', 'music', 'interest.music');
GRANT SELECT ON many TO regress_ops_app;
SQL
wait_replay
coproc S { "$PGBIN/psql" -X -q -At -h "$S_DIR" -p "$S_PORT" -d "$DB" -U regress_ops_app 2>&1; }
session "SET profile_guard.purpose = 'rec';" >/dev/null
[[ $(session "SELECT count(music) FROM many;") == 2250 ]] || fail "standby: the gated scan of 3,000 subjects did not see 2,250"
shared_before=$(qa -h "$S_DIR" -p "$S_PORT" -d "$DB" -c "SELECT generation || '/' || state FROM profile_guard.shared_answers() WHERE purpose = 'rec'")
[[ $shared_before == */published ]] || fail "standby: the answers were not published in shared memory ($shared_before)"
q -h "$P_HOST" -p "$P_PORT" -d "$DB" -c "SELECT profile_guard.withdraw_consent('1001', 'rec')" >/dev/null
wait_replay
# replayed; the open session reads it from its next statement (bounded
# polling: a busy standby may cancel a statement in a recovery conflict)
for _ in $(seq 1 50); do
	seen=$(session "SELECT count(music) FROM many;")
	[[ $seen == 2249 ]] && break
	sleep 0.2
done
[[ $seen == 2249 ]] || fail "standby: the open session did not follow the withdrawal (it sees: $seen)"
[[ $(qa -h "$S_DIR" -p "$S_PORT" -d "$DB" -U regress_ops_app -c "SET profile_guard.purpose = 'rec'" -c "SELECT count(music) FROM many") == 2249 ]] ||
	fail "standby: a new session did not follow the withdrawal"
shared_after=$(qa -h "$S_DIR" -p "$S_PORT" -d "$DB" -c "SELECT generation || '/' || state FROM profile_guard.shared_answers() WHERE purpose = 'rec'")
[[ $shared_after == "$shared_before" ]] || fail "standby: the shared answers were rebuilt ($shared_before, then $shared_after), not patched"
echo "standby: shared answers patched as replay applied a withdrawal ($shared_after)"
kill "$S_PID" 2>/dev/null; wait "$S_PID" 2>/dev/null || true; S_PID=

# ---------- a standby with another master key refuses, it does not serve garbage
pg_as_owner "$PGBIN/pg_ctl" -D "$S_DIR/data" -m fast -w stop >/dev/null
pg_as_owner bash -c "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > '$S_DIR/master.key'"
pg_as_owner "$PGBIN/pg_ctl" -D "$S_DIR/data" -l "$S_DIR/server.log" -w -t 60 start >/dev/null ||
	fail "the standby did not restart"
err=$(qa -h "$S_DIR" -p "$S_PORT" -d "$DB" -U regress_ops_app -v VERBOSITY=verbose \
	-c "SET profile_guard.purpose = 'rec'" -c 'SELECT health FROM profiles WHERE id = 1' 2>&1 || true)
grep -q 'SECRET' <<< "$err" && fail "a standby with another master key decrypted a value"
grep -qiE 'master key|ERROR' <<< "$err" || fail "a standby with another master key did not report an error: $err"
echo "a standby with another master key refuses: $(grep -m1 ERROR <<< "$err")"

ops_check_alive "$P_HOST" "$P_PORT" "$P_DIR/server.log" primary
ops_check_alive "$S_DIR" "$S_PORT" "$S_DIR/server.log" standby
echo "standby: gates and decryption identical on the hot standby; withdrawal effective after replay"
