/* test_authuser_verify.c -- credential checks and the fd 3 input format
 * (src/authuser/verify.c, request.c), with the RFC examples. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <crypt.h>
#include <stdio.h>
#include <string.h>
#include "authuser.h"

/* RFC 2195 section 2 and RFC 1939 section 7 */
#define CRAM_CHALLENGE "<1896.697170952@postoffice.reston.mci.net>"
#define CRAM_SECRET    "tanstaaftanstaaf"
#define CRAM_DIGEST    "b913a602c7eda7a495b4e6e7334d3890"
#define APOP_STAMP     "<1896.697170952@dbc.mtview.ca.us>"
#define APOP_SECRET    "tanstaaf"
#define APOP_DIGEST    "c4c9334bac560ecc979e58001b3e22fb"

static void hex(const unsigned char *d, char out[33])
{
  for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void make_hash(const char *prefix, const char *pw, char *out, size_t cap)
{
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  struct crypt_data cd;
  memset(&cd, 0, sizeof cd);
  assert_non_null(crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof salt));
  const char *h = crypt_rn(pw, salt, &cd, sizeof cd);
  assert_non_null(h);
  snprintf(out, cap, "%s", h);
}

static void cram_md5_rfc2195(void **state)
{
  unsigned char d[AUTH_DIGEST_LEN];
  char h[33];
  assert_true(digest_cram_md5(CRAM_SECRET, CRAM_CHALLENGE, strlen(CRAM_CHALLENGE), d));
  hex(d, h);
  assert_string_equal(h, CRAM_DIGEST);
  assert_true(verify_hex_digest(CRAM_DIGEST, 32, d));
  assert_true(verify_hex_digest("B913A602C7EDA7A495B4E6E7334D3890", 32, d));
  assert_false(verify_hex_digest("b913a602c7eda7a495b4e6e7334d3891", 32, d));
  assert_false(verify_hex_digest(CRAM_DIGEST, 31, d));
  assert_false(verify_hex_digest("g913a602c7eda7a495b4e6e7334d3890", 32, d));
}

static void apop_rfc1939(void **state)
{
  unsigned char d[AUTH_DIGEST_LEN];
  char h[33];
  assert_true(digest_apop(APOP_SECRET, APOP_STAMP, strlen(APOP_STAMP), d));
  hex(d, h);
  assert_string_equal(h, APOP_DIGEST);
}

static void yescrypt_and_sha512(void **state)
{
  char h[CRYPT_OUTPUT_SIZE];
  make_hash("$y$", "correct horse", h, sizeof h);
  assert_memory_equal(h, "$y$", 3);
  assert_true(verify_password(h, "correct horse"));
  assert_false(verify_password(h, "correct horsE"));
  assert_false(verify_password(h, ""));
  make_hash("$6$", "correct horse", h, sizeof h);
  assert_memory_equal(h, "$6$", 3);
  assert_true(verify_password(h, "correct horse"));
  assert_false(verify_password(h, "correct hors"));
  assert_false(verify_password("*", "correct horse"));
  assert_false(verify_password("", ""));
}

static void set_request(struct auth_request *r, const char *b, size_t n)
{
  memset(r, 0, sizeof *r);
  memcpy(r->buf, b, n);
  r->len = n;
  assert_true(request_split(r));
}

static void request_format(void **state)
{
  struct auth_request r;
  set_request(&r, "tim\0pw\0<1.2@h>\0", 15);
  assert_string_equal(r.user, "tim");
  assert_int_equal(r.pass_len, 2);
  assert_string_equal(r.stamp, "<1.2@h>");
  set_request(&r, "tim\0pw\0", 7);                   /* no timestamp at all */
  assert_int_equal(r.stamp_len, 0);
  set_request(&r, "tim\0pw\0ts", 9);                 /* unterminated timestamp */
  assert_string_equal(r.stamp, "ts");
  set_request(&r, "tim\0pw\0\0extra\0", 14);         /* "possibly more data" */
  assert_int_equal(r.stamp_len, 0);
  set_request(&r, "\0\0\0", 3);
  assert_int_equal(r.user_len, 0);
  static const char *const bad[] = { "", "tim", "tim\0pw" };
  static const size_t badlen[] = { 0, 3, 6 };
  for (int i = 0; i < 3; i++) {
    memset(&r, 0, sizeof r);
    memcpy(r.buf, bad[i], badlen[i]);
    r.len = badlen[i];
    assert_false(request_split(&r));
  }
}

static void entry(struct user_entry *u, const char *hash, const char *secret)
{
  memset(u, 0, sizeof *u);
  strcpy(u->name, "tim");
  strcpy(u->hash, hash);
  strcpy(u->secret, secret);
  strcpy(u->home, "/");
}

static void credentials(void **state)
{
  char h[CRYPT_OUTPUT_SIZE];
  struct user_entry u;
  struct auth_request r;
  make_hash("$y$", "pw", h, sizeof h);
  entry(&u, h, CRAM_SECRET);
  set_request(&r, "tim\0pw\0\0", 8);
  assert_true(verify_credentials(&u, &r));
  assert_false(verify_credentials(NULL, &r));         /* unknown user */
  u.disabled = true;
  assert_false(verify_credentials(&u, &r));           /* disabled user */
  u.disabled = false;
  set_request(&r, "tim\0px\0\0", 8);
  assert_false(verify_credentials(&u, &r));
  set_request(&r, "tim\0" CRAM_DIGEST "\0" CRAM_CHALLENGE "\0", 4 + 33 + sizeof CRAM_CHALLENGE);
  assert_true(verify_credentials(&u, &r));            /* CRAM-MD5 */
  set_request(&r, "tim\0" CRAM_DIGEST "\0\0", 4 + 33 + 1);
  assert_false(verify_credentials(&u, &r));           /* a digest is no password */
  set_request(&r, "tim\0" CRAM_DIGEST "\0<1896.697170953@postoffice.reston.mci.net>\0",
              4 + 33 + sizeof CRAM_CHALLENGE);
  assert_false(verify_credentials(&u, &r));           /* other challenge */
  strcpy(u.secret, "");
  set_request(&r, "tim\0" CRAM_DIGEST "\0" CRAM_CHALLENGE "\0", 4 + 33 + sizeof CRAM_CHALLENGE);
  assert_false(verify_credentials(&u, &r));           /* no secret: no CRAM */
  entry(&u, "", APOP_SECRET);
  set_request(&r, "tim\0" APOP_DIGEST "\0" APOP_STAMP "\0", 4 + 33 + sizeof APOP_STAMP);
  assert_true(verify_credentials(&u, &r));            /* APOP without a hash */
  set_request(&r, "tim\0" APOP_SECRET "\0\0", 4 + sizeof APOP_SECRET + 1);
  assert_false(verify_credentials(&u, &r));           /* the secret is no password */
  entry(&u, h, "");
  set_request(&r, "tim\0\0\0", 6);
  assert_false(verify_credentials(&u, &r));           /* empty password */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(cram_md5_rfc2195),
    cmocka_unit_test(apop_rfc1939),
    cmocka_unit_test(yescrypt_and_sha512),
    cmocka_unit_test(request_format),
    cmocka_unit_test(credentials),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
