/*
 * restore.c: restores from snapshots (see restore.h).
 *
 * Restore into the live account, per batch of messages:
 *   1. read each selected message from the target and re-encrypt it under a
 *      new blob id into the store (sym wrap: the restorer holds the secret);
 *   2. make the batch durable with one syncfs(2) of the store;
 *   3. one write transaction: per message, skip it if its name already
 *      exists in the destination folder, else insert it (folder created,
 *      keywords interned); commit; then unlink the blobs of skipped ones.
 * A crash leaves at worst orphan blobs (verify --repair removes them).
 *
 * Disaster recovery writes a store from scratch: records verbatim from the
 * newest full states and the key ring, derived sub-databases recomputed,
 * blobs copied byte for byte (same ids), all made durable before the one
 * transaction per account that indexes them.
 */
#include "restore.h"

#include "repo.h"
#include "state.h"

#include "engine/account.h"
#include "engine/clock.h"
#include "engine/ctlfile.h"
#include "engine/envelope.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/io.h"
#include "engine/message.h"
#include "engine/names.h"
#include "maildir/export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH 256

/* ---- a parsed account state ---- */

struct view_folder {
	uint32_t fid;
	struct coffer_folder_rec rec;
	char *name;
	char *keywords[COFFER_FOLDER_KEYWORDS_MAX];
	int selected;
};

struct view {
	struct coffer_state state;
	struct view_folder *f;
	size_t nf;
};

static void view_free(struct view *v)
{
	for (size_t i = 0; i < v->nf; i++) {
		free(v->f[i].name);
		coffer_folder_keywords_free(v->f[i].keywords);
	}
	free(v->f);
	coffer_state_free(&v->state);
	memset(v, 0, sizeof *v);
}

static struct view_folder *view_folder(struct view *v, uint32_t fid)
{
	for (size_t i = 0; i < v->nf; i++)
		if (v->f[i].fid == fid)
			return &v->f[i];
	return NULL;
}

/* Decrypts folder names and keywords of a state. */
static int view_parse(struct view *v, const unsigned char *acct,
                      const struct coffer_acct_secret *secret)
{
	struct coffer_buf b = COFFER_BUF_INIT;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < v->state.n; i++) {
		const struct coffer_rec *r = &v->state.v[i];

		if (r->db == COFFER_DB_FOLDERS && r->klen == COFFER_KEY_FOLDER) {
			struct view_folder *nf = realloc(v->f, (v->nf + 1) * sizeof *nf);

			if (nf == NULL)
				return coffer_err_set(COFFER_ENOMEM, "restore: out of memory");
			v->f = nf;
			memset(&nf[v->nf], 0, sizeof *nf);
			nf[v->nf].fid = coffer_get_u32be(r->key + COFFER_ID_BYTES);
			rc = coffer_folder_rec_decode(r->val, r->vlen, &nf[v->nf].rec);
			coffer_buf_reset(&b);
			if (rc == 0)
				rc = coffer_folder_name_open(acct, nf[v->nf].fid,
				                             nf[v->nf].rec.name_box,
				                             nf[v->nf].rec.name_box_len, secret,
				                             &b);
			nf[v->nf].rec.name_box = NULL;
			if (rc == 0 && (nf[v->nf].name = strdup(coffer_buf_str(&b))) == NULL)
				rc = coffer_err_set(COFFER_ENOMEM, "restore: out of memory");
			v->nf++;
		} else if (r->db == COFFER_DB_KEYWORDS && r->klen == COFFER_KEY_KEYWORD) {
			uint32_t fid = coffer_get_u32be(r->key + COFFER_ID_BYTES);
			unsigned idx = r->key[COFFER_KEY_FOLDER];
			struct view_folder *f = view_folder(v, fid);

			if (f == NULL || idx >= COFFER_FOLDER_KEYWORDS_MAX)
				continue;
			coffer_buf_reset(&b);
			rc = coffer_folder_keyword_open(acct, fid, idx, r->val, r->vlen, secret,
			                                &b);
			if (rc == 0 && (f->keywords[idx] = strdup(coffer_buf_str(&b))) == NULL)
				rc = coffer_err_set(COFFER_ENOMEM, "restore: out of memory");
		}
	}
	coffer_buf_free(&b);
	return rc;
}

/* ---- choosing the snapshot and the account ---- */

struct chosen {
	struct coffer_repo *repo;
	struct coffer_manifest newest;
	int have_newest;
	char id[COFFER_SNAPID_MAX];
	unsigned char acct[COFFER_ID_BYTES];
	struct coffer_account_rec rec;
	struct coffer_acct_secret *secret;
	struct view view;
};

static void chosen_free(struct chosen *c)
{
	if (c->have_newest)
		coffer_manifest_free(&c->newest);
	coffer_acct_secret_free(&c->secret);
	view_free(&c->view);
	coffer_repo_close(&c->repo);
}

