/**
 * The access model an administrator declares (seeds 002-004: named accounts
 * with the smallest role that does the job, groups rather than per-user
 * ACLs, pools that scope a team to its guests) and how it becomes `pveum`
 * commands: pure functions over user.cfg (user-cfg.ts), no I/O.
 *
 * - `decodeAccessModel` checks a declaration (an answers file's
 *   `access-model.access`, or a template's) field by field, against the
 *   node when its facts are known (Proxmox version, guests, storages, users).
 * - `planAccessModel` is the difference from the node's user.cfg: one
 *   command per object, in the order Proxmox needs (roles, groups, pools,
 *   users, memberships, ACLs; removals the other way round), each with the
 *   user.cfg it leaves behind, computed by doing to a copy what Proxmox's
 *   handler does (pve-access-control API2/*.pm, pve-manager API2/Pool.pm).
 *   Nothing undeclared is removed unless `prune`; root@pam and the
 *   protected ids (the admin, service accounts) never are.
 * - `privilegeChanges` is the preview: what each affected user or token
 *   may do before and after, on the paths that matter, by the project's
 *   permission evaluator (permissions.ts).
 */
import { checkEmail, checkGroupid, checkPoolid, checkRoleid, checkStorageId, checkUserid, isValidAclPath, normalizeAclPath, splitUserid } from './names.ts';
import { privilegeMap } from './permissions.ts';
import { isBuiltinRole, isValidPrivilege, PRIVILEGES, type PveMajor } from './privileges.ts';
import type { Reveal } from '../engine/change.ts';
import { addUserGroup, deleteGroupAcl, deleteUserAcl, deleteUserGroup, findAclNode, newPool, newUser, parseUserCfg, walkAcl, writeUserCfg, type Bit, type UserCfg } from './user-cfg.ts';

// --- the declaration ------------------------------------------------------------

/** A person's Proxmox account (realm pve or pam); no password: they set it with `pveum passwd`, or it is a pam login. */
export type DeclaredUser = { comment?: string; email?: string; firstname?: string; lastname?: string; enable?: boolean; expire?: string };
export type DeclaredGroup = { comment?: string; members?: string[] };
export type DeclaredPool = { comment?: string; vms?: number[]; storage?: string[] };
export type DeclaredAcl = { path: string; roles: string[]; users?: string[]; groups?: string[]; propagate?: boolean };

/** The whole model, as plain data (it is an answer, journaled as it is). */
export type AccessModel = {
  roles?: { [role: string]: string[] };
  groups?: { [group: string]: DeclaredGroup };
  users?: { [userid: string]: DeclaredUser };
  pools?: { [pool: string]: DeclaredPool };
  acl?: DeclaredAcl[];
  /** Users who may hold Administrator (besides root@pam and the admin account); anyone else with it is drift. */
  admins?: string[];
};

/** What the node holds, for the checks a declaration cannot pass on its own. */
export interface NodeFacts {
  major: PveMajor;
  /** Guest ids on this node (qemu-server and lxc configs). */
  vmids: ReadonlySet<string>;
  storages: ReadonlySet<string>;
  /** user.cfg as parsed: existing users, groups, custom roles. */
  cfg: UserCfg;
  /** Epoch seconds, for expiry dates. */
  now: number;
}

const FIELDS = {
  model: ['roles', 'groups', 'users', 'pools', 'acl', 'admins'],
  user: ['comment', 'email', 'firstname', 'lastname', 'enable', 'expire'],
  group: ['comment', 'members'],
  pool: ['comment', 'vms', 'storage'],
  acl: ['path', 'roles', 'users', 'groups', 'propagate'],
} as const;

/** Free text Proxmox stores (comments, names): one line, printable, at most this long. */
const TEXT_MAX = 200;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** An expiry date (YYYY-MM-DD, the end of that day UTC) as epoch seconds, or undefined when it is not one. */
export function expiryEpoch(date: string): number | undefined {
  const m = DATE.exec(date);
  if (!m) return undefined;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 23, 59, 59);
  const d = new Date(t);
  if (d.getUTCFullYear() !== Number(m[1]) || d.getUTCMonth() !== Number(m[2]) - 1) return undefined; // 2026-02-30
  return Math.floor(t / 1000);
}

/**
 * Check a declaration. Every problem names its field the way the answers
 * file spells it (`pools.ExtWebSer.vms: VM 999 does not exist on this node`).
 * Without node facts (the answers file is read before the node is probed)
 * only what the declaration says of itself is checked; the runner checks
 * again with the facts before anything is planned.
 */
