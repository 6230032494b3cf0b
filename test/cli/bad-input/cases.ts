/**
 * The bad-input suite's cases, as data: what an attacker or a careless
 * operator gives pve-baseline (answers files, arguments, environment, hostile
 * files where it reads and writes, corrupt state), and what must come back:
 * a documented exit code, a message naming the field or the file, no stack
 * trace, no hang, nothing changed. test/cli/bad-input.test.ts runs them.
 *
 * Safety: no case may change the machine it runs on. Every `apply` is a dry
 * run or refused before anything is touched; files the tool must not write
 * through are decoys inside the case's own directory, never real system files.
 */
import type { BadInputCase, Expectation, Plant } from './types.ts';

// ---------------------------------------------------------------- material

/** A well-formed public key (ed25519), made for this suite. */
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBzMmJQ/lF5LPkyxriainemGcr9oCV76cb+ICTEJDV5Z alice@laptop';
const KEY_BLOB = 'AAAAC3NzaC1lZDI1NTE5AAAAIBzMmJQ/lF5LPkyxriainemGcr9oCV76cb+ICTEJDV5Z';
/** A private key as people paste one by mistake (body shortened; it must never be echoed). */
const PRIVATE_KEY = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACAczJiUP5ReVhDDPN3cBoFkYmFkYmFkYmFkYmFkYmFkYmFkYmFkYmFkYgAA
-----END OPENSSH PRIVATE KEY-----
`;
const PRIVATE_BODY = /b3BlbnNzaC1rZXktdjEA/;
/** A line of /etc/shadow with a hash: read as a key or an answers file, it must never reach the output. */
const SHADOW_LINE = /\broot:[^:\s]*:\d{3,}:/;
/** A valid crypt(3) hash (SHA-512 form) of no real password. */
const HASH = '$6$pveBaselineSalt$' + 'a'.repeat(86);
const ANSWERS = 'answers.yml';
const DRY = ['apply', '--answers', ANSWERS, '--dry-run'];
/** A valid answers file for the cases about something else (a dry run of the sysctl step only). */
const VALID = 'version: 1\nsysctl: {}\n';
const DRY_SYSCTL = ['apply', '--answers', ANSWERS, '--dry-run', '--only', 'sysctl'];

const q = (s: string) => JSON.stringify(s);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The answers file's error names the file, the line and the field: `answers.yml:4: admin-account.comment: ...`. */
const names = (field: string) => new RegExp(`${esc(ANSWERS)}:\\d+\\b.*\\b${esc(field)}\\b`);
const namesFile = (file: string) => new RegExp(esc(file));
const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

const answersFile = (content: Plant['content'], extra: Partial<Plant> = {}): Plant => ({ path: ANSWERS, content, mode: 0o600, ...extra });

function answersCase(name: string, content: string | Uint8Array, expect: Partial<Expectation> & { message: RegExp }, extra: Partial<BadInputCase> = {}): BadInputCase {
  return { name, group: 'answers', argv: DRY, plant: [answersFile(content)], ...extra, expect: { exit: 2, ...expect } };
}

/** One bad value for one question: `section:\n  field: VALUE`, refused naming section.field. */
function fieldCase(section: string, field: string, value: string, why: string, extra: { before?: string; forbid?: RegExp[] } = {}): BadInputCase {
  return answersCase(`answers: ${section}.${field} ${why}`, `version: 1\n${section}:\n${extra.before ?? ''}  ${field}: ${value}\n`, {
    message: names(`${section}.${field}`),
    ...(extra.forbid ? { forbid: extra.forbid } : {}),
  });
}

// ---------------------------------------------------------------- answers: every field

const TEXT_ATTACKS: [string, string][] = [
  ['with a line break', '"alice\\nroot"'],
  ['with a NUL byte', '"alice\\0root"'],
  ['with an ANSI escape', '"alice\\e[2J\\e[31m"'],
  ['as a list', '[alice, bob]'],
  ['as a mapping', '{first: alice}'],
];

const fieldCases: BadInputCase[] = [
  // admin-account.name
  ...TEXT_ATTACKS.map(([why, v]) => fieldCase('admin-account', 'name', v, why)),
  fieldCase('admin-account', 'name', '""', 'empty'),
  fieldCase('admin-account', 'name', q('a'.repeat(300)), '300 characters long'),
  fieldCase('admin-account', 'name', 'root', 'root itself'),
  fieldCase('admin-account', 'name', q('-alice'), 'starting with a dash (an option to useradd)'),
  fieldCase('admin-account', 'name', q('alice;reboot'), 'with a shell metacharacter'),
  // admin-account.role
  fieldCase('admin-account', 'role', 'Root', 'not a choice'),
  fieldCase('admin-account', 'role', '[Administrator]', 'as a list'),
  fieldCase('admin-account', 'role', '1', 'as a number'),
  // admin-account.email
  fieldCase('admin-account', 'email', 'not-an-email', 'not an address'),
  fieldCase('admin-account', 'email', '"alice@example.com\\nroot@example.com"', 'with a line break'),
  fieldCase('admin-account', 'email', q(`${'a'.repeat(300)}@example.com`), '300 characters long'),
  // admin-account.comment
  fieldCase('admin-account', 'comment', '"Alice\\nroot:x:0:0::/root:/bin/bash"', 'with a line break (a passwd line)'),
  fieldCase('admin-account', 'comment', '"Alice:Example"', 'with a colon'),
  fieldCase('admin-account', 'comment', '"Alice \\e]0;owned\\a\\e[2J"', 'with ANSI and OSC escapes'),
  fieldCase('admin-account', 'comment', q('x'.repeat(100_000)), '100,000 characters long'),
  fieldCase('admin-account', 'comment', '"Alice\\0Example"', 'with a NUL byte'),
  fieldCase('admin-account', 'comment', '"Alice\\u009b2J"', 'with a C1 control (CSI)'),
  // admin-account.password_hash
  fieldCase('admin-account', 'password_hash', 'notahash', 'not a crypt(3) hash'),
  fieldCase('admin-account', 'password_hash', q(`${HASH}\nroot:${HASH}`), 'with a line break (a second chpasswd line)', { forbid: [new RegExp(esc(HASH))] }),
  fieldCase('admin-account', 'password_hash', q(`${HASH}:root`), 'with a colon', { forbid: [new RegExp(esc(HASH))] }),
  fieldCase('admin-account', 'password_hash', q(`$6$${'a'.repeat(100_000)}`), '100,000 characters long'),
  // admin-account.password
  fieldCase('admin-account', 'password', '"abcdefghijkl\\nroot:hacked1234567"', 'with a line break (sets root\'s password through chpasswd)', { forbid: [/hacked1234567/, /abcdefghijkl/] }),
  fieldCase('admin-account', 'password', '"abcdefghijkl\\rroot:hacked1234567"', 'with a carriage return', { forbid: [/hacked1234567/] }),
  fieldCase('admin-account', 'password', '"abcdefghijkl\\0hacked1234567"', 'with a NUL byte', { forbid: [/hacked1234567/] }),
  fieldCase('admin-account', 'password', '"abcdefghijkl\\e[2Jhacked1234567"', 'with an ANSI escape', { forbid: [/hacked1234567/] }),
  fieldCase('admin-account', 'password', '"short"', 'too short'),
  fieldCase('admin-account', 'password', '[abcdefghijklmnop]', 'as a list', { forbid: [/abcdefghijklmnop/] }),
  fieldCase('admin-account', 'password', q('p'.repeat(100_000)), '100,000 characters long'),
  answersCase(
    'answers: admin-account.password and password_hash both given',
    `version: 1\nadmin-account:\n  name: alice\n  password_hash: ${q(HASH)}\n  password: ${q('correct horse battery')}\n`,
    { message: /admin-account\.password/, forbid: [/correct horse battery/, new RegExp(esc(HASH))] },
  ),
  // ssh-key.keys (text)
  fieldCase('ssh-key', 'keys', q('not a key'), 'not a key'),
  fieldCase('ssh-key', 'keys', q('ssh-ed25519 AAAA'), 'a truncated key'),
  fieldCase('ssh-key', 'keys', q(`${KEY}\u001b[2J\u001b]0;owned\u0007`), 'with ANSI escapes in the comment'),
  fieldCase('ssh-key', 'keys', q(`ssh-ed25519 ${KEY_BLOB} alice\u0000root`), 'with a NUL byte'),
  fieldCase('ssh-key', 'keys', q(PRIVATE_KEY), 'a pasted private key', { forbid: [PRIVATE_BODY] }),
  fieldCase('ssh-key', 'keys', `[${q(KEY)}]`, 'as a list'),
  fieldCase('ssh-key', 'keys', q(`from="10.0.0.0/8 ${KEY}`), 'with an unterminated quote in its options'),
  fieldCase('ssh-key', 'keys', q(`frobnicate,no-pty ${KEY}`), 'with an option OpenSSH does not know'),
  // ssh-key.keep_options / also_root
  fieldCase('ssh-key', 'keep_options', 'maybe', 'not yes or no', { before: `  keys: ${q(`from="10.0.0.0/8",command="/usr/local/bin/backup --dir /srv",no-pty ${KEY}`)}\n` }),
  fieldCase('ssh-key', 'keep_options', '[yes]', 'as a list', { before: `  keys: ${q(`from="10.0.0.0/8",no-pty ${KEY}`)}\n` }),
  fieldCase('ssh-key', 'also_root', 'perhaps', 'not yes or no'),
  // break-glass
  fieldCase('break-glass', 'wanted', 'sure', 'not yes or no'),
  fieldCase('break-glass', 'wanted', '[yes]', 'as a list'),
  fieldCase('break-glass', 'name', '"breakglass\\nroot"', 'with a line break', { before: '  wanted: yes\n' }),
  fieldCase('break-glass', 'name', q('-breakglass'), 'starting with a dash', { before: '  wanted: yes\n' }),
  fieldCase('break-glass', 'name', '"bg\\e[2J"', 'with an ANSI escape', { before: '  wanted: yes\n' }),
  answersCase(
    'answers: break-glass.name the same account as the admin',
    `version: 1\nadmin-account:\n  name: alice\n  password_hash: ${q(HASH)}\nbreak-glass:\n  wanted: yes\n  name: alice\n`,
    { message: names('break-glass.name') },
  ),
  // sshd-hardening
  fieldCase('sshd-hardening', 'root_login', 'yes', 'not a choice'),
  fieldCase('sshd-hardening', 'root_networks', '0.0.0.0/0', 'the whole IPv4 internet', { before: '  root_login: networks\n' }),
  fieldCase('sshd-hardening', 'root_networks', '"::/0"', 'the whole IPv6 internet', { before: '  root_login: networks\n' }),
  fieldCase('sshd-hardening', 'root_networks', '"fd00::1/64"', 'an IPv6 network with host bits', { before: '  root_login: networks\n' }),
  fieldCase('sshd-hardening', 'root_networks', '10.0.0.1/24', 'an IPv4 network with host bits', { before: '  root_login: networks\n' }),
  fieldCase('sshd-hardening', 'root_networks', 'banana', 'not a network', { before: '  root_login: networks\n' }),
  fieldCase('sshd-hardening', 'root_networks', '"10.0.0.0/8\\nMatch all"', 'with a line break (an sshd_config injection)', { before: '  root_login: networks\n' }),
  fieldCase('sshd-hardening', 'allow_mode', 'everyone', 'not a choice'),
  fieldCase('sshd-hardening', 'allow_users', '"bob!"', 'not a user name'),
  fieldCase('sshd-hardening', 'allow_users', '"bob\\nPermitRootLogin yes"', 'with a line break (an sshd_config injection)'),
  fieldCase('sshd-hardening', 'allow_groups', 'no-such-group-here', 'a group that does not exist', { before: '  allow_mode: groups\n' }),
  fieldCase('sshd-hardening', 'allow_groups', '"sudo\\0root"', 'with a NUL byte', { before: '  allow_mode: groups\n' }),
  fieldCase('sshd-hardening', 'profile', 'weak', 'not a choice'),
  fieldCase('sshd-hardening', 'revert_seconds', '10', 'below 30'),
  fieldCase('sshd-hardening', 'revert_seconds', '99999', 'above 1800'),
  // firewall
  fieldCase('firewall', 'management', '0.0.0.0/0', 'the whole IPv4 internet (the firewall would keep nobody out)'),
  fieldCase('firewall', 'management', '"::/0"', 'the whole IPv6 internet'),
  fieldCase('firewall', 'management', '10.77.9.1/24', 'an address with host bits (which was meant, the host or the network?)'),
  fieldCase('firewall', 'management', '"10.0.0.0/8 +management"', 'an ipset reference (pvesh would take it as a name)'),
  fieldCase('firewall', 'management', '"10.0.0.1 --comment x"', 'an option smuggled into the pvesh argv'),
  fieldCase('firewall', 'management', '[]', 'empty (nobody could manage the node)'),
  fieldCase('firewall', 'icmp', 'sometimes', 'not a choice'),
  fieldCase('firewall', 'cluster_networks', 'banana', 'not a network'),
  fieldCase('firewall', 'revert_seconds', '5', 'below 30'),
  fieldCase('sshd-hardening', 'revert_seconds', 'abc', 'not a number'),
  // steps that ask nothing, unknown fields
  answersCase('answers: sysctl with a field (it asks none)', 'version: 1\nsysctl:\n  profile: strict\n', { message: names('sysctl.profile') }),
  answersCase('answers: sysctl as a list', 'version: 1\nsysctl: [a, b]\n', { message: /answers\.yml:\d+\b.*\bsysctl\b/ }),
  answersCase('answers: access-policy with an unknown field', 'version: 1\naccess-policy:\n  out: /etc/passwd\n', { message: names('access-policy.out') }),
  answersCase('answers: admin-account with an unknown field', 'version: 1\nadmin-account:\n  name: alice\n  shell: /bin/sh\n', { message: names('admin-account.shell') }),
  answersCase('answers: a field name with an ANSI escape', 'version: 1\nadmin-account:\n  "name\\e[2J": alice\n', { message: /answers\.yml:\d+\b.*\badmin-account\b/ }),
];

