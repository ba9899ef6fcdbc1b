/*-------------------------------------------------------------------------
 *
 * data_key.c
 *	  Owns each subject's data key as the table profile_guard.subject_key
 *	  holds it: reading and unwrapping it (through the backend's cache,
 *	  data_key_cache.c), making one for a new subject or many at once (for
 *	  register_subject() and create_data_keys()), destroying it
 *	  (crypto-shredding), running queries on the table as its owner, and
 *	  keeping the cache in step with the table.
 *
 *	  A data key is 256 random bits per subject, stored wrapped under the
 *	  master key (key_wrap.c) in subject_key.wrapped_key, next to the
 *	  fingerprint of that master key (master_key.c); wrapped_key is NULL
 *	  once the key was destroyed.  A relcache invalidation of subject_key
 *	  flushes the cache (destroying or re-wrapping keys sends one).
 *
 *	  A statement that meets many subjects whose keys are not cached (a
 *	  scan in a new connection, a bulk insert) stops reading them one by
 *	  one: after BULK_MIN_MISSES single reads, and at least one per
 *	  BULK_MISS_RATIO keys in the table (BULK_SHARED_RATIO when the keys are
 *	  shared, below: taking them is cheaper), it reads every live key of
 *	  subject_key in one heap scan and unwraps them (one AES-GCM of 32
 *	  bytes each under the master key, whose key schedule is prepared
 *	  once), if they all fit in profile_guard.key_cache_size.  What such
 *	  a scan read is published for the database's other backends, whose
 *	  bulk loads take it instead, and whose statements read from it the
 *	  keys they miss before they would take it (shared_data_keys.c: a
 *	  look-up by primary key in a new connection reads no subject_key row
 *	  for a subject whose identifier is an integer); the trigger on
 *	  subject_key and pfg_data_key_destroy() tell that module which
 *	  transactions changed keys, and the creating paths which made some.
 *	  A key created afterwards by another session is still found by a
 *	  single read; a statement that loaded every key creates the key of a new
 *	  subject without first looking for it, and writes its row straight
 *	  into the heap and indexes (a speculative insert, as ON CONFLICT
 *	  makes one) instead of through SPI; a race with another transaction
 *	  making the same key falls back to the SPI insert, which resolves it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "parser/parse_relation.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "executor/tuptable.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "data_key.h"
#include "data_key_cache.h"
#include "invalidation.h"
#include "key_wrap.h"
#include "master_key.h"
#include "progress.h"
#include "shared_data_keys.h"
#include "spi_checked.h"

#define MAX_SUBJECT_CHARS	PFG_MAX_SUBJECT_CHARS

/* profile_guard.subject_key and its owner, looked up on first use */
static Oid	subject_key_relid = InvalidOid;
static Oid	subject_key_owner = InvalidOid;

/* the bulk load: when, and what the current statement did */
#define BULK_MIN_MISSES		64
#define BULK_MISS_RATIO		512
#define BULK_SHARED_RATIO	4096	/* when the keys are shared: taking
									 * them costs a fraction of a scan */
#define RESERVE_AFTER		256	/* keys read before making room for the rest */
static LocalTransactionId stmt_lxid = InvalidLocalTransactionId;
static TimestampTz stmt_start = 0;
static int	stmt_misses = 0;
static int	stmt_bulk_after = 0;	/* 0: not decided yet */
static bool stmt_bulk_loaded = false;
static bool stmt_took_shared = false;	/* took the shared keys */
static uint64 stmt_bulk_flushes = 0;	/* the cache's flush count after it */

PFG_SQL_FUNCTION(profile_guard_destroy_subject_key);
PFG_SQL_FUNCTION(profile_guard_create_data_keys);
PFG_SQL_FUNCTION(profile_guard_data_keys_changed);

/*
 * invalidation.c: subject_key changed, or every relation may have.  The
 * cache only ever holds keys read while subject_key's OID is known, so
 * that its invalidations reach them; the table is looked up again (it may
 * have been dropped).
 */
void
pfg_data_key_relcache_invalidated(Oid relid)
{
	if (relid == InvalidOid || relid == subject_key_relid)
	{
		pfg_data_key_cache_flush();
		subject_key_relid = InvalidOid;
		subject_key_owner = InvalidOid;
	}
}

/* the OID of profile_guard.subject_key, and its owner */
static Oid
subject_key_table(Oid *owner)
{
	if (!OidIsValid(subject_key_relid))
	{
		Oid			nsp = get_namespace_oid(PFG_SCHEMA_NAME, true);
		Oid			relid = InvalidOid;
		HeapTuple	tuple;

		if (OidIsValid(nsp))
			relid = get_relname_relid(PFG_SUBJECT_KEY_TABLE, nsp);
		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension profile_guard is not installed in this database"),
					 errhint("Run CREATE EXTENSION profile_guard.")));

		tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for relation %u", relid);
		subject_key_owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
		ReleaseSysCache(tuple);
		subject_key_relid = relid;
	}
	if (owner)
		*owner = subject_key_owner;
	return subject_key_relid;
}

