/*-------------------------------------------------------------------------
 *
 * gate.c
 *	  The read path's rewriting, called by the hooks (hooks.c).  Before
 *	  planning, every query is seen after view and rule expansion, and
 *	  each guarded relation it reads is rewritten:
 *	    - a row gate is added to the relation's security quals (evaluated
 *	      before any user-supplied, non-leakproof qual, and on the right
 *	      side of outer joins), and
 *	    - every reference to a tag column — in any clause, at any query
 *	      level, including whole-row references — is replaced by a call of
 *	      the cell gate, so a masked cell reads as NULL everywhere.
 *	  A wide-shape read that names no tag column (count(*), the subject)
 *	  gets a row gate too, which gates only under a declared purpose; in
 *	  the long shape every row is a tag, so any read is a tag read.
 *	  SQL functions that the planner would inline are inlined here first,
 *	  so their bodies are gated too.  Before the executor starts, statements
 *	  that read tags without a usable purpose are refused; around a utility
 *	  statement, "COPY table TO" becomes the gated "COPY (SELECT …) TO" and
 *	  a table that joins or leaves a guarded tree is kept guarded (tree.c).
 *	  Gate calls are written with PFG_GATE_CALL_FORMAT: the gates answer no
 *	  other call.  The only state this file keeps between calls is the memo
 *	  of the gate functions' OIDs, dropped when a function or a schema
 *	  changes (invalidation.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/sysattr.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "extension.h"
#include "gate_exec.h"
#include "settings.h"
#include "catalog.h"
#include "bypass.h"
#include "tree.h"
#include "gate.h"
#include "collect.h"
#include "gated_scan.h"
#include "agg_gates.h"
#include "consent_cache.h"
#include "purpose.h"
#include "owner_context.h"
#include "invalidation.h"

/* EXPLAIN ANALYZE statements running (one may run another, in a function) */
static int	explain_analyze_depth = 0;

/*
 * The gate functions' OIDs, looked up by name once and kept until a
 * function or a schema changes (pg_proc, pg_namespace: invalidation.c)
 */
typedef struct GateFunctions
{
	Oid			schema;
	Oid			row_gate_fn;
	Oid			tag_row_gate_fn;
	Oid			cell_gate_fn;
	Oid			sensitive_cell_gate_fn;
	Oid			row_mask_fn;
	Oid			long_value_gate_fn; /* InvalidOid before extension 1.1 */
	Oid			purpose_row_gate_fn;	/* InvalidOid before extension 1.2 */
} GateFunctions;

typedef struct GateContext
{
	List	   *queries;		/* query levels, innermost first */
	Query	   *top;			/* the statement being planned */
	bool		bypass;			/* current role reads raw values */
	PlannerInfo *root;			/* stand-in for inlining SQL functions */
	GateFunctions fns;			/* once a gate is written; else all invalid */
	List	   *shapes;			/* guarded shapes copied for this statement */
	List	   *unguarded;		/* OIDs of relations found not guarded */
} GateContext;

static void gate_query(Query *query, GateContext *ctx);
static void ensure_gate_functions(GateContext *ctx);

static GateFunctions GateFunctionsMemo;
static bool GateFunctionsKnown = false;
static uint64 GateFunctionsInvalidations = 0;

/* invalidation.c: a function or a schema changed */
void
pfg_gate_functions_invalidated(void)
{
	GateFunctionsKnown = false;
	GateFunctionsInvalidations++;
}

static Oid
gate_function(const char *name, int nargs, Oid *argtypes, bool missing_ok)
{
	List	   *qname = list_make2(makeString(PFG_SCHEMA_NAME), makeString(pstrdup(name)));

	return LookupFuncName(qname, nargs, argtypes, missing_ok);
}

