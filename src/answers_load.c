/*-------------------------------------------------------------------------
 *
 * answers_load.c
 *	  Reading a purpose's answers through the rules evaluator
 *	  (subject_rules.c, which the suites check against tag_state(), their
 *	  specification): every subject in one pass, published for the other
 *	  backends (answers_publish.c) unless this transaction changed policy;
 *	  one subject at a time; and, as the log of changed subjects grows
 *	  (policy_generation.c), each changed subject again, patched into the
 *	  published answers or into our own.  What is read and kept to
 *	  ourselves goes into private entries: a hash table of subjects' text,
 *	  their interned tag sets, and a dense copy indexed by integer subject.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "answers_load.h"
#include "answers_publish.h"
#include "bulk_rules.h"
#include "subject_rules.h"
#include "spi_checked.h"

/*
 * A catch-up that finds more changed subjects than this (and than a
 * twentieth of our own entries) rebuilds instead: one bulk pass is cheaper.
 */
#define CATCH_UP_MAX_SUBJECTS 20000

/* ---- private entries ---- */

/* the context of a purpose's private subject entries */
static MemoryContext
subjects_memory(PurposeState *ps)
{
	if (ps->subjects_cxt == NULL)
		ps->subjects_cxt = AllocSetContextCreate(ps->cxt, "profile_guard subjects",
												 ALLOCSET_DEFAULT_SIZES);
	return ps->subjects_cxt;
}

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

/* the table of a purpose's private entries, made when first needed */
subjecthash_hash *
pfg_answers_subjects(PurposeState *ps)
{
	if (ps->subjects == NULL)
		ps->subjects = subjecthash_create(subjects_memory(ps), 1024, NULL);
	return ps->subjects;
}

/* a subject's private entry, added (its key copied) when not there */
SubjectEntry *
pfg_answers_entry(PurposeState *ps, SubjectKey key, bool *found)
{
	SubjectEntry *e = subjecthash_insert(pfg_answers_subjects(ps), key, found);

	if (!*found)
	{
		e->key.data = arena_copy(ps, key.data, key.len);
		e->overrides = false;
		ps->nsubjects++;
	}
	return e;
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

/* our own answer for a subject: an entry that overrides the bulk answers */
static void
set_private_answer(PurposeState *ps, const char *subject, const SubjectAnswer *a,
				   bool overrides)
{
	SubjectKey	key;
	SubjectEntry *e;
	bool		found;

	key.data = subject;
	key.len = strlen(subject);
	e = pfg_answers_entry(ps, key, &found);
	if (overrides && !e->overrides)
		ps->overrides++;
	e->overrides |= overrides;
	e->a = *a;
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

/* Forget our private entries (the shared answers replace them). */
static void
drop_private_subjects(PurposeState *ps)
{
	forget_last_lookup(ps);
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

/* ---- reading through the rules evaluator ---- */

/*
 * Push the snapshot consent is read under (policy_generation.c).  Unless
 * this transaction changed policy (then it reads its own policy, and keeps
 * what it read to itself), it is blind to this transaction's own writes
 * (command 0 sees none of them): only committed answers are cached, and
 * subjects this transaction changed are read for it alone (consent_cache.c).
 */
static void
push_consent_snapshot(void)
{
	PushCopiedSnapshot(pfg_policy_snapshot());
	if (!pfg_policy_changed_here())
		GetActiveSnapshot()->curcid = FirstCommandId;
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
void
pfg_answers_evaluate(PurposeState *ps, const char *subject, SubjectAnswer *out,
					 bool own_view, MemoryContext cxt)
{
	PfgCatalogAccess ca;

	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, true);
	if (own_view)
		PushActiveSnapshot(pfg_policy_snapshot());
	else
		push_consent_snapshot();
	evaluate_in_spi(ps, subject, out, cxt);
	PopActiveSnapshot();
	pfg_end_catalog_access(&ca);
	pfg_spi_finish();
}

/* (Re-)read one subject: not cached yet, or past its valid_until. */
void
pfg_answers_refresh(PurposeState *ps, SubjectEntry *e)
{
	char	   *subject = pnstrdup(e->key.data, e->key.len);

	pfg_answers_evaluate(ps, subject, &e->a, false, NULL);
	pfree(subject);
}

/* ---- every subject in one pass ---- */

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
	e = pfg_answers_entry(ps, key, &found);
	if (found && e->overrides)
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
		if (!pfg_subject_canonical_int64(e->key.data, e->key.len, &v))
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
		(void) pfg_subject_canonical_int64(e->key.data, e->key.len, &v);
		ps->dense[(uint64) v - (uint64) min] = e->a;
	}
	ps->dense_min = min;
	ps->dense_n = n;
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

	(void) pfg_answers_subjects(ps);
	forget_last_lookup(ps);
	memset(&fill, 0, sizeof(fill));
	fill.ps = ps;

	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, false);
	push_consent_snapshot();
	pfg_policy_horizon_of(GetActiveSnapshot(), &ps->horizon, ps->cxt);
	(void) pfg_rules_evaluate_all(IS_COLLECT(ps) ? NULL : ps->name, fill_answer, &fill);
	PopActiveSnapshot();
	pfg_end_catalog_access(&ca);
	pfg_spi_finish();
	ps->loaded = true;
	build_dense(ps);
}

