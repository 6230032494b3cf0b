import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Exec, ExecResult } from '../../src/system/exec.ts';
import { journalArgv, parseAcceptedLogins, parseJournalJson, watchForLogin, describeLogin } from '../../src/ssh/login-watch.ts';
import { PROBE_COMMENT, parseSshVerbose, probeKeyLine, withoutProbeKey } from '../../src/ssh/prober.ts';

const FP_A = 'SHA256:n3zcqvHMmnSmcdRQ0aZ3ZzmQk0JtuC3vVVv8kz3b0Qk';
const FP_P = 'SHA256:Pr0be0nlyKeyFingerprint0000000000000000000AA';

test('parseAcceptedLogins reads INFO and VERBOSE lines of every key type, and nothing else', () => {
  const text = [
    '2026-11-22T17:47:09+00:00 pve sshd-session[1201]: Connection from 10.77.7.1 port 50412 on 10.77.7.2 port 22 rdomain ""',
    `2026-11-22T17:47:09+00:00 pve sshd-session[1201]: Failed publickey for alice from 10.77.7.1 port 50412 ssh2: RSA ${FP_P}`,
    `2026-11-22T17:47:10+00:00 pve sshd-session[1201]: Accepted key ED25519 ${FP_A} found at /home/alice/.ssh/authorized_keys:1`,
    `2026-11-22T17:47:10+00:00 pve sshd-session[1201]: Accepted publickey for alice from 10.77.7.1 port 50412 ssh2: ED25519 ${FP_A}`,
    `Nov 22 17:48:01 pve sshd[99]: Accepted publickey for bob from 2001:db8::7 port 40022 ssh2: RSA SHA256:rsaRSArsa+/x`,
    `2026-11-22T17:49:00.123456+0000 pve sshd-session[7]: Accepted publickey for carol from fe80::1%eth0 port 1 ssh2: ECDSA SHA256:ecdsa0`,
    'Accepted publickey for dave from 10.0.0.9 port 2222 ssh2: ED25519-SK SHA256:sk1',
    'Accepted password for root from 10.0.0.9 port 2223 ssh2',
    'Partial publickey for erin from 10.0.0.9 port 2224 ssh2: ED25519 SHA256:p',
    `Accepted publickey for frank from 10.0.0.9 port 2225 ssh2: ED25519-CERT SHA256:cert ID frank (serial 4) CA ED25519 SHA256:ca`,
  ].join('\n');
  const logins = parseAcceptedLogins(text);
  assert.deepEqual(
    logins.map((l) => [l.method, l.user, l.address, l.port, l.keyType, l.fingerprint]),
    [
      ['publickey', 'alice', '10.77.7.1', 50412, 'ED25519', FP_A],
      ['publickey', 'bob', '2001:db8::7', 40022, 'RSA', 'SHA256:rsaRSArsa+/x'],
      ['publickey', 'carol', 'fe80::1%eth0', 1, 'ECDSA', 'SHA256:ecdsa0'],
      ['publickey', 'dave', '10.0.0.9', 2222, 'ED25519-SK', 'SHA256:sk1'],
      ['password', 'root', '10.0.0.9', 2223, '', ''],
      ['publickey', 'frank', '10.0.0.9', 2225, 'ED25519-CERT', 'SHA256:cert'],
    ],
  );
  assert.equal(logins[0]!.time?.toISOString(), '2026-11-22T17:47:10.000Z');
  assert.equal(logins[2]!.time?.toISOString(), '2026-11-22T17:49:00.123Z');
  assert.equal(logins[1]!.time, undefined);
  assert.match(describeLogin(logins[0]!), /alice from 10\.77\.7\.1 \(port 50412\) with ED25519 key SHA256:/);
});

const entry = (usec: number, message: string | number[], extra: Record<string, string> = {}) =>
  JSON.stringify({ __CURSOR: `c${usec}`, __REALTIME_TIMESTAMP: String(usec), _UID: '0', _COMM: 'sshd-session', MESSAGE: message, ...extra });

