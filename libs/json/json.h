/* json.h - strict JSON parsing and small typed getters over Jansson. */
#ifndef DUB_JSON_JSON_H
#define DUB_JSON_JSON_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Parses exactly one JSON value from 'len' bytes: valid UTF-8, no duplicate object keys,
 * no NUL bytes in strings, nesting below Jansson's depth limit. On success *out is a new
 * reference. On failure returns DUB_ERR_MALFORMED and *why is a new message (free with
 * free()) naming the line, column and problem. */
enum dub_err dub_json_parse(const char *text, size_t len, json_t **out, char **why);

/* Reads and parses a file the same way; errors name the file. DUB_ERR_IO when it cannot
 * be read, DUB_ERR_MALFORMED when it does not parse. */
enum dub_err dub_json_load_file(const char *path, json_t **out, char **why);

/* Compact serialisation with keys in insertion order; returns a new string (free with
 * free()). Aborts only if Jansson cannot allocate. */
char *dub_json_dump(const json_t *value);
/* The same text appended to 'buf' (a struct dub_buf of core/alloc.h), without the
 * string of its own that dub_json_dump() allocates and copies. */
struct dub_buf;
void dub_json_dump_buf(const json_t *value, struct dub_buf *buf);

/* The string member 'key' of 'obj', or NULL when absent or not a string. Borrowed from
 * 'obj'. */
const char *dub_json_str(const json_t *obj, const char *key);
/* The integer member 'key' of 'obj' (a JSON integer); false when absent or not one. */
bool dub_json_int(const json_t *obj, const char *key, long long *out);
/* The boolean member 'key'; 'def' when absent or not a boolean. */
bool dub_json_bool(const json_t *obj, const char *key, bool def);
/* Whether 'arr' (a JSON array of strings) contains 's'. False when arr is not an array.
 */
bool dub_json_array_has_str(const json_t *arr, const char *s);

/* Follows an RFC 6901 JSON pointer ("" is the root, "/a/0/b~1c"). Borrowed result, or
 * NULL when the pointer does not resolve. */
json_t *dub_json_pointer(const json_t *root, const char *pointer);

#endif
