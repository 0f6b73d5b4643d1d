/* cryo: the native command. Runs without Node or an editor. */
#include "../include/cryo.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out) {
  fprintf(out,
          "usage: cryo <command> [options]\n"
          "\n"
          "commands:\n"
          "  version        print the version of cryo and of its engine ABI\n"
          "  help           this text\n"
          "\n"
          "exit codes:\n"
          "  0  success\n"
          "  2  usage error\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("cryo %s (engine ABI %d)\n", cryo_version(), cryo_abi_version());
    return 0;
  }
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "cryo: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
