/**
 * The access-model step on a fake node whose pveum is the lab's stand-in
 * (its own implementation of Proxmox's handlers) against a temporary
 * /etc/pve: the plan's commands, their predicted user.cfg against what pveum
 * really wrote, the preview, a second run, prune, and bad input refused
 * naming the field before anything changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { describeChange, type CommandChange } from '../../src/engine/change.ts';
import { parseAnswersFile } from '../../src/cli/answers.ts';
import { decodeAccessModel, planAccessModel } from '../../src/pve/access-model.ts';
import { parseUserCfg } from '../../src/pve/user-cfg.ts';
import { accessModelStep, type AccessModelAnswers } from '../../steps/access-model.ts';
import { CATALOGUE } from '../../steps/index.ts';
import { failed, stepContext } from '../fixtures/step-run.ts';
import { pveNode, type PveNode } from '../fixtures/fake-pveum.ts';
import { runChecked } from '../../src/system/exec.ts';

const WEB_TEAM = `
access-model:
  access:
    roles:
      WebDev: [Mapping.Audit, Pool.Audit, VM.Audit, VM.Console]
      WebAppManager: [Mapping.Audit, Pool.Audit, VM.Audit, VM.PowerMgmt]
    users:
      betty@pve: { comment: "Betty: external web pages" }
      jim@pve: { comment: "Jim: internal web pages" }
      nancy@pve: { comment: "Nancy: web team manager", email: nancy@example.com }
    groups:
      web-ext: { members: [betty@pve] }
      web-int: { members: [jim@pve] }
      web-managers: { members: [nancy@pve] }
    pools:
      ExtWebSer: { comment: External web servers, vms: [100, 101] }
      IntWebSer: { vms: [200] }
    acl:
      - { path: /pool/ExtWebSer, roles: [WebDev], groups: [web-ext] }
      - { path: /pool/IntWebSer, roles: [WebDev], groups: [web-int] }
      - { path: /pool/ExtWebSer, roles: [WebAppManager], groups: [web-managers] }
      - { path: /pool/IntWebSer, roles: [WebAppManager], groups: [web-managers] }
`;

const ADMIN_CFG = 'user:alice@pam:1:0::::::\nuser:root@pam:1:0:::admin@example.com:::\n\n\n\n\nacl:1:/:alice@pam:Administrator:\n';

/** Apply a plan with the stand-in pveum, checking after each command that user.cfg is what the plan said it would be. */
async function applyChecked(node: PveNode, changes: readonly CommandChange[]): Promise<void> {
  for (const change of changes) {
    assert.equal(node.read('user.cfg'), change.writes![0]!.before, `before ${change.argv.join(' ')}`);
    await runChecked(node.exec, change.argv);
    assert.equal(node.read('user.cfg'), change.writes![0]!.after, `user.cfg as predicted after ${change.argv.join(' ')}`);
  }
}

async function planFor(node: PveNode, answers: AccessModelAnswers, admin = 'alice') {
  const ctx = stepContext({ exec: node.exec, files: node.files, answersOf: { 'admin-account': { name: admin } } });
  const facts = await accessModelStep.probe(ctx);
  const changes = accessModelStep.plan(facts, answers, ctx.node) as CommandChange[];
  return { ctx, facts, changes };
}

