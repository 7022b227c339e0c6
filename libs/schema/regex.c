/* regex.c - ECMA-262 flavoured regular expressions on PCRE2 for "pattern" and
 * "patternProperties": compiled once, matched unanchored, thread-safe. */
#include "schema/internal.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ECMA-262 \s is Unicode white space and line terminators, PCRE2 \s (without UCP) is
 * ASCII only, so a title of ideographic spaces (U+3000) would pass "\S". PCRE2's \h and
 * \v are Unicode-aware without UCP; together with U+FEFF they cover ECMA's set (plus
 * U+0085 and U+180E). UCP is not used because ECMA keeps \d and \w ASCII. */
#define ECMA_SPACE "\\h\\v\\ufeff"

/* Rewrites \s and \S of 'source' into a new string (free with free()). \S inside a
 * character class keeps PCRE2's meaning: a class cannot hold a negated class. */
static char *translate(const char *source)
{
  struct dub_buf out = DUB_BUF_INIT;
  bool in_class = false;
  for(const char *p = source; *p; p++) {
    if(*p == '\\' && p[1]) {
      if(p[1] == 's')
        dub_buf_appendf(&out, in_class ? "%s" : "[%s]", ECMA_SPACE);
      else if(p[1] == 'S' && !in_class)
        dub_buf_appendf(&out, "[^%s]", ECMA_SPACE);
      else
        dub_buf_append(&out, p, 2);
      p++;
      continue;
    }
    if(*p == '[' && !in_class) {
      in_class = true;
      dub_buf_append(&out, p, 1);
      /* A ']' first in the class is a literal for PCRE2. */
      if(p[1] == '^')
        dub_buf_append(&out, ++p, 1);
      if(p[1] == ']')
        dub_buf_append(&out, ++p, 1);
      continue;
    }
    if(*p == ']' && in_class)
      in_class = false;
    dub_buf_append(&out, p, 1);
  }
  return dub_buf_detach(&out);
}

pcre2_code *schema_regex_compile(const char *source, char *err, size_t err_len)
{
  int code;
  PCRE2_SIZE offset;
  char *pcre = translate(source);
  /* $ only at the very end, \uhhhh escapes, as in ECMA-262. */
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)pcre, PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX, &code,
                                 &offset, NULL);
  free(pcre);
  if(!re) {
    PCRE2_UCHAR msg[256];
    if(pcre2_get_error_message(code, msg, sizeof msg) < 0)
      snprintf((char *)msg, sizeof msg, "error %d", code);
    snprintf(err, err_len, "%s", (const char *)msg);
    return NULL;
  }
  /* JIT is an optimisation: the interpreter still matches if it is unavailable. */
  (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
  return re;
}

int schema_regex_match(const pcre2_code *re, const char *s, size_t len)
{
  pcre2_match_data *md = pcre2_match_data_create(1, NULL);
  if(!md)
    return -1;
  int rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
  pcre2_match_data_free(md);
  if(rc >= 0)
    return 1;
  return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}
