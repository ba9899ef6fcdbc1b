/*-------------------------------------------------------------------------
 *
 * bulk_rules.c
 *	  The consent rules for every subject at once (pfg_rules_evaluate_all),
 *	  for the consent cache's bulk load of a purpose: one pass of direct
 *	  heap scans over consent, subject, tag_block and legal_hold, under the
 *	  active snapshot, building the facts and events of rules.c for every
 *	  subject that has an event (every registered subject, for a purpose
 *	  not based on consent) and answering each with its rule code, exactly as
 *	  the one-subject path (subject_rules.c) would.  Owns what the pass
 *	  needs: the arena its small pieces live in, the index of subjects in
 *	  the order met, the catalog scans, the sorting of each subject's
 *	  events, and the caches of distinct tag lists, ages and answers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "parser/parse_relation.h"
#include "portability/instr_time.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "rules.h"
#include "bulk_rules.h"
#include "progress.h"

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

/* a subject's ages, by birth date: computed once per date */
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
		pfg_rules_tag_list_covers(rc, list, false, covers);	/* in the row context */
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
		only = pfg_rules_purpose_index(rc, purpose, purpose_len);

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
			pidx = last_purpose = pfg_rules_purpose_index(rc, key.data, key.len);
		if (pidx < 0 || !st->target[pidx] || rc->purposes[pidx].standing)
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

/*
 * subject: an entry with no event for every registered subject, when a
 * chosen purpose is based on something else than consent (rule 9a): those
 * answer for every registered subject.  Entries of subjects met in consent
 * are merged with these by subject_index_build.
 */
static void
scan_registered(BulkState *st)
{
	CatalogScan cs;
	AttrNumber	a_subject;

	catalog_scan_begin(&cs, "subject", true);
	a_subject = catalog_column(&cs, "subject", TEXTOID);
	while (catalog_scan_next(&cs))
	{
		MemoryContext old;
		RulesKey	key;
		RulesSubject *s;

		SCAN_COLUMNS(&cs, a_subject);
		if (SCAN_ISNULL(&cs, a_subject))
			continue;
		MemoryContextReset(st->row_cxt);
		old = MemoryContextSwitchTo(st->row_cxt);
		key = varlena_key(SCAN_VALUE(&cs, a_subject));
		s = arena_alloc(&st->arena, offsetof(RulesSubject, key) + key.len);
		memset(s, 0, offsetof(RulesSubject, key));
		s->events.purpose = -1;
		s->len = key.len;
		memcpy(s->key, key.data, key.len);
		subject_append(&st->subjects, s);
		MemoryContextSwitchTo(old);
	}
	catalog_scan_end(&cs);
	MemoryContextReset(st->row_cxt);
}

/* legal_hold: the active holds of the registered subjects met (rule 9b) */
static void
scan_legal_hold(BulkState *st)
{
	CatalogScan cs;
	AttrNumber	a_subject,
				a_released,
				a_until;

	/* a database still at 1.1 has no holds */
	if (!OidIsValid(pfg_catalog_relid("legal_hold")))
		return;
	catalog_scan_begin(&cs, "legal_hold", true);
	a_subject = catalog_column(&cs, "subject", TEXTOID);
	a_released = catalog_column(&cs, "released_at", TIMESTAMPTZOID);
	a_until = catalog_column(&cs, "until", TIMESTAMPTZOID);
	while (catalog_scan_next(&cs))
	{
		MemoryContext old;
		RulesKey	key;
		int64		pos;

		SCAN_COLUMNS(&cs, Max(a_subject, Max(a_released, a_until)));
		if (SCAN_ISNULL(&cs, a_subject))
			continue;
		MemoryContextReset(st->row_cxt);
		old = MemoryContextSwitchTo(st->row_cxt);
		key = varlena_key(SCAN_VALUE(&cs, a_subject));
		pos = subject_find(&st->subjects, key.data, key.len);
		MemoryContextSwitchTo(old);
		if (pos >= 0 && (st->subjects.entries[pos]->flags & SUBJECT_REGISTERED))
			pfg_rules_hold(st->subjects.entries[pos], !SCAN_ISNULL(&cs, a_released),
						   !SCAN_ISNULL(&cs, a_until),
						   SCAN_ISNULL(&cs, a_until) ? 0 :
						   DatumGetTimestampTz(SCAN_VALUE(&cs, a_until)),
						   st->now);
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
			t = pfg_rules_tag_index(rc, key.data, key.len);
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
		return pfg_rules_unknown_age();
	if (st->last_age != NULL && st->last_age->birth_date == s->birth_date)
		return &st->last_age->age;
	e = rules_age_insert(st->ages, s->birth_date, &found);
	if (!found)
	{
		MemoryContext old = MemoryContextSwitchTo(st->row_cxt);

		pfg_rules_compute_age(s->birth_date, st->today, &e->age);
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
		e->value = pfg_rules_tagset_ids(st->rc, words);
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
	bool		reporting = false;
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
	st.today = pfg_rules_date_in_age_zone(GetCurrentTransactionStartTimestamp());

	/* the definitions, under the same snapshot as the rows */
	st.rc = pfg_rules_load(st.cxt);
	MemoryContextSwitchTo(st.cxt);
	if (pfg_rules_choose_purposes(st.rc, purpose, &st.target))
	{
		st.lists = rules_bytes_create(st.cxt, 64, NULL);
		st.answers = rules_bytes_create(st.cxt, 64, NULL);
		st.ages = rules_age_create(st.cxt, 256, NULL);
		st.blocks = rules_blocks_create(st.cxt, 256, NULL);
		words = tagset_new(st.rc);

		reporting = pfg_progress_start(PFG_PROGRESS_CONSENT_BUILD, InvalidOid,
									   "reading consents", -1, false);
		scan_consent(&st, purpose);
		if (pfg_rules_any_standing(st.rc, st.target))
			scan_registered(&st);
		if (st.subjects.n > 0)
		{
			if (reporting)
				pfg_progress_phase("reading subjects and blocks", InvalidOid, st.subjects.n);
			subject_index_build(&st.subjects, st.cxt);
			scan_subject(&st);
			scan_tag_block(&st);
			scan_legal_hold(&st);
		}
		INSTR_TIME_SET_CURRENT(read);
		INSTR_TIME_SUBTRACT(read, start);
		if (reporting)
			pfg_progress_phase("evaluating", InvalidOid, st.subjects.n);

		/* in the order met: entries, texts and events are read in step */
		for (uint32 i = 0; i < st.subjects.n; i++)
		{
			RulesSubject *s = st.subjects.entries[i];
			const bitmapword *blocks = NULL;
			TimestampTz valid_until;

			if ((i & 4095) == 0)
			{
				CHECK_FOR_INTERRUPTS();
				if (reporting)
					pfg_progress_done(i);
			}
			if (s->flags & SUBJECT_MERGED)
				continue;
			if (s->flags & SUBJECT_BLOCKS)
				blocks = rules_blocks_lookup(st.blocks, i)->blocks;
			sort_events(&st, s);
			if (!pfg_rules_apply(st.rc, st.target, s, blocks, bulk_age(&st, s),
								 st.now, words, &valid_until))
				continue;
			nsubjects++;
			MemoryContextSwitchTo(cb_cxt);
			cb(s->key, s->len, bulk_answer_ids(&st, words), valid_until, arg);
			MemoryContextSwitchTo(st.cxt);
			MemoryContextReset(cb_cxt);
		}
		if (reporting)
			pfg_progress_end();
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
