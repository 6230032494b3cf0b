/**
 * The human proof of a hardened sshd (lockout protocol, step 6): the
 * operator opens a second terminal and logs in as the admin with their own
 * key; we see it in the journal ("Accepted publickey for ADMIN from ADDRESS
 * port PORT ssh2: TYPE SHA256:..."), say who and from where, and only then
 * disarm the revert.
 *
 * The journal is read as JSON and only entries written by sshd itself count:
 * matched on the trusted _COMM field (sshd, OpenSSH 10's sshd-session) and
 * _UID 0, so a local user's `logger -t sshd "Accepted publickey ..."` cannot
 * fake the login and disarm the revert early.
 */
import type { Exec } from '../system/exec.ts';
import { unmapAddress } from '../pve/firewall-rules.ts';

export interface AcceptedLogin {
  user: string;
  address: string;
  port: number;
  /** publickey, password, keyboard-interactive, ... */
  method: string;
  /** As sshd prints it: ED25519, RSA, ECDSA, ED25519-SK, ECDSA-SK, ED25519-CERT ... (empty when not a key). */
  keyType: string;
  /** SHA256:... (empty when not a key) */
  fingerprint: string;
  time?: Date;
  cursor?: string;
}

const ACCEPTED =
  /\bAccepted ([a-z-]+) for (\S+) from (\S+) port (\d+)(?: ssh2)?(?:: ([A-Z0-9-]+) ((?:SHA256|MD5):[A-Za-z0-9+/:=]+))?/;

/** One "Accepted ..." message, or null. */
export function parseAcceptedLine(line: string): AcceptedLogin | null {
  const m = ACCEPTED.exec(line);
  if (!m) return null;
  return { method: m[1]!, user: m[2]!, address: m[3]!, port: Number(m[4]), keyType: m[5] ?? '', fingerprint: m[6] ?? '' };
}

/** syslog/short-iso prefix: 2026-11-22T17:47:09+00:00 or 2026-11-22T17:47:09.123456+0000 */
const ISO_PREFIX = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s/;

