/**
 * The built wizard in a real pseudo-terminal: what Node or a library prints
 * while the wizard owns the terminal (a leak warning, a raw stderr write, a
 * console call) ends in the wizard's log, never on the screen. A module
 * preloaded into the wizard's Node prints them when it gets SIGURG (a signal
 * that signal-exit, bundled with Ink and execa, does not re-raise: with
 * SIGUSR2 the handler would run twice). Nothing is applied: the only key
 * pressed is q on the welcome screen.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBundle } from '../support/bundle.ts';
import { ptyEnv, runInPty } from '../support/pty.ts';

let bundle: string;
before(async () => {
  bundle = await ensureBundle();
});

const PRELOAD = `
process.on('SIGURG', () => {
  const leaking = new AbortController();
  for (let i = 0; i < 11; i++) leaking.signal.addEventListener('abort', () => undefined);
  process.stderr.write('a stray stderr write\\n');
  console.error('a stray console.error');
});
`;

const root = process.getuid?.() === 0;

test('a warning, a stderr write and console.error during the wizard go to its log, not the screen', { skip: !root && 'the wizard needs root' }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pve-baseline-guard-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const state = path.join(dir, 'state');
  const preload = path.join(dir, 'noisy.mjs');
  await writeFile(preload, PRELOAD);

  const r = await runInPty({
    argv: [process.execPath, '--import', pathToFileURL(preload).href, bundle],
    env: ptyEnv({ PVE_BASELINE_STATE_DIR: state }),
    script: [
      { waitFor: 'Nothing changes until you have seen the plan', timeoutMs: 10_000 },
      { signal: 'SIGURG' },
      // Long enough for the handler to have run; the wizard still owns the terminal throughout.
      { sleepMs: 500 },
      { send: 'q' },
      { waitExit: true },
    ],
  });
  assert.equal(r.exitCode, 0, r.plain);
  assert.doesNotMatch(r.plain, /MaxListenersExceeded|memory leak|stray/, 'nothing of it on the terminal');
  const logFile = path.join(state, 'wizard.log');
  assert.match(r.plain, new RegExp(`3 messages from Node or a library went to ${logFile.replace(/[.]/g, '\\.')} instead of the screen\\.`));
  const log = await readFile(logFile, 'utf8');
  assert.match(log, /warning: MaxListenersExceededWarning: Possible EventTarget memory leak detected\. 11 abort listeners/);
  assert.match(log, /stderr: a stray stderr write\n/);
  assert.match(log, /console: a stray console\.error\n/);
});