/*
 * The queries on subject_key run as its owner (the extension's owner): the
 * caller, who may be any role writing a guarded table, has no rights on
 * it.  Every operator is schema-qualified and the search_path is our own,
 * so nothing of the caller's can redirect them.  An error restores the
 * role and settings through transaction abort.
 */
Oid
pfg_subject_key_begin_access(PfgSavedRole *saved)
{
	Oid			owner;
	Oid			relid = subject_key_table(&owner);

	pfg_switch_role(owner, "pg_catalog, pg_temp", saved);
	pfg_spi_connect();
	return relid;
}

void
pfg_subject_key_end_access(PfgSavedRole *saved)
{
	pfg_spi_finish();
	pfg_restore_role(saved);
}

void
pfg_check_subject(const char *subject)
{
	if (subject[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subject must not be empty")));
	/* a character takes at least a byte: count them only when it matters */
	if (strlen(subject) > MAX_SUBJECT_CHARS && pg_mbstrlen(subject) > MAX_SUBJECT_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subject identifier is too long"),
				 errdetail("A subject identifier is at most %d characters long.",
						   MAX_SUBJECT_CHARS)));
}

/*
 * Plans of the per-subject key queries, prepared once per backend; the plan
 * cache re-plans them if subject_key changes.
 */
static SPIPlanPtr read_key_plan = NULL;
static SPIPlanPtr create_key_plan = NULL;
static SPIPlanPtr check_key_plan = NULL;

/*
 * Read subject's row of subject_key (in SPI, as its owner).  On
 * PFG_DATA_KEY_FOUND the unwrapped data key is in key, and *own_xact tells
 * whether the row was written by the current transaction (so that a
 * rollback takes it away).  Each read takes the latest snapshot, also in a
 * REPEATABLE READ or SERIALIZABLE transaction: a key another session has
 * just committed is found, and one whose destruction has committed is
 * never read (the transaction's own snapshot would still show it, and the
 * cache would keep it after the transaction).  In parallel mode, where the
 * command counter cannot advance, the statement's snapshot is used.
 */
static PfgDataKeyStatus
read_data_key(const char *subject, uint8 *key, bool *own_xact)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			rc;
	HeapTuple	tuple;
	TupleDesc	tupdesc;
	bool		isnull;
	Datum		d;
	bytea	   *wrapped;
	char	   *fingerprint;
	const PfgMasterKey *mk;
	const PfgMasterKey *current;

	args[0] = CStringGetTextDatum(subject);
	if (read_key_plan == NULL)
		read_key_plan = pfg_keep_catalog_plan(
			"SELECT wrapped_key, master_fingerprint, xmin"
			"  FROM " PFG_SCHEMA_NAME "." PFG_SUBJECT_KEY_TABLE
			" WHERE subject OPERATOR(pg_catalog.=) $1",
			1, argtypes);
	if (IsInParallelMode())
		rc = SPI_execute_plan(read_key_plan, args, NULL, true, 1);
	else
		rc = SPI_execute_snapshot(read_key_plan, args, NULL, GetLatestSnapshot(),
								  InvalidSnapshot, false, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the data key: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return PFG_DATA_KEY_MISSING;

	tuple = SPI_tuptable->vals[0];
	tupdesc = SPI_tuptable->tupdesc;
	d = SPI_getbinval(tuple, tupdesc, 3, &isnull);
	*own_xact = !isnull &&
		TransactionIdIsCurrentTransactionId(DatumGetTransactionId(d));
	d = SPI_getbinval(tuple, tupdesc, 1, &isnull);
	if (isnull)
		return PFG_DATA_KEY_DESTROYED;
	wrapped = DatumGetByteaPP(d);
	fingerprint = SPI_getvalue(tuple, tupdesc, 2);
	if (fingerprint == NULL)
		fingerprint = "";

	current = pfg_master_key_current();
	if (pfg_master_key_matches(current, fingerprint))
		mk = current;
	else if (pfg_master_key_matches(pfg_master_key_previous(), fingerprint))
		mk = pfg_master_key_previous();
	else
		pfg_master_key_mismatch(subject, fingerprint, current);

	if (!pfg_unwrap_data_key((uint8 *) VARDATA_ANY(wrapped), VARSIZE_ANY_EXHDR(wrapped),
							 subject, mk, key))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not unwrap the data key of subject \"%s\"", subject),
				 errdetail("The wrapped key does not authenticate under the master key whose fingerprint it records; its row in profile_guard.subject_key may have been altered.")));
	return PFG_DATA_KEY_FOUND;
}

/*
 * Before wrapping a new data key, make sure the configured master key is
 * the one the existing data keys were wrapped by (or the previous one,
 * during a rotation): a key wrapped by a wrong master key would make every
 * value written with it unreadable once the right key is back.  All keys
 * carry the same fingerprint outside a rotation, so one row tells; checked
 * once per backend.
 */
