#!/usr/bin/env bash
# test/install_dependencies.sh — installs, on Debian 12 as root, every
# operating-system package that building profile_guard, its walkthrough and
# its tests need, and fetches PostgreSQL's source for its own regression
# suite (test/pg_core_regress.sh).  The README's two commands and .ci/run
# run it first; the build and the test runner themselves install nothing.
# Runs "apt-get update" once, only when something is missing.
#
#   build          postgresql-15 postgresql-server-dev-15 libssl-dev
#                  libsodium-dev make gcc
#   tests          postgresql-contrib (pg_stat_statements, beside us in the
#                  coexistence scenario), libipc-run-perl (TAP,
#                  PostgreSQL::Test::Cluster), postgresql-15-pgaudit (a
#                  neighbour in the coexistence scenario), pgbouncer (the
#                  pooler scenario), locales (the redaction scenario's ten
#                  languages), debhelper postgresql-server-dev-all fakeroot
#                  dpkg-dev (building the Debian package), libzstd-dev
#                  liblz4-dev libcurl4-openssl-dev libkrb5-dev (building Citus
#                  for the scenario beside it)
#
# With --build-only, only the build's packages.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD_PACKAGES="postgresql-15 postgresql-server-dev-15 libssl-dev libsodium-dev make gcc"
TEST_PACKAGES="postgresql-contrib libipc-run-perl postgresql-15-pgaudit pgbouncer locales
debhelper postgresql-server-dev-all fakeroot dpkg-dev
libzstd-dev liblz4-dev libcurl4-openssl-dev libkrb5-dev"

packages=$BUILD_PACKAGES
[[ ${1:-} == --build-only ]] || packages="$packages $TEST_PACKAGES"

missing=()
for p in $packages; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
updated=
if [[ ${#missing[@]} -gt 0 ]]; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "error: packages missing and not root: ${missing[*]}" >&2
		exit 1
	fi
	echo "installing: ${missing[*]}"
	apt-get update -qq && updated=1 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || {
			echo "error: could not install ${missing[*]}" >&2
			exit 1
		}
	# the packaged pgbouncer's own service is not the one the tests start
	if [[ " ${missing[*]} " == *" pgbouncer "* ]]; then
		systemctl stop pgbouncer >/dev/null 2>&1 || service pgbouncer stop >/dev/null 2>&1 || true
	fi
fi
[[ ${1:-} == --build-only ]] && exit 0

# PostgreSQL's source, of the installed version, for its regression suite:
# kept in /tmp/postgresql-15-<version> between runs on one machine
version=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null)
upstream=${version%%-*}
if ! ls -d /tmp/postgresql-15-15.*/src/test/regress >/dev/null 2>&1; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "error: PostgreSQL's source is not in /tmp and not root to fetch it (or set PG_SRC for test/pg_core_regress.sh)" >&2
		exit 1
	fi
	for f in /etc/apt/sources.list.d/debian.sources; do
		[[ -f $f ]] && sed -i -E 's/^Types: deb$/Types: deb deb-src/' "$f"
	done
	apt-get update -qq || exit 1
	fetched=
	# the installed version first, then what the archive offers, newest first
	for v in $({ echo "$version"
				 apt-cache showsrc postgresql-15 | awk '/^Version:/ {print $2}' | sort -rV; } | awk 'NF && !seen[$0]++'); do
		if (cd /tmp && apt-get source -qq "postgresql-15=$v" >/dev/null 2>&1); then
			echo "fetched the source of postgresql-15 $v"
			fetched=1
			break
		fi
		echo "note: the source of postgresql-15 $v is not available" >&2
	done
	[[ -n $fetched ]] || { echo "error: could not fetch the source of postgresql-15 $upstream" >&2; exit 1; }
fi
exit 0
