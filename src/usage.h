/*-------------------------------------------------------------------------
 *
 * usage.h
 *	  The usage counters in shared memory (usage.c): their setting, their
 *	  set-up (shmem.c) and what the audit (audit.c) adds to them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_USAGE_H
#define PROFILE_GUARD_USAGE_H

#include "storage/lwlock.h"

#include "audit_record.h"

extern void pfg_usage_define_settings(void);

extern Size pfg_usage_shmem_size(void);
extern void pfg_usage_shmem_startup(LWLock *lock);
extern bool pfg_usage_ready(void);

extern void pfg_usage_add_statement(const PfgAuditRecord *rec);
extern void pfg_usage_add_denial(const PfgAuditRecord *rec, const char *tag);

#endif							/* PROFILE_GUARD_USAGE_H */
