/*
 * 25_gate.sql — the gate functions the planner hook writes into queries
 * that read guarded tables (src/gate_exec.c).  Every role executes them
 * (they run inside its queries), but they answer only where the planner
 * hook placed them: a call written by hand is refused (42501).  Not
 * leakproof on purpose: user quals wait for the row gate.  The wide
 * shape's gates are parallel safe: a worker decides as its leader does,
 * or the leader keeps the plan to itself (src/parallel_gates.c); the long
 * shape's gates and the whole-row mask are parallel restricted.
 */
CREATE FUNCTION _row_gate(subject "any", relid oid)
RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'profile_guard_row_gate';

-- wide shape, a read that names no tag: gated only under a declared purpose
CREATE FUNCTION _purpose_row_gate(subject "any", relid oid)
RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'profile_guard_purpose_row_gate';

CREATE FUNCTION _tag_row_gate(subject "any", tag text, relid oid)
RETURNS boolean
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_tag_row_gate';

CREATE FUNCTION _cell_gate(subject "any", tag_id integer, value anyelement)
RETURNS anyelement
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'profile_guard_cell_gate';

CREATE FUNCTION _row_mask(r anyelement, relid oid)
RETURNS anyelement
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_row_mask';

CREATE FUNCTION _sensitive_cell_gate(subject "any", tag_id integer, tag text, value anyelement)
RETURNS anyelement
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'profile_guard_sensitive_cell_gate';

CREATE FUNCTION _long_value_gate(subject "any", tag text, value anyelement)
RETURNS anyelement
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_long_value_gate';

-- the write path's trigger (src/collect.c), installed by protect()
CREATE FUNCTION _collect()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'profile_guard_collect';
