/**
 * Regression tests for what an answer may hold (issue 11, defects 3, 6 and
 * 14), through the real steps and the real answers-file parser, the runner
 * and the journal on disk: every one of them failed before the codecs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AnswersFileError, parseAnswersFile } from '../../src/cli/answers.ts';
import { ask } from '../../src/engine/questions.ts';
import { Journal } from '../../src/engine/journal.ts';
import { persistableAnswers, type Answers } from '../../src/engine/step.ts';
import { CRYPT_HASH } from '../../src/system/accounts.ts';
import { LocalExec } from '../../src/system/exec.ts';
import { LocalFiles } from '../../src/system/files.ts';
import { Secret } from '../../src/system/secret.ts';
import { adminAccountStep, type AdminAnswers } from '../../steps/admin-account.ts';
import { CATALOGUE } from '../../steps/index.ts';
import { engine } from '../fixtures/harness.ts';
import { testNode } from '../fixtures/node.ts';
import { Attempts, ScriptedOperator } from '../fixtures/operator.ts';
import { ensureFilesStep } from '../fixtures/steps.ts';
import { allFiles, tempDir } from '../fixtures/temp.ts';

const HASH = '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7';

async function problems(yaml: string | Uint8Array, fileName = 'answers.yml'): Promise<string[]> {
  try {
    await parseAnswersFile(yaml, fileName, CATALOGUE);
  } catch (error) {
    if (error instanceof AnswersFileError) return error.problems;
    throw error;
  }
  return [];
}

const admin = (lines: string[]) => ['admin-account:', '  name: alice', '  role: Administrator', ...lines].join('\n');

// --- defect 3: a password (or any text) with a line break or a control character ---

test('defect 3: a password with a line break is refused, naming admin-account.password and not echoing it', async () => {
  const found = await problems(admin(['  password: "abcdefghijkl\\nroot:hacked1234567"']));
  assert.equal(found.length, 1, found.join('\n'));
  assert.match(found[0]!, /^answers\.yml:4: admin-account\.password: must be one line: it holds a line break/);
  assert.equal(found[0]!.includes('hacked'), false, 'the password is not in the message');
  // A carriage return, a NUL and an escape are refused the same way.
  for (const bad of ['abcdefghijkl\\rroot:hacked1234567', 'abcdefghijkl\\0root', 'abcdefghijkl\\e[2J']) {
    const [problem] = await problems(admin([`  password: "${bad}"`]));
    assert.match(problem ?? '', /^answers\.yml:4: admin-account\.password: must (be one line|not contain)/, bad);
  }
});

test('defect 3: a password hash with a line break is refused too', async () => {
  const [problem] = await problems(admin([`  password_hash: "${HASH}\\nroot:${HASH}"`]));
  assert.match(problem ?? '', /^answers\.yml:4: admin-account\.password_hash: must be one line/);
});

test('defect 3: the chpasswd line is one line, and a password that is not can never be planned', () => {
  const facts = { accounts: { users: [], groups: [], passwords: new Map() }, sudoInstalled: true, pveUsers: [], acl: [] };
  const answers: AdminAnswers = { name: 'alice', role: 'Administrator', email: '', comment: '', password: new Secret('a good password 1') };
  const chpasswd = adminAccountStep.plan(facts, answers, testNode).find((c) => c.kind === 'command' && c.argv[0] === 'chpasswd');
  assert.ok(chpasswd?.kind === 'command' && chpasswd.input instanceof Secret);
  assert.equal(chpasswd.input.reveal(), 'alice:a good password 1\n');
  // Even handed to the step directly, past every codec, it does not reach chpasswd.
  assert.throws(() => adminAccountStep.plan(facts, { ...answers, password: new Secret('abcdefghijkl\nroot:hacked1234567') }, testNode), /not a single line/);
});

test('defect 3: in the wizard, the same password is refused by the same codec and asked again', async (t) => {
  const dir = await tempDir(t);
  const step = ensureFilesStep({
    id: 'pw',
    files: [{ path: path.join(dir, 'etc-file'), content: 'x\n' }],
    questions: [ask.password({ id: 'password', prompt: 'Password', minLength: 12 })],
  });
  const operator = new ScriptedOperator({ 'pw.password': new Attempts(new Secret('abcdefghijkl\nroot:hacked1234567'), new Secret('a good password 1')) });
  const { runner } = engine({ stateDir: path.join(dir, 'state'), steps: [step], operator });
  await runner.run();
  assert.equal(operator.asked.length, 2);
  assert.match(operator.asked[1]!.error ?? '', /^must be one line: it holds a line break/);
});

test('defect 3: texts have a length limit and no escape sequences (comment, email, name)', async () => {
  assert.deepEqual(await problems(admin(['  comment: "Alice \\e[2J\\e[31mExample"'])), [
    'answers.yml:4: admin-account.comment: must not contain control characters (it holds U+001B, an escape that starts a terminal control sequence)',
  ]);
  assert.deepEqual(await problems(admin([`  comment: ${'a'.repeat(100_000)}`])), ['answers.yml:4: admin-account.comment: is 100000 characters long; at most 200 are allowed']);
  assert.deepEqual(await problems(admin([`  email: ${'a'.repeat(250)}@example.com`])), ['answers.yml:4: admin-account.email: is 262 characters long; at most 254 are allowed']);
  assert.deepEqual(await problems(['admin-account:', `  name: ${'a'.repeat(40)}`].join('\n')), ['answers.yml:2: admin-account.name: is 40 characters long; Linux allows at most 32']);
  // A comment in the limit, plain, passes.
  assert.deepEqual(await problems(admin(['  comment: Alice Example', `  password_hash: "${HASH}"`])), []);
});

// --- defect 6: a password hash is a secret --------------------------------------

test('defect 6: password_hash is a secret: never in the journal file, from an answers file through the runner', async (t) => {
  const dir = await tempDir(t);
  const stateDir = path.join(dir, 'state');
  const step = ensureFilesStep({
    id: 'account',
    files: [{ path: path.join(dir, 'account.conf'), content: (a: Answers) => `user ${String(a.user)}\n` }],
    questions: [
      ask.text({ id: 'user', prompt: 'User', maxLength: 32 }),
      ask.secretText({ id: 'password_hash', prompt: 'Hash', fileOnly: true, maxLength: 512, check: (v) => (CRYPT_HASH.test(v) ? undefined : 'wants a crypt(3) hash') }),
    ],
  });
  const preset = await parseAnswersFile(`account:\n  user: alice\n  password_hash: "${HASH}"\n`, 'answers.yml', [step]);
  assert.ok(preset.account!.password_hash instanceof Secret, 'the codec makes it a Secret');
  const { runner, journal } = engine({ stateDir, steps: [step], presetAnswers: preset });
  const [result] = await runner.run();
  assert.equal(result!.outcome, 'verified');
  assert.deepEqual(journal.step('account')!.answers, { user: 'alice' });
  const journalBytes = await readFile(path.join(stateDir, 'journal.json'));
  assert.ok(journalBytes.includes('alice'), 'the journal holds the answers it may');
  for (const f of await allFiles(stateDir)) {
    assert.equal(f.bytes.includes(HASH), false, `${f.path} holds the hash`);
    assert.equal(f.bytes.includes('$y$j9T$'), false, `${f.path} holds part of the hash`);
  }
});

test('defect 6: the admin step marks password_hash secret, so even a plain string is not persisted', () => {
  const kept = persistableAnswers(adminAccountStep, { name: 'alice', role: 'Administrator', password_hash: HASH });
  assert.deepEqual(kept, { name: 'alice', role: 'Administrator' });
});

test('defect 6: status and status --json never print a password hash, even one an older version journaled', async (t) => {
  const dir = await tempDir(t);
  const stateDir = path.join(dir, 'state');
  const old = Journal.open(stateDir, 'boot-1');
  old.setAnswers('admin-account', { name: 'alice', role: 'Administrator', password_hash: HASH });
  old.setAnswers('retired-step', { token: 'tok-value-123' });
  const { statusCommand } = await import('../../src/cli/commands/status.ts');
  const runtime = { exec: new LocalExec(), files: new LocalFiles(), node: { ...testNode, isRoot: true }, stateDir, backupsDir: path.join(stateDir, 'backups') };
  for (const json of [false, true]) {
    const out: string[] = [];
    await statusCommand(runtime, CATALOGUE, { json }, { out: (l) => out.push(l), err: (l) => out.push(l) });
    const text = out.join('\n');
    assert.ok(text.includes('alice'), text);
    assert.equal(text.includes('$y$'), false, `status${json ? ' --json' : ''} printed the hash:\n${text}`);
    assert.equal(text.includes('tok-value-123'), false, 'answers of a step this version does not know are not printed');
  }
});

// --- defect 14: validation gaps -------------------------------------------------

const sshd = (lines: string[]) => ['sshd-hardening:', '  root_login: networks', ...lines].join('\n');

test('defect 14: root networks of every address (0.0.0.0/0, ::/0) are refused, saying why and what to choose', async () => {
  for (const everything of ['0.0.0.0/0', '::/0', '10.0.0.0/8 0.0.0.0/0']) {
    const found = await problems(sshd([`  root_networks: ${everything}`]));
    assert.equal(found.length, 1, everything);
    assert.match(found[0]!, /^answers\.yml:3: sshd-hardening\.root_networks: "(0\.0\.0\.0|::)\/0" is every IPv[46] address, which restricts nothing; to let root in from anywhere, choose "With a key only, from anywhere" \(root_login: prohibit-password\) instead$/);
  }
});

test('defect 14: networks with host bits set are refused naming the network meant, IPv6 as IPv4', async () => {
  assert.deepEqual(await problems(sshd(['  root_networks: fd00::1/64'])), ['answers.yml:3: sshd-hardening.root_networks: "fd00::1/64" has host bits set: the network is fd00::/64']);
  assert.deepEqual(await problems(sshd(['  root_networks: [10.0.0.0/24, 10.1.2.3/16]'])), ['answers.yml:3: sshd-hardening.root_networks: "10.1.2.3/16" has host bits set: the network is 10.1.0.0/16']);
  // Correct networks pass, as a line or a YAML list, and come back in canonical form.
  const parsed = await parseAnswersFile(sshd(['  root_networks: [10.0.0.0/24, "FD00:0::/64", 192.0.2.7]']), 'answers.yml', CATALOGUE);
  assert.deepEqual(parsed['sshd-hardening']!.root_networks, ['10.0.0.0/24', 'fd00::/64', '192.0.2.7']);
});

test('defect 14: the break-glass account may not be the admin, refused naming break-glass.name', async () => {
  const found = await problems(['break-glass:', '  wanted: yes', '  name: alice', 'admin-account:', '  name: alice', '  role: Administrator'].join('\n'));
  assert.deepEqual(found, [
    'answers.yml:3: break-glass.name: alice is the admin account (admin-account.name); the break-glass account must be a separate one, for the day the admin cannot log in',
  ]);
  assert.deepEqual(await problems(['admin-account:', '  name: alice', 'break-glass:', '  wanted: yes', '  name: breakglass'].join('\n')), []);
});

test('defect 14: an answers file that names no step is refused, listing the steps it could name', async () => {
  const steps = CATALOGUE.map((s) => s.id).join(', ');
  for (const empty of ['', '# nothing\n', 'version: 1\n']) {
    assert.deepEqual(await problems(empty), [`answers.yml: names no step (an empty answers file decides nothing); give a section per step to apply (steps: ${steps}; "STEP: {}" takes a step's defaults)`], JSON.stringify(empty));
  }
});

test('defect 14: YAML tags beyond the plain types are refused naming the line; so are aliases', async () => {
  assert.deepEqual(await problems(admin(['  comment: !!binary QWxpY2U='])), [
    'answers.yml:4: the YAML tag !!binary is not allowed: answers are plain text, numbers, yes/no or lists',
  ]);
  assert.deepEqual(await problems(admin(['  comment: !foo Alice'])), ['answers.yml:4: the YAML tag !foo is not allowed: answers are plain text, numbers, yes/no or lists']);
  assert.deepEqual(await problems(['admin-account:', '  name: &n alice', '  role: Administrator', '  comment: *n'].join('\n')), [
    'answers.yml:4: an alias (*n): write the value itself; answers files use no anchors or aliases',
  ]);
  // The plain tags are fine.
  assert.deepEqual(await problems(admin(['  comment: !!str Alice'])), []);
});

test('defect 14: a file that is not UTF-8 is refused as such, naming the file', async () => {
  const latin1 = Buffer.from('admin-account:\n  name: alice\n  role: Administrator\n  comment: Jos\xe9\n', 'latin1');
  assert.deepEqual(await problems(latin1, 'site.yml'), ['site.yml: not UTF-8 text; save the answers file as UTF-8']);
  assert.deepEqual(await problems(Buffer.from(admin(['  comment: José']), 'utf8')), []);
});

test('defect 3: a password and a password hash together are refused, whichever comes first, echoing neither', async () => {
  const both = await problems(admin([`  password_hash: "${HASH}"`, '  password: "correct horse battery"']));
  assert.deepEqual(both, ['answers.yml:5: admin-account.password: give either password or password_hash, not both']);
  const reversed = await problems(admin(['  password: "correct horse battery"', `  password_hash: "${HASH}"`]));
  assert.deepEqual(reversed, ['answers.yml:5: admin-account.password_hash: give either password or password_hash, not both']);
});

test('a key that is not a plausible id is not echoed: no escape sequence reaches the terminal, no line of a file named by mistake', async () => {
  const found = await problems('"sysctl\\e[2J": {}\nadmin-account:\n  "name\\e]0;owned\\a": alice\nroot:$y$j9T$abc:20228:0:99999:7::\n');
  const steps = CATALOGUE.map((s) => s.id).join(', ');
  assert.deepEqual(found, [
    `answers.yml:1: (this key): not a step (steps: ${steps})`,
    'answers.yml:3: admin-account.(this key): not a question of step admin-account (questions: name, role, email, comment, password_hash, password)',
    `answers.yml:4: (this key): not a step (steps: ${steps})`,
  ]);
  // A plausible id is named, so a typo is easy to find.
  assert.deepEqual(await problems('sysctl: {}\nsshd-hardning: {}\n'), [`answers.yml:2: sshd-hardning: not a step (steps: ${steps})`]);
});
