/**
 * `pve-baseline check`: how step outcomes map to statuses and exit codes, and
 * the exact keys of the JSON report (README.md documents them; this keeps the
 * two from drifting apart).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkCommand } from '../../src/cli/commands/check.ts';
import { statusCommand } from '../../src/cli/commands/status.ts';
import type { Output } from '../../src/cli/commands/io.ts';
import { EXIT } from '../../src/cli/args.ts';
import type { Runtime } from '../../src/cli/runtime.ts';
import type { Step } from '../../src/engine/step.ts';
import { LocalFiles } from '../../src/system/files.ts';
import { RecordingExec } from '../fixtures/exec.ts';
import { testNode } from '../fixtures/node.ts';
import { bareStep, ensureFilesStep } from '../fixtures/steps.ts';
import { tempDir } from '../fixtures/temp.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { DATACENTER_RECORD } from '../../src/engine/datacenter.ts';

/** A step that wants nothing changed, but whose verification fails: the node is not as intended. */
const verifyFails: Step<null> = {
  id: 'verify-fails',
  title: 'Verification fails',
  summary: 'Plans nothing; its check does not hold.',
  scope: 'node',
  risk: 'safe',
  probe: async () => null,
  plan: () => [],
  verify: async () => [{ label: 'the setting holds', ok: false, detail: 'found 1, wanted 0' }],
};

/** A step whose plan a pre-flight refuses: also drift. */
const refused: Step<null> = {
  id: 'refused',
  title: 'Refused plan',
  summary: 'Its plan would lock the operator out.',
  scope: 'node',
  risk: 'lockout',
  probe: async () => null,
  plan: () => [{ kind: 'command', argv: ['true'], reason: 'fixture' }],
  preflight: () => [{ label: 'a way in remains', ok: false }],
  verify: async () => [],
};

/** A step that cannot even look at the node: an error. */
const probeThrows: Step<null> = {
  id: 'probe-throws',
  title: 'Probe throws',
  summary: 'Cannot read the node.',
  scope: 'node',
  risk: 'safe',
  probe: async () => {
    throw new Error('permission denied');
  },
  plan: () => [],
  verify: async () => [],
};

async function setup(t: { after(fn: () => unknown): void }) {
  const dir = await tempDir(t);
  const stateDir = path.join(dir, 'state');
  const runtime: Runtime = { exec: new RecordingExec(), files: new LocalFiles(), node: testNode, stateDir, backupsDir: path.join(stateDir, 'backups') };
  return { dir, stateDir, runtime };
}

async function check(runtime: Runtime, steps: Parameters<typeof checkCommand>[1]) {
  const out: string[] = [];
  const io: Output = { out: (l) => out.push(l), err: (l) => out.push(l) };
  const code = await checkCommand(runtime, steps, { json: true }, io);
  const report = JSON.parse(out.join('\n'));
  return { code, report, status: Object.fromEntries(report.steps.map((s: { id: string; status: string }) => [s.id, s.status])) };
}

test('check: a failed verification or a refused plan is drift (exit 1)', async (t) => {
  const { runtime, stateDir } = await setup(t);
  const { code, report, status } = await check(runtime, [bareStep('fine'), verifyFails, refused]);
  assert.deepEqual(status, { fine: 'compliant', 'verify-fails': 'drift', refused: 'drift' });
  assert.equal(report.compliant, false);
  assert.equal(code, EXIT.failedOrDrift);
  assert.equal(code, 1);
  assert.match(report.steps[1].reason, /the setting holds \(found 1, wanted 0\)/);
  assert.equal(existsSync(stateDir), false, 'check writes no journal');
});

test('check: a step that cannot probe is an error (exit 2), even beside drift', async (t) => {
  const { runtime } = await setup(t);
  const { code, report, status } = await check(runtime, [verifyFails, probeThrows]);
  assert.deepEqual(status, { 'verify-fails': 'drift', 'probe-throws': 'error' });
  assert.equal(report.compliant, false);
  assert.equal(code, 2);
  assert.match(report.steps[1].reason, /could not probe or plan: permission denied/);
});

