# test/lib/tap_prepare.sh — what the TAP tests (t/*.pl) need from outside
# the installation's own files, done before they run as the postgres OS user
# (test/run_tests.sh sources this and calls tap_prepare as root): pgaudit
# copied into the PG_CONFIG installation (t/110_coexist.pl), the locales
# and server message catalogues of t/140_redact_languages.pl, and Citus
# built from the vendored source (t/200_beside_citus.pl).  Each step says
# what it could not do; the test that needs it then fails and says so.
# Source it after test/lib/cluster.sh, from the repository root.

TAP_LANGS="en_US de_DE fr_FR es_ES ru_RU ja_JP ko_KR zh_CN zh_TW"

tap_have_locale() {
	locale -a 2>/dev/null | grep -qix "$1\.utf-\?8"
}

tap_prepare() {
	local l dir domain mo pkg localedir major
	tap_install_pgaudit ||
		echo "warning: pgaudit could not be installed; t/110_coexist.pl will fail"
	tap_install_citus ||
		echo "warning: Citus could not be installed; t/200_beside_citus.pl will fail"
	# the operating system's locales (Debian: package locales, localedef)
	for l in $TAP_LANGS; do
		tap_have_locale "$l" && continue
		if command -v localedef >/dev/null && [[ $(id -u) -eq 0 ]]; then
			echo "generating locale $l.UTF-8"
			localedef -i "$l" -f UTF-8 "$l.UTF-8" || true
		fi
		tap_have_locale "$l" || echo "warning: no locale $l.UTF-8; t/140_redact_languages.pl will fail"
	done
	# the server's message catalogues: the Debian package installs them under
	# /usr/share/locale; an installation relocated from it looks under its
	# own localedir, which may lack them: they are copied from the package
	localedir=$("$PG_CONFIG" --localedir)
	major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
	for l in $TAP_LANGS; do
		[[ $l == en_US ]] && continue
		case $l in zh_CN | zh_TW) dir=$l ;; *) dir=${l%%_*} ;; esac
		for domain in postgres plpgsql; do
			mo=$localedir/$dir/LC_MESSAGES/$domain-$major.mo
			[[ -f $mo ]] && continue
			pkg=/usr/share/locale/$dir/LC_MESSAGES/$domain-$major.mo
			if [[ -f $pkg ]] && mkdir -p "$(dirname "$mo")" && cp "$pkg" "$mo"; then
				echo "copied message catalogue $pkg into $localedir"
			else
				echo "warning: no message catalogue $domain-$major.mo for $l; t/140_redact_languages.pl will fail"
			fi
		done
	done
}

# pgaudit, from Debian's postgresql-15-pgaudit (test/install_dependencies.sh
# installs it), copied into the PG_CONFIG installation when that is another
# one (a private copy)
tap_install_pgaudit() {
	local libdir sharedir so control
	libdir=$("$PG_CONFIG" --pkglibdir)
	sharedir=$("$PG_CONFIG" --sharedir)/extension
	[[ -f $libdir/pgaudit.so && -f $sharedir/pgaudit.control ]] && return 0
	so=$(dpkg -L postgresql-15-pgaudit 2>/dev/null | grep -m1 '/pgaudit\.so$')
	control=$(dpkg -L postgresql-15-pgaudit 2>/dev/null | grep -m1 '/pgaudit\.control$')
	if [[ -z $so || -z $control ]]; then
		echo "pgaudit is not installed (run bash test/install_dependencies.sh)"
		return 1
	fi
	cp "$so" "$libdir/" && cp "$control" "$(dirname "$control")"/pgaudit--*.sql "$sharedir/" || return 1
	[[ -f $libdir/pgaudit.so ]]
}

# Citus 13.2 from the vendored source in ../shared/vendor (beside the
# repository; see its README.md) into the PG_CONFIG installation (libkrb5-dev
# too: PostgreSQL's server headers include gssapi.h), once: the build tree is
# kept under /tmp, and nothing is rebuilt while citus.so is installed there.
# Without the vendored source it does nothing (the test is skipped).
CITUS_VERSION=13.2.2
tap_install_citus() {
	local vendor=$PWD/../shared/vendor pkglibdir build p missing=()
	local tarball=$vendor/citus-$CITUS_VERSION.tar.gz patch=$vendor/citus-$CITUS_VERSION-pg15.20.patch
	pkglibdir=$("$PG_CONFIG" --pkglibdir)
	[[ -f $pkglibdir/citus.so ]] && return 0
	[[ -f $tarball && -f $patch ]] || return 0
	# one build tree per PostgreSQL installation
	build=/tmp/profile_guard_citus/$(echo "$PG_CONFIG" | md5sum | cut -c1-12)/citus-$CITUS_VERSION
	for p in libzstd-dev liblz4-dev libcurl4-openssl-dev libkrb5-dev; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if [[ ${#missing[@]} -gt 0 ]]; then
		echo "packages needed to build Citus are missing: ${missing[*]} (run bash test/install_dependencies.sh)"
		return 1
	fi
	if [[ ! -f $build/.built ]]; then
		echo "building Citus $CITUS_VERSION in $build"
		rm -rf "$build"
		mkdir -p "$build"
		tar xzf "$tarball" -C "$build" --strip-components=1
		# an archive of the tag may or may not have a top-level directory
		if [[ ! -x $build/configure ]]; then
			rm -rf "$build" && mkdir -p "$build"
			tar xzf "$tarball" -C "$build"
		fi
		(cd "$build" && patch -s -p1 < "$patch" &&
			./configure PG_CONFIG="$PG_CONFIG" >configure.log 2>&1 &&
			make -s -j2 >make.log 2>&1) || {
			echo "Citus build failed (see $build/configure.log, make.log)"
			return 1
		}
		touch "$build/.built"
	fi
	(cd "$build" && make -s install >install.log 2>&1) || {
		echo "Citus install failed (see $build/install.log)"
		return 1
	}
	[[ -f $pkglibdir/citus.so ]]
}
