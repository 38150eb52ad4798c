/* queue.c -- handing a message to $QMAILQUEUE (qmail-queue(8) protocol).
 *
 * The queue program gets the message on fd 0 and, after it, the envelope
 * on fd 1: "F" sender NUL, "T" recipient NUL for each, then a NUL. A
 * message whose envelope never arrives is abandoned by the queue program
 * and leaves no trace: that is how a refused or broken DATA is dropped.
 * queue_exit_reply() maps qmail-queue's exit codes to SMTP replies.
 *
 * The queue program's environment is the session's, plus what s/qmail's
 * qmail-smtpd puts there for queue wrappers (queue_environment()):
 * HELOHOST, MAILFROM, RCPTTO (the recipients as queued, each followed by
 * a blank, after DELIVERTO's value when that is set), SPFRESULT (pass,
 * fail, softfail, neutral, unknown for none, error for temperror and
 * permerror; only when SPF was evaluated) and AUTHPROTOCOL (login, plain,
 * cram-md5); AUTHUSER and TCPREMOTEINFO are set by AUTH (auth.c).
 *
 * With QMAILQUEUE unset (cfg->direct_queue, under tcpserver as under
 * mxgate-listen) there is no queue process: the embedded queue,
 * mxgate-queue's own code, writes the message into its recipients'
 * Maildirs and a queue entry as it arrives and commits them at the end
 * (src/queue/direct.c). The session's pid stands for the qp in the log.
 */
#include "smtpd.h"
#include "spf.h"
#include "child.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define QQ_BUG_CODE 81            /* qmail-queue's "internal bug" */

/* name=value of a session field that may hold any byte: cut at a NUL */
static void env_field(const char *name, const char *v, size_t len, bool set)
{
  if (!set) { unsetenv(name); return; }
  char *copy = strndup(v ? v : "", len);
  if (copy) setenv(name, copy, 1);
  free(copy);
}

/* s/qmail's SPFRESULT words: "none" reads "unknown" there, and every
 * error "error" */
static const char *spf_result_word(const struct session *s)
{
  if (!s->spf_done || !s->spf || spf_level() <= 0) return NULL;
  switch (s->spf->result) {
  case SPF_PASS: return "pass";
  case SPF_FAIL: return "fail";
  case SPF_SOFTFAIL: return "softfail";
  case SPF_NEUTRAL: return "neutral";
  case SPF_NONE: return "unknown";
  default: return "error";
  }
}

/* the variables s/qmail's queue wrappers read, in the queue child */
static void queue_environment(const struct session *s)
{
  env_field("HELOHOST", s->helo.s, s->helo.len, s->seen_helo);
  env_field("MAILFROM", s->mailfrom.s, s->mailfrom.len, true);
  str rcpts = STR_INIT(64 << 20);
  const char *deliverto = getenv("DELIVERTO");
  if (deliverto && *deliverto) { str_cats(&rcpts, deliverto); str_catc(&rcpts, ' '); }
  for (size_t i = 0; i < s->envelope.len; ) {            /* "Taddr\0" each */
    const char *a = s->envelope.s + i + 1;
    size_t n = strnlen(a, s->envelope.len - i - 1);
    str_catb(&rcpts, a, n);
    str_catc(&rcpts, ' ');
    i += n + 2;
  }
  env_field("RCPTTO", rcpts.s, rcpts.len, true);
  str_free(&rcpts);
  const char *spf = spf_result_word(s);
  env_field("SPFRESULT", spf, spf ? strlen(spf) : 0, spf != NULL);
  const char *mech = s->authenticated && s->auth_row != ROW_NONE ? row_get(s->auth_row)->condition : NULL;
  env_field("AUTHPROTOCOL", mech, mech ? strlen(mech) : 0, mech != NULL);
}

