/**
 * The part of the Proxmox VE API the stand-ins serve, shared by pveum and
 * pvesh: method schemas as pve-access-control / pve-manager / pve-firewall
 * declare them, and handlers that follow their Perl code path by path
 * (their API2/*.pm modules). Always as root@pam, like pvesh/pveum.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { release as kernelRelease, totalmem, freemem, cpus, uptime } from 'node:os';
import { readFileSync } from 'node:fs';
import { msg } from '../../../../src/pve/messages.ts';
import { checkUserid, splitTokenid, splitUserid } from '../../../../src/pve/names.ts';
import { isBuiltinRole, isValidPrivilege } from '../../../../src/pve/privileges.ts';
import {
  aclEntries,
  addUserGroup,
  deleteGroupAcl,
  deletePoolAcl,
  deleteUserAcl,
  deleteUserGroup,
  findAclNode,
  newPool,
  newUser,
  splitList,
  type Bit,
  type PveToken,
  type UserCfg,
} from '../../../../src/pve/user-cfg.ts';
import {
  cleanCidr,
  formatFirewallFile,
  icmpTypeNumber,
  ipsetDigest,
  ipsetEntryToApi,
  ipsetListDigest,
  optionsDigest,
  parseAddressList,
  parseFirewallFile,
  parsePortSpec,
  protocolNumber,
  ruleToApi,
  rulesDigest,
  verifyRule,
  type FwFileKind as FwKind,
  type FwIpset,
  type FwIpsetEntry,
  type FwRule,
  type ParsedFirewall,
} from '../../../../src/pve/firewall-rules.ts';
import { isValidAclPath, normalizeAclPath, REALM_RE_SRC, TOKEN_SUBID_RE_SRC, USER_RE_SRC } from '../../../../src/pve/names.ts';
import { effectivePermissions, hasPrivileges, privilegeMap, privObject } from '../../../../src/pve/permissions.ts';
import { die, opt, paramExc, PveError, type Params, type Prop } from './schema.ts';
import { addTfaEntry, deleteTfaEntry, getTfaEntry, listTfa, listUserTfa, unlockTfa } from '../../../../src/pve/tfa-cfg.ts';
import { lockTfaConfig, nowSecs, readCounts, readTfaCfg, setUserTfaEnabled, tfaDie, writeCounts, writeTfaCfgFile } from './tfa-store.ts';
import { deleteFile, lockFile, lockUserConfig, nodename, readFile, readUserCfg, updateUserCfg, writeFile, writeUserCfgFile } from './pmxcfs.ts';
import { callContext, checkPermModify, extractVmStats, guestMethods, resourcesMethod, vmList, type CallContext } from './guests.ts';
import { aptRepositoryMethods } from './apt-repos.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface ApiMethod {
  name: string;
  path: string;
  method: HttpMethod;
  description: string;
  parameters: Record<string, Prop>;
  returns: Prop;
  /** ctx: the caller and its permission checks (http-api.ts); pvesh and pveum leave it out and act as root@pam */
  handler: (p: Params, ctx?: CallContext) => unknown;
}

/** pve-manager version the lab node claims to run [lab: a plausible PVE 9 release]. */
export const PVE_VERSION = { version: '9.2.11', release: '9.2', repoid: '14a22df35955d97d' } as const;
export const KERNEL = kernelRelease();

// ---------------------------------------------------------------------------
// helpers

const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));
const truthy = (v: unknown): boolean => v !== undefined && v !== null && v !== '' && v !== 0 && v !== '0';

function checkUserExist(cfg: UserCfg, userid: string): ReturnType<UserCfg['users']['get']> & object {
  const e = checkUserid(userid);
  if (e) die(e);
  const u = cfg.users.get(userid);
  if (!u) die(msg.noSuchUser(userid));
  return u!;
}

function checkTokenExist(cfg: UserCfg, userid: string, tokenid: string): PveToken {
  const user = checkUserExist(cfg, userid);
  const t = user.tokens.get(tokenid);
  if (!t) die(msg.noSuchToken(tokenid, userid));
  return t!;
}

/** realms: pam and pve always exist (domains.cfg may add more) */
function realms(): Map<string, { type: string; comment?: string }> {
  const out = new Map<string, { type: string; comment?: string }>([
    ['pam', { type: 'pam', comment: 'Linux PAM standard authentication' }],
    ['pve', { type: 'pve', comment: 'Proxmox VE authentication server' }],
  ]);
  const raw = readFile('domains.cfg');
  if (raw) {
    let current: { type: string; comment?: string } | undefined;
    for (const line of raw.split('\n')) {
      const h = /^(\w+):\s*(\S+)\s*$/.exec(line);
      if (h) out.set(h[2]!, (current = { type: h[1]! }));
      const c = /^\s+comment\s+(.*)$/.exec(line);
      if (c && current) current.comment = c[1]!;
    }
  }
  return out;
}

/** PVE::Tools::encrypt_pw: sha256-crypt with an 8 character salt, via the system's crypt(3) */
function encryptPw(password: string): string {
  const salt = createHash('sha1').update(randomBytes(16)).digest('base64').slice(0, 8).replace(/\+/g, 'X');
  const r = spawnSync('perl', ['-e', '$p = <STDIN>; chomp $p; print crypt($p, $ARGV[0])', `$5$${salt}$`], { input: `${password}\n` });
  const hash = r.stdout?.toString() ?? '';
  if (r.status !== 0 || !hash.startsWith('$5$')) die('unable to encrypt password');
  return hash;
}

const shellQuote = (a: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);

/** domain_set_password: pam -> usermod -p; pve -> priv/shadow.cfg */
function domainSetPassword(realm: string, user: string, password: string): void {
  const info = realms().get(realm);
  if (!info) die(`can't set password on auth domain '${realm}'`);
  if (info!.type === 'pam') {
    const argv = ['-p', encryptPw(password), user];
    const r = spawnSync('usermod', argv, { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) {
      die(`${msg.changePasswordFailed}: ${msg.commandFailed(['usermod', ...argv].map(shellQuote).join(' '), r.status ?? -1)}`);
    }
  } else if (info!.type === 'pve') {
    lockFile('priv/shadow.cfg', () => {
      const entries = parseShadow(readFile('priv/shadow.cfg'));
      entries.set(user, encryptPw(password));
      writeFile('priv/shadow.cfg', [...entries].map(([u, h]) => `${u}:${h}:\n`).join(''));
    });
  } else {
    die(`${info!.type}: changing passwords is not supported in the lab`);
  }
}

function parseShadow(raw: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of (raw ?? '').split('\n')) {
    if (!line.trim()) continue;
    const m = /^(\S+?):(\S+):$/.exec(line.trim());
    if (!m) {
      process.stderr.write(`${msg.shadowInvalidLine()}\n`);
      continue;
    }
    out.set(m[1]!, m[2]!);
  }
  return out;
}

function pveRealmDeleteUser(user: string): void {
  lockFile('priv/shadow.cfg', () => {
    const entries = parseShadow(readFile('priv/shadow.cfg'));
    if (entries.delete(user)) writeFile('priv/shadow.cfg', [...entries].map(([u, h]) => `${u}:${h}:\n`).join(''));
  });
}

// priv/token.cfg (PVE::TokenConfig)
function tokenCfg(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of (readFile('priv/token.cfg') ?? '').split('\n')) {
    if (!line) continue;
    const m = /^(\S+) (\S+)$/.exec(line);
    if (!m || !splitTokenid(m[1]!)) {
      process.stderr.write(`${msg.tokenCfgInvalidLine()}\n`);
      continue;
    }
    out.set(m[1]!, m[2]!);
  }
  return out;
}
const writeTokenCfg = (t: Map<string, string>) =>
  writeFile('priv/token.cfg', [...t.keys()].sort().map((k) => `${k} ${t.get(k)}\n`).join(''));

function storageIds(): Set<string> {
  const ids = new Set<string>();
  for (const line of (readFile('storage.cfg') ?? '').split('\n')) {
    const m = /^(\w+):\s*(\S+)\s*$/.exec(line);
    if (m) ids.add(m[2]!);
  }
  return ids;
}

// ---------------------------------------------------------------------------
// schemas shared by several methods

const userProps = (): Record<string, Prop> => ({
  enable: { type: 'boolean', optional: true, default: 1 },
  expire: { type: 'integer', minimum: 0, optional: true },
  firstname: { type: 'string', optional: true, maxLength: 1024 },
  lastname: { type: 'string', optional: true, maxLength: 1024 },
  email: { type: 'string', optional: true, format: 'email-opt', maxLength: 254 },
  comment: { type: 'string', optional: true, maxLength: 2048 },
  keys: { type: 'string', optional: true, pattern: '[0-9a-zA-Z!=]{0,4096}' },
});
const groupList = (): Prop => ({ type: 'string', format: 'pve-groupid-list', optional: true });
const tokenInfo = (): Record<string, Prop> => ({
  expire: { type: 'integer', minimum: 0, optional: true, default: 'same as user' as unknown as number },
  privsep: { type: 'boolean', optional: true, default: 1 },
  comment: { type: 'string', optional: true },
});

const userIndexItem: Prop = {
  type: 'object',
  properties: {
    userid: opt.userid(),
    ...userProps(),
    groups: groupList(),
    tokens: { type: 'array', optional: true, items: { type: 'object', properties: { tokenid: opt.tokenSubid(), ...tokenInfo() } } },
    'realm-type': { type: 'string', optional: true },
    'totp-locked': { type: 'boolean', optional: true },
    'tfa-locked-until': { type: 'integer', optional: true },
  },
};

