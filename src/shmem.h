/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  profile_guard's shared memory, requested and set up in one place
 *	  (shmem.c), called from the shmem_request_hook and shmem_startup_hook
 *	  (hooks.c).
 *
 *	  What is in it, and the lock protocol:
 *
 *	  - the shared answers' control (shared_answers.c): its fields, under
 *	    the LWLock of tranche "profile_guard shared answers" (shared to
 *	    look, exclusive to change), but for the policy epoch, an atomic
 *	    counter read and advanced without it.  The published answers
 *	    themselves are in a DSA area, created on first use under that
 *	    lock; a set of answers is patched under a heavyweight lock of its
 *	    own (an advisory lock tag), taken without the control's lock held,
 *	    and read without any lock.
 *	  - the usage counters (usage.c): a hash table under the LWLock of
 *	    tranche "profile_guard" (exclusive to add or remove an entry,
 *	    shared to find one), each entry's counters under its own spinlock,
 *	    taken with the table's lock held.
 *	  - the counts of guarded relations per database (redact.c): one
 *	    spinlock, since they are read in error context.
 *	  - the progress slots (progress.c): one per backend, written by its
 *	    backend only and read without a lock, by a change count (as
 *	    PostgreSQL's backend status array).
 *	  - the shared data keys' control (shared_data_keys.c): its fields
 *	    under the LWLock of tranche "profile_guard shared data keys"
 *	    (shared to copy a set of keys out, exclusive to publish, retire or
 *	    free one), but for its two counters, atomics advanced under the
 *	    lock and read without it.  The keys are in a DSA area of their
 *	    own, created on first use under that lock.
 *
 *	  - the slots of parallel runs (parallel_gates.c): one per backend,
 *	    opened and closed by its backend as a leader and added to by its
 *	    workers, all under the LWLock of tranche "profile_guard parallel
 *	    gates" (shared to attach, exclusive to change).
 *
 *	  Our LWLocks and spinlocks are never held together, but an entry's
 *	  spinlock under its table's lock.  The control's lock may be taken
 *	  while a patch lock is held, never the other way round.  Set-up runs
 *	  under AddinShmemInitLock.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_SHMEM_H
#define PROFILE_GUARD_SHMEM_H

extern void pfg_shmem_request(void);
extern void pfg_shmem_startup(void);

#endif							/* PROFILE_GUARD_SHMEM_H */
