/*
 * Inside the MongoDB layer: the table of each collection's fields, from
 * which mongo.c makes the validators and mongo_doc.c checks documents.
 * Users of the layer include mongo.h only.
 */
#ifndef CREWD_MONGO_SCHEMA_H
#define CREWD_MONGO_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <bson/bson.h>

#include "mongo.h"

enum mongo_field_type {
    MONGO_FIELD_STRING,     /* bsonType "string" */
    MONGO_FIELD_DATE,       /* bsonType "date" */
    MONGO_FIELD_OBJECT,     /* bsonType "object" */
    MONGO_FIELD_ARRAY,      /* bsonType "array" */
    MONGO_FIELD_ENUM        /* enum of strings */
};

struct mongo_field {
    const char *name;
    enum mongo_field_type type;
    bool required;
    const char *const *choices;     /* MONGO_FIELD_ENUM, NULL-terminated */
    const char *description;        /* shown in the validator; NULL: none */
};

struct mongo_schema {
    const char *name;               /* collection prefix, "execution_logs" */
    const struct mongo_field *fields;
    size_t nfields;
};

const struct mongo_schema *mongo_schema_of(enum mongo_kind kind);

/* The validator document {"$jsonSchema": ...}; out is initialised. */
void mongo_schema_validator(enum mongo_kind kind, bson_t *out);

/* MongoDB's rule for our field names: no '$' first, no '.'. */
bool mongo_field_name_allowed(const char *key);

#endif
