/* Restore: an image rebuilt as a new traced process at its original addresses.
 *
 * Validate first (cryo_image_check: every problem in one message), act second. The
 * new process starts as a fork of the restorer that stops itself; driven from
 * outside through a two-page trampoline (a `syscall` instruction and scratch memory)
 * placed where neither layout has anything, it unmaps everything it inherited, moves
 * its vDSO to the recorded addresses, maps every recorded mapping with its protection
 * and file, reads its data pages from the image itself (see "Page contents" below; the
 * image's checksum is verified meanwhile on another thread), gets the recorded mm
 * fields, limits, cwd, descriptors, signal actions and mask, and finally unmaps the
 * trampoline and takes the recorded registers. Any failure kills what was built. */
#include "image.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef PTRACE_SETSIGMASK
#define PTRACE_SETSIGMASK 0x420b
#endif
#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef PR_SET_MM
#define PR_SET_MM 35
#endif
#ifndef PR_SET_MM_MAP
#define PR_SET_MM_MAP 14
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif
#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE 1
#endif

#define TRAMP_SIZE (16 * IMG_PAGE)
#define SCRATCH_OFF IMG_PAGE

/* ---------- checks ---------- */

struct problems {
  char text[8192];
  size_t len;
  int n;
};

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct problems *p, const char *fmt, ...) {
  p->n++;
  if (p->len >= sizeof p->text - 2) return;
  int k = snprintf(p->text + p->len, sizeof p->text - p->len, "\n  - ");
  if (k > 0) p->len += (size_t)k;
  if (p->len >= sizeof p->text) return;
  va_list ap;
  va_start(ap, fmt);
  k = vsnprintf(p->text + p->len, sizeof p->text - p->len, fmt, ap);
  va_end(ap);
  if (k > 0) p->len += (size_t)k;
  if (p->len >= sizeof p->text) p->len = sizeof p->text - 1;
}

/* Our own special mappings, to compare with the image's. */
struct own_special {
  uint64_t start, end;
  uint64_t kind;
};

static int own_specials(pid_t pid, struct own_special *out, int max) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  int n = 0;
  while (fgets(line, sizeof line, f) && n < max) {
    unsigned long long s, e;
    char name[256] = "";
    if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %255s", &s, &e, name) < 2) continue;
    uint64_t k = 0;
    if (!strcmp(name, "[vdso]")) k = MK_VDSO;
    else if (!strcmp(name, "[vvar]")) k = MK_VVAR;
    else if (!strcmp(name, "[vvar_vclock]")) k = MK_VVAR_VCLOCK;
    if (k) out[n++] = (struct own_special){s, e, k};
  }
  fclose(f);
  return n;
}

static bool is_vdso_kind(uint64_t k) { return k == MK_VDSO || k == MK_VVAR || k == MK_VVAR_VCLOCK; }

static void check_into(struct cryo_image *img, struct problems *p) {
  if (img->machine && strcmp(img->machine, "x86_64"))
    problem(p, "the image is of a %s machine; this is x86_64", img->machine);
  bool main_found = false;
  for (uint32_t i = 0; i < img->nthreads; i++) main_found |= img->threads[i].tid == img->pid;
  if (!main_found) problem(p, "the image has no main thread (tid %llu)", (unsigned long long)img->pid);
  struct utsname u;
  uname(&u);
  bool has_vdso = false;
  for (uint32_t i = 0; i < img->nmaps; i++) has_vdso |= is_vdso_kind(img->maps[i].kind);
  if (has_vdso && img->kernel && strcmp(img->kernel, u.release))
    problem(p, "the image was taken on kernel %s, this is %s: its vDSO would differ (restore on the same kernel)",
            img->kernel, u.release);
  /* the vDSO: same layout and same code as ours */
  struct own_special own[8];
  int nown = own_specials(getpid(), own, 8);
  for (uint32_t i = 0; i < img->nmaps; i++) {
    struct img_mapping *m = &img->maps[i];
    if (!is_vdso_kind(m->kind)) continue;
    int j;
    for (j = 0; j < nown; j++)
      if (own[j].kind == m->kind) break;
    if (j == nown) {
      problem(p, "the image has a %s mapping, this kernel has none", img_map_kind_name(m->kind));
      continue;
    }
    if (own[j].end - own[j].start != m->end - m->start) {
      problem(p, "the image's %s is %llu pages, this kernel's is %llu", img_map_kind_name(m->kind),
              (unsigned long long)((m->end - m->start) / IMG_PAGE),
              (unsigned long long)((own[j].end - own[j].start) / IMG_PAGE));
      continue;
    }
    if (m->kind == MK_VDSO && m->pages[PK_DATA] == (m->end - m->start) / IMG_PAGE) {
      uint8_t *buf = malloc(m->end - m->start);
      size_t got = 0;
      if (buf && cryo_image_read_memory(img, m->start, buf, m->end - m->start, &got) == CRYO_OK &&
          got == m->end - m->start && memcmp(buf, (void *)(uintptr_t)own[j].start, got) != 0)
        problem(p, "the image's vDSO code differs from this kernel's");
      free(buf);
    }
  }
  for (int j = 0; j < nown; j++) {
    bool found = false;
    for (uint32_t i = 0; i < img->nmaps; i++) found |= img->maps[i].kind == own[j].kind;
    if (!found && has_vdso) problem(p, "this kernel has a %s mapping, the image has none", img_map_kind_name(own[j].kind));
  }
  /* CPU state */
  uint64_t xcr0 = xgetbv0();
  if (img->xcr0 & ~xcr0)
    problem(p, "the image uses CPU state components 0x%llx that this CPU does not enable (XCR0 0x%llx)",
            (unsigned long long)img->xcr0, (unsigned long long)xcr0);
  if (img->nthreads && img->threads[0].xsave_len) {
    uint8_t tmp[XSTATE_MAX];
    struct iovec iov = {tmp, sizeof tmp};
    /* our own xsave size: ask the kernel about ourselves is not possible; compare with XCR0 instead */
    (void)iov;
    if (img->xcr0 == xcr0 && img->xsave_size && img->threads[0].xsave_len != img->xsave_size)
      problem(p, "thread %u has an xsave area of %u bytes, the image says %llu", img->threads[0].tid,
              img->threads[0].xsave_len, (unsigned long long)img->xsave_size);
  }
  /* files behind mappings */
  for (uint32_t i = 0; i < img->nmaps; i++) {
    struct img_mapping *m = &img->maps[i];
    if (m->kind != MK_FILE || (m->flags & MF_CONTENT)) continue;
    bool seen = false;
    for (uint32_t k = 0; k < i && !seen; k++)
      seen = img->maps[k].kind == MK_FILE && !(img->maps[k].flags & MF_CONTENT) && !strcmp(img->maps[k].path, m->path);
    if (seen) continue;
    struct stat st;
    if (stat(m->path, &st) != 0) {
      problem(p, "mapped file %s: %s", m->path, strerror(errno));
      continue;
    }
    if (m->build_id_len) {
      uint8_t bid[64];
      uint32_t n = 0;
      if (img_build_id_path(m->path, bid, sizeof bid, &n) != 0 || n != m->build_id_len || memcmp(bid, m->build_id, n))
        problem(p, "mapped file %s: its build-id is not the image's (the file was rebuilt or replaced)", m->path);
      continue;
    }
    uint64_t mt = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
    if ((uint64_t)st.st_size != m->file_size || mt != m->mtime_ns)
      problem(p, "mapped file %s changed since the image was taken (size %llu, was %llu; mtime differs: %s)", m->path,
              (unsigned long long)st.st_size, (unsigned long long)m->file_size, mt != m->mtime_ns ? "yes" : "no");
  }
  /* descriptors */
  for (uint32_t i = 0; i < img->nfiles; i++) {
    struct img_file *f = &img->files[i];
    bool reopen = (f->type == FT_REG || f->type == FT_DIR || f->type == FT_CHR || f->type == FT_BLK) &&
                  f->path[0] == '/' && !strstr(f->path, " (deleted)");
    struct stat st;
    if (reopen && stat(f->path, &st) == 0) continue;
    if (f->fd <= 2) continue; /* reconnected to the restorer's own */
    if (reopen) problem(p, "descriptor %d: %s: %s", f->fd, f->path, strerror(errno));
    else
      problem(p, "descriptor %d (%s, %s) cannot be reopened: only files, directories and devices can be", f->fd,
              img_fd_type_name(f->type), f->path);
  }
  if (img->cwd) {
    struct stat st;
    if (stat(img->cwd, &st) != 0 || !S_ISDIR(st.st_mode)) problem(p, "working directory %s is gone", img->cwd);
  }
  /* the restored process gets the image's credentials: only root can hand out others */
  if (img->has_creds && geteuid() != 0) {
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    const uint64_t *c = img->creds;
    if (c[0] != ru || c[1] != eu || c[2] != su || c[4] != rg || c[5] != eg || c[6] != sg)
      problem(p, "the process ran as uid %llu gid %llu; restoring it as uid %u needs root",
              (unsigned long long)c[1], (unsigned long long)c[5], (unsigned)eu);
  }
}

