/*-------------------------------------------------------------------------
 *
 * transport.h
 *	  Tag cells served only over a secure connection (transport.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_TRANSPORT_H
#define PROFILE_GUARD_TRANSPORT_H

#include "settings.h"

/* this backend's connection: 0 not decided yet, else one of these */
#define PFG_TRANSPORT_SECURE	1
#define PFG_TRANSPORT_PLAIN		2

extern int	pfg_transport_state;

extern int	pfg_transport_decide(void);
extern void pfg_transport_refuse(int tag_id, bool sensitive, Oid relid,
								 AttrNumber attnum, bool long_shape) pg_attribute_noreturn();

/*
 * A gate is about to serve a cell of tag 'tag_id' (the column: relid and
 * attnum when the gate knows them, else InvalidOid and 0; long_shape for
 * a tag row or its value): refuse it when the connection is plain TCP and
 * profile_guard.secure_transport covers the tag.
 */
static inline void
pfg_transport_require(int tag_id, bool sensitive, Oid relid,
					  AttrNumber attnum, bool long_shape)
{
	if (pfg_secure_transport == PFG_SECURE_TRANSPORT_OFF ||
		(!sensitive && pfg_secure_transport != PFG_SECURE_TRANSPORT_ALL))
		return;
	if (likely(pfg_transport_state == PFG_TRANSPORT_SECURE))
		return;
	if (pfg_transport_state == 0 && pfg_transport_decide() == PFG_TRANSPORT_SECURE)
		return;
	pfg_transport_refuse(tag_id, sensitive, relid, attnum, long_shape);
}

#endif							/* PROFILE_GUARD_TRANSPORT_H */
