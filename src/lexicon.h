/*-------------------------------------------------------------------------
 *
 * lexicon.h
 *	  The prohibited lexicon as the write path matches it (lexicon.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_LEXICON_H
#define PROFILE_GUARD_LEXICON_H

/*
 * The topic of the first prohibited term the text contains, or NULL; the
 * topics exempted for the category of tag 'tag' are skipped.  The result
 * points into the lexicon's memory: use it before the next call.
 */
extern const char *pfg_lexicon_topic(const char *value, int len, const char *tag);

#endif							/* PROFILE_GUARD_LEXICON_H */
