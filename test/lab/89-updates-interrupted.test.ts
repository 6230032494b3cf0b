/**
 * Issue 16 on the lab node: an upgrade that pve-baseline does not see to its
 * end. Real apt and dpkg on the lab's archive (test/lab/README.md), the
 * kernel's postinst slowed so there is a moment to interrupt.
 *
 * - The SSH session of the wizard drops during the upgrade: apt and dpkg
 *   run on to the end; the next `pve-baseline check` says the upgrade still
 *   runs, the next `apply` waits for it, says what happened, and dpkg is
 *   consistent with every package at N+1.
 * - The wizard, apt and dpkg are all killed half-way through the kernel's
 *   configuration (a power cut's worth): dpkg is left inconsistent; the next
 *   run says so, finishes it with `dpkg --configure -a` and the rest of the
 *   upgrade, and `dpkg --audit` is clean.
 * Named 89 so it runs before 90-down, like the other lab files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KEYS, ptyEnv, runInPty } from '../support/pty.ts';
import { adminAnswers, installBundle, journalStep, labOrSkip, sh, skipToUpdates, waitUntil, type JournalStepView } from './helpers.ts';
import { KERNEL_N1, type Lab } from './lab.ts';
import { PROXMOX_N1 } from './recipe/apt-world.ts';

const lab = await labOrSkip();
const KERNEL_PACKAGE = `proxmox-kernel-${KERNEL_N1}-signed`;
const PASSWORD = 'correct horse battery staple';

if (lab) {
  const node: Lab = lab;
  const version = async (pkg: string) => (await node.exec(['dpkg-query', '-W', '-f', '${Status} ${Version}', pkg])).stdout.trim();
  const audit = async () => (await node.exec(['dpkg', '--audit'])).stdout;
  const running = async () => ((await journalStep(node, 'upgrade')) as (JournalStepView & { running?: { pid: number; log: string } }) | undefined)?.running;
  const upgradeAnswers = () => writeFileSync(join(node.rootDir, 'root/upgrade.yml'), 'repositories:\n  pve: no-subscription\n  ceph: no-subscription\nupgrade: {}\n', { mode: 0o600 });
  /** apply without --yes: the plans only, nothing changed. */
  const showPlan = () => node.exec(['pve-baseline', 'apply', '--answers', '/root/upgrade.yml', '--only', 'upgrade'], { timeoutMs: 120_000 });
  const applyUpgrade = () => node.exec(['pve-baseline', 'apply', '--answers', '/root/upgrade.yml', '--yes', '--only', 'upgrade'], { timeoutMs: 300_000 });

  const freshNodeWithRepositories = async () => {
    await node.reset();
    await installBundle(node);
    upgradeAnswers();
    const r = await node.exec(['pve-baseline', 'apply', '--answers', '/root/upgrade.yml', '--yes', '--only', 'repositories'], { timeoutMs: 120_000 });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  };

  test('the wizard\'s SSH session drops during the upgrade: apt runs on; check says it still runs; the next apply waits, says what happened, and dpkg is consistent', async () => {
    await freshNodeWithRepositories();
    // The steps before the updates: the account ones done unattended, the others skipped at their first question.
    writeFileSync(join(node.rootDir, 'root/admin.yml'), adminAnswers(PASSWORD), { mode: 0o600 });
    const admin = await node.exec(['pve-baseline', 'apply', '--answers', '/root/admin.yml', '--yes', '--only', 'admin-account,ssh-key,break-glass'], { timeoutMs: 120_000 });
    assert.equal(admin.exitCode, 0, admin.stdout + admin.stderr);
    node.slowUpgrade({ bytesPerSecond: 512 * 1024, kernelPostinstSeconds: 15 });
    try {
      const session = await runInPty({
        argv: ['sshpass', '-e', 'ssh', '-t', ...node.sshClientArgs('root', ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password']), 'pve-baseline'],
        env: ptyEnv({ SSHPASS: node.rootPassword, TERM: 'xterm-256color' }),
        script: [
          ...skipToUpdates(),
          { waitFor: 'Plan:', timeoutMs: 60_000 },
          { send: KEYS.enter },
          { waitFor: 'Configuring proxmox-kernel', timeoutMs: 60_000 },
          { closePty: true },
          { waitExit: true, timeoutMs: 30_000 },
        ],
        maxMs: 120_000,
      });
      assert.ok(/Configuring proxmox-kernel/.test(session.plain), `the session dropped during the kernel's configuration:\n${session.plain.slice(-3000)}`);
      assert.doesNotMatch(session.plain, /done: \d+ package\(s\) configured/, 'before the upgrade ended');
      const lock = await node.exec(['cat', '/var/lib/pve-baseline/lock']);
      if (lock.exitCode === 0) {
        const wizardPid = (JSON.parse(lock.stdout) as { pid: number }).pid;
        await waitUntil(async () => (await node.exec(['test', '-d', `/proc/${wizardPid}`])).exitCode !== 0, 'the wizard to end with its session', 20_000);
      }
      const left = await running();
      assert.ok(left, 'the journal names the upgrade it left running');
      assert.equal((await node.exec(['test', '-d', `/proc/${left.pid}`])).exitCode, 0, 'apt-get outlives the wizard');

      const check = await showPlan();
      assert.match(check.stdout, /apt-get .*dist-upgrade \(pid \d+, started .*\), started by an earlier pve-baseline, still runs; its output: \/var\/lib\/pve-baseline\/logs\/upgrade-.*\.log/);

      const next = await applyUpgrade();
      assert.equal(next.exitCode, 5, `the new kernel asks for a reboot: ${next.stdout}${next.stderr}`);
      assert.match(next.stdout, /still runs: waiting for it to end/);
      assert.match(next.stdout.replace(/\n\s+\| /g, ' '), /an earlier pve-baseline ended while apt-get .*dist-upgrade \(pid \d+, started .*\) ran; it ran on without it, and this run waited for its end/);
      assert.equal(await audit(), '', 'dpkg --audit is clean');
      for (const p of PROXMOX_N1) assert.equal(await version(p.name), `install ok installed ${p.version}`, p.name);
      const log = await sh(node, `cat ${left.log}`);
      assert.match(log, new RegExp(`Setting up ${KERNEL_PACKAGE}`), 'the log holds what apt did after the session was gone');
      assert.equal((await running()), undefined, 'the journal forgets it once said');
    } finally {
      node.slowUpgrade();
    }
  });

  test('the wizard, apt and dpkg killed half-way through the kernel\'s configuration: the next run says so, finishes dpkg first, and dpkg --audit is clean', async () => {
    await freshNodeWithRepositories();
    node.slowUpgrade({ kernelPostinstSeconds: 30 });
    let killed: { pid: number; log: string } | undefined;
    try {
      const first = applyUpgrade();
      await waitUntil(async () => (await version(KERNEL_PACKAGE)).startsWith('install ok half-configured'), 'dpkg to be configuring the new kernel', 120_000);
      killed = await running();
      assert.ok(killed);
      const owner = JSON.parse(await sh(node, 'cat /var/lib/pve-baseline/lock')) as { pid: number };
      // pve-baseline, then apt's whole process group (apt-get leads it): as a power cut would stop them.
      assert.equal((await node.exec(['kill', '-KILL', String(owner.pid)])).exitCode, 0);
      assert.equal((await node.exec(['/usr/bin/kill', '-KILL', '--', `-${killed.pid}`])).exitCode, 0);
      const r = await first;
      assert.notEqual(r.exitCode, 0);
    } finally {
      node.slowUpgrade();
    }
    assert.match(await audit(), new RegExp(KERNEL_PACKAGE), 'dpkg is left inconsistent');

    const plan = await showPlan();
    assert.match(plan.stdout, /run dpkg --force-confdef --force-confold --configure -a/);
    assert.match(plan.stdout.replace(/\s+/g, ' '), /why: an earlier upgrade was interrupted: dpkg reports less pager program .*; this finishes it/);
    assert.match(plan.stdout.replace(/\s+/g, ' '), /an earlier pve-baseline ended while apt-get .*dist-upgrade \(pid \d+, started .*\) ran; it has ended since \(its last line: "Setting up proxmox-kernel-/);

    const next = await applyUpgrade();
    assert.equal(next.exitCode, 5, `${next.stdout}${next.stderr}`);
    assert.match(next.stdout.replace(/\n\s+\| /g, ' '), /an earlier pve-baseline ended while apt-get .*dist-upgrade \(pid \d+, started .*\) ran; it has ended since/);
    assert.match(next.stdout, /\$ dpkg --force-confdef --force-confold --configure -a/);
    assert.equal(await audit(), '', 'dpkg --audit is clean after the next run');
    for (const p of PROXMOX_N1) assert.equal(await version(p.name), `install ok installed ${p.version}`, p.name);
    assert.equal((await journalStep(node, 'upgrade'))?.status, 'verified');
  });
}
