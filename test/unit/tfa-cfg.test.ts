import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import {
  addTfaEntry,
  deleteTfaEntry,
  emptyTfaConfig,
  listTfa,
  listUserTfa,
  parseTfaCfg,
  parseTotpUri,
  tfaChallenge,
  unlockTfa,
  verifyTfaResponse,
  writeTfaCfg,
  type FailureCounts,
} from '../../src/pve/tfa-cfg.ts';

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const URI = `otpauth://totp/Proxmox%20VE:alice%40pam?secret=${SECRET}&digits=6&algorithm=SHA1&period=30&issuer=Proxmox%20VE`;
const totp = new TOTP({ secret: Secret.fromBase32(SECRET), digits: 6, period: 30, algorithm: 'SHA1' });
const T0 = Date.UTC(2026, 11, 3, 9, 0, 0); // a step boundary (divisible by 30 s)
const code = (ms: number) => totp.generate({ timestamp: ms });
const zero = (): FailureCounts => ({ totpFailures: 0, tfaFailures: 0 });

// a file as PVE writes it: compact, kebab-case keys, a used TOTP (object form), a plain one, a used recovery key, locks
const REAL =
  '{"users":{"admin@pam":{"totp":[{"id":"3a0c2f4e-9c1d-4e55-8d7b-2b6d1f0e9a11","description":"phone","created":1722950000,"entry":{"totp":"' +
  URI +
  '","last-count":57431666}},{"id":"0f0e4c3a-8d3b-4b8e-9b1a-6f1c0c5e2d21","created":1722950100,"enable":false,"entry":"' +
  URI +
  '"}],"recovery":{"secret":"0123456789abcdef","entries":["' +
  'a'.repeat(64) +
  '",null,"' +
  'b'.repeat(64) +
  '"],"created":1722950200},"totp-locked":true,"tfa-locked-until":4102444800}}}';

test('tfa.cfg: a real-looking file round-trips byte for byte; empty is {}', () => {
  const cfg = parseTfaCfg(REAL, 1_800_000_000);
  assert.equal(writeTfaCfg(cfg), REAL);
  const u = cfg.users.get('admin@pam')!;
  assert.equal(u.totp[0]!.lastCount, 57431666);
  assert.equal(u.totp[1]!.lastCount, null);
  assert.equal(u.totp[1]!.enable, false);
  assert.equal(u.totp[1]!.description, '');
  assert.deepEqual(u.recovery!.entries[1], null);
  assert.equal(u.totpLocked, true);
  assert.equal(writeTfaCfg(parseTfaCfg('')), '{}');
  assert.equal(writeTfaCfg(emptyTfaConfig()), '{}');
  // an expired tfa-locked-until is dropped on reading (filter_expired_timestamp)
  assert.equal(parseTfaCfg(REAL, 4102444801).users.get('admin@pam')!.tfaLockedUntil, null);
  assert.throws(() => parseTfaCfg('{"users":{"x@pam":{"bogus":1}}}'), /unknown field `bogus`/);
  assert.throws(() => parseTfaCfg('{"users":{"x@pam":{"totp":[{"id":"a","created":1,"entry":"otpauth://hotp/x?secret=AA"}]}}}'), /not an otpauth uri/);
});

test('otpauth URIs as proxmox-tfa takes them: only the five keys, base32 without padding', () => {
  assert.deepEqual(parseTotpUri(URI), { secret: SECRET, digits: 6, algorithm: 'SHA1', period: 30, issuer: 'Proxmox VE', account: 'alice@pam' });
  assert.throws(() => parseTotpUri(`${URI}&image=x`), /unknown otpauth uri parameter: 'image'/);
  assert.throws(() => parseTotpUri('otpauth://totp/x?secret=JBSWY3DPEE======'), /failed to decode otp secret/);
  assert.throws(() => parseTotpUri('otpauth://totp/x?digits=6'), /missing secret/);
  assert.throws(() => parseTotpUri('otpauth://totp/x'), /missing '\?'/);
  assert.throws(() => parseTotpUri('otpauth://totp/x?secret=AA&algorithm=MD5'), /unsupported algorithm: 'MD5'/);
});

