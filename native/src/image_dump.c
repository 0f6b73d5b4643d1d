/* Dump: a stopped process of a session written as an image.
 *
 * Runs on the session's tracer thread (registers, injected syscalls). Memory is read
 * with process_vm_readv in large batches, guided by /proc/PID/pagemap so that absent
 * pages and clean pages of private file mappings are not read at all; pages that read
 * as zero are recorded as zero. Data pages are streamed into a temporary file next to
 * the target, page-aligned; metadata sections and the table of contents follow, the
 * header is written last. cryo_image_commit makes it durable and renames it. */
#include "image.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_GETSIGMASK
#define PTRACE_GETSIGMASK 0x420a
#endif
#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

#define OUTBUF (8u << 20)
/* Page data goes through NBUF buffers of READ_CHUNK: the writer thread writes them in
 * turn while the reader fills the next ones, so reading can run ahead of a slow disk
 * (and on through pages that turn out zero) instead of waiting for each write. */
/* 1 MiB: the buffers are reused, so only their first use faults their pages in; with
 * 8 MiB buffers those 8192 faults were most of a 16 MiB dump on a paravirtualised VM
 * (memhog.c dumped: 80 ms frozen against 32 at 16 MiB; 650-710 against 555-565 at 1 GiB). */
#define READ_CHUNK (1u << 20)
#define NBUF 4
#define BATCH_PAGES (READ_CHUNK / IMG_PAGE)
/* process_vm_readv reads this many pages at a time: they are then scanned for zeros and
 * checksummed while still in the cache, rather than read back from memory */
#define SUB_PAGES 64u

struct img_pending {
  int fd;
  const char *what; /* "image", "core": for messages */
  char tmp[PATH_MAX];
  char path[PATH_MAX];
  uint64_t size;
};

struct writer {
  int fd;
  const char *path; /* the final name, for messages */
  uint64_t off;     /* bytes written so far */
  uint8_t *buf;
  size_t blen;
  uint32_t data_crc;
  int rc;
  int direct_fl; /* the flags without O_DIRECT while O_DIRECT is on, else -1 */
};

static int wr_flush(struct writer *w) {
  size_t done = 0;
  while (done < w->blen) {
    ssize_t n = write(w->fd, w->buf + done, w->blen - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      int e = errno;
      if (e == ENOSPC || e == EDQUOT)
        w->rc = cryo_fail(CRYO_EFAIL, "writing %s: no space left on the device after %llu bytes (%s); no image written",
                          w->path, (unsigned long long)(w->off + done), strerror(e));
      else
        w->rc = cryo_fail_errno("writing %s after %llu bytes", w->path, (unsigned long long)(w->off + done));
      return w->rc;
    }
    done += (size_t)n;
  }
  w->off += w->blen;
  w->blen = 0;
  return CRYO_OK;
}

static int wr_put(struct writer *w, const void *p, size_t n, bool data) {
  if (w->rc) return w->rc;
  if (data) w->data_crc = img_crc32c(w->data_crc, p, n);
  while (n) {
    size_t k = OUTBUF - w->blen;
    if (k > n) k = n;
    memcpy(w->buf + w->blen, p, k);
    w->blen += k;
    p = (const uint8_t *)p + k;
    n -= k;
    if (w->blen == OUTBUF && wr_flush(w)) return w->rc;
  }
  return CRYO_OK;
}

static uint64_t wr_pos(struct writer *w) { return w->off + w->blen; }

/* ---- /proc helpers ---- */

static char *slurp(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, n = 0;
  char *b = malloc(cap + 1);
  while (b) {
    if (n == cap) {
      char *nb = realloc(b, cap * 2 + 1);
      if (!nb) {
        free(b);
        b = NULL;
        break;
      }
      b = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, b + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  if (b) b[n] = 0;
  if (len) *len = n;
  return b;
}

static uint64_t status_hex(const char *status, const char *key) {
  const char *p = strstr(status, key);
  if (!p) return 0;
  return strtoull(p + strlen(key), NULL, 16);
}

static void status_ids(const char *status, const char *key, uint64_t out[4]) {
  const char *p = strstr(status, key);
  if (!p) return;
  p += strlen(key);
  for (int i = 0; i < 4; i++) {
    char *e;
    out[i] = strtoull(p, &e, 10);
    p = e;
  }
}

/* ---- mappings ---- */

struct vma {
  uint64_t start, end, offset, inode, dev;
  uint32_t prot;
  bool shared;
  char path[PATH_MAX];
};

static int parse_maps(pid_t pid, struct vma **out, int *n) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  char *txt = slurp(path, NULL);
  if (!txt) return cryo_fail_errno("read %s", path);
  int cap = 64, k = 0;
  struct vma *v = malloc((size_t)cap * sizeof *v);
  char *save = NULL;
  for (char *line = strtok_r(txt, "\n", &save); line && v; line = strtok_r(NULL, "\n", &save)) {
    if (k == cap) {
      struct vma *nv = realloc(v, (size_t)cap * 2 * sizeof *v);
      if (!nv) {
        free(v);
        v = NULL;
        break;
      }
      v = nv;
      cap *= 2;
    }
    struct vma *m = &v[k];
    char perms[8] = "";
    unsigned maj = 0, min = 0;
    int consumed = 0;
    unsigned long long s, e, off, ino;
    if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &s, &e, perms, &off, &maj, &min, &ino, &consumed) < 7) continue;
    m->start = s;
    m->end = e;
    m->offset = off;
    m->inode = ino;
    m->dev = makedev(maj, min);
    m->prot = (perms[0] == 'r' ? 1u : 0) | (perms[1] == 'w' ? 2u : 0) | (perms[2] == 'x' ? 4u : 0);
    m->shared = perms[3] == 's';
    snprintf(m->path, sizeof m->path, "%s", line + consumed);
    k++;
  }
  free(txt);
  if (!v) return cryo_fail(CRYO_EFAIL, "out of memory reading %s", path);
  *out = v;
  *n = k;
  return CRYO_OK;
}

static bool ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

struct runs {
  uint8_t *p; /* 16-byte records */
  size_t n, cap;
  bool oom;
};

static void run_add(struct runs *r, uint32_t kind, uint64_t off) {
  if (r->n) {
    uint8_t *last = r->p + 16 * (r->n - 1);
    uint32_t k, np;
    uint64_t o;
    memcpy(&k, last, 4);
    memcpy(&np, last + 4, 4);
    memcpy(&o, last + 8, 8);
    if (k == kind && np < UINT32_MAX && (kind != PK_DATA || o + (uint64_t)np * IMG_PAGE == off)) {
      np++;
      memcpy(last + 4, &np, 4);
      return;
    }
  }
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    uint8_t *q = realloc(r->p, cap * 16);
    if (!q) {
      r->oom = true;
      return;
    }
    r->p = q;
    r->cap = cap;
  }
  uint8_t *e = r->p + 16 * r->n++;
  uint32_t one = 1;
  uint64_t o = kind == PK_DATA ? off : 0;
  memcpy(e, &kind, 4);
  memcpy(e + 4, &one, 4);
  memcpy(e + 8, &o, 8);
}

