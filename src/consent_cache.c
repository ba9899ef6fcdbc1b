/*-------------------------------------------------------------------------
 *
 * consent_cache.c
 *	  Who may see what under which purpose: a backend-local cache, per
 *	  declared purpose, of every subject's visible tags, loaded in one pass
 *	  over the catalog by the rules in C (subject_rules.c, which the suites
 *	  check against tag_state(), their specification) and dropped when
 *	  policy or consent changes.  Also the validation of the declared
 *	  purpose itself (exists, not retired, allowed to the role, assessed
 *	  when automated).
 *
 *	  Per-row look-ups never query the catalog: a subject's entry is read
 *	  on its own (the same rules, from the subject's own rows) when a
 *	  statement needs only a few subjects, or when it has passed its
 *	  valid_until (a consent expired, a birthday crossed an age threshold).
 *
 *	  A bulk load is published in shared memory (shared_answers.c), as an
 *	  array indexed by subject when the subjects are dense integers, else as
 *	  a hash table of their text; other backends then read it there rather
 *	  than loading their own, and the loader drops its private copy.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

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
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "profile_guard.h"
#include "consent_cache.h"
#include "audit.h"
#include "invalidation.h"
#include "shared_answers.h"
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
	 * shared memory; then 'subjects' only holds entries re-read after their
	 * valid_until.
	 */
	int			shared_slot;	/* -1: none */
	const SharedAnswer *shared; /* dense: by subject - shared_min */
	int64		shared_min;
	uint64		shared_n;
	const HashedAnswer *shared_slots;	/* hashed: by the subject's text */
	const char *shared_keys;
	uint64		shared_mask;
	Bitmapset **shared_sets;
	TimestampTz shared_checked; /* statement that last looked for them */
	bool		others_loading; /* another backend is loading them */
	SubjectAnswer scratch;		/* the last shared answer handed out */
};

#define MAX_CACHED_PURPOSES 4
#define LAZY_SUBJECTS 256		/* one-by-one reads by one statement, and */
#define LAZY_SUBJECTS_TOTAL 4096	/* at least, by all, before a bulk load */
#define COLLECT_PURPOSE "*"	/* pseudo-purpose: union of those in force */

static MemoryContext ConsentCacheContext = NULL;
static PurposeState *Purposes[MAX_CACHED_PURPOSES];
static int	NPurposes = 0;
static bool PurposesStale = false;
static Oid	ConsentRelid = InvalidOid;	/* our invalidation sentinel */

/*
 * A cache loaded under a transaction snapshot (REPEATABLE READ, SERIALIZABLE)
 * may miss changes committed meanwhile, whose invalidations have already
 * been consumed: such a cache lives only until the transaction ends.
 */
static bool FlushAtTransactionEnd = false;

/* bypass memo, reset when pg_authid changes */
static Oid	BypassMemoUser = InvalidOid;
static bool BypassMemo = false;

static void load_definition(PurposeState *ps);
static void load_subjects(PurposeState *ps);
static void refresh_subject(PurposeState *ps, SubjectEntry *e);

static void
free_purpose(PurposeState *ps)
{
	if (ps->shared_slot >= 0)
		pg_shared_answers_release(ps->shared_slot);
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
	pg_rules_forget();
	for (int i = 0; i < NPurposes; i++)
		free_purpose(Purposes[i]);
	NPurposes = 0;
	PurposesStale = false;
}

/*
 * Invalidation (invalidation.c): only mark.  Memory is released at the next
 * look-up, never under the feet of a gate function that holds an entry.
 * Marked even while no purpose is cached: the first purpose may be loading
 * (find_or_create_purpose), and what it read may predate this change.
 */
void
consent_cache_relcache_invalidated(Oid relid)
{
	if (relid == InvalidOid || relid == ConsentRelid)
		PurposesStale = true;
}

void
consent_cache_roles_invalidated(void)
{
	BypassMemoUser = InvalidOid;
	/* roles' memberships may have changed: re-validate purposes */
	for (int i = 0; i < NPurposes; i++)
		Purposes[i]->validated_for = InvalidOid;
}

static void
consent_xact_callback(XactEvent event, void *arg)
{
	if (FlushAtTransactionEnd &&
		(event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		 event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		 event == XACT_EVENT_PREPARE))
	{
		PurposesStale = true;
		FlushAtTransactionEnd = false;
	}
}

