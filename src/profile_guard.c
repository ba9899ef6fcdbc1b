/*-------------------------------------------------------------------------
 *
 * profile_guard.c
 *	  Module entry point: _PG_init.  It defines the settings (settings.c and
 *	  each part's own), registers the erasure worker and the callbacks of
 *	  the parts that keep state across transactions, and installs the hooks
 *	  (hooks.c).  Nothing includes a header of this file: it depends on
 *	  every part, and no part on it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "settings.h"
#include "master_key.h"
#include "crypto_primitives.h"
#include "data_key_cache.h"
#include "audit.h"
#include "audit_ring.h"
#include "audit_writer.h"
#include "erasure.h"
#include "erasure_worker.h"
#include "collect.h"
#include "gated_scan.h"
#include "parallel_gates.h"
#include "hooks.h"
#include "invalidation.h"
#include "policy_generation.h"
#include "redact.h"
#include "shared_answers.h"
#include "shared_data_keys.h"
#include "usage.h"

PG_MODULE_MAGIC;

extern PGDLLEXPORT void _PG_init(void);

/* settings */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
	{
		/*
		 * Loaded by a backend (for instance by CREATE EXTENSION) without
		 * preloading: stay inert; every SQL function refuses with a hint.
		 */
		return;
	}

	pfg_settings_define();
	pfg_master_key_define_settings();
	pfg_crypto_define_settings();
	pfg_data_key_cache_define_settings();
	pfg_shared_answers_define_settings();
	pfg_shared_data_keys_define_settings();
	pfg_usage_define_settings();
	pfg_erasure_define_settings();
	pfg_audit_ring_define_settings();
	pfg_gated_scan_init();
	pfg_collect_plan_init();
	pfg_parallel_gates_define_settings();

	MarkGUCPrefixReserved("profile_guard");

	pfg_erasure_worker_register();
	pfg_audit_writer_register();

	/* transaction callbacks, run in the reverse order of registration */
	pfg_invalidation_init();
	pfg_policy_generation_init();
	pfg_shared_answers_init();
	pfg_shared_data_keys_init();
	pfg_audit_init();
	pfg_redact_init();

	pfg_install_hooks();

	pfg_loaded = true;
}
