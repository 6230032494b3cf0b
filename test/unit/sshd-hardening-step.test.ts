/**
 * The sshd hardening step's pure parts (steps/sshd-hardening.ts) on
 * hand-made facts: the plan (and the drift it names), the pre-flight
 * refusals, the questions' validators, conditions and defaults, and the
 * revert guard's seconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Answers } from '../../src/engine/step.ts';
import { detectedDefault, validateAnswer } from '../../src/engine/questions.ts';
import type { Accounts, PasswdEntry } from '../../src/system/accounts.ts';
import { describeKey, generateKeyPair, readCheckedKeys, type PublicKey } from '../../src/ssh/keys.ts';
import { DROP_IN } from '../../src/ssh/sshd.ts';
import { parseOpenSshVersion, type SupportedAlgorithms } from '../../src/ssh/sshd-crypto.ts';
import { sshdHardeningStep, type SshdAnswers } from '../../steps/sshd-hardening.ts';
import { testNode } from '../fixtures/node.ts';
import { SUPPORTED_92 } from '../fixtures/openssh.ts';

type Facts = Parameters<typeof sshdHardeningStep.plan>[0];


const aliceEntry: PasswdEntry = { name: 'alice', uid: 1000, gid: 1000, gecos: 'Alice', home: '/home/alice', shell: '/bin/bash' };
const alice = { ...aliceEntry, sshDir: '/home/alice/.ssh', authorizedKeys: '/home/alice/.ssh/authorized_keys' };
const accounts: Accounts = {
  users: [{ name: 'root', uid: 0, gid: 0, gecos: 'root', home: '/root', shell: '/bin/bash' }, aliceEntry],
  groups: [
    { name: 'root', gid: 0, members: [] },
    { name: 'sudo', gid: 27, members: ['alice'] },
    { name: 'sshusers', gid: 1001, members: ['bob'] },
    { name: 'alice', gid: 1000, members: [] },
  ],
  passwords: new Map(),
};

async function keyOf(type: 'ed25519' | 'rsa', bits?: number): Promise<PublicKey> {
  const keys = readCheckedKeys((await generateKeyPair(type, { ...(bits ? { bits } : {}), comment: 'alice@laptop' })).public);
  assert.equal(keys.length, 1);
  return keys[0]!;
}
const ed25519 = await keyOf('ed25519');
const rsa2048 = await keyOf('rsa', 2048);

function factsWith(over: Partial<Facts> = {}): Facts {
  return {
    admin: alice,
    accounts,
    adminKeys: [ed25519],
    supported: SUPPORTED_92,
    dropIn: null,
    networks: ['192.0.2.0/24'],
    nodeAddress: '192.0.2.10',
    ...over,
  };
}

const DEFAULTS: SshdAnswers = { root_login: 'prohibit-password', allow_mode: 'users', allow_users: [], profile: 'compatible', revert_seconds: 180 };

function plannedContent(answers: SshdAnswers = DEFAULTS): string {
  const change = sshdHardeningStep.plan(factsWith(), answers, testNode)[0]!;
  assert.equal(change.kind, 'file');
  return (change as { after: string }).after;
}

function question(id: string) {
  const q = sshdHardeningStep.questions!.find((x) => x.id === id);
  assert.ok(q, `question ${id}`);
  return q;
}

/** The codec's refusal, or undefined when the answer is taken. */
const validate = async (id: string, value: string, answers: Answers = DEFAULTS) => {
  const v = await validateAnswer(question(id), value, answers);
  return v.ok ? undefined : v.message;
};

// --- plan -------------------------------------------------------------------

