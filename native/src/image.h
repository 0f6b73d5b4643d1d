/* Images: a frozen process in one file. The format is specified in
 * docs/image-format.md; this header is the one implementation of it (writer, reader,
 * validation, dump, restore). Everything here is little-endian x86-64. */
#ifndef CRYO_IMAGE_H
#define CRYO_IMAGE_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IMG_MAGIC "CRYOIMG\0"
#define IMG_VERSION 1
#define IMG_HEADER_SIZE 64
#define IMG_TOC_ENTRY_SIZE 32
#define IMG_PAGE 4096ull
#define IMG_MAX_SECTIONS 64

enum img_section {
  SEC_PROCESS = 1, SEC_THREADS = 2, SEC_MAPPINGS = 3, SEC_FILES = 4, SEC_SIGNALS = 5, SEC_PAGES = 6, SEC_HISTORY = 7,
  SEC_LOG = 8
};
#define SEC_MAX 8

enum img_kind { K_U64 = 1, K_STR = 2, K_BYTES = 3, K_LIST = 4 };

/* PROCESS tags */
enum {
  PRC_PID = 1, PRC_PPID, PRC_COMM, PRC_EXE, PRC_EXE_BUILD_ID, PRC_CMDLINE, PRC_ENVIRON, PRC_CWD, PRC_AUXV, PRC_RLIMITS,
  PRC_PERSONALITY, PRC_MM, PRC_CREDS, PRC_KERNEL, PRC_MACHINE, PRC_XCR0, PRC_XSAVE_SIZE, PRC_REASON, PRC_SIGINFO,
  PRC_CRASH_TID, PRC_TIME_NS, PRC_SHARED_PENDING, PRC_HOSTNAME, PRC_PAGE_SIZE, PRC_GROUPS
};
/* THREADS: each item T_THREAD is a list of */
enum { T_THREAD = 1 };
enum { TH_TID = 1, TH_REGS, TH_XSAVE, TH_FS_BASE, TH_GS_BASE, TH_SIGMASK, TH_PENDING, TH_RSEQ, TH_CLEAR_TID, TH_ROBUST };
/* MAPPINGS: each item M_MAPPING is a list of */
enum { M_MAPPING = 1 };
enum {
  MP_START = 1, MP_END, MP_PROT, MP_FLAGS, MP_OFFSET, MP_PATH, MP_DEV, MP_INODE, MP_FILE_SIZE, MP_FILE_MTIME,
  MP_BUILD_ID, MP_KIND, MP_RUNS
};
/* FILES: each item F_FILE is a list of */
enum { F_FILE = 1 };
enum { FL_NUM = 1, FL_FLAGS, FL_TYPE, FL_PATH, FL_POS, FL_SIZE, FL_MTIME, FL_DEV, FL_INODE };
/* SIGNALS: each item S_ACTION is a list of */
enum { S_ACTION = 1 };
enum { SG_SIGNO = 1, SG_HANDLER, SG_FLAGS, SG_RESTORER, SG_MASK };

/* HISTORY (field bundles): each item H_CHECKPOINT is a list of */
enum { H_CHECKPOINT = 1 };
enum { HC_POSITION = 1, HC_TIME_NS, HC_PC, HC_OFFSET, HC_LENGTH };
#define IMG_MAX_HISTORY 1024
/* LOG: the record log (record.c) from the oldest checkpoint of the history on */
enum { LG_BASE = 1, LG_COUNT, LG_ENTRIES, LG_DATA };
/* one entry: u32 nr, u32 zero, i64 result, 6 x u64 arguments, u64 data offset, u64 data length */
#define IMG_LOG_ENTRY_SIZE 80

enum img_reason { REASON_SNAPSHOT = 1, REASON_CRASH = 2 };

/* mapping flags */
#define MF_SHARED 1u
#define MF_CONTENT 2u /* the file is not a source of content (deleted, memfd, shm): every page stored */

