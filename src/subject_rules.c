/*-------------------------------------------------------------------------
 *
 * subject_rules.c
 *	  The consent rules in C: the one evaluator of the consent cache.  It
 *	  answers for one subject (pfg_rules_evaluate: the subject's own rows,
 *	  read with two small prepared queries, for a subject the cache meets
 *	  alone) and for every subject at once (pfg_rules_evaluate_all: one pass
 *	  of direct heap scans over consent, subject and tag_block, for a bulk
 *	  load).  Both paths build the same facts and events and run the same
 *	  rule code (evaluate_purpose), on sets of tag indices.
 *
 *	  tag_state() (sql/ext/20_policy.sql) is the specification of the rules
 *	  and stays what consent_status, the subject report and erasure use;
 *	  this file computes the same answer (visible tags, valid_until) from
 *	  the same rows.  _subject_answer() and _bulk_answers() expose both
 *	  paths to SQL so that the regression suites check, subject by subject,
 *	  that they agree with it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "parser/parse_relation.h"
#include "port/pg_bitutils.h"
#include "portability/instr_time.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "profile_guard.h"
#include "subject_rules.h"

/*
 * Sets of tags are arrays of RuleCatalog.nwords bitmapwords, indexed by the
 * tag's position in the catalog (not its tag_id): the rules work on them
 * word by word.
 */
#define TAGSET_WORD(i)		((i) / BITS_PER_BITMAPWORD)
#define TAGSET_BIT(i)		((bitmapword) 1 << ((i) % BITS_PER_BITMAPWORD))
#if BITS_PER_BITMAPWORD == 32
#define TAGSET_RIGHTMOST(w)	pg_rightmost_one_pos32(w)
#else
#define TAGSET_RIGHTMOST(w)	pg_rightmost_one_pos64(w)
#endif

/* bytes used as a hash key, with their hash */
typedef struct RulesKey
{
	const char *data;
	uint32		len;
	uint32		hash;			/* set by simplehash */
} RulesKey;

/* a tag name, a consent's tag list or a set of tag indices, hashed */
typedef struct RulesBytesEntry
{
	RulesKey	key;
	char		status;
	int32		index;			/* tag names: the tag's index */
	void	   *value;			/* tag lists: tags covered; sets: tag ids */
} RulesBytesEntry;

#define SH_PREFIX		rules_bytes
#define SH_ELEMENT_TYPE RulesBytesEntry
#define SH_KEY_TYPE		RulesKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	hash_bytes((const unsigned char *) (k).data, (k).len)
#define SH_EQUAL(tb, a, b)	((a).len == (b).len && memcmp((a).data, (b).data, (a).len) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->key.hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct RuleTag
{
	int			tag_id;
	char	   *name;
	bool		sensitive;
	bool		derived;		/* has sources */
	bool		lost_source;	/* a source that is no tag: never visible */
	bitmapword *sources;		/* all_sources (the transitive closure) */
} RuleTag;

typedef struct RulePurpose
{
	char	   *name;
	int			version;
	bool		marketing;
	bool		retired;
	bool		unassessed;
	bitmapword *in_scope;		/* tags its tag list covers (all: no list) */
} RulePurpose;

/* the definitions the rules read */
typedef struct RuleCatalog
{
	MemoryContext cxt;
	int			ntags;
	int			nwords;			/* words of every tag set (at least 1) */
	RuleTag    *tags;
	bitmapword *all;			/* every tag */
	bitmapword *sensitive;
	bitmapword *derived;
	rules_bytes_hash *names;	/* tag name -> index */
	int			npurposes;
	RulePurpose *purposes;
	/* scratch of evaluate_subject */
	bitmapword *assigned;
	bitmapword *consented;
	uint32	   *seen;			/* per purpose: subject serial last seen */
	uint32		serial;
} RuleCatalog;

/* one consent event of a subject */
typedef struct RulesEvent
{
	struct RulesEvent *next;	/* the subject's next older event */
	const bitmapword *covers;	/* tags its tag list covers */
	int64		consent_id;
	TimestampTz expires_at;		/* if EVENT_EXPIRES */
	int32		version;
	int16		purpose;		/* index in the catalog */
	uint8		flags;
} RulesEvent;

#define EVENT_GRANT		0x01
#define EVENT_SEPARATE	0x02
#define EVENT_GUARDIAN	0x04
#define EVENT_EXPIRES	0x08

/* what the rules know of one subject */
typedef struct RulesSubject
{
	RulesEvent	events;			/* the newest (bulk: once sorted), then older */
	DateADT		birth_date;		/* if SUBJECT_HAS_BIRTH */
	uint32		len;			/* of key */
	uint8		flags;
	char		key[FLEXIBLE_ARRAY_MEMBER];	/* the subject's text (bulk only) */
} RulesSubject;

#define SUBJECT_REGISTERED	0x01
#define SUBJECT_OPTED_OUT	0x02
#define SUBJECT_ERASURE		0x04
#define SUBJECT_HAS_BIRTH	0x08
#define SUBJECT_BLOCKS		0x10	/* bulk: has blocked tags */
#define SUBJECT_MERGED		0x20	/* bulk: a later entry of a subject, whose
									 * events are chained to its first */

