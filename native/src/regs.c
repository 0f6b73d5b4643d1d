/* Registers of stopped threads: general, xsave, debug registers, and hardware
 * watchpoints built on the debug registers (DR0-DR3 addresses, DR7 control). */
#include "internal.h"

#include <elf.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

int regs_get(pid_t tid, struct user_regs_struct *r) {
  if (ptrace(PTRACE_GETREGS, tid, 0, r) < 0) return cryo_fail_errno("ptrace(PTRACE_GETREGS, %d)", tid);
  return CRYO_OK;
}

int regs_set(pid_t tid, const struct user_regs_struct *r) {
  if (ptrace(PTRACE_SETREGS, tid, 0, r) < 0) return cryo_fail_errno("ptrace(PTRACE_SETREGS, %d)", tid);
  return CRYO_OK;
}

static long dr_offset(int idx) { return (long)(offsetof(struct user, u_debugreg) + (size_t)idx * sizeof(long)); }

int dr_get(pid_t tid, int idx, uint64_t *v) {
  errno = 0;
  long x = ptrace(PTRACE_PEEKUSER, tid, (void *)dr_offset(idx), 0);
  if (errno) return cryo_fail_errno("ptrace(PTRACE_PEEKUSER DR%d, %d)", idx, tid);
  *v = (uint64_t)x;
  return CRYO_OK;
}

int dr_set(pid_t tid, int idx, uint64_t v) {
  if (ptrace(PTRACE_POKEUSER, tid, (void *)dr_offset(idx), (void *)(uintptr_t)v) < 0)
    return cryo_fail_errno("ptrace(PTRACE_POKEUSER DR%d=0x%llx, %d)", idx, (unsigned long long)v, tid);
  return CRYO_OK;
}

static uint64_t dr7_value(struct cryo_session *s) {
  uint64_t dr7 = 0;
  for (int i = 0; i < 4; i++) {
    struct watchpoint *w = &s->wps[i];
    if (!w->used) continue;
    uint64_t len_bits = w->len == 1 ? 0 : w->len == 2 ? 1 : w->len == 8 ? 2 : 3;
    dr7 |= 1ull << (i * 2);
    dr7 |= ((uint64_t)w->kind & 3) << (16 + i * 4);
    dr7 |= len_bits << (18 + i * 4);
  }
  return dr7;
}

/* Writes every slot into one thread (new threads do not inherit debug registers). */
int wps_apply_thread(struct cryo_session *s, pid_t tid) {
  int rc = dr_set(tid, 7, 0);
  if (rc != CRYO_OK) return rc;
  for (int i = 0; i < 4; i++) {
    if (!s->wps[i].used) continue;
    rc = dr_set(tid, i, s->wps[i].addr);
    if (rc != CRYO_OK) return rc;
  }
  uint64_t dr7 = dr7_value(s);
  return dr7 ? dr_set(tid, 7, dr7) : CRYO_OK;
}

/* Which slot fired (DR6 bits 0-3), clearing DR6; -1 if none. */
int wp_hit_slot(pid_t tid) {
  uint64_t dr6 = 0;
  if (dr_get(tid, 6, &dr6) != CRYO_OK) return -1;
  dr_set(tid, 6, 0);
  for (int i = 0; i < 4; i++)
    if (dr6 & (1ull << i)) return i;
  return -1;
}

int xstate_get(pid_t tid, uint8_t *buf, size_t cap, size_t *len) {
  struct iovec iov = {buf, cap};
  if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0)
    return cryo_fail_errno("ptrace(PTRACE_GETREGSET NT_X86_XSTATE, %d)", tid);
  *len = iov.iov_len;
  return CRYO_OK;
}

int xstate_set(pid_t tid, const uint8_t *buf, size_t len) {
  struct iovec iov = {(void *)buf, len};
  if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0)
    return cryo_fail_errno("ptrace(PTRACE_SETREGSET NT_X86_XSTATE, %d, %zu bytes)", tid, len);
  return CRYO_OK;
}

struct reg_args {
  pid_t tid;
  uint64_t *regs;
  const uint64_t *in;
  uint8_t *buf;
  const uint8_t *inbuf;
  size_t cap, *len;
  int idx;
};

static int need_stopped(struct cryo_session *s, pid_t tid) {
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  struct thread *t = thread_find(s, tid);
  if (!t) return cryo_fail(CRYO_ENOTHREAD, "no thread %d in process %d", tid, s->pid);
  if (t->state != T_STOPPED) return cryo_fail(CRYO_ERUNNING, "thread %d is running", tid);
  return CRYO_OK;
}

