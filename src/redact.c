/*-------------------------------------------------------------------------
 *
 * redact.c
 *	  Values of guarded tables never appear in error messages (rule 10 of
 *	  docs/rules.md), in any language of lc_messages.  emit_log_hook runs before a
 *	  message is written to the server log and sent to the client, and
 *	  calls pfg_redact_emit_log (hooks.c); for an error that concerns a
 *	  guarded relation it replaces the values it quotes with "(redacted)":
 *	    - "Key (cols)=(values) ..." details of unique, exclusion and
 *	      foreign-key violations keep the columns, lose the values;
 *	    - "Failing row contains (...)" details (not-null, check, partition)
 *	      lose the row;
 *	    - data exceptions (class 22: "invalid input syntax for type
 *	      integer: "..."", out of range, enum, array and JSON input) lose
 *	      the quoted value, in the message and the detail;
 *	    - the context (COPY lines, "SQL statement "...""), the internal
 *	      query and the log's STATEMENT line are dropped or redacted.
 *
 *	  What is rewritten is decided by what the error is, never by its
 *	  wording: the SQLSTATE class (integrity violation, data exception),
 *	  the untranslated message id (edata->message_id) and the relation.
 *	  The text is read only where it is known to be PostgreSQL's English:
 *	    - a data exception's message formatted from an untranslated message
 *	      id loses what its ASCII quotes enclose; one formatted from a
 *	      translation becomes that translation with every argument
 *	      redacted (languages quote with »…«, « … », «…», "…");
 *	    - details and context lines keep no untranslated form: they are
 *	      rewritten in place only while no message catalogue is in effect
 *	      (the message id and the English formats rewritten here have no
 *	      translation); otherwise the whole detail of an integrity
 *	      violation or a data exception, and the whole context, become
 *	      "(redacted)".
 *
 *	  An error concerns a guarded relation when
 *	    - it names one, or a partition or inheritance child of one
 *	      (edata->schema_name/table_name, set by constraint errors, also
 *	      of utility statements: a unique index that cannot be built, a
 *	      foreign key that does not validate), or it is an integrity
 *	      violation whose message or detail names one (a foreign key of
 *	      another table referencing it), or
 *	    - it was raised while a statement that touches a guarded relation
 *	      was executing (hooks.c pushes pfg_redact_error_callback around
 *	      the execution of every statement that audit.c finds touches a
 *	      guarded relation; it marks the error by its SQLSTATE as it is
 *	      raised), or
 *	    - it is a data exception and the client's statement mentions a
 *	      guarded relation by name (errors raised during parse analysis,
 *	      before any executor runs), or this backend does not know yet
 *	      which relations are guarded (fail closed) -- unless shared memory
 *	      says that its database guards none: every backend that loads the
 *	      names publishes how many there are, per database, so that a new
 *	      backend's first statement in a database without guarded tables
 *	      (PostgreSQL's own regression suite, say) keeps its messages.  A
 *	      count holds only while the policy epoch it was loaded under
 *	      (shared_answers.c) is current: any committed policy change makes
 *	      every count unknown.
 *
 *	  The hook runs in error context: it reads no catalog (the names of
 *	  guarded relations are loaded beforehand, in normal context, by
 *	  pfg_redact_refresh) and allocates only the replacement strings.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_inherits.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "redact.h"
#include "shared_answers.h"
#include "invalidation.h"

#define REDACTED "(redacted)"

typedef struct GuardedName
{
	Oid			relid;
	char	   *nspname;
	char	   *relname;
} GuardedName;

static MemoryContext RedactContext = NULL;
static bool NamesKnown = false;	/* false: reload at the next chance */
static GuardedName *Names = NULL;
static int	NNames = 0;
static Oid	SentinelRelid = InvalidOid; /* profile_guard.consent */
static bool ExtensionAbsent = false;	/* known: none, until any DDL */
static uint64 NamesFlushes = 0; /* invalidations while not known */

/*
 * Shared: how many relations each database guards, as last loaded by any
 * backend under a policy epoch (absent, or another epoch: unknown).  A
 * fixed table; a database that finds no free slot stays unknown (fail
 * closed).
 */
