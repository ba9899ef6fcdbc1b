/*-------------------------------------------------------------------------
 *
 * gate_exec.c
 *	  The gate functions that the planner hook (gate.c) writes into queries,
 *	  evaluated per row at execution time:
 *	    _row_gate(subject, relid)            wide shape: is the row visible?
 *	    _tag_row_gate(subject, tag, relid)   long shape: is this tag row visible?
 *	    _cell_gate(subject, tag_id, value)   the value, or NULL when masked
 *	    _row_mask(row, relid)                a whole row with masked cells
 *	    _purpose_row_gate(subject, relid)    wide shape, no tag read: the
 *	                                         row gate under a declared purpose,
 *	                                         every row without one
 *	  They use the purpose in force when the statement started (the same
 *	  for the whole statement), so cached plans follow purpose and consent
 *	  changes.  Before serving a cell (a long-shape tag row's value) they
 *	  refuse the statement if the connection may not carry it
 *	  (transport.c); the long shape's row gate does not, as it runs before
 *	  the statement's own filters (on the tag, say) could pass the row by.
 *	  They answer only where the planner hook placed them: a call written
 *	  by hand (any role, any subject) is refused with 42501 before it looks
 *	  anything up or counts anything.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "nodes/primnodes.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "extension.h"
#include "gate_exec.h"
#include "gate_eval.h"
#include "settings.h"
#include "catalog.h"
#include "consent_cache.h"
#include "purpose.h"
#include "crypto_envelope.h"
#include "audit.h"
#include "transport.h"
#include "recipient_use.h"

PFG_SQL_FUNCTION(profile_guard_row_gate);
PFG_SQL_FUNCTION(profile_guard_tag_row_gate);
PFG_SQL_FUNCTION(profile_guard_cell_gate);
PFG_SQL_FUNCTION(profile_guard_row_mask);
PFG_SQL_FUNCTION(profile_guard_sensitive_cell_gate);
PFG_SQL_FUNCTION(profile_guard_long_value_gate);
PFG_SQL_FUNCTION(profile_guard_purpose_row_gate);

/*
 * Refuse a gate call that the planner hook did not place (gate.c marks
 * its calls with PFG_GATE_CALL_FORMAT, which no parsed call carries).
 */
static void
require_placed(FunctionCallInfo fcinfo, const char *name)
{
	Node	   *expr = fcinfo->flinfo->fn_expr;

	if (expr != NULL && IsA(expr, FuncExpr) &&
		((FuncExpr *) expr)->funcformat == PFG_GATE_CALL_FORMAT)
		return;
	ereport(ERROR,
			(errcode(PFG_ERRCODE_GATE_NOT_PLACED),
			 errmsg("profile_guard.%s() cannot be called directly", name),
			 errdetail("Gate functions answer only where the planner placed them, in statements that read a guarded table."),
			 errhint("Read the guarded table under a declared purpose instead, e.g. SET profile_guard.purpose = 'recommendation'.")));
}

/*
 * The served value of a stored sensitive cell: the plaintext of our
 * ciphertext, or the stored value when it is not ours (written before
 * classify).  The subject's text is made on the stack.
 */
static inline Datum
decrypt_cell(Datum stored, Oid typid, Datum subject, Oid subject_typid,
			 const char *tag, int taglen)
{
	char		buf[PFG_SUBJECT_BUF_SIZE];
	const char *chars;
	int			len;

	if (typid != TEXTOID && typid != BYTEAOID)
		return stored;
	chars = pfg_subject_chars(subject, subject_typid, buf, &len);
	return pfg_crypto_decrypt_cell(stored, typid, chars, len, tag, taglen);
}

/*
 * What a gate's call site keeps between rows: the types of its "any"
 * arguments and, for the sensitive cell gate, the last tag it checked.
 */
typedef struct GateSite
{
	Oid			subject_type;
	int			audit_tag;		/* where its tag's counters were last */
	Oid			stored_type;	/* _sensitive_cell_gate's 4th argument */
	int			checked_tag_id;
	char	   *checked_tag;	/* NULL: none checked yet */
	int			checked_taglen;
} GateSite;

