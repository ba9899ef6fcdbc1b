# test/lib/ops.sh — shared by the operational scenario scripts
# (test/scenario/{coexist,standby,pooler,hostile_input}.sh): clusters of their
# own with chosen settings, the pgaudit library, a fixture, small checks.
# Source it after cd to the repository root; functions and variables only.

. test/lib/cluster.sh
# the scenario's own clusters never reuse the runner's port
unset PGTEST_PORT

OPS_CLUSTERS=()

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# ops_start VAR NAME [postgresql.conf lines...]: a throw-away cluster (see
# pg_cluster_start); VAR_HOST, VAR_PORT, VAR_DATA, VAR_DIR, VAR_KEY are set
# and PGHOST/PGPORT point to it.
ops_start() {
	local var=$1 name=$2; shift 2
	pg_cluster_start "$name" "$@" || fail "could not start cluster $name"
	OPS_CLUSTERS+=("$PGDATA_DIR|$CLUSTER_DIR")
	printf -v "${var}_HOST" %s "$PGHOST"
	printf -v "${var}_PORT" %s "$PGPORT"
	printf -v "${var}_DATA" %s "$PGDATA_DIR"
	printf -v "${var}_DIR" %s "$CLUSTER_DIR"
	printf -v "${var}_KEY" %s "$PG_MASTER_KEY_FILE"
}

# stop every cluster ops_start started (and standbys registered with ops_track)
ops_stop_all() {
	local c data dir
	for c in "${OPS_CLUSTERS[@]}"; do
		data=${c%%|*}; dir=${c#*|}
		[[ -d $data ]] && pg_as_owner "$PGBIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1
		if [[ -z ${KEEP:-} ]]; then
			rm -rf "$dir"
		else
			echo "cluster kept in $dir"
		fi
	done
	OPS_CLUSTERS=()
}

ops_track() {
	OPS_CLUSTERS+=("$1|$2")
}

# the server is up and its log shows no crash
ops_check_alive() {
	local host=$1 port=$2 log=$3 what=${4:-server}
	"$PGBIN/pg_isready" -q -h "$host" -p "$port" -t 10 || fail "$what is down (pg_isready failed); log: $log"
	if grep -E 'terminated by signal|was terminated by exception|server process .* exited with exit code [^0]|PANIC' "$log" >&2; then
		fail "$what log shows a crashed backend ($log)"
	fi
}

# pgaudit is not part of PostgreSQL: from the Debian package
# postgresql-15-pgaudit (test/install_dependencies.sh installs it), copied
# into the PG_CONFIG installation when that is another one (a private copy).
ops_install_pgaudit() {
	local libdir sharedir so control
	libdir=$("$PG_CONFIG" --pkglibdir)
	sharedir=$("$PG_CONFIG" --sharedir)/extension
	[[ -f $libdir/pgaudit.so && -f $sharedir/pgaudit.control ]] && return 0
	so=$(dpkg -L postgresql-15-pgaudit 2>/dev/null | grep -m1 '/pgaudit\.so$')
	control=$(dpkg -L postgresql-15-pgaudit 2>/dev/null | grep -m1 '/pgaudit\.control$')
	[[ -n $so && -n $control ]] ||
		fail "pgaudit is not installed (run bash test/install_dependencies.sh)"
	cp "$so" "$libdir/" && cp "$control" "$(dirname "$control")"/pgaudit--*.sql "$sharedir/" ||
		fail "could not copy pgaudit into $libdir"
	[[ -f $libdir/pgaudit.so ]] || fail "pgaudit.so not found in $libdir"
}

# psql against the current PGHOST/PGPORT; stops on the first error
q() {
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}
qa() {
	"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"
}
