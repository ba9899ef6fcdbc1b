/*-------------------------------------------------------------------------
 *
 * tree.h
 *	  Guarded trees of partitions and inheritance children (tree.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_TREE_H
#define PROFILE_GUARD_TREE_H

#include "nodes/pg_list.h"

extern List *pfg_tree_before(Node *parsetree);
extern void pfg_tree_after(List *changes);

#endif							/* PROFILE_GUARD_TREE_H */
