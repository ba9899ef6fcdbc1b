/*-------------------------------------------------------------------------
 *
 * shared_answers.h
 *	  The consent cache's shared layer (shared_answers.c): every subject's
 *	  answer under a purpose, published once in dynamic shared memory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_SHARED_ANSWERS_H
#define PROFILE_GUARD_SHARED_ANSWERS_H

#include "nodes/bitmapset.h"
#include "utils/timestamp.h"

/* one subject's answer: the index of its visible tag set, -1 for none */
typedef struct SharedAnswer
{
	int32		set;
	TimestampTz valid_until;	/* DT_NOEND when nothing can change by itself */
} SharedAnswer;

/*
 * A published set of answers for integer subjects, indexed by
 * (subject - dense_min).  Immutable once published.  Followed by the tag
 * sets (set_words bitmapwords each) and then the answers.
 */
typedef struct AnswersBlob
{
	int64		dense_min;
	uint64		dense_n;
	int32		nsets;
	int32		set_words;
} AnswersBlob;

#define ANSWERS_BLOB_SETS(b) \
	((bitmapword *) ((char *) (b) + MAXALIGN(sizeof(AnswersBlob))))
#define ANSWERS_BLOB_ANSWERS(b) \
	((SharedAnswer *) ((char *) ANSWERS_BLOB_SETS(b) + \
					   MAXALIGN(sizeof(bitmapword) * (Size) (b)->nsets * (b)->set_words)))

static inline Size
answers_blob_size(int nsets, int set_words, uint64 dense_n)
{
	return MAXALIGN(sizeof(AnswersBlob)) +
		MAXALIGN(sizeof(bitmapword) * (Size) nsets * set_words) +
		sizeof(SharedAnswer) * dense_n;
}

/* whose answers: a purpose, under an age of majority, in a catalog */
typedef struct AnswersKey
{
	const char *purpose;
	int			minor_age;
	Oid			consent_relid;
} AnswersKey;

extern void pg_shared_answers_define_settings(void);
extern void pg_shared_answers_init(void);
extern void pg_shared_answers_note_change(void);
extern bool pg_shared_answers_usable(void);

extern const AnswersBlob *pg_shared_answers_attach(const AnswersKey *key,
												   int *slot,
												   bool *loading_elsewhere);
extern void pg_shared_answers_release(int slot);
extern int	pg_shared_answers_begin_load(const AnswersKey *key);
extern AnswersBlob *pg_shared_answers_alloc(int slot, Size size);
extern void pg_shared_answers_finish_load(int slot, bool publish);

#endif							/* PROFILE_GUARD_SHARED_ANSWERS_H */
