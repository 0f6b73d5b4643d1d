// Bundles the extension, the debug adapter and the image language server with esbuild (CommonJS, Node 20).
// koffi and capstone-wasm stay external: they load a native module or a .wasm from their package folders.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const entries = [
  { in: 'extension/extension.ts', out: 'dist/extension.js', external: ['vscode'] },
  { in: 'adapter/main.ts', out: 'dist/adapter.js', external: ['koffi', 'capstone-wasm'] },
  // the language server of image text documents: reads images through the engine, as the adapter does
  { in: 'adapter/imageServer/main.ts', out: 'dist/imageServer.js', external: ['koffi', 'capstone-wasm'] },
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
