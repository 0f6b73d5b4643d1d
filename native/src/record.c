/* Recording the nondeterministic inputs of a run, and replaying them.
 *
 * A seccomp filter injected into the debuggee stops it (SECCOMP_RET_TRACE) only at
 * the syscalls whose results come from outside: reads and writes, time, randomness,
 * process ids, sleeps, polls. Everything else runs at full speed.
 * Recording: the syscall runs; at its exit the result and the memory it wrote are
 * appended to the log. Replaying (after a restore, re-executing toward a position):
 * the syscall is annulled (orig_rax = -1) and its recorded result and memory are put
 * back, so the program sees the same inputs and its output does not appear twice.
 * Reads and writes of regular files are the exception: they run again, which gives
 * the same bytes and keeps file offsets right. A syscall that does not match the log
 * (another number) ends the replay with a DIVERGED stop: the past is not exact from
 * there, and execution goes on live. While recording, the commonest of these syscalls
 * do not stop at all: they go through the in-process buffer of sysbuf.c, which the
 * tracer drains into this log at every stop (record_buffered). */
#include "internal.h"
#include "image.h"

#include <elf.h>
#include <sched.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#ifndef PTRACE_EVENT_SECCOMP
#define PTRACE_EVENT_SECCOMP 7
#endif

/* The syscalls that reach the tracer, x86-64 numbers. */
static const int RECORDED[] = {
    SYS_read, SYS_write, SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev, SYS_sendto, SYS_recvfrom, SYS_sendmsg,
    SYS_recvmsg, SYS_getpid, SYS_getppid, SYS_gettid, SYS_time, SYS_gettimeofday, SYS_clock_gettime, SYS_getrandom,
    SYS_nanosleep, SYS_clock_nanosleep, SYS_poll, SYS_ppoll, SYS_select, SYS_pselect6, SYS_epoll_wait,
    SYS_epoll_pwait, SYS_sysinfo, SYS_getrusage, SYS_times,
    SYS_sched_getaffinity, /* while pinned (pin.c), it answers the program's own mask */
    SYS_restart_syscall, /* the rest of a recorded sleep the kernel interrupted (rec_restart) */
    /* processes: a replay makes no child (the fork returns the recorded pid) and waits
     * for none (the wait returns the recorded status); clone is filtered on its flags
     * (build_filter), clone3 here (record_on_seccomp): a new thread is not recorded */
    SYS_fork, SYS_vfork, SYS_clone3, SYS_wait4, SYS_waitid,
};
#define NRECORDED (sizeof RECORDED / sizeof RECORDED[0])

/* Log entries that are not syscalls: an rdtsc (ret: the counter), and a signal from
 * outside delivered to the program (ret: its number), which a replay cannot give at the
 * same instruction: reaching it ends the replay with a DIVERGED stop that says so. */
#define REC_RDTSC 0x10000u
#define REC_SIGNAL 0x10001u
/* args[0] of a REC_SIGNAL: it came at the exit of the syscall logged just before it (a
 * write's SIGPIPE): an instruction a replay reaches too, where it is sent again */
#define REC_SIG_AT_EXIT 1u

static int log_push(struct cryo_session *s, const struct rec_entry *e);

/* A signal the program's own instruction raised (a fault, a trap) comes again in a
 * replay; any other (kill, a timer, a child's end, a broken pipe) does not. */
static bool signal_from_outside(int sig, const siginfo_t *si) {
  bool fault = sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP || sig == SIGSYS;
  return !(fault && si->si_signo == sig && si->si_code > 0);
}

/* Whether delivering sig changes what the program does: a handler runs, or the default
 * action ends or stops it. An ignored signal (SIG_IGN, or a default of ignoring, as a
 * child's SIGCHLD) does nothing, in the recorded run as in a replay without it. */
static bool signal_matters(pid_t pid, int sig) {
  uint64_t cgt = 0, ign = 0;
  if (!proc_status(pid, "SigCgt", 16, &cgt)) return true;
  proc_status(pid, "SigIgn", 16, &ign);
  uint64_t bit = 1ull << (sig - 1);
  if (cgt & bit) return true;
  if (ign & bit) return false;
  return sig != SIGCHLD && sig != SIGURG && sig != SIGWINCH && sig != SIGCONT;
}

void record_on_signal(struct cryo_session *s, struct thread *t, int sig) {
  if (!sig || !s->rec_filter || !signal_from_outside(sig, &t->si) || !signal_matters(t->tid, sig)) return;
  if (s->rec_mode == REC_REPLAY && s->rec_cursor < s->rec_n) {
    /* delivered in the replay too (sent again): where the recorded run had it, it counts */
    struct rec_entry *e = &s->rec_log[s->rec_cursor];
    if (e->nr == REC_SIGNAL && e->ret == sig && ++s->rec_cursor == s->rec_n) s->rec_mode = REC_RECORD;
    return;
  }
  if (s->rec_mode != REC_RECORD) return;
  struct rec_entry e = {.nr = REC_SIGNAL, .ret = sig, .out_off = s->rec_blob_len, .out_len = 0};
  /* at the exit of the syscall logged last (orig_rax is -1 at an interrupt's or a
   * fault's; an interrupted syscall, to be restarted, has no entry yet) */
  struct user_regs_struct r;
  if (s->rec_n && !t->rec_pending && regs_get(t->tid, &r) == CRYO_OK && (int64_t)r.orig_rax >= 0 &&
      s->rec_log[s->rec_n - 1].nr == (uint32_t)r.orig_rax && !syscall_restarts((int64_t)r.rax))
    e.args[0] = REC_SIG_AT_EXIT;
  log_push(s, &e);
  s->rec_cursor = s->rec_n;
}

