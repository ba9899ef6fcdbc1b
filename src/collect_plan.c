/*-------------------------------------------------------------------------
 *
 * collect_plan.c
 *	  Owns the collecting insert and its setting
 *	  profile_guard.collect_in_plan: a custom node that an INSERT into a
 *	  guarded table gets right under its ModifyTable, and that collects
 *	  each row there (collect.c: the consent check, the lexicon, the
 *	  collection stamps, the encryption of sensitive values) on the row's
 *	  values as the plan produces them, instead of the collection trigger.
 *	  What it saves is the trigger's call and the row formed for it, formed
 *	  again and copied.
 *	  It stands in for the trigger only where the trigger would fire and is
 *	  the only BEFORE ROW INSERT trigger of the table that would: then, as
 *	  the statement starts, the trigger is switched off in the statement's
 *	  own copy of the table's triggers, and no row reaches the table
 *	  without passing the node.  Otherwise the node passes the rows on as
 *	  they are and the trigger collects them.  Every other write keeps the
 *	  trigger: COPY, UPDATE, INSERT ... ON CONFLICT DO UPDATE, rows routed
 *	  through a partitioned table, logical replication.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "commands/explain.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "catalog.h"
#include "collect.h"
#include "plan_walk.h"

#define COLLECT_NODE_NAME	"ProfileGuardCollect"
#define COLLECT_FUNCTION	"_collect"

static bool collect_in_plan = true;

static const CustomScanMethods collect_plan_methods;

/*
 * Planning
 * --------
 */

/* a guarded table whose rows are collected (wide or long shape)? */
static bool
collects_rows(Oid relid)
{
	GuardedRelation *grel;

	if (get_rel_relkind(relid) != RELKIND_RELATION)
		return false;
	grel = pfg_guarded_relation_copy(relid);
	return grel != NULL &&
		(grel->ncolumns > 0 || grel->tag_attnum != InvalidAttrNumber);
}

/*
 * Does the subplan produce the table's row as it is stored: one entry per
 * attribute, in order, nothing junk?  (What the planner makes of every
 * INSERT; checked rather than assumed, since the node reads the values by
 * attribute number.)
 */
static bool
produces_table_row(Plan *subplan, Oid relid)
{
	ListCell   *lc;
	AttrNumber	attno = 0;

	foreach(lc, subplan->targetlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		if (tle->resjunk || tle->resno != ++attno)
			return false;
	}
	return attno == pfg_relation_natts(relid);
}

/*
 * The collecting node over an INSERT's subplan.  Its scan tuple is the
 * subplan's row (Vars of OUTER_VAR, for EXPLAIN); its target list reads
 * that tuple back (INDEX_VAR) but for the null constants the planner puts
 * in dropped columns' places, which ModifyTable insists on seeing.
 */
static Plan *
collecting_node(Plan *subplan, Index rti)
{
	CustomScan *cscan = makeNode(CustomScan);
	ListCell   *lc;

	cscan->scan.plan.startup_cost = subplan->startup_cost;
	cscan->scan.plan.total_cost = subplan->total_cost;
	cscan->scan.plan.plan_rows = subplan->plan_rows;
	cscan->scan.plan.plan_width = subplan->plan_width;
	cscan->scan.plan.parallel_safe = false;
	cscan->scan.plan.lefttree = subplan;
	cscan->scan.scanrelid = 0;
	foreach(lc, subplan->targetlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Node	   *expr = (Node *) tle->expr;
		Var		   *outer = makeVar(OUTER_VAR, tle->resno, exprType(expr),
									exprTypmod(expr), exprCollation(expr), 0);
		Expr	   *read;

		cscan->custom_scan_tlist = lappend(cscan->custom_scan_tlist,
										   makeTargetEntry((Expr *) outer, tle->resno,
														   tle->resname, false));
		if (IsA(expr, Const) && ((Const *) expr)->constisnull)
			read = (Expr *) copyObject(expr);
		else
			read = (Expr *) makeVar(INDEX_VAR, tle->resno, exprType(expr),
									exprTypmod(expr), exprCollation(expr), 0);
		cscan->scan.plan.targetlist = lappend(cscan->scan.plan.targetlist,
											  makeTargetEntry(read, tle->resno,
															  tle->resname, false));
	}
	cscan->custom_private = list_make1_int((int) rti);
	cscan->methods = &collect_plan_methods;
	return (Plan *) cscan;
}

