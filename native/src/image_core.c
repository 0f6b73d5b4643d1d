/* Export: an image written as a standard ELF core file, so that gdb (or anything that
 * reads the kernel's cores) can open it: `gdb PROG CORE`.
 *
 * Layout, as Linux writes cores for x86-64: the ELF header, the program headers (one
 * PT_NOTE, then one PT_LOAD per mapping in address order), the notes, then the
 * segments' content, each starting on a page boundary. Notes come in the kernel's order:
 * for the first thread (the crashing one for a crash) NT_PRSTATUS, then the process-wide
 * NT_PRPSINFO, NT_SIGINFO (crash only), NT_AUXV, NT_FILE, then its NT_FPREGSET and
 * NT_X86_XSTATE; every other thread follows with NT_PRSTATUS, NT_FPREGSET, NT_X86_XSTATE;
 * last, NT_X86_XSAVE_LAYOUT (where each XSAVE component sits), when it can be known.
 *
 * Memory comes through cryo_image_read_memory, so it is what the image's reader says:
 * data pages, zero pages, clean file pages read from the mapped files. Pages that hold
 * zeros are left as holes in the file (it stays sparse); pages with no content in the
 * image (unreadable, or a file that cannot be read) are zeros too. A mapping with no
 * content at all ([vvar], [vsyscall], untouched anonymous memory) gets p_filesz 0: the
 * kernel writes such mappings the same way, and gdb reads them as zeros.
 *
 * The file is written beside its name and renamed into place (img_pending_*, as an
 * image is): a failure leaves nothing behind. */
#include "image.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(struct elf_prstatus) == 336, "x86-64 elf_prstatus");
_Static_assert(sizeof(struct elf_prpsinfo) == 136, "x86-64 elf_prpsinfo");
_Static_assert(sizeof(elf_gregset_t) == sizeof(struct user_regs_struct), "user_regs_struct as elf_gregset_t");

#define CORE_FPREGS_SIZE 512 /* the legacy FXSAVE part of the xsave area: user_fpregs_struct */
#define CORE_CHUNK (1u << 20)

struct core_out {
  int fd;
  const char *path; /* the final name, for messages */
  uint8_t *buf;     /* pages waiting to be written at buf_off */
  size_t blen;
  uint64_t buf_off;
};

static int core_pwrite(struct core_out *o, const void *p, size_t n, uint64_t off) {
  const uint8_t *b = p;
  while (n) {
    ssize_t k = pwrite(o->fd, b, n, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (k == 0) errno = ENOSPC;
      int e = errno;
      if (e == ENOSPC || e == EDQUOT)
        return cryo_fail(CRYO_EFAIL, "writing %s: no space left on the device at offset %llu (%s); no core written",
                         o->path, (unsigned long long)off, strerror(e));
      if (e == EFBIG)
        return cryo_fail(CRYO_EFAIL, "writing %s: file too large at offset %llu (file size limit?); no core written",
                         o->path, (unsigned long long)off);
      return cryo_fail_errno("writing %s at offset %llu", o->path, (unsigned long long)off);
    }
    b += k;
    off += (uint64_t)k;
    n -= (size_t)k;
  }
  return CRYO_OK;
}

static int core_flush(struct core_out *o) {
  if (!o->blen) return CRYO_OK;
  int rc = core_pwrite(o, o->buf, o->blen, o->buf_off);
  o->buf_off += o->blen;
  o->blen = 0;
  return rc;
}

static bool zero_page(const uint8_t *p) {
  static const uint8_t z[IMG_PAGE];
  return memcmp(p, z, IMG_PAGE) == 0;
}

/* ---- notes ---- */

static void note(struct img_buf *b, const char *name, uint32_t type, const void *desc, size_t len) {
  static const uint8_t pad[4];
  Elf64_Nhdr h = {.n_namesz = (Elf64_Word)(strlen(name) + 1), .n_descsz = (Elf64_Word)len, .n_type = type};
  img_buf_put(b, &h, sizeof h);
  img_buf_put(b, name, h.n_namesz);
  img_buf_put(b, pad, (4 - h.n_namesz % 4) % 4);
  img_buf_put(b, desc, len);
  img_buf_put(b, pad, (4 - len % 4) % 4);
}

