/*-------------------------------------------------------------------------
 *
 * pseudonym.h
 *	  The keyed pseudonym that stands for a subject in a de-identified view
 *	  made for one recipient (pseudonym.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_PSEUDONYM_H
#define PROFILE_GUARD_PSEUDONYM_H

#define PFG_PSEUDONYM_HEX	64

/* out: PFG_PSEUDONYM_HEX hexadecimal digits and a NUL */
extern void pfg_pseudonym(const char *subject, const char *recipient, char *out);

#endif							/* PROFILE_GUARD_PSEUDONYM_H */
