import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireLock, type LockOwner } from '../../src/engine/lock.ts';
import { modeOf, tempDir } from '../fixtures/temp.ts';

async function readLock(dir: string): Promise<LockOwner> {
  return JSON.parse(await fs.readFile(path.join(dir, 'lock'), 'utf8')) as LockOwner;
}

async function writeLock(dir: string, owner: LockOwner): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'lock'), JSON.stringify(owner));
}

/** A real, live process other than this one. */
async function liveProcess(t: { after(fn: () => unknown): void }) {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await once(child, 'spawn');
  return child;
}

describe('acquireLock', () => {
  it('takes a free lock: a 0600 file naming this process, removed on release', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    const lock = acquireLock(dir, 'boot-1', 'pve-baseline apply');
    assert.equal(lock.ok, true);
    assert.ok(lock.ok);
    assert.equal(lock.staleNote, undefined);
    const owner = await readLock(dir);
    assert.equal(owner.pid, process.pid);
    assert.equal(owner.bootId, 'boot-1');
    assert.equal(owner.command, 'pve-baseline apply');
    assert.ok(!Number.isNaN(Date.parse(owner.startedAt)));
    assert.equal(modeOf(await fs.stat(path.join(dir, 'lock'))), 0o600);
    assert.equal(modeOf(await fs.stat(dir)), 0o700);
    lock.release();
    await assert.rejects(fs.stat(path.join(dir, 'lock')), { code: 'ENOENT' });
    const again = acquireLock(dir, 'boot-1', 'x');
    assert.ok(again.ok, 'free again after release');
    again.release();
  });

  it('refuses a second acquire while held, naming the owner pid and command', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    const first = acquireLock(dir, 'boot-1', 'pve-baseline');
    assert.ok(first.ok);
    const second = acquireLock(dir, 'boot-1', 'pve-baseline check');
    assert.equal(second.ok, false);
    assert.ok(!second.ok);
    assert.equal(second.owner.pid, process.pid);
    assert.match(second.message, new RegExp(`^Another pve-baseline is running \\(pid ${process.pid}, "pve-baseline", started `));
    assert.match(second.message, /Only one may change this node at a time/);
    first.release();
  });

  it('refuses a lock held by another live process, then removes it as stale once that process is gone', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    const child = await liveProcess(t);
    const pid = child.pid!;
    await writeLock(dir, { pid, bootId: 'boot-1', startedAt: '2025-06-01T10:00:00.000Z', command: 'pve-baseline apply --answers a.yaml' });

    const held = acquireLock(dir, 'boot-1', 'pve-baseline');
    assert.ok(!held.ok);
    assert.equal(held.owner.pid, pid);
    assert.equal(
      held.message,
      `Another pve-baseline is running (pid ${pid}, "pve-baseline apply --answers a.yaml", started 2025-06-01T10:00:00.000Z). ` +
        'Only one may change this node at a time. Finish or stop that one first.',
    );
    assert.equal((await readLock(dir)).pid, pid, 'the lock of a live process is left alone');

    child.kill('SIGKILL');
    await once(child, 'exit'); // reaped: the pid no longer exists

    const taken = acquireLock(dir, 'boot-1', 'pve-baseline');
    assert.ok(taken.ok);
    assert.equal(
      taken.staleNote,
      `A stale lock from an earlier run (pid ${pid}, started 2025-06-01T10:00:00.000Z) was removed: process ${pid} is no longer running.`,
    );
    assert.equal((await readLock(dir)).pid, process.pid);
    taken.release();
  });

  it('treats a lock from another boot as stale, even when its pid is alive now', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    const child = await liveProcess(t);
    await writeLock(dir, { pid: child.pid!, bootId: 'boot-before-reboot', startedAt: 's', command: 'c' });
    const lock = acquireLock(dir, 'boot-now', 'pve-baseline');
    assert.ok(lock.ok);
    assert.equal(lock.staleNote, `A stale lock from an earlier run (pid ${child.pid}, started s) was removed: it was taken before the last reboot.`);
    assert.equal((await readLock(dir)).bootId, 'boot-now');
    lock.release();
  });

  it('removes an unreadable lock file and says so', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'lock'), 'not json');
    const lock = acquireLock(dir, 'boot-1', 'pve-baseline');
    assert.ok(lock.ok);
    assert.equal(lock.staleNote, 'An unreadable lock file was removed.');
    lock.release();
  });

  it('release does not remove a lock that another process has taken since', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    const child = await liveProcess(t);
    const lock = acquireLock(dir, 'boot-1', 'pve-baseline');
    assert.ok(lock.ok);
    await writeLock(dir, { pid: child.pid!, bootId: 'boot-1', startedAt: 's', command: 'other' });
    lock.release();
    assert.equal((await readLock(dir)).pid, child.pid);
  });

  it('of many processes starting at once, exactly one takes the lock, also over a stale one (60 rounds)', async (t) => {
    const dir = path.join(await tempDir(t), 'state');
    const starters = await startStarters(t, 6);
    for (let round = 0; round < 60; round++) {
      // Every other round a stale lock (taken before a reboot) is in the way: its takeover must be exclusive too.
      const stale = round % 2 === 1;
      if (stale) await writeLock(dir, { pid: 1, bootId: 'boot-before', startedAt: 's', command: 'c' });
      const at = Date.now() + 40;
      const results = await Promise.all(starters.map((s) => s.ask({ acquire: { dir, bootId: 'boot-1', at } })));
      const winners = results.filter((r) => r.ok);
      assert.equal(winners.length, 1, `round ${round}${stale ? ' (stale lock)' : ''}: ${JSON.stringify(results)}`);
      assert.equal((await readLock(dir)).pid, winners[0]!.pid, 'the lock names the winner');
      for (const r of results.filter((r) => !r.ok)) assert.match(String(r.message), /^Another pve-baseline is running \(pid \d+/);
      await Promise.all(starters.map((s) => s.ask({ release: true })));
      assert.deepEqual(await fs.readdir(dir), [], `round ${round}: no lock, claim or temp file is left`);
    }
  });
});

interface StarterReply {
  pid: number;
  ok?: boolean;
  message?: string;
}

/** Processes that take the lock when told (each at the same instant), and release it when told. */
async function startStarters(t: { after(fn: () => unknown): void }, count: number) {
  const lockModule = fileURLToPath(new URL('../../src/engine/lock.ts', import.meta.url));
  const code = `
    const { acquireLock } = await import(${JSON.stringify(lockModule)});
    let held = null;
    process.on('message', (m) => {
      if (m.acquire) {
        while (Date.now() < m.acquire.at); // start together: a busy wait, so no timer delays anyone
        try {
          held = acquireLock(m.acquire.dir, m.acquire.bootId, 'starter');
          process.send({ pid: process.pid, ok: held.ok, message: held.message });
        } catch (error) {
          process.send({ pid: process.pid, ok: false, message: 'threw ' + String(error) });
        }
      } else if (m.release) {
        if (held?.ok) held.release();
        held = null;
        process.send({ pid: process.pid });
      }
    });
    process.send({ pid: process.pid });`;
  const children: ChildProcess[] = [];
  t.after(() => {
    for (const child of children) child.kill('SIGKILL');
  });
  return Promise.all(
    Array.from({ length: count }, async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      await once(child, 'message');
      return {
        ask: async (message: object): Promise<StarterReply> => {
          const reply = once(child, 'message');
          child.send(message);
          return (await reply)[0] as StarterReply;
        },
      };
    }),
  );
}
