/*-------------------------------------------------------------------------
 *
 * subject_rules.c
 *	  The rules of DESIGN.md §1 for one subject, in C: what the consent
 *	  cache needs when it meets a subject it has not loaded (a key look-up)
 *	  without running the set-based tag_state() for it.
 *
 *	  tag_state() (sql/ext/20_policy.sql) stays the specification and what
 *	  bulk loads and consent_status use; this file computes the same answer
 *	  (visible tags, valid_until) from the same rows, read with two small
 *	  prepared queries.  _subject_answer() exposes it to SQL so that the
 *	  regression suites check, subject by subject, that both agree.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "profile_guard.h"
#include "subject_rules.h"

typedef struct RuleTag
{
	int			tag_id;
	char	   *name;
	bool		sensitive;
	int			nsources;
	char	  **sources;		/* all_sources: the transitive closure */
} RuleTag;

typedef struct RulePurpose
{
	char	   *name;
	int			version;
	bool		marketing;
	bool		retired;
	bool		unassessed;
	int			npatterns;		/* -1: no tag list (every tag) */
	char	  **patterns;
} RulePurpose;

/* the definitions the rules read, loaded once per policy generation */
typedef struct RuleCatalog
{
	MemoryContext cxt;
	int			ntags;
	RuleTag    *tags;
	int			npurposes;
	RulePurpose *purposes;
} RuleCatalog;

static RuleCatalog *Rules = NULL;

static SPIPlanPtr FactsPlan = NULL;
static SPIPlanPtr EventsPlan = NULL;

void
pg_rules_forget(void)
{
	if (Rules != NULL)
	{
		MemoryContextDelete(Rules->cxt);
		Rules = NULL;
	}
}

/* text[] datum to a palloc'd array of C strings; -1 for NULL */
static int
text_array(Datum d, bool isnull, char ***out)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			k = 0;

	if (isnull)
	{
		*out = NULL;
		return -1;
	}
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	*out = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			(*out)[k++] = TextDatumGetCString(elems[i]);
	return k;
}

/* Load tags and purposes (inside SPI, under the caller's catalog access). */
static void
load_rules(void)
{
	MemoryContext cxt;
	MemoryContext old;
	RuleCatalog *rc;
	int			ret;

	cxt = AllocSetContextCreate(TopMemoryContext, "profile_guard rules",
								ALLOCSET_SMALL_SIZES);
	rc = MemoryContextAllocZero(cxt, sizeof(RuleCatalog));
	rc->cxt = cxt;

	ret = SPI_execute("SELECT tag_id, tag, sensitivity OPERATOR(pg_catalog.=) 'sensitive', all_sources"
					  "  FROM profile_guard.tag", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read tags: %s", SPI_result_code_string(ret));
	old = MemoryContextSwitchTo(cxt);
	rc->ntags = (int) SPI_processed;
	rc->tags = palloc0(sizeof(RuleTag) * Max(rc->ntags, 1));
	for (int i = 0; i < rc->ntags; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		RuleTag    *t = &rc->tags[i];

		t->tag_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		t->name = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		t->sensitive = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		d = SPI_getbinval(tup, desc, 4, &isnull);
		t->nsources = Max(text_array(d, isnull, &t->sources), 0);
	}
	MemoryContextSwitchTo(old);

	ret = SPI_execute("SELECT p.purpose, p.version, p.marketing, p.retired_at IS NOT NULL,"
					  "       p.automated_decision AND NOT EXISTS ("
					  "           SELECT 1 FROM profile_guard.assessment a"
					  "           WHERE a.purpose OPERATOR(pg_catalog.=) p.purpose"
					  "             AND a.purpose_version OPERATOR(pg_catalog.=) p.version),"
					  "       p.tags"
					  "  FROM profile_guard.purpose p", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read purposes: %s", SPI_result_code_string(ret));
	old = MemoryContextSwitchTo(cxt);
	rc->npurposes = (int) SPI_processed;
	rc->purposes = palloc0(sizeof(RulePurpose) * Max(rc->npurposes, 1));
	for (int i = 0; i < rc->npurposes; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		RulePurpose *p = &rc->purposes[i];

		p->name = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		p->version = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		p->marketing = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		p->retired = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		p->unassessed = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		d = SPI_getbinval(tup, desc, 6, &isnull);
		p->npatterns = text_array(d, isnull, &p->patterns);
	}
	MemoryContextSwitchTo(old);
	Rules = rc;
}

/* tag_matches(): NULL or '*' covers all; a name; a "prefix.*" pattern */
static bool
pattern_covers(const char *pattern, const char *tag)
{
	size_t		plen = strlen(pattern);

	if (strcmp(pattern, "*") == 0 || strcmp(pattern, tag) == 0)
		return true;
	return plen >= 2 && pattern[plen - 2] == '.' && pattern[plen - 1] == '*' &&
		strncmp(tag, pattern, plen - 1) == 0;
}

static bool
patterns_cover(char **patterns, int npatterns, const char *tag)
{
	if (npatterns < 0)
		return true;
	for (int i = 0; i < npatterns; i++)
		if (pattern_covers(patterns[i], tag))
			return true;
	return false;
}

/* one consent event of the subject */
typedef struct Event
{
	char	   *purpose;
	char	  **patterns;
	int			npatterns;
	bool		grant;
	int			version;
	bool		separate;
	bool		guardian;
	bool		expires;
	TimestampTz expires_at;
} Event;

/* birth + years, as the SQL computes it: timestamp without time zone */
static Timestamp
birthday(DateADT birth, int years)
{
	Interval	iv;

	memset(&iv, 0, sizeof(iv));
	iv.month = years * MONTHS_PER_YEAR;
	return DatumGetTimestamp(DirectFunctionCall2(date_pl_interval,
												 DateADTGetDatum(birth),
												 IntervalPGetDatum(&iv)));
}

/* a local time of profile_guard.age_time_zone as an instant */
static TimestampTz
as_timestamptz(Timestamp ts)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamp_zone,
												   CStringGetTextDatum(profile_guard_age_time_zone),
												   TimestampGetDatum(ts)));
}

