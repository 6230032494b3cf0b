/**
 * Issue 14 on the lab node: fail2ban bans an attacker and never the
 * operator; auditd is honestly not applicable in the lab's container.
 *
 * The outsider (10.77.9.66) fails SSH logins and web logins (the lab's
 * pvedaemon logs each failure as Proxmox does); the operator (10.77.9.1)
 * fails just as often and is never banned, because the step puts their
 * address in every jail's ignore list.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { execa } from 'execa';
import { adminAnswers, installBundle, labOrSkip, sh, waitUntil } from './helpers.ts';
import type { Lab } from './lab.ts';

const lab = await labOrSkip();

const ANSWERS = ['version: 1', 'fail2ban:', '  trusted: [10.77.9.1]', 'audit-log: {}', ''].join('\n');
const SSHD_ANSWERS = adminAnswers('correct horse battery staple', ['sshd-hardening:', '  revert_seconds: 30']);

/** One SSH password login attempt with a wrong password from `from` (OpenSSH, one prompt). */
async function failedSshLogin(node: Lab, from: string): Promise<void> {
  const r = await execa(
    'sshpass',
    ['-e', 'ssh', ...node.sshClientArgs('root', ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password', '-o', 'NumberOfPasswordPrompts=1', '-o', 'ConnectTimeout=3'], from), 'true'],
    { env: { SSHPASS: 'not the password' }, reject: false, timeout: 15_000 },
  );
  assert.notEqual(r.exitCode, 0, 'the wrong password is refused');
}

/** A web login with a wrong password from `from`, through 8006: the HTTP status, or 'no answer'. */
function failedWebLogin(node: Lab, from: string): Promise<number | 'no answer'> {
  return new Promise((resolve) => {
    const body = 'username=root&realm=pam&password=not-the-password';
    const req = request(
      { host: node.nodeAddress, port: 8006, method: 'POST', path: '/api2/json/access/ticket', localAddress: from, rejectUnauthorized: false, timeout: 3000, headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => (req.destroy(), resolve('no answer')));
    req.on('error', () => resolve('no answer'));
    req.end(body);
  });
}

async function bannedIn(node: Lab, jail: string): Promise<string[]> {
  const out = await sh(node, `fail2ban-client status ${jail}`);
  return /Banned IP list:\s*(.*)$/m.exec(out)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
}

if (lab) {
  const OP = lab.remoteOperatorAddress;
  const OUT = lab.outsiderAddress;

  test('fail2ban: the outsider is banned from SSH and the web UI within 10 s; the operator, failing as often, never is', async () => {
    await lab.reset();
    await installBundle(lab);
    writeFileSync(join(lab.rootDir, 'root/answers.yml'), ANSWERS, { mode: 0o600 });
    const r = await lab.ssh({ user: 'root', password: lab.rootPassword, from: OP, timeoutMs: 20_000 }, 'pve-baseline apply --answers /root/answers.yml --yes --only fail2ban,audit-log');
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /fail2ban-client -t/);
    assert.match(r.stdout, /audit-log.*not applicable|not applicable.*audit/i, 'auditd in a container: not applicable, with the reason');
    assert.doesNotMatch(r.stdout, /FAIL /);
    assert.deepEqual((await sh(lab, 'fail2ban-client status')).match(/Jail list:\s*(.*)$/m)?.[1]?.split(/,\s*/).sort(), ['proxmox', 'sshd']);
    assert.match(await sh(lab, 'fail2ban-client get sshd ignoreip'), /10\.77\.9\.1/);

    // The operator fails five times on SSH and on the web: still in.
    for (let i = 0; i < 5; i++) await failedSshLogin(lab, OP);
    for (let i = 0; i < 6; i++) assert.equal(await failedWebLogin(lab, OP), 401);
    await new Promise((res) => setTimeout(res, 3000));
    assert.equal(await lab.tcpProbe(22, { from: OP }), 'connected', 'the operator is never banned from SSH');
    assert.equal(await lab.tcpProbe(8006, { from: OP }), 'connected', 'nor from the web UI');
    assert.deepEqual([...(await bannedIn(lab, 'sshd')), ...(await bannedIn(lab, 'proxmox'))], []);

    // The outsider: four failed SSH logins, banned within 10 s.
    for (let i = 0; i < 4; i++) await failedSshLogin(lab, OUT);
    const t0 = Date.now();
    await waitUntil(async () => (await lab.tcpProbe(22, { from: OUT, timeoutMs: 1000 })) !== 'connected', 'the outsider banned from SSH', 10_000);
    process.stderr.write(`measured: fail2ban, the 4th failed SSH login to the ban: ${Date.now() - t0} ms\n`);
    assert.deepEqual(await bannedIn(lab, 'sshd'), [OUT]);

    // Five failed web logins through 8006: banned there too.
    for (let i = 0; i < 5; i++) assert.equal(await failedWebLogin(lab, OUT), 401);
    const t1 = Date.now();
    await waitUntil(async () => (await lab.tcpProbe(8006, { from: OUT, timeoutMs: 1000 })) !== 'connected', 'the outsider banned from the web UI', 10_000);
    process.stderr.write(`measured: fail2ban, the 5th failed web login to the ban: ${Date.now() - t1} ms\n`);
    assert.deepEqual(await bannedIn(lab, 'proxmox'), [OUT]);
    assert.match(await sh(lab, "journalctl -u pvedaemon.service -p err --no-pager -o cat | grep 'rhost=::ffff:10.77.9.66' | tail -1"), /authentication failure; rhost=::ffff:10\.77\.9\.66 user=root@pam msg=/);

    // A second run plans nothing; check calls both steps fine; the document lists the jails and the bans.
    const again = await lab.ssh({ user: 'root', password: lab.rootPassword, from: OP }, 'pve-baseline apply --answers /root/answers.yml --yes --only fail2ban,audit-log');
    assert.equal(again.exitCode, 0, again.stdout);
    assert.doesNotMatch(again.stdout, /Plan:/);
    const check = JSON.parse((await lab.exec(['pve-baseline', 'check', '--json'])).stdout) as { steps: { id: string; status: string }[] };
    assert.equal(check.steps.find((s) => s.id === 'fail2ban')?.status, 'compliant');
    assert.equal(check.steps.find((s) => s.id === 'audit-log')?.status, 'not-applicable');
    const docs = await lab.exec(['pve-baseline', 'docs', '--out', '/root/policy.md']);
    assert.equal(docs.exitCode, 0, docs.stderr);
    const doc = await sh(lab, 'cat /root/policy.md');
    assert.match(doc, /sshd/);
    assert.match(doc, /proxmox/);
    assert.match(doc, /10\.77\.9\.66/, 'the current ban is in the document');

    // The sshd step's automatic proof sends dummy passwords for root and the admin from the node itself: nothing is banned.
    writeFileSync(join(lab.rootDir, 'root/sshd.yml'), SSHD_ANSWERS, { mode: 0o600 });
    const sshd = await lab.ssh({ user: 'root', password: lab.rootPassword, from: OP, timeoutMs: 20_000 }, 'pve-baseline apply --answers /root/sshd.yml --yes --only admin-account,ssh-key,break-glass,sshd-hardening');
    assert.equal(sshd.exitCode, 0, sshd.stdout + sshd.stderr);
    assert.match(sshd.stdout, /ok {3}probe: root cannot log in with a password/);
    assert.deepEqual(await bannedIn(lab, 'sshd'), [OUT], "the node's own address is not banned");

    // Drift: a jail stopped by hand.
    await sh(lab, 'fail2ban-client stop sshd >/dev/null');
    const drift = JSON.parse((await lab.exec(['pve-baseline', 'check', '--json'])).stdout) as { steps: { id: string; status: string }[] };
    assert.equal(drift.steps.find((s) => s.id === 'fail2ban')?.status, 'drift');
  });
}
