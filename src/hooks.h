/*-------------------------------------------------------------------------
 *
 * hooks.h
 *	  Installing every hook of profile_guard (hooks.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_HOOKS_H
#define PROFILE_GUARD_HOOKS_H

extern void pfg_install_hooks(void);

#endif							/* PROFILE_GUARD_HOOKS_H */
