/* test_lib_ucspitls.c -- the program side of UCSPI-TLS: which mode the
 * environment names, the "Y" and the environment block on the control
 * socket (only SSL_ names taken, however the block is cut), the switch to
 * the read/write descriptors, and the client certificate from SSL_*. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "ucspitls.h"

static void clear_env(void)
{
  const char *names[] = { "SSLCTLFD", "SSLREADFD", "SSLWRITEFD", "PROTO", "SSL_PROTOCOL", "SSL_CIPHER",
                          "SSL_CLIENT_S_DN", "SSL_CLIENT_S_DN_CN", "SSL_CLIENT_S_DN_Email", "SSL_CLIENT_VERIFY",
                          "RELAYCLIENT", "SSL_X" };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) unsetenv(names[i]);
}

static void setfd(const char *name, int fd)
{
  char buf[16];
  snprintf(buf, sizeof buf, "%d", fd);
  setenv(name, buf, 1);
}

static void test_detect(void **st)
{
  (void)st;
  clear_env();
  assert_int_equal(ucspitls_detect("t"), UCSPITLS_NONE);
  setenv("PROTO", "TCP", 1);
  assert_int_equal(ucspitls_detect("t"), UCSPITLS_NONE);
  setenv("PROTO", "SSL", 1);
  assert_int_equal(ucspitls_detect("t"), UCSPITLS_ACTIVE);
  setenv("PROTO", "SSL6", 1);
  assert_int_equal(ucspitls_detect("t"), UCSPITLS_ACTIVE);
  int sp[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  setfd("SSLCTLFD", sp[0]); setfd("SSLREADFD", sp[0]); setfd("SSLWRITEFD", sp[0]);
  assert_int_equal(ucspitls_detect("t"), UCSPITLS_DELAYED);              /* -n sets PROTO=SSL too: not TLS yet */
  assert_true(ucspitls_fd_named(sp[0]) && !ucspitls_fd_named(sp[1]));
  setfd("SSLWRITEFD", 999);                                               /* not open */
  assert_int_equal(ucspitls_detect("t"), UCSPITLS_NONE);
  close(sp[0]); close(sp[1]);
  clear_env();
}

/* runs ucspitls_start against a control socket holding block; returns its verdict */
static bool start_with(const char *block, size_t len, int *in, int *out, char *said)
{
  int ctl[2], rd[2], wr[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, ctl), 0);
  assert_int_equal(pipe(rd), 0);
  assert_int_equal(pipe(wr), 0);
  setfd("SSLCTLFD", ctl[0]); setfd("SSLREADFD", rd[0]); setfd("SSLWRITEFD", wr[1]);
  assert_int_equal(write(ctl[1], block, len), (ssize_t)len);
  shutdown(ctl[1], SHUT_WR);                  /* a block cut short ends in EOF, not a wait */
  *in = dup(0); *out = dup(1);                /* stand-ins for the session's fds */
  const char *why = NULL;
  bool ok = ucspitls_start(*in, *out, 5, &why);
  said[0] = 0;
  assert_int_equal(read(ctl[1], said, 1), 1);  /* the program said Y */
  said[1] = 0;
  if (ok) {                                   /* in/out now are the pipes */
    assert_int_equal(write(rd[1], "x", 1), 1);
    char c = 0;
    assert_int_equal(read(*in, &c, 1), 1);
    assert_int_equal(c, 'x');
    assert_int_equal(write(*out, "z", 1), 1);
    assert_int_equal(read(wr[0], &c, 1), 1);
    assert_int_equal(c, 'z');
  } else {
    assert_non_null(why);
    close(rd[0]); close(wr[1]);               /* not taken over */
  }
  close(ctl[0]); close(ctl[1]); close(rd[1]); close(wr[0]);
  close(*in); close(*out);
  return ok;
}

static void test_start_block(void **st)
{
  (void)st;
  int in, out;
  char said[2];
  clear_env();
  static const char block[] = "SSL_PROTOCOL=TLSv1.3\0SSL_CIPHER=TLS_AES_128_GCM_SHA256\0"
                              "SSL_CLIENT_S_DN=/CN=x\0RELAYCLIENT=\0SSL_X=a=b\0\0";
  setenv("SSL_CLIENT_S_DN_Email", "stale@example.test", 1);                /* from before: not the block's */
  assert_true(start_with(block, sizeof block - 1, &in, &out, said));
  assert_null(getenv("SSL_CLIENT_S_DN_Email"));
  assert_string_equal(said, "Y");
  assert_string_equal(getenv("SSL_PROTOCOL"), "TLSv1.3");
  assert_string_equal(getenv("SSL_X"), "a=b");
  assert_null(getenv("RELAYCLIENT"));                                     /* only SSL_ names */
  clear_env();
  assert_true(start_with("\0\0", 2, &in, &out, said));                    /* no variables */
  clear_env();
  assert_false(start_with("SSL_PROTOCOL=TLSv1.3\0", 21, &in, &out, said));   /* cut short: failed */
  assert_null(getenv("SSL_PROTOCOL"));
  clear_env();
  assert_false(start_with("", 0, &in, &out, said));                       /* closed: the handshake failed */
  clear_env();
}

static void test_info(void **st)
{
  (void)st;
  struct tls_info ti;
  clear_env();
  ucspitls_info(&ti);
  assert_string_equal(ti.version, "unknown");
  assert_false(ti.peer_verified);
  assert_string_equal(ti.peer_cn, "");
  setenv("SSL_PROTOCOL", "TLSv1.2", 1);
  setenv("SSL_CIPHER", "ECDHE-RSA-AES128-GCM-SHA256", 1);
  setenv("SSL_CLIENT_S_DN", "/CN=client/emailAddress=client@example.test", 1);
  setenv("SSL_CLIENT_S_DN_CN", "client", 1);
  setenv("SSL_CLIENT_S_DN_Email", "client@example.test", 1);
  ucspitls_info(&ti);
  assert_string_equal(ti.version, "TLSv1.2");
  assert_string_equal(ti.cipher, "ECDHE-RSA-AES128-GCM-SHA256");
  assert_true(ti.peer_verified);
  assert_string_equal(ti.peer_cn, "client");
  assert_string_equal(ti.peer_email, "client@example.test");
  setenv("SSL_CLIENT_VERIFY", "FAILED:unable to get local issuer certificate", 1);
  ucspitls_info(&ti);
  assert_false(ti.peer_verified);                                         /* mod_ssl's verdict, when given */
  setenv("SSL_CLIENT_VERIFY", "SUCCESS", 1);
  ucspitls_info(&ti);
  assert_true(ti.peer_verified);
  clear_env();
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_detect),
    cmocka_unit_test(test_start_block),
    cmocka_unit_test(test_info),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