static void note_prstatus(struct img_buf *b, struct cryo_image *img, const struct img_thread *t, int signo) {
  struct elf_prstatus st;
  memset(&st, 0, sizeof st);
  st.pr_info.si_signo = signo;
  st.pr_cursig = (short)signo;
  st.pr_sigpend = t->pending;
  st.pr_sighold = t->sigmask;
  st.pr_pid = (pid_t)t->tid;
  st.pr_ppid = (pid_t)img->ppid;
  memcpy(&st.pr_reg, &t->regs, sizeof st.pr_reg);
  st.pr_fpvalid = t->xsave && t->xsave_len >= CORE_FPREGS_SIZE;
  note(b, "CORE", NT_PRSTATUS, &st, sizeof st);
}

static void note_regsets(struct img_buf *b, const struct img_thread *t) {
  if (!t->xsave || t->xsave_len < CORE_FPREGS_SIZE) return;
  note(b, "CORE", NT_FPREGSET, t->xsave, CORE_FPREGS_SIZE);
  note(b, "LINUX", NT_X86_XSTATE, t->xsave, t->xsave_len);
}

/* NT_X86_XSAVE_LAYOUT, as Linux 6.12 and later write it: type, size, offset and flags of
 * each extended component of NT_X86_XSTATE. AMD and Intel place AVX-512 differently, and
 * the size alone does not always tell which (2432 bytes on an AMD CPU without PKU), so
 * a reader needs it. The layout is read off this CPU: written only when the image was
 * taken with the same XSAVE configuration (XCR0 and size) as this one has. */
#define NT_X86_XSAVE_LAYOUT 0x205
static void note_xsave_layout(struct img_buf *b, const struct cryo_image *img) {
  if (!cpu_has_xsave()) return;
  uint32_t a, bx, c, d;
  uint64_t xcr0 = xgetbv0();
  __asm__ volatile("cpuid" : "=a"(a), "=b"(bx), "=c"(c), "=d"(d) : "a"(0xd), "c"(0));
  if (xcr0 != img->xcr0 || bx != img->xsave_size) return;
  struct xfeat {
    uint32_t type, size, offset, flags;
  } comp[64];
  uint32_t n = 0;
  for (uint32_t i = 2; i < 64; i++) {
    if (!((xcr0 >> i) & 1)) continue;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(bx), "=c"(c), "=d"(d) : "a"(0xd), "c"(i));
    if (a) comp[n++] = (struct xfeat){i, a, bx, c};
  }
  if (n) note(b, "LINUX", NT_X86_XSAVE_LAYOUT, comp, n * sizeof comp[0]);
}

static void note_prpsinfo(struct img_buf *b, struct cryo_image *img) {
  struct elf_prpsinfo ps;
  memset(&ps, 0, sizeof ps);
  /* a crashing process is running when the kernel dumps it; a snapshot was stopped */
  ps.pr_sname = img->reason == REASON_CRASH ? 'R' : 't';
  ps.pr_state = img->reason == REASON_CRASH ? 0 : 8;
  if (img->has_creds) {
    ps.pr_uid = (__pr_uid_t)img->creds[0];
    ps.pr_gid = (__pr_gid_t)img->creds[4];
  }
  ps.pr_pid = (int)img->pid;
  ps.pr_ppid = (int)img->ppid;
  if (img->comm) {
    size_t c = strlen(img->comm);
    memcpy(ps.pr_fname, img->comm, c < sizeof ps.pr_fname - 1 ? c : sizeof ps.pr_fname - 1);
  }
  /* the arguments, NULs as spaces, cut to fit (the last byte stays NUL) */
  size_t n = img->cmdline_len < sizeof ps.pr_psargs - 1 ? img->cmdline_len : sizeof ps.pr_psargs - 1;
  for (size_t i = 0; i < n; i++) ps.pr_psargs[i] = img->cmdline[i] ? (char)img->cmdline[i] : ' ';
  while (n && ps.pr_psargs[n - 1] == ' ') ps.pr_psargs[--n] = 0;
  note(b, "CORE", NT_PRPSINFO, &ps, sizeof ps);
}

