/* schema.h - a JSON Schema (draft 7 subset) validator on top of Jansson and PCRE2. */
#ifndef DUB_SCHEMA_SCHEMA_H
#define DUB_SCHEMA_SCHEMA_H

#include "core/err.h"

#include <jansson.h>

/* Most violations dub_schema_validate() reports; further ones are dropped. */
#define DUB_SCHEMA_MAX_ERRORS 100
/* Deepest instance nesting the validator descends into; deeper values are a violation
 * with keyword "depth" instead of a stack overflow. */
#define DUB_SCHEMA_MAX_DEPTH 512

/* A compiled schema: immutable after dub_schema_compile(), so any number of threads may
 * validate against one schema at the same time. */
struct dub_schema;

/* Compiles the schema document 'doc' into a tree that validation walks without parsing:
 * regular expressions are compiled, $ref resolved, keyword values checked.
 *
 * 'doc' is borrowed; the schema takes its own reference and the caller must not modify
 * the document afterwards. On success *out is a new schema; free with
 * dub_schema_free(). 'why' may be NULL; otherwise it is set to NULL on success and to a
 * new lower-case message (free with free()) naming the keyword and the JSON pointer of
 * its place in the schema on failure.
 *
 * Supported: the draft 7 validation vocabulary (type, enum, const, required,
 * properties, additionalProperties, patternProperties, propertyNames,
 * minProperties, maxProperties, dependencies, items, additionalItems, contains,
 * minItems, maxItems, uniqueItems, minLength, maxLength, minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum, multipleOf, pattern, format, allOf, anyOf, oneOf,
 * not, if/then/else), boolean schemas, definitions, and $ref within the document
 * ("#", "#/json/pointer" with ~0 ~1 and %-escapes, and URIs named by "$id" inside the
 * document). Annotations are accepted and ignored: $schema, $id, $comment, title,
 * description, default, examples, readOnly, writeOnly, contentMediaType,
 * contentEncoding. Formats checked: date-time (RFC 3339), date, email (simple), uri;
 * other formats are annotations. Patterns are searched unanchored, as in ECMA-262.
 *
 * Errors:
 *  - DUB_ERR_UNSUPPORTED: a keyword this validator does not implement (it is never
 *    silently ignored; a non-keyword member is allowed only when a $ref points into it,
 *    which makes it a container of schemas like "definitions"), or a $ref to another
 *    document.
 *  - DUB_ERR_CONFIG: anything else that makes the schema invalid: a keyword value of
 *    the wrong type, a regular expression that does not compile, a $ref that does not
 *    resolve, a $ref cycle that never descends into the instance (it would loop).
 *  - DUB_ERR_INVALID: doc or out is NULL. */
enum dub_err dub_schema_compile(json_t *doc, struct dub_schema **out, char **why);

/* Reads the JSON file 'path' (duplicate keys refused) and compiles it as above. Errors
 * are DUB_ERR_IO (cannot be read), DUB_ERR_MALFORMED (not JSON) or those of
 * dub_schema_compile(); *why starts with the path. */
enum dub_err dub_schema_load_file(const char *path, struct dub_schema **out, char **why);

/* Validates 'instance' (borrowed, not modified) against 'schema'. Returns DUB_OK when
 * it is valid and DUB_ERR_SCHEMA when it is not; DUB_ERR_INVALID when an argument is
 * NULL and DUB_ERR_INTERNAL when Jansson could not allocate the error list.
 *
 * 'errors' may be NULL when the caller only wants the verdict (validation then stops at
 * the first violation). Otherwise *errors is set to NULL on DUB_OK and to a new array
 * (free with json_decref()) on DUB_ERR_SCHEMA, one object per violation, at most
 * DUB_SCHEMA_MAX_ERRORS of them:
 *   {"pointer": "/data/subject/unit_id", "message": "is required",
 *    "keyword": "required"}
 * "pointer" is a JSON pointer into the instance ("" for the instance itself) and
 * "message" is lower case. Violations inside anyOf, oneOf, not and if are summarised by
 * one element of that keyword. */
enum dub_err dub_schema_validate(const struct dub_schema *schema, const json_t *instance,
                                 json_t **errors);

/* One line for an error array of dub_schema_validate(): "<prefix>: /pointer: message;
 * /other: message" ("/" for the instance itself). Returns a new string; free with
 * free(). */
char *dub_schema_describe(const char *prefix, const json_t *errors);

/* Frees the schema and drops its reference to the document. NULL is a no-op. */
void dub_schema_free(struct dub_schema *schema);

#endif
