/*-------------------------------------------------------------------------
 *
 * crypto.c
 *	  Encryption of sensitive tag values: the master key, the per-subject
 *	  data keys (table profile_guard.subject_key) and their backend-local
 *	  cache, the ciphertext envelope, crypto-shredding and master key
 *	  rotation.  OpenSSL EVP only.
 *
 * Master key: 256 bits, 64 hexadecimal digits read from
 * profile_guard.master_key_file or from the standard output of
 * profile_guard.master_key_command, loaded on first use in each backend and
 * never written anywhere.  Its fingerprint is the first 8 bytes of
 * SHA-256(key), in hex; it is stored next to every wrapped data key so that
 * a wrong master key is reported as such instead of producing garbage.
 * During a rotation profile_guard.previous_master_key_file names the old key.
 *
 * Data key: 256 random bits per subject, stored wrapped in
 * profile_guard.subject_key.wrapped_key (NULL once destroyed):
 *
 *	  0x01 (wrap version) | IV (12) | GCM tag (16) | AES-256-GCM(data key) (32)
 *
 * wrapped with AES-256-GCM under the master key, associated data
 * "PGK" | 0x01 | subject, so a wrapped key cannot be moved to another subject.
 *
 * Envelope (format version 1) of a value encrypted with a data key:
 *
 *	  "PGT" | 0x01 | IV (12) | GCM tag (16) | AES-256-GCM(value)
 *
 * associated data subject | 0x00 | tag | 0x00 | 0x01, so a ciphertext copied
 * to another subject or another tag does not authenticate.  A bytea column
 * stores the envelope itself; a text column stores "pgt1:" followed by the
 * envelope in base64.
 *
 * Cache: subject -> unwrapped data key, in an open-addressing hash table
 * (simplehash) in a child of TopMemoryContext, keyed by SHA-256(subject);
 * its arrays are wiped before they are freed.  A relcache invalidation of
 * subject_key flushes it (destroying or re-wrapping keys sends one); a key
 * created by the current (sub)transaction is dropped again if it aborts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "profile_guard.h"
#include "crypto.h"
#include "invalidation.h"

#define KEY_LEN				32	/* AES-256: master and data keys */
#define GCM_IV_LEN			12
#define GCM_TAG_LEN			16
#define FINGERPRINT_BYTES	8
#define FINGERPRINT_HEX_LEN (FINGERPRINT_BYTES * 2)
#define KEY_HEX_LEN			(KEY_LEN * 2)
#define KEY_TEXT_MAX		256 /* longest key file/command output we read */

#define ENVELOPE_MAGIC		"PGT"
#define ENVELOPE_MAGIC_LEN	3
#define ENVELOPE_VERSION	0x01
#define ENVELOPE_IV_OFF		(ENVELOPE_MAGIC_LEN + 1)
#define ENVELOPE_TAG_OFF	(ENVELOPE_IV_OFF + GCM_IV_LEN)
#define ENVELOPE_HEADER_LEN (ENVELOPE_TAG_OFF + GCM_TAG_LEN)	/* 32 */
#define TEXT_PREFIX			"pgt1:"
#define TEXT_PREFIX_LEN		5
#define BASE64_LEN(n)		(4 * (((uint64) (n) + 2) / 3))	/* exact, padded */

#define WRAP_VERSION		0x01
#define WRAP_AAD_MAGIC		"PGK"
#define WRAPPED_KEY_LEN		(1 + GCM_IV_LEN + GCM_TAG_LEN + KEY_LEN)	/* 61 */

#define MAX_SUBJECT_CHARS	200
#define SUBJECT_KEY_TABLE	"subject_key"

/* size of the scratch buffer used to authenticate without keeping output */
#define SCRATCH_LEN			8192

typedef struct MasterKey
{
	bool		loaded;
	uint8		key[KEY_LEN];
	char		fingerprint[FINGERPRINT_HEX_LEN + 1];
} MasterKey;

/* SHA-256 of a subject: the data key cache's key */
typedef struct SubjectDigest
{
	uint8		bytes[32];
} SubjectDigest;

