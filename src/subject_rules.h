/*-------------------------------------------------------------------------
 *
 * subject_rules.h
 *	  The rules for one subject, in C (subject_rules.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_SUBJECT_RULES_H
#define PROFILE_GUARD_SUBJECT_RULES_H

#include "nodes/bitmapset.h"
#include "utils/timestamp.h"

extern bool pg_rules_evaluate(const char *purpose, const char *subject,
							  Bitmapset **visible, TimestampTz *valid_until);
extern void pg_rules_forget(void);

#endif							/* PROFILE_GUARD_SUBJECT_RULES_H */
