/**
 * The SSH key step on fakes: probe -> plan -> apply -> verify. The fake
 * install, chmod and chown change the modes and owners in MemoryFiles as the
 * real ones do, so verify sees what sshd would: a key it reads only from a
 * 0700 directory and a 0600 file, both the admin's. Root's file on Proxmox is
 * a symlink into /etc/pve/priv that must stay one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange } from '../../src/engine/change.ts';
import { generateKeyPair } from '../../src/ssh/keys.ts';
import { sshKeyStep } from '../../steps/ssh-key.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { ScriptedExec } from '../fixtures/scripted-exec.ts';
import { failed, runStep, stepContext } from '../fixtures/step-run.ts';

const key = (await generateKeyPair('ed25519', { comment: 'alice@laptop' })).public.trim();
const NODE_KEY = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDnodekey root@pve1';
const PASSWD = 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n';
const GROUP = 'root:x:0:\nsudo:x:27:alice\nalice:x:1000:\n';

/** A node with alice's home and root's keys as Proxmox links them; the programs the plan may run. */
function node(extra: ConstructorParameters<typeof MemoryFiles>[0] = {}) {
  const files = new MemoryFiles({
    '/etc/passwd': PASSWD,
    '/etc/group': GROUP,
    '/home/alice': { dir: true, mode: 0o750, uid: 1000, gid: 1000 },
    '/etc/pve/priv/authorized_keys': { content: `${NODE_KEY}\n`, mode: 0o600, uid: 0, gid: 33 },
    '/root/.ssh/authorized_keys': { symlink: '/etc/pve/priv/authorized_keys' },
    ...extra,
  });
  const exec = new ScriptedExec([
    [(argv) => argv[0] === 'install' && argv[1] === '-d', (argv) => {
      const option = (name: string) => Number.parseInt(argv[argv.indexOf(name) + 1]!, name === '-m' ? 8 : 10);
      files.set(argv[argv.length - 1]!, { dir: true, mode: option('-m'), uid: option('-o'), gid: option('-g') });
      return {};
    }],
    [(argv) => argv[0] === 'chmod', (argv) => (files.setMeta(argv[2]!, { mode: Number.parseInt(argv[1]!, 8) }), {})],
    [(argv) => argv[0] === 'chown', (argv) => {
      const [uid, gid] = argv[1]!.split(':').map(Number);
      files.setMeta(argv[2]!, { uid: uid!, gid: gid! });
      return {};
    }],
  ]);
  return { files, exec, answersOf: { 'admin-account': { name: 'alice' } } };
}

test('no ~/.ssh yet: made 0700 and the admin\'s, the key written 0600 and the admin\'s; root\'s key goes through the symlink; a second run plans nothing', async () => {
  const n = node();
  const run = await runStep(sshKeyStep, { keys: key, also_root: true }, n);
  assert.deepEqual(run.plan.map(describeChange), [
    'run install -d -m 0700 -o 1000 -g 1000 /home/alice/.ssh',
    'create /home/alice/.ssh/authorized_keys',
    'edit /root/.ssh/authorized_keys',
  ]);
  assert.deepEqual(failed(run.checks), []);
  assert.deepEqual(run.replan, []);

  assert.deepEqual(await n.files.meta('/home/alice/.ssh'), { mode: 0o700, uid: 1000, gid: 1000, isSymlink: false });
  assert.deepEqual(await n.files.meta('/home/alice/.ssh/authorized_keys'), { mode: 0o600, uid: 1000, gid: 1000, isSymlink: false });
  assert.equal(await n.files.read('/home/alice/.ssh/authorized_keys'), `${key}\n`);
  // Root's file is still the link into /etc/pve/priv, which holds the node's key and the new one, with its owner kept.
  assert.deepEqual(await n.files.meta('/root/.ssh/authorized_keys'), { mode: 0o600, uid: 0, gid: 33, isSymlink: true });
  assert.equal(await n.files.read('/etc/pve/priv/authorized_keys'), `${NODE_KEY}\n${key}\n`);
  n.exec.assertNoUnexpected();
});

test('wrong modes and owners are fixed by chmod and chown; the existing key stays; root is left alone unless asked', async () => {
  const n = node({
    '/home/alice/.ssh': { dir: true, mode: 0o755, uid: 0, gid: 0 },
    '/home/alice/.ssh/authorized_keys': { content: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExisting old-laptop', mode: 0o644, uid: 1000, gid: 1000 },
  });
  const before = await sshKeyStep.verify(stepContext(n), { keys: key, also_root: false });
  assert.equal(failed(before).length, 3, `the key, the directory and the file fail first: ${failed(before).join('; ')}`);

  const run = await runStep(sshKeyStep, { keys: key, also_root: false }, n);
  assert.deepEqual(run.plan.map(describeChange), [
    'run chmod 0700 /home/alice/.ssh',
    'run chown 1000:1000 /home/alice/.ssh',
    'edit /home/alice/.ssh/authorized_keys',
    'run chmod 0600 /home/alice/.ssh/authorized_keys',
  ]);
  assert.deepEqual(failed(run.checks), []);
  assert.deepEqual(run.replan, []);
  assert.equal(await n.files.read('/home/alice/.ssh/authorized_keys'), `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExisting old-laptop\n${key}\n`);
  assert.equal(await n.files.read('/etc/pve/priv/authorized_keys'), `${NODE_KEY}\n`, 'root keeps only the node\'s key');
});

test('verify fails when the key file is opened up to others afterwards, as sshd would then ignore it', async () => {
  const n = node();
  await runStep(sshKeyStep, { keys: key, also_root: false }, n);
  n.files.setMeta('/home/alice/.ssh/authorized_keys', { mode: 0o664 });
  assert.deepEqual(failed(await sshKeyStep.verify(stepContext(n), { keys: key, also_root: false })), ["authorized_keys is 0600 and the admin's (664 1000:1000)"]);
});

test('without the admin account the step does not apply', async () => {
  const n = node();
  const facts = await sshKeyStep.probe(stepContext({ ...n, answersOf: { 'admin-account': { name: 'bob' } } }));
  assert.equal(sshKeyStep.notApplicable?.(facts, stepContext(n).node), 'the admin account does not exist yet');
});