/* a subject's ages, as of today */
typedef struct RulesAge
{
	bool		minor;
	bool		under_14;
	TimestampTz minor_until;	/* if minor */
	TimestampTz child_until;	/* if under_14 */
} RulesAge;

static const RulesAge NoAge = {false, false, DT_NOEND, DT_NOEND};

typedef struct RulesAgeEntry
{
	DateADT		birth_date;
	char		status;
	RulesAge	age;
} RulesAgeEntry;

#define SH_PREFIX		rules_age
#define SH_ELEMENT_TYPE RulesAgeEntry
#define SH_KEY_TYPE		DateADT
#define SH_KEY			birth_date
#define SH_HASH_KEY(tb, k)	murmurhash32((uint32) (k))
#define SH_EQUAL(tb, a, b)	((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* the catalog of the one-subject path, loaded once per policy generation */
static RuleCatalog *Rules = NULL;

static SPIPlanPtr FactsPlan = NULL;
static SPIPlanPtr EventsPlan = NULL;

void
pfg_rules_forget(void)
{
	if (Rules != NULL)
	{
		MemoryContextDelete(Rules->cxt);
		Rules = NULL;
	}
}

/* ---- tag sets ---- */

static inline void
tagset_clear(bitmapword *a, int nwords)
{
	for (int w = 0; w < nwords; w++)
		a[w] = 0;
}

static inline bool
tagset_is_empty(const bitmapword *a, int nwords)
{
	for (int w = 0; w < nwords; w++)
		if (a[w] != 0)
			return false;
	return true;
}

static inline bool
tagset_is_subset(const bitmapword *a, const bitmapword *b, int nwords)
{
	for (int w = 0; w < nwords; w++)
		if ((a[w] & ~b[w]) != 0)
			return false;
	return true;
}

static bitmapword *
tagset_new(const RuleCatalog *rc)
{
	return palloc0(sizeof(bitmapword) * rc->nwords);
}

/* the tag ids of a set, as a Bitmapset in CurrentMemoryContext */
static Bitmapset *
tagset_ids(const RuleCatalog *rc, const bitmapword *set)
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
static int
tag_index(const RuleCatalog *rc, const char *name, uint32 len)
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
static void
tag_list_covers(const RuleCatalog *rc, Datum list, bool isnull, bitmapword *out)
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

/* ---- the definitions ---- */

/*
 * Load tags and purposes, in a new context under 'parent' (inside SPI,
 * under the caller's catalog access and active snapshot).
 */
static RuleCatalog *
load_rules(MemoryContext parent)
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

				u = tag_index(rc, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
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
		tag_list_covers(rc, d, isnull, p->in_scope);
	}
	MemoryContextSwitchTo(old);
	return rc;
}

/* the index of a purpose, -1 if there is none of that name */
static int
purpose_index(const RuleCatalog *rc, const char *name, uint32 len)
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
static bool
choose_purposes(const RuleCatalog *rc, const char *purpose, bool **target)
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
static DateADT
date_in_age_zone(TimestampTz t)
{
	Datum		local = DirectFunctionCall2(timestamptz_zone,
											CStringGetTextDatum(pfg_age_time_zone),
											TimestampTzGetDatum(t));

	return DatumGetDateADT(DirectFunctionCall1(timestamp_date, local));
}

/* minor and under 14 as of 'today', and until when */
static void
compute_age(DateADT birth, DateADT today, RulesAge *age)
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
			/* sensitive tags, and every tag of a child, need separate consent */
			if (!(e->flags & EVENT_SEPARATE))
				take = age->under_14 ? 0 : take & ~rc->sensitive[w];
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

	usable = !p->retired && (s->flags & SUBJECT_REGISTERED) &&
		!(s->flags & SUBJECT_ERASURE) && !p->unassessed &&
		!(p->marketing && ((s->flags & SUBJECT_OPTED_OUT) || age->minor));
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
 * The answer for one subject over the chosen purposes: 'visible' (tag
 * indices) and *valid_until (DT_NOEND when nothing expires by itself).
 * Returns whether any chosen purpose has rows for the subject.
 */
static bool
evaluate_subject(RuleCatalog *rc, const bool *target, const RulesSubject *s,
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
	/* each purpose once, from its newest event */
	for (const RulesEvent *e = &s->events; e != NULL; e = e->next)
	{
		if (!target[e->purpose] || rc->seen[e->purpose] == rc->serial)
			continue;
		rc->seen[e->purpose] = rc->serial;
		any |= evaluate_purpose(rc, e->purpose, e, s, blocks, age, now,
								visible, valid_until);
	}
	return any;
}

/* ---- one subject ---- */

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
		Rules = load_rules(TopMemoryContext);
	rc = Rules;
	if (!choose_purposes(rc, purpose, &target))
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
		pidx = purpose_index(rc, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
		if (pidx < 0 || !target[pidx])
			continue;
		d = SPI_getbinval(tup, desc, 2, &isnull);
		covers = tagset_new(rc);
		tag_list_covers(rc, d, isnull, covers);
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
		return false;			/* no event */

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
				t = tag_index(rc, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
				if (t < 0)
					continue;
				if (blocks == NULL)
					blocks = tagset_new(rc);
				blocks[TAGSET_WORD(t)] |= TAGSET_BIT(t);
			}
		}
	}

	if (s.flags & SUBJECT_HAS_BIRTH)
		compute_age(s.birth_date,
					date_in_age_zone(GetCurrentTransactionStartTimestamp()), &age);
	words = tagset_new(rc);
	any = evaluate_subject(rc, target, &s, blocks, &age, now, words, valid_until);
	*visible = tagset_ids(rc, words);
	return any;
}

