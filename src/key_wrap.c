/*-------------------------------------------------------------------------
 *
 * key_wrap.c
 *	  Owns the wrapped form of a data key: a subject's 256-bit data key
 *	  encrypted with AES-256-GCM under a master key, as stored in
 *	  profile_guard.subject_key.wrapped_key (data_key.c):
 *
 *	  0x01 (wrap version) | IV (12) | GCM tag (16) | AES-256-GCM(data key) (32)
 *
 *	  with associated data "PGK" | 0x01 | subject, so that a wrapped key
 *	  cannot be moved to another subject.  The master key is used in its
 *	  prepared form (crypto_primitives.c), so that unwrapping many keys in
 *	  a row (data_key.c's bulk load) sets it up once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "key_wrap.h"

#define WRAP_VERSION		0x01
#define WRAP_AAD_MAGIC		"PGK"

/* subjects are short: their associated data fits on the stack */
#define WRAP_AAD_STACK		256

static int
wrap_aad(const char *subject, int slen, uint8 *stackbuf, uint8 **aad)
{
	uint8	   *buf = 4 + slen <= WRAP_AAD_STACK ? stackbuf : palloc(4 + slen);

	memcpy(buf, WRAP_AAD_MAGIC, 3);
	buf[3] = WRAP_VERSION;
	memcpy(buf + 4, subject, slen);
	*aad = buf;
	return 4 + slen;
}

void
pfg_wrap_data_key(const uint8 *data_key, const char *subject,
				  const PfgMasterKey *mk, uint8 *wrapped)
{
	uint8		stackbuf[WRAP_AAD_STACK];
	uint8	   *aad;
	int			aadlen = wrap_aad(subject, strlen(subject), stackbuf, &aad);

	wrapped[0] = WRAP_VERSION;
	pfg_random_iv(wrapped + 1);
	if (!pfg_gcm_key_encrypt(mk->prepared, wrapped + 1, aad, aadlen, data_key, PFG_KEY_LEN,
							 wrapped + 1 + PFG_GCM_IV_LEN + PFG_GCM_TAG_LEN,
							 wrapped + 1 + PFG_GCM_IV_LEN))
		elog(ERROR, "could not wrap a data key: %s", pfg_openssl_error());
	if (aad != stackbuf)
		pfree(aad);
}

bool
pfg_unwrap_data_key(const uint8 *wrapped, int len, const char *subject,
					const PfgMasterKey *mk, uint8 *data_key)
{
	return pfg_unwrap_data_key_n(wrapped, len, subject, strlen(subject), mk, data_key);
}

/* the same, for a subject of slen bytes that need not end in a NUL */
bool
pfg_unwrap_data_key_n(const uint8 *wrapped, int len, const char *subject, int slen,
					  const PfgMasterKey *mk, uint8 *data_key)
{
	uint8		stackbuf[WRAP_AAD_STACK];
	uint8	   *aad;
	int			aadlen;
	bool		ok;

	if (len != PFG_WRAPPED_KEY_LEN || wrapped[0] != WRAP_VERSION)
		return false;
	aadlen = wrap_aad(subject, slen, stackbuf, &aad);
	ok = pfg_gcm_key_decrypt(mk->prepared, wrapped + 1, aad, aadlen,
							 wrapped + 1 + PFG_GCM_IV_LEN + PFG_GCM_TAG_LEN, PFG_KEY_LEN,
							 wrapped + 1 + PFG_GCM_IV_LEN, data_key);
	if (!ok)
		explicit_bzero(data_key, PFG_KEY_LEN);
	if (aad != stackbuf)
		pfree(aad);
	return ok;
}
