/* cryo restore: not built yet. */
#include <stdio.h>
int cli_restore(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "cryo restore: not available in this build\n");
  return 1;
}