struct find_args {
	struct coffer_store *st;
	const char *canon;
	unsigned char *id;
	struct coffer_account_rec *rec;
};

static int find_txn(struct coffer_txn *t, void *arg)
{
	struct find_args *a = arg;
	int rc = coffer_account_lookup_txn(t, a->st, a->canon, a->id, a->rec);

	if (rc == 0 && a->rec->state == COFFER_ACCOUNT_SHREDDED)
		rc = coffer_account_check_active(a->rec, a->canon);
	return rc;
}

static int choose(struct coffer_store *st, const struct coffer_restore_opts *o, struct chosen *c)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct coffer_manifest at;
	struct find_args fa;
	char oldest[COFFER_CLOCK_ISO_MAX], when[COFFER_CLOCK_ISO_MAX];
	int64_t t;
	int rc;

	memset(c, 0, sizeof *c);
	rc = coffer_names_account(o->account, strlen(o->account), &canon);
	if (rc < 0)
		goto out;
	fa = (struct find_args){ st, coffer_buf_str(&canon), c->acct, &c->rec };
	rc = coffer_index_view(coffer_store_index(st), find_txn, &fa);
	if (rc == 0)
		rc = coffer_repo_open(st, o->target, 0, &c->repo);
	if (rc < 0)
		goto out;
	for (size_t i = c->repo->n_ids; i > 0; i--) {
		if (coffer_snapid_parse(c->repo->ids[i - 1], &t) == 0 && t <= o->as_of) {
			snprintf(c->id, sizeof c->id, "%s", c->repo->ids[i - 1]);
			break;
		}
	}
	coffer_clock_format(o->as_of, when);
	if (c->id[0] == '\0') {
		if (c->repo->n_ids == 0) {
			rc = coffer_err_set(COFFER_ENOTFOUND, "no snapshot is retained in %s",
			                    coffer_target_path(c->repo->target));
		} else {
			coffer_snapid_parse(c->repo->ids[0], &t);
			coffer_clock_format(t, oldest);
			rc = coffer_err_set(
			    COFFER_ENOTFOUND,
			    "%s is beyond retention: the oldest retained snapshot is of %s", when,
			    oldest);
		}
		goto out;
	}
	rc = coffer_repo_get_manifest(c->repo, c->id, &at);
	if (rc < 0)
		goto out;
	if (coffer_manifest_account(&at, c->acct) == NULL)
		rc = coffer_err_set(COFFER_ENOTFOUND,
		                    "account %s is not in snapshot %s (it did not "
		                    "exist yet)",
		                    coffer_buf_str(&canon), c->id);
	coffer_manifest_free(&at);
	if (rc == 0)
		rc = coffer_repo_get_manifest(c->repo, c->repo->ids[c->repo->n_ids - 1],
		                              &c->newest);
	if (rc == 0)
		c->have_newest = 1;
	if (rc == 0)
		rc = coffer_account_unlock(st, c->acct, &c->rec, &c->secret);
	if (rc == 0)
		rc = coffer_repo_account_state(c->repo, &c->newest, c->id, c->acct, c->secret,
		                               &c->view.state);
	if (rc == 0)
		rc = view_parse(&c->view, c->acct, c->secret);
	if (rc == 0 && o->folder) {
		struct coffer_buf fcanon = COFFER_BUF_INIT;
		int found = 0;

		rc = coffer_names_folder(o->folder, strlen(o->folder), &fcanon);
		for (size_t i = 0; rc == 0 && i < c->view.nf; i++)
			if (strcmp(c->view.f[i].name, coffer_buf_str(&fcanon)) == 0)
				c->view.f[i].selected = found = 1;
		if (rc == 0 && !found)
			rc = coffer_err_set(COFFER_ENOTFOUND, "folder %s is not in snapshot %s",
			                    coffer_buf_str(&fcanon), c->id);
		coffer_buf_free(&fcanon);
	} else {
		for (size_t i = 0; i < c->view.nf; i++)
			c->view.f[i].selected = 1;
	}
out:
	coffer_buf_free(&canon);
	return rc;
}

/* ---- reading a message from the target ---- */

struct src_msg {
	int fd;
	struct coffer_blob_reader *reader;
};

static int src_open(struct chosen *c, const unsigned char *blob_id, struct src_msg *s)
{
	struct coffer_blob_ids ids;
	char hex[2 * COFFER_ID_BYTES + 1], name[128];
	int rc;

	s->fd = -1;
	s->reader = NULL;
	coffer_hex(hex, blob_id, COFFER_ID_BYTES);
	coffer_repo_obj_name(name, sizeof name, c->acct, "b", hex);
	rc = coffer_target_open_read(c->repo->target, name, &s->fd);
	if (rc < 0)
		return rc;
	memcpy(ids.account_id, c->acct, COFFER_ID_BYTES);
	memcpy(ids.blob_id, blob_id, COFFER_ID_BYTES);
	ids.kind = COFFER_BLOB_MESSAGE;
	rc = coffer_blob_reader_open(s->fd, &ids, c->secret, &s->reader);
	if (rc < 0)
		coffer_err_prefix(rc, "snapshot object %s: ", name);
	return rc;
}

