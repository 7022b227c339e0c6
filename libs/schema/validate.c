/* validate.c - walks the compiled tree over an instance and collects the violations. */
#include "schema/internal.h"

#include "core/alloc.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most nested validate() calls at once: bounds the stack whatever the schema. */
#define MAX_FRAMES 4096

/* The state of one dub_schema_validate() call; the schema itself is never written. */
struct vctx {
  json_t *errors; /* NULL: the caller only wants the verdict */
  size_t n_errors;
  bool quiet;          /* inside anyOf, oneOf, not, if, contains, propertyNames */
  bool oom;            /* Jansson could not allocate an error */
  struct dub_buf path; /* JSON pointer of the instance value being validated */
  int depth;           /* tokens in 'path' */
  int frames;
};

static bool validate(struct vctx *c, const struct node *n, const json_t *inst);

/* Whether to stop at the first violation: nothing is being recorded. */
static bool stop(const struct vctx *c)
{
  return c->quiet || !c->errors || c->n_errors >= DUB_SCHEMA_MAX_ERRORS;
}

/* Records one violation at the current path. */
__attribute__((format(printf, 3, 4))) static void
report(struct vctx *c, const char *keyword, const char *fmt, ...)
{
  if(stop(c))
    return;
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *msg = dub_xmalloc((size_t)(len < 0 ? 0 : len) + 1);
  msg[0] = '\0';
  va_start(ap, fmt);
  vsnprintf(msg, (size_t)(len < 0 ? 0 : len) + 1, fmt, ap);
  va_end(ap);
  json_t *e = json_pack("{s:s, s:s, s:s}", "pointer", c->path.data, "message", msg,
                        "keyword", keyword);
  if(!e || json_array_append_new(c->errors, e))
    c->oom = true;
  else
    c->n_errors++;
  free(msg);
}

/* Appends '/key' to the path; returns the length to pop back to. */
static size_t push_key(struct vctx *c, const char *key)
{
  size_t len = c->path.len;
  dub_buf_append(&c->path, "/", 1);
  for(const char *p = key; *p; p++) {
    if(*p == '~')
      dub_buf_append(&c->path, "~0", 2);
    else if(*p == '/')
      dub_buf_append(&c->path, "~1", 2);
    else
      dub_buf_append(&c->path, p, 1);
  }
  c->depth++;
  return len;
}

static size_t push_index(struct vctx *c, size_t i)
{
  size_t len = c->path.len;
  dub_buf_appendf(&c->path, "/%zu", i);
  c->depth++;
  return len;
}

static void pop(struct vctx *c, size_t len)
{
  c->path.len = len;
  c->path.data[len] = '\0';
  c->depth--;
}

/* Validates without recording anything, stopping at the first violation. */
static bool quietly(struct vctx *c, const struct node *n, const json_t *inst)
{
  bool saved = c->quiet;
  c->quiet = true;
  bool ok = validate(c, n, inst);
  c->quiet = saved;
  return ok;
}

/* ---- values ---- */

static long double number(const json_t *j)
{
  return json_is_integer(j) ? (long double)json_integer_value(j)
                            : (long double)json_real_value(j);
}

/* Compares two numbers exactly: long double holds every int64 and every double. */
static int number_cmp(const json_t *a, const json_t *b)
{
  if(json_is_integer(a) && json_is_integer(b)) {
    json_int_t x = json_integer_value(a), y = json_integer_value(b);
    return (x > y) - (x < y);
  }
  long double x = number(a), y = number(b);
  return (x > y) - (x < y);
}

static bool multiple_of(const json_t *value, const json_t *divisor)
{
  if(json_is_integer(value) && json_is_integer(divisor))
    return json_integer_value(value) % json_integer_value(divisor) == 0;
  double q = json_number_value(value) / json_number_value(divisor);
  if(!isfinite(q))
    return false;
  return fabs(q - nearbyint(q)) <= 1e-9 * fmax(1.0, fabs(q));
}

