/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  The extension's own settings (settings.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_SETTINGS_H
#define PROFILE_GUARD_SETTINGS_H

/* audit levels (profile_guard.audit) */
typedef enum ProfileGuardAuditLevel
{
	PFG_AUDIT_OFF,
	PFG_AUDIT_DENIALS,
	PFG_AUDIT_ALL
} ProfileGuardAuditLevel;

/* where the audit trail goes (profile_guard.audit_destination) */
typedef enum PfgAuditDestination
{
	PFG_AUDIT_TO_LOG,
	PFG_AUDIT_TO_FILE
} PfgAuditDestination;

/* which tags are served only over SSL or a local socket (profile_guard.secure_transport) */
typedef enum PfgSecureTransport
{
	PFG_SECURE_TRANSPORT_OFF,
	PFG_SECURE_TRANSPORT_SENSITIVE,
	PFG_SECURE_TRANSPORT_ALL
} PfgSecureTransport;

/* how the minors' rules treat a subject without a birth date (profile_guard.unknown_age) */
typedef enum PfgUnknownAge
{
	PFG_UNKNOWN_AGE_ADULT,
	PFG_UNKNOWN_AGE_MINOR,
	PFG_UNKNOWN_AGE_CHILD
} PfgUnknownAge;

extern char *pfg_purpose;
extern uint64 pfg_purpose_generation;
extern int	pfg_minor_age;
extern char *pfg_age_time_zone;
extern int	pfg_unknown_age;
extern int	pfg_secure_transport;
extern char *pfg_home_country;
extern int	pfg_audit;
extern int	pfg_audit_destination;
extern char *pfg_audit_directory;
extern char *pfg_audit_filename;
extern bool pfg_audit_fsync;
extern uint64 pfg_audit_file_generation;
extern bool pfg_loaded;
/* seconds the sweep keeps tags held only by stopped consents; -1: never */
extern int	pfg_stopped_consent_grace;

extern void pfg_require_preload(void);

extern void pfg_settings_define(void);

#endif							/* PROFILE_GUARD_SETTINGS_H */