static pg_noinline GateSite *
new_gate_site(FunctionCallInfo fcinfo, const char *name)
{
	GateSite   *site;

	require_placed(fcinfo, name);
	site = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(GateSite));
	site->subject_type = get_fn_expr_argtype(fcinfo->flinfo, 0);
	if (!OidIsValid(site->subject_type))
		elog(ERROR, "could not determine the subject's type");
	fcinfo->flinfo->fn_extra = site;
	return site;
}

/*
 * The call site's state, made on its first call, once the call is known to
 * be one the planner hook placed (a call site's expression never changes).
 */
static inline GateSite *
gate_site(FunctionCallInfo fcinfo, const char *name)
{
	if (likely(fcinfo->flinfo->fn_extra != NULL))
		return (GateSite *) fcinfo->flinfo->fn_extra;
	return new_gate_site(fcinfo, name);
}

Datum
profile_guard_row_gate(PG_FUNCTION_ARGS)
{
	GateSite   *site = gate_site(fcinfo, "_row_gate");

	PG_RETURN_BOOL(pfg_gate_row_visible(PG_GETARG_DATUM(0), PG_ARGISNULL(0),
										site->subject_type, PG_GETARG_OID(1)));
}

/*
 * _purpose_row_gate(subject, relid): a wide-shape read that names no tag
 * (count(*), the subject column) sees, under a declared purpose, only the
 * subjects eligible for it; with no purpose declared, every row.  Decided
 * per statement, when it runs: a cached plan follows SET purpose.
 */
Datum
profile_guard_purpose_row_gate(PG_FUNCTION_ARGS)
{
	require_placed(fcinfo, "_purpose_row_gate");
	if (!pfg_statement_purpose_declared())
		PG_RETURN_BOOL(true);
	return profile_guard_row_gate(fcinfo);
}

Datum
profile_guard_tag_row_gate(PG_FUNCTION_ARGS)
{
	PurposeState *ps;
	text	   *tag;
	int			tag_id;
	bool		visible;

	require_placed(fcinfo, "_tag_row_gate");

	ps = pfg_purpose_for_statement(PG_GETARG_OID(2), NULL);
	if (ps == NULL)
		PG_RETURN_BOOL(true);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
	{
		pfg_audit_count_row(PG_GETARG_OID(2), false);	/* audit */
		PG_RETURN_BOOL(false);
	}
	tag = PG_GETARG_TEXT_PP(1);
	tag_id = pfg_tag_id_lookup(VARDATA_ANY(tag), VARSIZE_ANY_EXHDR(tag), NULL);
	visible = (tag_id >= 0 &&
			   pfg_subject_tag_visible(ps, PG_GETARG_DATUM(0), gate_site(fcinfo, "_tag_row_gate")->subject_type, tag_id));
	pfg_audit_count_tag_row(PG_GETARG_OID(2), tag_id, VARDATA_ANY(tag),	/* audit */
						   VARSIZE_ANY_EXHDR(tag), visible);
	PG_RETURN_BOOL(visible);
}

Datum
profile_guard_cell_gate(PG_FUNCTION_ARGS)
{
	GateSite   *site = gate_site(fcinfo, "_cell_gate");

	if (PG_ARGISNULL(2))
		PG_RETURN_NULL();
	if (!pfg_gate_cell_served(PG_GETARG_DATUM(0), PG_ARGISNULL(0), site->subject_type,
							  PG_GETARG_INT32(1), &site->audit_tag))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PG_GETARG_DATUM(2));
}

/*
 * _sensitive_cell_gate(subject, tag_id, tag, stored): the decrypted value
 * when the purpose may see it, else NULL.  Stored values that are not our
 * ciphertext (written before classify, or by a superuser with triggers
 * off) are served as they are: nothing to decrypt.
 */
