/* The image format: checksum, TLV encoding, ELF build-ids, and the reader, which
 * validates every byte it will rely on before anyone sees the image. The layout is
 * specified in docs/image-format.md. */
#include "image.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------- CRC32C (Castagnoli, reflected polynomial 0x82F63B78) ---------- */

static uint32_t crc_table[8][256];
static int crc_hw = -1;

/* Three-way interleaved hardware CRC: streams over blocks A, B, C (BLK bytes each)
 * are joined as shift(a, 2*BLK) ^ shift(b, BLK) ^ c, where shift(x, n) is what n zero
 * bytes do to the register x: a linear map, tabulated per byte of x. */
#define CRC_BLK 4096
static uint32_t crc_shift1[4][256], crc_shift2[4][256];

static uint32_t mat_times(const uint32_t m[32], uint32_t v) {
  uint32_t r = 0;
  for (int i = 0; v; i++, v >>= 1)
    if (v & 1) r ^= m[i];
  return r;
}

static void mat_square(uint32_t out[32], const uint32_t m[32]) {
  for (int i = 0; i < 32; i++) out[i] = mat_times(m, m[i]);
}

static void shift_tables(uint32_t t[4][256], const uint32_t m[32]) {
  for (int k = 0; k < 4; k++)
    for (uint32_t b = 0; b < 256; b++) t[k][b] = mat_times(m, b << (8 * k));
}

static uint32_t crc_shift(uint32_t t[4][256], uint32_t x) {
  return t[0][x & 0xff] ^ t[1][(x >> 8) & 0xff] ^ t[2][(x >> 16) & 0xff] ^ t[3][x >> 24];
}

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    crc_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++) crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
  /* one zero byte as a matrix, then squared up to CRC_BLK and 2*CRC_BLK bytes */
  uint32_t m[32], sq[32];
  for (int i = 0; i < 32; i++) {
    uint32_t v = 1u << i;
    m[i] = (v >> 8) ^ crc_table[0][v & 0xff];
  }
  for (uint32_t n = 1; n < CRC_BLK; n *= 2) {
    mat_square(sq, m);
    memcpy(m, sq, sizeof m);
  }
  shift_tables(crc_shift1, m);
  mat_square(sq, m);
  shift_tables(crc_shift2, sq);
  /* CRYO_CRC_SOFT=1 forces the table (tests check both give the same values) */
  const char *soft = getenv("CRYO_CRC_SOFT");
  crc_hw = __builtin_cpu_supports("sse4.2") && !(soft && *soft == '1') ? 1 : 0;
}

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const uint8_t *p, size_t n) {
  uint64_t c64 = c;
  while (n && ((uintptr_t)p & 7)) {
    c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
    n--;
  }
  /* three independent streams hide the instruction's latency on long buffers */
  while (n >= 3 * CRC_BLK) {
    uint64_t c0 = c64, c1 = 0, c2 = 0;
    for (size_t i = 0; i < CRC_BLK; i += 8) {
      uint64_t a, b, d;
      memcpy(&a, p + i, 8);
      memcpy(&b, p + CRC_BLK + i, 8);
      memcpy(&d, p + 2 * CRC_BLK + i, 8);
      c0 = __builtin_ia32_crc32di(c0, a);
      c1 = __builtin_ia32_crc32di(c1, b);
      c2 = __builtin_ia32_crc32di(c2, d);
    }
    c64 = crc_shift(crc_shift2, (uint32_t)c0) ^ crc_shift(crc_shift1, (uint32_t)c1) ^ (uint32_t)c2;
    p += 3 * CRC_BLK;
    n -= 3 * CRC_BLK;
  }
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c64 = __builtin_ia32_crc32di(c64, v);
    p += 8;
    n -= 8;
  }
  while (n--) c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
  return (uint32_t)c64;
}

static uint32_t crc_soft(uint32_t c, const uint8_t *p, size_t n) {
  while (n >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
        crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
        crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
  return c;
}

/* crc is the value returned by a previous call (0 to start). */
uint32_t img_crc32c(uint32_t crc, const void *buf, size_t len) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, crc_init);
  uint32_t c = ~crc;
  c = crc_hw ? crc_sse42(c, buf, len) : crc_soft(c, buf, len);
  return ~c;
}

void img_timing(const char *what) {
  static int on = -1;
  static struct timespec last;
  if (on < 0) on = getenv("CRYO_TIMING") && strcmp(getenv("CRYO_TIMING"), "0");
  if (!on) return;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (what && (last.tv_sec || last.tv_nsec))
    fprintf(stderr, "cryo timing: %8.2f ms  %s\n",
            (double)(now.tv_sec - last.tv_sec) * 1e3 + (double)(now.tv_nsec - last.tv_nsec) / 1e6, what);
  last = now;
}

/* ---------- buffer and TLV writer ---------- */

void img_buf_put(struct img_buf *b, const void *p, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    uint8_t *q = realloc(b->p, cap);
    if (!q) {
      b->oom = true;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}

void img_buf_free(struct img_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static void pad8(struct img_buf *b) {
  static const uint8_t z[8];
  if (b->len & 7) img_buf_put(b, z, 8 - (b->len & 7));
}

static void tlv_head(struct img_buf *b, uint16_t tag, uint8_t kind, uint32_t len) {
  uint8_t h[8];
  h[0] = (uint8_t)tag;
  h[1] = (uint8_t)(tag >> 8);
  h[2] = kind;
  h[3] = 0;
  memcpy(h + 4, &len, 4);
  img_buf_put(b, h, 8);
}

void img_tlv_u64(struct img_buf *b, uint16_t tag, uint64_t v) {
  tlv_head(b, tag, K_U64, 8);
  img_buf_put(b, &v, 8);
}

void img_tlv_bytes(struct img_buf *b, uint16_t tag, const void *p, size_t n) {
  tlv_head(b, tag, K_BYTES, (uint32_t)n);
  img_buf_put(b, p, n);
  pad8(b);
}

void img_tlv_str(struct img_buf *b, uint16_t tag, const char *s) {
  size_t n = s ? strlen(s) : 0;
  tlv_head(b, tag, K_STR, (uint32_t)n);
  img_buf_put(b, s, n);
  pad8(b);
}

size_t img_tlv_begin(struct img_buf *b, uint16_t tag) {
  size_t at = b->len;
  tlv_head(b, tag, K_LIST, 0);
  return at;
}

void img_tlv_end(struct img_buf *b, size_t at) {
  if (b->oom) return;
  uint32_t len = (uint32_t)(b->len - at - 8);
  memcpy(b->p + at + 4, &len, 4);
}

/* ---------- ELF build-id ---------- */

int img_build_id_fd(int fd, uint8_t *out, uint32_t cap, uint32_t *len) {
  *len = 0;
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh) return -1;
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64) return -1;
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256) return -1;
  Elf64_Phdr ph[256];
  size_t phsz = (size_t)eh.e_phnum * sizeof(Elf64_Phdr);
  if (pread(fd, ph, phsz, (off_t)eh.e_phoff) != (ssize_t)phsz) return -1;
  for (int i = 0; i < eh.e_phnum; i++) {
    if (ph[i].p_type != PT_NOTE || ph[i].p_filesz == 0 || ph[i].p_filesz > 65536) continue;
    uint8_t notes[65536];
    size_t n = (size_t)ph[i].p_filesz;
    if (pread(fd, notes, n, (off_t)ph[i].p_offset) != (ssize_t)n) continue;
    size_t off = 0;
    while (off + 12 <= n) {
      uint32_t namesz, descsz, type;
      memcpy(&namesz, notes + off, 4);
      memcpy(&descsz, notes + off + 4, 4);
      memcpy(&type, notes + off + 8, 4);
      size_t name_al = ((size_t)namesz + 3) & ~(size_t)3, desc_al = ((size_t)descsz + 3) & ~(size_t)3;
      if (namesz > n || descsz > n || off + 12 + name_al + desc_al > n) break;
      if (type == NT_GNU_BUILD_ID && namesz == 4 && !memcmp(notes + off + 12, "GNU", 4) && descsz <= cap) {
        memcpy(out, notes + off + 12 + name_al, descsz);
        *len = descsz;
        return 0;
      }
      off += 12 + name_al + desc_al;
    }
  }
  return -1;
}

