/* genlog.c -- writes a realistic mxgate log of about SIZE bytes to stdout:
 * multilog TAI64N stamps, tcpserver lines, interleaved SMTP sessions (up to
 * 40 open at once, pids reused after their end) with the common decisions:
 * accepted and queued, relaying refused, unknown recipients, greylisting,
 * RBL blocks, SPF passes, authenticated submission. Deterministic.
 *   genlog SIZE_BYTES > log */
#include <stdio.h>
#include <stdlib.h>

static unsigned long long seed = 88172645463325252ULL;
static unsigned long long rnd(void) { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return seed; }

static unsigned long long now_ns = 1795500000ULL * 1000000000ULL;
static long long written;

static void stamp(void)
{
  now_ns += 50000 + rnd() % 400000;
  unsigned long long sec = now_ns / 1000000000ULL + 4611686018427387914ULL, ns = now_ns % 1000000000ULL;
  written += printf("@%016llx%08llx ", sec, ns);
}

struct s { long pid; int step, kind; char ip[20]; };

int main(int argc, char **argv)
{
  long long size = argc > 1 ? atoll(argv[1]) : (1LL << 30);
  struct s open[40] = { { 0 } };
  long nextpid = 1000;
  static const char *users[] = { "alice", "bob", "carol", "dave" };
  while (written < size) {
    struct s *s = &open[rnd() % 40];
    if (!s->pid) {
      s->pid = nextpid++;
      if (nextpid > 99000) nextpid = 1000;
      s->step = 0;
      s->kind = (int)(rnd() % 10);
      snprintf(s->ip, sizeof s->ip, "%u.%u.%u.%u", 10 + (unsigned)(rnd() % 200), (unsigned)(rnd() % 256),
               (unsigned)(rnd() % 256), 1 + (unsigned)(rnd() % 254));
      stamp(); written += printf("tcpserver: status: %d/100\n", 1 + (int)(rnd() % 40));
      stamp(); written += printf("tcpserver: pid %ld from %s\n", s->pid, s->ip);
      stamp(); written += printf("tcpserver: ok %ld 0:192.0.2.25:25 :%s::%u\n", s->pid, s->ip, 1024 + (unsigned)(rnd() % 60000));
      continue;
    }
    const char *rcpt = users[rnd() % 4];
    stamp();
    switch (s->kind) {
    case 0: case 1: case 2: case 3:
      if (s->step < 2) written += printf("qmail-smtpd: pid %ld Accept::RCPT::Rcpthosts_Rcptto: S:%s:unknown P:ESMTP H:mx.%s.test F:news@sender%ld.test T:%s@example.test\n",
                                         s->pid, s->ip, rcpt, s->pid % 97, rcpt);
      else written += printf("qmail-smtpd: pid %ld Accept::DATA::Queued: S:%s:unknown P:ESMTP H:mx.%s.test F:news@sender%ld.test T:%s@example.test 'qp\\x20%ld\\x20bytes\\x20%ld'\n",
                             s->pid, s->ip, rcpt, s->pid % 97, rcpt, s->pid + 1, 1000 + (long)(rnd() % 90000));
      break;
    case 4:
      written += printf("qmail-smtpd: pid %ld Reject::SNDR::Invalid_Relay: S:%s:unknown P:SMTP H:spam%ld F:x@spam.test T:victim%ld@elsewhere.test\n",
                        s->pid, s->ip, s->pid % 13, s->pid % 1000);
      break;
    case 5:
      written += printf("qmail-smtpd: pid %ld Reject::RCPT::Failed_Rcptto: S:%s:unknown P:ESMTP H:bot F:a@b.test T:nobody%ld@example.test\n",
                        s->pid, s->ip, s->pid % 50);
      break;
    case 6:
      written += printf("qmail-smtpd: pid %ld Deferred::GREY::Grey_Listed: S:%s:unknown P:ESMTP H:mta.test F:list@lists.test T:%s@example.test\n",
                        s->pid, s->ip, rcpt);
      break;
    case 7:
      written += printf("rblsmtpd: %s pid %ld: 451 listed at rbl.test\n", s->ip, s->pid);
      s->step = 9;
      break;
    case 8:
      written += printf("qmail-smtpd: pid %ld Accept::SPF::Rcpthosts_Rcptto: S:%s:unknown P:ESMTPS H:mail.partner.test F:ceo@partner.test T:%s@example.test\n",
                        s->pid, s->ip, rcpt);
      break;
    default:
      if (s->step == 0) written += printf("qmail-smtpd: pid %ld Accept::AUTH::plain: S:%s:unknown P:ESMTPSA H:laptop ?~ '%s'\n", s->pid, s->ip, rcpt);
      else written += printf("qmail-smtpd: pid %ld Accept::AUTH::plain: S:%s:unknown P:ESMTPSA H:laptop F:%s@example.test T:friend@far.test ?~ '%s'\n",
                             s->pid, s->ip, rcpt, rcpt);
    }
    if (++s->step >= 3) {
      stamp(); written += printf("tcpserver: end %ld status 0\n", s->pid);
      s->pid = 0;
    }
  }
  return 0;
}
