/** The SSH key step's plan on the cases the lab's fresh node does not show: existing files with wrong modes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange } from '../../src/engine/change.ts';
import { generateKeyPair } from '../../src/ssh/keys.ts';
import { sshKeyStep } from '../../steps/ssh-key.ts';
import { testNode } from '../fixtures/node.ts';
import { applicableQuestions, NO_FILES } from '../../src/engine/questions.ts';
import { parseAnswersFile } from '../../src/cli/answers.ts';

const key = (await generateKeyPair('ed25519', { comment: 'op' })).public.trim();
const admin = { name: 'alice', uid: 1000, gid: 1000, gecos: '', home: '/home/alice', shell: '/bin/bash', sshDir: '/home/alice/.ssh', authorizedKeys: '/home/alice/.ssh/authorized_keys' };

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

test('issue 11: options with a quoted space are asked about, kept on yes, dropped visibly on no; details and the installed line agree', async () => {
  const options = 'from="10.0.0.0/8",command="/usr/local/bin/backup --dir /srv",no-pty';
  const line = `${options} ${key}`;
  const facts = { admin, sshDir: { mode: 0o700, uid: 1000, gid: 1000 }, authorizedKeys: null, authorizedKeysMeta: null, rootKeys: null };
  const asked = applicableQuestions(sshKeyStep.questions!, { keys: line }, facts).map((q) => q.id);
  assert.ok(asked.includes('keep_options'), `keep_options is asked (asked: ${asked.join(', ')})`);
  assert.ok(!applicableQuestions(sshKeyStep.questions!, { keys: key }, facts).some((q) => q.id === 'keep_options'), 'not asked for a bare key');

  const keysQuestion = sshKeyStep.questions!.find((q) => q.id === 'keys')!;
  const details = keysQuestion.kind === 'text' ? await keysQuestion.details!(line, NO_FILES) : undefined;
  const shown = details!.items[0]!.fields.find(([label]) => label === 'Options')?.[1];
  assert.equal(shown, options);

  const kept = sshKeyStep.plan(facts, { keys: line, keep_options: true, also_root: false }, testNode);
  const installed = kept[0]!.kind === 'file' ? kept[0]!.after! : '';
  assert.equal(installed, `${line}\n`);
  assert.ok(installed.startsWith(`${shown} `), 'the line installed carries the options the details screen showed');

  const dropped = sshKeyStep.plan(facts, { keys: line, keep_options: false, also_root: false }, testNode);
  assert.equal(dropped[0]!.kind === 'file' && dropped[0]!.after, `${key}\n`);
  assert.match(dropped[0]!.reason, /the options are DROPPED \(keep_options: no\), so these keys are unrestricted: SHA256:\S+ \(from="10\.0\.0\.0\/8",command="\/usr\/local\/bin\/backup --dir \/srv",no-pty\)$/);
});

test('issue 11: an unterminated quote in the answers file is refused, naming ssh-key.keys', async () => {
  const yaml = `version: 1\nssh-key:\n  keys: 'from="10.0.0.0/8 ${key}'\n  keep_options: yes\n`;
  await assert.rejects(parseAnswersFile(yaml, 'answers.yml', [sshKeyStep]), (error: Error & { problems?: string[] }) => {
    const text = error.problems?.join('\n') ?? error.message;
    assert.match(text, /answers\.yml:3: ssh-key\.keys: line 1: the options before the key have a double quote \("\) that is never closed; sshd would ignore this key/);
    return true;
  });
});

test('issue 11: a key installed earlier without the options asked for gets them written again; options already there are never removed', () => {
  const options = 'from="10.0.0.0/8",command="/usr/local/bin/backup --dir /srv",no-pty';
  const line = `${options} ${key}`;
  const meta = { mode: 0o600, uid: 1000, gid: 1000 };
  const bare = { admin, sshDir: { mode: 0o700, uid: 1000, gid: 1000 }, authorizedKeys: `ssh-ed25519 AAAAother laptop\n${key}\n`, authorizedKeysMeta: meta, rootKeys: null };
  const fixed = sshKeyStep.plan(bare, { keys: line, keep_options: true, also_root: false }, testNode);
  assert.equal(fixed.length, 1);
  assert.equal(fixed[0]!.kind === 'file' && fixed[0]!.after, `ssh-ed25519 AAAAother laptop\n${line}\n`);
  assert.match(fixed[0]!.reason, /^writes the options asked for again on SHA256:\S+ \(from="10\.0\.0\.0\/8",command="\/usr\/local\/bin\/backup --dir \/srv",no-pty\), installed without them$/);
  // Installed with its options: compliant either way, and keep_options: no never strips them.
  const restricted = { ...bare, authorizedKeys: `${line}\n` };
  assert.deepEqual(sshKeyStep.plan(restricted, { keys: line, keep_options: true, also_root: false }, testNode), []);
  assert.deepEqual(sshKeyStep.plan(restricted, { keys: line, keep_options: false, also_root: false }, testNode), []);
});