static void src_close(struct src_msg *s)
{
	coffer_blob_reader_free(&s->reader);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* ---- walk ---- */

int coffer_restore_msg_read(const struct coffer_restore_msg *m, void *buf, size_t cap, size_t *n_r)
{
	return coffer_blob_reader_read(m->reader, buf, cap, n_r);
}

static int check_uid_found(const struct coffer_restore_opts *o, const struct chosen *c, int found)
{
	if (o->uid && !found)
		return coffer_err_set(COFFER_ENOTFOUND, "uid %u is not in folder %s in snapshot %s",
		                      o->uid, o->folder ? o->folder : "INBOX", c->id);
	return 0;
}

int coffer_restore_walk(struct coffer_store *st, const struct coffer_restore_opts *o,
                        coffer_restore_fn fn, void *arg, struct coffer_restore_result *res)
{
	struct chosen c;
	struct coffer_buf unique = COFFER_BUF_INIT;
	int rc, found = 0;

	memset(res, 0, sizeof *res);
	rc = choose(st, o, &c);
	if (rc == 0) {
		snprintf(res->snapshot, sizeof res->snapshot, "%s", c.id);
		coffer_snapid_parse(c.id, &res->snapshot_time);
	}
	for (size_t fi = 0; rc == 0 && fi < c.view.nf; fi++) {
		struct view_folder *f = &c.view.f[fi];
		struct coffer_restore_msg m;

		if (!f->selected)
			continue;
		res->folders++;
		memset(&m, 0, sizeof m);
		m.folder = f->name;
		m.keywords = f->keywords;
		if (!o->uid)
			rc = fn(&m, arg); /* announce the folder */
		for (size_t i = 0; rc == 0 && i < c.view.state.n; i++) {
			const struct coffer_rec *r = &c.view.state.v[i];
			struct coffer_message_rec rec;
			struct src_msg src;

			if (r->db != COFFER_DB_MESSAGES || r->klen != COFFER_KEY_MESSAGE ||
			    coffer_get_u32be(r->key + COFFER_ID_BYTES) != f->fid)
				continue;
			m.uid = coffer_get_u32be(r->key + COFFER_ID_BYTES + 4);
			if (o->uid && m.uid != o->uid)
				continue;
			found = 1;
			rc = coffer_message_rec_decode(r->val, r->vlen, &rec);
			coffer_buf_reset(&unique);
			if (rc == 0)
				rc = coffer_message_unique_name(&rec, c.acct, c.secret, &unique);
			if (rc == 0)
				rc = src_open(&c, rec.blob_id, &src);
			if (rc == 0) {
				m.rec = &rec;
				m.unique = coffer_buf_str(&unique);
				m.reader = src.reader;
				rc = fn(&m, arg);
				res->restored++;
				res->bytes += rec.size;
			}
			src_close(&src);
		}
	}
	if (rc == 0)
		rc = check_uid_found(o, &c, found);
	coffer_buf_free(&unique);
	chosen_free(&c);
	return rc;
}

/* ---- as a Maildir or tar (export's writer, a snapshot as its source) ---- */

struct snap_src {
	struct chosen *c;
	const struct coffer_restore_opts *o;
	struct coffer_restore_result *res;
};

static int snap_folders(void *ctx, coffer_export_folder_fn fn, void *arg)
{
	struct snap_src *s = ctx;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < s->c->view.nf; i++) {
		struct view_folder *f = &s->c->view.f[i];
		struct coffer_export_folder ef = { f->fid, f->name, f->keywords };

		/* a Maildir always has INBOX; other folders only when selected */
		if (f->selected || coffer_names_is_inbox(f->name))
			rc = fn(&ef, arg);
		if (f->selected)
			s->res->folders++;
	}
	return rc;
}

static int snap_read(void *ctx, void *buf, size_t cap, size_t *n_r)
{
	return coffer_blob_reader_read(ctx, buf, cap, n_r);
}

