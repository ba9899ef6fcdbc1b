/*-------------------------------------------------------------------------
 *
 * rules.c
 *	  The consent rules in C, shared by both paths of the consent cache's
 *	  evaluator: loading the definitions (tags and purposes, into a
 *	  RuleCatalog), sets of tag indices and the tag lists that cover them,
 *	  a subject's ages, and the rules themselves (pfg_rules_apply: one
 *	  subject's facts and consent events, newest first, to its visible tags
 *	  and valid_until).  A purpose based on another lawful basis than
 *	  consent (rule 9a) answers for every registered subject without an
 *	  event, and a legal hold (rule 9b, pfg_rules_hold) keeps a subject from
 *	  every purpose but a legal_obligation one until it ends.  Where the
 *	  facts and events come from is the callers' part: subject_rules.c
 *	  reads one subject's rows with prepared queries, bulk_rules.c every
 *	  subject's with heap scans.
 *
 *	  tag_state() (sql/ext/20_policy.sql) is the specification of the rules
 *	  and stays what consent_status, the subject report and erasure use;
 *	  this file computes the same answer (visible tags, valid_until) from
 *	  the same rows.  _subject_answer() and _bulk_answers() (rules_sql.c)
 *	  expose both paths to SQL so that the regression suites check, subject
 *	  by subject, that they agree with it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "port/pg_bitutils.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "rules.h"

#if BITS_PER_BITMAPWORD == 32
#define TAGSET_RIGHTMOST(w)	pg_rightmost_one_pos32(w)
#else
#define TAGSET_RIGHTMOST(w)	pg_rightmost_one_pos64(w)
#endif

/* ---- tag sets ---- */

static inline bool
tagset_is_subset(const bitmapword *a, const bitmapword *b, int nwords)
{
	for (int w = 0; w < nwords; w++)
		if ((a[w] & ~b[w]) != 0)
			return false;
	return true;
}

/* the tag ids of a set, as a Bitmapset in CurrentMemoryContext */
Bitmapset *
pfg_rules_tagset_ids(const RuleCatalog *rc, const bitmapword *set)
{
	Bitmapset  *ids = NULL;

	for (int w = 0; w < rc->nwords; w++)
	{
		bitmapword word = set[w];

		while (word != 0)
		{
			int			bit = TAGSET_RIGHTMOST(word);

			ids = bms_add_member(ids, rc->tags[w * BITS_PER_BITMAPWORD + bit].tag_id);
			word &= word - 1;
		}
	}
	return ids;
}

/* the index of a tag name, -1 if no tag has it */
int
pfg_rules_tag_index(const RuleCatalog *rc, const char *name, uint32 len)
{
	RulesKey	key;
	RulesBytesEntry *e;

	key.data = name;
	key.len = len;
	e = rules_bytes_lookup(rc->names, key);
	return e ? e->index : -1;
}

/* tag_matches(): '*' covers all; a name; a "prefix.*" pattern */
static bool
pattern_covers(const char *pattern, size_t plen, const char *tag)
{
	if ((plen == 1 && pattern[0] == '*') ||
		(strlen(tag) == plen && memcmp(pattern, tag, plen) == 0))
		return true;
	return plen >= 2 && pattern[plen - 2] == '.' && pattern[plen - 1] == '*' &&
		strncmp(tag, pattern, plen - 1) == 0;
}

/*
 * The tags a tag list (a text[] of names and patterns) covers, into 'out'.
 * NULL covers every tag (a purpose without a list; a consent's NULL list,
 * which tag_state reads as '{*}'); NULL elements cover nothing.
 */
