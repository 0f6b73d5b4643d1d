/* Internal structures of libcryo shared by its modules. */
#ifndef CRYO_INTERNAL_H
#define CRYO_INTERNAL_H

#include "../include/cryo.h"

#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/user.h>

#define MAX_BREAKPOINTS 4096
#define MAX_CHECKPOINTS 1024
#define MAX_FDS 256
#define XSTATE_MAX 16384

enum thread_state { T_RUNNING = 1, T_STOPPED = 2, T_GONE = 3 };

enum rec_mode { REC_OFF = 0, REC_RECORD = 1, REC_REPLAY = 2 };

/* One recorded syscall: its number, arguments and result, and the memory it wrote
 * (out_len bytes of (addr, len, data) runs at out_off in the session's blob). */
struct rec_entry {
  uint32_t nr;
  uint32_t pad;
  int64_t ret;
  uint64_t args[6];
  size_t out_off, out_len;
};

/* A frozen copy cloned, its first stop not yet waited for (inject.c). */
struct frozen_copy {
  pid_t child;
  struct user_regs_struct regs; /* the parent's, at the clone */
  uint8_t code[2];              /* the parent's bytes at regs.rip, under the planted syscall */
  bool planted;                 /* the syscall was written at regs.rip (no gadget): put code back */
};

struct thread {
  pid_t tid;
  int state;
  bool stepping;          /* resumed with PTRACE_SINGLESTEP on the user's behalf */
  uint64_t range_lo, range_hi; /* range stepping: keep stepping while lo <= pc < hi */
  uint64_t range_sp;      /* rsp before the last step, to see a call being entered */
  uint64_t range_prev_pc; /* pc before the last step */
  uint32_t step_flags;    /* CRYO_STEP_* of the range step under way */
  int32_t nplan;          /* the range's control transfers, plan[0..nplan) (-1: not known) */
  uint64_t plan[CRYO_STEP_MAX_STOPS];
  uint64_t plan_bp[CRYO_STEP_MAX_ARMED + 1]; /* running to the next of them (or to any way out
                             of the range): this thread's breakpoint references there */
  int nplan_bp;
  uint64_t call_ret;      /* stepping over a call: its return address, where this thread holds
                             a breakpoint reference (0: none) */
  uint64_t call_sp;       /* ... and rsp once the call has returned to that frame */
  bool stepping_over;     /* single-stepping over a breakpoint before a continue */
  uint64_t over_addr;     /* the breakpoint lifted while this thread steps (0: none) */
  bool over_done;         /* already stepped over a breakpoint during this resume */
  bool interrupt_pending; /* PTRACE_INTERRUPT sent, its stop not seen yet */
  bool reported;          /* its stop was reported: resuming steps over a breakpoint at pc */
  bool rec_pending;       /* a recorded syscall is running: its exit stop will come */
  bool rec_restart;       /* rec_entry was interrupted with -ERESTART_RESTARTBLOCK: the kernel
                             finishes it through restart_syscall, which then completes the entry */
  bool at_seccomp;        /* stopped at a seccomp stop, its syscall not yet run */
  struct rec_entry rec_entry;
  bool fresh;             /* created by clone, first stop not seen: debug registers to set */
  bool has_report;        /* stopped with something to report */
  int report_reason;
  int pending_sig;        /* signal to deliver on resume */
  siginfo_t si;
  uint64_t report_addr;
  int report_slot;
};

struct breakpoint {
  uint64_t addr;
  uint8_t orig;
  int refs;
};

struct watchpoint {
  bool used;
  uint64_t addr;
  int len;
  int kind;
};

struct saved_fd {
  int fd;
  int64_t pos;
};

enum checkpoint_kind { CP_FULL = 1, CP_DELTA = 2 };

/* A checkpoint is either a frozen copy of the process (FULL), or the pages written
 * since its parent (DELTA: parent's state + these pages = its memory). Deltas form a
 * tree under a FULL one; restoring walks the path from the FULL root. */
struct checkpoint {
  int id;
  int kind;
  pid_t pid;                /* FULL: the frozen copy */
  struct checkpoint *parent; /* DELTA: what its pages are relative to */
  int children;             /* checkpoints whose parent this is */
  bool hidden;              /* deleted by the user, kept while others depend on it */
  struct user_regs_struct regs;
  uint8_t *xstate;
  size_t xstate_len;
  uint64_t created_ns, create_ns;
  char *maps;               /* FULL: the memory layout it froze (deltas share their root's) */
  size_t npages;            /* DELTA: sorted page addresses and their contents */
  uint64_t *addrs;
  uint8_t *data;            /* npages * 4096, in a mapping of data_pages pages */
  size_t data_pages;
  size_t nzero;             /* DELTA: anonymous ranges that read as zeros (applied before pages) */
  uint64_t (*zero)[2];
  int nfds;
  struct saved_fd fds[MAX_FDS];
};

