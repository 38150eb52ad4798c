/* pop3d.h -- mxgate-pop3d: the POP3 transaction state over one Maildir
 * (RFC 1939), run by the checkprogram once the user is known. */
#ifndef MXGATE_POP3D_H
#define MXGATE_POP3D_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "io.h"

struct message {
  char *name;            /* cur/NAME */
  off_t octets;          /* size as sent: every line ending in CRLF */
  bool deleted;
  bool moved;            /* deleted, and its file was gone at QUIT */
};

struct mailbox {
  struct message *m;
  size_t n, cap;
};

/* mailbox.c */
/* moves new/ into cur/ (NAME -> NAME:2,) and lists cur/, sorted; 0 or -1 */
int mailbox_open(struct mailbox *mb);
void mailbox_free(struct mailbox *mb);
/* the part of the name before ':' (the UIDL) into buf */
void mailbox_uid(const struct message *m, char *buf, size_t cap);
/* sends message m, CRLF line ends, dot-stuffed, at most body_lines lines
 * of body (-1: all) and the terminating "."; 0 sent, -1 gone (nothing
 * sent), -2 unreadable after "+OK": the session cannot go on, since what
 * follows would be read as the message */
int mailbox_send(const struct message *m, struct io_out *out, long body_lines);
/* removes the deleted messages; the number that could not be removed */
size_t mailbox_expunge(struct mailbox *mb);

int pop3d_main(int argc, char **argv);
#endif
