/*
 * test-mount.c: the parts of the mount that need no FUSE: path parsing and
 * message file names (maildir/mount-path.c), folder and message operations
 * (engine/mailops.c), encrypted control files (engine/ctlfile.c), and
 * `coffer verify` over a store holding control files (engine/verify.c).
 */
#include "tap.h"

#include "engine/account.h"
#include "engine/blob.h"
#include "engine/clock.h"
#include "engine/ctlfile.h"
#include "engine/envelope.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "engine/mailops.h"
#include "engine/message.h"
#include "engine/store.h"
#include "engine/verify.h"
#include "maildir/deliver.h"
#include "maildir/mount.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_paths(void)
{
	struct coffer_mount_path p;
	struct coffer_buf b = COFFER_BUF_INIT;
	int sub;

	ok(coffer_mount_path_parse("/", &p) == 0 && p.kind == COFFER_MP_ROOT, "/ is the root");
	ok(coffer_mount_path_parse("/a@b.c", &p) == 0 && p.kind == COFFER_MP_ACCT && p.acct_n == 5,
	   "account");
	ok(coffer_mount_path_parse("/a@b.c/cur", &p) == 0 && p.kind == COFFER_MP_SUB &&
	       p.sub == COFFER_MP_CUR && p.dir == NULL,
	   "INBOX cur/");
	ok(coffer_mount_path_parse("/a@b.c/new/x:2,S", &p) == 0 && p.kind == COFFER_MP_FILE &&
	       p.sub == COFFER_MP_NEW && p.name_n == 5,
	   "INBOX message");
	ok(coffer_mount_path_parse("/a@b.c/dovecot-uidlist", &p) == 0 &&
	       p.kind == COFFER_MP_ENTRY && p.dir == NULL,
	   "control file at the root");
	ok(coffer_mount_path_parse("/a@b.c/.Sent", &p) == 0 && p.kind == COFFER_MP_ENTRY,
	   "folder dir is an entry");
	ok(coffer_mount_path_parse("/a@b.c/.Sent/tmp", &p) == 0 && p.kind == COFFER_MP_SUB &&
	       p.sub == COFFER_MP_TMP && p.dir_n == 5,
	   "folder tmp/");
	ok(coffer_mount_path_parse("/a@b.c/.Sent/tmp/1.2.h", &p) == 0 && p.kind == COFFER_MP_FILE &&
	       p.name_n == 5,
	   "folder tmp file");
	ok(coffer_mount_path_parse("/a@b.c/.Sent/maildirfolder", &p) == 0 &&
	       p.kind == COFFER_MP_ENTRY && p.dir_n == 5,
	   "folder control file");
	ok(coffer_mount_path_parse("/a@b.c/x/y", &p) == COFFER_EINVAL,
	   "no directories below a non-folder");
	ok(coffer_mount_path_parse("/a@b.c/.S/cur/x/y", &p) == COFFER_EINVAL, "too deep");
	ok(coffer_mount_path_parse("/a@b.c/../x", &p) == COFFER_EINVAL, "'..' refused");
	ok(coffer_mount_path_parse("/a@b.c/./x", &p) == COFFER_EINVAL, "'.' refused");
	ok(coffer_mount_path_parse("/a@b.c//x", &p) == COFFER_EINVAL, "empty component refused");
	ok(coffer_mount_path_parse("a@b.c", &p) == COFFER_EINVAL, "relative refused");
	{
		char longname[300];

		memset(longname, 'x', sizeof longname);
		longname[0] = '/';
		longname[299] = '\0';
		ok(coffer_mount_path_parse(longname, &p) == COFFER_EINVAL,
		   "component over 255 refused");
	}
	ok(coffer_mount_is_subdir("tmp", 3, &sub) && sub == COFFER_MP_TMP, "tmp is a subdir");
	ok(!coffer_mount_is_subdir("tmpx", 4, &sub), "tmpx is not");

	coffer_mount_message_name(&b, "1.2.h,S=5", 9, 1, 0, 0);
	ok(strcmp(coffer_buf_str(&b), "1.2.h,S=5") == 0, "new/ name without flags has no info");
	coffer_buf_reset(&b);
	coffer_mount_message_name(&b, "1.2.h", 5, 0, 0, 0);
	ok(strcmp(coffer_buf_str(&b), "1.2.h:2,") == 0, "cur/ name always has info");
	coffer_buf_reset(&b);
	coffer_mount_message_name(&b, "1.2.h", 5, 0, 0x12, 0x5);
	ok(strcmp(coffer_buf_str(&b), "1.2.h:2,FSac") == 0, "flags and keyword letters: %s",
	   coffer_buf_str(&b));
	coffer_buf_reset(&b);
	coffer_mount_message_name(&b, "1.2.h", 5, 1, 0x10, 0);
	ok(strcmp(coffer_buf_str(&b), "1.2.h:2,S") == 0, "new/ with flags has info");
	coffer_buf_free(&b);
}

