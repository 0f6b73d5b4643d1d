// Bundles the extension and the debug adapter with esbuild (CommonJS, Node 20).
// koffi stays external: it loads its own native module from its package folder.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const entries = [
  { in: 'extension/extension.ts', out: 'dist/extension.js', external: ['vscode'] },
  { in: 'adapter/main.ts', out: 'dist/adapter.js', external: ['koffi'] },
];

for (const e of entries) {
  if (!existsSync(e.in)) continue;
  await build({
    entryPoints: [e.in],
    outfile: e.out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: true,
    external: e.external,
    logLevel: 'warning',
  });
}
