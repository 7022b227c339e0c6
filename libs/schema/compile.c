/* compile.c - turns a schema document into the node tree: one table of keywords, $ref
 * resolution, refusal of unknown keywords and of $ref loops. */
#include "schema/internal.h"

#include "core/alloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest nesting of subschemas compiled from one place. */
#define MAX_COMPILE_DEPTH 512
/* Longest chain of subschemas applied to one instance value ($ref, allOf, ...). */
#define MAX_SAME_INSTANCE_CHAIN 256
/* Enum values listed in a message before it is cut. */
#define ENUM_MESSAGE_MAX 200

/* A URI named by $id (or the document itself, as "") and the value it names. */
struct id_entry {
  char *uri;
  json_t *json;
};

/* A $ref waiting to be resolved once the whole tree has been compiled. */
struct pending_ref {
  struct node *node;
  char *uri; /* resolved against the base URI in force */
};

/* A member that is not a keyword; an error unless a $ref points into it. */
struct unknown {
  const char *keyword; /* borrowed from the document */
  char *where;
  const json_t *value;
};

struct compiler {
  struct dub_schema *schema;
  struct dub_buf where; /* JSON pointer of the place being compiled */
  int depth;
  struct id_entry *ids;
  size_t n_ids, cap_ids;
  struct pending_ref *refs;
  size_t n_refs, cap_refs;
  struct unknown *unknowns;
  size_t n_unknowns, cap_unknowns;
  const json_t **ref_path; /* every value a $ref pointer walked through */
  size_t n_ref_path, cap_ref_path;
  char *why;
};

typedef enum dub_err (*compile_fn)(struct compiler *c, struct node *n, json_t *value,
                                   const char *base);

/* Makes room for one more element in the array 'v' holding 'n' of 'cap'. */
#define RESERVE(v, n, cap)                                                               \
  do {                                                                                   \
    if((n) >= (cap)) {                                                                   \
      (cap) = (cap) ? (cap)*2 : 8;                                                       \
      (v) = dub_xrealloc((v), (cap) * sizeof *(v));                                      \
    }                                                                                    \
  } while(0)

static const char *where_text(const char *where)
{
  return where[0] ? where : "the root";
}

static const char *here(struct compiler *c)
{
  return where_text(c->where.data ? c->where.data : "");
}

/* Records the first failure's message and returns 'rc'. */
__attribute__((format(printf, 3, 4))) static enum dub_err
fail(struct compiler *c, enum dub_err rc, const char *fmt, ...)
{
  if(c->why)
    return rc;
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  c->why = dub_xmalloc((size_t)(len < 0 ? 0 : len) + 1);
  c->why[0] = '\0';
  va_start(ap, fmt);
  vsnprintf(c->why, (size_t)(len < 0 ? 0 : len) + 1, fmt, ap);
  va_end(ap);
  return rc;
}

/* Appends '/token', escaped as a JSON pointer; returns the length to pop back to. */
static size_t push_where(struct compiler *c, const char *token)
{
  size_t len = c->where.len;
  dub_buf_append(&c->where, "/", 1);
  for(const char *p = token; *p; p++) {
    if(*p == '~')
      dub_buf_append(&c->where, "~0", 2);
    else if(*p == '/')
      dub_buf_append(&c->where, "~1", 2);
    else
      dub_buf_append(&c->where, p, 1);
  }
  return len;
}

static size_t push_index(struct compiler *c, size_t i)
{
  size_t len = c->where.len;
  dub_buf_appendf(&c->where, "/%zu", i);
  return len;
}

static void pop_where(struct compiler *c, size_t len)
{
  c->where.len = len;
  if(c->where.data)
    c->where.data[len] = '\0';
}

static struct node *new_node(struct compiler *c, const json_t *json)
{
  struct dub_schema *schema = c->schema;
  struct node *n = dub_xcalloc(1, sizeof *n);
  n->json = json;
  n->min_props = n->max_props = -1;
  n->min_items = n->max_items = -1;
  n->min_length = n->max_length = -1;
  n->where = dub_xstrdup(c->where.data ? c->where.data : "");
  RESERVE(schema->nodes, schema->n_nodes, schema->cap_nodes);
  schema->nodes[schema->n_nodes++] = n;
  return n;
}

