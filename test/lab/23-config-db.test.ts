/**
 * The lab's pmxcfs stand-in keeps a real /var/lib/pve-cluster/config.db
 * (pve-cluster src/pmxcfs/database.c: table `tree`, WAL), and the lab's
 * backup host takes SFTP uploads from the node. Against the running node:
 * the schema, changes landing in config.db-wal (so `.backup` sees them and a
 * plain `cp config.db` does not), removals and directories, the documented
 * restore (stop pve-cluster, replace config.db 0600, start), and SFTP with an
 * authorized key, a refused unknown key and an unreachable host. Ends with a
 * reset, which empties the backup host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labOrSkip, sh, waitUntil } from './helpers.ts';
import { run } from './sh.ts';

const lab = await labOrSkip();

const DB = '/var/lib/pve-cluster/config.db';
const WORK = '/root/t23';
/** pve-cluster src/pmxcfs/database.c sql_create_db, as SQLite keeps it in sqlite_master ("IF NOT EXISTS" dropped) */
const TREE_SQL =
  'CREATE TABLE tree (' +
  '  inode INTEGER PRIMARY KEY NOT NULL,' +
  "  parent INTEGER NOT NULL CHECK(typeof(parent)=='integer')," +
  "  version INTEGER NOT NULL CHECK(typeof(version)=='integer')," +
  "  writer INTEGER NOT NULL CHECK(typeof(writer)=='integer')," +
  "  mtime INTEGER NOT NULL CHECK(typeof(mtime)=='integer')," +
  "  type INTEGER NOT NULL CHECK(typeof(type)=='integer')," +
  '  name TEXT NOT NULL,' +
  '  data BLOB)';
const DT_DIR = 4;
const DT_REG = 8;

interface Row {
  inode: number;
  parent: number;
  version: number;
  writer: number;
  mtime: number;
  type: number;
  name: string;
  data: string; // hex
}

async function ok(argv: string[], input?: string): Promise<string> {
  const r = await lab!.exec(argv, input === undefined ? {} : { input });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} exited ${r.exitCode}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** every row of a database file in the node */
async function rowsOf(file: string): Promise<Row[]> {
  const out = await ok(['sqlite3', '-json', file, 'SELECT inode, parent, version, writer, mtime, type, name, hex(data) AS data FROM tree']);
  return out.trim() ? (JSON.parse(out) as Row[]) : [];
}

/** a consistent copy of the live config.db (SQLite's online backup: the WAL included) */
async function snapshot(): Promise<Row[]> {
  await ok(['rm', '-f', `${WORK}/snap.db`]);
  await ok(['sqlite3', DB, `.backup ${WORK}/snap.db`]);
  return rowsOf(`${WORK}/snap.db`);
}

/** path -> row (the root's entries have parent 0) */
function byPath(rows: Row[]): Map<string, Row> {
  const inodes = new Map(rows.filter((r) => r.inode !== 0).map((r) => [r.inode, r]));
  const pathOf = (r: Row): string => (r.parent === 0 ? r.name : `${pathOf(inodes.get(r.parent)!)}/${r.name}`);
  return new Map([...inodes.values()].map((r) => [pathOf(r), r]));
}

const text = (r: Row | undefined) => (r ? Buffer.from(r.data, 'hex').toString('utf8') : undefined);
const hex = (s: string) => Buffer.from(s).toString('hex').toUpperCase();

async function untilInDb(what: string, check: (tree: Map<string, Row>) => boolean): Promise<Map<string, Row>> {
  let tree = new Map<string, Row>();
  await waitUntil(async () => check((tree = byPath(await snapshot()))), what, 10_000);
  return tree;
}

