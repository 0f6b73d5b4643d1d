/* Threads of the debuggee: the table, what each waitpid status means, all-stop
 * (when one thread stops for a reason worth reporting, every other thread is
 * interrupted before the event goes out) and resuming with breakpoint step-over. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif
#ifndef TRAP_TRACE
#define TRAP_TRACE 2
#endif
#ifndef TRAP_HWBKPT
#define TRAP_HWBKPT 4
#endif

struct thread *thread_find(struct cryo_session *s, pid_t tid) {
  for (int i = 0; i < s->nthreads; i++)
    if (s->threads[i].tid == tid) return &s->threads[i];
  return NULL;
}

struct thread *thread_add(struct cryo_session *s, pid_t tid, int state) {
  struct thread *t = thread_find(s, tid);
  if (t) return t;
  if (s->nthreads == s->cap_threads) {
    int cap = s->cap_threads ? s->cap_threads * 2 : 8;
    struct thread *n = realloc(s->threads, (size_t)cap * sizeof *n);
    if (!n) return NULL;
    pthread_mutex_lock(&s->lock);
    s->threads = n;
    s->cap_threads = cap;
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_lock(&s->lock);
  t = &s->threads[s->nthreads++];
  memset(t, 0, sizeof *t);
  t->tid = tid;
  t->state = state;
  pthread_mutex_unlock(&s->lock);
  return t;
}

/* Drops the breakpoints of a run to the range's next control transfer (plan_run). */
static void plan_cancel(struct cryo_session *s, struct thread *t) {
  while (t->nplan_bp > 0) bp_drop_ref(s, t->plan_bp[--t->nplan_bp]);
}

static bool plan_armed(const struct thread *t, uint64_t pc) {
  for (int i = 0; i < t->nplan_bp; i++)
    if (t->plan_bp[i] == pc) return true;
  return false;
}

void step_over_cancel(struct cryo_session *s, struct thread *t) {
  plan_cancel(s, t);
  if (!t->call_ret) return;
  bp_drop_ref(s, t->call_ret); /* without a process (it is gone) only the table changes */
  t->call_ret = 0;
}

void thread_remove(struct cryo_session *s, pid_t tid) {
  struct thread *gone = thread_find(s, tid);
  if (gone) step_over_cancel(s, gone);
  pthread_mutex_lock(&s->lock);
  for (int i = 0; i < s->nthreads; i++) {
    if (s->threads[i].tid == tid) {
      s->threads[i] = s->threads[--s->nthreads];
      break;
    }
  }
  pthread_mutex_unlock(&s->lock);
}

int thread_live_count(struct cryo_session *s) { return s->nthreads; }

bool any_running(struct cryo_session *s) {
  for (int i = 0; i < s->nthreads; i++)
    if (s->threads[i].state == T_RUNNING) return true;
  return false;
}

void process_gone(struct cryo_session *s) {
  for (int i = 0; i < s->nthreads; i++) step_over_cancel(s, &s->threads[i]);
  checkpoints_forget_live(s); /* its memory, which the tracker followed, is gone */
  if (s->memfd >= 0) close(s->memfd);
  pthread_mutex_lock(&s->lock);
  s->memfd = -1;
  s->nthreads = 0;
  s->pid = 0;
  s->resume_all_pending = false;
  s->pause_requested = false;
  pthread_mutex_unlock(&s->lock);
  /* breakpoints and watchpoints stay: a checkpoint of this program can bring its
   * address space back (only exec, a different program, clears them) */
}

/* waitpid for one tid, retrying on EINTR (the wake signal). */
int wait_for_stop(struct cryo_session *s, pid_t tid, int *status) {
  (void)s;
  for (;;) {
    pid_t r = waitpid(tid, status, __WALL);
    if (r == tid) return CRYO_OK;
    if (r < 0 && errno == EINTR) continue;
    return cryo_fail_errno("waitpid(%d)", tid);
  }
}

static int resume_thread(struct cryo_session *s, struct thread *t, bool step, int sig) {
  dbg("resume tid=%d step=%d sig=%d pending=%d", t->tid, step, sig, t->rec_pending);
  /* a recorded syscall in flight: its exit must be seen (then a step goes on) */
  int req = t->rec_pending ? PTRACE_SYSCALL : step ? PTRACE_SINGLESTEP : PTRACE_CONT;
  sysbuf_sync(s); /* buffer or trap, as the mode and the thread count now say */
  record_on_signal(s, t, sig);
  long rc = ptrace(req, t->tid, 0, (void *)(long)sig);
  if (rc < 0) return cryo_fail_errno("ptrace(%s, %d)", step ? "PTRACE_SINGLESTEP" : "PTRACE_CONT", t->tid);
  t->at_seccomp = false;
  t->state = T_RUNNING;
  return CRYO_OK;
}

