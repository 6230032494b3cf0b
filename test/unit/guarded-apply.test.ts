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
import { OperatorStop, type AccessDecision, type AccessRequest, type Operator, type RunnerEvent } from '../../src/engine/events.ts';
import type { Check, Step } from '../../src/engine/step.ts';
import { LocalExec } from '../../src/system/exec.ts';
import { BackupStore, LocalFiles } from '../../src/system/files.ts';
import { testNode } from '../fixtures/node.ts';
import { tempDir } from '../fixtures/temp.ts';

const root = process.getuid?.() === 0;

interface GuardedOptions {
  pre?: Check[];
  /** The file goes live when written (its checks then run before the write). */
  activates?: boolean;
  /** Called by the checks before activation with what is on disk then, and the intended content. */
  onCheck?: (onDisk: string, intended: string | null) => void;
  verifyOk?: boolean;
  proveOk?: boolean;
  seconds?: number;
  /** What the step's login watch reports, and after how long (ms); it never reports when absent. */
  login?: { who: string; afterMs: number };
  /** Only the step's own proof keeps it (AccessGuard.provenOnlyBy). */
  provenOnlyBy?: string;
}

function guardedStep(dir: string, o: GuardedOptions): Step<{ content: string | null }> {
  const target = path.join(dir, 'sshd.conf');
  return {
    id: 'guarded',
    title: 'Guarded change',
    summary: 'x',
    scope: 'node',
    risk: 'lockout',
    guard: {
      reload: [['touch', path.join(dir, 'reloaded')]],
      seconds: o.seconds ?? 2,
      ...(o.provenOnlyBy ? { provenOnlyBy: o.provenOnlyBy } : {}),
      beforeActivate: async (_ctx, _answers, _facts, changes) => {
        const change = changes.find((c) => c.kind === 'file');
        o.onCheck?.(await readFile(target, 'utf8'), change?.kind === 'file' ? change.after : null);
        return o.pre ?? [{ label: 'config valid', ok: true }];
      },
      prove: async () => [{ label: 'the probe key logs in', ok: o.proveOk ?? true }],
      access: () => ({
        instructions: ['ssh alice@node'],
        watch: (_since, signal) =>
          new Promise((resolve) => {
            if (!o.login) return signal.addEventListener('abort', () => resolve(null));
            const t = setTimeout(() => resolve({ detail: o.login!.who }), o.login.afterMs);
            signal.addEventListener('abort', () => (clearTimeout(t), resolve(null)));
          }),
      }),
    },
    async probe(ctx) {
      return { content: await ctx.files.read(target) };
    },
    plan: (facts) => (facts.content === 'hardened\n' ? [] : [{ kind: 'file', path: target, before: facts.content, after: 'hardened\n', reason: 'harden', ...(o.activates ? { activates: true as const } : {}) }]),
    async verify() {
      return [{ label: 'access works', ok: o.verifyOk ?? true }];
    },
  };
}

/** How the test's operator meets the countdown: keep it (console skip), refuse it, wait for the proof, or press Ctrl+C. */
type Confirm = 'skip' | 'refuse' | 'await-proof' | 'ctrl-c' | undefined;

function operator(confirm: Confirm, seen: AccessRequest[] = []): Operator {
  const decide = async (r: AccessRequest): Promise<AccessDecision> => {
    seen.push(r);
    if (confirm === 'skip') return { kind: 'skipped' };
    if (confirm === 'refuse') return { kind: 'revert', reason: 'access was not confirmed' };
    if (confirm === 'ctrl-c') throw new OperatorStop();
    const proof = await r.proof;
    return proof ? { kind: 'proven', proof } : { kind: 'revert', reason: 'no new login before the deadline' };
  };
  return {
    answer: async () => {
      throw new Error('no questions');
    },
    review: async () => 'apply',
    ...(confirm === undefined ? {} : { confirmAccess: decide }),
  };
}

async function setup(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'sshd.conf'), 'original\n');
  const journal = Journal.open(path.join(dir, 'state'), 'boot-1');
  return { dir, journal, backups: new BackupStore(path.join(dir, 'state', 'backups')) };
}

