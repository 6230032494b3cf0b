/**
 * The wizard on the lab node, end to end: the built bundle installed as
 * /usr/local/bin/pve-baseline, run by root over `ssh -t` from the
 * workstation side in a real terminal, as an operator would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KEYS, ptyEnv, runInPty, type PtyStep } from '../support/pty.ts';
import { actAsPhone, apiCall, fail2banDefaults, installBundle, journalStep, labOrSkip, sh, skipUpdateSteps, twoFactorEnrolment, waitUntil, webGet, webLoginAfterProof } from './helpers.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KERNEL_N1, type Lab } from './lab.ts';
import { generateKeyPair } from '../../src/ssh/keys.ts';

const lab = await labOrSkip();


/** `sshpass -e ssh -t root@node COMMAND...` in an 80x24 pty on the workstation side. */
function overSsh(node: Lab, command: string[], script: PtyStep[], term = 'xterm-256color') {
  return runInPty({
    argv: ['sshpass', '-e', 'ssh', '-t', ...node.sshClientArgs('root', ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password']), ...command],
    env: ptyEnv({ SSHPASS: node.rootPassword, TERM: term }),
    script,
    // The whole baseline by hand: twelve steps, three of them waiting for a person's login.
    maxMs: 240_000,
  });
}


const operator = await generateKeyPair('ed25519', { comment: 'operator@laptop' });
const PASSWORD = 'correct horse battery staple';

const PHONE_DIR = mkdtempSync(join(tmpdir(), 'pve-phone-'));
const PHONE = { screen: join(PHONE_DIR, 'screen.txt'), code: join(PHONE_DIR, 'code.txt') };
const WELCOME: PtyStep = { waitFor: 'Nothing changes until you have seen the plan', timeoutMs: 20_000 };

if (lab) {
  test('the whole wizard over ssh -t, by keys as a person types them: admin, key, no break-glass, sshd (proven by a second login), sysctl', async () => {
    await lab.reset();
    await installBundle(lab);
    // The backup host lets in root's own key, the one the wizard offers for the config backup.
    lab.backupHost.authorize((await sh(lab, 'cat /root/.ssh/id_rsa.pub')).trim());
    const wizard = overSsh(lab, ['pve-baseline'], [
      WELCOME,
      { snapshot: 'welcome' },
      { send: KEYS.enter },
      { waitFor: 'Name of your admin account', timeoutMs: 20_000 },
      { send: 'alice\r' },
      { waitFor: 'Proxmox role on /' },
      { send: KEYS.enter }, // Administrator, the default
      { waitFor: 'Email for Proxmox notifications' },
      { send: 'alice@example.com\r' },
      { waitFor: 'Full name or comment' },
      { send: KEYS.enter },
      { waitFor: 'Password for sudo' },
      { send: `${PASSWORD}\r` },
      { waitFor: '(again)' },
      { send: `${PASSWORD}\r` },
      { waitFor: 'Plan: 5 commands to run.', timeoutMs: 20_000 },
      { send: KEYS.enter },
      { waitFor: 'Your public key(s)', timeoutMs: 60_000 },
      { send: `${operator.public}\r` },
      { send: KEYS.enter },
      { waitFor: 'This key will let you log in as the admin:' },
      { snapshot: 'key' },
      { send: 'y' },
      { waitFor: 'Also let this key log in as root?' },
      { send: KEYS.enter }, // no, the default
      { waitFor: 'Plan: 1 to create, 1 command to run.', timeoutMs: 20_000 },
      { send: KEYS.enter },
      { waitFor: 'Create a disabled break-glass account?', timeoutMs: 20_000 },
      { send: KEYS.enter }, // no, the default
      { waitFor: 'How may root log in over SSH?', timeoutMs: 20_000 },
      { send: KEYS.enter }, // key only, the default
      { waitFor: 'Who may log in over SSH at all?' },
      { send: KEYS.enter }, // AllowUsers
      { waitFor: 'Other accounts that may log in' },
      { send: KEYS.enter }, // none
      { waitFor: 'Crypto profile' },
      { send: KEYS.enter }, // compatible
      { waitFor: 'Seconds you have to log in again' },
      { send: KEYS.enter }, // 180
      { waitFor: 'to apply, or', timeoutMs: 20_000 },
      { send: 'pve1\r' },
      { waitFor: 'Prove you can still log in', timeoutMs: 60_000 },
      { waitFor: 'SSH server hardening: verified', timeoutMs: 60_000 },
      { waitFor: 'Addresses and networks that may manage this node', timeoutMs: 30_000 },
      { send: KEYS.enter }, // this session's address and the local network, the default
      { waitFor: 'Answer ping' },
      { send: KEYS.enter }, // from the management set
      { waitFor: 'Seconds you have to prove access' },
      { send: KEYS.enter }, // 180
      { waitFor: 'to apply, or', timeoutMs: 30_000 },
      { send: 'pve1\r' },
      { waitFor: 'Proxmox firewall: verified', timeoutMs: 90_000 },
      ...fail2banDefaults(), // no trusted address beyond the management set, which holds this session's address
      { send: KEYS.enter },
      { waitFor: 'fail2ban for SSH and the web UI: verified', timeoutMs: 120_000 },
      ...twoFactorEnrolment(PHONE, PASSWORD),
      { waitFor: 'to apply, or', timeoutMs: 30_000 },
      { send: 'pve1\r' },
      { waitFor: 'Recovery keys for alice@pam', timeoutMs: 60_000 },
      { send: 'w' },
      { waitFor: 'Two-factor login for the web UI: verified', timeoutMs: 120_000 },
      ...skipUpdateSteps(),
      { waitFor: 'Plan:', timeoutMs: 20_000 }, // sysctl
      { send: KEYS.enter },
      { waitFor: '? Which access model?', timeoutMs: 30_000 },
      // Four presses of the down arrow, as a person makes them: Ink 6 reads arrows that arrive in one chunk as one key.
      ...Array.from({ length: 4 }, (): PtyStep[] => [{ send: KEYS.down }, { sleepMs: 150 }]).flat(), // the monitoring service account
      { send: KEYS.enter },
      { waitFor: 'Plan:', timeoutMs: 20_000 },
      { send: KEYS.pageDown },
      { sleepMs: 150 },
      { send: KEYS.pageDown },
      { sleepMs: 300 },
      { snapshot: 'access-model' }, // the end of the plan: who gains what
      { send: KEYS.enter },
      { waitFor: '? Service account', timeoutMs: 30_000 },
      { send: KEYS.enter }, // svc-monitoring@pve
      { waitFor: '? Token name' },
      { send: KEYS.enter }, // metrics
      { waitFor: '? Roles for the token' },
      { send: KEYS.enter }, // PVEAuditor
      { waitFor: '? Path the roles apply on' },
      { send: KEYS.enter }, // /
      { waitFor: '? Days until the token expires' },
      { send: KEYS.enter }, // 180
      { waitFor: '? What uses it' },
      { send: KEYS.enter },
      { waitFor: '? Also write the secret to a file' },
      { send: KEYS.enter }, // no: only shown
      { waitFor: 'Plan:', timeoutMs: 20_000 },
      { send: KEYS.enter },
      { waitFor: 'The secret of svc-monitoring@pve!metrics', timeoutMs: 30_000 },
      { snapshot: 'token' },
      { send: 'w' },
      { waitFor: 'Service accounts and API tokens: verified', timeoutMs: 30_000 },
      // The config backup to the lab's backup host, its key fetched and compared before it is pinned.
      { waitFor: '? Where does the backup go, off this node?', timeoutMs: 30_000 },
      { send: KEYS.enter }, // a backup host over SFTP
      { waitFor: '? Backup host' },
      { send: `${lab.backupHost.address}\r` },
      { waitFor: '? Its SSH port' },
      { send: KEYS.enter }, // 22
      { waitFor: '? The user pve-baseline logs in as there' },
      { send: `${lab.backupHost.user}\r` },
      { waitFor: '? Directory on the backup host' },
      { send: KEYS.enter }, // pve-config/pve1
      { waitFor: "? The backup host's SSH key fingerprint" },
      { send: KEYS.enter }, // fetch
      { waitFor: 'it is pinned from now on', timeoutMs: 20_000 },
      { snapshot: 'host-key' },
      { send: 'y' },
      { waitFor: '? The SSH key pve-baseline logs in with' },
      { send: KEYS.enter }, // root's /root/.ssh/id_rsa
      { waitFor: 'Authorize this key on the backup host' },
      { send: 'y' },
      { waitFor: '? Encrypt to' },
      { send: KEYS.enter }, // an identity kept on the node
      { waitFor: '? Archives to keep' },
      { send: KEYS.enter },
      { waitFor: '? How often' },
      { send: KEYS.enter },
      { waitFor: 'Plan:', timeoutMs: 20_000 },
      { send: KEYS.enter },
      { waitFor: 'Config backup, off the node: verified', timeoutMs: 120_000 },
      { waitFor: 'Access-policy document', timeoutMs: 20_000 },
      { waitFor: 'Plan:', timeoutMs: 20_000 },
      { send: KEYS.enter },
      { waitFor: 'Finished: 11 verified, 1 already compliant', timeoutMs: 30_000 },
      { waitExit: true, timeoutMs: 10_000 },
    ]);
    // The operator's second terminal, once sshd runs the new settings: their own key, as alice.
    const stepStatus = async (id: string) => (await journalStep(lab, id))?.status;
    await waitUntil(async () => (await stepStatus('sshd-hardening')) === 'applied', 'the sshd reload', 90_000);
    const second = await lab.ssh({ user: 'alice', privateKey: operator.private }, 'true');
    assert.equal(second.exitCode, 0, 'alice logs in from a second terminal');
    // Then the firewall: once it is live, a new login and the web UI from the operator's address.
    await waitUntil(async () => (await stepStatus('firewall')) === 'applied', 'the firewall to go live', 120_000);
    assert.equal((await lab.ssh({ user: 'alice', privateKey: operator.private }, 'true')).exitCode, 0, 'alice logs in again through the firewall');
    assert.equal(await lab.tcpProbe(8006), 'connected');
    assert.equal(await webGet(lab), 501, "the web UI's port answers (the lab's pveproxy logs the request)");
    // Then two-factor: the phone reads the QR code's secret and types a code; once live, a web login with password + code.
    const secret = await actAsPhone(PHONE);
    await waitUntil(async () => (await stepStatus('two-factor')) === 'applied', 'the TOTP entry', 120_000);
    assert.equal((await webLoginAfterProof(lab, 'alice@pam', PASSWORD, secret)).status, 200, 'alice logs in to the web UI with her password and a code');
    const r = await wizard;
    assert.ok(r.ok, r.timedOut ? `${r.timedOut.reason}\n${r.timedOut.tail}` : r.plain);
    assert.equal(r.exitCode, 0);
    const welcome = r.snapshots.find((s) => s.name === 'welcome')!.screen.join('\n');
    assert.match(welcome, /Node +pve1 · Proxmox VE 9\.\d+\.\d+ · Debian 13 \(trixie\)/);
    assert.match(welcome, new RegExp(`Session +SSH from ${lab.workstationAddress.replace(/\./g, '\\.')}: keep this session open`));
    assert.match(welcome, /Journal +first run on this node/);
    const hostKey = r.snapshots.find((s) => s.name === 'host-key')!.screen.join('\n');
    assert.ok(hostKey.includes(lab.backupHost.hostKeyFingerprint), `the backup host's key shown before it is pinned:\n${hostKey}`);
    assert.ok((await sh(lab, 'cat /etc/pve-baseline/config-backup.json')).includes(lab.backupHost.hostKeyFingerprint), 'and pinned');
    const key = r.snapshots.find((s) => s.name === 'key')!.screen.join('\n');
    assert.match(key, /Type +ssh-ed25519/);
    assert.match(key, /Size +256 bits/);
    assert.match(key, /Fingerprint +SHA256:/);
    assert.match(key, /Comment +operator@laptop/);
    assert.doesNotMatch(r.plain, new RegExp(PASSWORD), 'the password never reached the screen');
    // The access model's preview said who gains what; the token's secret was shown once, and it works over HTTPS.
    assert.match(r.snapshots.find((s) => s.name === 'access-model')!.screen.join('\n'), /svc-monitoring@pve on \/: nothing -> Datastore\.Audit/);
    const tokenSecret = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.exec(r.snapshots.find((s) => s.name === 'token')!.screen.join('\n'))?.[0];
    assert.ok(tokenSecret, 'the secret is on the screen');
    const nodes = await apiCall(lab, 'GET', '/nodes', { token: `svc-monitoring@pve!metrics=${tokenSecret}` });
    assert.equal(nodes.status, 200, 'the monitoring token reads /nodes');
    const traces = await lab.exec(['sh', '-c', 'grep -rl -- "$1" /var/lib/pve-baseline /var/log /root 2>/dev/null; journalctl --no-pager -q | grep -c -- "$1"', 'sh', tokenSecret]);
    assert.equal(traces.stdout.trim(), '0', `the secret is kept nowhere but token.cfg: ${traces.stdout}`);
    // In a container the kernel.* and fs.* keys belong to the host: only the network ones apply.
    assert.match(r.plain, /Kernel and network sysctl settings: verified \(2 changes\)/);
    assert.equal((await sh(lab, 'sysctl -n net.ipv4.conf.all.accept_redirects')).trim(), '0');
    const who = await lab.ssh({ user: 'alice', privateKey: operator.private, input: `${PASSWORD}\n` }, "sudo -S -p '' id -un");
    assert.equal(who.stdout.trim(), 'root', 'the admin made in the wizard logs in with the key and sudo works');
    const status = await sh(lab, 'pve-baseline status');
    assert.match(status, /sysctl +verified/);
    assert.match(status, /backup of \/etc\/sysctl\.d\/90-pve-baseline\.conf: \(did not exist\)/);
  });

  test('the updates, unattended: the repositories fixed, the upgrade with its progress, exit 5 for the reboot; after it the check ran once and the same command goes on', async () => {
    writeFileSync(join(lab.rootDir, 'root/updates.yml'), 'repositories:\n  pve: no-subscription\n  ceph: no-subscription\nupgrade: {}\nauto-updates:\n  proxmox: no\n', { mode: 0o600 });
    const apply = () => lab.exec(['pve-baseline', 'apply', '--answers', '/root/updates.yml', '--yes', '--only', 'repositories,upgrade,auto-updates,access-policy'], { timeoutMs: 300_000 });
    const first = await apply();
    assert.equal(first.exitCode, 5, first.stdout + first.stderr);
    assert.match(first.stdout, /argv: pvesh set \/nodes\/pve1\/apt\/repositories --handle no-subscription/);
    assert.match(first.stdout, /^ {4}100% done: \d+ package\(s\) configured$/m, 'the upgrade\'s progress, headless');
    assert.match(first.stdout, /kept your \/etc\/vzdump\.conf( \([^)]*\))?; the package's version is beside it as \/etc\/vzdump\.conf\.dpkg-dist/);
    assert.match(first.stderr, new RegExp(`rebooting after upgrade, expecting kernel ${KERNEL_N1.replace(/\./g, '\\.')}: the node needs a reboot`));
    assert.doesNotMatch(first.stdout, /Unattended security updates/, 'nothing after the step ran before the reboot');
    assert.equal((await lab.exec(['systemctl', 'is-enabled', 'pve-baseline-postboot.service'])).stdout.trim(), 'enabled');

    await lab.reboot();
    assert.equal(await lab.runningKernel(), KERNEL_N1);
    await waitUntil(async () => (await lab.exec(['test', '-e', '/var/lib/pve-baseline/postboot.json'])).exitCode === 0, 'the check after the boot', 60_000);
    assert.match(await sh(lab, 'cat /run/motd.d/pve-baseline'), new RegExp(`kernel ${KERNEL_N1.replace(/\./g, '\\.')} as expected\n[\\s\\S]*Run pve-baseline to continue where it stopped`));
    assert.equal((await lab.exec(['systemctl', 'is-enabled', 'pve-baseline-postboot.service'])).exitCode, 1, 'it ran once and switched itself off');

    const second = await apply();
    assert.equal(second.exitCode, 0, second.stdout + second.stderr);
    assert.match(second.stdout, /^After the reboot that upgrade asked for: the node came back as expected/m);
    assert.match(second.stdout, /Unattended security updates/);
    assert.match(second.stdout, /Access-policy document/, 'and the document, written anew for the updated node');
    assert.equal((await journalStep(lab, 'upgrade'))?.status, 'verified');
  });

  test('afterwards: check is compliant (exit 0), a second run plans nothing, and drift is reported', async () => {
    const check = await lab.exec(['pve-baseline', 'check']);
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /sysctl\s+compliant/);
    assert.match(check.stdout, /sshd-hardening\s+compliant/);
    assert.match(check.stdout, /firewall\s+compliant/);
    await sh(lab, 'printf "sysctl: {}\\n" > /root/answers.yml');
    const again = await lab.exec(['pve-baseline', 'apply', '--answers', '/root/answers.yml', '--yes']);
    assert.equal(again.exitCode, 0, again.stderr);
    assert.match(again.stdout, /Summary: 15 compliant, 1 not applicable\./);
    assert.doesNotMatch(again.stdout, /Plan:/);
    // Someone sets a value back by hand: check names the drift and exits 1.
    await sh(lab, 'sysctl -w net.ipv4.conf.all.accept_redirects=1 >/dev/null');
    const drift = await lab.exec(['pve-baseline', 'check', '--json']);
    assert.equal(drift.exitCode, 1);
    const report = JSON.parse(drift.stdout);
    const sysctl = report.steps.find((s: { id: string }) => s.id === 'sysctl');
    assert.equal(sysctl.status, 'drift');
    assert.match(sysctl.changes[0].reason, /net\.ipv4\.conf\.all\.accept_redirects/);
  });

  test('revert shows its undo first, then restores the node as it was before the step', async () => {
    const preview = await lab.exec(['pve-baseline', 'revert', 'sysctl']);
    assert.equal(preview.exitCode, 0, preview.stderr);
    assert.match(preview.stdout, /would do this, newest change first:/);
    assert.match(preview.stdout, /run sysctl -w net\.ipv4\.conf\.all\.accept_redirects=1 .*\(undoes: sysctl -p \/etc\/sysctl\.d\/90-pve-baseline\.conf\)/);
    assert.match(preview.stdout, /remove \/etc\/sysctl\.d\/90-pve-baseline\.conf \(it did not exist before\)/);
    assert.match(preview.stdout, /Nothing was changed\. Run again with --yes to revert\./);
    assert.equal((await lab.exec(['test', '-e', '/etc/sysctl.d/90-pve-baseline.conf'])).exitCode, 0);

    const done = await lab.exec(['pve-baseline', 'revert', 'sysctl', '--yes']);
    assert.equal(done.exitCode, 0, done.stdout + done.stderr);
    assert.equal((await lab.exec(['test', '-e', '/etc/sysctl.d/90-pve-baseline.conf'])).exitCode, 1);
    assert.equal((await sh(lab, 'sysctl -n net.ipv4.tcp_rfc1337')).trim(), '0', 'the value from before the step is back');
    assert.match(await sh(lab, 'pve-baseline status'), /sysctl +reverted/);
    const check = await lab.exec(['pve-baseline', 'check']);
    assert.equal(check.exitCode, 1, 'a reverted step is drift again');
  });

  test('on a fresh node: check lists the drift (exit 1); a dry run changes nothing; a dropped session and a SIGKILL leave no trap; apply --yes verifies', async () => {
    await lab.reset();
    await installBundle(lab);
    const fresh = await lab.exec(['pve-baseline', 'check', '--json']);
    assert.equal(fresh.exitCode, 1, fresh.stderr);
    const report = JSON.parse(fresh.stdout) as { compliant: boolean; steps: { id: string; status: string; reason?: string; changes: { summary: string }[] }[] };
    assert.equal(report.compliant, false);
    assert.deepEqual(report.steps.map((s) => s.id), ['admin-account', 'ssh-key', 'break-glass', 'sshd-hardening', 'firewall', 'fail2ban', 'two-factor', 'repositories', 'upgrade', 'auto-updates', 'sysctl', 'audit-log', 'access-model', 'api-tokens', 'config-backup', 'access-policy']);
    // auditd needs the kernel's audit system, which a container does not have: not applicable, honestly.
    assert.ok(report.steps.every((s) => s.status === (s.id === 'audit-log' ? 'not-applicable' : 'drift')), JSON.stringify(report.steps.map((s) => [s.id, s.status, s.reason])));
    assert.match(report.steps[0]!.reason!, /needs an answer for admin-account\.name/);
    assert.match(report.steps[3]!.reason!, /needs Named admin account/);
    assert.deepEqual(report.steps.find((s) => s.id === 'sysctl')!.changes.map((c) => c.summary), ['create /etc/sysctl.d/90-pve-baseline.conf', 'run sysctl -p /etc/sysctl.d/90-pve-baseline.conf']);
    assert.equal((await lab.exec(['test', '-e', '/var/lib/pve-baseline/journal.json'])).exitCode, 1, 'check wrote nothing');
    await sh(lab, 'printf "sysctl: {}\\n" > /root/answers.yml');
    const dry = await lab.exec(['pve-baseline', 'apply', '--answers', '/root/answers.yml', '--only', 'sysctl']);
    assert.equal(dry.exitCode, 0);
    assert.match(dry.stdout, /Nothing was changed\. Run again with --yes/);
    assert.equal((await lab.exec(['test', '-e', '/etc/sysctl.d/90-pve-baseline.conf'])).exitCode, 1);

    // The operator's SSH link drops at the plan review: the wizard ends by SIGHUP, frees its lock.
    const dropped = await overSsh(lab, ['pve-baseline'], [WELCOME, { send: KEYS.enter }, { waitFor: 'Name of your admin account', timeoutMs: 20_000 }]);
    assert.equal(dropped.killedAtEnd, true, 'the driver hung up on the session');
    await waitUntil(async () => (await lab.exec(['pgrep', '-f', '^node /usr/local/bin/pve-baseline'])).exitCode === 1, 'the wizard to end');
    assert.equal((await lab.exec(['test', '-e', '/var/lib/pve-baseline/lock'])).exitCode, 1, 'no lock left behind');

    // A wizard killed outright (SIGKILL, no handler runs) leaves a stale lock;
    // the next one explains it, takes over, and the journal still reads.
    const victim = overSsh(lab, ['pve-baseline'], [WELCOME, { send: KEYS.enter }, { waitFor: 'Name of your admin account', timeoutMs: 20_000 }, { sleepMs: 20_000 }, { waitExit: true }]);
    await waitUntil(async () => (await lab.exec(['test', '-e', '/var/lib/pve-baseline/lock'])).exitCode === 0, 'the wizard to take its lock');
    const kill = await lab.exec(['pkill', '-KILL', '-f', '^node /usr/local/bin/pve-baseline']);
    assert.equal(kill.exitCode, 0, 'the wizard was found and killed');
    await victim;
    const resumed = await overSsh(lab, ['pve-baseline'], [WELCOME, { snapshot: 'welcome' }, { send: 'q' }, { waitExit: true, timeoutMs: 10_000 }]);
    assert.equal(resumed.exitCode, 0, resumed.plain);
    assert.match(resumed.plain.replace(/\s+/g, ' '), /A stale lock from an earlier run \(pid \d+, started [^)]+\) was removed: process \d+ is no longer running\./);

    // Unattended, a step the file gives no answers for fails the run (and names what is missing).
    const partial = await lab.exec(['pve-baseline', 'apply', '--answers', '/root/answers.yml', '--yes']);
    assert.equal(partial.exitCode, 1);
    assert.match(partial.stderr, /the answers file does not give: admin-account\.name/);
    await lab.exec(['pve-baseline', 'revert', 'sysctl', '--yes']);
    const applied = await lab.exec(['pve-baseline', 'apply', '--answers', '/root/answers.yml', '--yes', '--only', 'sysctl']);
    assert.equal(applied.exitCode, 0, applied.stdout + applied.stderr);
    assert.match(applied.stdout, /=> verified/);
    assert.match(applied.stdout, /argv: sysctl -p \/etc\/sysctl\.d\/90-pve-baseline\.conf/);
  });
}
