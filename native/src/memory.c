/* Memory of the debuggee and software breakpoints.
 *
 * Reads go through process_vm_readv (fast, any thread may call it) and fall back to
 * /proc/PID/mem for what it refuses (PROT_NONE pages). Writes use /proc/PID/mem,
 * which the kernel lets a tracer use on read-only text. Breakpoints are int3 bytes;
 * reads show the original instruction, as the program would see it. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int session_open_mem(struct cryo_session *s) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mem", s->pid);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return cryo_fail_errno("open %s", path);
  pthread_mutex_lock(&s->lock);
  int old = s->memfd;
  s->memfd = fd;
  pthread_mutex_unlock(&s->lock);
  if (old >= 0) close(old);
  /* a new address space is the debuggee's: what injections and the first checkpoint
   * need is made ready now, off their critical path */
  inject_new_space(s);
  checkpoint_spare(s);
  return CRYO_OK;
}

static int open_mem_of(struct cryo_session *s, pid_t pid, bool *owned) {
  *owned = false;
  if (pid == s->pid && s->memfd >= 0) return s->memfd;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mem", pid);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd >= 0) *owned = true;
  return fd;
}

/* Reads as much as is mapped; returns the byte count read from the start, or -1. */
ssize_t mem_read_raw(struct cryo_session *s, pid_t pid, uint64_t addr, void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    struct iovec local = {(char *)buf + done, len - done};
    struct iovec remote = {(void *)(uintptr_t)(addr + done), len - done};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n > 0) {
      done += (size_t)n;
      continue;
    }
    /* refused (PROT_NONE, or a fault on the first page): try /proc/PID/mem page by page */
    bool owned;
    int fd = open_mem_of(s, pid, &owned);
    if (fd < 0) break;
    uint64_t a = addr + done;
    size_t chunk = 4096 - (a & 4095);
    if (chunk > len - done) chunk = len - done;
    ssize_t m = pread(fd, (char *)buf + done, chunk, (off_t)a);
    if (owned) close(fd);
    if (m <= 0) break;
    done += (size_t)m;
  }
  if (done == 0 && len > 0) {
    errno = EFAULT;
    return -1;
  }
  return (ssize_t)done;
}

int mem_write_raw(struct cryo_session *s, pid_t pid, uint64_t addr, const void *buf, size_t len) {
  bool owned;
  int fd = open_mem_of(s, pid, &owned);
  if (fd < 0) return cryo_fail_errno("open /proc/%d/mem", pid);
  size_t done = 0;
  int rc = CRYO_OK;
  while (done < len) {
    ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(addr + done));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) errno = EFAULT;
      rc = cryo_fail_errno("write %zu bytes at 0x%llx in pid %d", len - done,
                           (unsigned long long)(addr + done), pid);
      break;
    }
    done += (size_t)n;
  }
  if (owned) close(fd);
  return rc;
}

struct breakpoint *bp_find(struct cryo_session *s, uint64_t addr) {
  for (int i = 0; i < s->nbps; i++)
    if (s->bps[i].addr == addr) return &s->bps[i];
  return NULL;
}

static const uint8_t INT3 = 0xcc;

/* Puts the original bytes back in pid (a checkpoint's copy, before a detach, a vfork):
 * through one descriptor of its memory, whoever pid is. */
int bps_lift(struct cryo_session *s, pid_t pid) {
  if (!s->nbps) return CRYO_OK;
  bool owned;
  int fd = open_mem_of(s, pid, &owned);
  if (fd < 0) return cryo_fail_errno("open /proc/%d/mem", pid);
  int rc = CRYO_OK;
  for (int i = 0; i < s->nbps && rc == CRYO_OK; i++)
    if (pwrite(fd, &s->bps[i].orig, 1, (off_t)s->bps[i].addr) != 1)
      rc = cryo_fail_errno("write the original byte of the breakpoint at 0x%llx in pid %d", (unsigned long long)s->bps[i].addr, pid);
  if (owned) close(fd);
  return rc;
}

int bps_apply(struct cryo_session *s, pid_t pid) {
  for (int i = 0; i < s->nbps; i++) {
    int rc = mem_write_raw(s, pid, s->bps[i].addr, &INT3, 1);
    if (rc != CRYO_OK) return rc;
  }
  return CRYO_OK;
}

int bp_lift_one(struct cryo_session *s, uint64_t addr) {
  struct breakpoint *bp = bp_find(s, addr);
  if (!bp) return CRYO_OK;
  return mem_write_raw(s, s->pid, addr, &bp->orig, 1);
}

void bp_restore_one(struct cryo_session *s, uint64_t addr) {
  if (addr && s->pid && bp_find(s, addr)) mem_write_raw(s, s->pid, addr, &INT3, 1);
}

struct mem_args {
  uint64_t addr;
  const uint8_t *in;
  size_t len;
};

static int do_bp_insert(struct cryo_session *s, void *arg) { return bp_add_ref(s, ((struct mem_args *)arg)->addr); }

