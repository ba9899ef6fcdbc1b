#!/usr/bin/env bash
# test/run_tests.sh — the project's one test command.
#
# Builds with -Wall -Werror (the operating-system packages come first, from
# test/install_dependencies.sh; this script installs none), installs the
# extension into the PostgreSQL that pg_config names (PG_CONFIG or PGBIN, else
# the pg_config on the PATH), installs the extension, starts a throw-away
# cluster with shared_preload_libraries=profile_guard, runs every suite
# (pg_regress, isolation, scenario scripts, TAP tests), stops the cluster and
# exits non-zero on any failure.  Prints "N passed, N failed" last.
#
# Environment: PGTEST_PORT (default: a free port from 55432), KEEP=1 keeps the
# cluster directory for inspection, ONLY=regress|isolation|scenario|tap|core|package
# runs one suite (ONLY=scenario: the structure checks of
# test/lib/check_structure.sh and any test/scenario/*.sh, of which there are
# none now), TESTS="01_x 02_y" runs only those pg_regress tests (with
# ONLY=scenario: only those scenarios), SCENARIOS="a b" only those
# scenarios, TAP_TESTS="t/050_master_key.pl 130_pooler" only those TAP
# tests, SKIP_CORE=1 leaves out PostgreSQL's own regression suite
# (test/pg_core_regress.sh).  Last, test/package.sh builds the Debian package,
# installs it and runs make installcheck against it (Debian's PostgreSQL only).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. test/lib/cluster.sh
# the TAP tests to run; unset, so that no make below sees it (PGXS reads a
# variable of that name as "run the TAP tests in make installcheck")
only_tap=${TAP_TESTS:-}
unset TAP_TESTS

# the seconds each suite took, printed last (CI's budget is 20 minutes)
timings=()
suite_started=$SECONDS
suite_done() { timings+=("$1 $((SECONDS - suite_started)) s"); suite_started=$SECONDS; }

pg_build_and_install || exit 1
suite_done build

# Citus for t/200_beside_citus.pl: built (once per installation; minutes)
# while the other suites run, installed before the TAP tests start
citus_build=
if [[ -z ${ONLY:-} || ${ONLY:-} == tap ]]; then
	mkdir -p test/results
	( . test/lib/tap_prepare.sh && tap_install_citus ) > test/results/citus_build.log 2>&1 &
	citus_build=$!
fi

passed=0
failed=0
skipped=0
failures=()

# the audit trail to the server log: sql/70_audit.sql shows its lines to
# the client (client_min_messages = log)
# (the TAP tests start their own nodes)
if [[ ${ONLY:-} != tap ]]; then
	pg_cluster_start test "profile_guard.audit_destination = 'log'" || exit 1
	trap 'pg_cluster_stop' EXIT
	for db in regress_profile_guard regress_profile_guard_parallel regress_profile_guard_iso; do
		"$PGBIN/psql" -X -q -c "CREATE DATABASE $db" postgres || exit 1
	done
fi

count_pg_regress() {
	# pg_regress ends with "All N tests passed." or "M of N tests failed."
	local out=$1 label=$2 line n m
	line=$(grep -E '^ *(All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed)' "$out" | tail -1)
	if [[ $line =~ All\ ([0-9]+)\ tests\ passed ]]; then
		passed=$((passed + BASH_REMATCH[1]))
	elif [[ $line =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ failed ]]; then
		m=${BASH_REMATCH[1]}; n=${BASH_REMATCH[2]}
		failed=$((failed + m)); passed=$((passed + n - m))
		failures+=("$label: $m of $n (see regression.diffs under test/results)")
	else
		failed=$((failed + 1)); failures+=("$label: did not run")
	fi
}

