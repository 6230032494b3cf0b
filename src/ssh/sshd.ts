/**
 * The sshd settings model: what pve-baseline wants (an intent), the ordered
 * settings it implies (each with its reason and its Proxmox exception), the
 * drop-in file that carries them, and the readers that prove they are in
 * force: `sshd -T` (the effective configuration) and the config files
 * themselves (which file wins a keyword, which Match block overrides it).
 *
 * Semantics this relies on (OpenSSH servconf.c, Debian's packaging):
 * - For most keywords sshd keeps the FIRST value it reads.
 * - Debian's /etc/ssh/sshd_config starts with
 *   `Include /etc/ssh/sshd_config.d/*.conf`: drop-ins are read before the main
 *   file's own settings, in lexical (glob) order.
 * - AllowUsers, AllowGroups, DenyUsers, DenyGroups, AcceptEnv, HostKey,
 *   ListenAddress and Port accumulate over every line instead.
 * - A Match block lasts until the next Match line or the end of the file it
 *   is in (an included file's Match ends with that file). For a connection
 *   it matches, its values override the global ones wherever it is, so a
 *   Match block in any file can undo a global setting.
 */
import type { Exec } from '../system/exec.ts';
import type { Files } from '../system/files.ts';
import { cryptoLists, versionAtLeast, SSHD, type CryptoProfile, type SupportedAlgorithms } from './sshd-crypto.ts';

export { readSupported, cryptoLists, STRICT_CLIENT_CAVEATS, type SupportedAlgorithms, type CryptoProfile } from './sshd-crypto.ts';

export const DROP_IN = '/etc/ssh/sshd_config.d/00-pve-baseline.conf';
export const MAIN_CONFIG = '/etc/ssh/sshd_config';

export type RootPolicy = 'prohibit-password' | { no: true; matchAddresses: string[] };

export interface SshdLimits {
  maxAuthTries: number;
  /** Seconds. */
  loginGraceTime: number;
  /** Seconds. */
  clientAliveInterval: number;
  clientAliveCountMax: number;
}

/** Lynis SSH-7408 "good" thresholds. */
export const DEFAULT_LIMITS: SshdLimits = { maxAuthTries: 3, loginGraceTime: 30, clientAliveInterval: 300, clientAliveCountMax: 2 };

export interface SshdIntent {
  /** The admin account(s) that must keep SSH access. */
  admins: string[];
  /**
   * AllowUsers (names are users; the admins and root are added) or
   * AllowGroups (names are groups, e.g. "sudo"; group root is added so that
   * root, whose primary group it is, keeps cluster SSH).
   */
  allow: { mode: 'users' | 'groups'; names: string[] };
  root: RootPolicy;
  profile: CryptoProfile;
  limits?: Partial<SshdLimits>;
}

export interface SshdSetting {
  keyword: string;
  value: string;
  reason: string;
  proxmoxNote?: string;
  /** Set inside `Match <match>` rather than globally (e.g. "Address 10.0.0.0/24"). */
  match?: string;
  /** Not written: left at OpenSSH's default on purpose; shown and checked, but only as advice. */
  leaveDefault?: boolean;
}

const USER_NAME = /^[a-z_][a-z0-9_.-]*\$?$/i;
const ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?|[0-9a-f:]+(\/\d{1,3})?)$/i;

/** Problems with an intent (empty when fine). */
export function validateIntent(intent: SshdIntent): string[] {
  const problems: string[] = [];
  if (intent.admins.length === 0) problems.push('at least one admin account must keep SSH access');
  for (const n of [...intent.admins, ...intent.allow.names]) if (!USER_NAME.test(n)) problems.push(`"${n}" is not a valid user or group name`);
  if (intent.allow.mode === 'groups' && intent.allow.names.length === 0) problems.push('AllowGroups needs at least one group (e.g. sudo) that the admins are in');
  if (intent.root !== 'prohibit-password') {
    if (intent.root.matchAddresses.length === 0) problems.push('PermitRootLogin no needs the cluster and management networks that keep key-only root access');
    for (const a of intent.root.matchAddresses) if (!ADDRESS.test(a)) problems.push(`"${a}" is not an address or CIDR network`);
  }
  return problems;
}

