/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The audited statements (rules 10-11 of docs/rules.md):
 *	  their state from start to end, and the entry points the hooks
 *	  (hooks.c) call around the executor and utility statements.
 *
 *	  One AuditStmt is kept per executing statement that touches a guarded
 *	  relation.  While the statement runs, the gate functions count rows
 *	  seen and hidden and cells served and masked into it (audit.h, backend
 *	  memory only).  As it ends, the statement writes its line
 *	  (audit_log.c; profile_guard.audit = all, and always for roles that
 *	  bypass the gates) and adds its counts to the usage counters
 *	  (usage.c).  With audit_destination = file, the lines wait in the
 *	  backend's buffer (audit_file.c) until a top-level statement or the
 *	  transaction ends, when this file has them written.  Refusals (no or unusable purpose, collection
 *	  without consent) are caught on their way out, logged (audit =
 *	  denials or all) and counted, then re-thrown.
 *
 *	  The per-statement state lives in the statement's memory and unlinks
 *	  itself when that memory goes away, so an error mid-statement leaves
 *	  nothing behind for the next one; a statement that read tags and
 *	  ended by an error is copied out and reported at the next statement.
 *	  Also owns the nesting level of executors and utility statements, and
 *	  where the gates count (PfgAuditCur).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/copy.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/ipc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "bypass.h"
#include "audit.h"
#include "audit_log.h"
#include "audit_file.h"
#include "usage.h"

/* ---- per statement, backend memory ---- */

typedef struct QueryWatch QueryWatch;

typedef struct AuditStmt
{
	PfgAuditRecord rec;			/* what its line and counts report */
	struct AuditStmt *next;		/* the list of executing statements */
	QueryDesc  *qd;
	/*
	 * Its own context, where it lives: it outlives the executor's query
	 * context and is deleted once the executor has ended (a statement may
	 * start in memory that lasts much longer: a SQL function's, once for
	 * each row of the query calling it)
	 */
	MemoryContext mcxt;
	bool		reads_tags;		/* reads a tag of a guarded relation */
	bool		linked;
	bool		denied;			/* ended by a refusal (logged as a denial) */
	QueryWatch *watch;			/* on the executor's query memory, while both last */
	MemoryContextCallback cb;	/* on mcxt */
} AuditStmt;

/*
 * Watches the executor's query memory for a statement, from inside it:
 * whichever of the two memories goes first tells the other, so that
 * neither callback reaches memory already freed.
 */
struct QueryWatch
{
	MemoryContextCallback cb;
	AuditStmt  *st;				/* NULL once the statement's memory has gone */
};

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

static void rethrow_noting_denial(AuditStmt *st) pg_attribute_noreturn();

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
	return pfg_audit_rel_slot_in(PfgAuditCur, relid);
}

PfgAuditTag *
pfg_audit_tag_slot(int tag_id, const char *name, int len)
{
	return pfg_audit_tag_slot_in(PfgAuditCur, tag_id, name, len);
}

/* the same in counters 'c' (a failed parallel run's, parallel_gates.c) */
PfgAuditRel *
pfg_audit_rel_slot_in(PfgAuditCounters *c, Oid relid)
{
	if (c == &Sink)
		return &SinkRel;
	for (int i = 0; i < c->nrels; i++)
		if (c->rels[i].relid == relid)
			return c->last_rel = &c->rels[i];
	return c->last_rel = add_rel_slot(c, relid);
}

PfgAuditTag *
pfg_audit_tag_slot_in(PfgAuditCounters *c, int tag_id, const char *name, int len)
{
	if (c == &Sink)
		return &SinkTag;
	for (int i = 0; i < c->ntags; i++)
		if (c->tags[i].tag_id == tag_id)
			return c->last_tag = &c->tags[i];
	return c->last_tag = add_tag_slot(c, tag_id, name, len);
}

/*
 * The index of a tag's slot in the running statement's counters, made if
 * needed, for a call site to remember (pfg_audit_count_cell_at); -1 when no
 * statement is being counted.
 */
int
pfg_audit_tag_index(int tag_id)
{
	PfgAuditCounters *c = PfgAuditCur;

	if (c == &Sink)
		return -1;
	return pfg_audit_tag_slot(tag_id, NULL, 0) - c->tags;
}

