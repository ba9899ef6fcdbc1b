/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The extension's own settings: the declared purpose, the age of
 *	  majority and the zone ages are computed in, the audit level; and the
 *	  refusal of SQL functions when the library was not preloaded.  The
 *	  settings of one part (key sources, sizes, the sweep's timing) are
 *	  defined by that part.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgtime.h"
#include "utils/guc.h"

#include "extension.h"
#include "settings.h"

char	   *pfg_purpose = NULL;
uint64		pfg_purpose_generation = 0;
int			pfg_minor_age = 18;
char	   *pfg_age_time_zone = NULL;
int			pfg_audit = PFG_AUDIT_OFF;
bool		pfg_loaded = false;

static const struct config_enum_entry audit_options[] = {
	{"off", PFG_AUDIT_OFF, false},
	{"denials", PFG_AUDIT_DENIALS, false},
	{"all", PFG_AUDIT_ALL, false},
	{NULL, 0, false}
};

/*
 * A purpose name is checked for shape only here; whether it exists, is
 * retired or is allowed to the role is decided by the first statement that
 * uses it, when the catalog can be read.
 */
static bool
check_purpose(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;

	if (p == NULL || *p == '\0')
		return true;
	if (strlen(p) > NAMEDATALEN * 2)
	{
		GUC_check_errdetail("A purpose name is at most %d bytes long.", NAMEDATALEN * 2);
		return false;
	}
	for (; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			  *p == '_' || *p == '.' || *p == ':' || *p == '-'))
		{
			GUC_check_errdetail("A purpose name consists of lower-case letters, digits, \"_\", \".\", \":\" and \"-\".");
			return false;
		}
	}
	return true;
}

/*
 * Every assignment (SET, SET LOCAL, RESET, the restore at transaction or
 * function end) bumps a counter, so the gates can keep the purpose they
 * resolved for as long as the setting stays the same.
 */
static void
assign_purpose(const char *newval, void *extra)
{
	pfg_purpose_generation++;
}

/*
 * SQL functions call this: without preloading, the planner hooks are not in
 * place and nothing would be enforced, so refuse rather than pretend.
 */
void
pfg_require_preload(void)
{
	if (!pfg_loaded)
		ereport(ERROR,
				(errcode(PFG_ERRCODE_NOT_PRELOADED),
				 errmsg("profile_guard must be loaded via shared_preload_libraries"),
				 errdetail("Without preloading, queries would not be gated."),
				 errhint("Add profile_guard to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * Ages are computed in one time zone for every session, never in the
 * session's own TimeZone: a zone the server knows, named as in
 * pg_timezone_names, at most NAMEDATALEN - 1 bytes (the shared answers
 * are keyed by it).
 */
static bool
check_age_time_zone(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0')
	{
		GUC_check_errdetail("The time zone in which ages are computed must be named.");
		return false;
	}
	if (strlen(*newval) >= NAMEDATALEN || pg_tzset(*newval) == NULL)
	{
		GUC_check_errdetail("Time zone \"%s\" is not known to the server.", *newval);
		GUC_check_errhint("Use a name from pg_timezone_names, such as 'UTC' or 'Asia/Shanghai'.");
		return false;
	}
	return true;
}

/* the settings above, defined from _PG_init */
void
pfg_settings_define(void)
{
	DefineCustomStringVariable("profile_guard.purpose",
							   "The declared purpose for which profile tags are used.",
							   "Statements that read tag columns fail unless a purpose is declared.",
							   &pfg_purpose,
							   "",
							   PGC_USERSET,
							   0,
							   check_purpose, assign_purpose, NULL);

	DefineCustomIntVariable("profile_guard.minor_age",
							"Subjects younger than this are minors; marketing purposes never see them.",
							NULL,
							&pfg_minor_age,
							18, 1, 150,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("profile_guard.age_time_zone",
							   "The time zone in which subjects' ages are computed.",
							   "A subject turns 14 or profile_guard.minor_age at midnight of the birthday in this zone, whatever the session's TimeZone.",
							   &pfg_age_time_zone,
							   "UTC",
							   PGC_SUSET,
							   0,
							   check_age_time_zone, NULL, NULL);

	DefineCustomEnumVariable("profile_guard.audit",
							 "Which uses of profile tags are written to the server log.",
							 NULL,
							 &pfg_audit,
							 PFG_AUDIT_OFF,
							 audit_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
}
