/** Atomic writes that keep mode and owner, and backups that restore byte for byte. Runs as root (chown). */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BackupStore, LocalFiles, atomicWrite, sha256 } from '../../src/system/files.ts';
import { modeOf, tempDir } from '../fixtures/temp.ts';

const isRoot = process.getuid?.() === 0;
const BINARY = Buffer.concat([Buffer.from('key = value\r\n'), Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]), Buffer.from('ünïcode, no newline at end')]);

async function owner(file: string): Promise<[number, number]> {
  const st = await fs.stat(file);
  return [st.uid, st.gid];
}

describe('atomicWrite', () => {
  before(() => {
    assert.ok(isRoot, 'these tests chown files and must run as root');
  });

  it('gives a new file the requested mode and owner, whatever the umask', async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'new.conf');
    const previous = process.umask(0o077);
    try {
      await atomicWrite(file, 'x\n', { mode: 0o644, uid: 1234, gid: 5678 });
    } finally {
      process.umask(previous);
    }
    assert.equal(await fs.readFile(file, 'utf8'), 'x\n');
    assert.equal(modeOf(await fs.stat(file)), 0o644);
    assert.deepEqual(await owner(file), [1234, 5678]);
  });

  it('gives a new file 0644 and the writer as owner when nothing is asked', async (t) => {
    const file = path.join(await tempDir(t), 'plain');
    await atomicWrite(file, 'x');
    assert.equal(modeOf(await fs.stat(file)), 0o644);
    assert.deepEqual(await owner(file), [process.getuid!(), process.getgid!()]);
  });

  it('keeps an existing file\'s mode and owner, ignoring those asked for a new file', async (t) => {
    const file = path.join(await tempDir(t), 'existing.conf');
    await fs.writeFile(file, 'old\n');
    await fs.chmod(file, 0o640);
    await fs.chown(file, 1234, 5678);
    await atomicWrite(file, 'new\n', { mode: 0o666, uid: 0, gid: 0 });
    assert.equal(await fs.readFile(file, 'utf8'), 'new\n');
    assert.equal(modeOf(await fs.stat(file)), 0o640);
    assert.deepEqual(await owner(file), [1234, 5678]);
  });

  it('keeps setuid and setgid bits of an existing file owned by someone else', async (t) => {
    const dir = await tempDir(t);
    for (const mode of [0o4755, 0o2775]) {
      const file = path.join(dir, `helper-${mode.toString(8)}`);
      await fs.writeFile(file, 'old');
      await fs.chown(file, 1234, 5678);
      await fs.chmod(file, mode);
      await atomicWrite(file, 'new');
      assert.equal(modeOf(await fs.stat(file)), mode, `mode ${mode.toString(8)}`);
      assert.deepEqual(await owner(file), [1234, 5678]);
    }
  });

  it('replaces the file by rename: a reader sees the old or the new content, and no temp file is left', async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'f');
    await fs.writeFile(file, 'old content\n');
    const reader = await fs.open(file, 'r');
    t.after(() => reader.close());
    const inode = (await fs.stat(file)).ino;
    await atomicWrite(file, BINARY);
    assert.notEqual((await fs.stat(file)).ino, inode, 'a new inode took the name');
    assert.equal((await reader.readFile()).toString(), 'old content\n', 'an open reader still has the whole old file');
    assert.deepEqual(await fs.readFile(file), BINARY);
    assert.deepEqual(await fs.readdir(dir), ['f']);
  });

  it('writes through a symlink: the link stays a link, its target gets the content and keeps its mode', async (t) => {
    const dir = await tempDir(t);
    await fs.mkdir(path.join(dir, 'priv'));
    const target = path.join(dir, 'priv', 'authorized_keys');
    await fs.writeFile(target, 'ssh-ed25519 AAAA old\n');
    await fs.chmod(target, 0o600);
    const link = path.join(dir, 'root-authorized_keys');
    await fs.symlink('priv/authorized_keys', link);
    await atomicWrite(link, 'ssh-ed25519 AAAA new\n', { mode: 0o644 });
    assert.ok((await fs.lstat(link)).isSymbolicLink());
    assert.equal(await fs.readlink(link), 'priv/authorized_keys');
    assert.equal(await fs.readFile(target, 'utf8'), 'ssh-ed25519 AAAA new\n');
    assert.equal(modeOf(await fs.stat(target)), 0o600);
    assert.deepEqual((await fs.readdir(dir)).sort(), ['priv', 'root-authorized_keys']);
    assert.deepEqual(await fs.readdir(path.join(dir, 'priv')), ['authorized_keys']);
  });

  it('fails without leaving a temp file when the directory is missing', async (t) => {
    const dir = await tempDir(t);
    await assert.rejects(atomicWrite(path.join(dir, 'missing', 'f'), 'x'), { code: 'ENOENT' });
    assert.deepEqual(await fs.readdir(dir), []);
  });
});

describe('LocalFiles', () => {
  it('reads, says null for a missing file, creates parent directories, removes quietly', async (t) => {
    const dir = await tempDir(t);
    const files = new LocalFiles();
    const file = path.join(dir, 'a', 'b', 'c.conf');
    assert.equal(await files.read(file), null);
    assert.equal(await files.meta(file), null);
    await files.write(file, 'hello\n', { mode: 0o600 });
    assert.equal(await files.read(file), 'hello\n');
    assert.deepEqual(await files.meta(file), { mode: 0o600, uid: process.getuid!(), gid: process.getgid!(), isSymlink: false });
    await fs.symlink(file, path.join(dir, 'link'));
    assert.equal((await files.meta(path.join(dir, 'link')))!.isSymlink, true);
    assert.equal((await files.meta(path.join(dir, 'link')))!.mode, 0o600, 'the mode of the target');
    await files.remove(file);
    await files.remove(file);
    assert.equal(await files.read(file), null);
  });
});