int queue_open(struct session *s, struct queue_job *q)
{
  int msg[2], env[2];
  /* a QMAILQUEUE of the session's own (from tcprules, or a listener's
   * per-port setting) is run, as tcpserver's child would run it, rather
   * than the embedded queue: a scanner in front of the queue is never
   * skipped */
  const char *own = getenv("QMAILQUEUE");
  const char *program = own && *own ? own : smtpd_queue_program(s->cfg);
  q->direct = NULL;
  q->ops = own && *own ? NULL : s->cfg->direct_queue;
  if (q->ops) {
    int code = QQ_BUG_CODE;
    char *sender = strndup(s->mailfrom.s ? s->mailfrom.s : "", s->mailfrom.len);
    if (sender && strlen(sender) == s->mailfrom.len)     /* a NUL in it: refused as the envelope format error */
      q->direct = q->ops->open(sender, s->envelope.s ? s->envelope.s : "", s->envelope.len, &code);
    else code = sender ? 91 : 51;
    free(sender);
    if (!q->direct) return code;
    q->pid = getpid();
    q->msgfd = q->envfd = -1;
    return 0;
  }
  if (pipe2(msg, O_CLOEXEC) < 0) return -1;
  if (pipe2(env, O_CLOEXEC) < 0) { close(msg[0]); close(msg[1]); return -1; }
  q->pid = fork();
  if (q->pid < 0) {
    close(msg[0]); close(msg[1]); close(env[0]); close(env[1]);
    return -1;
  }
  if (q->pid == 0) {
    if (dup2(msg[0], 0) < 0 || dup2(env[0], 1) < 0) _exit(81);
    signal(SIGPIPE, SIG_DFL);
    char *argv[] = { (char *)program, NULL };
    queue_environment(s);
    execv(argv[0], argv);
    _exit(81);
  }
  close(msg[0]);
  close(env[0]);
  fcntl(msg[1], F_SETFL, fcntl(msg[1], F_GETFL) | O_NONBLOCK);   /* writes wait at most QUEUE_TIMEOUT */
  fcntl(env[1], F_SETFL, fcntl(env[1], F_GETFL) | O_NONBLOCK);
  q->msgfd = msg[1];
  q->envfd = env[1];
  return 0;
}

/* QUEUE_TIMEOUT in seconds (default 300): how long the queue program may
 * take to read what it is given, and to finish after its input ended */
static long long queue_timeout(void)
{
  const char *t = getenv("QUEUE_TIMEOUT");
  long long v = t ? atoll(t) : 0;
  return v > 0 && v <= 86400 ? v : 300;
}

static void queue_warning(pid_t qp, const char *what, long long timeout)
{
  char line[240];
  int n = snprintf(line, sizeof line, "mxgate-smtpd: pid %ld warning: queue program (qp %ld) did not %s "
                   "within %lld s (QUEUE_TIMEOUT); killed\n", (long)getpid(), (long)qp, what, timeout);
  if (n > 0 && write(2, line, (size_t)n) < 0) { /* the log is gone */ }
}

/* part of the message to the queue program, waiting at most
 * QUEUE_TIMEOUT for it to be read: a queue program that stops reading
 * cannot hold the session; errno ETIMEDOUT then. Or into the embedded
 * queue's files. */
bool queue_write(struct queue_job *q, const void *p, size_t n)
{
  if (q->direct) return q->ops->write(q->direct, p, n);
  return fd_write_timed(q->msgfd, p, n, (int)(queue_timeout() * 1000));
}

/* a queue program that stopped reading: killed, reaped, said; qmail-queue's
 * own timeout code, 52 */
static int queue_kill_stalled(struct queue_job *q)
{
  kill(q->pid, SIGKILL);
  close(q->msgfd);
  if (q->envfd >= 0) close(q->envfd);
  int st;
  while (waitpid(q->pid, &st, 0) < 0 && errno == EINTR) {}
  queue_warning(q->pid, "read its input", queue_timeout());
  return 52;
}

