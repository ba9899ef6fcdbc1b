/*-------------------------------------------------------------------------
 *
 * collect.c
 *	  The write path: the row trigger that protect() installs on guarded
 *	  tables.  Before a row reaches the heap it
 *	    - refuses tag values collected without consent (rule 6): a subject
 *	      needs an effective consent covering the tag for some purpose in
 *	      force (sensitive tags: separate; under 14: guardian; derived:
 *	      every source),
 *	    - refuses long-shape tag rows naming an undefined tag, and tag
 *	      values (long shape, or wide-shape text columns; sensitive ones
 *	      held as text before they are encrypted) that match the
 *	      prohibited lexicon (rule 13) but for the topics exempted for
 *	      their tag's category,
 *	    - stamps the (subject, tag) pairs it collects in a table without
 *	      a collected-at column that has collection stamps switched on
 *	      (collection_stamp.c), and
 *	    - encrypts sensitive values, recognising values that already are our
 *	      ciphertext for this subject and tag (a restore, an unchanged
 *	      rewrite: collected like plaintext unless the writer bypasses the
 *	      guard) and refusing ciphertext copied from elsewhere.
 *	  An UPDATE is a use of the row it changes: every tag column it assigns
 *	  is collected again, changed or not, and checked against the lexicon
 *	  again (so a write cannot confirm a guess); moving the row to another
 *	  subject collects every tag the row holds for the new subject
 *	  (sensitive ones cannot move), assigning it its own subject collects
 *	  nothing; under a declared purpose an
 *	  UPDATE reaches only the rows that purpose may read and never
 *	  overwrites a cell it cannot see.  No row is written while a BEFORE
 *	  ROW trigger that fires after this one would fire: it could change
 *	  what was checked and encrypted.
 *	  An INSERT's plan may collect its rows itself (collect_plan.c) with
 *	  the same code, pfg_collect_new_row(), instead of the trigger.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "extension.h"
#include "settings.h"
#include "bypass.h"
#include "catalog.h"
#include "consent_cache.h"
#include "purpose.h"
#include "crypto_envelope.h"
#include "erasure.h"
#include "lexicon.h"
#include "owner_context.h"
#include "collection_stamp.h"
#include "collect.h"

PFG_SQL_FUNCTION(profile_guard_collect);

/* names for messages: the tag, the subject and the purposes that could cover it */
static void
refuse_uncollectable(Relation rel, const char *subject, const char *tag)
{
	pfg_refuse(PFG_REFUSAL_COLLECTION, tag,
			  (errcode(PFG_ERRCODE_COLLECTION_REFUSED),
			 errmsg("no consent to collect tag \"%s\" for subject \"%s\"", tag, subject),
			 errdetail("Table \"%s\": no purpose in force has an effective consent of subject \"%s\" covering tag \"%s\" (sensitive tags need separate consent, children under 14 guardian consent, derived tags consent to every source).",
					   RelationGetRelationName(rel), subject, tag),
			 errhint("Record the subject's consent first, e.g. SELECT profile_guard.grant_consent('%s', '<purpose>', ARRAY['%s']); the purposes that list the tag are in profile_guard.purpose.",
					 subject, tag)));
}

/*
 * Rule 13 for tag values: a long-shape value, or a wide-shape value held in
 * a column of a string type, matched against the lexicon held in memory
 * (lexicon.c).  The error names the table, the column, the tag and the
 * topic, never the value or the term.
 */
static void
check_value_lexicon(Relation rel, const char *column, const char *tag, Datum value, Oid typid)
{
	const char *topic;

	if (typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID)
	{
		text	   *t = DatumGetTextPP(value);

		topic = pfg_lexicon_topic(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), tag);
		if ((Pointer) t != DatumGetPointer(value))
			pfree(t);
	}
	else
	{
		Oid			out;
		bool		isvarlena;
		char	   *s;

		getTypeOutputInfo(typid, &out, &isvarlena);
		s = OidOutputFunctionCall(out, value);
		topic = pfg_lexicon_topic(s, strlen(s), tag);
		pfree(s);
	}

	/*
	 * A refusal of collection (audited as a denial).  Not a data exception:
	 * the message and detail hold names only, and must reach the client
	 * as they are.
	 */
	if (topic != NULL)
		pfg_refuse(PFG_REFUSAL_COLLECTION, tag,
				  (errcode(PFG_ERRCODE_PROHIBITED_VALUE),
				   errmsg("value of tag \"%s\" contains a prohibited term", tag),
				   errdetail("Table \"%s\", column \"%s\": the value of tag \"%s\" matches a term of the prohibited topic \"%s\".",
							 RelationGetRelationName(rel), column, tag, topic),
				   errhint("Describe the subject without the terms of the prohibited topics (see tables profile_guard.prohibited_topic and profile_guard.prohibited_term).")));
}

