/*-------------------------------------------------------------------------
 *
 * bulk_rules.h
 *	  The consent rules in C for every subject at once (bulk_rules.c), as
 *	  the consent cache loads a purpose.  The same rules for one subject
 *	  are in subject_rules.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_BULK_RULES_H
#define PROFILE_GUARD_BULK_RULES_H

#include "nodes/bitmapset.h"
#include "utils/timestamp.h"

/*
 * One subject's answer from pfg_rules_evaluate_all: its text (len bytes, not
 * NUL-terminated), its visible tag ids (NULL for none) and when the answer
 * changes by itself (DT_NOEND: never).  Both pointers belong to the
 * evaluator and are valid only during the call.
 */
typedef void (*RulesAnswerCallback) (const char *subject, uint32 len,
									 Bitmapset *visible, TimestampTz valid_until,
									 void *arg);

extern uint64 pfg_rules_evaluate_all(const char *purpose, RulesAnswerCallback cb,
									 void *arg);

#endif							/* PROFILE_GUARD_BULK_RULES_H */