test('check: all compliant exits 0', async (t) => {
  const { runtime } = await setup(t);
  const { code, report } = await check(runtime, [bareStep('a'), bareStep('b')]);
  assert.equal(report.compliant, true);
  assert.equal(code, 0);
});

test('check --json has exactly the documented keys', async (t) => {
  const { runtime, dir } = await setup(t);
  const wants = ensureFilesStep({ id: 'wants-file', title: 'Wants a file', files: [{ path: path.join(dir, 'etc', 'x.conf'), content: 'x = 1\n' }] });
  const guarded = {
    ...ensureFilesStep({ id: 'guarded-file', title: 'Guarded file', files: [{ path: path.join(dir, 'etc', 'fw.conf'), content: 'policy_in: DROP\n' }] }),
    risk: 'lockout' as const,
    guard: { reload: [['systemctl', 'reload', 'fw']], lastResort: [['fw', 'stop']], seconds: 90 },
  };
  // A datacenter step the cluster's record (/etc/pve, here in memory) names: `appliedFrom`.
  const clusterFiles = new MemoryFiles({ [DATACENTER_RECORD]: JSON.stringify({ schemaVersion: 1, steps: { 'cluster-wide': { node: 'pve2', at: '2026-12-03T17:40:00.000Z', changes: 2 } } }) });
  const local = runtime.files;
  const split = (file: string) => (file === '/etc/pve' || file.startsWith('/etc/pve/') ? clusterFiles : local);
  const files = new Proxy(local, { get: (target, name: keyof typeof local) => (typeof target[name] === 'function' ? (file: string, ...rest: unknown[]) => (split(file)[name] as (...a: unknown[]) => unknown)(file, ...rest) : target[name]) });
  const datacenter = { ...bareStep('cluster-wide'), scope: 'datacenter' as const };
  const { report } = await check({ ...runtime, files }, [wants, verifyFails, bareStep('fine'), guarded, datacenter]);
  assert.deepEqual(Object.keys(report), ['node', 'compliant', 'steps']);
  assert.deepEqual(report.node, { hostname: 'pve1', proxmox: '9.1.2', debian: '13 (trixie)' });
  assert.equal(typeof report.compliant, 'boolean');
  const [planned, failed, fine, lockout, elsewhere] = report.steps;
  // `guard` is there only for a change that can cut access: the revert it would run under.
  assert.deepEqual(Object.keys(lockout!), ['id', 'title', 'scope', 'status', 'changes', 'guard']);
  // `appliedFrom` only for a datacenter step the cluster's record names; here another node applied it.
  assert.deepEqual(Object.keys(elsewhere!), ['id', 'title', 'scope', 'status', 'appliedFrom', 'reason', 'changes', 'checks']);
  assert.deepEqual(elsewhere!.appliedFrom, { node: 'pve2', at: '2026-12-03T17:40:00.000Z' });
  assert.equal(elsewhere!.reason, 'datacenter-wide: applied from pve2 on 2026-12-03 17:40 UTC');
  assert.deepEqual(report.steps.map((s: { scope: string }) => s.scope), ['node', 'node', 'node', 'node', 'datacenter']);
  assert.deepEqual(lockout!.guard, { windowSeconds: 90, activation: 'on-reload', revertRuns: [['systemctl', 'reload', 'fw']], cleanup: [], lastResort: [['fw', 'stop']] });
  // `reason` is there only when the step has one.
  assert.deepEqual(Object.keys(planned), ['id', 'title', 'scope', 'status', 'changes']);
  // `checks` is there when verification ran: a compliant step, a step whose checks failed.
  assert.deepEqual(Object.keys(failed), ['id', 'title', 'scope', 'status', 'reason', 'changes', 'checks']);
  assert.deepEqual(Object.keys(fine), ['id', 'title', 'scope', 'status', 'changes', 'checks']);
  assert.deepEqual(planned.changes, [{ kind: 'file', summary: `create ${path.join(dir, 'etc', 'x.conf')}`, reason: 'the baseline wants this content' }]);
  for (const change of planned.changes) assert.deepEqual(Object.keys(change), ['kind', 'summary', 'reason']);
  for (const s of report.steps) {
    assert.ok(['compliant', 'drift', 'not-applicable', 'error'].includes(s.status));
    assert.ok(Array.isArray(s.changes));
  }
  // The README's field table names exactly these fields.
  const paths = new Set<string>(['steps', 'steps[].changes']);
  for (const k of Object.keys(report.node)) paths.add(`node.${k}`);
  for (const k of Object.keys(report)) if (k !== 'node') paths.add(k);
  for (const step of report.steps) for (const k of Object.keys(step)) paths.add(`steps[].${k}`);
  for (const k of Object.keys(planned.changes[0])) paths.add(`steps[].changes[].${k}`);
  for (const k of Object.keys(lockout!.guard!)) paths.add(`steps[].guard.${k}`);
  for (const c of [...(fine!.checks ?? []), ...(failed!.checks ?? [])]) for (const k of Object.keys(c)) paths.add(`steps[].checks[].${k}`);
  assert.deepEqual([...documentedFields()].sort(), [...paths].sort());
});

