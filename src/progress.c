/*-------------------------------------------------------------------------
 *
 * progress.c
 *	  The progress of long work, per backend, in the manner of
 *	  pg_stat_progress_*: which command a backend runs (classify's
 *	  encryption of stored values, declassify's decryption and reencrypt's
 *	  rewriting of an older ciphertext format, a master-key rotation, a
 *	  sweep, the bulk build of a purpose's consent answers), on which
 *	  relation, in which phase, how much of how much is done.  The
 *	  view profile_guard.progress reads it (the SQL function _progress).
 *
 *	  One slot per backend (MyBackendId, as PostgreSQL's own backend status
 *	  array), written only by its backend and read by anybody without a
 *	  lock: like PgBackendStatus, the writer makes its change count odd
 *	  before and even after each change, and a reader copies a slot until it
 *	  sees the same even count before and after.  A command ends with
 *	  pfg_progress_end(), or at its transaction's end (commit or abort), or
 *	  when the backend exits, whichever comes first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "extension.h"
#include "progress.h"

PFG_SQL_FUNCTION(profile_guard_progress);
PFG_SQL_FUNCTION(profile_guard_progress_start);
PFG_SQL_FUNCTION(profile_guard_progress_update);
PFG_SQL_FUNCTION(profile_guard_progress_end);

#define PROGRESS_PHASE_LEN	64

typedef struct ProgressSlot
{
	uint32		changecount;	/* odd while its backend changes it */
	int			pid;			/* 0: no command */
	Oid			dbid;
	Oid			userid;
	PfgProgressCommand command;
	Oid			relid;
	char		phase[PROGRESS_PHASE_LEN];
	int64		done;
	int64		total;			/* -1: not known */
	TimestampTz started_at;
	TimestampTz changed_at;
} ProgressSlot;

static ProgressSlot *Slots = NULL;
static int	NumSlots = 0;
static bool callbacks_registered = false;
static bool running = false;	/* this backend's slot holds a command */
static bool ends_with_transaction = false;

static const char *const command_names[] = {
	[PFG_PROGRESS_ENCRYPT] = "encrypt",
	[PFG_PROGRESS_DECRYPT] = "decrypt",
	[PFG_PROGRESS_REENCRYPT] = "reencrypt",
	[PFG_PROGRESS_ROTATE_MASTER_KEY] = "rotate_master_key",
	[PFG_PROGRESS_SWEEP] = "sweep",
	[PFG_PROGRESS_CONSENT_BUILD] = "consent_build",
	[PFG_PROGRESS_CREATE_KEYS] = "create_data_keys",
};

/* what 'done' and 'total' count, per command */
static const char *const command_units[] = {
	[PFG_PROGRESS_ENCRYPT] = "blocks",
	[PFG_PROGRESS_DECRYPT] = "blocks",
	[PFG_PROGRESS_REENCRYPT] = "blocks",
	[PFG_PROGRESS_ROTATE_MASTER_KEY] = "keys",
	[PFG_PROGRESS_SWEEP] = "rows",
	[PFG_PROGRESS_CONSENT_BUILD] = "subjects",
	[PFG_PROGRESS_CREATE_KEYS] = "keys",
};

/* ---------------------------------------------------------------------
 * Shared memory (shmem.c)
 * ---------------------------------------------------------------------
 */

Size
pfg_progress_shmem_size(void)
{
	/* MaxBackends is known when shmem_request_hook runs */
	return mul_size(MaxBackends, sizeof(ProgressSlot));
}

/* called with AddinShmemInitLock held */
void
pfg_progress_shmem_startup(void)
{
	bool		found;

	NumSlots = MaxBackends;
	Slots = ShmemInitStruct("profile_guard progress",
							pfg_progress_shmem_size(), &found);
	if (!found)
		memset(Slots, 0, pfg_progress_shmem_size());
}

/* ---------------------------------------------------------------------
 * Writing this backend's slot
 * ---------------------------------------------------------------------
 */

static ProgressSlot *
my_slot(void)
{
	if (Slots == NULL || MyBackendId == InvalidBackendId ||
		MyBackendId < 1 || MyBackendId > NumSlots)
		return NULL;
	return &Slots[MyBackendId - 1];
}

#define BEGIN_SLOT_WRITE(slot) \
	do { (slot)->changecount++; pg_write_barrier(); } while (0)
#define END_SLOT_WRITE(slot) \
	do { pg_write_barrier(); (slot)->changecount++; } while (0)

static void
clear_slot(void)
{
	ProgressSlot *slot = my_slot();

	running = false;
	if (slot == NULL || slot->pid == 0)
		return;
	BEGIN_SLOT_WRITE(slot);
	slot->pid = 0;
	END_SLOT_WRITE(slot);
}

static void
progress_xact_callback(XactEvent event, void *arg)
{
	if (!running || !ends_with_transaction)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			clear_slot();
			break;
		default:
			break;
	}
}

static void
progress_before_shmem_exit(int code, Datum arg)
{
	clear_slot();
}

static void
set_phase(ProgressSlot *slot, const char *phase)
{
	strlcpy(slot->phase, phase ? phase : "", PROGRESS_PHASE_LEN);
}

/*
 * Start reporting a command of this backend: on relation relid (InvalidOid:
 * none or not yet known), in phase 'phase', with 'total' units to do (-1:
 * not known).  It ends with pfg_progress_end(), at the end of the current
 * transaction unless 'across_transactions' (the erasure worker's sweep,
 * batch by batch), or when the backend exits.  Returns false, and reports
 * nothing, while another command of this backend is reported (a consent
 * build inside a classify): only the outer one is shown, and the inner
 * must not end it.
 */
