/* mailbox.c -- the Maildir side of mxgate-pop3d.
 *
 * At start, new/ is moved into cur/ (NAME becomes NAME:2, as qmail-pop3d
 * does) and cur/ is listed in name order, which is delivery order for
 * maildir names. The size of a message is counted as it is sent: stored
 * LF line ends become CRLF (mxgate-queue stores LF), so LIST, STAT and
 * RETR agree byte for byte; dot-stuffing is transfer encoding and not
 * counted (RFC 1939 section 11).
 */
#include "pop3d.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

static int by_name(const void *a, const void *b)
{
  return strcmp(((const struct message *)a)->name, ((const struct message *)b)->name);
}

static void move_new(void)
{
  DIR *d = opendir("new");
  struct dirent *de;
  char from[600], to[600];
  while (d && (de = readdir(d))) {
    if (de->d_name[0] == '.' || strlen(de->d_name) > 500) continue;
    snprintf(from, sizeof from, "new/%s", de->d_name);
    snprintf(to, sizeof to, "cur/%s:2,", de->d_name);
    rename(from, to);
  }
  if (d) closedir(d);
}

/* octets as sent: bytes + one CR for every LF not already after a CR */
static off_t sent_size(const char *name)
{
  char path[600], buf[65536];
  snprintf(path, sizeof path, "cur/%s", name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  off_t n = 0;
  char prev = '\n';
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < r; i++) {
      if (buf[i] == '\n' && prev != '\r') n++;
      n++;
      prev = buf[i];
    }
  close(fd);
  if (prev != '\n') n += 2;                 /* a last line without LF is ended for the client */
  return r < 0 ? -1 : n;
}

int mailbox_open(struct mailbox *mb)
{
  memset(mb, 0, sizeof *mb);
  move_new();
  DIR *d = opendir("cur");
  if (!d) return -1;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.' || strlen(de->d_name) > 500) continue;
    off_t size = sent_size(de->d_name);
    if (size < 0) continue;                 /* unreadable: not offered */
    if (mb->n == mb->cap) {
      size_t cap = mb->cap ? mb->cap * 2 : 64;
      struct message *m = realloc(mb->m, cap * sizeof *m);
      if (!m) { closedir(d); return -1; }
      mb->m = m; mb->cap = cap;
    }
    mb->m[mb->n++] = (struct message){ strdup(de->d_name), size, false, false };
  }
  closedir(d);
  if (mb->n) qsort(mb->m, mb->n, sizeof *mb->m, by_name);
  return 0;
}

void mailbox_free(struct mailbox *mb)
{
  for (size_t i = 0; i < mb->n; i++) free(mb->m[i].name);
  free(mb->m);
  memset(mb, 0, sizeof *mb);
}

/* the length of a name's unique part, before its ':' and flags */
static size_t uid_len(const char *name)
{
  const char *colon = strchr(name, ':');
  return colon ? (size_t)(colon - name) : strlen(name);
}

/* RFC 1939: a UIDL is 1 to 70 characters from 0x21 to 0x7E. A unique
 * name that is one is its own UIDL (as qmail-pop3d's); any other (longer,
 * or with a space or a byte past ASCII) is told by the first 20 bytes of
 * its SHA-256 in hex: cutting such names could give two messages one UIDL,
 * and a client keeping mail on the server would then skip one */
void mailbox_uid(const struct message *m, char *buf, size_t cap)
{
  size_t n = uid_len(m->name);
  bool plain = n >= 1 && n <= 70;
  for (size_t i = 0; plain && i < n; i++) plain = m->name[i] >= 0x21 && m->name[i] <= 0x7e;
  if (plain) { snprintf(buf, cap, "%.*s", (int)n, m->name); return; }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (!EVP_Digest(m->name, n, md, &mdlen, EVP_sha256(), NULL) || mdlen < 20) mdlen = 0;
  size_t o = 0;
  for (unsigned i = 0; i < 20 && i < mdlen && o + 2 < cap; i++) o += (size_t)snprintf(buf + o, cap - o, "%02x", md[i]);
  if (!o) snprintf(buf, cap, "%.*s", (int)(n > 70 ? 70 : n), m->name);    /* no digest: the old cut */
}

int mailbox_send(const struct message *m, struct io_out *out, long body_lines)
{
  char path[600], buf[65536];
  snprintf(path, sizeof path, "cur/%s", m->name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  io_puts(out, "+OK\r\n");
  bool bol = true, in_body = false;
  size_t line_len = 0;                                      /* bytes of this line, CR not counted */
  long sent_lines = 0;
  char prev = 0;
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < r; i++) {
      char c = buf[i];
      if (bol && in_body && body_lines >= 0 && sent_lines++ >= body_lines) goto done;
      if (bol && c == '.') io_put(out, ".", 1);             /* dot-stuffing */
      if (c == '\n') {
        if (prev != '\r') io_put(out, "\r", 1);
        if (!in_body && line_len == 0) in_body = true;       /* the empty line ends the header */
        line_len = 0;
        bol = true;
      } else {
        if (c != '\r') line_len++;
        bol = false;
      }
      io_put(out, &c, 1);
      prev = c;
    }
  }
  if (r < 0) {                     /* part of it sent: no end line makes a cut message look whole */
    close(fd);
    return -2;
  }
  if (!bol) io_puts(out, "\r\n");
done:
  close(fd);
  io_puts(out, ".\r\n");
  return 0;
}

/* deleted messages whose file had gone (m->moved): another program may
 * have renamed it, changing the flags after its ':' (a client marking it
 * seen), so cur/ is searched once for their unique names; the number that
 * could not be removed */
static size_t expunge_moved(struct mailbox *mb, size_t moved)
{
  DIR *d = opendir("cur");
  struct dirent *de;
  char path[600];
  size_t failed = 0;
  while (d && moved && (de = readdir(d))) {
    size_t n = uid_len(de->d_name);
    for (size_t i = 0; i < mb->n; i++) {
      struct message *m = &mb->m[i];
      if (!m->moved || uid_len(m->name) != n || memcmp(m->name, de->d_name, n)) continue;
      snprintf(path, sizeof path, "cur/%s", de->d_name);
      if (unlink(path) < 0 && errno != ENOENT) failed++;
      m->moved = false;
      moved--;
      break;
    }
  }
  if (d) closedir(d);
  return failed;                             /* what is still not found was removed by another session */
}

size_t mailbox_expunge(struct mailbox *mb)
{
  char path[600];
  size_t failed = 0, moved = 0;
  for (size_t i = 0; i < mb->n; i++) {
    if (!mb->m[i].deleted) continue;
    snprintf(path, sizeof path, "cur/%s", mb->m[i].name);
    if (unlink(path) == 0) continue;
    if (errno != ENOENT) failed++;
    else { mb->m[i].moved = true; moved++; }
  }
  return failed + (moved ? expunge_moved(mb, moved) : 0);
}
