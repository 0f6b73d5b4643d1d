// The C ABI of libcryo as koffi declarations. Nothing outside adapter/engine imports this.
import koffi, { type LibraryHandle, type TypeObject } from 'koffi';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ABI_VERSION = 10;
/** CRYO_STEP_MAX_STOPS: the most control transfers cryo_step_range_stops takes. */
export const MAX_STEP_STOPS = 64;
/** CRYO_STOP_INNER: or'ed into a stop that is a direct jump within the range. */
export const STOP_INNER = 1n << 63n;
/** CRYO_STOP_CALL(len): or'ed into a stop that is a call of that length. */
export const stopCall = (len: number): bigint => (1n << 62n) | (BigInt(len & 15) << 56n);
/** CRYO_STOP_FLAT: or'ed into a call no instruction before it in the range moves rsp for. */
export const STOP_FLAT = 1n << 60n;

export const Status = {
  OK: 0,
  EFAIL: -1,
  EINVAL: -2,
  ENOPROC: -3,
  ERUNNING: -4,
  ENOTHREAD: -5,
  ETIMEDOUT: -6,
  ECLOSED: -7,
  EUNSUPPORTED: -8,
  ENOENT: -9,
  EPERM: -10,
} as const;

export const StatusName: Record<number, string> = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k]));

export const EventKind = { STOPPED: 1, EXITED: 2, SIGNALED: 3, THREAD_NEW: 4, THREAD_EXIT: 5 } as const;
export const StopReason = { BREAKPOINT: 1, STEP: 2, WATCHPOINT: 3, SIGNAL: 4, INTERRUPT: 5, EXEC: 6, DIVERGED: 7, SYSCALL: 8 } as const;
export const StdioMode = { INHERIT: 0, NULL: 1, FILE: 2, PIPE: 3, FD: 4 } as const;
export const LaunchFlags = { NO_ASLR: 1 } as const;
export const ResumeFlags = { DISCARD_SIGNAL: 1, KEEP_STEP: 2 } as const;
export const StepFlags = { OVER_CALLS: 1 } as const;
export const NREGS = 27;
export const XSTATE_MAX = 16384;
/** where xmm0-15 sit in the xsave area (its legacy fxsave part) */
export const XMM_OFFSET = 160;

/** Where libcryo.so is: beside the sources in a checkout, beside the bundle in a package. */
export function findLibrary(): string {
  const env = process.env.CRYO_LIBCRYO;
  const candidates = [
    env,
    join(__dirname, '..', '..', 'native', 'build', 'libcryo.so'), // adapter/engine/*.ts
    join(__dirname, '..', 'native', 'build', 'libcryo.so'), // dist/*.js
    resolve(process.cwd(), 'native', 'build', 'libcryo.so'),
  ].filter((c): c is string => !!c);
  for (const c of candidates) if (existsSync(c)) return c;
  throw new Error(`libcryo.so not found (looked in ${candidates.join(', ')}); run \`npm run build\``);
}

const LaunchOpts = koffi.struct('cryo_launch_opts', {
  path: 'const char *',
  argv: 'const uint8_t *',
  argc: 'int32_t',
  envc: 'int32_t',
  envp: 'const uint8_t *',
  cwd: 'const char *',
  stdio_mode: koffi.array('int32_t', 3),
  stdio_fd: koffi.array('int32_t', 3),
  stdio_path: koffi.array('const char *', 3),
  flags: 'uint32_t',
});

export const Event = koffi.struct('cryo_event', {
  kind: 'int32_t',
  pid: 'int32_t',
  tid: 'int32_t',
  reason: 'int32_t',
  signo: 'int32_t',
  code: 'int32_t',
  slot: 'int32_t',
  in_step: 'int32_t',
  addr: 'uint64_t',
  siginfo: koffi.array('uint8_t', 128, 'Typed'),
  regs: koffi.array('uint64_t', 27, 'Typed'),
  has_regs: 'int32_t',
  has_pos: 'int32_t',
  record_pos: 'uint64_t',
  seq: 'uint64_t',
  xmm: koffi.array('uint64_t', 32, 'Typed'),
  has_xmm: 'int32_t',
  pad2: 'int32_t',
});