/*
 * Read the answers another backend (or we) published, in place of our
 * private entries; false if none.  They are then brought up to date with
 * the log of changed subjects.
 */
bool
pfg_answers_attach(PurposeState *ps)
{
	if (!pfg_answers_map_published(ps))
		return false;
	drop_private_subjects(ps);
	pfg_answers_catch_up(ps);
	return true;
}

/*
 * Every subject's answer under a purpose, in bulk, published for the other
 * backends (unless this transaction changed policy: then it must read its
 * own changes, and keeps what it read to itself).
 */
void
pfg_answers_load_all(PurposeState *ps)
{
	int			slot = -1;
	AnswersKey	key;
	bool		published = false;

	slot = pfg_shared_answers_begin_load(pfg_answers_key(ps, &key));
	if (slot == -2 && pfg_answers_attach(ps))
		return;					/* published meanwhile */
	if (slot < 0)
	{
		query_subjects(ps);
		return;
	}
	PG_TRY();
	{
		query_subjects(ps);
		published = pfg_answers_publish(ps, slot);
	}
	PG_CATCH();
	{
		pfg_shared_answers_finish_load(slot, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pfg_shared_answers_finish_load(slot, published);
	if (published)
		(void) pfg_answers_attach(ps);	/* else keep our own copy */
}

/* ---- the log of changed subjects ---- */

/* forget every answer read so far: the next look-ups start again */
static void
start_again(PurposeState *ps)
{
	pfg_answers_detach(ps);
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
 * it commits (its id is in every horizon it takes).  Too many changes, no
 * room left in the published answers, or entries of forgotten subjects
 * pruned from the log unread, and everything is read again.
 */
void
pfg_answers_catch_up(PurposeState *ps)
{
	PfgCatalogAccess ca;
	ChangeHorizon since;
	ChangeHorizon now;
	List	   *changed;
	ListCell   *lc;
	bool		shared = ps->shared_slot >= 0;
	bool		patch = shared && !IsInParallelMode();
	bool		again = false;
	MemoryContext each;

	forget_last_lookup(ps);
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
		pfg_answers_load_horizon(ps->shared_blob, &since);
		if (pfg_policy_horizon_covers(&since, pfg_policy_snapshot()))
		{
			pfree(since.xip);
			return;
		}
	}
	else
		since = ps->horizon;

	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, true);
	if (patch)
	{
		/*
		 * Patch under the lock, with what is committed once it is ours; the
		 * backend that held it may have patched what we would.
		 */
		pfg_shared_answers_lock_patch(ps->shared_slot);
		pfree(since.xip);
		pfg_answers_load_horizon(ps->shared_blob, &since);	/* freed by SPI_finish */
	}
	push_consent_snapshot();
	if (pfg_policy_horizon_covers(&since, GetActiveSnapshot()))
		changed = NIL;
	else
		changed = pfg_policy_changed_subjects(&since);
	if (list_length(changed) > Max(CATCH_UP_MAX_SUBJECTS, ps->nsubjects / 20))
		again = true;

	/*
	 * '' is never a subject: the entries of forgotten subjects were pruned
	 * from the log (_erasure_prepare()) before we read them, so whatever we
	 * hold of them is read again with everything else.
	 */
	foreach(lc, changed)
		if (*(const char *) lfirst(lc) == '\0')
			again = true;
	/*
	 * A catch-up may read thousands of subjects: each is read in an SPI
	 * connection of its own, so that what the rules' queries return and
	 * allocate goes when it finishes (in the caller's connection it would
	 * stay to the end, several kilobytes a subject), and a patch's answer
	 * lives in a context emptied after each subject.
	 */
	each = AllocSetContextCreate(CurrentMemoryContext, "profile_guard consent catch-up",
								 ALLOCSET_SMALL_SIZES);
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
		MemoryContextReset(each);
		pfg_spi_connect();
		evaluate_in_spi(ps, subject, &a, patch ? each : NULL);
		pfg_spi_finish();
		if (patch)
		{
			if (!pfg_answers_patch(ps, subject, &a))
				again = true;
			forget_entry(ps, subject);
		}
		else if (shared)
			set_private_answer(ps, subject, &a, true);
		else if (ps->dense != NULL)
		{
			int64		v;
			uint64		off = 0;

			if (pfg_subject_canonical_int64(subject, strlen(subject), &v) &&
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
	MemoryContextDelete(each);
	if (again && patch)
		pfg_shared_answers_retire(ps->shared_slot);
	if (!again)
	{
		MemoryContext old = MemoryContextSwitchTo(ps->cxt);

		pfg_policy_horizon_of(GetActiveSnapshot(), &now, CurrentMemoryContext);
		MemoryContextSwitchTo(old);
		if (patch)
			pfg_answers_store_horizon(unconstify(AnswersBlob *, ps->shared_blob), &now);
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
	pfg_spi_finish();
	if (shared && !patch)
		pfree(since.xip);
	if (again)
		start_again(ps);
}
