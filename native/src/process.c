/* The debuggee as a whole: launch under trace, attach, detach, kill, and the
 * execution requests (continue, step, interrupt) the adapter makes. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;


static char **split_blob(const uint8_t *blob, int n) {
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (!v) return NULL;
  const char *p = (const char *)blob;
  for (int i = 0; i < n; i++) {
    v[i] = (char *)p;
    p += strlen(p) + 1;
  }
  return v;
}

/* PATH search done before fork, so "not found" is an error the caller sees as such. */
static int resolve_program(const char *path, char *out, size_t len) {
  if (strchr(path, '/')) {
    snprintf(out, len, "%s", path);
  } else {
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", env ? env : "/usr/local/bin:/usr/bin:/bin");
    bool found = false;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
      snprintf(out, len, "%s/%s", *d ? d : ".", path);
      if (access(out, X_OK) == 0) {
        found = true;
        break;
      }
    }
    if (!found) return cryo_fail(CRYO_EINVAL, "program '%s' not found in PATH", path);
  }
  struct stat st;
  if (stat(out, &st) != 0) return cryo_fail_errno("program %s", out);
  if (S_ISDIR(st.st_mode)) return cryo_fail(CRYO_EINVAL, "program %s is a directory", out);
  if (access(out, X_OK) != 0) return cryo_fail_errno("program %s is not executable", out);
  return CRYO_OK;
}

static void close_all(int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
}

/* Opens what a new process gets as fds 0-2 (cryo_stdio_mode): child_fd[i] becomes fd i
 * in the child (-1: inherit ours), parent_fd[i] is our end of a pipe. All CLOEXEC. */
