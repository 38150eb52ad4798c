/* steptrace.c -- bench/startup/order.py's tracer of the code a run
 * executes on this CPU: runs PROGRAM with stdin from INPUT under ptrace,
 * one instruction at a time, and prints each distinct instruction address
 * below 4 GB (a static non-PIE program's own code) in hex, in the order
 * first executed. valgrind runs a program on a CPU of its own, so glibc
 * picks other string functions and skips the vDSO; this is the host's
 * path. A tool for making the link order, never a test.
 * usage: steptrace INPUT PROGRAM [ARG...]
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOTS (1u << 20)                 /* open addressing; far more than a start executes */
static uint64_t seen[SLOTS];

static int first_time(uint64_t a)
{
  uint64_t h = (a * 0x9e3779b97f4a7c15ull) >> 44;
  for (;; h = (h + 1) & (SLOTS - 1)) {
    if (seen[h] == a) return 0;
    if (!seen[h]) { seen[h] = a; return 1; }
  }
}

int main(int argc, char **argv)
{
  if (argc < 3) { fprintf(stderr, "usage: steptrace INPUT PROGRAM [ARG...]\n"); return 2; }
  pid_t pid = fork();
  if (pid == 0) {
    int in = open(argv[1], O_RDONLY), nul = open("/dev/null", O_WRONLY);
    if (in < 0 || nul < 0) _exit(127);
    dup2(in, 0); dup2(nul, 1); dup2(nul, 2);
    ptrace(PTRACE_TRACEME, 0, NULL, NULL);
    execv(argv[2], argv + 2);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);                  /* stopped at the exec */
  unsigned long steps = 0;
  while (!WIFEXITED(st) && !WIFSIGNALED(st)) {
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, pid, NULL, &r) == 0 && r.rip < (1ull << 32) && first_time(r.rip))
      printf("%llx\n", (unsigned long long)r.rip);
    int sig = WIFSTOPPED(st) && WSTOPSIG(st) != SIGTRAP ? WSTOPSIG(st) : 0;
    if (ptrace(PTRACE_SINGLESTEP, pid, NULL, (void *)(long)sig) < 0) break;
    waitpid(pid, &st, 0);
    steps++;
  }
  fprintf(stderr, "steptrace: %lu instructions\n", steps);
  return 0;
}
