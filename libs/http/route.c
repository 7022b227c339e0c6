/* route.c - the compiled route table, path matching and the small parsers of the
 * request pipeline (percent-decoding, media types, request ids, bearer tokens). */
#include "http/internal.h"

#include "core/hex.h"
#include "core/log.h"
#include "metrics/metrics.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool valid_param_name(const char *s, size_t len)
{
  if(!len)
    return false;
  for(size_t i = 0; i < len; i++) {
    char c = s[i];
    if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_'))
      return false;
  }
  return true;
}

static bool valid_method(const char *m)
{
  if(!m || !*m)
    return false;
  for(; *m; m++) {
    if(*m < 'A' || *m > 'Z')
      return false;
  }
  return true;
}

static enum dub_err compile(struct route *r, const struct dub_http_route *def)
{
  const char *p = def->pattern;
  r->def = def;
  if(!valid_method(def->method) || !def->handler || !p || p[0] != '/') {
    dub_log_error("http: route '%s %s' needs an upper-case method, a handler and a "
                  "pattern starting with '/'",
                  def->method ? def->method : "", p ? p : "");
    return DUB_ERR_INVALID;
  }
  p++;
  for(;;) {
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if(r->nsegs == MAX_SEGMENTS) {
      dub_log_error("http: route '%s' has more than %d segments", def->pattern,
                    MAX_SEGMENTS);
      return DUB_ERR_INVALID;
    }
    bool param = len >= 2 && p[0] == '{' && p[len - 1] == '}';
    const char *text = param ? p + 1 : p;
    size_t tlen = param ? len - 2 : len;
    if((param && !valid_param_name(text, tlen)) || memchr(text, '{', tlen) ||
       memchr(text, '}', tlen) || memchr(text, '%', tlen)) {
      dub_log_error("http: route '%s' has a bad segment '%.*s'", def->pattern, (int)len,
                    p);
      return DUB_ERR_INVALID;
    }
    r->is_param[r->nsegs] = param;
    r->segs[r->nsegs++] = dub_xstrndup(text, tlen);
    if(!end)
      break;
    p = end + 1;
  }
  size_t nparams = 0;
  for(size_t i = 0; i < r->nsegs; i++)
    nparams += r->is_param[i];
  if(nparams > MAX_PARAMS) {
    dub_log_error("http: route '%s' has more than %d parameters", def->pattern,
                  MAX_PARAMS);
    return DUB_ERR_INVALID;
  }
  char *escaped = dub_metrics_label_escape(def->pattern);
  r->metric_label = dub_xasprintf("route=\"%s\"", escaped);
  free(escaped);
  r->by_status = dub_xcalloc(STATUS_SLOTS, sizeof *r->by_status);
  return DUB_OK;
}

enum dub_err route_table_build(struct route_table *table,
                               const struct dub_http_route *defs, size_t ndefs,
                               const struct dub_http_route *builtins, size_t nbuiltins)
{
  enum dub_err rc = DUB_OK;
  size_t n = ndefs + nbuiltins;
  table->routes = dub_xcalloc(n ? n : 1, sizeof *table->routes);
  table->n = 0;
  for(size_t i = 0; i < n; i++) {
    const struct dub_http_route *def = i < ndefs ? &defs[i] : &builtins[i - ndefs];
    struct route *r = &table->routes[table->n++];
    rc = compile(r, def);
    if(rc)
      goto out;
    for(size_t j = 0; j < i; j++) {
      const struct dub_http_route *other = table->routes[j].def;
      if(strcmp(other->method, def->method) == 0 &&
         strcmp(other->pattern, def->pattern) == 0) {
        dub_log_error("http: route '%s %s' is defined twice", def->method, def->pattern);
        rc = DUB_ERR_INVALID;
        goto out;
      }
    }
  }
out:
  if(rc)
    route_table_release(table);
  return rc;
}

void route_table_release(struct route_table *table)
{
  for(size_t i = 0; i < table->n; i++) {
    for(size_t j = 0; j < table->routes[i].nsegs; j++)
      free(table->routes[i].segs[j]);
    free(table->routes[i].metric_label);
    free((void *)table->routes[i].by_status);
  }
  free(table->routes);
  table->routes = NULL;
  table->n = 0;
}

bool percent_decode(const char *s, size_t len, bool plus, bool strict, char **out)
{
  char *d = dub_xmalloc(len + 1);
  size_t o = 0;
  for(size_t i = 0; i < len; i++) {
    if(s[i] == '%') {
      int hi = i + 1 < len ? dub_hex_value(s[i + 1]) : -1;
      int lo = i + 2 < len ? dub_hex_value(s[i + 2]) : -1;
      bool good = hi >= 0 && lo >= 0 && (hi | lo) != 0;
      if(!good && strict) {
        free(d);
        *out = NULL;
        return false;
      }
      if(good) {
        d[o++] = (char)(hi << 4 | lo);
        i += 2;
        continue;
      }
    }
    d[o++] = (plus && s[i] == '+') ? ' ' : s[i];
  }
  d[o] = '\0';
  *out = d;
  return true;
}