test('plan: no drop-in yet -> the drop-in (0644, root) and a reload of ssh', () => {
  const changes = sshdHardeningStep.plan(factsWith(), DEFAULTS, testNode);
  assert.equal(changes.length, 2);
  const [file, service] = changes;
  assert.ok(file?.kind === 'file');
  assert.equal(file.path, '/etc/ssh/sshd_config.d/00-pve-baseline.conf');
  assert.equal(file.path, DROP_IN);
  assert.equal(file.before, null);
  assert.equal(file.mode, 0o644);
  assert.deepEqual(file.owner, { uid: 0, gid: 0 });
  assert.equal(file.reason, 'the hardened settings, in a drop-in read before every other (00-): no passwords, keys only, modern crypto');
  const lines = file.after!.split('\n');
  for (const l of ['PasswordAuthentication no', 'PermitRootLogin prohibit-password', 'AllowUsers alice root', 'AuthenticationMethods publickey', 'RequiredRSASize 2048']) {
    assert.ok(lines.includes(l), `the drop-in holds "${l}"`);
  }
  assert.ok(!lines.some((l) => l.startsWith('Match ')), 'no Match block for root from anywhere');
  assert.deepEqual(service, { kind: 'service', unit: 'ssh', action: 'reload', reason: 'sshd reads the new settings; open sessions (this one too) stay connected' });
});

test('plan: the drop-in already as planned -> [] (compliant)', () => {
  const after = plannedContent();
  assert.deepEqual(sshdHardeningStep.plan(factsWith({ dropIn: after }), DEFAULTS, testNode), []);
  // A different answer makes the same file non-compliant again.
  assert.equal(sshdHardeningStep.plan(factsWith({ dropIn: after }), { ...DEFAULTS, allow_users: ['bob'] }, testNode).length, 2);
});

test('plan: a hand edit is named in the reason (a changed value, an added line)', () => {
  const after = plannedContent();
  assert.ok(after.includes('\nPasswordAuthentication no\n'));
  const edited = after.replace('PasswordAuthentication no', 'PasswordAuthentication yes');
  const changes = sshdHardeningStep.plan(factsWith({ dropIn: edited }), DEFAULTS, testNode);
  assert.equal(changes.length, 2);
  const file = changes[0]!;
  assert.ok(file.kind === 'file');
  assert.equal(file.before, edited);
  assert.equal(file.after, after);
  assert.equal(file.reason, 'the drop-in was changed: PasswordAuthentication is yes (wanted no)');

  const added = sshdHardeningStep.plan(factsWith({ dropIn: `${after}PermitTTY no\n` }), DEFAULTS, testNode)[0]!;
  assert.equal(added.reason, 'the drop-in was changed: PermitTTY no was added');

  const both = sshdHardeningStep.plan(factsWith({ dropIn: `${edited}PermitTTY no\n` }), DEFAULTS, testNode)[0]!;
  assert.equal(both.reason, 'the drop-in was changed: PasswordAuthentication is yes (wanted no); PermitTTY no was added');

  const removed = after.replace('\nLogLevel VERBOSE\n', '\n');
  assert.equal(sshdHardeningStep.plan(factsWith({ dropIn: removed }), DEFAULTS, testNode)[0]!.reason, 'the drop-in was changed: LogLevel is missing (wanted VERBOSE)');

  const comment = after.replace('# Profile: compatible.', '# Profile: mine.');
  assert.equal(
    sshdHardeningStep.plan(factsWith({ dropIn: comment }), DEFAULTS, testNode)[0]!.reason,
    'the drop-in was changed (comments or Match block); it is written as pve-baseline renders it',
  );
});

test('plan: root from networks writes the Match Address block; groups mode writes AllowGroups with root', () => {
  const networks = plannedContent({ ...DEFAULTS, root_login: 'networks', root_networks: ['192.0.2.0/24', '10.10.10.0/24'] }).split('\n');
  assert.ok(networks.includes('PermitRootLogin no'));
  assert.ok(networks.includes('AllowUsers alice root@192.0.2.0/24 root@10.10.10.0/24'));
  assert.ok(networks.includes('Match Address 192.0.2.0/24,10.10.10.0/24'));
  assert.ok(networks.includes('    PermitRootLogin prohibit-password'));
  const groups = plannedContent({ ...DEFAULTS, allow_mode: 'groups', allow_groups: ['sudo'] }).split('\n');
  assert.ok(groups.includes('AllowGroups sudo root'));
  assert.ok(!groups.some((l) => l.startsWith('AllowUsers')));
});