static int do_get_regs(struct cryo_session *s, void *arg) {
  struct reg_args *a = arg;
  int rc = need_stopped(s, a->tid);
  if (rc) return rc;
  struct user_regs_struct r;
  rc = regs_get(a->tid, &r);
  if (rc == CRYO_OK) memcpy(a->regs, &r, sizeof r);
  return rc;
}

static int do_set_regs(struct cryo_session *s, void *arg) {
  struct reg_args *a = arg;
  int rc = need_stopped(s, a->tid);
  if (rc) return rc;
  struct user_regs_struct r;
  memcpy(&r, a->in, sizeof r);
  return regs_set(a->tid, &r);
}

static int do_get_xstate(struct cryo_session *s, void *arg) {
  struct reg_args *a = arg;
  int rc = need_stopped(s, a->tid);
  if (rc) return rc;
  uint8_t tmp[XSTATE_MAX];
  rc = xstate_get(a->tid, tmp, sizeof tmp, a->len);
  if (rc != CRYO_OK) return rc;
  if (a->cap < *a->len)
    return cryo_fail(CRYO_EINVAL, "xstate of thread %d is %zu bytes, buffer holds %zu", a->tid, *a->len, a->cap);
  memcpy(a->buf, tmp, *a->len);
  return CRYO_OK;
}

static int do_set_xstate(struct cryo_session *s, void *arg) {
  struct reg_args *a = arg;
  int rc = need_stopped(s, a->tid);
  if (rc) return rc;
  return xstate_set(a->tid, a->inbuf, a->cap);
}

static int do_get_dr(struct cryo_session *s, void *arg) {
  struct reg_args *a = arg;
  int rc = need_stopped(s, a->tid);
  if (rc) return rc;
  if (a->idx < 0 || a->idx > 7 || a->idx == 4 || a->idx == 5)
    return cryo_fail(CRYO_EINVAL, "debug register DR%d does not exist", a->idx);
  return dr_get(a->tid, a->idx, a->regs);
}

CRYO_API int cryo_get_regs(cryo_session *s, int32_t tid, uint64_t *regs) {
  if (!s || !regs) return cryo_fail(CRYO_EINVAL, "cryo_get_regs: null argument");
  struct reg_args a = {.tid = tid, .regs = regs};
  return run_on_tracer(s, do_get_regs, &a);
}

CRYO_API int cryo_set_regs(cryo_session *s, int32_t tid, const uint64_t *regs) {
  if (!s || !regs) return cryo_fail(CRYO_EINVAL, "cryo_set_regs: null argument");
  struct reg_args a = {.tid = tid, .in = regs};
  return run_on_tracer(s, do_set_regs, &a);
}

CRYO_API int cryo_get_xstate(cryo_session *s, int32_t tid, uint8_t *buf, size_t cap, size_t *len) {
  if (!s || !buf || !len) return cryo_fail(CRYO_EINVAL, "cryo_get_xstate: null argument");
  struct reg_args a = {.tid = tid, .buf = buf, .cap = cap, .len = len};
  return run_on_tracer(s, do_get_xstate, &a);
}

CRYO_API int cryo_set_xstate(cryo_session *s, int32_t tid, const uint8_t *buf, size_t len) {
  if (!s || !buf) return cryo_fail(CRYO_EINVAL, "cryo_set_xstate: null argument");
  struct reg_args a = {.tid = tid, .inbuf = buf, .cap = len};
  return run_on_tracer(s, do_set_xstate, &a);
}

CRYO_API int cryo_get_debugreg(cryo_session *s, int32_t tid, int32_t index, uint64_t *value) {
  if (!s || !value) return cryo_fail(CRYO_EINVAL, "cryo_get_debugreg: null argument");
  struct reg_args a = {.tid = tid, .regs = value, .idx = index};
  return run_on_tracer(s, do_get_dr, &a);
}

struct wp_args {
  uint64_t addr;
  int len, kind, slot;
};

static int apply_all_threads(struct cryo_session *s) {
  for (int i = 0; i < s->nthreads; i++) {
    int rc = wps_apply_thread(s, s->threads[i].tid);
    if (rc != CRYO_OK) return rc;
  }
  return CRYO_OK;
}

/* Some hypervisors accept the debug registers but never deliver their traps (gdb's
 * `watch` does not fire there either). Found out once per process: a child sharing our
 * memory stops itself under our trace, gets a write watchpoint on a word of ours, writes
 * it, and exits; a SIGTRAP first means watchpoints work. */
