/*
 * mount-seal.c: a tmp file's blob made ahead of the rename that delivers it.
 *
 * Why: a Maildir writer writes a tmp file, fsyncs it, and renames it into
 * new/ or cur/ later. Dovecot renames a transaction's tmp files only at its
 * commit, after writing every one of them (an import: all of them), so the
 * renames come in a burst. Each rename used to make the message's blob
 * (compress, encrypt, write a pool file) before its commit: 40 % of its
 * time (docs/benchmarks.md, "Blobs sealed ahead of the rename"). An fsync
 * of a tmp file now queues it here, and the sealer thread makes the blob
 * while the writer goes on; a rename that finds it made only commits.
 *
 * Invariants:
 *   - a blob seals one content. mfile.seal_gen moves with every write and
 *     truncate of the tmp file, and when a rename takes the file out of the
 *     table; the sealer attaches its blob only if the generation it copied
 *     is still current and the file is still in the table under the name it
 *     was queued by, as the same file (ino). Otherwise it removes the blob.
 *   - the sealer copies the content under the tree lock and seals the copy
 *     without it; the copy is wiped once sealed.
 *   - until a rename commits it, a sealed blob is a filled pool file that no
 *     index entry names: what a rename that dies between its blob and its
 *     commit leaves (engine/pool.h). `coffer verify` takes such a file for a
 *     write in progress for its grace period (10 minutes), then for an
 *     orphan; so a blob sealed more than SEAL_MAX_AGE_NS ago is never
 *     committed: the rename removes it and seals the content again.
 *   - a dropped seal (content changed, file freed, a rename into another
 *     account) removes its blob at once.
 *
 * Crash safety: nothing here is made durable. A daemon killed with sealed
 * blobs leaves filled pool files; verify removes them after its grace
 * period, as it does any orphan.
 *
 * Locks: the queue's own mutex, taken alone or inside the tree lock (the
 * fsync that queues holds the tree lock); the sealer never holds it while
 * it takes the tree lock.
 */
#define FUSE_USE_VERSION 35
#include "mount-private.h"

#include "engine/blob.h"
#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/crypto.h"
#include "engine/ctlfile.h"
#include "engine/errors.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SEAL_QUEUE_MAX 65536 /* files waiting; beyond, renames seal inline */
#define SEAL_MAX_AGE_NS (60 * (int64_t)COFFER_NS_PER_SEC)

struct seal_job {
	struct seal_job *next;
	struct macct *a; /* accounts live as long as the daemon */
	uint32_t fid;
	uint64_t ino;
	size_t name_n;
	char name[];
};

struct mnt_seal {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct seal_job *head, *tail;
	size_t queued;
	int stop;
	pthread_t th;
};

/* Under the tree lock: the job's file, if it is still the one queued. */
static struct mfile *job_file(struct mnt *m, const struct seal_job *j)
{
	struct mfile *f = mnt_file_find(m, MF_TMP, j->a, j->fid, j->name, j->name_n);

	return f && f->ino == j->ino ? f : NULL;
}

static int sealable(const struct mfile *f)
{
	return f->type == MF_TMP && f->loaded && !f->linked && !f->spilled && !f->sealed &&
	       f->data.len > 0;
}