int stdio_open(const int32_t mode[3], const int32_t fd[3], const char *const path[3], int child_fd[3], int parent_fd[3]) {
  for (int i = 0; i < 3; i++) child_fd[i] = parent_fd[i] = -1;
  for (int i = 0; i < 3; i++) {
    const char *name = i == 0 ? "stdin" : i == 1 ? "stdout" : "stderr";
    int r = CRYO_OK;
    if (mode[i] == CRYO_STDIO_NULL) {
      child_fd[i] = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
      if (child_fd[i] < 0) r = cryo_fail_errno("open /dev/null for %s", name);
    } else if (mode[i] == CRYO_STDIO_FILE) {
      const char *p = path ? path[i] : NULL;
      if (!p) r = cryo_fail(CRYO_EINVAL, "%s: file mode without a path", name);
      else if ((child_fd[i] = open(p, i == 0 ? O_RDONLY | O_CLOEXEC : O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        r = cryo_fail_errno("open %s for %s", p, name);
    } else if (mode[i] == CRYO_STDIO_PIPE) {
      int p[2];
      if (pipe2(p, O_CLOEXEC) != 0) r = cryo_fail_errno("pipe for %s", name);
      else {
        child_fd[i] = i == 0 ? p[0] : p[1];
        parent_fd[i] = i == 0 ? p[1] : p[0];
      }
    } else if (mode[i] == CRYO_STDIO_FD) {
      child_fd[i] = fcntl(fd[i], F_DUPFD_CLOEXEC, 3);
      if (child_fd[i] < 0) r = cryo_fail_errno("%s: descriptor %d", name, fd[i]);
    }
    if (r != CRYO_OK) {
      close_all(child_fd, 3);
      close_all(parent_fd, 3);
      return r;
    }
  }
  return CRYO_OK;
}

/* What the launched child needs between clone and execve. */
struct launch_child {
  const char *prog, *cwd;
  char **argv, **envp;
  int fd[3]; /* what becomes fd i (-1: inherit) */
  bool no_aslr;
  int gate, gate_w, errp, errp_r;
};

enum { LAUNCH_STACK = 16384 };

static int launch_child_main(void *arg) {
  const struct launch_child *c = arg;
  long r = 0;
  int stage = 0;
  raw_syscall(SYS_close, c->gate_w, 0, 0, 0);
  raw_syscall(SYS_close, c->errp_r, 0, 0, 0);
  for (int i = 0; i < 3; i++)
    if (c->fd[i] >= 0 && (r = raw_syscall(SYS_dup2, c->fd[i], i, 0, 0)) < 0) {
      stage = 1;
      goto fail;
    }
  if (c->cwd && *c->cwd && (r = raw_syscall(SYS_chdir, (long)c->cwd, 0, 0, 0)) < 0) {
    stage = 2;
    goto fail;
  }
  if (c->no_aslr) raw_syscall(SYS_personality, ADDR_NO_RANDOMIZE, 0, 0, 0);
  /* the host (Node) ignores SIGPIPE and blocks signals: a program starts clean */
  struct kernel_sigaction dfl = {SIG_DFL, 0, NULL, 0};
  for (int sig = 1; sig < 65; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) raw_syscall(SYS_rt_sigaction, sig, (long)&dfl, 0, 8);
  uint64_t none = 0;
  raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8);
  char go;
  if (raw_syscall(SYS_read, c->gate, (long)&go, 1, 0) != 1) raw_syscall(SYS_exit, 127, 0, 0, 0); /* the tracer went away before attaching */
  /* the program gets stdio only: descriptors the debugger host inherited (its own
   * parent's pipes) are not the program's, and would end up in its images */
  raw_syscall(436 /* close_range */, 3, ~0u, 4 /* CLOSE_RANGE_CLOEXEC */, 0);
  r = raw_syscall(SYS_execve, (long)c->prog, (long)c->argv, (long)c->envp, 0);
  stage = 3;
fail:;
  int msg[2] = {stage, (int)-r};
  raw_syscall(SYS_write, c->errp, (long)msg, sizeof msg, 0);
  raw_syscall(SYS_exit, 127, 0, 0, 0);
  return 127;
}

pid_t clone_vm(int (*fn)(void *), void *arg, void *stack, size_t len, int exit_signal) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = clone(fn, (unsigned char *)stack + len, CLONE_VM | exit_signal, arg);
  int e = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = e;
  return pid;
}

static int do_launch(struct cryo_session *s, void *arg) {
  cryo_launch_opts *o = arg;
  if (s->pid) return cryo_fail(CRYO_EINVAL, "this session already has a debuggee (pid %d)", s->pid);
  if (!o->path || !*o->path) return cryo_fail(CRYO_EINVAL, "launch: no program given");
  char prog[PATH_MAX];
  int rc = resolve_program(o->path, prog, sizeof prog);
  if (rc != CRYO_OK) return rc;
  if (o->cwd && *o->cwd) {
    struct stat st;
    if (stat(o->cwd, &st) != 0) return cryo_fail_errno("working directory %s", o->cwd);
    if (!S_ISDIR(st.st_mode)) return cryo_fail(CRYO_EINVAL, "working directory %s is not a directory", o->cwd);
  }

  /* child_fd[i]: what becomes fd i in the child; parent_fd[i]: our end of a pipe */
  int child_fd[3], parent_fd[3];
  rc = stdio_open(o->stdio_mode, o->stdio_fd, o->stdio_path, child_fd, parent_fd);
  if (rc != CRYO_OK) return rc;

  char **argv = split_blob(o->argv, o->argc > 0 ? o->argc : 0);
  char **envp = o->envc >= 0 ? split_blob(o->envp, o->envc) : environ;
  char *argv0[2] = {prog, NULL};
  int gate[2], errp[2];
  if (!argv || !envp || pipe2(gate, O_CLOEXEC) != 0) {
    free(argv);
    if (envp && envp != environ) free(envp);
    close_all(child_fd, 3);
    close_all(parent_fd, 3);
    return cryo_fail_errno("launch: setting up");
  }
  if (pipe2(errp, O_CLOEXEC) != 0) {
    free(argv);
    if (envp != environ) free(envp);
    close_all(gate, 2);
    close_all(child_fd, 3);
    close_all(parent_fd, 3);
    return cryo_fail_errno("launch: setting up");
  }
  struct launch_child c = {.prog = prog, .argv = o->argc > 0 ? argv : argv0, .envp = envp, .cwd = o->cwd,
                           .no_aslr = (o->flags & CRYO_LAUNCH_NO_ASLR) != 0, .gate = gate[0], .gate_w = gate[1],
                           .errp = errp[1], .errp_r = errp[0]};
  memcpy(c.fd, child_fd, sizeof c.fd);
  /* The child shares our memory until its execve, which a fork of the tracer paid for on
   * every launch (page tables, copy-on-write faults). It runs on launch_stack, in this
   * frame, which therefore stays alive until the child has exec'd or is reaped. */
  _Alignas(16) unsigned char launch_stack[LAUNCH_STACK];
  pid_t pid = clone_vm(launch_child_main, &c, launch_stack, sizeof launch_stack, SIGCHLD);
  int clone_errno = errno;
  close(gate[0]);
  close(errp[1]);
  close_all(child_fd, 3);
  if (pid < 0) {
    errno = clone_errno;
    int r = cryo_fail_errno("clone (starting %s)", prog);
    close(gate[1]);
    close(errp[0]);
    close_all(parent_fd, 3);
    free(argv);
    if (envp != environ) free(envp);
    return r;
  }

  if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)TRACE_OPTIONS) != 0) {
    int r = cryo_fail_errno("ptrace(PTRACE_SEIZE, %d)", pid);
    kill(pid, SIGKILL);
    close(gate[1]);
    close(errp[0]);
    waitpid(pid, NULL, 0);
    close_all(parent_fd, 3);
    free(argv);
    if (envp != environ) free(envp);
    return r;
  }
  ssize_t w = write(gate[1], "g", 1);
  (void)w;
  close(gate[1]);
  /* The exec stop, or the child's end: one wakeup instead of waiting for the error pipe
   * to close first. A child that failed before or at execve wrote why into the error
   * pipe before exiting, so the message is there to read once its exit is seen. */
  int status;
  for (;;) {
    if (wait_for_stop(s, pid, &status) != CRYO_OK) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, __WALL); /* it may still be on our stack */
      free(argv);
      if (envp != environ) free(envp);
      close(errp[0]);
      close_all(parent_fd, 3);
      return CRYO_EFAIL;
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      free(argv);
      if (envp != environ) free(envp);
      int msg[2] = {0, 0};
      ssize_t n;
      do n = read(errp[0], msg, sizeof msg);
      while (n < 0 && errno == EINTR);
      close(errp[0]);
      close_all(parent_fd, 3);
      if (n == (ssize_t)sizeof msg) {
        errno = msg[1];
        const char *what = msg[0] == 1 ? "redirecting stdio" : msg[0] == 2 ? "changing directory to" : "execve";
        return cryo_fail_errno("%s %s", what, msg[0] == 2 ? o->cwd : prog);
      }
      if (WIFSIGNALED(status))
        return cryo_fail(CRYO_EFAIL, "%s was killed by signal %d while starting", prog, WTERMSIG(status));
      return cryo_fail(CRYO_EFAIL, "%s exited with %d while starting", prog, WEXITSTATUS(status));
    }
    if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_EXEC) break;
    /* anything else before exec (a stray signal): pass it along */
    int sig = WSTOPSIG(status);
    ptrace(PTRACE_CONT, pid, 0, (void *)(long)((status >> 16) ? 0 : sig));
  }
  close(errp[0]);
  free(argv); /* the child has its own memory now */
  if (envp != environ) free(envp);
  pthread_mutex_lock(&s->lock);
  s->pid = pid;
  s->launched = true;
  pthread_mutex_unlock(&s->lock);
  thread_add(s, pid, T_STOPPED);
  rc = session_open_mem(s);
  if (rc != CRYO_OK) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, __WALL);
    process_gone(s);
    close_all(parent_fd, 3);
    return rc;
  }
  for (int i = 0; i < 3; i++)
    if (o->stdio_mode[i] == CRYO_STDIO_PIPE) o->stdio_fd[i] = parent_fd[i];
  if (o->flags & CRYO_LAUNCH_RUN) {
    rc = resume_all(s);
    if (rc != CRYO_OK) {
      kill(pid, SIGKILL);
      return rc;
    }
  }
  return CRYO_OK;
}

