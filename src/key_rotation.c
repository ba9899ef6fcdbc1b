/*-------------------------------------------------------------------------
 *
 * key_rotation.c
 *	  Owns master key rotation, profile_guard.rotate_master_key(): every
 *	  live data key wrapped by the previous master key
 *	  (profile_guard.previous_master_key_file) is unwrapped with it and
 *	  wrapped again under the current one, in place in
 *	  profile_guard.subject_key; no encrypted value is touched.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "data_key.h"
#include "key_wrap.h"
#include "master_key.h"
#include "progress.h"
#include "spi_checked.h"

PFG_SQL_FUNCTION(profile_guard_rotate_master_key);

/* the live data keys not wrapped under the master key whose fingerprint is $1 */
#define KEYS_TO_REWRAP \
	" FROM " PFG_SCHEMA_NAME "." PFG_SUBJECT_KEY_TABLE \
	" WHERE wrapped_key IS NOT NULL" \
	"   AND (master_fingerprint IS NULL" \
	"        OR master_fingerprint OPERATOR(pg_catalog.<>) $1)"

/*
 * Re-wrap every live data key under the current master key.  Keys already
 * under it are left alone; keys under profile_guard.previous_master_key_file
 * are unwrapped with it; a key under any other master key stops the
 * rotation (nothing is changed: it is one transaction).
 */
Datum
profile_guard_rotate_master_key(PG_FUNCTION_ARGS)
{
	Oid			admin;
	const PfgMasterKey *current;
	const PfgMasterKey *previous;
	Oid			relid;
	PfgSavedRole saved;
	Oid			selargtypes[1] = {TEXTOID};
	Datum		selargs[1];
	Oid			updargtypes[3] = {TEXTOID, BYTEAOID, TEXTOID};
	SPIPlanPtr	update;
	Portal		portal;
	int64		rewrapped = 0;
	int64		seen = 0;
	bool		reporting;
	int			rc;
	MemoryContext spicxt;
	MemoryContext keycxt;

	pfg_require_preload();

	admin = get_role_oid("profile_guard_admin", true);
	if (!superuser() &&
		!(OidIsValid(admin) && has_privs_of_role(GetUserId(), admin)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to rotate the master key"),
				 errhint("Only superusers and members of role profile_guard_admin may rotate the master key.")));

	current = pfg_master_key_current();
	previous = pfg_master_key_previous();

	relid = pfg_subject_key_begin_access(&saved);

	selargs[0] = CStringGetTextDatum(current->fingerprint);

	/* the keys to re-wrap, for the view profile_guard.progress */
	rc = SPI_execute_with_args("SELECT pg_catalog.count(*)" KEYS_TO_REWRAP,
							   1, selargtypes, selargs, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not count the data keys to re-wrap: %s", SPI_result_code_string(rc));
	{
		bool		isnull;

		reporting = pfg_progress_start(PFG_PROGRESS_ROTATE_MASTER_KEY, relid,
									   "re-wrapping data keys",
									   DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
																   SPI_tuptable->tupdesc, 1, &isnull)),
									   false);
	}

	update = SPI_prepare("UPDATE " PFG_SCHEMA_NAME "." PFG_SUBJECT_KEY_TABLE
						 "   SET wrapped_key = $2, master_fingerprint = $3"
						 " WHERE subject OPERATOR(pg_catalog.=) $1",
						 3, updargtypes);
	if (update == NULL)
		elog(ERROR, "could not prepare the re-wrapping of data keys: %s", SPI_result_code_string(SPI_result));

	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT subject, wrapped_key, master_fingerprint"
									   KEYS_TO_REWRAP " FOR UPDATE",
									   1, selargtypes, selargs, NULL, false, 0);

	/*
	 * What a key's re-wrapping allocates (its subject and fingerprint as
	 * text, the new wrapped key, the UPDATE's arguments) goes with the key:
	 * kept in the SPI connection's context it would grow with the number of
	 * keys, hundreds of bytes each.  Each UPDATE returns in that context,
	 * hence the switch at every key.
	 */
	spicxt = CurrentMemoryContext;
	keycxt = AllocSetContextCreate(spicxt, "profile_guard re-wrapping a data key",
								   ALLOCSET_SMALL_SIZES);
	for (;;)
	{
		SPITupleTable *batch;
		uint64		n;
		uint64		i;

		SPI_cursor_fetch(portal, true, 1000);
		batch = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		if (reporting)
			pfg_progress_done(seen);
		seen += n;

		for (i = 0; i < n; i++)
		{
			HeapTuple	tuple = batch->vals[i];
			TupleDesc	tupdesc = batch->tupdesc;
			char	   *subject;
			char	   *fingerprint;
			bool		isnull;
			bytea	   *wrapped;
			bytea	   *rewrapped_key;
			uint8		key[PFG_KEY_LEN];
			Datum		updargs[3];

			MemoryContextSwitchTo(keycxt);
			MemoryContextReset(keycxt);
			subject = SPI_getvalue(tuple, tupdesc, 1);
			fingerprint = SPI_getvalue(tuple, tupdesc, 3);
			wrapped = DatumGetByteaPP(SPI_getbinval(tuple, tupdesc, 2, &isnull));
			if (fingerprint == NULL)
				fingerprint = "";
			if (pfg_master_key_matches(current, fingerprint))
				continue;
			if (!pfg_master_key_matches(previous, fingerprint))
				pfg_master_key_mismatch(subject, fingerprint, current);

			if (!pfg_unwrap_data_key((uint8 *) VARDATA_ANY(wrapped),
									 VARSIZE_ANY_EXHDR(wrapped), subject, previous, key))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("could not unwrap the data key of subject \"%s\"", subject),
						 errdetail("The wrapped key does not authenticate under the previous master key whose fingerprint it records; its row in profile_guard.subject_key may have been altered.")));

			rewrapped_key = palloc(VARHDRSZ + PFG_WRAPPED_KEY_LEN);
			SET_VARSIZE(rewrapped_key, VARHDRSZ + PFG_WRAPPED_KEY_LEN);
			PG_TRY();
			{
				pfg_wrap_data_key(key, subject, current, (uint8 *) VARDATA(rewrapped_key));
			}
			PG_FINALLY();
			{
				explicit_bzero(key, sizeof(key));
			}
			PG_END_TRY();

			updargs[0] = CStringGetTextDatum(subject);
			updargs[1] = PointerGetDatum(rewrapped_key);
			updargs[2] = CStringGetTextDatum(current->fingerprint);
			rc = SPI_execute_plan(update, updargs, NULL, false, 0);
			if (rc != SPI_OK_UPDATE || SPI_processed != 1)
				elog(ERROR, "could not re-wrap a data key: %s", SPI_result_code_string(rc));
			rewrapped++;
		}
		MemoryContextSwitchTo(spicxt);
		SPI_freetuptable(batch);
	}
	MemoryContextDelete(keycxt);
	SPI_cursor_close(portal);
	pfg_subject_key_end_access(&saved);
	if (reporting)
		pfg_progress_end();

	if (rewrapped > 0)
		CacheInvalidateRelcacheByRelid(relid);

	PG_RETURN_INT64(rewrapped);
}
