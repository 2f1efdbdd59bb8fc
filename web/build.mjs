// Bundles the app into the directory given as the first argument (default: dist/):
// hashed, minified ES modules (hls.js split out, loaded only by the players), one stylesheet, the
// icon, and index.html naming them. crates/web/build.rs runs this and embeds the result.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const out = process.argv[2] ?? 'dist';
mkdirSync(out, { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: 'src/main.tsx' },
  bundle: true,
  splitting: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'safari15', 'firefox100'],
  minify: true,
  sourcemap: false,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  outdir: out,
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

const outputs = Object.entries(result.metafile.outputs);
const script = basename(outputs.find(([path, o]) => o.entryPoint && path.endsWith('.js'))[0]);
const style = basename(outputs.find(([path]) => path.endsWith('.css'))[0]);
const iconBytes = readFileSync('src/icon.svg');
const icon = `icon-${createHash('sha256').update(iconBytes).digest('hex').slice(0, 8)}.svg`;
writeFileSync(join(out, icon), iconBytes);

const template = readFileSync('src/index.html', 'utf8');
const page = template
  .replace('__SCRIPT__', `/assets/${script}`)
  .replace('__STYLE__', `/assets/${style}`)
  .replace('__ICON__', `/assets/${icon}`);
writeFileSync(join(out, 'index.html'), page);