test('parseJournalJson counts only root-owned sshd entries (a logger line cannot fake a login)', () => {
  const line = `Accepted publickey for alice from 10.77.7.1 port 50412 ssh2: ED25519 ${FP_A}`;
  const text = [
    entry(1_700_000_000_000_000, line),
    entry(1_700_000_001_000_000, line, { _UID: '1000', _COMM: 'logger' }),
    entry(1_700_000_002_000_000, line, { _UID: '1000', _COMM: 'sshd' }),
    entry(1_700_000_003_000_000, [...Buffer.from(line.replace('alice', 'bob'))]),
    'not json',
  ].join('\n');
  const logins = parseJournalJson(text);
  assert.deepEqual(logins.map((l) => [l.user, l.cursor]), [['alice', 'c1700000000000000'], ['bob', 'c1700000003000000']]);
  assert.equal(logins[0]!.time?.getTime(), 1_700_000_000_000);
});

test('journalArgv: since a time (UTC seconds) or after a cursor; only sshd processes', () => {
  const a = journalArgv(new Date(1_700_000_000_500));
  assert.ok(a.includes('--since=@1699999999'));
  assert.ok(a.includes('_COMM=sshd-session') && a.includes('-o') && a.includes('json'));
  assert.ok(journalArgv({ cursor: 's=abc;i=1' }).includes('--after-cursor=s=abc;i=1'));
});

/** A journal that grows on each poll; records the argv it was asked with. */
function fakeJournal(rounds: string[][]): Exec & { calls: string[][] } {
  const calls: string[][] = [];
  let i = 0;
  return {
    calls,
    async run(argv): Promise<ExecResult> {
      calls.push([...argv]);
      const lines = rounds[Math.min(i, rounds.length - 1)] ?? [];
      i++;
      return { argv: [...argv], exitCode: 0, stdout: lines.join('\n') + (lines.length ? '\n' : ''), stderr: '' };
    },
  };
}

test('watchForLogin waits for the admin key login, skipping the probe key, other users and old entries', async () => {
  const since = new Date(1_700_000_100_000);
  const t = (s: number) => (1_700_000_100 + s) * 1_000_000;
  const exec = fakeJournal([
    [entry(t(-5), `Accepted publickey for alice from 10.77.7.9 port 1 ssh2: ED25519 ${FP_A}`)],
    [entry(t(1), `Accepted publickey for alice from 10.77.7.2 port 2 ssh2: ED25519 ${FP_P}`)],
    [
      entry(t(2), `Failed publickey for alice from 10.77.7.1 port 3 ssh2: RSA ${FP_A}`),
      entry(t(3), `Accepted publickey for root from 10.77.7.1 port 4 ssh2: ED25519 ${FP_A}`),
      entry(t(4), 'Accepted password for alice from 10.77.7.1 port 5 ssh2'),
    ],
    [entry(t(6), `Accepted publickey for alice from 10.77.7.1 port 50412 ssh2: ED25519 ${FP_A}`)],
  ]);
  const login = await watchForLogin(exec, { user: 'alice', since, excludeFingerprints: [FP_P], timeoutMs: 5000, pollMs: 5 });
  assert.ok(login);
  assert.deepEqual([login.user, login.address, login.port, login.fingerprint], ['alice', '10.77.7.1', 50412, FP_A]);
  assert.equal(exec.calls.length, 4);
  assert.ok(exec.calls[0]!.some((a) => a.startsWith('--since=@')));
  // Later polls read on after the last entry seen.
  assert.ok(exec.calls[2]!.includes(`--after-cursor=c${t(1)}`));
  assert.ok(exec.calls[3]!.includes(`--after-cursor=c${t(4)}`));
});

test('watchForLogin: only the listed fingerprints count when given', async () => {
  const exec = fakeJournal([[entry(2_000_000_000_000_000, `Accepted publickey for alice from 10.0.0.1 port 9 ssh2: ED25519 ${FP_A}`)]]);
  const none = await watchForLogin(exec, { user: 'alice', since: { cursor: 'x' }, fingerprints: ['SHA256:other'], timeoutMs: 40, pollMs: 5 });
  assert.equal(none, null);
  assert.ok(exec.calls[0]!.includes('--after-cursor=x'));
  const some = await watchForLogin(exec, { user: 'alice', since: { cursor: 'x' }, fingerprints: [FP_A], timeoutMs: 40, pollMs: 5 });
  assert.equal(some?.fingerprint, FP_A);
});

