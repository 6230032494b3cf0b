/**
 * Shipping the archive: SFTP against an in-process ssh2 server backed by a
 * temporary directory (test/fixtures/sftp-server.ts), and a mounted path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { RemoteError, copyToPath, fetchSftp, notSeparateMount, parseMountinfo, probeHostKey, uploadSftp } from '../../src/backup/remote.ts';
import { sha256File } from '../../src/backup/archive.ts';
import { generateClientKey, startSftpServer } from '../fixtures/sftp-server.ts';
import { tempDir } from '../fixtures/temp.ts';

async function setup(t: { after(fn: () => unknown): void }, opts: { corruptReads?: boolean } = {}) {
  const local = await tempDir(t);
  const remote = await tempDir(t);
  await fs.mkdir(path.join(remote, 'pve'));
  const client = (await generateClientKey());
  const keyPath = path.join(local, 'id_ed25519');
  await fs.writeFile(keyPath, client.privateKey, { mode: 0o600 });
  const server = await startSftpServer({ root: remote, authorizedKey: client.publicKey, ...opts });
  t.after(() => server.close());
  const archive = async (stamp: string, node = 'pve1') => {
    const file = path.join(local, `${node}-config-${stamp}.tar.gz.age`);
    await fs.writeFile(file, randomBytes(200_000 + Math.floor(Math.random() * 1000)), { mode: 0o600 });
    return file;
  };
  const target = { host: '127.0.0.1', port: server.port, user: 'backup', privateKeyPath: keyPath, hostKey: server.fingerprint };
  return { local, remote, server, target, archive, client };
}

test('SFTP: pinned host key accepted; uploaded, read back, retention of our names only; fetched back', async (t) => {
  const { local, remote, target, archive } = await setup(t);
  assert.equal(await probeHostKey({ host: target.host, port: target.port }), target.hostKey);
  await fs.writeFile(path.join(remote, 'pve', 'notes.txt'), 'not ours\n');
  await fs.writeFile(path.join(remote, 'pve', 'pve2-config-20261101T000000Z.tar.gz.age'), 'another node\n');
  const files = [await archive('20261201T100000Z'), await archive('20261202T100000Z'), await archive('20261203T100000Z')];
  const results = [];
  for (const file of files) results.push(await uploadSftp({ ...target, dir: 'pve', file, keep: 2 }));
  const last = results.at(-1)!;
  assert.equal(last.remotePath, 'pve/pve1-config-20261203T100000Z.tar.gz.age');
  assert.equal(last.sha256, await sha256File(files[2]!));
  assert.deepEqual(last.removed, ['pve1-config-20261201T100000Z.tar.gz.age']);
  assert.deepEqual((await fs.readdir(path.join(remote, 'pve'))).sort(), [
    'notes.txt',
    'pve1-config-20261202T100000Z.tar.gz.age',
    'pve1-config-20261202T100000Z.tar.gz.age.sha256',
    'pve1-config-20261203T100000Z.tar.gz.age',
    'pve1-config-20261203T100000Z.tar.gz.age.sha256',
    'pve2-config-20261101T000000Z.tar.gz.age',
  ]);
  const copy = path.join(remote, 'pve', 'pve1-config-20261203T100000Z.tar.gz.age');
  assert.ok((await fs.readFile(copy)).equals(await fs.readFile(files[2]!)));
  assert.equal((await fs.stat(copy)).mode & 0o777, 0o600);
  assert.equal(await fs.readFile(`${copy}.sha256`, 'utf8'), `${last.sha256}  pve1-config-20261203T100000Z.tar.gz.age\n`);

  // Uploading the same archive again replaces it.
  await uploadSftp({ ...target, dir: 'pve', file: files[2]!, keep: 2 });

  const into = path.join(local, 'fetched');
  const fetched = await fetchSftp({ ...target, dir: 'pve', node: 'pve1', toDir: into });
  assert.equal(fetched.name, 'pve1-config-20261203T100000Z.tar.gz.age');
  assert.equal(fetched.sha256, last.sha256);
  assert.equal(fetched.checksumVerified, true);
  assert.ok((await fs.readFile(fetched.path)).equals(await fs.readFile(files[2]!)));
  assert.deepEqual((await fs.readdir(into)).sort(), [fetched.name, `${fetched.name}.sha256`]);
  await assert.rejects(fetchSftp({ ...target, dir: 'pve', node: 'pve9', toDir: into }), /no archive of pve9 in pve/);
});

test('SFTP: no pinned key, or another, is refused with the fingerprint seen', async (t) => {
  const { target, archive, remote } = await setup(t);
  const file = await archive('20261203T100000Z');
  const { hostKey: _pinned, ...unpinned } = target;
  await assert.rejects(uploadSftp({ ...unpinned, dir: 'pve', file, keep: 2 }), (e: RemoteError) => {
    assert.equal(e.kind, 'host-key');
    assert.equal(e.seen, target.hostKey);
    assert.ok(e.message.includes(target.hostKey) && /no host key is pinned/.test(e.message), e.message);
    return true;
  });
  const other = `SHA256:${Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '')}`;
  await assert.rejects(uploadSftp({ ...target, hostKey: other, dir: 'pve', file, keep: 2 }), (e: RemoteError) => {
    assert.equal(e.kind, 'host-key');
    assert.equal(e.seen, target.hostKey);
    assert.equal(e.expected, other);
    assert.ok(e.message.includes(target.hostKey) && e.message.includes(other), e.message);
    return true;
  });
  assert.deepEqual(await fs.readdir(path.join(remote, 'pve')), [], 'nothing was uploaded');
  await assert.rejects(uploadSftp({ ...target, hostKey: 'SHA256:short', dir: 'pve', file, keep: 2 }), /not a host key fingerprint/);
});

test('SFTP: a key the server does not know is refused; the key never appears in the message', async (t) => {
  const { target, archive, local } = await setup(t);
  const stranger = (await generateClientKey());
  const keyPath = path.join(local, 'stranger');
  await fs.writeFile(keyPath, stranger.privateKey, { mode: 0o600 });
  const file = await archive('20261203T100000Z');
  await assert.rejects(uploadSftp({ ...target, privateKeyPath: keyPath, dir: 'pve', file, keep: 2 }), (e: RemoteError) => {
    assert.equal(e.kind, 'auth');
    assert.equal(e.message, `backup@127.0.0.1:${target.port} refused the key ${keyPath} (public key authentication failed)`);
    assert.ok(!e.message.includes(stranger.privateKey.split('\n')[1]!));
    return true;
  });
});

test('SFTP: an unreachable port fails fast, naming the address', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const started = Date.now();
  await assert.rejects(probeHostKey({ host: '127.0.0.1', port }), (e: RemoteError) => e.kind === 'unreachable' && e.message === `cannot reach 127.0.0.1:${port}: connection refused`);
  // A server that accepts TCP but never speaks: the limit.
  const silent = net.createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentPort = (silent.address() as net.AddressInfo).port;
  try {
    await assert.rejects(probeHostKey({ host: '127.0.0.1', port: silentPort, timeoutMs: 700 }), (e: RemoteError) => e.kind === 'unreachable' && /no answer within 0.7 s/.test(e.message));
  } finally {
    silent.close();
  }
  assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
});

test('SFTP: a server that corrupts the file on read-back is caught, and the bad copy removed', async (t) => {
  const { target, archive, remote } = await setup(t, { corruptReads: true });
  const file = await archive('20261203T100000Z');
  await assert.rejects(uploadSftp({ ...target, dir: 'pve', file, keep: 2 }), (e: RemoteError) => {
    assert.equal(e.kind, 'verify');
    assert.match(e.message, /^the copy of pve1-config-20261203T100000Z\.tar\.gz\.age on 127\.0\.0\.1:\d+ differs from the local file/);
    return true;
  });
  assert.deepEqual(await fs.readdir(path.join(remote, 'pve')), []);
});

test('mounted path: refused on the root filesystem, copied and read back on another, retention', async (t) => {
  const local = await tempDir(t);
  const file = path.join(local, 'pve1-config-20261203T100000Z.tar.gz.age');
  await fs.writeFile(file, randomBytes(50_000));
  // The temporary directory lies on / here (checked, so the test means what it says).
  const onRoot = await tempDir(t);
  if ((await fs.stat(onRoot)).dev === (await fs.stat('/')).dev) {
    await assert.rejects(copyToPath({ dir: onRoot, file, keep: 2 }), (e: RemoteError) => e.kind === 'refused' && /is on the same filesystem as \/ \(same st_dev/.test(e.message));
  }
  // Any directory on another filesystem than rootPath: /dev/shm against the temp dir's filesystem.
  const mounted = await fs.mkdtemp('/dev/shm/pve-baseline-test-');
  t.after(() => fs.rm(mounted, { recursive: true, force: true }));
  const older = path.join(mounted, 'pve1-config-20261101T100000Z.tar.gz.age');
  await fs.writeFile(older, 'old');
  await fs.writeFile(path.join(mounted, 'keep.me'), 'x');
  const copied = await copyToPath({ dir: mounted, file, keep: 1, rootPath: onRoot });
  assert.equal(copied.sha256, await sha256File(file));
  assert.deepEqual(copied.removed, ['pve1-config-20261101T100000Z.tar.gz.age']);
  assert.deepEqual((await fs.readdir(mounted)).sort(), ['keep.me', 'pve1-config-20261203T100000Z.tar.gz.age', 'pve1-config-20261203T100000Z.tar.gz.age.sha256']);
  assert.equal((await fs.stat(copied.path)).mode & 0o777, 0o600);
});

test('mountinfo: a ZFS dataset of the root pool is not a separate place', async (t) => {
  const dir = await tempDir(t);
  const info = path.join(dir, 'mountinfo');
  const mounted = await fs.mkdtemp('/dev/shm/pve-baseline-test-');
  t.after(() => fs.rm(mounted, { recursive: true, force: true }));
  await fs.writeFile(
    info,
    [`22 1 0:21 / / rw - zfs rpool/ROOT/pve-1 rw`, `40 22 0:40 / /dev/shm rw - zfs rpool/data rw`, `41 22 0:41 / /mnt/usb rw - ext4 /dev/sdb1 rw`].join('\n'),
  );
  assert.match((await notSeparateMount(mounted, { rootPath: dir, mountinfoPath: info }))!, /is the ZFS dataset rpool\/data, in the pool rpool/);
  assert.deepEqual(parseMountinfo('36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw'), [{ mountPoint: '/mnt/my disk', device: '98:0', fsType: 'ext3', source: '/dev/root' }]);
});
