/**
 * pmxcfs stand-in (pve-cluster src/pmxcfs/), run by pve-cluster.service.
 *
 * On a real node /etc/pve is a FUSE view of the SQLite database
 * /var/lib/pve-cluster/config.db. In the lab /etc/pve stays a plain directory,
 * and this daemon keeps a real config.db beside it, with pmxcfs's schema and
 * conventions (database.c, memdb.c):
 *
 * - start, config.db present: its `tree` is loaded and checked as
 *   bdb_backend_load_index does, and /etc/pve is written from it (files and
 *   directories; what the database does not hold is removed, except pmxcfs's
 *   virtual links local/qemu-server/openvz/lxc, create_symlinks in pmxcfs.c).
 *   So "stop pve-cluster, replace config.db (0600), start" brings /etc/pve back.
 * - start, no config.db: created as bdb_create does, then filled from /etc/pve
 *   as it is (the lab's stand-in for the installer's first pmxcfs start).
 * - running: /etc/pve is scanned every 250 ms (PVE_LAB_PMXCFS_POLL_MS); every
 *   created, changed or removed file and directory is one transaction as
 *   bdb_backend_write writes it, through ONE long-lived `sqlite3` process (no
 *   SQLite library in node 20; argv array, SQL on its stdin, never a shell).
 *   That connection has automatic checkpoints off (PRAGMA wal_autocheckpoint=0,
 *   a lab choice: pmxcfs keeps SQLite's default), so committed changes sit in
 *   config.db-wal until the daemon stops: `cp config.db` alone is not a
 *   consistent copy, `sqlite3 config.db ".backup X"` is. At start (after the
 *   load or the import) the WAL is checkpointed once.
 * - start, config.db present, a cluster member (/etc/corosync/corosync.conf):
 *   the lab's two nodes share one /etc/pve directory (lab.ts cluster()), which
 *   holds the cluster's state; the database is synced from it, never the
 *   reverse (the quorate cluster's tree wins, as pmxcfs's dfsm sync gives it).
 * - stop (SIGTERM): a last scan, then sqlite3's stdin is closed; closing the
 *   last connection checkpoints and removes config.db-wal.
 *
 * Simplified: changes are seen by polling, not by FUSE calls (a file rewritten
 * and restored within one interval is not recorded; a file replaced by rename
 * gets a new inode, as memdb_rename gives it the temporary file's); the mtime
 * column is the file's mtime; writer is always 0 (local mode: cfs_plug_memdb_*
 * pass writer 0); no corosync, no .version/.members/... files; modes and owners
 * are not in the database (pmxcfs presents root:www-data, 0640/0755, 0600/0700
 * under priv/: cfs_fuse_getattr, path_is_private), and the lab keeps them so.
 *
 * Environment (for running it elsewhere): PVE_LAB_ETC_PVE, PVE_LAB_CONFIG_DB,
 * PVE_LAB_PMXCFS_POLL_MS. Argument `--oneshot`: create or load, sync once,
 * close (the image build uses it so a fresh node has its config.db).
 */
import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  type BigIntStats,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';

const ETC_PVE = process.env.PVE_LAB_ETC_PVE ?? '/etc/pve';
/** DBFILENAME in pmxcfs.c: VARLIBDIR "/config.db" */
const DB_FILE = process.env.PVE_LAB_CONFIG_DB ?? '/var/lib/pve-cluster/config.db';
const POLL_MS = Number(process.env.PVE_LAB_PMXCFS_POLL_MS ?? 250);
/** present on a cluster member (pvecm create / add write it) */
const COROSYNC_CONF = process.env.PVE_LAB_COROSYNC_CONF ?? '/etc/corosync/corosync.conf';

/** dirent.h d_type values, the only two database.c accepts (bdb_backend_write, bdb_backend_load_index) */
const DT_DIR = 4;
const DT_REG = 8;
/** database.c VERSIONFILENAME: the row with inode 0 holds the root's version, writer and mtime */
const VERSIONFILENAME = '__version__';
/** memdb.h */
const MEMDB_MAX_FILE_SIZE = 1024 * 1024;

