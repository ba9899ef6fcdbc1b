/*-------------------------------------------------------------------------
 *
 * answers_publish.c
 *	  A purpose's answers in shared memory (a slot of shared_answers.c), so
 *	  that one bulk load serves every backend: publishing our private
 *	  entries there, as an array indexed by subject when the subjects are
 *	  dense integers, else as an open-addressing table of their text;
 *	  reading another backend's in place (attaching, decoding the tag sets
 *	  added since); the horizon of the log of changed subjects they have
 *	  applied; and patching one subject's answer in place.
 *
 *	  Reads neither the catalog nor the rules: answers_load.c does, and
 *	  calls these.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "answers_publish.h"

/*
 * The integer a subject text spells in canonical form ("42", "-7"): its
 * place in a dense array of answers, private or published.
 */
bool
pfg_subject_canonical_int64(const char *data, uint32 len, int64 *result)
{
	char		buf[MAXINT8LEN + 1];
	int64		v = 0;
	bool		neg = false;
	uint32		i = 0;

	if (len == 0 || len > MAXINT8LEN)
		return false;
	if (data[0] == '-')
	{
		neg = true;
		i = 1;
	}
	if (i == len || (data[i] == '0' && len > i + 1) || (neg && len == 2 && data[1] == '0'))
		return false;
	for (; i < len; i++)
	{
		if (data[i] < '0' || data[i] > '9')
			return false;
		if (pg_mul_s64_overflow(v, 10, &v) ||
			pg_sub_s64_overflow(v, data[i] - '0', &v))
			return false;		/* accumulate negatively: INT64_MIN fits */
	}
	if (!neg && pg_sub_s64_overflow(0, v, &v))
		return false;
	/* round trip, so that "42" and only "42" maps to 42 */
	if (pg_lltoa(v, buf) != (int) len || memcmp(buf, data, len) != 0)
		return false;
	*result = v;
	return true;
}

/* whose answers they are, as shared_answers.c finds them */
const AnswersKey *
pfg_answers_key(PurposeState *ps, AnswersKey *key)
{
	key->purpose = ps->name;
	key->minor_age = pfg_minor_age;
	key->unknown_age = pfg_unknown_age;
	key->age_time_zone = pfg_age_time_zone;
	key->home_country = pfg_home_country;
	key->consent_relid = ps->consent_relid;
	key->generation = ps->generation;
	return key;
}

/* ---- publishing ---- */

/* a tag set as set_words bitmapwords; false if it does not fit */
static bool
set_words_of(const Bitmapset *set, bitmapword *words, int set_words)
{
	memset(words, 0, sizeof(bitmapword) * set_words);
	if (set == NULL)
		return true;
	if (set->nwords > set_words)
	{
		for (int w = set_words; w < set->nwords; w++)
			if (set->words[w] != 0)
				return false;
	}
	memcpy(words, set->words, sizeof(bitmapword) * Min(set->nwords, set_words));
	return true;
}

/* the index of an interned tag set among 'sets' (-1 for none) */
static inline int32
set_index(Bitmapset **sets, Bitmapset *tags, Bitmapset **last_tags, int32 *last_set)
{
	if (tags == NULL)
		return -1;
	if (tags != *last_tags)
	{
		for (*last_set = 0; sets[*last_set] != tags; (*last_set)++)
			;
		*last_tags = tags;
	}
	return *last_set;
}

/* write a horizon into a blob (patch lock held, or not yet published) */
void
pfg_answers_store_horizon(AnswersBlob *blob, const ChangeHorizon *h)
{
	uint64	   *xip = ANSWERS_BLOB_HORIZON(blob);

	SpinLockAcquire(&blob->horizon_lock);
	if (h->nxip <= blob->horizon_capacity)
	{
		blob->horizon_xmax = U64FromFullTransactionId(h->xmax);
		for (int i = 0; i < h->nxip; i++)
			xip[i] = U64FromFullTransactionId(h->xip[i]);
		blob->horizon_nxip = h->nxip;
	}
	else
	{
		/* read again from the oldest running transaction on */
		uint64		oldest = U64FromFullTransactionId(h->xmax);

		for (int i = 0; i < h->nxip; i++)
			oldest = Min(oldest, U64FromFullTransactionId(h->xip[i]));
		blob->horizon_xmax = oldest;
		blob->horizon_nxip = 0;
	}
	SpinLockRelease(&blob->horizon_lock);
}

