/**
 * The access-control audit (src/pve/access-audit.ts) on user.cfg text: the
 * seed-004 web team (Betty and Jim as WebDev, Nancy as WebAppManager, each
 * scoped to a pool), a monitoring service account with tokens expiring in 10
 * and 40 days, never, already expired, a token without privilege separation,
 * a root@pam token, a disabled user in a group with a role, a group granting
 * Administrator, an expired user with a token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessFindings, accessSummary, privilegePaths, privilegesByPath, tokenFacts, userRefusal, type Finding } from '../../src/pve/access-audit.ts';
import { effectivePermissions, privilegeMap } from '../../src/pve/permissions.ts';
import { parseUserCfg } from '../../src/pve/user-cfg.ts';

/** 2026-11-18 12:13:20 UTC */
export const NOW = 1795004000;
const DAY = 86_400;

/** The fixture as user.cfg text, dated around `now`. */
export function webTeamCfg(now = NOW): string {
  return `user:root@pam:1:0:::root@example.com:::
token:root@pam!automation:0:0:deploy script:
user:bob@pve:1:0:Bob::bob@example.com:Proxmox administrator::
user:betty@pve:1:0:Betty:::external web pages::
user:jim@pve:1:0:Jim:::internal web pages::
user:nancy@pve:1:0:Nancy:::web team manager::
user:eve@pve:0:0:Eve:::left the company::
user:mallory@pve:1:0:::::
user:temp@pve:1:${now - 5 * DAY}::::contractor::
token:temp@pve!ci:${now + 100 * DAY}:1:ci runs:
user:svc-mon@pve:1:0::::monitoring service account::
token:svc-mon@pve!soon:${now + 10 * DAY + 3600}:1:rotates next:
token:svc-mon@pve!later:${now + 40 * DAY}:1:grafana:
token:svc-mon@pve!forever:0:1:nobody set an expiry:
token:svc-mon@pve!old:${now - 3 * DAY}:1:replaced:
token:svc-mon@pve!full:${now + 100 * DAY}:0:legacy:

group:admins:bob@pve,mallory@pve:Proxmox administrators:
group:ops:eve@pve:operators:
group:webmgr:nancy@pve:web team managers:
group:webdevs:betty@pve,jim@pve::

pool:ExtWebSer:external web servers:100,101:local-lvm:
pool:IntWebSer:internal web servers:200:local:

role:WebAppManager:Pool.Audit,VM.Audit,VM.PowerMgmt:
role:WebDev:Pool.Audit,VM.Audit,VM.Console:

acl:1:/:bob@pve,@admins:Administrator:
acl:1:/:svc-mon@pve,svc-mon@pve!soon:PVEAuditor:
acl:1:/vms:svc-mon@pve!later:Administrator:
acl:1:/pool/ExtWebSer:betty@pve:WebDev:
acl:1:/pool/IntWebSer:jim@pve:WebDev:
acl:1:/pool/ExtWebSer:@webmgr:WebAppManager:
acl:1:/pool/IntWebSer:@webmgr:WebAppManager:
acl:1:/pool/ExtWebSer:@ops:PVEVMUser:
`;
}

function parse(text: string) {
  const { cfg, warnings } = parseUserCfg(text, { major: 9 });
  assert.deepEqual(warnings, [], 'the fixture is a valid user.cfg');
  return cfg;
}

const of = (findings: Finding[], kind: Finding['kind']) => findings.filter((f) => f.kind === kind);

test('tokenFacts: every token sorted by id, with days left, state and whether Proxmox accepts its owner', () => {
  const facts = tokenFacts(parse(webTeamCfg()), NOW);
  assert.deepEqual(
    facts.map((t) => [t.id, t.owner, t.tokenid, t.privsep, t.daysLeft, t.state, t.ownerUsable]),
    [
      ['root@pam!automation', 'root@pam', 'automation', 0, null, 'never-expires', true],
      ['svc-mon@pve!forever', 'svc-mon@pve', 'forever', 1, null, 'never-expires', true],
      ['svc-mon@pve!full', 'svc-mon@pve', 'full', 0, 100, 'ok', true],
      ['svc-mon@pve!later', 'svc-mon@pve', 'later', 1, 40, 'ok', true],
      ['svc-mon@pve!old', 'svc-mon@pve', 'old', 1, -3, 'expired', true],
      ['svc-mon@pve!soon', 'svc-mon@pve', 'soon', 1, 10, 'expiring', true],
      ['temp@pve!ci', 'temp@pve', 'ci', 1, 100, 'ok', false],
    ],
  );
  const ci = facts.find((t) => t.id === 'temp@pve!ci')!;
  assert.equal(ci.ownerRefusal, "user 'temp@pve' access expired");
  assert.equal(ci.effectiveExpire, NOW - 5 * DAY, 'the owner\'s expiry comes first');
  assert.equal(facts.find((t) => t.id === 'svc-mon@pve!soon')!.comment, 'rotates next');
  assert.equal(facts.find((t) => t.id === 'svc-mon@pve!forever')!.effectiveExpire, 0);
});