test('the seed-004 web team from an answers file: pveum commands with reasons, each user.cfg as pveum writes it, the preview, verify; a second run plans nothing', async () => {
  const node = pveNode({ userCfg: ADMIN_CFG, vms: [100, 101, 200, 300] });
  try {
    const ctx = stepContext({ exec: node.exec, files: node.files });
    const facts = await accessModelStep.probe(ctx);
    const parsed = await parseAnswersFile(WEB_TEAM, 'answers.yml', CATALOGUE, { files: node.files, facts });
    const answers = parsed['access-model'] as AccessModelAnswers;
    const { changes, ctx: planCtx, facts: planFacts } = await planFor(node, answers);
    assert.deepEqual(changes.map(describeChange), [
      'run pveum role add WebDev --privs Mapping.Audit,Pool.Audit,VM.Audit,VM.Console',
      'run pveum role add WebAppManager --privs Mapping.Audit,Pool.Audit,VM.Audit,VM.PowerMgmt',
      'run pveum group add web-ext',
      'run pveum group add web-int',
      'run pveum group add web-managers',
      "run pveum pool add ExtWebSer --comment 'External web servers'",
      'run pveum pool modify ExtWebSer --vms 100,101',
      'run pveum pool add IntWebSer',
      'run pveum pool modify IntWebSer --vms 200',
      "run pveum user add betty@pve --comment 'Betty: external web pages'",
      "run pveum user add jim@pve --comment 'Jim: internal web pages'",
      "run pveum user add nancy@pve --comment 'Nancy: web team manager' --email nancy@example.com",
      'run pveum user modify betty@pve --groups web-ext --append 1',
      'run pveum user modify jim@pve --groups web-int --append 1',
      'run pveum user modify nancy@pve --groups web-managers --append 1',
      'run pveum acl modify /pool/ExtWebSer --roles WebDev --groups web-ext --propagate 1',
      'run pveum acl modify /pool/IntWebSer --roles WebDev --groups web-int --propagate 1',
      'run pveum acl modify /pool/ExtWebSer --roles WebAppManager --groups web-managers --propagate 1',
      'run pveum acl modify /pool/IntWebSer --roles WebAppManager --groups web-managers --propagate 1',
    ]);
    assert.ok(changes.every((c) => c.reason.length > 10 && !c.undo), 'every command says why; user.cfg comes back from its backup');

    const preview = accessModelStep.preview!(planFacts, answers, changes);
    assert.ok(preview.includes('  betty@pve on /vms/100: nothing -> Mapping.Audit, Pool.Audit, VM.Audit, VM.Console'), preview.join('\n'));
    assert.ok(preview.includes('  nancy@pve on /vms/200: nothing -> Mapping.Audit, Pool.Audit, VM.Audit, VM.PowerMgmt'), preview.join('\n'));
    assert.ok(!preview.some((l) => l.includes('/vms/300') || l.includes('alice@pam')), 'nobody changes on a guest outside the pools, and the admin keeps what she had');
    assert.match(preview.at(-1)!, /betty@pve, jim@pve, nancy@pve/);

    assert.deepEqual(failed(await accessModelStep.verify(planCtx, answers)).map((c) => c.split(' (')[0]), ['The declared roles, groups, pools, users and grants are on the node']);
    await applyChecked(node, changes);
    assert.deepEqual(failed(await accessModelStep.verify(planCtx, answers)), []);
    assert.deepEqual((await planFor(node, answers)).changes, [], 'a second run plans nothing');
  } finally {
    node.done();
  }
});

test('removing a declared user from the file plans nothing; with prune: true it is deleted (its secret files declared for the backup), the admin and service accounts are kept', async () => {
  const node = pveNode({ userCfg: ADMIN_CFG, vms: [100, 101, 200] });
  try {
    const full = (parseYaml(WEB_TEAM) as { 'access-model': { access: Record<string, unknown> } })['access-model'].access;
    const first = decodeAccessModel(full);
    assert.ok(first.ok);
    await applyChecked(node, (await planFor(node, { access: first.value })).changes);
    await runChecked(node.exec, ['pveum', 'user', 'add', 'svc-backup@pve']);

    const withoutJim = structuredClone(first.value);
    delete withoutJim.users!['jim@pve'];
    withoutJim.groups!['web-int']!.members = [];
    assert.deepEqual((await planFor(node, { access: withoutJim })).changes.map(describeChange), [], 'not declared is not removed');

    const pruned = await planFor(node, { access: withoutJim, prune: true });
    assert.deepEqual(pruned.changes.map(describeChange), ['run pveum user delete jim@pve']);
    assert.deepEqual(pruned.changes[0]!.writes!.map((w) => [w.path, w.unshown !== undefined]), [
      ['/etc/pve/user.cfg', false],
      ['/etc/pve/priv/shadow.cfg', true],
      ['/etc/pve/priv/token.cfg', true],
      ['/etc/pve/priv/tfa.cfg', true],
    ]);
    await applyChecked(node, pruned.changes);
    const cfg = parseUserCfg(node.read('user.cfg')).cfg;
    assert.deepEqual([...cfg.users.keys()].sort(), ['alice@pam', 'betty@pve', 'nancy@pve', 'root@pam', 'svc-backup@pve']);
    assert.deepEqual([...cfg.groups.get('web-int')!.users], []);

    // Prune with an empty model: everything declared goes, the admin's Administrator and root stay.
    const empty = await planFor(node, { access: {}, prune: true });
    await applyChecked(node, empty.changes);
    assert.equal(node.read('user.cfg'), 'user:alice@pam:1:0::::::\nuser:root@pam:1:0:::admin@example.com:::\nuser:svc-backup@pve:1:0::::::\n\n\n\n\nacl:1:/:alice@pam:Administrator:\n');
  } finally {
    node.done();
  }
});