test('watchForLogin returns null on timeout and on abort', async () => {
  const exec = fakeJournal([[]]);
  const t0 = Date.now();
  assert.equal(await watchForLogin(exec, { user: 'alice', since: new Date(), timeoutMs: 30, pollMs: 5 }), null);
  assert.ok(Date.now() - t0 < 1000);
  const ac = new AbortController();
  const pending = watchForLogin(exec, { user: 'alice', since: new Date(), timeoutMs: 60_000, pollMs: 10_000, signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  const t1 = Date.now();
  assert.equal(await pending, null);
  assert.ok(Date.now() - t1 < 2000);
});

test('probe key line: from= and the restrictions; withoutProbeKey removes only our lines', () => {
  const pub = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBB pve-baseline-probe';
  const line = probeKeyLine(pub, '10.77.7.1');
  assert.equal(
    line,
    'from="10.77.7.1",restrict,command="/bin/true" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBB pve-baseline-probe',
  );
  assert.throws(() => probeKeyLine(pub, '10.0.0.1" ,command="sh'));
  assert.ok(probeKeyLine(pub, '2001:db8::1').startsWith('from="2001:db8::1",'));
  const own = 'ssh-ed25519 AAAAown alice@laptop';
  const content = `# keys\n${own}\n${line}\n${line}\nssh-rsa AAAAother ${PROBE_COMMENT}-not\n`;
  assert.equal(withoutProbeKey(content), `# keys\n${own}\nssh-rsa AAAAother ${PROBE_COMMENT}-not\n`);
  assert.equal(withoutProbeKey(`${own}\n`), `${own}\n`);
});

test('parseSshVerbose reads the negotiation and the offered methods of ssh -v', () => {
  const v = parseSshVerbose(
    [
      'debug1: kex: algorithm: curve25519-sha256',
      'debug1: kex: host key algorithm: ssh-ed25519',
      'debug1: kex: server->client cipher: chacha20-poly1305@openssh.com MAC: <implicit> compression: none',
      'debug1: kex: client->server cipher: chacha20-poly1305@openssh.com MAC: <implicit> compression: none',
      'debug1: Authentications that can continue: publickey',
      'debug1: Authentication succeeded (publickey).',
      'Authenticated to 10.77.7.2 ([10.77.7.2]:22) using "publickey".',
    ].join('\n'),
  );
  assert.equal(v.kex, 'curve25519-sha256');
  assert.equal(v.hostKey, 'ssh-ed25519');
  assert.deepEqual(v.ciphers, ['chacha20-poly1305@openssh.com', 'chacha20-poly1305@openssh.com']);
  assert.deepEqual(v.macs, ['<implicit>', '<implicit>']);
  assert.deepEqual(v.methods, ['publickey']);
  assert.equal(v.authenticatedWith, 'publickey');
});

test('watchForLogin: only logins from the given address count, IPv4-mapped or not', async () => {
  const lines = [
    { MESSAGE: `Accepted publickey for alice from 10.77.9.66 port 40000 ssh2: ED25519 ${FP_A}`, _COMM: 'sshd-session', _UID: '0', __REALTIME_TIMESTAMP: String(Date.now() * 1000), __CURSOR: 'c1' },
    { MESSAGE: `Accepted publickey for alice from ::ffff:10.77.9.1 port 40001 ssh2: ED25519 ${FP_A}`, _COMM: 'sshd-session', _UID: '0', __REALTIME_TIMESTAMP: String(Date.now() * 1000), __CURSOR: 'c2' },
  ];
  const exec = { run: async () => ({ exitCode: 0, stdout: lines.map((l) => JSON.stringify(l)).join('\n'), stderr: '' }) } as unknown as Parameters<typeof watchForLogin>[0];
  const login = await watchForLogin(exec, { user: 'alice', since: { cursor: 'x' }, from: '10.77.9.1', timeoutMs: 40, pollMs: 5 });
  assert.equal(login?.port, 40001, 'the outsider address does not count; the mapped operator address does');
  assert.equal(await watchForLogin(exec, { user: 'alice', since: { cursor: 'x' }, from: '10.77.9.2', timeoutMs: 30, pollMs: 5 }), null);
});
