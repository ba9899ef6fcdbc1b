/*-------------------------------------------------------------------------
 *
 * data_key_cache.c
 *	  Owns the backend-local cache of unwrapped data keys and its setting
 *	  profile_guard.key_cache_size.
 *
 *	  Subject -> unwrapped data key.  Subjects that are decimal integers
 *	  are kept in an array indexed by the integer (below); the others in an
 *	  open-addressing hash table
 *	  (simplehash) in a child of TopMemoryContext, keyed by the subject's
 *	  text (copied into an arena of the same context) under a hash seeded
 *	  at random per backend (a chosen set of subjects cannot pile up in
 *	  one bucket); its arrays are wiped before they are freed.  An entry
 *	  takes 64 bytes, one cache line, holding a subject of up to 16 bytes
 *	  (a longer one takes its length more in an arena): about 100 bytes a
 *	  cached key with the table's free slots.  data_key.c fills it and
 *	  flushes it on a relcache invalidation of profile_guard.subject_key
 *	  (destroying or re-wrapping keys sends one); a key created by the
 *	  current (sub)transaction is dropped again if it aborts.
 *	  shared_data_keys.c publishes what a bulk load left in it: the array
 *	  as it is, the table's keys written out one after another.  Another
 *	  backend's cache then reads that array where it lies in shared memory
 *	  (below) and copies the table's keys into its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <sys/mman.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "port/atomics.h"
#include "port/pg_bitutils.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "data_key_cache.h"

/*
 * A subject as the cache knows it: a hash of its text, and the text, in
 * the entry itself when it is short (identifiers mostly are: no second
 * cache miss to compare it), else in the cache's arena (an entry) or the
 * caller's memory (a probe).
 */
#define SUBJECT_INLINE	16

typedef struct SubjectRef
{
	uint32		hash;
	uint32		len;
	union
	{
		char		inline_text[SUBJECT_INLINE];
		const char *text;
	}			u;
} SubjectRef;

/* 64 bytes, and the table's array 64-byte aligned: one cache line a probe */
typedef struct DataKeyEntry
{
	SubjectRef	subject;
	uint8		key[PFG_KEY_LEN];
	SubTransactionId create_subid;	/* created by this (sub)xact, else
									 * InvalidSubTransactionId */
	char		status;			/* simplehash's */
} DataKeyEntry;

StaticAssertDecl(sizeof(DataKeyEntry) == 64, "a cache entry is one cache line");

static inline const char *
ref_text(const SubjectRef *r)
{
	return r->len <= SUBJECT_INLINE ? r->u.inline_text : r->u.text;
}

static inline bool
ref_equal(const SubjectRef *a, const SubjectRef *b)
{
	return a->len == b->len && memcmp(ref_text(a), ref_text(b), a->len) == 0;
}

static inline SubjectRef
make_ref(const char *subject, int len, uint32 hash)
{
	SubjectRef	r;

	r.hash = hash;
	r.len = (uint32) len;
	if (len <= SUBJECT_INLINE)
		memcpy(r.u.inline_text, subject, len);
	else
		r.u.text = subject;
	return r;
}

#define SH_PREFIX		datakeys
#define SH_ELEMENT_TYPE DataKeyEntry
#define SH_KEY_TYPE		SubjectRef
#define SH_KEY			subject
#define SH_HASH_KEY(tb, k)	((k).hash)
#define SH_EQUAL(tb, a, b)	ref_equal(&(a), &(b))
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->subject.hash)
#define SH_SCOPE		static inline
#define SH_USE_NONDEFAULT_ALLOCATOR
#define SH_DECLARE
#define SH_DEFINE

#include "lib/simplehash.h"

/* setting */
static int	key_cache_size = 1048576;	/* data keys cached per backend */

/* backend-local state */
static MemoryContext DataKeyContext = NULL;
static datakeys_hash *DataKeyCache = NULL;
static uint64 data_key_flushes = 0;
static int	n_provisional_keys = 0;
static bool callbacks_registered = false;
static uint64 hash_seed;

