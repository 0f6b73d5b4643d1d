/* cryo run [--on-crash DIR [--checkpoint-every MS [--keep N]]] -- PROG [ARGS...]: a light
 * supervisor that writes an image when PROG dies of a fatal signal, then lets the signal
 * kill it. With --checkpoint-every it records PROG's inputs from the start and keeps the
 * last N checkpoints; the crash image then carries them and the record log from the
 * oldest on, so the last moments before the crash can be replayed (a field bundle). */
#include "../include/cryo.h"
#include "../src/image.h"

#include <errno.h>
#include <fcntl.h>
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
  uint64_t cgt = 0, ign = 0;
  proc_status(pid, "SigCgt", 16, &cgt);
  proc_status(pid, "SigIgn", 16, &ign);
  return ((cgt | ign) >> (sig - 1)) & 1;
}

#define MAX_KEEP 64

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

/* A positive number for an option, or -1. */
static long positive(const char *s, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v <= 0 || v > max) return -1;
  return v;
}

/* The checkpoints kept while the program runs: the newest `keep`, each tagged with the
 * record position it was taken at. */
struct history {
  long every_ms, keep;
  bool on;
  struct {
    int32_t id;
    uint64_t pos;
  } cp[MAX_KEEP + 1];
  int n;
};

static void take_checkpoint(cryo_session *s, struct history *h) {
  uint64_t pos;
  int32_t id;
  if (cryo_record_position(s, &pos) != CRYO_OK || cryo_checkpoint_create(s, &id) != CRYO_OK) {
    fprintf(stderr, "cryo run: no more checkpoints: %s\n", cryo_last_error());
    h->on = false;
    return;
  }
  h->cp[h->n].id = id;
  h->cp[h->n].pos = pos;
  h->n++;
  if (h->n > h->keep) {
    cryo_checkpoint_delete(s, h->cp[0].id);
    memmove(&h->cp[0], &h->cp[1], (size_t)(h->n - 1) * sizeof h->cp[0]);
    h->n--;
  }
}

/* The kept checkpoints as images (as cryo_image_save makes them), each in a hidden
 * temporary file of dir, opened and unlinked at once: the crash image copies them in. */
static uint32_t save_history(cryo_session *s, struct history *h, const char *dir, const char *base, int32_t pid,
                             struct img_history_src *out) {
  cryo_checkpoint_info info[MAX_KEEP + 1];
  int32_t ninfo = 0;
  if (cryo_checkpoint_list(s, info, MAX_KEEP + 1, &ninfo) != CRYO_OK) ninfo = 0;
  uint32_t k = 0;
  for (int i = 0; i < h->n; i++) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.%s.%d.checkpoint%d.cryo", dir, base, pid, h->cp[i].id);
    if (cryo_image_save(s, h->cp[i].id, tmp) != CRYO_OK) {
      fprintf(stderr, "cryo run: checkpoint %d left out of the image: %s\n", i, cryo_last_error());
      continue;
    }
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    unlink(tmp);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      fprintf(stderr, "cryo run: checkpoint %d left out of the image: %s: %s\n", i, tmp, strerror(errno));
      if (fd >= 0) close(fd);
      continue;
    }
    out[k] = (struct img_history_src){.fd = fd, .len = (uint64_t)st.st_size, .position = h->cp[i].pos};
    for (int j = 0; j < ninfo; j++)
      if (info[j].id == h->cp[i].id) {
        out[k].pc = info[j].pc;
        out[k].time_ns = info[j].created_ns;
      }
    k++;
  }
  return k;
}

