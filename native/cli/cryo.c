/* cryo: the native command. Runs without Node or an editor. */
#include "../include/cryo.h"
#include "../src/image.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int cli_run(int argc, char **argv);
int cli_restore(int argc, char **argv);

static void usage(FILE *out) {
  fprintf(out,
          "usage: cryo <command> [options]\n"
          "\n"
          "commands:\n"
          "  dump PID -o FILE [--leave-running | --kill]\n"
          "                 freeze process PID (every thread), write its image to FILE (mode 0600,\n"
          "                 written to a temporary file, fsynced, renamed), then detach (default,\n"
          "                 or --leave-running) or kill it (--kill, only once the image is safe)\n"
          "  inspect FILE [--json] [--checkpoint I]\n"
          "                 validate an image and print what it holds (--json: the schema is in\n"
          "                 docs/image-format.md); --checkpoint I: checkpoint I (0 the oldest) of\n"
          "                 the history a crash image of 'run --checkpoint-every' carries\n"
          "  export-core IMAGE -o CORE\n"
          "                 write the image as an ELF core file that gdb opens ('gdb PROG CORE'):\n"
          "                 every thread's registers, the crash signal, the memory (mode 0600,\n"
          "                 written to a temporary file, fsynced, renamed)\n"
          "  restore FILE [--wait]\n"
          "                 check the image against this machine, rebuild the process at its\n"
          "                 original addresses and let it run; prints the new PID (--wait: wait for\n"
          "                 it and exit with its exit code, or 128+signal)\n"
          "  run [--on-crash DIR [--checkpoint-every MS [--keep N]]] -- PROG [ARGS...]\n"
          "                 run PROG; on SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT write\n"
          "                 DIR/<prog>.<pid>.<time>.cryo, then let the signal kill it; exits as PROG\n"
          "                 does (its code, or 128+signal), its stdio untouched\n"
          "                 --checkpoint-every MS: record PROG's inputs (syscall results, time,\n"
          "                 randomness) from the start and take a checkpoint every MS milliseconds,\n"
          "                 keeping the last N (--keep, 1 to 64, default 3); the crash image then\n"
          "                 carries them, each a complete image, and the record log from the oldest\n"
          "                 to the crash, so the crash can be replayed from any of them\n"
          "                 (single-threaded programs that do not fork; see 'History' in\n"
          "                 docs/image-format.md)\n"
          "  version        print the version of cryo and of its engine ABI\n"
          "  help           this text\n"
          "\n"
          "exit codes:\n"
          "  0    success\n"
          "  1    the operation failed (message on stderr): no such process, permission, corrupt or\n"
          "       incompatible image, disk full, ...\n"
          "  2    usage error\n"
          "  restore --wait and run: the program's own exit code, or 128+signal (run: 127 when\n"
          "       PROG cannot be started)\n");
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "cryo: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(try 'cryo help')\n");
  return 2;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmd_dump(int argc, char **argv) {
  const char *pidarg = NULL, *out = NULL;
  int mode = 0; /* 0 detach, 1 kill */
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
      if (++i >= argc) return usage_error("%s needs a file name", argv[i - 1]);
      out = argv[i];
    } else if (!strcmp(argv[i], "--leave-running")) {
      mode = 0;
    } else if (!strcmp(argv[i], "--kill")) {
      mode = 1;
    } else if (argv[i][0] == '-') {
      return usage_error("dump: unknown option '%s'", argv[i]);
    } else if (!pidarg) {
      pidarg = argv[i];
    } else {
      return usage_error("dump: unexpected argument '%s'", argv[i]);
    }
  }
  if (!pidarg) return usage_error("%s", "dump: which process? usage: cryo dump PID -o FILE [--leave-running | --kill]");
  if (!out) return usage_error("%s", "dump: no output file: cryo dump PID -o FILE");
  char *end;
  long pid = strtol(pidarg, &end, 10);
  if (*end || pid <= 0 || pid > INT32_MAX) return usage_error("dump: '%s' is not a process id", pidarg);

  uint64_t t0 = mono_ns();
  cryo_session *s = cryo_session_new();
  if (!s) {
    fprintf(stderr, "cryo dump: %s\n", cryo_last_error());
    return 1;
  }
  uint64_t tf0 = mono_ns();
  int rc = cryo_attach(s, (int32_t)pid);
  if (rc != CRYO_OK) {
    fprintf(stderr, "cryo dump: %s\n", cryo_last_error());
    cryo_session_free(s);
    return 1;
  }
  struct img_dump_stats st;
  struct img_pending *pd = NULL;
  struct img_dump_opts o = {.reason = REASON_SNAPSHOT};
  rc = cryo_image_dump_begin(s, out, &o, &st, &pd);
  if (rc != CRYO_OK) {
    fprintf(stderr, "cryo dump: %s (the process was left running)\n", cryo_last_error());
    cryo_detach(s);
    cryo_session_free(s);
    return 1;
  }
  uint64_t frozen = 0;
  if (mode == 0) {
    /* the process runs on while the image is made durable */
    rc = cryo_detach(s);
    frozen = mono_ns() - tf0;
    if (rc != CRYO_OK) fprintf(stderr, "cryo dump: detach: %s\n", cryo_last_error());
    rc = cryo_image_commit(pd);
    if (rc != CRYO_OK) {
      fprintf(stderr, "cryo dump: %s\n", cryo_last_error());
      cryo_session_free(s);
      return 1;
    }
  } else {
    rc = cryo_image_commit(pd);
    if (rc != CRYO_OK) {
      fprintf(stderr, "cryo dump: %s (the process was left running)\n", cryo_last_error());
      cryo_detach(s);
      cryo_session_free(s);
      return 1;
    }
    cryo_kill(s);
    frozen = mono_ns() - tf0;
  }
  cryo_session_close(s);
  cryo_session_free(s);
  uint64_t total = mono_ns() - t0;
  fprintf(stderr,
          "cryo dump: process %ld written to %s: %llu bytes; pages: %llu data, %llu zero, %llu absent, %llu "
          "unreadable, %llu clean file; frozen %.1f ms, total %.1f ms%s\n",
          pid, out, (unsigned long long)st.file_size, (unsigned long long)st.pages[PK_DATA],
          (unsigned long long)st.pages[PK_ZERO], (unsigned long long)st.pages[PK_ABSENT],
          (unsigned long long)st.pages[PK_UNREADABLE], (unsigned long long)st.pages[PK_FILE], ms(frozen), ms(total),
          mode == 1 ? "; process killed" : "");
  return 0;
}

