/**
 * /etc/pve/priv/tfa.cfg: Proxmox's second factors, as JSON (proxmox-rs
 * proxmox-tfa src/api/mod.rs TfaConfig/TfaUserData, read and written by
 * pve-rs's PVE::RS::TFA). Pure: parse/write, adding TOTP and recovery keys,
 * the login challenge and its verification with Proxmox's failure counting
 * and locks, unlock, listing and deleting. No I/O; the caller passes the
 * time, keeps the file and keeps the failure counters (proxmox-tfa keeps them
 * apart from tfa.cfg, in the per-user challenge data: TfaUserChallenges).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';

export interface TfaInfo {
  id: string;
  /** '' when the file has none (serde omits it then) */
  description: string;
  created: number;
  enable: boolean;
}

export interface TotpEntry extends TfaInfo {
  /** the otpauth URI as stored (the secret is in it, in clear) */
  uri: string;
  /** the TOTP step last accepted at login; null until the first (TotpEntry::new: i64::MIN) */
  lastCount: number | null;
}

/** an entry of a kind the lab does not verify (u2f, webauthn, yubico): kept as read */
export type OpaqueEntry = Record<string, unknown>;

export interface Recovery {
  /** 16 hex chars: the HMAC key ("salt") for this user's keys */
  secret: string;
  /** HMAC-SHA256 hex of each key; null once used */
  entries: (string | null)[];
  created: number;
}

export interface TfaUserData {
  totp: TotpEntry[];
  u2f: OpaqueEntry[];
  webauthn: OpaqueEntry[];
  recovery: Recovery | null;
  yubico: OpaqueEntry[];
  totpLocked: boolean;
  tfaLockedUntil: number | null;
}

export interface TfaConfig {
  users: Map<string, TfaUserData>;
  /** top-level keys other than users (PVE strips u2f/webauthn, but keep what is there) */
  extra: Record<string, unknown>;
}

/** proxmox-tfa's failure counters of one user (TfaUserChallenges: totp-failures, tfa-failures) */
export interface FailureCounts {
  totpFailures: number;
  tfaFailures: number;
}

/** OpenUserChallengeData's defaults (proxmox-tfa api/mod.rs) */
export const TOTP_FAILURE_LIMIT = 8;
export const TFA_FAILURE_LIMIT = 100;
export const TFA_FAILURE_LOCK_TIME = 3600;

export class TfaError extends Error {}
const fail = (m: string): never => {
  throw new TfaError(m);
};

export const emptyUserData = (): TfaUserData => ({ totp: [], u2f: [], webauthn: [], recovery: null, yubico: [], totpLocked: false, tfaLockedUntil: null });
export const emptyTfaConfig = (): TfaConfig => ({ users: new Map(), extra: {} });

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseInfo(o: Record<string, unknown>, where: string): TfaInfo {
  if (typeof o.id !== 'string') fail(`${where}: missing field \`id\``);
  if (typeof o.created !== 'number') fail(`${where}: missing field \`created\``);
  return {
    id: o.id as string,
    description: typeof o.description === 'string' ? o.description : '',
    created: o.created as number,
    enable: o.enable === undefined ? true : o.enable === true,
  };
}

function parseTotpEntry(o: unknown, where: string): TotpEntry {
  if (!isObj(o)) return fail(`${where}: not an object`);
  const info = parseInfo(o, where);
  const e = o.entry;
  let uri: string;
  let lastCount: number | null = null;
  if (typeof e === 'string') uri = e;
  else if (isObj(e) && typeof e.totp === 'string') {
    for (const k of Object.keys(e)) if (k !== 'totp' && k !== 'last-count') fail(`${where}: unknown field \`${k}\`, expected \`totp\` or \`last-count\``);
    uri = e.totp;
    lastCount = typeof e['last-count'] === 'number' ? e['last-count'] : null;
  } else return fail(`${where}: invalid type: expected a totp string or a TotpEntry struct`);
  parseTotpUri(uri); // the Deserialize impl parses the URI: a bad one fails the whole file
  return { ...info, uri, lastCount };
}

const USER_KEYS = ['totp', 'u2f', 'webauthn', 'recovery', 'yubico', 'totp-locked', 'tfa-locked-until'];

/**
 * PVE::RS::TFA->new: the JSON form (the legacy v1 line format is not read here).
 * An empty file is an empty config. Throws TfaError on what serde would refuse
 * (deny_unknown_fields on TfaUserData).
 */
