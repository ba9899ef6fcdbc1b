/*-------------------------------------------------------------------------
 *
 * crypto_envelope.c
 *	  Owns the ciphertext envelope of sensitive tag values: encrypting and
 *	  decrypting a text or bytea value with its subject's data key
 *	  (data_key.c), telling our ciphertext from plaintext and from another
 *	  subject's or tag's, and the SQL functions over them.
 *
 * Envelopes of a value encrypted with a data key:
 *
 *	  version 1 (bytea columns; text columns before 1.2):
 *		"PGT" | 0x01 | IV (12) | GCM tag (16) | AES-256-GCM(value)
 *	  a text column stores "pgt1:" followed by it in padded base64;
 *
 *	  version 2 (text columns):
 *		"pgt2" followed by IV (12) | GCM tag (16) | AES-256-GCM(value) in
 *		base64 without padding: 63 characters for a value of 16 bytes
 *		instead of 69, the version carried by the prefix alone.
 *
 * The associated data is subject | 0x00 | tag | 0x00 | version, so a
 * ciphertext copied to another subject or another tag does not
 * authenticate, nor does one whose version was changed.  Every version
 * stays readable; reencrypt() rewrites text values of version 1 in
 * version 2.
 *
 * Reading a cell is on the path of every row a query returns, so it does
 * no more than it must: the base64 text is decoded four characters at a
 * time into a buffer the backend keeps, the associated data is built on
 * the stack, and the only allocation is the plaintext datum returned.
 * The gates' entry, pfg_crypto_decrypt_cell(), takes the subject and tag
 * with their lengths (no terminated copies), tells plaintext from
 * ciphertext in the same pass as it finds the envelope, and asks the data
 * key cache directly; whatever is not the common case (a toasted value, a
 * key not cached, a malformed envelope) goes the general way below, which
 * reports it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "crypto_envelope.h"
#include "crypto_primitives.h"
#include "data_key.h"
#include "data_key_cache.h"

/* version 1: bytea, and text written before 1.2 */
#define ENVELOPE_MAGIC		"PGT"
#define ENVELOPE_MAGIC_LEN	3
#define ENVELOPE_V1			0x01
#define ENVELOPE_IV_OFF		(ENVELOPE_MAGIC_LEN + 1)
#define ENVELOPE_TAG_OFF	(ENVELOPE_IV_OFF + PFG_GCM_IV_LEN)
#define ENVELOPE_HEADER_LEN (ENVELOPE_TAG_OFF + PFG_GCM_TAG_LEN)	/* 32 */
#define TEXT_PREFIX			"pgt1:"
#define TEXT_PREFIX_LEN		5
#define BASE64_LEN(n)		(4 * (((uint64) (n) + 2) / 3))	/* exact, padded */
/* version 2: text */
#define ENVELOPE_V2			0x02
#define TEXT2_PREFIX		"pgt2"
#define TEXT2_PREFIX_LEN	4
#define SEALED_HEADER_LEN	(PFG_GCM_IV_LEN + PFG_GCM_TAG_LEN)	/* 28: IV | tag */
#define BASE64_UNPADDED_LEN(n)	((4 * (uint64) (n) + 2) / 3)
#define AAD_STACK			1024	/* associated data up to this is on the stack */
#define CELL_ENV_STACK		512 /* an envelope up to this is on the stack, read or written */
#define DECODE_KEEP			8192	/* decoding buffers kept between values */

typedef enum EnvelopeStatus
{
	ENV_NOT_OURS,				/* no prefix/magic, or too short */
	ENV_MALFORMED,				/* our prefix, but not a valid envelope */
	ENV_UNKNOWN_VERSION,		/* our magic, a format version we don't know */
	ENV_OK
} EnvelopeStatus;

/* the parts of an envelope found in a stored value */
typedef struct Envelope
{
	uint8		version;
	const uint8 *iv;
	const uint8 *gcm_tag;
	const uint8 *sealed;		/* the encrypted value */
	int			sealedlen;
} Envelope;

