/*-------------------------------------------------------------------------
 *
 * audit_log.h
 *	  The audit trail's lines (audit_log.c), in the audit file or the
 *	  server log.  Refusals
 *	  are noted and classified there too; that interface is declared with
 *	  pfg_refuse() in errcodes.h, and the relcache handler in
 *	  invalidation.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_AUDIT_LOG_H
#define PROFILE_GUARD_AUDIT_LOG_H

#include "utils/elog.h"

#include "audit_record.h"

extern void pfg_audit_log_read(const PfgAuditRecord *rec);
extern void pfg_audit_log_denial(const PfgAuditRecord *rec, const ErrorData *e,
								 const char *reason, const char *tag);
extern void pfg_audit_log_lost(int64 statements);

#endif							/* PROFILE_GUARD_AUDIT_LOG_H */
