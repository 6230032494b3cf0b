/**
 * The break-glass step on fakes: probe -> plan -> apply -> verify. The account
 * it makes must open nothing until the documented procedure enables it: no
 * usable password, no key, its Proxmox user switched off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange } from '../../src/engine/change.ts';
import { breakGlassStep } from '../../steps/break-glass.ts';
import { FakeAccounts } from '../fixtures/fake-accounts.ts';
import { failed, runStep, stepContext, undoPlan } from '../fixtures/step-run.ts';

const ADMIN = { name: 'alice', uid: 1000, password: '$y$j9T$alicealicealice$hash', groups: ['sudo'] };
const ROOT_ACL = [{ path: '/', roleid: 'Administrator', type: 'user' as const, ugid: 'root@pam', propagate: 1 }];

test('not wanted: plans nothing, changes nothing, and verify says so', async () => {
  const node = new FakeAccounts({ accounts: [ADMIN], acl: ROOT_ACL });
  const run = await runStep(breakGlassStep, { wanted: false }, node);
  assert.deepEqual(run.plan, []);
  assert.deepEqual(failed(run.checks), []);
  assert.deepEqual(node.files.changed, []);
  assert.ok(node.exec.argvs.every((argv) => argv[0] === 'pveum' && argv[2] === 'list'), 'only reads');
});

test('wanted on a fresh node: a disabled account and a disabled Administrator NAME@pam; a second run plans nothing; undo removes both', async () => {
  const node = new FakeAccounts({ accounts: [ADMIN], acl: ROOT_ACL });
  const original = node.files.snapshot();
  const run = await runStep(breakGlassStep, { wanted: true, name: 'breakglass' }, node);
  assert.deepEqual(run.plan.map(describeChange), [
    "run useradd --create-home --shell /bin/bash --groups sudo --comment 'pve-baseline break-glass account (disabled until needed)' breakglass",
    "run pveum user add breakglass@pam --enable 0 --comment 'pve-baseline break-glass account (disabled until needed)'",
    'run pveum acl modify / --users breakglass@pam --roles Administrator',
  ]);
  assert.deepEqual(failed(run.checks), []);
  assert.deepEqual(run.replan, []);
  assert.match(node.files.snapshot()['/etc/shadow']!, /^breakglass:!:/m, 'no usable password');
  assert.deepEqual(node.pveUsers.find((u) => u.userid === 'breakglass@pam')?.enable, 0);

  // The wizard offers the existing account next time.
  const facts = await breakGlassStep.probe(stepContext(node));
  const wanted = breakGlassStep.questions!.find((q) => q.id === 'wanted')!;
  const name = breakGlassStep.questions!.find((q) => q.id === 'name')!;
  assert.equal(wanted.kind === 'confirm' && wanted.detect?.(facts), true);
  assert.equal(name.kind === 'text' && name.detect?.(facts), 'breakglass');

  await undoPlan(run.plan, node);
  assert.deepEqual(node.files.snapshot(), original);
  assert.deepEqual(node.pveUsers.map((u) => u.userid), ['root@pam']);
  assert.deepEqual(node.acl, ROOT_ACL);
  node.exec.assertNoUnexpected();
});

test('an existing account that needs no password is locked, put in sudo, and its enabled Proxmox user switched off', async () => {
  const node = new FakeAccounts({
    accounts: [ADMIN, { name: 'emergency', uid: 1001, password: '' }],
    pveUsers: [{ userid: 'root@pam', enable: 1 }, { userid: 'emergency@pam', enable: 1 }],
    acl: ROOT_ACL,
  });
  const answers = { wanted: true, name: 'emergency' };
  const before = await breakGlassStep.verify(stepContext(node), answers);
  assert.deepEqual(failed(before), ['emergency has no usable password (password: empty)', 'emergency@pam exists and is disabled']);

  const run = await runStep(breakGlassStep, answers, node);
  assert.deepEqual(run.plan.map(describeChange), [
    'run usermod --lock emergency',
    'run usermod --append --groups sudo emergency',
    'run pveum user modify emergency@pam --enable 0',
    'run pveum acl modify / --users emergency@pam --roles Administrator',
  ]);
  assert.deepEqual(failed(run.checks), []);
  assert.deepEqual(run.replan, []);
});

test('verify fails when somebody has put a key in the break-glass account', async () => {
  const node = new FakeAccounts({ accounts: [ADMIN], acl: ROOT_ACL });
  const answers = { wanted: true, name: 'breakglass' };
  const run = await runStep(breakGlassStep, answers, node);
  assert.deepEqual(failed(run.checks), []);
  node.giveKey('breakglass', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl someone');
  assert.deepEqual(failed(await breakGlassStep.verify(stepContext(node), answers)), ['breakglass has no SSH key']);
});
