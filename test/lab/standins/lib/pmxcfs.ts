/**
 * A plain /etc/pve directory standing in for pmxcfs (pve-cluster src/pmxcfs/):
 * files are written atomically, owned root:www-data, mode 0640 (0600 under
 * priv/), and locked like cfs_lock_file (a lock directory under priv/lock,
 * expiring after 120 s, 10 s to acquire).
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { PveError } from './schema.ts';
import { parseUserCfg, writeUserCfg, type UserCfg } from '../../../../src/pve/user-cfg.ts';

export const ETC_PVE = process.env.PVE_LAB_ETC_PVE ?? '/etc/pve';

export function nodename(): string {
  return hostname().split('.')[0]!;
}

let wwwData: number | undefined;
function wwwDataGid(): number {
  if (wwwData === undefined) {
    wwwData = 33;
    try {
      const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('www-data:'));
      if (line) wwwData = Number(line.split(':')[2]);
    } catch {
      /* keep Debian's 33 */
    }
  }
  return wwwData;
}

const isPriv = (rel: string) => rel.startsWith('priv/') || /^nodes\/[^/]+\/priv\//.test(rel);
const isRoot = process.getuid?.() === 0;

function fixOwner(path: string, mode: number): void {
  chmodSync(path, mode);
  if (isRoot) chownSync(path, 0, wwwDataGid());
}

function ensureDir(rel: string): void {
  const parts = rel.split('/').filter(Boolean);
  let cur = ETC_PVE;
  let relCur = '';
  for (const p of parts) {
    cur = join(cur, p);
    relCur = relCur ? `${relCur}/${p}` : p;
    if (!existsSync(cur)) {
      mkdirSync(cur);
      fixOwner(cur, isPriv(`${relCur}/`) ? 0o700 : 0o755);
    }
  }
}

export function readFile(rel: string): string | undefined {
  try {
    return readFileSync(join(ETC_PVE, rel), 'utf8');
  } catch {
    return undefined;
  }
}

export function writeFile(rel: string, content: string): void {
  if (Buffer.byteLength(content) > 1024 * 1024) throw new PveError('File too large\n'); // MEMDB_MAX_FILE_SIZE
  ensureDir(dirname(rel));
  const path = join(ETC_PVE, rel);
  const tmp = `${path}.tmp.${process.pid}`;
  writeFileSync(tmp, content);
  fixOwner(tmp, isPriv(rel) ? 0o600 : 0o640);
  renameSync(tmp, path);
}

export function deleteFile(rel: string): void {
  try {
    unlinkSync(join(ETC_PVE, rel));
  } catch {
    /* already gone */
  }
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** cfs_lock_file: run fn under the named lock; errors are re-thrown as "<errmsg>: <err>" */
export function lockFile<T>(name: string, fn: () => T, errmsg?: string): T {
  const lockdir = join(ETC_PVE, 'priv', 'lock', `file-${name.replace(/[/.]/g, '_')}`);
  ensureDir('priv/lock');
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      mkdirSync(lockdir);
      break;
    } catch {
      try {
        if (Date.now() - statSync(lockdir).mtimeMs > 120_000) rmSync(lockdir, { recursive: true, force: true });
      } catch {
        /* raced with its owner */
      }
      if (Date.now() > deadline) {
        const e = 'got lock request timeout\n';
        throw new PveError(errmsg ? `${errmsg}: ${e}` : e);
      }
      sleepSync(50);
    }
  }
  try {
    return fn();
  } catch (err) {
    if (!errmsg) throw err;
    // Perl: die "$errmsg: $err" stringifies an exception object into plain text
    const text = err instanceof PveError ? err.stringify() : err instanceof Error ? `${err.message}\n` : String(err);
    throw new PveError(`${errmsg}: ${text}`);
  } finally {
    rmdirSync(lockdir);
  }
}

/** cfs_read_file('user.cfg'): parse, printing the parser's warnings as Perl's warn does */
export function readUserCfg(): UserCfg {
  const { cfg, warnings } = parseUserCfg(readFile('user.cfg'));
  for (const w of warnings) process.stderr.write(`${w}\n`);
  return cfg;
}

export function writeUserCfgFile(cfg: UserCfg): void {
  writeFile('user.cfg', writeUserCfg(cfg));
}

export const lockUserConfig = <T>(fn: () => T, errmsg?: string): T => lockFile('user.cfg', fn, errmsg);

/** Proxmox's write pattern: lock user.cfg, read it, change it, write it back. */
export const updateUserCfg = (change: (cfg: UserCfg) => void, errmsg?: string): void =>
  lockUserConfig(() => {
    const cfg = readUserCfg();
    change(cfg);
    writeUserCfgFile(cfg);
  }, errmsg);
