/* cryo run [--on-crash DIR] -- PROG [ARGS...]: a light supervisor that writes an image
 * when PROG dies of a fatal signal, then lets the signal kill it. */
#include "../include/cryo.h"
#include "../src/image.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t child_pid;

static void forward(int sig) {
  if (child_pid > 0) kill(child_pid, sig);
}

static bool fatal(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGABRT;
}

/* A signal the program handles itself is not a crash. */
static bool handled_by_program(pid_t pid, int sig) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "re");
  if (!f) return false;
  unsigned long long cgt = 0, ign = 0;
  while (fgets(line, sizeof line, f)) {
    sscanf(line, "SigCgt: %llx", &cgt);
    sscanf(line, "SigIgn: %llx", &ign);
  }
  fclose(f);
  return ((cgt | ign) >> (sig - 1)) & 1;
}

int cli_run(int argc, char **argv) {
  const char *dir = NULL;
  int i = 2;
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--")) {
      i++;
      break;
    }
    if (!strcmp(argv[i], "--on-crash")) {
      if (++i >= argc) {
        fprintf(stderr, "cryo: run: --on-crash needs a directory\n(try 'cryo help')\n");
        return 2;
      }
      dir = argv[i];
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "cryo: run: unknown option '%s'\n(try 'cryo help')\n", argv[i]);
      return 2;
    } else {
      break;
    }
  }
  if (i >= argc) {
    fprintf(stderr, "cryo: run: no program: cryo run [--on-crash DIR] -- PROG [ARGS...]\n");
    return 2;
  }
  if (dir) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
      fprintf(stderr, "cryo run: crash directory %s: %s\n", dir, errno ? strerror(errno) : "not a directory");
      return 2;
    }
  }
  size_t blen = 0;
  for (int k = i; k < argc; k++) blen += strlen(argv[k]) + 1;
  uint8_t *blob = malloc(blen ? blen : 1);
  if (!blob) return 1;
  size_t at = 0;
  for (int k = i; k < argc; k++) {
    size_t n = strlen(argv[k]) + 1;
    memcpy(blob + at, argv[k], n);
    at += n;
  }
  cryo_launch_opts o;
  memset(&o, 0, sizeof o);
  o.path = argv[i];
  o.argv = blob;
  o.argc = argc - i;
  o.envc = -1;
  cryo_session *s = cryo_session_new();
  if (!s) {
    fprintf(stderr, "cryo run: %s\n", cryo_last_error());
    return 1;
  }
  int32_t pid;
  if (cryo_launch(s, &o, &pid) != CRYO_OK) {
    fprintf(stderr, "cryo run: %s\n", cryo_last_error());
    cryo_session_free(s);
    free(blob);
    return 127;
  }
  free(blob);
  child_pid = pid;
  /* the terminal sends SIGINT/SIGQUIT to the program too; SIGTERM/SIGHUP are passed on */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  const char *base = strrchr(argv[i], '/');
  base = base ? base + 1 : argv[i];
  int status = 1;
  uint32_t flags = 0;
  bool stopped = true; /* every thread is stopped: continue before waiting */
  for (;;) {
    if (stopped && cryo_continue(s, flags) != CRYO_OK) {
      fprintf(stderr, "cryo run: %s\n", cryo_last_error());
      break;
    }
    flags = 0;
    stopped = true;
    cryo_event ev;
    int rc;
    do rc = cryo_wait_event(s, &ev, -1);
    while (rc == CRYO_ETIMEDOUT);
    if (rc != CRYO_OK) {
      fprintf(stderr, "cryo run: %s\n", cryo_last_error());
      break;
    }
    if (ev.kind == CRYO_EV_EXITED) {
      status = ev.code;
      break;
    }
    if (ev.kind == CRYO_EV_SIGNALED) {
      status = 128 + ev.signo;
      break;
    }
    /* a thread came or went while the others run on: nothing to resume */
    if (ev.kind != CRYO_EV_STOPPED) {
      stopped = false;
      continue;
    }
    if (ev.reason != CRYO_STOP_SIGNAL) continue;
    if (!dir || !fatal(ev.signo) || handled_by_program(pid, ev.signo)) continue;
    char path[PATH_MAX], ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(path, sizeof path, "%s/%s.%d.%s.cryo", dir, base, pid, ts);
    struct img_dump_opts d = {.reason = REASON_CRASH, .crash_tid = ev.tid, .siginfo = ev.siginfo};
    struct img_dump_stats st;
    if (cryo_image_dump(s, path, &d, &st) == CRYO_OK)
      fprintf(stderr, "cryo run: %s (signal %d) in process %d: image written to %s (%.1f ms)\n", strsignal(ev.signo),
              ev.signo, pid, path, (double)st.total_ns / 1e6);
    else
      fprintf(stderr, "cryo run: %s in process %d: the image could not be written: %s\n", strsignal(ev.signo), pid,
              cryo_last_error());
    /* the signal stays pending for the thread: the next continue delivers it */
  }
  cryo_session_close(s);
  cryo_session_free(s);
  return status;
}
