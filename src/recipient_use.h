/*-------------------------------------------------------------------------
 *
 * recipient_use.h
 *	  The record of the cells provided to recipients, per person
 *	  (recipient_use.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_RECIPIENT_USE_H
#define PROFILE_GUARD_RECIPIENT_USE_H

#include "postgres.h"

/*
 * A gate serves a cell of 'subject' (of type 'typid') under purpose
 * 'purpose', which provides data to 'recipient': remember it for
 * profile_guard.recipient_use.  Refuses a read-only transaction.
 */
extern void pfg_recipient_use_note(const char *purpose, const char *recipient,
								   Datum subject, Oid typid);

#endif							/* PROFILE_GUARD_RECIPIENT_USE_H */
