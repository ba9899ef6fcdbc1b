/*-------------------------------------------------------------------------
 *
 * audit.h
 *	  The audit trail's and usage counters' interface (audit.c), and the
 *	  redaction of values in error messages (redact.c).
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

/* rows the row gate examined and hid, per relation */
typedef struct PfgAuditRel
{
	Oid			relid;
	int64		seen;
	int64		hidden;
} PfgAuditRel;

/* cells the cell gates served and masked, per tag */
typedef struct PfgAuditTag
{
	int			tag_id;
	int64		served;
	int64		masked;
	int64		hidden;			/* long shape: tag rows hidden */
	uint32		rels;			/* wide shape: slots of relations read for it */
	char	   *name;
} PfgAuditTag;

typedef struct PfgAuditCounters
{
	PfgAuditRel *last_rel;		/* memo: the slot used last */
	PfgAuditTag *last_tag;
	int			nrels;
	int			maxrels;
	PfgAuditRel *rels;
	int			ntags;
	int			maxtags;
	PfgAuditTag *tags;
	MemoryContext cxt;			/* where slots grow */
	/* the statement's purpose, fixed when it started (the sink has none) */
	bool		purpose_fixed;
	const char *purpose;		/* NULL: none declared */
	uint64		purpose_generation;
} PfgAuditCounters;

extern PGDLLIMPORT PfgAuditCounters *PfgAuditCur;

extern PfgAuditRel *pfg_audit_rel_slot(Oid relid);
extern int	pfg_audit_nesting(void);
extern PfgAuditTag *pfg_audit_tag_slot(int tag_id, const char *name, int len);

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

/* audit.c */
extern void pfg_audit_define_settings(void);
extern void pfg_audit_init(void);

/* redact.c */
extern void pfg_redact_init(void);
extern void pfg_redact_refresh(void);
extern void pfg_redact_error_callback(void *arg);

#endif							/* PROFILE_GUARD_AUDIT_H */
