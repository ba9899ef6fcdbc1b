/*-------------------------------------------------------------------------
 *
 * consent_cache.c
 *	  Who may see what under which purpose: every subject's answer (its
 *	  visible tags, and until when that holds) under each purpose, as the
 *	  gates ask for it, row by row.  purpose.c validates the declared
 *	  purpose and hands its answers to the gates.
 *
 *	  The answers of a purpose are built in one pass over the catalog by the
 *	  rules evaluator (answers_load.c), published in shared memory
 *	  (answers_publish.c) as an array indexed by subject when the subjects
 *	  are dense integers, else as a hash table of their text, and read there
 *	  in place by every backend.  A statement that needs only a few subjects
 *	  before anything is built reads them one at a time.
 *
 *	  They follow policy_generation.c: a new policy generation rebuilds
 *	  them; a changed subject is read again alone, and patched into the
 *	  shared answers, from the next statement of every session.  What this
 *	  transaction changed itself is read for it alone, each time, and never
 *	  published.  An answer past its valid_until (a consent expired, a
 *	  birthday crossed an age threshold) is read again too.
 *
 *	  This file keeps the answers of the last few purposes, brings them up
 *	  to date, and answers the gates' look-ups.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "consent_cache.h"
#include "answers_load.h"
#include "answers_publish.h"
#include "subject_rules.h"

#define MAX_CACHED_PURPOSES 4
#define LAZY_SUBJECTS 256		/* one-by-one reads by one statement, and */
#define LAZY_SUBJECTS_TOTAL 4096	/* at least, by all, before a bulk load */

static MemoryContext ConsentCacheContext = NULL;
static PurposeState *Purposes[MAX_CACHED_PURPOSES];
static int	NPurposes = 0;

/* what every cached answer was built under */
static uint64 CachedGeneration = 0;
static int	CachedMinorAge = -1;	/* mirrored in pfg_answers_seen */
static int	CachedUnknownAge = -1;	/* mirrored in pfg_answers_seen */
static char CachedAgeTimeZone[NAMEDATALEN];
static char CachedHomeCountry[8];

static Oid	ConsentRelid = InvalidOid;	/* identifies the catalog */
static uint64 Basis = 0;		/* advances whenever all are dropped */

/* what the gates compare inline (consent_cache.h) */
PfgAnswersSeen pfg_answers_seen = {0, 0, -1, -1, NULL, NULL};

static void
free_purpose(PurposeState *ps)
{
	pfg_answers_detach(ps);
	MemoryContextDelete(ps->cxt);
	pfg_answers_seen.drops++;
}

static void
flush_purposes(void)
{
	pfg_rules_forget();
	for (int i = 0; i < NPurposes; i++)
		free_purpose(Purposes[i]);
	NPurposes = 0;
}

/*
 * Has anything the cached answers depend on moved since we last looked?
 * Asked by every gate call: a counter and two settings, compared without
 * a call (a setting assigned again, even to the same value, is a new
 * string).
 */
static inline bool
answers_may_be_stale(void)
{
	return !pfg_answers_unmoved();
}

/*
 * Bring the cached answers up to date, at most once per signal: a new
 * policy generation, age of majority, treatment of unknown ages, age
 * time zone or home country rebuilds them all;
 * changed subjects are read again one by one.
 */