/* does a wide-shape column hold text the lexicon can read (text, varchar, char and domains over them)? */
static bool
holds_text(Form_pg_attribute att)
{
	char		category;
	bool		preferred;

	/* the built-in string types without a catalog look-up (every row asks) */
	if (att->atttypid == TEXTOID || att->atttypid == VARCHAROID ||
		att->atttypid == BPCHAROID)
		return true;
	get_type_category_preferred(getBaseType(att->atttypid), &category, &preferred);
	return category == TYPCATEGORY_STRING;
}

/*
 * Changing the subject of a row that holds a sensitive value: the
 * ciphertext is bound to the old subject, and moving it would hand the old
 * subject's value to the new one.
 */
static void
refuse_subject_move(Relation rel, const char *subject, const char *tag, const char *column)
{
	pfg_refuse(PFG_REFUSAL_COLLECTION, tag,
			  (errcode(PFG_ERRCODE_COLLECTION_REFUSED),
			   errmsg("sensitive tag \"%s\" cannot move to subject \"%s\"", tag, subject),
			   errdetail("Table \"%s\", column \"%s\": the row's subject changes, and its value of sensitive tag \"%s\" is encrypted for the previous subject.",
						 RelationGetRelationName(rel), column, tag),
			   errhint("Write the value for subject \"%s\" in the same statement, or set the column to NULL before changing the subject.",
					   subject)));
}

/*
 * A value that an UPDATE carries from one subject to another: it is used
 * (moved away from the old subject) and collected (for the new one, by
 * collect_value).  A sensitive value cannot move: its ciphertext is bound
 * to the old subject.  A general one moves only while the old subject's
 * consent covers it, so relabelling a row never launders the values of a
 * subject who withdrew.
 */
static void
carry_value(Relation rel, GuardedRelation *grel, Datum old_subject, bool old_subject_null,
			const char *subject_text, int tag_id, const char *tag, bool sensitive,
			const char *column)
{
	if (sensitive)
		refuse_subject_move(rel, subject_text, tag, column);
	if (!old_subject_null &&
		!pfg_subject_tag_collectable(old_subject, grel->subject_type, tag_id))
		refuse_uncollectable(rel, pfg_subject_text(old_subject, grel->subject_type), tag);
}

/*
 * Under a declared purpose an UPDATE assigns a stored tag value only where
 * the purpose may read it: the cell gate reads a masked cell as NULL, so
 * SET col = col would otherwise erase a value held for another purpose.
 */
static void
refuse_masked_overwrite(Relation rel, const char *subject, const char *tag, const char *column)
{
	pfg_refuse(PFG_REFUSAL_COLLECTION, tag,
			  (errcode(PFG_ERRCODE_COLLECTION_REFUSED),
			   errmsg("cannot overwrite tag \"%s\" of subject \"%s\" under purpose \"%s\"",
					  tag, subject, pfg_purpose),
			   errdetail("Table \"%s\", column \"%s\": the stored value of tag \"%s\" is not visible to purpose \"%s\", which reads it as NULL.",
						 RelationGetRelationName(rel), column, tag, pfg_purpose),
			   errhint("Write the tag under a purpose that may read it, or erase it with SELECT profile_guard.erase_tag('%s', '%s');",
					   subject, tag)));
}

/*
 * Changing the subject of a row carries the values of the tag columns the
 * UPDATE does not assign.  Whether the move is allowed must not depend on
 * values the writer cannot read: under a declared purpose, every such
 * column's tag must be visible to the purpose for the row's subject,
 * whatever the cell holds; with no purpose (a statement that reads no
 * tag), a role that does not read raw values may move no row that has such
 * a column.
 */
static void
refuse_masked_move(Relation rel, const char *subject, const char *tag, const char *column)
{
	pfg_refuse(PFG_REFUSAL_COLLECTION, tag,
			  (errcode(PFG_ERRCODE_COLLECTION_REFUSED),
			   errmsg("cannot move tag \"%s\" of subject \"%s\" under purpose \"%s\"",
					  tag, subject, pfg_purpose),
			   errdetail("Table \"%s\", column \"%s\": the row's subject changes, which would carry its value of tag \"%s\", and that tag is not visible to purpose \"%s\".",
						 RelationGetRelationName(rel), column, tag, pfg_purpose),
			   errhint("Change the subject under a purpose that may read every tag of the row, or assign column \"%s\" in the same statement.",
					   column)));
}