/** sizeof(cryo_checkpoint_info): int32 id, pid; uint64 pc, created_ns, create_ns; int32 kind, parent; uint64 bytes */
export const CHECKPOINT_INFO_SIZE = 48;
export const CheckpointKind = { FULL: 1, DELTA: 2 } as const;
/** sizeof(cryo_history_entry): uint64 position, time_ns, pc, offset, length */
export const HISTORY_ENTRY_SIZE = 40;

export interface RawEvent {
  kind: number;
  pid: number;
  tid: number;
  reason: number;
  signo: number;
  code: number;
  slot: number;
  /** STOPPED: 1 while tid still steps over a call (continue with KEEP_STEP goes on) */
  in_step: number;
  addr: bigint | number;
  siginfo: Uint8Array;
  /** STOPPED: tid's registers at the stop, when has_regs is 1 */
  regs: BigUint64Array;
  has_regs: number;
  /** STOPPED while recorded: the record position at the stop, when has_pos is 1 */
  has_pos: number;
  record_pos: bigint | number;
  /** the event's number in the session, from 1 */
  seq: bigint | number;
  /** STOPPED: xmm0-15 of tid (low, high quadword each), when has_xmm is 1 */
  xmm: BigUint64Array;
  has_xmm: number;
}

export interface RawLaunchOpts {
  path: string;
  argv: Buffer;
  argc: number;
  envc: number;
  envp: Buffer | null;
  cwd: string | null;
  stdio_mode: number[];
  stdio_fd: number[];
  stdio_path: (string | null)[];
  flags: number;
}

type Fn = ReturnType<LibraryHandle['func']>;
type Spec = string | TypeObject | ReturnType<typeof koffi.out>;

export interface Lib {
  path: string;
  cryo_abi_version: Fn;
  cryo_version: Fn;
  cryo_last_error: Fn;
  cryo_session_new: Fn;
  cryo_session_close: Fn;
  cryo_session_free: Fn;
  cryo_launch: Fn;
  cryo_attach: Fn;
  cryo_detach: Fn;
  cryo_kill: Fn;
  cryo_pid: Fn;
  cryo_threads: Fn;
  cryo_wait_event: Fn;
  cryo_poll_event: Fn;
  cryo_continue: Fn;
  cryo_step: Fn;
  cryo_step_range: Fn;
  cryo_step_range_stops: Fn;
  cryo_interrupt: Fn;
  cryo_set_signal: Fn;
  cryo_get_regs: Fn;
  cryo_set_regs: Fn;
  cryo_get_xstate: Fn;
  cryo_set_xstate: Fn;
  cryo_get_debugreg: Fn;
  cryo_read_memory: Fn;
  cryo_write_memory: Fn;
  cryo_breakpoint_insert: Fn;
  cryo_breakpoint_remove: Fn;
  cryo_watchpoint_set: Fn;
  cryo_watchpoint_clear: Fn;
  cryo_inject_syscall: Fn;
  cryo_checkpoint_create: Fn;
  cryo_checkpoint_restore: Fn;
  cryo_checkpoint_delete: Fn;
  cryo_checkpoint_list: Fn;
  cryo_checkpoint_mode: Fn;
  cryo_record_start: Fn;
  cryo_record_position: Fn;
  cryo_replay_from: Fn;
  cryo_record_truncate: Fn;
  cryo_record_stats: Fn;
  cryo_record_stop_at: Fn;
  cryo_record_load: Fn;
  cryo_image_open: Fn;
  cryo_image_close: Fn;
  cryo_image_read_memory: Fn;
  cryo_image_json: Fn;
  cryo_image_text: Fn;
  cryo_image_free_string: Fn;
  cryo_image_thread_regs: Fn;
  cryo_image_thread_xstate: Fn;
  cryo_image_check: Fn;
  cryo_image_revive: Fn;
  cryo_image_save: Fn;
  cryo_image_history: Fn;
  cryo_image_open_checkpoint: Fn;
  cryo_image_log: Fn;
}

const ReviveOpts = koffi.struct('cryo_revive_opts', {
  stdio_mode: koffi.array('int32_t', 3),
  stdio_fd: koffi.array('int32_t', 3),
  notes: koffi.array('char', 4096, 'String'),
});

