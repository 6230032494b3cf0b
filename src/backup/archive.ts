/**
 * Making the encrypted config backup: a staging directory (0700) in the
 * output directory; pmxcfs's database copied with SQLite's online backup and
 * checked; the node's files copied with mode, owner and links kept; the
 * facts; a manifest and a SHA256SUMS that `sha256sum -c` accepts; then tar
 * and age. Only the encrypted archive and its checksum stay: the staging and
 * the plaintext tar are removed whatever happens.
 *
 * Everything inside the archive can be read back with standard tools alone
 * (age, tar, sha256sum, sqlite3): a restore never needs pve-baseline
 * (RESTORE.txt in the archive says how).
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { runChecked, type Exec } from '../system/exec.ts';
import { AGE_RECIPIENT, SSH_RECIPIENT } from './settings.ts';
import {
  ARCHIVE_CONFIG_DB,
  ARCHIVE_FACTS_DIR,
  ARCHIVE_FILES_DIR,
  BACKUP_FACTS,
  BACKUP_SOURCES,
  CONFIG_DB_PATH,
  CONFIG_DB_WHY,
  JOURNAL_WHY,
  MANIFEST_NAME,
  RESTORE_NAME,
  SUMS_NAME,
  archiveName,
  beyondRetention,
  checksumName,
  type FactCommand,
} from './contents.ts';

export const MANIFEST_FORMAT = 'pve-baseline-config-backup/1';

export interface ManifestEntry {
  /** Relative to the archive's top directory, with / separators (files/etc/hosts, config.db). */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** Permission bits in octal, four digits ("0640"). */
  mode: string;
  uid: number;
  gid: number;
  /** Regular files. */
  size?: number;
  sha256?: string;
  /** Symbolic links: where they point, as written. */
  target?: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  node: string;
  /** ISO 8601, UTC. */
  created: string;
  configDb: { source: string; file: string; integrity: 'ok'; why: string } | { source: string; absent: true; why: string };
  sources: { path: string; why: string; present: boolean }[];
  /** Node paths that were not there. */
  absent: string[];
  /** `file` is set when the output was recorded; `absent` says why not. */
  facts: { name: string; file?: string; argv: string[]; why: string; exitCode?: number; absent?: string }[];
  entries: ManifestEntry[];
}

export interface ManifestSummary {
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  absent: string[];
  configDb: 'ok' | 'absent';
  facts: { file: string; ok: boolean; note?: string }[];
}

export interface ArchiveResult {
  /** The encrypted archive, <outDir>/<node>-config-<stamp>.tar.gz.age (0600). */
  path: string;
  name: string;
  /** The checksum file beside it (<path>.sha256, sha256sum's format). */
  checksumPath: string;
  /** SHA-256 (hex) of the encrypted file. */
  sha256: string;
  bytes: number;
  /** Regular files inside the archive. */
  files: number;
  manifest: ManifestSummary;
}

export interface CreateArchiveOptions {
  exec: Exec;
  /** The node's name: names the archive. */
  node: string;
  /** Where the node's paths are read; '/' by default (tests pass a temporary root). */
  root?: string;
  /** pmxcfs's database, a node path under root; CONFIG_DB_PATH by default. */
  configDb?: string;
  /** pve-baseline's state journal, a node path under root; left out when not given. */
  journal?: string;
  /** Made 0700 if missing; must be a directory owned by this user. */
  outDir: string;
  /** age recipients: age1... keys, or ssh-ed25519 / ssh-rsa public keys. At least one. */
  recipients: readonly string[];
  now?: Date;
  /** The facts to record; BACKUP_FACTS by default. */
  facts?: readonly FactCommand[];
}


/**
 * The recipients as age takes them after -r; refuses anything else. A value
 * is never repeated in the message: someone may paste an identity (a secret
 * key) by mistake.
 */
export function checkRecipients(recipients: readonly string[]): string[] {
  if (recipients.length === 0) throw new Error('no recipient: name at least one age public key (age1...) or SSH public key to encrypt to');
  return recipients.map((raw, i) => {
    const r = raw.trim();
    const which = `recipient ${i + 1}`;
    if (/^AGE-SECRET-KEY-/i.test(r) || /PRIVATE KEY/.test(r)) throw new Error(`${which} is a secret key, not a public one: give its public key (age-keygen -y FILE)`);
    if (AGE_RECIPIENT.test(r)) return r;
    const ssh = SSH_RECIPIENT.exec(r);
    if (ssh) return `${ssh[1]} ${ssh[2]}`;
    throw new Error(`${which} is not an age public key (age1...) or an ssh-ed25519 / ssh-rsa public key`);
  });
}