/*
 * The dense part: subjects that are canonical decimal integers (no sign,
 * no leading zero) below dense_size, with a committed key, are kept in an
 * array indexed by that integer instead of the hash table: 32 bytes and a
 * bit each, and a scan in the order of its subjects reads the array in
 * order.  It grows to the highest such subject while that stays below
 * twice the number of keys cached (plus DENSE_MIN), so sparse numbers go
 * to the hash table.  Keys written by the current transaction always go
 * to the hash table, whose callbacks drop them on abort, and move to the
 * array when it commits if the array already covers them.
 */
#define DENSE_MIN		4096
#define DENSE_MAX_DIGITS 9		/* below 10^9: fits uint32 */
static uint8 (*dense_keys)[PFG_KEY_LEN] = NULL;
static uint64 *dense_present = NULL;	/* a bit per slot */
static uint32 dense_size = 0;
static uint32 dense_count = 0;

/*
 * A published set's array of keys (shared_data_keys.c), read where it lies:
 * found after the backend's own keys.  shared_data_keys.c keeps it from
 * being freed while this backend reads it.  A retirement clears the set's bits
 * before it wipes its keys, so a key copied out here whose bit is still
 * set after the copy is whole; one whose bit went is a miss.
 */
static const uint8 (*shared_keys)[PFG_KEY_LEN] = NULL;
static const volatile uint64 *shared_present = NULL;
static uint32 shared_size = 0;

/* a key of the table as pfg_data_key_cache_write_others() writes it */
#define OTHER_KEY_BYTES(len)	(sizeof(uint32) + PFG_KEY_LEN + (Size) (len))

/* the arena of the longer subjects' texts: blocks of ARENA_BLOCK bytes */
#define ARENA_BLOCK		65536
static char *arena_next = NULL;
static Size arena_left = 0;


