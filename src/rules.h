/*-------------------------------------------------------------------------
 *
 * rules.h
 *	  The consent rules in C (rules.c), as the two paths that feed them see
 *	  them: the definitions (RuleCatalog), sets of tags, one subject's facts
 *	  and consent events (RulesSubject, RulesEvent), its ages, and the rule
 *	  code that turns them into an answer.  subject_rules.c reads one
 *	  subject's rows with queries, bulk_rules.c every subject's with heap
 *	  scans; both build these structures and call pfg_rules_apply().
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_RULES_H
#define PROFILE_GUARD_RULES_H

#include "common/hashfn.h"
#include "nodes/bitmapset.h"
#include "utils/date.h"
#include "utils/timestamp.h"

/*
 * Sets of tags are arrays of RuleCatalog.nwords bitmapwords, indexed by the
 * tag's position in the catalog (not its tag_id): the rules work on them
 * word by word.
 */
#define TAGSET_WORD(i)		((i) / BITS_PER_BITMAPWORD)
#define TAGSET_BIT(i)		((bitmapword) 1 << ((i) % BITS_PER_BITMAPWORD))

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
	bool		personalised;	/* opt-out switches it off (every marketing one) */
	bool		retired;
	bool		unassessed;		/* needs an assessment of its version: automated
								 * decisions, cross-border */
	bool		cross_border;	/* its recipient is abroad: every tag needs
								 * separate consent */
	bool		standing;		/* a lawful basis other than consent (rule 9a) */
	bool		legal_obligation;	/* reads what a legal hold keeps (rule 9b) */
	bitmapword *in_scope;		/* tags its tag list covers (all: no list) */
	bitmapword *named;			/* tags its tag list names, not by a pattern */
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
	/* scratch of pfg_rules_apply */
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
	int16		purpose;		/* index in the catalog; -1: no event (a
								 * registered subject met for the purposes
								 * not based on consent) */
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
	TimestampTz held_until;		/* if SUBJECT_HELD: when the last active
								 * hold ends (DT_NOEND: not by itself) */
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
#define SUBJECT_HELD		0x40	/* under an active legal hold */

/* a subject's ages, as of today */
typedef struct RulesAge
{
	bool		minor;
	bool		under_14;
	TimestampTz minor_until;	/* if minor */
	TimestampTz child_until;	/* if under_14 */
} RulesAge;

static const RulesAge NoAge = {false, false, DT_NOEND, DT_NOEND};

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

static inline bitmapword *
tagset_new(const RuleCatalog *rc)
{
	return palloc0(sizeof(bitmapword) * rc->nwords);
}

extern Bitmapset *pfg_rules_tagset_ids(const RuleCatalog *rc, const bitmapword *set);
extern int	pfg_rules_tag_index(const RuleCatalog *rc, const char *name, uint32 len);
extern void pfg_rules_tag_list_covers(const RuleCatalog *rc, Datum list, bool isnull,
									  bitmapword *out);

/* ---- the definitions ---- */

extern RuleCatalog *pfg_rules_load(MemoryContext parent);
extern int	pfg_rules_purpose_index(const RuleCatalog *rc, const char *name, uint32 len);
extern bool pfg_rules_choose_purposes(const RuleCatalog *rc, const char *purpose,
									  bool **target);
extern bool pfg_rules_any_standing(const RuleCatalog *rc, const bool *target);
extern void pfg_rules_hold(RulesSubject *s, bool released, bool has_until,
						   TimestampTz until, TimestampTz now);

/* ---- ages ---- */

extern DateADT pfg_rules_date_in_age_zone(TimestampTz t);
extern void pfg_rules_compute_age(DateADT birth, DateADT today, RulesAge *age);
extern const RulesAge *pfg_rules_unknown_age(void);

/* ---- the rules ---- */

extern bool pfg_rules_apply(RuleCatalog *rc, const bool *target, const RulesSubject *s,
							const bitmapword *blocks, const RulesAge *age,
							TimestampTz now, bitmapword *visible,
							TimestampTz *valid_until);

#endif							/* PROFILE_GUARD_RULES_H */
