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

#include "miscadmin.h"

#include "audit.h"
#include "consent_cache.h"
#include "settings.h"

/*
 * The purpose resolved last: its answers, name and recipient (when its
 * cells are recorded, recipient_use.c), the value of the setting it
 * resolved (pfg_purpose_generation, or the one fixed for the statement),
 * the role it was validated for, and the answers' drops counter then.
 * Cleared when definitions are read again or roles change.
 */
typedef struct PfgPurposeLast
{
	PurposeState *answers;		/* NULL: none */
	const char *name;			/* the purpose's name */
	const char *recipient;		/* its recipient when its cells are recorded, or NULL */
	uint64		generation;
	uint64		drops;
	Oid			user;
} PfgPurposeLast;

extern PfgPurposeLast pfg_purpose_last;

static inline bool
pfg_purpose_last_holds(uint64 generation, Oid user)
{
	return pfg_purpose_last.answers != NULL &&
		pfg_purpose_last.generation == generation &&
		pfg_purpose_last.user == user &&
		pfg_consent_answers_current(pfg_purpose_last.drops);
}

extern PurposeState *pfg_purpose_resolve_for_statement(Oid relid, const char *tag);

/*
 * The purpose that gates the running statement (purpose.c): the one in
 * force when the statement started.  The gates ask on every row; the
 * common case, the purpose and role of the last call, is answered inline.
 */
static inline PurposeState *
pfg_purpose_for_statement(Oid relid, const char *tag)
{
	uint64		generation = PfgAuditCur->purpose_fixed ?
		PfgAuditCur->purpose_generation : pfg_purpose_generation;

	if (likely(pfg_purpose_last_holds(generation, GetUserId())))
		return pfg_purpose_last.answers;
	return pfg_purpose_resolve_for_statement(relid, tag);
}

extern PurposeState *pfg_purpose_now(Oid relid, const char *tag);
extern bool pfg_statement_purpose_declared(void);
extern bool pfg_purpose_records_recipient(void);
extern void pfg_purpose_allow_in_worker(void);

#endif							/* PROFILE_GUARD_PURPOSE_H */
