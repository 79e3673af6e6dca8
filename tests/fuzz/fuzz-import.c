/*
 * fuzz-import.c: libFuzzer target for the parsers of maildir/import.c that
 * read untrusted input from the Maildir being imported: the dovecot-keywords
 * file (coffer_import_keywords_parse), Maildir++ folder directory names
 * (coffer_import_folder_name, with and without a prefix), directory entry
 * classification and the escaping of untrusted paths for messages.
 *
 * Checks: keyword names returned are 1..255 printable ASCII without
 * space or ()[]{}%*"\ ; escape output is printable ASCII; no crash.
 */
#include "engine/buf.h"
#include "engine/errors.h"
#include "engine/folder.h"
#include "maildir/import.h"
#include "fuzz-util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *names[26];
	unsigned ignored = 0;
	struct coffer_buf out = COFFER_BUF_INIT;
	char *z;

	if (coffer_import_keywords_parse((const char *)data, size, names, &ignored) == 0) {
		for (int i = 0; i < 26; i++) {
			size_t n;

			if (names[i] == NULL)
				continue;
			n = strlen(names[i]);
			if (n == 0 || n > 255)
				abort();
			for (size_t k = 0; k < n; k++) {
				unsigned char c = (unsigned char)names[i][k];

				if (c <= 0x20 || c >= 0x7f || strchr("()[]{}%*\"\\", c))
					abort();
			}
		}
		coffer_folder_keywords_free(names);
	}
	coffer_import_folder_name((const char *)data, size, NULL, &out);
	coffer_buf_free(&out);
	coffer_import_folder_name((const char *)data, size, "Imported/Old", &out);
	coffer_buf_free(&out);
	if (coffer_import_escape(&out, (const char *)data, size) == 0 &&
	    !fuzz_no_ctl(out.data, out.len))
		abort();
	coffer_buf_free(&out);
	z = fuzz_cstr(data, size);
	(void)coffer_import_classify(z);
	free(z);
	return 0;
}