typedef struct DataKeyEntry
{
	SubjectDigest digest;
	uint8		key[KEY_LEN];
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
#define SH_KEY_TYPE		SubjectDigest
#define SH_KEY			digest
#define SH_HASH_KEY(tb, k)	digest_hash(&(k))
#define SH_EQUAL(tb, a, b)	(memcmp((a).bytes, (b).bytes, 32) == 0)
#define SH_SCOPE		static inline
#define SH_USE_NONDEFAULT_ALLOCATOR
#define SH_DECLARE
#define SH_DEFINE

/* a digest's first bytes are as uniform as any hash of them */
static inline uint32
digest_hash(const SubjectDigest *d)
{
	uint32		h;

	memcpy(&h, d->bytes, sizeof(h));
	return h;
}

#include "lib/simplehash.h"

typedef enum DataKeyStatus
{
	DK_FOUND,
	DK_MISSING,					/* no data key was ever created */
	DK_DESTROYED				/* crypto-shredded */
} DataKeyStatus;

typedef enum EnvelopeStatus
{
	ENV_NOT_OURS,				/* no prefix/magic, or too short */
	ENV_MALFORMED,				/* our prefix, but not a valid envelope */
	ENV_UNKNOWN_VERSION,		/* our magic, a format version we don't know */
	ENV_OK
} EnvelopeStatus;

/* settings */
static char *master_key_file = NULL;
static char *master_key_command = NULL;
static char *previous_master_key_file = NULL;
static int	key_cache_size = 1048576;	/* data keys cached per backend */

/* backend-local state */
static MasterKey current_master;
static MasterKey previous_master;
static MemoryContext DataKeyContext = NULL;
static datakeys_hash *DataKeyCache = NULL;
static uint64 data_key_flushes = 0;
static int	n_provisional_keys = 0;
static bool callbacks_registered = false;
static Oid	subject_key_relid = InvalidOid;
static Oid	subject_key_owner = InvalidOid;

static const MasterKey *get_current_master_key(void);
static const MasterKey *get_previous_master_key(void);
static DataKeyStatus get_data_key(const char *subject, bool create, uint8 *key);

PFG_SQL_FUNCTION(profile_guard_encrypt_text);
PFG_SQL_FUNCTION(profile_guard_encrypt_bytea);
PFG_SQL_FUNCTION(profile_guard_decrypt_text);
PFG_SQL_FUNCTION(profile_guard_decrypt_bytea);
PFG_SQL_FUNCTION(profile_guard_ciphertext_kind_text);
PFG_SQL_FUNCTION(profile_guard_ciphertext_kind_bytea);
PFG_SQL_FUNCTION(profile_guard_destroy_subject_key);
PFG_SQL_FUNCTION(profile_guard_rotate_master_key);


/*
 * Settings.  Key sources are fixed at server start, and hidden from
 * non-superusers.
 */
void
pfg_crypto_define_settings(void)
{
	DefineCustomStringVariable("profile_guard.master_key_file",
							   "File holding the 256-bit master key as 64 hexadecimal digits.",
							   "The master key wraps the per-subject data keys that encrypt sensitive tags.",
							   &master_key_file,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("profile_guard.master_key_command",
							   "Shell command whose output is the 256-bit master key as 64 hexadecimal digits.",
							   "Used instead of profile_guard.master_key_file.",
							   &master_key_command,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("profile_guard.previous_master_key_file",
							   "File holding the previous master key, during a master key rotation.",
							   "profile_guard.rotate_master_key() re-wraps data keys from this key to the current one.",
							   &previous_master_key_file,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("profile_guard.key_cache_size",
							"Most unwrapped data keys a backend keeps in memory.",
							"About 100 bytes each. A scan reading the sensitive tags of more subjects than this fetches and unwraps keys again.",
							&key_cache_size,
							1048576, 1024, INT_MAX / 2,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}


/* ---------- OpenSSL primitives (never ereport: callers do, after wiping) */

static const char *
openssl_error(void)
{
	unsigned long e = ERR_get_error();
	static char buf[256];

	if (e == 0)
		return "no OpenSSL error reported";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static bool
sha256(const void *data, size_t len, uint8 *out)
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
		outlen == 32;
}

static void
random_bytes(uint8 *buf, int len)
{
	if (RAND_bytes(buf, len) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes: %s", openssl_error())));
}

/*
 * A fresh random IV.  IVs are drawn from the same CSPRNG, a few hundred at
 * a time (one RAND_bytes call costs more than the encryption of a short
 * value); the pool belongs to the process that filled it, so a forked
 * child never reuses its parent's.
 */
#define IV_POOL_BYTES (GCM_IV_LEN * 340)

static void
random_iv(uint8 *iv)
{
	static uint8 pool[IV_POOL_BYTES];
	static int	pool_left = 0;
	static int	pool_pid = 0;

	if (pool_left < GCM_IV_LEN || pool_pid != MyProcPid)
	{
		random_bytes(pool, IV_POOL_BYTES);
		pool_left = IV_POOL_BYTES;
		pool_pid = MyProcPid;
	}
	pool_left -= GCM_IV_LEN;
	memcpy(iv, pool + pool_left, GCM_IV_LEN);
	explicit_bzero(pool + pool_left, GCM_IV_LEN);
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
 * The IV is GCM_IV_LEN (12) bytes, GCM's default length.
 */
static bool
gcm_encrypt(const uint8 *key, const uint8 *iv,
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
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN, tag) != 1)
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
static bool
gcm_decrypt(const uint8 *key, const uint8 *iv,
			const uint8 *aad, int aadlen,
			const uint8 *in, int inlen,
			const uint8 *tag, uint8 *out)
{
	EVP_CIPHER_CTX *ctx = gcm_context();
	const EVP_CIPHER *cipher = gcm_cipher();
	uint8		scratch[SCRATCH_LEN];
	uint8		tagcopy[GCM_TAG_LEN];
	int			len;
	bool		ok = false;

	memcpy(tagcopy, tag, GCM_TAG_LEN);
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

	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN, tagcopy) != 1)
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


/* ---------- master key */

static int
hex_digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Parse 64 hex digits, optionally followed by white space (a newline).
 * Returns false, leaving key wiped, when the text is anything else.
 */
static bool
parse_hex_key(const char *text, size_t len, uint8 *key)
{
	size_t		i;

	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
					   text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	if (len != KEY_HEX_LEN)
		return false;

	for (i = 0; i < KEY_LEN; i++)
	{
		int			hi = hex_digit_value(text[2 * i]);
		int			lo = hex_digit_value(text[2 * i + 1]);

		if (hi < 0 || lo < 0)
		{
			explicit_bzero(key, KEY_LEN);
			return false;
		}
		key[i] = (uint8) ((hi << 4) | lo);
	}
	return true;
}

static void
read_key_file(const char *path, const char *setting, uint8 *key)
{
	char		buf[KEY_TEXT_MAX];
	FILE	   *f;
	size_t		n;
	bool		read_error;
	bool		ok;

	f = AllocateFile(path, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not open master key file \"%s\": %m", path),
				 errhint("Check the setting %s.", setting)));

	n = fread(buf, 1, sizeof(buf), f);
	read_error = ferror(f) != 0;
	FreeFile(f);

	ok = !read_error && n < sizeof(buf) && parse_hex_key(buf, n, key);
	explicit_bzero(buf, sizeof(buf));

	if (read_error)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not read master key file \"%s\"", path),
				 errhint("Check the setting %s.", setting)));
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("master key file \"%s\" does not contain a 256-bit key", path),
				 errdetail("The file must contain exactly 64 hexadecimal digits, optionally followed by a newline."),
				 errhint("Check the setting %s.", setting)));
}

static void
run_key_command(const char *command, uint8 *key)
{
	char		buf[KEY_TEXT_MAX];
	FILE	   *f;
	size_t		n;
	int			rc;
	bool		ok;

	f = OpenPipeStream(command, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not run the master key command: %m"),
				 errhint("Check the setting profile_guard.master_key_command.")));

	n = fread(buf, 1, sizeof(buf), f);
	rc = ClosePipeStream(f);

	ok = n < sizeof(buf) && parse_hex_key(buf, n, key);
	explicit_bzero(buf, sizeof(buf));

	/* too much output kills the command with SIGPIPE: report the output */
	if (rc != 0 && n < sizeof(buf))
	{
		explicit_bzero(key, KEY_LEN);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the master key command failed"),
				 rc == -1 ? errdetail("Could not close the pipe to the command: %m.") :
				 errdetail_internal("%s", wait_result_to_str(rc)),
				 errhint("Check the setting profile_guard.master_key_command.")));
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the master key command did not print a 256-bit key"),
				 errdetail("The command must print exactly 64 hexadecimal digits, optionally followed by a newline."),
				 errhint("Check the setting profile_guard.master_key_command.")));
}

