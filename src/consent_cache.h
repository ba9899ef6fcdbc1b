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

extern PurposeState *pfg_purpose_for_statement(Oid relid, const char *tag);
extern PurposeState *pfg_purpose_now(Oid relid, const char *tag);
extern bool pfg_statement_purpose_declared(void);
extern bool pfg_subject_row_visible(PurposeState *ps, Datum subject, Oid typid);
extern bool pfg_subject_tag_visible(PurposeState *ps, Datum subject, Oid typid, int tag_id);
extern char *pfg_subject_text(Datum subject, Oid typid);
extern bool pfg_subject_tag_collectable(Datum subject, Oid typid, int tag_id);

#endif							/* PROFILE_GUARD_CONSENT_CACHE_H */