struct env {
	struct coffer_store *st;
	struct coffer_mailbox *mb;
	const unsigned char *acct;
	const struct coffer_acct_secret *sec;
};

struct op {
	struct env *e;
	const char *a, *b;
	int sub;
	uint32_t fid, uid;
	uint64_t n;
	struct coffer_mailops_place pl;
	struct coffer_ctlfile_rec rec;
};

static int t_create(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;

	return coffer_mailops_folder_create_txn(t, o->e->st, o->e->acct, o->a, o->e->sec, 1,
	                                        &o->fid);
}

static int t_rename(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;

	return coffer_mailops_folder_rename_txn(t, o->e->st, o->e->acct, o->a, o->b, o->sub,
	                                        o->e->sec);
}

static int t_delete(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;

	return coffer_mailops_folder_delete_txn(t, o->e->st, o->e->acct, o->a, 1, &o->n);
}

static int t_place(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;

	return coffer_mailops_message_place_txn(t, o->e->st, o->e->acct, &o->pl, o->e->sec,
	                                        &o->uid);
}

static int t_find(struct coffer_txn *t, void *arg)
{
	struct op *o = arg;

	return coffer_message_find_name_txn(t, o->e->st, o->e->acct, o->fid, o->a, strlen(o->a),
	                                    &o->uid);
}