const unique = (xs: string[]) => [...new Set(xs)];

function allowSetting(intent: SshdIntent): SshdSetting {
  const rootNo = intent.root !== 'prohibit-password';
  if (intent.allow.mode === 'groups') {
    return {
      keyword: 'AllowGroups',
      value: unique([...intent.allow.names, 'root']).join(' '),
      reason: `Only members of ${intent.allow.names.join(', ')} may log in; every other account is refused before authentication.`,
      proxmoxNote: 'Group root is included: root (whose primary group it is) must keep SSH for cluster operations (migration, replication, pvecm, the web shell on other nodes).',
    };
  }
  const roots = rootNo ? (intent.root as { matchAddresses: string[] }).matchAddresses.map((a) => `root@${a}`) : ['root'];
  return {
    keyword: 'AllowUsers',
    value: unique([...intent.admins, ...intent.allow.names, ...roots]).join(' '),
    reason: 'Only these accounts may log in; every other account is refused before authentication.',
    proxmoxNote: rootNo
      ? 'root is allowed from the cluster and management networks only: clusters need root SSH between nodes (migration, replication, pvecm).'
      : 'root stays allowed (with keys only): clusters need root SSH between nodes (migration, replication, pvecm).',
  };
}

/**
 * The settings an intent implies, in file order: authentication, who may
 * log in, limits, forwarding and environment, logging, crypto, then the
 * Match block settings (always last).
 */