export function decodeAccessModel(raw: unknown, node?: NodeFacts): { ok: true; value: AccessModel } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const bad = (field: string, what: string) => problems.push(`${field}: ${what}`);
  if (!isRecord(raw)) return { ok: false, problems: ['wants a mapping with roles, groups, users, pools, acl and admins (each optional)'] };
  unknownKeys(raw, FIELDS.model, '', bad);
  const major = node?.major;
  const privOk = (p: string) => (major ? isValidPrivilege(p, major) : isValidPrivilege(p, 9) || isValidPrivilege(p, 8));
  const model: AccessModel = {};

  const roles = mapping(raw.roles, 'roles', bad);
  if (roles) {
    model.roles = {};
    for (const [name, privs] of Object.entries(roles)) {
      const field = `roles.${name}`;
      if (checkRoleid(name)) bad(field, `a role name is letters, digits, '.', '-' and '_'`);
      else if (/^pve/i.test(name)) bad(field, 'a custom role\'s name must not start with PVE (Proxmox keeps that prefix for its own roles); choose another name');
      else if (isBuiltinRole(name)) bad(field, `${name} is one of Proxmox's built-in roles and cannot be changed; give the custom role another name`);
      const list = stringList(privs, field, bad, 'privilege names, e.g. [VM.Audit, VM.Console]');
      if (!list) continue;
      if (!list.length) bad(field, 'wants at least one privilege');
      const unknown = list.filter((p) => !privOk(p));
      for (const p of unknown) bad(field, `unknown privilege '${p}'${unknownPrivilegeHint(p, major)}`);
      if (!unknown.length) model.roles[name] = [...new Set(list)].sort();
    }
  }

  const users = mapping(raw.users, 'users', bad);
  if (users) {
    model.users = {};
    for (const [userid, value] of Object.entries(users)) {
      const field = `users.${userid}`;
      const problem = userProblem(userid);
      if (problem) {
        bad(field, problem);
        continue;
      }
      const u = value === null ? {} : value;
      if (!isRecord(u)) {
        bad(field, `wants a mapping of ${FIELDS.user.join(', ')} (or nothing)`);
        continue;
      }
      unknownKeys(u, FIELDS.user, `${field}.`, bad);
      const out: DeclaredUser = {};
      for (const key of ['comment', 'firstname', 'lastname'] as const) {
        const t = text(u[key], `${field}.${key}`, bad);
        if (t !== undefined) out[key] = t;
      }
      const email = text(u.email, `${field}.email`, bad);
      if (email !== undefined) {
        if (checkEmail(email)) bad(`${field}.email`, 'wants an email address such as betty@example.com');
        else out.email = email;
      }
      if (u.enable !== undefined) {
        if (typeof u.enable !== 'boolean') bad(`${field}.enable`, 'wants yes or no');
        else out.enable = u.enable;
      }
      if (u.expire !== undefined) {
        const when = typeof u.expire === 'string' ? expiryEpoch(u.expire) : undefined;
        if (when === undefined) bad(`${field}.expire`, 'wants a date as YYYY-MM-DD (the account stops working after that day, UTC)');
        else if (node && when <= node.now) bad(`${field}.expire`, `${u.expire} is in the past; give a later date or leave expire out`);
        else out.expire = u.expire as string;
      }
      model.users[userid] = out;
    }
  }
  const knownUser = (id: string) => model.users?.[id] !== undefined || (node?.cfg.users.has(id) ?? true);

  const groups = mapping(raw.groups, 'groups', bad);
  if (groups) {
    model.groups = {};
    for (const [name, value] of Object.entries(groups)) {
      const field = `groups.${name}`;
      if (checkGroupid(name)) {
        bad(field, 'a group name is letters, digits, \'.\', \'-\' and \'_\'');
        continue;
      }
      const g = value === null ? {} : value;
      if (!isRecord(g)) {
        bad(field, `wants a mapping of ${FIELDS.group.join(', ')} (or nothing)`);
        continue;
      }
      unknownKeys(g, FIELDS.group, `${field}.`, bad);
      const out: DeclaredGroup = {};
      const comment = text(g.comment, `${field}.comment`, bad);
      if (comment !== undefined) out.comment = comment;
      const members = g.members === undefined ? [] : stringList(g.members, `${field}.members`, bad, 'user ids, e.g. [betty@pve]');
      if (members) {
        for (const m of members) {
          const problem = userProblem(m);
          if (problem) bad(`${field}.members`, `${m}: ${problem}`);
          else if (!knownUser(m)) bad(`${field}.members`, `${m} is neither declared under users nor a user on this node`);
        }
        out.members = [...new Set(members)].sort();
      }
      model.groups[name] = out;
    }
  }
  const knownGroup = (g: string) => model.groups?.[g] !== undefined || (node?.cfg.groups.has(g) ?? true);
  // A role declared with a problem of its own is still declared: its grants are not reported as well.
  const knownRole = (r: string) => isBuiltinRole(r) || roles?.[r] !== undefined || (node?.cfg.roles.has(r) ?? true);

  const pools = mapping(raw.pools, 'pools', bad);
  if (pools) {
    model.pools = {};
    const claimed = new Map<string, string>();
    for (const [name, value] of Object.entries(pools)) {
      const field = `pools.${name}`;
      const idProblem = checkPoolid(name) ?? (/^[A-Za-z]/.test(name) ? null : 'a pool name must start with a letter');
      if (idProblem) {
        bad(field, idProblem);
        continue;
      }
      const parent = /^(.*)\/[^/]+$/.exec(name)?.[1];
      if (parent !== undefined && pools[parent] === undefined && !node?.cfg.pools.has(parent)) bad(field, `its parent pool ${parent} is neither declared nor on this node`);
      const p = value === null ? {} : value;
      if (!isRecord(p)) {
        bad(field, `wants a mapping of ${FIELDS.pool.join(', ')} (or nothing)`);
        continue;
      }
      unknownKeys(p, FIELDS.pool, `${field}.`, bad);
      const out: DeclaredPool = {};
      const comment = text(p.comment, `${field}.comment`, bad);
      if (comment !== undefined) out.comment = comment;
      if (p.vms !== undefined) {
        const vms = Array.isArray(p.vms) ? p.vms : [p.vms];
        const ids: number[] = [];
        for (const v of vms) {
          const id = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
          if (!Number.isInteger(id) || id < 100 || id > 999_999_999) bad(`${field}.vms`, `${String(v)}: a guest id is a number from 100 to 999999999`);
          else if (node && !node.vmids.has(String(id))) bad(`${field}.vms`, `VM ${id} does not exist on this node (guests here: ${[...node.vmids].sort((a, b) => Number(a) - Number(b)).join(', ') || 'none'})`);
          else if (claimed.has(String(id)) && claimed.get(String(id)) !== name) bad(`${field}.vms`, `VM ${id} is also declared in pool ${claimed.get(String(id))}; a guest belongs to one pool`);
          else {
            claimed.set(String(id), name);
            ids.push(id);
          }
        }
        out.vms = [...new Set(ids)].sort((a, b) => a - b);
      }
      if (p.storage !== undefined) {
        const list = stringList(p.storage, `${field}.storage`, bad, 'storage ids, e.g. [local]');
        if (list) {
          for (const s of list) {
            if (checkStorageId(s)) bad(`${field}.storage`, `${s}: not a storage id`);
            else if (node && !node.storages.has(s)) bad(`${field}.storage`, `storage ${s} does not exist on this node (storages: ${[...node.storages].sort().join(', ') || 'none'})`);
          }
          out.storage = [...new Set(list)].sort();
        }
      }
      model.pools[name] = out;
    }
  }

  if (raw.acl !== undefined) {
    if (!Array.isArray(raw.acl)) bad('acl', 'wants a list of entries, each with path, roles and users or groups');
    else {
      model.acl = [];
      raw.acl.forEach((entry: unknown, i: number) => {
        const field = `acl[${i}]`;
        if (!isRecord(entry)) {
          bad(field, 'wants a mapping with path, roles and users or groups');
          return;
        }
        unknownKeys(entry, FIELDS.acl, `${field}.`, bad);
        const path = typeof entry.path === 'string' ? normalizeAclPath(entry.path) : null;
        const pathOk = path !== null && isValidAclPath(path, major ?? 9);
        if (!pathOk) bad(`${field}.path`, `${typeof entry.path === 'string' ? `'${entry.path}' ` : ''}is not a path Proxmox grants on (e.g. /, /vms, /vms/100, /pool/NAME, /storage/local, /nodes/pve1)`);
        const rolesList = entry.roles === undefined ? undefined : stringList(entry.roles, `${field}.roles`, bad, 'role names, e.g. [PVEAuditor]');
        if (entry.roles === undefined) bad(`${field}.roles`, 'is required: the roles to grant');
        for (const r of rolesList ?? []) if (!knownRole(r)) bad(`${field}.roles`, `role '${r}' is neither built in, declared under roles, nor on this node`);
        const usersList = entry.users === undefined ? [] : stringList(entry.users, `${field}.users`, bad, 'user ids');
        const groupsList = entry.groups === undefined ? [] : stringList(entry.groups, `${field}.groups`, bad, 'group names');
        for (const u of usersList ?? []) {
          const problem = userProblem(u);
          if (problem) bad(`${field}.users`, `${u}: ${problem}`);
          else if (!knownUser(u)) bad(`${field}.users`, `${u} is neither declared under users nor a user on this node`);
        }
        for (const g of groupsList ?? []) if (!knownGroup(g)) bad(`${field}.groups`, `group '${g}' is neither declared under groups nor on this node`);
        if (usersList && groupsList && !usersList.length && !groupsList.length) bad(field, 'names nobody: give users or groups (rather groups: Proxmox advises granting to groups)');
        if (entry.propagate !== undefined && typeof entry.propagate !== 'boolean') bad(`${field}.propagate`, 'wants yes or no');
        if (!pathOk || !rolesList?.length || !usersList || !groupsList) return;
        model.acl!.push({
          path: path!,
          roles: [...new Set(rolesList)].sort(),
          ...(usersList.length ? { users: [...new Set(usersList)].sort() } : {}),
          ...(groupsList.length ? { groups: [...new Set(groupsList)].sort() } : {}),
          propagate: entry.propagate !== false,
        });
      });
    }
  }

  if (raw.admins !== undefined) {
    const admins = stringList(raw.admins, 'admins', bad, 'user ids allowed to hold Administrator');
    if (admins) {
      for (const a of admins) if (userProblem(a) && a !== 'root@pam') bad('admins', `${a}: ${userProblem(a)}`);
      model.admins = [...new Set(admins)].sort();
    }
  }
  return problems.length ? { ok: false, problems } : { ok: true, value: model };
}

