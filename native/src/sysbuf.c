/* The in-process syscall buffer: recording without a ptrace stop per syscall.
 *
 * While a run is recorded, each syscall the seccomp filter traps costs two ptrace stops.
 * The commonest ones are made without stopping: at record start a region is mapped in
 * the debuggee (a code page holding the wrapper of sysbuf_code.S, then a header and a
 * ring of entries), and the filter lets through the syscalls made from the wrapper's
 * one syscall instruction. libc's syscall sites of write, read, pread64, pwrite64,
 * getpid, getppid, gettid and getrandom (the single-threaded path of each) and the
 * vDSO's clock_gettime and time jump to the wrapper, which makes the syscall and
 * appends its number, arguments, result and the bytes it wrote to the ring.
 *
 * The site, not the function's entry, is patched: the instructions before and after
 * the syscall stay libc's own, so errno, cancellation and the multi-threaded path are
 * glibc's code unchanged, and the trampoline only carries the instruction that loads
 * the syscall number (and, for read, the comparison after the syscall).
 *
 * The tracer drains the ring into the log at every stop, before anything reads a record
 * position, so a buffered syscall becomes the entry its trapped exit would have made, at
 * the same place. The wrapper takes the trapping path (the old way, from another
 * instruction) whenever the trap word says so: replaying, several threads, a stop asked
 * at a log position, a vfork child sharing the memory. A thread caught inside the
 * wrapper is settled at its stop (sysbuf_settle) so that every stop, and so every
 * checkpoint, stands where both paths agree. */
#include "internal.h"
#include "sysbuf.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern const uint8_t cryo_sb_code[], cryo_sb_check[], cryo_sb_syscall[], cryo_sb_done[], cryo_sb_commit[],
    cryo_sb_committed[], cryo_sb_trap[], cryo_sb_vdso[], cryo_sb_code_end[];
#define OFF(label) ((uint64_t)(label - cryo_sb_code))
#define TRAMP_HEAD 18 /* a trampoline's bytes after the number, to its second half */

/* libc's functions whose first syscall site is patched, and the syscall each makes */
static const struct {
  const char *name;
  int nr;
} LIBC_CALLS[] = {
    {"__write", SYS_write}, {"__read", SYS_read},   {"pread64", SYS_pread64}, {"pwrite64", SYS_pwrite64},
    {"getpid", SYS_getpid}, {"getppid", SYS_getppid}, {"gettid", SYS_gettid},  {"getrandom", SYS_getrandom},
};

uint64_t sysbuf_allowed_ip(struct cryo_session *s) { return s->sb.base ? s->sb.base + OFF(cryo_sb_done) : 0; }

uint64_t sysbuf_vdso_entry(struct cryo_session *s) {
  return s->sb.base && s->sb.mapped ? s->sb.base + OFF(cryo_sb_vdso) : 0;
}

static int put_u32(struct cryo_session *s, pid_t pid, uint64_t off, uint32_t v) {
  return mem_write_raw(s, pid, s->sb.base + off, &v, sizeof v);
}

static bool find_libc(pid_t pid, char *path, size_t plen, uint64_t *bias);

/* mmap injected in tid: the region at `at` exactly (0: where the kernel likes), or <0. */
static int64_t map_region(struct cryo_session *s, pid_t tid, uint64_t at) {
  int64_t addr = -1;
  uint64_t a[6] = {at, SB_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED_NOREPLACE : 0),
                   (uint64_t)-1, 0};
  if (inject_syscall(s, tid, SYS_mmap, a, &addr) != CRYO_OK) return -1;
  if (addr >= 0 && at && (uint64_t)addr != at) { /* a kernel without MAP_FIXED_NOREPLACE took it as a hint */
    uint64_t u[6] = {(uint64_t)addr, SB_SIZE, 0, 0, 0, 0};
    int64_t r;
    inject_syscall(s, tid, SYS_munmap, u, &r);
    return -1;
  }
  return addr;
}

