/*-------------------------------------------------------------------------
 *
 * bypass.c
 *	  Which roles read raw stored values, ungated: superusers and roles with
 *	  BYPASSRLS (rule 11 of docs/rules.md), as PostgreSQL's row-level
 *	  security lets them.  The answer for the current role is kept until
 *	  pg_authid changes (invalidation.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/acl.h"

#include "bypass.h"
#include "invalidation.h"

static Oid	BypassMemoUser = InvalidOid;
static bool BypassMemo = false;

bool
pfg_current_user_bypasses(void)
{
	Oid			user = GetUserId();

	if (user != BypassMemoUser)
	{
		BypassMemo = superuser_arg(user) || has_bypassrls_privilege(user);
		BypassMemoUser = user;
	}
	return BypassMemo;
}

void
pfg_bypass_roles_invalidated(void)
{
	BypassMemoUser = InvalidOid;
}
