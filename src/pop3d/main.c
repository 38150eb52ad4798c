/* main.c -- mxgate-pop3d (see pop3d.c, mxgate-pop3d(8)). */
#include "pop3d.h"
int main(int argc, char **argv) { return pop3d_main(argc, argv); }
