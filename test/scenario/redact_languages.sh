#!/usr/bin/env bash
# test/scenario/redact_languages.sh — values of guarded tables stay out of
# error messages whatever the server's lc_messages: C, en_US, de_DE, fr_FR,
# es_ES, ru_RU, ja_JP, ko_KR, zh_CN and zh_TW (UTF-8).  Translations quote
# values their own way (»…«, « … », «…», "…"), so redaction must not depend
# on the English wording.
#
# For each language the superuser sets lc_messages in its session and
# provokes, on a guarded table: a cast of a tag column (class 22, the
# message quotes the value), a JSON cast of it (the detail and the context
# quote it), a unique violation (Key (...)=(...)), not-null
# and check violations (Failing row contains ...), a bad input value at
# parse time, one at run time (INSERT ... SELECT from an unguarded table)
# and one in COPY.  No secret value may appear in the client's output nor in
# the server log written under that setting.  psql's own "LINE n:" echo of
# the statement it sent is not part of the server's message and is left
# out of the client check.
#
# A language counts only if its translation was in effect: every error's
# primary message must differ from the English one, and the cast error must
# carry a known word of the language's catalogue.  A missing locale or
# message catalogue fails the test; it never passes silently.
#
# Needs root to generate the locales (Debian: package locales, localedef)
# when they are missing.  Starts its own cluster (test/lib/cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh

LANGS="C en_US de_DE fr_FR es_ES ru_RU ja_JP ko_KR zh_CN zh_TW"

# a word of each catalogue's "invalid input syntax for type %s: "%s""
declare -A MARKER=(
	[de_DE]='ungültige Eingabesyntax'
	[fr_FR]='syntaxe en entrée invalide'
	[es_ES]='sintaxis de entrada no es válida'
	[ru_RU]='неверный синтаксис'
	[ja_JP]='入力構文が不正です'
	[ko_KR]='잘못된 입력'
	[zh_CN]='输入语法无效'
	[zh_TW]='輸入語法無效'
)

fail=0
check() {		# check DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; fail=1; fi
}

# ---- locales of the operating system ----
have_locale() {
	locale -a 2>/dev/null | grep -qix "$1\.utf-\?8"
}
for l in $LANGS; do
	[[ $l == C ]] && continue
	have_locale "$l" && continue
	if ! command -v localedef >/dev/null || [[ $(id -u) -ne 0 ]]; then
		echo "FAILED: locale $l.UTF-8 missing, and no localedef or not root to generate it (package locales: bash test/install_dependencies.sh)"
		exit 1
	fi
	echo "generating locale $l.UTF-8"
	localedef -i "$l" -f UTF-8 "$l.UTF-8" || true
	have_locale "$l" || { echo "FAILED: cannot generate locale $l.UTF-8"; exit 1; }
done

# ---- the server's message catalogues ----
# The Debian package installs them under /usr/share/locale; an installation
# relocated from it (PGBIN elsewhere) looks under its own localedir, which
# may lack them: they are copied from the package then.
LOCALEDIR=$("$PG_CONFIG" --localedir)
MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
for l in $LANGS; do
	[[ $l == C || $l == en_US ]] && continue
	case $l in zh_CN | zh_TW) dir=$l ;; *) dir=${l%%_*} ;; esac
	for domain in postgres plpgsql; do
		mo=$LOCALEDIR/$dir/LC_MESSAGES/$domain-$MAJOR.mo
		[[ -f $mo ]] && continue
		pkg=/usr/share/locale/$dir/LC_MESSAGES/$domain-$MAJOR.mo
		if [[ -f $pkg ]]; then
			echo "copying message catalogue $pkg into $LOCALEDIR"
			mkdir -p "$(dirname "$mo")" && cp "$pkg" "$mo"
		else
			echo "FAILED: no message catalogue $domain-$MAJOR.mo for $l"
			exit 1
		fi
	done
done

pg_cluster_start redact_languages || exit 1
trap 'pg_cluster_stop' EXIT
LOG=$CLUSTER_DIR/server.log
OUT=$CLUSTER_DIR/out
mkdir -p "$OUT"
export LC_ALL=C.UTF-8		# psql's own strings ("LINE n:") in English
PSQL=("$PGBIN/psql" -X -q -d postgres)

"${PSQL[@]}" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('lifestyle.luxury', 'preference');
SELECT profile_guard.define_purpose('recommendation', 'recommend content',
	ARRAY['lifestyle.*']);
SELECT profile_guard.allow_purpose('postgres', 'recommendation');
CREATE TABLE profile (id int PRIMARY KEY, nick text NOT NULL, luxury text,
	visits int CHECK (visits < 1000));
