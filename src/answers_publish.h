/*-------------------------------------------------------------------------
 *
 * answers_publish.h
 *	  Answers published in shared memory (answers_publish.c): publishing,
 *	  attaching, patching one subject in place.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_ANSWERS_PUBLISH_H
#define PROFILE_GUARD_ANSWERS_PUBLISH_H

#include "answers.h"

extern bool pfg_subject_canonical_int64(const char *data, uint32 len, int64 *result);
extern const AnswersKey *pfg_answers_key(PurposeState *ps, AnswersKey *key);
extern bool pfg_answers_publish(PurposeState *ps, int slot);
extern bool pfg_answers_map_published(PurposeState *ps);
extern void pfg_answers_detach(PurposeState *ps);
extern void pfg_answers_decode_sets(PurposeState *ps);
extern void pfg_answers_store_horizon(AnswersBlob *blob, const ChangeHorizon *h);
extern void pfg_answers_load_horizon(const AnswersBlob *blob, ChangeHorizon *h);
extern bool pfg_answers_patch(PurposeState *ps, const char *subject,
							  const SubjectAnswer *a);

#endif							/* PROFILE_GUARD_ANSWERS_PUBLISH_H */
