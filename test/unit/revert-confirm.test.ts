/**
 * `pve-baseline confirm` proves access only from a new login: it refuses the
 * session that applied the change, a session with no SSH connection and no
 * terminal, and a change not yet live; when the node's revert wins the race
 * it says what the revert did, and it never erases the record of what was
 * applied unless the change was kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { confirmCommand } from '../../src/cli/commands/confirm.ts';
import type { Runtime } from '../../src/cli/runtime.ts';
import { Journal } from '../../src/engine/journal.ts';
import {
  armRevert,
  confirmFromSession,
  currentSession,
  markActivated,
  renderRevertScript,
  REVERT_RUNNING,
  revertPaths,
  type RevertSession,
} from '../../src/engine/revert/index.ts';
import type { Exec, ExecResult } from '../../src/system/exec.ts';
import { LocalFiles, type Files } from '../../src/system/files.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { testNode } from '../fixtures/node.ts';
import { tempDir } from '../fixtures/temp.ts';

const STATE = '/var/lib/pve-baseline';
const UNITS = '/test/units';

const APPLIED: RevertSession = { auditSession: '5', sshConnection: '192.0.2.50 51000 192.0.2.10 22', tty: '136:0' };
const NEW_LOGIN: RevertSession = { auditSession: '9', sshConnection: '192.0.2.50 51234 192.0.2.10 22', tty: '136:1' };

function fakeExec(): Exec & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    async run(argv) {
      calls.push([...argv]);
      return { argv: [...argv], exitCode: 0, stdout: '', stderr: '' } satisfies ExecResult;
    },
  };
}

async function armed(files: Files, id: string, stateDir = STATE, unitDir = UNITS): Promise<void> {
  const script = renderRevertScript({ id, backups: [], reload: [['systemctl', 'reload', 'ssh']], stateDir, unitDir });
  await armRevert(fakeExec(), files, { id, script, seconds: 120, stateDir, unitDir, session: APPLIED });
}

test('currentSession: the audit session, the terminal, and the SSH connection of the nearest ancestor that has one (sudo clears it)', async () => {
  const stat = (pid: number, comm: string, ppid: number, ttyNr: number) => `${pid} (${comm}) S ${ppid} ${pid} ${pid} ${ttyNr} -1 4194560 100 0\n`;
  const proc = new MemoryFiles({
    '/proc/self/sessionid': '7',
    '/proc/self/stat': stat(300, 'node (pve) x)', 200, 34817),
    '/proc/200/environ': 'HOME=/root\0USER=root\0',
    '/proc/200/stat': stat(200, 'sudo', 100, 34817),
    '/proc/100/environ': 'SSH_CONNECTION=192.0.2.50 51234 192.0.2.10 22\0SSH_TTY=/dev/pts/1\0',
    '/proc/100/stat': stat(100, 'bash', 1, 34817),
  });
  assert.deepEqual(await currentSession(proc, { env: {} }), { auditSession: '7', sshConnection: '192.0.2.50 51234 192.0.2.10 22', tty: '136:1' });
  // cron: no audit session set, no terminal, no SSH anywhere up the tree
  const cron = new MemoryFiles({
    '/proc/self/sessionid': '4294967295',
    '/proc/self/stat': stat(300, 'pve-baseline', 250, 0),
    '/proc/250/environ': 'PATH=/usr/bin\0',
    '/proc/250/stat': stat(250, 'cron', 1, 0),
  });
  assert.deepEqual(await currentSession(cron, { env: {} }), { auditSession: null, sshConnection: null, tty: null });
  assert.equal((await currentSession(cron, { env: { SSH_CONNECTION: '10.0.0.1 1 10.0.0.2 22' } })).sshConnection, '10.0.0.1 1 10.0.0.2 22');
});

test('confirmFromSession refuses the applying session, cron, and a change not yet live; a new login keeps it', async () => {
  const files = new MemoryFiles();
  const id = 'c-1';
  await armed(files, id);
  const p = revertPaths(STATE, id);
  const exec = fakeExec();
  const refusals: [RevertSession, RegExp][] = [
    [{ ...NEW_LOGIN, auditSession: APPLIED.auditSession }, /this is the login that applied the change \(audit session 5\)/],
    [{ ...NEW_LOGIN, sshConnection: APPLIED.sshConnection }, /this is the SSH connection that applied the change/],
    [{ auditSession: '11', sshConnection: null, tty: null }, /neither an SSH connection nor a terminal \(a cron job or a service\)/],
    [NEW_LOGIN, /the change is not active yet/],
  ];
  for (const [session, reason] of refusals) {
    const r = await confirmFromSession(exec, files, id, session, { stateDir: STATE, unitDir: UNITS });
    assert.equal(r.kind, 'refused');
    assert.match((r as { reason: string }).reason, reason);
    assert.notEqual(await files.read(p.marker), null, 'still pending: the node still reverts it');
    assert.equal(await files.read(p.result), null);
  }
  await markActivated(files, id, { stateDir: STATE });
  assert.deepEqual(await confirmFromSession(exec, files, id, NEW_LOGIN, { stateDir: STATE, unitDir: UNITS }), { kind: 'kept' });
  assert.equal(await files.read(p.marker), null);
  assert.match((await files.read(p.result))!, /^disarmed at /);
});

test('confirmFromSession after the revert claimed the change reports what it did: reverted, FAILED, or still running', async () => {
  for (const [result, expected] of [
    ['reverted at 2026-12-01T02:00:00Z (timer)\n', 'reverted at 2026-12-01T02:00:00Z (timer)'],
    ['FAILED at 2026-12-01T02:00:00Z (timer):\n/etc/ssh/sshd_config: cannot move the restored copy into place\n', 'FAILED at 2026-12-01T02:00:00Z (timer):\n/etc/ssh/sshd_config: cannot move the restored copy into place'],
    [null, REVERT_RUNNING],
  ] as const) {
    const files = new MemoryFiles();
    const id = 'race-1';
    await armed(files, id);
    await markActivated(files, id, { stateDir: STATE });
    const p = revertPaths(STATE, id);
    // The timer claimed it first (what revert.sh does with rename(2)).
    await files.rename(p.marker, p.firing);
    if (result) await files.write(p.result, result);
    assert.deepEqual(await confirmFromSession(fakeExec(), files, id, NEW_LOGIN, { stateDir: STATE, unitDir: UNITS }), { kind: 'lost', result: expected });
  }
});

interface Setup {
  runtime: Runtime;
  journal: Journal;
  id: string;
  state: string;
  units: string;
  exec: ReturnType<typeof fakeExec>;
}

/** A guarded step applied and armed in a temp state dir, as the engine leaves it awaiting confirmation. */
async function setup(t: { after(fn: () => unknown): void }, activated = true): Promise<Setup> {
  const dir = await tempDir(t, 'pve-baseline-confirm-');
  const state = path.join(dir, 'state');
  const units = path.join(dir, 'units');
  const files = new LocalFiles();
  const id = 'guarded-apply-1-abcd1234';
  await armed(files, id, state, units);
  if (activated) await markActivated(files, id, { stateDir: state });
  const journal = Journal.open(state, 'boot-1');
  journal.setStatus('guarded', 'applying', { applyId: 'apply-1' });
  journal.recordApplied('guarded', {
    kind: 'file',
    path: '/etc/ssh/sshd_config.d/00-pve-baseline.conf',
    backup: { path: '/etc/ssh/sshd_config.d/00-pve-baseline.conf', existed: false, takenAt: '2026-12-01T02:00:00.000Z' },
  });
  journal.setGuard('guarded', 'backed-up');
  journal.setGuard('guarded', 'armed', { revertId: id });
  journal.setStatus('guarded', 'applied');
  const exec = fakeExec();
  const runtime: Runtime = { exec, files, node: { ...testNode, isRoot: true }, stateDir: state, backupsDir: path.join(state, 'backups') };
  return { runtime, journal, id, state, units, exec };
}