/** database.c sql_create_db, verbatim */
export const SQL_CREATE_DB =
  'CREATE TABLE IF NOT EXISTS tree (' +
  '  inode INTEGER PRIMARY KEY NOT NULL,' +
  "  parent INTEGER NOT NULL CHECK(typeof(parent)=='integer')," +
  "  version INTEGER NOT NULL CHECK(typeof(version)=='integer')," +
  "  writer INTEGER NOT NULL CHECK(typeof(writer)=='integer')," +
  "  mtime INTEGER NOT NULL CHECK(typeof(mtime)=='integer')," +
  "  type INTEGER NOT NULL CHECK(typeof(type)=='integer')," +
  '  name TEXT NOT NULL,' +
  '  data BLOB);';

const log = (msg: string) => process.stderr.write(`${msg}\n`);

// ---------------------------------------------------------------------------
// the sqlite3 child: one connection for the daemon's lifetime

class Sqlite {
  private readonly child: ChildProcessWithoutNullStreams;
  private pending = '';
  private lines: string[] = [];
  private readonly waiters: { token: string; resolve: (out: string) => void; reject: (e: Error) => void }[] = [];
  private seq = 0;
  private stderr = '';
  /** set by close(): an exit before is a failure */
  closing = false;
  readonly exited: Promise<number>;

  constructor(file: string) {
    // -bail: an error ends the process, so a failed statement never lets a later COMMIT through
    this.child = spawn('sqlite3', ['-bail', '-batch', file], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (d: string) => this.onData(d));
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (d: string) => {
      this.stderr += d;
      log(`sqlite3: ${d.trimEnd()}`);
    });
    this.exited = new Promise((resolveExit) => {
      this.child.on('close', (code) => {
        const err = new Error(`sqlite3 exited (${code}): ${this.stderr.trim()}`);
        for (const w of this.waiters.splice(0)) w.reject(err);
        resolveExit(code ?? -1);
      });
      this.child.on('error', (e) => {
        for (const w of this.waiters.splice(0)) w.reject(e);
        resolveExit(-1);
      });
    });
  }

  private onData(d: string): void {
    this.pending += d;
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      const head = this.waiters[0];
      if (head && line === head.token) {
        this.waiters.shift();
        head.resolve(this.lines.join('\n'));
        this.lines = [];
      } else this.lines.push(line);
    }
  }

  /** run SQL (and dot commands); resolves with its output once sqlite3 has executed all of it */
  run(sql: string): Promise<string> {
    const token = `--pve-lab-pmxcfs-ack-${++this.seq}--`;
    return new Promise((resolveRun, reject) => {
      this.waiters.push({ token, resolve: resolveRun, reject });
      this.child.stdin.write(`${sql}\n.print ${token}\n`);
    });
  }

  /** close the connection (the last one checkpoints and removes the -wal) */
  async close(): Promise<number> {
    this.closing = true;
    this.child.stdin.end();
    return this.exited;
  }
}

// ---------------------------------------------------------------------------
// the tree as database.c stores it

interface TreeEntry {
  inode: number;
  parent: number;
  version: number;
  writer: number;
  mtime: number;
  type: typeof DT_DIR | typeof DT_REG;
  name: string;
  /** sha256 of the data (files) */
  hash?: string;
  /** what the file system showed when this entry was last in sync */
  seen?: Seen;
}

