/*-------------------------------------------------------------------------
 *
 * purpose.c
 *	  The declared purpose: which one gates the running statement (the
 *	  setting profile_guard.purpose, as it was when the statement started),
 *	  and whether the current role may use it: it exists, is not retired,
 *	  is allowed to the role and, when it makes automated decisions or
 *	  provides profiles to a recipient abroad, has an assessment of its
 *	  current version.  A purpose that passes
 *	  yields its answers (consent_cache.c), which the gates then ask row by
 *	  row.  Superusers and BYPASSRLS roles are not gated at all.
 *
 *	  Definitions are read from the catalog once per policy generation, and
 *	  validated once per role until roles or memberships change.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "bypass.h"
#include "audit.h"
#include "invalidation.h"
#include "policy_generation.h"
#include "purpose.h"
#include "spi_checked.h"

/*
 * A purpose's definition, read from the catalog once per policy generation
 * (pfg_consent_answers_basis), and the role it was last validated for.
 */
typedef struct PurposeDefinition
{
	char		name[NAMEDATALEN * 2];
	bool		exists;
	int			version;
	bool		marketing;
	bool		retired;
	bool		unassessed;		/* automated decision without assessment */
	bool		transfer_unassessed;	/* cross-border without assessment */
	char	   *recipient;		/* whose cells are recorded (recipient_use.c), or NULL */
	int			nroles;
	Oid		   *roles;			/* roles allowed to declare it */
	Oid			validated_for;	/* role that passed validation, or Invalid */
} PurposeDefinition;

#define MAX_DEFINITIONS 8		/* more, and all are read again */

static MemoryContext DefinitionsContext = NULL;
/* a parallel worker attached to its leader's run (parallel_gates.c) */
static bool ResolvesInWorker = false;

/* a definition is being read from the catalog */
static bool LoadingDefinition = false;

static PurposeDefinition *Definitions[MAX_DEFINITIONS];
static int	NDefinitions = 0;
static uint64 DefinitionsBasis = 0; /* the answers' basis they were read under */

/* the purpose resolved last (purpose.h checks it inline) */
PfgPurposeLast pfg_purpose_last = {NULL, NULL, NULL, 0, 0, InvalidOid};

void
pfg_purpose_roles_invalidated(void)
{
	/* roles' memberships may have changed: re-validate purposes */
	for (int i = 0; i < NDefinitions; i++)
		Definitions[i]->validated_for = InvalidOid;
	pfg_purpose_last.answers = NULL;
}

/* read a purpose's definition (def->name) from the catalog */
static void
load_definition(PurposeDefinition *def)
{
	PfgCatalogAccess ca;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	int			rc;
	bool		recipients = OidIsValid(pfg_catalog_relid("recipient"));
	bool		recipient_use = OidIsValid(pfg_catalog_relid("recipient_use"));

	args[0] = CStringGetTextDatum(def->name);
	args[1] = CStringGetTextDatum(pfg_home_country);
	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, false);
	PushActiveSnapshot(pfg_policy_snapshot());
	{
		/*
		 * cross-border: the recipient is in another country than
		 * profile_guard.home_country ($2); a database still at 1.1 has no
		 * recipients.  The recipient is kept when its cells are recorded
		 * (recipient_use.c; not before the 1.2 catalog has the record).
		 */
		rc = SPI_execute_with_args(
			psprintf("SELECT p.version, p.marketing, p.retired_at IS NOT NULL,"
					 "       p.automated_decision AND NOT x.assessed,"
					 "       ARRAY(SELECT r.role_name::text FROM profile_guard.purpose_role r"
					 "             WHERE r.purpose = p.purpose),"
					 "       x.abroad AND NOT x.assessed,"
					 "       CASE WHEN %s THEN p.recipient END"
					 "  FROM profile_guard.purpose p"
					 "  CROSS JOIN LATERAL (SELECT EXISTS ("
					 "           SELECT 1 FROM profile_guard.assessment a"
					 "           WHERE a.purpose = p.purpose AND a.purpose_version = p.version)"
					 "         AS assessed, %s AS abroad) x"
					 " WHERE p.purpose = $1",
					 recipient_use ? "true" : "false",
					 recipients ?
					 "coalesce((SELECT r.country <> $2 FROM profile_guard.recipient r"
					 "          WHERE r.recipient = p.recipient), false)" :
					 "$2 IS NULL AND false"),
			2, argtypes, args, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not read purpose: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
		{
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			ArrayType  *roles;
			Datum	   *elems;
			bool	   *nulls;
			int			nelems;

			def->exists = true;
			def->version = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
			def->marketing = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
			def->retired = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
			def->unassessed = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
			def->transfer_unassessed = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull)) &&
				!isnull;
			{
				Datum		recipient = SPI_getbinval(tup, desc, 7, &isnull);

				if (!isnull)
					def->recipient = MemoryContextStrdup(DefinitionsContext,
														 TextDatumGetCString(recipient));
			}
			roles = DatumGetArrayTypeP(SPI_getbinval(tup, desc, 5, &isnull));
			deconstruct_array(roles, TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &nulls, &nelems);
			def->roles = MemoryContextAlloc(DefinitionsContext, sizeof(Oid) * (nelems + 1));
			for (int i = 0; i < nelems; i++)
			{
				Oid			r = get_role_oid(TextDatumGetCString(elems[i]), true);

				if (OidIsValid(r))
					def->roles[def->nroles++] = r;
			}
		}
	}
	PopActiveSnapshot();
	pfg_end_catalog_access(&ca);
	pfg_spi_finish();
}