/* Splits the raw path after its leading '/' into segments (pointers into 'path').
 * False when the path does not start with '/' or has too many segments. */
static bool split_path(const char *path, const char *seg[MAX_SEGMENTS],
                       size_t len[MAX_SEGMENTS], size_t *n)
{
  if(path[0] != '/')
    return false;
  const char *p = path + 1;
  *n = 0;
  for(;;) {
    const char *end = strchr(p, '/');
    if(*n == MAX_SEGMENTS)
      return false;
    seg[*n] = p;
    len[*n] = end ? (size_t)(end - p) : strlen(p);
    (*n)++;
    if(!end)
      return true;
    p = end + 1;
  }
}

static bool path_matches(const struct route *r, const char *const *seg, const size_t *len,
                         size_t n)
{
  if(r->nsegs != n)
    return false;
  for(size_t i = 0; i < n; i++) {
    if(r->is_param[i]) {
      if(!len[i])
        return false;
    } else if(strlen(r->segs[i]) != len[i] || memcmp(r->segs[i], seg[i], len[i]) != 0) {
      return false;
    }
  }
  return true;
}

static bool method_matches(const char *route_method, const char *method)
{
  return strcmp(route_method, method) == 0 ||
         (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

static void allow_add(struct dub_buf *allow, const char *method)
{
  /* Methods are upper-case tokens, so a ", X," search over ", list," is exact. */
  size_t mlen = strlen(method);
  const char *p = allow->data;
  while(p && (p = strstr(p, method)) != NULL) {
    bool start = p == allow->data || p[-1] == ' ';
    bool end = p[mlen] == '\0' || p[mlen] == ',';
    if(start && end)
      return;
    p += mlen;
  }
  if(allow->len)
    dub_buf_append(allow, ", ", 2);
  dub_buf_append(allow, method, mlen);
}

enum match_result route_match(const struct route_table *table, const char *method,
                              const char *path, const struct route **found,
                              struct param params[MAX_PARAMS], size_t *nparams,
                              char **allow)
{
  const char *seg[MAX_SEGMENTS];
  size_t len[MAX_SEGMENTS];
  size_t n = 0;
  *found = NULL;
  *nparams = 0;
  *allow = NULL;
  if(!split_path(path, seg, len, &n))
    return MATCH_NOT_FOUND;

  const struct route *first = NULL;
  for(size_t i = 0; i < table->n; i++) {
    const struct route *r = &table->routes[i];
    if(!path_matches(r, seg, len, n))
      continue;
    if(!first)
      first = r;
    if(!method_matches(r->def->method, method))
      continue;
    for(size_t s = 0; s < n; s++) {
      if(!r->is_param[s])
        continue;
      char *value = NULL;
      if(!percent_decode(seg[s], len[s], false, true, &value)) {
        for(size_t k = 0; k < *nparams; k++)
          free(params[k].value);
        *nparams = 0;
        return MATCH_MALFORMED;
      }
      params[*nparams].name = r->segs[s];
      params[*nparams].value = value;
      (*nparams)++;
    }
    *found = r;
    return MATCH_OK;
  }
  if(!first)
    return MATCH_NOT_FOUND;

  struct dub_buf buf = DUB_BUF_INIT;
  for(size_t i = 0; i < table->n; i++) {
    const struct route *r = &table->routes[i];
    if(!path_matches(r, seg, len, n))
      continue;
    allow_add(&buf, r->def->method);
    if(strcmp(r->def->method, "GET") == 0)
      allow_add(&buf, "HEAD");
  }
  *found = first;
  *allow = dub_buf_detach(&buf);
  return MATCH_METHOD;
}

bool media_type_accepted(const char *value, const char *const *accepted)
{
  if(!value || !accepted)
    return false;
  while(*value == ' ' || *value == '\t')
    value++;
  size_t len = strcspn(value, ";");
  while(len && (value[len - 1] == ' ' || value[len - 1] == '\t'))
    len--;
  if(!len)
    return false;
  for(const char *const *a = accepted; *a; a++) {
    if(strlen(*a) == len && strncasecmp(*a, value, len) == 0)
      return true;
  }
  return false;
}

bool request_id_sane(const char *id)
{
  size_t n = 0;
  if(!id)
    return false;
  for(const char *p = id; *p; p++, n++) {
    char c = *p;
    if(n == DUB_HTTP_REQUEST_ID_MAX)
      return false;
    if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-'))
      return false;
  }
  return n > 0;
}

const char *bearer_token(const char *header, size_t *len)
{
  *len = 0;
  if(!header)
    return NULL;
  while(*header == ' ' || *header == '\t')
    header++;
  if(strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
    return NULL;
  const char *t = header + 6;
  while(*t == ' ' || *t == '\t')
    t++;
  size_t n = strlen(t);
  while(n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
    n--;
  if(!n || memchr(t, ' ', n) || memchr(t, '\t', n))
    return NULL;
  *len = n;
  return t;
}
