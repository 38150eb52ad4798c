/* control.h -- qmail-style control files under $MXGATE_HOME/control.
 *
 * Formats as in qmail-control(5): one value a line, trailing blanks and
 * tabs ignored, '#' comments and empty lines skipped in list files. A
 * missing file is not an error (its default applies); an unreadable one is.
 * Return values: 1 read, 0 missing (default used), -1 error (errno set).
 * A line read as a value or a list entry that holds a NUL byte makes the
 * file unreadable (EINVAL): it would cut the value or split the entry.
 */
#ifndef MXGATE_CONTROL_H
#define MXGATE_CONTROL_H
#include <stddef.h>
#include "str.h"

/* $MXGATE_HOME or the compiled-in default */
const char *control_home(void);
/* home + "/" + rel into out (NUL-terminated); false if it does not fit */
bool control_path(char *out, size_t cap, const char *rel);

/* first line of control/NAME (trimmed) into out; def when missing (may be NULL) */
int control_readline(str *out, const char *name, const char *def);
/* control/NAME as an unsigned number; *n untouched when missing;
 * -1 with errno EINVAL when the first line is anything but decimal digits
 * (trailing blanks aside): no sign, no leading blank, no NUL byte */
int control_readulong(unsigned long *n, const char *name);
/* every meaningful line of control/NAME, each ended by a NUL byte */
int control_readlist(str *out, const char *name);
/* iterate a list from control_readlist: for (p = NULL; (p = control_next(l, p)); ) */
const char *control_next(const str *list, const char *prev);

/* $MXGATE_HOME/control is a directory this process can read: 0, or -1
 * (errno set) with its path in path, for the caller's loud error: without
 * it every control file would read as missing and every default apply */
int control_dir_check(char *path, size_t cap);
/* control_dir_check() that keeps the directory open, and lists it once,
 * until control_dir_close(): meanwhile control/NAME is opened relative to
 * it, and a NAME it did not list reads as missing without an open (one
 * reading of a configuration, never longer: a control directory replaced
 * later must be seen) */
int control_dir_open(void);
void control_dir_close(void);
/* open(2) of a path relative to home, or absolute, for reading */
int control_open(const char *rel);

/* a whole file (any path relative to home, or absolute) into out */
int control_readfile(str *out, const char *path, size_t max);

#endif
