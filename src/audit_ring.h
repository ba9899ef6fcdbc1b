/*-------------------------------------------------------------------------
 *
 * audit_ring.h
 *	  The shared buffer of audit lines (audit_ring.c): backends put the
 *	  lines of a statement into it, the audit writer (audit_writer.c) takes
 *	  them out in order and appends them to the audit file.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_AUDIT_RING_H
#define PROFILE_GUARD_AUDIT_RING_H

#include "lib/stringinfo.h"
#include "storage/latch.h"

extern void pfg_audit_ring_define_settings(void);
extern bool pfg_audit_ring_enabled(void);	/* profile_guard.audit_buffer_size > 0 */

/* shmem.c */
extern Size pfg_audit_ring_shmem_size(void);
extern void pfg_audit_ring_shmem_startup(void);

/*
 * A backend: puts len bytes of whole lines into the buffer.  False when
 * no writer is running or there is no room: the caller writes them itself.
 */
extern bool pfg_audit_ring_put(const char *data, int len);

/* the writer: from attach on, backends put their lines; after detach, not */
extern void pfg_audit_ring_attach_writer(Latch *latch);
extern void pfg_audit_ring_detach_writer(void);

/*
 * The writer: appends to out the lines put since the last release, up to
 * the first that is still being copied in (with wait_all: every one, once
 * its copy is done), and returns the position to release once out is
 * written.
 */
extern uint64 pfg_audit_ring_take(StringInfo out, bool wait_all);
extern void pfg_audit_ring_release(uint64 position);

/*
 * The writer, told to quit at once (the server crashed): hands every entry
 * not yet released whose copy was complete to write_entry(), with fd,
 * skipping an entry a killed backend left half-copied.  Takes no lock and
 * allocates nothing: safe in a signal handler if write_entry() is.
 */
extern void pfg_audit_ring_drain(void (*write_entry) (const char *data, uint32 len, int fd),
								 int fd);

#endif							/* PROFILE_GUARD_AUDIT_RING_H */