function run(step: Step<any>, env: Awaited<ReturnType<typeof setup>>, op: Operator, events: RunnerEvent[] = []) {
  return new Runner({
    onEvent: (e) => events.push(e),
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
  const [r] = await run(guardedStep(env.dir, {}), env, operator('skip', seen));
  assert.equal(r!.outcome, 'verified');
  assert.equal(seen.length, 1);
  assert.ok(seen[0]!.deadline > Date.now(), 'the operator is told the deadline');
  await wait(3500);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'hardened\n');
  assert.equal(env.journal.status('guarded'), 'verified');
});

test('a failing check before activation reverts at once, before any reload', { skip }, async (t) => {
  const env = await setup(t);
  const [r] = await run(guardedStep(env.dir, { pre: [{ label: 'sshd -T shows PasswordAuthentication no', ok: false, detail: '00-aaa.conf wins' }] }), env, operator('skip'));
  assert.equal(r!.outcome, 'failed');
  assert.match(r!.reason!, /refused before activating: sshd -T shows PasswordAuthentication no \(00-aaa\.conf wins\)/);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'original\n');
  assert.ok(!existsSync(path.join(env.dir, 'reloaded')), 'nothing was reloaded: the files went back, the service never saw them');
});

test('a failed verification or proof, a refused confirmation, no login by the deadline and Ctrl+C each revert at once', { skip }, async (t) => {
  for (const [o, confirm, reason] of [
    [{ verifyOk: false }, 'skip', /verification failed: access works/],
    [{ proveOk: false }, 'skip', /verification failed: the probe key logs in/],
    [{}, 'refuse', /access was not confirmed/],
    [{ seconds: 2 }, 'await-proof', /no new login before the deadline/],
    [{}, 'ctrl-c', /stopped by the operator before access was confirmed/],
  ] as const) {
    const env = await setup(t);
    const [r] = await run(guardedStep(env.dir, o as GuardedOptions), env, operator(confirm as Confirm));
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

  // status tells; the next run records it truthfully and plans the change anew.
  const { statusCommand } = await import('../../src/cli/commands/status.ts');
  const runtime = { exec: new LocalExec(), files: new LocalFiles(), node: { ...testNode, isRoot: true }, stateDir: path.join(env.dir, 'state'), backupsDir: path.join(env.dir, 'state', 'backups') };
  const status: string[] = [];
  await statusCommand(runtime, [guardedStep(env.dir, {})], { json: false }, { out: (l) => status.push(l), err: (l) => status.push(l) });
  assert.match(status.join('\n'), /^guarded +applied .*\n +the node reverted it, unconfirmed: reverted at \S+ \(timer\)$/m);
  const [again] = await run(guardedStep(env.dir, {}), env, operator('skip'));
  assert.equal(again!.outcome, 'verified');
  const history = env.journal.step('guarded')!.history;
  assert.ok(history.some((h) => h.status === 'reverted' && /^the node reverted it, unconfirmed: reverted at/.test(h.note ?? '')), JSON.stringify(history));
});

test('pve-baseline confirm from a new session keeps a change the run left awaiting confirmation', { skip }, async (t) => {
  const env = await setup(t);
  const [r] = await run(guardedStep(env.dir, { seconds: 3 }), env, operator(undefined));
  assert.equal(r!.outcome, 'awaiting-confirmation');
  const { confirmCommand } = await import('../../src/cli/commands/confirm.ts');
  const { statusCommand } = await import('../../src/cli/commands/status.ts');
  const out: string[] = [];
  const runtime = { exec: new LocalExec(), files: new LocalFiles(), node: { ...testNode, isRoot: true }, stateDir: path.join(env.dir, 'state'), backupsDir: path.join(env.dir, 'state', 'backups') };
  const status: string[] = [];
  await statusCommand(runtime, [guardedStep(env.dir, {})], { json: false }, { out: (l) => status.push(l), err: (l) => status.push(l) });
  assert.match(status.join('\n'), /^AWAITING CONFIRMATION: guarded: the node reverts it at \S+ \(\d+ s left\) unless pve-baseline confirm runs from a new session\.$/m);
  // As from a new SSH login: another audit session, another connection (the applying one had none).
  const session = { auditSession: 'another-login', sshConnection: '192.0.2.9 50000 192.0.2.10 22', tty: null };
  const code = await confirmCommand(runtime, { out: (l) => out.push(l), err: (l) => out.push(l) }, { unitDir: path.join(env.dir, 'units'), session });
  assert.equal(code, 0, out.join('\n'));
  assert.match(out.join('\n'), /^Confirmed guarded: the change stays; the revert set for \S+ is disarmed\.$/m);
  await wait(4500);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'hardened\n', 'still in force after the deadline');
  const journal = Journal.open(path.join(env.dir, 'state'), 'boot-1');
  assert.equal(journal.status('guarded'), 'verified');
  assert.match(journal.step('guarded')!.history.at(-1)!.note!, /access confirmed from a new session/);
  // Nothing left to confirm.
  const again: string[] = [];
  assert.equal(await confirmCommand(runtime, { out: (l) => again.push(l), err: (l) => again.push(l) }, { session }), 0);
  assert.deepEqual(again, ['Nothing is waiting for confirmation.']);
});

