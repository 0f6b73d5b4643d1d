/* dirty.c: incremental-checkpoint dirty tracking with async userfaultfd write-protect
 * and PAGEMAP_SCAN, driven entirely from the tracer. See dirty.h and
 * docs/dirty-tracking.md. */
#include "dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>

/* ---- uapi that Debian 12's linux-libc-dev (6.1) predates; values from the kernel's
 * include/uapi/linux/userfaultfd.h and include/uapi/linux/fs.h (6.7+). ---- */
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1ULL << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1ULL << 15)
#endif

#ifndef PAGEMAP_SCAN
struct page_region {
    __u64 start;
    __u64 end;
    __u64 categories;
};
struct pm_scan_arg {
    __u64 size;
    __u64 flags;
    __u64 start;
    __u64 end;
    __u64 walk_end;
    __u64 vec;
    __u64 vec_len;
    __u64 max_pages;
    __u64 category_inverted;
    __u64 category_mask;
    __u64 category_anyof_mask;
    __u64 return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif
#ifndef PM_SCAN_WP_MATCHING
#define PM_SCAN_WP_MATCHING   (1ULL << 0)
#endif
#ifndef PM_SCAN_CHECK_WPASYNC
#define PM_SCAN_CHECK_WPASYNC (1ULL << 1)
#endif
#ifndef PAGE_IS_WPALLOWED
#define PAGE_IS_WPALLOWED (1ULL << 0)
#endif
#ifndef PAGE_IS_WRITTEN
#define PAGE_IS_WRITTEN   (1ULL << 1)
#endif
#ifndef PAGE_IS_PRESENT
#define PAGE_IS_PRESENT   (1ULL << 3)
#endif
#ifndef PAGE_IS_SWAPPED
#define PAGE_IS_SWAPPED   (1ULL << 4)
#endif

/* Highest user address PAGEMAP_SCAN may be asked about (it checks access_ok against the
 * CALLER's task size, so stay at the default, non-LA57 limit). */
#if defined(__x86_64__)
#define USER_END 0x7ffffffff000ULL
#elif defined(__aarch64__)
#define USER_END 0xfffffffff000ULL
#else
#define USER_END 0x7fff0000ULL
#endif

#define VEC_LEN 8192 /* page_region entries per PAGEMAP_SCAN call (192 KiB) */
#define PMD_SPAN (2ULL << 20) /* memory one page table maps (x86-64, arm64 4K) */
#define UNPOP_MIN_PAGES 8 /* written runs at least this long are checked for empty entries */

typedef struct {
    uint64_t start, end;
} span;

struct cryo_dirty {
    pid_t pid;
    int uffd;
    int pagemap;
    uint64_t features;
    struct page_region *vec;
    /* collect: WRITTEN runs in address order (out), everything else (ext: NEW,
     * SHARED/FAILED, split runs), merged in order into fin */
    cryo_dirty_range *out, *ext, *fin;
    size_t nout, capout, next, capext, nfin, capfin;
    /* writable mappings we do not track (SHARED / FAILED), from the last maps read */
    cryo_dirty_range *untr;
    size_t nuntr, capuntr;
    /* output of the last "which memory is not wp-async" scan, to skip re-reading maps */
    span *chk;
    size_t nchk, capchk;
    char *maps;
    size_t mapscap;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static int push_range(cryo_dirty_range **a, size_t *n, size_t *cap, uint64_t s,
                      uint64_t e, uint32_t flags, int32_t err)
{
    /* merge with the previous WRITTEN run when contiguous */
    if (*n && flags == CRYO_DIRTY_WRITTEN && (*a)[*n - 1].flags == flags &&
        (*a)[*n - 1].end == s) {
        (*a)[*n - 1].end = e;
        return 0;
    }
    if (grow((void **)a, cap, *n + 1, sizeof **a))
        return -1;
    (*a)[*n].start = s;
    (*a)[*n].end = e;
    (*a)[*n].flags = flags;
    (*a)[*n].err = err;
    (*n)++;
    return 0;
}

/* ---- /proc/PID/maps ---- */

typedef struct {
    uint64_t start, end;
    int writable, shared, vsyscall;
} mapline;

static int read_maps(cryo_dirty *d, mapline **lines, size_t *nlines, char *err,
                     size_t errlen)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)d->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = 0;
    for (;;) {
        if (grow((void **)&d->maps, &d->mapscap, len + 65536, 1)) {
            close(fd);
            seterr(err, errlen, "read_maps: out of memory");
            return -1;
        }
        ssize_t r = read(fd, d->maps + len, d->mapscap - len - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            seterr(err, errlen, "read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    d->maps[len] = 0;

    size_t n = 0, cap = 0;
    mapline *a = NULL;
    char *p = d->maps;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        unsigned long long s, e;
        char perms[8];
        int off = 0;
        if (sscanf(p, "%llx-%llx %7s %*s %*s %*s%n", &s, &e, perms, &off) >= 3) {
            if (grow((void **)&a, &cap, n + 1, sizeof *a)) {
                free(a);
                seterr(err, errlen, "read_maps: out of memory");
                return -1;
            }
            a[n].start = s;
            a[n].end = e;
            a[n].writable = perms[1] == 'w';
            a[n].shared = perms[3] == 's';
            a[n].vsyscall = strstr(p + off, "[vsyscall]") != NULL;
            n++;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    *lines = a;
    *nlines = n;
    return 0;
}

/* ---- kernel calls ---- */

static int uffd_register(cryo_dirty *d, uint64_t s, uint64_t e)
{
    struct uffdio_register r;
    memset(&r, 0, sizeof r);
    r.range.start = s;
    r.range.len = e - s;
    r.mode = UFFDIO_REGISTER_MODE_WP;
    return ioctl(d->uffd, UFFDIO_REGISTER, &r) < 0 ? errno : 0;
}

/* One PAGEMAP_SCAN over [s,e). vec==NULL: write-protect everything written, report
 * nothing (the kernel's fast path). Returns number of regions or -errno. */
static long pm_scan(cryo_dirty *d, uint64_t s, uint64_t e, uint64_t flags,
                    struct page_region *vec, size_t vec_len, uint64_t inverted,
                    uint64_t mask, uint64_t retmask, uint64_t *walk_end)
{
    struct pm_scan_arg a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.flags = flags;
    a.start = s;
    a.end = e;
    a.vec = (uint64_t)(uintptr_t)vec;
    a.vec_len = vec ? vec_len : 0;
    a.category_inverted = inverted;
    a.category_mask = mask;
    a.return_mask = retmask;
    long r;
    do
        r = ioctl(d->pagemap, PAGEMAP_SCAN, &a);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (walk_end)
        *walk_end = a.walk_end;
    return r;
}

/* Memory in vmas that are not registered for async wp (new, shared, refused) -> d->chk */
static int check_untracked(cryo_dirty *d, char *err, size_t errlen)
{
    d->nchk = 0;
    uint64_t s = 0;
    while (s < USER_END) {
        uint64_t we = USER_END;
        long r = pm_scan(d, s, USER_END, 0, d->vec, VEC_LEN, PAGE_IS_WPALLOWED,
                         PAGE_IS_WPALLOWED, PAGE_IS_WPALLOWED, &we);
        if (r < 0) {
            seterr(err, errlen, "ioctl(/proc/%d/pagemap, PAGEMAP_SCAN) check: %s",
                   (int)d->pid, strerror((int)-r));
            return -1;
        }
        for (long i = 0; i < r; i++) {
            if (d->nchk && d->chk[d->nchk - 1].end == d->vec[i].start) {
                d->chk[d->nchk - 1].end = d->vec[i].end;
                continue;
            }
            if (grow((void **)&d->chk, &d->capchk, d->nchk + 1, sizeof *d->chk)) {
                seterr(err, errlen, "out of memory");
                return -1;
            }
            d->chk[d->nchk].start = d->vec[i].start;
            d->chk[d->nchk].end = d->vec[i].end;
            d->nchk++;
        }
        if (we <= s || we >= USER_END)
            break;
        s = we;
    }
    return 0;
}

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int overlaps_chk(const cryo_dirty *d, uint64_t s, uint64_t e)
{
    for (size_t i = 0; i < d->nchk; i++)
        if (d->chk[i].start < e && s < d->chk[i].end)
            return 1;
    return 0;
}

/* Register the mappings of maps: all private ones when all!=0, else only those that
 * overlap d->chk (not wp-async yet). Rebuilds d->untr. NEW ones are appended to the
 * output when report_new. */
static int register_maps(cryo_dirty *d, int all, int report_new, char *err,
                         size_t errlen)
{
    mapline *ml = NULL;
    size_t n = 0;
    if (read_maps(d, &ml, &n, err, errlen))
        return -1;
    d->nuntr = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        mapline *m = &ml[i];
        if (m->vsyscall)
            continue;
        if (m->shared) {
            if (m->writable && push_range(&d->untr, &d->nuntr, &d->capuntr, m->start,
                                          m->end, CRYO_DIRTY_UNTRACKED | CRYO_DIRTY_SHARED, 0))
                rc = -1;
            continue;
        }
        if (!all && !overlaps_chk(d, m->start, m->end))
            continue;
        int e = uffd_register(d, m->start, m->end);
        if (e == ENOMEM || e == ESRCH) {
            seterr(err, errlen, "ioctl(uffd, UFFDIO_REGISTER, %llx-%llx) in pid %d: %s",
                   (unsigned long long)m->start, (unsigned long long)m->end,
                   (int)d->pid, strerror(e));
            rc = -1;
            break;
        }
        if (e) {
            /* e.g. EINVAL for VM_PFNMAP/VM_IO, EBUSY if the tracee's own uffd owns it */
            if (m->writable && push_range(&d->untr, &d->nuntr, &d->capuntr, m->start,
                                          m->end, CRYO_DIRTY_UNTRACKED | CRYO_DIRTY_FAILED, e))
                rc = -1;
            continue;
        }
        if (report_new && push_range(&d->ext, &d->next, &d->capext, m->start, m->end,
                                     CRYO_DIRTY_UNTRACKED | CRYO_DIRTY_NEW, 0))
            rc = -1;
    }
    free(ml);
    if (rc && !(err && *err))
        seterr(err, errlen, "out of memory");
    return rc;
}


/* Append to d->out every page of a registered vma not write-protected, i.e. written
 * since it was last protected (PAGEMAP_SCAN's fast path: category_mask == return_mask
 * == PAGE_IS_WRITTEN). The kernel (6.18) counts EMPTY page-table entries and HOLES
 * (no page table at all) as written too: whatever carries no uffd-wp bit or marker.
 * mark_unpopulated sorts those out. No write-protection here: with
 * PM_SCAN_WP_MATCHING the kernel would fill every hole in the range with page tables
 * full of uffd-wp markers (2 MiB of tables per GiB of untouched address space, 16 MiB
 * and 10 ms for an 8 GiB reservation, and a walk of them at every scan). */
static int scan_written(cryo_dirty *d, char *err, size_t errlen)
{
    uint64_t s = 0;
    while (s < USER_END) {
        uint64_t we = USER_END;
        long r = pm_scan(d, s, USER_END, 0, d->vec, VEC_LEN, 0, PAGE_IS_WRITTEN,
                         PAGE_IS_WRITTEN, &we);
        if (r < 0) {
            seterr(err, errlen, "ioctl(/proc/%d/pagemap, PAGEMAP_SCAN, WRITTEN): %s",
                   (int)d->pid, strerror((int)-r));
            return -1;
        }
        for (long i = 0; i < r; i++)
            if (push_range(&d->out, &d->nout, &d->capout, d->vec[i].start, d->vec[i].end,
                           CRYO_DIRTY_WRITTEN, 0)) {
                seterr(err, errlen, "out of memory");
                return -1;
            }
        if (we <= s || we >= USER_END)
            break;
        s = we;
    }
    return 0;
}

/* Split the long WRITTEN runs of d->out[from..] into populated pieces and
 * WRITTEN|UNPOPULATED pieces (entries neither present nor swapped). The split run is
 * emptied in d->out and its pieces go to d->ext. Must run before protect_written,
 * which turns empty entries into uffd-wp markers. */
static int mark_unpopulated(cryo_dirty *d, size_t from, char *err, size_t errlen)
{
    for (size_t i = from; i < d->nout; i++) {
        if (d->out[i].flags != CRYO_DIRTY_WRITTEN ||
            d->out[i].end - d->out[i].start < UNPOP_MIN_PAGES * 4096ULL)
            continue;
        uint64_t os = d->out[i].start, oe = d->out[i].end, cur = os, s = os;
        int split = 0;
        while (s < oe) {
            uint64_t we = oe;
            long r = pm_scan(d, s, oe, 0, d->vec, VEC_LEN, PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                             PAGE_IS_PRESENT | PAGE_IS_SWAPPED, PAGE_IS_PRESENT, &we);
            if (r < 0) {
                seterr(err, errlen, "ioctl(/proc/%d/pagemap, PAGEMAP_SCAN, !PRESENT): %s",
                       (int)d->pid, strerror((int)-r));
                return -1;
            }
            for (long j = 0; j < r; j++) {
                uint64_t a = d->vec[j].start < cur ? cur : d->vec[j].start;
                uint64_t b = d->vec[j].end > oe ? oe : d->vec[j].end;
                if (a >= b)
                    continue;
                split = 1;
                if ((a > cur && push_range(&d->ext, &d->next, &d->capext, cur, a,
                                           CRYO_DIRTY_WRITTEN, 0)) ||
                    push_range(&d->ext, &d->next, &d->capext, a, b,
                               CRYO_DIRTY_WRITTEN | CRYO_DIRTY_UNPOPULATED, 0))
                    goto oom;
                cur = b;
            }
            if (we <= s || we >= oe)
                break;
            s = we;
        }
        if (!split)
            continue;
        if (cur < oe && push_range(&d->ext, &d->next, &d->capext, cur, oe,
                                   CRYO_DIRTY_WRITTEN, 0))
            goto oom;
        d->out[i].end = d->out[i].start; /* emptied: dropped when merging */
    }
    return 0;
oom:
    seterr(err, errlen, "out of memory");
    return -1;
}

/* Write-protect again every populated written page (flags exactly WRITTEN in
 * d->out[from..] and d->ext): one exclusive-WP PAGEMAP_SCAN (no output) per run of
 * consecutive page-table spans that contain such pages, so that no hole (missing page
 * table) is ever included: the kernel would fill it with a page table of uffd-wp
 * markers. Empty entries of those existing tables get markers (costs nothing). Holes
 * and empty runs found by mark_unpopulated stay unprotected, so they are reported
 * (WRITTEN|UNPOPULATED) at every collect until the tracee populates them. */
static int protect_written(cryo_dirty *d, size_t from, char *err, size_t errlen)
{
    /* the pieces from mark_unpopulated are unsorted: collect spans over a sorted copy
     * of the window indices */
    size_t n = 0;
    span *sp = malloc((d->nout - from + d->next + 1) * sizeof *sp);
    if (!sp) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    for (int pass = 0; pass < 2; pass++) {
        cryo_dirty_range *a = pass ? d->ext : d->out + from;
        size_t na = pass ? d->next : d->nout - from;
        for (size_t i = 0; i < na; i++)
            if (a[i].flags == CRYO_DIRTY_WRITTEN && a[i].end > a[i].start) {
                sp[n].start = a[i].start & ~(PMD_SPAN - 1);
                sp[n].end = (a[i].end + PMD_SPAN - 1) & ~(PMD_SPAN - 1);
                n++;
            }
    }
    if (d->next)
        qsort(sp, n, sizeof *sp, cmp_span);
    int rc = 0;
    for (size_t i = 0; i < n && !rc;) {
        uint64_t s = sp[i].start, e = sp[i].end;
        size_t j = i + 1;
        while (j < n && sp[j].start <= e) {
            if (sp[j].end > e)
                e = sp[j].end;
            j++;
        }
        i = j;
        if (e > USER_END)
            e = USER_END;
        while (s < e) {
            uint64_t we = e;
            long r = pm_scan(d, s, e, PM_SCAN_WP_MATCHING, NULL, 0, 0, PAGE_IS_WRITTEN,
                             PAGE_IS_WRITTEN, &we);
            if (r < 0) {
                seterr(err, errlen, "ioctl(/proc/%d/pagemap, PAGEMAP_SCAN, WP_MATCHING): %s",
                       (int)d->pid, strerror((int)-r));
                rc = -1;
                break;
            }
            if (we <= s || we >= e)
                break;
            s = we;
        }
    }
    free(sp);
    return rc;
}

/* ---- API ---- */

int cryo_dirty_open(pid_t pid, int uffd, cryo_dirty **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    cryo_dirty *d = calloc(1, sizeof *d);
    if (!d) {
        seterr(err, errlen, "cryo_dirty_open: out of memory");
        return CRYO_DIRTY_ERROR;
    }
    d->pid = pid;
    d->uffd = uffd;
    d->pagemap = -1;
    d->vec = malloc(VEC_LEN * sizeof *d->vec);
    if (!d->vec) {
        free(d);
        seterr(err, errlen, "cryo_dirty_open: out of memory");
        return CRYO_DIRTY_ERROR;
    }

    /* Hugetlb/shmem support is optional (CONFIG_PTE_MARKER_UFFD_WP); WP_ASYNC and
     * WP_UNPOPULATED are not: PAGEMAP_SCAN only treats an anonymous vma as
     * wp-capable when the uffd has WP_UNPOPULATED. A failed UFFDIO_API leaves the
     * context uninitialised, so it can be retried with fewer features. */
    static const uint64_t tries[] = {
        UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
        UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
    };
    int ok = 0, lasterr = 0;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        struct uffdio_api api;
        memset(&api, 0, sizeof api);
        api.api = UFFD_API;
        api.features = tries[i];
        if (ioctl(uffd, UFFDIO_API, &api) == 0) {
            d->features = tries[i];
            ok = 1;
            break;
        }
        lasterr = errno;
        if (lasterr != EINVAL)
            break;
    }
    if (!ok && lasterr == EINVAL) {
        /* Old kernel, or a uffd on which UFFDIO_API was already done? A kernel that
         * refused the features leaves the context uninitialised, so a plain handshake
         * still works there. */
        struct uffdio_api api;
        memset(&api, 0, sizeof api);
        api.api = UFFD_API;
        if (ioctl(uffd, UFFDIO_API, &api) != 0) {
            seterr(err, errlen, "ioctl(uffd, UFFDIO_API): %s (was UFFDIO_API already "
                   "done on this userfaultfd?)", strerror(errno));
            cryo_dirty_close(d);
            return CRYO_DIRTY_ERROR;
        }
    }
    if (!ok) {
        int unsupported = lasterr == EINVAL;
        seterr(err, errlen, "ioctl(uffd, UFFDIO_API, WP_ASYNC|WP_UNPOPULATED): %s%s",
               strerror(lasterr),
               unsupported ? " (kernel lacks async uffd write-protect: unsupported)" : "");
        cryo_dirty_close(d);
        return unsupported ? CRYO_DIRTY_UNSUPPORTED : CRYO_DIRTY_ERROR;
    }

    char path[64];
    snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
    d->pagemap = open(path, O_RDONLY | O_CLOEXEC);
    if (d->pagemap < 0) {
        seterr(err, errlen, "open %s: %s", path, strerror(errno));
        cryo_dirty_close(d);
        return CRYO_DIRTY_ERROR;
    }
    /* Probe: an empty scan. Kernels before 6.7 have no ioctl on pagemap (ENOTTY). */
    long r = pm_scan(d, 0, 0, 0, NULL, 0, 0, PAGE_IS_WRITTEN, PAGE_IS_WRITTEN, NULL);
    if (r < 0) {
        int e = (int)-r;
        int unsupported = e == ENOTTY || e == EINVAL;
        seterr(err, errlen, "ioctl(%s, PAGEMAP_SCAN): %s%s", path, strerror(e),
               unsupported ? " (kernel lacks PAGEMAP_SCAN: unsupported)" : "");
        cryo_dirty_close(d);
        return unsupported ? CRYO_DIRTY_UNSUPPORTED : CRYO_DIRTY_ERROR;
    }
    *out = d;
    return CRYO_DIRTY_OK;
}

int cryo_dirty_arm(cryo_dirty *d, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    d->nout = 0;
    d->next = 0;
    if (register_maps(d, 1, 0, err, errlen))
        return CRYO_DIRTY_ERROR;
    /* Baseline: everything populated counts as written right after registration;
     * find it and write-protect it. */
    if (scan_written(d, err, errlen) || mark_unpopulated(d, 0, err, errlen) ||
        protect_written(d, 0, err, errlen))
        return CRYO_DIRTY_ERROR;
    d->nout = 0;
    d->next = 0;
    if (check_untracked(d, err, errlen))
        return CRYO_DIRTY_ERROR;
    return CRYO_DIRTY_OK;
}

const cryo_dirty_range *cryo_dirty_untracked(cryo_dirty *d, size_t *n)
{
    *n = d->nuntr;
    return d->untr;
}

static int cmp_range(const void *a, const void *b)
{
    const cryo_dirty_range *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (int)x->flags - (int)y->flags;
}

int cryo_dirty_collect(cryo_dirty *d, cryo_dirty_range **ranges, size_t *n, char *err,
                       size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    *ranges = NULL;
    *n = 0;
    d->nout = 0;
    d->next = 0;

    /* 1. Did any memory outside wp-async vmas change since the last call? (new mmap,
     * brk growth, mremap destination, MAP_FIXED over a tracked range). Only then is
     * /proc/PID/maps read again. */
    span *old = NULL;
    size_t nold = d->nchk;
    if (nold) {
        old = malloc(nold * sizeof *old);
        if (!old) {
            seterr(err, errlen, "out of memory");
            return CRYO_DIRTY_ERROR;
        }
        memcpy(old, d->chk, nold * sizeof *old);
    }
    if (check_untracked(d, err, errlen)) {
        free(old);
        return CRYO_DIRTY_ERROR;
    }
    int changed = nold != d->nchk ||
                  (nold && memcmp(old, d->chk, nold * sizeof *old) != 0);
    free(old);
    if (changed) {
        if (register_maps(d, 0, 1, err, errlen))
            return CRYO_DIRTY_ERROR;
        if (check_untracked(d, err, errlen))
            return CRYO_DIRTY_ERROR;
    }

    /* 2. Written pages, then 3. write-protect them again (the tracee is stopped, so
     * nothing can be written in between). */
    if (scan_written(d, err, errlen) || mark_unpopulated(d, 0, err, errlen) ||
        protect_written(d, 0, err, errlen))
        return CRYO_DIRTY_ERROR;

    /* 4. Untrackable writable mappings: every time. */
    for (size_t i = 0; i < d->nuntr; i++)
        if (push_range(&d->ext, &d->next, &d->capext, d->untr[i].start, d->untr[i].end,
                       d->untr[i].flags, d->untr[i].err)) {
            seterr(err, errlen, "out of memory");
            return CRYO_DIRTY_ERROR;
        }
    if (!d->next) {
        *ranges = d->out;
        *n = d->nout;
        return CRYO_DIRTY_OK;
    }
    /* merge the (sorted) WRITTEN runs with the (few, sorted here) others */
    qsort(d->ext, d->next, sizeof *d->ext, cmp_range);
    if (grow((void **)&d->fin, &d->capfin, d->nout + d->next, sizeof *d->fin)) {
        seterr(err, errlen, "out of memory");
        return CRYO_DIRTY_ERROR;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < d->nout || j < d->next) {
        if (i < d->nout && d->out[i].end == d->out[i].start) {
            i++;
            continue;
        }
        if (j >= d->next || (i < d->nout && cmp_range(&d->out[i], &d->ext[j]) <= 0))
            d->fin[k++] = d->out[i++];
        else
            d->fin[k++] = d->ext[j++];
    }
    d->nfin = k;
    *ranges = d->fin;
    *n = d->nfin;
    return CRYO_DIRTY_OK;
}

void cryo_dirty_close(cryo_dirty *d)
{
    if (!d)
        return;
    if (d->pagemap >= 0)
        close(d->pagemap);
    free(d->vec);
    free(d->out);
    free(d->ext);
    free(d->fin);
    free(d->untr);
    free(d->chk);
    free(d->maps);
    free(d);
}
