/* What an image holds, for people (text) and programs (JSON; the schema is in
 * docs/image-format.md and only grows: fields are never renamed or removed). */
#include "image.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>

static const char *SIGNAMES[] = {"0", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS",
                                 "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM",
                                 "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN",
                                 "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH",
                                 "SIGIO", "SIGPWR", "SIGSYS"};

static const char *signame(uint32_t sig, char *buf, size_t len) {
  if (sig < 32) return SIGNAMES[sig];
  snprintf(buf, len, "SIGRTMIN+%u", sig - 34 < 64 ? sig - 34 : 0);
  if (sig == 32 || sig == 33) snprintf(buf, len, "SIG%u", sig);
  return buf;
}

static const char *code_name(int sig, int code) {
  switch (code) {
    case 0: return "SI_USER";
    case 0x80: return "SI_KERNEL";
    case -1: return "SI_QUEUE";
    case -2: return "SI_TIMER";
    case -6: return "SI_TKILL";
    default: break;
  }
  if (sig == SIGSEGV) return code == 1 ? "SEGV_MAPERR" : code == 2 ? "SEGV_ACCERR" : code == 3 ? "SEGV_BNDERR" : code == 4 ? "SEGV_PKUERR" : "?";
  if (sig == SIGBUS) return code == 1 ? "BUS_ADRALN" : code == 2 ? "BUS_ADRERR" : code == 3 ? "BUS_OBJERR" : "?";
  if (sig == SIGFPE)
    return code == 1 ? "FPE_INTDIV" : code == 2 ? "FPE_INTOVF" : code == 3 ? "FPE_FLTDIV" : code == 4 ? "FPE_FLTOVF"
         : code == 5 ? "FPE_FLTUND" : code == 6 ? "FPE_FLTRES" : code == 7 ? "FPE_FLTINV" : code == 8 ? "FPE_FLTSUB" : "?";
  if (sig == SIGILL)
    return code == 1 ? "ILL_ILLOPC" : code == 2 ? "ILL_ILLOPN" : code == 3 ? "ILL_ILLADR" : code == 4 ? "ILL_ILLTRP"
         : code == 5 ? "ILL_PRVOPC" : code == 6 ? "ILL_PRVREG" : code == 7 ? "ILL_COPROC" : code == 8 ? "ILL_BADSTK" : "?";
  return "?";
}

static bool sig_has_addr(int sig) { return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL; }

const char *img_page_kind_name(uint32_t k) {
  static const char *n[] = {"?", "data", "zero", "absent", "unreadable", "file"};
  return k <= PK_MAX ? n[k] : "?";
}

const char *img_map_kind_name(uint64_t k) {
  static const char *n[] = {"?", "anon", "file", "heap", "stack", "vdso", "vvar", "vvar_vclock", "vsyscall", "special"};
  return k <= MK_MAX ? n[k] : "?";
}

const char *img_fd_type_name(uint64_t t) {
  static const char *n[] = {"?", "file", "directory", "chardev", "blockdev", "fifo", "socket", "symlink", "other"};
  return t <= FT_OTHER ? n[t] : "?";
}

static const char *REGNAMES[27] = {"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9",
                                   "r8", "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs",
                                   "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs"};

static const char *RLIMNAMES[NRLIMITS] = {"cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile",
                                          "memlock", "as", "locks", "sigpending", "msgqueue", "nice", "rtprio",
                                          "rttime"};

static const char *MMNAMES[MM_FIELDS] = {"start_code", "end_code", "start_stack", "start_data", "end_data", "start_brk",
                                         "brk", "arg_start", "arg_end", "env_start", "env_end"};

static void perms(const struct img_mapping *m, char out[5]) {
  out[0] = m->prot & 1 ? 'r' : '-';
  out[1] = m->prot & 2 ? 'w' : '-';
  out[2] = m->prot & 4 ? 'x' : '-';
  out[3] = m->flags & MF_SHARED ? 's' : 'p';
  out[4] = 0;
}