enum img_map_kind {
  MK_ANON = 1, MK_FILE = 2, MK_HEAP = 3, MK_STACK = 4, MK_VDSO = 5, MK_VVAR = 6, MK_VVAR_VCLOCK = 7, MK_VSYSCALL = 8,
  MK_OTHER_SPECIAL = 9
};
#define MK_MAX 9

enum img_page_kind { PK_DATA = 1, PK_ZERO = 2, PK_ABSENT = 3, PK_UNREADABLE = 4, PK_FILE = 5 };
#define PK_MAX 5

enum img_fd_type { FT_REG = 1, FT_DIR, FT_CHR, FT_BLK, FT_FIFO, FT_SOCK, FT_LINK, FT_OTHER };

#define MM_FIELDS 11 /* start_code end_code start_stack start_data end_data start_brk brk arg_start arg_end env_start env_end */
#define NRLIMITS 16

struct img_run {
  uint32_t kind, npages;
  uint64_t off; /* file offset of the first page (PK_DATA), else 0 */
};

struct img_thread {
  uint32_t tid;
  struct user_regs_struct regs;
  const uint8_t *xsave;
  uint32_t xsave_len;
  uint64_t fs_base, gs_base, sigmask, pending;
  bool has_rseq;
  uint64_t rseq_addr;
  uint32_t rseq_len, rseq_sig;
  bool has_clear_tid, has_robust;
  uint64_t clear_tid;           /* set_tid_address / CLONE_CHILD_CLEARTID */
  uint64_t robust_head, robust_len; /* set_robust_list */
};

struct img_mapping {
  uint64_t start, end, prot, flags, offset, dev, inode, file_size, mtime_ns, kind;
  char *path;
  uint8_t build_id[64];
  uint32_t build_id_len;
  struct img_run *runs;
  uint32_t nruns;
  uint64_t pages[PK_MAX + 1]; /* page count per kind */
};

struct img_file {
  int32_t fd;
  uint64_t flags, type, pos, size, mtime_ns, dev, inode;
  char *path;
};

struct img_sigaction {
  uint32_t signo;
  uint64_t handler, flags, restorer, mask;
};

/* A checkpoint of the history: an embedded image at [off, off+len) of the file. */
struct img_history {
  uint64_t position, time_ns, pc, off, len;
};

/* A record log (LOG section, or cryo_record_load's input), validated. */
struct img_log {
  uint64_t base, count;
  const uint8_t *entries; /* count * IMG_LOG_ENTRY_SIZE */
  const uint8_t *data;
  uint64_t data_len;
};
/* Validates a LOG section's bytes: every entry's data lies inside the data and is made
 * of whole (u64 address, u32 length, bytes) runs. CRYO_EINVAL with a message naming
 * `file` when not. */
int img_log_parse(const uint8_t *p, size_t len, struct img_log *out, const char *file);

struct cryo_image {
  int fd;
  const uint8_t *map;
  size_t size;
  uint32_t version;
  /* process */
  uint64_t pid, ppid, personality, xcr0, xsave_size, reason, crash_tid, time_ns, shared_pending, page_size;
  char *comm, *exe, *cwd, *kernel, *machine, *hostname;
  uint8_t exe_build_id[64];
  uint32_t exe_build_id_len;
  const uint8_t *cmdline, *environ_, *auxv;
  uint32_t cmdline_len, environ_len, auxv_len;
  uint64_t rlimits[NRLIMITS][2];
  bool has_rlimits;
  uint64_t mm[MM_FIELDS];
  bool has_mm;
  uint64_t creds[8];
  bool has_creds;
  const uint8_t *groups; /* u32 supplementary group ids */
  uint32_t groups_len;
  bool has_groups;
  uint8_t siginfo[128];
  bool has_siginfo;
  /* the rest */
  struct img_thread *threads;
  uint32_t nthreads;
  struct img_mapping *maps;
  uint32_t nmaps;
  struct img_file *files;
  uint32_t nfiles;
  struct img_sigaction *sigs;
  uint32_t nsigs;
  uint64_t data_off, data_len; /* the PAGES section */
  /* field bundles: checkpoints embedded in the file, and the record log from the first */
  struct img_history *history;
  uint32_t nhistory;
  bool has_log;
  struct img_log log;
  const uint8_t *log_raw; /* the LOG section as it is in the file */
  uint64_t log_raw_len;
  char *name;             /* the file (and checkpoint) for messages */
  uint64_t file_base;     /* where this image starts in the file of fd (an embedded checkpoint: > 0) */
  /* opened with IMG_OPEN_DEFER_PAGES: the PAGES checksum is still to be verified */
  bool pages_unverified;
  uint32_t pages_crc;
  char *path;
};