static void seal_one(struct mnt *m, const struct seal_job *j, struct coffer_buf *copy)
{
	unsigned char blob_id[COFFER_ID_BYTES];
	uint64_t gen = 0, stored;
	struct mfile *f;
	int rc, attached = 0;

	pthread_rwlock_wrlock(&m->lock);
	f = job_file(m, j);
	if (f)
		f->seal_queued = 0;
	if (f && sealable(f)) {
		gen = f->seal_gen;
		coffer_buf_reset(copy);
		coffer_buf_append(copy, f->data.data, f->data.len);
	} else {
		f = NULL;
	}
	pthread_rwlock_unlock(&m->lock);
	if (f == NULL || copy->failed)
		return;
	rc = coffer_ctlfile_blob_write(m->st, j->a->id, COFFER_BLOB_MESSAGE, j->a->secret,
	                               copy->data, copy->len, blob_id, &stored);
	coffer_wipe(copy->data, copy->len);
	if (rc < 0) {
		coffer_err_clear(); /* the rename seals inline, and reports */
		return;
	}
	pthread_rwlock_wrlock(&m->lock);
	f = job_file(m, j);
	if (f && f->seal_gen == gen && sealable(f)) {
		f->sealed = 1;
		f->sealed_at = mnt_now();
		f->seal_stored = stored;
		memcpy(f->seal_blob, blob_id, COFFER_ID_BYTES);
		attached = 1;
	}
	pthread_rwlock_unlock(&m->lock);
	if (!attached)
		coffer_store_blob_discard(m->st, j->a->id, blob_id);
}

static void *sealer(void *arg)
{
	struct mnt *m = arg;
	struct mnt_seal *s = m->seal;
	struct coffer_buf copy = COFFER_BUF_INIT;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct seal_job *j;

		while (!s->stop && s->head == NULL)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stop)
			break;
		j = s->head;
		s->head = j->next;
		if (s->head == NULL)
			s->tail = NULL;
		s->queued--;
		pthread_mutex_unlock(&s->lock);
		seal_one(m, j, &copy);
		free(j);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	if (copy.data)
		coffer_wipe(copy.data, copy.cap);
	coffer_buf_free(&copy);
	return NULL;
}

int mnt_seal_start(struct mnt *m)
{
	struct mnt_seal *s = calloc(1, sizeof *s);

	if (s == NULL)
		return coffer_err_set(COFFER_ENOMEM, "mount: out of memory");
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	m->seal = s;
	if (pthread_create(&s->th, NULL, sealer, m) != 0) {
		m->seal = NULL;
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
		free(s);
		return coffer_err_set(COFFER_ENOMEM, "mount: cannot start the sealer thread");
	}
	return 0;
}

void mnt_seal_stop(struct mnt *m)
{
	struct mnt_seal *s = m->seal;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->th, NULL);
	m->seal = NULL;
	while (s->head) {
		struct seal_job *j = s->head;

		s->head = j->next;
		free(j);
	}
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

void mnt_seal_queue(struct mnt *m, struct mfile *f)
{
	struct mnt_seal *s = m->seal;
	struct seal_job *j;

	if (s == NULL || f->seal_queued || !sealable(f))
		return;
	j = malloc(sizeof *j + f->name_n);
	if (j == NULL)
		return; /* the rename seals inline */
	j->next = NULL;
	j->a = f->a;
	j->fid = f->fid;
	j->ino = f->ino;
	j->name_n = f->name_n;
	memcpy(j->name, f->name, f->name_n);
	pthread_mutex_lock(&s->lock);
	if (s->stop || s->queued >= SEAL_QUEUE_MAX) {
		pthread_mutex_unlock(&s->lock);
		free(j);
		return;
	}
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->queued++;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	f->seal_queued = 1;
}

void mnt_seal_drop(struct mnt *m, struct mfile *f)
{
	f->seal_gen++;
	if (!f->sealed)
		return;
	f->sealed = 0;
	coffer_store_blob_discard(m->st, f->a->id, f->seal_blob);
}

int mnt_seal_take(struct mnt *m, struct mfile *f, const struct macct *a,
                  unsigned char blob_id_r[COFFER_ID_BYTES], uint64_t *stored_r)
{
	f->seal_queued = 0; /* a job still queued finds f out of the table */
	if (!f->sealed || f->a != a || mnt_now() - f->sealed_at >= SEAL_MAX_AGE_NS) {
		mnt_seal_drop(m, f);
		return 0;
	}
	memcpy(blob_id_r, f->seal_blob, COFFER_ID_BYTES);
	*stored_r = f->seal_stored;
	f->sealed = 0;
	f->seal_gen++;
	return 1;
}