/*
 * A counting target of its own, in 'cxt', for a backend that counts
 * outside any audited statement and reports the counts elsewhere (a
 * parallel worker, parallel_gates.c).
 */
PfgAuditCounters *
pfg_audit_counters_create(MemoryContext cxt)
{
	PfgAuditCounters *c = MemoryContextAllocZero(cxt, sizeof(PfgAuditCounters));

	c->cxt = cxt;
	c->last_rel = &SinkRel;
	c->last_tag = &SinkTag;
	return c;
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
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "profile_guard audit of a statement",
											  ALLOCSET_SMALL_SIZES);
	AuditStmt  *st = MemoryContextAllocZero(cxt, sizeof(AuditStmt));

	st->mcxt = cxt;
	st->rec.c.cxt = cxt;
	st->rec.c.last_rel = &SinkRel;
	st->rec.c.last_tag = &SinkTag;
	st->rec.level = AuditNesting;
	st->rec.userid = GetUserId();
	st->rec.bypass = pfg_current_user_bypasses();
	/* a bypassing role uses no purpose, whatever it declared */
	st->rec.purpose = MemoryContextStrdup(cxt, st->rec.bypass || pfg_purpose == NULL ? "" : pfg_purpose);

	/*
	 * One purpose per statement: its gates use the purpose in force now,
	 * whatever the statement itself sets meanwhile (set_config() in a
	 * WHERE clause); the change counts from the next statement on.
	 */
	st->rec.c.purpose_fixed = true;
	st->rec.c.purpose = pfg_purpose == NULL ? NULL : MemoryContextStrdup(cxt, pfg_purpose);
	st->rec.c.purpose_generation = pfg_purpose_generation;
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
			st->rec.command = command_name(qd->operation);
		}
		slot = -1;
		for (int i = 0; i < st->rec.c.nrels; i++)
			if (st->rec.c.rels[i].relid == rte->relid)
				slot = i;
		if (slot < 0)
		{
			r = add_rel_slot(&st->rec.c, rte->relid);
			slot = r - st->rec.c.rels;
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
			for (int j = 0; j < st->rec.c.ntags; j++)
				if (st->rec.c.tags[j].tag_id == col->tag_id)
					t = &st->rec.c.tags[j];
			if (t == NULL)
				t = add_tag_slot(&st->rec.c, col->tag_id, col->tag, strlen(col->tag));
			if (slot < PFG_AUDIT_MAX_RELS)
				t->rels |= ((uint32) 1) << slot;
		}
	}
	if (st)
	{
		if (st->rec.c.nrels > 0)
			st->rec.c.last_rel = &st->rec.c.rels[0];
		if (st->rec.c.ntags > 0)
			st->rec.c.last_tag = &st->rec.c.tags[0];
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
	if (PfgAuditCur == &st->rec.c)
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
	if (!pfg_usage_ready())
		return;
	PG_TRY();
	{
		if (ActiveStmts != NULL)
			AbortOutOfAnyTransaction();
		pfg_audit_flush_lost();
		pfg_audit_file_flush();
	}
	PG_CATCH();
	{
		/* exiting anyway: never fail the exit for the audit's sake */
		FlushErrorState();
	}
	PG_END_TRY();
}

/*
 * Copy a statement that ended by an error, for pfg_audit_flush_lost.  This
 * runs while memory is being released, possibly during abort: one
 * allocation, which must not fail by raising an error.
 */