static bool fd_is_file(pid_t pid, long fd) {
  char path[64];
  struct stat st;
  snprintf(path, sizeof path, "/proc/%d/fd/%ld", pid, fd);
  return stat(path, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

/* The log and its data live in their own mappings. A drain of the syscall buffer
 * appends thousands of entries while the debuggee waits: realloc copied the log at each
 * doubling and then faulted its new pages one at a time. mremap moves page tables
 * instead of bytes, and MADV_POPULATE_WRITE (Linux 5.14; older kernels fault the pages
 * as before) maps the new part at once. */
static size_t page_round(size_t n) { return (n + 4095) & ~(size_t)4095; }

static void *log_grow(void *p, size_t old_bytes, size_t new_bytes) {
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
  size_t o = p ? page_round(old_bytes) : 0, n = page_round(new_bytes);
  void *q = p ? mremap(p, o, n, MREMAP_MAYMOVE) : mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (q == MAP_FAILED) return NULL;
  if (n > o) madvise((uint8_t *)q + o, n - o, MADV_POPULATE_WRITE);
  return q;
}

static void log_release(void *p, size_t bytes) {
  if (p) munmap(p, page_round(bytes));
}

/* The blob of recorded memory: (u64 addr, u32 len, data) runs. The bytes are read from
 * pid, or given (data) when the syscall buffer already copied them. */
static int blob_put(struct cryo_session *s, pid_t pid, uint64_t addr, uint64_t len, const uint8_t *data) {
  if (!addr || !len) return CRYO_OK;
  if (len > (64u << 20)) return cryo_fail(CRYO_EINVAL, "a syscall wrote %llu bytes: too much to record", (unsigned long long)len);
  size_t need = s->rec_blob_len + 12 + len;
  if (need > s->rec_blob_cap) {
    size_t cap = s->rec_blob_cap ? s->rec_blob_cap : 65536;
    while (cap < need) cap *= 2;
    uint8_t *b = log_grow(s->rec_blob, s->rec_blob_cap, cap);
    if (!b) return cryo_fail(CRYO_EFAIL, "out of memory for the syscall log");
    s->rec_blob = b;
    s->rec_blob_cap = cap;
  }
  uint8_t *p = s->rec_blob + s->rec_blob_len;
  uint32_t l32 = (uint32_t)len;
  memcpy(p, &addr, 8);
  memcpy(p + 8, &l32, 4);
  if (data) memcpy(p + 12, data, len);
  else if (mem_read_raw(s, pid, addr, p + 12, len) != (ssize_t)len) memset(p + 12, 0, len);
  s->rec_blob_len = need;
  return CRYO_OK;
}

static int blob_add(struct cryo_session *s, pid_t pid, uint64_t addr, uint64_t len) {
  return blob_put(s, pid, addr, len, NULL);
}

static uint32_t read_u32(struct cryo_session *s, pid_t pid, uint64_t addr) {
  uint32_t v = 0;
  if (addr) mem_read_raw(s, pid, addr, &v, 4);
  return v;
}

/* What a syscall wrote into the program's memory, given its result. */
static int record_outputs(struct cryo_session *s, pid_t pid, const struct rec_entry *e) {
  const uint64_t *a = e->args;
  int64_t r = e->ret;
  if (r < 0) return CRYO_OK;
  switch (e->nr) {
  case SYS_read:
  case SYS_pread64:
  case SYS_getrandom:
    return blob_add(s, pid, e->nr == SYS_getrandom ? a[0] : a[1], (uint64_t)r);
  case SYS_recvfrom: {
    int rc = blob_add(s, pid, a[1], (uint64_t)r);
    if (rc == CRYO_OK && a[5]) rc = blob_add(s, pid, a[5], 4);
    if (rc == CRYO_OK && a[4]) rc = blob_add(s, pid, a[4], read_u32(s, pid, a[5]));
    return rc;
  }
  case SYS_readv: {
    uint64_t left = (uint64_t)r;
    for (uint64_t i = 0; i < a[2] && left; i++) {
      struct iovec v;
      if (mem_read_raw(s, pid, a[1] + i * sizeof v, &v, sizeof v) != (ssize_t)sizeof v) break;
      uint64_t n = v.iov_len < left ? v.iov_len : left;
      int rc = blob_add(s, pid, (uint64_t)(uintptr_t)v.iov_base, n);
      if (rc) return rc;
      left -= n;
    }
    return CRYO_OK;
  }
  case SYS_recvmsg: {
    struct msghdr m;
    if (mem_read_raw(s, pid, a[1], &m, sizeof m) != (ssize_t)sizeof m) return CRYO_OK;
    int rc = blob_add(s, pid, a[1], sizeof m); /* namelen, controllen and flags come back */
    uint64_t left = (uint64_t)r;
    for (size_t i = 0; rc == CRYO_OK && i < m.msg_iovlen && left; i++) {
      struct iovec v;
      if (mem_read_raw(s, pid, (uint64_t)(uintptr_t)m.msg_iov + i * sizeof v, &v, sizeof v) != (ssize_t)sizeof v) break;
      uint64_t n = v.iov_len < left ? v.iov_len : left;
      rc = blob_add(s, pid, (uint64_t)(uintptr_t)v.iov_base, n);
      left -= n;
    }
    if (rc == CRYO_OK && m.msg_name) rc = blob_add(s, pid, (uint64_t)(uintptr_t)m.msg_name, m.msg_namelen);
    if (rc == CRYO_OK && m.msg_control) rc = blob_add(s, pid, (uint64_t)(uintptr_t)m.msg_control, m.msg_controllen);
    return rc;
  }
  case SYS_clock_gettime:
    return blob_add(s, pid, a[1], 16);
  case SYS_sched_getaffinity:
    return blob_add(s, pid, a[2], (uint64_t)r);
  case SYS_gettimeofday: {
    int rc = blob_add(s, pid, a[0], 16);
    return rc == CRYO_OK ? blob_add(s, pid, a[1], 8) : rc;
  }
  case SYS_time:
    return blob_add(s, pid, a[0], 8);
  case SYS_nanosleep:
    return blob_add(s, pid, a[1], 16);
  case SYS_clock_nanosleep:
    return blob_add(s, pid, a[3], 16);
  case SYS_poll:
  case SYS_ppoll:
    return blob_add(s, pid, a[0], a[1] * 8);
  case SYS_select:
  case SYS_pselect6: {
    uint64_t setlen = (a[0] + 63) / 64 * 8;
    int rc = CRYO_OK;
    for (int i = 1; i <= 3 && rc == CRYO_OK; i++) rc = blob_add(s, pid, a[i], setlen);
    if (rc == CRYO_OK && e->nr == SYS_select) rc = blob_add(s, pid, a[4], 16);
    return rc;
  }
  case SYS_epoll_wait:
  case SYS_epoll_pwait:
    return blob_add(s, pid, a[1], (uint64_t)r * 12);
  case SYS_sysinfo:
    return blob_add(s, pid, a[0], 112);
  case SYS_getrusage:
    return blob_add(s, pid, a[1], 144);
  case SYS_times:
    return blob_add(s, pid, a[0], 32);
  case SYS_clone:
    return a[0] & CLONE_PARENT_SETTID ? blob_add(s, pid, a[2], 4) : CRYO_OK;
  case SYS_clone3: {
    uint64_t ca[4] = {0}; /* flags, pidfd, child_tid, parent_tid */
    if (mem_read_raw(s, pid, a[0], ca, sizeof ca) != (ssize_t)sizeof ca) return CRYO_OK;
    int rc = ca[0] & CLONE_PARENT_SETTID ? blob_add(s, pid, ca[3], 4) : CRYO_OK;
    if (rc == CRYO_OK && (ca[0] & CLONE_PIDFD)) rc = blob_add(s, pid, ca[1], 4);
    return rc;
  }
  case SYS_wait4: {
    int rc = r > 0 && a[1] ? blob_add(s, pid, a[1], 4) : CRYO_OK;
    return rc == CRYO_OK && a[3] ? blob_add(s, pid, a[3], 144) : rc;
  }
  case SYS_waitid: {
    int rc = a[2] ? blob_add(s, pid, a[2], 128) : CRYO_OK;
    return rc == CRYO_OK && a[4] ? blob_add(s, pid, a[4], 144) : rc;
  }
  default:
    return CRYO_OK;
  }
}

/* Whether a replayed syscall is annulled (its result given back) or run again. */
static bool annul_on_replay(pid_t pid, const struct rec_entry *e) {
  switch (e->nr) {
  case SYS_read:
  case SYS_write:
  case SYS_pread64:
  case SYS_pwrite64:
  case SYS_readv:
  case SYS_writev:
    return !fd_is_file(pid, (long)e->args[0]);
  default:
    return true;
  }
}

static int log_push(struct cryo_session *s, const struct rec_entry *e) {
  if (s->rec_n == s->rec_cap) {
    size_t cap = s->rec_cap ? s->rec_cap * 2 : 4096;
    struct rec_entry *n = log_grow(s->rec_log, s->rec_cap * sizeof *n, cap * sizeof *n);
    if (!n) return cryo_fail(CRYO_EFAIL, "out of memory for the syscall log");
    s->rec_log = n;
    s->rec_cap = cap;
  }
  s->rec_log[s->rec_n++] = *e;
  return CRYO_OK;
}

/* A syscall about to run while recording: its exit stop completes the entry. */
static void begin_entry(struct thread *t, const struct user_regs_struct *r) {
  t->rec_pending = true;
  t->rec_entry.nr = (uint32_t)r->orig_rax;
  uint64_t a[6] = {r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9};
  memcpy(t->rec_entry.args, a, sizeof a);
}

/* A seccomp stop. Returns the ptrace request to resume with (PTRACE_SYSCALL to see
 * the exit of a recorded syscall, PTRACE_CONT otherwise), or -1 for a divergence
 * that must be reported. */
/* The interrupted syscall of t whose restart did not come (a signal handler ran: the
 * program saw EINTR): logged as it ended. */
static void restart_abandoned(struct cryo_session *s, struct thread *t) {
  if (!t->rec_restart) return;
  t->rec_restart = false;
  struct rec_entry e = t->rec_entry;
  e.ret = -EINTR;
  e.out_off = s->rec_blob_len;
  if (record_outputs(s, t->tid, &e) != CRYO_OK) dbg("record: %s", cryo_last_error());
  e.out_len = s->rec_blob_len - e.out_off;
  log_push(s, &e);
  s->rec_cursor = s->rec_n;
}

int record_on_seccomp(struct cryo_session *s, struct thread *t) {
  struct user_regs_struct r;
  if (regs_get(t->tid, &r) != CRYO_OK) return PTRACE_CONT;
  if (r.orig_rax == SYS_exit_group) return PTRACE_CONT; /* stopped only to drain the buffer (build_filter) */
  if (r.orig_rax == SYS_restart_syscall) {
    /* the rest of a recorded syscall: its exit completes the entry begun before, under the
     * syscall's own number (a replay annuls that syscall, which then never restarts) */
    if (!t->rec_restart || s->rec_mode != REC_RECORD) return PTRACE_CONT;
    t->rec_restart = false;
    t->rec_pending = true;
    return PTRACE_SYSCALL;
  }
  if (r.orig_rax == SYS_clone3) {
    uint64_t flags = 0;
    if (mem_read_raw(s, t->tid, r.rdi, &flags, sizeof flags) == (ssize_t)sizeof flags && (flags & CLONE_THREAD))
      return PTRACE_CONT; /* a thread: not recorded, in a replay as in the recorded run */
  }
  restart_abandoned(s, t);
  if (s->rec_mode == REC_REPLAY && s->rec_cursor < s->rec_n) {
    struct rec_entry *e = &s->rec_log[s->rec_cursor];
    if (e->nr != (uint32_t)r.orig_rax) {
      dbg("replay diverged at entry %zu: syscall %llu, log has %u", s->rec_cursor, (unsigned long long)r.orig_rax, e->nr);
      /* the recorded run got a signal from outside here: not replayed, so not exact */
      s->rec_diverged_nr = e->nr == REC_SIGNAL ? -(int)e->ret : (int)r.orig_rax;
      s->rec_n = s->rec_cursor; /* the old future is gone */
      s->rec_blob_len = s->rec_n ? s->rec_log[s->rec_n - 1].out_off + s->rec_log[s->rec_n - 1].out_len : 0;
      s->rec_mode = REC_RECORD;
      begin_entry(t, &r); /* this syscall runs live and is recorded when the user goes on */
      return -1;
    }
    s->rec_cursor++;
    if (s->rec_cursor == s->rec_n) s->rec_mode = REC_RECORD; /* the present: live from here */
    /* the signal the recorded run got at this syscall's exit: sent now, it is delivered
     * there again (record_on_signal then counts its entry) */
    if (s->rec_cursor < s->rec_n && s->rec_log[s->rec_cursor].nr == REC_SIGNAL &&
        s->rec_log[s->rec_cursor].args[0] == REC_SIG_AT_EXIT)
      syscall(SYS_tgkill, s->pid, t->tid, (int)s->rec_log[s->rec_cursor].ret);
    if (!annul_on_replay(t->tid, e)) return PTRACE_CONT;
    /* annul: skip the syscall, give back its result and what it wrote */
    r.orig_rax = (unsigned long long)-1;
    r.rax = (unsigned long long)e->ret;
    regs_set(t->tid, &r);
    for (size_t off = e->out_off; off < e->out_off + e->out_len;) {
      uint64_t addr;
      uint32_t len;
      memcpy(&addr, s->rec_blob + off, 8);
      memcpy(&len, s->rec_blob + off + 8, 4);
      mem_write_raw(s, t->tid, addr, s->rec_blob + off + 12, len);
      off += 12 + len;
    }
    s->rec_replayed++;
    return PTRACE_CONT;
  }
  if (s->rec_mode != REC_RECORD) return PTRACE_CONT;
  begin_entry(t, &r);
  return PTRACE_SYSCALL;
}

/* The exit of a syscall seen at its seccomp stop while recording. */
void record_on_syscall_exit(struct cryo_session *s, struct thread *t) {
  if (!t->rec_pending) return;
  t->rec_pending = false;
  struct user_regs_struct r;
  if (regs_get(t->tid, &r) != CRYO_OK) return;
  int64_t ret = (int64_t)r.rax;
  /* interrupted and about to restart: its seccomp stop will come again, or (a sleep's
   * restart block) restart_syscall's */
  if (ret == -516) t->rec_restart = true;
  if (syscall_restarts(ret)) return;
  struct rec_entry e = t->rec_entry;
  e.ret = ret;
  e.out_off = s->rec_blob_len;
  if (e.nr == SYS_sched_getaffinity) pin_getaffinity_exit(s, t->tid, &e);
  if (record_outputs(s, t->tid, &e) != CRYO_OK) dbg("record: %s", cryo_last_error());
  e.out_len = s->rec_blob_len - e.out_off;
  log_push(s, &e);
  s->rec_cursor = s->rec_n;
  s->rec_trapped++;
}

/* A syscall the program made through the syscall buffer (sysbuf.c), logged as its
 * trapped exit would have been: the same entry, the same (address, length) runs. data
 * holds the outlen bytes it wrote at outaddr; NULL when they are read from pid (the
 * thread stopped before the wrapper copied them). */
void record_buffered(struct cryo_session *s, pid_t pid, const struct rec_entry *e0, uint64_t outaddr, uint32_t outlen,
                     const uint8_t *data) {
  struct rec_entry e = *e0;
  if (s->rec_mode == REC_REPLAY && s->rec_cursor < s->rec_n) {
    /* it ran live during a replay (a copy of a thread caught inside the wrapper): the
     * log's next entry is that syscall, unless the run diverged there */
    if (s->rec_log[s->rec_cursor].nr == e.nr) {
      if (++s->rec_cursor == s->rec_n) s->rec_mode = REC_RECORD;
      return;
    }
    dbg("replay diverged at entry %zu: buffered syscall %u, log has %u", s->rec_cursor, e.nr, s->rec_log[s->rec_cursor].nr);
    s->rec_n = s->rec_cursor;
    s->rec_blob_len = s->rec_n ? s->rec_log[s->rec_n - 1].out_off + s->rec_log[s->rec_n - 1].out_len : 0;
    s->rec_mode = REC_RECORD;
  }
  if (s->rec_mode == REC_OFF) return;
  e.out_off = s->rec_blob_len;
  int rc = data ? (outlen ? blob_put(s, pid, outaddr, outlen, data) : CRYO_OK) : record_outputs(s, pid, &e);
  if (rc != CRYO_OK) dbg("record: %s", cryo_last_error());
  e.out_len = s->rec_blob_len - e.out_off;
  log_push(s, &e);
  s->rec_cursor = s->rec_n;
  s->rec_buffered++;
}

/* The filter: RET_TRACE for the syscalls above, ALLOW for the rest (and for another
 * architecture's syscalls, which it does not judge). A recorded syscall made from the
 * syscall buffer's instruction (ip: the address after it) is allowed: the buffer logs
 * it. Filters stack and the strictest answer wins, so that exception has to be here. */
static size_t build_filter(struct sock_filter *f, uint64_t ip) {
  size_t n = 0;
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  /* clone: traced when it makes a process, not a thread */
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 4);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 1, 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  /* with the buffer, exit_group stops too (not recorded): what the program buffered
   * since its last stop goes into the log before its memory is gone */
  size_t nj = NRECORDED + (ip ? 1 : 0);
  for (size_t i = 0; i < nj; i++)
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, i < NRECORDED ? (uint32_t)RECORDED[i] : SYS_exit_group,
                                          (uint8_t)(nj - i), 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  if (ip) {
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)ip, 0, 3);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4);
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(ip >> 32), 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  }
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
  return n;
}

