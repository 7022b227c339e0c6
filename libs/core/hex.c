/* hex.c - hexadecimal digits in and out. */
#include "core/hex.h"

int dub_hex_value(char c)
{
  if(c >= '0' && c <= '9')
    return c - '0';
  if(c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if(c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

bool dub_hex_decode(const char *hex, size_t hex_len, unsigned char *out, size_t out_len)
{
  if(hex_len != 2 * out_len)
    return false;
  for(size_t i = 0; i < out_len; i++) {
    int hi = dub_hex_value(hex[2 * i]), lo = dub_hex_value(hex[2 * i + 1]);
    if(hi < 0 || lo < 0)
      return false;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return true;
}

void dub_hex_encode(const void *data, size_t len, char *out)
{
  static const char digits[] = "0123456789abcdef";
  const unsigned char *p = data;
  for(size_t i = 0; i < len; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * len] = '\0';
}