test('adding TOTP: description required, the code checked within one step either side', () => {
  const cfg = emptyTfaConfig();
  assert.throws(() => addTfaEntry(cfg, 'alice@pam', { type: 'totp', totp: URI, value: code(T0) }, T0), /'description' is required for new entries/);
  assert.throws(() => addTfaEntry(cfg, 'alice@pam', { type: 'totp', description: 'p', totp: URI }, T0), /requires both 'totp' and 'value'/);
  assert.throws(() => addTfaEntry(cfg, 'alice@pam', { type: 'totp', description: 'p', totp: URI, value: code(T0 - 60_000) }, T0), /failed to verify TOTP challenge/);
  assert.throws(() => addTfaEntry(cfg, 'alice@pam', { type: 'totp', description: 'p', totp: URI, value: code(T0 + 60_000) }, T0), /failed to verify TOTP challenge/);
  assert.equal(cfg.users.size, 0, 'nothing added on failure');
  const prev = addTfaEntry(cfg, 'alice@pam', { type: 'totp', description: 'phone', totp: URI, value: code(T0 - 30_000) }, T0);
  assert.match(prev.id, /^[0-9a-f-]{36}$/);
  addTfaEntry(cfg, 'alice@pam', { type: 'totp', description: 'tablet', totp: URI, value: code(T0 + 30_000) }, T0);
  assert.deepEqual(listUserTfa(cfg, 'alice@pam').map((e) => [e.type, e.description, e.created]), [['totp', 'phone', T0 / 1000], ['totp', 'tablet', T0 / 1000]]);
  assert.deepEqual(tfaChallenge(cfg, 'alice@pam'), { totp: true });
  assert.equal(tfaChallenge(cfg, 'bob@pam'), null);
});

test('login TOTP: ±1 step, a reused step refused, 8 failures lock TOTP, unlock clears it', () => {
  const cfg = emptyTfaConfig();
  addTfaEntry(cfg, 'alice@pam', { type: 'totp', description: 'phone', totp: URI, value: code(T0) }, T0);
  const counts = zero();
  const now = T0 + 3_600_000;
  let r = verifyTfaResponse(cfg, counts, 'alice@pam', `totp:${code(now - 30_000)}`, now);
  assert.equal(r.result, true);
  assert.equal(cfg.users.get('alice@pam')!.totp[0]!.lastCount, now / 30_000 - 1);
  r = verifyTfaResponse(cfg, counts, 'alice@pam', `totp:${code(now - 30_000)}`, now);
  assert.deepEqual([r.result, !r.result && r.error], [false, 'rejecting reused TOTP value']);
  assert.equal(counts.totpFailures, 1, 'a reuse counts as a TOTP failure');
  r = verifyTfaResponse(cfg, counts, 'alice@pam', `totp:${code(now)}`, now);
  assert.equal(r.result, true, 'the next step is accepted');
  assert.deepEqual(counts, { totpFailures: 0, tfaFailures: 0 }, 'success resets both counters');
  r = verifyTfaResponse(cfg, counts, 'alice@pam', `totp:${code(now + 120_000)}`, now);
  assert.deepEqual([r.result, !r.result && r.error], [false, 'totp verification failed']);
  for (let i = 2; i <= 7; i++) {
    r = verifyTfaResponse(cfg, counts, 'alice@pam', 'totp:000000', now);
    assert.ok(!r.result && !r.locked && !r.totpLimitReached, `failure ${i} does not lock`);
  }
  assert.equal(cfg.users.get('alice@pam')!.totpLocked, false);
  r = verifyTfaResponse(cfg, counts, 'alice@pam', 'totp:000000', now);
  assert.ok(!r.result && !r.locked && r.totpLimitReached && r.needsSaving, 'the 8th failure reaches the limit');
  assert.equal(cfg.users.get('alice@pam')!.totpLocked, true);
  assert.match(writeTfaCfg(cfg), /"totp-locked":true/);
  r = verifyTfaResponse(cfg, counts, 'alice@pam', `totp:${code(now + 30_000)}`, now + 30_000);
  assert.ok(!r.result && r.locked, 'locked: even the right code is refused');
  assert.deepEqual(listTfa(cfg, now / 1000).map((u) => [u.userid, u['totp-locked']]), [['alice@pam', true]]);
  assert.equal(unlockTfa(cfg, counts, 'alice@pam', now / 1000), true);
  assert.equal(unlockTfa(cfg, counts, 'alice@pam', now / 1000), false, 'nothing left to unlock');
  assert.deepEqual(counts, { totpFailures: 0, tfaFailures: 0 });
  r = verifyTfaResponse(cfg, counts, 'alice@pam', `totp:${code(now + 30_000)}`, now + 30_000);
  assert.equal(r.result, true);
});