Datum
profile_guard_sensitive_cell_gate(PG_FUNCTION_ARGS)
{
	PurposeState *ps;
	GateSite   *site;
	Datum		subject;
	text	   *tag;
	int			taglen;
	int			tag_id;
	Datum		stored;

	require_placed(fcinfo, "_sensitive_cell_gate");

	if (PG_ARGISNULL(3) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	stored = PG_GETARG_DATUM(3);
	ps = pfg_purpose_for_statement(InvalidOid, NULL);
	if (ps == NULL)
		PG_RETURN_DATUM(stored);	/* bypass: the raw ciphertext */
	if (PG_ARGISNULL(0))
	{
		pfg_audit_count_cell(PG_GETARG_INT32(1), false);	/* audit */
		PG_RETURN_NULL();
	}
	site = gate_site(fcinfo, "_sensitive_cell_gate");
	subject = PG_GETARG_DATUM(0);
	tag_id = PG_GETARG_INT32(1);
	tag = PG_GETARG_TEXT_PP(2);
	taglen = VARSIZE_ANY_EXHDR(tag);

	/*
	 * The gate checks the consent of tag_id and decrypts under the tag
	 * named: called by hand with two different tags it would decrypt one
	 * tag on the strength of another's consent.  The planner's calls name
	 * the same tag on every row: checked once per call site.
	 */
	if (site->checked_tag == NULL || site->checked_tag_id != tag_id ||
		site->checked_taglen != taglen ||
		memcmp(site->checked_tag, VARDATA_ANY(tag), taglen) != 0)
	{
		char	   *name = text_to_cstring(tag);

		if (pfg_tag_id_lookup(name, taglen, NULL) != tag_id)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tag \"%s\" does not have id %d", name, tag_id),
					 errdetail("profile_guard._sensitive_cell_gate() decrypts only the tag whose consent it checks."),
					 errhint("Read the guarded table instead; the planner writes this call.")));
		if (site->checked_tag != NULL)
			pfree(site->checked_tag);
		site->checked_tag = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, name);
		site->checked_tag_id = tag_id;
		site->checked_taglen = taglen;
		site->stored_type = get_fn_expr_argtype(fcinfo->flinfo, 3);
	}
	if (!pfg_subject_tag_visible(ps, subject, site->subject_type, tag_id))
	{
		pfg_audit_count_cell(tag_id, false); /* audit */
		PG_RETURN_NULL();
	}
	pfg_transport_require(tag_id, true, InvalidOid, 0, false);
	pfg_audit_count_cell(tag_id, true);	/* audit */
	pfg_gate_note_served(subject, site->subject_type);
	PG_RETURN_DATUM(decrypt_cell(stored, site->stored_type, subject, site->subject_type,
								 site->checked_tag, site->checked_taglen));
}

/*
 * A long-shape tag row's value as the purpose may see it, in *value: false
 * when the tag is unknown or not visible, the plaintext for a sensitive tag.
 * relid: the table, when the caller knows it.
 */
static bool
serve_long_value(PurposeState *ps, Datum subject, Oid subject_typid,
				 const char *tag, int taglen, Datum *value, Oid value_typid,
				 Oid relid)
{
	bool		sensitive = false;
	int			tag_id = pfg_tag_id_lookup(tag, taglen, &sensitive);

	if (tag_id < 0 || !pfg_subject_tag_visible(ps, subject, subject_typid, tag_id))
		return false;
	pfg_transport_require(tag_id, sensitive, relid, 0, true);
	pfg_gate_note_served(subject, subject_typid);
	if (sensitive)
		*value = decrypt_cell(*value, value_typid, subject, subject_typid, tag, taglen);
	return true;
}

/*
 * _long_value_gate(subject, tag, value): a long-shape tag row's value, the
 * plaintext for a sensitive tag, or NULL when the purpose may not see the
 * tag (the row gate has normally hidden such rows already).
 */
Datum
profile_guard_long_value_gate(PG_FUNCTION_ARGS)
{
	PurposeState *ps;
	text	   *tag;
	Datum		value;

	require_placed(fcinfo, "_long_value_gate");

	if (PG_ARGISNULL(2))
		PG_RETURN_NULL();
	value = PG_GETARG_DATUM(2);
	ps = pfg_purpose_for_statement(InvalidOid, NULL);
	if (ps == NULL)
		PG_RETURN_DATUM(value);	/* bypass: the raw value */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	tag = PG_GETARG_TEXT_PP(1);
	if (!serve_long_value(ps, PG_GETARG_DATUM(0), gate_site(fcinfo, "_long_value_gate")->subject_type,
						  VARDATA_ANY(tag), VARSIZE_ANY_EXHDR(tag),
						  &value, get_fn_expr_argtype(fcinfo->flinfo, 2), InvalidOid))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(value);
}

