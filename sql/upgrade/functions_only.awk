# functions_only.awk: from extension script parts, print the statements that
# an update may run again -- CREATE FUNCTION and CREATE TRIGGER turned into
# CREATE OR REPLACE, and the privileges and comments of functions -- and
# nothing else (tables, views, sequences and data are created once).
# A statement ends at the first line ending in ";" outside a dollar-quoted
# body.
function dollar_quotes(line,    n, rest, tag) {
	n = 0
	rest = line
	while (match(rest, /\$[A-Za-z_]*\$/)) {
		tag = substr(rest, RSTART, RLENGTH)
		if (body == "") { body = tag; n++ }
		else if (tag == body) { body = ""; n++ }
		rest = substr(rest, RSTART + RLENGTH)
	}
	return n
}
!copying && /^CREATE FUNCTION / { sub(/^CREATE FUNCTION/, "CREATE OR REPLACE FUNCTION"); copying = 1; body = "" }
!copying && /^CREATE TRIGGER / { sub(/^CREATE TRIGGER/, "CREATE OR REPLACE TRIGGER"); copying = 1; body = "" }
!copying && /^(REVOKE|GRANT) .* ON FUNCTION / { copying = 1; body = "" }
!copying && /^COMMENT ON FUNCTION / { copying = 1; body = "" }
copying {
	print
	dollar_quotes($0)
	if (body == "" && $0 ~ /;[[:space:]]*(--.*)?$/) { copying = 0 }
}
END { if (copying) { print "functions_only.awk: unterminated statement" > "/dev/stderr"; exit 1 } }
