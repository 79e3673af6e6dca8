/*
 * tap.h: a minimal TAP producer for Coffer's unit tests.
 *
 * Usage: call ok(cond, "name", ...) per assertion and `return tap_done();`
 * from main. tap_done() prints the plan and returns 0 if every assertion
 * passed, 1 otherwise. Tests that need a missing facility call tap_skip_all()
 * which prints "1..0 # SKIP" and returns 77.
 */
#ifndef COFFER_TAP_H
#define COFFER_TAP_H

int ok_at(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define ok(cond, ...) ok_at(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tap_done(void);
int tap_skip_all(const char *why);
/* A fresh empty directory under $TMPDIR (or /tmp) for this test; the path is
 * static and valid until exit. It is removed at exit when all tests pass. */
const char *tap_tmpdir(void);

#endif