static void
set_master_key(MasterKey *mk, uint8 *key)
{
	uint8		digest[32];
	unsigned int digestlen = 0;
	int			i;

	/* a one-off context, wiped by OpenSSL: it digests key material */
	if (EVP_Digest(key, KEY_LEN, digest, &digestlen, EVP_sha256(), NULL) != 1 ||
		digestlen != 32)
	{
		explicit_bzero(key, KEY_LEN);
		elog(ERROR, "could not compute the master key fingerprint: %s", openssl_error());
	}
	for (i = 0; i < FINGERPRINT_BYTES; i++)
		snprintf(mk->fingerprint + 2 * i, 3, "%02x", digest[i]);
	explicit_bzero(digest, sizeof(digest));
	memcpy(mk->key, key, KEY_LEN);
	explicit_bzero(key, KEY_LEN);
	mk->loaded = true;
}

static const MasterKey *
get_current_master_key(void)
{
	uint8		key[KEY_LEN];
	bool		have_file = master_key_file != NULL && master_key_file[0] != '\0';
	bool		have_command = master_key_command != NULL && master_key_command[0] != '\0';

	if (current_master.loaded)
		return &current_master;

	if (!have_file && !have_command)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no master key is configured"),
				 errdetail("Sensitive tag values are encrypted with keys wrapped by the master key."),
				 errhint("Set profile_guard.master_key_file or profile_guard.master_key_command in postgresql.conf and restart the server.")));
	if (have_file && have_command)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("both profile_guard.master_key_file and profile_guard.master_key_command are set"),
				 errhint("Set only one of them and restart the server.")));

	if (have_file)
		read_key_file(master_key_file, "profile_guard.master_key_file", key);
	else
		run_key_command(master_key_command, key);
	set_master_key(&current_master, key);
	return &current_master;
}

/* NULL when no previous master key is configured */
static const MasterKey *
get_previous_master_key(void)
{
	uint8		key[KEY_LEN];

	if (previous_master.loaded)
		return &previous_master;
	if (previous_master_key_file == NULL || previous_master_key_file[0] == '\0')
		return NULL;

	read_key_file(previous_master_key_file, "profile_guard.previous_master_key_file", key);
	set_master_key(&previous_master, key);
	return &previous_master;
}

static bool
fingerprint_matches(const MasterKey *mk, const char *fingerprint)
{
	return mk != NULL && strlen(fingerprint) == FINGERPRINT_HEX_LEN &&
		CRYPTO_memcmp(mk->fingerprint, fingerprint, FINGERPRINT_HEX_LEN) == 0;
}


/* ---------- wrapping data keys */

static int
wrap_aad(const char *subject, uint8 **aad)
{
	size_t		slen = strlen(subject);
	uint8	   *buf = palloc(4 + slen);

	memcpy(buf, WRAP_AAD_MAGIC, 3);
	buf[3] = WRAP_VERSION;
	memcpy(buf + 4, subject, slen);
	*aad = buf;
	return (int) (4 + slen);
}

static void
wrap_data_key(const uint8 *data_key, const char *subject,
			  const MasterKey *mk, uint8 *wrapped)
{
	uint8	   *aad;
	int			aadlen = wrap_aad(subject, &aad);

	wrapped[0] = WRAP_VERSION;
	random_iv(wrapped + 1);
	if (!gcm_encrypt(mk->key, wrapped + 1, aad, aadlen, data_key, KEY_LEN,
					 wrapped + 1 + GCM_IV_LEN + GCM_TAG_LEN,
					 wrapped + 1 + GCM_IV_LEN))
		elog(ERROR, "could not wrap a data key: %s", openssl_error());
	pfree(aad);
}

static bool
unwrap_data_key(const uint8 *wrapped, int len, const char *subject,
				const MasterKey *mk, uint8 *data_key)
{
	uint8	   *aad;
	int			aadlen;
	bool		ok;

	if (len != WRAPPED_KEY_LEN || wrapped[0] != WRAP_VERSION)
		return false;
	aadlen = wrap_aad(subject, &aad);
	ok = gcm_decrypt(mk->key, wrapped + 1, aad, aadlen,
					 wrapped + 1 + GCM_IV_LEN + GCM_TAG_LEN, KEY_LEN,
					 wrapped + 1 + GCM_IV_LEN, data_key);
	if (!ok)
		explicit_bzero(data_key, KEY_LEN);
	pfree(aad);
	return ok;
}


/* ---------- the data key cache */

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
 * Wipe and drop every cached key.  forget_table: also look subject_key up
 * again (it may have been dropped); entries are only ever added while its
 * OID is known, so that its invalidations reach them.
 */
static void
data_key_cache_flush(bool forget_table)
{
	if (DataKeyCache != NULL)
	{
		/* every slot: deletions leave copies in slots marked empty */
		explicit_bzero(DataKeyCache->data,
					   sizeof(DataKeyEntry) * (Size) DataKeyCache->size);
		DataKeyCache = NULL;
		MemoryContextReset(DataKeyContext);
	}
	n_provisional_keys = 0;
	data_key_flushes++;
	if (forget_table)
	{
		subject_key_relid = InvalidOid;
		subject_key_owner = InvalidOid;
	}
}

/* invalidation.c: subject_key changed, or every relation may have */
void
pfg_data_key_relcache_invalidated(Oid relid)
{
	if (relid == InvalidOid || relid == subject_key_relid)
		data_key_cache_flush(true);
}

static void
remove_entry(DataKeyEntry *entry)
{
	if (entry->create_subid != InvalidSubTransactionId)
		n_provisional_keys--;
	explicit_bzero(entry->key, KEY_LEN);
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
		callbacks_registered = true;
	}
	if (DataKeyCache != NULL)
		return;

	DataKeyCache = datakeys_create(DataKeyContext, 256, NULL);
}

static void
hash_subject(const char *subject, SubjectDigest *hash)
{
	if (!sha256(subject, strlen(subject), hash->bytes))
		elog(ERROR, "could not hash a subject: %s", openssl_error());
}

