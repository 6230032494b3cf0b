/**
 * Issue 16 on the lab node: unattended-upgrades as the auto-updates step
 * sets it up, with Proxmox's origin chosen, against the lab's archive
 * (test/lab/README.md): its dry run selects Debian's security origin and
 * Proxmox's; the real run takes a Proxmox release in part (why point
 * releases stay with the supervised upgrade) and does not reboot, though the
 * new kernel asks for one; `check` then shows the upgrade still to do.
 * Named 89 so it runs before 90-down, like the other lab files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installBundle, labOrSkip } from './helpers.ts';
import { KERNEL_N1, type Lab } from './lab.ts';

const lab = await labOrSkip();
const KERNEL_PACKAGE = `proxmox-kernel-${KERNEL_N1}-signed`;

if (lab) {
  const node: Lab = lab;
  const version = async (pkg: string) => (await node.exec(['dpkg-query', '-W', '-f', '${Version}', pkg])).stdout.trim();
  const bootId = async () => (await node.exec(['cat', '/proc/sys/kernel/random/boot_id'])).stdout.trim();

  test('with Proxmox\'s origin chosen: the dry run allows Debian-Security and Proxmox, and selects from both', async () => {
    await node.reset();
    await installBundle(node);
    writeFileSync(join(node.rootDir, 'root/auto.yml'), 'repositories:\n  pve: no-subscription\n  ceph: no-subscription\nauto-updates:\n  proxmox: true\n', { mode: 0o600 });
    const r = await node.exec(['pve-baseline', 'apply', '--answers', '/root/auto.yml', '--yes', '--only', 'repositories,auto-updates'], { timeoutMs: 300_000 });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.equal((r.stdout.match(/=> verified/g) ?? []).length, 2, r.stdout);

    const dry = await node.exec(['unattended-upgrade', '--dry-run', '--debug'], { timeoutMs: 300_000 });
    const out = dry.stdout + dry.stderr;
    // 1: not everything could be upgraded (pve-manager, below); an error would say more than this.
    assert.equal(dry.exitCode, 1, out);
    assert.doesNotMatch(out, /Traceback|^E: /m);
    assert.match(out, /^Allowed origins are: origin=Debian,codename=trixie-security,label=Debian-Security, origin=Debian,codename=trixie,label=Debian-Security, origin=Proxmox,codename=trixie$/m);
    assert.match(out, /^Checking: less=668-1\+deb13u1 \(\[<Origin component:'main' archive:'stable-security' origin:'Debian' label:'Debian-Security'/m);
    assert.match(out, /^Checking: proxmox-default-kernel=2\.0\.1 \(\[<Origin component:'pve-no-subscription' archive:'stable' origin:'Proxmox'/m);
    assert.match(out, /^applying set \['less'\]$/m);
    assert.match(out, new RegExp(`^applying set \\['proxmox-default-kernel', '${KERNEL_PACKAGE.replace(/\./g, '\\.')}'\\]$`, 'm'));
    assert.match(out, /^Package pve-manager has conffile prompt and needs to be upgraded manually$/m);
    assert.equal(await version('less'), '668-1', 'a dry run changes nothing');
  });

  test('the real run takes the release in part, leaves the reboot the new kernel asks for to a person, and check shows the upgrade still to do', async () => {
    const before = await bootId();
    const run = await node.exec(['unattended-upgrade'], { timeoutMs: 300_000 });
    assert.equal(run.exitCode, 1, `1: pve-manager could not be upgraded unattended\n${run.stdout}${run.stderr}`);
    assert.equal(await version('less'), '668-1+deb13u1', 'the security update');
    assert.equal(await version('proxmox-default-kernel'), '2.0.1');
    assert.equal(await version(KERNEL_PACKAGE), '6.14.11-1', 'a new package, pulled in as a dependency');
    assert.equal(await version('pve-manager'), '9.1.2', 'held back: its changed configuration file would prompt');
    assert.equal(await version('proxmox-ve'), '9.1.0', 'held back with it');

    // The kernel's postinst asked for a reboot; Automatic-Reboot "false" leaves it to a person.
    assert.equal((await node.exec(['test', '-e', '/run/reboot-required'])).exitCode, 0);
    assert.equal((await node.exec(['test', '-e', '/run/systemd/shutdown/scheduled'])).exitCode, 1, 'no shutdown scheduled');
    assert.doesNotMatch((await node.exec(['systemctl', 'is-system-running'])).stdout, /stopping/);
    assert.equal(await bootId(), before, 'the node did not reboot');
    const log = (await node.exec(['cat', '/var/log/unattended-upgrades/unattended-upgrades.log'])).stdout;
    assert.doesNotMatch(log, /reboot/i, log.slice(-1500));

    const check = JSON.parse((await node.exec(['pve-baseline', 'check', '--json'], { timeoutMs: 300_000 })).stdout) as { steps: { id: string; status: string; changes: { summary: string }[] }[] };
    const upgrade = check.steps.find((s) => s.id === 'upgrade')!;
    assert.equal(upgrade.status, 'drift');
    assert.match(upgrade.changes.map((c) => c.summary).join('\n'), /dist-upgrade/);
  });
}
