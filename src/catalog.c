/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  What is guarded: a backend-local map from relation OID to the guarded
 *	  shape of that relation (subject column, tag columns and their tags),
 *	  read straight from our catalog tables and kept fresh by relcache
 *	  invalidation.  Also _policy_changed(), the one way the SQL API tells
 *	  every backend that policy changed, and the check that refuses schema
 *	  changes that would let a tag column out from under the catalog.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_relation.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "invalidation.h"
#include "spi_checked.h"


/* attribute numbers of the catalog tables we read (sql/ext/10_catalog.sql) */
#define Anum_guarded_table_relid			1
#define Anum_guarded_table_subject_column	2
#define Anum_guarded_table_collected_at_column 3
#define Anum_guarded_table_tag_column		4
#define Anum_guarded_table_value_column		5
#define Anum_classified_column_relid		1
#define Anum_classified_column_column_name	2
#define Anum_classified_column_tag			3
#define Anum_tag_tag						1
#define Anum_tag_tag_id						2
#define Anum_tag_sensitivity				4

/* the map and its memory; NULL map means "not loaded" */
static MemoryContext GuardCacheContext = NULL;
static HTAB *GuardedRelations = NULL;
static HTAB *Tags = NULL;

/*
 * Relations guarded through an ancestor (partitions and inheritance
 * children of a guarded table), derived on first use, and the relations
 * known to have no guarded ancestor.  Both are flushed with the map.
 */
static HTAB *DerivedRelations = NULL;
static HTAB *UnguardedRelations = NULL;

/*
 * Invalidations that arrived while the map was not installed.  A load opens
 * tables and looks up the syscache, which accepts invalidation messages: one
 * that arrives after a table was read would be lost, so a load that sees
 * this counter move starts over (as postgres_fdw's shippable.c builds an
 * entry only after its look-up).
 */
static uint64 GuardCacheFlushes = 0;

/* OIDs resolved once per load (they change only with the extension) */
static Oid	ConsentRelid = InvalidOid;

static void flush_guard_cache(void);
static GuardedRelation *derived_guarded_relation(Oid relid);
static void load_guard_cache(void);

/*
 * Relation OID of one of our catalog tables, or InvalidOid when the extension
 * is not installed in this database.  Syscache look-ups only: cheap enough
 * for every planned statement.
 */
Oid
pfg_catalog_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid(PFG_SCHEMA_NAME, true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid(relname, nsp);
}

Oid
pfg_schema_oid(void)
{
	return get_namespace_oid(PFG_SCHEMA_NAME, true);
}

/*
 * Is the extension usable in this database right now?  Not while its own
 * script runs (CREATE or ALTER EXTENSION): its catalog is half made then,
 * and a cache loaded from it would miss the invalidation sentinel (an event
 * trigger can make us look during the script).  Otherwise we test for the
 * catalog table that the planner hook needs.
 */
bool
pfg_extension_present(void)
{
	if (GuardedRelations != NULL)
		return true;
	if (creating_extension &&
		CurrentExtensionObject == get_extension_oid(PFG_EXTENSION_NAME, true))
		return false;
	return OidIsValid(pfg_catalog_relid("classified_column")) &&
		OidIsValid(pfg_catalog_relid("consent"));
}

/*
 * Invalidation (invalidation.c): our catalog changed (signalled on the
 * consent table by _policy_changed), a guarded relation changed shape (its
 * attnums may have moved), or everything was reset.  While the map is not
 * installed, a load may be under way that cannot tell yet which relations
 * it will hold; a derivation (below) may be under way at any time: every
 * invalidation is counted.  A relation guarded through an ancestor depends
 * on every relation up to that ancestor (each is in one of the maps), so
 * an invalidation of any of them flushes everything; attaching, detaching
 * or (dis)inheriting invalidates both the parent and the child.  A relation
 * with no guarded ancestor depends only on its own parents: it is forgotten
 * alone.
 */
void
pfg_guard_cache_relcache_invalidated(Oid relid)
{
	GuardCacheFlushes++;
	if (GuardedRelations == NULL)
		return;
	if (relid == InvalidOid || relid == ConsentRelid ||
		hash_search(GuardedRelations, &relid, HASH_FIND, NULL) != NULL ||
		(DerivedRelations &&
		 hash_search(DerivedRelations, &relid, HASH_FIND, NULL) != NULL))
		flush_guard_cache();
	else if (UnguardedRelations)
		(void) hash_search(UnguardedRelations, &relid, HASH_REMOVE, NULL);
}

static void
flush_guard_cache(void)
{
	GuardedRelations = NULL;
	DerivedRelations = NULL;
	UnguardedRelations = NULL;
	Tags = NULL;
	ConsentRelid = InvalidOid;
	if (GuardCacheContext)
		MemoryContextReset(GuardCacheContext);
}