export function parseTfaCfg(raw: string | undefined, now?: number): TfaConfig {
  const cfg = emptyTfaConfig();
  if (raw === undefined || raw.trim() === '') return cfg;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return fail('tfa.cfg: not JSON (the legacy line format is not supported)');
  }
  if (!isObj(json)) return fail('tfa.cfg: not a JSON object');
  for (const [k, v] of Object.entries(json)) if (k !== 'users') cfg.extra[k] = v;
  const users = json.users ?? {};
  if (!isObj(users)) return fail('tfa.cfg: users is not an object');
  for (const [userid, d] of Object.entries(users)) {
    if (!isObj(d)) fail(`tfa.cfg: user '${userid}' is not an object`);
    const data = d as Record<string, unknown>;
    for (const k of Object.keys(data)) if (!USER_KEYS.includes(k)) fail(`tfa.cfg: unknown field \`${k}\` for user '${userid}'`);
    const u = emptyUserData();
    const arr = (k: string): unknown[] => (Array.isArray(data[k]) ? (data[k] as unknown[]) : []);
    u.totp = arr('totp').map((e, i) => parseTotpEntry(e, `tfa.cfg: ${userid} totp[${i}]`));
    u.u2f = arr('u2f') as OpaqueEntry[];
    u.webauthn = arr('webauthn') as OpaqueEntry[];
    u.yubico = arr('yubico') as OpaqueEntry[];
    const r = data.recovery;
    if (isObj(r)) {
      if (typeof r.secret !== 'string' || !Array.isArray(r.entries) || typeof r.created !== 'number') fail(`tfa.cfg: ${userid}: bad recovery entry`);
      u.recovery = { secret: r.secret as string, entries: (r.entries as unknown[]).map((x) => (typeof x === 'string' ? x : null)), created: r.created as number };
    }
    u.totpLocked = data['totp-locked'] === true;
    const until = data['tfa-locked-until'];
    // filter_expired_timestamp: a lock already over is dropped on reading
    u.tfaLockedUntil = typeof until === 'number' && (now === undefined || until > now) ? until : null;
    cfg.users.set(userid, u);
  }
  return cfg;
}

function infoJson(e: TfaInfo): Record<string, unknown> {
  const o: Record<string, unknown> = { id: e.id };
  if (e.description !== '') o.description = e.description;
  o.created = e.created;
  if (!e.enable) o.enable = false;
  return o;
}

const userIsEmpty = (u: TfaUserData) => !u.totp.length && !u.u2f.length && !u.webauthn.length && !u.yubico.length && !u.recovery;

/** TfaConfig::write: compact JSON (serde_json::to_vec), struct field order, empty lists and false/None omitted, no newline */
export function writeTfaCfg(cfg: TfaConfig): string {
  const out: Record<string, unknown> = {};
  const users: Record<string, unknown> = {};
  for (const [userid, u] of cfg.users) {
    const o: Record<string, unknown> = {};
    if (u.totp.length)
      o.totp = u.totp.map((e) => ({ ...infoJson(e), entry: e.lastCount === null ? e.uri : { totp: e.uri, 'last-count': e.lastCount } }));
    if (u.u2f.length) o.u2f = u.u2f;
    if (u.webauthn.length) o.webauthn = u.webauthn;
    if (u.recovery) o.recovery = { secret: u.recovery.secret, entries: u.recovery.entries, created: u.recovery.created };
    if (u.yubico.length) o.yubico = u.yubico;
    if (u.totpLocked) o['totp-locked'] = true;
    if (u.tfaLockedUntil !== null) o['tfa-locked-until'] = u.tfaLockedUntil;
    users[userid] = o;
  }
  if (cfg.users.size) out.users = users;
  Object.assign(out, cfg.extra);
  return JSON.stringify(out);
}

// ---------------------------------------------------------------------------
// TOTP

export interface TotpParams {
  secret: string; // base32, no padding
  digits: number;
  algorithm: 'SHA1' | 'SHA256' | 'SHA512';
  period: number;
  issuer?: string;
  account: string;
}

const BASE32_RFC4648 = /^[A-Z2-7]*$/;

function pctDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return unescape(s);
  }
}

