/**
 * A reboot the baseline survives: a step that needs one stops an unattended
 * run after itself (the need and what to expect journaled, the check after
 * the boot put in place), reboots now or goes on later in the wizard, and
 * the next run, in a later boot, finds it done and goes on without asking;
 * `pve-baseline postboot` checks the kernel and Proxmox's services, writes
 * what it found for the next run and the next login, and switches itself off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { RebootRequest } from '../../src/engine/events.ts';
import type { Step } from '../../src/engine/step.ts';
import { Journal } from '../../src/engine/journal.ts';
import { judgePostboot, postbootMotd, postbootUnit, type RebootNeed, type RebootRecord } from '../../src/engine/reboot.ts';
import { describePostboot, postbootCommand, readPostboot } from '../../src/cli/commands/postboot.ts';
import { EXIT } from '../../src/cli/args.ts';
import type { Runtime } from '../../src/cli/runtime.ts';
import { engine } from '../fixtures/harness.ts';
import { bareStep } from '../fixtures/steps.ts';
import { ScriptedOperator } from '../fixtures/operator.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { scriptedExec } from '../fixtures/scripted-exec.ts';
import { testNode } from '../fixtures/node.ts';
import { tempDir } from '../fixtures/temp.ts';

const NEED: RebootNeed = { reason: 'kernel 6.14.11-1-pve is installed; 6.14.8-2-pve runs', expectKernel: '6.14.11-1-pve', runningGuests: ['100 (web1)'] };

/** A step that is compliant and needs a reboot until `booted` says the new kernel runs. */
function kernelStep(state: { booted: boolean }): Step<null> {
  return { ...bareStep('upgrade'), risk: 'reboot', rebootNeeded: async () => (state.booted ? undefined : NEED) };
}

function hosts() {
  const calls: string[] = [];
  return { calls, reboot: { prepare: async (r: RebootRecord) => void calls.push(`prepare ${r.afterStep}`), now: async (r: RebootRecord) => void calls.push(`reboot ${r.expectKernel}`) } };
}

test('unattended: the run stops after the step with the need journaled and the check prepared; in the next boot it goes on, asking nothing, and the need is cleared', async (t) => {
  const dir = await tempDir(t);
  const state = { booted: false };
  const { calls, reboot } = hosts();
  const first = engine({ stateDir: dir, steps: [kernelStep(state), bareStep('after')], reboot });
  const results = await first.runner.run();
  assert.deepEqual(results.map((r) => r.stepId), ['upgrade'], 'nothing after the step runs before the reboot');
  assert.equal(results[0]!.reboot?.expectKernel, '6.14.11-1-pve');
  assert.match(results[0]!.reason!, /a reboot is needed: kernel 6\.14\.11-1-pve is installed; 6\.14\.8-2-pve runs; reboot the node and run the same command again/);
  assert.deepEqual(calls, ['prepare upgrade'], 'headless never reboots by itself');
  assert.deepEqual(first.journal.step('upgrade')?.reboot, { ...NEED, afterStep: 'upgrade', requestedAt: first.journal.step('upgrade')!.reboot!.requestedAt, bootId: 'boot-1' });

  state.booted = true;
  const second = engine({ stateDir: dir, steps: [kernelStep(state), bareStep('after')], bootId: 'boot-2', reboot });
  const again = await second.runner.run();
  assert.deepEqual(again.map((r) => [r.stepId, r.outcome]), [['upgrade', 'compliant'], ['after', 'compliant']]);
  assert.equal(second.journal.step('upgrade')?.reboot, undefined, 'done: no longer journaled');
  assert.deepEqual((second.operator as ScriptedOperator).askedKeys, []);
});

