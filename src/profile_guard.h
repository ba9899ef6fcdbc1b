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

#include "errcodes.h"

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
extern char *profile_guard_age_time_zone;
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
struct RangeTblEntry;
extern bool pg_rte_reads_rows(struct RangeTblEntry *rte);
extern bool pg_rte_reads_tags_of(struct RangeTblEntry *rte, GuardedRelation *grel);
extern const GuardedColumn *pg_guarded_column(GuardedRelation *grel, AttrNumber attnum);
extern void pg_check_guarded_alter(Node *parsetree);
extern List *pg_tree_before(Node *parsetree);
extern void pg_tree_after(List *changes);
extern int	pg_tag_id_lookup(const char *name, int len, bool *sensitive);
extern SPIPlanPtr pg_keep_catalog_plan(const char *query, int nargs, Oid *argtypes);
extern void pg_plan_for_key_lookups(void);

/*
 * Acting as another role for a while: as that role, in a security-restricted
 * operation, in a new GUC nest level with a fixed search_path.  What
 * pg_switch_role() saved, pg_restore_role() puts back; an error restores it
 * through (sub)transaction abort.
 */
typedef struct PgSavedRole
{
	Oid			save_userid;
	int			save_sec_context;
	int			guc_level;
} PgSavedRole;

extern void pg_switch_role(Oid role, const char *search_path, PgSavedRole *saved);
extern void pg_restore_role(PgSavedRole *saved);

/* running catalog queries with the rights of our schema's owner */
typedef PgSavedRole PgCatalogAccess;

extern void pg_begin_catalog_access(PgCatalogAccess *ca, bool point_lookup);
extern void pg_end_catalog_access(PgCatalogAccess *ca);

/* consent_cache.c: who may see what under which purpose */
extern bool pg_current_user_bypasses(void);
extern void pg_check_declared_purpose(Oid relid, const char *tag);

/* gate.c: the hooks */
extern void pg_gate_init(void);

/*
 * The planner hook writes its gate calls with this call format, which the
 * parser never gives our functions: a gate finding any other format (or no
 * expression at all) was called by hand and refuses to answer.
 */
#define PG_GATE_CALL_FORMAT COERCE_SQL_SYNTAX

#endif							/* PROFILE_GUARD_H */