static void
look_up_gate_functions(GateFunctions *fns)
{
	Oid			row_args[2] = {ANYOID, OIDOID};
	Oid			tag_row_args[3] = {ANYOID, TEXTOID, OIDOID};
	Oid			cell_args[3] = {ANYOID, INT4OID, ANYELEMENTOID};
	Oid			mask_args[2] = {ANYELEMENTOID, OIDOID};
	Oid			sensitive_args[4] = {ANYOID, INT4OID, TEXTOID, ANYELEMENTOID};
	Oid			long_value_args[3] = {ANYOID, TEXTOID, ANYELEMENTOID};

	fns->schema = get_namespace_oid(PFG_SCHEMA_NAME, false);
	fns->row_gate_fn = gate_function("_row_gate", 2, row_args, false);
	fns->tag_row_gate_fn = gate_function("_tag_row_gate", 3, tag_row_args, false);
	fns->cell_gate_fn = gate_function("_cell_gate", 3, cell_args, false);
	fns->row_mask_fn = gate_function("_row_mask", 2, mask_args, false);
	fns->sensitive_cell_gate_fn =
		gate_function("_sensitive_cell_gate", 4, sensitive_args, false);
	/* InvalidOid before the extension's update to 1.1, to 1.2 */
	fns->long_value_gate_fn = gate_function("_long_value_gate", 3, long_value_args, true);
	fns->purpose_row_gate_fn = gate_function("_purpose_row_gate", 2, row_args, true);
}

/*
 * The gate functions, once a statement turns out to need them.  Looking
 * them up by name checks the current user's USAGE right on our schema; the
 * memo keeps that check.
 */
static void
ensure_gate_functions(GateContext *ctx)
{
	AclResult	aclresult;

	if (OidIsValid(ctx->fns.cell_gate_fn))
		return;
	while (!GateFunctionsKnown)
	{
		GateFunctions fns;
		uint64		invalidations = GateFunctionsInvalidations;

		/* again if the look-ups took in an invalidation */
		look_up_gate_functions(&fns);
		if (invalidations != GateFunctionsInvalidations)
			continue;
		GateFunctionsMemo = fns;
		GateFunctionsKnown = true;
	}
	aclresult = pg_namespace_aclcheck(GateFunctionsMemo.schema, GetUserId(), ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_SCHEMA, PFG_SCHEMA_NAME);
	ctx->fns = GateFunctionsMemo;
}

/*
 * The guarded shape of a relation, else NULL: a copy, since building the
 * gates looks up the system catalogs, which may take in an invalidation
 * that frees the map's own.  One copy serves the whole statement, so that
 * all its gates follow one shape.
 */
static GuardedRelation *
statement_shape(Oid relid, GateContext *ctx)
{
	ListCell   *lc;
	GuardedRelation *grel;

	foreach(lc, ctx->shapes)
	{
		grel = (GuardedRelation *) lfirst(lc);
		if (grel->relid == relid)
			return grel;
	}
	if (list_member_oid(ctx->unguarded, relid))
		return NULL;
	grel = pfg_guarded_relation_copy(relid);
	if (grel == NULL)
		ctx->unguarded = lappend_oid(ctx->unguarded, relid);
	else
		ctx->shapes = lappend(ctx->shapes, grel);
	return grel;
}

/* the guarded shape of an RTE that reads tags, else NULL */
static GuardedRelation *
gated_relation(RangeTblEntry *rte, GateContext *ctx)
{
	GuardedRelation *grel;

	if (rte->rtekind != RTE_RELATION)
		return NULL;
	grel = statement_shape(rte->relid, ctx);
	if (grel == NULL || !pfg_rte_reads_tags_of(rte, grel))
		return NULL;
	return grel;
}

static Var *
subject_var(Var *like, GuardedRelation *grel, Index varno)
{
	Var		   *v = makeVar(varno, grel->subject_attnum, grel->subject_type,
							-1, get_typcollation(grel->subject_type), 0);

	if (like)
	{
		v->varlevelsup = like->varlevelsup;
		v->location = like->location;
	}
	return v;
}

static Node *
make_cell_gate(Var *var, GuardedRelation *grel, const GuardedColumn *col,
			   GateContext *ctx)
{
	FuncExpr   *f;
	List	   *args;

	args = list_make2(subject_var(var, grel, var->varno),
					  makeConst(INT4OID, -1, InvalidOid, 4,
								Int32GetDatum(col->tag_id), false, true));
	if (col->sensitive)
	{
		/* stored as ciphertext: the gate decrypts what it may show */
		args = lappend(args, makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID, -1,
									   CStringGetTextDatum(col->tag), false, false));
		args = lappend(args, var);
		f = makeFuncExpr(ctx->fns.sensitive_cell_gate_fn, var->vartype, args,
						 var->varcollid, var->varcollid, PFG_GATE_CALL_FORMAT);
	}
	else
	{
		args = lappend(args, var);
		f = makeFuncExpr(ctx->fns.cell_gate_fn, var->vartype, args,
						 var->varcollid, var->varcollid, PFG_GATE_CALL_FORMAT);
	}
	f->location = var->location;
	return (Node *) f;
}

