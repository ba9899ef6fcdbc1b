/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  What is guarded, read from our catalog tables, and running catalog
 *	  queries with the rights of our schema's owner (catalog.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_CATALOG_H
#define PROFILE_GUARD_CATALOG_H

#include "executor/spi.h"
#include "nodes/bitmapset.h"

/* what is guarded, read from our catalog tables */
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
	AttrNumber	collected_attnum;	/* the collected-at column, if any */
	int			ncolumns;		/* wide shape: classified columns */
	GuardedColumn *columns;
	Bitmapset  *tag_attnums;	/* attnums of every tag-bearing column */
	Oid			root;			/* the guarded table it is guarded as */
	bool		stamped;		/* collection stamps (stamp_collection) */
} GuardedRelation;

extern Oid	pfg_schema_oid(void);
extern Oid	pfg_catalog_relid(const char *relname);
extern bool pfg_extension_present(void);
extern bool pfg_any_guarded(void);
extern GuardedRelation *pfg_guarded_relation(Oid relid);
extern GuardedRelation *pfg_guarded_relation_copy(Oid relid);
extern uint64 pfg_guard_cache_flushes(void);
extern bool pfg_rte_reads_tags(Bitmapset *selectedCols, GuardedRelation *grel);
struct RangeTblEntry;
extern bool pfg_rte_reads_rows(struct RangeTblEntry *rte);
extern bool pfg_rte_reads_tags_of(struct RangeTblEntry *rte, GuardedRelation *grel);
extern const GuardedColumn *pfg_guarded_column(GuardedRelation *grel, AttrNumber attnum);
extern void pfg_check_guarded_alter(Node *parsetree);
extern int	pfg_tag_id_lookup(const char *name, int len, bool *sensitive);
extern SPIPlanPtr pfg_keep_catalog_plan(const char *query, int nargs, Oid *argtypes);
extern SPIPlanPtr pfg_keep_generic_plan(SPIPlanPtr *kept, const char *query,
										int nargs, Oid *argtypes);
extern void pfg_plan_for_key_lookups(void);
extern void pfg_plan_without_jit(void);

/*
 * Acting as another role for a while: as that role, in a security-restricted
 * operation, in a new GUC nest level with a fixed search_path.  What
 * pfg_switch_role() saved, pfg_restore_role() puts back; an error restores it
 * through (sub)transaction abort.
 */
typedef struct PfgSavedRole
{
	Oid			save_userid;
	int			save_sec_context;
	int			guc_level;
} PfgSavedRole;

extern void pfg_switch_role(Oid role, const char *search_path, PfgSavedRole *saved);
extern void pfg_restore_role(PfgSavedRole *saved);

/* running catalog queries with the rights of our schema's owner */
typedef PfgSavedRole PfgCatalogAccess;

extern void pfg_begin_catalog_access(PfgCatalogAccess *ca, bool point_lookup);
extern void pfg_end_catalog_access(PfgCatalogAccess *ca);

#endif							/* PROFILE_GUARD_CATALOG_H */