int img_build_id_path(const char *path, uint8_t *out, uint32_t cap, uint32_t *len) {
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = img_build_id_fd(fd, out, cap, len);
  close(fd);
  return r;
}

/* ---------- reader ---------- */

static uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

struct tlv {
  uint16_t tag;
  uint8_t kind;
  uint32_t len;
  const uint8_t *val;
};

/* Next item in [*p, end); 1: an item, 0: end, -1: malformed (message set). */
static int tlv_next(const uint8_t **p, const uint8_t *end, struct tlv *t, const char *file, const char *where) {
  if (*p == end) return 0;
  size_t left = (size_t)(end - *p);
  if (left < 8) return cryo_fail(CRYO_EINVAL, "%s: corrupt image: %s: %zu stray bytes at the end", file, where, left), -1;
  t->tag = (uint16_t)((*p)[0] | ((*p)[1] << 8));
  t->kind = (*p)[2];
  t->len = rd32(*p + 4);
  if ((*p)[3] != 0 || t->kind < K_U64 || t->kind > K_LIST)
    return cryo_fail(CRYO_EINVAL, "%s: corrupt image: %s: item with tag %u has unknown kind %u", file, where, t->tag,
                     t->kind),
           -1;
  if ((uint64_t)t->len > left - 8)
    return cryo_fail(CRYO_EINVAL, "%s: corrupt image: %s: item with tag %u claims %u bytes, only %zu remain", file,
                     where, t->tag, t->len, left - 8),
           -1;
  if (t->kind == K_U64 && t->len != 8)
    return cryo_fail(CRYO_EINVAL, "%s: corrupt image: %s: number with tag %u is %u bytes long", file, where, t->tag,
                     t->len),
           -1;
  t->val = *p + 8;
  size_t adv = 8 + (((size_t)t->len + 7) & ~(size_t)7);
  if (adv > left) adv = left; /* unpadded last item */
  *p += adv;
  return 1;
}

struct rctx {
  const char *file;
  const char *where;
  int rc;
};

static bool want(struct rctx *c, const struct tlv *t, uint8_t kind) {
  if (t->kind == kind) return true;
  c->rc = cryo_fail(CRYO_EINVAL, "%s: corrupt image: %s: field %u has kind %u, expected %u", c->file, c->where, t->tag,
                    t->kind, kind);
  return false;
}

static char *dupstr(struct rctx *c, const struct tlv *t) {
  if (!want(c, t, K_STR)) return NULL;
  char *s = malloc((size_t)t->len + 1);
  if (!s) {
    c->rc = cryo_fail(CRYO_EFAIL, "%s: out of memory", c->file);
    return NULL;
  }
  memcpy(s, t->val, t->len);
  s[t->len] = 0;
  return s;
}

static bool get_u64(struct rctx *c, const struct tlv *t, uint64_t *v) {
  if (!want(c, t, K_U64)) return false;
  *v = rd64(t->val);
  return true;
}

static bool get_fixed(struct rctx *c, const struct tlv *t, void *dst, size_t n) {
  if (!want(c, t, K_BYTES)) return false;
  if (t->len != n) {
    c->rc = cryo_fail(CRYO_EINVAL, "%s: corrupt image: %s: field %u is %u bytes, expected %zu", c->file, c->where,
                      t->tag, t->len, n);
    return false;
  }
  memcpy(dst, t->val, n);
  return true;
}

static bool get_blob(struct rctx *c, const struct tlv *t, const uint8_t **p, uint32_t *n, uint32_t max) {
  if (!want(c, t, K_BYTES)) return false;
  if (t->len > max) {
    c->rc = cryo_fail(CRYO_EINVAL, "%s: corrupt image: %s: field %u is %u bytes, at most %u allowed", c->file,
                      c->where, t->tag, t->len, max);
    return false;
  }
  *p = t->val;
  *n = t->len;
  return true;
}

static bool get_bid(struct rctx *c, const struct tlv *t, uint8_t *dst, uint32_t *n) {
  const uint8_t *p;
  if (!get_blob(c, t, &p, n, 64)) return false;
  memcpy(dst, p, *n);
  return true;
}

#define SET_STR(field) \
  do { free(field); field = dupstr(c, &t); ok = field != NULL; } while (0)