PFG_SQL_FUNCTION(profile_guard_encrypt_text);
PFG_SQL_FUNCTION(profile_guard_encrypt_bytea);
PFG_SQL_FUNCTION(profile_guard_decrypt_text);
PFG_SQL_FUNCTION(profile_guard_decrypt_bytea);
PFG_SQL_FUNCTION(profile_guard_ciphertext_kind_text);
PFG_SQL_FUNCTION(profile_guard_ciphertext_kind_bytea);


static void
check_subject_and_tag(const char *subject, const char *tag)
{
	pfg_check_subject(subject);
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

/*
 * subject | 0x00 | tag | 0x00 | version, in stackbuf (AAD_STACK bytes) when
 * it fits; the caller pfrees *aad when it is not stackbuf.
 */
static int
envelope_aad(const char *subject, const char *tag, uint8 version,
			 uint8 *stackbuf, uint8 **aad)
{
	size_t		slen = strlen(subject);
	size_t		tlen = strlen(tag);
	uint8	   *buf = slen + tlen + 3 <= AAD_STACK ? stackbuf : palloc(slen + tlen + 3);

	memcpy(buf, subject, slen);
	buf[slen] = 0x00;
	memcpy(buf + slen + 1, tag, tlen);
	buf[slen + 1 + tlen] = 0x00;
	buf[slen + tlen + 2] = version;
	*aad = buf;
	return (int) (slen + tlen + 3);
}

/* base64's characters, as pg_b64_encode writes them */
static const char b64_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * Each base64 character's value, already shifted to its place in a group
 * of four (b64_value[i] for the i-th character of the group), so that a
 * group is four look-ups OR'ed; any other byte has B64_BAD, which no OR of
 * valid values sets.
 */
#define B64_BAD		0xFF000000
static uint32 b64_value[4][256];
static bool b64_ready = false;

static void
b64_init(void)
{
	for (int i = 0; i < 4; i++)
		for (int c = 0; c < 256; c++)
			b64_value[i][c] = B64_BAD;
	for (int c = 0; c < 64; c++)
		for (int i = 0; i < 4; i++)
			b64_value[i][(uint8) b64_alphabet[c]] = (uint32) c << (18 - 6 * i);
	b64_ready = true;
}

/*
 * Decode groups of four base64 characters into three bytes each; returns
 * the OR of their values, which has B64_BAD set if any character is not
 * base64.
 */
static inline uint32
b64_decode_groups(const uint8 *s, int groups, uint8 *d)
{
	uint32		bad = 0;

	for (int g = 0; g < groups; g++, s += 4, d += 3)
	{
		uint32		v = b64_value[0][s[0]] | b64_value[1][s[1]] |
			b64_value[2][s[2]] | b64_value[3][s[3]];

		bad |= v;
		d[0] = (uint8) (v >> 16);
		d[1] = (uint8) (v >> 8);
		d[2] = (uint8) v;
	}
	return bad;
}

/*
 * Decode padded base64 as pg_b64_encode writes it, four characters at a
 * time; -1 for anything else (white space, a stray character), which the
 * caller then hands to pg_b64_decode.  dst has room for len / 4 * 3 bytes.
 */
static int
b64_decode_fast(const char *src, int len, uint8 *dst)
{
	const uint8 *s = (const uint8 *) src;
	uint8	   *d = dst;
	uint32		bad;
	int			pad = 0;

	if (unlikely(!b64_ready))
		b64_init();
	if (len == 0 || len % 4 != 0)
		return -1;
	if (src[len - 1] == '=')
		pad = src[len - 2] == '=' ? 2 : 1;
	bad = b64_decode_groups(s, len / 4 - 1, d);
	d += (len / 4 - 1) * 3;
	{
		const uint8 *q = s + len - 4;
		uint32		v = b64_value[0][q[0]] | b64_value[1][q[1]] |
			(pad >= 2 ? 0 : b64_value[2][q[2]]) |
			(pad >= 1 ? 0 : b64_value[3][q[3]]);

		bad |= v;
		*d++ = (uint8) (v >> 16);
		if (pad < 2)
			*d++ = (uint8) (v >> 8);
		if (pad < 1)
			*d++ = (uint8) v;
	}
	if (bad & B64_BAD)
		return -1;
	return (int) (d - dst);
}

/*
 * Decode base64 without padding (version 2), four characters at a time and
 * a tail of two or three; -1 for anything else, and for bits set past the
 * last byte, so that an envelope has one text only.  dst has room for
 * len / 4 * 3 + 2 bytes.
 */
static int
b64_decode_unpadded(const char *src, int len, uint8 *dst)
{
	const uint8 *s = (const uint8 *) src;
	uint8	   *d = dst;
	uint32		bad;
	int			full = len / 4 * 4;
	int			tail = len - full;

	if (unlikely(!b64_ready))
		b64_init();
	if (tail == 1)
		return -1;
	bad = b64_decode_groups(s, full / 4, d);
	d += full / 4 * 3;
	if (tail > 0)
	{
		const uint8 *q = s + full;
		uint32		v = b64_value[0][q[0]] | b64_value[1][q[1]] |
			(tail == 3 ? b64_value[2][q[2]] : 0);

		bad |= v;
		if ((v & (tail == 2 ? 0xFFFF : 0xFF)) != 0)
			return -1;
		*d++ = (uint8) (v >> 16);
		if (tail == 3)
			*d++ = (uint8) (v >> 8);
	}
	if (bad & B64_BAD)
		return -1;
	return (int) (d - dst);
}

/*
 * The two base64 characters of every 12-bit value, so that three bytes
 * encode in two look-ups.
 */
static char b64_pairs[4096][2];
static bool b64_pairs_ready = false;

static void
b64_pairs_init(void)
{
	for (int v = 0; v < 4096; v++)
	{
		b64_pairs[v][0] = b64_alphabet[v >> 6];
		b64_pairs[v][1] = b64_alphabet[v & 0x3F];
	}
	b64_pairs_ready = true;
}

/*
 * Encode len bytes as base64, three bytes to four characters at a time:
 * padded as pg_b64_encode writes it (dst has room for BASE64_LEN(len)), or
 * without padding (BASE64_UNPADDED_LEN(len)).  Returns the characters
 * written.
 */
static int
b64_encode_fast(const uint8 *src, int len, char *dst, bool pad)
{
	char	   *d = dst;
	int			i;

	if (unlikely(!b64_pairs_ready))
		b64_pairs_init();
	for (i = 0; i + 3 <= len; i += 3, d += 4)
	{
		uint32		v = ((uint32) src[i] << 16) | ((uint32) src[i + 1] << 8) | src[i + 2];

		memcpy(d, b64_pairs[v >> 12], 2);
		memcpy(d + 2, b64_pairs[v & 0xFFF], 2);
	}
	if (i < len)
	{
		uint32		v = (uint32) src[i] << 16;

		if (i + 1 < len)
			v |= (uint32) src[i + 1] << 8;
		*d++ = b64_alphabet[v >> 18];
		*d++ = b64_alphabet[(v >> 12) & 0x3F];
		if (i + 1 < len)
			*d++ = b64_alphabet[(v >> 6) & 0x3F];
		else if (pad)
			*d++ = '=';
		if (pad)
			*d++ = '=';
	}
	return (int) (d - dst);
}

/*
 * A buffer of at least len bytes for a decoded envelope: one kept by the
 * backend for short values (ciphertext, no secret), else palloc'd.
 */
static uint8 *
decode_buffer(Size len)
{
	static uint8 *kept = NULL;

	if (len > DECODE_KEEP)
		return palloc(len);
	if (kept == NULL)
		kept = MemoryContextAlloc(TopMemoryContext, DECODE_KEEP);
	return kept;
}

/*
 * The parts of a version 2 envelope decoded into bin (binlen bytes), or of
 * a version 1 envelope's binary form.
 */
static EnvelopeStatus
envelope_parts(const uint8 *bin, int binlen, uint8 version, Envelope *env)
{
	if (version == ENVELOPE_V1)
	{
		if (binlen < ENVELOPE_HEADER_LEN ||
			memcmp(bin, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN) != 0)
			return ENV_MALFORMED;
		if (bin[ENVELOPE_MAGIC_LEN] != ENVELOPE_V1)
			return ENV_UNKNOWN_VERSION;
		bin += ENVELOPE_IV_OFF;
		binlen -= ENVELOPE_IV_OFF;
	}
	else if (binlen < SEALED_HEADER_LEN)
		return ENV_MALFORMED;
	env->version = version;
	env->iv = bin;
	env->gcm_tag = bin + PFG_GCM_IV_LEN;
	env->sealed = bin + SEALED_HEADER_LEN;
	env->sealedlen = binlen - SEALED_HEADER_LEN;
	return ENV_OK;
}

/*
 * Find the envelope in a stored value.  For text, it is decoded into a
 * buffer of decode_buffer().  A value with our prefix too short to hold an
 * envelope's header is not ours (plaintext); one long enough that does not
 * decode is malformed.
 */
static EnvelopeStatus
parse_envelope(Datum value, Oid typid, Envelope *env)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
	const char *data = VARDATA_ANY(v);
	int			len = VARSIZE_ANY_EXHDR(v);

	if (typid == TEXTOID)
	{
		uint8	   *decoded;
		int			binlen;

		if (len >= TEXT2_PREFIX_LEN && memcmp(data, TEXT2_PREFIX, TEXT2_PREFIX_LEN) == 0)
		{
			int			b64len = len - TEXT2_PREFIX_LEN;

			if (b64len < BASE64_UNPADDED_LEN(SEALED_HEADER_LEN))
				return ENV_NOT_OURS;
			decoded = decode_buffer((Size) b64len / 4 * 3 + 2);
			binlen = b64_decode_unpadded(data + TEXT2_PREFIX_LEN, b64len, decoded);
			if (binlen < 0)
				return ENV_MALFORMED;
			return envelope_parts(decoded, binlen, ENVELOPE_V2, env);
		}
		else
		{
			int			b64len = len - TEXT_PREFIX_LEN;

			/*
			 * room for what any base64 of b64len characters decodes to,
			 * computed wide: pg_b64_dec_len() multiplies in int, which a
			 * value of 700 MB overflows
			 */
			Size		room = (Size) b64len / 4 * 3 + 4;

			if (len < TEXT_PREFIX_LEN + BASE64_LEN(ENVELOPE_HEADER_LEN) ||
				memcmp(data, TEXT_PREFIX, TEXT_PREFIX_LEN) != 0)
				return ENV_NOT_OURS;
			decoded = decode_buffer(room);
			binlen = b64_decode_fast(data + TEXT_PREFIX_LEN, b64len, decoded);
			if (binlen < 0)
				binlen = pg_b64_decode(data + TEXT_PREFIX_LEN, b64len, (char *) decoded, (int) room);
			return envelope_parts(decoded, binlen, ENVELOPE_V1, env);
		}
	}
	if (len < ENVELOPE_HEADER_LEN ||
		memcmp(data, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN) != 0)
		return ENV_NOT_OURS;
	return envelope_parts((const uint8 *) data, len, ENVELOPE_V1, env);
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
	uint8		version = typid == BYTEAOID ? ENVELOPE_V1 : ENVELOPE_V2;
	uint8		key[PFG_KEY_LEN];
	uint8		aadbuf[AAD_STACK];
	uint8	   *aad;
	int			aadlen;
	bytea	   *envdatum;
	uint8		envbuf[CELL_ENV_STACK];
	uint8	   *env;
	uint8	   *iv;
	bool		ok;

	check_type(typid);
	check_subject_and_tag(subject, tag);

	v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
	plain = (const uint8 *) VARDATA_ANY(v);
	plainlen = VARSIZE_ANY_EXHDR(v);

	/* bytea: version 1 with its magic; text: version 2, IV | tag | sealed */
	envlen = (uint64) (version == ENVELOPE_V1 ? ENVELOPE_HEADER_LEN : SEALED_HEADER_LEN) + plainlen;
	storedlen = typid == BYTEAOID ? envlen :
		TEXT2_PREFIX_LEN + BASE64_UNPADDED_LEN(envlen);
	if (storedlen + VARHDRSZ + 1 > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value of tag \"%s\" is too large to encrypt", tag),
				 errdetail("Its ciphertext would exceed the maximum size of a value.")));

	/*
	 * bytea: the envelope is the datum returned.  text: it is encoded from
	 * the stack when short (most tag values), so the text returned is the
	 * only allocation.
	 */
	if (typid == BYTEAOID)
	{
		envdatum = palloc(VARHDRSZ + envlen);
		SET_VARSIZE(envdatum, VARHDRSZ + envlen);
		env = (uint8 *) VARDATA(envdatum);
		memcpy(env, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN);
		env[ENVELOPE_MAGIC_LEN] = ENVELOPE_V1;
		iv = env + ENVELOPE_IV_OFF;
	}
	else
	{
		envdatum = NULL;
		env = envlen <= CELL_ENV_STACK ? envbuf : palloc(envlen);
		iv = env;
	}
	pfg_random_iv(iv);
	aadlen = envelope_aad(subject, tag, version, aadbuf, &aad);

	if (pfg_data_key_get(subject, true, key) == PFG_DATA_KEY_DESTROYED)
		report_erased(subject, tag, true);

	ok = pfg_gcm_encrypt(key, iv, aad, aadlen, plain, plainlen,
						 iv + SEALED_HEADER_LEN, iv + PFG_GCM_IV_LEN);
	explicit_bzero(key, sizeof(key));
	if (!ok)
		elog(ERROR, "could not encrypt a value: %s", pfg_openssl_error());
	if (aad != aadbuf)
		pfree(aad);

	if (typid == BYTEAOID)
		return PointerGetDatum(envdatum);
	else
	{
		text	   *result = palloc(VARHDRSZ + storedlen);
		char	   *dst = VARDATA(result);
		int			n;

		memcpy(dst, TEXT2_PREFIX, TEXT2_PREFIX_LEN);
		n = b64_encode_fast(env, (int) envlen, dst + TEXT2_PREFIX_LEN, false);
		Assert(n == storedlen - TEXT2_PREFIX_LEN);
		SET_VARSIZE(result, VARHDRSZ + TEXT2_PREFIX_LEN + n);
		if (env != envbuf)
			pfree(env);
		return PointerGetDatum(result);
	}
}

