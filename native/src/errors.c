/* Per-thread error messages: the caller of a failed function reads its own. */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char errbuf[1024];

int cryo_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return status;
}

/* Appends strerror(errno) and picks the status from errno (EPERM/EACCES: CRYO_EPERM). */
int cryo_fail_errno(const char *fmt, ...) {
  int e = errno;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n < sizeof errbuf)
    snprintf(errbuf + n, sizeof errbuf - (size_t)n, ": %s (errno %d)", strerror(e), e);
  if (e == EPERM || e == EACCES) return CRYO_EPERM;
  if (e == ESRCH) return CRYO_ENOPROC;
  return CRYO_EFAIL;
}

void dbg(const char *fmt, ...) {
  static int on = -1;
  if (on < 0) on = getenv("CRYO_DEBUG") != NULL;
  if (!on) return;
  va_list ap;
  va_start(ap, fmt);
  static uint64_t t0; /* microseconds since the first line: where a stop's time goes */
  uint64_t t = now_ns(CLOCK_MONOTONIC);
  if (!t0) t0 = t;
  fprintf(stderr, "[cryo %6llu] ", (unsigned long long)(t - t0) / 1000);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void cryo_clear_error(void) { errbuf[0] = 0; }

void cryo_copy_error(char *dst, size_t len) {
  snprintf(dst, len, "%s", errbuf);
}

void cryo_set_error_text(const char *msg) { snprintf(errbuf, sizeof errbuf, "%s", msg); }

CRYO_API const char *cryo_last_error(void) { return errbuf; }
