/*-------------------------------------------------------------------------
 *
 * gated_scan.c
 *	  Owns the gated scan and its setting profile_guard.gated_scan: a
 *	  custom scan node that stands in for a sequential scan of a wide-shape
 *	  guarded table and takes the gates' decisions as it reads, one row at
 *	  a time, without calling the gate functions through the expression
 *	  interpreter:
 *	    - the row gate (_row_gate, the scan's security qual), and
 *	    - the cell gates (_cell_gate) of the columns it masks, whose values
 *	      leave the scan already masked (NULL when not served).
 *	  The decisions are those of the gate functions (gate_eval.h), counted
 *	  and refused alike.  After planning, a sequential scan is replaced only
 *	  where the result is the same cell for cell and count for count:
 *	    - a read-only SELECT (no row marks, no data-modifying CTE);
 *	    - the row gate is the scan's only qual, so every row it passes is
 *	      returned, as the interpreter's cell gates would have seen it;
 *	    - a masked column is read exactly once, inside a cell gate for the
 *	      table's subject, either in the scan's own target list or, passed
 *	      through it, in an aggregate's arguments in the plain (not hashed)
 *	      aggregate right above it;
 *	    - that cell gate is called for every row: it stands in no part of
 *	      an expression that may be skipped (CASE, COALESCE, AND, OR, an
 *	      aggregate's FILTER, ...);
 *	    - no system column or whole-row reference.
 *	  A parallel sequential scan becomes a parallel gated scan: the leader
 *	  and its workers share the table's pages, and each takes the gates of
 *	  its rows (parallel_gates.c says when workers may).
 *	  Everything else keeps the sequential scan and the gate functions.
 *	  Plans are made gated by gate.c; this file only changes how the gates
 *	  of such a plan run.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tableam.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "gate_eval.h"
#include "gate_exec.h"
#include "gated_scan.h"
#include "plan_walk.h"

#define GATED_SCAN_NAME		"ProfileGuardGatedScan"

static bool gated_scan_enabled = true;

/*
 * Planning
 * --------
 * What a scan's (and its parent's) expressions do with each attribute of
 * the scanned table, by attribute number.
 */
typedef struct ColumnUse
{
	int			gate_refs;		/* reads inside a cell gate of the subject */
	int			raw_refs;		/* any other read */
	int			tag_id;			/* the cell gates' tag; -1 when they differ */
	int			passed_at;		/* resno in the scan's target list, or 0 */
	int			order;			/* when its first cell gate was met */
} ColumnUse;

typedef struct GatedScanPlanning
{
	Oid			row_gate_fn;
	Oid			cell_gate_fn;
	List	   *rtable;
	/* the scan being considered */
	Index		scanrelid;
	AttrNumber	subject_attno;
	int			ncolumns;		/* attribute numbers 1..ncolumns */
	ColumnUse  *use;			/* [ncolumns + 1] */
	bool		unsupported;	/* system column or whole-row reference */
	int			gates_met;		/* cell gates met so far */
	int			conditional;	/* > 0: the expression being walked may be
								 * evaluated for some rows only */
	/* the parent, as it reads the scan's target list (by resno) */
	int			nresnos;
	AttrNumber *resno_attno;	/* [nresnos + 1]: the attribute a resno
								 * passes through, else 0 */
	bool	   *masked;			/* [ncolumns + 1]: the scan masks it */
} GatedScanPlanning;

/* _cell_gate(subject, tag_id, value), as gate.c writes it */
static FuncExpr *
as_cell_gate(Node *node, GatedScanPlanning *p, Var **subject, Var **value,
			 int *tag_id)
{
	FuncExpr   *f;
	Const	   *tag;

	if (!IsA(node, FuncExpr))
		return NULL;
	f = (FuncExpr *) node;
	if (f->funcid != p->cell_gate_fn || f->funcformat != PFG_GATE_CALL_FORMAT ||
		list_length(f->args) != 3 ||
		!IsA(linitial(f->args), Var) || !IsA(lsecond(f->args), Const) ||
		!IsA(lthird(f->args), Var))
		return NULL;
	tag = lsecond_node(Const, f->args);
	if (tag->constisnull || tag->consttype != INT4OID)
		return NULL;
	*subject = linitial_node(Var, f->args);
	*value = lthird_node(Var, f->args);
	*tag_id = DatumGetInt32(tag->constvalue);
	if ((*subject)->varlevelsup != 0 || (*value)->varlevelsup != 0)
		return NULL;
	return f;
}

