/* dirty.h: which pages of a stopped tracee were written since the last checkpoint.
 *
 * Uses a userfaultfd whose context is the TRACEE's mm (the engine creates it inside
 * the tracee and copies it out with pidfd_getfd), registered in async write-protect
 * mode (UFFD_FEATURE_WP_ASYNC), and the PAGEMAP_SCAN ioctl on /proc/PID/pagemap,
 * which lists the pages written since they were last protected and protects them
 * again in the same call. Nothing runs inside the tracee. See docs/dirty-tracking.md.
 *
 * Every call must be made while ALL threads of the tracee are stopped, and the
 * caller must copy what collect reports before it lets the tracee run again.
 */
#ifndef CRYO_DIRTY_H
#define CRYO_DIRTY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Return codes. */
#define CRYO_DIRTY_OK            0
#define CRYO_DIRTY_ERROR       (-1) /* err names the syscall and errno */
#define CRYO_DIRTY_UNSUPPORTED (-2) /* kernel lacks UFFD_FEATURE_WP_ASYNC / WP_UNPOPULATED
                                       or PAGEMAP_SCAN (< 6.7): copy everything instead */

/* cryo_dirty_range.flags */
#define CRYO_DIRTY_WRITTEN   0x1u /* page-aligned run of pages written since the last
                                     collect/arm (or populated in a mapping that was
                                     just registered, see NEW) */
#define CRYO_DIRTY_UNTRACKED 0x2u /* a whole mapping whose writes are NOT tracked: the
                                     caller must copy all of it at every checkpoint */
#define CRYO_DIRTY_NEW       0x4u /* with UNTRACKED: a private mapping that appeared (mmap,
                                     brk growth, mremap, MAP_FIXED over a tracked one)
                                     since the last call. Its contents are unknown to the
                                     caller, so copy it all now; it has been registered and
                                     is tracked from now on (no longer reported) */
#define CRYO_DIRTY_SHARED    0x8u /* with UNTRACKED: a writable MAP_SHARED mapping (never
                                     tracked on purpose: other processes see it too) */
#define CRYO_DIRTY_UNPOPULATED 0x20u /* with WRITTEN: reported, but no page is mapped
                                     there now (empty page-table entries of a table
                                     the kernel created since the last call, or pages
                                     dropped by MADV_DONTNEED): reads as zeros in
                                     anonymous memory, as the file in a private file
                                     mapping. Copying it is still correct. */
#define CRYO_DIRTY_FAILED   0x10u /* with UNTRACKED: a writable private mapping that the
                                     kernel refused to register (err = errno) */

typedef struct cryo_dirty_range {
    uint64_t start;  /* page aligned */
    uint64_t end;    /* exclusive, page aligned */
    uint32_t flags;  /* CRYO_DIRTY_* */
    int32_t  err;    /* errno for CRYO_DIRTY_FAILED, else 0 */
} cryo_dirty_range;

typedef struct cryo_dirty cryo_dirty;

/* UFFDIO_API handshake on uffd (features WP_ASYNC|WP_UNPOPULATED, plus
 * WP_HUGETLBFS_SHMEM when the kernel has it), opens /proc/PID/pagemap and probes
 * PAGEMAP_SCAN. uffd must be a fresh userfaultfd (no UFFDIO_API done yet) whose mm is
 * the tracee's; it stays owned by the caller, who must keep it open until
 * cryo_dirty_close() (closing it ends tracking). Returns CRYO_DIRTY_OK,
 * CRYO_DIRTY_UNSUPPORTED (fall back to full copies), or CRYO_DIRTY_ERROR. */
int cryo_dirty_open(pid_t pid, int uffd, cryo_dirty **out, char *err, size_t errlen);

/* Baseline: registers every private mapping of /proc/PID/maps (any protection, so that
 * later mprotect(PROT_WRITE) stays tracked; [vsyscall] excepted) with
 * UFFDIO_REGISTER_MODE_WP and write-protects all of it. After it, nothing counts as
 * written. Call it at the stop where the caller took a full copy (the fork
 * checkpoint). Can be called again at any stop to re-baseline. */
int cryo_dirty_arm(cryo_dirty *d, char *err, size_t errlen);

/* Writable mappings that arm (or the last collect) could not track (SHARED/FAILED);
 * the array stays valid until the next call on d. */
const cryo_dirty_range *cryo_dirty_untracked(cryo_dirty *d, size_t *n);

/* Everything the caller must copy for an incremental checkpoint at this stop:
 *  - WRITTEN ranges: every page written since the last collect/arm, found with
 *    PAGEMAP_SCAN, which write-protects them again in the same ioctl;
 *  - UNTRACKED|NEW ranges: new mappings (registered now, tracked from now on);
 *  - UNTRACKED|SHARED and UNTRACKED|FAILED ranges: at every collect.
 * *ranges points into a buffer owned by d, valid until the next call on d; sorted by
 * start; a NEW range may overlap WRITTEN ones. */
int cryo_dirty_collect(cryo_dirty *d, cryo_dirty_range **ranges, size_t *n,
                       char *err, size_t errlen);

/* Frees d and closes the pagemap fd; does not close uffd (the caller's). */
void cryo_dirty_close(cryo_dirty *d);

#endif