function userProblem(userid: string): string | undefined {
  if (userid === 'root@pam') return 'root@pam is never managed by pve-baseline';
  const invalid = checkUserid(userid);
  if (invalid) return `${invalid}; a user id is NAME@REALM, e.g. betty@pve`;
  const realm = splitUserid(userid)?.realm;
  if (realm !== 'pve' && realm !== 'pam') return `realm ${realm}: pve-baseline manages accounts of the realms pve (Proxmox's own) and pam (Linux logins)`;
  return undefined;
}

function unknownPrivilegeHint(priv: string, major: PveMajor | undefined): string {
  if (priv === 'VM.Monitor' && major === 9) return ' (Proxmox VE 9 dropped it: the QEMU monitor now needs Sys.Audit; the VM.GuestAgent.* privileges cover the guest agent)';
  const known = PRIVILEGES[major ?? 9];
  const near = known.find((p) => p.toLowerCase() === priv.toLowerCase());
  if (near) return ` (did you mean ${near}?)`;
  const area = known.filter((p) => p.split('.')[0] === priv.split('.')[0]);
  return area.length
    ? ` (the ${priv.split('.')[0]} privileges of Proxmox VE ${major ?? 9}: ${area.join(', ')})`
    : ` (privileges start with ${[...new Set(known.map((p) => p.split('.')[0]))].join('., ')}.)`;
}