Datum
pfg_crypto_decrypt_datum(Datum value, Oid typid, const char *subject, const char *tag)
{
	Envelope	env;
	EnvelopeStatus es;
	PfgDataKeyStatus ks;
	uint8		key[PFG_KEY_LEN];
	uint8		aadbuf[AAD_STACK];
	uint8	   *aad;
	int			aadlen;
	struct varlena *result;
	bool		ok;

	check_type(typid);
	check_subject_and_tag(subject, tag);

	es = parse_envelope(value, typid, &env);
	if (es != ENV_OK)
		report_not_decryptable(tag, es);

	ks = pfg_data_key_get(subject, false, key);
	if (ks == PFG_DATA_KEY_DESTROYED)
		report_erased(subject, tag, false);
	if (ks == PFG_DATA_KEY_MISSING)
		report_not_decryptable(tag, ENV_OK);

	result = palloc(VARHDRSZ + env.sealedlen);
	SET_VARSIZE(result, VARHDRSZ + env.sealedlen);
	aadlen = envelope_aad(subject, tag, env.version, aadbuf, &aad);
	ok = pfg_gcm_decrypt(key, env.iv, aad, aadlen, env.sealed, env.sealedlen,
						 env.gcm_tag, (uint8 *) VARDATA(result));
	explicit_bzero(key, sizeof(key));
	if (aad != aadbuf)
		pfree(aad);
	if (!ok)
	{
		/* never let unauthenticated plaintext escape */
		explicit_bzero(VARDATA(result), env.sealedlen);
		pfree(result);
		report_not_decryptable(tag, ENV_OK);
	}
	return PointerGetDatum(result);
}

