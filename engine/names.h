/*
 * names.h: validation and canonical forms of account and folder names.
 *
 * These names come from argv, stdin, IMAP clients (through the mount) and
 * imported trees: all untrusted. A name that passes here is safe to use as a
 * single path component of the mount, to MAC, and to print.
 *
 * Account names are email addresses: local@domain, at most 254 bytes, folded
 * to lower case (ASCII). The local part is a dot-atom of letters, digits and
 * ! # $ % & ' * + - = ? ^ _ ` { | } ~ (no '/', no quotes); the domain is
 * dot-separated labels of letters, digits and '-', at least two labels, no
 * label starting or ending with '-'. UTF-8 is refused (use IDNA/punycode).
 *
 * Folder names are hierarchical; the canonical separator is '/'. Input may
 * use '/' or '.' (Maildir++ style) as separators. Each component is 1..255
 * bytes of valid UTF-8 with no control characters (< 0x20, 0x7f), no '/',
 * no '.', and is not empty. "INBOX" (any case) as the whole name is the
 * inbox and canonicalises to "INBOX"; the whole name is at most 1024 bytes.
 */
#ifndef COFFER_NAMES_H
#define COFFER_NAMES_H

#include "buf.h"

#include <stddef.h>

/* Writes the canonical (lower-case) account name into out (reset first).
 * COFFER_EINVAL with a detail naming the problem ("account name 'x': ...")
 * otherwise. Input is n bytes (may contain NUL, which is refused). */
int coffer_names_account(const char *in, size_t n, struct coffer_buf *out);

/* Writes the canonical folder name ("Lists/debian", "INBOX") into out
 * (reset first), or COFFER_EINVAL with a detail naming the problem. */
int coffer_names_folder(const char *in, size_t n, struct coffer_buf *out);

/* 1 if the canonical folder name is the inbox. */
int coffer_names_is_inbox(const char *canonical);

/*
 * A safe display form of untrusted bytes for error details: NUL, control
 * characters (C0, DEL, C1), quote, backslash and invalid UTF-8 are written as
 * \xNN; input past COFFER_NAMES_SHOW_MAX bytes is cut (on a character
 * boundary) and "..." appended. Writes a NUL-terminated string into dst, which
 * holds COFFER_NAMES_SHOW_SIZE bytes, and returns dst.
 */
#define COFFER_NAMES_SHOW_MAX 64
#define COFFER_NAMES_SHOW_SIZE (4 * COFFER_NAMES_SHOW_MAX + 4)
const char *coffer_names_show(const void *p, size_t n, char *dst);

#endif
