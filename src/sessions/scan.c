/* scan.c -- the structural index of a block of log text, built in one
 * vector pass: where its spaces, newlines and backslashes are, a bit per
 * byte. The reader finds its lines in the newline bits, the parser its
 * fields in the stop bits (space, newline, and every byte past the block)
 * and whether a line has escapes in the backslash bits, instead of a
 * search through the bytes for each of them.
 */
#include "sessions.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SCAN_X86 1
#endif

/* the bits of 64 bytes at p */
struct bits64 { unsigned long long stop, nl, esc; };

#ifdef SCAN_X86
static struct bits64 bits_sse2(const char *p)
{
  const __m128i sp = _mm_set1_epi8(' '), nl = _mm_set1_epi8('\n'), bs = _mm_set1_epi8('\\');
  struct bits64 b = { 0, 0, 0 };
  for (int i = 0; i < 4; i++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * i));
    unsigned long long s = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, sp));
    unsigned long long n = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl));
    unsigned long long e = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, bs));
    b.stop |= (s | n) << (16 * i); b.nl |= n << (16 * i); b.esc |= e << (16 * i);
  }
  return b;
}

__attribute__((target("avx2"))) static struct bits64 bits_avx2(const char *p)
{
  const __m256i sp = _mm256_set1_epi8(' '), nl = _mm256_set1_epi8('\n'), bs = _mm256_set1_epi8('\\');
  __m256i lo = _mm256_loadu_si256((const __m256i *)p), hi = _mm256_loadu_si256((const __m256i *)(p + 32));
  unsigned long long n = (unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, nl)) |
                         (unsigned long long)(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, nl)) << 32;
  unsigned long long s = (unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, sp)) |
                         (unsigned long long)(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, sp)) << 32;
  unsigned long long e = (unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, bs)) |
                         (unsigned long long)(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, bs)) << 32;
  return (struct bits64){ s | n, n, e };
}

/* with AVX-512BW a compare gives the 64 bits of a word at once */
__attribute__((target("avx512bw"))) static void words_avx512(struct scan *ix, size_t full)
{
  const __m512i sp = _mm512_set1_epi8(' '), nl = _mm512_set1_epi8('\n'), bs = _mm512_set1_epi8('\\');
  for (size_t w = 0; w < full; w++) {
    __m512i v = _mm512_loadu_si512((const void *)(ix->base + 64 * w));
    unsigned long long n = _mm512_cmpeq_epi8_mask(v, nl);
    ix->stop[w] = _mm512_cmpeq_epi8_mask(v, sp) | n;
    ix->nl[w] = n;
    ix->esc[w] = _mm512_cmpeq_epi8_mask(v, bs);
  }
}

__attribute__((target("avx2"))) static void words_avx2(struct scan *ix, size_t full)
{
  for (size_t w = 0; w < full; w++) {
    struct bits64 b = bits_avx2(ix->base + 64 * w);
    ix->stop[w] = b.stop; ix->nl[w] = b.nl; ix->esc[w] = b.esc;
  }
}
#endif

static struct bits64 bits_plain(const char *p)
{
#ifdef SCAN_X86
  return bits_sse2(p);                      /* SSE2 is part of x86-64 */
#else
  struct bits64 b = { 0, 0, 0 };
  for (int i = 0; i < 64; i++) {
    unsigned long long bit = 1ULL << i;
    if (p[i] == ' ' || p[i] == '\n') b.stop |= bit;
    if (p[i] == '\n') b.nl |= bit;
    if (p[i] == '\\') b.esc |= bit;
  }
  return b;
#endif
}

static void words_plain(struct scan *ix, size_t full)
{
  for (size_t w = 0; w < full; w++) {
    struct bits64 b = bits_plain(ix->base + 64 * w);
    ix->stop[w] = b.stop; ix->nl[w] = b.nl; ix->esc[w] = b.esc;
  }
}

static int forced = -1;                      /* a level a test asked for, -1 for the CPU's best */

int scan_level(int want)
{
#ifdef SCAN_X86
  int best = __builtin_cpu_supports("avx512bw") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
#else
  int best = 0;
#endif
  if (want >= 0) forced = want <= best ? want : best;
  return forced >= 0 ? forced : best;
}

bool scan_block(struct scan *ix, const char *base, size_t len)
{
  size_t full = len / 64, words = full + 2;                 /* the partial word, and one of stops only */
  if (words > ix->cap) {
    unsigned long long *w = malloc(3 * words * sizeof *w);
    if (!w) return false;
    free(ix->stop);
    ix->stop = w; ix->nl = w + words; ix->esc = w + 2 * words; ix->cap = words;
  }
  ix->base = base; ix->len = len;
#ifdef SCAN_X86
  int level = scan_level(-1);
  if (level == 2) words_avx512(ix, full);
  else if (level == 1) words_avx2(ix, full);
  else words_plain(ix, full);
#else
  words_plain(ix, full);
#endif
  /* the last bytes, copied so that nothing past the block is read */
  char tail[64];
  size_t rest = len - 64 * full;
  memset(tail, 0, sizeof tail);
  memcpy(tail, base + 64 * full, rest);
  struct bits64 b = bits_plain(tail);
  unsigned long long past = rest ? ~0ULL << rest : ~0ULL;   /* bytes past the block stop every search */
  ix->stop[full] = (b.stop & ~past) | past;
  ix->nl[full] = b.nl & ~past;
  ix->esc[full] = b.esc & ~past;
  ix->stop[full + 1] = ~0ULL; ix->nl[full + 1] = ix->esc[full + 1] = 0;
  return true;
}

void scan_free(struct scan *ix)
{
  free(ix->stop);
  *ix = (struct scan){ 0 };
}
