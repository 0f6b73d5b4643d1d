/* In-memory checkpoints: a frozen copy-on-write copy of the debuggee (see
 * fork_frozen_copy), plus what a copy does not carry by itself: the offsets of its
 * open files, which a fork shares with the original rather than copies.
 * Restoring makes a fresh copy of the frozen one, so it can be restored again. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct checkpoint *cp_find(struct cryo_session *s, int id, int *index) {
  for (int i = 0; i < s->ncps; i++)
    if (s->cps[i]->id == id) {
      if (index) *index = i;
      return s->cps[i];
    }
  return NULL;
}

/* Offsets of the regular files the process has open. */
static void record_fds(pid_t pid, struct checkpoint *cp) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fdinfo", pid);
  DIR *d = opendir(path);
  cp->nfds = 0;
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) && cp->nfds < MAX_FDS) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = atoi(e->d_name);
    char link[64];
    struct stat st;
    snprintf(link, sizeof link, "/proc/%d/fd/%d", pid, fd);
    if (stat(link, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    char info[96];
    snprintf(info, sizeof info, "/proc/%d/fdinfo/%d", pid, fd);
    FILE *f = fopen(info, "r");
    if (!f) continue;
    long long pos = -1;
    char line[128];
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "pos: %lld", &pos) == 1) break;
    fclose(f);
    if (pos < 0) continue;
    cp->fds[cp->nfds].fd = fd;
    cp->fds[cp->nfds].pos = pos;
    cp->nfds++;
  }
  closedir(d);
}

static void kill_and_reap(struct cryo_session *s, pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  for (;;) {
    int st;
    if (wait_for_stop(s, pid, &st) != CRYO_OK) return;
    if (WIFEXITED(st) || WIFSIGNALED(st)) return;
  }
}

static int do_cp_create(struct cryo_session *s, void *arg) {
  int32_t *id = arg;
  if (!s->pid) return cryo_fail(CRYO_ENOPROC, "no debuggee");
  if (any_running(s)) return cryo_fail(CRYO_ERUNNING, "checkpoints are taken while the process is stopped");
  if (s->nthreads != 1)
    return cryo_fail(CRYO_EUNSUPPORTED,
                     "process %d has %d threads: in-memory checkpoints of several threads are not supported yet (a fork keeps only one thread)",
                     s->pid, s->nthreads);
  if (s->ncps >= MAX_CHECKPOINTS) return cryo_fail(CRYO_EINVAL, "too many checkpoints (%d)", MAX_CHECKPOINTS);
  uint64_t t0 = now_ns(CLOCK_MONOTONIC);
  struct checkpoint *cp = calloc(1, sizeof *cp);
  if (!cp) return cryo_fail(CRYO_EFAIL, "out of memory");
  pid_t tid = s->threads[0].tid;
  /* the copy must hold the program's own bytes, not our int3s */
  int rc = bps_lift(s, s->pid);
  pid_t child = 0;
  if (rc == CRYO_OK) rc = fork_frozen_copy(s, tid, &child);
  int rc2 = bps_apply(s, s->pid);
  if (rc == CRYO_OK) rc = rc2;
  if (rc != CRYO_OK) {
    if (child > 0) kill_and_reap(s, child);
    free(cp);
    return rc;
  }
  regs_get(child, &cp->regs);
  record_fds(s->pid, cp);
  cp->id = s->next_cp_id++;
  cp->pid = child;
  cp->created_ns = now_ns(CLOCK_REALTIME);
  cp->create_ns = now_ns(CLOCK_MONOTONIC) - t0;
  pthread_mutex_lock(&s->lock);
  s->cps[s->ncps++] = cp;
  pthread_mutex_unlock(&s->lock);
  *id = cp->id;
  return CRYO_OK;
}

CRYO_API int cryo_checkpoint_create(cryo_session *s, int32_t *id) {
  if (!s || !id) return cryo_fail(CRYO_EINVAL, "cryo_checkpoint_create: null argument");
  return run_on_tracer(s, do_cp_create, id);
}

/* The replaced debuggee goes without an exit event: it did not exit, it was replaced. */
static void discard_debuggee(struct cryo_session *s) {
  if (!s->pid) return;
  pid_t pid = s->pid;
  kill(pid, SIGKILL);
  for (;;) {
    int st;
    pid_t r = waitpid(-1, &st, __WALL | __WNOTHREAD);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (r == pid && (WIFEXITED(st) || WIFSIGNALED(st))) break;
  }
  process_gone(s);
}

