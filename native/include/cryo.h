/* libcryo: the native ptrace checkpoint engine of Cryo.
 *
 * A stable C ABI for one consumer at a time per session (the debug adapter through
 * koffi, the `cryo` command, tests). Every function returns a status (CRYO_OK or a
 * negative CRYO_E*); on failure cryo_last_error() returns a message for the calling
 * thread naming the syscall, errno, pid and address involved.
 *
 * Threading: each session owns one tracer thread that issues every ptrace request
 * and waitpid (the kernel only accepts them from the thread that attached). Calls
 * from any thread are forwarded to it; none of them blocks while a debuggee runs,
 * except cryo_wait_event, which is meant to be called off the main thread.
 */
#ifndef CRYO_H
#define CRYO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CRYO_API __attribute__((visibility("default")))

#define CRYO_ABI_VERSION 10

enum cryo_status {
  CRYO_OK = 0,
  CRYO_EFAIL = -1,        /* a syscall failed: see the message */
  CRYO_EINVAL = -2,       /* bad argument */
  CRYO_ENOPROC = -3,      /* no debuggee, or it has exited */
  CRYO_ERUNNING = -4,     /* the request needs the debuggee stopped */
  CRYO_ENOTHREAD = -5,    /* no such thread */
  CRYO_ETIMEDOUT = -6,    /* cryo_wait_event: nothing within the timeout */
  CRYO_ECLOSED = -7,      /* the session is closing or closed */
  CRYO_EUNSUPPORTED = -8, /* not possible for this process or kernel (message says why) */
  CRYO_ENOENT = -9,       /* no such breakpoint, watchpoint or checkpoint */
  CRYO_EPERM = -10        /* the kernel refused (ptrace permissions, another tracer) */
};

/* Event kinds delivered by cryo_wait_event. */
enum cryo_event_kind {
  CRYO_EV_STOPPED = 1,     /* every thread is stopped; tid and reason say why */
  CRYO_EV_EXITED = 2,      /* the process exited: code */
  CRYO_EV_SIGNALED = 3,    /* the process was killed by signo */
  CRYO_EV_THREAD_NEW = 4,  /* tid is new (created by clone), process keeps running */
  CRYO_EV_THREAD_EXIT = 5  /* tid exited, process keeps running */
};

/* Why the process stopped (CRYO_EV_STOPPED). */
enum cryo_stop_reason {
  CRYO_STOP_BREAKPOINT = 1, /* addr = breakpoint address (pc already set back to it) */
  CRYO_STOP_STEP = 2,       /* a single step of tid completed */
  CRYO_STOP_WATCHPOINT = 3, /* addr = watched address, slot = watchpoint slot */
  CRYO_STOP_SIGNAL = 4,     /* signo is pending for tid: resumes deliver it unless discarded */
  CRYO_STOP_INTERRUPT = 5,  /* cryo_interrupt was served */
  CRYO_STOP_EXEC = 6,       /* the process called execve: every breakpoint is gone */
  CRYO_STOP_DIVERGED = 7,   /* replay met a syscall (number in addr) the log does not have next:
                               the program is live from here, the log beyond is dropped */
  CRYO_STOP_SYSCALL = 8     /* cryo_record_stop_at: tid stands on the syscall instruction of log
                               entry addr, not run yet (it runs, and is recorded or replayed,
                               when resumed) */
};

/* struct user_regs_struct, 27 x uint64 in the kernel's order. */
#define CRYO_NREGS 27

typedef struct cryo_event {
  int32_t kind;
  int32_t pid;
  int32_t tid;
  int32_t reason;
  int32_t signo;
  int32_t code;   /* exit code, or si_code of the signal */
  int32_t slot;   /* watchpoint slot */
  /* STOPPED: 1 while tid is still stepping over a call for cryo_step_range
   * (CRYO_STEP_OVER_CALLS): cryo_continue with CRYO_RESUME_KEEP_STEP goes on with it */
  int32_t in_step;
  uint64_t addr;  /* breakpoint / watch address, or si_addr of a fault */
  uint8_t siginfo[128];
  /* STOPPED: the registers of tid at the stop (has_regs 1), as cryo_get_regs would give
   * them: a caller inspecting the stop needs them first, without a trip to the tracer */
  uint64_t regs[CRYO_NREGS];
  int32_t has_regs;
  int32_t has_pos; /* STOPPED while recorded: record_pos is cryo_record_position at the stop */
  uint64_t record_pos;
  uint64_t seq;    /* 1 for the session's first event, then one more for each */
  /* STOPPED: xmm0-15 of tid (low, high quadword each), has_xmm 1: what unwinding and
   * variables ask of the vector registers, without the whole xsave area */
  uint64_t xmm[32];
  int32_t has_xmm;
  int32_t pad2;
} cryo_event;