test('tokenFacts: the boundaries are Proxmox\'s (verify_token refuses expire < now; 0 never expires)', () => {
  const cfg = parse(`user:a@pve:1:0:::::\ntoken:a@pve!now:${NOW}:1::\ntoken:a@pve!past:${NOW - 1}:1::\ntoken:a@pve!edge:${NOW + 30 * DAY}:1::\ntoken:a@pve!after:${NOW + 30 * DAY + 1}:1::\n`);
  const state = Object.fromEntries(tokenFacts(cfg, NOW).map((t) => [t.tokenid, [t.state, t.daysLeft]]));
  assert.deepEqual(state, { after: ['ok', 30], edge: ['expiring', 30], now: ['expiring', 0], past: ['expired', -1] });
  assert.equal(tokenFacts(cfg, NOW, 60).find((t) => t.tokenid === 'after')!.state, 'expiring', 'the window is a parameter');
  // A disabled owner: check_user_enabled refuses its tokens, whatever their own expiry.
  const disabled = parse(`user:a@pve:0:0:::::\ntoken:a@pve!tk:0:1::\n`);
  assert.deepEqual(tokenFacts(disabled, NOW).map((t) => [t.ownerUsable, t.ownerRefusal]), [[false, "user 'a@pve' is disabled"]]);
  assert.equal(userRefusal(disabled, 'nobody@pve', NOW), "user 'nobody@pve' is disabled");
});

