/*-------------------------------------------------------------------------
 *
 * redact.h
 *	  The redaction of values in error messages (redact.c): what the hooks
 *	  (hooks.c) and the shared-memory set-up (shmem.c) call.  Its relcache
 *	  handler is declared in invalidation.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_REDACT_H
#define PROFILE_GUARD_REDACT_H

#include "utils/elog.h"

extern void pfg_redact_init(void);

/* shared memory: the counts of guarded relations per database */
extern Size pfg_redact_shmem_size(void);
extern void pfg_redact_shmem_startup(void);

/* at the start of every statement: load the names of guarded relations */
extern void pfg_redact_refresh(void);

/* an error context callback: marks errors raised in a guarded statement */
extern void pfg_redact_error_callback(void *arg);

/* emit_log_hook: redact an error that concerns a guarded relation */
extern void pfg_redact_emit_log(ErrorData *edata);

#endif							/* PROFILE_GUARD_REDACT_H */