export interface RawReviveOpts {
  stdio_mode: number[];
  stdio_fd: number[];
  notes: string;
}

let lib: Lib | undefined;
// koffi type names are global: define them once, even if a load fails and is retried.
const SessionPtr = koffi.pointer(koffi.opaque('cryo_session'));
const ImagePtr = koffi.pointer(koffi.opaque('cryo_image'));

export function load(): Lib {
  if (lib) return lib;
  const path = findLibrary();
  const l = koffi.load(path);
  const S = SessionPtr;
  const f = (ret: Spec, name: string, args: Spec[]): Fn => l.func(name, ret, args);
  const loaded: Lib = {
    path,
    cryo_abi_version: f('int', 'cryo_abi_version', []),
    cryo_version: f('const char *', 'cryo_version', []),
    cryo_last_error: f('const char *', 'cryo_last_error', []),
    cryo_session_new: f(S, 'cryo_session_new', []),
    cryo_session_close: f('int', 'cryo_session_close', [S]),
    cryo_session_free: f('void', 'cryo_session_free', [S]),
    cryo_launch: f('int', 'cryo_launch', [S, koffi.inout(koffi.pointer(LaunchOpts)), koffi.out(koffi.pointer('int32_t'))]),
    cryo_attach: f('int', 'cryo_attach', [S, 'int32_t']),
    cryo_detach: f('int', 'cryo_detach', [S]),
    cryo_kill: f('int', 'cryo_kill', [S]),
    cryo_pid: f('int32_t', 'cryo_pid', [S]),
    cryo_threads: f('int', 'cryo_threads', [S, 'int32_t *', 'int32_t', koffi.out(koffi.pointer('int32_t'))]),
    cryo_wait_event: f('int', 'cryo_wait_event', [S, koffi.out(koffi.pointer(Event)), 'int32_t']),
    cryo_poll_event: f('int', 'cryo_poll_event', [S, koffi.out(koffi.pointer(Event)), 'uint64_t', 'int32_t']),
    cryo_continue: f('int', 'cryo_continue', [S, 'uint32_t']),
    cryo_step: f('int', 'cryo_step', [S, 'int32_t', 'uint32_t']),
    cryo_step_range: f('int', 'cryo_step_range', [S, 'int32_t', 'uint64_t', 'uint64_t', 'uint32_t']),
    cryo_step_range_stops: f('int', 'cryo_step_range_stops', [S, 'int32_t', 'uint64_t', 'uint64_t', 'uint32_t', 'const uint64_t *', 'uint32_t']),
    cryo_interrupt: f('int', 'cryo_interrupt', [S]),
    cryo_set_signal: f('int', 'cryo_set_signal', [S, 'int32_t', 'int32_t']),
    cryo_get_regs: f('int', 'cryo_get_regs', [S, 'int32_t', 'uint64_t *']),
    cryo_set_regs: f('int', 'cryo_set_regs', [S, 'int32_t', 'const uint64_t *']),
    cryo_get_xstate: f('int', 'cryo_get_xstate', [S, 'int32_t', 'uint8_t *', 'size_t', koffi.out(koffi.pointer('size_t'))]),
    cryo_set_xstate: f('int', 'cryo_set_xstate', [S, 'int32_t', 'const uint8_t *', 'size_t']),
    cryo_get_debugreg: f('int', 'cryo_get_debugreg', [S, 'int32_t', 'int32_t', koffi.out(koffi.pointer('uint64_t'))]),
    cryo_read_memory: f('int', 'cryo_read_memory', [S, 'uint64_t', 'uint8_t *', 'size_t', koffi.out(koffi.pointer('size_t'))]),
    cryo_write_memory: f('int', 'cryo_write_memory', [S, 'uint64_t', 'const uint8_t *', 'size_t']),
    cryo_breakpoint_insert: f('int', 'cryo_breakpoint_insert', [S, 'uint64_t']),
    cryo_breakpoint_remove: f('int', 'cryo_breakpoint_remove', [S, 'uint64_t']),
    cryo_watchpoint_set: f('int', 'cryo_watchpoint_set', [S, 'uint64_t', 'int32_t', 'int32_t', koffi.out(koffi.pointer('int32_t'))]),
    cryo_watchpoint_clear: f('int', 'cryo_watchpoint_clear', [S, 'int32_t']),
    cryo_inject_syscall: f('int', 'cryo_inject_syscall', [S, 'int32_t', 'int64_t', 'const uint64_t *', koffi.out(koffi.pointer('int64_t'))]),
    cryo_checkpoint_create: f('int', 'cryo_checkpoint_create', [S, koffi.out(koffi.pointer('int32_t'))]),
    cryo_checkpoint_restore: f('int', 'cryo_checkpoint_restore', [S, 'int32_t', koffi.out(koffi.pointer('int32_t'))]),
    cryo_checkpoint_delete: f('int', 'cryo_checkpoint_delete', [S, 'int32_t']),
    cryo_checkpoint_list: f('int', 'cryo_checkpoint_list', [S, 'uint8_t *', 'int32_t', koffi.out(koffi.pointer('int32_t'))]),
    cryo_checkpoint_mode: f('int', 'cryo_checkpoint_mode', [S, 'uint8_t *', 'size_t', koffi.out(koffi.pointer('int32_t'))]),
    cryo_record_start: f('int', 'cryo_record_start', [S]),
    cryo_record_position: f('int', 'cryo_record_position', [S, koffi.out(koffi.pointer('uint64_t'))]),
    cryo_replay_from: f('int', 'cryo_replay_from', [S, 'uint64_t']),
    cryo_record_truncate: f('int', 'cryo_record_truncate', [S, 'uint64_t']),
    cryo_record_stats: f('int', 'cryo_record_stats', [S, 'uint8_t *']),
    cryo_record_stop_at: f('int', 'cryo_record_stop_at', [S, 'uint64_t']),
    cryo_record_load: f('int', 'cryo_record_load', [S, 'const uint8_t *', 'size_t']),
    cryo_image_open: f('int', 'cryo_image_open', ['const char *', koffi.out(koffi.pointer(ImagePtr))]),
    cryo_image_close: f('void', 'cryo_image_close', [ImagePtr]),
    cryo_image_read_memory: f('int', 'cryo_image_read_memory', [ImagePtr, 'uint64_t', 'uint8_t *', 'size_t', koffi.out(koffi.pointer('size_t'))]),
    // the strings are malloc'd by the engine: taken as raw pointers, decoded, then freed
    cryo_image_json: f('int', 'cryo_image_json', [ImagePtr, koffi.out(koffi.pointer('void *'))]),
    cryo_image_text: f('int', 'cryo_image_text', [ImagePtr, koffi.out(koffi.pointer('void *'))]),
    cryo_image_free_string: f('void', 'cryo_image_free_string', ['void *']),
    cryo_image_thread_regs: f('int', 'cryo_image_thread_regs', [ImagePtr, 'int32_t', 'uint64_t *']),
    cryo_image_thread_xstate: f('int', 'cryo_image_thread_xstate', [ImagePtr, 'int32_t', 'uint8_t *', 'size_t', koffi.out(koffi.pointer('size_t'))]),
    cryo_image_check: f('int', 'cryo_image_check', [ImagePtr]),
    cryo_image_revive: f('int', 'cryo_image_revive', [S, ImagePtr, koffi.inout(koffi.pointer(ReviveOpts)), koffi.out(koffi.pointer('int32_t'))]),
    cryo_image_save: f('int', 'cryo_image_save', [S, 'int32_t', 'const char *']),
    cryo_image_history: f('int', 'cryo_image_history', [ImagePtr, 'uint8_t *', 'int32_t', koffi.out(koffi.pointer('int32_t'))]),
    cryo_image_open_checkpoint: f('int', 'cryo_image_open_checkpoint', [ImagePtr, 'int32_t', koffi.out(koffi.pointer(ImagePtr))]),
    cryo_image_log: f('int', 'cryo_image_log', [ImagePtr, 'uint8_t *', 'size_t', koffi.out(koffi.pointer('size_t'))]),
  };
  const v = loaded.cryo_abi_version() as number;
  if (v !== ABI_VERSION) throw new Error(`${path} has engine ABI ${v}, this adapter speaks ${ABI_VERSION}: rebuild with \`npm run build\``);
  lib = loaded;
  return lib;
}
