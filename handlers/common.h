/*
 * What every resource handler shares: list pagination with opaque
 * cursors, ETags and If-Match, and the Location of a new resource.
 */
#ifndef CREWD_HANDLERS_COMMON_H
#define CREWD_HANDLERS_COMMON_H

#include <stdbool.h>

#include "request.h"

#define PAGE_LIMIT_DEFAULT 20
#define PAGE_LIMIT_MAX 100

/*
 * A page of a list ordered newest first by (created_at, id).  after_ts
 * and after_id are NULL on the first page, otherwise the position the
 * cursor names (both already checked, safe to bind).
 */
struct page {
    int limit;
    const char *after_ts;
    const char *after_id;
    char limit_text[8];     /* limit + 1, to learn whether more follow */
};

/* Reads ?limit= and ?cursor=; a bad one is a 400. */
int page_read(struct request *req, struct page *page);

/*
 * Writes "next_cursor": the cursor after row last_ts/last_id when more
 * rows follow, null otherwise.
 */
void page_write_next(struct request *req, bool more, const char *last_ts,
    const char *last_id);

/*
 * Adds the ETag header for a version string (the row's updated_at in
 * microseconds, see SQL_ETAG).
 */
void response_etag(struct request *req, const char *version);

/*
 * Checks If-Match against the current version: absent or "*" passes; a
 * list passes when one strong tag matches; otherwise 412.
 */
int precondition_check(struct request *req, const char *version);

/* SQL for the version an ETag carries. */
#define SQL_ETAG "(extract(epoch from updated_at) * 1000000)::bigint"

/* "Location: /api/v1/<collection>/<id>" */
void response_location(struct request *req, const char *collection,
    const char *id);

/*
 * "{a,b,c}": a PostgreSQL array literal, to bind as one parameter
 * ($1::uuid[]) when a statement takes a list.  The items must need no
 * quoting (UUIDs, integers, plain words); anything else is a bug, and
 * fatal.
 */
const char *sql_array_literal(struct arena *a, const char *const *items,
    size_t n);

#endif
