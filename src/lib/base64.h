/* base64.h -- RFC 4648 base64, strict: decoding refuses anything that is
 * not canonical base64 (wrong characters, bad padding, stray blanks). */
#ifndef MXGATE_BASE64_H
#define MXGATE_BASE64_H
#include <stdbool.h>
#include <stddef.h>
#include "str.h"
bool base64_decode(const char *in, size_t len, str *out);
bool base64_encode(const void *in, size_t len, str *out);
#endif
