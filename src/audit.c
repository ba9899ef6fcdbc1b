/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The audit trail and the usage counters (DESIGN.md rules 10-11, §2
 *	  "Accountability").
 *
 *	  The executor hooks keep one AuditStmt per executing statement that
 *	  touches a guarded relation.  While the statement runs, the gate
 *	  functions count rows seen and hidden and cells served and masked into
 *	  it (audit.h, backend memory only).  At ExecutorEnd the statement
 *	  writes one server-log line (profile_guard.audit = all, and always for
 *	  roles that bypass the gates) and adds its counts to the shared-memory
 *	  usage table under one lock acquisition.  Refusals (no or unusable
 *	  purpose, collection without consent) are caught on their way out,
 *	  logged (audit = denials or all) and counted, then re-thrown.
 *
 *	  The per-statement state lives in the statement's memory and unlinks
 *	  itself when that memory goes away, so an error mid-statement leaves
 *	  nothing behind for the next one.
 *
 *	  The log line is "profile_guard audit: " followed by one JSON object;
 *	  docs/audit.md documents its keys.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "profile_guard.h"
#include "audit.h"
#include "invalidation.h"

PFG_SQL_FUNCTION(profile_guard_usage);
PFG_SQL_FUNCTION(profile_guard_usage_reset);

#define AUDIT_PREFIX		"profile_guard audit: "
#define USAGE_NAME_LEN		(NAMEDATALEN * 2)
#define USAGE_TRANCHE		"profile_guard"
#define OVERFLOW_TAG		"*overflow*"
#define MAX_AUDIT_RELS		32	/* relation slots with a bit in PfgAuditTag.rels */

/* settings */
static int	usage_max = 5000;

/* ---- per statement, backend memory ---- */

typedef struct AuditStmt
{
	PfgAuditCounters c;
	struct AuditStmt *next;		/* the list of executing statements */
	QueryDesc  *qd;
	MemoryContext mcxt;			/* outlives the executor's query context */
	int			level;			/* nesting level of the statement */
	bool		bypass;			/* role reads raw values, no gates ran */
	bool		reads_tags;		/* reads a tag of a guarded relation */
	bool		linked;
	bool		failed;			/* ended by an error, not by ExecutorEnd */
	bool		denied;			/* ended by a refusal (logged as a denial) */
	uint64		processed;		/* rows, summed over the runs (cursors) */
	Oid			userid;
	char	   *purpose;		/* as declared when the statement started */
	const char *command;
	MemoryContextCallback cb;
	MemoryContextCallback cb2;
} AuditStmt;

/* the sink: where gates count when no statement is audited */
static PfgAuditRel SinkRel = {InvalidOid, 0, 0};
static PfgAuditTag SinkTag = {-1, 0, 0, 0, 0, NULL};
static PfgAuditCounters Sink = {&SinkRel, &SinkTag, 1, 1, &SinkRel, 1, 1, &SinkTag, NULL};

PfgAuditCounters *PfgAuditCur = &Sink;

static AuditStmt *ActiveStmts = NULL;
static int	AuditNesting = 0;
static bool DenialNoted = false;

/*
 * Statements that read tags and ended by an error (their rows may have
 * reached the client): copied out of their dying memory, logged and
 * counted at the next statement, in normal context.
 */
#define MAX_LOST_STMTS 64
static AuditStmt *LostStmts = NULL;
static int	NLostStmts = 0;
static int64 DroppedLostStmts = 0;
static bool ExitCallbackSet = false;

static void flush_lost_stmts(void);

/* purpose name -> version memo, dropped when policy changes */
#define VERSION_MEMO 8
static struct
{
	char		name[USAGE_NAME_LEN];
	int			version;
}			VersionMemo[VERSION_MEMO];
static int	NVersionMemo = 0;
static Oid	VersionSentinel = InvalidOid;	/* profile_guard.consent */

/* ---- shared memory ---- */

typedef struct UsageKey
{
	Oid			dbid;
	Oid			roleid;
	char		purpose[USAGE_NAME_LEN];
	char		tag[USAGE_NAME_LEN];
} UsageKey;

typedef struct UsageEntry
{
	UsageKey	key;			/* hash key: must be first */
	slock_t		mutex;			/* protects the counters */
	int64		statements;
	int64		cells_served;
	int64		cells_masked;
	int64		rows_hidden;
	int64		denials;
	TimestampTz last_used;
} UsageEntry;

typedef struct UsageShared
{
	LWLock	   *lock;			/* shared: update counters; exclusive: add/remove */
} UsageShared;

static UsageShared *Usage = NULL;
static HTAB *UsageHash = NULL;

/* hooks */
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static post_parse_analyze_hook_type prev_post_parse_analyze_hook = NULL;

/* ---------------------------------------------------------------------
 * Counter slots
 * ---------------------------------------------------------------------
 */

static PfgAuditRel *
add_rel_slot(PfgAuditCounters *c, Oid relid)
{
	PfgAuditRel *r;

	if (c->nrels == c->maxrels)
	{
		int			n = Max(4, c->maxrels * 2);

		c->rels = c->rels ? repalloc(c->rels, sizeof(PfgAuditRel) * n) :
			MemoryContextAlloc(c->cxt, sizeof(PfgAuditRel) * n);
		c->maxrels = n;
	}
	r = &c->rels[c->nrels++];
	r->relid = relid;
	r->seen = 0;
	r->hidden = 0;
	return r;
}

