/*-------------------------------------------------------------------------
 *
 * errcodes.h
 *	  The SQLSTATEs profile_guard raises, and how its refusals are marked.
 *
 *	  We reuse PostgreSQL's own codes so that clients and drivers classify
 *	  our errors without learning new ones.  A refusal -- a statement
 *	  stopped because policy forbids it, which the audit trail records as a
 *	  denial -- is raised through pg_refuse(): it notes the kind of refusal
 *	  and the tag concerned, and raises the error in its own message domain
 *	  (PG_REFUSAL_DOMAIN), so that the audit tells a refusal from any other
 *	  error by what it is, never by its file or its (translatable) words.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_ERRCODES_H
#define PROFILE_GUARD_ERRCODES_H

#include "utils/elog.h"

#define PGERR_NO_PURPOSE			ERRCODE_INSUFFICIENT_PRIVILEGE		/* 42501 */
#define PGERR_PURPOSE_NOT_ALLOWED	ERRCODE_INSUFFICIENT_PRIVILEGE		/* 42501 */
#define PGERR_COLLECTION_REFUSED	ERRCODE_INSUFFICIENT_PRIVILEGE		/* 42501 */
#define PGERR_UNKNOWN_PURPOSE		ERRCODE_UNDEFINED_OBJECT			/* 42704 */
#define PGERR_PURPOSE_UNUSABLE		ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE	/* 55000 */
#define PGERR_NOT_PRELOADED			ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE	/* 55000 */
#define PGERR_GATE_NOT_PLACED		ERRCODE_INSUFFICIENT_PRIVILEGE		/* 42501 */

/* the kinds of refusal, as the audit trail names them */
typedef enum PgRefusal
{
	PG_REFUSAL_NO_PURPOSE,		/* "no_purpose" */
	PG_REFUSAL_PURPOSE_NOT_ALLOWED, /* "purpose_not_allowed" */
	PG_REFUSAL_UNKNOWN_PURPOSE, /* "unknown_purpose" */
	PG_REFUSAL_PURPOSE_UNUSABLE,	/* "purpose_unusable" */
	PG_REFUSAL_COLLECTION		/* "collection_refused" */
} PgRefusal;

#define PG_REFUSAL_DOMAIN "profile_guard-refusal"

/* audit.c */
extern void pg_refusal_note(PgRefusal kind, const char *tag);
extern const char *pg_refusal_of(const ErrorData *e, char **tag);

/*
 * pg_refuse(kind, tag, errcode(...), errmsg(...), ...): raise a refusal.
 * tag may be NULL.
 */
#define pg_refuse(kind, tag, ...) \
	do { \
		pg_refusal_note((kind), (tag)); \
		ereport_domain(ERROR, PG_REFUSAL_DOMAIN, __VA_ARGS__); \
	} while (0)

#endif							/* PROFILE_GUARD_ERRCODES_H */
