/* main.c -- mxgate-sessions (see sessions.h, mxgate-sessions(1)). */
#include "sessions.h"
int main(int argc, char **argv) { return sessions_main(argc, argv); }