/* rdtsc and rdtscp under PR_TSC_SIGSEGV fault with SIGSEGV: emulate them, recording
 * the value given to the program (replaying it later). Returns true when handled. */

bool record_on_sigsegv(struct cryo_session *s, struct thread *t) {
  if (!s->rec_filter || s->rec_mode == REC_OFF) return false;
  struct user_regs_struct r;
  if (regs_get(t->tid, &r) != CRYO_OK) return false;
  uint8_t code[3] = {0};
  if (mem_read_raw(s, t->tid, r.rip, code, 3) < 2) return false;
  int len = code[0] == 0x0f && code[1] == 0x31 ? 2 : code[0] == 0x0f && code[1] == 0x01 && code[2] == 0xf9 ? 3 : 0;
  if (!len) return false;
  uint64_t tsc;
  if (s->rec_mode == REC_REPLAY && s->rec_cursor < s->rec_n) {
    struct rec_entry *e = &s->rec_log[s->rec_cursor];
    if (e->nr != REC_RDTSC) return false; /* divergence: the program sees the fault as a signal */
    tsc = (uint64_t)e->ret;
    if (++s->rec_cursor == s->rec_n) s->rec_mode = REC_RECORD;
    s->rec_replayed++;
  } else {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    tsc = ((uint64_t)hi << 32) | lo;
    struct rec_entry e = {.nr = REC_RDTSC, .ret = (int64_t)tsc, .out_off = s->rec_blob_len, .out_len = 0};
    log_push(s, &e);
    s->rec_cursor = s->rec_n;
  }
  r.rax = tsc & 0xffffffffu;
  r.rdx = tsc >> 32;
  if (len == 3) r.rcx = 0; /* TSC_AUX */
  r.rip += (unsigned long long)len;
  return regs_set(t->tid, &r) == CRYO_OK;
}