CRYO_API int cryo_launch(cryo_session *s, cryo_launch_opts *o, int32_t *pid) {
  if (!s || !o || !pid) return cryo_fail(CRYO_EINVAL, "cryo_launch: null argument");
  int rc = run_on_tracer(s, do_launch, o);
  *pid = rc == CRYO_OK ? s->pid : 0;
  return rc;
}

bool proc_status(pid_t pid, const char *key, int base, uint64_t *out) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "re");
  if (!f) return false;
  size_t n = strlen(key);
  bool found = false;
  while (!found && fgets(line, sizeof line, f))
    if (!strncmp(line, key, n) && line[n] == ':') {
      *out = strtoull(line + n + 1, NULL, base);
      found = true;
    }
  fclose(f);
  return found;
}

/* Why the kernel refused an attach, in words a user can act on. */
static int explain_attach_failure(pid_t pid) {
  int e = errno;
  uint64_t tracer = 0;
  proc_status(pid, "TracerPid", 10, &tracer);
  if (e == ESRCH) return cryo_fail(CRYO_ENOPROC, "attach to %d: no such process", pid);
  if (tracer > 0)
    return cryo_fail(CRYO_EPERM, "attach to %d refused: it is already traced by process %d (a process has one tracer; detach that debugger first)", pid, (int)tracer);
  int scope = -1;
  FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
  if (f) {
    if (fscanf(f, "%d", &scope) != 1) scope = -1;
    fclose(f);
  }
  if (e == EPERM && scope >= 1)
    return cryo_fail(CRYO_EPERM, "attach to %d refused by the kernel: ptrace_scope is %d (Yama); run as root, grant CAP_SYS_PTRACE, or set /proc/sys/kernel/yama/ptrace_scope to 0", pid, scope);
  errno = e;
  return cryo_fail_errno("attach to %d: ptrace(PTRACE_SEIZE) refused (a process of another user or a setuid program needs root or CAP_SYS_PTRACE)", pid);
}

