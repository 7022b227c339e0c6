/* format.c - the "format" values that are checked: date-time, date, email, uri. */
#include "schema/internal.h"

#include "core/time.h"

#include <ctype.h>
#include <string.h>

static const struct {
  const char *name;
  enum format format;
} formats[] = {
    {"date-time", FORMAT_DATE_TIME},
    {"date", FORMAT_DATE},
    {"email", FORMAT_EMAIL},
    {"uri", FORMAT_URI},
};

enum format schema_format_lookup(const char *name)
{
  for(size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
    if(!strcmp(formats[i].name, name))
      return formats[i].format;
  return FORMAT_NONE;
}

/* A simple address check, not RFC 5322: one '@' between a non-empty local part and a
 * domain of non-empty dot-separated labels, no spaces or control characters. */
static bool email_ok(const char *s)
{
  const char *at = strchr(s, '@');
  if(!at || at == s || strchr(at + 1, '@') || !at[1])
    return false;
  for(const char *p = s; *p; p++)
    if((unsigned char)*p <= ' ' || *p == 0x7f)
      return false;
  const char *domain = at + 1;
  if(domain[0] == '.' || domain[strlen(domain) - 1] == '.' || strstr(domain, ".."))
    return false;
  return s[0] != '.' && at[-1] != '.';
}

/* RFC 3986 absolute URI: a scheme, ':', then only URI characters and %XX escapes. */
static bool uri_ok(const char *s)
{
  if(!isalpha((unsigned char)s[0]))
    return false;
  const char *p = s + 1;
  while(isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
    p++;
  if(*p != ':')
    return false;
  for(p++; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if(c == '%') {
      if(!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
        return false;
      p += 2;
    } else if(!isalnum(c) && !strchr("-._~:/?#[]@!$&'()*+,;=", c)) {
      return false;
    }
  }
  return true;
}

bool schema_format_check(enum format format, const char *s, size_t len)
{
  struct dub_date date;
  int64_t ms;
  if(strlen(s) != len) /* an embedded NUL fits no format */
    return format == FORMAT_NONE;
  switch(format) {
  case FORMAT_NONE:
    return true;
  case FORMAT_DATE_TIME:
    return dub_time_parse(s, &ms, NULL) == DUB_OK;
  case FORMAT_DATE:
    return dub_date_parse(s, &date);
  case FORMAT_EMAIL:
    return email_ok(s);
  case FORMAT_URI:
    return uri_ok(s);
  }
  return true;
}