test('accessFindings: one finding per problem, in the operator\'s words', () => {
  const cfg = parse(webTeamCfg());
  const findings = accessFindings(cfg, { now: NOW, declaredAdmins: ['bob@pve'] });
  assert.deepEqual(
    findings.map((f) => `${f.kind} ${f.subject}`),
    [
      'token-expired svc-mon@pve!old',
      'root-token root@pam!automation',
      'unexpected-administrator mallory@pve',
      'unexpected-administrator svc-mon@pve!later',
      'disabled-privileged eve@pve',
      'disabled-privileged temp@pve',
      'token-expiring svc-mon@pve!soon',
      'token-no-expiry root@pam!automation',
      'token-no-expiry svc-mon@pve!forever',
      'token-not-separated svc-mon@pve!full',
    ],
  );
  const msg = (kind: Finding['kind'], subject: string) => findings.find((f) => f.kind === kind && f.subject === subject)!.message;
  assert.equal(msg('token-expiring', 'svc-mon@pve!soon'), '`svc-mon@pve!soon` expires on 2026-11-28, in 10 days: regenerate or replace it before then, or what uses it stops working');
  assert.match(msg('token-expired', 'svc-mon@pve!old'), /^`svc-mon@pve!old` expired on 2026-11-15: Proxmox refuses it/);
  assert.match(msg('root-token', 'root@pam!automation'), /^a token of root@pam \(`root@pam!automation`\) has every privilege and bypasses two-factor login/);
  assert.match(msg('root-token', 'root@pam!automation'), /pveum user token remove root@pam automation/);
  assert.match(msg('token-no-expiry', 'svc-mon@pve!forever'), /^`svc-mon@pve!forever` never expires: a leaked secret works until someone removes the token/);
  // The count comes from the evaluator: svc-mon@pve has PVEAuditor on / (7 privileges on PVE 9).
  assert.match(msg('token-not-separated', 'svc-mon@pve!full'), /^`svc-mon@pve!full` is not privilege-separated: it has all of `svc-mon@pve`'s rights \(7 privileges on `\/`\)/);
  assert.equal(msg('unexpected-administrator', 'mallory@pve'), '`mallory@pve` holds Administrator on `/` and everything below it, through group `admins`, but is not a declared admin');
  // A privilege-separated token's Administrator is cut to its owner's rights (PVEAuditor: 7 of 47).
  assert.match(msg('unexpected-administrator', 'svc-mon@pve!later'), /^the token `svc-mon@pve!later` holds Administrator on `\/vms` and everything below it, as its own ACL entry \(limited by its owner's rights to 7 privileges of 47 there\)/);
  assert.equal(msg('disabled-privileged', 'eve@pve'), '`eve@pve` is disabled, but keeps PVEVMUser on `/pool/ExtWebSer` and everything below it (through group `ops`): re-enabling it restores that silently');
  assert.equal(msg('disabled-privileged', 'temp@pve'), '`temp@pve` expired on 2026-11-13, but keeps the API token `temp@pve!ci`: a new expiry date restores that silently');
});

test('accessFindings: declared admins, root@pam and the break-glass account are not flagged; nothing declared flags every admin', () => {
  const cfg = parse(`${webTeamCfg()}user:breakglass@pam:0:0::::break-glass::\nacl:1:/:breakglass@pam:Administrator:\n`);
  const declared = accessFindings(cfg, { now: NOW, declaredAdmins: ['bob@pve', 'mallory@pve', 'svc-mon@pve!later'], breakGlass: ['breakglass@pam'] });
  assert.deepEqual(of(declared, 'unexpected-administrator'), []);
  assert.deepEqual(of(declared, 'disabled-privileged').map((f) => f.subject), ['eve@pve', 'temp@pve']);

  const none = accessFindings(cfg, { now: NOW, declaredAdmins: [] });
  assert.deepEqual(of(none, 'unexpected-administrator').map((f) => f.subject), ['bob@pve', 'breakglass@pam', 'bob@pve', 'mallory@pve', 'svc-mon@pve!later'].sort());
  assert.ok(!none.some((f) => f.subject === 'root@pam'), 'root@pam never counts');
  // Bob holds it twice, directly and through the group: one finding for each, each naming how.
  assert.deepEqual(of(none, 'unexpected-administrator').filter((f) => f.subject === 'bob@pve').map((f) => f.message.replace(/^.*?Administrator on `\/` and everything below it, /, '')), [
    'directly, but is not a declared admin',
    'through group `admins`, but is not a declared admin',
  ]);
  // Without being declared, the disabled break-glass account is both an unexpected admin and disabled-but-privileged.
  assert.equal(of(none, 'disabled-privileged').find((f) => f.subject === 'breakglass@pam')!.message, '`breakglass@pam` is disabled, but keeps Administrator on `/` and everything below it (directly): re-enabling it restores that silently');
});

test('accessFindings: the evaluator decides whether a grant reaches someone', () => {
  // carl's own entry on / replaces the group's at that level (roles: user over group), so the group's Administrator never reaches him;
  // dave's NoAccess beside it cancels it; a token without privilege separation ignores its own ACL entries.
  const cfg = parse(`user:carl@pve:1:0:::::
user:dave@pve:1:0:::::
user:zed@pve:1:0:::::
token:zed@pve!tk:0:0::
group:admins:carl@pve,dave@pve::
acl:1:/:@admins:Administrator:
acl:1:/:carl@pve:PVEAuditor:
acl:1:/:dave@pve:NoAccess:
acl:1:/:zed@pve:Administrator:
acl:0:/vms:zed@pve!tk:Administrator:
`);
  // zed is a declared admin: his unseparated token has his rights (token-not-separated), its own Administrator entry is inert.
  const findings = accessFindings(cfg, { now: NOW, declaredAdmins: ['zed@pve'] });
  assert.deepEqual(of(findings, 'unexpected-administrator'), []);
  assert.deepEqual(findings.map((f) => f.kind), ['token-no-expiry', 'token-not-separated']);
  // A disabled user whose only entries grant nothing (NoAccess) and who has no token is not flagged; one with a group role is.
  const disabled = parse(`user:x@pve:0:0:::::\nuser:y@pve:0:0:::::\ngroup:g:y@pve::\nacl:1:/:x@pve:NoAccess:\nacl:0:/vms/100:@g:PVEVMUser:\n`);
  assert.deepEqual(
    accessFindings(disabled, { now: NOW, declaredAdmins: [] }).map((f) => f.message),
    ['`y@pve` is disabled, but keeps PVEVMUser on `/vms/100` only (through group `g`): re-enabling it restores that silently'],
  );
});

test('accessSummary: groups with members and roles, pools with VMs and storage, custom roles with privileges, built-in roles in use', () => {
  const s = accessSummary(parse(webTeamCfg()));
  assert.deepEqual(s.groups.map((g) => [g.id, g.members, g.comment, g.grants.map((x) => `${x.role}@${x.path}:${x.propagate}`)]), [
    ['admins', ['bob@pve', 'mallory@pve'], 'Proxmox administrators', ['Administrator@/:1']],
    ['ops', ['eve@pve'], 'operators', ['PVEVMUser@/pool/ExtWebSer:1']],
    ['webdevs', ['betty@pve', 'jim@pve'], '', []],
    ['webmgr', ['nancy@pve'], 'web team managers', ['WebAppManager@/pool/ExtWebSer:1', 'WebAppManager@/pool/IntWebSer:1']],
  ]);
  assert.deepEqual(s.pools, [
    { id: 'ExtWebSer', vms: ['100', '101'], storage: ['local-lvm'], comment: 'external web servers' },
    { id: 'IntWebSer', vms: ['200'], storage: ['local'], comment: 'internal web servers' },
  ]);
  assert.deepEqual(s.roles.map((r) => [r.id, r.builtin, r.privileges.join(','), r.usedOn.join(' ')]), [
    ['WebAppManager', false, 'Pool.Audit,VM.Audit,VM.PowerMgmt', '/pool/ExtWebSer /pool/IntWebSer'],
    ['WebDev', false, 'Pool.Audit,VM.Audit,VM.Console', '/pool/ExtWebSer /pool/IntWebSer'],
    ['Administrator', true, '', '/ /vms'],
    ['PVEAuditor', true, '', '/'],
    ['PVEVMUser', true, '', '/pool/ExtWebSer'],
  ]);
  // VM ids sort as numbers.
  assert.deepEqual(accessSummary(parse('pool:p::1000,99,100::\n')).pools[0]!.vms, ['99', '100', '1000']);
});

test('privilegesByPath: the seed-004 team, and every entry equal to the evaluator\'s, no path with a privilege left out', () => {
  const cfg = parse(webTeamCfg());
  const list = privilegesByPath(cfg);
  const get = (id: string, path: string) => list.find((p) => p.id === id && p.path === path)?.privileges.join(', ');
  // Betty sees and opens the console of the VMs in her pool, nothing in Jim's; Nancy power-manages both.
  assert.equal(get('betty@pve', '/vms/100'), 'Pool.Audit, VM.Audit, VM.Console');
  assert.equal(get('betty@pve', '/pool/ExtWebSer'), 'Pool.Audit, VM.Audit, VM.Console');
  assert.equal(get('betty@pve', '/vms/200'), undefined);
  assert.equal(get('jim@pve', '/vms/100'), undefined);
  assert.equal(get('jim@pve', '/vms/200'), 'Pool.Audit, VM.Audit, VM.Console');
  assert.equal(get('nancy@pve', '/vms/101'), 'Pool.Audit, VM.Audit, VM.PowerMgmt');
  assert.equal(get('nancy@pve', '/vms/200'), 'Pool.Audit, VM.Audit, VM.PowerMgmt');
  assert.equal(get('nancy@pve', '/storage/local'), 'Pool.Audit, VM.Audit, VM.PowerMgmt');
  assert.equal(get('eve@pve', '/vms/100')?.includes('VM.PowerMgmt'), true, 'a disabled user keeps its privileges in the model');

  const paths = privilegePaths(cfg);
  for (const p of ['/', '/vms', '/storage', '/nodes', '/access', '/sdn', '/pool/ExtWebSer', '/pool/IntWebSer', '/vms/100', '/vms/101', '/vms/200', '/storage/local', '/storage/local-lvm']) {
    assert.ok(paths.includes(p), p);
  }
  const ids = [...cfg.users.keys()].flatMap((u) => [u, ...[...cfg.users.get(u)!.tokens.keys()].map((t) => `${u}!${t}`)]);
  let checked = 0;
  for (const id of ids) {
    for (const path of paths) {
      const expected = [...privilegeMap(cfg, id, path).keys()].sort();
      assert.deepEqual(list.find((p) => p.id === id && p.path === path)?.privileges ?? [], expected, `${id} on ${path}`);
      checked += 1;
    }
    // Everything GET /access/permissions lists without a path is in the list.
    for (const [path, privs] of Object.entries(effectivePermissions(cfg, id))) assert.deepEqual(list.find((p) => p.id === id && p.path === path)?.privileges, Object.keys(privs), `${id} on ${path}`);
  }
  assert.equal(checked, ids.length * paths.length);
  assert.ok(list.every((p) => p.privileges.length > 0), 'only paths with a privilege');
  assert.deepEqual(list.filter((p) => p.id === 'root@pam').length, paths.length, 'root@pam has every privilege everywhere');
});