function userData(u: ReturnType<UserCfg['users']['get']> & object, full: boolean): Record<string, unknown> {
  const res: Record<string, unknown> = {};
  for (const p of ['enable', 'expire', 'firstname', 'lastname', 'email', 'comment', 'keys'] as const) if (u[p] !== undefined) res[p] = u[p];
  if (!full) return res;
  res.groups = [...u.groups].sort();
  res.tokens = Object.fromEntries([...u.tokens].map(([k, t]) => [k, { ...t }]));
  return res;
}

// ---------------------------------------------------------------------------
// /access/users

const users: ApiMethod[] = [
  {
    name: 'index',
    path: '/access/users',
    method: 'GET',
    description: 'User index.',
    parameters: { enabled: { type: 'boolean', optional: true }, full: { type: 'boolean', optional: true, default: 0 } },
    returns: { type: 'array', items: userIndexItem },
    handler: (p) => {
      const cfg = readUserCfg();
      const domains = realms();
      const res: Record<string, unknown>[] = [];
      for (const userid of [...cfg.users.keys()].sort()) {
        const u = cfg.users.get(userid)!;
        const entry = userData(u, truthy(p.full));
        if (p.enabled !== undefined) {
          if (entry.enable && !truthy(p.enabled)) continue;
          if (!entry.enable && truthy(p.enabled)) continue;
        }
        if (Array.isArray(entry.groups)) entry.groups = (entry.groups as string[]).join(',');
        if (entry.tokens) {
          const tokens = entry.tokens as Record<string, PveToken>;
          entry.tokens = Object.keys(tokens)
            .sort()
            .map((t) => ({ tokenid: t, ...tokens[t] }));
        }
        const realm = splitUserid(userid)?.realm;
        if (realm && domains.has(realm)) entry['realm-type'] = domains.get(realm)!.type;
        entry.userid = userid;
        res.push(entry);
      }
      return res;
    },
  },
  {
    name: 'create_user',
    path: '/access/users',
    method: 'POST',
    description: 'Create new user.',
    parameters: {
      userid: opt.userid(),
      ...userProps(),
      password: { type: 'string', optional: true, minLength: 8, maxLength: 64 },
      groups: groupList(),
    },
    returns: { type: 'null' },
    handler: (p) => {
      lockUserConfig(() => {
        const userid = String(p.userid);
        const { user, realm } = splitUserid(userid)!;
        const cfg = readUserCfg();
        if (cfg.users.has(userid)) die(msg.userExists(userid));
        if (p.password !== undefined) domainSetPassword(realm, user, String(p.password));
        const u = newUser(p.enable !== undefined ? (Number(p.enable) as Bit) : 1);
        cfg.users.set(userid, u);
        if (truthy(p.expire)) u.expire = Number(p.expire);
        if (truthy(p.groups)) {
          for (const g of splitList(String(p.groups))) {
            if (cfg.groups.has(g)) addUserGroup(cfg, userid, g);
            else die(msg.noSuchGroup(g));
          }
        }
        for (const f of ['firstname', 'lastname', 'email', 'comment', 'keys'] as const) if (truthy(p[f])) u[f] = String(p[f]);
        writeUserCfgFile(cfg);
      }, msg.prefix.createUser);
      return null;
    },
  },
  {
    name: 'read_user',
    path: '/access/users/{userid}',
    method: 'GET',
    description: 'Get user configuration.',
    parameters: { userid: opt.userid() },
    returns: {
      type: 'object',
      properties: {
        ...userProps(),
        groups: { type: 'array', optional: true, items: { type: 'string' } },
        tokens: { type: 'object', optional: true },
      },
    },
    handler: (p) => userData(checkUserExist(readUserCfg(), String(p.userid)), true),
  },
  {
    name: 'update_user',
    path: '/access/users/{userid}',
    method: 'PUT',
    description: 'Update user configuration.',
    parameters: { userid: opt.userid(), ...userProps(), groups: groupList(), append: { type: 'boolean', optional: true, requires: 'groups' } },
    returns: { type: 'null' },
    handler: (p) => {
      const userid = String(p.userid);
      updateUserCfg((cfg) => {
        const u = checkUserExist(cfg, userid);
        if (p.enable !== undefined) u.enable = Number(p.enable) as Bit;
        if (p.expire !== undefined) u.expire = Number(p.expire);
        if (!truthy(p.append) && p.groups !== undefined) deleteUserGroup(cfg, userid);
        if (truthy(p.groups)) {
          for (const g of splitList(String(p.groups))) {
            if (cfg.groups.has(g)) addUserGroup(cfg, userid, g);
            else die(msg.noSuchGroup(g));
          }
        }
        for (const f of ['firstname', 'lastname', 'email', 'comment', 'keys'] as const) if (p[f] !== undefined) u[f] = String(p[f]);
      }, msg.prefix.updateUser);
      return null;
    },
  },
  {
    name: 'delete_user',
    path: '/access/users/{userid}',
    method: 'DELETE',
    description: 'Delete user.',
    parameters: { userid: opt.userid() },
    returns: { type: 'null' },
    handler: (p) => {
      const userid = String(p.userid);
      const { user, realm } = splitUserid(userid)!;
      updateUserCfg((cfg) => {
        // disable first (transaction like), as Proxmox does - even for an unknown user
        const existing = cfg.users.get(userid);
        if (existing) existing.enable = 0;
        else cfg.users.set(userid, newUser(0));
        writeUserCfgFile(cfg);
        if (realms().get(realm)?.type === 'pve') pveRealmDeleteUser(user);
        cfg.users.delete(userid);
        deleteUserGroup(cfg, userid);
        deleteUserAcl(cfg, userid);
      }, msg.prefix.deleteUser);
      return null;
    },
  },
  {
    name: 'token_index',
    path: '/access/users/{userid}/token',
    method: 'GET',
    description: 'Get user API tokens.',
    parameters: { userid: opt.userid() },
    returns: { type: 'array', items: { type: 'object', properties: { tokenid: opt.tokenSubid(), ...tokenInfo() } } },
    handler: (p) => {
      const u = checkUserExist(readUserCfg(), String(p.userid));
      return [...u.tokens].map(([tokenid, t]) => ({ ...t, tokenid }));
    },
  },
  {
    name: 'read_token',
    path: '/access/users/{userid}/token/{tokenid}',
    method: 'GET',
    description: 'Get specific API token information.',
    parameters: { userid: opt.userid(), tokenid: opt.tokenSubid() },
    returns: { type: 'object', properties: tokenInfo() },
    handler: (p) => ({ ...checkTokenExist(readUserCfg(), String(p.userid), String(p.tokenid)) }),
  },
  {
    name: 'generate_token',
    path: '/access/users/{userid}/token/{tokenid}',
    method: 'POST',
    description: 'Generate a new API token for a specific user. NOTE: returns API token value, which needs to be stored as it cannot be retrieved afterwards!',
    parameters: { userid: opt.userid(), tokenid: opt.tokenSubid(), ...tokenInfo() },
    returns: {
      type: 'object',
      properties: {
        info: { type: 'object', properties: tokenInfo() },
        value: { type: 'string' },
        'full-tokenid': { type: 'string' },
      },
    },
    handler: (p) => {
      const userid = String(p.userid);
      const tokenid = String(p.tokenid);
      let cfg = readUserCfg();
      const existing = cfg.users.get(userid)?.tokens.get(tokenid);
      checkUserExist(cfg, userid);
      if (existing) paramExc({ tokenid: msg.tokenExists() });
      const info: Record<string, unknown> = { privsep: p.privsep !== undefined ? Number(p.privsep) : 1 };
      if (p.expire !== undefined) info.expire = Number(p.expire);
      if (truthy(p.comment)) info.comment = String(p.comment);
      let value = '';
      lockUserConfig(() => {
        cfg = readUserCfg();
        const u = checkUserExist(cfg, userid);
        if (u.tokens.has(tokenid)) die(msg.tokenExists());
        value = lockFile('priv/token.cfg', () => {
          const uuid = randomUUID();
          const t = tokenCfg();
          t.set(`${userid}!${tokenid}`, uuid);
          writeTokenCfg(t);
          return uuid;
        });
        const token: PveToken = { privsep: info.privsep as Bit, expire: Number(info.expire ?? 0) };
        if (info.comment !== undefined) token.comment = String(info.comment);
        u.tokens.set(tokenid, token);
        writeUserCfgFile(cfg);
      }, msg.prefix.generateToken);
      return { info, value, 'full-tokenid': `${userid}!${tokenid}` };
    },
  },
  {
    name: 'update_token_info',
    path: '/access/users/{userid}/token/{tokenid}',
    method: 'PUT',
    description: "Update API token for a specific user. NOTE: when 'regenerate' is set, the returned token value needs to be stored as it cannot be retrieved afterwards!",
    parameters: {
      userid: opt.userid(),
      tokenid: opt.tokenSubid(),
      ...tokenInfo(),
      // pve-access-control 9.1+ (User.pm update_token_info)
      regenerate: { type: 'boolean', optional: true, default: 0, description: "Regenerate the token's secret value. All users of the previous secret will lose access after this operation." },
      delete: { type: 'string', format: 'pve-configid-list', optional: true, description: 'A list of settings you want to delete.' },
    },
    returns: {
      type: 'object',
      properties: {
        ...tokenInfo(),
        value: { type: 'string', optional: true, description: "API token value used for authentication. Only set when 'regenerate' was set." },
        'full-tokenid': { type: 'string', optional: true, description: "The full token id. Only set when 'regenerate' was set." },
      },
    },
    handler: (p) => {
      const userid = String(p.userid);
      const tokenid = String(p.tokenid);
      checkTokenExist(readUserCfg(), userid, tokenid);
      const del = new Set(splitList(str(p.delete)));
      const fullTokenid = `${userid}!${tokenid}`;
      let result: PveToken | undefined;
      let value: string | undefined;
      lockUserConfig(() => {
        const cfg = readUserCfg();
        const t = checkTokenExist(cfg, userid, tokenid);
        if (p.privsep !== undefined) t.privsep = Number(p.privsep) as Bit;
        if (p.expire !== undefined) t.expire = Number(p.expire);
        if (p.comment !== undefined) t.comment = String(p.comment);
        if (!t.comment) delete t.comment; // delete $token->{comment} if (!length $token->{comment})
        for (const k of del) {
          if (k !== 'comment') paramExc({ delete: `unknown option '${k}'` });
          delete t.comment;
        }
        // PVE::TokenConfig::generate_token: a new UUID in priv/token.cfg, the token's ACL entries untouched
        if (truthy(p.regenerate)) {
          value = lockFile('priv/token.cfg', () => {
            const uuid = randomUUID();
            const all = tokenCfg();
            all.set(fullTokenid, uuid);
            writeTokenCfg(all);
            return uuid;
          });
        }
        writeUserCfgFile(cfg);
        result = { ...t };
      }, msg.prefix.updateToken);
      const res: Record<string, unknown> = { ...result };
      if (truthy(p.regenerate)) {
        res.value = value;
        res['full-tokenid'] = fullTokenid;
      }
      return res;
    },
  },
  {
    name: 'remove_token',
    path: '/access/users/{userid}/token/{tokenid}',
    method: 'DELETE',
    description: 'Remove API token for a specific user.',
    parameters: { userid: opt.userid(), tokenid: opt.tokenSubid() },
    returns: { type: 'null' },
    handler: (p) => {
      const userid = String(p.userid);
      const tokenid = String(p.tokenid);
      checkTokenExist(readUserCfg(), userid, tokenid);
      updateUserCfg((cfg) => {
        checkTokenExist(cfg, userid, tokenid);
        lockFile('priv/token.cfg', () => {
          const t = tokenCfg();
          t.delete(`${userid}!${tokenid}`);
          writeTokenCfg(t);
        });
        cfg.users.get(userid)!.tokens.delete(tokenid);
      }, msg.prefix.deleteToken);
      return null;
    },
  },
];

