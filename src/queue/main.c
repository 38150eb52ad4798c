/* main.c -- mxgate-queue (see queue.h, mxgate-queue(8)). */
#include "queue.h"
int main(int argc, char **argv) { return queue_main(argc, argv); }