/* a blob's horizon, in CurrentMemoryContext */
void
pfg_answers_load_horizon(const AnswersBlob *blob, ChangeHorizon *h)
{
	AnswersBlob *b = unconstify(AnswersBlob *, blob);
	const uint64 *xip = ANSWERS_BLOB_HORIZON(blob);

	h->xip = palloc(sizeof(FullTransactionId) * Max(blob->horizon_capacity, 1));
	SpinLockAcquire(&b->horizon_lock);
	h->xmax = FullTransactionIdFromU64(b->horizon_xmax);
	h->nxip = b->horizon_nxip;
	for (int i = 0; i < h->nxip; i++)
		h->xip[i] = FullTransactionIdFromU64(xip[i]);
	SpinLockRelease(&b->horizon_lock);
}

/*
 * Copy the answers into a slot's shared room: the dense array as it is
 * (with room for subjects numbered beyond the last), or every entry into an
 * open-addressing table of subjects' text (at most half full, room for a
 * half more keys); tag sets with room to spare.  False if there is no room.
 */
bool
pfg_answers_publish(PurposeState *ps, int slot)
{
	int			nsets = list_length(ps->interned);
	int			sets_capacity = Min(Max(64, 4 * nsets), ANSWER_MAX_SETS);
	int			set_words = 1;
	Bitmapset **sets;
	AnswersBlob *blob;
	bitmapword *words;
	Bitmapset  *last_tags = NULL;
	int32		last_set = -1;
	AnswersKind kind = ps->dense != NULL ? ANSWERS_DENSE : ANSWERS_HASHED;
	int			horizon_capacity = pfg_shared_answers_horizon_capacity();
	uint64		n;
	Size		key_bytes = 0;
	Size		key_capacity = 0;
	int			i = 0;
	ListCell   *lc;

	if (nsets > sets_capacity)
		return false;
	sets = palloc(sizeof(Bitmapset *) * Max(nsets, 1));
	foreach(lc, ps->interned)
	{
		sets[i++] = (Bitmapset *) lfirst(lc);
		set_words = Max(set_words, sets[i - 1]->nwords);
	}
	/* room for 256 tags at least (a set with more cannot be patched in) */
	set_words = Max(set_words, 4);
	if (kind == ANSWERS_DENSE)
		n = ps->dense_n;
	else
	{
		subjecthash_iterator it;
		SubjectEntry *e;

		n = 1;
		while (n < 2 * (uint64) Max(ps->subjects->members, 1))
			n <<= 1;
		subjecthash_start_iterate(ps->subjects, &it);
		while ((e = subjecthash_iterate(ps->subjects, &it)) != NULL)
			key_bytes += e->key.len;
		key_capacity = key_bytes + key_bytes / 2 + 4096;
	}
	blob = pfg_shared_answers_alloc(slot, answers_blob_size(horizon_capacity, sets_capacity,
														   set_words, kind, n, key_capacity));
	if (blob == NULL)
		return false;
	blob->kind = kind;
	blob->set_words = set_words;
	blob->sets_capacity = sets_capacity;
	pg_atomic_init_u32(&blob->nsets, nsets);
	blob->dense_min = ps->dense_min;
	blob->n = n;
	blob->hashed_used = 0;
	blob->key_capacity = key_capacity;
	blob->key_used = 0;
	blob->horizon_capacity = horizon_capacity;
	SpinLockInit(&blob->horizon_lock);
	pfg_answers_store_horizon(blob, &ps->horizon);
	words = ANSWERS_BLOB_SETS(blob);
	for (i = 0; i < nsets; i++)
		(void) set_words_of(sets[i], words + (Size) i * set_words, set_words);
	if (kind == ANSWERS_DENSE)
	{
		pg_atomic_uint64 *answers = ANSWERS_BLOB_ANSWERS(blob);

		for (uint64 k = 0; k < n; k++)
			pg_atomic_init_u64(&answers[k],
							   answer_pack(set_index(sets, ps->dense[k].tags, &last_tags, &last_set),
										   ps->dense[k].valid_until));
	}
	else
	{
		HashedAnswer *slots = ANSWERS_BLOB_SLOTS(blob);
		char	   *keys = ANSWERS_BLOB_KEYS(blob);
		subjecthash_iterator it;
		SubjectEntry *e;

		for (uint64 k = 0; k < n; k++)
		{
			pg_atomic_init_u64(&slots[k].key_off, HASHED_EMPTY);
			pg_atomic_init_u64(&slots[k].answer, 0);
		}
		subjecthash_start_iterate(ps->subjects, &it);
		while ((e = subjecthash_iterate(ps->subjects, &it)) != NULL)
		{
			uint32		h = hash_bytes((const unsigned char *) e->key.data, e->key.len);
			uint64		k = h & (n - 1);

			while (pg_atomic_read_u64(&slots[k].key_off) != HASHED_EMPTY)
				k = (k + 1) & (n - 1);
			memcpy(keys + blob->key_used, e->key.data, e->key.len);
			slots[k].key_len = e->key.len;
			slots[k].hash = h;
			pg_atomic_write_u64(&slots[k].answer,
								answer_pack(set_index(sets, e->a.tags, &last_tags, &last_set),
											e->a.valid_until));
			pg_atomic_write_u64(&slots[k].key_off, blob->key_used);
			blob->key_used += e->key.len;
			blob->hashed_used++;
		}
	}
	pfree(sets);
	return true;
}