/*
 * Long shape: the value column of a tag row.  Rows are gated already; the
 * value gate decrypts a sensitive tag's value (and masks it should the row
 * be reached without the row gate, e.g. by a whole-row reference).
 */
static Node *
make_long_value_gate(Var *var, GuardedRelation *grel, GateContext *ctx)
{
	FuncExpr   *f;
	Var		   *tag;

	if (!OidIsValid(ctx->fns.long_value_gate_fn))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension profile_guard must be updated to read long-shape values"),
				 errdetail("The loaded library is newer than the extension's objects in this database."),
				 errhint("Run ALTER EXTENSION profile_guard UPDATE.")));
	tag = makeVar(var->varno, grel->tag_attnum,
				  get_atttype(grel->relid, grel->tag_attnum), -1,
				  DEFAULT_COLLATION_OID, var->varlevelsup);
	f = makeFuncExpr(ctx->fns.long_value_gate_fn, var->vartype,
					 list_make3(subject_var(var, grel, var->varno), tag, var),
					 var->varcollid, var->varcollid, PFG_GATE_CALL_FORMAT);
	f->location = var->location;
	return (Node *) f;
}

static Node *
make_row_mask(Var *var, GuardedRelation *grel, GateContext *ctx)
{
	FuncExpr   *f;

	f = makeFuncExpr(ctx->fns.row_mask_fn, var->vartype,
					 list_make2(var, makeConst(REGCLASSOID, -1, InvalidOid, 4,
											   ObjectIdGetDatum(grel->relid), false, true)),
					 InvalidOid, InvalidOid, PFG_GATE_CALL_FORMAT);
	f->location = var->location;
	return (Node *) f;
}

static Node *
gate_mutator(Node *node, GateContext *ctx)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;
		Query	   *owner;
		RangeTblEntry *rte;
		GuardedRelation *grel;

		if (var->varlevelsup >= list_length(ctx->queries))
			return node;
		owner = (Query *) list_nth(ctx->queries, var->varlevelsup);
		if (var->varno < 1 || var->varno > list_length(owner->rtable))
			return node;
		/* INSERT … ON CONFLICT's EXCLUDED row is the inserter's own data */
		if (owner->onConflict && var->varno == owner->onConflict->exclRelIndex)
			return node;
		rte = rt_fetch(var->varno, owner->rtable);
		grel = gated_relation(rte, ctx);
		if (grel == NULL)
			return node;
		ensure_gate_functions(ctx);
		if (grel->tag_attnum != InvalidAttrNumber)
		{
			/* long shape: rows are gated; values of sensitive tags decrypted */
			if (var->varattno == InvalidAttrNumber)
				return make_row_mask(var, grel, ctx);
			if (var->varattno == grel->value_attnum)
				return make_long_value_gate(var, grel, ctx);
			return node;
		}
		if (var->varattno == InvalidAttrNumber)
			return make_row_mask(var, grel, ctx);
		if (var->varattno > 0)
		{
			const GuardedColumn *col = pfg_guarded_column(grel, var->varattno);

			if (col)
				return make_cell_gate(var, grel, col, ctx);
		}
		return node;
	}
	if (IsA(node, Query))
	{
		gate_query((Query *) node, ctx);
		return node;
	}
	return expression_tree_mutator(node, gate_mutator, (void *) ctx);
}

/* inline a SQL set-returning function as the planner would, but now */
static void
inline_function_rte(RangeTblEntry *rte, GateContext *ctx)
{
	Query	   *funcquery;

	rte->functions = (List *) eval_const_expressions(ctx->root, (Node *) rte->functions);
	funcquery = inline_set_returning_function(ctx->root, rte);
	if (funcquery)
	{
		rte->rtekind = RTE_SUBQUERY;
		rte->subquery = funcquery;
		rte->security_barrier = false;
		rte->funcordinality = false;
	}
}

