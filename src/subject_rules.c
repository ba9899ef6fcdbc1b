/*-------------------------------------------------------------------------
 *
 * subject_rules.c
 *	  The consent rules for one subject (pfg_rules_evaluate), for a subject
 *	  the consent cache meets alone: the subject's own rows, read with two
 *	  small prepared queries (its consent events; its facts and blocked
 *	  tags), and its legal holds with a third, turned into the facts and
 *	  events of rules.c and answered by its rule code.  Owns the definitions
 *	  this path reads, loaded once per policy generation (pfg_rules_forget
 *	  drops them), and the plans.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "rules.h"
#include "subject_rules.h"

/* the catalog of the one-subject path, loaded once per policy generation */
static RuleCatalog *Rules = NULL;

static SPIPlanPtr FactsPlan = NULL;
static SPIPlanPtr EventsPlan = NULL;
static SPIPlanPtr HoldsPlan = NULL;

/* drop the definitions: the next evaluation reads them again */
void
pfg_rules_forget(void)
{
	if (Rules != NULL)
	{
		MemoryContextDelete(Rules->cxt);
		Rules = NULL;
	}
}

/*
 * The answer for one subject under a purpose (or, with purpose NULL, the
 * union over every purpose in force: what may be collected).  Must run
 * inside SPI, with the catalog readable (consent_cache.c's catalog access).
 * Returns false when the subject has no consent event for it (no row in
 * tag_state); else *visible (in CurrentMemoryContext) and *valid_until
 * (DT_NOEND when nothing expires by itself).
 */
