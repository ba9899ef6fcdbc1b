/*-------------------------------------------------------------------------
 *
 * agg_gates.c
 *	  Owns where the gate calls in the arguments of aggregates and window
 *	  functions are evaluated when their node reads a row more than once.
 *	  A hashed aggregate (HashAggregate, MixedAggregate) evaluates its
 *	  aggregates' arguments for every input row, also for a row whose group
 *	  it spills to disk, and again when it reads the spilled rows back; an
 *	  aggregate of several grouping sets evaluates them once per sort of
 *	  its rows; a window aggregate, for every frame a row is in.  A gate
 *	  call there would decide, decrypt and count a cell two or more times.
 *	  Once a statement is planned, each gate call that such arguments
 *	  evaluate for every row the aggregate takes is therefore moved into
 *	  the node's input, which computes the gated value once a row (a Result
 *	  node is added where the input cannot project); the aggregate reads it
 *	  as a column, and a spilled or re-sorted row carries it.  Under an
 *	  aggregate's FILTER the input computes CASE WHEN filter THEN gate END,
 *	  if it can evaluate the FILTER to the same answer (no gate and no
 *	  volatile function in it).  A column of an aggregate's input that
 *	  nothing reads any more becomes a NULL of its type, so that its raw
 *	  value is not carried up (and the gated scan, gated_scan.c, can mask
 *	  it).  Gate calls that are evaluated for some rows only (inside CASE,
 *	  COALESCE, AND, OR, or under a FILTER the input cannot evaluate) stay
 *	  where they are; the gates of such a FILTER, evaluated for every row,
 *	  move.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planmain.h"
#include "utils/lsyscache.h"

#include "agg_gates.h"
#include "gate_exec.h"
#include "plan_walk.h"

typedef struct AggGatesContext
{
	Oid			schema;			/* our schema: gate functions live there */
	List	   *input_tlist;	/* the aggregate's input's target list */
	bool		input_computes; /* the input computes the moved calls
								 * itself; else a Result added above it
								 * does, from the input's output columns */
	List	   *moved;			/* TargetEntries to add to it */
	int			next_resno;
	int			conditional;	/* > 0: evaluated for some rows only */
	Expr	   *filter;			/* the FILTER of the aggregate whose
								 * arguments are walked, or NULL */
} AggGatesContext;

/* a gate call, as gate.c writes it */
static bool
is_gate_call(Node *node, AggGatesContext *cxt)
{
	FuncExpr   *f;

	if (!IsA(node, FuncExpr))
		return false;
	f = (FuncExpr *) node;
	return f->funcformat == PFG_GATE_CALL_FORMAT &&
		get_func_namespace(f->funcid) == cxt->schema;
}

/*
 * Whether the input can compute 'node': it reads the input's columns
 * (OUTER_VAR) and constants only.
 */
static bool
not_movable_walker(Node *node, AggGatesContext *cxt)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		return var->varno != OUTER_VAR || var->varlevelsup != 0 ||
			var->varattno <= 0 || var->varattno > list_length(cxt->input_tlist);
	}
	if (IsA(node, Param) || IsA(node, SubPlan) || IsA(node, AlternativeSubPlan) ||
		IsA(node, Aggref) || IsA(node, GroupingFunc) || IsA(node, WindowFunc))
		return true;
	return expression_tree_walker(node, not_movable_walker, (void *) cxt);
}

/* whether 'node' calls a gate anywhere */
static bool
contains_gate_call(Node *node, AggGatesContext *cxt)
{
	if (node == NULL)
		return false;
	if (is_gate_call(node, cxt))
		return true;
	return expression_tree_walker(node, contains_gate_call, (void *) cxt);
}

/*
 * Whether a column that 'node' reads is computed by the input with a
 * volatile function: copied into the moved call, it would be computed
 * again, to another value (a Result above the input reads the column
 * computed once).  'node' reads the input's columns only
 * (not_movable_walker).
 */
static bool
reads_volatile_input(Node *node, AggGatesContext *cxt)
{
	if (node == NULL || !cxt->input_computes)
		return false;
	if (IsA(node, Var))
	{
		TargetEntry *tle = list_nth_node(TargetEntry, cxt->input_tlist,
										 ((Var *) node)->varattno - 1);

		return contain_volatile_functions((Node *) tle->expr);
	}
	return expression_tree_walker(node, reads_volatile_input, (void *) cxt);
}

/*
 * Whether the input can evaluate an aggregate's FILTER as well, to the
 * same answer: it calls no gate (which would then be called twice) and no
 * volatile function, and reads the input's columns and constants only.
 */
static bool
movable_filter(Expr *filter, AggGatesContext *cxt)
{
	return !contains_gate_call((Node *) filter, cxt) &&
		!contain_volatile_functions((Node *) filter) &&
		!not_movable_walker((Node *) filter, cxt) &&
		!reads_volatile_input((Node *) filter, cxt);
}