static bool master_key_checked = false;

static void
check_master_key_matches(const PfgMasterKey *current)
{
	char	   *fingerprint;
	int			rc;

	if (master_key_checked)
		return;
	if (check_key_plan == NULL)
		check_key_plan = pfg_keep_catalog_plan(
			"SELECT master_fingerprint FROM " PFG_SCHEMA_NAME "." PFG_SUBJECT_KEY_TABLE
			" WHERE wrapped_key IS NOT NULL LIMIT 1",
			0, NULL);
	rc = SPI_execute_plan(check_key_plan, NULL, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the data keys: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1 &&
		(fingerprint = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)) != NULL &&
		!pfg_master_key_matches(current, fingerprint) &&
		!pfg_master_key_matches(pfg_master_key_previous(), fingerprint))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("master key does not match the key that wrapped the data keys"),
				 errdetail("Existing data keys were wrapped by the master key with fingerprint %s; the configured master key has fingerprint %s. No new data key is made under it.",
						   fingerprint, current->fingerprint),
				 errhint("Configure the master key that wrapped the data keys in profile_guard.master_key_file or profile_guard.master_key_command.")));
	master_key_checked = true;
}

/*
 * Make a data key for subject.  Two sessions may race: ON CONFLICT DO
 * NOTHING lets one win, and the loser reads the winner's key.  Sets
 * *own_xact when ours was inserted.
 */
static PfgDataKeyStatus
create_data_key(const char *subject, uint8 *key, bool *own_xact)
{
	Oid			argtypes[3] = {TEXTOID, BYTEAOID, TEXTOID};
	Datum		args[3];
	const PfgMasterKey *mk = pfg_master_key_current();
	bytea	   *wrapped = palloc(VARHDRSZ + PFG_WRAPPED_KEY_LEN);
	PfgDataKeyStatus status;
	int			rc;

	check_master_key_matches(mk);
	pfg_random_key(key);
	SET_VARSIZE(wrapped, VARHDRSZ + PFG_WRAPPED_KEY_LEN);
	pfg_wrap_data_key(key, subject, mk, (uint8 *) VARDATA(wrapped));

	args[0] = CStringGetTextDatum(subject);
	args[1] = PointerGetDatum(wrapped);
	args[2] = CStringGetTextDatum(mk->fingerprint);
	if (create_key_plan == NULL)
		create_key_plan = pfg_keep_catalog_plan(
			"INSERT INTO " PFG_SCHEMA_NAME "." PFG_SUBJECT_KEY_TABLE
			" (subject, wrapped_key, master_fingerprint, created_at)"
			" VALUES ($1, $2, $3, pg_catalog.now())"
			" ON CONFLICT (subject) DO NOTHING",
			3, argtypes);
	rc = SPI_execute_plan(create_key_plan, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not store a data key: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		*own_xact = true;
		pfg_shared_data_keys_note_created();
		return PFG_DATA_KEY_FOUND;
	}

	/* another session created it first */
	explicit_bzero(key, PFG_KEY_LEN);
	pfg_plan_for_key_lookups();
	status = read_data_key(subject, key, own_xact);
	if (status == PFG_DATA_KEY_MISSING)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent creation of a data key"),
				 errdetail("Another transaction created the data key of subject \"%s\" after this transaction's snapshot was taken.", subject),
				 errhint("The transaction might succeed if retried.")));
	return status;
}

/*
 * The new key row, written straight into subject_key's heap and indexes
 * the way INSERT … ON CONFLICT DO NOTHING writes it, without the executor:
 * no plan, no role switch, no SPI.  The heap tuple is inserted
 * speculatively and the indexes checked without waiting; if the primary
 * key already holds the subject, committed or not (another transaction
 * made its key meanwhile), the tuple is killed and the caller takes the
 * SPI path, which waits for that transaction and reads the winner's key.
 * Only for a statement that read every key and found none for the
 * subject (see pfg_data_key_get), once the master key was checked,
 * outside parallel mode, and while subject_key has no trigger on INSERT
 * (its own trigger fires on the other commands) and only
 * plain, immediate indexes (a DBA's expression or partial index sends
 * every key through create_data_key).  Returns false to ask for
 * create_data_key.
 */