// ---------------------------------------------------------------------------
// /access/groups, /access/roles, /access/acl, /access/password, /access/domains

const groups: ApiMethod[] = [
  {
    name: 'index',
    path: '/access/groups',
    method: 'GET',
    description: 'Group index.',
    parameters: {},
    returns: {
      type: 'array',
      items: { type: 'object', properties: { groupid: opt.groupid(), comment: { type: 'string', optional: true }, users: { type: 'string', optional: true } } },
    },
    handler: () => {
      const cfg = readUserCfg();
      return [...cfg.groups].map(([groupid, g]) => ({ groupid, ...(g.comment !== undefined ? { comment: g.comment } : {}), users: [...g.users].sort().join(',') }));
    },
  },
  {
    name: 'create_group',
    path: '/access/groups',
    method: 'POST',
    description: 'Create new group.',
    parameters: { groupid: opt.groupid(), comment: { type: 'string', optional: true } },
    returns: { type: 'null' },
    handler: (p) => {
      updateUserCfg((cfg) => {
        const group = String(p.groupid);
        if (cfg.groups.has(group)) die(msg.groupExists(group));
        cfg.groups.set(group, { users: new Set(), ...(truthy(p.comment) ? { comment: String(p.comment) } : {}) });
      }, msg.prefix.createGroup);
      return null;
    },
  },
  {
    name: 'read_group',
    path: '/access/groups/{groupid}',
    method: 'GET',
    description: 'Get group configuration.',
    parameters: { groupid: opt.groupid() },
    returns: { type: 'object', properties: { comment: { type: 'string', optional: true }, members: { type: 'array', items: { type: 'string' } } } },
    handler: (p) => {
      const g = readUserCfg().groups.get(String(p.groupid));
      if (!g) die(msg.groupMissing(String(p.groupid)));
      return { members: [...g!.users], ...(g!.comment !== undefined ? { comment: g!.comment } : {}) };
    },
  },
  {
    name: 'update_group',
    path: '/access/groups/{groupid}',
    method: 'PUT',
    description: 'Update group data.',
    parameters: { groupid: opt.groupid(), comment: { type: 'string', optional: true } },
    returns: { type: 'null' },
    handler: (p) => {
      updateUserCfg((cfg) => {
        const g = cfg.groups.get(String(p.groupid));
        if (!g) die(msg.groupMissing(String(p.groupid)));
        if (p.comment !== undefined) g!.comment = String(p.comment);
      }, msg.prefix.updateGroup);
      return null;
    },
  },
  {
    name: 'delete_group',
    path: '/access/groups/{groupid}',
    method: 'DELETE',
    description: 'Delete group.',
    parameters: { groupid: opt.groupid() },
    returns: { type: 'null' },
    handler: (p) => {
      updateUserCfg((cfg) => {
        const group = String(p.groupid);
        if (!cfg.groups.has(group)) die(msg.groupMissing(group));
        cfg.groups.delete(group);
        deleteGroupAcl(cfg, group);
      }, msg.prefix.deleteGroup);
      return null;
    },
  },
];

const privsProp = (): Prop => ({ type: 'string', format: 'pve-priv-list', optional: true });

function addRolePrivs(cfg: UserCfg, role: string, privs: unknown): void {
  if (!truthy(privs)) return;
  const set = cfg.roles.get(role);
  if (!set) die(msg.roleMissing(role));
  for (const priv of splitList(String(privs))) {
    if (isValidPrivilege(priv, cfg.major)) set!.add(priv);
    else die(msg.privInvalid(priv));
  }
}

const roles: ApiMethod[] = [
  {
    name: 'index',
    path: '/access/roles',
    method: 'GET',
    description: 'Role index.',
    parameters: {},
    returns: {
      type: 'array',
      items: { type: 'object', properties: { roleid: opt.roleid(), privs: privsProp(), special: { type: 'boolean', optional: true, default: 0 } } },
    },
    handler: () =>
      [...readUserCfg().roles].map(([roleid, privs]) => ({ roleid, privs: [...privs].sort().join(','), special: isBuiltinRole(roleid) ? 1 : 0 })),
  },
  {
    name: 'create_role',
    path: '/access/roles',
    method: 'POST',
    description: 'Create new role.',
    parameters: { roleid: opt.roleid(), privs: privsProp() },
    returns: { type: 'null' },
    handler: (p) => {
      const role = String(p.roleid);
      if (/^PVE/i.test(role)) paramExc({ roleid: msg.rolePveNamespace() });
      updateUserCfg((cfg) => {
        if (cfg.roles.has(role)) die(msg.roleExists(role));
        cfg.roles.set(role, new Set());
        addRolePrivs(cfg, role, p.privs);
      }, msg.prefix.createRole);
      return null;
    },
  },
  {
    name: 'read_role',
    path: '/access/roles/{roleid}',
    method: 'GET',
    description: 'Get role configuration.',
    parameters: { roleid: opt.roleid() },
    returns: { type: 'object' },
    handler: (p) => {
      const privs = readUserCfg().roles.get(String(p.roleid));
      if (!privs) die(msg.roleMissing(String(p.roleid)));
      return Object.fromEntries([...privs!].sort().map((x) => [x, 1]));
    },
  },
  {
    name: 'update_role',
    path: '/access/roles/{roleid}',
    method: 'PUT',
    description: 'Update an existing role.',
    parameters: { roleid: opt.roleid(), privs: privsProp(), append: { type: 'boolean', optional: true, requires: 'privs' } },
    returns: { type: 'null' },
    handler: (p) => {
      const role = String(p.roleid);
      if (isBuiltinRole(role)) die(msg.roleNotModifiable(role));
      updateUserCfg((cfg) => {
        if (!cfg.roles.has(role)) die(msg.roleMissing(role));
        if (!truthy(p.append)) cfg.roles.set(role, new Set());
        addRolePrivs(cfg, role, p.privs);
      }, msg.prefix.updateRole);
      return null;
    },
  },
  {
    name: 'delete_role',
    path: '/access/roles/{roleid}',
    method: 'DELETE',
    description: 'Delete role.',
    parameters: { roleid: opt.roleid() },
    returns: { type: 'null' },
    handler: (p) => {
      const role = String(p.roleid);
      if (isBuiltinRole(role)) die(msg.roleNotDeletable(role));
      updateUserCfg((cfg) => {
        if (!cfg.roles.has(role)) die(msg.roleMissing(role));
        cfg.roles.delete(role);
      }, msg.prefix.deleteRole);
      return null;
    },
  },
];