describe('BackupStore', () => {
  async function setup(t: { after(fn: () => unknown): void }) {
    const dir = await tempDir(t);
    const store = new BackupStore(path.join(dir, 'state', 'backups'));
    const file = path.join(dir, 'etc', 'app.conf');
    await fs.mkdir(path.dirname(file), { recursive: true });
    return { dir, store, file };
  }

  it('restores bytes (binary, no trailing newline), mode and owner exactly', async (t) => {
    const { store, file } = await setup(t);
    await fs.writeFile(file, BINARY);
    await fs.chmod(file, 0o640);
    await fs.chown(file, 1234, 5678);
    const record = await store.backup('set-1', file);
    assert.equal(record.existed, true);
    assert.equal(record.sha256, sha256(BINARY));
    assert.deepEqual([record.mode, record.uid, record.gid], [0o640, 1234, 5678]);

    await atomicWrite(file, 'rewritten\n');
    await fs.chmod(file, 0o777);
    await fs.chown(file, 0, 0);
    assert.equal(await store.matches(record), false);

    await store.restore(record);
    assert.deepEqual(await fs.readFile(file), BINARY);
    assert.equal(modeOf(await fs.stat(file)), 0o640);
    assert.deepEqual(await owner(file), [1234, 5678]);
    assert.equal(await store.matches(record), true);
  });

  it('restores setuid/setgid modes along with the owner', async (t) => {
    const { store, file } = await setup(t);
    await fs.writeFile(file, 'x');
    await fs.chown(file, 1234, 5678);
    await fs.chmod(file, 0o4750);
    const record = await store.backup('s', file);
    await fs.chmod(file, 0o644);
    await fs.chown(file, 0, 0);
    await store.restore(record);
    assert.equal(modeOf(await fs.stat(file)), 0o4750);
    assert.deepEqual(await owner(file), [1234, 5678]);
  });

  it('puts back a file that was deleted after the backup', async (t) => {
    const { store, file } = await setup(t);
    await fs.writeFile(file, BINARY, { mode: 0o600 });
    await fs.chown(file, 1234, 5678);
    const record = await store.backup('s', file);
    await fs.rm(file);
    await store.restore(record);
    assert.deepEqual(await fs.readFile(file), BINARY);
    assert.equal(modeOf(await fs.stat(file)), 0o600);
    assert.deepEqual(await owner(file), [1234, 5678]);
  });

  it('keeps its copies 0600 in 0700 directories, under <root>/<set>/<absolute path>', async (t) => {
    const { store, file } = await setup(t);
    await fs.writeFile(file, 'secret-ish\n', { mode: 0o644 });
    const record = await store.backup('2025-01-01T00-00-00-000Z-sshd-abcd', file);
    assert.equal(record.copy, path.join(store.root, '2025-01-01T00-00-00-000Z-sshd-abcd', file));
    assert.equal(modeOf(await fs.stat(record.copy!)), 0o600);
    assert.equal(modeOf(await fs.stat(path.dirname(record.copy!))), 0o700);
    assert.equal(modeOf(await fs.stat(path.join(store.root, '2025-01-01T00-00-00-000Z-sshd-abcd'))), 0o700);
    assert.equal(await fs.readFile(record.copy!, 'utf8'), 'secret-ish\n');
  });

  it('a backup of a file that did not exist restores by removing it', async (t) => {
    const { store, file } = await setup(t);
    const record = await store.backup('s', file);
    assert.deepEqual(Object.keys(record).sort(), ['existed', 'path', 'takenAt']);
    assert.equal(record.existed, false);
    assert.equal(await store.matches(record), true);
    await atomicWrite(file, 'created by the step\n');
    assert.equal(await store.matches(record), false);
    await store.restore(record);
    await assert.rejects(fs.stat(file), { code: 'ENOENT' });
    await store.restore(record);
    await assert.rejects(fs.stat(file), { code: 'ENOENT' }, 'restoring twice is harmless');
  });

  it('refuses a copy that does not match its checksum and leaves the file alone', async (t) => {
    const { store, file } = await setup(t);
    await fs.writeFile(file, 'original\n');
    const record = await store.backup('s', file);
    await atomicWrite(file, 'current\n');
    await fs.writeFile(record.copy!, 'original\n#tampered');
    await assert.rejects(store.restore(record), {
      message: `backup of ${file} at ${record.copy} does not match its checksum; not restored`,
    });
    assert.equal(await fs.readFile(file, 'utf8'), 'current\n');
  });

  it('backs up and restores through a symlink, which stays a symlink', async (t) => {
    const { dir, store } = await setup(t);
    const target = path.join(dir, 'etc', 'pve-priv-authorized_keys');
    await fs.writeFile(target, 'ssh-ed25519 AAAA original\n', { mode: 0o600 });
    const link = path.join(dir, 'authorized_keys');
    await fs.symlink(target, link);
    const record = await store.backup('s', link);
    assert.equal(record.path, link);
    await atomicWrite(link, 'ssh-ed25519 AAAA replaced\n');
    await store.restore(record);
    assert.ok((await fs.lstat(link)).isSymbolicLink());
    assert.equal(await fs.readFile(target, 'utf8'), 'ssh-ed25519 AAAA original\n');
    assert.equal(modeOf(await fs.stat(target)), 0o600);
  });
});
