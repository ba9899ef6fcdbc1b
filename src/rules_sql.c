/*-------------------------------------------------------------------------
 *
 * rules_sql.c
 *	  The consent rules in C exposed to SQL, for the regression suites that
 *	  compare them, subject by subject, with tag_state() (their
 *	  specification) and for the benchmarks: _subject_answer() answers for
 *	  one subject (subject_rules.c), _bulk_answers() for every subject at
 *	  once (bulk_rules.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/bitmapset.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "bulk_rules.h"
#include "subject_rules.h"
#include "spi_checked.h"

/* a set of tag ids as an int[] */
static Datum
ids_array(Bitmapset *ids)
{
	Datum	   *elems = palloc(sizeof(Datum) * (bms_num_members(ids) + 1));
	int			n = 0;
	int			m = -1;

	while ((m = bms_next_member(ids, m)) >= 0)
		elems[n++] = Int32GetDatum(m);
	return PointerGetDatum(construct_array(elems, n, INT4OID, 4, true, TYPALIGN_INT));
}

/*
 * _subject_answer(purpose, subject) → (tag_ids int[], valid_until): the C
 * answer, for the suites that compare it with tag_state().  NULL purpose:
 * what may be collected.  No row when the subject has no consent event.
 */
PFG_SQL_FUNCTION(profile_guard_subject_answer);

Datum
profile_guard_subject_answer(PG_FUNCTION_ARGS)
{
	char	   *purpose = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *subject;
	Bitmapset  *visible;
	TimestampTz valid_until;
	bool		any;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	MemoryContext cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	subject = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);

	pfg_spi_connect();
	pfg_rules_forget();			/* read the definitions as of now */
	any = pfg_rules_evaluate(purpose, subject, &visible, &valid_until);
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		visible = bms_copy(visible);
		MemoryContextSwitchTo(old);
	}
	pfg_spi_finish();

	if (!any)
		PG_RETURN_NULL();
	if (visible == NULL)
		nulls[0] = true;
	else
		values[0] = ids_array(visible);
	if (valid_until == DT_NOEND)
		nulls[1] = true;
	else
		values[1] = TimestampTzGetDatum(valid_until);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* _bulk_answers(): the rows, and the last tag set turned into an array */
typedef struct BulkAnswers
{
	ReturnSetInfo *rsinfo;
	Bitmapset  *last_set;
	Datum		last_array;
	MemoryContext cxt;			/* of last_array */
} BulkAnswers;

static void
put_bulk_answer(const char *subject, uint32 len, Bitmapset *visible,
				TimestampTz valid_until, void *arg)
{
	BulkAnswers *ba = (BulkAnswers *) arg;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = PointerGetDatum(cstring_to_text_with_len(subject, len));
	if (visible == NULL)
		nulls[1] = true;
	else
	{
		/* the evaluator hands out one Bitmapset per distinct set */
		if (visible != ba->last_set)
		{
			MemoryContext old = MemoryContextSwitchTo(ba->cxt);

			if (ba->last_set != NULL)
				pfree(DatumGetPointer(ba->last_array));
			ba->last_array = ids_array(visible);
			ba->last_set = visible;
			MemoryContextSwitchTo(old);
		}
		values[1] = ba->last_array;
	}
	if (valid_until == DT_NOEND)
		nulls[2] = true;
	else
		values[2] = TimestampTzGetDatum(valid_until);
	tuplestore_putvalues(ba->rsinfo->setResult, ba->rsinfo->setDesc, values, nulls);
}

/*
 * _bulk_answers(purpose) → (subject, tag_ids int[], valid_until): the C
 * answer for every subject at once, as the consent cache loads it, for the
 * suites that compare it with tag_state() and for the benchmarks.  NULL
 * purpose: what may be collected.
 */
PFG_SQL_FUNCTION(profile_guard_bulk_answers);

Datum
profile_guard_bulk_answers(PG_FUNCTION_ARGS)
{
	char	   *purpose = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	BulkAnswers ba;

	InitMaterializedSRF(fcinfo, 0);
	memset(&ba, 0, sizeof(ba));
	ba.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ba.cxt = CurrentMemoryContext;

	pfg_spi_connect();
	(void) pfg_rules_evaluate_all(purpose, put_bulk_answer, &ba);
	pfg_spi_finish();
	return (Datum) 0;
}