interface Seen {
  type: typeof DT_DIR | typeof DT_REG;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** the root (inode 0): its version is the database's, bumped by every change (memdb_* `memdb->root->version++`) */
const root = { version: 0, writer: 0, mtime: 0 };
/** relative path -> entry */
const tree = new Map<string, TreeEntry>();

const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
/** empty data is NULL, as sqlite3_bind_blob binds memdb's NULL value of an empty file */
const blob = (b: Buffer | undefined) => (b && b.length > 0 ? `X'${b.toString('hex')}'` : 'NULL');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** backend_write_inode with sql_insert_entry or sql_replace_entry */
function writeInodeSql(stmt: 'INSERT' | 'REPLACE', e: Omit<TreeEntry, 'hash' | 'seen'>, data: Buffer | undefined): string {
  return `${stmt} INTO tree (inode, parent, version, writer, mtime, type, name, data) VALUES (${e.inode}, ${e.parent}, ${e.version}, ${e.writer}, ${e.mtime}, ${e.type}, ${q(e.name)}, ${blob(data)});`;
}

/**
 * bdb_backend_write: one transaction deleting `deleteInode`, writing the entry
 * (sql_insert_entry when inode > version, else sql_replace_entry) and the
 * `__version__` row (inode 0, parent 0, the root's version/writer/mtime, DT_REG, no data).
 */
function backendWrite(entry: { e: TreeEntry; data?: Buffer } | undefined, deleteInode = 0): string {
  const sql = ['BEGIN TRANSACTION;'];
  if (deleteInode !== 0) sql.push(`DELETE FROM tree WHERE inode = ${deleteInode};`);
  if (entry) sql.push(writeInodeSql(entry.e.inode > entry.e.version ? 'INSERT' : 'REPLACE', entry.e, entry.data));
  sql.push(writeInodeSql('REPLACE', { inode: 0, parent: 0, version: root.version, writer: root.writer, mtime: root.mtime, type: DT_REG, name: VERSIONFILENAME }, undefined));
  sql.push('COMMIT TRANSACTION;');
  return sql.join('\n');
}

function bump(mtime: number): number {
  root.version++;
  root.mtime = mtime;
  root.writer = 0;
  return root.version;
}

// ---------------------------------------------------------------------------
// /etc/pve: modes and owner as pmxcfs presents them

/** cfs-utils.c path_is_private: priv and nodes/<node>/priv, and below */
export function pathIsPrivate(rel: string): boolean {
  return /^priv(\/|$)/.test(rel) || /^nodes\/[^/]+\/priv(\/|$)/.test(rel);
}

let wwwDataGid: number | undefined;
function gid(): number {
  if (wwwDataGid === undefined) {
    wwwDataGid = 33;
    try {
      const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('www-data:'));
      if (line) wwwDataGid = Number(line.split(':')[2]);
    } catch {
      /* Debian's 33 */
    }
  }
  return wwwDataGid;
}

function present(abs: string, rel: string, type: typeof DT_DIR | typeof DT_REG): void {
  const priv = pathIsPrivate(rel);
  chmodSync(abs, type === DT_DIR ? (priv ? 0o700 : 0o755) : priv ? 0o600 : 0o640);
  if (process.getuid?.() === 0) chownSync(abs, 0, gid());
}

/** pmxcfs.c create_symlinks: virtual links, not in the database */
function plugLinks(): Record<string, string> {
  const node = hostname().split('.')[0]!;
  return { local: `nodes/${node}`, 'qemu-server': `nodes/${node}/qemu-server`, openvz: `nodes/${node}/openvz`, lxc: `nodes/${node}/lxc` };
}

/**
 * pmxcfs's virtual links differ per node (local -> nodes/<this node>), but the
 * lab's cluster shares one directory: there each link points into /run, where
 * every node keeps its own link to its own directory.
 */
function memberLinks(): void {
  const perNode = '/run/pve-lab/pmxcfs-links';
  mkdirSync(perNode, { recursive: true });
  for (const [name, target] of Object.entries(plugLinks())) {
    rmSync(join(perNode, name), { force: true });
    symlinkSync(join(ETC_PVE, target), join(perNode, name));
    const shared = join(ETC_PVE, name);
    const tmp = `${shared}.lab-${process.pid}`;
    symlinkSync(join(perNode, name), tmp);
    renameSync(tmp, shared);
  }
}