// --- preflight --------------------------------------------------------------

test('preflight: an ed25519 key passes (compatible and strict)', () => {
  for (const profile of ['compatible', 'strict'] as const) {
    const checks = sshdHardeningStep.preflight!(factsWith(), { ...DEFAULTS, profile }, testNode);
    assert.deepEqual(checks, [{ label: `alice has an installed key the ${profile} profile accepts`, ok: true, detail: describeKey(ed25519) }]);
  }
});

test('preflight: only an RSA-2048 key with the strict profile fails, naming RequiredRSASize 3072 and the compatible profile', () => {
  const facts = factsWith({ adminKeys: [rsa2048] });
  const checks = sshdHardeningStep.preflight!(facts, { ...DEFAULTS, profile: 'strict' }, testNode);
  assert.deepEqual(checks, [
    {
      label: 'alice has an installed key the strict profile accepts',
      ok: false,
      detail: `RSA 2048 bits ${rsa2048.fingerprint} alice@laptop: RequiredRSASize 3072 refuses an RSA key of 2048 bits. Install an ed25519 key (the SSH key step), or choose the compatible profile`,
    },
  ]);
  // The compatible profile takes it (RequiredRSASize 2048).
  assert.deepEqual(sshdHardeningStep.preflight!(facts, DEFAULTS, testNode), [
    { label: 'alice has an installed key the compatible profile accepts', ok: true, detail: `RSA 2048 bits ${rsa2048.fingerprint} alice@laptop` },
  ]);
});

test('preflight: no installed key -> run the SSH key step first', () => {
  assert.deepEqual(sshdHardeningStep.preflight!(factsWith({ adminKeys: [] }), DEFAULTS, testNode), [
    { label: 'alice has an installed key the compatible profile accepts', ok: false, detail: '/home/alice/.ssh/authorized_keys holds no key: run the SSH key step first' },
  ]);
});

test('preflight: AllowGroups must keep the admin (sshusers refused, naming her groups; sudo passes)', () => {
  const outside = sshdHardeningStep.preflight!(factsWith(), { ...DEFAULTS, allow_mode: 'groups', allow_groups: ['sshusers'] }, testNode);
  assert.equal(outside.length, 2);
  assert.equal(outside[0]!.ok, true);
  assert.deepEqual(outside[1], {
    label: 'AllowGroups sshusers keeps alice',
    ok: false,
    detail: 'alice is a member of alice, sudo, none of which is allowed: add one of them, or add alice to an allowed group first',
  });
  const inside = sshdHardeningStep.preflight!(factsWith(), { ...DEFAULTS, allow_mode: 'groups', allow_groups: ['sudo'] }, testNode);
  assert.deepEqual(inside[1], { label: 'AllowGroups sudo keeps alice', ok: true });
  assert.ok(inside.every((c) => c.ok));
  // The primary group counts too (alice's gid 1000 is group alice).
  const primary = sshdHardeningStep.preflight!(factsWith(), { ...DEFAULTS, allow_mode: 'groups', allow_groups: ['sshusers', 'alice'] }, testNode);
  assert.deepEqual(primary[1], { label: 'AllowGroups sshusers alice keeps alice', ok: true });
});

test('preflight: a strict profile this OpenSSH cannot satisfy is refused before anything else', () => {
  const old: SupportedAlgorithms = { ...SUPPORTED_92, version: parseOpenSshVersion('OpenSSH_8.4p1 Debian-5+deb11u3'), kex: SUPPORTED_92.kex.filter((k) => !k.startsWith('sntrup')) };
  const checks = sshdHardeningStep.preflight!(factsWith({ supported: old }), { ...DEFAULTS, profile: 'strict' }, testNode);
  assert.equal(checks.length, 1);
  assert.equal(checks[0]!.label, 'the strict profile works with this OpenSSH');
  assert.equal(checks[0]!.ok, false);
  assert.match(checks[0]!.detail!, /^the strict profile cannot be satisfied: OpenSSH_8\.4p1 .*supports none of the KexAlgorithms/);
});

