/**
 * The sysctl step on fakes: probe -> plan -> apply -> verify against a
 * /proc/sys held in memory, where the fake `sysctl -p FILE` and `sysctl -w`
 * write the values as the real program does (and fail, as it does, on a key
 * that is absent or read-only). Covers a full kernel, a container whose
 * kernel.* keys belong to the host, drift after the apply, and the undo.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange } from '../../src/engine/change.ts';
import { sysctlStep, SYSCTL_FILE } from '../../steps/sysctl.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { ScriptedExec, type Reply } from '../fixtures/scripted-exec.ts';
import { failed, runStep, stepContext, undoPlan } from '../fixtures/step-run.ts';

/** A fresh Debian kernel's values for the keys the baseline sets (some already as wanted). */
const FRESH: Record<string, string> = {
  'kernel.kptr_restrict': '0',
  'kernel.dmesg_restrict': '1',
  'kernel.yama.ptrace_scope': '0',
  'fs.protected_fifos': '1',
  'fs.protected_regular': '2',
  'fs.suid_dumpable': '0',
  'net.ipv4.conf.all.accept_redirects': '1',
  'net.ipv4.conf.default.accept_redirects': '1',
  'net.ipv4.conf.all.secure_redirects': '1',
  'net.ipv4.conf.default.secure_redirects': '1',
  'net.ipv6.conf.all.accept_redirects': '1',
  'net.ipv6.conf.default.accept_redirects': '1',
  'net.ipv4.conf.all.send_redirects': '1',
  'net.ipv4.conf.default.send_redirects': '1',
  'net.ipv4.conf.all.accept_source_route': '0',
  'net.ipv4.conf.default.accept_source_route': '1',
  'net.ipv6.conf.all.accept_source_route': '0',
  'net.ipv4.conf.all.log_martians': '0',
  'net.ipv4.icmp_echo_ignore_broadcasts': '1',
  'net.ipv4.icmp_ignore_bogus_error_responses': '1',
  'net.ipv4.tcp_syncookies': '1',
  'net.ipv4.tcp_rfc1337': '0',
  // Never touched by the baseline: guests need forwarding.
  'net.ipv4.ip_forward': '1',
};

const proc = (key: string) => `/proc/sys/${key.replace(/\./g, '/')}`;

/** A kernel in memory and the sysctl program that sets it. */
function kernel(values: Record<string, string>, o: { readOnly?: (key: string) => boolean } = {}) {
  const files = new MemoryFiles();
  for (const [key, value] of Object.entries(values)) {
    files.set(proc(key), `${value}\n`);
    if (o.readOnly?.(key)) files.readOnly(proc(key));
  }
  const set = async (assignments: [string, string][]): Promise<Reply> => {
    const errors: string[] = [];
    const out: string[] = [];
    for (const [key, value] of assignments) {
      if ((await files.read(proc(key))) === null) errors.push(`sysctl: cannot stat ${proc(key)}: No such file or directory`);
      else if (!(await files.writable(proc(key)))) errors.push(`sysctl: permission denied on key "${key}"`);
      else {
        await files.write(proc(key), `${value}\n`);
        out.push(`${key} = ${value}`);
      }
    }
    return { stdout: out.map((l) => `${l}\n`).join(''), stderr: errors.map((l) => `${l}\n`).join(''), exitCode: errors.length ? 255 : 0 };
  };
  const exec = new ScriptedExec([
    [['sysctl', '-p', SYSCTL_FILE], async () => {
      const text = (await files.read(SYSCTL_FILE)) ?? '';
      const lines = text.split('\n').filter((l) => l.trim() && !l.trimStart().startsWith('#'));
      return set(lines.map((l) => l.split('=').map((s) => s.trim()) as [string, string]));
    }],
    [(argv) => argv[0] === 'sysctl' && argv[1] === '-w', (argv) => set(argv.slice(2).map((a) => a.split('=') as [string, string]))],
  ]);
  const live = async () => Object.fromEntries(await Promise.all(Object.keys(values).map(async (k) => [k, (await files.read(proc(k)))?.trim()])));
  return { files, exec, live };
}

