/**
 * Issue 5, the proofs of a hardened sshd against the node's real OpenSSH 10:
 * probe() (ssh2, from the workstation side) fails on the fresh node (password
 * offered) and passes once the hardened drop-in is reloaded; a post-quantum
 * only key exchange is reported as beyond ssh2, and probeWithOpenSsh() proves
 * it with the OpenSSH client instead; watchForLogin() (journalctl in the
 * node) sees the admin's own key login, with who and from where, and leaves
 * out the probe key's. Starts and ends with a reset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labOrSkip, sh } from './helpers.ts';
import type { Lab } from './lab.ts';
import { LocalExec, type Exec } from '../../src/system/exec.ts';
import { loadSsh2 } from '../../src/ssh/ssh2.ts';
import { fingerprintOf, generateKeyPair } from '../../src/ssh/keys.ts';
import { makeProbeKey, probe, probeKeyLine, probeWithOpenSsh, withoutProbeKey, PROBE_COMMENT, type ExpectedAlgorithms, type ProbeResult } from '../../src/ssh/prober.ts';
import { watchForLogin } from '../../src/ssh/login-watch.ts';

const lab = await labOrSkip();

function nodeExec(node: Lab): Exec {
  return {
    async run(argv, options = {}) {
      const input = options.input === undefined ? undefined : typeof options.input === 'string' ? options.input : options.input.reveal();
      const r = await node.exec(argv, { ...(input !== undefined ? { input } : {}), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
      return { argv: [...argv], exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

const DROP_IN = '/etc/ssh/sshd_config.d/00-pve-baseline.conf';
const EXPECT: ExpectedAlgorithms = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org'],
  ciphers: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr'],
  macs: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'umac-128-etm@openssh.com'],
  hostKeys: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'],
};
const dropIn = (kex: readonly string[]) =>
  [
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AuthenticationMethods publickey',
    'PermitRootLogin prohibit-password',
    'LogLevel VERBOSE',
    `KexAlgorithms ${kex.join(',')}`,
    `Ciphers ${EXPECT.ciphers.join(',')}`,
    `MACs ${EXPECT.macs.join(',')}`,
    `HostKeyAlgorithms ${EXPECT.hostKeys.join(',')}`,
    '',
  ].join('\n');

async function writeDropIn(node: Lab, content: string): Promise<void> {
  const w = await node.exec(['sh', '-c', 'cat > "$1" && chmod 644 "$1"', 'w', DROP_IN], { input: content });
  assert.equal(w.exitCode, 0, w.stderr);
  await sh(node, 'sshd -t && systemctl reload ssh');
  // reload returns before sshd has re-read its config: wait until -T shows it (config check) and give the listener a moment.
  await new Promise((r) => setTimeout(r, 700));
}

const failing = (r: ProbeResult) => r.checks.filter((c) => !c.ok).map((c) => `${c.label}: ${c.detail}`);

if (lab) {
  const exec = nodeExec(lab);
  const probeKey = await makeProbeKey();
  const { utils } = await loadSsh2();
  const own = await generateKeyPair('ed25519', { comment: 'alice@laptop' });
  const ownFingerprint = fingerprintOf(Buffer.from(own.public.split(/\s+/)[1]!, 'base64'));
  const base = { host: lab.nodeAddress, admin: 'alice', privateKey: probeKey.privateKey, expect: EXPECT, timeoutMs: 15_000 };

  test('reset, and alice with her own key and the restricted probe key', { timeout: 300_000 }, async () => {
    await lab.reset();
    await sh(lab, "useradd -m -s /bin/bash alice && usermod -p '*' alice && install -d -m 700 -o alice -g alice /home/alice/.ssh");
    const keys = `${own.public.trim()}\n${probeKeyLine(probeKey.publicKey, lab.workstationAddress)}\n`;
    const w = await lab.exec(['sh', '-c', 'f=/home/alice/.ssh/authorized_keys; cat > $f && chown alice:alice $f && chmod 600 $f'], { input: keys });
    assert.equal(w.exitCode, 0, w.stderr);
    assert.match(probeKeyLine(probeKey.publicKey, lab.workstationAddress), new RegExp(`from="${lab.workstationAddress}",.*command="/bin/true" ssh-ed25519 \\S+ ${PROBE_COMMENT}$`));
  });

  test('on the fresh node the probe fails: password authentication is offered', { timeout: 120_000 }, async () => {
    const r = await probe(base);
    assert.equal(r.outcome, 'done', r.reason);
    const byLabel = new Map(r.checks.map((c) => [c.label, c]));
    assert.equal(byLabel.get('alice logs in with a key')?.ok, true, byLabel.get('alice logs in with a key')?.detail);
    const methods = byLabel.get('publickey is the only authentication method offered')!;
    assert.equal(methods.ok, false);
    assert.match(methods.detail ?? '', /password/);
    // Debian's defaults offer more than the chosen lists (e.g. sntrup/mlkem, ecdh, umac-64).
    assert.equal(byLabel.get('key exchange is one of the chosen')?.ok, false);
  });

  test('with the hardened drop-in every check of probe() passes', { timeout: 120_000 }, async () => {
    await writeDropIn(lab, dropIn(EXPECT.kex));
    const r = await probe(base);
    assert.equal(r.outcome, 'done', r.reason);
    assert.deepEqual(failing(r), []);
    assert.equal(r.checks.length, 8);
    assert.deepEqual(r.offered?.kex, EXPECT.kex);
    for (const c of r.checks) process.stderr.write(`  ✓ ${c.label}: ${c.detail}\n`);
  });

  test('probeWithOpenSsh (the workstation OpenSSH client) proves the same', { timeout: 120_000 }, async () => {
    const r = await probeWithOpenSsh(new LocalExec(), base);
    assert.equal(r.outcome, 'done', r.reason);
    assert.deepEqual(failing(r), []);
    const methods = r.checks.find((c) => c.label.startsWith('publickey is the only'))!;
    assert.match(methods.detail ?? '', /offers: publickey$/);
    assert.match(r.checks.find((c) => c.label.startsWith('key exchange'))!.detail ?? '', /curve25519-sha256/);
  });

  test('watchForLogin sees alice log in with her own key, not the probe key', { timeout: 120_000 }, async () => {
    const since = new Date();
    await new Promise((r) => setTimeout(r, 1100));
    const watching = watchForLogin(exec, { user: 'alice', since, excludeFingerprints: [probeKey.fingerprint], timeoutMs: 30_000, pollMs: 300 });
    // First a probe-key login (command="/bin/true" is forced), then alice's own.
    const p = await lab.ssh({ user: 'alice', privateKey: probeKey.privateKey }, 'id');
    assert.equal(p.exitCode, 0);
    assert.equal(p.stdout, '', 'the forced /bin/true ran instead of id');
    await new Promise((r) => setTimeout(r, 1500));
    const o = await lab.ssh({ user: 'alice', privateKey: own.private }, 'id -un');
    assert.equal(o.stdout.trim(), 'alice');
    const login = await watching;
    assert.ok(login, 'no login seen');
    assert.equal(login.user, 'alice');
    assert.equal(login.address, lab.workstationAddress);
    assert.equal(login.fingerprint, ownFingerprint);
    assert.equal(login.keyType, 'ED25519');
    assert.ok(login.time && login.time >= since);
    // The probe key's login is in the journal too: the exclusion is what kept it out.
    const probeLogin = await watchForLogin(exec, { user: 'alice', since, fingerprints: [probeKey.fingerprint], timeoutMs: 5_000, pollMs: 300 });
    assert.equal(probeLogin?.fingerprint, probeKey.fingerprint);
    // Nobody else: no login by root in this window.
    assert.equal(await watchForLogin(exec, { user: 'root', since, timeoutMs: 1_000, pollMs: 300 }), null);
  });

  test('post-quantum-only key exchange: ssh2 cannot negotiate it, the OpenSSH client can', { timeout: 120_000 }, async () => {
    const supported = (await sh(lab, 'ssh -Q kex')).split('\n');
    const hostClient = (await new LocalExec().run(['ssh', '-Q', 'kex'])).stdout.split('\n');
    const pq = ['mlkem768x25519-sha256', 'sntrup761x25519-sha512', 'sntrup761x25519-sha512@openssh.com'].filter((k) => supported.includes(k));
    assert.ok(pq.length > 0, 'OpenSSH 10 has post-quantum key exchange');
    await writeDropIn(lab, dropIn(pq));
    const r = await probe({ ...base, expect: { ...EXPECT, kex: pq } });
    assert.equal(r.outcome, 'ssh2-cannot-negotiate');
    assert.match(r.reason ?? '', /post-quantum/);
    assert.deepEqual(r.offered?.kex, pq);
    // The workstation's OpenSSH may be older than the node's (9.2 has sntrup but no mlkem): only check when they share one.
    if (pq.some((k) => hostClient.includes(k))) {
      const o = await probeWithOpenSsh(new LocalExec(), { ...base, expect: { ...EXPECT, kex: pq } });
      assert.equal(o.outcome, 'done', o.reason);
      assert.deepEqual(failing(o), []);
      assert.match(o.checks.find((c) => c.label.startsWith('key exchange'))!.detail ?? '', /negotiated (sntrup761x25519|mlkem768x25519)/);
    }
  });

  test('the probe key line is removed by its comment; reset at the end', { timeout: 300_000 }, async () => {
    const f = '/home/alice/.ssh/authorized_keys';
    const before = await sh(lab, `cat ${f}`);
    const after = withoutProbeKey(before);
    assert.equal(after, `${own.public.trim()}\n`);
    await lab.exec(['sh', '-c', `cat > ${f}`], { input: after });
    const r = await probe(base);
    // the drop-in of the previous test is still there: either no handshake for ssh2, or (compatible) a refused key
    assert.notEqual(r.checks.find((c) => c.label === 'alice logs in with a key')?.ok, true);
    await lab.reset();
  });
}