export function intentSettings(intent: SshdIntent, supported: SupportedAlgorithms): SshdSetting[] {
  const problems = validateIntent(intent);
  if (problems.length) throw new Error(`sshd intent: ${problems.join('; ')}`);
  const crypto = cryptoLists(intent.profile, supported);
  if (!crypto.ok) throw new Error(crypto.reason);
  const limits = { ...DEFAULT_LIMITS, ...intent.limits };
  const rootNo = intent.root !== 'prohibit-password';
  // KbdInteractiveAuthentication replaced ChallengeResponseAuthentication in OpenSSH 8.7.
  const kbd = supported.version && !versionAtLeast(supported.version, 8, 7) ? 'ChallengeResponseAuthentication' : 'KbdInteractiveAuthentication';
  const settings: SshdSetting[] = [
    { keyword: 'PubkeyAuthentication', value: 'yes', reason: 'Public-key authentication is the one way in.' },
    { keyword: 'PasswordAuthentication', value: 'no', reason: 'No passwords over SSH: they can be guessed, phished and reused; keys cannot.' },
    { keyword: kbd, value: 'no', reason: 'No keyboard-interactive (PAM) prompts either: that is a password login by another name.' },
    { keyword: 'PermitEmptyPasswords', value: 'no', reason: 'An account without a password never logs in over SSH.' },
    {
      keyword: 'AuthenticationMethods',
      value: 'publickey',
      reason: 'Only a public key completes authentication, even if another file re-enables passwords.',
    },
    rootNo
      ? {
          keyword: 'PermitRootLogin',
          value: 'no',
          reason: 'root cannot log in over SSH from anywhere but the networks in the Match block below; admins use their own account and sudo.',
          proxmoxNote: 'Clusters need root SSH between nodes, so root keeps key-only access from the cluster and management networks (Match Address below).',
        }
      : {
          keyword: 'PermitRootLogin',
          value: 'prohibit-password',
          reason: 'root may log in with a key only, never with a password.',
          proxmoxNote: 'Not "no": clusters need root SSH between nodes (migration, replication, pvecm, the web shell on other nodes).',
        },
    allowSetting(intent),
    {
      keyword: 'MaxAuthTries',
      value: String(limits.maxAuthTries),
      reason: `At most ${limits.maxAuthTries} authentication attempts per connection (Lynis: 3 or fewer is good).`,
      proxmoxNote: 'A client offering many agent keys may hit the limit before the right one: use IdentitiesOnly or -i. Cluster SSH uses one key.',
    },
    {
      keyword: 'LoginGraceTime',
      value: String(limits.loginGraceTime),
      reason: `An unauthenticated connection is dropped after ${limits.loginGraceTime} seconds (default 120), so half-open logins cannot pile up.`,
    },
    {
      keyword: 'ClientAliveInterval',
      value: String(limits.clientAliveInterval),
      reason: `sshd checks an idle client every ${limits.clientAliveInterval} seconds (Lynis: 300 or less is good).`,
    },
    {
      keyword: 'ClientAliveCountMax',
      value: String(limits.clientAliveCountMax),
      reason: `A client that misses ${limits.clientAliveCountMax} checks is disconnected: dead sessions end after ${(limits.clientAliveInterval * limits.clientAliveCountMax) / 60} minutes; live idle ones stay.`,
    },
    { keyword: 'X11Forwarding', value: 'no', reason: 'No X11 forwarding: a server has no display, and a forwarded X server exposes the client.' },
    {
      keyword: 'AllowAgentForwarding',
      value: 'no',
      reason: "No agent forwarding: root on this node could use a forwarded agent to log in anywhere as you. Use ProxyJump instead.",
    },
    { keyword: 'PermitUserEnvironment', value: 'no', reason: 'Users cannot set environment variables (LD_PRELOAD, ...) through ~/.ssh/environment.' },
    { keyword: 'LogLevel', value: 'VERBOSE', reason: 'VERBOSE logs the fingerprint of the key used for each login: the audit trail names the key, not only the account.' },
    {
      keyword: 'AllowTcpForwarding',
      value: 'yes',
      leaveDefault: true,
      reason: 'left at the default (yes).',
      proxmoxNote: 'Live migration and tools that tunnel VNC/SPICE through SSH need TCP forwarding; "no" breaks them.',
    },
    {
      keyword: 'DisableForwarding',
      value: 'no',
      leaveDefault: true,
      reason: 'left at the default (no).',
      proxmoxNote: 'DisableForwarding yes (CIS) also disables TCP forwarding and breaks SSH-tunnelled live migration.',
    },
    ...crypto.settings,
  ];
  if (rootNo) {
    const addresses = (intent.root as { matchAddresses: string[] }).matchAddresses;
    settings.push({
      keyword: 'PermitRootLogin',
      value: 'prohibit-password',
      match: `Address ${addresses.join(',')}`,
      reason: 'From the cluster and management networks root may log in with a key (never a password).',
      proxmoxNote: 'Cluster nodes connect to each other as root with keys (/etc/pve/priv/authorized_keys): migration, replication, pvecm, the web shell.',
    });
  }
  return settings;
}

// --- the drop-in ------------------------------------------------------------

function wrap(text: string, prefix: string, width = 78): string[] {
  const out: string[] = [];
  let line = prefix;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line.length > prefix.length && line.length + 1 + word.length > width) {
      out.push(line);
      line = prefix + word;
    } else {
      line = line.length > prefix.length ? `${line} ${word}` : prefix + word;
    }
  }
  if (line.length > prefix.length) out.push(line);
  return out;
}

function describe(setting: SshdSetting, indent = ''): string[] {
  const out = wrap(setting.reason, `${indent}# `);
  if (setting.proxmoxNote) out.push(...wrap(`Proxmox: ${setting.proxmoxNote}`, `${indent}# `));
  return out;
}

