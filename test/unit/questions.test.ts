import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applicableQuestions, detectedDefault, validateAnswer } from '../../src/engine/questions.ts';
import { Secret } from '../../src/engine/secret.ts';
import type { ConfirmQuestion, PasswordQuestion, Question, SelectQuestion, TextQuestion } from '../../src/engine/step.ts';

const text: TextQuestion<{ user: string }> = {
  kind: 'text',
  id: 'admin',
  prompt: 'Admin account',
  detect: (f) => f.user,
  validate: (v, answers) => (/^[a-z_][a-z0-9_-]*$/.test(v) ? (v === answers.reserved ? `${v} is taken` : undefined) : 'a Linux user name: lower case letters, digits, - and _'),
};
const password: PasswordQuestion = { kind: 'password', id: 'pw', prompt: 'Password', minLength: 12, validate: (v) => (/\d/.test(v) ? undefined : 'needs a digit') };
const select: SelectQuestion = {
  kind: 'select',
  id: 'repo',
  prompt: 'Repository',
  choices: [
    { value: 'enterprise', label: 'Enterprise' },
    { value: 'no-subscription', label: 'No subscription' },
  ],
  detect: () => 'enterprise',
};
const confirm: ConfirmQuestion = { kind: 'confirm', id: 'ok', prompt: 'OK?' };

describe('validateAnswer: text', () => {
  it('trims, accepts numbers as text, and runs the question\'s own check with the answers so far', async () => {
    assert.deepEqual(await validateAnswer(text, '  alice '), { ok: true, value: 'alice' });
    assert.deepEqual(await validateAnswer({ kind: 'text', id: 'port', prompt: 'Port' }, 2222), { ok: true, value: '2222' });
    assert.deepEqual(await validateAnswer(text, 'Alice!'), { ok: false, message: 'a Linux user name: lower case letters, digits, - and _' });
    assert.deepEqual(await validateAnswer(text, 'bob', { reserved: 'bob' }), { ok: false, message: 'bob is taken' });
  });

  it('refuses empty and non-text answers', async () => {
    assert.deepEqual(await validateAnswer(text, '   '), { ok: false, message: 'must not be empty' });
    assert.deepEqual(await validateAnswer(text, true), { ok: false, message: 'wants text' });
    // A missing value (YAML `name:`) reads as empty.
    assert.deepEqual(await validateAnswer(text, undefined), { ok: false, message: 'must not be empty' });
    assert.deepEqual(await validateAnswer(text, ['a']), { ok: false, message: 'wants text' });
  });
});

describe('validateAnswer: password', () => {
  it('turns a valid password into a Secret, from a string or a Secret', async () => {
    for (const raw of ['s3cret-passw0rd', new Secret('s3cret-passw0rd')]) {
      const v = await validateAnswer(password, raw);
      assert.ok(v.ok);
      assert.ok(v.value instanceof Secret);
      assert.equal(v.value.reveal(), 's3cret-passw0rd');
    }
  });

  it('does not trim a password', async () => {
    const v = await validateAnswer(password, ' padded pass 1 ');
    assert.ok(v.ok && v.value instanceof Secret);
    assert.equal(v.value.reveal(), ' padded pass 1 ');
  });

  it('says how long it must be, what else it needs, and that it wants text', async () => {
    assert.deepEqual(await validateAnswer(password, 'short1'), { ok: false, message: 'must be at least 12 characters long' });
    assert.deepEqual(await validateAnswer(password, new Secret('short1')), { ok: false, message: 'must be at least 12 characters long' });
    assert.deepEqual(await validateAnswer(password, 'long-enough-but-no-digit'), { ok: false, message: 'needs a digit' });
    assert.deepEqual(await validateAnswer(password, 123456789012345), { ok: false, message: 'wants a password (text)' });
  });

  it('never echoes the password in a message', async () => {
    const v = await validateAnswer(password, 'tooShort');
    assert.ok(!v.ok);
    assert.equal(v.message.includes('tooShort'), false);
  });
});

describe('validateAnswer: select', () => {
  it('accepts one of the choices and lists them otherwise', async () => {
    assert.deepEqual(await validateAnswer(select, 'no-subscription'), { ok: true, value: 'no-subscription' });
    assert.deepEqual(await validateAnswer(select, 'test'), { ok: false, message: 'must be one of: enterprise, no-subscription' });
    assert.deepEqual(await validateAnswer(select, 'Enterprise'), { ok: false, message: 'must be one of: enterprise, no-subscription' });
    assert.deepEqual(await validateAnswer(select, 1), { ok: false, message: 'must be one of: enterprise, no-subscription' });
  });
});

describe('validateAnswer: confirm', () => {
  it('accepts booleans and the usual words, any case, with spaces', async () => {
    for (const yes of [true, 'yes', 'Y', ' TRUE ', 'on', '1', 1]) assert.deepEqual(await validateAnswer(confirm, yes), { ok: true, value: true }, String(yes));
    for (const no of [false, 'no', 'N', 'False', 'off', '0', 0]) assert.deepEqual(await validateAnswer(confirm, no), { ok: true, value: false }, String(no));
  });

  it('wants yes or no otherwise', async () => {
    for (const raw of ['maybe', '', 'yess', undefined, null]) assert.deepEqual(await validateAnswer(confirm, raw), { ok: false, message: 'wants yes or no' });
  });
});

describe('detectedDefault and applicableQuestions', () => {
  it('offers the detected default, never for a password', async () => {
    assert.equal(detectedDefault(text, { user: 'alice' }), 'alice');
    assert.equal(detectedDefault(select as Question<unknown>, {}), 'enterprise');
    assert.equal(detectedDefault(confirm as Question<unknown>, {}), undefined);
    const sneaky = { ...password, detect: () => 'leaked' } as unknown as Question<unknown>;
    assert.equal(detectedDefault(sneaky, {}), undefined);
  });

  it('keeps only the questions whose `when` holds, in order', () => {
    const qs: Question<{ clustered: boolean }>[] = [
      { kind: 'confirm', id: 'breakglass', prompt: 'Break-glass account?' },
      { kind: 'text', id: 'bgname', prompt: 'Its name', when: (a) => a.breakglass === true },
      { kind: 'text', id: 'corosync', prompt: 'Cluster network', when: (_a, f) => f.clustered },
    ];
    assert.deepEqual(
      applicableQuestions(qs, {}, { clustered: false }).map((q) => q.id),
      ['breakglass'],
    );
    assert.deepEqual(
      applicableQuestions(qs, { breakglass: true }, { clustered: true }).map((q) => q.id),
      ['breakglass', 'bgname', 'corosync'],
    );
  });
});