static int snap_messages(void *ctx, const struct coffer_export_folder *ef, coffer_export_msg_fn fn,
                         void *arg, uint64_t *skipped)
{
	struct snap_src *s = ctx;
	struct view_folder *f = view_folder(&s->c->view, ef->id);
	struct coffer_buf unique = COFFER_BUF_INIT;
	int rc = 0;

	(void)skipped;
	if (f == NULL || !f->selected)
		return 0;
	for (size_t i = 0; rc == 0 && i < s->c->view.state.n; i++) {
		const struct coffer_rec *r = &s->c->view.state.v[i];
		struct coffer_message_rec rec;
		struct coffer_export_msg m;
		struct src_msg src;
		uint32_t uid;

		if (r->db != COFFER_DB_MESSAGES || r->klen != COFFER_KEY_MESSAGE ||
		    coffer_get_u32be(r->key + COFFER_ID_BYTES) != f->fid)
			continue;
		uid = coffer_get_u32be(r->key + COFFER_ID_BYTES + 4);
		if (s->o->uid && uid != s->o->uid)
			continue;
		rc = coffer_message_rec_decode(r->val, r->vlen, &rec);
		coffer_buf_reset(&unique);
		if (rc == 0)
			rc = coffer_message_unique_name(&rec, s->c->acct, s->c->secret, &unique);
		if (rc == 0)
			rc = src_open(s->c, rec.blob_id, &src);
		if (rc == 0) {
			m = (struct coffer_export_msg){ uid,          coffer_buf_str(&unique),
				                        rec.flags,    rec.is_new,
				                        rec.keywords, rec.internal_date,
				                        rec.size,     snap_read,
				                        src.reader };
			rc = fn(&m, arg);
			s->res->restored++;
			s->res->bytes += rec.size;
		}
		src_close(&src);
	}
	coffer_buf_free(&unique);
	return rc;
}

int coffer_restore_export(struct coffer_store *st, const struct coffer_restore_opts *o,
                          const char *dir, const char *tar, struct coffer_restore_result *res)
{
	struct chosen c;
	struct snap_src s = { &c, o, res };
	struct coffer_export_source src;
	struct coffer_export_stats stats;
	int rc;

	memset(res, 0, sizeof *res);
	rc = choose(st, o, &c);
	if (rc == 0) {
		snprintf(res->snapshot, sizeof res->snapshot, "%s", c.id);
		coffer_snapid_parse(c.id, &res->snapshot_time);
		src = (struct coffer_export_source){ o->account, snap_folders, snap_messages, &s };
		rc = dir ? coffer_export_dir_source(&src, dir, &stats)
		         : coffer_export_tar_source(&src, tar, &stats);
	}
	if (rc == 0 && o->uid && res->restored == 0)
		rc = check_uid_found(o, &c, 0);
	chosen_free(&c);
	return rc;
}

/* ---- into the live account ---- */

struct pending {
	unsigned char blob_id[COFFER_ID_BYTES];
	struct coffer_message_rec rec;
	char *folder; /* destination, canonical */
	char *unique;
	char *kw[COFFER_FOLDER_KEYWORDS_MAX]; /* borrowed from the view */
	uint64_t stored_size;
	int skipped;
};

struct batch {
	struct coffer_store *st;
	struct chosen *c;
	const char *name;
	struct pending v[BATCH];
	size_t n;
	struct coffer_restore_result *res;
};

static int live_blob_txn(struct coffer_txn *t, void *arg)
{
	unsigned char *key = arg;
	const void *v;
	size_t n;

	return coffer_txn_get(t, COFFER_DB_BLOBS, key, COFFER_KEY_BLOB, &v, &n);
}

static int commit_txn(struct coffer_txn *t, void *arg)
{
	struct batch *b = arg;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < b->n; i++) {
		struct pending *p = &b->v[i];
		struct coffer_message_new m;
		uint32_t fid, uid, kw = 0;

		p->skipped = 0;
		rc = coffer_folder_resolve_txn(t, b->st, b->c->acct, p->folder, 1, b->c->secret,
		                               p->rec.delivered_at, &fid, NULL);
		if (rc < 0)
			break;
		if (coffer_message_find_name_txn(t, b->st, b->c->acct, fid, p->unique,
		                                 strlen(p->unique), &uid) == 0) {
			p->skipped = 1;
			continue;
		}
		for (unsigned k = 0; rc == 0 && k < COFFER_FOLDER_KEYWORDS_MAX; k++) {
			unsigned idx;

			if (!(p->rec.keywords & (1u << k)) || p->kw[k] == NULL)
				continue;
			rc = coffer_folder_keyword_intern_txn(t, b->c->acct, fid, p->kw[k],
			                                      b->c->secret, &idx);
			kw |= 1u << idx;
		}
		memset(&m, 0, sizeof m);
		m.acct = b->c->acct;
		m.folder = p->folder;
		memcpy(m.blob_id, p->blob_id, COFFER_ID_BYTES);
		m.size = p->rec.size;
		m.stored_size = p->stored_size;
		m.internal_date = p->rec.internal_date;
		m.delivered_at = p->rec.delivered_at;
		m.flags = p->rec.flags;
		m.is_new = p->rec.is_new;
		m.keywords = kw;
		m.unique = p->unique;
		m.unique_len = strlen(p->unique);
		if (rc == 0)
			rc = coffer_message_add_txn(t, b->st, b->name, &m, b->c->secret, &fid,
			                            &uid);
	}
	return rc;
}

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->v[i].folder);
		free(b->v[i].unique);
	}
	b->n = 0;
}

