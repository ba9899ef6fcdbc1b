/*-------------------------------------------------------------------------
 *
 * subject_hash.c
 *	  Owns the subject hash of the erasure log: HMAC-SHA256 of a subject
 *	  identifier, keyed with a secret derived from the master key
 *	  (master_key.c), as 64 hexadecimal digits, and its SQL function
 *	  _subject_hash().  The sweep (erasure.c) logs subject-specific
 *	  erasures under it, so the raw identifier is never stored; whoever
 *	  holds the master key can check whether a given subject was erased.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "crypto_primitives.h"
#include "master_key.h"
#include "subject_hash.h"

#define SUBJECT_HASH_LABEL	"profile_guard erasure_log subject hash v1"

/* key of the subject hashes, derived from the master key on first use */
static uint8 subject_hash_key[PFG_KEY_LEN];
static bool subject_hash_key_ready = false;

PFG_SQL_FUNCTION(profile_guard_subject_hash);

StaticAssertDecl(PFG_SUBJECT_HASH_HEX == PFG_SHA256_HEX_LEN, "a subject hash is an HMAC-SHA256 in hex");

/* HMAC-SHA256(subject) under the derived key, as 64 hex digits + NUL */
void
pfg_subject_hash(const char *subject, char *out)
{
	if (!subject_hash_key_ready)
	{
		pfg_master_key_derive(SUBJECT_HASH_LABEL, subject_hash_key);
		subject_hash_key_ready = true;
	}
	if (!pfg_hmac_sha256_hex(subject_hash_key, sizeof(subject_hash_key),
							 subject, strlen(subject), out))
		elog(ERROR, "could not compute a subject hash");
}

Datum
profile_guard_subject_hash(PG_FUNCTION_ARGS)
{
	char		hash[PFG_SUBJECT_HASH_HEX + 1];

	pfg_require_preload();
	pfg_subject_hash(text_to_cstring(PG_GETARG_TEXT_PP(0)), hash);
	PG_RETURN_TEXT_P(cstring_to_text(hash));
}
