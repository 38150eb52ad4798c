/* str.h -- growable byte strings with a hard cap.
 *
 * Every buffer that client input can grow has a cap (str.max): appending
 * past it fails instead of growing, so no peer can make mxgate use memory
 * without bound. Strings may hold NUL bytes; str_0() adds a terminator
 * that is not counted in len.
 */
#ifndef MXGATE_STR_H
#define MXGATE_STR_H
#include <stddef.h>
#include <stdbool.h>

typedef struct {
  char *s;
  size_t len;   /* bytes in use, not counting the terminator of str_0() */
  size_t cap;   /* bytes allocated */
  size_t max;   /* most bytes this string may ever hold (0: 1 MiB) */
} str;

#define STR_INIT(maxbytes) { NULL, 0, 0, (maxbytes) }

bool str_ready(str *sa, size_t n);             /* room for n bytes in all */
bool str_catb(str *sa, const void *b, size_t n);
bool str_cats(str *sa, const char *s);
bool str_catc(str *sa, char c);
bool str_catu(str *sa, unsigned long long u);   /* decimal */
bool str_copyb(str *sa, const void *b, size_t n);
bool str_copys(str *sa, const char *s);
bool str_0(str *sa);                            /* NUL-terminate (not counted) */
void str_free(str *sa);
void str_lower(str *sa);
bool str_equal_nocase(const char *a, size_t alen, const char *b, size_t blen);
bool str_starts_nocase(const char *s, size_t len, const char *prefix);
/* the C string of sa (terminated); "" when sa is empty or out of memory */
const char *str_cstr(str *sa);

#endif
