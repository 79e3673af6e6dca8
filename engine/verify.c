/*
 * verify.c: checking a store and the safe repairs (see verify.h); the run,
 * the index pass and the blob pass. The tree pass (the files under
 * STORE/blobs, orphans and strays, and their repair) is in verify-tree.c;
 * what both share is in verify-private.h.
 *
 * Map of this file:
 *   1. reporting: one problem at a time to the caller's callback;
 *   2. the index pass (one read transaction per account): account record and
 *      key, folders, folder_names, keywords, messages, msg_names, control
 *      files (the mount's, engine/ctlfile.h), trash, and the blobs records
 *      merged with the blob ids that messages and control files name;
 *   3. the blob pass: message records in batches, each batch's transaction
 *      closed before its blobs are decrypted to the end; then the control
 *      files' blobs (kind COFFER_BLOB_CONTROL), collected in the index pass;
 *   4. the run: accounts one by one (index pass, blob pass, then the tree
 *      pass of verify-tree.c, then the trash collected on repair), then the
 *      top of the blob tree.
 *
 * Boxes (account name, folder names, keywords) are opened one at a time
 * through account.h and folder.h, so a damaged one is reported alone
 * instead of failing the whole listing.
 *
 * References: a blob's record counts the messages and the control files
 * naming it. Both are merged with the blobs records (sorted by blob id), so
 * a control-file blob is neither an orphan nor a refcount mismatch, and a
 * message pointing at a control-file blob (or the reverse) is damage.
 *
 * Why a blob that fails is "truncated" rather than "fails authentication":
 * when the file is shorter than the stored size its blobs record gave at
 * write time. The envelope's own detail is not parsed.
 */
#include "verify.h"
#include "verify-private.h"

#include "account.h"
#include "blob.h"
#include "buf.h"
#include "clock.h"
#include "ctlfile.h"
#include "envelope.h"
#include "errors.h"
#include "folder.h"
#include "keyfile.h"
#include "message.h"
#include "names.h"
#include "record.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_BUF (256u * 1024u)

struct vfolder {
	uint32_t id;
	uint32_t uidnext;
	int rec_ok;        /* record decoded: uidnext is known */
	int name_ok;       /* name box opened */
	uint32_t kwmask;   /* keywords defined */
	uint64_t messages; /* message records */
	uint64_t names;    /* msg_names entries pointing at existing messages */
	char *name;        /* decrypted, or "#<id>" */
};

/* A control file's blob (sorted by blob id, then folder). */
struct vctl {
	unsigned char blob[ID];
	unsigned char key[COFFER_KEY_CTLFILE]; /* its ctlfiles key, to look again */
	uint32_t fid;
	uint64_t size;
	uint64_t stored_size; /* from its blobs record, 0 if unknown */
	int has_brec;
};

/* A blobs record that no message points at (checked for its file later). */
struct vunref {
	unsigned char blob[ID];
	uint32_t refs;
};

/* ---- 1. Reporting ---- */

int verify_vreport(struct verify *v, const char *account, const char *folder, uint32_t uid,
                   const char *blob, int pending, const char *repair, const char *fmt, va_list ap)
{
	struct coffer_verify_problem p;
	char *text;
	int rc = 0;

	if (vasprintf(&text, fmt, ap) < 0)
		return coffer_err_set(COFFER_ENOMEM, "verify: out of memory");
	p = (struct coffer_verify_problem){ account, folder, uid, blob, text, pending, repair };
	if (pending)
		v->s->pending++;
	else if (repair)
		v->s->repaired++;
	else
		v->s->problems++;
	if (v->o->problem)
		rc = v->o->problem(&p, v->o->problem_arg);
	free(text);
	return rc < 0 ? rc : 0;
}

