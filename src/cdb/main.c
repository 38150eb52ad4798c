/* main.c -- mxgate-cdb (see cdbkinds.h, mxgate-cdb(8)). */
#include "cdbkinds.h"
int main(int argc, char **argv) { return cdb_main(argc, argv); }