static void
collect_plan_tree(Plan *plan, PlannedStmt *stmt)
{
	List	  **children;
	ListCell   *lc;

	if (plan == NULL)
		return;
	collect_plan_tree(plan->lefttree, stmt);
	collect_plan_tree(plan->righttree, stmt);
	if (IsA(plan, SubqueryScan))
		collect_plan_tree(((SubqueryScan *) plan)->subplan, stmt);
	children = pfg_plan_child_list(plan);
	if (children != NULL)
		foreach(lc, *children)
			collect_plan_tree((Plan *) lfirst(lc), stmt);

	if (IsA(plan, ModifyTable))
	{
		ModifyTable *mt = (ModifyTable *) plan;
		Index		rti;
		Oid			relid;

		if (mt->operation != CMD_INSERT || list_length(mt->resultRelations) != 1 ||
			mt->onConflictAction == ONCONFLICT_UPDATE || outerPlan(mt) == NULL)
			return;
		rti = linitial_int(mt->resultRelations);
		relid = rt_fetch(rti, stmt->rtable)->relid;
		if (!collects_rows(relid) || !produces_table_row(outerPlan(mt), relid))
			return;
		outerPlan(mt) = collecting_node(outerPlan(mt), rti);
		outerPlan(mt)->plan_node_id = pfg_next_plan_node_id(stmt);
	}
}

/*
 * Once a statement is planned (gate.c): the INSERTs into guarded tables
 * collect their rows in the plan.
 */
void
pfg_collect_plan(PlannedStmt *stmt)
{
	ListCell   *lc;

	if (!collect_in_plan ||
		(stmt->commandType != CMD_INSERT && !stmt->hasModifyingCTE))
		return;
	collect_plan_tree(stmt->planTree, stmt);
	foreach(lc, stmt->subplans)
		collect_plan_tree((Plan *) lfirst(lc), stmt);
}

/*
 * Execution
 * ---------
 */
typedef struct CollectPlanState
{
	CustomScanState css;
	Index		rti;			/* the INSERT's result relation */
	Relation	rel;
	TriggerDesc *trigdesc;		/* the statement's copy of the table's triggers */
	bool		before_row;		/* its trig_insert_before_row as it was made */
	int			replication_role;	/* SessionReplicationRole it was decided under */
	bool		collects;		/* the node stands in for the trigger */
	CollectSite *site;
} CollectPlanState;

static const CustomExecMethods collect_exec_methods;

static Node *
create_collect_state(CustomScan *cscan)
{
	CollectPlanState *cs = (CollectPlanState *) newNode(sizeof(CollectPlanState),
														T_CustomScanState);

	cs->css.methods = &collect_exec_methods;
	cs->rti = (Index) linitial_int(cscan->custom_private);
	return (Node *) cs;
}

/* is t our collection trigger (profile_guard._collect(), unconditional)? */
static bool
is_collection_trigger(const Trigger *t)
{
	char	   *name;
	bool		ours;

	if (t->tgqual != NULL || get_func_namespace(t->tgfoid) != pfg_schema_oid())
		return false;
	name = get_func_name(t->tgfoid);
	ours = (name != NULL && strcmp(name, COLLECT_FUNCTION) == 0);
	if (name != NULL)
		pfree(name);
	return ours;
}

/*
 * Take the collection over from the trigger, if the setting is on (now: a
 * plan may have been made under another value), the trigger would fire and
 * no other BEFORE ROW INSERT trigger would: the statement's copy of the
 * table's triggers (InitResultRelInfo() copies them for each statement)
 * then fires none before the row.  Whether a trigger fires depends on
 * session_replication_role, which the executor reads for every row: taken
 * again whenever that changes (a function the statement calls may set it).
 */
static void
decide(CollectPlanState *cs)
{
	TriggerDesc *td = cs->trigdesc;
	bool		ours = false;

	cs->replication_role = SessionReplicationRole;
	cs->collects = false;
	if (td == NULL)
		return;
	td->trig_insert_before_row = cs->before_row;
	if (!collect_in_plan || !td->trig_insert_before_row)
		return;
	for (int i = 0; i < td->numtriggers; i++)
	{
		const Trigger *t = &td->triggers[i];

		if (!TRIGGER_TYPE_MATCHES(t->tgtype, TRIGGER_TYPE_ROW, TRIGGER_TYPE_BEFORE,
								  TRIGGER_TYPE_INSERT) ||
			!pfg_trigger_fires_now(t))
			continue;
		if (ours || !is_collection_trigger(t))
			return;
		ours = true;
	}
	if (ours)
		td->trig_insert_before_row = false;
	cs->collects = ours;
}

