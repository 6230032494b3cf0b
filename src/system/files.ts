/**
 * Files: reads, atomic writes that keep mode and owner, and a backup store
 * that can put any file back byte for byte (content, mode, owner), or remove
 * it again when it did not exist before.
 *
 * pve-baseline runs as root, and many paths it touches lie in directories
 * other users can write (an admin's home, /tmp). So every change walks the
 * path one directory at a time on open descriptors (never re-resolving a
 * name) and follows a symbolic link only where nobody but root could have
 * put it: the link is owned by root (or by the user running this process)
 * and every directory on the way is owned by root (or that user) and
 * writable by nobody else, or sticky. That is what the baseline needs on
 * Proxmox, where root's authorized_keys is a link into /etc/pve/priv; any
 * other link is refused with a message naming it, or, where the operation
 * is about the name itself (remove, rename, restore), acted on as the link.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, promises as fs, readSync, statfsSync, statSync, constants as fsc, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
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
  /** Remove a file, or a symbolic link itself (never its target); a missing file is fine. */
  remove(file: string): Promise<void>;
  /** rename(2): moves the name (a link stays a link) and replaces whatever `to` was. */
  rename(from: string, to: string): Promise<void>;
  /** Create the symbolic link `file` pointing at `target`; fails with EEXIST when `file` exists. */
  symlink(target: string, file: string): Promise<void>;
  /** True when this process may write the file (false on a read-only mount, e.g. /proc/sys in a container). */
  writable(file: string): Promise<boolean>;
  /** The names in a directory, sorted; empty when it does not exist. */
  list(dir: string): Promise<string[]>;
}

/** A file pve-baseline will not read or write as asked; the message names the file and why. */
export class FileRefusedError extends Error {
  override readonly name = 'FileRefusedError';

  /** @param what the role of the file, e.g. "the answers file"; the message reads "WHAT FILE: REASON". */
  constructor(
    readonly what: string,
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${what} ${file}: ${reason}`);
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}

function errnoError(code: string, syscall: string, file: string, text: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${text}, ${syscall} '${file}'`), { code, syscall, path: file });
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

/** Kernel file systems whose "files" are not data: a size of 0 that reads forever, or memory. */
const PSEUDO_FILESYSTEMS = new Set([
  0x9fa0, // proc
  0x62656572, // sysfs
  0x64626720, // debugfs
  0x74726163, // tracefs
  0x73636673, // securityfs
  0x27e0eb, // cgroup
  0x63677270, // cgroup2
  0x62656570, // configfs
  0xde5e81e4, // efivarfs
  0xcafe4a11, // bpf
]);

