/*-------------------------------------------------------------------------
 *
 * invalidation.h
 *	  The one relcache and one syscache callback of profile_guard
 *	  (invalidation.c), and the handlers of each file they call.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_INVALIDATION_H
#define PROFILE_GUARD_INVALIDATION_H

extern void profile_guard_invalidation_init(void);

/*
 * Relcache handlers: relid is the relation that changed, or InvalidOid
 * when every relation may have (flush all).  They run whenever a backend
 * processes invalidation messages, inside any catalog access: they only
 * mark or drop their file's state and never read the catalog.
 */
extern void guard_cache_relcache_invalidated(Oid relid);	/* catalog.c */
extern void policy_generation_relcache_invalidated(Oid relid);	/* policy_generation.c */
extern void audit_relcache_invalidated(Oid relid);	/* audit.c */
extern void redact_relcache_invalidated(Oid relid); /* redact.c */
extern void data_key_relcache_invalidated(Oid relid);	/* crypto.c */

/* roles or role memberships changed (pg_authid, pg_auth_members) */
extern void consent_cache_roles_invalidated(void);	/* consent_cache.c */

#endif							/* PROFILE_GUARD_INVALIDATION_H */
