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

extern void pfg_data_key_cache_define_settings(void);

/* copies the cached key into key (PFG_KEY_LEN bytes) when there is one */
extern bool pfg_data_key_cache_lookup(const char *subject, int len, uint8 *key);
/*
 * provisional: the key's row was written by the current transaction, so
 * the key is dropped again if the current subtransaction aborts.
 */
extern void pfg_data_key_cache_insert(const char *subject, int len,
									  const uint8 *key, bool provisional);
extern void pfg_data_key_cache_forget(const char *subject);
/* how many more keys fit under profile_guard.key_cache_size; make room */
extern int	pfg_data_key_cache_room(void);
extern void pfg_data_key_cache_reserve(int n, bool dense);
extern void pfg_data_key_cache_reserve_dense_upto(uint32 highest, uint32 count);
/* is subject a dense integer, kept in an array rather than the table? (its index) */
extern bool pfg_data_key_cache_dense_subject(const char *subject, int len,
											 uint32 *index);

/* the keys as shared_data_keys.c publishes them, and reads a published set */
extern void pfg_data_key_cache_attach_shared(const uint8 *keys,
											 const volatile uint64 *present,
											 uint32 size);
extern void pfg_data_key_cache_detach_shared(void);
extern void pfg_data_key_cache_contents(const uint8 **keys, const uint64 **present,
										uint32 *size, uint32 *count,
										Size *others_bytes, uint32 *others_count);
extern void pfg_data_key_cache_write_others(char *dst);
extern void pfg_data_key_cache_read_others(const char *src, Size bytes, uint32 count);

/* wipe and drop every key; the count of flushes so far */
extern void pfg_data_key_cache_flush(void);
extern uint64 pfg_data_key_cache_flushes(void);

#endif							/* PROFILE_GUARD_DATA_KEY_CACHE_H */
