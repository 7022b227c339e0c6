/* encode.c - base64url without padding, strict on input. */
#include "internal.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t crypto_b64_len(size_t len)
{
  return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

void crypto_b64_encode(const unsigned char *in, size_t len, char *out)
{
  size_t i = 0, o = 0;
  for(; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = alphabet[v >> 18 & 63];
    out[o++] = alphabet[v >> 12 & 63];
    out[o++] = alphabet[v >> 6 & 63];
    out[o++] = alphabet[v & 63];
  }
  if(len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = alphabet[v >> 18 & 63];
    out[o++] = alphabet[v >> 12 & 63];
  } else if(len - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = alphabet[v >> 18 & 63];
    out[o++] = alphabet[v >> 12 & 63];
    out[o++] = alphabet[v >> 6 & 63];
  }
  out[o] = '\0';
}

static int value_of(char c)
{
  if(c >= 'A' && c <= 'Z')
    return c - 'A';
  if(c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if(c >= '0' && c <= '9')
    return c - '0' + 52;
  if(c == '-')
    return 62;
  if(c == '_')
    return 63;
  return -1;
}

bool crypto_b64_decode(const char *in, size_t len, unsigned char *out, size_t *out_len)
{
  size_t o = 0;
  if(len % 4 == 1)
    return false;
  for(size_t i = 0; i < len; i += 4) {
    size_t n = len - i < 4 ? len - i : 4;
    uint32_t v = 0;
    for(size_t k = 0; k < 4; k++) {
      int x = 0;
      if(k < n) {
        x = value_of(in[i + k]);
        if(x < 0)
          return false;
      }
      v = v << 6 | (uint32_t)x;
    }
    out[o++] = (unsigned char)(v >> 16);
    if(n > 2)
      out[o++] = (unsigned char)(v >> 8);
    if(n > 3)
      out[o++] = (unsigned char)v;
    /* The bits below the last whole byte must be zero, so that every byte string has
     * exactly one encoding and no character can change without changing the bytes. */
    if((n == 2 && (v & 0xffff)) || (n == 3 && (v & 0xff)))
      return false;
  }
  *out_len = o;
  return true;
}