static char *
text_attr(HeapTuple tup, TupleDesc desc, int attnum, bool *isnull)
{
	Datum		d = heap_getattr(tup, attnum, desc, isnull);

	if (*isnull)
		return NULL;
	if (TupleDescAttr(desc, attnum - 1)->atttypid == NAMEOID)
		return pstrdup(NameStr(*DatumGetName(d)));
	return TextDatumGetCString(d);
}

typedef struct TagInfo
{
	char		tag[NAMEDATALEN * 2];	/* hash key */
	int			tag_id;
	bool		sensitive;
} TagInfo;

typedef enum GuardCatalogRead
{
	GUARD_CATALOG_READ,
	GUARD_CATALOG_ABSENT,		/* the extension's tables are missing */
	GUARD_CATALOG_DROPPED		/* one was dropped while we waited to lock it */
} GuardCatalogRead;

/*
 * Read guarded_table, classified_column and tag into a new map, in
 * GuardCacheContext.  Column names are resolved to attribute numbers here,
 * so dropped or re-added columns are seen as they are now.
 *
 * Each table is found by name, then locked: a DROP EXTENSION (and a
 * CREATE EXTENSION after it, in the same transaction) committing while we
 * wait for the lock leaves the OID we found without a table.  That is
 * GUARD_CATALOG_DROPPED, for the caller to read again: taking the lock
 * took in the invalidations, so the names lead to what exists now.
 */
