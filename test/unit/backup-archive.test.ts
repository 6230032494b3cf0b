/**
 * The config backup on real temporary directories with the real sqlite3,
 * cp, tar, sha256sum and age: a node root with a pmxcfs-shaped config.db
 * whose last write is still in its -wal (a writer holds it open, as pmxcfs
 * does), the archive, its secrecy, its read-back with standard tools, the
 * drill (passing, and failing on a tampered copy by file name), retention.
 */
import { generateKeyPair } from '../../src/ssh/keys.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LocalExec, runChecked } from '../../src/system/exec.ts';
import { createArchive, checkRecipients, pruneLocal, sha256File, type Manifest } from '../../src/backup/archive.ts';
import { drill, resolveTreePath } from '../../src/backup/drill.ts';
import { archiveName } from '../../src/backup/contents.ts';
import { allFiles, modeOf, tempDir } from '../fixtures/temp.ts';

const exec = new LocalExec();
const SECRET = 'PVEBASELINEFAKETOTPSECRET7Q2XK';
const NODE = 'pve1';
const T0 = new Date('2026-12-03T10:00:00Z');

const files: Record<string, string> = {
  'etc/hostname': 'pve1\n',
  'etc/hosts': '127.0.0.1 localhost\n10.0.0.5 pve1.example.com pve1\n',
  'etc/network/interfaces': 'auto vmbr0\niface vmbr0 inet static\n',
  'etc/ssh/sshd_config': 'Include /etc/ssh/sshd_config.d/*.conf\n',
  'etc/ssh/ssh_host_ed25519_key': 'FAKE HOST KEY\n',
  'etc/pve/user.cfg': 'user:root@pam:1:0:::::\n',
  'etc/pve/storage.cfg': 'dir: local\n\tpath /var/lib/vz\n',
  'etc/pve/firewall/cluster.fw': '[OPTIONS]\nenable: 1\n',
  'etc/pve/nodes/pve1/host.fw': '[OPTIONS]\nenable: 1\n',
  'etc/pve/priv/tfa.cfg': `user:alice@pam:totp:${SECRET}\n`,
  'etc/pve/priv/authorized_keys': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx alice\n',
  'var/lib/pve-baseline/journal.json': '{"schemaVersion":1,"steps":{}}\n',
};
const LATE_USER_CFG = 'user:root@pam:1:0:::::\nuser:late@pve:1:0:::::\n';

const hex = (s: string) => Buffer.from(s).toString('hex');

/** pmxcfs's schema (database.c sql_create_db) and rows: root 0 (the __version__ row), dirs of type 4, files of type 8. */
function pmxcfsSql(): string {
  const rows: [number, number, number, string, string | null][] = [
    [0, 0, 8, '__version__', null],
    [1, 0, 8, 'user.cfg', files['etc/pve/user.cfg']!],
    [2, 0, 8, 'storage.cfg', files['etc/pve/storage.cfg']!],
    [3, 0, 4, 'firewall', null],
    [4, 3, 8, 'cluster.fw', files['etc/pve/firewall/cluster.fw']!],
    [5, 0, 4, 'nodes', null],
    [6, 5, 4, 'pve1', null],
    [7, 6, 8, 'host.fw', files['etc/pve/nodes/pve1/host.fw']!],
    [8, 0, 4, 'priv', null],
    [9, 8, 8, 'tfa.cfg', files['etc/pve/priv/tfa.cfg']!],
    // A decoy: a host.fw of another node must not be taken for pve1's.
    [10, 5, 4, 'pve2', null],
    [11, 10, 8, 'host.fw', '[OPTIONS]\nenable: 0\n'],
  ];
  return [
    'PRAGMA journal_mode=WAL;',
    'CREATE TABLE tree (inode INTEGER PRIMARY KEY NOT NULL, parent INTEGER NOT NULL, version INTEGER NOT NULL, writer INTEGER NOT NULL, mtime INTEGER NOT NULL, type INTEGER NOT NULL, name TEXT NOT NULL, data BLOB);',
    ...rows.map(([inode, parent, type, name, data]) => `INSERT INTO tree VALUES (${inode}, ${parent}, ${inode + 1}, 0, 1764756000, ${type}, '${name}', ${data === null ? 'NULL' : `X'${hex(data)}'`});`),
  ].join('\n');
}