test('a change only its own proof keeps (a second factor): confirm from a new session refuses it, the countdown does not offer it, and the node reverts it', { skip }, async (t) => {
  const env = await setup(t);
  const only = 'the account logs in to the web UI with a code';
  const [r] = await run(guardedStep(env.dir, { seconds: 3, provenOnlyBy: only }), env, operator(undefined));
  assert.equal(r!.outcome, 'awaiting-confirmation');
  const { confirmCommand } = await import('../../src/cli/commands/confirm.ts');
  const runtime = { exec: new LocalExec(), files: new LocalFiles(), node: { ...testNode, isRoot: true }, stateDir: path.join(env.dir, 'state'), backupsDir: path.join(env.dir, 'state', 'backups') };
  const session = { auditSession: 'another-login', sshConnection: '192.0.2.9 50000 192.0.2.10 22', tty: null };
  const out: string[] = [];
  const code = await confirmCommand(runtime, { out: (l) => out.push(l), err: (l) => out.push(l) }, { unitDir: path.join(env.dir, 'units'), session, steps: [guardedStep(env.dir, { provenOnlyBy: only })] });
  assert.equal(code, 2, out.join('\n'));
  assert.match(out.join('\n'), /^pve-baseline: not confirmed: guarded: a new session does not prove it; it is kept only after the account logs in to the web UI with a code\. Nothing was changed; the node reverts it at \S+ unless that happens\.$/m);
  const deadline = Date.now() + 8000;
  while ((await readFile(path.join(env.dir, 'sshd.conf'), 'utf8')) !== 'original\n' && Date.now() < deadline) await wait(200);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'original\n', 'the node reverted it: the refusal disarmed nothing');

  // In the wizard the countdown names only the step's own proof.
  const seen: AccessRequest[] = [];
  const [again] = await run(guardedStep(env.dir, { seconds: 2, provenOnlyBy: only, login: { who: 'alice, web login with a code', afterMs: 200 } }), env, operator('await-proof', seen));
  assert.equal(again!.outcome, 'verified', again!.reason);
  assert.deepEqual(seen[0]!.instructions, ['ssh alice@node']);
});

test('a new login seen by the step proves access: the change stands, and the proof is recorded', { skip }, async (t) => {
  const env = await setup(t);
  const seen: AccessRequest[] = [];
  const who = 'alice from 10.77.7.1 (port 50412) with ED25519 key SHA256:abc';
  const [r] = await run(guardedStep(env.dir, { seconds: 5, login: { who, afterMs: 300 } }), env, operator('await-proof', seen));
  assert.equal(r!.outcome, 'verified', r!.reason);
  assert.deepEqual(seen[0]!.instructions, ['ssh alice@node', 'or, from a new session: pve-baseline confirm']);
  assert.equal(seen[0]!.maySkip, testNode.session.kind === 'console');
  assert.deepEqual(r!.checks!.at(-1), { label: 'a new login proved access', ok: true, detail: who });
  assert.match(env.journal.step('guarded')!.history.at(-1)!.note!, /a new login proved access: alice from 10\.77\.7\.1/);
  await wait(5500);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'hardened\n', 'still in force after the deadline');
});