/*
 * _row_mask(row, relid): the row with every tag cell the purpose may not see
 * set to NULL.  The row has the relation's own row type, so attribute
 * numbers (dropped columns included) are the relation's.
 */
Datum
profile_guard_row_mask(PG_FUNCTION_ARGS)
{
	HeapTupleHeader rec = PG_GETARG_HEAPTUPLEHEADER(0);
	Oid			relid = PG_GETARG_OID(1);
	PurposeState *ps;
	GuardedRelation *grel;
	TupleDesc	desc;
	HeapTupleData tuple;
	HeapTuple	result;
	Datum	   *values;
	bool	   *nulls;
	Oid			subject_typid;
	Datum		subject;
	bool		subject_null;

	require_placed(fcinfo, "_row_mask");

	ps = pfg_purpose_for_statement(relid, NULL);
	/* a copy: decrypting may take in invalidations, which free the map's */
	grel = pfg_guarded_relation_copy(relid);
	if (ps == NULL || grel == NULL ||
		(grel->ncolumns == 0 && grel->tag_attnum == InvalidAttrNumber))
		PG_RETURN_HEAPTUPLEHEADER(rec);

	/* the row must be the relation's own: attribute numbers are its */
	if (HeapTupleHeaderGetTypeId(rec) != get_rel_type_id(relid))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("row is not of the row type of table \"%s\"", get_rel_name(relid)),
				 errdetail("profile_guard._row_mask() masks rows of the relation it names only."),
				 errhint("Read the guarded table instead; the planner writes this call.")));

	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec),
								  HeapTupleHeaderGetTypMod(rec));
	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;

	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(&tuple, desc, values, nulls);

	subject_typid = TupleDescAttr(desc, grel->subject_attnum - 1)->atttypid;
	subject = values[grel->subject_attnum - 1];
	subject_null = nulls[grel->subject_attnum - 1];
	for (int i = 0; i < grel->ncolumns; i++)
	{
		int			off = grel->columns[i].attnum - 1;

		if (off >= desc->natts || nulls[off])
			continue;
		if (subject_null ||
			!pfg_subject_tag_visible(ps, subject, subject_typid, grel->columns[i].tag_id))
		{
			nulls[off] = true;
			pfg_audit_count_cell(grel->columns[i].tag_id, false);	/* audit */
			continue;
		}
		pfg_transport_require(grel->columns[i].tag_id, grel->columns[i].sensitive,
							  relid, grel->columns[i].attnum, false);
		pfg_audit_count_cell(grel->columns[i].tag_id, true);	/* audit */
		pfg_gate_note_served(subject, subject_typid);
		if (grel->columns[i].sensitive)
			values[off] = decrypt_cell(values[off], TupleDescAttr(desc, off)->atttypid,
									   subject, subject_typid, grel->columns[i].tag,
									   strlen(grel->columns[i].tag));
	}
	/* long shape: the value of a tag row, as _long_value_gate serves it */
	if (grel->tag_attnum != InvalidAttrNumber &&
		grel->value_attnum <= desc->natts && grel->tag_attnum <= desc->natts &&
		!nulls[grel->value_attnum - 1])
	{
		int			voff = grel->value_attnum - 1;
		int			toff = grel->tag_attnum - 1;
		text	   *tag = nulls[toff] ? NULL : DatumGetTextPP(values[toff]);

		if (subject_null || tag == NULL ||
			!serve_long_value(ps, subject, subject_typid,
							  VARDATA_ANY(tag), VARSIZE_ANY_EXHDR(tag),
							  &values[voff], TupleDescAttr(desc, voff)->atttypid, relid))
			nulls[voff] = true;
	}
	result = heap_form_tuple(desc, values, nulls);
	ReleaseTupleDesc(desc);
	PG_RETURN_DATUM(HeapTupleGetDatum(result));
}