struct passenger {
  pid_t pid;
  bool held; /* its first stop came before its parent's fork event: handle_fork_child resumes it */
};

/* The in-process syscall buffer (sysbuf.c): where it is in the debuggee's address space
 * (the same in every checkpoint copy) and the libc sites patched to use it. */
#define SB_MAX_SITES 16
struct sb_site {
  uint64_t addr;       /* the site in libc: the syscall and the instructions displaced with it */
  uint64_t tramp;      /* its trampoline in the code page */
  uint8_t len, pre;    /* bytes displaced; bytes before the syscall instruction */
  uint8_t orig[16];
  uint8_t patch[16];
};

struct sysbuf {
  uint64_t base;        /* the region (code page, header, ring), 0 when none */
  bool mapped;          /* the region exists in the current address space (not after a failed exec) */
  bool libc_done;       /* libc's sites are patched, or it was looked at and cannot be */
  int tries;            /* looks for libc so far */
  pid_t pid;            /* the process the state below was last checked in */
  uint32_t trap;        /* the trap word last written there */
  bool trap_known;
  bool vfork;           /* a vfork child shares the memory: everything traps meanwhile */
  size_t common_len, code_len; /* bytes of the code page: the wrapper, and with the trampolines */
  uint8_t code[4096];   /* the trampolines, at common_len (a copy from before they existed gets them) */
  int nsites;
  struct sb_site sites[SB_MAX_SITES];
  uint8_t *ring;        /* the tracer's copy of a piece of the ring while draining */
  size_t ring_cap;      /* its size */
  uint64_t stop_used;   /* the ring's used bytes as this stop found them, before draining
                         * emptied it: where a syscall in flight wrote its entry's header */
};

struct event_node {
  cryo_event ev;
  struct event_node *next;
};

struct command {
  int (*fn)(struct cryo_session *s, void *arg);
  void *arg;
  int rc;
  bool done;
  char err[1024];
  struct command *next;
};

struct cryo_session {
  pthread_t tracer;
  pid_t tracer_tid;
  bool tracer_started;
  bool inline_mode; /* cryo_session_new_inline: the caller's thread is the tracer */
  pthread_mutex_t lock;
  pthread_cond_t cmd_cv, done_cv, ev_cv;
  struct command *cmd_head, *cmd_tail;
  struct event_node *ev_head, *ev_tail;
  bool closing, closed, in_wait;
  bool nospin; /* CRYO_SPIN=0: hand-offs sleep at once (to measure what spinning buys) */
  uint64_t ev_seq; /* events pushed so far: each event's seq */
  int waiters;
  uint64_t poll_seq; /* the event a cryo_poll_event spins for: cryo_wait_event leaves it */

  /* everything below is owned by the tracer thread; readers on other threads take lock */
  pid_t pid;          /* the debuggee's thread-group id, 0 when none */
  bool launched;      /* launched (killed at close) or attached (detached at close) */
  int memfd;          /* /proc/pid/mem, O_RDWR */
  struct thread *threads;
  int nthreads, cap_threads;
  bool resume_all_pending;  /* a continue is waiting for step-overs to finish */
  uint32_t resume_flags;
  bool pause_requested;
  bool vfork_bps_lifted;
  uint64_t gadget;      /* inject.c: a `syscall` already in the debuggee's vDSO, 0 when none known */
  pid_t gadget_none;    /* the process last found without one (not looked up again) */

  struct breakpoint *bps;
  int nbps;
  struct watchpoint wps[4];

  /* pin.c: the caller, the tracer and a single-threaded recorded debuggee on one CPU */
  bool pinned, pin_known, pin_caller_held;
  int pin_cpu;
  pid_t pin_caller;
  cpu_set_t pin_was; /* the tracer's mask before (the debuggee's too) */

  struct checkpoint *cps[MAX_CHECKPOINTS]; /* every live node, hidden ones included */
  int ncps, next_cp_id;
  struct checkpoint *head; /* live memory = head's state + pages the tracker saw written */
  struct cryo_dirty *dirty;
  int uffd;
  bool dirty_unsupported;
  char dirty_why[512];
  /* work the tracer thread does after the command that queued it has returned (the
   * rest of a checkpoint); every later command waits behind it */
  void (*settle)(struct cryo_session *s);
  struct checkpoint *settling;
  struct frozen_copy settling_copy; /* settling's copy, when its first stop is still to be waited for */
  bool settling_copy_pending;
  bool settle_running;
  struct checkpoint *spare_cp; /* checkpoint_spare: the next checkpoint's memory, touched ahead */
  uint8_t *spare_xs;
  int settle_failed_id;   /* the last checkpoint that could not be completed, and why */
  char settle_error[1100];

