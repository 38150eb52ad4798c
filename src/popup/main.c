/* main.c -- mxgate-popup (see popup.c, mxgate-popup(8)). */
#include "popup.h"
int main(int argc, char **argv) { return popup_main(argc, argv); }