/* 64 bytes at a time, stopping at the first non-zero block: data pages usually
 * answer in the first few bytes, zero pages are read once. */
static bool page_is_zero(const uint8_t *p) {
  const uint64_t *q = (const uint64_t *)(const void *)p;
  for (size_t i = 0; i < IMG_PAGE / 8; i += 8)
    if (q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] | q[i + 7]) return false;
  return true;
}

struct dumpctx {
  struct cryo_session *s;
  uint64_t t_read, t_scan, t_wait, t_write; /* CRYO_TIMING: where the memory phase went */
  pid_t pid;
  struct writer w;
  uint8_t *rbuf; /* READ_CHUNK, the buffer being filled: bufs[cur] */
  /* a writer thread writes the filled buffers in turn while the next ones are read */
  uint8_t *bufs[NBUF];
  int cur;
  struct iovec jobiov[NBUF][BATCH_PAGES];
  int jobn[NBUF];
  bool busy[NBUF], quit, wt_on;
  pthread_t wt;
  pthread_mutex_t m;
  pthread_cond_t cv;
  int wrc;
  char werr[1024];
  uint64_t *pm;  /* pagemap entries */
  int pmfd;
  struct img_dump_stats *st;
  uint64_t data_pos;
  const struct saved_fd *fds; /* descriptor offsets to record instead of the live ones */
  int nfds;
};

/* Writes iov[0..n) at the current end, straight from where the pages were read. */
static int wr_pages(struct writer *w, struct iovec *iov, int n) {
  if (w->rc) return w->rc;
  if (w->blen && wr_flush(w)) return w->rc;
  while (n > 0) {
    ssize_t k = writev(w->fd, iov, n > 1024 ? 1024 : n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && errno == EINVAL && w->direct_fl >= 0) {
      fcntl(w->fd, F_SETFL, w->direct_fl); /* O_DIRECT refused after all: buffered */
      w->direct_fl = -1;
      continue;
    }
    if (k <= 0) {
      if (k == 0) errno = ENOSPC;
      int e = errno;
      if (e == ENOSPC || e == EDQUOT)
        w->rc = cryo_fail(CRYO_EFAIL, "writing %s: no space left on the device after %llu bytes (%s); no image written",
                          w->path, (unsigned long long)w->off, strerror(e));
      else
        w->rc = cryo_fail_errno("writing %s after %llu bytes", w->path, (unsigned long long)w->off);
      return w->rc;
    }
    w->off += (uint64_t)k;
    while (n > 0 && (size_t)k >= iov->iov_len) {
      k -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + k;
      iov->iov_len -= (size_t)k;
    }
  }
  return CRYO_OK;
}

static void *writer_main(void *arg) {
  struct dumpctx *d = arg;
  int k = 0;
  for (;;) {
    pthread_mutex_lock(&d->m);
    while (!d->busy[k] && !d->quit) pthread_cond_wait(&d->cv, &d->m);
    if (!d->busy[k]) {
      pthread_mutex_unlock(&d->m);
      break;
    }
    pthread_mutex_unlock(&d->m);
    if (!d->wrc) {
      uint64_t t1 = now_ns(CLOCK_MONOTONIC);
      int wrc = wr_pages(&d->w, d->jobiov[k], d->jobn[k]);
      d->t_write += now_ns(CLOCK_MONOTONIC) - t1;
      if (wrc != CRYO_OK) {
        cryo_copy_error(d->werr, sizeof d->werr);
        d->wrc = d->w.rc;
      }
    }
    pthread_mutex_lock(&d->m);
    d->busy[k] = false;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->m);
    k = (k + 1) % NBUF;
  }
  return NULL;
}

/* Waits until every submitted batch is written; the writer's error, if any. */
static int writer_drain(struct dumpctx *d) {
  if (!d->wt_on) return CRYO_OK;
  pthread_mutex_lock(&d->m);
  for (int k = 0; k < NBUF; k++)
    while (d->busy[k]) pthread_cond_wait(&d->cv, &d->m);
  pthread_mutex_unlock(&d->m);
  if (d->wrc) {
    cryo_set_error_text(d->werr);
    return d->wrc;
  }
  return CRYO_OK;
}

static void writer_stop(struct dumpctx *d) {
  if (!d->wt_on) return;
  pthread_mutex_lock(&d->m);
  d->quit = true;
  pthread_cond_broadcast(&d->cv);
  pthread_mutex_unlock(&d->m);
  pthread_join(d->wt, NULL);
  d->wt_on = false;
}

/* Hands the data pages of the current buffer (already in the checksum) to the writer. */
static int submit(struct dumpctx *d, struct iovec *out, int nout) {
  if (!d->wt_on) return wr_pages(&d->w, out, nout);
  int k = d->cur;
  memcpy(d->jobiov[k], out, (size_t)nout * sizeof *out);
  d->jobn[k] = nout;
  uint64_t t0 = now_ns(CLOCK_MONOTONIC);
  pthread_mutex_lock(&d->m);
  d->busy[k] = true;
  pthread_cond_broadcast(&d->cv);
  /* the next buffer is filled next: wait until it has been written */
  d->cur = (d->cur + 1) % NBUF;
  while (d->busy[d->cur]) pthread_cond_wait(&d->cv, &d->m);
  pthread_mutex_unlock(&d->m);
  d->t_wait += now_ns(CLOCK_MONOTONIC) - t0;
  d->rbuf = d->bufs[d->cur];
  if (d->wrc) {
    cryo_set_error_text(d->werr);
    return d->wrc;
  }
  return CRYO_OK;
}

/* Reads the pages at addrs[0..count) of one mapping and records them: SUB_PAGES at a
 * time, each lot scanned for zero pages and its data pages checksummed (in file order)
 * while still in the cache. */