CRYO_API int cryo_image_check(struct cryo_image *img) {
  if (!img) return cryo_fail(CRYO_EINVAL, "cryo_image_check: null image");
  struct problems p;
  memset(&p, 0, sizeof p);
  check_into(img, &p);
  if (p.n)
    return cryo_fail(CRYO_EUNSUPPORTED, "the image cannot be restored here (%d problem%s):%s", p.n, p.n > 1 ? "s" : "",
                     p.text);
  return CRYO_OK;
}

/* ---------- building the process ---------- */

struct builder {
  pid_t pid;
  int memfd;
  int64_t img_fd; /* the image's descriptor, inherited by the new process; -1 when it cannot be */
  uint64_t tramp;
  struct user_regs_struct base;
  pid_t cur;                         /* the thread syscalls run in */
  struct user_regs_struct cur_base;  /* its registers to start from */
  pid_t *tids;                       /* the new thread of each image thread */
  pid_t last_clone;                  /* from PTRACE_EVENT_CLONE */
  struct cryo_image *img;
  struct img_restore_report *rep;
  bool no_populate;                  /* the kernel lacks MADV_POPULATE_WRITE */
};

static void note(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct builder *b, const char *fmt, ...) {
  if (!b->rep) return;
  size_t len = strlen(b->rep->notes);
  if (len >= sizeof b->rep->notes - 2) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b->rep->notes + len, sizeof b->rep->notes - len - 1, fmt, ap);
  va_end(ap);
  strcat(b->rep->notes, "\n");
}

static int step_wait(struct builder *b) {
  for (;;) {
    int st;
    pid_t r = waitpid(b->cur, &st, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return cryo_fail_errno("waitpid(%d)", b->cur);
    if (WIFEXITED(st) || WIFSIGNALED(st))
      return cryo_fail(CRYO_EFAIL, "the process being restored (%d) died (%s %d)", b->pid,
                       WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    if (st >> 16) {
      /* an event stop in the middle of the syscall (a clone): the step goes on */
      if ((st >> 16) == PTRACE_EVENT_CLONE) {
        unsigned long msg = 0;
        ptrace(PTRACE_GETEVENTMSG, b->cur, 0, &msg);
        b->last_clone = (pid_t)msg;
      }
    } else if (WSTOPSIG(st) == SIGTRAP) {
      return CRYO_OK;
    }
    /* anything else (cannot be expected): step again without delivering it */
    if (ptrace(PTRACE_SINGLESTEP, b->cur, 0, 0) != 0) return cryo_fail_errno("ptrace(PTRACE_SINGLESTEP, %d)", b->cur);
  }
}

/* Runs one syscall at the trampoline. */
static int sys(struct builder *b, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
               int64_t *ret) {
  struct user_regs_struct r = b->cur_base;
  r.rip = b->tramp;
  r.rax = (unsigned long long)nr;
  r.orig_rax = (unsigned long long)-1;
  r.rdi = a0;
  r.rsi = a1;
  r.rdx = a2;
  r.r10 = a3;
  r.r8 = a4;
  r.r9 = a5;
  int rc = regs_set(b->cur, &r);
  if (rc) return rc;
  if (ptrace(PTRACE_SINGLESTEP, b->cur, 0, 0) != 0) return cryo_fail_errno("ptrace(PTRACE_SINGLESTEP, %d)", b->cur);
  rc = step_wait(b);
  if (rc) return rc;
  rc = regs_get(b->cur, &r);
  if (rc) return rc;
  *ret = (int64_t)r.rax;
  return CRYO_OK;
}

static int sys_ok(struct builder *b, const char *what, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                  uint64_t a4, uint64_t a5, int64_t *ret) {
  int64_t r;
  int rc = sys(b, nr, a0, a1, a2, a3, a4, a5, &r);
  if (rc) return rc;
  if (r < 0 && r > -4096) {
    errno = (int)-r;
    return cryo_fail_errno("restoring process %d: %s", b->pid, what);
  }
  if (ret) *ret = r;
  return CRYO_OK;
}

static int poke(struct builder *b, uint64_t addr, const void *p, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t k = pwrite(b->memfd, (const char *)p + done, n - done, (off_t)(addr + done));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (k == 0) errno = EIO;
      return cryo_fail_errno("restoring process %d: writing %zu bytes at 0x%llx", b->pid, n - done,
                             (unsigned long long)(addr + done));
    }
    done += (size_t)k;
  }
  return CRYO_OK;
}

/* A string in the scratch page; returns its address. */
static int scratch_str(struct builder *b, const char *s, uint64_t *addr) {
  size_t n = strlen(s) + 1;
  if (n > 3 * IMG_PAGE) return cryo_fail(CRYO_EINVAL, "path too long: %s", s);
  *addr = b->tramp + SCRATCH_OFF;
  return poke(b, *addr, s, n);
}

struct cmap {
  uint64_t start, end;
  char name[64];
};

