/*-------------------------------------------------------------------------
 *
 * key_wrap.h
 *	  Wrapping a subject's data key under a master key (key_wrap.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_KEY_WRAP_H
#define PROFILE_GUARD_KEY_WRAP_H

#include "master_key.h"

/* version | IV | GCM tag | wrapped key: 61 bytes */
#define PFG_WRAPPED_KEY_LEN	(1 + PFG_GCM_IV_LEN + PFG_GCM_TAG_LEN + PFG_KEY_LEN)

/* wrapped: PFG_WRAPPED_KEY_LEN bytes; errors if OpenSSL fails */
extern void pfg_wrap_data_key(const uint8 *data_key, const char *subject,
							  const PfgMasterKey *mk, uint8 *wrapped);
/* false, with data_key wiped, when wrapped does not authenticate */
extern bool pfg_unwrap_data_key(const uint8 *wrapped, int len, const char *subject,
								const PfgMasterKey *mk, uint8 *data_key);
extern bool pfg_unwrap_data_key_n(const uint8 *wrapped, int len,
								  const char *subject, int slen,
								  const PfgMasterKey *mk, uint8 *data_key);

#endif							/* PROFILE_GUARD_KEY_WRAP_H */
