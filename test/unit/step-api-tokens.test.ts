/**
 * The API tokens step on a fake node whose pveum is the lab's stand-in
 * against a temporary /etc/pve: a service account and a privilege-separated,
 * expiring token whose grant is the account's; the secret handed out once
 * (and saved when asked); rotation in place or by a successor; root tokens
 * and tokens without expiry as drift; bad input named by field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange, type CommandChange } from '../../src/engine/change.ts';
import { parseAnswersFile } from '../../src/cli/answers.ts';
import { parseUserCfg } from '../../src/pve/user-cfg.ts';
import { runChecked } from '../../src/system/exec.ts';
import { apiTokensStep, decodeTokens, type ApiTokensAnswers } from '../../steps/api-tokens.ts';
import { CATALOGUE } from '../../steps/index.ts';
import { testNode } from '../fixtures/node.ts';
import { failed, stepContext } from '../fixtures/step-run.ts';
import { pveNode, type PveNode } from '../fixtures/fake-pveum.ts';

const DAY = 86_400;
const MONITORING: ApiTokensAnswers = { tokens: [{ account: 'svc-monitoring@pve', token: 'metrics', roles: ['PVEAuditor'], path: '/', expire_days: 180, save_to: '/root/metrics.token' }] };

function contextFor(node: PveNode, version = '9.2.11') {
  return stepContext({ exec: node.exec, files: node.files, node: { ...testNode, proxmox: { ...testNode.proxmox!, version } } });
}

/** Apply with the stand-in, as the engine would (a revealing command's JSON is returned, never logged). */
async function apply(node: PveNode, changes: readonly CommandChange[]): Promise<Record<string, unknown>[]> {
  const outputs: Record<string, unknown>[] = [];
  for (const change of changes) {
    assert.equal(node.read('user.cfg'), change.writes![0]!.before, `before ${change.argv.join(' ')}`);
    const r = await runChecked(node.exec, change.argv);
    if (change.reveal) outputs.push(JSON.parse(r.stdout) as Record<string, unknown>);
    assert.equal(node.read('user.cfg'), change.writes![0]!.after, `user.cfg as predicted after ${change.argv.join(' ')}`);
  }
  return outputs;
}

test('a monitoring token: service account without password, its grant, a separated token that expires, the token\'s own grant; the secret only in the reveal; a second run plans nothing', async () => {
  const node = pveNode();
  try {
    const ctx = contextFor(node);
    const facts = await apiTokensStep.probe(ctx);
    const changes = apiTokensStep.plan(facts, MONITORING, ctx.node) as CommandChange[];
    const expire = facts.now + 180 * DAY;
    assert.deepEqual(changes.map(describeChange), [
      "run pveum user add svc-monitoring@pve --comment 'service account'",
      'run pveum acl modify / --roles PVEAuditor --users svc-monitoring@pve --propagate 1',
      `run pveum user token add svc-monitoring@pve metrics --privsep 1 --expire ${expire} --output-format json`,
      "run pveum acl modify / --roles PVEAuditor --tokens 'svc-monitoring@pve!metrics' --propagate 1",
    ]);
    const add = changes[2]!;
    assert.deepEqual(add.reveal, {
      field: 'value',
      title: 'The secret of svc-monitoring@pve!metrics',
      advice: 'Shown once: store it where the service reads it; requests send the header Authorization: PVEAPIToken=svc-monitoring@pve!metrics=SECRET',
      saveTo: { path: '/root/metrics.token', line: 'PVEAPIToken=svc-monitoring@pve!metrics={value}' },
    });
    assert.deepEqual(add.undo, ['pveum', 'user', 'token', 'delete', 'svc-monitoring@pve', 'metrics']);
    assert.deepEqual(add.writes!.map((w) => [w.path, w.unshown]), [['/etc/pve/user.cfg', undefined], ['/etc/pve/priv/token.cfg', 'it holds every token\'s secret']]);

    const [created] = await apply(node, changes);
    assert.match(String(created!.value), /^[0-9a-f-]{36}$/);
    assert.equal(node.read('priv/token.cfg'), `svc-monitoring@pve!metrics ${String(created!.value)}\n`);
    assert.ok(!node.read('user.cfg')!.includes(String(created!.value)), 'user.cfg never holds a secret');
    assert.match(node.read('user.cfg')!, /^user:svc-monitoring@pve:1:0::::service account::$/m);
    assert.equal(node.read('priv/shadow.cfg') ?? '', '', 'no password for a service account');

    assert.deepEqual(failed(await apiTokensStep.verify(ctx, MONITORING)), []);
    assert.deepEqual(apiTokensStep.plan(await apiTokensStep.probe(ctx), MONITORING, ctx.node), [], 'a second run plans nothing');
  } finally {
    node.done();
  }
});

