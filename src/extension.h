/*-------------------------------------------------------------------------
 *
 * extension.h
 *	  The extension's names, its SQLSTATEs (errcodes.h) and how its SQL-callable
 *	  functions are declared.  Included by every file; includes none of ours
 *	  but errcodes.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_EXTENSION_H
#define PROFILE_GUARD_EXTENSION_H

#include "fmgr.h"

#include "errcodes.h"

#define PFG_SCHEMA_NAME		"profile_guard"
#define PFG_EXTENSION_NAME	"profile_guard"

/*
 * The library is built with -fvisibility=hidden: only what the server looks
 * up by name is exported, and the Makefile defines PGDLLEXPORT for that.
 * Every SQL-callable function is declared with this macro.
 */
#define PFG_SQL_FUNCTION(name) \
	extern PGDLLEXPORT Datum name(PG_FUNCTION_ARGS); \
	PG_FUNCTION_INFO_V1(name)

#endif							/* PROFILE_GUARD_EXTENSION_H */
