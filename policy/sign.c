/*
 * sign.c: detached CMS signatures (see sign.h). OpenSSL errors are turned
 * into one line naming the file that failed; OpenSSL's own error queue is
 * cleared so nothing leaks into later calls.
 */
#include "sign.h"

#include "engine/errors.h"
#include "engine/io.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>

static int ossl_fail(const char *what, const char *file)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	return coffer_err_set(COFFER_EINVAL, "sign: %s %s: %s", what, file, e ? buf : "failed");
}

int coffer_sign_detached(const void *p, size_t n, const char *cert, const char *key,
                         const char *out_path)
{
	BIO *in = NULL, *data = NULL, *out = NULL;
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;
	CMS_ContentInfo *cms = NULL;
	BUF_MEM *mem;
	int rc = 0;

	in = BIO_new_file(cert, "r");
	if (in == NULL || (x = PEM_read_bio_X509(in, NULL, NULL, NULL)) == NULL) {
		rc = ossl_fail("cannot read the certificate", cert);
		goto out;
	}
	BIO_free(in);
	in = BIO_new_file(key, "r");
	if (in == NULL || (pk = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL)) == NULL) {
		rc = ossl_fail("cannot read the private key", key);
		goto out;
	}
	if (!X509_check_private_key(x, pk)) {
		rc = ossl_fail("the private key does not match the certificate", key);
		goto out;
	}
	data = BIO_new_mem_buf(p, (int)n);
	cms = data ? CMS_sign(x, pk, NULL, data, CMS_DETACHED | CMS_BINARY) : NULL;
	if (cms == NULL) {
		rc = ossl_fail("cannot sign with", cert);
		goto out;
	}
	out = BIO_new(BIO_s_mem());
	if (out == NULL || i2d_CMS_bio(out, cms) != 1) {
		rc = ossl_fail("cannot encode the signature for", out_path);
		goto out;
	}
	BIO_get_mem_ptr(out, &mem);
	rc = coffer_io_write_file_atomic(out_path, mem->data, mem->length, 0644);
out:
	BIO_free(in);
	BIO_free(data);
	BIO_free(out);
	CMS_ContentInfo_free(cms);
	X509_free(x);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return rc;
}
