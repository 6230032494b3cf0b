/**
 * Shipping the archive off the node: to an SFTP server (key authentication,
 * the server's host key pinned by fingerprint), or to a mounted filesystem
 * that is not the node's root. Every copy is read back and its SHA-256
 * compared with the local file before it counts; retention then removes only
 * our own archive names (NODE-config-STAMP.tar.gz.age, that node's only).
 *
 * The private key's contents reach ssh2 in memory only: never argv, never a
 * message.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Client, SFTPWrapper } from 'ssh2';
import { loadSsh2 } from '../ssh/ssh2.ts';
import { fingerprintOf } from '../ssh/keys.ts';
import { beyondRetention, checksumName, ourArchives, parseArchiveName } from './contents.ts';
import { sha256File, sumsLine } from './archive.ts';
import { FINGERPRINT } from './settings.ts';

export type RemoteErrorKind = 'unreachable' | 'auth' | 'host-key' | 'transfer' | 'verify' | 'refused';

/** A failure the operator can act on; `seen`/`expected` are host key fingerprints (SHA256:...). */
export class RemoteError extends Error {
  constructor(
    readonly kind: RemoteErrorKind,
    message: string,
    readonly seen?: string,
    readonly expected?: string,
  ) {
    super(message);
    this.name = 'RemoteError';
  }
}

export interface SftpTarget {
  host: string;
  /** 22 by default. */
  port?: number;
  user: string;
  /** An unencrypted OpenSSH or PEM private key; read here, handed to ssh2 in memory. */
  privateKeyPath: string;
  /** The pinned host key fingerprint, 'SHA256:' + base64 without padding (as ssh-keygen -lf prints). Without it the connection is refused. */
  hostKey?: string;
  /** Connection and handshake limit; 5 s by default. */
  timeoutMs?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Each SFTP request (a write, a read) must be answered within this. */
const REQUEST_TIMEOUT_MS = 30_000;
const CHUNK = 32 * 1024;
/** Writes in flight at once: a round trip per chunk would crawl over a long link. */
const WRITES_IN_FLIGHT = 16;


export function checkFingerprint(fp: string): void {
  if (!FINGERPRINT.test(fp)) throw new Error(`"${fp}" is not a host key fingerprint (SHA256: and 43 base64 characters, as ssh-keygen -lf prints)`);
}

/** The key type named at the start of an SSH public key blob (ssh-ed25519, ...). */
function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  return len > 0 && len < 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString('latin1') : 'unknown';
}

const address = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/** A remote path in `dir` (SFTP paths are POSIX). */
const remoteJoin = (dir: string, name: string) => (dir === '' ? name : `${dir.replace(/\/+$/, '')}/${name}`);

function unreachableReason(e: NodeJS.ErrnoException): string | null {
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to host';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the name does not resolve';
    case 'ETIMEDOUT':
      return 'timed out';
    case 'ECONNRESET':
      return 'the connection was reset';
    default:
      return null;
  }
}

interface Session {
  conn: Client;
  sftp: SFTPWrapper | null;
}

/**
 * Connects and checks the host key against the pin. `wantSftp: false` stops
 * right after the host key was seen (probeHostKey).
 */