static int child_maps(pid_t pid, struct cmap **out, int *n) {
  char path[64], line[4096 + 128];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *f = fopen(path, "re");
  if (!f) return cryo_fail_errno("open %s", path);
  int cap = 64, k = 0;
  struct cmap *v = malloc((size_t)cap * sizeof *v);
  while (v && fgets(line, sizeof line, f)) {
    if (k == cap) {
      struct cmap *nv = realloc(v, (size_t)cap * 2 * sizeof *v);
      if (!nv) break;
      v = nv;
      cap *= 2;
    }
    unsigned long long s, e;
    char name[64] = "";
    if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %63s", &s, &e, name) < 2) continue;
    v[k].start = s;
    v[k].end = e;
    snprintf(v[k].name, sizeof v[k].name, "%s", name);
    k++;
  }
  fclose(f);
  if (!v) return cryo_fail(CRYO_EFAIL, "out of memory");
  *out = v;
  *n = k;
  return CRYO_OK;
}

static bool overlaps_image(struct cryo_image *img, uint64_t s, uint64_t e) {
  for (uint32_t i = 0; i < img->nmaps; i++)
    if (s < img->maps[i].end && img->maps[i].start < e) return true;
  return false;
}

static bool overlaps_child(struct cmap *c, int n, uint64_t s, uint64_t e) {
  for (int i = 0; i < n; i++)
    if (s < c[i].end && c[i].start < e) return true;
  return false;
}

static uint64_t special_kind(const char *name) {
  if (!strcmp(name, "[vdso]")) return MK_VDSO;
  if (!strcmp(name, "[vvar]")) return MK_VVAR;
  if (!strcmp(name, "[vvar_vclock]")) return MK_VVAR_VCLOCK;
  if (!strcmp(name, "[vsyscall]")) return MK_VSYSCALL;
  return 0;
}

/* Page contents: how the data pages get into the new process.
 *
 * The process reads them itself: preadv, run as an injected syscall, from the image's
 * descriptor (inherited from the restorer at the clone and kept open until the
 * contents are in) into its own freshly mapped memory, many runs per call (the dump
 * writes data pages in address order, so the runs of all mappings usually make one
 * contiguous stretch of the file and one call). The kernel copies from the page cache
 * straight into the new pages: no copy through the restorer, as writing through
 * /proc/PID/mem (page by page, through the restorer's mapping of the image) needed.
 *
 * Not chosen: mapping the image file itself (MAP_PRIVATE|MAP_FIXED at each run's
 * offset), which copies nothing up front but makes anonymous memory a private file
 * mapping of the image: /proc/PID/maps names the image, a later dump would record the
 * pages as the image's file pages, MADV_DONTNEED would bring back the image's bytes
 * instead of zeros, and the process would depend on the image for as long as it runs
 * (a SIGBUS when the file is truncated, other bytes when it is rewritten in place).
 * Read memory is plain anonymous (or file-COW) memory, the same as the original's, and
 * the image may be deleted, truncated or overwritten as soon as the restore returns.
 * (Nor userfaultfd: lazy, but a helper would have to serve faults, and keep the image,
 * for the life of the process.)
 *
 * Mappings without PROT_WRITE are mapped writable, filled, then given their
 * protection with mprotect (the kernel's read honours protection, /proc/PID/mem does
 * not), except code: its few stored pages (a breakpoint's, relocations) are written
 * through /proc/PID/mem, as everything was before, because writable-and-executable is
 * what security policies refuse. So are zeros over a file mapping (few, and no file
 * to read them from), and everything when the image's descriptor cannot be passed
 * on (an image on descriptor 0-2). */
#define FILL_IOVS 1024                       /* IOV_MAX */
#define FILL_IOV_AT (SCRATCH_OFF + 4 * IMG_PAGE) /* after the strings, 16 KiB */
#define FILL_MAX_BATCH (1ull << 30)          /* below the kernel's 2 GiB - 4 KiB per call */

struct fill {
  struct builder *b;
  int64_t fd;                 /* the image, open in the new process */
  uint64_t iov[FILL_IOVS][2]; /* base, length in the new process */
  int n;
  uint64_t off, len;          /* file offset and length of the batch */
};

/* Large runs get their pages allocated in one call before the read: faulting them in
 * one by one under the read is the larger part of a restore where page faults are dear
 * (about 2 us each on a paravirtualised guest, half of a 1 GiB restore). A kernel
 * without MADV_POPULATE_WRITE (before 5.14) refuses it, and the read faults as before. */
#define FILL_POPULATE_MIN (256u << 10)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static int fill_flush(struct fill *f) {
  struct builder *b = f->b;
  int rc;
  int first = 0;
  uint64_t off = f->off;
  for (int i = 0; i < f->n && !b->no_populate; i++) {
    if (f->iov[i][1] < FILL_POPULATE_MIN) continue;
    int64_t r;
    if ((rc = sys(b, SYS_madvise, f->iov[i][0], f->iov[i][1], MADV_POPULATE_WRITE, 0, 0, 0, &r))) return rc;
    if (r == -EINVAL) b->no_populate = true;
  }
  while (first < f->n) {
    if ((rc = poke(b, b->tramp + FILL_IOV_AT, f->iov[first], (size_t)(f->n - first) * sizeof f->iov[0]))) return rc;
    int64_t r;
    if ((rc = sys(b, SYS_preadv, (uint64_t)f->fd, b->tramp + FILL_IOV_AT, (uint64_t)(f->n - first), off, 0, 0, &r)))
      return rc;
    if (r <= 0) {
      if (r == -EINTR) continue;
      errno = r == 0 ? EIO : (int)-r;
      return cryo_fail_errno("restoring process %d: reading %llu bytes of pages from the image at offset %llu%s", b->pid,
                             (unsigned long long)(f->len - (off - f->off)), (unsigned long long)off,
                             r == 0 ? " (the image was truncated)" : "");
    }
    /* a short read: go on after what arrived */
    off += (uint64_t)r;
    while (first < f->n && (uint64_t)r >= f->iov[first][1]) r -= (int64_t)f->iov[first++][1];
    if (first < f->n) {
      f->iov[first][0] += (uint64_t)r;
      f->iov[first][1] -= (uint64_t)r;
    }
  }
  f->n = 0;
  f->len = 0;
  return CRYO_OK;
}

/* bytes of the image at off go to addr in the new process */
static int fill_add(struct fill *f, uint64_t addr, uint64_t off, uint64_t bytes) {
  while (bytes) {
    int rc;
    if (f->n && (f->n == FILL_IOVS || off != f->off + f->len || f->len >= FILL_MAX_BATCH) && (rc = fill_flush(f)))
      return rc;
    uint64_t k = bytes;
    if (k > FILL_MAX_BATCH - f->len) k = FILL_MAX_BATCH - f->len;
    if (!f->n) f->off = off;
    if (f->n && f->iov[f->n - 1][0] + f->iov[f->n - 1][1] == addr) f->iov[f->n - 1][1] += k;
    else {
      f->iov[f->n][0] = addr;
      f->iov[f->n][1] = k;
      f->n++;
    }
    f->len += k;
    addr += k;
    off += k;
    bytes -= k;
  }
  return CRYO_OK;
}

static bool has_data(const struct img_mapping *m) {
  for (uint32_t k = 0; k < m->nruns; k++)
    if (m->runs[k].kind == PK_DATA) return true;
  return false;
}

enum { FILL_READ, FILL_READ_REPROTECT, FILL_POKE };