// ---------------------------------------------------------------- answers: the file as a whole

const fileCases: BadInputCase[] = [
  answersCase('answers: an unknown step', 'version: 1\nfirewall-of-doom: {}\n', { message: /answers\.yml:2\b.*firewall-of-doom/ }),
  answersCase('answers: a step id with an ANSI escape', 'version: 1\n"sysctl\\e[2J": {}\n', { message: /answers\.yml:2\b.*not a step/ }),
  answersCase('answers: a complex (list) key', 'version: 1\n? [a, b]\n: c\n', { message: /answers\.yml:2\b/ }),
  answersCase('answers: version 2', 'version: 2\nsysctl: {}\n', { message: /answers\.yml:1\b.*version/ }),
  answersCase('answers: the top level is a list', '- sysctl\n- admin-account\n', { message: /answers\.yml/ }),
  answersCase('answers: not YAML at all', 'version: 1\nsysctl: {\n  : : ]\n', { message: /answers\.yml:\d+/ }),
  answersCase('answers: indented with a tab', 'version: 1\nadmin-account:\n\tname: alice\n', { message: /answers\.yml:\d+/ }),
  answersCase('answers: a duplicate field', 'version: 1\nadmin-account:\n  name: alice\n  name: mallory\n', { message: /answers\.yml:4\b/ }),
  answersCase('answers: a duplicate step section', 'version: 1\nsysctl: {}\nsysctl: {}\n', { message: /answers\.yml:3\b/ }),
  answersCase('answers: two YAML documents', 'version: 1\nsysctl: {}\n---\nadmin-account:\n  name: mallory\n', { message: /answers\.yml/ }),
  answersCase(
    'answers: a billion-laughs anchor bomb',
    [
      'version: 1',
      'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
      'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
      'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
      'h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]',
      'admin-account:',
      '  comment: *h',
      '',
    ].join('\n'),
    { message: /answers\.yml/ },
  ),
  answersCase(
    'answers: an anchor bomb inside a question',
    [
      'version: 1',
      'admin-account:',
      '  name: &a [x, x, x, x, x, x, x, x, x, x]',
      '  comment: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      '  email: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'ssh-key:',
      '  keys: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
      '',
    ].join('\n'),
    { message: /answers\.yml/ },
  ),
  answersCase('answers: an unknown local tag', 'version: 1\nadmin-account:\n  name: !shell "rm -rf /"\n', { message: /answers\.yml:3\b.*tag/i }),
  answersCase('answers: a python object tag', 'version: 1\nadmin-account:\n  comment: !!python/object/apply:os.system ["id"]\n', { message: /answers\.yml:3\b.*tag/i }),
  answersCase('answers: a merge key', 'version: 1\nbase: &base {name: alice}\nadmin-account:\n  <<: *base\n', { message: /answers\.yml:\d+/ }),
  answersCase('answers: an empty file', '', { message: /answers\.yml/ }),
  answersCase('answers: only comments', '# nothing here yet\n# admin-account:\n#   name: alice\n', { message: /answers\.yml/ }),
  answersCase('answers: an empty mapping ({})', '{}\n', { message: /answers\.yml/ }),
  answersCase('answers: only a version', 'version: 1\n', { message: /answers\.yml/ }),
  answersCase('answers: a byte order mark, then an unknown field on line 3', '\uFEFFversion: 1\nadmin-account:\n  frob: 1\n', { message: /answers\.yml:3\b.*admin-account\.frob/ }),
  answersCase('answers: CRLF line endings, then an unknown field on line 3', 'version: 1\r\nadmin-account:\r\n  frob: 1\r\n', { message: /answers\.yml:3\b.*admin-account\.frob/ }),
  answersCase('answers: UTF-16 (little endian, with BOM)', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('version: 1\nsysctl: {}\n', 'utf16le')]), { message: /answers\.yml.*(UTF-8|UTF-16|encod)/i }),
  answersCase('answers: Latin-1 bytes (not UTF-8)', bytes('version: 1\nadmin-account:\n  comment: "Jos', [0xe9], ' Garc', [0xed], 'a"\n'), { message: /answers\.yml.*UTF-8/ }),
  answersCase('answers: a raw NUL byte in the file', bytes('version: 1\nadmin-account:\n  name: ali', [0], 'ce\n'), { message: /answers\.yml/ }),
  answersCase('answers: a raw ESC byte in a plain scalar', bytes('version: 1\nadmin-account:\n  comment: Alice', [0x1b], '[2J\n'), { message: /answers\.yml/ }),
  answersCase('answers: 100,000 nested lists', `version: 1\nsysctl: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, { message: /answers\.yml/ }),
  {
    name: 'answers: a huge file (16 MiB of comments)',
    group: 'answers',
    argv: DRY,
    plant: [{ path: ANSWERS, size: { bytes: 16 * 1024 * 1024, fill: '# padding padding padding padding padding padding padding padding\n' } }],
    expect: { exit: 2, message: /answers\.yml/ },
  },
  {
    name: 'answers: a huge single-line comment field (8 MiB)',
    group: 'answers',
    argv: DRY,
    plant: [{ path: ANSWERS, content: `version: 1\nadmin-account:\n  comment: ${'x'.repeat(8 * 1024 * 1024)}\n` }],
    expect: { exit: 2, message: /answers\.yml/ },
  },
];

// ---------------------------------------------------------------- the answers file's path

const answersPath = (name: string, path: string, plant: Plant[] = [], expect: Partial<Expectation> = {}): BadInputCase => ({
  name: `answers path: ${name}`,
  group: 'answers-path',
  argv: ['apply', '--answers', path, '--dry-run'],
  plant,
  // Named by the path given, or (for a line of it) by its base name: `shadow:1: ...`.
  expect: { exit: 2, message: new RegExp(`${esc(path)}|${esc(path.split('/').filter(Boolean).pop() ?? path)}:`), ...expect },
});

const answersPathCases: BadInputCase[] = [
  answersPath('/dev/zero', '/dev/zero'),
  answersPath('/proc/self/mem', '/proc/self/mem'),
  answersPath('a directory', 'adir', [{ path: 'adir', dir: true }]),
  answersPath('a FIFO planted by another user', 'tmp/answers.yml', [{ path: 'tmp/answers.yml', fifo: true, owner: 'nobody', mode: 0o666 }]),
  answersPath('a symlink to /etc/shadow planted by another user', 'tmp/answers.yml', [{ path: 'tmp/answers.yml', symlink: '/etc/shadow', owner: 'nobody' }], { forbid: [SHADOW_LINE] }),
  answersPath('/etc/shadow itself (never echoed)', '/etc/shadow', [], { forbid: [SHADOW_LINE] }),
  answersPath('a symlink to /dev/zero', 'tmp/zero.yml', [{ path: 'tmp/zero.yml', symlink: '/dev/zero', owner: 'nobody' }]),
  answersPath('a file that does not exist', 'no-such-answers.yml'),
  answersPath('a path through a missing directory', 'missing/dir/answers.yml'),
  answersPath('named "-" (not standard input)', '-', [], { message: /answers/ }),
  answersPath('/dev/null (empty)', '/dev/null'),
  answersPath('/proc/self/environ (NUL-separated)', '/proc/self/environ'),
];

// ---------------------------------------------------------------- keys: given as a path on the node

const keysPath = (name: string, path: string, plant: Plant[] = [], forbid: RegExp[] = []): BadInputCase => ({
  name: `keys path: ${name}`,
  group: 'keys-path',
  argv: DRY,
  plant: [answersFile(`version: 1\nssh-key:\n  keys: ${q(path)}\n`), ...plant],
  expect: { exit: 2, message: names('ssh-key.keys'), ...(forbid.length ? { forbid } : {}) },
});

const keysPathCases: BadInputCase[] = [
  keysPath('/dev/zero', '/dev/zero'),
  keysPath('/proc/self/mem', '/proc/self/mem'),
  keysPath('a directory', '{case}/keys.d', [{ path: 'keys.d', dir: true }]),
  keysPath('a FIFO planted by another user', '{case}/tmp/alice.pub', [{ path: 'tmp/alice.pub', fifo: true, owner: 'nobody', mode: 0o666 }]),
  keysPath('a symlink to /etc/shadow planted by another user', '{case}/tmp/alice.pub', [{ path: 'tmp/alice.pub', symlink: '/etc/shadow', owner: 'nobody' }], [SHADOW_LINE]),
  keysPath('/etc/shadow itself (never echoed)', '/etc/shadow', [], [SHADOW_LINE]),
  keysPath('a symlink to /dev/zero planted by another user', '{case}/tmp/zero.pub', [{ path: 'tmp/zero.pub', symlink: '/dev/zero', owner: 'nobody' }]),
  keysPath('a private key file', '{case}/id_ed25519', [{ path: 'id_ed25519', content: PRIVATE_KEY, mode: 0o600 }], [PRIVATE_BODY]),
  keysPath('a file that does not exist', '{case}/no-such.pub'),
  keysPath('a huge .pub file (16 MiB)', '{case}/huge.pub', [{ path: 'huge.pub', size: { bytes: 16 * 1024 * 1024, fill: `${KEY}\n` } }]),
  keysPath('a .pub file that is not UTF-8', '{case}/latin1.pub', [{ path: 'latin1.pub', content: bytes(`ssh-ed25519 ${KEY_BLOB} Jos`, [0xe9], '\n') }]),
  keysPath('a .pub file with ANSI escapes', '{case}/ansi.pub', [{ path: 'ansi.pub', content: `${KEY}\u001b[2J\u001b]0;owned\u0007\n` }]),
];

// ---------------------------------------------------------------- arguments

const usage = (name: string, argv: string[], message: RegExp, extra: Partial<BadInputCase> = {}, expect: Partial<Expectation> = {}): BadInputCase => ({
  name: `arguments: ${name}`,
  group: 'arguments',
  argv,
  ...extra,
  expect: { exit: 2, message, stdoutEmpty: true, ...expect },
});
const validAnswers = { plant: [answersFile(VALID)] };

const argumentCases: BadInputCase[] = [
  usage('an unknown command', ['bogus'], /unknown command 'bogus'/),
  usage('an unknown command with an ANSI escape', ['bog\u001b[2Jus'], /unknown command/),
  usage('an unknown command 100,000 characters long', ['x'.repeat(100_000)], /unknown command/),
  usage('an unknown long option', ['--frobnicate'], /--frobnicate/),
  usage('an unknown short option', ['-Z'], /-Z\b/),
  usage('--answers without its value', ['apply', '--answers'], /--answers/),
  usage('-a without its value', ['apply', '-a'], /-a\b|--answers/),
  usage('--answers without apply', ['--answers', ANSWERS], /--answers/, validAnswers),
  usage('--only without its value', ['apply', '--answers', ANSWERS, '--dry-run', '--only'], /--only/, validAnswers),
  usage('--only an unknown step', [...DRY, '--only', 'bogus'], /--only.*bogus|bogus.*--only/, validAnswers),
  usage('--only a known and an unknown step', [...DRY, '--only', 'sysctl,bogus'], /bogus/, validAnswers),
  usage('--only only commas', [...DRY, '--only', ',,,'], /--only/, validAnswers),
  usage('--only a step id with a shell metacharacter', [...DRY, '--only', 'sysctl;reboot'], /sysctl;reboot/, validAnswers),
  usage('--only a step id with an ANSI escape', [...DRY, '--only', 'sysctl\u001b[2J'], /--only/, validAnswers),
  usage('--yes and --dry-run together', ['apply', '--answers', ANSWERS, '--yes', '--dry-run'], /--yes and --dry-run/, validAnswers),
  usage('apply --json', ['apply', '--answers', ANSWERS, '--json'], /--json/, validAnswers),
  usage('apply with an extra argument', [...DRY, 'extra'], /extra/, validAnswers),
  usage('check --yes', ['check', '--yes'], /--yes/),
  usage('check --json --yes (prints no JSON)', ['check', '--json', '--yes'], /--yes/),
  usage('status --yes', ['status', '--yes'], /--yes/),
  usage('confirm --json', ['confirm', '--json'], /--json/),
  usage('backup --json', ['backup', '--json'], /--json/),
  usage('backup --yes', ['backup', '--drill', '--yes'], /--yes/),
  usage('backup --identity without its value', ['backup', '--identity'], /--identity/),
  usage('backup with an extra argument', ['backup', 'now'], /now/),
  usage('backup where the config backup was never set up', ['backup', '--drill', '--identity', '/nonexistent/identity.txt'], /not set up here \(no \/etc\/pve-baseline\/config-backup\.json\)/),
  usage('--yes alone (the wizard takes no option)', ['-y'], /--yes/),
  usage('revert without a step', ['revert'], /revert wants exactly one step/),
  usage('revert two steps', ['revert', 'sysctl', 'admin-account'], /exactly one step/),
  usage('revert an unknown step', ['revert', 'bogus'], /unknown step bogus/),
  usage('revert a path as a step', ['revert', '../../etc/passwd', '--yes'], /unknown step \.\.\/\.\.\/etc\/passwd/),
  usage('revert a step id with a line break', ['revert', 'sysctl\nroot', '--yes'], /unknown step/),
  usage('docs --out without its value', ['docs', '--out'], /--out/),
  usage('--version with an unknown option', ['--version', '--frobnicate'], /--frobnicate/),
];

// ---------------------------------------------------------------- docs --out: where root writes

const docs = (name: string, out: string, plant: Plant[], expect: Partial<Expectation> = {}): BadInputCase => ({
  name: `docs --out: ${name}`,
  group: 'docs',
  argv: ['docs', '--out', out],
  plant,
  expect: { exit: [2, 74], message: namesFile(out.replace('{case}/', '')), ...expect },
});
const VICTIM: Plant = { path: 'victim', content: 'root:x:0:0:root:/root:/bin/bash\n', mode: 0o644 };

const docsCases: BadInputCase[] = [
  docs('a directory', 'tmp', []),
  docs('a symlink planted by another user (ln -s /etc/passwd /tmp/p.md)', 'tmp/p.md', [VICTIM, { path: 'tmp/p.md', symlink: '{case}/victim', owner: 'nobody' }]),
  docs('a dangling symlink planted by another user', 'tmp/dangling.md', [{ path: 'tmp/dangling.md', symlink: '{case}/created-by-root', owner: 'nobody' }], { absent: ['created-by-root'] }),
  docs('a chain of symlinks a -> b -> target', 'tmp/a.md', [VICTIM, { path: 'tmp/b.md', symlink: '{case}/victim', owner: 'nobody' }, { path: 'tmp/a.md', symlink: '{case}/tmp/b.md', owner: 'nobody' }]),
  docs('a symlinked directory planted by another user', 'tmp/linkdir/doc.md', [{ path: 'target-dir', dir: true, mode: 0o700 }, { path: 'tmp/linkdir', symlink: '{case}/target-dir', owner: 'nobody' }], { absent: ['target-dir/doc.md'] }),
  docs('a FIFO planted by another user', 'tmp/fifo.md', [{ path: 'tmp/fifo.md', fifo: true, owner: 'nobody', mode: 0o666 }]),
  docs('a path in a missing directory', 'missing/sub/doc.md', [], { exit: 2, absent: ['missing'] }),
  docs('a path below a regular file', 'afile/doc.md', [{ path: 'afile', content: 'x' }]),
  docs('a directory with a trailing slash', 'tmp/', [], { message: /tmp\b/ }),
  docs('a path into an immutable directory', 'locked/doc.md', [{ path: 'locked', dir: true, immutable: true }], { absent: ['locked/doc.md'] }),
];

// ---------------------------------------------------------------- environment

const env = (name: string, argv: string[], vars: Record<string, string | null>, expect: Expectation, extra: Partial<BadInputCase> = {}): BadInputCase => ({
  name: `environment: ${name}`,
  group: 'environment',
  argv,
  env: vars,
  ...extra,
  expect,
});
const STATE_FILE: Plant = { path: 'statefile', content: 'not a directory\n', mode: 0o600 };
const stateIsFile = { PVE_BASELINE_STATE_DIR: '{case}/statefile' };
const stateLink: Plant[] = [
  { path: 'elsewhere', dir: true, mode: 0o777, owner: 'nobody' },
  { path: 'tmp/state', symlink: '{case}/elsewhere', owner: 'nobody' },
];
const stateIsLink = { PVE_BASELINE_STATE_DIR: '{case}/tmp/state' };
const stateOfNobody: Plant[] = [{ path: 'tmp/nobody-state', dir: true, mode: 0o777, owner: 'nobody' }];
const STATE_MSG = (file: string) => ({ exit: 2, message: new RegExp(`PVE_BASELINE_STATE_DIR|${esc(file)}`), stream: 'any' as const });

const environmentCases: BadInputCase[] = [
  env('state dir is a file: status', ['status'], stateIsFile, STATE_MSG('statefile'), { plant: [STATE_FILE] }),
  env('state dir is a file: status --json', ['status', '--json'], stateIsFile, STATE_MSG('statefile'), { plant: [STATE_FILE] }),
  env('state dir is a file: check --json', ['check', '--json'], stateIsFile, STATE_MSG('statefile'), { plant: [STATE_FILE] }),
  env('state dir is a file: apply --dry-run', DRY_SYSCTL, stateIsFile, STATE_MSG('statefile'), { plant: [STATE_FILE, answersFile(VALID)] }),
  env('state dir is a file: revert sysctl', ['revert', 'sysctl'], stateIsFile, STATE_MSG('statefile'), { plant: [STATE_FILE] }),
  env('state dir is a file: confirm', ['confirm'], stateIsFile, STATE_MSG('statefile'), { plant: [STATE_FILE] }),
  env('state dir is a file: the wizard', [], stateIsFile, STATE_MSG('statefile'), { plant: [STATE_FILE], tty: true }),
  env('state dir is a symlink planted by another user: status', ['status'], stateIsLink, STATE_MSG('tmp/state'), { plant: stateLink }),
  env('state dir is a symlink planted by another user: check --json', ['check', '--json'], stateIsLink, STATE_MSG('tmp/state'), { plant: stateLink }),
  env('state dir is a symlink planted by another user: confirm', ['confirm'], stateIsLink, STATE_MSG('tmp/state'), { plant: stateLink }),
  env('state dir is a symlink planted by another user: the wizard', [], stateIsLink, STATE_MSG('tmp/state'), { plant: stateLink, tty: true }),
  env('state dir belongs to another user: status', ['status'], { PVE_BASELINE_STATE_DIR: '{case}/tmp/nobody-state' }, STATE_MSG('nobody-state'), { plant: stateOfNobody }),
  env('state dir belongs to another user: the wizard', [], { PVE_BASELINE_STATE_DIR: '{case}/tmp/nobody-state' }, STATE_MSG('nobody-state'), { plant: stateOfNobody, tty: true }),
  env('state dir is a relative path: status', ['status'], { PVE_BASELINE_STATE_DIR: 'relative-state' }, { ...STATE_MSG('relative-state'), absent: ['relative-state'] }),
  env('state dir is a relative path: check --json', ['check', '--json'], { PVE_BASELINE_STATE_DIR: 'relative-state' }, { ...STATE_MSG('relative-state'), absent: ['relative-state'] }),
  env('state dir is a relative path: the wizard', [], { PVE_BASELINE_STATE_DIR: 'relative-state' }, { ...STATE_MSG('relative-state'), absent: ['relative-state'] }, { tty: true }),
  env('state dir with a line break in its name: status', ['status'], { PVE_BASELINE_STATE_DIR: '{case}/st\nate' }, STATE_MSG('PVE_BASELINE_STATE_DIR')),
  env('state dir is unwritable (immutable): the wizard', [], { PVE_BASELINE_STATE_DIR: '{case}/frozen' }, { exit: [2, 74], message: /frozen/, stream: 'any' }, { plant: [{ path: 'frozen', dir: true, mode: 0o700, immutable: true }], tty: true }),
  env('state dir under /proc: the wizard', [], { PVE_BASELINE_STATE_DIR: '/proc/pve-baseline-state' }, { exit: [2, 74], message: /\/proc\/pve-baseline-state/, stream: 'any' }, { tty: true }),
  // TERM and colours: odd values change nothing and break nothing
  ...(
    [
      ['empty', ''],
      ['linux', 'linux'],
      ['with an escape sequence', 'xterm\u001b]0;owned\u0007'],
      ['10,000 characters long', 'x'.repeat(10_000)],
    ] as const
  ).map(([why, term]) => env(`TERM ${why}: status`, ['status'], { TERM: term }, { exit: 0, message: /No step has run on this node yet/, stream: 'stdout' })),
  env('TERM with an escape sequence: the wizard without a terminal', [], { TERM: 'xterm\u001b]0;owned\u0007' }, { exit: 2, message: /the wizard needs a terminal/ }),
  env('TERM 10,000 characters long: the wizard without a terminal', [], { TERM: 'x'.repeat(10_000) }, { exit: 2, message: /the wizard needs a terminal/ }),
  env('NO_COLOR=1 with FORCE_COLOR=3: status', ['status'], { NO_COLOR: '1', FORCE_COLOR: '3' }, { exit: 0, message: /No step has run on this node yet/, stream: 'stdout' }),
  env('NO_COLOR=1 with FORCE_COLOR=3: check --json', ['check', '--json'], { NO_COLOR: '1', FORCE_COLOR: '3' }, { exit: [0, 1], message: /"steps"/, stream: 'stdout', json: true }),
  env('NO_COLOR empty with FORCE_COLOR=3: an unknown command', ['bogus'], { NO_COLOR: '', FORCE_COLOR: '3' }, { exit: 2, message: /unknown command 'bogus'/ }),
  env('no PATH, HOME or TERM at all: status', ['status'], { PATH: null, HOME: null, TERM: null }, { exit: 0, message: /No step has run on this node yet/, stream: 'stdout' }),
];

// ---------------------------------------------------------------- output: a full disk

const outputCases: BadInputCase[] = [
  { name: 'output: check --json into a full disk', group: 'output', argv: ['check', '--json'], stdoutToFull: true, expect: { exit: 74, message: /standard output|stdout/i } },
  { name: 'output: status --json into a full disk', group: 'output', argv: ['status', '--json'], stdoutToFull: true, expect: { exit: 74, message: /standard output|stdout/i } },
  { name: 'output: status into a full disk', group: 'output', argv: ['status'], stdoutToFull: true, expect: { exit: 74, message: /standard output|stdout/i } },
  { name: 'output: --help into a full disk', group: 'output', argv: ['--help'], stdoutToFull: true, expect: { exit: 74, message: /standard output|stdout/i } },
  { name: 'output: a dry run into a full disk', group: 'output', argv: DRY_SYSCTL, plant: [answersFile(VALID)], stdoutToFull: true, expect: { exit: 74, message: /standard output|stdout/i } },
];

// ---------------------------------------------------------------- corrupt journals

const JOURNAL = 'state/journal.json';
const RECORD = { status: 'verified', answers: {}, updatedAt: '2026-11-30T00:00:00.000Z', bootId: 'b', applied: [], history: [] };
const journalOf = (steps: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ schemaVersion: 1, createdAt: '2026-11-30T00:00:00.000Z', steps, ...extra });

const CORRUPT_JOURNALS: [string, Plant][] = [
  ['truncated', { path: JOURNAL, content: journalOf({ sysctl: RECORD }).slice(0, 60), mode: 0o600 }],
  ['garbage bytes', { path: JOURNAL, content: bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0xff, 0xfe, 0x80]), mode: 0o600 }],
  ['empty (0 bytes)', { path: JOURNAL, content: '', mode: 0o600 }],
  ['an array', { path: JOURNAL, content: '[]', mode: 0o600 }],
  ['null', { path: JOURNAL, content: 'null', mode: 0o600 }],
  ['steps as a list', { path: JOURNAL, content: journalOf([1, 2, 3]), mode: 0o600 }],
  ['a step record as a string', { path: JOURNAL, content: journalOf({ sysctl: 'verified' }), mode: 0o600 }],
  ['an unknown status', { path: JOURNAL, content: journalOf({ sysctl: { ...RECORD, status: 'exploded' } }), mode: 0o600 }],
  ['applied as a string', { path: JOURNAL, content: journalOf({ sysctl: { ...RECORD, status: 'applied', applied: 'rm -rf /' } }), mode: 0o600 }],
  ['an applied file without its backup', { path: JOURNAL, content: journalOf({ sysctl: { ...RECORD, status: 'applied', applied: [{ kind: 'file', path: '/etc/passwd' }] } }), mode: 0o600 }],
  ['an applied command whose undo is not a list', { path: JOURNAL, content: journalOf({ sysctl: { ...RECORD, status: 'applied', applied: [{ kind: 'command', argv: 'sysctl -p', undo: 'rm -rf /' }] } }), mode: 0o600 }],
  ['answers as a string', { path: JOURNAL, content: journalOf({ 'admin-account': { ...RECORD, answers: 'name=mallory' } }), mode: 0o600 }],
  ['schema version 99', { path: JOURNAL, content: journalOf({}, { schemaVersion: 99 }), mode: 0o600 }],
  ['not UTF-8', { path: JOURNAL, content: bytes('{"schemaVersion":1,"steps":{"sysctl":{"status":"verified","note":"', [0xc3, 0x28, 0xff], '"}}}'), mode: 0o600 }],
  ['nested 100,000 levels deep', { path: JOURNAL, content: `{"schemaVersion":1,"steps":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, mode: 0o600 }],
  ['a symlink to /etc/shadow', { path: JOURNAL, symlink: '/etc/shadow' }],
  ['a directory', { path: JOURNAL, dir: true, mode: 0o700 }],
  ['a FIFO', { path: JOURNAL, fifo: true, mode: 0o600 }],
  ['huge (16 MiB)', { path: JOURNAL, size: { bytes: 16 * 1024 * 1024, fill: ' ' }, mode: 0o600 }],
];

