/**
 * /etc/pve/user.cfg: parser and writer, as pve-access-control's
 * `parse_user_config` / `write_user_config` (src/PVE/AccessControl.pm).
 *
 * - Parsing never throws: invalid lines are dropped with Proxmox's warning
 *   text (messages.ts `msg.cfg`), collected in `warnings`.
 * - Writing reproduces Proxmox's layout byte for byte: users (each followed by
 *   its tokens), groups, pools, non-built-in roles, then ACLs from a
 *   depth-first walk of the ACL tree, separated by blank lines.
 * - Built-in roles and `root@pam` are forced in (`userconfig_force_defaults`).
 *
 * Plain data and string work only; no I/O.
 */
import { msg } from './messages.ts';
import { checkGroupid, checkRoleid, checkUserid, normalizeAclPath, splitTokenid, splitUserid } from './names.ts';
import { BUILTIN_ROLES, isBuiltinRole, isValidPrivilege, type PveMajor } from './privileges.ts';

export type Bit = 0 | 1;

export interface PveToken {
  expire: number;
  privsep: Bit;
  comment?: string;
}

export interface PveUser {
  enable: Bit;
  expire: number;
  firstname?: string;
  lastname?: string;
  email?: string;
  comment?: string;
  keys?: string;
  /** groups this user is a member of (back-links of group member lists) */
  groups: Set<string>;
  tokens: Map<string, PveToken>;
}

export interface PveGroup {
  users: Set<string>;
  comment?: string;
}

export interface PvePool {
  vms: Set<string>;
  storage: Set<string>;
  comment?: string;
  parent?: string;
  pools: Set<string>;
}

/** member id -> role -> propagate */
export type AclMembers = Map<string, Map<string, Bit>>;

export interface AclNode {
  users: AclMembers;
  groups: AclMembers;
  tokens: AclMembers;
  children: Map<string, AclNode>;
}

export interface UserCfg {
  major: PveMajor;
  users: Map<string, PveUser>;
  groups: Map<string, PveGroup>;
  pools: Map<string, PvePool>;
  /** role -> privileges; includes the built-in roles */
  roles: Map<string, Set<string>>;
  acl: AclNode;
  /** vmid -> pool that claims it */
  vms: Map<string, string>;
}

export interface ParseResult {
  cfg: UserCfg;
  warnings: string[];
}

// ---------------------------------------------------------------------------
// Perl helpers

/** Perl truthiness of a scalar read from the file ('' and '0' are false). */
const perlTrue = (v: string | undefined): boolean => v !== undefined && v !== '' && v !== '0';

/** PVE::Tools::split_list: split on NUL if present, else on , ; and whitespace. */
export function splitList(text: string | undefined): string[] {
  const t = text ?? '';
  if (t.includes('\0')) return t.split('\0').filter((x, i, a) => !(i === a.length - 1 && x === ''));
  return t
    .replace(/[,;]/g, ' ')
    .replace(/^\s+/, '')
    .split(/\s+/)
    .filter((x) => x !== '');
}

/**
 * PVE::Tools::encode_text: uri_escape(utf8(text), "^\x20-\x24\x26-\x39\x3b-\x7e"),
 * i.e. percent-encode control bytes, '%', ':' and every non-ASCII byte.
 */