function statfsTypeSync(fd: number): number | undefined {
  try {
    return statfsSync(`/proc/self/fd/${fd}`).type;
  } catch {
    return undefined;
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0 ? `${bytes / 1024 / 1024} MiB` : bytes >= 1024 && bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

/**
 * Read a file a person named (an answers file, a public key file) as root,
 * safely: only a regular file, not through a symbolic link, never more than
 * maxBytes. /dev/zero, a FIFO, a directory or /proc/self/mem is refused
 * instead of filling memory, hanging or crashing.
 */
export async function readRegularFile(file: string, opts: { maxBytes: number; what: string }): Promise<Buffer> {
  // The files are small by contract (maxBytes), so one synchronous read serves both callers alike.
  return readRegularFileSync(file, opts);
}

/** readRegularFile for code that must stay synchronous (the journal is read while a command starts). */
export function readRegularFileSync(file: string, opts: { maxBytes: number; what: string }): Buffer {
  const refuse = (reason: string) => new FileRefusedError(opts.what, file, reason);
  let fd: number;
  try {
    fd = openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw Object.assign(refuse('no such file'), { code });
    if (code === 'ELOOP') throw refuse('a symbolic link; give the path of the file itself');
    if (code === 'EACCES' || code === 'EPERM') throw Object.assign(refuse('permission denied'), { code });
    if (code === 'ENOTDIR') throw refuse('a part of the path is not a directory');
    throw refuse(`cannot be opened (${code ?? (error as Error).message})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse(`not a regular file (${kindOf(st)})`);
    if (st.size > opts.maxBytes) throw refuse(`larger than ${sizeText(opts.maxBytes)} (${st.size} bytes)`);
    const fsType = statfsTypeSync(fd);
    if (fsType !== undefined && PSEUDO_FILESYSTEMS.has(fsType)) throw refuse('not a regular file (a kernel interface, not data)');
    // Read at most one byte past the limit: a file that grows while it is read is refused too.
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, opts.maxBytes + 1 - length));
      let bytesRead: number;
      try {
        bytesRead = readSync(fd, chunk, 0, chunk.length, length);
      } catch (error) {
        throw refuse(`cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      }
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      length += bytesRead;
      if (length > opts.maxBytes) throw refuse(`larger than ${sizeText(opts.maxBytes)}`);
    }
    return Buffer.concat(chunks, length);
  } finally {
    closeSync(fd);
  }
}

/**
 * mkdir -p, one level at a time. Node's own recursive mkdir never returns
 * where a directory cannot be made and reports ENOENT (under /proc), so a
 * state directory there would hang the tool; this throws ENOENT instead.
 */
export function makeDirectorySync(dir: string, mode: number): void {
  const missing: string[] = [];
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    try {
      statSync(current);
      break;
    } catch (error) {
      if (!isNotFound(error) || current === path.dirname(current)) throw error;
      missing.unshift(current);
    }
  }
  for (const d of missing) {
    try {
      mkdirSync(d, mode);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/** The kernel's limit on symbolic links followed in one path. */
const MAX_LINKS = 40;

/** Owned by root, or by whoever runs this process (a test, a dry run as a user): nobody else could have put it there. */
function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === process.geteuid?.();
}

/** A directory whose entries nobody else can replace: trusted owner, and not writable by others unless sticky. */
function guardedDirectory(st: Stats): boolean {
  return trustedOwner(st.uid) && ((st.mode & 0o022) === 0 || (st.mode & 0o1000) !== 0);
}

interface OpenDir {
  handle: FileHandle;
  /** The path, for messages. */
  shown: string;
  /** The first directory on the way that another user can change, if any. */
  unguarded?: string;
}

/**
 * A name in an open directory. Operations go through /proc/self/fd/N/NAME,
 * the openat(2) of a path API: the directory is the one the walk opened, and
 * no component before NAME is resolved again.
 */
export interface Place {
  /** The path of the name, for messages (links followed). */
  shown: string;
  name: string;
  /** The path through the open directory of NAME, or of another name in the same directory. */
  at(name?: string): string;
  /** fsync the directory (a rename in it is then durable). */
  syncDirectory(): Promise<void>;
  close(): Promise<void>;
}

/**
 * What to do with a symbolic link as the last component: follow it where
 * nobody else could have put it and refuse otherwise, act on the link itself,
 * or follow it where trusted and else act on the link itself.
 */
type LastLink = 'follow' | 'itself' | 'follow-if-trusted';

/**
 * Walk `file` from / on directory descriptors (O_NOFOLLOW at every step),
 * following links only as this module allows, and return the place of its
 * last component, fully resolved (a chain a -> b -> target ends at target).
 * Missing directories are created when `create` is set, else ENOENT.
 */
export async function openPlace(file: string, opts: { lastLink: LastLink; create?: boolean; dirMode?: number; what: string }): Promise<Place> {
  const pending = path.resolve(file).split('/').filter(Boolean);
  const root = await fs.open('/', fsc.O_RDONLY | fsc.O_DIRECTORY);
  const stack: OpenDir[] = [{ handle: root, shown: '/', ...(guardedDirectory(await root.stat()) ? {} : { unguarded: '/' }) }];
  const refuse = (reason: string) => new FileRefusedError(opts.what, file, reason);
  const closeAll = async (keep?: OpenDir) => {
    for (const dir of stack) if (dir !== keep) await dir.handle.close();
  };
  let links = 0;
  try {
    while (pending.length) {
      const name = pending.shift()!;
      const top = stack.at(-1)!;
      if (name === '.') continue;
      if (name === '..') {
        if (stack.length > 1) await stack.pop()!.handle.close();
        continue;
      }
      const last = pending.length === 0;
      const at = `/proc/self/fd/${top.handle.fd}/${name}`;
      const shown = path.join(top.shown, name);
      const st = await fs.lstat(at).catch((error: unknown) => {
        if (isNotFound(error)) return null;
        throw error;
      });
      if (st?.isSymbolicLink() && !(last && opts.lastLink === 'itself')) {
        const distrust = !trustedOwner(st.uid)
          ? `${shown} is a symbolic link owned by uid ${st.uid}, not root`
          : top.unguarded
            ? `${shown} is a symbolic link in ${top.unguarded}, which a user other than root can change`
            : null;
        if (distrust) {
          if (last && opts.lastLink === 'follow-if-trusted') return place(top, name, shown);
          throw refuse(`${distrust}; it is not followed`);
        }
        if (++links > MAX_LINKS) throw refuse(`more than ${MAX_LINKS} symbolic links on the way`);
        const target = await fs.readlink(at);
        if (path.isAbsolute(target)) while (stack.length > 1) await stack.pop()!.handle.close();
        pending.unshift(...target.split('/').filter(Boolean));
        continue;
      }
      if (last) return place(top, name, shown);
      if (!st) {
        if (!opts.create) throw errnoError('ENOENT', 'open', shown, 'no such file or directory');
        await fs.mkdir(at, opts.dirMode ?? 0o777).catch((error: unknown) => {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        });
      } else if (!st.isDirectory()) {
        throw refuse(`${shown} is not a directory`);
      }
      const handle = await fs.open(at, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
      const unguarded = top.unguarded ?? (guardedDirectory(await handle.stat()) ? undefined : shown);
      stack.push({ handle, shown, ...(unguarded ? { unguarded } : {}) });
    }
    throw refuse('is a directory');
  } catch (error) {
    await closeAll();
    throw error;
  }

  async function place(dir: OpenDir, name: string, shown: string): Promise<Place> {
    await closeAll(dir);
    return {
      shown,
      name,
      at: (other = name) => `/proc/self/fd/${dir.handle.fd}/${other}`,
      syncDirectory: async () => {
        // Some filesystems (FUSE, e.g. /etc/pve) refuse fsync on a directory; the rename stands.
        await dir.handle.sync().catch(() => undefined);
      },
      close: () => dir.handle.close(),
    };
  }
}

async function withPlace<T>(file: string, opts: Parameters<typeof openPlace>[1], body: (place: Place) => Promise<T>): Promise<T> {
  const place = await openPlace(file, opts);
  try {
    return await body(place);
  } finally {
    await place.close();
  }
}

/** Mode and owner a written file gets: `exact` for a restore; else an existing file's, else the options'. */
interface Ownership {
  exact?: { mode: number; uid: number; gid: number };
  options: WriteOptions;
  /** A restore puts a file back where someone planted a link: the link itself is replaced. */
  replaceLink?: boolean;
}

async function writeAt(place: Place, content: string | Buffer, own: Ownership): Promise<void> {
  const existing = await fs.lstat(place.at()).catch((error: unknown) => {
    if (isNotFound(error)) return null;
    throw error;
  });
  if (existing && !existing.isFile() && !(existing.isSymbolicLink() && own.replaceLink)) {
    throw new FileRefusedError('refusing to write', place.shown, `it is ${kindOf(existing)}, not a regular file`);
  }
  const kept = existing?.isFile() ? existing : null;
  const mode = own.exact?.mode ?? (kept ? kept.mode & 0o7777 : (own.options.mode ?? 0o644));
  const uid = own.exact?.uid ?? kept?.uid ?? own.options.uid;
  const gid = own.exact?.gid ?? kept?.gid ?? own.options.gid;
  const temp = `.${place.name}.pve-baseline-${randomBytes(4).toString('hex')}`;
  const handle = await fs.open(place.at(temp), fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY | fsc.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(content);
    // Mode and owner on the descriptor before the rename, so the file never appears with the wrong ones.
    // Owner first: chown clears setuid/setgid bits, so chmod must come after it.
    if (uid !== undefined && gid !== undefined && process.getuid?.() === 0) await handle.chown(uid, gid);
    await handle.chmod(mode);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.rm(place.at(temp), { force: true });
    throw error;
  }
  await handle.close();
  try {
    await fs.rename(place.at(temp), place.at());
  } catch (error) {
    await fs.rm(place.at(temp), { force: true });
    throw error;
  }
  await place.syncDirectory();
}

/**
 * Write a file atomically: a temp file in the same directory, fsync, rename.
 * A reader sees the old or the new content, never half of it, even across a
 * power cut. The file keeps its mode and owner when it exists. A symbolic
 * link is written through (its final target is replaced; the links stay)
 * only where nobody but root could have put it; any other link is refused.
 */
export async function atomicWrite(file: string, content: string | Buffer, options: WriteOptions = {}): Promise<void> {
  await withPlace(file, { lastLink: 'follow', what: 'refusing to write' }, (place) => writeAt(place, content, { options }));
}

/**
 * Write a file for root's eyes only (the access-policy document): mode 0600,
 * owned by this process, and never through a symbolic link: a link at the
 * path is refused, whoever made it. Missing directories are made 0700 when
 * asked, else ENOENT.
 */
export async function writePrivateFile(file: string, content: string | Buffer, opts: { createDirectories?: boolean } = {}): Promise<void> {
  await withPlace(file, { lastLink: 'itself', create: opts.createDirectories ?? false, dirMode: 0o700, what: 'refusing to write' }, async (place) => {
    const st = await fs.lstat(place.at()).catch(() => null);
    if (st?.isSymbolicLink()) throw new FileRefusedError('refusing to write', file, 'it is a symbolic link, and this file is never written through one; remove the link or choose another path');
    const exact = { mode: 0o600, uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 };
    await writeAt(place, content, { exact, options: {} });
  });
}

export class LocalFiles implements Files {
  async read(file: string): Promise<string | null> {
    const buffer = await readIfExists(file);
    return buffer === null ? null : buffer.toString('utf8');
  }

  meta(file: string): Promise<FileMeta | null> {
    return metaIfExists(file);
  }

  async write(file: string, content: string, options: WriteOptions = {}): Promise<void> {
    await withPlace(file, { lastLink: 'follow', create: true, what: 'refusing to write' }, (place) => writeAt(place, content, { options }));
  }

  async remove(file: string): Promise<void> {
    try {
      await withPlace(file, { lastLink: 'itself', what: 'refusing to remove' }, (place) => fs.rm(place.at(), { force: true }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await withPlace(from, { lastLink: 'itself', what: 'refusing to rename' }, (source) =>
      withPlace(to, { lastLink: 'itself', what: 'refusing to rename onto' }, async (destination) => {
        await fs.rename(source.at(), destination.at());
        await destination.syncDirectory();
      }),
    );
  }

  async symlink(target: string, file: string): Promise<void> {
    await withPlace(file, { lastLink: 'itself', what: 'refusing to create the link' }, (place) => fs.symlink(target, place.at()));
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

  /** Back up what a write to `file` would replace: the same links are followed (or refused) as atomicWrite does. */
  async backup(set: string, file: string): Promise<BackupRecord> {
    const takenAt = new Date().toISOString();
    let found: { content: Buffer; st: Stats } | null;
    try {
      found = await withPlace(file, { lastLink: 'follow', what: 'refusing to back up' }, async (place) => {
        let handle: FileHandle;
        try {
          handle = await fs.open(place.at(), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
        } catch (error) {
          if (isNotFound(error)) return null;
          throw error;
        }
        try {
          const st = await handle.stat();
          if (!st.isFile()) throw new FileRefusedError('refusing to back up', place.shown, `it is ${kindOf(st)}, not a regular file`);
          return { content: await handle.readFile(), st };
        } finally {
          await handle.close();
        }
      });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      found = null;
    }
    if (found === null) return { path: file, existed: false, takenAt };
    const { content, st } = found;
    const copy = path.join(this.root, set, path.resolve(file));
    await fs.mkdir(path.dirname(copy), { recursive: true, mode: 0o700 });
    await atomicWrite(copy, content, { mode: 0o600 });
    return { path: file, existed: true, copy, sha256: sha256(content), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, takenAt };
  }

  /**
   * Put the file back exactly as it was (or remove it if it did not exist).
   * A link nobody but root could have made is followed, as the backup was;
   * any other link at the path is itself removed or replaced, never its target.
   */
  async restore(record: BackupRecord): Promise<void> {
    if (!record.existed) {
      try {
        await withPlace(record.path, { lastLink: 'follow-if-trusted', what: 'refusing to restore' }, (place) => fs.rm(place.at(), { force: true }));
      } catch (error) {
        // A missing directory on the way: the file is not there either.
        if (!isNotFound(error)) throw error;
      }
      return;
    }
    const content = await fs.readFile(record.copy!);
    if (record.sha256 && sha256(content) !== record.sha256) {
      throw new Error(`backup of ${record.path} at ${record.copy} does not match its checksum; not restored`);
    }
    // The backup's mode and owner are the truth, set on the new file's descriptor before it takes the name.
    const exact = { mode: record.mode!, uid: record.uid!, gid: record.gid! };
    await withPlace(record.path, { lastLink: 'follow-if-trusted', create: true, what: 'refusing to restore' }, (place) =>
      writeAt(place, content, { exact, options: {}, replaceLink: true }),
    );
  }

  /** True when the file on disk is byte-identical to the backup (or absent when it was). */
  async matches(record: BackupRecord): Promise<boolean> {
    const content = await readIfExists(record.path);
    if (!record.existed) return content === null;
    return content !== null && sha256(content) === record.sha256;
  }
}