void
pfg_data_key_cache_define_settings(void)
{
	DefineCustomIntVariable("profile_guard.key_cache_size",
							"Most unwrapped data keys a backend keeps in memory.",
							"About 100 bytes each. A scan reading the sensitive tags of more subjects than this fetches and unwraps keys again.",
							&key_cache_size,
							1048576, 1024, INT_MAX / 2,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}

/*
 * Each array is aligned on a cache line, with its size and the chunk that
 * holds it just in front, so that it can be wiped and freed.
 */
#define CACHE_LINE		64

typedef struct ArrayHeader
{
	void	   *chunk;
	Size		size;
} ArrayHeader;

static inline void *
datakeys_allocate(datakeys_hash *tb, Size size)
{
	char	   *chunk = MemoryContextAllocExtended(DataKeyContext,
												   size + CACHE_LINE + sizeof(ArrayHeader),
												   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	char	   *array = (char *) TYPEALIGN(CACHE_LINE, chunk + sizeof(ArrayHeader));
	ArrayHeader *h = (ArrayHeader *) (array - sizeof(ArrayHeader));

	h->chunk = chunk;
	h->size = size;
	return array;
}

static inline void
datakeys_free(datakeys_hash *tb, void *pointer)
{
	ArrayHeader *h = (ArrayHeader *) ((char *) pointer - sizeof(ArrayHeader));
	void	   *chunk = h->chunk;

	explicit_bzero(pointer, h->size);
	pfree(chunk);
}

/*
 * Wipe and drop every cached key.  The caller that fills the cache compares
 * pfg_data_key_cache_flushes() before and after it reads a key, and adds
 * the key only if no flush came in between.
 */
void
pfg_data_key_cache_flush(void)
{
	if (DataKeyCache != NULL)
	{
		/* every slot: deletions leave copies in slots marked empty */
		explicit_bzero(DataKeyCache->data,
					   sizeof(DataKeyEntry) * (Size) DataKeyCache->size);
		DataKeyCache = NULL;
	}
	if (dense_keys != NULL)
		explicit_bzero(dense_keys, (Size) dense_size * PFG_KEY_LEN);
	pfg_data_key_cache_detach_shared();
	dense_keys = NULL;
	dense_present = NULL;
	dense_size = 0;
	dense_count = 0;
	if (DataKeyContext != NULL)
		MemoryContextReset(DataKeyContext);
	arena_next = NULL;
	arena_left = 0;
	n_provisional_keys = 0;
	data_key_flushes++;
}

uint64
pfg_data_key_cache_flushes(void)
{
	return data_key_flushes;
}

static void
remove_entry(DataKeyEntry *entry)
{
	if (entry->create_subid != InvalidSubTransactionId)
		n_provisional_keys--;
	explicit_bzero(entry->key, PFG_KEY_LEN);
	datakeys_delete_item(DataKeyCache, entry);
}

/* the subject as an index of the dense part, when it is one */
static inline bool
dense_index(const char *subject, int len, uint32 *n)
{
	uint32		v = 0;

	if (len < 1 || len > DENSE_MAX_DIGITS || (subject[0] == '0' && len > 1))
		return false;
	for (int i = 0; i < len; i++)
	{
		uint32		d = (uint32) (subject[i] - '0');

		if (d > 9)
			return false;
		v = v * 10 + d;
	}
	*n = v;
	return true;
}

/* is bit n of a present-bit array (a bit per slot) set? */
static inline bool
bit_is_set(const volatile uint64 *bits, uint32 n)
{
	return (bits[n / 64] & (UINT64CONST(1) << (n % 64))) != 0;
}

static inline bool
dense_has(uint32 n)
{
	return n < dense_size && bit_is_set(dense_present, n);
}

static inline uint32
cached_keys(void)
{
	return dense_count + (DataKeyCache != NULL ? DataKeyCache->members : 0);
}

/* the key of subject n in the dense part, which covers it */
static inline void
dense_store(uint32 n, const uint8 *key)
{
	memcpy(dense_keys[n], key, PFG_KEY_LEN);
	if (!dense_has(n))
	{
		dense_present[n / 64] |= UINT64CONST(1) << (n % 64);
		dense_count++;
	}
}

/*
 * The transaction committed: its keys are provisional no longer.  A key
 * the dense part already covers moves there (nothing is allocated at
 * commit); the others stay in the table.  A table that this leaves empty
 * is wiped and freed (it may have grown to hold every key
 * create_data_keys() made); the next key makes a new one.
 */
static void
keep_committed_keys(void)
{
	datakeys_iterator it;
	DataKeyEntry *entry;
	int			moved = 0;

	datakeys_start_iterate(DataKeyCache, &it);
	while ((entry = datakeys_iterate(DataKeyCache, &it)) != NULL)
	{
		uint32		n;

		if (entry->create_subid == InvalidSubTransactionId)
			continue;
		entry->create_subid = InvalidSubTransactionId;
		if (dense_index(ref_text(&entry->subject), entry->subject.len, &n) &&
			n < dense_size)
		{
			dense_store(n, entry->key);
			remove_entry(entry);
			moved++;
		}
	}
	n_provisional_keys = 0;
	if (moved > 0 && DataKeyCache->members == 0)
	{
		datakeys_destroy(DataKeyCache);
		DataKeyCache = NULL;
	}
}

/*
 * A key inserted by a transaction that aborts must not outlive it: values
 * encrypted with it are gone, and the next transaction would make another.
 * After PREPARE TRANSACTION the outcome is unknown, so drop them too.
 */
static void
data_key_xact_callback(XactEvent event, void *arg)
{
	datakeys_iterator it;
	DataKeyEntry *entry;

	if (DataKeyCache == NULL || n_provisional_keys == 0)
		return;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			keep_committed_keys();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			datakeys_start_iterate(DataKeyCache, &it);
			while ((entry = datakeys_iterate(DataKeyCache, &it)) != NULL)
			{
				if (entry->create_subid != InvalidSubTransactionId)
					remove_entry(entry);
			}
			break;
		default:
			break;
	}
}

static void
data_key_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	datakeys_iterator it;
	DataKeyEntry *entry;

	if (DataKeyCache == NULL || n_provisional_keys == 0)
		return;

	if (event == SUBXACT_EVENT_COMMIT_SUB || event == SUBXACT_EVENT_ABORT_SUB)
	{
		datakeys_start_iterate(DataKeyCache, &it);
		while ((entry = datakeys_iterate(DataKeyCache, &it)) != NULL)
		{
			if (entry->create_subid != mySubid)
				continue;
			if (event == SUBXACT_EVENT_COMMIT_SUB)
				entry->create_subid = parentSubid;
			else
				remove_entry(entry);
		}
	}
}