int cli_run(int argc, char **argv) {
  const char *dir = NULL;
  struct history hist;
  memset(&hist, 0, sizeof hist);
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
    } else if (!strcmp(argv[i], "--checkpoint-every") || !strcmp(argv[i], "--keep")) {
      bool every = argv[i][2] == 'c';
      long v = i + 1 < argc ? positive(argv[i + 1], every ? 3600000 : MAX_KEEP) : -1;
      if (v < 0) {
        fprintf(stderr, "cryo: run: %s needs %s\n(try 'cryo help')\n", argv[i],
                every ? "a number of milliseconds (1 or more)" : "a number of checkpoints (1 to 64)");
        return 2;
      }
      i++;
      if (every) hist.every_ms = v;
      else hist.keep = v;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "cryo: run: unknown option '%s'\n(try 'cryo help')\n", argv[i]);
      return 2;
    } else {
      break;
    }
  }
  if (i >= argc) {
    fprintf(stderr, "cryo: run: no program: cryo run [--on-crash DIR [--checkpoint-every MS [--keep N]]] -- PROG [ARGS...]\n");
    return 2;
  }
  if (hist.keep && !hist.every_ms) {
    fprintf(stderr, "cryo: run: --keep goes with --checkpoint-every\n(try 'cryo help')\n");
    return 2;
  }
  if (hist.every_ms && !dir) {
    fprintf(stderr, "cryo: run: --checkpoint-every goes with --on-crash DIR (the checkpoints end up in the crash image)\n(try 'cryo help')\n");
    return 2;
  }
  if (hist.every_ms && !hist.keep) hist.keep = 3;
  hist.on = hist.every_ms > 0;
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
  img_timing(NULL);
  cryo_launch_opts o;
  memset(&o, 0, sizeof o);
  o.path = argv[i];
  o.argv = blob;
  o.argc = argc - i;
  o.envc = -1;
  /* without checkpoints nothing is done at the exec stop: the program is resumed in the
   * launch request itself (with them, recording starts first) */
  if (!hist.on) o.flags |= CRYO_LAUNCH_RUN;
  /* without checkpoints this thread only waits while the program runs: it is the tracer
   * itself (no thread to start, no hand-offs); checkpoints need timed waits and interrupts */
  cryo_session *s = hist.on ? cryo_session_new() : cryo_session_new_inline();
  if (!s) {
    fprintf(stderr, "cryo run: %s\n", cryo_last_error());
    return 1;
  }
  img_timing("run: session");
  int32_t pid;
  if (cryo_launch(s, &o, &pid) != CRYO_OK) {
    fprintf(stderr, "cryo run: %s\n", cryo_last_error());
    cryo_session_free(s);
    free(blob);
    return 127;
  }
  free(blob);
  img_timing("run: launch");
  child_pid = pid;
  /* the inputs from the first instruction on, so a checkpoint can be replayed to the crash */
  if (hist.on && cryo_record_start(s) != CRYO_OK) {
    fprintf(stderr, "cryo run: no checkpoints: recording refused: %s\n", cryo_last_error());
    hist.on = false;
  }
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
  bool ended = false; /* the program is gone (its exit or death seen) */
  uint32_t flags = 0;
  bool stopped = !(o.flags & CRYO_LAUNCH_RUN); /* every thread is stopped: continue before waiting */
  bool interrupting = false; /* a checkpoint is due: cryo_interrupt sent, its stop not seen yet */
  uint64_t due = mono_ms() + (uint64_t)hist.every_ms;
  for (;;) {
    if (stopped && cryo_continue(s, flags) != CRYO_OK) {
      fprintf(stderr, "cryo run: %s\n", cryo_last_error());
      break;
    }
    flags = 0;
    stopped = true;
    cryo_event ev;
    int rc;
    for (;;) {
      int32_t timeout = -1;
      if (hist.on && !interrupting) {
        uint64_t now = mono_ms();
        timeout = due > now ? (int32_t)(due - now) : 0;
      }
      rc = cryo_wait_event(s, &ev, timeout);
      if (rc != CRYO_ETIMEDOUT) break;
      if (hist.on && !interrupting) {
        /* one STOPPED event follows: ours (INTERRUPT), or one that came first (a signal,
         * the crash), in which case the checkpoint waits for the next period; if the
         * program is gone, its EXITED/SIGNALED event is queued already */
        cryo_interrupt(s);
        interrupting = true;
      }
    }
    if (rc != CRYO_OK) {
      fprintf(stderr, "cryo run: %s\n", cryo_last_error());
      break;
    }
    if (ev.kind == CRYO_EV_EXITED) {
      img_timing("run: the program ran");
      status = ev.code;
      ended = true;
      break;
    }
    if (ev.kind == CRYO_EV_SIGNALED) {
      status = 128 + ev.signo;
      ended = true;
      break;
    }
    /* a thread came or went while the others run on: nothing to resume */
    if (ev.kind != CRYO_EV_STOPPED) {
      stopped = false;
      continue;
    }
    if (interrupting) {
      interrupting = false;
      due = mono_ms() + (uint64_t)hist.every_ms;
    }
    if (ev.reason == CRYO_STOP_INTERRUPT) {
      if (hist.on) take_checkpoint(s, &hist);
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
    struct img_history_src hs[MAX_KEEP + 1];
    uint32_t nh = hist.n ? save_history(s, &hist, dir, base, pid, hs) : 0;
    if (nh) {
      d.history = hs;
      d.nhistory = nh;
      d.with_log = true;
      d.log_from = hs[0].position;
    }
    struct img_dump_stats st;
    if (cryo_image_dump(s, path, &d, &st) == CRYO_OK)
      fprintf(stderr, "cryo run: %s (signal %d) in process %d: image written to %s%s (%.1f ms)\n", strsignal(ev.signo),
              ev.signo, pid, path, nh ? " with its recent history" : "", (double)st.total_ns / 1e6);
    else
      fprintf(stderr, "cryo run: %s in process %d: the image could not be written: %s\n", strsignal(ev.signo), pid,
              cryo_last_error());
    for (uint32_t k = 0; k < nh; k++) close(hs[k].fd);
    /* the signal stays pending for the thread: the next continue delivers it */
  }
  if (ended && hist.n == 0) {
    /* Nothing of ours is left to end: the program and its threads are gone (its own
     * children were never traced) and no checkpoint copy exists. Closing the session would
     * only be a round trip to the tracer thread and a join: leave at once (the tracer
     * thread is idle, with nothing to trace). */
    fflush(NULL);
    _exit(status);
  }
  cryo_session_close(s);
  img_timing("run: close");
  cryo_session_free(s);
  img_timing("run: free");
  return status;
}
