/*-------------------------------------------------------------------------
 *
 * audit_record.h
 *	  What an audited statement counted and did: the counters the gates
 *	  write (through audit.h) and the record that the audit line
 *	  (audit_log.c) and the usage counters (usage.c) report.  Types only,
 *	  so that those two do not depend on the statements' state (audit.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_AUDIT_RECORD_H
#define PROFILE_GUARD_AUDIT_RECORD_H

#include "nodes/bitmapset.h"

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

/*
 * What one statement did, as its audit line (audit_log.c) and the usage
 * counters (usage.c) report it.
 */
#define PFG_AUDIT_MAX_RELS 32	/* relation slots with a bit in PfgAuditTag.rels */

typedef struct PfgAuditRecord
{
	PfgAuditCounters c;			/* what the gates counted */
	Oid			userid;
	char	   *purpose;		/* as declared when it started; "": none */
	const char *command;
	int			level;			/* nesting level of the statement */
	bool		bypass;			/* role reads raw values, no gates ran */
	bool		failed;			/* ended by an error, not by ExecutorEnd */
	uint64		processed;		/* rows, summed over the runs (cursors) */
} PfgAuditRecord;

/* a tag's name, or "#" and its id */
static inline const char *
pfg_audit_tag_name(const PfgAuditTag *t)
{
	return t->name ? t->name : psprintf("#%d", t->tag_id);
}

/* rows hidden that count for a tag: its own (long shape) and its relations' */
static inline int64
pfg_audit_tag_rows_hidden(const PfgAuditRecord *rec, const PfgAuditTag *t)
{
	int64		n = t->hidden;

	for (int i = 0; i < rec->c.nrels && i < PFG_AUDIT_MAX_RELS; i++)
		if (t->rels & (((uint32) 1) << i))
			n += rec->c.rels[i].hidden;
	return n;
}

#endif							/* PROFILE_GUARD_AUDIT_RECORD_H */
