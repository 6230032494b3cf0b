/** The command surface: `npm run lab -- status --json` and `exec` (exit code passed through). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { labOrSkip } from './helpers.ts';
import { LAB_DIR, REPO_ROOT } from './config.ts';

const lab = await labOrSkip();
const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(LAB_DIR, 'cli.ts'), ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });

if (lab) {
  test('status --json describes the running node', () => {
    const r = cli('status', '--json');
    assert.equal(r.status, 0, r.stderr);
    const st = JSON.parse(r.stdout) as { running: boolean; systemState: string; nodeAddress: string; hostname: string; images: { current: boolean } };
    assert.equal(st.running, true);
    assert.equal(st.systemState, 'running');
    assert.equal(st.nodeAddress, lab.nodeAddress);
    assert.equal(st.hostname, 'pve1');
    assert.equal(st.images.current, true);
  });

  test('exec -- CMD runs as root in the node and passes the exit code through', () => {
    const r = cli('exec', '--', 'sh', '-c', 'id -un; hostname; exit 7');
    assert.equal(r.status, 7, r.stderr);
    assert.equal(r.stdout, 'root\npve1\n');
  });

  test('up on a running node reuses it and prints the addresses', () => {
    const r = cli('up');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /node: +pve1 \(pve1\.lab\.internal\) at 10\.77\.7\.2/);
    assert.match(r.stdout, /workstation: 10\.77\.7\.1/);
  });
}
