/*-------------------------------------------------------------------------
 *
 * gate_eval.h
 *	  The decisions behind the wide shape's row gate and cell gate, shared
 *	  by the gate functions (gate_exec.c) and the gated scan
 *	  (gated_scan.c), which takes the same decisions without a function
 *	  call: whether a row is visible, whether a non-NULL cell is served,
 *	  and what is counted (audit counters, recipient record) and refused
 *	  (transport) on the way.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_GATE_EVAL_H
#define PROFILE_GUARD_GATE_EVAL_H

#include "audit.h"
#include "consent_cache.h"
#include "purpose.h"
#include "recipient_use.h"
#include "transport.h"

/*
 * A cell of 'subject' is served: under a purpose that provides data to a
 * recipient, it is recorded for the person (recipient_use.c).  The purpose
 * is the one the gate resolved last.
 */
static inline void
pfg_gate_note_served(Datum subject, Oid subject_typid)
{
	if (unlikely(pfg_purpose_last.recipient != NULL))
		pfg_recipient_use_note(pfg_purpose_last.name, pfg_purpose_last.recipient,
							   subject, subject_typid);
}

/*
 * The row gate under purpose 'ps' (not NULL): is the row of 'subject' in
 * table 'relid' visible?  Its answer goes to *answer (NULL for a NULL
 * subject), for the cell gates of the same row.  It may lie in 'ps''s
 * scratch space: good until the next look-up of any subject under 'ps',
 * so nothing that looks one up may run between the row gate and the cell
 * gates that use it.
 */
static inline bool
pfg_gate_row_visible_under(PurposeState *ps, Datum subject, bool subject_isnull,
						   Oid subject_typid, Oid relid,
						   const SubjectAnswer **answer)
{
	const SubjectAnswer *a = NULL;
	bool		visible = false;

	if (!subject_isnull)
	{
		a = pfg_subject_answer_memo(ps, subject, subject_typid);
		visible = a->row_visible;
	}
	pfg_audit_count_row(relid, visible);	/* audit */
	*answer = a;
	return visible;
}

/*
 * _row_gate(subject, relid): is the row of 'subject' in table 'relid'
 * visible under the statement's purpose?  Every row is, when no purpose
 * gates the statement (a bypassing role).
 */
static inline bool
pfg_gate_row_visible(Datum subject, bool subject_isnull, Oid subject_typid,
					 Oid relid)
{
	PurposeState *ps = pfg_purpose_for_statement(relid, NULL);
	const SubjectAnswer *a;

	if (ps == NULL)
		return true;
	return pfg_gate_row_visible_under(ps, subject, subject_isnull,
									  subject_typid, relid, &a);
}

/*
 * The cell gate of a non-NULL value of tag 'tag_id' whose subject has
 * answer 'a' (NULL for a NULL subject) under the statement's purpose: is
 * it served?  *audit_hint remembers where the tag's counters were.
 * Refuses the statement when the connection may not carry the cell.
 */
static inline bool
pfg_gate_cell_served_by(const SubjectAnswer *a, Datum subject,
						Oid subject_typid, int tag_id, int *audit_hint)
{
	if (a == NULL || !pfg_answer_tag_visible(a, tag_id))
	{
		pfg_audit_count_cell_at(audit_hint, tag_id, false);	/* audit */
		return false;
	}
	pfg_transport_require(tag_id, false, InvalidOid, 0, false);
	pfg_audit_count_cell_at(audit_hint, tag_id, true);	/* audit */
	pfg_gate_note_served(subject, subject_typid);
	return true;
}

/*
 * _cell_gate(subject, tag_id, value) for a non-NULL value: is it served
 * (else it reads as NULL)?
 */
static inline bool
pfg_gate_cell_served(Datum subject, bool subject_isnull, Oid subject_typid,
					 int tag_id, int *audit_hint)
{
	PurposeState *ps = pfg_purpose_for_statement(InvalidOid, NULL);

	if (ps == NULL)
		return true;
	return pfg_gate_cell_served_by(subject_isnull ? NULL :
								   pfg_subject_answer_memo(ps, subject, subject_typid),
								   subject, subject_typid, tag_id, audit_hint);
}

#endif							/* PROFILE_GUARD_GATE_EVAL_H */
