/*-------------------------------------------------------------------------
 *
 * bypass.h
 *	  Which roles read raw stored values, ungated (bypass.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_BYPASS_H
#define PROFILE_GUARD_BYPASS_H

extern bool pfg_current_user_bypasses(void);

#endif							/* PROFILE_GUARD_BYPASS_H */
