import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { authorizedKeysLine, checkPublicKeys, describeKey, PRIVATE_KEY_REFUSED, readCheckedKeys, generateKeyPair } from '../../src/ssh/keys.ts';
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