/* Maps the region in tid's process (at `at`; else within a jump of libc if it is mapped
 * already, a revived process; else where the kernel likes: below the libraries, where
 * ld.so then puts libc) and writes the wrapper into it. Without it, recording works as
 * before, every recorded syscall trapping. */
int sysbuf_setup(struct cryo_session *s, pid_t tid, uint64_t at) {
  if (getenv("CRYO_SYSBUF") && !strcmp(getenv("CRYO_SYSBUF"), "0")) return CRYO_OK; /* off: every syscall traps */
  int64_t addr = -1;
  char path[4096];
  uint64_t bias = 0;
  if (at) addr = map_region(s, tid, at);
  else if (find_libc(s->pid, path, sizeof path, &bias))
    for (uint64_t k = 1; k <= 16 && addr < 0 && bias > k * (SB_SIZE + (1u << 20)); k++)
      addr = map_region(s, tid, (bias - k * (SB_SIZE + (1u << 20))) & ~0xfffull);
  if (!at && addr < 0) addr = map_region(s, tid, 0);
  if (addr <= 0) {
    dbg("sysbuf: no region in %d (%lld)", tid, (long long)addr);
    return CRYO_OK;
  }
  s->sb.base = (uint64_t)addr;
  size_t n = (size_t)(cryo_sb_code_end - cryo_sb_code);
  int rc = mem_write_raw(s, tid, s->sb.base, cryo_sb_code, n);
  uint64_t p[6] = {s->sb.base, SB_CODE_SIZE, PROT_READ | PROT_EXEC, 0, 0, 0};
  int64_t ret = -1;
  if (rc == CRYO_OK) rc = inject_syscall(s, tid, SYS_mprotect, p, &ret);
  if (rc != CRYO_OK || ret != 0) {
    s->sb.base = 0;
    return rc;
  }
  s->sb.mapped = true;
  s->sb.code_len = s->sb.common_len = (n + 15) & ~(size_t)15;
  s->sb.pid = s->pid;
  s->sb.trap_known = false;
  s->sb.libc_done = false;
  s->sb.tries = 0;
  s->sb.nsites = 0;
  dbg("sysbuf: region at 0x%llx in %d", (unsigned long long)s->sb.base, s->pid);
  return CRYO_OK;
}

/* ---- finding libc's sites ---- */

#define NCALLS (sizeof LIBC_CALLS / sizeof LIBC_CALLS[0])

/* The value and size of each of LIBC_CALLS' functions in an ELF image's dynamic
 * symbols (size 0: not there), in one pass over them. */
static void elf_funcs(const uint8_t *img, size_t len, uint64_t value[NCALLS], uint64_t size[NCALLS]) {
  memset(size, 0, NCALLS * sizeof size[0]);
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
  if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > len)
    return;
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum) continue;
    const Elf64_Shdr *str = &sh[sh[i].sh_link];
    if (sh[i].sh_offset + sh[i].sh_size > len || str->sh_offset + str->sh_size > len) continue;
    const Elf64_Sym *sym = (const Elf64_Sym *)(img + sh[i].sh_offset);
    const char *names = (const char *)img + str->sh_offset;
    for (size_t k = 0; k < sh[i].sh_size / sizeof *sym; k++) {
      if (sym[k].st_name >= str->sh_size || ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC || !sym[k].st_value) continue;
      /* the string table's end is checked: a name is read only up to it */
      const char *nm = names + sym[k].st_name;
      size_t room = str->sh_size - sym[k].st_name;
      bool whole = false; /* the name ends within the table: looked at once, when it may match */
      for (size_t c = 0; c < NCALLS; c++) {
        if (size[c] || nm[0] != LIBC_CALLS[c].name[0]) continue;
        if (!whole && !(whole = strnlen(nm, room) < room)) break;
        if (strcmp(nm, LIBC_CALLS[c].name)) continue;
        value[c] = sym[k].st_value;
        size[c] = sym[k].st_size;
      }
    }
  }
}

