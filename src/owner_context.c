/*-------------------------------------------------------------------------
 *
 * owner_context.c
 *	  Owns the rule that code of a guarded table's owner never runs with
 *	  the extension's rights.  The extension decides what to read and
 *	  write in its own context, by reads that run no owner code: plain or
 *	  partitioned tables only (no view's _RETURN rule, no foreign table),
 *	  subjects and tags of built-in types (no owner-defined cast), and no
 *	  function that is not built in among the expressions PostgreSQL
 *	  evaluates while it plans a read of the table or of a table below it
 *	  (index expressions and predicates, extended statistics, CHECK
 *	  constraints, partition keys), kept so by a lock that stops such
 *	  expressions from being added until the transaction ends.  Every
 *	  statement that changes a guarded table's rows (and may fire the
 *	  owner's triggers, rules, constraints, defaults, index expressions)
 *	  then runs as the table's owner under SECURITY_RESTRICTED_OPERATION,
 *	  with search_path = pg_catalog, pg_temp and row_security = off, as
 *	  autovacuum and REFRESH MATERIALIZED VIEW run a table's code.  An
 *	  error restores the user id and the settings through (sub)transaction
 *	  abort; the normal path restores them here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/transam.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_partitioned_table.h"
#include "catalog/pg_statistic_ext.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "owner_context.h"
#include "audit.h"
#include "spi_checked.h"

PFG_SQL_FUNCTION(profile_guard_check_guarded_sql);
PFG_SQL_FUNCTION(profile_guard_execute_as_owner_sql);
PFG_SQL_FUNCTION(profile_guard_as_text);

static const char *
relkind_name(char relkind)
{
	switch (relkind)
	{
		case RELKIND_VIEW:
			return "view";
		case RELKIND_MATVIEW:
			return "materialized view";
		case RELKIND_FOREIGN_TABLE:
			return "foreign table";
		case RELKIND_SEQUENCE:
			return "sequence";
		case RELKIND_COMPOSITE_TYPE:
			return "composite type";
		case RELKIND_INDEX:
		case RELKIND_PARTITIONED_INDEX:
			return "index";
		default:
			return "relation that is not a table";
	}
}

static char *
relation_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* is typid (for a domain: its base type) among the allowed, or built in? */
static bool
column_type_ok(Oid relid, const char *column, const Oid *allowed, int nallowed,
			   Oid *typid)
{
	AttrNumber	attnum = get_attnum(relid, column);
	Oid			base;

	if (attnum == InvalidAttrNumber)
	{
		*typid = InvalidOid;
		return false;
	}
	*typid = get_atttype(relid, attnum);
	base = getBaseType(*typid);
	if (nallowed == 0)
		return base < FirstNormalObjectId;
	for (int i = 0; i < nallowed; i++)
		if (base == allowed[i])
			return true;
	return false;
}

/* the first function that is not built in, found by owner_code_walker() */
typedef struct OwnerCodeSearch
{
	Oid			func;
	Oid			domain;
} OwnerCodeSearch;

static bool
not_built_in(Oid func_id, void *context)
{
	if (func_id < FirstNormalObjectId)
		return false;
	((OwnerCodeSearch *) context)->func = func_id;
	return true;
}

/* does the expression call a function (or check a domain) not built in? */
static bool
owner_code_walker(Node *node, OwnerCodeSearch *search)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, not_built_in, search))
		return true;
	if (IsA(node, CoerceToDomain) &&
		((CoerceToDomain *) node)->resulttype >= FirstNormalObjectId)
	{
		search->domain = ((CoerceToDomain *) node)->resulttype;
		return true;
	}
	return expression_tree_walker(node, owner_code_walker, (void *) search);
}

/* an expression as the catalogs store it (pg_node_tree text), if any */
static bool
stored_expression_runs_owner_code(Datum stored, bool isnull, OwnerCodeSearch *search)
{
	if (isnull)
		return false;
	return owner_code_walker((Node *) stringToNode(TextDatumGetCString(stored)), search);
}