static void
gate_query(Query *query, GateContext *ctx)
{
	ListCell   *lc;
	Index		rti;

	ctx->queries = lcons(query, ctx->queries);

	/* lower levels first: function bodies, sub-queries in FROM, CTEs */
	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		if (rte->rtekind == RTE_FUNCTION && !ctx->bypass)
			inline_function_rte(rte, ctx);
		if (rte->rtekind == RTE_SUBQUERY && rte->subquery)
			gate_query(rte->subquery, ctx);
	}
	foreach(lc, query->cteList)
	{
		CommonTableExpr *cte = (CommonTableExpr *) lfirst(lc);

		gate_query((Query *) cte->ctequery, ctx);
	}

	/* replace tag references in every clause (and sub-link) of this level */
	if (!ctx->bypass)
		query_tree_mutator(query, gate_mutator, (void *) ctx,
						   QTW_DONT_COPY_QUERY | QTW_IGNORE_RC_SUBQUERIES |
						   QTW_IGNORE_CTE_SUBQUERIES);

	/* then add the row gates, which reference only non-tag columns */
	if (!ctx->bypass)
	{
		rti = 0;
		foreach(lc, query->rtable)
		{
			RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);
			GuardedRelation *grel;
			FuncExpr   *gate;
			Const	   *relid;

			rti++;
			if (rte->rtekind != RTE_RELATION ||
				(grel = statement_shape(rte->relid, ctx)) == NULL)
				continue;

			/*
			 * Before the test of what the target reads: a MERGE whose join
			 * names no target column and whose actions read none selects
			 * nothing of it, yet updates every row it matches.
			 */
			if (query->commandType == CMD_MERGE && rti == query->resultRelation)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("MERGE into a guarded table is not supported"),
						 errdetail("Table \"%s\" is guarded by profile_guard.", get_rel_name(rte->relid)),
						 errhint("Use INSERT … ON CONFLICT, UPDATE or DELETE instead.")));
			if (!pfg_rte_reads_rows(rte))
				continue;
			if (query->onConflict && rti == query->onConflict->exclRelIndex)
				continue;
			/* the extension's own write of rows it chose, as the owner */
			if (query == ctx->top && query->canSetTag && rti == query->resultRelation &&
				(query->commandType == CMD_UPDATE || query->commandType == CMD_DELETE) &&
				pfg_owner_writing(grel->relid))
				continue;
			ensure_gate_functions(ctx);
			relid = makeConst(REGCLASSOID, -1, InvalidOid, 4,
							  ObjectIdGetDatum(grel->relid), false, true);
			if (!pfg_rte_reads_tags_of(rte, grel))
			{
				/*
				 * Wide shape, no tag read: only the subjects eligible for a
				 * declared purpose; every row when none is declared (the
				 * gate decides as the statement runs).
				 */
				if (!OidIsValid(ctx->fns.purpose_row_gate_fn))
					continue;	/* objects older than 1.2 */
				gate = makeFuncExpr(ctx->fns.purpose_row_gate_fn, BOOLOID,
									list_make2(subject_var(NULL, grel, rti), relid),
									InvalidOid, InvalidOid, PFG_GATE_CALL_FORMAT);
			}
			else if (grel->tag_attnum != InvalidAttrNumber)
				gate = makeFuncExpr(ctx->fns.tag_row_gate_fn, BOOLOID,
									list_make3(subject_var(NULL, grel, rti),
											   makeVar(rti, grel->tag_attnum,
													   get_atttype(grel->relid, grel->tag_attnum),
													   -1, DEFAULT_COLLATION_OID, 0),
											   relid),
									InvalidOid, DEFAULT_COLLATION_OID, PFG_GATE_CALL_FORMAT);
			else
				gate = makeFuncExpr(ctx->fns.row_gate_fn, BOOLOID,
									list_make2(subject_var(NULL, grel, rti), relid),
									InvalidOid, InvalidOid, PFG_GATE_CALL_FORMAT);
			rte->securityQuals = lcons(gate, rte->securityQuals);
		}
	}

	ctx->queries = list_delete_first(ctx->queries);
}

/*
 * Before the query is planned (hooks.c): gate every guarded relation it
 * reads, at every level.  Whatever it inlined is left in *planning for
 * pfg_gate_planner_after.
 */