/* JSON equality where 1 == 1.0. 1 equal, 0 not, -1 nested too deeply to tell. */
static int equal(const json_t *a, const json_t *b, int depth)
{
  if(json_is_number(a) && json_is_number(b))
    return number_cmp(a, b) == 0;
  if(json_typeof(a) != json_typeof(b))
    return 0;
  if(depth > DUB_SCHEMA_MAX_DEPTH && (json_is_array(a) || json_is_object(a)))
    return -1;
  switch(json_typeof(a)) {
  case JSON_STRING:
    return json_string_length(a) == json_string_length(b) &&
           !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
  case JSON_ARRAY:
    if(json_array_size(a) != json_array_size(b))
      return 0;
    for(size_t i = 0; i < json_array_size(a); i++) {
      int r = equal(json_array_get(a, i), json_array_get(b, i), depth + 1);
      if(r != 1)
        return r;
    }
    return 1;
  case JSON_OBJECT: {
    const char *key;
    json_t *value;
    if(json_object_size(a) != json_object_size(b))
      return 0;
    json_object_foreach((json_t *)a, key, value)
    {
      const json_t *other = json_object_get(b, key);
      int r = other ? equal(value, other, depth + 1) : 0;
      if(r != 1)
        return r;
    }
    return 1;
  }
  default:
    return 1; /* null, true, false: the types matched */
  }
}

