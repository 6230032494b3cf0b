/**
 * user.cfg parser/writer against Proxmox's own fixtures (copied, with their
 * origin, into test/fixtures/conformance) and against Proxmox's file format:
 * its line layout, percent-encoded free text, built-in roles and name rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeText,
  emptyUserCfg,
  encodeText,
  parseUserCfg,
  writeUserCfg,
  type UserCfg,
} from '../../src/pve/user-cfg.ts';
import { BUILTIN_ROLES, PRIVILEGES } from '../../src/pve/privileges.ts';
import { checkUserid, checkPoolid, isValidAclPath, normalizeAclPath } from '../../src/pve/names.ts';

const CONFORMANCE = join(import.meta.dirname, '..', 'fixtures', 'conformance', 'pve-access-control');

/** A canonical, comparable view of a parsed config. */
function canon(cfg: UserCfg): unknown {
  const sortMap = <V>(m: Map<string, V>, f: (v: V) => unknown) =>
    Object.fromEntries([...m.keys()].sort().map((k) => [k, f(m.get(k)!)]));
  const aclNode = (n: UserCfg['acl']): unknown => ({
    users: sortMap(n.users, (r) => sortMap(r, (p) => p)),
    groups: sortMap(n.groups, (r) => sortMap(r, (p) => p)),
    tokens: sortMap(n.tokens, (r) => sortMap(r, (p) => p)),
    children: sortMap(n.children, aclNode),
  });
  return {
    users: sortMap(cfg.users, (u) => ({ ...u, groups: [...u.groups].sort(), tokens: sortMap(u.tokens, (t) => t) })),
    groups: sortMap(cfg.groups, (g) => ({ ...g, users: [...g.users].sort() })),
    pools: sortMap(cfg.pools, (p) => ({ ...p, vms: [...p.vms].sort(), storage: [...p.storage].sort(), pools: [...p.pools].sort() })),
    roles: sortMap(cfg.roles, (r) => [...r].sort()),
    acl: aclNode(cfg.acl),
  };
}

const fixtures = (['pve8', 'pve9'] as const).flatMap((branch) =>
  existsSync(join(CONFORMANCE, branch))
    ? readdirSync(join(CONFORMANCE, branch))
        .filter((f) => f.endsWith('.cfg'))
        .map((f) => ({ branch, file: join(CONFORMANCE, branch, f), name: `${branch}/${f}` }))
    : [],
);

test('conformance fixtures are present', () => {
  assert.ok(fixtures.length >= 16, `expected the Proxmox fixtures under ${CONFORMANCE}`);
});

for (const fx of fixtures) {
  test(`round trip: ${fx.name} re-reads identically and re-writes byte for byte`, () => {
    const major = fx.branch === 'pve8' ? 8 : 9;
    const first = parseUserCfg(readFileSync(fx.file, 'utf8'), { major });
    const written = writeUserCfg(first.cfg);
    const second = parseUserCfg(written, { major });
    assert.deepEqual(canon(second.cfg), canon(first.cfg));
    assert.equal(writeUserCfg(second.cfg), written);
    // the writer's own output never produces parser warnings
    assert.deepEqual(second.warnings, []);
  });
}

test('test8.cfg (tokens, acl lines without trailing colon) is written in the writer layout', () => {
  const { cfg } = parseUserCfg(readFileSync(join(CONFORMANCE, 'pve9', 'test8.cfg'), 'utf8'));
  assert.equal(
    writeUserCfg(cfg),
    [
      'user:alex@pve:1:0::::::',
      'user:carol@pam:1:0::::::',
      'token:carol@pam!token:0:0::',
      'user:joe@pve:1:0::::::',
      'user:max@pve:1:0::::::',
      'token:max@pve!token:0:0::',
      'token:max@pve!token2:0:1::',
      'user:root@pam:1:0::::::',
      'user:sue@pve:1:0::::::',
      '',
      'group:testgroup1:joe@pve,max@pve,sue@pve::',
      'group:testgroup2:alex@pve,carol@pam,sue@pve::',
      'group:testgroup3:max@pve::',
      '',
      '',
      'role:customer:VM.Audit,VM.PowerMgmt:',
      'role:storage_manager:Datastore.AllocateSpace,Datastore.Audit:',
      'role:vm_admin:VM.Allocate,VM.Audit,VM.Console:',
      '',
      'acl:1:/storage/nfs1:@testgroup2:storage_manager:',
      'acl:1:/users:max@pve:Administrator:',
      'acl:1:/vms:@testgroup1:vm_admin:',
      'acl:1:/vms/100:alex@pve,max@pve:customer:',
      'acl:1:/vms/200:@testgroup2:NoAccess:',
      'acl:1:/vms/200:max@pve!token2:customer:',
      'acl:1:/vms/200:@testgroup3,max@pve!token:storage_manager:',
      'acl:1:/vms/200:carol@pam!token:vm_admin:',
      'acl:0:/vms/300:max@pve:customer:',
      'acl:1:/vms/300:max@pve!token2:Administrator:',
      'acl:1:/vms/300:max@pve:vm_admin:',
      '',
    ].join('\n'),
  );
});

