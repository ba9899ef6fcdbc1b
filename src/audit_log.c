/*-------------------------------------------------------------------------
 *
 * audit_log.c
 *	  The audit trail's lines (rule 11 of docs/rules.md): what they say,
 *	  and where they go; and the classification of refusals.
 *
 *	  A line is one JSON object; docs/audit.md documents its keys.  An
 *	  audited statement (audit.c) writes a "read" (or "bypass_read") line
 *	  as it ends, a "denial" line when it is refused; a "lost" line counts
 *	  the failed statements that could not be kept for reporting.  The
 *	  backend only writes the line's binary record (audit_binary.c): the
 *	  counts, and the names it memorises here.  With
 *	  profile_guard.audit_destination = file (the default) the record is
 *	  built in place in the backend's buffer of the audit file
 *	  (audit_file.c), and formatted by whoever writes the file; with log it
 *	  is formatted at once into a LOG message, "profile_guard audit: "
 *	  followed by the object.
 *
 *	  A refusal is raised through pfg_refuse() (errcodes.h), which notes
 *	  its kind and tag here just before raising the error in its own
 *	  message domain; pfg_refusal_of() tells a refusal from any other error
 *	  by that domain, and names its reason as the audit trail does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "audit_log.h"
#include "audit_binary.h"
#include "audit_file.h"
#include "invalidation.h"

#define AUDIT_NAME_LEN		(NAMEDATALEN * 2)

/* purpose name -> version memo, dropped when policy changes */
#define VERSION_MEMO 8
static struct
{
	char		name[AUDIT_NAME_LEN];
	int			version;
}			VersionMemo[VERSION_MEMO];
static int	NVersionMemo = 0;
static Oid	VersionSentinel = InvalidOid;	/* profile_guard.consent */

/* ---------------------------------------------------------------------
 * The line
 * ---------------------------------------------------------------------
 */

/* relation OID -> its quoted, schema-qualified name, for the lines */
#define RELATION_MEMO 8
static struct
{
	Oid			relid;
	char		text[AUDIT_NAME_LEN * 2 + 8];
}			RelationMemo[RELATION_MEMO];
static int	NRelationMemo = 0;

void
pfg_audit_relcache_invalidated(Oid relid)
{
	/* a change of policy (signalled on the consent table) may bump a version */
	if (relid == InvalidOid || relid == VersionSentinel)
		NVersionMemo = 0;
	/* a relation renamed or moved to another schema */
	for (int i = 0; i < NRelationMemo; i++)
		if (relid == InvalidOid || RelationMemo[i].relid == relid)
		{
			NRelationMemo = 0;
			break;
		}
}

/* a schema renamed: every name may have changed */
void
pfg_audit_schemas_invalidated(void)
{
	NRelationMemo = 0;
}

static int
purpose_version(const char *name)
{
	Oid			relid;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	int			version = -1;

	if (name[0] == '\0')
		return -1;
	for (int i = 0; i < NVersionMemo; i++)
		if (strcmp(VersionMemo[i].name, name) == 0)
			return VersionMemo[i].version;
	relid = pfg_catalog_relid("purpose");
	if (!OidIsValid(relid))
		return -1;
	if (NVersionMemo == 0)
		VersionSentinel = pfg_catalog_relid("consent");
	/* dropped while we waited for the lock: no version to name */
	rel = try_table_open(relid, AccessShareLock);
	if (rel == NULL)
		return -1;
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull);

		if (!isnull && strcmp(TextDatumGetCString(d), name) == 0)
		{
			version = DatumGetInt32(heap_getattr(tup, 2, RelationGetDescr(rel), &isnull));
			break;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (version > 0 && NVersionMemo < VERSION_MEMO && strlen(name) < AUDIT_NAME_LEN)
	{
		strlcpy(VersionMemo[NVersionMemo].name, name, AUDIT_NAME_LEN);
		VersionMemo[NVersionMemo++].version = version;
	}
	return version;
}

/*
 * Names for the line.  Outside a transaction (a backend writing what its
 * last, failed statement read as it exits) no catalog can be read: then
 * "#" and the OID.
 */
static const char *
relation_text(Oid relid)
{
	char	   *rel;
	char	   *nsp;
	const char *text;

	for (int i = 0; i < NRelationMemo; i++)
		if (RelationMemo[i].relid == relid)
			return RelationMemo[i].text;
	if (!IsTransactionState() || (rel = get_rel_name(relid)) == NULL)
		return psprintf("#%u", relid);
	nsp = get_namespace_name(get_rel_namespace(relid));
	text = quote_qualified_identifier(nsp, rel);
	if (NRelationMemo < RELATION_MEMO && strlen(text) < sizeof(RelationMemo[0].text))
	{
		RelationMemo[NRelationMemo].relid = relid;
		strlcpy(RelationMemo[NRelationMemo++].text, text, sizeof(RelationMemo[0].text));
	}
	return text;
}

