/*
 * snapverify.h: checking a snapshot target (`coffer snapshot verify`).
 *
 * Structure, always: every manifest opens and names itself; the key ring
 * opens; for every account of the newest manifest that is not shredded, its
 * full state and every retained reverse delta open and decode, and every
 * blob that any retained snapshot's state references exists. With a
 * read_data share (0..100), that share of the blobs (chosen by blob id, so
 * repeated runs with the same share check the same blobs) is also decrypted
 * to the end and its size compared with the record.
 *
 * Every problem is reported through the callback; the check never stops at
 * the first one. Needs only the target and the key file.
 */
#ifndef COFFER_SNAPVERIFY_H
#define COFFER_SNAPVERIFY_H

#include "repo.h"

struct coffer_snapverify_problem {
	const char *snapshot; /* id, or "" for target-wide problems */
	const char *account;  /* name when known, else the id in hex, or "" */
	const char *object;   /* object name, or "" */
	const char *problem;
};

struct coffer_snapverify_stats {
	uint64_t snapshots;
	uint64_t accounts;
	uint64_t objects;
	uint64_t blobs;
	uint64_t blobs_read;
	uint64_t problems;
};

typedef void (*coffer_snapverify_fn)(const struct coffer_snapverify_problem *p, void *arg);

int coffer_snapshot_verify(struct coffer_repo *repo, int read_data_percent, coffer_snapverify_fn fn,
                           void *arg, struct coffer_snapverify_stats *stats);

#endif
