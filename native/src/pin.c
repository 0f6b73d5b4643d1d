/* Sharing one CPU: while a single-threaded debuggee is recorded, it, the tracer thread
 * and the caller's thread (the adapter's) are kept on the CPU the tracer stood on.
 *
 * Every stop is a hand-off between them: the debuggee to the tracer, the tracer to the
 * caller and back. On a VM whose idle vCPUs halt, a hand-off across CPUs costs a
 * wake-up of 40-100 us; on one CPU it is a context switch. They seldom want the CPU at
 * the same time (the debuggee runs while the others wait for its next stop), and a
 * recorded debuggee runs one thread anyway. rr does the same, for the same reason. Its
 * children are not pinned (pin_child).
 *
 * The program must not behave differently for it: sched_getaffinity is recorded, and
 * while pinned it answers the mask the program had (pin_getaffinity_exit), so that a
 * program sizing a thread pool by it sizes it as it would bare. Its second thread ends
 * the pinning (pin_stop): threads run where the kernel likes, as before. CRYO_PIN=0
 * turns it off. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static bool set_mask(pid_t tid, const cpu_set_t *m) {
  if (sched_setaffinity(tid, sizeof *m, m) == 0) return true;
  dbg("pin: sched_setaffinity(%d): %s", tid, strerror(errno));
  return false;
}

/* The caller's thread may serve several sessions: it is pinned while any of them holds
 * it, and gets its own mask back from the last. A tracer thread started meanwhile would
 * inherit the caller's one CPU (and a program it launches, from it): pin_thread_init. */
static pthread_mutex_t caller_lock = PTHREAD_MUTEX_INITIALIZER;
static int caller_refs;
static pid_t caller_tid;
static cpu_set_t caller_orig;

void pin_thread_init(void) {
  pthread_mutex_lock(&caller_lock);
  if (caller_refs) set_mask(0, &caller_orig);
  pthread_mutex_unlock(&caller_lock);
}

static bool caller_hold(pid_t tid, const cpu_set_t *one) {
  bool held = false;
  pthread_mutex_lock(&caller_lock);
  if (!caller_refs && sched_getaffinity(tid, sizeof caller_orig, &caller_orig) == 0) caller_tid = tid;
  if (caller_tid == tid && (caller_refs || CPU_COUNT(&caller_orig) > 0)) {
    caller_refs++;
    set_mask(tid, one);
    held = true;
  }
  pthread_mutex_unlock(&caller_lock);
  return held;
}

static void caller_release(void) {
  pthread_mutex_lock(&caller_lock);
  if (caller_refs > 0 && --caller_refs == 0) set_mask(caller_tid, &caller_orig);
  pthread_mutex_unlock(&caller_lock);
}

/* On the tracer thread; s->pin_caller was set by the caller's API call. */
void pin_start(struct cryo_session *s) {
  const char *env = getenv("CRYO_PIN");
  if (s->pinned || (env && !strcmp(env, "0")) || !s->pid || s->nthreads != 1) return;
  int cpu = sched_getcpu();
  cpu_set_t was, one;
  if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof was, &was) != 0 || CPU_COUNT(&was) < 2 || !CPU_ISSET(cpu, &was))
    return;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (!set_mask(s->threads[0].tid, &one)) return;
  set_mask(0, &one);
  s->pin_caller_held = s->pin_caller && caller_hold(s->pin_caller, &one);
  s->pin_was = was;
  s->pin_cpu = cpu;
  s->pinned = s->pin_known = true;
  dbg("pin: process %d, the tracer and the caller on CPU %d", s->pid, cpu);
}

void pin_stop(struct cryo_session *s) {
  if (!s->pinned) return;
  s->pinned = false;
  for (int i = 0; i < s->nthreads; i++) set_mask(s->threads[i].tid, &s->pin_was);
  set_mask(0, &s->pin_was);
  if (s->pin_caller_held) caller_release();
  s->pin_caller_held = false;
  dbg("pin: off (process %d has %d threads)", s->pid, s->nthreads);
}

/* A process built from a checkpoint inherits the mask of the copy it was cloned from:
 * it gets the session's current one. */
void pin_copy(struct cryo_session *s, pid_t pid) {
  if (!s->pin_known) return;
  if (s->pinned) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(s->pin_cpu, &one);
    set_mask(pid, &one);
  } else {
    set_mask(pid, &s->pin_was);
  }
}

/* A child of the pinned debuggee (a passenger) inherited the one CPU: it gets the mask
 * the program had, so that a program forking workers does not run them all on one CPU. */
void pin_child(struct cryo_session *s, pid_t pid) {
  if (s->pinned && pid > 0) set_mask(pid, &s->pin_was);
}

/* sched_getaffinity(pid, len, mask) returned: about the program itself, it answers the
 * mask the program had before pinning (the first ret bytes of it, as the kernel wrote). */
void pin_getaffinity_exit(struct cryo_session *s, pid_t tid, const struct rec_entry *e) {
  if (!s->pinned || e->ret <= 0 || (e->args[0] && (pid_t)e->args[0] != tid && (pid_t)e->args[0] != s->pid)) return;
  size_t n = (size_t)e->ret < sizeof s->pin_was ? (size_t)e->ret : sizeof s->pin_was;
  mem_write_raw(s, tid, e->args[2], &s->pin_was, n);
}
