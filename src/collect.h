/*-------------------------------------------------------------------------
 *
 * collect.h
 *	  The write path's checks and encryption of a row (collect.c), and the
 *	  collecting insert that runs them in an INSERT's plan
 *	  (collect_plan.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_COLLECT_H
#define PROFILE_GUARD_COLLECT_H

#include "nodes/plannodes.h"
#include "utils/reltrigger.h"
#include "utils/relcache.h"

/* a place rows are collected from: the trigger, or a collecting insert */
typedef struct CollectSite CollectSite;

extern CollectSite *pfg_collect_site(MemoryContext cxt);
extern void pfg_collect_new_row(CollectSite *site, Relation rel,
								Datum *values, bool *nulls);
extern bool pfg_trigger_fires_now(const Trigger *t);

extern void pfg_collect_plan_init(void);
extern void pfg_collect_plan(PlannedStmt *stmt);

#endif							/* PROFILE_GUARD_COLLECT_H */