static int flush_batch(struct batch *b)
{
	int fd, rc = 0;

	if (b->n == 0)
		return 0;
	fd = open(coffer_store_path(b->st), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 ? coffer_err_set(coffer_err_from_errno(errno),
	                             "restore: cannot open the store: %s", strerror(errno))
	            : coffer_io_syncfs(fd, coffer_store_path(b->st));
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = coffer_index_update(coffer_store_index(b->st), commit_txn, b);
	for (size_t i = 0; i < b->n; i++) {
		if (rc < 0 || b->v[i].skipped) {
			coffer_store_blob_discard(b->st, b->c->acct, b->v[i].blob_id);
			if (rc == 0)
				b->res->present++;
		} else {
			b->res->restored++;
			b->res->bytes += b->v[i].rec.size;
		}
	}
	batch_clear(b);
	return rc;
}

/* Re-encrypts the message from the target into a new blob in the store. */
static int copy_in(struct batch *b, const struct coffer_message_rec *rec, struct pending *p)
{
	struct src_msg src;
	struct coffer_blob_writer *w = NULL;
	struct coffer_blob_ids ids;
	struct coffer_buf path = COFFER_BUF_INIT;
	unsigned char *buf = NULL;
	uint64_t size = 0;
	size_t got;
	int fd = -1, rc;

	rc = src_open(b->c, rec->blob_id, &src);
	if (rc < 0)
		goto out;
	memcpy(ids.account_id, b->c->acct, COFFER_ID_BYTES);
	coffer_random(ids.blob_id, COFFER_ID_BYTES);
	ids.kind = COFFER_BLOB_MESSAGE;
	/* durable with the batch's syncfs */
	rc = coffer_store_blob_create(b->st, ids.account_id, ids.blob_id, 0, &fd, &path);
	if (rc < 0)
		goto out;
	buf = malloc(COFFER_BLOB_CHUNK);
	rc = buf ? coffer_blob_writer_new(fd, &ids, NULL, b->c->secret, 0, &w)
	         : coffer_err_set(COFFER_ENOMEM, "restore: out of memory");
	while (rc == 0) {
		rc = coffer_blob_reader_read(src.reader, buf, COFFER_BLOB_CHUNK, &got);
		if (rc < 0 || got == 0)
			break;
		rc = coffer_blob_writer_write(w, buf, got);
	}
	if (rc == 0)
		rc = coffer_blob_writer_finish(w, &size, &p->stored_size);
	if (rc == 0 && size != rec->size)
		rc = coffer_err_set(COFFER_ECORRUPT,
		                    "restore: a message's size differs from its record");
	if (rc == 0)
		memcpy(p->blob_id, ids.blob_id, COFFER_ID_BYTES);
	else if (fd >= 0)
		unlink(coffer_buf_str(&path));
out:
	coffer_blob_writer_free(&w);
	if (fd >= 0)
		close(fd);
	src_close(&src);
	free(buf);
	coffer_buf_free(&path);
	return rc;
}

int coffer_restore_into(struct coffer_store *st, const struct coffer_restore_opts *o,
                        struct coffer_restore_result *res)
{
	struct chosen c;
	struct batch *b = NULL;
	struct coffer_buf unique = COFFER_BUF_INIT, into = COFFER_BUF_INIT;
	char date[COFFER_CLOCK_ISO_MAX];
	int rc, found = 0;

	memset(res, 0, sizeof *res);
	rc = choose(st, o, &c);
	if (rc < 0)
		goto out;
	rc = coffer_account_check_active(&c.rec, o->account);
	if (rc < 0)
		goto out;
	rc = coffer_repo_lock(c.repo, st);
	if (rc < 0)
		goto out;
	snprintf(res->snapshot, sizeof res->snapshot, "%s", c.id);
	coffer_snapid_parse(c.id, &res->snapshot_time);
	coffer_clock_format_date(res->snapshot_time, date);
	if (o->into) {
		rc = coffer_names_folder(o->into, strlen(o->into), &into);
		if (rc < 0)
			goto out;
	} else {
		coffer_buf_printf(&into, "Restored/%s", date);
	}
	snprintf(res->into, sizeof res->into, "%s", coffer_buf_str(&into));
	b = calloc(1, sizeof *b);
	if (b == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "restore: out of memory");
		goto out;
	}
	b->st = st;
	b->c = &c;
	b->name = o->account;
	b->res = res;
	for (size_t fi = 0; rc == 0 && fi < c.view.nf; fi++) {
		struct view_folder *f = &c.view.f[fi];

		if (!f->selected)
			continue;
		res->folders++;
		for (size_t i = 0; rc == 0 && i < c.view.state.n; i++) {
			const struct coffer_rec *r = &c.view.state.v[i];
			struct coffer_message_rec rec;
			unsigned char key[COFFER_KEY_BLOB];
			struct pending *p;
			uint32_t uid;

			if (r->db != COFFER_DB_MESSAGES || r->klen != COFFER_KEY_MESSAGE ||
			    coffer_get_u32be(r->key + COFFER_ID_BYTES) != f->fid)
				continue;
			uid = coffer_get_u32be(r->key + COFFER_ID_BYTES + 4);
			if (o->uid && uid != o->uid)
				continue;
			found = 1;
			rc = coffer_message_rec_decode(r->val, r->vlen, &rec);
			if (rc < 0)
				break;
			coffer_key_blob(key, c.acct, rec.blob_id);
			if (coffer_index_view(coffer_store_index(st), live_blob_txn, key) == 0) {
				res->present++; /* still live: never duplicate */
				continue;
			}
			coffer_buf_reset(&unique);
			rc = coffer_message_unique_name(&rec, c.acct, c.secret, &unique);
			if (rc < 0)
				break;
			p = &b->v[b->n];
			memset(p, 0, sizeof *p);
			p->rec = rec;
			p->rec.name_box = NULL;
			p->unique = strdup(coffer_buf_str(&unique));
			rc = asprintf(&p->folder, "%s/%s", coffer_buf_str(&into), f->name);
			if (rc < 0 || p->unique == NULL) {
				p->folder = NULL;
				rc = coffer_err_set(COFFER_ENOMEM, "restore: out of memory");
				b->n++;
				break;
			}
			memcpy(p->kw, f->keywords, sizeof p->kw);
			b->n++;
			rc = copy_in(b, &rec, p);
			if (rc < 0) {
				b->n--;
				free(p->folder);
				free(p->unique);
				break;
			}
			if (b->n == BATCH)
				rc = flush_batch(b);
		}
	}
	if (rc == 0)
		rc = flush_batch(b);
	else if (b)
		flush_batch(b) /* commit what was copied; the error is the first one */;
	if (rc == 0)
		rc = check_uid_found(o, &c, found);
out:
	if (b)
		batch_clear(b);
	free(b);
	coffer_buf_free(&unique);
	coffer_buf_free(&into);
	chosen_free(&c);
	return rc;
}