function unknownKeys(obj: Record<string, unknown>, known: readonly string[], prefix: string, bad: (field: string, what: string) => void): void {
  for (const key of Object.keys(obj)) if (!known.includes(key)) bad(`${prefix}${/^[\w.@-]{1,64}$/.test(key) ? key : '(a key)'}`, `not a field (fields: ${known.join(', ')})`);
}

function mapping(v: unknown, field: string, bad: (field: string, what: string) => void): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v)) {
    bad(field, 'wants a mapping of names to their settings');
    return undefined;
  }
  return v;
}

function stringList(v: unknown, field: string, bad: (field: string, what: string) => void, what: string): string[] | undefined {
  const list = typeof v === 'string' ? v.split(/[\s,;]+/).filter(Boolean) : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 128)) {
    bad(field, `wants a list of ${what}`);
    return undefined;
  }
  return list as string[];
}

function text(v: unknown, field: string, bad: (field: string, what: string) => void): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') {
    bad(field, 'wants text');
    return undefined;
  }
  const s = String(v).trim();
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(s)) bad(field, 'must be one line without control characters');
  else if (s.length > TEXT_MAX) bad(field, `is ${s.length} characters long; at most ${TEXT_MAX} are allowed`);
  else return s;
  return undefined;
}

// --- the plan -------------------------------------------------------------------

export interface AccessCommand {
  argv: string[];
  reason: string;
  /** user.cfg before and after this command, as Proxmox writes it. */
  before: string;
  after: string;
  /** It deletes a user: the realm's password, the user's tokens and second factors go too (the step backs those files up). */
  deletesUser?: true;
  /** Its JSON output holds a value to show once (a token's secret). */
  reveal?: Reveal;
}

export interface PlanOptions {
  /** Remove what the model does not declare (never root@pam or `protect`). */
  prune: boolean;
  /** Users (and their tokens) the model never removes or strips: the admin account, service accounts. */
  protect: ReadonlySet<string>;
  /** user.cfg as the node has it, when `current` was parsed from it: the first command's `before`. */
  text?: string;
}

const clone = (cfg: UserCfg): UserCfg => parseUserCfg(writeUserCfg(cfg), { major: cfg.major }).cfg;
const byteSort = (xs: Iterable<string>): string[] => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const sameSet = (a: Iterable<string>, b: Iterable<string>) => byteSort(a).join(',') === byteSort(b).join(',');
const flag = (b: boolean): Bit => (b ? 1 : 0);

/** One ACL grant: a member (user or @group) holding a role on a path. */
interface Grant {
  path: string;
  kind: 'users' | 'groups';
  id: string;
  role: string;
  propagate: Bit;
}

export function declaredGrants(model: AccessModel): Grant[] {
  const out: Grant[] = [];
  for (const e of model.acl ?? []) {
    for (const role of e.roles) {
      for (const id of e.users ?? []) out.push({ path: e.path, kind: 'users', id, role, propagate: flag(e.propagate !== false) });
      for (const id of e.groups ?? []) out.push({ path: e.path, kind: 'groups', id, role, propagate: flag(e.propagate !== false) });
    }
  }
  return out;
}

