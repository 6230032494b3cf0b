/**
 * Authentication as pvedaemon does it (pve-access-control PVE/AccessControl.pm,
 * PVE/API2/AccessControl.pm create_ticket, PVE/Auth/{PAM,PVE}.pm, pve-common
 * PVE/Ticket.pm; pve-manager PVE/HTTPServer.pm auth_handler): tickets and
 * CSRF tokens, the pam and pve realms, the TFA challenge flow, API tokens.
 */
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { msg } from '../../../../src/pve/messages.ts';
import { splitTokenid } from '../../../../src/pve/names.ts';
import type { UserCfg } from '../../../../src/pve/user-cfg.ts';
import { tfaChallenge, verifyTfaResponse, type TfaChallenge } from '../../../../src/pve/tfa-cfg.ts';
import { ETC_PVE, readFile, readUserCfg } from './pmxcfs.ts';
import { lockTfaConfig, readCounts, readTfaCfg, writeCounts, writeTfaCfgFile } from './tfa-store.ts';

/** AccessControl.pm: $ticket_lifetime = 3600 * 2, $auth_graceperiod = 60 * 5 */
export const TICKET_LIFETIME = 2 * 3600;
const AUTH_GRACE = 5 * 60;

export class AuthError extends Error {}
const die = (m: string): never => {
  throw new AuthError(m);
};

/** where the daemon's own errors go: syslog('err', ...) and friends (set by pvedaemon) */
export let syslog: (priority: 'err' | 'warning' | 'info', message: string) => void = () => {};
export const setSyslog = (fn: typeof syslog) => (syslog = fn);

// ---------------------------------------------------------------------------
// keys: the node's authkey (RSA) signs tickets; pve-www.key seeds the CSRF secret

let priv: KeyObject | undefined;
let pub: KeyObject | undefined;
function keys(): { priv: KeyObject; pub: KeyObject } {
  if (!priv || !pub) {
    try {
      priv = createPrivateKey(readFileSync(`${ETC_PVE}/priv/authkey.key`));
    } catch {
      // no authkey readable: a key of this daemon's own (tickets die with it)
      priv = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    }
    pub = createPublicKey(priv);
  }
  return { priv, pub };
}

let csrfSecret: Buffer | undefined;
function csrfKey(): Buffer {
  if (!csrfSecret) {
    let input: Buffer;
    try {
      input = readFileSync(`${ETC_PVE}/pve-www.key`);
    } catch {
      input = randomBytes(32);
    }
    // AccessControl.pm: Digest::SHA::hmac_sha256_base64($input), used as the HMAC key
    csrfSecret = Buffer.from(createHmac('sha256', '').update(input).digest('base64').replace(/=+$/, ''));
  }
  return csrfSecret;
}

const hexTime = (t: number) => t.toString(16).toUpperCase().padStart(8, '0');

/** PVE::Ticket::assemble_rsa_ticket: "PVE:<data>:<HEXTIME>::<base64 signature>", the aad signed but not included */
export function assembleTicket(data: string, aad?: string, now = Math.floor(Date.now() / 1000)): string {
  const plain = `PVE:${data}:${hexTime(now)}`;
  const full = aad !== undefined ? `${plain}:${aad}` : plain;
  return `${plain}::${sign('sha256', Buffer.from(full), keys().priv).toString('base64')}`;
}

/** PVE::Ticket::assemble_rsa_ticket with any prefix: "PREFIX:[DATA:]HEXTIME::<sig>" (uri_escape($data, ':')), secret_data signed but not included (PVEVNC tickets) */
export function assembleRsaTicket(prefix: string, data: string | undefined, secretData?: string, now = Math.floor(Date.now() / 1000)): string {
  const plain = `${prefix}:${data !== undefined ? `${data.replace(/:/g, '%3A')}:` : ''}${hexTime(now)}`;
  const full = secretData !== undefined ? `${plain}:${secretData}` : plain;
  return `${plain}::${sign('sha256', Buffer.from(full), keys().priv).toString('base64')}`;
}

