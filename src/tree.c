/*-------------------------------------------------------------------------
 *
 * tree.c
 *	  A table joining or leaving the tree of a guarded table.  Partitions
 *	  and inheritance children are guarded as their nearest guarded
 *	  ancestor is (catalog.c).  The utility hook calls these around
 *	  ALTER TABLE, so that
 *	    - a table attached under a guarded table (ATTACH PARTITION,
 *	      INHERIT) is guarded as it is, the plaintext of sensitive tags it
 *	      brings encrypted, and a guarded table never goes under one that
 *	      is not guarded (profile_guard._before_attach, _guard_attached);
 *	    - a table detached from one (DETACH PARTITION, also CONCURRENTLY
 *	      and FINALIZE; NO INHERIT) stays guarded, in its own right, as
 *	      its guarded ancestor was (profile_guard._adopt_detached).
 *	  The SQL runs as the owner of our schema (the statement's role may
 *	  not call it) in the statement's transaction: a refusal rolls the
 *	  statement back.  Tables made with INHERITS or PARTITION OF are new
 *	  and empty: the event trigger profile_guard_ddl guards them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "tree.h"
#include "spi_checked.h"

/*
 * The table whose change the SQL called here is acting on, while it runs.
 * Only this file sets it: called in any other way, those functions refuse
 * (profile_guard._tree_change(), below).
 */
static Oid	tree_change_child = InvalidOid;

PFG_SQL_FUNCTION(profile_guard_tree_change);

typedef struct TreeChange
{
	bool		attach;			/* else detach */
	Oid			child;
	Oid			root;			/* detach: the guarded table it was under */
} TreeChange;

/*
 * _tree_change(child regclass): is a change of child's tree being made by
 * ALTER TABLE now?  The functions that act on it answer no other call.
 */
Datum
profile_guard_tree_change(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!PG_ARGISNULL(0) && OidIsValid(tree_change_child) &&
				   PG_GETARG_OID(0) == tree_change_child);
}

/*
 * Run one of our functions on the change of 'child', as our schema's
 * owner; its regclass result.
 */
static Oid
call_tree_function(Oid child, const char *query, int nargs, Oid *argtypes, Datum *args)
{
	PfgCatalogAccess ca;
	Oid			result = InvalidOid;
	int			rc;

	pfg_begin_catalog_access(&ca, false);
	pfg_spi_connect();
	tree_change_child = child;
	PG_TRY();
	{
		rc = SPI_execute_with_args(query, nargs, argtypes, args, NULL, false, 1);
	}
	PG_FINALLY();
	{
		tree_change_child = InvalidOid;
	}
	PG_END_TRY();
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not run %s: %s", query, SPI_result_code_string(rc));
	if (SPI_processed == 1 &&
		TupleDescAttr(SPI_tuptable->tupdesc, 0)->atttypid == REGCLASSOID)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			result = DatumGetObjectId(d);
	}
	pfg_spi_finish();
	pfg_end_catalog_access(&ca);
	return result;
}

static Oid
relation_of(RangeVar *rv)
{
	return rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
}

/*
 * Before an ALTER TABLE runs: refuse or prepare what it attaches, and note
 * what it attaches and detaches.  The list is for pfg_tree_after().
 */
List *
pfg_tree_before(Node *parsetree)
{
	AlterTableStmt *stmt;
	List	   *changes = NIL;
	ListCell   *lc;

	if (!IsA(parsetree, AlterTableStmt))
		return NIL;
	stmt = (AlterTableStmt *) parsetree;
	if (stmt->objtype != OBJECT_TABLE || !IsTransactionState() || !pfg_any_guarded())
		return NIL;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		Oid			child = InvalidOid;
		Oid			parent = InvalidOid;
		bool		attach = false;
		bool		partition = false;
		TreeChange *change;

		switch (cmd->subtype)
		{
			case AT_AttachPartition:
				child = relation_of(((PartitionCmd *) cmd->def)->name);
				parent = relation_of(stmt->relation);
				attach = partition = true;
				break;
			case AT_AddInherit:
				child = relation_of(stmt->relation);
				parent = relation_of((RangeVar *) cmd->def);
				attach = true;
				break;
			case AT_DetachPartition:
			case AT_DetachPartitionFinalize:
				child = relation_of(((PartitionCmd *) cmd->def)->name);
				break;
			case AT_DropInherit:
				child = relation_of(stmt->relation);
				break;
			default:
				continue;
		}
		if (!OidIsValid(child) || (attach && !OidIsValid(parent)))
			continue;

		change = palloc0(sizeof(TreeChange));
		change->attach = attach;
		change->child = child;
		if (attach)
		{
			Oid			argtypes[3] = {REGCLASSOID, REGCLASSOID, BOOLOID};
			Datum		args[3];

			args[0] = ObjectIdGetDatum(child);
			args[1] = ObjectIdGetDatum(parent);
			args[2] = BoolGetDatum(partition);
			(void) call_tree_function(child, "SELECT profile_guard._before_attach($1, $2, $3)",
									  3, argtypes, args);
		}
		else
		{
			Oid			argtypes[1] = {REGCLASSOID};
			Datum		args[1];

			/* guarded through an ancestor, not in its own right */
			if (pfg_guarded_relation(child) == NULL)
				continue;
			args[0] = ObjectIdGetDatum(child);
			change->root = call_tree_function(child, "SELECT profile_guard._guarded_root($1)",
											  1, argtypes, args);
			if (!OidIsValid(change->root) || change->root == child)
				continue;
		}
		changes = lappend(changes, change);
	}
	return changes;
}

/* After the ALTER TABLE ran: guard what it attached and what it detached. */
void
pfg_tree_after(List *changes)
{
	ListCell   *lc;

	foreach(lc, changes)
	{
		TreeChange *change = lfirst(lc);
		Oid			argtypes[2] = {REGCLASSOID, REGCLASSOID};
		Datum		args[2];

		args[0] = ObjectIdGetDatum(change->child);
		args[1] = ObjectIdGetDatum(change->root);
		if (change->attach)
			(void) call_tree_function(change->child, "SELECT profile_guard._guard_attached($1)",
									  1, argtypes, args);
		else
			(void) call_tree_function(change->child, "SELECT profile_guard._adopt_detached($1, $2)",
									  2, argtypes, args);
	}
}