static void hex(const uint8_t *p, uint32_t n, char *out) {
  for (uint32_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
  out[2 * n] = 0;
}

struct crashinfo {
  int sig, code, errno_;
  uint64_t addr;
  int32_t sender_pid;
};

static void crash_of(struct cryo_image *img, struct crashinfo *c) {
  int32_t v[4];
  memcpy(v, img->siginfo, 16);
  c->sig = v[0];
  c->errno_ = v[1];
  c->code = v[2];
  memcpy(&c->addr, img->siginfo + 16, 8);
  memcpy(&c->sender_pid, img->siginfo + 16, 4);
}

static struct img_thread *crash_thread(struct cryo_image *img) {
  for (uint32_t i = 0; i < img->nthreads; i++)
    if (img->threads[i].tid == img->crash_tid) return &img->threads[i];
  return &img->threads[0];
}

static void fmt_time(uint64_t ns, char *out, size_t len) {
  time_t t = (time_t)(ns / 1000000000ull);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ISO 8601 UTC with milliseconds: checkpoints of a history are milliseconds apart. */
static void fmt_time_ms(uint64_t ns, char *out, size_t len) {
  char b[48];
  time_t t = (time_t)(ns / 1000000000ull);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, len, "%s.%03uZ", b, (unsigned)(ns / 1000000ull % 1000));
}

static void print_history_text(struct cryo_image *img, FILE *o) {
  if (!img->nhistory && !img->has_log) return;
  fprintf(o, "\nhistory: %u checkpoint%s, record log of %llu syscalls (%llu bytes of data; position 0 is position %llu of the recording)\n",
          img->nhistory, img->nhistory == 1 ? "" : "s", (unsigned long long)img->log.count,
          (unsigned long long)img->log.data_len, (unsigned long long)img->log.base);
  for (uint32_t i = 0; i < img->nhistory; i++) {
    struct img_history *h = &img->history[i];
    char t[64];
    fmt_time_ms(h->time_ns, t, sizeof t);
    double before = img->time_ns > h->time_ns ? (double)(img->time_ns - h->time_ns) / 1e6 : 0;
    fprintf(o, "  checkpoint %u  position %llu  %s (%.1f ms before)  pc 0x%llx  image %llu bytes at offset %llu\n", i,
            (unsigned long long)h->position, t, before, (unsigned long long)h->pc, (unsigned long long)h->len,
            (unsigned long long)h->off);
  }
}

void image_print_text(struct cryo_image *img, FILE *o) {
  char b1[64], tbuf[64];
  fmt_time(img->time_ns, tbuf, sizeof tbuf);
  fprintf(o, "cryo image, format version %u, %zu bytes\n\n", img->version, img->size);
  fprintf(o, "process %llu (%s)", (unsigned long long)img->pid, img->comm ? img->comm : "?");
  if (img->ppid) fprintf(o, ", parent %llu", (unsigned long long)img->ppid);
  fprintf(o, "\n  exe        %s\n", img->exe);
  if (img->exe_build_id_len) {
    char h[130];
    hex(img->exe_build_id, img->exe_build_id_len, h);
    fprintf(o, "  build-id   %s\n", h);
  }
  fprintf(o, "  cmdline   ");
  for (uint32_t i = 0; i < img->cmdline_len;) {
    const char *a = (const char *)img->cmdline + i;
    size_t n = strnlen(a, img->cmdline_len - i);
    fprintf(o, " %.*s", (int)n, a);
    i += (uint32_t)n + 1;
  }
  fprintf(o, "\n  cwd        %s\n", img->cwd ? img->cwd : "?");
  fprintf(o, "  taken      %s on %s, kernel %s\n", tbuf, img->hostname ? img->hostname : "?",
          img->kernel ? img->kernel : "?");
  if (img->has_creds)
    fprintf(o, "  uid/gid    %llu/%llu\n", (unsigned long long)img->creds[0], (unsigned long long)img->creds[4]);
  if (img->has_mm)
    fprintf(o, "  brk        0x%llx (heap starts at 0x%llx)\n", (unsigned long long)img->mm[6],
            (unsigned long long)img->mm[5]);
  fprintf(o, "  xcr0       0x%llx, xsave area %llu bytes\n", (unsigned long long)img->xcr0,
          (unsigned long long)img->xsave_size);
  if (img->reason == REASON_CRASH) {
    struct crashinfo c;
    crash_of(img, &c);
    struct img_thread *t = crash_thread(img);
    fprintf(o, "\nreason: crash in thread %llu: %s (%d), code %s (%d)", (unsigned long long)img->crash_tid,
            signame((uint32_t)c.sig, b1, sizeof b1), c.sig, code_name(c.sig, c.code), c.code);
    if (sig_has_addr(c.sig)) fprintf(o, ", fault address 0x%llx", (unsigned long long)c.addr);
    else if (c.code <= 0) fprintf(o, ", sent by pid %d", c.sender_pid);
    fprintf(o, ", pc 0x%llx\n", (unsigned long long)t->regs.rip);
  } else {
    fprintf(o, "\nreason: snapshot\n");
  }

  fprintf(o, "\nthreads: %u\n", img->nthreads);
  for (uint32_t i = 0; i < img->nthreads; i++) {
    struct img_thread *t = &img->threads[i];
    const unsigned long long *r = (const unsigned long long *)(const void *)&t->regs;
    fprintf(o, "  thread %u  pc 0x%llx  sp 0x%llx  sigmask 0x%llx  pending 0x%llx\n", t->tid, r[16], r[19],
            (unsigned long long)t->sigmask, (unsigned long long)t->pending);
    for (int k = 0; k < 27; k++) fprintf(o, "%s%8s 0x%016llx", k % 3 == 0 ? "    " : "  ", REGNAMES[k], r[k]), k % 3 == 2 ? fputc('\n', o) : 0;
  }

  uint64_t tot[PK_MAX + 1] = {0};
  fprintf(o, "\nmappings: %u                                         data   zero absent unread   file\n", img->nmaps);
  for (uint32_t i = 0; i < img->nmaps; i++) {
    struct img_mapping *m = &img->maps[i];
    char p[5];
    perms(m, p);
    for (int k = 1; k <= PK_MAX; k++) tot[k] += m->pages[k];
    fprintf(o, "  %012llx-%012llx %s %-11s %6llu %6llu %6llu %6llu %6llu  %s%s\n", (unsigned long long)m->start,
            (unsigned long long)m->end, p, img_map_kind_name(m->kind), (unsigned long long)m->pages[PK_DATA],
            (unsigned long long)m->pages[PK_ZERO], (unsigned long long)m->pages[PK_ABSENT],
            (unsigned long long)m->pages[PK_UNREADABLE], (unsigned long long)m->pages[PK_FILE], m->path,
            m->flags & MF_CONTENT ? " [content stored]" : "");
  }
  fprintf(o, "  total pages: data %llu, zero %llu, absent %llu, unreadable %llu, clean file %llu\n",
          (unsigned long long)tot[1], (unsigned long long)tot[2], (unsigned long long)tot[3],
          (unsigned long long)tot[4], (unsigned long long)tot[5]);

  fprintf(o, "\nfiles: %u\n", img->nfiles);
  for (uint32_t i = 0; i < img->nfiles; i++) {
    struct img_file *f = &img->files[i];
    fprintf(o, "  %3d  %-9s flags 0%llo  pos %llu  %s\n", f->fd, img_fd_type_name(f->type),
            (unsigned long long)f->flags, (unsigned long long)f->pos, f->path);
  }
  fprintf(o, "\nsignal actions: %u\n", img->nsigs);
  for (uint32_t i = 0; i < img->nsigs; i++) {
    struct img_sigaction *a = &img->sigs[i];
    fprintf(o, "  %-10s ", signame(a->signo, b1, sizeof b1));
    if (a->handler == 1) fprintf(o, "ignored\n");
    else if (a->handler == 0) fprintf(o, "default\n");
    else
      fprintf(o, "handler 0x%llx flags 0x%llx mask 0x%llx\n", (unsigned long long)a->handler,
              (unsigned long long)a->flags, (unsigned long long)a->mask);
  }
  print_history_text(img, o);
}

/* ---- JSON ---- */

static void jstr(FILE *o, const char *s, size_t n) {
  fputc('"', o);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') fprintf(o, "\\%c", c);
    else if (c == '\n') fputs("\\n", o);
    else if (c == '\t') fputs("\\t", o);
    else if (c < 0x20 || c >= 0x7f) fprintf(o, "\\u%04x", c);
    else fputc(c, o);
  }
  fputc('"', o);
}

