/**
 * Datacenter and node steps in a cluster: two nodes (pve1, pve2) with their
 * own state directories and one shared /etc/pve (as pmxcfs replicates it).
 * A datacenter step applied on pve1 is recorded in
 * /etc/pve/pve-baseline/datacenter.json; pve2 sees it compliant and names
 * pve1; a node-scope change of the same step still applies on pve2 and the
 * record keeps naming pve1; reverting on pve1 removes the entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Journal } from '../../src/engine/journal.ts';
import { Runner } from '../../src/engine/runner.ts';
import type { AccessDecision, Operator, RunnerEvent } from '../../src/engine/events.ts';
import type { Change } from '../../src/engine/change.ts';
import type { Step } from '../../src/engine/step.ts';
import { DATACENTER_RECORD, expectDatacenterApply, parseDatacenterRecord, readDatacenterRecord, settleDatacenterApply } from '../../src/engine/datacenter.ts';
import { checkCommand } from '../../src/cli/commands/check.ts';
import { statusCommand } from '../../src/cli/commands/status.ts';
import { revertCommand } from '../../src/cli/commands/revert.ts';
import type { Output } from '../../src/cli/commands/io.ts';
import type { Runtime } from '../../src/cli/runtime.ts';
import { collectPolicyFacts } from '../../src/report/facts.ts';
import { renderAccessPolicy } from '../../src/report/access-policy.ts';
import { planText } from '../../src/cli/plain-output.ts';
import { LocalExec, type Exec } from '../../src/system/exec.ts';
import { BackupStore, LocalFiles, type FileMeta, type Files, type WriteOptions } from '../../src/system/files.ts';
import type { NodeInfo } from '../../src/system/detect.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { ScriptedExec } from '../fixtures/scripted-exec.ts';
import { ScriptedOperator } from '../fixtures/operator.ts';
import { bareStep } from '../fixtures/steps.ts';
import { testNode } from '../fixtures/node.ts';
import { tempDir } from '../fixtures/temp.ts';

/** One node's view of the files: /etc/pve is the cluster's (shared), everything else the node's own disk. */
class NodeFiles implements Files {
  constructor(
    readonly shared: MemoryFiles,
    readonly local: Files = new LocalFiles(),
  ) {}
  #of(file: string): Files {
    return file === '/etc/pve' || file.startsWith('/etc/pve/') ? this.shared : this.local;
  }
  read(file: string): Promise<string | null> {
    return this.#of(file).read(file);
  }
  meta(file: string): Promise<FileMeta | null> {
    return this.#of(file).meta(file);
  }
  write(file: string, content: string, options?: WriteOptions): Promise<void> {
    return this.#of(file).write(file, content, options);
  }
  remove(file: string): Promise<void> {
    return this.#of(file).remove(file);
  }
  rename(from: string, to: string): Promise<void> {
    return this.#of(from).rename(from, to);
  }
  symlink(target: string, file: string): Promise<void> {
    return this.#of(file).symlink(target, file);
  }
  writable(file: string): Promise<boolean> {
    return this.#of(file).writable(file);
  }
  list(dir: string): Promise<string[]> {
    return this.#of(dir).list(dir);
  }
}

const DC_FILE = '/etc/pve/dc.cfg';
const hostFile = (node: string) => `/etc/pve/nodes/${node}/host.cfg`;

/**
 * A datacenter step in the manner of the firewall: one shared setting
 * (/etc/pve/dc.cfg) and one per node (its host.cfg, scope 'node'), each set
 * by a program (here a scripted one that writes the shared files).
 */
function clusterStep(): Step<{ node: string; dc: string | null; host: string | null }> {
  return {
    id: 'cluster-policy',
    title: 'Cluster policy',
    summary: 'A shared setting and a per-node one.',
    scope: 'datacenter',
    risk: 'safe',
    async probe(ctx) {
      const node = ctx.node.hostname;
      return { node, dc: await ctx.files.read(DC_FILE), host: await ctx.files.read(hostFile(node)) };
    },
    plan(facts) {
      const changes: Change[] = [];
      if (facts.dc !== 'policy: on\n') changes.push({ kind: 'command', argv: ['dc-set', 'on'], undo: ['dc-set', 'off'], reason: 'the shared policy on' });
      if (facts.host !== 'enable: 1\n') changes.push({ kind: 'command', argv: ['host-set', facts.node], undo: ['host-unset', facts.node], scope: 'node', reason: "this node's own switch on" });
      return changes;
    },
    async verify(ctx) {
      return [
        { label: 'the shared policy is on', ok: (await ctx.files.read(DC_FILE)) === 'policy: on\n' },
        { label: 'this node is on', ok: (await ctx.files.read(hostFile(ctx.node.hostname))) === 'enable: 1\n' },
      ];
    },
  };
}

