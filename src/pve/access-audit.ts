/**
 * The access-control audit: what the parsed user.cfg model (user-cfg.ts)
 * holds that the baseline flags, in the operator's words, and the facts the
 * access-policy document shows (tokens, groups, pools, roles, privileges per
 * path). Pure: no I/O, the clock is an argument (`now`, epoch seconds).
 *
 * Proxmox's rules followed here (pve-access-control AccessControl.pm):
 * - `verify_token` refuses a token when `expire && expire < now`, after
 *   `check_user_enabled` refused a disabled owner or one whose own `expire`
 *   has passed; expire 0 means never.
 * - `roles`: root@pam is Administrator without any ACL entry; a token
 *   without privilege separation has its owner's roles, its own ACL entries
 *   are ignored; user entries override group entries at the same level.
 * Effective roles and privileges come from the evaluator (permissions.ts).
 *
 * Names read from the node appear in messages as code spans (`betty@pve`),
 * so a message can go into the document as it is and reads plainly in a
 * terminal.
 */
import { splitTokenid } from './names.ts';
import { defaultMatrixPaths, effectivePermissionPaths, privilegeMap, roleMap, rolePrivileges } from './permissions.ts';
import { isBuiltinRole, type PveMajor } from './privileges.ts';
import { aclEntries, type AclEntry, type Bit, type UserCfg } from './user-cfg.ts';

const ROOT = 'root@pam';
const DAY = 86_400;

const byteSort = (xs: Iterable<string>): string[] => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** A UTC date, as the document writes dates. */
export const isoDate = (epoch: number): string => new Date(epoch * 1000).toISOString().slice(0, 10);