void
pfg_rules_tag_list_covers(const RuleCatalog *rc, Datum list, bool isnull,
						  bitmapword *out)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (isnull)
	{
		memcpy(out, rc->all, sizeof(bitmapword) * rc->nwords);
		return;
	}
	tagset_clear(out, rc->nwords);
	arr = DatumGetArrayTypeP(list);
	if (ARR_ELEMTYPE(arr) != TEXTOID)
		elog(ERROR, "tag list is not a text array");
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		text	   *p;

		if (nulls[i])
			continue;
		p = DatumGetTextPP(elems[i]);
		for (int t = 0; t < rc->ntags; t++)
			if (pattern_covers(VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p), rc->tags[t].name))
				out[TAGSET_WORD(t)] |= TAGSET_BIT(t);
	}
}

/*
 * The tags a tag list names exactly (not through a pattern), into 'out':
 * what a purpose not based on consent may read of the sensitive tags.
 */
static void
tag_list_names(const RuleCatalog *rc, Datum list, bool isnull, bitmapword *out)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	tagset_clear(out, rc->nwords);
	if (isnull)
		return;
	arr = DatumGetArrayTypeP(list);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		text	   *p;
		int			t;

		if (nulls[i])
			continue;
		p = DatumGetTextPP(elems[i]);
		t = pfg_rules_tag_index(rc, VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p));
		if (t >= 0)
			out[TAGSET_WORD(t)] |= TAGSET_BIT(t);
	}
}

/* ---- the definitions ---- */

/*
 * Load tags and purposes, in a new context under 'parent' (inside SPI,
 * under the caller's catalog access and active snapshot).
 */
