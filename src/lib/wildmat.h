/* wildmat.h -- shell-style pattern matching for badmailfrom/badrcptto/badhelo.
 * '*' any run, '?' one byte, '[...]' a set ('^' or '!' first negates,
 * ranges a-z), '\' quotes the next byte. Case-insensitive, as addresses
 * and host names are. */
#ifndef MXGATE_WILDMAT_H
#define MXGATE_WILDMAT_H
#include <stdbool.h>
#include <stddef.h>
bool wildmat(const char *text, size_t len, const char *pattern);
bool wildmat_has_magic(const char *pattern);
#endif
