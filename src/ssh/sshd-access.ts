/**
 * Who the new sshd settings let in: the questions a pre-flight asks before
 * anything changes. Would the admin's installed keys still be accepted?
 * Would AllowUsers/AllowGroups/DenyUsers keep the admin out? Pure functions
 * over parsed keys, settings and `sshd -T -C` output.
 */
import { isIP } from 'node:net';
import type { PublicKey } from './keys.ts';
import type { Effective } from './sshd.ts';

interface SettingLike {
  keyword: string;
  value: string;
  match?: string;
}

/** The signature algorithms a key type can log in with (RSA keys sign with SHA-2 under their own names). */
function signatureNames(key: PublicKey): string[] {
  if (key.type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [key.type];
}

/**
 * Why `settings` would refuse `key`, or undefined when it logs in:
 * PubkeyAcceptedAlgorithms must hold one of its signature algorithms, and an
 * RSA key must have RequiredRSASize bits.
 */
export function keyRefusal(key: PublicKey, settings: readonly SettingLike[]): string | undefined {
  const global = settings.filter((s) => !s.match);
  const accepted = global.find((s) => s.keyword === 'PubkeyAcceptedAlgorithms')?.value.split(',');
  if (accepted && !signatureNames(key).some((n) => accepted.includes(n))) return `${key.type} keys are not in PubkeyAcceptedAlgorithms`;
  const rsaSize = Number(global.find((s) => s.keyword === 'RequiredRSASize')?.value ?? 0);
  if (key.family === 'rsa' && key.bits < rsaSize) return `RequiredRSASize ${rsaSize} refuses an RSA key of ${key.bits} bits`;
  return undefined;
}

/**
 * sshd's patterns: `*` and `?` wildcards; a `!` negation is not supported
 * here (never written by us). User and group names match case-sensitively,
 * as in OpenSSH's match.c; only host names ignore case.
 */
function wildcard(pattern: string, value: string, ignoreCase = false): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, ignoreCase ? 'i' : '');
  return re.test(value);
}

/** An address against a host pattern list (as in AllowUsers user@10.0.0.0/8,192.0.2.*): CIDR networks or wildcards. */
export function addressMatches(patterns: string, address: string): boolean {
  return patterns
    .split(',')
    .filter(Boolean)
    .some((pattern) => (pattern.includes('/') ? inNetwork(address, pattern) : wildcard(pattern, address, true)));
}

/** Does an AllowUsers/DenyUsers entry (`user` or `user@host`) cover this user connecting from `address`? */
function userEntryMatches(entry: string, user: string, address: string): boolean {
  const at = entry.lastIndexOf('@');
  if (at < 0) return wildcard(entry, user);
  return wildcard(entry.slice(0, at), user) && addressMatches(entry.slice(at + 1), address);
}

/**
 * Why sshd, as `sshd -T -C user=USER,addr=ADDRESS` describes it, would
 * refuse USER from ADDRESS before or during key authentication; undefined
 * when a key login can work. Follows auth.c's allowed_user(): DenyUsers,
 * AllowUsers, DenyGroups, AllowGroups, in that order.
 */
export function admissionProblem(effective: Effective, user: string, groups: readonly string[], address: string): string | undefined {
  const list = (k: string) => effective.get(k) ?? [];
  const denied = list('denyusers').find((e) => userEntryMatches(e, user, address));
  if (denied) return `DenyUsers ${denied} refuses ${user}`;
  const allowUsers = list('allowusers');
  if (allowUsers.length && !allowUsers.some((e) => userEntryMatches(e, user, address))) return `AllowUsers ${allowUsers.join(' ')} does not include ${user} from ${address}`;
  const deniedGroup = list('denygroups').find((g) => groups.some((mine) => wildcard(g, mine)));
  if (deniedGroup) return `DenyGroups ${deniedGroup} refuses ${user} (member of ${deniedGroup})`;
  const allowGroups = list('allowgroups');
  if (allowGroups.length && !allowGroups.some((g) => groups.some((mine) => wildcard(g, mine)))) {
    return `AllowGroups ${allowGroups.join(' ')} does not include any group of ${user} (${groups.join(', ') || 'none'})`;
  }
  if ((list('pubkeyauthentication')[0] ?? 'yes').toLowerCase() !== 'yes') return 'PubkeyAuthentication is no';
  const methods = list('authenticationmethods');
  if (methods.length && !methods.includes('any') && !methods.some((m) => m.split(',')[0] === 'publickey')) {
    return `AuthenticationMethods ${methods.join(' ')} cannot start with publickey`;
  }
  return undefined;
}

// --- addresses --------------------------------------------------------------

function ipv4ToInt(address: string): number | null {
  if (isIP(address) !== 4) return null;
  return address.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** Is an IPv4 address inside an IPv4 network (a.b.c.d/nn)? IPv6 only by equality of the written network. */
export function inNetwork(address: string, cidr: string): boolean {
  const [net = '', prefixText = ''] = cidr.split('/');
  const a = ipv4ToInt(address);
  const n = ipv4ToInt(net);
  const prefix = Number(prefixText || 32);
  if (a === null || n === null) return address === net;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((a & mask) >>> 0) === ((n & mask) >>> 0);
}

/** "10.77.7.2/24" -> "10.77.7.0/24" (the network an interface address is in); IPv6 unchanged. */
export function networkOf(cidr: string): string {
  const [address = '', prefixText = '32'] = cidr.split('/');
  const a = ipv4ToInt(address);
  if (a === null) return cidr;
  const prefix = Number(prefixText);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const n = (a & mask) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.')}/${prefix}`;
}

/** A problem with one network as an operator typed it, or undefined ("10.0.0.0/24", "192.0.2.7", "fd00::/64"). */
export function networkProblem(text: string): string | undefined {
  const [address = '', prefix, extra] = text.split('/');
  const family = isIP(address);
  if (extra !== undefined || family === 0) return `"${text}" is not an address or a network (wanted e.g. 10.0.0.0/24)`;
  if (prefix !== undefined) {
    const bits = Number(prefix);
    if (!/^(0|[1-9]\d{0,2})$/.test(prefix) || bits > (family === 4 ? 32 : 128)) return `"${text}": the prefix must be a number from 0 to ${family === 4 ? 32 : 128}`;
    if (family === 4 && networkOf(text) !== text) return `"${text}" has host bits set: the network is ${networkOf(text)}`;
  }
  return undefined;
}

/** The first host of a network, to ask `sshd -T -C` about a connection from it. */
export function hostIn(cidr: string): string {
  const [net = ''] = cidr.split('/');
  const n = ipv4ToInt(net);
  if (n === null) return net;
  const host = cidr.includes('/') && !cidr.endsWith('/32') ? n + 1 : n;
  return [24, 16, 8, 0].map((s) => (host >>> s) & 255).join('.');
}
