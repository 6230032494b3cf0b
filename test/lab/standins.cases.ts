/**
 * Table of pveum / pvesh / pveversion / pvecm / pve-firewall invocations and
 * what Proxmox VE prints for them, run in order on a fresh lab node by
 * 20-standins.test.ts. Rows marked `seed` are commands copied verbatim from
 * four published Proxmox hardening guides (numbered 000 to 003: a blog post
 * on securing the hypervisor first, a post-install baseline, an RBAC best
 * practices guide, a zero-trust guide with a backup role); Proxmox rejects
 * some of them, and so must the stand-ins.
 *
 * stdout/stderr: a string is compared exactly, a RegExp matched; omitted
 * means "empty". `json` compares parsed JSON (order-insensitive for arrays of
 * ACL entries when `jsonSet` is set).
 */

import { BUILTIN_ROLES, PRIVILEGES } from '../../src/pve/privileges.ts';

export interface Case {
  argv: string[];
  input?: string;
  env?: Record<string, string>;
  exit: number;
  stdout?: string | RegExp;
  stderr?: string | RegExp;
  json?: unknown;
  jsonSet?: boolean;
  seed?: string;
  note?: string;
}

const usage = (u: string) => `${u}\n`;
const param400 = (errors: string[], u: string) => `400 Parameter verification failed.\n${errors.join('\n')}\n${usage(u)}`;
const TOKEN_ADD = 'pveum user token add <userid> <tokenid> [OPTIONS] [FORMAT_OPTIONS]';
const USER_PERMS = 'pveum user permissions [<userid>] [OPTIONS] [FORMAT_OPTIONS]';
const TOKEN_PERMS = 'pveum user token permissions <userid> <tokenid> [OPTIONS] [FORMAT_OPTIONS]';

/** { priv: flag } for every privilege of a list, as GET /access/permissions returns it */
const privs = (list: readonly string[], flag: 0 | 1) => Object.fromEntries(list.map((p) => [p, flag]));
const PVE9 = BUILTIN_ROLES[9];

/**
 * pveum's permission table (CLI/pveum.pm $print_perm_result): 'ACL path' and
 * 'Permissions', one privilege per line, ' (*)' when it propagates, then a note.
 */
function permTable(rows: [string, string[]][], utf8 = true): string {
  const cells = rows.map(([path, lines]) => [path, lines.length ? lines : ['']] as const);
  const w1 = Math.max('ACL path'.length, ...cells.map(([p]) => p.length));
  const w2 = Math.max('Permissions'.length, ...cells.flatMap(([, l]) => l.map((x) => x.length)));
  const [v, h, hh] = utf8 ? ['│', '─', '═'] : ['|', '-', '='];
  const rule = (l: string, m: string, r: string, f: string) => `${l}${f.repeat(w1 + 2)}${m}${f.repeat(w2 + 2)}${r}\n`;
  const line = (a: string, b: string) => `${v} ${a.padEnd(w1)} ${v} ${b.padEnd(w2)} ${v}\n`;
  let out = utf8 ? rule('┌', '┬', '┐', h) : rule('+', '+', '+', h);
  out += line('ACL path', 'Permissions');
  out += utf8 ? rule('╞', '╪', '╡', hh) : rule('+', '+', '+', hh);
  cells.forEach(([path, lines], i) => {
    if (i > 0) out += utf8 ? rule('├', '┼', '┤', h) : rule('+', '+', '+', h);
    lines.forEach((l, k) => (out += line(k === 0 ? path : '', l)));
  });
  out += utf8 ? rule('└', '┴', '┘', h) : rule('+', '+', '+', h);
  return `${out}Permissions marked with '(*)' have the 'propagate' flag set.\n`;
}
const star = (list: readonly string[]) => list.map((p) => `${p} (*)`);