/** Totp::from_str (proxmox-tfa src/totp.rs), with its error texts */
export function parseTotpUri(uri: string): TotpParams {
  if (!uri.startsWith('otpauth://totp/')) fail('not an otpauth uri');
  const rest = uri.slice(15);
  const q = rest.indexOf('?');
  if (q < 0) fail("missing '?' in otp uri");
  const label = rest.slice(0, q);
  const colon = label.indexOf(':'); // FIXME upstream: %3A is not split on
  const p: TotpParams = { secret: '', digits: 6, algorithm: 'SHA1', period: 30, account: '' };
  if (colon >= 0) {
    p.issuer = pctDecode(label.slice(0, colon));
    p.account = pctDecode(label.slice(colon + 1));
  } else p.account = pctDecode(label);
  for (const part of rest.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    if (eq < 0) fail('bad value in otpauth uri');
    const key = pctDecode(part.slice(0, eq));
    const value = pctDecode(part.slice(eq + 1));
    switch (key) {
      case 'secret':
        // base32::Alphabet::RFC4648 { padding: false }: '=' is not an accepted character
        if (!BASE32_RFC4648.test(value)) fail('failed to decode otp secret in otpauth url');
        p.secret = value;
        break;
      case 'digits':
      case 'period': {
        if (!/^\d+$/.test(value)) fail(`failed to parse value '${key}'`);
        p[key] = Number(value);
        break;
      }
      case 'algorithm': {
        const a = value.toUpperCase();
        if (a !== 'SHA1' && a !== 'SHA256' && a !== 'SHA512') fail(`unsupported algorithm: '${value}'`);
        p.algorithm = a as TotpParams['algorithm'];
        break;
      }
      case 'issuer':
        p.issuer = value;
        break;
      default:
        fail(`unknown otpauth uri parameter: '${key}'`);
    }
  }
  if (p.secret === '') fail('missing secret in otpauth url');
  if (p.period === 0) fail("failed to parse value 'period'");
  return p;
}

function totpOf(p: TotpParams): TOTP {
  return new TOTP({ secret: Secret.fromBase32(p.secret), digits: p.digits, algorithm: p.algorithm, period: p.period });
}

/** Totp::verify(value, now, -1..=1): the matching step (counter), or null */
export function totpStep(uri: string, value: string, nowMs: number): number | null {
  const p = parseTotpUri(uri);
  if (!/^\d+$/.test(value.trim())) return null;
  const delta = totpOf(p).validate({ token: value.trim(), timestamp: nowMs, window: 1 });
  if (delta === null) return null;
  return Math.floor(nowMs / 1000 / p.period) + delta;
}

// ---------------------------------------------------------------------------
// adding entries (proxmox-tfa api/methods.rs add_tfa_entry)

export interface AddParams {
  type: string;
  description?: string;
  totp?: string;
  value?: string;
  challenge?: string;
}

export interface AddResult {
  id: string;
  recovery?: string[];
}

const userData = (cfg: TfaConfig, userid: string): TfaUserData => {
  let u = cfg.users.get(userid);
  if (!u) cfg.users.set(userid, (u = emptyUserData()));
  return u;
};

/** add_tfa_entry for totp and recovery (the kinds the lab supports); `nowMs` is the time, `rand` the randomness */
export function addTfaEntry(cfg: TfaConfig, userid: string, p: AddParams, nowMs: number, rand: (n: number) => Buffer = randomBytes): AddResult {
  const now = Math.floor(nowMs / 1000);
  switch (p.type) {
    case 'totp': {
      if (p.challenge !== undefined) fail("'challenge' parameter is invalid for 'totp' entries");
      if (p.description === undefined) fail("'description' is required for new entries");
      if (p.totp === undefined || p.value === undefined) fail("'totp' type requires both 'totp' and 'value' parameters");
      parseTotpUri(p.totp!);
      if (totpStep(p.totp!, p.value!, nowMs) === null) fail('failed to verify TOTP challenge');
      const id = randomUUID();
      userData(cfg, userid).totp.push({ id, description: p.description!, created: now, enable: true, uri: p.totp!, lastCount: null });
      return { id };
    }
    case 'recovery': {
      if (p.description !== undefined || p.totp !== undefined || p.value !== undefined || p.challenge !== undefined)
        fail('generating recovery tokens does not allow additional parameters');
      const u = userData(cfg, userid);
      if (u.recovery) fail('user already has recovery keys');
      const secret = rand(8).toString('hex');
      const data = rand(80);
      const keys: string[] = [];
      const entries: string[] = [];
      for (let i = 0; i < 10; i++) {
        const b = data.subarray(i * 8, i * 8 + 8);
        const h = (j: number) => b[j]!.toString(16).padStart(2, '0');
        const key = `${h(0)}${h(1)}-${h(2)}${h(3)}-${h(4)}${h(5)}-${h(6)}${h(7)}`;
        keys.push(key);
        entries.push(recoveryHash(secret, key));
      }
      u.recovery = { secret, entries, created: now };
      return { id: 'recovery', recovery: keys };
    }
    case 'u2f':
    case 'webauthn':
    case 'yubico':
      return fail(`${p.type}: not supported in the lab`);
    default:
      return fail(`unknown tfa type '${p.type}'`);
  }
}