/* the date of an instant in profile_guard.age_time_zone */
static DateADT
date_in_age_zone(TimestampTz t)
{
	Datum		local = DirectFunctionCall2(timestamptz_zone,
											CStringGetTextDatum(profile_guard_age_time_zone),
											TimestampTzGetDatum(t));

	return DatumGetDateADT(DirectFunctionCall1(timestamp_date, local));
}

/*
 * The answer of one purpose for the subject, from its events (newest
 * first): adds effective tags to *visible, lowers *valid_until; returns
 * whether the subject has any event for the purpose (a row in tag_state).
 */
static bool
evaluate_purpose(const RulePurpose *p, Event *events, int nevents,
				 bool registered, bool erasure_requested, bool opted_out,
				 bool minor, bool under_14,
				 TimestampTz minor_until, TimestampTz child_until,
				 char **blocks, int nblocks, TimestampTz now,
				 Bitmapset **visible, TimestampTz *valid_until)
{
	int			ntags = Rules->ntags;
	int		   *latest = palloc(sizeof(int) * Max(ntags, 1));	/* event index */
	bool	   *consented = palloc0(sizeof(bool) * Max(ntags, 1));
	bool		any = false;

	/* the latest event of this purpose covering each tag */
	for (int t = 0; t < ntags; t++)
	{
		latest[t] = -1;
		for (int e = 0; e < nevents; e++)
		{
			if (strcmp(events[e].purpose, p->name) != 0)
				continue;
			if (patterns_cover(events[e].patterns, events[e].npatterns, Rules->tags[t].name))
			{
				latest[t] = e;
				break;
			}
		}
	}

	/* the tag's own consent (scope and derivation aside) */
	for (int t = 0; t < ntags; t++)
	{
		const RuleTag *tag = &Rules->tags[t];
		const Event *ev;
		bool		blocked = false;

		if (latest[t] < 0)
			continue;
		ev = &events[latest[t]];
		for (int b = 0; b < nblocks; b++)
			if (strcmp(blocks[b], tag->name) == 0)
				blocked = true;
		consented[t] = ev->grant &&
			(!ev->expires || ev->expires_at > now) &&
			ev->version >= p->version &&
			(ev->separate || (!tag->sensitive && !under_14)) &&
			(ev->guardian || !under_14) &&
			!blocked;
	}

	for (int t = 0; t < ntags; t++)
	{
		const RuleTag *tag = &Rules->tags[t];
		const Event *ev;
		bool		effective;

		if (latest[t] < 0)
			continue;
		any = true;
		ev = &events[latest[t]];

		/* valid_until of the row, whether effective or not */
		if (ev->expires && ev->expires_at > now && ev->expires_at < *valid_until)
			*valid_until = ev->expires_at;
		if (under_14 && child_until < *valid_until)
			*valid_until = child_until;
		if (minor && minor_until < *valid_until)
			*valid_until = minor_until;

		effective = !p->retired && registered && !erasure_requested &&
			!p->unassessed &&
			!(p->marketing && (opted_out || minor)) &&
			patterns_cover(p->patterns, p->npatterns, tag->name) &&
			consented[t];
		/* derived tags: every source consented */
		for (int s = 0; effective && s < tag->nsources; s++)
		{
			bool		found = false;

			for (int u = 0; u < ntags && !found; u++)
				found = consented[u] && strcmp(Rules->tags[u].name, tag->sources[s]) == 0;
			effective = found;
		}
		if (effective)
			*visible = bms_add_member(*visible, tag->tag_id);
	}
	pfree(latest);
	pfree(consented);
	return any;
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
pg_rules_evaluate(const char *purpose, const char *subject,
				  Bitmapset **visible, TimestampTz *valid_until)
{
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	int			ret;
	bool		registered = false;
	bool		erasure_requested = false;
	bool		opted_out = false;
	bool		have_birth = false;
	DateADT		birth = 0;
	char	  **blocks = NULL;
	int			nblocks = 0;
	Event	   *events;
	int			nevents;
	bool		minor = false;
	bool		under_14 = false;
	TimestampTz minor_until = DT_NOEND;
	TimestampTz child_until = DT_NOEND;
	TimestampTz now = GetCurrentStatementStartTimestamp();
	DateADT		today = date_in_age_zone(GetCurrentTransactionStartTimestamp());
	bool		any = false;

	*visible = NULL;
	*valid_until = DT_NOEND;
	if (Rules == NULL)
		load_rules();

	if (FactsPlan == NULL)
	{
		Oid			argtypes[1] = {TEXTOID};

		FactsPlan = pg_keep_catalog_plan(
			"SELECT s.birth_date, s.opted_out, s.erasure_requested_at IS NOT NULL,"
			"       ARRAY(SELECT b.tag FROM profile_guard.tag_block b"
			"             WHERE b.subject OPERATOR(pg_catalog.=) s.subject)"
			"  FROM profile_guard.subject s WHERE s.subject OPERATOR(pg_catalog.=) $1",
			1, argtypes);
	}
	if (EventsPlan == NULL)
	{
		Oid			argtypes[2] = {TEXTOID, TEXTOID};

		EventsPlan = pg_keep_catalog_plan(
			"SELECT c.purpose, coalesce(c.tags, '{*}'),"
			"       c.action OPERATOR(pg_catalog.=) 'grant', c.purpose_version,"
			"       c.separate, c.guardian, c.expires_at"
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

	ret = SPI_execute_plan(EventsPlan, args, nulls, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read consent: %s", SPI_result_code_string(ret));
	nevents = (int) SPI_processed;
	if (nevents == 0)
		return false;
	events = palloc(sizeof(Event) * nevents);
	for (int i = 0; i < nevents; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		Event	   *e = &events[i];

		e->purpose = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		d = SPI_getbinval(tup, desc, 2, &isnull);
		e->npatterns = Max(text_array(d, isnull, &e->patterns), 0);
		e->grant = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		e->version = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		e->separate = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		e->guardian = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		d = SPI_getbinval(tup, desc, 7, &isnull);
		e->expires = !isnull;
		e->expires_at = isnull ? 0 : DatumGetTimestampTz(d);
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

		registered = true;
		d = SPI_getbinval(tup, desc, 1, &isnull);
		have_birth = !isnull;
		birth = isnull ? 0 : DatumGetDateADT(d);
		d = SPI_getbinval(tup, desc, 2, &isnull);
		opted_out = !isnull && DatumGetBool(d);
		erasure_requested = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		d = SPI_getbinval(tup, desc, 4, &isnull);
		nblocks = Max(text_array(d, isnull, &blocks), 0);
	}

	if (have_birth)
	{
		Timestamp	at14 = birthday(birth, 14);
		Timestamp	at_minor = birthday(birth, profile_guard_minor_age);

		under_14 = DatumGetBool(DirectFunctionCall2(timestamp_gt_date,
													TimestampGetDatum(at14),
													DateADTGetDatum(today)));
		minor = DatumGetBool(DirectFunctionCall2(timestamp_gt_date,
												 TimestampGetDatum(at_minor),
												 DateADTGetDatum(today)));
		if (under_14)
			child_until = as_timestamptz(at14);
		if (minor)
			minor_until = as_timestamptz(at_minor);
	}

	for (int i = 0; i < Rules->npurposes; i++)
	{
		const RulePurpose *p = &Rules->purposes[i];

		if (purpose != NULL ? strcmp(p->name, purpose) != 0 : p->retired)
			continue;
		any |= evaluate_purpose(p, events, nevents, registered, erasure_requested,
								opted_out, minor, under_14,
								minor_until, child_until, blocks, nblocks, now,
								visible, valid_until);
	}
	return any;
}

/*
 * _subject_answer(purpose, subject) → (tag_ids int[], valid_until): the C
 * answer, for the suites that compare it with tag_state().  NULL purpose:
 * what may be collected.  No row when the subject has no consent event.
 */
PG_FUNCTION_INFO_V1(profile_guard_subject_answer);

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
	Datum	   *ids;
	int			n = 0;
	int			m = -1;
	MemoryContext cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	subject = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pg_rules_forget();			/* read the definitions as of now */
	any = pg_rules_evaluate(purpose, subject, &visible, &valid_until);
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		visible = bms_copy(visible);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	if (!any)
		PG_RETURN_NULL();
	ids = palloc(sizeof(Datum) * (bms_num_members(visible) + 1));
	while ((m = bms_next_member(visible, m)) >= 0)
		ids[n++] = Int32GetDatum(m);
	if (n == 0)
		nulls[0] = true;
	else
		values[0] = PointerGetDatum(construct_array(ids, n, INT4OID, 4, true, TYPALIGN_INT));
	if (valid_until == DT_NOEND)
		nulls[1] = true;
	else
		values[1] = TimestampTzGetDatum(valid_until);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