RuleCatalog *
pfg_rules_load(MemoryContext parent)
{
	MemoryContext cxt;
	MemoryContext old;
	RuleCatalog *rc;
	Datum	   *sources;
	bool	   *sources_null;
	int			ret;

	cxt = AllocSetContextCreate(parent, "profile_guard rules",
								ALLOCSET_SMALL_SIZES);
	rc = MemoryContextAllocZero(cxt, sizeof(RuleCatalog));
	rc->cxt = cxt;

	/* (SPI returns in its own context: switch to ours after each query) */
	ret = SPI_execute("SELECT tag_id, tag, sensitivity OPERATOR(pg_catalog.=) 'sensitive', all_sources"
					  "  FROM profile_guard.tag ORDER BY tag_id", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read tags: %s", SPI_result_code_string(ret));
	old = MemoryContextSwitchTo(cxt);
	rc->ntags = (int) SPI_processed;
	rc->nwords = Max(1, (rc->ntags + BITS_PER_BITMAPWORD - 1) / BITS_PER_BITMAPWORD);
	rc->tags = palloc0(sizeof(RuleTag) * Max(rc->ntags, 1));
	rc->all = tagset_new(rc);
	rc->sensitive = tagset_new(rc);
	rc->derived = tagset_new(rc);
	rc->assigned = tagset_new(rc);
	rc->consented = tagset_new(rc);
	rc->names = rules_bytes_create(cxt, Max(rc->ntags, 16), NULL);
	sources = palloc(sizeof(Datum) * Max(rc->ntags, 1));
	sources_null = palloc(sizeof(bool) * Max(rc->ntags, 1));
	for (int i = 0; i < rc->ntags; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		RuleTag    *t = &rc->tags[i];
		RulesKey	key;
		RulesBytesEntry *e;
		bool		found;

		t->tag_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		t->name = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		t->sensitive = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull)) && !isnull;
		sources[i] = SPI_getbinval(tup, desc, 4, &sources_null[i]);
		if (!sources_null[i])
			sources[i] = PointerGetDatum(DatumGetArrayTypePCopy(sources[i]));
		rc->all[TAGSET_WORD(i)] |= TAGSET_BIT(i);
		if (t->sensitive)
			rc->sensitive[TAGSET_WORD(i)] |= TAGSET_BIT(i);
		key.data = t->name;
		key.len = strlen(t->name);
		e = rules_bytes_insert(rc->names, key, &found);
		e->index = i;
		e->value = NULL;
	}
	/* sources, by index: a name that is no tag can never be visible */
	for (int i = 0; i < rc->ntags; i++)
	{
		RuleTag    *t = &rc->tags[i];
		Datum	   *elems;
		bool	   *nulls;
		int			n = 0;

		t->sources = tagset_new(rc);
		if (!sources_null[i])
			deconstruct_array(DatumGetArrayTypeP(sources[i]), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, &nulls, &n);
		for (int s = 0; s < n; s++)
		{
			int			u = -1;

			if (!nulls[s])
			{
				text	   *name = DatumGetTextPP(elems[s]);

				u = pfg_rules_tag_index(rc, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
			}
			if (u < 0)
				t->lost_source = true;
			else
				t->sources[TAGSET_WORD(u)] |= TAGSET_BIT(u);
		}
		t->derived = (n > 0);
		if (t->derived)
			rc->derived[TAGSET_WORD(i)] |= TAGSET_BIT(i);
	}
	MemoryContextSwitchTo(old);

	/*
	 * A purpose is cross-border when its recipient is in another country
	 * than profile_guard.home_country ($1); a database still at 1.1 has no
	 * recipients, so none is.
	 */
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1];
		bool		recipients = OidIsValid(pfg_catalog_relid("recipient"));

		args[0] = CStringGetTextDatum(pfg_home_country);
		ret = SPI_execute_with_args(
			psprintf("SELECT p.purpose, p.version, p.marketing, p.retired_at IS NOT NULL,"
					 "       (p.automated_decision OR x.abroad) AND NOT EXISTS ("
					 "           SELECT 1 FROM profile_guard.assessment a"
					 "           WHERE a.purpose OPERATOR(pg_catalog.=) p.purpose"
					 "             AND a.purpose_version OPERATOR(pg_catalog.=) p.version),"
					 "       p.tags,"
			/* a database still at 1.1 has no column personalised: marketing is */
					 "       coalesce((pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.->>) 'personalised')"
					 "                ::pg_catalog.bool, p.marketing),"
			/* nor one of lawful bases: every purpose is based on consent */
					 "       coalesce(pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.->>) 'legal_basis',"
					 "                'consent'),"
					 "       x.abroad"
					 "  FROM profile_guard.purpose p"
					 "  CROSS JOIN LATERAL (SELECT %s AS abroad) x",
					 recipients ?
					 "coalesce((SELECT r.country OPERATOR(pg_catalog.<>) $1"
					 "          FROM profile_guard.recipient r"
					 "          WHERE r.recipient OPERATOR(pg_catalog.=) p.recipient), false)" :
					 "$1 IS NULL AND false"),
			1, argtypes, args, NULL, true, 0);
	}
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read purposes: %s", SPI_result_code_string(ret));
	old = MemoryContextSwitchTo(cxt);
	if (SPI_processed > PG_INT16_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many purposes to evaluate consent: %llu",
						(unsigned long long) SPI_processed),
				 errdetail("The consent rules handle at most %d purposes.", PG_INT16_MAX)));
	rc->npurposes = (int) SPI_processed;
	rc->purposes = palloc0(sizeof(RulePurpose) * Max(rc->npurposes, 1));
	rc->seen = palloc0(sizeof(uint32) * Max(rc->npurposes, 1));
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
		p->in_scope = tagset_new(rc);
		pfg_rules_tag_list_covers(rc, d, isnull, p->in_scope);
		p->named = tagset_new(rc);
		tag_list_names(rc, d, isnull, p->named);
		p->personalised = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		d = SPI_getbinval(tup, desc, 8, &isnull);
		if (!isnull)
		{
			char	   *basis = TextDatumGetCString(d);

			p->standing = strcmp(basis, "consent") != 0;
			p->legal_obligation = strcmp(basis, "legal_obligation") == 0;
		}
		p->cross_border = DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull)) && !isnull;
	}
	MemoryContextSwitchTo(old);
	return rc;
}

