/* In-memory checkpoints.
 *
 * FULL: a frozen copy-on-write copy of the debuggee (fork_frozen_copy), plus what a
 * copy does not carry by itself: the offsets of its open files, which a fork shares
 * with the original rather than copies.
 * DELTA: once a FULL one exists, the pages the program wrote since the previous
 * checkpoint (found by the dirty-page tracker, dirty.c, without touching the rest),
 * with registers, xsave and offsets. A fork of a 1 GiB process costs ~13 ms; a delta
 * costs what was written. When the memory layout changes (mmap, brk, stack growth)
 * the next checkpoint is FULL again, because a delta only carries page contents.
 * Restoring forks the FULL root and writes the deltas on the path to the target, so
 * every checkpoint can be restored any number of times. */
#include "internal.h"
#include "dirty.h"
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ull
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_userfaultfd
#define SYS_userfaultfd 323
#endif

static struct checkpoint *cp_find(struct cryo_session *s, int id) {
  for (int i = 0; i < s->ncps; i++)
    if (s->cps[i]->id == id && !s->cps[i]->hidden) return s->cps[i];
  return NULL;
}

/* The error for an id cp_find did not find: why, when it failed to complete. */
static int cp_missing(struct cryo_session *s, int id) {
  if (id == s->settle_failed_id) return cryo_fail(CRYO_ENOENT, "%s", s->settle_error);
  return cryo_fail(CRYO_ENOENT, "no checkpoint %d", id);
}

/* Offsets of the regular files the process has open. */
static void record_fds(pid_t pid, struct checkpoint *cp) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fdinfo", pid);
  DIR *d = opendir(path);
  cp->nfds = 0;
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) && cp->nfds < MAX_FDS) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = atoi(e->d_name);
    char link[64];
    struct stat st;
    snprintf(link, sizeof link, "/proc/%d/fd/%d", pid, fd);
    if (stat(link, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    char info[96];
    snprintf(info, sizeof info, "/proc/%d/fdinfo/%d", pid, fd);
    FILE *f = fopen(info, "r");
    if (!f) continue;
    long long pos = -1;
    char line[128];
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "pos: %lld", &pos) == 1) break;
    fclose(f);
    if (pos < 0) continue;
    cp->fds[cp->nfds].fd = fd;
    cp->fds[cp->nfds].pos = pos;
    cp->nfds++;
  }
  closedir(d);
}

/* /proc/PID/maps as text: a delta is only valid while the layout stays the same. */
static char *read_maps(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 16384, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) break;
    if (len + 4096 > cap) {
      char *n = realloc(buf, cap * 2);
      if (!n) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = n;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + len, cap - len - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  if (buf) buf[len] = 0;
  return buf;
}

static void kill_and_reap(struct cryo_session *s, pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  for (;;) {
    int st;
    if (wait_for_stop(s, pid, &st) != CRYO_OK) return;
    if (WIFEXITED(st) || WIFSIGNALED(st)) return;
  }
}

/* Page data lives in its own mapping, populated up front: faulting in 10 MiB page by
 * page inside process_vm_readv costs more than the copy itself. */
