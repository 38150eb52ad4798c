/* addr.c -- parsing the path of MAIL FROM / RCPT TO (RFC 5321 4.1.2).
 *
 * Takes "<local@domain>" with optional blanks after the colon, strips a
 * source route, removes quoting and backslash escapes as qmail does, and
 * also accepts a bare address without brackets. Control characters and
 * NUL are refused: they cannot be part of an address we would queue.
 */
#include "smtpd.h"
#include <string.h>

/* 1 ok (*params points after the path, at the parameters or end),
 * 0 syntax error, -1 address too long */
int addr_parse(const char *arg, size_t len, str *addr, const char **params)
{
  size_t i = 0;
  addr->len = 0;
  while (i < len && arg[i] == ' ') i++;
  bool bracket = i < len && arg[i] == '<';
  if (bracket) i++;
  if (bracket && i < len && arg[i] == '@') {          /* source route: @a,@b:user@dom */
    const char *colon = memchr(arg + i, ':', len - i);
    if (!colon) return 0;
    i = (size_t)(colon - arg) + 1;
  }
  bool quoted = false, esc = false, closed = !bracket;
  for (; i < len; i++) {
    unsigned char c = (unsigned char)arg[i];
    if (c < 0x20 || c == 0x7f) return 0;
    if (esc) { esc = false; }
    else if (c == '\\') { esc = true; continue; }
    else if (c == '"') { quoted = !quoted; continue; }
    else if (!quoted && bracket && c == '>') { closed = true; i++; break; }
    else if (!quoted && !bracket && c == ' ') break;
    else if (!quoted && (c == '<' || c == '>')) return 0;
    if (addr->len >= ADDR_MAX) return -1;
    if (!str_catc(addr, (char)c)) return -1;
  }
  if (!closed || quoted || esc) return 0;
  str_0(addr);
  if (memchr(addr->s ? addr->s : "", 0, addr->len)) return 0;
  *params = arg + i;
  return 1;
}

bool addr_domain(const char *addr, size_t len, const char **dom, size_t *domlen)
{
  const char *at = NULL;
  for (size_t i = len; i > 0; i--)
    if (addr[i - 1] == '@') { at = addr + i - 1; break; }
  if (!at) return false;
  *dom = at + 1;
  *domlen = len - (size_t)(at + 1 - addr);
  return true;
}