static void
refuse_blind_move(Relation rel, const char *tag, const char *column)
{
	pfg_refuse(PFG_REFUSAL_NO_PURPOSE, tag,
			  (errcode(PFG_ERRCODE_NO_PURPOSE),
			   errmsg("changing the subject of a row of table \"%s\" requires a declared purpose",
					  RelationGetRelationName(rel)),
			   errdetail("The row's subject changes, which would carry its value of tag \"%s\" (column \"%s\"), and no purpose is declared to read it.",
						 tag, column),
			   errhint("SET profile_guard.purpose to a purpose that may read the row's tags, or assign column \"%s\" in the same statement.",
					   column)));
}

/*
 * The purpose an UPDATE runs under, or NULL when none is declared or the
 * role reads raw values (superuser, BYPASSRLS).
 *
 * Its answers are looked up again for every check and never kept from one
 * to the next: collecting a value asks for the answers of every purpose in
 * force (pfg_subject_tag_collectable), and that may drop the others
 * (consent_cache.c frees them when a policy change has come in meanwhile,
 * or to make room), so a PurposeState kept across it could be freed memory.
 */
static PurposeState *
write_purpose(Relation rel)
{
	if (pfg_purpose == NULL || pfg_purpose[0] == '\0')
		return NULL;
	return pfg_purpose_for_statement(RelationGetRelid(rel), NULL);
}

/* may the purpose an UPDATE runs under read the row of this subject? */
static bool
purpose_sees_row(Relation rel, Datum subject, Oid subject_type)
{
	PurposeState *ps = write_purpose(rel);

	return ps == NULL || pfg_subject_row_visible(ps, subject, subject_type);
}

/* ... and this tag of the subject? */
static bool
purpose_sees_tag(Relation rel, Datum subject, Oid subject_type, int tag_id)
{
	PurposeState *ps = write_purpose(rel);

	return ps == NULL || pfg_subject_tag_visible(ps, subject, subject_type, tag_id);
}

/* does the UPDATE assign this column (SET col = ..., whatever the value)? */
static bool
assigns(TriggerData *trigdata, AttrNumber attnum)
{
	return trigdata != NULL && trigdata->tg_updatedcols != NULL &&
		bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber,
					  trigdata->tg_updatedcols);
}

/*
 * Does this write put back what was collected before: a role that bypasses
 * the guard (a restore), or the extension's own write as the table's owner
 * (classify() encrypting what the table held)?  Such a write is not a new
 * collection: neither our ciphertext in it nor its collection time is
 * checked.
 */
static bool
writes_back(Relation rel)
{
	return pfg_current_user_bypasses() || pfg_owner_writing_row(RelationGetRelid(rel));
}

/*
 * One tag value of a row: check and, for sensitive tags, encrypt.  Returns
 * the datum to store.  'old' is the value the row had (UPDATE, same subject
 * and tag), if any; 'recollect' says the UPDATE assigns the value (or the
 * row's tag, or moves the row to another subject), which collects it again
 * even when it is unchanged.
 * stamp_root: the guarded table whose collection stamps record it
 * (collection_stamp.c), or InvalidOid when it has none (a collected-at
 * column, or stamps switched off).
 * lexicon_column: for a sensitive value held as text, the column to name
 * when its plaintext matches the lexicon (rule 13: checked before it is
 * encrypted; general values are checked by the caller), or NULL.
 */