static void
data_key_cache_init(void)
{
	if (!callbacks_registered)
	{
		DataKeyContext = AllocSetContextCreate(TopMemoryContext,
											   "profile_guard data keys",
											   ALLOCSET_SMALL_SIZES);
		RegisterXactCallback(data_key_xact_callback, NULL);
		RegisterSubXactCallback(data_key_subxact_callback, NULL);
		pfg_random_bytes((uint8 *) &hash_seed, sizeof(hash_seed));
		callbacks_registered = true;
	}
	if (DataKeyCache != NULL)
		return;

	DataKeyCache = datakeys_create(DataKeyContext, 256, NULL);
}

/*
 * A large array is touched whole at once (zeroed, then filled by a bulk
 * load or a copy of the shared keys): where the kernel offers transparent
 * huge pages on request, ask for them, which makes the first touch of
 * 32 MB (1,000,000 keys) about a fifth as costly as with 4 kB pages.
 */
static void
advise_huge_pages(void *array, Size size)
{
#if defined(MADV_HUGEPAGE)
	const uintptr_t huge = 2 * 1024 * 1024;
	uintptr_t	start = TYPEALIGN(huge, (uintptr_t) array);
	uintptr_t	end = ((uintptr_t) array + size) & ~(huge - 1);

	if (end > start)
		(void) madvise((void *) start, end - start, MADV_HUGEPAGE);
#endif
}

/*
 * Make the dense part hold index n, if that keeps it within bounds; the
 * old arrays are wiped before they are freed.
 */
static bool
dense_cover(uint32 n, uint32 expected)
{
	uint32		limit = 2 * Max(cached_keys(), expected) + DENSE_MIN;
	uint32		size;
	uint8		(*keys)[PFG_KEY_LEN];
	uint64	   *present;

	if (n < dense_size)
		return true;
	if (n >= limit)
		return false;
	size = Min(Max(Max(n + 1, dense_size * 2), DENSE_MIN), limit);
	size = TYPEALIGN(64, size);
	keys = MemoryContextAllocExtended(DataKeyContext, (Size) size * PFG_KEY_LEN,
									  MCXT_ALLOC_HUGE);
	advise_huge_pages(keys, (Size) size * PFG_KEY_LEN);
	/* zeroed: a slot without a key holds nothing (it may be shared) */
	memset(keys, 0, (Size) size * PFG_KEY_LEN);
	present = MemoryContextAllocZero(DataKeyContext, size / 8);
	if (dense_keys != NULL)
	{
		memcpy(keys, dense_keys, (Size) dense_size * PFG_KEY_LEN);
		memcpy(present, dense_present, dense_size / 8);
		explicit_bzero(dense_keys, (Size) dense_size * PFG_KEY_LEN);
		pfree(dense_keys);
		pfree(dense_present);
	}
	dense_keys = keys;
	dense_present = present;
	dense_size = size;
	return true;
}

/*
 * Read a published set's array of keys[size][PFG_KEY_LEN], with a bit each
 * in present, in place (see shared_keys above) until detached.
 */
void
pfg_data_key_cache_attach_shared(const uint8 *keys, const volatile uint64 *present,
								 uint32 size)
{
	shared_keys = (const uint8 (*)[PFG_KEY_LEN]) keys;
	shared_present = present;
	shared_size = size;
}

void
pfg_data_key_cache_detach_shared(void)
{
	shared_keys = NULL;
	shared_present = NULL;
	shared_size = 0;
}