/* ---- checksum (image_format.c) ---- */
uint32_t img_crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- phase timing (image_format.c): with CRYO_TIMING=1 in the environment, each call
 * prints to stderr the milliseconds since the previous one and what ended then ---- */
static inline bool cpu_has_xsave(void) {
  uint32_t a, b, c, d;
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
  return (c >> 27) & 1; /* OSXSAVE */
}

/* XCR0: the XSAVE components this CPU's kernel has enabled (the layout of TH_XSAVE). */
static inline uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

void img_timing(const char *what);

/* ---- growable buffer and TLV writer (image_format.c) ---- */
struct img_buf {
  uint8_t *p;
  size_t len, cap;
  bool oom;
};
void img_buf_put(struct img_buf *b, const void *p, size_t n);
void img_buf_free(struct img_buf *b);
void img_tlv_u64(struct img_buf *b, uint16_t tag, uint64_t v);
void img_tlv_bytes(struct img_buf *b, uint16_t tag, const void *p, size_t n);
void img_tlv_str(struct img_buf *b, uint16_t tag, const char *s);
size_t img_tlv_begin(struct img_buf *b, uint16_t tag);
void img_tlv_end(struct img_buf *b, size_t at);

/* ---- reading (image_format.c): cryo_image_open, _close, _read_memory in cryo.h;
 * a damaged image is CRYO_EINVAL, an I/O failure CRYO_EFAIL ---- */

/* cryo_image_open, with flags. IMG_OPEN_DEFER_PAGES: everything is validated but the
 * PAGES section's checksum, left to img_verify_pages (a restore verifies it on a second
 * thread while it builds the process, and lets nothing run before it matched). */
#define IMG_OPEN_DEFER_PAGES 1u
int img_open(const char *path, unsigned flags, struct cryo_image **out);
/* Whether the PAGES checksum of an image opened with IMG_OPEN_DEFER_PAGES matches (true
 * when it was verified at open). Reads only; safe beside other readers of the image. */
bool img_pages_ok(struct cryo_image *img);

/* ---- ELF build-id (image_format.c) ---- */
int img_build_id_fd(int fd, uint8_t *out, uint32_t cap, uint32_t *len);
int img_build_id_path(const char *path, uint8_t *out, uint32_t cap, uint32_t *len);

/* ---- dump (image_dump.c) ---- */
/* A checkpoint to embed: a complete image readable at fd (len bytes), taken at record
 * position `position` (absolute, in the session's log). */
struct img_history_src {
  int fd;
  uint64_t len;
  uint64_t position, time_ns, pc;
};
struct img_dump_opts {
  uint32_t reason;        /* REASON_SNAPSHOT or REASON_CRASH */
  int32_t crash_tid;      /* crash: the thread that got the signal */
  const uint8_t *siginfo; /* crash: its siginfo (128 bytes) */
  uint64_t time_ns;       /* when the state was taken (a checkpoint's time); 0: now */
  /* field bundles: embedded checkpoints (oldest first) and the session's record log
   * from log_from on (positions in the image are relative to it) */
  const struct img_history_src *history;
  uint32_t nhistory;
  bool with_log;
  uint64_t log_from;
};
struct img_dump_stats {
  uint64_t frozen_ns;   /* from the call until every byte of memory was read */
  uint64_t total_ns;    /* until the file was durable and renamed */
  uint64_t file_size;
  uint64_t pages[PK_MAX + 1];
};
/* What to dump when it is not the session's debuggee (engine-internal, on the tracer
 * thread): a stopped traced process such as a checkpoint's frozen copy. */