CREATE UNIQUE INDEX profile_nick ON profile (nick);
CREATE TABLE staging (v text);
INSERT INTO staging VALUES ('SECRETSTAGE8');
SELECT profile_guard.protect('profile', 'id');
SELECT profile_guard.classify('profile', 'luxury', 'lifestyle.luxury');
SELECT profile_guard.register_subject(s::text) FROM generate_series(1, 9) s;
SELECT profile_guard.grant_consent(s::text, 'recommendation', ARRAY['lifestyle.*'])
	FROM generate_series(1, 9) s;
SET profile_guard.purpose = 'recommendation';
INSERT INTO profile VALUES (1, 'SECRETNICK1', 'SECRETLUX1', 11),
	(2, 'SECRETNICK2', 'SECRETLUX2', 22);
SQL

CASES="cast json unique notnull check input_parse input_run copy"
case_sql() {
	case $1 in
	cast) echo "SELECT luxury::int FROM profile WHERE id = 1;" ;;
	json) echo "SELECT luxury::jsonb FROM profile WHERE id = 1;" ;;
	unique) echo "UPDATE profile SET nick = (SELECT nick FROM profile WHERE id = 1) WHERE id = 2;" ;;
	notnull) echo "UPDATE profile SET nick = NULL WHERE id = 1;" ;;
	check) echo "UPDATE profile SET visits = 5000 WHERE id = 1;" ;;
	input_parse) echo "INSERT INTO profile (id, nick, visits) VALUES (7, 'n7', 'SECRETINPUT7');" ;;
	input_run) echo "INSERT INTO profile (id, nick, visits) SELECT 8, 'n8', v::int FROM staging;" ;;
	copy) printf 'COPY profile (id, nick, visits) FROM STDIN;\n9\tn9\tSECRETCOPY9\n\\.\n' ;;
	esac
}
SECRETS='SECRET(NICK|LUX|STAGE|INPUT|COPY)[0-9]'

# the server's error line (severity and primary message), as psql prints it
error_line() {
	grep -m1 -E '^[^ :]+:  ' "$1" || true
}

declare -A ENGLISH
passed_langs=()
failed_langs=()
for l in $LANGS; do
	if [[ $l == C ]]; then loc=C; else loc=$l.UTF-8; fi
	lfail=0
	before=$(stat -c %s "$LOG")
	for c in $CASES; do
		f=$OUT/$l.$c
		{ printf "SET lc_messages = '%s';\nSET profile_guard.purpose = 'recommendation';\n" "$loc"
		  case_sql "$c"; } | "${PSQL[@]}" >"$f.stdout" 2>"$f" || true
		line=$(error_line "$f")
		if [[ -z $line ]]; then
			echo "FAILED: $l $c: no error raised"; cat "$f"; lfail=1; continue
		fi
		[[ $l == C ]] && ENGLISH[$c]=$line
		# psql's echo of the statement it sent: "LINE n: ..." and the caret
		if grep -v -E '^LINE [0-9]+: |^ *\^ *$' "$f" | grep -q -E "$SECRETS"; then
			echo "FAILED: $l $c: a value reached the client:"; sed 's/^/    /' "$f"; lfail=1
		fi
		if [[ $l != C && $l != en_US ]]; then
			if [[ $line == "${ENGLISH[$c]}" ]]; then
				echo "FAILED: $l $c: the message is not translated: $line"; lfail=1
			fi
		fi
		echo "  $l $c: $line"
	done
	if [[ -n ${MARKER[$l]:-} ]] && ! grep -qF "${MARKER[$l]}" "$OUT/$l.cast"; then
		echo "FAILED: $l: the cast error is not in the language's words (${MARKER[$l]})"; lfail=1
	fi
	tail -c +$((before + 1)) "$LOG" >"$OUT/$l.log"
	if grep -q -E "$SECRETS" "$OUT/$l.log"; then
		echo "FAILED: $l: a value reached the server log:"
		grep -E "$SECRETS" "$OUT/$l.log" | sed 's/^/    /'; lfail=1
	fi
	if [[ $lfail -eq 0 ]]; then
		echo "ok: $l: no value in the client's errors nor in the server log"
		passed_langs+=("$l")
	else
		echo "FAILED: $l"
		failed_langs+=("$l"); fail=1
	fi
done

# nothing was written by the failing statements
check "the failing statements changed nothing" \
	test "$("${PSQL[@]}" -At -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM profile")" = "1,2"

echo "languages passed: ${passed_langs[*]:-none}"
echo "languages failed: ${failed_langs[*]:-none}"
[[ $fail -eq 0 ]] && echo "redact_languages: all checks passed"
exit $fail