static GuardCatalogRead
read_guard_catalog(HTAB **tags_out, HTAB **map_out)
{
	Oid			guarded_relid,
				classified_relid,
				tag_relid;
	HASHCTL		ctl;
	AttrNumber	stamp_attnum;
	HTAB	   *tags;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	TupleDesc	desc;
	MemoryContext oldcxt;
	HTAB	   *map;

	guarded_relid = pfg_catalog_relid("guarded_table");
	classified_relid = pfg_catalog_relid("classified_column");
	tag_relid = pfg_catalog_relid("tag");
	ConsentRelid = pfg_catalog_relid("consent");
	if (!OidIsValid(guarded_relid) || !OidIsValid(classified_relid) ||
		!OidIsValid(tag_relid) || !OidIsValid(ConsentRelid))
		return GUARD_CATALOG_ABSENT;

	oldcxt = MemoryContextSwitchTo(GuardCacheContext);

	/* tags: name -> id, sensitivity */
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN * 2;
	ctl.entrysize = sizeof(TagInfo);
	ctl.hcxt = GuardCacheContext;
	tags = hash_create("profile_guard tags", 256, &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	rel = try_table_open(tag_relid, AccessShareLock);
	if (rel == NULL)
	{
		MemoryContextSwitchTo(oldcxt);
		return GUARD_CATALOG_DROPPED;
	}
	desc = RelationGetDescr(rel);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		char	   *name = text_attr(tup, desc, Anum_tag_tag, &isnull);
		char	   *sens;
		TagInfo    *ti;

		if (isnull || strlen(name) >= NAMEDATALEN * 2)
			continue;
		ti = hash_search(tags, name, HASH_ENTER, NULL);
		ti->tag_id = DatumGetInt32(heap_getattr(tup, Anum_tag_tag_id, desc, &isnull));
		sens = text_attr(tup, desc, Anum_tag_sensitivity, &isnull);
		ti->sensitive = (!isnull && strcmp(sens, "sensitive") == 0);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	/* guarded relations */
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(GuardedRelation);
	ctl.hcxt = GuardCacheContext;
	map = hash_create("profile_guard guarded relations", 64, &ctl,
					  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	rel = try_table_open(guarded_relid, AccessShareLock);
	if (rel == NULL)
	{
		MemoryContextSwitchTo(oldcxt);
		return GUARD_CATALOG_DROPPED;
	}
	desc = RelationGetDescr(rel);
	/* found by name: it came with 1.2, after the columns of 1.1 */
	stamp_attnum = attnameAttNum(rel, "stamp_collection", false);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(heap_getattr(tup, Anum_guarded_table_relid, desc, &isnull));
		char	   *subject = text_attr(tup, desc, Anum_guarded_table_subject_column, &isnull);
		char	   *tagcol;
		char	   *valcol;
		char	   *collcol;
		GuardedRelation *g;

		if (!OidIsValid(relid) || !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
			continue;			/* dropped behind our back */
		g = hash_search(map, &relid, HASH_ENTER, NULL);
		memset(((char *) g) + sizeof(Oid), 0, sizeof(GuardedRelation) - sizeof(Oid));
		g->subject_attnum = get_attnum(relid, subject);
		g->subject_type = get_atttype(relid, g->subject_attnum);
		g->root = relid;
		/*
		 * collection stamps: chosen per table (stamp_collection, absent
		 * before 1.2), for a table without a collected-at column
		 */
		collcol = text_attr(tup, desc, Anum_guarded_table_collected_at_column, &isnull);
		if (collcol)
			g->collected_attnum = get_attnum(relid, collcol);
		g->stamped = (collcol == NULL);
		if (stamp_attnum <= 0)
			g->stamped = false;
		else
		{
			Datum		d = heap_getattr(tup, stamp_attnum, desc, &isnull);

			g->stamped = g->stamped && !isnull && DatumGetBool(d);
		}
		tagcol = text_attr(tup, desc, Anum_guarded_table_tag_column, &isnull);
		if (tagcol)
		{
			g->tag_attnum = get_attnum(relid, tagcol);
			g->tag_attnums = bms_add_member(g->tag_attnums, g->tag_attnum);
		}
		valcol = text_attr(tup, desc, Anum_guarded_table_value_column, &isnull);
		if (valcol)
		{
			g->value_attnum = get_attnum(relid, valcol);
			g->tag_attnums = bms_add_member(g->tag_attnums, g->value_attnum);
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	/* classified columns of wide tables */
	rel = try_table_open(classified_relid, AccessShareLock);
	if (rel == NULL)
	{
		MemoryContextSwitchTo(oldcxt);
		return GUARD_CATALOG_DROPPED;
	}
	desc = RelationGetDescr(rel);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(heap_getattr(tup, Anum_classified_column_relid, desc, &isnull));
		char	   *colname = text_attr(tup, desc, Anum_classified_column_column_name, &isnull);
		char	   *tag = text_attr(tup, desc, Anum_classified_column_tag, &isnull);
		GuardedRelation *g = hash_search(map, &relid, HASH_FIND, NULL);
		TagInfo    *ti = tag ? hash_search(tags, tag, HASH_FIND, NULL) : NULL;
		AttrNumber	attnum;
		GuardedColumn *c;

		if (g == NULL || ti == NULL)
			continue;
		attnum = get_attnum(relid, colname);
		if (attnum == InvalidAttrNumber)
			continue;
		if (g->columns == NULL)
			g->columns = palloc(sizeof(GuardedColumn) * 16);
		else if (g->ncolumns % 16 == 0)
			g->columns = repalloc(g->columns, sizeof(GuardedColumn) * (g->ncolumns + 16));
		c = &g->columns[g->ncolumns++];
		c->attnum = attnum;
		c->tag_id = ti->tag_id;
		c->tag = pstrdup(tag);
		c->sensitive = ti->sensitive;
		g->tag_attnums = bms_add_member(g->tag_attnums, attnum);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	MemoryContextSwitchTo(oldcxt);
	*tags_out = tags;
	*map_out = map;
	return GUARD_CATALOG_READ;
}

/*
 * Install the map, read again until no invalidation arrived while reading
 * (each read starts from a fresh catalog snapshot, so it sees the change
 * that the invalidation announced).
 */
static void
load_guard_cache(void)
{
	HTAB	   *tags;
	HTAB	   *map;
	uint64		flushes;
	GuardCatalogRead read;

	Assert(GuardedRelations == NULL);
	if (GuardCacheContext == NULL)
		GuardCacheContext = AllocSetContextCreate(TopMemoryContext,
												  "profile_guard guarded relations",
												  ALLOCSET_SMALL_SIZES);
	do
	{
		CHECK_FOR_INTERRUPTS();
		/* drop what an earlier read left (discarded, or cut by an error) */
		MemoryContextReset(GuardCacheContext);
		flushes = GuardCacheFlushes;
		read = read_guard_catalog(&tags, &map);
		if (read == GUARD_CATALOG_ABSENT)
			return;
	} while (read == GUARD_CATALOG_DROPPED || flushes != GuardCacheFlushes);
	Tags = tags;
	GuardedRelations = map;
}

/*
 * The guarded shape of a relation, or NULL when it is not guarded (or the
 * extension is absent).  A partition or inheritance child of a guarded
 * table is guarded as its nearest guarded ancestor is, with its own
 * attribute numbers.  The result lives until the next invalidation.
 */
GuardedRelation *
pfg_guarded_relation(Oid relid)
{
	GuardedRelation *grel;

	if (GuardedRelations == NULL)
	{
		if (!pfg_extension_present())
			return NULL;
		load_guard_cache();
		if (GuardedRelations == NULL)
			return NULL;
	}
	grel = (GuardedRelation *) hash_search(GuardedRelations, &relid, HASH_FIND, NULL);
	if (grel != NULL || !OidIsValid(relid) ||
		hash_get_num_entries(GuardedRelations) == 0)
		return grel;
	if (UnguardedRelations &&
		hash_search(UnguardedRelations, &relid, HASH_FIND, NULL) != NULL)
		return NULL;
	if (DerivedRelations &&
		(grel = hash_search(DerivedRelations, &relid, HASH_FIND, NULL)) != NULL)
		return grel;
	return derived_guarded_relation(relid);
}

/*
 * A copy of the guarded shape of a relation, in the current memory context,
 * or NULL when it is not guarded.  For a caller that keeps it while it runs
 * anything that may take in invalidation messages (opening a table, SPI, a
 * syscache look-up, a purpose's answers): the first that concerns our
 * catalog or the relation frees the map's own.
 */
GuardedRelation *
pfg_guarded_relation_copy(Oid relid)
{
	GuardedRelation *grel = pfg_guarded_relation(relid);
	GuardedRelation *copy;

	if (grel == NULL)
		return NULL;
	copy = palloc(sizeof(GuardedRelation));
	*copy = *grel;
	copy->columns = palloc(sizeof(GuardedColumn) * Max(grel->ncolumns, 1));
	for (int i = 0; i < grel->ncolumns; i++)
	{
		copy->columns[i] = grel->columns[i];
		copy->columns[i].tag = pstrdup(grel->columns[i].tag);
	}
	copy->tag_attnums = bms_copy(grel->tag_attnums);
	return copy;
}

/*
 * How many relcache invalidations this backend has taken in: a copy of a
 * guarded shape made when it was the same is still the shape.
 */
uint64
pfg_guard_cache_flushes(void)
{
	return GuardCacheFlushes;
}

/* the direct parents of a relation (partition parent or inherited tables) */
static List *
inheritance_parents(Oid relid)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	List	   *parents = NIL;

	rel = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InheritsRelidSeqnoIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		parents = lappend_oid(parents, ((Form_pg_inherits) GETSTRUCT(tup))->inhparent);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return parents;
}

/* a column of the child, named as the ancestor's column attnum is */
static AttrNumber
child_attnum(Oid ancestor, AttrNumber attnum, Oid child)
{
	char	   *name;

	if (attnum == InvalidAttrNumber)
		return InvalidAttrNumber;
	name = get_attname(ancestor, attnum, true);
	return name ? get_attnum(child, name) : InvalidAttrNumber;
}

/*
 * The shape of relid derived from its first parent (in inheritance order)
 * that is guarded, itself or through its own ancestors, in the current
 * memory context; NULL when no ancestor is guarded.
 */
static GuardedRelation *
derive_from_parents(Oid relid)
{
	ListCell   *lc;

	foreach(lc, inheritance_parents(relid))
	{
		Oid			parent = lfirst_oid(lc);
		GuardedRelation *copy;
		GuardedRelation *g;

		/* a copy: a look-up below may flush the map that holds the parent's */
		copy = pfg_guarded_relation_copy(parent);
		if (copy == NULL)
			continue;
		g = palloc0(sizeof(GuardedRelation));
		g->relid = relid;
		g->subject_attnum = child_attnum(parent, copy->subject_attnum, relid);
		g->subject_type = copy->subject_type;
		g->root = copy->root;
		g->stamped = copy->stamped;
		g->tag_attnum = child_attnum(parent, copy->tag_attnum, relid);
		if (g->tag_attnum != InvalidAttrNumber)
			g->tag_attnums = bms_add_member(g->tag_attnums, g->tag_attnum);
		g->value_attnum = child_attnum(parent, copy->value_attnum, relid);
		g->collected_attnum = child_attnum(parent, copy->collected_attnum, relid);
		if (g->value_attnum != InvalidAttrNumber)
			g->tag_attnums = bms_add_member(g->tag_attnums, g->value_attnum);
		g->columns = palloc(sizeof(GuardedColumn) * Max(copy->ncolumns, 1));
		for (int i = 0; i < copy->ncolumns; i++)
		{
			AttrNumber	a = child_attnum(parent, copy->columns[i].attnum, relid);

			if (a == InvalidAttrNumber)
				continue;
			g->columns[g->ncolumns] = copy->columns[i];
			g->columns[g->ncolumns].attnum = a;
			g->ncolumns++;
			g->tag_attnums = bms_add_member(g->tag_attnums, a);
		}
		return g;
	}
	return NULL;
}

/*
 * Derive and remember the shape of a relation that is not guarded itself.
 * The derivation reads catalogs, which accepts invalidations: one that
 * arrives meanwhile may make what was read stale, so it starts over.
 */
static GuardedRelation *
derived_guarded_relation(Oid relid)
{
	for (;;)
	{
		uint64		flushes = GuardCacheFlushes;
		MemoryContext oldcxt;
		GuardedRelation *g;
		GuardedRelation *entry;
		HASHCTL		ctl;

		g = derive_from_parents(relid);
		if (flushes != GuardCacheFlushes || GuardedRelations == NULL)
		{
			if (GuardedRelations == NULL)
			{
				load_guard_cache();
				if (GuardedRelations == NULL)
					return NULL;
			}
			continue;
		}

		oldcxt = MemoryContextSwitchTo(GuardCacheContext);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.hcxt = GuardCacheContext;
		if (g == NULL)
		{
			if (UnguardedRelations == NULL)
			{
				ctl.entrysize = sizeof(Oid);
				UnguardedRelations = hash_create("profile_guard unguarded relations", 256, &ctl,
												 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
			}
			(void) hash_search(UnguardedRelations, &relid, HASH_ENTER, NULL);
			MemoryContextSwitchTo(oldcxt);
			return NULL;
		}
		if (DerivedRelations == NULL)
		{
			ctl.entrysize = sizeof(GuardedRelation);
			DerivedRelations = hash_create("profile_guard derived relations", 64, &ctl,
										   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		}
		entry = hash_search(DerivedRelations, &relid, HASH_ENTER, NULL);
		entry->subject_attnum = g->subject_attnum;
		entry->subject_type = g->subject_type;
		entry->root = g->root;
		entry->stamped = g->stamped;
		entry->tag_attnum = g->tag_attnum;
		entry->value_attnum = g->value_attnum;
		entry->collected_attnum = g->collected_attnum;
		entry->ncolumns = g->ncolumns;
		entry->columns = palloc(sizeof(GuardedColumn) * Max(g->ncolumns, 1));
		for (int i = 0; i < g->ncolumns; i++)
		{
			entry->columns[i] = g->columns[i];
			entry->columns[i].tag = pstrdup(g->columns[i].tag);
		}
		entry->tag_attnums = bms_copy(g->tag_attnums);
		MemoryContextSwitchTo(oldcxt);
		return entry;
	}
}

/* _guards_any(): pfg_any_guarded() for the extension's own SQL */
PFG_SQL_FUNCTION(profile_guard_guards_any);

Datum
profile_guard_guards_any(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(pfg_any_guarded());
}

/* Does this database guard any relation at all?  (The hooks' fast exit.) */
bool
pfg_any_guarded(void)
{
	if (GuardedRelations == NULL)
	{
		if (!pfg_extension_present())
			return false;
		load_guard_cache();
		if (GuardedRelations == NULL)
			return false;
	}
	return hash_get_num_entries(GuardedRelations) > 0;
}

/*
 * The id of a tag named by a (not necessarily terminated) string, or -1 when
 * no such tag is defined; *sensitive (if given) tells its sensitivity.
 */
int
pfg_tag_id_lookup(const char *name, int len, bool *sensitive)
{
	char		key[NAMEDATALEN * 2];
	TagInfo    *ti;

	if (GuardedRelations == NULL)
	{
		if (!pfg_extension_present())
			return -1;
		load_guard_cache();
		if (GuardedRelations == NULL)
			return -1;
	}
	if (len <= 0 || len >= (int) sizeof(key))
		return -1;
	memcpy(key, name, len);
	key[len] = '\0';
	ti = hash_search(Tags, key, HASH_FIND, NULL);
	if (ti && sensitive)
		*sensitive = ti->sensitive;
	return ti ? ti->tag_id : -1;
}

const GuardedColumn *
pfg_guarded_column(GuardedRelation *grel, AttrNumber attnum)
{
	for (int i = 0; i < grel->ncolumns; i++)
		if (grel->columns[i].attnum == attnum)
			return &grel->columns[i];
	return NULL;
}

/*
 * Does a range-table entry with these selected columns read a tag of the
 * relation?  Whole-row references (attribute 0) always do.
 */
bool
pfg_rte_reads_tags(Bitmapset *selectedCols, GuardedRelation *grel)
{
	int			col = -1;

	while ((col = bms_next_member(selectedCols, col)) >= 0)
	{
		AttrNumber	attno = col + FirstLowInvalidHeapAttributeNumber;

		if (attno == InvalidAttrNumber ||
			(attno > 0 && bms_is_member(attno, grel->tag_attnums)))
			return true;		/* system columns (ctid, …) are never tags */
	}
	return false;
}

/*
 * Does a range-table entry read rows of its relation?  Every scan does
 * (SELECT, UPDATE and DELETE, even with no column named: count(*)); the
 * target of an INSERT does not, nor does INSERT … ON CONFLICT's EXCLUDED.
 */
bool
pfg_rte_reads_rows(RangeTblEntry *rte)
{
	if (rte->rtekind != RTE_RELATION)
		return false;
	if (!bms_is_empty(rte->selectedCols))
		return true;
	if (rte->requiredPerms & (ACL_SELECT | ACL_DELETE))
		return true;
	return (rte->requiredPerms & ACL_UPDATE) && !(rte->requiredPerms & ACL_INSERT);
}

/*
 * Does the entry read tags of a guarded relation (rule 1: a purpose is
 * required)?  Wide shape: when it reads a tag column or the whole row.
 * Long shape: every row is a tag, so reading rows at all reads tags.
 */
bool
pfg_rte_reads_tags_of(RangeTblEntry *rte, GuardedRelation *grel)
{
	if (grel->tag_attnum != InvalidAttrNumber)
		return pfg_rte_reads_rows(rte);
	return pfg_rte_reads_tags(rte->selectedCols, grel);
}

/*
 * A plan of one of our catalog queries, prepared once per backend (inside
 * SPI) and kept: the plan cache re-plans it when what it reads changes.
 */
SPIPlanPtr
pfg_keep_catalog_plan(const char *query, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(query, nargs, argtypes);

	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "could not prepare a catalog query: %s",
			 SPI_result_code_string(SPI_result));
	return plan;
}

/*
 * The plan of a statement run many times with other parameters (a sweep's
 * batches): prepared inside SPI on first use, with a generic plan, and kept
 * in *kept for the next runs; the caller frees it with SPI_freeplan().
 */
SPIPlanPtr
pfg_keep_generic_plan(SPIPlanPtr *kept, const char *query, int nargs, Oid *argtypes)
{
	if (*kept == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(query, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare a kept statement: %s",
				 SPI_result_code_string(SPI_result));
		*kept = plan;
	}
	return *kept;
}

/*
 * For the rest of the current GUC nest level, plan look-ups by key through
 * the indexes.  Kept plans of one-key queries live as long as the backend,
 * and one made while its table was small (a fresh database, the first bulk
 * insert of new subjects) would otherwise scan the whole table for every
 * look-up, ever after.
 *
 * And without JIT: a query that can only scan (the definitions read once
 * under such an access, a table without the index) is costed from
 * disable_cost up, far past jit_above_cost, and would be compiled, with
 * inlining and optimisation, at every execution: most of a second for a
 * few rows.
 */
void
pfg_plan_for_key_lookups(void)
{
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	pfg_plan_without_jit();
}

/* For the rest of the current GUC nest level, plan without JIT. */
void
pfg_plan_without_jit(void)
{
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Catalog queries run as the owner of our schema, so that roles with no
 * rights on the catalog can still be gated, and under a search_path of our
 * own, so that no object of the caller's can stand in for pg_catalog's
 * while we run with the owner's rights.  An error restores both through
 * (sub)transaction abort; the normal path restores them here.
 */
void
pfg_begin_catalog_access(PfgCatalogAccess *ca, bool point_lookup)
{
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(pfg_schema_oid()));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %s", PFG_SCHEMA_NAME);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	pfg_switch_role(owner, "pg_catalog, profile_guard, pg_temp", ca);

	/* one subject's rows: through the indexes on subject */
	if (point_lookup)
		pfg_plan_for_key_lookups();
}

void
pfg_end_catalog_access(PfgCatalogAccess *ca)
{
	pfg_restore_role(ca);
}

void
pfg_switch_role(Oid role, const char *search_path, PfgSavedRole *saved)
{
	GetUserIdAndSecContext(&saved->save_userid, &saved->save_sec_context);
	SetUserIdAndSecContext(role, saved->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	saved->guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", search_path,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

/*
 * Settings go back to what they were before pfg_switch_role(), whatever the
 * code that ran meanwhile set (a plain SET or set_config(..., false) in an
 * owner's trigger would otherwise outlive it, search_path included, and
 * steer the next statement of ours), as autovacuum and REFRESH MATERIALIZED
 * VIEW restore them after running a table's code.
 */
void
pfg_restore_role(PfgSavedRole *saved)
{
	AtEOXact_GUC(false, saved->guc_level);
	SetUserIdAndSecContext(saved->save_userid, saved->save_sec_context);
}

/*
 * _invoking_role(): the role in effect outside every SECURITY DEFINER
 * function (the session's role, as SET ROLE left it), for the API's own
 * privilege checks.
 */
PFG_SQL_FUNCTION(profile_guard_invoking_role);

Datum
profile_guard_invoking_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(GetOuterUserId());
}

/*
 * Which role a column plays in a guarded relation: the tag it is classified
 * with (wide shape), or the subject, tag or value column.  NULL when the
 * column is none of these.
 */
static const char *
guarded_column_role(Oid relid, const char *colname, const char **tag)
{
	GuardedRelation *grel = pfg_guarded_relation(relid);
	AttrNumber	attnum;
	const GuardedColumn *col;

	*tag = NULL;
	if (grel == NULL || colname == NULL)
		return NULL;
	attnum = get_attnum(relid, colname);
	if (attnum == InvalidAttrNumber)
		return NULL;
	if (attnum == grel->subject_attnum)
		return "subject";
	if (attnum == grel->tag_attnum)
		return "tag";
	if (attnum == grel->value_attnum)
		return "value";
	if ((col = pfg_guarded_column(grel, attnum)) != NULL)
	{
		*tag = col->tag;
		return "classified";
	}
	return NULL;
}

static void
refuse_column_change(Oid relid, const char *colname, const char *what, bool rename)
{
	const char *tag;
	const char *role = guarded_column_role(relid, colname, &tag);
	char	   *rel;

	if (role == NULL)
		return;
	/* the subject column may change type (its text form names the subject) */
	if (!rename && strcmp(role, "subject") == 0)
		return;
	rel = get_rel_name(relid);
	if (tag != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s classified column \"%s\" of guarded table \"%s\"",
						what, colname, rel),
				 errdetail("Column \"%s\" of table \"%s\" holds tag \"%s\"; its classification and the encryption of its values follow the column as it is.",
						   colname, rel, tag),
				 errhint("Declassify the column first: SELECT profile_guard.declassify('%s', '%s'); then change it and classify it again.",
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), rel),
						 colname)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot %s the %s column \"%s\" of guarded table \"%s\"",
					what, role, colname, rel),
			 errdetail("Table \"%s\" is guarded with \"%s\" as its %s column.", rel, colname, role),
			 errhint("Unprotect the table first: SELECT profile_guard.unprotect('%s'); then change it and protect it again.",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), rel))));
}