const acl: ApiMethod[] = [
  {
    name: 'read_acl',
    path: '/access/acl',
    method: 'GET',
    description: 'Get Access Control List (ACLs).',
    parameters: {},
    returns: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          propagate: { type: 'boolean', optional: true, default: 1 },
          path: { type: 'string' },
          type: { type: 'string', enum: ['user', 'group', 'token'] },
          ugid: { type: 'string' },
          roleid: { type: 'string' },
        },
      },
    },
    handler: () => aclEntries(readUserCfg()),
  },
  {
    name: 'update_acl',
    path: '/access/acl',
    method: 'PUT',
    description: 'Update Access Control List (add or remove permissions).',
    parameters: {
      propagate: { type: 'boolean', optional: true, default: 1 },
      path: { type: 'string' },
      users: { type: 'string', format: 'pve-userid-list', optional: true },
      groups: { type: 'string', format: 'pve-groupid-list', optional: true },
      tokens: { type: 'string', format: 'pve-tokenid-list', optional: true },
      roles: { type: 'string', format: 'pve-roleid-list' },
      delete: { type: 'boolean', optional: true },
    },
    returns: { type: 'null' },
    handler: (p) => {
      if (!(truthy(p.users) || truthy(p.groups) || truthy(p.tokens))) {
        paramExc({ users: msg.aclNeedsMember(), groups: msg.aclNeedsMember(), tokens: msg.aclNeedsMember() });
      }
      const path = normalizeAclPath(str(p.path));
      if (!path) paramExc({ path: msg.aclInvalidPath(String(p.path)) });
      if (!truthy(p.delete) && !isValidAclPath(path!)) paramExc({ path: msg.aclInvalidPath(String(p.path)) });
      updateUserCfg((cfg) => {
        const propagate: Bit = p.propagate !== undefined ? (truthy(p.propagate) ? 1 : 0) : 1;
        const node = findAclNode(cfg, path!)!;
        const del = truthy(p.delete);
        for (const role of splitList(str(p.roles))) {
          if (!cfg.roles.has(role)) die(msg.roleMissing(role));
          for (const group of splitList(str(p.groups))) {
            if (!cfg.groups.has(group)) die(msg.groupMissing(group));
            setOrDelete(node.groups, group, role, propagate, del);
          }
          for (const userid of splitList(str(p.users))) {
            if (!cfg.users.has(userid)) die(msg.userMissing(userid));
            setOrDelete(node.users, userid, role, propagate, del);
          }
          for (const tokenid of splitList(str(p.tokens))) {
            const split = splitTokenid(tokenid);
            if (!split) die(msg.tokenSplitFailed(tokenid));
            checkTokenExist(cfg, split![0], split![1]);
            setOrDelete(node.tokens, tokenid, role, propagate, del);
          }
        }
      }, msg.prefix.acl);
      return null;
    },
  },
];

function setOrDelete(members: Map<string, Map<string, Bit>>, id: string, role: string, propagate: Bit, del: boolean): void {
  if (del) {
    members.get(id)?.delete(role);
    if (members.get(id)?.size === 0) members.delete(id);
    return;
  }
  let roles = members.get(id);
  if (!roles) members.set(id, (roles = new Map()));
  roles.set(role, propagate);
}

/** the user the stand-ins act as: pveum and pvesh run as root@pam */
const AUTHID = 'root@pam';

/** $PVE::AccessControl::userid_or_token_regex (without its anchors; check_prop adds them) */
const USERID_OR_TOKEN_PATTERN = `${USER_RE_SRC}@${REALM_RE_SRC}(?:!${TOKEN_SUBID_RE_SRC})?`;

/**
 * GET /access/permissions (API2/AccessControl.pm 'permissions'): with `path`,
 * `{ <path>: { <priv>: 0|1 } }` (also when empty); without it,
 * RPCEnvironment::get_effective_permissions. Anyone may ask about themselves
 * and their own tokens; asking about others needs Sys.Audit on /access.
 */
function getPermissions(p: Params): Record<string, Record<string, Bit>> {
  const cfg = readUserCfg();
  const userid = p.userid !== undefined ? String(p.userid) : AUTHID;
  const owner = splitTokenid(userid)?.[0];
  if (!(userid === AUTHID || owner === AUTHID) && !hasPrivileges(cfg, AUTHID, '/access', ['Sys.Audit'])) {
    throw new PveError(`${msg.permissionCheckFailed('/access, Sys.Audit')}\n`, { code: 403 });
  }
  const path = str(p.path);
  if (truthy(path)) return { [path!]: privObject(privilegeMap(cfg, userid, path)) }; // Perl: if (my $path = $param->{path})
  return effectivePermissions(cfg, userid);
}

const access: ApiMethod[] = [
  {
    name: 'permissions',
    path: '/access/permissions',
    method: 'GET',
    description: 'Retrieve effective permissions of given user/token.',
    parameters: {
      userid: { type: 'string', description: 'User ID or full API token ID', pattern: USERID_OR_TOKEN_PATTERN, optional: true },
      path: { type: 'string', description: 'Only dump this specific path, not the whole tree.', optional: true },
    },
    returns: { type: 'object', description: 'Map of "path" => (Map of "privilege" => "propagate boolean").' },
    handler: getPermissions,
  },
  {
    name: 'change_password',
    path: '/access/password',
    method: 'PUT',
    description: 'Change user password.',
    parameters: {
      userid: opt.userid(),
      password: { type: 'string', minLength: 8, maxLength: 64 },
      'confirmation-password': { type: 'string', optional: true, maxLength: 64 },
    },
    returns: { type: 'null' },
    handler: (p) => {
      const userid = String(p.userid);
      const { user, realm } = splitUserid(userid)!;
      checkUserExist(readUserCfg(), userid);
      domainSetPassword(realm, user, String(p.password));
      return null;
    },
  },
  {
    name: 'index',
    path: '/access/domains',
    method: 'GET',
    description: 'Authentication domain index.',
    parameters: {},
    returns: {
      type: 'array',
      items: { type: 'object', properties: { realm: { type: 'string' }, type: { type: 'string' }, tfa: { type: 'string', optional: true }, comment: { type: 'string', optional: true } } },
    },
    handler: () => [...realms()].map(([realm, d]) => ({ realm, type: d.type, ...(d.comment ? { comment: d.comment } : {}) })),
  },
];

// ---------------------------------------------------------------------------
// /pools (pve-manager PVE/API2/Pool.pm, 8.1+ with poolid as parameter)

const poolCreate = (p: Params) => {
  updateUserCfg((cfg) => {
    const pool = String(p.poolid);
    if (cfg.pools.has(pool)) die(msg.poolExists(pool));
    if (!/^[A-Za-z]/.test(pool)) die(msg.poolMustStartWithLetter());
    const parent = /^(.*)\/[^/]+$/.exec(pool)?.[1];
    if (parent !== undefined && !cfg.pools.has(parent)) die(`parent '${parent}' of pool '${pool}' does not exist`); // [derived]
    const entry = newPool();
    if (parent !== undefined) {
      entry.parent = parent;
      cfg.pools.get(parent)!.pools.add(pool);
    }
    if (truthy(p.comment)) entry.comment = String(p.comment);
    cfg.pools.set(pool, entry);
  }, msg.prefix.createPool);
  return null;
};

/**
 * Pool.pm update_pool: per VMID check_perm_modify on /vms/<vmid>, no check
 * that the guest exists (an unknown VMID is stored, and GET /pools?poolid=
 * lists only guests the cluster knows); 'allow-move' needs Pool.Allocate on
 * the old pool.
 */
const poolUpdate = (p: Params, ctx: CallContext = callContext(AUTHID)) => {
  updateUserCfg((cfg) => {
    const pool = String(p.poolid);
    const pc = cfg.pools.get(pool);
    if (!pc) die(msg.poolMissing(pool));
    if (p.comment !== undefined) pc!.comment = String(p.comment);
    const del = truthy(p.delete);
    if (p.vms !== undefined) {
      for (const vmid of splitList(str(p.vms))) {
        checkPermModify(ctx, `/vms/${vmid}`);
        if (del) {
          if (!pc!.vms.has(vmid)) die(msg.vmNotMember(vmid));
          pc!.vms.delete(vmid);
          cfg.vms.delete(vmid);
        } else {
          if (pc!.vms.has(vmid)) die(msg.vmAlreadyMember(vmid));
          const other = cfg.vms.get(vmid);
          if (other !== undefined) {
            if (!truthy(p['allow-move'])) die(`${msg.vmInOtherPool(vmid, other)} and 'allow-move' is not set`);
            ctx.check(`/pool/${other}`, ['Pool.Allocate']);
            cfg.pools.get(other)?.vms.delete(vmid);
          }
          pc!.vms.add(vmid);
          cfg.vms.set(vmid, pool);
        }
      }
    }
    if (p.storage !== undefined) {
      for (const s of splitList(str(p.storage))) {
        checkPermModify(ctx, `/storage/${s}`);
        if (del) {
          if (!pc!.storage.has(s)) die(msg.storageNotMember(s));
          pc!.storage.delete(s);
        } else {
          if (pc!.storage.has(s)) die(msg.storageAlreadyMember(s));
          pc!.storage.add(s);
        }
      }
    }
  }, msg.prefix.updatePool);
  return null;
};