/* stdio of a launched program */
enum cryo_stdio_mode {
  CRYO_STDIO_INHERIT = 0, /* the caller's descriptor */
  CRYO_STDIO_NULL = 1,    /* /dev/null */
  CRYO_STDIO_FILE = 2,    /* path, opened read for stdin, write+create+truncate otherwise */
  CRYO_STDIO_PIPE = 3,    /* a pipe; the caller's end is returned in fd */
  CRYO_STDIO_FD = 4       /* the caller's descriptor fd */
};

enum cryo_launch_flags {
  CRYO_LAUNCH_NO_ASLR = 1, /* personality(ADDR_NO_RANDOMIZE), as gdb does by default */
  CRYO_LAUNCH_RUN = 2      /* resume it at once after the exec stop, in the same request (it runs
                              when cryo_launch returns: no cryo_continue first) */
};

typedef struct cryo_launch_opts {
  const char *path;        /* executable; searched in PATH when it has no slash */
  const uint8_t *argv;     /* argc NUL-terminated strings, one after the other */
  int32_t argc;
  int32_t envc;            /* -1 inherits the caller's environment */
  const uint8_t *envp;     /* envc NUL-terminated strings */
  const char *cwd;         /* NULL: the caller's */
  int32_t stdio_mode[3];
  int32_t stdio_fd[3];     /* in: for CRYO_STDIO_FD; out: the caller's end for CRYO_STDIO_PIPE */
  const char *stdio_path[3];
  uint32_t flags;
} cryo_launch_opts;

typedef struct cryo_session cryo_session;

CRYO_API int cryo_abi_version(void);
CRYO_API const char *cryo_version(void);
/* Message of the last failed call made by this thread ("" if none). */
CRYO_API const char *cryo_last_error(void);

CRYO_API cryo_session *cryo_session_new(void);
/* A session without a tracer thread: the calling thread is the tracer, every call runs
 * on it at once, and cryo_wait_event blocks in waitpid itself (timeout -1 only). Only
 * that thread may use the session. For a supervisor that does nothing while its program
 * runs (`cryo run`): no thread to start and no hand-offs, about 0.3 ms less per run. */
CRYO_API cryo_session *cryo_session_new_inline(void);
/* Kills a launched debuggee and every checkpoint, detaches an attached one, stops
 * the tracer thread and wakes cryo_wait_event callers with CRYO_ECLOSED. */
CRYO_API int cryo_session_close(cryo_session *s);
/* Frees the session; only after cryo_session_close and once no call is under way. */
CRYO_API void cryo_session_free(cryo_session *s);

/* Starts a program stopped before its first instruction (at the exec stop). */
CRYO_API int cryo_launch(cryo_session *s, cryo_launch_opts *o, int32_t *pid);
/* Attaches to every thread of a running process and stops it. */
CRYO_API int cryo_attach(cryo_session *s, int32_t pid);
/* Removes breakpoints and watchpoints and lets the process run on untraced. */
CRYO_API int cryo_detach(cryo_session *s);
/* SIGKILL to the debuggee; waits until it is gone (an EXITED/SIGNALED event follows). */
CRYO_API int cryo_kill(cryo_session *s);

CRYO_API int32_t cryo_pid(cryo_session *s);
/* Fills tids (up to max), returns the count in *n. */
CRYO_API int cryo_threads(cryo_session *s, int32_t *tids, int32_t max, int32_t *n);

/* Waits up to timeout_ms (-1: forever) for the next event. */
CRYO_API int cryo_wait_event(cryo_session *s, cryo_event *ev, int32_t timeout_ms);
/* Takes the event numbered seq (see cryo_event.seq), waiting for it awake for at most
 * spin_us microseconds: for a caller that just resumed a step and will get its stop
 * sooner than a sleeping thread wakes. CRYO_ETIMEDOUT if it has not come, or if an
 * earlier event is still queued or taken by a cryo_wait_event caller (take those first,
 * in order). spin_us is capped at 2000. */
CRYO_API int cryo_poll_event(cryo_session *s, cryo_event *ev, uint64_t seq, int32_t spin_us);

