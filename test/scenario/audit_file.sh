#!/usr/bin/env bash
# test/scenario/audit_file.sh — the audit trail in its own files
# (profile_guard.audit_destination = file, the default):
#
#   a. concurrent sessions: every line of the file is one whole JSON object
#      with "ts", "pid" and "database" (none interleaved with another), and
#      the file holds exactly the read and denial lines the sessions made,
#      including a statement whose nested lines pass the buffer's size;
#      The lines reach the file through the audit writer's shared buffer;
#      the checks wait until the files stop growing;
#   b. a backend killed with SIGKILL while the audit writer is held stopped
#      (SIGSTOP), so that the lines are still in the shared buffer when the
#      server crashes: the writer, let go, writes them as it quits, and the
#      lines of the statements the backend had finished (one committed, one
#      in its open transaction) are in the file;
#   c. rotation: a new audit_filename, after a reload, takes the new lines
#      (with audit_fsync = on),
#      in new sessions and in a session that was open before;
#   d. fall-back: while the file cannot be opened, the lines go to the server
#      log with a WARNING naming the file; the next statement writes to the
#      file again once it can.
#
# Matches only the extension's own JSON keys, SQLSTATEs and paths, never a
# server message's wording (any lc_messages), and finds files by pattern
# (any date).  Starts its own throw-away cluster (test/lib/cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh

# %e: the SQLSTATE of each server-log line, to find the WARNING by code
pg_cluster_start audit_file \
	"profile_guard.audit = 'all'" \
	"log_line_prefix = '%m [%p] %e '" || exit 1
trap 'pg_cluster_stop' EXIT
LOG=$CLUSTER_DIR/server.log
DIR=$PGDATA_DIR/profile_guard_audit
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres)