static void
note_gate_ref(GatedScanPlanning *p, ColumnUse *u, int tag_id)
{
	p->gates_met++;
	if (u->gate_refs++ == 0)
	{
		u->tag_id = tag_id;
		u->order = p->gates_met;
	}
	else if (u->tag_id != tag_id)
		u->tag_id = -1;
}

/* walks the parts of 'node', conditionally evaluated ones as such */
static bool
walk_parts(Node *node, bool (*walker) (), GatedScanPlanning *p)
{
	bool		all = pfg_evaluates_all_parts(node);
	bool		result;

	if (!all)
		p->conditional++;
	result = expression_tree_walker(node, walker, (void *) p);
	if (!all)
		p->conditional--;
	return result;
}

/*
 * The column that 'node' reads of the scanned table, if it is a cell gate of
 * the table's subject over another of its columns (in the scan's own
 * expressions); else 0.  *value is the gate's column reference.
 */
static AttrNumber
scan_gate_column(Node *node, GatedScanPlanning *p, Var **value, int *tag_id)
{
	Var		   *subject;

	if (as_cell_gate(node, p, &subject, value, tag_id) &&
		subject->varno == p->scanrelid && subject->varattno == p->subject_attno &&
		(*value)->varno == p->scanrelid && (*value)->varattno > 0 &&
		(*value)->varattno <= p->ncolumns && (*value)->varattno != p->subject_attno)
		return (*value)->varattno;
	return 0;
}

/* counts the reads of the scanned table's attributes in the scan's expressions */
static bool
scan_refs_walker(Node *node, GatedScanPlanning *p)
{
	Var		   *value;
	int			tag_id;
	AttrNumber	attno;

	if (node == NULL)
		return false;
	if (p->conditional == 0 &&
		(attno = scan_gate_column(node, p, &value, &tag_id)) > 0)
	{
		note_gate_ref(p, &p->use[attno], tag_id);
		return false;
	}
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if (var->varlevelsup == 0 && var->varno == p->scanrelid)
		{
			if (var->varattno <= 0 || var->varattno > p->ncolumns)
				p->unsupported = true;
			else
				p->use[var->varattno].raw_refs++;
		}
		return false;
	}
	return walk_parts(node, scan_refs_walker, p);
}

/* the attribute that the parent's Var reads, passed through the scan, or 0 */
static AttrNumber
parent_attno(Var *var, GatedScanPlanning *p)
{
	if (var->varno != OUTER_VAR || var->varattno <= 0 || var->varattno > p->nresnos)
		return 0;
	return p->resno_attno[var->varattno];
}

/*
 * The column that 'node' reads of the scanned table through the scan's
 * target list, if it is a cell gate of the table's subject over another of
 * its columns (in the parent's expressions); else 0.
 */
static AttrNumber
parent_gate_column(Node *node, GatedScanPlanning *p, Var **value, int *tag_id)
{
	Var		   *subject;
	AttrNumber	attno;

	if (as_cell_gate(node, p, &subject, value, tag_id) &&
		parent_attno(subject, p) == p->subject_attno &&
		(attno = parent_attno(*value, p)) > 0 && attno != p->subject_attno)
		return attno;
	return 0;
}

/* counts the parent's reads of attributes the scan passes through */
static bool
parent_refs_walker(Node *node, GatedScanPlanning *p)
{
	Var		   *value;
	int			tag_id;
	AttrNumber	attno;

	if (node == NULL)
		return false;
	if (p->conditional == 0 &&
		(attno = parent_gate_column(node, p, &value, &tag_id)) > 0)
	{
		note_gate_ref(p, &p->use[attno], tag_id);
		return false;
	}
	if (IsA(node, Var))
	{
		attno = parent_attno((Var *) node, p);
		if (attno > 0)
			p->use[attno].raw_refs++;
		return false;
	}
	if (IsA(node, Aggref) && ((Aggref *) node)->aggfilter == NULL &&
		((Aggref *) node)->aggdirectargs == NIL)
	{
		/*
		 * An aggregate's arguments are evaluated for every input row,
		 * wherever the aggregate stands in the expression (whose other
		 * parts are evaluated once per group).
		 */
		int			conditional = p->conditional;
		bool		result;

		p->conditional = 0;
		result = expression_tree_walker(node, parent_refs_walker, (void *) p);
		p->conditional = conditional;
		return result;
	}
	return walk_parts(node, parent_refs_walker, p);
}

