/*
 * Tools: /api/v1/tools and /api/v1/tools/{id}.
 *
 * A tool is a container image (docker_image, a valid image reference)
 * that agents call with arguments described by a JSON Schema (schema).
 * Runs inside the tenant's transaction with the search path set to its
 * schema, so "tools" here is always the calling tenant's table.
 */
#include "config.h"

#include <string.h>

#include "handlers.h"
#include "imageref.h"
#include "resource.h"

/* The select list; the order is the column numbers in write_tool. */
#define TOOL_COLUMNS \
    "id, tenant_id, name, description, docker_image, schema, is_active, " \
    "created_at, updated_at, " SQL_ETAG

enum { TOOL_NAME, TOOL_DESCRIPTION, TOOL_DOCKER_IMAGE, TOOL_SCHEMA,
       TOOL_IS_ACTIVE };

static const struct field_spec tool_fields[] = {
    [TOOL_NAME] = { "name", FIELD_STRING, FIELD_REQUIRED, 255, 0, 0, NULL },
    [TOOL_DESCRIPTION] = { "description", FIELD_TEXT, FIELD_NULLABLE,
                           65535, 0, 0, NULL },
    [TOOL_DOCKER_IMAGE] = { "docker_image", FIELD_STRING, FIELD_REQUIRED,
                            IMAGEREF_MAX, 0, 0, NULL },
    [TOOL_SCHEMA] = { "schema", FIELD_OBJECT, FIELD_REQUIRED, 0, 0, 0,
                      NULL },
    [TOOL_IS_ACTIVE] = { "is_active", FIELD_BOOL, 0, 0, 0, 0, NULL },
};

static const char *const tool_field_columns[] = {
    [TOOL_NAME] = "name",
    [TOOL_DESCRIPTION] = "description",
    [TOOL_DOCKER_IMAGE] = "docker_image",
    [TOOL_SCHEMA] = "schema",
    [TOOL_IS_ACTIVE] = "is_active",
};

static const struct list_filter tool_filters[] = {
    { "is_active", "is_active", FIELD_BOOL, NULL },
};

/* The instance types of JSON Schema (draft 2020-12, section 6.1.1). */
static const char *const json_schema_types[] = {
    "array", "boolean", "integer", "null", "number", "object", "string",
    NULL
};

static void
write_tool(struct request *req, const PGresult *res, int row)
{
    struct json_writer *w = &req->json;

    jw_object_open(w);
    jw_kv_string(w, "id", db_value(res, row, 0));
    jw_kv_string(w, "tenant_id", db_value(res, row, 1));
    jw_kv_string(w, "name", db_value(res, row, 2));
    jw_kv_string(w, "description", db_value(res, row, 3));
    jw_kv_string(w, "docker_image", db_value(res, row, 4));
    jw_kv_raw(w, "schema", db_value(res, row, 5));
    jw_kv_bool(w, "is_active", db_bool(res, row, 6));
    jw_kv_string(w, "created_at", db_timestamp(req->arena, res, row, 7));
    jw_kv_string(w, "updated_at", db_timestamp(req->arena, res, row, 8));
    jw_object_close(w);
}

static bool
is_json_schema_type(struct json_object *v)
{
    if (json_object_get_type(v) != json_type_string)
        return false;
    for (size_t i = 0; json_schema_types[i] != NULL; i++)
        if (strcmp(json_object_get_string(v), json_schema_types[i]) == 0)
            return true;
    return false;
}

/* A type name, or a non-empty array of distinct type names. */
static bool
schema_type_valid(struct json_object *type)
{
    size_t n;

    if (json_object_get_type(type) != json_type_array)
        return is_json_schema_type(type);

    n = json_object_array_length(type);
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        struct json_object *item = json_object_array_get_idx(type, i);

        if (!is_json_schema_type(item))
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_object_get_string(item), json_object_get_string(
                    json_object_array_get_idx(type, j))) == 0)
                return false;
    }
    return true;
}

/*
 * schema is an object already (the field table checked it); text is its
 * serialisation, read back with the same parser as the body.
 */
static void
check_schema(struct request *req, const char *text)
{
    struct json_object *schema = NULL;
    struct json_object *type;
    struct crewd_error parse_err;

    error_clear(&parse_err);
    if (json_parse(text, strlen(text), &schema, &parse_err) < 0 ||
        json_object_get_type(schema) != json_type_object)
        error_field(&req->err, "/schema", "must be a JSON Schema object");
    else if (!json_object_object_get_ex(schema, "type", &type))
        error_field(&req->err, "/schema", "must be a JSON Schema with a "
            "\"type\"");
    else if (!schema_type_valid(type))
        error_field(&req->err, "/schema", "\"type\" must be one of array, "
            "boolean, integer, null, number, object, string, or an array "
            "of distinct ones");
    json_object_put(schema);
}

static int
validate_tool(struct request *req, struct field_value *values,
    bool creating)
{
    const struct field_value *image = &values[TOOL_DOCKER_IMAGE];
    const struct field_value *schema = &values[TOOL_SCHEMA];

    (void)creating;
    if (image->present && image->text != NULL &&
        !imageref_valid(image->text))
        error_field(&req->err, "/docker_image", "must be an image reference"
            " such as registry.example.com:5000/team/tool:1.0 or "
            "tool@sha256:<64 hex digits>");
    if (schema->present && schema->text != NULL)
        check_schema(req, schema->text);
    return req->err.status != 0 ? -1 : 0;
}

const struct resource tools_resource = {
    .table = "tools",
    .collection = "tools",
    .noun = "tool",
    .columns = TOOL_COLUMNS,
    .ncolumns = 10,
    .created_at_column = 7,
    .fields = tool_fields,
    .field_columns = tool_field_columns,
    .nfields = sizeof(tool_fields) / sizeof(tool_fields[0]),
    .filters = tool_filters,
    .nfilters = sizeof(tool_filters) / sizeof(tool_filters[0]),
    .write = write_tool,
    .validate = validate_tool,
};