static void jcstr(FILE *o, const char *s) { jstr(o, s ? s : "", s ? strlen(s) : 0); }

static void jlist(FILE *o, const uint8_t *p, uint32_t n) {
  fputc('[', o);
  bool first = true;
  for (uint32_t i = 0; i < n;) {
    const char *a = (const char *)p + i;
    size_t k = strnlen(a, n - i);
    if (!first) fputc(',', o);
    first = false;
    jstr(o, a, k);
    i += (uint32_t)k + 1;
  }
  fputc(']', o);
}

#define JX(v) (unsigned long long)(v)

void image_print_json(struct cryo_image *img, FILE *o) {
  char b1[64], tbuf[64], h[130];
  fmt_time(img->time_ns, tbuf, sizeof tbuf);
  fprintf(o, "{\"format\":{\"version\":%u,\"file_size\":%zu},\n\"process\":{", img->version, img->size);
  fprintf(o, "\"pid\":%llu,\"ppid\":%llu,\"comm\":", JX(img->pid), JX(img->ppid));
  jcstr(o, img->comm);
  fprintf(o, ",\"exe\":");
  jcstr(o, img->exe);
  hex(img->exe_build_id, img->exe_build_id_len, h);
  fprintf(o, ",\"exe_build_id\":\"%s\",\"cmdline\":", h);
  jlist(o, img->cmdline, img->cmdline_len);
  fprintf(o, ",\"environ\":");
  jlist(o, img->environ_, img->environ_len);
  fprintf(o, ",\"cwd\":");
  jcstr(o, img->cwd);
  fprintf(o, ",\"kernel\":");
  jcstr(o, img->kernel);
  fprintf(o, ",\"machine\":");
  jcstr(o, img->machine);
  fprintf(o, ",\"hostname\":");
  jcstr(o, img->hostname);
  fprintf(o, ",\"time_ns\":%llu,\"time\":\"%s\",\"personality\":\"0x%llx\",\"xcr0\":\"0x%llx\",\"xsave_size\":%llu",
          JX(img->time_ns), tbuf, JX(img->personality), JX(img->xcr0), JX(img->xsave_size));
  fprintf(o, ",\"shared_pending\":\"0x%llx\"", JX(img->shared_pending));
  if (img->has_creds)
    fprintf(o, ",\"creds\":{\"uid\":%llu,\"euid\":%llu,\"suid\":%llu,\"fsuid\":%llu,\"gid\":%llu,\"egid\":%llu,\"sgid\":%llu,\"fsgid\":%llu}",
            JX(img->creds[0]), JX(img->creds[1]), JX(img->creds[2]), JX(img->creds[3]), JX(img->creds[4]),
            JX(img->creds[5]), JX(img->creds[6]), JX(img->creds[7]));
  if (img->has_mm) {
    fprintf(o, ",\"mm\":{");
    for (int i = 0; i < MM_FIELDS; i++) fprintf(o, "%s\"%s\":\"0x%llx\"", i ? "," : "", MMNAMES[i], JX(img->mm[i]));
    fputc('}', o);
  }
  if (img->has_rlimits) {
    fprintf(o, ",\"rlimits\":{");
    for (int i = 0; i < NRLIMITS; i++) {
      fprintf(o, "%s\"%s\":[", i ? "," : "", RLIMNAMES[i]);
      for (int k = 0; k < 2; k++) {
        if (img->rlimits[i][k] == UINT64_MAX) fprintf(o, "%s\"unlimited\"", k ? "," : "");
        else fprintf(o, "%s%llu", k ? "," : "", JX(img->rlimits[i][k]));
      }
      fputc(']', o);
    }
    fputc('}', o);
  }
  fprintf(o, ",\"auxv\":[");
  for (uint32_t i = 0; i + 16 <= img->auxv_len; i += 16) {
    uint64_t k, v;
    memcpy(&k, img->auxv + i, 8);
    memcpy(&v, img->auxv + i + 8, 8);
    fprintf(o, "%s[%llu,\"0x%llx\"]", i ? "," : "", JX(k), JX(v));
  }
  fprintf(o, "]},\n\"reason\":");
  if (img->reason == REASON_CRASH) {
    struct crashinfo c;
    crash_of(img, &c);
    struct img_thread *t = crash_thread(img);
    fprintf(o, "{\"kind\":\"crash\",\"tid\":%llu,\"signal\":%d,\"signal_name\":\"%s\",\"code\":%d,\"code_name\":\"%s\"",
            JX(img->crash_tid), c.sig, signame((uint32_t)c.sig, b1, sizeof b1), c.code, code_name(c.sig, c.code));
    if (sig_has_addr(c.sig)) fprintf(o, ",\"address\":\"0x%llx\"", JX(c.addr));
    else fprintf(o, ",\"address\":null,\"sender_pid\":%d", c.sender_pid);
    fprintf(o, ",\"pc\":\"0x%llx\"}", JX(t->regs.rip));
  } else {
    fprintf(o, "{\"kind\":\"snapshot\"}");
  }
  fprintf(o, ",\n\"threads\":[");
  for (uint32_t i = 0; i < img->nthreads; i++) {
    struct img_thread *t = &img->threads[i];
    const unsigned long long *r = (const unsigned long long *)(const void *)&t->regs;
    fprintf(o, "%s\n{\"tid\":%u,\"pc\":\"0x%llx\",\"sp\":\"0x%llx\",\"regs\":{", i ? "," : "", t->tid, r[16], r[19]);
    for (int k = 0; k < 27; k++) fprintf(o, "%s\"%s\":\"0x%llx\"", k ? "," : "", REGNAMES[k], r[k]);
    fprintf(o, "},\"fs_base\":\"0x%llx\",\"gs_base\":\"0x%llx\",\"sigmask\":\"0x%llx\",\"pending\":\"0x%llx\",\"xsave_size\":%u",
            JX(t->fs_base), JX(t->gs_base), JX(t->sigmask), JX(t->pending), t->xsave_len);
    if (t->has_rseq)
      fprintf(o, ",\"rseq\":{\"address\":\"0x%llx\",\"size\":%u,\"signature\":\"0x%x\"}}", JX(t->rseq_addr),
              t->rseq_len, t->rseq_sig);
    else fprintf(o, ",\"rseq\":null}");
  }
  fprintf(o, "],\n\"mappings\":[");
  uint64_t tot[PK_MAX + 1] = {0};
  for (uint32_t i = 0; i < img->nmaps; i++) {
    struct img_mapping *m = &img->maps[i];
    char p[5];
    perms(m, p);
    fprintf(o, "%s\n{\"start\":\"0x%llx\",\"end\":\"0x%llx\",\"perms\":\"%s\",\"kind\":\"%s\",\"path\":", i ? "," : "",
            JX(m->start), JX(m->end), p, img_map_kind_name(m->kind));
    jcstr(o, m->path);
    hex(m->build_id, m->build_id_len, h);
    fprintf(o, ",\"offset\":\"0x%llx\",\"dev\":\"%llu:%llu\",\"inode\":%llu,\"file_size\":%llu,\"file_mtime_ns\":%llu,"
               "\"build_id\":\"%s\",\"content_stored\":%s,\"pages\":{",
            JX(m->offset), JX(major(m->dev)), JX(minor(m->dev)), JX(m->inode),
            JX(m->file_size), JX(m->mtime_ns), h, m->flags & MF_CONTENT ? "true" : "false");
    for (int k = 1; k <= PK_MAX; k++) {
      tot[k] += m->pages[k];
      fprintf(o, "%s\"%s\":%llu", k > 1 ? "," : "", img_page_kind_name((uint32_t)k), JX(m->pages[k]));
    }
    fprintf(o, "},\"runs\":[");
    for (uint32_t k = 0; k < m->nruns; k++)
      fprintf(o, "%s[\"%s\",%u,%llu]", k ? "," : "", img_page_kind_name(m->runs[k].kind), m->runs[k].npages,
              JX(m->runs[k].off));
    fprintf(o, "]}");
  }
  fprintf(o, "],\n\"totals\":{\"pages\":{");
  for (int k = 1; k <= PK_MAX; k++)
    fprintf(o, "%s\"%s\":%llu", k > 1 ? "," : "", img_page_kind_name((uint32_t)k), JX(tot[k]));
  fprintf(o, "},\"data_bytes\":%llu},\n\"files\":[", JX(tot[PK_DATA] * IMG_PAGE));
  for (uint32_t i = 0; i < img->nfiles; i++) {
    struct img_file *f = &img->files[i];
    fprintf(o, "%s\n{\"fd\":%d,\"type\":\"%s\",\"path\":", i ? "," : "", f->fd, img_fd_type_name(f->type));
    jcstr(o, f->path);
    fprintf(o, ",\"flags\":\"0%llo\",\"pos\":%llu,\"size\":%llu,\"mtime_ns\":%llu}", JX(f->flags), JX(f->pos),
            JX(f->size), JX(f->mtime_ns));
  }
  fprintf(o, "],\n\"signals\":[");
  for (uint32_t i = 0; i < img->nsigs; i++) {
    struct img_sigaction *a = &img->sigs[i];
    fprintf(o, "%s\n{\"signal\":%u,\"name\":\"%s\",\"disposition\":\"%s\",\"handler\":\"0x%llx\",\"flags\":\"0x%llx\","
               "\"restorer\":\"0x%llx\",\"mask\":\"0x%llx\"}",
            i ? "," : "", a->signo, signame(a->signo, b1, sizeof b1),
            a->handler == 0 ? "default" : a->handler == 1 ? "ignore" : "handler", JX(a->handler), JX(a->flags),
            JX(a->restorer), JX(a->mask));
  }
  fprintf(o, "],\n\"history\":");
  if (!img->nhistory && !img->has_log) {
    fprintf(o, "null}\n");
    return;
  }
  fprintf(o, "{\"checkpoints\":[");
  for (uint32_t i = 0; i < img->nhistory; i++) {
    struct img_history *hh = &img->history[i];
    char t[64];
    fmt_time_ms(hh->time_ns, t, sizeof t);
    fprintf(o, "%s\n{\"index\":%u,\"position\":%llu,\"time_ns\":%llu,\"time\":\"%s\",\"pc\":\"0x%llx\",\"offset\":%llu,\"length\":%llu}",
            i ? "," : "", i, JX(hh->position), JX(hh->time_ns), t, JX(hh->pc), JX(hh->off), JX(hh->len));
  }
  fprintf(o, "],\"log\":{\"base\":%llu,\"entries\":%llu,\"data_bytes\":%llu,\"bytes\":%llu}}}\n", JX(img->log.base),
          JX(img->log.count), JX(img->log.data_len), JX(img->log_raw_len));
}