/* a cell gate of a masked column becomes the (masked) column itself */
static Node *
scan_gates_mutator(Node *node, GatedScanPlanning *p)
{
	Var		   *value;
	int			tag_id;
	AttrNumber	attno;

	if (node == NULL)
		return NULL;
	if ((attno = scan_gate_column(node, p, &value, &tag_id)) > 0 && p->masked[attno])
		return (Node *) copyObject(value);
	return expression_tree_mutator(node, scan_gates_mutator, (void *) p);
}

static Node *
parent_gates_mutator(Node *node, GatedScanPlanning *p)
{
	Var		   *value;
	int			tag_id;
	AttrNumber	attno;

	if (node == NULL)
		return NULL;
	if ((attno = parent_gate_column(node, p, &value, &tag_id)) > 0 && p->masked[attno])
		return (Node *) copyObject(value);
	return expression_tree_mutator(node, parent_gates_mutator, (void *) p);
}

/* the scan's row gate, _row_gate(subject, relid), and its only qual */
static FuncExpr *
sole_row_gate(SeqScan *scan, GatedScanPlanning *p)
{
	FuncExpr   *f;
	Var		   *subject;
	Const	   *relid;

	if (list_length(scan->scan.plan.qual) != 1 ||
		!IsA(linitial(scan->scan.plan.qual), FuncExpr))
		return NULL;
	f = linitial_node(FuncExpr, scan->scan.plan.qual);
	if (f->funcid != p->row_gate_fn || f->funcformat != PFG_GATE_CALL_FORMAT ||
		list_length(f->args) != 2 ||
		!IsA(linitial(f->args), Var) || !IsA(lsecond(f->args), Const))
		return NULL;
	subject = linitial_node(Var, f->args);
	relid = lsecond_node(Const, f->args);
	if (subject->varno != scan->scan.scanrelid || subject->varlevelsup != 0 ||
		subject->varattno <= 0 || relid->constisnull)
		return NULL;
	return f;
}

/* masked columns in the order their cell gates were met */
static int
compare_gate_order(const void *a, const void *b, void *arg)
{
	const ColumnUse *use = (const ColumnUse *) arg;

	return use[*(const AttrNumber *) a].order - use[*(const AttrNumber *) b].order;
}

static const CustomScanMethods gated_scan_plan_methods;

/*
 * The gated scan that stands in for 'scan' (whose parent plan node is
 * 'parent', NULL at the top of a plan), or NULL when it would not give
 * the same result.  The parent's expressions are changed to read the
 * masked columns it passed through.
 */
