/*-------------------------------------------------------------------------
 *
 * subject_rules.h
 *	  The consent rules in C for one subject (subject_rules.c).  The same
 *	  rules for every subject at once are in bulk_rules.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_SUBJECT_RULES_H
#define PROFILE_GUARD_SUBJECT_RULES_H

#include "nodes/bitmapset.h"
#include "utils/timestamp.h"

extern bool pfg_rules_evaluate(const char *purpose, const char *subject,
							   Bitmapset **visible, TimestampTz *valid_until);
extern void pfg_rules_forget(void);

#endif							/* PROFILE_GUARD_SUBJECT_RULES_H */
