/* test_lib_users.c -- the users file line format (src/lib/users.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "users.h"

#define HASH_Y "$y$j9T$96LLkW1L2hwGjpdCEYIfG0$hSi/xFuO80aquuNYnTbP2Z6ZXP/bfKeqWN4EHUEH.g6"

static int parse(const char *line, struct user_entry *u, const char **err)
{
  *err = NULL;
  return users_parse_line(line, strlen(line), u, err);
}

static void full_line(void **state)
{
  struct user_entry u;
  const char *err;
  assert_int_equal(parse("alice:" HASH_Y ":s3cret:1000:100:/home/alice:Maildir/\n", &u, &err), 1);
  assert_false(u.disabled);
  assert_string_equal(u.name, "alice");
  assert_string_equal(u.hash, HASH_Y);
  assert_string_equal(u.secret, "s3cret");
  assert_true(u.has_ids);
  assert_int_equal(u.uid, 1000);
  assert_int_equal(u.gid, 100);
  assert_string_equal(u.home, "/home/alice");
  assert_string_equal(u.maildir, "Maildir/");
  assert_true(users_has_password(&u));
}

static void minimal_line(void **state)
{
  struct user_entry u;
  const char *err;
  assert_int_equal(parse("bob:::::/var/empty:", &u, &err), 1);
  assert_false(u.has_ids);
  assert_string_equal(u.secret, "");
  assert_false(users_has_password(&u));
  assert_int_equal(parse("carol:*::::/h:\r\n", &u, &err), 1);
  assert_false(users_has_password(&u));
  assert_int_equal(parse("dave:!" HASH_Y "::::/h:", &u, &err), 1);
  assert_false(users_has_password(&u));
}

static void disabled_user(void **state)
{
  struct user_entry u;
  const char *err;
  assert_int_equal(parse("!alice:" HASH_Y ":x:::/h:", &u, &err), 1);
  assert_true(u.disabled);
  assert_string_equal(u.name, "alice");
  assert_int_equal(parse("!!alice:" HASH_Y ":x:::/h:", &u, &err), -1);
}

static void blank_and_comment(void **state)
{
  struct user_entry u;
  const char *err;
  assert_int_equal(parse("", &u, &err), 0);
  assert_int_equal(parse("\n", &u, &err), 0);
  assert_int_equal(parse("   \t\r\n", &u, &err), 0);
  assert_int_equal(parse("# alice:x::::/h:", &u, &err), 0);
  assert_int_equal(parse("  # indented comment", &u, &err), 0);
}

static void escapes(void **state)
{
  struct user_entry u;
  const char *err;
  assert_int_equal(parse("al:" HASH_Y ":a\\:b\\\\c:::/h\\:1:md", &u, &err), 1);
  assert_string_equal(u.secret, "a:b\\c");
  assert_string_equal(u.home, "/h:1");
  assert_int_equal(parse("al:" HASH_Y ":a\\b:::/h:", &u, &err), -1);
  assert_non_null(strstr(err, "escape"));
  assert_int_equal(parse("al:" HASH_Y ":ab\\:::/h:", &u, &err), -1);  /* \: eats the separator */
}

static void field_errors(void **state)
{
  struct user_entry u;
  const char *err;
  static const char *const bad[] = {
    "alice:" HASH_Y ":s:::/h",                 /* too few fields */
    "alice:" HASH_Y ":s:::/h:md:extra",        /* too many */
    ":" HASH_Y ":s:::/h:",                     /* empty name */
    "al ice:" HASH_Y ":s:::/h:",               /* blank in name */
    " alice:" HASH_Y ":s:::/h:",               /* leading blank */
    "alice:abcdefghijklm:s:::/h:",             /* DES hash */
    "alice:$zz$abc:s:::/h:",                   /* unknown method */
    "alice:" HASH_Y ":s:1000::/h:",            /* uid without gid */
    "alice:" HASH_Y ":s::100:/h:",             /* gid without uid */
    "alice:" HASH_Y ":s:-1:100:/h:",           /* negative uid */
    "alice:" HASH_Y ":s:4294967295:1:/h:",     /* (uid_t)-1 */
    "alice:" HASH_Y ":s:12a:1:/h:",
    "alice:" HASH_Y ":s:::home:",              /* relative home */
    "alice:" HASH_Y ":s::::",                  /* empty home */
    "alice:" HASH_Y ":s\x01:::/h:",            /* control char in secret */
    "alice:" HASH_Y ":s:::/h\x7f:",            /* control char in home */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err = NULL;
    assert_int_equal(users_parse_line(bad[i], strlen(bad[i]), &u, &err), -1);
    assert_non_null(err);
    assert_null(strstr(err, "alice"));  /* errors never echo the line */
  }
}

