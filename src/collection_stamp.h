/*-------------------------------------------------------------------------
 *
 * collection_stamp.h
 *	  When the write path collected a subject's tag in a guarded table
 *	  without a collected-at column (collection_stamp.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_COLLECTION_STAMP_H
#define PROFILE_GUARD_COLLECTION_STAMP_H

/*
 * Remember that the running transaction collects tag 'tag' of subject
 * 'subject' (as text) in guarded table 'root'; profile_guard.collection_stamp_log
 * gets it, stamped with the transaction's start, before the transaction
 * commits (the sweep merges it into profile_guard.collection_stamp).
 */
extern void pfg_stamp_collected(Oid root, const char *subject, const char *tag);

#endif							/* PROFILE_GUARD_COLLECTION_STAMP_H */