static bool
insert_key_directly(const char *subject, uint8 *key, bool *own_xact)
{
	Relation	rel;
	CatalogIndexState indstate;
	TupleTableSlot *slot;
	const PfgMasterKey *mk = pfg_master_key_current();
	bytea	   *wrapped;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, true};
	HeapTuple	tuple;
	TransactionId xid;
	uint32		token;
	bool		has_pk = false;
	bool		conflict = false;
	int			i;

	if (!master_key_checked || IsInParallelMode())
		return false;

	rel = table_open(subject_key_table(NULL), RowExclusiveLock);
	indstate = CatalogOpenIndexes(rel);
	for (i = 0; i < indstate->ri_NumIndices; i++)
	{
		IndexInfo  *info = indstate->ri_IndexRelationInfo[i];
		Form_pg_index index = indstate->ri_IndexRelationDescs[i]->rd_index;

		if (info->ii_Expressions != NIL || info->ii_Predicate != NIL ||
			info->ii_ExclusionOps != NULL || !index->indimmediate)
			break;
		if (index->indisprimary && info->ii_NumIndexKeyAttrs == 1 &&
			info->ii_IndexAttrNumbers[0] == 1)
			has_pk = true;
	}
	if (i < indstate->ri_NumIndices || !has_pk ||
		(rel->trigdesc != NULL &&
		 (rel->trigdesc->trig_insert_before_row || rel->trigdesc->trig_insert_after_row ||
		  rel->trigdesc->trig_insert_instead_row || rel->trigdesc->trig_insert_new_table ||
		  rel->trigdesc->trig_insert_before_statement ||
		  rel->trigdesc->trig_insert_after_statement)) ||
		RelationGetDescr(rel)->natts != lengthof(values))
	{
		CatalogCloseIndexes(indstate);
		table_close(rel, RowExclusiveLock);
		return false;
	}

	pfg_random_key(key);
	wrapped = palloc(VARHDRSZ + PFG_WRAPPED_KEY_LEN);
	SET_VARSIZE(wrapped, VARHDRSZ + PFG_WRAPPED_KEY_LEN);
	pfg_wrap_data_key(key, subject, mk, (uint8 *) VARDATA(wrapped));
	values[0] = CStringGetTextDatum(subject);
	values[1] = PointerGetDatum(wrapped);
	values[2] = CStringGetTextDatum(mk->fingerprint);
	values[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[4] = (Datum) 0;		/* destroyed_at */
	tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);

	xid = GetCurrentTransactionId();
	token = SpeculativeInsertionLockAcquire(xid);
	HeapTupleHeaderSetSpeculativeToken(tuple->t_data, token);
	heap_insert(rel, tuple, GetCurrentCommandId(true), HEAP_INSERT_SPECULATIVE, NULL);

	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tuple, slot, false);
	for (i = 0; i < indstate->ri_NumIndices; i++)
	{
		Relation	index = indstate->ri_IndexRelationDescs[i];
		Datum		index_values[INDEX_MAX_KEYS];
		bool		index_nulls[INDEX_MAX_KEYS];

		FormIndexDatum(indstate->ri_IndexRelationInfo[i], slot, NULL,
					   index_values, index_nulls);
		if (!index_insert(index, index_values, index_nulls, &tuple->t_self, rel,
						  index->rd_index->indisunique ? UNIQUE_CHECK_PARTIAL : UNIQUE_CHECK_NO,
						  false, indstate->ri_IndexRelationInfo[i]) &&
			index->rd_index->indisunique)
			conflict = true;
	}
	if (conflict)
		heap_abort_speculative(rel, &tuple->t_self);
	else
		heap_finish_speculative(rel, &tuple->t_self);
	SpeculativeInsertionLockRelease(xid);
	if (!conflict)
		pgstat_count_heap_insert(rel, 1);

	ExecDropSingleTupleTableSlot(slot);
	heap_freetuple(tuple);
	pfree(wrapped);
	CatalogCloseIndexes(indstate);
	table_close(rel, RowExclusiveLock);
	if (conflict)
	{
		explicit_bzero(key, PFG_KEY_LEN);
		return false;
	}
	*own_xact = true;
	pfg_shared_data_keys_note_created();
	return true;
}

/*
 * Make the data keys of subjects (n of them; NULL entries are refused) that
 * have none, in batches of CREATE_BATCH: each batch is one INSERT … SELECT
 * over two arrays, the subjects and their wrapped keys, with ON CONFLICT
 * DO NOTHING, so that a subject that has a key, or a destroyed one, keeps
 * it.  This is how register_subject() gives a new subject its key, and how
 * create_data_keys() makes them for subjects registered before: their
 * first sensitive value then finds a key instead of making one.  The keys
 * stored go into this backend's cache as the transaction's own (forgotten
 * if it aborts), while it has room: a session that registers a subject
 * and then writes its tags, or makes the keys of many and then loads
 * their values, finds them there.  Only a key whose row the INSERT
 * returns, with the very wrapped form made for it, is cached: a subject
 * that kept its key is not.  Returns how many were made.
 */
#define CREATE_BATCH	10000
static SPIPlanPtr create_keys_plan = NULL;

/*
 * After a batch of create_data_keys(): cache, as the transaction's own,
 * the keys[count][PFG_KEY_LEN] of those subjects whose row the INSERT
 * returned (SPI_tuptable, wrapped_key, in the order of its input; a
 * subject that kept its key returns none).  A returned row is matched to
 * its input by the wrapped form, unique to each key made; anything that
 * does not match, or no room left, stops the caching, never the batch.
 */