if [[ -z ${ONLY:-} || ${ONLY:-} == regress ]]; then
	tests=${TESTS:-$(cd sql && ls [0-9]*.sql 2>/dev/null | sed 's/\.sql$//' | tr '\n' ' ')}
	if [[ -n $tests ]]; then
		mkdir -p test/results
		"$PGXS_DIR/src/test/regress/pg_regress" --bindir="$PGBIN" \
			--inputdir=. --outputdir=test/results --use-existing \
			--host="$PGHOST" --port="$PGPORT" --user=postgres \
			--dbname=regress_profile_guard $tests 2>&1 | tee test/results/regress.out
		count_pg_regress test/results/regress.out regress
		# once more with every parallel-safe plan run in a parallel worker:
		# a plan's shape must never change what a statement returns
		mkdir -p test/results/parallel
		PGOPTIONS="${PGOPTIONS:-} -c force_parallel_mode=regress" \
		"$PGXS_DIR/src/test/regress/pg_regress" --bindir="$PGBIN" \
			--inputdir=. --outputdir=test/results/parallel --use-existing \
			--host="$PGHOST" --port="$PGPORT" --user=postgres \
			--dbname=regress_profile_guard_parallel $tests 2>&1 | tee test/results/regress_parallel.out
		count_pg_regress test/results/regress_parallel.out "regress (force_parallel_mode = regress)"
	fi
	suite_done regress
fi

if [[ -z ${ONLY:-} || ${ONLY:-} == isolation ]]; then
	specs=$(cd test/specs 2>/dev/null && ls *.spec 2>/dev/null | sed 's/\.spec$//' | tr '\n' ' ')
	if [[ -n $specs ]]; then
		mkdir -p test/results/isolation
		"$PGXS_DIR/src/test/isolation/pg_isolation_regress" --bindir="$PGBIN" \
			--inputdir=test --outputdir=test/results/isolation --use-existing \
			--host="$PGHOST" --port="$PGPORT" --user=postgres \
			--dbname=regress_profile_guard_iso $specs 2>&1 | tee test/results/isolation.out
		count_pg_regress test/results/isolation.out isolation
	fi
	suite_done isolation
fi

if [[ -z ${ONLY:-} || ${ONLY:-} == scenario ]]; then
	# the source's structure (test/lib/check_structure.sh): one relcache
	# callback, every hook installed once in src/hooks.c, no include cycle,
	# only the entry points the server looks up exported
	while IFS= read -r line; do
		echo "$line"
		case $line in
		check*" ... ok") passed=$((passed + 1)) ;;
		check*" ... FAILED"*)
			failed=$((failed + 1)); failures+=("${line%% ... FAILED*}") ;;
		esac
	done < <(bash test/lib/check_structure.sh)
	mkdir -p test/results
	only_scenarios=${SCENARIOS:-}
	[[ -z $only_scenarios && ${ONLY:-} == scenario ]] && only_scenarios=${TESTS:-}
	for t in test/scenario/*.sh; do
		[[ -e $t ]] || continue
		name=$(basename "$t" .sh)
		[[ -z $only_scenarios || " $only_scenarios " == *" $name "* ]] || continue
		bash "$t" > "test/results/scenario_$name.log" 2>&1
		rc=$?
		if [[ $rc -eq 0 ]]; then
			echo "scenario $name ... ok"; passed=$((passed + 1))
		elif [[ $rc -eq 77 ]]; then
			# exit 77: what the scenario needs is not here; neither passed nor failed
			echo "scenario $name ... SKIPPED, not counted ($(tail -1 "test/results/scenario_$name.log"))"
			skipped=$((skipped + 1))
		else
			echo "scenario $name ... FAILED (test/results/scenario_$name.log)"
			tail -20 "test/results/scenario_$name.log" | sed 's/^/    /'
			failed=$((failed + 1)); failures+=("scenario $name")
		fi
	done
	suite_done scenario
fi

# The TAP tests (t/*.pl, README.md "Testing"): Perl scripts on
# PostgreSQL::Test::Cluster and Test::More (the PGXS tree's src/test/perl),
# run with prove, each starting the nodes it needs.  initdb refuses root, so
# as root they run as the postgres OS user, in test/results/tap (their
# tmp_check: nodes and regress_log_* files; NAME.log: prove's output).  Each
# file counts as one test.
if [[ -z ${ONLY:-} || ${ONLY:-} == tap ]]; then
	tap_dir=$ROOT/test/results/tap
	rm -rf "$tap_dir"
	mkdir -p "$tap_dir"
	[[ $(id -u) -eq 0 ]] && chown postgres "$tap_dir"
	# pgaudit, locales, message catalogues, Citus: as the user that may
	# install them, before the tests run as another (test/lib/tap_prepare.sh)
	. test/lib/tap_prepare.sh
	[[ -n $citus_build ]] && { wait "$citus_build"; cat test/results/citus_build.log; }
	tap_prepare
	if [[ -z $only_tap ]]; then
		only_tap=$(ls t/*.pl 2>/dev/null | tr '\n' ' ')
	fi
	for t in $only_tap; do
		[[ $t == */* ]] || t=t/$t
		[[ $t == *.pl ]] || t=$t.pl
		name=$(basename "$t" .pl)
		tap_started=$SECONDS
		if [[ ! -e $t ]]; then
			echo "tap $name ... FAILED (no such test: $t)"
			failed=$((failed + 1)); failures+=("tap $name"); continue
		fi
		pg_as_owner env PATH="$PGBIN:$PATH" \
			PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
			PERL5LIB="$PGXS_DIR/src/test/perl:$ROOT/t/lib${PERL5LIB:+:$PERL5LIB}" \
			TESTDIR="$tap_dir" PFG_ROOT="$ROOT" \
			PFG_RUNNER_LOG="${CLUSTER_DIR:+$CLUSTER_DIR/server.log}" \
			prove -v "$t" > "$tap_dir/$name.log" 2>&1
		rc=$?
		if [[ $rc -eq 0 ]] && grep -q "^$t \.* skipped: " "$tap_dir/$name.log"; then
			# plan skip_all: what the test needs is not here; neither passed nor failed
			echo "tap $name ... SKIPPED, not counted ($(grep -m1 -o 'skipped: .*' "$tap_dir/$name.log"))"
			skipped=$((skipped + 1))
		elif [[ $rc -eq 0 ]]; then
			echo "tap $name ... ok ($((SECONDS - tap_started)) s)"; passed=$((passed + 1))
		else
			echo "tap $name ... FAILED (test/results/tap/$name.log, test/results/tap/tmp_check/log/)"
			grep -aE '^(not ok|#)' "$tap_dir/$name.log" | tail -20 | sed 's/^/    /'
			failed=$((failed + 1)); failures+=("tap $name")
		fi
	done
	suite_done tap
