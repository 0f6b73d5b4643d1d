// End-to-end tests in a real VS Code: code-server 4.100.3 (VS Code 1.100.3) driven through
// its own UI by playwright-core and Debian's chromium, with Cryo installed from its VSIX.
//
//   node test/editor/run.mjs [--no-build] [--only NAME] [--skip NAME,...]
//
// What it does:
//   1. packages the VSIX (scripts/package.mjs), plus a test-only tracer extension
//      (test/editor/tracer) that logs the DAP traffic of each session;
//   2. in a fresh temporary folder (HOME, XDG_*, TMPDIR all there) compiles
//      test/fixtures/counter.c with gcc -O0 -g into a workspace with a .vscode/launch.json
//      of type cryo (and crash.c, with the image `cryo run --on-crash` writes of its crash),
//      installs both VSIXs with `code-server --install-extension`, starts code-server on
//      127.0.0.1 in its own session (setsid), opens the workspace in headless chromium;
//   3. runs the scenarios (launch, attach, snapshot, stepback, crashimage, imagetext)
//      through the editor's UI (gutter clicks, F5, the debug toolbar's buttons, the Call
//      Stack, Variables, Debug Console and Checkpoints views, the command palette, the
//      Explorer, the .cryo custom editor, Go to Symbol, hovers) and checks what the editor
//      shows against gdb -batch at the same stop (or on the image's exported core), the
//      image's `cryo inspect --json` and the program's own output;
//   4. ends code-server's process group, the browser and the debuggees, and fails if any
//      process started by the run is still alive.
// Screenshots of every step and failure, the DAP log and code-server's logs go to
// test/.artifacts/editor/. The last line is `N passed, N failed`; exit status 1 on any
// failure. Needs scripts/editor-setup.sh (run here when the tools are missing).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, cpSync, openSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { crashImage } from '../helpers/crashimage.cjs';

const root = resolve(new URL('../..', import.meta.url).pathname);
const argv = process.argv.slice(2);
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
// --skip NAME[,NAME]: leave out scenarios (launch, attach, snapshot, stepback, crashimage, imagetext) or the disassembly part of launch
const skip = new Set((argv.includes('--skip') ? argv[argv.indexOf('--skip') + 1] : process.env.CRYO_E2E_SKIP ?? '').split(',').filter(Boolean));
/** Whether this run runs the scenario `name` (--only, --skip). */
const selected = (name) => !skip.has(name) && (!only || only === name || (only === 'disassembly' && name === 'launch'));
const tools = join(root, '.editor-test', 'tools');
const cryoBin = join(root, 'native', 'build', 'cryo');
const artifacts = join(root, 'test', '.artifacts', 'editor');
const TOTAL_TIMEOUT_MS = Number(process.env.CRYO_E2E_TIMEOUT_MS ?? 360_000);
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const log = (...a) => console.log(`[${elapsed()}]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- results
const results = [];
function check(name, ok, detail = '') {
  results.push({ name, ok: !!ok, detail });
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}${detail ? `: ${detail}` : ''}`);
  return !!ok;
}

// ---------------------------------------------------------------- setup
if (!existsSync(join(tools, 'node_modules', 'code-server')) || !existsSync(join(tools, 'node_modules', 'playwright-core'))) {
  log('tools missing: running scripts/editor-setup.sh');
  execFileSync('bash', [join(root, 'scripts', 'editor-setup.sh')], { stdio: 'inherit' });
}
const require = createRequire(join(tools, 'package.json'));
const { chromium } = require('playwright-core');
const codeServer = join(tools, 'node_modules', 'code-server', 'out', 'node', 'entry.js');

rmSync(artifacts, { recursive: true, force: true });
mkdirSync(artifacts, { recursive: true });
const tmp = mkdtempSync(join(tmpdir(), 'cryo-e2e-'));
const marker = `CRYO_E2E_RUN=${tmp}`; // in the environment of every process this run starts
const dirs = {
  home: join(tmp, 'home'),
  tmp: join(tmp, 'tmp'),
  data: join(tmp, 'data'),
  ext: join(tmp, 'extensions'),
  ws: join(tmp, 'workspace'),
};
for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
const dapLog = join(tmp, 'dap.jsonl');
const childEnv = {
  PATH: process.env.PATH,
  LANG: 'C.UTF-8',
  HOME: dirs.home,
  XDG_CONFIG_HOME: join(dirs.home, '.config'),
  XDG_DATA_HOME: join(dirs.home, '.local', 'share'),
  XDG_CACHE_HOME: join(dirs.home, '.cache'),
  XDG_RUNTIME_DIR: join(dirs.home, '.run'),
  TMPDIR: dirs.tmp,
  CRYO_E2E_RUN: tmp,
  CRYO_E2E_DAP_LOG: dapLog,
};
process.env.TMPDIR = dirs.tmp; // playwright's own temporary browser profile goes there too

let server; // code-server's ChildProcess (leader of its own session)
let browser;
const extraChildren = [];
let cleaned = false;
let stopping = false; // set once the run is being ended: start nothing more

async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  stopping = true;
  try {
    await browser?.close();
  } catch {}
  if (server?.pid) {
    for (const sig of ['SIGTERM', 'SIGKILL']) {
      try {
        process.kill(-server.pid, sig);
      } catch {}
      if (sig === 'SIGTERM') await sleep(1500);
    }
  }
  for (const c of extraChildren) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
  await sleep(300);
  // Anything started by this run carries the marker in its environment.
  const left = ourProcesses();
  check('no process left behind (code-server, chromium, adapter, debuggees)', left.length === 0, left.map((p) => `${p.pid} ${p.cmd}`).join('; '));
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {}
  }
  // keep the logs
  try {
    if (existsSync(dapLog)) copyFileSync(dapLog, join(artifacts, 'dap.jsonl'));
    if (existsSync(join(dirs.data, 'logs'))) cpSync(join(dirs.data, 'logs'), join(artifacts, 'code-server-logs'), { recursive: true });
  } catch {}
  if (!process.env.CRYO_E2E_KEEP) rmSync(tmp, { recursive: true, force: true });
}

