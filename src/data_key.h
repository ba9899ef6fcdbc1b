/*-------------------------------------------------------------------------
 *
 * data_key.h
 *	  Each subject's data key, kept wrapped in profile_guard.subject_key
 *	  (data_key.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_DATA_KEY_H
#define PROFILE_GUARD_DATA_KEY_H

#include "extension.h"

#define PFG_SUBJECT_KEY_TABLE	"subject_key"

typedef enum PfgDataKeyStatus
{
	PFG_DATA_KEY_FOUND,
	PFG_DATA_KEY_MISSING,		/* no data key was ever created */
	PFG_DATA_KEY_DESTROYED		/* crypto-shredded */
} PfgDataKeyStatus;

/* errors unless subject is a valid subject identifier */
extern void pfg_check_subject(const char *subject);
#define PFG_MAX_SUBJECT_CHARS	200	/* characters of a subject identifier */

/*
 * The data key of subject, into key (PFG_KEY_LEN bytes, which the caller
 * wipes).  With create, a subject without one gets one.
 */
extern PfgDataKeyStatus pfg_data_key_get(const char *subject, bool create, uint8 *key);
/* crypto-shredding: forget subject's data key for good */
extern void pfg_data_key_destroy(const char *subject);
extern bool pfg_data_keys_shared(void);

/*
 * Queries on subject_key, in SPI, as its owner (the caller, who may be any
 * role writing a guarded table, has no rights on it).  Begin returns the
 * table's OID.
 */
extern Oid	pfg_subject_key_begin_access(PfgSavedRole *saved);
extern void pfg_subject_key_end_access(PfgSavedRole *saved);

#endif							/* PROFILE_GUARD_DATA_KEY_H */