interface NodeRoot {
  root: string;
  writer: ChildProcess;
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A node root; its config.db's last write (user.cfg) sits in the -wal, held there by a writer that stays open. */
async function makeNodeRoot(t: { after(fn: () => unknown): void }): Promise<NodeRoot> {
  const root = await tempDir(t, 'pve-baseline-backup-root-');
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await fs.writeFile(path.join(root, rel), rel === 'etc/pve/user.cfg' ? LATE_USER_CFG : content);
  }
  await fs.chmod(path.join(root, 'etc/ssh/ssh_host_ed25519_key'), 0o600);
  await fs.chmod(path.join(root, 'etc/pve/priv'), 0o700);
  // /etc/pve is root:www-data (33) on a node: the owner must survive.
  await fs.chown(path.join(root, 'etc/pve/storage.cfg'), 0, 33);
  await fs.chmod(path.join(root, 'etc/pve/storage.cfg'), 0o640);
  await fs.mkdir(path.join(root, 'root/.ssh'), { recursive: true, mode: 0o700 });
  await fs.symlink('/etc/pve/priv/authorized_keys', path.join(root, 'root/.ssh/authorized_keys'));
  const db = path.join(root, 'var/lib/pve-cluster/config.db');
  await fs.mkdir(path.dirname(db), { recursive: true });
  await runChecked(exec, ['sqlite3', db], { input: pmxcfsSql() });

  const writer = spawn('sqlite3', [db], { stdio: ['pipe', 'ignore', 'ignore'] });
  t.after(async () => {
    if (writer.exitCode === null) {
      const exited = new Promise((r) => writer.once('exit', r));
      writer.stdin!.end();
      await exited;
    }
  });
  writer.stdin!.write(`PRAGMA wal_autocheckpoint=0;\nUPDATE tree SET data = X'${hex(LATE_USER_CFG)}', version = 100 WHERE inode = 1;\n`);
  await waitFor(async () => {
    const r = await exec.run(['sqlite3', db, 'SELECT version FROM tree WHERE inode = 1']);
    return r.stdout.trim() === '100';
  }, 'the writer');
  return { root, writer };
}

async function ageIdentity(dir: string): Promise<{ identity: string; recipient: string }> {
  const identity = path.join(dir, 'identity.txt');
  await runChecked(exec, ['age-keygen', '-o', identity]);
  const recipient = (await runChecked(exec, ['age-keygen', '-y', identity])).stdout.trim();
  return { identity, recipient };
}

async function decryptAndUnpack(archive: string, identity: string, into: string): Promise<string> {
  const plain = path.join(into, 'plain.tar.gz');
  await runChecked(exec, ['age', '-d', '-i', identity, '-o', plain, archive]);
  const x = path.join(into, 'x');
  await fs.mkdir(x);
  await runChecked(exec, ['tar', '-xzf', plain, '-C', x]);
  const [top] = await fs.readdir(x);
  return path.join(x, top!);
}

