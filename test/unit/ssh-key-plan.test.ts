/** The SSH key step's plan on the cases the lab's fresh node does not show: existing files with wrong modes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange } from '../../src/engine/change.ts';
import { generateKeyPair } from '../../src/ssh/keys.ts';
import { sshKeyStep } from '../../steps/ssh-key.ts';
import { testNode } from '../fixtures/node.ts';

const key = (await generateKeyPair('ed25519', { comment: 'op' })).public.trim();
const admin = { name: 'alice', uid: 1000, gid: 1000, gecos: '', home: '/home/alice', shell: '/bin/bash' };

test('wrong modes and owners are fixed, each with its undo; an existing file gets the key appended on a new line', () => {
  const facts = {
    admin,
    sshDir: { mode: 0o755, uid: 0, gid: 0 },
    authorizedKeys: 'ssh-ed25519 AAAAexisting old-laptop',
    authorizedKeysMeta: { mode: 0o644, uid: 1000, gid: 1000 },
    rootKeys: null,
  };
  const changes = sshKeyStep.plan(facts, { keys: key, also_root: false }, testNode);
  assert.deepEqual(changes.map(describeChange), [
    'run chmod 0700 /home/alice/.ssh',
    'run chown 1000:1000 /home/alice/.ssh',
    'edit /home/alice/.ssh/authorized_keys',
    'run chmod 0600 /home/alice/.ssh/authorized_keys',
  ]);
  assert.deepEqual(changes[0]!.kind === 'command' && changes[0]!.undo, ['chmod', '0755', '/home/alice/.ssh']);
  assert.deepEqual(changes[1]!.kind === 'command' && changes[1]!.undo, ['chown', '0:0', '/home/alice/.ssh']);
  assert.equal(changes[2]!.kind === 'file' && changes[2]!.after, `ssh-ed25519 AAAAexisting old-laptop\n${key}\n`);
});

test('a key already there plans nothing; also_root appends to root\'s file (the symlink into /etc/pve)', () => {
  const facts = { admin, sshDir: { mode: 0o700, uid: 1000, gid: 1000 }, authorizedKeys: `${key}\n`, authorizedKeysMeta: { mode: 0o600, uid: 1000, gid: 1000 }, rootKeys: 'ssh-rsa AAAAnode root@pve1\n' };
  assert.deepEqual(sshKeyStep.plan(facts, { keys: key, also_root: false }, testNode), []);
  const withRoot = sshKeyStep.plan(facts, { keys: key, also_root: true }, testNode);
  assert.equal(withRoot.length, 1);
  assert.equal(withRoot[0]!.kind === 'file' && withRoot[0]!.path, '/root/.ssh/authorized_keys');
  assert.equal(withRoot[0]!.kind === 'file' && withRoot[0]!.after, `ssh-rsa AAAAnode root@pve1\n${key}\n`);
});
