/* Running code in a stopped tracee: one syscall at a time, through a `syscall`
 * instruction single-stepped: one of the vDSO's (gadget_for), or, in a process
 * without a vDSO, one written over the current pc. Memory and
 * registers are put back exactly as they were (orig_rax included, so a syscall
 * the thread was interrupted in still restarts as it would have). */
#include "internal.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef CLONE_PARENT
#define CLONE_PARENT 0x00008000
#endif
#ifndef CLONE_PTRACE
#define CLONE_PTRACE 0x00002000
#endif

static const uint8_t SYSCALL_INSN[2] = {0x0f, 0x05};

/* A `syscall` already in the tracee's vDSO, to run injected syscalls through instead of
 * writing one over the pc: a write into code is a page fault, and after the fork of a
 * checkpoint the write that puts the code back breaks the copy-on-write sharing of that
 * page on the debugger's critical path (with the read, 30-50 us of a first checkpoint
 * here). Any two bytes 0f 05 in an executable mapping will do: the step runs them as a
 * syscall wherever they sit. Looked up from the process's auxv; 0 when it has no vDSO. */
static uint64_t find_gadget(struct cryo_session *s, pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/auxv", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t av[128], base = 0;
  ssize_t n = read(fd, av, sizeof av);
  close(fd);
  for (ssize_t i = 0; i + 1 < n / 8 && av[i] != AT_NULL; i += 2)
    if (av[i] == AT_SYSINFO_EHDR) base = av[i + 1];
  if (!base) return 0;
  uint8_t text[16384]; /* the vDSO's text is two pages on x86-64 today */
  ssize_t got = mem_read_raw(s, pid, base, text, sizeof text);
  for (ssize_t i = 0; i + 1 < got; i++)
    if (text[i] == SYSCALL_INSN[0] && text[i + 1] == SYSCALL_INSN[1]) return base + (uint64_t)i;
  return 0;
}

/* Where thread tid can run a syscall without a write: the session's gadget when tid's
 * memory still holds `syscall` there (a checkpoint's copy has the debuggee's vDSO, a
 * recorded debuggee a patched one, an exec a new one: the bytes decide), else one
 * looked up for its process; 0 when there is none. */
static uint64_t gadget_for(struct cryo_session *s, pid_t tid) {
  uint8_t b[2];
  if (s->gadget && mem_read_raw(s, tid, s->gadget, b, 2) == 2 && !memcmp(b, SYSCALL_INSN, 2)) return s->gadget;
  pid_t pid = thread_find(s, tid) ? s->pid : tid;
  if (pid == s->gadget_none) return 0;
  uint64_t g = find_gadget(s, pid);
  if (g) s->gadget = g;
  else s->gadget_none = pid;
  return g;
}

void inject_new_space(struct cryo_session *s) {
  s->gadget_none = 0;
  if (s->pid && !gadget_for(s, s->pid)) dbg("inject: process %d has no vDSO: injected syscalls are written at the pc", s->pid);
}

/* Steps over the planted syscall instruction; reports a fork child if one appears. */
static int step_syscall(struct cryo_session *s, pid_t tid, pid_t *child) {
  if (ptrace(PTRACE_SINGLESTEP, tid, 0, 0) != 0) return cryo_fail_errno("ptrace(PTRACE_SINGLESTEP, %d)", tid);
  for (;;) {
    int st;
    int rc = wait_for_stop(s, tid, &st);
    if (rc != CRYO_OK) return rc;
    if (WIFEXITED(st) || WIFSIGNALED(st))
      return cryo_fail(CRYO_ENOPROC, "process %d died during an injected syscall", tid);
    int ev = (st >> 16) & 0xffff;
    if (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK || ev == PTRACE_EVENT_CLONE) {
      unsigned long msg = 0;
      ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg);
      if (child) *child = (pid_t)msg;
      if (ptrace(PTRACE_SINGLESTEP, tid, 0, 0) != 0) return cryo_fail_errno("ptrace(PTRACE_SINGLESTEP, %d)", tid);
      continue;
    }
    if (ev == 0 && WSTOPSIG(st) == SIGTRAP) return CRYO_OK;
    if (ev == 0 && WSTOPSIG(st) != SIGTRAP) {
      /* a signal arrived for the program meanwhile: keep it for its next resume */
      struct thread *t = thread_find(s, tid);
      if (t && !t->pending_sig) t->pending_sig = WSTOPSIG(st);
    }
    if (ptrace(PTRACE_SINGLESTEP, tid, 0, 0) != 0) return cryo_fail_errno("ptrace(PTRACE_SINGLESTEP, %d)", tid);
  }
}

/* A thread at a seccomp stop is inside a syscall it has not run yet: un-enter it (the
 * syscall skipped, the pc back on its syscall instruction, so that the thread runs it
 * again once resumed and stops there again), and step it out of the kernel: it then
 * stands before that instruction as after any other stop. Without that step, the next
 * single-step would first report the skipped syscall's exit, with the instruction not
 * yet executed. */