/* the OID of profile_guard.subject_key, and its owner */
static Oid
subject_key_table(Oid *owner)
{
	if (!OidIsValid(subject_key_relid))
	{
		Oid			nsp = get_namespace_oid(PFG_SCHEMA_NAME, true);
		Oid			relid = InvalidOid;
		HeapTuple	tuple;

		if (OidIsValid(nsp))
			relid = get_relname_relid(SUBJECT_KEY_TABLE, nsp);
		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension profile_guard is not installed in this database"),
					 errhint("Run CREATE EXTENSION profile_guard.")));

		tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for relation %u", relid);
		subject_key_owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
		ReleaseSysCache(tuple);
		subject_key_relid = relid;
	}
	if (owner)
		*owner = subject_key_owner;
	return subject_key_relid;
}

/*
 * The queries below run as the owner of subject_key (the extension's
 * owner): the caller, who may be any role writing a guarded table, has no
 * rights on it.  Every operator is schema-qualified, so the caller's
 * search_path cannot redirect them.  An error restores the user id through
 * transaction abort.
 */
static void
begin_key_access(Oid *save_userid, int *save_sec_context)
{
	Oid			owner;

	subject_key_table(&owner);
	GetUserIdAndSecContext(save_userid, save_sec_context);
	SetUserIdAndSecContext(owner, *save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
end_key_access(Oid save_userid, int save_sec_context)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * Look-ups of one subject's key always go through subject_key's primary
 * key (see pfg_plan_for_key_lookups).  Returns the GUC nest level to pass to
 * end_point_lookups().
 */
static int
begin_point_lookups(void)
{
	int			level = NewGUCNestLevel();

	pfg_plan_for_key_lookups();
	return level;
}

static void
end_point_lookups(int level)
{
	AtEOXact_GUC(true, level);
}

/*
 * Plans of the per-subject key queries, prepared once per backend; the plan
 * cache re-plans them if subject_key changes.
 */
static SPIPlanPtr read_key_plan = NULL;
static SPIPlanPtr create_key_plan = NULL;
static SPIPlanPtr check_key_plan = NULL;

static void
master_key_mismatch(const char *subject, const char *fingerprint,
					const MasterKey *current)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("master key does not match the key that wrapped the data keys"),
			 errdetail("The data key of subject \"%s\" was wrapped by the master key with fingerprint %s; the configured master key has fingerprint %s.",
					   subject, fingerprint, current->fingerprint),
			 errhint("Configure the master key that wrapped the data keys in profile_guard.master_key_file or profile_guard.master_key_command. To rotate keys, name the old key in profile_guard.previous_master_key_file and call profile_guard.rotate_master_key().")));
}

/*
 * Read subject's row of subject_key (in SPI, as its owner).  On DK_FOUND the
 * unwrapped data key is in key, and *own_xact tells whether the row was
 * written by the current transaction (so that a rollback takes it away).  Each read takes a fresh snapshot, so a key
 * another session has just committed is found; in parallel mode, where the
 * command counter cannot advance, the statement's snapshot is used.
 */
static DataKeyStatus
read_data_key(const char *subject, uint8 *key, bool *own_xact)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			rc;
	HeapTuple	tuple;
	TupleDesc	tupdesc;
	bool		isnull;
	Datum		d;
	bytea	   *wrapped;
	char	   *fingerprint;
	const MasterKey *mk;
	const MasterKey *current;

	args[0] = CStringGetTextDatum(subject);
	if (read_key_plan == NULL)
		read_key_plan = pfg_keep_catalog_plan(
			"SELECT wrapped_key, master_fingerprint, xmin"
			"  FROM " PFG_SCHEMA_NAME "." SUBJECT_KEY_TABLE
			" WHERE subject OPERATOR(pg_catalog.=) $1",
			1, argtypes);
	rc = SPI_execute_plan(read_key_plan, args, NULL, IsInParallelMode(), 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the data key: SPI error %d", rc);
	if (SPI_processed == 0)
		return DK_MISSING;

	tuple = SPI_tuptable->vals[0];
	tupdesc = SPI_tuptable->tupdesc;
	d = SPI_getbinval(tuple, tupdesc, 3, &isnull);
	*own_xact = !isnull &&
		TransactionIdIsCurrentTransactionId(DatumGetTransactionId(d));
	d = SPI_getbinval(tuple, tupdesc, 1, &isnull);
	if (isnull)
		return DK_DESTROYED;
	wrapped = DatumGetByteaPP(d);
	fingerprint = SPI_getvalue(tuple, tupdesc, 2);
	if (fingerprint == NULL)
		fingerprint = "";

	current = get_current_master_key();
	if (fingerprint_matches(current, fingerprint))
		mk = current;
	else if (fingerprint_matches(get_previous_master_key(), fingerprint))
		mk = get_previous_master_key();
	else
	{
		master_key_mismatch(subject, fingerprint, current);
		mk = NULL;				/* keep compiler quiet */
	}

	if (!unwrap_data_key((uint8 *) VARDATA_ANY(wrapped), VARSIZE_ANY_EXHDR(wrapped),
						 subject, mk, key))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not unwrap the data key of subject \"%s\"", subject),
				 errdetail("The wrapped key does not authenticate under the master key whose fingerprint it records; its row in profile_guard.subject_key may have been altered.")));
	return DK_FOUND;
}

/*
 * Before wrapping a new data key, make sure the configured master key is
 * the one the existing data keys were wrapped by (or the previous one,
 * during a rotation): a key wrapped by a wrong master key would make every
 * value written with it unreadable once the right key is back.  All keys
 * carry the same fingerprint outside a rotation, so one row tells; checked
 * once per backend.
 */
static bool master_key_checked = false;

static void
check_master_key_matches(const MasterKey *current)
{
	char	   *fingerprint;

	if (master_key_checked)
		return;
	if (check_key_plan == NULL)
		check_key_plan = pfg_keep_catalog_plan(
			"SELECT master_fingerprint FROM " PFG_SCHEMA_NAME "." SUBJECT_KEY_TABLE
			" WHERE wrapped_key IS NOT NULL LIMIT 1",
			0, NULL);
	if (SPI_execute_plan(check_key_plan, NULL, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the data keys");
	if (SPI_processed == 1 &&
		(fingerprint = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)) != NULL &&
		!fingerprint_matches(current, fingerprint) &&
		!fingerprint_matches(get_previous_master_key(), fingerprint))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("master key does not match the key that wrapped the data keys"),
				 errdetail("Existing data keys were wrapped by the master key with fingerprint %s; the configured master key has fingerprint %s. No new data key is made under it.",
						   fingerprint, current->fingerprint),
				 errhint("Configure the master key that wrapped the data keys in profile_guard.master_key_file or profile_guard.master_key_command.")));
	master_key_checked = true;
}