/** Paths that reach sqlite3's dot-command parser inside single quotes: no quote, no control character. */
function checkQuotable(p: string): void {
  // eslint-disable-next-line no-control-regex
  if (/['\u0000-\u001f\u007f]/.test(p)) throw new Error(`refusing ${JSON.stringify(p)}: sqlite3 ".backup" takes it inside single quotes, so it must not contain a quote or a control character`);
}

/**
 * The consistent copy of a live SQLite database: the online backup API
 * (sqlite3's .backup) copies what is committed, WAL included, while pmxcfs
 * keeps writing; then the copy must pass integrity_check. `.timeout` lets it
 * wait for a writer's lock instead of failing at once.
 */
export async function backupDatabase(exec: Exec, source: string, dest: string): Promise<void> {
  checkQuotable(dest);
  if (!path.isAbsolute(source) || !path.isAbsolute(dest)) throw new Error('backupDatabase: absolute paths only');
  await runChecked(exec, ['sqlite3', '-cmd', '.timeout 10000', source, `.backup '${dest}'`], { timeoutMs: 300_000 });
  await fs.chmod(dest, 0o600);
  const check = await runChecked(exec, ['sqlite3', dest, 'PRAGMA integrity_check'], { timeoutMs: 300_000 });
  if (check.stdout.trim() !== 'ok') throw new Error(`the copy of ${source} fails SQLite's integrity check: ${check.stdout.trim().split('\n').slice(0, 3).join('; ')}`);
  // A clean close removes the copy's -wal and -shm; anything left would be an unfinished copy.
  for (const extra of ['-wal', '-shm', '-journal']) {
    if (await exists(`${dest}${extra}`)) throw new Error(`the copy of ${source} left ${path.basename(dest)}${extra} behind: the copy is not complete`);
  }
}

async function exists(p: string): Promise<boolean> {
  return (await lstatOrNull(p)) !== null;
}

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw error;
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

/** Every entry under `top` (not top itself), sorted by path, as the manifest lists them. */
export async function describeTree(top: string, skip: ReadonlySet<string> = new Set()): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await fs.readdir(path.join(top, rel))).sort();
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip.has(r)) continue;
      const full = path.join(top, r);
      const st = await fs.lstat(full);
      const base = { path: r, mode: octal(st.mode), uid: st.uid, gid: st.gid };
      if (st.isDirectory()) {
        out.push({ ...base, type: 'dir' });
        await walk(r);
      } else if (st.isFile()) {
        out.push({ ...base, type: 'file', size: st.size, sha256: await sha256File(full) });
      } else if (st.isSymbolicLink()) {
        out.push({ ...base, type: 'symlink', target: await fs.readlink(full) });
      } else {
        out.push({ ...base, type: 'other' });
      }
    }
  };
  await walk('');
  return out;
}

/**
 * One line of sha256sum's output. A name with a backslash or a line break is
 * written escaped, with a leading backslash, as coreutils does, so
 * `sha256sum -c` reads it back.
 */
export function sumsLine(sha256: string, name: string): string {
  if (!/[\\\n\r]/.test(name)) return `${sha256}  ${name}\n`;
  return `\\${sha256}  ${name.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}\n`;
}

/** Made 0700 if missing; refused unless a real directory (not a link) owned by this user. */
async function prepareOutDir(outDir: string): Promise<string> {
  const dir = path.resolve(outDir);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await fs.lstat(dir);
  if (!st.isDirectory()) throw new Error(`refusing ${dir} as the backup directory: it is not a directory (a link?)`);
  const me = process.geteuid?.() ?? 0;
  if (st.uid !== me) throw new Error(`refusing ${dir} as the backup directory: it is owned by uid ${st.uid}, not ${me}`);
  if ((st.mode & 0o7777) !== 0o700) await fs.chmod(dir, 0o700);
  return dir;
}