static Plan *
gated_scan_for(SeqScan *scan, Plan *parent, GatedScanPlanning *p)
{
	RangeTblEntry *rte = rt_fetch(scan->scan.scanrelid, p->rtable);
	FuncExpr   *gate = sole_row_gate(scan, p);
	Var		   *subject;
	CustomScan *cscan;
	List	   *cells = NIL;
	int			natts = 0;
	ListCell   *lc;
	AttrNumber	attno;
	AttrNumber *masked;
	int			nmasked = 0;
	int			i;
	bool		parent_reads = false;
	bool		parent_gated = false;	/* the parent's gates may be taken */

	if (gate == NULL || rte->rtekind != RTE_RELATION)
		return NULL;
	subject = linitial_node(Var, gate->args);

	p->scanrelid = scan->scan.scanrelid;
	p->subject_attno = subject->varattno;
	p->ncolumns = pfg_relation_natts(rte->relid);
	if (p->subject_attno > p->ncolumns)
		return NULL;
	p->use = palloc0(sizeof(ColumnUse) * (p->ncolumns + 1));
	p->masked = palloc0(sizeof(bool) * (p->ncolumns + 1));
	p->unsupported = false;
	p->gates_met = 0;
	p->nresnos = list_length(scan->scan.plan.targetlist);
	p->resno_attno = palloc0(sizeof(AttrNumber) * (p->nresnos + 1));

	/* the scan's own reads; a plain column in its target list passes through */
	foreach(lc, scan->scan.plan.targetlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Var		   *var = (Var *) tle->expr;

		if (IsA(var, Var) && var->varno == p->scanrelid && var->varlevelsup == 0 &&
			var->varattno > 0 && var->varattno <= p->ncolumns &&
			tle->resno <= p->nresnos)
		{
			if (p->use[var->varattno].passed_at != 0)
				p->use[var->varattno].raw_refs++;	/* passed twice */
			p->use[var->varattno].passed_at = tle->resno;
			p->resno_attno[tle->resno] = var->varattno;
		}
		else
			scan_refs_walker((Node *) tle->expr, p);
	}
	if (p->unsupported)
		return NULL;

	/* what the parent reads of the columns passed through */
	for (attno = 1; attno <= p->ncolumns; attno++)
		parent_reads |= (p->use[attno].passed_at != 0);
	if (parent_reads)
	{
		Agg		   *agg = (Agg *) parent;

		/*
		 * A plain aggregate reads its input in its expressions only.  A
		 * hashed one may read rows again (the groups it spills): the gates
		 * of its arguments that were called for every row are in the
		 * scan's target list already (agg_gates.c), the others stay calls.
		 */
		if (parent != NULL && IsA(parent, Agg) && parent->lefttree == (Plan *) scan &&
			agg->groupingSets == NIL && agg->chain == NIL &&
			(agg->aggstrategy == AGG_PLAIN || agg->aggstrategy == AGG_SORTED))
		{
			for (i = 0; i < agg->numCols; i++)
				if (agg->grpColIdx[i] <= p->nresnos &&
					p->resno_attno[agg->grpColIdx[i]] > 0)
					p->use[p->resno_attno[agg->grpColIdx[i]]].raw_refs++;
			/* outside its aggregates, an expression is evaluated per group */
			p->conditional = 1;
			parent_refs_walker((Node *) parent->targetlist, p);
			parent_refs_walker((Node *) parent->qual, p);
			p->conditional = 0;
			parent_gated = true;
		}
		else
		{
			/* unknown readers: nothing passed through can be masked */
			for (attno = 1; attno <= p->ncolumns; attno++)
				if (p->use[attno].passed_at != 0)
					p->use[attno].raw_refs++;
		}
	}

	/*
	 * Masked: read once, by a cell gate of one tag, and never raw.  In the
	 * order their gates were met, which is the order the interpreter would
	 * evaluate them in (and the audit line lists tags as first counted).
	 */
	masked = palloc(sizeof(AttrNumber) * (p->ncolumns + 1));
	for (attno = 1; attno <= p->ncolumns; attno++)
	{
		ColumnUse  *u = &p->use[attno];

		if (u->gate_refs == 1 && u->raw_refs == 0 && u->tag_id >= 0)
		{
			p->masked[attno] = true;
			masked[nmasked++] = attno;
		}
	}
	qsort_arg(masked, nmasked, sizeof(AttrNumber), compare_gate_order, p->use);
	for (i = 0; i < nmasked; i++)
	{
		cells = lappend_int(cells, masked[i]);
		cells = lappend_int(cells, p->use[masked[i]].tag_id);
	}

	/* the attributes read: the subject, the target list's Vars */
	natts = p->subject_attno;
	for (attno = 1; attno <= p->ncolumns; attno++)
		if (p->use[attno].gate_refs > 0 || p->use[attno].raw_refs > 0 ||
			p->use[attno].passed_at != 0)
			natts = Max(natts, attno);

	cscan = makeNode(CustomScan);
	cscan->scan = scan->scan;
	cscan->scan.plan.type = T_CustomScan;
	cscan->scan.plan.qual = NIL;
	cscan->scan.plan.targetlist = (List *)
		scan_gates_mutator((Node *) scan->scan.plan.targetlist, p);
	cscan->flags = CUSTOMPATH_SUPPORT_BACKWARD_SCAN;
	cscan->custom_relids = bms_make_singleton(scan->scan.scanrelid);
	cscan->custom_private =
		list_make2(list_make4_int((int) DatumGetObjectId(lsecond_node(Const, gate->args)->constvalue),
								  p->subject_attno, (int) subject->vartype, natts),
				   cells);
	cscan->methods = &gated_scan_plan_methods;
	if (parent_gated)
	{
		parent->targetlist = (List *)
			parent_gates_mutator((Node *) parent->targetlist, p);
		parent->qual = (List *) parent_gates_mutator((Node *) parent->qual, p);
	}
	return (Plan *) cscan;
}

