/* main.c -- mxgate-authuser entry point (all logic in authuser.c). */
#include "authuser.h"

int main(int argc, char **argv)
{
  return authuser_main(argc, argv);
}