/**
 * pveum commands planned one after another against a copy of user.cfg:
 * each `run` does to the copy what Proxmox's handler does, so every command
 * knows the file before and after it.
 */
export class PveumScript {
  readonly commands: AccessCommand[] = [];
  #cfg: UserCfg;
  /** The file as it is on the node: the first command's `before` (Proxmox rewrites it in its own layout). */
  #text: string | undefined;

  constructor(current: UserCfg, text?: string) {
    this.#cfg = clone(current);
    this.#text = text;
  }

  /** user.cfg as the commands so far leave it (a copy each command replaces). */
  get cfg(): UserCfg {
    return this.#cfg;
  }

  run(argv: string[], reason: string, mutate: (c: UserCfg) => void, extra: Partial<AccessCommand> = {}): void {
    const before = this.commands.length === 0 && this.#text !== undefined ? this.#text : writeUserCfg(this.#cfg);
    const next = clone(this.#cfg);
    mutate(next);
    this.#cfg = next;
    this.commands.push({ argv: ['pveum', ...argv], reason, before, after: writeUserCfg(next), ...extra });
  }
}

/** Grant roles on a path to a user, @group or token, as `pveum acl modify` does. */
export function grant(c: UserCfg, path: string, kind: 'users' | 'groups' | 'tokens', id: string, roles: readonly string[], propagate: Bit): void {
  const node = findAclNode(c, path)!;
  let held = node[kind].get(id);
  if (!held) node[kind].set(id, (held = new Map()));
  for (const r of roles) held.set(r, propagate);
}

/** The difference from `current` as pveum commands, each with the user.cfg it leaves. */
export function planAccessModel(current: UserCfg, model: AccessModel, options: PlanOptions): AccessCommand[] {
  const script = new PveumScript(current, options.text);
  const run: Run = (argv, reason, mutate, extra) => script.run(argv, reason, mutate, extra);
  // Read through the script: each command sees what the ones before it left.
  const cfgNow = () => script.cfg;
  const protectedUser = (id: string) => id === 'root@pam' || options.protect.has(id);

  // Roles first: groups, pools and ACLs name them.
  for (const [role, privs] of Object.entries(model.roles ?? {})) {
    const have = cfgNow().roles.get(role);
    const valid = privs.filter((p) => isValidPrivilege(p, cfgNow().major));
    if (!have) {
      run(['role', 'add', role, '--privs', valid.join(',')], `custom role ${role}: ${valid.join(', ')}`, (c) => void c.roles.set(role, new Set(valid)));
    } else if (!sameSet(have, valid)) {
      run(['role', 'modify', role, '--privs', valid.join(',')], `role ${role} has ${byteSort(have).join(', ') || 'no privileges'}; declared: ${valid.join(', ')}`, (c) => void c.roles.set(role, new Set(valid)));
    }
  }

  for (const [group, g] of Object.entries(model.groups ?? {})) {
    const have = cfgNow().groups.get(group);
    if (!have) {
      run(['group', 'add', group, ...(g.comment ? ['--comment', g.comment] : [])], `group ${group}${g.comment ? ` (${g.comment})` : ''}: permissions go to groups, and people join them`, (c) => {
        c.groups.set(group, { users: new Set(), ...(g.comment ? { comment: g.comment } : {}) });
      });
    } else if (g.comment !== undefined && (have.comment ?? '') !== g.comment) {
      run(['group', 'modify', group, '--comment', g.comment], `group ${group}'s comment`, (c) => void (c.groups.get(group)!.comment = g.comment));
    }
  }

  // Parents before nested pools.
  const poolNames = Object.keys(model.pools ?? {}).sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1));
  for (const pool of poolNames) {
    const p = model.pools![pool]!;
    if (!cfgNow().pools.has(pool)) {
      run(['pool', 'add', pool, ...(p.comment ? ['--comment', p.comment] : [])], `pool ${pool}${p.comment ? ` (${p.comment})` : ''}: a permission on /pool/${pool} reaches its guests and storages`, (c) => {
        const entry = newPool();
        if (p.comment) entry.comment = p.comment;
        const parent = /^(.*)\/[^/]+$/.exec(pool)?.[1];
        if (parent !== undefined) {
          entry.parent = parent;
          c.pools.get(parent)?.pools.add(pool);
        }
        c.pools.set(pool, entry);
      });
    } else if (p.comment !== undefined && (cfgNow().pools.get(pool)!.comment ?? '') !== p.comment) {
      run(['pool', 'modify', pool, '--comment', p.comment], `pool ${pool}'s comment`, (c) => void (c.pools.get(pool)!.comment = p.comment));
    }
    const have = cfgNow().pools.get(pool)!;
    const addVms = (p.vms ?? []).map(String).filter((v) => !have.vms.has(v));
    if (addVms.length) {
      const moving = addVms.filter((v) => cfgNow().vms.has(v));
      run(
        ['pool', 'modify', pool, '--vms', addVms.join(','), ...(moving.length ? ['--allow-move', '1'] : [])],
        `guests ${addVms.join(', ')} into pool ${pool}${moving.length ? `; moves ${moving.map((v) => `${v} out of pool ${cfgNow().vms.get(v)}`).join(', ')}` : ''}`,
        (c) => {
          for (const v of addVms) {
            const other = c.vms.get(v);
            if (other !== undefined) c.pools.get(other)?.vms.delete(v);
            c.pools.get(pool)!.vms.add(v);
            c.vms.set(v, pool);
          }
        },
      );
    }
    const addStorage = (p.storage ?? []).filter((s) => !have.storage.has(s));
    if (addStorage.length) {
      run(['pool', 'modify', pool, '--storage', addStorage.join(',')], `storage ${addStorage.join(', ')} into pool ${pool}`, (c) => {
        for (const s of addStorage) c.pools.get(pool)!.storage.add(s);
      });
    }
    if (options.prune) {
      const dropVms = byteSort([...have.vms].filter((v) => !(p.vms ?? []).map(String).includes(v)));
      if (dropVms.length) {
        run(['pool', 'modify', pool, '--vms', dropVms.join(','), '--delete', '1'], `prune: guests ${dropVms.join(', ')} are not declared in pool ${pool}`, (c) => {
          for (const v of dropVms) {
            c.pools.get(pool)!.vms.delete(v);
            c.vms.delete(v);
          }
        });
      }
      const dropStorage = byteSort([...have.storage].filter((s) => !(p.storage ?? []).includes(s)));
      if (dropStorage.length) {
        run(['pool', 'modify', pool, '--storage', dropStorage.join(','), '--delete', '1'], `prune: storage ${dropStorage.join(', ')} is not declared in pool ${pool}`, (c) => {
          for (const s of dropStorage) c.pools.get(pool)!.storage.delete(s);
        });
      }
    }
  }

  for (const [userid, u] of Object.entries(model.users ?? {})) {
    const have = cfgNow().users.get(userid);
    const expire = u.expire ? expiryEpoch(u.expire)! : 0;
    const props: [string, string | undefined][] = [
      ['comment', u.comment],
      ['email', u.email],
      ['firstname', u.firstname],
      ['lastname', u.lastname],
    ];
    if (!have) {
      const args = props.flatMap(([k, v]) => (v ? [`--${k}`, v] : []));
      if (expire) args.push('--expire', String(expire));
      if (u.enable === false) args.push('--enable', '0');
      const realm = splitUserid(userid)?.realm;
      run(
        ['user', 'add', userid, ...args],
        `${userid}${u.comment ? ` (${u.comment})` : ''}: a named account, so the logs say who did what; ${realm === 'pve' ? `no password yet: set one with pveum passwd ${userid}` : 'logs in with its Linux password (realm pam)'}`,
        (c) => {
          const nu = newUser(u.enable === false ? 0 : 1);
          nu.expire = expire;
          for (const [k, v] of props) if (v) nu[k as 'comment'] = v;
          c.users.set(userid, nu);
        },
      );
      continue;
    }
    const args: string[] = [];
    const why: string[] = [];
    for (const [k, v] of props) {
      if (v !== undefined && (have[k as 'comment'] ?? '') !== v) {
        args.push(`--${k}`, v);
        why.push(k);
      }
    }
    if (u.expire !== undefined && have.expire !== expire) {
      args.push('--expire', String(expire));
      why.push(`expiry ${u.expire}`);
    }
    const enable = u.enable !== false;
    if (u.enable !== undefined || !have.enable) {
      if (flag(enable) !== have.enable) {
        args.push('--enable', enable ? '1' : '0');
        why.push(enable ? 'enabled (it was disabled)' : 'disabled');
      }
    }
    if (args.length) {
      run(['user', 'modify', userid, ...args], `${userid}: ${why.join(', ')}`, (c) => {
        const cu = c.users.get(userid)!;
        for (const [k, v] of props) if (v !== undefined) cu[k as 'comment'] = v || undefined;
        if (u.expire !== undefined) cu.expire = expire;
        cu.enable = flag(enable);
      });
    }
  }

  // Memberships, from the groups' side: one command per user that joins.
  const joins = new Map<string, string[]>();
  for (const [group, g] of Object.entries(model.groups ?? {})) {
    for (const m of g.members ?? []) if (!cfgNow().groups.get(group)?.users.has(m)) joins.set(m, [...(joins.get(m) ?? []), group]);
  }
  for (const [userid, gs] of joins) {
    run(['user', 'modify', userid, '--groups', gs.join(','), '--append', '1'], `${userid} joins ${gs.join(', ')}`, (c) => {
      for (const g of gs) addUserGroup(c, userid, g);
    });
  }

  // Grants missing, or with another propagate flag: one command per (path, member, propagate) with its roles.
  const wanted = declaredGrants(model);
  const missing = new Map<string, Grant[]>();
  for (const g of wanted) {
    const node = findAclNode(cfgNow(), g.path, false);
    if (node?.[g.kind].get(g.id)?.get(g.role) === g.propagate) continue;
    const key = `${g.path}\u0000${g.kind}\u0000${g.id}\u0000${g.propagate}`;
    missing.set(key, [...(missing.get(key) ?? []), g]);
  }
  for (const grants of missing.values()) {
    const { path, kind, id, propagate } = grants[0]!;
    const roles = grants.map((g) => g.role);
    const who = kind === 'groups' ? `group ${id}` : id;
    run(
      ['acl', 'modify', path, '--roles', roles.join(','), `--${kind}`, id, '--propagate', String(propagate)],
      `${who} gets ${roles.join(', ')} on ${path}${propagate ? ' and below' : ' only'}`,
      (c) => grant(c, path, kind, id, roles, propagate),
    );
  }

  if (options.prune) pruneUndeclared(model, cfgNow, run, protectedUser);
  return script.commands;
}