static Datum
collect_value(Relation rel, Datum subject, Oid subject_type, const char *subject_text,
			  int tag_id, const char *tag, bool sensitive,
			  Datum value, Form_pg_attribute att, bool has_old, Datum old,
			  bool recollect, Oid stamp_root, const char *lexicon_column)
{
	bool		unchanged = has_old && datumIsEqual(value, old, att->attbyval, att->attlen);
	bool		encrypted = false;

	/* a rewrite of the row that leaves the value alone collects nothing */
	if (unchanged && !recollect)
		return value;

	if (sensitive)
	{
		switch (pfg_crypto_classify_datum(value, att->atttypid, subject_text, tag))
		{
			case CT_OURS:
				/*
				 * already encrypted for this subject and tag: stored as it
				 * is.  Written back (writes_back()), it was collected
				 * before; written by any other role it is a collection like
				 * a plaintext value, so that ciphertext kept from before a
				 * withdrawal or an erasure does not bring the value back
				 */
				if (writes_back(rel))
					return value;
				encrypted = true;
				break;
			case CT_FOREIGN:
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("ciphertext for tag \"%s\" does not belong to subject \"%s\"",
								tag, subject_text),
						 errdetail("Table \"%s\", column \"%s\": the value is an encrypted value of another subject, tag or key; copying ciphertext between rows or columns is refused.",
								   RelationGetRelationName(rel), NameStr(att->attname)),
						 errhint("Write the plaintext value; it is encrypted on the way in.")));
				break;
			case CT_PLAINTEXT:
				/* a value collected again is checked again, changed or not */
				if (lexicon_column != NULL)
					check_value_lexicon(rel, lexicon_column, tag, value, att->atttypid);
				break;
		}
	}

	if (!pfg_subject_tag_collectable(subject, subject_type, tag_id))
		refuse_uncollectable(rel, subject_text, tag);
	if (OidIsValid(stamp_root))
		pfg_stamp_collected(stamp_root, subject_text, tag);

	if (sensitive && !encrypted)
		return pfg_crypto_encrypt_datum(value, att->atttypid, subject_text, tag);
	return value;
}

/*
 * A table with a collected-at column measures the retention of its tags
 * from it: a row whose tags are collected must say when, no later than a
 * day after the statement's start (an application server's clock may run a
 * little ahead).  NULL, or a later or infinite time, would keep its tags
 * beyond every retention.  Not checked for a write that puts back what was
 * collected before (writes_back()).
 */
static void
check_collected_at(Relation rel, const GuardedRelation *grel, TupleDesc desc,
				   const Datum *values, const bool *nulls)
{
	Form_pg_attribute att = TupleDescAttr(desc, grel->collected_attnum - 1);
	bool		isnull = nulls[grel->collected_attnum - 1];
	Datum		d = values[grel->collected_attnum - 1];
	TimestampTz at;
	int			overflow = 0;

	if (writes_back(rel))
		return;
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tag values collected with no collection time"),
				 errdetail("Table %s measures the retention of its tags from column %s, which is NULL in a row that collects tag values.",
						   quote_identifier(RelationGetRelationName(rel)),
						   quote_identifier(NameStr(att->attname))),
				 errhint("Write the time the values were collected, e.g. now().")));
	switch (att->atttypid)
	{
		case DATEOID:
			at = date2timestamptz_opt_overflow(DatumGetDateADT(d), &overflow);
			break;
		case TIMESTAMPOID:
			at = timestamp2timestamptz_opt_overflow(DatumGetTimestamp(d), &overflow);
			break;
		case TIMESTAMPTZOID:
			at = DatumGetTimestampTz(d);
			break;
		default:
			return;				/* protect() takes these three only */
	}
	if (overflow != 0 || TIMESTAMP_NOT_FINITE(at) ||
		at > GetCurrentStatementStartTimestamp() + USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("collection time of tag values is not a past time"),
				 errdetail("Table %s measures the retention of its tags from column %s; a time later than a day from now, or an infinite one, would keep them beyond every retention.",
						   quote_identifier(RelationGetRelationName(rel)),
						   quote_identifier(NameStr(att->attname))),
				 errhint("Write the time the values were collected, e.g. now().")));
}

/*
 * Would trigger t fire now (its enabled state against the session's
 * replication role, as the executor decides)?
 */
bool
pfg_trigger_fires_now(const Trigger *t)
{
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return t->tgenabled == TRIGGER_FIRES_ALWAYS || t->tgenabled == TRIGGER_FIRES_ON_REPLICA;
	return t->tgenabled == TRIGGER_FIRES_ALWAYS || t->tgenabled == TRIGGER_FIRES_ON_ORIGIN;
}

/*
 * Triggers of a kind fire in name order.  A BEFORE ROW trigger of the
 * table that fires after this one sees, and could change, what this one
 * checked and encrypted: store plaintext in a sensitive column, move a
 * collected value to another subject, or alter ciphertext beyond
 * decryption.  The row is refused while one would fire for it.
 */
