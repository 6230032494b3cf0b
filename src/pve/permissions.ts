/**
 * Proxmox VE's permission evaluator, as pure
 * functions over the parsed user.cfg model (user-cfg.ts). No I/O.
 *
 * - `roleMap` / `roles`: PVE::AccessControl::roles($cfg, $user, $path)
 *   (pve-access-control src/PVE/AccessControl.pm). Pools are NOT considered.
 * - `privilegeMap` / `permissions`: PVE::RPCEnvironment::permissions($user,
 *   $path) with its `$compile_acl_path` (src/PVE/RPCEnvironment.pm): pool
 *   inheritance for /vms/<id> and /storage/<id>, privileges unioned over the
 *   roles with their propagate flags, privilege-separated tokens intersected
 *   with their owner's privileges.
 * - `effectivePermissions`: RPCEnvironment::get_effective_permissions, what
 *   `GET /access/permissions` returns without `path`.
 * - `accessMatrix`: users and tokens against a list of paths, for documents.
 *
 * Perl details kept on purpose (they decide edge cases):
 * - the path is cut with Perl's `split("/", $path)` (leading empty field kept,
 *   trailing ones dropped; "/" is the root alone, "" walks nothing, so it
 *   yields no roles; a relative path skips the root's entries);
 * - at each level token entries, else user entries, else the union of the
 *   entries of the groups the id is a member of count, and only roles that
 *   propagate or sit on the requested path itself; if a level contributes
 *   nothing (e.g. only non-propagating entries above the target), what was
 *   inherited stays, and the next kind of entry is tried at the same level;
 * - NoAccess among the final roles leaves only NoAccess (with its flag).
 *
 * Propagate flags are `Bit`s (0 | 1), as Perl's hash values are.
 */
import { splitTokenid, checkUserid } from './names.ts';
import { BUILTIN_ROLES, isBuiltinRole, isValidPrivilege, type PveMajor } from './privileges.ts';
import { walkAcl, type AclMembers, type Bit, type UserCfg } from './user-cfg.ts';

/** role -> propagate */
export type RoleMap = Map<string, Bit>;
/** privilege -> propagate */
export type PrivMap = Map<string, Bit>;

const ROOT = 'root@pam';
const NO_ACCESS = 'NoAccess';

