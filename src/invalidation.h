/*-------------------------------------------------------------------------
 *
 * invalidation.h
 *	  The one relcache and one syscache callback function of profile_guard
 *	  (invalidation.c), and the handlers of each file they call.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_INVALIDATION_H
#define PROFILE_GUARD_INVALIDATION_H

extern void pfg_invalidation_init(void);

/*
 * Relcache handlers: relid is the relation that changed, or InvalidOid
 * when every relation may have (flush all).  They run whenever a backend
 * processes invalidation messages, inside any catalog access: they only
 * mark or drop their file's state and never read the catalog.
 */
extern void pfg_guard_cache_relcache_invalidated(Oid relid);	/* catalog.c */
extern void pfg_policy_generation_relcache_invalidated(Oid relid);	/* policy_generation.c */
extern void pfg_audit_relcache_invalidated(Oid relid);	/* audit_log.c */
extern void pfg_redact_relcache_invalidated(Oid relid); /* redact.c */
extern void pfg_data_key_relcache_invalidated(Oid relid);	/* data_key.c */
extern void pfg_lexicon_relcache_invalidated(Oid relid);	/* lexicon.c */

/* roles or role memberships changed (pg_authid, pg_auth_members) */
extern void pfg_purpose_roles_invalidated(void);	/* purpose.c */
extern void pfg_bypass_roles_invalidated(void);	/* bypass.c */
extern void pfg_audit_roles_invalidated(void);	/* audit_log.c */

/* a schema changed (pg_namespace): its name may be another */
extern void pfg_audit_schemas_invalidated(void);	/* audit_log.c */

/* a function or a schema changed (pg_proc, pg_namespace) */
extern void pfg_gate_functions_invalidated(void);	/* gate.c */

#endif							/* PROFILE_GUARD_INVALIDATION_H */