const HEADER = [
  '# Managed by pve-baseline (sshd hardening). Change it through pve-baseline:',
  '# a hand edit is reported as drift and reverted by "pve-baseline revert".',
  '#',
  '# Why "00-": for most keywords sshd keeps the FIRST value it reads. Debian\'s',
  '# /etc/ssh/sshd_config begins with "Include /etc/ssh/sshd_config.d/*.conf", so',
  '# drop-ins are read before the main file\'s own settings, in lexical order;',
  '# 00- puts this file ahead of the others (e.g. cloud-init\'s 50-cloud-init.conf,',
  '# which sets PasswordAuthentication yes). A file that sorts before this one',
  '# would win; pve-baseline compares "sshd -T" with these values before every',
  '# reload and names the file that wins.',
  '#',
  '# Match blocks come last: a Match block lasts until the next Match or the end',
  '# of the file, so a global setting after one would apply to the match only.',
];

/** The drop-in's text: deterministic, one reasoned setting after another, Match blocks last. */
export function renderDropIn(settings: SshdSetting[], intent: SshdIntent): string {
  const out = [...HEADER, `# Profile: ${intent.profile}.`];
  const global = settings.filter((s) => !s.match);
  for (const s of global) {
    out.push('');
    if (s.leaveDefault) {
      out.push(...wrap(`${s.keyword} is not set here: ${s.reason}`, '# '));
      if (s.proxmoxNote) out.push(...wrap(`Proxmox: ${s.proxmoxNote}`, '# '));
      continue;
    }
    out.push(...describe(s));
    out.push(`${s.keyword} ${s.value}`);
  }
  const blocks = unique(settings.filter((s) => s.match).map((s) => s.match!));
  for (const match of blocks) {
    out.push('', `Match ${match}`);
    for (const s of settings.filter((x) => x.match === match)) {
      out.push(...describe(s, '    '));
      out.push(`    ${s.keyword} ${s.value}`);
    }
  }
  return `${out.join('\n')}\n`;
}

// --- sshd -T ----------------------------------------------------------------

/** Keywords whose sshd -T value is a space-separated list (one line or several). */
const SPACE_LISTS = new Set([
  'allowusers',
  'allowgroups',
  'denyusers',
  'denygroups',
  'acceptenv',
  'authorizedkeysfile',
  'authenticationmethods',
  'permitopen',
  'permitlisten',
  'setenv',
  'channeltimeout',
]);

/** Keywords that accumulate over all lines (in files and in sshd -T). */
export const ACCUMULATING = new Set(['allowusers', 'allowgroups', 'denyusers', 'denygroups', 'acceptenv', 'hostkey', 'listenaddress', 'port', 'include']);

export type Effective = Map<string, string[]>;

/** `sshd -T` output -> keyword (lowercase) -> values (several lines and space lists become several values). */
export function parseSshdT(text: string): Effective {
  const map: Effective = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const keyword = m[1]!.toLowerCase();
    const rest = m[2]!.trim();
    const values = SPACE_LISTS.has(keyword) ? rest.split(/\s+/).filter(Boolean) : [rest];
    map.set(keyword, [...(map.get(keyword) ?? []), ...values]);
  }
  return map;
}

/** A connection for `sshd -T -C`, so that Match blocks are evaluated. */
export interface ConnectionSpec {
  user: string;
  addr: string;
  host?: string;
  laddr?: string;
  lport?: number;
}

export type EffectiveResult = { ok: true; effective: Effective } | { ok: false; error: string };

/** The effective configuration, or why sshd refused the configuration (sshd -T fails when it is invalid). */
export async function readEffective(exec: Exec, match?: ConnectionSpec): Promise<EffectiveResult> {
  const argv = [SSHD, '-T'];
  if (match) {
    const spec = [`user=${match.user}`, `addr=${match.addr}`, `host=${match.host ?? match.addr}`];
    if (match.laddr) spec.push(`laddr=${match.laddr}`);
    if (match.lport !== undefined) spec.push(`lport=${match.lport}`);
    argv.push('-C', spec.join(','));
  }
  const r = await exec.run(argv);
  if (r.exitCode !== 0) return { ok: false, error: (r.stderr || r.stdout).trim() || `${argv.join(' ')} exited with ${r.exitCode}` };
  return { ok: true, effective: parseSshdT(r.stdout) };
}

// --- intent vs effective ----------------------------------------------------

