/*-------------------------------------------------------------------------
 *
 * gate.h
 *	  The read path's rewriting (gate.c), as the hooks (hooks.c) call it
 *	  before and after planning, before the executor starts, and around a
 *	  utility statement.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_GATE_H
#define PROFILE_GUARD_GATE_H

#include "executor/execdesc.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "nodes/plannodes.h"

/* what gating a query leaves for its plan; on the caller's stack */
typedef struct PfgGatePlanning
{
	bool		guards;			/* the database guards something */
	List	   *inlined;		/* dependencies of the functions inlined */
	Oid			row_gate_fn;	/* the gates written, else InvalidOid */
	Oid			cell_gate_fn;
	Oid			gate_schema;	/* their schema, else InvalidOid */
} PfgGatePlanning;

extern void pfg_gate_planner_before(Query *parse, ParamListInfo boundParams,
									PfgGatePlanning *planning);
extern void pfg_gate_planner_after(PlannedStmt *result,
								   PfgGatePlanning *planning);

extern void pfg_gate_executor_start(QueryDesc *queryDesc, int eflags);

extern PlannedStmt *pfg_gate_utility_before(PlannedStmt *pstmt,
											List **tree_changes,
											bool *analyzing);
extern void pfg_gate_utility_after(List *tree_changes, bool analyzing);
extern void pfg_gate_utility_abort(bool analyzing);

#endif							/* PROFILE_GUARD_GATE_H */
