/**
 * TOTP enrolment: the URI is byte for byte what Proxmox's web UI builds
 * (proxmox-widget-toolkit src/window/AddTotp.js), Proxmox's parser would take
 * it (proxmox-tfa src/totp.rs Totp::from_str), codes verify in Proxmox's
 * window of one step either side, and the secret never prints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { Secret } from '../../src/system/secret.ts';
import { checkCodeFormat, normalizeCode, proxmoxTotpUri, validateProxmoxTotpUri } from '../../src/tfa/totp.ts';
import { newTotpSecret, totpCode, verifyTotp } from '../../src/tfa/totp-codes.ts';

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

test('the URI is the web UI form, issuer and user percent-encoded, for the default issuer', () => {
  const uri = proxmoxTotpUri({ secret: new Secret(SECRET), userid: 'alice@pam' });
  assert.equal(
    uri.reveal(),
    'otpauth://totp/Proxmox:alice%40pam?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&period=30&digits=6&algorithm=SHA1&issuer=Proxmox',
  );
});

test('the URI encodes an issuer with spaces and a user with special characters as encodeURIComponent does', () => {
  const uri = proxmoxTotpUri({ secret: new Secret(SECRET), userid: 'bob.o\'neil+ops@pve', issuer: 'Proxmox - pve1 (lab)/a:b' });
  assert.equal(
    uri.reveal(),
    "otpauth://totp/Proxmox%20-%20pve1%20(lab)%2Fa%3Ab:bob.o'neil%2Bops%40pve?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&period=30&digits=6&algorithm=SHA1&issuer=Proxmox%20-%20pve1%20(lab)%2Fa%3Ab",
  );
  assert.equal(validateProxmoxTotpUri(uri.reveal()), undefined);
});

test('the URI is a Secret: it does not print', () => {
  const uri = proxmoxTotpUri({ secret: new Secret(SECRET), userid: 'alice@pam' });
  assert.ok(uri instanceof Secret);
  for (const shown of [String(uri), `${uri}`, JSON.stringify({ uri }), inspect({ uri })]) assert.ok(!shown.includes(SECRET), shown);
});

test('the URI refuses a secret Proxmox could not read', () => {
  assert.throws(() => proxmoxTotpUri({ secret: new Secret('JBSWY3DPEHPK3PX='), userid: 'alice@pam' }), /padding/);
  assert.throws(() => proxmoxTotpUri({ secret: new Secret('JBSWY3DPEHPK3PX1'), userid: 'alice@pam' }), /base32/);
  assert.throws(() => proxmoxTotpUri({ secret: new Secret(''), userid: 'alice@pam' }), /missing secret/);
});

test('a new secret is 32 base32 characters (160 bits), fresh each time, and never prints', () => {
  const a = newTotpSecret();
  const b = newTotpSecret();
  assert.ok(a instanceof Secret);
  assert.match(a.reveal(), /^[A-Z2-7]{32}$/);
  assert.match(b.reveal(), /^[A-Z2-7]{32}$/);
  assert.notEqual(a.reveal(), b.reveal());
  for (const shown of [String(a), JSON.stringify(a), JSON.stringify({ a }), inspect(a)]) assert.ok(!shown.includes(a.reveal()), shown);
  // Proxmox takes a URI made from it.
  assert.equal(validateProxmoxTotpUri(proxmoxTotpUri({ secret: a, userid: 'root@pam' }).reveal()), undefined);
});

test('validateProxmoxTotpUri refuses what Totp::from_str refuses', () => {
  const good = proxmoxTotpUri({ secret: new Secret(SECRET), userid: 'alice@pam' }).reveal();
  assert.equal(validateProxmoxTotpUri(good), undefined);
  assert.equal(validateProxmoxTotpUri(`${good}&image=https%3A%2F%2Fexample.com%2Flogo.png`), "unknown otpauth uri parameter: 'image'");
  assert.match(validateProxmoxTotpUri(good.replace(SECRET, 'JBSWY3DPEHPK3PX=')) ?? '', /padding/);
  assert.match(validateProxmoxTotpUri(good.replace(SECRET, `${SECRET.slice(0, 24)}========`)) ?? '', /padding/);
  assert.match(validateProxmoxTotpUri(good.replace(SECRET, 'JBSWY3DPEHPK3PX0')) ?? '', /failed to decode otp secret/);
  assert.equal(validateProxmoxTotpUri(good.replace(SECRET, '')), 'missing secret in otpauth url');
  assert.equal(validateProxmoxTotpUri(good.replace(`secret=${SECRET}&`, '')), 'missing secret in otpauth url');
  assert.equal(validateProxmoxTotpUri(good.replace('otpauth://totp/', 'otpauth://hotp/')), 'not an otpauth uri');
  assert.equal(validateProxmoxTotpUri(good.replace('?', '/')), "missing '?' in otp uri");
  assert.equal(validateProxmoxTotpUri(good.replace('algorithm=SHA1', 'algorithm=MD5')), "unsupported algorithm: 'MD5'");
  assert.equal(validateProxmoxTotpUri(good.replace('digits=6', 'digits=six')), "failed to parse value 'digits'");
  assert.equal(validateProxmoxTotpUri(good.replace('period=30', 'period=-30')), "failed to parse value 'period'");
  assert.equal(validateProxmoxTotpUri(`${good}&flag`), 'bad value in otpauth uri');
  // What Proxmox does take: lower-case secret, lower-case algorithm, no issuer at all, keys in any order.
  assert.equal(validateProxmoxTotpUri(good.replace(SECRET, SECRET.toLowerCase())), undefined);
  assert.equal(validateProxmoxTotpUri(`otpauth://totp/alice%40pam?algorithm=sha256&secret=${SECRET}`), undefined);
});

test('codes match RFC 6238 (SHA1, 6 digits, 30 s)', () => {
  // RFC 6238 appendix B: key "12345678901234567890"; its 8-digit codes end in these 6.
  const rfc = new Secret('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  assert.equal(totpCode(rfc, 59_000), '287082');
  assert.equal(totpCode(rfc, 1_111_111_109_000), '081804');
  assert.equal(totpCode(rfc, 1_234_567_890_000), '005924');
  assert.equal(verifyTotp(rfc, '005924', 1_234_567_890_000), true);
});

test('verify accepts the previous, current and next step and refuses two steps away', () => {
  const secret = new Secret(SECRET);
  const now = 1_764_000_015_000; // mid-step
  const at = (steps: number) => totpCode(secret, now + steps * 30_000);
  for (const step of [-1, 0, 1]) assert.equal(verifyTotp(secret, at(step), now), true, `step ${step}`);
  for (const step of [-2, 2, -3, 3]) {
    // Only meaningful when that step's code is not also one of the window's.
    assert.ok(![-1, 0, 1].some((s) => at(s) === at(step)));
    assert.equal(verifyTotp(secret, at(step), now), false, `step ${step}`);
  }
  // As typed from an app that shows "123 456".
  const spaced = `${at(0).slice(0, 3)} ${at(0).slice(3)}`;
  assert.equal(verifyTotp(secret, spaced, now), true);
  assert.equal(normalizeCode(spaced), at(0));
  // Another secret's code is refused; so is a wrong format.
  assert.equal(verifyTotp(new Secret('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'), at(0), now), false);
  assert.equal(verifyTotp(secret, at(0).slice(0, 5), now), false);
  assert.equal(verifyTotp(secret, `${at(0)}0`, now), false);
});

test('checkCodeFormat names what is wanted', () => {
  for (const ok of ['123456', ' 123456 ', '123 456', '000000']) assert.equal(checkCodeFormat(ok), undefined, ok);
  for (const bad of ['', '   ', '12345', '1234567', '12a456', '12345x', '１２３４５６', '-12345']) {
    const problem = checkCodeFormat(bad);
    assert.ok(problem, `"${bad}" accepted`);
    assert.match(problem!, /6 digits from the authenticator app/);
  }
  assert.equal(checkCodeFormat(''), 'enter the 6 digits from the authenticator app');
  assert.equal(checkCodeFormat('12345'), 'that is 5 digits; the code is 6 digits from the authenticator app');
  assert.equal(checkCodeFormat('12a456'), 'only digits, please: the code is 6 digits from the authenticator app');
});