test('pve-baseline confirm in another session while the wizard counts down ends the wait', { skip }, async (t) => {
  const env = await setup(t);
  const seen: AccessRequest[] = [];
  const running = run(guardedStep(env.dir, { seconds: 6 }), env, operator('await-proof', seen));
  while (!seen.length) await wait(50);
  // What confirm does in the other session (it leaves the journal to the wizard, which holds the lock).
  const id = env.journal.step('guarded')!.guard!.revertId!;
  const { disarmRevert } = await import('../../src/engine/revert/index.ts');
  const started = Date.now();
  assert.deepEqual(await disarmRevert(new LocalExec(), new LocalFiles(), id, { stateDir: path.join(env.dir, 'state'), unitDir: path.join(env.dir, 'units') }), { disarmed: true });
  const [r] = await running;
  assert.ok(Date.now() - started < 3000, 'the wait ended well before the deadline');
  assert.equal(r!.outcome, 'verified');
  assert.equal(r!.checks!.at(-1)!.label, 'access confirmed from a new session');
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'hardened\n');
});

test('run again while a change awaits confirmation: headless says so; the wizard resumes the countdown and a login keeps it', { skip }, async (t) => {
  const env = await setup(t);
  const step = guardedStep(env.dir, { seconds: 6, login: { who: 'alice from 192.0.2.1', afterMs: 200 } });
  const [first] = await run(step, env, operator(undefined));
  assert.equal(first!.outcome, 'awaiting-confirmation');
  const [again] = await run(step, env, operator(undefined));
  assert.equal(again!.outcome, 'awaiting-confirmation');
  assert.match(again!.reason!, /^applied earlier; confirm from a new session before \S+ \(pve-baseline confirm\), or the node reverts$/);
  const seen: AccessRequest[] = [];
  const [resumed] = await run(step, env, operator('await-proof', seen));
  assert.equal(seen.length, 1, 'the countdown was shown again');
  assert.equal(resumed!.outcome, 'verified', resumed!.reason);
  assert.deepEqual(resumed!.checks!.at(-1), { label: 'a new login proved access', ok: true, detail: 'alice from 192.0.2.1' });
  await wait(6500);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'hardened\n', 'kept past the deadline');
  assert.equal(env.journal.status('guarded'), 'verified');
});

const phasesOf = (events: RunnerEvent[]) => events.flatMap((e) => (e.type === 'guard-phase' ? [e.phase] : []));

test('every phase of the lockout protocol is journaled and announced, in order; the plan carries its revert', { skip }, async (t) => {
  const env = await setup(t);
  const events: RunnerEvent[] = [];
  const [r] = await run(guardedStep(env.dir, { seconds: 30 }), env, operator('skip'), events);
  assert.equal(r!.outcome, 'verified', r!.reason);
  assert.deepEqual(phasesOf(events), ['backed-up', 'armed', 'written', 'checked', 'active', 'proven', 'kept']);
  const guard = env.journal.step('guarded')!.guard!;
  assert.deepEqual(guard.phases.map((p) => p.phase), phasesOf(events), 'the journal holds what the events said');
  assert.equal(guard.phase, 'kept');
  assert.match(guard.revertId!, /guarded/);
  assert.deepEqual(env.journal.step('guarded')!.proof?.by, 'console');
  const planned = events.find((e) => e.type === 'step-planned');
  assert.ok(planned?.type === 'step-planned');
  assert.deepEqual(planned.plan.guard, { windowSeconds: 30, activation: 'on-reload', revertRuns: [['touch', path.join(env.dir, 'reloaded')]], cleanup: [] });
});

test('a file that goes live when written: checked on the intended content before the write; a refusal never writes it', { skip }, async (t) => {
  const env = await setup(t);
  const seen: [string, string | null][] = [];
  const events: RunnerEvent[] = [];
  const [refused] = await run(
    guardedStep(env.dir, { activates: true, onCheck: (disk, intended) => seen.push([disk, intended]), pre: [{ label: 'the rules keep port 22 open', ok: false }] }),
    env,
    operator('skip'),
    events,
  );
  assert.equal(refused!.outcome, 'failed');
  assert.match(refused!.reason!, /refused before activating: the rules keep port 22 open/);
  assert.deepEqual(seen, [['original\n', 'hardened\n']], 'the check saw the old file on disk and the new content from the plan');
  assert.deepEqual(phasesOf(events), ['backed-up', 'armed', 'reverted']);
  assert.equal(await readFile(path.join(env.dir, 'sshd.conf'), 'utf8'), 'original\n');
  assert.ok(!existsSync(path.join(env.dir, 'reloaded')), 'nothing went live, so the revert reloaded nothing');

  const kept: RunnerEvent[] = [];
  const [r] = await run(guardedStep(env.dir, { activates: true, seconds: 30 }), env, operator('skip'), kept);
  assert.equal(r!.outcome, 'verified', r!.reason);
  assert.deepEqual(phasesOf(kept), ['backed-up', 'armed', 'checked', 'written', 'active', 'proven', 'kept']);
  const planned = kept.find((e) => e.type === 'step-planned');
  assert.equal(planned?.type === 'step-planned' && planned.plan.guard?.activation, 'on-write');
});

