// How the one-file bundle is made: one ESM file that runs on a bare node with
// Debian's nodejs (20+), no node_modules. The four things an esbuild bundle
// of ink + ssh2 needs: ESM output (yoga-layout uses
// top-level await), a stub for ink's optional react-devtools-core import,
// ssh2's native .node addons left out so it falls back to pure JS, and a
// banner that gives CommonJS modules require/__dirname/__filename.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export const bundleFixes = {
  name: 'pve-baseline-bundle-fixes',
  setup(b) {
    // A runtime require() of a .node file throws, and ssh2 then uses its JS crypto.
    b.onResolve({ filter: /\.node$/ }, (args) => ({ path: args.path, external: true }));
    b.onResolve({ filter: /^react-devtools-core$/ }, () => ({ path: 'react-devtools-core', namespace: 'stub' }));
    // Ink renders nothing until exit when it believes it runs in CI; the wizard
    // refuses to start without a TTY anyway, so CI detection only gets in the way.
    b.onResolve({ filter: /^is-in-ci$/ }, () => ({ path: 'is-in-ci', namespace: 'stub' }));
    b.onLoad({ filter: /^react-devtools-core$/, namespace: 'stub' }, () => ({
      contents: 'export default { connectToDevTools() {} };',
      loader: 'js',
    }));
    b.onLoad({ filter: /^is-in-ci$/, namespace: 'stub' }, () => ({ contents: 'export default false;', loader: 'js' }));
    // semver (about 29 KB) is what conf compares versions with when it runs
    // migrations; the journal gives it none, so no function of it is called.
    b.onResolve({ filter: /^semver$/ }, () => ({ path: 'semver', namespace: 'no-migrations' }));
    b.onLoad({ filter: /.*/, namespace: 'no-migrations' }, () => ({
      contents: "export default new Proxy({}, { get: (_t, name) => () => { throw new Error(`conf migrations (semver.${String(name)}) are not bundled in pve-baseline`); } });",
      loader: 'js',
    }));
    // ws (about 48 KB) comes in only through ink's devtools window polyfill,
    // which runs when DEV=true and react-devtools-core (stubbed above) connect.
    b.onResolve({ filter: /^ws$/ }, () => ({ path: 'ws', namespace: 'stub' }));
    b.onLoad({ filter: /^ws$/, namespace: 'stub' }, () => ({ contents: 'export default class WebSocket {}; export class WebSocketServer {};', loader: 'js' }));
    // conf imports ajv (about 170 KB with its helpers) for JSON-schema
    // validation, which it uses only when given a schema; the journal passes
    // none. Leaving it out saves a sixth of the bundle and its start-up time.
    b.onResolve({ filter: /^ajv\/dist\/2020\.js$|^ajv-formats$/ }, (args) => ({ path: args.path, namespace: 'no-schema' }));
    b.onLoad({ filter: /.*/, namespace: 'no-schema' }, () => ({
      contents:
        "const unavailable = () => { throw new Error('conf schema validation is not bundled in pve-baseline'); };" +
        'export class Ajv2020 { constructor() { unavailable(); } } export default unavailable;',
      loader: 'js',
    }));
    // bcrypt-pbkdf (about 48 KB with the tweetnacl it pulls in) derives the
    // key of a passphrase-protected OpenSSH private key; ssh2 calls it only
    // when given a passphrase, and pve-baseline never gives one (an encrypted
    // key is refused: src/backup/remote.ts).
    b.onResolve({ filter: /^bcrypt-pbkdf$/ }, () => ({ path: 'bcrypt-pbkdf', namespace: 'no-passphrase' }));
    b.onLoad({ filter: /.*/, namespace: 'no-passphrase' }, () => ({
      contents: "module.exports = { pbkdf() { throw new Error('passphrase-protected keys are not bundled in pve-baseline'); } };",
      loader: 'js',
    }));
    // ssh2's index also loads its SSH server and HTTP agents (about 25 KB),
    // which pve-baseline never uses: the bundle gets an index with what
    // src/ssh and src/backup take (Client, utils.parseKey, the key generator).
    b.onLoad({ filter: /[\\/]ssh2[\\/]lib[\\/]index\.js$/ }, (args) => ({
      contents: "'use strict'; const { parseKey } = require('./protocol/keyParser.js'); module.exports = { Client: require('./client.js'), utils: { parseKey, ...require('./keygen.js') } };",
      loader: 'js',
      resolveDir: path.dirname(args.path),
    }));
    // ink 6.8's incremental renderer moves the cursor up one line too few when
    // a frame grows or keeps its height (it forgets the trailing newline), so
    // every redraw lands one line lower and leaves stale lines behind. ink 7.1
    // fixed it (cursorUp(previousLines.length - 1)); ink 7 needs Node 22, so
    // the fix is applied here, and the build fails if the code ever changes.
    // ink 6.8's useInput subscribes to key presses in a passive effect, which
    // React may run after the frame that shows a new prompt is on screen: keys
    // typed (or pasted) in that gap are lost. Subscribing in a layout effect
    // closes the gap: it runs in the same commit that writes the frame, before
    // any further input is read. The build fails if the code ever changes.
    b.onLoad({ filter: /[\\/]ink[\\/]build[\\/]hooks[\\/]use-input\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const parts = source.split('    useEffect(() => {');
      if (!source.startsWith("import { useEffect } from 'react';") || parts.length !== 3) {
        throw new Error('ink use-input.js changed; re-check the input-subscription fix in scripts/bundle.mjs');
      }
      const patched = `${parts[0]}    useEffect(() => {${parts[1]}    useLayoutEffect(() => {${parts[2]}`.replace(
        "import { useEffect } from 'react';",
        "import { useEffect, useLayoutEffect } from 'react';",
      );
      return { contents: patched, loader: 'js' };
    });
    b.onLoad({ filter: /[\\/]ink[\\/]build[\\/]log-update\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const buggy = 'buffer.push(ansiEscapes.cursorUp(previousVisible - 1));';
      if (!source.includes(buggy)) throw new Error(`ink log-update.js changed; re-check the incremental-rendering fix in ${import.meta.url}`);
      return { contents: source.replace(buggy, 'buffer.push(ansiEscapes.cursorUp(previousLines.length - 1));'), loader: 'js' };
    });
  },
};

