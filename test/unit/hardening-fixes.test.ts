/** The engine's answers to problems the first test pass found. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Secret } from '../../src/system/secret.ts';
import type { Step } from '../../src/engine/step.ts';
import { parseOsRelease } from '../../src/system/detect.ts';
import { allFiles, tempDir } from '../fixtures/temp.ts';
import { engine } from '../fixtures/harness.ts';
import { bareStep } from '../fixtures/steps.ts';

const SECRET = 'hunter2-correct-horse';

/** A command fed a secret that prints its stdin and then fails: the echo must not travel. */
function echoingFailure(): Step<null> {
  return {
    id: 'echo',
    title: 'Echoing failure',
    summary: 'Feeds a secret to a program that echoes it and fails.',
    scope: 'node',
    risk: 'safe',
    async probe() {
      return null;
    },
    // GNU sed's `q1` prints the first input line and exits 1, with nothing on stderr,
    // so the failure message quotes the echoed line.
    plan: () => [{ kind: 'command', argv: ['sed', 'q1'], input: new Secret(`admin:${SECRET}\n`), hide: [new Secret(SECRET)], reason: 'set it' }],
    async verify() {
      return [{ label: 'never reached', ok: true }];
    },
  };
}

test('a secret echoed by a failing command reaches neither the events, the error nor the journal', async (t) => {
  const dir = await tempDir(t);
  const { runner, events, journal } = engine({ stateDir: dir, steps: [echoingFailure()] });
  const [result] = await runner.run();
  assert.equal(result!.outcome, 'failed');
  assert.match(result!.reason!, /\[secret\]/, 'the echo is still visible, scrubbed');
  assert.doesNotMatch(result!.reason!, new RegExp(SECRET));
  assert.doesNotMatch(JSON.stringify(events), new RegExp(SECRET));
  const outputs = events.filter((e) => e.type === 'output').map((e) => (e.type === 'output' ? e.line : ''));
  assert.ok(outputs.some((l) => l === '[secret]'), `the echoed input line, scrubbed, in output: ${outputs.join(' | ')}`);
  for (const file of await allFiles(dir)) assert.ok(!file.bytes.includes(SECRET), `${file.path} holds the secret`);
  assert.match(journal.step('echo')!.error!, /\[secret\]/);
});

test('an incomplete rollback is retried before a new apply, so the original backup is not lost', async (t) => {
  const dir = await tempDir(t);
  const target = path.join(dir, 'managed.conf');
  const guard = path.join(dir, 'guard');
  await writeFile(target, 'original\n');
  // Verify fails, so the runner rolls back; the undo of the command fails while `guard` exists.
  let verifyOk = false;
  const step: Step<{ content: string | null }> = {
    id: 'flaky',
    title: 'Flaky',
    summary: 'Rollback fails once.',
    scope: 'node',
    risk: 'safe',
    async probe(ctx) {
      return { content: await ctx.files.read(target) };
    },
    plan: (facts) =>
      facts.content === 'managed\n'
        ? []
        : [
            { kind: 'file', path: target, before: facts.content, after: 'managed\n', reason: 'manage it' },
            { kind: 'command', argv: ['true'], undo: ['test', '!', '-e', guard], reason: 'a command whose undo can fail' },
          ],
    async verify() {
      return [{ label: 'holds', ok: verifyOk }];
    },
  };
  await writeFile(guard, '');
  const first = engine({ stateDir: dir, steps: [step] });
  const [r1] = await first.runner.run();
  assert.equal(r1!.outcome, 'failed');
  assert.equal(r1!.rolledBack, false);
  assert.ok(first.journal.step('flaky')!.applied.length > 0, 'what was not undone is still recorded');
  // The file was restored before the failing undo ran (reverse order) — put it in the managed state
  // again to prove the retry restores from the ORIGINAL backup, not from what is on disk now.
  await writeFile(target, 'something else\n');

  // Next run: the leftover rollback is retried first (and now succeeds), then the step applies anew.
  const { rm } = await import('node:fs/promises');
  await rm(guard);
  verifyOk = true;
  const second = engine({ stateDir: dir, steps: [step] });
  const [r2] = await second.runner.run();
  assert.equal(r2!.outcome, 'verified');
  assert.equal(await readFile(target, 'utf8'), 'managed\n');
  // Rolling back now goes to the true original.
  const { rollbackApplied } = await import('../../src/engine/apply.ts');
  const { BackupStore } = await import('../../src/system/files.ts');
  const problems = await rollbackApplied(second.journal.step('flaky')!.applied, {
    exec: second.exec,
    backups: new BackupStore(path.join(dir, 'backups')),
    onLine: () => undefined,
  });
  assert.deepEqual(problems, []);
  assert.equal(await readFile(target, 'utf8'), 'original\n');
});

test('a dependency that does not apply to this node does not hold its dependents back', async (t) => {
  const dir = await tempDir(t);
  const clusterOnly: Step<null> = { ...bareStep('cluster'), notApplicable: () => 'not a cluster' };
  const dependent = bareStep('dependent', ['cluster']);
  const { runner } = engine({ stateDir: dir, steps: [clusterOnly, dependent] });
  const results = await runner.run();
  assert.deepEqual(
    results.map((r) => [r.stepId, r.outcome]),
    [
      ['cluster', 'not-applicable'],
      ['dependent', 'compliant'],
    ],
  );
});

test('os-release values may be single-quoted, double-quoted or bare', () => {
  assert.deepEqual(parseOsRelease("VERSION_ID='13'\nVERSION_CODENAME='trixie'\n"), { codename: 'trixie', version: '13' });
  assert.deepEqual(parseOsRelease('VERSION_ID="12"\nVERSION_CODENAME=bookworm\n'), { codename: 'bookworm', version: '12' });
});