/* Puts the kernel's own vDSO code back into pid (ours: the vDSO is the same image in
 * every process of this kernel), so that an image of a recorded process carries the
 * code a restore checks and maps, not our patched entry points. */
int record_unpatch_vdso(struct cryo_session *s, pid_t pid) {
  if (!s->rec_filter) return CRYO_OK;
  char path[64], line[512];
  unsigned long long lo = 0, hi = 0, mlo = 0, mhi = 0;
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *f = fopen(path, "r");
  if (!f) return cryo_fail_errno("open %s", path);
  while (fgets(line, sizeof line, f))
    if (strstr(line, "[vdso]") && sscanf(line, "%llx-%llx", &lo, &hi) == 2) break;
  fclose(f);
  f = fopen("/proc/self/maps", "r");
  if (!f) return cryo_fail_errno("open /proc/self/maps");
  while (fgets(line, sizeof line, f))
    if (strstr(line, "[vdso]") && sscanf(line, "%llx-%llx", &mlo, &mhi) == 2) break;
  fclose(f);
  if (!lo || !mlo || hi - lo != mhi - mlo) return CRYO_OK; /* nothing to put back, or not the same vDSO */
  return mem_write_raw(s, pid, lo, (const void *)(uintptr_t)mlo, (size_t)(hi - lo));
}