/*
 * ALTER COLUMN … TYPE … USING: the expression that computes the new values
 * may not read a column holding tag values (classified, or a long shape's
 * tag or value column), nor the whole row: the rewrite would store the
 * values in a column no gate stands before.  The expression is still raw
 * (before parse analysis): a column reference names the table's column by
 * its last field, a whole-row one the table itself (its name alone, when
 * no column has it) or "*".
 */
typedef struct UsingCheck
{
	Oid			relid;
	const char *target;			/* the column whose type changes */
	const char *relname;		/* as the ALTER names the table */
} UsingCheck;

static bool
using_reads_tags_walker(Node *node, void *arg)
{
	UsingCheck *check = (UsingCheck *) arg;

	if (node == NULL)
		return false;
	if (IsA(node, ColumnRef))
	{
		ColumnRef  *ref = (ColumnRef *) node;
		Node	   *last = llast(ref->fields);
		const char *colname = IsA(last, String) ? strVal(last) : NULL;
		const char *tag = NULL;
		const char *role = colname ? guarded_column_role(check->relid, colname, &tag) : NULL;

		if (colname == NULL ||
			(list_length(ref->fields) == 1 && strcmp(colname, check->relname) == 0 &&
			 get_attnum(check->relid, colname) == InvalidAttrNumber))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the new values of column \"%s\" of guarded table \"%s\" cannot read the whole row",
							check->target, get_rel_name(check->relid)),
					 errdetail("A USING expression that reads the whole row would store the row's tag values in a column no gate stands before."),
					 errhint("Name the columns the new values are computed from; no column holding tag values may be among them.")));
		if (tag != NULL || (role != NULL && (strcmp(role, "tag") == 0 || strcmp(role, "value") == 0)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the new values of column \"%s\" of guarded table \"%s\" cannot be computed from column \"%s\"",
							check->target, get_rel_name(check->relid), colname),
					 tag != NULL ?
					 errdetail("Column \"%s\" holds tag \"%s\"; the rewrite would store its values in a column no gate stands before.",
							   colname, tag) :
					 errdetail("Column \"%s\" is the table's %s column; the rewrite would store what it holds in a column no gate stands before.",
							   colname, role),
					 errhint("Compute the new values from columns that hold no tag values, or write them with an UPDATE, which the gates see.")));
		return false;
	}
	return raw_expression_tree_walker(node, using_reads_tags_walker, arg);
}

