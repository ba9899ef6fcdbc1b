/*-------------------------------------------------------------------------
 *
 * erasure_worker.c
 *	  The background worker that runs the sweep (erasure.c) on schedule:
 *	  its settings, its registration, and its main loop.  It connects to
 *	  profile_guard.database, sweeps every profile_guard.sweep_interval
 *	  seconds in batches of profile_guard.sweep_batch rows, one transaction
 *	  per batch (so no lock on a guarded table is held longer than one
 *	  batch), and shows its progress in pg_stat_activity.
 *
 *	  SIGHUP re-reads the configuration (between batches); SIGTERM ends the
 *	  worker at the next interrupt check (a batch in progress is rolled back
 *	  as a whole); postmaster death ends it too.  An error ends the worker;
 *	  the postmaster starts it again after bgw_restart_time.  Without the
 *	  extension in that database it logs once and keeps waiting.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "erasure.h"
#include "erasure_worker.h"

#define WORKER_RESTART_SECONDS 10

/* settings */
static char *sweep_database = NULL;
static int	sweep_interval = 60;	/* seconds */
static int	sweep_batch = 10000;	/* rows per transaction */

PGDLLEXPORT void pfg_erasure_worker_main(Datum main_arg);

void
pfg_erasure_define_settings(void)
{
	DefineCustomStringVariable("profile_guard.database",
							   "Database in which the erasure worker sweeps due erasures.",
							   "Empty: no erasure worker is started; call profile_guard.sweep() instead.",
							   &sweep_database,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("profile_guard.sweep_interval",
							"Time between two sweeps of the erasure worker.",
							NULL,
							&sweep_interval,
							60, 1, 7 * 24 * 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("profile_guard.sweep_batch",
							"Rows of a guarded table the erasure worker erases per transaction.",
							"Each batch holds its row and table locks only until it commits.",
							&sweep_batch,
							10000, 1, 1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
}

/* in _PG_init, when preloaded: a worker only where a database is named */
void
pfg_erasure_worker_register(void)
{
	BackgroundWorker worker;

	if (sweep_database == NULL || sweep_database[0] == '\0')
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = WORKER_RESTART_SECONDS;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "profile_guard");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pfg_erasure_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "profile_guard erasure worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "profile_guard erasure worker");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

static void
reload_if_asked(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

static void
begin_transaction(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_transaction(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* one sweep, batch by batch; *warned: "no extension" was logged already */
static void
run_sweep(MemoryContext cxt, bool *warned)
{
	Sweep	   *sweep;
	bool		present;
	char		activity[256];
	TimestampTz started = GetCurrentTimestamp();
	int64		longest = 0;	/* microseconds, a batch from start to commit */

	begin_transaction("profile_guard sweep: preparing");
	present = OidIsValid(get_extension_oid("profile_guard", true));
	if (!present)
	{
		if (!*warned)
			ereport(LOG,
					(errmsg("profile_guard erasure worker: extension profile_guard is not created in database \"%s\"",
							sweep_database),
					 errdetail("The worker sweeps nothing until it is."),
					 errhint("Run CREATE EXTENSION profile_guard in database \"%s\", or set profile_guard.database to the database that has it.",
							 sweep_database)));
		*warned = true;
		end_transaction();
		return;
	}
	*warned = false;
	sweep = pfg_sweep_begin(cxt, false, true);
	end_transaction();

	for (int i = 0; i < sweep->ntables; i++)
	{
		while (!sweep->tables[i].done)
		{
			CHECK_FOR_INTERRUPTS();
			reload_if_asked();
			snprintf(activity, sizeof(activity),
					 "profile_guard sweep: %s, batch %lld, %lld rows so far",
					 sweep->tables[i].relation, (long long) sweep->batches + 1,
					 (long long) sweep->rows);
			{
				TimestampTz batch_start = GetCurrentTimestamp();

				begin_transaction(activity);
				(void) pfg_sweep_batch(sweep, i, sweep_batch, false);
				end_transaction();
				longest = Max(longest, GetCurrentTimestamp() - batch_start);
			}
		}
	}

	begin_transaction("profile_guard sweep: finishing");
	pfg_sweep_finish(sweep, pfg_sweep_all_done(sweep));
	end_transaction();

	if (sweep->rows > 0 || sweep->results != NIL)
		ereport(LOG,
				(errmsg("profile_guard erasure worker: sweep erased %lld rows in %lld batches, %.3f ms, longest batch %.3f ms",
						(long long) sweep->rows, (long long) sweep->batches,
						(GetCurrentTimestamp() - started) / 1000.0, longest / 1000.0)));
}

void
pfg_erasure_worker_main(Datum main_arg)
{
	MemoryContext cxt;
	bool		warned = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(sweep_database, NULL, 0);
	SetConfigOption("search_path", "pg_catalog, profile_guard, pg_temp", PGC_USERSET, PGC_S_SESSION);
	/* as sweep() does: its statements gain nothing from JIT (erasure.c) */
	SetConfigOption("jit", "off", PGC_USERSET, PGC_S_SESSION);
	pgstat_report_appname("profile_guard erasure worker");

	cxt = AllocSetContextCreate(TopMemoryContext, "profile_guard sweep",
								ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		reload_if_asked();

		run_sweep(cxt, &warned);
		MemoryContextReset(cxt);
		pgstat_report_activity(STATE_IDLE, NULL);
		pgstat_report_stat(true);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sweep_interval * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