static int read_batch(struct dumpctx *d, const uint64_t *addrs, size_t count, struct runs *runs, bool *readable) {
  struct iovec out[BATCH_PAGES];
  int nout = 0;
  for (size_t sub = 0; sub < count; sub += SUB_PAGES) {
    size_t scount = count - sub < SUB_PAGES ? count - sub : SUB_PAGES;
    const uint64_t *sa = addrs + sub;
    uint8_t *sbuf = d->rbuf + sub * IMG_PAGE;
    /* remote iovecs over contiguous ranges, one local buffer */
    struct iovec remote[SUB_PAGES];
    size_t nrem = 0;
    for (size_t i = 0; i < scount;) {
      size_t j = i + 1;
      while (j < scount && sa[j] == sa[j - 1] + IMG_PAGE) j++;
      remote[nrem].iov_base = (void *)(uintptr_t)sa[i];
      remote[nrem].iov_len = (j - i) * IMG_PAGE;
      nrem++;
      i = j;
    }
    struct iovec local = {sbuf, scount * IMG_PAGE};
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    ssize_t got = *readable ? process_vm_readv(d->pid, &local, 1, remote, nrem, 0) : -1;
    if (got < 0) got = 0;
    uint64_t t1 = now_ns(CLOCK_MONOTONIC);
    d->t_read += t1 - t0;
    size_t full = (size_t)got / IMG_PAGE;
    for (size_t i = 0; i < scount; i++) {
      uint8_t *pg = sbuf + i * IMG_PAGE;
      if (i >= full) {
        /* what process_vm_readv refused (PROT_NONE, a hole): try /proc/PID/mem */
        ssize_t n = mem_read_raw(d->s, d->pid, sa[i], pg, IMG_PAGE);
        if (n != (ssize_t)IMG_PAGE) {
          run_add(runs, PK_UNREADABLE, 0);
          d->st->pages[PK_UNREADABLE]++;
          continue;
        }
      }
      if (page_is_zero(pg)) {
        run_add(runs, PK_ZERO, 0);
        d->st->pages[PK_ZERO]++;
      } else {
        d->w.data_crc = img_crc32c(d->w.data_crc, pg, IMG_PAGE);
        run_add(runs, PK_DATA, d->data_pos);
        d->data_pos += IMG_PAGE;
        d->st->pages[PK_DATA]++;
        if (nout && (uint8_t *)out[nout - 1].iov_base + out[nout - 1].iov_len == pg) {
          out[nout - 1].iov_len += IMG_PAGE;
        } else {
          out[nout].iov_base = pg; /* at most BATCH_PAGES pages in a batch: room enough */
          out[nout].iov_len = IMG_PAGE;
          nout++;
        }
      }
    }
    d->t_scan += now_ns(CLOCK_MONOTONIC) - t1;
    if (full < scount && got == 0) *readable = false; /* do not retry process_vm_readv on this mapping */
  }
  if (nout) {
    int rc = submit(d, out, nout);
    if (rc) return rc;
  }
  return CRYO_OK;
}

static int classify_special(const char *path, uint64_t *kind) {
  if (!strcmp(path, "[heap]")) *kind = MK_HEAP;
  else if (!strcmp(path, "[stack]")) *kind = MK_STACK;
  else if (!strcmp(path, "[vdso]")) *kind = MK_VDSO;
  else if (!strcmp(path, "[vvar]")) *kind = MK_VVAR;
  else if (!strcmp(path, "[vvar_vclock]")) *kind = MK_VVAR_VCLOCK;
  else if (!strcmp(path, "[vsyscall]")) *kind = MK_VSYSCALL;
  else if (!strncmp(path, "[anon:", 6) || !strncmp(path, "[anon_shmem:", 12)) *kind = MK_ANON;
  else return -1;
  return 0;
}

static int dump_mapping(struct dumpctx *d, struct vma *v, struct img_buf *meta) {
  uint64_t kind = MK_ANON, flags = v->shared ? MF_SHARED : 0;
  uint64_t fsize = 0, fmtime = 0;
  uint8_t bid[64];
  uint32_t bidlen = 0;
  if (v->path[0] == '[') {
    if (classify_special(v->path, &kind) != 0)
      return cryo_fail(CRYO_EUNSUPPORTED,
                       "process %d has the special mapping %s at 0x%llx-0x%llx, which cryo cannot save or restore",
                       d->pid, v->path, (unsigned long long)v->start, (unsigned long long)v->end);
  } else if (v->path[0] && v->inode) {
    kind = MK_FILE;
    char mf[128];
    snprintf(mf, sizeof mf, "/proc/%d/map_files/%llx-%llx", d->pid, (unsigned long long)v->start,
             (unsigned long long)v->end);
    struct stat st, cur;
    bool have = stat(mf, &st) == 0;
    if (ends_with(v->path, " (deleted)") || !strncmp(v->path, "/memfd:", 7) || !strncmp(v->path, "/SYSV", 5) ||
        !strncmp(v->path, "/dev/zero", 9))
      flags |= MF_CONTENT;
    else if (stat(v->path, &cur) != 0 || cur.st_ino != v->inode || cur.st_dev != v->dev)
      flags |= MF_CONTENT; /* the name now leads elsewhere: keep every page */
    else if (!have)
      st = cur;
    if (have || !(flags & MF_CONTENT)) {
      fsize = (uint64_t)st.st_size;
      fmtime = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
    }
    if (!(flags & MF_CONTENT) && v->offset == 0) img_build_id_path(have ? mf : v->path, bid, sizeof bid, &bidlen);
    else if (!(flags & MF_CONTENT)) img_build_id_path(v->path, bid, sizeof bid, &bidlen);
  } else if (v->path[0]) {
    flags |= MF_CONTENT; /* a name without an inode: keep its content */
  }

  struct runs runs = {0};
  uint64_t npages = (v->end - v->start) / IMG_PAGE;
  bool special = kind == MK_VDSO || kind == MK_VVAR || kind == MK_VVAR_VCLOCK || kind == MK_VSYSCALL;
  bool file_source = kind == MK_FILE && !(flags & MF_CONTENT);
  bool readable = true;
  if (kind == MK_VVAR || kind == MK_VVAR_VCLOCK) {
    for (uint64_t i = 0; i < npages; i++) run_add(&runs, PK_UNREADABLE, 0);
  } else if (kind == MK_VSYSCALL) {
    for (uint64_t i = 0; i < npages; i++) run_add(&runs, PK_ABSENT, 0);
  } else {
    uint64_t addrs[BATCH_PAGES];
    size_t na = 0, nranges = 0;
    const size_t PMCHUNK = 65536;
    for (uint64_t base = 0; base < npages; base += PMCHUNK) {
      size_t cnt = (size_t)(npages - base < PMCHUNK ? npages - base : PMCHUNK);
      bool have_pm = false;
      if (d->pmfd >= 0 && !special) {
        ssize_t want = (ssize_t)(cnt * 8);
        have_pm = pread(d->pmfd, d->pm, (size_t)want, (off_t)((v->start / IMG_PAGE + base) * 8)) == want;
      }
      for (size_t i = 0; i < cnt; i++) {
        uint64_t addr = v->start + (base + i) * IMG_PAGE;
        uint32_t pk = 0; /* 0: read it */
        if (have_pm) {
          uint64_t e = d->pm[i];
          bool present = e >> 63 & 1, swapped = e >> 62 & 1, filepg = e >> 61 & 1;
          if (!present && !swapped) pk = PK_ABSENT;
          else if (present && file_source && (filepg || v->shared)) pk = PK_FILE;
        }
        if (pk) {
          /* flush what is queued first so runs stay in address order */
          if (na) {
            if (read_batch(d, addrs, na, &runs, &readable)) goto fail;
            na = nranges = 0;
          }
          run_add(&runs, pk, 0);
          d->st->pages[pk]++;
          continue;
        }
        if (na && addrs[na - 1] + IMG_PAGE != addr) nranges++;
        if (na == BATCH_PAGES || nranges >= 1023) {
          if (read_batch(d, addrs, na, &runs, &readable)) goto fail;
          na = nranges = 0;
        }
        addrs[na++] = addr;
      }
    }
    if (na && read_batch(d, addrs, na, &runs, &readable)) goto fail;
  }
  if (runs.oom) {
    free(runs.p);
    return cryo_fail(CRYO_EFAIL, "out of memory");
  }
  size_t at = img_tlv_begin(meta, M_MAPPING);
  img_tlv_u64(meta, MP_START, v->start);
  img_tlv_u64(meta, MP_END, v->end);
  img_tlv_u64(meta, MP_PROT, v->prot);
  img_tlv_u64(meta, MP_FLAGS, flags);
  img_tlv_u64(meta, MP_OFFSET, v->offset);
  img_tlv_str(meta, MP_PATH, v->path);
  img_tlv_u64(meta, MP_DEV, v->dev);
  img_tlv_u64(meta, MP_INODE, v->inode);
  img_tlv_u64(meta, MP_KIND, kind);
  if (kind == MK_FILE) {
    img_tlv_u64(meta, MP_FILE_SIZE, fsize);
    img_tlv_u64(meta, MP_FILE_MTIME, fmtime);
    if (bidlen) img_tlv_bytes(meta, MP_BUILD_ID, bid, bidlen);
  }
  img_tlv_bytes(meta, MP_RUNS, runs.p, runs.n * 16);
  img_tlv_end(meta, at);
  free(runs.p);
  return CRYO_OK;
fail:
  free(runs.p);
  return d->w.rc ? d->w.rc : CRYO_EFAIL;
}

