/* The wrapper the patched syscall sites of libc (and the vDSO's time functions) jump
 * to while a run is recorded (sysbuf.c). It is copied into the debuggee, so it is
 * position-independent: it reaches its data at a fixed distance (sysbuf.h).
 *
 On entry, as at the syscall instruction it replaces: eax = syscall number, arguments
 * in rdi rsi rdx r10 r8 r9; the stack 128 bytes lower (the red zone stepped over) with
 * the flags pushed; r11 = where to go on afterwards (the trampoline's second half, which
 * sets rcx to the address after libc's syscall instruction). rcx and r11 are free: a
 * syscall clobbers them. It leaves as the syscall would: rax = the raw result, r11 and
 * the flags = the flags before it, every other register unchanged. The stack below the
 * red zone receives the same words on both paths.
 *
 * Buffered path: the syscall runs from cryo_sb_syscall, the one instruction the seccomp
 * filter lets through, and the entry (number, arguments, result, bytes written) is
 * appended to the ring. Trapping path (the tracer asks for it, a buffered syscall is
 * already in flight, or the ring has no room): the syscall runs from cryo_sb_trap and
 * stops at the tracer as before. */
#include <asm/unistd_64.h>
#include "sysbuf.h"

	.section .rodata.cryo_sysbuf, "a"
	.p2align 12
	.globl cryo_sb_code, cryo_sb_check, cryo_sb_syscall, cryo_sb_done, cryo_sb_commit, cryo_sb_committed
	.globl cryo_sb_tail, cryo_sb_trap, cryo_sb_vdso, cryo_sb_code_end
	.hidden cryo_sb_code, cryo_sb_check, cryo_sb_syscall, cryo_sb_done, cryo_sb_commit, cryo_sb_committed
	.hidden cryo_sb_tail, cryo_sb_trap, cryo_sb_vdso, cryo_sb_code_end
cryo_sb_code:
.Lb:
	push %r11
	push %rdi
	push %rsi
cryo_sb_check:
	/* from here to the syscall, eax and the arguments stay as they came */
	cmpl $0, .Lb+SB_TRAP(%rip)
	jne cryo_sb_trap
	cmpl $0, .Lb+SB_BUSY(%rip)
	jne cryo_sb_trap
	/* rcx = the most this syscall can write into the program's memory */
	xor %ecx, %ecx
	cmp $__NR_read, %eax
	je 1f
	cmp $__NR_pread64, %eax
	je 1f
	cmp $__NR_getrandom, %eax
	je 2f
	cmp $__NR_clock_gettime, %eax
	je 3f
	cmp $__NR_time, %eax
	je 4f
	jmp 5f
1:	mov %rdx, %rcx
	jmp 5f
2:	mov %rsi, %rcx
	jmp 5f
3:	mov $16, %ecx
	jmp 5f
4:	mov $8, %ecx
5:	cmp $SB_RING_CAP, %rcx
	ja cryo_sb_trap
	add $(SBE_HDR + 7), %rcx
	and $-8, %rcx
	add .Lb+SB_USED(%rip), %rcx
	cmp $SB_RING_CAP, %rcx
	ja cryo_sb_trap
	/* the entry's number and arguments; it counts once the syscall is done and used moves */
	lea .Lb+SB_RING(%rip), %r11
	add .Lb+SB_USED(%rip), %r11
	mov %eax, SBE_NR(%r11)
	mov %rdi, SBE_ARGS(%r11)
	mov %rsi, SBE_ARGS+8(%r11)
	mov %rdx, SBE_ARGS+16(%r11)
	mov %r10, SBE_ARGS+24(%r11)
	mov %r8, SBE_ARGS+32(%r11)
	mov %r9, SBE_ARGS+40(%r11)
	movl $1, .Lb+SB_BUSY(%rip)
cryo_sb_syscall:
	syscall
cryo_sb_done:
	lea .Lb+SB_RING(%rip), %rdi
	add .Lb+SB_USED(%rip), %rdi
	mov %rax, SBE_RET(%rdi)
	/* what it wrote: rcx bytes at rsi, as record.c's record_outputs would log them */
	xor %ecx, %ecx
	xor %esi, %esi
	test %rax, %rax
	js 9f
	mov SBE_NR(%rdi), %r11d
	cmp $__NR_read, %r11d
	je 1f
	cmp $__NR_pread64, %r11d
	je 1f
	cmp $__NR_getrandom, %r11d
	je 2f
	cmp $__NR_clock_gettime, %r11d
	je 3f
	cmp $__NR_time, %r11d
	je 4f
	jmp 9f
1:	mov SBE_ARGS+8(%rdi), %rsi
	mov %rax, %rcx
	jmp 8f
2:	mov SBE_ARGS(%rdi), %rsi
	mov %rax, %rcx
	jmp 8f
3:	mov SBE_ARGS+8(%rdi), %rsi
	mov $16, %ecx
	jmp 8f
4:	mov SBE_ARGS(%rdi), %rsi
	mov $8, %ecx
8:	test %rsi, %rsi
	jnz 9f
	xor %ecx, %ecx
9:	mov %ecx, SBE_OUTLEN(%rdi)
	mov %rsi, SBE_OUTADDR(%rdi)
	lea (SBE_HDR + 7)(%rcx), %r11
	and $-8, %r11
	add .Lb+SB_USED(%rip), %r11
	add $SBE_HDR, %rdi
	/* a rep movsb of nothing still pays the string unit's start-up, on every write */
	jrcxz 7f
	rep movsb
7:
cryo_sb_commit:
	mov %r11, .Lb+SB_USED(%rip)
cryo_sb_committed:
	movl $0, .Lb+SB_BUSY(%rip)
cryo_sb_tail:
	pop %rsi
	pop %rdi
	pop %rcx
	mov (%rsp), %r11
	popfq
	lea 128(%rsp), %rsp
	jmp *%rcx
cryo_sb_trap:
	syscall
	jmp cryo_sb_tail

/* the vDSO's time functions become mov $nr,%eax; movabs $cryo_sb_vdso,%r11; jmp *%r11 */
cryo_sb_vdso:
	lea -128(%rsp), %rsp
	pushfq
	lea 1f(%rip), %r11
	jmp cryo_sb_code
1:	ret
cryo_sb_code_end:
	.section .note.GNU-stack, "", @progbits