test('each arming has its own revert id, so a resumed or repeated apply never shares a timer with an older one', { skip }, async (t) => {
  const env = await setup(t);
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const [r] = await run(guardedStep(env.dir, {}), env, operator('refuse'));
    assert.equal(r!.outcome, 'failed');
    ids.push(env.journal.step('guarded')!.guard!.revertId!);
  }
  assert.notEqual(ids[0], ids[1]);
});

test("a confirmation that comes after the node's revert FAILED keeps the record of what to undo", { skip }, async (t) => {
  const env = await setup(t);
  const state = path.join(env.dir, 'state');
  const op: Operator = {
    answer: async () => {
      throw new Error('no questions');
    },
    review: async () => 'apply',
    // The person proves access only after the node's own revert has run (and failed).
    confirmAccess: async (r) => {
      const id = env.journal.step('guarded')!.guard!.revertId!;
      // Break the revert: its backup copy is gone, so it cannot restore and records FAILED.
      const copy = env.journal.step('guarded')!.applied.find((a) => a.kind === 'file')!;
      if (copy.kind === 'file' && copy.backup.copy) await writeFile(copy.backup.copy, 'tampered\n');
      const result = path.join(state, 'revert', `${id}.result`);
      while (!existsSync(result) && Date.now() < r.deadline + 15_000) await wait(50);
      return { kind: 'proven', proof: { by: 'login', detail: 'alice, too late' } };
    },
  };
  const [r] = await run(guardedStep(env.dir, { seconds: 1 }), env, op);
  assert.equal(r!.outcome, 'failed');
  assert.equal(r!.rolledBack, false);
  assert.match(r!.reason!, /has not finished: FAILED at/);
  assert.ok(env.journal.step('guarded')!.applied.length > 0, 'pve-baseline revert guarded still has what it needs');
});

/** A step whose changes are commands that write files through a program (as pvesh writes /etc/pve): a staged one, then the one that makes it live. */
function commandStep(dir: string, o: { pre?: Check[]; seconds?: number; reloadFails?: boolean; onCheck?: (staged: string, live: string) => void }): Step<{ staged: string | null; live: string | null }> {
  const staged = path.join(dir, 'ipset.fw');
  const live = path.join(dir, 'cluster.fw');
  return {
    id: 'commands',
    title: 'Guarded commands',
    summary: 'x',
    scope: 'node',
    risk: 'lockout',
    guard: {
      reload: [o.reloadFails ? ['false'] : ['touch', path.join(dir, 'reloaded')]],
      lastResort: [['touch', path.join(dir, 'last-resort')]],
      seconds: o.seconds ?? 2,
      beforeActivate: async () => {
        o.onCheck?.(await readFile(staged, 'utf8'), await readFile(live, 'utf8'));
        return o.pre ?? [{ label: 'compile prints no warning', ok: true }];
      },
    },
    async probe(ctx) {
      return { staged: await ctx.files.read(staged), live: await ctx.files.read(live) };
    },
    plan: (facts) =>
      facts.live === 'enable: 1\n'
        ? []
        : [
            { kind: 'command', argv: ['cp', path.join(dir, 'new-ipset'), staged], writes: [{ path: staged, before: facts.staged, after: 'management\n' }], reason: 'stage the ipset' },
            { kind: 'command', argv: ['cp', path.join(dir, 'new-cluster'), live], writes: [{ path: live, before: facts.live, after: 'enable: 1\n' }], activates: true, reason: 'enable' },
          ],
    async verify() {
      return [{ label: 'on', ok: true }];
    },
  };
}

