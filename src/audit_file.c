/*-------------------------------------------------------------------------
 *
 * audit_file.c
 *	  The audit trail's files (profile_guard.audit_destination = file): the
 *	  backend's buffer of lines, the file it appends them to, its rotation,
 *	  and the fall-back to the server log when the file cannot be written.
 *
 *	  Each line is one JSON object (JSON Lines) that opens with the keys
 *	  "ts", "pid" and "database".  A backend keeps its lines as binary
 *	  records (audit_binary.c; audit_log.c builds them) in a buffer in
 *	  TopMemoryContext and hands them on at the end of every top-level
 *	  statement and of every transaction (audit.c calls), when the buffer
 *	  passes PFG_AUDIT_FILE_FLUSH_SIZE, and as the backend exits: into the
 *	  shared buffer that the audit writer empties and formats
 *	  (audit_ring.c, audit_writer.c), or, when that is off, full or
 *	  without its writer, or with audit_fsync on, formatted by the same
 *	  function and written with one write() of its own.  The file is
 *	  opened with O_APPEND, so that the lines of concurrent writers never
 *	  interleave.
 *
 *	  The file's name is profile_guard.audit_filename expanded by strftime()
 *	  in log_timezone at the time of the write, in
 *	  profile_guard.audit_directory (relative to the data directory, made
 *	  with mode 0700 when missing); a new name, or new settings after a
 *	  reload, close the file and open the new one.  A write that fails
 *	  sends its lines to the server log instead, with a WARNING naming the
 *	  file and the error; the next write tries the file again.
 *	  docs/audit.md says what a crash can lose.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "access/xact.h"
#include "common/file_perm.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/memutils.h"

#include "extension.h"
#include "settings.h"
#include "audit_binary.h"
#include "audit_file.h"
#include "audit_ring.h"

/* buffered lines past this size are written at once */
#define PFG_AUDIT_FILE_FLUSH_SIZE	65536

/* the lines not yet written; LineStart: where a line being built starts */
static StringInfoData Pending;
static bool PendingReady = false;
static int	LineStart = -1;

/* the lines formatted from them, when the backend writes them itself */
static StringInfoData Text;
static bool TextReady = false;

/* the open file */
static int	Fd = -1;
static char OpenPath[MAXPGPATH];
static bool SyncPending = false;	/* written to since the last fsync */

/* the file's name as last expanded: for which second and settings */
static char Path[MAXPGPATH];
static char PathDirectory[MAXPGPATH];
static pg_time_t PathTime = -1;
static uint64 PathGeneration = 0;

static void audit_file_at_exit(int code, Datum arg);

/* a buffer that lives as long as the backend */
static void
init_backend_buffer(StringInfo buf)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	initStringInfo(buf);
	MemoryContextSwitchTo(old);
}

/* ---------------------------------------------------------------------
 * Lines
 * ---------------------------------------------------------------------
 */

/* a line that an error interrupted is dropped whole */
static void
drop_partial_line(void)
{
	Pending.len = LineStart;
	Pending.data[LineStart] = '\0';
	LineStart = -1;
}

/* a line's record begins: the buffer to append it to */
StringInfo
pfg_audit_file_line_begin(void)
{
	if (!PendingReady)
	{
		init_backend_buffer(&Pending);
		before_shmem_exit(audit_file_at_exit, (Datum) 0);
		PendingReady = true;
	}
	if (LineStart >= 0)
		drop_partial_line();
	LineStart = Pending.len;
	return &Pending;
}

void
pfg_audit_file_line_end(void)
{
	LineStart = -1;
	if (Pending.len >= PFG_AUDIT_FILE_FLUSH_SIZE)
		pfg_audit_file_flush();
}

/* ---------------------------------------------------------------------
 * The file
 * ---------------------------------------------------------------------
 */

/* the file's name now: audit_filename expanded in log_timezone */
static const char *
current_path(void)
{
	pg_time_t	now = (pg_time_t) time(NULL);

	if (now != PathTime || PathGeneration != pfg_audit_file_generation)
	{
		char		name[MAXPGPATH];
		struct pg_tm *tm = log_timezone ? pg_localtime(&now, log_timezone) : pg_gmtime(&now);

		if (pg_strftime(name, sizeof(name), pfg_audit_filename, tm) == 0)
			name[0] = '\0';
		strlcpy(PathDirectory, pfg_audit_directory, sizeof(PathDirectory));
		snprintf(Path, sizeof(Path), "%s/%s", PathDirectory, name);
		PathTime = now;
		PathGeneration = pfg_audit_file_generation;
	}
	return Path;
}

static void
sync_file(void)
{
	SyncPending = false;
	if (!pfg_audit_fsync || Fd < 0)
		return;
	if (pg_fsync(Fd) != 0)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not fsync audit file \"%s\": %m", OpenPath),
				 errhidestmt(true)));
}

static void
close_file(void)
{
	if (Fd < 0)
		return;
	if (SyncPending)
		sync_file();
	close(Fd);
	ReleaseExternalFD();
	Fd = -1;
	OpenPath[0] = '\0';
}