static int parse_process(struct cryo_image *img, struct rctx *c, const uint8_t *p, const uint8_t *end) {
  struct tlv t;
  int r;
  c->where = "process section";
  bool have_pid = false;
  while ((r = tlv_next(&p, end, &t, c->file, c->where)) == 1) {
    bool ok = true;
    switch (t.tag) {
      case PRC_PID: ok = get_u64(c, &t, &img->pid); have_pid = ok; break;
      case PRC_PPID: ok = get_u64(c, &t, &img->ppid); break;
      case PRC_COMM: SET_STR(img->comm); break;
      case PRC_EXE: SET_STR(img->exe); break;
      case PRC_CWD: SET_STR(img->cwd); break;
      case PRC_KERNEL: SET_STR(img->kernel); break;
      case PRC_MACHINE: SET_STR(img->machine); break;
      case PRC_HOSTNAME: SET_STR(img->hostname); break;
      case PRC_EXE_BUILD_ID: ok = get_bid(c, &t, img->exe_build_id, &img->exe_build_id_len); break;
      case PRC_CMDLINE: ok = get_blob(c, &t, &img->cmdline, &img->cmdline_len, 1u << 24); break;
      case PRC_ENVIRON: ok = get_blob(c, &t, &img->environ_, &img->environ_len, 1u << 24); break;
      case PRC_AUXV:
        ok = get_blob(c, &t, &img->auxv, &img->auxv_len, 4096);
        if (ok && img->auxv_len % 16) {
          c->rc = cryo_fail(CRYO_EINVAL, "%s: corrupt image: auxv is %u bytes, not a whole number of pairs", c->file,
                            img->auxv_len);
          ok = false;
        }
        break;
      case PRC_RLIMITS: ok = img->has_rlimits = get_fixed(c, &t, img->rlimits, sizeof img->rlimits); break;
      case PRC_PERSONALITY: ok = get_u64(c, &t, &img->personality); break;
      case PRC_MM: ok = img->has_mm = get_fixed(c, &t, img->mm, sizeof img->mm); break;
      case PRC_CREDS: ok = img->has_creds = get_fixed(c, &t, img->creds, sizeof img->creds); break;
      case PRC_XCR0: ok = get_u64(c, &t, &img->xcr0); break;
      case PRC_XSAVE_SIZE: ok = get_u64(c, &t, &img->xsave_size); break;
      case PRC_REASON: ok = get_u64(c, &t, &img->reason); break;
      case PRC_SIGINFO: ok = img->has_siginfo = get_fixed(c, &t, img->siginfo, sizeof img->siginfo); break;
      case PRC_CRASH_TID: ok = get_u64(c, &t, &img->crash_tid); break;
      case PRC_TIME_NS: ok = get_u64(c, &t, &img->time_ns); break;
      case PRC_SHARED_PENDING: ok = get_u64(c, &t, &img->shared_pending); break;
      case PRC_PAGE_SIZE: ok = get_u64(c, &t, &img->page_size); break;
      case PRC_GROUPS:
        ok = img->has_groups = get_blob(c, &t, &img->groups, &img->groups_len, 65536 * 4);
        if (ok && img->groups_len % 4) {
          c->rc = cryo_fail(CRYO_EINVAL, "%s: corrupt image: groups of %u bytes", c->file, img->groups_len);
          ok = false;
        }
        break;
      default: break; /* a field from a newer writer: skipped */
    }
    if (!ok) return c->rc ? c->rc : cryo_fail(CRYO_EINVAL, "%s: corrupt image: process section", c->file);
  }
  if (r < 0) return CRYO_EINVAL;
  if (!have_pid || !img->exe)
    return cryo_fail(CRYO_EINVAL, "%s: corrupt image: the process section has no %s", c->file, have_pid ? "exe" : "pid");
  if (img->reason != REASON_SNAPSHOT && img->reason != REASON_CRASH)
    return cryo_fail(CRYO_EINVAL, "%s: corrupt image: unknown reason %llu", c->file, (unsigned long long)img->reason);
  if (img->page_size != IMG_PAGE)
    return cryo_fail(CRYO_EINVAL, "%s: corrupt image: page size %llu (expected 4096)", c->file,
                     (unsigned long long)img->page_size);
  return CRYO_OK;
}

/* Counts the items with tag `tag` in a section, checking the TLV structure. */
static int count_items(struct rctx *c, const uint8_t *p, const uint8_t *end, uint16_t tag, uint32_t max, uint32_t *n) {
  struct tlv t;
  int r;
  *n = 0;
  while ((r = tlv_next(&p, end, &t, c->file, c->where)) == 1) {
    if (t.tag != tag) continue;
    if (t.kind != K_LIST)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: %s: an entry is not a list", c->file, c->where);
    if (++*n > max) return cryo_fail(CRYO_EINVAL, "%s: corrupt image: %s: more than %u entries", c->file, c->where, max);
  }
  return r < 0 ? CRYO_EINVAL : CRYO_OK;
}

static int parse_threads(struct cryo_image *img, struct rctx *c, const uint8_t *p, const uint8_t *end) {
  c->where = "threads section";
  uint32_t n;
  int rc = count_items(c, p, end, T_THREAD, 65536, &n);
  if (rc) return rc;
  if (n == 0) return cryo_fail(CRYO_EINVAL, "%s: corrupt image: no threads", c->file);
  img->threads = calloc(n, sizeof *img->threads);
  if (!img->threads) return cryo_fail(CRYO_EFAIL, "%s: out of memory", c->file);
  struct tlv t, u;
  int r;
  while ((r = tlv_next(&p, end, &t, c->file, c->where)) == 1) {
    if (t.tag != T_THREAD) continue;
    struct img_thread *th = &img->threads[img->nthreads++];
    const uint8_t *q = t.val, *qe = t.val + t.len;
    bool have_tid = false, have_regs = false;
    c->where = "thread entry";
    while ((r = tlv_next(&q, qe, &u, c->file, c->where)) == 1) {
      bool ok = true;
      uint64_t v = 0;
      switch (u.tag) {
        case TH_TID: ok = get_u64(c, &u, &v); th->tid = (uint32_t)v; have_tid = ok; break;
        case TH_REGS: ok = have_regs = get_fixed(c, &u, &th->regs, sizeof th->regs); break;
        case TH_XSAVE: ok = get_blob(c, &u, &th->xsave, &th->xsave_len, XSTATE_MAX); break;
        case TH_FS_BASE: ok = get_u64(c, &u, &th->fs_base); break;
        case TH_GS_BASE: ok = get_u64(c, &u, &th->gs_base); break;
        case TH_SIGMASK: ok = get_u64(c, &u, &th->sigmask); break;
        case TH_PENDING: ok = get_u64(c, &u, &th->pending); break;
        case TH_RSEQ: {
          uint8_t b[16];
          ok = th->has_rseq = get_fixed(c, &u, b, 16);
          if (ok) {
            th->rseq_addr = rd64(b);
            th->rseq_len = rd32(b + 8);
            th->rseq_sig = rd32(b + 12);
          }
          break;
        }
        case TH_CLEAR_TID: ok = th->has_clear_tid = get_u64(c, &u, &th->clear_tid); break;
        case TH_ROBUST: {
          uint8_t b[16];
          ok = th->has_robust = get_fixed(c, &u, b, 16);
          if (ok) {
            th->robust_head = rd64(b);
            th->robust_len = rd64(b + 8);
          }
          break;
        }
        default: break;
      }
      if (!ok) return c->rc;
    }
    if (r < 0) return CRYO_EINVAL;
    if (!have_tid || !have_regs)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: a thread has no %s", c->file, have_tid ? "registers" : "tid");
    if (th->xsave && th->xsave_len < 576)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: thread %u: xsave area of %u bytes (at least 576)", c->file,
                       th->tid, th->xsave_len);
    for (uint32_t k = 0; k + 1 < img->nthreads; k++)
      if (img->threads[k].tid == th->tid)
        return cryo_fail(CRYO_EINVAL, "%s: corrupt image: thread %u appears twice", c->file, th->tid);
    c->where = "threads section";
  }
  return r < 0 ? CRYO_EINVAL : CRYO_OK;
}