const restoreText = (node: string, top: string) => `Config backup of the Proxmox VE node ${node}, made by pve-baseline.
Nothing here needs pve-baseline to be read or restored.

Check:      cd ${top} && sha256sum -c ${SUMS_NAME}
Contents:   ${MANIFEST_NAME} lists every file (mode, owner, size, SHA-256,
            link targets) and what was absent on the node.
            ${ARCHIVE_FILES_DIR}/ holds the node's files at their paths
            (${ARCHIVE_FILES_DIR}/etc/pve is the cluster filesystem as files).
            ${ARCHIVE_FACTS_DIR}/ holds pveversion -v, dpkg --get-selections,
            proxmox-boot-tool status and ip -br a.

${ARCHIVE_CONFIG_DB} is pmxcfs's database (/var/lib/pve-cluster/config.db),
a consistent copy. Proxmox's recovery procedure (pmxcfs documentation):
on the new host, with nothing running, stop pve-cluster, replace
/var/lib/pve-cluster/config.db with this file (mode 0600, owner root),
adapt /etc/hostname and /etc/hosts to the lost host, reboot, and check.
Never put an old config.db on a live cluster member: copy single files
from ${ARCHIVE_FILES_DIR}/etc/pve instead.

One file from the database without a running pmxcfs:
  sqlite3 ${ARCHIVE_CONFIG_DB} "select data from tree where parent = 0 and name = 'user.cfg'"

This archive holds secrets (two-factor secrets, token secrets, the
cluster's CA key, SSH host keys): keep its decrypted form nowhere.
`;

/**
 * Makes `<outDir>/<node>-config-<UTC stamp>.tar.gz.age` (0600) and its
 * `.sha256`. Throws on any failure, after removing everything it made.
 */