static void
keep_lost_stmt(AuditStmt *st)
{
	Size		size = MAXALIGN(sizeof(AuditStmt)) +
		MAXALIGN(sizeof(PfgAuditRel) * st->rec.c.nrels) +
		MAXALIGN(sizeof(PfgAuditTag) * st->rec.c.ntags) + strlen(st->rec.purpose) + 1;
	char	   *mem;
	AuditStmt  *copy;
	char	   *p;

	for (int i = 0; i < st->rec.c.ntags; i++)
		size += st->rec.c.tags[i].name ? strlen(st->rec.c.tags[i].name) + 1 : 0;
	if (NLostStmts >= MAX_LOST_STMTS ||
		(mem = MemoryContextAllocExtended(TopMemoryContext, size, MCXT_ALLOC_NO_OOM)) == NULL)
	{
		DroppedLostStmts++;
		return;
	}
	copy = (AuditStmt *) mem;
	memcpy(copy, st, sizeof(AuditStmt));
	p = mem + MAXALIGN(sizeof(AuditStmt));
	copy->rec.c.rels = (PfgAuditRel *) p;
	memcpy(p, st->rec.c.rels, sizeof(PfgAuditRel) * st->rec.c.nrels);
	p += MAXALIGN(sizeof(PfgAuditRel) * st->rec.c.nrels);
	copy->rec.c.tags = (PfgAuditTag *) p;
	memcpy(p, st->rec.c.tags, sizeof(PfgAuditTag) * st->rec.c.ntags);
	p += MAXALIGN(sizeof(PfgAuditTag) * st->rec.c.ntags);
	strcpy(p, st->rec.purpose);
	copy->rec.purpose = p;
	p += strlen(p) + 1;
	for (int i = 0; i < st->rec.c.ntags; i++)
	{
		if (st->rec.c.tags[i].name == NULL)
			continue;
		strcpy(p, st->rec.c.tags[i].name);
		copy->rec.c.tags[i].name = p;
		p += strlen(p) + 1;
	}
	copy->rec.c.maxrels = copy->rec.c.nrels;
	copy->rec.c.maxtags = copy->rec.c.ntags;
	copy->rec.c.last_rel = &SinkRel;
	copy->rec.c.last_tag = &SinkTag;
	copy->rec.c.cxt = NULL;
	copy->watch = NULL;
	copy->rec.c.purpose_fixed = false;
	copy->rec.c.purpose = NULL;
	copy->linked = false;
	copy->rec.failed = true;
	copy->qd = NULL;
	copy->mcxt = TopMemoryContext;
	copy->next = LostStmts;
	LostStmts = copy;
	NLostStmts++;
}

/* a statement still linked is losing its memory without ExecutorEnd: an error */
static void
lost_if_linked(AuditStmt *st)
{
	if (!st->linked)
		return;					/* ended normally */
	unlink_stmt(st);
	if (st->reads_tags && !st->denied)
		keep_lost_stmt(st);
}

/* the executor's query memory is going */
static void
query_memory_gone(void *arg)
{
	QueryWatch *watch = (QueryWatch *) arg;
	AuditStmt  *st = watch->st;

	if (st == NULL)
		return;					/* the statement's memory went first */
	st->watch = NULL;
	lost_if_linked(st);
}

/* the statement's own memory is going */
static void
stmt_memory_gone(void *arg)
{
	AuditStmt  *st = (AuditStmt *) arg;

	if (st->watch != NULL)
		st->watch->st = NULL;
	st->watch = NULL;
	lost_if_linked(st);
}