static int parse_mappings(struct cryo_image *img, struct rctx *c, const uint8_t *p, const uint8_t *end) {
  c->where = "mappings section";
  uint32_t n;
  int rc = count_items(c, p, end, M_MAPPING, 1u << 20, &n);
  if (rc) return rc;
  img->maps = calloc(n ? n : 1, sizeof *img->maps);
  if (!img->maps) return cryo_fail(CRYO_EFAIL, "%s: out of memory", c->file);
  struct tlv t, u;
  int r;
  while ((r = tlv_next(&p, end, &t, c->file, c->where)) == 1) {
    if (t.tag != M_MAPPING) continue;
    struct img_mapping *m = &img->maps[img->nmaps++];
    const uint8_t *q = t.val, *qe = t.val + t.len;
    const uint8_t *runs = NULL;
    uint32_t runs_len = 0;
    bool have_start = false, have_end = false, have_runs = false;
    c->where = "mapping entry";
    while ((r = tlv_next(&q, qe, &u, c->file, c->where)) == 1) {
      bool ok = true;
      switch (u.tag) {
        case MP_START: ok = have_start = get_u64(c, &u, &m->start); break;
        case MP_END: ok = have_end = get_u64(c, &u, &m->end); break;
        case MP_PROT: ok = get_u64(c, &u, &m->prot); break;
        case MP_FLAGS: ok = get_u64(c, &u, &m->flags); break;
        case MP_OFFSET: ok = get_u64(c, &u, &m->offset); break;
        case MP_PATH: free(m->path); m->path = dupstr(c, &u); ok = m->path != NULL; break;
        case MP_DEV: ok = get_u64(c, &u, &m->dev); break;
        case MP_INODE: ok = get_u64(c, &u, &m->inode); break;
        case MP_FILE_SIZE: ok = get_u64(c, &u, &m->file_size); break;
        case MP_FILE_MTIME: ok = get_u64(c, &u, &m->mtime_ns); break;
        case MP_BUILD_ID: ok = get_bid(c, &u, m->build_id, &m->build_id_len); break;
        case MP_KIND: ok = get_u64(c, &u, &m->kind); break;
        case MP_RUNS: ok = have_runs = get_blob(c, &u, &runs, &runs_len, UINT32_MAX); break;
        default: break;
      }
      if (!ok) return c->rc;
    }
    if (r < 0) return CRYO_EINVAL;
    if (!have_start || !have_end || !have_runs)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: mapping %u lacks its %s", c->file, img->nmaps - 1,
                       !have_start ? "start" : !have_end ? "end" : "page runs");
    if (m->start >= m->end || (m->start | m->end) & (IMG_PAGE - 1) ||
        (m->end > 0x800000000000ull && m->kind != MK_VSYSCALL))
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: mapping %u has an impossible range 0x%llx-0x%llx", c->file,
                       img->nmaps - 1, (unsigned long long)m->start, (unsigned long long)m->end);
    if (img->nmaps > 1 && m->start < img->maps[img->nmaps - 2].end)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: mapping 0x%llx-0x%llx overlaps or precedes the one before it",
                       c->file, (unsigned long long)m->start, (unsigned long long)m->end);
    if (m->kind < 1 || m->kind > MK_MAX)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: mapping 0x%llx has unknown kind %llu", c->file,
                       (unsigned long long)m->start, (unsigned long long)m->kind);
    if (m->prot & ~7ull)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: mapping 0x%llx has protection bits 0x%llx", c->file,
                       (unsigned long long)m->start, (unsigned long long)m->prot);
    if (!m->path) {
      m->path = strdup("");
      if (!m->path) return cryo_fail(CRYO_EFAIL, "out of memory");
    }
    if (runs_len % 16)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: mapping 0x%llx: page runs of %u bytes", c->file,
                       (unsigned long long)m->start, runs_len);
    m->nruns = runs_len / 16;
    uint64_t npages = (m->end - m->start) / IMG_PAGE, seen = 0;
    if (m->nruns > npages)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: mapping 0x%llx: %u runs for %llu pages", c->file,
                       (unsigned long long)m->start, m->nruns, (unsigned long long)npages);
    m->runs = calloc(m->nruns ? m->nruns : 1, sizeof *m->runs);
    if (!m->runs) return cryo_fail(CRYO_EFAIL, "out of memory");
    for (uint32_t i = 0; i < m->nruns; i++) {
      struct img_run *ru = &m->runs[i];
      ru->kind = rd32(runs + 16 * i);
      ru->npages = rd32(runs + 16 * i + 4);
      ru->off = rd64(runs + 16 * i + 8);
      if (ru->kind < 1 || ru->kind > PK_MAX || ru->npages == 0)
        return cryo_fail(CRYO_EINVAL, "%s: corrupt image: mapping 0x%llx: run %u has kind %u and %u pages", c->file,
                         (unsigned long long)m->start, i, ru->kind, ru->npages);
      if (ru->kind == PK_DATA) {
        uint64_t bytes = (uint64_t)ru->npages * IMG_PAGE;
        if (ru->off & (IMG_PAGE - 1) || ru->off < img->data_off || ru->off > img->data_off + img->data_len ||
            bytes > img->data_off + img->data_len - ru->off)
          return cryo_fail(CRYO_EINVAL,
                           "%s: corrupt image: mapping 0x%llx: data run %u (offset 0x%llx, %u pages) lies outside the "
                           "page data",
                           c->file, (unsigned long long)m->start, i, (unsigned long long)ru->off, ru->npages);
      } else if (ru->off != 0) {
        return cryo_fail(CRYO_EINVAL, "%s: corrupt image: mapping 0x%llx: run %u has no data but an offset", c->file,
                         (unsigned long long)m->start, i);
      }
      seen += ru->npages;
      m->pages[ru->kind] += ru->npages;
    }
    if (seen != npages)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: mapping 0x%llx-0x%llx: runs cover %llu pages, it has %llu",
                       c->file, (unsigned long long)m->start, (unsigned long long)m->end, (unsigned long long)seen,
                       (unsigned long long)npages);
    c->where = "mappings section";
  }
  return r < 0 ? CRYO_EINVAL : CRYO_OK;
}