/** Recovery::hash: HMAC-SHA256 keyed with the hex secret's bytes, hex */
export const recoveryHash = (secret: string, key: string): string => createHmac('sha256', Buffer.from(secret, 'utf8')).update(key, 'utf8').digest('hex');

// ---------------------------------------------------------------------------
// listing, deleting, unlocking

export interface TypedTfaInfo {
  type: 'totp' | 'u2f' | 'webauthn' | 'recovery' | 'yubico';
  id: string;
  description: string;
  created: number;
  enable?: boolean;
}

const typed = (type: TypedTfaInfo['type'], e: TfaInfo): TypedTfaInfo => ({ type, ...infoJson(e) }) as TypedTfaInfo;
const opaqueInfo = (e: OpaqueEntry): TfaInfo => ({ id: String(e.id ?? ''), description: String(e.description ?? ''), created: Number(e.created ?? 0), enable: e.enable !== false });

/** methods.rs to_data: recovery first, then totp, webauthn, u2f, yubico */
export function listUserTfa(cfg: TfaConfig, userid: string): TypedTfaInfo[] {
  const u = cfg.users.get(userid);
  if (!u) return [];
  const out: TypedTfaInfo[] = [];
  if (u.recovery) out.push(typed('recovery', { id: 'recovery', description: '', created: u.recovery.created, enable: true }));
  for (const e of u.totp) out.push(typed('totp', e));
  for (const e of u.webauthn) out.push(typed('webauthn', opaqueInfo(e)));
  for (const e of u.u2f) out.push(typed('u2f', opaqueInfo(e)));
  for (const e of u.yubico) out.push(typed('yubico', opaqueInfo(e)));
  return out;
}

export interface TfaUserListing {
  userid: string;
  entries: TypedTfaInfo[];
  'totp-locked'?: boolean;
  'tfa-locked-until'?: number;
}

/** methods.rs list_tfa (top level allowed): every user, locks that still hold */
export function listTfa(cfg: TfaConfig, now: number): TfaUserListing[] {
  return [...cfg.users.keys()].map((userid) => {
    const u = cfg.users.get(userid)!;
    const o: TfaUserListing = { userid, entries: listUserTfa(cfg, userid) };
    if (u.totpLocked) o['totp-locked'] = true;
    if (u.tfaLockedUntil !== null && u.tfaLockedUntil > now) o['tfa-locked-until'] = u.tfaLockedUntil;
    return o;
  });
}

export function getTfaEntry(cfg: TfaConfig, userid: string, id: string): TypedTfaInfo | undefined {
  return listUserTfa(cfg, userid).find((e) => e.id === id);
}

/** methods.rs delete_tfa: true when the user has entries left; throws 'no such entry' */
export function deleteTfaEntry(cfg: TfaConfig, userid: string, id: string): boolean {
  const u = cfg.users.get(userid);
  if (!u) return fail('no such entry');
  const i = u.totp.findIndex((e) => e.id === id);
  if (i >= 0) u.totp.splice(i, 1);
  else if (id === 'recovery' && u.recovery) u.recovery = null;
  else {
    let found = false;
    for (const list of [u.webauthn, u.u2f, u.yubico]) {
      const j = list.findIndex((e) => e.id === id);
      if (j >= 0) {
        list.splice(j, 1);
        found = true;
        break;
      }
    }
    if (!found) fail('no such entry');
  }
  if (userIsEmpty(u)) {
    cfg.users.delete(userid);
    return false;
  }
  return true;
}

/** TfaConfig::remove_user: true when there was something */
export const removeTfaUser = (cfg: TfaConfig, userid: string): boolean => cfg.users.delete(userid);

/** unlock_and_reset_tfa: counters to 0, both locks off; returns whether the user was locked */
export function unlockTfa(cfg: TfaConfig, counts: FailureCounts, userid: string, now: number): boolean {
  counts.totpFailures = 0;
  counts.tfaFailures = 0;
  const u = cfg.users.get(userid);
  if (!u) return fail('no such user');
  const was = u.totpLocked || (u.tfaLockedUntil !== null && now < u.tfaLockedUntil);
  u.totpLocked = false;
  u.tfaLockedUntil = null;
  return was;
}