/* The program's own code in pid, for an image: the kernel's vDSO, libc's syscall sites. */
int record_unpatch(struct cryo_session *s, pid_t pid) {
  int rc = record_unpatch_vdso(s, pid);
  return rc == CRYO_OK ? sysbuf_unpatch_sites(s, pid) : rc;
}

/* Ours back after an image was written, since recording goes on. */
int record_repatch(struct cryo_session *s, pid_t pid) {
  if (!s->rec_filter) return CRYO_OK;
  int rc = record_patch_vdso(s, pid);
  return rc == CRYO_OK ? sysbuf_patch_sites(s, pid) : rc;
}

/* The vDSO answers time calls without entering the kernel, so seccomp never sees them.
 * Rewrite its entry points into real syscalls (mov $nr,%eax; syscall; ret): then they
 * are recorded and replayed like the rest. The vDSO is private to the process, so this
 * touches nothing else; forks and checkpoints inherit the patched copy. */
int record_patch_vdso(struct cryo_session *s, pid_t pid) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *f = fopen(path, "r");
  if (!f) return cryo_fail_errno("open %s", path);
  unsigned long long lo = 0, hi = 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, "[vdso]") && sscanf(line, "%llx-%llx", &lo, &hi) == 2) break;
  fclose(f);
  if (!lo || hi <= lo || hi - lo > (1u << 20)) return CRYO_OK; /* no vDSO: nothing to do */
  size_t len = (size_t)(hi - lo);
  uint8_t *img = malloc(len);
  if (!img) return cryo_fail(CRYO_EFAIL, "out of memory");
  int rc = CRYO_OK;
  if (mem_read_raw(s, pid, lo, img, len) != (ssize_t)len) {
    rc = cryo_fail(CRYO_EFAIL, "cannot read the vDSO of %d at 0x%llx", pid, lo);
    goto out;
  }
  Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
  if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > len) {
    rc = cryo_fail(CRYO_EFAIL, "the vDSO of %d is not an ELF image this engine can read", pid);
    goto out;
  }
  Elf64_Shdr *sh = (Elf64_Shdr *)(img + eh->e_shoff);
  uint64_t base = 0; /* the vDSO is linked at its first PT_LOAD's address */
  Elf64_Phdr *ph = (Elf64_Phdr *)(img + eh->e_phoff);
  for (int i = 0; i < eh->e_phnum && eh->e_phoff + (uint64_t)(i + 1) * sizeof *ph <= len; i++)
    if (ph[i].p_type == PT_LOAD) {
      base = ph[i].p_vaddr;
      break;
    }
  static const struct {
    const char *name;
    int nr;
  } calls[] = {{"clock_gettime", SYS_clock_gettime}, {"gettimeofday", SYS_gettimeofday}, {"time", SYS_time}, {"getcpu", SYS_getcpu}};
  for (int i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum) continue;
    Elf64_Shdr *str = &sh[sh[i].sh_link];
    if (sh[i].sh_offset + sh[i].sh_size > len || str->sh_offset + str->sh_size > len) continue;
    Elf64_Sym *sym = (Elf64_Sym *)(img + sh[i].sh_offset);
    size_t n = sh[i].sh_size / sizeof *sym;
    for (size_t k = 0; k < n; k++) {
      if (sym[k].st_name >= str->sh_size || ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC || sym[k].st_size < 8) continue;
      const char *name = (const char *)img + str->sh_offset + sym[k].st_name;
      if (!strncmp(name, "__vdso_", 7)) name += 7;
      for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
        if (strcmp(name, calls[c].name)) continue;
        uint8_t stub[18] = {0xb8, 0, 0, 0, 0, 0x0f, 0x05, 0xc3};
        size_t slen = 8;
        uint32_t nr = (uint32_t)calls[c].nr;
        memcpy(stub + 1, &nr, 4);
        uint64_t to = sysbuf_vdso_entry(s);
        if (to && (nr == SYS_clock_gettime || nr == SYS_time) && sym[k].st_size >= 18) {
          /* through the syscall buffer: movabs $wrapper,%r11; jmp *%r11 (it returns for us) */
          static const uint8_t jmp[13] = {0x49, 0xbb, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0xff, 0xe3};
          memcpy(stub + 5, jmp, sizeof jmp);
          memcpy(stub + 7, &to, 8);
          slen = 18;
        }
        uint64_t at = lo + sym[k].st_value - base;
        if (at + slen > hi) continue;
        rc = mem_write_raw(s, pid, at, stub, slen);
        if (rc != CRYO_OK) goto out;
      }
    }
  }
