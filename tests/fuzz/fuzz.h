/*
 * What the fuzz targets share.
 *
 * Each target defines LLVMFuzzerTestOneInput(), the entry point of
 * libFuzzer (clang -fsanitize=fuzzer, see scripts/fuzz).  Without
 * libFuzzer, standalone.c supplies a main() that feeds the target each
 * file named on its command line, which is how make check runs every
 * target over its corpus (tests/fuzz/corpus/TARGET/).
 *
 * The world below is what a worker has, minus its connections: the
 * default configuration with cheap password hashing, a fixed token
 * secret and master key (so seeds can carry valid tokens and cursors),
 * a database handle that was never opened (every statement answers
 * 503, as while PostgreSQL is down) and an unconfigured MongoDB.  A
 * target may run real handlers with it: everything up to the first
 * statement runs for real.
 */
#ifndef CREWD_FUZZ_H
#define CREWD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"

/* The fixed token secret: 32 bytes of 0x2a ('*'). */
#define FUZZ_SECRET_BYTE 0x2a
#define FUZZ_SECRET_LEN 32

/* The fixed "now" tokens are checked at: 2023-11-14T22:13:20Z. */
#define FUZZ_NOW 1700000000

/* The tenant every tenant route runs for, and its admin. */
#define FUZZ_TENANT_ID "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define FUZZ_TENANT_SLUG "acme"
#define FUZZ_USER_ID "11111111-2222-4333-8444-555555555555"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Sets the world up on first use; later calls do nothing. */
void fuzz_init(void);

const struct crewd_conf *fuzz_conf(void);
const struct token_secret *fuzz_secret(void);
const struct tenant *fuzz_tenant(void);

/* Starts a request as the worker does, with every parameter "". */
void fuzz_request_begin(struct request *req);

/*
 * Makes req one of the fuzz tenant's (whatever its TENANT_SLUG), by its
 * admin, as if the token checks had passed.
 */
void fuzz_request_tenant(struct request *req);

/*
 * Writes the response (checking that exactly one was made) and releases
 * everything the request allocated.
 */
void fuzz_request_end(struct request *req);

/*
 * A NUL-terminated copy of data[0..size) from the request's arena: the
 * parsers take C strings, as libfcgi delivers them.
 */
char *fuzz_cstring(struct request *req, const uint8_t *data, size_t size);

#endif
