/**
 * The upgrade step on fakes: apt's simulation decides the plan (the
 * dist-upgrade with its progress channel and its log, or dpkg finishing an
 * interrupted run first), an upgrade that would remove proxmox-ve is refused
 * before anything runs, and the reboot is read from proxmox-boot-tool
 * (Proxmox kernels leave no /run/reboot-required), a pinned kernel included.
 * Outputs are shaped as apt-get -s and proxmox-boot-tool print them (derived
 * from their formats, proxmox-steps.md B.6).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange, type CommandChange } from '../../src/engine/change.ts';
import { compareKernels, kernelRebootNeed, parseKernelList, parseNeedrestart, upgradeStep } from '../../steps/upgrade.ts';
import { scriptedExec, type ScriptEntry } from '../fixtures/scripted-exec.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { stepContext } from '../fixtures/step-run.ts';

const SIM_UPGRADE = [
  'Reading package lists...',
  'The following NEW packages will be installed:',
  '  proxmox-kernel-6.14.11-1-pve-signed',
  'Inst proxmox-kernel-6.14.11-1-pve-signed (6.14.11-1 Proxmox Debian Repository:stable [amd64])',
  'Inst pve-manager [9.2.11] (9.2.12 Proxmox Debian Repository:stable [amd64])',
  'Conf proxmox-kernel-6.14.11-1-pve-signed (6.14.11-1 Proxmox Debian Repository:stable [amd64])',
  'Conf pve-manager (9.2.12 Proxmox Debian Repository:stable [amd64])',
  '1 upgraded, 1 newly installed, 0 to remove and 0 not upgraded.',
  '',
].join('\n');
const SIM_NOTHING = '0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n';
const SIM_REMOVES = ['Remv proxmox-ve [9.1.0]', 'Remv pve-manager [9.2.11]', 'Inst broken-thing (1.0 Lab broken:stable [amd64])', '1 upgraded, 0 newly installed, 2 to remove and 0 not upgraded.', ''].join('\n');
/** needrestart's batch output (README.batch). */
const NEEDRESTART = 'NEEDRESTART-VER: 3.8\nNEEDRESTART-KCUR: 6.14.8-2-pve\nNEEDRESTART-KEXP: 6.14.11-1-pve\nNEEDRESTART-KSTA: 3\nNEEDRESTART-SVC: pvedaemon.service\nNEEDRESTART-SVC: pveproxy.service\n';
const KERNELS = 'Manually selected kernels:\nNone.\n\nAutomatically selected kernels:\n6.14.8-2-pve\n6.14.11-1-pve\n';

function node(sim: string, extra: ScriptEntry[] = [], audit = '') {
  const exec = scriptedExec([
    [['apt-get', 'update', '-q'], { stdout: 'Hit:1 http://download.proxmox.com/debian/pve trixie InRelease\n' }],
    [['apt-get', '-s', 'dist-upgrade'], { stdout: sim }],
    [['dpkg', '--audit'], { stdout: audit }],
    ...extra,
  ]);
  return { exec, ctx: stepContext({ exec, files: new MemoryFiles() }) };
}

test('the plan: the dist-upgrade with apt\'s progress on fd 3 and its output kept, saying what it installs and that a new kernel means a reboot', async () => {
  const { ctx } = node(SIM_UPGRADE);
  const facts = await upgradeStep.probe(ctx);
  assert.deepEqual(upgradeStep.preflight!(facts, {}, ctx.node).filter((c) => !c.ok), []);
  const [change, ...rest] = upgradeStep.plan(facts, {}, ctx.node) as CommandChange[];
  assert.deepEqual(rest, []);
  assert.equal(describeChange(change!), 'run apt-get -o APT::Status-Fd=3 -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -y dist-upgrade');
  assert.equal(change!.progress, 'apt');
  assert.equal(change!.log, 'upgrade');
  assert.equal(change!.survivesExit, true, 'a dropped session must not cut dpkg off');
  assert.match(change!.reason, /^2 package\(s\): proxmox-kernel-6\.14\.11-1-pve-signed \(new\) 6\.14\.11-1, pve-manager 9\.2\.11 -> 9\.2\.12; a new kernel \(proxmox-kernel-6\.14\.11-1-pve-signed\): a reboot follows, on your word; configuration files you changed are kept/);
});

test('nothing to upgrade plans nothing; an interrupted earlier run is finished first', async () => {
  const quiet = node(SIM_NOTHING);
  assert.deepEqual(upgradeStep.plan(await upgradeStep.probe(quiet.ctx), {}, quiet.ctx.node), []);
  const broken = node(SIM_NOTHING, [], 'The following packages are only half configured, probably due to problems\nconfiguring them the first time.  The configuration should be retried using\ndpkg --configure <package> or the configure menu option in dselect:\n pve-manager          The Proxmox Virtual Environment\n');
  const plan = upgradeStep.plan(await upgradeStep.probe(broken.ctx), {}, broken.ctx.node);
  assert.deepEqual(plan.map(describeChange), ['run dpkg --force-confdef --force-confold --configure -a']);
  assert.equal((plan[0] as CommandChange).survivesExit, true);
  assert.match(plan[0]!.reason, /an earlier upgrade was interrupted: dpkg reports pve-manager +The Proxmox Virtual Environment; this finishes it/);
});