out:
  free(img);
  return rc;
}

static int do_stop_at(struct cryo_session *s, void *arg) {
  s->rec_stop_at = *(uint64_t *)arg;
  sysbuf_sync(s); /* it may be running: its next recorded syscall has to trap */
  return CRYO_OK;
}

CRYO_API int cryo_record_stop_at(cryo_session *s, uint64_t pos) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_record_stop_at: null session");
  return run_on_tracer(s, do_stop_at, &pos);
}

/* Some hypervisors do not honour the guest's CR4.TSD, and PR_TSC_SIGSEGV then leaves
 * rdtsc working: a child sharing our memory (no fork of a large host such as Node) sets
 * it on itself and reads the counter; a SIGSEGV death means rdtsc can be recorded. */
static int tsc_probe_main(void *arg) {
  (void)arg;
  struct kernel_sigaction dfl = {SIG_DFL, 0, NULL, 0};
  raw_syscall(SYS_rt_sigaction, SIGSEGV, (long)&dfl, 0, 8);
  uint64_t none = 0;
  raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8);
  raw_syscall(SYS_prctl, PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0);
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  raw_syscall(SYS_exit, 0, 0, 0, 0);
  return 0;
}

bool tsc_traps(void) {
  static _Atomic int known = -1;
  if (known >= 0) return known;
  _Alignas(16) unsigned char stack[8192];
  /* exit signal 0: no SIGCHLD for the host; __WALL reaps it (a child of this thread only) */
  pid_t pid = clone_vm(tsc_probe_main, NULL, stack, sizeof stack, 0);
  int st = 0;
  if (pid < 0 || wait_for_stop(NULL, pid, &st) != CRYO_OK) return false;
  known = WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
  dbg("rdtsc %s under PR_TSC_SIGSEGV", known ? "faults" : "does not fault");
  return known;
}