/* libc as the process maps it: its path and load bias, or false when not mapped (yet). */
static bool find_libc(pid_t pid, char *path, size_t plen, uint64_t *bias) {
  char mp[64], line[4608];
  snprintf(mp, sizeof mp, "/proc/%d/maps", pid);
  FILE *f = fopen(mp, "r");
  if (!f) return false;
  bool found = false, exec = false;
  while (fgets(line, sizeof line, f)) {
    unsigned long long lo, hi, off;
    char perms[8];
    int at = 0;
    if (sscanf(line, "%llx-%llx %7s %llx %*s %*s%n", &lo, &hi, perms, &off, &at) < 4 || !at) continue;
    char *p = line + at;
    while (*p == ' ') p++;
    p[strcspn(p, "\n")] = 0;
    const char *base = strrchr(p, '/');
    base = base ? base + 1 : p;
    if (strncmp(base, "libc.so", 7) && strncmp(base, "libc-", 5)) continue;
    if (off == 0 && !found) {
      snprintf(path, plen, "%s", p);
      *bias = lo;
      found = true;
    }
    if (strchr(perms, 'x')) exec = true;
  }
  fclose(f);
  return found && exec;
}

/* A file mapped read-only: only the pages looked at (headers, symbols) are read, where
 * reading libc whole (2 MB) was most of the time patching took. */
static uint8_t *map_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  uint8_t *img = NULL;
  if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (1ll << 30)) {
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
      img = m;
      *len = (size_t)st.st_size;
    }
  }
  close(fd);
  return img;
}

static bool rel32_ok(uint64_t from_next, uint64_t to) {
  int64_t d = (int64_t)(to - from_next);
  return d >= INT32_MIN && d <= INT32_MAX;
}

static void put_rel32(uint8_t *p, uint64_t from_next, uint64_t to) {
  int32_t d = (int32_t)(int64_t)(to - from_next);
  memcpy(p, &d, 4);
}

/* In the code of a function (code[0..n) at addr), its first site making syscall nr:
 * `mov $nr,%eax; syscall` or `xor %eax,%eax; syscall`, with the following
 * `cmp $-4096,%rax` when that is too short for a jmp. Fills the site and its trampoline
 * (at tramp, into t). Returns the trampoline's length, 0 when no site fits. */
static size_t make_site(const uint8_t *code, size_t n, uint64_t addr, int nr, uint64_t tramp, uint64_t entry,
                        struct sb_site *site, uint8_t *t) {
  static const uint8_t CMP[6] = {0x48, 0x3d, 0x00, 0xf0, 0xff, 0xff};
  for (size_t i = 0; i + 4 <= n; i++) {
    size_t pre = 0;
    uint32_t imm;
    if (code[i] == 0xb8 && i + 7 <= n && code[i + 5] == 0x0f && code[i + 6] == 0x05) {
      memcpy(&imm, code + i + 1, 4);
      if (imm == (uint32_t)nr) pre = 5;
    } else if (code[i] == 0x31 && code[i + 1] == 0xc0 && code[i + 2] == 0x0f && code[i + 3] == 0x05 && nr == 0) {
      pre = 2;
    }
    if (!pre) {
      if (code[i] == 0x0f && code[i + 1] == 0x05) return 0; /* another syscall first: not one we know */
      continue;
    }
    size_t len = pre + 2;
    if (len < 5) {
      if (i + len + 6 > n || memcmp(code + i + len, CMP, 6)) return 0;
      len += 6;
    }
    site->addr = addr + i;
    site->tramp = tramp;
    site->len = (uint8_t)len;
    site->pre = (uint8_t)pre;
    memcpy(site->orig, code + i, len);
    /* trampoline: the number, past the red zone, the flags, r11 = its second half, the
     * wrapper; then rcx as the syscall would leave it, what followed the syscall, and
     * back to libc after the site */
    size_t k = 0;
    memcpy(t, code + i, pre);
    k = pre;
    uint64_t post = tramp + pre + TRAMP_HEAD;
    static const uint8_t head[6] = {0x48, 0x8d, 0x64, 0x24, 0x80, 0x9c}; /* lea -128(%rsp),%rsp; pushfq */
    memcpy(t + k, head, sizeof head);
    k += sizeof head;
    t[k++] = 0x4c, t[k++] = 0x8d, t[k++] = 0x1d; /* lea post(%rip),%r11 */
    put_rel32(t + k, tramp + k + 4, post);
    k += 4;
    t[k++] = 0xe9; /* jmp entry */
    put_rel32(t + k, tramp + k + 4, entry);
    k += 4;
    uint64_t after = site->addr + pre + 2;
    t[k++] = 0x48, t[k++] = 0xb9; /* movabs $after,%rcx */
    memcpy(t + k, &after, 8);
    k += 8;
    memcpy(t + k, code + i + pre + 2, len - pre - 2);
    k += len - pre - 2;
    t[k++] = 0xe9; /* jmp back */
    if (!rel32_ok(tramp + k + 4, site->addr + len) || !rel32_ok(site->addr + 5, tramp)) return 0;
    put_rel32(t + k, tramp + k + 4, site->addr + len);
    k += 4;
    /* the site: jmp to the trampoline, int3 over the rest (never reached) */
    memset(site->patch, 0xcc, sizeof site->patch);
    site->patch[0] = 0xe9;
    put_rel32(site->patch + 1, site->addr + 5, tramp);
    return k;
  }
  return 0;
}

