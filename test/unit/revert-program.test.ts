/**
 * The revert's sh programs are real files in the repository: POSIX sh that
 * `sh -n` parses and shellcheck passes, loaded from source and stamped into
 * the bundle byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
// @ts-expect-error: a plain .mjs build script, without type declarations
import { bundle } from '../../scripts/bundle.mjs';
import { program } from '../../src/engine/revert/index.ts';
import { tempDir } from '../fixtures/temp.ts';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const programs = ['revert.sh', 'at-boot.sh'] as const;
const fileOf = (name: string) => path.join(here, '..', '..', 'src', 'engine', 'revert', name);
const shellcheck = spawnSync('shellcheck', ['--version']).status === 0;

for (const name of programs) {
  test(`${name} parses as POSIX sh (sh -n, dash -n)`, async () => {
    for (const shell of ['sh', 'dash']) {
      const r = spawnSync(shell, ['-n', fileOf(name)], { encoding: 'utf8' });
      if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT' && shell === 'dash') continue;
      assert.equal(r.status, 0, `${shell} -n ${name}: ${r.stderr}`);
    }
  });

  test(
    `${name} is shellcheck-clean as POSIX sh`,
    { skip: shellcheck ? false : 'shellcheck is not installed (scripts/ensure-deps.mjs installs it as root: apt-get install shellcheck)' },
    async () => {
      const r = spawnSync('shellcheck', ['--shell=sh', '--severity=style', fileOf(name)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    },
  );

  test(`${name} is what the code installs, from source`, async () => {
    assert.equal(program(name), await readFile(fileOf(name), 'utf8'));
  });
}

test('the bundle carries both programs byte for byte', async (t) => {
  const dir = await tempDir(t, 'pve-baseline-bundle-');
  const entry = path.join(dir, 'entry.ts');
  const outfile = path.join(dir, 'out.mjs');
  await writeFile(entry, `import { program } from ${JSON.stringify(path.join(here, '..', '..', 'src', 'engine', 'revert', 'script.ts'))};\nprocess.stdout.write(JSON.stringify({ revert: program('revert.sh'), boot: program('at-boot.sh') }));\n`);
  await bundle({ entry, outfile, version: 'test' });
  // Run from a directory without the programs: reading them from beside the bundle would fail.
  const r = await run(process.execPath, [outfile], { cwd: dir });
  const out = JSON.parse(r.stdout) as { revert: string; boot: string };
  assert.equal(out.revert, await readFile(fileOf('revert.sh'), 'utf8'));
  assert.equal(out.boot, await readFile(fileOf('at-boot.sh'), 'utf8'));
});