static int do_record_start(struct cryo_session *s, void *arg) {
  (void)arg;
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  if (any_running(s)) return cryo_fail(CRYO_ERUNNING, "recording starts while the process is stopped");
  if (s->rec_filter) {
    s->rec_mode = REC_RECORD;
    return CRYO_OK;
  }
  pid_t tid = s->threads[0].tid;
  /* the syscall buffer's region first: the filter names its instruction */
  int rc = sysbuf_setup(s, tid, 0);
  if (rc != CRYO_OK) return rc;
  struct sock_filter f[64];
  size_t n = build_filter(f, sysbuf_allowed_ip(s));
  struct user_regs_struct r;
  rc = regs_get(tid, &r);
  if (rc != CRYO_OK) return rc;
  /* the program below the stack's red zone, then the sock_fprog pointing at it */
  uint64_t prog_addr = ((r.rsp - 128 - n * sizeof f[0]) & ~15ull);
  uint64_t fprog_addr = prog_addr - 16;
  struct {
    unsigned short len;
    unsigned short pad[3];
    uint64_t filter;
  } fp = {(unsigned short)n, {0, 0, 0}, prog_addr};
  uint8_t saved[64 * 8 + 16];
  size_t span = n * sizeof f[0] + 16;
  if (mem_read_raw(s, tid, fprog_addr, saved, span) != (ssize_t)span)
    return cryo_fail(CRYO_EFAIL, "record: the stack of %d is not readable below 0x%llx", tid, (unsigned long long)r.rsp);
  rc = mem_write_raw(s, tid, prog_addr, f, n * sizeof f[0]);
  if (rc == CRYO_OK) rc = mem_write_raw(s, tid, fprog_addr, &fp, 16);
  int64_t ret = 0;
  uint64_t nnp[6] = {PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0};
  if (rc == CRYO_OK) rc = inject_syscall(s, tid, SYS_prctl, nnp, &ret);
  uint64_t sc[6] = {SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, fprog_addr, 0, 0, 0};
  if (rc == CRYO_OK) rc = inject_syscall(s, tid, SYS_seccomp, sc, &ret);
  mem_write_raw(s, tid, fprog_addr, saved, span);
  if (rc != CRYO_OK) return rc;
  if (ret != 0) {
    errno = (int)-ret;
    return cryo_fail_errno("record: seccomp(SET_MODE_FILTER) in process %d", s->pid);
  }
  s->rec_filter = true;
  s->rec_mode = REC_RECORD;
  /* rdtsc faults from now on, so it can be recorded (record_on_sigsegv) */
  uint64_t tsc[6] = {PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0, 0};
  s->rec_tsc = inject_syscall(s, tid, SYS_prctl, tsc, &ret) == CRYO_OK && ret == 0 && tsc_traps();
  rc = record_patch_vdso(s, s->pid);
  sysbuf_try_libc(s); /* a revived process has it already; a launched one once ld.so mapped it */
  pin_start(s);
  return rc;
}

CRYO_API int cryo_record_start(cryo_session *s) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_record_start: null session");
  if (!s->inline_mode) s->pin_caller = (pid_t)syscall(SYS_gettid); /* to share the debuggee's CPU (pin.c) */
  return run_on_tracer(s, do_record_start, NULL);
}

static int do_record_position(struct cryo_session *s, void *arg) {
  *(uint64_t *)arg = s->rec_mode == REC_REPLAY ? s->rec_cursor : s->rec_n;
  return CRYO_OK;
}

CRYO_API int cryo_record_position(cryo_session *s, uint64_t *pos) {
  if (!s || !pos) return cryo_fail(CRYO_EINVAL, "cryo_record_position: null argument");
  return run_on_tracer(s, do_record_position, pos);
}

static int do_replay_from(struct cryo_session *s, void *arg) {
  uint64_t pos = *(uint64_t *)arg;
  if (!s->rec_filter) return cryo_fail(CRYO_EUNSUPPORTED, "nothing was recorded in this session");
  if (pos > s->rec_n) return cryo_fail(CRYO_EINVAL, "replay position %llu is past the end of the log (%zu)", (unsigned long long)pos, s->rec_n);
  s->rec_cursor = (size_t)pos;
  s->rec_mode = pos < s->rec_n ? REC_REPLAY : REC_RECORD;
  for (int i = 0; i < s->nthreads; i++) s->threads[i].rec_pending = false;
  return CRYO_OK;
}

CRYO_API int cryo_replay_from(cryo_session *s, uint64_t pos) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_replay_from: null session");
  return run_on_tracer(s, do_replay_from, &pos);
}

static int do_record_truncate(struct cryo_session *s, void *arg) {
  uint64_t pos = *(uint64_t *)arg;
  if (pos < s->rec_n) {
    s->rec_n = (size_t)pos;
    s->rec_blob_len = pos ? s->rec_log[pos - 1].out_off + s->rec_log[pos - 1].out_len : 0;
  }
  s->rec_cursor = s->rec_n;
  if (s->rec_filter) s->rec_mode = REC_RECORD;
  return CRYO_OK;
}

CRYO_API int cryo_record_truncate(cryo_session *s, uint64_t pos) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_record_truncate: null session");
  return run_on_tracer(s, do_record_truncate, &pos);
}

static int do_record_stats(struct cryo_session *s, void *arg) {
  cryo_record_info *st = arg;
  st->mode = s->rec_mode;
  st->flags = s->rec_tsc ? CRYO_RECORD_TSC : 0;
  st->entries = s->rec_n;
  st->cursor = s->rec_cursor;
  st->bytes = s->rec_blob_len + s->rec_n * sizeof(struct rec_entry);
  st->replayed = s->rec_replayed;
  st->buffered = s->rec_buffered;
  st->trapped = s->rec_trapped;
  return CRYO_OK;
}

