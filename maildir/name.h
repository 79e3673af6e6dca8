/*
 * name.h: Maildir file names and Maildir++ folder directory names.
 *
 * File names: "<unique>[:2,<info>]" where info holds the standard flags
 * D F P R S T in ASCII order, then Dovecot keyword letters a..z (index into
 * the folder's dovecot-keywords). The unique part may carry ",S=<size>" and
 * ",W=<vsize>" fields (kept inside unique as written). Everything here comes
 * from untrusted writers (IMAP servers through the mount, imported trees).
 *
 * Folder directory names (Maildir++): ".Lists.debian" is the folder
 * "Lists/debian"; names are IMAP modified UTF-7 (RFC 3501 5.1.3) on disk and
 * UTF-8 in Coffer.
 */
#ifndef COFFER_MAILDIR_NAME_H
#define COFFER_MAILDIR_NAME_H

#include "engine/buf.h"

#include <stddef.h>
#include <stdint.h>

enum {
	COFFER_FLAG_DRAFT = 1 << 0,   /* D */
	COFFER_FLAG_FLAGGED = 1 << 1, /* F */
	COFFER_FLAG_PASSED = 1 << 2,  /* P */
	COFFER_FLAG_REPLIED = 1 << 3, /* R */
	COFFER_FLAG_SEEN = 1 << 4,    /* S */
	COFFER_FLAG_TRASHED = 1 << 5, /* T */
};

#define COFFER_MAILDIR_NAME_MAX 255

struct coffer_maildir_name {
	size_t unique_len; /* bytes of the unique part, from the start */
	int has_info;      /* ":2," present */
	unsigned flags;    /* COFFER_FLAG_* */
	uint32_t keywords; /* bit i = letter 'a'+i */
	uint64_t size;     /* ,S= value, 0 if absent */
	int has_size;
};

/*
 * Parses a file name of n bytes. COFFER_EINVAL (with detail) if it is empty,
 * longer than COFFER_MAILDIR_NAME_MAX, contains '/', NUL or control
 * characters, starts with '.', or has an info part that is not ":2," plus
 * flag and keyword letters. Unknown info letters (upper case other than
 * DFPRST) are refused too.
 */
int coffer_maildir_name_parse(const char *name, size_t n, struct coffer_maildir_name *out);

/* Appends unique (unique_len bytes) then ":2," and flags and keywords in
 * canonical order to out. With info == 0 no ":2," part is written. */
int coffer_maildir_name_format(struct coffer_buf *out, const char *unique, size_t unique_len,
                               int info, unsigned flags, uint32_t keywords);

/* "DFS" style text for flags (no keywords), into out (appended). */
int coffer_maildir_flags_format(struct coffer_buf *out, unsigned flags);

/* Maildir++ directory name (".Lists.debian", modified UTF-7) to a canonical
 * Coffer folder name ("Lists/debian", UTF-8), into out (reset first).
 * COFFER_EINVAL if the name is not a valid Maildir++ folder. */
int coffer_maildir_dir_to_folder(const char *dir, size_t n, struct coffer_buf *out);
/* The reverse: canonical folder name to ".Lists.debian" (modified UTF-7). */
int coffer_maildir_folder_to_dir(const char *folder, struct coffer_buf *out);

/* IMAP modified UTF-7 <-> UTF-8 (RFC 3501 5.1.3). Output appended. */
int coffer_mutf7_decode(const char *in, size_t n, struct coffer_buf *out);
int coffer_mutf7_encode(const char *in, size_t n, struct coffer_buf *out);

#endif