/* A thread whose pc is inside a site about to be patched goes to the same place in its
 * trampoline: before the syscall (the wrapper makes it) or after (libc's next
 * instruction, copied there). Not one interrupted in that syscall, which the kernel
 * restarts 2 bytes back: then false, and nothing is patched yet. */
static bool move_off_sites(struct cryo_session *s, bool dry) {
  for (int i = 0; i < s->nthreads; i++) {
    struct user_regs_struct r;
    if (regs_get(s->threads[i].tid, &r) != CRYO_OK) continue;
    for (int k = 0; k < s->sb.nsites; k++) {
      struct sb_site *st = &s->sb.sites[k];
      if (r.rip <= st->addr || r.rip >= st->addr + st->len) continue;
      uint64_t off = r.rip - st->addr;
      if (off == st->pre + 2u && r.orig_rax != (unsigned long long)-1 && syscall_restarts((int64_t)r.rax)) return false;
      if (dry) continue;
      /* after the syscall: past the movabs, rcx is the kernel's already */
      r.rip = off <= st->pre ? st->tramp + off : st->tramp + st->pre + TRAMP_HEAD + 10 + (off - st->pre - 2);
      regs_set(s->threads[i].tid, &r);
    }
  }
  return true;
}

int sysbuf_patch_sites(struct cryo_session *s, pid_t pid) {
  if (pid == s->pid) {
    if (!move_off_sites(s, true)) return cryo_fail(CRYO_EFAIL, "a thread of %d is to restart a syscall in a libc site", pid);
    move_off_sites(s, false);
  }
  for (int k = 0; k < s->sb.nsites; k++) {
    int rc = mem_write_raw(s, pid, s->sb.sites[k].addr, s->sb.sites[k].patch, s->sb.sites[k].len);
    if (rc != CRYO_OK) return rc;
  }
  return CRYO_OK;
}

int sysbuf_unpatch_sites(struct cryo_session *s, pid_t pid) {
  for (int k = 0; k < s->sb.nsites; k++) {
    int rc = mem_write_raw(s, pid, s->sb.sites[k].addr, s->sb.sites[k].orig, s->sb.sites[k].len);
    if (rc != CRYO_OK) return rc;
  }
  return CRYO_OK;
}