static void
report_owner_code(Oid relid, const char *what, const OwnerCodeSearch *search, int elevel)
{
	const char *code = OidIsValid(search->func) ?
		psprintf("function %s", format_procedure(search->func)) :
		psprintf("the constraints of domain %s", format_type_be(search->domain));

	ereport(elevel,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("guarded table \"%s\" has %s that calls %s, which is not built in",
					relation_name(relid), what, code),
			 errdetail("profile_guard reads guarded tables with its own rights, and PostgreSQL evaluates such expressions while it plans a read: the code of another role would run with those rights."),
			 errhint("Drop %s, or define it with built-in functions only.", what)));
}

/*
 * Is an expression that planning a read of relid evaluates owner code?
 * Read from the catalogs as stored, without evaluating them (the relation
 * cache simplifies them, which runs such code).  Reported at elevel.
 */
static bool
plans_owner_code(Oid relid, int elevel)
{
	OwnerCodeSearch search = {InvalidOid, InvalidOid};
	Relation	rel = relation_open(relid, NoLock);
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	char	   *what = NULL;
	Datum		exprs;
	bool		isnull;
	HeapTuple	tup;

	foreach(lc, indexes)
	{
		Oid			indexid = lfirst_oid(lc);

		tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexid));
		if (!HeapTupleIsValid(tup))
			continue;
		exprs = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indexprs, &isnull);
		if (stored_expression_runs_owner_code(exprs, isnull, &search))
			what = psprintf("index \"%s\"", get_rel_name(indexid));
		exprs = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indpred, &isnull);
		if (what == NULL && stored_expression_runs_owner_code(exprs, isnull, &search))
			what = psprintf("index \"%s\"", get_rel_name(indexid));
		ReleaseSysCache(tup);
		if (what)
			break;
	}

	if (what == NULL)
	{
		Relation	statrel = table_open(StatisticExtRelationId, AccessShareLock);
		SysScanDesc scan;
		ScanKeyData key;

		ScanKeyInit(&key, Anum_pg_statistic_ext_stxrelid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(relid));
		scan = systable_beginscan(statrel, StatisticExtRelidIndexId, true, NULL, 1, &key);
		while (what == NULL && HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			exprs = heap_getattr(tup, Anum_pg_statistic_ext_stxexprs,
								 RelationGetDescr(statrel), &isnull);
			if (stored_expression_runs_owner_code(exprs, isnull, &search))
				what = psprintf("statistics object \"%s\"",
								NameStr(((Form_pg_statistic_ext) GETSTRUCT(tup))->stxname));
		}
		systable_endscan(scan);
		table_close(statrel, AccessShareLock);
	}

	for (int i = 0; what == NULL && constr != NULL && i < constr->num_check; i++)
		if (owner_code_walker((Node *) stringToNode(constr->check[i].ccbin), &search))
			what = psprintf("check constraint \"%s\"", constr->check[i].ccname);

	if (what == NULL && rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		tup = SearchSysCache1(PARTRELID, ObjectIdGetDatum(relid));
		if (HeapTupleIsValid(tup))
		{
			exprs = SysCacheGetAttr(PARTRELID, tup, Anum_pg_partitioned_table_partexprs, &isnull);
			if (stored_expression_runs_owner_code(exprs, isnull, &search))
				what = pstrdup("its partition key");
			ReleaseSysCache(tup);
		}
	}

	list_free(indexes);
	relation_close(rel, NoLock);
	if (what == NULL)
		return false;
	report_owner_code(relid, what, &search, elevel);
	return true;
}

/*
 * Lock a guarded relation in lockmode (a partitioned table: also against
 * partitions attached or detached meanwhile, and every partition in
 * lockmode), then check that reading it as the extension runs no owner
 * code: it is a plain or partitioned table whose partitions are tables,
 * its subject column is of a built-in type (or a domain over one), its
 * collected-at column a date or timestamp, its tag column text.  Column
 * names may be NULL (not checked).  A problem is reported at elevel;
 * below ERROR the result says whether the relation may be used.
 */