static void
link_stmt(AuditStmt *st, QueryDesc *qd)
{
	QueryWatch *watch;

	if (!ExitCallbackSet)
	{
		before_shmem_exit(audit_at_exit, (Datum) 0);
		ExitCallbackSet = true;
	}

	st->qd = qd;
	st->next = ActiveStmts;
	ActiveStmts = st;
	st->linked = true;

	/*
	 * Either memory may go first on an error (both are children of the
	 * memory the statement started in): each is watched.
	 */
	watch = MemoryContextAlloc(qd->estate->es_query_cxt, sizeof(QueryWatch));
	watch->st = st;
	watch->cb.func = query_memory_gone;
	watch->cb.arg = watch;
	MemoryContextRegisterResetCallback(qd->estate->es_query_cxt, &watch->cb);
	st->watch = watch;
	st->cb.func = stmt_memory_gone;
	st->cb.arg = st;
	MemoryContextRegisterResetCallback(st->mcxt, &st->cb);
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
 * Denials
 * ---------------------------------------------------------------------
 */

/* a refusal: its line (audit = denials or all) and its counts */
static void
note_denial(AuditStmt *st, ErrorData *e, const char *reason, char *tag)
{
	if (pfg_audit >= PFG_AUDIT_DENIALS)
		pfg_audit_log_denial(&st->rec, e, reason, tag);
	pfg_usage_add_denial(&st->rec, tag);
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

/*
 * At the start of every statement (hooks.c), in normal context: log and
 * count the statements kept by keep_lost_stmt.
 */
void
pfg_audit_flush_lost(void)
{
	if (LostStmts == NULL || (!IsTransactionState() && !proc_exit_inprogress))
		return;
	while (LostStmts)
	{
		AuditStmt  *st = LostStmts;

		LostStmts = st->next;
		NLostStmts--;
		if (st->rec.bypass || pfg_audit == PFG_AUDIT_ALL)
			pfg_audit_log_read(&st->rec);
		pfg_usage_add_statement(&st->rec);
		pfree(st);
	}
	if (DroppedLostStmts > 0)
	{
		pfg_audit_log_lost(DroppedLostStmts);
		DroppedLostStmts = 0;
	}
	if (AuditNesting == 0)
		pfg_audit_file_flush();
}

/* ---------------------------------------------------------------------
 * The hooks' entry points (hooks.c)
 * ---------------------------------------------------------------------
 */

/*
 * ExecutorStart, before the gate's check and the executor's start: a
 * statement that touches a guarded relation gets its audit state
 * (parallel workers: the leader audits the statement).
 */
void
pfg_audit_executor_start_enter(PfgAuditFrame *frame, QueryDesc *queryDesc,
							   int eflags)
{
	frame->stmt = NULL;
	frame->saved_cur = PfgAuditCur;
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && !IsParallelWorker() && pfg_any_guarded())
	{
		frame->stmt = begin_stmt(queryDesc);
		DenialNoted = false;
	}
	frame->guarded = (frame->stmt != NULL);
}

/* the executor has started: the statement is audited until it ends */
void
pfg_audit_executor_start_leave(PfgAuditFrame *frame, QueryDesc *queryDesc)
{
	if (frame->stmt)
		link_stmt(frame->stmt, queryDesc);
}

void
pfg_audit_executor_start_abort(PfgAuditFrame *frame)
{
	rethrow_noting_denial(frame->stmt);
}

/*
 * ExecutorRun: the gates count into the statement, one level deeper; the
 * rows processed are summed over the runs (cursors).
 */
void
pfg_audit_executor_run_enter(PfgAuditFrame *frame, QueryDesc *queryDesc)
{
	frame->stmt = find_stmt(queryDesc);
	frame->saved_cur = PfgAuditCur;
	frame->guarded = (frame->stmt != NULL);
	if (frame->stmt)
	{
		PfgAuditCur = &frame->stmt->rec.c;
		DenialNoted = false;
	}
	AuditNesting++;
}

void
pfg_audit_executor_run_leave(PfgAuditFrame *frame, QueryDesc *queryDesc)
{
	AuditNesting--;
	PfgAuditCur = frame->saved_cur;
	if (frame->stmt)
		frame->stmt->rec.processed += queryDesc->estate->es_processed;
}

void
pfg_audit_executor_run_abort(PfgAuditFrame *frame, QueryDesc *queryDesc)
{
	AuditNesting--;
	PfgAuditCur = frame->saved_cur;
	if (frame->stmt)
		frame->stmt->rec.processed += queryDesc->estate->es_processed;
	rethrow_noting_denial(frame->stmt);
}

/* ExecutorFinish (AFTER triggers, the rest of a CTE): as ExecutorRun */
void
pfg_audit_executor_finish_enter(PfgAuditFrame *frame, QueryDesc *queryDesc)
{
	frame->stmt = find_stmt(queryDesc);
	frame->saved_cur = PfgAuditCur;
	frame->guarded = (frame->stmt != NULL);
	if (frame->stmt)
		PfgAuditCur = &frame->stmt->rec.c;
	AuditNesting++;
}

void
pfg_audit_executor_finish_leave(PfgAuditFrame *frame)
{
	AuditNesting--;
	PfgAuditCur = frame->saved_cur;
}

void
pfg_audit_executor_finish_abort(PfgAuditFrame *frame)
{
	AuditNesting--;
	PfgAuditCur = frame->saved_cur;
	rethrow_noting_denial(frame->stmt);
}

/*
 * ExecutorEnd, before the executor ends: the statement's line and counts.
 * A top-level statement has its lines (and those of the statements it ran)
 * written.  The statement goes to frame->stmt, for
 * pfg_audit_executor_ended().
 */
void
pfg_audit_executor_end(PfgAuditFrame *frame, QueryDesc *queryDesc)
{
	AuditStmt  *st = find_stmt(queryDesc);

	frame->stmt = st;
	if (st)
	{
		unlink_stmt(st);
		if (st->reads_tags)
		{
			MemoryContext old = MemoryContextSwitchTo(st->mcxt);

			if (st->rec.bypass || pfg_audit == PFG_AUDIT_ALL)
				pfg_audit_log_read(&st->rec);
			pfg_usage_add_statement(&st->rec);
			MemoryContextSwitchTo(old);
		}
	}
	if (AuditNesting == 0)
		pfg_audit_file_flush();
}

/* the executor has ended: the statement's memory goes */
void
pfg_audit_executor_ended(PfgAuditFrame *frame)
{
	if (frame->stmt != NULL)
		MemoryContextDelete(frame->stmt->mcxt);
	frame->stmt = NULL;
}

/*
 * ProcessUtility, before the gate's part and the statement: COPY FROM
 * into a guarded table runs no executor, so refusals of the collection
 * trigger are caught here, and its errors get the redaction mark (the
 * frame says it is guarded).  Every utility statement raises the nesting
 * level of what it runs.
 */
void
pfg_audit_utility_enter(PfgAuditFrame *frame, PlannedStmt *pstmt)
{
	Node	   *parsetree = pstmt->utilityStmt;
	AuditStmt  *st = NULL;

	if (IsA(parsetree, CopyStmt) && ((CopyStmt *) parsetree)->relation &&
		IsTransactionState() && pfg_any_guarded())
	{
		CopyStmt   *stmt = (CopyStmt *) parsetree;
		Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

		GuardedRelation *grel = OidIsValid(relid) ? pfg_guarded_relation(relid) : NULL;

		if (grel)
		{
			st = new_stmt();
			st->rec.command = "COPY";
			add_rel_slot(&st->rec.c, relid);
			DenialNoted = false;

			/*
			 * A bypassing role's COPY TO (pg_dump's way) reads raw values
			 * without an executor: audit it here.  (Other roles' COPY TO
			 * becomes a gated query, audited by the executor hooks.)
			 */
			if (!stmt->is_from && st->rec.bypass)
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
						add_tag_slot(&st->rec.c, col->tag_id, col->tag, strlen(col->tag))->rels = 1;
				}
			}
		}
	}
	frame->stmt = st;
	frame->saved_cur = PfgAuditCur;
	frame->guarded = (st != NULL);
	AuditNesting++;
}