test('user.cfg: default-value round trip (parser_writer.pl default_values)', () => {
  const input = ['user:root@pam', 'user:test@pam', 'token:test@pam!test', '', 'group:testgroup', '', 'pool:testpool', '', 'role:testrole', '', 'acl::/:'].join('\n');
  const output = [
    'user:root@pam:0:0::::::',
    'user:test@pam:0:0::::::',
    'token:test@pam!test:0:0::',
    '',
    'group:testgroup:::',
    '',
    'pool:testpool::::',
    '',
    'role:testrole::',
    '',
    '',
  ].join('\n');
  assert.equal(writeUserCfg(parseUserCfg(input).cfg), output);
});

test('user.cfg: an empty config serialises as four newlines; parsing it forces root@pam in', () => {
  assert.equal(writeUserCfg(emptyUserCfg()), '\n\n\n\n');
  assert.equal(writeUserCfg(parseUserCfg('').cfg), 'user:root@pam:1:0::::::\n\n\n\n\n');
});

test("user.cfg: the installer's root line gains a trailing ':' on the first write", () => {
  const { cfg, warnings } = parseUserCfg('user:root@pam:1:0:::admin@example.com::\n');
  assert.deepEqual(warnings, []);
  assert.equal(writeUserCfg(cfg), 'user:root@pam:1:0:::admin@example.com:::\n\n\n\n\n');
});

test('user.cfg: canonical writer lines re-read and re-write unchanged', () => {
  const canonical = [
    'user:root@pam:1:0::::::',
    'user:test@pam:1:0::::::',
    'token:test@pam!full:0:0::',
    'user:test2@pam:1:0::::::',
    'token:test2@pam!privsep:0:1::',
    '',
    'group:testgroup:test2@pam,test@pam::',
    '',
    'pool:testpool::123,1234:local,local-zfs:',
    '',
    'role:testrole:Datastore.Audit,VM.Allocate:',
    '',
    'acl:0:/:@testgroup:PVEVMAdmin:',
    'acl:1:/storage:@testgroup,test@pam:PVEDatastoreAdmin:',
    '',
  ].join('\n');
  // user ids sort bytewise: "test2@pam" < "test@pam" ('2' < '@')
  const { cfg, warnings } = parseUserCfg(canonical);
  assert.deepEqual(warnings, []);
  const expected = canonical.replace(
    'user:test@pam:1:0::::::\ntoken:test@pam!full:0:0::\nuser:test2@pam:1:0::::::\ntoken:test2@pam!privsep:0:1::',
    'user:test2@pam:1:0::::::\ntoken:test2@pam!privsep:0:1::\nuser:test@pam:1:0::::::\ntoken:test@pam!full:0:0::',
  );
  assert.equal(writeUserCfg(cfg), expected);
});