static void report(struct cryo_session *s, struct thread *t) {
  dbg("report tid=%d reason=%d", t->tid, t->report_reason);
  plan_cancel(s, t); /* a stop the user sees: no breakpoint of a step is left behind */
  cryo_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = CRYO_EV_STOPPED;
  ev.pid = s->pid;
  ev.tid = t->tid;
  ev.reason = t->report_reason;
  ev.addr = t->report_addr;
  ev.slot = t->report_slot;
  ev.in_step = t->call_ret != 0;
  if (t->report_reason == CRYO_STOP_SIGNAL) {
    ev.signo = t->si.si_signo;
    ev.code = t->si.si_code;
    memcpy(ev.siginfo, &t->si, sizeof ev.siginfo < sizeof t->si ? sizeof ev.siginfo : sizeof t->si);
    if (ev.signo == SIGSEGV || ev.signo == SIGBUS || ev.signo == SIGFPE || ev.signo == SIGILL)
      ev.addr = (uint64_t)(uintptr_t)t->si.si_addr;
  }
  struct user_regs_struct r;
  if (regs_get(t->tid, &r) == CRYO_OK) {
    memcpy(ev.regs, &r, sizeof ev.regs < sizeof r ? sizeof ev.regs : sizeof r);
    ev.has_regs = 1;
  }
  struct user_fpregs_struct fp;
  if (ptrace(PTRACE_GETFPREGS, t->tid, 0, &fp) == 0) {
    memcpy(ev.xmm, fp.xmm_space, sizeof ev.xmm);
    ev.has_xmm = 1;
  }
  if (s->rec_filter) {
    /* the ring was drained at this stop (classify): the log is whole */
    ev.record_pos = s->rec_mode == REC_REPLAY ? s->rec_cursor : s->rec_n;
    ev.has_pos = 1;
  }
  t->has_report = false;
  t->reported = true;
  push_event(s, &ev);
}

/* ---- passengers ---- */

static struct passenger *passenger_find(struct cryo_session *s, pid_t pid) {
  for (int i = 0; i < s->npass; i++)
    if (s->pass[i].pid == pid) return &s->pass[i];
  return NULL;
}

static struct passenger *passenger_add(struct cryo_session *s, pid_t pid) {
  struct passenger *p = passenger_find(s, pid);
  if (p) return p;
  if (s->npass == s->cap_pass) {
    int cap = s->cap_pass ? s->cap_pass * 2 : 8;
    struct passenger *n = realloc(s->pass, (size_t)cap * sizeof *n);
    if (!n) return NULL;
    s->pass = n;
    s->cap_pass = cap;
  }
  p = &s->pass[s->npass++];
  *p = (struct passenger){pid, false};
  return p;
}

static void passenger_remove(struct cryo_session *s, pid_t pid) {
  for (int i = 0; i < s->npass; i++)
    if (s->pass[i].pid == pid) {
      s->pass[i] = s->pass[--s->npass];
      return;
    }
}

/* The thread group, and the parent, of a task (from /proc): 0 when gone. */
static pid_t proc_field(pid_t tid, const char *field) {
  uint64_t v = 0;
  return proc_status(tid, field, 10, &v) ? (pid_t)v : 0;
}

/* rdtsc in a passenger (PR_SET_TSC is inherited): the real counter, not recorded. */
static bool passenger_rdtsc(struct cryo_session *s, pid_t pid) {
  struct user_regs_struct r;
  uint8_t code[3] = {0};
  if (regs_get(pid, &r) != CRYO_OK || mem_read_raw(s, pid, r.rip, code, 3) < 2) return false;
  int len = code[0] == 0x0f && code[1] == 0x31 ? 2 : code[0] == 0x0f && code[1] == 0x01 && code[2] == 0xf9 ? 3 : 0;
  if (!len) return false;
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  r.rax = lo;
  r.rdx = hi;
  if (len == 3) r.rcx = 0;
  r.rip += (unsigned long long)len;
  return regs_set(pid, &r) == CRYO_OK;
}

/* A passenger's stop: resumed at once, its signals delivered (a group stop stays a
 * stop, until SIGCONT); its own children become passengers too. */
