/*-------------------------------------------------------------------------
 *
 * pseudonym.c
 *	  Owns the pseudonyms of de-identified views (deidentified_view()):
 *	  HMAC-SHA256 of a subject identifier, keyed with a secret derived from
 *	  the master key (master_key.c) and the recipient's name, as 64
 *	  hexadecimal digits, and its SQL function _pseudonym().  Each
 *	  recipient has its own key, so two recipients' copies cannot be joined
 *	  on the pseudonym, and neither can be turned back into identifiers
 *	  without the master key.  The erasure log's subject hash
 *	  (subject_hash.c) is derived under another label: no pseudonym equals
 *	  a subject hash.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "extension.h"
#include "settings.h"
#include "crypto_primitives.h"
#include "master_key.h"
#include "pseudonym.h"

#define PSEUDONYM_LABEL		"profile_guard pseudonym v1 for recipient "

/* the key of the recipient met last (a view serves one recipient) */
static uint8 pseudonym_key[PFG_KEY_LEN];
static char *pseudonym_recipient = NULL;

PFG_SQL_FUNCTION(profile_guard_pseudonym);

StaticAssertDecl(PFG_PSEUDONYM_HEX == PFG_SHA256_HEX_LEN, "a pseudonym is an HMAC-SHA256 in hex");

/* HMAC-SHA256(subject) under the recipient's key, as 64 hex digits + NUL */
void
pfg_pseudonym(const char *subject, const char *recipient, char *out)
{
	if (pseudonym_recipient == NULL || strcmp(pseudonym_recipient, recipient) != 0)
	{
		char	   *label = psprintf("%s%s", PSEUDONYM_LABEL, recipient);

		if (pseudonym_recipient != NULL)
			pfree(pseudonym_recipient);
		pseudonym_recipient = NULL;
		pfg_master_key_derive(label, pseudonym_key);
		pfree(label);
		pseudonym_recipient = MemoryContextStrdup(TopMemoryContext, recipient);
	}
	if (!pfg_hmac_sha256_hex(pseudonym_key, sizeof(pseudonym_key),
							 subject, strlen(subject), out))
		elog(ERROR, "could not compute a pseudonym");
}

Datum
profile_guard_pseudonym(PG_FUNCTION_ARGS)
{
	char		pseudonym[PFG_PSEUDONYM_HEX + 1];

	pfg_require_preload();
	pfg_pseudonym(text_to_cstring(PG_GETARG_TEXT_PP(0)),
				  text_to_cstring(PG_GETARG_TEXT_PP(1)), pseudonym);
	PG_RETURN_TEXT_P(cstring_to_text(pseudonym));
}
