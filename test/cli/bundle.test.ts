/** The one-file build: runs with nothing but Node, stays small, keeps ssh2 off the start-up path. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { BUNDLE, ensureBundle, REPO } from '../support/bundle.ts';
// @ts-expect-error: a plain .mjs build script, without type declarations
import { bundle } from '../../scripts/bundle.mjs';

before(async () => {
  await ensureBundle();
});

test('the bundle runs from a directory with no node_modules anywhere above it', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pve-baseline-bare-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'pve-baseline');
  copyFileSync(BUNDLE, file);
  const env = { PATH: process.env.PATH ?? '', PVE_BASELINE_STATE_DIR: path.join(dir, 'state') };
  const version = await execa(file, ['--version'], { cwd: dir, env, extendEnv: false, reject: false });
  assert.equal(version.exitCode, 0, version.stderr);
  assert.match(version.stdout, /^pve-baseline \d+\.\d+\.\d+$/);
  const check = await execa(file, ['check', '--json'], { cwd: dir, env, extendEnv: false, reject: false });
  assert.ok(check.exitCode === 0 || check.exitCode === 1, check.stderr);
  assert.equal(typeof JSON.parse(check.stdout).compliant, 'boolean');
});

test('the bundle is at most 1.5 MB', () => {
  assert.ok(statSync(BUNDLE).size <= 1.5 * 1024 * 1024, `${statSync(BUNDLE).size} bytes`);
});

type Inputs = Record<string, { imports: { path: string; kind: string }[] }>;

/** Import edges into ssh2 from outside it that are not import(): each would load ssh2 at start-up. */
function staticImportsOfSsh2(inputs: Inputs) {
  return Object.entries(inputs).flatMap(([from, input]) =>
    from.includes('node_modules/ssh2/') ? [] : input.imports.filter((i) => i.path.includes('node_modules/ssh2/') && i.kind !== 'dynamic-import').map((i) => ({ from, ...i })),
  );
}

test('the product reaches ssh2 only through import(), and leaves ajv out', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pve-baseline-meta-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const result = await bundle({ entry: 'bin/pve-baseline.ts', outfile: path.join(dir, 'out.mjs'), version: 'test', absWorkingDir: REPO, metafile: true });
  const inputs = result.metafile.inputs as Inputs;
  assert.deepEqual(staticImportsOfSsh2(inputs), [], 'a static import of ssh2 would load it at every start');
  // conf's schema support, left out on purpose (scripts/bundle.mjs).
  assert.ok(!Object.keys(inputs).some((f) => f.includes('node_modules/ajv/')), 'ajv is not bundled');
});

test('ssh2 works inside a bundle made with the same recipe, loaded with import()', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pve-baseline-ssh2-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const outfile = path.join(dir, 'probe.mjs');
  const result = await bundle({ entry: 'test/fixtures/ssh2-probe.ts', outfile, version: 'test', absWorkingDir: REPO, metafile: true });
  const inputs = result.metafile.inputs as Inputs;
  assert.ok(Object.keys(inputs).some((f) => f.includes('node_modules/ssh2/lib/')), 'ssh2 is in the probe bundle');
  assert.deepEqual(staticImportsOfSsh2(inputs), []);
  const run = await execa(process.execPath, [outfile], { cwd: dir, reject: false, env: { PATH: process.env.PATH ?? '' }, extendEnv: false });
  assert.equal(run.exitCode, 0, run.stderr);
  assert.equal(run.stdout, 'ssh-ed25519 probe');
});
