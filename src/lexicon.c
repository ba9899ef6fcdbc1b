/*-------------------------------------------------------------------------
 *
 * lexicon.c
 *	  The prohibited lexicon as the write path reads it (rule 13): the
 *	  terms of profile_guard.prohibited_term, held in backend memory and
 *	  matched against tag values without a query per value.
 *
 *	  The terms are read once (with the rights of our schema's owner) and
 *	  kept until the next policy signal (policy_generation.c) or until their
 *	  table is dropped:
 *	  add_prohibited_term and remove_prohibited_term advance the policy
 *	  generation, which signals every backend once committed.  Within a
 *	  transaction that changed the policy, the terms are read again for
 *	  every value, so that its own changes count at once.
 *
 *	  Matching follows prohibited_topic() in sql/ext/30_taxonomy.sql: the
 *	  text is lower-cased (lower() of the database's collation; plain ASCII
 *	  text without "I", byte by byte, which gives the same) and every
 *	  run of ".", "_", "-" and white space becomes one space; a term of
 *	  ASCII characters only matches a whole word (not preceded or followed
 *	  by an ASCII letter or digit), any other term matches as a substring.
 *	  Terms other than ASCII ones are tried first, in topic and term order,
 *	  then the ASCII term that starts first in the text (the longest of
 *	  those that start there): at each byte that starts a word, only the
 *	  ASCII terms beginning with that byte are compared (AsciiByByte).  A
 *	  term other than ASCII whose first byte the text does not hold is not
 *	  searched for.  The terms of a topic exempted for the
 *	  category of the value's tag (prohibited_topic_exemption) are skipped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "invalidation.h"
#include "lexicon.h"
#include "policy_generation.h"
#include "spi_checked.h"

typedef struct LexiconTerm
{
	char	   *term;			/* in normal form */
	int			len;
	bool		ascii;
	char	   *topic;
	int			topicno;		/* index into Topics */
} LexiconTerm;

/* a topic exempted for the tags of a category, read as (topic, tag) pairs */
typedef struct LexiconExemption
{
	int			topicno;
	char	   *tag;
} LexiconExemption;

static MemoryContext LexiconContext = NULL;
static LexiconTerm *Terms = NULL;
static int	NTerms = 0;
static char **Topics = NULL;	/* distinct topics of Terms */
static int	NTopics = 0;
static LexiconExemption *Exemptions = NULL;
static int	NExemptions = 0;
static bool *TopicExempt = NULL;	/* per call: topics exempted for the tag */

/*
 * The ASCII terms grouped by their first byte, each group in Terms' order:
 * AsciiByByte[AsciiFirst[b] .. AsciiFirst[b + 1]) index the terms that
 * start with byte b.
 */
static int *AsciiByByte = NULL;
static int	AsciiFirst[257];
static int *OtherTerms = NULL;	/* the other terms, in Terms' order */
static int	NOtherTerms = 0;
static bool Loaded = false;
static uint64 LoadedSignals = 0;
static Oid	LoadedRelid = InvalidOid;

