/*-------------------------------------------------------------------------
 *
 * master_key.h
 *	  The master key (master_key.c): its settings, the current and the
 *	  previous key, their fingerprints, and secrets derived from it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_MASTER_KEY_H
#define PROFILE_GUARD_MASTER_KEY_H

#include "crypto_primitives.h"

#define PFG_FINGERPRINT_BYTES	8
#define PFG_FINGERPRINT_HEX_LEN (PFG_FINGERPRINT_BYTES * 2)

typedef struct PfgMasterKey
{
	bool		loaded;
	uint8		key[PFG_KEY_LEN];
	PfgGcmKey  *prepared;		/* key, prepared for wrapping and unwrapping */
	char		fingerprint[PFG_FINGERPRINT_HEX_LEN + 1];
} PfgMasterKey;

extern void pfg_master_key_define_settings(void);

/* whether a master key source is set (it may still fail to load) */
extern bool pfg_master_key_configured(void);
/* loaded on first use; errors when none is configured or it is unreadable */
extern const PfgMasterKey *pfg_master_key_current(void);
/* NULL when no previous master key is configured */
extern const PfgMasterKey *pfg_master_key_previous(void);

/* does mk (NULL: no key) have this fingerprint? */
extern bool pfg_master_key_matches(const PfgMasterKey *mk, const char *fingerprint);
/* subject's data key was wrapped by a master key other than current */
extern void pfg_master_key_mismatch(const char *subject, const char *fingerprint,
									const PfgMasterKey *current) pg_attribute_noreturn();

/* a 32-byte secret derived from the master key for label (caller wipes) */
extern void pfg_master_key_derive(const char *label, uint8 *out);

#endif							/* PROFILE_GUARD_MASTER_KEY_H */