  /* passengers (threads.c): processes the debuggee forked while it is recorded. They
   * inherit the seccomp filter, whose trapped syscalls fail without a tracer, so they
   * stay traced and run on: each of their stops is resumed at once. */
  struct passenger *pass;
  int npass, cap_pass;

  /* record and replay (record.c) */
  bool rec_filter;      /* the seccomp filter is in the debuggee */
  int rec_mode;
  struct rec_entry *rec_log;
  size_t rec_n, rec_cap, rec_cursor;
  uint8_t *rec_blob;
  size_t rec_blob_len, rec_blob_cap;
  uint64_t rec_replayed;
  int rec_diverged_nr;
  uint64_t rec_stop_at; /* cryo_record_stop_at: UINT64_MAX when none */
  bool rec_diverged_now;
  uint64_t rec_buffered, rec_trapped; /* entries logged through the buffer, at ptrace stops */
  bool rec_tsc; /* rdtsc faults in the debuggee, so it is recorded (else it reads the live counter) */
  struct sysbuf sb;
};

/* errors.c; dbg() traces to stderr when CRYO_DEBUG is set (never stdout) */
void dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cryo_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cryo_fail_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cryo_clear_error(void);
void cryo_copy_error(char *dst, size_t len);
void cryo_set_error_text(const char *msg);

/* session.c */
/* A syscall result the kernel turns into a restart (or EINTR) on the way out: the
 * program never sees it (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK). */
static inline bool syscall_restarts(int64_t v) { return v == -512 || v == -513 || v == -514 || v == -516; }

/* A system call without libc, for a child made with clone(CLONE_VM): it shares our
 * memory, thread pointer included, so it must not touch errno or any other state of
 * ours. Returns -errno on failure. */
static inline long raw_syscall(long n, long a, long b, long c, long d) {
  long r;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return r;
}

/* The kernel's struct sigaction (rt_sigaction with a sigset size of 8). */
struct kernel_sigaction {
  void *handler;
  unsigned long flags;
  void *restorer;
  uint64_t mask;
};

/* Starts fn(arg) in a child sharing our memory (posix_spawn's way: no page tables
 * copied, no copy-on-write faults), running on stack[0..len), with our signals blocked
 * around the clone so that no handler of ours runs on its stack. The child may only use
 * raw_syscall; stack must stay alive until it has exec'd or is reaped (process.c). */
pid_t clone_vm(int (*fn)(void *), void *arg, void *stack, size_t len, int exit_signal);

/* Whether rdtsc really faults under PR_TSC_SIGSEGV here (record.c). */
bool tsc_traps(void);

/* The ptrace options of every process a session traces (launched, attached, revived):
 * TRACESECCOMP matters to all of them, since a recording filter without it fails the
 * trapped syscalls with ENOSYS. */

#define TRACE_OPTIONS                                                                              \
  (PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEFORK |                \
   PTRACE_O_TRACEVFORK | PTRACE_O_TRACEVFORKDONE | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACESECCOMP)

int run_on_tracer(struct cryo_session *s, int (*fn)(struct cryo_session *, void *), void *arg);
void push_event(struct cryo_session *s, const cryo_event *ev);
uint64_t now_ns(int clock);
/* Waits up to ns, awake, for ready(arg) (see session.c); without the lock held. */
bool spin_wait(const struct cryo_session *s, uint64_t ns, bool (*ready)(const void *), const void *arg);

/* threads.c */
struct thread *thread_find(struct cryo_session *s, pid_t tid);
struct thread *thread_add(struct cryo_session *s, pid_t tid, int state);
void thread_remove(struct cryo_session *s, pid_t tid);
int thread_live_count(struct cryo_session *s);
bool any_running(struct cryo_session *s);
int handle_wait_status(struct cryo_session *s, pid_t tid, int status);
int stop_all_threads(struct cryo_session *s);
int resume_all(struct cryo_session *s);
int wait_for_stop(struct cryo_session *s, pid_t tid, int *status);
void process_gone(struct cryo_session *s);
void passengers_end(struct cryo_session *s, bool kill_them);
int session_shutdown_tracees(struct cryo_session *s);
int session_open_mem(struct cryo_session *s);