/* forget every definition read so far */
static void
forget_definitions(void)
{
	pfg_purpose_last.answers = NULL;
	pfg_purpose_last.name = NULL;
	pfg_purpose_last.recipient = NULL;
	NDefinitions = 0;
	if (DefinitionsContext != NULL)
		MemoryContextReset(DefinitionsContext);
}

/*
 * The definition of purpose 'name', read from the catalog unless it was
 * under the answers' basis now.  The collection pseudo-purpose's name is
 * that of no purpose: never read, it does not exist.
 */
static PurposeDefinition *
definition_of(const char *name)
{
	PurposeDefinition *def;

	if (DefinitionsBasis != pfg_consent_answers_basis())
	{
		forget_definitions();
		DefinitionsBasis = pfg_consent_answers_basis();
	}
	for (int i = 0; i < NDefinitions; i++)
	{
		if (strcmp(Definitions[i]->name, name) == 0)
			return Definitions[i];
	}
	if (NDefinitions == MAX_DEFINITIONS)
		forget_definitions();
	if (DefinitionsContext == NULL)
		DefinitionsContext = AllocSetContextCreate(TopMemoryContext,
												   "profile_guard purposes",
												   ALLOCSET_SMALL_SIZES);
	def = MemoryContextAllocZero(DefinitionsContext, sizeof(PurposeDefinition));
	strlcpy(def->name, name, sizeof(def->name));
	if (strcmp(name, PFG_COLLECT_PURPOSE) != 0)
	{
		/*
		 * Its query runs through the executor hooks, which must not read
		 * a definition meanwhile (pfg_purpose_records_recipient)
		 */
		LoadingDefinition = true;
		PG_TRY();
		{
			load_definition(def);
		}
		PG_FINALLY();
		{
			LoadingDefinition = false;
		}
		PG_END_TRY();
	}
	if (NDefinitions == MAX_DEFINITIONS)
		elog(ERROR, "purpose definitions were read again while one was read");
	Definitions[NDefinitions++] = def;
	return def;
}

/* the purpose validated last, for the next call */
static void
remember(uint64 generation, Oid user, PurposeState *answers, PurposeDefinition *def)
{
	pfg_purpose_last.answers = answers;
	pfg_purpose_last.name = def->name;
	pfg_purpose_last.recipient = def->recipient;
	pfg_purpose_last.generation = generation;
	pfg_purpose_last.drops = pfg_consent_answers_drops();
	pfg_purpose_last.user = user;
}

/*
 * Resolve purpose 'name', the value the setting had at 'generation': checks
 * that one is declared, exists, is not retired, is allowed to the current
 * role and, for automated decisions, is assessed.  'relid' and 'tag' only
 * feed the error message.  Returns NULL for roles that bypass gating.
 */