/* ---- disaster recovery ---- */

struct rebuild {
	struct coffer_store *st;
	struct coffer_repo *repo;
	const unsigned char *acct;
	const struct coffer_acct_secret *secret;
	struct coffer_state *state;
	struct coffer_keyring *ring;
	int ring_done;
};

static int put_ring_txn(struct coffer_txn *t, void *arg)
{
	struct rebuild *r = arg;
	int rc = 0;

	for (uint32_t i = 0; rc == 0 && i < r->ring->n; i++) {
		const struct coffer_keyring_entry *e = &r->ring->v[i];

		rc = coffer_txn_put(t, COFFER_DB_ACCOUNTS, e->id, COFFER_ID_BYTES, e->record,
		                    e->record_len, 0);
		if (rc == 0)
			rc = coffer_txn_put(t, COFFER_DB_ACCOUNT_NAMES, e->name_mac,
			                    COFFER_MAC_BYTES, e->id, COFFER_ID_BYTES, 0);
	}
	return rc;
}

static int add_blob_ref(struct coffer_txn *t, const unsigned char *acct, const unsigned char *blob,
                        uint8_t kind, int64_t created, uint64_t stored)
{
	unsigned char key[COFFER_KEY_BLOB];
	struct coffer_blob_rec rec;
	struct coffer_buf val = COFFER_BUF_INIT;
	const void *v;
	size_t n;
	int rc;

	coffer_key_blob(key, acct, blob);
	if (coffer_txn_get(t, COFFER_DB_BLOBS, key, sizeof key, &v, &n) == 0 &&
	    coffer_blob_rec_decode(v, n, &rec) == 0) {
		rec.refs++;
	} else {
		memset(&rec, 0, sizeof rec);
		rec.refs = 1;
		rec.kind = kind;
		rec.created_at = created;
		rec.stored_size = stored;
	}
	rc = coffer_blob_rec_encode(&rec, &val);
	if (rc == 0)
		rc = coffer_txn_put(t, COFFER_DB_BLOBS, key, sizeof key, val.data, val.len, 0);
	coffer_buf_free(&val);
	return rc;
}