/* memory.c */
ssize_t mem_read_raw(struct cryo_session *s, pid_t pid, uint64_t addr, void *buf, size_t len);
int mem_write_raw(struct cryo_session *s, pid_t pid, uint64_t addr, const void *buf, size_t len);
struct breakpoint *bp_find(struct cryo_session *s, uint64_t addr);
int bps_lift(struct cryo_session *s, pid_t pid);
int bps_apply(struct cryo_session *s, pid_t pid);
int bp_lift_one(struct cryo_session *s, uint64_t addr);
int bp_add_ref(struct cryo_session *s, uint64_t addr);
int bp_drop_ref(struct cryo_session *s, uint64_t addr);
/* Ends a step over a call (drops its breakpoint reference). */
void step_over_cancel(struct cryo_session *s, struct thread *t);
/* range stepping with the range's control transfers known: runs t from pc to the next */
bool plan_run(struct cryo_session *s, struct thread *t, const struct user_regs_struct *r);
/* ... and with a signal to deliver there: runs its handler over, as a call */
bool handler_over(struct cryo_session *s, struct thread *t, const struct user_regs_struct *r, int sig);
void bp_restore_one(struct cryo_session *s, uint64_t addr);

/* regs.c */
int regs_get(pid_t tid, struct user_regs_struct *r);
int regs_set(pid_t tid, const struct user_regs_struct *r);
int dr_get(pid_t tid, int idx, uint64_t *v);
int dr_set(pid_t tid, int idx, uint64_t v);
int wps_apply_thread(struct cryo_session *s, pid_t tid);
int wp_hit_slot(pid_t tid);
int xstate_get(pid_t tid, uint8_t *buf, size_t cap, size_t *len);
int xstate_set(pid_t tid, const uint8_t *buf, size_t len);

/* pin.c */
void pin_thread_init(void);
void pin_start(struct cryo_session *s);
void pin_stop(struct cryo_session *s);
void pin_copy(struct cryo_session *s, pid_t pid);
void pin_child(struct cryo_session *s, pid_t pid);
void pin_getaffinity_exit(struct cryo_session *s, pid_t tid, const struct rec_entry *e);

/* inject.c */
int inject_syscall(struct cryo_session *s, pid_t tid, long nr, const uint64_t a[6], int64_t *ret);
void inject_new_space(struct cryo_session *s); /* a new address space: look its syscall gadget up */
void checkpoint_spare(struct cryo_session *s);
int fork_frozen_copy(struct cryo_session *s, pid_t tid, pid_t *child);
int fork_frozen_start(struct cryo_session *s, pid_t tid, struct frozen_copy *fc);
int fork_frozen_finish(struct cryo_session *s, const struct frozen_copy *fc);
int seccomp_unenter(struct cryo_session *s, struct thread *t);
/* process.c: a field of /proc/PID/status, as a number in base ("SigCgt", 16; "Tgid", 10);
 * false when the process or the field is not there. */
bool proc_status(pid_t pid, const char *key, int base, uint64_t *out);
/* process.c: fds 0-2 of a new process by cryo_stdio_mode (launch, revive). */
int stdio_open(const int32_t mode[3], const int32_t fd[3], const char *const path[3], int child_fd[3], int parent_fd[3]);

/* record.c */
int record_on_seccomp(struct cryo_session *s, struct thread *t);
void record_on_syscall_exit(struct cryo_session *s, struct thread *t);
void record_free(struct cryo_session *s);
int record_patch_vdso(struct cryo_session *s, pid_t pid);
int record_unpatch_vdso(struct cryo_session *s, pid_t pid);
bool record_on_sigsegv(struct cryo_session *s, struct thread *t);
void record_on_signal(struct cryo_session *s, struct thread *t, int sig);
void record_buffered(struct cryo_session *s, pid_t pid, const struct rec_entry *e, uint64_t outaddr, uint32_t outlen,
                     const uint8_t *data);
/* the program's own code in pid for an image (vDSO, libc sites), and ours back after */
int record_unpatch(struct cryo_session *s, pid_t pid);
int record_repatch(struct cryo_session *s, pid_t pid);

/* sysbuf.c */
int sysbuf_setup(struct cryo_session *s, pid_t tid, uint64_t at);
void sysbuf_try_libc(struct cryo_session *s);
void sysbuf_drain(struct cryo_session *s);
void sysbuf_settle(struct cryo_session *s, struct thread *t);
void sysbuf_sync(struct cryo_session *s);
int sysbuf_patch_sites(struct cryo_session *s, pid_t pid);
int sysbuf_unpatch_sites(struct cryo_session *s, pid_t pid);
void sysbuf_fork_child(struct cryo_session *s, pid_t child);
void sysbuf_exec(struct cryo_session *s, pid_t tid);
void sysbuf_detach(struct cryo_session *s);
uint64_t sysbuf_vdso_entry(struct cryo_session *s);
uint64_t sysbuf_allowed_ip(struct cryo_session *s);
void sysbuf_free(struct cryo_session *s);

/* checkpoint.c */
void checkpoints_kill_all(struct cryo_session *s);
void checkpoints_forget_live(struct cryo_session *s);

#endif