test('full kernel: writes the file (root, 0644) and sets every differing value now; verify holds; a second run plans nothing; undo sets the old values back', async () => {
  const node = kernel(FRESH);
  const run = await runStep(sysctlStep, {}, node);
  assert.deepEqual(run.plan.map(describeChange), [`create ${SYSCTL_FILE}`, `run sysctl -p ${SYSCTL_FILE}`]);
  const file = run.plan[0]!;
  assert.ok(file.kind === 'file');
  assert.deepEqual([file.mode, file.owner], [0o644, { uid: 0, gid: 0 }]);
  assert.match(file.after!, /^kernel\.kptr_restrict = 2$/m);
  assert.match(file.after!, /Deliberately not set on a Proxmox VE node:\n#   net\.ipv4\.ip_forward/);
  assert.doesNotMatch(file.after!, /^net\.ipv4\.ip_forward/m);
  assert.deepEqual(await node.files.meta(SYSCTL_FILE), { mode: 0o644, uid: 0, gid: 0, isSymlink: false });

  const live = await node.live();
  assert.equal(live['kernel.kptr_restrict'], '2');
  assert.equal(live['net.ipv4.conf.all.accept_redirects'], '0');
  assert.equal(live['net.ipv4.ip_forward'], '1', 'forwarding stays on for routed and NAT guests');
  assert.deepEqual(failed(run.checks), []);
  assert.equal(run.checks.length, 1 + 22, 'the file and each of the 22 settings');
  assert.deepEqual(run.replan, []);

  // The undo names only the values that differed, with what they were.
  const command = run.plan[1]!;
  assert.ok(command.kind === 'command');
  assert.ok(command.undo!.includes('kernel.kptr_restrict=0'));
  assert.ok(!command.undo!.some((a) => a.startsWith('kernel.dmesg_restrict=')), 'dmesg_restrict was already 1');
  await undoPlan(run.plan, node);
  assert.deepEqual(await node.live(), FRESH);
  node.exec.assertNoUnexpected();
});

test('container: kernel.* keys are the host\'s and read-only, and a kernel without IPv6 lacks the net.ipv6 keys; both are left out and named in the file', async () => {
  const values = Object.fromEntries(Object.entries(FRESH).filter(([k]) => !k.startsWith('net.ipv6.')));
  const node = kernel(values, { readOnly: (key) => key.startsWith('kernel.') });
  const run = await runStep(sysctlStep, {}, node);
  const file = run.plan[0]!;
  assert.ok(file.kind === 'file');
  assert.doesNotMatch(file.after!, /^kernel\./m);
  assert.match(file.after!, /Not settable on this node \(absent or read-only here\):\n#   kernel\.kptr_restrict\n/);
  assert.match(file.after!, /^#   net\.ipv6\.conf\.all\.accept_redirects$/m);
  assert.deepEqual(failed(run.checks), []);
  assert.ok(!run.checks.some((c) => c.label.startsWith('kernel.')), 'verify checks only what could be set');
  assert.deepEqual(run.replan, []);
  assert.equal((await node.live())['kernel.kptr_restrict'], '0');
});

test('a node where nothing can be set is not applicable', async () => {
  const node = kernel(FRESH, { readOnly: () => true });
  const facts = await sysctlStep.probe(stepContext(node));
  assert.match(sysctlStep.notApplicable!(facts, stepContext(node).node) ?? '', /no setting can be changed here/);
  assert.equal(sysctlStep.notApplicable!(await sysctlStep.probe(stepContext(kernel(FRESH))), stepContext(node).node), undefined);
});

test('drift: a value changed at runtime after the apply fails verify, and the plan sets it again without rewriting the file', async () => {
  const node = kernel(FRESH);
  await runStep(sysctlStep, {}, node);
  node.files.set(proc('net.ipv4.conf.all.send_redirects'), '1\n');
  const ctx = stepContext(node);
  assert.deepEqual(failed(await sysctlStep.verify(ctx, {})), ['net.ipv4.conf.all.send_redirects = 0 (is 1)']);
  const plan = sysctlStep.plan(await sysctlStep.probe(ctx), {}, ctx.node);
  assert.deepEqual(plan.map(describeChange), [`run sysctl -p ${SYSCTL_FILE}`]);
  assert.deepEqual(plan[0]!.kind === 'command' && plan[0]!.undo, ['sysctl', '-w', 'net.ipv4.conf.all.send_redirects=1']);
});