/* subject n's key from the attached set, when it holds it whole */
static inline bool
shared_lookup(uint32 n, uint8 *key)
{
	if (n >= shared_size || !bit_is_set(shared_present, n))
		return false;
	memcpy(key, shared_keys[n], PFG_KEY_LEN);
	pg_read_barrier();
	if (bit_is_set(shared_present, n))
		return true;
	explicit_bzero(key, PFG_KEY_LEN);
	return false;
}

/*
 * What shared_data_keys.c publishes: the dense part as it is (NULL, 0 when
 * there is none), and the other keys written out by
 * pfg_data_key_cache_write_others() into the number of bytes *others_bytes
 * says.  Keys written by the current transaction are never in the dense
 * part; the caller makes sure there are none in the table either.
 */
void
pfg_data_key_cache_contents(const uint8 **keys, const uint64 **present,
							uint32 *size, uint32 *count, Size *others_bytes,
							uint32 *others_count)
{
	datakeys_iterator it;
	DataKeyEntry *entry;
	Size		bytes = 0;

	*keys = (const uint8 *) dense_keys;
	*present = dense_present;
	*size = dense_keys != NULL ? dense_size : 0;
	*count = dense_keys != NULL ? dense_count : 0;
	*others_count = 0;
	if (DataKeyCache != NULL && DataKeyCache->members > 0)
	{
		datakeys_start_iterate(DataKeyCache, &it);
		while ((entry = datakeys_iterate(DataKeyCache, &it)) != NULL)
			bytes += OTHER_KEY_BYTES(entry->subject.len);
		*others_count = DataKeyCache->members;
	}
	*others_bytes = bytes;
}

/*
 * The keys of the table, each as its subject's length (uint32), its key,
 * its subject's text: into dst, of the size pfg_data_key_cache_contents()
 * gave.
 */
void
pfg_data_key_cache_write_others(char *dst)
{
	datakeys_iterator it;
	DataKeyEntry *entry;

	if (DataKeyCache == NULL)
		return;
	datakeys_start_iterate(DataKeyCache, &it);
	while ((entry = datakeys_iterate(DataKeyCache, &it)) != NULL)
	{
		uint32		len = entry->subject.len;

		memcpy(dst, &len, sizeof(len));
		memcpy(dst + sizeof(len), entry->key, PFG_KEY_LEN);
		memcpy(dst + sizeof(len) + PFG_KEY_LEN, ref_text(&entry->subject), len);
		dst += OTHER_KEY_BYTES(len);
	}
}

/* add count keys that pfg_data_key_cache_write_others() wrote to src */
void
pfg_data_key_cache_read_others(const char *src, Size bytes, uint32 count)
{
	const char *end = src + bytes;

	pfg_data_key_cache_reserve((int) Min(count, (uint32) INT_MAX), false);
	while (src + sizeof(uint32) + PFG_KEY_LEN <= end)
	{
		uint32		len;

		memcpy(&len, src, sizeof(len));
		if (len == 0 || src + OTHER_KEY_BYTES(len) > end)
			break;
		pfg_data_key_cache_insert(src + sizeof(len) + PFG_KEY_LEN, (int) len,
								  (const uint8 *) src + sizeof(len), false);
		src += OTHER_KEY_BYTES(len);
	}
}

bool
pfg_data_key_cache_dense_subject(const char *subject, int len, uint32 *index)
{
	return dense_index(subject, len, index);
}

static uint32
subject_hash(const char *subject, int len)
{
	if (!callbacks_registered)
		data_key_cache_init();
	return (uint32) hash_bytes_extended((const unsigned char *) subject, len, hash_seed);
}

bool
pfg_data_key_cache_lookup(const char *subject, int len, uint8 *key)
{
	DataKeyEntry *entry;
	SubjectRef	ref;
	uint32		n;

	if (dense_index(subject, len, &n))
	{
		if (dense_has(n))
		{
			memcpy(key, dense_keys[n], PFG_KEY_LEN);
			return true;
		}
		if (shared_lookup(n, key))
			return true;
	}
	data_key_cache_init();
	if (DataKeyCache->members == 0)
		return false;
	ref = make_ref(subject, len, subject_hash(subject, len));
	entry = datakeys_lookup(DataKeyCache, ref);
	if (entry == NULL)
		return false;
	memcpy(key, entry->key, PFG_KEY_LEN);
	return true;
}

