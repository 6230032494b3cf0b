import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswersFileError, parseAnswersFile } from '../../src/cli/answers.ts';
import { Secret } from '../../src/system/secret.ts';
import type { Step } from '../../src/engine/step.ts';

const admin: Step<null> = {
  id: 'admin-account',
  title: 'Admin account',
  summary: 'x',
  scope: 'node',
  risk: 'safe',
  questions: [
    { id: 'name', kind: 'text', prompt: 'Name', validate: (v) => (/^[a-z][a-z0-9-]*$/.test(v) ? undefined : 'wants lower-case letters, digits and dashes, starting with a letter') },
    { id: 'role', kind: 'select', prompt: 'Role', choices: [{ value: 'Administrator', label: 'Administrator' }, { value: 'PVEAdmin', label: 'PVEAdmin' }] },
    { id: 'sudo', kind: 'confirm', prompt: 'Sudo?' },
    { id: 'password', kind: 'password', prompt: 'Password', minLength: 8 },
  ],
  async probe() {
    return null;
  },
  plan: () => [],
  async verify() {
    return [];
  },
};

async function problems(yaml: string): Promise<string[]> {
  try {
    await parseAnswersFile(yaml, 'answers.yml', [admin]);
  } catch (error) {
    if (error instanceof AnswersFileError) return error.problems;
    throw error;
  }
  return [];
}

test('valid answers come back typed, passwords as Secrets', async () => {
  const parsed = await parseAnswersFile('version: 1\nadmin-account:\n  name: alice\n  role: PVEAdmin\n  sudo: yes\n  password: "long enough pw"\n', 'answers.yml', [admin]);
  const a = parsed['admin-account']!;
  assert.equal(a.name, 'alice');
  assert.equal(a.role, 'PVEAdmin');
  assert.equal(a.sudo, true);
  assert.ok(a.password instanceof Secret);
  assert.equal(JSON.stringify(a), '{"name":"alice","role":"PVEAdmin","sudo":true,"password":"[secret]"}');
});

test('every problem is reported at once, each with its line and field', async () => {
  const found = await problems(['admin-account:', '  name: Alice', '  role: root', '  sudo: maybe', '  password: short', '  shell: /bin/zsh', 'firewall:', '  on: true'].join('\n'));
  assert.deepEqual(found, [
    'answers.yml:2: admin-account.name: wants lower-case letters, digits and dashes, starting with a letter',
    'answers.yml:3: admin-account.role: must be one of: Administrator, PVEAdmin',
    'answers.yml:4: admin-account.sudo: wants yes or no',
    'answers.yml:5: admin-account.password: must be at least 8 characters long',
    'answers.yml:6: admin-account.shell: not a question of step admin-account (questions: name, role, sudo, password)',
    'answers.yml:7: firewall: not a step (steps: admin-account)',
  ]);
});

test('structure errors', async () => {
  assert.deepEqual(await problems('admin-account: alice\n'), ['answers.yml:1: admin-account: wants a mapping of question ids to answers']);
  assert.deepEqual(await problems('admin-account:\n  name: [a, b]\n'), ['answers.yml:2: admin-account.name: wants text']);
  assert.match((await problems('admin-account:\n  name: a\n  name: b\n'))[0]!, /^answers\.yml:3:\d+: not valid YAML: Map keys must be unique/);
  // A file that names no step decides nothing: refused, naming the steps it could have.
  const none = ['answers.yml: names no step (an empty answers file decides nothing); give a section per step to apply (steps: admin-account; "STEP: {}" takes a step\'s defaults)'];
  assert.deepEqual(await problems(''), none);
  assert.deepEqual(await problems('# only a comment\n'), none);
  assert.deepEqual(await problems('version: 1\n'), none);
  // A section with no answers is a decision: take the defaults.
  assert.deepEqual(await parseAnswersFile('admin-account: {}\n', 'answers.yml', [admin]), { 'admin-account': {} });
});