static int dr_probe_main(void *arg) {
  volatile uint64_t *word = arg;
  raw_syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
  raw_syscall(SYS_kill, raw_syscall(SYS_getpid, 0, 0, 0, 0), SIGSTOP, 0, 0);
  *word = 1;
  raw_syscall(SYS_exit, 0, 0, 0, 0);
  return 0;
}

static bool debugregs_trap(void) {
  static _Atomic int known = -1;
  if (known >= 0) return known;
  _Alignas(16) unsigned char stack[8192];
  static _Thread_local volatile uint64_t word; /* no other thread of ours writes it */
  pid_t pid = clone_vm(dr_probe_main, (void *)&word, stack, sizeof stack, 0);
  int st = 0, works = 0;
  if (pid < 0 || wait_for_stop(NULL, pid, &st) != CRYO_OK) return false;
  if (WIFSTOPPED(st) && dr_set(pid, 0, (uint64_t)(uintptr_t)&word) == CRYO_OK &&
      dr_set(pid, 7, 1 | (1u << 16) | (2u << 18)) == CRYO_OK && ptrace(PTRACE_CONT, pid, 0, 0) == 0 &&
      wait_for_stop(NULL, pid, &st) == CRYO_OK)
    works = WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP;
  if (WIFSTOPPED(st)) {
    kill(pid, SIGKILL);
    wait_for_stop(NULL, pid, &st);
  }
  known = works;
  dbg("debug register traps %s", works ? "are delivered" : "are not delivered");
  return works;
}

static int do_wp_set(struct cryo_session *s, void *arg) {
  struct wp_args *a = arg;
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  if (a->len != 1 && a->len != 2 && a->len != 4 && a->len != 8)
    return cryo_fail(CRYO_EINVAL, "watchpoint length %d: x86-64 watches 1, 2, 4 or 8 bytes", a->len);
  if (a->addr % (uint64_t)a->len)
    return cryo_fail(CRYO_EINVAL, "watchpoint at 0x%llx: a %d-byte watch needs an address aligned to %d",
                     (unsigned long long)a->addr, a->len, a->len);
  if (a->kind != CRYO_WATCH_EXEC && a->kind != CRYO_WATCH_WRITE && a->kind != CRYO_WATCH_READWRITE)
    return cryo_fail(CRYO_EINVAL, "watchpoint kind %d is not exec (0), write (1) or read/write (3)", a->kind);
  if (a->kind == CRYO_WATCH_EXEC && a->len != 1)
    return cryo_fail(CRYO_EINVAL, "an execution watchpoint has length 1");
  for (int i = 0; i < s->nthreads; i++)
    if (s->threads[i].state != T_STOPPED)
      return cryo_fail(CRYO_ERUNNING, "watchpoints are set while the process is stopped");
  int slot = -1;
  for (int i = 0; i < 4; i++)
    if (!s->wps[i].used) {
      slot = i;
      break;
    }
  if (slot < 0) return cryo_fail(CRYO_EUNSUPPORTED, "all 4 hardware watchpoint slots are in use");
  if (!debugregs_trap())
    return cryo_fail(CRYO_EUNSUPPORTED, "this machine does not deliver hardware watchpoint traps (the hypervisor takes the debug registers but never raises their exceptions; gdb's watch does not fire here either): a watchpoint would never stop the program");
  s->wps[slot] = (struct watchpoint){true, a->addr, a->len, a->kind};
  int rc = apply_all_threads(s);
  if (rc != CRYO_OK) {
    s->wps[slot].used = false;
    apply_all_threads(s);
    return rc;
  }
  a->slot = slot;
  return CRYO_OK;
}

static int do_wp_clear(struct cryo_session *s, void *arg) {
  struct wp_args *a = arg;
  if (a->slot < 0 || a->slot > 3 || !s->wps[a->slot].used)
    return cryo_fail(CRYO_ENOENT, "no watchpoint in slot %d", a->slot);
  s->wps[a->slot].used = false;
  return s->pid ? apply_all_threads(s) : CRYO_OK;
}

CRYO_API int cryo_watchpoint_set(cryo_session *s, uint64_t addr, int32_t len, int32_t kind, int32_t *slot) {
  if (!s || !slot) return cryo_fail(CRYO_EINVAL, "cryo_watchpoint_set: null argument");
  struct wp_args a = {addr, len, kind, -1};
  int rc = run_on_tracer(s, do_wp_set, &a);
  *slot = a.slot;
  return rc;
}

CRYO_API int cryo_watchpoint_clear(cryo_session *s, int32_t slot) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_watchpoint_clear: null argument");
  struct wp_args a = {0, 0, 0, slot};
  return run_on_tracer(s, do_wp_clear, &a);
}
