/**
 * The permission evaluator against Proxmox's own permission tests: every row
 * of test/fixtures/conformance/pve-access-control/perm-checks.tsv (the checks
 * of perm-test1.pl ... perm-test8.pl on PVE 8 and PVE 9), then small inline
 * configs for the rules those tests leave implicit: ACL propagation, role
 * resolution along the path, pool inheritance, token privilege separation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseUserCfg, type UserCfg } from '../../src/pve/user-cfg.ts';
import { BUILTIN_ROLES, PRIVILEGES, type PveMajor } from '../../src/pve/privileges.ts';
import {
  accessMatrix,
  defaultMatrixPaths,
  effectivePermissionPaths,
  effectivePermissions,
  effectiveRoles,
  hasAnyPrivilege,
  hasPrivileges,
  permissions,
  privilegeMap,
  privObject,
  roleMap,
  roles,
} from '../../src/pve/permissions.ts';

const CONFORMANCE = new URL('../fixtures/conformance/pve-access-control/', import.meta.url);

// ---------------------------------------------------------------------------
// the conformance table

interface Row {
  line: number;
  branch: 'pve8' | 'pve9';
  script: string;
  fixture: string;
  kind: 'roles' | 'privs';
  id: string;
  path: string;
  expected: string;
}

const tsv = readFileSync(fileURLToPath(new URL('perm-checks.tsv', CONFORMANCE)), 'utf8');
const [header, ...lines] = tsv.split('\n').filter((l) => l !== '');
assert.equal(header, 'branch\ttest_script\tuser_cfg_fixture\tkind\tuserid_or_tokenid\tpath\texpected_sorted_csv');

const rows: Row[] = lines.map((l, i) => {
  const f = l.split('\t');
  assert.equal(f.length, 7, `perm-checks.tsv line ${i + 2}: ${JSON.stringify(l)}`);
  const [branch, script, fixture, kind, id, path, expected] = f as [string, string, string, string, string, string, string];
  assert.ok(branch === 'pve8' || branch === 'pve9', branch);
  assert.ok(kind === 'roles' || kind === 'privs', kind);
  return { line: i + 2, branch, script, fixture, kind, id, path, expected };
});

const fixtures = new Map<string, UserCfg>();
function fixture(branch: 'pve8' | 'pve9', upstreamPath: string): UserCfg {
  const name = upstreamPath.replace(/^.*\//, ''); // src/test/testN.cfg -> testN.cfg
  const key = `${branch}/${name}`;
  let cfg = fixtures.get(key);
  if (!cfg) {
    const raw = readFileSync(fileURLToPath(new URL(key, CONFORMANCE)), 'utf8');
    cfg = parseUserCfg(raw, { major: branch === 'pve8' ? 8 : 9 }).cfg;
    fixtures.set(key, cfg);
  }
  return cfg;
}

test('perm-checks.tsv has the 200 checks (100 per branch)', () => {
  assert.equal(rows.length, 200);
  assert.equal(rows.filter((r) => r.branch === 'pve8').length, 100);
  assert.equal(rows.filter((r) => r.branch === 'pve9').length, 100);
});

for (const r of rows) {
  const script = r.script.replace(/^.*\//, '');
  const name = `${r.branch} ${script} ${r.kind} ${r.id} ${JSON.stringify(r.path)} (tsv line ${r.line})`;
  test(name, () => {
    const cfg = fixture(r.branch, r.fixture);
    const major: PveMajor = r.branch === 'pve8' ? 8 : 9;
    const got = r.kind === 'roles' ? roles(cfg, r.id, r.path) : permissions(cfg, r.id, r.path, major);
    assert.equal(got.join(','), r.expected);
  });
}

// ---------------------------------------------------------------------------
// focused rules, small inline configs

const cfgOf = (text: string, major: PveMajor = 9): UserCfg => {
  const { cfg, warnings } = parseUserCfg(text, { major });
  assert.deepEqual(warnings, [], 'inline config parses cleanly');
  return cfg;
};
const rolesWithFlags = (m: Map<string, 0 | 1>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));

test('root@pam: Administrator role and every privilege of the branch, propagating', () => {
  const cfg = cfgOf('user:root@pam:1:0:::::\n');
  assert.deepEqual(roles(cfg, 'root@pam', '/anything'), ['Administrator']);
  assert.deepEqual(permissions(cfg, 'root@pam', '/vms/100', 9), [...PRIVILEGES[9]]);
  assert.deepEqual(permissions(cfg, 'root@pam', '/', 8), [...PRIVILEGES[8]]);
  assert.ok(permissions(cfg, 'root@pam', '/', 8).includes('VM.Monitor'));
  assert.ok(!permissions(cfg, 'root@pam', '/', 9).includes('VM.Monitor'));
  assert.ok([...privilegeMap(cfg, 'root@pam', '/', 9).values()].every((v) => v === 1));
});

test('empty path: no roles, no privileges; relative path skips the root entries', () => {
  const cfg = cfgOf('user:u@pve:1:\nacl:1:/:u@pve:PVEAuditor:\n');
  assert.deepEqual(roles(cfg, 'u@pve', ''), []);
  assert.deepEqual(permissions(cfg, 'u@pve', ''), []);
  assert.deepEqual(roles(cfg, 'u@pve', undefined), []);
  assert.deepEqual(roles(cfg, 'u@pve', 'vms'), [], "Perl split('/', 'vms') never visits the root node");
  assert.deepEqual(roles(cfg, 'u@pve', '/vms/'), ['PVEAuditor'], 'a trailing slash is dropped by split');
});

test('propagate=0 applies on its own path only and neither grants nor cancels below it', () => {
  const cfg = cfgOf(['user:u@pve:1:', 'acl:1:/:u@pve:PVEAuditor:', 'acl:0:/vms:u@pve:PVEVMAdmin:'].join('\n'));
  assert.deepEqual(rolesWithFlags(roleMap(cfg, 'u@pve', '/vms')), { PVEVMAdmin: 0 });
  assert.deepEqual(rolesWithFlags(roleMap(cfg, 'u@pve', '/vms/100')), { PVEAuditor: 1 }, 'inherited from / through the non-propagating level');
  // the privileges carry the flag of the role granting them
  const p = privilegeMap(cfg, 'u@pve', '/vms', 9);
  assert.equal(p.get('VM.Allocate'), 0);
  assert.equal(privilegeMap(cfg, 'u@pve', '/', 9).get('Sys.Audit'), 1);
});

test('a user entry that does not apply at a level lets the group entries of that level apply', () => {
  const cfg = cfgOf(
    ['user:u@pve:1:', 'group:g:u@pve:', 'acl:0:/vms:u@pve:PVEVMAdmin:', 'acl:1:/vms:@g:PVEAuditor:'].join('\n'),
  );
  assert.deepEqual(roles(cfg, 'u@pve', '/vms'), ['PVEVMAdmin'], 'on the path itself the user entry wins');
  assert.deepEqual(roles(cfg, 'u@pve', '/vms/100'), ['PVEAuditor'], 'below it the non-propagating user entry is skipped');
});

test('user entries override group entries at the same level; deeper levels replace shallower ones', () => {
  const cfg = cfgOf(
    [
      'user:u@pve:1:',
      'group:g1:u@pve:',
      'group:g2:u@pve:',
      'acl:1:/:@g1:PVEAdmin:',
      'acl:1:/vms:@g1:PVEVMUser:',
      'acl:1:/vms:@g2:PVEAuditor:',
      'acl:1:/vms/100:u@pve:PVETemplateUser:',
      'acl:1:/storage:@g1,u@pve:PVEDatastoreUser:',
      'acl:1:/storage:@g2:PVEDatastoreAdmin:',
    ].join('\n'),
  );
  assert.deepEqual(roles(cfg, 'u@pve', '/nodes'), ['PVEAdmin']);
  assert.deepEqual(roles(cfg, 'u@pve', '/vms/200'), ['PVEAuditor', 'PVEVMUser'], 'groups of one level are unioned');
  assert.deepEqual(roles(cfg, 'u@pve', '/vms/100'), ['PVETemplateUser']);
  assert.deepEqual(roles(cfg, 'u@pve', '/storage/local'), ['PVEDatastoreUser'], 'the user entry hides both group entries');
  assert.deepEqual(permissions(cfg, 'u@pve', '/vms/100'), ['VM.Audit', 'VM.Clone']);
});

test('NoAccess cancels the other roles of its level and is overridden deeper down', () => {
  const cfg = cfgOf(
    ['user:u@pve:1:', 'group:g:u@pve:', 'acl:1:/vms:@g:NoAccess,PVEVMAdmin:', 'acl:1:/vms/100:@g:PVEVMUser:'].join('\n'),
  );
  assert.deepEqual(rolesWithFlags(roleMap(cfg, 'u@pve', '/vms/200')), { NoAccess: 1 });
  assert.deepEqual(permissions(cfg, 'u@pve', '/vms/200'), []);
  assert.deepEqual(roles(cfg, 'u@pve', '/vms/100'), ['PVEVMUser']);
});

test('pools: members inherit the pool roles, never propagating; NoAccess rules', () => {
  const cfg = cfgOf(
    [
      'user:u@pve:1:',
      'user:v@pve:1:',
      'user:w@pve:1:',
      'pool:prod::100,101:local:',
      'pool:prod/web::200::',
      'pool:lab::300:local:',
      'acl:1:/pool/prod:u@pve,v@pve:PVEVMUser:',
      'acl:1:/pool/lab:u@pve:NoAccess:',
      'acl:1:/vms/101:v@pve:NoAccess:',
      'acl:1:/vms:w@pve:PVEAuditor:',
      'acl:1:/pool/prod:w@pve:NoAccess:',
    ].join('\n'),
  );
  // roles() ignores pools, permissions() does not
  assert.deepEqual(roles(cfg, 'u@pve', '/vms/100'), []);
  assert.deepEqual(rolesWithFlags(effectiveRoles(cfg, 'u@pve', '/vms/100')), { PVEVMUser: 0 });
  assert.deepEqual(permissions(cfg, 'u@pve', '/vms/100'), [...BUILTIN_ROLES[9].PVEVMUser!]);
  assert.ok([...privilegeMap(cfg, 'u@pve', '/vms/100', 9).values()].every((v) => v === 0), 'pool-derived privileges never propagate');
  // nested pool: /pool/prod/web inherits /pool/prod by path propagation
  assert.deepEqual(permissions(cfg, 'u@pve', '/vms/200'), [...BUILTIN_ROLES[9].PVEVMUser!]);
  // only the exact member path, not the pool path or children of the member
  assert.deepEqual(permissions(cfg, 'u@pve', '/vms/100/disk'), []);
  assert.deepEqual(permissions(cfg, 'u@pve', '/vms'), []);
  // storage in two pools: a NoAccess from one pool wins over the role from the other
  assert.deepEqual(rolesWithFlags(effectiveRoles(cfg, 'u@pve', '/storage/local')), { NoAccess: 0 });
  assert.deepEqual(permissions(cfg, 'u@pve', '/storage/local'), []);
  // regular NoAccess ignores the pool roles
  assert.deepEqual(permissions(cfg, 'v@pve', '/vms/101'), []);
  assert.deepEqual(permissions(cfg, 'v@pve', '/vms/100'), [...BUILTIN_ROLES[9].PVEVMUser!]);
  // pool NoAccess trumps a regular role
  assert.deepEqual(permissions(cfg, 'w@pve', '/vms/100'), []);
  assert.deepEqual(permissions(cfg, 'w@pve', '/vms/300'), [...BUILTIN_ROLES[9].PVEAuditor!]);
});

test('a regular role keeps its propagate flag when a pool grants the same role', () => {
  const cfg = cfgOf(['user:u@pve:1:', 'pool:p::100::', 'acl:1:/vms:u@pve:PVEAuditor:', 'acl:1:/pool/p:u@pve:PVEAuditor,PVEVMUser:'].join('\n'));
  const p = privilegeMap(cfg, 'u@pve', '/vms/100', 9);
  assert.equal(p.get('VM.Audit'), 1, 'PVEAuditor propagates from /vms');
  assert.equal(p.get('VM.Console'), 0, 'PVEVMUser comes from the pool only');
});

test('tokens: privsep=0 is the user, privsep=1 only its own entries intersected with the user', () => {
  const cfg = cfgOf(
    [
      'user:u@pve:1:',
      'token:u@pve!full:0:0:',
      'token:u@pve!sep:0:1:',
      'token:u@pve!bare:',
      'user:root@pam:1:',
      'token:root@pam!sep:0:1:',
      'acl:1:/:u@pve:PVEAuditor:',
      'acl:0:/vms:u@pve:PVEVMAdmin:',
      'acl:1:/vms:u@pve!sep:PVEVMAdmin:',
      'acl:1:/vms:u@pve!full:Administrator:',
      'acl:1:/nodes:root@pam!sep:PVESysAdmin:',
    ].join('\n'),
  );
  assert.deepEqual(roles(cfg, 'u@pve!full', '/vms'), ['PVEVMAdmin'], 'privsep=0 ignores its own ACL entries');
  assert.deepEqual(roles(cfg, 'u@pve!bare', '/vms'), ['PVEVMAdmin'], 'a token line without privsep means full user privileges');
  assert.deepEqual(permissions(cfg, 'u@pve!full', '/vms'), permissions(cfg, 'u@pve', '/vms'));
  assert.deepEqual(roles(cfg, 'u@pve!sep', '/'), [], 'privsep=1 does not see the user entries');
  assert.deepEqual(roles(cfg, 'u@pve!sep', '/vms/100'), ['PVEVMAdmin'], 'roles() does not intersect');
  // intersection: on /vms the user has PVEVMAdmin (propagate 0) -> flags AND to 0
  const vms = privilegeMap(cfg, 'u@pve!sep', '/vms', 9);
  assert.deepEqual([...vms.keys()].sort(), [...BUILTIN_ROLES[9].PVEVMAdmin!]);
  assert.ok([...vms.values()].every((v) => v === 0));
  // below /vms the user only has PVEAuditor: VM.Audit and VM.GuestAgent.Audit remain
  assert.deepEqual(permissions(cfg, 'u@pve!sep', '/vms/100'), ['VM.Audit', 'VM.GuestAgent.Audit']);
  assert.deepEqual(privObject(privilegeMap(cfg, 'u@pve!sep', '/vms/100', 9)), { 'VM.Audit': 1, 'VM.GuestAgent.Audit': 1 });
  // unknown tokens get nothing; a root-owned privsep token is not intersected (root has everything)
  assert.deepEqual(permissions(cfg, 'u@pve!nope', '/vms'), []);
  assert.deepEqual(roles(cfg, 'u@pve!nope', '/vms'), []);
  assert.deepEqual(permissions(cfg, 'root@pam!sep', '/nodes/pve1'), ['Sys.Audit', 'Sys.Console', 'Sys.Syslog']);
  assert.deepEqual(permissions(cfg, 'root@pam!sep', '/vms'), []);
});

test('invalid user ids get nothing from permissions(); unknown but valid ones are evaluated', () => {
  // ghost@pve is kept as a group member (with a warning) although no user line defines it
  const cfg = parseUserCfg(['user:u@pve:1:', 'group:g:u@pve,ghost@pve:', 'acl:1:/:@g:PVEAuditor:'].join('\n')).cfg;
  assert.deepEqual(permissions(cfg, 'x', '/'), []);
  assert.deepEqual(permissions(cfg, 'ghost@pve', '/'), [...BUILTIN_ROLES[9].PVEAuditor!], 'group members need not be defined users');
});

test('PVE 8 vs PVE 9: built-in roles from the branch table', () => {
  const raw = 'user:u@pve:1:\nacl:1:/vms:u@pve:PVEVMAdmin:\n';
  const c8 = parseUserCfg(raw, { major: 8 }).cfg;
  const c9 = parseUserCfg(raw, { major: 9 }).cfg;
  assert.ok(permissions(c8, 'u@pve', '/vms/1', 8).includes('VM.Monitor'));
  assert.ok(!permissions(c9, 'u@pve', '/vms/1', 9).includes('VM.Monitor'));
  assert.ok(permissions(c9, 'u@pve', '/vms/1', 9).includes('VM.Replicate'));
  // a PVE 8 custom role evaluated as PVE 9 loses VM.Monitor, as PVE 9's parser drops it
  const custom = parseUserCfg('user:u@pve:1:\nrole:Mon:VM.Audit,VM.Monitor:\nacl:1:/:u@pve:Mon:\n', { major: 8 }).cfg;
  assert.deepEqual(permissions(custom, 'u@pve', '/', 8), ['VM.Audit', 'VM.Monitor']);
  assert.deepEqual(permissions(custom, 'u@pve', '/', 9), ['VM.Audit']);
});

test('hasPrivileges / hasAnyPrivilege', () => {
  const cfg = cfgOf('user:u@pve:1:\nacl:1:/vms:u@pve:PVEVMUser:\n');
  assert.ok(hasPrivileges(cfg, 'u@pve', '/vms/100', ['VM.Console', 'VM.Audit']));
  assert.ok(!hasPrivileges(cfg, 'u@pve', '/vms/100', ['VM.Console', 'VM.Allocate']));
  assert.ok(hasAnyPrivilege(cfg, 'u@pve', '/vms/100', ['VM.Allocate', 'VM.Console']));
  assert.ok(!hasAnyPrivilege(cfg, 'u@pve', '/', ['VM.Console']));
});

test('effectivePermissions: default paths, ACL tree paths and pool members, empty paths left out', () => {
  const cfg = cfgOf(
    ['user:u@pve:1:', 'token:u@pve!tk:0:1:', 'pool:p::100:local:', 'acl:1:/vms/200:u@pve:PVEVMUser:', 'acl:1:/pool/p:u@pve:PVEAuditor:', 'acl:1:/vms:u@pve!tk:PVEVMUser:'].join('\n'),
  );
  assert.deepEqual(effectivePermissionPaths(cfg), ['/', '/access', '/access/groups', '/nodes', '/pool', '/pool/p', '/sdn', '/storage', '/storage/local', '/vms', '/vms/100', '/vms/200']);
  const eff = effectivePermissions(cfg, 'u@pve');
  assert.deepEqual(Object.keys(eff), ['/pool/p', '/storage/local', '/vms/100', '/vms/200']);
  assert.deepEqual(eff['/storage/local'], { 'Datastore.Audit': 0, 'Mapping.Audit': 0, 'Pool.Audit': 0, 'SDN.Audit': 0, 'Sys.Audit': 0, 'VM.Audit': 0, 'VM.GuestAgent.Audit': 0 });
  assert.equal(eff['/pool/p']!['Pool.Audit'], 1);
  assert.equal(eff['/vms/200']!['VM.Console'], 1);
  // the privsep token: its PVEVMUser on /vms intersected with the user
  const tok = effectivePermissions(cfg, 'u@pve!tk');
  assert.deepEqual(Object.keys(tok), ['/vms/100', '/vms/200']);
  assert.deepEqual(tok['/vms/200'], Object.fromEntries(BUILTIN_ROLES[9].PVEVMUser!.map((p) => [p, 1])), 'the user has PVEVMUser there too');
  assert.deepEqual(tok['/vms/100'], { 'VM.Audit': 0, 'VM.GuestAgent.Audit': 0 }, 'the user has it from the pool only: flags AND to 0');
  const root = effectivePermissions(cfg, 'root@pam');
  assert.equal(Object.keys(root).length, 12);
});

test('accessMatrix: users with their tokens against the default paths', () => {
  const cfg = cfgOf(
    ['user:root@pam:1:0:::::', 'user:ops@pve:1:', 'token:ops@pve!ci:0:1:', 'user:off@pve:0:', 'pool:web::::', 'acl:1:/:ops@pve:PVEAuditor:', 'acl:1:/pool/web:ops@pve!ci:PVEPoolUser:', 'acl:1:/:ops@pve!ci:PVEVMUser:'].join('\n'),
  );
  assert.deepEqual(defaultMatrixPaths(cfg), ['/', '/vms', '/storage', '/nodes', '/access', '/sdn', '/pool/web']);
  const m = accessMatrix(cfg);
  assert.equal(m.major, 9);
  assert.deepEqual(
    m.rows.map((r) => [r.id, r.kind, r.enabled, r.privsep]),
    [
      ['off@pve', 'user', false, undefined],
      ['ops@pve', 'user', true, undefined],
      ['ops@pve!ci', 'token', true, 1],
      ['root@pam', 'user', true, undefined],
    ],
  );
  const ci = m.rows.find((r) => r.id === 'ops@pve!ci')!;
  assert.deepEqual(ci.cells['/']!.roles, ['PVEVMUser']);
  assert.deepEqual(ci.cells['/']!.privileges, ['VM.Audit', 'VM.GuestAgent.Audit'], 'intersected with the owner');
  assert.deepEqual(ci.cells['/pool/web']!.privileges, ['Pool.Audit']);
  assert.deepEqual(ci.cells['/pool/web']!.propagating, ['Pool.Audit']);
  assert.deepEqual(m.rows.find((r) => r.id === 'off@pve')!.cells['/']!.privileges, []);
  assert.deepEqual(m.rows.find((r) => r.id === 'root@pam')!.cells['/sdn']!.privileges, [...PRIVILEGES[9]]);
});
