/* url.c - strict parsing of redis:// and unix:// URLs; errors never repeat a password. */
#include "cache/cache.h"

#include "core/alloc.h"
#include "core/hex.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static enum dub_err bad(char **why, const char *what)
{
  *why = dub_xasprintf("redis url: %s", what);
  return DUB_ERR_CONFIG;
}

/* %-decodes s[0..len) into a new string; NULL on a bad escape or an encoded NUL. */
static char *pct_decode(const char *s, size_t len)
{
  char *out = dub_xmalloc(len + 1);
  size_t o = 0;
  for(size_t i = 0; i < len; i++) {
    if(s[i] != '%') {
      out[o++] = s[i];
      continue;
    }
    if(i + 2 >= len) {
      free(out);
      return NULL;
    }
    int a = dub_hex_value(s[i + 1]), b = dub_hex_value(s[i + 2]);
    if(a < 0 || b < 0 || (a == 0 && b == 0)) {
      free(out);
      return NULL;
    }
    out[o++] = (char)(a * 16 + b);
    i += 2;
  }
  out[o] = '\0';
  return out;
}

/* Parses all of s[0..len) as a decimal in [min, max]; digits only. */
static bool parse_num(const char *s, size_t len, long min, long max, int *out)
{
  long v = 0;
  if(len == 0 || len > 9)
    return false;
  for(size_t i = 0; i < len; i++) {
    if(!isdigit((unsigned char)s[i]))
      return false;
    v = v * 10 + (s[i] - '0');
  }
  if(v < min || v > max)
    return false;
  *out = (int)v;
  return true;
}

static bool host_char(char c)
{
  return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

static enum dub_err parse_redis(const char *p, struct dub_cache_url *u, char **why)
{
  const char *slash = strchr(p, '/');
  const char *auth_end = slash ? slash : p + strlen(p);
  const char *at = NULL;

  if(strpbrk(p, "?#"))
    return bad(why, "query and fragment are not supported on redis://");
  for(const char *q = p; q < auth_end; q++) {
    if(*q == '@')
      at = q;
  }
  const char *host = p;
  if(at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if(!colon)
      return bad(why, "credentials must be written [user]:password@");
    if(colon == at - 1)
      return bad(why, "password is empty");
    if(colon > p) {
      u->user = pct_decode(p, (size_t)(colon - p));
      if(!u->user)
        return bad(why, "user has a bad %-escape");
    }
    u->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
    if(!u->password)
      return bad(why, "password has a bad %-escape");
    host = at + 1;
  }
  const char *host_end;
  const char *port = NULL;
  if(*host == '[') {
    const char *close = memchr(host, ']', (size_t)(auth_end - host));
    if(!close || close == host + 1)
      return bad(why, "ipv6 host must be written [address]");
    for(const char *q = host + 1; q < close; q++) {
      if(!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
        return bad(why, "ipv6 host has a bad character");
    }
    u->host = dub_xstrndup(host + 1, (size_t)(close - host - 1));
    host_end = close + 1;
    if(host_end < auth_end && *host_end != ':')
      return bad(why, "unexpected text after the ipv6 host");
  } else {
    host_end = host;
    while(host_end < auth_end && *host_end != ':')
      host_end++;
    if(host_end == host)
      return bad(why, "host is missing");
    for(const char *q = host; q < host_end; q++) {
      if(!host_char(*q))
        return bad(why, "host has a bad character");
    }
    u->host = dub_xstrndup(host, (size_t)(host_end - host));
  }
  u->port = 6379;
  if(host_end < auth_end) { /* ':' */
    port = host_end + 1;
    if(!parse_num(port, (size_t)(auth_end - port), 1, 65535, &u->port))
      return bad(why, "port must be a number from 1 to 65535");
  }
  u->db = 0;
  if(slash && slash[1]) {
    if(!parse_num(slash + 1, strlen(slash + 1), 0, 1000000, &u->db))
      return bad(why, "database must be a number from 0 to 1000000");
  }
  return DUB_OK;
}

static enum dub_err parse_unix(const char *p, struct dub_cache_url *u, char **why)
{
  const char *query = strchr(p, '?');
  size_t path_len = query ? (size_t)(query - p) : strlen(p);

  if(*p != '/' || path_len < 2)
    return bad(why, "unix socket path must be absolute (unix:///path/to/sock)");
  if(memchr(p, '#', strlen(p)))
    return bad(why, "fragment is not supported");
  u->path = dub_xstrndup(p, path_len);
  u->db = 0;
  bool have_db = false;
  for(const char *q = query ? query + 1 : NULL; q && *q;) {
    const char *end = strchr(q, '&');
    size_t len = end ? (size_t)(end - q) : strlen(q);
    const char *eq = memchr(q, '=', len);
    if(!eq)
      return bad(why, "query parameters must be name=value");
    size_t name_len = (size_t)(eq - q);
    size_t value_len = len - name_len - 1;
    if(name_len == 2 && memcmp(q, "db", 2) == 0) {
      if(have_db)
        return bad(why, "db is given twice");
      if(!parse_num(eq + 1, value_len, 0, 1000000, &u->db))
        return bad(why, "database must be a number from 0 to 1000000");
      have_db = true;
    } else if(name_len == 8 && memcmp(q, "password", 8) == 0) {
      if(u->password)
        return bad(why, "password is given twice");
      if(!value_len)
        return bad(why, "password is empty");
      u->password = pct_decode(eq + 1, value_len);
      if(!u->password)
        return bad(why, "password has a bad %-escape");
    } else {
      return bad(why, "unknown query parameter (db and password are known)");
    }
    q = end ? end + 1 : NULL;
    if(end && !end[1])
      return bad(why, "query ends with '&'");
  }
  if(query && !query[1])
    return bad(why, "query is empty");
  return DUB_OK;
}

enum dub_err dub_cache_url_parse(const char *url, struct dub_cache_url *out, char **why)
{
  enum dub_err rc;
  struct dub_cache_url u = {0};

  memset(out, 0, sizeof *out);
  if(!url || !*url) {
    rc = bad(why, "url is empty");
  } else if(strncmp(url, "redis://", 8) == 0) {
    rc = parse_redis(url + 8, &u, why);
  } else if(strncmp(url, "unix://", 7) == 0) {
    rc = parse_unix(url + 7, &u, why);
  } else {
    rc = bad(why, "scheme must be redis:// or unix://");
  }
  for(const char *p = url; !rc && *p; p++) {
    if((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f)
      rc = bad(why, "url contains a space or control character");
  }
  if(rc) {
    dub_cache_url_release(&u);
    return rc;
  }
  *out = u;
  return DUB_OK;
}

void dub_cache_url_release(struct dub_cache_url *url)
{
  free(url->host);
  free(url->path);
  free(url->user);
  if(url->password) {
    memset(url->password, 0, strlen(url->password));
    free(url->password);
  }
  memset(url, 0, sizeof *url);
}
