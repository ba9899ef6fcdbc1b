#!/usr/bin/env bash
# test/pg_core_regress.sh — PostgreSQL's own regression suite (the
# parallel_schedule of src/test/regress, from the Debian source package of
# the installed server) run twice against the installed binaries:
#
#   plain     a temporary instance without profile_guard
#   guarded   shared_preload_libraries = 'profile_guard', a master key file,
#             and CREATE EXTENSION profile_guard in the regression database
#             (pg_regress --load-extension)
#
# then compares the per-test results: the same tests must pass and fail in
# both runs.  Prints a summary and exits non-zero on any difference (or if a
# run did not complete).  test/run_tests.sh runs it last but one (it takes
# minutes; SKIP_CORE=1 leaves it out); alone:
#
#   bash test/pg_core_regress.sh
#
# Environment: PG_CONFIG or PGBIN (which PostgreSQL; default the pg_config on
# the PATH), PG_SRC (a PostgreSQL 15 source tree; default:
# /tmp/postgresql-15-<installed version>, else any /tmp/postgresql-15-15.*,
# which test/install_dependencies.sh fetches with apt-get source),
# CORE_WORK (work directory; default a new /tmp/profile_guard_core.XXXXXX,
# kept when KEEP=1 or on failure), CORE_SCHEDULE (default parallel_schedule).
#
# Only regress.so is built, straight from src/test/regress/regress.c against
# the installed server headers (no configure: about a second).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. test/lib/cluster.sh

start_all=$SECONDS
pg_build_and_install || exit 1

# ---------- the source of the installed version
pg_version=$("$PG_CONFIG" --version | awk '{print $2}')		# e.g. 15.20
if [[ -z ${PG_SRC:-} ]]; then
	if [[ -d /tmp/postgresql-15-$pg_version/src/test/regress ]]; then
		PG_SRC=/tmp/postgresql-15-$pg_version
	else
		PG_SRC=$(ls -d /tmp/postgresql-15-15.*/src/test/regress 2>/dev/null | sort -V | tail -1)
		PG_SRC=${PG_SRC%/src/test/regress}
	fi
	if [[ -z $PG_SRC ]]; then
		echo "error: no PostgreSQL source tree in /tmp (bash test/install_dependencies.sh fetches it; or set PG_SRC)" >&2
		exit 1
	fi