test('the archive: WAL write included, 0600, secret only inside, standard tools read it, the drill passes', async (t) => {
  const { root } = await makeNodeRoot(t);
  const work = await tempDir(t);
  const { identity, recipient } = await ageIdentity(work);
  const db = path.join(root, 'var/lib/pve-cluster/config.db');

  // The last write is only in the -wal: the main file alone does not have it.
  assert.ok((await fs.stat(`${db}-wal`)).size > 0, 'the -wal holds data');
  const raw = path.join(work, 'raw.db');
  await fs.copyFile(db, raw);
  assert.equal((await runChecked(exec, ['sqlite3', raw, 'SELECT version FROM tree WHERE inode = 1'])).stdout.trim(), '2', 'a raw copy of config.db misses the WAL write');

  const outDir = path.join(work, 'out');
  const result = await createArchive({ exec, node: NODE, root, journal: '/var/lib/pve-baseline/journal.json', outDir, recipients: [recipient], now: T0 });
  assert.equal(result.path, path.join(outDir, 'pve1-config-20261203T100000Z.tar.gz.age'));
  assert.equal(modeOf(await fs.stat(result.path)), 0o600);
  assert.equal(modeOf(await fs.stat(outDir)), 0o700);
  assert.equal(result.sha256, await sha256File(result.path));
  assert.equal(result.bytes, (await fs.stat(result.path)).size);
  // Only the archive and its checksum stay: no staging, no plaintext tar.
  assert.deepEqual((await fs.readdir(outDir)).sort(), [result.name, `${result.name}.sha256`]);
  await runChecked(exec, ['sha256sum', '-c', `${result.name}.sha256`], { cwd: outDir });
  for (const f of await allFiles(outDir)) assert.ok(!f.bytes.includes(SECRET), `the secret is not readable in ${f.path}`);
  assert.equal((await fs.readFile(result.path)).subarray(0, 21).toString(), 'age-encryption.org/v1');
  assert.equal(result.manifest.configDb, 'ok');
  assert.ok(result.manifest.absent.includes('/etc/fail2ban'));
  assert.deepEqual(result.manifest.facts.find((f) => f.file === 'facts/pveversion.txt'), { file: 'facts/pveversion.txt', ok: false, note: 'pveversion is not installed' });
  assert.equal(result.manifest.facts.find((f) => f.file === 'facts/dpkg-selections.txt')?.ok, true);

  // Standard tools: age -d, tar, sha256sum -c.
  const top = await decryptAndUnpack(result.path, identity, work);
  await runChecked(exec, ['sha256sum', '-c', '--quiet', 'SHA256SUMS'], { cwd: top });
  assert.equal((await runChecked(exec, ['sqlite3', path.join(top, 'config.db'), 'SELECT version FROM tree WHERE inode = 1'])).stdout.trim(), '100', '.backup has the WAL write');
  assert.equal(modeOf(await fs.stat(path.join(top, 'config.db'))), 0o600);
  assert.ok((await fs.readFile(path.join(top, 'files/etc/pve/priv/tfa.cfg'), 'utf8')).includes(SECRET), 'the secret is inside (so the check above can fail)');
  const storage = await fs.stat(path.join(top, 'files/etc/pve/storage.cfg'));
  assert.deepEqual([storage.uid, storage.gid, modeOf(storage)], [0, 33, 0o640]);
  assert.equal(await fs.readlink(path.join(top, 'files/root/.ssh/authorized_keys')), '/etc/pve/priv/authorized_keys');
  assert.equal(await fs.readFile(path.join(top, 'files/var/lib/pve-baseline/journal.json'), 'utf8'), files['var/lib/pve-baseline/journal.json']);
  const manifest = JSON.parse(await fs.readFile(path.join(top, 'manifest.json'), 'utf8')) as Manifest;
  assert.deepEqual(
    manifest.entries.find((e) => e.path === 'files/root/.ssh/authorized_keys'),
    { path: 'files/root/.ssh/authorized_keys', type: 'symlink', mode: '0777', uid: 0, gid: 0, target: '/etc/pve/priv/authorized_keys' },
  );
  assert.equal(manifest.entries.find((e) => e.path === 'files/etc/ssh/ssh_host_ed25519_key')?.mode, '0600');
  assert.ok(manifest.absent.includes('/etc/vzdump.conf'));
  assert.equal(manifest.entries.filter((e) => e.type === 'file').length + 2, result.files);

  const checks = await drill({ exec, archive: result.path, identityFile: identity, scratchParent: work, live: { etcPve: path.join(root, 'etc/pve'), nodeName: NODE } });
  assert.deepEqual(checks.filter((c) => !c.ok), [], JSON.stringify(checks, null, 2));
  assert.equal(checks.length, 10);
  assert.match(checks.find((c) => c.label.startsWith('user.cfg'))!.detail!, new RegExp(`^${Buffer.byteLength(LATE_USER_CFG)} bytes`));
  // The scratch directory is gone; nothing else appeared.
  assert.deepEqual((await fs.readdir(work)).filter((n) => n.startsWith('pve-baseline-drill-')), []);
});