static void
begin_collect(CustomScanState *node, EState *estate, int eflags)
{
	CollectPlanState *cs = (CollectPlanState *) node;
	ResultRelInfo *rri;

	outerPlanState(node) = ExecInitNode(outerPlan(node->ss.ps.plan), estate, eflags);
	/* ModifyTable opens its result relations before its subplan */
	rri = (estate->es_result_relations != NULL && cs->rti <= estate->es_range_table_size) ?
		estate->es_result_relations[cs->rti - 1] : NULL;
	if (rri == NULL)
		elog(ERROR, "collecting insert: result relation %u is not open", cs->rti);
	cs->rel = rri->ri_RelationDesc;
	/* the values are read by attribute number (produces_table_row()) */
	if (node->ss.ss_ScanTupleSlot->tts_tupleDescriptor->natts !=
		RelationGetDescr(cs->rel)->natts)
		elog(ERROR, "collecting insert: %d columns for relation \"%s\" of %d",
			 node->ss.ss_ScanTupleSlot->tts_tupleDescriptor->natts,
			 RelationGetRelationName(cs->rel), RelationGetDescr(cs->rel)->natts);
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	cs->trigdesc = rri->ri_TrigDesc;
	cs->before_row = cs->trigdesc != NULL && cs->trigdesc->trig_insert_before_row;
	cs->site = pfg_collect_site(estate->es_query_cxt);
	decide(cs);
}

/* the subplan's next row, collected (its sensitive values encrypted) */
static TupleTableSlot *
exec_collect(CustomScanState *node)
{
	CollectPlanState *cs = (CollectPlanState *) node;
	TupleTableSlot *in = ExecProcNode(outerPlanState(node));
	TupleTableSlot *row = node->ss.ss_ScanTupleSlot;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	int			natts = row->tts_tupleDescriptor->natts;
	MemoryContext old;

	if (TupIsNull(in))
		return NULL;
	if (unlikely(SessionReplicationRole != cs->replication_role))
		decide(cs);

	/*
	 * What the row's collection allocates (a ciphertext, a subject's text)
	 * lives until the next row: ModifyTable copies the row into the
	 * table's own slot before it asks for another.
	 */
	ResetExprContext(econtext);
	ExecClearTuple(row);
	slot_getallattrs(in);
	memcpy(row->tts_values, in->tts_values, sizeof(Datum) * natts);
	memcpy(row->tts_isnull, in->tts_isnull, sizeof(bool) * natts);
	ExecStoreVirtualTuple(row);
	if (cs->collects)
	{
		old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
		pfg_collect_new_row(cs->site, cs->rel, row->tts_values, row->tts_isnull);
		MemoryContextSwitchTo(old);
	}
	if (node->ss.ps.ps_ProjInfo == NULL)
		return row;
	econtext->ecxt_scantuple = row;
	return ExecProject(node->ss.ps.ps_ProjInfo);
}

static void
end_collect(CustomScanState *node)
{
	ExecEndNode(outerPlanState(node));
}

static void
rescan_collect(CustomScanState *node)
{
	if (outerPlanState(node)->chgParam == NULL)
		ExecReScan(outerPlanState(node));
}

/*
 * EXPLAIN: the table whose rows it collects; with ANALYZE, who collected
 * them (the last rows, if session_replication_role changed on the way):
 * the plan, or the trigger
 */
static void
explain_collect(CustomScanState *node, List *ancestors, ExplainState *es)
{
	CollectPlanState *cs = (CollectPlanState *) node;

	ExplainPropertyText("Collects For", RelationGetRelationName(cs->rel), es);
	if (es->analyze)
		ExplainPropertyText("Collected By", cs->collects ? "plan" : "trigger", es);
}

static const CustomScanMethods collect_plan_methods = {
	.CustomName = COLLECT_NODE_NAME,
	.CreateCustomScanState = create_collect_state,
};

static const CustomExecMethods collect_exec_methods = {
	.CustomName = COLLECT_NODE_NAME,
	.BeginCustomScan = begin_collect,
	.ExecCustomScan = exec_collect,
	.EndCustomScan = end_collect,
	.ReScanCustomScan = rescan_collect,
	.ExplainCustomScan = explain_collect,
};

/* _PG_init: the setting, and the node's name */
void
pfg_collect_plan_init(void)
{
	DefineCustomBoolVariable("profile_guard.collect_in_plan",
							 "Collects the rows of an INSERT into a guarded table in its plan.",
							 "Off: the collection trigger collects every row (read as each INSERT starts, plans made before included). Either way the same rows are refused and the same values stored; it changes the speed only.",
							 &collect_in_plan,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	RegisterCustomScanMethods(&collect_plan_methods);
}