/*
 * Make a data key for subject.  Two sessions may race: ON CONFLICT DO
 * NOTHING lets one win, and the loser reads the winner's key.  Sets
 * *own_xact when ours was inserted.
 */
static DataKeyStatus
create_data_key(const char *subject, uint8 *key, bool *own_xact)
{
	Oid			argtypes[3] = {TEXTOID, BYTEAOID, TEXTOID};
	Datum		args[3];
	const MasterKey *mk = get_current_master_key();
	bytea	   *wrapped = palloc(VARHDRSZ + WRAPPED_KEY_LEN);
	DataKeyStatus status;
	int			rc;

	check_master_key_matches(mk);
	random_bytes(key, KEY_LEN);
	SET_VARSIZE(wrapped, VARHDRSZ + WRAPPED_KEY_LEN);
	wrap_data_key(key, subject, mk, (uint8 *) VARDATA(wrapped));

	args[0] = CStringGetTextDatum(subject);
	args[1] = PointerGetDatum(wrapped);
	args[2] = CStringGetTextDatum(mk->fingerprint);
	if (create_key_plan == NULL)
		create_key_plan = pfg_keep_catalog_plan(
			"INSERT INTO " PFG_SCHEMA_NAME "." SUBJECT_KEY_TABLE
			" (subject, wrapped_key, master_fingerprint, created_at)"
			" VALUES ($1, $2, $3, pg_catalog.now())"
			" ON CONFLICT (subject) DO NOTHING",
			3, argtypes);
	rc = SPI_execute_plan(create_key_plan, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not store a data key: SPI error %d", rc);
	if (SPI_processed == 1)
	{
		*own_xact = true;
		return DK_FOUND;
	}

	/* another session created it first */
	explicit_bzero(key, KEY_LEN);
	status = read_data_key(subject, key, own_xact);
	if (status == DK_MISSING)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent creation of a data key"),
				 errdetail("Another transaction created the data key of subject \"%s\" after this transaction's snapshot was taken.", subject),
				 errhint("The transaction might succeed if retried.")));
	return status;
}

/*
 * The data key of subject, into key (which the caller wipes).  With create,
 * a subject without one gets one.
 */
static DataKeyStatus
get_data_key(const char *subject, bool create, uint8 *key)
{
	SubjectDigest hash;
	DataKeyEntry *entry;
	DataKeyStatus status;
	uint64		flushes;
	bool		own_xact = false;
	Oid			save_userid;
	int			save_sec_context;

	hash_subject(subject, &hash);
	data_key_cache_init();
	entry = datakeys_lookup(DataKeyCache, hash);
	if (entry != NULL)
	{
		memcpy(key, entry->key, KEY_LEN);
		return DK_FOUND;
	}

	/* check the key source before touching the table */
	get_current_master_key();

	flushes = data_key_flushes;
	PG_TRY();
	{
		int			guc_level;

		begin_key_access(&save_userid, &save_sec_context);
		guc_level = begin_point_lookups();
		status = read_data_key(subject, key, &own_xact);
		if (status == DK_MISSING && create)
			status = create_data_key(subject, key, &own_xact);
		end_point_lookups(guc_level);
		end_key_access(save_userid, save_sec_context);
	}
	PG_CATCH();
	{
		explicit_bzero(key, KEY_LEN);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/*
	 * Cache it unless an invalidation arrived meanwhile: what we read may
	 * already be stale.
	 */
	if (status == DK_FOUND && flushes == data_key_flushes)
	{
		bool		found;

		/* bound the cache: start afresh rather than grow without limit */
		if (DataKeyCache != NULL &&
			DataKeyCache->members >= (uint32) key_cache_size)
			data_key_cache_flush(false);
		data_key_cache_init();
		entry = datakeys_insert(DataKeyCache, hash, &found);
		memcpy(entry->key, key, KEY_LEN);
		entry->create_subid = InvalidSubTransactionId;
		if (own_xact)
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
	return status;
}


/* ---------- the envelope */

static void
check_subject(const char *subject)
{
	if (subject[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subject must not be empty")));
	if (pg_mbstrlen(subject) > MAX_SUBJECT_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subject identifier is too long"),
				 errdetail("A subject identifier is at most %d characters long.",
						   MAX_SUBJECT_CHARS)));
}

static void
check_subject_and_tag(const char *subject, const char *tag)
{
	check_subject(subject);
	if (tag[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tag name must not be empty")));
}

static void
check_type(Oid typid)
{
	if (typid != TEXTOID && typid != BYTEAOID)
		elog(ERROR, "profile_guard can only encrypt text and bytea values, not type %u",
			 typid);
}

/* subject | 0x00 | tag | 0x00 | version */
static int
envelope_aad(const char *subject, const char *tag, uint8 **aad)
{
	size_t		slen = strlen(subject);
	size_t		tlen = strlen(tag);
	uint8	   *buf = palloc(slen + tlen + 3);

	memcpy(buf, subject, slen);
	buf[slen] = 0x00;
	memcpy(buf + slen + 1, tag, tlen);
	buf[slen + 1 + tlen] = 0x00;
	buf[slen + tlen + 2] = ENVELOPE_VERSION;
	*aad = buf;
	return (int) (slen + tlen + 3);
}

/*
 * Find the binary envelope in a stored value.  For text, it is decoded into
 * a palloc'd buffer.
 */
static EnvelopeStatus
parse_envelope(Datum value, Oid typid, const uint8 **env, int *envlen)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
	const char *data = VARDATA_ANY(v);
	int			len = VARSIZE_ANY_EXHDR(v);
	const uint8 *bin;
	int			binlen;

	if (typid == TEXTOID)
	{
		char	   *decoded;
		int			b64len = len - TEXT_PREFIX_LEN;

		if (len < TEXT_PREFIX_LEN + BASE64_LEN(ENVELOPE_HEADER_LEN) ||
			memcmp(data, TEXT_PREFIX, TEXT_PREFIX_LEN) != 0)
			return ENV_NOT_OURS;
		decoded = palloc(pg_b64_dec_len(b64len) + 1);
		binlen = pg_b64_decode(data + TEXT_PREFIX_LEN, b64len,
							   decoded, pg_b64_dec_len(b64len) + 1);
		if (binlen < ENVELOPE_HEADER_LEN ||
			memcmp(decoded, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN) != 0)
			return ENV_MALFORMED;
		bin = (const uint8 *) decoded;
	}
	else
	{
		if (len < ENVELOPE_HEADER_LEN ||
			memcmp(data, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN) != 0)
			return ENV_NOT_OURS;
		bin = (const uint8 *) data;
		binlen = len;
	}

	if (bin[ENVELOPE_MAGIC_LEN] != ENVELOPE_VERSION)
		return ENV_UNKNOWN_VERSION;
	*env = bin;
	*envlen = binlen;
	return ENV_OK;
}

static void
report_not_decryptable(const char *tag, EnvelopeStatus status)
{
	const char *detail;

	switch (status)
	{
		case ENV_NOT_OURS:
			detail = "The stored value is not a profile_guard ciphertext.";
			break;
		case ENV_MALFORMED:
			detail = "The stored value is not a well-formed profile_guard ciphertext.";
			break;
		case ENV_UNKNOWN_VERSION:
			detail = "The stored value uses a ciphertext format version this version of profile_guard does not know.";
			break;
		default:
			detail = "The ciphertext does not authenticate for this subject and tag; it may have been copied from another row or column.";
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("could not decrypt value of tag \"%s\"", tag),
			 errdetail_internal("%s", detail)));
}

static void
report_erased(const char *subject, const char *tag, bool encrypting)
{
	if (encrypting)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data of subject \"%s\" were erased", subject),
				 errdetail("The subject's data key was destroyed (crypto-shredded), so no new value of tag \"%s\" can be stored for this subject.", tag)));
	else
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data of subject \"%s\" were erased", subject),
				 errdetail("The subject's data key was destroyed (crypto-shredded), so the value of tag \"%s\" can no longer be decrypted.", tag)));
}

