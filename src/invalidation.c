/*-------------------------------------------------------------------------
 *
 * invalidation.c
 *	  Owns profile_guard's only relcache callback and only syscache
 *	  callback function.  A backend has room for ten relcache callbacks in
 *	  all (MAX_RELCACHE_CALLBACKS), shared with every other preloaded
 *	  library, so the backend-local caches of every file are kept fresh
 *	  from here: each callback calls the handler of each file, always in
 *	  this order (no handler depends on another's state):
 *
 *	  relcache:
 *	    1. catalog.c        the guarded-relation map and tags
 *	    2. policy_generation.c  the signals that policy or subjects changed,
 *	                        which the consent answers follow
 *	    3. audit_log.c      the memos of purpose versions and relation
 *	                        names
 *	    4. redact.c         the names of guarded relations
 *	    5. data_key.c       the cached data keys (data_key_cache.c)
 *	    6. lexicon.c        the prohibited terms (their table dropped)
 *	  syscache (pg_authid and pg_auth_members: roles and memberships):
 *	    1. bypass.c, purpose.c  the bypass memo and the purposes'
 *	                        validation
 *	    2. audit_log.c      the memo of role names
 *	  syscache (pg_namespace: schemas):
 *	    1. audit_log.c      the memo of relation names
 *	    2. gate.c           the memo of the gate functions
 *	  syscache (pg_proc: functions):
 *	    1. gate.c           the memo of the gate functions
 *
 *	  Registered once per backend, from _PG_init.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/inval.h"
#include "utils/syscache.h"

#include "invalidation.h"

static void
profile_guard_relcache_callback(Datum arg, Oid relid)
{
	pfg_guard_cache_relcache_invalidated(relid);
	pfg_policy_generation_relcache_invalidated(relid);
	pfg_audit_relcache_invalidated(relid);
	pfg_redact_relcache_invalidated(relid);
	pfg_data_key_relcache_invalidated(relid);
	pfg_lexicon_relcache_invalidated(relid);
}

static void
profile_guard_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	if (cacheid == NAMESPACEOID)
	{
		pfg_audit_schemas_invalidated();
		pfg_gate_functions_invalidated();
		return;
	}
	if (cacheid == PROCOID)
	{
		pfg_gate_functions_invalidated();
		return;
	}
	/* any role may be concerned: every hash value flushes all */
	pfg_bypass_roles_invalidated();
	pfg_purpose_roles_invalidated();
	pfg_audit_roles_invalidated();
}

void
pfg_invalidation_init(void)
{
	CacheRegisterRelcacheCallback(profile_guard_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, profile_guard_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, profile_guard_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, profile_guard_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, profile_guard_syscache_callback, (Datum) 0);
}