/*
 * A sensitive cell as a gate serves it: the plaintext of our ciphertext,
 * the stored value itself when it is not our ciphertext (written before
 * classify), an error when it is ours but does not decrypt.  subject and
 * tag need not be terminated.  The common case (an untoasted value, the
 * key cached) allocates only the datum returned; the others go through
 * pfg_crypto_decrypt_datum(), which behaves the same and reports.
 */
Datum
pfg_crypto_decrypt_cell(Datum value, Oid typid, const char *subject, int subjectlen,
						const char *tag, int taglen)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(value);
	const char *data;
	int			len;
	uint8		decoded[CELL_ENV_STACK];
	Envelope	env;
	uint8		key[PFG_KEY_LEN];
	uint8		aad[AAD_STACK];
	int			aadlen;
	struct varlena *result;
	bool		ok;

	if (typid != TEXTOID && typid != BYTEAOID)
		return value;
	if (VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v))
		goto general;
	data = VARDATA_ANY(v);
	len = VARSIZE_ANY_EXHDR(v);

	if (typid == TEXTOID)
	{
		int			binlen;

		if (len >= TEXT2_PREFIX_LEN && memcmp(data, TEXT2_PREFIX, TEXT2_PREFIX_LEN) == 0)
		{
			int			b64len = len - TEXT2_PREFIX_LEN;

			if (b64len < BASE64_UNPADDED_LEN(SEALED_HEADER_LEN) ||
				b64len / 4 * 3 + 2 > CELL_ENV_STACK)
				goto general;
			binlen = b64_decode_unpadded(data + TEXT2_PREFIX_LEN, b64len, decoded);
			if (binlen < 0 || envelope_parts(decoded, binlen, ENVELOPE_V2, &env) != ENV_OK)
				goto general;
		}
		else
		{
			int			b64len = len - TEXT_PREFIX_LEN;

			if (len < TEXT_PREFIX_LEN || memcmp(data, TEXT_PREFIX, TEXT_PREFIX_LEN) != 0)
				return value;	/* plaintext */
			if (b64len < BASE64_LEN(ENVELOPE_HEADER_LEN) ||
				b64len / 4 * 3 > CELL_ENV_STACK)
				goto general;
			binlen = b64_decode_fast(data + TEXT_PREFIX_LEN, b64len, decoded);
			if (binlen < 0 || envelope_parts(decoded, binlen, ENVELOPE_V1, &env) != ENV_OK)
				goto general;
		}
	}
	else
	{
		if (len < ENVELOPE_MAGIC_LEN || memcmp(data, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN) != 0)
			return value;		/* plaintext */
		if (envelope_parts((const uint8 *) data, len, ENVELOPE_V1, &env) != ENV_OK)
			goto general;
	}
	if (subjectlen < 1 || subjectlen > PFG_MAX_SUBJECT_CHARS ||
		taglen < 1 || subjectlen + taglen + 3 > AAD_STACK ||
		!pfg_data_key_cache_lookup(subject, subjectlen, key))
		goto general;

	/* subject | 0x00 | tag | 0x00 | version, as envelope_aad() makes it */
	memcpy(aad, subject, subjectlen);
	aad[subjectlen] = 0x00;
	memcpy(aad + subjectlen + 1, tag, taglen);
	aad[subjectlen + 1 + taglen] = 0x00;
	aad[subjectlen + taglen + 2] = env.version;
	aadlen = subjectlen + taglen + 3;

	result = palloc(VARHDRSZ + env.sealedlen);
	SET_VARSIZE(result, VARHDRSZ + env.sealedlen);
	ok = pfg_gcm_decrypt(key, env.iv, aad, aadlen, env.sealed, env.sealedlen,
						 env.gcm_tag, (uint8 *) VARDATA(result));
	explicit_bzero(key, sizeof(key));
	if (!ok)
	{
		/* never let unauthenticated plaintext escape */
		explicit_bzero(VARDATA(result), env.sealedlen);
		pfree(result);
		report_not_decryptable(pnstrdup(tag, taglen), ENV_OK);
	}
	return PointerGetDatum(result);

