# profile_guard — PGXS build
MODULE_big = profile_guard
OBJS = \
	src/profile_guard.o \
	src/catalog.o \
	src/consent_cache.o \
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
	src/invalidation.o

EXTENSION = profile_guard
EXT_SCRIPT = sql/profile_guard--1.1.sql
UPGRADE_1_0 = sql/profile_guard--1.0--1.1.sql
DATA_built = $(EXT_SCRIPT) $(UPGRADE_1_0)
DATA = sql/profile_guard--1.0.sql
PGFILEDESC = "profile_guard - personal-profile policy enforcement"

# pg_regress suites run against a server started by test/run_tests.sh, which
# preloads the library; "make installcheck" alone cannot do that.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/[0-9]*.sql)))
REGRESS_OPTS = --inputdir=. --outputdir=test/results
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=test/results/isolation

PG_CPPFLAGS = -Isrc -Wall -Werror
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

# The update from 1.0: parts changed since 1.0 re-create their functions and
# triggers with OR REPLACE; parts new in 1.1 are appended as they are.
CHANGED_SINCE_1_0 = sql/ext/20_policy.sql sql/ext/25_gate.sql sql/ext/40_purpose.sql sql/ext/50_guarded.sql \
	sql/ext/60_consent.sql
NEW_SINCE_1_0 = sql/ext/75_usage.sql sql/ext/80_erasure.sql sql/ext/85_accountability.sql
$(UPGRADE_1_0): Makefile sql/upgrade/1.0--1.1.sql $(CHANGED_SINCE_1_0) $(NEW_SINCE_1_0)
	( cat sql/upgrade/1.0--1.1.sql; \
	  sed -e 's/^CREATE FUNCTION/CREATE OR REPLACE FUNCTION/' \
	      -e 's/^CREATE TRIGGER/CREATE OR REPLACE TRIGGER/' $(CHANGED_SINCE_1_0); \
	  cat $(NEW_SINCE_1_0) ) > $@