static bool file_backed(const struct img_mapping *m) { return m->kind == MK_FILE && m->path && m->path[0]; }

static void note_file(struct img_buf *b, struct cryo_image *img) {
  uint64_t count = 0;
  for (uint32_t i = 0; i < img->nmaps; i++) count += file_backed(&img->maps[i]);
  if (!count) return;
  struct img_buf d = {0};
  uint64_t page = IMG_PAGE;
  img_buf_put(&d, &count, 8);
  img_buf_put(&d, &page, 8);
  for (uint32_t i = 0; i < img->nmaps; i++) {
    const struct img_mapping *m = &img->maps[i];
    if (!file_backed(m)) continue;
    uint64_t e[3] = {m->start, m->end, m->offset / IMG_PAGE};
    img_buf_put(&d, e, sizeof e);
  }
  for (uint32_t i = 0; i < img->nmaps; i++)
    if (file_backed(&img->maps[i])) img_buf_put(&d, img->maps[i].path, strlen(img->maps[i].path) + 1);
  if (d.oom) b->oom = true;
  else note(b, "CORE", NT_FILE, d.p, d.len);
  img_buf_free(&d);
}

static int build_notes(struct cryo_image *img, struct img_buf *b) {
  /* the crashing thread first, as the kernel puts the thread that dumps */
  uint32_t first = 0;
  bool crash = img->reason == REASON_CRASH && img->has_siginfo;
  int signo = 0;
  if (crash) {
    memcpy(&signo, img->siginfo, sizeof signo);
    for (uint32_t i = 0; i < img->nthreads; i++)
      if (img->threads[i].tid == img->crash_tid) first = i;
  }
  for (uint32_t k = 0; k < img->nthreads; k++) {
    uint32_t i = k == 0 ? first : (k <= first ? k - 1 : k);
    const struct img_thread *t = &img->threads[i];
    note_prstatus(b, img, t, crash && i == first ? signo : 0);
    if (k == 0) {
      note_prpsinfo(b, img);
      if (crash) note(b, "CORE", NT_SIGINFO, img->siginfo, sizeof img->siginfo);
      if (img->auxv && img->auxv_len) note(b, "CORE", NT_AUXV, img->auxv, img->auxv_len);
      note_file(b, img);
    }
    note_regsets(b, t);
  }
  note_xsave_layout(b, img);
  if (b->oom) return cryo_fail(CRYO_EFAIL, "out of memory building the notes of the core");
  return CRYO_OK;
}

/* ---- segments ---- */

/* A run whose pages read as zeros whatever happens (they are holes in the core). */
static bool run_zero(const struct img_mapping *m, const struct img_run *r) {
  if (r->kind == PK_ZERO) return true;
  if (r->kind == PK_ABSENT) return !(m->kind == MK_FILE && !(m->flags & MF_CONTENT)); /* anon: never touched */
  return false;
}

/* Has any page content to store? [vvar] and [vsyscall] never do (nothing of theirs is
 * in the image; gdb does not need them). */
static bool has_content(const struct img_mapping *m) {
  if (m->kind == MK_VVAR || m->kind == MK_VVAR_VCLOCK || m->kind == MK_VSYSCALL) return false;
  for (uint32_t i = 0; i < m->nruns; i++)
    if (!run_zero(m, &m->runs[i]) && m->runs[i].kind != PK_UNREADABLE) return true;
  return false;
}

static uint32_t pflags(uint64_t prot) {
  return (prot & 1 ? PF_R : 0) | (prot & 2 ? PF_W : 0) | (prot & 4 ? PF_X : 0);
}