static void nul_and_length_limits(void **state)
{
  struct user_entry u;
  const char *err;
  const char withnul[] = "alice:" HASH_Y ":s\0x:::/h:";
  assert_int_equal(users_parse_line(withnul, sizeof withnul - 1, &u, &err), -1);
  char line[USERS_LINE_MAX + 64];
  memset(line, 'a', sizeof line);
  memcpy(line + sizeof line - 10, ":::::/h:", 8);
  line[sizeof line - 2] = 0;
  assert_int_equal(parse(line, &u, &err), -1);
  char name[USERS_NAME_MAX + 2 + 16];
  memset(name, 'n', USERS_NAME_MAX + 1);
  strcpy(name + USERS_NAME_MAX + 1, ":::::/h:");
  assert_int_equal(parse(name, &u, &err), -1);
  assert_string_equal(err, "name too long");
  memcpy(name + USERS_NAME_MAX, ":::::/h:", 9);   /* exactly the limit is fine */
  assert_int_equal(parse(name, &u, &err), 1);
  assert_int_equal(strlen(u.name), USERS_NAME_MAX);
}

static void sha512_and_legacy_hashes(void **state)
{
  struct user_entry u;
  const char *err;
  assert_int_equal(parse("a:$6$rounds=5000$salt$abc::::/h:", &u, &err), 1);
  assert_true(users_has_password(&u));
  assert_int_equal(parse("a:$6$salt$abc:::/h:", &u, &err), -1);    /* 6 fields */
  assert_int_equal(parse("a:$6$salt$abc:::::/h:", &u, &err), -1);  /* 8 fields */
  assert_int_equal(parse("a:$1$salt$abc::::/h:", &u, &err), 1);    /* legacy md5crypt accepted */
}

static void canonical_roundtrip(void **state)
{
  struct user_entry u, v;
  const char *err;
  const char *line = "!al:" HASH_Y ":a\\:b\\\\c:65534:65534:/h\\:x:md";
  assert_int_equal(parse(line, &u, &err), 1);
  str key = STR_INIT(0), data = STR_INIT(0);
  assert_true(users_cdb_record(&u, &key, &data));
  assert_int_equal(key.len, 2);
  assert_memory_equal(key.s, "al", 2);
  assert_int_equal(data.len, strlen(line));
  assert_memory_equal(data.s, line, data.len);
  assert_int_equal(users_parse_line(data.s, data.len, &v, &err), 1);
  assert_memory_equal(&u, &v, sizeof u);
  assert_true(parse("b: # x :::::/h:", &u, &err) == -1);
  assert_int_equal(parse("b:   ::::/h:  ", &u, &err), -1);    /* blank hash chars */
  assert_int_equal(parse("b::  s :::/h:  ", &u, &err), 1);    /* blanks in a secret are kept */
  assert_string_equal(u.secret, "  s ");
  assert_true(users_cdb_record(&u, &key, &data));
  assert_memory_equal(data.s, "b::  s :::/h:", data.len);
  /* a disabled hash "!..." may hold ':' and '\\' (escaped): the canonical
   * line escapes them too, or the cdb record parses to another entry
   * (fuzz_authuser_request's find) */
  const char *bang = "c:!x\\:y\\\\z::::/h:";
  assert_int_equal(parse(bang, &u, &err), 1);
  assert_string_equal(u.hash, "!x:y\\z");
  assert_true(users_cdb_record(&u, &key, &data));
  assert_int_equal(data.len, strlen(bang));
  assert_memory_equal(data.s, bang, data.len);
  assert_int_equal(users_parse_line(data.s, data.len, &v, &err), 1);
  assert_memory_equal(&u, &v, sizeof u);
  str_free(&key);
  str_free(&data);
}

static void maildir_paths(void **state)
{
  struct user_entry u;
  const char *err;
  char md[2 * USERS_PATH_MAX + 16];
  assert_int_equal(parse("a:::::/home/a:", &u, &err), 1);
  assert_true(users_maildir(&u, md, sizeof md));
  assert_string_equal(md, "/home/a/Maildir");
  assert_int_equal(parse("a:::::/home/a/:mail/", &u, &err), 1);
  assert_true(users_maildir(&u, md, sizeof md));
  assert_string_equal(md, "/home/a/mail/");
  assert_int_equal(parse("a:::::/:", &u, &err), 1);
  assert_true(users_maildir(&u, md, sizeof md));
  assert_string_equal(md, "/Maildir");
  assert_int_equal(parse("a:::::/home/a:/srv/mail/a", &u, &err), 1);
  assert_true(users_maildir(&u, md, sizeof md));
  assert_string_equal(md, "/srv/mail/a");
  assert_false(users_maildir(&u, md, 5));
}

static void wipe_clears_secret(void **state)
{
  struct user_entry u;
  const char *err;
  assert_int_equal(parse("a:" HASH_Y ":topsecret:::/h:", &u, &err), 1);
  users_entry_wipe(&u);
  static const struct user_entry zero;
  assert_memory_equal(&u, &zero, sizeof u);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(full_line),
    cmocka_unit_test(minimal_line),
    cmocka_unit_test(disabled_user),
    cmocka_unit_test(blank_and_comment),
    cmocka_unit_test(escapes),
    cmocka_unit_test(field_errors),
    cmocka_unit_test(nul_and_length_limits),
    cmocka_unit_test(sha512_and_legacy_hashes),
    cmocka_unit_test(canonical_roundtrip),
    cmocka_unit_test(maildir_paths),
    cmocka_unit_test(wipe_clears_secret),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