/* Patches libc's sites once libc is mapped (ld.so maps it after record start). */
void sysbuf_try_libc(struct cryo_session *s) {
  if (!s->sb.base || !s->sb.mapped || s->sb.libc_done || !s->pid || s->nthreads != 1) return;
  char path[4096];
  uint64_t bias = 0;
  if (!find_libc(s->pid, path, sizeof path, &bias)) {
    if (++s->sb.tries >= 64) s->sb.libc_done = true; /* a static program: the vDSO's calls are all we buffer */
    return;
  }
  s->sb.libc_done = true;
  size_t flen = 0;
  uint8_t *img = map_file(path, &flen);
  if (!img) {
    dbg("sysbuf: cannot read %s", path);
    return;
  }
  uint64_t values[NCALLS], sizes[NCALLS];
  elf_funcs(img, flen, values, sizes);
  munmap(img, flen);
  uint8_t *code = s->sb.code;
  size_t clen = s->sb.code_len;
  s->sb.nsites = 0;
  for (size_t c = 0; c < NCALLS && s->sb.nsites < SB_MAX_SITES; c++) {
    uint64_t value = values[c], size = sizes[c];
    if (size < 4) continue;
    uint8_t fn[256];
    size_t n = size < sizeof fn ? (size_t)size : sizeof fn;
    if (mem_read_raw(s, s->pid, bias + value, fn, n) != (ssize_t)n) continue;
    if (clen + 64 > SB_CODE_SIZE) break;
    struct sb_site *st = &s->sb.sites[s->sb.nsites];
    size_t k = make_site(fn, n, bias + value, LIBC_CALLS[c].nr, s->sb.base + clen, s->sb.base, st, code + clen);
    if (!k) {
      dbg("sysbuf: no site for %s in %s", LIBC_CALLS[c].name, path);
      continue;
    }
    clen = (clen + k + 15) & ~(size_t)15;
    s->sb.nsites++;
  }
  /* the trampolines first, then the jumps to them */
  int rc = mem_write_raw(s, s->pid, s->sb.base + s->sb.code_len, code + s->sb.code_len, clen - s->sb.code_len);
  if (rc == CRYO_OK) rc = sysbuf_patch_sites(s, s->pid);
  if (rc != CRYO_OK) {
    sysbuf_unpatch_sites(s, s->pid);
    s->sb.nsites = 0;
    s->sb.libc_done = s->sb.tries++ >= 64; /* a thread in the way: at a later stop */
    return;
  }
  s->sb.code_len = clen;
  dbg("sysbuf: %d libc sites patched in %d (%s)", s->sb.nsites, s->pid, path);
}

/* ---- at stops ---- */

/* The ring's entries into the log, in order; the ring is empty afterwards. Only while
 * every thread that could append is stopped (one thread, or all trapping).
 *
 * The debuggee waits while a full ring (14,000 writes' entries) is drained, and the
 * drain is bound by memory bandwidth: so the ring is read in pieces that stay in the
 * cache while they are parsed, rather than copied whole to memory and read back. */
#define DRAIN_CHUNK (128u << 10)

/* The ring's bytes [off, off + need) in the tracer's buffer, which holds [*base, *base +
 * *have): what is kept moves to the buffer's start, the buffer grows only for an entry
 * longer than a piece (a big read's bytes), and the next piece (up to the ring's end,
 * `used`) is read after it. NULL when the debuggee's memory cannot be read. */
static const uint8_t *drain_window(struct cryo_session *s, uint64_t *base, uint64_t *have, uint64_t off, uint64_t need,
                                   uint64_t used) {
  if (off + need <= *base + *have) return s->sb.ring + (off - *base);
  uint64_t keep = off < *base + *have ? *base + *have - off : 0;
  if (need > s->sb.ring_cap) {
    uint8_t *b = realloc(s->sb.ring, need);
    if (!b) return NULL;
    s->sb.ring = b;
    s->sb.ring_cap = need;
  }
  if (keep) memmove(s->sb.ring, s->sb.ring + (off - *base), keep);
  uint64_t n = used - (off + keep);
  if (n > s->sb.ring_cap - keep) n = s->sb.ring_cap - keep;
  if (mem_read_raw(s, s->pid, s->sb.base + SB_RING + off + keep, s->sb.ring + keep, n) != (ssize_t)n) return NULL;
  *base = off;
  *have = keep + n;
  return s->sb.ring;
}

