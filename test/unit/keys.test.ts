import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { authorizedKeysLine, checkPublicKeys, describeKey, parseKeyOptions, PRIVATE_KEY_REFUSED, readCheckedKeys, generateKeyPair } from '../../src/ssh/keys.ts';
import { DSA_PUBLIC_KEY } from '../fixtures/dsa-key.ts';

const gen = (type: 'ed25519' | 'rsa' | 'ecdsa', bits: number | undefined, comment: string) => generateKeyPair(type, { ...(bits ? { bits } : {}), comment });

const ed = await gen('ed25519', undefined, 'alice@laptop');
const rsa4096 = await gen('rsa', 4096, 'big');
const rsa3072 = await gen('rsa', 3072, 'ok');
const rsa2048 = await gen('rsa', 2048, 'old');
const rsa1024 = await gen('rsa', 1024, 'ancient');
const ec256 = await gen('ecdsa', 256, 'ec256');
const ec521 = await gen('ecdsa', 521, 'ec521');

/** A real point on P-256 (uncompressed), so that ssh-keygen accepts the sk-ecdsa key too. */
function p256Point(): Buffer {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
}

/** A security-key (FIDO) public key, built from its wire format: ssh2's parser does not know these types. */
function skKey(type: 'sk-ssh-ed25519@openssh.com' | 'sk-ecdsa-sha2-nistp256@openssh.com', comment: string): string {
  const str = (b: Buffer | string) => {
    const buf = typeof b === 'string' ? Buffer.from(b) : b;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(buf.length);
    return Buffer.concat([len, buf]);
  };
  const parts =
    type === 'sk-ssh-ed25519@openssh.com'
      ? [str(type), str(Buffer.alloc(32, 7)), str('ssh:')]
      : [str(type), str('nistp256'), str(p256Point()), str('ssh:')];
  return `${type} ${Buffer.concat(parts).toString('base64')} ${comment}`;
}