/* ---- reading in place ---- */

/* decode the tag sets published (or patched in) since we last looked */
void
pfg_answers_decode_sets(PurposeState *ps)
{
	const AnswersBlob *blob = ps->shared_blob;
	uint32		nsets = pg_atomic_read_u32(unconstify(pg_atomic_uint32 *, &blob->nsets));
	const bitmapword *words = ANSWERS_BLOB_SETS(blob);
	MemoryContext old;

	pg_read_barrier();
	old = MemoryContextSwitchTo(ps->cxt);
	for (int i = ps->shared_sets_decoded; i < (int) nsets; i++)
	{
		Bitmapset  *set = NULL;

		for (int w = 0; w < blob->set_words; w++)
			for (int bit = 0; bit < BITS_PER_BITMAPWORD; bit++)
				if (words[(Size) i * blob->set_words + w] & ((bitmapword) 1 << bit))
					set = bms_add_member(set, w * BITS_PER_BITMAPWORD + bit);
		ps->shared_sets[i] = set;
	}
	MemoryContextSwitchTo(old);
	ps->shared_sets_decoded = nsets;
}

/*
 * Read in place the answers another backend (or we) published; false if
 * none.  The caller forgets its private entries and brings the answers up
 * to date with the log of changed subjects (pfg_answers_attach).
 */
bool
pfg_answers_map_published(PurposeState *ps)
{
	int			slot;
	AnswersKey	key;
	const AnswersBlob *blob;

	blob = pfg_shared_answers_attach(pfg_answers_key(ps, &key), &slot,
									&ps->others_loading);
	if (blob == NULL)
		return false;
	ps->shared_blob = blob;
	ps->shared_sets = MemoryContextAllocZero(ps->cxt,
											 sizeof(Bitmapset *) * Max(blob->sets_capacity, 1));
	ps->shared_sets_decoded = 0;
	pfg_answers_decode_sets(ps);
	if (blob->kind == ANSWERS_DENSE)
	{
		ps->shared = ANSWERS_BLOB_ANSWERS(blob);
		ps->shared_min = blob->dense_min;
		ps->shared_n = blob->n;
	}
	else
	{
		ps->shared_slots = ANSWERS_BLOB_SLOTS(blob);
		ps->shared_keys = ANSWERS_BLOB_KEYS(blob);
		ps->shared_mask = blob->n - 1;
	}
	ps->shared_slot = slot;
	ps->others_loading = false;
	ps->loaded = true;
	return true;
}

