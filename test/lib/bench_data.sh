# test/lib/bench_data.sh — shared by the benchmarks in test/bench/: their
# throw-away cluster with a database "bench", the data set of subjects,
# consents and a wide guarded table "profiles", and small helpers.  Source it
# after test/lib/cluster.sh; it defines functions only.

# bench_cluster_start NAME [postgresql.conf lines...]: builds and installs
# the extension (test/install_dependencies.sh first, on a fresh machine), starts a cluster sized for
# 1,000,000 subjects (stopped when the script exits) and creates the
# database "bench".  Sets PSQL, a psql command line for that database.
bench_cluster_start() {
	local name=$1; shift
	pg_build_and_install || return 1
	pg_cluster_start "$name" "shared_buffers = '1GB'" "work_mem = '64MB'" "max_wal_size = '8GB'" "jit = off" "$@" || return 1
	trap 'pg_cluster_stop' EXIT
	PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d bench)
	"$PGBIN/psql" -X -q -c "CREATE DATABASE bench" postgres
}

# bench_setup_only: when SETUP_ONLY is set, leaves the loaded cluster
# running for profiling (stop it with pg_ctl) and ends the script.
bench_setup_only() {
	[[ -n ${SETUP_ONLY:-} ]] || return 0
	trap - EXIT
	echo "cluster running: PGHOST=$PGHOST PGPORT=$PGPORT PGDATA=$PGDATA_DIR" >&2
	exit 0
}

# bench_profiles_sql SCALE [OPTION...]: prints the SQL that loads the data
# set, for the caller to run with its own statements in one psql session:
# the extension, role bench_app, tags interest.sports, interest.music and
# behavior.visits, purpose recommendation (interest.*, behavior.visits)
# allowed to bench_app, subjects 1..SCALE, a grant of every tag of the
# purpose by three subjects in four (i % 4 <> 0), and the table profiles (id
# bigint PRIMARY KEY and one tag column per tag), one row per subject,
# guarded, classified and readable by bench_app.  The catalog is filled in
# bulk, as a migration would fill it, not call by call.  Options:
#   sensitive        also tag health.condition (medical_health) in the
#                    purpose and in every grant, given separately
#   subjects=none    subjects without birth date (the default)
#   subjects=adults  every subject born 30 years ago
#   subjects=mixed   one in 20 born 15 years ago (a minor), the others 30;
#                    one in 50 opted out
#   columns=LIST     the table's tag columns, a comma-separated subset of
#                    sports,music,visits (the default: all three); empty:
#                    no table
#   values=constant  sports and music hold 'sport' and 'music' (by default
#                    they cycle through three values each); visits is i % 40
#   plain_copy       also profiles_plain: the same rows, not guarded,
#                    readable by bench_app
bench_profiles_sql() {
	local scale=$1; shift
	local sensitive='' subjects=none columns=sports,music,visits values=varied plain_copy='' opt
	for opt in "$@"; do
		case $opt in
			sensitive) sensitive=1 ;;
			subjects=none | subjects=adults | subjects=mixed) subjects=${opt#subjects=} ;;
			columns=*) columns=${opt#columns=} ;;
			values=constant | values=varied) values=${opt#values=} ;;
			plain_copy) plain_copy=1 ;;
			*) echo "bench_profiles_sql: unknown option $opt" >&2; return 2 ;;
		esac
	done
	local tags="ARRAY['interest.*', 'behavior.visits']"
	[[ -n $sensitive ]] && tags="ARRAY['interest.*', 'behavior.visits', 'health.condition']"

	cat <<SQL
CREATE EXTENSION profile_guard;
CREATE ROLE bench_app LOGIN;
SELECT profile_guard.define_tag('interest.sports', 'preference');
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_tag('behavior.visits', 'behavior');
SQL
	[[ -n $sensitive ]] && echo "SELECT profile_guard.define_tag('health.condition', 'medical_health');"
	cat <<SQL
SELECT profile_guard.define_purpose('recommendation', 'recommend', $tags);
SELECT profile_guard.allow_purpose('bench_app', 'recommendation');
SQL
	case $subjects in
		none) echo "INSERT INTO profile_guard.subject (subject) SELECT i::text FROM generate_series(1, $scale) i;" ;;
		adults) echo "INSERT INTO profile_guard.subject (subject, birth_date)
SELECT i::text, current_date - 30 * 365 FROM generate_series(1, $scale) i;" ;;
		mixed) echo "INSERT INTO profile_guard.subject (subject, birth_date, opted_out)
SELECT i::text, CASE WHEN i % 20 = 0 THEN current_date - 15 * 365 ELSE current_date - 30 * 365 END, i % 50 = 0
FROM generate_series(1, $scale) i;" ;;
	esac
	if [[ -n $sensitive ]]; then
		echo "INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags, separate)
SELECT i::text, 'recommendation', 1, 'grant', $tags, true"
	else
		echo "INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags)
SELECT i::text, 'recommendation', 1, 'grant', $tags"
	fi
	echo "FROM generate_series(1, $scale) i WHERE i % 4 <> 0;"
	echo "SELECT profile_guard._policy_changed();"

	[[ -n $columns ]] || return 0
	local col defs=() exprs=() classes=()
	for col in ${columns//,/ }; do
		case $col:$values in
			sports:varied) defs+=("sports text"); exprs+=("(ARRAY['football','tennis','golf'])[1 + i % 3]") ;;
			sports:constant) defs+=("sports text"); exprs+=("'sport'") ;;
			music:varied) defs+=("music text"); exprs+=("(ARRAY['jazz','rock','pop'])[1 + i % 3]") ;;
			music:constant) defs+=("music text"); exprs+=("'music'") ;;
			visits:*) defs+=("visits int"); exprs+=("i % 40") ;;
			*) echo "bench_profiles_sql: unknown column $col" >&2; return 2 ;;
		esac
		case $col in
			sports) classes+=("('sports', 'interest.sports')") ;;
			music) classes+=("('music', 'interest.music')") ;;
			visits) classes+=("('visits', 'behavior.visits')") ;;
		esac
	done
	cat <<SQL
CREATE TABLE profiles (id bigint PRIMARY KEY$(printf ', %s' "${defs[@]}"));
INSERT INTO profiles SELECT i$(printf ', %s' "${exprs[@]}") FROM generate_series(1, $scale) i;
SELECT profile_guard.protect('profiles', 'id');
SELECT profile_guard.classify('profiles', c, t) FROM (VALUES $(printf '%s, ' "${classes[@]}" | sed 's/, $//')) v(c, t);
GRANT SELECT ON profiles TO bench_app;
SQL
	[[ -n $plain_copy ]] || return 0
	cat <<SQL
-- the same rows in a table that is not guarded: the ungated baseline
CREATE TABLE profiles_plain (LIKE profiles INCLUDING ALL);
INSERT INTO profiles_plain SELECT * FROM profiles;
GRANT SELECT ON profiles_plain TO bench_app;
SQL
}

# bench_pk_script SCALE: prints the pgbench script of primary-key look-ups
# of the three tag columns of profiles, at random subjects.
bench_pk_script() {
	cat <<PGB
\set id random(1, $1)
SELECT sports, music, visits FROM profiles WHERE id = :id;
PGB
}

# bench_median: the median of the numbers on standard input, one a line.
bench_median() {
	sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
