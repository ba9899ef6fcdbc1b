/*-------------------------------------------------------------------------
 *
 * subject_hash.h
 *	  The keyed hash that stands for a subject in the erasure log
 *	  (subject_hash.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_SUBJECT_HASH_H
#define PROFILE_GUARD_SUBJECT_HASH_H

#define PFG_SUBJECT_HASH_HEX	64

/* out: PFG_SUBJECT_HASH_HEX hexadecimal digits and a NUL */
extern void pfg_subject_hash(const char *subject, char *out);

#endif							/* PROFILE_GUARD_SUBJECT_HASH_H */
