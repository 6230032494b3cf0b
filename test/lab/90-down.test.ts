/**
 * Everything the lab starts is stopped by `down`: no namespace, veth, mount or
 * process is left behind (this file runs last and leaves the lab down).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labOrSkip } from './helpers.ts';
import { alive, down, leftovers, status } from './lab.ts';
import { run } from './sh.ts';
import { HOST_IF } from './config.ts';

const lab = await labOrSkip();

if (lab) {
  test('down stops the node, its supervisor, the mount, the namespace and the veth pair', async () => {
    const before = await status();
    assert.ok(before.running);
    const pids = [before.supervisorPid, before.nspawnPid, before.leaderPid];
    assert.ok(pids.every((p) => typeof p === 'number'));
    const before2 = await leftovers();
    assert.ok(before2.netns && before2.veth && before2.mounts.length > 0 && before2.processes.length > 0, 'leftovers() sees a running lab');

    const t0 = performance.now();
    await down();
    process.stderr.write(`lab: down took ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);

    for (const pid of pids) assert.ok(!alive(pid), `pid ${pid} still alive`);
    assert.deepEqual(await leftovers(), { netns: false, veth: false, mounts: [], processes: [] });
    assert.equal((await run('ip', ['netns', 'list'])).stdout.includes('pve-baseline-lab'), false);
    assert.notEqual((await run('ip', ['link', 'show', HOST_IF])).exitCode, 0);
    assert.equal((await status()).running, false);
  });

  test('down again is a no-op', async () => {
    await down();
    assert.deepEqual(await leftovers(), { netns: false, veth: false, mounts: [], processes: [] });
  });
}
