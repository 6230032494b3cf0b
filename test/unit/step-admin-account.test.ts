/**
 * The admin-account step on fakes: probe -> plan -> apply -> verify, for a
 * fresh node and for an adopted account, and its undo. The fake programs
 * change /etc/passwd, /etc/group, /etc/shadow and Proxmox's users and ACL as
 * the real ones do, so verify sees only what the plan really did.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange } from '../../src/engine/change.ts';
import { Secret } from '../../src/system/secret.ts';
import { adminAccountStep, type AdminAnswers } from '../../steps/admin-account.ts';
import { FakeAccounts } from '../fixtures/fake-accounts.ts';
import { applyPlan, failed, runStep, stepContext, undoPlan } from '../fixtures/step-run.ts';

const ROOT_ACL = [{ path: '/', roleid: 'Administrator', type: 'user' as const, ugid: 'root@pam', propagate: 1 }];

test('fresh node: installs sudo, creates alice with a password on stdin, adds alice@pam with PVEAdmin on /; a second run plans nothing', async () => {
  const node = new FakeAccounts({ sudoInstalled: false, acl: ROOT_ACL });
  const password = new Secret('correct horse battery');
  const answers: AdminAnswers = { name: 'alice', role: 'PVEAdmin', email: 'alice@example.com', comment: 'Alice Example', password };

  const before = await adminAccountStep.verify(stepContext(node), answers);
  assert.equal(failed(before).length, before.length, 'nothing holds before the apply');

  const run = await runStep(adminAccountStep, answers, node);
  assert.deepEqual(run.plan.map(describeChange), [
    'run apt-get install -y --no-install-recommends sudo',
    "run useradd --create-home --shell /bin/bash --groups sudo --comment 'Alice Example' alice",
    'run chpasswd (with input on stdin)',
    "run pveum user add alice@pam --email alice@example.com --comment 'Alice Example'",
    'run pveum acl modify / --users alice@pam --roles PVEAdmin',
  ]);
  assert.deepEqual(failed(run.checks), []);
  assert.deepEqual(run.replan, []);

  // The password went in on standard input only, and set alice's shadow entry.
  assert.ok(!node.exec.argvs.flat().some((arg) => arg.includes(password.reveal())), 'the password is in no argv');
  assert.equal(node.exec.calls.find((c) => c.argv[0] === 'chpasswd')?.input?.toString(), '[secret]');
  assert.match(node.files.snapshot()['/etc/shadow']!, /^alice:\$y\$/m);
  assert.deepEqual(node.pveUsers.find((u) => u.userid === 'alice@pam'), { userid: 'alice@pam', enable: 1, email: 'alice@example.com', comment: 'Alice Example' });
  node.exec.assertNoUnexpected();
});

test('an existing account is adopted: sudo added, its password set from a hash, its disabled Proxmox user enabled; undo puts it all back', async () => {
  const node = new FakeAccounts({
    accounts: [{ name: 'bob', uid: 1000, password: '*' }],
    pveUsers: [{ userid: 'root@pam', enable: 1 }, { userid: 'bob@pam', enable: 0 }],
    acl: ROOT_ACL,
  });
  const hash = '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7';
  const answers: AdminAnswers = { name: 'bob', role: 'Administrator', email: '', comment: '', password_hash: new Secret(hash) };
  const original = node.files.snapshot();

  const run = await runStep(adminAccountStep, answers, node);
  assert.deepEqual(run.plan.map(describeChange), [
    'run usermod --append --groups sudo bob',
    'run chpasswd --encrypted (with input on stdin)',
    'run pveum user modify bob@pam --enable 1',
    'run pveum acl modify / --users bob@pam --roles Administrator',
  ]);
  assert.ok(!run.plan.some((c) => c.kind === 'command' && c.argv[0] === 'useradd'), 'an adopted account is not created again');
  assert.ok(!node.exec.argvs.flat().some((arg) => arg.includes(hash)), 'the hash is in no argv');
  assert.match(node.files.snapshot()['/etc/shadow']!, new RegExp(`^bob:${hash.replace(/\$/g, '\\$')}:`, 'm'));
  assert.deepEqual(failed(run.checks), []);
  assert.deepEqual(run.replan, []);

  // Undo leaves the account as it was: out of sudo, no usable password, Proxmox user off, no ACL.
  await undoPlan(run.plan, node);
  assert.deepEqual(node.files.snapshot(), original);
  assert.deepEqual(node.pveUsers.find((u) => u.userid === 'bob@pam')?.enable, 0);
  assert.deepEqual(node.acl, ROOT_ACL);
  node.exec.assertNoUnexpected();
});

test('verify names what is missing: a Proxmox user removed behind the step\'s back fails its checks', async () => {
  const node = new FakeAccounts({ acl: ROOT_ACL });
  const answers: AdminAnswers = { name: 'carol', role: 'Administrator', email: '', comment: '', password: new Secret('another long password') };
  const ctx = stepContext(node);
  await applyPlan(adminAccountStep.plan(await adminAccountStep.probe(ctx), answers, ctx.node), node);
  assert.deepEqual(failed(await adminAccountStep.verify(ctx, answers)), []);

  node.pveUsers = node.pveUsers.filter((u) => u.userid !== 'carol@pam');
  node.acl = ROOT_ACL;
  assert.deepEqual(failed(await adminAccountStep.verify(ctx, answers)), ['Proxmox user carol@pam exists and is enabled', 'carol@pam has Administrator on /']);
  assert.deepEqual(adminAccountStep.plan(await adminAccountStep.probe(ctx), answers, ctx.node).map(describeChange), [
    'run pveum user add carol@pam',
    'run pveum acl modify / --users carol@pam --roles Administrator',
  ]);
});
