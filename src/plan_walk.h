/*-------------------------------------------------------------------------
 *
 * plan_walk.h
 *	  What the passes over a finished plan ask of its nodes and
 *	  expressions (plan_walk.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_PLAN_WALK_H
#define PROFILE_GUARD_PLAN_WALK_H

#include "nodes/plannodes.h"

extern List **pfg_plan_child_list(Plan *plan);
extern int	pfg_next_plan_node_id(PlannedStmt *stmt);
extern int	pfg_relation_natts(Oid relid);
extern bool pfg_evaluates_all_parts(Node *node);
extern bool pfg_plan_calls_function(PlannedStmt *stmt, Oid funcid);

#endif							/* PROFILE_GUARD_PLAN_WALK_H */