/** The programs the step runs, writing the shared files as pvesh would. */
function clusterExec(shared: MemoryFiles): ScriptedExec {
  return new ScriptedExec([
    [(argv) => argv[0] === 'dc-set', async (argv) => (await shared.write(DC_FILE, `policy: ${argv[1]}\n`), {})],
    [(argv) => argv[0] === 'host-set', async (argv) => (await shared.write(hostFile(argv[1]!), 'enable: 1\n'), {})],
    [(argv) => argv[0] === 'host-unset', async (argv) => (await shared.remove(hostFile(argv[1]!)), {})],
  ]);
}

interface ClusterNode {
  name: string;
  node: NodeInfo;
  files: NodeFiles;
  exec: Exec;
  stateDir: string;
  runtime: Runtime;
}

async function cluster(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  // /etc/pve exists on both (pmxcfs); nothing of pve-baseline's is in it yet.
  const shared = new MemoryFiles({ '/etc/pve/corosync.conf': 'totem {}\n' });
  const exec = clusterExec(shared);
  const make = (name: string): ClusterNode => {
    const node: NodeInfo = { ...testNode, hostname: name };
    const files = new NodeFiles(shared);
    const stateDir = path.join(dir, name, 'state');
    return { name, node, files, exec, stateDir, runtime: { exec, files, node, stateDir, backupsDir: path.join(stateDir, 'backups') } };
  };
  return { dir, shared, pve1: make('pve1'), pve2: make('pve2') };
}

function runOn(n: ClusterNode, steps: Step<any>[], o: { dryRun?: boolean; operator?: Operator } = {}) {
  const events: RunnerEvent[] = [];
  const journal = Journal.open(n.stateDir, 'boot-1');
  const runner = new Runner({
    steps,
    journal,
    backups: new BackupStore(path.join(n.stateDir, 'backups')),
    operator: o.operator ?? new ScriptedOperator(),
    ctx: { exec: n.exec, files: n.files, node: n.node },
    onEvent: (e) => events.push(e),
    ...(o.dryRun ? { dryRun: true } : {}),
  });
  return { events, journal, results: runner.run() };
}

function io(): { lines: string[]; io: Output } {
  const lines: string[] = [];
  return { lines, io: { out: (l) => lines.push(l), err: (l) => lines.push(l) } };
}

const recordOf = async (shared: MemoryFiles) => JSON.parse((await shared.read(DATACENTER_RECORD))!) as { schemaVersion: number; steps: Record<string, { node: string; at: string; applyId?: string; changes: number }> };

test('applied on pve1: the shared record names pve1, with the apply id and the count of shared changes (0640)', async (t) => {
  const { shared, pve1 } = await cluster(t);
  const { results, journal } = runOn(pve1, [clusterStep()]);
  const [r] = await results;
  assert.equal(r!.outcome, 'verified', r!.reason);
  const record = await recordOf(shared);
  assert.equal(record.schemaVersion, 1);
  assert.deepEqual(Object.keys(record.steps), ['cluster-policy']);
  const entry = record.steps['cluster-policy']!;
  assert.equal(entry.node, 'pve1');
  assert.equal(entry.applyId, journal.step('cluster-policy')!.applyId);
  assert.equal(entry.changes, 1, 'only the shared change counts; the node switch is pve1\'s own');
  assert.ok(Math.abs(Date.parse(entry.at) - Date.now()) < 60_000);
  assert.equal((await shared.meta(DATACENTER_RECORD))!.mode, 0o640);
  // The count waited in pve1's state directory only until the step was verified.
  assert.equal(existsSync(path.join(pve1.stateDir, 'datacenter-pending.json')), false);
});

