/**
 * Issue 16 on the lab node (its apt world: test/lab/README.md): the
 * repositories, a full upgrade you can watch, a reboot the wizard survives.
 *
 * - A fresh node's enterprise repositories refuse it (401): the step says so,
 *   offers no-subscription, and apt-get update is clean afterwards.
 * - An upgrade that would remove proxmox-ve is refused before anything runs.
 * - In the wizard over SSH: the upgrade's bar moves (frames captured), the
 *   reboot question, `r`; the node comes back on the new kernel, the check
 *   after the boot ran once, and the next wizard resumes after the upgrade
 *   with nothing asked twice.
 * (The unattended path, exit 5 and the same command again, is in 70-wizard.)
 * Named 89 so it runs before 90-down, like the other lab files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KEYS, ptyEnv, runInPty, type PtyStep } from '../support/pty.ts';
import { adminAnswers, installBundle, journalStep, labOrSkip, sh, skipToUpdates, waitUntil } from './helpers.ts';
import { KERNEL_N, KERNEL_N1, type Lab } from './lab.ts';

const lab = await labOrSkip();
const PASSWORD = 'correct horse battery staple';

if (lab) {
  const node: Lab = lab;
  const bootId = async () => (await node.exec(['cat', '/proc/sys/kernel/random/boot_id']).catch(() => ({ exitCode: 1, stdout: '' }))).stdout.trim();
  const wizard = (script: PtyStep[]) =>
    runInPty({
      argv: ['sshpass', '-e', 'ssh', '-t', ...node.sshClientArgs('root', ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password']), 'pve-baseline'],
      env: ptyEnv({ SSHPASS: node.rootPassword, TERM: 'xterm-256color' }),
      script,
      maxMs: 180_000,
    });

  test('a fresh node: the enterprise repositories refuse it (401); no-subscription is offered and apt-get update is clean after the step', async () => {
    await node.reset();
    await installBundle(node);
    const check = JSON.parse((await node.exec(['pve-baseline', 'check', '--json'])).stdout) as { steps: { id: string; status: string; changes: { summary: string }[] }[] };
    const repos = check.steps.find((s) => s.id === 'repositories')!;
    assert.equal(repos.status, 'drift');
    assert.deepEqual(repos.changes.map((c) => c.summary.replace(/ --digest \S+/, '')), [
      'run pvesh set /nodes/pve1/apt/repositories --handle no-subscription',
      'run pvesh set /nodes/pve1/apt/repositories --handle ceph-squid-no-subscription',
      'run pvesh create /nodes/pve1/apt/repositories --path /etc/apt/sources.list.d/ceph.sources --index 0 --enabled 0',
      'run pvesh create /nodes/pve1/apt/repositories --path /etc/apt/sources.list.d/pve-enterprise.sources --index 0 --enabled 0',
    ]);
    assert.equal((await node.exec(['apt-get', 'update'])).exitCode, 100, 'before: apt-get update fails on enterprise');
    writeFileSync(join(node.rootDir, 'root/repos.yml'), 'repositories:\n  pve: no-subscription\n  ceph: no-subscription\n', { mode: 0o600 });
    const r = await node.exec(['pve-baseline', 'apply', '--answers', '/root/repos.yml', '--yes', '--only', 'repositories'], { timeoutMs: 120_000 });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Subscription: .*notfound/i);
    assert.match(r.stdout, /=> verified/);
    assert.match(await sh(node, 'cat /etc/apt/sources.list.d/pve-enterprise.sources'), /^Enabled: false$/m, 'disabled, not deleted');
    assert.equal((await node.exec(['apt-get', 'update'])).exitCode, 0);
  });

  test('an upgrade that would remove proxmox-ve is refused before anything runs, saying why', async () => {
    await node.removalRepository(true);
    try {
      await sh(node, 'apt-get update -q >/dev/null');
      const before = await sh(node, "dpkg-query -W -f='${Version}' proxmox-ve");
      writeFileSync(join(node.rootDir, 'root/upgrade.yml'), 'upgrade: {}\n', { mode: 0o600 });
      const r = await node.exec(['pve-baseline', 'apply', '--answers', '/root/upgrade.yml', '--yes', '--only', 'upgrade'], { timeoutMs: 120_000 });
      assert.equal(r.exitCode, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /refused before any change: The upgrade keeps Proxmox VE \(the upgrade would remove proxmox-ve/);
      assert.equal(await sh(node, "dpkg-query -W -f='${Version}' proxmox-ve"), before, 'nothing was upgraded or removed');
    } finally {
      await node.removalRepository(false);
      await sh(node, 'apt-get update -q >/dev/null');
    }
  });

  test('the wizard: the upgrade\'s bar moves, r reboots the node, it comes back on the new kernel, and the next wizard goes on after the upgrade asking nothing twice', async () => {
    // The steps before the updates, done unattended; the wizard skips the others at their first question.
    writeFileSync(join(node.rootDir, 'root/admin.yml'), adminAnswers(PASSWORD), { mode: 0o600 });
    const admin = await node.exec(['pve-baseline', 'apply', '--answers', '/root/admin.yml', '--yes', '--only', 'admin-account,ssh-key,break-glass'], { timeoutMs: 120_000 });
    assert.equal(admin.exitCode, 0, admin.stdout + admin.stderr);
    node.slowUpgrade({ bytesPerSecond: 512 * 1024, kernelPostinstSeconds: 1 });
    const oldBoot = await bootId();
    const skipTo = skipToUpdates();
    const first = await wizard([
      ...skipTo,
      { waitFor: 'Package repositories', timeoutMs: 30_000 }, // compliant since the first test: nothing asked
      { waitFor: 'Plan:', timeoutMs: 60_000 }, // the upgrade
      { snapshot: 'plan' },
      { send: KEYS.enter },
      { waitFor: '%', timeoutMs: 30_000 },
      { snapshot: 'progress-1' },
      { sleepMs: 1200 },
      { snapshot: 'progress-2' },
      { waitFor: 'The node needs a reboot', timeoutMs: 120_000 },
      { snapshot: 'reboot' },
      { send: 'r' },
      { waitExit: true, timeoutMs: 60_000 },
    ]);
    node.slowUpgrade();
    const percents = ['progress-1', 'progress-2'].map((name) => Number(/\]\s+(\d+)%/.exec(first.snapshots.find((s) => s.name === name)?.screen.join('\n') ?? '')?.[1] ?? NaN));
    assert.ok(percents.every(Number.isFinite) && percents[1]! > percents[0]!, `the bar moves: ${percents.join(' -> ')}\n${first.plain.slice(-2000)}`);
    const question = first.snapshots.find((s) => s.name === 'reboot')!.screen.join('\n');
    assert.match(question.replace(/\s+/g, ' '), new RegExp(`The node needs a reboot: kernel ${KERNEL_N1.replace(/\./g, '\\.')} is installed; ${KERNEL_N.replace(/\./g, '\\.')} runs`));

    // The node reboots on the operator's word; the session drops with it.
    await waitUntil(async () => {
      const id = await bootId();
      return id !== '' && id !== oldBoot;
    }, 'the node to come back', 120_000);
    await waitUntil(async () => (await node.tcpProbe(22, { timeoutMs: 800 })) === 'connected', 'sshd after the reboot', 60_000);
    assert.equal(await node.runningKernel(), KERNEL_N1);
    await waitUntil(async () => (await node.exec(['test', '-e', '/var/lib/pve-baseline/postboot.json'])).exitCode === 0, 'the check after the boot', 60_000);
    assert.equal((await journalStep(node, 'upgrade'))?.status, 'verified');

    // Again: the steps skipped before are offered again; the repositories and the upgrade are not asked, the next question is auto-updates'.
    const second = await wizard([
      { waitFor: 'Nothing changes until you have seen the plan', timeoutMs: 20_000 },
      { snapshot: 'welcome' },
      ...skipTo.slice(1),
      { waitFor: "Also install updates from Proxmox's repositories unattended?", timeoutMs: 60_000 },
      { send: KEYS.ctrlC },
      { waitExit: true, timeoutMs: 20_000 },
    ]);
    const welcome = second.snapshots.find((s) => s.name === 'welcome')!.screen.join(' ').replace(/\s+/g, ' ');
    assert.match(welcome, /After the reboot that upgrade asked for: the node came back as expected/);
    assert.doesNotMatch(second.plain, /Which Proxmox VE repository\?/, 'the repositories are not asked again');
    assert.doesNotMatch(second.plain.slice(second.plain.indexOf('Nothing changes until')), /Plan: .*\n.*dist-upgrade/, 'nor the upgrade');
  });
}