bool
pfg_check_guarded(Oid relid, const char *subject_column,
							const char *collected_at_column,
							const char *tag_column, LOCKMODE lockmode, int elevel)
{
	static const Oid collected_types[] = {DATEOID, TIMESTAMPOID, TIMESTAMPTZOID};
	static const Oid tag_types[] = {TEXTOID, VARCHAROID};
	char		relkind;
	Oid			typid;

	LockRelationOid(relid, lockmode);
	relkind = get_rel_relkind(relid);
	if (relkind == '\0')
	{
		ereport(elevel,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("guarded relation with OID %u does not exist", relid),
				 errdetail("profile_guard.guarded_table names a relation that was dropped."),
				 errhint("Remove its row from profile_guard.guarded_table.")));
		return false;
	}
	if (relkind == RELKIND_PARTITIONED_TABLE)
	{
		List	   *parts;
		ListCell   *lc;

		LockRelationOid(relid, ShareUpdateExclusiveLock);
		parts = find_all_inheritors(relid, lockmode, NULL);
		foreach(lc, parts)
		{
			Oid			part = lfirst_oid(lc);
			char		kind = get_rel_relkind(part);

			if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
			{
				ereport(elevel,
						(errcode(ERRCODE_WRONG_OBJECT_TYPE),
						 errmsg("guarded table \"%s\" has a partition that is not a table",
								relation_name(relid)),
						 errdetail("Partition \"%s\" of guarded table \"%s\" is a %s; profile_guard reads and writes only ordinary tables.",
								   relation_name(part), relation_name(relid), relkind_name(kind)),
						 errhint("Detach partition \"%s\", or replace it with an ordinary table.",
								 relation_name(part))));
				return false;
			}
		}
	}
	else if (relkind != RELKIND_RELATION)
	{
		ereport(elevel,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("guarded relation \"%s\" is no longer a table", relation_name(relid)),
				 errdetail("Relation \"%s\" was protected as a table and is now a %s; profile_guard reads and writes only ordinary and partitioned tables.",
						   relation_name(relid), relkind_name(relkind)),
				 errhint("Ask the owner of \"%s\" to restore it as a table, or drop it.",
						 relation_name(relid))));
		return false;
	}

	/*
	 * Nothing that planning a read evaluates may be owner code, in the
	 * table or below it.  ShareUpdateExclusiveLock, held to the end of the
	 * transaction, stops indexes, statistics and constraints from being
	 * added meanwhile; it does not block the application's reads and writes.
	 */
	{
		List	   *tree = find_all_inheritors(relid, ShareUpdateExclusiveLock, NULL);
		ListCell   *lc;

		foreach(lc, tree)
			if (plans_owner_code(lfirst_oid(lc), elevel))
				return false;
	}

	if (subject_column && !column_type_ok(relid, subject_column, NULL, 0, &typid))
	{
		ereport(elevel,
				(errcode(OidIsValid(typid) ? ERRCODE_DATATYPE_MISMATCH : ERRCODE_UNDEFINED_COLUMN),
				 errmsg("subject column of table \"%s\" must be of a built-in type",
						relation_name(relid)),
				 OidIsValid(typid) ?
				 errdetail("Column \"%s\" is of type %s, which is not built in (for a domain: its base type); its conversion to text could run code of the type's owner.",
						   subject_column, format_type_be(typid)) :
				 errdetail("Column \"%s\" does not exist.", subject_column),
				 errhint("Use a column of a built-in type such as text, bigint or uuid, or a domain over one, as the subject column.")));
		return false;
	}
	if (collected_at_column &&
		!column_type_ok(relid, collected_at_column, collected_types,
						lengthof(collected_types), &typid))
	{
		ereport(elevel,
				(errcode(OidIsValid(typid) ? ERRCODE_DATATYPE_MISMATCH : ERRCODE_UNDEFINED_COLUMN),
				 errmsg("collected_at column of table \"%s\" must be a date or timestamp",
						relation_name(relid)),
				 OidIsValid(typid) ?
				 errdetail("Column \"%s\" is of type %s.", collected_at_column, format_type_be(typid)) :
				 errdetail("Column \"%s\" does not exist.", collected_at_column),
				 errhint("ALTER TABLE %s ALTER COLUMN %s TYPE timestamptz.",
						 relation_name(relid), quote_identifier(collected_at_column))));
		return false;
	}
	if (tag_column &&
		!column_type_ok(relid, tag_column, tag_types, lengthof(tag_types), &typid))
	{
		ereport(elevel,
				(errcode(OidIsValid(typid) ? ERRCODE_DATATYPE_MISMATCH : ERRCODE_UNDEFINED_COLUMN),
				 errmsg("tag column of table \"%s\" must be of type text or varchar",
						relation_name(relid)),
				 OidIsValid(typid) ?
				 errdetail("Column \"%s\" is of type %s.", tag_column, format_type_be(typid)) :
				 errdetail("Column \"%s\" does not exist.", tag_column),
				 errhint("ALTER TABLE %s ALTER COLUMN %s TYPE text.",
						 relation_name(relid), quote_identifier(tag_column))));
		return false;
	}
	return true;
}

