/*-------------------------------------------------------------------------
 *
 * audit_writer.h
 *	  The audit writer's registration (audit_writer.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_AUDIT_WRITER_H
#define PROFILE_GUARD_AUDIT_WRITER_H

extern void pfg_audit_writer_register(void);

#endif							/* PROFILE_GUARD_AUDIT_WRITER_H */