const REVERT_PROGRAMS = ['revert.sh', 'at-boot.sh'];

/** The revert's sh programs by name, as src/engine/revert/script.ts reads them from source. */
async function revertPrograms() {
  const out = {};
  for (const name of REVERT_PROGRAMS) out[name] = await readFile(new URL(`../src/engine/revert/${name}`, import.meta.url), 'utf8');
  return out;
}

/**
 * Bundle one entry into one ESM file that runs on Node 20 without
 * node_modules. Used by the build and by the benchmark's fixtures.
 */
export async function bundle({ entry, outfile, version, absWorkingDir, metafile = false }) {
  return build({
    metafile,
    entryPoints: [entry],
    outfile,
    ...(absWorkingDir ? { absWorkingDir } : {}),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    legalComments: 'none',
    jsx: 'automatic',
    external: ['cpu-features'],
    plugins: [bundleFixes],
    banner: {
      js:
        "import {createRequire as __cr} from 'node:module'; import {fileURLToPath as __fu} from 'node:url'; " +
        "import {dirname as __dn} from 'node:path'; const require = __cr(import.meta.url); " +
        'const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);',
    },
    define: {
      'process.env.NODE_ENV': '"production"',
      __PVE_BASELINE_VERSION__: JSON.stringify(version),
      // The revert's sh programs are real files (src/engine/revert/*.sh), read here at build time.
      __PVE_BASELINE_REVERT_PROGRAMS__: JSON.stringify(await revertPrograms()),
    },
    logLevel: 'warning',
  });
}
