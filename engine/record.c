/*
 * record.c: index record encodings (see record.h and docs/format.md).
 *
 * Every value starts with COFFER_RECORD_VERSION. A decoder refuses other
 * versions, records that end early, and boxes longer than their bound; it
 * ignores nothing, so trailing bytes are also corruption. Box lengths are
 * u16, so a box is at most 65535 bytes (names are far smaller).
 */
#include "record.h"

#include "errors.h"

#include <string.h>

#define BOX_MAX 65535u

void coffer_key_folder(unsigned char *k, const unsigned char *acct, uint32_t folder_id)
{
	memcpy(k, acct, COFFER_ID_BYTES);
	coffer_put_u32be(k + COFFER_ID_BYTES, folder_id);
}

void coffer_key_message(unsigned char *k, const unsigned char *acct, uint32_t folder_id,
                        uint32_t uid)
{
	coffer_key_folder(k, acct, folder_id);
	coffer_put_u32be(k + COFFER_ID_BYTES + 4, uid);
}

void coffer_key_blob(unsigned char *k, const unsigned char *acct, const unsigned char *blob_id)
{
	memcpy(k, acct, COFFER_ID_BYTES);
	memcpy(k + COFFER_ID_BYTES, blob_id, COFFER_ID_BYTES);
}

void coffer_hex(char *out, const unsigned char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int put_box(struct coffer_buf *out, const unsigned char *box, size_t len)
{
	if (len > BOX_MAX)
		return coffer_err_set(COFFER_ELIMIT, "record: box of %zu bytes too large", len);
	coffer_buf_put_u8(out, (uint8_t)(len & 0xff));
	coffer_buf_put_u8(out, (uint8_t)(len >> 8));
	if (len)
		coffer_buf_append(out, box, len);
	return 0;
}

static int get_box(struct coffer_rd *rd, const unsigned char **box_r, size_t *len_r)
{
	uint8_t lo = 0, hi = 0; /* a failed read leaves them as they are */
	size_t len;

	coffer_rd_u8(rd, &lo);
	coffer_rd_u8(rd, &hi);
	len = (size_t)lo | ((size_t)hi << 8);
	*box_r = NULL;
	*len_r = 0;
	if (len == 0)
		return rd->failed ? COFFER_ECORRUPT : 0;
	if (coffer_rd_bytes(rd, len, box_r) < 0)
		return COFFER_ECORRUPT;
	*len_r = len;
	return 0;
}

static int finish(struct coffer_rd *rd, const char *what)
{
	if (rd->failed || rd->left != 0)
		return coffer_err_set(COFFER_ECORRUPT, "index: damaged %s record", what);
	return 0;
}

static int check_version(struct coffer_rd *rd, const char *what)
{
	uint8_t v = 0;

	coffer_rd_u8(rd, &v);
	if (v != COFFER_RECORD_VERSION)
		return coffer_err_set(COFFER_ECORRUPT, "index: %s record has unknown version %u",
		                      what, v);
	return 0;
}

int coffer_account_rec_encode(const struct coffer_account_rec *r, struct coffer_buf *out)
{
	coffer_buf_put_u8(out, COFFER_RECORD_VERSION);
	coffer_buf_put_u8(out, r->state);
	coffer_buf_put_u64le(out, (uint64_t)r->created_at);
	coffer_buf_put_u64le(out, (uint64_t)r->terminated_at);
	coffer_buf_put_u64le(out, (uint64_t)r->shredded_at);
	coffer_buf_put_u64le(out, r->modseq);
	coffer_buf_put_u32le(out, r->next_folder_id);
	coffer_buf_append(out, r->pk, sizeof r->pk);
	coffer_buf_put_u64le(out, r->key_epoch);
	coffer_buf_append(out, r->wrapped_sk, sizeof r->wrapped_sk);
	if (put_box(out, r->name_box, r->name_box_len) < 0)
		return COFFER_ELIMIT;
	return coffer_buf_ok(out);
}

int coffer_account_rec_decode(const void *p, size_t n, struct coffer_account_rec *r)
{
	struct coffer_rd rd;
	uint64_t v;

	memset(r, 0, sizeof *r);
	coffer_rd_init(&rd, p, n);
	if (check_version(&rd, "account") < 0)
		return COFFER_ECORRUPT;
	coffer_rd_u8(&rd, &r->state);
	coffer_rd_u64le(&rd, &v), r->created_at = (int64_t)v;
	coffer_rd_u64le(&rd, &v), r->terminated_at = (int64_t)v;
	coffer_rd_u64le(&rd, &v), r->shredded_at = (int64_t)v;
	coffer_rd_u64le(&rd, &r->modseq);
	coffer_rd_u32le(&rd, &r->next_folder_id);
	coffer_rd_copy(&rd, r->pk, sizeof r->pk);
	coffer_rd_u64le(&rd, &r->key_epoch);
	coffer_rd_copy(&rd, r->wrapped_sk, sizeof r->wrapped_sk);
	get_box(&rd, &r->name_box, &r->name_box_len);
	if (r->state < COFFER_ACCOUNT_ACTIVE || r->state > COFFER_ACCOUNT_SHREDDED)
		rd.failed = 1;
	return finish(&rd, "account");
}

int coffer_folder_rec_encode(const struct coffer_folder_rec *r, struct coffer_buf *out)
{
	coffer_buf_put_u8(out, COFFER_RECORD_VERSION);
	coffer_buf_put_u32le(out, r->uidvalidity);
	coffer_buf_put_u32le(out, r->uidnext);
	coffer_buf_put_u64le(out, (uint64_t)r->created_at);
	if (put_box(out, r->name_box, r->name_box_len) < 0)
		return COFFER_ELIMIT;
	return coffer_buf_ok(out);
}

int coffer_folder_rec_decode(const void *p, size_t n, struct coffer_folder_rec *r)
{
	struct coffer_rd rd;
	uint64_t v;

	memset(r, 0, sizeof *r);
	coffer_rd_init(&rd, p, n);
	if (check_version(&rd, "folder") < 0)
		return COFFER_ECORRUPT;
	coffer_rd_u32le(&rd, &r->uidvalidity);
	coffer_rd_u32le(&rd, &r->uidnext);
	coffer_rd_u64le(&rd, &v), r->created_at = (int64_t)v;
	get_box(&rd, &r->name_box, &r->name_box_len);
	return finish(&rd, "folder");
}

int coffer_message_rec_encode(const struct coffer_message_rec *r, struct coffer_buf *out)
{
	coffer_buf_put_u8(out, COFFER_RECORD_VERSION);
	coffer_buf_append(out, r->blob_id, sizeof r->blob_id);
	coffer_buf_put_u64le(out, r->size);
	coffer_buf_put_u64le(out, (uint64_t)r->internal_date);
	coffer_buf_put_u64le(out, (uint64_t)r->delivered_at);
	coffer_buf_put_u8(out, r->flags);
	coffer_buf_put_u8(out, r->is_new);
	coffer_buf_put_u32le(out, r->keywords);
	if (put_box(out, r->name_box, r->name_box_len) < 0)
		return COFFER_ELIMIT;
	return coffer_buf_ok(out);
}

int coffer_message_rec_decode(const void *p, size_t n, struct coffer_message_rec *r)
{
	struct coffer_rd rd;
	uint64_t v;

	memset(r, 0, sizeof *r);
	coffer_rd_init(&rd, p, n);
	if (check_version(&rd, "message") < 0)
		return COFFER_ECORRUPT;
	coffer_rd_copy(&rd, r->blob_id, sizeof r->blob_id);
	coffer_rd_u64le(&rd, &r->size);
	coffer_rd_u64le(&rd, &v), r->internal_date = (int64_t)v;
	coffer_rd_u64le(&rd, &v), r->delivered_at = (int64_t)v;
	coffer_rd_u8(&rd, &r->flags);
	coffer_rd_u8(&rd, &r->is_new);
	coffer_rd_u32le(&rd, &r->keywords);
	get_box(&rd, &r->name_box, &r->name_box_len);
	if (r->is_new > 1 || r->flags > 0x3f || r->keywords >= (1u << 26))
		rd.failed = 1;
	return finish(&rd, "message");
}

int coffer_blob_rec_encode(const struct coffer_blob_rec *r, struct coffer_buf *out)
{
	coffer_buf_put_u8(out, COFFER_RECORD_VERSION);
	coffer_buf_put_u32le(out, r->refs);
	coffer_buf_put_u8(out, r->kind);
	coffer_buf_put_u64le(out, (uint64_t)r->created_at);
	coffer_buf_put_u64le(out, r->stored_size);
	return coffer_buf_ok(out);
}

int coffer_blob_rec_decode(const void *p, size_t n, struct coffer_blob_rec *r)
{
	struct coffer_rd rd;
	uint64_t v;

	memset(r, 0, sizeof *r);
	coffer_rd_init(&rd, p, n);
	if (check_version(&rd, "blob") < 0)
		return COFFER_ECORRUPT;
	coffer_rd_u32le(&rd, &r->refs);
	coffer_rd_u8(&rd, &r->kind);
	coffer_rd_u64le(&rd, &v), r->created_at = (int64_t)v;
	coffer_rd_u64le(&rd, &r->stored_size);
	if (r->kind < 1 || r->kind > 2) /* enum coffer_blob_kind */
		rd.failed = 1;
	return finish(&rd, "blob");
}