/** A code span showing `text` literally (a user name may hold a backtick). */
function q(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function listText(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/**
 * AccessControl.pm check_user_enabled: why Proxmox refuses `userid` now,
 * in its own words, or undefined when it does not.
 */
export function userRefusal(cfg: UserCfg, userid: string, now: number): string | undefined {
  const u = cfg.users.get(userid);
  if (!u || !u.enable) return `user '${userid}' is disabled`;
  if (u.expire && u.expire < now) return `user '${userid}' access expired`;
  return undefined;
}

// ---------------------------------------------------------------------------
// tokens

export type TokenState = 'ok' | 'expiring' | 'expired' | 'never-expires';

export interface TokenFact {
  /** full id, USER@REALM!TOKENID */
  id: string;
  owner: string;
  /** the part after `!` */
  tokenid: string;
  privsep: Bit;
  /** the token's own expiry, epoch seconds; 0 = never */
  expire: number;
  /** whole days from `now` to `expire`, rounded down (negative once expired); null when it never expires */
  daysLeft: number | null;
  /** from the token's own expiry: expired (Proxmox refuses it), expiring (within `expiringDays`), ok, never-expires */
  state: TokenState;
  comment: string;
  /** false when Proxmox refuses every token of the owner now (check_user_enabled: disabled, or its own expiry passed) */
  ownerUsable: boolean;
  /** Proxmox's refusal when `ownerUsable` is false: "user 'x@pve' is disabled" or "user 'x@pve' access expired" */
  ownerRefusal?: string;
  /** when Proxmox stops accepting the token: the earlier of its own and its owner's expiry; 0 = neither expires */
  effectiveExpire: number;
}

/** Every token of every user, sorted by full id. */
export function tokenFacts(cfg: UserCfg, now: number, expiringDays = 30): TokenFact[] {
  const out: TokenFact[] = [];
  for (const [owner, u] of cfg.users) {
    for (const [tokenid, t] of u.tokens) {
      const expire = t.expire;
      const state: TokenState = !expire ? 'never-expires' : expire < now ? 'expired' : expire - now <= expiringDays * DAY ? 'expiring' : 'ok';
      const refusal = userRefusal(cfg, owner, now);
      const expiries = [expire, u.expire].filter((e) => e > 0);
      out.push({
        id: `${owner}!${tokenid}`,
        owner,
        tokenid,
        privsep: t.privsep,
        expire,
        daysLeft: expire ? Math.floor((expire - now) / DAY) : null,
        state,
        comment: t.comment ?? '',
        ownerUsable: refusal === undefined,
        ...(refusal !== undefined ? { ownerRefusal: refusal } : {}),
        effectiveExpire: expiries.length ? Math.min(...expiries) : 0,
      });
    }
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

// ---------------------------------------------------------------------------
// findings

export type FindingKind =
  | 'token-expired'
  | 'token-expiring'
  | 'token-no-expiry'
  | 'root-token'
  | 'token-not-separated'
  | 'unexpected-administrator'
  | 'disabled-privileged';

export interface Finding {
  kind: FindingKind;
  /** the user, group or token id the finding is about */
  subject: string;
  /** one sentence for the operator; names as code spans */
  message: string;
}

export interface FindingOptions {
  /** epoch seconds */
  now: number;
  /** userids (and token ids) allowed to hold Administrator; root@pam always is */
  declaredAdmins: readonly string[];
  /**
   * Users kept disabled on purpose with their roles (the break-glass
   * account): they count as declared admins, and their ACL roles while
   * disabled are not a finding (their tokens still are).
   */
  breakGlass?: readonly string[];
  /** a token expiring within this many days is a finding (default 30) */
  expiringDays?: number;
}

/** The order findings are listed in, most urgent first. */
export const FINDING_KINDS: readonly FindingKind[] = Object.freeze([
  'token-expired',
  'root-token',
  'unexpected-administrator',
  'disabled-privileged',
  'token-expiring',
  'token-no-expiry',
  'token-not-separated',
]);

/** How an ACL entry reaches a user: "directly" or "through group `ops`". */
const how = (e: AclEntry) => (e.type === 'group' ? `through group ${q(e.ugid)}` : e.type === 'token' ? 'as its own ACL entry' : 'directly');
const reach = (e: AclEntry) => (e.propagate ? `on ${q(e.path)} and everything below it` : `on ${q(e.path)} only`);

function tokenFindings(cfg: UserCfg, t: TokenFact): Finding[] {
  const out: Finding[] = [];
  const id = q(t.id);
  if (t.owner === ROOT) {
    out.push({
      kind: 'root-token',
      subject: t.id,
      message: t.privsep
        ? `a token of root@pam (${id}) has whatever its own ACL entries grant with no owner to limit it (root@pam has every privilege), and bypasses two-factor login: remove it (pveum user token remove root@pam ${t.tokenid}) and give a service account a token instead`
        : `a token of root@pam (${id}) has every privilege and bypasses two-factor login and every ACL: whoever holds its secret is root on the API; remove it (pveum user token remove root@pam ${t.tokenid}) and give a service account a token instead`,
    });
  } else if (!t.privsep) {
    const onRoot = privilegeMap(cfg, t.id, '/').size;
    out.push({
      kind: 'token-not-separated',
      subject: t.id,
      message: `${id} is not privilege-separated: it has all of ${q(t.owner)}'s rights (${plural(onRoot, 'privilege')} on ${q('/')}) and its own ACL entries are ignored; make a separated token (--privsep 1) with its own ACL`,
    });
  }
  if (t.state === 'expired') {
    out.push({ kind: 'token-expired', subject: t.id, message: `${id} expired on ${isoDate(t.expire)}: Proxmox refuses it; remove it, or make a new one if it is still needed` });
  } else if (t.state === 'expiring') {
    const days = t.daysLeft!;
    out.push({
      kind: 'token-expiring',
      subject: t.id,
      message: `${id} expires on ${isoDate(t.expire)}, ${days === 0 ? 'within a day' : `in ${plural(days, 'day')}`}: regenerate or replace it before then, or what uses it stops working`,
    });
  } else if (t.state === 'never-expires') {
    const owner = cfg.users.get(t.owner);
    const ownerExpiry = owner?.expire ? ` (only its owner's expiry, ${isoDate(owner.expire)}, ends it)` : '';
    out.push({
      kind: 'token-no-expiry',
      subject: t.id,
      message: `${id} never expires${ownerExpiry}: a leaked secret works until someone removes the token; give it an expiry (pveum user token modify ${t.owner} ${t.tokenid} --expire EPOCH)`,
    });
  }
  return out;
}

/** Administrator granted by an ACL entry to someone not declared, where the evaluator says it takes effect. */
function administratorFindings(cfg: UserCfg, declared: ReadonlySet<string>): Finding[] {
  const out: Finding[] = [];
  for (const e of aclEntries(cfg)) {
    if (e.roleid !== 'Administrator') continue;
    if (e.type === 'user') {
      if (e.ugid === ROOT || declared.has(e.ugid)) continue;
      // A user's own entry always counts on its path (roles: user over group), unless NoAccess sits beside it.
      if (!roleMap(cfg, e.ugid, e.path).has('Administrator')) continue;
      const missing = cfg.users.has(e.ugid) ? '' : ' (there is no such user: whoever is created with that name gets it)';
      out.push({
        kind: 'unexpected-administrator',
        subject: e.ugid,
        message: `${q(e.ugid)} holds Administrator ${reach(e)}, directly${missing}, but is not a declared admin`,
      });
    } else if (e.type === 'group') {
      for (const member of byteSort(cfg.groups.get(e.ugid)?.users ?? [])) {
        if (member === ROOT || declared.has(member)) continue;
        // A user entry on the same path replaces the group's (roles): then the group's grant does not reach this member.
        if (!roleMap(cfg, member, e.path).has('Administrator')) continue;
        out.push({
          kind: 'unexpected-administrator',
          subject: member,
          message: `${q(member)} holds Administrator ${reach(e)}, through group ${q(e.ugid)}, but is not a declared admin`,
        });
      }
    } else {
      const split = splitTokenid(e.ugid);
      if (!split || split[0] === ROOT || declared.has(e.ugid)) continue;
      const info = cfg.users.get(split[0])?.tokens.get(split[1]);
      // Without privilege separation a token's own entries are ignored (roles): nothing to flag here.
      if (!info?.privsep || !roleMap(cfg, e.ugid, e.path).has('Administrator')) continue;
      const privs = privilegeMap(cfg, e.ugid, e.path).size;
      const all = rolePrivileges(cfg, 'Administrator').length;
      const limited = privs < all ? ` (limited by its owner's rights to ${plural(privs, 'privilege')} of ${all} there)` : '';
      out.push({
        kind: 'unexpected-administrator',
        subject: e.ugid,
        message: `the token ${q(e.ugid)} holds Administrator ${reach(e)}, as its own ACL entry${limited}, but is not a declared admin`,
      });
    }
  }
  return out;
}

/** Users Proxmox refuses now who would get roles or tokens back the moment they are re-enabled. */
function disabledFindings(cfg: UserCfg, now: number, breakGlass: ReadonlySet<string>): Finding[] {
  const out: Finding[] = [];
  const entries = aclEntries(cfg);
  for (const userid of byteSort(cfg.users.keys())) {
    const u = cfg.users.get(userid)!;
    const refusal = userRefusal(cfg, userid, now);
    if (refusal === undefined) continue;
    const holds = breakGlass.has(userid)
      ? []
      : entries.filter(
          (e) =>
            rolePrivileges(cfg, e.roleid).length > 0 && // NoAccess or an empty role grants nothing
            ((e.type === 'user' && e.ugid === userid) || (e.type === 'group' && (cfg.groups.get(e.ugid)?.users.has(userid) ?? false))),
        );
    const tokens = byteSort([...u.tokens.keys()].map((t) => `${userid}!${t}`));
    if (!holds.length && !tokens.length) continue;
    const parts = holds.map((e) => `${e.roleid} ${reach(e)} (${how(e)})`);
    if (tokens.length) parts.push(`${tokens.length === 1 ? 'the API token' : `${tokens.length} API tokens`} ${listText(tokens.map(q))}`);
    const state = u.enable ? `expired on ${isoDate(u.expire)}` : 'is disabled';
    const restore = u.enable ? 'a new expiry date restores that silently' : 're-enabling it restores that silently';
    out.push({ kind: 'disabled-privileged', subject: userid, message: `${q(userid)} ${state}, but keeps ${listText(parts)}: ${restore}` });
  }
  return out;
}

/** One finding per problem, most urgent kind first, then by subject. */
export function accessFindings(cfg: UserCfg, options: FindingOptions): Finding[] {
  const { now, expiringDays = 30 } = options;
  const breakGlass = new Set(options.breakGlass ?? []);
  const declared = new Set([...options.declaredAdmins, ...breakGlass]);
  const findings = [
    ...tokenFacts(cfg, now, expiringDays).flatMap((t) => tokenFindings(cfg, t)),
    ...administratorFindings(cfg, declared),
    ...disabledFindings(cfg, now, breakGlass),
  ];
  const rank = (f: Finding) => FINDING_KINDS.indexOf(f.kind);
  // Stable sort: within a kind and subject, the order found (ACL tree order) stays.
  return findings.sort((a, b) => rank(a) - rank(b) || (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
}

// ---------------------------------------------------------------------------
// the document's summary

export interface Grant {
  path: string;
  role: string;
  propagate: Bit;
}

export interface AccessSummary {
  groups: { id: string; members: string[]; comment: string; grants: Grant[] }[];
  /** nested pools by their full id (`marketing/interns`) */
  pools: { id: string; vms: string[]; storage: string[]; comment: string }[];
  /** custom roles (privileges as user.cfg has them), then built-in roles an ACL entry uses (no privileges listed) */
  roles: { id: string; builtin: boolean; privileges: string[]; usedOn: string[] }[];
}

export function accessSummary(cfg: UserCfg): AccessSummary {
  const entries = aclEntries(cfg);
  const groups = byteSort(cfg.groups.keys()).map((id) => {
    const g = cfg.groups.get(id)!;
    const grants = entries.filter((e) => e.type === 'group' && e.ugid === id).map((e) => ({ path: e.path, role: e.roleid, propagate: e.propagate }));
    return { id, members: byteSort(g.users), comment: g.comment ?? '', grants };
  });
  const pools = byteSort(cfg.pools.keys()).map((id) => {
    const p = cfg.pools.get(id)!;
    return { id, vms: [...p.vms].sort((a, b) => Number(a) - Number(b)), storage: byteSort(p.storage), comment: p.comment ?? '' };
  });
  const usedOn = (role: string) => [...new Set(entries.filter((e) => e.roleid === role).map((e) => e.path))];
  const custom = byteSort([...cfg.roles.keys()].filter((r) => !isBuiltinRole(r))).map((id) => ({ id, builtin: false, privileges: byteSort(cfg.roles.get(id)!), usedOn: usedOn(id) }));
  const builtin = byteSort(new Set(entries.map((e) => e.roleid).filter(isBuiltinRole))).map((id) => ({ id, builtin: true, privileges: [], usedOn: usedOn(id) }));
  return { groups, pools, roles: [...custom, ...builtin] };
}

// ---------------------------------------------------------------------------
// privileges per user or token and path

export interface PathPrivileges {
  id: string;
  path: string;
  /** sorted, as GET /access/permissions?userid=ID&path=PATH lists them (its keys) */
  privileges: string[];
}

/**
 * The paths the document lists privileges on: the matrix's paths and every
 * path GET /access/permissions without `path` looks at (the ACL tree, every
 * pool member /vms/<id> and /storage/<id>, the top-level paths), sorted.
 */
export function privilegePaths(cfg: UserCfg): string[] {
  return byteSort(new Set([...defaultMatrixPaths(cfg), ...effectivePermissionPaths(cfg)]));
}

/** Every user (sorted, each followed by its tokens) on every path where it has a privilege. */
export function privilegesByPath(cfg: UserCfg, paths: readonly string[] = privilegePaths(cfg), pveMajor: PveMajor = cfg.major): PathPrivileges[] {
  const out: PathPrivileges[] = [];
  const add = (id: string) => {
    for (const path of paths) {
      const privileges = byteSort(privilegeMap(cfg, id, path, pveMajor).keys());
      if (privileges.length) out.push({ id, path, privileges });
    }
  };
  for (const userid of byteSort(cfg.users.keys())) {
    add(userid);
    for (const sub of byteSort(cfg.users.get(userid)!.tokens.keys())) add(`${userid}!${sub}`);
  }
  return out;
}