const JOURNAL_COMMANDS: [string, string[], Partial<BadInputCase>, Partial<Expectation>][] = [
  ['check --json', ['check', '--json'], {}, { stream: 'any' }],
  ['apply --dry-run', DRY_SYSCTL, { plant: [answersFile(VALID)] }, {}],
  ['revert sysctl', ['revert', 'sysctl'], {}, {}],
  ['status --json', ['status', '--json'], {}, { stream: 'any' }],
];
const STATUS: (typeof JOURNAL_COMMANDS)[number] = ['status', ['status'], {}, {}];

/** Each corrupt journal is read by status, and by one other reader in turn. */
const journalCases: BadInputCase[] = CORRUPT_JOURNALS.flatMap(([kind, plant], i) =>
  [STATUS, JOURNAL_COMMANDS[i % JOURNAL_COMMANDS.length]!].map(([command, argv, extra, expect]): BadInputCase => ({
    name: `journal ${kind}: ${command}`,
    group: 'journal',
    argv,
    ...extra,
    plant: [{ path: 'state', dir: true, mode: 0o700 }, plant, ...(extra.plant ?? [])],
    expect: { exit: 2, message: /journal\.json/, forbid: [SHADOW_LINE, /No step has run on this node yet/], ...expect },
  })),
);

/** Journals an older version (or a command's output) could have left: read, but never shown as they are. */
const journalWithHash = journalOf({ 'admin-account': { ...RECORD, answers: { name: 'alice', password_hash: HASH } } });
const journalWithEscapes = journalOf({ sysctl: { ...RECORD, status: 'failed', error: 'sysctl: \u001b]0;owned\u0007\u001b[2Jcannot stat /proc/sys/x' } });
journalCases.push(
  ...(
    [
      ['status', ['status']],
      ['status --json', ['status', '--json']],
    ] as const
  ).flatMap(([command, argv]): BadInputCase[] => [
    {
      name: `journal holding a password hash: ${command}`,
      group: 'journal',
      argv: [...argv],
      plant: [{ path: 'state', dir: true, mode: 0o700 }, { path: JOURNAL, content: journalWithHash, mode: 0o600 }],
      expect: { exit: [0, 2], message: /admin-account/, stream: 'any', forbid: [new RegExp(esc(HASH)), /pveBaselineSalt/] },
    },
    {
      name: `journal holding escape sequences in an error: ${command}`,
      group: 'journal',
      argv: [...argv],
      plant: [{ path: 'state', dir: true, mode: 0o700 }, { path: JOURNAL, content: journalWithEscapes, mode: 0o600 }],
      expect: { exit: [0, 2], message: /sysctl/, stream: 'any' },
    },
  ]),
);

