/*-------------------------------------------------------------------------
 *
 * purpose.h
 *	  The declared purpose (purpose.c): the answers of the purpose that
 *	  gates a statement, once validated for the current role.  NULL for a
 *	  role that bypasses gating (pfg_current_user_bypasses).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_PURPOSE_H
#define PROFILE_GUARD_PURPOSE_H

#include "consent_cache.h"

extern PurposeState *pfg_purpose_for_statement(Oid relid, const char *tag);
extern PurposeState *pfg_purpose_now(Oid relid, const char *tag);
extern bool pfg_statement_purpose_declared(void);

#endif							/* PROFILE_GUARD_PURPOSE_H */