static void add_id(struct compiler *c, const char *uri, json_t *json)
{
  RESERVE(c->ids, c->n_ids, c->cap_ids);
  c->ids[c->n_ids].uri = dub_xstrdup(uri);
  c->ids[c->n_ids].json = json;
  c->n_ids++;
}

static json_t *find_id(struct compiler *c, const char *uri)
{
  for(size_t i = 0; i < c->n_ids; i++)
    if(!strcmp(c->ids[i].uri, uri))
      return c->ids[i].json;
  return NULL;
}

static enum dub_err compile_node(struct compiler *c, json_t *json, const char *base,
                                 struct node **out);

/* Compiles the subschema 'value' found under 'token' of the current place. */
static enum dub_err sub(struct compiler *c, json_t *value, const char *base,
                        const char *token, struct node **out)
{
  size_t len = token ? push_where(c, token) : c->where.len;
  enum dub_err rc = compile_node(c, value, base, out);
  pop_where(c, len);
  return rc;
}

static enum dub_err sub_list(struct compiler *c, json_t *value, const char *base,
                             struct node_list *list, bool allow_empty)
{
  enum dub_err rc = DUB_OK;
  if(!json_is_array(value) || (!allow_empty && !json_array_size(value)))
    return fail(c, DUB_ERR_CONFIG, "%s must be a%s array of schemas", here(c),
                allow_empty ? "n" : " non-empty");
  list->n = json_array_size(value);
  list->v = dub_xcalloc(list->n ? list->n : 1, sizeof *list->v);
  for(size_t i = 0; i < list->n && !rc; i++) {
    size_t len = push_index(c, i);
    rc = compile_node(c, json_array_get(value, i), base, &list->v[i]);
    pop_where(c, len);
  }
  return rc;
}

/* A non-negative integer; 2.0 counts as 2. */
static enum dub_err count(struct compiler *c, const json_t *value, int64_t *out)
{
  if(json_is_integer(value) && json_integer_value(value) >= 0) {
    *out = json_integer_value(value);
    return DUB_OK;
  }
  if(json_is_real(value)) {
    double d = json_real_value(value);
    if(d >= 0 && d < 9.2e18 && floor(d) == d) {
      *out = (int64_t)d;
      return DUB_OK;
    }
  }
  return fail(c, DUB_ERR_CONFIG, "%s must be a non-negative integer", here(c));
}

static enum dub_err compile_pattern(struct compiler *c, const char *source,
                                    struct pattern *out)
{
  char err[256];
  out->source = source;
  out->re = schema_regex_compile(source, err, sizeof err);
  if(!out->re)
    return fail(c, DUB_ERR_CONFIG, "pattern \"%s\" at %s does not compile: %s", source,
                here(c), err);
  return DUB_OK;
}

/* ---- one function per keyword ---- */

static const struct {
  const char *name;
  unsigned bit;
} type_names[] = {
    {"null", TYPE_NULL},       {"boolean", TYPE_BOOLEAN}, {"object", TYPE_OBJECT},
    {"array", TYPE_ARRAY},     {"number", TYPE_NUMBER},   {"string", TYPE_STRING},
    {"integer", TYPE_INTEGER},
};