/* open (or create) the file, and its directory when missing */
static bool
open_file(const char *path)
{
	int			fd;

	fd = BasicOpenFilePerm(path, O_WRONLY | O_APPEND | O_CREAT | PG_BINARY, PG_FILE_MODE_OWNER);
	if (fd < 0 && errno == ENOENT)
	{
		/* made as the syslogger makes log_directory; another may race us */
		(void) MakePGDirectory(PathDirectory);
		fd = BasicOpenFilePerm(path, O_WRONLY | O_APPEND | O_CREAT | PG_BINARY, PG_FILE_MODE_OWNER);
	}
	if (fd < 0)
		return false;
	ReserveExternalFD();
	Fd = fd;
	strlcpy(OpenPath, path, sizeof(OpenPath));
	return true;
}

/*
 * The file could not be opened or written: its lines go to the server log,
 * as with audit_destination = log (with the keys of the file), after a
 * WARNING that names the file and the error.
 */
static void
write_to_server_log(const char *data, int len, const char *path, int err,
					bool opening)
{
	const char *end = data + len;
	int			nlines = 0;

	for (const char *p = data; p < end; p++)
		if (*p == '\n')
			nlines++;
	errno = err;
	ereport(WARNING,
			(errcode_for_file_access(),
			 opening ?
			 errmsg("could not open audit file \"%s\": %m", path) :
			 errmsg("could not write to audit file \"%s\": %m", path),
			 errdetail_plural("%d audit line is written to the server log instead.",
							  "%d audit lines are written to the server log instead.",
							  nlines, nlines),
			 errhidestmt(true)));
	while (data < end)
	{
		const char *nl = memchr(data, '\n', end - data);

		if (nl == NULL)
			nl = end;
		ereport(LOG,
				(errmsg_internal(PFG_AUDIT_LOG_PREFIX "%.*s", (int) (nl - data), data),
				 errhidestmt(true),
				 errhidecontext(true)));
		data = nl + 1;
	}
}

/*
 * Append lines to the file: one write() with O_APPEND, so that they land
 * whole and together whatever other processes append.  What cannot be
 * written goes to the server log.
 */
void
pfg_audit_file_write(const char *data, int len)
{
	const char *path = current_path();
	ssize_t		written;

	if (Fd >= 0 && strcmp(path, OpenPath) != 0)
		close_file();
	if (Fd < 0 && !open_file(path))
	{
		write_to_server_log(data, len, path, errno, true);
		return;
	}
	do
	{
		errno = 0;
		written = write(Fd, data, len);
	} while (written < 0 && errno == EINTR);
	if (written == len)
		SyncPending = true;
	else
	{
		/* a short write sets no errno: then the disk is full */
		int			err = errno ? errno : ENOSPC;
		int			whole = 0;
		char		failed[MAXPGPATH];

		/* the lines written whole stay; the rest goes to the log */
		for (int i = (int) written - 1; i >= 0; i--)
		{
			if (data[i] == '\n')
			{
				whole = i + 1;
				break;
			}
		}
		strlcpy(failed, OpenPath, sizeof(failed));
		close_file();
		write_to_server_log(data + whole, len - whole, failed, err, false);
	}
}

/* records formatted here, and written as the audit writer writes them */
static void
write_records(const char *data, int len)
{
	if (!TextReady)
	{
		init_backend_buffer(&Text);
		TextReady = true;
	}
	resetStringInfo(&Text);
	pfg_audit_bin_to_text(data, len, true, &Text);
	pfg_audit_file_write(Text.data, Text.len);
	if (Text.maxlen > 4 * PFG_AUDIT_FILE_FLUSH_SIZE)
	{
		pfree(Text.data);
		TextReady = false;
	}
}

/*
 * Write the buffered lines: into the audit writer's shared buffer
 * (audit_ring.c) when it takes them, else to the file.  With audit_fsync
 * the backend writes, and syncs at the end of the transaction, itself.
 */
void
pfg_audit_file_flush(void)
{
	const char *data;
	int			len;

	if (!PendingReady)
		return;
	if (LineStart >= 0)
		drop_partial_line();
	if (Pending.len == 0)
		return;

	/*
	 * Taken out of the buffer first: should reporting a failure fail, the
	 * lines are not written twice.  The data stays in place until the next
	 * line is appended.
	 */
	data = Pending.data;
	len = Pending.len;
	Pending.len = 0;

	if (pfg_audit_fsync || !pfg_audit_ring_put(data, len))
		write_records(data, len);

	/* a buffer grown for one large statement does not stay large */
	if (Pending.maxlen > 4 * PFG_AUDIT_FILE_FLUSH_SIZE)
	{
		pfree(Pending.data);
		init_backend_buffer(&Pending);
	}
	else
		Pending.data[0] = '\0';
}

int
pfg_audit_file_fd(void)
{
	return Fd;
}

void
pfg_audit_file_close(void)
{
	close_file();
}

/* the transaction ends: the lines are written, and synced if asked */
void
pfg_audit_file_xact_end(void)
{
	pfg_audit_file_flush();
	if (SyncPending)
		sync_file();
}

static void
audit_file_at_exit(int code, Datum arg)
{
	pfg_audit_file_flush();
	close_file();
}