export const CASES: Case[] = [
  // --- guide 000: a named administrator ---------------------------------------------
  { seed: '000', argv: ['pveum', 'user', 'add', 'labadmin@pam'], exit: 0 },
  { seed: '000', argv: ['pveum', 'aclmod', '/', '-user', 'labadmin@pam', '-role', 'Administrator'], exit: 0 },
  // --- guide 001 ---------------------------------------------------------------------
  { seed: '001', argv: ['pveum', 'user', 'add', 'admin@pam'], exit: 0 },
  { seed: '001', argv: ['pveum', 'acl', 'modify', '/', '--user', 'admin@pam', '--role', 'Administrator'], exit: 0 },
  // --- guide 002: custom roles, a service account, a token ----------------------------
  { seed: '002', argv: ['pveum', 'roleadd', 'VMControl', '-privs', 'VM.PowerMgmt'], exit: 0 },
  {
    seed: '002',
    note: 'the guide assigns the role before creating the user',
    argv: ['pveum', 'aclmod', '/vms', '-user', 'svc-pve-automation@pve', '-role', 'VMControl'],
    exit: 255,
    stderr: "ACL update failed: user 'svc-pve-automation@pve' does not exist\n",
  },
  { seed: '002', argv: ['pveum', 'aclmod', '/', '-user', 'readonly-monitor@pve', '-role', 'PVEAuditor'], exit: 255, stderr: "ACL update failed: user 'readonly-monitor@pve' does not exist\n" },
  { seed: '002', argv: ['pveum', 'user', 'add', 'svc-pve-automation@pve'], exit: 0 },
  { seed: '002', note: 'reads the password lines from stdin when it is not a TTY', argv: ['pveum', 'passwd', 'svc-pve-automation@pve'], input: 'Automation-Pass-1\nAutomation-Pass-1\n', exit: 0 },
  { seed: '002', argv: ['pveum', 'aclmod', '/vms', '-user', 'svc-pve-automation@pve', '-role', 'VMControl'], exit: 0 },
  { seed: '002', argv: ['pveum', 'roleadd', 'AutomationRole', '-privs', 'VM.PowerMgmt VM.Config.Network Datastore.AllocateSpace'], exit: 0 },
  { seed: '002', argv: ['pveum', 'aclmod', '/vms', '-user', 'svc-pve-automation@pve', '-role', 'AutomationRole'], exit: 0 },
  {
    seed: '002',
    note: '--expire takes seconds since the epoch, not a date',
    argv: ['pveum', 'user', 'token', 'add', 'svc-pve-automation@pve', 'automation-token', '--expire', '2025-12-31', '--privsep', '1'],
    exit: 255,
    stderr: param400(["expire: type check ('integer') failed - got '2025-12-31'"], TOKEN_ADD),
  },
  {
    argv: ['pveum', 'user', 'token', 'add', 'svc-pve-automation@pve', 'automation-token', '--expire', '1798675200', '--privsep', '1', '--output-format', 'json'],
    exit: 0,
    stdout: /^\{"full-tokenid":"svc-pve-automation@pve!automation-token","info":\{"expire":1798675200,"privsep":1\},"value":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"\}\n$/,
  },
  // --- guide 003: backup role, group, user, token ---------------------------------------
  { seed: '003', argv: ['pveum', 'roleadd', 'BackupAdmin', '-privs', 'Datastore.AllocateSpace Datastore.Audit VM.Backup'], exit: 0 },
  { seed: '003', argv: ['pveum', 'groupadd', 'backup-team'], exit: 0 },
  { seed: '003', argv: ['pveum', 'aclmod', '/', '-group', 'backup-team', '-role', 'BackupAdmin'], exit: 0 },
  { seed: '003', argv: ['pveum', 'useradd', 'backup1@pve', '--password', 'Secure123'], exit: 0 },
  { seed: '003', argv: ['pveum', 'usermod', 'backup1@pve', '-group', 'backup-team'], exit: 0 },
  {
    seed: '003',
    note: "tokens take no privileges: Getopt::Long reads --privs as --privsep, whose value is no boolean",
    argv: ['pveum', 'user', 'token', 'add', 'root@pam', 'automation', '--privs', 'VM.PowerMgmt Datastore.Audit'],
    exit: 255,
    stderr: `400 unable to parse boolean option\n${usage(TOKEN_ADD)}`,
  },
  { seed: '003', argv: ['pvecm', 'updatecerts', '--force'], exit: 0, stdout: /merge authorized SSH keys\n$/ },
  // --- guide 001: the firewall options ----------------------------------------------------
  { seed: '001', argv: ['pvesh', 'set', '/cluster/firewall/options', '--enable', '1'], exit: 0 },
  { seed: '001', argv: ['pvesh', 'set', '/nodes/pve1/firewall/options', '--enable', '1'], exit: 0 },
  { seed: '001', argv: ['pvesh', 'set', '/cluster/firewall/options', '--policy_in', 'DROP'], exit: 0 },
  { seed: '001', argv: ['pveversion', '-v'], exit: 0, stdout: /^proxmox-ve: 9\.\d+\.\d+ \(running kernel: \S+\)\npve-manager: 9\.\d+\.\d+ \(running version: 9\.\d+\.\d+\/[0-9a-f]{16}\)\n/ },

  // --- error texts (pve-access-control's name checks) ---------------------------------------------
  { argv: ['pveum', 'user', 'add', 'alice@pve', '--comment', 'first user'], exit: 0 },
  { argv: ['pveum', 'user', 'add', 'alice@pve'], exit: 255, stderr: "create user failed: user 'alice@pve' already exists\n" },
  {
    argv: ['pveum', 'user', 'add', 'alice'],
    exit: 255,
    stderr: param400(["userid: invalid format - value 'alice' does not look like a valid user name\n"], 'pveum user add <userid> [OPTIONS]'),
  },
  { argv: ['pveum', 'user', 'add', 'a@'], exit: 255, stderr: param400(["userid: invalid format - user name 'a@' is too short\n"], 'pveum user add <userid> [OPTIONS]') },
  { argv: ['pveum', 'user', 'add', 'bob@pve', '--groups', 'nosuch'], exit: 255, stderr: "create user failed: no such group 'nosuch'\n" },
  { argv: ['pveum', 'user', 'modify', 'bob@pve', '--comment', 'x'], exit: 255, stderr: "update user failed: no such user ('bob@pve')\n" },
  {
    note: 'a password needs 8 characters (PVE 8.2+); -password is a unique abbreviation',
    argv: ['pveum', 'useradd', 'bob@pve', '-password', 'short'],
    exit: 255,
    stderr: param400(['password: value must be at least 8 characters long'], 'pveum user add <userid> [OPTIONS]'),
  },
  {
    argv: ['pveum', 'user', 'modify', 'labadmin@pam', '--append', '1'],
    exit: 255,
    stderr: param400(["groups: missing property - 'append' requires this property"], 'pveum user modify <userid> [OPTIONS]'),
  },
  { argv: ['pveum', 'role', 'add', 'VMControl'], exit: 255, stderr: "create role failed: role 'VMControl' already exists\n" },
  {
    argv: ['pveum', 'role', 'add', 'PVEfoo'],
    exit: 255,
    stderr: param400(["roleid: cannot use role ID starting with the (case-insensitive) 'PVE' namespace"], 'pveum role add <roleid> [OPTIONS]'),
  },
  { argv: ['pveum', 'role', 'add', 'X', '--privs', 'Foo.Bar'], exit: 255, stderr: param400(["privs: invalid format - invalid privilege 'Foo.Bar'\n"], 'pveum role add <roleid> [OPTIONS]') },
  { note: 'VM.Monitor is gone in PVE 9', argv: ['pveum', 'role', 'add', 'Old', '--privs', 'VM.Audit,VM.Monitor'], exit: 255, stderr: param400(["privs: invalid format - invalid privilege 'VM.Monitor'\n"], 'pveum role add <roleid> [OPTIONS]') },
  { argv: ['pveum', 'role', 'modify', 'PVEAdmin', '--privs', 'VM.Audit'], exit: 255, stderr: "auto-generated role 'PVEAdmin' cannot be modified\n" },
  { argv: ['pveum', 'role', 'delete', 'PVEAdmin'], exit: 255, stderr: "auto-generated role 'PVEAdmin' cannot be deleted\n" },
  { argv: ['pveum', 'group', 'add', 'backup-team'], exit: 255, stderr: "create group failed: group 'backup-team' already exists\n" },
  { argv: ['pveum', 'group', 'add', 'bad/group'], exit: 255, stderr: param400(["groupid: invalid format - group name 'bad/group' contains invalid characters\n"], 'pveum group add <groupid> [OPTIONS]') },
  { argv: ['pveum', 'pool', 'add', '1pool'], exit: 255, stderr: 'create pool failed: pool name must start with a letter\n' },
  { argv: ['pveum', 'pool', 'add', 'webpool', '--comment', 'Web servers'], exit: 0 },
  { argv: ['pveum', 'pool', 'add', 'webpool'], exit: 255, stderr: "create pool failed: pool 'webpool' already exists\n" },
  {
    argv: ['pveum', 'acl', 'modify', '/', '--roles', 'PVEAuditor'],
    exit: 255,
    stderr: param400(
      ["groups: either 'users', 'groups' or 'tokens' is required.", "tokens: either 'users', 'groups' or 'tokens' is required.", "users: either 'users', 'groups' or 'tokens' is required."],
      'pveum acl modify <path> --roles <string> [OPTIONS]',
    ),
  },
  { argv: ['pveum', 'acl', 'modify', '/bogus', '--users', 'alice@pve', '--roles', 'PVEAuditor'], exit: 255, stderr: param400(["path: invalid ACL path '/bogus'"], 'pveum acl modify <path> --roles <string> [OPTIONS]') },
  { argv: ['pveum', 'acl', 'modify', '/vms/99', '--users', 'alice@pve', '--roles', 'PVEAuditor'], exit: 255, stderr: param400(["path: invalid ACL path '/vms/99'"], 'pveum acl modify <path> --roles <string> [OPTIONS]') },
  { argv: ['pveum', 'acl', 'modify', '/vms', '--users', 'alice@pve', '--roles', 'NoSuchRole'], exit: 255, stderr: "ACL update failed: role 'NoSuchRole' does not exist\n" },
  { argv: ['pveum', 'acl', 'modify', '/vms', '--groups', 'nogroup', '--roles', 'PVEAuditor'], exit: 255, stderr: "ACL update failed: group 'nogroup' does not exist\n" },
  { argv: ['pveum', 'acl', 'modify', '/vms', '--tokens', 'alice@pve!nope', '--roles', 'PVEAuditor'], exit: 255, stderr: "ACL update failed: no such token 'nope' for user 'alice@pve'\n" },
  { argv: ['pveum', 'acl', 'modify', '/vms', '--roles', 'PVEAuditor', '--users', 'alice@pve', '--propagate', 'maybe'], exit: 255, stderr: `400 unable to parse boolean option\n${usage('pveum acl modify <path> --roles <string> [OPTIONS]')}` },
  { argv: ['pveum', 'acl', 'modify', '/vms', '--rol', 'PVEAuditor', '--users', 'alice@pve', '--frobnicate'], exit: 255, stderr: `Unknown option: frobnicate\n400 unable to parse option\n${usage('pveum acl modify <path> --roles <string> [OPTIONS]')}` },
  { argv: ['pveum', 'user', 'token', 'add', 'alice@pve', 'ci', '--privsep', '1', '--comment', 'CI pipeline'], exit: 0, stdout: /^┌─+┬─+┐\n│ key +│ value +│\n╞═+╪═+╡\n│ full-tokenid │ alice@pve!ci +│\n├─+┼─+┤\n│ info +│ \{"comment":"CI pipeline","privsep":1\} +│\n├─+┼─+┤\n│ value +│ [0-9a-f-]{36} +│\n└─+┴─+┘\n$/ },
  { argv: ['pveum', 'user', 'token', 'add', 'alice@pve', 'ci'], exit: 255, stderr: param400(['tokenid: Token already exists.'], TOKEN_ADD) },
  { argv: ['pveum', 'user', 'token', 'add', 'nobody@pve', 't1'], exit: 255, stderr: "no such user ('nobody@pve')\n" },
  { argv: ['pveum', 'user', 'token', 'list', 'alice@pve', '--output-format', 'json'], exit: 0, json: [{ tokenid: 'ci', comment: 'CI pipeline', expire: 0, privsep: 1 }] },
  { note: "'remove' is an alias of 'delete' (PVE 8.2+)", argv: ['pveum', 'user', 'token', 'remove', 'alice@pve', 'ci'], exit: 0 },
  { argv: ['pveum', 'user', 'token', 'list', 'alice@pve', '--output-format', 'json'], exit: 0, stdout: '[]\n' },
  { argv: ['pveum', 'user', 'token', 'delete', 'alice@pve', 'ci'], exit: 255, stderr: "no such token 'ci' for user 'alice@pve'\n" },
  { argv: ['pveum', 'passwd', 'alice@pve'], input: 'Alice-Pass-1\nAlice-Pass-2\n', exit: 255, stderr: 'passwords do not match\n' },
  { argv: ['pveum', 'passwd', 'alice@pve'], input: 'short\nshort\n', exit: 255, stderr: param400(['password: value must be at least 8 characters long'], 'pveum passwd <userid> [OPTIONS]') },
  {
    note: 'pam realm: the Linux user must exist (usermod); this one does not',
    argv: ['pveum', 'passwd', 'labadmin@pam'],
    input: 'Labadmin-Pass-1\nLabadmin-Pass-1\n',
    exit: 255,
    stderr: /^usermod: user 'labadmin' does not exist\nchange password failed: command 'usermod -p '\$5\$[^$]{8}\$[A-Za-z0-9./]{43}' labadmin' failed: exit code 6\n$/,
  },
  { argv: ['pveum', 'foo'], exit: 255, stderr: /^ERROR: unknown command 'pveum foo'\nUSAGE: pveum <COMMAND> \[ARGS\] \[OPTIONS\]\n/ },
  { argv: ['pveum', 'user'], exit: 255, stderr: /^ERROR: incomplete command 'pveum user'\nUSAGE: pveum <COMMAND> \[ARGS\] \[OPTIONS\]\n {7}pveum user add <userid> \[OPTIONS\]\n/ },
  { note: 'unique prefixes of subcommands', argv: ['pveum', 'us', 'l', '--output-format', 'json', '--enabled', '0'], exit: 0, stdout: '[]\n' },
  {
    argv: ['pveum', 'useradd', 'dave@pve', '-firstname', 'Dave', '-lastname', "O'Neil: ops", '-email', 'dave@example.com', '-comment', 'on call', '-groups', 'backup-team'],
    exit: 0,
  },
  { argv: ['pveum', 'useradd', 'eve@pve', '-email', 'not-an-email'], exit: 255, stderr: param400(['email: invalid format - value does not look like a valid email address\n'], 'pveum user add <userid> [OPTIONS]') },
  { argv: ['pveum', 'aclmod', '/vms/100', '-user', 'dave@pve', '-role', 'PVEVMUser', '-propagate', '0'], exit: 0 },
  { argv: ['pveum', 'acldel', '/', '-group', 'backup-team', '-role', 'BackupAdmin'], exit: 0 },
  { argv: ['pveum', 'aclmod', '/', '-group', 'backup-team', '-role', 'BackupAdmin'], exit: 0 },
  { argv: ['pveum', 'user', 'delete', 'alice@pve'], exit: 0 },
  { note: 'Proxmox deletes a user that does not exist without complaint', argv: ['pveum', 'userdel', 'alice@pve'], exit: 0 },

  // --- listings and output formats ----------------------------------------------------------
  {
    argv: ['pveum', 'user', 'list', '--output-format', 'json'],
    exit: 0,
    json: [
      { enable: 1, expire: 0, 'realm-type': 'pam', userid: 'admin@pam' },
      { enable: 1, expire: 0, 'realm-type': 'pve', userid: 'backup1@pve' },
      { comment: 'on call', email: 'dave@example.com', enable: 1, expire: 0, firstname: 'Dave', lastname: "O'Neil: ops", 'realm-type': 'pve', userid: 'dave@pve' },
      { enable: 1, expire: 0, 'realm-type': 'pam', userid: 'labadmin@pam' },
      { email: 'admin@example.com', enable: 1, expire: 0, 'realm-type': 'pam', userid: 'root@pam' },
      { enable: 1, expire: 0, 'realm-type': 'pve', userid: 'svc-pve-automation@pve' },
    ],
  },
  { argv: ['pveum', 'group', 'list', '--output-format', 'json'], exit: 0, stdout: '[{"groupid":"backup-team","users":"backup1@pve,dave@pve"}]\n' },
  {
    argv: ['pveum', 'acl', 'list', '--output-format', 'json'],
    exit: 0,
    jsonSet: true,
    json: [
      { path: '/', propagate: 1, roleid: 'Administrator', type: 'user', ugid: 'admin@pam' },
      { path: '/', propagate: 1, roleid: 'Administrator', type: 'user', ugid: 'labadmin@pam' },
      { path: '/', propagate: 1, roleid: 'BackupAdmin', type: 'group', ugid: 'backup-team' },
      { path: '/vms', propagate: 1, roleid: 'AutomationRole', type: 'user', ugid: 'svc-pve-automation@pve' },
      { path: '/vms', propagate: 1, roleid: 'VMControl', type: 'user', ugid: 'svc-pve-automation@pve' },
      { path: '/vms/100', propagate: 0, roleid: 'PVEVMUser', type: 'user', ugid: 'dave@pve' },
    ],
  },
  {
    argv: ['pveum', 'group', 'list'],
    env: { LANG: 'C' },
    exit: 0,
    stdout: '+-------------+---------+----------------------+\n| groupid     | comment | users                |\n+=============+=========+======================+\n| backup-team |         | backup1@pve,dave@pve |\n+-------------+---------+----------------------+\n',
  },
  {
    argv: ['pveum', 'group', 'list', '--noborder'],
    exit: 0,
    stdout: 'groupid     comment users\nbackup-team         backup1@pve,dave@pve\n',
  },
  { argv: ['pveum', 'role', 'list', '--output-format', 'json'], exit: 0, stdout: /\{"privs":"Datastore\.AllocateSpace,Datastore\.Audit,VM\.Backup","roleid":"BackupAdmin","special":0\}/ },
  { argv: ['pveum', 'role', 'list', '--output-format', 'json'], exit: 0, stdout: /\{"privs":"Pool\.Audit","roleid":"PVEPoolUser","special":1\}/ },
  { argv: ['pveum', 'pool', 'list', '--output-format', 'json'], exit: 0, stdout: '[{"comment":"Web servers","poolid":"webpool"}]\n' },
  { argv: ['pveum', 'realm', 'list', '--output-format', 'json'], exit: 0, json: [{ comment: 'Linux PAM standard authentication', realm: 'pam', type: 'pam' }, { comment: 'Proxmox VE authentication server', realm: 'pve', type: 'pve' }] },

  // --- pvesh ------------------------------------------------------------------------------------
  { argv: ['pvesh', 'get', '/version', '--output-format', 'json'], exit: 0, stdout: /^\{"release":"9\.\d+","repoid":"[0-9a-f]{16}","version":"9\.\d+\.\d+"\}\n$/ },
  { argv: ['pvesh', 'get', '/access/users/labadmin@pam', '--output-format', 'json'], exit: 0, json: { enable: 1, expire: 0, groups: [], tokens: {} } },
  { argv: ['pvesh', 'create', '/access/users', '--userid', 'carol@pve', '--password', 'Carol-Pass-1', '--comment', 'via pvesh'], exit: 0 },
  { argv: ['pvesh', 'set', '/access/acl', '--path', '/storage', '--roles', 'PVEDatastoreUser', '--users', 'carol@pve'], exit: 0 },
  { argv: ['pvesh', 'get', '/access/users/nobody@pve'], exit: 255, stderr: "no such user ('nobody@pve')\n" },
  { argv: ['pvesh', 'create', '/access/users/carol@pve/token/monitoring', '--privsep', '1', '--output-format', 'json'], exit: 0, stdout: /^\{"full-tokenid":"carol@pve!monitoring","info":\{"privsep":1\},"value":"[0-9a-f-]{36}"\}\n$/ },
  { argv: ['pvesh', 'get', '/nodes', '--output-format', 'json'], exit: 0, stdout: /^\[\{.*"node":"pve1".*"status":"online".*\}\]\n$/ },
  { argv: ['pvesh', 'get', '/nope'], exit: 255, stderr: "no 'get' handler for '/nope'\n" },
  { argv: ['pvesh', 'get', '/cluster/firewall/options', '--output-format', 'json'], exit: 0, stdout: /^\{"digest":"[0-9a-f]{40}","enable":1,"policy_in":"DROP"\}\n$/ },
  { argv: ['pvesh', 'set', '/cluster/firewall/options', '--policy_in', 'ALLOW'], exit: 255, stderr: param400(["policy_in: value 'ALLOW' does not have a value in the enumeration 'ACCEPT, REJECT, DROP'"], 'pvesh set <api_path> [OPTIONS] [FORMAT_OPTIONS]') },
  { argv: ['pvesh', 'get', '/nodes/pve1/firewall/options', '--output-format', 'json'], exit: 0, stdout: /^\{"digest":"[0-9a-f]{40}","enable":1\}\n$/ },

  // --- effective permissions (pveum user permissions, GET /access/permissions) ---
  { argv: ['pveum', 'user', 'permissions', 'admin@pam', '--path', '/'], exit: 0, stdout: permTable([['/', star(PRIVILEGES[9])]]) },
  { argv: ['pveum', 'user', 'permissions', 'admin@pam', '--path', '/', '--output-format', 'json'], exit: 0, json: { '/': privs(PRIVILEGES[9], 1) } },
  { note: 'without a userid: the caller, root@pam', argv: ['pveum', 'user', 'permissions', '--path', '/nodes', '--output-format', 'json'], exit: 0, json: { '/nodes': privs(PRIVILEGES[9], 1) } },
  {
    note: 'group role on /, inherited by /storage',
    argv: ['pveum', 'user', 'permissions', 'backup1@pve', '--path', '/storage'],
    env: { LANG: 'C' },
    exit: 0,
    stdout: permTable([['/storage', ['Datastore.AllocateSpace (*)', 'Datastore.Audit (*)', 'VM.Backup (*)']]], false),
  },
  {
    note: "dave's own non-propagating PVEVMUser on /vms/100 replaces his group's BackupAdmin from /",
    argv: ['pvesh', 'get', '/access/permissions', '--userid', 'dave@pve', '--path', '/vms/100', '--output-format', 'json'],
    exit: 0,
    json: { '/vms/100': privs(PVE9.PVEVMUser!, 0) },
  },
  { argv: ['pvesh', 'get', '/access/permissions', '--userid', 'dave@pve', '--path', '/vms/101', '--output-format', 'json'], exit: 0, json: { '/vms/101': privs(['Datastore.AllocateSpace', 'Datastore.Audit', 'VM.Backup'], 1) } },
  { note: 'a path without privileges is still listed', argv: ['pveum', 'user', 'permissions', 'nobody@pve', '--path', '/', '--output-format', 'json'], exit: 0, stdout: '{"/":{}}\n' },
  { argv: ['pveum', 'user', 'permissions', 'nobody@pve', '--path', '/'], exit: 0, stdout: permTable([['/', []]]) },
  { argv: ['pveum', 'user', 'permissions', 'not a user'], exit: 255, stderr: param400(['userid: value does not match the regex pattern'], USER_PERMS) },
  { argv: ['pveum', 'user', 'token', 'permissions', 'admin@pam'], exit: 255, stderr: `400 not enough arguments\n${usage(TOKEN_PERMS)}` },
  { argv: ['pveum', 'user', 'add', 'perm-ops@pve'], exit: 0 },
  { argv: ['pveum', 'acl', 'modify', '/vms', '--users', 'perm-ops@pve', '--roles', 'PVEAdmin'], exit: 0 },
  { note: 'PVEAdmin has no root-only privileges', argv: ['pveum', 'user', 'permissions', 'perm-ops@pve', '--path', '/vms/100', '--output-format', 'json'], exit: 0, json: { '/vms/100': privs(PVE9.PVEAdmin!, 1) } },
  { argv: ['pveum', 'user', 'permissions', 'perm-ops@pve', '--path', '/', '--output-format', 'json'], exit: 0, json: { '/': {} } },
  {
    note: 'without --path: the default paths, every ACL path and pool members, leaving out the empty ones',
    argv: ['pveum', 'user', 'permissions', 'perm-ops@pve', '--output-format', 'json'],
    exit: 0,
    json: { '/vms': privs(PVE9.PVEAdmin!, 1), '/vms/100': privs(PVE9.PVEAdmin!, 1) },
  },
  { argv: ['pveum', 'user', 'token', 'add', 'perm-ops@pve', 'sep', '--output-format', 'json'], exit: 0, stdout: /^\{"full-tokenid":"perm-ops@pve!sep","info":\{"privsep":1\},"value":"[0-9a-f-]{36}"\}\n$/ },
  { argv: ['pveum', 'user', 'token', 'add', 'perm-ops@pve', 'full', '--privsep', '0', '--output-format', 'json'], exit: 0, stdout: /^\{"full-tokenid":"perm-ops@pve!full","info":\{"privsep":0\},"value":"[0-9a-f-]{36}"\}\n$/ },
  { argv: ['pveum', 'acl', 'modify', '/vms/100', '--tokens', 'perm-ops@pve!sep', '--roles', 'PVEVMUser', '--propagate', '0'], exit: 0 },
  { argv: ['pveum', 'acl', 'modify', '/', '--tokens', 'perm-ops@pve!sep', '--roles', 'PVEAuditor'], exit: 0 },
  {
    note: 'privilege separation: the token role intersected with the user, propagate = token AND user',
    argv: ['pveum', 'user', 'token', 'permissions', 'perm-ops@pve', 'sep', '--path', '/vms/100'],
    exit: 0,
    stdout: permTable([['/vms/100', [...PVE9.PVEVMUser!]]]),
  },
  {
    note: 'the token has PVEAuditor on /, its user nothing: the intersection is empty',
    argv: ['pvesh', 'get', '/access/permissions', '--userid', 'perm-ops@pve!sep', '--path', '/nodes', '--output-format', 'json'],
    exit: 0,
    json: { '/nodes': {} },
  },
  {
    note: 'PVEAuditor from / is within PVEAdmin on /vms; on /vms/100 the token has only its own PVEVMUser',
    argv: ['pvesh', 'get', '/access/permissions', '--userid', 'perm-ops@pve!sep', '--output-format', 'json'],
    exit: 0,
    json: { '/vms': privs(PVE9.PVEAuditor!, 1), '/vms/100': privs(PVE9.PVEVMUser!, 0) },
  },
  { note: 'privsep=0: exactly the user, own ACL entries ignored', argv: ['pveum', 'user', 'token', 'permissions', 'perm-ops@pve', 'full', '--path', '/vms/100', '--output-format', 'json'], exit: 0, json: { '/vms/100': privs(PVE9.PVEAdmin!, 1) } },
  { argv: ['pveum', 'acl', 'modify', '/pool/webpool', '--users', 'perm-ops@pve', '--roles', 'PVEDatastoreUser'], exit: 0 },
  { argv: ['pveum', 'pool', 'modify', 'webpool', '--storage', 'local'], exit: 0 },
  { note: 'pool members get the pool roles, never propagating', argv: ['pveum', 'user', 'permissions', 'perm-ops@pve', '--path', '/storage/local', '--output-format', 'json'], exit: 0, json: { '/storage/local': privs(PVE9.PVEDatastoreUser!, 0) } },
  { argv: ['pveum', 'pool', 'modify', 'webpool', '--storage', 'local', '--delete', '1'], exit: 0 },
  { note: "Proxmox's remove_token leaves a token's ACL entries behind (the next read warns): drop them first", argv: ['pveum', 'acl', 'delete', '/vms/100', '--tokens', 'perm-ops@pve!sep', '--roles', 'PVEVMUser'], exit: 0 },
  { argv: ['pveum', 'acl', 'delete', '/', '--tokens', 'perm-ops@pve!sep', '--roles', 'PVEAuditor'], exit: 0 },
  { argv: ['pveum', 'user', 'token', 'delete', 'perm-ops@pve', 'sep'], exit: 0 },
  { argv: ['pveum', 'user', 'token', 'delete', 'perm-ops@pve', 'full'], exit: 0 },
  { note: 'deleting the user drops its ACL entries and those of its tokens', argv: ['pveum', 'user', 'delete', 'perm-ops@pve'], exit: 0 },

  // --- guests, pools and token rotation (qemu-server API2/Qemu.pm, pve-manager API2/Pool.pm and Cluster.pm, User.pm) ---
  { note: 'a VM is its config file (the lab runs no QEMU)', argv: ['sh', '-c', "printf 'name: web1\\nmemory: 1024\\ncores: 1\\n' > /etc/pve/nodes/pve1/qemu-server/100.conf"], exit: 0 },
  {
    argv: ['pvesh', 'get', '/nodes/pve1/qemu', '--output-format', 'json'],
    exit: 0,
    json: [{ vmid: 100, status: 'stopped', name: 'web1', cpus: 1, maxmem: 1073741824, disk: 0, maxdisk: 0, uptime: 0, cpu: 0, mem: 0, memhost: 0, netin: 0, netout: 0, diskread: 0, diskwrite: 0 }],
  },
  { note: 'check_type: cores a number, memory (a property string) a string', argv: ['pvesh', 'get', '/nodes/pve1/qemu/100/config', '--output-format', 'json'], exit: 0, stdout: /^\{"cores":1,"digest":"[0-9a-f]{40}","memory":"1024","name":"web1"\}\n$/ },
  { argv: ['pvesh', 'get', '/nodes/pve1/qemu/999/config'], exit: 255, stderr: "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist\n" },
  { argv: ['pvesh', 'get', '/nodes/pve1/qemu/999/status/current'], exit: 255, stderr: "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist\n" },
  { argv: ['pvesh', 'create', '/nodes/pve1/qemu/999/status/reboot'], exit: 255, stderr: "unable to find configuration file for VM 999 on node 'pve1'\n" },
  { argv: ['pvesh', 'create', '/nodes/pve1/qemu/100/status/reboot'], exit: 255, stderr: 'VM 100 not running\n' },
  { argv: ['pveum', 'pool', 'modify', 'webpool', '--vms', '100'], exit: 0 },
  { argv: ['pveum', 'pool', 'modify', 'webpool', '--vms', '100'], exit: 255, stderr: 'update pools failed: VM 100 is already a pool member\n' },
  { argv: ['pveum', 'pool', 'add', 'dbpool'], exit: 0 },
  { argv: ['pveum', 'pool', 'modify', 'dbpool', '--vms', '100'], exit: 255, stderr: "update pools failed: VM 100 belongs already to pool 'webpool' and 'allow-move' is not set\n" },
  { note: 'Pool.pm update_pool checks no guest: an unknown VMID is stored', argv: ['pveum', 'pool', 'modify', 'webpool', '--vms', '999'], exit: 0 },
  { argv: ['pveum', 'pool', 'modify', 'dbpool', '--vms', 'abc'], exit: 255, stderr: /^400 Parameter verification failed\.\nvms: / },
  {
    note: 'members: only guests the cluster knows (999 is left out), with extract_vm_stats',
    argv: ['pvesh', 'get', '/pools', '--poolid', 'webpool', '--output-format', 'json'],
    exit: 0,
    json: [
      {
        comment: 'Web servers',
        poolid: 'webpool',
        members: [
          { id: 'qemu/100', vmid: 100, node: 'pve1', type: 'qemu', status: 'stopped', uptime: 0, name: 'web1', template: 0, maxcpu: 1, cpu: 0, maxmem: 1073741824, mem: 0, maxdisk: 0, disk: 0, netin: 0, netout: 0, diskread: 0, diskwrite: 0, memhost: 0 },
        ],
      },
    ],
  },
  { argv: ['pvesh', 'get', '/pools', '--type', 'qemu'], exit: 255, stderr: param400(["poolid: missing property - 'type' requires this property"], 'pvesh get <api_path> [OPTIONS] [FORMAT_OPTIONS]') },
  { argv: ['pvesh', 'get', '/cluster/resources', '--type', 'vm', '--output-format', 'json'], exit: 0, stdout: /^\[\{"cpu":0,.*"id":"qemu\/100",.*"name":"web1",.*"pool":"webpool",.*"status":"stopped",.*"type":"qemu",.*"vmid":100\}\]\n$/ },
  { argv: ['pveum', 'pool', 'delete', 'webpool'], exit: 255, stderr: "delete pool failed: pool 'webpool' is not empty (contains VM 100)\n" },
  { argv: ['pveum', 'pool', 'modify', 'webpool', '--vms', '100,999', '--delete', '1'], exit: 0 },
  { argv: ['pveum', 'pool', 'modify', 'webpool', '--vms', '100', '--delete', '1'], exit: 255, stderr: 'update pools failed: VM 100 is not a pool member\n' },
  { argv: ['pveum', 'pool', 'delete', 'dbpool'], exit: 0 },
  { argv: ['rm', '/etc/pve/nodes/pve1/qemu-server/100.conf'], exit: 0 },
  { argv: ['pveum', 'user', 'add', 'tokrot@pve'], exit: 0 },
  { argv: ['pveum', 'user', 'token', 'add', 'tokrot@pve', 'ci', '--expire', '1798675200', '--comment', 'CI', '--output-format', 'json'], exit: 0, stdout: /^\{"full-tokenid":"tokrot@pve!ci","info":\{"comment":"CI","expire":1798675200,"privsep":1\},"value":"[0-9a-f-]{36}"\}\n$/ },
  { argv: ['pveum', 'acl', 'modify', '/vms', '--tokens', 'tokrot@pve!ci', '--roles', 'PVEAuditor'], exit: 0 },
  {
    note: "pve-access-control 9.1+: 'regenerate' returns the token info plus the new value and full-tokenid",
    argv: ['pveum', 'user', 'token', 'modify', 'tokrot@pve', 'ci', '--regenerate', '1', '--output-format', 'json'],
    exit: 0,
    stdout: /^\{"comment":"CI","expire":1798675200,"full-tokenid":"tokrot@pve!ci","privsep":1,"value":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"\}\n$/,
  },
  { argv: ['pveum', 'user', 'token', 'modify', 'tokrot@pve', 'ci', '--output-format', 'json'], exit: 0, stdout: '{"comment":"CI","expire":1798675200,"privsep":1}\n' },
  { note: 'the ACL entry stays', argv: ['pvesh', 'get', '/access/acl', '--output-format', 'json'], exit: 0, stdout: /\{"path":"\/vms","propagate":1,"roleid":"PVEAuditor","type":"token","ugid":"tokrot@pve!ci"\}/ },
  { argv: ['pveum', 'user', 'token', 'modify', 'tokrot@pve', 'ci', '--delete', 'expire'], exit: 255, stderr: /delete: unknown option 'expire'/ },
  { argv: ['pveum', 'user', 'token', 'modify', 'tokrot@pve', 'ci', '--delete', 'comment', '--output-format', 'json'], exit: 0, stdout: '{"expire":1798675200,"privsep":1}\n' },
  { argv: ['pveum', 'acl', 'delete', '/vms', '--tokens', 'tokrot@pve!ci', '--roles', 'PVEAuditor'], exit: 0 },
  { argv: ['pveum', 'user', 'token', 'delete', 'tokrot@pve', 'ci'], exit: 0 },
  { argv: ['pveum', 'user', 'delete', 'tokrot@pve'], exit: 0 },

  // --- the other tools ----------------------------------------------------------------------
  // pve-firewall (Service/pve_firewall.pm); guide 001 enabled the firewall above, with policy_in DROP
  { note: 'the lab returns once the daemon has applied', argv: ['pve-firewall', 'restart'], exit: 0 },
  { argv: ['pve-firewall', 'status'], exit: 0, stdout: 'Status: enabled/running\n' },
  {
    note: 'the ruleset the lab applies (nftables), then the verdict against the kernel',
    argv: ['pve-firewall', 'compile'],
    exit: 0,
    stdout: /^nftables ruleset:\n[\s\S]*\ntable inet proxmox-firewall \{\n[\s\S]*\tset v4-dc\/management \{[^}]*elements = \{ 10\.77\.7\.0\/24 \}[\s\S]*\n\t\tdrop comment "policy_in DROP"\n\t\}\n\}\n\nno changes\n$/,
  },
  { argv: ['pve-firewall', 'localnet'], exit: 0, stdout: 'local hostname: pve1\nlocal IP address: 10.77.7.2\nnetwork auto detect: 10.77.7.0/24\nusing detected local_network: 10.77.7.0/24\n' },
  {
    argv: ['pve-firewall', 'simulate', '--source', '10.77.7.1', '--dport', '8006'],
    exit: 0,
    stdout: 'Test packet:\n  from    : outside\n  to      : host\n  proto   : tcp\n  source  : 10.77.7.1\n  dport   : 8006\nACTION: ACCEPT\n',
  },
  {
    argv: ['pve-firewall', 'simulate', '--source', '10.77.9.66', '--dport', '22'],
    exit: 0,
    stdout: 'Test packet:\n  from    : outside\n  to      : host\n  proto   : tcp\n  source  : 10.77.9.66\n  dport   : 22\nACTION: DROP\n',
  },
  {
    argv: ['pve-firewall', 'simulate', '--source', '10.77.7.1', '--protocol', 'udp', '--dport', '53'],
    exit: 0,
    stdout: 'Test packet:\n  from    : outside\n  to      : host\n  proto   : udp\n  source  : 10.77.7.1\n  dport   : 53\nACTION: DROP\n',
  },
  { argv: ['pve-firewall', 'simulate', '--protocol', 'icmp'], exit: 255, stderr: param400(['protocol: value does not match the regex pattern'], 'pve-firewall simulate  [OPTIONS]') },
  {
    argv: ['pve-firewall', 'simulate', '--source', '10.77.9.300'],
    exit: 255,
    stderr: param400(['source: invalid format - value does not look like a valid IPv4 address\n'], 'pve-firewall simulate  [OPTIONS]'),
  },
  { note: 'there is no reload', argv: ['pve-firewall', 'reload'], exit: 255, stderr: /^ERROR: unknown command 'pve-firewall reload'\nUSAGE: pve-firewall <COMMAND> \[ARGS\] \[OPTIONS\]\n/ },
  { argv: ['pvecm', 'status'], exit: 255, stderr: "Error: Corosync config '/etc/pve/corosync.conf' does not exist - is this node part of a cluster?\n" },
  { argv: ['pveversion'], exit: 0, stdout: /^pve-manager\/9\.\d+\.\d+\/[0-9a-f]{16} \(running kernel: \S+\)\n$/ },
];