void sysbuf_drain(struct cryo_session *s) {
  if (!s->sb.base || !s->sb.mapped || !s->pid) return;
  uint64_t used = 0; /* one small read per stop; single steps resume without sysbuf_sync */
  s->sb.stop_used = 0;
  if (mem_read_raw(s, s->pid, s->sb.base + SB_USED, &used, 8) != 8 || !used) return;
  s->sb.stop_used = used;
  if (used > SB_RING_CAP) {
    dbg("sysbuf: ring of %d says %llu bytes", s->pid, (unsigned long long)used);
    used = 0;
  }
  if (!s->sb.ring && !(s->sb.ring = malloc(DRAIN_CHUNK))) return;
  if (!s->sb.ring_cap) s->sb.ring_cap = DRAIN_CHUNK;
  uint64_t base = 0, have = 0;
  for (uint64_t off = 0; off + SBE_HDR <= used;) {
    const uint8_t *p = drain_window(s, &base, &have, off, SBE_HDR, used);
    uint32_t outlen = 0;
    if (p) memcpy(&outlen, p + SBE_OUTLEN, 4);
    if (p && off + SBE_HDR + outlen > used) break;
    if (p) p = drain_window(s, &base, &have, off, SBE_HDR + outlen, used);
    if (!p) {
      /* the process is gone, or its memory is: what is logged stays, the rest is lost */
      dbg("sysbuf: the ring of %d is not readable at %llu: %s", s->pid, (unsigned long long)off, cryo_last_error());
      return;
    }
    struct rec_entry e;
    memset(&e, 0, sizeof e);
    uint64_t outaddr;
    memcpy(&e.nr, p + SBE_NR, 4);
    memcpy(&e.ret, p + SBE_RET, 8);
    memcpy(e.args, p + SBE_ARGS, 48);
    memcpy(&outaddr, p + SBE_OUTADDR, 8);
    record_buffered(s, s->pid, &e, outaddr, outlen, p + SBE_HDR);
    off += (SBE_HDR + outlen + 7) & ~7ull;
  }
  uint64_t zero = 0;
  mem_write_raw(s, s->pid, s->sb.base + SB_USED, &zero, 8);
}

/* A thread stopped inside the wrapper is put where the recorded run and a replay agree:
 * - decided on the buffered path but the syscall not made (or interrupted, to be
 *   restarted): onto the trapping path, which works in either mode, so a checkpoint of
 *   it replays the syscall rather than making it live;
 * - the syscall made, its entry not committed: logged now, as the wrapper would have,
 *   and the thread goes on after the commit.
 * Not at a seccomp or syscall-exit stop (the trapping path's own). */
void sysbuf_settle(struct cryo_session *s, struct thread *t) {
  if (!s->sb.base || !s->sb.mapped || !t) return;
  struct user_regs_struct r;
  if (regs_get(t->tid, &r) != CRYO_OK) return;
  uint64_t b = s->sb.base;
  if (r.rip < b + OFF(cryo_sb_check) || r.rip > b + OFF(cryo_sb_commit)) return;
  uint64_t off = r.rip - b;
  if (off <= OFF(cryo_sb_syscall)) {
    if (off == OFF(cryo_sb_syscall)) put_u32(s, t->tid, SB_BUSY, 0); /* set by this call */
    r.rip = b + OFF(cryo_sb_trap);
    regs_set(t->tid, &r);
    return;
  }
  if (off == OFF(cryo_sb_done) && r.orig_rax != (unsigned long long)-1 && syscall_restarts((int64_t)r.rax)) {
    put_u32(s, t->tid, SB_BUSY, 0);
    r.rip = b + OFF(cryo_sb_trap) + 2; /* the kernel's restart goes back 2 bytes: to the trap */
    regs_set(t->tid, &r);
    return;
  }
  /* the entry in flight begins where the ring ended at this stop: sysbuf_drain, run
   * first at every stop, has logged what came before it and emptied the ring since
   * (reading its header at the offset it left, 0, took a drained entry's number and
   * arguments with this syscall's result: a replay then diverged there) */
  uint64_t used = s->sb.stop_used;
  uint8_t h[SBE_HDR];
  if (used > SB_RING_CAP - SBE_HDR || mem_read_raw(s, t->tid, b + SB_RING + used, h, SBE_HDR) != SBE_HDR) return;
  struct rec_entry e;
  memset(&e, 0, sizeof e);
  memcpy(&e.nr, h + SBE_NR, 4);
  memcpy(e.args, h + SBE_ARGS, 48);
  e.ret = (int64_t)r.rax; /* the wrapper never changes rax after the syscall */
  record_buffered(s, t->tid, &e, 0, 0, NULL);
  r.rip = b + OFF(cryo_sb_committed);
  regs_set(t->tid, &r);
}