export function encodeText(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const keep = (byte >= 0x20 && byte <= 0x24) || (byte >= 0x26 && byte <= 0x39) || (byte >= 0x3b && byte <= 0x7e);
    out += keep ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** PVE::Tools::decode_text: uri_unescape, then decode UTF-8. */
export function decodeText(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      bytes.push(...Buffer.from(text[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Perl `split(/:/, $line)` with trailing empty fields removed, then each field trimmed. */
function splitFields(line: string): string[] {
  const parts = line.split(':');
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.map((p) => p.replace(/^\s+/, '').replace(/\s+$/, ''));
}

// ---------------------------------------------------------------------------
// construction

export function newAclNode(): AclNode {
  return { users: new Map(), groups: new Map(), tokens: new Map(), children: new Map() };
}

export function newUser(enable: Bit = 1): PveUser {
  return { enable, expire: 0, groups: new Set(), tokens: new Map() };
}

export function newPool(): PvePool {
  return { vms: new Set(), storage: new Set(), pools: new Set() };
}

export function emptyUserCfg(major: PveMajor = 9): UserCfg {
  return {
    major,
    users: new Map(),
    groups: new Map(),
    pools: new Map(),
    roles: new Map(),
    acl: newAclNode(),
    vms: new Map(),
  };
}

/** userconfig_force_defaults: built-in roles, and root@pam (enabled) if missing. */
export function forceDefaults(cfg: UserCfg): void {
  for (const [role, privs] of Object.entries(BUILTIN_ROLES[cfg.major])) cfg.roles.set(role, new Set(privs));
  if (!cfg.users.has('root@pam')) cfg.users.set('root@pam', newUser(1));
}

/** The ACL tree node for a normalized path, created on demand when `create`. */
export function findAclNode(cfg: UserCfg, path: string, create = true): AclNode | undefined {
  let node = cfg.acl;
  for (const part of path.split('/')) {
    if (!part) continue;
    let child = node.children.get(part);
    if (!child) {
      if (!create) return undefined;
      child = newAclNode();
      node.children.set(part, child);
    }
    node = child;
  }
  return node;
}

function setAcl(members: AclMembers, id: string, role: string, propagate: Bit): void {
  let roles = members.get(id);
  if (!roles) members.set(id, (roles = new Map()));
  roles.set(role, propagate);
}

function tokenExists(cfg: UserCfg, tokenid: string): boolean {
  const split = splitTokenid(tokenid);
  if (!split) return false;
  return cfg.users.get(split[0])?.tokens.has(split[1]) ?? false;
}

// ---------------------------------------------------------------------------
// parser

export function parseUserCfg(raw: string | undefined, options: { major?: PveMajor } = {}): ParseResult {
  const cfg = emptyUserCfg(options.major ?? 9);
  const warnings: string[] = [];
  const warn = (w: string) => warnings.push(w);
  forceDefaults(cfg);

  for (const rawLine of (raw ?? '').split('\n')) {
    const line = rawLine.replace(/^\s+/, '').replace(/\s+$/, '');
    if (!line) continue;
    const data = splitFields(line);
    const et = data.shift();

    if (et === 'user') {
      const [user = '', enable, expireRaw, firstname, lastname, email, comment, keys] = data;
      if (checkUserid(user) !== null) {
        warn(msg.cfg.ignoreUserInvalid(user));
        continue;
      }
      const expireText = perlTrue(expireRaw) ? expireRaw! : '0';
      if (!/^\d+$/.test(expireText)) {
        warn(msg.cfg.ignoreUserExpire(user, expireText));
        continue;
      }
      const u = newUser(perlTrue(enable) ? 1 : 0);
      u.expire = parseInt(expireText, 10);
      if (perlTrue(firstname)) u.firstname = decodeText(firstname!);
      if (perlTrue(lastname)) u.lastname = decodeText(lastname!);
      if (email !== undefined) u.email = email;
      if (perlTrue(comment)) u.comment = decodeText(comment!);
      if (perlTrue(keys)) u.keys = keys!;
      cfg.users.set(user, u); // a repeated user line replaces the entry, as in Perl
    } else if (et === 'token') {
      const [tokenid = '', expireRaw, privsep, comment] = data;
      const split = splitTokenid(tokenid);
      if (!split) {
        warn(msg.cfg.ignoreTokenInvalid(tokenid));
        continue;
      }
      const expireText = perlTrue(expireRaw) ? expireRaw! : '0';
      if (!/^\d+$/.test(expireText)) {
        warn(msg.cfg.ignoreTokenExpire(tokenid, expireText));
        continue;
      }
      const owner = cfg.users.get(split[0]);
      if (!owner) {
        warn(msg.cfg.ignoreTokenNoUser(tokenid));
        continue;
      }
      const token: PveToken = { expire: parseInt(expireText, 10), privsep: perlTrue(privsep) ? 1 : 0 };
      const prev = owner.tokens.get(split[1]);
      if (prev?.comment !== undefined) token.comment = prev.comment;
      if (perlTrue(comment)) token.comment = decodeText(comment!);
      owner.tokens.set(split[1], token);
    } else if (et === 'group') {
      const [group = '', userlist, comment] = data;
      if (checkGroupid(group) !== null) {
        warn(msg.cfg.ignoreGroupInvalid(group));
        continue;
      }
      let g = cfg.groups.get(group);
      if (!g) cfg.groups.set(group, (g = { users: new Set() }));
      if (perlTrue(comment)) g.comment = decodeText(comment!);
      for (const user of splitList(userlist)) {
        if (checkUserid(user) !== null) {
          warn(msg.cfg.ignoreGroupMember(user));
          continue;
        }
        const u = cfg.users.get(user);
        if (u) u.groups.add(group);
        else warn(msg.cfg.ignoreGroupMember(user));
        g.users.add(user);
      }
    } else if (et === 'role') {
      const [role = '', privlist] = data;
      if (checkRoleid(role) !== null) {
        warn(msg.cfg.ignoreRoleInvalid(role));
        continue;
      }
      let privs = cfg.roles.get(role);
      if (!privs) cfg.roles.set(role, (privs = new Set()));
      for (const priv of splitList(privlist)) {
        if (isValidPrivilege(priv, cfg.major)) privs.add(priv);
        else warn(msg.cfg.ignorePriv(priv));
      }
    } else if (et === 'acl') {
      const [propagateRaw, pathtxt = '', uglist, rolelist] = data;
      const propagate: Bit = perlTrue(propagateRaw) ? 1 : 0;
      const path = normalizeAclPath(pathtxt);
      if (!path) {
        warn(msg.cfg.ignoreAclPath(pathtxt));
        continue;
      }
      const node = findAclNode(cfg, path)!;
      for (const role of splitList(rolelist)) {
        if (checkRoleid(role) !== null) {
          warn(msg.cfg.ignoreAclRoleName(role));
          continue;
        }
        if (!cfg.roles.has(role)) {
          warn(msg.cfg.ignoreAclRole(role));
          continue;
        }
        for (const ug of splitList(uglist)) {
          const group = /^@(\S+)$/.exec(ug)?.[1];
          if (group && checkGroupid(group) === null) {
            if (!cfg.groups.has(group)) warn(msg.cfg.ignoreAclGroup(group));
            setAcl(node.groups, group, role, propagate);
          } else if (checkUserid(ug) === null) {
            if (!cfg.users.has(ug)) warn(msg.cfg.ignoreAclMember(ug));
            setAcl(node.users, ug, role, propagate);
          } else if (splitTokenid(ug)) {
            if (tokenExists(cfg, ug)) setAcl(node.tokens, ug, role, propagate);
            else warn(msg.cfg.ignoreAclToken(ug));
          } else {
            warn(msg.cfg.invalidAclUg(ug));
          }
        }
      }
    } else if (et === 'pool') {
      const [pool = '', comment, vmlist, storelist] = data;
      if (!/^[A-Za-z0-9.\-_]+(?:\/[A-Za-z0-9.\-_]+){0,2}$/.test(pool)) {
        warn(msg.cfg.ignorePoolInvalid(pool));
        continue;
      }
      let p = cfg.pools.get(pool);
      if (!p) cfg.pools.set(pool, (p = newPool()));
      // nested pools: parents are created implicitly
      for (let curr = pool, m = /^(.+)\/[^/]+$/.exec(curr); m; m = /^(.+)\/[^/]+$/.exec(curr)) {
        const parent = m[1]!;
        cfg.pools.get(curr)!.parent = parent;
        if (!cfg.pools.has(parent)) cfg.pools.set(parent, newPool());
        cfg.pools.get(parent)!.pools.add(curr);
        curr = parent;
      }
      if (perlTrue(comment)) p.comment = decodeText(comment!);
      for (const vmidText of splitList(vmlist)) {
        if (!/^\d+$/.test(vmidText)) {
          warn(msg.cfg.ignoreVmid(vmidText, pool));
          continue;
        }
        const vmid = String(parseInt(vmidText, 10));
        if (cfg.vms.has(vmid)) {
          warn(msg.cfg.ignoreDuplicateVmid(vmid, pool));
          continue;
        }
        p.vms.add(vmid);
        cfg.vms.set(vmid, pool);
      }
      for (const storeid of splitList(storelist)) {
        if (!/^[a-z][a-z0-9\-_.]*[a-z0-9]$/.test(storeid)) {
          warn(msg.cfg.ignoreStorage(storeid, pool));
          continue;
        }
        p.storage.add(storeid);
      }
    } else {
      warn(msg.cfg.ignoreLine(line));
    }
  }

  forceDefaults(cfg);
  return { cfg, warnings };
}

// ---------------------------------------------------------------------------
// writer

const byteSort = (xs: Iterable<string>): string[] => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** Depth-first walk of the ACL tree, children sorted by name: (path, node). */
export function* walkAcl(node: AclNode, path = '/'): Generator<[string, AclNode]> {
  yield [path, node];
  for (const name of byteSort(node.children.keys())) {
    yield* walkAcl(node.children.get(name)!, path === '/' ? `/${name}` : `${path}/${name}`);
  }
}

export function writeUserCfg(cfg: UserCfg): string {
  let data = '';

  for (const userid of byteSort(cfg.users.keys())) {
    const d = cfg.users.get(userid)!;
    const firstname = d.firstname ? encodeText(d.firstname) : '';
    const lastname = d.lastname ? encodeText(d.lastname) : '';
    const email = d.email || '';
    const comment = d.comment ? encodeText(d.comment) : '';
    const keys = d.keys ? d.keys : '';
    data += `user:${userid}:${d.enable ? 1 : 0}:${Math.trunc(d.expire || 0)}:${firstname}:${lastname}:${email}:${comment}:${keys}:\n`;
    for (const tokenSub of byteSort(d.tokens.keys())) {
      const t = d.tokens.get(tokenSub)!;
      const tcomment = t.comment ? encodeText(t.comment) : '';
      data += `token:${userid}!${tokenSub}:${Math.trunc(t.expire || 0)}:${t.privsep ? 1 : 0}:${tcomment}:\n`;
    }
  }
  data += '\n';

  for (const group of byteSort(cfg.groups.keys())) {
    const g = cfg.groups.get(group)!;
    data += `group:${group}:${byteSort(g.users).join(',')}:${g.comment ? encodeText(g.comment) : ''}:\n`;
  }
  data += '\n';

  for (const pool of byteSort(cfg.pools.keys())) {
    const p = cfg.pools.get(pool)!;
    const comment = p.comment ? encodeText(p.comment) : '';
    data += `pool:${pool}:${comment}:${byteSort(p.vms).join(',')}:${byteSort(p.storage).join(',')}:\n`;
  }
  data += '\n';

  for (const role of byteSort(cfg.roles.keys())) {
    if (isBuiltinRole(role)) continue;
    data += `role:${role}:${byteSort(cfg.roles.get(role)!).join(',')}:\n`;
  }
  data += '\n';

  for (const [path, node] of walkAcl(cfg.acl)) {
    // propagate -> role list -> members
    const byProp: [Map<string, Set<string>>, Map<string, Set<string>>] = [new Map(), new Map()];
    const collect = (members: AclMembers, prefix: string, exclude?: string) => {
      for (const [member, roles] of members) {
        if (exclude && member === exclude) continue;
        const lists: [string[], string[]] = [[], []];
        for (const role of byteSort(roles.keys())) lists[roles.get(role) ? 1 : 0].push(role);
        for (const prop of [0, 1] as const) {
          if (lists[prop].length === 0) continue;
          const key = lists[prop].join(',');
          let set = byProp[prop].get(key);
          if (!set) byProp[prop].set(key, (set = new Set()));
          set.add(`${prefix}${member}`);
        }
      }
    };
    collect(node.groups, '@');
    collect(node.users, '', 'root@pam'); // root@pam is always Administrator: never written
    collect(node.tokens, '');
    for (const prop of [0, 1] as const) {
      for (const rolelist of byteSort(byProp[prop].keys())) {
        data += `acl:${prop}:${path}:${byteSort(byProp[prop].get(rolelist)!).join(',')}:${rolelist}:\n`;
      }
    }
  }

  return data;
}

// ---------------------------------------------------------------------------
// helpers the API handlers share (AccessControl.pm)

export function addUserGroup(cfg: UserCfg, userid: string, group: string): void {
  cfg.users.get(userid)?.groups.add(group);
  cfg.groups.get(group)?.users.add(userid);
}

/** delete_user_group: remove the user from every group. */
export function deleteUserGroup(cfg: UserCfg, userid: string): void {
  for (const g of cfg.groups.values()) g.users.delete(userid);
  cfg.users.get(userid)?.groups.clear();
}

function deleteAclMember(cfg: UserCfg, kind: 'users' | 'groups' | 'tokens', match: (id: string) => boolean): void {
  for (const [, node] of walkAcl(cfg.acl)) for (const id of [...node[kind].keys()]) if (match(id)) node[kind].delete(id);
}

/** delete_user_acl: drop the user's own entries and those of its tokens. */
export function deleteUserAcl(cfg: UserCfg, userid: string): void {
  deleteAclMember(cfg, 'users', (id) => id === userid);
  deleteAclMember(cfg, 'tokens', (id) => id.startsWith(`${userid}!`));
}

export function deleteGroupAcl(cfg: UserCfg, group: string): void {
  deleteAclMember(cfg, 'groups', (id) => id === group);
}

export function deleteTokenAcl(cfg: UserCfg, tokenid: string): void {
  deleteAclMember(cfg, 'tokens', (id) => id === tokenid);
}

/** delete_pool_acl: drop the ACL subtree at /pool/<pool>. */
export function deletePoolAcl(cfg: UserCfg, pool: string): void {
  const parts = `pool/${pool}`.split('/');
  const last = parts.pop()!;
  let node: AclNode | undefined = cfg.acl;
  for (const p of parts) node = node?.children.get(p);
  node?.children.delete(last);
}

export interface AclEntry {
  path: string;
  type: 'user' | 'group' | 'token';
  ugid: string;
  roleid: string;
  propagate: Bit;
}

/** All ACL entries in tree order (users, then groups, then tokens per path), as GET /access/acl lists them. */
export function aclEntries(cfg: UserCfg): AclEntry[] {
  const out: AclEntry[] = [];
  for (const [path, node] of walkAcl(cfg.acl)) {
    for (const type of ['user', 'group', 'token'] as const) {
      const members = node[`${type}s`];
      for (const ugid of byteSort(members.keys())) {
        const roles = members.get(ugid)!;
        for (const roleid of byteSort(roles.keys())) out.push({ path, type, ugid, roleid, propagate: roles.get(roleid)! });
      }
    }
  }
  return out;
}

/** Userid part of a userid, for realm-specific handling. */
export function realmOf(userid: string): string | undefined {
  return splitUserid(userid)?.realm;
}