/* the index of a purpose, -1 if there is none of that name */
int
pfg_rules_purpose_index(const RuleCatalog *rc, const char *name, uint32 len)
{
	for (int i = 0; i < rc->npurposes; i++)
		if (strlen(rc->purposes[i].name) == len &&
			memcmp(rc->purposes[i].name, name, len) == 0)
			return i;
	return -1;
}

/*
 * Which purposes answer (palloc'd, one flag per purpose): the named one,
 * retired or not; with NULL, every purpose in force (what may be
 * collected).  False when none does.
 */
bool
pfg_rules_choose_purposes(const RuleCatalog *rc, const char *purpose, bool **target)
{
	bool		any = false;

	*target = palloc0(sizeof(bool) * Max(rc->npurposes, 1));
	for (int i = 0; i < rc->npurposes; i++)
	{
		const RulePurpose *p = &rc->purposes[i];

		(*target)[i] = purpose != NULL ? strcmp(p->name, purpose) == 0 : !p->retired;
		any |= (*target)[i];
	}
	return any;
}

/* whether a chosen purpose is based on something else than consent */
bool
pfg_rules_any_standing(const RuleCatalog *rc, const bool *target)
{
	for (int i = 0; i < rc->npurposes; i++)
		if (target[i] && rc->purposes[i].standing)
			return true;
	return false;
}

/*
 * One legal hold of the subject, as the catalog row says: an active one
 * (not released, until NULL or after 'now') makes it held, until the last
 * active hold ends.
 */
void
pfg_rules_hold(RulesSubject *s, bool released, bool has_until,
			   TimestampTz until, TimestampTz now)
{
	TimestampTz ends = has_until ? until : DT_NOEND;

	if (released || (has_until && until <= now))
		return;
	if (!(s->flags & SUBJECT_HELD) || ends > s->held_until)
		s->held_until = ends;
	s->flags |= SUBJECT_HELD;
}

/* ---- ages ---- */

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
												   CStringGetTextDatum(pfg_age_time_zone),
												   TimestampGetDatum(ts)));
}

/* the date of an instant in profile_guard.age_time_zone */
DateADT
pfg_rules_date_in_age_zone(TimestampTz t)
{
	Datum		local = DirectFunctionCall2(timestamptz_zone,
											CStringGetTextDatum(pfg_age_time_zone),
											TimestampTzGetDatum(t));

	return DatumGetDateADT(DirectFunctionCall1(timestamp_date, local));
}

/* minor and under 14 as of 'today', and until when */
void
pfg_rules_compute_age(DateADT birth, DateADT today, RulesAge *age)
{
	Timestamp	at14 = birthday(birth, 14);
	Timestamp	at_minor = birthday(birth, pfg_minor_age);

	*age = NoAge;
	age->under_14 = DatumGetBool(DirectFunctionCall2(timestamp_gt_date,
													 TimestampGetDatum(at14),
													 DateADTGetDatum(today)));
	age->minor = DatumGetBool(DirectFunctionCall2(timestamp_gt_date,
												  TimestampGetDatum(at_minor),
												  DateADTGetDatum(today)));
	if (age->under_14)
		age->child_until = as_timestamptz(at14);
	if (age->minor)
		age->minor_until = as_timestamptz(at_minor);
}

/*
 * The ages of a subject without a birth date, as profile_guard.unknown_age
 * says (tag_state() reads the same setting): an adult, a minor or a child
 * under 14, for as long as no birth date is recorded.
 */
const RulesAge *
pfg_rules_unknown_age(void)
{
	static const RulesAge minor = {true, false, DT_NOEND, DT_NOEND};
	static const RulesAge child = {true, true, DT_NOEND, DT_NOEND};

	switch (pfg_unknown_age)
	{
		case PFG_UNKNOWN_AGE_MINOR:
			return &minor;
		case PFG_UNKNOWN_AGE_CHILD:
			return &child;
		default:
			return &NoAge;
	}
}

/* ---- the rules ---- */

