#!/usr/bin/env bash
# test/scenario/beside_citus.sh — profile_guard beside Citus 13.2 in
# shared_preload_libraries = 'citus,profile_guard'.
#
# A backend has ten relcache callback slots in all (MAX_RELCACHE_CALLBACKS);
# Citus takes several, so profile_guard may take one.  With more, every new
# connection fails with "out of relcache_callback_list slots".  Checks that
# both extensions can be created, that several fresh connections work, and
# that a gated read under a purpose gives the expected rows and cells.
#
# Citus is built from the vendored source in ../shared/vendor (beside the
# repository; see its README.md) into the PostgreSQL installation of PGBIN
# (libkrb5-dev too: PostgreSQL's server headers include gssapi.h), once: the build tree is kept under /tmp, and nothing is rebuilt while
# citus.so is installed there.  Without the vendored source the scenario
# fails.  Starts its own cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
. test/lib/ops.sh
trap ops_stop_all EXIT

VENDOR=$ROOT/../shared/vendor
CITUS_VERSION=13.2.2
CITUS_TARBALL=$VENDOR/citus-$CITUS_VERSION.tar.gz
CITUS_PATCH=$VENDOR/citus-$CITUS_VERSION-pg15.20.patch
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
# one build tree per PostgreSQL installation
CITUS_BUILD=/tmp/profile_guard_citus/$(echo "$PG_CONFIG" | md5sum | cut -c1-12)/citus-$CITUS_VERSION

install_citus() {
	[[ -f $PKGLIBDIR/citus.so ]] && return 0
	if [[ ! -f $CITUS_TARBALL || ! -f $CITUS_PATCH ]]; then
		# a clone without the vendored tree beside it: reported, not counted
		echo "skipped: vendored Citus source not found ($CITUS_TARBALL, $CITUS_PATCH)"
		exit 77
	fi
	local missing=()
	for p in libzstd-dev liblz4-dev libcurl4-openssl-dev libkrb5-dev; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[[ ${#missing[@]} -eq 0 ]] ||
		fail "packages needed to build Citus are missing: ${missing[*]} (run bash test/install_dependencies.sh)"
	if [[ ! -f $CITUS_BUILD/.built ]]; then
		echo "building Citus $CITUS_VERSION in $CITUS_BUILD"
		rm -rf "$CITUS_BUILD"
		mkdir -p "$CITUS_BUILD"
		tar xzf "$CITUS_TARBALL" -C "$CITUS_BUILD" --strip-components=1
		# an archive of the tag may or may not have a top-level directory
		if [[ ! -x $CITUS_BUILD/configure ]]; then
			rm -rf "$CITUS_BUILD" && mkdir -p "$CITUS_BUILD"
			tar xzf "$CITUS_TARBALL" -C "$CITUS_BUILD"
		fi
		(cd "$CITUS_BUILD" && patch -s -p1 < "$CITUS_PATCH" &&
			./configure PG_CONFIG="$PG_CONFIG" >configure.log 2>&1 &&
			make -s -j2 >make.log 2>&1) ||
			fail "Citus build failed (see $CITUS_BUILD/configure.log, make.log)"
		touch "$CITUS_BUILD/.built"
	fi
	(cd "$CITUS_BUILD" && make -s install >install.log 2>&1) ||
		fail "Citus install failed (see $CITUS_BUILD/install.log)"
	[[ -f $PKGLIBDIR/citus.so ]] || fail "citus.so not installed in $PKGLIBDIR"
}

install_citus

PG_PRELOAD='citus,profile_guard' ops_start C citus
DB=regress_citus
q() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q -d postgres -c "CREATE DATABASE $DB" || fail "could not create database $DB"
out=$(q -d "$DB" 2>&1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION citus;
CREATE EXTENSION profile_guard;
CREATE ROLE regress_citus_app LOGIN;
CREATE TABLE profiles (id int PRIMARY KEY, nickname text, music text, sports text);
GRANT SELECT ON profiles TO regress_citus_app;
SELECT profile_guard.define_tag('interest.music', 'preference') \gset
SELECT profile_guard.define_tag('interest.sports', 'preference') \gset
SELECT profile_guard.define_purpose('rec', 'recommend', ARRAY['interest.*']) \gset
SELECT profile_guard.allow_purpose('regress_citus_app', 'rec') \gset
SELECT profile_guard.protect('profiles', 'id') \gset
SELECT profile_guard.classify('profiles', 'music', 'interest.music') \gset
SELECT profile_guard.classify('profiles', 'sports', 'interest.sports') \gset
SELECT count(profile_guard.register_subject(i::text)) FROM generate_series(1, 3) i \gset
SELECT profile_guard.grant_consent('1', 'rec', ARRAY['interest.*']) \gset
SELECT profile_guard.grant_consent('2', 'rec', ARRAY['interest.*']) \gset
INSERT INTO profiles VALUES (1, 'ann', 'jazz', 'golf'), (2, 'bob', 'rock', 'chess'), (3, 'cat', NULL, NULL);
-- collected with consent, then no longer to be used: masked
SELECT profile_guard.block_tag('2', 'interest.sports') \gset
SELECT extname FROM pg_extension WHERE extname IN ('citus', 'profile_guard') ORDER BY 1;
SQL
) || fail "setup failed: $out"
[[ $out == $'citus\nprofile_guard' ]] || fail "extensions not both created: $out"

# fresh connections, as superuser and as the application role
for i in 1 2 3 4 5; do
	out=$(q -d "$DB" -c "SELECT $i" 2>&1) || fail "connection $i failed: $out"
	[[ $out == "$i" ]] || fail "connection $i: unexpected output: $out"
	out=$(q -d "$DB" -U regress_citus_app -c "SELECT 1" 2>&1) || fail "application connection $i failed: $out"
done

# the gate beside Citus: a purpose is required, and consent decides rows
# (subject 3 has none) and cells (subject 2's sports tag is blocked)
out=$(q -d "$DB" -U regress_citus_app -c "SELECT music FROM profiles" 2>&1) &&
	fail "tag column read without a purpose: $out"
grep -q 'no purpose declared' <<< "$out" || fail "unexpected refusal: $out"
out=$(q -d "$DB" -U regress_citus_app 2>&1 <<'SQL'
SET profile_guard.purpose = 'rec';
SELECT id, nickname, music, sports FROM profiles ORDER BY id;
SQL
) || fail "gated read failed: $out"
expected='1|ann|jazz|golf
2|bob|rock|'
[[ $out == "$expected" ]] || fail "gated read: expected
$expected
got
$out"

ops_check_alive "$C_HOST" "$C_PORT" "$C_DIR/server.log"
echo "ok: profile_guard beside Citus $CITUS_VERSION"