static void
cache_created_keys(const Datum *subjects, const Datum *wrapped,
				   const uint8 *keys, int count)
{
	int			room = pfg_data_key_cache_room();
	int			next = 0;
	uint32		highest = 0;
	uint32		dense = 0;

	if (SPI_tuptable == NULL || room <= 0)
		return;
	pfg_data_key_cache_reserve(Min((uint64) room, SPI_processed), false);
	/* integer subjects: an array that holds them, for when they commit */
	for (int i = 0; i < count; i++)
	{
		text	   *subject = DatumGetTextPP(subjects[i]);
		uint32		index;

		if (pfg_data_key_cache_dense_subject(VARDATA_ANY(subject),
											 VARSIZE_ANY_EXHDR(subject), &index))
		{
			highest = Max(highest, index);
			dense++;
		}
	}
	if (dense > 0)
		pfg_data_key_cache_reserve_dense_upto(highest, Min((uint32) room, dense));
	for (uint64 r = 0; r < SPI_processed && room > 0; r++, room--)
	{
		bool		isnull;
		Datum		stored = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc,
										   1, &isnull);
		bytea	   *w;

		if (isnull)
			return;
		w = DatumGetByteaPP(stored);
		if (VARSIZE_ANY_EXHDR(w) != PFG_WRAPPED_KEY_LEN)
			return;
		while (next < count &&
			   memcmp(VARDATA_ANY(w), VARDATA(DatumGetByteaPP(wrapped[next])),
					  PFG_WRAPPED_KEY_LEN) != 0)
			next++;
		if (next == count)
			return;
		{
			text	   *subject = DatumGetTextPP(subjects[next]);

			pfg_data_key_cache_insert(VARDATA_ANY(subject), VARSIZE_ANY_EXHDR(subject),
									  keys + (Size) next * PFG_KEY_LEN, true);
		}
		next++;
	}
}

static uint64
create_data_keys(Datum *subjects, bool *nulls, int n)
{
	Oid			argtypes[3] = {TEXTARRAYOID, BYTEAARRAYOID, TEXTOID};
	const PfgMasterKey *mk = pfg_master_key_current();
	MemoryContext batch_cxt;
	MemoryContext old_cxt;
	PfgSavedRole saved;
	Oid			relid;
	bool		reporting;
	uint8	   *keys;
	uint64		made = 0;
	int			start;

	for (start = 0; start < n; start++)
		if (nulls[start])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("subject must not be null"),
					 errhint("Pass the subjects' identifiers as text.")));

	relid = pfg_subject_key_begin_access(&saved);
	check_master_key_matches(mk);
	/* a bulk call may be long work: the view profile_guard.progress shows it */
	reporting = n > 1 &&
		pfg_progress_start(PFG_PROGRESS_CREATE_KEYS, relid, "making data keys", n, false);
	if (create_keys_plan == NULL)
		create_keys_plan = pfg_keep_catalog_plan(
			"INSERT INTO " PFG_SCHEMA_NAME "." PFG_SUBJECT_KEY_TABLE
			" (subject, wrapped_key, master_fingerprint, created_at)"
			" SELECT u.subject, u.wrapped_key, $3, pg_catalog.now()"
			" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2))"
			" AS u (subject, wrapped_key)"
			" ON CONFLICT (subject) DO NOTHING"
			" RETURNING wrapped_key",
			3, argtypes);

	batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
									  "profile_guard new data keys",
									  ALLOCSET_DEFAULT_SIZES);
	for (start = 0; start < n; start += CREATE_BATCH)
	{
		int			count = Min(CREATE_BATCH, n - start);
		Datum	   *wrapped;
		Datum		args[3];
		int			i;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (reporting)
			pfg_progress_done(start);
		old_cxt = MemoryContextSwitchTo(batch_cxt);
		wrapped = palloc(count * sizeof(Datum));
		keys = palloc((Size) count * PFG_KEY_LEN);
		for (i = 0; i < count; i++)
		{
			char	   *subject = TextDatumGetCString(subjects[start + i]);
			bytea	   *w = palloc(VARHDRSZ + PFG_WRAPPED_KEY_LEN);
			uint8	   *key = keys + (Size) i * PFG_KEY_LEN;

			pfg_check_subject(subject);
			SET_VARSIZE(w, VARHDRSZ + PFG_WRAPPED_KEY_LEN);
			pfg_random_key(key);
			pfg_wrap_data_key(key, subject, mk, (uint8 *) VARDATA(w));
			wrapped[i] = PointerGetDatum(w);
		}
		args[0] = PointerGetDatum(construct_array(subjects + start, count, TEXTOID,
												  -1, false, TYPALIGN_INT));
		args[1] = PointerGetDatum(construct_array(wrapped, count, BYTEAOID,
												  -1, false, TYPALIGN_INT));
		args[2] = CStringGetTextDatum(mk->fingerprint);
		MemoryContextSwitchTo(old_cxt);

		rc = SPI_execute_plan(create_keys_plan, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not store data keys: %s", SPI_result_code_string(rc));
		made += SPI_processed;
		if (SPI_processed > 0)
			pfg_shared_data_keys_note_created();
		cache_created_keys(subjects + start, wrapped, keys, count);
		explicit_bzero(keys, (Size) count * PFG_KEY_LEN);
		SPI_freetuptable(SPI_tuptable);
		MemoryContextReset(batch_cxt);
	}
	MemoryContextDelete(batch_cxt);
	pfg_subject_key_end_access(&saved);
	if (reporting)
		pfg_progress_end();
	return made;
}