static void
refuse_later_triggers(TriggerData *trigdata)
{
	TriggerDesc *td = trigdata->tg_relation->trigdesc;
	int16		event = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ?
		TRIGGER_TYPE_INSERT : TRIGGER_TYPE_UPDATE;
	bool		after_ours = false;

	for (int i = 0; i < td->numtriggers; i++)
	{
		const Trigger *t = &td->triggers[i];

		if (t->tgoid == trigdata->tg_trigger->tgoid)
			after_ours = true;
		else if (after_ours &&
				 TRIGGER_TYPE_MATCHES(t->tgtype, TRIGGER_TYPE_ROW, TRIGGER_TYPE_BEFORE, event) &&
				 pfg_trigger_fires_now(t))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("trigger \"%s\" on table \"%s\" fires after the collection trigger",
							t->tgname, RelationGetRelationName(trigdata->tg_relation)),
					 errdetail("BEFORE ROW triggers fire in name order; one that fires after \"%s\" could change the values it checked and encrypted, so no row is written while it would fire.",
							   trigdata->tg_trigger->tgname),
					 errhint("Rename the trigger so that its name sorts before \"%s\", or make it an AFTER trigger.",
							 trigdata->tg_trigger->tgname)));
	}
}

/*
 * The guarded shape of a call site's table, copied into the site's memory
 * (the statement's): what the row's checks look up may take in an
 * invalidation, which frees the map's own.  The copy serves the next rows
 * until the backend takes in a relcache invalidation; older copies stay
 * until the statement ends, since a row may still be using one.
 * A call site is the trigger's (its fn_extra) or a collecting insert's
 * (collect_plan.c).
 */
struct CollectSite
{
	MemoryContext cxt;			/* where the site and its copies live */
	Oid			relid;
	uint64		flushes;		/* pfg_guard_cache_flushes() when copied */
	GuardedRelation *grel;		/* NULL: not guarded */
	/* the arrays a changed row is formed from, kept for the next rows: */
	int			natts;			/* their length */
	Datum	   *values;			/* the trigger's row's values */
	bool	   *nulls;
	Datum	   *stored;			/* the replacing values (never NULL) */
	bool	   *replace;		/* which columns are replaced (cleared each row) */
};

/* a call site whose copies live in cxt (a statement's memory) */
CollectSite *
pfg_collect_site(MemoryContext cxt)
{
	CollectSite *site = MemoryContextAllocZero(cxt, sizeof(CollectSite));

	site->cxt = cxt;
	return site;
}

static GuardedRelation *
guarded_shape(CollectSite *site, Oid relid)
{
	uint64		flushes = pfg_guard_cache_flushes();
	MemoryContext old;

	if (OidIsValid(site->relid) && site->relid == relid && site->flushes == flushes)
		return site->grel;
	old = MemoryContextSwitchTo(site->cxt);
	site->grel = pfg_guarded_relation_copy(relid);
	MemoryContextSwitchTo(old);
	site->relid = relid;
	site->flushes = flushes;	/* read before copying: later ones copy again */
	return site->grel;
}

/*
 * The site's arrays for rows of natts columns, nothing marked replaced
 * yet: allocated once for the call site, where heap_modify_tuple() would
 * allocate and free two a row.
 */
static void
replacement_arrays(CollectSite *site, int natts)
{
	if (site->natts < natts)
	{
		site->values = MemoryContextAlloc(site->cxt, sizeof(Datum) * natts);
		site->nulls = MemoryContextAlloc(site->cxt, sizeof(bool) * natts);
		site->stored = MemoryContextAlloc(site->cxt, sizeof(Datum) * natts);
		site->replace = MemoryContextAlloc(site->cxt, sizeof(bool) * natts);
		site->natts = natts;
	}
	memset(site->replace, 0, sizeof(bool) * natts);
}

/* the replaced columns put in the row's values */
static void
apply_replacements(const CollectSite *site, int natts, Datum *values, bool *nulls)
{
	for (int i = 0; i < natts; i++)
		if (site->replace[i])
		{
			values[i] = site->stored[i];
			nulls[i] = false;
		}
}

/* what collecting a row did */
typedef enum CollectOutcome
{
	COLLECT_AS_IS,				/* the row is written as it is */
	COLLECT_CHANGED,			/* with the site's replaced columns */
	COLLECT_SKIP				/* not at all (an UPDATE the purpose may not reach) */
} CollectOutcome;

/*
 * Collect one row of a guarded table, whose new values are values/nulls:
 * the checks and encryption that the file's header lists.  oldtup is the
 * row an UPDATE changes (trigdata its trigger's data), NULL for an INSERT
 * (trigdata may then be NULL).  Columns to replace are marked in the site.
 */