static void
note_snapshot_scope(void)
{
	if (IsolationUsesXactSnapshot())
		FlushAtTransactionEnd = true;
}

/* profile_guard.minor_age or age_time_zone changed: every answer may differ */
void
pg_consent_cache_invalidate(void)
{
	if (NPurposes > 0)
		PurposesStale = true;
}

void
pg_consent_cache_init(void)
{
	RegisterXactCallback(consent_xact_callback, NULL);
}

/* Superusers and BYPASSRLS roles read raw stored values (rule 11). */
bool
pg_current_user_bypasses(void)
{
	Oid			user = GetUserId();

	if (user != BypassMemoUser)
	{
		BypassMemo = superuser_arg(user) || has_bypassrls_privilege(user);
		BypassMemoUser = user;
	}
	return BypassMemo;
}

static PurposeState *
find_or_create_purpose(const char *name)
{
	PurposeState *ps;
	MemoryContext cxt;

	if (PurposesStale)
		flush_purposes();
	if (NPurposes == 0)
		ConsentRelid = pg_catalog_relid("consent");
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
	PgCatalogAccess ca;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			rc;

	args[0] = CStringGetTextDatum(ps->name);
	note_snapshot_scope();
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	pg_begin_catalog_access(&ca, false);
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
	pg_end_catalog_access(&ca);
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
	if (LastPurpose != NULL && !PurposesStale &&
		LastPurposeGeneration == generation &&
		LastPurpose->validated_for == user)
		return LastPurpose;

	if (pg_current_user_bypasses())
		return NULL;

	if (name == NULL || name[0] == '\0')
		pg_refuse(PG_REFUSAL_NO_PURPOSE, tag,
				  (errcode(PGERR_NO_PURPOSE),
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
		pg_refuse(PG_REFUSAL_UNKNOWN_PURPOSE, tag,
				  (errcode(PGERR_UNKNOWN_PURPOSE),
				 errmsg("purpose \"%s\" does not exist", name),
				 errdetail("profile_guard.purpose names a purpose that was never defined."),
				 errhint("Declare a defined purpose, or define it with profile_guard.define_purpose().")));
	if (ps->retired)
		pg_refuse(PG_REFUSAL_PURPOSE_UNUSABLE, tag,
				  (errcode(PGERR_PURPOSE_UNUSABLE),
				 errmsg("purpose \"%s\" is retired", name),
				 errdetail("Profile tags cannot be used for a retired purpose."),
				 errhint("Declare a purpose that is still in force.")));
	{
		bool		allowed = false;

		for (int i = 0; i < ps->nroles && !allowed; i++)
			allowed = has_privs_of_role(user, ps->roles[i]);
		if (!allowed)
			pg_refuse(PG_REFUSAL_PURPOSE_NOT_ALLOWED, tag,
					  (errcode(PGERR_PURPOSE_NOT_ALLOWED),
					 errmsg("role \"%s\" may not use purpose \"%s\"",
							GetUserNameFromId(user, false), name),
					 errdetail("Only roles allowed the purpose may declare it."),
					 errhint("An administrator can allow it: SELECT profile_guard.allow_purpose('%s', '%s').",
							 GetUserNameFromId(user, false), name)));
	}
	if (ps->unassessed)
		pg_refuse(PG_REFUSAL_PURPOSE_UNUSABLE, tag,
				  (errcode(PGERR_PURPOSE_UNUSABLE),
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
pg_purpose_for_statement(Oid relid, const char *tag)
{
	if (PgAuditCur->purpose_fixed)
		return resolve_purpose(PgAuditCur->purpose, PgAuditCur->purpose_generation,
							   relid, tag);
	return resolve_purpose(profile_guard_purpose, profile_guard_purpose_generation,
						   relid, tag);
}

/* the purpose in force now: for checks made as a statement starts */
PurposeState *
pg_purpose_now(Oid relid, const char *tag)
{
	return resolve_purpose(profile_guard_purpose, profile_guard_purpose_generation,
						   relid, tag);
}

/* is a purpose declared for the running statement? */
bool
pg_statement_purpose_declared(void)
{
	const char *name = PgAuditCur->purpose_fixed ? PgAuditCur->purpose : profile_guard_purpose;

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

static Bitmapset *intern_set(PurposeState *ps, Bitmapset *set);

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
		ps->nsubjects++;
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

#define IS_COLLECT(ps) (strcmp((ps)->name, COLLECT_PURPOSE) == 0)

/*
 * Every subject's answer under a purpose (or, for the collection
 * pseudo-purpose, the union over the purposes in force), in one pass of the
 * C evaluator over the catalog.
 */
static void
query_subjects(PurposeState *ps, bool fresh_snapshot)
{
	PgCatalogAccess ca;
	BulkFill	fill;
	int			rc;

	if (ps->subjects == NULL)
		ps->subjects = subjecthash_create(subjects_memory(ps), 1024, NULL);
	MemoPurpose = NULL;
	memset(&fill, 0, sizeof(fill));
	fill.ps = ps;

	note_snapshot_scope();
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	pg_begin_catalog_access(&ca, false);
	/*
	 * Answers to publish: loaded under a snapshot taken after the epoch was
	 * read, and blind to this transaction's own writes (command 0 sees none
	 * of them), so that only committed policy is ever shared.  The evaluator
	 * reads every table under the active snapshot.
	 */
	if (fresh_snapshot)
	{
		PushCopiedSnapshot(GetTransactionSnapshot());
		GetActiveSnapshot()->curcid = FirstCommandId;
	}
	(void) pg_rules_evaluate_all(IS_COLLECT(ps) ? NULL : ps->name, fill_answer, &fill);
	if (fresh_snapshot)
		PopActiveSnapshot();
	pg_end_catalog_access(&ca);
	SPI_finish();
	ps->loaded = true;
	build_dense(ps);
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

/*
 * Copy the answers into a slot's shared room: the dense array as it is, or
 * every entry into an open-addressing table of subjects' text (at most half
 * full).  False if there is no room.
 */
static bool
publish_answers(PurposeState *ps, int slot)
{
	int			nsets = list_length(ps->interned);
	int			set_words = 1;
	Bitmapset **sets;
	AnswersBlob *blob;
	bitmapword *words;
	Bitmapset  *last_tags = NULL;
	int32		last_set = -1;
	AnswersKind kind = ps->dense != NULL ? ANSWERS_DENSE : ANSWERS_HASHED;
	uint64		n;
	Size		key_bytes = 0;
	int			i = 0;
	ListCell   *lc;

	sets = palloc(sizeof(Bitmapset *) * Max(nsets, 1));
	foreach(lc, ps->interned)
	{
		sets[i++] = (Bitmapset *) lfirst(lc);
		set_words = Max(set_words, sets[i - 1]->nwords);
	}
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
	}
	blob = pg_shared_answers_alloc(slot, answers_blob_size(nsets, set_words, kind,
														   n, key_bytes));
	if (blob == NULL)
		return false;
	blob->kind = kind;
	blob->nsets = nsets;
	blob->set_words = set_words;
	blob->dense_min = ps->dense_min;
	blob->n = n;
	words = ANSWERS_BLOB_SETS(blob);
	memset(words, 0, sizeof(bitmapword) * (Size) nsets * set_words);
	for (i = 0; i < nsets; i++)
		memcpy(words + (Size) i * set_words, sets[i]->words,
			   sizeof(bitmapword) * sets[i]->nwords);
	if (kind == ANSWERS_DENSE)
	{
		SharedAnswer *answers = ANSWERS_BLOB_ANSWERS(blob);

		for (uint64 k = 0; k < n; k++)
		{
			answers[k].set = set_index(sets, ps->dense[k].tags, &last_tags, &last_set);
			answers[k].valid_until = ps->dense[k].valid_until;
		}
	}
	else
	{
		HashedAnswer *slots = ANSWERS_BLOB_SLOTS(blob);
		char	   *keys = ANSWERS_BLOB_KEYS(blob);
		Size		key_off = 0;
		subjecthash_iterator it;
		SubjectEntry *e;

		for (uint64 k = 0; k < n; k++)
			slots[k].key_off = HASHED_EMPTY;
		subjecthash_start_iterate(ps->subjects, &it);
		while ((e = subjecthash_iterate(ps->subjects, &it)) != NULL)
		{
			uint32		h = hash_bytes((const unsigned char *) e->key.data, e->key.len);
			uint64		k = h & (n - 1);

			while (slots[k].key_off != HASHED_EMPTY)
				k = (k + 1) & (n - 1);
			memcpy(keys + key_off, e->key.data, e->key.len);
			slots[k].key_off = key_off;
			slots[k].key_len = e->key.len;
			slots[k].hash = h;
			slots[k].answer.set = set_index(sets, e->a.tags, &last_tags, &last_set);
			slots[k].answer.valid_until = e->a.valid_until;
			key_off += e->key.len;
		}
	}
	pfree(sets);
	return true;
}

static const AnswersKey *
answers_key(PurposeState *ps, AnswersKey *key)
{
	key->purpose = ps->name;
	key->minor_age = profile_guard_minor_age;
	key->age_time_zone = profile_guard_age_time_zone;
	key->consent_relid = ConsentRelid;
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
	ps->dense = NULL;
	ps->dense_n = 0;
	ps->interned = NIL;
	ps->arena = NULL;
	ps->arena_used = ps->arena_size = 0;
	ps->nsubjects = 0;
}

/* Read the answers another backend (or we) published; false if none. */
static bool
attach_shared(PurposeState *ps)
{
	int			slot;
	AnswersKey	key;
	const AnswersBlob *blob;
	const bitmapword *words;
	MemoryContext old;

	blob = pg_shared_answers_attach(answers_key(ps, &key), &slot,
									&ps->others_loading);
	if (blob == NULL)
		return false;
	old = MemoryContextSwitchTo(ps->cxt);
	ps->shared_sets = palloc0(sizeof(Bitmapset *) * Max(blob->nsets, 1));
	words = ANSWERS_BLOB_SETS(blob);
	for (int i = 0; i < blob->nsets; i++)
		for (int w = 0; w < blob->set_words; w++)
			for (int bit = 0; bit < BITS_PER_BITMAPWORD; bit++)
				if (words[(Size) i * blob->set_words + w] & ((bitmapword) 1 << bit))
					ps->shared_sets[i] = bms_add_member(ps->shared_sets[i],
														w * BITS_PER_BITMAPWORD + bit);
	MemoryContextSwitchTo(old);
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
	drop_private_subjects(ps);
	ps->loaded = true;
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

	slot = pg_shared_answers_begin_load(answers_key(ps, &key));
	if (slot == -2 && attach_shared(ps))
		return;					/* published meanwhile */
	if (slot < 0)
	{
		query_subjects(ps, false);
		return;
	}
	PG_TRY();
	{
		query_subjects(ps, true);
		published = publish_answers(ps, slot);
	}
	PG_CATCH();
	{
		pg_shared_answers_finish_load(slot, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pg_shared_answers_finish_load(slot, published);
	if (published)
		(void) attach_shared(ps);	/* else keep our own copy */
}

/* the interned copy of a tag set */
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

/*
 * (Re-)read one subject: not cached yet, or past its valid_until.  The
 * rules run in C on the subject's own rows (subject_rules.c), which the
 * suites check against tag_state().
 */
static void
refresh_subject(PurposeState *ps, SubjectEntry *e)
{
	PgCatalogAccess ca;
	char	   *subject = pnstrdup(e->key.data, e->key.len);
	Bitmapset  *visible;
	TimestampTz valid_until;
	int			rc;

	note_snapshot_scope();
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	pg_begin_catalog_access(&ca, true);
	if (pg_rules_evaluate(IS_COLLECT(ps) ? NULL : ps->name, subject,
						  &visible, &valid_until))
	{
		e->a.tags = intern_set(ps, visible);
		e->a.row_visible = (e->a.tags != NULL);
		e->a.valid_until = valid_until;
	}
	else
		e->a = NoAnswer;
	pg_end_catalog_access(&ca);
	SPI_finish();
	pfree(subject);
}

/*
 * Text form of a subject datum, without allocation for the common types.
 * 'buf' must hold at least MAXINT8LEN + 1 bytes.
 */
static SubjectKey subject_key(Datum subject, Oid typid, char *buf);

/* the subject as text, as consents name it (palloc'd) */
char *
pg_subject_text(Datum subject, Oid typid)
{
	char		buf[MAXINT8LEN + 1];
	SubjectKey	k = subject_key(subject, typid, buf);

	return pnstrdup(k.data, k.len);
}

/*
 * May a tag be collected for a subject?  Rule 6: only when some purpose in
 * force has an effective consent covering it.
 */
bool
pg_subject_tag_collectable(Datum subject, Oid typid, int tag_id)
{
	PurposeState *ps = find_or_create_purpose(COLLECT_PURPOSE);

	return pg_subject_tag_visible(ps, subject, typid, tag_id);
}

static SubjectKey
subject_key(Datum subject, Oid typid, char *buf)
{
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

#define DENSE_MIN_SUBJECTS 1024
#define DENSE_MAX_SPREAD 2		/* slots per subject, at most */

/* After a bulk load: index the answers by integer when that is compact. */
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
	ps->dense = MemoryContextAllocHuge(subjects_memory(ps), n * sizeof(SubjectAnswer));
	for (uint64 i = 0; i < n; i++)
	{
		ps->dense[i].row_visible = false;
		ps->dense[i].tags = NULL;
		ps->dense[i].valid_until = DT_NOEND;
	}
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
 * insertion (entries may move) and on flush.
 */
static Oid	MemoType = InvalidOid;
static int64 MemoValue = 0;
static SubjectAnswer *MemoAnswer = NULL;


static inline bool
answer_current(const SubjectAnswer *a)
{
	return a->valid_until == DT_NOEND ||
		a->valid_until > GetCurrentStatementStartTimestamp();
}

/*
 * A published answer, in ps->scratch (valid until the next one); NULL when
 * it is past its valid_until.
 */
static inline const SubjectAnswer *
scratch_answer(PurposeState *ps, const SharedAnswer *sa)
{
	if (sa->valid_until != DT_NOEND &&
		sa->valid_until <= GetCurrentStatementStartTimestamp())
		return NULL;
	ps->scratch.tags = sa->set >= 0 ? ps->shared_sets[sa->set] : NULL;
	ps->scratch.row_visible = (ps->scratch.tags != NULL);
	ps->scratch.valid_until = sa->valid_until;
	return &ps->scratch;
}

/* ... of an integer subject, from a dense array */
static inline const SubjectAnswer *
shared_answer(PurposeState *ps, int64 v)
{
	uint64		off = (uint64) v - (uint64) ps->shared_min;

	if (off >= ps->shared_n)
		return &NoAnswer;		/* not a subject: no consent */
	return scratch_answer(ps, &ps->shared[off]);
}

/* ... of any subject, from a table of their text */
static const SubjectAnswer *
shared_hashed_answer(PurposeState *ps, SubjectKey key)
{
	uint32		h = hash_bytes((const unsigned char *) key.data, key.len);
	uint64		k = h & ps->shared_mask;

	for (;;)
	{
		const HashedAnswer *slot = &ps->shared_slots[k];

		if (slot->key_off == HASHED_EMPTY)
			return &NoAnswer;	/* not a subject: no consent */
		if (slot->hash == h && slot->key_len == key.len &&
			memcmp(ps->shared_keys + slot->key_off, key.data, key.len) == 0)
			return scratch_answer(ps, &slot->answer);
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
	e = subjecthash_insert(ps->subjects, key, &found);
	e->key.data = arena_copy(ps, key.data, key.len);
	e->a = NoAnswer;
	ps->nsubjects++;
	refresh_subject(ps, e);
	return e;
}

static const SubjectAnswer *
lookup_subject(PurposeState *ps, Datum subject, Oid typid)
{
	char		buf[MAXINT8LEN + 1];
	SubjectKey	key;
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
		if (ps->shared != NULL)
		{
			const SubjectAnswer *a = shared_answer(ps, v);

			if (a != NULL)
			{
				MemoPurpose = ps;
				MemoType = typid;
				MemoValue = v;
				MemoAnswer = (SubjectAnswer *) a;
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
				MemoPurpose = ps;
				MemoType = typid;
				MemoValue = v;
				MemoAnswer = slot;
				return slot;
			}
			/* expired: refresh the entry below, then the copy */
		}
	}
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
			if (by_value)
			{
				MemoPurpose = ps;
				MemoType = typid;
				MemoValue = v;
				MemoAnswer = (SubjectAnswer *) a;
			}
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
		 * either way one set-based load is cheaper from then on.
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
			Oid			subject_rel = pg_catalog_relid("subject");
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
	{
		MemoPurpose = ps;
		MemoType = typid;
		MemoValue = v;
		MemoAnswer = slot != NULL ? slot : &e->a;
	}
	return slot != NULL ? slot : &e->a;
}

bool
pg_subject_row_visible(PurposeState *ps, Datum subject, Oid typid)
{
	return lookup_subject(ps, subject, typid)->row_visible;
}

bool
pg_subject_tag_visible(PurposeState *ps, Datum subject, Oid typid, int tag_id)
{
	const SubjectAnswer *a = lookup_subject(ps, subject, typid);

	return a->row_visible && tag_id >= 0 && bms_is_member(tag_id, a->tags);
}
