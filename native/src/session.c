/* Sessions: the tracer thread, the command queue that feeds it, and the event queue.
 *
 * ptrace only accepts requests from the thread that attached, so each session runs
 * one tracer thread. It alternates between serving queued commands and blocking in
 * waitpid while any tracee runs; a real-time signal without SA_RESTART interrupts
 * that waitpid when a command arrives. __WNOTHREAD keeps waitpid to this thread's
 * own children and tracees, so the host's other children (Node's) are never reaped.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int wake_signal = -1;
static pthread_once_t wake_once = PTHREAD_ONCE_INIT;

static void wake_handler(int sig) { (void)sig; }

/* Picks a real-time signal nobody in this process handles yet. */
static void install_wake_signal(void) {
  for (int sig = SIGRTMIN + 6; sig <= SIGRTMAX - 2; sig++) {
    struct sigaction old;
    if (sigaction(sig, NULL, &old) != 0) continue;
    if (old.sa_handler != SIG_DFL) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = wake_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: waitpid must return EINTR */
    if (sigaction(sig, &sa, NULL) == 0) {
      wake_signal = sig;
      return;
    }
  }
}

uint64_t now_ns(int clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void push_event(struct cryo_session *s, const cryo_event *ev) {
  struct event_node *n = calloc(1, sizeof *n);
  if (!n) return;
  n->ev = *ev;
  pthread_mutex_lock(&s->lock);
  n->ev.seq = s->ev_seq + 1;
  __atomic_store_n(&s->ev_seq, n->ev.seq, __ATOMIC_RELEASE);
  if (s->ev_tail) s->ev_tail->next = n;
  else s->ev_head = n;
  s->ev_tail = n;
  pthread_cond_broadcast(&s->ev_cv);
  pthread_mutex_unlock(&s->lock);
}

/* Waking a sleeping thread on the other CPU costs about 40 us on this kind of VM (the
 * idle vCPU halts and needs an interrupt), and a request is two such wake-ups, a stop
 * reported to the caller three: a request served in microseconds took 80, a single step
 * 150. A debugger's requests come in bursts (a stop's registers, a checkpoint, the next
 * step), so each side waits awake for a moment before it sleeps. The spins yield, so a
 * runnable debuggee on the same CPU is not kept off it. */
#define TRACER_SPIN_NS 300000u
#define CALLER_SPIN_NS 200000u

bool spin_wait(const struct cryo_session *s, uint64_t ns, bool (*ready)(const void *), const void *arg) {
  if (s->nospin) return ready(arg);
  uint64_t end = now_ns(CLOCK_MONOTONIC) + ns;
  for (unsigned i = 0;; i++) {
    if (ready(arg)) return true;
    if ((i & 15) == 15) {
      if (now_ns(CLOCK_MONOTONIC) > end) return false;
      sched_yield();
    } else {
      __builtin_ia32_pause();
    }
  }
}

static bool has_command(const void *arg) {
  const struct cryo_session *s = arg;
  return __atomic_load_n(&s->cmd_head, __ATOMIC_ACQUIRE) || __atomic_load_n(&s->closed, __ATOMIC_ACQUIRE);
}

static bool command_done(const void *arg) { return __atomic_load_n(&((const struct command *)arg)->done, __ATOMIC_ACQUIRE); }

/* Called with s->lock held, returns with it released. (Polling waitpid awake instead
 * of blocking was tried: no gain measured on a step, and a pause right after a continue
 * hung in the attach test.) */
static void serve_waitpid(struct cryo_session *s) {
  s->in_wait = true;
  pthread_mutex_unlock(&s->lock);
  int status;
  pid_t tid = waitpid(-1, &status, __WALL | __WNOTHREAD);
  pthread_mutex_lock(&s->lock);
  s->in_wait = false;
  pthread_mutex_unlock(&s->lock);
  if (tid < 0) {
    if (errno == ECHILD) {
      /* nothing left to wait for: every tracee is gone */
      if (s->pid) process_gone(s);
      s->npass = 0;
    }
    return;
  }
  handle_wait_status(s, tid, status);
}

static void *tracer_main(void *arg) {
  struct cryo_session *s = arg;
  s->tracer_tid = (pid_t)syscall(SYS_gettid);
  pin_thread_init(); /* not the one CPU of a caller that another session pinned */
  sigset_t set;
  sigemptyset(&set);
  if (wake_signal > 0) sigaddset(&set, wake_signal);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);

  pthread_mutex_lock(&s->lock);
  for (;;) {
    if (s->cmd_head) {
      struct command *c = s->cmd_head;
      s->cmd_head = c->next;
      if (!s->cmd_head) s->cmd_tail = NULL;
      pthread_mutex_unlock(&s->lock);
      cryo_clear_error();
      c->rc = c->fn(s, c->arg);
      if (c->rc != CRYO_OK) cryo_copy_error(c->err, sizeof c->err);
      pthread_mutex_lock(&s->lock);
      __atomic_store_n(&c->done, true, __ATOMIC_RELEASE);
      pthread_cond_broadcast(&s->done_cv);
      if (s->settle) {
        void (*settle)(struct cryo_session *) = s->settle;
        s->settle = NULL;
        s->settle_running = true;
        pthread_mutex_unlock(&s->lock);
        /* the caller just woken must not wait for this work on our CPU (seen: the
         * checkpoint call taking the whole copy's time in one call of two) */
        sched_yield();
        settle(s);
        pthread_mutex_lock(&s->lock);
        s->settle_running = false;
        s->settling = NULL;
        pthread_cond_broadcast(&s->done_cv);
      }
      continue;
    }
    if (s->closed) break;
    /* passengers run on while the debuggee is stopped, or gone: their stops are served too */
    if ((s->pid && any_running(s)) || s->npass) {
      serve_waitpid(s);
      pthread_mutex_lock(&s->lock);
      continue;
    }
    /* A debugger's commands come in bursts (a stop's registers, memory, a checkpoint,
     * the next step): wait for the next one awake for a moment before sleeping. */
    pthread_mutex_unlock(&s->lock);
    bool more = spin_wait(s, TRACER_SPIN_NS, has_command, s);
    pthread_mutex_lock(&s->lock);
    /* a command queued after the spin gave up signalled nobody: look before sleeping */
    if (more || s->cmd_head) continue;
    pthread_cond_wait(&s->cmd_cv, &s->lock);
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* An inline session's command, on the caller's thread (which is the tracer). */
static int run_inline(struct cryo_session *s, int (*fn)(struct cryo_session *, void *), void *arg) {
  if (s->closed) return cryo_fail(CRYO_ECLOSED, "the session is closed");
  if ((pid_t)syscall(SYS_gettid) != s->tracer_tid)
    return cryo_fail(CRYO_EINVAL, "an inline session is used from the thread that made it only");
  cryo_clear_error();
  int rc = fn(s, arg);
  if (s->settle) {
    void (*settle)(struct cryo_session *) = s->settle;
    s->settle = NULL;
    settle(s);
    s->settling = NULL;
  }
  if (rc == CRYO_OK) cryo_clear_error();
  return rc;
}

/* Runs fn on the tracer thread and waits for it; the error message follows back. */
int run_on_tracer(struct cryo_session *s, int (*fn)(struct cryo_session *, void *), void *arg) {
  if (s->inline_mode) return run_inline(s, fn, arg);
  struct command c;
  memset(&c, 0, sizeof c);
  c.fn = fn;
  c.arg = arg;
  pthread_mutex_lock(&s->lock);
  if (s->closed) {
    pthread_mutex_unlock(&s->lock);
    return cryo_fail(CRYO_ECLOSED, "the session is closed");
  }
  if (s->cmd_tail) s->cmd_tail->next = &c;
  else s->cmd_head = &c;
  s->cmd_tail = &c;
  pthread_cond_signal(&s->cmd_cv);
  /* blocked in waitpid (the debuggee runs): interrupt it before waiting for the answer */
  if (s->in_wait && wake_signal > 0) syscall(SYS_tgkill, getpid(), s->tracer_tid, wake_signal);
  pthread_mutex_unlock(&s->lock);
  spin_wait(s, CALLER_SPIN_NS, command_done, &c);
  pthread_mutex_lock(&s->lock);
  while (!c.done) {
    /* The tracer may be blocked in waitpid: interrupt it. A signal sent just before
     * it enters waitpid is lost, so keep sending until the command is picked up. */
    if (s->in_wait && wake_signal > 0) syscall(SYS_tgkill, getpid(), s->tracer_tid, wake_signal);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 2000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&s->done_cv, &s->lock, &ts);
  }
  pthread_mutex_unlock(&s->lock);
  if (c.rc != CRYO_OK) cryo_set_error_text(c.err);
  else cryo_clear_error();
  return c.rc;
}

CRYO_API int cryo_abi_version(void) { return CRYO_ABI_VERSION; }
CRYO_API const char *cryo_version(void) { return "0.1.0"; }

static struct cryo_session *session_alloc(const char *who) {
  struct cryo_session *s = calloc(1, sizeof *s);
  if (!s) {
    cryo_fail(CRYO_EFAIL, "%s: out of memory", who);
    return NULL;
  }
  s->memfd = -1;
  s->uffd = -1;
  s->next_cp_id = 1;
  s->rec_stop_at = UINT64_MAX;
  const char *spin = getenv("CRYO_SPIN");
  s->nospin = spin && strcmp(spin, "0") == 0;
  pthread_mutex_init(&s->lock, NULL);
  /* the timed waits count on the monotonic clock: a step of the wall clock (NTP, a VM
   * resumed from a snapshot) must not stretch a 250 ms wait into hours */
  pthread_condattr_t mono;
  pthread_condattr_init(&mono);
  pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cmd_cv, NULL);
  pthread_cond_init(&s->done_cv, &mono);
  pthread_cond_init(&s->ev_cv, &mono);
  pthread_condattr_destroy(&mono);
  return s;
}