int seccomp_unenter(struct cryo_session *s, struct thread *t) {
  if (!t || !t->at_seccomp) return CRYO_OK;
  pid_t tid = t->tid;
  bool pending = t->rec_pending;
  t->at_seccomp = false;
  t->rec_pending = false;
  struct user_regs_struct r;
  int rc = regs_get(tid, &r);
  if (rc != CRYO_OK) return rc;
  if (r.orig_rax == (unsigned long long)-1) return CRYO_OK; /* annulled by a replay: it returns as it is */
  r.rip -= 2;
  r.rax = r.orig_rax;
  /* the rest of an interrupted sleep: the sleep itself again (its arguments are still in
   * the registers), since a copy has no restart block to finish it with */
  if (r.orig_rax == SYS_restart_syscall && pending) r.rax = t->rec_entry.nr;
  r.orig_rax = (unsigned long long)-1;
  rc = regs_set(tid, &r);
  if (rc != CRYO_OK) return rc;
  for (int tries = 0; tries < 16; tries++) {
    if (ptrace(PTRACE_SINGLESTEP, tid, 0, 0) != 0) return cryo_fail_errno("ptrace(PTRACE_SINGLESTEP, %d)", tid);
    int st;
    rc = wait_for_stop(s, tid, &st);
    if (rc != CRYO_OK) return rc;
    if (WIFEXITED(st) || WIFSIGNALED(st)) return cryo_fail(CRYO_ENOPROC, "thread %d died leaving a syscall", tid);
    int ev = (st >> 16) & 0xffff;
    if (ev == 0 && WSTOPSIG(st) == SIGTRAP) {
      struct user_regs_struct now;
      rc = regs_get(tid, &now);
      if (rc != CRYO_OK) return rc;
      if (now.rip != r.rip)
        return cryo_fail(CRYO_EFAIL, "thread %d left its syscall at 0x%llx, not 0x%llx", tid, (unsigned long long)now.rip,
                         (unsigned long long)r.rip);
      return regs_set(tid, &r);
    }
    if (ev == 0 && !t->pending_sig) t->pending_sig = WSTOPSIG(st); /* the program's: kept for its next resume */
  }
  return cryo_fail(CRYO_EFAIL, "thread %d did not leave its syscall", tid);
}

/* A thread stopped at a ptrace event inside a syscall still running (the exec stop of a
 * launch): the kernel writes that syscall's result into rax on its way out, over the
 * number of any syscall injected now. One single-step finishes it first, as a resume
 * would; the thread then stands at the same pc, outside the kernel. */
static int finish_syscall(struct cryo_session *s, pid_t tid, struct user_regs_struct *r) {
  if (r->orig_rax == (unsigned long long)-1 || (int64_t)r->rax != -ENOSYS) return CRYO_OK;
  struct thread *t = thread_find(s, tid);
  for (int tries = 0; tries < 16; tries++) {
    if (ptrace(PTRACE_SINGLESTEP, tid, 0, 0) != 0) return cryo_fail_errno("ptrace(PTRACE_SINGLESTEP, %d)", tid);
    int st;
    int rc = wait_for_stop(s, tid, &st);
    if (rc != CRYO_OK) return rc;
    if (WIFEXITED(st) || WIFSIGNALED(st)) return cryo_fail(CRYO_ENOPROC, "thread %d died finishing a syscall", tid);
    int ev = (st >> 16) & 0xffff;
    if (ev == 0 && WSTOPSIG(st) == SIGTRAP) return regs_get(tid, r);
    if (ev == 0 && t && !t->pending_sig) t->pending_sig = WSTOPSIG(st); /* the program's: kept for its next resume */
  }
  return cryo_fail(CRYO_EFAIL, "thread %d did not finish its syscall", tid);
}

static int inject(struct cryo_session *s, pid_t tid, long nr, const uint64_t a[6], int64_t *ret, pid_t *child,
                  struct user_regs_struct *saved_out, uint8_t orig_out[2], bool *planted_out) {
  struct user_regs_struct saved, r;
  int rc = seccomp_unenter(s, thread_find(s, tid));
  if (rc != CRYO_OK) return rc;
  rc = regs_get(tid, &saved);
  if (rc == CRYO_OK) rc = finish_syscall(s, tid, &saved);
  if (rc != CRYO_OK) return rc;
  uint64_t pc = gadget_for(s, tid);
  uint8_t orig[2];
  bool planted = !pc;
  if (planted) {
    pc = saved.rip;
    if (mem_read_raw(s, tid, pc, orig, 2) != 2)
      return cryo_fail_errno("injecting a syscall in %d: cannot read the code at 0x%llx", tid, (unsigned long long)pc);
    if (orig_out) memcpy(orig_out, orig, 2);
    rc = mem_write_raw(s, tid, pc, SYSCALL_INSN, 2);
    if (rc != CRYO_OK) return rc;
  }
  if (planted_out) *planted_out = planted;
  r = saved;
  r.rax = (unsigned long long)nr;
  r.orig_rax = (unsigned long long)-1;
  r.rdi = a[0];
  r.rsi = a[1];
  r.rdx = a[2];
  r.r10 = a[3];
  r.r8 = a[4];
  r.r9 = a[5];
  r.rip = pc;
  rc = regs_set(tid, &r);
  if (rc == CRYO_OK) rc = step_syscall(s, tid, child);
  if (rc == CRYO_OK) rc = regs_get(tid, &r);
  if (rc == CRYO_OK && ret) *ret = (int64_t)r.rax;
  /* put everything back whatever happened */
  int rc2 = planted ? mem_write_raw(s, tid, pc, orig, 2) : CRYO_OK;
  int rc3 = regs_set(tid, &saved);
  if (saved_out) *saved_out = saved;
  if (rc == CRYO_OK) rc = rc2 != CRYO_OK ? rc2 : rc3;
  return rc;
}

