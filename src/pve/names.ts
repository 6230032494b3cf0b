/**
 * Proxmox VE name validation: the regexes and
 * length rules of pve-access-control's Auth/Plugin.pm and AccessControl.pm,
 * and the formats of pve-common's JSONSchema.pm. Each `check*` returns null
 * when the value is valid, or Proxmox's error text (messages.ts) when not.
 */
import { msg } from './messages.ts';

export const USER_RE_SRC = '[^\\s:/]+';
export const REALM_RE_SRC = '[A-Za-z][A-Za-z0-9\\.\\-_]+';
export const TOKEN_SUBID_RE_SRC = REALM_RE_SRC;

const USERID_RE = new RegExp(`^(${USER_RE_SRC})@(${REALM_RE_SRC})$`);
const TOKENID_RE = new RegExp(`^((${USER_RE_SRC})@(${REALM_RE_SRC}))!(${TOKEN_SUBID_RE_SRC})$`);
const REALM_RE = new RegExp(`^${REALM_RE_SRC}$`);
const TOKEN_SUBID_RE = new RegExp(`^${TOKEN_SUBID_RE_SRC}$`);
const ID_RE = /^[A-Za-z0-9.\-_]+$/; // group and role ids
const POOL_RE = /^[A-Za-z0-9.\-_]+(?:\/[A-Za-z0-9.\-_]+){0,2}$/;
const POOL_SEGMENTS_RE = /^[A-Za-z0-9.\-_]+(?:\/[A-Za-z0-9.\-_]+)*$/;
const STORAGE_RE = /^[a-z][a-z0-9\-_.]*[a-z0-9]$/;
const VMID_RE = /^[1-9][0-9]{2,8}$/; // pve-vmid: 100 .. 999999999
const NODE_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
// PVE_EMAIL_REGEX (JSONSchema.pm)
const EMAIL_RE = /^[\w+\-~]+(\.[\w+\-~]+)*@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$/;
export const KEYS_PATTERN = /^[0-9a-zA-Z!=]{0,4096}$/;
export const IFACE_RE = /^[a-z][a-z0-9_]{1,20}([:.]\d+)?$/;

/** verify_username: returns null if valid, else the error text. */
export function checkUserid(userid: string): string | null {
  const len = userid.length;
  if (len < 3) return msg.userTooShort(userid);
  if (len > 64) return msg.userTooLong(userid, len);
  return USERID_RE.test(userid) ? null : msg.userInvalid(userid);
}

export function splitUserid(userid: string): { user: string; realm: string } | null {
  const m = USERID_RE.exec(userid);
  return m ? { user: m[1]!, realm: m[2]! } : null;
}

/** pve_verify_tokenid ("user@realm!sub"). */
export function checkTokenid(tokenid: string): string | null {
  return TOKENID_RE.test(tokenid) ? null : msg.tokenIdInvalid(tokenid);
}

/** split_tokenid: [userid, tokensub] or null. */
export function splitTokenid(tokenid: string): [string, string] | null {
  const m = TOKENID_RE.exec(tokenid);
  return m ? [m[1]!, m[4]!] : null;
}

export function isValidTokenSubid(sub: string): boolean {
  return TOKEN_SUBID_RE.test(sub);
}

export function checkRealm(realm: string): string | null {
  return REALM_RE.test(realm) && realm.length <= 32 ? null : msg.realmInvalid(realm);
}

export function checkGroupid(group: string): string | null {
  return ID_RE.test(group) ? null : msg.groupInvalid(group);
}

export function checkRoleid(role: string): string | null {
  return ID_RE.test(role) ? null : msg.roleInvalid(role);
}

/** pve-poolid: up to three levels `a/b/c`. */
export function checkPoolid(pool: string): string | null {
  if (POOL_RE.test(pool)) return null;
  if (POOL_SEGMENTS_RE.test(pool)) return msg.poolTooDeep(pool);
  return msg.poolInvalid(pool);
}

export function checkStorageId(id: string): string | null {
  return STORAGE_RE.test(id) ? null : msg.storageIdInvalid(id);
}

export function checkVmid(vmid: string): string | null {
  return VMID_RE.test(vmid) ? null : msg.vmidInvalid();
}

export function checkNodeName(node: string): string | null {
  return NODE_RE.test(node) ? null : msg.nodeInvalid(node);
}

/** email-opt: empty is fine, else PVE_EMAIL_REGEX. */
export function checkEmail(email: string): string | null {
  if (email === '') return null;
  return EMAIL_RE.test(email) && email.length <= 254 ? null : msg.emailInvalid();
}

/** The userid, token or group an ACL names: '@group', 'user@realm', 'user@realm!token'. */
export type AclMember = { kind: 'group'; id: string } | { kind: 'user'; id: string } | { kind: 'token'; id: string };

export function classifyAclMember(ug: string): AclMember | null {
  const g = /^@(\S+)$/.exec(ug);
  if (g && checkGroupid(g[1]!) === null) return { kind: 'group', id: g[1]! };
  if (checkUserid(ug) === null) return { kind: 'user', id: ug };
  if (splitTokenid(ug)) return { kind: 'token', id: ug };
  return null;
}

/**
 * normalize_path (AccessControl.pm): collapse '//', strip a trailing '/',
 * prefix '/', and require [[:alnum:].-_/]. Returns null when invalid.
 */
export function normalizeAclPath(path: string | undefined): string | null {
  if (!path) return null;
  let p = path.replace(/\/+/g, '/').replace(/\/$/, '');
  if (!p) p = '/';
  if (!p.startsWith('/')) p = `/${p}`;
  return /^[A-Za-z0-9.\-_/]+$/.test(p) ? p : null;
}

const ID = '[A-Za-z0-9.\\-_]+';
const PVE9_ACL_PATHS = [
  '/',
  '/access',
  '/access/groups',
  `/access/groups/${ID}`,
  '/access/realm',
  `/access/realm/${ID}`,
  '/nodes',
  `/nodes/${ID}`,
  '/pool',
  `/pool/${ID}(?:/${ID}){0,2}`,
  '/sdn',
  `/sdn/controllers(?:/${ID})?`,
  `/sdn/dns(?:/${ID})?`,
  `/sdn/fabrics(?:/${ID})?`,
  `/sdn/ipams(?:/${ID})?`,
  `/sdn/prefix-lists(?:/${ID})?`,
  `/sdn/route-maps(?:/${ID})?`,
  `/sdn/zones(?:/${ID}(?:/${ID}(?:/(?:[1-9][0-9]{0,3}))?)?)?`,
  `/storage(?:/${ID})?`,
  '/vms',
  '/vms/[1-9][0-9]{2,}',
  `/mapping(?:/${ID}(?:/${ID})?)?`,
];
const PVE8_ONLY_MISSING = new Set(['/sdn/fabrics', '/sdn/prefix-lists', '/sdn/route-maps']);
const ACL_PATH_RE = {
  9: new RegExp(`^(?:${PVE9_ACL_PATHS.join('|')})$`),
  8: new RegExp(`^(?:${PVE9_ACL_PATHS.filter((p) => ![...PVE8_ONLY_MISSING].some((m) => p.startsWith(m))).join('|')})$`),
};

/** check_path: is this a path ACLs may be set on through the API / pveum? */
export function isValidAclPath(path: string, major: 8 | 9 = 9): boolean {
  return ACL_PATH_RE[major].test(path);
}
