/*-------------------------------------------------------------------------
 *
 * answers_load.h
 *	  Reading answers through the rules evaluator (answers_load.c): in bulk,
 *	  one subject at a time, and the subjects the log says changed.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_ANSWERS_LOAD_H
#define PROFILE_GUARD_ANSWERS_LOAD_H

#include "answers.h"

extern subjecthash_hash *pfg_answers_subjects(PurposeState *ps);
extern SubjectEntry *pfg_answers_entry(PurposeState *ps, SubjectKey key, bool *found);
extern void pfg_answers_load_all(PurposeState *ps);
extern bool pfg_answers_attach(PurposeState *ps);
extern void pfg_answers_evaluate(PurposeState *ps, const char *subject,
								 SubjectAnswer *out, bool own_view,
								 MemoryContext cxt);
extern void pfg_answers_refresh(PurposeState *ps, SubjectEntry *e);
extern void pfg_answers_catch_up(PurposeState *ps);

#endif							/* PROFILE_GUARD_ANSWERS_LOAD_H */