static int seize_new_tasks(struct cryo_session *s, pid_t pid, int *added) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) {
    if (errno == ENOENT) return cryo_fail(CRYO_ENOPROC, "attach to %d: no such process", pid);
    return cryo_fail_errno("open %s", path);
  }
  *added = 0;
  struct dirent *e;
  int rc = CRYO_OK;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    pid_t tid = (pid_t)atoi(e->d_name);
    if (thread_find(s, tid)) continue;
    if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)TRACE_OPTIONS) != 0) {
      if (errno == ESRCH && tid != pid) continue; /* exited meanwhile */
      rc = explain_attach_failure(pid);
      break;
    }
    struct thread *t = thread_add(s, tid, T_RUNNING);
    if (t && ptrace(PTRACE_INTERRUPT, tid, 0, 0) == 0) t->interrupt_pending = true;
    (*added)++;
  }
  closedir(d);
  return rc;
}

static int do_attach(struct cryo_session *s, void *arg) {
  pid_t pid = *(pid_t *)arg;
  if (s->pid) return cryo_fail(CRYO_EINVAL, "this session already has a debuggee (pid %d)", s->pid);
  if (pid <= 0) return cryo_fail(CRYO_EINVAL, "attach: invalid pid %d", pid);
  if (pid == getpid()) return cryo_fail(CRYO_EINVAL, "attach: %d is the debugger itself", pid);
  pthread_mutex_lock(&s->lock);
  s->pid = pid;
  s->launched = false;
  pthread_mutex_unlock(&s->lock);
  /* threads may be created while we attach: rescan until nothing new appears */
  int added, rc;
  do {
    rc = seize_new_tasks(s, pid, &added);
    if (rc != CRYO_OK) {
      for (int i = 0; i < s->nthreads; i++) ptrace(PTRACE_DETACH, s->threads[i].tid, 0, 0);
      process_gone(s);
      return rc;
    }
  } while (added > 0);
  s->pause_requested = true;
  rc = stop_all_threads(s);
  s->pause_requested = false;
  if (rc != CRYO_OK) return rc;
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "attach to %d: the process exited while attaching", pid);
  return session_open_mem(s);
}

CRYO_API int cryo_attach(cryo_session *s, int32_t pid) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_attach: null session");
  return run_on_tracer(s, do_attach, &pid);
}

static int detach_now(struct cryo_session *s) {
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  int rc = stop_all_threads(s);
  if (rc != CRYO_OK) return rc;
  if (!s->pid) return CRYO_OK;
  pin_stop(s);
  bps_lift(s, s->pid);
  sysbuf_detach(s);
  for (int i = 0; i < s->nthreads; i++) {
    struct thread *t = &s->threads[i];
    dr_set(t->tid, 7, 0);
    if (t->over_addr) t->over_addr = 0;
    ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)t->pending_sig);
  }
  process_gone(s);
  return CRYO_OK;
}

static int do_detach(struct cryo_session *s, void *arg) {
  (void)arg;
  return detach_now(s);
}

CRYO_API int cryo_detach(cryo_session *s) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_detach: null session");
  return run_on_tracer(s, do_detach, NULL);
}

/* SIGKILL, then collect statuses until the leader's death is seen. */
static int kill_now(struct cryo_session *s) {
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  pid_t pid = s->pid;
  if (kill(pid, SIGKILL) != 0 && errno != ESRCH) return cryo_fail_errno("kill(%d, SIGKILL)", pid);
  while (s->pid == pid) {
    int status;
    pid_t r = waitpid(-1, &status, __WALL | __WNOTHREAD);
    if (r < 0) {
      if (errno == EINTR) continue;
      process_gone(s);
      break;
    }
    handle_wait_status(s, r, status);
  }
  passengers_end(s, true); /* what it forked while recorded goes with it */
  return CRYO_OK;
}