static int parse_files(struct cryo_image *img, struct rctx *c, const uint8_t *p, const uint8_t *end) {
  c->where = "files section";
  uint32_t n;
  int rc = count_items(c, p, end, F_FILE, 1u << 20, &n);
  if (rc) return rc;
  img->files = calloc(n ? n : 1, sizeof *img->files);
  if (!img->files) return cryo_fail(CRYO_EFAIL, "out of memory");
  struct tlv t, u;
  int r;
  while ((r = tlv_next(&p, end, &t, c->file, c->where)) == 1) {
    if (t.tag != F_FILE) continue;
    struct img_file *f = &img->files[img->nfiles++];
    const uint8_t *q = t.val, *qe = t.val + t.len;
    bool have_fd = false;
    c->where = "file entry";
    while ((r = tlv_next(&q, qe, &u, c->file, c->where)) == 1) {
      bool ok = true;
      uint64_t v = 0;
      switch (u.tag) {
        case FL_NUM: ok = have_fd = get_u64(c, &u, &v); f->fd = (int32_t)v;
          if (ok && v > 0x7fffffff) {
            c->rc = cryo_fail(CRYO_EINVAL, "%s: corrupt image: descriptor number %llu", c->file, (unsigned long long)v);
            ok = false;
          }
          break;
        case FL_FLAGS: ok = get_u64(c, &u, &f->flags); break;
        case FL_TYPE: ok = get_u64(c, &u, &f->type); break;
        case FL_PATH: free(f->path); f->path = dupstr(c, &u); ok = f->path != NULL; break;
        case FL_POS: ok = get_u64(c, &u, &f->pos); break;
        case FL_SIZE: ok = get_u64(c, &u, &f->size); break;
        case FL_MTIME: ok = get_u64(c, &u, &f->mtime_ns); break;
        case FL_DEV: ok = get_u64(c, &u, &f->dev); break;
        case FL_INODE: ok = get_u64(c, &u, &f->inode); break;
        default: break;
      }
      if (!ok) return c->rc;
    }
    if (r < 0) return CRYO_EINVAL;
    if (!have_fd) return cryo_fail(CRYO_EINVAL, "%s: corrupt image: a file entry has no descriptor number", c->file);
    if (!f->path) {
      f->path = strdup("");
      if (!f->path) return cryo_fail(CRYO_EFAIL, "out of memory");
    }
    c->where = "files section";
  }
  return r < 0 ? CRYO_EINVAL : CRYO_OK;
}

static int parse_signals(struct cryo_image *img, struct rctx *c, const uint8_t *p, const uint8_t *end) {
  c->where = "signals section";
  uint32_t n;
  int rc = count_items(c, p, end, S_ACTION, 64, &n);
  if (rc) return rc;
  img->sigs = calloc(n ? n : 1, sizeof *img->sigs);
  if (!img->sigs) return cryo_fail(CRYO_EFAIL, "out of memory");
  struct tlv t, u;
  int r;
  while ((r = tlv_next(&p, end, &t, c->file, c->where)) == 1) {
    if (t.tag != S_ACTION) continue;
    struct img_sigaction *a = &img->sigs[img->nsigs++];
    const uint8_t *q = t.val, *qe = t.val + t.len;
    c->where = "signal action";
    while ((r = tlv_next(&q, qe, &u, c->file, c->where)) == 1) {
      bool ok = true;
      uint64_t v = 0;
      switch (u.tag) {
        case SG_SIGNO: ok = get_u64(c, &u, &v); a->signo = (uint32_t)(v > 64 ? 0 : v); break;
        case SG_HANDLER: ok = get_u64(c, &u, &a->handler); break;
        case SG_FLAGS: ok = get_u64(c, &u, &a->flags); break;
        case SG_RESTORER: ok = get_u64(c, &u, &a->restorer); break;
        case SG_MASK: ok = get_u64(c, &u, &a->mask); break;
        default: break;
      }
      if (!ok) return c->rc;
    }
    if (r < 0) return CRYO_EINVAL;
    if (a->signo < 1 || a->signo > 64)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: a signal action without a valid signal number", c->file);
    c->where = "signals section";
  }
  return r < 0 ? CRYO_EINVAL : CRYO_OK;
}

void cryo_image_close(struct cryo_image *img) {
  if (!img) return;
  free(img->comm);
  free(img->exe);
  free(img->cwd);
  free(img->kernel);
  free(img->machine);
  free(img->hostname);
  free(img->threads);
  for (uint32_t i = 0; i < img->nmaps; i++) {
    free(img->maps[i].path);
    free(img->maps[i].runs);
  }
  free(img->maps);
  for (uint32_t i = 0; i < img->nfiles; i++) free(img->files[i].path);
  free(img->files);
  free(img->sigs);
  free(img->history);
  free(img->name);
  if (img->map && img->map != MAP_FAILED) munmap((void *)img->map, img->size);
  if (img->fd >= 0) close(img->fd);
  free(img->path);
  free(img);
}

/* ---------- record log (LOG section) ---------- */

int img_log_parse(const uint8_t *p, size_t len, struct img_log *out, const char *file) {
  memset(out, 0, sizeof *out);
  const uint8_t *end = p + len;
  struct tlv t;
  int r;
  bool have_count = false, have_entries = false, have_data = false;
  uint64_t entries_len = 0;
  while ((r = tlv_next(&p, end, &t, file, "log section")) == 1) {
    uint8_t kind = t.tag == LG_BASE || t.tag == LG_COUNT ? K_U64 : t.tag == LG_ENTRIES || t.tag == LG_DATA ? K_BYTES : t.kind;
    if (t.kind != kind)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: log section: field %u has kind %u, expected %u", file, t.tag,
                       t.kind, kind);
    switch (t.tag) {
      case LG_BASE: out->base = rd64(t.val); break;
      case LG_COUNT: out->count = rd64(t.val); have_count = true; break;
      case LG_ENTRIES: out->entries = t.val; entries_len = t.len; have_entries = true; break;
      case LG_DATA: out->data = t.val; out->data_len = t.len; have_data = true; break;
      default: break;
    }
  }
  if (r < 0) return CRYO_EINVAL;
  if (!have_count || !have_entries || !have_data)
    return cryo_fail(CRYO_EINVAL, "%s: corrupt image: log section lacks its %s", file,
                     !have_count ? "entry count" : !have_entries ? "entries" : "data");
  if (out->count > entries_len / IMG_LOG_ENTRY_SIZE || out->count * IMG_LOG_ENTRY_SIZE != entries_len)
    return cryo_fail(CRYO_EINVAL, "%s: corrupt image: log section: %llu entries in %llu bytes", file,
                     (unsigned long long)out->count, (unsigned long long)entries_len);
  for (uint64_t i = 0; i < out->count; i++) {
    const uint8_t *e = out->entries + i * IMG_LOG_ENTRY_SIZE;
    uint64_t off = rd64(e + 64), n = rd64(e + 72);
    if (off > out->data_len || n > out->data_len - off)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: log entry %llu: its data (%llu bytes at %llu) lies outside the log's %llu bytes",
                       file, (unsigned long long)i, (unsigned long long)n, (unsigned long long)off,
                       (unsigned long long)out->data_len);
    /* whole runs of (u64 address, u32 length, bytes) */
    for (uint64_t at = off; at < off + n;) {
      if (off + n - at < 12)
        return cryo_fail(CRYO_EINVAL, "%s: corrupt image: log entry %llu: a memory run cut short", file, (unsigned long long)i);
      uint32_t rl = rd32(out->data + at + 8);
      if (rl > off + n - at - 12)
        return cryo_fail(CRYO_EINVAL, "%s: corrupt image: log entry %llu: a memory run of %u bytes overruns its data", file,
                         (unsigned long long)i, rl);
      at += 12 + (uint64_t)rl;
    }
  }
  return CRYO_OK;
}

