/**
 * The restore drill: proves an archive can be restored, without touching the
 * node. It decrypts into a scratch directory (0700), unpacks, checks every
 * file against the manifest and with `sha256sum -c`, checks the database with
 * SQLite, reads user.cfg, storage.cfg and the firewall files out of the
 * database the way pmxcfs would, and compares them with the live /etc/pve.
 * The scratch directory is removed at the end, whatever happened.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Check } from '../engine/step.ts';
import type { Exec } from '../system/exec.ts';
import { ARCHIVE_CONFIG_DB, MANIFEST_NAME, SUMS_NAME, checkNodeName, checksumName } from './contents.ts';
import { MANIFEST_FORMAT, describeTree, sha256File, type Manifest, type ManifestEntry } from './archive.ts';
import { createHash } from 'node:crypto';

export interface DrillOptions {
  exec: Exec;
  /** The encrypted archive (.tar.gz.age); its .sha256 is expected beside it. */
  archive: string;
  /** The age identity (secret key) file; only its path is ever passed on. */
  identityFile: string;
  /** A scratch directory is made (0700) and removed in here. */
  scratchParent: string;
  /** The node compared with: its /etc/pve (a temporary directory in tests) and its name. Only read. */
  live: { etcPve: string; nodeName: string };
  /** How many differing files a check names at most; 10 by default. */
  maxNamed?: number;
}

/**
 * pmxcfs's tree table (pve-cluster src/pmxcfs/database.c, sql_create_db):
 * tree(inode, parent, version, writer, mtime, type, name, data). In
 * bdb_backend_load_index the root directory is inode 0 (memdb's root, made
 * with memdb_tree_entry_new, whose inode is zeroed); the row stored with
 * inode 0 is not a file but the root's version, named "__version__"
 * (VERSIONFILENAME). Entries of the top directory have parent 0. Types are
 * dirent's: DT_REG (8) a file, DT_DIR (4) a directory (bdb_backend_write
 * accepts no other).
 */
export const PMXCFS_ROOT_INODE = '0';
export const DT_DIR = 4;
export const DT_REG = 8;

/** The files the drill reads from the database and compares with the node, relative to /etc/pve. */
export function drillFiles(nodeName: string): string[] {
  return ['user.cfg', 'storage.cfg', 'firewall/cluster.fw', `nodes/${nodeName}/host.fw`];
}

interface TreeRow {
  inode: string;
  parent: string;
  type: number;
  name: string;
}

/** The inode of `rel` (a/b/c) in the tree, resolved through parent inodes from the root; null when absent. */
export function resolveTreePath(rows: readonly TreeRow[], rel: string): { inode: string; type: number } | null {
  const parts = rel.split('/').filter(Boolean);
  let current = PMXCFS_ROOT_INODE;
  let type = DT_DIR;
  for (const [i, part] of parts.entries()) {
    if (type !== DT_DIR) return null;
    // inode 0's own row (the version) has parent 0 too: never a child of the root.
    const child = rows.find((r) => r.parent === current && r.name === part && r.inode !== PMXCFS_ROOT_INODE);
    if (!child) return null;
    current = child.inode;
    type = child.type;
    if (i === parts.length - 1) return { inode: current, type };
  }
  return null;
}

const short = (hex: string) => hex.slice(0, 12);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const lastLine = (text: string) => text.trim().split('\n').slice(-1)[0] ?? '';

/** Differences between the manifest and what was unpacked, one text per path ("files/etc/hosts: sha256, size"). */
export function compareEntries(expected: readonly ManifestEntry[], actual: readonly ManifestEntry[], opts: { owners: boolean }): string[] {
  const seen = new Map(actual.map((e) => [e.path, e]));
  const out: string[] = [];
  for (const want of expected) {
    const got = seen.get(want.path);
    seen.delete(want.path);
    if (!got) {
      out.push(`${want.path}: missing`);
      continue;
    }
    const diffs: string[] = [];
    if (got.type !== want.type) diffs.push(`a ${got.type}, not a ${want.type}`);
    else {
      if (got.type !== 'symlink' && got.mode !== want.mode) diffs.push(`mode ${got.mode}, not ${want.mode}`);
      if (opts.owners && (got.uid !== want.uid || got.gid !== want.gid)) diffs.push(`owner ${got.uid}:${got.gid}, not ${want.uid}:${want.gid}`);
      if (want.type === 'file' && got.size !== want.size) diffs.push(`size ${got.size}, not ${want.size}`);
      if (want.type === 'file' && got.sha256 !== want.sha256) diffs.push('content (SHA-256) differs');
      if (want.type === 'symlink' && got.target !== want.target) diffs.push(`points to ${got.target}, not ${want.target}`);
    }
    if (diffs.length) out.push(`${want.path}: ${diffs.join(', ')}`);
  }
  for (const extra of seen.keys()) out.push(`${extra}: not in the manifest`);
  return out;
}