/** Pool.pm delete_pool: refused while it holds a sub-pool, an existing guest or a configured storage */
const poolDelete = (p: Params) => {
  updateUserCfg((cfg) => {
    const pool = String(p.poolid);
    const pc = cfg.pools.get(pool);
    if (!pc) die(msg.poolMissing(pool));
    for (const sub of [...pc!.pools].sort()) die(`pool '${pool}' is not empty (contains pool '${sub}')`);
    const guests = vmList();
    for (const vmid of [...pc!.vms].sort()) if (guests.has(vmid)) die(msg.poolNotEmptyVm(pool, vmid)); // "ignore destroyed guests"
    const known = storageIds();
    for (const s of [...pc!.storage].sort()) if (known.has(s)) die(msg.poolNotEmptyStorage(pool, s));
    cfg.pools.delete(pool);
    if (pc!.parent) cfg.pools.get(pc!.parent)?.pools.delete(pool);
    for (const vmid of pc!.vms) cfg.vms.delete(vmid);
    deletePoolAcl(cfg, pool);
  }, msg.prefix.deletePool);
  return null;
};

/**
 * Pool.pm index. Without poolid: the pools with Pool.Audit on /pool/<pool>.
 * With poolid: Pool.pm calls $rpcenv->check(..., ['Pool.Audit'], 1) and
 * ignores the answer (noerr), so anyone gets the pool and its members: the
 * guests the cluster knows (extract_vm_stats), then its configured storages.
 */
function poolIndex(p: Params, ctx: CallContext): Record<string, unknown>[] {
  const cfg = ctx.cfg;
  const res: Record<string, unknown>[] = [];
  if (p.poolid !== undefined && String(p.poolid) !== '') {
    const poolid = String(p.poolid);
    const pc = cfg.pools.get(poolid);
    if (!pc) die(msg.poolMissing(poolid));
    const type = str(p.type);
    const members: Record<string, unknown>[] = [];
    const guests = vmList();
    for (const vmid of [...pc!.vms].sort()) {
      const vmdata = guests.get(vmid);
      if (!vmdata || (type !== undefined && type !== vmdata.type)) continue;
      members.push(extractVmStats(vmid, vmdata));
    }
    if (type === undefined || type === 'storage') {
      const known = storageIds();
      for (const s of [...pc!.storage].sort()) {
        if (!known.has(s)) continue;
        members.push({ id: `storage/${nodename()}/${s}`, node: nodename(), storage: s, type: 'storage' });
      }
    }
    const info: Record<string, unknown> = { members };
    if (pc!.comment !== undefined) info.comment = pc!.comment;
    info.poolid = poolid;
    res.push(info);
  } else {
    for (const pool of [...cfg.pools.keys()].sort()) {
      if (!ctx.can(`/pool/${pool}`, ['Pool.Audit'])) continue;
      const e: Record<string, unknown> = { poolid: pool };
      const pc = cfg.pools.get(pool)!;
      if (pc.comment !== undefined) e.comment = pc.comment;
      res.push(e);
    }
  }
  return res;
}

const poolUpdateParams = (): Record<string, Prop> => ({
  poolid: opt.poolid(),
  comment: { type: 'string', optional: true },
  vms: { type: 'string', format: 'pve-vmid-list', optional: true },
  storage: { type: 'string', format: 'pve-storage-id-list', optional: true },
  delete: { type: 'boolean', optional: true },
  'allow-move': { type: 'boolean', optional: true, default: 0 },
});

const pools: ApiMethod[] = [
  {
    name: 'index',
    path: '/pools',
    method: 'GET',
    description: 'List pools or get pool configuration.',
    parameters: { poolid: { ...opt.poolid(), optional: true }, type: { type: 'string', enum: ['qemu', 'lxc', 'storage'], optional: true, requires: 'poolid' } },
    returns: {
      type: 'array',
      items: { type: 'object', properties: { poolid: { type: 'string' }, comment: { type: 'string', optional: true }, members: { type: 'array', optional: true } } },
    },
    handler: (p, ctx) => poolIndex(p, ctx ?? callContext(AUTHID)),
  },
  {
    name: 'create_pool',
    path: '/pools',
    method: 'POST',
    description: 'Create new pool.',
    parameters: { poolid: opt.poolid(), comment: { type: 'string', optional: true } },
    returns: { type: 'null' },
    handler: poolCreate,
  },
  { name: 'update_pool', path: '/pools', method: 'PUT', description: 'Update pool.', parameters: poolUpdateParams(), returns: { type: 'null' }, handler: poolUpdate },
  { name: 'delete_pool', path: '/pools', method: 'DELETE', description: 'Delete pool.', parameters: { poolid: opt.poolid() }, returns: { type: 'null' }, handler: poolDelete },
  {
    name: 'read_pool',
    path: '/pools/{poolid}',
    method: 'GET',
    description: 'Get pool configuration (deprecated, no support for nested pools, use GET /pools/?poolid={poolid}).',
    parameters: { poolid: opt.poolid(), type: { type: 'string', enum: ['qemu', 'lxc', 'storage'], optional: true } },
    returns: { type: 'object', properties: { comment: { type: 'string', optional: true }, members: { type: 'array', items: { type: 'object' } }, poolid: { type: 'string', optional: true } } },
    // read_pool: index($param)->[0], poolid included
    handler: (p, ctx) => poolIndex(p, ctx ?? callContext(AUTHID))[0],
  },
  { name: 'update_pool_deprecated', path: '/pools/{poolid}', method: 'PUT', description: 'Update pool data (deprecated).', parameters: poolUpdateParams(), returns: { type: 'null' }, handler: poolUpdate },
  { name: 'delete_pool_deprecated', path: '/pools/{poolid}', method: 'DELETE', description: 'Delete pool (deprecated).', parameters: { poolid: opt.poolid() }, returns: { type: 'null' }, handler: poolDelete },
];

// ---------------------------------------------------------------------------
// /version, /nodes, firewall options, ipsets and rules
//
// Every firewall write is Proxmox's: lock (cfs_lock_firewall "cluster" /
// "host-<node>"), load the whole file (load_clusterfw_conf /
// load_hostfw_conf), change it, write it whole (save_clusterfw_conf /
// save_hostfw_conf), with src/pve/firewall-rules.ts as parser and writer.

function fwPath(kind: FwKind, node?: string): string {
  return kind === 'cluster' ? 'firewall/cluster.fw' : `nodes/${node}/host.fw`;
}