static int map_all(struct builder *b) {
  struct cryo_image *img = b->img;
  int64_t r;
  int rc;
  char cur_path[PATH_MAX] = "";
  int64_t cur_fd = -1;
  int cur_mode = -1;
  struct fill *fill = calloc(1, sizeof *fill);
  uint8_t *how = calloc(img->nmaps ? img->nmaps : 1, sizeof *how);
  if (!fill || !how) {
    free(fill);
    free(how);
    return cryo_fail(CRYO_EFAIL, "out of memory");
  }
  fill->b = b;
  fill->fd = b->img_fd;
  /* every mapping first (those to be filled writable), then the contents, then the
   * protections: one read can fill runs of many mappings */
  for (uint32_t i = 0; i < img->nmaps; i++) {
    struct img_mapping *m = &img->maps[i];
    if (is_vdso_kind(m->kind) || m->kind == MK_VSYSCALL) continue;
    uint64_t len = m->end - m->start;
    bool shared = m->flags & MF_SHARED;
    bool from_file = m->kind == MK_FILE && !(m->flags & MF_CONTENT);
    how[i] = fill->fd >= 0 ? FILL_READ : FILL_POKE;
    if (how[i] == FILL_READ && !(m->prot & PROT_WRITE) && !(from_file && shared) && has_data(m))
      /* code (e.g. a page with a debugger's breakpoint) is poked as before: writable
       * and executable at once is what some policies refuse (SELinux execmem) */
      how[i] = m->prot & PROT_EXEC ? FILL_POKE : FILL_READ_REPROTECT;
    uint64_t fl, fd = (uint64_t)-1;
    if (from_file) {
      int mode = shared && (m->prot & PROT_WRITE) ? O_RDWR : O_RDONLY;
      if (cur_fd < 0 || strcmp(cur_path, m->path) || mode != cur_mode) {
        if (cur_fd >= 0) sys(b, SYS_close, (uint64_t)cur_fd, 0, 0, 0, 0, 0, &r);
        cur_fd = -1;
        uint64_t a = 0;
        if ((rc = scratch_str(b, m->path, &a))) goto out;
        char what[PATH_MAX + 32];
        snprintf(what, sizeof what, "open %s", m->path);
        if ((rc = sys_ok(b, what, SYS_openat, (uint64_t)AT_FDCWD, a, (uint64_t)(mode | O_CLOEXEC), 0, 0, 0, &cur_fd)))
          goto out;
        snprintf(cur_path, sizeof cur_path, "%s", m->path);
        cur_mode = mode;
      }
      fl = (uint64_t)((shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED_NOREPLACE);
      fd = (uint64_t)cur_fd;
    } else {
      fl = (uint64_t)((shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE);
      if (m->kind == MK_STACK) fl |= MAP_GROWSDOWN;
    }
    uint64_t off = from_file ? m->offset : 0;
    if (how[i] == FILL_READ_REPROTECT) {
      /* writable for now; when that is refused (strict overcommit charges a writable
       * private mapping in full), the recorded protection and poked contents */
      if ((rc = sys(b, SYS_mmap, m->start, len, m->prot | PROT_WRITE, fl, fd, off, &r))) goto out;
      if (r < 0 && r > -4096) how[i] = FILL_POKE;
    }
    if (how[i] != FILL_READ_REPROTECT) {
      char what[PATH_MAX + 64];
      if (from_file) snprintf(what, sizeof what, "mmap %s at 0x%llx", m->path, (unsigned long long)m->start);
      else
        snprintf(what, sizeof what, "mmap anonymous memory at 0x%llx-0x%llx", (unsigned long long)m->start,
                 (unsigned long long)m->end);
      if ((rc = sys_ok(b, what, SYS_mmap, m->start, len, m->prot, fl, fd, off, &r))) goto out;
    }
    if ((uint64_t)r != m->start) {
      rc = cryo_fail(CRYO_EFAIL, "restoring process %d: mapping 0x%llx landed at 0x%llx", b->pid,
                     (unsigned long long)m->start, (unsigned long long)r);
      goto out;
    }
  }
  if (cur_fd >= 0) sys(b, SYS_close, (uint64_t)cur_fd, 0, 0, 0, 0, 0, &r);
  /* contents: data pages read from the image, zeros written over file pages; fresh
   * anonymous memory is zero already, and file and absent pages come from the file */
  static const uint8_t zero[IMG_PAGE];
  for (uint32_t i = 0; i < img->nmaps; i++) {
    struct img_mapping *m = &img->maps[i];
    if (is_vdso_kind(m->kind) || m->kind == MK_VSYSCALL) continue;
    bool from_file = m->kind == MK_FILE && !(m->flags & MF_CONTENT);
    if (from_file && (m->flags & MF_SHARED)) continue; /* the file holds the content */
    uint64_t at = m->start;
    for (uint32_t k = 0; k < m->nruns; k++) {
      struct img_run *ru = &m->runs[k];
      uint64_t bytes = (uint64_t)ru->npages * IMG_PAGE;
      if (ru->kind == PK_DATA) {
        if (how[i] == FILL_POKE) rc = poke(b, at, img->map + ru->off, bytes);
        else rc = fill_add(fill, at, b->img->file_base + ru->off, bytes);
        if (rc) goto out;
      } else if (ru->kind == PK_ZERO && from_file) {
        for (uint64_t o = 0; o < bytes; o += IMG_PAGE)
          if ((rc = poke(b, at + o, zero, IMG_PAGE))) goto out;
      }
      at += bytes;
    }
  }
  if (fill->n && (rc = fill_flush(fill))) goto out;
  for (uint32_t i = 0; i < img->nmaps; i++) {
    struct img_mapping *m = &img->maps[i];
    if (how[i] != FILL_READ_REPROTECT) continue;
    char what[128];
    snprintf(what, sizeof what, "mprotect 0x%llx-0x%llx", (unsigned long long)m->start, (unsigned long long)m->end);
    if ((rc = sys_ok(b, what, SYS_mprotect, m->start, m->end - m->start, m->prot, 0, 0, 0, &r))) goto out;
  }
  rc = CRYO_OK;
out:
  /* the image's descriptor is not the process's: it goes before the descriptors come */
  if (b->img_fd >= 0) sys(b, SYS_close, (uint64_t)b->img_fd, 0, 0, 0, 0, 0, &r);
  b->img_fd = -1;
  free(fill);
  free(how);
  return rc;
}

static int move_specials(struct builder *b, struct cmap *c, int nc) {
  struct cryo_image *img = b->img;
  int64_t r;
  int rc;
  /* first everything to a parking place inside the trampoline's free area, then home:
   * a current position may overlap another mapping's destination */
  uint64_t park = b->tramp + TRAMP_SIZE + (1ull << 20);
  uint64_t parked[8] = {0}, kinds[8] = {0}, sizes[8] = {0};
  int np = 0;
  for (int i = 0; i < nc && np < 8; i++) {
    uint64_t k = special_kind(c[i].name);
    if (!k || k == MK_VSYSCALL) continue;
    uint64_t size = c[i].end - c[i].start;
    bool wanted = false;
    for (uint32_t j = 0; j < img->nmaps; j++) wanted |= img->maps[j].kind == k;
    if (!wanted) {
      if ((rc = sys_ok(b, "unmap the vDSO", SYS_munmap, c[i].start, size, 0, 0, 0, 0, &r))) return rc;
      continue;
    }
    if ((rc = sys_ok(b, "move the vDSO", SYS_mremap, c[i].start, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, park, 0, &r)))
      return rc;
    parked[np] = park;
    kinds[np] = k;
    sizes[np] = size;
    np++;
    park += size + IMG_PAGE;
  }
  for (int i = 0; i < np; i++) {
    for (uint32_t j = 0; j < img->nmaps; j++) {
      struct img_mapping *m = &img->maps[j];
      if (m->kind != kinds[i]) continue;
      if (m->end - m->start != sizes[i])
        return cryo_fail(CRYO_EUNSUPPORTED, "the image's %s is %llu bytes, this kernel's %llu", img_map_kind_name(m->kind),
                         (unsigned long long)(m->end - m->start), (unsigned long long)sizes[i]);
      char what[64];
      snprintf(what, sizeof what, "move %s to 0x%llx", img_map_kind_name(m->kind), (unsigned long long)m->start);
      if ((rc = sys_ok(b, what, SYS_mremap, parked[i], sizes[i], sizes[i], MREMAP_MAYMOVE | MREMAP_FIXED, m->start, 0, &r)))
        return rc;
      break;
    }
  }
  return CRYO_OK;
}

struct prctl_mm_map_ {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end, env_start,
      env_end;
  uint64_t auxv;
  uint32_t auxv_size;
  uint32_t exe_fd;
};

static int set_mm(struct builder *b) {
  struct cryo_image *img = b->img;
  if (!img->has_mm) return CRYO_OK;
  int64_t r, exe_fd = -1;
  uint64_t a = 0;
  int rc = scratch_str(b, img->exe, &a);
  if (rc) return rc;
  if (sys(b, SYS_openat, (uint64_t)AT_FDCWD, a, O_RDONLY | O_CLOEXEC, 0, 0, 0, &exe_fd) || exe_fd < 0) exe_fd = -1;
  struct prctl_mm_map_ mm;
  memset(&mm, 0, sizeof mm);
  const uint64_t *f = img->mm; /* start_code end_code start_stack start_data end_data start_brk brk arg_start arg_end env_start env_end */
  mm.start_code = f[0];
  mm.end_code = f[1];
  mm.start_stack = f[2];
  mm.start_data = f[3];
  mm.end_data = f[4];
  mm.start_brk = f[5];
  mm.brk = f[6];
  mm.arg_start = f[7];
  mm.arg_end = f[8];
  mm.env_start = f[9];
  mm.env_end = f[10];
  uint64_t base = b->tramp + SCRATCH_OFF;
  mm.auxv = base + 256;
  mm.auxv_size = img->auxv_len;
  mm.exe_fd = (uint32_t)exe_fd;
  if ((rc = poke(b, base, &mm, sizeof mm))) return rc;
  if (img->auxv_len && (rc = poke(b, base + 256, img->auxv, img->auxv_len))) return rc;
  rc = sys(b, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, base, sizeof mm, 0, 0, &r);
  if (exe_fd >= 0) sys(b, SYS_close, (uint64_t)exe_fd, 0, 0, 0, 0, 0, &exe_fd);
  if (rc) return rc;
  if (r < 0) {
    errno = (int)-r;
    return cryo_fail_errno("restoring process %d: prctl(PR_SET_MM_MAP) for brk and the memory layout (needs "
                           "CAP_SYS_RESOURCE or CAP_CHECKPOINT_RESTORE)",
                           b->pid);
  }
  return CRYO_OK;
}

static int restore_files(struct builder *b) {
  struct cryo_image *img = b->img;
  int64_t r;
  int rc;
  bool have[3] = {false, false, false};
  for (uint32_t i = 0; i < img->nfiles; i++) {
    struct img_file *f = &img->files[i];
    if (f->fd <= 2) have[f->fd] = true;
    bool reopen = (f->type == FT_REG || f->type == FT_DIR || f->type == FT_CHR || f->type == FT_BLK) &&
                  f->path[0] == '/' && !strstr(f->path, " (deleted)");
    struct stat st;
    if (!reopen || stat(f->path, &st) != 0) {
      if (f->fd <= 2) {
        note(b, "descriptor %d (%s %s) no longer exists: connected to cryo's %s instead", f->fd,
             img_fd_type_name(f->type), f->path, f->fd == 0 ? "stdin" : f->fd == 1 ? "stdout" : "stderr");
        continue;
      }
      return cryo_fail(CRYO_EUNSUPPORTED, "descriptor %d (%s) cannot be restored", f->fd, f->path);
    }
    int flags = (int)f->flags & (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT | O_LARGEFILE |
                                 O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | O_PATH);
    uint64_t a = 0;
    if ((rc = scratch_str(b, f->path, &a))) return rc;
    char what[PATH_MAX + 64];
    snprintf(what, sizeof what, "open %s for descriptor %d", f->path, f->fd);
    int64_t fd;
    if (f->fd <= 2) {
      /* stdio that cannot be opened again (a terminal of another session): cryo's own */
      if ((rc = sys(b, SYS_openat, (uint64_t)AT_FDCWD, a, (uint64_t)flags, 0, 0, 0, &fd))) return rc;
      if (fd < 0) {
        note(b, "descriptor %d (%s) cannot be opened again (%s): connected to cryo's %s instead", f->fd, f->path,
             strerror((int)-fd), f->fd == 0 ? "stdin" : f->fd == 1 ? "stdout" : "stderr");
        continue;
      }
    } else if ((rc = sys_ok(b, what, SYS_openat, (uint64_t)AT_FDCWD, a, (uint64_t)flags, 0, 0, 0, &fd))) {
      return rc;
    }
    if (fd != f->fd) {
      if ((rc = sys_ok(b, "dup3", SYS_dup3, (uint64_t)fd, (uint64_t)f->fd, (uint64_t)(flags & O_CLOEXEC), 0, 0, 0, &r)))
        return rc;
      sys(b, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &r);
    }
    if (f->type == FT_REG) {
      snprintf(what, sizeof what, "seek descriptor %d (%s) to %llu", f->fd, f->path, (unsigned long long)f->pos);
      if ((rc = sys_ok(b, what, SYS_lseek, (uint64_t)f->fd, f->pos, SEEK_SET, 0, 0, 0, &r))) return rc;
      if (st.st_size < (off_t)f->pos)
        note(b, "descriptor %d: %s is now %lld bytes, shorter than its offset %llu", f->fd, f->path,
             (long long)st.st_size, (unsigned long long)f->pos);
    }
  }
  for (int fd = 0; fd < 3; fd++)
    if (!have[fd]) sys(b, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &r);
  return CRYO_OK;
}

static int restore_signals(struct builder *b) {
  struct cryo_image *img = b->img;
  uint64_t base = b->tramp + SCRATCH_OFF;
  int64_t r;
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    uint64_t act[4] = {0, 0, 0, 0};
    for (uint32_t i = 0; i < img->nsigs; i++)
      if ((int)img->sigs[i].signo == sig) {
        act[0] = img->sigs[i].handler;
        act[1] = img->sigs[i].flags;
        act[2] = img->sigs[i].restorer;
        act[3] = img->sigs[i].mask;
      }
    int rc = poke(b, base, act, sizeof act);
    if (rc) return rc;
    char what[64];
    snprintf(what, sizeof what, "rt_sigaction(%d)", sig);
    rc = sys(b, SYS_rt_sigaction, (uint64_t)sig, base, 0, 8, 0, 0, &r);
    if (rc) return rc;
    if (r < 0 && (act[0] || r != -EINVAL)) {
      errno = (int)-r;
      return cryo_fail_errno("restoring process %d: %s", b->pid, what);
    }
  }
  return CRYO_OK;
}

/* Kills what was built and collects every thread of it (traced threads must be
 * waited for before the leader's end is reported). Runs on the tracer thread, which
 * has no other tracees while a restore is under way. */
/* Groups, then gids, then uids (after which the process may no longer change them);
 * only when the restorer is root (cryo_image_check refused the other cases). */
static int restore_creds(struct builder *b) {
  struct cryo_image *img = b->img;
  if (!img->has_creds || geteuid() != 0) return CRYO_OK;
  const uint64_t *c = img->creds;
  int64_t r;
  int rc;
  if (img->has_groups) {
    uint64_t base = b->tramp + SCRATCH_OFF;
    size_t n = img->groups_len > 3 * IMG_PAGE ? 3 * IMG_PAGE : img->groups_len;
    if ((rc = poke(b, base, img->groups, n))) return rc;
    if ((rc = sys_ok(b, "setgroups", SYS_setgroups, n / 4, base, 0, 0, 0, 0, &r))) return rc;
  }
  if ((rc = sys_ok(b, "setresgid", SYS_setresgid, c[4], c[5], c[6], 0, 0, 0, &r))) return rc;
  sys(b, SYS_setfsgid, c[7], 0, 0, 0, 0, 0, &r);
  if ((rc = sys_ok(b, "setresuid", SYS_setresuid, c[0], c[1], c[2], 0, 0, 0, &r))) return rc;
  sys(b, SYS_setfsuid, c[3], 0, 0, 0, 0, 0, &r);
  return CRYO_OK;
}

static void kill_child(pid_t pid) {
  kill(pid, SIGKILL);
  for (;;) {
    int st;
    pid_t w = waitpid(-1, &st, __WALL | __WNOTHREAD);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) break;
    if (w == pid && (WIFEXITED(st) || WIFSIGNALED(st))) break;
  }
}

