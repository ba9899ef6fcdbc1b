/*-------------------------------------------------------------------------
 *
 * answers.h
 *	  The answers' types: one subject's answer, the private table of them,
 *	  and one purpose's answers (PurposeState).  Only consent_cache.c,
 *	  answers_load.c and answers_publish.c look inside; every other file
 *	  goes through consent_cache.h's functions.  Calls go one way:
 *
 *	  consent_cache.c    the cache of each purpose's answers, kept up to date
 *	                     with the policy, and the gates' look-ups
 *	  answers_load.c     reading answers through the rules evaluator into
 *	                     private entries: in bulk, one subject at a time,
 *	                     and the subjects the log says changed (catch-up)
 *	  answers_publish.c  answers published in shared memory: publishing,
 *	                     attaching, patching one subject in place
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_ANSWERS_H
#define PROFILE_GUARD_ANSWERS_H

#include "common/hashfn.h"
#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"
#include "utils/timestamp.h"

#include "policy_generation.h"
#include "shared_answers.h"

/* one purpose's answers */
typedef struct PurposeState PurposeState;

/* the name of no declared purpose: collection is judged under it */
#define PFG_COLLECT_PURPOSE "*"

/* one subject's answer under one purpose */
typedef struct SubjectKey
{
	const char *data;
	uint32		len;
} SubjectKey;

typedef struct SubjectAnswer
{
	bool		row_visible;
	TimestampTz valid_until;	/* DT_NOEND when nothing can change by itself */
	Bitmapset  *tags;			/* visible tag ids; interned, NULL for none */
} SubjectAnswer;

/* no consent (each file has its own copy: compare addresses within one) */
static const SubjectAnswer NoAnswer = {false, DT_NOEND, NULL};

typedef struct SubjectEntry
{
	SubjectKey	key;
	uint32		hash;
	char		status;
	bool		overrides;		/* read since the bulk answers: use this */
	SubjectAnswer a;
} SubjectEntry;

#define SH_PREFIX		subjecthash
#define SH_ELEMENT_TYPE SubjectEntry
#define SH_KEY_TYPE		SubjectKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	hash_bytes((const unsigned char *) (k).data, (k).len)
#define SH_EQUAL(tb, a, b)	((a).len == (b).len && memcmp((a).data, (b).data, (a).len) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * One purpose's answers: what the gates hold for the declared purpose
 * (purpose.c hands it out) or for the collection pseudo-purpose.
 */
struct PurposeState
{
	char		name[NAMEDATALEN * 2];
	MemoryContext cxt;
	/* built under this policy generation and catalog (and the age settings) */
	uint64		generation;
	Oid			consent_relid;
	/* subjects */
	MemoryContext subjects_cxt; /* everything below, private to us */
	bool		loaded;			/* every subject loaded in bulk, or shared */
	int			lazy_loads;		/* subjects read one at a time by ... */
	TimestampTz lazy_statement; /* ... the statement that started then */
	int			lazy_total;		/* ... and by every statement so far */
	double		lazy_limit;		/* when lazy_total calls for a bulk load */
	subjecthash_hash *subjects;
	int			overrides;		/* entries with 'overrides' set */
	ChangeHorizon horizon;		/* the log applied to our own answers */
	/*
	 * When every subject is a canonical integer and they are dense, a copy
	 * of the answers indexed by (subject - dense_min): integer subject
	 * columns then need no hashing, and a scan in key order reads it in
	 * order.
	 */
	SubjectAnswer *dense;
	int64		dense_min;
	uint64		dense_n;
	List	   *interned;		/* distinct tag sets, shared by entries */
	char	   *arena;			/* subject keys */
	Size		arena_used;
	Size		arena_size;
	uint64		nsubjects;
	/*
	 * Answers published by a bulk load (ours or another backend's), read in
	 * shared memory; then 'subjects' only holds entries read since, which
	 * override them, and entries re-read after their valid_until.
	 */
	int			shared_slot;	/* -1: none */
	const AnswersBlob *shared_blob;
	const pg_atomic_uint64 *shared; /* dense: by subject - shared_min */
	int64		shared_min;
	uint64		shared_n;
	const HashedAnswer *shared_slots;	/* hashed: by the subject's text */
	const char *shared_keys;
	uint64		shared_mask;
	Bitmapset **shared_sets;	/* decoded tag sets, sets_capacity of them */
	int			shared_sets_decoded;
	TimestampTz shared_checked; /* statement that last looked for them */
	bool		others_loading; /* another backend is loading them */
	SubjectAnswer scratch;		/* the last shared answer handed out */
	SubjectAnswer own;			/* the last answer read for this transaction */
	MemoryContext own_cxt;		/* its tags */
	/*
	 * The last look-up of an integer subject: the gates of one row (row
	 * gate, cell gates, row mask) ask for the same subject in turn.
	 * Forgotten on any insertion (entries may move), catch-up and flush.
	 */
	Oid			memo_type;		/* InvalidOid: none */
	int64		memo_value;
	const SubjectAnswer *memo_answer;
};

/* the collection pseudo-purpose: the union of the purposes in force */
#define IS_COLLECT(ps) (strcmp((ps)->name, PFG_COLLECT_PURPOSE) == 0)

/* the last look-up's answer may move or change */
static inline void
forget_last_lookup(PurposeState *ps)
{
	ps->memo_type = InvalidOid;
}

#endif							/* PROFILE_GUARD_ANSWERS_H */
