/**
 * Root never writes, restores or reads through a link another user planted
 * (issue 11, defects 1, 4, 11 and 13). The links are made by an unprivileged
 * user (uid 65534) in a sticky, world-writable directory, as on /tmp.
 * Runs as root.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { BackupStore, FileRefusedError, LocalFiles, atomicWrite, makeDirectorySync, readRegularFile, writePrivateFile, type BackupRecord } from '../../src/system/files.ts';
import { modeOf, tempDir } from '../fixtures/temp.ts';

const NOBODY = 65534;

/** A directory like /tmp: root's, mode 1777. */
async function stickyDir(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await tempDir(t, 'pve-baseline-sticky-');
  await fs.chmod(dir, 0o1777);
  return dir;
}

/** `ln -s target link` as uid 65534, the way any local user could. */
async function plantLink(target: string, link: string): Promise<void> {
  await execa('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'ln', '-s', target, link]);
  assert.equal((await fs.lstat(link)).uid, NOBODY);
}

async function victim(dir: string, content = 'root:x:0:0:root:/root:/bin/bash\n'): Promise<string> {
  const file = path.join(dir, 'victim');
  await fs.writeFile(file, content);
  await fs.chmod(file, 0o644);
  return file;
}

async function assertUntouched(file: string, content: string, mode = 0o644): Promise<void> {
  assert.equal(await fs.readFile(file, 'utf8'), content, `${file} keeps its content`);
  assert.equal(modeOf(await fs.stat(file)), mode, `${file} keeps its mode`);
}

describe('writing as root where other users can write', () => {
  before(() => assert.equal(process.getuid?.(), 0, 'these tests plant links as another user and must run as root'));

  it('refuses to write through a link another user planted, naming it; link and target stay as they were', async (t) => {
    const dir = await stickyDir(t);
    const target = await victim(await tempDir(t));
    const link = path.join(dir, 'p.md');
    await plantLink(target, link);
    for (const write of [() => atomicWrite(link, 'owned\n', { mode: 0o600 }), () => new LocalFiles().write(link, 'owned\n', { mode: 0o600 })]) {
      await assert.rejects(write(), (error: unknown) => {
        assert.ok(error instanceof FileRefusedError, String(error));
        assert.equal(error.message, `refusing to write ${link}: ${link} is a symbolic link owned by uid ${NOBODY}, not root; it is not followed`);
        return true;
      });
      await assertUntouched(target, 'root:x:0:0:root:/root:/bin/bash\n');
      assert.equal(await fs.readlink(link), target);
    }
  });

  it('refuses a root-owned link in a directory others can write (they could swap it), and a planted directory link on the way', async (t) => {
    const open = await tempDir(t);
    await fs.chmod(open, 0o777);
    const target = await victim(await tempDir(t));
    await fs.symlink(target, path.join(open, 'link'));
    await assert.rejects(atomicWrite(path.join(open, 'link'), 'x'), {
      name: 'FileRefusedError',
      message: `refusing to write ${path.join(open, 'link')}: ${path.join(open, 'link')} is a symbolic link in ${open}, which a user other than root can change; it is not followed`,
    });
    const sticky = await stickyDir(t);
    await plantLink(path.dirname(target), path.join(sticky, 'ssh'));
    await assert.rejects(new LocalFiles().write(path.join(sticky, 'ssh', 'victim'), 'x'), { name: 'FileRefusedError', message: /ssh is a symbolic link owned by uid 65534, not root; it is not followed$/ });
    await assertUntouched(target, 'root:x:0:0:root:/root:/bin/bash\n');
  });

  it('writes through a chain of root-owned links to the final target: no link on the way becomes a file', async (t) => {
    const dir = await tempDir(t);
    const target = path.join(dir, 'priv', 'authorized_keys');
    await fs.mkdir(path.dirname(target));
    await fs.writeFile(target, 'old\n');
    await fs.chmod(target, 0o600);
    await fs.symlink('priv/authorized_keys', path.join(dir, 'b'));
    await fs.symlink(path.join(dir, 'b'), path.join(dir, 'a'));
    await atomicWrite(path.join(dir, 'a'), 'new\n');
    assert.equal(await fs.readlink(path.join(dir, 'a')), path.join(dir, 'b'), 'a is still a link to b');
    assert.equal(await fs.readlink(path.join(dir, 'b')), 'priv/authorized_keys', 'b is still a link to the target');
    assert.equal(await fs.readFile(target, 'utf8'), 'new\n');
    assert.equal(modeOf(await fs.stat(target)), 0o600);
    assert.deepEqual((await fs.readdir(path.join(dir, 'priv'))).sort(), ['authorized_keys'], 'no temp file left');
  });

  it('writes the document only as a new 0600 file of its own: never through any link, a directory is refused', async (t) => {
    const dir = await tempDir(t);
    const target = await victim(dir);
    await fs.symlink(target, path.join(dir, 'root-made-link.md'));
    await assert.rejects(writePrivateFile(path.join(dir, 'root-made-link.md'), 'doc'), { name: 'FileRefusedError', message: /it is a symbolic link, and this file is never written through one/ });
    await assertUntouched(target, 'root:x:0:0:root:/root:/bin/bash\n');
    await assert.rejects(writePrivateFile(dir, 'doc'), { name: 'FileRefusedError', message: `refusing to write ${dir}: it is a directory, not a regular file` });
    await fs.writeFile(path.join(dir, 'old.md'), 'old');
    await fs.chmod(path.join(dir, 'old.md'), 0o644);
    await writePrivateFile(path.join(dir, 'old.md'), 'doc');
    assert.equal(modeOf(await fs.stat(path.join(dir, 'old.md'))), 0o600, 'an existing file becomes 0600 too');
    const fresh = path.join(dir, 'new', 'sub', 'doc.md');
    await assert.rejects(writePrivateFile(fresh, 'doc'), { code: 'ENOENT' });
    assert.equal((await fs.readdir(dir)).includes('new'), false, 'no directory made unless asked');
    await writePrivateFile(fresh, 'doc', { createDirectories: true });
    assert.equal(modeOf(await fs.stat(fresh)), 0o600);
    assert.equal(modeOf(await fs.stat(path.dirname(fresh))), 0o700);
  });
});

describe('restoring as root where other users can write', () => {
  it('restoring "did not exist" removes a planted link itself, never its target', async (t) => {
    const dir = await stickyDir(t);
    const target = await victim(await tempDir(t));
    const file = path.join(dir, 'authorized_keys');
    const record: BackupRecord = await new BackupStore(path.join(await tempDir(t), 'backups')).backup('set', file);
    assert.equal(record.existed, false);
    await plantLink(target, file);
    await new BackupStore('/nonexistent').restore(record);
    await assertUntouched(target, 'root:x:0:0:root:/root:/bin/bash\n');
    await assert.rejects(fs.lstat(file), { code: 'ENOENT' });
  });

  it('restoring a file replaces a planted link by the file, with the backup\'s mode and owner; the link\'s target is untouched', async (t) => {
    const dir = await stickyDir(t);
    const target = await victim(await tempDir(t));
    const file = path.join(dir, 'authorized_keys');
    await fs.writeFile(file, 'ssh-ed25519 AAAA alice\n');
    await fs.chown(file, 1234, 5678);
    await fs.chmod(file, 0o640);
    const store = new BackupStore(path.join(await tempDir(t), 'backups'));
    const record = await store.backup('set', file);
    await fs.rm(file);
    await plantLink(target, file);
    await store.restore(record);
    await assertUntouched(target, 'root:x:0:0:root:/root:/bin/bash\n');
    const st = await fs.lstat(file);
    assert.ok(st.isFile(), 'a regular file again');
    assert.deepEqual([modeOf(st), st.uid, st.gid], [0o640, 1234, 5678]);
    assert.equal(await fs.readFile(file, 'utf8'), 'ssh-ed25519 AAAA alice\n');
    assert.equal(await store.matches(record), true);
  });

  it('refuses to back up through a planted link (the restore would write its target)', async (t) => {
    const dir = await stickyDir(t);
    const target = await victim(await tempDir(t));
    await plantLink(target, path.join(dir, 'f'));
    await assert.rejects(new BackupStore(path.join(await tempDir(t), 'backups')).backup('set', path.join(dir, 'f')), { name: 'FileRefusedError', message: /^refusing to back up / });
  });
});

describe('Files.rename, Files.symlink and Files.remove act on names, never on what a link points at', () => {
  it('moves and removes a link itself, and creates a link only where nothing is', async (t) => {
    const dir = await tempDir(t);
    const files = new LocalFiles();
    const target = await victim(dir);
    await files.symlink(target, path.join(dir, 'l1'));
    assert.equal(await fs.readlink(path.join(dir, 'l1')), target);
    await assert.rejects(files.symlink('elsewhere', path.join(dir, 'l1')), { code: 'EEXIST' });
    await fs.writeFile(path.join(dir, 'plain'), 'p');
    await files.rename(path.join(dir, 'l1'), path.join(dir, 'plain'));
    assert.equal(await fs.readlink(path.join(dir, 'plain')), target, 'the link replaced the file, as rename(2) does');
    await files.remove(path.join(dir, 'plain'));
    await files.remove(path.join(dir, 'plain'));
    await assertUntouched(target, 'root:x:0:0:root:/root:/bin/bash\n');
    assert.deepEqual(await fs.readdir(dir), ['victim']);
  });
});

describe('readRegularFile', () => {
  const read = (file: string, maxBytes = 1024) => readRegularFile(file, { maxBytes, what: 'the answers file' });
  const refused = async (file: string, reason: string | RegExp, maxBytes?: number) =>
    assert.rejects(read(file, maxBytes), (error: unknown) => {
      assert.ok(error instanceof FileRefusedError, `${file}: ${String(error)}`);
      assert.equal(error.file, file);
      if (typeof reason === 'string') assert.equal(error.reason, reason);
      else assert.match(error.reason, reason);
      assert.equal(error.message, `the answers file ${file}: ${error.reason}`);
      return true;
    });

  it('reads a regular file up to its limit', async (t) => {
    const file = path.join(await tempDir(t), 'a.yml');
    await fs.writeFile(file, 'x'.repeat(1024));
    assert.equal((await read(file)).length, 1024);
    await fs.writeFile(file, 'x'.repeat(1025));
    await refused(file, 'larger than 1 KiB (1025 bytes)');
  });

  it('refuses devices, FIFOs, directories, kernel files and links, without hanging or filling memory', async (t) => {
    const dir = await tempDir(t);
    await refused('/dev/zero', 'not a regular file (a device)');
    await refused('/dev/urandom', 'not a regular file (a device)');
    await execa('mkfifo', [path.join(dir, 'fifo')]);
    await refused(path.join(dir, 'fifo'), 'not a regular file (a named pipe (FIFO))');
    await refused(dir, 'not a regular file (a directory)');
    await refused('/proc/self/mem', /^not a regular file \(a kernel interface, not data\)$|^cannot be read/);
    await refused('/proc/self/status', 'not a regular file (a kernel interface, not data)');
    await fs.writeFile(path.join(dir, 'real'), 'x');
    await fs.symlink(path.join(dir, 'real'), path.join(dir, 'link'));
    await refused(path.join(dir, 'link'), 'a symbolic link; give the path of the file itself');
    await refused(path.join(dir, 'missing'), 'no such file');
    await refused(path.join(dir, 'real', 'below'), 'a part of the path is not a directory');
  });
});

describe('makeDirectorySync', () => {
  it('makes missing parents, and fails (never hangs) where no directory can be made', async (t) => {
    const dir = await tempDir(t);
    makeDirectorySync(path.join(dir, 'a', 'b', 'c'), 0o700);
    assert.equal(modeOf(await fs.stat(path.join(dir, 'a', 'b', 'c'))), 0o700);
    makeDirectorySync(path.join(dir, 'a', 'b', 'c'), 0o700);
    // Node's own recursive mkdir loops forever here.
    assert.throws(() => makeDirectorySync('/proc/pve-baseline-state/sub', 0o700), { code: 'ENOENT' });
  });
});