CRYO_API int cryo_record_stats(cryo_session *s, cryo_record_info *st) {
  if (!s || !st) return cryo_fail(CRYO_EINVAL, "cryo_record_stats: null argument");
  return run_on_tracer(s, do_record_stats, st);
}

/* ---- the log as bytes: a LOG section of an image (docs/image-format.md) ---- */

int record_encode_log(struct cryo_session *s, uint64_t from, struct img_buf *b) {
  if (from > s->rec_n) from = s->rec_n;
  size_t n = s->rec_n - (size_t)from;
  size_t d0 = n ? s->rec_log[from].out_off : s->rec_blob_len;
  size_t dlen = s->rec_blob_len - d0;
  if (n > UINT32_MAX / IMG_LOG_ENTRY_SIZE || dlen > UINT32_MAX)
    return cryo_fail(CRYO_EUNSUPPORTED, "the record log (%zu syscalls, %zu bytes of data) is too large for an image", n, dlen);
  uint8_t *ents = malloc(n ? n * IMG_LOG_ENTRY_SIZE : 1);
  if (!ents) return cryo_fail(CRYO_EFAIL, "out of memory for the record log");
  for (size_t i = 0; i < n; i++) {
    const struct rec_entry *e = &s->rec_log[from + i];
    uint8_t *p = ents + i * IMG_LOG_ENTRY_SIZE;
    uint32_t zero = 0;
    uint64_t off = e->out_off - d0, len = e->out_len;
    memcpy(p, &e->nr, 4);
    memcpy(p + 4, &zero, 4);
    memcpy(p + 8, &e->ret, 8);
    memcpy(p + 16, e->args, 48);
    memcpy(p + 64, &off, 8);
    memcpy(p + 72, &len, 8);
  }
  img_tlv_u64(b, LG_BASE, from);
  img_tlv_u64(b, LG_COUNT, n);
  img_tlv_bytes(b, LG_ENTRIES, ents, n * IMG_LOG_ENTRY_SIZE);
  img_tlv_bytes(b, LG_DATA, s->rec_blob + d0, dlen);
  free(ents);
  return b->oom ? cryo_fail(CRYO_EFAIL, "out of memory for the record log") : CRYO_OK;
}

struct load_args {
  const uint8_t *p;
  size_t len;
};

static int do_record_load(struct cryo_session *s, void *arg) {
  struct load_args *a = arg;
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  if (any_running(s)) return cryo_fail(CRYO_ERUNNING, "a log is loaded while the process is stopped");
  struct img_log lg;
  int rc = img_log_parse(a->p, a->len, &lg, "the record log");
  if (rc) return rc;
  size_t n = (size_t)lg.count;
  size_t cap = n ? n : 1, blob_cap = lg.data_len ? (size_t)lg.data_len : 1;
  struct rec_entry *log = log_grow(NULL, 0, cap * sizeof *log);
  uint8_t *blob = log_grow(NULL, 0, blob_cap);
  if (!log || !blob) {
    log_release(log, cap * sizeof *log);
    log_release(blob, blob_cap);
    return cryo_fail(CRYO_EFAIL, "out of memory for a record log of %zu syscalls", n);
  }
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = lg.entries + i * IMG_LOG_ENTRY_SIZE;
    uint64_t off, len;
    memset(&log[i], 0, sizeof log[i]);
    memcpy(&log[i].nr, p, 4);
    memcpy(&log[i].ret, p + 8, 8);
    memcpy(log[i].args, p + 16, 48);
    memcpy(&off, p + 64, 8);
    memcpy(&len, p + 72, 8);
    log[i].out_off = (size_t)off;
    log[i].out_len = (size_t)len;
  }
  if (lg.data_len) memcpy(blob, lg.data, (size_t)lg.data_len);
  if (!s->rec_filter) {
    /* a revived process has no filter and the kernel's vDSO: as at the recording's start */
    rc = do_record_start(s, NULL);
    if (rc) {
      log_release(log, cap * sizeof *log);
      log_release(blob, blob_cap);
      return rc;
    }
  }
  log_release(s->rec_log, s->rec_cap * sizeof *s->rec_log);
  log_release(s->rec_blob, s->rec_blob_cap);
  s->rec_log = log;
  s->rec_n = n;
  s->rec_cap = cap;
  s->rec_blob = blob;
  s->rec_blob_len = (size_t)lg.data_len;
  s->rec_blob_cap = blob_cap;
  s->rec_cursor = 0;
  s->rec_mode = n ? REC_REPLAY : REC_RECORD;
  for (int i = 0; i < s->nthreads; i++) s->threads[i].rec_pending = false;
  return CRYO_OK;
}

CRYO_API int cryo_record_load(cryo_session *s, const uint8_t *log, size_t len) {
  if (!s || (!log && len)) return cryo_fail(CRYO_EINVAL, "cryo_record_load: null argument");
  struct load_args a = {log, len};
  if (!s->inline_mode) s->pin_caller = (pid_t)syscall(SYS_gettid);
  return run_on_tracer(s, do_record_load, &a);
}

void record_free(struct cryo_session *s) {
  log_release(s->rec_log, s->rec_cap * sizeof *s->rec_log);
  log_release(s->rec_blob, s->rec_blob_cap);
  s->rec_log = NULL;
  s->rec_blob = NULL;
  s->rec_n = s->rec_cap = s->rec_blob_len = s->rec_blob_cap = 0;
  sysbuf_free(s);
}
