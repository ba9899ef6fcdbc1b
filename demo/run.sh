#!/usr/bin/env bash
# demo/run.sh — the main job: build, start a throw-away cluster with
# profile_guard preloaded, and walk through taxonomy -> purposes -> consent
# -> gated reads on synthetic profile data.  KEEP=1 keeps the cluster.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh
pg_build_and_install || exit 1
pg_cluster_start demo || exit 1
trap 'pg_cluster_stop' EXIT
"$PGBIN/psql" -X -q -c "CREATE DATABASE demo" postgres
"$PGBIN/psql" -X -q -d demo -f demo/walkthrough.sql
status=$?
"$PGBIN/psql" -X -q -d postgres -c "DROP DATABASE demo" -c "DROP ROLE IF EXISTS demo_app"
exit $status