export interface Difference {
  keyword: string;
  wanted: string;
  /** As sshd -T reports it; undefined when it reports nothing for the keyword. */
  actual: string | undefined;
  /** A setting left at its default on purpose: someone changed it; a warning, not a failure. */
  advisory?: boolean;
}

const SET_COMPARED = new Set(['allowusers', 'allowgroups', 'denyusers', 'denygroups', 'authenticationmethods']);
const TIME_KEYWORDS = new Set(['logingracetime', 'clientaliveinterval']);

function seconds(value: string): string {
  if (!/^(\d+[smhdw]?)+$/i.test(value)) return value;
  const units: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  let total = 0;
  for (const m of value.toLowerCase().matchAll(/(\d+)([smhdw]?)/g)) total += Number(m[1]) * units[m[2]!]!;
  return String(total);
}

function normalize(keyword: string, value: string): string {
  let v = value.trim().toLowerCase();
  if (TIME_KEYWORDS.has(keyword)) v = seconds(v);
  // sshd -T prints prohibit-password under its old name.
  if (keyword === 'permitrootlogin' && v === 'without-password') v = 'prohibit-password';
  return v;
}

/**
 * Intended values not in force. For Match settings pass `scope: 'match'` and
 * an effective configuration read with a connection the Match block covers
 * (`readEffective(exec, {user:'root', addr: <cluster address>})`); the
 * global settings a Match setting replaces are then not compared.
 */
export function compareIntent(settings: SshdSetting[], effective: Effective, scope: 'global' | 'match' = 'global'): Difference[] {
  const expected = new Map<string, SshdSetting>();
  for (const s of settings) {
    if (s.match && scope === 'global') continue;
    expected.set(s.keyword.toLowerCase(), s); // a Match setting comes later and replaces the global one
  }
  const diffs: Difference[] = [];
  for (const [keyword, s] of expected) {
    const values = effective.get(keyword);
    const actualText = values?.join(' ');
    const advisory = s.leaveDefault ? { advisory: true } : {};
    if (!values || values.length === 0) {
      diffs.push({ keyword, wanted: s.value, actual: undefined, ...advisory });
      continue;
    }
    let same: boolean;
    if (SET_COMPARED.has(keyword)) {
      const want = unique(s.value.split(/\s+/).map((v) => v.toLowerCase())).sort();
      const have = unique(values.map((v) => v.toLowerCase())).sort();
      same = want.join(' ') === have.join(' ');
    } else {
      same = normalize(keyword, s.value) === normalize(keyword, values[0]!);
    }
    if (!same) diffs.push({ keyword, wanted: s.value, actual: actualText, ...advisory });
  }
  return diffs;
}

// --- who wins: reading the files as sshd does -------------------------------

export interface ConfigFile {
  path: string;
  text: string;
}

export interface Occurrence {
  path: string;
  /** 1-based. */
  line: number;
  value: string;
}

export interface MatchOccurrence extends Occurrence {
  /** The Match line's criteria, e.g. "User bob" or "Address 10.0.0.0/8". */
  criteria: string;
  matchLine: number;
}

export interface Winner {
  keyword: string;
  /** The first global occurrence: the value sshd uses (for accumulating keywords, the first of several). */
  winner?: Occurrence;
  /** Every global occurrence in reading order (all of them count for AllowUsers and the like). */
  global: Occurrence[];
  /** Match blocks that set the keyword: each overrides the global value for connections it matches. */
  matches: MatchOccurrence[];
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\[!/g, '[^');
  return new RegExp(`^${body}$`);
}

function resolveInclude(pattern: string, baseDir = '/etc/ssh'): string {
  return pattern.startsWith('/') || pattern.startsWith('~') ? pattern : `${baseDir}/${pattern}`;
}

