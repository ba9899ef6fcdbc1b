/*-------------------------------------------------------------------------
 *
 * profile_guard.h
 *	  Declarations shared by the files of profile_guard: settings, the
 *	  SQLSTATEs we raise, and each file's entry points.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_H
#define PROFILE_GUARD_H

#include "executor/spi.h"
#include "nodes/bitmapset.h"
#include "utils/timestamp.h"

#define PG_SCHEMA_NAME		"profile_guard"
#define PG_EXTENSION_NAME	"profile_guard"

/*
 * SQLSTATEs.  We reuse PostgreSQL's own codes so that clients and drivers
 * classify our errors without learning new ones.
 */
#define PGERR_NO_PURPOSE			ERRCODE_INSUFFICIENT_PRIVILEGE		/* 42501 */
#define PGERR_PURPOSE_NOT_ALLOWED	ERRCODE_INSUFFICIENT_PRIVILEGE		/* 42501 */
#define PGERR_UNKNOWN_PURPOSE		ERRCODE_UNDEFINED_OBJECT			/* 42704 */
#define PGERR_PURPOSE_UNUSABLE		ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE	/* 55000 */
#define PGERR_NOT_PRELOADED			ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE	/* 55000 */

/* audit levels (profile_guard.audit) */
typedef enum ProfileGuardAuditLevel
{
	PG_AUDIT_OFF,
	PG_AUDIT_DENIALS,
	PG_AUDIT_ALL
} ProfileGuardAuditLevel;

/* profile_guard.c: settings */
extern char *profile_guard_purpose;
extern uint64 profile_guard_purpose_generation;
extern int	profile_guard_minor_age;
extern int	profile_guard_audit;
extern bool profile_guard_loaded;

extern void profile_guard_require_preload(void);

/* catalog.c: what is guarded, read from our catalog tables */
typedef struct GuardedColumn
{
	AttrNumber	attnum;
	int			tag_id;
	char	   *tag;
	bool		sensitive;
} GuardedColumn;

typedef struct GuardedRelation
{
	Oid			relid;			/* hash key */
	AttrNumber	subject_attnum;
	Oid			subject_type;
	AttrNumber	tag_attnum;		/* long shape: column naming the tag */
	AttrNumber	value_attnum;	/* long shape: column holding the value */
	int			ncolumns;		/* wide shape: classified columns */
	GuardedColumn *columns;
	Bitmapset  *tag_attnums;	/* attnums of every tag-bearing column */
} GuardedRelation;

extern Oid	pg_schema_oid(void);
extern Oid	pg_catalog_relid(const char *relname);
extern bool pg_extension_present(void);
extern bool pg_any_guarded(void);
extern GuardedRelation *pg_guarded_relation(Oid relid);
extern bool pg_rte_reads_tags(Bitmapset *selectedCols, GuardedRelation *grel);
extern const GuardedColumn *pg_guarded_column(GuardedRelation *grel, AttrNumber attnum);
extern int	pg_tag_id_lookup(const char *name, int len, bool *sensitive);
extern SPIPlanPtr pg_keep_catalog_plan(const char *query, int nargs, Oid *argtypes);
extern void pg_plan_for_key_lookups(void);

/* consent_cache.c: who may see what under which purpose */
extern bool pg_current_user_bypasses(void);
extern void pg_check_declared_purpose(Oid relid, const char *tag);
extern void pg_consent_cache_init(void);

/* gate.c: the hooks */
extern void pg_gate_init(void);

#endif							/* PROFILE_GUARD_H */