/*
 * From here to owner_context_end(), act as the owner of relid, in a
 * security-restricted operation, with a fixed search_path and no row
 * security (the owner's forced policies make a statement fail rather than
 * skip rows).
 */
void
pfg_owner_context_begin(Oid relid, OwnerContext *oc)
{
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	pfg_switch_role(owner, "pg_catalog, pg_temp", oc);
	(void) set_config_option("row_security", "off",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

void
pfg_owner_context_end(OwnerContext *oc)
{
	pfg_restore_role(oc);
}

/*
 * The statement pfg_execute_as_owner() runs writes rows that the
 * extension chose (by TID) in its own context: no read gate applies to its
 * target.  Statements it sets off (the owner's triggers, functions, rules)
 * run deeper and are gated like any other.
 */
static Oid	OwnerWriteRelid = InvalidOid;
static int	OwnerWriteNesting = -1;

bool
pfg_owner_writing(Oid relid)
{
	return OidIsValid(OwnerWriteRelid) && relid == OwnerWriteRelid &&
		pfg_audit_nesting() == OwnerWriteNesting;
}

/*
 * The same, seen from a row trigger of its target as its executor writes a
 * row (one level deeper than the statement was planned at; a statement
 * that trigger sets off runs deeper still).
 */
bool
pfg_owner_writing_row(Oid relid)
{
	return OidIsValid(OwnerWriteRelid) && relid == OwnerWriteRelid &&
		pfg_audit_nesting() == OwnerWriteNesting + 1;
}

/*
 * Run one statement on relid's rows as its owner; returns the rows it
 * processed.  The caller checked the relation and computed the values.
 * With kept, the statement is prepared once, as the owner (search_path and
 * settings as it runs, so the plan is not re-analysed for a change of
 * either), with a generic plan kept in *kept for the caller's next calls
 * (pfg_keep_generic_plan()); with NULL it is planned now.
 */
uint64
pfg_execute_as_owner(Oid relid, const char *query, int nargs, Oid *argtypes,
					 Datum *values, const char *nulls, SPIPlanPtr *kept)
{
	OwnerContext oc;
	uint64		processed;
	int			rc;

	pfg_spi_connect();
	pfg_owner_context_begin(relid, &oc);
	OwnerWriteRelid = relid;
	OwnerWriteNesting = pfg_audit_nesting();
	PG_TRY();
	{
		if (kept == NULL)
			rc = SPI_execute_with_args(query, nargs, argtypes, values, nulls, false, 0);
		else
			rc = SPI_execute_plan(pfg_keep_generic_plan(kept, query, nargs, argtypes),
								  values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		OwnerWriteRelid = InvalidOid;
		OwnerWriteNesting = -1;
	}
	PG_END_TRY();
	if (rc < 0)
		elog(ERROR, "could not run a statement on table \"%s\": %s",
			 relation_name(relid), SPI_result_code_string(rc));
	processed = SPI_processed;
	pfg_owner_context_end(&oc);
	pfg_spi_finish();
	return processed;
}

/* ---------- SQL functions */

/*
 * _check_guarded(tbl, subject_column, collected_at_column, tag_column,
 * for_write): lock and check a guarded relation (see above), or raise.
 */
Datum
profile_guard_check_guarded_sql(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table must not be null")));
	(void) pfg_check_guarded(PG_GETARG_OID(0),
									   PG_ARGISNULL(1) ? NULL : NameStr(*PG_GETARG_NAME(1)),
									   PG_ARGISNULL(2) ? NULL : NameStr(*PG_GETARG_NAME(2)),
									   PG_ARGISNULL(3) ? NULL : NameStr(*PG_GETARG_NAME(3)),
									   (!PG_ARGISNULL(4) && PG_GETARG_BOOL(4)) ?
									   RowExclusiveLock : AccessShareLock,
									   ERROR);
	PG_RETURN_VOID();
}

/*
 * _execute_as_owner(tbl, query, VARIADIC params "any"): run query, which
 * writes rows of tbl, as tbl's owner with params as $1, $2, ...; returns
 * the rows it processed.
 */
Datum
profile_guard_execute_as_owner_sql(PG_FUNCTION_ARGS)
{
	int			nargs = PG_NARGS() - 2;
	Oid		   *argtypes;
	Datum	   *values;
	char	   *nulls;
	Oid			relid;
	uint64		processed;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and query must not be null")));
	if (get_fn_expr_variadic(fcinfo->flinfo))
		elog(ERROR, "profile_guard._execute_as_owner() takes its parameters one by one, not as a VARIADIC array");
	relid = PG_GETARG_OID(0);
	argtypes = palloc(sizeof(Oid) * (nargs + 1));
	values = palloc(sizeof(Datum) * (nargs + 1));
	nulls = palloc(nargs + 1);
	for (int i = 0; i < nargs; i++)
	{
		argtypes[i] = get_fn_expr_argtype(fcinfo->flinfo, i + 2);
		if (!OidIsValid(argtypes[i]))
			elog(ERROR, "could not determine the type of parameter %d", i + 1);
		nulls[i] = PG_ARGISNULL(i + 2) ? 'n' : ' ';
		values[i] = PG_ARGISNULL(i + 2) ? (Datum) 0 : PG_GETARG_DATUM(i + 2);
		if (argtypes[i] == UNKNOWNOID)
		{
			argtypes[i] = TEXTOID;
			if (!PG_ARGISNULL(i + 2))
				values[i] = CStringGetTextDatum(DatumGetCString(values[i]));
		}
	}
	(void) pfg_check_guarded(relid, NULL, NULL, NULL, RowExclusiveLock, ERROR);
	processed = pfg_execute_as_owner(relid, text_to_cstring(PG_GETARG_TEXT_PP(1)),
									 nargs, argtypes, values, nulls, NULL);
	PG_RETURN_INT64((int64) processed);
}

/*
 * _as_text(value "any"): the value in its type's output form, never
 * through a cast (a cast may be a function of the type's owner).
 */
Datum
profile_guard_as_text(PG_FUNCTION_ARGS)
{
	FmgrInfo   *out = (FmgrInfo *) fcinfo->flinfo->fn_extra;
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 0);

	if (!OidIsValid(typid))
		elog(ERROR, "could not determine the type of the argument");
	/* the argument's type is fixed at a call site: look it up once */
	if (out == NULL)
	{
		Oid			outfunc;
		bool		isvarlena;

		getTypeOutputInfo(typid, &outfunc, &isvarlena);
		out = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(FmgrInfo));
		fmgr_info_cxt(outfunc, out, fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = out;
	}
	PG_RETURN_TEXT_P(cstring_to_text(OutputFunctionCall(out, PG_GETARG_DATUM(0))));
}