int inject_syscall(struct cryo_session *s, pid_t tid, long nr, const uint64_t a[6], int64_t *ret) {
  return inject(s, tid, nr, a, ret, NULL, NULL, NULL, NULL);
}

/* Makes a frozen copy of single-threaded process `tid` with clone(CLONE_PARENT):
 * a sibling rather than a child, so the program's own wait() never sees it and a
 * copy revived later has the same parent. The copy stays in its first ptrace stop
 * with the original registers and code.
 *
 * In two halves: the clone (the state is taken there, and tid is as before once it
 * returns), then the copy's first stop and its repair. A first checkpoint returns to
 * the debugger between the two and finishes the copy on the tracer thread after. */
int fork_frozen_start(struct cryo_session *s, pid_t tid, struct frozen_copy *fc) {
  /* CLONE_PTRACE traces the copy from its birth, stopped before its first instruction,
   * without the fork event stop that PTRACE_O_TRACEFORK would add to the parent: one
   * round trip to the tracee less (about 60 us of a first checkpoint's 0.45 ms here) */
  uint64_t a[6] = {CLONE_PARENT | CLONE_PTRACE | SIGCHLD, 0, 0, 0, 0, 0};
  int64_t ret = 0;
  pid_t c = 0;
  memset(fc, 0, sizeof *fc);
  bool quiet = ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)(long)(TRACE_OPTIONS & ~(PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE))) == 0;
  int rc = inject(s, tid, SYS_clone, a, &ret, &c, &fc->regs, fc->code, &fc->planted);
  if (quiet && ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)(long)TRACE_OPTIONS) != 0 && rc == CRYO_OK)
    rc = cryo_fail_errno("ptrace(PTRACE_SETOPTIONS, %d)", tid);
  if (rc != CRYO_OK) {
    if (c > 0) {
      kill(c, SIGKILL);
      int st;
      wait_for_stop(s, c, &st);
    }
    return rc;
  }
  if (ret < 0) {
    errno = (int)-ret;
    return cryo_fail_errno("clone in process %d", tid);
  }
  fc->child = c > 0 ? c : (pid_t)ret;
  return CRYO_OK;
}

/* The copy at its first stop, with the code the syscall was planted over (as tid had it
 * then: breakpoints may be back in tid since) and tid's registers. On failure the copy
 * is killed. */
int fork_frozen_finish(struct cryo_session *s, const struct frozen_copy *fc) {
  pid_t c = fc->child;
  int st;
  int rc = wait_for_stop(s, c, &st);
  if (rc != CRYO_OK) return rc;
  if (!WIFSTOPPED(st)) return cryo_fail(CRYO_EFAIL, "the copy %d died at birth", c);
  if (fc->planted) rc = mem_write_raw(s, c, fc->regs.rip, fc->code, 2);
  if (rc == CRYO_OK) rc = regs_set(c, &fc->regs);
  if (rc != CRYO_OK) {
    kill(c, SIGKILL);
    wait_for_stop(s, c, &st);
  }
  return rc;
}

int fork_frozen_copy(struct cryo_session *s, pid_t tid, pid_t *child) {
  struct frozen_copy fc;
  int rc = fork_frozen_start(s, tid, &fc);
  if (rc == CRYO_OK) rc = fork_frozen_finish(s, &fc);
  if (rc == CRYO_OK) *child = fc.child;
  return rc;
}

struct inj_args {
  pid_t tid;
  long nr;
  const uint64_t *args;
  int64_t *ret;
};

static int do_inject(struct cryo_session *s, void *arg) {
  struct inj_args *a = arg;
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  struct thread *t = thread_find(s, a->tid);
  if (!t) return cryo_fail(CRYO_ENOTHREAD, "no thread %d", a->tid);
  if (t->state != T_STOPPED) return cryo_fail(CRYO_ERUNNING, "thread %d is running", a->tid);
  uint64_t args[6] = {0};
  if (a->args) memcpy(args, a->args, sizeof args);
  return inject_syscall(s, a->tid, a->nr, args, a->ret);
}

CRYO_API int cryo_inject_syscall(cryo_session *s, int32_t tid, int64_t nr, const uint64_t *args, int64_t *ret) {
  if (!s || !ret) return cryo_fail(CRYO_EINVAL, "cryo_inject_syscall: null argument");
  struct inj_args a = {tid, (long)nr, args, ret};
  return run_on_tracer(s, do_inject, &a);
}