/* ---- every subject ---- */

#if defined(__GNUC__)
#define RULES_PREFETCH(p)	__builtin_prefetch(p)
#else
#define RULES_PREFETCH(p)	((void) 0)
#endif

/* bump allocation of many small pieces that live as long as the evaluation */
typedef struct RulesArena
{
	MemoryContext cxt;
	char	   *next;
	Size		left;
	Size		block;			/* size of the next block */
} RulesArena;

#define ARENA_MAX_BLOCK (1024 * 1024)

static void *
arena_alloc(RulesArena *a, Size size)
{
	void	   *p;

	size = MAXALIGN(size);
	if (size > a->left)
	{
		Size		block = Max(a->block, size);

		a->next = MemoryContextAlloc(a->cxt, block);
		a->left = block;
		a->block = Min(a->block * 2, ARENA_MAX_BLOCK);
	}
	p = a->next;
	a->next += size;
	a->left -= size;
	return p;
}

/*
 * The subjects of a bulk evaluation, in the order they were met: each
 * entry, its text and its first event are contiguous in the arena.  They
 * are appended while consent is read, then found through an open-addressing
 * table of (hash, position) pairs built in one tight loop (a subject met
 * again after others is merged there into its first entry).  A look-up
 * first tries the entry found last and the one after it: tables filled in
 * the same order are then read in step, without hashing.
 */
typedef struct SubjectIndex
{
	RulesSubject **entries;		/* in the order they were met */
	uint32		n;
	uint32		cap;			/* of entries */
	uint64	   *slots;			/* hash << 32 | (position + 1); 0: free */
	uint32		mask;			/* number of slots - 1 */
	uint32		last;			/* position found last */
} SubjectIndex;

#define SUBJECT_SLOT(hash, pos)	(((uint64) (hash) << 32) | ((uint64) (pos) + 1))

static inline uint32
subject_hash(const char *data, uint32 len)
{
	return hash_bytes((const unsigned char *) data, len);
}

static inline bool
subject_is(const RulesSubject *s, const char *data, uint32 len)
{
	return s->len == len && memcmp(s->key, data, len) == 0 &&
		!(s->flags & SUBJECT_MERGED);
}

static void
subject_append(SubjectIndex *si, RulesSubject *s)
{
	if (si->n == si->cap)
	{
		if (si->cap >= PG_UINT32_MAX / 4)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many subjects to evaluate consent in bulk")));
		si->cap *= 2;
		si->entries = repalloc_huge(si->entries, sizeof(RulesSubject *) * si->cap);
	}
	si->last = si->n;
	si->entries[si->n++] = s;
}

/*
 * Index the entries; an entry of a subject met before is merged into the
 * first (its events move there) and marked SUBJECT_MERGED.
 */
