# test/lib/cluster.sh — shared by the test runner, the demo and the benchmarks:
# which PostgreSQL (pg_config), building, and a throw-away cluster with the
# extension preloaded.  Source it; it defines functions and variables only.
# It installs nothing: test/install_dependencies.sh does, before.

# Which PostgreSQL: PG_CONFIG, else PGBIN's pg_config, else the pg_config
# on the PATH (Debian's postgresql-common points it at the newest server's).
# Every other path comes from pg_config.
if [[ -z ${PG_CONFIG:-} ]]; then
	if [[ -n ${PGBIN:-} ]]; then
		PG_CONFIG=$PGBIN/pg_config
	else
		PG_CONFIG=$(command -v pg_config || true)
	fi
fi
if [[ -z $PG_CONFIG || ! -x $PG_CONFIG ]]; then
	echo "error: no pg_config (set PG_CONFIG or PGBIN; on Debian run test/install_dependencies.sh)" >&2
	return 1 2>/dev/null || exit 1
fi
PGBIN=${PGBIN:-$("$PG_CONFIG" --bindir)}
PGXS_DIR=$(dirname "$("$PG_CONFIG" --pgxs)")
PGXS_DIR=${PGXS_DIR%/src/makefiles}
export PG_CONFIG PGBIN

pg_build_and_install() {
	make -s PG_CONFIG="$PG_CONFIG" >/dev/null && make -s PG_CONFIG="$PG_CONFIG" install >/dev/null || {
		echo "error: build failed (on Debian, test/install_dependencies.sh installs what it needs)" >&2
		make PG_CONFIG="$PG_CONFIG" 2>&1 | tail -30 >&2
		return 1
	}
}

# run a command as the cluster's OS user (initdb refuses root)
pg_as_owner() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_free_port() {
	local p=${1:-55432}
	while pg_as_owner bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null || [[ -e /tmp/.s.PGSQL.$p ]]; do
		p=$((p + 1))
	done
	echo "$p"
}

# pg_cluster_start NAME [extra postgresql.conf lines...]
# Sets PGDATA_DIR, PGHOST, PGPORT, PGUSER, CLUSTER_DIR, PG_MASTER_KEY_FILE.
pg_cluster_start() {
	local name=$1; shift
	CLUSTER_DIR=$(mktemp -d "/tmp/profile_guard_${name}.XXXXXX")
	chmod 755 "$CLUSTER_DIR"
	[[ $(id -u) -eq 0 ]] && chown postgres "$CLUSTER_DIR"
	PGDATA_DIR=$CLUSTER_DIR/data
	PGPORT=${PGTEST_PORT:-$(pg_free_port)}
	PGHOST=$CLUSTER_DIR
	PGUSER=postgres
	PG_MASTER_KEY_FILE=$CLUSTER_DIR/master.key
	export PGHOST PGPORT PGUSER PGDATA_DIR CLUSTER_DIR PG_MASTER_KEY_FILE
	pg_as_owner "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust \
		--no-sync -E UTF8 --locale=C >"$CLUSTER_DIR/initdb.log" 2>&1 || {
		cat "$CLUSTER_DIR/initdb.log" >&2; return 1; }
	# a 256-bit master key, readable by the server only
	pg_as_owner bash -c "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > '$PG_MASTER_KEY_FILE' && chmod 600 '$PG_MASTER_KEY_FILE'"
	pg_as_owner bash -c "cat >> '$PGDATA_DIR/postgresql.conf'" <<CONF
port = $PGPORT
listen_addresses = ''
unix_socket_directories = '$CLUSTER_DIR'
shared_preload_libraries = '${PG_PRELOAD:-profile_guard}'
profile_guard.master_key_file = '$PG_MASTER_KEY_FILE'
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_line_prefix = '%m [%p] %u@%d '
max_prepared_transactions = 10
$(printf '%s\n' "$@")
CONF
	pg_as_owner "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$CLUSTER_DIR/server.log" -w -t 60 start >/dev/null || {
		cat "$CLUSTER_DIR/server.log" >&2; return 1; }
}

pg_cluster_stop() {
	[[ -n ${PGDATA_DIR:-} && -d ${PGDATA_DIR:-} ]] || return 0
	pg_as_owner "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1
	if [[ -z ${KEEP:-} ]]; then
		rm -rf "$CLUSTER_DIR"
	else
		echo "cluster kept in $CLUSTER_DIR"
	fi
}