/* the plan below 'parent' (NULL at a plan's top), gated scans in place */
static Plan *
gate_plan_tree(Plan *plan, Plan *parent, GatedScanPlanning *p)
{
	ListCell   *lc;
	List	  **children = NULL;

	if (plan == NULL)
		return NULL;
	plan->lefttree = gate_plan_tree(plan->lefttree, plan, p);
	plan->righttree = gate_plan_tree(plan->righttree, plan, p);
	children = pfg_plan_child_list(plan);
	switch (nodeTag(plan))
	{
		case T_SubqueryScan:
			((SubqueryScan *) plan)->subplan =
				gate_plan_tree(((SubqueryScan *) plan)->subplan, plan, p);
			break;
		case T_SeqScan:
			{
				Plan	   *gated = gated_scan_for((SeqScan *) plan, parent, p);

				if (gated != NULL)
					return gated;
			}
			break;
		default:
			break;
	}
	if (children != NULL)
		foreach(lc, *children)
			lfirst(lc) = gate_plan_tree((Plan *) lfirst(lc), plan, p);
	return plan;
}

/*
 * Once a statement is planned and gated (gate.c): replace the sequential
 * scans whose gates the gated scan can take.  row_gate_fn and cell_gate_fn
 * are the gate functions gate.c wrote (InvalidOid: none).
 */
void
pfg_gated_scan_plan(PlannedStmt *stmt, Oid row_gate_fn, Oid cell_gate_fn)
{
	GatedScanPlanning p;
	ListCell   *lc;

	if (!gated_scan_enabled || !OidIsValid(row_gate_fn) || !OidIsValid(cell_gate_fn) ||
		stmt->commandType != CMD_SELECT || stmt->rowMarks != NIL ||
		stmt->hasModifyingCTE)
		return;
	memset(&p, 0, sizeof(p));
	p.row_gate_fn = row_gate_fn;
	p.cell_gate_fn = cell_gate_fn;
	p.rtable = stmt->rtable;
	stmt->planTree = gate_plan_tree(stmt->planTree, NULL, &p);
	foreach(lc, stmt->subplans)
		lfirst(lc) = gate_plan_tree((Plan *) lfirst(lc), NULL, &p);
}

/*
 * Execution
 * ---------
 */
typedef struct GatedScanState
{
	CustomScanState css;
	TupleTableSlot *heap_slot;	/* the table's tuple, before the gates */
	Oid			relid;			/* the row gate's table */
	AttrNumber	subject_attno;
	Oid			subject_type;
	int			natts;			/* attributes 1..natts are read */
	int			ncells;			/* masked columns */
	AttrNumber *cell_attno;
	int		   *cell_tag;
	int		   *audit_hint;		/* where each tag's counters were */
} GatedScanState;

static const CustomExecMethods gated_scan_exec_methods;

static Node *
create_gated_scan_state(CustomScan *cscan)
{
	GatedScanState *gs = (GatedScanState *) newNode(sizeof(GatedScanState),
													T_CustomScanState);
	List	   *head = linitial(cscan->custom_private);
	List	   *cells = lsecond(cscan->custom_private);
	int			i;

	gs->css.methods = &gated_scan_exec_methods;
	gs->relid = (Oid) list_nth_int(head, 0);
	gs->subject_attno = (AttrNumber) list_nth_int(head, 1);
	gs->subject_type = (Oid) list_nth_int(head, 2);
	gs->natts = list_nth_int(head, 3);
	gs->ncells = list_length(cells) / 2;
	gs->cell_attno = palloc(sizeof(AttrNumber) * Max(gs->ncells, 1));
	gs->cell_tag = palloc(sizeof(int) * Max(gs->ncells, 1));
	gs->audit_hint = palloc0(sizeof(int) * Max(gs->ncells, 1));
	for (i = 0; i < gs->ncells; i++)
	{
		gs->cell_attno[i] = (AttrNumber) list_nth_int(cells, 2 * i);
		gs->cell_tag[i] = list_nth_int(cells, 2 * i + 1);
	}
	return (Node *) gs;
}