if (lab) {
  await sh(lab, `rm -rf ${WORK} /etc/pve/lab-23 && mkdir -p ${WORK}`);

  test('config.db: pmxcfs\'s tree schema, 0600, WAL, /etc/pve as rows with the __version__ root', async () => {
    assert.equal((await ok(['stat', '-c', '%a %U', DB])).trim(), '600 root');
    assert.equal((await ok(['sqlite3', DB, "SELECT sql FROM sqlite_master WHERE type = 'table'"])).trim(), TREE_SQL);
    assert.equal((await ok(['sqlite3', DB, 'PRAGMA journal_mode'])).trim(), 'wal');
    const rows = await snapshot();
    const root = rows.filter((r) => r.inode === 0);
    assert.equal(root.length, 1);
    assert.deepEqual({ ...root[0], version: 0, mtime: 0 }, { inode: 0, parent: 0, version: 0, writer: 0, mtime: 0, type: DT_REG, name: '__version__', data: '' });
    // the root's version is the newest change's; memdb gives new entries inode = version, so no inode exceeds it
    assert.equal(root[0]!.version, Math.max(...rows.map((r) => r.version)));
    for (const r of rows) {
      assert.ok(r.type === DT_DIR || r.type === DT_REG, `type ${r.type}`);
      assert.ok(r.inode <= root[0]!.version);
      assert.equal(r.writer, 0);
      if (r.type === DT_DIR) assert.equal(r.data, '', `directory ${r.name} holds no data`);
    }
    // every regular file and directory of /etc/pve, byte for byte; pmxcfs's links are not rows
    const files = (await sh(lab, 'cd /etc/pve && find . -mindepth 1 \\( -type f -o -type d \\) -printf "%y %P\\n" | sort')).trim().split('\n');
    assert.ok(files.length > 20);
    const tree = await untilInDb('all of /etc/pve', (t) => files.every((l) => t.has(l.slice(2))));
    for (const line of files) {
      const [kind, path] = [line[0], line.slice(2)];
      const r = tree.get(path);
      assert.ok(r, `${path} is in config.db`);
      assert.equal(r.type, kind === 'd' ? DT_DIR : DT_REG, path);
      if (kind === 'f') {
        const sum = (await ok(['sha256sum', `/etc/pve/${path}`])).split(' ')[0];
        assert.equal(createHash('sha256').update(Buffer.from(r.data, 'hex')).digest('hex'), sum, path);
      }
    }
    assert.equal(tree.size, files.length, 'nothing else in the tree');
    for (const link of ['local', 'qemu-server', 'lxc', 'openvz']) assert.equal(tree.has(link), false, `${link} is pmxcfs's virtual link`);
    assert.equal(tree.get('nodes/pve1/priv')?.type, DT_DIR);
    assert.match(text(tree.get('user.cfg'))!, /^user:root@pam:/m);
  });

  test('a new file is committed into config.db-wal: .backup has it, cp of config.db alone does not', async () => {
    await sh(lab, 'mkdir /etc/pve/lab-23 && printf "first\\n" > /etc/pve/lab-23/a.cfg');
    const tree = await untilInDb('lab-23/a.cfg in config.db', (t) => text(t.get('lab-23/a.cfg')) === 'first\n');
    assert.equal(tree.get('lab-23')?.type, DT_DIR);
    assert.equal(tree.get('lab-23/a.cfg')?.parent, tree.get('lab-23')?.inode);
    // `select data from tree` on the .backup copy
    const data = await ok(['sqlite3', `${WORK}/snap.db`, "SELECT hex(data) FROM tree WHERE name = 'a.cfg' AND parent = (SELECT inode FROM tree WHERE name = 'lab-23' AND parent = 0)"]);
    assert.equal(data.trim(), hex('first\n'));
    // the same moment, copied the naive way: config.db without its -wal
    assert.ok(Number((await ok(['stat', '-c', '%s', `${DB}-wal`])).trim()) > 0, 'config.db-wal holds the commits');
    await ok(['cp', DB, `${WORK}/cp.db`]);
    const copied = byPath(await rowsOf(`${WORK}/cp.db`));
    assert.ok(copied.has('user.cfg'), 'the copy has what was checkpointed at start');
    assert.equal(copied.has('lab-23/a.cfg'), false, 'the copy lacks what sits in the WAL');
    assert.equal(copied.has('lab-23'), false);
    assert.equal((await ok(['sqlite3', `${WORK}/snap.db`, 'PRAGMA integrity_check'])).trim(), 'ok');
  });

  test('changes, replacement by rename, directories and removals', async () => {
    let tree = byPath(await snapshot());
    const a = tree.get('lab-23/a.cfg')!;
    // written in place: same inode, a new version
    await sh(lab, 'printf "second\\n" > /etc/pve/lab-23/a.cfg');
    tree = await untilInDb('a.cfg changed', (t) => text(t.get('lab-23/a.cfg')) === 'second\n');
    assert.equal(tree.get('lab-23/a.cfg')!.inode, a.inode);
    assert.ok(tree.get('lab-23/a.cfg')!.version > a.version);
    // replaced by rename (as Proxmox's file_set_contents writes): another inode, the old one gone
    await sh(lab, 'printf "third\\n" > /etc/pve/lab-23/.a.tmp && mv /etc/pve/lab-23/.a.tmp /etc/pve/lab-23/a.cfg');
    tree = await untilInDb('a.cfg replaced', (t) => text(t.get('lab-23/a.cfg')) === 'third\n');
    assert.notEqual(tree.get('lab-23/a.cfg')!.inode, a.inode);
    assert.equal([...tree.values()].some((r) => r.inode === a.inode), false);
    // a directory and a file in it; an empty file is NULL data
    await sh(lab, 'mkdir -p /etc/pve/lab-23/sub/deeper && printf "x" > /etc/pve/lab-23/sub/deeper/x.cfg && : > /etc/pve/lab-23/sub/empty.cfg');
    tree = await untilInDb('sub/deeper/x.cfg', (t) => t.has('lab-23/sub/deeper/x.cfg') && t.has('lab-23/sub/empty.cfg'));
    assert.equal(tree.get('lab-23/sub')!.type, DT_DIR);
    assert.equal(tree.get('lab-23/sub/deeper')!.parent, tree.get('lab-23/sub')!.inode);
    assert.equal(tree.get('lab-23/sub/deeper/x.cfg')!.parent, tree.get('lab-23/sub/deeper')!.inode);
    assert.equal((await ok(['sqlite3', `${WORK}/snap.db`, "SELECT quote(data) FROM tree WHERE name = 'empty.cfg'"])).trim(), 'NULL');
    const before = Math.max(...[...tree.values()].map((r) => r.version));
    // removals: a file, then a whole directory
    await sh(lab, 'rm /etc/pve/lab-23/a.cfg && rm -r /etc/pve/lab-23/sub');
    tree = await untilInDb('removals', (t) => !t.has('lab-23/a.cfg') && !t.has('lab-23/sub'));
    assert.deepEqual([...tree.keys()].filter((p) => p.startsWith('lab-23/')), []);
    assert.ok(tree.has('lab-23'));
    const root = (await rowsOf(`${WORK}/snap.db`)).find((r) => r.inode === 0)!;
    assert.ok(root.version >= before + 5, 'each removal is a change of its own (memdb_delete)');
  });

  test('restore: stop pve-cluster, replace config.db by an older copy (0600), start: /etc/pve is the older one', async () => {
    await sh(lab, 'printf "old\\n" > /etc/pve/lab-23/keep.cfg && printf "bye\\n" > /etc/pve/lab-23/gone.cfg');
    await untilInDb('the old state', (t) => text(t.get('lab-23/keep.cfg')) === 'old\n' && t.has('lab-23/gone.cfg'));
    await ok(['sqlite3', DB, `.backup ${WORK}/old.db`]);
    await sh(lab, 'printf "new\\n" > /etc/pve/lab-23/keep.cfg && printf "later\\n" > /etc/pve/lab-23/later.cfg && rm /etc/pve/lab-23/gone.cfg');
    await untilInDb('the new state', (t) => text(t.get('lab-23/keep.cfg')) === 'new\n' && t.has('lab-23/later.cfg') && !t.has('lab-23/gone.cfg'));
    const userCfg = await ok(['cat', '/etc/pve/user.cfg']);

    await ok(['systemctl', 'stop', 'pve-cluster']);
    // a clean stop checkpoints: config.db alone is complete, no -wal left
    assert.equal((await lab.exec(['test', '-e', `${DB}-wal`])).exitCode, 1, 'no config.db-wal after the stop');
    assert.equal(byPath(await rowsOf(DB)).has('lab-23/later.cfg'), true);
    await sh(lab, `cp ${WORK}/old.db ${DB} && chmod 0600 ${DB}`);
    await ok(['systemctl', 'start', 'pve-cluster']); // Type=notify: returns once /etc/pve is written

    assert.equal(await ok(['cat', '/etc/pve/lab-23/keep.cfg']), 'old\n');
    assert.equal(await ok(['cat', '/etc/pve/lab-23/gone.cfg']), 'bye\n');
    assert.equal((await lab.exec(['test', '-e', '/etc/pve/lab-23/later.cfg'])).exitCode, 1, 'later.cfg is not in the older database');
    assert.equal((await ok(['stat', '-c', '%U:%G %a', '/etc/pve/lab-23/gone.cfg'])).trim(), 'root:www-data 640');
    assert.equal(await ok(['cat', '/etc/pve/user.cfg']), userCfg);
    assert.equal((await ok(['readlink', '/etc/pve/local'])).trim(), 'nodes/pve1');
    assert.equal((await ok(['systemctl', 'is-active', 'pve-cluster'])).trim(), 'active');
    // and it keeps recording
    await sh(lab, 'rm -r /etc/pve/lab-23');
    await untilInDb('lab-23 removed', (t) => !t.has('lab-23'));
  });

  // --- the backup host ------------------------------------------------------------------

  const b = lab.backupHost;
  const sftpArgs = (key: string, knownHosts: string, extra: string[] = []) => [
    'sftp', '-b', `${WORK}/batch`, '-i', key,
    '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', ...extra, '-P', String(b.port), `${b.user}@${b.address}`,
  ];

  test('backup host: its host key is ed25519 and the fingerprint is ssh-keygen\'s', async () => {
    assert.ok(b.running);
    assert.match(b.hostKeyLine, new RegExp(`^${b.address.replace(/\./g, '\\.')} ssh-ed25519 AAAA[A-Za-z0-9+/]+=*$`));
    const dir = mkdtempSync(join(tmpdir(), 'pve-lab-23-'));
    try {
      writeFileSync(join(dir, 'kh'), `${b.hostKeyLine}\n`);
      const r = await run('ssh-keygen', ['-lf', join(dir, 'kh')]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout.split(' ')[1], b.hostKeyFingerprint);
      assert.match(r.stdout, /\(ED25519\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('backup host: SFTP with the authorized key works from the node (chrooted, host key checked); the upload lands in dir', async () => {
    await b.clear();
    await sh(lab, `cd ${WORK} && ssh-keygen -q -t ed25519 -N "" -C backup@pve1 -f id_backup && ssh-keygen -q -t ed25519 -N "" -f id_other && head -c 200000 /dev/urandom > payload.bin`);
    b.authorize(await ok(['cat', `${WORK}/id_backup.pub`]));
    assert.equal(b.authorizedKeys().length, 1);
    writeFileSync(join(lab.rootDir, WORK.slice(1), 'known_hosts'), `${b.hostKeyLine}\n`);
    writeFileSync(join(lab.rootDir, WORK.slice(1), 'batch'), `put ${WORK}/payload.bin pve1-payload.bin\npwd\nls -1 /\n`);
    const r = await lab.exec(sftpArgs(`${WORK}/id_backup`, `${WORK}/known_hosts`, ['-o', 'ConnectTimeout=5']));
    assert.equal(r.exitCode, 0, `${r.stderr}\n${readFileSync(b.logFile, 'utf8').slice(-1500)}`);
    assert.match(r.stdout, /Remote working directory: \/upload/);
    assert.match(r.stdout, /^\/upload$/m, 'the chroot holds only the upload directory');
    const sent = createHash('sha256').update(readFileSync(join(lab.rootDir, WORK.slice(1), 'payload.bin'))).digest('hex');
    assert.deepEqual(readdirSync(b.dir), ['pve1-payload.bin']);
    assert.equal(createHash('sha256').update(readFileSync(join(b.dir, 'pve1-payload.bin'))).digest('hex'), sent);
    // the workstation side may modify the directory (a test simulating a damaged or missing upload)
    rmSync(join(b.dir, 'pve1-payload.bin'));
    assert.equal(existsSync(join(b.dir, 'pve1-payload.bin')), false);
  });

  test('backup host: an unknown key, a wrong host key, a shell and the chroot root are refused', async () => {
    writeFileSync(join(lab.rootDir, WORK.slice(1), 'batch'), 'ls\n');
    const unknown = await lab.exec(sftpArgs(`${WORK}/id_other`, `${WORK}/known_hosts`, ['-o', 'ConnectTimeout=5']));
    assert.notEqual(unknown.exitCode, 0);
    assert.match(unknown.stderr, /Permission denied \(publickey\)/);
    // a known_hosts line with another key for the address: OpenSSH refuses before authenticating
    const other = (await ok(['cat', `${WORK}/id_other.pub`])).split(' ').slice(0, 2).join(' ');
    writeFileSync(join(lab.rootDir, WORK.slice(1), 'known_hosts_wrong'), `${b.address} ${other}\n`);
    const wrong = await lab.exec(sftpArgs(`${WORK}/id_backup`, `${WORK}/known_hosts_wrong`, ['-o', 'ConnectTimeout=5']));
    assert.notEqual(wrong.exitCode, 0);
    assert.match(wrong.stderr, /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
    // ForceCommand internal-sftp: no command runs
    const shell = await lab.exec(['ssh', '-i', `${WORK}/id_backup`, '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${WORK}/known_hosts`, '-o', 'BatchMode=yes', `${b.user}@${b.address}`, 'id']);
    assert.notEqual(shell.exitCode, 0);
    assert.doesNotMatch(shell.stdout, /uid=/);
    // the chroot's root is root's: no upload there
    writeFileSync(join(lab.rootDir, WORK.slice(1), 'batch'), `put ${WORK}/payload.bin /payload.bin\n`);
    const top = await lab.exec(sftpArgs(`${WORK}/id_backup`, `${WORK}/known_hosts`, ['-o', 'ConnectTimeout=5']));
    assert.notEqual(top.exitCode, 0);
    assert.match(top.stdout + top.stderr, /Permission denied/);
  });

  test('backup host: setReachable(false) drops its traffic (the connection times out quickly), true brings it back', async () => {
    writeFileSync(join(lab.rootDir, WORK.slice(1), 'batch'), 'ls\n');
    await b.setReachable(false);
    try {
      const t0 = performance.now();
      const r = await lab.exec(sftpArgs(`${WORK}/id_backup`, `${WORK}/known_hosts`, ['-o', 'ConnectTimeout=2']));
      const s = (performance.now() - t0) / 1000;
      assert.notEqual(r.exitCode, 0);
      assert.match(r.stderr, /timed out/i);
      assert.ok(s < 6, `failed after ${s.toFixed(1)} s`);
    } finally {
      await b.setReachable(true);
    }
    const r = await lab.exec(sftpArgs(`${WORK}/id_backup`, `${WORK}/known_hosts`, ['-o', 'ConnectTimeout=5']));
    assert.equal(r.exitCode, 0, r.stderr);
  });

  test('backup host: stop/start keep its files and keys; reset empties it, with no authorized keys', async () => {
    writeFileSync(join(b.dir, 'marker'), 'x');
    await b.stop();
    assert.equal(b.running, false);
    await b.start();
    assert.ok(b.running);
    assert.deepEqual(readdirSync(b.dir), ['marker']);
    assert.equal(b.authorizedKeys().length, 1);
    await lab.reset();
    assert.ok(b.running);
    assert.deepEqual(readdirSync(b.dir), []);
    assert.deepEqual(b.authorizedKeys(), []);
    // and the fresh node has its config.db again, without this test's directory
    assert.equal(byPath(await rowsOf(DB)).has('lab-23'), false);
  });
}