export async function createArchive(opts: CreateArchiveOptions): Promise<ArchiveResult> {
  const { exec, node } = opts;
  const root = path.resolve(opts.root ?? '/');
  const now = opts.now ?? new Date();
  const name = archiveName(node, now);
  const recipients = checkRecipients(opts.recipients);
  // The database copy is made in here and named to sqlite3 in quotes: refused before anything is made.
  checkQuotable(path.resolve(opts.outDir));
  const outDir = await prepareOutDir(opts.outDir);
  const finalPath = path.join(outDir, name);
  if (await exists(finalPath)) throw new Error(`${finalPath} exists already`);
  const topName = name.replace(/\.tar\.gz\.age$/, '');
  const under = (nodePath: string) => path.join(root, nodePath);

  const work = await fs.mkdtemp(path.join(outDir, '.pve-baseline-work-'));
  try {
    await fs.chmod(work, 0o700);
    const stage = path.join(work, 'stage');
    const top = path.join(stage, topName);
    await fs.mkdir(top, { recursive: true, mode: 0o700 });
    await fs.mkdir(path.join(top, ARCHIVE_FILES_DIR), { mode: 0o700 });
    await fs.mkdir(path.join(top, ARCHIVE_FACTS_DIR), { mode: 0o700 });

    // The database first: the closest to the moment the archive names.
    const dbNodePath = opts.configDb ?? CONFIG_DB_PATH;
    let configDb: Manifest['configDb'];
    const dbStat = await lstatOrNull(under(dbNodePath));
    if (dbStat?.isFile()) {
      await backupDatabase(exec, under(dbNodePath), path.join(top, ARCHIVE_CONFIG_DB));
      configDb = { source: dbNodePath, file: ARCHIVE_CONFIG_DB, integrity: 'ok', why: CONFIG_DB_WHY };
    } else if (dbStat) {
      throw new Error(`${dbNodePath} is not a regular file`);
    } else {
      configDb = { source: dbNodePath, absent: true, why: CONFIG_DB_WHY };
    }

    const sources = [...BACKUP_SOURCES.map((s) => ({ ...s })), ...(opts.journal ? [{ path: opts.journal, why: JOURNAL_WHY }] : [])];
    const present: Manifest['sources'] = [];
    const absent: string[] = configDb && 'absent' in configDb ? [dbNodePath] : [];
    for (const source of sources) {
      if (!path.isAbsolute(source.path)) throw new Error(`${source.path}: a node path must be absolute`);
      const rel = path.relative('/', path.resolve(source.path));
      if (!(await exists(under(source.path)))) {
        absent.push(source.path);
        present.push({ ...source, present: false });
        continue;
      }
      // cp -a keeps mode, owner, times and links; --parents recreates the path (and its directories' modes) under files/.
      const copied = await exec.run(['cp', '-a', '--parents', '--', rel, path.join(top, ARCHIVE_FILES_DIR)], { cwd: root, timeoutMs: 300_000 });
      if (copied.exitCode !== 0) {
        // Gone between the look and the copy: absent after all. Anything else is a backup missing a part.
        if (!(await exists(under(source.path)))) {
          absent.push(source.path);
          present.push({ ...source, present: false });
          continue;
        }
        throw new Error(`could not copy ${source.path}: ${(copied.stderr || copied.stdout).trim().split('\n').slice(-3).join('; ')}`);
      }
      present.push({ ...source, present: true });
    }

    const facts: Manifest['facts'] = [];
    for (const fact of opts.facts ?? BACKUP_FACTS) {
      const result = await exec.run(fact.argv, { timeoutMs: 60_000 });
      const entry = { name: fact.file, argv: [...fact.argv], why: fact.why };
      if (result.notFound) {
        facts.push({ ...entry, absent: `${fact.argv[0]} is not installed` });
        continue;
      }
      const file = `${ARCHIVE_FACTS_DIR}/${fact.file}`;
      const stderr = result.stderr.trim();
      const text = result.stdout + (result.exitCode !== 0 && stderr ? `\n# exit code ${result.exitCode}; standard error:\n${stderr}\n` : '');
      await fs.writeFile(path.join(top, file), text, { mode: 0o600 });
      facts.push({ ...entry, file, exitCode: result.exitCode });
    }

    await fs.writeFile(path.join(top, RESTORE_NAME), restoreText(node, topName), { mode: 0o600 });

    const entries = await describeTree(top);
    const manifest: Manifest = { format: MANIFEST_FORMAT, node, created: now.toISOString(), configDb, sources: present, absent, facts, entries };
    await fs.writeFile(path.join(top, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
    // SHA256SUMS: every regular file, the manifest too; not links (sha256sum would follow one out of the archive).
    const sums = [...entries.filter((e) => e.type === 'file').map((e) => ({ path: e.path, sha256: e.sha256! })), { path: MANIFEST_NAME, sha256: await sha256File(path.join(top, MANIFEST_NAME)) }]
      .sort((a, b) => (a.path < b.path ? -1 : 1))
      .map((e) => sumsLine(e.sha256, e.path))
      .join('');
    await fs.writeFile(path.join(top, SUMS_NAME), sums, { mode: 0o600 });

    const plain = path.join(work, 'plain.tar.gz');
    await runChecked(exec, ['tar', '-czf', plain, '-C', stage, '--', topName], { timeoutMs: 900_000 });
    await fs.chmod(plain, 0o600);
    const encrypted = path.join(work, 'archive.age');
    await runChecked(exec, ['age', ...recipients.flatMap((r) => ['-r', r]), '-o', encrypted, '--', plain], { timeoutMs: 900_000 });
    await fs.chmod(encrypted, 0o600);
    const sha256 = await sha256File(encrypted);
    const bytes = (await fs.stat(encrypted)).size;

    // link() refuses to replace an existing name, so a second run in the same second cannot overwrite the first.
    await fs.link(encrypted, finalPath);
    const checksumPath = checksumName(finalPath);
    try {
      await fs.writeFile(checksumPath, sumsLine(sha256, name), { mode: 0o600, flag: 'wx' });
    } catch (error) {
      await fs.rm(finalPath, { force: true });
      throw error;
    }

    const count = (type: ManifestEntry['type']) => entries.filter((e) => e.type === type).length;
    return {
      path: finalPath,
      name,
      checksumPath,
      sha256,
      bytes,
      // + the manifest and SHA256SUMS, which the manifest cannot list.
      files: count('file') + 2,
      manifest: {
        entries: entries.length + 2,
        files: count('file') + 2,
        dirs: count('dir'),
        symlinks: count('symlink'),
        absent,
        configDb: 'absent' in configDb ? 'absent' : 'ok',
        facts: facts.map((f) => ({
          file: f.file ?? `${ARCHIVE_FACTS_DIR}/${f.name}`,
          ok: !f.absent && f.exitCode === 0,
          ...(f.absent ? { note: f.absent } : f.exitCode !== 0 ? { note: `${f.argv.join(' ')} exited with ${f.exitCode}` } : {}),
        })),
      },
    };
  } finally {
    // The staging copy and the plaintext tar hold every secret of the node: never left behind.
    await fs.rm(work, { recursive: true, force: true });
  }
}

/**
 * Local retention: keeps the newest `keep` of our archives in `outDir` (only
 * `node`'s when given) and removes the others with their .sha256. Files that
 * are not our archives are never touched. Returns the names removed.
 */
export async function pruneLocal(outDir: string, keep: number, node?: string): Promise<string[]> {
  const names = await fs.readdir(outDir);
  const removed: string[] = [];
  for (const name of beyondRetention(names, keep, node)) {
    const file = path.join(outDir, name);
    const st = await lstatOrNull(file);
    if (!st?.isFile()) continue;
    await fs.rm(file, { force: true });
    await fs.rm(checksumName(file), { force: true });
    removed.push(name);
  }
  return removed;
}