test('100 second-factor failures lock all TFA for an hour', () => {
  const cfg = emptyTfaConfig();
  addTfaEntry(cfg, 'alice@pam', { type: 'recovery' }, T0);
  const counts = zero();
  let r = verifyTfaResponse(cfg, counts, 'alice@pam', 'recovery:0000-0000-0000-0000', T0);
  for (let i = 2; i <= 100; i++) r = verifyTfaResponse(cfg, counts, 'alice@pam', 'recovery:0000-0000-0000-0000', T0);
  assert.ok(!r.result && !r.locked && r.tfaLimitReached);
  assert.equal(cfg.users.get('alice@pam')!.tfaLockedUntil, T0 / 1000 + 3600);
  r = verifyTfaResponse(cfg, counts, 'alice@pam', 'recovery:0000-0000-0000-0000', T0 + 3_599_000);
  assert.ok(!r.result && r.locked);
  r = verifyTfaResponse(cfg, counts, 'alice@pam', 'recovery:0000-0000-0000-0000', T0 + 3_600_000);
  assert.ok(!r.result && !r.locked, 'the lock is over after 3600 s');
});

test('recovery keys: 10 codes in proxmox-tfa format, HMAC-SHA256 with the per-user salt, each usable once, one set per user', () => {
  const cfg = emptyTfaConfig();
  const res = addTfaEntry(cfg, 'alice@pam', { type: 'recovery' }, T0);
  assert.equal(res.id, 'recovery');
  assert.equal(res.recovery!.length, 10);
  for (const k of res.recovery!) assert.match(k, /^[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}$/);
  assert.equal(new Set(res.recovery).size, 10);
  const rec = cfg.users.get('alice@pam')!.recovery!;
  assert.match(rec.secret, /^[0-9a-f]{16}$/);
  assert.equal(rec.entries[3], createHmac('sha256', rec.secret).update(res.recovery![3]!).digest('hex'));
  assert.ok(!writeTfaCfg(cfg).includes(res.recovery![0]!), 'the keys themselves are never stored');
  assert.throws(() => addTfaEntry(cfg, 'alice@pam', { type: 'recovery' }, T0), /user already has recovery keys/);
  assert.throws(() => addTfaEntry(cfg, 'bob@pam', { type: 'recovery', description: 'x' }, T0), /does not allow additional parameters/);
  // TOTP locked: a recovery key gets in and lifts the lock
  addTfaEntry(cfg, 'alice@pam', { type: 'totp', description: 'phone', totp: URI, value: code(T0) }, T0);
  cfg.users.get('alice@pam')!.totpLocked = true;
  const counts = { totpFailures: 8, tfaFailures: 8 };
  assert.deepEqual(tfaChallenge(cfg, 'alice@pam'), { totp: true, recovery: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] });
  let r = verifyTfaResponse(cfg, counts, 'alice@pam', `recovery:${res.recovery![3]}`, T0);
  assert.equal(r.result, true);
  assert.equal(cfg.users.get('alice@pam')!.totpLocked, false);
  assert.deepEqual(counts, { totpFailures: 0, tfaFailures: 0 });
  assert.equal(rec.entries[3], null);
  assert.deepEqual(tfaChallenge(cfg, 'alice@pam')!.recovery, [0, 1, 2, 4, 5, 6, 7, 8, 9]);
  r = verifyTfaResponse(cfg, counts, 'alice@pam', `recovery:${res.recovery![3]}`, T0);
  assert.deepEqual([r.result, !r.result && r.error], [false, 'recovery verification failed']);
  // listing and deleting
  assert.deepEqual(listUserTfa(cfg, 'alice@pam').map((e) => e.type), ['recovery', 'totp']);
  assert.equal(deleteTfaEntry(cfg, 'alice@pam', 'recovery'), true);
  assert.throws(() => deleteTfaEntry(cfg, 'alice@pam', 'recovery'), /no such entry/);
  const id = listUserTfa(cfg, 'alice@pam')[0]!.id;
  assert.equal(deleteTfaEntry(cfg, 'alice@pam', id), false, 'no entries left');
  assert.equal(writeTfaCfg(cfg), '{}');
});