function ourProcesses() {
  const out = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'latin1');
      let exe = '';
      try {
        exe = readlinkSync(`/proc/${pid}/exe`);
      } catch {}
      if (!env.split('\0').includes(marker) && !exe.startsWith(tmp + '/')) continue;
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[0];
      if (state === 'Z') continue;
      out.push({ pid: Number(pid), cmd: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').slice(0, 120) });
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return out;
}

const watchdog = setTimeout(async () => {
  check('the whole run finishes in time', false, `still running after ${TOTAL_TIMEOUT_MS / 1000}s`);
  await shot('timeout').catch(() => {});
  await finish();
}, TOTAL_TIMEOUT_MS);

let finishing;
function finish() {
  finishing ??= finishOnce();
  return finishing;
}
async function finishOnce() {
  clearTimeout(watchdog);
  await cleanup();
  // a scenario still running when the watchdog fired may have started something meanwhile
  for (const p of ourProcesses()) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {}
    check('nothing started while the run was being ended', false, `${p.pid} ${p.cmd}`);
  }
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  log(`artifacts in ${artifacts}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed || !results.length ? 1 : 0);
}
process.on('SIGINT', () => void finish());
process.on('SIGTERM', () => void finish());

// ---------------------------------------------------------------- helpers
function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

let page;
let shotNo = 0;
async function shot(name) {
  if (!page) return;
  const file = join(artifacts, `${String(++shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Runs the command palette command with this exact title (clicks that row, not the first). */
async function palette(title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row').filter({
    has: page.locator('.label-name', { hasText: new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }),
  }).first();
  await row.waitFor({ state: 'visible', timeout: 10_000 });
  await row.click();
}

/** Text of the rows of a tree/list inside `container`, as [{text, name, value, aria}]. */
async function rows(container) {
  return page.evaluate((sel) => {
    const c = document.querySelector(sel);
    if (!c) return [];
    return [...c.querySelectorAll('.monaco-list-row')]
      .map((r) => ({
        top: parseFloat(r.style.top || '0'),
        text: r.innerText.replace(/\s+/g, ' ').trim(),
        name: r.querySelector('.name')?.textContent?.trim().replace(/\s*[=:]$/, ''),
        value: r.querySelector('.value')?.textContent?.trim(),
        label: r.querySelector('.label')?.textContent?.trim() ?? r.querySelector('.monaco-icon-label')?.textContent?.trim(),
        line: r.querySelector('.line-number')?.textContent?.trim(),
        expanded: r.getAttribute('aria-expanded'),
        aria: r.getAttribute('aria-label'),
      }))
      .sort((a, b) => a.top - b.top);
  }, container);
}

/** The dialogs and notification toasts on screen now: [{kind: dialog|error|warning|info, text}]. */
async function shownMessages() {
  if (!page) return [];
  return page.evaluate(() => {
    const out = [];
    for (const d of document.querySelectorAll('.monaco-dialog-box')) {
      if (d.getBoundingClientRect().height > 0) out.push({ kind: 'dialog', text: d.querySelector('.dialog-message-text')?.textContent ?? d.textContent });
    }
    for (const n of document.querySelectorAll('.notification-toast')) {
      if (!n.getBoundingClientRect().height) continue;
      const kind = n.querySelector('.codicon-error') ? 'error' : n.querySelector('.codicon-warning') ? 'warning' : 'info';
      out.push({ kind, text: n.querySelector('.notification-list-item-message')?.textContent ?? n.textContent });
    }
    return out;
  });
}

/** Error dialogs and error notifications the workbench shows now (e.g. a failed launch). */
async function editorErrors() {
  return (await shownMessages()).filter((m) => m.kind === 'dialog' || m.kind === 'error').map((m) => `${m.kind === 'dialog' ? 'dialog' : 'notification'}: ${m.text}`);
}

/** Polls fn until it returns something truthy; fails early when the editor shows an
 *  error dialog (a failed launch waits for nobody). */
async function waitFor(what, fn, timeout = 20_000, { failOnError = true } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (failOnError) {
      const errs = (await editorErrors()).filter((e) => e.startsWith('dialog'));
      if (errs.length) throw new Error(`the editor shows an error while waiting for ${what}: ${errs.join(' | ')}`);
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Closes any dialog and quick input left open, and ends a debug session still running.
 *  A session the first Stop leaves running (the adapter answers `terminate` on a stopped
 *  live process without a `terminated` event) gets a second one: VS Code then disconnects. */
async function tidy() {
  for (let i = 0; i < 3; i++) await page.keyboard.press('Escape').catch(() => {});
  for (let k = 0; k < 3 && (await debugState().catch(() => ({}))).toolbar; k++) {
    if (k) log(`tidy: a debug session is still there after ${k} Stop${k > 1 ? 's' : ''} (Shift+F5): Stop again`);
    await page.keyboard.press('Shift+F5').catch(() => {});
    await waitFor('the session to end', async () => ((await debugState()).toolbar ? null : true), k ? 10_000 : 6000, { failOnError: false }).catch(() => {});
  }
}

/** gdb's `info args` / `info locals` text as a name -> value map. */
function gdbVars(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    const x = /^(\w+) = (.*)$/.exec(line.trim());
    if (x) m.set(x[1], x[2]);
  }
  return m;
}

/** A value shown by the editor equals gdb's: exactly, or for pointers, same shape
 *  (addresses differ between two runs only by ASLR). */
function sameValue(ui, gdb) {
  if (ui === gdb) return true;
  if (/0x[0-9a-f]+/.test(gdb)) {
    const norm = (s) => s.replace(/0x[0-9a-f]+/g, '0x…').replace(/^\([^)]*\)\s*/, '');
    return /0x[0-9a-f]+/.test(ui ?? '') && norm(ui) === norm(gdb);
  }
  return false;
}

/** The glyph margin of the open editor at `line`: click it to toggle a breakpoint. */
async function clickGutter(line) {
  const editor = page.locator('.editor-group-container.active .monaco-editor').first();
  const ln = editor.locator('.margin-view-overlays .line-numbers', { hasText: new RegExp(`^${line}$`) }).first();
  await ln.waitFor({ state: 'visible', timeout: 10_000 });
  const lb = await ln.boundingBox();
  const mb = await editor.locator('.margin').first().boundingBox();
  await page.mouse.move(mb.x + 9, lb.y + lb.height / 2);
  await sleep(150);
  await page.mouse.click(mb.x + 9, lb.y + lb.height / 2);
}

/** Lines of the open editor that carry an element matching `selector` in their margin
 *  or their line overlay (breakpoint glyphs, the current-line decoration). */
async function decoratedLines(selector) {
  return page.evaluate((sel) => {
    const ed = document.querySelector('.editor-group-container.active .monaco-editor');
    if (!ed) return [];
    const lineTop = new Map();
    for (const n of ed.querySelectorAll('.margin-view-overlays > div')) {
      const num = n.querySelector('.line-numbers')?.textContent?.trim();
      if (num) lineTop.set(Math.round(n.getBoundingClientRect().top), Number(num));
    }
    const out = [];
    for (const g of ed.querySelectorAll(sel)) {
      const r = g.getBoundingClientRect();
      if (!r.height) continue;
      const top = Math.round(r.top + r.height / 2);
      let best, bd = 1e9;
      for (const [t, l] of lineTop) if (top >= t && top - t < bd) (bd = top - t), (best = l);
      if (best !== undefined && bd < 40) out.push(best);
    }
    return [...new Set(out)].sort((a, b) => a - b);
  }, selector);
}
const breakpointLines = () => decoratedLines('.codicon-debug-breakpoint, .codicon-debug-breakpoint-unverified');

/** Saves the HTML of a part of the workbench beside the screenshots (to fix selectors). */
async function dumpDom(sel, name) {
  const html = await page.evaluate((s) => document.querySelector(s)?.outerHTML ?? '(absent)', sel);
  writeFileSync(join(artifacts, `dom-${name}.html`), html);
}

async function debugConsoleText() {
  return page.evaluate(() => document.querySelector('.repl')?.innerText ?? '');
}

async function debugState() {
  // The debug toolbar is there while a session runs; the Call Stack says when it is paused.
  return page.evaluate(() => {
    const tb = document.querySelector('.debug-toolbar');
    const visible = !!tb && getComputedStyle(tb).display !== 'none' && tb.getBoundingClientRect().height > 0;
    return { toolbar: visible };
  });
}

/** Opens counter.c through quick open (or brings its tab forward). */
async function openCounter() {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill('counter.c');
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'counter.c' }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.press('Enter');
  await page.locator('.tab', { hasText: 'counter.c' }).first().waitFor({ timeout: 10_000 });
  await page.locator('.editor-group-container.active .monaco-editor .view-lines').first().waitFor({ timeout: 10_000 });
  await sleep(500);
}

// ---------------------------------------------------------------- scenarios
async function scenarioLaunch(fx) {
  log('scenario: launch, breakpoint from the gutter, stack, variables, disassembly, output');
  await openCounter();

  await clickGutter(fx.bpLine);
  const bps = await waitFor('the breakpoint glyph', async () => {
    const l = await breakpointLines();
    return l.includes(fx.bpLine) ? l : null;
  }, 5000).catch(() => breakpointLines());
  await shot('breakpoint-set');
  check(`a click in the gutter sets a breakpoint at counter.c:${fx.bpLine}`, bps.includes(fx.bpLine), `glyphs at ${JSON.stringify(bps)}`);

  // Start debugging with F5 (the launch.json's first configuration).
  await page.keyboard.press('F5');
  const frames = await waitFor('the Call Stack to show the stop', async () => {
    const r = await rows('.debug-call-stack, .pane-body.debug-call-stack');
    const f = r.filter((x) => x.line);
    return f.length >= 2 ? f : null;
  }, 30_000).catch(async (e) => {
    await shot('no-stop');
    throw e;
  });
  await sleep(500);
  await shot('stopped-at-breakpoint');
  const shown = frames.slice(0, 2).map((f) => ({ name: f.label?.split(/\s/)[0], line: Number(f.line.split(':')[0]) }));
  check('Call Stack lists tick then main with gdb`s lines', JSON.stringify(shown) === JSON.stringify(fx.gdbFrames), `editor ${JSON.stringify(shown)}, gdb ${JSON.stringify(fx.gdbFrames)}`);

  // The editor shows the stopped line.
  const marked = await decoratedLines('.debug-top-stack-frame-line, .codicon-debug-stackframe');
  check(`the editor marks line ${fx.gdbFrames[0].line} (gdb's) as where the program stopped`, marked.includes(fx.gdbFrames[0].line) && marked.length === 1, `marked ${JSON.stringify(marked)}`);

  // Variables of tick: the Arguments scope.
  const vars = await variables(['Arguments', 'Locals']);
  await shot('variables-tick');
  for (const [name, value] of fx.tickArgs) {
    const v = vars.find((x) => x.name === name);
    check(`Variables shows tick's argument ${name} = ${value} (gdb)`, v && sameValue(v.value, value), `editor: ${v ? v.value : 'absent'}`);
  }

  // Select main in the Call Stack: its locals.
  await page.locator('.debug-call-stack .monaco-list-row', { hasText: 'main' }).first().click();
  await sleep(700);
  const mvars = await variables(['Locals', 'Arguments']);
  await shot('variables-main');
  for (const [name, value] of [...fx.mainLocals, ...fx.mainArgs]) {
    const v = mvars.find((x) => x.name === name);
    check(`Variables shows main's ${name} = ${value} (gdb)`, v && sameValue(v.value, value), `editor: ${v ? v.value : 'absent'}`);
  }
  // back to tick
  await page.locator('.debug-call-stack .monaco-list-row', { hasText: 'tick' }).first().click();
  await sleep(300);

  if ((!only || only === 'disassembly') && !skip.has('disassembly')) await disassembly(fx).catch(async (e) => {
    check('Disassembly view', false, e.message);
    await shot('disassembly-failed');
  });

  // Step over (F10): the Call Stack's top frame moves to the line gdb's `next` goes to.
  await page.locator('.tab', { hasText: 'counter.c' }).first().click();
  await page.keyboard.press('F10');
  const stepped = await waitFor('the step to end', async () => {
    const f = (await rows('.debug-call-stack')).filter((x) => x.line);
    const top = f[0] && Number(f[0].line.split(':')[0]);
    return top && top !== fx.bpLine ? { name: f[0].label?.split(/\s/)[0], line: top } : null;
  }, 10_000).catch(() => null);
  await sleep(300);
  await shot('after-step-over');
  check(`F10 steps to line ${fx.nextLine} as gdb's next does, still in tick`, stepped?.line === fx.nextLine && stepped?.name === 'tick', `editor ${JSON.stringify(stepped)}`);

  // Remove the breakpoint from the gutter, continue to the end.
  await page.locator('.tab', { hasText: 'counter.c' }).first().click();
  await sleep(300);
  await clickGutter(fx.bpLine);
  const after = await waitFor('the breakpoint to go', async () => {
    const l = await breakpointLines();
    return !l.includes(fx.bpLine) ? l : null;
  }, 5000).catch(() => breakpointLines());
  check('a second click in the gutter removes it', !after.includes(fx.bpLine), `glyphs at ${JSON.stringify(after)}`);
  await page.keyboard.press('F5');
  const text = await waitFor('the program`s output in the Debug Console', async () => {
    const t = await debugConsoleText();
    return fx.output.trim().split('\n').every((l) => t.includes(l)) ? t : null;
  }, 20_000).catch(() => debugConsoleText());
  await shot('debug-console');
  const missing = fx.output.trim().split('\n').filter((l) => !text.includes(l));
  check('Debug Console shows the program`s whole output', missing.length === 0, missing.length ? `missing ${JSON.stringify(missing)}` : '');
  const ended = await waitFor('the session to end', async () => ((await debugState()).toolbar ? null : true), 15_000).catch(() => false);
  await shot('session-ended');
  check('the session ends when the program exits', ended);
}

/** Expands the scopes named and returns every variable row shown. */
async function variables(scopes) {
  const sel = '.debug-variables';
  await waitFor('the Variables view', async () => (await rows(sel)).length > 0, 10_000);
  for (const s of scopes) {
    const r = (await rows(sel)).find((x) => x.text === s || x.label === s);
    if (r && r.expanded === 'false') {
      await page.locator(`${sel} .monaco-list-row[aria-expanded="false"]`, { hasText: s }).first().click();
      await sleep(400);
    }
  }
  await sleep(300);
  await dumpDom(sel, 'variables');
  return (await rows(sel)).filter((x) => x.name);
}

/** gdb's mnemonic and the editor's name the same instruction (AT&T: the editor may add
 *  or leave out the operand-size suffix that gdb leaves out or adds). */
function sameMnemonic(a, b) {
  if (a === b) return true;
  const [s, l] = a.length < b.length ? [a, b] : [b, a];
  return l.length === s.length + 1 && l.startsWith(s) && 'bwlq'.includes(l.at(-1));
}

async function disassembly(fx) {
  await palette('Open Disassembly View');
  const rowsShown = () =>
    page.evaluate(() =>
      [...document.querySelectorAll('.disassembly-view .monaco-list-row')].map((r) => {
        const m = /Address: (0x[0-9a-f]+)(?:, Bytes: [^,]*)?, Instruction: (.*)/.exec(r.getAttribute('aria-label') ?? '');
        return {
          top: parseFloat(r.style.top || '0'),
          address: m ? BigInt(m[1]).toString() : null,
          insn: m ? m[2].trim() : r.innerText.trim(),
          current: !!r.querySelector('.codicon-debug-stackframe'),
        };
      }).sort((a, b) => a.top - b.top),
    );
  const shown = await waitFor('instructions in the Disassembly view', async () => {
    const r = await rowsShown();
    return r.length >= 10 && !r.some((x) => x.insn === '' || /Loading/.test(x.insn)) ? r : null;
  }, 15_000).catch(async (e) => {
    await dumpDom('.editor-group-container.active', 'disassembly');
    throw e;
  });
  await sleep(800);
  const rowsNow = await rowsShown();
  await shot('disassembly');
  const current = rowsNow.filter((r) => r.current && r.address !== null && r.address !== '0');
  const pcInsn = fx.tickDis.find((d) => d.current);
  check('Disassembly view marks one instruction as the current one, the one gdb marks',
    current.length === 1 && pcInsn && sameMnemonic(current[0].insn.split(/\s+/)[0], pcInsn.mnemonic),
    `editor: ${current.map((c) => `0x${BigInt(c.address).toString(16)} ${c.insn}`).join(', ') || 'none'} of ${rowsNow.length} rows (${rowsNow.filter((r) => r.insn === '??').length} '??'); gdb: <+${pcInsn?.offset}> ${pcInsn?.text}`);
  if (current.length === 1 && pcInsn) {
    const start = BigInt(current[0].address) - BigInt(pcInsn.offset);
    const byAddr = new Map(rowsNow.map((r) => [r.address, r]));
    const wrong = [];
    for (const d of fx.tickDis) {
      const r = byAddr.get((start + BigInt(d.offset)).toString());
      // the view may scroll the lines above the current one out of sight: those need not be there
      if (!r && d.offset < pcInsn.offset) continue;
      if (!r || !sameMnemonic(r.insn.split(/\s+/)[0], d.mnemonic)) wrong.push(`<+${d.offset}> gdb ${d.text} / editor ${r ? r.insn : 'no row'}`);
    }
    check('Disassembly view shows tick`s instructions at gdb`s boundaries with gdb`s mnemonics', wrong.length === 0, wrong.length ? wrong.slice(0, 4).join('; ') : `${fx.tickDis.length} instructions`);
  }
  await palette('View: Close Editor');
  await sleep(300);
}

async function scenarioAttach(fx) {
  log('scenario: attach through ${command:pickProcess}');
  // 600 ticks, one a second: it must still be running, and sleeping, long after the scenario
  const sleeperOut = join(tmp, 'sleeper.out');
  const outFd = openSync(sleeperOut, 'w');
  if (stopping) return;
  const sleeper = spawn(fx.sleeper, ['600', '1000'], { env: childEnv, stdio: ['ignore', outFd, outFd] });
  closeSync(outFd);
  const sleeperStart = Date.now();
  extraChildren.push(sleeper);
  await sleep(300);
  await palette('Debug: Select and Start Debugging');
  const cfg = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Cryo: Attach' }).first();
  await cfg.waitFor({ timeout: 10_000 });
  await shot('attach-configurations');
  await cfg.click();
  const picker = await waitFor('the process picker', async () => {
    const r = await rows('.quick-input-widget');
    const ph = await page.locator('.quick-input-widget .quick-input-box input').getAttribute('placeholder').catch(() => null);
    return r.length > 1 && ph?.includes('process') ? { r, ph } : null;
  }, 15_000).catch(async () => {
    await shot('no-process-picker');
    return null;
  });
  check('starting an attach configuration with ${command:pickProcess} shows the process picker', !!picker, picker ? picker.ph : '');
  if (!picker) return;
  await page.locator('.quick-input-widget .quick-input-box input').fill(String(sleeper.pid));
  await sleep(500);
  const listed = await rows('.quick-input-widget');
  await shot('process-picker');
  check(`the picker lists the running sleeper (pid ${sleeper.pid})`, listed.some((r) => r.text.includes(String(sleeper.pid)) && r.text.includes('sleeper')), listed.slice(0, 3).map((r) => r.text).join(' | '));
  await page.keyboard.press('Enter');
  const attached = await waitFor('the attached session', async () => ((await debugState()).toolbar ? true : null), 15_000).catch(() => false);
  await sleep(1000);
  await shot('attached');
  check('choosing it starts a debug session attached to that process', attached);
  // Pause, to see its stack; detach; then gdb attaches to the same process as the oracle.
  if (attached) {
    await page.keyboard.press('F6');
    await waitFor('the paused stack', async () => ((await rows('.debug-call-stack')).some((x) => /^main\b/.test(x.label ?? '')) ? true : null), 15_000).catch(() => null);
    // frames in code not on this machine (libc's) are folded by the editor: unfold them
    for (let k = 0; k < 3; k++) {
      const more = page.locator('.debug-call-stack .monaco-list-row', { hasText: /Show \d+ More Stack Frames/ }).first();
      if (!(await more.count())) break;
      await more.click().catch(() => {});
      await sleep(300);
    }
    const fr = await waitFor('frames after pause', async () => {
      const r = (await rows('.debug-call-stack')).filter((x) => x.line !== undefined);
      return r.some((x) => /^main\b/.test(x.label ?? '')) ? r : null;
    }, 15_000).catch(() => null);
    await sleep(500);
    await shot('attached-paused');
    const uiFrames = (fr ?? []).map((x) => ({ name: x.label?.split(/\s/)[0], line: Number((x.line ?? '').split(':')[0]) || 0 }));
    check('pausing the attached process shows its stack down to main', uiFrames.some((f) => f.name === 'main'), uiFrames.map((f) => f.name).join(' > '));
    await page.locator('.debug-call-stack .monaco-list-row', { hasText: 'main' }).first().click().catch(() => {});
    await sleep(500);
    const mv = await variables(['Locals']).catch(() => []);
    await shot('attached-main-variables');
    check('Variables shows main`s locals in the attached process', mv.some((v) => v.name === 'i'), mv.map((v) => `${v.name}=${v.value}`).join(', '));
    await page.keyboard.press('Shift+F5');
    await waitFor('the session to end', async () => ((await debugState()).toolbar ? null : true), 10_000).catch(() => false);
    await sleep(300);
    await shot('detached');
    await sleep(1500);
    const alive = sleeper.exitCode === null && sleeper.signalCode === null;
    const ticks = readFileSync(sleeperOut, 'utf8').split('\n').filter((l) => l.startsWith('tick')).length;
    const secs = (Date.now() - sleeperStart) / 1000;
    check('the process goes on running, one tick a second, after the editor detaches', alive && ticks <= secs + 2,
      `${alive ? 'running' : `exited (${sleeper.exitCode ?? sleeper.signalCode})`}, printed ${ticks} ticks of 1 s in ${secs.toFixed(1)} s`);
    if (alive) {
      const gb = spawnSync('gdb', ['-nx', '-batch', '-ex', 'set pagination off', '-p', String(sleeper.pid), '-ex', 'bt'], { encoding: 'utf8', env: childEnv, timeout: 30_000 }).stdout ?? '';
      const gFrames = [...gb.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+) \(.*?\)(?: at (\S+):(\d+))?/gm)].map((m) => ({ name: m[1], line: Number(m[3] ?? 0) }));
      const upTo = (a) => a.slice(0, a.findIndex((f) => f.name === 'main') + 1);
      const [u, g] = [upTo(uiFrames).filter((f) => f.line), upTo(gFrames).filter((f) => f.line)];
      check('the attached stack (functions with source lines, down to main) equals gdb`s on the same process',
        g.length >= 2 && JSON.stringify(u.slice(-2)) === JSON.stringify(g.slice(-2)) && u.map((f) => f.name).join() === g.map((f) => f.name).join(),
        `editor ${JSON.stringify(u)}, gdb ${JSON.stringify(g)}`);
    }
  }
  sleeper.kill('SIGKILL');
}

