/* dirty_test.c: correctness test and benchmark of native/src/dirty.c.
 *
 * The parent stands in for the Cryo engine. Each child allocates N MiB, touches it,
 * creates a userfaultfd(O_CLOEXEC|O_NONBLOCK|UFFD_USER_MODE_ONLY) and then serves
 * commands from a pipe. The parent PTRACE_SEIZEs + interrupts it, copies the uffd out
 * with pidfd_getfd (the engine's path), detaches, has the child close its own copy
 * (the engine injects close()), and from then on drives the module from outside.
 *
 * Checks: after each round of random page writes, the collected dirty set inside the
 * buffer equals exactly the set written; an "image" of the buffer kept only from the
 * baseline copy plus the collected deltas equals the child's memory byte for byte.
 * Plus experiments: fork (with/without UFFD_FEATURE_EVENT_FORK), mmap/brk/mremap/
 * MAP_FIXED after arming, THP, hugetlb, kernel and debugger writes, MADV_DONTNEED.
 *
 * Usage: dirty_test [MiB ...]   (default 16 256 1024). Exit 0 only if all checks pass.
 */
#include "../src/dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1ULL << 15)
#endif
#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif

#define PG 4096UL

static int failures;
static pid_t children[64];
static int nchildren;

static void kill_all(void)
{
    for (int i = 0; i < nchildren; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            while (waitpid(children[i], NULL, __WALL) < 0 && errno == EINTR)
                ;
            children[i] = 0;
        }
    nchildren = 0;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FATAL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    kill_all();
    exit(2);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    failures++;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* splitmix64: the parent and the child derive the same page set from a seed */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* k distinct page indices out of npages (partial Fisher-Yates), in random order */
static uint32_t *pick_pages(uint64_t seed, size_t k, size_t npages)
{
    uint32_t *a = malloc(npages * sizeof *a);
    if (!a)
        return NULL;
    for (size_t i = 0; i < npages; i++)
        a[i] = (uint32_t)i;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + mix(seed ^ (i * 0x100000001b3ULL)) % (npages - i);
        uint32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
    return a;
}

/* ---------------------------------------------------------------- child side */

enum {
    C_WRITE = 1, C_CLOSEFD, C_FORK, C_FORKTIME, C_MMAP, C_WRITEAT, C_BRK, C_MREMAP,
    C_FIXED, C_DONTNEED, C_THP, C_KREAD, C_HUGETLB, C_EXIT, C_FORK_EVT, C_MUNMAP,
    C_SHARED, C_UWCOUNT
};
struct cmd {
    int op;
    int pad;
    uint64_t a, b, c;
};
struct rep {
    int64_t v[4];
};

static int cmd_rd, rep_wr;
static char *cbuf;
static size_t cpages;

static void child_reply(int64_t a, int64_t b, int64_t c, int64_t d)
{
    struct rep r = {{a, b, c, d}};
    if (write(rep_wr, &r, sizeof r) != sizeof r)
        _exit(3);
}

static void write_pages(char *base, uint64_t seed, size_t k, size_t npages, int64_t *t1,
                        int64_t *t2)
{
    uint32_t *p = pick_pages(seed, k, npages);
    if (!p)
        _exit(4);
    uint64_t a = now_ns();
    for (size_t i = 0; i < k; i++) {
        uint64_t h = mix(seed + p[i]);
        *(volatile uint64_t *)(base + (size_t)p[i] * PG + (h % (PG / 8)) * 8) = h;
    }
    uint64_t b = now_ns();
    for (size_t i = 0; i < k; i++) { /* same writes again: pages already unprotected */
        uint64_t h = mix(seed + p[i]);
        *(volatile uint64_t *)(base + (size_t)p[i] * PG + (h % (PG / 8)) * 8) = h;
    }
    uint64_t c = now_ns();
    *t1 = (int64_t)(b - a);
    *t2 = (int64_t)(c - b);
    free(p);
}

/* vmas of this process registered for uffd write-protect ("uw" in smaps VmFlags) */
static int count_uw_vmas(void)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int n = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmFlags:", 8) && strstr(line, " uw"))
            n++;
    fclose(f);
    return n;
}

