/*-------------------------------------------------------------------------
 *
 * owner_context.h
 *	  Statements on a guarded table's rows run with its owner's rights
 *	  (owner_context.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_OWNER_CONTEXT_H
#define PROFILE_GUARD_OWNER_CONTEXT_H

#include "executor/spi.h"
#include "storage/lockdefs.h"

#include "catalog.h"

/* what owner_context_begin() saved, for owner_context_end() */
typedef PfgSavedRole OwnerContext;

extern bool pfg_check_guarded(Oid relid, const char *subject_column,
										const char *collected_at_column,
										const char *tag_column, LOCKMODE lockmode,
										int elevel);
extern void pfg_owner_context_begin(Oid relid, OwnerContext *oc);
extern void pfg_owner_context_end(OwnerContext *oc);
extern bool pfg_owner_writing(Oid relid);
extern bool pfg_owner_writing_row(Oid relid);
extern uint64 pfg_execute_as_owner(Oid relid, const char *query, int nargs,
								   Oid *argtypes, Datum *values,
								   const char *nulls, SPIPlanPtr *kept);

#endif							/* PROFILE_GUARD_OWNER_CONTEXT_H */