/* The thread's clear_child_tid (what pthread_join waits on), asked in the thread itself. */
static bool thread_clear_tid(struct dumpctx *d, pid_t tid, uint64_t *out) {
  struct user_regs_struct r;
  if (regs_get(tid, &r) != CRYO_OK) return false;
  uint64_t scratch = (r.rsp - 1024) & ~15ull, saved;
  if (mem_read_raw(d->s, tid, scratch, &saved, 8) != 8) return false;
  uint64_t a[6] = {40 /* PR_GET_TID_ADDRESS */, scratch, 0, 0, 0, 0};
  int64_t ret = -1;
  bool ok = inject_syscall(d->s, tid, SYS_prctl, a, &ret) == CRYO_OK && ret == 0 &&
            mem_read_raw(d->s, tid, scratch, out, 8) == 8;
  mem_write_raw(d->s, tid, scratch, &saved, 8);
  return ok;
}

/* ---- signal actions: read with rt_sigaction injected into a stopped thread ---- */

static int dump_sigactions(struct dumpctx *d, pid_t tid, uint64_t mask, struct img_buf *meta) {
  struct user_regs_struct r;
  int rc = regs_get(tid, &r);
  if (rc) return rc;
  uint64_t scratch = (r.rsp - 1024) & ~15ull;
  uint8_t saved[32];
  if (mem_read_raw(d->s, tid, scratch, saved, sizeof saved) != (ssize_t)sizeof saved) {
    /* no stack below sp (a stack overflow): borrow the first writable private page */
    struct vma *v = NULL;
    int n = 0;
    scratch = 0;
    if (parse_maps(d->pid, &v, &n) == CRYO_OK) {
      for (int i = 0; i < n && !scratch; i++)
        if ((v[i].prot & 3) == 3 && !v[i].shared) scratch = v[i].start;
      free(v);
    }
    if (!scratch || mem_read_raw(d->s, tid, scratch, saved, sizeof saved) != (ssize_t)sizeof saved)
      return cryo_fail(CRYO_EFAIL, "reading signal actions of %d: no writable memory to use", d->pid);
  }
  for (int sig = 1; sig <= 64; sig++) {
    if (!(mask >> (sig - 1) & 1) || sig == SIGKILL || sig == SIGSTOP) continue;
    uint64_t a[6] = {(uint64_t)sig, 0, scratch, 8, 0, 0};
    int64_t ret = 0;
    rc = inject_syscall(d->s, tid, SYS_rt_sigaction, a, &ret);
    if (rc) break;
    if (ret < 0) continue;
    uint64_t act[4];
    if (mem_read_raw(d->s, tid, scratch, act, sizeof act) != (ssize_t)sizeof act) {
      rc = cryo_fail(CRYO_EFAIL, "reading the signal action of %d in %d", sig, d->pid);
      break;
    }
    size_t at = img_tlv_begin(meta, S_ACTION);
    img_tlv_u64(meta, SG_SIGNO, (uint64_t)sig);
    img_tlv_u64(meta, SG_HANDLER, act[0]);
    img_tlv_u64(meta, SG_FLAGS, act[1]);
    img_tlv_u64(meta, SG_RESTORER, act[2]);
    img_tlv_u64(meta, SG_MASK, act[3]);
    img_tlv_end(meta, at);
  }
  int rc2 = mem_write_raw(d->s, tid, scratch, saved, sizeof saved);
  return rc ? rc : rc2;
}

/* ---- descriptors ---- */

static int dump_files(struct dumpctx *d, struct img_buf *meta) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/fd", d->pid);
  DIR *dd = opendir(dir);
  if (!dd) return cryo_fail_errno("open %s", dir);
  struct dirent *e;
  while ((e = readdir(dd))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = atoi(e->d_name);
    char lp[96], target[PATH_MAX];
    snprintf(lp, sizeof lp, "/proc/%d/fd/%d", d->pid, fd);
    ssize_t n = readlink(lp, target, sizeof target - 1);
    if (n < 0) continue; /* closed meanwhile (cannot happen while stopped, but harmless) */
    target[n] = 0;
    struct stat st;
    bool have = stat(lp, &st) == 0;
    uint64_t type = FT_OTHER;
    if (have) {
      if (S_ISREG(st.st_mode)) type = FT_REG;
      else if (S_ISDIR(st.st_mode)) type = FT_DIR;
      else if (S_ISCHR(st.st_mode)) type = FT_CHR;
      else if (S_ISBLK(st.st_mode)) type = FT_BLK;
      else if (S_ISFIFO(st.st_mode)) type = FT_FIFO;
      else if (S_ISSOCK(st.st_mode)) type = FT_SOCK;
    }
    if (target[0] != '/') type = type == FT_FIFO || type == FT_SOCK ? type : FT_OTHER; /* anon_inode:... */
    char ip[96];
    snprintf(ip, sizeof ip, "/proc/%d/fdinfo/%d", d->pid, fd);
    char *info = slurp(ip, NULL);
    uint64_t pos = 0, flags = 0;
    if (info) {
      char *p = strstr(info, "pos:");
      if (p) pos = strtoull(p + 4, NULL, 10);
      p = strstr(info, "flags:");
      if (p) flags = strtoull(p + 6, NULL, 8);
      free(info);
    }
    for (int k = 0; k < d->nfds; k++)
      if (d->fds[k].fd == fd) pos = (uint64_t)d->fds[k].pos;
    size_t at = img_tlv_begin(meta, F_FILE);
    img_tlv_u64(meta, FL_NUM, (uint64_t)fd);
    img_tlv_u64(meta, FL_FLAGS, flags);
    img_tlv_u64(meta, FL_TYPE, type);
    img_tlv_str(meta, FL_PATH, target);
    img_tlv_u64(meta, FL_POS, pos);
    if (have) {
      img_tlv_u64(meta, FL_SIZE, (uint64_t)st.st_size);
      img_tlv_u64(meta, FL_MTIME, (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec);
      img_tlv_u64(meta, FL_DEV, st.st_dev);
      img_tlv_u64(meta, FL_INODE, st.st_ino);
    }
    img_tlv_end(meta, at);
  }
  closedir(dd);
  return CRYO_OK;
}