static CollectOutcome
collect_row(CollectSite *site, Relation rel, GuardedRelation *grel,
			TriggerData *trigdata, HeapTuple oldtup,
			const Datum *values, const bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum		subject;
	bool		subject_null;
	bool		isnull;
	char	   *subject_text = NULL;
	bool		changed = false;
	bool		under_purpose = false;	/* an UPDATE under a declared purpose */
	Datum		old_subject = (Datum) 0;
	bool		old_subject_null = true;
	bool		subject_moves = false;	/* the UPDATE changes the subject */
	Oid			stamp_root = grel->stamped ? grel->root : InvalidOid;

	subject = values[grel->subject_attnum - 1];
	subject_null = nulls[grel->subject_attnum - 1];
	if (oldtup)
	{
		Form_pg_attribute satt = TupleDescAttr(desc, grel->subject_attnum - 1);

		old_subject = heap_getattr(oldtup, grel->subject_attnum, desc, &old_subject_null);
		subject_moves = (subject_null != old_subject_null ||
						 (!subject_null &&
						  !datumIsEqual(subject, old_subject, satt->attbyval, satt->attlen)));
		/* the purpose is resolved (and may be refused) here, once a row */
		under_purpose = (write_purpose(rel) != NULL);
	}

	if (grel->tag_attnum == InvalidAttrNumber)
	{
		/*
		 * Under a declared purpose an UPDATE reaches only the subjects the
		 * purpose may read (as the row gate does for reads): other rows
		 * are left as they are.
		 */
		if (under_purpose &&
			(old_subject_null || !purpose_sees_row(rel, old_subject, grel->subject_type)))
			return COLLECT_SKIP;

		/*
		 * A row that collects a value says when (a collected-at column).
		 * An UPDATE that sets the collection time is checked whatever the
		 * row holds, as in the long shape: whether it holds a value (in
		 * cells the writer may not see) must not decide.
		 */
		if (grel->collected_attnum != InvalidAttrNumber)
		{
			bool		collects = oldtup != NULL && assigns(trigdata, grel->collected_attnum);

			for (int i = 0; i < grel->ncolumns && !collects; i++)
				collects = !nulls[grel->columns[i].attnum - 1] &&
					(oldtup == NULL || subject_moves ||
					 assigns(trigdata, grel->columns[i].attnum) ||
					 assigns(trigdata, grel->collected_attnum));
			if (collects)
				check_collected_at(rel, grel, desc, values, nulls);
		}

		/* wide shape: every classified column that holds a value */
		for (int i = 0; i < grel->ncolumns; i++)
		{
			const GuardedColumn *col = &grel->columns[i];
			Form_pg_attribute att = TupleDescAttr(desc, col->attnum - 1);
			Datum		value;
			Datum		old = (Datum) 0;
			bool		has_old = false;
			bool		assigned = oldtup && assigns(trigdata, col->attnum);
			Datum		stored;

			value = values[col->attnum - 1];
			isnull = nulls[col->attnum - 1];
			if (oldtup)
			{
				bool		oldnull;

				old = heap_getattr(oldtup, col->attnum, desc, &oldnull);
				has_old = !oldnull;
			}
			/*
			 * What the writer may not read decides nothing: a cell hidden
			 * from the purpose is neither overwritten nor moved, whether or
			 * not it holds a value; with no purpose no row moves with a tag
			 * column the UPDATE leaves to carry
			 */
			if (oldtup && (assigned || subject_moves) && under_purpose && !old_subject_null &&
				!purpose_sees_tag(rel, old_subject, grel->subject_type, col->tag_id))
			{
				if (assigned)
					refuse_masked_overwrite(rel, pfg_subject_text(old_subject, grel->subject_type),
											col->tag, NameStr(att->attname));
				refuse_masked_move(rel, pfg_subject_text(old_subject, grel->subject_type),
								   col->tag, NameStr(att->attname));
			}
			if (subject_moves && !assigned && !under_purpose && !pfg_current_user_bypasses())
				refuse_blind_move(rel, col->tag, NameStr(att->attname));
			if (isnull)
				continue;

			/*
			 * A row with no subject (written before protect(), or by a role
			 * that bypasses the guard) keeps a value the UPDATE neither
			 * assigns nor moves: nothing is collected, and the UPDATE must
			 * not tell whether the row holds one
			 */
			if (subject_null && oldtup && !assigned && !subject_moves)
				continue;
			if (subject_text == NULL)
			{
				if (subject_null)
					ereport(ERROR,
							(errcode(ERRCODE_NOT_NULL_VIOLATION),
							 errmsg("tag \"%s\" collected for no subject", col->tag),
							 errdetail("Table \"%s\": the subject column is NULL in a row that holds a tag value.",
									   RelationGetRelationName(rel)),
							 errhint("Every row with tag values must name its subject.")));
				subject_text = pfg_subject_text(subject, grel->subject_type);
			}
			/* a column the UPDATE assigns is a new collection, not a move */
			if (subject_moves && has_old && !assigned)
				carry_value(rel, grel, old_subject, old_subject_null, subject_text,
							col->tag_id, col->tag, col->sensitive, NameStr(att->attname));
			/*
			 * rule 13: a text value collected (new, or assigned again:
			 * whether it equals the stored one decides nothing), as for
			 * the long shape
			 */
			if (!col->sensitive && holds_text(att) &&
				(assigned || subject_moves || !has_old ||
				 !datumIsEqual(value, old, att->attbyval, att->attlen)))
				check_value_lexicon(rel, NameStr(att->attname), col->tag, value, att->atttypid);
			stored = collect_value(rel, subject, grel->subject_type, subject_text,
								   col->tag_id, col->tag, col->sensitive,
								   value, att, has_old && !subject_moves, old,
								   assigned || subject_moves, stamp_root,
								   holds_text(att) ? NameStr(att->attname) : NULL);
			if (stored != value)
			{
				site->stored[col->attnum - 1] = stored;
				site->replace[col->attnum - 1] = true;
				changed = true;
			}
		}
	}
	else
	{
		/* long shape: one tag row */
		Datum		tagname = values[grel->tag_attnum - 1];
		text	   *tagtext;
		int			tag_id;
		char	   *tag;
		Form_pg_attribute att = TupleDescAttr(desc, grel->value_attnum - 1);
		Datum		value;
		Datum		old = (Datum) 0;
		bool		has_old = false;
		bool		same_tag = false;
		bool		recollect = false;
		Datum		stored;
		bool		sensitive;

		isnull = nulls[grel->tag_attnum - 1];
		if (oldtup)
		{
			bool		oldnull;
			Datum		oldtag = heap_getattr(oldtup, grel->tag_attnum, desc, &oldnull);

			/*
			 * Under a declared purpose an UPDATE reaches only the tag rows
			 * the purpose may read.
			 */
			if (under_purpose && !oldnull && !old_subject_null)
			{
				text	   *ot = DatumGetTextPP(oldtag);
				int			old_tag_id = pfg_tag_id_lookup(VARDATA_ANY(ot), VARSIZE_ANY_EXHDR(ot), NULL);

				if (!purpose_sees_tag(rel, old_subject, grel->subject_type, old_tag_id))
					return COLLECT_SKIP;
			}
			/* the old value counts only if the row still holds the same tag */
			if (!isnull && !oldnull && datumIsEqual(oldtag, tagname, false, -1))
			{
				same_tag = true;
				old = heap_getattr(oldtup, grel->value_attnum, desc, &oldnull);
				has_old = !oldnull && !subject_moves;
			}
			/*
			 * assigning the value or the tag, or moving the row, collects
			 * the tag
			 */
			recollect = subject_moves || !same_tag ||
				assigns(trigdata, grel->value_attnum) ||
				assigns(trigdata, grel->tag_attnum);
		}

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("tag row names no tag"),
					 errdetail("Table \"%s\": the tag column is NULL.", RelationGetRelationName(rel))));
		tagtext = DatumGetTextPP(tagname);
		tag = text_to_cstring(tagtext);
		tag_id = pfg_tag_id_lookup(VARDATA_ANY(tagtext), VARSIZE_ANY_EXHDR(tagtext), &sensitive);
		if (tag_id < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("tag \"%s\" does not exist", tag),
					 errdetail("Table \"%s\" holds one row per tag; every tag must be defined.",
							   RelationGetRelationName(rel)),
					 errhint("Define it first: SELECT profile_guard.define_tag('%s', '<category>');", tag)));
		if (subject_null)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("tag \"%s\" collected for no subject", tag),
					 errdetail("Table \"%s\": the subject column is NULL.", RelationGetRelationName(rel)),
					 errhint("Every tag row must name its subject.")));
		subject_text = pfg_subject_text(subject, grel->subject_type);
		if (grel->collected_attnum != InvalidAttrNumber &&
			(oldtup == NULL || recollect || assigns(trigdata, grel->collected_attnum)))
			check_collected_at(rel, grel, desc, values, nulls);

		value = values[grel->value_attnum - 1];
		isnull = nulls[grel->value_attnum - 1];
		if (!isnull && subject_moves && same_tag)
		{
			bool		oldnull;
			Datum		prev = heap_getattr(oldtup, grel->value_attnum, desc, &oldnull);

			if (!oldnull && datumIsEqual(value, prev, att->attbyval, att->attlen))
				carry_value(rel, grel, old_subject, old_subject_null, subject_text,
							tag_id, tag, sensitive, NameStr(att->attname));
		}
		if (isnull)
		{
			/* a tag row without a value still says the subject has the tag */
			if (oldtup == NULL || recollect)
			{
				if (!pfg_subject_tag_collectable(subject, grel->subject_type, tag_id))
					refuse_uncollectable(rel, subject_text, tag);
				if (OidIsValid(stamp_root))
					pfg_stamp_collected(stamp_root, subject_text, tag);
			}
		}
		else
		{
			bool		unchanged = has_old && datumIsEqual(value, old, att->attbyval, att->attlen);

			if (!sensitive && (recollect || !unchanged))
				check_value_lexicon(rel, NameStr(att->attname), tag, value, att->atttypid);
			stored = collect_value(rel, subject, grel->subject_type, subject_text,
								   tag_id, tag, sensitive, value, att, has_old, old,
								   recollect, stamp_root,
								   holds_text(att) ? NameStr(att->attname) : NULL);
			if (stored != value)
			{
				site->stored[grel->value_attnum - 1] = stored;
				site->replace[grel->value_attnum - 1] = true;
				changed = true;
			}
		}
	}

	return changed ? COLLECT_CHANGED : COLLECT_AS_IS;
}