/*
 * The answer of purpose 'pidx' for the subject, from its events newest
 * first ('first' is the newest of this purpose): adds the effective tags to
 * 'visible' and lowers *valid_until; returns whether any event of the
 * purpose covers a tag (the subject has rows in tag_state).
 */
static bool
evaluate_purpose(RuleCatalog *rc, int pidx, const RulesEvent *first,
				 const RulesSubject *s, const bitmapword *blocks,
				 const RulesAge *age, TimestampTz now,
				 bitmapword *visible, TimestampTz *valid_until)
{
	const RulePurpose *p = &rc->purposes[pidx];
	int			nwords = rc->nwords;
	bitmapword *assigned = rc->assigned;	/* tags whose latest event is seen */
	bitmapword *consented = rc->consented;	/* the tag's own consent holds */
	bool		any = false;
	bool		usable;

	tagset_clear(assigned, nwords);
	tagset_clear(consented, nwords);
	for (const RulesEvent *e = first; e != NULL; e = e->next)
	{
		bool		latest = false;
		bool		holds;

		if (e->purpose != pidx)
			continue;
		/* the tag's own consent (scope and derivation aside) */
		holds = (e->flags & EVENT_GRANT) &&
			(!(e->flags & EVENT_EXPIRES) || e->expires_at > now) &&
			e->version >= p->version &&
			((e->flags & EVENT_GUARDIAN) || !age->under_14);
		for (int w = 0; w < nwords; w++)
		{
			/* the tags this event is the latest event for */
			bitmapword take = e->covers[w] & ~assigned[w];

			if (take == 0)
				continue;
			latest = true;
			assigned[w] |= take;
			if (!holds)
				continue;
			/*
			 * sensitive tags, every tag of a child, and every tag of a
			 * cross-border purpose need separate consent
			 */
			if (!(e->flags & EVENT_SEPARATE))
				take = (age->under_14 || p->cross_border) ? 0 : take & ~rc->sensitive[w];
			if (blocks != NULL)
				take &= ~blocks[w];
			consented[w] |= take;
		}
		/* valid_until of its rows, whether effective or not */
		if (latest)
		{
			any = true;
			if ((e->flags & EVENT_EXPIRES) && e->expires_at > now &&
				e->expires_at < *valid_until)
				*valid_until = e->expires_at;
		}
	}
	if (!any)
		return false;
	if (age->under_14 && age->child_until < *valid_until)
		*valid_until = age->child_until;
	if (age->minor && age->minor_until < *valid_until)
		*valid_until = age->minor_until;
	if ((s->flags & SUBJECT_HELD) && s->held_until < *valid_until)
		*valid_until = s->held_until;

	usable = !p->retired && (s->flags & SUBJECT_REGISTERED) &&
		!(s->flags & SUBJECT_ERASURE) && !p->unassessed &&
		!((s->flags & SUBJECT_HELD) && !p->legal_obligation) &&
		!(p->personalised && (s->flags & SUBJECT_OPTED_OUT)) &&
		!(p->marketing && age->minor);
	if (!usable)
		return true;
	for (int w = 0; w < nwords; w++)
	{
		bitmapword effective = consented[w] & p->in_scope[w];
		bitmapword derived = effective & rc->derived[w];

		/* derived tags: every source consented */
		while (derived != 0)
		{
			int			bit = TAGSET_RIGHTMOST(derived);
			const RuleTag *t = &rc->tags[w * BITS_PER_BITMAPWORD + bit];

			if (t->lost_source || !tagset_is_subset(t->sources, consented, nwords))
				effective &= ~((bitmapword) 1 << bit);
			derived &= derived - 1;
		}
		visible[w] |= effective;
	}
	return true;
}

/*
 * The answer of purpose 'pidx', based on something else than consent (rule
 * 9a), for a registered subject: the tags in its scope, without a consent
 * event; a sensitive tag (and, for a child under 14 or a cross-border
 * purpose, any tag) only when the
 * purpose's tag list names it.  Every other rule applies as to consent.
 * Returns whether the subject has rows in tag_state (some tag in scope).
 */