/* The mapping's pages at file offset off: holes for zeros, read through the image's
 * reader for everything else. */
static int write_mapping(struct core_out *o, struct cryo_image *img, const struct img_mapping *m, uint64_t off,
                         struct img_core_stats *st) {
  uint64_t addr = m->start;
  o->buf_off = off;
  o->blen = 0;
  for (uint32_t i = 0; i < m->nruns; i++) {
    const struct img_run *r = &m->runs[i];
    if (run_zero(m, r) || r->kind == PK_UNREADABLE) {
      int rc = core_flush(o);
      if (rc) return rc;
      uint64_t len = (uint64_t)r->npages * IMG_PAGE;
      if (r->kind == PK_UNREADABLE) st->missing_pages += r->npages;
      else st->zero_pages += r->npages;
      addr += len;
      o->buf_off += len;
      continue;
    }
    for (uint32_t p = 0; p < r->npages; p++, addr += IMG_PAGE) {
      uint8_t *page = o->buf + o->blen;
      size_t got = 0;
      if (cryo_image_read_memory(img, addr, page, IMG_PAGE, &got) != CRYO_OK) got = 0;
      if (got < IMG_PAGE) {
        memset(page + got, 0, IMG_PAGE - got);
        st->missing_pages++;
      }
      if (zero_page(page)) {
        int rc = core_flush(o);
        if (rc) return rc;
        o->buf_off += IMG_PAGE;
        if (got == IMG_PAGE) st->zero_pages++;
        continue;
      }
      o->blen += IMG_PAGE;
      st->content_pages++;
      if (o->blen == CORE_CHUNK) {
        int rc = core_flush(o);
        if (rc) return rc;
      }
    }
  }
  return core_flush(o);
}

/* Mappings of files whose content the core takes from them now: does the file still
 * look as it did at the dump? */
static bool file_changed(const struct img_mapping *m) {
  if (m->kind != MK_FILE || (m->flags & MF_CONTENT) || !m->path || !m->path[0]) return false;
  bool uses_file = false;
  for (uint32_t i = 0; i < m->nruns; i++)
    if (m->runs[i].kind == PK_FILE || m->runs[i].kind == PK_ABSENT) uses_file = true;
  if (!uses_file) return false;
  struct stat sb;
  if (stat(m->path, &sb) != 0) return true;
  uint64_t mt = (uint64_t)sb.st_mtim.tv_sec * 1000000000ull + (uint64_t)sb.st_mtim.tv_nsec;
  if ((uint64_t)sb.st_size == m->file_size && mt == m->mtime_ns) return false;
  if (!m->build_id_len) return true;
  uint8_t id[64];
  uint32_t len = 0;
  if (img_build_id_path(m->path, id, sizeof id, &len) != CRYO_OK) return true;
  return len != m->build_id_len || memcmp(id, m->build_id, len) != 0;
}