void
pfg_gate_planner_before(Query *parse, ParamListInfo boundParams,
						PfgGatePlanning *planning)
{
	GateContext ctx;
	PlannerGlobal glob;
	PlannerInfo root;

	planning->guards = pfg_any_guarded();
	planning->inlined = NIL;
	planning->row_gate_fn = InvalidOid;
	planning->cell_gate_fn = InvalidOid;
	planning->gate_schema = InvalidOid;
	if (!planning->guards)
		return;

	memset(&ctx, 0, sizeof(ctx));
	memset(&glob, 0, sizeof(glob));
	memset(&root, 0, sizeof(root));
	glob.type = T_PlannerGlobal;
	glob.boundParams = boundParams;
	root.type = T_PlannerInfo;
	root.glob = &glob;
	root.parse = parse;
	root.query_level = 1;
	ctx.root = &root;
	ctx.top = parse;
	ctx.bypass = pfg_current_user_bypasses();
	gate_query(parse, &ctx);
	planning->inlined = glob.invalItems;
	planning->row_gate_fn = ctx.fns.row_gate_fn;
	planning->cell_gate_fn = ctx.fns.cell_gate_fn;
	planning->gate_schema = ctx.fns.schema;
}

/*
 * Once the query is planned (hooks.c): mark the plan as gated, and let
 * gated scans take the gates of the scans they can (gated_scan.c).
 */
void
pfg_gate_planner_after(PlannedStmt *result, PfgGatePlanning *planning)
{
	if (!planning->guards)
		return;

	/*
	 * Gated or not depends on who runs it: re-plan on SET ROLE.  We say so
	 * for every plan of a database that guards anything, since a bypassing
	 * role's plan may reach guarded tables through functions it did not
	 * inline.
	 */
	result->dependsOnRole = true;
	/* functions we inlined are dependencies of the plan */
	result->invalItems = list_concat(result->invalItems, planning->inlined);
	if (OidIsValid(planning->gate_schema))
		pfg_agg_gates_plan(result, planning->gate_schema);
	pfg_gated_scan_plan(result, planning->row_gate_fn, planning->cell_gate_fn);
	pfg_collect_plan(result);
}

/*
 * Refuse, before it runs, a statement that reads tags with no usable
 * purpose (the gates would refuse too, but only once a row is read); and
 * check a declared purpose that gates a statement reading only non-tag
 * columns of a wide-shape table.  The purpose checked is the one in force
 * now: the gates use this same one for the whole statement.  Runs before
 * the executor starts (hooks.c).
 */
static void
check_statement_purpose(QueryDesc *queryDesc)
{
	PlannedStmt *stmt = queryDesc->plannedstmt;
	ListCell   *lc;
	Oid			rows_relid = InvalidOid;
	Index		rti = 0;
	bool		checked = false;

	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);
		GuardedRelation *grel;
		const char *tag = NULL;

		rti++;
		/* a copy: resolving the purpose may free the map's own */
		if (rte->rtekind != RTE_RELATION ||
			(grel = pfg_guarded_relation_copy(rte->relid)) == NULL ||
			!pfg_rte_reads_rows(rte))
			continue;
		if (stmt->canSetTag &&
			(stmt->commandType == CMD_UPDATE || stmt->commandType == CMD_DELETE) &&
			list_member_int(stmt->resultRelations, (int) rti) &&
			pfg_owner_writing(grel->relid))
			continue;

		/*
		 * EXPLAIN ANALYZE counts the rows each node met: the rows a
		 * gate removed after the role's own conditions found them
		 * (an index condition on the subject and the tag, say) show
		 * that hidden rows exist
		 */
		if (explain_analyze_depth > 0 && queryDesc->instrument_options != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("EXPLAIN ANALYZE of a statement that reads guarded table \"%s\" is not allowed",
							get_rel_name(grel->relid)),
					 errdetail("Its row counts would show rows that the gates hide from role \"%s\".",
							   GetUserNameFromId(GetUserId(), false)),
					 errhint("Use EXPLAIN without ANALYZE, or run it as a role that bypasses the guard (its reads are audited).")));
		if (!pfg_rte_reads_tags_of(rte, grel))
		{
			if (!OidIsValid(rows_relid))
				rows_relid = grel->relid;
			continue;
		}
		/* the message names the first tag column read, in table order */
		for (int i = 0, first = 0; i < grel->ncolumns; i++)
		{
			AttrNumber	a = grel->columns[i].attnum;

			if (bms_is_member(a - FirstLowInvalidHeapAttributeNumber, rte->selectedCols) &&
				(first == 0 || a < first))
			{
				tag = grel->columns[i].tag;
				first = a;
			}
		}
		(void) pfg_purpose_now(grel->relid, tag);
		checked = true;
		break;
	}
	if (!checked && OidIsValid(rows_relid) &&
		pfg_purpose != NULL && pfg_purpose[0] != '\0')
		(void) pfg_purpose_now(rows_relid, NULL);
}

