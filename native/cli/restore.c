/* cryo restore FILE [--wait] */
#include "../include/cryo.h"
#include "../src/image.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

int cli_restore(int argc, char **argv) {
  const char *file = NULL;
  bool wait_ = false;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--wait")) wait_ = true;
    else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "cryo: restore: unknown option '%s'\n(try 'cryo help')\n", argv[i]);
      return 2;
    } else if (!file) file = argv[i];
    else {
      fprintf(stderr, "cryo: restore: unexpected argument '%s'\n(try 'cryo help')\n", argv[i]);
      return 2;
    }
  }
  if (!file) {
    fprintf(stderr, "cryo: restore: which image? usage: cryo restore FILE [--wait]\n");
    return 2;
  }
  struct cryo_image *img;
  img_timing(NULL);
  if (img_open(file, IMG_OPEN_DEFER_PAGES, &img) != CRYO_OK) {
    fprintf(stderr, "cryo restore: %s\n", cryo_last_error());
    return 1;
  }
  img_timing("open and validate the image");
  cryo_session *s = cryo_session_new();
  if (!s) {
    fprintf(stderr, "cryo restore: %s\n", cryo_last_error());
    cryo_image_close(img);
    return 1;
  }
  struct img_restore_report rep;
  int32_t pid = 0;
  int rc = cryo_image_restore(s, img, &pid, &rep);
  if (rc != CRYO_OK) {
    fprintf(stderr, "cryo restore: %s\n", cryo_last_error());
    cryo_session_free(s);
    cryo_image_close(img);
    return 1;
  }
  img_timing("restore");
  unsigned long long old_pid = img->pid;
  cryo_image_close(img);
  if (rep.notes[0]) fprintf(stderr, "cryo restore: note: %s", rep.notes);
  /* the process runs on untraced; it stays our child, so --wait can collect it */
  rc = cryo_detach(s);
  cryo_session_close(s);
  cryo_session_free(s);
  if (rc != CRYO_OK) {
    fprintf(stderr, "cryo restore: detach from %d: %s\n", pid, cryo_last_error());
    kill(pid, SIGKILL);
    waitpid(pid, NULL, __WALL);
    return 1;
  }
  img_timing("close and detach");
  if (!wait_) {
    printf("%d\n", pid);
    fflush(stdout);
    fprintf(stderr, "cryo restore: process %llu restored as %d\n", old_pid, pid);
    return 0;
  }
  fprintf(stderr, "cryo restore: process %llu restored as %d\n", old_pid, pid);
  int st;
  for (;;) {
    pid_t w = waitpid(pid, &st, __WALL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      fprintf(stderr, "cryo restore: waitpid(%d): %s\n", pid, strerror(errno));
      return 1;
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  }
}
