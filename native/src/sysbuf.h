/* The layout of the in-process syscall buffer (sysbuf.c, sysbuf_code.S), shared by the C
 * side and the code copied into the debuggee: plain #defines so that both can read it.
 *
 * One region in the debuggee: a code page (the common wrapper, then one trampoline per
 * patched libc site), then the data: a header and a ring of entries. */
#ifndef CRYO_SYSBUF_H
#define CRYO_SYSBUF_H

#define SB_CODE_SIZE 4096
#define SB_DATA SB_CODE_SIZE         /* the header, from the region's start */
#define SB_TRAP (SB_DATA + 0)        /* u32, the tracer's: nonzero = take the trapping path */
#define SB_BUSY (SB_DATA + 4)        /* u32, the wrapper's: a buffered syscall is in flight */
#define SB_USED (SB_DATA + 8)        /* u64: bytes of committed entries in the ring */
#define SB_RING (SB_DATA + 64)
#define SB_DATA_SIZE (1 << 20)
#define SB_RING_CAP (SB_DATA_SIZE - 64)
#define SB_SIZE (SB_CODE_SIZE + SB_DATA_SIZE)

/* an entry: its header, then outlen bytes (what the syscall wrote at outaddr), the
 * whole rounded up to 8 */
#define SBE_NR 0       /* u32 */
#define SBE_OUTLEN 4   /* u32 */
#define SBE_RET 8      /* i64 */
#define SBE_ARGS 16    /* u64[6] */
#define SBE_OUTADDR 64 /* u64 */
#define SBE_HDR 72

#endif
