/* render.c - {{name}} substitution and SMS length accounting. */
#include "render.h"

#include "core/alloc.h"

#include <string.h>

enum dub_err notification_render(const char *tpl, const json_t *vars, char **out,
                                 char **why)
{
  struct dub_buf buf = DUB_BUF_INIT;
  const char *p = tpl;
  *out = NULL;
  *why = NULL;
  while(*p) {
    const char *open = strstr(p, "{{");
    if(!open) {
      dub_buf_append(&buf, p, strlen(p));
      break;
    }
    dub_buf_append(&buf, p, (size_t)(open - p));
    const char *close = strstr(open + 2, "}}");
    if(!close) {
      *why =
          dub_xasprintf("placeholder at offset %zu is not closed", (size_t)(open - tpl));
      goto fail;
    }
    char *name = dub_xstrndup(open + 2, (size_t)(close - open - 2));
    const char *value = json_string_value(json_object_get(vars, name));
    if(!value) {
      *why = dub_xasprintf("no value for {{%s}}", name);
      free(name);
      goto fail;
    }
    free(name);
    dub_buf_append(&buf, value, strlen(value));
    p = close + 2;
  }
  *out = dub_buf_detach(&buf);
  return DUB_OK;
fail:
  dub_buf_release(&buf);
  return DUB_ERR_CONFIG;
}

size_t notification_utf8_chars(const char *s)
{
  size_t n = 0;
  for(; *s; s++)
    if(((unsigned char)*s & 0xC0) != 0x80)
      n++;
  return n;
}

int notification_sms_parts(size_t chars)
{
  if(chars <= 70)
    return 1;
  return (int)((chars + 66) / 67);
}

char *notification_mask(const char *recipient)
{
  const char *at = strchr(recipient, '@');
  if(at) {
    size_t local = (size_t)(at - recipient);
    return dub_xasprintf("%.*s***%s", local ? 1 : 0, recipient, at);
  }
  size_t len = strlen(recipient);
  if(len <= 8)
    return dub_xstrdup("****");
  char *out = dub_xstrdup(recipient);
  for(size_t i = 6; i < len - 4; i++)
    out[i] = '*';
  return out;
}

enum dub_err notification_split_email(const char *text, char **subject, char **body)
{
  static const char prefix[] = "Subject: ";
  *subject = *body = NULL;
  if(strncmp(text, prefix, sizeof prefix - 1) != 0)
    return DUB_ERR_CONFIG;
  const char *start = text + sizeof prefix - 1;
  const char *eol = strchr(start, '\n');
  if(!eol)
    return DUB_ERR_CONFIG;
  *subject = dub_xstrndup(start, (size_t)(eol - start));
  const char *rest = eol + 1;
  if(*rest == '\n')
    rest++;
  *body = dub_xstrdup(rest);
  return DUB_OK;
}