type Run = (argv: string[], reason: string, mutate: (c: UserCfg) => void, extra?: Partial<AccessCommand>) => void;

/** What `prune` removes, grants first (so nobody keeps access through an object about to go), then users, groups, pools and roles. */
function pruneUndeclared(model: AccessModel, cfgNow: () => UserCfg, run: Run, protectedUser: (id: string) => boolean): void {
  const wanted = new Set(declaredGrants(model).map((g) => `${g.path}\u0000${g.kind}\u0000${g.id}\u0000${g.role}`));
  for (const [path, node] of [...walkAcl(cfgNow().acl)]) {
    for (const kind of ['users', 'groups'] as const) {
      for (const [id, roles] of node[kind]) {
        if (kind === 'users' && protectedUser(id)) continue;
        const drop = byteSort([...roles.keys()].filter((r) => !wanted.has(`${path}\u0000${kind}\u0000${id}\u0000${r}`)));
        if (!drop.length) continue;
        run(['acl', 'delete', path, '--roles', drop.join(','), `--${kind}`, id], `prune: ${kind === 'groups' ? `group ${id}` : id} holds ${drop.join(', ')} on ${path}, which the model does not declare`, (c) => {
          const n = findAclNode(c, path, false);
          const held = n?.[kind].get(id);
          for (const r of drop) held?.delete(r);
          if (held?.size === 0) n![kind].delete(id);
        });
      }
    }
  }
  for (const userid of byteSort(cfgNow().users.keys())) {
    if (protectedUser(userid) || model.users?.[userid] !== undefined) continue;
    run(['user', 'delete', userid], `prune: ${userid} is not declared; its password, tokens and second factors go with it (the files are backed up)`, (c) => {
      deleteUserGroup(c, userid);
      deleteUserAcl(c, userid);
      c.users.delete(userid);
    }, { deletesUser: true });
  }
  for (const [group, g] of Object.entries(model.groups ?? {})) {
    const extra = byteSort([...(cfgNow().groups.get(group)?.users ?? [])].filter((u) => !(g.members ?? []).includes(u) && !protectedUser(u)));
    for (const userid of extra) {
      const keep = byteSort([...cfgNow().users.get(userid)!.groups].filter((x) => x !== group));
      run(['user', 'modify', userid, '--groups', keep.join(',')], `prune: ${userid} is not a declared member of ${group}`, (c) => {
        deleteUserGroup(c, userid);
        for (const x of keep) addUserGroup(c, userid, x);
      });
    }
  }
  for (const group of byteSort(cfgNow().groups.keys())) {
    if (model.groups?.[group] !== undefined) continue;
    run(['group', 'delete', group], `prune: group ${group} is not declared`, (c) => {
      for (const u of c.groups.get(group)!.users) c.users.get(u)?.groups.delete(group);
      c.groups.delete(group);
      deleteGroupAcl(c, group);
    });
  }
  for (const pool of byteSort(cfgNow().pools.keys()).reverse()) {
    if (model.pools?.[pool] !== undefined) continue;
    const p = cfgNow().pools.get(pool)!;
    if (p.vms.size) {
      const vms = byteSort(p.vms);
      run(['pool', 'modify', pool, '--vms', vms.join(','), '--delete', '1'], `prune: pool ${pool} is not declared; its guests leave it first`, (c) => {
        for (const v of vms) {
          c.pools.get(pool)!.vms.delete(v);
          c.vms.delete(v);
        }
      });
    }
    if (p.storage.size) {
      const st = byteSort(p.storage);
      run(['pool', 'modify', pool, '--storage', st.join(','), '--delete', '1'], `prune: pool ${pool} is not declared; its storages leave it first`, (c) => {
        for (const s of st) c.pools.get(pool)!.storage.delete(s);
      });
    }
    run(['pool', 'delete', pool], `prune: pool ${pool} is not declared`, (c) => {
      const parent = c.pools.get(pool)!.parent;
      if (parent) c.pools.get(parent)?.pools.delete(pool);
      c.pools.delete(pool);
      const n = findAclNode(c, '/pool', false);
      n?.children.delete(pool.split('/')[0]!);
    });
  }
  for (const role of byteSort(cfgNow().roles.keys())) {
    if (isBuiltinRole(role) || model.roles?.[role] !== undefined) continue;
    if ([...walkAcl(cfgNow().acl)].some(([, n]) => [...n.users.values(), ...n.groups.values(), ...n.tokens.values()].some((r) => r.has(role)))) continue; // still granted (to a protected id)
    run(['role', 'delete', role], `prune: role ${role} is not declared and nobody holds it`, (c) => void c.roles.delete(role));
  }
}