struct img_target {
  pid_t pid;                  /* the process to read */
  const pid_t *tids;          /* its threads, stopped and traced by this session */
  int ntids;
  pid_t record_pid;           /* the pid to record (the program's own; 0: pid) */
  const struct saved_fd *fds; /* descriptor offsets to record instead of the live ones */
  int nfds;
};
int image_dump_target(struct cryo_session *s, const struct img_target *t, const char *path,
                      const struct img_dump_opts *o, struct img_dump_stats *st);

struct img_pending;
/* Writes the image of the session's stopped process into a temporary file next to
 * path (mode 0600); nothing appears under path yet. */
CRYO_API int cryo_image_dump_begin(cryo_session *s, const char *path, const struct img_dump_opts *o,
                                   struct img_dump_stats *st, struct img_pending **out);
/* fsync, rename over path (a previous file stays intact until then), fsync the directory. */
CRYO_API int cryo_image_commit(struct img_pending *pd);
CRYO_API void cryo_image_abort(struct img_pending *pd);
/* The temporary file behind a pending output (what: "image", "core", for messages);
 * written through img_pending_fd, then cryo_image_commit or cryo_image_abort. */
int img_pending_create(const char *path, const char *what, struct img_pending **out);
int img_pending_fd(const struct img_pending *pd);
/* begin + commit. */
CRYO_API int cryo_image_dump(cryo_session *s, const char *path, const struct img_dump_opts *o,
                             struct img_dump_stats *st);

/* The session's record log from position `from` on, as a LOG section (record.c; on the
 * tracer thread). */
int record_encode_log(struct cryo_session *s, uint64_t from, struct img_buf *b);

/* ---- inspect (image_inspect.c) ---- */
void image_print_text(struct cryo_image *img, FILE *out);
void image_print_json(struct cryo_image *img, FILE *out);
/* The --json description as a malloc'd string (free with cryo_image_free_string). */
/* 27 x u64, struct user_regs_struct order (as cryo_get_regs). */
/* The thread's xsave area (as cryo_get_xstate). */
const char *img_page_kind_name(uint32_t k);
const char *img_map_kind_name(uint64_t k);
const char *img_fd_type_name(uint64_t t);

/* ---- restore (image_restore.c) ---- */
struct img_restore_report {
  char notes[4096]; /* what was reconnected or changed (descriptors), one per line */
};
/* Validates the image against this machine (files, build-ids, kernel, vDSO, CPU);
 * every problem in one message. */
/* Builds a new process from the image, traced by the session, stopped at the
 * image's registers. *pid receives its pid. */
CRYO_API int cryo_image_restore(cryo_session *s, struct cryo_image *img, int32_t *pid, struct img_restore_report *rep);

/* ---- export to an ELF core (image_core.c) ---- */
struct img_core_stats {
  uint64_t file_size;       /* apparent size of the core (zero pages are holes) */
  uint64_t threads;         /* NT_PRSTATUS notes */
  uint64_t notes_bytes;
  uint64_t segments;        /* PT_LOAD, one per mapping */
  uint64_t stored_segments; /* those with their pages in the core (p_filesz > 0) */
  uint64_t content_pages;   /* pages written */
  uint64_t zero_pages;      /* pages that read as zeros (holes in the file) */
  uint64_t missing_pages;   /* pages the image has no content for, written as zeros */
  uint64_t changed_files;   /* mappings whose file (clean pages read from it) changed since the dump */
};
/* Writes the image as an ELF core (ET_CORE, x86-64, the notes and segments the kernel
 * writes) at path: mode 0600, through a temporary file beside it, fsynced and renamed;
 * on failure nothing is left under either name. st may be NULL. */
int image_export_core(struct cryo_image *img, const char *path, struct img_core_stats *st);
CRYO_API int cryo_image_export_core(struct cryo_image *img, const char *path);

#endif
