// Builds the pages into ../chalicelib/assets/ (or the directory given with
// --outdir): one module per page, the chunk both import (Cognito's client)
// and one stylesheet, each named after its content's hash so it can be
// cached for good; the two HTML pages pointing at them; and manifest.json,
// which names the only files chalicelib/pages.py answers. Each user pool's
// password policy comes from ../template.json (its PasswordPolicy), so what the
// pages say is what Cognito checks: {{password-policy.tenant}} and
// {{password-policy.admin}} in the pages, __PASSWORD_POLICIES__ in the scripts.
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
const POOLS = { tenant: 'UserPool', admin: 'AdminUserPool' }; // logical ids in template.json

/** "at least 12 characters, with upper- and lower-case letters, a digit and a symbol" */
function passwordPolicy(policy) {
  const upper = policy.RequireUppercase;
  const lower = policy.RequireLowercase;
  const kinds = [];
  if (upper && lower) kinds.push('upper- and lower-case letters');
  else if (upper) kinds.push('an upper-case letter');
  else if (lower) kinds.push('a lower-case letter');
  if (policy.RequireNumbers) kinds.push('a digit');
  if (policy.RequireSymbols) kinds.push('a symbol');
  const listed = kinds.length > 1 ? `${kinds.slice(0, -1).join(', ')} and ${kinds.at(-1)}` : kinds[0];
  return `at least ${policy.MinimumLength ?? 8} characters${listed ? `, with ${listed}` : ''}`;
}

async function passwordPolicies() {
  const template = JSON.parse(await readFile(path.join(here, '..', 'template.json'), 'utf8'));
  return Object.fromEntries(Object.entries(POOLS).map(([kind, logicalId]) => {
    const pool = template.Resources[logicalId];
    const policy = pool && pool.Properties.Policies && pool.Properties.Policies.PasswordPolicy;
    if (!policy) throw new Error(`template.json has no PasswordPolicy for ${logicalId}`);
    return [kind, passwordPolicy(policy)];
  }));
}

const escapeHtml = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function main() {
  const policies = await passwordPolicies();
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
    define: { global: 'globalThis', __PASSWORD_POLICIES__: JSON.stringify(policies) },
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
      if (name.startsWith('password-policy.') && policies[name.slice('password-policy.'.length)]) {
        const policy = policies[name.slice('password-policy.'.length)];
        return escapeHtml(`${policy.charAt(0).toUpperCase()}${policy.slice(1)}.`);
      }
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