async function open(
  target: { host: string; port?: number; user?: string; privateKey?: Buffer; privateKeyPath?: string; hostKey?: string; timeoutMs?: number },
  mode: 'sftp' | 'probe',
): Promise<Session & { seen?: { fingerprint: string; keyType: string } }> {
  const { Client } = await loadSsh2();
  const port = target.port ?? 22;
  const at = address(target.host, port);
  const timeoutMs = target.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const conn = new Client();
    let seen: { fingerprint: string; keyType: string } | undefined;
    let refusedKey = false;
    let settled = false;
    const settle = (error: Error | null, sftp?: SFTPWrapper) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        conn.end();
        reject(error);
      } else resolve({ conn, sftp: sftp ?? null, ...(seen ? { seen } : {}) });
    };
    const timer = setTimeout(() => {
      settle(new RemoteError('unreachable', `cannot reach ${at}: no answer within ${timeoutMs / 1000} s`));
      conn.destroy();
    }, timeoutMs);
    conn.on('ready', () => {
      conn.sftp((err, sftp) => {
        if (err) settle(new RemoteError('transfer', `${at} refused the SFTP subsystem: ${err.message}`));
        else settle(null, sftp);
      });
    });
    conn.on('error', (e: Error & { level?: string; code?: string }) => {
      if (mode === 'probe' && seen) return settle(null);
      if (refusedKey && seen) {
        const pinned = target.hostKey;
        return settle(
          pinned
            ? new RemoteError('host-key', `${at} presented host key ${seen.fingerprint} (${seen.keyType}), but ${pinned} is pinned: refusing to connect (the server was reinstalled, or this is not the server)`, seen.fingerprint, pinned)
            : new RemoteError('host-key', `${at} presents host key ${seen.fingerprint} (${seen.keyType}) and no host key is pinned: check it on the server (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and pin it`, seen.fingerprint),
        );
      }
      if (e.level === 'client-authentication') return settle(new RemoteError('auth', `${target.user}@${at} refused the key ${target.privateKeyPath} (public key authentication failed)`));
      const reason = unreachableReason(e);
      if (reason || e.level === 'client-socket' || e.level === 'client-timeout') return settle(new RemoteError('unreachable', `cannot reach ${at}: ${reason ?? e.message}`));
      settle(new RemoteError('transfer', `${at}: ${e.message}`));
    });
    conn.on('close', () => settle(mode === 'probe' && seen ? null : new RemoteError('unreachable', `cannot reach ${at}: the connection closed before the SSH handshake`)));
    try {
      conn.connect({
        host: target.host,
        port,
        username: target.user ?? 'pve-baseline-probe',
        ...(target.privateKey ? { privateKey: target.privateKey } : {}),
        readyTimeout: timeoutMs,
        // Public key only: never fall back to a password or the keyboard.
        authHandler: target.privateKey ? ['publickey'] : ['none'],
        hostVerifier: (key: Buffer) => {
          seen = { fingerprint: fingerprintOf(key), keyType: keyTypeOf(key) };
          const ok = mode === 'sftp' && target.hostKey !== undefined && seen.fingerprint === target.hostKey;
          if (!ok) refusedKey = true;
          return ok;
        },
      } as never);
    } catch (e) {
      // ssh2 checks the key as it connects: say which file, never what is in it.
      const message = (e as Error).message;
      settle(new RemoteError('auth', `cannot use the private key ${target.privateKeyPath}: ${/passphrase/i.test(message) ? 'it is encrypted (a key without a passphrase is needed for unattended copies)' : 'not a private key ssh2 can read'}`));
    }
  });
}

async function connectSftp(target: SftpTarget): Promise<Session & { sftp: SFTPWrapper }> {
  if (target.hostKey !== undefined) checkFingerprint(target.hostKey);
  let privateKey: Buffer;
  try {
    privateKey = await fs.readFile(target.privateKeyPath);
  } catch (error) {
    throw new RemoteError('auth', `cannot read the private key ${target.privateKeyPath}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  const session = await open({ ...target, privateKey }, 'sftp');
  return session as Session & { sftp: SFTPWrapper };
}

/**
 * The host key the server presents (for a first-use confirmation): the key
 * ssh2 negotiates, an ed25519 key when the server has one, with its type.
 * Nothing is authenticated.
 */
export async function probeHostKeyInfo(opts: { host: string; port?: number; timeoutMs?: number }): Promise<{ fingerprint: string; keyType: string }> {
  const session = await open(opts, 'probe');
  session.conn.end();
  if (!session.seen) throw new RemoteError('unreachable', `${address(opts.host, opts.port ?? 22)} presented no host key`);
  return session.seen;
}

/** The fingerprint ('SHA256:...') of the host key the server presents; see probeHostKeyInfo. */
export async function probeHostKey(opts: { host: string; port?: number; timeoutMs?: number }): Promise<string> {
  return (await probeHostKeyInfo(opts)).fingerprint;
}

/** One SFTP request as a promise, with a limit: a server that stops answering fails the copy instead of hanging it. */
function request<T>(what: string, start: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RemoteError('transfer', `${what}: no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)), REQUEST_TIMEOUT_MS);
    start((err, value) => {
      clearTimeout(timer);
      if (err) reject(new RemoteError('transfer', `${what}: ${err.message}`));
      else resolve(value as T);
    });
  });
}