test('bad input is refused naming the field, before anything is planned: unknown privilege, a PVE role name, an invalid ACL path, a guest that does not exist, an expiry in the past', async () => {
  const node = pveNode({ userCfg: ADMIN_CFG, vms: [100] });
  try {
    const ctx = stepContext({ exec: node.exec, files: node.files });
    const facts = await accessModelStep.probe(ctx);
    const file = `
access-model:
  access:
    roles:
      PVEWeb: [VM.Audit]
      Web: [VM.Audit, VM.Monitor, Vm.console]
    users:
      kim@pve: { expire: 2020-01-01 }
    pools:
      P: { vms: [100, 999] }
    acl:
      - { path: /bogus, roles: [Web], users: [kim@pve] }
      - { path: /vms/100, roles: [NoSuchRole], users: [nobody@pve] }
`;
    await assert.rejects(parseAnswersFile(file, 'answers.yml', CATALOGUE, { files: node.files, facts }), (error: Error & { problems?: string[] }) => {
      const text = error.problems!.join('\n');
      for (const expected of [
        "access-model.access: roles.PVEWeb: a custom role's name must not start with PVE",
        "roles.Web: unknown privilege 'VM.Monitor' (Proxmox VE 9 dropped it",
        "roles.Web: unknown privilege 'Vm.console' (did you mean VM.Console?)",
        'users.kim@pve.expire: 2020-01-01 is in the past',
        'pools.P.vms: VM 999 does not exist on this node (guests here: 100)',
        "acl[0].path: '/bogus' is not a path Proxmox grants on",
        "acl[1].roles: role 'NoSuchRole' is neither built in, declared under roles, nor on this node",
        'acl[1].users: nobody@pve is neither declared under users nor a user on this node',
      ]) {
        assert.ok(text.includes(expected), `${expected}\n--- in ---\n${text}`);
      }
      assert.match(text, /^answers\.yml:\d+: access-model\.access: /);
      return true;
    });
    assert.deepEqual(node.exec.calls, [], 'nothing ran');

    // root@pam is never managed, and unknown fields are named.
    const r = decodeAccessModel({ users: { 'root@pam': {}, 'a@pve': { emial: 'x' } }, groups: { g: { members: ['root@pam'] } } });
    assert.ok(!r.ok);
    assert.deepEqual(r.problems, [
      'users.root@pam: root@pam is never managed by pve-baseline',
      'users.a@pve.emial: not a field (fields: comment, email, firstname, lastname, enable, expire)',
      'groups.g.members: root@pam: root@pam is never managed by pve-baseline',
    ]);
  } finally {
    node.done();
  }
});

test('a fresh node\'s user.cfg, as the installer wrote it, is the first command\'s "before" (the engine checks it unchanged since the plan)', async () => {
  const fresh = 'user:root@pam:1:0:::admin@example.com::\n';
  const node = pveNode({ userCfg: fresh, vms: [100] });
  try {
    const { changes } = await planFor(node, { template: 'auditor', members: ['carol@pve'] });
    assert.equal(changes[0]!.writes![0]!.before, fresh);
    await applyChecked(node, changes);
  } finally {
    node.done();
  }
});