fi
REG=$PG_SRC/src/test/regress
[[ -f $REG/regress.c && -f $REG/parallel_schedule ]] || { echo "error: no regression suite in $PG_SRC" >&2; exit 1; }
src_version=${PG_SRC##*-}
echo "server $pg_version, regression suite from $PG_SRC"
[[ $src_version == "$pg_version" ]] || echo "note: suite version $src_version differs from the server's $pg_version; both runs use the same suite, so the comparison still holds"

# ---------- work directory (owned by the cluster's OS user) and regress.so
WORK=${CORE_WORK:-$(mktemp -d /tmp/profile_guard_core.XXXXXX)}
mkdir -p "$WORK/lib"
chmod 755 "$WORK"
t0=$SECONDS
gcc -O2 -fPIC -shared -I"$("$PG_CONFIG" --includedir-server)" -I"$REG" \
	-o "$WORK/lib/regress.so" "$REG/regress.c" || { echo "error: building regress.so failed" >&2; exit 1; }
echo "built regress.so in $((SECONDS - t0)) s"
# pg_regress wants to write next to its input for some files: copy the suite
cp -r "$REG/sql" "$REG/expected" "$REG/data" "$REG/parallel_schedule" "$REG/resultmap" "$WORK/" 2>/dev/null
[[ $(id -u) -eq 0 ]] && chown -R postgres "$WORK"

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/master.key"
chmod 600 "$WORK/master.key"
[[ $(id -u) -eq 0 ]] && chown postgres "$WORK/master.key"
: > "$WORK/plain.conf"
cat > "$WORK/guarded.conf" <<CONF
shared_preload_libraries = 'profile_guard'
profile_guard.master_key_file = '$WORK/master.key'
CONF

run_suite() {
	local mode=$1; shift
	local port t
	port=$(pg_free_port $((57000 + RANDOM % 2000)))
	mkdir -p "$WORK/$mode"
	[[ $(id -u) -eq 0 ]] && chown postgres "$WORK/$mode"
	t=$SECONDS
	pg_as_owner "$PGXS_DIR/src/test/regress/pg_regress" \
		--temp-instance="$WORK/$mode/tmp_check" --port="$port" \
		--bindir="$PGBIN" --dlpath="$WORK/lib" \
		--inputdir="$WORK" --outputdir="$WORK/$mode" \
		--schedule="$WORK/${CORE_SCHEDULE:-parallel_schedule}" --max-concurrent-tests=20 \
		--temp-config="$WORK/$mode.conf" "$@" > "$WORK/$mode.out" 2>&1
	echo "$mode run: $((SECONDS - t)) s, $(grep -E '^ *(All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed)' "$WORK/$mode.out" | sed 's/^ *//')"
	# one line per test: name and ok/FAILED/failed (ignored)
	sed -nE 's/^(test | +)?([A-Za-z0-9_.]+) +\.\.\. +(ok|FAILED|failed \(ignored\)).*/\2 \3/p' "$WORK/$mode.out" \
		| sed "s/failed (ignored)/ignored/" | LC_ALL=C sort > "$WORK/$mode.results"
}

run_suite plain
run_suite guarded --load-extension=profile_guard

# the diff of one test in one run, without paths and timings
test_diff() {
	local mode=$1 t=$2
	awk -v t="$t" '
		/^diff / { on = ($0 ~ ("/" t "\\.out$") || $0 ~ ("/" t "_[0-9]\\.out$")); next }
		on && !/^(\+\+\+|---) / { print }' "$WORK/$mode/regression.diffs" 2>/dev/null
}

# The catalog sanity test opr_sanity lists every SECURITY DEFINER function
# and every IMMUTABLE function that is not parallel safe in the database: with
# the extension created, its own functions appear there.  That difference is
# accepted when every added row names a function of the extension script and
# nothing else changed.
ext_functions=$(grep -hoiE 'CREATE (OR REPLACE )?FUNCTION +[a-z_0-9.]+' sql/ext/*.sql |
	awk '{print $NF}' | sed 's/.*\.//' | sort -u)
only_extension_rows() {
	local line name
	while IFS= read -r line; do
		case $line in
			@@*|' '*) continue ;;
		esac
		# "+ 16625 | prohibited_topic", "+  oid  |  proname", "+-----", "+(23 rows)", "-(0 rows)", " oid | proname" removed
		if [[ $line =~ ^\+\ +[0-9]+\ \|\ ([a-z_0-9]+)\ *$ ]]; then
			name=${BASH_REMATCH[1]}
			grep -qx "$name" <<< "$ext_functions" || return 1
		elif [[ $line =~ ^\+\ (profile_guard_ddl)\ +\| ]]; then
			continue			# event_trigger lists every event trigger: ours too
		elif [[ $line =~ ^[-+]\ *oid\ *\|\ *proname\ *$ || $line =~ ^[-+]-+\+-+$ ||
				$line =~ ^[-+]\([0-9]+\ rows?\)$ ]]; then
			continue
		else
			return 1
		fi
	done
	return 0
}
ALLOWED_EXTENSION_LISTINGS="opr_sanity event_trigger"

status=0
nplain=$(wc -l < "$WORK/plain.results")
nguard=$(wc -l < "$WORK/guarded.results")
if [[ $nplain -lt 100 || $nguard -lt 100 ]]; then
	echo "error: a run did not complete (plain: $nplain tests, guarded: $nguard tests); see $WORK/*.out" >&2
	tail -n 20 "$WORK/plain.out" "$WORK/guarded.out" >&2
	status=1
fi
# the extension really was created in the guarded run
if ! grep -q 'installing profile_guard' "$WORK/guarded.out"; then
	echo "error: the guarded run did not create the extension" >&2
	status=1
fi

accepted=()
while read -r t r_plain r_guard; do
	if [[ $r_plain == "$r_guard" ]]; then
		# failing in both: the failure must look the same
		if [[ $r_plain != ok ]] && ! diff -q <(test_diff plain "$t") <(test_diff guarded "$t") >/dev/null; then
			echo "error: $t fails in both runs, but differently with profile_guard:" >&2
			diff <(test_diff plain "$t") <(test_diff guarded "$t") | head -40 >&2
			status=1
		fi
		continue
	fi
	if [[ $r_plain == ok && " $ALLOWED_EXTENSION_LISTINGS " == *" $t "* ]] &&
		test_diff guarded "$t" | only_extension_rows; then
		accepted+=("$t")
		continue
	fi
	echo "error: $t: $r_plain without profile_guard, $r_guard with it" >&2
	test_diff guarded "$t" | head -40 >&2
	status=1
done < <(LC_ALL=C join -a1 -a2 -e missing -o 0,1.2,2.2 "$WORK/plain.results" "$WORK/guarded.results")

npass=$(grep -c ' ok$' "$WORK/plain.results")
nfail=$(grep -vc ' ok$' "$WORK/plain.results")
echo "core suite: $nplain tests; plain $npass ok / $nfail not ok; guarded $(grep -c ' ok$' "$WORK/guarded.results") ok / $(grep -vc ' ok$' "$WORK/guarded.results") not ok"
if [[ $nfail -gt 0 ]]; then
	echo "not ok in both runs, with identical diffs (suite/server version skew or environment, not the extension):"
	grep -v ' ok$' "$WORK/plain.results" | sed 's/^/    /'
fi
for t in "${accepted[@]}"; do
	echo "accepted difference: $t lists the extension's own objects (functions that are SECURITY DEFINER or immutable but not parallel safe; its event trigger):"
	test_diff guarded "$t" | grep -E '^\+ +([0-9]+|profile_guard_ddl) +\|' | sed 's/^+/   /'
done
echo "total time: $((SECONDS - start_all)) s"
if [[ $status -eq 0 ]]; then
	echo "core suite comparison: same results with and without profile_guard"
	[[ -z ${KEEP:-} && -z ${CORE_WORK:-} ]] && rm -rf "$WORK"
else
	echo "core suite comparison: DIFFERENT; work directory kept: $WORK"
fi
exit $status
