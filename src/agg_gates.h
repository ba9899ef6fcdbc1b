/*-------------------------------------------------------------------------
 *
 * agg_gates.h
 *	  Gate calls in hashed aggregates' arguments, evaluated in the
 *	  aggregates' input (agg_gates.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_AGG_GATES_H
#define PROFILE_GUARD_AGG_GATES_H

#include "nodes/plannodes.h"

extern void pfg_agg_gates_plan(PlannedStmt *stmt, Oid gate_schema);

#endif							/* PROFILE_GUARD_AGG_GATES_H */