int image_export_core(struct cryo_image *img, const char *path, struct img_core_stats *st) {
  if (!img || !path) return cryo_fail(CRYO_EINVAL, "cryo_image_export_core: null argument");
  struct img_core_stats local;
  if (!st) st = &local;
  memset(st, 0, sizeof *st);

  struct img_buf notes = {0};
  int rc = build_notes(img, &notes);
  if (rc) {
    img_buf_free(&notes);
    return rc;
  }

  /* headers: more than 65534 program headers go through section header 0 (PN_XNUM) */
  uint64_t phnum = 1 + (uint64_t)img->nmaps;
  bool xnum = phnum >= PN_XNUM;
  uint64_t phoff = sizeof(Elf64_Ehdr), shoff = phoff + phnum * sizeof(Elf64_Phdr);
  uint64_t notes_off = shoff + (xnum ? sizeof(Elf64_Shdr) : 0);
  uint64_t data_off = (notes_off + notes.len + IMG_PAGE - 1) & ~(IMG_PAGE - 1);

  size_t hlen = (size_t)notes_off;
  uint8_t *head = calloc(1, hlen);
  struct core_out o = {.fd = -1, .path = path, .buf = malloc(CORE_CHUNK)};
  if (!head || !o.buf) {
    rc = cryo_fail(CRYO_EFAIL, "out of memory writing the core %s", path);
    goto out;
  }
  Elf64_Ehdr *eh = (Elf64_Ehdr *)head;
  memcpy(eh->e_ident, ELFMAG, SELFMAG);
  eh->e_ident[EI_CLASS] = ELFCLASS64;
  eh->e_ident[EI_DATA] = ELFDATA2LSB;
  eh->e_ident[EI_VERSION] = EV_CURRENT;
  eh->e_ident[EI_OSABI] = ELFOSABI_NONE;
  eh->e_type = ET_CORE;
  eh->e_machine = EM_X86_64;
  eh->e_version = EV_CURRENT;
  eh->e_phoff = phoff;
  eh->e_ehsize = sizeof(Elf64_Ehdr);
  eh->e_phentsize = sizeof(Elf64_Phdr);
  eh->e_phnum = xnum ? PN_XNUM : (Elf64_Half)phnum;
  if (xnum) {
    eh->e_shoff = shoff;
    eh->e_shentsize = sizeof(Elf64_Shdr);
    eh->e_shnum = 1;
    Elf64_Shdr *sh = (Elf64_Shdr *)(head + shoff);
    sh->sh_info = (Elf64_Word)phnum;
  }
  Elf64_Phdr *ph = (Elf64_Phdr *)(head + phoff);
  ph[0] = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = notes_off, .p_filesz = notes.len, .p_align = 4};
  uint64_t at = data_off;
  for (uint32_t i = 0; i < img->nmaps; i++) {
    const struct img_mapping *m = &img->maps[i];
    uint64_t size = m->end - m->start, filesz = has_content(m) ? size : 0;
    ph[1 + i] = (Elf64_Phdr){.p_type = PT_LOAD, .p_flags = pflags(m->prot), .p_offset = at, .p_vaddr = m->start,
                             .p_filesz = filesz, .p_memsz = size, .p_align = IMG_PAGE};
    at += filesz;
    st->segments++;
    if (filesz) st->stored_segments++;
    if (file_changed(m)) st->changed_files++;
  }
  st->threads = img->nthreads;
  st->notes_bytes = notes.len;

  struct img_pending *pd;
  rc = img_pending_create(path, "core", &pd);
  if (rc) goto out;
  o.fd = img_pending_fd(pd);
  rc = core_pwrite(&o, head, hlen, 0);
  if (!rc) rc = core_pwrite(&o, notes.p, notes.len, notes_off);
  for (uint32_t i = 0; !rc && i < img->nmaps; i++)
    if (ph[1 + i].p_filesz) rc = write_mapping(&o, img, &img->maps[i], ph[1 + i].p_offset, st);
  /* zero pages at the end are holes too: the size says where the file ends */
  if (!rc && ftruncate(o.fd, (off_t)at) != 0) {
    int e = errno;
    rc = e == EFBIG ? cryo_fail(CRYO_EFAIL, "writing %s: file too large at %llu bytes (file size limit?); no core written",
                                path, (unsigned long long)at)
         : e == ENOSPC || e == EDQUOT
             ? cryo_fail(CRYO_EFAIL, "writing %s: no space left on the device; no core written", path)
             : cryo_fail_errno("setting the size of %s to %llu bytes", path, (unsigned long long)at);
  }
  if (rc) {
    cryo_image_abort(pd);
    goto out;
  }
  st->file_size = at;
  rc = cryo_image_commit(pd);
out:
  free(head);
  free(o.buf);
  img_buf_free(&notes);
  return rc;
}

CRYO_API int cryo_image_export_core(struct cryo_image *img, const char *path) {
  return image_export_core(img, path, NULL);
}
