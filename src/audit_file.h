/*-------------------------------------------------------------------------
 *
 * audit_file.h
 *	  The audit trail's files (audit_file.c): the backend's buffer of lines
 *	  and when it is written.
 *
 *	  A line's binary record (audit_binary.h) is built in place:
 *	  pfg_audit_file_line_begin() returns the buffer, the caller appends
 *	  the record and calls pfg_audit_file_line_end().  A record an error
 *	  interrupts is dropped whole.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_AUDIT_FILE_H
#define PROFILE_GUARD_AUDIT_FILE_H

#include "lib/stringinfo.h"

/*
 * In the server log (audit_destination = log, audit_log.c; or this file's
 * fall-back), a line is this prefix and the JSON object.
 */
#define PFG_AUDIT_LOG_PREFIX	"profile_guard audit: "

extern StringInfo pfg_audit_file_line_begin(void);
extern void pfg_audit_file_line_end(void);

/* the end of a top-level statement: the buffered lines are written */
extern void pfg_audit_file_flush(void);

/* the end of a transaction: written, and with audit_fsync, synced */
extern void pfg_audit_file_xact_end(void);

/* lines formatted (audit_writer.c: its batches), appended to the file */
extern void pfg_audit_file_write(const char *data, int len);
extern int	pfg_audit_file_fd(void);	/* -1 when none is open */
extern void pfg_audit_file_close(void);

#endif							/* PROFILE_GUARD_AUDIT_FILE_H */
