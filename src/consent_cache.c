/*-------------------------------------------------------------------------
 *
 * consent_cache.c
 *	  Who may see what under which purpose: every subject's answer (its
 *	  visible tags, and until when that holds) under each declared purpose,
 *	  as the gates ask for it, row by row.  Also the validation of the
 *	  declared purpose itself (exists, not retired, allowed to the role,
 *	  assessed when automated).
 *
 *	  The answers of a purpose are built in one pass over the catalog by the
 *	  rules evaluator (subject_rules.c, which the suites check against
 *	  tag_state(), their specification), published in shared memory (shared_answers.c) as
 *	  an array indexed by subject when the subjects are dense integers, else
 *	  as a hash table of their text, and read there in place by every
 *	  backend.  A statement that needs only a few subjects before anything
 *	  is built reads them one at a time.
 *
 *	  They follow policy_generation.c: a new policy generation rebuilds
 *	  them; a changed subject is read again alone, and patched into the
 *	  shared answers, from the next statement of every session.  What this
 *	  transaction changed itself is read for it alone, each time, and never
 *	  published.  An answer past its valid_until (a consent expired, a
 *	  birthday crossed an age threshold) is read again too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "bypass.h"
#include "consent_cache.h"
#include "audit.h"
#include "invalidation.h"
#include "policy_generation.h"
#include "shared_answers.h"
#include "bulk_rules.h"
#include "subject_rules.h"

/* one subject's answer under one purpose */
typedef struct SubjectKey
{
	const char *data;
	uint32		len;
} SubjectKey;

typedef struct SubjectAnswer
{
	bool		row_visible;
	TimestampTz valid_until;	/* DT_NOEND when nothing can change by itself */
	Bitmapset  *tags;			/* visible tag ids; interned, NULL for none */
} SubjectAnswer;

static const SubjectAnswer NoAnswer = {false, DT_NOEND, NULL};

typedef struct SubjectEntry
{
	SubjectKey	key;
	uint32		hash;
	char		status;
	bool		overrides;		/* read since the bulk answers: use this */
	SubjectAnswer a;
} SubjectEntry;

#define SH_PREFIX		subjecthash
#define SH_ELEMENT_TYPE SubjectEntry
#define SH_KEY_TYPE		SubjectKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	hash_bytes((const unsigned char *) (k).data, (k).len)
#define SH_EQUAL(tb, a, b)	((a).len == (b).len && memcmp((a).data, (b).data, (a).len) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* a purpose as declared: its definition, and (lazily) its subjects */
struct PurposeState
{
	char		name[NAMEDATALEN * 2];
	MemoryContext cxt;
	/* definition */
	bool		exists;
	int			version;
	bool		marketing;
	bool		retired;
	bool		unassessed;		/* automated decision without assessment */
	int			nroles;
	Oid		   *roles;			/* roles allowed to declare it */
	/* validation memo */
	Oid			validated_for;	/* role that passed validation, or Invalid */
	/* subjects */
	MemoryContext subjects_cxt; /* everything below, private to us */
	bool		loaded;			/* every subject loaded in bulk, or shared */
	int			lazy_loads;		/* subjects read one at a time by ... */
	TimestampTz lazy_statement; /* ... the statement that started then */
	int			lazy_total;		/* ... and by every statement so far */
	double		lazy_limit;		/* when lazy_total calls for a bulk load */
	subjecthash_hash *subjects;
	int			overrides;		/* entries with 'overrides' set */
	ChangeHorizon horizon;		/* the log applied to our own answers */
	/*
	 * When every subject is a canonical integer and they are dense, a copy
	 * of the answers indexed by (subject - dense_min): integer subject
	 * columns then need no hashing, and a scan in key order reads it in
	 * order.
	 */
	SubjectAnswer *dense;
	int64		dense_min;
	uint64		dense_n;
	List	   *interned;		/* distinct tag sets, shared by entries */
	char	   *arena;			/* subject keys */
	Size		arena_used;
	Size		arena_size;
	uint64		nsubjects;
	/*
	 * Answers published by a bulk load (ours or another backend's), read in
	 * shared memory; then 'subjects' only holds entries read since, which
	 * override them, and entries re-read after their valid_until.
	 */
	int			shared_slot;	/* -1: none */
	const AnswersBlob *shared_blob;
	const pg_atomic_uint64 *shared; /* dense: by subject - shared_min */
	int64		shared_min;
	uint64		shared_n;
	const HashedAnswer *shared_slots;	/* hashed: by the subject's text */
	const char *shared_keys;
	uint64		shared_mask;
	Bitmapset **shared_sets;	/* decoded tag sets, sets_capacity of them */
	int			shared_sets_decoded;
	TimestampTz shared_checked; /* statement that last looked for them */
	bool		others_loading; /* another backend is loading them */
	SubjectAnswer scratch;		/* the last shared answer handed out */
	SubjectAnswer own;			/* the last answer read for this transaction */
	MemoryContext own_cxt;		/* its tags */
};

#define MAX_CACHED_PURPOSES 4
#define LAZY_SUBJECTS 256		/* one-by-one reads by one statement, and */
#define LAZY_SUBJECTS_TOTAL 4096	/* at least, by all, before a bulk load */
#define COLLECT_PURPOSE "*"	/* pseudo-purpose: union of those in force */

/*
 * A catch-up that finds more changed subjects than this (and than a
 * twentieth of our own entries) rebuilds instead: one bulk pass is cheaper.
 */
#define CATCH_UP_MAX_SUBJECTS 20000

static MemoryContext ConsentCacheContext = NULL;
static PurposeState *Purposes[MAX_CACHED_PURPOSES];
static int	NPurposes = 0;

/* what every cached answer was built under */
static uint64 CachedGeneration = 0;
static int	CachedMinorAge = -1;
static char CachedAgeTimeZone[NAMEDATALEN];
static const char *SeenAgeTimeZone = NULL;	/* the setting's value last seen */
static uint64 SeenSignals = 0;	/* pfg_policy_signals last acted on */
static Oid	ConsentRelid = InvalidOid;	/* identifies the catalog */


static void load_definition(PurposeState *ps);
static void load_subjects(PurposeState *ps);
static void refresh_subject(PurposeState *ps, SubjectEntry *e);
static void catch_up(PurposeState *ps);

static void
detach_shared(PurposeState *ps)
{
	if (ps->shared_slot >= 0)
		pfg_shared_answers_release(ps->shared_slot);
	ps->shared_slot = -1;
	ps->shared_blob = NULL;
	ps->shared = NULL;
	ps->shared_slots = NULL;
	ps->shared_keys = NULL;
	ps->shared_sets = NULL;
	ps->shared_sets_decoded = 0;
}

static void
free_purpose(PurposeState *ps)
{
	detach_shared(ps);
	MemoryContextDelete(ps->cxt);
}

/* the context of a purpose's private subject entries */
static MemoryContext
subjects_memory(PurposeState *ps)
{
	if (ps->subjects_cxt == NULL)
		ps->subjects_cxt = AllocSetContextCreate(ps->cxt, "profile_guard subjects",
												 ALLOCSET_DEFAULT_SIZES);
	return ps->subjects_cxt;
}

static const SubjectAnswer *lookup_subject(PurposeState *ps, Datum subject, Oid typid);
static void build_dense(PurposeState *ps);
static PurposeState *MemoPurpose = NULL;

/* the purpose the last statement resolved, while the setting is unchanged */
static PurposeState *LastPurpose = NULL;
static uint64 LastPurposeGeneration = 0;