struct restore_args {
  int id;
  pid_t pid;
};

static int do_cp_restore(struct cryo_session *s, void *arg) {
  struct restore_args *a = arg;
  struct checkpoint *cp = cp_find(s, a->id, NULL);
  if (!cp) return cryo_fail(CRYO_ENOENT, "no checkpoint %d", a->id);
  if (s->pid && any_running(s)) {
    int rc = stop_all_threads(s);
    if (rc != CRYO_OK) return rc;
  }
  pid_t child = 0;
  int rc = fork_frozen_copy(s, cp->pid, &child);
  if (rc != CRYO_OK) return rc;
  bool launched = s->pid ? s->launched : true;
  discard_debuggee(s);
  pthread_mutex_lock(&s->lock);
  s->pid = child;
  s->launched = launched;
  pthread_mutex_unlock(&s->lock);
  struct thread *nt = thread_add(s, child, T_STOPPED);
  if (nt) nt->reported = true; /* it stands where the checkpoint's stop was reported */
  rc = session_open_mem(s);
  if (rc == CRYO_OK) rc = bps_apply(s, child);
  if (rc == CRYO_OK) rc = wps_apply_thread(s, child);
  for (int i = 0; rc == CRYO_OK && i < cp->nfds; i++) {
    uint64_t args[6] = {(uint64_t)cp->fds[i].fd, (uint64_t)cp->fds[i].pos, SEEK_SET, 0, 0, 0};
    int64_t ret;
    rc = inject_syscall(s, child, SYS_lseek, args, &ret);
    /* a descriptor that is no regular file any more is left as it is */
  }
  if (rc != CRYO_OK) {
    char msg[1024];
    cryo_copy_error(msg, sizeof msg);
    discard_debuggee(s);
    return cryo_fail(CRYO_EFAIL, "restore of checkpoint %d failed: %s", a->id, msg);
  }
  a->pid = child;
  return CRYO_OK;
}

CRYO_API int cryo_checkpoint_restore(cryo_session *s, int32_t id, int32_t *pid) {
  if (!s || !pid) return cryo_fail(CRYO_EINVAL, "cryo_checkpoint_restore: null argument");
  struct restore_args a = {id, 0};
  int rc = run_on_tracer(s, do_cp_restore, &a);
  *pid = a.pid;
  return rc;
}

static int do_cp_delete(struct cryo_session *s, void *arg) {
  int id = *(int *)arg, idx;
  struct checkpoint *cp = cp_find(s, id, &idx);
  if (!cp) return cryo_fail(CRYO_ENOENT, "no checkpoint %d", id);
  kill_and_reap(s, cp->pid);
  pthread_mutex_lock(&s->lock);
  memmove(&s->cps[idx], &s->cps[idx + 1], (size_t)(s->ncps - idx - 1) * sizeof s->cps[0]);
  s->ncps--;
  pthread_mutex_unlock(&s->lock);
  free(cp);
  return CRYO_OK;
}

CRYO_API int cryo_checkpoint_delete(cryo_session *s, int32_t id) {
  if (!s) return cryo_fail(CRYO_EINVAL, "cryo_checkpoint_delete: null session");
  return run_on_tracer(s, do_cp_delete, &id);
}

CRYO_API int cryo_checkpoint_list(cryo_session *s, cryo_checkpoint_info *out, int32_t max, int32_t *n) {
  if (!s || !n) return cryo_fail(CRYO_EINVAL, "cryo_checkpoint_list: null argument");
  pthread_mutex_lock(&s->lock);
  int k = 0;
  for (int i = 0; i < s->ncps; i++, k++) {
    if (!out || k >= max) continue;
    struct checkpoint *cp = s->cps[i];
    out[k] = (cryo_checkpoint_info){cp->id, cp->pid, cp->regs.rip, cp->created_ns, cp->create_ns};
  }
  pthread_mutex_unlock(&s->lock);
  *n = k;
  cryo_clear_error();
  return CRYO_OK;
}

void checkpoints_kill_all(struct cryo_session *s) {
  for (int i = 0; i < s->ncps; i++) {
    kill_and_reap(s, s->cps[i]->pid);
    free(s->cps[i]);
  }
  pthread_mutex_lock(&s->lock);
  s->ncps = 0;
  pthread_mutex_unlock(&s->lock);
}
