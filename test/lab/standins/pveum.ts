/**
 * pveum stand-in: pve-access-control's PVE/CLI/pveum.pm command tree over the
 * lab's API handlers (lib/api.ts), with Proxmox's aliases (useradd, aclmod, ...).
 */
import { msg } from '../../../src/pve/messages.ts';
import { API, type ApiMethod, type HttpMethod } from './lib/api.ts';
import { runCli, type Command, type CmdTree } from './lib/cli.ts';
import { formatApiResult, type FormatOptions } from './lib/format.ts';
import { opt, type Prop } from './lib/schema.ts';
import { deleteTfaEntry, listTfa, listUserTfa, removeTfaUser, type TfaUserListing, type TypedTfaInfo } from '../../../src/pve/tfa-cfg.ts';
import { lockTfaConfig, readTfaCfg, setUserTfaEnabled, tfaDie, writeTfaCfgFile } from './lib/tfa-store.ts';

function method(path: string, m: HttpMethod): ApiMethod {
  const found = API.find((x) => x.path === path && x.method === m);
  if (!found) throw new Error(`internal error: no ${m} ${path}`);
  return found;
}

const cmd = (path: string, m: HttpMethod, args: string[], extra: Partial<Command> = {}): Command => ({ method: method(path, m), args, ...extra });
const list = (path: string, args: string[] = []): Command => cmd(path, 'GET', args, { output: true });

/**
 * $print_perm_result: in text mode a table of 'ACL path' and 'Permissions'
 * (one privilege per line, ' (*)' after the propagating ones) and a note;
 * the other formats print the API result as it is.
 */
function printPermResult(data: unknown, method: ApiMethod, fmt: FormatOptions): string {
  const format = fmt['output-format'];
  if (format !== undefined && format !== 'text') return formatApiResult(data, method.returns, fmt);
  const perms = (data ?? {}) as Record<string, Record<string, number>>;
  const tableSchema: Prop = {
    type: 'array',
    items: {
      type: 'object',
      properties: { path: { type: 'string', title: 'ACL path' }, permissions: { type: 'string', title: 'Permissions' } },
    },
  };
  const rows = Object.keys(perms)
    .sort()
    .map((path) => {
      const curr = perms[path]!;
      const value = Object.keys(curr)
        .sort()
        .map((priv) => (curr[priv] ? `${priv} (*)` : priv))
        .join('\n');
      return { path, permissions: value };
    });
  return `${formatApiResult(rows, tableSchema, fmt)}${msg.permsPropagateNote()}\n`;
}

const permissionsApi = method('/access/permissions', 'GET');

/** pveum.pm's own 'token_permissions': joins userid and tokenid, then calls GET /access/permissions */
const tokenPermissions: ApiMethod = {
  name: 'token_permissions',
  path: 'token_permissions',
  method: 'GET',
  description: 'Retrieve effective permissions of given token.',
  parameters: {
    userid: opt.userid(),
    tokenid: opt.tokenSubid(),
    path: { type: 'string', description: 'Only dump this specific path, not the whole tree.', optional: true },
  },
  returns: { type: 'object', description: 'Hash of structure "path" => "privilege" => "propagate boolean".' },
  handler: (p) => permissionsApi.handler({ userid: `${p.userid}!${p.tokenid}`, ...(p.path !== undefined ? { path: p.path } : {}) }),
};

/** pveum.pm's own 'delete_tfa': one entry (--id), or all of the user's TFA; keys in user.cfg cleared when none is left */
const deleteTfa: ApiMethod = {
  name: 'delete_tfa',
  path: 'delete_tfa',
  method: 'PUT',
  description: 'Delete TFA entries from a user.',
  parameters: {
    userid: opt.userid(),
    id: { type: 'string', optional: true, description: 'The TFA ID, if none provided, all TFA entries will be deleted.' },
  },
  returns: { type: 'null' },
  handler: (p) => {
    const userid = String(p.userid);
    lockTfaConfig(() => {
      const cfg = readTfaCfg();
      let update: boolean;
      if (p.id !== undefined) update = !tfaDie(() => deleteTfaEntry(cfg, userid, String(p.id)));
      else {
        removeTfaUser(cfg, userid);
        update = true;
      }
      if (update) setUserTfaEnabled(userid, false);
      writeTfaCfgFile(cfg);
    });
    return null;
  },
};