test('pve2: the node part applies, the datacenter part is compliant naming pve1; the next run is compliant with the reason', async (t) => {
  const { shared, pve1, pve2 } = await cluster(t);
  await runOn(pve1, [clusterStep()]).results;
  const before = await shared.read(DATACENTER_RECORD);

  const first = runOn(pve2, [clusterStep()]);
  const [r] = await first.results;
  assert.equal(r!.outcome, 'verified', r!.reason);
  assert.match(r!.reason!, /^the datacenter part is compliant \(applied from pve1 on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\); the changes are this node's own$/);
  const planned = first.events.find((e) => e.type === 'step-planned');
  assert.ok(planned?.type === 'step-planned');
  assert.deepEqual(planned.plan.changes.map((c) => c.kind === 'command' && c.argv), [['host-set', 'pve2']], 'only pve2\'s own change');
  assert.match(planned.plan.notes![0]!, /^The datacenter part is compliant \(applied from pve1 on .* UTC\); what is planned here changes this node \(pve2\) only\.$/);
  assert.equal(await shared.read(hostFile('pve2')), 'enable: 1\n');
  assert.equal(await shared.read(DATACENTER_RECORD), before, 'a node-scope apply leaves the record naming pve1');

  const again = runOn(pve2, [clusterStep()]);
  const [c] = await again.results;
  assert.equal(c!.outcome, 'compliant');
  const entry = (await recordOf(shared)).steps['cluster-policy']!;
  const when = `${entry.at.slice(0, 10)} ${entry.at.slice(11, 16)} UTC`;
  assert.equal(c!.reason, `datacenter-wide: applied from pve1 on ${when}`);
  // On pve1 itself the step is compliant without a word about another node.
  const [own] = await runOn(pve1, [clusterStep()]).results;
  assert.equal(own!.outcome, 'compliant');
  assert.equal(own!.reason, undefined);
});

test('pve2 compliant from the start: the journal note, check --json and status on pve2 name pve1', async (t) => {
  const { shared, pve1, pve2 } = await cluster(t);
  await runOn(pve1, [clusterStep()]).results;
  await shared.write(hostFile('pve2'), 'enable: 1\n');
  const steps = [clusterStep(), bareStep('local')];
  const run = runOn(pve2, steps);
  const [c] = await run.results;
  assert.equal(c!.outcome, 'compliant');
  const entry = (await recordOf(shared)).steps['cluster-policy']!;
  assert.equal(run.journal.step('cluster-policy')!.history.at(-1)!.note, c!.reason);
  assert.match(c!.reason!, /^datacenter-wide: applied from pve1 on /);

  const check = io();
  assert.equal(await checkCommand(pve2.runtime, steps, { json: true }, check.io), 0);
  const report = JSON.parse(check.lines.join('\n'));
  assert.deepEqual(
    report.steps.map((s: { id: string; scope: string; appliedFrom?: unknown }) => [s.id, s.scope, s.appliedFrom]),
    [
      ['cluster-policy', 'datacenter', { node: 'pve1', at: entry.at }],
      ['local', 'node', undefined],
    ],
  );
  assert.equal(report.steps[0].reason, c!.reason);

  const text = io();
  await statusCommand(pve2.runtime, steps, { json: false }, text.io);
  const out = text.lines.join('\n');
  assert.match(out, /^cluster-policy +verified .*\n(?: {17}.*\n)* {17}datacenter-wide: applied from pve1 on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/m);
  assert.match(out, /^local +verified .*\n(?: {17}.*\n)* {17}per node: this node \(pve2\)$/m);
  const json = io();
  await statusCommand(pve2.runtime, steps, { json: true }, json.io);
  const status = JSON.parse(json.lines.join('\n'));
  assert.deepEqual(status.scopes, { 'cluster-policy': { scope: 'datacenter', appliedFrom: { node: 'pve1', at: entry.at } }, local: { scope: 'node', node: 'pve2' } });

  // The document names the node it is written on, and who applied each step.
  const facts = await collectPolicyFacts(pve2.runtime, steps, run.journal.all(), run.journal.path);
  const doc = renderAccessPolicy(facts, { date: '2026-12-03', version: '0.1.0' });
  assert.match(doc, /^Written by pve-baseline 0\.1\.0 on 2026-12-03 from the node's own state \(node pve2\)\. /m);
  assert.match(doc, /\| cluster-policy \| verified \|.*\| datacenter-wide: pve1 on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC \|$/m);
  assert.match(doc, /\| local \| verified \|.*\| per node: pve2 \|$/m);
});

test('pve2 plans shared changes pve1 applied: a note says they are shared and who applied them last, and nothing is refused', async (t) => {
  const { shared, pve1, pve2 } = await cluster(t);
  await runOn(pve1, [clusterStep()]).results;
  await shared.write(DC_FILE, 'policy: off\n'); // someone turned it off by hand
  const dry = runOn(pve2, [clusterStep()], { dryRun: true });
  const [r] = await dry.results;
  assert.equal(r!.outcome, 'planned');
  const planned = dry.events.find((e) => e.type === 'step-planned');
  assert.ok(planned?.type === 'step-planned');
  assert.match(planned.plan.notes![0]!, /^These settings are shared by every node of the cluster \(\/etc\/pve\); they were last applied from pve1 on .* UTC\. Applying them here changes them for every node\.$/);
  assert.match(planned.plan.notes![1]!, /^This node's own \(pve2\), not shared: run host-set pve2\.$/);
  assert.ok(planText(planned.plan).some((l) => l.includes('shared by every node')), 'headless output shows the note');

  // Applied from pve2, the record names pve2 now.
  const [applied] = await runOn(pve2, [clusterStep()]).results;
  assert.equal(applied!.outcome, 'verified');
  assert.equal((await recordOf(shared)).steps['cluster-policy']!.node, 'pve2');
});

test('revert on pve1 removes its entry; a revert on pve2 of its node change leaves pve1\'s', async (t) => {
  const { shared, pve1, pve2 } = await cluster(t);
  await runOn(pve1, [clusterStep()]).results;
  await runOn(pve2, [clusterStep()]).results;
  const steps = [clusterStep()];

  const two = io();
  assert.equal(await revertCommand(pve2.runtime, steps, { step: 'cluster-policy', yes: true }, two.io), 0, two.lines.join('\n'));
  assert.equal(await shared.read(hostFile('pve2')), null, 'pve2\'s own change undone');
  assert.equal((await recordOf(shared)).steps['cluster-policy']?.node, 'pve1', 'pve1 applied the shared part; it is still there');

  const one = io();
  assert.equal(await revertCommand(pve1.runtime, steps, { step: 'cluster-policy', yes: true }, one.io), 0, one.lines.join('\n'));
  assert.equal(await shared.read(DC_FILE), 'policy: off\n');
  assert.deepEqual((await recordOf(shared)).steps, {}, 'the entry went with the revert');
});

test('a damaged or foreign record is ignored with a note, never a crash; a newer one is never written over', async (t) => {
  const { shared, pve1, pve2 } = await cluster(t);
  await shared.write(DATACENTER_RECORD, '{"schemaVersion":1,"steps":{"cluster-pol');
  const run = runOn(pve1, [clusterStep()]);
  const [r] = await run.results;
  assert.equal(r!.outcome, 'verified');
  assert.ok(run.events.some((e) => e.type === 'output' && /datacenter\.json is not JSON; it/.test(e.line)), 'the damage is said');
  assert.equal((await recordOf(shared)).steps['cluster-policy']!.node, 'pve1', 'replaced by a valid record');

  // Entries one by one: a bad one is left out, the others read.
  const parsed = parseDatacenterRecord(
    JSON.stringify({ schemaVersion: 1, steps: { firewall: { node: 'pve1', at: '2026-12-03T17:40:00.000Z', changes: 2 }, 'two-factor': { node: 'pve1\nx', at: 'x', changes: 1 }, 'a\u001bb': {} } }),
  );
  assert.deepEqual(Object.keys(parsed.entries), ['firewall']);
  assert.equal(parsed.notes.length, 2);
  assert.ok(parsed.notes.every((n) => !/[\x00-\x1f]/.test(n)), 'no control character reaches a note');
  for (const text of ['[]', 'null', '{"steps":{}}', '"x"', 'x'.repeat(70_000)]) assert.deepEqual(parseDatacenterRecord(text).entries, {});

  const newer = '{"schemaVersion":2,"steps":{"cluster-policy":"theirs"}}\n';
  await shared.write(DATACENTER_RECORD, newer);
  await shared.write(DC_FILE, 'policy: off\n');
  const [again] = await runOn(pve2, [clusterStep()]).results;
  assert.equal(again!.outcome, 'verified');
  assert.equal(await shared.read(DATACENTER_RECORD), newer, 'left as it is');
  const status = io();
  await statusCommand(pve2.runtime, [clusterStep()], { json: false }, status.io);
  assert.match(status.lines.join('\n'), /written by a newer pve-baseline \(schema 2\)/);
});

test('without /etc/pve (not a Proxmox node, a rehearsal) nothing is written there, and nothing waits in the state directory', async (t) => {
  const dir = await tempDir(t);
  const files = new MemoryFiles({ '/srv/dc.cfg': 'policy: off\n' });
  const step: Step<{ dc: string | null }> = {
    id: 'cluster-policy',
    title: 'Cluster policy',
    summary: 'x',
    scope: 'datacenter',
    risk: 'safe',
    probe: async (ctx) => ({ dc: await ctx.files.read('/srv/dc.cfg') }),
    plan: (facts) => (facts.dc === 'policy: on\n' ? [] : [{ kind: 'file', path: '/srv/dc.cfg', before: facts.dc, after: 'policy: on\n', reason: 'on' }]),
    verify: async (ctx) => [{ label: 'on', ok: (await ctx.files.read('/srv/dc.cfg')) === 'policy: on\n' }],
  };
  const runner = new Runner({
    steps: [step],
    journal: Journal.open(path.join(dir, 'state'), 'boot-1'),
    backups: new BackupStore(path.join(dir, 'state', 'backups')),
    operator: new ScriptedOperator(),
    ctx: { exec: new ScriptedExec(), files, node: testNode },
  });
  const [r] = await runner.run();
  assert.equal(r!.outcome, 'verified');
  assert.deepEqual(files.changed, ['/srv/dc.cfg']);
  assert.deepEqual(await readDatacenterRecord(files), { entries: {}, notes: [] });
});

test('a guarded apply left awaiting confirmation is recorded only when kept: not at the apply, but at pve-baseline confirm', { skip: process.getuid?.() !== 0 && 'arming writes root-owned files' }, async (t) => {
  const { dir, shared, pve1 } = await cluster(t);
  const target = path.join(dir, 'cluster.fw');
  await writeFile(target, 'enable: 0\n');
  const guarded: Step<{ content: string | null }> = {
    id: 'cluster-guarded',
    title: 'Guarded datacenter change',
    summary: 'x',
    scope: 'datacenter',
    risk: 'lockout',
    guard: { reload: [['true']], seconds: 60 },
    probe: async (ctx) => ({ content: await ctx.files.read(target) }),
    plan: (facts) => (facts.content === 'enable: 1\n' ? [] : [{ kind: 'file', path: target, before: facts.content, after: 'enable: 1\n', reason: 'on' }]),
    verify: async () => [{ label: 'on', ok: true }],
  };
  const node: ClusterNode = { ...pve1, exec: new LocalExec(), runtime: { ...pve1.runtime, exec: new LocalExec() } };
  const journal = Journal.open(node.stateDir, 'boot-1');
  const runner = (op: Operator) =>
    new Runner({
      steps: [guarded],
      journal,
      backups: new BackupStore(path.join(node.stateDir, 'backups')),
      operator: op,
      ctx: { exec: node.exec, files: node.files, node: node.node },
      revert: { unitDir: path.join(dir, 'units'), forceFallback: true },
    }).run();
  const headless: Operator = { answer: async () => undefined, review: async () => 'apply' };
  const [r] = await runner(headless);
  assert.equal(r!.outcome, 'awaiting-confirmation', r!.reason);
  assert.equal(await shared.read(DATACENTER_RECORD), null, 'not recorded while the node may still revert it');

  const { confirmCommand } = await import('../../src/cli/commands/confirm.ts');
  const out = io();
  const session = { auditSession: 'another-login', sshConnection: '192.0.2.9 50000 192.0.2.10 22', tty: null };
  assert.equal(await confirmCommand(node.runtime, out.io, { unitDir: path.join(dir, 'units'), session }), 0, out.lines.join('\n'));
  const entry = (await recordOf(shared)).steps['cluster-guarded']!;
  assert.equal(entry.node, 'pve1');
  assert.equal(entry.applyId, Journal.open(node.stateDir, 'boot-1').step('cluster-guarded')!.applyId);
  assert.equal(await readFile(target, 'utf8'), 'enable: 1\n');

  // Kept by the wizard (on the console, by the operator's choice): recorded as well.
  await shared.remove(DATACENTER_RECORD);
  await writeFile(target, 'enable: 0\n');
  const console: Operator = { ...headless, confirmAccess: async (): Promise<AccessDecision> => ({ kind: 'skipped' }) };
  const [kept] = await runner(console);
  assert.equal(kept!.outcome, 'verified', kept!.reason);
  assert.equal((await recordOf(shared)).steps['cluster-guarded']!.node, 'pve1');
});

test('the count waits for its own apply: another apply id settles nothing', async (t) => {
  const dir = await tempDir(t);
  const files = new NodeFiles(new MemoryFiles({ '/etc/pve/corosync.conf': '' }));
  const state = path.join(dir, 'state');
  assert.deepEqual(await expectDatacenterApply(files, state, 'firewall', 'apply-1', 3), []);
  assert.deepEqual(await settleDatacenterApply(files, state, { hostname: 'pve1.example.com' }, 'firewall', 'apply-0'), []);
  assert.equal(await files.read(DATACENTER_RECORD), null);
  await settleDatacenterApply(files, state, { hostname: 'pve1.example.com' }, 'firewall', 'apply-1');
  const entry = (await readDatacenterRecord(files)).entries.firewall!;
  assert.deepEqual({ node: entry.node, applyId: entry.applyId, changes: entry.changes }, { node: 'pve1', applyId: 'apply-1', changes: 3 });
  assert.equal(await readFile(path.join(state, 'datacenter-pending.json'), 'utf8').catch(() => null), null, 'settled, the note is gone');
});