/* let go of the published answers */
void
pfg_answers_detach(PurposeState *ps)
{
	if (ps->shared_slot >= 0)
		pfg_shared_answers_release(ps->shared_slot);
	ps->shared_slot = -1;
	ps->shared_blob = NULL;
	ps->shared = NULL;
	ps->shared_slots = NULL;
	ps->shared_keys = NULL;
	ps->shared_sets = NULL;
	ps->shared_sets_decoded = 0;
}

/* ---- patching one subject ---- */

/*
 * The index of a tag set among the published ones, adding it if new: its
 * words are written before the count that makes it readable.  -1 when it
 * does not fit (then the answers are retired).
 */
static int32
shared_set_index(AnswersBlob *blob, const Bitmapset *tags)
{
	bitmapword *sets = ANSWERS_BLOB_SETS(blob);
	bitmapword *words = palloc(sizeof(bitmapword) * blob->set_words);
	uint32		nsets = pg_atomic_read_u32(&blob->nsets);

	if (!set_words_of(tags, words, blob->set_words))
		return -1;
	for (uint32 i = 0; i < nsets; i++)
		if (memcmp(sets + (Size) i * blob->set_words, words,
				   sizeof(bitmapword) * blob->set_words) == 0)
			return (int32) i;
	if ((int) nsets >= blob->sets_capacity)
		return -1;
	memcpy(sets + (Size) nsets * blob->set_words, words,
		   sizeof(bitmapword) * blob->set_words);
	pg_write_barrier();
	pg_atomic_write_u32(&blob->nsets, nsets + 1);
	return (int32) nsets;
}

/*
 * Patch one subject's answer into the published answers (patch lock held):
 * one atomic store for a subject they hold; a new subject is added to a
 * hashed table (its slot filled before its key_off).  An answer that says
 * nothing, now or later, needs no room.  False when there is no room: the
 * caller retires the answers.
 */
bool
pfg_answers_patch(PurposeState *ps, const char *subject, const SubjectAnswer *a)
{
	AnswersBlob *blob = unconstify(AnswersBlob *, ps->shared_blob);
	uint32		len = strlen(subject);
	bool		says_nothing = !a->row_visible && a->valid_until == DT_NOEND;
	int32		set = -1;
	uint64		packed;

	if (a->tags != NULL && (set = shared_set_index(blob, a->tags)) < 0)
		return false;
	packed = answer_pack(set, a->valid_until);
	if (blob->kind == ANSWERS_DENSE)
	{
		int64		v;
		uint64		off;

		if (!pfg_subject_canonical_int64(subject, len, &v))
			return says_nothing;
		off = (uint64) v - (uint64) blob->dense_min;
		if (off >= blob->n)
			return says_nothing;
		pg_atomic_write_u64(&ANSWERS_BLOB_ANSWERS(blob)[off], packed);
		return true;
	}
	else
	{
		HashedAnswer *slots = ANSWERS_BLOB_SLOTS(blob);
		char	   *keys = ANSWERS_BLOB_KEYS(blob);
		uint32		h = hash_bytes((const unsigned char *) subject, len);
		uint64		mask = blob->n - 1;
		uint64		k = h & mask;

		for (;;)
		{
			uint64		off = pg_atomic_read_u64(&slots[k].key_off);

			if (off == HASHED_EMPTY)
				break;
			if (slots[k].hash == h && slots[k].key_len == len &&
				memcmp(keys + off, subject, len) == 0)
			{
				pg_atomic_write_u64(&slots[k].answer, packed);
				return true;
			}
			k = (k + 1) & mask;
		}
		if (says_nothing)
			return true;
		if (blob->hashed_used + 1 > blob->n / 4 * 3 ||
			blob->key_used + len > blob->key_capacity)
			return false;
		memcpy(keys + blob->key_used, subject, len);
		slots[k].key_len = len;
		slots[k].hash = h;
		pg_atomic_write_u64(&slots[k].answer, packed);
		pg_write_barrier();
		pg_atomic_write_u64(&slots[k].key_off, blob->key_used);
		blob->key_used += len;
		blob->hashed_used++;
		return true;
	}
}