static void
subject_index_build(SubjectIndex *si, MemoryContext cxt)
{
	uint32		nslots = 1024;
	uint32	   *hashes;

	while (nslots * 0.75 < si->n)
		nslots *= 2;
	si->slots = MemoryContextAllocExtended(cxt, sizeof(uint64) * nslots,
										   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	si->mask = nslots - 1;
	hashes = MemoryContextAllocExtended(cxt, sizeof(uint32) * Max(si->n, 1),
										MCXT_ALLOC_HUGE);
	for (uint32 k = 0; k < si->n; k++)
		hashes[k] = subject_hash(si->entries[k]->key, si->entries[k]->len);
	for (uint32 k = 0; k < si->n; k++)
	{
		RulesSubject *s = si->entries[k];
		uint32		i;

		/* the slots of the next entries are fetched while this one waits */
		if (k + 16 < si->n)
			RULES_PREFETCH(&si->slots[hashes[k + 16] & si->mask]);
		for (i = hashes[k] & si->mask; si->slots[i] != 0; i = (i + 1) & si->mask)
		{
			RulesSubject *first = si->entries[(uint32) si->slots[i] - 1];
			RulesEvent *e;

			if ((uint32) (si->slots[i] >> 32) != hashes[k] ||
				!subject_is(first, s->key, s->len))
				continue;
			for (e = &first->events; e->next != NULL; e = e->next)
				;
			e->next = &s->events;
			s->flags |= SUBJECT_MERGED;
			break;
		}
		if (si->slots[i] == 0)
			si->slots[i] = SUBJECT_SLOT(hashes[k], k);
	}
	pfree(hashes);
	si->last = 0;
}

/* probe for a subject whose hash is known; its position, or -1 */
static int64
subject_probe(SubjectIndex *si, const char *data, uint32 len, uint32 hash)
{
	for (uint32 i = hash & si->mask;; i = (i + 1) & si->mask)
	{
		uint64		slot = si->slots[i];
		uint32		pos;

		if (slot == 0)
			return -1;
		pos = (uint32) slot - 1;
		if ((uint32) (slot >> 32) == hash && subject_is(si->entries[pos], data, len))
		{
			si->last = pos;
			return pos;
		}
	}
}

/* in step: the entry found last, or the one after it; else -1 */
static inline int64
subject_in_step(SubjectIndex *si, const char *data, uint32 len)
{
	if (si->n == 0)
		return -1;
	if (subject_is(si->entries[si->last], data, len))
		return si->last;
	if (si->last + 1 < si->n && subject_is(si->entries[si->last + 1], data, len))
		return ++si->last;
	return -1;
}

/* the position of a subject's entry, or -1 */
static int64
subject_find(SubjectIndex *si, const char *data, uint32 len)
{
	int64		pos = subject_in_step(si, data, len);

	return pos >= 0 ? pos : subject_probe(si, data, len, subject_hash(data, len));
}

/* the blocked tags of the subjects that have any, by position */
typedef struct RulesBlocksEntry
{
	uint32		pos;
	char		status;
	bitmapword *blocks;
} RulesBlocksEntry;

#define SH_PREFIX		rules_blocks
#define SH_ELEMENT_TYPE RulesBlocksEntry
#define SH_KEY_TYPE		uint32
#define SH_KEY			pos
#define SH_HASH_KEY(tb, k)	murmurhash32(k)
#define SH_EQUAL(tb, a, b)	((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct BulkState
{
	RuleCatalog *rc;
	bool	   *target;
	MemoryContext cxt;			/* everything of the evaluation */
	MemoryContext row_cxt;		/* reset per row read */
	RulesArena	arena;
	SubjectIndex subjects;
	rules_blocks_hash *blocks;
	rules_bytes_hash *lists;	/* consent tag lists -> tags covered */
	RulesBytesEntry *last_list;
	rules_bytes_hash *answers;	/* sets of tag indices -> Bitmapset of ids */
	RulesBytesEntry *last_answer;
	rules_age_hash *ages;
	RulesAgeEntry *last_age;
	DateADT		today;
	TimestampTz now;
	uint64		nevents;
} BulkState;

/* a catalog table opened for a scan */
typedef struct CatalogScan
{
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
} CatalogScan;

/*
 * Open one of our catalog tables for a sequential scan under the active
 * snapshot.  The scan reads it directly, so the reading role must have
 * SELECT on it, as a query would.
 */
static void
catalog_scan_begin(CatalogScan *cs, const char *relname, bool allow_sync)
{
	Oid			relid = pfg_catalog_relid(relname);
	AclResult	aclresult;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("profile_guard catalog table \"%s\" does not exist", relname),
				 errhint("Create the extension: CREATE EXTENSION profile_guard.")));
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, relname);
	cs->rel = table_open(relid, AccessShareLock);
	cs->slot = table_slot_create(cs->rel, NULL);
	cs->scan = table_beginscan_strat(cs->rel, GetActiveSnapshot(), 0, NULL,
									 true, allow_sync);
}

/* the number of a column, checked to exist with the type the rules read */
static AttrNumber
catalog_column(CatalogScan *cs, const char *name, Oid type)
{
	int			attnum = attnameAttNum(cs->rel, name, false);

	if (attnum <= 0 ||
		TupleDescAttr(RelationGetDescr(cs->rel), attnum - 1)->atttypid != type)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("profile_guard catalog table \"%s\" has no column \"%s\" of type %s",
						RelationGetRelationName(cs->rel), name, format_type_be(type)),
				 errhint("Update the extension: ALTER EXTENSION profile_guard UPDATE.")));
	return (AttrNumber) attnum;
}

/* the next row; SCAN_COLUMNS deforms it as far as a column */
static bool
catalog_scan_next(CatalogScan *cs)
{
	CHECK_FOR_INTERRUPTS();
	return table_scan_getnextslot(cs->scan, ForwardScanDirection, cs->slot);
}

#define SCAN_COLUMNS(cs, last)	slot_getsomeattrs((cs)->slot, (last))
#define SCAN_ISNULL(cs, att)	((cs)->slot->tts_isnull[(att) - 1])
#define SCAN_VALUE(cs, att)		((cs)->slot->tts_values[(att) - 1])

static void
catalog_scan_end(CatalogScan *cs)
{
	table_endscan(cs->scan);
	ExecDropSingleTupleTableSlot(cs->slot);
	table_close(cs->rel, AccessShareLock);
}

/* a varlena column's bytes (detoasted into the row context when need be) */
static RulesKey
varlena_key(Datum d)
{
	text	   *t = DatumGetTextPP(d);
	RulesKey	key;

	key.data = VARDATA_ANY(t);
	key.len = VARSIZE_ANY_EXHDR(t);
	key.hash = 0;
	return key;
}

