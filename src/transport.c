/*-------------------------------------------------------------------------
 *
 * transport.c
 *	  Tag cells served only over a secure connection (rule 3 of
 *	  docs/rules.md, profile_guard.secure_transport): whether this
 *	  backend's connection is secure, decided once, and the refusal of a
 *	  statement that would serve a covered cell over plain TCP.  The gates
 *	  (gate_exec.c) ask before they serve a cell, at execution time, so
 *	  every way of reading one (prepared statements, cursors, views,
 *	  functions, COPY, whole-row references) is refused alike.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>

#include "access/parallel.h"
#include "catalog/pg_type.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "catalog.h"
#include "extension.h"
#include "spi_checked.h"
#include "transport.h"

int			pfg_transport_state = 0;

/*
 * Secure: SSL (or GSSAPI encryption, hostgssenc), or a local (Unix-domain)
 * socket, or no client connection at all (a background worker such as the
 * sweep, a standalone backend).  Plain TCP is not, loopback included.  A
 * parallel worker has no connection: its leader's counts, set as it
 * attaches to its leader's run (parallel_gates.c); plain if it did not.
 */
int
pfg_transport_decide(void)
{
	if (IsParallelWorker())
		pfg_transport_state = PFG_TRANSPORT_PLAIN;
	else if (MyProcPort == NULL)
		pfg_transport_state = PFG_TRANSPORT_SECURE;
	else if (MyProcPort->laddr.addr.ss_family == AF_UNIX)
		pfg_transport_state = PFG_TRANSPORT_SECURE;
#ifdef USE_SSL
	else if (MyProcPort->ssl_in_use)
		pfg_transport_state = PFG_TRANSPORT_SECURE;
#endif
#ifdef ENABLE_GSS
	else if (be_gssapi_get_enc(MyProcPort))
		pfg_transport_state = PFG_TRANSPORT_SECURE;
#endif
	else
		pfg_transport_state = PFG_TRANSPORT_PLAIN;
	return pfg_transport_state;
}

/*
 * The tag's name and where it is held, for the refusal's DETAIL: the
 * column when the gate knows it, else every column (wide shape) or value
 * column (long shape) that holds the tag, as the catalog lists them.
 */
static void
tag_columns(int tag_id, Oid relid, AttrNumber attnum, bool long_shape,
			char **tag, char **where)
{
	PfgCatalogAccess ca;
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1];
	MemoryContext caller = CurrentMemoryContext;
	int			rc;

	*tag = NULL;
	*where = NULL;
	args[0] = Int32GetDatum(tag_id);
	pfg_begin_catalog_access(&ca, false);
	pfg_spi_connect();
	rc = SPI_execute_with_args(long_shape ?
							   "SELECT t.tag, (SELECT string_agg(format('column \"%s\" of table \"%s\"', g.value_column, c.relname), ', '"
							   "                                 ORDER BY c.relname, g.value_column)"
							   "               FROM profile_guard.guarded_table g JOIN pg_catalog.pg_class c ON c.oid = g.relid"
							   "               WHERE g.tag_column IS NOT NULL)"
							   " FROM profile_guard.tag t WHERE t.tag_id = $1" :
							   "SELECT t.tag, (SELECT string_agg(format('column \"%s\" of table \"%s\"', cc.column_name, c.relname), ', '"
							   "                                 ORDER BY c.relname, cc.column_name)"
							   "               FROM profile_guard.classified_column cc JOIN pg_catalog.pg_class c ON c.oid = cc.relid"
							   "               WHERE cc.tag = t.tag)"
							   " FROM profile_guard.tag t WHERE t.tag_id = $1",
							   1, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read where a tag is held: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (s != NULL)
			*tag = MemoryContextStrdup(caller, s);
		s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		if (s != NULL)
			*where = MemoryContextStrdup(caller, s);
	}
	pfg_spi_finish();
	pfg_end_catalog_access(&ca);

	if (OidIsValid(relid) && long_shape && attnum == 0)
	{
		GuardedRelation *grel = pfg_guarded_relation(relid);

		if (grel != NULL)
			attnum = grel->value_attnum;
	}
	if (OidIsValid(relid) && attnum > 0)
	{
		char	   *col = get_attname(relid, attnum, true);
		char	   *rel = get_rel_name(relid);

		if (col != NULL && rel != NULL)
			*where = psprintf("column \"%s\" of table \"%s\"", col, rel);
	}
}

void
pfg_transport_refuse(int tag_id, bool sensitive, Oid relid,
					 AttrNumber attnum, bool long_shape)
{
	const char *kind = sensitive ? "sensitive" : "general";
	const char *setting = pfg_secure_transport == PFG_SECURE_TRANSPORT_ALL ? "all" : "sensitive";
	char	   *tag;
	char	   *where;

	tag_columns(tag_id, relid, attnum, long_shape, &tag, &where);
	if (tag == NULL)
		tag = psprintf("%d", tag_id);
	ereport(ERROR,
			(errcode(PFG_ERRCODE_INSECURE_TRANSPORT),
			 errmsg("%s tag \"%s\" is served only over a secure connection", kind, tag),
			 where ?
			 errdetail("The statement would serve %s tag \"%s\" of %s over plain TCP without SSL, and profile_guard.secure_transport = %s.",
					   kind, tag, where, setting) :
			 errdetail("The statement would serve %s tag \"%s\" over plain TCP without SSL, and profile_guard.secure_transport = %s.",
					   kind, tag, setting),
			 errhint("Connect with sslmode=require (the server needs ssl = on) or over the local socket, or ask the database administrator.")));
}