static int report(struct verify *v, const struct vacct *a, const char *folder, uint32_t uid,
                  const unsigned char *blob_id, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Damage about account a (folder, uid and blob when they apply). */
static int report(struct verify *v, const struct vacct *a, const char *folder, uint32_t uid,
                  const unsigned char *blob_id, const char *fmt, ...)
{
	char hex[HEX_ID + 1];
	va_list ap;
	int rc;

	if (blob_id)
		coffer_hex(hex, blob_id, ID);
	va_start(ap, fmt);
	rc = verify_vreport(v, a ? a->name : NULL, folder, uid, blob_id ? hex : NULL, 0, NULL, fmt,
	                    ap);
	va_end(ap);
	return rc;
}

/* ---- helpers ---- */

int verify_grow(void *pp, size_t *cap, size_t n, size_t size)
{
	if (coffer_array_grow(pp, cap, n, size, 64) < 0)
		return coffer_err_set(COFFER_ENOMEM, "verify: out of memory");
	return 0;
}

static struct vfolder *find_folder(const struct vacct *a, uint32_t fid)
{
	size_t lo = 0, hi = a->nfolders;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->folders[mid].id == fid)
			return &a->folders[mid];
		if (a->folders[mid].id < fid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The folder's name for reports; tmp holds "#<id>" for unknown folders. */
static const char *folder_label(const struct vacct *a, uint32_t fid, char tmp[16])
{
	const struct vfolder *f = find_folder(a, fid);

	if (f)
		return f->name;
	snprintf(tmp, 16, "#%u", fid);
	return tmp;
}

static int cmp_ref(const void *pa, const void *pb)
{
	const struct vref *x = pa, *y = pb;
	int c = memcmp(x->blob, y->blob, ID);

	if (c)
		return c;
	if (x->fid != y->fid)
		return x->fid < y->fid ? -1 : 1;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int cmp_ctl(const void *pa, const void *pb)
{
	const struct vctl *x = pa, *y = pb;
	int c = memcmp(x->blob, y->blob, ID);

	if (c)
		return c;
	return x->fid < y->fid ? -1 : x->fid > y->fid;
}

int verify_in_sorted(const unsigned char (*v)[ID], size_t n, const unsigned char *id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(v[mid], id, ID);

		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static void vacct_free(struct vacct *a)
{
	for (size_t i = 0; i < a->nfolders; i++)
		free(a->folders[i].name);
	free(a->folders);
	free(a->refs);
	free(a->ctls);
	free(a->trash);
	free(a->unref);
	free(a->name);
	coffer_acct_secret_free(&a->secret);
	memset(a, 0, sizeof *a);
}

/* ---- 2. The index pass ---- */

struct pass1 {
	struct verify *v;
	struct vacct *a;
	struct coffer_txn *t;
};

/* The account record, its key and its name. */
static int check_account(struct pass1 *c)
{
	struct vacct *a = c->a;
	struct coffer_account_rec rec;
	struct coffer_keyfile *kf;
	struct coffer_buf name = COFFER_BUF_INIT;
	unsigned char *sk = NULL;
	const void *val;
	size_t vl;
	int rc;

	rc = coffer_txn_get(c->t, COFFER_DB_ACCOUNTS, a->id, ID, &val, &vl);
	if (rc == COFFER_ENOTFOUND)
		return report(c->v, a, NULL, 0, NULL, "account record is missing");
	if (rc < 0)
		return rc;
	if (coffer_account_rec_decode(val, vl, &rec) < 0)
		return report(c->v, a, NULL, 0, NULL, "account record is damaged");
	a->rec_ok = 1;
	if (rec.state == COFFER_ACCOUNT_SHREDDED)
		return 0; /* a tombstone: no key, no name */
	rc = coffer_store_keyfile(c->v->st, &kf);
	if (rc < 0)
		return rc;
	sk = coffer_secure_alloc(COFFER_SK_BYTES);
	if (sk == NULL)
		return coffer_err_set(COFFER_ENOMEM, "verify: cannot allocate secure memory");
	rc = coffer_keyfile_unwrap(kf, a->id, rec.key_epoch, rec.wrapped_sk, sk);
	if (rc == COFFER_EPERM) { /* its epoch is not in the key file */
		rc = report(c->v, a, NULL, 0, NULL,
		            "account key does not unwrap with the key file (%s); its messages "
		            "cannot be decrypted",
		            coffer_errmsg());
		goto out;
	}
	if (rc == COFFER_ECORRUPT) {
		rc = report(c->v, a, NULL, 0, NULL,
		            "account key does not unwrap with the key file (damaged); its messages "
		            "cannot be decrypted");
		goto out;
	}
	if (rc == 0)
		rc = coffer_acct_secret_new(rec.pk, sk, &a->secret);
	if (rc < 0)
		goto out;
	if (coffer_account_name_open(a->id, &rec, a->secret, &name) < 0) {
		rc = report(c->v, a, NULL, 0, NULL, "account name cannot be decrypted");
		goto out;
	}
	rc = coffer_buf_ok(&name);
	if (rc == 0) {
		free(a->name);
		a->name = strdup(coffer_buf_str(&name));
		if (a->name == NULL)
			rc = coffer_err_set(COFFER_ENOMEM, "verify: out of memory");
	}
out:
	coffer_secure_free(sk);
	coffer_buf_free(&name);
	return rc;
}

static int p1_folder(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct pass1 *c = arg;
	struct vacct *a = c->a;
	struct coffer_folder_rec rec;
	struct coffer_buf name = COFFER_BUF_INIT;
	struct vfolder *f;
	int rc;

	if (kl != COFFER_KEY_FOLDER)
		return report(c->v, a, NULL, 0, NULL, "a folder record has a damaged key");
	rc = verify_grow(&a->folders, &a->capfolders, a->nfolders, sizeof *a->folders);
	if (rc < 0)
		return rc;
	f = &a->folders[a->nfolders++];
	memset(f, 0, sizeof *f);
	f->id = coffer_get_u32be((const unsigned char *)k + ID);
	if (asprintf(&f->name, "#%u", f->id) < 0) {
		f->name = NULL;
		return coffer_err_set(COFFER_ENOMEM, "verify: out of memory");
	}
	if (coffer_folder_rec_decode(val, vl, &rec) < 0)
		return report(c->v, a, f->name, 0, NULL, "folder record is damaged");
	f->rec_ok = 1;
	f->uidnext = rec.uidnext;
	if (a->secret == NULL)
		return 0;
	if (coffer_folder_name_open(a->id, f->id, rec.name_box, rec.name_box_len, a->secret,
	                            &name) < 0 ||
	    coffer_buf_ok(&name) < 0 || name.len == 0) {
		coffer_buf_free(&name);
		return report(c->v, a, f->name, 0, NULL, "folder name cannot be decrypted");
	}
	free(f->name);
	f->name = (char *)name.data;
	f->name_ok = 1;
	return 0;
}

/* Every folder whose name opened has its folder_names entry. */
static int check_folder_names(struct pass1 *c)
{
	struct vacct *a = c->a;
	unsigned char key[COFFER_KEY_FOLDER_NAME];
	const void *val;
	size_t vl;
	int rc;

	for (size_t i = 0; i < a->nfolders; i++) {
		struct vfolder *f = &a->folders[i];

		if (!f->name_ok)
			continue;
		rc = coffer_folder_name_key(c->v->st, a->id, f->name, key);
		if (rc == 0)
			rc = coffer_txn_get(c->t, COFFER_DB_FOLDER_NAMES, key, sizeof key, &val,
			                    &vl);
		if (rc == COFFER_ENOTFOUND)
			rc = report(c->v, a, f->name, 0, NULL, "folder has no name index entry");
		else if (rc == 0 && (vl != 4 || coffer_get_u32be(val) != f->id))
			rc = report(c->v, a, f->name, 0, NULL,
			            "folder name index entry points at another folder");
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int p1_folder_name(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct pass1 *c = arg;
	uint32_t fid;

	if (kl != COFFER_KEY_FOLDER_NAME || vl != 4)
		return report(c->v, c->a, NULL, 0, NULL, "a folder name index entry is damaged");
	fid = coffer_get_u32be(val);
	if (find_folder(c->a, fid) == NULL)
		return report(
		    c->v, c->a, NULL, 0, NULL,
		    "a folder name index entry points at folder id %u, which does not exist", fid);
	return 0;
}

static int p1_keyword(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct pass1 *c = arg;
	struct vacct *a = c->a;
	struct coffer_buf name = COFFER_BUF_INIT;
	struct vfolder *f;
	uint32_t fid;
	unsigned idx;
	char tmp[16];
	int rc;

	if (kl != COFFER_KEY_KEYWORD)
		return report(c->v, a, NULL, 0, NULL, "a keyword record has a damaged key");
	fid = coffer_get_u32be((const unsigned char *)k + ID);
	idx = ((const unsigned char *)k)[COFFER_KEY_FOLDER];
	f = find_folder(a, fid);
	if (f == NULL)
		return report(c->v, a, folder_label(a, fid, tmp), 0, NULL,
		              "keyword %u belongs to a folder that does not exist", idx);
	if (idx >= COFFER_FOLDER_KEYWORDS_MAX)
		return report(c->v, a, f->name, 0, NULL, "keyword index %u is out of range", idx);
	f->kwmask |= 1u << idx;
	if (a->secret == NULL)
		return 0;
	rc = coffer_folder_keyword_open(a->id, fid, idx, val, vl, a->secret, &name);
	coffer_buf_free(&name);
	if (rc < 0)
		return report(c->v, a, f->name, 0, NULL, "keyword %u cannot be decrypted", idx);
	return 0;
}

static int p1_message(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct pass1 *c = arg;
	struct vacct *a = c->a;
	struct coffer_message_rec rec;
	struct vfolder *f;
	struct vref *r;
	uint32_t fid, uid;
	char tmp[16];
	int rc;

	if (kl != COFFER_KEY_MESSAGE)
		return report(c->v, a, NULL, 0, NULL, "a message record has a damaged key");
	fid = coffer_get_u32be((const unsigned char *)k + ID);
	uid = coffer_get_u32be((const unsigned char *)k + ID + 4);
	f = find_folder(a, fid);
	if (coffer_message_rec_decode(val, vl, &rec) < 0)
		return report(c->v, a, folder_label(a, fid, tmp), uid, NULL,
		              "message record is damaged");
	if (f == NULL) {
		rc = report(c->v, a, folder_label(a, fid, tmp), uid, rec.blob_id,
		            "message belongs to a folder that does not exist");
	} else {
		rc = 0;
		f->messages++;
		if (uid == 0)
			rc = report(c->v, a, f->name, uid, rec.blob_id, "uid 0 is not a valid uid");
		else if (f->rec_ok && uid >= f->uidnext)
			rc = report(c->v, a, f->name, uid, rec.blob_id,
			            "uid is not below the folder's uidnext (%u)", f->uidnext);
		if (rc == 0 && (rec.keywords & ~f->kwmask))
			rc = report(c->v, a, f->name, uid, rec.blob_id,
			            "message has keywords the folder does not define (bits 0x%x)",
			            rec.keywords & ~f->kwmask);
	}
	if (rc < 0)
		return rc;
	rc = verify_grow(&a->refs, &a->caprefs, a->nrefs, sizeof *a->refs);
	if (rc < 0)
		return rc;
	r = &a->refs[a->nrefs++];
	memcpy(r->blob, rec.blob_id, ID);
	r->fid = fid;
	r->uid = uid;
	return 0;
}

static int p1_msg_name(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct pass1 *c = arg;
	struct vacct *a = c->a;
	unsigned char key[COFFER_KEY_MESSAGE];
	struct vfolder *f;
	const void *mv;
	size_t ml;
	uint32_t fid, uid;
	char tmp[16];
	int rc;

	if (kl != COFFER_KEY_MSG_NAME || vl != 4)
		return report(c->v, a, NULL, 0, NULL, "a message name index entry is damaged");
	fid = coffer_get_u32be((const unsigned char *)k + ID);
	uid = coffer_get_u32be(val);
	coffer_key_message(key, a->id, fid, uid);
	rc = coffer_txn_get(c->t, COFFER_DB_MESSAGES, key, sizeof key, &mv, &ml);
	if (rc == COFFER_ENOTFOUND)
		return report(
		    c->v, a, folder_label(a, fid, tmp), uid, NULL,
		    "a message name index entry points at this uid, which does not exist");
	if (rc < 0)
		return rc;
	f = find_folder(a, fid);
	if (f)
		f->names++;
	return 0;
}

static int p1_ctl(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct pass1 *c = arg;
	struct vacct *a = c->a;
	struct coffer_ctlfile_rec rec;
	struct vctl *x;
	uint32_t fid;
	char tmp[16];
	int rc;

	if (kl != COFFER_KEY_CTLFILE)
		return report(c->v, a, NULL, 0, NULL, "a control file record has a damaged key");
	fid = coffer_get_u32be((const unsigned char *)k + ID);
	if (coffer_ctlfile_rec_decode(val, vl, &rec) < 0)
		return report(c->v, a, folder_label(a, fid, tmp), 0, NULL,
		              "a control file record is damaged");
	if (find_folder(a, fid) == NULL) {
		rc = report(c->v, a, folder_label(a, fid, tmp), 0, NULL,
		            "a control file belongs to a folder that does not exist");
		if (rc < 0)
			return rc;
	}
	if (coffer_ctlfile_is_empty_blob(rec.blob_id)) {
		if (rec.size != 0)
			return report(c->v, a, folder_label(a, fid, tmp), 0, NULL,
			              "an empty control file (no blob) records %llu bytes",
			              (unsigned long long)rec.size);
		return 0;
	}
	rc = verify_grow(&a->ctls, &a->capctls, a->nctls, sizeof *a->ctls);
	if (rc < 0)
		return rc;
	x = &a->ctls[a->nctls++];
	memset(x, 0, sizeof *x);
	memcpy(x->blob, rec.blob_id, ID);
	memcpy(x->key, k, COFFER_KEY_CTLFILE);
	x->fid = fid;
	x->size = rec.size;
	return 0;
}

static int p1_trash(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct pass1 *c = arg;
	struct vacct *a = c->a;
	int rc;

	if (kl != COFFER_KEY_BLOB)
		return report(c->v, a, NULL, 0, NULL, "a trash record has a damaged key");
	rc = verify_grow(&a->trash, &a->captrash, a->ntrash, sizeof *a->trash);
	if (rc < 0)
		return rc;
	memcpy(a->trash[a->ntrash++], (const unsigned char *)k + ID, ID);
	return 0;
}

/* Messages in refs[next_ref..] whose blob sorts before limit (NULL: all) have
 * no blobs record. */
static int flush_refs(struct pass1 *c, const unsigned char *limit)
{
	struct vacct *a = c->a;
	char tmp[16];
	int rc;

	for (; a->next_ref < a->nrefs; a->next_ref++) {
		const struct vref *r = &a->refs[a->next_ref];

		if (limit && memcmp(r->blob, limit, ID) >= 0)
			break;
		if (verify_in_sorted((const unsigned char(*)[ID])a->trash, a->ntrash, r->blob)) {
			a->trash_conflict = 1;
			rc = report(c->v, a, folder_label(a, r->fid, tmp), r->uid, r->blob,
			            "message points at a blob in the trash, whose file will be "
			            "removed (damaged index)");
		} else {
			rc = report(c->v, a, folder_label(a, r->fid, tmp), r->uid, r->blob,
			            "message points at a blob that has no blob record");
		}
		if (rc < 0)
			return rc;
	}
	for (; a->next_ctl < a->nctls; a->next_ctl++) {
		const struct vctl *x = &a->ctls[a->next_ctl];

		if (limit && memcmp(x->blob, limit, ID) >= 0)
			break;
		if (verify_in_sorted((const unsigned char(*)[ID])a->trash, a->ntrash, x->blob)) {
			a->trash_conflict = 1;
			rc = report(
			    c->v, a, folder_label(a, x->fid, tmp), 0, x->blob,
			    "a control file points at a blob in the trash, whose file will be "
			    "removed (damaged index)");
		} else {
			rc = report(c->v, a, folder_label(a, x->fid, tmp), 0, x->blob,
			            "a control file points at a blob that has no blob record");
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int p1_blob(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct pass1 *c = arg;
	struct vacct *a = c->a;
	const unsigned char *id = (const unsigned char *)k + ID;
	struct coffer_blob_rec rec;
	size_t count = 0, ctls = 0, first, first_ctl;
	int decoded;
	char tmp[16];
	int rc;

	if (kl != COFFER_KEY_BLOB)
		return report(c->v, a, NULL, 0, NULL, "a blob record has a damaged key");
	rc = flush_refs(c, id);
	if (rc < 0)
		return rc;
	first = a->next_ref;
	while (a->next_ref < a->nrefs && memcmp(a->refs[a->next_ref].blob, id, ID) == 0) {
		a->next_ref++;
		count++;
	}
	first_ctl = a->next_ctl;
	while (a->next_ctl < a->nctls && memcmp(a->ctls[a->next_ctl].blob, id, ID) == 0) {
		a->next_ctl++;
		ctls++;
	}
	decoded = coffer_blob_rec_decode(val, vl, &rec) == 0;
	for (size_t i = first_ctl; decoded && i < first_ctl + ctls; i++) {
		a->ctls[i].has_brec = 1;
		a->ctls[i].stored_size = rec.stored_size;
	}
	if (verify_in_sorted((const unsigned char(*)[ID])a->trash, a->ntrash, id)) {
		a->trash_conflict = 1;
		rc = report(c->v, a, NULL, 0, id, "blob has a live record and is in the trash");
		if (rc < 0)
			return rc;
	}
	if (!decoded)
		return report(c->v, a, NULL, 0, id, "blob record is damaged");
	if (rec.kind == COFFER_BLOB_MESSAGE) {
		if (ctls > 0)
			return report(c->v, a, folder_label(a, a->ctls[first_ctl].fid, tmp), 0, id,
			              "a control file points at a message blob");
		if (count == 0) {
			/* reported after the transaction, with a look at the file */
			rc = verify_grow(&a->unref, &a->capunref, a->nunref, sizeof *a->unref);
			if (rc < 0)
				return rc;
			memcpy(a->unref[a->nunref].blob, id, ID);
			a->unref[a->nunref++].refs = rec.refs;
		} else if (count != rec.refs) {
			return report(
			    c->v, a, NULL, 0, id,
			    "blob record counts %u references, but %zu messages point at it",
			    rec.refs, count);
		}
	} else if (rec.kind == COFFER_BLOB_CONTROL) {
		if (count > 0)
			return report(c->v, a, folder_label(a, a->refs[first].fid, tmp),
			              a->refs[first].uid, id,
			              "message points at a control-file blob");
		if (ctls == 0) {
			rc = verify_grow(&a->unref, &a->capunref, a->nunref, sizeof *a->unref);
			if (rc < 0)
				return rc;
			memcpy(a->unref[a->nunref].blob, id, ID);
			a->unref[a->nunref++].refs = rec.refs;
		} else if (ctls != rec.refs) {
			return report(
			    c->v, a, NULL, 0, id,
			    "blob record counts %u references, but %zu control files point "
			    "at it",
			    rec.refs, ctls);
		}
	} else {
		return report(c->v, a, NULL, 0, id, "blob record has unknown kind %u", rec.kind);
	}
	return 0;
}

static int pass1_txn(struct coffer_txn *t, void *arg)
{
	struct pass1 *c = arg;
	struct vacct *a = c->a;
	int rc;

	c->t = t;
	rc = check_account(c);
	if (rc < 0 || !a->rec_ok)
		return rc;
	rc = coffer_txn_scan(t, COFFER_DB_FOLDERS, a->id, ID, p1_folder, c);
	if (rc == 0)
		rc = check_folder_names(c);
	if (rc == 0)
		rc = coffer_txn_scan(t, COFFER_DB_FOLDER_NAMES, a->id, ID, p1_folder_name, c);
	if (rc == 0)
		rc = coffer_txn_scan(t, COFFER_DB_KEYWORDS, a->id, ID, p1_keyword, c);
	if (rc == 0)
		rc = coffer_txn_scan(t, COFFER_DB_MESSAGES, a->id, ID, p1_message, c);
	if (rc == 0)
		rc = coffer_txn_scan(t, COFFER_DB_MSG_NAMES, a->id, ID, p1_msg_name, c);
	for (size_t i = 0; rc == 0 && i < a->nfolders; i++) {
		struct vfolder *f = &a->folders[i];

		/* missing entries are reported per message in the blob pass */
		if (f->names > f->messages)
			rc = report(c->v, a, f->name, 0, NULL,
			            "folder has %llu message name index entries for %llu messages",
			            (unsigned long long)f->names, (unsigned long long)f->messages);
	}
	if (rc == 0)
		rc = coffer_txn_scan(t, COFFER_DB_CTLFILES, a->id, ID, p1_ctl, c);
	if (rc == 0)
		rc = coffer_txn_scan(t, COFFER_DB_TRASH, a->id, ID, p1_trash, c);
	if (rc == 0) {
		if (a->nrefs > 1)
			qsort(a->refs, a->nrefs, sizeof *a->refs, cmp_ref);
		if (a->nctls > 1)
			qsort(a->ctls, a->nctls, sizeof *a->ctls, cmp_ctl);
		a->next_ref = 0;
		a->next_ctl = 0;
		rc = coffer_txn_scan(t, COFFER_DB_BLOBS, a->id, ID, p1_blob, c);
	}
	if (rc == 0)
		rc = flush_refs(c, NULL);
	return rc;
}

/* Blob records nobody points at: one report each, saying if the file is there. */
static int report_unref(struct verify *v, struct vacct *a)
{
	struct coffer_buf path = COFFER_BUF_INIT;
	struct stat sb;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < a->nunref; i++) {
		coffer_buf_reset(&path);
		rc = coffer_store_blob_path(v->st, a->id, a->unref[i].blob, &path);
		if (rc == 0)
			rc = coffer_buf_ok(&path);
		if (rc < 0)
			break;
		rc = report(v, a, NULL, 0, a->unref[i].blob,
		            "blob record counts %u references, but no message or control file "
		            "points at it%s",
		            a->unref[i].refs,
		            lstat(coffer_buf_str(&path), &sb) < 0 && errno == ENOENT
		                ? ", and its file is missing"
		                : "");
	}
	coffer_buf_free(&path);
	return rc;
}

/* ---- 3. The blob pass ---- */

struct item {
	uint32_t fid;
	uint32_t uid;
	struct coffer_message_rec rec; /* name_box cleared */
	int has_brec;
	uint64_t stored_size;
	const struct vctl *ctl; /* a control file's blob (rec: blob_id, size) */
};

struct pass2 {
	struct verify *v;
	struct vacct *a;
	struct coffer_txn *t;
	struct item *items;
	size_t n;
	int more;
	unsigned char next[COFFER_KEY_MESSAGE]; /* where the next batch starts */
	struct coffer_buf name;
};

/* The message's msg_names entry. */
static int check_name(struct pass2 *c, const char *folder, uint32_t fid, uint32_t uid,
                      const struct coffer_message_rec *rec)
{
	struct vacct *a = c->a;
	unsigned char key[COFFER_KEY_MSG_NAME];
	const void *val;
	size_t vl;
	int rc;

	if (rec->name_box && a->secret == NULL)
		return 0; /* cannot know the name */
	coffer_buf_reset(&c->name);
	if (coffer_message_unique_name(rec, a->id, a->secret, &c->name) < 0)
		return report(c->v, a, folder, uid, rec->blob_id,
		              "message name cannot be decrypted");
	rc = coffer_buf_ok(&c->name);
	if (rc == 0)
		rc = coffer_message_name_key(c->v->st, a->id, fid, coffer_buf_str(&c->name),
		                             c->name.len, key);
	if (rc == 0)
		rc = coffer_txn_get(c->t, COFFER_DB_MSG_NAMES, key, sizeof key, &val, &vl);
	if (rc == COFFER_ENOTFOUND)
		return report(c->v, a, folder, uid, rec->blob_id,
		              "message has no name index entry");
	if (rc < 0)
		return rc;
	if (vl != 4 || coffer_get_u32be(val) != uid)
		return report(c->v, a, folder, uid, rec->blob_id,
		              "message name index entry points at another uid");
	return 0;
}

static int p2_collect(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct pass2 *c = arg;
	struct vacct *a = c->a;
	unsigned char bkey[COFFER_KEY_BLOB];
	struct coffer_blob_rec brec;
	struct item *it;
	const void *bv;
	size_t bl;
	char tmp[16];
	int rc;

	if (kl != COFFER_KEY_MESSAGE)
		return 0; /* reported by the index pass */
	if (c->n == COFFER_VERIFY_BATCH) {
		memcpy(c->next, k, COFFER_KEY_MESSAGE);
		c->more = 1;
		return 1;
	}
	it = &c->items[c->n];
	memset(it, 0, sizeof *it);
	it->fid = coffer_get_u32be((const unsigned char *)k + ID);
	it->uid = coffer_get_u32be((const unsigned char *)k + ID + 4);
	if (coffer_message_rec_decode(val, vl, &it->rec) < 0)
		return 0; /* reported by the index pass */
	rc = check_name(c, folder_label(a, it->fid, tmp), it->fid, it->uid, &it->rec);
	if (rc < 0)
		return rc;
	it->rec.name_box = NULL;
	it->rec.name_box_len = 0;
	coffer_key_blob(bkey, a->id, it->rec.blob_id);
	rc = coffer_txn_get(c->t, COFFER_DB_BLOBS, bkey, sizeof bkey, &bv, &bl);
	if (rc == 0 && coffer_blob_rec_decode(bv, bl, &brec) == 0) {
		it->has_brec = 1;
		it->stored_size = brec.stored_size;
	} else if (rc < 0 && rc != COFFER_ENOTFOUND) {
		return rc;
	}
	c->n++;
	return 0;
}

static int pass2_txn(struct coffer_txn *t, void *arg)
{
	struct pass2 *c = arg;

	c->t = t;
	c->n = 0;
	c->more = 0;
	return coffer_txn_scan_from(t, COFFER_DB_MESSAGES, c->a->id, ID, c->next, sizeof c->next,
	                            p2_collect, c);
}

struct still_args {
	const struct vacct *a;
	const struct item *it;
	int same;
};

static int still_txn(struct coffer_txn *t, void *arg)
{
	struct still_args *s = arg;
	struct coffer_message_rec rec;
	int rc;

	if (s->it->ctl) {
		struct coffer_ctlfile_rec crec;
		const void *val;
		size_t vl;

		rc = coffer_txn_get(t, COFFER_DB_CTLFILES, s->it->ctl->key, COFFER_KEY_CTLFILE,
		                    &val, &vl);
		if (rc == 0 && coffer_ctlfile_rec_decode(val, vl, &crec) == 0)
			s->same = memcmp(crec.blob_id, s->it->rec.blob_id, ID) == 0;
		return rc == COFFER_ENOTFOUND ? 0 : rc;
	}
	rc = coffer_message_get_txn(t, s->a->id, s->it->fid, s->it->uid, &rec);
	if (rc == COFFER_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	s->same = memcmp(rec.blob_id, s->it->rec.blob_id, ID) == 0;
	return 0;
}

/* Decrypts the blob of a message or control file to the end and compares
 * it with the index. */
static int check_blob(struct verify *v, struct vacct *a, const struct item *it)
{
	struct coffer_blob_reader *r = NULL;
	struct coffer_blob_ids ids;
	struct coffer_buf path = COFFER_BUF_INIT;
	struct still_args still = { a, it, 0 };
	const char *folder;
	uint64_t total = 0;
	struct stat sb;
	size_t got;
	char tmp[16];
	int fd = -1, rc, err;

	folder = folder_label(a, it->fid, tmp);
	rc = coffer_store_blob_path(v->st, a->id, it->rec.blob_id, &path);
	if (rc == 0)
		rc = coffer_buf_ok(&path);
	if (rc < 0)
		goto out;
	fd = open(coffer_buf_str(&path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		err = errno;
		if (err == ENOENT) {
			/* expunged (or rewritten) and collected since it was read? */
			rc = coffer_index_view(coffer_store_index(v->st), still_txn, &still);
			if (rc == 0 && still.same)
				rc = report(v, a, folder, it->uid, it->rec.blob_id,
				            "blob is missing");
		} else if (err == ELOOP) {
			rc = report(v, a, folder, it->uid, it->rec.blob_id,
			            "blob is not a regular file");
		} else {
			rc = report(v, a, folder, it->uid, it->rec.blob_id,
			            "blob cannot be opened: %s", strerror(err));
		}
		goto out;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		rc = report(v, a, folder, it->uid, it->rec.blob_id, "blob is not a regular file");
		goto out;
	}
	if (a->secret == NULL) {
		/* no key: existence and size only */
		if (it->has_brec && it->stored_size && (uint64_t)sb.st_size != it->stored_size)
			rc = report(v, a, folder, it->uid, it->rec.blob_id,
			            "blob file is %lld bytes, the index says %llu (damaged)",
			            (long long)sb.st_size, (unsigned long long)it->stored_size);
		goto out;
	}
	memcpy(ids.account_id, a->id, ID);
	memcpy(ids.blob_id, it->rec.blob_id, ID);
	ids.kind = it->ctl ? COFFER_BLOB_CONTROL : COFFER_BLOB_MESSAGE;
	rc = coffer_blob_reader_open(fd, &ids, a->secret, &r);
	while (rc == 0) {
		rc = coffer_blob_reader_read(r, v->buf, READ_BUF, &got);
		if (rc < 0 || got == 0)
			break;
		total += got;
	}
	v->s->bytes += (uint64_t)sb.st_size;
	if (rc == COFFER_ECORRUPT) {
		if (it->has_brec && it->stored_size && (uint64_t)sb.st_size < it->stored_size)
			rc = report(v, a, folder, it->uid, it->rec.blob_id,
			            "blob is truncated (damaged)");
		else
			rc = report(v, a, folder, it->uid, it->rec.blob_id,
			            "blob fails authentication (damaged)");
	} else if (rc == COFFER_ENOMEM) {
		goto out;
	} else if (rc < 0) {
		rc = report(v, a, folder, it->uid, it->rec.blob_id, "blob cannot be read: %s",
		            coffer_errmsg());
	} else if (total != it->rec.size) {
		rc = report(v, a, folder, it->uid, it->rec.blob_id,
		            "blob holds %llu bytes, the index says %llu (damaged)",
		            (unsigned long long)total, (unsigned long long)it->rec.size);
	} else if (it->has_brec && it->stored_size && (uint64_t)sb.st_size != it->stored_size) {
		rc = report(v, a, folder, it->uid, it->rec.blob_id,
		            "blob file is %lld bytes, the index says %llu (damaged)",
		            (long long)sb.st_size, (unsigned long long)it->stored_size);
	}
out:
	coffer_blob_reader_free(&r);
	if (fd >= 0)
		close(fd);
	coffer_buf_free(&path);
	return rc;
}

static int pass2(struct verify *v, struct vacct *a)
{
	struct pass2 c;
	int rc;

	memset(&c, 0, sizeof c);
	c.v = v;
	c.a = a;
	c.items = calloc(COFFER_VERIFY_BATCH, sizeof *c.items);
	if (c.items == NULL)
		return coffer_err_set(COFFER_ENOMEM, "verify: out of memory");
	coffer_key_message(c.next, a->id, 0, 0);
	do {
		rc = coffer_index_view(coffer_store_index(v->st), pass2_txn, &c);
		for (size_t i = 0; rc == 0 && i < c.n; i++) {
			rc = check_blob(v, a, &c.items[i]);
			v->s->messages++;
			v->done++;
			if (v->o->progress)
				v->o->progress(v->done, v->total > v->done ? v->total : v->done,
				               v->s->bytes, v->o->progress_arg);
		}
	} while (rc == 0 && c.more);
	/* the control files' blobs (the mount's), as collected by the index pass */
	for (size_t i = 0; rc == 0 && i < a->nctls; i++) {
		struct item it;

		memset(&it, 0, sizeof it);
		it.fid = a->ctls[i].fid;
		memcpy(it.rec.blob_id, a->ctls[i].blob, ID);
		it.rec.size = a->ctls[i].size;
		it.has_brec = a->ctls[i].has_brec;
		it.stored_size = a->ctls[i].stored_size;
		it.ctl = &a->ctls[i];
		rc = check_blob(v, a, &it);
		if (rc == 0)
			v->s->control_files++;
	}
	free(c.items);
	coffer_buf_free(&c.name);
	return rc;
}

/* ---- 4. The run ---- */

/* known_name: the name the caller asked for (shown if the name box cannot
 * be opened), or NULL. */
static int verify_account(struct verify *v, const unsigned char *id, const char *known_name)
{
	struct vacct a;
	struct pass1 c;
	uint64_t removed;
	int rc;

	memset(&a, 0, sizeof a);
	memcpy(a.id, id, ID);
	coffer_hex(a.hex, id, ID);
	if (known_name)
		a.name = strdup(known_name);
	else if (asprintf(&a.name, "account %s", a.hex) < 0)
		a.name = NULL;
	if (a.name == NULL)
		return coffer_err_set(COFFER_ENOMEM, "verify: out of memory");
	v->s->accounts++;
	c = (struct pass1){ v, &a, NULL };
	rc = coffer_index_view(coffer_store_index(v->st), pass1_txn, &c);
	if (rc == 0)
		rc = report_unref(v, &a);
	if (rc == 0 && a.rec_ok)
		rc = pass2(v, &a);
	if (rc == 0)
		rc = verify_tree_account(v, &a);
	if (rc == 0 && v->o->repair && !a.trash_conflict) {
		rc = coffer_blob_collect(v->st, a.id, &removed);
		if (rc == 0)
			v->s->collected += removed;
	}
	vacct_free(&a);
	return rc;
}

struct accounts_args {
	struct verify *v;
	struct coffer_store *st;
	const char *canon; /* NULL: all */
};

static int p0_account(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	struct verify *v = arg;
	int rc;

	if (kl != ID)
		return report(v, NULL, NULL, 0, NULL, "an account record has a damaged key");
	rc = verify_grow(&v->accts, &v->capaccts, v->naccts, sizeof *v->accts);
	if (rc == 0)
		memcpy(v->accts[v->naccts++], k, ID);
	return rc;
}

static int accounts_txn(struct coffer_txn *t, void *arg)
{
	struct accounts_args *s = arg;
	struct verify *v = s->v;
	unsigned char mac[COFFER_MAC_BYTES];
	const void *val;
	size_t vl;
	int rc;

	v->naccts = 0;
	if (s->canon == NULL) {
		rc = coffer_txn_count(t, COFFER_DB_MESSAGES, &v->total);
		if (rc == 0)
			rc = coffer_txn_scan(t, COFFER_DB_ACCOUNTS, "", 0, p0_account, v);
		return rc;
	}
	/* by the name entry alone (as account.c finds it), so that a damaged
	 * account record is reported rather than stopping the run */
	rc = coffer_store_name_mac(s->st, "acct", s->canon, strlen(s->canon), NULL, 0, mac);
	if (rc == 0)
		rc = coffer_txn_get(t, COFFER_DB_ACCOUNT_NAMES, mac, sizeof mac, &val, &vl);
	if (rc == COFFER_ENOTFOUND)
		return coffer_err_set(COFFER_ENOACCOUNT, "account %s does not exist", s->canon);
	if (rc < 0)
		return rc;
	if (vl != ID)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged name record for account %s",
		                      s->canon);
	return p0_account(val, ID, NULL, 0, v);
}

static int count_one(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

static int count_txn(struct coffer_txn *t, void *arg)
{
	struct verify *v = arg;

	v->total = 0;
	return coffer_txn_scan(t, COFFER_DB_MESSAGES, v->accts[0], ID, count_one, &v->total);
}

int coffer_verify_run(struct coffer_store *st, const struct coffer_verify_opts *opts,
                      struct coffer_verify_stats *stats_r)
{
	struct coffer_buf canon = COFFER_BUF_INIT;
	struct coffer_keyfile *kf;
	struct accounts_args s;
	struct verify v;
	int rc;

	memset(stats_r, 0, sizeof *stats_r);
	memset(&v, 0, sizeof v);
	v.st = st;
	v.o = opts;
	v.s = stats_r;
	v.grace = opts->grace_ns > 0 ? opts->grace_ns : COFFER_VERIFY_GRACE_NS;
	/* spooled deliveries (engine/spool.h) are mail, not orphans: indexed
	 * first (a store verify may not write keeps them, as pool files) */
	if (coffer_spool_absorb(st, NULL, NULL) < 0)
		coffer_err_clear();
	rc = coffer_clock_now(&v.now);
	if (rc == 0)
		rc = coffer_store_keyfile(st, &kf);
	if (rc == 0 && opts->account)
		rc = coffer_names_account(opts->account, strlen(opts->account), &canon);
	if (rc < 0)
		goto out;
	v.buf = malloc(READ_BUF);
	if (v.buf == NULL) {
		rc = coffer_err_set(COFFER_ENOMEM, "verify: out of memory");
		goto out;
	}
	s = (struct accounts_args){ &v, st, opts->account ? coffer_buf_str(&canon) : NULL };
	rc = coffer_index_view(coffer_store_index(st), accounts_txn, &s);
	if (rc == 0 && opts->account)
		rc = coffer_index_view(coffer_store_index(st), count_txn, &v);
	for (size_t i = 0; rc == 0 && i < v.naccts; i++)
		rc = verify_account(&v, v.accts[i], opts->account ? coffer_buf_str(&canon) : NULL);
	if (rc == 0 && opts->account == NULL)
		rc = verify_tree_top(&v);
out:
	free(v.buf);
	free(v.accts);
	coffer_buf_free(&canon);
	return rc;
}