enum cryo_resume_flags {
  CRYO_RESUME_DISCARD_SIGNAL = 1, /* do not deliver the pending signal of the stopped thread */
  CRYO_RESUME_KEEP_STEP = 2       /* a step over a call that a stop interrupted goes on (in_step) */
};
/* Resumes every thread; a thread at a breakpoint steps over it first. */
CRYO_API int cryo_continue(cryo_session *s, uint32_t flags);
/* Single-steps tid alone (others stay stopped); a STOPPED event (STEP) follows. */
CRYO_API int cryo_step(cryo_session *s, int32_t tid, uint32_t flags);
enum cryo_step_flags {
  /* a call made from the range runs (every thread resumed) to its return into the same
   * frame, and the stepping goes on from there; a breakpoint or signal on the way stops
   * with in_step 1. Without it, the step stops in the callee. Single-threaded processes
   * only: with several threads it stops in the callee as without it. */
  CRYO_STEP_OVER_CALLS = 1
};
/* Steps tid alone while its pc stays in [lo, hi) (a source line), in the engine, without
 * a round trip per instruction. A STOPPED event (STEP) follows when the pc leaves the
 * range, or right after a call instruction was executed (the pc is then in the callee:
 * the caller decides whether to step into it or over it), unless CRYO_STEP_OVER_CALLS. */
CRYO_API int cryo_step_range(cryo_session *s, int32_t tid, uint64_t lo, uint64_t hi, uint32_t flags);
/* cryo_step_range for a range whose instructions the caller has decoded: stops[] (sorted)
 * are the addresses of every instruction in [lo, hi) that may not fall through to the
 * next one (jumps, calls, returns, syscalls, traps), with CRYO_STOP_INNER or'ed into
 * those that are direct jumps to an instruction of the range, and CRYO_STOP_CALL(len)
 * into calls (len: the call instruction's length; with CRYO_STEP_OVER_CALLS the call
 * then runs to its return at once, not stepped into first). The thread then runs to
 * the next of them, or to hi, with one breakpoint instead of a single-step per
 * instruction; when that next one is an inner jump (a loop inside the line), it runs
 * to any of the others or hi instead (up to CRYO_STEP_MAX_ARMED of them). Those
 * instructions themselves are stepped. More than CRYO_STEP_MAX_STOPS: stepped as
 * cryo_step_range does. */
#define CRYO_STEP_MAX_STOPS 64
#define CRYO_STEP_MAX_ARMED 8
#define CRYO_STOP_INNER (1ull << 63)
#define CRYO_STOP_CALL(len) ((1ull << 62) | ((unsigned long long)((len) & 15) << 56))
/* or'ed into a call: no instruction of the range before it moves rsp, so the frame's rsp
 * at the call is the one at any pc before it. With CRYO_STEP_OVER_CALLS the thread then
 * runs from there to the call's return at once, without stopping at the call. */
#define CRYO_STOP_FLAT (1ull << 60)
#define CRYO_STOP_ADDR(stop) ((stop) & ((1ull << 56) - 1))
CRYO_API int cryo_step_range_stops(cryo_session *s, int32_t tid, uint64_t lo, uint64_t hi, uint32_t flags,
                                   const uint64_t *stops, uint32_t nstops);
/* Stops every running thread; a STOPPED event (INTERRUPT) follows. */
CRYO_API int cryo_interrupt(cryo_session *s);
/* Sets the signal that tid will receive when resumed (0: none). */
CRYO_API int cryo_set_signal(cryo_session *s, int32_t tid, int32_t signo);

/* struct user_regs_struct, 27 x uint64 in the kernel's order (CRYO_NREGS, above). */
CRYO_API int cryo_get_regs(cryo_session *s, int32_t tid, uint64_t *regs);
CRYO_API int cryo_set_regs(cryo_session *s, int32_t tid, const uint64_t *regs);
/* The full xsave area (NT_X86_XSTATE); *len receives its size. */
CRYO_API int cryo_get_xstate(cryo_session *s, int32_t tid, uint8_t *buf, size_t cap, size_t *len);
CRYO_API int cryo_set_xstate(cryo_session *s, int32_t tid, const uint8_t *buf, size_t len);
CRYO_API int cryo_get_debugreg(cryo_session *s, int32_t tid, int32_t index, uint64_t *value);

/* Reads len bytes at addr; breakpoint bytes read as the original instruction.
 * Reads what it can: *nread is short where memory is unmapped. */
CRYO_API int cryo_read_memory(cryo_session *s, uint64_t addr, uint8_t *buf, size_t len, size_t *nread);
/* Writes, including read-only text; breakpoints stay in place over the new bytes. */
CRYO_API int cryo_write_memory(cryo_session *s, uint64_t addr, const uint8_t *buf, size_t len);

CRYO_API int cryo_breakpoint_insert(cryo_session *s, uint64_t addr);
CRYO_API int cryo_breakpoint_remove(cryo_session *s, uint64_t addr);

