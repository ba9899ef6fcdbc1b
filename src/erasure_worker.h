/*-------------------------------------------------------------------------
 *
 * erasure_worker.h
 *	  The erasure worker's settings and registration (erasure_worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_ERASURE_WORKER_H
#define PROFILE_GUARD_ERASURE_WORKER_H

extern void pfg_erasure_define_settings(void);
extern void pfg_erasure_worker_register(void);

#endif							/* PROFILE_GUARD_ERASURE_WORKER_H */