static int count_fn(const struct coffer_message *m, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int count(struct env *e, const char *folder)
{
	uint32_t fid;
	int n = 0;

	if (coffer_folder_find(e->mb, folder, &fid) < 0)
		return -1;
	coffer_message_list(e->mb, fid, count_fn, &n);
	return n;
}

static int upd(struct env *e, coffer_txn_fn fn, struct op *o)
{
	return coffer_index_update(coffer_store_index(e->st), fn, o);
}

static int first_name(const struct coffer_message *m, void *arg)
{
	snprintf(arg, 200, "%s", m->unique);
	return 1;
}

static void test_mailops(struct env *e)
{
	struct op o;
	char name[200] = "";
	uint32_t inbox_uid, fid_work;
	int fd;

	memset(&o, 0, sizeof o);
	o.e = e;
	o.a = "Work";
	ok(upd(e, t_create, &o) == 0, "create Work");
	fid_work = o.fid;
	ok(upd(e, t_create, &o) == COFFER_EEXIST, "create Work again: EEXIST");
	o.a = "Work/Sub";
	ok(upd(e, t_create, &o) == 0, "create Work/Sub");
	o.a = "Work";
	o.b = "Projects";
	o.sub = 1;
	ok(upd(e, t_rename, &o) == 0, "rename Work with subfolders");
	ok(count(e, "Projects") == 0 && count(e, "Projects/Sub") == 0 && count(e, "Work") < 0 &&
	       count(e, "Work/Sub") < 0,
	   "Projects and Projects/Sub exist, Work and Work/Sub not");
	o.a = "Projects";
	o.b = "Projects/Inner";
	ok(upd(e, t_rename, &o) == COFFER_EINVAL, "rename under itself refused");
	o.a = "INBOX";
	o.b = "X";
	ok(upd(e, t_rename, &o) == COFFER_EINVAL, "INBOX cannot be renamed");

	/* a message delivered to INBOX, moved to Projects, linked back */
	{
		struct coffer_deliver_result r;
		char path[4096];
		FILE *f;

		snprintf(path, sizeof path, "%s/msg", tap_tmpdir());
		f = fopen(path, "w");
		fputs("From: a@b\nSubject: s\n\nbody\n", f);
		fclose(f);
		fd = open(path, O_RDONLY);
		ok(coffer_deliver(e->st, "alice@example.org", NULL, fd, &r) == 0, "deliver");
		close(fd);
		inbox_uid = r.uid;
	}
	coffer_message_list(e->mb, 0, first_name, name);
	memset(&o.pl, 0, sizeof o.pl);
	coffer_folder_find(e->mb, "Projects", &o.pl.dst_fid);
	o.pl.src_fid = 0;
	o.pl.uid = inbox_uid;
	o.pl.old_unique = name;
	o.pl.old_n = strlen(name);
	o.pl.unique = name;
	o.pl.unique_n = strlen(name);
	o.pl.flags = 0x10;
	o.pl.now = 2;
	ok(upd(e, t_place, &o) == 0, "move INBOX -> Projects");
	ok(count(e, "INBOX") == 0 && count(e, "Projects") == 1, "moved");
	o.fid = o.pl.dst_fid;
	o.a = name;
	ok(coffer_index_view(coffer_store_index(e->st), t_find, &o) == 0,
	   "found by name in Projects");
	o.pl.src_fid = o.pl.dst_fid;
	o.pl.uid = o.uid;
	o.pl.dst_fid = 0;
	o.pl.keep_src = 1;
	o.pl.unique = "linked.1";
	o.pl.unique_n = 8;
	ok(upd(e, t_place, &o) == 0, "link Projects -> INBOX under another name");
	ok(count(e, "INBOX") == 1 && count(e, "Projects") == 1, "two messages");
	o.fid = 0;
	o.a = "linked.1";
	ok(coffer_index_view(coffer_store_index(e->st), t_find, &o) == 0,
	   "the link is found by its name");
	o.pl.src_fid = 0;
	o.pl.uid = o.uid;
	o.pl.dst_fid = 0;
	o.pl.keep_src = 0;
	o.pl.old_unique = "linked.1";
	o.pl.old_n = 8;
	o.pl.unique = "renamed.2";
	o.pl.unique_n = 9;
	{
		uint32_t before = o.uid;

		ok(upd(e, t_place, &o) == 0 && o.uid == before, "rename in place keeps the uid");
	}
	o.a = "linked.1";
	ok(coffer_index_view(coffer_store_index(e->st), t_find, &o) == COFFER_ENOTFOUND,
	   "old name gone");
	o.a = "Projects";
	ok(upd(e, t_delete, &o) == 0 && o.n == 1, "delete Projects with its message");
	ok(count(e, "Projects") < 0 && count(e, "INBOX") == 1, "the INBOX link survives");
	(void)fid_work;
}

struct ctlop {
	struct env *e;
	uint32_t fid;
	const char *a, *b;
	struct coffer_ctlfile_rec rec;
	int excl;
	int listed;
};

static int c_put(struct coffer_txn *t, void *arg)
{
	struct ctlop *c = arg;

	return coffer_ctlfile_put_txn(t, c->e->st, c->e->acct, c->fid, c->a, strlen(c->a), &c->rec,
	                              c->e->sec, c->excl, 1);
}

static int c_get(struct coffer_txn *t, void *arg)
{
	struct ctlop *c = arg;

	return coffer_ctlfile_get_txn(t, c->e->st, c->e->acct, c->fid, c->a, strlen(c->a), &c->rec);
}

static int c_rename(struct coffer_txn *t, void *arg)
{
	struct ctlop *c = arg;

	return coffer_ctlfile_rename_txn(t, c->e->st, c->e->acct, c->fid, c->a, strlen(c->a),
	                                 c->fid, c->b, strlen(c->b), c->e->sec, 1);
}

static int c_del(struct coffer_txn *t, void *arg)
{
	struct ctlop *c = arg;

	return coffer_ctlfile_del_txn(t, c->e->st, c->e->acct, c->fid, c->a, strlen(c->a), 1);
}

static int c_list_fn(const char *name, size_t n, const struct coffer_ctlfile_rec *rec, void *arg)
{
	struct ctlop *c = arg;

	if (strcmp(name, "dovecot-uidlist") == 0 && rec->size == 11)
		c->listed++;
	return 0;
}

static int c_list(struct coffer_txn *t, void *arg)
{
	struct ctlop *c = arg;

	return coffer_ctlfile_list_txn(t, c->e->acct, c->fid, c->e->sec, c_list_fn, c);
}

static void test_ctlfiles(struct env *e)
{
	struct ctlop c;
	struct coffer_buf out = COFFER_BUF_INIT;
	unsigned char old_blob[COFFER_ID_BYTES];
	uint64_t removed = 0;

	memset(&c, 0, sizeof c);
	c.e = e;
	c.a = "dovecot-uidlist.lock";
	ok(coffer_ctlfile_blob_write(e->st, e->acct, COFFER_BLOB_CONTROL, e->sec, "3 V1 N1\nabc",
	                             11, c.rec.blob_id, &c.rec.stored_size) == 0,
	   "write a control blob");
	c.rec.size = 11;
	c.rec.mtime = 5;
	c.rec.mode = 0600;
	c.rec.fresh_blob = 1;
	c.excl = 1;
	ok(coffer_index_update(coffer_store_index(e->st), c_put, &c) == 0, "put (O_EXCL)");
	c.rec.fresh_blob = 0;
	ok(coffer_index_update(coffer_store_index(e->st), c_put, &c) == COFFER_EEXIST,
	   "second O_EXCL put: EEXIST");
	c.b = "dovecot-uidlist";
	ok(coffer_index_update(coffer_store_index(e->st), c_rename, &c) == 0, "rename over");
	c.a = "dovecot-uidlist";
	memset(&c.rec, 0, sizeof c.rec);
	ok(coffer_index_view(coffer_store_index(e->st), c_get, &c) == 0 && c.rec.size == 11 &&
	       c.rec.mtime == 5,
	   "get the renamed file");
	ok(coffer_ctlfile_read(e->st, e->acct, e->sec, &c.rec, &out) == 0 && out.len == 11 &&
	       memcmp(out.data, "3 V1 N1\nabc", 11) == 0,
	   "its content reads back");
	coffer_index_view(coffer_store_index(e->st), c_list, &c);
	ok(c.listed == 1, "listed with its decrypted name");
	memcpy(old_blob, c.rec.blob_id, sizeof old_blob);
	/* replace: the old blob loses its reference and is collected */
	ok(coffer_ctlfile_blob_write(e->st, e->acct, COFFER_BLOB_CONTROL, e->sec, "", 0,
	                             c.rec.blob_id, &c.rec.stored_size) == 0 &&
	       coffer_ctlfile_is_empty_blob(c.rec.blob_id),
	   "empty content needs no blob");
	c.rec.size = 0;
	c.rec.fresh_blob = 1;
	c.excl = 0;
	ok(coffer_index_update(coffer_store_index(e->st), c_put, &c) == 0, "replace with empty");
	ok(coffer_blob_collect(e->st, NULL, &removed) == 0 && removed >= 1, "old blob collected");
	coffer_buf_reset(&out);
	ok(coffer_ctlfile_read(e->st, e->acct, e->sec, &c.rec, &out) == 0 && out.len == 0,
	   "empty file reads empty");
	ok(coffer_index_update(coffer_store_index(e->st), c_del, &c) == 0, "delete");
	ok(coffer_index_view(coffer_store_index(e->st), c_get, &c) == COFFER_ENOTFOUND, "gone");
	c.a = "a/b";
	ok(coffer_index_view(coffer_store_index(e->st), c_get, &c) == COFFER_EINVAL, "'/' refused");
	coffer_buf_free(&out);
}

struct vprob {
	int n;
	int refcount, auth;
};

static int on_problem(const struct coffer_verify_problem *p, void *arg)
{
	struct vprob *v = arg;

	if (p->pending)
		return 0;
	v->n++;
	if (strstr(p->problem, "2 control files point at it"))
		v->refcount++;
	if (strstr(p->problem, "fails authentication"))
		v->auth++;
	tap_diag("verify: %s", p->problem);
	return 0;
}

static int run_verify(struct env *e, struct vprob *v, struct coffer_verify_stats *s)
{
	struct coffer_verify_opts o;

	memset(&o, 0, sizeof o);
	memset(v, 0, sizeof *v);
	o.problem = on_problem;
	o.problem_arg = v;
	return coffer_verify_run(e->st, &o, s);
}

/* verify counts control files' blob references and decrypts their blobs */
static void test_verify_ctlfiles(struct env *e)
{
	struct ctlop c;
	struct coffer_verify_stats s;
	struct coffer_buf path = COFFER_BUF_INIT;
	struct vprob v;
	unsigned char byte = 0;
	int fd, rc;

	memset(&c, 0, sizeof c);
	c.e = e;
	c.a = "dovecot-uidlist";
	ok(coffer_ctlfile_blob_write(e->st, e->acct, COFFER_BLOB_CONTROL, e->sec,
	                             "3 V1700000000 N2\n1 :a\n", 22, c.rec.blob_id,
	                             &c.rec.stored_size) == 0,
	   "verify: a control blob");
	c.rec.size = 22;
	c.rec.mode = 0600;
	c.rec.fresh_blob = 1;
	ok(coffer_index_update(coffer_store_index(e->st), c_put, &c) == 0, "verify: its record");
	c.a = "maildirfolder";
	memset(&c.rec, 0, sizeof c.rec);
	c.rec.fresh_blob = 1;
	ok(coffer_index_update(coffer_store_index(e->st), c_put, &c) == 0,
	   "verify: an empty control file (no blob)");
	/* run_verify() first: the order in which ok()'s arguments are evaluated
	 * is unspecified, so the counts printed must not depend on it */
	rc = run_verify(e, &v, &s);
	ok(rc == 0 && v.n == 0 && s.problems == 0 && s.control_files == 1,
	   "verify: a store with control files is clean (problems %d, control files %llu)", v.n,
	   (unsigned long long)s.control_files);

	c.a = "dovecot-uidlist";
	ok(coffer_index_view(coffer_store_index(e->st), c_get, &c) == 0, "verify: get");

	/* damage in a control blob */
	ok(coffer_store_blob_path(e->st, e->acct, c.rec.blob_id, &path) == 0, "verify: blob path");
	fd = open(coffer_buf_str(&path), O_RDWR);
	ok(fd >= 0 && pread(fd, &byte, 1, 60) == 1, "verify: read a byte of the control blob");
	byte ^= 0x20;
	ok(pwrite(fd, &byte, 1, 60) == 1, "verify: flip it");
	rc = run_verify(e, &v, &s);
	ok(rc == 0 && v.auth == 1 && s.problems == 1,
	   "verify: a damaged control blob is reported (%d problems)", v.n);
	byte ^= 0x20;
	ok(pwrite(fd, &byte, 1, 60) == 1 && run_verify(e, &v, &s) == 0 && v.n == 0,
	   "verify: clean again once repaired");
	if (fd >= 0)
		close(fd);

	/* last (it leaves the index damaged): a second control file naming the
	 * same blob without a reference */
	c.a = "dovecot-uidlist.copy";
	c.rec.fresh_blob = 0;
	ok(coffer_index_update(coffer_store_index(e->st), c_put, &c) == 0,
	   "verify: a second name for the blob, refcount not raised");
	ok(run_verify(e, &v, &s) == 0 && v.refcount == 1 && v.n == 1,
	   "verify: the reference count mismatch is reported");
	coffer_buf_free(&path);
}

int main(void)
{
	struct env e;
	char store[4096], key[4096];

	coffer_crypto_init();
	test_paths();
	snprintf(store, sizeof store, "%s/store", tap_tmpdir());
	snprintf(key, sizeof key, "%s/key", tap_tmpdir());
	memset(&e, 0, sizeof e);
	ok(coffer_store_init(store, key, &e.st) == 0, "store");
	ok(coffer_account_add(e.st, "alice@example.org", 17, NULL) == 0, "account");
	ok(coffer_mailbox_open(e.st, "alice@example.org", 17, &e.mb) == 0, "mailbox");
	if (e.mb) {
		e.acct = coffer_mailbox_id(e.mb);
		e.sec = coffer_mailbox_secret(e.mb);
		test_mailops(&e);
		test_ctlfiles(&e);
		test_verify_ctlfiles(&e);
	}
	coffer_mailbox_close(&e.mb);
	coffer_store_close(&e.st);
	return tap_done();
}