/*
 * ALTER DOMAIN that adds, validates or enforces a constraint: PostgreSQL
 * checks it on every value stored in a column of the domain (or of a
 * domain or an array over it), scanning the tables with no gate between,
 * and on every value written afterwards.  classify() and protect() refuse
 * a tag column whose type is made of a domain; one classified before 1.2
 * is caught here, refused whoever owns the domain.  The query follows
 * domains and arrays only, as that scan does (PostgreSQL refuses to alter a
 * domain that a composite or range column is made of), and is written out
 * here rather than shared with _refuse_tag_leaks(): a database whose
 * extension is still at 1.1, which needs this check most, has no 1.2
 * function to call.
 */
static void
refuse_domain_of_tags(AlterDomainStmt *stmt)
{
	Oid			domain;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	PfgCatalogAccess ca;
	int			rc;
	char	   *found = NULL;

	if (stmt->subtype != 'C' && stmt->subtype != 'V' && stmt->subtype != 'O')
		return;
	domain = LookupTypeNameOid(NULL, makeTypeNameFromNameList(stmt->typeName), true);
	if (!OidIsValid(domain))
		return;
	args[0] = ObjectIdGetDatum(domain);
	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, false);
	rc = SPI_execute_with_args(
		"SELECT format('column \"%s\" of table %s', c.col, g.relid)"
		"  FROM profile_guard.guarded_table g"
		"  CROSS JOIN LATERAL (SELECT cc.column_name FROM profile_guard.classified_column cc"
		"                       WHERE cc.relid = g.relid"
		"                      UNION ALL SELECT g.value_column WHERE g.value_column IS NOT NULL) c(col)"
		"  JOIN pg_catalog.pg_attribute a ON a.attrelid = g.relid AND a.attname = c.col"
		" WHERE $1 IN (WITH RECURSIVE chain(t) AS ("
		"               SELECT a.atttypid"
		"               UNION SELECT CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.typelem END"
		"                       FROM chain JOIN pg_catalog.pg_type ty ON ty.oid = chain.t"
		"                      WHERE ty.typtype = 'd' OR ty.typcategory = 'A')"
		"             SELECT t FROM chain)"
		" ORDER BY 1 LIMIT 1",
		1, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the tag columns' types: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
		found = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	pfg_end_catalog_access(&ca);
	if (found != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot constrain domain %s, which a tag column is of",
						format_type_be(domain)),
				 errdetail("The domain's constraints are checked on every value of %s, past the gates.",
						   found),
				 errhint("Give the column the domain's base type first (ALTER TABLE ... ALTER COLUMN ... TYPE), declassifying it if need be.")));
	pfg_spi_finish();
}

