/**
 * The automatic proof of a hardened sshd (lockout protocol, step 5): log in
 * to the node's own address as the admin with an ephemeral probe key, and
 * show that root and password logins are refused, that publickey is the only
 * method offered, and that the server's algorithms are inside the chosen
 * lists.
 *
 * The probe key is made here (ssh2's generator, loaded lazily through
 * loadSsh2), installed by the step as one authorized_keys line restricted
 * with from=, restrict and a forced /bin/true, and removed again by its
 * comment. The OpenSSH client needs the private key in a file: it lives in
 * the state directory's own 0700 area (probeKeyDir) only while the client
 * runs, and whatever a killed run left there goes at the next probe and
 * with the revert's cleanup.
 *
 * ssh2 speaks no post-quantum key exchange (no mlkem768x25519-sha256, no
 * sntrup761x25519-sha512). Against a server whose KexAlgorithms holds only
 * those (the strict profile) it cannot even finish the handshake; probe()
 * says so as its own outcome, and probeWithOpenSsh() gives the same proof
 * with the installed OpenSSH client instead.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Check } from '../engine/step.ts';
import type { Exec } from '../system/exec.ts';
import { stateDir } from '../engine/journal.ts';
import { fingerprintOf, generateKeyPair } from './keys.ts';
import { loadSsh2 } from './ssh2.ts';

export const PROBE_COMMENT = 'pve-baseline-probe';

/**
 * authorized_keys options of the probe line; all known to OpenSSH 10 (sshd(8), AUTHORIZED_KEYS FILE FORMAT).
 * `restrict` turns off every forwarding, the terminal and ~/.ssh/rc, and whatever later OpenSSH versions add to it.
 */
export const PROBE_OPTIONS = ['restrict', 'command="/bin/true"'];

/** Where the OpenSSH probe keeps its private key while the client runs: inside the state directory, mode 0700. */
export function probeKeyDir(state: string = stateDir()): string {
  return path.join(state, 'probe-keys');
}

/** Remove every probe key a killed run may have left (the revert's cleanup and each new probe do this). */
export async function removeProbeKeys(dir: string = probeKeyDir()): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}

export interface ProbeKey {
  /** OpenSSH private key (PEM-like text); keep it in memory, or in a 0600 file only as long as needed. */
  privateKey: string;
  /** `ssh-ed25519 AAAA... pve-baseline-probe` */
  publicKey: string;
  /** SHA256:... as sshd logs it. */
  fingerprint: string;
}

/** A fresh ed25519 key pair for one probe; never written to the node except as the public line. */
export async function makeProbeKey(): Promise<ProbeKey> {
  // Checked: ssh2's generator sometimes writes a malformed ed25519 key (see generateKeyPair).
  const pair = await generateKeyPair('ed25519', { comment: PROBE_COMMENT });
  const publicKey = pair.public.trim();
  const blob = Buffer.from(publicKey.split(/\s+/)[1] ?? '', 'base64');
  return { privateKey: pair.private, publicKey, fingerprint: fingerprintOf(blob) };
}

/**
 * The line to append to the admin's authorized_keys: usable only from
 * `fromAddress`, only to run /bin/true, with no terminal and no forwarding
 * (`restrict`).
 */