static void child_main(size_t mib, int uffd_flags_ok)
{
    (void)uffd_flags_ok;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    cpages = mib * 256;
    cbuf = mmap(NULL, cpages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                -1, 0);
    if (cbuf == MAP_FAILED)
        _exit(5);
    /* keep the buffer in 4 KiB pages (THP is tested separately) */
    madvise(cbuf, cpages * PG, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < cpages; i++)
        memset(cbuf + i * PG, (int)(i * 7 + 1), PG);
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    child_reply((int64_t)(uintptr_t)cbuf, uffd, uffd < 0 ? errno : 0, 0);
    char *extra = NULL;
    size_t extralen = 0;
    for (;;) {
        struct cmd c;
        ssize_t r = read(cmd_rd, &c, sizeof c);
        if (r != sizeof c) {
            if (r < 0 && errno == EINTR)
                continue;
            _exit(0);
        }
        int64_t t1 = 0, t2 = 0;
        switch (c.op) {
        case C_WRITE:
            write_pages(cbuf, c.a, c.b, cpages, &t1, &t2);
            child_reply(t1, t2, 0, 0);
            break;
        case C_CLOSEFD:
            child_reply(close(uffd), 0, 0, 0);
            break;
        case C_FORKTIME: { /* how long a fork of this process takes */
            uint64_t a = now_ns();
            pid_t p = fork();
            if (p == 0)
                _exit(0);
            uint64_t b = now_ns();
            waitpid(p, NULL, 0);
            child_reply((int64_t)(b - a), 0, 0, 0);
            break;
        }
        case C_FORK:
        case C_FORK_EVT: { /* fork; the grandchild writes every page of the buffer */
            uint64_t a = now_ns();
            pid_t p = fork();
            if (p == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                for (size_t i = 0; i < cpages; i++)
                    cbuf[i * PG + 8] ^= 0x55;
                _exit(count_uw_vmas() > 100 ? 100 : count_uw_vmas());
            }
            uint64_t b = now_ns();
            int st = 0;
            waitpid(p, &st, 0);
            uint64_t e = now_ns();
            child_reply((int64_t)(b - a), (int64_t)(e - b),
                        WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0);
            break;
        }
        case C_MMAP: /* a = MiB; write every page unless b */
            extralen = c.a << 20;
            extra = mmap(NULL, extralen, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (extra != MAP_FAILED && !c.b)
                for (size_t i = 0; i < extralen; i += PG)
                    extra[i] = (char)(i / PG + 3);
            child_reply((int64_t)(uintptr_t)extra, (int64_t)extralen, 0, 0);
            break;
        case C_WRITEAT: /* write 8 bytes at address a with value b */
            *(volatile uint64_t *)(uintptr_t)c.a = c.b;
            child_reply(0, 0, 0, 0);
            break;
        case C_BRK: { /* grow the heap by a bytes and write it */
            char *old = sbrk(0);
            if (sbrk((intptr_t)c.a) == (void *)-1) {
                child_reply(0, 0, errno, 0);
                break;
            }
            for (size_t i = 0; i < c.a; i += PG)
                old[i] = 0x42;
            child_reply((int64_t)(uintptr_t)old, (int64_t)c.a, 0, 0);
            break;
        }
        case C_MREMAP: { /* move "extra" somewhere else */
            char *n = mremap(extra, extralen, extralen, MREMAP_MAYMOVE);
            /* force a move: grow in place may succeed, so move explicitly */
            char *dst = mmap(NULL, extralen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            n = mremap(n, extralen, extralen, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
            if (n != MAP_FAILED)
                extra = n;
            child_reply(n == MAP_FAILED ? 0 : (int64_t)(uintptr_t)n, (int64_t)extralen,
                        n == MAP_FAILED ? errno : 0, 0);
            break;
        }
        case C_FIXED: { /* MAP_FIXED 1 page of fresh memory at a, write it */
            char *p = mmap((void *)(uintptr_t)c.a, PG, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            if (p != MAP_FAILED)
                memset(p, 0x77, PG);
            child_reply(p == MAP_FAILED ? 0 : 1, errno, 0, 0);
            break;
        }
        case C_MUNMAP:
            child_reply(munmap((void *)(uintptr_t)c.a, c.b), 0, 0, 0);
            break;
        case C_DONTNEED:
            child_reply(madvise((void *)(uintptr_t)c.a, c.b, MADV_DONTNEED), 0, 0, 0);
            break;
        case C_THP: { /* a = MiB, THP-backed, touched; report AnonHugePages kB */
            size_t len = c.a << 20;
            char *raw = mmap(NULL, len + (2 << 20), PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            char *p = (char *)(((uintptr_t)raw + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
            madvise(p, len, MADV_HUGEPAGE);
            for (size_t i = 0; i < len; i += PG)
                p[i] = 1;
            child_reply((int64_t)(uintptr_t)p, (int64_t)len, 0, 0);
            break;
        }
        case C_HUGETLB: { /* a = MiB of MAP_HUGETLB, touched */
            size_t len = c.a << 20;
            char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
            if (p == MAP_FAILED) {
                child_reply(0, 0, errno, 0);
                break;
            }
            memset(p, 3, len);
            child_reply((int64_t)(uintptr_t)p, (int64_t)len, 0, 0);
            break;
        }
        case C_KREAD: { /* the kernel writes into page a of the buffer (read(2)) */
            int fd = open("/dev/urandom", O_RDONLY);
            ssize_t n = read(fd, cbuf + c.a * PG + 100, 64);
            close(fd);
            child_reply(n, 0, 0, 0);
            break;
        }
        case C_SHARED: { /* a MiB of MAP_SHARED|MAP_ANONYMOUS, touched */
            size_t len = c.a << 20;
            char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                           -1, 0);
            if (p != MAP_FAILED)
                memset(p, 5, len);
            child_reply(p == MAP_FAILED ? 0 : (int64_t)(uintptr_t)p, (int64_t)len, 0, 0);
            break;
        }
        case C_UWCOUNT:
            child_reply(count_uw_vmas(), 0, 0, 0);
            break;
        case C_EXIT:
            _exit(0);
        }
    }
}

/* ---------------------------------------------------------------- parent side */

typedef struct {
    pid_t pid;
    int cmd_wr, rep_rd;
    uint64_t buf;
    size_t npages;
    int uffd; /* the tracer's copy */
} kid;

static struct rep kid_call_to(kid *k, int op, uint64_t a, uint64_t b, uint64_t c,
                              int timeout_ms, int *timed_out)
{
    struct cmd m = {op, 0, a, b, c};
    struct rep r;
    memset(&r, 0, sizeof r);
    if (write(k->cmd_wr, &m, sizeof m) != sizeof m)
        die("write to child: %s", strerror(errno));
    struct pollfd pf = {k->rep_rd, POLLIN, 0};
    int pr = poll(&pf, 1, timeout_ms);
    if (pr == 0 && timed_out) {
        *timed_out = 1;
        return r;
    }
    if (pr <= 0)
        die("child %d did not answer command %d", (int)k->pid, op);
    if (read(k->rep_rd, &r, sizeof r) != sizeof r)
        die("read from child %d (command %d): died?", (int)k->pid, op);
    return r;
}

static struct rep kid_call(kid *k, int op, uint64_t a, uint64_t b, uint64_t c)
{
    return kid_call_to(k, op, a, b, c, 600000, NULL);
}

/* Fork a child with `mib` MiB, then take its uffd the engine's way (ptrace + pidfd_getfd) */
static void kid_start(kid *k, size_t mib)
{
    int c2p[2], p2c[2];
    if (pipe(c2p) || pipe(p2c))
        die("pipe: %s", strerror(errno));
    pid_t p = fork();
    if (p < 0)
        die("fork: %s", strerror(errno));
    if (p == 0) {
        close(c2p[0]);
        close(p2c[1]);
        cmd_rd = p2c[0];
        rep_wr = c2p[1];
        child_main(mib, 1);
        _exit(0);
    }
    children[nchildren++] = p;
    close(c2p[1]);
    close(p2c[0]);
    memset(k, 0, sizeof *k);
    k->pid = p;
    k->cmd_wr = p2c[1];
    k->rep_rd = c2p[0];
    k->npages = mib * 256;
    struct rep r;
    if (read(k->rep_rd, &r, sizeof r) != sizeof r)
        die("child %d died during setup", (int)p);
    if (r.v[1] < 0)
        die("userfaultfd() in child: %s", strerror((int)r.v[2]));
    k->buf = (uint64_t)r.v[0];
    int child_fd = (int)r.v[1];

    /* The engine's path: attach, stop, pidfd_getfd, detach. */
    if (ptrace(PTRACE_SEIZE, p, 0, 0))
        die("PTRACE_SEIZE: %s", strerror(errno));
    if (ptrace(PTRACE_INTERRUPT, p, 0, 0))
        die("PTRACE_INTERRUPT: %s", strerror(errno));
    int st;
    if (waitpid(p, &st, __WALL) != p || !WIFSTOPPED(st))
        die("waitpid after PTRACE_INTERRUPT");
    int pidfd = (int)syscall(SYS_pidfd_open, p, 0);
    if (pidfd < 0)
        die("pidfd_open: %s", strerror(errno));
    k->uffd = (int)syscall(SYS_pidfd_getfd, pidfd, child_fd, 0);
    if (k->uffd < 0)
        die("pidfd_getfd: %s", strerror(errno));
    close(pidfd);
    if (ptrace(PTRACE_DETACH, p, 0, 0))
        die("PTRACE_DETACH: %s", strerror(errno));
    /* the engine injects close(fd): only the tracer's copy remains */
    r = kid_call(k, C_CLOSEFD, 0, 0, 0);
    if (r.v[0] != 0)
        die("close(uffd) in child failed");
}

static void kid_stop(kid *k)
{
    struct cmd m = {C_EXIT, 0, 0, 0, 0};
    if (write(k->cmd_wr, &m, sizeof m) < 0) { /* ignore: killed below anyway */
    }
    kill(k->pid, SIGKILL);
    waitpid(k->pid, NULL, __WALL);
    for (int i = 0; i < nchildren; i++)
        if (children[i] == k->pid)
            children[i] = 0;
    close(k->cmd_wr);
    close(k->rep_rd);
    if (k->uffd >= 0)
        close(k->uffd);
}

static int read_remote(pid_t pid, void *dst, uint64_t src, size_t len)
{
    size_t done = 0;
    while (done < len) {
        struct iovec l = {(char *)dst + done, len - done};
        struct iovec r = {(void *)(uintptr_t)(src + done), len - done};
        ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

static cryo_dirty *open_dirty(kid *k)
{
    char err[256];
    cryo_dirty *d = NULL;
    int rc = cryo_dirty_open(k->pid, k->uffd, &d, err, sizeof err);
    if (rc == CRYO_DIRTY_UNSUPPORTED) {
        printf("kernel unsupported: %s\n", err);
        kill_all();
        exit(77);
    }
    if (rc)
        die("cryo_dirty_open: %s", err);
    return d;
}

static void arm(cryo_dirty *d, double *ms)
{
    char err[256];
    double t = now_ms();
    if (cryo_dirty_arm(d, err, sizeof err))
        die("cryo_dirty_arm: %s", err);
    if (ms)
        *ms = now_ms() - t;
}

static cryo_dirty_range *collect(cryo_dirty *d, size_t *n, double *ms)
{
    char err[256];
    cryo_dirty_range *r;
    double t = now_ms();
    if (cryo_dirty_collect(d, &r, n, err, sizeof err))
        die("cryo_dirty_collect: %s", err);
    if (ms)
        *ms = now_ms() - t;
    return r;
}

/* pages of [s,e) reported with flag f */
static size_t count_in(cryo_dirty_range *r, size_t n, uint64_t s, uint64_t e, uint32_t f)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(r[i].flags & f))
            continue;
        uint64_t a = r[i].start > s ? r[i].start : s;
        uint64_t b = r[i].end < e ? r[i].end : e;
        if (a < b)
            c += (b - a) / PG;
    }
    return c;
}

static int covers(cryo_dirty_range *r, size_t n, uint64_t s, uint64_t e, uint32_t f)
{
    return count_in(r, n, s, e, f) == (e - s) / PG;
}

/* ---------------------------------------------------------------- benchmark */

static void bench(size_t mib)
{
    kid k;
    kid_start(&k, mib);
    size_t np = k.npages;
    uint64_t bs = k.buf, be = k.buf + np * PG;
    printf("\n== %zu MiB (%zu pages), pid %d ==\n", mib, np, (int)k.pid);

    struct rep fr = kid_call(&k, C_FORKTIME, 0, 0, 0);
    printf("  fork() of the child itself: %.2f ms\n", fr.v[0] / 1e6);

    cryo_dirty *d = open_dirty(&k);
    char *image = malloc(np * PG), *now = malloc(np * PG);
    unsigned char *want = malloc(np);
    if (!image || !now || !want)
        die("out of memory");

    double t_arm, t_copy = now_ms();
    arm(d, &t_arm);
    if (read_remote(k.pid, image, bs, np * PG)) /* the baseline (stands for the fork) */
        die("process_vm_readv baseline: %s", strerror(errno));
    t_copy = now_ms() - t_copy - t_arm;
    size_t nu;
    const cryo_dirty_range *u = cryo_dirty_untracked(d, &nu);
    printf("  arm: %.3f ms (baseline full copy %.1f ms); untracked writable mappings: %zu\n",
           t_arm, t_copy, nu);
    for (size_t i = 0; i < nu; i++)
        printf("    untracked %" PRIx64 "-%" PRIx64 " flags %#x err %d\n", u[i].start,
               u[i].end, u[i].flags, u[i].err);

    /* a collect right after arm: nothing in the buffer */
    size_t n;
    double t_col;
    cryo_dirty_range *r = collect(d, &n, &t_col);
    size_t inbuf = count_in(r, n, bs, be, CRYO_DIRTY_WRITTEN);
    printf("  collect with nothing written: %.3f ms, %zu ranges, %zu pages in buffer\n",
           t_col, n, inbuf);
    if (inbuf)
        fail("%zu pages reported in an unwritten buffer", inbuf);

    static const double pcts[] = {0.01, 0.10, 1.00};
    printf("  %-6s %8s %10s %10s %10s %9s %9s %7s %6s %6s %6s\n", "write", "pages",
           "wr1 us/pg", "wr2 us/pg", "collect ms", "copy ms", "ranges", "other", "miss",
           "extra", "image");
    for (int round = 0; round < 3; round++) {
        size_t kk = (size_t)(pcts[round] * (double)np);
        uint64_t seed = 0x5eed0000ULL + mib * 16 + (uint64_t)round;
        struct rep w = kid_call(&k, C_WRITE, seed, kk, 0);
        r = collect(d, &n, &t_col);

        /* expected set */
        memset(want, 0, np);
        uint32_t *p = pick_pages(seed, kk, np);
        for (size_t i = 0; i < kk; i++)
            want[p[i]] = 1;
        free(p);
        size_t miss = 0, extra = 0, other = 0;
        unsigned char *got = calloc(np, 1);
        size_t unpop = 0;
        for (size_t i = 0; i < n; i++) {
            if (r[i].flags & CRYO_DIRTY_UNPOPULATED) {
                /* the engine records these as zero pages: so does the image */
                uint64_t a = r[i].start > bs ? r[i].start : bs;
                uint64_t b = r[i].end < be ? r[i].end : be;
                if (a < b) {
                    memset(image + (a - bs), 0, b - a);
                    unpop += (b - a) / PG;
                }
                continue;
            }
            if (!(r[i].flags & CRYO_DIRTY_WRITTEN))
                continue;
            for (uint64_t a = r[i].start; a < r[i].end; a += PG) {
                if (a >= bs && a < be)
                    got[(a - bs) / PG] = 1;
                else
                    other++;
            }
        }
        for (size_t i = 0; i < np; i++) {
            if (want[i] && !got[i])
                miss++;
            if (!want[i] && got[i])
                extra++;
        }
        free(got);

        /* the engine's copy: only the reported pages, straight into the image */
        double tc = now_ms();
        struct iovec lv[1024], rv[1024];
        int nv = 0;
        size_t copied = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && r[i].flags == CRYO_DIRTY_WRITTEN) {
                uint64_t a = r[i].start > bs ? r[i].start : bs;
                uint64_t b = r[i].end < be ? r[i].end : be;
                if (a < b) {
                    lv[nv].iov_base = image + (a - bs);
                    lv[nv].iov_len = b - a;
                    rv[nv].iov_base = (void *)(uintptr_t)a;
                    rv[nv].iov_len = b - a;
                    copied += b - a;
                    nv++;
                }
            }
            if (nv == 1024 || (i == n && nv)) {
                ssize_t got_b = process_vm_readv(k.pid, lv, (unsigned long)nv, rv,
                                                 (unsigned long)nv, 0);
                if (got_b < 0)
                    die("process_vm_readv: %s", strerror(errno));
                size_t want_b = 0;
                for (int j = 0; j < nv; j++)
                    want_b += lv[j].iov_len;
                if ((size_t)got_b != want_b)
                    die("process_vm_readv short: %zd of %zu", got_b, want_b);
                nv = 0;
            }
        }
        tc = now_ms() - tc;
        (void)copied;

        /* the image (baseline + deltas) must equal the child's memory */
        if (read_remote(k.pid, now, bs, np * PG))
            die("process_vm_readv full: %s", strerror(errno));
        size_t bad = 0;
        for (size_t i = 0; i < np; i++)
            if (memcmp(image + i * PG, now + i * PG, PG))
                bad++;
        printf("  %5.0f%% %8zu %10.3f %10.3f %10.3f %9.3f %9zu %7zu %6zu %6zu %6s\n",
               pcts[round] * 100, kk, kk ? w.v[0] / 1e3 / (double)kk : 0,
               kk ? w.v[1] / 1e3 / (double)kk : 0, t_col, tc, n, other, miss, extra,
               bad ? "BAD" : "ok");
        if (miss)
            fail("%zu written pages not reported", miss);
        if (extra)
            fail("%zu pages reported but not written", extra);
        if (unpop)
            fail("%zu pages of the (fully populated) buffer reported unpopulated", unpop);
        if (bad)
            fail("image differs from child memory in %zu pages", bad);
    }
    cryo_dirty_close(d);
    free(image);
    free(now);
    free(want);
    kid_stop(&k);
}

/* ---------------------------------------------------------------- experiments */

static long anon_huge_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

static void expect_written(cryo_dirty *d, const char *what, uint64_t s, uint64_t e,
                           size_t want_pages)
{
    size_t n;
    cryo_dirty_range *r = collect(d, &n, NULL);
    size_t c = count_in(r, n, s, e, CRYO_DIRTY_WRITTEN);
    printf("  %-52s %zu page(s) reported (want %zu)\n", what, c, want_pages);
    if (c != want_pages)
        fail("%s: %zu pages reported, want %zu", what, c, want_pages);
}

static void experiments(void)
{
    printf("\n== experiments (64 MiB child) ==\n");
    kid k;
    kid_start(&k, 64);
    uint64_t bs = k.buf, be = k.buf + k.npages * PG;
    cryo_dirty *d = open_dirty(&k);
    arm(d, NULL);
    size_t n;
    cryo_dirty_range *r;

    /* tracer-side registration works on the tracee's mm */
    kid_call(&k, C_WRITEAT, bs + 5 * PG + 16, 1, 0);
    expect_written(d, "tracee write after tracer-side arm:", bs, be, 1);

    /* fork: the child must run freely (no uffd context inherited) */
    struct rep uw = kid_call(&k, C_UWCOUNT, 0, 0, 0);
    struct rep f = kid_call(&k, C_FORK, 0, 0, 0);
    printf("  fork with tracking armed: fork() %.2f ms; grandchild (%d uffd-wp vmas, "
           "parent has %d) wrote all %zu pages, exited after %.1f ms\n",
           f.v[0] / 1e6, (int)f.v[2], (int)uw.v[0], k.npages, f.v[1] / 1e6);
    if (f.v[2] != 0)
        fail("forked child inherited uffd-wp registration (or died): %d", (int)f.v[2]);
    expect_written(d, "tracee pages after fork + grandchild writes:", bs, be, 0);
    kid_call(&k, C_WRITE, 77, 100, 0);
    expect_written(d, "tracee writes 100 pages after its fork:", bs, be, 100);

    /* kernel writes (read(2) into the buffer) and debugger writes */
    kid_call(&k, C_KREAD, 9, 0, 0);
    expect_written(d, "kernel write (read(2) into 1 page):", bs, be, 1);
    {
        uint64_t v = 0x1234;
        struct iovec l = {&v, 8}, rr = {(void *)(uintptr_t)(bs + 11 * PG), 8};
        if (process_vm_writev(k.pid, &l, 1, &rr, 1, 0) != 8)
            fail("process_vm_writev: %s", strerror(errno));
        expect_written(d, "debugger write (process_vm_writev 1 page):", bs, be, 1);
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", (int)k.pid);
        int fd = open(path, O_RDWR);
        if (fd < 0 || pwrite(fd, &v, 8, (off_t)(bs + 12 * PG)) != 8)
            fail("/proc/pid/mem write: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        expect_written(d, "debugger write (/proc/pid/mem 1 page):", bs, be, 1);
    }

    /* new mappings after arming */
    struct rep m = kid_call(&k, C_MMAP, 4, 0, 0);
    uint64_t ms = (uint64_t)m.v[0], me = ms + (uint64_t)m.v[1];
    r = collect(d, &n, NULL);
    printf("  mmap 4 MiB + write after arm: reported UNTRACKED|NEW=%s\n",
           covers(r, n, ms, me, CRYO_DIRTY_NEW) ? "yes" : "NO");
    if (!covers(r, n, ms, me, CRYO_DIRTY_NEW))
        fail("new mmap not reported");
    kid_call(&k, C_WRITEAT, ms + 3 * PG, 9, 0);
    kid_call(&k, C_WRITEAT, ms + 7 * PG, 9, 0);
    expect_written(d, "  ...then 2 writes into it (now tracked):", ms, me, 2);

    m = kid_call(&k, C_BRK, 1 << 20, 0, 0);
    if (m.v[0]) {
        uint64_t s2 = (uint64_t)m.v[0], e2 = s2 + (uint64_t)m.v[1];
        r = collect(d, &n, NULL);
        int ok = covers(r, n, s2 & ~(PG - 1), e2 & ~(PG - 1), CRYO_DIRTY_NEW);
        printf("  brk +1 MiB + write after arm: reported UNTRACKED|NEW=%s\n", ok ? "yes" : "NO");
        if (!ok)
            fail("brk growth not reported");
    }

    m = kid_call(&k, C_MREMAP, 0, 0, 0);
    if (m.v[0]) {
        uint64_t s2 = (uint64_t)m.v[0], e2 = s2 + (uint64_t)m.v[1];
        r = collect(d, &n, NULL);
        int ok = covers(r, n, s2, e2, CRYO_DIRTY_NEW);
        printf("  mremap (move) of the 4 MiB mapping: destination reported NEW=%s\n",
               ok ? "yes" : "NO");
        if (!ok)
            fail("mremap destination not reported");
        kid_call(&k, C_WRITEAT, s2 + PG, 9, 0);
        expect_written(d, "  ...then 1 write into it:", s2, e2, 1);
        kid_call(&k, C_MUNMAP, s2, e2 - s2, 0);
        r = collect(d, &n, NULL);
        printf("  munmap of it: %zu page(s) reported in the old range\n",
               count_in(r, n, s2, e2, ~0u));
    }

    /* a write into memory that has no page table yet: the kernel allocates a table
     * whose other 511 entries are empty; PAGEMAP_SCAN's fast path counts empty
     * entries as written (see docs) */
    m = kid_call(&k, C_MMAP, 8, 1, 0); /* 8 MiB, untouched */
    {
        uint64_t s2 = (uint64_t)m.v[0], e2 = s2 + (uint64_t)m.v[1];
        r = collect(d, &n, NULL);
        uint64_t a = (s2 + (2 << 20)) & ~(uint64_t)((2 << 20) - 1);
        kid_call(&k, C_WRITEAT, a + 100 * PG, 1, 0);
        r = collect(d, &n, NULL);
        size_t c = count_in(r, n, s2, e2, CRYO_DIRTY_WRITTEN);
        size_t z = count_in(r, n, s2, e2, CRYO_DIRTY_UNPOPULATED);
        printf("  1 write into a fresh 2 MiB area: %zu page(s) reported, %zu of them "
               "UNPOPULATED\n", c, z);
        if (c < 1 || c - z != 1 || !count_in(r, n, a + 100 * PG, a + 101 * PG, CRYO_DIRTY_WRITTEN))
            fail("fresh page table: written page missing or extra populated pages");
        kid_call(&k, C_MUNMAP, s2, e2 - s2, 0);
    }

    kid_call(&k, C_FIXED, bs + 20 * PG, 0, 0);
    r = collect(d, &n, NULL);
    {
        int ok = covers(r, n, bs + 20 * PG, bs + 21 * PG, CRYO_DIRTY_NEW);
        printf("  MAP_FIXED over 1 tracked page: reported NEW=%s\n", ok ? "yes" : "NO");
        if (!ok)
            fail("MAP_FIXED replacement not reported");
    }

    /* MADV_DONTNEED: the page's contents change (to zero) without a write */
    kid_call(&k, C_DONTNEED, bs + 30 * PG, PG, 0);
    r = collect(d, &n, NULL);
    {
        size_t c = count_in(r, n, bs + 30 * PG, bs + 31 * PG, CRYO_DIRTY_WRITTEN);
        printf("  MADV_DONTNEED of 1 page (content becomes zero): %zu page(s) reported\n", c);
        if (c != 1)
            fail("MADV_DONTNEED'd page not reported");
    }

    /* ... and of a whole 2 MiB-aligned, page-table-sized chunk (the kernel may free
     * the emptied page table: then nothing is left to report) */
    {
        uint64_t a = (bs + (4 << 20)) & ~(uint64_t)((2 << 20) - 1);
        kid_call(&k, C_DONTNEED, a, 2 << 20, 0);
        r = collect(d, &n, NULL);
        size_t c = count_in(r, n, a, a + (2 << 20), CRYO_DIRTY_WRITTEN);
        size_t z = count_in(r, n, a, a + (2 << 20), CRYO_DIRTY_UNPOPULATED);
        printf("  MADV_DONTNEED of an aligned 2 MiB chunk: %zu of 512 page(s) reported, "
               "%zu UNPOPULATED\n", c, z);
        if (c != 512)
            fail("MADV_DONTNEED'd chunk not reported");
    }

    /* THP */
    m = kid_call(&k, C_THP, 8, 0, 0);
    {
        uint64_t s2 = (uint64_t)m.v[0], e2 = s2 + (uint64_t)m.v[1];
        long h0 = anon_huge_kb(k.pid);
        r = collect(d, &n, NULL); /* registers it, baseline */
        long h1 = anon_huge_kb(k.pid);
        kid_call(&k, C_WRITEAT, s2 + 3 * PG, 1, 0);
        kid_call(&k, C_WRITEAT, s2 + (2 << 20) + 5 * PG, 1, 0);
        long h2 = anon_huge_kb(k.pid);
        expect_written(d, "THP (8 MiB, MADV_HUGEPAGE): 2 writes in 2 huge pages:", s2,
                       e2, 2);
        printf("  THP: AnonHugePages %ld kB before, %ld kB after registration+protect, "
               "%ld kB after the 2 writes\n", h0, h1, h2);
    }

    /* hugetlb */
    m = kid_call(&k, C_HUGETLB, 4, 0, 0);
    if (!m.v[0]) {
        printf("  hugetlb: mmap(MAP_HUGETLB) failed in child (%s): skipped\n",
               strerror((int)m.v[2]));
    } else {
        uint64_t s2 = (uint64_t)m.v[0], e2 = s2 + (uint64_t)m.v[1];
        r = collect(d, &n, NULL);
        int isnew = covers(r, n, s2, e2, CRYO_DIRTY_NEW);
        int failed = covers(r, n, s2, e2, CRYO_DIRTY_FAILED);
        printf("  hugetlb 4 MiB: first collect NEW=%d FAILED=%d\n", isnew, failed);
        kid_call(&k, C_WRITEAT, s2 + 3 * PG, 1, 0);
        r = collect(d, &n, NULL);
        printf("  hugetlb: 1 write of 8 bytes -> %zu KiB reported written\n",
               count_in(r, n, s2, e2, CRYO_DIRTY_WRITTEN) * 4);
    }

    /* MAP_SHARED: never tracked, reported UNTRACKED|SHARED at every collect */
    m = kid_call(&k, C_SHARED, 2, 0, 0);
    if (m.v[0]) {
        uint64_t s2 = (uint64_t)m.v[0], e2 = s2 + (uint64_t)m.v[1];
        r = collect(d, &n, NULL);
        int a1 = covers(r, n, s2, e2, CRYO_DIRTY_SHARED);
        r = collect(d, &n, NULL);
        int a2 = covers(r, n, s2, e2, CRYO_DIRTY_SHARED);
        printf("  MAP_SHARED 2 MiB: UNTRACKED|SHARED at 1st collect=%d, at 2nd=%d\n", a1, a2);
        if (!a1 || !a2)
            fail("shared mapping not reported as untracked");
    }

    /* the tracer closes its uffd: tracking ends, the tracee keeps running normally */
    cryo_dirty_close(d);
    close(k.uffd);
    k.uffd = -1;
    kid_call(&k, C_WRITE, 99, k.npages / 2, 0);
    uw = kid_call(&k, C_UWCOUNT, 0, 0, 0);
    printf("  after the tracer closed its uffd: tracee wrote %zu pages fine, %d uffd-wp "
           "vmas left\n", k.npages / 2, (int)uw.v[0]);
    if (uw.v[0] != 0)
        fail("vmas still registered after the uffd was closed");
    kid_stop(&k);

    /* UFFD_FEATURE_EVENT_FORK: does the tracee's fork() wait for the tracer? */
    kid_start(&k, 16);
    struct uffdio_api api = {UFFD_API,
                             UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
                                 UFFD_FEATURE_EVENT_FORK,
                             0};
    if (ioctl(k.uffd, UFFDIO_API, &api)) {
        printf("  EVENT_FORK with WP_ASYNC: UFFDIO_API refused: %s\n", strerror(errno));
    } else {
        /* the module must call this an error, not "unsupported" */
        char err[256];
        cryo_dirty *d2 = NULL;
        int rc = cryo_dirty_open(k.pid, k.uffd, &d2, err, sizeof err);
        printf("  cryo_dirty_open on a uffd already initialised: rc %d (%s)\n", rc, err);
        if (rc != CRYO_DIRTY_ERROR)
            fail("cryo_dirty_open on an initialised uffd returned %d", rc);
        cryo_dirty_close(d2);
        struct uffdio_register reg = {{k.buf, k.npages * PG}, UFFDIO_REGISTER_MODE_WP, 0};
        if (ioctl(k.uffd, UFFDIO_REGISTER, &reg))
            printf("  EVENT_FORK: register failed: %s\n", strerror(errno));
        int to = 0;
        double t = now_ms();
        f = kid_call_to(&k, C_FORK_EVT, 0, 0, 0, 2000, &to);
        if (to) {
            printf("  EVENT_FORK: tracee's fork() BLOCKED >2 s until the tracer reads the "
                   "uffd event\n");
            struct uffd_msg msg;
            ssize_t rd = read(k.uffd, &msg, sizeof msg);
            if (rd == sizeof msg && msg.event == UFFD_EVENT_FORK) {
                printf("  EVENT_FORK: read UFFD_EVENT_FORK (new uffd %u in the tracer)\n",
                       msg.arg.fork.ufd);
                close((int)msg.arg.fork.ufd);
            }
            struct rep rr;
            struct pollfd pf = {k.rep_rd, POLLIN, 0};
            if (poll(&pf, 1, 5000) == 1 && read(k.rep_rd, &rr, sizeof rr) == sizeof rr)
                printf("  EVENT_FORK: fork returned after the read (%.0f ms total); the "
                       "forked child had %d uffd-wp vmas, wrote all its pages and exited\n",
                       now_ms() - t, (int)rr.v[2]);
            else
                printf("  EVENT_FORK: still blocked after reading the event\n");
        } else {
            printf("  EVENT_FORK: fork() did not block (%.2f ms)\n", f.v[0] / 1e6);
        }
    }
    kid_stop(&k);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_all);
    size_t sizes[8] = {16, 256, 1024};
    int nsizes = 3;
    if (argc > 1) {
        nsizes = 0;
        for (int i = 1; i < argc && nsizes < 8; i++)
            sizes[nsizes++] = (size_t)strtoul(argv[i], NULL, 10);
    }
    experiments();
    for (int i = 0; i < nsizes; i++)
        bench(sizes[i]);
    kill_all();
    printf("\n%s (%d failure(s))\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
