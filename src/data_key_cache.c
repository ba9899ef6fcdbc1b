/*-------------------------------------------------------------------------
 *
 * data_key_cache.c
 *	  Owns the backend-local cache of unwrapped data keys and its setting
 *	  profile_guard.key_cache_size.
 *
 *	  Subject -> unwrapped data key, in an open-addressing hash table
 *	  (simplehash) in a child of TopMemoryContext, keyed by the subject's
 *	  text (copied into an arena of the same context) under a hash seeded
 *	  at random per backend (a chosen set of subjects cannot pile up in
 *	  one bucket); its arrays are wiped before they are freed.  An entry
 *	  takes 56 bytes in the table plus the subject's text: about 100 bytes
 *	  a cached key with the table's free slots.  data_key.c fills it and
 *	  flushes it on a relcache invalidation of profile_guard.subject_key
 *	  (destroying or re-wrapping keys sends one); a key created by the
 *	  current (sub)transaction is dropped again if it aborts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "data_key_cache.h"

/*
 * A subject as the cache knows it: its text (a copy in the cache's arena
 * for an entry, the caller's for a probe) and a hash of it.
 */
typedef struct SubjectRef
{
	const char *data;
	uint32		len;
	uint32		hash;
} SubjectRef;

typedef struct DataKeyEntry
{
	SubjectRef	subject;
	uint8		key[PFG_KEY_LEN];
	SubTransactionId create_subid;	/* created by this (sub)xact, else
									 * InvalidSubTransactionId */
	char		status;			/* simplehash's */
} DataKeyEntry;

/*
 * The cache is an open-addressing table (one probe touches one entry, where
 * a chained table would touch three places).  Its arrays hold key material:
 * they are wiped before they are freed, when the table grows.
 */
#define SH_PREFIX		datakeys
#define SH_ELEMENT_TYPE DataKeyEntry
#define SH_KEY_TYPE		SubjectRef
#define SH_KEY			subject
#define SH_HASH_KEY(tb, k)	((k).hash)
#define SH_EQUAL(tb, a, b)	((a).len == (b).len && memcmp((a).data, (b).data, (a).len) == 0)
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

/* the arena of the subjects' texts: blocks of ARENA_BLOCK bytes */
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

/* a size header in front of each array, so that it can be wiped */
static inline void *
datakeys_allocate(datakeys_hash *tb, Size size)
{
	Size	   *chunk = MemoryContextAllocExtended(DataKeyContext,
												  MAXALIGN(sizeof(Size)) + size,
												  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	*chunk = size;
	return (char *) chunk + MAXALIGN(sizeof(Size));
}

static inline void
datakeys_free(datakeys_hash *tb, void *pointer)
{
	Size	   *chunk = (Size *) ((char *) pointer - MAXALIGN(sizeof(Size)));

	explicit_bzero(pointer, *chunk);
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
		MemoryContextReset(DataKeyContext);
	}
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
			datakeys_start_iterate(DataKeyCache, &it);
			while ((entry = datakeys_iterate(DataKeyCache, &it)) != NULL)
				entry->create_subid = InvalidSubTransactionId;
			n_provisional_keys = 0;
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

uint32
pfg_data_key_cache_hash(const char *subject, int len)
{
	if (!callbacks_registered)
		data_key_cache_init();
	return (uint32) hash_bytes_extended((const unsigned char *) subject, len, hash_seed);
}

bool
pfg_data_key_cache_lookup(const char *subject, int len, uint32 hash, uint8 *key)
{
	DataKeyEntry *entry;
	SubjectRef	ref = {subject, (uint32) len, hash};

	data_key_cache_init();
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
	return key_cache_size - (DataKeyCache != NULL ? (int) DataKeyCache->members : 0);
}

/* make room for n more keys at once, instead of growing step by step */
void
pfg_data_key_cache_reserve(int n)
{
	uint64		want;

	data_key_cache_init();
	want = pg_nextpower2_64(((uint64) DataKeyCache->members + n) * 10 / 9 + 1);
	if (want > DataKeyCache->size)
		datakeys_grow(DataKeyCache, want);
}

void
pfg_data_key_cache_insert(const char *subject, int len, uint32 hash,
						  const uint8 *key, bool provisional)
{
	DataKeyEntry *entry;
	bool		found;
	SubjectRef	ref = {subject, (uint32) len, hash};

	/* bound the cache: start afresh rather than grow without limit */
	if (DataKeyCache != NULL &&
		DataKeyCache->members >= (uint32) key_cache_size)
		pfg_data_key_cache_flush();
	data_key_cache_init();
	entry = datakeys_insert(DataKeyCache, ref, &found);
	if (!found)
		entry->subject.data = arena_copy(subject, len);
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
	SubjectRef	ref = {subject, (uint32) len, 0};
	DataKeyEntry *entry;

	if (DataKeyCache != NULL)
	{
		ref.hash = pfg_data_key_cache_hash(subject, len);
		entry = datakeys_lookup(DataKeyCache, ref);
		if (entry != NULL)
			remove_entry(entry);
	}
}