export function probeKeyLine(publicKey: string, fromAddress: string): string {
  if (!/^[0-9A-Fa-f.:/*?!,]+$/.test(fromAddress)) throw new Error(`probe key: not an address pattern: ${fromAddress}`);
  const [type, base64] = publicKey.trim().split(/\s+/);
  if (!type || !base64) throw new Error('probe key: not a public key line');
  return `from="${fromAddress}",${PROBE_OPTIONS.join(',')} ${type} ${base64} ${PROBE_COMMENT}`;
}

/** authorized_keys content without our probe line(s) (found by their comment); everything else byte for byte. */
export function withoutProbeKey(content: string): string {
  const isProbe = (line: string) => {
    const t = line.trim();
    return t !== '' && !t.startsWith('#') && t.split(/\s+/).at(-1) === PROBE_COMMENT;
  };
  const lines = content.split('\n');
  return lines.filter((l) => !isProbe(l)).join('\n');
}

// ---------------------------------------------------------------------------
// the probe with ssh2

export interface ExpectedAlgorithms {
  kex: readonly string[];
  ciphers: readonly string[];
  macs: readonly string[];
  hostKeys: readonly string[];
}

/** What both probes (ssh2 and the OpenSSH client) are given. */
interface ProbeTarget {
  host: string;
  port?: number;
  admin: string;
  /** The probe key's private key (OpenSSH format). */
  privateKey: string;
  expect: ExpectedAlgorithms;
  /** Per connection; default 15 s. */
  timeoutMs?: number;
}

export interface ProbeOptions extends ProbeTarget {
  /** Optional host key check (the raw key blob); the probe talks to the node's own address, so it is off by default. */
  hostVerifier?: (key: Buffer) => boolean;
}

export type ProbeOutcome =
  /** Every connection was made; the checks say what was found. */
  | 'done'
  /** ssh2 shares no key exchange with the server (post-quantum only): use probeWithOpenSsh. */
  | 'ssh2-cannot-negotiate'
  /** No SSH server answered. */
  | 'unreachable';

export interface ProbeResult {
  outcome: ProbeOutcome;
  checks: Check[];
  /** Why the outcome is not 'done', for the operator. */
  reason?: string;
  /** The server's own lists, as it offered them in its KEXINIT. */
  offered?: Partial<Record<'kex' | 'hostKeys' | 'ciphers' | 'macs', string[]>>;
}

/** Pseudo-algorithms OpenSSH puts in its KEX list to announce extensions. */
const KEX_MARKERS = /^(ext-info-[cs]|kex-strict-[cs]-v00@openssh\.com)$/;

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Matches every name not in the list: ssh2 offers those first, so a server that accepts any of them is caught. */
const notIn = (list: readonly string[]) => new RegExp(`^(?!(?:${list.map(escapeRe).join('|') || '(?!)'})$)`);

interface Attempt {
  /** Methods the server listed after the 'none' attempt (null: it accepted 'none' or never answered). */
  methods: string[] | null;
  /** Method that authenticated, or null. */
  authenticatedWith: string | null;
  error?: { level?: string; message: string };
  negotiated?: Negotiated;
  offered: NonNullable<ProbeResult['offered']>;
  /** Exit code of /bin/true (the forced command) when a session ran. */
  exitCode?: number | null;
}

interface Negotiated {
  kex: string;
  serverHostKey: string;
  cs: { cipher: string; mac: string };
  sc: { cipher: string; mac: string };
}

/**
 * One connection: try 'none' (to read the offered methods), then `then`
 * (publickey or password), then give up. Runs /bin/true when authenticated.
 */
async function attempt(
  opts: ProbeOptions,
  user: string,
  then: { type: 'publickey'; key: string } | { type: 'password'; password: string },
): Promise<Attempt> {
  const { Client } = await loadSsh2();
  const result: Attempt = { methods: null, authenticatedWith: null, offered: {} };
  // Every algorithm ssh2 has that is not a chosen one goes first, so the server picks it if it accepts it.
  // ssh2 1.17's regexp prepend also tests `undefined` (it reads one past its list): never match that.
  const order = (wanted: readonly string[]) => ({ remove: notIn(wanted), prepend: notIn([...wanted, 'undefined']) });
  const algos = {
    kex: order(opts.expect.kex),
    serverHostKey: order(opts.expect.hostKeys),
    cipher: order(opts.expect.ciphers),
    hmac: order(opts.expect.macs),
  };
  const debug = (line: string) => {
    const m = /^Handshake: \(remote\) (KEX method|Host key format|C->S cipher|C->S MAC): (.*)$/.exec(line);
    if (!m) return;
    const list = m[2]!.split(',').filter((a) => a && !KEX_MARKERS.test(a));
    const key = ({ 'KEX method': 'kex', 'Host key format': 'hostKeys', 'C->S cipher': 'ciphers', 'C->S MAC': 'macs' } as const)[m[1] as 'KEX method'];
    result.offered[key] = list;
  };
  return new Promise<Attempt>((resolve) => {
    const conn = new Client();
    let settled = false;
    let tried = 0;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.end();
      resolve(result);
    };
    const timeoutMs = opts.timeoutMs ?? 15_000;
    const timer = setTimeout(() => {
      result.error ??= { level: 'client-timeout', message: `no answer within ${timeoutMs / 1000} s` };
      finish();
    }, timeoutMs);
    conn.on('handshake', (n: Negotiated) => {
      result.negotiated = n;
    });
    conn.on('ready', () => {
      result.authenticatedWith = tried === 1 ? 'none' : then.type;
      conn.exec('/bin/true', (err, stream) => {
        if (err) {
          result.error = { level: 'session', message: err.message };
          finish();
          return;
        }
        stream.on('exit', (code: number | null) => {
          result.exitCode = code;
        });
        stream.on('close', finish);
        stream.resume();
        stream.stderr.resume();
        stream.end();
      });
    });
    conn.on('error', (e: Error & { level?: string }) => {
      result.error ??= { ...(e.level ? { level: e.level } : {}), message: e.message };
      finish();
    });
    conn.on('close', finish);
    try {
      conn.connect({
        host: opts.host,
        port: opts.port ?? 22,
        username: user,
        readyTimeout: timeoutMs,
        hostVerifier: opts.hostVerifier ?? (() => true),
        algorithms: algos as never,
        debug,
        authHandler: (methodsLeft, _partial, next) => {
          tried++;
          if (tried === 1) return next({ type: 'none', username: user });
          if (tried === 2) {
            result.methods = methodsLeft ?? [];
            if (then.type === 'publickey') return next({ type: 'publickey', username: user, key: then.key });
            return next({ type: 'password', username: user, password: then.password });
          }
          return next(false as never);
        },
      });
    } catch (e) {
      result.error = { level: 'config', message: (e as Error).message };
      finish();
    }
  });
}

const list = (a: readonly string[] | undefined) => (a && a.length ? a.join(', ') : '(none)');

function algorithmChecks(a: Attempt, expect: ExpectedAlgorithms): Check[] {
  const n = a.negotiated;
  const within = (label: string, used: string[], offered: string[] | undefined, wanted: readonly string[]): Check => {
    const outsideUsed = used.filter((u) => u && !wanted.includes(u));
    const outsideOffered = (offered ?? []).filter((o) => !wanted.includes(o));
    const ok = !!n && outsideUsed.length === 0 && outsideOffered.length === 0;
    const detail = !n
      ? 'no handshake'
      : `negotiated ${used.filter(Boolean).join(' / ') || '(implicit)'}; server offers ${list(offered)}` +
        (outsideOffered.length ? `; not in the chosen list: ${outsideOffered.join(', ')}` : '');
    return { label, ok, detail };
  };
  return [
    within('key exchange is one of the chosen', n ? [n.kex] : [], a.offered.kex, expect.kex),
    within('host key algorithm is one of the chosen', n ? [n.serverHostKey] : [], a.offered.hostKeys, expect.hostKeys),
    within('cipher is one of the chosen', n ? [n.cs.cipher, n.sc.cipher] : [], a.offered.ciphers, expect.ciphers),
    // AEAD ciphers (chacha20-poly1305, aes-gcm) carry their own MAC: ssh2 reports ''.
    within('MAC is one of the chosen', n ? [n.cs.mac, n.sc.mac] : [], a.offered.macs, expect.macs),
  ];
}

const failed = (a: Attempt) => a.error?.message ?? 'no error';

/**
 * The automatic proof with ssh2. Three connections: the admin with the probe
 * key (after a 'none' attempt that reads the offered methods), root with a
 * dummy password, the admin with a dummy password.
 */
export async function probe(opts: ProbeOptions): Promise<ProbeResult> {
  const dummy = `pve-baseline-probe-${Math.random().toString(36).slice(2)}`;
  const admin = await attempt(opts, opts.admin, { type: 'publickey', key: opts.privateKey });
  if (!admin.negotiated && admin.error?.level === 'handshake' && /key exchange/.test(admin.error.message)) {
    return {
      outcome: 'ssh2-cannot-negotiate',
      checks: [],
      offered: admin.offered,
      reason:
        `the server offers only ${list(admin.offered.kex)} for key exchange; ssh2 cannot negotiate these ` +
        '(post-quantum key exchange), so the automatic proof uses the OpenSSH client instead',
    };
  }
  if (!admin.negotiated) {
    return { outcome: 'unreachable', checks: [], offered: admin.offered, reason: `ssh ${opts.host}:${opts.port ?? 22}: ${failed(admin)}` };
  }
  const root = await attempt(opts, 'root', { type: 'password', password: dummy });
  const adminPw = await attempt(opts, opts.admin, { type: 'password', password: dummy });
  const checks: Check[] = [];
  checks.push({
    label: `${opts.admin} logs in with a key`,
    ok: admin.authenticatedWith === 'publickey' && admin.exitCode === 0,
    detail:
      admin.authenticatedWith === 'publickey'
        ? `authenticated with publickey; the session ran /bin/true (exit ${admin.exitCode ?? 'none'})`
        : `refused: ${failed(admin)}`,
  });
  const methods = admin.methods ?? [];
  checks.push({
    label: 'publickey is the only authentication method offered',
    ok: admin.authenticatedWith !== 'none' && methods.length === 1 && methods[0] === 'publickey',
    detail: admin.authenticatedWith === 'none' ? 'the server let the admin in without authentication' : `the server offers: ${list(methods)}`,
  });
  const refused = (a: Attempt, who: string): Check => ({
    label: `${who} cannot log in with a password`,
    ok: a.authenticatedWith === null && a.error?.level === 'client-authentication',
    detail:
      a.authenticatedWith !== null
        ? `LOGGED IN (with ${a.authenticatedWith})`
        : a.error?.level === 'client-authentication'
          ? `refused; the server offers ${list(a.methods ?? [])}`
          : `no answer to judge: ${failed(a)}`,
  });
  checks.push(refused(root, 'root'), refused(adminPw, opts.admin));
  checks.push(...algorithmChecks(admin, opts.expect));
  return { outcome: 'done', checks, offered: admin.offered };
}

// ---------------------------------------------------------------------------
// the probe with the OpenSSH client

export interface OpenSshProbeOptions extends ProbeTarget {
  /** The ssh binary; default `ssh` from PATH. */
  ssh?: string;
  /** Where the private key file lives while the client runs; default probeKeyDir(). */
  keyDir?: string;
}

export interface SshVerbose {
  kex?: string;
  hostKey?: string;
  /** client->server and server->client */
  ciphers: string[];
  /** '<implicit>' for AEAD ciphers */
  macs: string[];
  /** The last "Authentications that can continue:" list. */
  methods: string[] | null;
  /** "Authenticated to ... using "publickey"." / "Authentication succeeded (publickey)." */
  authenticatedWith: string | null;
}

/** Read what `ssh -v` printed about the negotiation and the authentication. */
export function parseSshVerbose(text: string): SshVerbose {
  const out: SshVerbose = { ciphers: [], macs: [], methods: null, authenticatedWith: null };
  for (const line of text.split(/\r?\n/)) {
    let m: RegExpExecArray | null;
    if ((m = /debug1: kex: algorithm: (\S+)/.exec(line))) out.kex = m[1]!;
    else if ((m = /debug1: kex: host key algorithm: (\S+)/.exec(line))) out.hostKey = m[1]!;
    else if ((m = /debug1: kex: (?:client->server|server->client) cipher: (\S+) MAC: (\S+)/.exec(line))) {
      out.ciphers.push(m[1]!);
      out.macs.push(m[2]!);
    } else if ((m = /Authentications that can continue: (\S*)/.exec(line))) out.methods = m[1]!.split(',').filter(Boolean);
    else if ((m = /Authentication succeeded \(([^)]+)\)/.exec(line))) out.authenticatedWith = m[1]!;
    else if ((m = /Authenticated to .* using "([^"]+)"/.exec(line))) out.authenticatedWith = m[1]!;
  }
  return out;
}

/**
 * Write the probe's private key to a 0600 file in `keyDir` (a 0700 directory
 * of this user, made fresh: what a killed run left there goes first), run
 * `use`, delete the file and its directory whatever happens.
 */
async function withKeyFile<T>(privateKey: string, keyDir: string, use: (file: string) => Promise<T>): Promise<T> {
  await removeProbeKeys(keyDir);
  await fs.mkdir(keyDir, { recursive: true, mode: 0o700 });
  const st = await fs.lstat(keyDir);
  if (!st.isDirectory() || st.uid !== process.geteuid?.() || (st.mode & 0o077) !== 0) {
    throw new Error(`the probe key directory ${keyDir} must be a directory of this user with mode 0700; it is not, so no key is written there`);
  }
  const dir = await fs.mkdtemp(path.join(keyDir, 'probe-'));
  const file = path.join(dir, 'id_ed25519');
  try {
    await fs.writeFile(file, privateKey.endsWith('\n') ? privateKey : `${privateKey}\n`, { mode: 0o600, flag: 'wx' });
    return await use(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * The same proof with the OpenSSH client (`ssh -v`, argv only, no config
 * file): the admin logs in with the probe key; the methods offered to the
 * admin and to root without a key are publickey only (BatchMode never
 * prompts, so no password is ever sent); the negotiated algorithms are
 * inside the chosen lists.
 */
export async function probeWithOpenSsh(exec: Exec, opts: OpenSshProbeOptions): Promise<ProbeResult> {
  const timeoutS = Math.max(1, Math.round((opts.timeoutMs ?? 15_000) / 1000));
  const base = [
    opts.ssh ?? 'ssh',
    '-F', '/dev/null',
    '-v',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'LogLevel=VERBOSE',
    '-o', `ConnectTimeout=${timeoutS}`,
    '-o', 'IdentityAgent=none',
    '-p', String(opts.port ?? 22),
  ];
  const target = (user: string) => `${user}@${opts.host}`;
  return withKeyFile(opts.privateKey, opts.keyDir ?? probeKeyDir(), async (keyFile) => {
    const runOpts = { timeoutMs: (opts.timeoutMs ?? 15_000) + 5_000 };
    const admin = await exec.run(
      [...base, '-o', 'IdentitiesOnly=yes', '-o', 'PreferredAuthentications=publickey', '-i', keyFile, '--', target(opts.admin), 'true'],
      runOpts,
    );
    const a = parseSshVerbose(`${admin.stderr}\n${admin.stdout}`);
    if (admin.notFound) return { outcome: 'unreachable', checks: [], reason: 'the OpenSSH client (ssh) is not installed' };
    if (!a.kex) {
      const last = admin.stderr.trim().split('\n').filter((l) => !l.startsWith('debug')).at(-1) ?? `exit ${admin.exitCode}`;
      return { outcome: 'unreachable', checks: [], reason: `ssh ${opts.host}:${opts.port ?? 22}: ${last}` };
    }
    // No key at all: the server answers with the methods it offers and BatchMode sends nothing else.
    const noKey = ['-o', 'PubkeyAuthentication=no', '-o', 'IdentitiesOnly=yes', '-o', 'PreferredAuthentications=password,keyboard-interactive'];
    const rootRun = await exec.run([...base, ...noKey, '--', target('root'), 'true'], runOpts);
    const adminPwRun = await exec.run([...base, ...noKey, '--', target(opts.admin), 'true'], runOpts);
    const r = parseSshVerbose(rootRun.stderr);
    const p = parseSshVerbose(adminPwRun.stderr);
    const checks: Check[] = [];
    checks.push({
      label: `${opts.admin} logs in with a key`,
      ok: a.authenticatedWith === 'publickey' && admin.exitCode === 0,
      detail: a.authenticatedWith ? `authenticated with ${a.authenticatedWith}; exit ${admin.exitCode}` : `refused (exit ${admin.exitCode})`,
    });
    checks.push({
      label: 'publickey is the only authentication method offered',
      ok: a.methods !== null && a.methods.length === 1 && a.methods[0] === 'publickey',
      detail: `the server offers: ${list(a.methods ?? [])}`,
    });
    const refused = (v: SshVerbose, exitCode: number, who: string): Check => ({
      label: `${who} cannot log in with a password`,
      ok: v.authenticatedWith === null && exitCode !== 0 && v.methods !== null && !v.methods.includes('password') && !v.methods.includes('keyboard-interactive'),
      detail: v.authenticatedWith ? `LOGGED IN (with ${v.authenticatedWith})` : `refused; the server offers ${list(v.methods ?? [])}`,
    });
    checks.push(refused(r, rootRun.exitCode, 'root'), refused(p, adminPwRun.exitCode, opts.admin));
    const within = (label: string, used: string[], wanted: readonly string[]): Check => {
      const outside = used.filter((u) => u !== '<implicit>' && !wanted.includes(u));
      return { label, ok: used.length > 0 && outside.length === 0, detail: `negotiated ${used.join(' / ') || '(nothing)'}` };
    };
    checks.push(
      within('key exchange is one of the chosen', a.kex ? [a.kex] : [], opts.expect.kex),
      within('host key algorithm is one of the chosen', a.hostKey ? [a.hostKey] : [], opts.expect.hostKeys),
      within('cipher is one of the chosen', a.ciphers, opts.expect.ciphers),
      within('MAC is one of the chosen', a.macs, opts.expect.macs),
    );
    return { outcome: 'done', checks };
  });
}
