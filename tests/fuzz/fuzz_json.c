/*
 * JSON bodies -> validated values: the strict parser (lib/json.c), then
 * every resource's field table as a create and as a merge patch
 * (resource_read_body(): lib/fields.c and the resource's own checks).
 *
 * Besides not crashing, what the parser accepts must survive a round
 * trip: written back with the JSON writer, it parses again to the same
 * text; and every value a body yields is what its field promises (the
 * text bound as the SQL parameter of its type).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "resource.h"
#include "routes.h"

#define RESOURCES_MAX 32

static const struct resource *resources[RESOURCES_MAX];
static size_t nresources;

/* Every resource the route table serves, once. */
static void
find_resources(void)
{
    if (nresources > 0)
        return;
    for (size_t i = 0; i < routes_count; i++) {
        const struct resource *r = routes[i].resource;
        size_t k;

        if (r == NULL)
            continue;
        for (k = 0; k < nresources && resources[k] != r; k++)
            continue;
        if (k == nresources && nresources < RESOURCES_MAX)
            resources[nresources++] = r;
    }
}

static void
put(void *object)
{
    json_object_put(object);
}

/* value written by the JSON writer, into the arena. */
static const char *
written(struct request *req, struct json_object *value)
{
    struct buf out = BUF_INIT;
    struct json_writer w;
    const char *text;

    jw_init(&w, &out);
    jw_object(&w, value);
    text = arena_strdup(req->arena, buf_cstr(&out));
    buf_free(&out);
    return text;
}

static void
round_trip(struct request *req, struct json_object *value)
{
    struct json_object *again = NULL, *merged;
    struct crewd_error err;
    const char *first, *second;

    first = written(req, value);
    error_clear(&err);
    if (json_parse(first, strlen(first), &again, &err) < 0)
        abort();    /* the writer wrote what the parser refuses */
    arena_defer(req->arena, put, again);
    second = written(req, again);
    if (strcmp(first, second) != 0)
        abort();    /* a value changed on its way round */

    /* A merge patch of a value onto itself. */
    merged = json_merge_patch(value, value);
    arena_defer(req->arena, put, merged);
}

/* The value of an accepted field is what its spec says it is. */
static void
check_value(struct request *req, const struct field_spec *spec,
    const struct field_value *v)
{
    struct json_object *parsed = NULL;
    struct crewd_error err;
    char id[UUID_TEXT_LEN + 1];
    long long n;
    char *end;
    bool found = false;

    if (!v->present || v->is_null)
        return;
    if (v->text == NULL)
        abort();
    error_clear(&err);
    switch (spec->type) {
    case FIELD_STRING:
    case FIELD_TEXT:
        if (!json_utf8_valid(v->text, strlen(v->text)))
            abort();
        if (spec->type == FIELD_STRING &&
            fields_check_text(spec, v->text, strlen(v->text), "/", &err))
            abort();
        break;
    case FIELD_BOOL:
        if (strcmp(v->text, "true") != 0 && strcmp(v->text, "false") != 0)
            abort();
        break;
    case FIELD_INT:
        errno = 0;
        n = strtoll(v->text, &end, 10);
        if (errno != 0 || *end != '\0' || end == v->text ||
            n < spec->min || n > spec->max)
            abort();
        break;
    case FIELD_OBJECT:
        if (json_parse(v->text, strlen(v->text), &parsed, &err) < 0 ||
            parsed == NULL)
            abort();
        arena_defer(req->arena, put, parsed);
        if (!json_object_is_type(parsed, json_type_object) ||
            strlen(v->text) > FIELD_OBJECT_MAX_BYTES)
            abort();
        break;
    case FIELD_UUID:
        if (!uuid_parse(v->text, strlen(v->text), id) ||
            strcmp(id, v->text) != 0)
            abort();
        break;
    case FIELD_ENUM:
        for (size_t i = 0; spec->choices[i] != NULL; i++)
            found = found || strcmp(spec->choices[i], v->text) == 0;
        if (!found)
            abort();
        break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct field_value values[32];
    struct json_object *value = NULL;
    struct request req;
    int rc;

    fuzz_request_begin(&req);
    fuzz_request_tenant(&req);
    find_resources();
    req.content_type = "application/json";
    req.body = fuzz_cstring(&req, data, size);
    req.body_len = size;

    rc = json_parse(req.body, req.body_len, &value, &req.err);
    if ((rc == 0) != (req.err.status == 0) ||
        (rc < 0 && req.err.status != 400))
        abort();
    if (rc == 0 && value != NULL) {
        arena_defer(req.arena, put, value);
        round_trip(&req, value);
    }

    for (size_t i = 0; i < nresources; i++) {
        for (int creating = 0; creating <= 1; creating++) {
            if (resources[i]->nfields > sizeof(values) / sizeof(values[0]))
                abort();
            error_clear(&req.err);
            rc = resource_read_body(&req, resources[i], creating, values);

            /* 503: a check that asks the database (a flow's refs). */
            if ((rc == 0) != (req.err.status == 0) ||
                (rc < 0 && req.err.status != 400 &&
                 req.err.status != 422 && req.err.status != 503))
                abort();
            for (size_t k = 0; rc == 0 && k < resources[i]->nfields; k++)
                check_value(&req, &resources[i]->fields[k], &values[k]);
        }
    }

    fuzz_request_end(&req);
    return 0;
}