static int do_kill(struct cryo_session *s, void *arg) {
  (void)arg;
  return kill_now(s);
}

CRYO_API int cryo_kill(cryo_session *s) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_kill: null session");
  return run_on_tracer(s, do_kill, NULL);
}

int session_shutdown_tracees(struct cryo_session *s) {
  int rc = CRYO_OK;
  if (s->pid) rc = s->launched ? kill_now(s) : detach_now(s);
  passengers_end(s, s->launched);
  checkpoints_kill_all(s);
  return rc;
}

CRYO_API int32_t cryo_pid(cryo_session *s) {
  if (!s) return 0;
  pthread_mutex_lock(&s->lock);
  pid_t p = s->pid;
  pthread_mutex_unlock(&s->lock);
  return p;
}

CRYO_API int cryo_threads(cryo_session *s, int32_t *tids, int32_t max, int32_t *n) {
  if (!s || !n) return cryo_fail(CRYO_EINVAL, "cryo_threads: null argument");
  pthread_mutex_lock(&s->lock);
  int k = 0;
  for (int i = 0; i < s->nthreads; i++) {
    if (k < max && tids) tids[k] = s->threads[i].tid;
    k++;
  }
  pthread_mutex_unlock(&s->lock);
  *n = k;
  return CRYO_OK;
}

static int all_stopped_or_fail(struct cryo_session *s) {
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee (it has exited or was never started)");
  if (any_running(s)) return cryo_fail(CRYO_ERUNNING, "the debuggee is running");
  return CRYO_OK;
}

static int do_continue(struct cryo_session *s, void *arg) {
  uint32_t flags = *(uint32_t *)arg;
  int rc = all_stopped_or_fail(s);
  if (rc) return rc;
  if (flags & CRYO_RESUME_DISCARD_SIGNAL)
    for (int i = 0; i < s->nthreads; i++) s->threads[i].pending_sig = 0;
  if (!(flags & CRYO_RESUME_KEEP_STEP))
    for (int i = 0; i < s->nthreads; i++) {
      step_over_cancel(s, &s->threads[i]);
      s->threads[i].range_lo = s->threads[i].range_hi = 0;
    }
  return resume_all(s);
}

CRYO_API int cryo_continue(cryo_session *s, uint32_t flags) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_continue: null session");
  return run_on_tracer(s, do_continue, &flags);
}

struct step_args {
  pid_t tid;
  uint32_t flags; /* CRYO_RESUME_* */
  uint64_t lo, hi;
  uint32_t step_flags; /* CRYO_STEP_* */
  bool planned;          /* the range's control transfers are known: stops[0..nstops) */
  const uint64_t *stops;
  uint32_t nstops;
};

static int do_step(struct cryo_session *s, void *arg) {
  struct step_args *a = arg;
  int rc = all_stopped_or_fail(s);
  if (rc) return rc;
  struct thread *t = thread_find(s, a->tid);
  if (!t) return cryo_fail(CRYO_ENOTHREAD, "no thread %d in process %d", a->tid, s->pid);
  for (int i = 0; i < s->nthreads; i++) step_over_cancel(s, &s->threads[i]);
  struct user_regs_struct r;
  rc = regs_get(t->tid, &r);
  if (rc) return rc;
  if (bp_find(s, r.rip)) {
    rc = bp_lift_one(s, r.rip);
    if (rc) return rc;
    t->over_addr = r.rip;
  }
  int sig = (a->flags & CRYO_RESUME_DISCARD_SIGNAL) ? 0 : t->pending_sig;
  t->pending_sig = 0;
  t->stepping = true;
  t->range_lo = a->lo;
  t->range_hi = a->hi;
  t->step_flags = a->step_flags;
  t->nplan = -1;
  if (a->planned && a->nstops <= CRYO_STEP_MAX_STOPS) {
    t->nplan = (int32_t)a->nstops;
    if (a->nstops) memcpy(t->plan, a->stops, a->nstops * sizeof *a->stops);
  }
  t->range_sp = r.rsp;
  t->range_prev_pc = r.rip;
  bool in_range = r.rip >= a->lo && r.rip < a->hi;
  /* off a breakpoint and with no signal to deliver, the first instruction need not be
   * stepped either */
  if (!sig && !t->over_addr && in_range && plan_run(s, t, &r)) return CRYO_OK;
  /* a signal for the program in the middle of a line: its handler is run over */
  if (sig && !t->over_addr && in_range && handler_over(s, t, &r, sig)) return CRYO_OK;
  record_on_signal(s, t, sig); /* delivered by the step, as resume_thread records it */
  if (ptrace(PTRACE_SINGLESTEP, t->tid, 0, (void *)(long)sig) != 0) {
    t->stepping = false;
    bp_restore_one(s, t->over_addr);
    t->over_addr = 0;
    return cryo_fail_errno("ptrace(PTRACE_SINGLESTEP, %d)", t->tid);
  }
  t->state = T_RUNNING;
  return CRYO_OK;
}