const byteSort = (xs: Iterable<string>): string[] => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** Perl `split("/", $path)`: leading empty field kept, trailing empty fields removed. */
function perlSplitPath(path: string): string[] {
  const parts = path.split('/');
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** The roles of one ACL member entry that count at this level (propagating, or on the final path). */
function collect(members: AclMembers, id: string, final: boolean, into: RoleMap | undefined): RoleMap | undefined {
  const ri = members.get(id);
  if (!ri) return into;
  let out = into;
  for (const [role, propagate] of ri) {
    if (final || propagate) {
      out ??= new Map();
      out.set(role, propagate);
    }
  }
  return out;
}

/**
 * PVE::AccessControl::roles: role -> propagate for a user or token id on a
 * path, without pools. root@pam gets Administrator; a token without privilege
 * separation gets its owner's roles; an unknown token gets nothing.
 */
export function roleMap(cfg: UserCfg, id: string, path: string | undefined): RoleMap {
  if (id === ROOT) return new Map([['Administrator', 1]]); // Perl returns the bare string 'Administrator'
  if (path === undefined) return new Map(); // "internal error: ACL check called for undefined ACL path!"

  const tok = splitTokenid(id);
  if (tok) {
    const info = cfg.users.get(tok[0])?.tokens.get(tok[1]);
    if (!info) return new Map();
    if (!info.privsep) return roleMap(cfg, tok[0], path);
  }

  let roles: RoleMap = new Map();
  const split = path === '/' ? [''] : perlSplitPath(path);
  let node = cfg.acl;
  for (let i = 0; i < split.length; i++) {
    const p = split[i]!;
    const final = i === split.length - 1;
    if (p !== '') {
      const child = node.children.get(p);
      if (!child) break; // Perl autovivifies an empty node: nothing below can match
      node = child;
    }

    const fromToken = collect(node.tokens, id, final, undefined);
    if (fromToken) {
      roles = fromToken; // overwrite previous settings
      continue;
    }
    const fromUser = collect(node.users, id, final, undefined);
    if (fromUser) {
      roles = fromUser; // user privs always override group privs
      continue;
    }
    let fromGroups: RoleMap | undefined;
    for (const g of node.groups.keys()) {
      if (!cfg.groups.get(g)?.users.has(id)) continue;
      fromGroups = collect(node.groups, g, final, fromGroups);
    }
    if (fromGroups) roles = fromGroups;
  }

  if (roles.has(NO_ACCESS)) return new Map([[NO_ACCESS, roles.get(NO_ACCESS)!]]);
  return roles;
}

/** Sorted role names of `roleMap` (what perm-testN.pl's check_roles compares). */
export function roles(cfg: UserCfg, id: string, path: string | undefined): string[] {
  return byteSort(roleMap(cfg, id, path).keys());
}

/**
 * The privileges a role grants on `major`: built-in roles from that branch's
 * table, custom roles from user.cfg without privileges `major` does not know
 * (its parser would have dropped them).
 */
export function rolePrivileges(cfg: UserCfg, role: string, major: PveMajor = cfg.major): readonly string[] {
  if (isBuiltinRole(role)) return BUILTIN_ROLES[major][role] ?? [];
  const privs = cfg.roles.get(role);
  if (!privs) return [];
  return [...privs].filter((p) => isValidPrivilege(p, major));
}

/** Union of the roles `id` has on `/pool/<pool>` for every pool that has `path` (a /vms/<id> or /storage/<id>) as member. */
function poolRoles(cfg: UserCfg, id: string, path: string): Set<string> {
  const out = new Set<string>();
  for (const [pool, d] of cfg.pools) {
    let member = false;
    for (const vmid of d.vms) if (`/vms/${vmid}` === path) member = true;
    for (const storeid of d.storage) if (`/storage/${storeid}` === path) member = true;
    if (!member) continue;
    for (const role of roleMap(cfg, id, `/pool/${pool}`).keys()) out.add(role);
  }
  return out;
}

/**
 * The roles `$compile_acl_path` derives privileges from: `roleMap` plus the
 * roles inherited from pools the path is a member of (never propagating).
 * NoAccess in the regular roles ignores the pool roles; NoAccess among the
 * pool roles turns the result into NoAccess. For a privilege-separated token
 * these are the token's own roles (the owner intersection happens on
 * privileges); a token without privilege separation gets its owner's.
 */
export function effectiveRoles(cfg: UserCfg, id: string, path: string | undefined): RoleMap {
  if (id === ROOT || path === undefined) return roleMap(cfg, id, path);
  const tok = splitTokenid(id);
  if (tok) {
    const info = cfg.users.get(tok[0])?.tokens.get(tok[1]);
    if (!info) return new Map();
    if (!info.privsep) return effectiveRoles(cfg, tok[0], path);
  } else if (checkUserid(id) !== null) {
    return new Map();
  }
  let r = roleMap(cfg, id, path);
  const fromPools = poolRoles(cfg, id, path);
  if (fromPools.size > 0 && !r.has(NO_ACCESS)) {
    if (fromPools.has(NO_ACCESS)) {
      r = new Map([[NO_ACCESS, 0]]); // pool ACL NoAccess trumps regular ACL
    } else {
      r = new Map(r);
      for (const role of fromPools) if (!r.has(role)) r.set(role, 0);
    }
  }
  return r;
}

/**
 * PVE::RPCEnvironment::permissions: privilege -> propagate for a user or
 * token on a path. The propagate flag is informational (propagation itself
 * happens in `roleMap`); a privilege is granted iff it is a key.
 */
export function privilegeMap(cfg: UserCfg, id: string, path: string | undefined, pveMajor: PveMajor = cfg.major): PrivMap {
  if (id === ROOT) return new Map(rolePrivileges(cfg, 'Administrator', pveMajor).map((p) => [p, 1 as Bit]));
  if (path === undefined) return new Map();

  let owner: string | undefined;
  let ownerPrivs: PrivMap | undefined;
  const tok = splitTokenid(id);
  if (tok) {
    const info = cfg.users.get(tok[0])?.tokens.get(tok[1]);
    if (!info) return new Map();
    ownerPrivs = privilegeMap(cfg, tok[0], path, pveMajor);
    if (!info.privsep) return ownerPrivs;
    owner = tok[0];
  } else if (checkUserid(id) !== null) {
    return new Map();
  }

  const privs: PrivMap = new Map();
  for (const [role, propagate] of effectiveRoles(cfg, id, path)) {
    // set the privilege to propagating iff any role granting it propagates
    for (const p of rolePrivileges(cfg, role, pveMajor)) privs.set(p, privs.get(p) || propagate ? 1 : 0);
  }

  if (owner !== undefined && owner !== ROOT) {
    // privsep token: only what the owner has too, propagating only if both do
    const out: PrivMap = new Map();
    for (const [p, propagate] of privs) {
      const u = ownerPrivs!.get(p);
      if (u !== undefined) out.set(p, u && propagate ? 1 : 0);
    }
    return out;
  }
  return privs;
}

/** Sorted privilege names of `privilegeMap` (what perm-testN.pl's check_permissions compares). */
export function permissions(cfg: UserCfg, id: string, path: string | undefined, pveMajor: PveMajor = cfg.major): string[] {
  return byteSort(privilegeMap(cfg, id, path, pveMajor).keys());
}

/** RPCEnvironment::check: has `id` every one of `privs` on `path`? */
export function hasPrivileges(cfg: UserCfg, id: string, path: string, privs: readonly string[], pveMajor: PveMajor = cfg.major): boolean {
  const have = privilegeMap(cfg, id, path, pveMajor);
  return privs.every((p) => have.has(p));
}

/** RPCEnvironment::check_any: has `id` at least one of `privs` on `path`? */
export function hasAnyPrivilege(cfg: UserCfg, id: string, path: string, privs: readonly string[], pveMajor: PveMajor = cfg.major): boolean {
  const have = privilegeMap(cfg, id, path, pveMajor);
  return privs.some((p) => have.has(p));
}

/** A privilege map as the API returns it: `{ "<priv>": 0|1 }`, keys sorted. */
export function privObject(privs: PrivMap): Record<string, Bit> {
  return Object.fromEntries(byteSort(privs.keys()).map((p) => [p, privs.get(p)!]));
}

/** The paths get_effective_permissions looks at, sorted. */
export const EFFECTIVE_DEFAULT_PATHS = Object.freeze(['/', '/access', '/access/groups', '/nodes', '/pool', '/sdn', '/storage', '/vms']);

export function effectivePermissionPaths(cfg: UserCfg): string[] {
  const paths = new Set<string>(EFFECTIVE_DEFAULT_PATHS);
  for (const [path] of walkAcl(cfg.acl)) paths.add(path); // every node of the ACL tree, intermediate ones too
  for (const d of cfg.pools.values()) {
    for (const vmid of d.vms) paths.add(`/vms/${vmid}`);
    for (const storeid of d.storage) paths.add(`/storage/${storeid}`);
  }
  return byteSort(paths);
}

/**
 * RPCEnvironment::get_effective_permissions: path -> { priv: propagate } over
 * the default top-level paths, every path in the ACL tree and every pool
 * member, leaving out the paths where `id` has no privilege at all.
 */
export function effectivePermissions(cfg: UserCfg, id: string, pveMajor: PveMajor = cfg.major): Record<string, Record<string, Bit>> {
  const out: Record<string, Record<string, Bit>> = {};
  for (const path of effectivePermissionPaths(cfg)) {
    const privs = privilegeMap(cfg, id, path, pveMajor);
    if (privs.size > 0) out[path] = privObject(privs);
  }
  return out;
}

// ---------------------------------------------------------------------------
// access-control matrix (for the baseline document)

export interface AccessCell {
  /** effective roles (pools included; a privsep token's own roles), sorted */
  roles: string[];
  /** granted privileges, sorted */
  privileges: string[];
  /** the subset of `privileges` whose propagate flag is set, sorted */
  propagating: string[];
}

export interface AccessRow {
  id: string;
  kind: 'user' | 'token';
  /** the owning user, for tokens */
  owner?: string;
  /** privilege separation, for tokens */
  privsep?: Bit;
  /** user: enable flag; token: its owner's */
  enabled: boolean;
  /** epoch seconds, 0 = never */
  expire: number;
  cells: Record<string, AccessCell>;
}

export interface AccessMatrix {
  major: PveMajor;
  paths: string[];
  rows: AccessRow[];
}

/** `/`, `/vms`, `/storage`, `/nodes`, `/access`, `/sdn`, then `/pool/<id>` for every pool (sorted). */
export function defaultMatrixPaths(cfg: UserCfg): string[] {
  return ['/', '/vms', '/storage', '/nodes', '/access', '/sdn', ...byteSort(cfg.pools.keys()).map((p) => `/pool/${p}`)];
}

export function accessCell(cfg: UserCfg, id: string, path: string, pveMajor: PveMajor = cfg.major): AccessCell {
  const privs = privilegeMap(cfg, id, path, pveMajor);
  return {
    roles: byteSort(effectiveRoles(cfg, id, path).keys()),
    privileges: byteSort(privs.keys()),
    propagating: byteSort([...privs].filter(([, v]) => v).map(([p]) => p)),
  };
}

/** Every user (sorted, each followed by its tokens) against `paths`. */
export function accessMatrix(cfg: UserCfg, paths: readonly string[] = defaultMatrixPaths(cfg), pveMajor: PveMajor = cfg.major): AccessMatrix {
  const rows: AccessRow[] = [];
  const cells = (id: string) => Object.fromEntries(paths.map((p) => [p, accessCell(cfg, id, p, pveMajor)]));
  for (const userid of byteSort(cfg.users.keys())) {
    const u = cfg.users.get(userid)!;
    rows.push({ id: userid, kind: 'user', enabled: !!u.enable, expire: u.expire, cells: cells(userid) });
    for (const sub of byteSort(u.tokens.keys())) {
      const t = u.tokens.get(sub)!;
      const id = `${userid}!${sub}`;
      rows.push({ id, kind: 'token', owner: userid, privsep: t.privsep, enabled: !!u.enable, expire: t.expire, cells: cells(id) });
    }
  }
  return { major: pveMajor, paths: [...paths], rows };
}