/*
 * _create_data_keys(subjects text[], when_configured boolean) RETURNS
 * bigint: the data keys of those subjects that have none.  With
 * when_configured, nothing is made (0) while no master key is configured:
 * register_subject() calls it so, and the first sensitive value of such a
 * subject makes its key once one is.
 */
Datum
profile_guard_create_data_keys(PG_FUNCTION_ARGS)
{
	ArrayType  *subjects = PG_GETARG_ARRAYTYPE_P(0);
	bool		when_configured = PG_GETARG_BOOL(1);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	pfg_require_preload();
	if (when_configured && !pfg_master_key_configured())
		PG_RETURN_INT64(0);
	deconstruct_array(subjects, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	PG_RETURN_INT64((int64) create_data_keys(elems, nulls, n));
}

/*
 * Count a miss of the cache in the current statement; true when the
 * statement should now load every key at once.
 */
static bool
note_miss(void)
{
	if (MyProc->lxid != stmt_lxid ||
		GetCurrentStatementStartTimestamp() != stmt_start)
	{
		stmt_lxid = MyProc->lxid;
		stmt_start = GetCurrentStatementStartTimestamp();
		stmt_misses = 0;
		stmt_bulk_after = 0;
		stmt_bulk_loaded = false;
		stmt_took_shared = false;
	}
	return ++stmt_misses == BULK_MIN_MISSES ||
		(stmt_bulk_after > 0 && stmt_misses == stmt_bulk_after);
}

/* the number of rows in subject_key, as the planner would estimate it */
static double
estimated_keys(Relation rel)
{
	BlockNumber pages = RelationGetNumberOfBlocks(rel);
	double		tuples = rel->rd_rel->reltuples;
	BlockNumber relpages = rel->rd_rel->relpages;

	if (tuples >= 0 && relpages > 0)
		return tuples / relpages * Max(pages, relpages);
	return (double) pages * (BLCKSZ / 128);
}

/*
 * Read and unwrap every live key of subject_key into the cache, once the
 * statement has missed enough of them (see the file's comment).  Returns
 * false when it did not load (not yet, or they would not fit).
 */
static bool
bulk_load_keys(void)
{
	Relation	rel;
	TupleDesc	desc;
	TableScanDesc scan;
	HeapTuple	tuple;
	Snapshot	snapshot;
	double		estimate;
	int			room;
	uint64		flushes;
	const PfgMasterKey *current = pfg_master_key_current();
	const PfgMasterKey *previous = pfg_master_key_previous();
	AttrNumber	a_subject,
				a_wrapped,
				a_fingerprint;
	Datum	   *values;
	bool	   *nulls;
	int			loaded = 0;
	int			dense = 0;
	bool		complete;
	bool		shareable;
	PfgSharedKeysTicket ticket;
	Oid			relid;

	relid = subject_key_table(NULL);
	rel = table_open(relid, AccessShareLock);
	estimate = estimated_keys(rel);
	/* after a set taken that lacked too many keys: the scan reads them all */
	if (stmt_took_shared && stmt_bulk_after > 0)
	{
		pfg_data_key_cache_flush();
		pfg_shared_data_keys_release();
	}
	room = pfg_data_key_cache_room();
	if (stmt_bulk_after == 0)
	{
		/* single reads first, in proportion to what a scan costs */
		double		ratio = pfg_shared_data_keys_published(relid, current->fingerprint) ?
			BULK_SHARED_RATIO : BULK_MISS_RATIO;

		stmt_bulk_after = (int) Min(estimate / ratio, (double) INT_MAX / 2);
		if (stmt_bulk_after > stmt_misses)
		{
			table_close(rel, AccessShareLock);
			return false;
		}
	}
	stmt_bulk_after = -1;		/* once per statement */

	/*
	 * Another backend published them: take those (the integer subjects'
	 * keys are read in place, and need no room in the cache).  Keys made
	 * since are read one by one, and if the statement meets many of them it
	 * scans after all.
	 */
	if (!stmt_took_shared &&
		pfg_shared_data_keys_take(relid, current->fingerprint,
								  room, &complete))
	{
		table_close(rel, AccessShareLock);
		stmt_took_shared = true;
		stmt_bulk_loaded = complete;
		stmt_bulk_flushes = pfg_data_key_cache_flushes();
		stmt_bulk_after = stmt_misses +
			(int) Max(BULK_MIN_MISSES, Min(estimate / BULK_MISS_RATIO, (double) INT_MAX / 4));
		return true;
	}
	if (estimate > room)
	{
		table_close(rel, AccessShareLock);
		return false;
	}

	/*
	 * What this scan reads may be published for the other backends: then
	 * the cache holds nothing else (the epoch is read before the snapshot).
	 */
	ticket = pfg_shared_data_keys_begin_load();
	shareable = ticket.usable;
	if (shareable)
	{
		pfg_data_key_cache_flush();
		pfg_shared_data_keys_release();
	}

	desc = RelationGetDescr(rel);
	a_subject = attnameAttNum(rel, "subject", false);
	a_wrapped = attnameAttNum(rel, "wrapped_key", false);
	a_fingerprint = attnameAttNum(rel, "master_fingerprint", false);
	if (a_subject <= 0 || a_wrapped <= 0 || a_fingerprint <= 0)
		elog(ERROR, "profile_guard.subject_key lacks a column");

	flushes = pfg_data_key_cache_flushes();
	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	snapshot = RegisterSnapshot(IsInParallelMode() ? GetActiveSnapshot() : GetLatestSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		struct varlena *subject;
		struct varlena *wrapped;
		struct varlena *fp;
		const PfgMasterKey *mk;
		uint8		key[PFG_KEY_LEN];
		char		fingerprint[PFG_FINGERPRINT_HEX_LEN + 1];
		int			slen;

		heap_deform_tuple(tuple, desc, values, nulls);
		if (nulls[a_wrapped - 1] || nulls[a_fingerprint - 1] || nulls[a_subject - 1])
			continue;			/* destroyed: a single read reports it */
		wrapped = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(values[a_wrapped - 1]));
		fp = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(values[a_fingerprint - 1]));
		if (VARSIZE_ANY_EXHDR(fp) != PFG_FINGERPRINT_HEX_LEN)
			continue;
		memcpy(fingerprint, VARDATA_ANY(fp), PFG_FINGERPRINT_HEX_LEN);
		fingerprint[PFG_FINGERPRINT_HEX_LEN] = '\0';
		if (pfg_master_key_matches(current, fingerprint))
			mk = current;
		else if (pfg_master_key_matches(previous, fingerprint))
			mk = previous;
		else
			continue;			/* a single read reports the mismatch */
		subject = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(values[a_subject - 1]));
		slen = VARSIZE_ANY_EXHDR(subject);
		if (pfg_data_key_cache_room() <= 0)
		{
			shareable = false;
			break;
		}
		/* make room at once for what the first keys say is coming */
		if (loaded < RESERVE_AFTER)
		{
			uint32		index;

			dense += pfg_data_key_cache_dense_subject(VARDATA_ANY(subject), slen, &index);
			if (++loaded == RESERVE_AFTER)
				pfg_data_key_cache_reserve((int) Min(estimate * 1.1 + 16, (double) room),
										   dense >= RESERVE_AFTER * 9 / 10);
		}
		if (!pfg_unwrap_data_key_n((uint8 *) VARDATA_ANY(wrapped), VARSIZE_ANY_EXHDR(wrapped),
								   VARDATA_ANY(subject), slen, mk, key))
			continue;			/* a single read reports it */
		if (TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data)))
		{
			pfg_data_key_cache_insert(VARDATA_ANY(subject), slen, key, true);
			shareable = false;
		}
		else
			pfg_data_key_cache_insert(VARDATA_ANY(subject), slen, key, false);
		explicit_bzero(key, sizeof(key));
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	pfree(values);
	pfree(nulls);

	/* an invalidation meanwhile: what was read may be stale */
	if (flushes != pfg_data_key_cache_flushes())
	{
		pfg_data_key_cache_flush();
		return false;
	}
	stmt_bulk_loaded = true;
	stmt_bulk_flushes = pfg_data_key_cache_flushes();
	if (shareable)
		pfg_shared_data_keys_publish(&ticket, relid, current->fingerprint);
	return true;
}