CRYO_API int cryo_step(cryo_session *s, int32_t tid, uint32_t flags) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_step: null session");
  struct step_args a = {tid, flags, 0, 0, 0, false, NULL, 0};
  return run_on_tracer(s, do_step, &a);
}

CRYO_API int cryo_step_range(cryo_session *s, int32_t tid, uint64_t lo, uint64_t hi, uint32_t flags) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_step_range: null session");
  if (hi <= lo) return cryo_fail(CRYO_EINVAL, "cryo_step_range: empty range 0x%llx-0x%llx", (unsigned long long)lo, (unsigned long long)hi);
  struct step_args a = {tid, 0, lo, hi, flags, false, NULL, 0};
  return run_on_tracer(s, do_step, &a);
}

CRYO_API int cryo_step_range_stops(cryo_session *s, int32_t tid, uint64_t lo, uint64_t hi, uint32_t flags,
                                   const uint64_t *stops, uint32_t nstops) {
  if (!s || (nstops && !stops)) return cryo_fail(CRYO_EINVAL, "cryo_step_range_stops: null argument");
  if (hi <= lo) return cryo_fail(CRYO_EINVAL, "cryo_step_range_stops: empty range 0x%llx-0x%llx", (unsigned long long)lo, (unsigned long long)hi);
  for (uint32_t i = 0; i < nstops; i++)
    if (CRYO_STOP_ADDR(stops[i]) < lo || CRYO_STOP_ADDR(stops[i]) >= hi ||
        (i && CRYO_STOP_ADDR(stops[i]) <= CRYO_STOP_ADDR(stops[i - 1])))
      return cryo_fail(CRYO_EINVAL, "cryo_step_range_stops: stop %u (0x%llx) is not sorted inside 0x%llx-0x%llx", i,
                       (unsigned long long)CRYO_STOP_ADDR(stops[i]), (unsigned long long)lo, (unsigned long long)hi);
  struct step_args a = {tid, 0, lo, hi, flags, true, stops, nstops};
  return run_on_tracer(s, do_step, &a);
}

static int do_interrupt(struct cryo_session *s, void *arg) {
  (void)arg;
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  if (!any_running(s)) return CRYO_OK; /* already stopped: nothing to do, no event */
  s->pause_requested = true;
  s->resume_all_pending = false;
  int rc = stop_all_threads(s);
  s->pause_requested = false;
  if (rc != CRYO_OK || !s->pid) return rc;
  /* a thread caught stopping for its own reason is more telling than "paused" */
  for (int i = 0; i < s->nthreads; i++) {
    struct thread *t = &s->threads[i];
    if (t->has_report) return resume_all(s); /* reports it without resuming */
  }
  cryo_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = CRYO_EV_STOPPED;
  ev.pid = s->pid;
  ev.tid = s->pid;
  ev.reason = CRYO_STOP_INTERRUPT;
  if (!thread_find(s, s->pid) && s->nthreads) ev.tid = s->threads[0].tid;
  push_event(s, &ev);
  return CRYO_OK;
}

CRYO_API int cryo_interrupt(cryo_session *s) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_interrupt: null session");
  return run_on_tracer(s, do_interrupt, NULL);
}

struct sig_args {
  pid_t tid;
  int sig;
};

static int do_set_signal(struct cryo_session *s, void *arg) {
  struct sig_args *a = arg;
  struct thread *t = thread_find(s, a->tid);
  if (!t) return cryo_fail(CRYO_ENOTHREAD, "no thread %d", a->tid);
  if (a->sig < 0 || a->sig > 64) return cryo_fail(CRYO_EINVAL, "signal %d does not exist", a->sig);
  t->pending_sig = a->sig;
  return CRYO_OK;
}

CRYO_API int cryo_set_signal(cryo_session *s, int32_t tid, int32_t signo) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_set_signal: null session");
  struct sig_args a = {tid, signo};
  return run_on_tracer(s, do_set_signal, &a);
}