void
pfg_gate_executor_start(QueryDesc *queryDesc, int eflags)
{
	MemoryContext cxt;
	MemoryContext old;

	/* a parallel worker runs part of a plan its leader has checked */
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) || IsParallelWorker() ||
		!pfg_any_guarded() || pfg_current_user_bypasses())
		return;

	/*
	 * What the check allocates (copies of guarded shapes) goes with it: a
	 * statement may start in memory that lasts much longer, a SQL
	 * function's, once for each row of the query calling it.
	 */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "profile_guard purpose check",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	check_statement_purpose(queryDesc);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* is this EXPLAIN (ANALYZE)? */
static bool
explain_analyzes(Node *parsetree)
{
	ListCell   *lc;

	if (!IsA(parsetree, ExplainStmt))
		return false;
	foreach(lc, ((ExplainStmt *) parsetree)->options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		if (strcmp(opt->defname, "analyze") == 0)
			return defGetBoolean(opt);
	}
	return false;
}

/* COPY guarded TO …  ==>  COPY (SELECT cols FROM ONLY guarded) TO … */
static CopyStmt *
gated_copy(CopyStmt *stmt)
{
	CopyStmt   *copy = copyObject(stmt);
	SelectStmt *select = makeNode(SelectStmt);
	RangeVar   *from = copyObject(stmt->relation);
	ListCell   *lc;

	if (stmt->attlist == NIL)
	{
		ColumnRef  *cr = makeNode(ColumnRef);
		ResTarget  *target = makeNode(ResTarget);

		cr->fields = list_make1(makeNode(A_Star));
		cr->location = -1;
		target->val = (Node *) cr;
		target->location = -1;
		select->targetList = list_make1(target);
	}
	else
	{
		foreach(lc, stmt->attlist)
		{
			ColumnRef  *cr = makeNode(ColumnRef);
			ResTarget  *target = makeNode(ResTarget);

			cr->fields = list_make1(makeString(strVal(lfirst(lc))));
			cr->location = -1;
			target->val = (Node *) cr;
			target->location = -1;
			select->targetList = lappend(select->targetList, target);
		}
	}
	from->inh = false;
	select->fromClause = list_make1(from);
	copy->relation = NULL;
	copy->attlist = NIL;
	copy->query = (Node *) select;
	return copy;
}

/*
 * Before a utility statement runs (hooks.c): refuse what would break a
 * guarded table, note a table joining or leaving a guarded tree (for
 * pfg_gate_utility_after) and an EXPLAIN ANALYZE starting (*analyzing:
 * pass it to pfg_gate_utility_after or pfg_gate_utility_abort), and turn
 * "COPY guarded TO" into the gated "COPY (SELECT …) TO".  Returns the
 * statement to run: pstmt itself, or its gated copy.
 */
PlannedStmt *
pfg_gate_utility_before(PlannedStmt *pstmt, List **tree_changes, bool *analyzing)
{
	Node	   *parsetree = pstmt->utilityStmt;

	pfg_check_guarded_alter(parsetree);
	*tree_changes = pfg_tree_before(parsetree);
	*analyzing = explain_analyzes(parsetree);
	if (*analyzing)
		explain_analyze_depth++;
	if (IsA(parsetree, CopyStmt))
	{
		CopyStmt   *stmt = (CopyStmt *) parsetree;

		if (!stmt->is_from && stmt->relation && pfg_any_guarded() &&
			!pfg_current_user_bypasses())
		{
			Oid			relid = RangeVarGetRelid(stmt->relation, AccessShareLock, true);

			if (OidIsValid(relid) && pfg_guarded_relation(relid))
			{
				PlannedStmt *gated = copyObject(pstmt);

				gated->utilityStmt = (Node *) gated_copy(stmt);
				return gated;
			}
		}
	}
	return pstmt;
}

/*
 * Once the utility statement has run without error (hooks.c): a table
 * that joined a guarded tree is guarded, one that left it is not.
 */
void
pfg_gate_utility_after(List *tree_changes, bool analyzing)
{
	if (analyzing)
		explain_analyze_depth--;
	pfg_tree_after(tree_changes);
}

/* the utility statement failed */
void
pfg_gate_utility_abort(bool analyzing)
{
	if (analyzing)
		explain_analyze_depth--;
}