static PfgAuditTag *
add_tag_slot(PfgAuditCounters *c, int tag_id, const char *name, int len)
{
	PfgAuditTag *t;

	if (c->ntags == c->maxtags)
	{
		int			n = Max(8, c->maxtags * 2);

		c->tags = c->tags ? repalloc(c->tags, sizeof(PfgAuditTag) * n) :
			MemoryContextAlloc(c->cxt, sizeof(PfgAuditTag) * n);
		c->maxtags = n;
	}
	t = &c->tags[c->ntags++];
	memset(t, 0, sizeof(PfgAuditTag));
	t->tag_id = tag_id;
	if (name)
	{
		t->name = MemoryContextAlloc(c->cxt, len + 1);
		memcpy(t->name, name, len);
		t->name[len] = '\0';
	}
	return t;
}

/*
 * The slot of a relation in the running statement: a short linear search,
 * reached only when the memo misses (another relation than the last row's).
 */
PfgAuditRel *
pfg_audit_rel_slot(Oid relid)
{
	PfgAuditCounters *c = PfgAuditCur;

	if (c == &Sink)
		return &SinkRel;
	for (int i = 0; i < c->nrels; i++)
		if (c->rels[i].relid == relid)
			return c->last_rel = &c->rels[i];
	return c->last_rel = add_rel_slot(c, relid);
}

PfgAuditTag *
pfg_audit_tag_slot(int tag_id, const char *name, int len)
{
	PfgAuditCounters *c = PfgAuditCur;

	if (c == &Sink)
		return &SinkTag;
	for (int i = 0; i < c->ntags; i++)
		if (c->tags[i].tag_id == tag_id)
			return c->last_tag = &c->tags[i];
	return c->last_tag = add_tag_slot(c, tag_id, name, len);
}

/* how deep in executors (and utility statements) the backend is now */
int
pfg_audit_nesting(void)
{
	return AuditNesting;
}

/* ---------------------------------------------------------------------
 * Statement state
 * ---------------------------------------------------------------------
 */

static const char *
command_name(CmdType cmd)
{
	switch (cmd)
	{
		case CMD_SELECT:
			return "SELECT";
		case CMD_INSERT:
			return "INSERT";
		case CMD_UPDATE:
			return "UPDATE";
		case CMD_DELETE:
			return "DELETE";
		case CMD_MERGE:
			return "MERGE";
		default:
			return "OTHER";
	}
}

static AuditStmt *
new_stmt(void)
{
	AuditStmt  *st = palloc0(sizeof(AuditStmt));

	st->mcxt = CurrentMemoryContext;
	st->c.cxt = CurrentMemoryContext;
	st->c.last_rel = &SinkRel;
	st->c.last_tag = &SinkTag;
	st->level = AuditNesting;
	st->userid = GetUserId();
	st->bypass = pfg_current_user_bypasses();
	/* a bypassing role uses no purpose, whatever it declared */
	st->purpose = pstrdup(st->bypass || pfg_purpose == NULL ? "" : pfg_purpose);

	/*
	 * One purpose per statement: its gates use the purpose in force now,
	 * whatever the statement itself sets meanwhile (set_config() in a
	 * WHERE clause); the change counts from the next statement on.
	 */
	st->c.purpose_fixed = true;
	st->c.purpose = pfg_purpose == NULL ? NULL : pstrdup(pfg_purpose);
	st->c.purpose_generation = pfg_purpose_generation;
	return st;
}

/*
 * The audit state of a statement about to start, or NULL when it touches
 * no guarded relation.  Relations that it reads tags of get a slot, and so
 * does each tag column it reads (wide shape); long-shape tags get theirs
 * when the gate meets them.
 */
static AuditStmt *
begin_stmt(QueryDesc *qd)
{
	AuditStmt  *st = NULL;
	ListCell   *lc;

	foreach(lc, qd->plannedstmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);
		GuardedRelation *grel;
		PfgAuditRel *r;
		int			slot;
		bool		whole;

		if (rte->rtekind != RTE_RELATION)
			continue;
		grel = pfg_guarded_relation(rte->relid);
		if (grel == NULL)
			continue;
		if (st == NULL)
		{
			st = new_stmt();
			st->command = command_name(qd->operation);
		}
		slot = -1;
		for (int i = 0; i < st->c.nrels; i++)
			if (st->c.rels[i].relid == rte->relid)
				slot = i;
		if (slot < 0)
		{
			r = add_rel_slot(&st->c, rte->relid);
			slot = r - st->c.rels;
		}
		if (!pfg_rte_reads_tags_of(rte, grel))
			continue;
		st->reads_tags = true;
		whole = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, rte->selectedCols);
		for (int i = 0; i < grel->ncolumns; i++)
		{
			const GuardedColumn *col = &grel->columns[i];
			PfgAuditTag *t = NULL;

			if (!whole &&
				!bms_is_member(col->attnum - FirstLowInvalidHeapAttributeNumber, rte->selectedCols))
				continue;
			for (int j = 0; j < st->c.ntags; j++)
				if (st->c.tags[j].tag_id == col->tag_id)
					t = &st->c.tags[j];
			if (t == NULL)
				t = add_tag_slot(&st->c, col->tag_id, col->tag, strlen(col->tag));
			if (slot < MAX_AUDIT_RELS)
				t->rels |= ((uint32) 1) << slot;
		}
	}
	if (st)
	{
		if (st->c.nrels > 0)
			st->c.last_rel = &st->c.rels[0];
		if (st->c.ntags > 0)
			st->c.last_tag = &st->c.tags[0];
	}
	return st;
}

