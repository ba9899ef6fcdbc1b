/*-------------------------------------------------------------------------
 *
 * spi_checked.h
 *	  SPI, checked the same way everywhere.  Connecting and finishing go
 *	  through these two; a statement's result is compared with the one
 *	  expected (SPI_OK_SELECT, SPI_OK_INSERT, ...), and anything else is an
 *	  internal error:
 *
 *		elog(ERROR, "could not <do what>: %s", SPI_result_code_string(rc));
 *
 *	  Such an error is a bug or a damaged catalog, never the user's input,
 *	  which is checked before and refused with its own SQLSTATE.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_SPI_CHECKED_H
#define PROFILE_GUARD_SPI_CHECKED_H

#include "executor/spi.h"

static inline void
pfg_spi_connect(void)
{
	int			rc = SPI_connect();

	if (rc != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
}

static inline void
pfg_spi_finish(void)
{
	int			rc = SPI_finish();

	if (rc != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
}

#endif							/* PROFILE_GUARD_SPI_CHECKED_H */
