/* internal.h - the compiled schema tree shared by compile.c, validate.c, format.c, uri.c.
 * Not part of the API: only files of libs/schema include it. */
#ifndef DUB_SCHEMA_INTERNAL_H
#define DUB_SCHEMA_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/schema.h"

/* Bits of the "type" keyword. */
enum {
  TYPE_NULL = 1 << 0,
  TYPE_BOOLEAN = 1 << 1,
  TYPE_OBJECT = 1 << 2,
  TYPE_ARRAY = 1 << 3,
  TYPE_NUMBER = 1 << 4,
  TYPE_STRING = 1 << 5,
  TYPE_INTEGER = 1 << 6,
};

/* Formats that are checked; every other format is an annotation. */
enum format {
  FORMAT_NONE = 0,
  FORMAT_DATE_TIME,
  FORMAT_DATE,
  FORMAT_EMAIL,
  FORMAT_URI,
};

struct pattern {
  pcre2_code *re;     /* owned; NULL when absent */
  const char *source; /* borrowed from the document */
};

struct prop {
  const char *name; /* borrowed from the document */
  struct node *schema;
};

struct pattern_prop {
  struct pattern pattern;
  struct node *schema;
};

/* One member of "dependencies": either a schema or a list of required names. */
struct dependency {
  const char *name;
  struct node *schema; /* NULL for the array form */
  const json_t *names; /* array of strings, borrowed; NULL for the schema form */
};

struct node_list {
  struct node **v;
  size_t n;
};

/* One compiled (sub)schema. Every node is owned by the dub_schema's node array;
 * pointers between nodes are borrowed and may form cycles through $ref. Values that
 * point into the document (json_t *, const char *) are borrowed from it: the schema
 * holds a reference to the whole document. An absent limit is -1; an absent subschema
 * is NULL. */
struct node {
  bool is_bool; /* a boolean schema: only bool_value matters */
  bool bool_value;
  struct node *ref; /* set by $ref: every other keyword is ignored */

  unsigned types; /* TYPE_* bits; 0 = any */
  const json_t *enum_values;
  char *enum_message; /* owned, "must be one of ..." */
  const json_t *const_value;

  /* objects */
  const json_t *required;
  struct prop *props; /* owned, sorted by name */
  size_t n_props;
  struct pattern_prop *pattern_props; /* owned */
  size_t n_pattern_props;
  struct node *additional_props;
  struct node *property_names;
  int64_t min_props, max_props;
  struct dependency *deps; /* owned */
  size_t n_deps;

  /* arrays */
  struct node *items;         /* the single-schema form */
  struct node_list item_list; /* the array form */
  bool has_item_list;
  struct node *additional_items;
  struct node *contains;
  int64_t min_items, max_items;
  bool unique_items;

  /* strings */
  int64_t min_length, max_length; /* in code points */
  struct pattern pattern;
  enum format format;
  const char *format_name; /* borrowed */

  /* numbers: borrowed number values */
  const json_t *minimum, *maximum, *exclusive_minimum, *exclusive_maximum, *multiple_of;

  /* combinators */
  struct node_list all_of, any_of, one_of;
  struct node *not_schema, *if_schema, *then_schema, *else_schema;

  /* compile bookkeeping */
  const json_t *json; /* the document value compiled, to find it again for $ref */
  char *where; /* owned: JSON pointer of the schema in the document, for messages */
  int mark;    /* cycle check state */
};

struct dub_schema {
  json_t *doc; /* own reference */
  struct node *root;
  struct node **nodes; /* owned, each node owned */
  size_t n_nodes, cap_nodes;
};

/* format.c: whether 's' ('len' bytes) is valid for 'format'. */
bool schema_format_check(enum format format, const char *s, size_t len);
/* format.c: the format by name, FORMAT_NONE when it is not checked. */
enum format schema_format_lookup(const char *name);

/* regex.c: compiles an ECMA-262 style pattern; returns a new code (free with
 * pcre2_code_free()) or NULL with PCRE2's message in 'err'. */
pcre2_code *schema_regex_compile(const char *source, char *err, size_t err_len);
/* regex.c: searches 's' ('len' bytes) unanchored; 1 match, 0 none, -1 the matcher failed
 * (e.g. a resource limit). Safe to call from several threads on one code. */
int schema_regex_match(const pcre2_code *re, const char *s, size_t len);

/* uri.c: resolves 'ref' against 'base' (both may be ""); returns a new string (free
 * with free()) without an empty trailing fragment "#". */
char *schema_uri_resolve(const char *base, const char *ref);
/* uri.c: decodes %XX escapes of 's' into a new string; NULL if an escape is bad or
 * decodes to a NUL byte. */
char *schema_uri_unescape(const char *s);

#endif
