/* base64.c -- strict RFC 4648 base64 (base64.h). */
#include "base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int value(unsigned char c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool base64_decode(const char *in, size_t len, str *out)
{
  out->len = 0;
  if (len % 4) return false;
  for (size_t i = 0; i < len; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      unsigned char c = (unsigned char)in[i + k];
      if (c == '=' && i + 4 == len && k >= 2) { v[k] = 0; pad++; continue; }
      if (pad) return false;                   /* data after padding */
      v[k] = value(c);
      if (v[k] < 0) return false;
    }
    unsigned n = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
    char b[3] = { (char)(n >> 16), (char)(n >> 8), (char)n };
    if (!str_catb(out, b, (size_t)(3 - pad))) return false;
  }
  return str_0(out);
}

bool base64_encode(const void *in, size_t len, str *out)
{
  const unsigned char *p = in;
  out->len = 0;
  for (size_t i = 0; i < len; i += 3) {
    unsigned n = (unsigned)p[i] << 16;
    if (i + 1 < len) n |= (unsigned)p[i + 1] << 8;
    if (i + 2 < len) n |= p[i + 2];
    char b[4] = { alphabet[n >> 18 & 63], alphabet[n >> 12 & 63],
                  i + 1 < len ? alphabet[n >> 6 & 63] : '=', i + 2 < len ? alphabet[n & 63] : '=' };
    if (!str_catb(out, b, 4)) return false;
  }
  return str_0(out);
}