test('rotation: within 30 days of expiry the secret is regenerated in place (grants kept); on an older Proxmox VE a successor comes first', async () => {
  const node = pveNode();
  try {
    const ctx = contextFor(node);
    const first = await apply(node, apiTokensStep.plan(await apiTokensStep.probe(ctx), MONITORING, ctx.node) as CommandChange[]);
    const soon = Math.floor(Date.now() / 1000) + 10 * DAY;
    await runChecked(node.exec, ['pveum', 'user', 'token', 'modify', 'svc-monitoring@pve', 'metrics', '--expire', String(soon)]);
    assert.match(failed(await apiTokensStep.verify(ctx, MONITORING)).join('\n'), /expires .* \((9|10) days left\): run this step again to rotate it/);

    const facts = await apiTokensStep.probe(ctx);
    assert.equal(facts.regenerate, true, 'Proxmox VE 9.2 regenerates');
    const rotate = apiTokensStep.plan(facts, MONITORING, ctx.node) as CommandChange[];
    assert.deepEqual(rotate.map(describeChange), [`run pveum user token modify svc-monitoring@pve metrics --regenerate 1 --expire ${facts.now + 180 * DAY} --output-format json`]);
    assert.match(rotate[0]!.reason, /expires in (9|10) days: a new secret/);
    const [again] = await apply(node, rotate);
    assert.notEqual(again!.value, first[0]!.value);
    assert.equal(node.read('priv/token.cfg'), `svc-monitoring@pve!metrics ${String(again!.value)}\n`);
    assert.match(node.read('user.cfg')!, /^acl:1:\/:svc-monitoring@pve,svc-monitoring@pve!metrics:PVEAuditor:$/m, 'the grants are kept');
    assert.deepEqual(failed(await apiTokensStep.verify(ctx, MONITORING)), []);

    // Proxmox VE 9.1 without the newer pve-access-control: a successor token with the same grant first.
    await runChecked(node.exec, ['pveum', 'user', 'token', 'modify', 'svc-monitoring@pve', 'metrics', '--expire', String(soon)]);
    const old = contextFor(node, '9.1.2');
    const oldFacts = await apiTokensStep.probe(old);
    assert.equal(oldFacts.regenerate, false);
    const successor = apiTokensStep.plan(oldFacts, MONITORING, old.node) as CommandChange[];
    const next = `metrics-${new Date(oldFacts.now * 1000).toISOString().slice(0, 10).replace(/-/g, '')}`;
    assert.deepEqual(successor.map(describeChange), [
      `run pveum user token add svc-monitoring@pve ${next} --privsep 1 --expire ${oldFacts.now + 180 * DAY} --output-format json`,
      `run pveum acl modify / --roles PVEAuditor --tokens 'svc-monitoring@pve!${next}' --propagate 1`,
    ]);
    await apply(node, successor);
    assert.deepEqual(failed(await apiTokensStep.verify(old, MONITORING)).filter((f) => f.includes(next)), [], 'the successor is the declared token now');
  } finally {
    node.done();
  }
});

