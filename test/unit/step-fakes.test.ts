/**
 * The fakes step tests run on: ScriptedExec answers only what its script
 * lists, and MemoryFiles behaves as LocalFiles does on a real directory
 * (checked side by side on the same sequence of calls).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Secret } from '../../src/system/secret.ts';
import { runChecked } from '../../src/system/exec.ts';
import { LocalFiles, type Files } from '../../src/system/files.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { scriptedExec } from '../fixtures/scripted-exec.ts';
import { applyPlan } from '../fixtures/step-run.ts';
import { tempDir } from '../fixtures/temp.ts';

test('scripted exec: listed argvs get their output; an unlisted one fails with the argv printed', async () => {
  const exec = scriptedExec([
    [['sshd', '-T'], { stdout: 'permitrootlogin no\n' }],
    [['sshd', '-t'], { exitCode: 255, stderr: 'line 3: Bad configuration option\n' }],
  ]);
  assert.equal((await exec.run(['sshd', '-T'])).stdout, 'permitrootlogin no\n');
  const bad = await exec.run(['sshd', '-t']);
  assert.deepEqual([bad.exitCode, bad.stderr], [255, 'line 3: Bad configuration option\n']);
  await assert.rejects(exec.run(['sshd', '-T', '-C', 'user=alice']), /unexpected command: sshd -T -C user=alice/);
  assert.deepEqual(exec.unexpected, [['sshd', '-T', '-C', 'user=alice']]);
  assert.throws(() => exec.assertNoUnexpected(), /sshd -T -C user=alice/);
  assert.deepEqual(exec.argvs, [['sshd', '-T'], ['sshd', '-t'], ['sshd', '-T', '-C', 'user=alice']]);
});

test('scripted exec: one argv listed twice answers in order, then keeps the last answer', async () => {
  const list = ['pveum', 'user', 'list', '--output-format', 'json'];
  const exec = scriptedExec([
    [list, { stdout: '[]' }],
    [list, { stdout: '[{"userid":"alice@pam"}]' }],
  ]);
  const outputs = [];
  for (let i = 0; i < 3; i++) outputs.push((await exec.run(list)).stdout);
  assert.deepEqual(outputs, ['[]', '[{"userid":"alice@pam"}]', '[{"userid":"alice@pam"}]']);
});

test('scripted exec: a reply function sees argv and stdin; a missing program exits 127; runChecked throws on failure', async () => {
  const fed: string[] = [];
  const exec = scriptedExec([
    [(argv) => argv[0] === 'chpasswd', (_argv, options) => (fed.push((options.input as Secret).reveal()), {})],
    [['mkpasswd'], { notFound: true }],
  ]);
  await exec.run(['chpasswd'], { input: new Secret('alice:pw\n') });
  assert.deepEqual(fed, ['alice:pw\n']);
  const missing = await exec.run(['mkpasswd']);
  assert.deepEqual([missing.exitCode, missing.notFound, missing.stderr], [127, true, 'mkpasswd: command not found']);
  await assert.rejects(runChecked(exec, ['mkpasswd']), /mkpasswd exited with 127/);
  const lines: string[] = [];
  await scriptedExec([[['echo'], { stdout: 'a\nb\n', stderr: 'c' }]]).run(['echo'], { onLine: (l) => lines.push(l) });
  assert.deepEqual(lines, ['a', 'b', 'c']);
});

/** The same calls on any Files under `root`; returns what each read saw. */
async function scenario(files: Files, root: string): Promise<unknown[]> {
  const p = (name: string) => path.join(root, name);
  const seen: unknown[] = [];
  await files.write(p('etc/app.conf'), 'one\n', { mode: 0o600 });
  seen.push(await files.read(p('etc/app.conf')), (await files.meta(p('etc/app.conf')))?.mode);
  await files.write(p('etc/app.conf'), 'two\n', { mode: 0o644 }); // an existing file keeps its mode
  seen.push(await files.read(p('etc/app.conf')), (await files.meta(p('etc/app.conf')))?.mode);
  await files.write(p('etc/sub/b.conf'), 'b', { mode: 0o640 });
  seen.push(await files.list(p('etc')), await files.list(p('nowhere')));
  seen.push(await files.read(p('etc/sub')).catch((e: NodeJS.ErrnoException) => e.code), (await files.meta(p('etc/sub')))?.isSymlink);
  seen.push(await files.read(p('missing')), await files.meta(p('missing')), await files.writable(p('missing')), await files.writable(p('etc/app.conf')));
  await files.remove(p('etc/app.conf'));
  await files.remove(p('etc/app.conf')); // removing a missing file is fine
  seen.push(await files.read(p('etc/app.conf')), await files.list(p('etc')));
  await files.write(p('etc/a'), 'A', { mode: 0o600 });
  await files.write(p('etc/b'), 'B');
  await files.rename(p('etc/a'), p('etc/b')); // replaces b, keeps a's mode
  seen.push(await files.list(p('etc')), await files.read(p('etc/b')), (await files.meta(p('etc/b')))?.mode);
  await files.rename(p('etc/missing'), p('etc/c')).catch((e: NodeJS.ErrnoException) => seen.push(e.code));
  await files.symlink(p('etc/b'), p('etc/link'));
  seen.push(await files.read(p('etc/link')), await files.meta(p('etc/link')));
  await files.symlink(p('etc/b'), p('etc/link')).catch((e: NodeJS.ErrnoException) => seen.push(e.code));
  await files.rename(p('etc/link'), p('etc/moved')); // the link moves, still a link
  seen.push((await files.meta(p('etc/moved')))?.isSymlink, await files.read(p('etc/moved')));
  return seen;
}

