/*-------------------------------------------------------------------------
 *
 * shared_data_keys.h
 *	  Unwrapped data keys shared between the backends of a database
 *	  (shared_data_keys.c): what one backend's bulk load read, copied by
 *	  the others instead of reading and unwrapping every key again.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_SHARED_DATA_KEYS_H
#define PROFILE_GUARD_SHARED_DATA_KEYS_H

#include "nodes/nodes.h"
#include "storage/lwlock.h"

/* what a bulk load notes before it takes its snapshot, to publish after */
typedef struct PfgSharedKeysTicket
{
	bool		usable;			/* may this load be published at all? */
	uint64		epoch;			/* keys changed by commits so far */
	uint64		creations;		/* transactions that made keys so far */
} PfgSharedKeysTicket;

extern void pfg_shared_data_keys_define_settings(void);
extern Size pfg_shared_data_keys_shmem_size(void);
extern void pfg_shared_data_keys_shmem_startup(LWLock *lock);
extern bool pfg_shared_data_keys_changed_in_xact(void);
extern void pfg_shared_data_keys_init(void);

/* the current transaction made keys / changed or removed some */
extern void pfg_shared_data_keys_note_created(void);
extern void pfg_shared_data_keys_note_changed(void);
extern void pfg_shared_data_keys_utility(Node *stmt);

extern bool pfg_shared_data_keys_published(Oid relid, const char *fingerprint);

/*
 * The backend reads no shared set in place any more: a bulk load of its
 * own, or the end of the outermost statement.
 */
extern void pfg_shared_data_keys_release(void);

/*
 * Let the backend's cache use the keys published for subject_key relid
 * under the master key of this fingerprint until the outermost statement
 * or the transaction ends (the integer subjects' keys read in place, the
 * others copied, if at most room of those); *complete: no transaction made
 * keys since they were read.
 */
extern bool pfg_shared_data_keys_take(Oid relid, const char *fingerprint,
									  int room, bool *complete);
extern bool pfg_shared_data_keys_lookup(Oid relid, const char *fingerprint,
										const char *subject, int len, uint8 *key);

/* before a bulk load's snapshot; then publish what it loaded */
extern PfgSharedKeysTicket pfg_shared_data_keys_begin_load(void);
extern void pfg_shared_data_keys_publish(const PfgSharedKeysTicket *ticket,
										 Oid relid, const char *fingerprint);

#endif							/* PROFILE_GUARD_SHARED_DATA_KEYS_H */