fi

# PostgreSQL's own regression suite, with and without the extension (its
# own clusters; a few minutes).  SKIP_CORE=1 leaves it out.
if [[ ( -z ${ONLY:-} || ${ONLY:-} == core ) && -z ${SKIP_CORE:-} ]]; then
	if bash test/pg_core_regress.sh > test/results/core_regress.log 2>&1; then
		echo "core suite (PostgreSQL's regression tests, plain vs preloaded) ... ok"
		passed=$((passed + 1))
	else
		echo "core suite ... FAILED (test/results/core_regress.log)"
		tail -20 test/results/core_regress.log | sed 's/^/    /'
		failed=$((failed + 1)); failures+=("core suite")
	fi
	grep -E '^(same|summary|result)' test/results/core_regress.log | tail -3 | sed 's/^/    /'
	suite_done core
fi

# The Debian package (test/package.sh): built from the tree with debian/,
# installed, and tested with its autopkgtest (make installcheck against the
# installed files); then removed and the tree's build re-installed.  Only
# with Debian's own PostgreSQL (its library directory belongs to a Debian
# package), whose files the package replaces.
if [[ -z ${ONLY:-} || ${ONLY:-} == package ]]; then
	if ! dpkg -S "$("$PG_CONFIG" --pkglibdir)" >/dev/null 2>&1; then
		echo "package ... SKIPPED, not counted ($PG_CONFIG is not Debian's packaged PostgreSQL)"
		skipped=$((skipped + 1))
	else
		mkdir -p test/results
		bash test/package.sh > test/results/package.log 2>&1
		rc=$?
		if [[ $rc -eq 0 ]]; then
			echo "package (build, install, installcheck of postgresql-15-profile-guard) ... ok"
			passed=$((passed + 1))
		elif [[ $rc -eq 77 ]]; then
			echo "package ... SKIPPED, not counted ($(tail -1 test/results/package.log))"
			skipped=$((skipped + 1))
		else
			echo "package ... FAILED (test/results/package.log)"
			tail -20 test/results/package.log | sed 's/^/    /'
			failed=$((failed + 1)); failures+=("package")
		fi
		grep -E '^ *All [0-9]+ tests passed|tests failed' test/results/package.log | sed 's/^/    installcheck: /'
	fi
	suite_done package
fi

printf 'seconds: '; printf '%s, ' "${timings[@]}"; echo "all $SECONDS s"

for f in "${failures[@]}"; do echo "failed: $f"; done
if [[ $skipped -gt 0 ]]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[[ $failed -eq 0 && $passed -gt 0 ]]
