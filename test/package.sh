#!/usr/bin/env bash
# test/package.sh — builds the Debian package postgresql-15-profile-guard
# from the checked-out tree (debian/, pg_buildext, dh), installs it, and runs
# its autopkgtest (debian/tests/installcheck: make installcheck on a cluster
# that preloads the installed library).  Then removes the package and
# re-installs the tree's own build, so that the machine is as before.
# Needs root (dpkg) and the packages in PG_PACKAGE_BUILD_DEPS
# (test/install_dependencies.sh installs them).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. test/lib/cluster.sh

PG_PACKAGE_BUILD_DEPS="debhelper postgresql-server-dev-all fakeroot dpkg-dev"
if [[ $(id -u) -ne 0 ]]; then
	echo "needs root to install the package"
	exit 77
fi
missing=()
for p in $PG_PACKAGE_BUILD_DEPS; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [[ ${#missing[@]} -gt 0 ]]; then
	echo "missing ${missing[*]} (run bash test/install_dependencies.sh)"
	exit 1
fi

version=$(sed -n '1s/^profile-guard (\([^)]*\)).*/\1/p' debian/changelog)
work=$(mktemp -d /tmp/profile_guard_package.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
src=$work/profile-guard-$version
mkdir -p "$src"
# the tracked files only: no objects of an in-tree build
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$ROOT" ls-files -z | (cd "$ROOT" && tar --null -cf - -T -) | tar -xf - -C "$src"
else
	cp -a "$ROOT/." "$src" && make -C "$src" -s clean PG_CONFIG="$PG_CONFIG" >/dev/null 2>&1
fi

echo "== building postgresql-15-profile-guard $version"
(cd "$src" && DEB_BUILD_OPTIONS="parallel=$(nproc) nocheck" dpkg-buildpackage -us -uc -b) \
	>"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; echo "the package did not build"; exit 1; }
deb=$(ls "$work"/postgresql-15-profile-guard_"$version"_*.deb 2>/dev/null | head -1)
[[ -n $deb ]] || { echo "no .deb was built"; exit 1; }
echo "built $(basename "$deb")"
dpkg-deb -c "$deb" | awk '{print $6}' | grep -E 'profile_guard(\.so|\.control|--1\.2\.sql)$' | sed 's/^/  /'

status=0
dpkg -i "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log"; echo "the package did not install"; exit 1; }
# the installed files are the package's, where this PostgreSQL looks for them
ext_version=$(sed -n "s/^default_version = '\\(.*\\)'/\\1/p" profile_guard.control)
for f in "$("$PG_CONFIG" --pkglibdir)/profile_guard.so" \
	"$("$PG_CONFIG" --sharedir)/extension/profile_guard.control" \
	"$("$PG_CONFIG" --sharedir)/extension/profile_guard--$ext_version.sql"; do
	[[ $(dpkg -S "$f" 2>/dev/null) == postgresql-15-profile-guard:* ]] ||
		{ echo "$f is not the package's"; status=1; }
done
echo "== debian/tests/installcheck against the installed package"
(cd "$src" && sh debian/tests/installcheck) || status=1

dpkg -r postgresql-15-profile-guard >/dev/null 2>&1
# the tree's own build, as test/run_tests.sh installed it
pg_build_and_install || status=1
exit $status
