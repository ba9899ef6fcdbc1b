/*-------------------------------------------------------------------------
 *
 * audit_binary.h
 *	  The audit trail's binary records (audit_binary.c): what a backend
 *	  writes for each audit line, and the one function that formats a
 *	  record as its JSON line.
 *
 *	  A record is a fixed header followed by its strings and numbers, in an
 *	  order fixed by its event (audit_binary.c gives it).  Records follow
 *	  one another without padding; every field is read with memcpy().
 *	  Building a record (pfg_audit_bin_begin() and the appends) is for a
 *	  backend; formatting it is for anyone, in a signal handler too.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_AUDIT_BINARY_H
#define PROFILE_GUARD_AUDIT_BINARY_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/* what a line reports: its key "event" */
typedef enum PfgAuditEvent
{
	PFG_AUDIT_EVENT_READ,
	PFG_AUDIT_EVENT_BYPASS_READ,
	PFG_AUDIT_EVENT_DENIAL,
	PFG_AUDIT_EVENT_LOST
} PfgAuditEvent;

/* PfgAuditBinHeader.flags */
#define PFG_AUDIT_BIN_COMPLETED		0x01	/* a read: "completed":true */
#define PFG_AUDIT_BIN_EXTRA_TAG		0x02	/* a denial: one more tag follows */

typedef struct PfgAuditBinHeader
{
	uint32		len;			/* the whole record, this header included */
	uint8		event;			/* PfgAuditEvent */
	uint8		flags;
	uint16		unused;
	int32		pid;
	int32		level;			/* nesting level of the statement */
	uint32		nrels;
	uint32		ntags;
	int32		purpose_version;	/* <= 0: null */
	TimestampTz ts;				/* the key "ts" */
	uint64		count;			/* rows_processed; for "lost", statements */
} PfgAuditBinHeader;

/*
 * Building: pfg_audit_bin_begin() appends the header (its len, ts and pid
 * are filled in here) and returns where the record starts; the strings and
 * numbers follow in their order; pfg_audit_bin_end() sets the length.
 */
extern int	pfg_audit_bin_begin(StringInfo buf, const PfgAuditBinHeader *header);
extern void pfg_audit_bin_str(StringInfo buf, const char *value);	/* NULL: null */
extern void pfg_audit_bin_num(StringInfo buf, int64 value);
extern void pfg_audit_bin_end(StringInfo buf, int start);

/*
 * Where formatted text goes: a buffer of size bytes, len used; flush()
 * makes room (grows it, or empties it and counts that in flushes) and may
 * not fail.
 */
typedef struct PfgAuditSink
{
	char	   *buf;
	int			len;
	int			size;
	void		(*flush) (struct PfgAuditSink *sink);
	void	   *arg;
	int			flushes;		/* times flush() emptied buf */
} PfgAuditSink;

/*
 * The formatting: the record at rec (at most avail bytes) as its line.
 * With file_keys, the audit file's line: the keys ts, pid and database
 * first, and a newline; without, the object alone (the server log's).
 * Returns the record's length, or 0 when it is not a whole record (then
 * what was formatted of it is taken back unless flush() took it).  Async-signal-safe when the
 * sink's flush() is.
 */
extern uint32 pfg_audit_bin_format(const char *rec, uint32 avail, bool file_keys,
								   PfgAuditSink *sink);

/* every record of data, formatted and appended to out */
extern void pfg_audit_bin_to_text(const char *data, int len, bool file_keys,
								  StringInfo out);

/*
 * Every record of data, formatted as the audit file's lines and written to
 * fd, through a static buffer with bare write() calls: for a signal
 * handler.
 */
extern void pfg_audit_bin_to_fd(const char *data, uint32 len, int fd);

#endif							/* PROFILE_GUARD_AUDIT_BINARY_H */