/** PVE::Ticket::verify_rsa_ticket: the data, or null (bad signature, too old, from the future) */
export function verifyTicketData(ticket: string, aad?: string, now = Math.floor(Date.now() / 1000)): string | null {
  const m = /^(\S+)::([^:\s]+)$/.exec(ticket);
  if (!m) return null;
  const [, plain, sig] = m as unknown as [string, string, string];
  const full = aad !== undefined ? `${plain}:${aad}` : plain;
  let ok = false;
  try {
    ok = verify('sha256', Buffer.from(full), keys().pub, Buffer.from(sig, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) return null;
  const d = /^PVE:(\S+):([A-Z0-9]{8})$/.exec(plain);
  if (!d) return null;
  const age = now - parseInt(d[2]!, 16);
  if (age < -AUTH_GRACE || age > TICKET_LIFETIME) return null;
  return d[1]!;
}

/** PVE::Ticket::assemble_csrf_prevention_token: "<HEXTIME>:<base64 hmac of 'HEXTIME:user'>" */
export function assembleCsrf(username: string, now = Math.floor(Date.now() / 1000)): string {
  const ts = hexTime(now);
  return `${ts}:${createHmac('sha256', csrfKey()).update(`${ts}:${username}`).digest('base64').replace(/=+$/, '')}`;
}

export function verifyCsrf(username: string, token: string | undefined, now = Math.floor(Date.now() / 1000)): boolean {
  const m = token ? /^([A-Z0-9]{8}):(\S+)$/.exec(token) : null;
  if (!m) return false;
  const want = Buffer.from(assembleCsrf(username, parseInt(m[1]!, 16)));
  const got = Buffer.from(token!);
  const age = now - parseInt(m[1]!, 16);
  return want.length === got.length && timingSafeEqual(want, got) && age >= -AUTH_GRACE && age <= TICKET_LIFETIME;
}

// ---------------------------------------------------------------------------
// users

/** AccessControl.pm check_user_enabled (check_user_exist first) */
export function checkUserEnabled(cfg: UserCfg, username: string, now = Math.floor(Date.now() / 1000)): void {
  const u = cfg.users.get(username);
  if (!u) die(msg.noSuchUser(username));
  if (!u!.enable) die(msg.userDisabled(username));
  if (u!.expire && u!.expire < now) die(`user '${username}' access expired`);
}

function splitUsername(username: string): { ruid: string; realm: string } {
  const m = /^(\S+)@([A-Za-z][A-Za-z0-9.\-_]+)$/.exec(username);
  if (!m) return die(`value '${username}' does not look like a valid user name`);
  return { ruid: m[1]!, realm: m[2]! };
}

function realmType(realm: string): string | undefined {
  if (realm === 'pam' || realm === 'pve') return realm;
  const raw = readFile('domains.cfg') ?? '';
  const m = new RegExp(`^(\\w+):\\s*${realm.replace(/[.\\-]/g, '\\$&')}\\s*$`, 'm').exec(raw);
  return m?.[1];
}

/**
 * Auth/PAM.pm: the 'proxmox-ve-auth' PAM service (PAM falls back to 'other'
 * when the node has no file of that name), PAM_RHOST set to the client,
 * authenticate then acct_mgmt. pamtester runs the real stack; the password
 * goes to its conversation on stdin, never on its command line.
 */
export function authenticatePam(user: string, password: string, rhost: string | undefined): void {
  if (!password) die('no password');
  const argv = [...(rhost ? ['-I', `rhost=${rhost}`] : []), 'proxmox-ve-auth', user, 'authenticate', 'acct_mgmt'];
  const r = spawnSync('pamtester', argv, { input: `${password}\n`, encoding: 'utf8', timeout: 30_000 });
  if (r.error) die(`error during PAM init: ${r.error.message}`);
  if (r.status === 0) return;
  // pamtester prints "pamtester: <pam_strerror>" for the failing call
  const line = `${r.stderr ?? ''}`.split('\n').reverse().find((l) => l.startsWith('pamtester: '));
  die(line ? line.slice('pamtester: '.length) : 'Authentication failure');
}

/** Auth/PVE.pm: priv/shadow.cfg, crypt(3) of the password against the stored hash */
export function authenticatePve(user: string, password: string): void {
  if (!password) die('no password');
  let hash: string | undefined;
  for (const line of (readFile('priv/shadow.cfg') ?? '').split('\n')) {
    const m = /^(\S+?):(\S+):$/.exec(line.trim());
    if (m && m[1] === user) hash = m[2];
  }
  if (!hash) die('no password set');
  // both on stdin: neither the password nor the hash on a command line
  const r = spawnSync('perl', ['-e', 'local $/; my ($h, $p) = split(/\n/, <STDIN>, 2); $p =~ s/\n$//; print crypt($p, $h) eq $h ? "ok" : "no"'], {
    input: `${hash}\n${password}\n`,
    encoding: 'utf8',
  });
  if (r.stdout !== 'ok') die('invalid credentials');
}

// ---------------------------------------------------------------------------
// the second factor (AccessControl.pm authenticate_2nd_new_do)

const encodeChallenge = (c: TfaChallenge) => encodeURIComponent(JSON.stringify(c));

/**
 * With `challengeTicket`: verify `response` against it (the second call of a
 * login). Without: the challenge for a user with second factors (as a string
 * for "!tfa!" tickets), checking `response` at once when given (the old otp
 * parameter), or null when the user has none.
 */
export function authenticate2nd(username: string, response: string | undefined, challengeTicket: string | undefined): string | null {
  return lockTfaConfig(() => {
    const cfg = readTfaCfg();
    let challenge: string | null;
    if (challengeTicket !== undefined) {
      const data = verifyTicketData(challengeTicket, username);
      if (data === null) die('invalid ticket signature'); // verify_rsa_ticket without noerr
      if (!/^!tfa!/.test(data!)) die('bad ticket');
      challenge = null;
    } else {
      const c = tfaChallenge(cfg, username);
      challenge = c ? encodeChallenge(c) : null;
      if (response === undefined) return challenge;
      if (challenge === null) die('no such challenge');
      challenge = null;
    }
    const counts = readCounts(username);
    const r = verifyTfaResponse(cfg, counts, username, response ?? '', Date.now());
    writeCounts(username, counts);
    if (!r.result) syslog('err', r.locked ? r.error : `error in 2nd factor authentication for user '${username}': ${r.error}`);
    if (r.needsSaving) writeTfaCfgFile(cfg);
    if (!r.result && !r.locked && r.totpLimitReached) die('failed 2nd factor: TOTP limit reached, locked');
    if (!r.result && !r.locked && r.tfaLimitReached) die('failed 1nd factor: TFA limit reached, user locked out');
    if (!r.result) die('failed 2nd factor');
    return challenge;
  });
}

/** AccessControl.pm authenticate_user: the user, and a TFA challenge when a second step is needed */
export function authenticateUser(username: string, password: string, otp: string | undefined, challengeTicket: string | undefined, rhost: string | undefined): { username: string; tfa: string | null } {
  if (!username) die('no username specified');
  const { ruid, realm } = splitUsername(username);
  checkUserEnabled(readUserCfg(), username);
  const type = realmType(realm);
  if (!type) die(`auth domain '${realm}' does not exist`);
  if (challengeTicket !== undefined) return { username, tfa: authenticate2nd(username, password, challengeTicket) };
  if (type === 'pam') authenticatePam(ruid, password, rhost);
  else if (type === 'pve') authenticatePve(ruid, password);
  else die(`${type}: realm type not supported in the lab`);
  return { username, tfa: authenticate2nd(username, otp, undefined) };
}

export interface TicketResult {
  ticket: string;
  username: string;
  CSRFPreventionToken: string;
  NeedTFA?: 1;
}

/** API2/AccessControl.pm create_ticket_do: a ticket as password renews one; a TFA challenge gives a "!tfa!" ticket */
export function createTicket(username: string, password: string, otp: string | undefined, challengeTicket: string | undefined, rhost: string | undefined): TicketResult {
  if (otp !== undefined && challengeTicket !== undefined) die("TFA response should be in 'password', not 'otp' when 'tfa-challenge' is set");
  let tfa: string | null = null;
  let renewed = false;
  if (challengeTicket === undefined) {
    const data = verifyTicketData(password);
    if (data !== null && !data.startsWith('!tfa!') && (data === 'root@pam' || data === username)) renewed = true;
  }
  if (!renewed) ({ username, tfa } = authenticateUser(username, password, otp, challengeTicket, rhost));
  const res: TicketResult = {
    ticket: tfa !== null ? assembleTicket(`!tfa!${tfa}`, username) : assembleTicket(username),
    username,
    CSRFPreventionToken: assembleCsrf(username),
  };
  if (tfa !== null) res.NeedTFA = 1;
  return res;
}

// ---------------------------------------------------------------------------
// API tokens (AccessControl.pm verify_token, PVE::Cluster::verify_token)

export function verifyToken(apiToken: string, now = Math.floor(Date.now() / 1000)): string {
  if (!apiToken) die('no API token specified');
  const m = /^(.*)=(.*)$/.exec(apiToken);
  if (!m) die('no tokenid specified');
  const tokenid = m![1]!;
  const value = m![2]!;
  const split = splitTokenid(tokenid);
  if (!split) die(`'${tokenid}' is not a valid token ID - not able to split into user and token parts`);
  const [username, token] = split!;
  const cfg = readUserCfg();
  checkUserEnabled(cfg, username, now);
  const info = cfg.users.get(username)!.tokens.get(token);
  if (!info) die(msg.noSuchToken(token, username));
  if (info!.expire && info!.expire < now) die(`token '${token}' access expired`);
  let stored: string | undefined;
  for (const line of (readFile('priv/token.cfg') ?? '').split('\n')) {
    const t = /^(\S+) (\S+)$/.exec(line);
    if (t && t[1] === tokenid) stored = t[2];
  }
  const a = Buffer.from(stored ?? '');
  const b = Buffer.from(value);
  if (stored === undefined || a.length !== b.length || !timingSafeEqual(a, b)) die('invalid token value!');
  return tokenid;
}