static void passenger_status(struct cryo_session *s, pid_t pid, int status) {
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    passenger_remove(s, pid);
    return;
  }
  if (!WIFSTOPPED(status)) return;
  int sig = WSTOPSIG(status), event = (status >> 16) & 0xffff;
  unsigned long msg = 0;
  switch (event) {
  case PTRACE_EVENT_FORK:
  case PTRACE_EVENT_VFORK:
  case PTRACE_EVENT_CLONE:
    if (ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg) == 0) passenger_add(s, (pid_t)msg);
    ptrace(PTRACE_CONT, pid, 0, 0);
    return;
  case PTRACE_EVENT_STOP:
    if (sig == SIGTRAP) ptrace(PTRACE_CONT, pid, 0, 0); /* the first stop of an attached child */
    else ptrace(PTRACE_LISTEN, pid, 0, 0);             /* a group stop */
    return;
  case 0: {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
    if (sig == SIGSEGV && si.si_code == SI_KERNEL && passenger_rdtsc(s, pid)) sig = 0;
    ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);
    return;
  }
  default: /* seccomp (the syscall runs), exec, exit, vfork done */
    ptrace(PTRACE_CONT, pid, 0, 0);
    return;
  }
}

/* A task nobody knows stopped: a thread of the debuggee whose clone event is still to
 * come, or (while recording) a process it forked whose fork event is still to come.
 * Returns true when it was taken as a passenger. */
static bool early_passenger(struct cryo_session *s, pid_t tid, int status) {
  if (!s->rec_filter || !s->pid) return false;
  pid_t tgid = proc_field(tid, "Tgid");
  if (!tgid || tgid == s->pid) return false;
  struct passenger *p = passenger_add(s, tgid);
  if (!p) return false;
  if (proc_field(tid, "PPid") == s->pid) p->held = true; /* handle_fork_child lifts breakpoints and resumes it */
  else passenger_status(s, tid, status);
  return true;
}

void passengers_end(struct cryo_session *s, bool kill_them) {
  for (int i = 0; i < s->npass; i++) {
    pid_t pid = s->pass[i].pid;
    if (kill_them) {
      kill(pid, SIGKILL);
      int st;
      while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR) {}
    } else {
      /* its recorded syscalls fail (ENOSYS) from here on; the adapter records only programs
       * it launched, whose passengers are killed with them */
      ptrace(PTRACE_DETACH, pid, 0, 0);
    }
  }
  s->npass = 0;
}

/* A new process appeared through fork/vfork in the debuggee: it must not inherit
 * our breakpoints (a fork copies the int3 bytes). It runs on untraced, or, while the
 * debuggee is recorded, as a passenger (see struct passenger). */
static void handle_fork_child(struct cryo_session *s, pid_t child, bool is_vfork) {
  struct passenger *p = passenger_find(s, child);
  if (!p || !p->held) {
    int st;
    if (wait_for_stop(s, child, &st) != CRYO_OK) return;
  }
  if (!is_vfork) {
    for (int i = 0; i < s->nbps; i++)
      mem_write_raw(s, child, s->bps[i].addr, &s->bps[i].orig, 1);
    sysbuf_fork_child(s, child);
  }
  if (s->rec_filter) {
    p = passenger_add(s, child);
    if (p) p->held = false;
    ptrace(PTRACE_CONT, child, 0, 0);
  } else {
    ptrace(PTRACE_DETACH, child, 0, 0);
  }
}

