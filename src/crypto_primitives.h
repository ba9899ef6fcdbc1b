/*-------------------------------------------------------------------------
 *
 * crypto_primitives.h
 *	  The calls into OpenSSL and libsodium (crypto_primitives.c): SHA-256,
 *	  HMAC-SHA256, random bytes and IVs, AES-256-GCM.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_CRYPTO_PRIMITIVES_H
#define PROFILE_GUARD_CRYPTO_PRIMITIVES_H

#define PFG_KEY_LEN			32	/* AES-256: master and data keys */
#define PFG_SHA256_LEN		32
#define PFG_SHA256_HEX_LEN	(2 * PFG_SHA256_LEN)
#define PFG_GCM_IV_LEN		12
#define PFG_GCM_TAG_LEN		16

/* the last OpenSSL error, as text (a static buffer), and clears it */
extern const char *pfg_openssl_error(void);

/*
 * These return false on failure and never ereport, so that the caller can
 * wipe what it holds first; pfg_openssl_error() then says why.
 */
extern bool pfg_sha256(const void *data, size_t len, uint8 *out);
extern bool pfg_sha256_of_secret(const uint8 *secret, size_t len, uint8 *out);
extern bool pfg_hmac_sha256(const uint8 *key, int keylen,
							const void *data, size_t len, uint8 *out);
extern bool pfg_hmac_sha256_hex(const uint8 *key, int keylen,
								const void *data, size_t len, char *out);
extern bool pfg_equal_constant_time(const void *a, const void *b, size_t len);
extern bool pfg_gcm_encrypt(const uint8 *key, const uint8 *iv,
							const uint8 *aad, int aadlen,
							const uint8 *in, int inlen,
							uint8 *out, uint8 *tag);
extern bool pfg_gcm_decrypt(const uint8 *key, const uint8 *iv,
							const uint8 *aad, int aadlen,
							const uint8 *in, int inlen,
							const uint8 *tag, uint8 *out);

/* profile_guard.aes_gcm_implementation */
extern void pfg_crypto_define_settings(void);

/* libsodium's AES-NI path serves AES-256-GCM (else OpenSSL's) */
extern bool pfg_gcm_accelerated(void);

/*
 * A key prepared once for many operations (about 600 bytes; the caller
 * frees it with pfg_gcm_key_free, which wipes it).
 */
typedef struct PfgGcmKey PfgGcmKey;

extern PfgGcmKey *pfg_gcm_key_prepare(MemoryContext cxt, const uint8 *key);
extern void pfg_gcm_key_free(PfgGcmKey *k);
extern bool pfg_gcm_key_encrypt(const PfgGcmKey *k, const uint8 *iv,
								const uint8 *aad, int aadlen,
								const uint8 *in, int inlen,
								uint8 *out, uint8 *tag);
extern bool pfg_gcm_key_decrypt(const PfgGcmKey *k, const uint8 *iv,
								const uint8 *aad, int aadlen,
								const uint8 *in, int inlen,
								const uint8 *tag, uint8 *out);

/* these ereport when the random generator fails */
extern void pfg_random_bytes(uint8 *buf, int len);
extern void pfg_random_iv(uint8 *iv);
extern void pfg_random_key(uint8 *key);	/* PFG_KEY_LEN bytes */

#endif							/* PROFILE_GUARD_CRYPTO_PRIMITIVES_H */
