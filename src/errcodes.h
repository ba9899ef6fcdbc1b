/*-------------------------------------------------------------------------
 *
 * errcodes.h
 *	  The SQLSTATEs profile_guard raises, and how its refusals are marked.
 *
 *	  We reuse PostgreSQL's own codes so that clients and drivers classify
 *	  our errors without learning new ones.  A refusal -- a statement
 *	  stopped because policy forbids it, which the audit trail records as a
 *	  denial -- is raised through pfg_refuse(): it notes the kind of refusal
 *	  and the tag concerned, and raises the error in its own message domain
 *	  (PFG_REFUSAL_DOMAIN), so that the audit tells a refusal from any other
 *	  error by what it is, never by its file or its (translatable) words.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_ERRCODES_H
#define PROFILE_GUARD_ERRCODES_H

#include "utils/elog.h"

#define PFG_ERRCODE_NO_PURPOSE			ERRCODE_INSUFFICIENT_PRIVILEGE		/* 42501 */
#define PFG_ERRCODE_PURPOSE_NOT_ALLOWED	ERRCODE_INSUFFICIENT_PRIVILEGE		/* 42501 */
#define PFG_ERRCODE_COLLECTION_REFUSED	ERRCODE_INSUFFICIENT_PRIVILEGE		/* 42501 */
#define PFG_ERRCODE_UNKNOWN_PURPOSE		ERRCODE_UNDEFINED_OBJECT			/* 42704 */
#define PFG_ERRCODE_PURPOSE_UNUSABLE		ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE	/* 55000 */
#define PFG_ERRCODE_NOT_PRELOADED			ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE	/* 55000 */
#define PFG_ERRCODE_GATE_NOT_PLACED		ERRCODE_INSUFFICIENT_PRIVILEGE		/* 42501 */
/* a tag cell over plain TCP (profile_guard.secure_transport): the connection is at fault */
#define PFG_ERRCODE_INSECURE_TRANSPORT	ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION	/* 28000 */
/* a tag value that matches the prohibited lexicon: the new row violates policy */
#define PFG_ERRCODE_PROHIBITED_VALUE		ERRCODE_WITH_CHECK_OPTION_VIOLATION	/* 44000 */

/* the kinds of refusal, as the audit trail names them */
typedef enum PfgRefusal
{
	PFG_REFUSAL_NO_PURPOSE,		/* "no_purpose" */
	PFG_REFUSAL_PURPOSE_NOT_ALLOWED, /* "purpose_not_allowed" */
	PFG_REFUSAL_UNKNOWN_PURPOSE, /* "unknown_purpose" */
	PFG_REFUSAL_PURPOSE_UNUSABLE,	/* "purpose_unusable" */
	PFG_REFUSAL_COLLECTION		/* "collection_refused" */
} PfgRefusal;

#define PFG_REFUSAL_DOMAIN "profile_guard-refusal"

/* audit_log.c */
extern void pfg_refusal_note(PfgRefusal kind, const char *tag);
extern const char *pfg_refusal_of(const ErrorData *e, char **tag);

/*
 * pfg_refuse(kind, tag, errcode(...), errmsg(...), ...): raise a refusal.
 * tag may be NULL.
 */
#define pfg_refuse(kind, tag, ...) \
	do { \
		pfg_refusal_note((kind), (tag)); \
		ereport_domain(ERROR, PFG_REFUSAL_DOMAIN, __VA_ARGS__); \
	} while (0)

#endif							/* PROFILE_GUARD_ERRCODES_H */