/* a copy of subject in the arena, which lives until the next flush */
static const char *
arena_copy(const char *subject, int len)
{
	char	   *copy;

	if (arena_left < (Size) len)
	{
		Size		size = Max(ARENA_BLOCK, (Size) len);

		arena_next = MemoryContextAlloc(DataKeyContext, size);
		arena_left = size;
	}
	copy = arena_next;
	memcpy(copy, subject, len);
	arena_next += len;
	arena_left -= len;
	return copy;
}

int
pfg_data_key_cache_room(void)
{
	return key_cache_size - (int) cached_keys();
}

/*
 * Make room for n more keys at once, instead of growing step by step: in
 * the dense part when the subjects are dense integers (their count is a
 * guess: the dense part is made to hold that many), else in the table.
 */
void
pfg_data_key_cache_reserve(int n, bool dense)
{
	uint64		want;

	data_key_cache_init();
	if (dense)
	{
		(void) dense_cover((uint32) n, (uint32) n);
		return;
	}
	want = pg_nextpower2_64(((uint64) DataKeyCache->members + n) * 10 / 9 + 1);
	if (want > DataKeyCache->size)
		datakeys_grow(DataKeyCache, want);
}

/*
 * Before a transaction caches many keys of its own (create_data_keys()):
 * make the dense part hold subjects up to highest, if that keeps it within
 * bounds with count more keys, so that they move there when it commits.
 */
void
pfg_data_key_cache_reserve_dense_upto(uint32 highest, uint32 count)
{
	data_key_cache_init();
	(void) dense_cover(highest, cached_keys() + count);
}

void
pfg_data_key_cache_insert(const char *subject, int len, const uint8 *key,
						  bool provisional)
{
	DataKeyEntry *entry;
	bool		found;
	SubjectRef	ref;
	uint32		n;

	/* bound the cache: start afresh rather than grow without limit */
	if (cached_keys() >= (uint32) key_cache_size)
		pfg_data_key_cache_flush();
	data_key_cache_init();
	if (!provisional && dense_index(subject, len, &n) && dense_cover(n, 0))
	{
		dense_store(n, key);
		return;
	}
	ref = make_ref(subject, len, subject_hash(subject, len));
	entry = datakeys_insert(DataKeyCache, ref, &found);
	if (!found && len > SUBJECT_INLINE)
		entry->subject.u.text = arena_copy(subject, len);
	memcpy(entry->key, key, PFG_KEY_LEN);
	if (found && entry->create_subid != InvalidSubTransactionId)
		n_provisional_keys--;
	entry->create_subid = InvalidSubTransactionId;
	if (provisional)
	{
		/*
		 * Written by this transaction: forget it if the current
		 * subtransaction aborts (it may be an ancestor that wrote it;
		 * forgetting too early only costs a re-read).
		 */
		entry->create_subid = GetCurrentSubTransactionId();
		n_provisional_keys++;
	}
}

/* wipe our copy of subject's key now (others follow the invalidation) */
void
pfg_data_key_cache_forget(const char *subject)
{
	int			len = strlen(subject);
	DataKeyEntry *entry;
	uint32		n;

	/* the transaction changed keys: no published set serves it any more */
	pfg_data_key_cache_detach_shared();
	if (dense_index(subject, len, &n) && dense_has(n))
	{
		explicit_bzero(dense_keys[n], PFG_KEY_LEN);
		dense_present[n / 64] &= ~(UINT64CONST(1) << (n % 64));
		dense_count--;
	}
	if (DataKeyCache != NULL)
	{
		entry = datakeys_lookup(DataKeyCache,
								make_ref(subject, len, subject_hash(subject, len)));
		if (entry != NULL)
			remove_entry(entry);
	}
}