// --- the preview ----------------------------------------------------------------

export interface PrivilegeChange {
  id: string;
  path: string;
  before: string[];
  after: string[];
}

/**
 * What changes for whom: for each user or token whose privileges differ on
 * a path that matters (every ACL path of either side, every pool member,
 * `/`), the privileges before and after.
 */
export function privilegeChanges(before: UserCfg, after: UserCfg): PrivilegeChange[] {
  const paths = new Set<string>(['/']);
  for (const cfg of [before, after]) {
    for (const [path] of walkAcl(cfg.acl)) paths.add(path);
    for (const p of cfg.pools.values()) {
      for (const v of p.vms) paths.add(`/vms/${v}`);
      for (const s of p.storage) paths.add(`/storage/${s}`);
    }
  }
  const ids = new Set<string>();
  for (const cfg of [before, after]) {
    for (const [userid, u] of cfg.users) {
      if (userid === 'root@pam') continue;
      ids.add(userid);
      for (const t of u.tokens.keys()) ids.add(`${userid}!${t}`);
    }
  }
  const out: PrivilegeChange[] = [];
  for (const id of byteSort(ids)) {
    for (const path of byteSort(paths)) {
      const b = byteSort(privilegeMap(before, id, path).keys());
      const a = byteSort(privilegeMap(after, id, path).keys());
      if (b.join(',') !== a.join(',')) out.push({ id, path, before: b, after: a });
    }
  }
  return out;
}

