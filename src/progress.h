/*-------------------------------------------------------------------------
 *
 * progress.h
 *	  The progress of long work, per backend (progress.c), shown by the
 *	  view profile_guard.progress.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_PROGRESS_H
#define PROFILE_GUARD_PROGRESS_H

typedef enum PfgProgressCommand
{
	PFG_PROGRESS_ENCRYPT,		/* classify: stored values encrypted, blocks */
	PFG_PROGRESS_DECRYPT,		/* declassify, unprotect: decrypted, blocks */
	PFG_PROGRESS_REENCRYPT,		/* reencrypt: older formats rewritten, blocks */
	PFG_PROGRESS_ROTATE_MASTER_KEY, /* data keys re-wrapped */
	PFG_PROGRESS_SWEEP,			/* rows erased */
	PFG_PROGRESS_CONSENT_BUILD,	/* subjects answered */
	PFG_PROGRESS_CREATE_KEYS	/* data keys made in bulk */
} PfgProgressCommand;

extern Size pfg_progress_shmem_size(void);
extern void pfg_progress_shmem_startup(void);

/*
 * A caller updates and ends only a command it started (start returned
 * true): one nested in another's is not reported.
 */
extern bool pfg_progress_start(PfgProgressCommand command, Oid relid,
							   const char *phase, int64 total,
							   bool across_transactions);
extern void pfg_progress_phase(const char *phase, Oid relid, int64 total);
extern void pfg_progress_done(int64 done);
extern void pfg_progress_end(void);

#endif							/* PROFILE_GUARD_PROGRESS_H */