/* The PAGES checksum of an image opened with IMG_OPEN_DEFER_PAGES, verified on a
 * thread of its own while the process is built: when the image is not in the page
 * cache (cryo dump writes it with O_DIRECT), reading it is most of a restore, and
 * this way the disk, the checksum and the new process's own page faults overlap. The
 * built process runs no instruction of its own before the checksum matched: a
 * mismatch kills it and the restore fails as the open would have. */
struct pages_check {
  struct cryo_image *img;
  pthread_t th;
  bool running, ok;
};

static void *pages_check_run(void *arg) {
  struct pages_check *pc = arg;
  pc->ok = img_pages_ok(pc->img);
  return NULL;
}

static void pages_check_start(struct pages_check *pc, struct cryo_image *img) {
  memset(pc, 0, sizeof *pc);
  pc->img = img;
  pc->ok = true;
  if (!img->pages_unverified) return;
  if (pthread_create(&pc->th, NULL, pages_check_run, pc) == 0) pc->running = true;
  else pages_check_run(pc);
}

/* Waits for the checksum; false (and the error set) when it does not match. */
static bool pages_check_join(struct pages_check *pc) {
  if (pc->running) {
    pthread_join(pc->th, NULL);
    pc->running = false;
    if (pc->ok) pc->img->pages_unverified = false;
  }
  if (!pc->ok)
    cryo_fail(CRYO_EINVAL, "%s: corrupt image: pages section checksum mismatch", pc->img->path ? pc->img->path : "image");
  return pc->ok;
}