async function confirm(s: Setup, session: RevertSession): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await confirmCommand(s.runtime, { out: (l) => out.push(l), err: (l) => err.push(l) }, { unitDir: s.units, session });
  return { code, out, err };
}

test('confirm after the node revert FAILED keeps the record of what was applied, so pve-baseline revert can still undo it (defect 8)', async (t) => {
  const s = await setup(t);
  const p = revertPaths(s.state, s.id);
  await fs.rename(p.marker, p.firing);
  await fs.writeFile(p.result, 'FAILED at 2026-12-01T02:03:00Z (timer):\n/etc/ssh/sshd_config: cannot move the restored copy into place\n');
  const r = await confirm(s, NEW_LOGIN);
  assert.equal(r.code, 1);
  assert.deepEqual(r.out, []);
  assert.match(r.err.join('\n'), /too late for guarded: the node's revert claimed it and has not finished \(FAILED at 2026-12-01T02:03:00Z \(timer\):\); .*pve-baseline revert guarded can undo it/);
  const after = Journal.open(s.state, 'boot-1').step('guarded')!;
  assert.equal(after.status, 'applied');
  assert.equal(after.applied.length, 1, 'the undo record stays');
});

test('confirm losing the race to a revert still running, or one that FAILED just now, leaves the journal alone and says so', async (t) => {
  for (const result of [null, 'FAILED at 2026-12-01T02:03:00Z (timer):\nreload failed\n']) {
    const s = await setup(t);
    const p = revertPaths(s.state, s.id);
    // The claim happens between confirm listing the pending revert and disarming it.
    const rename = s.runtime.files.rename.bind(s.runtime.files);
    let claimed = false;
    s.runtime.files.rename = async (from, to) => {
      if (!claimed && from === p.marker) {
        claimed = true;
        await rename(p.marker, p.firing);
        if (result) await fs.writeFile(p.result, result);
      }
      return rename(from, to);
    };
    const r = await confirm(s, NEW_LOGIN);
    assert.equal(r.code, 1);
    assert.doesNotMatch(r.out.join('\n'), /the change stays/);
    assert.match(r.err.join('\n'), result ? /claimed it and FAILED[\s\S]*reload failed[\s\S]*run pve-baseline revert guarded to finish the undo/ : /is still running; run pve-baseline status/);
    const after = Journal.open(s.state, 'boot-1').step('guarded')!;
    assert.equal(after.status, 'applied');
    assert.equal(after.applied.length, 1);
  }
});

test('confirm from the session that applied the change, or from cron, is refused with exit 2 and changes nothing (defect 9)', async (t) => {
  for (const session of [APPLIED, { auditSession: '12', sshConnection: null, tty: null }]) {
    const s = await setup(t);
    const r = await confirm(s, session);
    assert.equal(r.code, 2);
    assert.match(r.err.join('\n'), /^pve-baseline: not confirmed: guarded: .*Nothing was changed; the node reverts it at \S+ unless a new login confirms it\.$/);
    assert.notEqual(await s.runtime.files.read(revertPaths(s.state, s.id).marker), null);
    assert.equal(Journal.open(s.state, 'boot-1').status('guarded'), 'applied');
  }
});

test('confirm before the change is live is refused', async (t) => {
  const s = await setup(t, false);
  const r = await confirm(s, NEW_LOGIN);
  assert.equal(r.code, 2);
  assert.match(r.err.join('\n'), /the change is not active yet/);
});

test('confirm from a new login keeps the change and records it', async (t) => {
  const s = await setup(t);
  const r = await confirm(s, NEW_LOGIN);
  assert.equal(r.code, 0, r.err.join('\n'));
  assert.match(r.out.join('\n'), /^Confirmed guarded: the change stays; the revert set for \S+ is disarmed\.$/);
  assert.equal(Journal.open(s.state, 'boot-1').status('guarded'), 'verified');
  assert.deepEqual(s.exec.calls.filter((c) => c[0] === 'systemctl'), [], 'a temp unit dir: no systemctl');
});

test('confirm with a damaged revert index says so, still sees the pending marker, and refuses (the applying session is unknown)', async (t) => {
  const s = await setup(t);
  await fs.writeFile(revertPaths(s.state, s.id).index, '[{"id": ');
  const r = await confirm(s, NEW_LOGIN);
  assert.equal(r.code, 2);
  assert.match(r.err[0]!, /^pve-baseline: the revert index .*armed\.json is damaged \(not valid JSON/);
  assert.match(r.err.join('\n'), /not confirmed: guarded: .*the session that applied the change is unknown/);
});