CRYO_API cryo_session *cryo_session_new_inline(void) {
  struct cryo_session *s = session_alloc("cryo_session_new_inline");
  if (!s) return NULL;
  s->inline_mode = true;
  s->tracer_tid = (pid_t)syscall(SYS_gettid);
  return s;
}

CRYO_API cryo_session *cryo_session_new(void) {
  pthread_once(&wake_once, install_wake_signal);
  struct cryo_session *s = session_alloc("cryo_session_new");
  if (!s) return NULL;
  /* The tracer starts with the wake signal blocked; it unblocks it for itself only. */
  sigset_t set, old;
  sigemptyset(&set);
  if (wake_signal > 0) sigaddset(&set, wake_signal);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  int rc = pthread_create(&s->tracer, NULL, tracer_main, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    errno = rc;
    cryo_fail_errno("pthread_create (tracer thread)");
    free(s);
    return NULL;
  }
  s->tracer_started = true;
  /* wait until the tracer knows its tid */
  while (__atomic_load_n(&s->tracer_tid, __ATOMIC_SEQ_CST) == 0) sched_yield();
  return s;
}

int session_shutdown_tracees(struct cryo_session *s);

static int shutdown_cmd(struct cryo_session *s, void *arg) {
  (void)arg;
  pin_stop(s); /* the caller's thread gets its mask back */
  return session_shutdown_tracees(s);
}

