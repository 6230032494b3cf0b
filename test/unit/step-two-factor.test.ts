/**
 * The two-factor step on fakes: its questions (the QR code, the code
 * checked against the secret), its plan of two API calls whose secrets never
 * show, the recovery keys revealed once, adoption, verify, the proof and the
 * document. The API itself (PAM, TOTP, the journal lines) is the lab's
 * (test/lab/83-api.test.ts, 91-two-factor.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApiChange, Change } from '../../src/engine/change.ts';
import { validateAnswer } from '../../src/engine/questions.ts';
import type { StepContext } from '../../src/engine/step.ts';
import type { PveApi } from '../../src/pve/api.ts';
import { planText } from '../../src/cli/plain-output.ts';
import { Secret } from '../../src/system/secret.ts';
import { validateProxmoxTotpUri } from '../../src/tfa/totp.ts';
import { totpCode } from '../../src/tfa/totp-codes.ts';
import { TFA_CFG, twoFactorStep, type TwoFactorFacts } from '../../steps/two-factor.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { scriptedExec } from '../fixtures/scripted-exec.ts';
import { stepContext } from '../fixtures/step-run.ts';
import { testNode } from '../fixtures/node.ts';

const USER_CFG = 'user:root@pam:1:0:::root@example.com::\nuser:alice@pam:1:0:::alice@example.com::\nuser:bob@pve:0:0:::::\n';
const PASSWORD = new Secret('correct horse battery staple');
const TOTP_ENTRY = (user: string, lastCount: number | null = null, locked = false) =>
  JSON.stringify({
    users: {
      [user]: {
        totp: [{ id: 'a1b2', description: 'phone', created: 1, entry: lastCount === null ? 'otpauth://totp/Proxmox:x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' : { totp: 'otpauth://totp/Proxmox:x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 'last-count': lastCount } }],
        ...(locked ? { 'totp-locked': true } : {}),
      },
    },
  });

function node(files: Record<string, string> = {}) {
  const mem = new MemoryFiles({ '/etc/pve/user.cfg': USER_CFG, '/etc/passwd': 'root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n', '/etc/group': 'alice:x:1000:\n', ...files });
  const calls: { as: string; method: string; path: string; params: Record<string, string> }[] = [];
  const logins: { user: string; second?: string }[] = [];
  const api: PveApi = {
    async call(as, method, path, params = {}) {
      calls.push({ as: as.user, method, path, params: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? v : v.reveal()])) });
      return params.type === 'recovery' ? { recovery: Array.from({ length: 10 }, (_, i) => `00${i}0-1111-2222-333${i}`) } : { id: 'new-id' };
    },
    async login(user, _password, second) {
      logins.push({ user, ...(second ? { second: second().reveal() } : {}) });
      return { user, secondFactor: !!second };
    },
  };
  const ctx: StepContext = { ...stepContext({ exec: scriptedExec(), files: mem, node: { ...testNode, proxmox: testNode.proxmox } , answersOf: { 'admin-account': { name: 'alice' } } }), api };
  return { mem, ctx, calls, logins };
}

const question = (id: string) => twoFactorStep.questions!.find((q) => q.id === id)!;

test('questions: the admin by default; root@pam, unknown, disabled and other realms refused; the code checked against the new secret', async () => {
  const { ctx } = node();
  const facts = await twoFactorStep.probe(ctx);
  const user = question('user');
  assert.equal(user.kind === 'text' && user.detect?.(facts), 'alice@pam');
  const qctx = { files: ctx.files, facts };
  assert.equal((await validateAnswer(user, 'alice@pam', {}, qctx)).ok, true);
  for (const [value, why] of [
    ['root@pam', /root@pam stays without a second factor/],
    ['carol@pam', /no Proxmox user carol@pam/],
    ['bob@pve', /bob@pve is disabled/],
    ['alice@ldap', /not a Proxmox user of the pam or pve realm/],
  ] as const) {
    const v = await validateAnswer(user, value, {}, qctx);
    assert.ok(!v.ok && why.test(v.message), `${value}: ${JSON.stringify(v)}`);
  }
  const codeQ = question('code');
  const good = await validateAnswer(codeQ, totpCode(facts.secret), { user: 'alice@pam' }, qctx);
  assert.ok(good.ok && good.value instanceof Secret, 'the current code is taken, as a secret');
  const wrong = await validateAnswer(codeQ, totpCode(facts.secret, Date.now() + 120_000), { user: 'alice@pam' }, qctx);
  assert.ok(!wrong.ok && /does not match/.test(wrong.message));
  const garbage = await validateAnswer(codeQ, '12ab56', { user: 'alice@pam' }, qctx);
  assert.ok(!garbage.ok && /only digits/.test(garbage.message));
  assert.ok(codeQ.interactiveOnly, 'an answers file cannot give the code');
  const display = codeQ.display!(facts, { user: 'alice@pam' });
  const uri = display!.qr!.text.reveal();
  assert.equal(validateProxmoxTotpUri(uri), undefined, 'Proxmox would take the URI');
  assert.match(uri, /^otpauth:\/\/totp\/Proxmox%20-%20pve1:alice%40pam\?secret=[A-Z2-7]{32}&period=30&digits=6&algorithm=SHA1&issuer=Proxmox%20-%20pve1$/);
  assert.equal(display!.qr!.secretText!.reveal(), facts.secret.reveal());
});

test('the plan: two API calls as the user; the secret, the code and the password appear nowhere in the preview', async () => {
  const { ctx } = node();
  const facts = await twoFactorStep.probe(ctx);
  const code = new Secret(totpCode(facts.secret));
  const plan = twoFactorStep.plan(facts, { user: 'alice@pam', password: PASSWORD, code }, ctx.node) as ApiChange[];
  assert.deepEqual(plan.map((c) => [c.method, c.path, c.as.user, c.activates === true, c.reveal?.field]), [
    ['POST', '/access/tfa/alice@pam', 'alice@pam', true, undefined],
    ['POST', '/access/tfa/alice@pam', 'alice@pam', false, 'recovery'],
  ]);
  const text = planText({ stepId: 'two-factor', title: 't', risk: 'lockout', changes: plan as Change[] }).join('\n');
  for (const secret of [facts.secret.reveal(), code.reveal(), PASSWORD.reveal()]) assert.ok(!text.includes(secret), 'no secret in the preview');
  assert.match(text, /params: type=totp description='pve-baseline: authenticator app' totp=\[secret\] value=\[secret\]/);
  assert.match(text, /writes \/etc\/pve\/priv\/tfa\.cfg \(not shown: it holds every TOTP secret of the cluster\)/);
  assert.match(text, /shows its recovery once/);
});

test('an account that already has TOTP is adopted, not given a second; verify reports a TOTP lock and missing recovery keys', async () => {
  const { ctx } = node({ [TFA_CFG]: TOTP_ENTRY('alice@pam', null, true) });
  const facts = await twoFactorStep.probe(ctx);
  assert.equal(question('password').when?.({ user: 'alice@pam' }, facts), false, 'no password asked');
  assert.deepEqual(twoFactorStep.plan(facts, { user: 'alice@pam' }, ctx.node), []);
  const checks = await twoFactorStep.verify(ctx, { user: 'alice@pam' });
  assert.deepEqual(
    checks.map((c) => [c.label, c.ok]),
    [
      ['alice@pam has a TOTP authenticator', true],
      ['alice@pam has unused recovery keys', false],
      ["alice@pam's TOTP is not locked", false],
    ],
  );
  assert.match(checks[2]!.detail!, /pveum user tfa unlock alice@pam/);
});

test('the proof logs in with the password and a code Proxmox takes; the person is seen by a newer accepted step in tfa.cfg', async () => {
  const { ctx, logins, mem } = node({ [TFA_CFG]: TOTP_ENTRY('alice@pam', 100) });
  const facts: TwoFactorFacts = await twoFactorStep.probe(ctx);
  const checks = await twoFactorStep.guard!.prove!(ctx, { user: 'alice@pam', password: PASSWORD }, facts);
  assert.deepEqual(checks.map((c) => c.ok), [true]);
  assert.match(logins[0]!.second!, /^totp:\d{6}$/);
  assert.equal(logins[0]!.second, `totp:${totpCode(facts.secret, Date.now() - 30_000)}`);

  const stop = new AbortController();
  const watch = twoFactorStep.guard!.access!(ctx, { user: 'alice@pam' }, facts).watch(new Date(), stop.signal);
  await new Promise((r) => setTimeout(r, 50));
  await mem.write(TFA_CFG, TOTP_ENTRY('alice@pam', 101));
  const seen = await watch;
  assert.match(seen!.detail, /alice@pam logged in with the password and a TOTP code/);
  stop.abort();
});

test('the document: factor types, recovery keys left and locks; never a secret', async () => {
  const { ctx } = node({ [TFA_CFG]: TOTP_ENTRY('alice@pam', 100) });
  const section = await twoFactorStep.document!(ctx, { user: 'alice@pam' });
  const text = JSON.stringify(section);
  assert.match(text, /alice@pam","TOTP \(1\)","none","no"/);
  assert.doesNotMatch(text, /JBSWY3DP|otpauth/);
});