static void
unlink_stmt(AuditStmt *st)
{
	AuditStmt **p;

	if (!st->linked)
		return;
	for (p = &ActiveStmts; *p; p = &(*p)->next)
	{
		if (*p == st)
		{
			*p = st->next;
			break;
		}
	}
	st->linked = false;
	if (PfgAuditCur == &st->c)
		PfgAuditCur = &Sink;
}

/*
 * A session that ends right after a failed statement, or in the middle of
 * a transaction with open cursors, still reports what they read.  The
 * transaction is aborted here (ShutdownPostgres, which would do it next,
 * then finds none) so that its statements end and are kept first.
 */
static void
audit_at_exit(int code, Datum arg)
{
	if (Usage == NULL)
		return;
	PG_TRY();
	{
		if (ActiveStmts != NULL)
			AbortOutOfAnyTransaction();
		flush_lost_stmts();
	}
	PG_CATCH();
	{
		/* exiting anyway: never fail the exit for the audit's sake */
		FlushErrorState();
	}
	PG_END_TRY();
}

/*
 * Copy a statement that ended by an error, for flush_lost_stmts.  This runs
 * while memory is being released, possibly during abort: one allocation,
 * which must not fail by raising an error.
 */
static void
keep_lost_stmt(AuditStmt *st)
{
	Size		size = MAXALIGN(sizeof(AuditStmt)) +
		MAXALIGN(sizeof(PfgAuditRel) * st->c.nrels) +
		MAXALIGN(sizeof(PfgAuditTag) * st->c.ntags) + strlen(st->purpose) + 1;
	char	   *mem;
	AuditStmt  *copy;
	char	   *p;

	for (int i = 0; i < st->c.ntags; i++)
		size += st->c.tags[i].name ? strlen(st->c.tags[i].name) + 1 : 0;
	if (NLostStmts >= MAX_LOST_STMTS ||
		(mem = MemoryContextAllocExtended(TopMemoryContext, size, MCXT_ALLOC_NO_OOM)) == NULL)
	{
		DroppedLostStmts++;
		return;
	}
	copy = (AuditStmt *) mem;
	memcpy(copy, st, sizeof(AuditStmt));
	p = mem + MAXALIGN(sizeof(AuditStmt));
	copy->c.rels = (PfgAuditRel *) p;
	memcpy(p, st->c.rels, sizeof(PfgAuditRel) * st->c.nrels);
	p += MAXALIGN(sizeof(PfgAuditRel) * st->c.nrels);
	copy->c.tags = (PfgAuditTag *) p;
	memcpy(p, st->c.tags, sizeof(PfgAuditTag) * st->c.ntags);
	p += MAXALIGN(sizeof(PfgAuditTag) * st->c.ntags);
	strcpy(p, st->purpose);
	copy->purpose = p;
	p += strlen(p) + 1;
	for (int i = 0; i < st->c.ntags; i++)
	{
		if (st->c.tags[i].name == NULL)
			continue;
		strcpy(p, st->c.tags[i].name);
		copy->c.tags[i].name = p;
		p += strlen(p) + 1;
	}
	copy->c.maxrels = copy->c.nrels;
	copy->c.maxtags = copy->c.ntags;
	copy->c.last_rel = &SinkRel;
	copy->c.last_tag = &SinkTag;
	copy->c.cxt = NULL;
	copy->c.purpose_fixed = false;
	copy->c.purpose = NULL;
	copy->linked = false;
	copy->failed = true;
	copy->qd = NULL;
	copy->mcxt = TopMemoryContext;
	copy->next = LostStmts;
	LostStmts = copy;
	NLostStmts++;
}

/* the executor's query memory is going away without ExecutorEnd: an error */
static void
stmt_memory_gone(void *arg)
{
	AuditStmt  *st = (AuditStmt *) arg;

	if (!st->linked)
		return;					/* ended normally */
	unlink_stmt(st);
	if (st->reads_tags && !st->denied)
		keep_lost_stmt(st);
}