enum cryo_watch_kind { CRYO_WATCH_EXEC = 0, CRYO_WATCH_WRITE = 1, CRYO_WATCH_READWRITE = 3 };
/* Hardware watchpoint on every thread; len 1, 2, 4 or 8, addr aligned to len. */
CRYO_API int cryo_watchpoint_set(cryo_session *s, uint64_t addr, int32_t len, int32_t kind, int32_t *slot);
CRYO_API int cryo_watchpoint_clear(cryo_session *s, int32_t slot);

/* Runs syscall nr with args in stopped thread tid; memory and registers are as
 * before afterwards. *ret receives the raw result (-errno on failure). */
CRYO_API int cryo_inject_syscall(cryo_session *s, int32_t tid, int64_t nr, const uint64_t *args, int64_t *ret);

enum cryo_checkpoint_kind {
  CRYO_CHECKPOINT_FULL = 1, /* a frozen copy-on-write copy of the process */
  CRYO_CHECKPOINT_DELTA = 2 /* the pages written since its parent checkpoint */
};

typedef struct cryo_checkpoint_info {
  int32_t id;
  int32_t pid;         /* FULL: the frozen copy; DELTA: 0 */
  uint64_t pc;
  uint64_t created_ns; /* CLOCK_REALTIME */
  uint64_t create_ns;  /* how long taking it took */
  int32_t kind;        /* cryo_checkpoint_kind */
  int32_t parent;      /* DELTA: the checkpoint it is relative to (possibly deleted: then 0) */
  uint64_t bytes;      /* memory it holds in the debugger (page data) */
} cryo_checkpoint_info;

/* How checkpoints are taken: 1 if written pages are tracked (later checkpoints are
 * deltas), 0 if every checkpoint is a full copy; why says which and why. */
CRYO_API int cryo_checkpoint_mode(cryo_session *s, char *why, size_t len, int32_t *incremental);

/* Freezes a copy of the stopped process; *id names it. It returns once the state is
 * fixed (registers; a first checkpoint's fork); the rest (a delta's written pages, the
 * tracker's arming, file offsets) is done on the tracer thread right after, before any
 * later command runs, so nothing can change the process meanwhile. cryo_checkpoint_list
 * waits for it. If that rest fails, the checkpoint goes, and using its id says why. */
CRYO_API int cryo_checkpoint_create(cryo_session *s, int32_t *id);
/* Replaces the debuggee by a fresh copy of checkpoint id (which stays restorable);
 * *pid receives the new process id. Breakpoints and watchpoints carry over. */
CRYO_API int cryo_checkpoint_restore(cryo_session *s, int32_t id, int32_t *pid);
CRYO_API int cryo_checkpoint_delete(cryo_session *s, int32_t id);
CRYO_API int cryo_checkpoint_list(cryo_session *s, cryo_checkpoint_info *out, int32_t max, int32_t *n);

/* Record and replay of the inputs that make a run nondeterministic (syscall results:
 * reads, time, randomness, pids; output syscalls so they are not repeated). */
enum cryo_record_mode { CRYO_RECORD_OFF = 0, CRYO_RECORD_ON = 1, CRYO_RECORD_REPLAYING = 2 };
enum { CRYO_RECORD_TSC = 1 }; /* flags: rdtsc is recorded (the machine makes it fault) */
typedef struct cryo_record_stats {
  int32_t mode;
  int32_t flags;
  uint64_t entries;  /* syscalls in the log */
  uint64_t cursor;   /* the position: entries replayed or recorded so far */
  uint64_t bytes;    /* memory the log holds */
  uint64_t replayed; /* syscalls annulled and given back since the session began */
  uint64_t buffered; /* syscalls logged through the in-process buffer (no ptrace stop) */
  uint64_t trapped;  /* syscalls logged at ptrace stops */
} cryo_record_info;

/* Injects the seccomp filter (once per process tree) and starts recording. */
CRYO_API int cryo_record_start(cryo_session *s);
/* The current position in the log: tag a checkpoint with it to replay from there. */
CRYO_API int cryo_record_position(cryo_session *s, uint64_t *pos);
/* After restoring a checkpoint taken at position pos: re-execution replays the log
 * from there until it reaches its end, then records again. */