async function remoteStat(sftp: SFTPWrapper, p: string): Promise<{ isDir: boolean; isFile: boolean } | null> {
  return new Promise((resolve) => {
    sftp.stat(p, (err, st) => resolve(err ? null : { isDir: st.isDirectory(), isFile: st.isFile() }));
  });
}

/** mkdir -p on the server: each missing part of `dir` made (0700); a part that is a file is refused. */
async function ensureRemoteDir(sftp: SFTPWrapper, dir: string, at: string): Promise<void> {
  const parts = dir.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const part = parts.slice(0, i).join('/');
    if (part === '' || part === '.') continue;
    const st = await remoteStat(sftp, part);
    if (st?.isDir) continue;
    if (st) throw new RemoteError('refused', `${part} on ${at} is not a directory`);
    await request<void>(`cannot create the directory ${part} on ${at}`, (cb) => sftp.mkdir(part, { mode: 0o700 }, cb));
  }
}

async function upload(sftp: SFTPWrapper, local: string, remote: string): Promise<void> {
  const handle = await request<Buffer>(`cannot create ${remote}`, (cb) => sftp.open(remote, 'w', { mode: 0o600 }, cb));
  try {
    const file = await fs.open(local, 'r');
    try {
      let position = 0;
      const inFlight = new Set<Promise<void>>();
      for (;;) {
        const buffer = Buffer.alloc(CHUNK);
        const { bytesRead } = await file.read(buffer, 0, CHUNK, position);
        if (bytesRead === 0) break;
        const at = position;
        const write = request<void>(`cannot write ${remote}`, (cb) => sftp.write(handle, buffer, 0, bytesRead, at, (err) => cb(err)));
        inFlight.add(write);
        void write.finally(() => inFlight.delete(write)).catch(() => undefined);
        position += bytesRead;
        if (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    } finally {
      await file.close();
    }
  } finally {
    await request<void>(`cannot close ${remote}`, (cb) => sftp.close(handle, (err) => cb(err)));
  }
}

/** Reads a remote file through, hashing it (and writing it to `to` when given). */
async function readBack(sftp: SFTPWrapper, remote: string, to?: fs.FileHandle): Promise<{ sha256: string; bytes: number }> {
  const handle = await request<Buffer>(`cannot open ${remote}`, (cb) => sftp.open(remote, 'r', cb));
  const hash = createHash('sha256');
  let position = 0;
  try {
    for (;;) {
      const buffer = Buffer.alloc(CHUNK);
      const n = await request<number>(`cannot read ${remote}`, (cb) => sftp.read(handle, buffer, 0, CHUNK, position, (err, bytesRead) => cb(err, bytesRead)));
      if (!n) break;
      hash.update(buffer.subarray(0, n));
      if (to) await to.write(buffer, 0, n, position);
      position += n;
    }
  } finally {
    await request<void>(`cannot close ${remote}`, (cb) => sftp.close(handle, (err) => cb(err)));
  }
  return { sha256: hash.digest('hex'), bytes: position };
}

async function remoteRemove(sftp: SFTPWrapper, p: string): Promise<void> {
  await request<void>(`cannot remove ${p}`, (cb) => sftp.unlink(p, (err) => cb(err)));
}

/** Puts `local` at `remote` through NAME.partial and a rename, so a dropped link never leaves a half file under the real name. */
async function uploadAtomically(sftp: SFTPWrapper, local: string, remote: string): Promise<void> {
  const partial = `${remote}.partial`;
  await upload(sftp, local, partial);
  // SFTP's rename (version 3) refuses an existing target: a re-upload replaces it.
  if (await remoteStat(sftp, remote)) await remoteRemove(sftp, remote);
  await request<void>(`cannot rename ${partial}`, (cb) => sftp.rename(partial, remote, (err) => cb(err)));
}

function archiveOf(file: string): { name: string; node: string } {
  const name = path.basename(file);
  const parsed = parseArchiveName(name);
  if (!parsed) throw new Error(`${name} is not a pve-baseline archive name (NODE-config-YYYYMMDDTHHMMSSZ.tar.gz.age)`);
  return { name, node: parsed.node };
}

export interface UploadResult {
  remotePath: string;
  sha256: string;
  bytes: number;
  /** Our older archives removed by retention (names). */
  removed: string[];
}

/**
 * Uploads the archive and its .sha256 into `dir` on the server, reads the
 * archive back and compares its SHA-256 with the local file (a copy that
 * differs is removed and the upload fails), then keeps the newest `keep` of
 * this node's archives there.
 */
export async function uploadSftp(opts: SftpTarget & { dir: string; file: string; keep: number }): Promise<UploadResult> {
  const { name, node } = archiveOf(opts.file);
  if (!Number.isInteger(opts.keep) || opts.keep < 1) throw new Error(`keep must be a whole number of at least 1, not ${opts.keep}`);
  const sha256 = await sha256File(opts.file);
  const bytes = (await fs.stat(opts.file)).size;
  const { conn, sftp } = await connectSftp(opts);
  const at = address(opts.host, opts.port ?? 22);
  try {
    await ensureRemoteDir(sftp, opts.dir || '.', at);
    const remotePath = remoteJoin(opts.dir, name);
    await uploadAtomically(sftp, opts.file, remotePath);
    // The checksum beside it, written from the local hash (not read from a file someone could have changed).
    const sumsLocal = await fs.mkdtemp(path.join(path.dirname(opts.file), '.pve-baseline-sum-'));
    try {
      const sumFile = path.join(sumsLocal, checksumName(name));
      await fs.writeFile(sumFile, sumsLine(sha256, name), { mode: 0o600 });
      await uploadAtomically(sftp, sumFile, checksumName(remotePath));
    } finally {
      await fs.rm(sumsLocal, { recursive: true, force: true });
    }
    const back = await readBack(sftp, remotePath);
    if (back.sha256 !== sha256 || back.bytes !== bytes) {
      await remoteRemove(sftp, remotePath).catch(() => undefined);
      await remoteRemove(sftp, checksumName(remotePath)).catch(() => undefined);
      throw new RemoteError(
        'verify',
        `the copy of ${name} on ${at} differs from the local file (read back ${back.bytes} bytes, SHA-256 ${back.sha256.slice(0, 12)}…; local ${bytes} bytes, ${sha256.slice(0, 12)}…): removed it there`,
      );
    }
    const names = await request<{ filename: string }[]>(`cannot list ${opts.dir} on ${at}`, (cb) => sftp.readdir(opts.dir || '.', cb));
    const removed: string[] = [];
    for (const old of beyondRetention(
      names.map((n) => n.filename),
      opts.keep,
      node,
    )) {
      await remoteRemove(sftp, remoteJoin(opts.dir, old));
      await remoteRemove(sftp, checksumName(remoteJoin(opts.dir, old))).catch(() => undefined);
      removed.push(old);
    }
    return { remotePath, sha256, bytes, removed };
  } finally {
    conn.end();
  }
}

export interface FetchResult {
  /** The downloaded archive (0600) in toDir. */
  path: string;
  name: string;
  sha256: string;
  bytes: number;
  /** Whether the server had the .sha256 and the download matches it (it is downloaded beside the archive). */
  checksumVerified: boolean;
}

/**
 * Downloads the newest archive of `node` from `dir` (and its .sha256) into
 * `toDir`, for a drill. A download that does not match the .sha256 is removed
 * and fails.
 */
export async function fetchSftp(opts: SftpTarget & { dir: string; node: string; toDir: string }): Promise<FetchResult> {
  const { conn, sftp } = await connectSftp(opts);
  const at = address(opts.host, opts.port ?? 22);
  try {
    const names = (await request<{ filename: string }[]>(`cannot list ${opts.dir} on ${at}`, (cb) => sftp.readdir(opts.dir || '.', cb))).map((n) => n.filename);
    const newest = ourArchives(names, opts.node)[0];
    if (!newest) throw new RemoteError('refused', `no archive of ${opts.node} in ${opts.dir} on ${at}`);
    const remotePath = remoteJoin(opts.dir, newest);
    await fs.mkdir(opts.toDir, { recursive: true, mode: 0o700 });
    const local = path.join(opts.toDir, newest);
    const partial = `${local}.partial`;
    const handle = await fs.open(partial, 'w', 0o600);
    let got: { sha256: string; bytes: number };
    try {
      got = await readBack(sftp, remotePath, handle);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await fs.rm(partial, { force: true });
      throw error;
    }
    await handle.close();
    let checksumVerified = false;
    if (names.includes(checksumName(newest))) {
      const sumHandle = await fs.open(`${checksumName(local)}.partial`, 'w', 0o600);
      try {
        await readBack(sftp, checksumName(remotePath), sumHandle);
      } finally {
        await sumHandle.close();
      }
      const text = await fs.readFile(`${checksumName(local)}.partial`, 'utf8');
      const recorded = /^\\?([0-9a-f]{64})\s/.exec(text)?.[1];
      if (recorded !== got.sha256) {
        await fs.rm(partial, { force: true });
        await fs.rm(`${checksumName(local)}.partial`, { force: true });
        throw new RemoteError('verify', `${newest} from ${at} does not match its .sha256 (downloaded SHA-256 ${got.sha256.slice(0, 12)}…): removed the download`);
      }
      await fs.rename(`${checksumName(local)}.partial`, checksumName(local));
      checksumVerified = true;
    }
    await fs.rename(partial, local);
    return { path: local, name: newest, sha256: got.sha256, bytes: got.bytes, checksumVerified };
  } finally {
    conn.end();
  }
}

/** One /proc/self/mountinfo line: mount point, device, type, source (proc(5)). */
interface MountEntry {
  mountPoint: string;
  device: string;
  fsType: string;
  source: string;
}

const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountEntry[] {
  return text
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => {
      const fields = line.split(' ');
      const dash = fields.indexOf('-');
      if (dash < 6 || fields.length < dash + 3) return [];
      return [{ mountPoint: unescapeMount(fields[4]!), device: fields[2]!, fsType: fields[dash + 1]!, source: unescapeMount(fields[dash + 2]!) }];
    });
}

/** The mount a path lies on: the last-mounted entry with the longest mount point that contains it. */
export function mountOf(mounts: readonly MountEntry[], p: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const inside = m.mountPoint === '/' || p === m.mountPoint || p.startsWith(`${m.mountPoint}/`);
    if (inside && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/**
 * Why `dir` is not a separate place for backups, or null. First st_dev of
 * `dir` against `/`'s (a directory on the root filesystem dies with it);
 * then /proc/self/mountinfo, because a ZFS dataset or a btrfs subvolume has a
 * device number of its own on the same disks: the same pool (ZFS) or the same
 * source device (other types) as / is refused too.
 */
export async function notSeparateMount(dir: string, opts: { rootPath?: string; mountinfoPath?: string } = {}): Promise<string | null> {
  const rootPath = opts.rootPath ?? '/';
  const [d, r] = await Promise.all([fs.stat(dir), fs.stat(rootPath)]);
  if (!d.isDirectory()) return `${dir} is not a directory`;
  if (d.dev === r.dev) return `${dir} is on the same filesystem as ${rootPath} (same st_dev ${d.dev}): mount the backup disk or share there first`;
  const text = await fs.readFile(opts.mountinfoPath ?? '/proc/self/mountinfo', 'utf8').catch(() => null);
  if (text === null) return null;
  const mounts = parseMountinfo(text);
  const mine = mountOf(mounts, await fs.realpath(dir));
  const roots = mountOf(mounts, await fs.realpath(rootPath));
  if (!mine || !roots || mine === roots) return null;
  if (mine.fsType === 'zfs' && roots.fsType === 'zfs' && mine.source.split('/')[0] === roots.source.split('/')[0]) {
    return `${dir} is the ZFS dataset ${mine.source}, in the pool ${mine.source.split('/')[0]} that holds ${rootPath} (mountinfo): use a disk or share outside it`;
  }
  if (mine.fsType === roots.fsType && mine.source === roots.source && mine.source.startsWith('/dev/')) {
    return `${dir} is on ${mine.source}, the device that holds ${rootPath} (mountinfo): use a disk or share outside it`;
  }
  return null;
}

export interface CopyResult {
  path: string;
  sha256: string;
  removed: string[];
}

/**
 * Copies the archive and its .sha256 into `dir`, which must be a mounted
 * filesystem other than the node's root (see notSeparateMount), reads the copy
 * back and compares its SHA-256, then keeps the newest `keep` of this node's
 * archives there. (The read-back may come from the page cache: it proves what
 * the filesystem holds, not yet the disk's surface.)
 */
export async function copyToPath(opts: { dir: string; file: string; keep: number; rootPath?: string; mountinfoPath?: string }): Promise<CopyResult> {
  const { name, node } = archiveOf(opts.file);
  if (!Number.isInteger(opts.keep) || opts.keep < 1) throw new Error(`keep must be a whole number of at least 1, not ${opts.keep}`);
  const refused = await notSeparateMount(opts.dir, opts).catch((error: NodeJS.ErrnoException) => `${opts.dir}: ${error.code ?? error.message}`);
  if (refused) throw new RemoteError('refused', `refusing to copy the backup to ${refused}`);
  const sha256 = await sha256File(opts.file);
  const target = path.join(opts.dir, name);
  const put = async (content: { from: string } | { text: string }, to: string) => {
    const partial = `${to}.partial`;
    await fs.rm(partial, { force: true });
    const handle = await fs.open(partial, 'wx', 0o600);
    try {
      if ('text' in content) await handle.writeFile(content.text);
      else for await (const chunk of createReadStream(content.from)) await handle.write(chunk as Buffer);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(partial, to);
  };
  await put({ from: opts.file }, target);
  await put({ text: sumsLine(sha256, name) }, checksumName(target));
  const back = await sha256File(target);
  if (back !== sha256) {
    await fs.rm(target, { force: true });
    await fs.rm(checksumName(target), { force: true });
    throw new RemoteError('verify', `the copy of ${name} in ${opts.dir} differs from the local file (SHA-256 ${back.slice(0, 12)}…, local ${sha256.slice(0, 12)}…): removed it`);
  }
  const removed: string[] = [];
  for (const old of beyondRetention(await fs.readdir(opts.dir), opts.keep, node)) {
    const st = await fs.lstat(path.join(opts.dir, old)).catch(() => null);
    if (!st?.isFile()) continue;
    await fs.rm(path.join(opts.dir, old), { force: true });
    await fs.rm(checksumName(path.join(opts.dir, old)), { force: true });
    removed.push(old);
  }
  return { path: target, sha256, removed };
}