Datum
profile_guard_collect(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	GuardedRelation *grel;
	CollectSite *site;
	HeapTuple	formed;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s can only be called as a trigger", "profile_guard._collect()")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "profile_guard._collect() must be fired BEFORE, FOR EACH ROW");

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		newtup = trigdata->tg_newtuple;
		oldtup = trigdata->tg_trigtuple;
	}
	else if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		newtup = trigdata->tg_trigtuple;
	else
		return PointerGetDatum(trigdata->tg_trigtuple);

	/* the sweep anonymising or nulling cells collects nothing */
	if (pfg_erasure_writing(RelationGetRelid(rel)))
		return PointerGetDatum(newtup);

	site = (CollectSite *) fcinfo->flinfo->fn_extra;
	if (site == NULL)
		fcinfo->flinfo->fn_extra = site = pfg_collect_site(fcinfo->flinfo->fn_mcxt);
	/* a copy: what follows may take in invalidations, which free the map's */
	grel = guarded_shape(site, RelationGetRelid(rel));
	if (grel == NULL || (grel->ncolumns == 0 && grel->tag_attnum == InvalidAttrNumber))
		return PointerGetDatum(newtup);
	refuse_later_triggers(trigdata);

	replacement_arrays(site, desc->natts);
	heap_deform_tuple(newtup, desc, site->values, site->nulls);
	switch (collect_row(site, rel, grel, trigdata, oldtup, site->values, site->nulls))
	{
		case COLLECT_SKIP:
			return PointerGetDatum(NULL);
		case COLLECT_AS_IS:
			break;
		case COLLECT_CHANGED:
			/* formed as heap_modify_tuple() forms it: the row's identity kept */
			apply_replacements(site, desc->natts, site->values, site->nulls);
			formed = heap_form_tuple(desc, site->values, site->nulls);
			formed->t_data->t_ctid = newtup->t_data->t_ctid;
			formed->t_self = newtup->t_self;
			formed->t_tableOid = newtup->t_tableOid;
			return PointerGetDatum(formed);
	}
	return PointerGetDatum(newtup);
}

/*
 * A row an INSERT's plan is about to write into rel (collect_plan.c, which
 * stands in for the trigger when it is the only BEFORE ROW trigger that
 * would fire): collected as the trigger would, the values to store put in
 * values/nulls.  Errors as the trigger's.
 */
void
pfg_collect_new_row(CollectSite *site, Relation rel, Datum *values, bool *nulls)
{
	GuardedRelation *grel;

	if (pfg_erasure_writing(RelationGetRelid(rel)))
		return;
	grel = guarded_shape(site, RelationGetRelid(rel));
	if (grel == NULL || (grel->ncolumns == 0 && grel->tag_attnum == InvalidAttrNumber))
		return;
	replacement_arrays(site, RelationGetDescr(rel)->natts);
	if (collect_row(site, rel, grel, NULL, NULL, values, nulls) == COLLECT_CHANGED)
		apply_replacements(site, RelationGetDescr(rel)->natts, values, nulls);
}