Datum
pfg_crypto_encrypt_datum(Datum value, Oid typid, const char *subject, const char *tag)
{
	struct varlena *v;
	const uint8 *plain;
	int			plainlen;
	uint64		envlen;
	uint64		storedlen;
	uint8		key[KEY_LEN];
	uint8	   *aad;
	int			aadlen;
	bytea	   *envdatum;
	uint8	   *env;
	bool		ok;

	check_type(typid);
	check_subject_and_tag(subject, tag);

	v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
	plain = (const uint8 *) VARDATA_ANY(v);
	plainlen = VARSIZE_ANY_EXHDR(v);

	envlen = (uint64) ENVELOPE_HEADER_LEN + plainlen;
	storedlen = typid == BYTEAOID ? envlen :
		TEXT_PREFIX_LEN + BASE64_LEN(envlen);
	if (storedlen + VARHDRSZ + 1 > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value of tag \"%s\" is too large to encrypt", tag),
				 errdetail("Its ciphertext would exceed the maximum size of a value.")));

	envdatum = palloc(VARHDRSZ + envlen);
	SET_VARSIZE(envdatum, VARHDRSZ + envlen);
	env = (uint8 *) VARDATA(envdatum);
	memcpy(env, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN);
	env[ENVELOPE_MAGIC_LEN] = ENVELOPE_VERSION;
	random_iv(env + ENVELOPE_IV_OFF);
	aadlen = envelope_aad(subject, tag, &aad);

	if (get_data_key(subject, true, key) == DK_DESTROYED)
		report_erased(subject, tag, true);

	ok = gcm_encrypt(key, env + ENVELOPE_IV_OFF, aad, aadlen, plain, plainlen,
					 env + ENVELOPE_HEADER_LEN, env + ENVELOPE_TAG_OFF);
	explicit_bzero(key, sizeof(key));
	if (!ok)
		elog(ERROR, "could not encrypt a value: %s", openssl_error());
	pfree(aad);

	if (typid == BYTEAOID)
		return PointerGetDatum(envdatum);
	else
	{
		text	   *result = palloc(VARHDRSZ + storedlen);
		char	   *dst = VARDATA(result);
		int			n;

		memcpy(dst, TEXT_PREFIX, TEXT_PREFIX_LEN);
		n = pg_b64_encode((const char *) env, (int) envlen,
						  dst + TEXT_PREFIX_LEN, (int) (storedlen - TEXT_PREFIX_LEN));
		if (n < 0)
			elog(ERROR, "could not encode a ciphertext in base64");
		SET_VARSIZE(result, VARHDRSZ + TEXT_PREFIX_LEN + n);
		pfree(envdatum);
		return PointerGetDatum(result);
	}
}

Datum
pfg_crypto_decrypt_datum(Datum value, Oid typid, const char *subject, const char *tag)
{
	const uint8 *env;
	int			envlen;
	EnvelopeStatus es;
	DataKeyStatus ks;
	uint8		key[KEY_LEN];
	uint8	   *aad;
	int			aadlen;
	struct varlena *result;
	int			plainlen;
	bool		ok;

	check_type(typid);
	check_subject_and_tag(subject, tag);

	es = parse_envelope(value, typid, &env, &envlen);
	if (es != ENV_OK)
		report_not_decryptable(tag, es);

	ks = get_data_key(subject, false, key);
	if (ks == DK_DESTROYED)
		report_erased(subject, tag, false);
	if (ks == DK_MISSING)
		report_not_decryptable(tag, ENV_OK);

	plainlen = envlen - ENVELOPE_HEADER_LEN;
	result = palloc(VARHDRSZ + plainlen);
	SET_VARSIZE(result, VARHDRSZ + plainlen);
	aadlen = envelope_aad(subject, tag, &aad);
	ok = gcm_decrypt(key, env + ENVELOPE_IV_OFF, aad, aadlen,
					 env + ENVELOPE_HEADER_LEN, plainlen,
					 env + ENVELOPE_TAG_OFF, (uint8 *) VARDATA(result));
	explicit_bzero(key, sizeof(key));
	pfree(aad);
	if (!ok)
	{
		/* never let unauthenticated plaintext escape */
		explicit_bzero(VARDATA(result), plainlen);
		pfree(result);
		report_not_decryptable(tag, ENV_OK);
	}
	return PointerGetDatum(result);
}