static int put_state_txn(struct coffer_txn *t, void *arg)
{
	struct rebuild *r = arg;
	struct coffer_buf name = COFFER_BUF_INIT;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < r->state->n; i++) {
		const struct coffer_rec *rec = &r->state->v[i];

		rc = coffer_txn_put(t, rec->db, rec->key, rec->klen, rec->val, rec->vlen, 0);
		if (rc < 0)
			break;
		coffer_buf_reset(&name);
		if (rec->db == COFFER_DB_FOLDERS && rec->klen == COFFER_KEY_FOLDER) {
			struct coffer_folder_rec f;
			unsigned char key[COFFER_KEY_FOLDER_NAME];
			uint32_t fid = coffer_get_u32be(rec->key + COFFER_ID_BYTES);

			rc = coffer_folder_rec_decode(rec->val, rec->vlen, &f);
			if (rc == 0)
				rc = coffer_folder_name_open(r->acct, fid, f.name_box,
				                             f.name_box_len, r->secret, &name);
			if (rc == 0)
				rc = coffer_folder_name_key(r->st, r->acct, coffer_buf_str(&name),
				                            key);
			if (rc == 0)
				rc = coffer_txn_put(t, COFFER_DB_FOLDER_NAMES, key, sizeof key,
				                    rec->key + COFFER_ID_BYTES, 4, 0);
		} else if (rec->db == COFFER_DB_MESSAGES && rec->klen == COFFER_KEY_MESSAGE) {
			struct coffer_message_rec m;
			unsigned char key[COFFER_KEY_MSG_NAME];
			uint32_t fid = coffer_get_u32be(rec->key + COFFER_ID_BYTES);
			uint64_t size = 0;
			char hex[2 * COFFER_ID_BYTES + 1], obj[128];

			rc = coffer_message_rec_decode(rec->val, rec->vlen, &m);
			if (rc == 0)
				rc = coffer_message_unique_name(&m, r->acct, r->secret, &name);
			if (rc == 0)
				rc = coffer_message_name_key(r->st, r->acct, fid,
				                             coffer_buf_str(&name), name.len, key);
			if (rc == 0)
				rc = coffer_txn_put(t, COFFER_DB_MSG_NAMES, key, sizeof key,
				                    rec->key + COFFER_ID_BYTES + 4, 4, 0);
			coffer_hex(hex, m.blob_id, COFFER_ID_BYTES);
			coffer_repo_obj_name(obj, sizeof obj, r->acct, "b", hex);
			if (rc == 0 && coffer_target_exists(r->repo->target, obj, &size) < 0)
				rc = COFFER_EIO;
			if (rc == 0)
				rc = add_blob_ref(t, r->acct, m.blob_id, COFFER_BLOB_MESSAGE,
				                  m.delivered_at, size);
		} else if (rec->db == COFFER_DB_CTLFILES) {
			struct coffer_ctlfile_rec c;
			uint64_t size = 0;
			char hex[2 * COFFER_ID_BYTES + 1], obj[128];

			rc = coffer_ctlfile_rec_decode(rec->val, rec->vlen, &c);
			if (rc < 0 || coffer_ctlfile_is_empty_blob(c.blob_id))
				continue;
			coffer_hex(hex, c.blob_id, COFFER_ID_BYTES);
			coffer_repo_obj_name(obj, sizeof obj, r->acct, "b", hex);
			if (coffer_target_exists(r->repo->target, obj, &size) < 0)
				rc = COFFER_EIO;
			if (rc == 0)
				rc = add_blob_ref(t, r->acct, c.blob_id, COFFER_BLOB_CONTROL,
				                  c.mtime, size);
		}
	}
	coffer_buf_free(&name);
	return rc;
}

/* Copies the blobs the state references from the target into the store. */
static int copy_blobs(struct rebuild *r)
{
	struct coffer_buf dir = COFFER_BUF_INIT, path = COFFER_BUF_INIT;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < r->state->n; i++) {
		const struct coffer_rec *rec = &r->state->v[i];
		struct coffer_message_rec m;
		struct coffer_ctlfile_rec c;
		char hex[2 * COFFER_ID_BYTES + 1], obj[128];
		int src, dst;

		if (rec->db == COFFER_DB_CTLFILES) {
			/* Dovecot's control files: same blob ids, so UIDs survive */
			rc = coffer_ctlfile_rec_decode(rec->val, rec->vlen, &c);
			if (rc < 0)
				break;
			if (coffer_ctlfile_is_empty_blob(c.blob_id))
				continue;
			memcpy(m.blob_id, c.blob_id, COFFER_ID_BYTES);
		} else if (rec->db != COFFER_DB_MESSAGES) {
			continue;
		} else {
			rc = coffer_message_rec_decode(rec->val, rec->vlen, &m);
			if (rc < 0)
				break;
		}
		coffer_hex(hex, m.blob_id, COFFER_ID_BYTES);
		coffer_repo_obj_name(obj, sizeof obj, r->acct, "b", hex);
		rc = coffer_target_open_read(r->repo->target, obj, &src);
		if (rc < 0)
			break;
		/* durable with the account's syncfs; a blob several records share
		 * (hard links) is copied once */
		rc = coffer_store_blob_create(r->st, r->acct, m.blob_id, 0, &dst, &path);
		if (rc == -EEXIST) {
			close(src);
			rc = 0;
			continue;
		}
		if (rc < 0) {
			close(src);
			break;
		}
		for (;;) {
			unsigned char buf[65536];
			size_t got;

			rc = coffer_io_read_full(src, buf, sizeof buf, &got);
			if (rc < 0 || got == 0)
				break;
			rc = coffer_io_write_all(dst, buf, got);
			if (rc < 0)
				break;
		}
		close(src);
		close(dst);
	}
	coffer_buf_free(&dir);
	coffer_buf_free(&path);
	return rc;
}