/*
 * 'node' as the node that computes the moved calls must read it.  The
 * input itself: the input's columns replaced by the input's expressions
 * (over the input's own input).  A Result added above the input: as it is,
 * since its OUTER_VARs are the input's output columns there too.
 */
static Node *
input_expression_mutator(Node *node, AggGatesContext *cxt)
{
	if (node == NULL)
		return NULL;
	if (!cxt->input_computes)
		return (Node *) copyObject(node);
	if (IsA(node, Var))
	{
		TargetEntry *tle = list_nth_node(TargetEntry, cxt->input_tlist,
										 ((Var *) node)->varattno - 1);

		return (Node *) copyObject(tle->expr);
	}
	return expression_tree_mutator(node, input_expression_mutator, (void *) cxt);
}

/* gate calls evaluated for every row, in an aggregate's arguments */
static Node *
arguments_mutator(Node *node, AggGatesContext *cxt)
{
	bool		all;
	Node	   *result;

	if (node == NULL)
		return NULL;
	if (cxt->conditional == 0 && is_gate_call(node, cxt) &&
		!not_movable_walker(node, cxt) && !reads_volatile_input(node, cxt))
	{
		FuncExpr   *f = (FuncExpr *) node;
		Expr	   *moved = (Expr *) input_expression_mutator(node, cxt);
		AttrNumber	resno = (AttrNumber) cxt->next_resno++;

		/*
		 * Under a FILTER: CASE WHEN filter THEN gate END, so that the gate
		 * is called for the rows the aggregate takes, as before
		 */
		if (cxt->filter != NULL)
		{
			CaseWhen   *when = makeNode(CaseWhen);
			CaseExpr   *guarded = makeNode(CaseExpr);

			when->expr = (Expr *) input_expression_mutator((Node *) cxt->filter, cxt);
			when->result = moved;
			when->location = -1;
			guarded->casetype = f->funcresulttype;
			guarded->casecollid = f->funccollid;
			guarded->args = list_make1(when);
			guarded->defresult = (Expr *) makeNullConst(f->funcresulttype, -1,
														f->funccollid);
			guarded->location = -1;
			moved = (Expr *) guarded;
		}

		cxt->moved = lappend(cxt->moved,
							 makeTargetEntry(moved, resno, NULL, true));
		return (Node *) makeVar(OUTER_VAR, resno, f->funcresulttype, -1,
								f->funccollid, 0);
	}
	all = pfg_evaluates_all_parts(node);
	if (!all)
		cxt->conditional++;
	result = expression_tree_mutator(node, arguments_mutator, (void *) cxt);
	if (!all)
		cxt->conditional--;
	return result;
}

/*
 * The arguments of the aggregates and window functions (not an
 * ordered-set aggregate's direct arguments, evaluated once a group), under
 * a FILTER only if the input can evaluate the FILTER too; else the
 * FILTER's own gates.
 */
static Node *
aggregates_mutator(Node *node, AggGatesContext *cxt)
{
	List	  **args;
	Expr	  **filter;
	int			conditional = cxt->conditional;

	if (node == NULL)
		return NULL;
	if (IsA(node, Aggref))
	{
		Aggref	   *aggref = (Aggref *) copyObject(node);

		args = &aggref->args;
		filter = &aggref->aggfilter;
		node = (Node *) aggref;
	}
	else if (IsA(node, WindowFunc))
	{
		WindowFunc *wfunc = (WindowFunc *) copyObject(node);

		args = &wfunc->args;
		filter = &wfunc->aggfilter;
		node = (Node *) wfunc;
	}
	else
		return expression_tree_mutator(node, aggregates_mutator, (void *) cxt);
	cxt->conditional = 0;
	if (*filter == NULL || movable_filter(*filter, cxt))
	{
		cxt->filter = *filter;
		*args = (List *) arguments_mutator((Node *) *args, cxt);
		cxt->filter = NULL;
	}
	else
	{
		/* the FILTER is evaluated for every row: its own gates can move */
		*filter = (Expr *) arguments_mutator((Node *) *filter, cxt);
	}
	cxt->conditional = conditional;
	return node;
}

/* marks the input's columns that 'node' reads */
static bool
input_columns_walker(Node *node, bool *read)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var) && ((Var *) node)->varno == OUTER_VAR &&
		((Var *) node)->varattno > 0)
		read[((Var *) node)->varattno] = true;
	return expression_tree_walker(node, input_columns_walker, (void *) read);
}

/*
 * The input's target list once the gate calls are moved: a column nothing
 * reads any more becomes a NULL of its type, the moved calls follow.  Only
 * for an aggregate of one grouping set; for others (agg NULL), every
 * column is kept.
 */
