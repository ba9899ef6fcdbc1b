/*-------------------------------------------------------------------------
 *
 * gated_scan.h
 *	  The gated scan: a sequential scan of a wide-shape guarded table that
 *	  takes its row gate's and cell gates' decisions itself (gated_scan.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_GATED_SCAN_H
#define PROFILE_GUARD_GATED_SCAN_H

#include "nodes/plannodes.h"

extern void pfg_gated_scan_init(void);
extern void pfg_gated_scan_plan(PlannedStmt *stmt, Oid row_gate_fn,
								Oid cell_gate_fn);

#endif							/* PROFILE_GUARD_GATED_SCAN_H */