static void
link_stmt(AuditStmt *st, QueryDesc *qd)
{
	MemoryContext cxt;

	if (!ExitCallbackSet)
	{
		before_shmem_exit(audit_at_exit, (Datum) 0);
		ExitCallbackSet = true;
	}

	st->qd = qd;
	st->next = ActiveStmts;
	ActiveStmts = st;
	st->linked = true;
	st->cb.func = stmt_memory_gone;
	st->cb.arg = st;
	MemoryContextRegisterResetCallback(qd->estate->es_query_cxt, &st->cb);

	/*
	 * The executor's memory is normally a child of the memory st lives in,
	 * so it goes first.  Should a hook further down have switched contexts,
	 * watch st's own memory too.
	 */
	for (cxt = qd->estate->es_query_cxt; cxt != NULL; cxt = MemoryContextGetParent(cxt))
		if (cxt == st->mcxt)
			return;
	st->cb2.func = stmt_memory_gone;
	st->cb2.arg = st;
	MemoryContextRegisterResetCallback(st->mcxt, &st->cb2);
}

static AuditStmt *
find_stmt(QueryDesc *qd)
{
	for (AuditStmt *st = ActiveStmts; st; st = st->next)
		if (st->qd == qd)
			return st;
	return NULL;
}

/* ---------------------------------------------------------------------
 * The log line
 * ---------------------------------------------------------------------
 */

void
pfg_audit_relcache_invalidated(Oid relid)
{
	/* a change of policy (signalled on the consent table) may bump a version */
	if (relid == InvalidOid || relid == VersionSentinel)
		NVersionMemo = 0;
}

static int
purpose_version(const char *name)
{
	Oid			relid;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	int			version = -1;

	if (name[0] == '\0')
		return -1;
	for (int i = 0; i < NVersionMemo; i++)
		if (strcmp(VersionMemo[i].name, name) == 0)
			return VersionMemo[i].version;
	relid = pfg_catalog_relid("purpose");
	if (!OidIsValid(relid))
		return -1;
	if (NVersionMemo == 0)
		VersionSentinel = pfg_catalog_relid("consent");
	rel = table_open(relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull);

		if (!isnull && strcmp(TextDatumGetCString(d), name) == 0)
		{
			version = DatumGetInt32(heap_getattr(tup, 2, RelationGetDescr(rel), &isnull));
			break;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (version > 0 && NVersionMemo < VERSION_MEMO && strlen(name) < USAGE_NAME_LEN)
	{
		strlcpy(VersionMemo[NVersionMemo].name, name, USAGE_NAME_LEN);
		VersionMemo[NVersionMemo++].version = version;
	}
	return version;
}

static void
json_key(StringInfo buf, const char *key, bool first)
{
	if (!first)
		appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
}

static void
json_str(StringInfo buf, const char *key, const char *value)
{
	json_key(buf, key, false);
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

/*
 * Names for the line.  Outside a transaction (a backend writing what its
 * last, failed statement read as it exits) no catalog can be read: then
 * "#" and the OID.
 */
static char *
relation_text(Oid relid)
{
	char	   *rel;
	char	   *nsp;

	if (!IsTransactionState() || (rel = get_rel_name(relid)) == NULL)
		return psprintf("#%u", relid);
	nsp = get_namespace_name(get_rel_namespace(relid));
	return quote_qualified_identifier(nsp, rel);
}

static char *
role_text(Oid roleid)
{
	char	   *name;

	if (!IsTransactionState() || (name = GetUserNameFromId(roleid, true)) == NULL)
		return psprintf("#%u", roleid);
	return name;
}

/* rows hidden that count for a tag: its own (long shape) and its relations' */
static int64
tag_rows_hidden(AuditStmt *st, PfgAuditTag *t)
{
	int64		n = t->hidden;

	for (int i = 0; i < st->c.nrels && i < MAX_AUDIT_RELS; i++)
		if (t->rels & (((uint32) 1) << i))
			n += st->c.rels[i].hidden;
	return n;
}

static const char *
tag_name(PfgAuditTag *t)
{
	return t->name ? t->name : psprintf("#%d", t->tag_id);
}

/* the part of the line common to reads and denials */
static void
line_head(StringInfo buf, AuditStmt *st, const char *event)
{
	int			version = st->bypass || !IsTransactionState() ? -1 : purpose_version(st->purpose);

	appendStringInfoString(buf, AUDIT_PREFIX "{");
	json_key(buf, "event", true);
	escape_json(buf, event);
	json_str(buf, "user", role_text(st->userid));
	json_str(buf, "session_user", role_text(GetSessionUserId()));
	json_str(buf, "purpose", st->purpose[0] ? st->purpose : NULL);
	json_key(buf, "purpose_version", false);
	if (version > 0)
		appendStringInfo(buf, "%d", version);
	else
		appendStringInfoString(buf, "null");
	json_str(buf, "command", st->command);
	json_key(buf, "level", false);
	appendStringInfo(buf, "%d", st->level);
}

static void
log_read(AuditStmt *st, uint64 processed)
{
	StringInfoData buf;

	initStringInfo(&buf);
	line_head(&buf, st, st->bypass ? "bypass_read" : "read");
	json_key(&buf, "relations", false);
	appendStringInfoChar(&buf, '[');
	for (int i = 0; i < st->c.nrels; i++)
	{
		PfgAuditRel *r = &st->c.rels[i];

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfoChar(&buf, '{');
		json_key(&buf, "relation", true);
		escape_json(&buf, relation_text(r->relid));
		if (st->bypass)
			appendStringInfoString(&buf, ",\"rows_seen\":null,\"rows_hidden\":null}");
		else
			appendStringInfo(&buf, ",\"rows_seen\":" INT64_FORMAT ",\"rows_hidden\":" INT64_FORMAT "}",
							 r->seen, r->hidden);
	}
	appendStringInfoChar(&buf, ']');
	json_key(&buf, "tags", false);
	appendStringInfoChar(&buf, '[');
	for (int i = 0; i < st->c.ntags; i++)
	{
		PfgAuditTag *t = &st->c.tags[i];

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfoChar(&buf, '{');
		json_key(&buf, "tag", true);
		escape_json(&buf, tag_name(t));
		if (st->bypass)
			appendStringInfoString(&buf, ",\"cells_served\":null,\"cells_masked\":null,\"rows_hidden\":null}");
		else
			appendStringInfo(&buf, ",\"cells_served\":" INT64_FORMAT ",\"cells_masked\":" INT64_FORMAT
							 ",\"rows_hidden\":" INT64_FORMAT "}",
							 t->served, t->masked, tag_rows_hidden(st, t));
	}
	appendStringInfoChar(&buf, ']');
	appendStringInfo(&buf, ",\"rows_processed\":" UINT64_FORMAT ",\"completed\":%s}",
					 processed, st->failed ? "false" : "true");

	ereport(LOG,
			(errmsg_internal("%s", buf.data),
			 errhidestmt(true),
			 errhidecontext(true)));
	pfree(buf.data);
}

/* ---------------------------------------------------------------------
 * Usage counters
 * ---------------------------------------------------------------------
 */

static Size
usage_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(UsageShared)),
					hash_estimate_size(usage_max + 1, sizeof(UsageEntry)));
}