static bool
is_separator(unsigned char c)
{
	return c == '.' || c == '_' || c == '-' || c == ' ' || c == '\t' ||
		c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool
is_word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/*
 * What plain text becomes in normal form, byte by byte: the ASCII lower
 * case of a letter or digit or other character, PLAIN_SEPARATOR for a
 * separator, and PLAIN_NONE for a byte that is not plain: one beyond
 * ASCII, a NUL, or "I" (which lowers to a dotless i in Turkish and
 * Azerbaijani collations), so that lower() of any collation maps the text
 * byte by byte to its ASCII lower case when it holds none.
 */
#define PLAIN_SEPARATOR		0x00
#define PLAIN_NONE			0xFF
static unsigned char PlainNormal[256];
static bool WordByte[256];		/* is_word_byte(), as a table */
static bool PlainNormalReady = false;

static void
plain_normal_init(void)
{
	for (int c = 0; c < 256; c++)
	{
		if (c >= 0x80 || c == 'I' || c == '\0')
			PlainNormal[c] = PLAIN_NONE;
		else if (is_separator((unsigned char) c))
			PlainNormal[c] = PLAIN_SEPARATOR;
		else
			PlainNormal[c] = pg_ascii_tolower((unsigned char) c);
		WordByte[c] = is_word_byte((unsigned char) c);
	}
	PlainNormalReady = true;
}

/*
 * The normal form of plain text (above) into out, which has room for
 * len + 1 bytes: its length, or -1 when s is not plain.  The one pass
 * every tag value takes on the write path.
 */
static int
normalise_plain(const char *s, int len, char *out)
{
	int			n = 0;
	bool		space = false;

	if (unlikely(!PlainNormalReady))
		plain_normal_init();
	for (int i = 0; i < len; i++)
	{
		unsigned char c = PlainNormal[(unsigned char) s[i]];

		if (c == PLAIN_SEPARATOR)
		{
			space = (n > 0);
			continue;
		}
		if (unlikely(c == PLAIN_NONE))
			return -1;
		if (space)
		{
			out[n++] = ' ';
			space = false;
		}
		out[n++] = (char) c;
	}
	out[n] = '\0';
	return n;
}

/*
 * The normal form of a text: lower case, separators collapsed to one
 * space, no space at either end.  Plain text shorter than bufsize goes into
 * buf (the caller's, or NULL); anything else is palloc'd in the current
 * context.  Its length goes to *normlen, and to *ascii whether it holds
 * ASCII bytes only.
 */
static char *
normalise(const char *s, int len, char *buf, int bufsize,
		  int *normlen, bool *ascii)
{
	text	   *lowered;
	const char *low;
	int			lowlen;
	char	   *out = len < bufsize ? buf : palloc(len + 1);
	int			n = 0;
	bool		space = false;
	unsigned char high = 0;		/* every byte copied, or'ed */

	if ((n = normalise_plain(s, len, out)) >= 0)
	{
		*normlen = n;
		*ascii = true;
		return out;
	}
	if (out != buf)
		pfree(out);
	lowered = DatumGetTextPP(DirectFunctionCall1Coll(lower, DEFAULT_COLLATION_OID,
													 PointerGetDatum(cstring_to_text_with_len(s, len))));
	low = VARDATA_ANY(lowered);
	lowlen = VARSIZE_ANY_EXHDR(lowered);
	out = palloc(lowlen + 1);
	n = 0;
	for (int i = 0; i < lowlen; i++)
	{
		unsigned char c = (unsigned char) low[i];

		if (is_separator(c))
		{
			space = (n > 0);
			continue;
		}
		if (space)
		{
			out[n++] = ' ';
			space = false;
		}
		high |= c;
		out[n++] = (char) c;
	}
	out[n] = '\0';
	*normlen = n;
	*ascii = (high < 0x80);
	return out;
}

/* AsciiByByte, AsciiFirst and OtherTerms for Terms, in the current context */
static void
group_terms(void)
{
	int			next[256];

	OtherTerms = palloc(sizeof(int) * (NTerms + 1));
	NOtherTerms = 0;
	for (int i = 0; i < NTerms; i++)
		if (!Terms[i].ascii)
			OtherTerms[NOtherTerms++] = i;

	memset(AsciiFirst, 0, sizeof(AsciiFirst));
	for (int i = 0; i < NTerms; i++)
		if (Terms[i].ascii)
			AsciiFirst[(unsigned char) Terms[i].term[0] + 1]++;
	for (int b = 0; b < 256; b++)
		AsciiFirst[b + 1] += AsciiFirst[b];
	AsciiByByte = palloc(sizeof(int) * (AsciiFirst[256] + 1));
	memcpy(next, AsciiFirst, sizeof(next));
	for (int i = 0; i < NTerms; i++)
		if (Terms[i].ascii)
			AsciiByByte[next[(unsigned char) Terms[i].term[0]]++] = i;
}

/* read the terms into LexiconContext */
static void
load_terms(void)
{
	PfgCatalogAccess ca;
	int			rc;
	MemoryContext old;

	if (LexiconContext == NULL)
		LexiconContext = AllocSetContextCreate(TopMemoryContext,
											   "profile_guard lexicon",
											   ALLOCSET_SMALL_SIZES);
	MemoryContextReset(LexiconContext);
	Terms = NULL;
	NTerms = 0;
	Topics = NULL;
	NTopics = 0;
	Exemptions = NULL;
	NExemptions = 0;
	TopicExempt = NULL;
	AsciiByByte = NULL;
	memset(AsciiFirst, 0, sizeof(AsciiFirst));
	OtherTerms = NULL;
	NOtherTerms = 0;
	Loaded = false;

	pfg_begin_catalog_access(&ca, false);
	pfg_spi_connect();
	rc = SPI_execute("SELECT term, topic FROM profile_guard.prohibited_term"
					 " ORDER BY topic, term", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the prohibited lexicon: %s", SPI_result_code_string(rc));
	old = MemoryContextSwitchTo(LexiconContext);
	Terms = palloc0(sizeof(LexiconTerm) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *term = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *topic = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		LexiconTerm *t;

		if (term == NULL || topic == NULL)
			continue;
		t = &Terms[NTerms];
		t->term = normalise(term, strlen(term), NULL, 0, &t->len, &t->ascii);
		if (t->len == 0)
			continue;
		/* ordered by topic: a new topic starts a new entry */
		if (NTopics == 0 || strcmp(Topics[NTopics - 1], topic) != 0)
		{
			if (Topics == NULL)
				Topics = palloc(sizeof(char *) * (SPI_processed + 1));
			Topics[NTopics++] = pstrdup(topic);
		}
		t->topic = Topics[NTopics - 1];
		t->topicno = NTopics - 1;
		NTerms++;
	}
	TopicExempt = palloc0(sizeof(bool) * (NTopics + 1));
	group_terms();
	MemoryContextSwitchTo(old);

	/* the exemptions, per tag (none in a catalog of a version without them) */
	if (NTopics > 0 && OidIsValid(pfg_catalog_relid("prohibited_topic_exemption")))
	{
		rc = SPI_execute("SELECT e.topic, t.tag FROM profile_guard.prohibited_topic_exemption e"
						 " JOIN profile_guard.tag t ON t.category = e.category"
						 " ORDER BY 1, 2", true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not read the prohibited topic exemptions: %s",
				 SPI_result_code_string(rc));
		old = MemoryContextSwitchTo(LexiconContext);
		Exemptions = palloc0(sizeof(LexiconExemption) * (SPI_processed + 1));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			char	   *topic = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
			char	   *tag = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

			for (int j = 0; j < NTopics; j++)
			{
				if (strcmp(Topics[j], topic) == 0)
				{
					Exemptions[NExemptions].topicno = j;
					Exemptions[NExemptions].tag = pstrdup(tag);
					NExemptions++;
					break;
				}
			}
		}
		MemoryContextSwitchTo(old);
	}
	pfg_spi_finish();
	pfg_end_catalog_access(&ca);
	Loaded = true;
}

/*
 * The terms, read again after any policy signal (compared without reading
 * the generation: that read would consume the signal the consent cache
 * acts on), or when their table was dropped (a re-created extension: the
 * relcache invalidation, below).
 */
static void
refresh(void)
{
	uint64		signals = pfg_policy_signals;

	if (Loaded && !pfg_policy_changed_here() && signals == LoadedSignals)
		return;
	load_terms();
	LoadedSignals = signals;
	LoadedRelid = pfg_catalog_relid("prohibited_term");
}

/* invalidation.c: a relation's relcache entry is invalid (InvalidOid: all) */
void
pfg_lexicon_relcache_invalidated(Oid relid)
{
	if (!OidIsValid(relid) || relid == LoadedRelid)
		Loaded = false;
}

/*
 * The longest ASCII term that occurs in s (normal form, n bytes) as a whole
 * word starting at byte p (which no ASCII letter or digit precedes), the
 * first in Terms' order of those as long; NULL if none.
 */
static const LexiconTerm *
word_at(const char *s, int n, int p, bool any_exempt)
{
	unsigned char b = (unsigned char) s[p];
	const LexiconTerm *best = NULL;

	for (int k = AsciiFirst[b]; k < AsciiFirst[b + 1]; k++)
	{
		const LexiconTerm *t = &Terms[AsciiByByte[k]];

		if (t->len > n - p || (best != NULL && t->len <= best->len) ||
			(any_exempt && TopicExempt[t->topicno]))
			continue;
		/* the second byte first (s[p + 1] exists: t->len <= n - p) */
		if (t->len > 1 && s[p + 1] != t->term[1])
			continue;
		if (memcmp(s + p, t->term, t->len) == 0 &&
			!WordByte[(unsigned char) s[p + t->len]])
			best = t;
	}
	return best;
}

const char *
pfg_lexicon_topic(const char *value, int len, const char *tag)
{
	char		stackbuf[256];
	char	   *norm;
	int			n;
	bool		ascii;
	const char *topic = NULL;
	bool		any_exempt = false;

	refresh();
	if (NTerms == 0 || len == 0)
		return NULL;
	/* the topics exempted for the tag's category */
	if (NExemptions > 0)
	{
		memset(TopicExempt, 0, sizeof(bool) * NTopics);
		for (int i = 0; i < NExemptions; i++)
			if (tag != NULL && strcmp(Exemptions[i].tag, tag) == 0)
				TopicExempt[Exemptions[i].topicno] = any_exempt = true;
	}
	/* short plain text (most tag values) is normalised on the stack */
	norm = normalise(value, len, stackbuf, sizeof(stackbuf), &n, &ascii);
	if (n > 0)
	{
		/*
		 * Terms other than ASCII, in a text that holds a byte other than
		 * ASCII (else none can occur), if the text holds their first byte
		 */
		if (!ascii)
		{
			bool		present[256] = {false};

			for (const unsigned char *c = (const unsigned char *) norm; *c; c++)
				present[*c] = true;
			for (int k = 0; k < NOtherTerms && topic == NULL; k++)
			{
				const LexiconTerm *t = &Terms[OtherTerms[k]];

				if (!(any_exempt && TopicExempt[t->topicno]) &&
					present[(unsigned char) t->term[0]] &&
					strstr(norm, t->term) != NULL)
					topic = t->topic;
			}
		}
		/*
		 * The ASCII term that starts first, at the start of a word: at 0,
		 * and after each byte that is not a letter or digit.  A start whose
		 * byte begins no term is passed over without looking for one.
		 */
		for (int p = 0; p < n && topic == NULL;)
		{
			unsigned char b = (unsigned char) norm[p];
			const LexiconTerm *t;

			if (AsciiFirst[b] != AsciiFirst[b + 1] &&
				(t = word_at(norm, n, p, any_exempt)) != NULL)
				topic = t->topic;
			/* the next start: past the rest of this word and the byte after */
			if (WordByte[b])
				while (++p < n && WordByte[(unsigned char) norm[p]])
					;
			p++;
		}
	}
	if (norm != stackbuf)
		pfree(norm);
	return topic;
}