/* the tags a consent's tag list covers, once per distinct list */
static const bitmapword *
bulk_list_covers(BulkState *st, Datum list, bool isnull)
{
	RuleCatalog *rc = st->rc;
	RulesKey	key;
	RulesBytesEntry *e;
	bool		found;

	if (isnull)
		return rc->all;
	key = varlena_key(list);	/* the array's bytes */
	if (st->last_list != NULL && st->last_list->key.len == key.len &&
		memcmp(st->last_list->key.data, key.data, key.len) == 0)
		return st->last_list->value;
	e = rules_bytes_insert(st->lists, key, &found);
	if (!found)
	{
		bitmapword *covers;
		char	   *copy = arena_alloc(&st->arena, key.len);

		memcpy(copy, key.data, key.len);
		e->key.data = copy;
		covers = arena_alloc(&st->arena, sizeof(bitmapword) * rc->nwords);
		tag_list_covers(rc, list, false, covers);	/* in the row context */
		e->value = covers;
		e->index = 0;
	}
	st->last_list = e;
	return e->value;
}

/* consent: the events of the chosen purposes, by subject */
static void
scan_consent(BulkState *st, const char *purpose)
{
	RuleCatalog *rc = st->rc;
	SubjectIndex *si = &st->subjects;
	CatalogScan cs;
	AttrNumber	a_id,
				a_subject,
				a_purpose,
				a_version,
				a_action,
				a_tags,
				a_separate,
				a_guardian,
				a_expires,
				a_last;
	size_t		purpose_len = purpose ? strlen(purpose) : 0;
	int			only = -1;		/* the one chosen purpose */
	int			last_purpose = -1;
	double		estimate;

	if (purpose != NULL)
		only = purpose_index(rc, purpose, purpose_len);

	/* not synchronized: from the first block, so mostly oldest first */
	catalog_scan_begin(&cs, "consent", false);
	a_id = catalog_column(&cs, "consent_id", INT8OID);
	a_subject = catalog_column(&cs, "subject", TEXTOID);
	a_purpose = catalog_column(&cs, "purpose", TEXTOID);
	a_version = catalog_column(&cs, "purpose_version", INT4OID);
	a_action = catalog_column(&cs, "action", TEXTOID);
	a_tags = catalog_column(&cs, "tags", TEXTARRAYOID);
	a_separate = catalog_column(&cs, "separate", BOOLOID);
	a_guardian = catalog_column(&cs, "guardian", BOOLOID);
	a_expires = catalog_column(&cs, "expires_at", TIMESTAMPTZOID);
	a_last = Max(Max(Max(a_id, a_subject), Max(a_purpose, a_version)),
				 Max(Max(a_action, a_tags), Max(Max(a_separate, a_guardian), a_expires)));

	/* room for as many subjects as consents (at most 1M: it grows) */
	estimate = RelationGetForm(cs.rel)->reltuples;
	si->cap = (uint32) Min(Max(estimate, 1024), 1024 * 1024);
	si->entries = MemoryContextAllocExtended(st->cxt, sizeof(RulesSubject *) * si->cap,
											 MCXT_ALLOC_HUGE);

	while (catalog_scan_next(&cs))
	{
		MemoryContext old;
		RulesKey	key;
		int			pidx;
		const bitmapword *covers;
		RulesSubject *s;
		RulesEvent *e;

		MemoryContextReset(st->row_cxt);
		old = MemoryContextSwitchTo(st->row_cxt);
		SCAN_COLUMNS(&cs, a_purpose);
		if (SCAN_ISNULL(&cs, a_purpose))
			goto next;

		/* of a chosen purpose? */
		key = varlena_key(SCAN_VALUE(&cs, a_purpose));
		if (only >= 0)
			pidx = (key.len == purpose_len &&
					memcmp(key.data, purpose, purpose_len) == 0) ? only : -1;
		else if (last_purpose >= 0 &&
				 strlen(rc->purposes[last_purpose].name) == key.len &&
				 memcmp(rc->purposes[last_purpose].name, key.data, key.len) == 0)
			pidx = last_purpose;
		else
			pidx = last_purpose = purpose_index(rc, key.data, key.len);
		if (pidx < 0 || !st->target[pidx])
			goto next;

		SCAN_COLUMNS(&cs, a_last);
		if (SCAN_ISNULL(&cs, a_subject))
			goto next;
		/* the latest event of no tag matters to no answer */
		covers = bulk_list_covers(st, SCAN_VALUE(&cs, a_tags), SCAN_ISNULL(&cs, a_tags));
		if (tagset_is_empty(covers, rc->nwords))
			goto next;

		/*
		 * The subject of the previous event, or a new entry (merged later).
		 * Heap order is mostly insertion order: the event read last goes
		 * first, so that events are mostly newest first already.
		 */
		key = varlena_key(SCAN_VALUE(&cs, a_subject));
		if (si->n > 0 && subject_is(si->entries[si->n - 1], key.data, key.len))
		{
			s = si->entries[si->n - 1];
			e = arena_alloc(&st->arena, sizeof(RulesEvent));
			*e = s->events;
			s->events.next = e;
		}
		else
		{
			s = arena_alloc(&st->arena, offsetof(RulesSubject, key) + key.len);
			memset(s, 0, offsetof(RulesSubject, key));
			s->len = key.len;
			memcpy(s->key, key.data, key.len);
			subject_append(si, s);
		}
		e = &s->events;
		e->covers = covers;
		e->purpose = (int16) pidx;
		e->consent_id = SCAN_ISNULL(&cs, a_id) ? 0 : DatumGetInt64(SCAN_VALUE(&cs, a_id));
		e->version = SCAN_ISNULL(&cs, a_version) ? PG_INT32_MIN :
			DatumGetInt32(SCAN_VALUE(&cs, a_version));
		e->flags = 0;
		e->expires_at = 0;
		if (!SCAN_ISNULL(&cs, a_action))
		{
			RulesKey	action = varlena_key(SCAN_VALUE(&cs, a_action));

			if (action.len == 5 && memcmp(action.data, "grant", 5) == 0)
				e->flags |= EVENT_GRANT;
		}
		if (!SCAN_ISNULL(&cs, a_separate) && DatumGetBool(SCAN_VALUE(&cs, a_separate)))
			e->flags |= EVENT_SEPARATE;
		if (!SCAN_ISNULL(&cs, a_guardian) && DatumGetBool(SCAN_VALUE(&cs, a_guardian)))
			e->flags |= EVENT_GUARDIAN;
		if (!SCAN_ISNULL(&cs, a_expires))
		{
			e->flags |= EVENT_EXPIRES;
			e->expires_at = DatumGetTimestampTz(SCAN_VALUE(&cs, a_expires));
		}
		st->nevents++;
next:
		MemoryContextSwitchTo(old);
	}
	catalog_scan_end(&cs);
	MemoryContextReset(st->row_cxt);
}