test('an upgrade that would remove proxmox-ve is refused before anything runs, naming what it would remove; so is a failing apt-get update', async () => {
  const { ctx, exec } = node(SIM_REMOVES);
  const facts = await upgradeStep.probe(ctx);
  const failed = upgradeStep.preflight!(facts, {}, ctx.node).filter((c) => !c.ok);
  assert.equal(failed.length, 1);
  assert.match(failed[0]!.detail!, /the upgrade would remove proxmox-ve, pve-manager: the APT repositories are probably wrong .*Simulated: Remv proxmox-ve, Remv pve-manager/);
  assert.ok(!exec.argvs.some((a) => a.includes('dist-upgrade') && !a.includes('-s')), 'no real upgrade ran');

  const unreachable = scriptedExec([
    [['apt-get', 'update', '-q'], { exitCode: 100, stderr: 'E: Failed to fetch https://enterprise.proxmox.com/debian/pve/dists/trixie/InRelease  401  Unauthorized [IP: 10.0.0.1 443]\nE: Some index files failed to download.\n' }],
    [['apt-get', '-s', 'dist-upgrade'], { stdout: SIM_NOTHING }],
    [['dpkg', '--audit'], { stdout: '' }],
  ]);
  const ctx2 = stepContext({ exec: unreachable, files: new MemoryFiles() });
  const refused = upgradeStep.preflight!(await upgradeStep.probe(ctx2), {}, ctx2.node).filter((c) => !c.ok);
  assert.match(refused[0]!.detail!, /401 +Unauthorized.*fix the repositories first/);

  // Another apt holds the lock (unattended-upgrades, say): nothing is planned, and the reason is not the repositories.
  const locked = scriptedExec([[['apt-get', 'update', '-q'], { exitCode: 100, stderr: 'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)\nE: Unable to lock directory /var/lib/apt/lists/\n' }]]);
  await assert.rejects(upgradeStep.probe(stepContext({ exec: locked, files: new MemoryFiles() })), /Could not get lock .*held by process 4242 \(apt-get\).*: another apt or dpkg is running; let it end, then run pve-baseline again$/);
  assert.ok(!locked.argvs.some((a) => a.includes('-s')), 'no simulation on a locked apt');
});

test('the reboot: needed when the boot tool\'s newest (or pinned) kernel is not the running one; running guests listed', async () => {
  const guests = JSON.stringify([{ vmid: 100, name: 'web1', status: 'running', type: 'qemu' }, { vmid: 101, name: 'web2', status: 'stopped', type: 'qemu' }]);
  const { ctx } = node(SIM_NOTHING, [
    [['proxmox-boot-tool', 'kernel', 'list'], { stdout: KERNELS }],
    [['uname', '-r'], { stdout: '6.14.8-2-pve\n' }],
    [['pvesh', 'get', '/cluster/resources', '--type', 'vm', '--output-format', 'json'], { stdout: guests }],
    [['needrestart', '-b'], { stdout: NEEDRESTART }],
  ]);
  assert.deepEqual(await kernelRebootNeed(ctx), { reason: 'kernel 6.14.11-1-pve is installed; 6.14.8-2-pve runs', expectKernel: '6.14.11-1-pve', runningGuests: ['100 (web1)'], staleServices: ['pvedaemon.service', 'pveproxy.service'] });

  const pinned = node(SIM_NOTHING, [
    [['proxmox-boot-tool', 'kernel', 'list'], { stdout: `${KERNELS}\nPinned kernel:\n6.14.8-2-pve\n` }],
    [['uname', '-r'], { stdout: '6.14.8-2-pve\n' }],
  ]);
  assert.equal(await kernelRebootNeed(pinned.ctx), undefined, 'a pinned kernel that runs needs no reboot');
});

test('proxmox-boot-tool\'s list and kernel order', () => {
  assert.deepEqual(parseKernelList(`${KERNELS}\nPinned kernel:\n6.14.8-2-pve\n`), { manual: [], automatic: ['6.14.8-2-pve', '6.14.11-1-pve'], pinned: '6.14.8-2-pve', newest: '6.14.11-1-pve' });
  assert.ok(compareKernels('6.14.11-1-pve', '6.14.8-2-pve') > 0);
  assert.ok(compareKernels('6.8.12-4-pve', '6.14.8-2-pve') < 0);
  assert.deepEqual(parseNeedrestart(NEEDRESTART), { kernelStatus: 3, services: ['pvedaemon.service', 'pveproxy.service'] });
});