/** Every accepted login in journal text (`-o short-iso`, `-o cat`, or plain messages), in order. */
export function parseAcceptedLogins(journalText: string): AcceptedLogin[] {
  const out: AcceptedLogin[] = [];
  for (const line of journalText.split(/\r?\n/)) {
    const login = parseAcceptedLine(line);
    if (!login) continue;
    const iso = ISO_PREFIX.exec(line)?.[1];
    if (iso) {
      const time = new Date(iso.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
      if (!Number.isNaN(time.getTime())) login.time = time;
    }
    out.push(login);
  }
  return out;
}

/** Processes whose journal lines are sshd's own (OpenSSH 10 logs logins from sshd-session). */
export const SSHD_COMMS = ['sshd', 'sshd-session', 'sshd-auth'];

/** Accepted logins in `journalctl -o json` output, from root-owned sshd processes only. */
export function parseJournalJson(text: string): AcceptedLogin[] {
  const out: AcceptedLogin[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (entry._UID !== '0' || typeof entry._COMM !== 'string' || !SSHD_COMMS.includes(entry._COMM)) continue;
    // journald gives MESSAGE as an array of bytes when it is not valid UTF-8.
    const raw = entry.MESSAGE;
    const message = typeof raw === 'string' ? raw : Array.isArray(raw) ? Buffer.from(raw as number[]).toString('utf8') : '';
    const login = parseAcceptedLine(message);
    if (!login) continue;
    const usec = typeof entry.__REALTIME_TIMESTAMP === 'string' ? Number(entry.__REALTIME_TIMESTAMP) : NaN;
    if (Number.isFinite(usec)) login.time = new Date(Math.floor(usec / 1000));
    if (typeof entry.__CURSOR === 'string') login.cursor = entry.__CURSOR;
    out.push(login);
  }
  return out;
}

/** The journal's position now (to watch from exactly here), or null when journalctl cannot tell. */
export async function journalCursor(exec: Exec): Promise<string | null> {
  const r = await exec.run(['journalctl', '-n', '1', '-o', 'json', '--no-pager']);
  if (r.exitCode !== 0) return null;
  const lines = r.stdout.trim().split('\n').filter(Boolean);
  try {
    const entry = JSON.parse(lines.at(-1) ?? '') as { __CURSOR?: unknown };
    return typeof entry.__CURSOR === 'string' ? entry.__CURSOR : null;
  } catch {
    return null;
  }
}

export interface LoginWatchOptions {
  /** Only this account's logins count; any account's when absent. */
  user?: string;
  /** How the login must have authenticated; default publickey only (the sshd step's proof). */
  methods?: readonly string[];
  /** Only these keys count (e.g. the operator's own keys); any key when absent or empty. */
  fingerprints?: readonly string[];
  /** Never count these (the probe key). */
  excludeFingerprints?: readonly string[];
  /** Only logins from this address count (IPv4-mapped IPv6 counts as IPv4), e.g. where the operator is. */
  from?: string;
  /** From when: a time (e.g. just before the reload) or a journal cursor. */
  since: Date | { cursor: string };
  timeoutMs: number;
  signal?: AbortSignal;
  /** Default 1000 ms. */
  pollMs?: number;
}

/** argv of one poll. */
export function journalArgv(from: Date | { cursor: string }): string[] {
  const position =
    from instanceof Date
      ? // journalctl takes @SECONDS (UTC, no time zone guessing); one second early, the exact cut is made on __REALTIME_TIMESTAMP.
        [`--since=@${Math.floor(from.getTime() / 1000) - 1}`]
      : [`--after-cursor=${from.cursor}`];
  return ['journalctl', '--no-pager', '-o', 'json', ...position, ...SSHD_COMMS.map((c) => `_COMM=${c}`)];
}

function matches(login: AcceptedLogin, opts: LoginWatchOptions): boolean {
  if (!(opts.methods ?? ['publickey']).includes(login.method)) return false;
  if (opts.user !== undefined && login.user !== opts.user) return false;
  if (opts.excludeFingerprints?.includes(login.fingerprint)) return false;
  if (opts.fingerprints?.length && !opts.fingerprints.includes(login.fingerprint)) return false;
  if (opts.from !== undefined && unmapAddress(login.address) !== unmapAddress(opts.from)) return false;
  if (opts.since instanceof Date && login.time && login.time.getTime() < opts.since.getTime()) return false;
  return true;
}

/**
 * Poll the journal until the admin logs in with a key (not an excluded one)
 * after `since`; resolve with who, from where and with which key, or null on
 * timeout or abort.
 */
export async function watchForLogin(exec: Exec, opts: LoginWatchOptions): Promise<AcceptedLogin | null> {
  const deadline = Date.now() + opts.timeoutMs;
  const pollMs = opts.pollMs ?? 1000;
  let from: Date | { cursor: string } = opts.since;
  while (!opts.signal?.aborted) {
    const r = await exec.run(journalArgv(from), { timeoutMs: 10_000 });
    // journalctl exits 1 with "-- No entries --"-style output on some versions; only stdout matters.
    const logins = parseJournalJson(r.stdout);
    const found = logins.find((l) => matches(l, opts));
    if (found) return found;
    // Read on from the last entry seen, so each poll reads only what is new.
    const lastCursor = lastCursorIn(r.stdout);
    if (lastCursor) from = { cursor: lastCursor };
    const left = deadline - Date.now();
    if (left <= 0) return null;
    await sleep(Math.min(pollMs, left), opts.signal);
  }
  return null;
}

function lastCursorIn(text: string): string | null {
  const lines = text.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const c = (JSON.parse(lines[i]!) as { __CURSOR?: unknown }).__CURSOR;
      if (typeof c === 'string') return c;
    } catch {
      // not JSON
    }
  }
  return null;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** "alice from 10.77.7.1 (port 50412) with ED25519 key SHA256:..." */
export function describeLogin(l: AcceptedLogin): string {
  const key = l.fingerprint ? ` with ${l.keyType} key ${l.fingerprint}` : ` with ${l.method}`;
  return `${l.user} from ${l.address} (port ${l.port})${key}${l.time ? ` at ${l.time.toISOString()}` : ''}`;
}