test('the drill fails on a tampered copy, naming the file; on a changed live file; on the wrong identity', async (t) => {
  const { root } = await makeNodeRoot(t);
  const work = await tempDir(t);
  const { identity, recipient } = await ageIdentity(work);
  const outDir = path.join(work, 'out');
  const result = await createArchive({ exec, node: NODE, root, outDir, recipients: [recipient], now: T0 });

  // One byte changed inside, the tar made and encrypted again, with a fresh .sha256 (so only the inside can tell).
  const top = await decryptAndUnpack(result.path, identity, work);
  const hosts = path.join(top, 'files/etc/hosts');
  const bytes = await fs.readFile(hosts);
  bytes[0] = bytes[0]! ^ 0x02;
  await fs.writeFile(hosts, bytes);
  const tampered = path.join(work, archiveName(NODE, new Date('2026-12-03T11:00:00Z')));
  await runChecked(exec, ['tar', '-czf', path.join(work, 't.tar.gz'), '-C', path.dirname(top), path.basename(top)]);
  await runChecked(exec, ['age', '-r', recipient, '-o', tampered, path.join(work, 't.tar.gz')]);
  await fs.writeFile(`${tampered}.sha256`, `${await sha256File(tampered)}  ${path.basename(tampered)}\n`);
  const live = { etcPve: path.join(root, 'etc/pve'), nodeName: NODE };
  const checks = await drill({ exec, archive: tampered, identityFile: identity, scratchParent: work, live });
  const failed = checks.filter((c) => !c.ok);
  assert.deepEqual(
    failed.map((c) => c.label),
    ['every file matches the manifest', 'sha256sum -c SHA256SUMS passes'],
  );
  assert.match(failed[0]!.detail!, /^1 of \d+ differ: files\/etc\/hosts: content \(SHA-256\) differs$/);
  assert.equal(failed[1]!.detail, 'failed: files/etc/hosts');

  // The live node changed since the backup: that file's check fails, the others hold.
  await fs.appendFile(path.join(root, 'etc/pve/storage.cfg'), 'nfs: new\n');
  const changed = await drill({ exec, archive: result.path, identityFile: identity, scratchParent: work, live });
  assert.deepEqual(
    changed.filter((c) => !c.ok).map((c) => c.label),
    [`storage.cfg in the backup's database matches the live ${path.join(root, 'etc/pve/storage.cfg')}`],
  );

  // Another identity cannot decrypt: the drill stops there.
  const other = await ageIdentity(await tempDir(t));
  const wrong = await drill({ exec, archive: result.path, identityFile: other.identity, scratchParent: work, live });
  assert.deepEqual(
    wrong.map((c) => [c.label, c.ok]),
    [
      [`${result.name} matches its .sha256`, true],
      ['decrypts with the identity', false],
    ],
  );
  assert.deepEqual((await fs.readdir(work)).filter((n) => n.startsWith('pve-baseline-drill-')), []);
});