/* ---- the whole dump ---- */

struct dump_args {
  const char *path;
  const struct img_dump_opts *o;
  struct img_dump_stats *st;
  struct img_pending *pending;
  const struct img_target *target;
};

struct section {
  uint32_t type;
  uint64_t off, len;
  uint32_t crc;
};

static int put_section(struct writer *w, struct section *sec, uint32_t type, struct img_buf *b) {
  if (b->oom) return cryo_fail(CRYO_EFAIL, "out of memory building the image");
  sec->type = type;
  sec->off = wr_pos(w);
  sec->len = b->len;
  sec->crc = img_crc32c(0, b->p, b->len);
  return wr_put(w, b->p, b->len, false);
}

/* Copies each checkpoint's image into the file at the next page boundary (its pages stay
 * mappable where they are) and lists them in `hist` (the HISTORY section). */
static int put_history(struct writer *w, const struct img_dump_opts *o, struct img_buf *hist) {
  static const uint8_t zeros[IMG_PAGE];
  enum { CHUNK = 1 << 20 };
  uint8_t *buf = malloc(CHUNK);
  if (!buf) return cryo_fail(CRYO_EFAIL, "out of memory");
  int rc = CRYO_OK;
  for (uint32_t i = 0; i < o->nhistory && !rc; i++) {
    const struct img_history_src *h = &o->history[i];
    uint64_t pad = (IMG_PAGE - wr_pos(w) % IMG_PAGE) % IMG_PAGE;
    if ((rc = wr_put(w, zeros, (size_t)pad, false))) break;
    uint64_t off = wr_pos(w);
    for (uint64_t done = 0; done < h->len && !rc;) {
      size_t want = h->len - done < CHUNK ? (size_t)(h->len - done) : CHUNK;
      ssize_t n = pread(h->fd, buf, want, (off_t)done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        rc = n < 0 ? cryo_fail_errno("reading the image of checkpoint %u", i)
                   : cryo_fail(CRYO_EFAIL, "the image of checkpoint %u ends after %llu bytes, not %llu", i,
                               (unsigned long long)done, (unsigned long long)h->len);
        break;
      }
      rc = wr_put(w, buf, (size_t)n, false);
      done += (uint64_t)n;
    }
    if (rc) break;
    size_t at = img_tlv_begin(hist, H_CHECKPOINT);
    img_tlv_u64(hist, HC_POSITION, h->position >= o->log_from ? h->position - o->log_from : 0);
    img_tlv_u64(hist, HC_TIME_NS, h->time_ns);
    img_tlv_u64(hist, HC_PC, h->pc);
    img_tlv_u64(hist, HC_OFFSET, off);
    img_tlv_u64(hist, HC_LENGTH, h->len);
    img_tlv_end(hist, at);
  }
  free(buf);
  if (!rc) {
    /* what follows (metadata) starts on a page of its own, so the last image is whole pages too */
    uint64_t pad = (IMG_PAGE - wr_pos(w) % IMG_PAGE) % IMG_PAGE;
    rc = wr_put(w, zeros, (size_t)pad, false);
  }
  return rc;
}

