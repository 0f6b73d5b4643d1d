/* cryo run: not built yet. */
#include <stdio.h>
int cli_run(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "cryo run: not available in this build\n");
  return 1;
}
