import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applicableQuestions, ask, DEFAULT_MAX_LENGTH, detectedDefault, validateAnswer } from '../../src/engine/questions.ts';
import { Secret } from '../../src/system/secret.ts';
import { isSecretQuestion, type ConfirmQuestion, type PasswordQuestion, type Question, type SelectQuestion, type TextQuestion } from '../../src/engine/step.ts';

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

describe('codecs: every text is one line of printable characters with a length limit', () => {
  it('refuses line breaks, NUL, escapes, C1 controls and direction overrides, in a bare question too', async () => {
    const bare: TextQuestion = { kind: 'text', id: 'note', prompt: 'Note' };
    for (const [raw, message] of [
      ['a\nb', 'must be one line (it holds a line break)'],
      ['a\u2028b', 'must be one line (it holds a line break)'],
      ['a\u0000b', 'must not contain a NUL character'],
      ['a\u001b[31mb', 'must not contain control characters (it holds U+001B, an escape that starts a terminal control sequence)'],
      ['a\u009b31mb', 'must not contain control characters (it holds U+009B, an escape that starts a terminal control sequence)'],
      ['a\tb', 'must not contain control characters (it holds U+0009, a tab)'],
      ['evil\u202Etxt.exe', 'must not contain control characters (it holds U+202E, an invisible direction mark)'],
    ] as const) {
      assert.deepEqual(await validateAnswer(bare, raw), { ok: false, message }, JSON.stringify(raw));
    }
    assert.deepEqual(await validateAnswer(bare, 'x'.repeat(DEFAULT_MAX_LENGTH + 1)), { ok: false, message: `is ${DEFAULT_MAX_LENGTH + 1} characters long; at most ${DEFAULT_MAX_LENGTH} are allowed` });
  });

  it('counts characters as people do (an emoji is one) and keeps lines and tabs in multi-line text', async () => {
    const short = ask.text({ id: 'n', prompt: 'N', maxLength: 3 });
    assert.deepEqual(await validateAnswer(short, '😀😀😀'), { ok: true, value: '😀😀😀' });
    assert.equal((await validateAnswer(short, '😀😀😀😀')).ok, false);
    const lines = ask.text({ id: 'keys', prompt: 'Keys', maxLength: 100, multiline: true });
    assert.deepEqual(await validateAnswer(lines, 'a\tb\r\nc\n'), { ok: true, value: 'a\tb\nc' });
    assert.equal((await validateAnswer(lines, 'a\u001b[2Jb')).ok, false);
  });

  it('a resolved text (a file named by path) is held to the same rules as typed text', async () => {
    const q = ask.text({ id: 'keys', prompt: 'Keys', maxLength: 10, multiline: true, resolve: async (v) => (v === '/k.pub' ? 'ssh \u001b[2J' : v) });
    assert.deepEqual(await validateAnswer(q, '/k.pub'), { ok: false, message: 'must not contain control characters (it holds U+001B, an escape that starts a terminal control sequence)' });
  });

  it('passwords: no line break or control character, at most 4096 characters, never echoed', async () => {
    const v = await validateAnswer(password, 'abcdefghijk1\nroot:hacked1234567');
    assert.ok(!v.ok);
    assert.equal(v.message, 'must be one line: it holds a line break, which chpasswd would read as another account\'s line');
    assert.deepEqual(await validateAnswer(password, `a1${'x'.repeat(4095)}`), { ok: false, message: 'must be at most 4096 characters long' });
    assert.ok((await validateAnswer(password, 'ünïcödé pässwörd 1')).ok);
  });
});