static bool is_job_control_stop(int sig) {
  return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

enum range_next { RANGE_DONE, RANGE_STEPPED, RANGE_OVER, RANGE_BP_ENTRY };

/* Runs t until it comes back to ret in the frame whose rsp is then sp, with a breakpoint
 * reference there (call_returned takes the hit; a deeper one is stepped over), delivering
 * sig on the way. False: nothing was started. */
static bool run_to_return(struct cryo_session *s, struct thread *t, uint64_t ret, uint64_t sp, int sig) {
  if (bp_add_ref(s, ret) != CRYO_OK) return false;
  t->call_ret = ret;
  t->call_sp = sp;
  t->stepping = false;
  if (resume_thread(s, t, false, sig) != CRYO_OK) {
    step_over_cancel(s, t);
    return false;
  }
  return true;
}

/* At a call of the range, stepping over calls: runs it to its return address in this
 * frame at once (a breakpoint reference there, as range_continues sets after stepping
 * into the callee), rather than stepping into it first. False: step it. */
static bool call_run(struct cryo_session *s, struct thread *t, const struct user_regs_struct *r, uint64_t stop) {
  unsigned len = (unsigned)(stop >> 56) & 15;
  if (!(stop & CRYO_STOP_CALL(0)) || !len || !(t->step_flags & CRYO_STEP_OVER_CALLS) || s->nthreads != 1 || t->call_ret)
    return false;
  /* a breakpoint at the callee's entry is hit in the run and reported with in_step, as
   * when the call is stepped into (RANGE_BP_ENTRY); rsp is this frame's once it returns.
   * From before a flat call (CRYO_STOP_FLAT), the rsp at the call is this one already:
   * one run to the return, without a stop at the call on the way. */
  return run_to_return(s, t, CRYO_STOP_ADDR(stop) + len, r->rsp, 0);
}

/* The next transfer from pc is a flat call with nothing of ours in between (a breakpoint
 * on the way, or on the call itself, is stepped onto as without a plan). */
static bool flat_call_ahead(const struct cryo_session *s, uint64_t pc, uint64_t stop) {
  if (!(stop & CRYO_STOP_FLAT) || (stop & CRYO_STOP_INNER) || !(stop & CRYO_STOP_CALL(0))) return false;
  uint64_t at = CRYO_STOP_ADDR(stop);
  for (int i = 0; i < s->nbps; i++)
    if (s->bps[i].addr > pc && s->bps[i].addr <= at) return false;
  return true;
}

/* Runs t from pc to the next control transfer of its range (or to the range's end) with
 * one breakpoint, instead of a single-step per instruction: up to there the code falls
 * through, so nothing else can be reached but a signal's handler, whose signal stops us
 * first. When that transfer is a jump back into the range (a loop in the line), the
 * breakpoints go on every way out of the range instead, and the loop runs free. A
 * breakpoint on the way is stepped onto, as without a plan. False: step. */
bool plan_run(struct cryo_session *s, struct thread *t, const struct user_regs_struct *r) {
  uint64_t pc = r->rip;
  if (t->nplan < 0 || t->nplan_bp) return false;
  int next = -1;
  for (int i = 0; i < t->nplan; i++) {
    uint64_t at = CRYO_STOP_ADDR(t->plan[i]);
    if (at == pc) return call_run(s, t, r, t->plan[i]); /* else stepped: where it goes is seen */
    if (at > pc) {
      next = i;
      break;
    }
  }
  if (next >= 0 && flat_call_ahead(s, pc, t->plan[next]) && call_run(s, t, r, t->plan[next])) return true;
  uint64_t arm[CRYO_STEP_MAX_ARMED + 1];
  int n = 0;
  uint64_t from = pc + 1, to = next >= 0 ? CRYO_STOP_ADDR(t->plan[next]) : t->range_hi;
  if (next >= 0 && (t->plan[next] & CRYO_STOP_INNER)) {
    for (int i = 0; i < t->nplan && n >= 0; i++) {
      if (t->plan[i] & CRYO_STOP_INNER) continue;
      if (n == CRYO_STEP_MAX_ARMED) n = -1; /* too many ways out: to the jump only */
      else arm[n++] = CRYO_STOP_ADDR(t->plan[i]);
    }
    if (n >= 0) {
      arm[n++] = t->range_hi;
      from = t->range_lo; /* anything in the range can be reached */
      to = t->range_hi;
    }
  }
  if (n <= 0) arm[(n = 1) - 1] = to;
  for (int i = 0; i < s->nbps; i++)
    if (s->bps[i].addr >= from && s->bps[i].addr < to && s->bps[i].addr != pc) return false;
  for (int i = 0; i < n; i++) {
    if (bp_add_ref(s, arm[i]) != CRYO_OK) {
      plan_cancel(s, t);
      return false;
    }
    t->plan_bp[t->nplan_bp++] = arm[i];
  }
  t->stepping = false;
  if (resume_thread(s, t, false, 0) != CRYO_OK) {
    plan_cancel(s, t);
    return false;
  }
  return true;
}

/* A signal delivered in the middle of a range step: its handler runs as a call would
 * (gdb steps over it too), with the interrupted pc for its return address. The
 * breakpoint there is hit when the handler has returned to the same frame (a deeper hit
 * is the handler's own code: call_returned steps over it), and the step goes on from it.
 * A signal that is ignored hits it at once. False: deliver it with a single-step. */
bool handler_over(struct cryo_session *s, struct thread *t, const struct user_regs_struct *r, int sig) {
  if (!sig || !t->range_hi || s->nthreads != 1 || bp_find(s, r->rip)) return false;
  return run_to_return(s, t, r->rip, r->rsp, sig);
}

/* Steps on inside [lo, hi) from where the pc is (stepping already set up). */
static enum range_next range_step(struct cryo_session *s, struct thread *t, const struct user_regs_struct *r) {
  if (r->rip < t->range_lo || r->rip >= t->range_hi) return RANGE_DONE;
  /* a breakpoint inside the range is the user's: step onto it and report it */
  if (bp_find(s, r->rip)) return RANGE_DONE;
  t->range_sp = r->rsp;
  t->range_prev_pc = r->rip;
  if (plan_run(s, t, r)) return RANGE_STEPPED;
  t->stepping = true;
  if (resume_thread(s, t, true, 0) != CRYO_OK) return RANGE_DONE;
  return RANGE_STEPPED;
}

/* Range stepping: after one step inside [lo,hi), step again unless the pc left the
 * range or a call was just entered (rsp went down by 8 and holds a return address just
 * after the previous pc). Over calls (CRYO_STEP_OVER_CALLS), a call runs to its return
 * instead, with a breakpoint there (a reference of this thread's), and stepping goes on
 * from it (call_returned). */
static enum range_next range_continues(struct cryo_session *s, struct thread *t, const struct user_regs_struct *r) {
  if (r->rsp == t->range_sp - 8) {
    uint64_t ret = 0;
    if (mem_read_raw(s, t->tid, r->rsp, &ret, 8) == 8 && ret > t->range_prev_pc && ret <= t->range_prev_pc + 15) {
      if (!(t->step_flags & CRYO_STEP_OVER_CALLS) || s->nthreads != 1 || bp_add_ref(s, ret) != CRYO_OK) return RANGE_DONE;
      t->call_ret = ret;
      t->call_sp = r->rsp + 8;
      t->stepping = false;
      /* a breakpoint at the callee's first instruction is hit by the call: report it */
      if (bp_find(s, r->rip)) return RANGE_BP_ENTRY;
      if (resume_thread(s, t, false, 0) != CRYO_OK) {
        step_over_cancel(s, t);
        return RANGE_DONE;
      }
      return RANGE_OVER;
    }
  }
  return range_step(s, t, r);
}

enum call_back { CALL_REPORT_BP, CALL_REPORT_STEP, CALL_HANDLED };

/* The breakpoint at a stepped-over call's return address was hit by t (rip rewound). */
static enum call_back call_returned(struct cryo_session *s, struct thread *t, const struct user_regs_struct *r) {
  struct breakpoint *bp = bp_find(s, r->rip);
  bool others = bp && bp->refs > 1; /* the user's (or the adapter's) breakpoint here too */
  if (r->rsp < t->call_sp) {
    /* a deeper call of the same function returned here, not the frame that called */
    if (others) return CALL_REPORT_BP;
    if (bp_lift_one(s, r->rip) != CRYO_OK) return CALL_REPORT_STEP;
    t->stepping_over = true;
    t->over_addr = r->rip;
    s->resume_all_pending = true; /* after stepping over it, run on */
    return resume_thread(s, t, true, 0) == CRYO_OK ? CALL_HANDLED : CALL_REPORT_STEP;
  }
  step_over_cancel(s, t);
  if (others) {
    t->range_lo = t->range_hi = 0;
    return CALL_REPORT_BP;
  }
  if (s->nthreads != 1) return CALL_REPORT_STEP; /* threads appeared: stepping alone is not for here */
  return range_step(s, t, r) == RANGE_STEPPED ? CALL_HANDLED : CALL_REPORT_STEP;
}

/* t's step is over at pc: that is its report. */
static bool step_ended(struct thread *t, uint64_t pc) {
  t->range_lo = t->range_hi = 0;
  t->stepping = false;
  t->has_report = true;
  t->report_reason = CRYO_STOP_STEP;
  t->report_addr = pc;
  return true;
}

/* Classifies one waitpid status. Returns true when tid stopped with something to
 * report (t->has_report set). `collecting` is true while all-stop gathers threads:
 * then nothing is resumed here. */
static bool classify(struct cryo_session *s, pid_t tid, int status, bool collecting) {
  if (passenger_find(s, tid)) {
    passenger_status(s, tid, status);
    return false;
  }
  struct thread *t = thread_find(s, tid);
  dbg("status tid=%d status=0x%x collecting=%d known=%d", tid, status, collecting, t != NULL);
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    if (tid == s->pid) {
      cryo_event ev;
      memset(&ev, 0, sizeof ev);
      ev.pid = s->pid;
      ev.tid = tid;
      if (WIFEXITED(status)) {
        ev.kind = CRYO_EV_EXITED;
        ev.code = WEXITSTATUS(status);
      } else {
        ev.kind = CRYO_EV_SIGNALED;
        ev.signo = WTERMSIG(status);
      }
      process_gone(s);
      push_event(s, &ev);
    } else if (t) {
      thread_remove(s, tid);
      cryo_event ev;
      memset(&ev, 0, sizeof ev);
      ev.kind = CRYO_EV_THREAD_EXIT;
      ev.pid = s->pid;
      ev.tid = tid;
      push_event(s, &ev);
    }
    return false;
  }
  if (!WIFSTOPPED(status)) return false;
  if (!t && early_passenger(s, tid, status)) return false;
  if (!t) {
    /* A new thread's first stop can arrive before its parent's clone event. */
    t = thread_add(s, tid, T_RUNNING);
    if (!t) return false;
    t->interrupt_pending = t->fresh = true;
  }
  t->state = T_STOPPED;
  /* what the program made through the syscall buffer since it last ran goes into the log
   * first: everything below sees the log as a trapped run would have made it */
  sysbuf_drain(s);
  if (t->fresh) {
    t->fresh = false;
    for (int i = 0; i < 4; i++)
      if (s->wps[i].used) {
        wps_apply_thread(s, tid);
        break;
      }
  }
  int sig = WSTOPSIG(status);
  int event = (status >> 16) & 0xffff;
  unsigned long msg = 0;
  /* a stop inside the syscall buffer's wrapper (not its own seccomp and exit stops): put
   * where a replay would stand too */
  if (event == PTRACE_EVENT_STOP || (event == 0 && sig != (SIGTRAP | 0x80))) sysbuf_settle(s, t);

  switch (event) {
  case PTRACE_EVENT_CLONE: {
    ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg);
    struct thread *n = thread_find(s, (pid_t)msg);
    if (!n) {
      n = thread_add(s, (pid_t)msg, T_RUNNING);
      if (n) n->interrupt_pending = n->fresh = true; /* its initial PTRACE_EVENT_STOP is coming */
    }
    pin_stop(s); /* several threads run where the kernel likes (pin.c) */
    t = thread_find(s, tid); /* the table may have moved */
    cryo_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = CRYO_EV_THREAD_NEW;
    ev.pid = s->pid;
    ev.tid = (int32_t)msg;
    push_event(s, &ev);
    if (!collecting) resume_thread(s, t, false, 0);
    return false;
  }
  case PTRACE_EVENT_FORK:
  case PTRACE_EVENT_VFORK:
    ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg);
    if (event == PTRACE_EVENT_VFORK) {
      /* the child shares the syscall buffer until it execs: everything traps meanwhile */
      s->sb.vfork = true;
      sysbuf_sync(s);
    }
    if (event == PTRACE_EVENT_VFORK && s->nbps) {
      /* the child shares our memory until it execs: lift breakpoints meanwhile */
      bps_lift(s, s->pid);
      s->vfork_bps_lifted = true;
    }
    pin_child(s, (pid_t)msg); /* a child runs where the kernel likes (pin.c) */
    handle_fork_child(s, (pid_t)msg, event == PTRACE_EVENT_VFORK);
    if (!collecting) resume_thread(s, t, false, 0);
    return false;
  case PTRACE_EVENT_VFORK_DONE:
    s->sb.vfork = false;
    if (s->vfork_bps_lifted) {
      bps_apply(s, s->pid);
      s->vfork_bps_lifted = false;
    }
    if (!collecting) resume_thread(s, t, false, 0);
    return false;
  case PTRACE_EVENT_EXEC: {
    /* every other thread is gone; the exec'ing thread now has the leader's tid */
    pthread_mutex_lock(&s->lock);
    s->nthreads = 0;
    pthread_mutex_unlock(&s->lock);
    t = thread_add(s, s->pid, T_STOPPED);
    checkpoints_forget_live(s); /* a new address space: the tracker followed the old one */
    if (s->rec_filter) {
      /* the filter stays across exec; the vDSO and the syscall buffer's region are new */
      sysbuf_exec(s, s->pid);
      record_patch_vdso(s, s->pid);
    }
    s->nbps = 0;
    memset(s->wps, 0, sizeof s->wps);
    session_open_mem(s);
    t->has_report = true;
    t->report_reason = CRYO_STOP_EXEC;
    t->report_addr = 0;
    return true;
  }
  case PTRACE_EVENT_SECCOMP: {
    t->at_seccomp = true;
    uint64_t at = s->rec_mode == REC_REPLAY ? s->rec_cursor : s->rec_n;
    if (s->rec_filter && s->rec_stop_at != UINT64_MAX && at >= s->rec_stop_at) {
      /* a stop asked at this log position: before the syscall is recorded or replayed,
       * taken back out of the kernel so that the thread stands on its syscall instruction */
      s->rec_stop_at = UINT64_MAX;
      if (seccomp_unenter(s, t) == CRYO_OK) {
        t->has_report = true;
        t->report_reason = CRYO_STOP_SYSCALL;
        t->report_addr = at;
        return true;
      }
    }
    int how = record_on_seccomp(s, t);
    if (how < 0) {
      t->has_report = true;
      t->report_reason = CRYO_STOP_DIVERGED;
      t->report_addr = (uint64_t)s->rec_diverged_nr;
      return true;
    }
    if (!collecting) resume_thread(s, t, t->stepping || t->stepping_over, 0);
    return false;
  }
  case PTRACE_EVENT_STOP:
    if (is_job_control_stop(sig)) {
      /* group-stop: report it like gdb reports a stop signal */
      t->has_report = true;
      t->report_reason = CRYO_STOP_SIGNAL;
      memset(&t->si, 0, sizeof t->si);
      t->si.si_signo = sig;
      t->pending_sig = 0;
      return true;
    }
    if (t->interrupt_pending) {
      t->interrupt_pending = false;
      if (collecting || s->pause_requested) return false;
    }
    if (collecting) return false;
    /* a late or spurious interrupt stop while running: carry on */
    if (!s->pause_requested) resume_thread(s, t, false, 0);
    return false;
  default:
    break;
  }

  if (sig == (SIGTRAP | 0x80)) { /* the exit of a recorded syscall */
    record_on_syscall_exit(s, t);
    /* until ld.so has mapped libc; here rather than at the seccomp stop, which could
     * still move the thread back onto a syscall instruction about to be patched away */
    sysbuf_try_libc(s);
    if (!collecting) resume_thread(s, t, t->stepping || t->stepping_over, 0);
    return false;
  }

  siginfo_t si;
  memset(&si, 0, sizeof si);
  ptrace(PTRACE_GETSIGINFO, tid, 0, &si);

  if (sig == SIGTRAP) {
    struct user_regs_struct r;
    bool have_regs = regs_get(tid, &r) == CRYO_OK;
    if (si.si_code == SI_KERNEL && have_regs && bp_find(s, r.rip - 1)) {
      r.rip -= 1;
      regs_set(tid, &r);
      if (collecting) return false; /* it will hit it again after resuming */
      if (plan_armed(t, r.rip)) {
        /* at the range's next control transfer, or its end: step on from there */
        plan_cancel(s, t);
        if (t->range_hi && range_step(s, t, &r) == RANGE_STEPPED) return false;
        return step_ended(t, r.rip);
      }
      if (t->call_ret && r.rip == t->call_ret) {
        enum call_back k = call_returned(s, t, &r);
        if (k == CALL_HANDLED) return false;
        if (k == CALL_REPORT_STEP) return step_ended(t, r.rip);
      }
      t->has_report = true;
      t->report_reason = CRYO_STOP_BREAKPOINT;
      t->report_addr = r.rip;
      return true;
    }
    if (si.si_code == TRAP_HWBKPT) {
      int slot = wp_hit_slot(tid);
      if (slot >= 0) {
        if (t->stepping_over) s->resume_all_pending = false;
        bp_restore_one(s, t->over_addr);
        t->over_addr = 0;
        t->stepping_over = t->stepping = false;
    t->range_lo = t->range_hi = 0;
        t->has_report = true;
        t->report_reason = CRYO_STOP_WATCHPOINT;
        t->report_addr = s->wps[slot].addr;
        t->report_slot = slot;
        return true;
      }
    }
    if ((t->stepping || t->stepping_over) && si.si_code != SI_USER && si.si_code != SI_TKILL) {
      bp_restore_one(s, t->over_addr);
      t->over_addr = 0;
      if (t->stepping_over) {
        t->stepping_over = false;
        if (s->resume_all_pending && !collecting) resume_all(s);
        return false;
      }
      if (t->range_hi && have_regs && !collecting) {
        enum range_next k = range_continues(s, t, &r);
        if (k == RANGE_STEPPED || k == RANGE_OVER) return false;
        if (k == RANGE_BP_ENTRY) {
          t->has_report = true;
          t->report_reason = CRYO_STOP_BREAKPOINT;
          t->report_addr = r.rip;
          return true;
        }
      }
      t->range_lo = t->range_hi = 0;
      t->stepping = false;
      t->has_report = true;
      t->report_reason = CRYO_STOP_STEP;
      t->report_addr = have_regs ? r.rip : 0;
      return true;
    }
  }

  /* rdtsc while recording: emulated and recorded, the program goes on */
  if (sig == SIGSEGV && si.si_code == SI_KERNEL && record_on_sigsegv(s, t)) {
    if (!collecting) resume_thread(s, t, t->stepping || t->stepping_over, 0);
    return false;
  }

  /* a signal for the program: report it; a resume delivers it unless discarded */
  if (t->stepping_over || t->stepping) {
    bp_restore_one(s, t->over_addr);
    t->over_addr = 0;
    if (t->stepping_over) s->resume_all_pending = false;
    t->stepping_over = t->stepping = false;
    t->range_lo = t->range_hi = 0;
  }
  t->si = si;
  t->pending_sig = sig;
  t->has_report = true;
  t->report_reason = CRYO_STOP_SIGNAL;
  t->report_addr = 0;
  return true;
}