function seenOf(st: BigIntStats): Seen {
  return { type: st.isDirectory() ? DT_DIR : DT_REG, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

const sameSeen = (a: Seen | undefined, b: Seen) =>
  !!a && a.type === b.type && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;

/** the directories and regular files under /etc/pve, parents before children (symlinks and others: pmxcfs holds none) */
function walk(): Map<string, Seen> {
  const out = new Map<string, Seen>();
  const visit = (abs: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(abs).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      let st: BigIntStats;
      try {
        st = lstatSync(join(abs, name), { bigint: true });
      } catch {
        continue; // gone meanwhile
      }
      if (st.isDirectory()) {
        out.set(r, seenOf(st));
        visit(join(abs, name), r);
      } else if (st.isFile()) out.set(r, seenOf(st));
    }
  };
  visit(ETC_PVE, '');
  return out;
}

const depth = (p: string) => p.split('/').length;
const parentOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const nameOf = (p: string) => p.slice(p.lastIndexOf('/') + 1);
const tooBig = new Set<string>();

/** one scan: every difference between /etc/pve and the tree becomes a transaction (memdb_mkdir, memdb_pwrite, memdb_rename, memdb_delete) */
function diffSql(): string {
  const seen = walk();
  const sql: string[] = [];
  // removed (or changed type): deepest first, as memdb_delete only removes empty directories
  const gone = [...tree.keys()].filter((p) => seen.get(p)?.type !== tree.get(p)!.type).sort((a, b) => depth(b) - depth(a) || (a < b ? -1 : 1));
  for (const p of gone) {
    const e = tree.get(p)!;
    tree.delete(p);
    bump(nowSeconds());
    sql.push(backendWrite(undefined, e.inode));
  }
  for (const [p, s] of seen) {
    const e = tree.get(p);
    const parent = parentOf(p) === '' ? 0 : tree.get(parentOf(p))?.inode;
    if (parent === undefined) continue; // its directory was not recorded: next scan
    const mtime = Number(s.mtimeNs / 1_000_000_000n);
    if (s.type === DT_DIR) {
      if (e) continue; // a directory's row changes only at mkdir/rename
      const v = bump(mtime);
      // memdb_mkdir: te->inode = te->version = memdb->root->version
      const d: TreeEntry = { inode: v, parent, version: v, writer: 0, mtime, type: DT_DIR, name: nameOf(p), seen: s };
      tree.set(p, d);
      sql.push(backendWrite({ e: d }));
      continue;
    }
    if (e && sameSeen(e.seen, s)) continue;
    let data: Buffer;
    try {
      data = readFileSync(join(ETC_PVE, p));
    } catch {
      continue; // gone meanwhile: the next scan sees it
    }
    if (data.length > MEMDB_MAX_FILE_SIZE) {
      // memdb_pwrite refuses it (-EFBIG); the lab's plain directory cannot
      if (!tooBig.has(p)) log(`${p}: larger than MEMDB_MAX_FILE_SIZE, not in the database`);
      tooBig.add(p);
      continue;
    }
    tooBig.delete(p);
    const hash = sha(data);
    if (e && e.hash === hash) {
      e.seen = s;
      continue;
    }
    const v = bump(mtime);
    if (e && e.seen?.ino === s.ino) {
      // written in place (memdb_pwrite): same inode, new version
      Object.assign(e, { version: v, writer: 0, mtime, hash, seen: s });
      sql.push(backendWrite({ e, data }));
    } else {
      // new (memdb_create: inode = version), or replaced by a rename: the old inode goes (memdb_rename's delete_inode)
      const f: TreeEntry = { inode: v, parent, version: v, writer: 0, mtime, type: DT_REG, name: nameOf(p), hash, seen: s };
      tree.set(p, f);
      sql.push(backendWrite({ e: f, data }, e?.inode ?? 0));
    }
  }
  return sql.join('\n');
}

// ---------------------------------------------------------------------------
// load (bdb_backend_load_index) and write /etc/pve from the database

interface Row {
  inode: number;
  parent: number;
  version: number;
  writer: number;
  mtime: number;
  type: number;
  name: string | null;
  data: string; // hex
}

class LoadError extends Error {}

function loadIndex(rows: Row[]): Map<string, { e: TreeEntry; data: Buffer }> {
  const byInode = new Map<number, Row>();
  const names = new Map<number, Set<string>>();
  for (const r of rows) {
    if (!r.name) throw new LoadError(`inode has no name (inode = ${r.inode})`);
    if (r.type !== DT_REG && r.type !== DT_DIR) throw new LoadError(`inode has unknown type (inode = ${r.inode}, type = ${r.type})`);
    if (r.type === DT_DIR && r.data) throw new LoadError(`directory inode contains data (inode = ${r.inode})`);
    if (r.inode === 0) {
      if (r.name !== VERSIONFILENAME) throw new LoadError(`root inode has unexpected name '${r.name}'`);
      Object.assign(root, { version: r.version, writer: r.writer, mtime: r.mtime });
      continue;
    }
    const sib = names.get(r.parent) ?? new Set<string>();
    if (sib.has(r.name)) throw new LoadError(`found entry with duplicate name '${r.name}'`);
    sib.add(r.name);
    names.set(r.parent, sib);
    byInode.set(r.inode, r);
  }
  const pathOf = new Map<number, string>([[0, '']]);
  const resolvePath = (r: Row, guard = 0): string => {
    const known = pathOf.get(r.inode);
    if (known !== undefined) return known;
    let parentPath: string;
    if (r.parent === 0) parentPath = '';
    else {
      const pr = byInode.get(r.parent);
      if (!pr) throw new LoadError(`missing directory inode (inode = ${r.parent})`);
      if (pr.type !== DT_DIR) throw new LoadError(`parent is not a directory (inode = ${r.inode}, parent = ${r.parent}, name = '${r.name}')`);
      if (guard > 1000) throw new LoadError(`loop at inode ${r.inode}`);
      parentPath = resolvePath(pr, guard + 1);
    }
    const p = parentPath ? `${parentPath}/${r.name}` : r.name!;
    pathOf.set(r.inode, p);
    return p;
  };
  const out = new Map<string, { e: TreeEntry; data: Buffer }>();
  for (const r of byInode.values()) {
    const data = Buffer.from(r.data ?? '', 'hex');
    const e: TreeEntry = { inode: r.inode, parent: r.parent, version: r.version, writer: r.writer, mtime: r.mtime, type: r.type as TreeEntry['type'], name: r.name! };
    if (e.type === DT_REG) e.hash = sha(data);
    out.set(resolvePath(r), { e, data });
  }
  return out;
}

/** make /etc/pve hold exactly what the database holds (plus pmxcfs's virtual links) */
function writeEtcPve(desired: Map<string, { e: TreeEntry; data: Buffer }>): void {
  mkdirSync(ETC_PVE, { recursive: true });
  const links = plugLinks();
  // remove what the database does not hold, deepest first
  const existing: { rel: string; dir: boolean; link: boolean }[] = [];
  const visit = (abs: string, rel: string) => {
    for (const name of readdirSync(abs)) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(abs, name));
      existing.push({ rel: r, dir: st.isDirectory(), link: st.isSymbolicLink() });
      if (st.isDirectory()) visit(join(abs, name), r);
    }
  };
  visit(ETC_PVE, '');
  for (const x of existing.sort((a, b) => depth(b.rel) - depth(a.rel))) {
    if (x.link && links[x.rel] !== undefined) continue;
    const want = desired.get(x.rel);
    if (!want || x.link || (want.e.type === DT_DIR) !== x.dir) rmSync(join(ETC_PVE, x.rel), { recursive: true, force: true });
  }
  // create and write, parents first
  for (const [rel, { e, data }] of [...desired].sort((a, b) => depth(a[0]) - depth(b[0]) || (a[0] < b[0] ? -1 : 1))) {
    const abs = join(ETC_PVE, rel);
    if (e.type === DT_DIR) {
      if (!existsSync(abs)) {
        mkdirSync(abs);
        present(abs, rel, DT_DIR);
        utimesSync(abs, e.mtime, e.mtime);
      }
      continue;
    }
    let same = false;
    try {
      same = sha(readFileSync(abs)) === e.hash;
    } catch {
      /* missing */
    }
    if (same) continue;
    const tmp = join(dirname(abs), `.pmxcfs-restore.${process.pid}`);
    writeFileSync(tmp, data);
    present(tmp, rel, DT_REG);
    utimesSync(tmp, e.mtime, e.mtime);
    renameSync(tmp, abs);
  }
  for (const [name, target] of Object.entries(links)) {
    const abs = join(ETC_PVE, name);
    let ok = false;
    try {
      ok = lstatSync(abs).isSymbolicLink();
    } catch {
      /* missing */
    }
    if (!ok) {
      rmSync(abs, { recursive: true, force: true });
      symlinkSync(target, abs);
    }
  }
}

