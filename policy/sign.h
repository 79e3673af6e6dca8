/*
 * sign.h: detached CMS signatures of reports, the OpenSSL adapter for
 * signing (the only file here that includes OpenSSL's CMS headers).
 *
 * The signature is DER, made with CMS_DETACHED | CMS_BINARY, so stock
 * OpenSSL verifies it:
 *   openssl cms -verify -binary -inform DER -in FILE.p7s -content FILE \
 *           -CAfile CERT -purpose any -out /dev/null
 * (docs/operations.md, "Handing a report to an auditor").
 */
#ifndef COFFER_SIGN_H
#define COFFER_SIGN_H

#include <stddef.h>

/* Signs the n bytes at p with the certificate and private key in PEM files
 * cert and key, writing the DER signature to out_path (atomically). */
int coffer_sign_detached(const void *p, size_t n, const char *cert, const char *key,
                         const char *out_path);

#endif