/*
 * Role names are memorised for the two roles of a session's lines (user and
 * session_user), until a role changes (pfg_audit_roles_invalidated).
 */
#define ROLE_MEMO 2
static struct
{
	Oid			roleid;
	char		name[NAMEDATALEN];
}			RoleMemo[ROLE_MEMO];
static int	NRoleMemo = 0;

void
pfg_audit_roles_invalidated(void)
{
	NRoleMemo = 0;
}

static const char *
role_text(Oid roleid)
{
	char	   *name;

	for (int i = 0; i < NRoleMemo; i++)
		if (RoleMemo[i].roleid == roleid)
			return RoleMemo[i].name;
	if (!IsTransactionState() || (name = GetUserNameFromId(roleid, true)) == NULL)
		return psprintf("#%u", roleid);
	if (NRoleMemo < ROLE_MEMO)
	{
		RoleMemo[NRoleMemo].roleid = roleid;
		strlcpy(RoleMemo[NRoleMemo++].name, name, NAMEDATALEN);
	}
	return name;
}

/*
 * The database's name, read once, in a transaction; a line written outside
 * one before that (a backend exiting) names it by "#" and its OID, as roles
 * and relations are named.  NULL: no database.
 */
static char DatabaseName[NAMEDATALEN];
static bool DatabaseNameReady = false;

static const char *
database_text(void)
{
	char	   *name;

	if (DatabaseNameReady)
		return DatabaseName;
	if (!OidIsValid(MyDatabaseId))
		return NULL;
	if (!IsTransactionState())
		return psprintf("#%u", MyDatabaseId);
	name = get_database_name(MyDatabaseId);
	if (name == NULL)
		return NULL;
	strlcpy(DatabaseName, name, sizeof(DatabaseName));
	DatabaseNameReady = true;
	return DatabaseName;
}

/*
 * A line being built: its binary record (audit_binary.h), in the audit
 * file's buffer or, for the server log, in a buffer of its own, formatted
 * there at once.
 */
typedef struct AuditLine
{
	StringInfo	buf;
	StringInfoData logbuf;
	bool		to_file;
	int			start;
} AuditLine;

static StringInfo
line_begin(AuditLine *line, const PfgAuditBinHeader *header)
{
	line->to_file = (pfg_audit_destination == PFG_AUDIT_TO_FILE);
	if (line->to_file)
		line->buf = pfg_audit_file_line_begin();
	else
	{
		initStringInfo(&line->logbuf);
		line->buf = &line->logbuf;
	}
	line->start = pfg_audit_bin_begin(line->buf, header);
	pfg_audit_bin_str(line->buf, database_text());
	return line->buf;
}

/* the record ended; for the server log, the message (without CONTEXT) */
static void
line_end(AuditLine *line, bool hide_context)
{
	StringInfoData text;

	pfg_audit_bin_end(line->buf, line->start);
	if (line->to_file)
	{
		pfg_audit_file_line_end();
		return;
	}
	initStringInfo(&text);
	appendStringInfoString(&text, PFG_AUDIT_LOG_PREFIX);
	pfg_audit_bin_to_text(line->buf->data, line->buf->len, false, &text);
	ereport(LOG,
			(errmsg_internal("%s", text.data),
			 errhidestmt(true),
			 errhidecontext(hide_context)));
	pfree(text.data);
	pfree(line->buf->data);
}

/* the header of reads and denials */
static void
line_header(PfgAuditBinHeader *h, const PfgAuditRecord *rec, PfgAuditEvent event)
{
	memset(h, 0, sizeof(*h));
	h->event = event;
	h->level = rec->level;
	h->nrels = rec->c.nrels;
	h->ntags = rec->c.ntags;
	h->purpose_version = rec->bypass || !IsTransactionState() ? -1 : purpose_version(rec->purpose);
}

/* the strings common to reads and denials */
static void
line_head(StringInfo buf, const PfgAuditRecord *rec)
{
	pfg_audit_bin_str(buf, role_text(rec->userid));
	pfg_audit_bin_str(buf, role_text(GetSessionUserId()));
	pfg_audit_bin_str(buf, rec->purpose[0] ? rec->purpose : NULL);
	pfg_audit_bin_str(buf, rec->command);
}

/*
 * A statement that read tags has ended (or, failed, is reported later):
 * what it read, and how much of it the gates let through.
 */
