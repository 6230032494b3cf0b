/**
 * The revert's record of what is armed: written before anything is armed,
 * one arming per id, never trusted blindly (a damaged index is reported and
 * the markers on the node stay the truth), and the wait for a confirmation
 * from another session holds one abort listener however long it waits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  armRevert,
  confirmedElsewhere,
  newRevertId,
  pendingReverts,
  renderRevertScript,
  revertIdOf,
  RevertIndexError,
  revertPaths,
} from '../../src/engine/revert/index.ts';
import type { Exec, ExecResult } from '../../src/system/exec.ts';
import { LocalFiles } from '../../src/system/files.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { never, tempDir } from '../fixtures/temp.ts';

const STATE = '/var/lib/pve-baseline';
const UNITS = '/test/units';

/** An exec that answers systemd-run (or never answers it) and records every argv. */
function fakeExec(systemdRun: 'ok' | 'hangs' | 'fails' = 'ok'): Exec & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    async run(argv) {
      calls.push([...argv]);
      const result = (exitCode: number, stderr = ''): ExecResult => ({ argv: [...argv], exitCode, stdout: '', stderr });
      if (argv[0] === 'systemd-run') {
        if (systemdRun === 'hangs') return never();
        return systemdRun === 'ok' ? result(0) : result(1, 'no systemd');
      }
      if (argv[0] === 'setsid') return systemdRun === 'fails' ? result(1, 'setsid: cannot fork') : result(0);
      return result(0);
    },
  };
}

/** Files that record the order in which paths were written. */
function recordingFiles(): MemoryFiles & { order: string[] } {
  const files = new MemoryFiles() as MemoryFiles & { order: string[] };
  files.order = [];
  const write = files.write.bind(files);
  files.write = async (file, content, options) => {
    files.order.push(file);
    await write(file, content, options);
  };
  return files;
}

const data = (id: string, stateDir = STATE) => renderRevertScript({ id, backups: [], reload: [['systemctl', 'reload', 'ssh']], stateDir, unitDir: UNITS });

test('newRevertId: a fresh id per arming, from the apply id, always a valid id', () => {
  const applyId = '2026-12-01T02-00-00-000Z-sshd-hardening-ab12';
  const a = newRevertId(applyId);
  const b = newRevertId(applyId);
  assert.notEqual(a, b);
  for (const id of [a, b]) assert.match(id, new RegExp(`^${revertIdOf(applyId)}-[0-9a-f]{8}$`));
  const long = newRevertId('x'.repeat(300));
  assert.ok(long.length <= 120 && /^[A-Za-z0-9_-]+$/.test(long), long);
});

test('record first, arm second: the index entry is written before the marker and the timer', async () => {
  const files = recordingFiles();
  const id = 'order-1';
  const p = revertPaths(STATE, id);
  await armRevert(fakeExec(), files, { id, script: data(id), seconds: 60, stateDir: STATE, unitDir: UNITS });
  const at = (file: string) => files.order.indexOf(file);
  assert.ok(at(p.index) >= 0 && at(p.marker) >= 0);
  assert.ok(at(p.index) < at(p.script) && at(p.index) < at(p.marker), files.order.join('\n'));
  assert.ok(at(p.script) < at(p.marker) && at(p.data) < at(p.marker), 'the program and its data exist before the marker');
});

test('killed after the marker and before the timer started: status and confirm still see it', async () => {
  const files = new MemoryFiles();
  const id = 'killed-1';
  // systemd-run never answers: as if the process were killed while starting the timer.
  void armRevert(fakeExec('hangs'), files, { id, script: data(id), seconds: 60, stateDir: STATE, unitDir: UNITS, now: () => 1_000_000 });
  for (let i = 0; i < 50 && (await files.read(revertPaths(STATE, id).marker)) === null; i++) await new Promise((r) => setImmediate(r));
  const pending = await pendingReverts(files, { stateDir: STATE, now: () => 1_000_000 });
  assert.deepEqual(
    pending.map((x) => ({ id: x.id, state: x.state, armedWith: x.armedWith, indexed: x.indexed, secondsLeft: x.secondsLeft })),
    [{ id, state: 'pending', armedWith: 'none', indexed: true, secondsLeft: 60 }],
  );
});

