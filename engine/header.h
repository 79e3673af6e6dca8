/*
 * header.h: just enough RFC 5322 parsing for listings and for deciding that
 * input is a message at all.
 *
 * Input is untrusted and may be anything: CRLF or bare LF, NUL bytes, lines
 * of megabytes, no body separator. The parser looks only at the header
 * section inside the bytes it is given (callers pass at most the first
 * COFFER_HEADER_SCAN bytes of a message), never allocates more than a small
 * multiple of that, and never fails on malformed input: it returns what it
 * could find.
 */
#ifndef COFFER_HEADER_H
#define COFFER_HEADER_H

#include <stddef.h>

#define COFFER_HEADER_SCAN (256u * 1024u)
#define COFFER_HEADER_FIELD_MAX 998 /* decoded field values are cut here */

/*
 * 1 if p looks like the start of a message: after an optional mbox "From "
 * line, the first line is a header field ("Name: value", name of printable
 * ASCII without ':' or space). 0 otherwise. n may be short (the first chunk
 * of input).
 */
int coffer_header_is_message(const void *p, size_t n);

struct coffer_header_summary {
	char *from;       /* decoded From: as UTF-8, or NULL if absent */
	char *subject;    /* decoded Subject:, or NULL */
	char *date;       /* raw Date: value, unfolded, or NULL */
	char *message_id; /* raw Message-ID:, or NULL */
};

/*
 * Finds From, Subject, Date and Message-ID (first occurrence, case-
 * insensitive), unfolds them, decodes RFC 2047 encoded-words (B and Q, any
 * charset iconv knows; unknown charsets are kept as raw text) into UTF-8,
 * replaces control characters and invalid UTF-8 with U+FFFD or '?', and cuts
 * each at COFFER_HEADER_FIELD_MAX bytes. 0 or COFFER_ENOMEM. Free with
 * coffer_header_summary_free().
 */
int coffer_header_summary(const void *p, size_t n, struct coffer_header_summary *s);
void coffer_header_summary_free(struct coffer_header_summary *s);

#endif
