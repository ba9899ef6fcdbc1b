/*-------------------------------------------------------------------------
 *
 * crypto.h
 *	  Encryption of sensitive tag values: the C interface of crypto.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_CRYPTO_H
#define PROFILE_GUARD_CRYPTO_H

/* what a stored value is, as far as our envelope format can tell */
typedef enum CiphertextKind
{
	CT_PLAINTEXT,				/* not our envelope: plaintext to encrypt */
	CT_OURS,					/* our envelope, authenticates for this subject and tag */
	CT_FOREIGN					/* our envelope, but for another subject/tag or corrupt */
} CiphertextKind;

extern void pfg_crypto_define_settings(void);

/* value is a text or bytea Datum (typid TEXTOID or BYTEAOID) */
extern Datum pfg_crypto_encrypt_datum(Datum value, Oid typid,
									 const char *subject, const char *tag);
extern Datum pfg_crypto_decrypt_datum(Datum value, Oid typid,
									 const char *subject, const char *tag);
extern CiphertextKind pfg_crypto_classify_datum(Datum value, Oid typid,
											   const char *subject, const char *tag);
extern bool pfg_crypto_is_envelope(Datum value, Oid typid);
extern void pfg_crypto_destroy_subject_key(const char *subject);
/* true when the subject's data key was destroyed (its data were erased) */
extern bool pfg_crypto_subject_key_destroyed(const char *subject);
/* a 32-byte secret derived from the master key for label (caller wipes) */
extern void pfg_crypto_derive_key(const char *label, uint8 *out);

#endif							/* PROFILE_GUARD_CRYPTO_H */