test('an SSH ed25519 public key works as a recipient, and its private key decrypts', async (t) => {
  const root = await tempDir(t);
  await fs.mkdir(path.join(root, 'etc'));
  await fs.writeFile(path.join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
  const work = await tempDir(t);
  const pair = await generateKeyPair('ed25519', { comment: 'backup@laptop' });
  await fs.writeFile(path.join(work, 'id_ed25519'), pair.private, { mode: 0o600 });
  const result = await createArchive({ exec, node: NODE, root, outDir: path.join(work, 'out'), recipients: [pair.public], now: T0, facts: [] });
  // No config.db in this root: recorded as absent, not fatal.
  assert.equal(result.manifest.configDb, 'absent');
  assert.ok(result.manifest.absent.includes('/var/lib/pve-cluster/config.db'));
  const top = await decryptAndUnpack(result.path, path.join(work, 'id_ed25519'), work);
  assert.equal(await fs.readFile(path.join(top, 'files/etc/hosts'), 'utf8'), '127.0.0.1 localhost\n');
  // The drill says there is no database to check.
  const checks = await drill({ exec, archive: result.path, identityFile: path.join(work, 'id_ed25519'), scratchParent: work, live: { etcPve: path.join(root, 'etc/pve'), nodeName: NODE } });
  assert.deepEqual(checks.at(-1), { label: 'config.db passes SQLite integrity_check', ok: false, detail: 'the archive holds no config.db' });
});

test('a failure leaves nothing behind; bad recipients and directories are refused without echoing a secret', async (t) => {
  const root = await tempDir(t);
  await fs.mkdir(path.join(root, 'etc'));
  await fs.writeFile(path.join(root, 'etc/hosts'), 'x\n');
  const work = await tempDir(t);
  const outDir = path.join(work, 'out');
  // Right alphabet and length, wrong checksum: only age itself can tell, after the staging was made.
  const bogus = `age1${'q'.repeat(58)}`;
  await assert.rejects(createArchive({ exec, node: NODE, root, outDir, recipients: [bogus], now: T0, facts: [] }), /age/);
  assert.deepEqual(await fs.readdir(outDir), []);

  const secretKey = 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ';
  assert.throws(() => checkRecipients([secretKey]), (e: Error) => /is a secret key/.test(e.message) && !e.message.includes(secretKey));
  assert.throws(() => checkRecipients(['hello']), /recipient 1 is not an age public key/);
  assert.throws(() => checkRecipients([]), /no recipient/);
  const { recipient } = await ageIdentity(work);
  await assert.rejects(createArchive({ exec, node: NODE, root, outDir: path.join(work, "it's"), recipients: [recipient], now: T0, facts: [] }), /must not contain a quote/);
  await assert.rejects(createArchive({ exec, node: 'bad name', root, outDir, recipients: [recipient], now: T0 }), /not a node name/);
});

test('retention keeps the newest N of our archives and never touches anything else', async (t) => {
  const root = await tempDir(t);
  await fs.mkdir(path.join(root, 'etc'));
  await fs.writeFile(path.join(root, 'etc/hosts'), 'x\n');
  const work = await tempDir(t);
  const outDir = path.join(work, 'out');
  const { recipient } = await ageIdentity(work);
  const made: string[] = [];
  for (const day of [1, 2, 3, 4]) {
    const r = await createArchive({ exec, node: NODE, root, outDir, recipients: [recipient], now: new Date(`2026-12-0${day}T10:00:00Z`), facts: [] });
    made.push(r.name);
  }
  await fs.writeFile(path.join(outDir, 'notes.txt'), 'mine\n');
  await fs.writeFile(path.join(outDir, 'pve2-config-20261101T000000Z.tar.gz.age'), 'another node\n');
  await fs.writeFile(path.join(outDir, 'pve1-config-20261101T000000Z.tar.gz.age.bak'), 'not ours\n');
  const removed = await pruneLocal(outDir, 2, NODE);
  assert.deepEqual(removed, [made[1], made[0]]);
  assert.deepEqual((await fs.readdir(outDir)).sort(), [
    'notes.txt',
    'pve1-config-20261101T000000Z.tar.gz.age.bak',
    made[2],
    `${made[2]}.sha256`,
    made[3],
    `${made[3]}.sha256`,
    'pve2-config-20261101T000000Z.tar.gz.age',
  ].sort());
  await assert.rejects(pruneLocal(outDir, 0, NODE), /at least 1/);
});

test('paths are resolved through parent inodes from the root inode 0', () => {
  const rows = [
    { inode: '0', parent: '0', type: 8, name: '__version__' },
    { inode: '5', parent: '0', type: 4, name: 'nodes' },
    { inode: '6', parent: '5', type: 4, name: 'pve1' },
    { inode: '7', parent: '6', type: 8, name: 'host.fw' },
    { inode: '11', parent: '0', type: 8, name: 'host.fw' },
  ];
  assert.deepEqual(resolveTreePath(rows, 'nodes/pve1/host.fw'), { inode: '7', type: 8 });
  assert.deepEqual(resolveTreePath(rows, 'host.fw'), { inode: '11', type: 8 });
  assert.equal(resolveTreePath(rows, 'nodes/pve2/host.fw'), null);
  assert.equal(resolveTreePath(rows, '__version__'), null);
  assert.equal(resolveTreePath(rows, 'host.fw/x'), null);
});