test('templates: the wizard\'s web team fills in the seed, checks guest ids against the node, and plans groups, not per-user grants', async () => {
  const node = pveNode({ userCfg: ADMIN_CFG, vms: [100, 200] });
  try {
    const ctx = stepContext({ exec: node.exec, files: node.files, answersOf: { 'admin-account': { name: 'alice' } } });
    const facts = await accessModelStep.probe(ctx);
    const ext = accessModelStep.questions!.find((q) => q.id === 'external_vms')!;
    const qctx = { files: node.files, facts };
    assert.deepEqual(await ext.codec!.decode('100 999', { template: 'web-team' }, qctx), { ok: false, message: 'no guest 999 on this node (guests here: 100, 200)' });
    const answers: AccessModelAnswers = { template: 'web-team', external_vms: ['100'], internal_vms: ['200'] };
    const { changes } = await planFor(node, answers);
    const grants = changes.filter((c) => c.argv[1] === 'acl');
    assert.equal(grants.length, 4);
    assert.ok(grants.every((c) => c.argv.includes('--groups') && !c.argv.includes('--users')), 'grants go to groups');
    await applyChecked(node, changes);
    assert.deepEqual(failed(await accessModelStep.verify(ctx, answers)), []);

    // The auditor template: PVEAuditor on / through a group.
    const auditor = await planFor(node, { template: 'auditor', members: ['carol@pve'] });
    assert.deepEqual(auditor.changes.map(describeChange), [
      "run pveum group add auditors --comment 'Read-only access for audits'",
      'run pveum user add carol@pve',
      'run pveum user modify carol@pve --groups auditors --append 1',
      'run pveum acl modify / --roles PVEAuditor --groups auditors --propagate 1',
    ]);
  } finally {
    node.done();
  }
});

test('verify reports Administrator outside the declared admins and a disabled account that keeps its grants', async () => {
  const node = pveNode({ userCfg: `${ADMIN_CFG.replace('\n\n\n\n\n', '\nuser:eve@pve:1:0::::::\nuser:old@pve:0:0::::::\n\n\n\n\n')}acl:1:/vms:eve@pve:Administrator:\nacl:1:/vms:old@pve:PVEVMUser:\n`, vms: [] });
  try {
    const ctx = stepContext({ exec: node.exec, files: node.files, answersOf: { 'admin-account': { name: 'alice' } } });
    const checks = await accessModelStep.verify(ctx, { access: {} });
    const bad = failed(checks);
    assert.equal(bad.length, 2, bad.join('\n'));
    assert.match(bad[0]!, /^Administrator only for the declared admins \(.*eve@pve/);
    assert.ok(!bad[0]!.includes('alice@pam'), 'the admin account is a declared admin');
    assert.match(bad[1]!, /^No disabled or expired account keeps privileges \(.*old@pve/);
    const declared = await accessModelStep.verify(ctx, { access: { admins: ['eve@pve'] } });
    assert.deepEqual(failed(declared).map((c) => c.split(' (')[0]), ['No disabled or expired account keeps privileges']);
  } finally {
    node.done();
  }
});

test('planAccessModel never touches root@pam, even with prune, and moves a guest from another pool only saying so', () => {
  const cfg = parseUserCfg('user:root@pam:1:0::::::\n\npool:old::100::\n\nacl:1:/:root@pam:Administrator:\n').cfg;
  const commands = planAccessModel(cfg, { pools: { new: { vms: [100] } } }, { prune: true, protect: new Set() });
  assert.deepEqual(
    commands.map((c) => c.argv.join(' ')),
    ['pveum pool add new', 'pveum pool modify new --vms 100 --allow-move 1', 'pveum pool delete old'],
  );
  assert.match(commands[1]!.reason, /moves 100 out of pool old/);
  assert.ok(!commands.some((c) => c.argv.includes('root@pam')));
});