CRYO_API int cryo_session_close(cryo_session *s) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_session_close: no session");
  pthread_mutex_lock(&s->lock);
  bool already = s->closing;
  s->closing = true;
  pthread_mutex_unlock(&s->lock);
  int rc = CRYO_OK;
  if (!already) rc = run_on_tracer(s, shutdown_cmd, NULL);
  pthread_mutex_lock(&s->lock);
  s->closed = true;
  pthread_cond_broadcast(&s->cmd_cv);
  pthread_cond_broadcast(&s->ev_cv);
  pthread_mutex_unlock(&s->lock);
  if (!already && s->tracer_started) {
    pthread_join(s->tracer, NULL);
    s->tracer_started = false;
  }
  return rc;
}

CRYO_API void cryo_session_free(cryo_session *s) {
  if (!s) return;
  if (!s->closed) cryo_session_close(s);
  pthread_mutex_lock(&s->lock);
  while (s->waiters > 0) pthread_cond_wait(&s->ev_cv, &s->lock);
  struct event_node *n = s->ev_head;
  while (n) {
    struct event_node *next = n->next;
    free(n);
    n = next;
  }
  pthread_mutex_unlock(&s->lock);
  free(s->threads);
  free(s->spare_cp);
  free(s->spare_xs);
  free(s->pass);
  free(s->bps);
  record_free(s);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->cmd_cv);
  pthread_cond_destroy(&s->done_cv);
  pthread_cond_destroy(&s->ev_cv);
  free(s);
}

struct seq_wait {
  const struct cryo_session *s;
  uint64_t seq;
};

static bool event_seq_ready(const void *arg) {
  const struct seq_wait *w = arg;
  return __atomic_load_n(&w->s->ev_seq, __ATOMIC_ACQUIRE) >= w->seq || __atomic_load_n(&w->s->closed, __ATOMIC_ACQUIRE);
}