/* Shortest text that reads back as the same number. */
static const char *number_text(const json_t *j, char buf[40])
{
  if(json_is_integer(j)) {
    snprintf(buf, 40, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    return buf;
  }
  double d = json_real_value(j);
  snprintf(buf, 40, "%.15g", d);
  if(strtod(buf, NULL) != d)
    snprintf(buf, 40, "%.17g", d);
  return buf;
}

static bool type_matches(unsigned types, const json_t *inst)
{
  switch(json_typeof(inst)) {
  case JSON_NULL:
    return types & TYPE_NULL;
  case JSON_TRUE:
  case JSON_FALSE:
    return types & TYPE_BOOLEAN;
  case JSON_OBJECT:
    return types & TYPE_OBJECT;
  case JSON_ARRAY:
    return types & TYPE_ARRAY;
  case JSON_STRING:
    return types & TYPE_STRING;
  case JSON_INTEGER:
    return types & (TYPE_NUMBER | TYPE_INTEGER);
  case JSON_REAL: {
    double d = json_real_value(inst);
    return (types & TYPE_NUMBER) || ((types & TYPE_INTEGER) && floor(d) == d);
  }
  }
  return false;
}

static void report_type(struct vctx *c, unsigned types)
{
  static const char *const names[] = {"null",   "boolean", "object", "array",
                                      "number", "string",  "integer"};
  struct dub_buf msg = DUB_BUF_INIT;
  int listed = 0, total = 0;
  for(unsigned bit = 0; bit < 7; bit++)
    total += (types >> bit) & 1;
  for(unsigned bit = 0; bit < 7; bit++) {
    if(!((types >> bit) & 1))
      continue;
    listed++;
    dub_buf_appendf(&msg, "%s%s",
                    listed == 1       ? ""
                    : listed == total ? " or "
                                      : ", ",
                    names[bit]);
  }
  report(c, "type", "must be of type %s", msg.data);
  dub_buf_release(&msg);
}

/* ---- keywords by instance type ---- */

static bool check_any(struct vctx *c, const struct node *n, const json_t *inst)
{
  bool ok = true;
  if(n->types && !type_matches(n->types, inst)) {
    report_type(c, n->types);
    ok = false;
    if(stop(c))
      goto out;
  }
  if(n->enum_values) {
    bool found = false;
    for(size_t i = 0; i < json_array_size(n->enum_values) && !found; i++)
      found = equal(inst, json_array_get(n->enum_values, i), c->depth) == 1;
    if(!found) {
      report(c, "enum", "%s", n->enum_message);
      ok = false;
      if(stop(c))
        goto out;
    }
  }
  if(n->const_value && equal(inst, n->const_value, c->depth) != 1) {
    char *text = json_dumps(n->const_value, JSON_COMPACT | JSON_ENCODE_ANY);
    report(c, "const", "must be equal to %s", text ? text : "the constant");
    free(text);
    ok = false;
  }
out:
  return ok;
}

static const struct prop *find_prop(const struct node *n, const char *key)
{
  size_t lo = 0, hi = n->n_props;
  while(lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int cmp = strcmp(key, n->props[mid].name);
    if(!cmp)
      return &n->props[mid];
    if(cmp < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

/* additionalProperties, properties, patternProperties and propertyNames of one
 * member. */
static bool check_member(struct vctx *c, const struct node *n, const char *key,
                         const json_t *value)
{
  bool ok = true, matched = false;
  const struct prop *p = find_prop(n, key);
  if(p) {
    matched = true;
    ok = validate(c, p->schema, value);
    if(!ok && stop(c))
      goto out;
  }
  for(size_t i = 0; i < n->n_pattern_props; i++) {
    if(schema_regex_match(n->pattern_props[i].pattern.re, key, strlen(key)) != 1)
      continue;
    matched = true;
    if(!validate(c, n->pattern_props[i].schema, value)) {
      ok = false;
      if(stop(c))
        goto out;
    }
  }
  if(!matched && n->additional_props) {
    if(n->additional_props->is_bool && !n->additional_props->bool_value) {
      report(c, "additionalProperties", "is not allowed");
      ok = false;
    } else if(!validate(c, n->additional_props, value)) {
      ok = false;
    }
    if(!ok && stop(c))
      goto out;
  }
  if(n->property_names) {
    json_t *name = json_string(key);
    if(!name) {
      c->oom = true;
    } else if(!quietly(c, n->property_names, name)) {
      report(c, "propertyNames", "is not an allowed property name");
      ok = false;
    }
    json_decref(name);
  }
out:
  return ok;
}

static bool check_object(struct vctx *c, const struct node *n, const json_t *inst)
{
  bool ok = true;
  const char *key;
  json_t *value;
  size_t size = json_object_size(inst), len;
  if(n->min_props >= 0 && size < (uint64_t)n->min_props) {
    report(c, "minProperties", "must have at least %" PRId64 " properties", n->min_props);
    ok = false;
    if(stop(c))
      goto out;
  }
  if(n->max_props >= 0 && size > (uint64_t)n->max_props) {
    report(c, "maxProperties", "must have at most %" PRId64 " properties", n->max_props);
    ok = false;
    if(stop(c))
      goto out;
  }
  for(size_t i = 0; n->required && i < json_array_size(n->required); i++) {
    const char *name = json_string_value(json_array_get(n->required, i));
    if(json_object_get(inst, name))
      continue;
    len = push_key(c, name);
    report(c, "required", "is required");
    pop(c, len);
    ok = false;
    if(stop(c))
      goto out;
  }
  if(n->n_props || n->n_pattern_props || n->additional_props || n->property_names)
    json_object_foreach((json_t *)inst, key, value)
    {
      len = push_key(c, key);
      if(!check_member(c, n, key, value))
        ok = false;
      pop(c, len);
      if(!ok && stop(c))
        goto out;
    }
  for(size_t i = 0; i < n->n_deps; i++) {
    const struct dependency *d = &n->deps[i];
    if(!json_object_get(inst, d->name))
      continue;
    if(d->schema && !validate(c, d->schema, inst))
      ok = false;
    for(size_t j = 0; d->names && j < json_array_size(d->names); j++) {
      const char *name = json_string_value(json_array_get(d->names, j));
      if(json_object_get(inst, name))
        continue;
      len = push_key(c, name);
      report(c, "dependencies", "is required when \"%s\" is present", d->name);
      pop(c, len);
      ok = false;
      if(stop(c))
        goto out;
    }
    if(!ok && stop(c))
      goto out;
  }
out:
  /* cppcheck-suppress missingReturn ; json_object_foreach confuses its flow analysis */
  return ok;
}

static bool check_array(struct vctx *c, const struct node *n, const json_t *inst)
{
  bool ok = true;
  size_t size = json_array_size(inst), len;
  if(n->min_items >= 0 && size < (uint64_t)n->min_items) {
    report(c, "minItems", "must have at least %" PRId64 " items", n->min_items);
    ok = false;
    if(stop(c))
      goto out;
  }
  if(n->max_items >= 0 && size > (uint64_t)n->max_items) {
    report(c, "maxItems", "must have at most %" PRId64 " items", n->max_items);
    ok = false;
    if(stop(c))
      goto out;
  }
  for(size_t i = 0; (n->items || n->has_item_list) && i < size; i++) {
    const struct node *item = n->items;
    if(n->has_item_list)
      item = i < n->item_list.n ? n->item_list.v[i] : n->additional_items;
    if(!item)
      break;
    len = push_index(c, i);
    if(item == n->additional_items && item->is_bool && !item->bool_value) {
      report(c, "additionalItems", "is not allowed");
      ok = false;
    } else if(!validate(c, item, json_array_get(inst, i))) {
      ok = false;
    }
    pop(c, len);
    if(!ok && stop(c))
      goto out;
  }
  if(n->contains) {
    bool found = false;
    for(size_t i = 0; i < size && !found; i++) {
      len = push_index(c, i);
      found = quietly(c, n->contains, json_array_get(inst, i));
      pop(c, len);
    }
    if(!found) {
      report(c, "contains", "must contain an item that matches the contains schema");
      ok = false;
      if(stop(c))
        goto out;
    }
  }
  for(size_t i = 0; n->unique_items && i < size; i++)
    for(size_t j = i + 1; j < size; j++) {
      int r = equal(json_array_get(inst, i), json_array_get(inst, j), c->depth + 1);
      if(r == 0)
        continue;
      if(r < 0)
        report(c, "depth", "is nested deeper than %d levels", DUB_SCHEMA_MAX_DEPTH);
      else
        report(c, "uniqueItems",
               "must not contain duplicates (items %zu and %zu are equal)", i, j);
      ok = false;
      goto out;
    }
out:
  return ok;
}

/* Code points of valid UTF-8: every byte that does not continue a sequence. */
static size_t code_points(const char *s, size_t len)
{
  size_t n = 0;
  for(size_t i = 0; i < len; i++)
    n += ((unsigned char)s[i] & 0xc0) != 0x80;
  return n;
}

static bool check_string(struct vctx *c, const struct node *n, const json_t *inst)
{
  bool ok = true;
  const char *s = json_string_value(inst);
  size_t len = json_string_length(inst);
  if(n->min_length >= 0 || n->max_length >= 0) {
    size_t chars = code_points(s, len);
    if(n->min_length >= 0 && chars < (uint64_t)n->min_length) {
      report(c, "minLength", "must be at least %" PRId64 " characters", n->min_length);
      ok = false;
      if(stop(c))
        goto out;
    }
    if(n->max_length >= 0 && chars > (uint64_t)n->max_length) {
      report(c, "maxLength", "must be at most %" PRId64 " characters", n->max_length);
      ok = false;
      if(stop(c))
        goto out;
    }
  }
  if(n->pattern.re) {
    int m = schema_regex_match(n->pattern.re, s, len);
    if(m != 1) {
      if(m == 0)
        report(c, "pattern", "must match the pattern \"%s\"", n->pattern.source);
      else
        report(c, "pattern", "could not be matched against the pattern \"%s\"",
               n->pattern.source);
      ok = false;
      if(stop(c))
        goto out;
    }
  }
  if(n->format != FORMAT_NONE && !schema_format_check(n->format, s, len)) {
    report(c, "format", "must be a valid %s", n->format_name);
    ok = false;
  }
out:
  return ok;
}

static bool check_number(struct vctx *c, const struct node *n, const json_t *inst)
{
  bool ok = true;
  char buf[40];
  if(n->minimum && number_cmp(inst, n->minimum) < 0) {
    report(c, "minimum", "must be at least %s", number_text(n->minimum, buf));
    ok = false;
    if(stop(c))
      goto out;
  }
  if(n->maximum && number_cmp(inst, n->maximum) > 0) {
    report(c, "maximum", "must be at most %s", number_text(n->maximum, buf));
    ok = false;
    if(stop(c))
      goto out;
  }
  if(n->exclusive_minimum && number_cmp(inst, n->exclusive_minimum) <= 0) {
    report(c, "exclusiveMinimum", "must be greater than %s",
           number_text(n->exclusive_minimum, buf));
    ok = false;
    if(stop(c))
      goto out;
  }
  if(n->exclusive_maximum && number_cmp(inst, n->exclusive_maximum) >= 0) {
    report(c, "exclusiveMaximum", "must be less than %s",
           number_text(n->exclusive_maximum, buf));
    ok = false;
    if(stop(c))
      goto out;
  }
  if(n->multiple_of && !multiple_of(inst, n->multiple_of)) {
    report(c, "multipleOf", "must be a multiple of %s", number_text(n->multiple_of, buf));
    ok = false;
  }
out:
  return ok;
}

static bool check_combinators(struct vctx *c, const struct node *n, const json_t *inst)
{
  bool ok = true;
  for(size_t i = 0; i < n->all_of.n; i++)
    if(!validate(c, n->all_of.v[i], inst)) {
      ok = false;
      if(stop(c))
        goto out;
    }
  if(n->any_of.n) {
    bool any = false;
    for(size_t i = 0; i < n->any_of.n && !any; i++)
      any = quietly(c, n->any_of.v[i], inst);
    if(!any) {
      report(c, "anyOf", "must match at least one schema in anyOf");
      ok = false;
      if(stop(c))
        goto out;
    }
  }
  if(n->one_of.n) {
    size_t matched = 0;
    for(size_t i = 0; i < n->one_of.n && matched < 2; i++)
      matched += quietly(c, n->one_of.v[i], inst);
    if(matched != 1) {
      report(c, "oneOf", "must match exactly one schema in oneOf (matched %s)",
             matched ? "more than one" : "none");
      ok = false;
      if(stop(c))
        goto out;
    }
  }
  if(n->not_schema && quietly(c, n->not_schema, inst)) {
    report(c, "not", "must not match the schema in not");
    ok = false;
    if(stop(c))
      goto out;
  }
  if(n->if_schema) {
    const struct node *branch =
        quietly(c, n->if_schema, inst) ? n->then_schema : n->else_schema;
    if(branch && !validate(c, branch, inst))
      ok = false;
  }
out:
  return ok;
}

static bool validate(struct vctx *c, const struct node *n, const json_t *inst)
{
  bool ok = true;
  if(n->is_bool) {
    if(!n->bool_value)
      report(c, "false", "is not allowed");
    return n->bool_value;
  }
  if(c->depth > DUB_SCHEMA_MAX_DEPTH) {
    report(c, "depth", "is nested deeper than %d levels", DUB_SCHEMA_MAX_DEPTH);
    return false;
  }
  if(c->frames >= MAX_FRAMES) {
    report(c, "depth", "needs more than %d nested subschemas to validate", MAX_FRAMES);
    return false;
  }
  c->frames++;
  if(n->ref) {
    ok = validate(c, n->ref, inst);
    goto out;
  }
  ok = check_any(c, n, inst);
  if(!ok && stop(c))
    goto out;
  switch(json_typeof(inst)) {
  case JSON_OBJECT:
    ok = check_object(c, n, inst) && ok;
    break;
  case JSON_ARRAY:
    ok = check_array(c, n, inst) && ok;
    break;
  case JSON_STRING:
    ok = check_string(c, n, inst) && ok;
    break;
  case JSON_INTEGER:
  case JSON_REAL:
    ok = check_number(c, n, inst) && ok;
    break;
  default:
    break;
  }
  if(!ok && stop(c))
    goto out;
  ok = check_combinators(c, n, inst) && ok;
out:
  c->frames--;
  return ok;
}

enum dub_err dub_schema_validate(const struct dub_schema *schema, const json_t *instance,
                                 json_t **errors)
{
  enum dub_err rc = DUB_OK;
  struct vctx c;
  memset(&c, 0, sizeof c);
  if(errors)
    *errors = NULL;
  if(!schema || !instance) {
    rc = DUB_ERR_INVALID;
    goto out;
  }
  if(errors) {
    c.errors = json_array();
    if(!c.errors) {
      rc = DUB_ERR_INTERNAL;
      goto out;
    }
  }
  dub_buf_append(&c.path, "", 0);
  bool ok = validate(&c, schema->root, instance);
  if(!ok && c.errors && !c.n_errors)
    report(&c, "schema",
           "is not valid"); /* every failure reports; this is a safety net */
  if(c.oom)
    rc = DUB_ERR_INTERNAL;
  else if(!ok)
    rc = DUB_ERR_SCHEMA;
  if(rc == DUB_ERR_SCHEMA && errors) {
    *errors = c.errors;
    c.errors = NULL;
  }
out:
  json_decref(c.errors);
  dub_buf_release(&c.path);
  return rc;
}

char *dub_schema_describe(const char *prefix, const json_t *errors)
{
  struct dub_buf buf = DUB_BUF_INIT;
  size_t i;
  json_t *e;
  dub_buf_appendf(&buf, "%s: ", prefix);
  json_array_foreach(errors, i, e)
  {
    const char *ptr = json_string_value(json_object_get(e, "pointer"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    dub_buf_appendf(&buf, "%s%s: %s", i ? "; " : "", ptr && *ptr ? ptr : "/",
                    msg ? msg : "invalid");
  }
  return dub_buf_detach(&buf);
}
