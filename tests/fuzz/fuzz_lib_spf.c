/* fuzz_lib_spf.c -- libFuzzer: what a domain publishes and a client sends
 * to SPF. The first byte picks what the rest is:
 *   0  a TXT record: spf_parse as a record; every term it keeps lies in
 *      the text, its CIDR lengths in range, and every domain-spec it
 *      accepted expands (spf_expand_domain) to a name dns_name_ok takes
 *      or is refused, never past its buffer
 *   1  control/spflocalrules: spf_parse as a bare list of terms
 *   2  a macro-string and the identities it expands: lines "string",
 *      sender, local part, HELO, client IP, domain, PTR names (blank
 *      separated; a name is validated when it starts with a digit), in
 *      both the domain and the explanation syntax
 *   3  a Received-SPF header: the fields of a result (NUL separated);
 *      the value stays one line of printable ASCII
 * No DNS is asked (the PTR names are given as already looked up): only
 * libc is called, so the harness also runs under MemorySanitizer. */
#include "spf_int.h"
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static struct spf_run run;
static struct spf_record rec;

static void expand_spec(const char *s, size_t len, const char *txt, size_t txtlen)
{
  char out[DNS_NAME_MAX + 2];
  assert(s >= txt && s + len <= txt + txtlen);
  if (spf_expand_domain(&run, "a.example.com", s, len, out, sizeof out)) {
    assert(dns_name_ok(out));
    assert(strlen(out) <= 253);
  }
}

static void record(const char *txt, size_t len, bool version)
{
  char why[128];
  run.sender = "strong-bad@email.example.com";
  run.local = "strong-bad";
  run.sender_domain = "email.example.com";
  run.helo = "mx.example.org";
  run.receiver = "mx.receiver.test";
  dns_ip_parse("192.0.2.3", &run.ip);
  run.ptr_done = true;
  run.ptr.n = 0;
  if (!spf_parse(txt, len, version, &rec, why, sizeof why)) {
    assert(memchr(why, 0, sizeof why));
    return;
  }
  assert(rec.n <= SPF_MAX_TERMS);
  assert(version || (!rec.redirect && !rec.exp));
  for (unsigned i = 0; i < rec.n; i++) {
    const struct spf_term *t = &rec.term[i];
    assert(t->text >= txt && t->text + t->textlen <= txt + len);
    assert(t->cidr4 >= 0 && t->cidr4 <= 32 && t->cidr6 >= 0 && t->cidr6 <= 128);
    assert(t->qual == SPF_PASS || t->qual == SPF_FAIL || t->qual == SPF_SOFTFAIL || t->qual == SPF_NEUTRAL);
    if (t->spec) expand_spec(t->spec, t->speclen, txt, len);
  }
  if (rec.redirect) expand_spec(rec.redirect, rec.redirect_len, txt, len);
  if (rec.exp) expand_spec(rec.exp, rec.exp_len, txt, len);
}

/* the next blank- or newline-ended field of *p, NUL-terminated in place */
static char *field(char **p, const char *stops)
{
  char *s = *p, *e = s + strcspn(s, stops);
  *p = *e ? e + 1 : e;
  *e = 0;
  return s;
}

static void macro(char *text)
{
  char *p = text;
  char *string = field(&p, "\n");
  run.sender = field(&p, "\n");
  run.local = field(&p, "\n");
  run.helo = field(&p, "\n");
  char *ip = field(&p, "\n");
  char *domain = field(&p, "\n");
  run.sender_domain = domain;
  run.receiver = strlen(domain) % 2 ? domain : NULL;
  if (!dns_ip_parse(ip, &run.ip)) dns_ip_parse(strlen(ip) % 2 ? "192.0.2.3" : "2001:db8::cb01", &run.ip);
  run.ptr_done = true;
  run.ptr.n = 0;
  while (*p && run.ptr.n < DNS_MAX_NAMES) {
    char *name = field(&p, " \n");
    if (strlen(name) > DNS_NAME_MAX) continue;
    if (run.ptr.n < SPF_NAME_LIMIT) run.valid[run.ptr.n] = (signed char)(name[0] >= '0' && name[0] <= '9');
    strcpy(run.ptr.name[run.ptr.n++], name);
  }
  size_t len = strlen(string);
  for (int explain = 0; explain < 2; explain++) {
    char out[SPF_EXPLAIN_MAX];
    bool valid = spf_macro_valid(string, len, explain);
    bool ok = spf_macro_expand(&run, domain, string, len, explain, out, sizeof out);
    assert(!ok || valid);
    if (ok) assert(strlen(out) < sizeof out);
  }
  char name[DNS_NAME_MAX + 2];
  if (spf_expand_domain(&run, domain, string, len, name, sizeof name)) assert(dns_name_ok(name));
  (void)spf_name_within(run.helo, domain);
}

static void header(const char *data, size_t size)
{
  static struct spf_answer a;
  const char *parts[7] = { "", "", "", "", "", "", "" };
  size_t n = 0;
  memset(&a, 0, sizeof a);
  a.result = (enum spf_result)(size ? data[0] % 7 : 0);
  a.helo_identity = size > 1 && (data[1] & 1);
  for (size_t i = 2; i < size && n < 7; n++) {
    parts[n] = data + i;
    i += strlen(data + i) + 1;
  }
#define COPY(f, s) snprintf(f, sizeof f, "%s", s)
  COPY(a.client_ip, parts[0]); COPY(a.helo, parts[1]); COPY(a.sender, parts[2]);
  COPY(a.mechanism, parts[3]); COPY(a.problem, parts[4]); COPY(a.explanation, parts[5]);
  str out = STR_INIT(1 << 16);
  if (spf_received_spf(&a, parts[6], &out)) {
    const char *name = spf_result_name(a.result);
    assert(strncmp(out.s, name, strlen(name)) == 0);
    for (size_t i = 0; i < out.len; i++)
      assert((unsigned char)out.s[i] >= 0x20 && (unsigned char)out.s[i] <= 0x7e);
    assert(out.s[out.len] == 0);
  }
  str_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1 || size > 8192) return 0;
  char *text = malloc(size);               /* NUL-terminated after the bytes, as TXT records are */
  memcpy(text, data + 1, size - 1);
  text[size - 1] = 0;
  switch (data[0] % 4) {
    case 0: record(text, size - 1, true); break;
    case 1: record(text, size - 1, false); break;
    case 2: macro(text); break;
    default: text[size - 1] = 0; header(text, size - 1); break;
  }
  free(text);
  return 0;
}