/** The preview as lines: "betty@pve on /vms/100: nothing -> VM.Audit, VM.Console". */
export function privilegeChangeLines(changes: readonly PrivilegeChange[], limit = 60): string[] {
  if (!changes.length) return ['Effective privileges: nobody gains or loses any.'];
  const show = (xs: string[]) => (xs.length ? xs.join(', ') : 'nothing');
  const lines = ['Effective privileges, before -> after (Proxmox\'s rules: groups, propagation, pools, NoAccess):'];
  for (const c of changes.slice(0, limit)) lines.push(`  ${c.id} on ${c.path}: ${show(c.before)} -> ${show(c.after)}`);
  if (changes.length > limit) lines.push(`  ... and ${changes.length - limit} more (pve-baseline check --json lists every one)`);
  return lines;
}

// --- what holds ------------------------------------------------------------------

/** One line per declared thing that the node does not have as declared (empty: it holds). */
export function modelDrift(cfg: UserCfg, model: AccessModel): string[] {
  const out: string[] = [];
  for (const [role, privs] of Object.entries(model.roles ?? {})) {
    const have = cfg.roles.get(role);
    const valid = privs.filter((p) => isValidPrivilege(p, cfg.major));
    if (!have) out.push(`role ${role} is missing`);
    else if (!sameSet(have, valid)) out.push(`role ${role} has ${byteSort(have).join(', ') || 'no privileges'}, not ${valid.join(', ')}`);
  }
  for (const [group, g] of Object.entries(model.groups ?? {})) {
    const have = cfg.groups.get(group);
    if (!have) out.push(`group ${group} is missing`);
    else for (const m of g.members ?? []) if (!have.users.has(m)) out.push(`${m} is not in group ${group}`);
  }
  for (const [pool, p] of Object.entries(model.pools ?? {})) {
    const have = cfg.pools.get(pool);
    if (!have) out.push(`pool ${pool} is missing`);
    else {
      for (const v of p.vms ?? []) if (!have.vms.has(String(v))) out.push(`VM ${v} is not in pool ${pool}${cfg.vms.has(String(v)) ? ` (it is in ${cfg.vms.get(String(v))})` : ''}`);
      for (const s of p.storage ?? []) if (!have.storage.has(s)) out.push(`storage ${s} is not in pool ${pool}`);
    }
  }
  for (const [userid, u] of Object.entries(model.users ?? {})) {
    const have = cfg.users.get(userid);
    if (!have) out.push(`user ${userid} is missing`);
    else if (!have.enable && u.enable !== false) out.push(`user ${userid} is disabled`);
  }
  for (const g of declaredGrants(model)) {
    const held = findAclNode(cfg, g.path, false)?.[g.kind].get(g.id)?.get(g.role);
    const who = g.kind === 'groups' ? `group ${g.id}` : g.id;
    if (held === undefined) out.push(`${who} lacks ${g.role} on ${g.path}`);
    else if (held !== g.propagate) out.push(`${who} has ${g.role} on ${g.path} ${held ? 'propagating' : 'without propagation'}, not as declared`);
  }
  return out;
}