static void
begin_gated_scan(CustomScanState *node, EState *estate, int eflags)
{
	GatedScanState *gs = (GatedScanState *) node;
	TupleTableSlot *out = node->ss.ss_ScanTupleSlot;
	int			i;

	if (gs->natts > out->tts_tupleDescriptor->natts)
		elog(ERROR, "gated scan of relation %u reads %d attributes, it has %d",
			 RelationGetRelid(node->ss.ss_currentRelation), gs->natts,
			 out->tts_tupleDescriptor->natts);
	gs->heap_slot = table_slot_create(node->ss.ss_currentRelation,
									  &estate->es_tupleTable);
	/* attributes after natts are read by no one: NULL for good */
	for (i = gs->natts; i < out->tts_tupleDescriptor->natts; i++)
	{
		out->tts_values[i] = (Datum) 0;
		out->tts_isnull[i] = true;
	}
}

/* the next row the row gate passes, its masked columns masked */
static TupleTableSlot *
gated_scan_next(ScanState *ss)
{
	GatedScanState *gs = (GatedScanState *) ss;
	EState	   *estate = ss->ps.state;
	TableScanDesc scan = ss->ss_currentScanDesc;
	TupleTableSlot *raw = gs->heap_slot;
	TupleTableSlot *out = ss->ss_ScanTupleSlot;
	ExprContext *econtext = ss->ps.ps_ExprContext;
	int			s = gs->subject_attno - 1;
	PurposeState *ps;
	const SubjectAnswer *answer = NULL;
	MemoryContext old;
	int			i;

	if (scan == NULL)
	{
		scan = table_beginscan(ss->ss_currentRelation, estate->es_snapshot, 0, NULL);
		ss->ss_currentScanDesc = scan;
	}
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (!table_scan_getnextslot(scan, estate->es_direction, raw))
			return ExecClearTuple(out);
		slot_getsomeattrs(raw, gs->natts);

		/*
		 * The row's gates, under the purpose resolved once for the row and
		 * the subject's answer looked up once: what the gate functions
		 * would decide, call by call.  What they allocate for a row (a
		 * subject's text, for one) lasts for that row only, as it does
		 * when they are functions evaluated in the per-row context: this
		 * function runs in the query's, and a scan of many rows, most of
		 * them hidden, would otherwise keep it all to the end.
		 */
		ResetExprContext(econtext);
		old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
		ps = pfg_purpose_for_statement(gs->relid, NULL);
		if (ps != NULL &&
			!pfg_gate_row_visible_under(ps, raw->tts_values[s], raw->tts_isnull[s],
										gs->subject_type, gs->relid, &answer))
		{
			MemoryContextSwitchTo(old);
			continue;
		}
		ExecClearTuple(out);
		for (i = 0; i < gs->natts; i++)
		{
			out->tts_values[i] = raw->tts_values[i];
			out->tts_isnull[i] = raw->tts_isnull[i];
		}
		for (i = 0; ps != NULL && i < gs->ncells; i++)
		{
			int			a = gs->cell_attno[i] - 1;

			if (!out->tts_isnull[a] &&
				!pfg_gate_cell_served_by(answer, raw->tts_values[s], gs->subject_type,
										 gs->cell_tag[i], &gs->audit_hint[i]))
				out->tts_isnull[a] = true;
		}
		MemoryContextSwitchTo(old);
		return ExecStoreVirtualTuple(out);
	}
}

/* only read-only SELECTs are gated scans: nothing locks their rows */
static bool
gated_scan_recheck(ScanState *ss, TupleTableSlot *slot)
{
	elog(ERROR, "a gated scan cannot recheck a row");
	return false;
}

static TupleTableSlot *
exec_gated_scan(CustomScanState *node)
{
	/*
	 * What ExecScan() does for a scan with neither qual nor projection,
	 * without its calls: a row gate is never a qual here, and a read-only
	 * SELECT has no EvalPlanQual.
	 */
	if (node->ss.ps.qual == NULL && node->ss.ps.ps_ProjInfo == NULL &&
		node->ss.ps.state->es_epq_active == NULL)
		return gated_scan_next(&node->ss);
	return ExecScan(&node->ss, gated_scan_next, gated_scan_recheck);
}