int coffer_restore_all(const char *store_path, const char *key_file, const char *from,
                       struct coffer_restore_result *res)
{
	struct coffer_repo *repo = NULL;
	struct coffer_store *st = NULL;
	struct coffer_manifest newest;
	struct coffer_keyring ring = { 0, NULL };
	struct rebuild r;
	int rc, have_newest = 0, fd;

	memset(res, 0, sizeof *res);
	memset(&r, 0, sizeof r);
	rc = coffer_repo_open_keyfile(from, key_file, &repo);
	if (rc == 0 && repo->n_ids == 0)
		rc = coffer_err_set(COFFER_ENOTFOUND, "no snapshot in %s", from);
	if (rc == 0)
		rc = coffer_repo_get_manifest(repo, repo->ids[repo->n_ids - 1], &newest);
	if (rc < 0)
		goto out;
	have_newest = 1;
	snprintf(res->snapshot, sizeof res->snapshot, "%s", newest.id);
	res->snapshot_time = newest.created_at;
	rc = coffer_repo_get_keyring(repo, &ring, NULL, 0);
	if (rc == 0) {
		/* the store's parent directories, as a fresh host may lack them */
		char *parent = strdup(store_path), *slash = parent ? strrchr(parent, '/') : NULL;

		if (parent == NULL)
			rc = coffer_err_set(COFFER_ENOMEM, "restore: out of memory");
		else if (slash && slash != parent) {
			*slash = '\0';
			rc = coffer_io_mkdir_p(parent, 0700);
		}
		free(parent);
	}
	if (rc == 0)
		rc = coffer_store_init_restore(store_path, key_file, newest.store_id,
		                               newest.index_key, &st);
	if (rc < 0)
		goto out;
	r.st = st;
	r.repo = repo;
	r.ring = &ring;
	/* the new store's snapshots continue in this target, incrementally: it
	 * holds every blob the store gets back */
	rc = coffer_repo_bind(repo, st, 0);
	if (rc == 0)
		rc = coffer_index_update(coffer_store_index(st), put_ring_txn, &r);
	for (uint32_t i = 0; rc == 0 && i < newest.n_accounts; i++) {
		const struct coffer_snap_account *a = &newest.accounts[i];
		const struct coffer_keyring_entry *e = coffer_keyring_find(&ring, a->id);
		struct coffer_account_rec arec;
		struct coffer_acct_secret *secret = NULL;
		struct coffer_state state;

		if (e == NULL || coffer_account_rec_decode(e->record, e->record_len, &arec) < 0 ||
		    arec.state == COFFER_ACCOUNT_SHREDDED)
			continue; /* shredded since: nothing of it can or may come back */
		rc = coffer_account_unlock(st, a->id, &arec, &secret);
		if (rc == 0)
			rc = coffer_repo_account_state(repo, &newest, newest.id, a->id, secret,
			                               &state);
		if (rc == 0) {
			r.acct = a->id;
			r.secret = secret;
			r.state = &state;
			rc = copy_blobs(&r);
			fd = open(store_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (rc == 0)
				rc = fd < 0 ? coffer_err_set(coffer_err_from_errno(errno),
				                             "restore: cannot open the store: %s",
				                             strerror(errno))
				            : coffer_io_syncfs(fd, store_path);
			if (fd >= 0)
				close(fd);
			if (rc == 0)
				rc = coffer_index_update(coffer_store_index(st), put_state_txn, &r);
			res->accounts++;
			res->restored += a->messages;
			res->bytes += a->bytes;
			coffer_state_free(&state);
		}
		coffer_acct_secret_free(&secret);
	}
out:
	if (have_newest)
		coffer_manifest_free(&newest);
	coffer_keyring_free(&ring);
	coffer_store_close(&st);
	coffer_repo_close(&repo);
	return rc;
}