/* subject rows not found in step, looked up together */
#define LOOKUP_BATCH 64

typedef struct PendingFacts
{
	uint32		hash;
	uint32		len;
	Size		key;			/* offset in the batch's key buffer */
	DateADT		birth_date;
	uint8		flags;
} PendingFacts;

static inline void
apply_facts(RulesSubject *s, DateADT birth_date, uint8 flags)
{
	s->flags |= flags;
	if (flags & SUBJECT_HAS_BIRTH)
		s->birth_date = birth_date;
}

/* subject: the facts of the subjects that have events */
static void
scan_subject(BulkState *st)
{
	SubjectIndex *si = &st->subjects;
	CatalogScan cs;
	AttrNumber	a_subject,
				a_birth,
				a_opted_out,
				a_erasure,
				a_last;
	PendingFacts pending[LOOKUP_BATCH];
	int			npending = 0;
	Size		keys_size = 16 * 1024;
	Size		keys_used = 0;
	char	   *keys = MemoryContextAlloc(st->cxt, keys_size);
	bool		more = true;

	catalog_scan_begin(&cs, "subject", true);
	a_subject = catalog_column(&cs, "subject", TEXTOID);
	a_birth = catalog_column(&cs, "birth_date", DATEOID);
	a_opted_out = catalog_column(&cs, "opted_out", BOOLOID);
	a_erasure = catalog_column(&cs, "erasure_requested_at", TIMESTAMPTZOID);
	a_last = Max(Max(a_subject, a_birth), Max(a_opted_out, a_erasure));
	while (more)
	{
		MemoryContext old;
		RulesKey	key;
		DateADT		birth_date = 0;
		uint8		flags = SUBJECT_REGISTERED;
		int64		pos;

		more = catalog_scan_next(&cs);
		if (more)
		{
			SCAN_COLUMNS(&cs, a_last);
			if (SCAN_ISNULL(&cs, a_subject))
				continue;
			if (!SCAN_ISNULL(&cs, a_birth))
			{
				flags |= SUBJECT_HAS_BIRTH;
				birth_date = DatumGetDateADT(SCAN_VALUE(&cs, a_birth));
			}
			if (!SCAN_ISNULL(&cs, a_opted_out) && DatumGetBool(SCAN_VALUE(&cs, a_opted_out)))
				flags |= SUBJECT_OPTED_OUT;
			if (!SCAN_ISNULL(&cs, a_erasure))
				flags |= SUBJECT_ERASURE;

			MemoryContextReset(st->row_cxt);
			old = MemoryContextSwitchTo(st->row_cxt);
			key = varlena_key(SCAN_VALUE(&cs, a_subject));
			pos = subject_in_step(si, key.data, key.len);
			if (pos >= 0)
				apply_facts(si->entries[pos], birth_date, flags);
			else
			{
				/* look it up with the next ones: their slots are fetched meanwhile */
				PendingFacts *p = &pending[npending++];

				p->hash = subject_hash(key.data, key.len);
				RULES_PREFETCH(&si->slots[p->hash & si->mask]);
				if (keys_used + key.len > keys_size)
				{
					keys_size = Max(keys_size * 2, keys_used + key.len);
					keys = repalloc(keys, keys_size);
				}
				memcpy(keys + keys_used, key.data, key.len);
				p->key = keys_used;
				p->len = key.len;
				keys_used += key.len;
				p->birth_date = birth_date;
				p->flags = flags;
			}
			MemoryContextSwitchTo(old);
		}
		if (npending == LOOKUP_BATCH || (!more && npending > 0))
		{
			uint32		last = si->last;

			for (int i = 0; i < npending; i++)
			{
				pos = subject_probe(si, keys + pending[i].key, pending[i].len, pending[i].hash);
				if (pos >= 0)
				{
					apply_facts(si->entries[pos], pending[i].birth_date, pending[i].flags);
					last = (uint32) pos;
				}
			}
			si->last = last;
			npending = 0;
			keys_used = 0;
		}
	}
	catalog_scan_end(&cs);
	MemoryContextReset(st->row_cxt);
	pfree(keys);
}

