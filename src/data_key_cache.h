/*-------------------------------------------------------------------------
 *
 * data_key_cache.h
 *	  The backend-local cache of unwrapped data keys (data_key_cache.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_DATA_KEY_CACHE_H
#define PROFILE_GUARD_DATA_KEY_CACHE_H

#include "crypto_primitives.h"

/* SHA-256 of a subject: the cache's key */
typedef struct PfgSubjectDigest
{
	uint8		bytes[PFG_SHA256_LEN];
} PfgSubjectDigest;

extern void pfg_data_key_cache_define_settings(void);

extern void pfg_data_key_cache_digest(const char *subject, PfgSubjectDigest *digest);
/* copies the cached key into key (PFG_KEY_LEN bytes) when there is one */
extern bool pfg_data_key_cache_lookup(const PfgSubjectDigest *digest, uint8 *key);
/*
 * provisional: the key's row was written by the current transaction, so
 * the key is dropped again if the current subtransaction aborts.
 */
extern void pfg_data_key_cache_insert(const PfgSubjectDigest *digest,
									  const uint8 *key, bool provisional);
extern void pfg_data_key_cache_forget(const char *subject);

/* wipe and drop every key; the count of flushes so far */
extern void pfg_data_key_cache_flush(void);
extern uint64 pfg_data_key_cache_flushes(void);

#endif							/* PROFILE_GUARD_DATA_KEY_CACHE_H */