// ---------------------------------------------------------------- checkpoints and time travel
/** gdb -batch on the counter fixture: breaks at counter.c:`line`, runs, then runs `moves`
 *  (continue, next, ...) one after another. For the first stop and the stop after each
 *  move: {name, line} of frame 0 and, for frames 0..depth-1, {name, line, vars} (the
 *  frame's arguments and locals, name -> value). */
function gdbStops(fx, line, moves, depth, name) {
  const dump = (k) => [
    `echo ==STOP ${k}==\\n`,
    ...Array.from({ length: depth }, (_, d) => ['echo ==FRAME==\\n', `frame ${d}`, 'echo ==ARGS==\\n', 'info args', 'echo ==LOCALS==\\n', 'info locals']).flat(),
    'echo ==END==\\n',
    'frame 0', // `next` steps in the selected frame
  ];
  const ex = ['set pagination off', 'set confirm off', 'set startup-with-shell off', `break counter.c:${line}`, 'run', ...dump(0), ...moves.flatMap((m, k) => [m, ...dump(k + 1)]), 'kill'];
  const out = execFileSync('gdb', ['-nx', '-batch', ...ex.flatMap((e) => ['-ex', e]), '--args', fx.prog, fx.N], { encoding: 'utf8', env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  writeFileSync(join(artifacts, `gdb-${name}.txt`), out);
  const stops = out.split(/^==STOP \d+==$/m).slice(1).map((st) => {
    const frames = st.slice(0, st.indexOf('==END==')).split(/^==FRAME==$/m).slice(1).map((f) => {
      const m = /^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+) \(.*\) at (\S+):(\d+)/m.exec(f);
      return { name: m?.[1], line: Number(m?.[3]), vars: new Map([...gdbVars(f.slice(f.indexOf('==ARGS=='), f.indexOf('==LOCALS=='))), ...gdbVars(f.slice(f.indexOf('==LOCALS==')))]) };
    });
    return { name: frames[0]?.name, line: frames[0]?.line, vars: frames[0]?.vars, frames };
  });
  if (stops.length !== moves.length + 1 || stops.some((x) => !x.name || !x.line || x.frames.length !== depth || x.frames.some((f) => !f.vars.size))) {
    throw new Error(`the gdb oracle printed something unexpected:\n${out}`);
  }
  return stops;
}

const showVars = (m) => [...(m ?? [])].map(([k, v]) => `${k}=${v}`).join(', ') || 'none';
/** The entries of `want` (name -> value) that `got` shows differently (pointers: same form). */
const varsDiffer = (got, want) => [...want].filter(([k, v]) => !sameValue(got?.get(k), v)).map(([k]) => k);

/** The top frame of the Call Stack as {name, line}, or null. */
async function topFrame() {
  const f = (await rows('.debug-call-stack')).filter((x) => x.line);
  return f[0] ? { name: f[0].label?.split(/\s/)[0], line: Number(f[0].line.split(':')[0]) } : null;
}

/** Variables of the Call Stack's frame `fn` as name -> value, read until they equal `want`
 *  or the time is up (the view fills in after the stop): the last reading. */
async function frameVariables(fn, want, timeout = 10_000) {
  const end = Date.now() + timeout;
  let got = new Map();
  do {
    await page.locator('.debug-call-stack .monaco-list-row', { hasText: fn }).first().click().catch(() => {});
    await sleep(300);
    got = new Map((await variables(['Arguments', 'Locals']).catch(() => [])).map((v) => [v.name, v.value]));
    if (want && !varsDiffer(got, want).length) break;
  } while (Date.now() < end);
  return got;
}

/** What the editor shows once it stops where `want` ({name, line, vars}) says, or the time is
 *  up: the Call Stack's top frame, the lines the editor marks as the current one, and the
 *  Variables of that frame. */
async function shownStop(want, what, timeout = 20_000) {
  const top = await waitFor(what, async () => {
    const t = await topFrame();
    return t?.name === want.name && t?.line === want.line ? t : null;
  }, timeout).catch(() => topFrame());
  const vars = await frameVariables(want.name, want.vars);
  const marked = await waitFor('the current-line decoration', async () => {
    const m = await decoratedLines('.debug-top-stack-frame-line, .codicon-debug-stackframe');
    return m.length === 1 && m[0] === want.line ? m : null;
  }, 5000).catch(() => decoratedLines('.debug-top-stack-frame-line, .codicon-debug-stackframe'));
  return { name: top?.name, line: top?.line, marked, vars };
}

/** Checks that the editor's stop `got` (from shownStop) is `want`: frame, marked line, values. */
function checkStop(title, got, want) {
  const bad = varsDiffer(got.vars, want.vars);
  return check(title, got.name === want.name && got.line === want.line && got.marked.length === 1 && got.marked[0] === want.line && !bad.length,
    `editor ${got.name}:${got.line} marks ${JSON.stringify(got.marked)}, ${showVars(got.vars)}; expected ${want.name}:${want.line}, ${showVars(want.vars)}${bad.length ? ` (differ: ${bad.join(', ')})` : ''}`);
}

/** Starts the launch configuration of the counter by name (F5 would start the one used last,
 *  which the attach scenario leaves at Cryo: Attach). */
async function startCounter() {
  await palette('Debug: Select and Start Debugging');
  const cfg = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Cryo: counter' }).first();
  await cfg.waitFor({ timeout: 10_000 });
  await cfg.click();
}

/** Checks that the editor shows no error notification or dialog now (after `what`), then
 *  clears the notifications so that the next check answers for its own step only. */
async function checkNoError(what) {
  await sleep(300);
  const errs = await editorErrors();
  check(`${what} shows no error`, !errs.length, errs.join(' | '));
  if (errs.length) {
    await shot('error-shown');
    await palette('Notifications: Clear All Notifications').catch(() => {});
    await sleep(300);
  }
}

/** Makes the breakpoints of the open editor exactly `lines`, by clicks in the gutter. */
async function setBreakpointsTo(lines) {
  const now = await breakpointLines();
  for (const l of [...now.filter((x) => !lines.includes(x)), ...lines.filter((x) => !now.includes(x))]) {
    await clickGutter(l);
    await sleep(300);
  }
  const want = JSON.stringify([...lines].sort((a, b) => a - b));
  return waitFor('the breakpoint glyphs', async () => {
    const l = await breakpointLines();
    return JSON.stringify(l) === want ? l : null;
  }, 5000).catch(() => breakpointLines());
}

/** The debug toolbar's button whose aria-label or title starts with `label`, once enabled. */
async function toolbarButton(label) {
  // the label itself, or followed by its key binding: "Reverse" is not "Reverse Step Out (...)"
  const b = page.locator(`.debug-toolbar .action-label:is([aria-label="${label}"], [aria-label^="${label} ("], [title="${label}"], [title^="${label} ("])`).first();
  await b.waitFor({ state: 'visible', timeout: 10_000 }).catch(async (e) => {
    await dumpDom('.debug-toolbar', 'debug-toolbar');
    throw new Error(`no "${label}" button in the debug toolbar (${e.message.split('\n')[0]})`);
  });
  await waitFor(`the toolbar's ${label} to be enabled`, () => b.evaluate((e) => !e.classList.contains('disabled') && e.getAttribute('aria-disabled') !== 'true'), 10_000);
  return b;
}

const CHECKPOINTS = '.pane:has(> .pane-header[aria-label^="Checkpoints"])';
/** The rows of the Checkpoints view: {name, description, text}. */
async function checkpointRows() {
  return page.evaluate((sel) => [...(document.querySelector(sel)?.querySelectorAll('.monaco-list-row') ?? [])].map((r) => ({
    name: r.querySelector('.label-name')?.textContent?.trim(),
    description: r.querySelector('.label-description')?.textContent?.trim(),
    text: r.innerText.replace(/\s+/g, ' ').trim(),
  })), CHECKPOINTS);
}

async function scenarioSnapshot(fx) {
  log('scenario: snapshot from the debug toolbar, the Checkpoints view, restore');
  // gdb: the first three hits of the breakpoint in tick (once per iteration of main's loop),
  // with tick's and main's variables. The snapshot is taken at the second, the third comes after.
  const g = gdbStops(fx, fx.bpLine, ['continue', 'continue'], 2, 'snapshot');
  const [, at, later] = g;
  const [atTick, atMain] = at.frames;
  await openCounter();
  await setBreakpointsTo([fx.bpLine]);
  await startCounter();
  checkStop('snapshot: the first hit of the breakpoint in the loop is gdb`s', await shownStop(g[0], 'the first stop', 30_000), g[0]);
  await page.keyboard.press('F5');
  const s1 = await shownStop(at, 'the second hit');
  const main1 = await frameVariables(atMain.name, atMain.vars);
  await shot('snapshot-second-hit');
  checkStop('snapshot: F5 goes on to the second hit, tick`s variables as gdb`s there', s1, at);
  check('snapshot: main`s variables at the second hit are gdb`s', !varsDiffer(main1, atMain.vars).length, `editor ${showVars(main1)}; gdb ${showVars(atMain.vars)}`);
  await page.locator('.debug-call-stack .monaco-list-row', { hasText: atTick.name }).first().click();

  // The Checkpoints view: VS Code adds a contributed view to Run and Debug collapsed; open it.
  const header = page.locator(`${CHECKPOINTS} > .pane-header`);
  if ((await header.getAttribute('aria-expanded').catch(() => null)) === 'false') await header.click();
  const welcome = await waitFor('the empty Checkpoints view', () => page.evaluate((sel) => {
    const p = document.querySelector(sel);
    return p?.querySelector('.pane-body') && !p.querySelector('.monaco-list-row') ? (p.querySelector('.welcome-view-content')?.innerText ?? '').replace(/\s+/g, ' ').trim() : null;
  }, CHECKPOINTS), 10_000).catch(() => null);
  check('snapshot: the Checkpoints view is there, empty, saying how to take one', /camera/.test(welcome ?? ''), welcome ?? 'no empty Checkpoints view');

  // The camera in the debug toolbar.
  const camera = await toolbarButton('Take Snapshot');
  await shot('snapshot-toolbar');
  await camera.click();
  const snapAt = Date.now();
  const status = await waitFor('the status bar message', async () => {
    const t = await page.evaluate(() => document.querySelector('.part.statusbar')?.innerText ?? '');
    return /Cryo: (.*) taken/.exec(t)?.[1] ?? null;
  }, 5000, { failOnError: false }).catch(() => null);
  const cps = await waitFor('the Checkpoints view to list the checkpoint', async () => {
    const r = await checkpointRows();
    return r.length ? r : null;
  }, 10_000).catch(async () => {
    await dumpDom('.part.sidebar', 'sidebar');
    return checkpointRows();
  });
  await shot('snapshot-taken');
  const cp = cps[0];
  check('snapshot: the toolbar`s camera takes a checkpoint; the status bar names it', !!status, status ?? 'no "Cryo: … taken" message');
  check('snapshot: the Checkpoints view lists it, with its function and file:line (gdb`s stop)',
    cps.length === 1 && !!cp.name && (!status || cp.name === status) && cp.description?.includes(atTick.name) && cp.description?.includes(`counter.c:${atTick.line}`),
    `${cps.length} row(s): ${cps.map((r) => `"${r.name}" / "${r.description}"`).join('; ')}`);

  // Continue to the next hit: the values change.
  await page.keyboard.press('F5');
  const s2 = await shownStop(later, 'the third hit');
  const main2 = await frameVariables(later.frames[1].name, later.frames[1].vars);
  await shot('snapshot-after-continue');
  const changed = [...atTick.vars].filter(([k, v]) => later.vars.get(k) !== v).map(([k]) => k);
  checkStop(`snapshot: after F5 Variables shows the new values (${changed.join(', ')} changed, as in gdb)`, s2, later);
  check('snapshot: main`s variables at the third hit are gdb`s', !varsDiffer(main2, later.frames[1].vars).length, `editor ${showVars(main2)}; gdb ${showVars(later.frames[1].vars)}`);
  if (!changed.length) check('snapshot: some variable of tick changes between the two hits (gdb)', false, showVars(atTick.vars));

  // Restore from the view: the row's inline action.
  const row = page.locator(`${CHECKPOINTS} .monaco-list-row`).first();
  await row.hover();
  await row.click();
  const restore = row.locator('.actions .action-label:is([aria-label^="Restore Checkpoint"], [title^="Restore Checkpoint"])').first();
  await restore.waitFor({ state: 'visible', timeout: 10_000 }).catch(async (e) => {
    await dumpDom(CHECKPOINTS, 'checkpoints');
    throw e;
  });
  await shot('snapshot-restore-action');
  await restore.click();
  const s3 = await shownStop(at, 'the restored stop');
  await checkNoError('snapshot: restoring the checkpoint');
  const main3 = await frameVariables(atMain.name, atMain.vars);
  await page.locator('.debug-call-stack .monaco-list-row', { hasText: atTick.name }).first().click().catch(() => {});
  await shot('snapshot-restored');
  checkStop('snapshot: after restoring it, the editor shows the checkpoint`s stop and tick`s old values (gdb`s at that stop)', s3, at);
  check('snapshot: main`s old values are back too (gdb`s at that stop)', !varsDiffer(main3, atMain.vars).length, `editor ${showVars(main3)}; gdb ${showVars(atMain.vars)}`);
  // The row says how long ago the checkpoint was taken (the view rebuilds its rows every 5 s).
  await sleep(Math.max(0, 9000 - (Date.now() - snapAt)));
  const still = await checkpointRows();
  const since = (Date.now() - snapAt) / 1000;
  const age = Number(/(\d+)s ago/.exec(still[0]?.description ?? '')?.[1]);
  check('snapshot: the checkpoint is still listed after restoring it', still.length === 1 && still[0].name === cp.name, still.map((r) => r.text).join('; '));
  check('snapshot: its row says how long ago it was taken', age >= since - 7 && age <= since + 1, `"${still[0]?.description}", taken ${since.toFixed(1)} s ago`);

  // Going on from the restored state reaches the next hit again, as gdb's.
  await page.keyboard.press('F5');
  const s4 = await shownStop(later, 'the next hit after the restore');
  await shot('snapshot-continue-after-restore');
  checkStop('snapshot: F5 from the restored checkpoint reaches the next hit with gdb`s values', s4, later);

  // End: no breakpoint, run to the end.
  await setBreakpointsTo([]);
  await page.keyboard.press('F5');
  const ended = await waitFor('the session to end', async () => ((await debugState()).toolbar ? null : true), 20_000).catch(() => false);
  check('snapshot: the program then runs to its end and the session ends', ended);
  const gone = await waitFor('the Checkpoints view to empty', async () => ((await checkpointRows()).length ? null : true), 5000, { failOnError: false }).catch(() => false);
  await shot('snapshot-ended');
  check('snapshot: the session`s checkpoints leave the view when it ends', gone, (await checkpointRows()).map((r) => r.text).join('; '));
  await tidy();
}

async function scenarioStepBack(fx) {
  log('scenario: step over from the toolbar, Step Back, Reverse Continue');
  // gdb: the first two hits of the breakpoint on main's loop line, then three `next`s.
  const g = gdbStops(fx, fx.loopLine, ['continue', 'next', 'next', 'next'], 1, 'stepback');
  await openCounter();
  await setBreakpointsTo([fx.loopLine]);
  await startCounter();
  const seen = [await shownStop(g[0], 'the first stop', 30_000)];
  checkStop('stepback: the first hit of the breakpoint on main`s loop line is gdb`s', seen[0], g[0]);
  await page.keyboard.press('F5');
  seen.push(await shownStop(g[1], 'the second hit'));
  checkStop('stepback: F5 goes on to the second hit, as gdb`s continue', seen[1], g[1]);
  await shot('stepback-second-hit');
  for (let k = 2; k < g.length; k++) {
    await (await toolbarButton('Step Over')).click();
    seen.push(await shownStop(g[k], `step ${k - 1}`));
    await shot(`stepback-step-${k - 1}`);
    checkStop(`stepback: the toolbar's Step Over #${k - 1} stops where gdb's next does`, seen[k], g[k]);
  }
  // Step Back twice: each goes to the stop before, as the editor showed it then.
  for (let k = g.length - 2; k >= g.length - 3; k--) {
    const want = { name: seen[k].name, line: seen[k].line, vars: seen[k].vars };
    await (await toolbarButton('Step Back')).click();
    const got = await shownStop(want, `step back to stop ${k}`);
    await shot(`stepback-back-to-${k}`);
    await checkNoError(`stepback: Step Back to line ${want.line}`);
    checkStop(`stepback: the toolbar's Step Back goes back to the previous stop (line ${want.line}) and its values`, got, want);
  }
  // Reverse Continue: back to the second hit of the breakpoint (not the first).
  await (await toolbarButton('Reverse')).click();
  const rev = await shownStop({ name: seen[1].name, line: seen[1].line, vars: seen[1].vars }, 'the reverse continue');
  await shot('stepback-reverse-continue');
  await checkNoError('stepback: Reverse Continue');
  checkStop('stepback: the toolbar`s Reverse Continue goes back to the latest breakpoint hit before, with its values (gdb`s second hit)', rev, g[1]);
  // and forward again from there, as gdb's next
  await page.keyboard.press('F10');
  const fwd = await shownStop(g[2], 'the step after the reverse continue');
  await shot('stepback-forward-again');
  checkStop('stepback: F10 from there stops where gdb`s next does, with its values', fwd, g[2]);
  await tidy();
  await setBreakpointsTo([]);
}

// ---------------------------------------------------------------- images
/** The crash image of the workspace (test/fixtures/crash.c built -O0 -g, run under `cryo run
 *  --on-crash`) and what the oracles say of it: `cryo inspect --json`, and gdb on the ELF
 *  core `cryo export-core` makes of it (bt, the signal, the pc and its symbol, info threads,
 *  frame #0's arguments and locals). */
function crashFixture() {
  const src = join(dirs.ws, 'crash.c');
  copyFileSync(join(root, 'test', 'fixtures', 'crash.c'), src);
  execFileSync('gcc', ['-O0', '-g', 'crash.c', '-o', 'crash'], { cwd: dirs.ws });
  const prog = join(dirs.ws, 'crash');
  const image = crashImage(cryoBin, dirs.ws, prog, [], { cwd: dirs.ws, env: childEnv });
  const json = JSON.parse(execFileSync(cryoBin, ['inspect', '--json', image], { encoding: 'utf8', env: childEnv, maxBuffer: 64 << 20 }));
  const core = join(tmp, 'crash.core'); // outside the workspace: the Explorer shows the image, not this
  execFileSync(cryoBin, ['export-core', image, '-o', core], { env: childEnv, stdio: 'ignore' });
  const r = spawnSync('gdb', ['-nx', '-batch', '-ex', 'set pagination off', '-ex', 'echo ==BT==\\n', '-ex', 'bt', '-ex', 'echo ==THREADS==\\n', '-ex', 'info threads',
    '-ex', 'echo ==PC==\\n', '-ex', 'p/x $pc', '-ex', 'info symbol $pc', '-ex', 'echo ==ARGS==\\n', '-ex', 'frame 0', '-ex', 'info args', '-ex', 'info locals', '-ex', 'echo ==END==\\n',
    prog, core], { encoding: 'utf8', env: childEnv, timeout: 60_000 });
  const g = r.stdout;
  writeFileSync(join(artifacts, 'gdb-crash.txt'), `${g}\n--- stderr\n${r.stderr}`);
  const section = (a, b) => g.slice(g.indexOf(`==${a}==`), g.indexOf(`==${b}==`));
  const sig = /Program terminated with signal (SIG\w+), ([^.\n]+)/.exec(g + r.stderr);
  const sym = /^(\S+)(?: \+ (\d+))? in section/m.exec(section('PC', 'ARGS'));
  const c = {
    src,
    prog,
    image,
    json,
    name: image.split('/').pop(),
    frames: [...section('BT', 'THREADS').matchAll(/^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*?\)(?: at (\S+):(\d+))?/gm)].map((m) => ({ name: m[2], line: m[4] ? Number(m[4]) : undefined })),
    threads: section('THREADS', 'PC').split('\n').filter((l) => /^\*?\s+\d+\s+(Thread|LWP|process)\b/.test(l)).length,
    signal: sig?.[1],
    signalText: sig?.[2],
    pc: /^\$\d+ = (0x[0-9a-f]+)/m.exec(section('PC', 'ARGS'))?.[1],
    // gdb's `depth3 + 16` is the hover's `depth3+16`
    symbol: sym ? (sym[2] ? `${sym[1]}+${sym[2]}` : sym[1]) : undefined,
    vars: gdbVars(section('ARGS', 'END')),
  };
  if (c.frames.length < 2 || !c.frames[0].line || !c.threads || !c.signal || !c.pc || !c.symbol) throw new Error(`the gdb oracle on the crash core printed something unexpected:\n${g}\n${r.stderr}`);
  log(`crash oracle: ${c.name}, ${c.signal} (${c.signalText}) at ${c.pc} = ${c.symbol}, frames ${c.frames.map((f) => `${f.name}:${f.line ?? '?'}`).join(' < ')}, ${c.threads} thread(s), frame #0 ${showVars(c.vars)}`);
  return c;
}