#define GUARDED_COUNT_SLOTS 256

typedef struct GuardedCount
{
	Oid			dbid;
	int			nguarded;
	uint64		epoch;			/* the policy epoch read before loading */
} GuardedCount;

typedef struct GuardedCounts
{
	slock_t		mutex;
	GuardedCount slot[GUARDED_COUNT_SLOTS];
} GuardedCounts;

static GuardedCounts *Counts = NULL;

/* shared memory (shmem.c): the counts' size, and their set-up */
Size
pfg_redact_shmem_size(void)
{
	return MAXALIGN(sizeof(GuardedCounts));
}

/* called with AddinShmemInitLock held */
void
pfg_redact_shmem_startup(void)
{
	bool		found;

	Counts = ShmemInitStruct("profile_guard guarded counts", sizeof(GuardedCounts), &found);
	if (!found)
	{
		SpinLockInit(&Counts->mutex);
		for (int i = 0; i < GUARDED_COUNT_SLOTS; i++)
		{
			Counts->slot[i].dbid = InvalidOid;
			Counts->slot[i].nguarded = -1;
			Counts->slot[i].epoch = 0;
		}
	}
}

/*
 * Publish what this backend loaded under 'epoch' (0: an epoch that cannot
 * be trusted, publish nothing).  A transaction that changed policy loaded
 * its own uncommitted changes: it publishes nothing either.
 */
static void
publish_count(int nguarded, uint64 epoch)
{
	int			free_slot = -1;

	if (Counts == NULL || !OidIsValid(MyDatabaseId) || epoch == 0 ||
		pfg_policy_changed_in_xact())
		return;
	SpinLockAcquire(&Counts->mutex);
	for (int i = 0; i < GUARDED_COUNT_SLOTS; i++)
	{
		if (Counts->slot[i].dbid == MyDatabaseId)
		{
			Counts->slot[i].nguarded = nguarded;
			Counts->slot[i].epoch = epoch;
			free_slot = -2;
			break;
		}
		if (free_slot == -1 && !OidIsValid(Counts->slot[i].dbid))
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		Counts->slot[free_slot].dbid = MyDatabaseId;
		Counts->slot[free_slot].nguarded = nguarded;
		Counts->slot[free_slot].epoch = epoch;
	}
	SpinLockRelease(&Counts->mutex);
}

/* does this database surely guard nothing?  (no catalog: error context) */
static bool
database_guards_none(void)
{
	bool		none = false;
	uint64		epoch = pfg_policy_epoch();

	if (Counts == NULL || !OidIsValid(MyDatabaseId) || epoch == 0)
		return false;
	SpinLockAcquire(&Counts->mutex);
	for (int i = 0; i < GUARDED_COUNT_SLOTS; i++)
		if (Counts->slot[i].dbid == MyDatabaseId)
		{
			none = (Counts->slot[i].nguarded == 0 && Counts->slot[i].epoch == epoch);
			break;
		}
	SpinLockRelease(&Counts->mutex);
	return none;
}

/* the SQLSTATE of an error raised inside a guarded statement, until emitted */
static bool PendingSet = false;
static int	PendingCode = 0;

/* ---- the names of guarded relations ---- */

/*
 * Invalidation (invalidation.c).  While the names are not known, a load may
 * be under way (pfg_redact_refresh) and what it has read may predate this
 * change: every invalidation is counted then, and the load starts over.
 */
void
pfg_redact_relcache_invalidated(Oid relid)
{
	if (!NamesKnown)
	{
		NamesFlushes++;
		return;
	}
	if (relid == InvalidOid || relid == SentinelRelid || ExtensionAbsent)
	{
		NamesKnown = false;
		return;
	}
	for (int i = 0; i < NNames; i++)
		if (Names[i].relid == relid)
			NamesKnown = false;	/* renamed, dropped, moved */
}