/*
 * Does a stored value carry our envelope's prefix (text) or magic (bytea)?
 * Cheap: nothing is decoded or authenticated.
 */
bool
pfg_crypto_is_envelope(Datum value, Oid typid)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(value);
	char		head[TEXT_PREFIX_LEN];
	int			want = typid == TEXTOID ? TEXT_PREFIX_LEN : ENVELOPE_MAGIC_LEN;

	if (VARATT_IS_EXTENDED(v))
	{
		struct varlena *slice = pg_detoast_datum_slice(v, 0, want);

		if (VARSIZE_ANY_EXHDR(slice) < want)
			return false;
		memcpy(head, VARDATA_ANY(slice), want);
	}
	else
	{
		if (VARSIZE_ANY_EXHDR(v) < want)
			return false;
		memcpy(head, VARDATA_ANY(v), want);
	}
	return typid == TEXTOID ? memcmp(head, TEXT_PREFIX, TEXT_PREFIX_LEN) == 0 :
		memcmp(head, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN) == 0;
}

/*
 * Errors only for configuration problems (no usable master key); anything
 * about the value itself is an answer.  A subject whose key was destroyed
 * has no ciphertext of ours any more: CT_FOREIGN.
 */
CiphertextKind
pfg_crypto_classify_datum(Datum value, Oid typid, const char *subject, const char *tag)
{
	const uint8 *env;
	int			envlen;
	EnvelopeStatus es;
	uint8		key[KEY_LEN];
	uint8	   *aad;
	int			aadlen;
	bool		ok;

	check_type(typid);
	check_subject_and_tag(subject, tag);

	es = parse_envelope(value, typid, &env, &envlen);
	if (es == ENV_NOT_OURS)
		return CT_PLAINTEXT;
	if (es != ENV_OK)
		return CT_FOREIGN;
	if (get_data_key(subject, false, key) != DK_FOUND)
		return CT_FOREIGN;

	aadlen = envelope_aad(subject, tag, &aad);
	ok = gcm_decrypt(key, env + ENVELOPE_IV_OFF, aad, aadlen,
					 env + ENVELOPE_HEADER_LEN, envlen - ENVELOPE_HEADER_LEN,
					 env + ENVELOPE_TAG_OFF, NULL);
	explicit_bzero(key, sizeof(key));
	pfree(aad);
	return ok ? CT_OURS : CT_FOREIGN;
}

/*
 * Crypto-shredding: forget the subject's data key, so every copy of its
 * ciphertext (backups, replicas, dumps) becomes unreadable.  A subject that
 * never had a key gets a tombstone row, so none is made for it later.  The
 * old row version keeps the wrapped key, under the master key, until VACUUM.
 */
void
pfg_crypto_destroy_subject_key(const char *subject)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	SubjectDigest hash;
	DataKeyEntry *entry;
	Oid			relid;
	Oid			save_userid;
	int			save_sec_context;
	int			rc;

	check_subject(subject);

	begin_key_access(&save_userid, &save_sec_context);
	relid = subject_key_table(NULL);
	args[0] = CStringGetTextDatum(subject);
	rc = SPI_execute_with_args("INSERT INTO " PFG_SCHEMA_NAME "." SUBJECT_KEY_TABLE " AS k"
							   " (subject, wrapped_key, master_fingerprint, created_at, destroyed_at)"
							   " VALUES ($1, NULL, NULL, pg_catalog.now(), pg_catalog.now())"
							   " ON CONFLICT (subject) DO UPDATE"
							   " SET wrapped_key = NULL, destroyed_at = pg_catalog.now()"
							   " WHERE k.destroyed_at IS NULL",
							   1, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not destroy a data key: SPI error %d", rc);
	end_key_access(save_userid, save_sec_context);

	/* wipe our copy now, and everybody's at commit */
	hash_subject(subject, &hash);
	if (DataKeyCache != NULL)
	{
		entry = datakeys_lookup(DataKeyCache, hash);
		if (entry != NULL)
			remove_entry(entry);
	}
	CacheInvalidateRelcacheByRelid(relid);
}

/*
 * A 256-bit secret for another part of the extension, derived from the
 * master key as HMAC-SHA256(master key, label): the erasure log's keyed
 * subject hashes use it.  The caller wipes out.
 */
void
pfg_crypto_derive_key(const char *label, uint8 *out)
{
	const MasterKey *mk = get_current_master_key();
	unsigned int len = KEY_LEN;

	if (HMAC(EVP_sha256(), mk->key, KEY_LEN, (const unsigned char *) label,
			 strlen(label), out, &len) == NULL || len != KEY_LEN)
		elog(ERROR, "could not derive a key: %s", openssl_error());
}

/* true when the subject's data key was destroyed (its data were erased) */
bool
pfg_crypto_subject_key_destroyed(const char *subject)
{
	uint8		key[KEY_LEN];
	DataKeyStatus status;

	check_subject(subject);
	status = get_data_key(subject, false, key);
	explicit_bzero(key, sizeof(key));
	return status == DK_DESTROYED;
}


/* ---------- SQL functions */

static Datum
encrypt_sql(FunctionCallInfo fcinfo, Oid typid)
{
	char	   *subject;
	char	   *tag;

	pfg_require_preload();
	subject = text_to_cstring(PG_GETARG_TEXT_PP(0));
	tag = text_to_cstring(PG_GETARG_TEXT_PP(1));
	return pfg_crypto_encrypt_datum(PG_GETARG_DATUM(2), typid, subject, tag);
}

static Datum
decrypt_sql(FunctionCallInfo fcinfo, Oid typid)
{
	char	   *subject;
	char	   *tag;

	pfg_require_preload();
	subject = text_to_cstring(PG_GETARG_TEXT_PP(0));
	tag = text_to_cstring(PG_GETARG_TEXT_PP(1));
	return pfg_crypto_decrypt_datum(PG_GETARG_DATUM(2), typid, subject, tag);
}

Datum
profile_guard_encrypt_text(PG_FUNCTION_ARGS)
{
	return encrypt_sql(fcinfo, TEXTOID);
}