/* tag_block: the blocked tags of the subjects that have events */
static void
scan_tag_block(BulkState *st)
{
	RuleCatalog *rc = st->rc;
	CatalogScan cs;
	AttrNumber	a_subject,
				a_tag;

	catalog_scan_begin(&cs, "tag_block", true);
	a_subject = catalog_column(&cs, "subject", TEXTOID);
	a_tag = catalog_column(&cs, "tag", TEXTOID);
	while (catalog_scan_next(&cs))
	{
		MemoryContext old;
		RulesKey	key;
		int64		pos;
		int			t = -1;

		SCAN_COLUMNS(&cs, Max(a_subject, a_tag));
		if (SCAN_ISNULL(&cs, a_subject) || SCAN_ISNULL(&cs, a_tag))
			continue;
		MemoryContextReset(st->row_cxt);
		old = MemoryContextSwitchTo(st->row_cxt);
		key = varlena_key(SCAN_VALUE(&cs, a_subject));
		pos = subject_find(&st->subjects, key.data, key.len);
		if (pos >= 0)
		{
			key = varlena_key(SCAN_VALUE(&cs, a_tag));
			t = tag_index(rc, key.data, key.len);
		}
		MemoryContextSwitchTo(old);
		if (t >= 0)
		{
			RulesBlocksEntry *b;
			bool		found;

			b = rules_blocks_insert(st->blocks, (uint32) pos, &found);
			if (!found)
			{
				b->blocks = arena_alloc(&st->arena, sizeof(bitmapword) * rc->nwords);
				tagset_clear(b->blocks, rc->nwords);
				st->subjects.entries[pos]->flags |= SUBJECT_BLOCKS;
			}
			b->blocks[TAGSET_WORD(t)] |= TAGSET_BIT(t);
		}
	}
	catalog_scan_end(&cs);
	MemoryContextReset(st->row_cxt);
}

static int
event_newer_first(const void *a, const void *b)
{
	int64		x = ((const RulesEvent *) a)->consent_id;
	int64		y = ((const RulesEvent *) b)->consent_id;

	return x > y ? -1 : x < y ? 1 : 0;
}

/* put a subject's events newest first, unless they are already */
static void
sort_events(BulkState *st, RulesSubject *s)
{
	int			n = 0;
	bool		sorted = true;
	RulesEvent **nodes;
	RulesEvent *values;
	MemoryContext old;

	for (RulesEvent *e = &s->events; e != NULL; e = e->next)
	{
		n++;
		if (e->next != NULL && e->next->consent_id >= e->consent_id)
			sorted = false;
	}
	if (sorted)
		return;
	/* the first is the entry's own: sort the contents, keep the chain */
	old = MemoryContextSwitchTo(st->row_cxt);
	nodes = palloc(sizeof(RulesEvent *) * n);
	values = palloc(sizeof(RulesEvent) * n);
	n = 0;
	for (RulesEvent *e = &s->events; e != NULL; e = e->next)
	{
		nodes[n] = e;
		values[n++] = *e;
	}
	qsort(values, n, sizeof(RulesEvent), event_newer_first);
	for (int i = 0; i < n; i++)
	{
		RulesEvent *next = nodes[i]->next;

		*nodes[i] = values[i];
		nodes[i]->next = next;
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->row_cxt);
}

/* a subject's ages, computed once per birth date */
static const RulesAge *
bulk_age(BulkState *st, const RulesSubject *s)
{
	RulesAgeEntry *e;
	bool		found;

	if (!(s->flags & SUBJECT_HAS_BIRTH))
		return &NoAge;
	if (st->last_age != NULL && st->last_age->birth_date == s->birth_date)
		return &st->last_age->age;
	e = rules_age_insert(st->ages, s->birth_date, &found);
	if (!found)
	{
		MemoryContext old = MemoryContextSwitchTo(st->row_cxt);

		compute_age(s->birth_date, st->today, &e->age);
		MemoryContextSwitchTo(old);
		MemoryContextReset(st->row_cxt);
	}
	st->last_age = e;
	return &e->age;
}

/* the tag ids of a set of tag indices, one Bitmapset per distinct set */
static Bitmapset *
bulk_answer_ids(BulkState *st, const bitmapword *words)
{
	RulesKey	key;
	RulesBytesEntry *e;
	bool		found;

	if (tagset_is_empty(words, st->rc->nwords))
		return NULL;
	key.data = (const char *) words;
	key.len = sizeof(bitmapword) * st->rc->nwords;
	if (st->last_answer != NULL &&
		memcmp(st->last_answer->key.data, key.data, key.len) == 0)
		return st->last_answer->value;
	e = rules_bytes_insert(st->answers, key, &found);
	if (!found)
	{
		MemoryContext old = MemoryContextSwitchTo(st->cxt);
		char	   *copy = arena_alloc(&st->arena, key.len);

		memcpy(copy, key.data, key.len);
		e->key.data = copy;
		e->value = tagset_ids(st->rc, words);
		e->index = 0;
		MemoryContextSwitchTo(old);
	}
	st->last_answer = e;
	return e->value;
}