// --- questions --------------------------------------------------------------

test('questions: the ids, in order', () => {
  assert.deepEqual(
    sshdHardeningStep.questions!.map((q) => q.id),
    ['root_login', 'root_networks', 'allow_mode', 'allow_users', 'allow_groups', 'profile', 'revert_seconds'],
  );
});

test('root_networks: validate refuses host bits and garbage, accepts networks', async () => {
  assert.equal(await validate('root_networks', '10.0.0.1/24'), '"10.0.0.1/24" has host bits set: the network is 10.0.0.0/24');
  assert.equal(await validate('root_networks', '10.0.0.0/24 10.10.10.0/24'), undefined);
  assert.equal(await validate('root_networks', '10.0.0.0/24,192.0.2.7'), undefined);
  assert.equal(await validate('root_networks', 'nope'), '"nope" is not an address or a network (wanted e.g. 10.0.0.0/24 or fd00::/64)');
  assert.equal(
    await validate('root_networks', '10.0.0.1/24 nope'),
    '"10.0.0.1/24" has host bits set: the network is 10.0.0.0/24',
  );
});

test('revert_seconds: validate accepts 30 and 1800, refuses 29, 1801 and abc', async () => {
  assert.equal(await validate('revert_seconds', '30'), undefined);
  assert.equal(await validate('revert_seconds', '1800'), undefined);
  assert.equal(await validate('revert_seconds', '180'), undefined);
  for (const bad of ['29', '1801', 'abc', '-30', '60s']) assert.equal(await validate('revert_seconds', bad), 'wants a whole number of seconds from 30 to 1800', bad);
  assert.equal(detectedDefault(question('revert_seconds'), factsWith()), '180');
  assert.deepEqual(await validateAnswer(question('revert_seconds'), 600), { ok: true, value: 600 });
});

test('when: root_networks follows root_login; allow_users and allow_groups follow allow_mode', () => {
  const facts = factsWith();
  const when = (id: string, answers: Answers) => sshdHardeningStep.questions!.find((q) => q.id === id)!.when!(answers, facts);
  assert.equal(when('root_networks', { root_login: 'networks' }), true);
  assert.equal(when('root_networks', { root_login: 'prohibit-password' }), false);
  assert.equal(when('allow_users', { allow_mode: 'users' }), true);
  assert.equal(when('allow_users', { allow_mode: 'groups' }), false);
  assert.equal(when('allow_groups', { allow_mode: 'groups' }), true);
  assert.equal(when('allow_groups', { allow_mode: 'users' }), false);
});

test('root_networks: detect joins the node\'s networks with a space (none -> no default)', () => {
  const q = question('root_networks');
  assert.equal(detectedDefault(q, factsWith()), '192.0.2.0/24');
  assert.equal(detectedDefault(q, factsWith({ networks: ['192.0.2.0/24', '10.10.10.0/24'] })), '192.0.2.0/24 10.10.10.0/24');
  assert.equal(detectedDefault(q, factsWith({ networks: [] })), undefined);
});

test('allow_users: validate refuses a name that is not a user name', async () => {
  assert.equal(await validate('allow_users', 'bob carol'), undefined);
  assert.equal(await validate('allow_users', 'bob 9lives'), '"9lives" is not a user name');
});

// --- guard ------------------------------------------------------------------

test('guard.seconds: the revert_seconds answer (a number, from its codec)', () => {
  const seconds = sshdHardeningStep.guard!.seconds;
  assert.equal(typeof seconds, 'function');
  const f = seconds as (answers: SshdAnswers) => number;
  assert.equal(f({ ...DEFAULTS, revert_seconds: 600 }), 600);
  assert.equal(f({ ...DEFAULTS, revert_seconds: 30 }), 30);
  assert.equal(f(DEFAULTS), 180);
  assert.deepEqual(sshdHardeningStep.guard!.reload, [['systemctl', 'reload', 'ssh']]);
});