bool
pfg_rules_evaluate(const char *purpose, const char *subject,
				   Bitmapset **visible, TimestampTz *valid_until)
{
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	int			ret;
	RuleCatalog *rc;
	bool	   *target;
	RulesSubject s;
	RulesEvent *prev = NULL;
	bitmapword *blocks = NULL;
	RulesAge	age = NoAge;
	bitmapword *words;
	TimestampTz now = GetCurrentStatementStartTimestamp();
	bool		any;

	*visible = NULL;
	*valid_until = DT_NOEND;
	if (Rules == NULL)
		Rules = pfg_rules_load(TopMemoryContext);
	rc = Rules;
	if (!pfg_rules_choose_purposes(rc, purpose, &target))
		return false;

	if (FactsPlan == NULL)
	{
		Oid			argtypes[1] = {TEXTOID};

		FactsPlan = pfg_keep_catalog_plan(
			"SELECT s.birth_date, s.opted_out, s.erasure_requested_at IS NOT NULL,"
			"       ARRAY(SELECT b.tag FROM profile_guard.tag_block b"
			"             WHERE b.subject OPERATOR(pg_catalog.=) s.subject)"
			"  FROM profile_guard.subject s WHERE s.subject OPERATOR(pg_catalog.=) $1",
			1, argtypes);
	}
	if (EventsPlan == NULL)
	{
		Oid			argtypes[2] = {TEXTOID, TEXTOID};

		EventsPlan = pfg_keep_catalog_plan(
			"SELECT c.purpose, c.tags,"
			"       c.action OPERATOR(pg_catalog.=) 'grant', c.purpose_version,"
			"       c.separate, c.guardian, c.expires_at, c.consent_id"
			"  FROM profile_guard.consent c"
			" WHERE c.subject OPERATOR(pg_catalog.=) $1"
			"   AND ($2 IS NULL OR c.purpose OPERATOR(pg_catalog.=) $2)"
			" ORDER BY c.consent_id DESC",
			2, argtypes);
	}

	args[0] = CStringGetTextDatum(subject);
	args[1] = purpose ? CStringGetTextDatum(purpose) : (Datum) 0;
	if (purpose == NULL)
		nulls[1] = 'n';

	memset(&s, 0, sizeof(s));	/* the key is not needed */
	ret = SPI_execute_plan(EventsPlan, args, nulls, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read consent: %s", SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		text	   *name;
		int			pidx;
		RulesEvent *e;
		bitmapword *covers;

		d = SPI_getbinval(tup, desc, 1, &isnull);
		if (isnull)
			continue;
		name = DatumGetTextPP(d);
		pidx = pfg_rules_purpose_index(rc, VARDATA_ANY(name),
									   VARSIZE_ANY_EXHDR(name));
		if (pidx < 0 || !target[pidx] || rc->purposes[pidx].standing)
			continue;
		d = SPI_getbinval(tup, desc, 2, &isnull);
		covers = tagset_new(rc);
		pfg_rules_tag_list_covers(rc, d, isnull, covers);
		if (tagset_is_empty(covers, rc->nwords))
			continue;			/* the latest event of no tag */
		e = (prev == NULL) ? &s.events : palloc0(sizeof(RulesEvent));
		e->purpose = (int16) pidx;
		e->covers = covers;
		d = SPI_getbinval(tup, desc, 3, &isnull);
		if (!isnull && DatumGetBool(d))
			e->flags |= EVENT_GRANT;
		d = SPI_getbinval(tup, desc, 4, &isnull);
		e->version = isnull ? PG_INT32_MIN : DatumGetInt32(d);
		d = SPI_getbinval(tup, desc, 5, &isnull);
		if (!isnull && DatumGetBool(d))
			e->flags |= EVENT_SEPARATE;
		d = SPI_getbinval(tup, desc, 6, &isnull);
		if (!isnull && DatumGetBool(d))
			e->flags |= EVENT_GUARDIAN;
		d = SPI_getbinval(tup, desc, 7, &isnull);
		if (!isnull)
		{
			e->flags |= EVENT_EXPIRES;
			e->expires_at = DatumGetTimestampTz(d);
		}
		d = SPI_getbinval(tup, desc, 8, &isnull);
		e->consent_id = isnull ? 0 : DatumGetInt64(d);
		if (prev != NULL)
			prev->next = e;
		prev = e;
	}
	if (prev == NULL)
	{
		/* no event: only a purpose not based on consent may answer */
		if (!pfg_rules_any_standing(rc, target))
			return false;
		s.events.purpose = -1;
	}

	ret = SPI_execute_plan(FactsPlan, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the subject: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;

		s.flags |= SUBJECT_REGISTERED;
		d = SPI_getbinval(tup, desc, 1, &isnull);
		if (!isnull)
		{
			s.flags |= SUBJECT_HAS_BIRTH;
			s.birth_date = DatumGetDateADT(d);
		}
		d = SPI_getbinval(tup, desc, 2, &isnull);
		if (!isnull && DatumGetBool(d))
			s.flags |= SUBJECT_OPTED_OUT;
		d = SPI_getbinval(tup, desc, 3, &isnull);
		if (!isnull && DatumGetBool(d))
			s.flags |= SUBJECT_ERASURE;
		d = SPI_getbinval(tup, desc, 4, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *enulls;
			int			n;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, &enulls, &n);
			for (int i = 0; i < n; i++)
			{
				text	   *name;
				int			t;

				if (enulls[i])
					continue;
				name = DatumGetTextPP(elems[i]);
				t = pfg_rules_tag_index(rc, VARDATA_ANY(name),
										VARSIZE_ANY_EXHDR(name));
				if (t < 0)
					continue;
				if (blocks == NULL)
					blocks = tagset_new(rc);
				blocks[TAGSET_WORD(t)] |= TAGSET_BIT(t);
			}
		}
	}

	/* its legal holds (a database still at 1.1 has none) */
	if ((s.flags & SUBJECT_REGISTERED) &&
		(HoldsPlan != NULL || OidIsValid(pfg_catalog_relid("legal_hold"))))
	{
		if (HoldsPlan == NULL)
		{
			Oid			argtypes[1] = {TEXTOID};

			HoldsPlan = pfg_keep_catalog_plan(
				"SELECT h.released_at IS NOT NULL, h.until"
				"  FROM profile_guard.legal_hold h"
				" WHERE h.subject OPERATOR(pg_catalog.=) $1",
				1, argtypes);
		}
		ret = SPI_execute_plan(HoldsPlan, args, NULL, true, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not read legal holds: %s", SPI_result_code_string(ret));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			bool		released;
			Datum		until;

			released = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
			until = SPI_getbinval(tup, desc, 2, &isnull);
			pfg_rules_hold(&s, released, !isnull,
						   isnull ? 0 : DatumGetTimestampTz(until), now);
		}
	}

	if (s.flags & SUBJECT_HAS_BIRTH)
		pfg_rules_compute_age(s.birth_date,
							  pfg_rules_date_in_age_zone(GetCurrentTransactionStartTimestamp()),
							  &age);
	else
		age = *pfg_rules_unknown_age();
	words = tagset_new(rc);
	any = pfg_rules_apply(rc, target, &s, blocks, &age, now, words, valid_until);
	*visible = pfg_rules_tagset_ids(rc, words);
	return any;
}