static int do_dump(struct cryo_session *s, void *arg) {
  struct dump_args *a = arg;
  struct img_pending *pd = a->pending;
  const struct img_target *tg = a->target;
  pid_t *tids = NULL;
  int ntids = 0;
  if (tg) {
    if (tg->pid <= 0 || tg->ntids < 1 || !tg->tids) return cryo_fail(CRYO_EINVAL, "dump: no process given");
    tids = (pid_t *)tg->tids;
    ntids = tg->ntids;
  } else {
    if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no process to dump");
    if (any_running(s)) return cryo_fail(CRYO_ERUNNING, "the process must be stopped to be dumped");
    if (s->nthreads < 1) return cryo_fail(CRYO_ENOPROC, "process %d has no threads left to dump", s->pid);
    tids = calloc((size_t)s->nthreads, sizeof *tids);
    if (!tids) return cryo_fail(CRYO_EFAIL, "out of memory");
    for (int i = 0; i < s->nthreads; i++) tids[ntids++] = s->threads[i].tid;
  }
  pid_t target_pid = tg ? tg->pid : s->pid;
  struct dumpctx d = {.s = s, .pid = target_pid, .pmfd = -1, .st = a->st, .fds = tg ? tg->fds : NULL,
                      .nfds = tg ? tg->nfds : 0};
  d.w.direct_fl = -1;
  img_timing(NULL);
  struct img_buf proc = {0}, thr = {0}, maps = {0}, files = {0}, sigs = {0}, hist = {0}, logb = {0};
  bool vdso_unpatched = false;
  struct vma *vmas = NULL;
  int nvmas = 0, rc = CRYO_OK;
  char path[128], *txt = NULL;
  pid_t pid = target_pid, tid0 = tids[0];
  for (int i = 0; i < ntids; i++)
    if (tids[i] == pid) tid0 = pid;

  d.w.fd = pd->fd;
  d.w.path = a->path;
  d.w.buf = malloc(OUTBUF);
  bool bufs_ok = true;
  for (int k = 0; k < NBUF; k++) bufs_ok = (d.bufs[k] = aligned_alloc(IMG_PAGE, READ_CHUNK)) && bufs_ok;
  d.rbuf = d.bufs[0];
  pthread_mutex_init(&d.m, NULL);
  pthread_cond_init(&d.cv, NULL);
  d.pm = malloc(65536 * 8);
  if (!d.w.buf || !bufs_ok || !d.pm) {
    rc = cryo_fail(CRYO_EFAIL, "out of memory");
    goto out;
  }

  /* --- process --- */
  img_tlv_u64(&proc, PRC_PID, (uint64_t)(tg && tg->record_pid ? tg->record_pid : pid));
  img_tlv_u64(&proc, PRC_PAGE_SIZE, IMG_PAGE);
  img_tlv_u64(&proc, PRC_TIME_NS, a->o && a->o->time_ns ? a->o->time_ns : now_ns(CLOCK_REALTIME));
  img_tlv_u64(&proc, PRC_REASON, a->o && a->o->reason ? a->o->reason : REASON_SNAPSHOT);
  if (a->o && a->o->reason == REASON_CRASH) {
    img_tlv_u64(&proc, PRC_CRASH_TID, (uint64_t)a->o->crash_tid);
    img_tlv_bytes(&proc, PRC_SIGINFO, a->o->siginfo, 128);
  }
  snprintf(path, sizeof path, "/proc/%d/exe", pid);
  char exe[PATH_MAX];
  ssize_t n = readlink(path, exe, sizeof exe - 1);
  if (n < 0) {
    rc = cryo_fail_errno("readlink %s", path);
    goto out;
  }
  exe[n] = 0;
  img_tlv_str(&proc, PRC_EXE, exe);
  uint8_t bid[64];
  uint32_t bidlen = 0;
  if (img_build_id_path(path, bid, sizeof bid, &bidlen) == 0) img_tlv_bytes(&proc, PRC_EXE_BUILD_ID, bid, bidlen);
  snprintf(path, sizeof path, "/proc/%d/cwd", pid);
  char cwd[PATH_MAX];
  n = readlink(path, cwd, sizeof cwd - 1);
  if (n >= 0) {
    cwd[n] = 0;
    img_tlv_str(&proc, PRC_CWD, cwd);
  }
  static const struct {
    const char *name;
    uint16_t tag;
  } blobs[] = {{"cmdline", PRC_CMDLINE}, {"environ", PRC_ENVIRON}, {"auxv", PRC_AUXV}};
  for (size_t i = 0; i < 3; i++) {
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/%s", pid, blobs[i].name);
    txt = slurp(path, &len);
    if (txt) img_tlv_bytes(&proc, blobs[i].tag, txt, blobs[i].tag == PRC_AUXV && len > 4096 ? 4096 : len);
    free(txt);
    txt = NULL;
  }
  snprintf(path, sizeof path, "/proc/%d/comm", pid);
  txt = slurp(path, NULL);
  if (txt) {
    txt[strcspn(txt, "\n")] = 0;
    img_tlv_str(&proc, PRC_COMM, txt);
  }
  free(txt);
  snprintf(path, sizeof path, "/proc/%d/personality", pid);
  txt = slurp(path, NULL);
  if (txt) img_tlv_u64(&proc, PRC_PERSONALITY, strtoull(txt, NULL, 16));
  free(txt);
  uint64_t rl[NRLIMITS][2];
  memset(rl, 0xff, sizeof rl);
  for (int i = 0; i < NRLIMITS; i++) {
    struct rlimit r;
    if (prlimit(pid, (__rlimit_resource_t)i, NULL, &r) == 0) {
      rl[i][0] = r.rlim_cur;
      rl[i][1] = r.rlim_max;
    }
  }
  img_tlv_bytes(&proc, PRC_RLIMITS, rl, sizeof rl);

  snprintf(path, sizeof path, "/proc/%d/status", pid);
  char *status = slurp(path, NULL);
  uint64_t sigmask_handled = 0;
  if (status) {
    uint64_t creds[8] = {0};
    status_ids(status, "\nUid:", creds);
    status_ids(status, "\nGid:", creds + 4);
    const char *g = strstr(status, "\nGroups:");
    if (g) {
      uint32_t gids[1024];
      size_t ng = 0;
      char *e;
      g += 8;
      for (;;) {
        unsigned long v = strtoul(g, &e, 10);
        if (e == g || ng == 1024) break;
        gids[ng++] = (uint32_t)v;
        g = e;
      }
      img_tlv_bytes(&proc, PRC_GROUPS, gids, ng * 4);
    }
    img_tlv_bytes(&proc, PRC_CREDS, creds, sizeof creds);
    img_tlv_u64(&proc, PRC_SHARED_PENDING, status_hex(status, "\nShdPnd:"));
    sigmask_handled = status_hex(status, "\nSigCgt:") | status_hex(status, "\nSigIgn:");
    const char *pp = strstr(status, "\nPPid:");
    if (pp) img_tlv_u64(&proc, PRC_PPID, strtoull(pp + 6, NULL, 10));
    free(status);
  }
  txt = NULL;
  /* mm fields: /proc/PID/stat fields 26-28 and 45-51, brk from an injected brk(0) */
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  txt = slurp(path, NULL);
  if (txt) {
    char *p = strrchr(txt, ')');
    uint64_t f[64] = {0};
    int fi = 3;
    if (p) {
      p += 2;
      p = strchr(p, ' '); /* skip the state (field 3) */
      while (p && fi < 63) {
        fi++;
        f[fi] = strtoull(p + 1, &p, 10);
        if (*p != ' ') break;
      }
    }
    int64_t brk = 0;
    uint64_t z[6] = {0};
    if (inject_syscall(s, tid0, SYS_brk, z, &brk) != CRYO_OK || brk <= 0) brk = (int64_t)f[47];
    uint64_t mm[MM_FIELDS] = {f[26], f[27], f[28], f[45], f[46], f[47], (uint64_t)brk, f[48], f[49], f[50], f[51]};
    img_tlv_bytes(&proc, PRC_MM, mm, sizeof mm);
  }
  free(txt);
  txt = NULL;
  struct utsname u;
  if (uname(&u) == 0) {
    img_tlv_str(&proc, PRC_KERNEL, u.release);
    img_tlv_str(&proc, PRC_MACHINE, u.machine);
    img_tlv_str(&proc, PRC_HOSTNAME, u.nodename);
  }
  if (cpu_has_xsave()) img_tlv_u64(&proc, PRC_XCR0, xgetbv0());

  img_timing("dump: process metadata");
  /* --- threads --- */
  uint64_t xsave_size = 0;
  for (int i = 0; i < ntids; i++) {
    pid_t tid = tids[i];
    /* the thread id the program knows (a frozen copy has another one) */
    pid_t rec_tid = tg && tg->record_pid && tid == pid ? tg->record_pid : tid;
    struct user_regs_struct r;
    rc = regs_get(tid, &r);
    if (rc) goto out;
    size_t at = img_tlv_begin(&thr, T_THREAD);
    img_tlv_u64(&thr, TH_TID, (uint64_t)rec_tid);
    img_tlv_bytes(&thr, TH_REGS, &r, sizeof r);
    img_tlv_u64(&thr, TH_FS_BASE, r.fs_base);
    img_tlv_u64(&thr, TH_GS_BASE, r.gs_base);
    static uint8_t xs[XSTATE_MAX];
    struct iovec iov = {xs, sizeof xs};
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0) {
      img_tlv_bytes(&thr, TH_XSAVE, xs, iov.iov_len);
      xsave_size = iov.iov_len;
    }
    uint64_t mask = 0;
    if (ptrace(PTRACE_GETSIGMASK, tid, (void *)8, &mask) == 0) img_tlv_u64(&thr, TH_SIGMASK, mask);
    char tp[96];
    snprintf(tp, sizeof tp, "/proc/%d/task/%d/status", pid, tid);
    char *ts = slurp(tp, NULL);
    if (ts) {
      uint64_t pend = status_hex(ts, "\nSigPnd:");
      /* a signal the session took out of the kernel at its delivery stop and holds for
       * the next resume (the dump's own attach can catch one on its way): pending for
       * the image too, else a restore loses it. Not a crash's own signal: that is the
       * image's reason. */
      struct thread *held = tg ? NULL : thread_find(s, tid);
      if (held && held->pending_sig > 0 && held->pending_sig < 65 &&
          !(a->o->reason == REASON_CRASH && a->o->crash_tid == tid))
        pend |= 1ull << (held->pending_sig - 1);
      img_tlv_u64(&thr, TH_PENDING, pend);
      free(ts);
    }
    struct {
      uint64_t ptr;
      uint32_t size, sig, flags, pad;
    } rs;
    memset(&rs, 0, sizeof rs);
    if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof rs, &rs) > 0 && rs.ptr) {
      uint8_t b[16];
      memcpy(b, &rs.ptr, 8);
      memcpy(b + 8, &rs.size, 4);
      memcpy(b + 12, &rs.sig, 4);
      img_tlv_bytes(&thr, TH_RSEQ, b, 16);
    }
    uint64_t rl[2] = {0, 0};
    if (syscall(SYS_get_robust_list, tid, &rl[0], &rl[1]) == 0) img_tlv_bytes(&thr, TH_ROBUST, rl, sizeof rl);
    uint64_t ctid;
    if (thread_clear_tid(&d, tid, &ctid)) img_tlv_u64(&thr, TH_CLEAR_TID, ctid);
    img_tlv_end(&thr, at);
  }
  if (xsave_size) img_tlv_u64(&proc, PRC_XSAVE_SIZE, xsave_size);

  img_timing("dump: threads");
  /* --- signal actions and descriptors (before memory: injection touches the stack) --- */
  rc = dump_sigactions(&d, tid0, sigmask_handled, &sigs);
  if (rc) goto out;
  img_timing("dump: signal actions");
  rc = dump_files(&d, &files);
  if (rc) goto out;
  img_timing("dump: descriptors");

  /* --- memory --- */
  /* a recorded process runs with its vDSO and libc's syscall sites patched (record.c,
   * sysbuf.c): the image holds the kernel's and libc's own code, as a restore checks;
   * recording goes on afterwards */
  if (!tg && s->rec_filter) {
    rc = record_unpatch(s, pid);
    if (rc) goto out;
    vdso_unpatched = true;
  }
  rc = parse_maps(pid, &vmas, &nvmas);
  if (rc) goto out;
  snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
  d.pmfd = open(path, O_RDONLY | O_CLOEXEC);
  /* the page data starts at the second page of the file, after the header */
  if (lseek(pd->fd, (off_t)IMG_PAGE, SEEK_SET) != (off_t)IMG_PAGE) {
    rc = cryo_fail_errno("seek in %s", pd->tmp);
    goto out;
  }
  d.w.off = IMG_PAGE;
  uint64_t data_start = IMG_PAGE;
  d.data_pos = IMG_PAGE;
  /* page data bypasses the page cache when the file system allows it */
  int fl = fcntl(pd->fd, F_GETFL);
  bool direct = fl >= 0 && fcntl(pd->fd, F_SETFL, fl | O_DIRECT) == 0;
  d.w.direct_fl = direct ? fl : -1;
  d.wt_on = pthread_create(&d.wt, NULL, writer_main, &d) == 0;
  for (int i = 0; i < nvmas && !rc; i++) rc = dump_mapping(&d, &vmas[i], &maps);
  int wrc = writer_drain(&d);
  writer_stop(&d);
  img_timing("dump: memory");
  if (getenv("CRYO_TIMING"))
    fprintf(stderr, "cryo timing:   (read %.2f, scan and checksum %.2f, wait for the writer %.2f; writer: write %.2f ms)\n",
            (double)d.t_read / 1e6, (double)d.t_scan / 1e6, (double)d.t_wait / 1e6,
            (double)d.t_write / 1e6);
  if (!rc) rc = wrc;
  if (rc) goto out;
  uint64_t data_end = wr_pos(&d.w);
  if (d.w.direct_fl >= 0) fcntl(pd->fd, F_SETFL, fl);
  d.w.direct_fl = -1;
  if (vdso_unpatched) {
    record_repatch(s, pid);
    vdso_unpatched = false;
  }

  /* --- field bundles: embedded checkpoint images (page-aligned), their list, the log --- */
  if (a->o && a->o->nhistory) {
    rc = put_history(&d.w, a->o, &hist);
    if (rc) goto out;
  }
  if (a->o && a->o->with_log) {
    rc = record_encode_log(s, a->o->log_from, &logb);
    if (rc) goto out;
  }

  /* --- metadata, table of contents, header --- */
  struct section secs[8];
  int nsec = 6;
  secs[0] = (struct section){SEC_PAGES, data_start, data_end - data_start, d.w.data_crc};
  if ((rc = put_section(&d.w, &secs[1], SEC_PROCESS, &proc))) goto out;
  if ((rc = put_section(&d.w, &secs[2], SEC_THREADS, &thr))) goto out;
  if ((rc = put_section(&d.w, &secs[3], SEC_MAPPINGS, &maps))) goto out;
  if ((rc = put_section(&d.w, &secs[4], SEC_FILES, &files))) goto out;
  if ((rc = put_section(&d.w, &secs[5], SEC_SIGNALS, &sigs))) goto out;
  if (a->o && a->o->nhistory && (rc = put_section(&d.w, &secs[nsec++], SEC_HISTORY, &hist))) goto out;
  if (a->o && a->o->with_log && (rc = put_section(&d.w, &secs[nsec++], SEC_LOG, &logb))) goto out;
  uint8_t toc[8 * IMG_TOC_ENTRY_SIZE];
  memset(toc, 0, sizeof toc);
  size_t toc_len = (size_t)nsec * IMG_TOC_ENTRY_SIZE;
  for (int i = 0; i < nsec; i++) {
    uint8_t *e = toc + i * IMG_TOC_ENTRY_SIZE;
    memcpy(e, &secs[i].type, 4);
    memcpy(e + 8, &secs[i].off, 8);
    memcpy(e + 16, &secs[i].len, 8);
    memcpy(e + 24, &secs[i].crc, 4);
  }
  uint64_t toc_off = wr_pos(&d.w);
  if ((rc = wr_put(&d.w, toc, toc_len, false))) goto out;
  if ((rc = wr_flush(&d.w))) goto out;
  uint8_t h[IMG_HEADER_SIZE];
  memset(h, 0, sizeof h);
  memcpy(h, IMG_MAGIC, 8);
  uint32_t v32 = IMG_VERSION;
  memcpy(h + 8, &v32, 4);
  v32 = IMG_HEADER_SIZE;
  memcpy(h + 12, &v32, 4);
  v32 = EM_X86_64;
  memcpy(h + 16, &v32, 4);
  v32 = IMG_PAGE;
  memcpy(h + 20, &v32, 4);
  uint64_t fsize = d.w.off;
  memcpy(h + 24, &fsize, 8);
  memcpy(h + 32, &toc_off, 8);
  v32 = (uint32_t)nsec;
  memcpy(h + 40, &v32, 4);
  v32 = img_crc32c(0, toc, toc_len);
  memcpy(h + 44, &v32, 4);
  v32 = img_crc32c(0, h, 60);
  memcpy(h + 60, &v32, 4);
  if (pwrite(pd->fd, h, sizeof h, 0) != (ssize_t)sizeof h) {
    rc = errno == ENOSPC ? cryo_fail(CRYO_EFAIL, "writing %s: no space left on the device; no image written", a->path)
                         : cryo_fail_errno("writing the header of %s", a->path);
    goto out;
  }
  pd->size = fsize;
  a->st->file_size = fsize;
  img_timing("dump: metadata, header");
