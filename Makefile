# profile_guard — PGXS build
MODULE_big = profile_guard
OBJS = \
	src/profile_guard.o \
	src/catalog.o \
	src/purpose.o \
	src/consent_cache.o \
	src/answers_load.o \
	src/answers_publish.o \
	src/policy_generation.o \
	src/shared_answers.o \
	src/subject_rules.o \
	src/gate.o \
	src/gate_exec.o \
	src/collect.o \
	src/crypto.o \
	src/audit.o \
	src/redact.o \
	src/erasure.o \
	src/erasure_worker.o \
	src/invalidation.o \
	src/owner_context.o \
	src/tree.o

EXTENSION = profile_guard
# The current version's script and the update to it are assembled from
# sql/ext; earlier versions' scripts are kept as they shipped.
EXT_SCRIPT = sql/profile_guard--1.2.sql
UPDATE_SCRIPT = sql/profile_guard--1.1--1.2.sql
DATA_built = $(EXT_SCRIPT) $(UPDATE_SCRIPT)
DATA = sql/profile_guard--1.0.sql sql/profile_guard--1.1.sql sql/profile_guard--1.0--1.1.sql
PGFILEDESC = "profile_guard - personal-profile policy enforcement"

# pg_regress suites run against a server started by test/run_tests.sh, which
# preloads the library; "make installcheck" alone cannot do that.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/[0-9]*.sql)))
REGRESS_OPTS = --inputdir=. --outputdir=test/results
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=test/results/isolation

# Only the symbols the server looks up (_PG_init, the magic block, the SQL
# functions and the worker's entry point) are exported: the rest stay hidden.
PG_CPPFLAGS = -Isrc -Wall -Werror '-DPGDLLEXPORT=__attribute__((visibility("default")))'
PG_CFLAGS = -fvisibility=hidden
SHLIB_LINK = -lcrypto
EXTRA_CLEAN = test/results

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild every object when a header changes
$(OBJS): $(wildcard src/*.h)

# The extension script is assembled from its parts, in name order.
$(EXT_SCRIPT): $(sort $(wildcard sql/ext/*.sql))
	cat $^ > $@

# The update from 1.1: the hand-written changes to tables and the functions
# that were dropped or changed signature (sql/upgrade/1.1--1.2.sql), then
# every function, its privileges and every catalog trigger of sql/ext
# re-created with OR REPLACE, so an updated database runs exactly the code
# of a fresh install; last, what needs those functions
# (sql/upgrade/1.1--1.2-after.sql).  test/scenario/upgrade.sh compares the two.
$(UPDATE_SCRIPT): Makefile sql/upgrade/1.1--1.2.sql sql/upgrade/functions_only.awk $(sort $(wildcard sql/ext/*.sql)) sql/upgrade/1.1--1.2-after.sql
	( cat sql/upgrade/1.1--1.2.sql; \
	  awk -f sql/upgrade/functions_only.awk $(sort $(wildcard sql/ext/*.sql)); \
	  cat sql/upgrade/1.1--1.2-after.sql ) > $@