/* ---- for the adapter (through koffi): JSON and raw thread state ---- */

/* A printer's output as a malloc'd string. */
static int print_to_string(struct cryo_image *img, void (*print)(struct cryo_image *, FILE *), char **out) {
  if (!img || !out) return cryo_fail(CRYO_EINVAL, "cryo_image_json/text: null argument");
  size_t len = 0;
  *out = NULL;
  FILE *f = open_memstream(out, &len);
  if (!f) return cryo_fail_errno("open_memstream");
  print(img, f);
  if (fclose(f) != 0) {
    free(*out);
    *out = NULL;
    return cryo_fail(CRYO_EFAIL, "out of memory describing the image");
  }
  return CRYO_OK;
}

CRYO_API int cryo_image_json(struct cryo_image *img, char **out) { return print_to_string(img, image_print_json, out); }

CRYO_API int cryo_image_text(struct cryo_image *img, char **out) { return print_to_string(img, image_print_text, out); }

CRYO_API void cryo_image_free_string(char *s) { free(s); }

static struct img_thread *thread_of(struct cryo_image *img, int32_t tid) {
  for (uint32_t i = 0; i < img->nthreads; i++)
    if ((int32_t)img->threads[i].tid == tid) return &img->threads[i];
  return NULL;
}

CRYO_API int cryo_image_thread_regs(struct cryo_image *img, int32_t tid, uint64_t *regs) {
  if (!img || !regs) return cryo_fail(CRYO_EINVAL, "cryo_image_thread_regs: null argument");
  struct img_thread *t = thread_of(img, tid);
  if (!t) return cryo_fail(CRYO_ENOTHREAD, "the image has no thread %d", tid);
  memcpy(regs, &t->regs, sizeof t->regs);
  return CRYO_OK;
}

CRYO_API int cryo_image_thread_xstate(struct cryo_image *img, int32_t tid, uint8_t *buf, size_t cap, size_t *len) {
  if (!img || !len) return cryo_fail(CRYO_EINVAL, "cryo_image_thread_xstate: null argument");
  struct img_thread *t = thread_of(img, tid);
  if (!t) return cryo_fail(CRYO_ENOTHREAD, "the image has no thread %d", tid);
  *len = t->xsave_len;
  if (!t->xsave_len) return cryo_fail(CRYO_ENOENT, "thread %d has no xsave area in the image", tid);
  if (cap < t->xsave_len || !buf)
    return cryo_fail(CRYO_EINVAL, "xstate of thread %d is %u bytes, buffer holds %zu", tid, t->xsave_len, cap);
  memcpy(buf, t->xsave, t->xsave_len);
  return CRYO_OK;
}
