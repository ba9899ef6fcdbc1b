# profile_guard — PGXS build
MODULE_big = profile_guard
OBJS = \
	src/profile_guard.o \
	src/hooks.o \
	src/shmem.o \
	src/shared_area.o \
	src/settings.o \
	src/catalog.o \
	src/bypass.o \
	src/purpose.o \
	src/recipient_use.o \
	src/consent_cache.o \
	src/answers_load.o \
	src/answers_publish.o \
	src/policy_generation.o \
	src/shared_answers.o \
	src/rules.o \
	src/subject_rules.o \
	src/bulk_rules.o \
	src/rules_sql.o \
	src/gate.o \
	src/agg_gates.o \
	src/plan_walk.o \
	src/gate_exec.o \
	src/gated_scan.o \
	src/parallel_gates.o \
	src/transport.o \
	src/collect.o \
	src/collect_plan.o \
	src/collection_stamp.o \
	src/lexicon.o \
	src/crypto_primitives.o \
	src/master_key.o \
	src/key_wrap.o \
	src/data_key_cache.o \
	src/data_key.o \
	src/shared_data_keys.o \
	src/crypto_envelope.o \
	src/key_rotation.o \
	src/subject_hash.o \
	src/pseudonym.o \
	src/audit.o \
	src/audit_log.o \
	src/audit_binary.o \
	src/audit_file.o \
	src/audit_ring.o \
	src/audit_writer.o \
	src/usage.o \
	src/progress.o \
	src/redact.o \
	src/erasure.o \
	src/erasure_statements.o \
	src/erasure_worker.o \
	src/invalidation.o \
	src/owner_context.o \
	src/tree.o

EXTENSION = profile_guard
# The current version's script is assembled from sql/ext; the scripts of
# earlier versions are kept as they shipped, and the update scripts are
# written by hand (each holds what changed between its two versions).
EXT_SCRIPT = sql/profile_guard--1.2.sql
DATA_built = $(EXT_SCRIPT)
DATA = sql/profile_guard--1.0.sql sql/profile_guard--1.1.sql sql/profile_guard--1.0--1.1.sql \
	sql/profile_guard--1.1--1.2.sql
PGFILEDESC = "profile_guard - personal-profile policy enforcement"

# "make installcheck" runs the pg_regress suites and the isolation specs
# against a running server that preloads the library (README.md, "Testing
# an installation"); test/run_tests.sh starts such a server and runs them
# too.  The lists are read from the source directory, so that a VPATH build
# (pg_buildext, debian/rules) finds them.
REGRESS = $(patsubst $(srcdir)/sql/%.sql,%,$(sort $(wildcard $(srcdir)/sql/[0-9]*.sql)))
REGRESS_OPTS = --outputdir=test/results
ISOLATION = $(patsubst $(srcdir)/test/specs/%.spec,%,$(sort $(wildcard $(srcdir)/test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=$(srcdir)/test --outputdir=test/results/isolation

# Only the symbols the server looks up (_PG_init, the magic block, the SQL
# functions and the entry points of the two workers) are exported: the rest stay hidden.
PG_CPPFLAGS = -I$(srcdir)/src -Wall -Werror '-DPGDLLEXPORT=__attribute__((visibility("default")))'
PG_CFLAGS = -fvisibility=hidden
SHLIB_LINK = -lcrypto -lsodium
EXTRA_CLEAN = test/results

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild every object when a header changes
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# A VPATH build writes its objects and the assembled script under the build
# directory, in the source's sub-directories.
ifdef VPATH
$(shell mkdir -p src sql test/results)
endif

# The extension script is assembled from its parts, in name order.
$(EXT_SCRIPT): $(sort $(wildcard $(srcdir)/sql/ext/*.sql))
	cat $^ > $@

# "make prove-installcheck" runs the TAP tests (t/*.pl) with PGXS's
# prove_installcheck against the installed extension; each test starts its
# own nodes, so run it as a user initdb accepts (not root).  They are not
# part of "make installcheck" (no TAP_TESTS = 1): that is the Debian
# package's autopkgtest, which runs as root.  test/run_tests.sh (ONLY=tap)
# runs them too, as the postgres OS user when it runs as root.
PROVE_FLAGS = -I $(srcdir)/t/lib
EXTRA_CLEAN += tmp_check
.PHONY: prove-installcheck
prove-installcheck:
	$(prove_installcheck)