/* ---------- opening ---------- */

static const char *section_name(uint32_t type) {
  switch (type) {
    case SEC_PROCESS: return "process";
    case SEC_THREADS: return "threads";
    case SEC_MAPPINGS: return "mappings";
    case SEC_FILES: return "files";
    case SEC_SIGNALS: return "signals";
    case SEC_PAGES: return "pages";
    case SEC_HISTORY: return "history";
    case SEC_LOG: return "log";
    default: return "unknown";
  }
}

static int image_parse(struct cryo_image *img, const char *path, bool embedded, unsigned flags);

/* Checkpoint i of the history as an image of its own: its bytes mapped from the same file
 * (page-aligned, so no copy), with its own descriptor. */
static int open_embedded(struct cryo_image *img, uint32_t i, struct cryo_image **out) {
  *out = NULL;
  struct cryo_image *e = calloc(1, sizeof *e);
  if (!e) return cryo_fail(CRYO_EFAIL, "out of memory");
  char name[4200];
  snprintf(name, sizeof name, "%s (checkpoint %u)", img->name ? img->name : "image", i);
  e->name = strdup(name);
  e->fd = fcntl(img->fd, F_DUPFD_CLOEXEC, 0);
  if (e->fd < 0 || !e->name) {
    int rc = e->fd < 0 ? cryo_fail_errno("dup the descriptor of %s", name) : cryo_fail(CRYO_EFAIL, "out of memory");
    cryo_image_close(e);
    return rc;
  }
  e->size = (size_t)img->history[i].len;
  e->file_base = img->history[i].off; /* offsets inside it are relative to this, fd is the outer file */
  void *m = mmap(NULL, e->size, PROT_READ, MAP_PRIVATE, e->fd, (off_t)img->history[i].off);
  if (m == MAP_FAILED) {
    int rc = cryo_fail_errno("mmap %s", name);
    cryo_image_close(e);
    return rc;
  }
  e->map = m;
  int rc = image_parse(e, e->name, true, 0);
  if (rc) {
    cryo_image_close(e);
    return rc;
  }
  *out = e;
  return CRYO_OK;
}

struct range {
  uint64_t off, len;
};

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; }

/* HISTORY: the checkpoints, each a complete image inside this file, every one validated. */
static int parse_history(struct cryo_image *img, struct rctx *c, const uint8_t *p, const uint8_t *end,
                         const struct range *used, uint32_t nused) {
  c->where = "history section";
  uint32_t n;
  int rc = count_items(c, p, end, H_CHECKPOINT, IMG_MAX_HISTORY, &n);
  if (rc) return rc;
  img->history = calloc(n ? n : 1, sizeof *img->history);
  if (!img->history) return cryo_fail(CRYO_EFAIL, "%s: out of memory", c->file);
  struct tlv t, u;
  int r;
  while ((r = tlv_next(&p, end, &t, c->file, c->where)) == 1) {
    if (t.tag != H_CHECKPOINT) continue;
    if (t.kind != K_LIST) return cryo_fail(CRYO_EINVAL, "%s: corrupt image: history entry is not a list", c->file);
    uint32_t idx = img->nhistory;
    struct img_history *h = &img->history[img->nhistory++];
    const uint8_t *q = t.val, *qe = t.val + t.len;
    bool have_pos = false, have_off = false, have_len = false;
    c->where = "history entry";
    while ((r = tlv_next(&q, qe, &u, c->file, c->where)) == 1) {
      bool ok = true;
      switch (u.tag) {
        case HC_POSITION: ok = have_pos = get_u64(c, &u, &h->position); break;
        case HC_TIME_NS: ok = get_u64(c, &u, &h->time_ns); break;
        case HC_PC: ok = get_u64(c, &u, &h->pc); break;
        case HC_OFFSET: ok = have_off = get_u64(c, &u, &h->off); break;
        case HC_LENGTH: ok = have_len = get_u64(c, &u, &h->len); break;
        default: break;
      }
      if (!ok) return c->rc;
    }
    if (r < 0) return CRYO_EINVAL;
    if (!have_pos || !have_off || !have_len)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: history checkpoint %u lacks its %s", c->file, idx,
                       !have_pos ? "record position" : !have_off ? "offset" : "length");
    if (h->position > img->log.count)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: history checkpoint %u is at record position %llu, the log has %llu entries",
                       c->file, idx, (unsigned long long)h->position, (unsigned long long)img->log.count);
    if (h->off & (IMG_PAGE - 1) || h->off < IMG_PAGE || h->len < IMG_HEADER_SIZE || h->off > img->size ||
        h->len > img->size - h->off)
      return cryo_fail(CRYO_EINVAL,
                       "%s: corrupt image: history checkpoint %u: its image (%llu bytes at offset %llu) is not a page-aligned "
                       "part of the file",
                       c->file, idx, (unsigned long long)h->len, (unsigned long long)h->off);
    for (uint32_t k = 0; k < nused; k++)
      if (overlaps(h->off, h->len, used[k].off, used[k].len))
        return cryo_fail(CRYO_EINVAL, "%s: corrupt image: history checkpoint %u: its image overlaps the image's own sections",
                         c->file, idx);
    for (uint32_t k = 0; k < idx; k++)
      if (overlaps(h->off, h->len, img->history[k].off, img->history[k].len))
        return cryo_fail(CRYO_EINVAL, "%s: corrupt image: history checkpoints %u and %u overlap", c->file, k, idx);
    c->where = "history section";
  }
  if (r < 0) return CRYO_EINVAL;
  /* every embedded image is checked as thoroughly as this one */
  for (uint32_t i = 0; i < img->nhistory; i++) {
    struct cryo_image *e;
    rc = open_embedded(img, i, &e);
    if (rc) return rc;
    cryo_image_close(e);
  }
  return CRYO_OK;
}

CRYO_API int cryo_image_open(const char *path, struct cryo_image **out) {
  if (!path || !out) return cryo_fail(CRYO_EINVAL, "cryo_image_open: null argument");
  return img_open(path, 0, out);
}