/*
 * The relation an ALTER names and, when it recurses, every inheritor: a
 * change of a parent's column changes the children's.
 */
static List *
altered_relations(RangeVar *rv)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);

	if (!OidIsValid(relid))
		return NIL;
	if (rv->inh)
		return find_all_inheritors(relid, NoLock, NULL);
	return list_make1_oid(relid);
}

/*
 * Schema changes that would let a tag out from under its classification
 * (the utility hook calls this before the statement runs): renaming a
 * subject, tag, value or classified column (the catalog names columns), and
 * changing the type of a column that holds tag values (sensitive ones hold
 * ciphertext that the new type would not keep), constraining a domain that
 * a tag column is of.  Dropping a classified
 * column drops its values; a column added later under the same name is
 * classified as the old one was.
 */
void
pfg_check_guarded_alter(Node *parsetree)
{
	ListCell   *lc;

	if (!IsTransactionState() || !pfg_any_guarded())
		return;
	if (IsA(parsetree, AlterDomainStmt))
		refuse_domain_of_tags((AlterDomainStmt *) parsetree);
	else if (IsA(parsetree, RenameStmt))
	{
		RenameStmt *stmt = (RenameStmt *) parsetree;

		if (stmt->renameType != OBJECT_COLUMN || stmt->relation == NULL)
			return;
		foreach(lc, altered_relations(stmt->relation))
			refuse_column_change(lfirst_oid(lc), stmt->subname, "rename", true);
	}
	else if (IsA(parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
		List	   *rels = NIL;
		ListCell   *c;

		foreach(c, stmt->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, c);

			if (cmd->subtype != AT_AlterColumnType)
				continue;
			if (rels == NIL)
				rels = altered_relations(stmt->relation);
			foreach(lc, rels)
			{
				ColumnDef  *def = (ColumnDef *) cmd->def;

				refuse_column_change(lfirst_oid(lc), cmd->name, "change the type of", false);
				if (def != NULL && IsA(def, ColumnDef) && def->raw_default != NULL &&
					pfg_guarded_relation(lfirst_oid(lc)) != NULL)
				{
					UsingCheck	check = {lfirst_oid(lc), cmd->name, stmt->relation->relname};

					(void) using_reads_tags_walker(def->raw_default, &check);
				}
			}
		}
	}
}