async function commandSetup(t: Parameters<typeof tempDir>[0]) {
  const env = await setup(t);
  await writeFile(path.join(env.dir, 'ipset.fw'), 'old ipset\n');
  await writeFile(path.join(env.dir, 'cluster.fw'), 'enable: 0\n');
  await writeFile(path.join(env.dir, 'new-ipset'), 'management\n');
  await writeFile(path.join(env.dir, 'new-cluster'), 'enable: 1\n');
  return env;
}

test('commands that write files: the staged one runs before the checks, the live one after; a refusal puts the staged file back', { skip }, async (t) => {
  const env = await commandSetup(t);
  const seen: [string, string][] = [];
  const events: RunnerEvent[] = [];
  const [refused] = await run(commandStep(env.dir, { onCheck: (s, l) => seen.push([s, l]), pre: [{ label: 'compile prints no warning', ok: false }] }), env, operator('skip'), events);
  assert.equal(refused!.outcome, 'failed');
  assert.deepEqual(seen, [['management\n', 'enable: 0\n']], 'the checks saw the staged file written and the live one untouched');
  assert.deepEqual(phasesOf(events), ['backed-up', 'armed', 'written', 'reverted']);
  assert.equal(await readFile(path.join(env.dir, 'ipset.fw'), 'utf8'), 'old ipset\n', 'the staged file is back byte for byte');
  assert.equal(await readFile(path.join(env.dir, 'cluster.fw'), 'utf8'), 'enable: 0\n');

  const kept: RunnerEvent[] = [];
  const [r] = await run(commandStep(env.dir, { seconds: 30 }), env, operator('skip'), kept);
  assert.equal(r!.outcome, 'verified', r!.reason);
  assert.deepEqual(phasesOf(kept), ['backed-up', 'armed', 'written', 'checked', 'active', 'proven', 'kept']);
  const planned = kept.find((e) => e.type === 'step-planned');
  assert.ok(planned?.type === 'step-planned');
  assert.equal(planned.plan.guard?.activation, 'on-write');
  assert.deepEqual(planned.plan.guard?.lastResort, [['touch', path.join(env.dir, 'last-resort')]]);
  const files = env.journal.step('commands')!.applied.flatMap((a) => (a.kind === 'file' ? [a.path] : []));
  assert.deepEqual(files.sort(), [path.join(env.dir, 'cluster.fw'), path.join(env.dir, 'ipset.fw')], 'both written files are backed up, for revert STEP later');
});

test('a command whose file changed since the plan is not run, and nothing changes', { skip }, async (t) => {
  const env = await commandSetup(t);
  const step = commandStep(env.dir, {});
  const edited: Step<any> = {
    ...step,
    async probe(ctx) {
      const facts = await step.probe(ctx);
      await writeFile(path.join(env.dir, 'cluster.fw'), 'enable: 0\n# edited in the web UI meanwhile\n');
      return facts;
    },
  };
  const [r] = await run(edited, env, operator('skip'));
  assert.equal(r!.outcome, 'failed');
  assert.match(r!.reason!, /cluster\.fw changed since the plan was made; nothing was run/);
  assert.equal(await readFile(path.join(env.dir, 'ipset.fw'), 'utf8'), 'old ipset\n');
  assert.equal(await readFile(path.join(env.dir, 'cluster.fw'), 'utf8'), 'enable: 0\n# edited in the web UI meanwhile\n');
});

test('the last resort runs only when the normal way back fails', { skip }, async (t) => {
  const env = await commandSetup(t);
  const [ok] = await run(commandStep(env.dir, { pre: [{ label: 'x', ok: false }] }), env, operator('skip'));
  assert.equal(ok!.outcome, 'failed');
  assert.ok(!existsSync(path.join(env.dir, 'last-resort')), 'a revert that worked needs no last resort');

  // Live, then refused at the countdown: the reload fails, so the last resort runs.
  const [r] = await run(commandStep(env.dir, { reloadFails: true }), env, operator('refuse'));
  assert.equal(r!.outcome, 'failed');
  assert.ok(existsSync(path.join(env.dir, 'last-resort')), 'the failed reload set off the last resort');
  assert.equal(await readFile(path.join(env.dir, 'cluster.fw'), 'utf8'), 'enable: 0\n');
});