static void
usage_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(usage_shmem_size());
	RequestNamedLWLockTranche(USAGE_TRANCHE, 1);
}

static void
usage_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	Usage = ShmemInitStruct("profile_guard usage", sizeof(UsageShared), &found);
	if (!found)
		Usage->lock = &(GetNamedLWLockTranche(USAGE_TRANCHE))->lock;
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(UsageKey);
	info.entrysize = sizeof(UsageEntry);
	UsageHash = ShmemInitHash("profile_guard usage hash",
							  usage_max + 1, usage_max + 1,
							  &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

typedef struct UsageDelta
{
	UsageKey	key;
	int64		statements;
	int64		served;
	int64		masked;
	int64		hidden;
	int64		denials;
	bool		done;
} UsageDelta;

static void
make_key(UsageKey *key, Oid roleid, const char *purpose, const char *tag)
{
	memset(key, 0, sizeof(UsageKey));
	key->dbid = MyDatabaseId;
	key->roleid = roleid;
	strlcpy(key->purpose, purpose, USAGE_NAME_LEN);
	strlcpy(key->tag, tag, USAGE_NAME_LEN);
}

static void
apply_delta(UsageEntry *e, const UsageDelta *d, TimestampTz now)
{
	SpinLockAcquire(&e->mutex);
	e->statements += d->statements;
	e->cells_served += d->served;
	e->cells_masked += d->masked;
	e->rows_hidden += d->hidden;
	e->denials += d->denials;
	e->last_used = now;
	SpinLockRelease(&e->mutex);
}

/*
 * Add a statement's counts: under a shared lock when every entry exists
 * (the steady state), else once more under an exclusive lock to create
 * them.  When the table is full, counts go to one overflow entry.
 */
static void
usage_add(UsageDelta *deltas, int n)
{
	TimestampTz now;
	bool		missing = false;

	if (Usage == NULL || UsageHash == NULL || n == 0)
		return;
	now = GetCurrentStatementStartTimestamp();
	LWLockAcquire(Usage->lock, LW_SHARED);
	for (int i = 0; i < n; i++)
	{
		UsageEntry *e = hash_search(UsageHash, &deltas[i].key, HASH_FIND, NULL);

		if (e)
		{
			apply_delta(e, &deltas[i], now);
			deltas[i].done = true;
		}
		else
			missing = true;
	}
	LWLockRelease(Usage->lock);
	if (!missing)
		return;

	LWLockAcquire(Usage->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		UsageEntry *e;
		bool		found;

		if (deltas[i].done)
			continue;
		e = hash_search(UsageHash, &deltas[i].key, HASH_FIND, NULL);
		if (e == NULL && hash_get_num_entries(UsageHash) >= usage_max)
		{
			UsageKey	overflow;

			memset(&overflow, 0, sizeof(overflow));
			strlcpy(overflow.tag, OVERFLOW_TAG, USAGE_NAME_LEN);
			deltas[i].key = overflow;
		}
		if (e == NULL)
		{
			e = hash_search(UsageHash, &deltas[i].key, HASH_ENTER_NULL, &found);
			if (e == NULL)
				continue;		/* cannot happen: one slot is reserved */
			if (!found)
			{
				memset(((char *) e) + sizeof(UsageKey), 0, sizeof(UsageEntry) - sizeof(UsageKey));
				SpinLockInit(&e->mutex);
			}
		}
		apply_delta(e, &deltas[i], now);
	}
	LWLockRelease(Usage->lock);
}

static void
usage_add_statement(AuditStmt *st)
{
	UsageDelta *deltas;
	int			n = 0;

	if (Usage == NULL || st->c.ntags == 0)
		return;
	deltas = palloc0(sizeof(UsageDelta) * st->c.ntags);
	for (int i = 0; i < st->c.ntags; i++)
	{
		PfgAuditTag *t = &st->c.tags[i];

		make_key(&deltas[n].key, st->userid, st->purpose, tag_name(t));
		deltas[n].statements = 1;
		if (!st->bypass)
		{
			deltas[n].served = t->served;
			deltas[n].masked = t->masked;
			deltas[n].hidden = tag_rows_hidden(st, t);
		}
		n++;
	}
	usage_add(deltas, n);
	pfree(deltas);
}

/* ---------------------------------------------------------------------
 * Denials
 * ---------------------------------------------------------------------
 */

/*
 * The refusal being raised (errcodes.h): pfg_refuse() notes its kind and tag
 * just before it raises the error in PFG_REFUSAL_DOMAIN.  Kept in static
 * storage, so that noting allocates nothing.
 */
static const char *const RefusalNames[] = {
	[PFG_REFUSAL_NO_PURPOSE] = "no_purpose",
	[PFG_REFUSAL_PURPOSE_NOT_ALLOWED] = "purpose_not_allowed",
	[PFG_REFUSAL_UNKNOWN_PURPOSE] = "unknown_purpose",
	[PFG_REFUSAL_PURPOSE_UNUSABLE] = "purpose_unusable",
	[PFG_REFUSAL_COLLECTION] = "collection_refused",
};
static int	PendingRefusal = -1;
static char PendingRefusalTag[NAMEDATALEN * 2];

void
pfg_refusal_note(PfgRefusal kind, const char *tag)
{
	PendingRefusal = (int) kind;
	if (tag != NULL)
		strlcpy(PendingRefusalTag, tag, sizeof(PendingRefusalTag));
	else
		PendingRefusalTag[0] = '\0';
}

/*
 * Is this error one of our refusals?  If so, its reason (as the audit trail
 * names it) and, in *tag, the tag it concerns (NULL when none; palloc'd).
 */
const char *
pfg_refusal_of(const ErrorData *e, char **tag)
{
	*tag = NULL;
	if (e->domain == NULL || strcmp(e->domain, PFG_REFUSAL_DOMAIN) != 0 ||
		PendingRefusal < 0 || PendingRefusal >= lengthof(RefusalNames))
		return NULL;
	if (PendingRefusalTag[0] != '\0')
		*tag = pstrdup(PendingRefusalTag);
	return RefusalNames[PendingRefusal];
}

static void
note_denial(AuditStmt *st, ErrorData *e, const char *reason, char *tag)
{
	UsageDelta *deltas;
	int			n = 0;

	if (st->c.ntags > 0)
		tag = NULL;				/* the statement's own tags are named */

	if (pfg_audit >= PFG_AUDIT_DENIALS)
	{
		StringInfoData buf;
		char		sqlstate[6];

		initStringInfo(&buf);
		line_head(&buf, st, "denial");
		json_str(&buf, "reason", reason);
		memcpy(sqlstate, unpack_sql_state(e->sqlerrcode), 6);
		json_str(&buf, "sqlstate", sqlstate);
		json_key(&buf, "relations", false);
		appendStringInfoChar(&buf, '[');
		for (int i = 0; i < st->c.nrels; i++)
		{
			if (i > 0)
				appendStringInfoChar(&buf, ',');
			escape_json(&buf, relation_text(st->c.rels[i].relid));
		}
		appendStringInfoString(&buf, "]");
		json_key(&buf, "tags", false);
		appendStringInfoChar(&buf, '[');
		for (int i = 0; i < st->c.ntags; i++)
		{
			if (i > 0)
				appendStringInfoChar(&buf, ',');
			escape_json(&buf, tag_name(&st->c.tags[i]));
		}
		if (tag)
			escape_json(&buf, tag);
		appendStringInfoString(&buf, "]}");
		ereport(LOG,
				(errmsg_internal("%s", buf.data),
				 errhidestmt(true),
				 errhidecontext(true)));
	}

	deltas = palloc0(sizeof(UsageDelta) * (st->c.ntags + 1));
	for (int i = 0; i < st->c.ntags; i++)
	{
		make_key(&deltas[n].key, st->userid, st->purpose, tag_name(&st->c.tags[i]));
		deltas[n++].denials = 1;
	}
	if (n == 0)
	{
		make_key(&deltas[n].key, st->userid, st->purpose, tag ? tag : "");
		deltas[n++].denials = 1;
	}
	usage_add(deltas, n);
}

/*
 * In PG_CATCH: if the error is one of our refusals (and not yet noted on
 * its way out of an inner statement), log and count it.  Always re-throws.
 */
static void
rethrow_noting_denial(AuditStmt *st)
{
	MemoryContext old;
	ErrorData  *e;
	const char *reason;
	char	   *tag;

	if (st == NULL || DenialNoted)
		PG_RE_THROW();
	old = MemoryContextSwitchTo(st->mcxt);
	e = CopyErrorData();
	reason = pfg_refusal_of(e, &tag);
	if (reason == NULL)
	{
		MemoryContextSwitchTo(old);
		FreeErrorData(e);
		PG_RE_THROW();
	}
	FlushErrorState();
	DenialNoted = true;
	st->denied = true;
	note_denial(st, e, reason, tag);
	ReThrowError(e);
}

/* log and count the statements kept by keep_lost_stmt */
static void
flush_lost_stmts(void)
{
	if (LostStmts == NULL || (!IsTransactionState() && !proc_exit_inprogress))
		return;
	while (LostStmts)
	{
		AuditStmt  *st = LostStmts;

		LostStmts = st->next;
		NLostStmts--;
		if (st->bypass || pfg_audit == PFG_AUDIT_ALL)
			log_read(st, st->processed);
		usage_add_statement(st);
		pfree(st);
	}
	if (DroppedLostStmts > 0)
	{
		ereport(LOG,
				(errmsg_internal(AUDIT_PREFIX "{\"event\":\"lost\",\"statements\":" INT64_FORMAT "}",
								 DroppedLostStmts),
				 errhidestmt(true)));
		DroppedLostStmts = 0;
	}
}

/* ---------------------------------------------------------------------
 * Hooks
 * ---------------------------------------------------------------------
 */

static void
audit_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	AuditStmt  *st = NULL;

	/* parallel workers: the leader audits the statement */
	if (!IsParallelWorker())
	{
		pfg_redact_refresh();
		flush_lost_stmts();
	}
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && !IsParallelWorker() && pfg_any_guarded())
	{
		st = begin_stmt(queryDesc);
		DenialNoted = false;
	}

	if (st == NULL)
	{
		if (prev_ExecutorStart)
			prev_ExecutorStart(queryDesc, eflags);
		else
			standard_ExecutorStart(queryDesc, eflags);
		return;
	}

	PG_TRY();
	{
		if (prev_ExecutorStart)
			prev_ExecutorStart(queryDesc, eflags);
		else
			standard_ExecutorStart(queryDesc, eflags);
	}
	PG_CATCH();
	{
		rethrow_noting_denial(st);
	}
	PG_END_TRY();
	link_stmt(st, queryDesc);
}

