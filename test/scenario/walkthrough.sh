#!/usr/bin/env bash
# test/scenario/walkthrough.sh — the README's main job, demo/walkthrough.sql,
# runs clean and reads like a story: every numbered section appears in order,
# no step prints an empty result set from a set-up function or a bare command
# tag, and the sections show what they announce (the refusals, the gated
# counts, the ciphertext, the ledger without raw subjects).
#
# Starts its own cluster (test/lib/cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh

fail=0
check() {		# check DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; fail=1; fi
}

pg_cluster_start walkthrough
trap pg_cluster_stop EXIT
"$PGBIN/psql" -X -q -c "CREATE DATABASE demo" postgres
out=$CLUSTER_DIR/walkthrough.out
status=0
"$PGBIN/psql" -X -q -d demo -f demo/walkthrough.sql >"$out" 2>&1 || status=$?
check "the walkthrough exits 0" test "$status" -eq 0

# the sections, in order
sections=$(grep -o '^== [0-9]*\.' "$out" | tr -dc '0-9\n' | paste -sd' ')
check "sections 1 to 16 in order (got: $sections)" \
	test "$sections" = "$(seq -s' ' 1 16)"

# an empty result set: a one-column header, its rule, then an empty value
check "no step prints an empty result of a set-up function" \
	bash -c "! awk 'prev2 ~ /^ [a-z_]+ \$/ && prev1 ~ /^-+\$/ && \$0 ~ /^ *\$/ {found=1} {prev2=prev1; prev1=\$0} END {exit !found}' '$out'"
check "no bare command tags (SET, RESET, DO, CREATE, GRANT, INSERT)" \
	bash -c "! grep -qE '^(SET|RESET|DO|CREATE [A-Z]+|GRANT|INSERT 0 [0-9]+)\$' '$out'"

# what the sections announce
section() {		# the output of section N
	awk -v n="$1" '/^== [0-9]+\./ {cur = $2 + 0} cur == n' "$out"
}
shows() {		# shows N REGEX: section N has a line matching REGEX
	section "$1" | grep -qE "$2"
}
lacks() {		# lacks N REGEX: section N has no line matching REGEX
	! section "$1" | grep -qE "$2"
}
check "exactly two refusals (sections 2 and 7), no other error" \
	test "$(grep -cE '^psql:demo/walkthrough.sql:[0-9]+: ' "$out")" -eq 2
check "2: the prohibited tag is refused" shows 2 '^psql:demo/walkthrough.sql:[0-9]+: '
check "7: a read without a purpose is refused" shows 7 '^psql:demo/walkthrough.sql:[0-9]+: '
check "8: 750 rows and 100 health cells under recommendation" shows 8 '^ +750 \| +100$'
check "9: 240 rows, 240 sports cells, no visits under marketing" shows 9 '^ +240 \| +240 \| +0$'
check "10: the sensitive tag is stored as ciphertext, without the plaintext" \
	test "$(section 10 | grep -cE '^ +[0-9]+ \| t +\| +[0-9]+ \| +0$')" -eq 2
check "11: the person who withdrew is not seen by the next statement" lacks 11 '^ +2 \|'
check "11: the others still are" shows 11 '^ +1 \| tennis'
check "13: the ledger shows keyed hashes, not subjects" shows 13 '\| [0-9a-f]{12}…$'
check "14: the report shows the person's own health value, decrypted" \
	shows 14 'health.condition +\| sensitive +\| encrypted +\| diabetes'

if [[ $fail -ne 0 ]]; then
	echo "--- walkthrough output"
	cat "$out"
fi
exit $fail
