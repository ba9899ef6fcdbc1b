# test/lib/tap_prepare.sh — what the TAP tests (t/*.pl) need from outside
# the installation's own files, done before they run as the postgres OS user
# (test/run_tests.sh sources this and calls tap_prepare as root): pgaudit
# copied into the PG_CONFIG installation (t/110_coexist.pl), and the locales
# and server message catalogues of t/140_redact_languages.pl.  Each step
# says what it could not do; the test that needs it then fails and says so.
# Source it after test/lib/cluster.sh, from the repository root.

TAP_LANGS="en_US de_DE fr_FR es_ES ru_RU ja_JP ko_KR zh_CN zh_TW"

tap_have_locale() {
	locale -a 2>/dev/null | grep -qix "$1\.utf-\?8"
}

tap_prepare() {
	local l dir domain mo pkg localedir major
	( . test/lib/ops.sh && ops_install_pgaudit ) ||
		echo "warning: pgaudit could not be installed; t/110_coexist.pl will fail"
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