// ---------------------------------------------------------------------------
// login: the challenge and its verification

export interface TfaChallenge {
  totp?: boolean;
  recovery?: number[];
  yubico?: boolean;
}

/** TfaUserData::challenge: null when the user has no (enabled) second factor */
export function tfaChallenge(cfg: TfaConfig, userid: string): TfaChallenge | null {
  const u = cfg.users.get(userid);
  if (!u || userIsEmpty(u)) return null;
  const c: TfaChallenge = {};
  if (u.totp.some((e) => e.enable)) c.totp = true;
  if (u.recovery) c.recovery = u.recovery.entries.flatMap((e, i) => (e !== null ? [i] : []));
  if (u.yubico.some((e) => e.enable !== false)) c.yubico = true;
  const webauthnOrU2f = [...u.webauthn, ...u.u2f].some((e) => e.enable !== false);
  if (!c.totp && !c.recovery && !c.yubico && !webauthnOrU2f) return null;
  return c;
}

export type VerifyResult =
  | { result: true; needsSaving: boolean }
  | { result: false; locked: true; needsSaving: false; error: string }
  | { result: false; locked?: false; needsSaving: boolean; totpLimitReached: boolean; tfaLimitReached: boolean; error: string };

/**
 * TfaConfig::verify for a "totp:CODE" or "recovery:KEY" response: the user's
 * locks first, then the factor; failures counted in `counts` (which the
 * caller stores whatever the outcome), limits turning into locks in `cfg`
 * (which the caller writes when needsSaving).
 */
export function verifyTfaResponse(cfg: TfaConfig, counts: FailureCounts, userid: string, response: string, nowMs: number): VerifyResult {
  const now = Math.floor(nowMs / 1000);
  const u = cfg.users.get(userid);
  if (!u) return { result: false, needsSaving: false, totpLimitReached: false, tfaLimitReached: false, error: `no 2nd factor available for user '${userid}'` };
  if (u.tfaLockedUntil !== null && now < u.tfaLockedUntil) return { result: false, locked: true, needsSaving: false, error: `refusing 2nd factor for user '${userid}'` };
  const m = /^([^:]+):(.*)$/s.exec(response);
  const kind = m?.[1];
  const value = m?.[2] ?? '';
  let wasTotp = false;
  let error: string | undefined;
  if (kind === 'totp') {
    wasTotp = true;
    if (u.totpLocked) return { result: false, locked: true, needsSaving: false, error: `TOTP of user '${userid}' is locked` };
    // verify_totp
    error = 'totp verification failed';
    for (const e of u.totp) {
      if (!e.enable) continue;
      const step = totpStep(e.uri, value, nowMs);
      if (step === null) continue;
      if (e.lastCount !== null && step <= e.lastCount) {
        error = 'rejecting reused TOTP value';
        break;
      }
      e.lastCount = step;
      error = undefined;
      break;
    }
    if (error) counts.totpFailures += 1;
    else counts.totpFailures = 0;
  } else if (kind === 'recovery') {
    const r = u.recovery;
    const hash = r ? recoveryHash(r.secret, value) : '';
    const i = r ? r.entries.indexOf(hash) : -1;
    if (r && i >= 0) {
      r.entries[i] = null;
      u.totpLocked = false;
      u.tfaLockedUntil = null;
      counts.totpFailures = 0;
    } else error = 'recovery verification failed';
  } else {
    error = kind === undefined ? 'invalid tfa response' : `unsupported tfa response type '${kind}'`;
  }
  if (!error) {
    counts.tfaFailures = 0;
    return { result: true, needsSaving: true };
  }
  counts.tfaFailures += 1;
  const tfaLimitReached = counts.tfaFailures >= TFA_FAILURE_LIMIT;
  const totpLimitReached = wasTotp && counts.totpFailures >= TOTP_FAILURE_LIMIT;
  if (totpLimitReached) u.totpLocked = true;
  if (tfaLimitReached) u.tfaLockedUntil = now + TFA_FAILURE_LOCK_TIME;
  // a rejected TOTP still records nothing in tfa.cfg unless a limit was reached
  return { result: false, needsSaving: tfaLimitReached || totpLimitReached, totpLimitReached, tfaLimitReached, error };
}