general:
	{
		char	   *s = pnstrdup(subject, subjectlen);
		char	   *t = pnstrdup(tag, taglen);
		Datum		plain;

		if (!pfg_crypto_is_envelope(value, typid))
			return value;
		plain = pfg_crypto_decrypt_datum(value, typid, s, t);
		pfree(s);
		pfree(t);
		return plain;
	}
}

/*
 * Does a stored value carry one of our envelopes' prefixes (text) or the
 * magic (bytea)?  Cheap: nothing is decoded or authenticated.
 */
bool
pfg_crypto_is_envelope(Datum value, Oid typid)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(value);
	char		head[TEXT_PREFIX_LEN];
	int			want = typid == TEXTOID ? TEXT_PREFIX_LEN : ENVELOPE_MAGIC_LEN;
	int			have;

	if (VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v))
	{
		struct varlena *slice = pg_detoast_datum_slice(v, 0, want);

		have = Min(VARSIZE_ANY_EXHDR(slice), want);
		memcpy(head, VARDATA_ANY(slice), have);
	}
	else
	{
		have = Min(VARSIZE_ANY_EXHDR(v), want);
		memcpy(head, VARDATA_ANY(v), have);
	}
	if (typid != TEXTOID)
		return have == ENVELOPE_MAGIC_LEN &&
			memcmp(head, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN) == 0;
	return (have >= TEXT2_PREFIX_LEN && memcmp(head, TEXT2_PREFIX, TEXT2_PREFIX_LEN) == 0) ||
		(have == TEXT_PREFIX_LEN && memcmp(head, TEXT_PREFIX, TEXT_PREFIX_LEN) == 0);
}