static int cmd_inspect(int argc, char **argv) {
  const char *file = NULL;
  bool json = false;
  long checkpoint = -1;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      json = true;
    } else if (!strcmp(argv[i], "--checkpoint")) {
      char *end;
      if (++i >= argc) return usage_error("%s", "inspect: --checkpoint needs the index of a checkpoint of the history");
      checkpoint = strtol(argv[i], &end, 10);
      if (*end || end == argv[i] || checkpoint < 0 || checkpoint > INT32_MAX)
        return usage_error("inspect: --checkpoint '%s': not the index of a checkpoint (0, 1, ...)", argv[i]);
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return usage_error("inspect: unknown option '%s'", argv[i]);
    } else if (!file) {
      file = argv[i];
    } else {
      return usage_error("inspect: unexpected argument '%s'", argv[i]);
    }
  }
  if (!file) return usage_error("%s", "inspect: which image? usage: cryo inspect FILE [--json] [--checkpoint I]");
  struct cryo_image *img;
  if (cryo_image_open(file, &img) != CRYO_OK) {
    fprintf(stderr, "cryo inspect: %s\n", cryo_last_error());
    return 1;
  }
  if (checkpoint >= 0) {
    /* one checkpoint of the history, as an image of its own */
    struct cryo_image *cp;
    int rc = cryo_image_open_checkpoint(img, (int32_t)checkpoint, &cp);
    cryo_image_close(img);
    if (rc != CRYO_OK) {
      fprintf(stderr, "cryo inspect: %s\n", cryo_last_error());
      return 1;
    }
    img = cp;
  }
  if (json) image_print_json(img, stdout);
  else image_print_text(img, stdout);
  cryo_image_close(img);
  if (fflush(stdout) != 0) {
    fprintf(stderr, "cryo inspect: writing the output: %s\n", strerror(errno));
    return 1;
  }
  return 0;
}

static int cmd_export_core(int argc, char **argv) {
  const char *file = NULL, *out = NULL;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
      if (++i >= argc) return usage_error("%s needs a file name", argv[i - 1]);
      out = argv[i];
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return usage_error("export-core: unknown option '%s'", argv[i]);
    } else if (!file) {
      file = argv[i];
    } else {
      return usage_error("export-core: unexpected argument '%s'", argv[i]);
    }
  }
  if (!file) return usage_error("%s", "export-core: which image? usage: cryo export-core IMAGE -o CORE");
  if (!out) return usage_error("%s", "export-core: no output file: cryo export-core IMAGE -o CORE");
  /* a file size limit must fail the write (EFBIG), not kill us with a temporary file left */
  signal(SIGXFSZ, SIG_IGN);
  struct cryo_image *img;
  if (cryo_image_open(file, &img) != CRYO_OK) {
    fprintf(stderr, "cryo export-core: %s\n", cryo_last_error());
    return 1;
  }
  struct img_core_stats st;
  int rc = image_export_core(img, out, &st);
  cryo_image_close(img);
  if (rc != CRYO_OK) {
    fprintf(stderr, "cryo export-core: %s\n", cryo_last_error());
    return 1;
  }
  fprintf(stderr,
          "cryo export-core: %s written to %s: %llu bytes, %llu thread(s), %llu segments (%llu with content); pages: "
          "%llu stored, %llu zero, %llu without content in the image (written as zeros)\n",
          file, out, (unsigned long long)st.file_size, (unsigned long long)st.threads, (unsigned long long)st.segments,
          (unsigned long long)st.stored_segments, (unsigned long long)st.content_pages,
          (unsigned long long)st.zero_pages, (unsigned long long)st.missing_pages);
  if (st.changed_files)
    fprintf(stderr,
            "cryo export-core: warning: %llu mapped file(s) changed or are gone since the image was made; their clean "
            "pages in the core are what the files hold now\n",
            (unsigned long long)st.changed_files);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("cryo %s (engine ABI %d, image format %d)\n", cryo_version(), cryo_abi_version(), IMG_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "dump")) return cmd_dump(argc, argv);
  if (!strcmp(cmd, "inspect")) return cmd_inspect(argc, argv);
  if (!strcmp(cmd, "export-core")) return cmd_export_core(argc, argv);
  if (!strcmp(cmd, "restore")) return cli_restore(argc, argv);
  if (!strcmp(cmd, "run")) return cli_run(argc, argv);
  fprintf(stderr, "cryo: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