// ---------------------------------------------------------------------------
// the daemon

async function main(): Promise<number> {
  const oneshot = process.argv.includes('--oneshot');
  process.umask(0o027); // pmxcfs.c main
  mkdirSync(dirname(DB_FILE), { recursive: true, mode: 0o750 });
  const create = !existsSync(DB_FILE);
  const db = new Sqlite(DB_FILE);
  void db.exited.then((code) => {
    if (db.closing) return;
    // like memdb->errors = 1 in pmxcfs: nothing more can be written; systemd restarts the unit
    log(`sqlite3 ended (${code}): ${DB_FILE} is no longer written`);
    process.exit(1);
  });
  // bdb_create: WAL "to allow concurrent reads", synchronous=NORMAL "good enough when using WAL",
  // busy timeout 10 s, the schema; the lab adds wal_autocheckpoint=0 (see the header)
  await db.run(
    ['.output /dev/null', 'PRAGMA journal_mode=WAL;', 'PRAGMA synchronous=NORMAL;', 'PRAGMA busy_timeout=10000;', 'PRAGMA wal_autocheckpoint=0;', SQL_CREATE_DB, '.output stdout'].join('\n'),
  );
  chmodSync(DB_FILE, 0o600); // bdb_create: chmod(filename, 0600)

  if (create) {
    // bdb_backend_open: an empty database gets version 1 in its __version__ row; then the lab imports /etc/pve
    bump(nowSeconds());
    await db.run(backendWrite(undefined));
    await db.run(diffSql());
    log(`created ${DB_FILE} from ${ETC_PVE} (version ${root.version}, ${tree.size} entries)`);
  } else {
    const out = await db.run(['.mode json', 'SELECT inode, parent, version, writer, mtime, type, name, hex(data) AS data FROM tree;', '.mode list'].join('\n'));
    let desired: Map<string, { e: TreeEntry; data: Buffer }>;
    try {
      desired = loadIndex(out.trim() ? (JSON.parse(out) as Row[]) : []);
    } catch (e) {
      if (!(e instanceof LoadError)) throw e;
      log(`${e.message}\nDB load failed\nmemdb_open failed - unable to open database '${DB_FILE}'`);
      await db.close();
      return 255;
    }
    if (root.version === 0) {
      bump(nowSeconds());
      await db.run(backendWrite(undefined));
    }
    if (existsSync(COROSYNC_CONF)) {
      // A cluster member: the lab's /etc/pve is shared by the nodes, and what it
      // holds is the cluster's state, newer than this node's copy (pmxcfs's dfsm
      // sync gives a starting member the quorate cluster's tree). The database
      // follows the directory; the directory is never written from it.
      for (const [rel, x] of desired) tree.set(rel, x.e);
      log(`loaded ${DB_FILE} (version ${root.version}, ${tree.size} entries); cluster member: synced from ${ETC_PVE}`);
    } else {
      writeEtcPve(desired);
      for (const [rel, x] of desired) {
        try {
          x.e.seen = seenOf(lstatSync(join(ETC_PVE, rel), { bigint: true }));
        } catch {
          /* gone already: the first scan records it */
        }
        tree.set(rel, x.e);
      }
      log(`loaded ${DB_FILE} (version ${root.version}, ${tree.size} entries) into ${ETC_PVE}`);
    }
    const catchUp = diffSql(); // should be nothing
    if (catchUp) await db.run(catchUp);
  }
  if (existsSync(COROSYNC_CONF) && !oneshot) memberLinks();
  // from here on, committed changes stay in config.db-wal (no automatic checkpoints)
  await db.run('.output /dev/null\nPRAGMA wal_checkpoint(TRUNCATE);\n.output stdout');

  if (oneshot) {
    const code = await db.close();
    return code === 0 ? 0 : 1;
  }

  if (process.env.NOTIFY_SOCKET) {
    try {
      execFileSync('systemd-notify', ['--ready', `--pid=${process.pid}`], { stdio: 'ignore' });
    } catch {
      /* not under systemd */
    }
  }

  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let scanning: Promise<void> = Promise.resolve();
  const scan = async () => {
    const sql = diffSql();
    if (sql) await db.run(sql);
  };
  const loop = () => {
    scanning = scan().then(
      () => {
        if (!stopping) timer = setTimeout(loop, POLL_MS);
      },
      (e: Error) => {
        log(`writing ${DB_FILE} failed: ${e.message}`);
        process.exit(1);
      },
    );
  };
  timer = setTimeout(loop, POLL_MS);

  await new Promise<void>((resolveStop) => {
    const stop = () => {
      if (stopping) return;
      stopping = true;
      if (timer) clearTimeout(timer);
      resolveStop();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await scanning;
  await scan(); // what changed since the last scan
  const code = await db.close();
  log(`${DB_FILE} closed (version ${root.version})`);
  return code === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    log(`pmxcfs: ${e.message}`);
    process.exit(1);
  },
);