static void
audit_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
				  bool execute_once)
{
	AuditStmt  *st = find_stmt(queryDesc);
	PfgAuditCounters *save = PfgAuditCur;
	ErrorContextCallback errcb;

	if (st)
	{
		PfgAuditCur = &st->c;
		errcb.callback = pfg_redact_error_callback;
		errcb.arg = NULL;
		errcb.previous = error_context_stack;
		error_context_stack = &errcb;
		DenialNoted = false;
	}
	AuditNesting++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_CATCH();
	{
		AuditNesting--;
		PfgAuditCur = save;
		if (st)
		{
			error_context_stack = errcb.previous;
			st->processed += queryDesc->estate->es_processed;
		}
		rethrow_noting_denial(st);
	}
	PG_END_TRY();
	AuditNesting--;
	PfgAuditCur = save;
	if (st)
	{
		error_context_stack = errcb.previous;
		st->processed += queryDesc->estate->es_processed;
	}
}

static void
audit_ExecutorFinish(QueryDesc *queryDesc)
{
	AuditStmt  *st = find_stmt(queryDesc);
	PfgAuditCounters *save = PfgAuditCur;
	ErrorContextCallback errcb;

	if (st)
	{
		PfgAuditCur = &st->c;
		errcb.callback = pfg_redact_error_callback;
		errcb.arg = NULL;
		errcb.previous = error_context_stack;
		error_context_stack = &errcb;
	}
	AuditNesting++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_CATCH();
	{
		AuditNesting--;
		PfgAuditCur = save;
		if (st)
			error_context_stack = errcb.previous;
		rethrow_noting_denial(st);
	}
	PG_END_TRY();
	AuditNesting--;
	PfgAuditCur = save;
	if (st)
		error_context_stack = errcb.previous;
}