test('drift: a root token, a token that never expires and one without privilege separation are reported by verify', async () => {
  const node = pveNode();
  try {
    const ctx = contextFor(node);
    await apply(node, apiTokensStep.plan(await apiTokensStep.probe(ctx), MONITORING, ctx.node) as CommandChange[]);
    await runChecked(node.exec, ['pveum', 'user', 'token', 'add', 'root@pam', 'legacy', '--privsep', '0']);
    const text = failed(await apiTokensStep.verify(ctx, MONITORING)).join('\n');
    assert.match(text, /^No API token for root@pam \(.*root@pam!legacy/m);
    assert.match(text, /^Every token expires, and none within 30 days \(.*root@pam!legacy/m);
    assert.ok(!/Every token is privilege-separated/.test(text), 'a root token is reported as a root token, not also as not separated');
    await runChecked(node.exec, ['pveum', 'user', 'token', 'delete', 'root@pam', 'legacy']);
    await runChecked(node.exec, ['pveum', 'user', 'token', 'add', 'svc-monitoring@pve', 'wide', '--privsep', '0', '--expire', String(Math.floor(Date.now() / 1000) + 90 * DAY)]);
    assert.match(failed(await apiTokensStep.verify(ctx, MONITORING)).join('\n'), /^Every token is privilege-separated \(.*svc-monitoring@pve!wide/m);
    assert.equal(parseUserCfg(node.read('user.cfg')).cfg.users.get('svc-monitoring@pve')!.tokens.get('wide')!.privsep, 0);
  } finally {
    node.done();
  }
});

test('bad input is named by field and nothing runs: a root token, an expiry of never or in the past, an invalid path, an unknown role, a secret file under /etc/pve', async () => {
  const node = pveNode();
  try {
    const ctx = contextFor(node);
    const facts = await apiTokensStep.probe(ctx);
    const file = `
api-tokens:
  tokens:
    - { account: root@pam, token: ci, roles: [PVEAuditor], path: / }
    - { account: svc-ci@pve, token: ci, roles: [PVEAuditor], path: /bogus, expire_days: 0 }
    - { account: svc-ci@pve, token: 9x, roles: [NoSuchRole], expires: 2020-01-01, save_to: /etc/pve/priv/x }
    - { account: svc-ci@pve, token: ok, roles: [PVEAuditor], expires: never }
`;
    await assert.rejects(parseAnswersFile(file, 'answers.yml', CATALOGUE, { files: node.files, facts }), (error: Error & { problems?: string[] }) => {
      const text = error.problems!.join('\n');
      for (const expected of [
        'api-tokens.tokens: [0].account: a token of root@pam has every privilege',
        "[1].path: '/bogus' is not a path Proxmox grants on",
        "[1].expire_days: a token must expire: Proxmox's 0 means never, which pve-baseline refuses",
        "[2].token: wants a token name: a letter",
        "[2].roles: role 'NoSuchRole' is neither built in nor on this node",
        '[2].expires: 2020-01-01 is in the past',
        '[2].save_to: must not be under /etc/pve',
        "[3].expires: a token must expire: Proxmox's 0 means never",
      ]) {
        assert.ok(text.includes(expected), `${expected}\n--- in ---\n${text}`);
      }
      return true;
    });
    assert.deepEqual(node.exec.calls.filter((c) => c.argv[0] === 'pveum'), [], 'nothing ran');

    const account = apiTokensStep.questions!.find((q) => q.id === 'account')!;
    assert.deepEqual(await account.codec!.decode('root@pam', {}, { files: node.files }), {
      ok: false,
      message: 'a token of root@pam has every privilege, is not limited by any ACL and leaves no named trail: make a service account (svc-NAME@pve) instead',
    });
    assert.ok(!decodeTokens([{ account: 'svc-a@pve', token: 'x', roles: ['PVEAuditor'], path: '/', expire_days: 4000 }]).ok, 'more than ten years is refused');
  } finally {
    node.done();
  }
});
