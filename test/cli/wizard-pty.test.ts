/**
 * The built wizard in a real pseudo-terminal (80x24), driven by keys and
 * signals as a person or a dropped link would. Nothing is ever applied on
 * this machine: the only key pressed on a plan is a refusal.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { ensureBundle } from '../support/bundle.ts';
import { KEYS, ptyEnv, runInPty, rawOutput, type PtyStep } from '../support/pty.ts';

let bundle: string;
before(async () => {
  bundle = await ensureBundle();
});

async function stateDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pve-baseline-pty-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'state');
}

function wizard(state: string, script: PtyStep[], extraEnv: Record<string, string> = {}, argv?: string[]) {
  return runInPty({ argv: argv ?? [process.execPath, bundle], env: ptyEnv({ PVE_BASELINE_STATE_DIR: state, ...extraEnv }), script });
}

const WELCOME: PtyStep = { waitFor: 'Nothing changes until you have seen the plan', timeoutMs: 10_000 };
const root = process.getuid?.() === 0;

test('q on the welcome screen leaves with exit 0 and says nothing changed', { skip: !root && 'the wizard needs root' }, async (t) => {
  const state = await stateDir(t);
  const r = await wizard(state, [WELCOME, { send: 'q' }, { waitExit: true }]);
  assert.equal(r.exitCode, 0, r.plain);
  assert.match(r.screen.join('\n'), /Left before any step ran: nothing was changed\./);
  assert.equal(r.screenClears, 0, 'the scrollback is never wiped');
  assert.equal(existsSync(path.join(state, 'lock')), false, 'the lock is released');
});

test('Ctrl+C on the welcome screen exits 130', { skip: !root && 'the wizard needs root' }, async (t) => {
  const state = await stateDir(t);
  const r = await wizard(state, [WELCOME, { send: KEYS.ctrlC }, { waitExit: true }]);
  assert.equal(r.exitCode, 130, r.plain);
});

test('Ctrl+C on a plan stops before applying: exit 130, journal consistent, nothing written', { skip: !root && 'the wizard needs root' }, async (t) => {
  const state = await stateDir(t);
  const r = await wizard(state, [WELCOME, { send: KEYS.enter }, { waitFor: 'Plan:', timeoutMs: 10_000 }, { send: KEYS.ctrlC }, { waitExit: true }]);
  assert.equal(r.exitCode, 130, r.plain);
  assert.match(r.plain, /Stopped/);
  const journal = JSON.parse(readFileSync(path.join(state, 'journal.json'), 'utf8'));
  assert.notEqual(journal.steps.sysctl?.status, 'applying');
  assert.notEqual(journal.steps.sysctl?.status, 'verified');
  assert.equal(existsSync(path.join(state, 'backups')), false, 'nothing was backed up, so nothing was changed');
});

test('a hangup at the plan review ends the wizard by SIGHUP, leaves a valid journal and no lock', { skip: !root && 'the wizard needs root' }, async (t) => {
  const state = await stateDir(t);
  const r = await wizard(state, [WELCOME, { send: KEYS.enter }, { waitFor: 'Plan:', timeoutMs: 10_000 }, { closePty: true }, { waitExit: true }]);
  // Killed by the signal's default action: a shell reports 129.
  assert.equal(r.signal, 'SIGHUP', `exit ${r.exitCode} signal ${r.signal}`);
  const journal = JSON.parse(readFileSync(path.join(state, 'journal.json'), 'utf8'));
  assert.equal(journal.schemaVersion, 1);
  assert.equal(existsSync(path.join(state, 'lock')), false);
  // And the next wizard starts normally.
  const again = await wizard(state, [WELCOME, { send: 'q' }, { waitExit: true }]);
  assert.equal(again.exitCode, 0, again.plain);
});

test('TERM=linux: the real terminal output uses only console-safe characters', { skip: !root && 'the wizard needs root' }, async (t) => {
  const state = await stateDir(t);
  const r = await wizard(state, [WELCOME, { send: KEYS.enter }, { waitFor: 'Plan:', timeoutMs: 10_000 }, { send: 'q' }, { waitExit: true }], { TERM: 'linux', LANG: 'en_US.UTF-8' });
  assert.equal(r.exitCode, 0, r.plain);
  const text = rawOutput(r).toString('utf8').replace(/\u001B\[[0-9;?]*[A-Za-z]|\u001B[78=>]|\u001B\][^\u0007]*\u0007/g, '');
  // ASCII, the middle dot, the ellipsis Ink truncates with, and box drawing: all in the console font.
  const offending = [...new Set([...text].filter((c) => !/[\u0000-\u007f\u00b7\u2026\u2500-\u257f]/.test(c)))];
  assert.deepEqual(offending, [], `characters the console font lacks: ${offending.join(' ')}`);
  assert.match(r.plain, /up\/down browse/);
});

test('the live region never outgrows an 80x24 terminal: no screen clears, header kept on the plan screen', { skip: !root && 'the wizard needs root' }, async (t) => {
  const state = await stateDir(t);
  const r = await wizard(state, [
    WELCOME,
    { snapshot: 'welcome' },
    { send: KEYS.enter },
    { waitFor: 'Plan:', timeoutMs: 10_000 },
    { send: KEYS.down.repeat(5) },
    { sleepMs: 300 },
    { snapshot: 'plan' },
    { send: 'q' },
    { waitExit: true },
  ]);
  assert.equal(r.screenClears, 0);
  const plan = r.snapshots.find((s) => s.name === 'plan')!.screen;
  assert.ok(plan.some((l) => /^Step \d+ of \d+ · Unattended security updates/.test(l)), plan.join('\n'));
  assert.ok(plan.some((l) => l.includes('enter apply · s skip this step · q stop here')), plan.join('\n'));
  assert.ok(plan.some((l) => /lines 6-\d+ of \d+/.test(l)), 'scrolled five lines');
});

test('not root: the wizard refuses with exit 4 and changes nothing', { skip: !root && 'needs root to drop to another user' }, async (t) => {
  const state = await stateDir(t);
  const r = await wizard(state, [{ waitExit: true }], {}, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, bundle]);
  assert.equal(r.exitCode, 4, r.plain);
  assert.match(r.plain, /must run as root; nothing was changed/);
  assert.equal(existsSync(state), false);
});

test('a second wizard is refused while one runs; a stale lock is explained and taken over', { skip: !root && 'the wizard needs root' }, async (t) => {
  const state = await stateDir(t);
  await mkdir(state, { recursive: true, mode: 0o700 });
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const holder = execa('sleep', ['30'], { reject: false });
  t.after(() => {
    holder.kill();
  });
  await writeFile(path.join(state, 'lock'), JSON.stringify({ pid: holder.pid, bootId, startedAt: '2026-11-22T10:00:00.000Z', command: 'wizard' }));
  const refused = await wizard(state, [{ waitExit: true }]);
  assert.equal(refused.exitCode, 3, refused.plain);
  assert.match(refused.plain, /Another pve-baseline is running/);

  holder.kill('SIGKILL');
  await holder;
  const resumed = await wizard(state, [WELCOME, { send: 'q' }, { waitExit: true }]);
  assert.equal(resumed.exitCode, 0, resumed.plain);
  assert.match(resumed.plain.replace(/\s+/g, ' '), new RegExp(`stale lock from an earlier run \\(pid ${holder.pid}, started 2026-11-22T10:00:00.000Z\\) was removed: process ${holder.pid} is no longer running`));
});