out:
  if (vdso_unpatched) record_repatch(s, pid);
  img_buf_free(&hist);
  img_buf_free(&logb);
  if (!tg) free(tids);
  if (d.pmfd >= 0) close(d.pmfd);
  free(d.w.buf);
  writer_stop(&d);
  for (int k = 0; k < NBUF; k++) free(d.bufs[k]);
  pthread_mutex_destroy(&d.m);
  pthread_cond_destroy(&d.cv);
  free(d.pm);
  free(vmas);
  img_buf_free(&proc);
  img_buf_free(&thr);
  img_buf_free(&maps);
  img_buf_free(&files);
  img_buf_free(&sigs);
  return rc;
}

/* Creates the temporary file beside path (mode 0600) that cryo_image_commit renames
 * over it; cryo_image_abort removes it. */
int img_pending_create(const char *path, const char *what, struct img_pending **out) {
  *out = NULL;
  if (strlen(path) >= PATH_MAX - 32) return cryo_fail(CRYO_EINVAL, "%s: file name too long", path);
  struct img_pending *pd = calloc(1, sizeof *pd);
  if (!pd) return cryo_fail(CRYO_EFAIL, "out of memory");
  pd->what = what;
  snprintf(pd->path, sizeof pd->path, "%s", path);
  const char *slash = strrchr(path, '/');
  int dirlen = slash ? (int)(slash - path) + 1 : 0;
  static unsigned seq;
  unsigned n = __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED);
  snprintf(pd->tmp, sizeof pd->tmp, "%.*s.%s.tmp%d.%u", dirlen, path, slash ? slash + 1 : path, getpid(), n);
  pd->fd = open(pd->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (pd->fd < 0) {
    int rc = cryo_fail_errno("create %s (the temporary file for the %s %s)", pd->tmp, what, path);
    free(pd);
    return rc;
  }
  fchmod(pd->fd, 0600);
  *out = pd;
  return CRYO_OK;
}