/* Interrupts every running thread and waits until all are stopped. */
int stop_all_threads(struct cryo_session *s) {
  for (int i = 0; i < s->nthreads; i++) {
    struct thread *t = &s->threads[i];
    /* always: an interrupt sent earlier may have been consumed by another stop */
    if (t->state == T_RUNNING && ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) == 0) t->interrupt_pending = true;
  }
  while (s->pid && any_running(s)) {
    int status;
    pid_t tid = waitpid(-1, &status, __WALL | __WNOTHREAD);
    if (tid < 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) {
        process_gone(s);
        break;
      }
      return cryo_fail_errno("waitpid while stopping threads");
    }
    classify(s, tid, status, true);
  }
  return CRYO_OK;
}

int handle_wait_status(struct cryo_session *s, pid_t tid, int status) {
  if (passenger_find(s, tid)) {
    passenger_status(s, tid, status);
    return CRYO_OK;
  }
  if (!thread_find(s, tid) && !WIFSTOPPED(status) && tid != s->pid) return CRYO_OK; /* not ours */
  if (!classify(s, tid, status, false)) return CRYO_OK;
  struct thread *t = thread_find(s, tid);
  if (!t) return CRYO_OK;
  pid_t reporter = t->tid;
  stop_all_threads(s);
  t = thread_find(s, reporter);
  s->pause_requested = false;
  if (t && t->has_report) report(s, t);
  return CRYO_OK;
}

