/* main.c -- mxgate-cdb (see cdb.c, mxgate-cdb(8)). */
int cdb_main(int argc, char **argv);
int main(int argc, char **argv) { return cdb_main(argc, argv); }