async function sshKeygenFingerprint(publicKey: string): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pve-baseline-key-'));
  try {
    writeFileSync(path.join(dir, 'k.pub'), `${publicKey}\n`);
    const r = await execa('ssh-keygen', ['-l', '-E', 'sha256', '-f', path.join(dir, 'k.pub')]);
    return r.stdout.split(' ')[1]!;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('accepted keys: type, size, comment, and the fingerprint ssh-keygen prints', async () => {
  const text = [ed.public, rsa4096.public, rsa3072.public, ec256.public, ec521.public, skKey('sk-ssh-ed25519@openssh.com', 'yubikey'), skKey('sk-ecdsa-sha2-nistp256@openssh.com', 'solokey')].join('\n');
  const r = await checkPublicKeys(text);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(
    r.keys.map((k) => [k.type, k.bits, k.comment]),
    [
      ['ssh-ed25519', 256, 'alice@laptop'],
      ['ssh-rsa', 4096, 'big'],
      ['ssh-rsa', 3072, 'ok'],
      ['ecdsa-sha2-nistp256', 256, 'ec256'],
      ['ecdsa-sha2-nistp521', 521, 'ec521'],
      ['sk-ssh-ed25519@openssh.com', 256, 'yubikey'],
      ['sk-ecdsa-sha2-nistp256@openssh.com', 256, 'solokey'],
    ],
  );
  for (const [i, line] of text.split('\n').entries()) assert.equal(r.keys[i]!.fingerprint, await sshKeygenFingerprint(line), `fingerprint of ${r.keys[i]!.type}`);
  assert.match(describeKey(r.keys[0]!), /^ED25519 256 bits SHA256:[A-Za-z0-9+/]{43} alice@laptop$/);
  assert.deepEqual(readCheckedKeys(text).map((k) => k.fingerprint), r.keys.map((k) => k.fingerprint), 'the synchronous re-read agrees');
});

test('RSA 2048 is accepted with a warning; a repeated key is installed once', async () => {
  const r = await checkPublicKeys(`${rsa2048.public}\n${ed.public}\n${ed.public}`);
  assert.deepEqual(r.problems, []);
  assert.equal(r.keys.length, 2);
  assert.deepEqual(r.warnings, [
    'line 1: an RSA key of 2048 bits is accepted, but 3072 bits or an ed25519 key is recommended, and the strict sshd profile will refuse it',
    'line 3: the same key as line 2; it is installed once',
  ]);
});

test('refusals name the line and what is wanted', async () => {
  const truncated = ed.public.slice(0, 50);
  const cases: [string, string][] = [
    [DSA_PUBLIC_KEY, 'line 1: ssh-dss (DSA) keys are refused: they are 1024-bit and OpenSSH 10 no longer accepts them; make an ed25519 key (ssh-keygen -t ed25519)'],
    [rsa1024.public, 'line 1: an RSA key of 1024 bits is refused: RSA needs at least 3072 bits (2048 is accepted with a warning); better, make an ed25519 key'],
    [truncated, 'line 1: the ssh-ed25519 key data is damaged or cut off; copy the whole line again'],
    ['ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x', 'line 1: the ssh-ed25519 key data is damaged or cut off; copy the whole line again'],
    ['ssh-foo AAAAC3NzaC1lZDI1NTE5 x', 'line 1: "ssh-foo" is not a key type OpenSSH accepts (ssh-ed25519, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com, ssh-rsa)'],
    ['hello world, this is not a key', 'line 1: not an SSH public key (wanted TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAAC3Nz... alice@laptop)'],
    ['ssh-ed25519-cert-v01@openssh.com AAAA x', 'line 1: ssh-ed25519-cert-v01@openssh.com is an SSH certificate; paste the plain public key instead'],
    ['', 'no public key given (wanted TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAAC3Nz... alice@laptop)'],
    [`# only a comment\n\n`, 'no public key given (wanted TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAAC3Nz... alice@laptop)'],
    [`${ed.public}\nssh-rsa AAAA`, 'line 2: the ssh-rsa key data is damaged or cut off; copy the whole line again'],
  ];
  for (const [text, message] of cases) assert.deepEqual((await checkPublicKeys(text)).problems, [message], text.slice(0, 40));
});

test('a private key is refused whole, with a warning that it went nowhere', async () => {
  for (const text of [ed.private, rsa2048.private, `${ed.public}\n${ed.private}`]) {
    const r = await checkPublicKeys(text);
    assert.deepEqual(r.problems, [PRIVATE_KEY_REFUSED]);
    assert.deepEqual(r.keys, [], 'not even the public key beside it is taken');
  }
  assert.match(PRIVATE_KEY_REFUSED, /PRIVATE key\. It was not stored or sent anywhere/);
});

test('authorized_keys options are parsed, and kept only when asked', async () => {
  const line = `from="10.0.0.0/8,192.168.1.2",no-pty,command="echo hi there" ${ed.public}`;
  const r = await checkPublicKeys(`${line}\nno-agent-forwarding ${ec256.public}`);
  assert.deepEqual(r.problems, []);
  assert.equal(r.keys[0]!.options, 'from="10.0.0.0/8,192.168.1.2",no-pty,command="echo hi there"');
  assert.equal(r.keys[1]!.options, 'no-agent-forwarding');
  assert.equal(authorizedKeysLine(r.keys[0]!, true), line);
  assert.equal(authorizedKeysLine(r.keys[0]!, false), ed.public);
});

test('generateKeyPair never hands out the malformed ed25519 keys ssh2 sometimes makes', async () => {
  // ssh2 writes about one ed25519 key in 256 with 31 bytes; 1,000 keys would almost surely include one.
  for (let i = 0; i < 1000; i++) {
    const pair = await generateKeyPair('ed25519', { comment: `k${i}` });
    assert.equal(readCheckedKeys(pair.public).length, 1, pair.public);
  }
});

/** What ssh-keygen (OpenSSH's own authorized_keys reader) says the key of a line is. */
async function sshKeygenReads(line: string): Promise<string | null> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pve-baseline-key-'));
  try {
    writeFileSync(path.join(dir, 'authorized_keys'), `${line}\n`);
    const r = await execa('ssh-keygen', ['-l', '-E', 'sha256', '-f', path.join(dir, 'authorized_keys')], { reject: false });
    return r.exitCode === 0 ? r.stdout.split(' ')[1]! : null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('issue 11: options whose quoted value holds a space are options, split where sshd splits them', async () => {
  const options = 'from="10.0.0.0/8",command="/usr/local/bin/backup --dir /srv",no-pty';
  const line = `${options} ${ed.public}`;
  const r = await checkPublicKeys(line);
  assert.deepEqual(r.problems, []);
  assert.equal(r.keys[0]!.options, options);
  assert.equal(r.keys[0]!.comment, 'alice@laptop');
  assert.equal(r.keys[0]!.fingerprint, await sshKeygenReads(line), 'the key OpenSSH reads from the line');
  assert.equal(readCheckedKeys(line)[0]!.options, options, 'the synchronous re-read agrees');
  assert.equal(authorizedKeysLine(r.keys[0]!, true), line);
  assert.equal(authorizedKeysLine(r.keys[0]!, false), ed.public);
  assert.deepEqual(parseKeyOptions(options), {
    options: [
      { name: 'from', value: '10.0.0.0/8' },
      { name: 'command', value: '/usr/local/bin/backup --dir /srv' },
      { name: 'pty', enabled: false },
    ],
  });
});

test('escaped quotes and a key type inside a quoted value do not end the options', async () => {
  const escaped = String.raw`command="echo \"hi, there\" ssh-rsa",No-Pty`;
  const decoy = `command="ssh-ed25519 ${ec256.public.split(' ')[1]} decoy",restrict`;
  for (const options of [escaped, decoy]) {
    const line = `${options} ${ed.public}`;
    const r = await checkPublicKeys(line);
    assert.deepEqual(r.problems, [], options);
    assert.equal(r.keys.length, 1);
    assert.equal(r.keys[0]!.options, options);
    assert.equal(r.keys[0]!.fingerprint, await sshKeygenReads(line), options);
    assert.equal(authorizedKeysLine(r.keys[0]!, true), line);
  }
  assert.deepEqual(parseKeyOptions(escaped), { options: [{ name: 'command', value: 'echo "hi, there" ssh-rsa' }, { name: 'pty', enabled: false }] });
});

test('a line that starts with a key type has no options, whatever its comment holds', async () => {
  const line = `${ed.public} from="x",no-pty "quoted`;
  const r = await checkPublicKeys(line);
  assert.deepEqual(r.problems, []);
  assert.equal(r.keys[0]!.options, null);
  assert.equal(r.keys[0]!.comment, 'alice@laptop from="x",no-pty "quoted');
});

test('options sshd would not read are refused with the line and the reason', async () => {
  const key = ed.public;
  const cases: [string, RegExp][] = [
    [`from="10.0.0.0/8 ${key}`, /^line 1: the options before the key have a double quote \(\"\) that is never closed; sshd would ignore this key$/],
    // \\" is a backslash and then a closing quote for the shell, but for sshd \" escapes the quote: still open.
    [String.raw`command="a\\" ${key}`, /^line 1: the options before the key have a double quote/],
    [`frm="10.0.0.0/8" ${key}`, /^line 1: "frm=" is not an authorized_keys option sshd knows \(restrict, cert-authority, \[no-\]port-forwarding/],
    [`no-ptyx ${key}`, /^line 1: "no-ptyx" is not an authorized_keys option sshd knows/],
    [`from=10.0.0.0/8 ${key}`, /^line 1: the option from= wants its value in double quotes \(from="\.\.\."\)$/],
    [`from="10.0.0.0/8"no-pty ${key}`, /^line 1: the options want a comma after "from="10\.0\.0\.0\/8""$/],
    [`no-pty, ${key}`, /^line 1: the options end with a comma$/],
  ];
  for (const [line, message] of cases) {
    const r = await checkPublicKeys(line);
    assert.equal(r.problems.length, 1, line);
    assert.match(r.problems[0]!, message, line);
    assert.deepEqual(r.keys, [], line);
    assert.deepEqual(readCheckedKeys(line), [], `${line}: the synchronous re-read installs nothing either`);
  }
  // OpenSSH itself finds no key where the quote is never closed.
  assert.equal(await sshKeygenReads(`from="10.0.0.0/8 ${key}`), null);
  assert.equal(await sshKeygenReads(String.raw`command="a\\" ${key}`), null);
});

test('a word that is only an inherited property name is not a key type', async () => {
  assert.deepEqual((await checkPublicKeys('constructor AAAA x')).problems, ['line 1: not an SSH public key (wanted TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAAC3Nz... alice@laptop)']);
  assert.deepEqual(readCheckedKeys('toString AAAA x'), []);
});

test('text with an open quote but no key in it is not taken for options', async () => {
  assert.deepEqual((await checkPublicKeys('He said "hello there')).problems, ['line 1: not an SSH public key (wanted TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAAC3Nz... alice@laptop)']);
});
