/*-------------------------------------------------------------------------
 *
 * shared_answers.h
 *	  The consent cache's shared layer (shared_answers.c): every subject's
 *	  answer under a purpose, published once in dynamic shared memory and
 *	  patched in place, subject by subject, as consents change.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_SHARED_ANSWERS_H
#define PROFILE_GUARD_SHARED_ANSWERS_H

#include "nodes/bitmapset.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

/*
 * One subject's answer in one 64-bit word, so that a patch replaces it in
 * one store while other backends read it: the index of its visible tag
 * set plus one (0: none) in the high 24 bits, and its valid_until in whole
 * seconds since 2000-01-01, rounded down (so that it expires early rather
 * than late; all ones: never), in the low 40.
 */
#define ANSWER_VALID_BITS	40
#define ANSWER_VALID_NEVER	((UINT64CONST(1) << ANSWER_VALID_BITS) - 1)
#define ANSWER_MAX_SETS		((1 << 24) - 2)

static inline uint64
answer_pack(int32 set, TimestampTz valid_until)
{
	uint64		seconds;

	if (valid_until == DT_NOEND)
		seconds = ANSWER_VALID_NEVER;
	else if (valid_until <= 0)
		seconds = 0;
	else
		seconds = Min((uint64) (valid_until / USECS_PER_SEC), ANSWER_VALID_NEVER - 1);
	return ((uint64) (set + 1) << ANSWER_VALID_BITS) | seconds;
}

static inline int32
answer_set(uint64 packed)
{
	return (int32) (packed >> ANSWER_VALID_BITS) - 1;
}

static inline TimestampTz
answer_valid_until(uint64 packed)
{
	uint64		seconds = packed & ANSWER_VALID_NEVER;

	return seconds == ANSWER_VALID_NEVER ? DT_NOEND :
		(TimestampTz) seconds * USECS_PER_SEC;
}

/* a subject found by its text: an open-addressing slot */
typedef struct HashedAnswer
{
	pg_atomic_uint64 key_off;	/* into the keys; HASHED_EMPTY: a free slot;
								 * written last when a slot is filled */
	pg_atomic_uint64 answer;
	uint32		key_len;
	uint32		hash;			/* hash_bytes() of the subject's text */
} HashedAnswer;

#define HASHED_EMPTY PG_UINT64_MAX

typedef enum AnswersKind
{
	ANSWERS_DENSE,				/* integer subjects, by (subject - dense_min) */
	ANSWERS_HASHED				/* any subjects, by their text */
} AnswersKind;

/*
 * A published set of answers.  Followed by the horizon of the log of
 * changed subjects it has applied (horizon_capacity full transaction ids),
 * the tag sets (sets_capacity sets of set_words bitmapwords), then either
 * n answers (dense) or n HashedAnswer slots (n a power of two) and
 * key_capacity bytes of subjects' text.  Patches, made under the patch lock
 * (pfg_shared_answers_lock_patch), replace answers, add tag sets (written
 * before nsets grows) and add hashed subjects (each written before its
 * key_off); readers need no lock.
 */
typedef struct AnswersBlob
{
	int32		kind;			/* AnswersKind */
	int32		set_words;
	int32		sets_capacity;
	pg_atomic_uint32 nsets;
	int64		dense_min;
	uint64		n;
	uint64		hashed_used;	/* under the patch lock */
	uint64		key_capacity;
	uint64		key_used;		/* under the patch lock */
	slock_t		horizon_lock;	/* the horizon, written under the patch
								 * lock too */
	uint64		horizon_xmax;
	int32		horizon_nxip;
	int32		horizon_capacity;
} AnswersBlob;

#define ANSWERS_BLOB_HORIZON(b) \
	((uint64 *) ((char *) (b) + MAXALIGN(sizeof(AnswersBlob))))
#define ANSWERS_BLOB_SETS(b) \
	((bitmapword *) ((char *) ANSWERS_BLOB_HORIZON(b) + \
					 MAXALIGN(sizeof(uint64) * (Size) (b)->horizon_capacity)))
#define ANSWERS_BLOB_BODY(b) \
	((char *) ANSWERS_BLOB_SETS(b) + \
	 MAXALIGN(sizeof(bitmapword) * (Size) (b)->sets_capacity * (b)->set_words))
#define ANSWERS_BLOB_ANSWERS(b) ((pg_atomic_uint64 *) ANSWERS_BLOB_BODY(b))
#define ANSWERS_BLOB_SLOTS(b) ((HashedAnswer *) ANSWERS_BLOB_BODY(b))
#define ANSWERS_BLOB_KEYS(b) \
	((char *) ANSWERS_BLOB_SLOTS(b) + sizeof(HashedAnswer) * (b)->n)

static inline Size
answers_blob_size(int horizon_capacity, int sets_capacity, int set_words,
				  AnswersKind kind, uint64 n, Size key_capacity)
{
	return MAXALIGN(sizeof(AnswersBlob)) +
		MAXALIGN(sizeof(uint64) * (Size) horizon_capacity) +
		MAXALIGN(sizeof(bitmapword) * (Size) sets_capacity * set_words) +
		(kind == ANSWERS_DENSE ? sizeof(pg_atomic_uint64) * n :
		 sizeof(HashedAnswer) * n + key_capacity);
}

/*
 * whose answers: a purpose, under an age of majority, a treatment of
 * unknown ages, the time zone ages are computed in and the home country,
 * in one catalog (a re-created extension has a new
 * consent table) at one policy generation
 */
typedef struct AnswersKey
{
	const char *purpose;
	int			minor_age;
	int			unknown_age;
	const char *age_time_zone;
	const char *home_country;	/* makes a recipient abroad or not */
	Oid			consent_relid;
	uint64		generation;
} AnswersKey;

extern void pfg_shared_answers_define_settings(void);
extern void pfg_shared_answers_init(void);
extern Size pfg_shared_answers_shmem_size(void);
extern void pfg_shared_answers_shmem_startup(LWLock *lock);
extern void pfg_shared_answers_note_change(void);
extern uint64 pfg_policy_epoch(void);
extern bool pfg_policy_changed_in_xact(void);
extern bool pfg_shared_answers_usable(void);

extern const AnswersBlob *pfg_shared_answers_attach(const AnswersKey *key,
												   int *slot,
												   bool *loading_elsewhere);
extern bool pfg_shared_answers_retired(int slot);
extern void pfg_shared_answers_retire(int slot);
extern void pfg_shared_answers_release(int slot);
extern int	pfg_shared_answers_begin_load(const AnswersKey *key);
extern AnswersBlob *pfg_shared_answers_alloc(int slot, Size size);
extern void pfg_shared_answers_finish_load(int slot, bool publish);
extern void pfg_shared_answers_lock_patch(int slot);
extern void pfg_shared_answers_unlock_patch(int slot);
extern int	pfg_shared_answers_horizon_capacity(void);

#endif							/* PROFILE_GUARD_SHARED_ANSWERS_H */
