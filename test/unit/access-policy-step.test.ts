/** The document step: compliant while the newest document says what a new one would (apart from its date). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { accessPolicyStep, makeAccessPolicyStep, withoutDate } from '../../steps/access-policy.ts';
import type { AnyStep, StepContext } from '../../src/engine/step.ts';
import type { StepRecord } from '../../src/engine/journal.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { scriptedExec } from '../fixtures/scripted-exec.ts';
import { testNode } from '../fixtures/node.ts';

const policy = {
  node: { hostname: 'pve1', proxmox: '9.2.11', debian: '13 (trixie)', addresses: [], bridges: [], storage: [] },
  linuxAdmins: [],
  pveUsers: [],
  tokens: [],
  matrix: null,
  sections: [],
  changes: [],
  evidence: [],
};

test('withoutDate ignores only the date and version line', () => {
  const a = 'x\nWritten by pve-baseline 0.1.0 on 2026-11-22 from the node\'s own state.\n';
  const b = 'x\nWritten by pve-baseline 0.2.0 on 2027-01-05 from the node\'s own state.\n';
  assert.equal(withoutDate(a), withoutDate(b));
  assert.notEqual(withoutDate(a), withoutDate(`${a}more\n`));
});

test('no document: the plan makes the folder (0700) and writes one (0600); the same document later is compliant', () => {
  const facts = { policy, date: '2026-11-22', version: '0.1.0', hostname: 'pve1', dirExists: false, latest: null, today: null };
  const changes = accessPolicyStep.plan(facts, {}, testNode);
  assert.deepEqual(changes.map((c) => (c.kind === 'file' ? `${c.path} ${c.mode!.toString(8)}` : c.kind === 'command' ? c.argv.join(' ') : '')), [
    'install -d -m 0700 /root/pve-baseline',
    '/root/pve-baseline/access-policy-pve1-2026-11-22.md 600',
  ]);
  const written = changes[1]!.kind === 'file' ? changes[1]!.after! : '';
  assert.match(written, /^Written by pve-baseline 0\.1\.0 on 2026-11-22 /m, 'the version the entry point gave, not one the step looked up');
  // A day later, nothing changed on the node: compliant.
  const later = { ...facts, date: '2026-11-23', dirExists: true, latest: { path: '/root/pve-baseline/access-policy-pve1-2026-11-22.md', text: written } };
  assert.deepEqual(accessPolicyStep.plan(later, {}, testNode), []);
  // Someone got a new account: drift, and the reason names the old document.
  const changed = { ...later, policy: { ...policy, linuxAdmins: [{ name: 'mallory', uid: 1005, shell: '/bin/bash', sudo: true, password: 'set' as const }] } };
  const plan = accessPolicyStep.plan(changed, {}, testNode);
  assert.equal(plan.length, 1);
  assert.match(plan[0]!.reason, /the node changed since \/root\/pve-baseline\/access-policy-pve1-2026-11-22\.md was written/);
});

test('probe finds the newest document of this node only', async (t) => {
  const { tempDir } = await import('../fixtures/temp.ts');
  const dir = await tempDir(t);
  // The step reads DOC_DIR; exercise the same listing rule on a temp folder through the Files interface.
  const { LocalFiles } = await import('../../src/system/files.ts');
  const files = new LocalFiles();
  await mkdir(path.join(dir, 'docs'));
  for (const name of ['access-policy-pve1-2026-01-02.md', 'access-policy-pve1-2026-03-04.md', 'access-policy-pve2-2027-01-01.md', 'notes.md']) {
    await writeFile(path.join(dir, 'docs', name), name);
  }
  const listed = (await files.list(path.join(dir, 'docs'))).filter((n) => /^access-policy-pve1-\d{4}-\d{2}-\d{2}\.md$/.test(n));
  assert.deepEqual(listed, ['access-policy-pve1-2026-01-02.md', 'access-policy-pve1-2026-03-04.md']);
  assert.deepEqual(await files.list(path.join(dir, 'missing')), []);
  assert.equal(await readFile(path.join(dir, 'docs', listed.at(-1)!), 'utf8'), 'access-policy-pve1-2026-03-04.md');
});

test('a new step brings its own section: the document step writes it in catalogue order, and drift in it makes the document out of date', async () => {
  let rules = 'SSH from 10.0.0.0/8';
  const step = (id: string, document?: AnyStep['document']): AnyStep => ({ id, title: id, summary: '', scope: 'node', risk: 'safe', probe: async () => ({}), plan: () => [], verify: async () => [], ...(document ? { document } : {}) });
  const catalogue: AnyStep[] = [
    step('admin', async () => ({ heading: 'Admin', blocks: [{ kind: 'paragraph', text: 'alice' }] })),
    step('firewall', async (ctx) => ({ heading: 'Firewall', blocks: [{ kind: 'table', head: ['Rule'], rows: [[rules]] }], evidence: [`read /etc/pve/nodes/${ctx.node.hostname}/host.fw`] })),
  ];
  const docStep = makeAccessPolicyStep(async () => [...catalogue, docStep]);
  catalogue.push(step('later', async () => ({ heading: 'Later', blocks: [{ kind: 'list', items: ['one'] }] })));
  const files = new MemoryFiles({ '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\n', '/etc/group': 'root:x:0:\n', '/etc/shadow': 'root:*:19000:0:99999:7:::\n' });
  const ctx: StepContext = {
    exec: scriptedExec(),
    files,
    node: { ...testNode, proxmox: null },
    log: () => undefined,
    answersOf: () => ({}),
    journalRecords: () => ({}) as Record<string, StepRecord>,
    toolVersion: '0.1.0',
  };
  const facts = await docStep.probe(ctx);
  const plan = docStep.plan(facts, {}, ctx.node);
  const text = plan.find((c) => c.kind === 'file')!;
  const doc = text.kind === 'file' ? text.after! : '';
  const order = doc.split('\n').filter((l) => l.startsWith('## ')).map((l) => l.slice(3));
  assert.deepEqual(order.slice(order.indexOf('API tokens') + 1, order.indexOf('Recovery procedures')), ['Admin', 'Firewall', 'Later']);
  assert.match(doc, /## Firewall\n\n\| Rule \|\n\| --- \|\n\| SSH from 10\.0\.0\.0\/8 \|/);
  assert.match(doc, /- `read \/etc\/pve\/nodes\/pve1\/host\.fw`/);

  // The same document on the node is compliant; a change in the step's own part is drift.
  files.set('/root/pve-baseline/access-policy-pve1-2026-11-22.md', doc);
  assert.deepEqual(docStep.plan(await docStep.probe(ctx), {}, ctx.node), []);
  rules = 'SSH from anywhere';
  const drift = docStep.plan(await docStep.probe(ctx), {}, ctx.node);
  assert.equal(drift.length, 1);
  assert.match(drift[0]!.kind === 'file' ? drift[0]!.after! : '', /\| SSH from anywhere \|/);
});