static unsigned type_bit(const json_t *name)
{
  if(json_is_string(name))
    for(size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
      if(!strcmp(type_names[i].name, json_string_value(name)))
        return type_names[i].bit;
  return 0;
}

static enum dub_err c_type(struct compiler *c, struct node *n, json_t *value,
                           const char *base)
{
  (void)base;
  if(json_is_string(value))
    n->types = type_bit(value);
  else if(json_is_array(value))
    for(size_t i = 0; i < json_array_size(value); i++) {
      unsigned bit = type_bit(json_array_get(value, i));
      if(!bit || (n->types & bit))
        return fail(c, DUB_ERR_CONFIG, "%s must list distinct type names", here(c));
      n->types |= bit;
    }
  if(!n->types)
    return fail(c, DUB_ERR_CONFIG, "%s must be a type name or a non-empty array of them",
                here(c));
  return DUB_OK;
}

static enum dub_err c_enum(struct compiler *c, struct node *n, json_t *value,
                           const char *base)
{
  struct dub_buf msg = DUB_BUF_INIT;
  (void)base;
  if(!json_is_array(value))
    return fail(c, DUB_ERR_CONFIG, "%s must be an array", here(c));
  n->enum_values = value;
  dub_buf_appendf(&msg, "must be one of ");
  for(size_t i = 0; i < json_array_size(value); i++) {
    if(msg.len > ENUM_MESSAGE_MAX) {
      dub_buf_appendf(&msg, ", ...");
      break;
    }
    char *text = json_dumps(json_array_get(value, i), JSON_COMPACT | JSON_ENCODE_ANY);
    dub_buf_appendf(&msg, "%s%s", i ? ", " : "", text ? text : "?");
    free(text);
  }
  n->enum_message = dub_buf_detach(&msg);
  return DUB_OK;
}

static enum dub_err c_const(struct compiler *c, struct node *n, json_t *value,
                            const char *base)
{
  (void)c;
  (void)base;
  n->const_value = value;
  return DUB_OK;
}

static bool string_array(const json_t *value)
{
  if(!json_is_array(value))
    return false;
  for(size_t i = 0; i < json_array_size(value); i++)
    if(!json_is_string(json_array_get(value, i)))
      return false;
  return true;
}

static enum dub_err c_required(struct compiler *c, struct node *n, json_t *value,
                               const char *base)
{
  (void)base;
  if(!string_array(value))
    return fail(c, DUB_ERR_CONFIG, "%s must be an array of strings", here(c));
  n->required = value;
  return DUB_OK;
}

static int prop_cmp(const void *a, const void *b)
{
  const struct prop *pa = a, *pb = b;
  return strcmp(pa->name, pb->name);
}

static enum dub_err c_properties(struct compiler *c, struct node *n, json_t *value,
                                 const char *base)
{
  enum dub_err rc = DUB_OK;
  const char *key;
  json_t *member;
  if(!json_is_object(value))
    return fail(c, DUB_ERR_CONFIG, "%s must be an object of schemas", here(c));
  n->props = dub_xcalloc(json_object_size(value) + 1, sizeof *n->props);
  json_object_foreach(value, key, member)
  {
    struct prop *p = &n->props[n->n_props++];
    p->name = key;
    rc = sub(c, member, base, key, &p->schema);
    if(rc)
      return rc;
  }
  qsort(n->props, n->n_props, sizeof *n->props, prop_cmp);
  return rc;
}

static enum dub_err c_pattern_properties(struct compiler *c, struct node *n,
                                         json_t *value, const char *base)
{
  enum dub_err rc = DUB_OK;
  const char *key;
  json_t *member;
  if(!json_is_object(value))
    return fail(c, DUB_ERR_CONFIG, "%s must be an object of schemas", here(c));
  n->pattern_props = dub_xcalloc(json_object_size(value) + 1, sizeof *n->pattern_props);
  json_object_foreach(value, key, member)
  {
    struct pattern_prop *p = &n->pattern_props[n->n_pattern_props++];
    size_t len = push_where(c, key);
    rc = compile_pattern(c, key, &p->pattern);
    if(!rc)
      rc = compile_node(c, member, base, &p->schema);
    pop_where(c, len);
    if(rc)
      return rc;
  }
  return rc;
}

static enum dub_err c_dependencies(struct compiler *c, struct node *n, json_t *value,
                                   const char *base)
{
  enum dub_err rc = DUB_OK;
  const char *key;
  json_t *member;
  if(!json_is_object(value))
    return fail(c, DUB_ERR_CONFIG, "%s must be an object", here(c));
  n->deps = dub_xcalloc(json_object_size(value) + 1, sizeof *n->deps);
  json_object_foreach(value, key, member)
  {
    struct dependency *d = &n->deps[n->n_deps++];
    d->name = key;
    if(json_is_array(member)) {
      size_t len = push_where(c, key);
      if(!string_array(member))
        rc = fail(c, DUB_ERR_CONFIG, "%s must be an array of strings or a schema",
                  here(c));
      pop_where(c, len);
      d->names = member;
    } else {
      rc = sub(c, member, base, key, &d->schema);
    }
    if(rc)
      return rc;
  }
  return rc;
}

static enum dub_err c_items(struct compiler *c, struct node *n, json_t *value,
                            const char *base)
{
  if(json_is_array(value)) {
    n->has_item_list = true;
    return sub_list(c, value, base, &n->item_list, true);
  }
  return sub(c, value, base, NULL, &n->items);
}

#define SCHEMA_KEYWORD(fn, field)                                                        \
  static enum dub_err fn(struct compiler *c, struct node *n, json_t *value,              \
                         const char *base)                                               \
  {                                                                                      \
    return sub(c, value, base, NULL, &n->field);                                         \
  }
SCHEMA_KEYWORD(c_additional_properties, additional_props)
SCHEMA_KEYWORD(c_property_names, property_names)
SCHEMA_KEYWORD(c_additional_items, additional_items)
SCHEMA_KEYWORD(c_contains, contains)
SCHEMA_KEYWORD(c_not, not_schema)
SCHEMA_KEYWORD(c_if, if_schema)
SCHEMA_KEYWORD(c_then, then_schema)
SCHEMA_KEYWORD(c_else, else_schema)

#define COUNT_KEYWORD(fn, field)                                                         \
  static enum dub_err fn(struct compiler *c, struct node *n, json_t *value,              \
                         const char *base)                                               \
  {                                                                                      \
    (void)base;                                                                          \
    return count(c, value, &n->field);                                                   \
  }
COUNT_KEYWORD(c_min_properties, min_props)
COUNT_KEYWORD(c_max_properties, max_props)
COUNT_KEYWORD(c_min_items, min_items)
COUNT_KEYWORD(c_max_items, max_items)
COUNT_KEYWORD(c_min_length, min_length)
COUNT_KEYWORD(c_max_length, max_length)

#define NUMBER_KEYWORD(fn, field)                                                        \
  static enum dub_err fn(struct compiler *c, struct node *n, json_t *value,              \
                         const char *base)                                               \
  {                                                                                      \
    (void)base;                                                                          \
    if(!json_is_number(value))                                                           \
      return fail(c, DUB_ERR_CONFIG, "%s must be a number", here(c));                    \
    n->field = value;                                                                    \
    return DUB_OK;                                                                       \
  }
NUMBER_KEYWORD(c_minimum, minimum)
NUMBER_KEYWORD(c_maximum, maximum)
NUMBER_KEYWORD(c_exclusive_minimum, exclusive_minimum)
NUMBER_KEYWORD(c_exclusive_maximum, exclusive_maximum)

#define LIST_KEYWORD(fn, field)                                                          \
  static enum dub_err fn(struct compiler *c, struct node *n, json_t *value,              \
                         const char *base)                                               \
  {                                                                                      \
    return sub_list(c, value, base, &n->field, false);                                   \
  }
LIST_KEYWORD(c_all_of, all_of)
LIST_KEYWORD(c_any_of, any_of)
LIST_KEYWORD(c_one_of, one_of)

static enum dub_err c_multiple_of(struct compiler *c, struct node *n, json_t *value,
                                  const char *base)
{
  (void)base;
  if(!json_is_number(value) || json_number_value(value) <= 0)
    return fail(c, DUB_ERR_CONFIG, "%s must be a number greater than 0", here(c));
  n->multiple_of = value;
  return DUB_OK;
}

static enum dub_err c_unique_items(struct compiler *c, struct node *n, json_t *value,
                                   const char *base)
{
  (void)base;
  if(!json_is_boolean(value))
    return fail(c, DUB_ERR_CONFIG, "%s must be a boolean", here(c));
  n->unique_items = json_is_true(value);
  return DUB_OK;
}

static enum dub_err c_pattern(struct compiler *c, struct node *n, json_t *value,
                              const char *base)
{
  (void)base;
  if(!json_is_string(value))
    return fail(c, DUB_ERR_CONFIG, "%s must be a string", here(c));
  return compile_pattern(c, json_string_value(value), &n->pattern);
}

static enum dub_err c_format(struct compiler *c, struct node *n, json_t *value,
                             const char *base)
{
  (void)base;
  if(!json_is_string(value))
    return fail(c, DUB_ERR_CONFIG, "%s must be a string", here(c));
  n->format_name = json_string_value(value);
  n->format = schema_format_lookup(n->format_name);
  return DUB_OK;
}

/* Compiles every member so that mistakes are found even in unused definitions; $ref
 * finds the compiled nodes again by their document value. */
static enum dub_err c_definitions(struct compiler *c, struct node *n, json_t *value,
                                  const char *base)
{
  enum dub_err rc = DUB_OK;
  const char *key;
  json_t *member;
  struct node *unused;
  (void)n;
  if(!json_is_object(value))
    return fail(c, DUB_ERR_CONFIG, "%s must be an object of schemas", here(c));
  json_object_foreach(value, key, member)
  {
    rc = sub(c, member, base, key, &unused);
    if(rc)
      return rc;
  }
  return rc;
}

/* Annotations and keywords handled in compile_node(): the value is only type-checked. */
static enum dub_err c_string(struct compiler *c, struct node *n, json_t *value,
                             const char *base)
{
  (void)n;
  (void)base;
  if(!json_is_string(value))
    return fail(c, DUB_ERR_CONFIG, "%s must be a string", here(c));
  return DUB_OK;
}

static enum dub_err c_annotation(struct compiler *c, struct node *n, json_t *value,
                                 const char *base)
{
  (void)c;
  (void)n;
  (void)value;
  (void)base;
  return DUB_OK;
}

/* Every keyword the validator knows. Anything else is refused. */
static const struct keyword {
  const char *name;
  compile_fn compile;
} keywords[] = {
    {"type", c_type},
    {"enum", c_enum},
    {"const", c_const},
    {"required", c_required},
    {"properties", c_properties},
    {"patternProperties", c_pattern_properties},
    {"additionalProperties", c_additional_properties},
    {"propertyNames", c_property_names},
    {"minProperties", c_min_properties},
    {"maxProperties", c_max_properties},
    {"dependencies", c_dependencies},
    {"items", c_items},
    {"additionalItems", c_additional_items},
    {"contains", c_contains},
    {"minItems", c_min_items},
    {"maxItems", c_max_items},
    {"uniqueItems", c_unique_items},
    {"minLength", c_min_length},
    {"maxLength", c_max_length},
    {"minimum", c_minimum},
    {"maximum", c_maximum},
    {"exclusiveMinimum", c_exclusive_minimum},
    {"exclusiveMaximum", c_exclusive_maximum},
    {"multipleOf", c_multiple_of},
    {"pattern", c_pattern},
    {"format", c_format},
    {"allOf", c_all_of},
    {"anyOf", c_any_of},
    {"oneOf", c_one_of},
    {"not", c_not},
    {"if", c_if},
    {"then", c_then},
    {"else", c_else},
    {"definitions", c_definitions},
    {"$ref", c_string},
    {"$id", c_string},
    {"$schema", c_string},
    {"$comment", c_string},
    {"title", c_annotation},
    {"description", c_annotation},
    {"default", c_annotation},
    {"examples", c_annotation},
    {"readOnly", c_annotation},
    {"writeOnly", c_annotation},
    {"contentMediaType", c_annotation},
    {"contentEncoding", c_annotation},
};

static const struct keyword *keyword_lookup(const char *name)
{
  for(size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
    if(!strcmp(keywords[i].name, name))
      return &keywords[i];
  return NULL;
}

static enum dub_err compile_node(struct compiler *c, json_t *json, const char *base,
                                 struct node **out)
{
  enum dub_err rc = DUB_OK;
  char *own_base = NULL;
  const char *key;
  json_t *value;
  struct node *n = new_node(c, json);
  *out = n;
  if(json_is_boolean(json)) {
    n->is_bool = true;
    n->bool_value = json_is_true(json);
    return DUB_OK;
  }
  if(!json_is_object(json))
    return fail(c, DUB_ERR_CONFIG, "schema at %s must be an object or a boolean",
                here(c));
  if(c->depth >= MAX_COMPILE_DEPTH)
    return fail(c, DUB_ERR_CONFIG, "schema at %s nests deeper than %d levels", here(c),
                MAX_COMPILE_DEPTH);
  c->depth++;
  json_t *ref = json_object_get(json, "$ref");
  json_t *id = json_object_get(json, "$id");
  if(ref) {
    /* Draft 7: beside $ref every keyword (also $id) is ignored; definitions are still
     * compiled so that they can be referred to. */
    if(!json_is_string(ref)) {
      rc = fail(c, DUB_ERR_CONFIG, "$ref at %s must be a string", here(c));
      goto out;
    }
    RESERVE(c->refs, c->n_refs, c->cap_refs);
    c->refs[c->n_refs].node = n;
    c->refs[c->n_refs].uri = schema_uri_resolve(base, json_string_value(ref));
    c->n_refs++;
  } else if(json_is_string(id)) {
    own_base = schema_uri_resolve(base, json_string_value(id));
    add_id(c, own_base, json);
    base = own_base;
  }
  json_object_foreach(json, key, value)
  {
    const struct keyword *kw = keyword_lookup(key);
    size_t len = push_where(c, key);
    if(!kw) {
      RESERVE(c->unknowns, c->n_unknowns, c->cap_unknowns);
      c->unknowns[c->n_unknowns].keyword = key;
      c->unknowns[c->n_unknowns].where = dub_xstrdup(c->where.data);
      c->unknowns[c->n_unknowns].value = value;
      c->n_unknowns++;
    } else if(!ref || kw->compile == c_definitions || kw->compile == c_string) {
      rc = kw->compile(c, n, value, base);
    }
    pop_where(c, len);
    if(rc)
      goto out;
  }
out:
  c->depth--;
  free(own_base);
  return rc;
}

/* ---- $ref ---- */

static struct node *node_of(struct compiler *c, const json_t *json)
{
  for(size_t i = 0; i < c->schema->n_nodes; i++)
    if(c->schema->nodes[i]->json == json)
      return c->schema->nodes[i];
  return NULL;
}

/* Decodes one JSON pointer token (~0 ~1) from '*p' into 'token'. */
static bool pointer_token(const char **p, struct dub_buf *token)
{
  dub_buf_reset(token);
  dub_buf_append(token, "", 0);
  for(; **p && **p != '/'; (*p)++) {
    char ch = **p;
    if(ch == '~') {
      (*p)++;
      if(**p != '0' && **p != '1')
        return false;
      ch = **p == '0' ? '~' : '/';
    }
    dub_buf_append(token, &ch, 1);
  }
  return true;
}

static json_t *pointer_step(json_t *json, const char *token)
{
  if(json_is_object(json))
    return json_object_get(json, token);
  if(!json_is_array(json) || !token[0] || (token[0] == '0' && token[1]))
    return NULL;
  size_t i = 0;
  for(const char *p = token; *p; p++) {
    if(*p < '0' || *p > '9' || i > json_array_size(json))
      return NULL;
    i = i * 10 + (size_t)(*p - '0');
  }
  return json_array_get(json, i);
}

/* Walks the JSON pointer 'pointer' from 'json', following $id for the base URI.
 * Returns the target or NULL; *base becomes the base URI in force there. */
static json_t *walk_pointer(struct compiler *c, json_t *json, const char *pointer,
                            char **base)
{
  struct dub_buf token = DUB_BUF_INIT;
  const char *p = pointer;
  while(json && *p == '/') {
    p++;
    if(!pointer_token(&p, &token)) {
      json = NULL;
      break;
    }
    json = pointer_step(json, token.data);
    json_t *id = json_object_get(json, "$id");
    if(json_is_string(id) && !json_object_get(json, "$ref")) {
      char *next = schema_uri_resolve(*base, json_string_value(id));
      free(*base);
      *base = next;
    }
    RESERVE(c->ref_path, c->n_ref_path, c->cap_ref_path);
    c->ref_path[c->n_ref_path++] = json;
  }
  dub_buf_release(&token);
  return *p ? NULL : json;
}

static enum dub_err resolve_ref(struct compiler *c, size_t i)
{
  enum dub_err rc = DUB_OK;
  struct node *n = c->refs[i].node, *target_node = NULL;
  const char *uri = c->refs[i].uri;
  const char *hash = strchr(uri, '#');
  char *doc_uri = dub_xstrndup(uri, hash ? (size_t)(hash - uri) : strlen(uri));
  char *fragment = schema_uri_unescape(hash ? hash + 1 : "");
  char *base = dub_xstrdup(doc_uri);
  json_t *target = NULL;
  if(!fragment) {
    rc = fail(c, DUB_ERR_CONFIG, "$ref \"%s\" at %s has a bad %%-escape", uri,
              where_text(n->where));
    goto out;
  }
  if(!fragment[0] || fragment[0] == '/') {
    json_t *doc = find_id(c, doc_uri);
    if(!doc) {
      rc = fail(c, DUB_ERR_UNSUPPORTED,
                "$ref \"%s\" at %s names another document; only references within the "
                "schema are supported",
                uri, where_text(n->where));
      goto out;
    }
    target = walk_pointer(c, doc, fragment, &base);
  } else {
    target = find_id(c, uri); /* a plain-name fragment declared with "$id": "#name" */
  }
  if(!target) {
    rc = fail(c, DUB_ERR_CONFIG, "$ref \"%s\" at %s does not resolve", uri,
              where_text(n->where));
    goto out;
  }
  target_node = node_of(c, target);
  if(!target_node) {
    /* A place not compiled yet, e.g. inside a member that is no keyword. */
    pop_where(c, 0);
    dub_buf_append(&c->where, fragment, strlen(fragment));
    rc = compile_node(c, target, base, &target_node);
    pop_where(c, 0);
    if(rc)
      goto out;
  }
  n->ref = target_node;
out:
  free(doc_uri);
  free(fragment);
  free(base);
  return rc;
}

/* Unknown members are refused unless a $ref walked into them: then they hold schemas,
 * like definitions. */
static enum dub_err check_unknowns(struct compiler *c)
{
  for(size_t i = 0; i < c->n_unknowns; i++) {
    bool referenced = false;
    for(size_t j = 0; j < c->n_ref_path && !referenced; j++)
      referenced = c->ref_path[j] == c->unknowns[i].value;
    if(!referenced)
      return fail(c, DUB_ERR_UNSUPPORTED, "unsupported keyword \"%s\" at %s",
                  c->unknowns[i].keyword, where_text(c->unknowns[i].where));
  }
  return DUB_OK;
}

/* ---- loops ---- */

static enum dub_err check_chain(struct compiler *c, struct node *n, int depth);

static enum dub_err check_list(struct compiler *c, const struct node_list *list,
                               int depth)
{
  enum dub_err rc = DUB_OK;
  for(size_t i = 0; i < list->n && !rc; i++)
    rc = check_chain(c, list->v[i], depth);
  return rc;
}

/* Depth-first search over the subschemas that apply to the same instance value: a
 * cycle there would make validation loop forever. */
static enum dub_err check_chain(struct compiler *c, struct node *n, int depth)
{
  enum dub_err rc = DUB_OK;
  if(!n || n->mark == 2)
    return DUB_OK;
  if(n->mark == 1)
    return fail(c, DUB_ERR_CONFIG,
                "schema at %s refers back to itself without descending into the "
                "instance ($ref loop)",
                where_text(n->where));
  if(depth > MAX_SAME_INSTANCE_CHAIN)
    return fail(c, DUB_ERR_CONFIG,
                "schema at %s chains more than %d $ref or combinator levels",
                where_text(n->where), MAX_SAME_INSTANCE_CHAIN);
  n->mark = 1;
  rc = check_chain(c, n->ref, depth + 1);
  if(!rc)
    rc = check_list(c, &n->all_of, depth + 1);
  if(!rc)
    rc = check_list(c, &n->any_of, depth + 1);
  if(!rc)
    rc = check_list(c, &n->one_of, depth + 1);
  if(!rc)
    rc = check_chain(c, n->not_schema, depth + 1);
  if(!rc)
    rc = check_chain(c, n->if_schema, depth + 1);
  if(!rc)
    rc = check_chain(c, n->then_schema, depth + 1);
  if(!rc)
    rc = check_chain(c, n->else_schema, depth + 1);
  for(size_t i = 0; i < n->n_deps && !rc; i++)
    rc = check_chain(c, n->deps[i].schema, depth + 1);
  n->mark = 2;
  return rc;
}

static void compiler_release(struct compiler *c)
{
  dub_buf_release(&c->where);
  for(size_t i = 0; i < c->n_ids; i++)
    free(c->ids[i].uri);
  free(c->ids);
  for(size_t i = 0; i < c->n_refs; i++)
    free(c->refs[i].uri);
  free(c->refs);
  for(size_t i = 0; i < c->n_unknowns; i++)
    free(c->unknowns[i].where);
  free(c->unknowns);
  free(c->ref_path);
  free(c->why);
}

enum dub_err dub_schema_compile(json_t *doc, struct dub_schema **out, char **why)
{
  enum dub_err rc = DUB_OK;
  struct compiler c;
  struct dub_schema *schema = NULL;
  memset(&c, 0, sizeof c);
  if(why)
    *why = NULL;
  if(!doc || !out) {
    rc = fail(&c, DUB_ERR_INVALID, "no schema document or result given");
    goto out;
  }
  *out = NULL;
  schema = dub_xcalloc(1, sizeof *schema);
  schema->doc = json_incref(doc);
  c.schema = schema;
  add_id(&c, "", doc); /* "#..." resolves here unless the root names itself */
  rc = compile_node(&c, doc, "", &schema->root);
  if(rc)
    goto out;
  for(size_t i = 0; i < c.n_refs && !rc; i++)
    rc = resolve_ref(&c, i);
  if(rc)
    goto out;
  rc = check_unknowns(&c);
  if(rc)
    goto out;
  for(size_t i = 0; i < schema->n_nodes && !rc; i++)
    rc = check_chain(&c, schema->nodes[i], 0);
  if(rc)
    goto out;
  *out = schema;
  schema = NULL;
out:
  if(rc && why) {
    *why = c.why ? c.why : dub_xstrdup(dub_err_message(rc));
    c.why = NULL;
  }
  compiler_release(&c);
  dub_schema_free(schema);
  return rc;
}

enum dub_err dub_schema_load_file(const char *path, struct dub_schema **out, char **why)
{
  enum dub_err rc = DUB_OK;
  json_error_t error;
  char *inner = NULL;
  json_t *doc = NULL;
  if(why)
    *why = NULL;
  if(!path || !out) {
    rc = DUB_ERR_INVALID;
    if(why)
      *why = dub_xstrdup("no schema path or result given");
    goto out;
  }
  *out = NULL;
  doc = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
  if(!doc) {
    bool io = json_error_code(&error) == json_error_cannot_open_file;
    rc = io ? DUB_ERR_IO : DUB_ERR_MALFORMED;
    if(why)
      *why =
          io ? dub_xasprintf("%s: %s", path, error.text)
             : dub_xasprintf("%s:%d:%d: %s", path, error.line, error.column, error.text);
    goto out;
  }
  rc = dub_schema_compile(doc, out, why ? &inner : NULL);
  if(rc && why)
    *why = dub_xasprintf("%s: %s", path, inner);
out:
  free(inner);
  json_decref(doc);
  return rc;
}

static void free_list(struct node_list *list)
{
  free(list->v);
}

void dub_schema_free(struct dub_schema *schema)
{
  if(!schema)
    return;
  for(size_t i = 0; i < schema->n_nodes; i++) {
    struct node *n = schema->nodes[i];
    free(n->enum_message);
    free(n->props);
    for(size_t j = 0; j < n->n_pattern_props; j++)
      pcre2_code_free(n->pattern_props[j].pattern.re);
    free(n->pattern_props);
    free(n->deps);
    free_list(&n->item_list);
    free_list(&n->all_of);
    free_list(&n->any_of);
    free_list(&n->one_of);
    pcre2_code_free(n->pattern.re);
    free(n->where);
    free(n);
  }
  free(schema->nodes);
  json_decref(schema->doc);
  free(schema);
}