/** pveum.pm's own 'list_tfa': prints "TYPE: ID" and the description below it, per user when no userid is given */
const listTfaCmd: ApiMethod = {
  name: 'list_tfa',
  path: 'list_tfa',
  method: 'GET',
  description: 'List TFA entries.',
  parameters: { userid: { ...opt.userid(), optional: true } },
  returns: { type: 'null' },
  handler: (p) => {
    const cfg = readTfaCfg();
    return p.userid !== undefined ? listUserTfa(cfg, String(p.userid)) : listTfa(cfg, Math.floor(Date.now() / 1000));
  },
};

function formatTfaEntries(entries: TypedTfaInfo[], indent = ''): string {
  return entries.map((e) => `${indent}${`${e.type}:`.padEnd(9)} ${e.id}\n${indent}    ${e.description ?? ''}\n`).join('\n');
}

function printTfaList(data: unknown): string {
  if (Array.isArray(data) && (data.length === 0 || 'type' in (data[0] as object))) return formatTfaEntries(data as TypedTfaInfo[]);
  return (data as TfaUserListing[])
    .slice()
    .sort((a, b) => (a.userid < b.userid ? -1 : a.userid > b.userid ? 1 : 0))
    .map((u) => `${u.userid}:\n${formatTfaEntries(u.entries, '    ')}`)
    .join('\n');
}

export const PVEUM: CmdTree = {
  user: {
    add: cmd('/access/users', 'POST', ['userid']),
    modify: cmd('/access/users/{userid}', 'PUT', ['userid']),
    delete: cmd('/access/users/{userid}', 'DELETE', ['userid']),
    list: list('/access/users'),
    permissions: cmd('/access/permissions', 'GET', ['userid'], { output: true, print: printPermResult }),
    tfa: {
      delete: { method: deleteTfa, args: ['userid'] },
      list: { method: listTfaCmd, args: ['userid'], print: printTfaList },
      unlock: cmd('/access/users/{userid}/unlock-tfa', 'PUT', ['userid']),
    },
    token: {
      add: cmd('/access/users/{userid}/token/{tokenid}', 'POST', ['userid', 'tokenid'], { output: true }),
      modify: cmd('/access/users/{userid}/token/{tokenid}', 'PUT', ['userid', 'tokenid'], { output: true }),
      delete: cmd('/access/users/{userid}/token/{tokenid}', 'DELETE', ['userid', 'tokenid'], { output: true }),
      remove: { alias: 'delete' },
      list: list('/access/users/{userid}/token', ['userid']),
      permissions: { method: tokenPermissions, args: ['userid', 'tokenid'], output: true, print: printPermResult },
    },
  },
  group: {
    add: cmd('/access/groups', 'POST', ['groupid']),
    modify: cmd('/access/groups/{groupid}', 'PUT', ['groupid']),
    delete: cmd('/access/groups/{groupid}', 'DELETE', ['groupid']),
    list: list('/access/groups'),
  },
  role: {
    add: cmd('/access/roles', 'POST', ['roleid']),
    modify: cmd('/access/roles/{roleid}', 'PUT', ['roleid']),
    delete: cmd('/access/roles/{roleid}', 'DELETE', ['roleid']),
    list: list('/access/roles'),
  },
  acl: {
    modify: cmd('/access/acl', 'PUT', ['path'], { fixed: { delete: '0' } }),
    delete: cmd('/access/acl', 'PUT', ['path'], { fixed: { delete: '1' } }),
    list: list('/access/acl'),
  },
  realm: {
    list: list('/access/domains'),
  },
  pool: {
    add: cmd('/pools', 'POST', ['poolid']),
    modify: cmd('/pools', 'PUT', ['poolid']),
    delete: cmd('/pools', 'DELETE', ['poolid']),
    list: list('/pools'),
  },
  passwd: cmd('/access/password', 'PUT', ['userid'], { interactive: ['password'] }),

  useradd: { alias: 'user add' },
  usermod: { alias: 'user modify' },
  userdel: { alias: 'user delete' },
  groupadd: { alias: 'group add' },
  groupmod: { alias: 'group modify' },
  groupdel: { alias: 'group delete' },
  roleadd: { alias: 'role add' },
  rolemod: { alias: 'role modify' },
  roledel: { alias: 'role delete' },
  aclmod: { alias: 'acl modify' },
  acldel: { alias: 'acl delete' },
};

runCli('pveum', PVEUM, process.argv.slice(2));
