/*-------------------------------------------------------------------------
 *
 * audit.h
 *	  The audited statements' state (audit.c): what the gates count into,
 *	  the record of a statement that the audit line (audit_log.c) and the
 *	  usage counters (usage.c) report, and the entry points the hooks
 *	  (hooks.c) call.
 *
 *	  The gate functions count what they do through the inline functions
 *	  below: a pointer dereference, a compare and an increment per call.
 *	  PfgAuditCur always points somewhere (a sink when no statement is being
 *	  audited), so the gates never test for NULL.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_AUDIT_H
#define PROFILE_GUARD_AUDIT_H

#include "executor/execdesc.h"
#include "nodes/plannodes.h"
#include "tcop/cmdtag.h"

#include "audit_record.h"

extern PGDLLIMPORT PfgAuditCounters *PfgAuditCur;

extern PfgAuditRel *pfg_audit_rel_slot(Oid relid);
extern int	pfg_audit_nesting(void);
extern PfgAuditTag *pfg_audit_tag_slot(int tag_id, const char *name, int len);
extern int	pfg_audit_tag_index(int tag_id);
extern PfgAuditCounters *pfg_audit_counters_create(MemoryContext cxt);
extern PfgAuditRel *pfg_audit_rel_slot_in(PfgAuditCounters *c, Oid relid);
extern PfgAuditTag *pfg_audit_tag_slot_in(PfgAuditCounters *c, int tag_id,
											const char *name, int len);

/* _row_gate: one row examined */
static inline void
pfg_audit_count_row(Oid relid, bool visible)
{
	PfgAuditRel *r = PfgAuditCur->last_rel;

	if (unlikely(r->relid != relid))
		r = pfg_audit_rel_slot(relid);
	r->seen++;
	if (!visible)
		r->hidden++;
}

/* _cell_gate, _sensitive_cell_gate, _row_mask: one non-NULL cell */
static inline void
pfg_audit_count_cell(int tag_id, bool served)
{
	PfgAuditTag *t = PfgAuditCur->last_tag;

	if (unlikely(t->tag_id != tag_id))
		t = pfg_audit_tag_slot(tag_id, NULL, 0);
	if (served)
		t->served++;
	else
		t->masked++;
}

/*
 * The same, for a call site that keeps in *hint where its tag's counters
 * were last (a query's cell gates each count their own tag, in turn).
 */
static inline void
pfg_audit_count_cell_at(int *hint, int tag_id, bool served)
{
	PfgAuditCounters *c = PfgAuditCur;
	PfgAuditTag *t;
	int			i = *hint;

	if (likely(i < c->ntags && c->tags[i].tag_id == tag_id))
		t = &c->tags[i];
	else if ((i = pfg_audit_tag_index(tag_id)) >= 0)
	{
		*hint = i;
		t = &c->tags[i];
	}
	else
		t = pfg_audit_tag_slot(tag_id, NULL, 0);	/* no statement counted */
	if (served)
		t->served++;
	else
		t->masked++;
}

/* _tag_row_gate (long shape): one tag row examined */
static inline void
pfg_audit_count_tag_row(Oid relid, int tag_id, const char *name, int len, bool visible)
{
	PfgAuditTag *t = PfgAuditCur->last_tag;

	pfg_audit_count_row(relid, visible);
	if (tag_id < 0)
		return;
	if (unlikely(t->tag_id != tag_id))
		t = pfg_audit_tag_slot(tag_id, name, len);
	if (visible)
		t->served++;
	else
		t->hidden++;
}


/*
 * The hooks' entry points.  Each hook keeps a frame on its stack while it
 * calls the next hook: *_enter fills it in, *_leave runs after a normal
 * return, *_abort in PG_CATCH, where it restores what *_enter changed and
 * re-throws the error (logging and counting it first when it is one of our
 * refusals).  'guarded' tells the hook that the statement touches a
 * guarded relation: its errors are to be marked for redaction.
 */
typedef struct PfgAuditFrame
{
	struct AuditStmt *stmt;		/* the statement audited, or NULL */
	PfgAuditCounters *saved_cur;	/* the counting target to restore */
	bool		guarded;
} PfgAuditFrame;

extern void pfg_audit_init(void);
extern void pfg_audit_flush_lost(void);

extern void pfg_audit_executor_start_enter(PfgAuditFrame *frame,
										   QueryDesc *queryDesc, int eflags);
extern void pfg_audit_executor_start_leave(PfgAuditFrame *frame,
										   QueryDesc *queryDesc);
extern void pfg_audit_executor_start_abort(PfgAuditFrame *frame) pg_attribute_noreturn();

extern void pfg_audit_executor_run_enter(PfgAuditFrame *frame, QueryDesc *queryDesc);
extern void pfg_audit_executor_run_leave(PfgAuditFrame *frame, QueryDesc *queryDesc);
extern void pfg_audit_executor_run_abort(PfgAuditFrame *frame,
										 QueryDesc *queryDesc) pg_attribute_noreturn();

extern void pfg_audit_executor_finish_enter(PfgAuditFrame *frame, QueryDesc *queryDesc);
extern void pfg_audit_executor_finish_leave(PfgAuditFrame *frame);
extern void pfg_audit_executor_finish_abort(PfgAuditFrame *frame) pg_attribute_noreturn();

extern void pfg_audit_executor_end(PfgAuditFrame *frame, QueryDesc *queryDesc);
extern void pfg_audit_executor_ended(PfgAuditFrame *frame);

extern void pfg_audit_utility_enter(PfgAuditFrame *frame, PlannedStmt *pstmt);
extern void pfg_audit_utility_leave(PfgAuditFrame *frame, QueryCompletion *qc);
extern void pfg_audit_utility_abort(PfgAuditFrame *frame) pg_attribute_noreturn();

#endif							/* PROFILE_GUARD_AUDIT_H */
