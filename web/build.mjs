// Builds the pages into ../chalicelib/assets/ (or the directory given with
// --outdir): one module per page, the chunk both import (Cognito's client)
// and one stylesheet, each named after its content's hash so it can be
// cached for good; the two HTML pages pointing at them; and manifest.json,
// which names the only files chalicelib/pages.py answers.
//
//   npm ci && npm run build
import { build } from 'esbuild';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, 'src');
const outArg = process.argv.indexOf('--outdir');
const outdir = path.resolve(outArg > 0 ? process.argv[outArg + 1] : path.join(here, '..', 'chalicelib', 'assets'));
const PAGES = ['signup', 'admin'];

async function main() {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });

  const result = await build({
    entryPoints: [
      ...PAGES.map((page) => path.join(src, `${page}.js`)),
      path.join(src, 'style.css'),
    ],
    outdir,
    entryNames: '[name]-[hash]',
    chunkNames: 'shared-[hash]', // Cognito's client, which both pages use
    bundle: true,
    splitting: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome100', 'firefox100', 'safari15', 'edge100'],
    // amazon-cognito-identity-js's Buffer polyfill reads `global`
    define: { global: 'globalThis' },
    legalComments: 'eof',
    metafile: true,
    write: true,
    logLevel: 'warning',
  });

  // entry file name -> built file name, e.g. signup.js -> signup-5CE2B1.js
  const built = {};
  for (const [output, meta] of Object.entries(result.metafile.outputs)) {
    if (!meta.entryPoint) continue;
    built[path.basename(meta.entryPoint)] = path.basename(output);
  }

  // markup both pages share (web/src/*.part.html), inlined where a page names it
  const parts = {};
  for (const name of (await readdir(src)).filter((file) => file.endsWith('.part.html'))) {
    parts[name] = (await readFile(path.join(src, name), 'utf8')).replace(/^<!--[\s\S]*?-->\s*/, '').trim();
  }

  for (const page of PAGES) {
    const template = await readFile(path.join(src, `${page}.html`), 'utf8');
    const html = template.replace(/\{\{([\w.-]+)\}\}/g, (match, name) => {
      if (name in parts) return parts[name];
      if (!built[name]) throw new Error(`${page}.html names {{${name}}}, which the build did not make`);
      return built[name];
    });
    await writeFile(path.join(outdir, `${page}.html`), html);
  }

  const assets = (await readdir(outdir)).filter((name) => /\.(js|css)$/.test(name)).sort();
  const manifest = {
    pages: Object.fromEntries(PAGES.map((page) => [page, `${page}.html`])),
    assets,
  };
  await writeFile(path.join(outdir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const sizes = await Promise.all(
    [...assets, ...PAGES.map((p) => `${p}.html`)].map(async (name) => {
      const bytes = (await readFile(path.join(outdir, name))).length;
      return `  ${name.padEnd(28)} ${(bytes / 1024).toFixed(1).padStart(7)} KB`;
    }),
  );
  console.log(`Built the pages in ${path.relative(process.cwd(), outdir) || '.'}:\n${sizes.join('\n')}`);
}

main().catch((error) => {
  console.error(`build: ${error.message}`);
  process.exit(1);
});
