/* spf_header.c -- the Received-SPF: field body of RFC 7208 9.1: result,
 * a comment in words, and the key-value pairs client-ip, envelope-from,
 * helo, receiver, identity, mechanism, problem. Every value that comes
 * from the client is made safe: no control or non-ASCII byte, no line
 * end, quotes and backslashes escaped, so the header cannot be forged.
 */
#include "spf.h"

#include <string.h>

/* text for a comment: parentheses, backslash, controls, 8-bit -> '?' */
static bool cat_comment(str *out, const char *s)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c > 0x7e || c == '(' || c == ')' || c == '\\') c = '?';
    if (!str_catc(out, (char)c)) return false;
  }
  return true;
}

static bool is_dot_atom(const char *s)
{
  if (!*s || *s == '.') return false;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
    if (!strchr("!#$%&'*+-/=?^_`{|}~.", c)) return false;
    if (c == '.' && (s[1] == '.' || s[1] == 0)) return false;
  }
  return true;
}

/* key=value; value as a dot-atom when it is one, else a quoted string */
static bool cat_pair(str *out, const char *key, const char *value)
{
  if (!str_cats(out, " ") || !str_cats(out, key) || !str_cats(out, "=")) return false;
  if (is_dot_atom(value)) return str_cats(out, value) && str_cats(out, ";");
  if (!str_catc(out, '"')) return false;
  for (; *value; value++) {
    unsigned char c = (unsigned char)*value;
    if (c < 0x20 || c > 0x7e) c = '?';
    if ((c == '"' || c == '\\') && !str_catc(out, '\\')) return false;
    if (!str_catc(out, (char)c)) return false;
  }
  return str_cats(out, "\";");
}

static bool comment(const struct spf_answer *a, str *out)
{
  const char *s = a->sender, *ip = a->client_ip;
  switch (a->result) {
    case SPF_PASS:
      return str_cats(out, "domain of ") && cat_comment(out, s) && str_cats(out, " designates ") &&
             cat_comment(out, ip) && str_cats(out, " as permitted sender");
    case SPF_FAIL:
      return str_cats(out, "domain of ") && cat_comment(out, s) && str_cats(out, " does not designate ") &&
             cat_comment(out, ip) && str_cats(out, " as permitted sender");
    case SPF_SOFTFAIL:
      return str_cats(out, "domain of transitioning ") && cat_comment(out, s) &&
             str_cats(out, " does not designate ") && cat_comment(out, ip) &&
             str_cats(out, " as permitted sender");
    case SPF_NEUTRAL:
      return cat_comment(out, ip) && str_cats(out, " is neither permitted nor denied by domain of ") &&
             cat_comment(out, s);
    case SPF_NONE:
      return str_cats(out, "domain of ") && cat_comment(out, s) &&
             str_cats(out, " does not publish an SPF record");
    case SPF_TEMPERROR:
      return str_cats(out, "temporary error checking domain of ") && cat_comment(out, s);
    case SPF_PERMERROR:
      return str_cats(out, "permanent error in the SPF record of ") && cat_comment(out, s);
  }
  return false;
}

bool spf_received_spf(const struct spf_answer *a, const char *receiver, str *out)
{
  if (!receiver || !*receiver) receiver = "unknown";
  out->len = 0;
  if (!str_cats(out, spf_result_name(a->result)) || !str_cats(out, " (") ||
      !cat_comment(out, receiver) || !str_cats(out, ": ") || !comment(a, out) ||
      !str_cats(out, ")"))
    return false;
  if (!cat_pair(out, "client-ip", a->client_ip)) return false;
  if (!a->helo_identity && !cat_pair(out, "envelope-from", a->sender)) return false;
  if (a->helo[0] && !cat_pair(out, "helo", a->helo)) return false;
  if (!cat_pair(out, "receiver", receiver)) return false;
  if (!cat_pair(out, "identity", a->helo_identity ? "helo" : "mailfrom")) return false;
  if (a->mechanism[0] && !cat_pair(out, "mechanism", a->mechanism)) return false;
  if (a->problem[0] && (a->result == SPF_PERMERROR || a->result == SPF_TEMPERROR) &&
      !cat_pair(out, "problem", a->problem))
    return false;
  if (out->len && out->s[out->len - 1] == ';') out->len--;
  return str_0(out);
}