/* the queue program's exit code; one that has not finished QUEUE_TIMEOUT
 * seconds (default 300) after its input ended is killed, said on the log,
 * and counts as qmail-queue's own timeout, 52 */
static int wait_queue(pid_t pid)
{
  long long timeout = queue_timeout();
  int st, r = child_wait(pid, timeout * 1000, &st);
  if (r == 0) {
    queue_warning(pid, "finish", timeout);
    return 52;
  }
  if (r < 0 || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}

/* the exit code of the queue program (0: queued), -1 if it crashed */
int queue_close(struct queue_job *q, const str *envelope, const str *mailfrom)
{
  if (q->direct) return q->ops->commit(q->direct);
  int ms = (int)(queue_timeout() * 1000);
  bool ok = fd_write_timed(q->envfd, "F", 1, ms) &&
            fd_write_timed(q->envfd, mailfrom->s ? mailfrom->s : "", mailfrom->len, ms) &&
            fd_write_timed(q->envfd, "", 1, ms) && fd_write_timed(q->envfd, envelope->s, envelope->len, ms) &&
            fd_write_timed(q->envfd, "", 1, ms);
  if (!ok && errno == ETIMEDOUT) return queue_kill_stalled(q);
  close(q->msgfd);
  close(q->envfd);
  int r = wait_queue(q->pid);
  return ok || r != 0 ? r : 81;
}

/* the message is dropped: no envelope, so the queue program discards it;
 * its exit code (-1 for the direct path, or a crash) */
int queue_abort(struct queue_job *q)
{
  if (q->direct) { q->ops->discard(q->direct); return -1; }
  close(q->msgfd);
  close(q->envfd);
  return wait_queue(q->pid);
}

/* the message could not be written in full (errno write_errno): dropped,
 * and the exit code that says why. EPIPE: the queue program stopped
 * reading, and its own exit code tells (53 for its full disk, -1 for a
 * crash); any other error was in a file of ours (the content checks'
 * spool, the direct path's Maildir file): 53, qmail-queue's "write error
 * or disk full", so a full disk reads the same in every mode */
int queue_fail(struct queue_job *q, int write_errno)
{
  if (!q->direct && write_errno == ETIMEDOUT) return queue_kill_stalled(q);
  bool queue_stopped = !q->direct && write_errno == EPIPE;
  int r = queue_abort(q);
  if (!queue_stopped) return 53;
  return r == 0 ? -1 : r;                 /* 0 without an envelope cannot be a queued message */
}

/* "CODE X.Y.Z text" for an exit status of qmail-queue(8) */
const char *queue_exit_reply(int status, bool *permanent)
{
  *permanent = false;
  switch (status) {
  case 11: *permanent = true; return "554 5.1.3 Envelope address too long for the queue";
  case 31: *permanent = true; return "554 5.3.0 Mail server permanently refuses the message";
  case 91: *permanent = true; return "554 5.6.0 Envelope format error";
  case 51: return "451 4.3.0 Queue out of memory";
  case 52: return "451 4.3.0 Queue timeout";
  case 53: return "451 4.3.1 Queue write error or disk full";
  case 54: return "451 4.3.0 Queue unable to read the message or envelope";
  case 55: return "451 4.3.5 Queue unable to read a configuration file";
  case 56: return "451 4.3.0 Queue network problem";
  case 61: return "451 4.3.0 Queue problem with the home directory";
  case 62: return "451 4.3.0 Queue problem with the queue directory";
  case 63: return "451 4.3.0 Queue problem with the trigger";
  case 65: return "451 4.3.0 Queue unable to fork";
  case 71: return "451 4.4.0 Mail server temporarily refuses the message";
  case 72: return "451 4.4.1 Connection to the mail server timed out";
  case 73: return "451 4.4.1 Connection to the mail server refused";
  case 74: return "451 4.4.2 Communication with the mail server failed";
  default: return "451 4.3.0 Queue program failed";
  }
}