/*
 * The utility statement has run: a bypassing role's COPY TO is reported.
 * A top-level one has its lines (and those of what it ran) written.
 */
void
pfg_audit_utility_leave(PfgAuditFrame *frame, QueryCompletion *qc)
{
	AuditStmt  *st = frame->stmt;

	AuditNesting--;
	if (st && st->reads_tags)
	{
		st->rec.processed = qc ? qc->nprocessed : 0;
		pfg_audit_log_read(&st->rec);
		pfg_usage_add_statement(&st->rec);
	}
	if (AuditNesting == 0)
		pfg_audit_file_flush();
}

void
pfg_audit_utility_abort(PfgAuditFrame *frame)
{
	AuditNesting--;
	rethrow_noting_denial(frame->stmt);
}

/* ---------------------------------------------------------------------
 * Start-up
 * ---------------------------------------------------------------------
 */

/*
 * Statements unlink themselves as their memory goes, and the hooks restore
 * the nesting level and the counting target on the way out of an error, so
 * a transaction's end (which may come in the middle of a procedure) leaves
 * those alone.  It has the lines waiting in the audit file's buffer written
 * (on commit and on abort: a refusal's line is written as its transaction
 * aborts).
 */
static void
audit_xact_callback(XactEvent event, void *arg)
{
	DenialNoted = false;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			pfg_audit_file_xact_end();
			break;
		default:
			break;
	}
}

/* at load: the transaction callback (the hooks are in hooks.c) */
void
pfg_audit_init(void)
{
	RegisterXactCallback(audit_xact_callback, NULL);
}