test('an id is armed once: an index entry, a marker, a claimed marker or a result of it refuses a second arming', async () => {
  const id = 'twice-1';
  const p = revertPaths(STATE, id);
  const armed = new MemoryFiles();
  await armRevert(fakeExec(), armed, { id, script: data(id), stateDir: STATE, unitDir: UNITS });
  await assert.rejects(armRevert(fakeExec(), armed, { id, script: data(id), stateDir: STATE, unitDir: UNITS }), new RegExp(`the revert ${id} was armed before \\(${p.index} lists it\\)`));
  for (const [file, what] of [
    [p.marker, 'pending marker'],
    [p.firing, 'claimed marker'],
    [p.result, 'result'],
  ] as const) {
    const files = new MemoryFiles({ [file]: 'x\n' });
    const exec = fakeExec();
    await assert.rejects(armRevert(exec, files, { id, script: data(id), stateDir: STATE, unitDir: UNITS }), { message: `the revert ${id} was armed before: its ${what} ${file} exists; each arming needs a new id` });
    assert.deepEqual(exec.calls, [], 'nothing was armed');
  }
});

test('nothing armed: the index entry and the marker go again, and the error says why', async () => {
  const files = new MemoryFiles();
  const id = 'fails-1';
  await assert.rejects(armRevert(fakeExec('fails'), files, { id, script: data(id), stateDir: STATE, unitDir: UNITS }), /could not arm the revert of fails-1: systemd-run failed \(no systemd\); using a setsid sleeper; setsid: setsid: cannot fork/);
  assert.equal(await files.read(revertPaths(STATE, id).marker), null);
  assert.deepEqual(await pendingReverts(files, { stateDir: STATE }), []);
  assert.equal(await files.read(revertPaths(STATE, id).index), '[]\n');
});

test('armRevert takes only the data renderRevertScript made for that id', async () => {
  await assert.rejects(armRevert(fakeExec(), new MemoryFiles(), { id: 'a-1', script: data('b-1'), stateDir: STATE, unitDir: UNITS }), /not what renderRevertScript made for this id/);
  await assert.rejects(armRevert(fakeExec(), new MemoryFiles(), { id: 'a-1', script: '#!/bin/sh\nrm -rf /\n', stateDir: STATE, unitDir: UNITS }), /not what renderRevertScript made/);
});

const CORRUPT: [name: string, make: (file: string) => Promise<void>, reason: RegExp][] = [
  ['truncated JSON', (f) => fs.writeFile(f, '[{"id": "x-1", "deadline": 17'), /not valid JSON/],
  ['not an array', (f) => fs.writeFile(f, '{"id": "x-1"}\n'), /not a list of armed reverts/],
  ['entries of the wrong shape', (f) => fs.writeFile(f, '[{"id": "x-1", "deadline": "soon", "seconds": 1, "script": "/s"}]\n'), /entry x-1 has no valid deadline/],
  ['a bad id', (f) => fs.writeFile(f, '[{"id": "../../etc/passwd", "deadline": 1, "seconds": 1, "script": "/s"}]\n'), /entry 1 has no valid id/],
  ['huge', (f) => fs.writeFile(f, `[${' '.repeat(2 * 1024 * 1024)}]`), /larger than 1 MiB/],
  ['a symlink', (f) => fs.symlink('/etc/passwd', f), /a symbolic link/],
];