struct restore_args {
  struct cryo_image *img;
  struct img_restore_report *rep;
  pid_t pid;
  const int *stdio; /* fds 0-2 for the new process (-1: the restorer's own), or NULL */
  struct pages_check *pages;
};


/* What each thread sets up for itself: rseq, robust list, clear_child_tid. */
static int thread_setup(struct builder *b, struct img_thread *t) {
  int64_t r;
  if (t->has_rseq && sys(b, SYS_rseq, t->rseq_addr, t->rseq_len, 0, t->rseq_sig, 0, 0, &r) == CRYO_OK && r < 0)
    note(b, "thread %d: rseq area at 0x%llx not registered again: %s", b->cur, (unsigned long long)t->rseq_addr,
         strerror((int)-r));
  if (t->has_robust && t->robust_head)
    sys(b, SYS_set_robust_list, t->robust_head, t->robust_len, 0, 0, 0, 0, &r);
  if (t->has_clear_tid) sys(b, SYS_set_tid_address, t->clear_tid, 0, 0, 0, 0, 0, &r);
  return CRYO_OK;
}

#ifndef CLONE_VM
#define CLONE_VM 0x00000100
#define CLONE_FS 0x00000200
#define CLONE_FILES 0x00000400
#define CLONE_SIGHAND 0x00000800
#define CLONE_THREAD 0x00010000
#define CLONE_SYSVSEM 0x00040000
#define CLONE_CHILD_CLEARTID 0x00200000
#endif

/* A new thread of the process being built, stopped, with tid t->tid if it is free. */
static int make_thread(struct builder *b, struct img_thread *t, pid_t *out) {
  uint64_t base = b->tramp + SCRATCH_OFF;
  uint64_t ca[11];
  memset(ca, 0, sizeof ca);
  ca[0] = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  ca[2] = t->clear_tid;              /* child_tid: cleared and woken when the thread exits */
  if (t->has_clear_tid && t->clear_tid) ca[0] |= CLONE_CHILD_CLEARTID;
  int32_t tid = (int32_t)t->tid;
  ca[8] = base + 128;                /* set_tid */
  ca[9] = 1;
  int rc = poke(b, base, ca, sizeof ca);
  if (!rc) rc = poke(b, base + 128, &tid, sizeof tid);
  if (rc) return rc;
  int64_t r;
  b->last_clone = 0;
  rc = sys(b, SYS_clone3, base, sizeof ca, 0, 0, 0, 0, &r);
  if (rc) return rc;
  if (r < 0) {
    /* its tid is taken: any tid will do, but glibc's copy of it is stale now */
    note(b, "thread %u could not get its tid back (%s)", t->tid, strerror((int)-r));
    ca[8] = ca[9] = 0;
    if ((rc = poke(b, base, ca, sizeof ca))) return rc;
    if ((rc = sys(b, SYS_clone3, base, sizeof ca, 0, 0, 0, 0, &r))) return rc;
    if (r < 0) {
      errno = (int)-r;
      return cryo_fail_errno("restoring process %d: clone3 for thread %u", b->pid, t->tid);
    }
  }
  pid_t n = (pid_t)r;
  for (;;) {
    int st;
    pid_t w = waitpid(n, &st, __WALL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return cryo_fail_errno("waitpid(%d), a new thread", n);
    if (!WIFSTOPPED(st)) return cryo_fail(CRYO_EFAIL, "the new thread %d died", n);
    break;
  }
  *out = n;
  return CRYO_OK;
}

/* Mask, xsave and registers of a finished thread. */
static int thread_final(struct builder *b, struct img_thread *t, pid_t tid) {
  uint64_t mask = t->sigmask;
  if (ptrace(PTRACE_SETSIGMASK, tid, (void *)8, &mask) != 0)
    return cryo_fail_errno("restoring process %d: PTRACE_SETSIGMASK of thread %d", b->pid, tid);
  if (t->xsave && t->xsave_len) {
    struct iovec iov = {(void *)t->xsave, t->xsave_len};
    if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) != 0)
      return cryo_fail_errno("restoring process %d: PTRACE_SETREGSET NT_X86_XSTATE of thread %d (%u bytes)", b->pid,
                             tid, t->xsave_len);
  }
  struct user_regs_struct regs = t->regs;
  regs.fs_base = t->fs_base ? t->fs_base : regs.fs_base;
  return regs_set(tid, &regs);
}