Datum
profile_guard_encrypt_bytea(PG_FUNCTION_ARGS)
{
	return encrypt_sql(fcinfo, BYTEAOID);
}

Datum
profile_guard_decrypt_text(PG_FUNCTION_ARGS)
{
	return decrypt_sql(fcinfo, TEXTOID);
}

Datum
profile_guard_decrypt_bytea(PG_FUNCTION_ARGS)
{
	return decrypt_sql(fcinfo, BYTEAOID);
}

static Datum
ciphertext_kind_sql(FunctionCallInfo fcinfo, Oid typid)
{
	char	   *subject;
	char	   *tag;
	const char *kind = NULL;

	pfg_require_preload();
	subject = text_to_cstring(PG_GETARG_TEXT_PP(0));
	tag = text_to_cstring(PG_GETARG_TEXT_PP(1));
	switch (pfg_crypto_classify_datum(PG_GETARG_DATUM(2), typid, subject, tag))
	{
		case CT_PLAINTEXT:
			kind = "plaintext";
			break;
		case CT_OURS:
			kind = "ours";
			break;
		case CT_FOREIGN:
			kind = "foreign";
			break;
	}
	PG_RETURN_TEXT_P(cstring_to_text(kind));
}

Datum
profile_guard_ciphertext_kind_text(PG_FUNCTION_ARGS)
{
	return ciphertext_kind_sql(fcinfo, TEXTOID);
}

Datum
profile_guard_ciphertext_kind_bytea(PG_FUNCTION_ARGS)
{
	return ciphertext_kind_sql(fcinfo, BYTEAOID);
}

Datum
profile_guard_destroy_subject_key(PG_FUNCTION_ARGS)
{
	pfg_require_preload();
	pfg_crypto_destroy_subject_key(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/*
 * Re-wrap every live data key under the current master key.  Keys already
 * under it are left alone; keys under profile_guard.previous_master_key_file
 * are unwrapped with it; a key under any other master key stops the
 * rotation (nothing is changed: it is one transaction).
 */
Datum
profile_guard_rotate_master_key(PG_FUNCTION_ARGS)
{
	Oid			admin;
	const MasterKey *current;
	const MasterKey *previous;
	Oid			relid;
	Oid			save_userid;
	int			save_sec_context;
	Oid			selargtypes[1] = {TEXTOID};
	Datum		selargs[1];
	Oid			updargtypes[3] = {TEXTOID, BYTEAOID, TEXTOID};
	SPIPlanPtr	update;
	Portal		portal;
	int64		rewrapped = 0;

	pfg_require_preload();

	admin = get_role_oid("profile_guard_admin", true);
	if (!superuser() &&
		!(OidIsValid(admin) && has_privs_of_role(GetUserId(), admin)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to rotate the master key"),
				 errhint("Only superusers and members of role profile_guard_admin may rotate the master key.")));

	current = get_current_master_key();
	previous = get_previous_master_key();

	begin_key_access(&save_userid, &save_sec_context);
	relid = subject_key_table(NULL);

	update = SPI_prepare("UPDATE " PFG_SCHEMA_NAME "." SUBJECT_KEY_TABLE
						 "   SET wrapped_key = $2, master_fingerprint = $3"
						 " WHERE subject OPERATOR(pg_catalog.=) $1",
						 3, updargtypes);
	if (update == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));

	selargs[0] = CStringGetTextDatum(current->fingerprint);
	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT subject, wrapped_key, master_fingerprint"
									   "  FROM " PFG_SCHEMA_NAME "." SUBJECT_KEY_TABLE
									   " WHERE wrapped_key IS NOT NULL"
									   "   AND (master_fingerprint IS NULL"
									   "        OR master_fingerprint OPERATOR(pg_catalog.<>) $1)"
									   "   FOR UPDATE",
									   1, selargtypes, selargs, NULL, false, 0);

	for (;;)
	{
		SPITupleTable *batch;
		uint64		n;
		uint64		i;

		SPI_cursor_fetch(portal, true, 1000);
		batch = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;

		for (i = 0; i < n; i++)
		{
			HeapTuple	tuple = batch->vals[i];
			TupleDesc	tupdesc = batch->tupdesc;
			char	   *subject = SPI_getvalue(tuple, tupdesc, 1);
			char	   *fingerprint = SPI_getvalue(tuple, tupdesc, 3);
			bool		isnull;
			bytea	   *wrapped = DatumGetByteaPP(SPI_getbinval(tuple, tupdesc, 2, &isnull));
			bytea	   *rewrapped_key;
			uint8		key[KEY_LEN];
			Datum		updargs[3];
			int			rc;

			if (fingerprint == NULL)
				fingerprint = "";
			if (fingerprint_matches(current, fingerprint))
				continue;
			if (!fingerprint_matches(previous, fingerprint))
				master_key_mismatch(subject, fingerprint, current);

			if (!unwrap_data_key((uint8 *) VARDATA_ANY(wrapped),
								 VARSIZE_ANY_EXHDR(wrapped), subject, previous, key))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("could not unwrap the data key of subject \"%s\"", subject),
						 errdetail("The wrapped key does not authenticate under the previous master key whose fingerprint it records; its row in profile_guard.subject_key may have been altered.")));

			rewrapped_key = palloc(VARHDRSZ + WRAPPED_KEY_LEN);
			SET_VARSIZE(rewrapped_key, VARHDRSZ + WRAPPED_KEY_LEN);
			PG_TRY();
			{
				wrap_data_key(key, subject, current, (uint8 *) VARDATA(rewrapped_key));
			}
			PG_FINALLY();
			{
				explicit_bzero(key, sizeof(key));
			}
			PG_END_TRY();

			updargs[0] = CStringGetTextDatum(subject);
			updargs[1] = PointerGetDatum(rewrapped_key);
			updargs[2] = CStringGetTextDatum(current->fingerprint);
			rc = SPI_execute_plan(update, updargs, NULL, false, 0);
			if (rc != SPI_OK_UPDATE || SPI_processed != 1)
				elog(ERROR, "could not re-wrap a data key: SPI error %d", rc);
			rewrapped++;
		}
		SPI_freetuptable(batch);
	}
	SPI_cursor_close(portal);
	end_key_access(save_userid, save_sec_context);

	if (rewrapped > 0)
		CacheInvalidateRelcacheByRelid(relid);

	PG_RETURN_INT64(rewrapped);
}