bool img_pages_ok(struct cryo_image *img) {
  if (!img->pages_unverified) return true;
  /* read once, front to back: the kernel reads well ahead of the checksum (and of the
   * restored process reading the same pages) */
  uintptr_t a = (uintptr_t)(img->map + img->data_off) & ~(uintptr_t)(IMG_PAGE - 1);
  size_t n = (size_t)((uintptr_t)(img->map + img->data_off + img->data_len) - a);
  madvise((void *)a, n, MADV_SEQUENTIAL);
  bool ok = img_crc32c(0, img->map + img->data_off, (size_t)img->data_len) == img->pages_crc;
  madvise((void *)a, n, MADV_NORMAL);
  return ok;
}

int img_open(const char *path, unsigned flags, struct cryo_image **out) {
  *out = NULL;
  struct cryo_image *img = calloc(1, sizeof *img);
  if (!img) return cryo_fail(CRYO_EFAIL, "out of memory");
  img->name = strdup(path);
  img->path = strdup(path);
  img->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (img->fd < 0) {
    int rc = cryo_fail_errno("open %s", path);
    cryo_image_close(img);
    return rc == CRYO_ENOPROC ? CRYO_EFAIL : rc;
  }
  struct stat st;
  if (fstat(img->fd, &st) != 0) {
    int rc = cryo_fail_errno("stat %s", path);
    cryo_image_close(img);
    return rc;
  }
  int rc = CRYO_OK;
  if (!S_ISREG(st.st_mode)) {
    rc = cryo_fail(CRYO_EINVAL, "%s is not a regular file", path);
    goto fail;
  }
  img->size = (size_t)st.st_size;
  if (img->size < IMG_HEADER_SIZE) {
    rc = cryo_fail(CRYO_EINVAL, "%s: not a cryo image (%zu bytes, too short for the header)", path, img->size);
    goto fail;
  }
  img->map = mmap(NULL, img->size, PROT_READ, MAP_PRIVATE, img->fd, 0);
  if (img->map == MAP_FAILED) {
    img->map = NULL;
    rc = cryo_fail_errno("mmap %s", path);
    goto fail;
  }
  rc = image_parse(img, path, false, flags);
  if (rc) goto fail;
  *out = img;
  cryo_clear_error();
  return CRYO_OK;
fail:
  cryo_image_close(img);
  return rc;
}

/* Validates and reads the image at img->map (img->size bytes). */
static int image_parse(struct cryo_image *img, const char *path, bool embedded, unsigned flags) {
  int rc = CRYO_OK;
  const uint8_t *h = img->map;
  if (img->size < IMG_HEADER_SIZE) return cryo_fail(CRYO_EINVAL, "%s: not a cryo image (too short for the header)", path);
  if (memcmp(h, IMG_MAGIC, 8) != 0) return cryo_fail(CRYO_EINVAL, "%s: not a cryo image (bad magic)", path);
  img->version = rd32(h + 8);
  if (img->version != IMG_VERSION)
    return cryo_fail(CRYO_EINVAL, "%s: image format version %u; this cryo reads version %u", path, img->version,
                     IMG_VERSION);
  if (img_crc32c(0, h, 60) != rd32(h + 60)) return cryo_fail(CRYO_EINVAL, "%s: corrupt image: header checksum mismatch", path);
  if (rd32(h + 12) != IMG_HEADER_SIZE || rd32(h + 16) != EM_X86_64 || rd32(h + 20) != IMG_PAGE)
    return cryo_fail(CRYO_EINVAL, "%s: image for another machine (header size %u, ELF machine %u, page size %u)", path,
                     rd32(h + 12), rd32(h + 16), rd32(h + 20));
  uint64_t fsize = rd64(h + 24), toc_off = rd64(h + 32);
  uint32_t toc_n = rd32(h + 40), toc_crc = rd32(h + 44);
  if (fsize != img->size)
    return cryo_fail(CRYO_EINVAL, "%s: %s image: the header says %llu bytes, the file has %zu", path,
                     fsize > img->size ? "truncated" : "overlong", (unsigned long long)fsize, img->size);
  if (toc_n == 0 || toc_n > IMG_MAX_SECTIONS || toc_off < IMG_HEADER_SIZE || toc_off > img->size ||
      (uint64_t)toc_n * IMG_TOC_ENTRY_SIZE > img->size - toc_off)
    return cryo_fail(CRYO_EINVAL, "%s: corrupt image: table of contents (%u entries at %llu) outside the file", path,
                     toc_n, (unsigned long long)toc_off);
  const uint8_t *toc = img->map + toc_off;
  if (img_crc32c(0, toc, (size_t)toc_n * IMG_TOC_ENTRY_SIZE) != toc_crc)
    return cryo_fail(CRYO_EINVAL, "%s: corrupt image: table of contents checksum mismatch", path);
  const uint8_t *sec_p[SEC_MAX + 1] = {0};
  uint64_t sec_len[SEC_MAX + 1] = {0};
  /* what the header, the TOC and the sections occupy: embedded images must lie elsewhere */
  struct range used[IMG_MAX_SECTIONS + 2];
  uint32_t nused = 0;
  used[nused++] = (struct range){0, IMG_HEADER_SIZE};
  used[nused++] = (struct range){toc_off, (uint64_t)toc_n * IMG_TOC_ENTRY_SIZE};
  for (uint32_t i = 0; i < toc_n; i++) {
    const uint8_t *e = toc + (size_t)i * IMG_TOC_ENTRY_SIZE;
    uint32_t type = rd32(e);
    uint64_t off = rd64(e + 8), len = rd64(e + 16);
    uint32_t crc = rd32(e + 24);
    if (off > img->size || len > img->size - off)
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: %s section (%llu bytes at %llu) outside the file", path,
                       section_name(type), (unsigned long long)len, (unsigned long long)off);
    if (type == SEC_PAGES && (flags & IMG_OPEN_DEFER_PAGES)) {
      /* cryo restore checks the pages while it builds the process (image_restore.c) */
      img->pages_unverified = true;
      img->pages_crc = crc;
    } else if (img_crc32c(0, img->map + off, (size_t)len) != crc) {
      return cryo_fail(CRYO_EINVAL, "%s: corrupt image: %s section checksum mismatch", path, section_name(type));
    }
    used[nused++] = (struct range){off, len};
    if (type >= 1 && type <= SEC_MAX) {
      if (sec_p[type]) return cryo_fail(CRYO_EINVAL, "%s: corrupt image: two %s sections", path, section_name(type));
      sec_p[type] = img->map + off;
      sec_len[type] = len;
      if (type == SEC_PAGES) {
        img->data_off = off;
        img->data_len = len;
      }
    }
  }
  for (int t = SEC_PROCESS; t <= SEC_MAPPINGS; t++)
    if (!sec_p[t]) return cryo_fail(CRYO_EINVAL, "%s: corrupt image: no %s section", path, section_name((uint32_t)t));
  struct rctx c = {path, "", CRYO_EINVAL};
  rc = parse_process(img, &c, sec_p[SEC_PROCESS], sec_p[SEC_PROCESS] + sec_len[SEC_PROCESS]);
  if (!rc) rc = parse_threads(img, &c, sec_p[SEC_THREADS], sec_p[SEC_THREADS] + sec_len[SEC_THREADS]);
  if (!rc) rc = parse_mappings(img, &c, sec_p[SEC_MAPPINGS], sec_p[SEC_MAPPINGS] + sec_len[SEC_MAPPINGS]);
  if (!rc && sec_p[SEC_FILES]) rc = parse_files(img, &c, sec_p[SEC_FILES], sec_p[SEC_FILES] + sec_len[SEC_FILES]);
  if (!rc && sec_p[SEC_SIGNALS])
    rc = parse_signals(img, &c, sec_p[SEC_SIGNALS], sec_p[SEC_SIGNALS] + sec_len[SEC_SIGNALS]);
  if (rc) return rc > 0 ? CRYO_EINVAL : rc;
  if (img->reason == REASON_CRASH && !img->has_siginfo)
    return cryo_fail(CRYO_EINVAL, "%s: corrupt image: a crash image without the signal's siginfo", path);
  if (sec_p[SEC_LOG]) {
    rc = img_log_parse(sec_p[SEC_LOG], (size_t)sec_len[SEC_LOG], &img->log, path);
    if (rc) return rc;
    img->has_log = true;
    img->log_raw = sec_p[SEC_LOG];
    img->log_raw_len = sec_len[SEC_LOG];
  }
  if (sec_p[SEC_HISTORY]) {
    if (embedded) return cryo_fail(CRYO_EINVAL, "%s: corrupt image: an embedded checkpoint with a history of its own", path);
    if (!img->has_log) return cryo_fail(CRYO_EINVAL, "%s: corrupt image: a history without its log section", path);
    rc = parse_history(img, &c, sec_p[SEC_HISTORY], sec_p[SEC_HISTORY] + sec_len[SEC_HISTORY], used, nused);
    if (rc) return rc > 0 ? CRYO_EINVAL : rc;
  }
  return CRYO_OK;
}

