/**
 * Files: reads, atomic writes that keep mode and owner, and a backup store
 * that can put any file back byte for byte (content, mode, owner), or remove
 * it again when it did not exist before.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, constants as fsc } from 'node:fs';
import path from 'node:path';

export interface FileMeta {
  mode: number;
  uid: number;
  gid: number;
  isSymlink: boolean;
}

export interface WriteOptions {
  /** Mode for a new file; an existing file keeps its mode. */
  mode?: number;
  /** Owner for a new file; an existing file keeps its owner. */
  uid?: number;
  gid?: number;
}

export interface Files {
  read(file: string): Promise<string | null>;
  meta(file: string): Promise<FileMeta | null>;
  write(file: string, content: string, options?: WriteOptions): Promise<void>;
  remove(file: string): Promise<void>;
  /** True when this process may write the file (false on a read-only mount, e.g. /proc/sys in a container). */
  writable(file: string): Promise<boolean>;
  /** The names in a directory, sorted; empty when it does not exist. */
  list(dir: string): Promise<string[]>;
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}

export async function readIfExists(file: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

export async function metaIfExists(file: string): Promise<FileMeta | null> {
  try {
    const link = await fs.lstat(file);
    const st = link.isSymbolicLink() ? await fs.stat(file) : link;
    return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, isSymlink: link.isSymbolicLink() };
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/**
 * Write a file atomically: a temp file in the same directory, fsync, rename.
 * A reader sees the old or the new content, never half of it, even across a
 * power cut. The file keeps its mode and owner when it exists. A symlink is
 * written through (its target is replaced), because on Proxmox root's
 * authorized_keys is a symlink into /etc/pve that must stay one.
 */
export async function atomicWrite(file: string, content: string | Buffer, options: WriteOptions = {}): Promise<void> {
  const target = await resolveSymlink(file);
  const existing = await metaIfExists(target);
  const mode = existing?.mode ?? options.mode ?? 0o644;
  const dir = path.dirname(target);
  const temp = path.join(dir, `.${path.basename(target)}.pve-baseline-${randomBytes(4).toString('hex')}`);
  const handle = await fs.open(temp, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600);
  try {
    await handle.writeFile(content);
    // Mode and owner before the rename, so the file never appears with the wrong ones.
    // Owner first: chown clears setuid/setgid bits, so chmod must come after it.
    const uid = existing?.uid ?? options.uid;
    const gid = existing?.gid ?? options.gid;
    if (uid !== undefined && gid !== undefined && process.getuid?.() === 0) await handle.chown(uid, gid);
    await handle.chmod(mode);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await fs.rename(temp, target);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dir);
}

async function resolveSymlink(file: string): Promise<string> {
  try {
    const st = await fs.lstat(file);
    if (!st.isSymbolicLink()) return file;
    const link = await fs.readlink(file);
    return path.resolve(path.dirname(file), link);
  } catch (error) {
    if (isNotFound(error)) return file;
    throw error;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await fs.open(dir, fsc.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some filesystems (FUSE, e.g. /etc/pve) refuse fsync on a directory; the rename stands.
  }
}

export class LocalFiles implements Files {
  async read(file: string): Promise<string | null> {
    const buffer = await readIfExists(file);
    return buffer === null ? null : buffer.toString('utf8');
  }

  meta(file: string): Promise<FileMeta | null> {
    return metaIfExists(file);
  }

  async write(file: string, content: string, options?: WriteOptions): Promise<void> {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await atomicWrite(file, content, options);
  }

  async remove(file: string): Promise<void> {
    await fs.rm(file, { force: true });
  }

  async list(dir: string): Promise<string[]> {
    try {
      return (await fs.readdir(dir)).sort();
    } catch (error) {
      if (isNotFound(error)) return [];
      throw error;
    }
  }

  async writable(file: string): Promise<boolean> {
    try {
      await fs.access(file, fsc.W_OK);
      return true;
    } catch {
      return false;
    }
  }
}

/** What the journal keeps of a backup: enough to restore and to prove the restore. */
export interface BackupRecord {
  path: string;
  /** False when the file did not exist: restoring means removing it. */
  existed: boolean;
  /** Where the copy is, when it existed. */
  copy?: string;
  sha256?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  takenAt: string;
}

export function sha256(content: Buffer | string): string {
  return createHash('sha256').update(content).digest('hex');
}

/**
 * Backups under <stateDir>/backups/<set>/<absolute path>, where a set is one
 * apply of one step. Copies are mode 0600 in 0700 directories: they may hold
 * anything the original held.
 */
export class BackupStore {
  constructor(readonly root: string) {}

  async backup(set: string, file: string): Promise<BackupRecord> {
    const takenAt = new Date().toISOString();
    const target = await resolveSymlink(file);
    const content = await readIfExists(target);
    if (content === null) return { path: file, existed: false, takenAt };
    const meta = (await metaIfExists(target))!;
    const copy = path.join(this.root, set, path.resolve(file));
    await fs.mkdir(path.dirname(copy), { recursive: true, mode: 0o700 });
    await atomicWrite(copy, content, { mode: 0o600 });
    return { path: file, existed: true, copy, sha256: sha256(content), mode: meta.mode, uid: meta.uid, gid: meta.gid, takenAt };
  }

  /** Put the file back exactly as it was (or remove it if it did not exist). */
  async restore(record: BackupRecord): Promise<void> {
    if (!record.existed) {
      await fs.rm(await resolveSymlink(record.path), { force: true });
      return;
    }
    const content = await fs.readFile(record.copy!);
    if (record.sha256 && sha256(content) !== record.sha256) {
      throw new Error(`backup of ${record.path} at ${record.copy} does not match its checksum; not restored`);
    }
    const target = await resolveSymlink(record.path);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await atomicWrite(target, content);
    // atomicWrite keeps the current mode/owner; the backup's are the truth.
    // Owner first: chown clears setuid/setgid bits, so chmod must come after it.
    if (process.getuid?.() === 0) await fs.chown(target, record.uid!, record.gid!);
    await fs.chmod(target, record.mode!);
  }

  /** True when the file on disk is byte-identical to the backup (or absent when it was). */
  async matches(record: BackupRecord): Promise<boolean> {
    const content = await readIfExists(record.path);
    if (!record.existed) return content === null;
    return content !== null && sha256(content) === record.sha256;
  }
}