static int build(struct builder *b) {
  struct cryo_image *img = b->img;
  int rc;
  int64_t r;
  struct cmap *c = NULL;
  int nc = 0;
  if ((rc = regs_get(b->pid, &b->base))) return rc;
  b->cur = b->pid;
  b->cur_base = b->base;
  struct img_thread *th = NULL;
  for (uint32_t i = 0; i < img->nthreads; i++)
    if (img->threads[i].tid == img->pid) th = &img->threads[i];
  if (!th) return cryo_fail(CRYO_EUNSUPPORTED, "the image has no main thread (tid %llu)", (unsigned long long)img->pid);
  if ((rc = child_maps(b->pid, &c, &nc))) return rc;
  /* the trampoline: a place free in both layouts, with room to park the vDSO */
  uint64_t span = TRAMP_SIZE + (4ull << 20);
  b->tramp = 0;
  for (uint64_t t = 0x100000000ull; t < 0x7f0000000000ull; t += 0x40000000ull)
    if (!overlaps_image(img, t, t + span) && !overlaps_child(c, nc, t, t + span)) {
      b->tramp = t;
      break;
    }
  if (!b->tramp) {
    free(c);
    return cryo_fail(CRYO_EFAIL, "no free address range for the restore trampoline");
  }
  uint64_t a[6] = {b->tramp, TRAMP_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0};
  /* the first syscall runs at the child's own pc (inside raise) through the engine's injector */
  struct cryo_session tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.memfd = -1;
  rc = inject_syscall(&tmp, b->pid, SYS_mmap, a, &r);
  if (rc == CRYO_OK && (uint64_t)r != b->tramp)
    rc = cryo_fail(CRYO_EFAIL, "restore: mapping the trampoline at 0x%llx failed (%lld)", (unsigned long long)b->tramp,
                   (long long)r);
  if (rc) goto out;
  static const uint8_t code[4] = {0x0f, 0x05, 0xcc, 0xcc};
  if ((rc = poke(b, b->tramp, code, sizeof code))) goto out;
  /* rseq of the restorer's copy points into memory about to disappear */
  struct {
    uint64_t ptr;
    uint32_t size, sig, flags, pad;
  } rs;
  memset(&rs, 0, sizeof rs);
  if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, b->pid, (void *)sizeof rs, &rs) > 0 && rs.ptr)
    if ((rc = sys_ok(b, "rseq unregister", SYS_rseq, rs.ptr, rs.size, 1, rs.sig, 0, 0, &r))) goto out;
  /* inherited descriptors other than stdio go, except the image's until the pages are in
   * (an image on descriptor 0-2 may have been replaced by the new process's stdio) */
  b->img_fd = img->fd > 2 ? img->fd : -1;
  if (b->img_fd > 3) sys(b, 436 /* close_range */, 3, (uint64_t)b->img_fd - 1, 0, 0, 0, 0, &r);
  sys(b, 436 /* close_range */, b->img_fd >= 0 ? (uint64_t)b->img_fd + 1 : 3, ~0u, 0, 0, 0, 0, &r);
  /* everything inherited goes, except the trampoline and the kernel's special mappings */
  for (int i = 0; i < nc; i++) {
    if (special_kind(c[i].name) || (c[i].start >= b->tramp && c[i].end <= b->tramp + TRAMP_SIZE)) continue;
    if ((rc = sys_ok(b, "munmap", SYS_munmap, c[i].start, c[i].end - c[i].start, 0, 0, 0, 0, &r))) goto out;
  }
  img_timing("trampoline, munmap inherited");
  if ((rc = move_specials(b, c, nc))) goto out;
  if ((rc = map_all(b))) goto out;
  img_timing("map_all: mappings and their contents");
  if ((rc = set_mm(b))) goto out;
  if (img->comm) {
    uint64_t s = 0;
    char comm[16];
    snprintf(comm, sizeof comm, "%s", img->comm);
    if (!scratch_str(b, comm, &s)) sys(b, SYS_prctl, PR_SET_NAME, s, 0, 0, 0, 0, &r);
  }
  sys(b, SYS_personality, img->personality, 0, 0, 0, 0, 0, &r);
  if (img->has_rlimits) {
    for (int i = 0; i < NRLIMITS; i++) {
      uint64_t lim[2] = {img->rlimits[i][0], img->rlimits[i][1]};
      uint64_t base = b->tramp + SCRATCH_OFF;
      if (poke(b, base, lim, sizeof lim)) continue;
      if (sys(b, SYS_prlimit64, 0, (uint64_t)i, base, 0, 0, 0, &r) == CRYO_OK && r < 0)
        note(b, "resource limit %d not restored: %s", i, strerror((int)-r));
    }
  }
  if (img->cwd) {
    uint64_t s = 0;
    if ((rc = scratch_str(b, img->cwd, &s))) goto out;
    char what[PATH_MAX + 16];
    snprintf(what, sizeof what, "chdir %s", img->cwd);
    if ((rc = sys_ok(b, what, SYS_chdir, s, 0, 0, 0, 0, 0, &r))) goto out;
  }
  if ((rc = restore_files(b))) goto out;
  if ((rc = restore_signals(b))) goto out;
  if ((rc = restore_creds(b))) goto out;
  /* everything blocked from here: pending signals are raised again below and the
   * steps must not deliver them; each thread gets its recorded mask last */
  uint64_t all = ~0ull;
  if (ptrace(PTRACE_SETSIGMASK, b->pid, (void *)8, &all) != 0) {
    rc = cryo_fail_errno("restoring process %d: PTRACE_SETSIGMASK", b->pid);
    goto out;
  }
  if ((rc = thread_setup(b, th))) goto out;
  b->tids[th - img->threads] = b->pid;
  /* the other threads: clone3 from the main thread, with their tids when free */
  for (uint32_t i = 0; i < img->nthreads; i++) {
    struct img_thread *t = &img->threads[i];
    if (t == th) continue;
    if ((rc = make_thread(b, t, &b->tids[i]))) goto out;
    b->cur = b->tids[i];
    rc = regs_get(b->cur, &b->cur_base);
    if (!rc) rc = thread_setup(b, t);
    b->cur = b->pid;
    b->cur_base = b->base;
    if (rc) goto out;
  }
  uint64_t pend = img->shared_pending;
  for (int sig = 1; sig <= 64; sig++) {
    if (!(pend >> (sig - 1) & 1) || sig == SIGKILL || sig == SIGSTOP) continue;
    sys(b, SYS_kill, (uint64_t)b->pid, (uint64_t)sig, 0, 0, 0, 0, &r);
    if (r < 0) note(b, "pending signal %d not raised again: %s", sig, strerror((int)-r));
  }
  for (uint32_t i = 0; i < img->nthreads; i++)
    for (int sig = 1; sig <= 64; sig++) {
      if (!(img->threads[i].pending >> (sig - 1) & 1) || sig == SIGKILL || sig == SIGSTOP) continue;
      sys(b, SYS_tgkill, (uint64_t)b->pid, (uint64_t)b->tids[i], (uint64_t)sig, 0, 0, 0, &r);
      if (r < 0) note(b, "pending signal %d of thread %d not raised again: %s", sig, b->tids[i], strerror((int)-r));
    }
  /* the trampoline goes last; the step completes at an address that no longer exists */
  if ((rc = sys_ok(b, "munmap the trampoline", SYS_munmap, b->tramp, TRAMP_SIZE, 0, 0, 0, 0, &r))) goto out;
  for (uint32_t i = 0; i < img->nthreads && !rc; i++) rc = thread_final(b, &img->threads[i], b->tids[i]);
  img_timing("mm, files, signals, threads, registers");
