/** The document step: compliant while the newest document says what a new one would (apart from its date). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { accessPolicyStep, withoutDate } from '../../steps/access-policy.ts';
import { testNode } from '../fixtures/node.ts';

const policy = {
  node: { hostname: 'pve1', proxmox: '9.2.11', debian: '13 (trixie)', addresses: [], bridges: [], storage: [] },
  linuxAdmins: [],
  pveUsers: [],
  tokens: [],
  matrix: null,
  ssh: { error: 'not read' },
  breakGlass: null,
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
  const facts = { policy, date: '2026-11-22', hostname: 'pve1', dirExists: false, latest: null, today: null };
  const changes = accessPolicyStep.plan(facts, {}, testNode);
  assert.deepEqual(changes.map((c) => (c.kind === 'file' ? `${c.path} ${c.mode!.toString(8)}` : c.kind === 'command' ? c.argv.join(' ') : '')), [
    'install -d -m 0700 /root/pve-baseline',
    '/root/pve-baseline/access-policy-pve1-2026-11-22.md 600',
  ]);
  const written = changes[1]!.kind === 'file' ? changes[1]!.after! : '';
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