static List *
input_tlist_after(Agg *agg, List *tlist, List *moved)
{
	int			n = list_length(tlist);
	/* the aggregate reads the moved columns too, numbered after the others */
	bool	   *read = palloc0(sizeof(bool) * (n + list_length(moved) + 1));
	List	   *result = NIL;
	ListCell   *lc;

	if (agg != NULL && agg->chain == NIL)
	{
		input_columns_walker((Node *) agg->plan.targetlist, read);
		input_columns_walker((Node *) agg->plan.qual, read);
		for (int i = 0; i < agg->numCols; i++)
			read[agg->grpColIdx[i]] = true;
	}
	else
		memset(read, true, sizeof(bool) * (n + 1));
	foreach(lc, tlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		if (!read[tle->resno])
		{
			tle = flatCopyTargetEntry(tle);
			tle->expr = (Expr *) makeNullConst(exprType((Node *) tle->expr),
											   exprTypmod((Node *) tle->expr),
											   exprCollation((Node *) tle->expr));
		}
		result = lappend(result, tle);
	}
	return list_concat(result, moved);
}

/*
 * A Result node above 'input' that passes its columns through, numbered
 * after every node of the statement.
 */
static Plan *
projecting_input(Plan *input, PlannedStmt *stmt)
{
	Result	   *result = makeNode(Result);
	ListCell   *lc;

	result->plan.startup_cost = input->startup_cost;
	result->plan.total_cost = input->total_cost;
	result->plan.plan_rows = input->plan_rows;
	result->plan.plan_width = input->plan_width;
	result->plan.parallel_safe = false;
	result->plan.plan_node_id = pfg_next_plan_node_id(stmt);
	result->plan.extParam = bms_copy(input->extParam);
	result->plan.allParam = bms_copy(input->allParam);
	foreach(lc, input->targetlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		result->plan.targetlist =
			lappend(result->plan.targetlist,
					makeTargetEntry((Expr *) makeVarFromTargetEntry(OUTER_VAR, tle),
									tle->resno, NULL, tle->resjunk));
	}
	result->plan.lefttree = input;
	return (Plan *) result;
}

/* the gate calls of an Agg's or a WindowAgg's arguments, moved to its input */
static void
move_gates(Plan *plan, Oid schema, PlannedStmt *stmt)
{
	AggGatesContext cxt;
	List	   *tlist;
	List	   *qual;

	if (plan->lefttree == NULL)
		return;
	memset(&cxt, 0, sizeof(cxt));
	cxt.schema = schema;
	cxt.input_tlist = plan->lefttree->targetlist;
	cxt.input_computes = is_projection_capable_plan(plan->lefttree);
	cxt.next_resno = list_length(cxt.input_tlist) + 1;
	tlist = (List *) aggregates_mutator((Node *) plan->targetlist, &cxt);
	qual = (List *) aggregates_mutator((Node *) plan->qual, &cxt);
	if (cxt.moved == NIL)
		return;

	plan->targetlist = tlist;
	plan->qual = qual;
	if (!cxt.input_computes)
		plan->lefttree = projecting_input(plan->lefttree, stmt);
	plan->lefttree->targetlist =
		input_tlist_after(IsA(plan, Agg) ? (Agg *) plan : NULL,
						  plan->lefttree->targetlist, cxt.moved);
}

/*
 * Whether 'plan' may evaluate its aggregates' or window functions'
 * arguments more than once for a row: a hashed aggregate (it may spill),
 * one of several grouping sets (it sorts its rows for each), a window
 * aggregate (a row enters and leaves moving frames; other window functions
 * read other rows' arguments).
 */
static bool
reads_rows_again(Plan *plan)
{
	if (IsA(plan, Agg))
	{
		Agg		   *agg = (Agg *) plan;

		return agg->aggstrategy == AGG_HASHED || agg->aggstrategy == AGG_MIXED ||
			agg->chain != NIL;
	}
	return IsA(plan, WindowAgg);
}

static void
agg_gates_tree(Plan *plan, Oid schema, PlannedStmt *stmt)
{
	List	  **children;
	ListCell   *lc;

	if (plan == NULL)
		return;
	if (reads_rows_again(plan))
		move_gates(plan, schema, stmt);
	agg_gates_tree(plan->lefttree, schema, stmt);
	agg_gates_tree(plan->righttree, schema, stmt);
	if (IsA(plan, SubqueryScan))
		agg_gates_tree(((SubqueryScan *) plan)->subplan, schema, stmt);
	if ((children = pfg_plan_child_list(plan)) != NULL)
		foreach(lc, *children)
			agg_gates_tree((Plan *) lfirst(lc), schema, stmt);
}

/*
 * Once a statement is planned and gated (gate.c), before the gated scans
 * are put in place; gate_schema is the schema of the gate functions the
 * statement's gates call.
 */
void
pfg_agg_gates_plan(PlannedStmt *stmt, Oid gate_schema)
{
	ListCell   *lc;

	agg_gates_tree(stmt->planTree, gate_schema, stmt);
	foreach(lc, stmt->subplans)
		agg_gates_tree((Plan *) lfirst(lc), gate_schema, stmt);
}