function named(list: readonly string[], max: number): string {
  return list.slice(0, max).join('; ') + (list.length > max ? `; and ${list.length - max} more` : '');
}

/** Runs the drill; never throws for what it finds (each finding is a failed check), only for bad options. */
export async function drill(opts: DrillOptions): Promise<Check[]> {
  const { exec, archive } = opts;
  const maxNamed = opts.maxNamed ?? 10;
  checkNodeName(opts.live.nodeName);
  const checks: Check[] = [];
  const shown = path.basename(archive);

  // The encrypted file against the checksum written when it was made.
  const archiveSha = await sha256File(archive).catch((error: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${archive}: ${error.code ?? error.message}`);
  });
  const sumText = await fs.readFile(checksumName(archive), 'utf8').catch(() => null);
  const recorded = sumText ? /^\\?([0-9a-f]{64})\s/.exec(sumText)?.[1] : undefined;
  checks.push(
    recorded === undefined
      ? { label: `${shown} matches its .sha256`, ok: false, detail: `no readable ${path.basename(checksumName(archive))} beside it` }
      : { label: `${shown} matches its .sha256`, ok: recorded === archiveSha, ...(recorded === archiveSha ? {} : { detail: `SHA-256 ${short(archiveSha)}…, the .sha256 says ${short(recorded)}…` }) },
  );

  const scratch = await fs.mkdtemp(path.join(opts.scratchParent, 'pve-baseline-drill-'));
  try {
    await fs.chmod(scratch, 0o700);
    const plain = path.join(scratch, 'plain.tar.gz');
    const decrypted = await exec.run(['age', '-d', '-i', opts.identityFile, '-o', plain, '--', archive], { timeoutMs: 900_000 });
    checks.push({ label: 'decrypts with the identity', ok: decrypted.exitCode === 0, ...(decrypted.exitCode === 0 ? {} : { detail: lastLine(decrypted.stderr) || `age exited with ${decrypted.exitCode}` }) });
    if (decrypted.exitCode !== 0) return checks;

    const unpacked = path.join(scratch, 'x');
    await fs.mkdir(unpacked, { mode: 0o700 });
    // GNU tar refuses members with ".." and strips a leading "/", so nothing lands outside the scratch directory.
    const untar = await exec.run(['tar', '-xzf', plain, '-C', unpacked], { timeoutMs: 900_000 });
    await fs.rm(plain, { force: true });
    const tops = untar.exitCode === 0 ? await fs.readdir(unpacked) : [];
    const unpackedOk = untar.exitCode === 0 && tops.length === 1;
    checks.push({
      label: 'unpacks with tar',
      ok: unpackedOk,
      ...(unpackedOk ? {} : { detail: untar.exitCode !== 0 ? lastLine(untar.stderr) || `tar exited with ${untar.exitCode}` : `expected one top directory, found ${tops.length}` }),
    });
    if (!unpackedOk) return checks;
    const top = path.join(unpacked, tops[0]!);

    let manifest: Manifest | null = null;
    try {
      const parsed = JSON.parse(await fs.readFile(path.join(top, MANIFEST_NAME), 'utf8')) as Manifest;
      if (parsed.format !== MANIFEST_FORMAT || !Array.isArray(parsed.entries)) throw new Error(`not a ${MANIFEST_FORMAT} manifest`);
      manifest = parsed;
    } catch (error) {
      checks.push({ label: 'every file matches the manifest', ok: false, detail: `${MANIFEST_NAME}: ${(error as Error).message}` });
    }
    if (manifest) {
      const actual = await describeTree(top, new Set([MANIFEST_NAME, SUMS_NAME]));
      const diffs = compareEntries(manifest.entries, actual, { owners: process.geteuid?.() === 0 });
      checks.push({
        label: 'every file matches the manifest',
        ok: diffs.length === 0,
        detail: diffs.length === 0 ? `${manifest.entries.length} entries: content, size, mode and owner as recorded` : `${diffs.length} of ${manifest.entries.length} differ: ${named(diffs, maxNamed)}`,
      });
    }

    const sums = await exec.run(['sha256sum', '-c', '--quiet', '--', SUMS_NAME], { cwd: top, timeoutMs: 300_000 });
    const failed = sums.stdout
      .split('\n')
      .map((l) => /^(.*): FAILED/.exec(l)?.[1])
      .filter((n): n is string => !!n);
    checks.push({
      label: `sha256sum -c ${SUMS_NAME} passes`,
      ok: sums.exitCode === 0,
      ...(sums.exitCode === 0 ? {} : { detail: failed.length ? `failed: ${named(failed, maxNamed)}` : lastLine(sums.stderr) || `sha256sum exited with ${sums.exitCode}` }),
    });

    const db = path.join(top, ARCHIVE_CONFIG_DB);
    if (!manifest || 'absent' in (manifest.configDb ?? { absent: true }) || !(await fs.lstat(db).catch(() => null))?.isFile()) {
      checks.push({ label: 'config.db passes SQLite integrity_check', ok: false, detail: `the archive holds no ${ARCHIVE_CONFIG_DB}` });
      return checks;
    }
    const integrity = await exec.run(['sqlite3', db, 'PRAGMA integrity_check'], { timeoutMs: 300_000 });
    const integrityOk = integrity.exitCode === 0 && integrity.stdout.trim() === 'ok';
    const rows = integrityOk ? await treeRows(exec, db) : null;
    checks.push({
      label: 'config.db passes SQLite integrity_check',
      ok: integrityOk && rows !== null,
      detail: !integrityOk
        ? lastLine(integrity.stdout) || lastLine(integrity.stderr) || `sqlite3 exited with ${integrity.exitCode}`
        : rows === null
          ? 'no pmxcfs tree table in it'
          : `${rows.length} rows in pmxcfs's tree table`,
    });
    if (!integrityOk || rows === null) return checks;

    for (const rel of drillFiles(opts.live.nodeName)) checks.push(await compareWithLive(exec, db, rows, rel, opts.live.etcPve));
    return checks;
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** The tree's structure (no data), or null when the database has no such table. */
async function treeRows(exec: Exec, db: string): Promise<TreeRow[] | null> {
  // Inodes as text: JSON numbers would lose precision past 2^53.
  const result = await exec.run(['sqlite3', '-json', db, 'SELECT CAST(inode AS TEXT) AS inode, CAST(parent AS TEXT) AS parent, type, name FROM tree'], { timeoutMs: 300_000 });
  if (result.exitCode !== 0) return null;
  const text = result.stdout.trim();
  return text ? (JSON.parse(text) as TreeRow[]) : [];
}

async function fileFromDb(exec: Exec, db: string, inode: string): Promise<Buffer> {
  if (!/^\d+$/.test(inode)) throw new Error(`bad inode ${inode}`);
  const result = await exec.run(['sqlite3', db, `SELECT hex(data) FROM tree WHERE inode = ${inode}`], { timeoutMs: 300_000 });
  if (result.exitCode !== 0) throw new Error(lastLine(result.stderr) || `sqlite3 exited with ${result.exitCode}`);
  return Buffer.from(result.stdout.trim(), 'hex');
}

/** Reads /etc/pve/REL on the node (read only): null when absent. /etc/pve files are at most 1 MiB (memdb.h MEMDB_MAX_FILE_SIZE). */
async function readLive(file: string): Promise<Buffer | null> {
  const st = await fs.lstat(file).catch(() => null);
  if (!st) return null;
  if (!st.isFile()) throw new Error('not a regular file');
  if (st.size > 2 * 1024 * 1024) throw new Error(`larger than 2 MiB (${st.size} bytes)`);
  return fs.readFile(file);
}

async function compareWithLive(exec: Exec, db: string, rows: readonly TreeRow[], rel: string, etcPve: string): Promise<Check> {
  const livePath = path.join(etcPve, rel);
  const label = `${rel} in the backup's database matches the live ${livePath}`;
  try {
    const found = resolveTreePath(rows, rel);
    if (found && found.type !== DT_REG) return { label, ok: false, detail: `the database has ${rel} as type ${found.type}, not a file (${DT_REG})` };
    const backup = found ? await fileFromDb(exec, db, found.inode) : null;
    let live: Buffer | null;
    try {
      live = await readLive(livePath);
    } catch (error) {
      return { label, ok: false, detail: `cannot read the live file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
    }
    if (!backup && !live) return { label, ok: true, detail: 'absent in both' };
    if (!backup) return { label, ok: false, detail: `not in the backup's database, but the node has it (${live!.length} bytes)` };
    if (!live) return { label, ok: false, detail: `in the backup (${backup.length} bytes), but absent on the node` };
    if (backup.equals(live)) return { label, ok: true, detail: `${backup.length} bytes, SHA-256 ${short(sha(backup))}…` };
    return { label, ok: false, detail: `differs (changed since the backup?): backup ${backup.length} bytes, SHA-256 ${short(sha(backup))}…; live ${live.length} bytes, SHA-256 ${short(sha(live))}…` };
  } catch (error) {
    return { label, ok: false, detail: (error as Error).message };
  }
}
