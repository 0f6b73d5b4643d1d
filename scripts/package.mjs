// Packages the extension as cryo-<version>.vsix with @vscode/vsce.
//
//   node scripts/package.mjs [--no-build] [--out FILE]
//
// Builds first (native/ and the esbuild bundles, as `npm run build`), then runs vsce from
// .editor-test/tools (installed by scripts/editor-setup.sh, which this runs when vsce is
// missing), so vsce stays out of the project's dependencies. .vscodeignore decides what
// goes in: the bundles, libcryo.so and the `cryo` command, koffi with its linux-x64
// native module, capstone-wasm, README and LICENSE.
//
// The package targets linux-x64 (it carries native code). package.json has no
// "repository": --allow-missing-repository, and README's relative links are left as they
// are (--no-rewrite-relative-links) rather than pointing at a repository URL we do not
// have. Prints the VSIX's path, size and file list.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const args = process.argv.slice(2);
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const outArg = args.indexOf('--out');
const out = outArg >= 0 ? resolve(args[outArg + 1]) : join(root, `${pkg.name}-${pkg.version}.vsix`);
const quiet = args.includes('--quiet');

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit', encoding: 'utf8', ...opts });
  if (r.status !== 0) {
    if (quiet) process.stderr.write((r.stdout ?? '') + (r.stderr ?? ''));
    console.error(`package: ${cmd} ${argv.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
    process.exit(1);
  }
  return r;
}

if (!args.includes('--no-build')) run('npm', ['run', '--silent', 'build']);
for (const f of ['dist/extension.js', 'dist/adapter.js', 'native/build/libcryo.so', 'native/build/cryo', 'LICENSE']) {
  if (!existsSync(join(root, f))) {
    console.error(`package: ${f} is missing; run \`npm run build\``);
    process.exit(1);
  }
}

const vsce = join(root, '.editor-test', 'tools', 'node_modules', '@vscode', 'vsce', 'vsce');
if (!existsSync(vsce)) run('bash', [join(root, 'scripts', 'editor-setup.sh')]);

run(process.execPath, [
  vsce, 'package',
  '--target', 'linux-x64',
  '--allow-missing-repository',
  '--no-rewrite-relative-links',
  '--no-update-package-json',
  '--out', out,
], { env: { ...process.env, VSCE_TELEMETRY: '0' } });

// Every file the manifest points at must be in the package (a grammar or an icon left out
// by .vscodeignore would only show as a broken feature once installed).
const listed = new Set(run('unzip', ['-Z1', out], { stdio: ['ignore', 'pipe', 'pipe'] }).stdout.split('\n').filter(Boolean));
const wanted = [];
(function walk(v) {
  if (typeof v === 'string') {
    if (/^(\.\/)?[\w@.-]+(\/[\w@.-]+)*\.(js|cjs|json|svg|png|wasm|node)$/.test(v) && !v.includes('${')) wanted.push(v.replace(/^\.\//, ''));
  } else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
})({ main: pkg.main, icon: pkg.icon, contributes: pkg.contributes });
const absent = [...new Set(wanted)].filter((f) => !listed.has(`extension/${f}`));
if (absent.length) {
  console.error(`package: package.json points at files the VSIX leaves out: ${absent.join(', ')} (see .vscodeignore)`);
  process.exit(1);
}

const size = statSync(out).size;
console.log(`package: ${relative(process.cwd(), out) || out} ${(size / 1024 / 1024).toFixed(2)} MiB (${size} bytes)`);
if (!quiet) spawnSync('unzip', ['-l', out], { stdio: 'inherit' });
