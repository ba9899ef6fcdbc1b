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

/* a subject found by its text: an open-addressing slot */
typedef struct HashedAnswer
{
	uint64		key_off;		/* into the keys; HASHED_EMPTY: a free slot */
	uint32		key_len;
	uint32		hash;			/* hash_bytes() of the subject's text */
	SharedAnswer answer;
} HashedAnswer;

#define HASHED_EMPTY PG_UINT64_MAX

typedef enum AnswersKind
{
	ANSWERS_DENSE,				/* integer subjects, by (subject - dense_min) */
	ANSWERS_HASHED				/* any subjects, by their text */
} AnswersKind;

/*
 * A published set of answers, immutable once published.  Followed by the
 * tag sets (set_words bitmapwords each), then either n SharedAnswers
 * (dense) or n HashedAnswer slots (n a power of two) and the subjects' text.
 */
typedef struct AnswersBlob
{
	int32		kind;			/* AnswersKind */
	int32		nsets;
	int32		set_words;
	int64		dense_min;
	uint64		n;
} AnswersBlob;

#define ANSWERS_BLOB_SETS(b) \
	((bitmapword *) ((char *) (b) + MAXALIGN(sizeof(AnswersBlob))))
#define ANSWERS_BLOB_BODY(b) \
	((char *) ANSWERS_BLOB_SETS(b) + \
	 MAXALIGN(sizeof(bitmapword) * (Size) (b)->nsets * (b)->set_words))
#define ANSWERS_BLOB_ANSWERS(b) ((SharedAnswer *) ANSWERS_BLOB_BODY(b))
#define ANSWERS_BLOB_SLOTS(b) ((HashedAnswer *) ANSWERS_BLOB_BODY(b))
#define ANSWERS_BLOB_KEYS(b) \
	((char *) ANSWERS_BLOB_SLOTS(b) + sizeof(HashedAnswer) * (b)->n)

static inline Size
answers_blob_size(int nsets, int set_words, AnswersKind kind, uint64 n,
				  Size key_bytes)
{
	return MAXALIGN(sizeof(AnswersBlob)) +
		MAXALIGN(sizeof(bitmapword) * (Size) nsets * set_words) +
		(kind == ANSWERS_DENSE ? sizeof(SharedAnswer) * n :
		 sizeof(HashedAnswer) * n + key_bytes);
}

/* whose answers: a purpose, under an age of majority and the time zone
 * ages are computed in, in a catalog */
typedef struct AnswersKey
{
	const char *purpose;
	int			minor_age;
	const char *age_time_zone;
	Oid			consent_relid;
} AnswersKey;

extern void pg_shared_answers_define_settings(void);
extern void pg_shared_answers_init(void);
extern void pg_shared_answers_note_change(void);
extern uint64 pg_policy_epoch(void);
extern bool pg_policy_changed_in_xact(void);
extern bool pg_shared_answers_usable(void);

extern const AnswersBlob *pg_shared_answers_attach(const AnswersKey *key,
												   int *slot,
												   bool *loading_elsewhere);
extern void pg_shared_answers_release(int slot);
extern int	pg_shared_answers_begin_load(const AnswersKey *key);
extern AnswersBlob *pg_shared_answers_alloc(int slot, Size size);
extern void pg_shared_answers_finish_load(int slot, bool publish);

#endif							/* PROFILE_GUARD_SHARED_ANSWERS_H */