test('the wizard: "now" reboots and ends the run; "later" goes on with the need journaled', async (t) => {
  const dir = await tempDir(t);
  class Deciding extends ScriptedOperator {
    reboots: RebootRequest[] = [];
    constructor(private readonly decision: 'now' | 'later') {
      super();
    }
    async reboot(request: RebootRequest): Promise<'now' | 'later'> {
      this.reboots.push(request);
      return this.decision;
    }
  }
  const now = hosts();
  const operator = new Deciding('now');
  const run = engine({ stateDir: path.join(dir, 'a'), steps: [kernelStep({ booted: false }), bareStep('after')], operator, reboot: now.reboot });
  const results = await run.runner.run();
  assert.deepEqual(results.map((r) => r.stepId), ['upgrade']);
  assert.deepEqual(now.calls, ['prepare upgrade', 'reboot 6.14.11-1-pve']);
  assert.deepEqual(operator.reboots.map((r) => [r.stepId, r.expectKernel, r.runningGuests]), [['upgrade', '6.14.11-1-pve', ['100 (web1)']]]);
  assert.match(results[0]!.reason!, /^rebooting: /);

  const later = hosts();
  const run2 = engine({ stateDir: path.join(dir, 'b'), steps: [kernelStep({ booted: false }), bareStep('after')], operator: new Deciding('later'), reboot: later.reboot });
  const results2 = await run2.runner.run();
  assert.deepEqual(results2.map((r) => [r.stepId, r.outcome]), [['upgrade', 'compliant'], ['after', 'compliant']]);
  assert.match(results2[0]!.reason!, /a reboot is needed .*reboot when it suits/);
  assert.deepEqual(later.calls, ['prepare upgrade']);
  assert.ok(run2.journal.step('upgrade')?.reboot, 'the need stays journaled');
});

function postbootRuntime(stateDir: string, uname: string, inactive: string[] = []) {
  const exec = scriptedExec([
    [['uname', '-r'], { stdout: `${uname}\n` }],
    [(argv) => argv[0] === 'systemctl' && argv[1] === 'is-active', (argv) => ({ exitCode: inactive.includes(argv.at(-1)!) ? 3 : 0 })],
    [['systemctl', 'disable', 'pve-baseline-postboot.service'], {}],
  ]);
  const files = new MemoryFiles();
  const runtime: Runtime = { exec, files, node: { ...testNode, bootId: 'boot-2' }, stateDir, backupsDir: path.join(stateDir, 'backups') };
  return { runtime, exec, files };
}

test('postboot: the kernel and the services as expected, written for the next run and the next login; the unit switches itself off', async (t) => {
  const dir = await tempDir(t);
  const journal = Journal.open(dir, 'boot-1');
  journal.setReboot('upgrade', { ...NEED, afterStep: 'upgrade', requestedAt: '2026-12-03T12:00:00.000Z', bootId: 'boot-1' });
  const { runtime, exec, files } = postbootRuntime(dir, '6.14.11-1-pve');
  const out: string[] = [];
  const code = await postbootCommand(runtime, { out: (l) => out.push(l), err: (l) => out.push(l) }, new Date('2026-12-03T12:05:00Z'));
  assert.equal(code, EXIT.ok);
  const result = JSON.parse((await files.read(path.join(dir, 'postboot.json')))!);
  assert.deepEqual([result.afterStep, result.bootId, result.kernel, result.ok], ['upgrade', 'boot-2', { expected: '6.14.11-1-pve', running: '6.14.11-1-pve', ok: true }, true]);
  assert.equal((await files.meta(path.join(dir, 'postboot.json')))?.mode, 0o600);
  assert.match((await files.read('/run/motd.d/pve-baseline'))!, /^pve-baseline: this node was rebooted after the step upgrade\.\n  kernel 6\.14\.11-1-pve as expected\n(  .*: active\n){4}  Run pve-baseline to continue where it stopped\./);
  assert.deepEqual(exec.argvs.at(-1), ['systemctl', 'disable', 'pve-baseline-postboot.service']);
  assert.equal((await readPostboot(runtime))?.ok, true, 'the next run in this boot reads it');
  assert.equal(await readPostboot({ ...runtime, node: { ...runtime.node, bootId: 'boot-3' } }), undefined, 'a later boot does not');
});