/** The fields in README.md's `check --json` table. */
function documentedFields(): Set<string> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.split('### The `check --json` contract')[1]?.split(/^#{2,3} /m)[0] ?? '';
  const fields = [...section.matchAll(/^\| `([A-Za-z.[\]]+)` \|/gm)].map((m) => m[1]!);
  assert.ok(fields.length > 0, 'README.md has the check --json field table');
  return new Set(fields);
}

test('check and status over a damaged journal: refused naming the file, never "compliant" or "no step has run"', async (t) => {
  const { runtime, stateDir } = await setup(t);
  await mkdir(stateDir, { recursive: true });
  const journal = path.join(stateDir, 'journal.json');
  await writeFile(journal, '{"schemaVersion":1,"steps":{"fine":{"status":"verif');
  const out: string[] = [];
  const io: Output = { out: (l) => out.push(l), err: (l) => out.push(l) };
  await assert.rejects(checkCommand(runtime, [bareStep('fine')], { json: true }, io), { name: 'JournalCorruptError', file: journal });
  await assert.rejects(statusCommand(runtime, [bareStep('fine')], { json: false }, io), { name: 'JournalCorruptError', file: journal });
  assert.deepEqual(out, [], 'nothing printed as if the journal were empty');
  assert.equal(readFileSync(journal, 'utf8'), '{"schemaVersion":1,"steps":{"fine":{"status":"verif', 'left as it was');
});

test('status shows the config backup\'s last run beside the journal: a failure with the last good one, and the same in --json', async (t) => {
  const { runtime, stateDir } = await setup(t);
  const { runner } = await import('../fixtures/harness.ts').then((h) => h.engine({ stateDir, steps: [bareStep('fine')] }));
  await runner.run();
  await mkdir(path.join(stateDir, 'config-backup'), { recursive: true });
  const good = { at: '2026-12-01T03:00:00.000Z', ok: true, archive: { name: 'pve1-config-20261201T030000Z.tar.gz.age', path: '/x', sha256: 'ab', bytes: 1, files: 1 }, ms: {} };
  const failed = { at: '2026-12-02T03:00:00.000Z', ok: false, error: 'not copied off the node: cannot reach 10.0.0.9:22', ms: {} };
  await writeFile(path.join(stateDir, 'config-backup', 'last.json'), JSON.stringify({ last: failed, lastGood: good }));
  const out: string[] = [];
  const io: Output = { out: (l) => out.push(l), err: (l) => out.push(l) };
  await statusCommand(runtime, [bareStep('fine')], { json: false }, io);
  assert.deepEqual(out.slice(-2), ['Config backup: the last run 2026-12-02T03:00:00.000Z FAILED: not copied off the node: cannot reach 10.0.0.9:22', '  the last good one: 2026-12-01T03:00:00.000Z: pve1-config-20261201T030000Z.tar.gz.age']);
  const json: string[] = [];
  await statusCommand(runtime, [bareStep('fine')], { json: true }, { out: (l) => json.push(l), err: (l) => json.push(l) });
  assert.deepEqual(JSON.parse(json.join('\n')).configBackup, { last: failed, lastGood: good });
});