void
pfg_audit_log_read(const PfgAuditRecord *rec)
{
	AuditLine	line;
	PfgAuditBinHeader h;
	StringInfo	buf;

	line_header(&h, rec, rec->bypass ? PFG_AUDIT_EVENT_BYPASS_READ : PFG_AUDIT_EVENT_READ);
	h.count = rec->processed;
	h.flags = rec->failed ? 0 : PFG_AUDIT_BIN_COMPLETED;
	buf = line_begin(&line, &h);
	line_head(buf, rec);
	for (int i = 0; i < rec->c.nrels; i++)
	{
		PfgAuditRel *r = &rec->c.rels[i];

		pfg_audit_bin_str(buf, relation_text(r->relid));
		if (!rec->bypass)
		{
			pfg_audit_bin_num(buf, r->seen);
			pfg_audit_bin_num(buf, r->hidden);
		}
	}
	for (int i = 0; i < rec->c.ntags; i++)
	{
		PfgAuditTag *t = &rec->c.tags[i];

		pfg_audit_bin_str(buf, pfg_audit_tag_name(t));
		if (!rec->bypass)
		{
			pfg_audit_bin_num(buf, t->served);
			pfg_audit_bin_num(buf, t->masked);
			pfg_audit_bin_num(buf, pfg_audit_tag_rows_hidden(rec, t));
		}
	}
	line_end(&line, true);
}

/*
 * A statement was refused (reason, as pfg_refusal_of names it; tag: the
 * tag the refusal concerns, named when the statement reads none itself).
 */
void
pfg_audit_log_denial(const PfgAuditRecord *rec, const ErrorData *e,
					 const char *reason, const char *tag)
{
	AuditLine	line;
	PfgAuditBinHeader h;
	StringInfo	buf;
	char		sqlstate[6];

	if (rec->c.ntags > 0)
		tag = NULL;				/* the statement's own tags are named */
	line_header(&h, rec, PFG_AUDIT_EVENT_DENIAL);
	h.flags = tag ? PFG_AUDIT_BIN_EXTRA_TAG : 0;
	buf = line_begin(&line, &h);
	line_head(buf, rec);
	pfg_audit_bin_str(buf, reason);
	memcpy(sqlstate, unpack_sql_state(e->sqlerrcode), 6);
	pfg_audit_bin_str(buf, sqlstate);
	for (int i = 0; i < rec->c.nrels; i++)
		pfg_audit_bin_str(buf, relation_text(rec->c.rels[i].relid));
	for (int i = 0; i < rec->c.ntags; i++)
		pfg_audit_bin_str(buf, pfg_audit_tag_name(&rec->c.tags[i]));
	if (tag)
		pfg_audit_bin_str(buf, tag);
	line_end(&line, true);
}

/* statements that failed and could not be kept for reporting */
void
pfg_audit_log_lost(int64 statements)
{
	AuditLine	line;
	PfgAuditBinHeader h;

	memset(&h, 0, sizeof(h));
	h.event = PFG_AUDIT_EVENT_LOST;
	h.count = statements;
	line_begin(&line, &h);
	line_end(&line, false);
}

/* ---------------------------------------------------------------------
 * Refusals
 * ---------------------------------------------------------------------
 */

/*
 * The refusal being raised (errcodes.h): pfg_refuse() notes its kind and tag
 * just before it raises the error in PFG_REFUSAL_DOMAIN.  Kept in static
 * storage, so that noting allocates nothing.
 */
static const char *const RefusalNames[] = {
	[PFG_REFUSAL_NO_PURPOSE] = "no_purpose",
	[PFG_REFUSAL_PURPOSE_NOT_ALLOWED] = "purpose_not_allowed",
	[PFG_REFUSAL_UNKNOWN_PURPOSE] = "unknown_purpose",
	[PFG_REFUSAL_PURPOSE_UNUSABLE] = "purpose_unusable",
	[PFG_REFUSAL_COLLECTION] = "collection_refused",
};
static int	PendingRefusal = -1;
static char PendingRefusalTag[NAMEDATALEN * 2];

void
pfg_refusal_note(PfgRefusal kind, const char *tag)
{
	PendingRefusal = (int) kind;
	if (tag != NULL)
		strlcpy(PendingRefusalTag, tag, sizeof(PendingRefusalTag));
	else
		PendingRefusalTag[0] = '\0';
}

/*
 * Is this error one of our refusals?  If so, its reason (as the audit trail
 * names it) and, in *tag, the tag it concerns (NULL when none; palloc'd).
 */
const char *
pfg_refusal_of(const ErrorData *e, char **tag)
{
	*tag = NULL;
	if (e->domain == NULL || strcmp(e->domain, PFG_REFUSAL_DOMAIN) != 0 ||
		PendingRefusal < 0 || PendingRefusal >= lengthof(RefusalNames))
		return NULL;
	if (PendingRefusalTag[0] != '\0')
		*tag = pstrdup(PendingRefusalTag);
	return RefusalNames[PendingRefusal];
}
