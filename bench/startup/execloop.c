/* execloop.c -- bench/startup: ROUNDS rounds; each round runs every
 * PROGRAM once in turn (fork, exec with stdin from INPUT and stdout and
 * stderr on /dev/null, wait), so that the host's busy spells fall on all
 * of them alike, and notes each run's wall time and its CPU time (user +
 * system, from wait4). Prints per program the median wall time with its
 * quartiles and the median CPU time, in microseconds. A benchmark, never
 * a test. usage: execloop ROUNDS INPUT PROGRAM...
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
  if (argc < 4) { fprintf(stderr, "usage: execloop ROUNDS INPUT PROGRAM...\n"); return 2; }
  int n = atoi(argv[1]); const char *input = argv[2]; int np = argc - 3;
  double *t = calloc((size_t)n * np, sizeof *t), *c = calloc((size_t)n * np, sizeof *c);
  for (int r = 0; r < n; r++)
    for (int p = 0; p < np; p++) {
      struct timespec a, b;
      clock_gettime(CLOCK_MONOTONIC, &a);
      pid_t pid = fork();
      if (pid == 0) {
        int in = open(input, O_RDONLY), nul = open("/dev/null", O_WRONLY);
        dup2(in, 0); dup2(nul, 1); dup2(nul, 2);
        char *av[] = { argv[3 + p], NULL };
        execv(av[0], av); _exit(127);
      }
      int st; struct rusage ru; wait4(pid, &st, 0, &ru);
      clock_gettime(CLOCK_MONOTONIC, &b);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "%s failed\n", argv[3 + p]); return 1; }
      c[p * n + r] = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
      t[p * n + r] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
    }
  for (int p = 0; p < np; p++) {
    qsort(t + p * n, n, sizeof *t, cmp);
    qsort(c + p * n, n, sizeof *c, cmp);
    printf("%-36s wall median %6.0f us (q1 %6.0f, q3 %6.0f)  cpu median %5.0f us\n", argv[3 + p], t[p * n + n / 2],
           t[p * n + n / 4], t[p * n + 3 * n / 4], c[p * n + n / 2]);
  }
  return 0;
}