test('postboot: another kernel, or a service down, is said plainly and exits 1; without a request from an earlier boot nothing is checked', async (t) => {
  const dir = await tempDir(t);
  const journal = Journal.open(dir, 'boot-1');
  journal.setReboot('upgrade', { ...NEED, afterStep: 'upgrade', requestedAt: '2026-12-03T12:00:00.000Z', bootId: 'boot-1' });
  const { runtime, files } = postbootRuntime(dir, '6.14.8-2-pve', ['pveproxy.service']);
  const code = await postbootCommand(runtime, { out: () => undefined, err: () => undefined });
  assert.equal(code, EXIT.failedOrDrift);
  const motd = (await files.read('/run/motd.d/pve-baseline'))!;
  assert.match(motd, /KERNEL 6\.14\.8-2-pve, NOT 6\.14\.11-1-pve as expected: check proxmox-boot-tool kernel list \(a pinned kernel\?\)/);
  assert.match(motd, /pveproxy\.service: NOT ACTIVE: systemctl status pveproxy\.service/);

  const fresh = await tempDir(t);
  Journal.open(fresh, 'boot-2').setReboot('upgrade', { ...NEED, afterStep: 'upgrade', requestedAt: '2026-12-03T12:00:00.000Z', bootId: 'boot-2' });
  const same = postbootRuntime(fresh, '6.14.8-2-pve');
  const out: string[] = [];
  assert.equal(await postbootCommand(same.runtime, { out: (l) => out.push(l), err: (l) => out.push(l) }), EXIT.ok);
  assert.match(out.join('\n'), /no reboot was asked for before this boot/);
  assert.equal(await same.files.read(path.join(fresh, 'postboot.json')), null);
});

test('the unit runs the installed program after Proxmox\'s services, once per boot', () => {
  const unit = postbootUnit('/usr/local/bin/pve-baseline');
  assert.match(unit, /^After=network-online\.target pve-cluster\.service pvedaemon\.service pveproxy\.service pve-firewall\.service$/m);
  assert.match(unit, /^Type=oneshot$/m);
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/pve-baseline postboot$/m);
  assert.match(unit, /^WantedBy=multi-user\.target$/m);
  const judged = judgePostboot({ ...NEED, afterStep: 's', requestedAt: '', bootId: 'b1' }, { bootId: 'b2', kernel: '6.14.11-1-pve', active: {}, now: new Date(0) });
  assert.equal(judged.ok, false, 'services not known active are not active');
  assert.match(postbootMotd(judged), /pve-cluster\.service: NOT ACTIVE/);
});

test('check and dry runs say a reboot is pending and change nothing', async (t) => {
  const dir = await tempDir(t);
  const { calls, reboot } = hosts();
  const run = engine({ stateDir: dir, steps: [kernelStep({ booted: false }), bareStep('after')], reboot, dryRun: true });
  const results = await run.runner.run();
  assert.deepEqual(results.map((r) => [r.stepId, r.outcome]), [['upgrade', 'compliant'], ['after', 'compliant']]);
  assert.equal(results[0]!.reason, 'a reboot is pending: kernel 6.14.11-1-pve is installed; 6.14.8-2-pve runs');
  assert.deepEqual(calls, []);
  assert.equal(run.journal.step('upgrade')?.reboot, undefined);
});

test('the run that resumes says what the check after the reboot found', () => {
  const good = judgePostboot({ ...NEED, afterStep: 'upgrade', requestedAt: '', bootId: 'b1' }, { bootId: 'b2', kernel: '6.14.11-1-pve', active: Object.fromEntries(['pve-cluster.service', 'pvedaemon.service', 'pveproxy.service', 'pve-firewall.service'].map((u) => [u, true])), now: new Date(0) });
  assert.equal(describePostboot(good), 'After the reboot that upgrade asked for: the node came back as expected (kernel 6.14.11-1-pve; Proxmox services active).');
  const bad = judgePostboot({ ...NEED, afterStep: 'upgrade', requestedAt: '', bootId: 'b1' }, { bootId: 'b2', kernel: '6.14.8-2-pve', active: {}, now: new Date(0) });
  assert.match(describePostboot(bad), /^After the reboot that upgrade asked for: NOT as expected \(kernel 6\.14\.8-2-pve, expected 6\.14\.11-1-pve; pve-cluster\.service not active, /);
});