/*
 * Errors only for configuration problems (no usable master key); anything
 * about the value itself is an answer.  A subject whose key was destroyed
 * has no ciphertext of ours any more: CT_FOREIGN.
 */
CiphertextKind
pfg_crypto_classify_datum(Datum value, Oid typid, const char *subject, const char *tag)
{
	Envelope	env;
	EnvelopeStatus es;
	uint8		key[PFG_KEY_LEN];
	uint8		aadbuf[AAD_STACK];
	uint8	   *aad;
	int			aadlen;
	bool		ok;

	check_type(typid);
	check_subject_and_tag(subject, tag);

	es = parse_envelope(value, typid, &env);
	if (es == ENV_NOT_OURS)
		return CT_PLAINTEXT;
	if (es != ENV_OK)
		return CT_FOREIGN;
	if (pfg_data_key_get(subject, false, key) != PFG_DATA_KEY_FOUND)
		return CT_FOREIGN;

	aadlen = envelope_aad(subject, tag, env.version, aadbuf, &aad);
	ok = pfg_gcm_decrypt(key, env.iv, aad, aadlen, env.sealed, env.sealedlen,
						 env.gcm_tag, NULL);
	explicit_bzero(key, sizeof(key));
	if (aad != aadbuf)
		pfree(aad);
	return ok ? CT_OURS : CT_FOREIGN;
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