/** Print what Perl warn()s while parsing; "errors in rule parameters" / "errors in ipset" go to syslog (not verbose), as in pvesh. */
function printFwWarnings(fw: ParsedFirewall): void {
  for (const w of fw.warnings) if (!/ - errors in (rule parameters|ipset '[^']*'): /.test(w)) process.stderr.write(`${w}\n`);
}

function loadClusterFw(): ParsedFirewall {
  const fw = parseFirewallFile(readFile(fwPath('cluster')), 'cluster', `/etc/pve/${fwPath('cluster')}`);
  printFwWarnings(fw);
  return fw;
}

/** load_hostfw_conf($cluster_conf): the host file, its rules checked against the cluster's ipsets and aliases. */
function loadHostFw(node: string, cluster = loadClusterFw()): ParsedFirewall {
  const fw = parseFirewallFile(readFile(fwPath('host', node)), 'host', `/etc/pve/${fwPath('host', node)}`, { cluster });
  printFwWarnings(fw);
  return fw;
}

function readFw(kind: FwKind, node?: string): ParsedFirewall {
  return kind === 'cluster' ? loadClusterFw() : loadHostFw(node!);
}

function saveFw(kind: FwKind, fw: ParsedFirewall, node?: string): void {
  const text = formatFirewallFile(fw);
  if (text === null) deleteFile(fwPath(kind, node));
  else writeFile(fwPath(kind, node), text);
}

const lockFw = <T>(kind: FwKind, node: string | undefined, fn: () => T): T => lockFile(kind === 'cluster' ? 'firewall-cluster' : `firewall-host-${node}`, fn);

/** PVE::Tools::assert_if_modified */
function assertIfModified(digest: string, given: unknown): void {
  if (given !== undefined && String(given) !== digest) die('detected modified configuration - file changed by other user? Try again.');
}

/** host paths: the stand-in serves only its own node [derived] */
function hostNode(p: Params): string {
  if (String(p.node) !== nodename()) die(`no such node '${p.node}'`);
  return String(p.node);
}

const LOG_LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug', 'nolog'] as const;

const FW_PARAMS: Record<FwKind, Record<string, Prop>> = {
  cluster: {
    enable: { type: 'integer', minimum: 0, optional: true },
    ebtables: { type: 'boolean', optional: true, default: 1 },
    policy_in: { type: 'string', enum: ['ACCEPT', 'REJECT', 'DROP'], optional: true },
    policy_out: { type: 'string', enum: ['ACCEPT', 'REJECT', 'DROP'], optional: true },
    policy_forward: { type: 'string', enum: ['ACCEPT', 'DROP'], optional: true },
    log_ratelimit: { type: 'string', optional: true },
  },
  host: {
    enable: { type: 'boolean', optional: true },
    nosmurfs: { type: 'boolean', optional: true },
    tcpflags: { type: 'boolean', optional: true, default: 0 },
    ndp: { type: 'boolean', optional: true, default: 1 },
    log_nf_conntrack: { type: 'boolean', optional: true, default: 0 },
    nf_conntrack_allow_invalid: { type: 'boolean', optional: true, default: 0 },
    protection_synflood: { type: 'boolean', optional: true, default: 0 },
    nftables: { type: 'boolean', optional: true, default: 0 },
    nf_conntrack_helpers: { type: 'string', optional: true },
    nf_conntrack_max: { type: 'integer', minimum: 32768, optional: true, default: 262144 },
    nf_conntrack_tcp_timeout_established: { type: 'integer', minimum: 7875, optional: true, default: 432000 },
    nf_conntrack_tcp_timeout_syn_recv: { type: 'integer', minimum: 30, maximum: 60, optional: true, default: 60 },
    protection_synflood_rate: { type: 'integer', minimum: 0, optional: true, default: 200 },
    protection_synflood_burst: { type: 'integer', minimum: 0, optional: true, default: 1000 },
    ...Object.fromEntries(
      ['log_level_in', 'log_level_out', 'log_level_forward', 'tcp_flags_log_level', 'smurf_log_level'].map((k) => [k, { type: 'string', enum: LOG_LEVELS, optional: true } as Prop]),
    ),
  },
};

function fwOptionsMethods(kind: FwKind): ApiMethod[] {
  const base = kind === 'cluster' ? '/cluster/firewall/options' : '/nodes/{node}/firewall/options';
  const nodeParam: Record<string, Prop> = kind === 'host' ? { node: opt.node() } : {};
  const checkNode = (p: Params) => (kind === 'host' ? hostNode(p) : undefined);
  return [
    {
      name: `get_options`,
      path: base,
      method: 'GET',
      description: kind === 'cluster' ? 'Get Firewall options.' : 'Get host firewall options.',
      parameters: nodeParam,
      returns: { type: 'object', properties: { ...Object.fromEntries(Object.entries(FW_PARAMS[kind])), digest: { type: 'string', optional: true } } },
      handler: (p) => {
        const node = checkNode(p);
        const conf = readFw(kind, node);
        const out: Record<string, unknown> = {};
        for (const [k, v] of conf.options) out[k] = /^\d+$/.test(v) ? Number(v) : v;
        out.digest = optionsDigest(conf.options);
        return out;
      },
    },
    {
      name: `set_options`,
      path: base,
      method: 'PUT',
      description: kind === 'cluster' ? 'Set Firewall options.' : 'Set Firewall options.',
      parameters: {
        ...nodeParam,
        ...FW_PARAMS[kind],
        delete: { type: 'string', format: 'pve-configid-list', optional: true },
        digest: { type: 'string', maxLength: 64, optional: true },
      },
      returns: { type: 'null' },
      handler: (p) => {
        const node = checkNode(p);
        lockFw(kind, node, () => {
          const conf = readFw(kind, node);
          assertIfModified(optionsDigest(conf.options), p.digest);
          for (const k of splitList(str(p.delete))) {
            if (!(k in FW_PARAMS[kind])) paramExc({ delete: `no such option '${k}'` });
            conf.options.delete(k);
          }
          for (const k of Object.keys(FW_PARAMS[kind])) {
            if (p[k] === undefined) continue;
            let v = String(p[k]);
            if (kind === 'cluster' && k === 'enable' && Number(v) > 1) v = String(Math.floor(Date.now() / 1000));
            conf.options.set(k, v);
          }
          saveFw(kind, conf, node);
        });
        return null;
      },
    },
  ];
}

// --- ipsets (API2/Firewall/IPSet.pm, cluster level) -------------------------

const IPSET_NAME: Prop = { type: 'string', pattern: '[A-Za-z][A-Za-z0-9\\-\\_]+', minLength: 2, maxLength: 64 };
const DIGEST: Prop = { type: 'string', maxLength: 64, optional: true };

/** the ipset by the name as given (the API does not lower-case it) */
function ipsetOf(fw: ParsedFirewall, name: string): FwIpset {
  const s = fw.ipsets.get(name);
  if (!s) die(`no such IPSet '${name}'`);
  return s!;
}

/** a JSON-schema format check failing: "invalid format - <why>" */
const formatError = (errors: Record<string, string>) => {
  if (Object.keys(errors).length) paramExc(Object.fromEntries(Object.entries(errors).map(([k, e]) => [k, `${msg.invalidFormat(e)}\n`])));
};

const ipsetMethods: ApiMethod[] = [
  {
    name: 'ipset_index',
    path: '/cluster/firewall/ipset',
    method: 'GET',
    description: 'List IPSets',
    parameters: {},
    returns: { type: 'array', items: { type: 'object', properties: { name: IPSET_NAME, digest: { type: 'string' }, comment: { type: 'string', optional: true } } } },
    handler: () => {
      const fw = loadClusterFw();
      const digest = ipsetListDigest(fw.ipsets);
      return [...fw.ipsets.keys()].sort().map((name) => ({ name, ...(fw.ipsets.get(name)!.comment ? { comment: fw.ipsets.get(name)!.comment } : {}), digest }));
    },
  },
  {
    name: 'create_ipset',
    path: '/cluster/firewall/ipset',
    method: 'POST',
    description: 'Create new IPSet',
    parameters: { name: IPSET_NAME, comment: { type: 'string', optional: true }, digest: DIGEST, rename: { ...IPSET_NAME, optional: true } },
    returns: { type: 'null' },
    handler: (p) => {
      const name = String(p.name);
      lockFw('cluster', undefined, () => {
        const fw = loadClusterFw();
        if (p.rename !== undefined) {
          const rename = String(p.rename);
          assertIfModified(ipsetListDigest(fw.ipsets), p.digest);
          if (!fw.ipsets.has(rename)) paramExc({ name: `IPSet '${rename}' does not exist` });
          if (fw.ipsets.has(name) && name !== rename) paramExc({ name: `IPSet '${name}' does already exist` });
          const data = fw.ipsets.get(rename)!;
          fw.ipsets.delete(rename);
          fw.ipsets.set(name, { ...data, name, ...(p.comment !== undefined ? { comment: String(p.comment) } : {}) });
        } else {
          if (fw.ipsets.has(name)) paramExc({ name: `IPSet '${name}' already exists` });
          fw.ipsets.set(name, { name, entries: [], ...(p.comment !== undefined && p.comment !== '' ? { comment: String(p.comment) } : {}) });
        }
        saveFw('cluster', fw);
      });
      return null;
    },
  },
  {
    name: 'get_ipset',
    path: '/cluster/firewall/ipset/{name}',
    method: 'GET',
    description: 'List IPSet content',
    parameters: { name: IPSET_NAME },
    returns: {
      type: 'array',
      items: { type: 'object', properties: { cidr: { type: 'string' }, comment: { type: 'string', optional: true }, nomatch: { type: 'boolean', optional: true }, digest: { type: 'string' } } },
    },
    handler: (p) => {
      const set = ipsetOf(loadClusterFw(), String(p.name));
      const digest = ipsetDigest(set.entries);
      return set.entries.map((e) => ({ ...ipsetEntryToApi(e), digest }));
    },
  },
  {
    name: 'delete_ipset',
    path: '/cluster/firewall/ipset/{name}',
    method: 'DELETE',
    description: 'Delete IPSet',
    parameters: { name: IPSET_NAME, force: { type: 'boolean', optional: true } },
    returns: { type: 'null' },
    handler: (p) => {
      lockFw('cluster', undefined, () => {
        const fw = loadClusterFw();
        const set = ipsetOf(fw, String(p.name));
        if (set.entries.length && !truthy(p.force)) die(`IPSet '${p.name}' is not empty`);
        fw.ipsets.delete(String(p.name));
        saveFw('cluster', fw);
      });
      return null;
    },
  },
  {
    name: 'create_ip',
    path: '/cluster/firewall/ipset/{name}',
    method: 'POST',
    description: 'Add IP or Network to IPSet.',
    parameters: {
      name: IPSET_NAME,
      cidr: { type: 'string', format: 'IPorCIDRorAlias' },
      nomatch: { type: 'boolean', optional: true },
      comment: { type: 'string', optional: true },
    },
    returns: { type: 'null' },
    handler: (p) => {
      let cidr = String(p.cidr);
      const alias = /^(dc\/|guest\/)?([A-Za-z][A-Za-z0-9\-_]+)$/.exec(cidr);
      // format IPorCIDRorAlias (pve_verify_ip_or_cidr_or_alias)
      if (!alias) {
        try {
          cleanCidr(cidr);
        } catch (e) {
          formatError({ cidr: (e as Error).message });
        }
      }
      lockFw('cluster', undefined, () => {
        const fw = loadClusterFw();
        const set = ipsetOf(fw, String(p.name));
        if (alias) {
          // resolve_alias: only the cluster's aliases, and guest/ finds none here
          if (alias[1] === 'guest/' || !fw.aliases.has(alias[2]!.toLowerCase())) die(`no such alias '${alias[2]}'`);
        } else cidr = cleanCidr(cidr); // normalised like the config parser, so duplicates cannot slip through
        for (const e of set.entries) if (e.cidr === cidr) paramExc({ cidr: `address '${cidr}' already exists` });
        if (/\/0+$/.test(cidr)) paramExc({ cidr: 'a zero prefix is not allowed in ipset entries' });
        const entry: FwIpsetEntry = { cidr };
        if (truthy(p.nomatch)) entry.nomatch = true;
        if (p.comment !== undefined && p.comment !== '') entry.comment = String(p.comment);
        set.entries.unshift(entry);
        saveFw('cluster', fw);
      });
      return null;
    },
  },
  {
    name: 'read_ip',
    path: '/cluster/firewall/ipset/{name}/{cidr}',
    method: 'GET',
    description: 'Read IP or Network settings from IPSet.',
    parameters: { name: IPSET_NAME, cidr: { type: 'string', format: 'IPorCIDRorAlias' } },
    returns: { type: 'object' },
    handler: (p) => {
      const set = ipsetOf(loadClusterFw(), String(p.name));
      const digest = ipsetDigest(set.entries);
      const e = set.entries.find((x) => x.cidr === String(p.cidr));
      if (!e) paramExc({ cidr: 'no such IP/Network' });
      return { ...ipsetEntryToApi(e!), digest };
    },
  },
  {
    name: 'remove_ip',
    path: '/cluster/firewall/ipset/{name}/{cidr}',
    method: 'DELETE',
    description: 'Remove IP or Network from IPSet.',
    parameters: { name: IPSET_NAME, cidr: { type: 'string', format: 'IPorCIDRorAlias' }, digest: DIGEST },
    returns: { type: 'null' },
    handler: (p) => {
      lockFw('cluster', undefined, () => {
        const fw = loadClusterFw();
        const set = ipsetOf(fw, String(p.name));
        assertIfModified(ipsetDigest(set.entries), p.digest);
        // exact string comparison, as remove_ip does (no normalisation)
        set.entries = set.entries.filter((e) => e.cidr !== String(p.cidr));
        saveFw('cluster', fw);
      });
      return null;
    },
  },
];

// --- rules (API2/Firewall/Rules.pm, cluster and host) -----------------------

const RULE_PARAMS: Record<string, Prop> = {
  pos: { type: 'integer', minimum: 0, optional: true },
  digest: DIGEST,
  type: { type: 'string', optional: true, enum: ['in', 'out', 'forward', 'group'] },
  action: { type: 'string', optional: true, pattern: '[A-Za-z][A-Za-z0-9\\-\\_]+', maxLength: 20, minLength: 2 },
  macro: { type: 'string', optional: true, maxLength: 128 },
  iface: { type: 'string', format: 'pve-iface', optional: true, minLength: 2, maxLength: 20 },
  source: { type: 'string', format: 'pve-fw-addr-spec', optional: true, maxLength: 512 },
  dest: { type: 'string', format: 'pve-fw-addr-spec', optional: true, maxLength: 512 },
  proto: { type: 'string', format: 'pve-fw-protocol-spec', optional: true },
  enable: { type: 'integer', minimum: 0, optional: true },
  log: { type: 'string', enum: LOG_LEVELS, optional: true },
  sport: { type: 'string', format: 'pve-fw-sport-spec', optional: true },
  dport: { type: 'string', format: 'pve-fw-dport-spec', optional: true },
  comment: { type: 'string', optional: true },
  'icmp-type': { type: 'string', format: 'pve-fw-icmp-type-spec', optional: true },
};

const RULE_RETURN: Prop = {
  type: 'object',
  properties: {
    pos: { type: 'integer' },
    type: { type: 'string' },
    action: { type: 'string' },
    macro: { type: 'string', optional: true },
    iface: { type: 'string', optional: true },
    source: { type: 'string', optional: true },
    dest: { type: 'string', optional: true },
    proto: { type: 'string', optional: true },
    dport: { type: 'string', optional: true },
    sport: { type: 'string', optional: true },
    'icmp-type': { type: 'string', optional: true },
    log: { type: 'string', optional: true },
    enable: { type: 'integer', optional: true },
    ipversion: { type: 'integer', optional: true },
    comment: { type: 'string', optional: true },
    digest: { type: 'string', optional: true },
  },
};

/** The JSON-schema formats of the rule properties (pve_fw_verify_*_spec, pve_verify_iface). */
function checkRuleFormats(p: Params): void {
  const errors: Record<string, string> = {};
  const check = (k: string, fn: (v: string) => unknown) => {
    if (p[k] === undefined || p[k] === '' || p[k] === '-') return;
    try {
      fn(String(p[k]));
    } catch (e) {
      errors[k] = (e as Error).message;
    }
  };
  check('iface', (v) => {
    if (!/^[a-z][a-z0-9_]{1,20}([:.]\d+)?$/i.test(v)) throw new Error(`invalid network interface name '${v}'`);
  });
  check('source', parseAddressList);
  check('dest', parseAddressList);
  check('sport', (v) => parsePortSpec(v, false));
  check('dport', (v) => parsePortSpec(v, true));
  check('proto', (v) => {
    if (protocolNumber(v) === undefined) throw new Error(`unknown protocol '${v}'`);
  });
  check('icmp-type', (v) => {
    if (icmpTypeNumber('icmp', v) === undefined && icmpTypeNumber('icmpv6', v) === undefined && v !== 'any') throw new Error(`invalid icmp-type value '${v}'`);
  });
  formatError(errors);
}

const API_TO_RULE: Record<string, keyof FwRule> = {
  type: 'type', action: 'action', macro: 'macro', iface: 'iface', source: 'source', dest: 'dest', proto: 'proto',
  enable: 'enable', log: 'log', sport: 'sport', dport: 'dport', comment: 'comment', 'icmp-type': 'icmpType',
};

function fwRulesMethods(kind: FwKind): ApiMethod[] {
  const base = kind === 'cluster' ? '/cluster/firewall/rules' : '/nodes/{node}/firewall/rules';
  const nodeParam: Record<string, Prop> = kind === 'host' ? { node: opt.node() } : {};
  const load = (node?: string): { fw: ParsedFirewall; cluster: ParsedFirewall } => {
    const cluster = loadClusterFw();
    return { fw: kind === 'cluster' ? cluster : loadHostFw(node!, cluster), cluster };
  };
  const node = (p: Params) => (kind === 'host' ? hostNode(p) : undefined);
  const listOut = (rules: FwRule[]) => {
    const digest = rulesDigest(rules);
    return rules.map((r, pos) => ({ ...ruleToApi(r), pos, digest }));
  };
  return [
    {
      name: 'get_rules',
      path: base,
      method: 'GET',
      description: 'List rules.',
      parameters: nodeParam,
      returns: { type: 'array', items: RULE_RETURN },
      handler: (p) => listOut(load(node(p)).fw.rules),
    },
    {
      name: 'get_rule',
      path: `${base}/{pos}`,
      method: 'GET',
      description: 'Get single rule data.',
      parameters: { ...nodeParam, pos: { type: 'integer', minimum: 0 } },
      returns: RULE_RETURN,
      handler: (p) => {
        const list = listOut(load(node(p)).fw.rules);
        if (Number(p.pos) >= list.length) die(`no rule at position ${p.pos}`);
        return list[Number(p.pos)];
      },
    },
    {
      name: 'create_rule',
      path: base,
      method: 'POST',
      description: 'Create new rule.',
      parameters: { ...nodeParam, ...RULE_PARAMS, type: { ...RULE_PARAMS.type!, optional: false }, action: { ...RULE_PARAMS.action!, optional: false } },
      returns: { type: 'null' },
      handler: (p) => {
        const n = node(p);
        checkRuleFormats(p);
        lockFw(kind, n, () => {
          const { fw, cluster } = load(n);
          // copy_rule_data: '' and '-' mean "not set"
          const rule = { enable: 0 } as FwRule;
          for (const [k, field] of Object.entries(API_TO_RULE)) {
            const v = p[k];
            if (v === undefined || v === '' || v === '-') continue;
            (rule as unknown as Record<string, unknown>)[field] = field === 'enable' ? Number(v) : String(v);
          }
          // verify_rule without noerr: the first error is raised
          verifyRule(rule, kind, kind === 'cluster' ? { local: fw } : { cluster, local: fw });
          if (rule.errors) {
            const [k, e] = Object.entries(rule.errors)[0]!;
            paramExc({ [k]: e });
          }
          // stored disabled unless enable is given; pos is not used: a new rule goes first (unshift)
          if (p.enable === undefined) rule.enable = 0;
          fw.rules.unshift(rule);
          saveFw(kind, fw, n);
        });
        return null;
      },
    },
    {
      name: 'delete_rule',
      path: `${base}/{pos}`,
      method: 'DELETE',
      description: 'Delete rule.',
      parameters: { ...nodeParam, pos: { type: 'integer', minimum: 0 }, digest: DIGEST },
      returns: { type: 'null' },
      handler: (p) => {
        const n = node(p);
        lockFw(kind, n, () => {
          const { fw } = load(n);
          assertIfModified(rulesDigest(fw.rules), p.digest);
          if (Number(p.pos) >= fw.rules.length) die(`no rule at position ${p.pos}`);
          fw.rules.splice(Number(p.pos), 1);
          saveFw(kind, fw, n);
        });
        return null;
      },
    },
  ];
}

function meminfo(): { total: number; used: number } {
  return { total: totalmem(), used: totalmem() - freemem() };
}

const system: ApiMethod[] = [
  {
    name: 'version',
    path: '/version',
    method: 'GET',
    description: 'API version details, including some parts of the global datacenter config.',
    parameters: {},
    returns: {
      type: 'object',
      properties: { version: { type: 'string' }, release: { type: 'string' }, repoid: { type: 'string' }, console: { type: 'string', optional: true } },
    },
    handler: () => ({ ...PVE_VERSION }),
  },
  {
    name: 'index',
    path: '/nodes',
    method: 'GET',
    description: 'Cluster node index.',
    parameters: {},
    returns: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          node: { type: 'string' },
          status: { type: 'string', enum: ['unknown', 'online', 'offline'] },
          cpu: { type: 'number', optional: true, renderer: 'fraction_as_percentage' },
          maxcpu: { type: 'integer', optional: true },
          mem: { type: 'integer', optional: true, renderer: 'bytes' },
          maxmem: { type: 'integer', optional: true, renderer: 'bytes' },
          level: { type: 'string', optional: true },
          uptime: { type: 'integer', optional: true, renderer: 'duration' },
          ssl_fingerprint: { type: 'string', optional: true },
        },
      },
    },
    handler: () => {
      const m = meminfo();
      let fingerprint: string | undefined;
      try {
        const pem = readFileSync(`/etc/pve/nodes/${nodename()}/pve-ssl.pem`, 'utf8');
        const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
        fingerprint = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
      } catch {
        /* no certificate */
      }
      return [
        {
          node: nodename(),
          status: 'online',
          id: `node/${nodename()}`,
          type: 'node',
          level: '',
          cpu: 0.01,
          maxcpu: cpus().length,
          mem: m.used,
          maxmem: m.total,
          uptime: Math.floor(uptime()),
          ...(fingerprint ? { ssl_fingerprint: fingerprint } : {}),
        },
      ];
    },
  },
  ...fwOptionsMethods('cluster'),
  ...fwOptionsMethods('host'),
  ...ipsetMethods,
  ...fwRulesMethods('cluster'),
  ...fwRulesMethods('host'),
];