static PurposeState *
resolve_purpose(const char *name, uint64 generation, Oid relid, const char *tag)
{
	PurposeState *answers;
	PurposeDefinition *def;
	Oid			user;

	/* the common case: the same purpose and role as the last call */
	user = GetUserId();
	if (pfg_purpose_last_holds(generation, user))
		return pfg_purpose_last.answers;

	/* a worker runs gates only for a leader that handed it its state */
	if (IsParallelWorker() && !ResolvesInWorker)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the gates of profile_guard cannot run in this parallel worker"),
				 errdetail("Its leader did not hand it the statement's state."),
				 errhint("Run the query with max_parallel_workers_per_gather = 0.")));

	if (pfg_current_user_bypasses())
		return NULL;

	if (name == NULL || name[0] == '\0')
		pfg_refuse(PFG_REFUSAL_NO_PURPOSE, tag,
				  (errcode(PFG_ERRCODE_NO_PURPOSE),
				 errmsg("no purpose declared for reading profile tags"),
				 !OidIsValid(relid) ? 0 :
				 tag ? errdetail("The statement reads tag \"%s\" of table \"%s\".",
								 tag, get_rel_name(relid)) :
				 errdetail("The statement reads the tag rows of table \"%s\".",
						   get_rel_name(relid)),
				 errhint("Declare the purpose of the statement first, e.g. SET profile_guard.purpose = 'recommendation'.")));

	answers = pfg_consent_answers(name);
	def = definition_of(name);
	if (def->validated_for == user)
	{
		remember(generation, user, answers, def);
		return answers;
	}

	if (!def->exists)
		pfg_refuse(PFG_REFUSAL_UNKNOWN_PURPOSE, tag,
				  (errcode(PFG_ERRCODE_UNKNOWN_PURPOSE),
				 errmsg("purpose \"%s\" does not exist", name),
				 errdetail("profile_guard.purpose names a purpose that was never defined."),
				 errhint("Declare a defined purpose, or define it with profile_guard.define_purpose().")));
	if (def->retired)
		pfg_refuse(PFG_REFUSAL_PURPOSE_UNUSABLE, tag,
				  (errcode(PFG_ERRCODE_PURPOSE_UNUSABLE),
				 errmsg("purpose \"%s\" is retired", name),
				 errdetail("Profile tags cannot be used for a retired purpose."),
				 errhint("Declare a purpose that is still in force.")));
	{
		bool		allowed = false;

		for (int i = 0; i < def->nroles && !allowed; i++)
			allowed = has_privs_of_role(user, def->roles[i]);
		if (!allowed)
			pfg_refuse(PFG_REFUSAL_PURPOSE_NOT_ALLOWED, tag,
					  (errcode(PFG_ERRCODE_PURPOSE_NOT_ALLOWED),
					 errmsg("role \"%s\" may not use purpose \"%s\"",
							GetUserNameFromId(user, false), name),
					 errdetail("Only roles allowed the purpose may declare it."),
					 errhint("An administrator can allow it: SELECT profile_guard.allow_purpose('%s', '%s').",
							 GetUserNameFromId(user, false), name)));
	}
	if (def->unassessed)
		pfg_refuse(PFG_REFUSAL_PURPOSE_UNUSABLE, tag,
				  (errcode(PFG_ERRCODE_PURPOSE_UNUSABLE),
				 errmsg("purpose \"%s\" makes automated decisions and has no impact assessment for version %d",
						name, def->version),
				 errdetail("Automated-decision purposes need a personal-information impact assessment of their current version."),
				 errhint("Record one: SELECT profile_guard.record_assessment('%s', 'assessor', 'conclusion').",
						 name)));
	if (def->transfer_unassessed)
		pfg_refuse(PFG_REFUSAL_PURPOSE_UNUSABLE, tag,
				  (errcode(PFG_ERRCODE_PURPOSE_UNUSABLE),
				 errmsg("purpose \"%s\" provides profiles abroad and has no assessment for version %d",
						name, def->version),
				 errdetail("A purpose whose recipient is outside profile_guard.home_country needs a recorded assessment of its current version (PIPL articles 38-39)."),
				 errhint("Record one: SELECT profile_guard.record_assessment('%s', 'assessor', 'conclusion').",
						 name)));
	def->validated_for = user;
	remember(generation, user, answers, def);
	return answers;
}

/*
 * The purpose that gates the running statement: the one in force when the
 * statement started (audit.c fixes it at ExecutorStart), so a change made
 * during the statement counts from the next one.  Outside any audited
 * statement, the setting as it is now.
 */
PurposeState *
pfg_purpose_resolve_for_statement(Oid relid, const char *tag)
{
	if (PfgAuditCur->purpose_fixed)
		return resolve_purpose(PfgAuditCur->purpose, PfgAuditCur->purpose_generation,
							   relid, tag);
	return resolve_purpose(pfg_purpose, pfg_purpose_generation,
						   relid, tag);
}

/* the purpose in force now: for checks made as a statement starts */
PurposeState *
pfg_purpose_now(Oid relid, const char *tag)
{
	return resolve_purpose(pfg_purpose, pfg_purpose_generation,
						   relid, tag);
}

/*
 * Are the cells served under the running statement's purpose, or under the
 * purpose declared now, recorded for a recipient (recipient_use.c)?  Looks
 * only at their definitions: refuses nothing.  While a definition is being
 * read (its query asks, through the executor hooks), true.
 */
bool
pfg_purpose_records_recipient(void)
{
	const char *names[2];

	/* the catalog query that reads a definition: assume so */
	if (LoadingDefinition)
		return true;

	names[0] = PfgAuditCur->purpose_fixed ? PfgAuditCur->purpose : NULL;
	names[1] = pfg_purpose;
	for (int i = 0; i < 2; i++)
		if (names[i] != NULL && names[i][0] != '\0' &&
			definition_of(names[i])->recipient != NULL)
			return true;
	return false;
}

/*
 * A parallel worker resolves purposes (runs gates) only once it has
 * attached to its leader's run (parallel_gates.c).
 */
void
pfg_purpose_allow_in_worker(void)
{
	ResolvesInWorker = true;
}

/* is a purpose declared for the running statement? */
bool
pfg_statement_purpose_declared(void)
{
	const char *name = PfgAuditCur->purpose_fixed ? PfgAuditCur->purpose : pfg_purpose;

	return name != NULL && name[0] != '\0';
}