fail=0
check() {		# check DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; fail=1; fi
}
expect() {		# expect DESCRIPTION EXPECTED ACTUAL
	if [[ $2 == "$3" ]]; then echo "ok: $1 ($3)"; else echo "FAILED: $1: expected $2, got $3"; fail=1; fi
}
# settle: wait until the audit writer has written what it holds (the lines
# in every audit file are the same five times in a row, 0.2 s apart; at
# most 30 s)
settle() {
	local last=-1 now same=0
	for _ in $(seq 150); do
		now=$({ cat "$DIR"/*.jsonl "$PGDATA_DIR"/blocked_audit/*.jsonl 2>/dev/null || true; } | wc -l)
		if [[ $now == "$last" ]]; then
			same=$((same + 1))
			[[ $same -ge 5 ]] && return 0
		else
			same=0
		fi
		last=$now
		sleep 0.2
	done
}

# summary FILE...: every line parsed as one JSON object; prints "lines N",
# "bad N" (lines that are not a whole object with ts, pid, database, event,
# or a file not ending in a newline) and one "EVENT USER LEVEL PID" line per
# audit line, for counting
summary() {
	perl -MJSON::PP -e '
		my ($lines, $bad) = (0, 0);
		for my $f (@ARGV) {
			open(my $fh, "<", $f) or die "$f: $!";
			local $/;
			my $all = <$fh>;
			next if $all eq "";
			$bad++ unless substr($all, -1) eq "\n";
			for my $l (split /\n/, $all) {
				$lines++;
				my $o = eval { JSON::PP->new->decode($l) };
				if (ref $o ne "HASH" || !defined $o->{event} || $o->{pid} !~ /^[0-9]+$/ ||
					$o->{ts} !~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/ ||
					!exists $o->{database}) {
					$bad++;
					next;
				}
				printf "%s %s %s %s\n", $o->{event}, $o->{user} // "-", $o->{level} // "-", $o->{pid};
			}
		}
		print "lines $lines\nbad $bad\n";
	' "$@"
}
count() {		# count PATTERN < summary: lines matching an extended regexp
	grep -cE "$1" || true
}
# the audit lines of the server log, without their prefix
log_lines() {
	grep -o 'profile_guard audit: {.*' "$LOG" | sed 's/^profile_guard audit: //' || true
}

"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('interest.sports', 'preference');
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_purpose('recommendation', 'recommend content', ARRAY['interest.*']);
CREATE ROLE regress_app LOGIN;
SELECT profile_guard.allow_purpose('regress_app', 'recommendation');
CREATE TABLE profiles (id int PRIMARY KEY, sports text, music text);
GRANT SELECT ON profiles TO regress_app;
SELECT profile_guard.protect('profiles', 'id');
SELECT profile_guard.classify('profiles', 'sports', 'interest.sports');
SELECT profile_guard.classify('profiles', 'music', 'interest.music');
SELECT profile_guard.register_subject(s::text) FROM generate_series(1, 10) s;
SELECT profile_guard.grant_consent(s::text, 'recommendation', ARRAY['interest.*'])
	FROM generate_series(1, 8) s;
INSERT INTO profiles SELECT s, 'SECRETSPORT' || s, 'SECRETMUSIC' || s FROM generate_series(1, 8) s;
CREATE FUNCTION music_of(i int) RETURNS text LANGUAGE plpgsql STABLE
	AS $$ BEGIN RETURN (SELECT music FROM profiles WHERE id = i); END $$;
GRANT EXECUTE ON FUNCTION music_of(int) TO regress_app;
SQL

# ---------- a: concurrent sessions
SESSIONS=4 READS=150 DENIALS=20 NESTED=200
session_script() {
	echo "SET profile_guard.purpose = 'recommendation';"
	for i in $(seq "$READS"); do echo "SELECT sports, music FROM profiles WHERE id = $((i % 10 + 1));"; done
	# one statement whose nested lines (level 1) pass the 64 kB buffer
	echo "SELECT count(music_of(i % 10 + 1)) FROM generate_series(1, $NESTED) i;"
	# refused: no purpose
	echo "RESET profile_guard.purpose;"
	for i in $(seq "$DENIALS"); do echo "SELECT sports FROM profiles WHERE id = $i;"; done
}
session_script > "$CLUSTER_DIR/session.sql"
pids=()
for s in $(seq "$SESSIONS"); do
	"$PGBIN/psql" -X -q -d postgres -U regress_app -f "$CLUSTER_DIR/session.sql" >/dev/null 2>&1 &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
settle

# the writer has no database, so it is not in pg_stat_activity: found
# among the postmaster's children by its process title
writer=$(pgrep -P "$(head -1 "$PGDATA_DIR/postmaster.pid")" -f 'profile_guard audit writer' || true)
check "the audit writer runs (pid ${writer:-none})" test -n "$writer"
check "the audit directory was made, mode 0700, its file mode 0600" \
	bash -c "[[ \$(stat -c %a '$DIR') == 700 ]] && ls '$DIR'/audit-*.jsonl >/dev/null && [[ \$(stat -c %a '$DIR'/audit-*.jsonl | sort -u) == 600 ]]"
summary "$DIR"/audit-*.jsonl > "$CLUSTER_DIR/a.sum"
expect "every line is one whole JSON object with ts, pid, database" "bad 0" "$(grep '^bad ' "$CLUSTER_DIR/a.sum")"
expect "read lines of the sessions' statements (level 0)" $((SESSIONS * READS)) \
	"$(count '^read regress_app 0 ' < "$CLUSTER_DIR/a.sum")"
expect "read lines of the nested statements (level 1)" $((SESSIONS * NESTED)) \
	"$(count '^read regress_app 1 ' < "$CLUSTER_DIR/a.sum")"
expect "denial lines" $((SESSIONS * DENIALS)) "$(count '^denial regress_app 0 ' < "$CLUSTER_DIR/a.sum")"
expect "lines per session" "$(yes $((READS + NESTED + DENIALS)) | head -n "$SESSIONS" | xargs)" \
	"$(grep ' regress_app ' "$CLUSTER_DIR/a.sum" | awk '{print $4}' | sort | uniq -c | awk '{print $1}' | xargs)"
check "the lines name the database" \
	bash -c "grep -q '\"database\":\"postgres\"' '$DIR'/audit-*.jsonl"
check "no value in the audit file" \
	bash -c "! grep -q SECRET '$DIR'/audit-*.jsonl"
check "no audit line in the server log" \
	bash -c "! grep -q 'profile_guard audit:' '$LOG'"

# ---------- b: a backend killed with SIGKILL, its lines still in the buffer
[[ -n $writer ]] && kill -STOP "$writer"
"$PGBIN/psql" -X -q -d postgres -U regress_app >/dev/null 2>&1 <<'SQL' &
SET profile_guard.purpose = 'recommendation';
SELECT sports FROM profiles WHERE id = 1;
BEGIN;
SELECT music FROM profiles WHERE id = 2;
SELECT sports, pg_sleep(60) FROM profiles WHERE id = 3;
SQL
BG=$!
pid=
for _ in $(seq 100); do
	pid=$("$PGBIN/psql" -X -At -d postgres -c "SELECT pid FROM pg_stat_activity WHERE usename = 'regress_app' AND wait_event = 'PgSleep'")
	[[ -n $pid ]] && break
	sleep 0.1
done
check "the session to kill is sleeping (pid ${pid:-none})" test -n "$pid"
if [[ -n $pid ]]; then
	summary "$DIR"/audit-*.jsonl > "$CLUSTER_DIR/b0.sum"
	expect "while the writer is stopped, the lines stay in the buffer" 0 \
		"$(count "^read regress_app 0 $pid\$" < "$CLUSTER_DIR/b0.sum")"
	kill -KILL "$pid"
	# the postmaster tells every process to quit (SIGQUIT): the writer
	# gets it once let go, and kills what is left after 5 s
	sleep 0.5
	[[ -n $writer ]] && kill -CONT "$writer"
	wait "$BG" || true
	# the postmaster restarts every backend; wait until it is back
	for _ in $(seq 300); do
		"$PGBIN/psql" -X -At -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break
		sleep 0.2
	done
	settle
	summary "$DIR"/audit-*.jsonl > "$CLUSTER_DIR/b.sum"
	expect "the killed backend's finished statements are in the file (committed, and in its open transaction)" 2 \
		"$(count "^read regress_app 0 $pid\$" < "$CLUSTER_DIR/b.sum")"
	expect "still one whole JSON object a line" "bad 0" "$(grep '^bad ' "$CLUSTER_DIR/b.sum")"
fi

# ---------- c: rotation by a new audit_filename
settle
before=$(cat "$DIR"/audit-*.jsonl | wc -l)
"$PGBIN/psql" -X -q -d postgres -U regress_app >"$CLUSTER_DIR/c.out" 2>&1 <<SQL
SET profile_guard.purpose = 'recommendation';
SELECT sports FROM profiles WHERE id = 1;
\\! "$PGBIN/psql" -X -q -d postgres -c "ALTER SYSTEM SET profile_guard.audit_filename = 'rotated-%Y%m%d-%H.jsonl'" -c "ALTER SYSTEM SET profile_guard.audit_fsync = on" -c "SELECT pg_reload_conf()" >/dev/null
\\! sleep 1
SELECT 1;
SELECT 'now: ' || current_setting('profile_guard.audit_filename');
SELECT sports FROM profiles WHERE id = 2;
SQL
check "the open session took the new setting" grep -q 'now: rotated-%Y%m%d-%H.jsonl' "$CLUSTER_DIR/c.out"
for _ in $(seq 50); do
	[[ $("$PGBIN/psql" -X -At -d postgres -c 'SHOW profile_guard.audit_filename') == rotated-* ]] && break
	sleep 0.1
done
"$PGBIN/psql" -X -q -d postgres -U regress_app >/dev/null <<'SQL'
SET profile_guard.purpose = 'recommendation';
SELECT sports FROM profiles WHERE id = 3;
SELECT music FROM profiles WHERE id = 4;
SQL
settle
expect "the old file got the line before the reload only" $((before + 1)) "$(cat "$DIR"/audit-*.jsonl | wc -l)"
if ls "$DIR"/rotated-*.jsonl >/dev/null 2>&1; then
	summary "$DIR"/rotated-*.jsonl > "$CLUSTER_DIR/c.sum"
	expect "the new file has the three lines after the reload" 3 "$(count '^read regress_app 0 ' < "$CLUSTER_DIR/c.sum")"
	expect "the new file: one whole JSON object a line" "bad 0" "$(grep '^bad ' "$CLUSTER_DIR/c.sum")"
else
	check "a file named by the new pattern exists" false
fi

# ---------- d: the file cannot be opened: the server log, then the file again
# (a regular file where the directory should be: unlike permissions, this
# stops root too)
"$PGBIN/psql" -X -q -d postgres \
	-c "ALTER SYSTEM SET profile_guard.audit_directory = 'blocked_audit'" \
	-c "ALTER SYSTEM RESET profile_guard.audit_filename" -c "SELECT pg_reload_conf()" >/dev/null
pg_as_owner touch "$PGDATA_DIR/blocked_audit"
for _ in $(seq 50); do
	[[ $("$PGBIN/psql" -X -At -d postgres -c 'SHOW profile_guard.audit_directory') == blocked_audit ]] && break
	sleep 0.1
done
"$PGBIN/psql" -X -q -d postgres -U regress_app >/dev/null 2>&1 <<SQL
SET profile_guard.purpose = 'recommendation';
SELECT sports FROM profiles WHERE id = 5;
SELECT music FROM profiles WHERE id = 6;
\\! rm -f "$PGDATA_DIR/blocked_audit"
SELECT sports FROM profiles WHERE id = 7;
SQL
settle
log_lines > "$CLUSTER_DIR/d.jsonl"
summary "$CLUSTER_DIR/d.jsonl" > "$CLUSTER_DIR/d.sum"
expect "the two lines written while blocked are in the server log" 2 "$(count '^read regress_app 0 ' < "$CLUSTER_DIR/d.sum")"
expect "in the server log, with the keys of the file" "bad 0" "$(grep '^bad ' "$CLUSTER_DIR/d.sum")"
# ENOTDIR: SQLSTATE 42809 (errcode_for_file_access), with the file's path
expect "one WARNING per failed write, naming the file" 2 \
	"$(grep -c " 42809 .*\"blocked_audit/audit-[^\"]*\.jsonl\"" "$LOG" || true)"
if ls "$PGDATA_DIR"/blocked_audit/audit-*.jsonl >/dev/null 2>&1; then
	summary "$PGDATA_DIR"/blocked_audit/audit-*.jsonl > "$CLUSTER_DIR/d2.sum"
	expect "once it can, the next statement writes to the file (directory made)" 1 \
		"$(count '^read regress_app 0 ' < "$CLUSTER_DIR/d2.sum")"
else
	check "once it can, the next statement writes to the file (directory made)" false
fi

if [[ $fail -ne 0 ]]; then
	echo "--- audit files ---"
	ls -la "$DIR" "$PGDATA_DIR/blocked_audit" 2>&1 || true
	echo "--- server log (tail) ---"
	tail -40 "$LOG" | cut -c1-300
	exit 1
fi
echo "audit_file: $(cat "$DIR"/*.jsonl | wc -l) lines in $(ls "$DIR" | wc -l) files"