// ---------------------------------------------------------------------------
// TFA (pve-access-control API2/TFA.pm over proxmox-tfa, and User.pm unlock_tfa).
// As root@pam (pvesh/pveum): reauth_user_for_user_modification asks no password.

const TFA_TYPE: Prop = { type: 'string', enum: ['totp', 'u2f', 'webauthn', 'recovery', 'yubico'], description: 'TFA Entry Type.' };
const TFA_ID: Prop = { type: 'string', description: 'A TFA entry id.' };
const TFA_PASSWORD: Prop = { type: 'string', optional: true, minLength: 5, maxLength: 64, description: "The current password of the user performing the change." };
const TFA_INFO_PROPS: Record<string, Prop> = {
  id: { type: 'string', description: 'The id used to reference this entry.' },
  description: { type: 'string', description: 'User chosen description for this entry.' },
  created: { type: 'integer', description: 'Creation time of this entry as unix epoch.' },
  enable: { type: 'boolean', optional: true, default: 1, description: 'Whether this TFA entry is currently enabled.' },
};
const TYPED_TFA_ENTRY: Prop = { type: 'object', description: 'TFA Entry.', properties: { type: TFA_TYPE, ...TFA_INFO_PROPS } };

function tfaUserExists(userid: string): void {
  checkUserExist(readUserCfg(), userid);
}

