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
 *	  _pseudonym() serves only roles that may read the subject column of a
 *	  table that one of the recipient's de-identified views reads: they
 *	  read the identifiers there anyway.  Anyone else could turn the
 *	  recipient's copy back into identifiers by computing the pseudonym of
 *	  every identifier they can guess.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "crypto_primitives.h"
#include "master_key.h"
#include "pseudonym.h"
#include "spi_checked.h"

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

/* the call site's last permitted caller and recipient (fn_extra) */
typedef struct PseudonymPermit
{
	Oid			userid;
	char		recipient[FLEXIBLE_ARRAY_MEMBER];
} PseudonymPermit;

/*
 * May the current user compute the recipient's pseudonyms?  Yes when it
 * may read the subject column of a table that one of the recipient's
 * de-identified views reads (the catalog is read as its owner, the
 * privilege checked as the caller).
 */
static bool
pseudonym_permitted(const char *recipient)
{
	Oid			userid = GetUserId();
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		permitted = false;
	PfgCatalogAccess ca;
	int			rc;

	args[0] = CStringGetTextDatum(recipient);
	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, false);
	rc = SPI_execute_with_args("SELECT d.relid::pg_catalog.oid, a.attnum"
							   "  FROM " PFG_SCHEMA_NAME ".deidentified_view d"
							   "  JOIN " PFG_SCHEMA_NAME ".guarded_table g ON g.relid = d.relid"
							   "  JOIN pg_catalog.pg_attribute a"
							   "    ON a.attrelid = d.relid AND a.attname = g.subject_column"
							   " WHERE d.recipient OPERATOR(pg_catalog.=) $1",
							   1, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the de-identified views: %s", SPI_result_code_string(rc));
	/*
	 * The caller's privileges (userid, not the owner's we run as): the
	 * table's, else the subject column's (which alone omits the table's).
	 */
	for (uint64 i = 0; i < SPI_processed && !permitted; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull));
		AttrNumber	attnum = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[i],
														 SPI_tuptable->tupdesc, 2, &isnull));

		permitted = pg_class_aclcheck(relid, userid, ACL_SELECT) == ACLCHECK_OK ||
			pg_attribute_aclcheck(relid, attnum, userid, ACL_SELECT) == ACLCHECK_OK;
	}
	pfg_end_catalog_access(&ca);
	pfg_spi_finish();
	return permitted;
}

Datum
profile_guard_pseudonym(PG_FUNCTION_ARGS)
{
	char		pseudonym[PFG_PSEUDONYM_HEX + 1];
	char	   *recipient = text_to_cstring(PG_GETARG_TEXT_PP(1));
	PseudonymPermit *permit = (PseudonymPermit *) fcinfo->flinfo->fn_extra;

	pfg_require_preload();
	if (permit == NULL || permit->userid != GetUserId() ||
		strcmp(permit->recipient, recipient) != 0)
	{
		if (!pseudonym_permitted(recipient))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to compute the pseudonyms of recipient \"%s\"",
							pnstrdup(recipient, pg_mbcliplen(recipient, strlen(recipient), 120))),
					 errdetail("A recipient's pseudonyms are served to the roles that may read the subject column of a table one of its de-identified views reads."),
					 errhint("Read the recipient's de-identified view.")));
		if (permit != NULL)
			pfree(permit);
		permit = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
									offsetof(PseudonymPermit, recipient) + strlen(recipient) + 1);
		permit->userid = GetUserId();
		strcpy(permit->recipient, recipient);
		fcinfo->flinfo->fn_extra = permit;
	}
	pfg_pseudonym(text_to_cstring(PG_GETARG_TEXT_PP(0)), recipient, pseudonym);
	PG_RETURN_TEXT_P(cstring_to_text(pseudonym));
}
