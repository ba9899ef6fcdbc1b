/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The extension's own settings: the declared purpose, the age of
 *	  majority, the zone ages are computed in and how a subject without a
 *	  birth date counts, the home country (which makes a recipient
 *	  abroad), which tags are served only over a secure connection
 *	  (transport.c), the audit level and where
 *	  the audit trail goes (the server log, or files: audit_file.c), the
 *	  grace the sweep gives tags held only by consents that stopped
 *	  counting (read by _erasure_prepare() in SQL); and
 *	  the refusal of SQL functions when the library was not preloaded.  The
 *	  settings of one part (key sources, sizes, the sweep's timing) are
 *	  defined by that part.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "pgtime.h"
#include "utils/guc.h"

#include "extension.h"
#include "settings.h"

char	   *pfg_purpose = NULL;
uint64		pfg_purpose_generation = 0;
int			pfg_minor_age = 18;
char	   *pfg_age_time_zone = NULL;
int			pfg_unknown_age = PFG_UNKNOWN_AGE_ADULT;
int			pfg_secure_transport = PFG_SECURE_TRANSPORT_SENSITIVE;
char	   *pfg_home_country = NULL;
int			pfg_audit = PFG_AUDIT_OFF;
int			pfg_audit_destination = PFG_AUDIT_TO_FILE;
char	   *pfg_audit_directory = NULL;
char	   *pfg_audit_filename = NULL;
bool		pfg_audit_fsync = false;
uint64		pfg_audit_file_generation = 0;
bool		pfg_loaded = false;
int			pfg_stopped_consent_grace = 30 * 24 * 3600;	/* seconds; -1: never */

static const struct config_enum_entry audit_options[] = {
	{"off", PFG_AUDIT_OFF, false},
	{"denials", PFG_AUDIT_DENIALS, false},
	{"all", PFG_AUDIT_ALL, false},
	{NULL, 0, false}
};

static const struct config_enum_entry unknown_age_options[] = {
	{"adult", PFG_UNKNOWN_AGE_ADULT, false},
	{"minor", PFG_UNKNOWN_AGE_MINOR, false},
	{"child", PFG_UNKNOWN_AGE_CHILD, false},
	{NULL, 0, false}
};

static const struct config_enum_entry secure_transport_options[] = {
	{"off", PFG_SECURE_TRANSPORT_OFF, false},
	{"sensitive", PFG_SECURE_TRANSPORT_SENSITIVE, false},
	{"all", PFG_SECURE_TRANSPORT_ALL, false},
	{NULL, 0, false}
};

static const struct config_enum_entry audit_destination_options[] = {
	{"log", PFG_AUDIT_TO_LOG, false},
	{"file", PFG_AUDIT_TO_FILE, false},
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

/*
 * The home country (ISO 3166-1 alpha-2, two upper-case letters): a purpose
 * whose recipient is in another country is cross-border (PIPL art. 38-39).
 */
static bool
check_home_country(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;

	if (v == NULL || strlen(v) != 2 || v[0] < 'A' || v[0] > 'Z' ||
		v[1] < 'A' || v[1] > 'Z')
	{
		GUC_check_errdetail("The home country is an ISO 3166-1 alpha-2 code: two upper-case letters.");
		GUC_check_errhint("Use a code such as 'CN'.");
		return false;
	}
	return true;
}

/*
 * The audit trail's directory: absolute, or relative to the data directory,
 * as log_directory is.  Canonicalised, so that it compares equal to itself
 * however it was spelled.
 */
static bool
check_audit_directory(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0')
	{
		GUC_check_errdetail("The directory of the audit files must be named.");
		GUC_check_errhint("Use a path relative to the data directory, such as 'profile_guard_audit', or an absolute path.");
		return false;
	}
	if (strlen(*newval) >= MAXPGPATH / 2)
	{
		GUC_check_errdetail("The directory of the audit files is at most %d bytes long.", MAXPGPATH / 2 - 1);
		return false;
	}
	canonicalize_path(*newval);
	return true;
}

/*
 * The audit files' name: a strftime() pattern, expanded when lines are
 * written (audit_file.c); a file of the directory, not a path.
 */
static bool
check_audit_filename(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0')
	{
		GUC_check_errdetail("The name of the audit files must not be empty.");
		GUC_check_errhint("Use a strftime() pattern such as 'audit-%%Y-%%m-%%d.jsonl'.");
		return false;
	}
	if (strchr(*newval, '/') != NULL)
	{
		GUC_check_errdetail("The name of the audit files cannot contain \"/\".");
		GUC_check_errhint("Set profile_guard.audit_directory to choose the directory.");
		return false;
	}
	if (strlen(*newval) >= MAXPGPATH / 4)
	{
		GUC_check_errdetail("The name of the audit files is at most %d bytes long.", MAXPGPATH / 4 - 1);
		return false;
	}
	return true;
}

/* a new directory or name takes effect at the next write (audit_file.c) */
static void
assign_audit_file(const char *newval, void *extra)
{
	pfg_audit_file_generation++;
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

	DefineCustomIntVariable("profile_guard.stopped_consent_grace",
							"How long the sweep keeps tags held only by consents that stopped counting.",
							"A consent stops counting when its purpose gets a new version it was not renewed for, or when the subject opts out of its personalised purpose; -1 keeps such tags for as long as the consent exists, 0 lets the next sweep erase them.",
							&pfg_stopped_consent_grace,
							30 * 24 * 3600, -1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("profile_guard.age_time_zone",
							   "The time zone in which subjects' ages are computed.",
							   "A subject turns 14 or profile_guard.minor_age at midnight of the birthday in this zone, whatever the session's TimeZone.",
							   &pfg_age_time_zone,
							   "UTC",
							   PGC_SUSET,
							   0,
							   check_age_time_zone, NULL, NULL);

	DefineCustomEnumVariable("profile_guard.unknown_age",
							 "How the minors' rules treat a registered subject without a birth date.",
							 "adult: as an adult; minor: as a minor (no marketing purpose sees it); child: as a child under 14 (every tag sensitive, guardian consent given separately).",
							 &pfg_unknown_age,
							 PFG_UNKNOWN_AGE_ADULT,
							 unknown_age_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("profile_guard.secure_transport",
							 "Which tags are served only over SSL or a local socket.",
							 "off: every connection; sensitive: sensitive tags only over SSL or a local socket; all: every tag.  A statement that would serve such a tag over plain TCP is refused.",
							 &pfg_secure_transport,
							 PFG_SECURE_TRANSPORT_SENSITIVE,
							 secure_transport_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("profile_guard.home_country",
							   "The country the data is held in (ISO 3166-1 alpha-2).",
							   "A purpose whose recipient is in another country is cross-border: every tag needs separate consent and the purpose a recorded assessment.",
							   &pfg_home_country,
							   "CN",
							   PGC_SIGHUP,
							   0,
							   check_home_country, NULL, NULL);

	DefineCustomEnumVariable("profile_guard.audit",
							 "Which uses of profile tags are written to the server log.",
							 NULL,
							 &pfg_audit,
							 PFG_AUDIT_OFF,
							 audit_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("profile_guard.audit_destination",
							 "Where the audit trail is written: files of its own, or the server log.",
							 "file: profile_guard.audit_directory, one JSON object per line; log: LOG messages prefixed \"profile_guard audit: \".",
							 &pfg_audit_destination,
							 PFG_AUDIT_TO_FILE,
							 audit_destination_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("profile_guard.audit_directory",
							   "The directory of the audit files.",
							   "Absolute, or relative to the data directory; created (mode 0700) when missing.",
							   &pfg_audit_directory,
							   "profile_guard_audit",
							   PGC_SIGHUP,
							   0,
							   check_audit_directory, assign_audit_file, NULL);

	DefineCustomStringVariable("profile_guard.audit_filename",
							   "The name of the audit files, a strftime() pattern.",
							   "Expanded in log_timezone when lines are written: a new name starts a new file.",
							   &pfg_audit_filename,
							   "audit-%Y-%m-%d.jsonl",
							   PGC_SIGHUP,
							   0,
							   check_audit_filename, assign_audit_file, NULL);

	DefineCustomBoolVariable("profile_guard.audit_fsync",
							 "Whether the audit file is flushed to disk at the end of each transaction that wrote to it.",
							 "Only when the server's fsync setting is on.",
							 &pfg_audit_fsync,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
}
