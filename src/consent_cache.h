/*-------------------------------------------------------------------------
 *
 * consent_cache.h
 *	  The consent cache's interface (consent_cache.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_CONSENT_CACHE_H
#define PROFILE_GUARD_CONSENT_CACHE_H

typedef struct PurposeState PurposeState;

extern PurposeState *pg_purpose_for_statement(Oid relid, const char *tag);
extern bool pg_subject_row_visible(PurposeState *ps, Datum subject, Oid typid);
extern bool pg_subject_tag_visible(PurposeState *ps, Datum subject, Oid typid, int tag_id);
extern uint64 pg_consent_cache_generation(void);
extern char *pg_subject_text(Datum subject, Oid typid);
extern bool pg_subject_tag_collectable(Datum subject, Oid typid, int tag_id);
extern uint64 pg_consent_cache_subjects(void);
extern Size pg_consent_cache_bytes(void);

#endif							/* PROFILE_GUARD_CONSENT_CACHE_H */
