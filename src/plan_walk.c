/*-------------------------------------------------------------------------
 *
 * plan_walk.c
 *	  Owns what the passes over a finished plan (agg_gates.c, gated_scan.c,
 *	  collect_plan.c) ask of its nodes and expressions: the children a node
 *	  holds besides its left and right trees, a number for a node a pass
 *	  adds, a relation's number of attributes, whether an expression
 *	  evaluates all of its parts whenever it is evaluated; and, for
 *	  parallel_gates.c, whether a plan calls a function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "utils/syscache.h"

#include "plan_walk.h"

/*
 * The list of children a plan node holds besides its left and right trees
 * and a subquery scan's subplan (Append, MergeAppend, BitmapAnd, BitmapOr,
 * CustomScan); NULL for other nodes.
 */
List	  **
pfg_plan_child_list(Plan *plan)
{
	switch (nodeTag(plan))
	{
		case T_Append:
			return &((Append *) plan)->appendplans;
		case T_MergeAppend:
			return &((MergeAppend *) plan)->mergeplans;
		case T_BitmapAnd:
			return &((BitmapAnd *) plan)->bitmapplans;
		case T_BitmapOr:
			return &((BitmapOr *) plan)->bitmapplans;
		case T_CustomScan:
			return &((CustomScan *) plan)->custom_plans;
		default:
			return NULL;
	}
}

/* a visit of one plan node: true stops the walk */
typedef bool (*PlanVisitor) (Plan *plan, void *arg);

/* visit every node of the tree of 'plan', children first */
static bool
walk_plan(Plan *plan, PlanVisitor visit, void *arg)
{
	List	  **children;
	ListCell   *lc;

	if (plan == NULL)
		return false;
	if (walk_plan(plan->lefttree, visit, arg) || walk_plan(plan->righttree, visit, arg))
		return true;
	if (IsA(plan, SubqueryScan) &&
		walk_plan(((SubqueryScan *) plan)->subplan, visit, arg))
		return true;
	if ((children = pfg_plan_child_list(plan)) != NULL)
		foreach(lc, *children)
			if (walk_plan((Plan *) lfirst(lc), visit, arg))
				return true;
	return visit(plan, arg);
}

/* visit every node of the statement's plan and of its sub-plans */
static bool
walk_statement(PlannedStmt *stmt, PlanVisitor visit, void *arg)
{
	ListCell   *lc;

	if (walk_plan(stmt->planTree, visit, arg))
		return true;
	foreach(lc, stmt->subplans)
		if (walk_plan((Plan *) lfirst(lc), visit, arg))
			return true;
	return false;
}

static bool
note_node_id(Plan *plan, void *arg)
{
	int		   *max = (int *) arg;

	*max = Max(*max, plan->plan_node_id);
	return false;
}

/*
 * A node number no node of the statement has, for a node a pass puts in
 * the plan (the planner numbers every node; EXPLAIN and extensions that
 * follow plans by node go by it)
 */
int
pfg_next_plan_node_id(PlannedStmt *stmt)
{
	int			max = -1;

	(void) walk_statement(stmt, note_node_id, &max);
	return max + 1;
}

/*
 * A plan's relation's number of attributes, dropped ones included (0:
 * none), without opening it
 */
int
pfg_relation_natts(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	int			natts;

	if (!HeapTupleIsValid(tuple))
		return 0;
	natts = ((Form_pg_class) GETSTRUCT(tuple))->relnatts;
	ReleaseSysCache(tuple);
	return natts;
}

/*
 * Whether every subexpression of 'node' is evaluated whenever it is.  The
 * gated scan takes a cell gate's decision (and counts it) for every row
 * it returns, and agg_gates.c moves a gate to where it is evaluated once a
 * row: either may do so only for a gate that the interpreter would call
 * for every row too, never for one it may skip (CASE, COALESCE, AND, OR, a
 * subscript of a NULL array, an aggregate's FILTER, ...).  Anything not
 * listed here is taken as evaluating its parts conditionally.
 */
bool
pfg_evaluates_all_parts(Node *node)
{
	switch (nodeTag(node))
	{
		case T_List:
		case T_TargetEntry:
		case T_Var:
		case T_Const:
		case T_Param:
		case T_FuncExpr:
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
		case T_ScalarArrayOpExpr:
		case T_RelabelType:
		case T_CoerceViaIO:
		case T_CollateExpr:
		case T_NullTest:
		case T_BooleanTest:
		case T_RowExpr:
		case T_ArrayExpr:
		case T_FieldSelect:
			return true;
		case T_BoolExpr:
			return ((BoolExpr *) node)->boolop == NOT_EXPR;
		default:
			return false;
	}
}

static bool
calls_function_walker(Node *node, Oid *funcid)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcid == *funcid)
		return true;
	return expression_tree_walker(node, calls_function_walker, (void *) funcid);
}

/* does function *funcid appear in the expressions node 'plan' evaluates? */
static bool
node_calls_function(Plan *plan, void *arg)
{
	List	   *exprs = list_make2(plan->targetlist, plan->qual);

	switch (nodeTag(plan))
	{
		case T_NestLoop:
		case T_MergeJoin:
		case T_HashJoin:
			exprs = lappend(exprs, ((Join *) plan)->joinqual);
			if (IsA(plan, MergeJoin))
				exprs = lappend(exprs, ((MergeJoin *) plan)->mergeclauses);
			if (IsA(plan, HashJoin))
				exprs = lappend(exprs, ((HashJoin *) plan)->hashclauses);
			break;
		case T_Hash:
			exprs = lappend(exprs, ((Hash *) plan)->hashkeys);
			break;
		case T_IndexScan:
			exprs = lappend(exprs, ((IndexScan *) plan)->indexqualorig);
			break;
		case T_BitmapHeapScan:
			exprs = lappend(exprs, ((BitmapHeapScan *) plan)->bitmapqualorig);
			break;
		case T_CustomScan:
			exprs = lappend(exprs, ((CustomScan *) plan)->custom_exprs);
			break;
		case T_Result:
			exprs = lappend(exprs, ((Result *) plan)->resconstantqual);
			break;
		case T_FunctionScan:
			exprs = lappend(exprs, ((FunctionScan *) plan)->functions);
			break;
		case T_Limit:
			exprs = lappend(exprs, ((Limit *) plan)->limitOffset);
			exprs = lappend(exprs, ((Limit *) plan)->limitCount);
			break;
		default:
			break;
	}
	return calls_function_walker((Node *) exprs, (Oid *) arg);
}

/*
 * Does the statement's plan call function 'funcid' in any of the
 * expressions its nodes evaluate (parallel_gates.c: does it decrypt)?
 */
bool
pfg_plan_calls_function(PlannedStmt *stmt, Oid funcid)
{
	return walk_statement(stmt, node_calls_function, &funcid);
}
