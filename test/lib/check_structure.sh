#!/usr/bin/env bash
# test/lib/check_structure.sh — checks of the source's structure, run by
# test/run_tests.sh.  Prints one "check ... ok" or "check ... FAILED (why)"
# line per check and exits non-zero when any failed.
#
#   - one relcache callback: a backend has ten in all, shared with every
#     other preloaded library; ours is the one in src/invalidation.c.
#   - every hook is installed once, in src/hooks.c: each hook variable
#     below is assigned exactly once in src/, and that is in src/hooks.c.
#   - no include cycle: the modules of src/ (a .c with its .h) depend on one
#     another without a cycle (test/lib/include_graph.pl).
#   - only what the server looks up is exported from the library, when it
#     is built (profile_guard.so next to the Makefile).
#   - META.json follows the PGXN meta spec and names the control file's
#     version and the install script the Makefile builds
#     (test/lib/check_meta.pl).
set -uo pipefail
cd "$(dirname "$0")/../.."

status=0

n=$(grep -o 'CacheRegisterRelcacheCallback *(' src/*.c | wc -l)
if [[ $n -eq 1 ]]; then
	echo "check one relcache callback ... ok"
else
	echo "check one relcache callback ... FAILED ($n registrations in src/, expected 1)"
	status=1
fi

HOOKS="planner_hook ExecutorStart_hook ExecutorRun_hook ExecutorFinish_hook
ExecutorEnd_hook ProcessUtility_hook post_parse_analyze_hook emit_log_hook
shmem_request_hook shmem_startup_hook"
bad=()
for h in $HOOKS; do
	# "hook =" (not "==", not "next_hook =") anywhere in src/
	hits=$(grep -nE "(^|[^A-Za-z0-9_])${h}[[:space:]]*=([^=]|$)" src/*.c src/*.h)
	total=$(grep -c . <<<"$hits")
	in_hooks=$(grep -c '^src/hooks\.c:' <<<"$hits")
	if [[ $total -ne 1 || $in_hooks -ne 1 ]]; then
		bad+=("$h: assigned $total time(s), $in_hooks in src/hooks.c${hits:+ [$(tr '\n' ' ' <<<"$hits" | sed 's/[[:space:]]\+/ /g; s/ $//')]}")
	fi
done
if [[ ${#bad[@]} -eq 0 ]]; then
	echo "check every hook assigned once, in src/hooks.c ... ok"
else
	echo "check every hook assigned once, in src/hooks.c ... FAILED (each must be assigned exactly once, in src/hooks.c only)"
	printf '    %s\n' "${bad[@]}"
	status=1
fi

if cycle=$(perl test/lib/include_graph.pl src 2>&1 >/dev/null); then
	echo "check no include cycle among the modules of src/ ... ok"
else
	echo "check no include cycle among the modules of src/ ... FAILED ($cycle)"
	status=1
fi

if [[ -f profile_guard.so ]] && command -v nm >/dev/null; then
	# _PG_init, the magic block, the worker's entry point, and each SQL
	# function with its info function
	extra=$(nm -D --defined-only profile_guard.so | awk '{print $3}' |
		grep -vE '^(_PG_init|Pg_magic_func|pfg_erasure_worker_main|pfg_audit_writer_main|pg_finfo_profile_guard_[a-z0-9_]+|profile_guard_[a-z0-9_]+)$')
	if [[ -z $extra ]]; then
		echo "check only the server's entry points exported ... ok"
	else
		echo "check only the server's entry points exported ... FAILED ($(tr '\n' ' ' <<<"$extra"))"
		status=1
	fi
fi

if problems=$(perl test/lib/check_meta.pl META.json profile_guard.control Makefile); then
	echo "check META.json against the PGXN meta spec and the control file ... ok"
else
	echo "check META.json against the PGXN meta spec and the control file ... FAILED ($(tr '\n' ';' <<<"$problems"))"
	status=1
fi

exit $status
