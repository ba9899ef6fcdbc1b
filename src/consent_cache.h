/*-------------------------------------------------------------------------
 *
 * consent_cache.h
 *	  Every subject's answer under a purpose (consent_cache.c): the
 *	  look-ups the gates make row by row, and the answers of a purpose,
 *	  which purpose.c hands to the gates once it has validated the purpose.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_CONSENT_CACHE_H
#define PROFILE_GUARD_CONSENT_CACHE_H

#include "answers.h"

/* for purpose.c */
extern PurposeState *pfg_consent_answers(const char *name);
extern uint64 pfg_consent_answers_basis(void);
extern uint64 pfg_consent_answers_drops(void);
extern bool pfg_consent_answers_current(uint64 drops);

/* for the gates */
extern bool pfg_subject_row_visible(PurposeState *ps, Datum subject, Oid typid);
extern bool pfg_subject_tag_visible(PurposeState *ps, Datum subject, Oid typid, int tag_id);
extern char *pfg_subject_text(Datum subject, Oid typid);
extern bool pfg_subject_tag_collectable(Datum subject, Oid typid, int tag_id);

#endif							/* PROFILE_GUARD_CONSENT_CACHE_H */
