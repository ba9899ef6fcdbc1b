/*-------------------------------------------------------------------------
 *
 * gate_exec.h
 *	  How the planner's rewriting (gate.c) calls the gate functions
 *	  (gate_exec.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_GATE_EXEC_H
#define PROFILE_GUARD_GATE_EXEC_H

#include "nodes/primnodes.h"

/*
 * The planner hook writes its gate calls with this call format, which the
 * parser never gives our functions: a gate finding any other format (or no
 * expression at all) was called by hand and refuses to answer.
 */
#define PFG_GATE_CALL_FORMAT COERCE_SQL_SYNTAX

#endif							/* PROFILE_GUARD_GATE_EXEC_H */