static uint8_t *page_alloc(size_t pages) {
  size_t len = (pages ? pages : 1) * PAGE;
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void page_free(uint8_t *p, size_t pages) {
  if (p) munmap(p, (pages ? pages : 1) * PAGE);
}

static void free_cp(struct checkpoint *cp) {
  free(cp->xstate);
  free(cp->maps);
  free(cp->addrs);
  page_free(cp->data, cp->data_pages);
  free(cp->zero);
  free(cp);
}

static struct checkpoint *root_of(struct checkpoint *cp) {
  while (cp->kind == CP_DELTA) cp = cp->parent;
  return cp;
}

static void collect_hidden(struct cryo_session *s);

/* ---- the dirty-page tracker of the live process ---- */

void checkpoints_forget_live(struct cryo_session *s) {
  if (s->dirty) cryo_dirty_close(s->dirty);
  if (s->uffd >= 0 && s->dirty) close(s->uffd);
  s->dirty = NULL;
  s->uffd = -1;
  s->head = NULL;
}

/* Creates a userfaultfd inside the tracee (its context is the tracee's memory), takes
 * a copy of it here with pidfd_getfd, and closes the tracee's: the program never
 * sees a new descriptor. */
static void tracking_start(struct cryo_session *s, pid_t tid) {
  if (s->dirty || s->dirty_unsupported) return;
  s->uffd = -1;
  uint64_t a[6] = {O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0};
  int64_t fd = -1;
  if (inject_syscall(s, tid, SYS_userfaultfd, a, &fd) != CRYO_OK || fd < 0) {
    snprintf(s->dirty_why, sizeof s->dirty_why, "userfaultfd refused in the debuggee (%lld): every checkpoint is a full copy", (long long)fd);
    s->dirty_unsupported = true;
    return;
  }
  int pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
  int mine = pidfd >= 0 ? (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0) : -1;
  int e = errno;
  if (pidfd >= 0) close(pidfd);
  uint64_t c[6] = {(uint64_t)fd, 0, 0, 0, 0, 0};
  int64_t ignored;
  inject_syscall(s, tid, SYS_close, c, &ignored);
  if (mine < 0) {
    snprintf(s->dirty_why, sizeof s->dirty_why, "pidfd_getfd: %s: every checkpoint is a full copy", strerror(e));
    s->dirty_unsupported = true;
    return;
  }
  char err[256];
  struct cryo_dirty *d = NULL;
  int rc = cryo_dirty_open(s->pid, mine, &d, err, sizeof err);
  if (rc != CRYO_DIRTY_OK) {
    close(mine);
    snprintf(s->dirty_why, sizeof s->dirty_why, "%s: every checkpoint is a full copy", err);
    if (rc == CRYO_DIRTY_UNSUPPORTED) s->dirty_unsupported = true;
    return;
  }
  s->dirty = d;
  s->uffd = mine;
  snprintf(s->dirty_why, sizeof s->dirty_why, "written pages are tracked: checkpoints after the first are deltas");
}

/* ---- taking checkpoints ---- */

/* A checkpoint's own memory, allocated and touched ahead (when a process is new, and
 * after each checkpoint settles): on this VM a first touch of fresh memory is a fault
 * of about 11 us, and a first checkpoint, often the first allocation in its tracer
 * thread's arena, paid 35-50 us of them before it could start. */
void checkpoint_spare(struct cryo_session *s) {
  if (!s->spare_cp && (s->spare_cp = malloc(sizeof *s->spare_cp))) memset(s->spare_cp, 0, sizeof *s->spare_cp);
  if (!s->spare_xs && (s->spare_xs = malloc(XSTATE_MAX))) memset(s->spare_xs, 0, XSTATE_MAX);
}

/* The copy at its first stop, with the program's own bytes where our int3s are: they
 * are lifted in the copy (its own copy-on-write of their pages, off the critical path)
 * rather than in the debuggee around the fork, where putting them back broke the
 * sharing of their pages in the debuggee before the checkpoint returned. On failure
 * the copy is killed. */
static int finish_copy(struct cryo_session *s, const struct frozen_copy *fc) {
  int rc = fork_frozen_finish(s, fc);
  if (rc != CRYO_OK) return rc;
  rc = bps_lift(s, fc->child);
  if (rc != CRYO_OK) kill_and_reap(s, fc->child);
  return rc;
}

/* A FULL checkpoint: the frozen copy is cloned now; with `later`, waiting for the
 * copy's first stop, lifting its breakpoints and reading the layout are left to
 * settle_checkpoint (the debuggee stays stopped until then, so none of them changes). */
static int take_full(struct cryo_session *s, struct checkpoint *cp, pid_t tid, bool later) {
  struct frozen_copy fc = {0};
  int rc = fork_frozen_start(s, tid, &fc);
  if (rc == CRYO_OK && !later) rc = finish_copy(s, &fc);
  if (rc != CRYO_OK) return rc;
  pthread_mutex_lock(&s->lock);
  cp->kind = CP_FULL;
  cp->pid = fc.child;
  s->settling_copy = fc;
  s->settling_copy_pending = later;
  pthread_mutex_unlock(&s->lock);
  if (!later) cp->maps = read_maps(s->pid);
  return CRYO_OK;
}

/* Arms the tracker at the stop a FULL checkpoint was taken at: from here on, written
 * pages are known. */
static void arm_tracking(struct cryo_session *s, pid_t tid) {
  tracking_start(s, tid);
  if (s->dirty) {
    char err[256];
    if (cryo_dirty_arm(s->dirty, err, sizeof err) != CRYO_DIRTY_OK) {
      snprintf(s->dirty_why, sizeof s->dirty_why, "%s", err);
      checkpoints_forget_live(s);
    }
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

typedef ssize_t (*vm_io)(pid_t, const struct iovec *, unsigned long, const struct iovec *, unsigned long, unsigned long);

/* Moves a delta's pages between cp->data and process pid, 512 pages per syscall
 * (process_vm_readv or process_vm_writev); the pages it refuses (PROT_NONE, read-only)
 * go one by one to `slow` (through /proc/PID/mem). */
static int move_pages(struct cryo_session *s, pid_t pid, struct checkpoint *cp, vm_io io,
                      int (*slow)(struct cryo_session *, pid_t, uint64_t, uint8_t *)) {
  enum { BATCH = 512 };
  struct iovec local[BATCH], remote[BATCH];
  size_t i = 0;
  while (i < cp->npages) {
    size_t k = 0, first = i;
    for (; i < cp->npages && k < BATCH; i++, k++) {
      local[k] = (struct iovec){cp->data + i * PAGE, PAGE};
      remote[k] = (struct iovec){(void *)(uintptr_t)cp->addrs[i], PAGE};
    }
    ssize_t n = io(pid, local, k, remote, k, 0);
    size_t done = n > 0 ? (size_t)n / PAGE : 0;
    for (size_t j = first + done; j < first + k; j++) {
      int rc = slow(s, pid, cp->addrs[j], cp->data + j * PAGE);
      if (rc != CRYO_OK) return rc;
    }
  }
  return CRYO_OK;
}

static int read_page_slow(struct cryo_session *s, pid_t pid, uint64_t addr, uint8_t *data) {
  if (mem_read_raw(s, pid, addr, data, PAGE) != (ssize_t)PAGE) memset(data, 0, PAGE); /* unreadable: zeros */
  return CRYO_OK;
}

static int write_page_slow(struct cryo_session *s, pid_t pid, uint64_t addr, uint8_t *data) {
  return mem_write_raw(s, pid, addr, data, PAGE);
}

/* Reads the listed pages of the live process into cp->data. */
static int copy_pages(struct cryo_session *s, struct checkpoint *cp) {
  move_pages(s, s->pid, cp, process_vm_readv, read_page_slow);
  /* the program's bytes, not our int3s */
  for (int b = 0; b < s->nbps; b++) {
    uint64_t page = s->bps[b].addr & ~(PAGE - 1);
    uint64_t *hit = bsearch(&page, cp->addrs, cp->npages, sizeof *cp->addrs, cmp_u64);
    if (hit) cp->data[(size_t)(hit - cp->addrs) * PAGE + (s->bps[b].addr - page)] = s->bps[b].orig;
  }
  return CRYO_OK;
}

/* Whether addr lies in an anonymous mapping (inode 0) of a /proc/PID/maps text. */
static bool is_anonymous(const char *maps, uint64_t addr) {
  for (const char *l = maps; l && *l;) {
    unsigned long long lo, hi, off, ino;
    char perms[8];
    unsigned maj, min;
    if (sscanf(l, "%llx-%llx %7s %llx %x:%x %llu", &lo, &hi, perms, &off, &maj, &min, &ino) == 7 && addr >= lo && addr < hi)
      return ino == 0;
    l = strchr(l, '\n');
    if (l) l++;
  }
  return false;
}

/* Whether the memory layout is still the one the head's root froze: a delta only
 * carries page contents. */
static bool same_layout(struct cryo_session *s) {
  if (!s->dirty || !s->head) return false;
  char *maps = read_maps(s->pid);
  struct checkpoint *root = root_of(s->head);
  bool same = maps && root->maps && strcmp(maps, root->maps) == 0;
  free(maps);
  return same;
}

/* Fills delta cp with what the tracker saw written. Returns 1 when done, 0 when a FULL
 * checkpoint is needed instead (the layout changed after all, or the tracker failed),
 * -1 on error. */
static int take_delta(struct cryo_session *s, struct checkpoint *cp) {
  struct checkpoint *root = root_of(s->head);
  cryo_dirty_range *r;
  size_t n;
  char err[256];
  uint64_t t1 = now_ns(CLOCK_MONOTONIC);
  if (cryo_dirty_collect(s->dirty, &r, &n, err, sizeof err) != CRYO_DIRTY_OK) {
    snprintf(s->dirty_why, sizeof s->dirty_why, "%s", err);
    checkpoints_forget_live(s);
    return 0;
  }
  /* what to copy: written pages; unpopulated anonymous runs are zeros, kept as ranges */
  size_t pages = 0, zeros = 0;
  for (size_t i = 0; i < n; i++) {
    if (r[i].flags & CRYO_DIRTY_NEW) return 0; /* layout changed after all */
    if ((r[i].flags & CRYO_DIRTY_UNTRACKED) && (r[i].flags & CRYO_DIRTY_SHARED)) continue;
    if ((r[i].flags & CRYO_DIRTY_UNPOPULATED) && is_anonymous(root->maps, r[i].start)) zeros++;
    else pages += (size_t)((r[i].end - r[i].start) / PAGE);
  }
  cp->addrs = malloc((pages ? pages : 1) * sizeof *cp->addrs);
  cp->data = page_alloc(pages);
  cp->zero = malloc((zeros ? zeros : 1) * sizeof *cp->zero);
  cp->data_pages = pages;
  if (!cp->addrs || !cp->data || !cp->zero) return cryo_fail(CRYO_EFAIL, "out of memory for a checkpoint of %zu pages", pages), -1;
  for (size_t i = 0; i < n; i++) {
    if ((r[i].flags & CRYO_DIRTY_UNTRACKED) && (r[i].flags & CRYO_DIRTY_SHARED))
      continue; /* shared memory is not rewound (as with a fork checkpoint) */
    if ((r[i].flags & CRYO_DIRTY_UNPOPULATED) && is_anonymous(root->maps, r[i].start)) {
      cp->zero[cp->nzero][0] = r[i].start;
      cp->zero[cp->nzero][1] = r[i].end;
      cp->nzero++;
      continue;
    }
    for (uint64_t a = r[i].start; a < r[i].end; a += PAGE) cp->addrs[cp->npages++] = a;
  }
  uint64_t t2 = now_ns(CLOCK_MONOTONIC);
  /* ranges may overlap (UNTRACKED ones with WRITTEN ones): sort and drop repeats */
  qsort(cp->addrs, cp->npages, sizeof *cp->addrs, cmp_u64);
  size_t w = 0;
  for (size_t i = 0; i < cp->npages; i++)
    if (w == 0 || cp->addrs[i] != cp->addrs[w - 1]) cp->addrs[w++] = cp->addrs[i];
  cp->npages = w;
  uint64_t t3 = now_ns(CLOCK_MONOTONIC);
  copy_pages(s, cp);
  dbg("delta: %zu pages, %zu zero ranges; collect %.3f ms, sort %.3f ms, copy %.3f ms", cp->npages, cp->nzero,
      (t2 - t1) / 1e6, (t3 - t2) / 1e6, (now_ns(CLOCK_MONOTONIC) - t3) / 1e6);
  return 1;
}

static void unlink_cp(struct cryo_session *s, struct checkpoint *cp);

/* A delta that turned out to need a FULL copy becomes one: no pages, no parent. */
static void delta_to_full(struct cryo_session *s, struct checkpoint *cp) {
  free(cp->addrs);
  page_free(cp->data, cp->data_pages);
  free(cp->zero);
  pthread_mutex_lock(&s->lock);
  cp->addrs = NULL;
  cp->data = NULL;
  cp->zero = NULL;
  cp->npages = cp->nzero = cp->data_pages = 0;
  if (cp->parent) cp->parent->children--;
  cp->parent = NULL;
  cp->kind = CP_FULL;
  cp->pid = 0;
  pthread_mutex_unlock(&s->lock);
}

/* The stopped thread's xsave area into cp, in the spare buffer when there is one. */
static int read_xstate(struct cryo_session *s, struct checkpoint *cp, pid_t tid) {
  uint8_t *xs = s->spare_xs ? s->spare_xs : malloc(XSTATE_MAX);
  s->spare_xs = NULL;
  if (!xs) return cryo_fail(CRYO_EFAIL, "out of memory");
  int rc = xstate_get(tid, xs, XSTATE_MAX, &cp->xstate_len);
  if (rc != CRYO_OK) {
    free(xs);
    return rc;
  }
  cp->xstate = realloc(xs, cp->xstate_len);
  if (!cp->xstate) cp->xstate = xs;
  return CRYO_OK;
}

/* The rest of a checkpoint, done on the tracer thread after cryo_checkpoint_create has
 * returned: the debuggee stays stopped, and every later command (resume, poke,
 * restore...) queues behind this, so nothing can change the state being taken. What
 * is left is what does not need the caller: copying the written pages of a delta,
 * arming the tracker after a FULL one, the file offsets. */
static void settle_checkpoint(struct cryo_session *s) {
  struct checkpoint *cp = s->settling;
  uint64_t t0 = now_ns(CLOCK_MONOTONIC);
  pid_t tid = s->threads[0].tid;
  int rc = CRYO_OK;
  if (s->settling_copy_pending) {
    s->settling_copy_pending = false;
    rc = finish_copy(s, &s->settling_copy);
    if (rc != CRYO_OK) cp->pid = 0; /* killed */
    else cp->maps = read_maps(s->pid);
    dbg("settle: the copy's first stop %.3f ms", (now_ns(CLOCK_MONOTONIC) - t0) / 1e6);
  }
  if (rc == CRYO_OK) rc = read_xstate(s, cp, tid);
  if (rc == CRYO_OK && cp->kind == CP_DELTA) {
    bool same = same_layout(s);
    dbg("settle: layout check %.3f ms", (now_ns(CLOCK_MONOTONIC) - t0) / 1e6);
    int d = same ? take_delta(s, cp) : 0;
    if (d < 0) rc = CRYO_EFAIL;
    else if (d == 0) {
      delta_to_full(s, cp);
      rc = take_full(s, cp, tid, false);
    }
  }
  if (rc == CRYO_OK && cp->kind == CP_FULL) arm_tracking(s, tid);
  uint64_t tf = now_ns(CLOCK_MONOTONIC);
  if (rc == CRYO_OK) record_fds(s->pid, cp);
  dbg("settle: fds %.3f ms, total %.3f ms", (now_ns(CLOCK_MONOTONIC) - tf) / 1e6, (now_ns(CLOCK_MONOTONIC) - t0) / 1e6);
  if (rc != CRYO_OK) {
    /* the checkpoint cannot be completed: it goes, and asking for it says why */
    char msg[1024];
    cryo_copy_error(msg, sizeof msg);
    snprintf(s->settle_error, sizeof s->settle_error, "checkpoint %d could not be completed: %s", cp->id, msg);
    s->settle_failed_id = cp->id;
    if (cp->kind == CP_DELTA && cp->parent) cp->parent->children--;
    if (cp->kind == CP_FULL) kill_and_reap(s, cp->pid); /* a copy no checkpoint holds */
    unlink_cp(s, cp);
    free_cp(cp);
    checkpoints_forget_live(s);
  } else {
    cp->create_ns += now_ns(CLOCK_MONOTONIC) - t0;
    s->head = s->dirty ? cp : NULL;
  }
  collect_hidden(s); /* a hidden former head may be free now */
  checkpoint_spare(s);
}

static int do_cp_create(struct cryo_session *s, void *arg) {
  int32_t *id = arg;
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  if (any_running(s)) return cryo_fail(CRYO_ERUNNING, "checkpoints are taken while the process is stopped");
  if (s->nthreads != 1)
    return cryo_fail(CRYO_EUNSUPPORTED,
                     "process %d has %d threads: in-memory checkpoints of several threads are not supported yet (a fork keeps only one thread)",
                     s->pid, s->nthreads);
  if (s->ncps >= MAX_CHECKPOINTS) return cryo_fail(CRYO_EINVAL, "too many checkpoints (%d)", MAX_CHECKPOINTS);
  uint64_t t0 = now_ns(CLOCK_MONOTONIC);
  struct checkpoint *cp = s->spare_cp ? s->spare_cp : calloc(1, sizeof *cp);
  s->spare_cp = NULL;
  if (!cp) return cryo_fail(CRYO_EFAIL, "out of memory");
  pid_t tid = s->threads[0].tid;
  /* at the seccomp stop of a syscall being recorded, before it ran: un-enter it, so
   * that the checkpoint (and every copy of it) runs the syscall again and it is recorded
   * at the position the checkpoint is tagged with, rather than returning the -ENOSYS of
   * a stop the copy never had */
  if (s->threads[0].rec_pending) {
    int rc0 = seccomp_unenter(s, &s->threads[0]);
    if (rc0 != CRYO_OK) {
      free(cp);
      return rc0;
    }
  }
  /* the xsave area (about 1 KiB over ptrace) is read in settle_checkpoint: nothing can
   * change it before then, and it is off the path the caller waits for */
  int rc = regs_get(tid, &cp->regs);
  if (rc != CRYO_OK) {
    free(cp);
    return rc;
  }
  /* stopped inside a sleep (or poll) the kernel would finish through its restart block:
   * a copy has none (it would see EINTR), so the copy runs the syscall itself again,
   * its arguments still in the registers (ERESTARTNOINTR) */
  if ((int64_t)cp->regs.rax == -516 && (int64_t)cp->regs.orig_rax >= 0) cp->regs.rax = (unsigned long long)-513;
  /* A delta's pages are copied after returning (settle_checkpoint), where a changed
   * layout also turns it into a FULL copy. A first checkpoint is forked now, since a fork
   * is what it is measured against; only the tracker's arming waits. */
  if (s->dirty && s->head) {
    cp->kind = CP_DELTA;
    cp->parent = s->head;
    s->head->children++;
  } else {
    rc = take_full(s, cp, tid, true);
    if (rc != CRYO_OK) {
      free_cp(cp);
      return rc;
    }
  }
  cp->id = s->next_cp_id++;
  cp->created_ns = now_ns(CLOCK_REALTIME);
  cp->create_ns = now_ns(CLOCK_MONOTONIC) - t0;
  dbg("create: %.3f ms (%s)", cp->create_ns / 1e6, cp->kind == CP_FULL ? "full" : "delta");
  pthread_mutex_lock(&s->lock);
  s->cps[s->ncps++] = cp;
  s->settling = cp;
  s->settle = settle_checkpoint;
  pthread_mutex_unlock(&s->lock);
  *id = cp->id;
  return CRYO_OK;
}

CRYO_API int cryo_checkpoint_create(cryo_session *s, int32_t *id) {
  if (!s || !id) return cryo_fail(CRYO_EINVAL, "cryo_checkpoint_create: null argument");
  return run_on_tracer(s, do_cp_create, id);
}

/* ---- restoring ---- */

/* The replaced debuggee goes without an exit event: it did not exit, it was replaced. */
static void discard_debuggee(struct cryo_session *s) {
  checkpoints_forget_live(s);
  if (!s->pid) return;
  pid_t pid = s->pid;
  kill(pid, SIGKILL);
  for (;;) {
    int st;
    pid_t r = waitpid(-1, &st, __WALL | __WNOTHREAD);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (r == pid && (WIFEXITED(st) || WIFSIGNALED(st))) break;
  }
  process_gone(s);
}

/* Zeroes, in process pid, the pages of [start,end) that hold anything (present or
 * swapped, per /proc/PID/pagemap): the rest of an anonymous range reads as zero. */
static int zero_range(struct cryo_session *s, pid_t pid, int pagemap, uint64_t start, uint64_t end) {
  static const uint8_t zeros[PAGE];
  enum { CHUNK = 4096 };
  uint64_t entries[CHUNK];
  for (uint64_t a = start; a < end;) {
    size_t n = (size_t)((end - a) / PAGE);
    if (n > CHUNK) n = CHUNK;
    ssize_t got = pread(pagemap, entries, n * 8, (off_t)(a / PAGE * 8));
    if (got < (ssize_t)(n * 8)) return cryo_fail_errno("read /proc/%d/pagemap at 0x%llx", pid, (unsigned long long)a);
    for (size_t i = 0; i < n; i++) {
      if (!(entries[i] & (3ull << 62))) continue; /* neither present nor swapped */
      struct iovec l = {(void *)zeros, PAGE}, r = {(void *)(uintptr_t)(a + i * PAGE), PAGE};
      if (process_vm_writev(pid, &l, 1, &r, 1, 0) != (ssize_t)PAGE) {
        int rc = mem_write_raw(s, pid, a + i * PAGE, zeros, PAGE);
        if (rc != CRYO_OK) return rc;
      }
    }
    a += n * PAGE;
  }
  return CRYO_OK;
}

/* Writes a delta into process pid: its zero ranges, then its pages (read-only ones
 * through /proc/PID/mem). */
static int write_pages(struct cryo_session *s, pid_t pid, struct checkpoint *cp) {
  if (cp->nzero) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
    int pm = open(path, O_RDONLY | O_CLOEXEC);
    if (pm < 0) return cryo_fail_errno("open %s", path);
    for (size_t z = 0; z < cp->nzero; z++) {
      int rc = zero_range(s, pid, pm, cp->zero[z][0], cp->zero[z][1]);
      if (rc != CRYO_OK) {
        close(pm);
        return rc;
      }
    }
    close(pm);
  }
  return move_pages(s, pid, cp, process_vm_writev, write_page_slow);
}

/* A stopped process in the state of checkpoint cp: a frozen copy of its root with the
 * deltas down to cp written in (oldest first), and cp's registers. On failure the
 * copy (if any) is left in *child for the caller to kill. */
static int build_copy(struct cryo_session *s, struct checkpoint *cp, pid_t *child) {
  int rc = fork_frozen_copy(s, root_of(cp)->pid, child);
  if (rc != CRYO_OK) return rc;
  pin_copy(s, *child);
  struct checkpoint *path[MAX_CHECKPOINTS];
  int depth = 0;
  for (struct checkpoint *c = cp; c->kind == CP_DELTA && depth < MAX_CHECKPOINTS; c = c->parent) path[depth++] = c;
  for (int i = depth - 1; rc == CRYO_OK && i >= 0; i--) rc = write_pages(s, *child, path[i]);
  if (rc == CRYO_OK) rc = regs_set(*child, &cp->regs);
  if (rc == CRYO_OK && cp->xstate) rc = xstate_set(*child, cp->xstate, cp->xstate_len);
  return rc;
}

struct restore_args {
  int id;
  pid_t pid;
};

static int do_cp_restore(struct cryo_session *s, void *arg) {
  struct restore_args *a = arg;
  struct checkpoint *cp = cp_find(s, a->id);
  if (!cp) return cp_missing(s, a->id);
  if (s->pid && any_running(s)) {
    int rc = stop_all_threads(s);
    if (rc != CRYO_OK) return rc;
  }
  pid_t child = 0;
  int rc = build_copy(s, cp, &child);
  if (rc != CRYO_OK) {
    char msg[1024];
    cryo_copy_error(msg, sizeof msg);
    kill_and_reap(s, child);
    return cryo_fail(CRYO_EFAIL, "restore of checkpoint %d failed: %s", a->id, msg);
  }
  bool launched = s->pid ? s->launched : true;
  discard_debuggee(s);
  pthread_mutex_lock(&s->lock);
  s->pid = child;
  s->launched = launched;
  pthread_mutex_unlock(&s->lock);
  struct thread *nt = thread_add(s, child, T_STOPPED);
  if (nt) nt->reported = true; /* it stands where the checkpoint's stop was reported */
  rc = session_open_mem(s);
  if (rc == CRYO_OK) rc = bps_apply(s, child);
  if (rc == CRYO_OK) rc = wps_apply_thread(s, child);
  for (int i = 0; rc == CRYO_OK && i < cp->nfds; i++) {
    uint64_t args[6] = {(uint64_t)cp->fds[i].fd, (uint64_t)cp->fds[i].pos, SEEK_SET, 0, 0, 0};
    int64_t ret;
    rc = inject_syscall(s, child, SYS_lseek, args, &ret);
    /* a descriptor that is no regular file any more is left as it is */
  }
  if (rc != CRYO_OK) {
    char msg[1024];
    cryo_copy_error(msg, sizeof msg);
    discard_debuggee(s);
    return cryo_fail(CRYO_EFAIL, "restore of checkpoint %d failed: %s", a->id, msg);
  }
  /* track the new process from this state on, so the next checkpoint is a delta of cp */
  tracking_start(s, child);
  if (s->dirty) {
    char err[256];
    if (cryo_dirty_arm(s->dirty, err, sizeof err) == CRYO_DIRTY_OK) s->head = cp;
    else checkpoints_forget_live(s);
  }
  collect_hidden(s);
  a->pid = child;
  return CRYO_OK;
}

CRYO_API int cryo_checkpoint_restore(cryo_session *s, int32_t id, int32_t *pid) {
  if (!s || !pid) return cryo_fail(CRYO_EINVAL, "cryo_checkpoint_restore: null argument");
  struct restore_args a = {id, 0};
  int rc = run_on_tracer(s, do_cp_restore, &a);
  *pid = a.pid;
  return rc;
}

/* ---- saving as an image ---- */

struct save_args {
  int id;
  const char *path;
};

/* A checkpoint as an image: a frozen copy of its root with its deltas written in (the
 * same process a restore would build, never run), dumped as the program's own pid. */
static int do_cp_save(struct cryo_session *s, void *arg) {
  struct save_args *a = arg;
  struct checkpoint *cp = cp_find(s, a->id);
  if (!cp) return cp_missing(s, a->id);
  pid_t child = 0;
  int rc = build_copy(s, cp, &child);
  /* the program's own code: no breakpoints, the kernel's vDSO */
  if (rc == CRYO_OK) rc = bps_lift(s, child);
  if (rc == CRYO_OK) rc = record_unpatch(s, child);
  if (rc == CRYO_OK) {
    struct img_target t = {.pid = child, .tids = &child, .ntids = 1, .record_pid = s->pid ? s->pid : child,
                           .fds = cp->fds, .nfds = cp->nfds};
    struct img_dump_opts o = {.reason = REASON_SNAPSHOT, .time_ns = cp->created_ns};
    struct img_dump_stats st;
    rc = image_dump_target(s, &t, a->path, &o, &st);
  }
  kill_and_reap(s, child);
  return rc;
}

/* The image holds the program's own code: breakpoints lifted, the kernel's vDSO; both
 * go back in afterwards, since the session goes on. */
static int do_unpatch(struct cryo_session *s, void *arg) {
  (void)arg;
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee to save");
  int rc = bps_lift(s, s->pid);
  return rc == CRYO_OK ? record_unpatch(s, s->pid) : rc;
}

static int do_repatch(struct cryo_session *s, void *arg) {
  (void)arg;
  if (!s->pid) return CRYO_OK;
  int rc = bps_apply(s, s->pid);
  int rc2 = record_repatch(s, s->pid);
  return rc ? rc : rc2;
}

CRYO_API int cryo_image_save(cryo_session *s, int32_t id, const char *path) {
  if (!s || !path || !*path) return cryo_fail(CRYO_EINVAL, "cryo_image_save: no path");
  if (id == 0) {
    struct img_dump_opts o = {.reason = REASON_SNAPSHOT};
    struct img_dump_stats st;
    int rc = run_on_tracer(s, do_unpatch, NULL);
    if (rc == CRYO_OK) rc = cryo_image_dump(s, path, &o, &st);
    run_on_tracer(s, do_repatch, NULL); /* recording goes on: the vDSO must trap again */
    return rc;
  }
  struct save_args a = {id, path};
  return run_on_tracer(s, do_cp_save, &a);
}

/* ---- deleting ---- */

static void unlink_cp(struct cryo_session *s, struct checkpoint *cp) {
  pthread_mutex_lock(&s->lock);
  for (int i = 0; i < s->ncps; i++)
    if (s->cps[i] == cp) {
      memmove(&s->cps[i], &s->cps[i + 1], (size_t)(s->ncps - i - 1) * sizeof s->cps[0]);
      s->ncps--;
      break;
    }
  pthread_mutex_unlock(&s->lock);
}

/* child gets the pages of its parent delta it lacks, and the parent's parent. */
static int merge_into_child(struct checkpoint *parent, struct checkpoint *child) {
  size_t n = parent->npages + child->npages;
  uint64_t *addrs = malloc((n ? n : 1) * sizeof *addrs);
  uint8_t *data = page_alloc(n);
  if (!addrs || !data) {
    free(addrs);
    page_free(data, n);
    return cryo_fail(CRYO_EFAIL, "out of memory merging checkpoints");
  }
  /* applying parent then child = zeros of both, then the child's pages, then the
   * parent's pages the child neither rewrote nor zeroed */
  uint64_t(*zero)[2] = malloc((parent->nzero + child->nzero + 1) * sizeof *zero);
  if (!zero) {
    free(addrs);
    page_free(data, n);
    return cryo_fail(CRYO_EFAIL, "out of memory merging checkpoints");
  }
  memcpy(zero, parent->zero, parent->nzero * sizeof *zero);
  memcpy(zero + parent->nzero, child->zero, child->nzero * sizeof *zero);
  size_t i = 0, j = 0, k = 0;
  while (i < parent->npages || j < child->npages) {
    if (i < parent->npages && (j >= child->npages || parent->addrs[i] < child->addrs[j])) {
      bool zeroed = false;
      for (size_t z = 0; z < child->nzero && !zeroed; z++)
        zeroed = parent->addrs[i] >= child->zero[z][0] && parent->addrs[i] < child->zero[z][1];
      if (zeroed) {
        i++;
        continue;
      }
    }
    bool take_child = j < child->npages && (i >= parent->npages || child->addrs[j] <= parent->addrs[i]);
    if (take_child) {
      if (i < parent->npages && parent->addrs[i] == child->addrs[j]) i++; /* the child's is newer */
      addrs[k] = child->addrs[j];
      memcpy(data + k * PAGE, child->data + j * PAGE, PAGE);
      j++;
    } else {
      addrs[k] = parent->addrs[i];
      memcpy(data + k * PAGE, parent->data + i * PAGE, PAGE);
      i++;
    }
    k++;
  }
  free(child->addrs);
  page_free(child->data, child->data_pages);
  free(child->zero);
  child->addrs = addrs;
  child->data = data;
  child->data_pages = n;
  child->npages = k;
  child->zero = zero;
  child->nzero = parent->nzero + child->nzero;
  child->parent = parent->parent;
  return CRYO_OK;
}

/* Frees hidden checkpoints nothing depends on any more; folds a hidden delta with
 * one child into that child. */
static void collect_hidden(struct cryo_session *s) {
  bool again = true;
  while (again) {
    again = false;
    for (int i = 0; i < s->ncps; i++) {
      struct checkpoint *cp = s->cps[i];
      if (!cp->hidden || cp == s->head) continue;
      if (cp->children == 0) {
        if (cp->kind == CP_FULL) kill_and_reap(s, cp->pid);
        else cp->parent->children--;
        unlink_cp(s, cp);
        free_cp(cp);
        again = true;
        break;
      }
      if (cp->kind == CP_DELTA && cp->children == 1) {
        struct checkpoint *child = NULL;
        for (int j = 0; j < s->ncps; j++)
          if (s->cps[j]->kind == CP_DELTA && s->cps[j]->parent == cp) child = s->cps[j];
        if (!child || merge_into_child(cp, child) != CRYO_OK) continue;
        unlink_cp(s, cp);
        free_cp(cp);
        again = true;
        break;
      }
    }
  }
}

static int do_cp_delete(struct cryo_session *s, void *arg) {
  int id = *(int *)arg;
  struct checkpoint *cp = cp_find(s, id);
  if (!cp) return cp_missing(s, id);
  cp->hidden = true;
  collect_hidden(s);
  return CRYO_OK;
}

CRYO_API int cryo_checkpoint_delete(cryo_session *s, int32_t id) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_checkpoint_delete: null session");
  return run_on_tracer(s, do_cp_delete, &id);
}

CRYO_API int cryo_checkpoint_list(cryo_session *s, cryo_checkpoint_info *out, int32_t max, int32_t *n) {
  if (!s || !n) return cryo_fail(CRYO_EINVAL, "cryo_checkpoint_list: null argument");
  pthread_mutex_lock(&s->lock);
  /* a checkpoint still settling on the tracer thread is listed once it is complete */
  while ((s->settle || s->settle_running) && !s->closed) pthread_cond_wait(&s->done_cv, &s->lock);
  int k = 0;
  for (int i = 0; i < s->ncps; i++) {
    struct checkpoint *cp = s->cps[i];
    if (cp->hidden) continue;
    if (out && k < max) {
      int parent = 0;
      if (cp->kind == CP_DELTA && !cp->parent->hidden) parent = cp->parent->id;
      out[k] = (cryo_checkpoint_info){cp->id, cp->kind == CP_FULL ? cp->pid : 0, cp->regs.rip, cp->created_ns,
                                      cp->create_ns, cp->kind, parent, (uint64_t)cp->npages * PAGE};
    }
    k++;
  }
  pthread_mutex_unlock(&s->lock);
  *n = k;
  cryo_clear_error();
  return CRYO_OK;
}

struct mode_args {
  char *why;
  size_t len;
  int32_t *incremental;
};

static int do_mode(struct cryo_session *s, void *arg) {
  struct mode_args *a = arg;
  *a->incremental = s->dirty != NULL;
  if (a->why && a->len)
    snprintf(a->why, a->len, "%s", s->dirty_why[0] ? s->dirty_why : "no checkpoint taken yet");
  return CRYO_OK;
}

CRYO_API int cryo_checkpoint_mode(cryo_session *s, char *why, size_t len, int32_t *incremental) {
  if (!s || !incremental) return cryo_fail(CRYO_EINVAL, "cryo_checkpoint_mode: null argument");
  struct mode_args a = {why, len, incremental};
  return run_on_tracer(s, do_mode, &a);
}

void checkpoints_kill_all(struct cryo_session *s) {
  checkpoints_forget_live(s);
  for (int i = 0; i < s->ncps; i++) {
    if (s->cps[i]->kind == CP_FULL) kill_and_reap(s, s->cps[i]->pid);
    free_cp(s->cps[i]);
  }
  pthread_mutex_lock(&s->lock);
  s->ncps = 0;
  pthread_mutex_unlock(&s->lock);
}