for (const [name, make, reason] of CORRUPT) {
  test(`a damaged revert index (${name}) is reported, never a crash; the markers stay the truth`, async (t) => {
    const dir = await tempDir(t, 'pve-baseline-index-');
    const p = revertPaths(dir, 'live-1');
    await fs.mkdir(p.pendingDir, { recursive: true });
    await make(p.index);
    await fs.writeFile(p.marker, JSON.stringify({ id: 'live-1', deadline: 5_000 }));
    const files = new LocalFiles();
    const pending = await pendingReverts(files, { stateDir: dir, now: () => 0 });
    assert.ok(pending.indexError instanceof RevertIndexError);
    assert.match(pending.indexError.message, reason);
    assert.ok(pending.indexError.message.includes(p.index), 'names the file');
    assert.match(pending.indexError.message, /move it aside \(mv .*armed\.json .*armed\.json\.damaged\)/);
    assert.deepEqual(
      pending.map((x) => ({ id: x.id, state: x.state, indexed: x.indexed, deadline: x.deadline, secondsLeft: x.secondsLeft })),
      [{ id: 'live-1', state: 'pending', indexed: false, deadline: 5_000, secondsLeft: 5 }],
    );
    // Nothing new is armed on top of a damaged record.
    const exec = fakeExec();
    await assert.rejects(armRevert(exec, files, { id: 'new-1', script: data('new-1', dir), stateDir: dir, unitDir: path.join(dir, 'units') }), RevertIndexError);
    assert.deepEqual(exec.calls, []);
  });
}

test('confirmedElsewhere holds one abort listener for a 30-minute wait and removes it (no real time passes)', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const files = new MemoryFiles();
  const stop = new AbortController();
  const id = 'wait-1';
  let settled: string | null | undefined;
  const waiting = confirmedElsewhere(files, id, { stateDir: STATE, signal: stop.signal, pollMs: 500 }).then((v) => (settled = v));
  const flush = () => new Promise((r) => setImmediate(r));
  await flush();
  let most = 0;
  for (let i = 0; i < 3600; i++) {
    t.mock.timers.tick(500);
    await flush();
    most = Math.max(most, getEventListeners(stop.signal, 'abort').length);
  }
  assert.equal(settled, undefined, 'still waiting');
  assert.equal(most, 1, 'one listener for the whole wait');
  await files.write(revertPaths(STATE, id).result, 'disarmed at 2026-12-01T02:30:00.000Z (confirmed)\n');
  t.mock.timers.tick(500);
  await waiting;
  assert.equal(settled, '2026-12-01T02:30:00.000Z');
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0, 'removed when the wait ends');

  // Aborted: resolves null at once and leaves no listener either.
  const other = new AbortController();
  const aborted = confirmedElsewhere(files, 'wait-2', { stateDir: STATE, signal: other.signal });
  await flush();
  other.abort();
  assert.equal(await aborted, null);
  assert.equal(getEventListeners(other.signal, 'abort').length, 0);
});

test('a FIFO, a directory or a dangling link at the index is damage too, and never hangs the reader', async (t) => {
  const dir = await tempDir(t, 'pve-baseline-index-');
  const p = revertPaths(dir, 'x');
  await fs.mkdir(p.dir, { recursive: true });
  const { execFileSync } = await import('node:child_process');
  for (const [make, reason] of [
    [() => execFileSync('mkfifo', [p.index]), /not a regular file \(a named pipe/],
    [() => fs.mkdir(p.index), /not a regular file \(a directory\)/],
    [() => fs.symlink(path.join(dir, 'nowhere'), p.index), /a symbolic link/],
    [() => fs.writeFile(p.index, JSON.stringify([{ id: 'a-1', deadline: 1, seconds: 1, script: '/etc/shadow' }])), /entry a-1 names a program other than .*a-1\.sh/],
  ] as const) {
    await fs.rm(p.index, { recursive: true, force: true });
    await make();
    const pending = await pendingReverts(new LocalFiles(), { stateDir: dir });
    assert.match(pending.indexError?.message ?? 'not reported', reason);
  }
});