static int do_bp_remove(struct cryo_session *s, void *arg) { return bp_drop_ref(s, ((struct mem_args *)arg)->addr); }

/* Breakpoints are counted: the adapter's own and the user's at one address, a step's. */
int bp_add_ref(struct cryo_session *s, uint64_t addr) {
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  struct breakpoint *bp = bp_find(s, addr);
  if (bp) {
    bp->refs++;
    return CRYO_OK;
  }
  if (s->nbps >= MAX_BREAKPOINTS) return cryo_fail(CRYO_EINVAL, "too many breakpoints (%d)", MAX_BREAKPOINTS);
  uint8_t orig;
  if (mem_read_raw(s, s->pid, addr, &orig, 1) != 1)
    return cryo_fail_errno("breakpoint at 0x%llx in pid %d: address not readable", (unsigned long long)addr, s->pid);
  int rc = mem_write_raw(s, s->pid, addr, &INT3, 1);
  if (rc != CRYO_OK) return rc;
  if (!s->bps) {
    s->bps = calloc(MAX_BREAKPOINTS, sizeof *s->bps);
    if (!s->bps) return cryo_fail(CRYO_EFAIL, "out of memory");
  }
  pthread_mutex_lock(&s->lock);
  s->bps[s->nbps].addr = addr;
  s->bps[s->nbps].orig = orig;
  s->bps[s->nbps].refs = 1;
  s->nbps++;
  pthread_mutex_unlock(&s->lock);
  return CRYO_OK;
}

int bp_drop_ref(struct cryo_session *s, uint64_t addr) {
  struct breakpoint *bp = bp_find(s, addr);
  if (!bp) return cryo_fail(CRYO_ENOENT, "no breakpoint at 0x%llx", (unsigned long long)addr);
  if (--bp->refs > 0) return CRYO_OK;
  int rc = s->pid ? mem_write_raw(s, s->pid, bp->addr, &bp->orig, 1) : CRYO_OK;
  /* threads stepping over it must not put it back */
  for (int i = 0; i < s->nthreads; i++)
    if (s->threads[i].over_addr == addr) s->threads[i].over_addr = 0;
  pthread_mutex_lock(&s->lock);
  *bp = s->bps[--s->nbps];
  pthread_mutex_unlock(&s->lock);
  return rc;
}

CRYO_API int cryo_breakpoint_insert(cryo_session *s, uint64_t addr) {
  struct mem_args a = {addr, NULL, 1};
  return run_on_tracer(s, do_bp_insert, &a);
}

CRYO_API int cryo_breakpoint_remove(cryo_session *s, uint64_t addr) {
  struct mem_args a = {addr, NULL, 1};
  return run_on_tracer(s, do_bp_remove, &a);
}

/* Reads happen on the caller's thread: process_vm_readv needs no tracer thread. */
CRYO_API int cryo_read_memory(cryo_session *s, uint64_t addr, uint8_t *buf, size_t len, size_t *nread) {
  if (!s || (!buf && len)) return cryo_fail(CRYO_EINVAL, "cryo_read_memory: null argument");
  pthread_mutex_lock(&s->lock);
  pid_t pid = s->pid;
  pthread_mutex_unlock(&s->lock);
  if (nread) *nread = 0;
  if (!pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  ssize_t n = mem_read_raw(s, pid, addr, buf, len);
  if (n < 0) return cryo_fail_errno("read %zu bytes at 0x%llx in pid %d", len, (unsigned long long)addr, pid);
  pthread_mutex_lock(&s->lock);
  for (int i = 0; i < s->nbps; i++) {
    uint64_t b = s->bps[i].addr;
    if (b >= addr && b < addr + (uint64_t)n) buf[b - addr] = s->bps[i].orig;
  }
  pthread_mutex_unlock(&s->lock);
  if (nread) *nread = (size_t)n;
  cryo_clear_error();
  return CRYO_OK;
}

static int do_write(struct cryo_session *s, void *arg) {
  struct mem_args *a = arg;
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  int rc = mem_write_raw(s, s->pid, a->addr, a->in, a->len);
  if (rc != CRYO_OK) return rc;
  /* new bytes under a breakpoint become its original; the int3 stays */
  for (int i = 0; i < s->nbps; i++) {
    uint64_t b = s->bps[i].addr;
    if (b >= a->addr && b < a->addr + a->len) {
      s->bps[i].orig = a->in[b - a->addr];
      mem_write_raw(s, s->pid, b, &INT3, 1);
    }
  }
  return CRYO_OK;
}

CRYO_API int cryo_write_memory(cryo_session *s, uint64_t addr, const uint8_t *buf, size_t len) {
  if (!s || (!buf && len)) return cryo_fail(CRYO_EINVAL, "cryo_write_memory: null argument");
  struct mem_args a = {addr, buf, len};
  return run_on_tracer(s, do_write, &a);
}