/*
 * The answer for every subject that has a consent event for the purpose
 * (with purpose NULL: for a purpose in force, and the answer is the union
 * over them), in one pass over the catalog: cb(subject, len, visible,
 * valid_until, arg) once per subject, exactly as pfg_rules_evaluate would
 * answer for it.  'subject' (not NUL-terminated) and 'visible' (tag ids,
 * NULL for none) belong to the evaluator and are valid only during the
 * call; cb must not change them, and runs in a memory context reset after
 * each call.  Must run inside SPI, under the caller's catalog access; reads
 * every table under the active snapshot.  Returns the number of subjects
 * answered.
 *
 * Memory: about 77 bytes a subject with one event (its entry with the
 * event and text, its slot and position in the index), reported at DEBUG1.
 */
uint64
pfg_rules_evaluate_all(const char *purpose, RulesAnswerCallback cb, void *arg)
{
	BulkState	st;
	MemoryContext old;
	MemoryContext cb_cxt;
	bitmapword *words;
	uint64		nsubjects = 0;
	Size		peak;
	instr_time	start,
				read,
				elapsed;

	if (!ActiveSnapshotSet())
		elog(ERROR, "profile_guard bulk rules need an active snapshot");
	INSTR_TIME_SET_CURRENT(start);
	INSTR_TIME_SET_ZERO(read);
	memset(&st, 0, sizeof(st));
	st.cxt = AllocSetContextCreate(CurrentMemoryContext, "profile_guard bulk rules",
								   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(st.cxt);
	st.row_cxt = AllocSetContextCreate(st.cxt, "profile_guard bulk rows",
									   ALLOCSET_SMALL_SIZES);
	cb_cxt = AllocSetContextCreate(st.cxt, "profile_guard bulk answer",
								   ALLOCSET_SMALL_SIZES);
	st.arena.cxt = st.cxt;
	st.arena.block = 8 * 1024;
	st.now = GetCurrentStatementStartTimestamp();
	st.today = date_in_age_zone(GetCurrentTransactionStartTimestamp());

	/* the definitions, under the same snapshot as the rows */
	st.rc = load_rules(st.cxt);
	MemoryContextSwitchTo(st.cxt);
	if (choose_purposes(st.rc, purpose, &st.target))
	{
		st.lists = rules_bytes_create(st.cxt, 64, NULL);
		st.answers = rules_bytes_create(st.cxt, 64, NULL);
		st.ages = rules_age_create(st.cxt, 256, NULL);
		st.blocks = rules_blocks_create(st.cxt, 256, NULL);
		words = tagset_new(st.rc);

		scan_consent(&st, purpose);
		if (st.subjects.n > 0)
		{
			subject_index_build(&st.subjects, st.cxt);
			scan_subject(&st);
			scan_tag_block(&st);
		}
		INSTR_TIME_SET_CURRENT(read);
		INSTR_TIME_SUBTRACT(read, start);

		/* in the order met: entries, texts and events are read in step */
		for (uint32 i = 0; i < st.subjects.n; i++)
		{
			RulesSubject *s = st.subjects.entries[i];
			const bitmapword *blocks = NULL;
			TimestampTz valid_until;

			if ((i & 4095) == 0)
				CHECK_FOR_INTERRUPTS();
			if (s->flags & SUBJECT_MERGED)
				continue;
			if (s->flags & SUBJECT_BLOCKS)
				blocks = rules_blocks_lookup(st.blocks, i)->blocks;
			sort_events(&st, s);
			if (!evaluate_subject(st.rc, st.target, s, blocks, bulk_age(&st, s),
								  st.now, words, &valid_until))
				continue;
			nsubjects++;
			MemoryContextSwitchTo(cb_cxt);
			cb(s->key, s->len, bulk_answer_ids(&st, words), valid_until, arg);
			MemoryContextSwitchTo(st.cxt);
			MemoryContextReset(cb_cxt);
		}
	}
	MemoryContextSwitchTo(old);

	/* nothing was freed but small pieces: this is the peak */
	peak = MemoryContextMemAllocated(st.cxt, true);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	elog(DEBUG1, "profile_guard bulk rules under %s%s%s: %llu subjects, %llu events, %.3f s (reading %.3f s), %zu bytes of memory (%.1f a subject)",
		 purpose ? "purpose \"" : "every purpose in force",
		 purpose ? purpose : "", purpose ? "\"" : "",
		 (unsigned long long) nsubjects, (unsigned long long) st.nevents,
		 INSTR_TIME_GET_DOUBLE(elapsed), INSTR_TIME_GET_DOUBLE(read), peak,
		 nsubjects > 0 ? (double) peak / nsubjects : 0.0);
	MemoryContextDelete(st.cxt);
	return nsubjects;
}

/* ---- SQL ---- */

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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pfg_rules_forget();			/* read the definitions as of now */
	any = pfg_rules_evaluate(purpose, subject, &visible, &valid_until);
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		visible = bms_copy(visible);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	(void) pfg_rules_evaluate_all(purpose, put_bulk_answer, &ba);
	SPI_finish();
	return (Datum) 0;
}