test('memory files behave as local files on the same calls', async (t) => {
  const dir = await tempDir(t);
  const local = await scenario(new LocalFiles(), dir);
  const memory = await scenario(new MemoryFiles(), dir);
  assert.deepEqual(memory, local);
  assert.deepEqual(memory.slice(0, 4), ['one\n', 0o600, 'two\n', 0o600]);
});

test('memory files: a write goes through a symlink and keeps the target\'s owner; remove takes the link only', async (t) => {
  const files = new MemoryFiles({
    '/etc/pve/priv/authorized_keys': { content: 'old\n', mode: 0o600, uid: 0, gid: 33 },
    '/root/.ssh/authorized_keys': { symlink: '/etc/pve/priv/authorized_keys' },
  });
  await files.write('/root/.ssh/authorized_keys', 'new\n', { mode: 0o644, uid: 5, gid: 5 });
  assert.equal(await files.read('/etc/pve/priv/authorized_keys'), 'new\n');
  assert.deepEqual(await files.meta('/root/.ssh/authorized_keys'), { mode: 0o600, uid: 0, gid: 33, isSymlink: true });
  assert.deepEqual(await files.meta('/etc/pve/priv/authorized_keys'), { mode: 0o600, uid: 0, gid: 33, isSymlink: false });
  await files.remove('/root/.ssh/authorized_keys');
  assert.equal(await files.read('/root/.ssh/authorized_keys'), null);
  assert.equal(await files.read('/etc/pve/priv/authorized_keys'), 'new\n');

  // The same on a real directory, so the fake does not drift from the contract.
  const dir = await tempDir(t);
  const real = new LocalFiles();
  await real.write(path.join(dir, 'target'), 'old\n', { mode: 0o600 });
  await fs.symlink(path.join(dir, 'target'), path.join(dir, 'link'));
  await real.write(path.join(dir, 'link'), 'new\n', { mode: 0o644 });
  assert.equal(await real.read(path.join(dir, 'target')), 'new\n');
  assert.deepEqual(await real.meta(path.join(dir, 'link')), { ...(await real.meta(path.join(dir, 'target')))!, isSymlink: true });
});

test('memory files: rename replaces the destination; symlink refuses an existing path; read-only paths refuse writes', async () => {
  const files = new MemoryFiles({ '/a': { content: 'A', mode: 0o600 }, '/b': 'B' });
  await files.rename('/a', '/b');
  assert.deepEqual(files.snapshot(), { '/b': 'A' });
  assert.equal((await files.meta('/b'))?.mode, 0o600);
  await assert.rejects(files.rename('/a', '/c'), { code: 'ENOENT' });
  await files.symlink('/b', '/link');
  assert.equal(await files.read('/link'), 'A');
  await assert.rejects(files.symlink('/b', '/link'), { code: 'EEXIST' });
  files.set('/proc/sys/kernel/kptr_restrict', '0\n').readOnly('/proc/sys/kernel/kptr_restrict');
  assert.equal(await files.writable('/proc/sys/kernel/kptr_restrict'), false);
  await assert.rejects(files.write('/proc/sys/kernel/kptr_restrict', '2\n'), { code: 'EROFS' });
  assert.deepEqual(files.changed, ['/a', '/b', '/link']);
});

test('applyPlan writes files with their mode and owner, feeds stdin, and stops at the first failing command', async () => {
  const files = new MemoryFiles();
  const exec = scriptedExec([
    [['chpasswd'], {}],
    [['false'], { exitCode: 1, stderr: 'no' }],
  ]);
  const plan = [
    { kind: 'file' as const, path: '/etc/x.conf', before: null, after: 'x\n', mode: 0o640, owner: { uid: 0, gid: 4 }, reason: '' },
    { kind: 'command' as const, argv: ['chpasswd'], input: new Secret('a:b\n'), reason: '' },
    { kind: 'command' as const, argv: ['false'], reason: '' },
    { kind: 'service' as const, unit: 'ssh', action: 'reload' as const, reason: '' },
  ];
  await assert.rejects(applyPlan(plan, { exec, files }), /false exited with 1: no/);
  assert.deepEqual(await files.meta('/etc/x.conf'), { mode: 0o640, uid: 0, gid: 4, isSymlink: false });
  assert.equal((exec.calls[0]!.input as Secret).reveal(), 'a:b\n');
  assert.deepEqual(exec.argvs, [['chpasswd'], ['false']]);
});

test('memory files: directories exist as parents of files or set up on their own, each with a mode and owner', async () => {
  const files = new MemoryFiles({ '/home/alice/.bashrc': 'x', '/home/alice/.ssh': { dir: true, mode: 0o755 } });
  assert.deepEqual(await files.meta('/home/alice'), { mode: 0o755, uid: 0, gid: 0, isSymlink: false });
  assert.deepEqual(await files.list('/home/alice'), ['.bashrc', '.ssh']);
  files.setMeta('/home/alice/.ssh', { mode: 0o700, uid: 1000, gid: 1000 });
  assert.deepEqual(await files.meta('/home/alice/.ssh'), { mode: 0o700, uid: 1000, gid: 1000, isSymlink: false });
  await assert.rejects(files.write('/home/alice/.ssh', 'x'), { code: 'EISDIR' });
  await assert.rejects(files.read('/home/alice'), { code: 'EISDIR' });
  assert.equal(await files.meta('/home/bob'), null);
});