/** The webview of the .cryo custom editor: the inner frame of its (visible) iframe. */
function imageWebview() {
  return page.frameLocator('iframe.webview.ready:visible').first().frameLocator('#active-frame');
}

/** Shows the Explorer and double-clicks the row of `name` (at the workspace's top level). */
async function openFromExplorer(name) {
  await palette('View: Show Explorer');
  const row = page.locator('.explorer-folders-view .monaco-list-row', { has: page.locator('.label-name', { hasText: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) }).first();
  await row.waitFor({ state: 'visible', timeout: 10_000 });
  await row.dblclick();
}

/** The summary the custom editor shows, once read: {title, reason, program, threads, stacks: [{tid, crashed, frames: [{name, where}]}]}. */
async function imageSummary(timeout = 30_000) {
  const view = imageWebview();
  await view.locator('#reason').waitFor({ state: 'visible', timeout });
  return view.locator('body').evaluate((b) => ({
    title: b.querySelector('h1')?.textContent?.trim(),
    reason: b.querySelector('#reason')?.textContent?.trim(),
    program: b.querySelector('#program')?.textContent?.trim(),
    threads: b.querySelector('#threads')?.textContent?.trim(),
    buttons: [...b.querySelectorAll('button')].map((x) => x.textContent.trim()),
    stacks: [...b.querySelectorAll('h3')].map((h) => ({
      heading: h.textContent.trim(),
      crashed: !!h.querySelector('.crash'),
      frames: [...(h.nextElementSibling?.querySelectorAll('li') ?? [])].map((li) => ({ name: li.querySelector('code')?.textContent?.trim(), text: li.textContent.replace(/\s+/g, ' ').trim() })),
    })),
    errors: [...b.querySelectorAll('.error, .warn')].map((e) => e.textContent.trim()),
  }));
}

async function scenarioCrashImage(fx) {
  log('scenario: a crash image from the Explorer: its summary, Debug, the exception stop, Revive, continue refused');
  const c = fx.crash;
  const crashed = c.json.threads.find((t) => t.tid === c.json.reason.tid);
  await openFromExplorer(c.name);
  const tab = await page.locator('.tab', { hasText: c.name }).first().waitFor({ timeout: 10_000 }).then(() => true, () => false);
  check('crashimage: a double-click on the .cryo in the Explorer opens it in a tab', tab);
  const s = await imageSummary().catch(async (e) => {
    await shot('crashimage-no-summary');
    await dumpDom('.editor-group-container.active', 'crashimage-editor');
    throw new Error(`the image editor shows no summary: ${e.message.split('\n')[0]}`);
  });
  await sleep(300);
  await shot('crashimage-summary');
  check(`crashimage: the custom editor's title and reason name the signal (${c.signal}, gdb's)`, s.title?.includes(c.signal) && s.reason?.includes(c.signal), `title "${s.title}", reason "${s.reason}"`);
  check('crashimage: it names the program (the image`s exe, the program that crashed)', s.program === c.json.process.exe && s.program === c.prog, `"${s.program}"; image ${c.json.process.exe}`);
  check(`crashimage: it counts the threads (${c.json.threads.length} in the image, ${c.threads} in gdb)`, Number(s.threads) === c.json.threads.length && Number(s.threads) === c.threads, `"${s.threads}"`);
  const top = s.stacks.find((t) => t.crashed);
  const shownNames = (top?.frames ?? []).slice(0, c.frames.length).map((f) => f.name);
  check('crashimage: the crashed thread`s top frames are gdb`s bt on the exported core',
    !!top && top.heading.includes(String(crashed?.tid)) && JSON.stringify(shownNames) === JSON.stringify(c.frames.map((f) => f.name))
      && c.frames.every((f, k) => !f.line || top.frames[k]?.text.includes(`${c.src.split('/').pop()}:${f.line}`)),
    `editor ${top ? `"${top.heading}": ${top.frames.map((f) => f.text).join(' | ')}` : 'no crashed thread'}; gdb ${c.frames.map((f) => `${f.name}:${f.line}`).join(' < ')}`);
  check('crashimage: the editor offers Debug, Revive and Show as Text, and shows no error', ['Debug', 'Revive', 'Show as Text'].every((b) => s.buttons.includes(b)) && !s.errors.length,
    `buttons ${JSON.stringify(s.buttons)}${s.errors.length ? `; ${s.errors.join(' | ')}` : ''}`);

  // Debug: a session on the image, stopped at the crash.
  await imageWebview().locator('#debug').click();
  // Run and Debug opens by itself on the first stop, except when the Explorer was brought
  // forward after an earlier session (debug.openDebug): the test opens it then, as a user would.
  const callStackShown = () => page.locator('.debug-call-stack').first().isVisible().catch(() => false);
  await waitFor('the debug session', async () => ((await debugState()).toolbar ? true : null), 20_000).catch(() => {});
  if (!(await waitFor('the Call Stack', callStackShown, 5000, { failOnError: false }).catch(() => false))) {
    // (it may still open by itself meanwhile and close the palette: then that is fine too)
    await palette('View: Show Run and Debug').catch(() => page.keyboard.press('Escape'));
  }
  const want = { name: c.frames[0].name, line: c.frames[0].line, vars: c.vars };
  const stop = await shownStop(want, 'the stop at the crash', 30_000);
  await shot('crashimage-debug');
  await checkNoError('crashimage: the session on the image');
  checkStop(`crashimage: Debug opens a session stopped at the fault, ${want.name}:${want.line} (gdb's frame #0), marked in the editor, with gdb's arguments and locals`, stop, want);
  const frames = (await rows('.debug-call-stack')).filter((x) => x.line).slice(0, c.frames.length).map((f) => ({ name: f.label?.split(/\s/)[0], line: Number(f.line.split(':')[0]) }));
  check('crashimage: the Call Stack shows gdb`s frames', JSON.stringify(frames) === JSON.stringify(c.frames.map((f) => ({ name: f.name, line: f.line ?? 0 }))),
    `editor ${frames.map((f) => `${f.name}:${f.line}`).join(' < ')}; gdb ${c.frames.map((f) => `${f.name}:${f.line}`).join(' < ')}`);
  const tabName = await page.locator('.editor-group-container.active .tab.active').first().innerText().catch(() => '');
  check('crashimage: the editor shows the faulting source file', tabName.includes(c.src.split('/').pop()), `active tab "${tabName.trim()}"`);
  const widget = await waitFor('the exception widget', () => page.evaluate(() => {
    const w = document.querySelector('.editor-group-container.active .exception-widget');
    return w && w.getBoundingClientRect().height > 0 ? w.innerText.replace(/\s+/g, ' ').trim() : null;
  }), 10_000).catch(() => null);
  check(`crashimage: the exception widget shows the signal (${c.signal}: ${c.signalText}, gdb's)`, !!widget && widget.includes(c.signal) && widget.includes(c.signalText), widget ?? 'no exception widget');

  // The toolbar offers Revive; continue is refused, with a message that says why.
  const revive = await toolbarButton('Revive').catch(() => null);
  const reviveLabel = revive ? await revive.evaluate((e) => e.getAttribute('aria-label') || e.getAttribute('title')) : null;
  await shot('crashimage-toolbar');
  check('crashimage: the debug toolbar shows the Revive button', /^Revive\b/.test(reviveLabel ?? ''), reviveLabel ?? 'no Revive button');
  await palette('Notifications: Clear All Notifications').catch(() => {});
  await (await toolbarButton('Continue')).click();
  const refused = await waitFor('the refusal to continue', async () => {
    const m = await shownMessages();
    return m.some((x) => x.text.includes(c.name)) ? m : null;
  }, 10_000, { failOnError: false }).catch(() => shownMessages());
  await shot('crashimage-continue-refused');
  const msg = refused.map((m) => `${m.kind}: ${m.text}`).join(' | ');
  // (VS Code shows a failed continue as a warning notification)
  check('crashimage: Continue is refused with a notification naming the image and the way out (Revive), no dialog',
    refused.some((m) => m.kind !== 'dialog' && m.text.includes(c.name) && /revive/i.test(m.text)) && !refused.some((m) => m.kind === 'dialog'), msg || 'no message shown');
  const still = await topFrame();
  check('crashimage: after the refusal the session is still stopped at the fault', still?.name === want.name && still?.line === want.line && (await debugState()).toolbar, JSON.stringify(still));
  await palette('Notifications: Clear All Notifications').catch(() => {});

  // Stop.
  await (await toolbarButton('Stop')).click();
  const ended = await waitFor('the session to end', async () => ((await debugState()).toolbar ? null : true), 15_000).catch(() => false);
  await shot('crashimage-stopped');
  check('crashimage: the Stop button ends the image session', ended);
  await checkNoError('crashimage: ending the session');
  await palette('View: Close All Editors').catch(() => {});
  await tidy();

  // A crash report's link: vscode://cryo.cryo/debug?image=PATH (the URI handler), opened
  // through the editor's own "Open URL" command as a browser would hand it over.
  const url = `vscode://cryo.cryo/debug?image=${encodeURIComponent(c.image)}`;
  const opened = await palette('Developer: Open URL').then(() => true, () => palette('Open URL').then(() => true, () => false));
  if (opened) {
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(url);
    await page.keyboard.press('Enter');
    // VS Code asks the user whether the extension may open the link: the user allows it
    const allow = page.locator('.monaco-dialog-box .monaco-button', { hasText: /^Open$/ }).first();
    if (await allow.waitFor({ state: 'visible', timeout: 10_000 }).then(() => true, () => false)) await allow.click();
  }
  const viaLink = opened ? await shownStop(want, 'the stop at the crash, from the link', 30_000).catch(() => null) : null;
  await shot('crashimage-from-link');
  check(`crashimage: the link a crash report carries (vscode://cryo.cryo/debug?image=...) opens a session stopped at the fault`, !!viaLink && viaLink.name === want.name && viaLink.line === want.line, opened ? JSON.stringify(viaLink) : 'no Open URL command');
  await tidy();
}

/** The lines of the active text editor that are on screen, as [{n, text}] in order. */
async function visibleLines() {
  return page.evaluate(() => {
    const ed = document.querySelector('.editor-group-container.active .monaco-editor');
    if (!ed) return [];
    return [...ed.querySelectorAll('.view-lines .view-line')]
      .map((l) => ({ top: parseFloat(l.style.top || '0'), text: l.textContent.replace(/\u00a0/g, ' ') }))
      .sort((a, b) => a.top - b.top);
  });
}

/** Runs the "@" (Go to Symbol in Editor) quick pick with `query`: the rows it lists, [{label, description}]. */
async function goToSymbol(query, until) {
  const input = page.locator('.quick-input-widget .quick-input-box input');
  if (!(await input.isVisible().catch(() => false))) {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
  }
  await input.fill(`@${query}`);
  const read = () => page.evaluate(() => [...document.querySelectorAll('.quick-input-widget .quick-input-list .monaco-list-row')]
    .sort((a, b) => parseFloat(a.style.top || '0') - parseFloat(b.style.top || '0'))
    .map((r) => ({ label: r.querySelector('.label-name')?.textContent?.trim(), description: r.querySelector('.label-description')?.textContent?.trim() ?? '' })));
  return waitFor(`the symbols for "@${query}"`, async () => {
    const r = await read();
    return r.length && (!until || r.some(until)) ? r : null;
  }, 10_000, { failOnError: false }).catch(read);
}

async function scenarioImageText(fx) {
  log('scenario: Cryo: Show Image as Text: the read-only text, its symbols, a hover on an address, colors');
  const c = fx.crash;
  await openFromExplorer(c.name);
  await imageWebview().locator('#reason').waitFor({ state: 'visible', timeout: 30_000 }).catch(() => {});
  await palette('Cryo: Show Image as Text');
  const head = `cryo image, format version ${c.json.format.version}`;
  const lines = await waitFor('the image as text', async () => {
    const l = await visibleLines();
    return l[0]?.text.startsWith(head) ? l : null;
  }, 30_000).catch(async (e) => {
    await shot('imagetext-no-text');
    throw e;
  });
  await sleep(500);
  await shot('imagetext-opened');
  check(`imagetext: the command opens a text editor on the image: "${head}, ${c.json.format.file_size} bytes" (the image's JSON)`, lines[0].text.includes(`${c.json.format.file_size} bytes`), lines[0].text);
  const tab = (await page.locator('.editor-group-container.active .tab.active').first().innerText().catch(() => '')).trim();
  const mode = (await page.locator('.statusbar-item[id="status.editor.mode"]').first().innerText().catch(() => '')).trim();
  const language = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).contributes.languages.find((l) => l.id === 'cryo-image');
  check(`imagetext: its tab is the image's and its language is ${language.aliases[0]}`, tab.includes(c.name) && mode === language.aliases[0], `tab "${tab}", language "${mode}"`);
  const threadLine = lines.find((l) => new RegExp(`^ {2}thread ${c.json.reason.tid}\\s`).test(l.text));
  check(`imagetext: the text has the crashing thread (${c.json.reason.tid}) and its frames, gdb's`, !!threadLine && c.frames.every((f) => lines.some((l) => new RegExp(`^\\s+#\\d+\\s+0x[0-9a-f]+ in ${f.name}\\b`).test(l.text))),
    threadLine?.text ?? 'no thread line on screen');

  // Read-only: typing changes nothing and the editor says why.
  const first = page.locator('.editor-group-container.active .monaco-editor .view-lines .view-line').first();
  await first.click({ position: { x: 5, y: 5 } });
  await page.keyboard.type('x');
  const ro = await waitFor('the read-only message', () => page.evaluate(() => document.querySelector('.editor-group-container.active .monaco-editor-overlaymessage')?.textContent?.trim() || null), 5000, { failOnError: false }).catch(() => null);
  await shot('imagetext-read-only');
  const after = await visibleLines();
  check('imagetext: the document is read-only (typing changes nothing; the editor says so)', after[0]?.text === lines[0].text && /read-only/i.test(ro ?? ''), `first line "${after[0]?.text}", message "${ro}"`);
  await page.keyboard.press('Escape');

  // Go to Symbol in Editor (@): the threads and mappings of `cryo inspect --json`.
  const th = await goToSymbol('thread', (r) => r.description === 'threads');
  await shot('imagetext-symbols-threads');
  const tids = th.filter((r) => r.description === 'threads').map((r) => Number(/^thread (\d+)$/.exec(r.label ?? '')?.[1])).sort();
  const want = c.json.threads.map((t) => t.tid).sort();
  check('imagetext: Go to Symbol lists the image`s threads (ids of cryo inspect --json)', JSON.stringify(tids) === JSON.stringify(want), `editor ${JSON.stringify(tids)}; image ${JSON.stringify(want)}`);
  const fr = await goToSymbol(c.frames[0].name, (r) => r.label === c.frames[0].name);
  check(`imagetext: ... and the crashing thread's frame #0, ${c.frames[0].name} (gdb's), under it`, fr.some((r) => r.label === c.frames[0].name && r.description === `thread ${c.json.reason.tid}`), fr.slice(0, 4).map((r) => `${r.label} (${r.description})`).join('; '));
  const paths = [...new Set(c.json.mappings.map((m) => m.path).filter(Boolean))];
  const missing = [];
  for (const p of paths) {
    const r = await goToSymbol(p, (x) => x.label === p && x.description === 'mappings');
    if (!r.some((x) => x.label === p && x.description === 'mappings')) missing.push(`${p} (got ${r.slice(0, 3).map((x) => `${x.label}/${x.description}`).join(', ')})`);
  }
  await shot('imagetext-symbols-mappings');
  check(`imagetext: Go to Symbol lists the image's mappings (${paths.length} paths of cryo inspect --json)`, paths.length > 2 && !missing.length, missing.join('; '));
  await page.keyboard.press('Escape');

  // Hover on the address of the crashing thread's frame #0: gdb's symbol for that pc.
  const pc = BigInt(c.json.reason.pc);
  const addr = await page.evaluate(({ tid, pc }) => {
    const ed = document.querySelector('.editor-group-container.active .monaco-editor');
    const ls = [...ed.querySelectorAll('.view-lines .view-line')].sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
    const t = ls.findIndex((l) => l.textContent.replace(/\u00a0/g, ' ').startsWith(`  thread ${tid} `));
    const f0 = ls.slice(t + 1).find((l) => /^\s+#0\s/.test(l.textContent.replace(/\u00a0/g, ' ')));
    if (t < 0 || !f0) return null;
    const spans = [...f0.querySelectorAll('span > span')];
    const a = spans.find((s) => /^0x[0-9a-f]+$/.test(s.textContent) && BigInt(s.textContent) === BigInt(pc));
    const plain = spans.find((s) => s.className === 'mtk1') ?? ed.querySelector('.view-lines span.mtk1');
    if (!a) return { line: f0.textContent, spans: spans.map((s) => `${s.className}:${s.textContent}`) };
    a.setAttribute('data-e2e', 'pc');
    const r = a.getBoundingClientRect();
    return { x: r.x + r.width / 2, y: r.y + r.height / 2, text: a.textContent, cls: a.className, color: getComputedStyle(a).color, plainCls: plain?.className, plainColor: plain ? getComputedStyle(plain).color : null };
  }, { tid: c.json.reason.tid, pc: c.json.reason.pc });
  check(`imagetext: frame #0's line shows the pc of the crash (${c.json.reason.pc}, the image's, gdb's ${c.pc})`, !!addr?.text && BigInt(c.pc) === pc, JSON.stringify(addr));
  if (addr?.text) {
    check('imagetext: the address is colored: its token has another class and color than plain text', addr.cls !== addr.plainCls && !!addr.plainColor && addr.color !== addr.plainColor,
      `address ${addr.cls} ${addr.color}; plain text ${addr.plainCls} ${addr.plainColor}`);
    let hover = null;
    for (let k = 0; k < 3 && !hover; k++) {
      await page.mouse.move(addr.x - 20, addr.y + 40);
      await sleep(200);
      await page.mouse.move(addr.x, addr.y, { steps: 3 });
      hover = await waitFor('the hover', () => page.evaluate(() => {
        const h = [...document.querySelectorAll('.monaco-hover')].find((x) => x.getBoundingClientRect().height > 0 && !x.classList.contains('hidden'));
        const t = h?.innerText?.replace(/\s+/g, ' ').trim();
        return t && !/Loading/.test(t) ? t : null;
      }), 8000, { failOnError: false }).catch(() => null);
    }
    await shot('imagetext-hover');
    const mapping = c.json.mappings.find((m) => BigInt(m.start) <= pc && pc < BigInt(m.end));
    check(`imagetext: hovering frame #0's address shows its symbol, ${c.symbol} (gdb's info symbol)`, !!hover && hover.includes(c.symbol), hover ?? 'no hover');
    check('imagetext: ... and the mapping it is in (the image`s)', !!hover && !!mapping && hover.includes(mapping.path), `${hover}; mapping ${mapping?.path}`);
    // The grammar's scope for the token (Developer: Inspect Editor Tokens and Scopes).
    await page.mouse.click(addr.x, addr.y);
    await palette('Developer: Inspect Editor Tokens and Scopes');
    const scopes = await waitFor('the token inspector', () => page.evaluate(() => document.querySelector('.token-inspect-widget')?.innerText?.replace(/\s+/g, ' ').trim() || null), 8000, { failOnError: false }).catch(() => null);
    await shot('imagetext-token-scopes');
    check('imagetext: the address token has the grammar`s scope (source.cryo-image, a hex constant)', /source\.cryo-image/.test(scopes ?? '') && /constant\.numeric\.hex/.test(scopes ?? ''), scopes ?? 'no token inspector');
    await page.keyboard.press('Escape');
  }
  await checkNoError('imagetext: the image as text');
  await palette('View: Close All Editors').catch(() => {});
  await tidy();
}

// ---------------------------------------------------------------- main
async function main() {
  // 1. the VSIX (and the tracer extension)
  const vsix = join(tmp, 'cryo.vsix');
  log('packaging the VSIX');
  execFileSync(process.execPath, [join(root, 'scripts', 'package.mjs'), '--quiet', '--out', vsix, ...(argv.includes('--no-build') ? ['--no-build'] : [])], { stdio: 'inherit' });
  const tracerVsix = join(tmp, 'tracer.vsix');
  execFileSync(process.execPath, [join(tools, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--allow-missing-repository', '--no-dependencies', '--out', tracerVsix], {
    cwd: join(root, 'test', 'editor', 'tracer'),
    stdio: ['ignore', 'ignore', 'inherit'],
  });

  // 2. the workspace: the fixture built -O0 -g, launch.json, and the oracles
  const src = join(dirs.ws, 'counter.c');
  copyFileSync(join(root, 'test', 'fixtures', 'counter.c'), src);
  execFileSync('gcc', ['-O0', '-g', 'counter.c', '-o', 'counter'], { cwd: dirs.ws });
  copyFileSync(join(root, 'test', 'fixtures', 'sleeper.c'), join(dirs.ws, 'sleeper.c'));
  execFileSync('gcc', ['-O0', '-g', 'sleeper.c', '-o', 'sleeper', '-lpthread'], { cwd: dirs.ws });
  const N = '3';
  mkdirSync(join(dirs.ws, '.vscode'));
  writeFileSync(join(dirs.ws, '.vscode', 'launch.json'), JSON.stringify({
    version: '0.2.0',
    configurations: [
      { type: 'cryo', request: 'launch', name: 'Cryo: counter', program: '${workspaceFolder}/counter', args: [N], cwd: '${workspaceFolder}' },
      { type: 'cryo', request: 'attach', name: 'Cryo: Attach', pid: '${command:pickProcess}' },
    ],
  }, null, 2));
  const bpLine = readFileSync(src, 'utf8').split('\n').findIndex((l) => l.includes('counter = i + 1;')) + 1;
  const prog = join(dirs.ws, 'counter');
  const g = execFileSync('gdb', ['-nx', '-batch', '-ex', 'set pagination off', '-ex', 'set confirm off', '-ex', 'set startup-with-shell off',
    '-ex', `break counter.c:${bpLine}`, '-ex', 'run', '-ex', 'echo ==BT==\\n', '-ex', 'bt', '-ex', 'echo ==DIS==\\n', '-ex', 'disassemble /r', '-ex', 'echo ==ARGS==\\n', '-ex', 'info args',
    '-ex', 'echo ==MAIN==\\n', '-ex', 'frame 1', '-ex', 'info locals', '-ex', 'echo ==MAINARGS==\\n', '-ex', 'info args', '-ex', 'echo ==END==\\n',
    '-ex', 'frame 0', '-ex', 'echo ==NEXT==\\n', '-ex', 'next', '-ex', 'echo ==END2==\\n',
    '-ex', 'kill', '--args', prog, N], { encoding: 'utf8', env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const section = (a, b) => g.slice(g.indexOf(`==${a}==`), g.indexOf(`==${b}==`));
  const fx = {
    bpLine,
    gdbFrames: [...section('BT', 'DIS').matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+) \(.*\) at (\S+):(\d+)/gm)].map((m) => ({ name: m[1], line: Number(m[3]) })),
    tickArgs: gdbVars(section('ARGS', 'MAIN')),
    mainLocals: gdbVars(section('MAIN', 'MAINARGS')),
    mainArgs: gdbVars(section('MAINARGS', 'END')),
    nextLine: Number(/^(\d+)\t/m.exec(section('NEXT', 'END2'))?.[1]),
    tickDis: [...section('DIS', 'ARGS').matchAll(/^(=>)?\s+0x[0-9a-f]+ <\+(\d+)>:\t([0-9a-f ]+)\t(\S+)(.*)$/gm)].map((m) => ({
      current: !!m[1], offset: Number(m[2]), bytes: m[3].trim(), mnemonic: m[4], text: `${m[4]}${m[5]}`.replace(/\s+/g, ' ').trim(),
    })),
    output: spawnSync(prog, [N], { encoding: 'utf8', env: childEnv }).stdout,
    sleeper: join(dirs.ws, 'sleeper'),
    prog,
    N,
    loopLine: readFileSync(src, 'utf8').split('\n').findIndex((l) => l.includes('tick(i);')) + 1,
    crash: selected('crashimage') || selected('imagetext') ? crashFixture() : undefined,
  };
  if (fx.gdbFrames.length !== 2 || !fx.tickArgs.size || fx.mainLocals.size < 3 || !fx.nextLine || fx.tickDis.length < 5 || !fx.tickDis.some((d) => d.current)) throw new Error(`the gdb oracle printed something unexpected:\n${g}`);
  writeFileSync(join(artifacts, 'gdb-oracle.txt'), g);
  log(`oracle: stop at counter.c:${bpLine}, frames ${JSON.stringify(fx.gdbFrames)}, tick args ${JSON.stringify([...fx.tickArgs])}, main locals ${JSON.stringify([...fx.mainLocals])}`);

  // 3. code-server: settings, extensions, start
  const userDir = join(dirs.data, 'User');
  mkdirSync(userDir, { recursive: true });
  writeFileSync(join(userDir, 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'update.mode': 'none',
    'chat.disableAIFeatures': true,
    'chat.commandCenter.enabled': false,
    'editor.minimap.enabled': false,
    'window.restoreWindows': 'none',
    'files.hotExit': 'off',
    'debug.internalConsoleOptions': 'openOnSessionStart',
    'debug.openDebug': 'openOnDebugBreak',
  }, null, 2));
  const config = join(tmp, 'code-server.yaml');
  writeFileSync(config, 'auth: none\ncert: false\n');
  const csArgs = ['--user-data-dir', dirs.data, '--extensions-dir', dirs.ext, '--config', config];
  for (const v of [vsix, tracerVsix]) {
    log(`installing ${v.split('/').pop()}`);
    const r = spawnSync(process.execPath, [codeServer, ...csArgs, '--install-extension', v], { env: childEnv, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`code-server --install-extension ${v} failed:\n${r.stdout}\n${r.stderr}`);
  }
  const listed = spawnSync(process.execPath, [codeServer, ...csArgs, '--list-extensions', '--show-versions'], { env: childEnv, encoding: 'utf8' }).stdout;
  check('code-server --install-extension installs the VSIX', /cryo\.cryo@/.test(listed), listed.trim().split('\n').join(', '));

  const port = await freePort();
  log(`starting code-server on 127.0.0.1:${port}`);
  server = spawn(process.execPath, [codeServer, ...csArgs, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--disable-getting-started-override', '--bind-addr', `127.0.0.1:${port}`, dirs.ws], { env: childEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let serverOut = '';
  server.stdout.on('data', (d) => (serverOut += d));
  server.stderr.on('data', (d) => (serverOut += d));
  await waitFor('code-server /healthz', async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 30_000).catch((e) => {
    throw new Error(`${e.message}\n${serverOut}`);
  });

  // 4. the browser
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    env: childEnv,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(dirs.ws)}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 30_000 });
  await page.locator('.explorer-folders-view, .explorer-viewlet').first().waitFor({ timeout: 30_000 }).catch(() => {});
  // let the extension host come up
  await waitFor('the extension host', async () => existsSync(dapLog), 30_000).catch(() => {});
  await sleep(1000);
  await shot('workbench');
  log('workbench open');

  const scenarios = [
    ['launch', scenarioLaunch],
    ['attach', scenarioAttach],
    ['snapshot', scenarioSnapshot],
    ['stepback', scenarioStepBack],
    ['crashimage', scenarioCrashImage],
    ['imagetext', scenarioImageText],
  ];
  for (const [name, fn] of scenarios) {
    if (stopping) break;
    if (!selected(name)) continue;
    try {
      await fn(fx);
    } catch (e) {
      if (stopping) break;
      check(`scenario ${name}`, false, e.message ?? String(e));
      if (!/the editor shows an error/.test(e.message)) console.log(e.stack);
      await shot(`${name}-failed`).catch(() => {});
      await tidy(); // leave no dialog or session for the next scenario
    }
    const errs = await editorErrors().catch(() => []);
    if (errs.length) {
      check(`scenario ${name}: no error shown by the editor`, false, errs.join(' | '));
      await tidy();
    }
  }
}

main()
  .catch(async (e) => {
    if (stopping) return; // the watchdog ended the run: what broke after that is noise
    check('setup', false, e.stack ?? String(e));
    await shot('setup-failed').catch(() => {});
  })
  .finally(finish);
