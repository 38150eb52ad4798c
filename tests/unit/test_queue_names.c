/* test_queue_names.c -- Maildir file names (src/queue/maildir.c): the
 * microseconds in six digits, so that within one second name order is
 * delivery order (mxgate-pop3d lists cur/ in name order). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "queue.h"

/* names made for one whole second (every count of the microseconds'
 * digits comes by): each has six digits after M, and the time part
 * ("SECONDS.MMICROS") never sorts before the one made earlier */
static void test_names_sort_in_delivery_order(void **st)
{
  (void)st;
  char prev[512] = "", name[512];
  size_t prevlen = 0;
  int seconds = 0;
  while (seconds < 2) {
    unique_name(name, sizeof name);
    const char *m = strstr(name, ".M"), *p = m ? strchr(m, 'P') : NULL;
    assert_non_null(p);
    assert_int_equal(p - (m + 2), 6);                          /* M and six digits */
    for (const char *d = m + 2; d < p; d++) assert_true(*d >= '0' && *d <= '9');
    size_t len = (size_t)(p - name);
    if (prevlen && strncmp(prev, name, (size_t)(m - name))) seconds++;     /* a new second */
    else if (prevlen) assert_true(len == prevlen && strncmp(prev, name, len) <= 0);
    memcpy(prev, name, len);
    prevlen = len;
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = { cmocka_unit_test(test_names_sort_in_delivery_order) };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
