/*-------------------------------------------------------------------------
 *
 * crypto_primitives.c
 *	  Owns every OpenSSL call of profile_guard (EVP and HMAC only):
 *	  SHA-256, HMAC-SHA256, constant-time comparison, random bytes and a
 *	  pool of random IVs, and AES-256-GCM encryption and authenticated
 *	  decryption with one cipher context per backend.
 *
 *	  The functions that take key material or data never ereport: they
 *	  return false, so that the caller wipes what it holds before it
 *	  reports (pfg_openssl_error() says why).  Only the random generator's
 *	  failure is reported here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "miscadmin.h"

#include "crypto_primitives.h"

/* size of the scratch buffer used to authenticate without keeping output */
#define SCRATCH_LEN			8192

const char *
pfg_openssl_error(void)
{
	unsigned long e = ERR_get_error();
	static char buf[256];

	if (e == 0)
		return "no OpenSSL error reported";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* SHA-256 of data that is no secret (a subject identifier) */
bool
pfg_sha256(const void *data, size_t len, uint8 *out)
{
	/* fetched once: an implicit fetch per call takes the provider's locks */
	static EVP_MD *md = NULL;
	static EVP_MD_CTX *ctx = NULL;
	unsigned int outlen = 0;

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
	md = (EVP_MD *) EVP_sha256();
#endif
	if (ctx == NULL)
		ctx = EVP_MD_CTX_new();
	return md != NULL && ctx != NULL &&
		EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
		EVP_DigestUpdate(ctx, data, len) == 1 &&
		EVP_DigestFinal_ex(ctx, out, &outlen) == 1 &&
		outlen == PFG_SHA256_LEN;
}

/* SHA-256 of key material: a one-off context, wiped by OpenSSL */
bool
pfg_sha256_of_secret(const uint8 *secret, size_t len, uint8 *out)
{
	unsigned int outlen = 0;

	return EVP_Digest(secret, len, out, &outlen, EVP_sha256(), NULL) == 1 &&
		outlen == PFG_SHA256_LEN;
}

/* HMAC-SHA256(key, data) into out (PFG_SHA256_LEN bytes) */
bool
pfg_hmac_sha256(const uint8 *key, int keylen, const void *data, size_t len,
				uint8 *out)
{
	unsigned int outlen = PFG_SHA256_LEN;

	return HMAC(EVP_sha256(), key, keylen, (const unsigned char *) data, len,
				out, &outlen) != NULL && outlen == PFG_SHA256_LEN;
}

/* true when a and b hold the same len bytes; the time taken tells nothing */
bool
pfg_equal_constant_time(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void
pfg_random_bytes(uint8 *buf, int len)
{
	if (RAND_bytes(buf, len) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes: %s", pfg_openssl_error())));
}

/*
 * A fresh random IV.  IVs are drawn from the same CSPRNG, a few hundred at
 * a time (one RAND_bytes call costs more than the encryption of a short
 * value); the pool belongs to the process that filled it, so a forked
 * child never reuses its parent's.
 */
#define IV_POOL_BYTES (PFG_GCM_IV_LEN * 340)

void
pfg_random_iv(uint8 *iv)
{
	static uint8 pool[IV_POOL_BYTES];
	static int	pool_left = 0;
	static int	pool_pid = 0;

	if (pool_left < PFG_GCM_IV_LEN || pool_pid != MyProcPid)
	{
		pfg_random_bytes(pool, IV_POOL_BYTES);
		pool_left = IV_POOL_BYTES;
		pool_pid = MyProcPid;
	}
	pool_left -= PFG_GCM_IV_LEN;
	memcpy(iv, pool + pool_left, PFG_GCM_IV_LEN);
	explicit_bzero(pool + pool_left, PFG_GCM_IV_LEN);
}

/*
 * The cipher, fetched from the provider once, and one context per backend
 * for all operations: each operation re-initialises it with its key and
 * IV, so only the setup of the first one is paid per backend.  After a
 * failure the context is reset, which wipes its key schedule.
 */
static EVP_CIPHER_CTX *GcmContext = NULL;

static const EVP_CIPHER *
gcm_cipher(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	static EVP_CIPHER *cipher = NULL;

	if (cipher == NULL)
		cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	return cipher;
#else
	return EVP_aes_256_gcm();
#endif
}

static EVP_CIPHER_CTX *
gcm_context(void)
{
	if (GcmContext == NULL)
		GcmContext = EVP_CIPHER_CTX_new();
	return GcmContext;
}

/*
 * The cipher to pass to an init call: NULL once the context holds it, so
 * that only the key and IV are set (passing it again re-creates the
 * provider's context).
 */
static const EVP_CIPHER *
gcm_cipher_for(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher)
{
	return EVP_CIPHER_CTX_cipher(ctx) == cipher ? NULL : cipher;
}

static void
gcm_failed(EVP_CIPHER_CTX *ctx)
{
	if (ctx != NULL)
		EVP_CIPHER_CTX_reset(ctx);
}

/*
 * AES-256-GCM encryption of in[0..inlen) into out (same length) and tag.
 * The IV is PFG_GCM_IV_LEN (12) bytes, GCM's default length.
 */
bool
pfg_gcm_encrypt(const uint8 *key, const uint8 *iv,
				const uint8 *aad, int aadlen,
				const uint8 *in, int inlen,
				uint8 *out, uint8 *tag)
{
	EVP_CIPHER_CTX *ctx = gcm_context();
	const EVP_CIPHER *cipher = gcm_cipher();
	int			len;

	if (ctx == NULL || cipher == NULL ||
		EVP_EncryptInit_ex(ctx, gcm_cipher_for(ctx, cipher), NULL, key, iv) != 1 ||
		EVP_EncryptUpdate(ctx, NULL, &len, aad, aadlen) != 1)
		goto failed;
	if (inlen > 0)
	{
		if (EVP_EncryptUpdate(ctx, out, &len, in, inlen) != 1 || len != inlen)
			goto failed;
	}
	if (EVP_EncryptFinal_ex(ctx, out + inlen, &len) != 1 || len != 0 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, PFG_GCM_TAG_LEN, tag) != 1)
		goto failed;
	return true;

failed:
	gcm_failed(ctx);
	return false;
}

/*
 * AES-256-GCM decryption and authentication.  Returns true only when the
 * tag verifies.  With out == NULL the plaintext goes through a scratch
 * buffer and is discarded (authentication only).  On failure the caller must
 * wipe out, which may hold unauthenticated plaintext.
 */
bool
pfg_gcm_decrypt(const uint8 *key, const uint8 *iv,
				const uint8 *aad, int aadlen,
				const uint8 *in, int inlen,
				const uint8 *tag, uint8 *out)
{
	EVP_CIPHER_CTX *ctx = gcm_context();
	const EVP_CIPHER *cipher = gcm_cipher();
	uint8		scratch[SCRATCH_LEN];
	uint8		tagcopy[PFG_GCM_TAG_LEN];
	int			len;
	bool		ok = false;

	memcpy(tagcopy, tag, PFG_GCM_TAG_LEN);
	if (ctx == NULL || cipher == NULL ||
		EVP_DecryptInit_ex(ctx, gcm_cipher_for(ctx, cipher), NULL, key, iv) != 1 ||
		EVP_DecryptUpdate(ctx, NULL, &len, aad, aadlen) != 1)
		goto done;

	if (out != NULL)
	{
		if (inlen > 0 &&
			(EVP_DecryptUpdate(ctx, out, &len, in, inlen) != 1 || len != inlen))
			goto done;
	}
	else
	{
		int			off;

		for (off = 0; off < inlen; off += SCRATCH_LEN)
		{
			int			n = Min(SCRATCH_LEN, inlen - off);

			if (EVP_DecryptUpdate(ctx, scratch, &len, in + off, n) != 1 || len != n)
				goto done;
		}
		explicit_bzero(scratch, sizeof(scratch));
	}

	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, PFG_GCM_TAG_LEN, tagcopy) != 1)
		goto done;
	/* GCM's final step compares the tag in constant time */
	if (EVP_DecryptFinal_ex(ctx, scratch, &len) != 1)
		goto done;
	ok = true;

done:
	if (!ok)
	{
		explicit_bzero(scratch, sizeof(scratch));
		gcm_failed(ctx);
		ERR_clear_error();		/* a failed tag is an answer, not an error */
	}
	return ok;
}
