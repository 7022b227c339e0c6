/* uri.c - the little URI arithmetic $id and $ref need: resolve a reference, unescape. */
#include "schema/internal.h"

#include "core/alloc.h"
#include "core/hex.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Length of the scheme including ':' when 's' starts with one, else 0. */
static size_t scheme_len(const char *s)
{
  if(!isalpha((unsigned char)s[0]))
    return 0;
  size_t i = 1;
  while(isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
    i++;
  return s[i] == ':' ? i + 1 : 0;
}

/* Drops "#" when nothing follows it. */
static char *strip_empty_fragment(char *s)
{
  size_t len = strlen(s);
  if(len && s[len - 1] == '#')
    s[len - 1] = '\0';
  return s;
}

char *schema_uri_resolve(const char *base, const char *ref)
{
  size_t base_len = strcspn(base, "#"); /* base without its fragment */
  size_t path_len = strcspn(base, "?#");
  if(scheme_len(ref))
    return strip_empty_fragment(dub_xstrdup(ref));
  if(ref[0] == '\0' || ref[0] == '#')
    return strip_empty_fragment(dub_xasprintf("%.*s%s", (int)base_len, base, ref));
  size_t scheme = scheme_len(base);
  if(ref[0] == '/' && ref[1] == '/')
    return strip_empty_fragment(dub_xasprintf("%.*s%s", (int)scheme, base, ref));
  if(ref[0] == '/') {
    size_t end = scheme;
    if(base[end] == '/' && base[end + 1] == '/') {
      end += 2;
      end += strcspn(base + end, "/?#");
    }
    return strip_empty_fragment(dub_xasprintf("%.*s%s", (int)end, base, ref));
  }
  /* A relative path replaces the last segment of the base path. */
  size_t dir = path_len;
  while(dir > 0 && base[dir - 1] != '/')
    dir--;
  return strip_empty_fragment(dub_xasprintf("%.*s%s", (int)dir, base, ref));
}

char *schema_uri_unescape(const char *s)
{
  char *out = dub_xmalloc(strlen(s) + 1);
  size_t n = 0;
  for(const char *p = s; *p; p++) {
    if(*p != '%') {
      out[n++] = *p;
      continue;
    }
    int hi = dub_hex_value(p[1]), lo = hi < 0 ? -1 : dub_hex_value(p[2]);
    if(lo < 0 || (hi == 0 && lo == 0)) {
      free(out);
      return NULL;
    }
    out[n++] = (char)(hi * 16 + lo);
    p += 2;
  }
  out[n] = '\0';
  return out;
}