static void
flush_purposes(void)
{
	MemoPurpose = NULL;
	LastPurpose = NULL;
	pfg_rules_forget();
	for (int i = 0; i < NPurposes; i++)
		free_purpose(Purposes[i]);
	NPurposes = 0;
}

void
pfg_consent_cache_roles_invalidated(void)
{
	/* roles' memberships may have changed: re-validate purposes */
	for (int i = 0; i < NPurposes; i++)
		Purposes[i]->validated_for = InvalidOid;
}

/*
 * Has anything the cached answers depend on moved since we last looked?
 * Asked by every gate call: a counter and two settings, compared without a
 * call (a setting assigned again, even to the same value, is a new string).
 */
static inline bool
answers_may_be_stale(void)
{
	return pfg_policy_signals != SeenSignals ||
		CachedMinorAge != pfg_minor_age ||
		SeenAgeTimeZone != pfg_age_time_zone;
}

/*
 * Bring the cached answers up to date, at most once per signal: a new
 * policy generation, age of majority or age time zone rebuilds them all;
 * changed subjects are read again one by one.
 */
static void
sync_answers(void)
{
	bool		settings_moved;

	SeenSignals = pfg_policy_signals;
	SeenAgeTimeZone = pfg_age_time_zone;
	settings_moved = CachedMinorAge != pfg_minor_age ||
		strcmp(CachedAgeTimeZone, pfg_age_time_zone) != 0;
	if (pfg_policy_generation_signalled() || settings_moved)
	{
		uint64		generation = pfg_policy_generation_current();
		Oid			catalog = pfg_catalog_relid("consent");

		/* a re-created extension counts generations from the start again */
		if (generation != CachedGeneration || catalog != ConsentRelid ||
			settings_moved)
		{
			flush_purposes();
			CachedGeneration = generation;
			ConsentRelid = catalog;
			CachedMinorAge = pfg_minor_age;
			strlcpy(CachedAgeTimeZone, pfg_age_time_zone,
					sizeof(CachedAgeTimeZone));
		}
	}
	if (pfg_policy_subjects_signalled())
	{
		pfg_policy_subjects_signal_consumed();
		PG_TRY();
		{
			for (int i = 0; i < NPurposes; i++)
				catch_up(Purposes[i]);
		}
		PG_CATCH();
		{
			pfg_policy_subjects_signal_again();
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
}

static PurposeState *
find_or_create_purpose(const char *name)
{
	PurposeState *ps;
	MemoryContext cxt;

	if (answers_may_be_stale())
		sync_answers();
	for (int i = 0; i < NPurposes; i++)
	{
		if (strcmp(Purposes[i]->name, name) == 0)
		{
			/* move to front: the list is kept in most-recent-first order */
			ps = Purposes[i];
			memmove(&Purposes[1], &Purposes[0], sizeof(PurposeState *) * i);
			Purposes[0] = ps;
			return ps;
		}
	}

	if (ConsentCacheContext == NULL)
		ConsentCacheContext = AllocSetContextCreate(TopMemoryContext,
													"profile_guard consent cache",
													ALLOCSET_DEFAULT_SIZES);
	if (NPurposes == MAX_CACHED_PURPOSES)
	{
		MemoPurpose = NULL;
		LastPurpose = NULL;
		free_purpose(Purposes[--NPurposes]);
	}

	cxt = AllocSetContextCreate(ConsentCacheContext, "profile_guard purpose",
								ALLOCSET_DEFAULT_SIZES);
	ps = MemoryContextAllocZero(cxt, sizeof(PurposeState));
	ps->cxt = cxt;
	ps->shared_slot = -1;
	strlcpy(ps->name, name, sizeof(ps->name));
	pfg_policy_horizon_of(pfg_policy_snapshot(), &ps->horizon, cxt);
	if (strcmp(name, COLLECT_PURPOSE) != 0)
		load_definition(ps);
	memmove(&Purposes[1], &Purposes[0], sizeof(PurposeState *) * NPurposes);
	Purposes[0] = ps;
	NPurposes++;
	return ps;
}

static void
load_definition(PurposeState *ps)
{
	PfgCatalogAccess ca;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			rc;

	args[0] = CStringGetTextDatum(ps->name);
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	pfg_begin_catalog_access(&ca, false);
	PushActiveSnapshot(pfg_policy_snapshot());
	{
		rc = SPI_execute_with_args(
			"SELECT p.version, p.marketing, p.retired_at IS NOT NULL,"
			"       p.automated_decision AND NOT EXISTS ("
			"           SELECT 1 FROM profile_guard.assessment a"
			"           WHERE a.purpose = p.purpose AND a.purpose_version = p.version),"
			"       ARRAY(SELECT r.role_name::text FROM profile_guard.purpose_role r"
			"             WHERE r.purpose = p.purpose)"
			"  FROM profile_guard.purpose p WHERE p.purpose = $1",
			1, argtypes, args, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not read purpose: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
		{
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			ArrayType  *roles;
			Datum	   *elems;
			bool	   *nulls;
			int			nelems;

			ps->exists = true;
			ps->version = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
			ps->marketing = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
			ps->retired = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
			ps->unassessed = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
			roles = DatumGetArrayTypeP(SPI_getbinval(tup, desc, 5, &isnull));
			deconstruct_array(roles, TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &nulls, &nelems);
			ps->roles = MemoryContextAlloc(ps->cxt, sizeof(Oid) * (nelems + 1));
			for (int i = 0; i < nelems; i++)
			{
				Oid			r = get_role_oid(TextDatumGetCString(elems[i]), true);

				if (OidIsValid(r))
					ps->roles[ps->nroles++] = r;
			}
		}
	}
	PopActiveSnapshot();
	pfg_end_catalog_access(&ca);
	SPI_finish();
}

/*
 * Resolve purpose 'name', the value the setting had at 'generation': checks
 * that one is declared, exists, is not retired, is allowed to the current
 * role and, for automated decisions, is assessed.  'relid' and 'tag' only
 * feed the error message.  Returns NULL for roles that bypass gating.
 */
static PurposeState *
resolve_purpose(const char *name, uint64 generation, Oid relid, const char *tag)
{
	PurposeState *ps;
	Oid			user;

	/* the common case: the same purpose and role as the last call */
	user = GetUserId();
	if (LastPurpose != NULL && !answers_may_be_stale() &&
		LastPurposeGeneration == generation &&
		LastPurpose->validated_for == user)
		return LastPurpose;

	if (pfg_current_user_bypasses())
		return NULL;

	if (name == NULL || name[0] == '\0')
		pfg_refuse(PFG_REFUSAL_NO_PURPOSE, tag,
				  (errcode(PFG_ERRCODE_NO_PURPOSE),
				 errmsg("no purpose declared for reading profile tags"),
				 !OidIsValid(relid) ? 0 :
				 tag ? errdetail("The statement reads tag \"%s\" of table \"%s\".",
								 tag, get_rel_name(relid)) :
				 errdetail("The statement reads the tag rows of table \"%s\".",
						   get_rel_name(relid)),
				 errhint("Declare the purpose of the statement first, e.g. SET profile_guard.purpose = 'recommendation'.")));

	ps = find_or_create_purpose(name);
	if (ps->validated_for == user)
	{
		LastPurpose = ps;
		LastPurposeGeneration = generation;
		return ps;
	}

	if (!ps->exists)
		pfg_refuse(PFG_REFUSAL_UNKNOWN_PURPOSE, tag,
				  (errcode(PFG_ERRCODE_UNKNOWN_PURPOSE),
				 errmsg("purpose \"%s\" does not exist", name),
				 errdetail("profile_guard.purpose names a purpose that was never defined."),
				 errhint("Declare a defined purpose, or define it with profile_guard.define_purpose().")));
	if (ps->retired)
		pfg_refuse(PFG_REFUSAL_PURPOSE_UNUSABLE, tag,
				  (errcode(PFG_ERRCODE_PURPOSE_UNUSABLE),
				 errmsg("purpose \"%s\" is retired", name),
				 errdetail("Profile tags cannot be used for a retired purpose."),
				 errhint("Declare a purpose that is still in force.")));
	{
		bool		allowed = false;

		for (int i = 0; i < ps->nroles && !allowed; i++)
			allowed = has_privs_of_role(user, ps->roles[i]);
		if (!allowed)
			pfg_refuse(PFG_REFUSAL_PURPOSE_NOT_ALLOWED, tag,
					  (errcode(PFG_ERRCODE_PURPOSE_NOT_ALLOWED),
					 errmsg("role \"%s\" may not use purpose \"%s\"",
							GetUserNameFromId(user, false), name),
					 errdetail("Only roles allowed the purpose may declare it."),
					 errhint("An administrator can allow it: SELECT profile_guard.allow_purpose('%s', '%s').",
							 GetUserNameFromId(user, false), name)));
	}
	if (ps->unassessed)
		pfg_refuse(PFG_REFUSAL_PURPOSE_UNUSABLE, tag,
				  (errcode(PFG_ERRCODE_PURPOSE_UNUSABLE),
				 errmsg("purpose \"%s\" makes automated decisions and has no impact assessment for version %d",
						name, ps->version),
				 errdetail("Automated-decision purposes need a personal-information impact assessment of their current version."),
				 errhint("Record one: SELECT profile_guard.record_assessment('%s', 'assessor', 'conclusion').",
						 name)));
	ps->validated_for = user;
	LastPurpose = ps;
	LastPurposeGeneration = generation;
	return ps;
}

/*
 * The purpose that gates the running statement: the one in force when the
 * statement started (audit.c fixes it at ExecutorStart), so a change made
 * during the statement counts from the next one.  Outside any audited
 * statement, the setting as it is now.
 */
PurposeState *
pfg_purpose_for_statement(Oid relid, const char *tag)
{
	if (PfgAuditCur->purpose_fixed)
		return resolve_purpose(PfgAuditCur->purpose, PfgAuditCur->purpose_generation,
							   relid, tag);
	return resolve_purpose(pfg_purpose, pfg_purpose_generation,
						   relid, tag);
}

/* the purpose in force now: for checks made as a statement starts */
PurposeState *
pfg_purpose_now(Oid relid, const char *tag)
{
	return resolve_purpose(pfg_purpose, pfg_purpose_generation,
						   relid, tag);
}

/* is a purpose declared for the running statement? */
bool
pfg_statement_purpose_declared(void)
{
	const char *name = PfgAuditCur->purpose_fixed ? PfgAuditCur->purpose : pfg_purpose;

	return name != NULL && name[0] != '\0';
}

/* ---- subjects ---- */

static const char *
arena_copy(PurposeState *ps, const char *data, uint32 len)
{
	char	   *p;

	if (ps->arena == NULL || ps->arena_used + len > ps->arena_size)
	{
		ps->arena_size = Max(64 * 1024, len);
		ps->arena = MemoryContextAlloc(subjects_memory(ps), ps->arena_size);
		ps->arena_used = 0;
	}
	p = ps->arena + ps->arena_used;
	memcpy(p, data, len);
	ps->arena_used += len;
	return p;
}

/* the interned copy of a tag set (tag sets repeat across millions of subjects) */
static Bitmapset *
intern_set(PurposeState *ps, Bitmapset *set)
{
	ListCell   *lc;
	MemoryContext old;

	if (set == NULL)
		return NULL;
	foreach(lc, ps->interned)
	{
		if (bms_equal((Bitmapset *) lfirst(lc), set))
			return (Bitmapset *) lfirst(lc);
	}
	old = MemoryContextSwitchTo(subjects_memory(ps));
	set = bms_copy(set);
	ps->interned = lappend(ps->interned, set);
	MemoryContextSwitchTo(old);
	return set;
}

#define IS_COLLECT(ps) (strcmp((ps)->name, COLLECT_PURPOSE) == 0)

/*
 * Push the snapshot consent is read under (policy_generation.c).  Unless
 * this transaction changed policy (then it reads its own policy, and keeps
 * what it read to itself), it is blind to this transaction's own writes
 * (command 0 sees none of them): only committed answers are cached, and
 * subjects this transaction changed are read for it alone (own_answer).
 */
static void
push_consent_snapshot(void)
{
	PushCopiedSnapshot(pfg_policy_snapshot());
	if (!pfg_policy_changed_here())
		GetActiveSnapshot()->curcid = FirstCommandId;
}

/* a bulk load's answers, as the evaluator hands them out */
typedef struct BulkFill
{
	PurposeState *ps;
	Bitmapset  *last_visible;	/* the evaluator's set last seen ... */
	Bitmapset  *last_interned;	/* ... and our copy of it */
} BulkFill;

/*
 * One subject's answer from the evaluator (subject_rules.c).  It hands out
 * one Bitmapset per distinct tag set, valid during the call: ours is the
 * interned copy.
 */
static void
fill_answer(const char *subject, uint32 len, Bitmapset *visible,
			TimestampTz valid_until, void *arg)
{
	BulkFill   *fill = (BulkFill *) arg;
	PurposeState *ps = fill->ps;
	SubjectKey	key;
	SubjectEntry *e;
	bool		found;

	key.data = subject;
	key.len = len;
	e = subjecthash_insert(ps->subjects, key, &found);
	if (!found)
	{
		e->key.data = arena_copy(ps, key.data, key.len);
		e->overrides = false;
		ps->nsubjects++;
	}
	else if (e->overrides)
	{
		e->overrides = false;
		ps->overrides--;
	}
	if (visible != fill->last_visible)
	{
		fill->last_interned = intern_set(ps, visible);
		fill->last_visible = visible;
	}
	e->a.tags = fill->last_interned;
	e->a.row_visible = (e->a.tags != NULL);
	e->a.valid_until = valid_until;
}

/*
 * Every subject's answer under a purpose (or, for the collection
 * pseudo-purpose, the union over the purposes in force), in one pass of the
 * C evaluator over the catalog, into our private entries; the horizon of
 * the log becomes that of the snapshot they were read under.
 */
static void
query_subjects(PurposeState *ps)
{
	PfgCatalogAccess ca;
	BulkFill	fill;
	int			rc;

	if (ps->subjects == NULL)
		ps->subjects = subjecthash_create(subjects_memory(ps), 1024, NULL);
	MemoPurpose = NULL;
	memset(&fill, 0, sizeof(fill));
	fill.ps = ps;

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	pfg_begin_catalog_access(&ca, false);
	push_consent_snapshot();
	pfg_policy_horizon_of(GetActiveSnapshot(), &ps->horizon, ps->cxt);
	(void) pfg_rules_evaluate_all(IS_COLLECT(ps) ? NULL : ps->name, fill_answer, &fill);
	PopActiveSnapshot();
	pfg_end_catalog_access(&ca);
	SPI_finish();
	ps->loaded = true;
	build_dense(ps);
}

/* a tag set as set_words bitmapwords; false if it does not fit */
static bool
set_words_of(const Bitmapset *set, bitmapword *words, int set_words)
{
	memset(words, 0, sizeof(bitmapword) * set_words);
	if (set == NULL)
		return true;
	if (set->nwords > set_words)
	{
		for (int w = set_words; w < set->nwords; w++)
			if (set->words[w] != 0)
				return false;
	}
	memcpy(words, set->words, sizeof(bitmapword) * Min(set->nwords, set_words));
	return true;
}

/* the index of an interned tag set among 'sets' (-1 for none) */
static inline int32
set_index(Bitmapset **sets, Bitmapset *tags, Bitmapset **last_tags, int32 *last_set)
{
	if (tags == NULL)
		return -1;
	if (tags != *last_tags)
	{
		for (*last_set = 0; sets[*last_set] != tags; (*last_set)++)
			;
		*last_tags = tags;
	}
	return *last_set;
}

/* write a horizon into a blob (patch lock held, or not yet published) */
static void
store_horizon(AnswersBlob *blob, const ChangeHorizon *h)
{
	uint64	   *xip = ANSWERS_BLOB_HORIZON(blob);

	SpinLockAcquire(&blob->horizon_lock);
	if (h->nxip <= blob->horizon_capacity)
	{
		blob->horizon_xmax = U64FromFullTransactionId(h->xmax);
		for (int i = 0; i < h->nxip; i++)
			xip[i] = U64FromFullTransactionId(h->xip[i]);
		blob->horizon_nxip = h->nxip;
	}
	else
	{
		/* read again from the oldest running transaction on */
		uint64		oldest = U64FromFullTransactionId(h->xmax);

		for (int i = 0; i < h->nxip; i++)
			oldest = Min(oldest, U64FromFullTransactionId(h->xip[i]));
		blob->horizon_xmax = oldest;
		blob->horizon_nxip = 0;
	}
	SpinLockRelease(&blob->horizon_lock);
}

/* a blob's horizon, in CurrentMemoryContext */
static void
load_horizon(const AnswersBlob *blob, ChangeHorizon *h)
{
	AnswersBlob *b = unconstify(AnswersBlob *, blob);
	const uint64 *xip = ANSWERS_BLOB_HORIZON(blob);

	h->xip = palloc(sizeof(FullTransactionId) * Max(blob->horizon_capacity, 1));
	SpinLockAcquire(&b->horizon_lock);
	h->xmax = FullTransactionIdFromU64(b->horizon_xmax);
	h->nxip = b->horizon_nxip;
	for (int i = 0; i < h->nxip; i++)
		h->xip[i] = FullTransactionIdFromU64(xip[i]);
	SpinLockRelease(&b->horizon_lock);
}

/*
 * Copy the answers into a slot's shared room: the dense array as it is
 * (with room for subjects numbered beyond the last), or every entry into an
 * open-addressing table of subjects' text (at most half full, room for a
 * half more keys); tag sets with room to spare.  False if there is no room.
 */
static bool
publish_answers(PurposeState *ps, int slot)
{
	int			nsets = list_length(ps->interned);
	int			sets_capacity = Min(Max(64, 4 * nsets), ANSWER_MAX_SETS);
	int			set_words = 1;
	Bitmapset **sets;
	AnswersBlob *blob;
	bitmapword *words;
	Bitmapset  *last_tags = NULL;
	int32		last_set = -1;
	AnswersKind kind = ps->dense != NULL ? ANSWERS_DENSE : ANSWERS_HASHED;
	int			horizon_capacity = pfg_shared_answers_horizon_capacity();
	uint64		n;
	Size		key_bytes = 0;
	Size		key_capacity = 0;
	int			i = 0;
	ListCell   *lc;

	if (nsets > sets_capacity)
		return false;
	sets = palloc(sizeof(Bitmapset *) * Max(nsets, 1));
	foreach(lc, ps->interned)
	{
		sets[i++] = (Bitmapset *) lfirst(lc);
		set_words = Max(set_words, sets[i - 1]->nwords);
	}
	/* room for 256 tags at least (a set with more cannot be patched in) */
	set_words = Max(set_words, 4);
	if (kind == ANSWERS_DENSE)
		n = ps->dense_n;
	else
	{
		subjecthash_iterator it;
		SubjectEntry *e;

		n = 1;
		while (n < 2 * (uint64) Max(ps->subjects->members, 1))
			n <<= 1;
		subjecthash_start_iterate(ps->subjects, &it);
		while ((e = subjecthash_iterate(ps->subjects, &it)) != NULL)
			key_bytes += e->key.len;
		key_capacity = key_bytes + key_bytes / 2 + 4096;
	}
	blob = pfg_shared_answers_alloc(slot, answers_blob_size(horizon_capacity, sets_capacity,
														   set_words, kind, n, key_capacity));
	if (blob == NULL)
		return false;
	blob->kind = kind;
	blob->set_words = set_words;
	blob->sets_capacity = sets_capacity;
	pg_atomic_init_u32(&blob->nsets, nsets);
	blob->dense_min = ps->dense_min;
	blob->n = n;
	blob->hashed_used = 0;
	blob->key_capacity = key_capacity;
	blob->key_used = 0;
	blob->horizon_capacity = horizon_capacity;
	SpinLockInit(&blob->horizon_lock);
	store_horizon(blob, &ps->horizon);
	words = ANSWERS_BLOB_SETS(blob);
	for (i = 0; i < nsets; i++)
		(void) set_words_of(sets[i], words + (Size) i * set_words, set_words);
	if (kind == ANSWERS_DENSE)
	{
		pg_atomic_uint64 *answers = ANSWERS_BLOB_ANSWERS(blob);

		for (uint64 k = 0; k < n; k++)
			pg_atomic_init_u64(&answers[k],
							   answer_pack(set_index(sets, ps->dense[k].tags, &last_tags, &last_set),
										   ps->dense[k].valid_until));
	}
	else
	{
		HashedAnswer *slots = ANSWERS_BLOB_SLOTS(blob);
		char	   *keys = ANSWERS_BLOB_KEYS(blob);
		subjecthash_iterator it;
		SubjectEntry *e;

		for (uint64 k = 0; k < n; k++)
		{
			pg_atomic_init_u64(&slots[k].key_off, HASHED_EMPTY);
			pg_atomic_init_u64(&slots[k].answer, 0);
		}
		subjecthash_start_iterate(ps->subjects, &it);
		while ((e = subjecthash_iterate(ps->subjects, &it)) != NULL)
		{
			uint32		h = hash_bytes((const unsigned char *) e->key.data, e->key.len);
			uint64		k = h & (n - 1);

			while (pg_atomic_read_u64(&slots[k].key_off) != HASHED_EMPTY)
				k = (k + 1) & (n - 1);
			memcpy(keys + blob->key_used, e->key.data, e->key.len);
			slots[k].key_len = e->key.len;
			slots[k].hash = h;
			pg_atomic_write_u64(&slots[k].answer,
								answer_pack(set_index(sets, e->a.tags, &last_tags, &last_set),
											e->a.valid_until));
			pg_atomic_write_u64(&slots[k].key_off, blob->key_used);
			blob->key_used += e->key.len;
			blob->hashed_used++;
		}
	}
	pfree(sets);
	return true;
}

static const AnswersKey *
answers_key(PurposeState *ps, AnswersKey *key)
{
	key->purpose = ps->name;
	key->minor_age = pfg_minor_age;
	key->age_time_zone = pfg_age_time_zone;
	key->consent_relid = ConsentRelid;
	key->generation = CachedGeneration;
	return key;
}

/* Forget our private entries (the shared answers replace them). */
static void
drop_private_subjects(PurposeState *ps)
{
	MemoPurpose = NULL;
	if (ps->subjects_cxt != NULL)
		MemoryContextDelete(ps->subjects_cxt);
	ps->subjects_cxt = NULL;
	ps->subjects = NULL;
	ps->overrides = 0;
	ps->dense = NULL;
	ps->dense_n = 0;
	ps->interned = NIL;
	ps->arena = NULL;
	ps->arena_used = ps->arena_size = 0;
	ps->nsubjects = 0;
}

/* decode the tag sets published (or patched in) since we last looked */
static void
decode_shared_sets(PurposeState *ps)
{
	const AnswersBlob *blob = ps->shared_blob;
	uint32		nsets = pg_atomic_read_u32(unconstify(pg_atomic_uint32 *, &blob->nsets));
	const bitmapword *words = ANSWERS_BLOB_SETS(blob);
	MemoryContext old;

	pg_read_barrier();
	old = MemoryContextSwitchTo(ps->cxt);
	for (int i = ps->shared_sets_decoded; i < (int) nsets; i++)
	{
		Bitmapset  *set = NULL;

		for (int w = 0; w < blob->set_words; w++)
			for (int bit = 0; bit < BITS_PER_BITMAPWORD; bit++)
				if (words[(Size) i * blob->set_words + w] & ((bitmapword) 1 << bit))
					set = bms_add_member(set, w * BITS_PER_BITMAPWORD + bit);
		ps->shared_sets[i] = set;
	}
	MemoryContextSwitchTo(old);
	ps->shared_sets_decoded = nsets;
}

/*
 * Read the answers another backend (or we) published; false if none.
 * They are then brought up to date with the log of changed subjects.
 */
static bool
attach_shared(PurposeState *ps)
{
	int			slot;
	AnswersKey	key;
	const AnswersBlob *blob;

	blob = pfg_shared_answers_attach(answers_key(ps, &key), &slot,
									&ps->others_loading);
	if (blob == NULL)
		return false;
	drop_private_subjects(ps);
	ps->shared_blob = blob;
	ps->shared_sets = MemoryContextAllocZero(ps->cxt,
											 sizeof(Bitmapset *) * Max(blob->sets_capacity, 1));
	ps->shared_sets_decoded = 0;
	decode_shared_sets(ps);
	if (blob->kind == ANSWERS_DENSE)
	{
		ps->shared = ANSWERS_BLOB_ANSWERS(blob);
		ps->shared_min = blob->dense_min;
		ps->shared_n = blob->n;
	}
	else
	{
		ps->shared_slots = ANSWERS_BLOB_SLOTS(blob);
		ps->shared_keys = ANSWERS_BLOB_KEYS(blob);
		ps->shared_mask = blob->n - 1;
	}
	ps->shared_slot = slot;
	ps->others_loading = false;
	ps->loaded = true;
	catch_up(ps);
	return true;
}

/*
 * Every subject's answer under a purpose, in bulk, published for the other
 * backends (unless this transaction changed policy: then it must read its
 * own changes, and keeps what it read to itself).
 */
static void
load_subjects(PurposeState *ps)
{
	int			slot = -1;
	AnswersKey	key;
	bool		published = false;

	slot = pfg_shared_answers_begin_load(answers_key(ps, &key));
	if (slot == -2 && attach_shared(ps))
		return;					/* published meanwhile */
	if (slot < 0)
	{
		query_subjects(ps);
		return;
	}
	PG_TRY();
	{
		query_subjects(ps);
		published = publish_answers(ps, slot);
	}
	PG_CATCH();
	{
		pfg_shared_answers_finish_load(slot, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pfg_shared_answers_finish_load(slot, published);
	if (published)
		(void) attach_shared(ps);	/* else keep our own copy */
}

/*
 * One subject's answer, read now (inside SPI, with catalog access and the
 * consent snapshot pushed); its tags interned among our entries' or, for an
 * answer that is not kept, copied into 'cxt'.  The rules run in C on the
 * subject's own rows (subject_rules.c), which the suites check against
 * tag_state().
 */
static void
evaluate_in_spi(PurposeState *ps, const char *subject, SubjectAnswer *out,
				MemoryContext cxt)
{
	Bitmapset  *visible;
	TimestampTz valid_until;

	if (pfg_rules_evaluate(IS_COLLECT(ps) ? NULL : ps->name, subject,
						  &visible, &valid_until))
	{
		if (cxt != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			out->tags = bms_copy(visible);
			MemoryContextSwitchTo(old);
		}
		else
			out->tags = intern_set(ps, visible);
		out->row_visible = (out->tags != NULL);
		out->valid_until = valid_until;
	}
	else
		*out = NoAnswer;
}

/*
 * Read one subject now: under the consent snapshot, or (own_view) as this
 * transaction sees it, its own uncommitted changes included.
 */
static void
evaluate_subject(PurposeState *ps, const char *subject, SubjectAnswer *out,
				 bool own_view, MemoryContext cxt)
{
	PfgCatalogAccess ca;
	int			rc;

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	pfg_begin_catalog_access(&ca, true);
	if (own_view)
		PushActiveSnapshot(pfg_policy_snapshot());
	else
		push_consent_snapshot();
	evaluate_in_spi(ps, subject, out, cxt);
	PopActiveSnapshot();
	pfg_end_catalog_access(&ca);
	SPI_finish();
}

/* (Re-)read one subject: not cached yet, or past its valid_until. */
static void
refresh_subject(PurposeState *ps, SubjectEntry *e)
{
	char	   *subject = pnstrdup(e->key.data, e->key.len);

	evaluate_subject(ps, subject, &e->a, false, NULL);
	pfree(subject);
}

/* the integer a subject text spells in canonical form ("42", "-7") */
static bool
canonical_int64(const char *data, uint32 len, int64 *result)
{
	char		buf[MAXINT8LEN + 1];
	int64		v = 0;
	bool		neg = false;
	uint32		i = 0;

	if (len == 0 || len > MAXINT8LEN)
		return false;
	if (data[0] == '-')
	{
		neg = true;
		i = 1;
	}
	if (i == len || (data[i] == '0' && len > i + 1) || (neg && len == 2 && data[1] == '0'))
		return false;
	for (; i < len; i++)
	{
		if (data[i] < '0' || data[i] > '9')
			return false;
		if (pg_mul_s64_overflow(v, 10, &v) ||
			pg_sub_s64_overflow(v, data[i] - '0', &v))
			return false;		/* accumulate negatively: INT64_MIN fits */
	}
	if (!neg && pg_sub_s64_overflow(0, v, &v))
		return false;
	/* round trip, so that "42" and only "42" maps to 42 */
	if (pg_lltoa(v, buf) != (int) len || memcmp(buf, data, len) != 0)
		return false;
	*result = v;
	return true;
}

/*
 * The index of a tag set among the published ones, adding it if new: its
 * words are written before the count that makes it readable.  -1 when it
 * does not fit (then the answers are retired).
 */
static int32
shared_set_index(AnswersBlob *blob, const Bitmapset *tags)
{
	bitmapword *sets = ANSWERS_BLOB_SETS(blob);
	bitmapword *words = palloc(sizeof(bitmapword) * blob->set_words);
	uint32		nsets = pg_atomic_read_u32(&blob->nsets);

	if (!set_words_of(tags, words, blob->set_words))
		return -1;
	for (uint32 i = 0; i < nsets; i++)
		if (memcmp(sets + (Size) i * blob->set_words, words,
				   sizeof(bitmapword) * blob->set_words) == 0)
			return (int32) i;
	if ((int) nsets >= blob->sets_capacity)
		return -1;
	memcpy(sets + (Size) nsets * blob->set_words, words,
		   sizeof(bitmapword) * blob->set_words);
	pg_write_barrier();
	pg_atomic_write_u32(&blob->nsets, nsets + 1);
	return (int32) nsets;
}

/*
 * Patch one subject's answer into the published answers (patch lock held):
 * one atomic store for a subject they hold; a new subject is added to a
 * hashed table (its slot filled before its key_off).  An answer that says
 * nothing, now or later, needs no room.  False when there is no room: the
 * caller retires the answers.
 */
static bool
patch_shared_answer(PurposeState *ps, const char *subject, const SubjectAnswer *a)
{
	AnswersBlob *blob = unconstify(AnswersBlob *, ps->shared_blob);
	uint32		len = strlen(subject);
	bool		says_nothing = !a->row_visible && a->valid_until == DT_NOEND;
	int32		set = -1;
	uint64		packed;

	if (a->tags != NULL && (set = shared_set_index(blob, a->tags)) < 0)
		return false;
	packed = answer_pack(set, a->valid_until);
	if (blob->kind == ANSWERS_DENSE)
	{
		int64		v;
		uint64		off;

		if (!canonical_int64(subject, len, &v))
			return says_nothing;
		off = (uint64) v - (uint64) blob->dense_min;
		if (off >= blob->n)
			return says_nothing;
		pg_atomic_write_u64(&ANSWERS_BLOB_ANSWERS(blob)[off], packed);
		return true;
	}
	else
	{
		HashedAnswer *slots = ANSWERS_BLOB_SLOTS(blob);
		char	   *keys = ANSWERS_BLOB_KEYS(blob);
		uint32		h = hash_bytes((const unsigned char *) subject, len);
		uint64		mask = blob->n - 1;
		uint64		k = h & mask;

		for (;;)
		{
			uint64		off = pg_atomic_read_u64(&slots[k].key_off);

			if (off == HASHED_EMPTY)
				break;
			if (slots[k].hash == h && slots[k].key_len == len &&
				memcmp(keys + off, subject, len) == 0)
			{
				pg_atomic_write_u64(&slots[k].answer, packed);
				return true;
			}
			k = (k + 1) & mask;
		}
		if (says_nothing)
			return true;
		if (blob->hashed_used + 1 > blob->n / 4 * 3 ||
			blob->key_used + len > blob->key_capacity)
			return false;
		memcpy(keys + blob->key_used, subject, len);
		slots[k].key_len = len;
		slots[k].hash = h;
		pg_atomic_write_u64(&slots[k].answer, packed);
		pg_write_barrier();
		pg_atomic_write_u64(&slots[k].key_off, blob->key_used);
		blob->key_used += len;
		blob->hashed_used++;
		return true;
	}
}

/* forget a private entry (the shared answers, patched, replace it) */
static void
forget_entry(PurposeState *ps, const char *subject)
{
	SubjectKey	key;
	SubjectEntry *e;

	if (ps->subjects == NULL)
		return;
	key.data = subject;
	key.len = strlen(subject);
	e = subjecthash_lookup(ps->subjects, key);
	if (e == NULL)
		return;
	if (e->overrides)
		ps->overrides--;
	subjecthash_delete_item(ps->subjects, e);
	ps->nsubjects--;
}

/* our own answer for a subject: an entry that overrides the bulk answers */
static void
set_private_answer(PurposeState *ps, const char *subject, const SubjectAnswer *a,
				   bool overrides)
{
	SubjectKey	key;
	SubjectEntry *e;
	bool		found;

	if (ps->subjects == NULL)
		ps->subjects = subjecthash_create(subjects_memory(ps), 1024, NULL);
	key.data = subject;
	key.len = strlen(subject);
	e = subjecthash_insert(ps->subjects, key, &found);
	if (!found)
	{
		e->key.data = arena_copy(ps, key.data, key.len);
		e->overrides = false;
		ps->nsubjects++;
	}
	if (overrides && !e->overrides)
		ps->overrides++;
	e->overrides |= overrides;
	e->a = *a;
}

/* forget every answer read so far: the next look-ups start again */
static void
start_again(PurposeState *ps)
{
	detach_shared(ps);
	drop_private_subjects(ps);
	ps->loaded = false;
	ps->lazy_total = 0;
	ps->lazy_loads = 0;
	ps->shared_checked = 0;
}

/*
 * Apply the log of changed subjects: read every subject changed since the
 * horizon again, once.  Published answers are patched in place, under their
 * patch lock and a snapshot taken after it was granted (a parallel worker,
 * which shares its leader's locks, keeps what it read to itself instead);
 * our own answers are replaced.  Subjects this transaction changed are
 * left alone: they are read for it at each look-up, and by the others once
 * it commits (its id is in every horizon it takes).  Too many changes, or
 * no room left in the published answers, and everything is read again.
 */
static void
catch_up(PurposeState *ps)
{
	PfgCatalogAccess ca;
	ChangeHorizon since;
	ChangeHorizon now;
	List	   *changed;
	ListCell   *lc;
	bool		shared = ps->shared_slot >= 0;
	bool		patch = shared && !IsInParallelMode();
	bool		again = false;
	int			rc;

	MemoPurpose = NULL;
	if (shared && pfg_shared_answers_retired(ps->shared_slot))
	{
		start_again(ps);
		return;
	}
	if (!ps->loaded && (ps->subjects == NULL || ps->subjects->members == 0))
	{
		/* nothing read yet: whatever is read from now on is current */
		if (ps->horizon.xip != NULL)
			pfree(ps->horizon.xip);
		pfg_policy_horizon_of(pfg_policy_snapshot(), &ps->horizon, ps->cxt);
		return;
	}

	/*
	 * Another backend has patched everything committed now: nothing to read.
	 * This is the common case while consents change, checked before anything
	 * else costs.
	 */
	if (shared)
	{
		load_horizon(ps->shared_blob, &since);
		if (pfg_policy_horizon_covers(&since, pfg_policy_snapshot()))
		{
			pfree(since.xip);
			return;
		}
	}
	else
		since = ps->horizon;

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	pfg_begin_catalog_access(&ca, true);
	if (patch)
	{
		/*
		 * Patch under the lock, with what is committed once it is ours; the
		 * backend that held it may have patched what we would.
		 */
		pfg_shared_answers_lock_patch(ps->shared_slot);
		pfree(since.xip);
		load_horizon(ps->shared_blob, &since);	/* freed by SPI_finish */
	}
	push_consent_snapshot();
	if (pfg_policy_horizon_covers(&since, GetActiveSnapshot()))
		changed = NIL;
	else
		changed = pfg_policy_changed_subjects(&since);
	if (list_length(changed) > Max(CATCH_UP_MAX_SUBJECTS, ps->nsubjects / 20))
		again = true;
	foreach(lc, changed)
	{
		const char *subject = (const char *) lfirst(lc);
		SubjectAnswer a;

		if (again)
			break;
		if (pfg_policy_subject_changed_here(subject, strlen(subject)))
		{
			forget_entry(ps, subject);
			continue;
		}
		evaluate_in_spi(ps, subject, &a, patch ? CurrentMemoryContext : NULL);
		if (patch)
		{
			if (!patch_shared_answer(ps, subject, &a))
				again = true;
			forget_entry(ps, subject);
		}
		else if (shared)
			set_private_answer(ps, subject, &a, true);
		else if (ps->dense != NULL)
		{
			int64		v;
			uint64		off = 0;

			if (canonical_int64(subject, strlen(subject), &v) &&
				(off = (uint64) v - (uint64) ps->dense_min) < ps->dense_n)
			{
				ps->dense[off] = a;
				set_private_answer(ps, subject, &a, false);
			}
			else
				set_private_answer(ps, subject, &a, true);
		}
		else if (ps->loaded)
			set_private_answer(ps, subject, &a, false);
		else
		{
			/* read one at a time so far: keep only those already read */
			SubjectKey	key = {subject, strlen(subject)};
			SubjectEntry *e = subjecthash_lookup(ps->subjects, key);

			if (e != NULL)
				e->a = a;
		}
	}
	if (again && patch)
		pfg_shared_answers_retire(ps->shared_slot);
	if (!again)
	{
		MemoryContext old = MemoryContextSwitchTo(ps->cxt);

		pfg_policy_horizon_of(GetActiveSnapshot(), &now, CurrentMemoryContext);
		MemoryContextSwitchTo(old);
		if (patch)
			store_horizon(unconstify(AnswersBlob *, ps->shared_blob), &now);
		if (!shared)
		{
			if (ps->horizon.xip != NULL)
				pfree(ps->horizon.xip);
			ps->horizon = now;
		}
		else
			pfree(now.xip);
	}
	PopActiveSnapshot();
	if (patch)
		pfg_shared_answers_unlock_patch(ps->shared_slot);
	pfg_end_catalog_access(&ca);
	SPI_finish();
	if (shared && !patch)
		pfree(since.xip);
	if (again)
		start_again(ps);
}

/*
 * Text form of a subject datum, without allocation for the common types.
 * 'buf' must hold SUBJECT_BUF_SIZE bytes.
 */
#define SUBJECT_BUF_SIZE (Max(MAXINT8LEN + 1, 2 * UUID_LEN + 5))

static SubjectKey
subject_key(Datum subject, Oid typid, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	SubjectKey	k;

	switch (typid)
	{
		case INT2OID:
			k.len = pg_itoa(DatumGetInt16(subject), buf);
			k.data = buf;
			break;
		case INT4OID:
			k.len = pg_ltoa(DatumGetInt32(subject), buf);
			k.data = buf;
			break;
		case INT8OID:
			k.len = pg_lltoa(DatumGetInt64(subject), buf);
			k.data = buf;
			break;
		case UUIDOID:
			{
				/* as uuid_out spells it: lower-case hex, 8-4-4-4-12 */
				const pg_uuid_t *u = DatumGetUUIDP(subject);
				char	   *p = buf;

				for (int i = 0; i < UUID_LEN; i++)
				{
					if (i == 4 || i == 6 || i == 8 || i == 10)
						*p++ = '-';
					*p++ = hex[u->data[i] >> 4];
					*p++ = hex[u->data[i] & 0x0F];
				}
				k.data = buf;
				k.len = p - buf;
				break;
			}
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = DatumGetTextPP(subject);

				k.data = VARDATA_ANY(t);
				k.len = VARSIZE_ANY_EXHDR(t);
				break;
			}
		default:
			{
				Oid			out;
				bool		isvarlena;
				char	   *s;

				getTypeOutputInfo(typid, &out, &isvarlena);
				s = OidOutputFunctionCall(out, subject);
				k.data = s;
				k.len = strlen(s);
				break;
			}
	}
	return k;
}

/* the subject as text, as consents name it (palloc'd) */
char *
pfg_subject_text(Datum subject, Oid typid)
{
	char		buf[SUBJECT_BUF_SIZE];
	SubjectKey	k = subject_key(subject, typid, buf);

	return pnstrdup(k.data, k.len);
}

/*
 * May a tag be collected for a subject?  Rule 6: only when some purpose in
 * force has an effective consent covering it.
 */
bool
pfg_subject_tag_collectable(Datum subject, Oid typid, int tag_id)
{
	PurposeState *ps = find_or_create_purpose(COLLECT_PURPOSE);

	return pfg_subject_tag_visible(ps, subject, typid, tag_id);
}

#define DENSE_MIN_SUBJECTS 1024
#define DENSE_MAX_SPREAD 2		/* slots per subject, at most */

/*
 * After a bulk load: index the answers by integer when that is compact,
 * with room for subjects numbered beyond the last (new sign-ups).
 */
static void
build_dense(PurposeState *ps)
{
	subjecthash_iterator it;
	SubjectEntry *e;
	int64		min = PG_INT64_MAX;
	int64		max = PG_INT64_MIN;
	int64		v;
	uint64		n;

	ps->dense = NULL;
	if (ps->nsubjects < DENSE_MIN_SUBJECTS)
		return;
	subjecthash_start_iterate(ps->subjects, &it);
	while ((e = subjecthash_iterate(ps->subjects, &it)) != NULL)
	{
		if (!canonical_int64(e->key.data, e->key.len, &v))
			return;
		min = Min(min, v);
		max = Max(max, v);
	}
	if ((uint64) max - (uint64) min >= ps->nsubjects * DENSE_MAX_SPREAD)
		return;
	n = (uint64) max - (uint64) min + 1;
	if ((uint64) PG_INT64_MAX - (uint64) max > n / 8 + 1024)
		n += n / 8 + 1024;
	ps->dense = MemoryContextAllocHuge(subjects_memory(ps), n * sizeof(SubjectAnswer));
	for (uint64 i = 0; i < n; i++)
		ps->dense[i] = NoAnswer;
	subjecthash_start_iterate(ps->subjects, &it);
	while ((e = subjecthash_iterate(ps->subjects, &it)) != NULL)
	{
		(void) canonical_int64(e->key.data, e->key.len, &v);
		ps->dense[(uint64) v - (uint64) min] = e->a;
	}
	ps->dense_min = min;
	ps->dense_n = n;
}

/*
 * The last look-up, for integer subjects: the gates of one row (row gate,
 * cell gates, row mask) ask for the same subject in turn.  Forgotten on any
 * insertion (entries may move), catch-up and flush.
 */
static Oid	MemoType = InvalidOid;
static int64 MemoValue = 0;
static const SubjectAnswer *MemoAnswer = NULL;

static inline bool
answer_current(const SubjectAnswer *a)
{
	return a->valid_until == DT_NOEND ||
		a->valid_until > GetCurrentStatementStartTimestamp();
}

static inline void
remember(PurposeState *ps, Oid typid, int64 v, const SubjectAnswer *a)
{
	MemoPurpose = ps;
	MemoType = typid;
	MemoValue = v;
	MemoAnswer = a;
}

/*
 * A published answer, in ps->scratch (valid until the next one); NULL when
 * it is past its valid_until.
 */
static inline const SubjectAnswer *
scratch_answer(PurposeState *ps, uint64 packed)
{
	int32		set = answer_set(packed);
	TimestampTz valid_until = answer_valid_until(packed);

	if (valid_until != DT_NOEND &&
		valid_until <= GetCurrentStatementStartTimestamp())
		return NULL;
	if (set >= ps->shared_sets_decoded)
		decode_shared_sets(ps);
	ps->scratch.tags = set >= 0 ? ps->shared_sets[set] : NULL;
	ps->scratch.row_visible = (ps->scratch.tags != NULL);
	ps->scratch.valid_until = valid_until;
	return &ps->scratch;
}

/* ... of an integer subject, from a dense array */
static inline const SubjectAnswer *
shared_answer(PurposeState *ps, int64 v)
{
	uint64		off = (uint64) v - (uint64) ps->shared_min;

	if (off >= ps->shared_n)
		return &NoAnswer;		/* not a subject: no consent */
	return scratch_answer(ps, pg_atomic_read_u64(unconstify(pg_atomic_uint64 *,
															&ps->shared[off])));
}

/* ... of any subject, from a table of their text */
static const SubjectAnswer *
shared_hashed_answer(PurposeState *ps, SubjectKey key)
{
	uint32		h = hash_bytes((const unsigned char *) key.data, key.len);
	uint64		k = h & ps->shared_mask;

	for (;;)
	{
		HashedAnswer *slot = unconstify(HashedAnswer *, &ps->shared_slots[k]);
		uint64		off = pg_atomic_read_u64(&slot->key_off);

		if (off == HASHED_EMPTY)
			return &NoAnswer;	/* not a subject: no consent */
		pg_read_barrier();
		if (slot->hash == h && slot->key_len == key.len &&
			memcmp(ps->shared_keys + off, key.data, key.len) == 0)
			return scratch_answer(ps, pg_atomic_read_u64(&slot->answer));
		k = (k + 1) & ps->shared_mask;
	}
}

/* A private entry for one subject, read now (entries may move: no memo). */
static SubjectEntry *
read_one_subject(PurposeState *ps, SubjectKey key)
{
	SubjectEntry *e;
	bool		found;

	MemoPurpose = NULL;
	if (ps->subjects == NULL)
		ps->subjects = subjecthash_create(subjects_memory(ps), 1024, NULL);
	e = subjecthash_insert(ps->subjects, key, &found);
	if (!found)
	{
		e->key.data = arena_copy(ps, key.data, key.len);
		e->overrides = false;
		ps->nsubjects++;
	}
	e->a = NoAnswer;
	refresh_subject(ps, e);
	return e;
}

/* a subject this transaction changed: read for it alone, every time */
static const SubjectAnswer *
own_answer(PurposeState *ps, SubjectKey key)
{
	char	   *subject = pnstrdup(key.data, key.len);

	MemoPurpose = NULL;
	if (ps->own_cxt == NULL)
		ps->own_cxt = AllocSetContextCreate(ps->cxt, "profile_guard own answers",
											ALLOCSET_SMALL_SIZES);
	MemoryContextReset(ps->own_cxt);
	evaluate_subject(ps, subject, &ps->own, true, ps->own_cxt);
	pfree(subject);
	return &ps->own;
}

static const SubjectAnswer *
lookup_subject(PurposeState *ps, Datum subject, Oid typid)
{
	char		buf[SUBJECT_BUF_SIZE];
	SubjectKey	key;
	bool		have_key = false;
	SubjectEntry *e;
	SubjectAnswer *slot = NULL;
	bool		by_value = (typid == INT4OID || typid == INT8OID || typid == INT2OID);
	int64		v = 0;

	if (by_value)
	{
		v = typid == INT8OID ? DatumGetInt64(subject) :
			typid == INT4OID ? DatumGetInt32(subject) : DatumGetInt16(subject);
		if (MemoPurpose == ps && MemoType == typid && MemoValue == v &&
			answer_current(MemoAnswer))
			return MemoAnswer;
	}

	/* answers read since the bulk ones, or for this transaction alone */
	if (pfg_policy_any_subject_changed_here() || ps->overrides > 0)
	{
		key = subject_key(subject, typid, buf);
		have_key = true;
		if (pfg_policy_subject_changed_here(key.data, key.len))
			return own_answer(ps, key);
		if (ps->overrides > 0 &&
			(e = subjecthash_lookup(ps->subjects, key)) != NULL && e->overrides)
		{
			if (!answer_current(&e->a))
				refresh_subject(ps, e);
			return &e->a;
		}
	}

	if (by_value)
	{
		if (ps->shared != NULL)
		{
			const SubjectAnswer *a = shared_answer(ps, v);

			if (a != NULL)
			{
				if (a != &NoAnswer)
					remember(ps, typid, v, a);
				return a;
			}
			/* expired: our own entry below */
		}
		else if (ps->dense != NULL)
		{
			uint64		off = (uint64) v - (uint64) ps->dense_min;

			if (off >= ps->dense_n)
				return &NoAnswer;	/* loaded: not there, no consent */
			slot = &ps->dense[off];
			if (answer_current(slot))
			{
				remember(ps, typid, v, slot);
				return slot;
			}
			/* expired: refresh the entry below, then the copy */
		}
	}
	if (!have_key)
		key = subject_key(subject, typid, buf);
	if (ps->shared != NULL && !by_value)
	{
		int64		iv;
		const SubjectAnswer *a;

		/* every subject published is a canonical integer */
		if (!canonical_int64(key.data, key.len, &iv))
			return &NoAnswer;
		MemoPurpose = NULL;		/* the scratch answer changes */
		if ((a = shared_answer(ps, iv)) != NULL)
			return a;
	}
	else if (ps->shared_slots != NULL)
	{
		const SubjectAnswer *a = shared_hashed_answer(ps, key);

		if (a != NULL)
		{
			if (by_value && a != &NoAnswer)
				remember(ps, typid, v, a);
			else
				MemoPurpose = NULL; /* the scratch answer changes */
			return a;
		}
	}
	if (ps->subjects == NULL)
		ps->subjects = subjecthash_create(subjects_memory(ps), 1024, NULL);
	e = subjecthash_lookup(ps->subjects, key);
	if (e == NULL && ps->shared_slot >= 0)
		e = read_one_subject(ps, key);	/* a published answer expired */
	else if (e == NULL && !ps->loaded)
	{
		/*
		 * Not loaded in bulk yet: a statement that needs a few subjects (key
		 * look-ups) reads them one at a time with a prepared plan.  Once one
		 * statement has read LAZY_SUBJECTS that way, a scan is under way;
		 * once the backend has read a tenth of all subjects (at least
		 * LAZY_SUBJECTS_TOTAL), it is a long-lived connection serving many:
		 * either way one bulk load is cheaper from then on.
		 */
		TimestampTz stmt = GetCurrentStatementStartTimestamp();

		if (ps->lazy_statement != stmt)
		{
			ps->lazy_statement = stmt;
			ps->lazy_loads = 0;
		}
		/* once a statement: has a backend published them meanwhile? */
		if (ps->shared_checked != stmt)
		{
			ps->shared_checked = stmt;
			if (attach_shared(ps))
				return lookup_subject(ps, subject, typid);
		}
		if (ps->lazy_limit == 0)
		{
			/*
			 * A bulk load costs about a tenth of reading every subject one
			 * by one: worth it once a tenth of them has been read.
			 */
			Oid			subject_rel = pfg_catalog_relid("subject");
			double		estimate = 0;

			if (OidIsValid(subject_rel))
			{
				HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(subject_rel));

				if (HeapTupleIsValid(tup))
				{
					estimate = ((Form_pg_class) GETSTRUCT(tup))->reltuples;
					ReleaseSysCache(tup);
				}
			}
			ps->lazy_limit = Max(LAZY_SUBJECTS_TOTAL, estimate / 10);
		}
		/* while another backend loads them, only a scan loads its own */
		if (ps->lazy_loads < LAZY_SUBJECTS &&
			(ps->lazy_total < ps->lazy_limit || ps->others_loading))
		{
			ps->lazy_loads++;
			ps->lazy_total++;
			e = read_one_subject(ps, key);
		}
		else
		{
			load_subjects(ps);
			return lookup_subject(ps, subject, typid);
		}
	}
	if (e == NULL)
		return &NoAnswer;
	if (!answer_current(&e->a))
	{
		refresh_subject(ps, e);
		if (slot != NULL)
			*slot = e->a;
	}
	if (by_value)
		remember(ps, typid, v, slot != NULL ? slot : &e->a);
	return slot != NULL ? slot : &e->a;
}

bool
pfg_subject_row_visible(PurposeState *ps, Datum subject, Oid typid)
{
	return lookup_subject(ps, subject, typid)->row_visible;
}

bool
pfg_subject_tag_visible(PurposeState *ps, Datum subject, Oid typid, int tag_id)
{
	const SubjectAnswer *a = lookup_subject(ps, subject, typid);

	return a->row_visible && tag_id >= 0 && bms_is_member(tag_id, a->tags);
}
