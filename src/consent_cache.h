/*-------------------------------------------------------------------------
 *
 * consent_cache.h
 *	  Every subject's answer under a purpose (consent_cache.c): the
 *	  look-ups the gates make row by row, and the answers of a purpose,
 *	  which purpose.c hands to the gates once it has validated the purpose.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_CONSENT_CACHE_H
#define PROFILE_GUARD_CONSENT_CACHE_H

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/timestamp.h"

#include "answers.h"
#include "settings.h"

/*
 * What the answers handed out so far were built under, kept by
 * consent_cache.c and compared inline on every gate call: answers handed
 * out while drops was N stay valid while it is N and nothing else moved
 * (a policy signal, the age of majority, how a subject without a birth
 * date counts, the age time zone, the home country, which makes a
 * recipient's purpose cross-border: a setting
 * assigned again, even to the same value, is a new string).
 */
typedef struct PfgAnswersSeen
{
	uint64		drops;			/* advances whenever any answers are dropped */
	uint64		signals;		/* pfg_policy_signals last acted on */
	int			minor_age;		/* profile_guard.minor_age they follow */
	int			unknown_age;	/* profile_guard.unknown_age they follow */
	const char *age_time_zone;	/* the setting's value last seen */
	const char *home_country;	/* profile_guard.home_country, likewise */
} PfgAnswersSeen;

extern PfgAnswersSeen pfg_answers_seen;

static inline bool
pfg_answers_unmoved(void)
{
	return pfg_policy_signals == pfg_answers_seen.signals &&
		pfg_minor_age == pfg_answers_seen.minor_age &&
		pfg_unknown_age == pfg_answers_seen.unknown_age &&
		pfg_age_time_zone == pfg_answers_seen.age_time_zone &&
		pfg_home_country == pfg_answers_seen.home_country;
}

/* for purpose.c */
extern PurposeState *pfg_consent_answers(const char *name);
extern bool pfg_consent_answers_shared(const char *name);
extern uint64 pfg_consent_answers_basis(void);
extern uint64 pfg_consent_answers_drops(void);

/*
 * May answers handed out when pfg_consent_answers_drops() was 'drops' be
 * used as they are: none dropped since, and nothing they depend on moved?
 * Else pfg_consent_answers() brings them up to date.  Asked by every gate
 * call, through purpose.h's memo.
 */
static inline bool
pfg_consent_answers_current(uint64 drops)
{
	return drops == pfg_answers_seen.drops && pfg_answers_unmoved();
}

/* for the gates */
extern const SubjectAnswer *pfg_subject_answer(PurposeState *ps, Datum subject, Oid typid);
extern char *pfg_subject_text(Datum subject, Oid typid);
#define PFG_SUBJECT_BUF_SIZE 40
extern const char *pfg_subject_chars(Datum subject, Oid typid, char *buf, int *len);
extern bool pfg_subject_tag_collectable(Datum subject, Oid typid, int tag_id);

/*
 * A subject's answer, from the last look-up when the gates of one row ask
 * again for the same integer subject (the row gate, then each cell gate),
 * else from pfg_subject_answer().
 */
static inline const SubjectAnswer *
pfg_subject_answer_memo(PurposeState *ps, Datum subject, Oid typid)
{
	int64		v;
	const SubjectAnswer *a;

	if (typid == INT8OID)
		v = DatumGetInt64(subject);
	else if (typid == INT4OID)
		v = DatumGetInt32(subject);
	else if (typid == INT2OID)
		v = DatumGetInt16(subject);
	else
		return pfg_subject_answer(ps, subject, typid);
	a = ps->memo_answer;
	if (ps->memo_type == typid && ps->memo_value == v &&
		(a->valid_until == DT_NOEND ||
		 a->valid_until > GetCurrentStatementStartTimestamp()))
		return a;

	/*
	 * The next row's subject, read in place in the answers published in
	 * shared memory, when nothing of ours overrides them and the answer
	 * holds for good (the rest: pfg_subject_answer()).
	 */
	if (ps->shared != NULL && ps->overrides == 0 &&
		!pfg_policy_any_subject_changed_here())
	{
		uint64		off = (uint64) v - (uint64) ps->shared_min;

		if (off < ps->shared_n)
		{
			uint64		packed = pg_atomic_read_u64(unconstify(pg_atomic_uint64 *,
															   &ps->shared[off]));
			int32		set = answer_set(packed);

			if (answer_valid_until(packed) == DT_NOEND &&
				set < ps->shared_sets_decoded)
			{
				ps->scratch.tags = set >= 0 ? ps->shared_sets[set] : NULL;
				ps->scratch.row_visible = (ps->scratch.tags != NULL);
				ps->scratch.valid_until = DT_NOEND;
				ps->memo_type = typid;
				ps->memo_value = v;
				ps->memo_answer = &ps->scratch;
				return &ps->scratch;
			}
		}
	}
	return pfg_subject_answer(ps, subject, typid);
}

static inline bool
pfg_subject_row_visible(PurposeState *ps, Datum subject, Oid typid)
{
	return pfg_subject_answer_memo(ps, subject, typid)->row_visible;
}

/* may a subject with answer 'a' be served tag 'tag_id'? */
static inline bool
pfg_answer_tag_visible(const SubjectAnswer *a, int tag_id)
{
	const Bitmapset *tags = a->tags;

	/* bms_is_member(), without the call */
	return a->row_visible && tag_id >= 0 && tags != NULL &&
		tag_id / BITS_PER_BITMAPWORD < tags->nwords &&
		(tags->words[tag_id / BITS_PER_BITMAPWORD] &
		 ((bitmapword) 1 << (tag_id % BITS_PER_BITMAPWORD))) != 0;
}

static inline bool
pfg_subject_tag_visible(PurposeState *ps, Datum subject, Oid typid, int tag_id)
{
	return pfg_answer_tag_visible(pfg_subject_answer_memo(ps, subject, typid),
								  tag_id);
}

#endif							/* PROFILE_GUARD_CONSENT_CACHE_H */