/* The trap word the wrapper should see now: buffering only while recording a single
 * thread with no stop asked at a log position and no vfork child sharing the memory.
 * Called before every resume (and when such a condition changes while it runs). A
 * process not seen before (a restored checkpoint) gets its sites checked: a copy from
 * before libc was patched is patched now. */
void sysbuf_sync(struct cryo_session *s) {
  if (!s->sb.base || !s->sb.mapped || !s->pid) return;
  if (s->sb.pid != s->pid) {
    s->sb.pid = s->pid;
    s->sb.trap_known = false;
    if (s->sb.nsites) {
      struct sb_site *st = &s->sb.sites[0];
      uint8_t cur[16];
      if (mem_read_raw(s, s->pid, st->addr, cur, st->len) != st->len) {
        s->sb.nsites = 0; /* libc not mapped yet in that copy: looked for again */
        s->sb.libc_done = false;
        s->sb.tries = 0;
        s->sb.code_len = s->sb.common_len;
      } else if (memcmp(cur, st->orig, st->len) == 0 &&
                 (mem_write_raw(s, s->pid, s->sb.base + s->sb.common_len, s->sb.code + s->sb.common_len,
                                s->sb.code_len - s->sb.common_len) != CRYO_OK ||
                  sysbuf_patch_sites(s, s->pid) != CRYO_OK)) {
        sysbuf_unpatch_sites(s, s->pid); /* patched at a later syscall exit instead */
        s->sb.nsites = 0;
        s->sb.libc_done = false;
        s->sb.tries = 0;
        s->sb.code_len = s->sb.common_len;
      }
    }
  }
  uint32_t want = !(s->rec_mode == REC_RECORD && s->nthreads == 1 && s->rec_stop_at == UINT64_MAX && !s->sb.vfork);
  if (!s->sb.trap_known || s->sb.trap != want) {
    if (put_u32(s, s->pid, SB_TRAP, want) != CRYO_OK) return;
    s->sb.trap = want;
    s->sb.trap_known = true;
  }
}

/* A forked child runs on untraced: its recorded syscalls fail (ENOSYS) as before, its
 * buffer is never drained. */
void sysbuf_fork_child(struct cryo_session *s, pid_t child) {
  if (s->sb.base && s->sb.mapped) put_u32(s, child, SB_TRAP, 1);
}

/* exec replaced the address space, but the filter still lets the old address through:
 * the region goes back there if it can (the new program's libc is looked for again). */
void sysbuf_exec(struct cryo_session *s, pid_t tid) {
  if (!s->sb.base) return;
  uint64_t at = s->sb.base;
  s->sb.mapped = false;
  s->sb.nsites = 0;
  s->sb.libc_done = true;
  s->sb.vfork = false;
  int rc = sysbuf_setup(s, tid, at);
  if (rc != CRYO_OK || !s->sb.mapped) {
    s->sb.base = at; /* still what the filter allows; nothing of ours is there */
    s->sb.mapped = false;
    uint64_t a[6] = {at, SB_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0};
    int64_t r;
    inject_syscall(s, tid, SYS_mmap, a, &r); /* keep the address from the program if free */
  }
}

/* Detach: libc as it was; a thread still inside the wrapper finishes there. */
void sysbuf_detach(struct cryo_session *s) {
  if (!s->sb.base || !s->sb.mapped || !s->pid) return;
  sysbuf_drain(s);
  sysbuf_unpatch_sites(s, s->pid);
  put_u32(s, s->pid, SB_TRAP, 1);
}

void sysbuf_free(struct cryo_session *s) {
  free(s->sb.ring);
  memset(&s->sb, 0, sizeof s->sb);
}
