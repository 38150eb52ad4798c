/* verify.c -- checking credentials against a users entry (authuser.h).
 *
 * Plaintext passwords (SMTP LOGIN/PLAIN, POP3 USER/PASS): crypt_rn(3) with
 * the stored hash as setting, the result compared in constant time.
 * Challenge-response (SMTP CRAM-MD5, RFC 2195; POP3 APOP, RFC 1939): the
 * caller passes the client's hex digest as the password and the challenge
 * or APOP timestamp as the timestamp; the digest is recomputed from the
 * stored secret with OpenSSL and compared in constant time. Every attempt
 * costs exactly one crypt(3), known user or not, so timing does not tell
 * which names exist.
 */
#include "authuser.h"
#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* a yescrypt hash (default cost) of a phrase nobody types: burns the time
 * a real verification takes when there is no usable hash */
static const char dummy_hash[] =
  "$y$j9T$96LLkW1L2hwGjpdCEYIfG0$hSi/xFuO80aquuNYnTbP2Z6ZXP/bfKeqWN4EHUEH.g6";

bool verify_password(const char *hash, const char *pass)
{
  struct crypt_data *cd = calloc(1, sizeof *cd);
  if (!cd) return false;
  const char *out = crypt_rn(pass, hash, cd, (int)sizeof *cd);
  size_t hl = strlen(hash);
  bool ok = out && out[0] == '$' && strlen(out) == hl && CRYPTO_memcmp(out, hash, hl) == 0;
  explicit_bzero(cd, sizeof *cd);
  free(cd);
  return ok;
}

void verify_dummy(const char *pass)
{
  (void)verify_password(dummy_hash, pass);
}

bool digest_cram_md5(const char *secret, const char *chal, size_t chal_len,
                     unsigned char out[AUTH_DIGEST_LEN])
{
  size_t n = 0;
  return EVP_Q_mac(NULL, "HMAC", NULL, "MD5", NULL, secret, strlen(secret),
                   (const unsigned char *)chal, chal_len, out, AUTH_DIGEST_LEN, &n) != NULL &&
         n == AUTH_DIGEST_LEN;
}

bool digest_apop(const char *secret, const char *stamp, size_t stamp_len,
                 unsigned char out[AUTH_DIGEST_LEN])
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned n = 0;
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) &&
            EVP_DigestUpdate(ctx, stamp, stamp_len) &&
            EVP_DigestUpdate(ctx, secret, strlen(secret)) &&
            EVP_DigestFinal_ex(ctx, out, &n) && n == AUTH_DIGEST_LEN;
  EVP_MD_CTX_free(ctx);
  return ok;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool verify_hex_digest(const char *hex, size_t hex_len, const unsigned char d[AUTH_DIGEST_LEN])
{
  unsigned char got[AUTH_DIGEST_LEN];
  if (hex_len != 2 * AUTH_DIGEST_LEN) return false;
  for (size_t i = 0; i < AUTH_DIGEST_LEN; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    got[i] = (unsigned char)(hi << 4 | lo);
  }
  bool ok = CRYPTO_memcmp(got, d, AUTH_DIGEST_LEN) == 0;
  explicit_bzero(got, sizeof got);
  return ok;
}

/* the client's response matches HMAC-MD5 or the APOP MD5 of the secret */
static bool verify_challenge(const struct user_entry *u, const struct auth_request *r)
{
  unsigned char d[AUTH_DIGEST_LEN];
  bool ok = false;
  if (digest_cram_md5(u->secret, r->stamp, r->stamp_len, d) &&
      verify_hex_digest(r->pass, r->pass_len, d))
    ok = true;
  if (digest_apop(u->secret, r->stamp, r->stamp_len, d) &&
      verify_hex_digest(r->pass, r->pass_len, d))
    ok = true;
  explicit_bzero(d, sizeof d);
  return ok;
}

/* users/authuser's forms: the plaintext password itself, or "%" and the
 * hex MD5 of it; compared in constant time */
static bool verify_legacy(const struct user_entry *u, const struct auth_request *r)
{
  if (u->plain_password)
    return strlen(u->secret) == r->pass_len && CRYPTO_memcmp(u->secret, r->pass, r->pass_len) == 0;
  if (u->hash[0] != '%' || strlen(u->hash) != 1 + 2 * AUTH_DIGEST_LEN) return false;
  unsigned char d[AUTH_DIGEST_LEN];
  unsigned n = 0;
  bool ok = EVP_Digest(r->pass, r->pass_len, d, &n, EVP_md5(), NULL) && n == AUTH_DIGEST_LEN &&
            verify_hex_digest(u->hash + 1, 2 * AUTH_DIGEST_LEN, d);
  explicit_bzero(d, sizeof d);
  return ok;
}

bool verify_credentials(const struct user_entry *u, const struct auth_request *r)
{
  bool usable = u && !u->disabled && r->user_len && r->pass_len;
  bool ok = false;
  if (usable && users_has_password(u)) ok = verify_password(u->hash, r->pass);
  else {
    verify_dummy(r->pass);                        /* the same cost for every attempt */
    if (usable) ok = verify_legacy(u, r);
  }
  if (usable && u->secret[0] && r->stamp_len && r->pass_len == 2 * AUTH_DIGEST_LEN &&
      verify_challenge(u, r))
    ok = true;
  return usable && ok;
}
