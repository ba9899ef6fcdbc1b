/*-------------------------------------------------------------------------
 *
 * erasure_statements.h
 *	  The tables a sweep walks and the statements it runs on each
 *	  (erasure_statements.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_ERASURE_STATEMENTS_H
#define PROFILE_GUARD_ERASURE_STATEMENTS_H

struct Sweep;

/* fills sweep->ntables and sweep->tables (in SPI) */
extern void pfg_sweep_prepare_tables(struct Sweep *sweep);
/* the same, for erasing one subject's tag now (in SPI) */
extern void pfg_erase_tag_prepare_tables(struct Sweep *sweep, const char *tag);
/* locks the table for a batch; false, with a warning, if it cannot be swept */
extern bool pfg_sweep_table_usable(Oid relid, const char *relation, const char *subject,
								   const char *collected, const char *tag);

#endif							/* PROFILE_GUARD_ERASURE_STATEMENTS_H */