describe('codecs: integer, words, networks', () => {
  it('integer: from a YAML number or typed digits, within bounds; shown as text', async () => {
    const q = ask.integer({ id: 's', prompt: 'Seconds', min: 30, max: 1800, unit: 'seconds', detect: () => 180 });
    assert.deepEqual(await validateAnswer(q, 600), { ok: true, value: 600 });
    assert.deepEqual(await validateAnswer(q, ' 45 '), { ok: true, value: 45 });
    for (const bad of [29, 1801, 30.5, '1e3', '0x40', '', null, true, ['60']]) {
      assert.deepEqual(await validateAnswer(q, bad), { ok: false, message: 'wants a whole number of seconds from 30 to 1800' }, JSON.stringify(bad));
    }
    assert.equal(detectedDefault(q, {}), '180');
  });

  it('words: a line or a YAML list, each word checked, duplicates dropped, idempotent', async () => {
    const q = ask.words({ id: 'users', prompt: 'Users', what: 'a user name', pattern: /^[a-z]+$/, maxWordLength: 8, maxWords: 3, optional: true });
    assert.deepEqual(await validateAnswer(q, 'bob, carol bob'), { ok: true, value: ['bob', 'carol'] });
    assert.deepEqual(await validateAnswer(q, ['bob', 'carol']), { ok: true, value: ['bob', 'carol'] });
    assert.deepEqual(await validateAnswer(q, ''), { ok: true, value: [] });
    assert.deepEqual(await validateAnswer(q, 'bob *'), { ok: false, message: '"*" is not a user name' });
    assert.deepEqual(await validateAnswer(q, 'a b c d'), { ok: false, message: 'at most 3 may be given' });
    assert.deepEqual(await validateAnswer(q, ['bob\u001b[2J']), { ok: false, message: '"bob\\u001b[2J" must not contain control characters (it holds U+001B, an escape that starts a terminal control sequence)' });
  });

  it('networks: canonical, host bits and every-address networks refused, IPv4-mapped and zones refused', async () => {
    const q = ask.cidrs({ id: 'nets', prompt: 'Networks', maxNetworks: 4, everything: 'choose "anywhere" instead' });
    assert.deepEqual(await validateAnswer(q, '10.0.0.0/8 FD00:0::/64 2001:db8::1'), { ok: true, value: ['10.0.0.0/8', 'fd00::/64', '2001:db8::1'] });
    const refused = async (raw: string) => {
      const v = await validateAnswer(q, raw);
      return v.ok ? undefined : v.message;
    };
    assert.equal(await refused('2001:db8::1/32'), '"2001:db8::1/32" has host bits set: the network is 2001:db8::/32');
    assert.equal(await refused('10.0.0.1/8'), '"10.0.0.1/8" has host bits set: the network is 10.0.0.0/8');
    assert.equal(await refused('::/0'), '"::/0" is every IPv6 address, which restricts nothing; choose "anywhere" instead');
    assert.equal(await refused('0.0.0.0/0'), '"0.0.0.0/0" is every IPv4 address, which restricts nothing; choose "anywhere" instead');
    assert.equal(await refused('010.0.0.0/8'), '"010.0.0.0/8" is not an address or a network (wanted e.g. 10.0.0.0/24 or fd00::/64)');
    assert.equal(await refused('10.0.0.0/33'), '"10.0.0.0/33": the prefix must be a number from 0 to 32');
    assert.equal(await refused('10.0.0.0/08'), '"10.0.0.0/08": the prefix must be a number from 0 to 32');
    assert.equal(await refused('fe80::1%eth0'), '"fe80::1%eth0": a zone index (%...) cannot be matched by sshd; give the network without it');
    assert.equal(await refused('::ffff:10.0.0.0/104'), '"::ffff:10.0.0.0/104" is an IPv4-mapped IPv6 address; sshd sees IPv4 clients as IPv4: write 10.0.0.0 instead');
    assert.equal(await refused(''), 'must not be empty (wanted e.g. 10.0.0.0/24)');
  });

  it('select: the answers of a typed union, nothing else', async () => {
    const q = ask.select({ id: 'p', prompt: 'Profile', choices: [{ value: 'compatible', label: 'C' }, { value: 'strict', label: 'S' }] });
    assert.deepEqual(await validateAnswer(q, 'strict'), { ok: true, value: 'strict' });
    assert.deepEqual(await validateAnswer(q, 'Strict'), { ok: false, message: 'must be one of: compatible, strict' });
  });

  it('a secret text is a Secret, marked secret, never offered as a default', async () => {
    const q = ask.secretText({ id: 'hash', prompt: 'Hash', maxLength: 20, fileOnly: true });
    const v = await validateAnswer(q, '$y$abc');
    assert.ok(v.ok && v.value instanceof Secret && v.value.reveal() === '$y$abc');
    assert.equal(isSecretQuestion(q), true);
    assert.equal(isSecretQuestion(ask.text({ id: 't', prompt: 'T', maxLength: 3 })), false);
  });
});