out:
  free(c);
  return rc;
}

static int do_restore(struct cryo_session *s, void *arg) {
  struct restore_args *ra = arg;
  if (s->pid) return cryo_fail(CRYO_EINVAL, "this session already has a debuggee (pid %d)", s->pid);
  /* the same pid as in the image when it is free (clone3 with set_tid: glibc keeps the
   * thread id in its thread descriptor, and raise() and mutexes use it); else a new one */
  struct {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
  } ca;
  memset(&ca, 0, sizeof ca);
  pid_t want = (pid_t)ra->img->pid;
  ca.exit_signal = SIGCHLD;
  ca.set_tid = (uint64_t)(uintptr_t)&want;
  ca.set_tid_size = 1;
  pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
  int same_err = pid < 0 ? errno : 0;
  if (pid < 0) pid = (pid_t)syscall(SYS_clone3, &(struct { uint64_t f[11]; }){{0, 0, 0, 0, SIGCHLD, 0, 0, 0, 0, 0, 0}}, 88);
  if (pid < 0) return cryo_fail_errno("clone3 (a new process to restore into)");
  if (pid == 0) {
    /* raw clone: glibc's idea of our tid is the parent thread's; only raw syscalls here */
    for (int i = 0; ra->stdio && i < 3; i++)
      if (ra->stdio[i] >= 0) syscall(SYS_dup2, ra->stdio[i], i);
    syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
    syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
    syscall(SYS_exit_group, 127);
  }
  if (same_err && ra->rep) {
    size_t len = strlen(ra->rep->notes);
    snprintf(ra->rep->notes + len, sizeof ra->rep->notes - len, "pid %d could not be reused (%s): the process is %d now\n",
             want, same_err == EEXIST ? "in use" : strerror(same_err), pid);
  }
  int st;
  for (;;) {
    pid_t w = waitpid(pid, &st, __WALL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 || !WIFSTOPPED(st)) {
      kill_child(pid);
      return cryo_fail(CRYO_EFAIL, "restore: the new process %d did not stop as expected", pid);
    }
    break;
  }
  ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)(long)TRACE_OPTIONS);
  struct builder b;
  memset(&b, 0, sizeof b);
  b.pid = pid;
  b.img_fd = -1;
  b.img = ra->img;
  b.rep = ra->rep;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mem", pid);
  b.memfd = open(path, O_RDWR | O_CLOEXEC);
  if (b.memfd < 0) {
    int rc = cryo_fail_errno("open %s", path);
    kill_child(pid);
    return rc;
  }
  b.tids = calloc(ra->img->nthreads, sizeof *b.tids);
  int rc = b.tids ? build(&b) : cryo_fail(CRYO_EFAIL, "out of memory");
  close(b.memfd);
  /* the image's pages must be proven whole before the process may run */
  if (ra->pages && !pages_check_join(ra->pages)) rc = CRYO_EINVAL;
  img_timing("pages checksum (waited for)");
  if (rc) {
    free(b.tids);
    kill_child(pid);
    return rc;
  }
  pthread_mutex_lock(&s->lock);
  s->pid = pid;
  s->launched = true;
  pthread_mutex_unlock(&s->lock);
  struct thread *t = thread_add(s, pid, T_STOPPED);
  if (t) t->reported = true;
  for (uint32_t i = 0; i < ra->img->nthreads; i++) {
    if (b.tids[i] == pid || !b.tids[i]) continue;
    t = thread_add(s, b.tids[i], T_STOPPED);
    if (t) t->reported = true;
  }
  free(b.tids);
  rc = session_open_mem(s);
  if (rc) {
    kill_child(pid);
    process_gone(s);
    return rc;
  }
  ra->pid = pid;
  return CRYO_OK;
}

CRYO_API int cryo_image_restore(cryo_session *s, struct cryo_image *img, int32_t *pid, struct img_restore_report *rep) {
  if (!s || !img || !pid) return cryo_fail(CRYO_EINVAL, "cryo_image_restore: null argument");
  if (rep) memset(rep, 0, sizeof *rep);
  struct pages_check pc;
  pages_check_start(&pc, img);
  int rc = cryo_image_check(img);
  img_timing("check");
  if (rc == CRYO_OK) {
    struct restore_args a = {img, rep, 0, NULL, &pc};
    rc = run_on_tracer(s, do_restore, &a);
    *pid = rc == CRYO_OK ? a.pid : 0;
  }
  /* a damaged image is reported as such, whatever else went wrong */
  if (!pages_check_join(&pc)) rc = CRYO_EINVAL;
  return rc;
}

CRYO_API int cryo_image_revive(cryo_session *s, struct cryo_image *img, cryo_revive_opts *o, int32_t *pid) {
  if (!s || !img || !o || !pid) return cryo_fail(CRYO_EINVAL, "cryo_image_revive: null argument");
  *pid = 0;
  int child_fd[3], parent_fd[3];
  int rc = stdio_open(o->stdio_mode, o->stdio_fd, NULL, child_fd, parent_fd);
  if (rc) return rc;
  struct img_restore_report rep;
  memset(&rep, 0, sizeof rep);
  struct pages_check pc;
  pages_check_start(&pc, img);
  rc = cryo_image_check(img);
  if (rc == CRYO_OK) {
    struct restore_args a = {img, &rep, 0, child_fd, &pc};
    rc = run_on_tracer(s, do_restore, &a);
    *pid = rc == CRYO_OK ? a.pid : 0;
  }
  if (!pages_check_join(&pc)) rc = CRYO_EINVAL;
  snprintf(o->notes, sizeof o->notes, "%s", rep.notes);
  for (int i = 0; i < 3; i++) {
    if (child_fd[i] >= 0) close(child_fd[i]);
    if (o->stdio_mode[i] == CRYO_STDIO_PIPE) {
      if (rc == CRYO_OK) o->stdio_fd[i] = parent_fd[i];
      else close(parent_fd[i]);
    }
  }
  return rc;
}