/** Split a config line into keyword and rest; keyword lowercase; null for blank and comment lines. */
function splitLine(raw: string): { keyword: string; rest: string } | null {
  const line = raw.trim();
  if (!line || line.startsWith('#')) return null;
  const m = /^([^\s=]+)(?:\s*=\s*|\s+)?(.*)$/.exec(line);
  if (!m) return null;
  return { keyword: m[1]!.toLowerCase(), rest: m[2]!.replace(/\s+#.*$/, '').trim() };
}

/**
 * Where a keyword is set, reading the files as sshd does: from the main file
 * (files[0]), descending into Include lines at their position (globs matched
 * against the other files' paths, in lexical order).
 */
export function whoWins(keyword: string, files: ConfigFile[]): Winner {
  const kw = keyword.toLowerCase();
  const result: Winner = { keyword: kw, global: [], matches: [] };
  const byPath = new Map(files.map((f) => [f.path, f]));
  const visit = (file: ConfigFile, depth: number) => {
    if (depth > 16) return;
    let match: { criteria: string; line: number } | null = null;
    file.text.split('\n').forEach((raw, index) => {
      const parsed = splitLine(raw);
      if (!parsed) return;
      const line = index + 1;
      if (parsed.keyword === 'match') {
        match = /^all$/i.test(parsed.rest) ? null : { criteria: parsed.rest, line };
        return;
      }
      if (parsed.keyword === 'include') {
        for (const pattern of parsed.rest.split(/\s+/).filter(Boolean)) {
          const re = globToRegExp(resolveInclude(pattern));
          const included = [...byPath.keys()].filter((p) => re.test(p)).sort();
          for (const p of included) visit(byPath.get(p)!, depth + 1);
        }
        return;
      }
      if (parsed.keyword !== kw) return;
      const at = { path: file.path, line, value: parsed.rest };
      const m = match as { criteria: string; line: number } | null;
      if (m) result.matches.push({ ...at, criteria: m.criteria, matchLine: m.line });
      else result.global.push(at);
    });
  };
  if (files[0]) visit(files[0], 0);
  result.winner = result.global[0];
  return result;
}

/** One line naming who sets a keyword, for the pre-flight's refusal. */
export function describeWinner(w: Winner): string {
  const parts: string[] = [];
  if (w.winner) parts.push(`${w.keyword} is set first by ${w.winner.path}:${w.winner.line} ("${w.winner.value}")`);
  else parts.push(`${w.keyword} is not set in any file`);
  for (const m of w.matches) parts.push(`overridden for "Match ${m.criteria}" by ${m.path}:${m.line} ("${m.value}")`);
  return parts.join('; ');
}

/**
 * The main config and every file it includes (recursively), in the order
 * sshd first enters them. `list(dir)` gives a directory's entry names (Files
 * has no readdir); missing files and directories are skipped.
 */
export async function readConfigFiles(
  files: Pick<Files, 'read'>,
  list: (dir: string) => Promise<string[]>,
  main = MAIN_CONFIG,
): Promise<ConfigFile[]> {
  const out: ConfigFile[] = [];
  const seen = new Set<string>();
  const visit = async (path: string, depth: number): Promise<void> => {
    if (depth > 16 || seen.has(path)) return;
    const text = await files.read(path);
    if (text === null) return;
    seen.add(path);
    out.push({ path, text });
    for (const raw of text.split('\n')) {
      const parsed = splitLine(raw);
      if (parsed?.keyword !== 'include') continue;
      for (const pattern of parsed.rest.split(/\s+/).filter(Boolean)) {
        const full = resolveInclude(pattern);
        if (!/[*?[]/.test(full)) {
          await visit(full, depth + 1);
          continue;
        }
        const slash = full.lastIndexOf('/');
        const dir = full.slice(0, slash) || '/';
        const re = globToRegExp(full.slice(slash + 1));
        let names: string[] = [];
        try {
          names = await list(dir);
        } catch {
          names = [];
        }
        const matched = names
          .map((n) => n.split('/').pop()!)
          .filter((n) => re.test(n))
          .sort();
        for (const n of matched) await visit(`${dir}/${n}`, depth + 1);
      }
    }
  };
  await visit(main, 0);
  return out;
}
