/**
 * The lockout protocol in the runner, with a real revert armed on this
 * machine (the setsid sleeper; the boot hook goes to a temp unit dir): the
 * change stands only when access is confirmed; every failure, and silence
 * past the deadline, puts the files back byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Journal } from '../../src/engine/journal.ts';
import { Runner } from '../../src/engine/runner.ts';
import type { AccessRequest, Operator } from '../../src/engine/events.ts';
import type { Check, Step } from '../../src/engine/step.ts';
import { LocalExec } from '../../src/system/exec.ts';
import { BackupStore, LocalFiles } from '../../src/system/files.ts';
import { testNode } from '../fixtures/node.ts';
import { tempDir } from '../fixtures/temp.ts';

const root = process.getuid?.() === 0;

function guardedStep(dir: string, o: { pre?: Check[]; verifyOk?: boolean; seconds?: number }): Step<{ content: string | null }> {
  const target = path.join(dir, 'sshd.conf');
  return {
    id: 'guarded',
    title: 'Guarded change',
    summary: 'x',
    scope: 'node',
    risk: 'lockout',
    guard: { reload: [['touch', path.join(dir, 'reloaded')]], seconds: o.seconds ?? 2, beforeActivate: async () => o.pre ?? [{ label: 'config valid', ok: true }] },
    async probe(ctx) {
      return { content: await ctx.files.read(target) };
    },
    plan: (facts) => (facts.content === 'hardened\n' ? [] : [{ kind: 'file', path: target, before: facts.content, after: 'hardened\n', reason: 'harden' }]),
    async verify() {
      return [{ label: 'access works', ok: o.verifyOk ?? true }];
    },
  };
}

function operator(confirm: boolean | undefined, seen: AccessRequest[] = []): Operator {
  return {
    answer: async () => {
      throw new Error('no questions');
    },
    review: async () => 'apply',
    ...(confirm === undefined ? {} : { confirmAccess: async (r: AccessRequest) => (seen.push(r), confirm) }),
  };
}

async function setup(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'sshd.conf'), 'original\n');
  const journal = Journal.open(path.join(dir, 'state'), 'boot-1');
  return { dir, journal, backups: new BackupStore(path.join(dir, 'state', 'backups')) };
}

function run(step: Step<any>, env: Awaited<ReturnType<typeof setup>>, op: Operator) {
  return new Runner({
    steps: [step],
    journal: env.journal,
    backups: env.backups,
    operator: op,
    ctx: { exec: new LocalExec(), files: new LocalFiles(), node: testNode },
    revert: { unitDir: path.join(env.dir, 'units'), forceFallback: true },
  }).run();
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const skip = !root && 'arming writes root-owned files';

test('confirmed in time: the change stands, and stays after the deadline', { skip }, async (t) => {
  const env = await setup(t);
  const seen: AccessRequest[] = [];
  const [r] = await run(guardedStep(env.dir, {}), env, operator(true, seen));
  assert.equal(r!.outcome, 'verified');
  assert.equal(seen.length, 1);
  assert.ok(seen[0]!.deadline > Date.now(), 'the operator is told the deadline');
  await wait(3500);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'hardened\n');
  assert.equal(env.journal.status('guarded'), 'verified');
});

test('a failing check before activation reverts at once, before any reload', { skip }, async (t) => {
  const env = await setup(t);
  const [r] = await run(guardedStep(env.dir, { pre: [{ label: 'sshd -T shows PasswordAuthentication no', ok: false, detail: '00-aaa.conf wins' }] }), env, operator(true));
  assert.equal(r!.outcome, 'failed');
  assert.match(r!.reason!, /refused before activating: sshd -T shows PasswordAuthentication no \(00-aaa\.conf wins\)/);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'original\n');
});

test('a failed verification or a refused confirmation reverts at once', { skip }, async (t) => {
  for (const [o, confirm, reason] of [
    [{ verifyOk: false }, true, /verification failed: access works/],
    [{}, false, /access was not confirmed/],
  ] as const) {
    const env = await setup(t);
    const [r] = await run(guardedStep(env.dir, o), env, operator(confirm));
    assert.equal(r!.outcome, 'failed');
    assert.match(r!.reason!, reason);
    assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'original\n');
    assert.ok(existsSync(path.join(env.dir, 'reloaded')), 'the revert reloaded the service');
    assert.equal(env.journal.status('guarded'), 'failed');
  }
});

test('nobody confirms (headless): the run ends awaiting confirmation, and the node reverts on its own at the deadline', { skip }, async (t) => {
  const env = await setup(t);
  const [r] = await run(guardedStep(env.dir, { seconds: 2 }), env, operator(undefined));
  assert.equal(r!.outcome, 'awaiting-confirmation');
  assert.match(r!.reason!, /pve-baseline confirm/);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'hardened\n', 'in force until the deadline');
  const deadline = Date.now() + 6000;
  while ((await readFile(path.join(env.dir, 'sshd.conf'), 'utf8')) !== 'original\n' && Date.now() < deadline) await wait(200);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'original\n', 'reverted by the node, with no process of ours involved');
});

test('pve-baseline confirm from a new session keeps a change the run left awaiting confirmation', { skip }, async (t) => {
  const env = await setup(t);
  const [r] = await run(guardedStep(env.dir, { seconds: 3 }), env, operator(undefined));
  assert.equal(r!.outcome, 'awaiting-confirmation');
  const { confirmCommand } = await import('../../src/cli/commands.ts');
  const out: string[] = [];
  const runtime = { exec: new LocalExec(), files: new LocalFiles(), node: { ...testNode, isRoot: true }, stateDir: path.join(env.dir, 'state'), backupsDir: path.join(env.dir, 'state', 'backups') };
  const code = await confirmCommand(runtime, { out: (l) => out.push(l), err: (l) => out.push(l) }, { unitDir: path.join(env.dir, 'units') });
  assert.equal(code, 0, out.join('\n'));
  assert.match(out.join('\n'), /^Confirmed guarded: the change stays; the revert set for \S+ is disarmed\.$/m);
  await wait(4500);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'hardened\n', 'still in force after the deadline');
  const journal = Journal.open(path.join(env.dir, 'state'), 'boot-1');
  assert.equal(journal.status('guarded'), 'verified');
  assert.match(journal.step('guarded')!.history.at(-1)!.note!, /access confirmed from a new session/);
  // Nothing left to confirm.
  const again: string[] = [];
  assert.equal(await confirmCommand(runtime, { out: (l) => again.push(l), err: (l) => again.push(l) }), 0);
  assert.deepEqual(again, ['Nothing is waiting for confirmation.']);
});