CRYO_API int cryo_replay_from(cryo_session *s, uint64_t pos);
/* Drops the log beyond pos (the past was changed: its old future is gone). */
CRYO_API int cryo_record_truncate(cryo_session *s, uint64_t pos);
CRYO_API int cryo_record_stats(cryo_session *s, cryo_record_info *st);
/* On a session whose debuggee was just revived from a checkpoint of an image's history
 * (cryo_image_open_checkpoint): installs the recording filter and replays `log` (the
 * bytes of cryo_image_log) from position 0, so re-execution sees the recorded inputs
 * again; once the log is exhausted the program is live and recorded. A damaged log is
 * CRYO_EINVAL and changes nothing. */
CRYO_API int cryo_record_load(cryo_session *s, const uint8_t *log, size_t len);
/* Stops the program (CRYO_STOP_SYSCALL) when it is about to make the recorded syscall
 * at log position pos, whether recording (pos = the next entry) or replaying: the same
 * place in both, so a position taken there is found again exactly. UINT64_MAX clears. */
CRYO_API int cryo_record_stop_at(cryo_session *s, uint64_t pos);

/* ---- images (docs/image-format.md): a frozen process in a file ---- */
typedef struct cryo_image cryo_image;
/* Opens and validates the whole image (checksums, structure); a damaged one is
 * refused with a message naming the file and what is wrong. */
CRYO_API int cryo_image_open(const char *path, cryo_image **out);
CRYO_API void cryo_image_close(cryo_image *img);
/* Copies len bytes of the image's memory at addr; *nread is short at the first page
 * that holds no content (absent, unreadable, a clean file page whose file is gone). */
CRYO_API int cryo_image_read_memory(cryo_image *img, uint64_t addr, uint8_t *buf, size_t len, size_t *nread);
/* `cryo inspect --json` and `cryo inspect` as malloc'd strings (cryo_image_free_string). */
CRYO_API int cryo_image_json(cryo_image *img, char **out);
CRYO_API int cryo_image_text(cryo_image *img, char **out);
CRYO_API void cryo_image_free_string(char *s);
/* A thread's registers (CRYO_NREGS, as cryo_get_regs) and xsave area (as cryo_get_xstate). */
CRYO_API int cryo_image_thread_regs(cryo_image *img, int32_t tid, uint64_t *regs);
CRYO_API int cryo_image_thread_xstate(cryo_image *img, int32_t tid, uint8_t *buf, size_t cap, size_t *len);
/* Field bundles (`cryo run --checkpoint-every`): the checkpoints an image carries, oldest
 * first, each a complete image embedded in the file, and the record log from the first
 * of them to the moment of the image. Positions are in that log: 0 is the oldest
 * checkpoint. An image without a history has none (n = 0, log length 0). */
typedef struct cryo_history_entry {
  uint64_t position; /* record position of the checkpoint in cryo_image_log's log */
  uint64_t time_ns;  /* CLOCK_REALTIME when it was taken */
  uint64_t pc;
  uint64_t offset;   /* where its embedded image lies in the file (page-aligned) */
  uint64_t length;
} cryo_history_entry;
/* Fills out (up to max entries); *n receives the count. */
CRYO_API int cryo_image_history(cryo_image *img, cryo_history_entry *out, int32_t max, int32_t *n);
/* Checkpoint `index` of the history as an image of its own (validated like any image;
 * independent of img afterwards: close both). */
CRYO_API int cryo_image_open_checkpoint(cryo_image *img, int32_t index, cryo_image **out);
/* The record log (for cryo_record_load): *len receives its size; the bytes are copied
 * into buf when cap is large enough (call with cap 0 to learn the size). */
CRYO_API int cryo_image_log(cryo_image *img, uint8_t *buf, size_t cap, size_t *len);
/* Whether the image can be revived on this machine; every problem in one message. */
CRYO_API int cryo_image_check(cryo_image *img);

typedef struct cryo_revive_opts {
  int32_t stdio_mode[3]; /* cryo_stdio_mode except FILE; INHERIT: the caller's own */
  int32_t stdio_fd[3];   /* in: for CRYO_STDIO_FD; out: the caller's end for CRYO_STDIO_PIPE */
  char notes[4096];      /* out: what was reconnected or changed, one line each */
} cryo_revive_opts;
/* Builds a live process from the image, traced by the session (which must have no
 * debuggee), stopped where the image was taken; the session owns it as if launched.
 * Descriptors 0-2 that cannot be reopened are connected to stdio_mode's. */
CRYO_API int cryo_image_revive(cryo_session *s, cryo_image *img, cryo_revive_opts *o, int32_t *pid);
/* Writes an image (mode 0600, atomically) of checkpoint id, or of the stopped debuggee
 * itself when id is 0. */
CRYO_API int cryo_image_save(cryo_session *s, int32_t id, const char *path);

#ifdef __cplusplus
}
#endif
#endif
