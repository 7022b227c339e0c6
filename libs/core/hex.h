/* hex.h - hexadecimal digits in and out. */
#ifndef DUB_CORE_HEX_H
#define DUB_CORE_HEX_H

#include <stdbool.h>
#include <stddef.h>

/* The value of one hex digit (either case), or -1 when 'c' is not one. */
int dub_hex_value(char c);

/* Decodes exactly 2 * out_len hex digits from hex[0..hex_len) into 'out'. False when the
 * length differs or a character is not a hex digit ('out' is then unspecified). */
bool dub_hex_decode(const char *hex, size_t hex_len, unsigned char *out, size_t out_len);

/* Writes 'len' bytes as 2 * len lower-case digits and a NUL into 'out'. */
void dub_hex_encode(const void *data, size_t len, char *out);

#endif