test('parser drops what Proxmox drops, with its warnings', () => {
  const raw = [
    '# a comment is not a comment',
    'user:bad user@pve:1:0::::::',
    'user:alice@pve:1:0::::::',
    'role:Old:VM.Monitor,VM.Audit:',
    'acl:1:/vms:alice@pve!nosuch:Old:',
    'acl:1:/vms:alice@pve:Missing:',
    'pool:p1::100,abc::',
    'pool:p2::100::',
  ].join('\n');
  const { cfg, warnings } = parseUserCfg(raw);
  assert.deepEqual(warnings, [
    'user config - ignore config line: # a comment is not a comment',
    "user config - ignore user 'bad user@pve' - invalid user name",
    "user config - ignore invalid privilege 'VM.Monitor'",
    "user config - ignore invalid acl token 'alice@pve!nosuch'",
    "user config - ignore invalid acl role 'Missing'",
    "user config - ignore invalid vmid 'abc' in pool 'p1'",
    "user config - ignore duplicate vmid '100' in pool 'p2'",
  ]);
  assert.deepEqual([...cfg.roles.get('Old')!], ['VM.Audit']);
  // PVE 8 still knows VM.Monitor
  assert.deepEqual([...parseUserCfg(raw, { major: 8 }).cfg.roles.get('Old')!].sort(), ['VM.Audit', 'VM.Monitor']);
});

test('ACLs are written by a depth-first tree walk, not by sorting path strings', () => {
  const raw = ['user:a@pve:1:0::::::', '', '', '', '', 'acl:1:/vms-x:a@pve:PVEAuditor:', 'acl:1:/vms/100:a@pve:PVEAuditor:', 'acl:1:/vms:a@pve:PVEAuditor:'].join('\n');
  const acl = writeUserCfg(parseUserCfg(raw).cfg).split('\n').filter((l) => l.startsWith('acl:'));
  assert.deepEqual(acl, ['acl:1:/vms:a@pve:PVEAuditor:', 'acl:1:/vms/100:a@pve:PVEAuditor:', 'acl:1:/vms-x:a@pve:PVEAuditor:']);
});

test('free text is percent-encoded like PVE::Tools::encode_text', () => {
  assert.equal(encodeText('Jörg: 100% sure'), 'J%C3%B6rg%3A 100%25 sure');
  assert.equal(decodeText('J%C3%B6rg%3A 100%25 sure'), 'Jörg: 100% sure');
  const { cfg } = parseUserCfg('user:j@pve:1:0:J%C3%B6rg:M%3Aller::ops%3A team::\n');
  assert.equal(cfg.users.get('j@pve')!.firstname, 'Jörg');
  assert.match(writeUserCfg(cfg), /^user:j@pve:1:0:J%C3%B6rg:M%3Aller::ops%3A team::$/m);
});

test('built-in roles match the ones Proxmox generates from its privilege groups', () => {
  const lines = readFileSync(join(CONFORMANCE, 'builtin-roles-pve9.txt'), 'utf8').split('\n').filter((l) => /^[A-Za-z]+: /.test(l));
  assert.ok(lines.length >= 17);
  for (const line of lines) {
    const [role, privs] = line.split(': ') as [string, string];
    const expected = privs === '(none)' ? [] : privs.split(',');
    assert.deepEqual([...BUILTIN_ROLES[9][role]!], expected, role);
  }
  const pve8List = readFileSync(join(CONFORMANCE, 'privileges-pve8.txt'), 'utf8').trim().split(',');
  assert.deepEqual([...PRIVILEGES[8]], pve8List);
  assert.ok(BUILTIN_ROLES[8].PVEVMAdmin!.includes('VM.Monitor'));
  assert.ok(!BUILTIN_ROLES[8].PVEAdmin!.some((p) => p.startsWith('VM.GuestAgent')));
});

test('user, pool and ACL path names follow Proxmox\'s rules', () => {
  assert.equal(checkUserid('alice@pve'), null);
  assert.equal(checkUserid('a@'), "user name 'a@' is too short");
  assert.equal(checkUserid('alice'), "value 'alice' does not look like a valid user name");
  assert.equal(checkUserid(`${'x'.repeat(61)}@pve`), `user name '${'x'.repeat(61)}@pve' is too long (65 > 64)`);
  assert.equal(checkPoolid('a/b/c'), null);
  assert.equal(checkPoolid('a/b/c/d'), "pool name 'a/b/c/d' nested too deeply (max levels = 3)");
  assert.equal(normalizeAclPath('vms//100/'), '/vms/100');
  assert.ok(isValidAclPath('/vms/100'));
  assert.ok(!isValidAclPath('/vms/99'));
  assert.ok(!isValidAclPath('/bogus'));
  assert.ok(isValidAclPath('/sdn/fabrics/f1', 9));
  assert.ok(!isValidAclPath('/sdn/fabrics/f1', 8));
});