static void
sync_answers(void)
{
	bool		settings_moved;

	pfg_answers_seen.signals = pfg_policy_signals;
	pfg_answers_seen.age_time_zone = pfg_age_time_zone;
	pfg_answers_seen.home_country = pfg_home_country;
	settings_moved = CachedMinorAge != pfg_minor_age ||
		CachedUnknownAge != pfg_unknown_age ||
		strcmp(CachedAgeTimeZone, pfg_age_time_zone) != 0 ||
		strcmp(CachedHomeCountry, pfg_home_country) != 0;
	if (pfg_policy_generation_signalled() || settings_moved)
	{
		uint64		generation = pfg_policy_generation_current();
		Oid			catalog = pfg_catalog_relid("consent");

		/* a re-created extension counts generations from the start again */
		if (generation != CachedGeneration || catalog != ConsentRelid ||
			settings_moved)
		{
			flush_purposes();
			Basis++;
			CachedGeneration = generation;
			ConsentRelid = catalog;
			CachedMinorAge = pfg_minor_age;
			pfg_answers_seen.minor_age = CachedMinorAge;
			CachedUnknownAge = pfg_unknown_age;
			pfg_answers_seen.unknown_age = CachedUnknownAge;
			strlcpy(CachedAgeTimeZone, pfg_age_time_zone,
					sizeof(CachedAgeTimeZone));
			strlcpy(CachedHomeCountry, pfg_home_country,
					sizeof(CachedHomeCountry));
		}
	}
	if (pfg_policy_subjects_signalled())
	{
		pfg_policy_subjects_signal_consumed();
		PG_TRY();
		{
			for (int i = 0; i < NPurposes; i++)
				pfg_answers_catch_up(Purposes[i]);
		}
		PG_CATCH();
		{
			pfg_policy_subjects_signal_again();
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
}

/*
 * The answers under a purpose (PFG_COLLECT_PURPOSE: under any in force),
 * brought up to date with the policy, for the gates to ask.  They stay
 * valid while pfg_consent_answers_drops() does not move: a later call may
 * drop them.
 */
PurposeState *
pfg_consent_answers(const char *name)
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
		free_purpose(Purposes[--NPurposes]);

	cxt = AllocSetContextCreate(ConsentCacheContext, "profile_guard purpose",
								ALLOCSET_DEFAULT_SIZES);
	ps = MemoryContextAllocZero(cxt, sizeof(PurposeState));
	ps->cxt = cxt;
	ps->shared_slot = -1;
	ps->generation = CachedGeneration;
	ps->consent_relid = ConsentRelid;
	strlcpy(ps->name, name, sizeof(ps->name));
	pfg_policy_horizon_of(pfg_policy_snapshot(), &ps->horizon, cxt);
	memmove(&Purposes[1], &Purposes[0], sizeof(PurposeState *) * NPurposes);
	Purposes[0] = ps;
	NPurposes++;
	return ps;
}

/*
 * A number that advances whenever every purpose's answers are dropped: a
 * new policy generation, catalog, age of majority or age time zone.  What
 * is read from the catalog under one policy generation (purpose.c's
 * definitions) is kept while it holds.
 */
uint64
pfg_consent_answers_basis(void)
{
	return Basis;
}

/* a number that advances whenever any purpose's answers are dropped */
uint64
pfg_consent_answers_drops(void)
{
	return pfg_answers_seen.drops;
}

/* ---- the gates' look-ups ---- */

/*
 * Text form of a subject datum, without allocation for the common types.
 * 'buf' must hold SUBJECT_BUF_SIZE bytes.
 */
#define SUBJECT_BUF_SIZE (Max(MAXINT8LEN + 1, 2 * UUID_LEN + 5))
StaticAssertDecl(SUBJECT_BUF_SIZE <= PFG_SUBJECT_BUF_SIZE,
				 "PFG_SUBJECT_BUF_SIZE holds a subject's text form");

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
 * The same, not terminated, in buf (PFG_SUBJECT_BUF_SIZE bytes) or in the
 * datum itself (text) or in palloc'd memory (other types): the gates' form,
 * with no allocation for integer, uuid and text subjects.
 */
const char *
pfg_subject_chars(Datum subject, Oid typid, char *buf, int *len)
{
	SubjectKey	k = subject_key(subject, typid, buf);

	*len = k.len;
	return k.data;
}

/*
 * May a tag be collected for a subject?  Rule 6: only when some purpose in
 * force has an effective consent covering it.
 */
bool
pfg_subject_tag_collectable(Datum subject, Oid typid, int tag_id)
{
	PurposeState *ps = pfg_consent_answers(PFG_COLLECT_PURPOSE);

	return pfg_subject_tag_visible(ps, subject, typid, tag_id);
}

static inline bool
answer_current(const SubjectAnswer *a)
{
	return a->valid_until == DT_NOEND ||
		a->valid_until > GetCurrentStatementStartTimestamp();
}

static inline void
remember(PurposeState *ps, Oid typid, int64 v, const SubjectAnswer *a)
{
	ps->memo_type = typid;
	ps->memo_value = v;
	ps->memo_answer = a;
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
		pfg_answers_decode_sets(ps);
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

/*
 * Are purpose 'name''s answers published in shared memory, this backend
 * reading them there (attached now if it was not)?  The workers of a
 * parallel plan read them there; otherwise each would load them all for
 * itself (parallel_gates.c keeps such a plan to the leader, which loads
 * and publishes them).
 */
bool
pfg_consent_answers_shared(const char *name)
{
	PurposeState *ps = pfg_consent_answers(name);

	if (ps->shared_slot >= 0 && !pfg_shared_answers_retired(ps->shared_slot))
		return true;
	return pfg_answers_attach(ps) && ps->shared_slot >= 0;
}

/* A private entry for one subject, read now (entries may move: no memo). */
static SubjectEntry *
read_one_subject(PurposeState *ps, SubjectKey key)
{
	SubjectEntry *e;
	bool		found;

	forget_last_lookup(ps);
	e = pfg_answers_entry(ps, key, &found);
	e->a = NoAnswer;
	/*
	 * Expired until read: an error (a cancel) that stops the read leaves
	 * the entry to be read again at its next look-up, not a standing "no
	 * consent" that would hide the subject for the rest of the session.
	 */
	e->a.valid_until = DT_NOBEGIN;
	pfg_answers_refresh(ps, e);
	return e;
}

/* a subject this transaction changed: read for it alone, every time */
static const SubjectAnswer *
own_answer(PurposeState *ps, SubjectKey key)
{
	char	   *subject = pnstrdup(key.data, key.len);

	forget_last_lookup(ps);
	if (ps->own_cxt == NULL)
		ps->own_cxt = AllocSetContextCreate(ps->cxt, "profile_guard own answers",
											ALLOCSET_SMALL_SIZES);
	MemoryContextReset(ps->own_cxt);
	pfg_answers_evaluate(ps, subject, &ps->own, true, ps->own_cxt);
	pfree(subject);
	return &ps->own;
}

/*
 * A subject's answer under a purpose: the last look-up's, a published one,
 * our own entry, or one read now (consent_cache.h asks the last look-up
 * first, inline).
 */
const SubjectAnswer *
pfg_subject_answer(PurposeState *ps, Datum subject, Oid typid)
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
		if (ps->memo_type == typid && ps->memo_value == v &&
			answer_current(ps->memo_answer))
			return ps->memo_answer;
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
				pfg_answers_refresh(ps, e);
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
		if (!pfg_subject_canonical_int64(key.data, key.len, &iv))
			return &NoAnswer;
		forget_last_lookup(ps);		/* the scratch answer changes */
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
				forget_last_lookup(ps); /* the scratch answer changes */
			return a;
		}
	}
	e = subjecthash_lookup(pfg_answers_subjects(ps), key);
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
			if (pfg_answers_attach(ps))
				return pfg_subject_answer(ps, subject, typid);
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
			pfg_answers_load_all(ps);
			return pfg_subject_answer(ps, subject, typid);
		}
	}
	if (e == NULL)
		return &NoAnswer;
	if (!answer_current(&e->a))
	{
		pfg_answers_refresh(ps, e);
		if (slot != NULL)
			*slot = e->a;
	}
	if (by_value)
		remember(ps, typid, v, slot != NULL ? slot : &e->a);
	return slot != NULL ? slot : &e->a;
}
