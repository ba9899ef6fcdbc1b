/*-------------------------------------------------------------------------
 *
 * audit_writer.c
 *	  The audit writer: a background worker, started with the server when
 *	  profile_guard.audit_buffer_size is not 0, that takes the binary
 *	  records backends put into the shared buffer (audit_ring.c), formats
 *	  them as lines (audit_binary.c) and appends them to the audit file (audit_file.c: its name, rotation and fall-back to
 *	  the server log), at least every WRITER_DELAY_MS milliseconds and as
 *	  soon as the buffer is half full.  It needs no database.
 *
 *	  SIGHUP: what was taken under the old settings is written first, then
 *	  the configuration is read again.  SIGTERM (shutdown) or postmaster
 *	  death: backends are told to write their lines themselves from now
 *	  on, everything in the buffer is written, and the worker exits.
 *	  SIGQUIT (a crash, or an immediate shutdown): every complete entry not
 *	  yet written is formatted in the handler (in a static buffer, with no
 *	  allocation) and goes to the open file with bare write() calls, and
 *	  the worker exits at once.  SIGQUIT is held off while a batch is written
 *	  and given back, so no line is written twice.  docs/audit.md says what
 *	  a crash can lose.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "audit_binary.h"
#include "audit_file.h"
#include "audit_ring.h"
#include "audit_writer.h"

#define WRITER_DELAY_MS			100
#define WRITER_RESTART_SECONDS	1

PGDLLEXPORT void pfg_audit_writer_main(Datum main_arg);

static StringInfoData Batch;	/* records taken from the buffer */
static StringInfoData Text;		/* their lines */

/* in _PG_init, when preloaded */
void
pfg_audit_writer_register(void)
{
	BackgroundWorker worker;

	if (!pfg_audit_ring_enabled())
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_PostmasterStart;
	worker.bgw_restart_time = WRITER_RESTART_SECONDS;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "profile_guard");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pfg_audit_writer_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "profile_guard audit writer");
	snprintf(worker.bgw_type, BGW_MAXLEN, "profile_guard audit writer");
	RegisterBackgroundWorker(&worker);
}

/* SIGQUIT: the server crashed; write what is complete and go */
static void
writer_quit(SIGNAL_ARGS)
{
	int			fd = pfg_audit_file_fd();

	if (fd >= 0)
		pfg_audit_ring_drain(pfg_audit_bin_to_fd, fd);
	_exit(2);
}

/* take what the buffer holds, write it, give its room back */
static void
write_batch(bool wait_all)
{
	sigset_t	quit;
	sigset_t	saved;
	uint64		position;

	resetStringInfo(&Batch);
	resetStringInfo(&Text);
	position = pfg_audit_ring_take(&Batch, wait_all);
	pfg_audit_bin_to_text(Batch.data, Batch.len, true, &Text);

	sigemptyset(&quit);
	sigaddset(&quit, SIGQUIT);
	sigprocmask(SIG_BLOCK, &quit, &saved);
	if (Text.len > 0)
		pfg_audit_file_write(Text.data, Text.len);
	pfg_audit_ring_release(position);
	sigprocmask(SIG_SETMASK, &saved, NULL);

	/* a batch grown by a burst does not stay large */
	if (Batch.maxlen > 4 * 1024 * 1024)
	{
		pfree(Batch.data);
		initStringInfo(&Batch);
	}
	if (Text.maxlen > 4 * 1024 * 1024)
	{
		pfree(Text.data);
		initStringInfo(&Text);
	}
}

void
pfg_audit_writer_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGQUIT, writer_quit);
	BackgroundWorkerUnblockSignals();

	MemoryContextSwitchTo(TopMemoryContext);
	initStringInfo(&Batch);
	initStringInfo(&Text);
	pfg_audit_ring_attach_writer(MyLatch);

	for (;;)
	{
		int			rc;

		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_POSTMASTER_DEATH,
					   WRITER_DELAY_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);

		if (ShutdownRequestPending || (rc & WL_POSTMASTER_DEATH))
		{
			pfg_audit_ring_detach_writer();
			write_batch(true);
			pfg_audit_file_close();
			proc_exit(0);
		}

		write_batch(false);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}