static void
audit_ExecutorEnd(QueryDesc *queryDesc)
{
	AuditStmt  *st = find_stmt(queryDesc);

	if (st)
	{
		unlink_stmt(st);
		if (st->reads_tags)
		{
			MemoryContext old = MemoryContextSwitchTo(st->mcxt);

			if (st->bypass || pfg_audit == PFG_AUDIT_ALL)
				log_read(st, st->processed);
			usage_add_statement(st);
			MemoryContextSwitchTo(old);
		}
	}

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * COPY FROM into a guarded table runs no executor: refusals of the
 * collection trigger are caught here, and errors get the redaction mark.
 * Every utility statement raises the nesting level of what it runs.
 */
static void
audit_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	AuditStmt  *st = NULL;
	ErrorContextCallback errcb;

	pfg_redact_refresh();
	flush_lost_stmts();
	if (IsA(parsetree, CopyStmt) && ((CopyStmt *) parsetree)->relation &&
		IsTransactionState() && pfg_any_guarded())
	{
		CopyStmt   *stmt = (CopyStmt *) parsetree;
		Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

		GuardedRelation *grel = OidIsValid(relid) ? pfg_guarded_relation(relid) : NULL;

		if (grel)
		{
			st = new_stmt();
			st->command = "COPY";
			add_rel_slot(&st->c, relid);
			DenialNoted = false;

			/*
			 * A bypassing role's COPY TO (pg_dump's way) reads raw values
			 * without an executor: audit it here.  (Other roles' COPY TO
			 * becomes a gated query, audited by the executor hooks.)
			 */
			if (!stmt->is_from && st->bypass)
			{
				st->reads_tags = true;
				for (int i = 0; i < grel->ncolumns; i++)
				{
					const GuardedColumn *col = &grel->columns[i];
					bool		listed = (stmt->attlist == NIL);
					ListCell   *lc;

					foreach(lc, stmt->attlist)
						if (get_attnum(relid, strVal(lfirst(lc))) == col->attnum)
							listed = true;
					if (listed)
						add_tag_slot(&st->c, col->tag_id, col->tag, strlen(col->tag))->rels = 1;
				}
			}
			errcb.callback = pfg_redact_error_callback;
			errcb.arg = NULL;
			errcb.previous = error_context_stack;
			error_context_stack = &errcb;
		}
	}

	AuditNesting++;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		AuditNesting--;
		if (st)
			error_context_stack = errcb.previous;
		rethrow_noting_denial(st);
	}
	PG_END_TRY();
	AuditNesting--;
	if (st)
	{
		error_context_stack = errcb.previous;
		if (st->reads_tags)
		{
			st->processed = qc ? qc->nprocessed : 0;
			log_read(st, st->processed);
			usage_add_statement(st);
		}
	}
}

