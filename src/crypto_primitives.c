/*-------------------------------------------------------------------------
 *
 * crypto_primitives.c
 *	  Owns every call into the cryptographic libraries of profile_guard:
 *	  OpenSSL (EVP and HMAC only) for SHA-256, HMAC-SHA256, constant-time
 *	  comparison, random bytes and pools of random IVs and keys; and AES-256-GCM
 *	  encryption and authenticated decryption, through libsodium's AES-NI
 *	  implementation when the CPU has AES-NI and PCLMUL (about three times
 *	  faster on short values, as it sets up a key in a few cycles), else
 *	  through OpenSSL with one cipher context per backend.  Both compute
 *	  the same GCM: what one encrypts the other decrypts.  A key can also be
 *	  prepared once (its expanded schedule and GHASH powers kept, 512
 *	  bytes), for a key that decrypts many values: the master key.
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
#include <sodium.h>

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

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

/*
 * HMAC-SHA256(key, data) as PFG_SHA256_HEX_LEN lower-case hexadecimal
 * digits and a NUL, into out; the digest is wiped
 */
bool
pfg_hmac_sha256_hex(const uint8 *key, int keylen, const void *data, size_t len,
					char *out)
{
	uint8		digest[PFG_SHA256_LEN];
	bool		ok = pfg_hmac_sha256(key, keylen, data, len, digest);

	if (ok)
	{
		hex_encode((const char *) digest, PFG_SHA256_LEN, out);
		out[PFG_SHA256_HEX_LEN] = '\0';
	}
	explicit_bzero(digest, sizeof(digest));
	return ok;
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
 * A fresh random 256-bit key, from a pool filled as the IVs' is: one
 * RAND_bytes call per KEY_POOL_KEYS keys, for statements that make many.
 * Each key is wiped from the pool as it is handed out, and the pool when
 * its process is not the one that filled it.
 */
#define KEY_POOL_KEYS	64

void
pfg_random_key(uint8 *key)
{
	static uint8 pool[PFG_KEY_LEN * KEY_POOL_KEYS];
	static int	pool_left = 0;
	static int	pool_pid = 0;

	if (pool_left < PFG_KEY_LEN || pool_pid != MyProcPid)
	{
		explicit_bzero(pool, sizeof(pool));
		pfg_random_bytes(pool, sizeof(pool));
		pool_left = sizeof(pool);
		pool_pid = MyProcPid;
	}
	pool_left -= PFG_KEY_LEN;
	memcpy(key, pool + pool_left, PFG_KEY_LEN);
	explicit_bzero(pool + pool_left, PFG_KEY_LEN);
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
 * profile_guard.aes_gcm_implementation: "auto" lets libsodium serve
 * AES-256-GCM when the CPU has AES-NI and PCLMUL (libsodium says so once
 * initialised, on first use), "openssl" keeps to OpenSSL.  Both read what
 * the other wrote; the setting exists to compare them and to rule one out.
 */
typedef enum PfgGcmImplementation
{
	PFG_GCM_AUTO,
	PFG_GCM_OPENSSL
} PfgGcmImplementation;

static const struct config_enum_entry gcm_implementation_options[] = {
	{"auto", PFG_GCM_AUTO, false},
	{"openssl", PFG_GCM_OPENSSL, false},
	{NULL, 0, false}
};

static int	gcm_implementation = PFG_GCM_AUTO;
static int	sodium_gcm = -1;	/* -1: not decided yet */

void
pfg_crypto_define_settings(void)
{
	DefineCustomEnumVariable("profile_guard.aes_gcm_implementation",
							 "Which library computes AES-256-GCM.",
							 "auto: libsodium when the CPU has AES-NI and PCLMUL, else OpenSSL; openssl: OpenSSL only. Both read what the other wrote.",
							 &gcm_implementation,
							 PFG_GCM_AUTO,
							 gcm_implementation_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
}

static inline bool
use_sodium_gcm(void)
{
	if (unlikely(sodium_gcm < 0))
		sodium_gcm = sodium_init() >= 0 && crypto_aead_aes256gcm_is_available() ? 1 : 0;
	return sodium_gcm == 1 && gcm_implementation == PFG_GCM_AUTO;
}

bool
pfg_gcm_accelerated(void)
{
	return use_sodium_gcm();
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
	EVP_CIPHER_CTX *ctx;
	const EVP_CIPHER *cipher;
	int			len;

	if (use_sodium_gcm())
		return crypto_aead_aes256gcm_encrypt_detached(out, tag, NULL, in, inlen,
													  aad, aadlen, NULL, iv, key) == 0;

	ctx = gcm_context();
	cipher = gcm_cipher();
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
	EVP_CIPHER_CTX *ctx;
	const EVP_CIPHER *cipher;
	uint8		scratch[SCRATCH_LEN];
	uint8		tagcopy[PFG_GCM_TAG_LEN];
	int			len;
	bool		ok = false;

	/* libsodium needs somewhere to put the plaintext */
	if (use_sodium_gcm() && (out != NULL || inlen <= SCRATCH_LEN))
	{
		ok = crypto_aead_aes256gcm_decrypt_detached(out ? out : scratch, NULL,
													in, inlen, tag, aad, aadlen,
													iv, key) == 0;
		if (out == NULL)
			explicit_bzero(scratch, Min(inlen, SCRATCH_LEN));
		return ok;
	}

	ctx = gcm_context();
	cipher = gcm_cipher();
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

/*
 * A prepared key: libsodium's state (the expanded key and GHASH powers)
 * computed once, and the raw key for the OpenSSL path.
 * The state must be 16-byte aligned; the struct is allocated with room to
 * align it.
 */
struct PfgGcmKey
{
	void	   *chunk;			/* what was allocated */
	bool		sodium;
	uint8		raw[PFG_KEY_LEN];
	crypto_aead_aes256gcm_state state;
};

PfgGcmKey *
pfg_gcm_key_prepare(MemoryContext cxt, const uint8 *key)
{
	void	   *chunk = MemoryContextAllocZero(cxt, sizeof(PfgGcmKey) + 16);
	PfgGcmKey  *k = (PfgGcmKey *) TYPEALIGN(16, chunk);

	k->chunk = chunk;
	k->sodium = use_sodium_gcm();
	if (k->sodium)
		crypto_aead_aes256gcm_beforenm(&k->state, key);
	memcpy(k->raw, key, PFG_KEY_LEN);
	return k;
}

void
pfg_gcm_key_free(PfgGcmKey *k)
{
	void	   *chunk;

	if (k == NULL)
		return;
	chunk = k->chunk;
	explicit_bzero(k, sizeof(PfgGcmKey));
	pfree(chunk);
}

bool
pfg_gcm_key_encrypt(const PfgGcmKey *k, const uint8 *iv,
					const uint8 *aad, int aadlen,
					const uint8 *in, int inlen,
					uint8 *out, uint8 *tag)
{
	if (!k->sodium || !use_sodium_gcm())
		return pfg_gcm_encrypt(k->raw, iv, aad, aadlen, in, inlen, out, tag);
	return crypto_aead_aes256gcm_encrypt_detached_afternm(out, tag, NULL, in, inlen,
														  aad, aadlen, NULL, iv,
														  &k->state) == 0;
}

/* as pfg_gcm_decrypt, out required */
bool
pfg_gcm_key_decrypt(const PfgGcmKey *k, const uint8 *iv,
					const uint8 *aad, int aadlen,
					const uint8 *in, int inlen,
					const uint8 *tag, uint8 *out)
{
	if (!k->sodium || !use_sodium_gcm())
		return pfg_gcm_decrypt(k->raw, iv, aad, aadlen, in, inlen, tag, out);
	return crypto_aead_aes256gcm_decrypt_detached_afternm(out, NULL, in, inlen, tag,
														  aad, aadlen, iv,
														  &k->state) == 0;
}