static void
end_gated_scan(CustomScanState *node)
{
	GatedScanState *gs = (GatedScanState *) node;

	if (gs->heap_slot != NULL)
		ExecClearTuple(gs->heap_slot);
	if (node->ss.ss_currentScanDesc != NULL)
		table_endscan(node->ss.ss_currentScanDesc);
}

/*
 * A parallel sequential scan's part (parallel_gates.c lets the gates run
 * in workers): the workers and the leader share one parallel scan of the
 * table, as nodeSeqscan.c does; each takes the gates of the rows it gets.
 */
static Size
estimate_gated_scan_dsm(CustomScanState *node, ParallelContext *pcxt)
{
	return table_parallelscan_estimate(node->ss.ss_currentRelation,
									   node->ss.ps.state->es_snapshot);
}

static void
initialize_gated_scan_dsm(CustomScanState *node, ParallelContext *pcxt,
						  void *coordinate)
{
	ParallelTableScanDesc pscan = (ParallelTableScanDesc) coordinate;

	table_parallelscan_initialize(node->ss.ss_currentRelation, pscan,
								  node->ss.ps.state->es_snapshot);
	node->ss.ss_currentScanDesc =
		table_beginscan_parallel(node->ss.ss_currentRelation, pscan);
}

static void
reinitialize_gated_scan_dsm(CustomScanState *node, ParallelContext *pcxt,
							void *coordinate)
{
	table_parallelscan_reinitialize(node->ss.ss_currentRelation,
									(ParallelTableScanDesc) coordinate);
}

static void
initialize_gated_scan_worker(CustomScanState *node, shm_toc *toc,
							 void *coordinate)
{
	node->ss.ss_currentScanDesc =
		table_beginscan_parallel(node->ss.ss_currentRelation,
								 (ParallelTableScanDesc) coordinate);
}

static void
rescan_gated_scan(CustomScanState *node)
{
	if (node->ss.ss_currentScanDesc != NULL)
		table_rescan(node->ss.ss_currentScanDesc, NULL);
	ExecScanReScan(&node->ss);
}

/* EXPLAIN: the subject the row gate reads and the columns masked */
static void
explain_gated_scan(CustomScanState *node, List *ancestors, ExplainState *es)
{
	GatedScanState *gs = (GatedScanState *) node;
	Oid			relid = RelationGetRelid(node->ss.ss_currentRelation);
	StringInfoData cells;
	int			i;

	ExplainPropertyText("Row Gate", get_attname(relid, gs->subject_attno, false), es);
	initStringInfo(&cells);
	for (i = 0; i < gs->ncells; i++)
		appendStringInfo(&cells, "%s%s", i > 0 ? ", " : "",
						 get_attname(relid, gs->cell_attno[i], false));
	ExplainPropertyText("Cell Gates", gs->ncells > 0 ? cells.data : "none", es);
}

static const CustomScanMethods gated_scan_plan_methods = {
	.CustomName = GATED_SCAN_NAME,
	.CreateCustomScanState = create_gated_scan_state,
};

static const CustomExecMethods gated_scan_exec_methods = {
	.CustomName = GATED_SCAN_NAME,
	.BeginCustomScan = begin_gated_scan,
	.ExecCustomScan = exec_gated_scan,
	.EndCustomScan = end_gated_scan,
	.ReScanCustomScan = rescan_gated_scan,
	.EstimateDSMCustomScan = estimate_gated_scan_dsm,
	.InitializeDSMCustomScan = initialize_gated_scan_dsm,
	.ReInitializeDSMCustomScan = reinitialize_gated_scan_dsm,
	.InitializeWorkerCustomScan = initialize_gated_scan_worker,
	.ExplainCustomScan = explain_gated_scan,
};

/* _PG_init: the setting, and the node's name for plans sent to workers */
void
pfg_gated_scan_init(void)
{
	DefineCustomBoolVariable("profile_guard.gated_scan",
							 "Takes the gates' decisions in the scan of a guarded table.",
							 "Off: every gate is a function call. Either way the same cells are served and counted; it changes the speed only.",
							 &gated_scan_enabled,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	RegisterCustomScanMethods(&gated_scan_plan_methods);
}