// ---------------------------------------------------------------- corrupt revert indexes

const INDEX = 'state/revert/armed.json';
const ENTRY = { id: 'sshd-hardening-20261130T000000Z', deadline: 1_900_000_000_000, seconds: 180, armedWith: 'systemd', script: '{state}/revert/sshd-hardening-20261130T000000Z.sh' };
const CORRUPT_INDEXES: [string, Plant][] = [
  ['truncated JSON', { path: INDEX, content: JSON.stringify([ENTRY]).slice(0, 40), mode: 0o600 }],
  ['an object, not an array', { path: INDEX, content: JSON.stringify({ entries: [ENTRY] }), mode: 0o600 }],
  ['an array of null', { path: INDEX, content: '[null]', mode: 0o600 }],
  ['an array of strings', { path: INDEX, content: '["sshd-hardening"]', mode: 0o600 }],
  ['an entry whose id is a number', { path: INDEX, content: JSON.stringify([{ ...ENTRY, id: 5 }]), mode: 0o600 }],
  ['an entry whose id is a path', { path: INDEX, content: JSON.stringify([{ ...ENTRY, id: '../../../etc/passwd' }]), mode: 0o600 }],
  ['an entry whose id has a line break', { path: INDEX, content: JSON.stringify([{ ...ENTRY, id: 'a\nb' }]), mode: 0o600 }],
  ['an entry without an id', { path: INDEX, content: JSON.stringify([{ deadline: ENTRY.deadline }]), mode: 0o600 }],
  ['an entry whose deadline is text', { path: INDEX, content: JSON.stringify([{ ...ENTRY, deadline: 'tomorrow' }]), mode: 0o600 }],
  ['an entry whose script is outside the state dir', { path: INDEX, content: JSON.stringify([{ ...ENTRY, script: '/etc/shadow' }]), mode: 0o600 }],
  ['empty (0 bytes)', { path: INDEX, content: '', mode: 0o600 }],
  ['garbage bytes', { path: INDEX, content: bytes([0, 1, 2, 0xff, 0xfe, 0x1b, 0x5b, 0x32, 0x4a]), mode: 0o600 }],
  ['a symlink to /etc/shadow', { path: INDEX, symlink: '/etc/shadow' }],
  ['a directory', { path: INDEX, dir: true, mode: 0o700 }],
  ['a FIFO', { path: INDEX, fifo: true, mode: 0o600 }],
  ['huge (16 MiB)', { path: INDEX, size: { bytes: 16 * 1024 * 1024, fill: ' ' }, mode: 0o600 }],
];
const INDEX_READERS: [string, string[], Partial<Expectation>][] = [
  ['status', ['status'], {}],
  ['status --json', ['status', '--json'], { stream: 'any' }],
];
const CONFIRM: (typeof INDEX_READERS)[number] = ['confirm', ['confirm'], {}];

/**
 * Each corrupt index is read by confirm, and by status or status --json in
 * turn. The pending markers, not the index, say what is pending: a damaged
 * index is named (and left as it is), status may still report from the
 * markers (0), confirm ends 1 or 2.
 */
const revertIndexCases: BadInputCase[] = CORRUPT_INDEXES.flatMap(([kind, plant], i) =>
  [CONFIRM, INDEX_READERS[i % INDEX_READERS.length]!].map(([command, argv, expect]): BadInputCase => ({
    name: `revert index ${kind}: ${command}`,
    group: 'revert-index',
    argv,
    plant: [
      { path: 'state', dir: true, mode: 0o700 },
      { path: 'state/revert', dir: true, mode: 0o700 },
      plant,
    ],
    expect: { exit: command === 'confirm' ? [1, 2] : [0, 2], message: /armed\.json/, stream: 'any', forbid: [SHADOW_LINE], ...expect },
  })),
);

export const CASES: readonly BadInputCase[] = [
  ...fieldCases,
  ...fileCases,
  ...answersPathCases,
  ...keysPathCases,
  ...argumentCases,
  ...docsCases,
  ...environmentCases,
  ...outputCases,
  ...journalCases,
  ...revertIndexCases,
];
