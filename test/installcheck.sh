#!/usr/bin/env bash
# test/installcheck.sh — "make installcheck" against the installed extension:
# starts a throw-away cluster of the PostgreSQL that PGBIN names (default:
# Debian's 15) with profile_guard preloaded, a master key and the audit trail
# sent to the server log (the audit suite reads it), runs the pg_regress
# suites and the isolation specs with make installcheck, and stops the
# cluster.  Builds nothing: it tests what is installed, from a package or
# from "make install".  Exits with make's status.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh

pg_cluster_start installcheck "profile_guard.audit_destination = 'log'" || exit 1
trap pg_cluster_stop EXIT
# pg_regress connects as the cluster's superuser; results go to test/results
make -s PG_CONFIG="$PG_CONFIG" installcheck \
	EXTRA_REGRESS_OPTS="--host=$PGHOST --port=$PGPORT --user=postgres"
status=$?
if [[ $status -ne 0 ]]; then
	for d in test/results/regression.diffs test/results/isolation/regression.diffs; do
		[[ -s $d ]] && head -60 "$d"
	done
fi
exit $status