const tfa: ApiMethod[] = [
  {
    name: 'list_tfa',
    path: '/access/tfa',
    method: 'GET',
    description: 'List TFA configurations of users.',
    parameters: {},
    returns: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          userid: { type: 'string' },
          entries: { type: 'array', items: TYPED_TFA_ENTRY },
          'totp-locked': { type: 'boolean', optional: true },
          'tfa-locked-until': { type: 'integer', optional: true },
        },
      },
    },
    handler: () => listTfa(readTfaCfg(), nowSecs()),
  },
  {
    name: 'list_user_tfa',
    path: '/access/tfa/{userid}',
    method: 'GET',
    description: 'List TFA configurations of users.',
    parameters: { userid: opt.userid() },
    returns: { type: 'array', items: TYPED_TFA_ENTRY },
    handler: (p) => listUserTfa(readTfaCfg(), String(p.userid)),
  },
  {
    name: 'get_tfa_entry',
    path: '/access/tfa/{userid}/{id}',
    method: 'GET',
    description: 'Fetch a requested TFA entry if present.',
    parameters: { userid: opt.userid(), id: TFA_ID },
    returns: TYPED_TFA_ENTRY,
    handler: (p) => getTfaEntry(readTfaCfg(), String(p.userid), String(p.id)) ?? die('no such tfa entry'),
  },
  {
    name: 'add_tfa_entry',
    path: '/access/tfa/{userid}',
    method: 'POST',
    description: 'Add a TFA entry for a user.',
    parameters: {
      userid: opt.userid(),
      type: TFA_TYPE,
      description: { type: 'string', optional: true, maxLength: 255, description: 'A description to distinguish multiple entries from one another' },
      totp: { type: 'string', optional: true, description: 'A totp URI.' },
      value: { type: 'string', optional: true, description: 'The current value for the provided totp URI, or a Webauthn/U2F challenge response' },
      challenge: { type: 'string', optional: true, description: 'When responding to a u2f challenge: the original challenge string' },
      password: TFA_PASSWORD,
    },
    returns: {
      type: 'object',
      properties: {
        id: { type: 'string', description: 'The id of a newly added TFA entry.' },
        challenge: { type: 'string', optional: true },
        recovery: { type: 'array', optional: true, items: { type: 'string', description: 'A recovery entry.' } },
      },
    },
    handler: (p) => {
      const userid = String(p.userid);
      tfaUserExists(userid);
      return lockTfaConfig(() => {
        const cfg = readTfaCfg();
        setUserTfaEnabled(userid, true); // before the entry is added, as TFA.pm does
        const res = tfaDie(() =>
          addTfaEntry(cfg, userid, { type: String(p.type), description: str(p.description), totp: str(p.totp), value: str(p.value), challenge: str(p.challenge) }, Date.now()),
        );
        writeTfaCfgFile(cfg);
        return res;
      });
    },
  },
  {
    name: 'delete_tfa',
    path: '/access/tfa/{userid}/{id}',
    method: 'DELETE',
    description: 'Delete a TFA entry by ID.',
    parameters: { userid: opt.userid(), id: TFA_ID, password: TFA_PASSWORD },
    returns: { type: 'null' },
    handler: (p) => {
      const userid = String(p.userid);
      tfaUserExists(userid);
      const left = lockTfaConfig(() => {
        const cfg = readTfaCfg();
        const l = tfaDie(() => deleteTfaEntry(cfg, userid, String(p.id)));
        writeTfaCfgFile(cfg);
        return l;
      });
      if (!left) setUserTfaEnabled(userid, false);
      return null;
    },
  },
  {
    name: 'unlock_tfa',
    path: '/access/users/{userid}/unlock-tfa',
    method: 'PUT',
    description: "Unlock a user's TFA authentication.",
    parameters: { userid: opt.userid() },
    returns: { type: 'boolean' },
    handler: (p) => {
      const userid = String(p.userid);
      return lockTfaConfig(() => {
        const cfg = readTfaCfg();
        const counts = readCounts(userid);
        const was = tfaDie(() => unlockTfa(cfg, counts, userid, nowSecs()));
        writeCounts(userid, counts);
        if (was) writeTfaCfgFile(cfg);
        return was ? 1 : 0;
      });
    },
  },
];

export const API: ApiMethod[] = [...users, ...groups, ...roles, ...acl, ...access, ...pools, ...system, ...tfa, ...guestMethods, resourcesMethod, ...aptRepositoryMethods];

/** directory-like API paths: what `pvesh get` / `pvesh ls` list there */
export const API_DIRS: Record<string, string[]> = {
  '/': ['access', 'cluster', 'nodes', 'pools', 'storage', 'version'],
  '/access': ['acl', 'domains', 'groups', 'password', 'permissions', 'roles', 'tfa', 'users'],
  '/cluster': ['firewall', 'resources'],
  '/cluster/firewall': ['ipset', 'options', 'rules'],
  '/nodes/{node}': ['firewall', 'qemu', 'version'],
  '/nodes/{node}/qemu/{vmid}': ['config', 'status', 'vncproxy'],
  '/nodes/{node}/qemu/{vmid}/status': ['current', 'reboot', 'shutdown', 'start', 'stop'],
  '/nodes/{node}/firewall': ['options', 'rules'],
};

/** PVE::API2->find_handler: match a concrete path against the templates */
export function findHandler(method: HttpMethod, path: string): { info: ApiMethod; uriParams: Record<string, string> } | undefined {
  const clean = `/${path.split('/').filter(Boolean).join('/')}`;
  const parts = clean.split('/').filter(Boolean);
  for (const info of API) {
    if (info.method !== method) continue;
    const tparts = info.path.split('/').filter(Boolean);
    if (tparts.length !== parts.length) continue;
    const uriParams: Record<string, string> = {};
    let ok = true;
    tparts.forEach((t, i) => {
      const m = /^\{(.+)\}$/.exec(t);
      if (m) uriParams[m[1]!] = decodeURIComponent(parts[i]!);
      else if (t !== parts[i]) ok = false;
    });
    if (ok) return { info, uriParams };
  }
  return undefined;
}

export function findDir(path: string): { template: string; children: string[] } | undefined {
  const clean = `/${path.split('/').filter(Boolean).join('/')}`;
  for (const [template, children] of Object.entries(API_DIRS)) {
    const re = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (re.test(clean)) return { template, children };
  }
  return undefined;
}