/* append one relation to Names (in RedactContext), growing it as needed */
static void
add_name(Oid relid, char *relname, int *max)
{
	if (NNames == *max)
	{
		*max *= 2;
		Names = repalloc(Names, sizeof(GuardedName) * *max);
	}
	Names[NNames].relid = relid;
	Names[NNames].relname = relname;
	Names[NNames].nspname = get_namespace_name(get_rel_namespace(relid));
	NNames++;
}

/*
 * Read the names of the guarded relations, and of the partitions and
 * inheritance children below them, into Names; *epoch is the policy epoch
 * they were read under.  Returns how many relations are guarded in their
 * own right.  Opening a table accepts invalidation messages: the caller
 * checks that none came in meanwhile.
 */
static int
load_names(uint64 *epoch)
{
	Oid			guarded;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	MemoryContext old;
	int			max = 16;
	int			nguarded;

	/* the epoch first, then a catalog snapshot taken after it */
	*epoch = pfg_policy_epoch();
	InvalidateCatalogSnapshot();
	if (RedactContext == NULL)
		RedactContext = AllocSetContextCreate(TopMemoryContext,
											  "profile_guard redaction",
											  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(RedactContext);
	Names = NULL;
	NNames = 0;
	guarded = pfg_catalog_relid("guarded_table");
	SentinelRelid = pfg_catalog_relid("consent");
	ExtensionAbsent = !OidIsValid(guarded) || !OidIsValid(SentinelRelid);
	if (ExtensionAbsent)
		return 0;				/* until it is created: any relcache change
								 * reloads */

	/*
	 * Dropped while we waited for the lock (DROP EXTENSION committing):
	 * taking it took in the invalidation, which makes the caller read again
	 */
	rel = try_table_open(guarded, AccessShareLock);
	if (rel == NULL)
	{
		NamesFlushes++;
		return 0;
	}
	old = MemoryContextSwitchTo(RedactContext);
	Names = palloc(sizeof(GuardedName) * max);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(heap_getattr(tup, 1, RelationGetDescr(rel), &isnull));
		char	   *relname;

		if (isnull || (relname = get_rel_name(relid)) == NULL)
			continue;
		add_name(relid, relname, &max);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	/*
	 * Their partitions and inheritance children, at any depth: an error
	 * that names one names a guarded relation (attaching or detaching one,
	 * or making one, invalidates its parent)
	 */
	nguarded = NNames;
	for (int i = 0; i < nguarded; i++)
	{
		ListCell   *lc;

		foreach(lc, find_all_inheritors(Names[i].relid, NoLock, NULL))
		{
			Oid			relid = lfirst_oid(lc);
			char	   *relname;

			if (relid == Names[i].relid || (relname = get_rel_name(relid)) == NULL)
				continue;
			add_name(relid, relname, &max);
		}
	}
	MemoryContextSwitchTo(old);
	return nguarded;
}

/*
 * Load the names of the guarded relations, when they may have changed.
 * Called at the start of every statement (parse analysis, executor,
 * utility); a no-op unless an invalidation came in.
 */
void
pfg_redact_refresh(void)
{
	uint64		flushes;
	uint64		epoch;
	int			nguarded;

	if (NamesKnown || !IsTransactionState())
		return;
	do
	{
		CHECK_FOR_INTERRUPTS();
		flushes = NamesFlushes;
		nguarded = load_names(&epoch);
	} while (flushes != NamesFlushes);
	NamesKnown = true;
	publish_count(nguarded, epoch);
}

static bool
names_guarded(const char *nspname, const char *relname)
{
	for (int i = 0; i < NNames; i++)
		if (strcmp(Names[i].relname, relname) == 0 &&
			(nspname == NULL || Names[i].nspname == NULL ||
			 strcmp(Names[i].nspname, nspname) == 0))
			return true;
	return false;
}

/* does a text mention a guarded relation by name? (no catalog) */
static bool
mentions_guarded(const char *q)
{
	if (q == NULL)
		return false;
	for (int i = 0; i < NNames; i++)
	{
		size_t		len = strlen(Names[i].relname);

		for (const char *p = q; *p; p++)
			if (pg_strncasecmp(p, Names[i].relname, len) == 0)
				return true;
	}
	return false;
}

/*
 * Does the statement mention a guarded relation: the client's statement,
 * or a nested one that the context or the internal query quotes (a
 * function body parsed at its first call)?
 */
static bool
statement_mentions_guarded(ErrorData *edata)
{
	if (!NamesKnown)
		return !database_guards_none(); /* fail closed, unless surely none */
	return mentions_guarded(debug_query_string) ||
		mentions_guarded(edata->context) ||
		mentions_guarded(edata->internalquery);
}

/* ---- marking errors raised inside guarded statements ---- */

/*
 * Error context callback, pushed by hooks.c around the execution of every
 * statement that touches a guarded relation.  It runs as the error is
 * raised; the message is emitted later, after the stack has unwound.
 */
void
pfg_redact_error_callback(void *arg)
{
	int			code = geterrcode();

	/* notices and log lines (ours among them) must not hide an error */
	if (ERRCODE_TO_CATEGORY(code) == ERRCODE_SUCCESSFUL_COMPLETION ||
		ERRCODE_TO_CATEGORY(code) == ERRCODE_WARNING ||
		ERRCODE_TO_CATEGORY(code) == ERRCODE_NO_DATA)
		return;
	PendingCode = code;
	PendingSet = true;
}

static void
redact_xact_callback(XactEvent event, void *arg)
{
	/* a top-level error is emitted before its transaction aborts */
	PendingSet = false;
}

/* ---- the language of the message ---- */

/*
 * The English formats of the details and context lines that are rewritten
 * in place below ("Key (cols)=(values) ...", "Failing row contains ...",
 * the COPY line, the SQL statement, the JSON document).  While any of them
 * has a translation under the current lc_messages, a message catalogue is
 * in effect and no detail or context is read as English.
 */
static const char *const english_formats[] = {
	"Key %s already exists.",
	"Key %s conflicts with existing key %s.",
	"Key %s conflicts with key %s.",
	"Key (%s)=(%s) is not present in table \"%s\".",
	"Key (%s)=(%s) is still referenced from table \"%s\".",
	"Key %s is duplicated.",
	"Failing row contains %s.",
	"Partition key of the failing row contains %s.",
	"COPY %s, line %llu, column %s: \"%s\"",
	"COPY %s, line %llu: \"%s\"",
	"SQL statement \"%s\"",
	"JSON data, line %d: %s%s%s",
};

/* does the message catalogue of 'domain' translate 'id'? */
static bool
translated(const char *domain, const char *id)
{
	return strcmp(dgettext(domain, id), id) != 0;
}

/*
 * Are the error's texts in English, as PostgreSQL wrote them?  Its message
 * id has no translation, and none of the formats rewritten in place has
 * one: no message catalogue is in effect (lc_messages C or English, or a
 * language whose catalogue is not installed).
 */
static bool
error_in_english(const ErrorData *edata)
{
	const char *domain = edata->domain ? edata->domain : PG_TEXTDOMAIN("postgres");

	if (edata->message_id && translated(domain, edata->message_id))
		return false;
	for (int i = 0; i < lengthof(english_formats); i++)
		if (translated(PG_TEXTDOMAIN("postgres"), english_formats[i]))
			return false;
	return !translated(PG_TEXTDOMAIN("plpgsql"), "PL/pgSQL function %s line %d at %s");
}

/*
 * A format with every conversion replaced by REDACTED: what a message
 * formatted from it says, without any of its arguments.
 */
static char *
redact_format(const char *fmt)
{
	StringInfoData buf;
	const char *p = fmt;

	initStringInfo(&buf);
	while (*p)
	{
		if (*p != '%')
		{
			appendStringInfoChar(&buf, *p++);
			continue;
		}
		p++;
		if (*p == '%')
		{
			appendStringInfoChar(&buf, *p++);
			continue;
		}
		/* argument position, flags, width, precision, length modifier */
		while (*p && strchr("0123456789$#-+ '.*hlLqjzt", *p))
			p++;
		if (*p)
			p++;				/* the conversion */
		appendStringInfoString(&buf, REDACTED);
	}
	return buf.data;
}

/* ---- rewriting the message ---- */

/* every line: from its first to its last double quote becomes REDACTED */
static char *
redact_quoted(const char *s)
{
	StringInfoData buf;
	const char *line = s;

	if (s == NULL || strchr(s, '"') == NULL)
		return (char *) s;
	initStringInfo(&buf);
	while (*line)
	{
		const char *eol = strchr(line, '\n');
		const char *end = eol ? eol : line + strlen(line);
		const char *first = memchr(line, '"', end - line);
		const char *last = NULL;

		for (const char *p = end - 1; first && p >= first; p--)
			if (*p == '"')
			{
				last = p;
				break;
			}
		if (first == NULL)
			appendBinaryStringInfo(&buf, line, end - line);
		else
		{
			appendBinaryStringInfo(&buf, line, first - line);
			appendStringInfoString(&buf, REDACTED);
			if (last > first)
				appendBinaryStringInfo(&buf, last + 1, end - last - 1);
		}
		if (eol == NULL)
			break;
		appendStringInfoChar(&buf, '\n');
		line = eol + 1;
	}
	return buf.data;
}

/*
 * The primary message of a data exception.  When PostgreSQL formatted it
 * from its untranslated message id, the values it quotes are between ASCII
 * double quotes; when from a translation, the message becomes that
 * translation with every argument redacted (quoting differs between
 * languages: »…«, « … », «…»).  An error without a message id (one relayed
 * from a parallel worker) is kept only in English, its quotes redacted.
 */
static char *
redact_message(const ErrorData *edata, bool english)
{
	const char *domain = edata->domain ? edata->domain : PG_TEXTDOMAIN("postgres");

	if (edata->message == NULL)
		return NULL;
	if (edata->message_id == NULL)
		return english ? redact_quoted(edata->message) : pstrdup(REDACTED);
	if (translated(domain, edata->message_id))
		return redact_format(dgettext(domain, edata->message_id));
	return redact_quoted(edata->message);
}

/* JSON input errors quote the document in the context, unquoted */
static char *
redact_context(const char *s)
{
	StringInfoData buf;
	const char *line = s;

	if (s == NULL)
		return NULL;
	initStringInfo(&buf);
	while (*line)
	{
		const char *eol = strchr(line, '\n');
		const char *end = eol ? eol : line + strlen(line);

		if (strncmp(line, "JSON data", 9) == 0)
			appendStringInfoString(&buf, "JSON data " REDACTED);
		else
			appendBinaryStringInfo(&buf, line, end - line);
		if (eol == NULL)
			break;
		appendStringInfoChar(&buf, '\n');
		line = eol + 1;
	}
	return redact_quoted(buf.data);
}

/* the last occurrence of 'needle' in 's' at or after 'from' */
static const char *
last_occurrence(const char *from, const char *needle)
{
	const char *found = NULL;
	const char *p = from;

	while ((p = strstr(p, needle)) != NULL)
	{
		found = p;
		p++;
	}
	return found;
}

/*
 * "Key (cols)=(values) <suffix>" and "... row contains (row)." details.
 * Returns NULL when the detail has neither form.  A value that imitates a
 * suffix does not help: what follows the key is located by the last
 * occurrence of the suffix, and everything before it is dropped.
 */
static char *
redact_key_detail(const char *s)
{
	const char *p;

	if (strncmp(s, "Key (", 5) == 0 && (p = strstr(s + 5, ")=(")) != NULL)
	{
		int			collen = p - (s + 5);
		const char *cols = s + 5;
		const char *m;

		if ((m = last_occurrence(p, ") conflicts with existing key (")) != NULL)
			return psprintf("Key (%.*s)=" REDACTED " conflicts with existing key (%.*s)=" REDACTED ".",
							collen, cols, collen, cols);
		if ((m = last_occurrence(p, ") conflicts with key (")) != NULL)
			return psprintf("Key (%.*s)=" REDACTED " conflicts with key (%.*s)=" REDACTED ".",
							collen, cols, collen, cols);
		if ((m = last_occurrence(p, ") is not present in table \"")) != NULL ||
			(m = last_occurrence(p, ") is still referenced from table \"")) != NULL ||
			(m = last_occurrence(p, ") already exists.")) != NULL ||
			(m = last_occurrence(p, ") is duplicated.")) != NULL)
			return psprintf("Key (%.*s)=" REDACTED "%s", collen, cols, m + 1);
		return psprintf("Key (%.*s)=" REDACTED ".", collen, cols);
	}
	if (strncmp(s, "Failing row contains ", 21) == 0)
		return pstrdup("Failing row contains " REDACTED ".");
	if (strncmp(s, "Partition key of the failing row contains ", 42) == 0)
		return pstrdup("Partition key of the failing row contains " REDACTED ".");
	return NULL;
}

/*
 * A detail has no untranslated form to go by: in English, the known forms
 * keep what they say but their values, a detail of any other form of an
 * integrity violation goes and a data exception's loses what it quotes.
 * Translated, the whole detail of an integrity violation or a data
 * exception goes.
 */
static char *
redact_detail(const char *s, int sqlerrcode, bool english)
{
	int			class = ERRCODE_TO_CATEGORY(sqlerrcode);
	char	   *r;

	if (s == NULL)
		return NULL;
	if (!english)
		return (class == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION ||
				class == ERRCODE_DATA_EXCEPTION) ? pstrdup(REDACTED) : (char *) s;
	if ((r = redact_key_detail(s)) != NULL)
		return r;
	if (class == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION)
		return pstrdup(REDACTED);	/* a form we do not know: drop it all */
	if (class == ERRCODE_DATA_EXCEPTION)
		return redact_quoted(s);
	return (char *) s;
}

/*
 * A PL/pgSQL RAISE wrote its own message: the profile_guard API's argument
 * errors (class 22, quoting table, column, tag or purpose names, never a
 * value) come this way, and an application's RAISE says what its author
 * chose.  What the server quotes by itself (type input, constraint
 * details) is what must go.
 */
static bool
raised_by_plpgsql(const ErrorData *edata)
{
	return edata->funcname != NULL && strcmp(edata->funcname, "exec_stmt_raise") == 0;
}

static void
redact_error(ErrorData *edata)
{
	bool		raised = raised_by_plpgsql(edata);
	bool		english = error_in_english(edata);

	if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_DATA_EXCEPTION && !raised)
		edata->message = redact_message(edata, english);
	if (!raised)
	{
		edata->detail = redact_detail(edata->detail, edata->sqlerrcode, english);
		edata->detail_log = redact_detail(edata->detail_log, edata->sqlerrcode, english);
	}
	/* context lines are translated one by one, each by its own domain */
	if (english)
		edata->context = redact_context(edata->context);
	else if (edata->context)
		edata->context = pstrdup(REDACTED);
	edata->internalquery = NULL;
	edata->internalpos = 0;
	/* the statement text may hold the values: keep it out of the log */
	edata->hide_stmt = true;
}

/*
 * Before a message is emitted (hooks.c: emit_log_hook): redact an error
 * that concerns a guarded relation.
 */
void
pfg_redact_emit_log(ErrorData *edata)
{
	if (edata->elevel >= ERROR && !in_error_recursion_trouble())
	{
		bool		guarded = false;

		if (PendingSet && edata->sqlerrcode == PendingCode)
		{
			guarded = true;
			PendingSet = false;
		}
		else if (edata->table_name && names_guarded(edata->schema_name, edata->table_name))
			guarded = true;
		else if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION &&
				 ((!NamesKnown && !database_guards_none()) ||
				  mentions_guarded(edata->message) ||
				  mentions_guarded(edata->detail)))
			guarded = true;		/* a foreign key of another table to a guarded one */
		else if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_DATA_EXCEPTION &&
				 statement_mentions_guarded(edata))
			guarded = true;
		if (guarded)
			redact_error(edata);
	}
}

/* at load: the transaction callback (the hooks are in hooks.c) */
void
pfg_redact_init(void)
{
	RegisterXactCallback(redact_xact_callback, NULL);
}