CRYO_API int cryo_image_history(struct cryo_image *img, cryo_history_entry *out, int32_t max, int32_t *n) {
  if (!img || !n) return cryo_fail(CRYO_EINVAL, "cryo_image_history: null argument");
  for (uint32_t i = 0; out && i < img->nhistory && (int64_t)i < max; i++)
    out[i] = (cryo_history_entry){img->history[i].position, img->history[i].time_ns, img->history[i].pc,
                                  img->history[i].off, img->history[i].len};
  *n = (int32_t)img->nhistory;
  cryo_clear_error();
  return CRYO_OK;
}

CRYO_API int cryo_image_open_checkpoint(struct cryo_image *img, int32_t index, struct cryo_image **out) {
  if (!img || !out) return cryo_fail(CRYO_EINVAL, "cryo_image_open_checkpoint: null argument");
  *out = NULL;
  if (index < 0 || (uint32_t)index >= img->nhistory)
    return cryo_fail(CRYO_ENOENT, "%s has no checkpoint %d (its history has %u)", img->name ? img->name : "the image",
                     index, img->nhistory);
  int rc = open_embedded(img, (uint32_t)index, out);
  if (rc == CRYO_OK) cryo_clear_error();
  return rc;
}

CRYO_API int cryo_image_log(struct cryo_image *img, uint8_t *buf, size_t cap, size_t *len) {
  if (!img || !len) return cryo_fail(CRYO_EINVAL, "cryo_image_log: null argument");
  *len = (size_t)img->log_raw_len;
  if (!img->has_log) return cryo_fail(CRYO_ENOENT, "%s has no record log", img->name ? img->name : "the image");
  if (buf && cap >= *len) memcpy(buf, img->log_raw, *len);
  cryo_clear_error();
  return CRYO_OK;
}

static struct img_mapping *find_map(struct cryo_image *img, uint64_t addr) {
  uint32_t lo = 0, hi = img->nmaps;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (addr < img->maps[mid].start) hi = mid;
    else if (addr >= img->maps[mid].end) lo = mid + 1;
    else return &img->maps[mid];
  }
  return NULL;
}

/* The content of one page: data (pointer into the image), zero, or from the mapped file. */
static bool page_content(struct cryo_image *img, uint64_t page, uint8_t *out) {
  struct img_mapping *m = find_map(img, page);
  if (!m) return false;
  uint64_t idx = (page - m->start) / IMG_PAGE, at = 0;
  for (uint32_t i = 0; i < m->nruns; i++) {
    struct img_run *r = &m->runs[i];
    if (idx < at + r->npages) {
      uint64_t k = idx - at;
      switch (r->kind) {
        case PK_DATA: memcpy(out, img->map + r->off + k * IMG_PAGE, IMG_PAGE); return true;
        case PK_ZERO: memset(out, 0, IMG_PAGE); return true;
        case PK_ABSENT:
          if (m->kind == MK_FILE && !(m->flags & MF_CONTENT)) break; /* the file's content */
          if (m->kind == MK_VDSO || m->kind == MK_VVAR || m->kind == MK_VVAR_VCLOCK || m->kind == MK_VSYSCALL) return false;
          memset(out, 0, IMG_PAGE);
          return true;
        case PK_FILE: break;
        default: return false;
      }
      if (!m->path[0]) return false;
      int fd = open(m->path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) return false;
      ssize_t n = pread(fd, out, IMG_PAGE, (off_t)(m->offset + (page - m->start)));
      close(fd);
      if (n < 0) return false;
      if (n < (ssize_t)IMG_PAGE) memset(out + n, 0, IMG_PAGE - (size_t)n);
      return true;
    }
    at += r->npages;
  }
  return false;
}

CRYO_API int cryo_image_read_memory(struct cryo_image *img, uint64_t addr, uint8_t *buf, size_t len, size_t *nread) {
  if (!img || (!buf && len)) return cryo_fail(CRYO_EINVAL, "cryo_image_read_memory: null argument");
  size_t done = 0;
  uint8_t page[IMG_PAGE];
  while (done < len) {
    uint64_t a = addr + done, base = a & ~(IMG_PAGE - 1);
    if (!page_content(img, base, page)) break;
    size_t k = (size_t)(IMG_PAGE - (a - base));
    if (k > len - done) k = len - done;
    memcpy(buf + done, page + (a - base), k);
    done += k;
  }
  if (nread) *nread = done;
  if (done < len && !nread)
    return cryo_fail(CRYO_EINVAL, "image memory at 0x%llx is not stored", (unsigned long long)(addr + done));
  return CRYO_OK;
}