/* Resumes every stopped thread, stepping each one that sits on a breakpoint over
 * it first (one at a time, the others still stopped so none can miss it). */
int resume_all(struct cryo_session *s) {
  for (int i = 0; i < s->nthreads; i++) {
    struct thread *t = &s->threads[i];
    if (t->has_report && t->state == T_STOPPED) {
      /* a stop that all-stop caught in another thread: report it now instead */
      s->resume_all_pending = false;
      report(s, t);
      return CRYO_OK;
    }
  }
  s->resume_all_pending = true;
  for (int i = 0; i < s->nthreads; i++) {
    struct thread *t = &s->threads[i];
    /* only a thread whose stop at this pc was reported has "been at" the breakpoint;
     * one that all-stop rewound onto it must execute the int3 and report it */
    if (t->state != T_STOPPED || t->over_done || !t->reported) continue;
    struct user_regs_struct r;
    if (regs_get(t->tid, &r) != CRYO_OK) continue;
    if (!bp_find(s, r.rip)) continue;
    int lrc = bp_lift_one(s, r.rip);
    if (lrc != CRYO_OK) return lrc;
    t->stepping_over = true;
    t->over_done = true;
    t->over_addr = r.rip;
    int sig = t->pending_sig;
    t->pending_sig = 0;
    return resume_thread(s, t, true, sig);
  }
  s->resume_all_pending = false;
  int rc = CRYO_OK;
  for (int i = 0; i < s->nthreads; i++) {
    struct thread *t = &s->threads[i];
    t->over_done = false;
    t->reported = false;
    if (t->state != T_STOPPED) continue;
    int sig = t->pending_sig;
    t->pending_sig = 0;
    int r = resume_thread(s, t, false, sig);
    if (r != CRYO_OK) rc = r;
  }
  return rc;
}
