/* json.c - strict JSON parsing and typed getters over Jansson. */
#include "json/json.h"

#include "core/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum dub_err dub_json_parse(const char *text, size_t len, json_t **out, char **why)
{
  json_error_t error;
  *out = NULL;
  *why = NULL;
  json_t *value = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
  if(!value) {
    const char *kind = "";
    switch(json_error_code(&error)) {
    case json_error_invalid_utf8:
      kind = "invalid UTF-8: ";
      break;
    case json_error_duplicate_key:
      kind = "duplicate key: ";
      break;
    case json_error_stack_overflow:
      kind = "nesting too deep: ";
      break;
    case json_error_null_character:
    case json_error_null_byte_in_key:
      kind = "NUL character: ";
      break;
    default:
      break;
    }
    *why = dub_xasprintf("line %d column %d: %s%s", error.line, error.column, kind,
                         error.text);
    return DUB_ERR_MALFORMED;
  }
  *out = value;
  return DUB_OK;
}

enum dub_err dub_json_load_file(const char *path, json_t **out, char **why)
{
  enum dub_err rc = DUB_OK;
  char *inner = NULL;
  struct dub_buf buf = DUB_BUF_INIT;
  *out = NULL;
  *why = NULL;
  FILE *fp = fopen(path, "rb");
  if(!fp) {
    *why = dub_xasprintf("%s: cannot open: %s", path, strerror(errno));
    return DUB_ERR_IO;
  }
  char chunk[8192];
  size_t n;
  while((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
    dub_buf_append(&buf, chunk, n);
  if(ferror(fp)) {
    *why = dub_xasprintf("%s: cannot read: %s", path, strerror(errno));
    rc = DUB_ERR_IO;
    goto out;
  }
  rc = dub_json_parse(buf.data ? buf.data : "", buf.len, out, &inner);
  if(rc)
    *why = dub_xasprintf("%s: %s", path, inner);
out:
  free(inner);
  dub_buf_release(&buf);
  fclose(fp);
  return rc;
}

char *dub_json_dump(const json_t *value)
{
  char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
  if(!text) {
    /* Jansson fails here only when it cannot allocate. */
    abort();
  }
  return text;
}

static int append_dumped(const char *text, size_t len, void *buf)
{
  dub_buf_append(buf, text, len);
  return 0;
}

void dub_json_dump_buf(const json_t *value, struct dub_buf *buf)
{
  if(json_dump_callback(value, append_dumped, buf, JSON_COMPACT | JSON_ENCODE_ANY))
    abort(); /* as in dub_json_dump(): only when Jansson cannot allocate */
}

const char *dub_json_str(const json_t *obj, const char *key)
{
  return json_string_value(json_object_get(obj, key));
}

bool dub_json_int(const json_t *obj, const char *key, long long *out)
{
  json_t *v = json_object_get(obj, key);
  if(!json_is_integer(v))
    return false;
  *out = json_integer_value(v);
  return true;
}

bool dub_json_bool(const json_t *obj, const char *key, bool def)
{
  json_t *v = json_object_get(obj, key);
  return json_is_boolean(v) ? json_is_true(v) : def;
}

bool dub_json_array_has_str(const json_t *arr, const char *s)
{
  size_t i;
  json_t *v;
  if(!json_is_array(arr))
    return false;
  json_array_foreach(arr, i, v)
  {
    if(json_is_string(v) && strcmp(json_string_value(v), s) == 0)
      return true;
  }
  return false;
}

/* Decodes one reference token of a JSON pointer ("~1" is '/', "~0" is '~'). */
static char *unescape_token(const char *start, size_t len)
{
  char *tok = dub_xmalloc(len + 1);
  size_t j = 0;
  for(size_t i = 0; i < len; i++) {
    if(start[i] == '~' && i + 1 < len && (start[i + 1] == '0' || start[i + 1] == '1')) {
      tok[j++] = start[i + 1] == '0' ? '~' : '/';
      i++;
    } else {
      tok[j++] = start[i];
    }
  }
  tok[j] = '\0';
  return tok;
}

json_t *dub_json_pointer(const json_t *root, const char *pointer)
{
  json_t *cur = (json_t *)root;
  const char *p = pointer;
  if(*p && *p != '/')
    return NULL;
  while(cur && *p == '/') {
    p++;
    size_t len = strcspn(p, "/");
    char *tok = unescape_token(p, len);
    p += len;
    if(json_is_object(cur)) {
      cur = json_object_get(cur, tok);
    } else if(json_is_array(cur)) {
      char *end = NULL;
      errno = 0;
      unsigned long idx = strtoul(tok, &end, 10);
      bool ok = *tok && !*end && !errno && (tok[0] != '0' || !tok[1]);
      cur = ok ? json_array_get(cur, idx) : NULL;
    } else {
      cur = NULL;
    }
    free(tok);
  }
  return cur;
}