int img_pending_fd(const struct img_pending *pd) { return pd->fd; }

static int dump_begin(cryo_session *s, const struct img_target *tg, bool on_tracer, const char *path,
                      const struct img_dump_opts *o, struct img_dump_stats *st, struct img_pending **out) {
  if (!s || !path || !out) return cryo_fail(CRYO_EINVAL, "cryo_image_dump: null argument");
  *out = NULL;
  struct img_dump_stats local;
  if (!st) st = &local;
  memset(st, 0, sizeof *st);
  uint64_t t0 = now_ns(CLOCK_MONOTONIC);
  struct img_pending *pd;
  int prc = img_pending_create(path, "image", &pd);
  if (prc != CRYO_OK) return prc;
  struct dump_args a = {path, o, st, pd, tg};
  int rc = on_tracer ? do_dump(s, &a) : run_on_tracer(s, do_dump, &a);
  st->frozen_ns = now_ns(CLOCK_MONOTONIC) - t0;
  if (rc != CRYO_OK) {
    close(pd->fd);
    unlink(pd->tmp);
    free(pd);
    return rc;
  }
  *out = pd;
  return CRYO_OK;
}

/* Writes the image into a temporary file next to path; nothing is visible under path
 * until cryo_image_commit. On failure the temporary file is gone. */
CRYO_API int cryo_image_dump_begin(cryo_session *s, const char *path, const struct img_dump_opts *o,
                                   struct img_dump_stats *st, struct img_pending **out) {
  return dump_begin(s, NULL, false, path, o, st, out);
}

/* For the engine's own code already on the tracer thread: the image of any stopped,
 * traced process (a frozen checkpoint copy), made durable before it returns. */
int image_dump_target(struct cryo_session *s, const struct img_target *t, const char *path,
                      const struct img_dump_opts *o, struct img_dump_stats *st) {
  struct img_pending *pd;
  int rc = dump_begin(s, t, true, path, o, st, &pd);
  if (rc) return rc;
  return cryo_image_commit(pd);
}

/* fsync, rename over path, fsync the directory. Frees pd whatever happens. */
CRYO_API int cryo_image_commit(struct img_pending *pd) {
  int rc = CRYO_OK;
  img_timing(NULL);
  if (fsync(pd->fd) != 0) {
    rc = errno == ENOSPC || errno == EDQUOT
             ? cryo_fail(CRYO_EFAIL, "writing %s: no space left on the device; no %s written", pd->path, pd->what)
             : cryo_fail_errno("fsync %s", pd->tmp);
  }
  img_timing("commit: fsync");
  if (close(pd->fd) != 0 && rc == CRYO_OK) rc = cryo_fail_errno("close %s", pd->tmp);
  if (rc == CRYO_OK && rename(pd->tmp, pd->path) != 0) rc = cryo_fail_errno("rename %s to %s", pd->tmp, pd->path);
  if (rc != CRYO_OK) {
    unlink(pd->tmp);
  } else {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", pd->path);
    char *sl = strrchr(dir, '/');
    if (sl) *(sl == dir ? sl + 1 : sl) = 0;
    else snprintf(dir, sizeof dir, ".");
    img_timing("commit: close, rename");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  img_timing("commit: fsync the directory");
  free(pd);
  return rc;
}

CRYO_API void cryo_image_abort(struct img_pending *pd) {
  if (!pd) return;
  close(pd->fd);
  unlink(pd->tmp);
  free(pd);
}

CRYO_API int cryo_image_dump(cryo_session *s, const char *path, const struct img_dump_opts *o,
                             struct img_dump_stats *st) {
  struct img_pending *pd;
  int rc = cryo_image_dump_begin(s, path, o, st, &pd);
  if (rc) return rc;
  uint64_t t0 = now_ns(CLOCK_MONOTONIC);
  rc = cryo_image_commit(pd);
  if (st) st->total_ns = st->frozen_ns + (now_ns(CLOCK_MONOTONIC) - t0);
  return rc;
}
