/*-------------------------------------------------------------------------
 *
 * crypto_envelope.h
 *	  Encryption of sensitive tag values in their ciphertext envelope
 *	  (crypto_envelope.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_CRYPTO_ENVELOPE_H
#define PROFILE_GUARD_CRYPTO_ENVELOPE_H

/* what a stored value is, as far as our envelope format can tell */
typedef enum CiphertextKind
{
	CT_PLAINTEXT,				/* not our envelope: plaintext to encrypt */
	CT_OURS,					/* our envelope, authenticates for this subject and tag */
	CT_FOREIGN					/* our envelope, but for another subject/tag or corrupt */
} CiphertextKind;

/* value is a text or bytea Datum (typid TEXTOID or BYTEAOID) */
extern Datum pfg_crypto_encrypt_datum(Datum value, Oid typid,
									  const char *subject, const char *tag);
extern Datum pfg_crypto_decrypt_datum(Datum value, Oid typid,
									  const char *subject, const char *tag);
/* a gate's cell: subject and tag need not be terminated */
extern Datum pfg_crypto_decrypt_cell(Datum value, Oid typid,
									 const char *subject, int subjectlen,
									 const char *tag, int taglen);
extern CiphertextKind pfg_crypto_classify_datum(Datum value, Oid typid,
												const char *subject, const char *tag);
extern bool pfg_crypto_is_envelope(Datum value, Oid typid);

#endif							/* PROFILE_GUARD_CRYPTO_ENVELOPE_H */