CRYO_API int cryo_poll_event(cryo_session *s, cryo_event *ev, uint64_t seq, int32_t spin_us) {
  if (!s || !ev) return cryo_fail(CRYO_EINVAL, "cryo_poll_event: null argument");
  if (spin_us < 0) spin_us = 0;
  if (spin_us > 2000) spin_us = 2000;
  struct seq_wait w = {s, seq};
  /* The async pump (cryo_wait_event on a worker) would otherwise take the stop in about
   * one step in eight, and the caller would pay the pump's callback on top of its spin. */
  pthread_mutex_lock(&s->lock);
  s->poll_seq = seq;
  pthread_mutex_unlock(&s->lock);
  spin_wait(s, (uint64_t)spin_us * 1000u, event_seq_ready, &w);
  pthread_mutex_lock(&s->lock);
  s->poll_seq = 0;
  if (s->waiters) pthread_cond_broadcast(&s->ev_cv);
  int rc = CRYO_ETIMEDOUT;
  struct event_node *n = s->ev_head;
  if (n && n->ev.seq == seq) {
    s->ev_head = n->next;
    if (!s->ev_head) s->ev_tail = NULL;
    *ev = n->ev;
    free(n);
    rc = CRYO_OK;
  } else if (s->closed && !n) {
    rc = CRYO_ECLOSED;
  }
  pthread_mutex_unlock(&s->lock);
  if (rc == CRYO_ECLOSED) return cryo_fail(rc, "the session is closed");
  if (rc == CRYO_ETIMEDOUT) return cryo_fail(rc, "event %llu has not come within %d us", (unsigned long long)seq, spin_us);
  cryo_clear_error();
  return rc;
}

/* An inline session's wait: the caller serves waitpid until an event is queued. */
static int wait_inline(struct cryo_session *s, cryo_event *ev, int32_t timeout_ms) {
  if (timeout_ms >= 0) return cryo_fail(CRYO_EINVAL, "an inline session waits without a timeout (-1)");
  pthread_mutex_lock(&s->lock);
  while (!s->ev_head) {
    if (s->closed) {
      pthread_mutex_unlock(&s->lock);
      return cryo_fail(CRYO_ECLOSED, "the session is closed");
    }
    if (!((s->pid && any_running(s)) || s->npass)) {
      pthread_mutex_unlock(&s->lock);
      return cryo_fail(CRYO_EFAIL, "nothing runs: no event can come (resume the process first)");
    }
    serve_waitpid(s); /* returns unlocked */
    pthread_mutex_lock(&s->lock);
  }
  struct event_node *n = s->ev_head;
  s->ev_head = n->next;
  if (!s->ev_head) s->ev_tail = NULL;
  *ev = n->ev;
  free(n);
  pthread_mutex_unlock(&s->lock);
  cryo_clear_error();
  return CRYO_OK;
}

/* With s->lock held: an event is queued and no poller is spinning for it. */
static bool takeable(const struct cryo_session *s) {
  return s->ev_head && !(s->poll_seq && s->ev_head->ev.seq == s->poll_seq);
}

CRYO_API int cryo_wait_event(cryo_session *s, cryo_event *ev, int32_t timeout_ms) {
  if (!s || !ev) return cryo_fail(CRYO_EINVAL, "cryo_wait_event: null argument");
  if (s->inline_mode) return wait_inline(s, ev, timeout_ms);
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  if (timeout_ms >= 0) {
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000;
    }
  }
  pthread_mutex_lock(&s->lock);
  s->waiters++;
  int rc = CRYO_OK;
  while (!takeable(s)) {
    if (s->closed) {
      rc = CRYO_ECLOSED;
      break;
    }
    if (timeout_ms < 0) pthread_cond_wait(&s->ev_cv, &s->lock);
    else if (pthread_cond_timedwait(&s->ev_cv, &s->lock, &deadline) == ETIMEDOUT) {
      if (!takeable(s)) rc = CRYO_ETIMEDOUT;
      break;
    }
  }
  if (rc == CRYO_OK && takeable(s)) {
    struct event_node *n = s->ev_head;
    s->ev_head = n->next;
    if (!s->ev_head) s->ev_tail = NULL;
    *ev = n->ev;
    free(n);
  }
  s->waiters--;
  pthread_cond_broadcast(&s->ev_cv);
  pthread_mutex_unlock(&s->lock);
  if (rc == CRYO_ECLOSED) return cryo_fail(rc, "the session is closed");
  if (rc == CRYO_ETIMEDOUT) return cryo_fail(rc, "no event within %d ms", timeout_ms);
  cryo_clear_error();
  return rc;
}