static bool
evaluate_standing(RuleCatalog *rc, int pidx, const RulesSubject *s,
				  const bitmapword *blocks, const RulesAge *age,
				  bitmapword *visible, TimestampTz *valid_until)
{
	const RulePurpose *p = &rc->purposes[pidx];
	int			nwords = rc->nwords;
	bitmapword *consented = rc->consented;
	bool		usable;

	if (tagset_is_empty(p->in_scope, nwords))
		return false;
	if (age->under_14 && age->child_until < *valid_until)
		*valid_until = age->child_until;
	if (age->minor && age->minor_until < *valid_until)
		*valid_until = age->minor_until;
	if ((s->flags & SUBJECT_HELD) && s->held_until < *valid_until)
		*valid_until = s->held_until;

	usable = !p->retired && !(s->flags & SUBJECT_ERASURE) && !p->unassessed &&
		!((s->flags & SUBJECT_HELD) && !p->legal_obligation) &&
		!(p->personalised && (s->flags & SUBJECT_OPTED_OUT)) &&
		!(p->marketing && age->minor);
	if (!usable)
		return true;
	for (int w = 0; w < nwords; w++)
	{
		bitmapword take = p->in_scope[w] &
			((age->under_14 || p->cross_border) ? p->named[w] :
			 (~rc->sensitive[w] | p->named[w]));

		if (blocks != NULL)
			take &= ~blocks[w];
		consented[w] = take;
	}
	for (int w = 0; w < nwords; w++)
	{
		bitmapword effective = consented[w];
		bitmapword derived = effective & rc->derived[w];

		while (derived != 0)
		{
			int			bit = TAGSET_RIGHTMOST(derived);
			const RuleTag *t = &rc->tags[w * BITS_PER_BITMAPWORD + bit];

			if (t->lost_source || !tagset_is_subset(t->sources, consented, nwords))
				effective &= ~((bitmapword) 1 << bit);
			derived &= derived - 1;
		}
		visible[w] |= effective;
	}
	return true;
}

/*
 * The answer for one subject over the chosen purposes ('target', from
 * pfg_rules_choose_purposes), from its facts, its events newest first, its
 * blocked tags (NULL: none) and its ages: 'visible' (tag indices, nwords
 * words) and *valid_until (DT_NOEND when nothing expires by itself).
 * Returns whether any chosen purpose has rows for the subject.
 */
bool
pfg_rules_apply(RuleCatalog *rc, const bool *target, const RulesSubject *s,
				const bitmapword *blocks, const RulesAge *age, TimestampTz now,
				bitmapword *visible, TimestampTz *valid_until)
{
	bool		any = false;

	tagset_clear(visible, rc->nwords);
	*valid_until = DT_NOEND;
	if (++rc->serial == 0)
	{
		memset(rc->seen, 0, sizeof(uint32) * Max(rc->npurposes, 1));
		rc->serial = 1;
	}
	/* each purpose based on consent once, from its newest event */
	for (const RulesEvent *e = &s->events; e != NULL; e = e->next)
	{
		if (e->purpose < 0 || !target[e->purpose] ||
			rc->seen[e->purpose] == rc->serial ||
			rc->purposes[e->purpose].standing)
			continue;
		rc->seen[e->purpose] = rc->serial;
		any |= evaluate_purpose(rc, e->purpose, e, s, blocks, age, now,
								visible, valid_until);
	}
	/* the others, for every registered subject, with no event */
	if (s->flags & SUBJECT_REGISTERED)
		for (int i = 0; i < rc->npurposes; i++)
			if (target[i] && rc->purposes[i].standing)
				any |= evaluate_standing(rc, i, s, blocks, age, visible,
										 valid_until);
	return any;
}