bool
pfg_progress_start(PfgProgressCommand command, Oid relid, const char *phase, int64 total,
				   bool across_transactions)
{
	ProgressSlot *slot = my_slot();

	if (slot == NULL || running)
		return false;
	if (!callbacks_registered)
	{
		RegisterXactCallback(progress_xact_callback, NULL);
		before_shmem_exit(progress_before_shmem_exit, (Datum) 0);
		callbacks_registered = true;
	}
	BEGIN_SLOT_WRITE(slot);
	slot->pid = MyProcPid;
	slot->dbid = MyDatabaseId;
	slot->userid = GetUserId();
	slot->command = command;
	slot->relid = relid;
	set_phase(slot, phase);
	slot->done = 0;
	slot->total = total;
	slot->started_at = slot->changed_at = GetCurrentTimestamp();
	END_SLOT_WRITE(slot);
	running = true;
	ends_with_transaction = !across_transactions;
	return true;
}

/* the phase, relation and total change (NULL, InvalidOid, -2: unchanged) */
void
pfg_progress_phase(const char *phase, Oid relid, int64 total)
{
	ProgressSlot *slot = my_slot();

	if (!running || slot == NULL)
		return;
	BEGIN_SLOT_WRITE(slot);
	if (phase != NULL)
		set_phase(slot, phase);
	if (OidIsValid(relid))
		slot->relid = relid;
	if (total != -2)
		slot->total = total;
	slot->changed_at = GetCurrentTimestamp();
	END_SLOT_WRITE(slot);
}

/* 'done' units of the total are done */
void
pfg_progress_done(int64 done)
{
	ProgressSlot *slot = my_slot();

	if (!running || slot == NULL)
		return;
	BEGIN_SLOT_WRITE(slot);
	slot->done = done;
	slot->changed_at = GetCurrentTimestamp();
	END_SLOT_WRITE(slot);
}

void
pfg_progress_end(void)
{
	if (running)
		clear_slot();
}

/* ---------------------------------------------------------------------
 * SQL
 * ---------------------------------------------------------------------
 */

static PfgProgressCommand
command_by_name(const char *name)
{
	for (int i = 0; i < lengthof(command_names); i++)
		if (command_names[i] != NULL && strcmp(command_names[i], name) == 0)
			return (PfgProgressCommand) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown progress command \"%s\"", name),
			 errhint("Use encrypt, decrypt, reencrypt, rotate_master_key, sweep, consent_build or create_data_keys.")));
	return PFG_PROGRESS_ENCRYPT;	/* keep the compiler quiet */
}

/*
 * _progress_start(command, relid, phase, total): for the extension's own
 * PL/pgSQL (classify's conversion of stored values); not granted to anyone.
 */
Datum
profile_guard_progress_start(PG_FUNCTION_ARGS)
{
	PfgProgressCommand command;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("progress command must not be null")));
	command = command_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_BOOL(pfg_progress_start(command,
									  PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1),
									  PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
									  PG_ARGISNULL(3) ? -1 : PG_GETARG_INT64(3),
									  false));
}

/* _progress_update(relid, done): the relation now worked on and what is done */
Datum
profile_guard_progress_update(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0))
		pfg_progress_phase(NULL, PG_GETARG_OID(0), -2);
	if (!PG_ARGISNULL(1))
		pfg_progress_done(PG_GETARG_INT64(1));
	PG_RETURN_VOID();
}

Datum
profile_guard_progress_end(PG_FUNCTION_ARGS)
{
	pfg_progress_end();
	PG_RETURN_VOID();
}

/*
 * _progress(): one row per backend running a command — pid, database,
 * role, command, relation, phase, done, total, unit, started, last change.
 */
Datum
profile_guard_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (Slots == NULL)
		PG_RETURN_VOID();

	for (int i = 0; i < NumSlots; i++)
	{
		volatile ProgressSlot *shared = &Slots[i];
		ProgressSlot copy;
		Datum		values[11];
		bool		nulls[11] = {0};
		bool		known;

		/* a consistent copy: the same even change count before and after */
		for (;;)
		{
			uint32		before = shared->changecount;

			pg_read_barrier();
			memcpy(&copy, (const void *) shared, sizeof(copy));
			pg_read_barrier();
			if ((before & 1) == 0 && before == shared->changecount)
				break;
			CHECK_FOR_INTERRUPTS();
		}
		if (copy.pid == 0)
			continue;
		copy.phase[PROGRESS_PHASE_LEN - 1] = '\0';

		values[0] = Int32GetDatum(copy.pid);
		values[1] = ObjectIdGetDatum(copy.dbid);
		values[2] = ObjectIdGetDatum(copy.userid);
		known = copy.command < lengthof(command_names) && command_names[copy.command];
		values[3] = CStringGetTextDatum(known ? command_names[copy.command] : "unknown");
		values[4] = ObjectIdGetDatum(copy.relid);
		nulls[4] = !OidIsValid(copy.relid);
		values[5] = CStringGetTextDatum(copy.phase);
		nulls[5] = copy.phase[0] == '\0';
		values[6] = Int64GetDatum(copy.done);
		values[7] = Int64GetDatum(copy.total);
		nulls[7] = copy.total < 0;
		values[8] = CStringGetTextDatum(known ? command_units[copy.command] : "");
		values[9] = TimestampTzGetDatum(copy.started_at);
		values[10] = TimestampTzGetDatum(copy.changed_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