static void
audit_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze_hook)
		prev_post_parse_analyze_hook(pstate, query, jstate);
	pfg_redact_refresh();
	flush_lost_stmts();
}

/*
 * Statements unlink themselves as their memory goes, and the hooks restore
 * the nesting level and the counting target on the way out of an error, so
 * a transaction's end (which may come in the middle of a procedure) leaves
 * those alone.
 */
static void
audit_xact_callback(XactEvent event, void *arg)
{
	DenialNoted = false;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/*
 * _usage(): the usage counters of this database (and the overflow entry),
 * as (role oid, purpose, tag, statements, cells_served, cells_masked,
 * rows_hidden, denials, last_used).
 */
Datum
profile_guard_usage(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	UsageEntry *e;

	pfg_require_preload();
	if (Usage == NULL || UsageHash == NULL)
		ereport(ERROR,
				(errcode(PFG_ERRCODE_NOT_PRELOADED),
				 errmsg("profile_guard usage counters are not available"),
				 errdetail("The shared memory for the counters was not set up."),
				 errhint("Add profile_guard to shared_preload_libraries in postgresql.conf and restart the server.")));
	InitMaterializedSRF(fcinfo, 0);

	LWLockAcquire(Usage->lock, LW_SHARED);
	hash_seq_init(&seq, UsageHash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[9];
		bool		nulls[9];
		bool		overflow = (e->key.dbid == InvalidOid);

		if (!overflow && e->key.dbid != MyDatabaseId)
			continue;
		memset(nulls, 0, sizeof(nulls));
		if (overflow)
			nulls[0] = nulls[1] = true;
		else
		{
			values[0] = ObjectIdGetDatum(e->key.roleid);
			if (e->key.purpose[0] == '\0')
				nulls[1] = true;
			else
				values[1] = CStringGetTextDatum(e->key.purpose);
		}
		if (e->key.tag[0] == '\0')
			nulls[2] = true;
		else
			values[2] = CStringGetTextDatum(e->key.tag);
		SpinLockAcquire(&e->mutex);
		values[3] = Int64GetDatum(e->statements);
		values[4] = Int64GetDatum(e->cells_served);
		values[5] = Int64GetDatum(e->cells_masked);
		values[6] = Int64GetDatum(e->rows_hidden);
		values[7] = Int64GetDatum(e->denials);
		values[8] = TimestampTzGetDatum(e->last_used);
		SpinLockRelease(&e->mutex);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(Usage->lock);
	return (Datum) 0;
}

/* usage_reset(): forget the counters of this database and the overflow */
Datum
profile_guard_usage_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS seq;
	UsageEntry *e;

	pfg_require_preload();
	if (Usage == NULL || UsageHash == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(Usage->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, UsageHash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->key.dbid == MyDatabaseId || e->key.dbid == InvalidOid)
			hash_search(UsageHash, &e->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(Usage->lock);
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Start-up
 * ---------------------------------------------------------------------
 */

void
pfg_audit_define_settings(void)
{
	DefineCustomIntVariable("profile_guard.usage_max",
							"Maximum number of (role, purpose, tag) entries in the usage counters.",
							"Counts of further combinations go to one overflow entry.",
							&usage_max,
							5000, 100, INT_MAX / 2,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
}

/* installed after the gate's hooks, so ours run outermost */
void
pfg_audit_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = usage_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = usage_shmem_startup;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = audit_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = audit_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = audit_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = audit_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = audit_ProcessUtility;
	prev_post_parse_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = audit_post_parse_analyze;
	RegisterXactCallback(audit_xact_callback, NULL);
}