/*
 * Are the database's data keys published in shared memory, unwrapped by
 * the current master key?  The workers of a parallel plan that decrypts
 * take them there; otherwise each would read them all for itself
 * (parallel_gates.c keeps such a plan to the leader, which publishes).
 */
bool
pfg_data_keys_shared(void)
{
	if (!pfg_master_key_configured())
		return false;
	return pfg_shared_data_keys_published(subject_key_table(NULL),
										  pfg_master_key_current()->fingerprint);
}

/*
 * The data key of subject, into key (which the caller wipes).  With create,
 * a subject without one gets one.
 */
PfgDataKeyStatus
pfg_data_key_get(const char *subject, bool create, uint8 *key)
{
	int			len = strlen(subject);
	PfgDataKeyStatus status = PFG_DATA_KEY_MISSING;
	uint64		flushes;
	bool		own_xact = false;
	bool		known_missing;
	PfgSavedRole saved;

	if (pfg_data_key_cache_lookup(subject, len, key))
		return PFG_DATA_KEY_FOUND;

	/* check the key source before touching the table */
	pfg_master_key_current();

	/* many misses in this statement: every key at once */
	if (note_miss() && bulk_load_keys() &&
		pfg_data_key_cache_lookup(subject, len, key))
		return PFG_DATA_KEY_FOUND;

	/*
	 * A few: another backend may have published this one (not when the
	 * statement already holds what a published set had: it loaded every key
	 * or took the set)
	 */
	flushes = pfg_data_key_cache_flushes();
	if (!stmt_bulk_loaded && !stmt_took_shared &&
		pfg_shared_data_keys_lookup(subject_key_table(NULL),
									pfg_master_key_current()->fingerprint,
									subject, len, key))
	{
		if (flushes == pfg_data_key_cache_flushes())
			pfg_data_key_cache_insert(subject, len, key, false);
		return PFG_DATA_KEY_FOUND;
	}

	/*
	 * Every live key was read in this statement, and none was dropped
	 * since: the subject had none then (or it was destroyed).  A key
	 * another session made meanwhile makes the insert conflict, and the
	 * winner's key is read then.
	 */
	known_missing = create && stmt_bulk_loaded &&
		stmt_bulk_flushes == pfg_data_key_cache_flushes();

	flushes = pfg_data_key_cache_flushes();
	PG_TRY();
	{
		if (known_missing && insert_key_directly(subject, key, &own_xact))
			status = PFG_DATA_KEY_FOUND;
		else
		{
			pfg_subject_key_begin_access(&saved);
			/* one subject's row: through subject_key's primary key */
			if (!known_missing)
			{
				pfg_plan_for_key_lookups();
				status = read_data_key(subject, key, &own_xact);
			}
			if (status == PFG_DATA_KEY_MISSING && create)
				status = create_data_key(subject, key, &own_xact);
			pfg_subject_key_end_access(&saved);
		}
	}
	PG_CATCH();
	{
		explicit_bzero(key, PFG_KEY_LEN);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/*
	 * Cache it unless an invalidation arrived meanwhile: what we read may
	 * already be stale.
	 */
	if (status == PFG_DATA_KEY_FOUND && flushes == pfg_data_key_cache_flushes())
		pfg_data_key_cache_insert(subject, len, key, own_xact);
	return status;
}

/*
 * Crypto-shredding: forget the subject's data key, so every copy of its
 * ciphertext (backups, replicas, dumps) becomes unreadable.  A subject that
 * never had a key gets a tombstone row, so none is made for it later.  The
 * old row version keeps the wrapped key, under the master key, until VACUUM.
 */
void
pfg_data_key_destroy(const char *subject)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	Oid			relid;
	PfgSavedRole saved;
	int			rc;

	pfg_check_subject(subject);

	relid = pfg_subject_key_begin_access(&saved);
	args[0] = CStringGetTextDatum(subject);
	rc = SPI_execute_with_args("INSERT INTO " PFG_SCHEMA_NAME "." PFG_SUBJECT_KEY_TABLE " AS k"
							   " (subject, wrapped_key, master_fingerprint, created_at, destroyed_at)"
							   " VALUES ($1, NULL, NULL, pg_catalog.now(), pg_catalog.now())"
							   " ON CONFLICT (subject) DO UPDATE"
							   " SET wrapped_key = NULL, destroyed_at = pg_catalog.now()"
							   " WHERE k.destroyed_at IS NULL",
							   1, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not destroy a data key: %s", SPI_result_code_string(rc));
	pfg_subject_key_end_access(&saved);

	/* wipe our copy now, and everybody's at commit */
	pfg_data_key_cache_forget(subject);
	pfg_shared_data_keys_note_changed();
	CacheInvalidateRelcacheByRelid(relid);
}

/*
 * The trigger on subject_key (AFTER UPDATE OR DELETE OR TRUNCATE, FOR EACH
 * STATEMENT, enabled ALWAYS): keys may have been destroyed, replaced or
 * removed by any statement, ours or a DBA's.  The shared keys of this
 * database are retired when the transaction commits, and every backend's
 * cache is flushed.
 */
Datum
profile_guard_data_keys_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		RelationGetRelid(trigdata->tg_relation) != subject_key_table(NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s() may only run as the trigger on %s.%s",
						"_data_keys_changed", PFG_SCHEMA_NAME, PFG_SUBJECT_KEY_TABLE)));
	pfg_shared_data_keys_note_changed();
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

Datum
profile_guard_destroy_subject_key(PG_FUNCTION_ARGS)
{
	pfg_require_preload();
	pfg_data_key_destroy(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}
