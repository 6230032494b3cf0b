/**
 * Issue 5 on the lab node: the sshd hardening under a revert the node owns.
 * Every login is made from the workstation side over the veth (ssh2, or the
 * OpenSSH client), as the operator's laptop would.
 *
 * "As before" means: on a fresh node the operator logs in as root with a
 * password; after a revert that works again, and every file under /etc/ssh
 * is byte for byte what it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { KEYS, ptyEnv, runInPty, type PtyStep } from '../support/pty.ts';
import { generateKeyPair } from '../../src/ssh/keys.ts';
import { armedReverts, fail2banDefaults, installBundle, journalStep as journalStepOf, labOrSkip, revertedAt, sh, restOfTheWizard, sshdQuestions, waitUntil } from './helpers.ts';
import type { Lab } from './lab.ts';

const lab = await labOrSkip();
const operator = await generateKeyPair('ed25519', { comment: 'operator@laptop' });
const rsa2048 = await generateKeyPair('rsa', { bits: 2048, comment: 'old-laptop' });
const PASSWORD = 'correct horse battery staple';
const ADMIN_STEPS = 'admin-account,ssh-key,break-glass';
const STATE = '/var/lib/pve-baseline';


function answersFile(sshd: string[] | null, key = operator.public): string {
  return [
    'admin-account:',
    '  name: alice',
    '  role: Administrator',
    '  email: alice@example.com',
    '  comment: Alice Admin',
    `  password: ${JSON.stringify(PASSWORD)}`,
    'ssh-key:',
    `  keys: ${JSON.stringify(key.trim())}`,
    '  also_root: no',
    'break-glass:',
    '  wanted: no',
    ...(sshd === null ? [] : ['sshd-hardening:', ...(sshd.length ? sshd.map((l) => `  ${l}`) : ['  revert_seconds: 120'])]),
    '',
  ].join('\n');
}

async function apply(node: Lab, yaml: string, only: string) {
  writeFileSync(join(node.rootDir, 'root/answers.yml'), yaml, { mode: 0o600 });
  return node.exec(['pve-baseline', 'apply', '--answers', '/root/answers.yml', '--yes', '--only', only], { timeoutMs: 120_000 });
}

/** A fresh node with alice, her key and the bundle: where every sshd test starts. */
async function freshNodeWithAdmin(node: Lab, key = operator.public): Promise<void> {
  await node.reset();
  await installBundle(node);
  const r = await apply(node, answersFile(null, key), ADMIN_STEPS);
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
}

/** Every file sshd reads, and the admin's keys, by checksum. */
const sshFiles = (node: Lab) => sh(node, 'find /etc/ssh /home/alice/.ssh -type f | sort | xargs sha256sum');

async function rootPasswordLogin(node: Lab): Promise<boolean> {
  return node.ssh({ user: 'root', password: node.rootPassword, timeoutMs: 10_000 }, 'true').then(
    (r) => r.exitCode === 0,
    () => false,
  );
}

async function aliceKeyLogin(node: Lab, privateKey = operator.private): Promise<boolean> {
  return node.ssh({ user: 'alice', privateKey, timeoutMs: 10_000 }, 'true').then(
    (r) => r.exitCode === 0,
    () => false,
  );
}

const journalStep = (node: Lab, id = 'sshd-hardening') => journalStepOf(node, id);

/** The armed revert's deadline (epoch ms), from the index the node keeps. */
async function armedDeadline(node: Lab): Promise<number> {
  const index = await armedReverts(node);
  assert.equal(index.length, 1, 'one revert is armed');
  return index[0]!.deadline;
}

/** After a fault: the node reverts by itself, the operator gets in as before, and nothing differs from before the step. */
async function assertRevertedAsBefore(node: Lab, before: string, label: string): Promise<number> {
  const deadline = await armedDeadline(node);
  await waitUntil(async () => (await revertedAt(node)) !== undefined, `${label}: the node's revert`, Math.max(0, deadline - Date.now()) + 30_000);
  const latency = (await revertedAt(node))! - deadline;
  assert.ok(latency < 5000, `${label}: reverted ${latency} ms after the deadline (target: within 5 s)`);
  assert.equal(await sshFiles(node), before, `${label}: every file is byte for byte as before`);
  assert.ok(await rootPasswordLogin(node), `${label}: root logs in with the password again, as before`);
  assert.ok(await aliceKeyLogin(node), `${label}: alice logs in with her key`);
  return latency;
}

/** `sshpass -e ssh -t root@node pve-baseline` in an 80x24 pty on the workstation side. */
function wizardOverSsh(node: Lab, script: PtyStep[]) {
  return runInPty({
    argv: ['sshpass', '-e', 'ssh', '-t', ...node.sshClientArgs('root', ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password']), 'pve-baseline'],
    env: ptyEnv({ SSHPASS: node.rootPassword, TERM: 'xterm-256color' }),
    script,
    maxMs: 180_000,
  });
}

/** From the welcome screen to the reload: the sshd questions with their defaults, a revert window of `seconds`, the node's name typed. */
const UP_TO_THE_RELOAD = (seconds: number): PtyStep[] => [
  { waitFor: 'Nothing changes until you have seen the plan', timeoutMs: 20_000 },
  { send: KEYS.enter },
  ...sshdQuestions(seconds),
  { waitFor: 'to apply, or', timeoutMs: 20_000 },
  { send: 'pve1\r' },
];

const COUNTDOWN = 'Prove you can still log in';

/** The firewall step comes next: its questions with their defaults, then skipped at its plan (test/lab/89-firewall.test.ts proves it). */
const LATER_STEPS_SKIPPED: PtyStep[] = [
  { waitFor: 'Addresses and networks that may manage this node', timeoutMs: 30_000 },
  { send: KEYS.enter },
  { waitFor: 'Answer ping' },
  { send: KEYS.enter },
  { waitFor: 'Seconds you have to prove access' },
  { send: KEYS.enter },
  { waitFor: 'to apply, or', timeoutMs: 30_000 },
  { send: 'skip\r' },
  // fail2ban next: its defaults, then skipped at its plan (test/lab/86-fail2ban-audit.test.ts proves it).
  ...fail2banDefaults(),
  { send: 's' },
  // two-factor next: skipped at its first question (Esc; 89-two-factor proves it).
  { waitFor: 'Proxmox account to protect with a second factor', timeoutMs: 30_000 },
  { send: KEYS.escape },
];

if (lab) {
  test('happy path, unattended: applied under a revert, confirmed from a new session as alice; sshd -T, refusals, ssh-audit', async () => {
    await freshNodeWithAdmin(lab);
    assert.ok(await rootPasswordLogin(lab), 'a fresh node takes root with a password');
    const r = await apply(lab, answersFile([]), 'sshd-hardening');
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /=> applied; AWAITING CONFIRMATION: confirm from a new session before \S+ \(pve-baseline confirm\), or the node reverts/);
    assert.doesNotMatch(r.stdout, /FAIL /);
    for (const proven of ['probe: alice logs in with a key', 'probe: publickey is the only authentication method offered', 'probe: root cannot log in with a password', 'sshd -T shows every intended value']) {
      assert.match(r.stdout, new RegExp(`ok {3}${proven.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    }
    assert.match(await sh(lab, 'cat /home/alice/.ssh/authorized_keys'), /^ssh-ed25519 \S+ operator@laptop\n$/, 'the probe key is gone again');

    assert.match(await sh(lab, 'pve-baseline status'), /^AWAITING CONFIRMATION: sshd-hardening: the node reverts it at /m);
    // Run again before confirming: it says what it waits for and changes nothing.
    const waiting = await apply(lab, answersFile([]), 'sshd-hardening');
    assert.match(waiting.stdout, /=> applied; AWAITING CONFIRMATION: applied earlier; confirm from a new session before \S+ \(pve-baseline confirm\), or the node reverts/);
    assert.doesNotMatch(waiting.stdout, /Plan:/);

    // The proof from a new session: alice logs in with her own key and confirms with sudo.
    const t0 = Date.now();
    const confirm = await lab.ssh({ user: 'alice', privateKey: operator.private, input: `${PASSWORD}\n` }, "sudo -S -p '' pve-baseline confirm");
    const confirmMs = Date.now() - t0;
    assert.equal(confirm.exitCode, 0, confirm.stderr);
    assert.match(confirm.stdout, /^Confirmed sshd-hardening: the change stays/);
    const record = await journalStep(lab);
    assert.equal(record?.status, 'verified');
    assert.match(record!.history!.at(-1)!.note!, /access confirmed from a new session/);
    process.stderr.write(`measured: unattended confirm (alice logs in, sudo pve-baseline confirm, journal verified): ${confirmMs} ms\n`);

    // After the deadline the change stands.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await lab.exec(['test', '-e', '/etc/ssh/sshd_config.d/00-pve-baseline.conf'])).exitCode, 0);

    // What an attacker meets: no root password, no passwords at all, publickey only.
    assert.equal(await rootPasswordLogin(lab), false, 'root with the right password is refused');
    await assert.rejects(lab.ssh({ user: 'alice', password: PASSWORD, timeoutMs: 10_000 }, 'true'), /authentication methods failed/);
    const openssh = await execa('ssh', [...lab.sshClientArgs('alice', ['-o', 'BatchMode=yes', '-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password,keyboard-interactive']), 'true'], { reject: false });
    assert.notEqual(openssh.exitCode, 0);
    assert.match(openssh.stderr, /Permission denied \(publickey\)/);

    const effective = await sh(lab, 'sshd -T');
    for (const line of [
      'passwordauthentication no',
      'kbdinteractiveauthentication no',
      'pubkeyauthentication yes',
      'permitemptypasswords no',
      'authenticationmethods publickey',
      'permitrootlogin without-password',
      'allowusers alice',
      'allowusers root',
      'maxauthtries 3',
      'logingracetime 30',
      'clientaliveinterval 300',
      'clientalivecountmax 2',
      'x11forwarding no',
      'allowagentforwarding no',
      'permituserenvironment no',
      'loglevel VERBOSE',
      'allowtcpforwarding yes',
      'requiredrsasize 2048',
    ]) {
      assert.ok(effective.split('\n').includes(line), `sshd -T shows "${line}"`);
    }
    assert.match(effective, /^kexalgorithms mlkem768x25519-sha256,sntrup761x25519-sha512,/m);
    assert.match(effective, /^ciphers chacha20-poly1305@openssh\.com,aes256-gcm@openssh\.com,/m);
    assert.match(effective, /^macs hmac-sha2-256-etm@openssh\.com,hmac-sha2-512-etm@openssh\.com,umac-128-etm@openssh\.com$/m);

    // ssh-audit (Debian's package, from the lab's offline repository) finds no failure.
    await sh(lab, 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q ssh-audit >/dev/null');
    const audit = await lab.exec(['ssh-audit', '--no-colors', '--level=fail', lab.nodeAddress], { timeoutMs: 60_000 });
    assert.notEqual(audit.exitCode, 3, `ssh-audit reports a failure:\n${audit.stdout}`);
    assert.notEqual(audit.exitCode, 1, `ssh-audit could not connect:\n${audit.stdout}${audit.stderr}`);
    assert.doesNotMatch(audit.stdout, /\(fail\)/);

    // A second run plans nothing; check calls the step compliant.
    const again = await apply(lab, answersFile([]), 'sshd-hardening');
    assert.equal(again.exitCode, 0, again.stdout);
    assert.match(again.stdout, /Summary: 1 compliant\./);
    assert.doesNotMatch(again.stdout, /Plan:/);
    const check = JSON.parse((await lab.exec(['pve-baseline', 'check', '--json'])).stdout);
    assert.equal(check.steps.find((s: { id: string }) => s.id === 'sshd-hardening').status, 'compliant');

    // Someone edits the drop-in by hand: check exits 1 and names the setting.
    await sh(lab, "sed -i 's/^PasswordAuthentication no$/PasswordAuthentication yes/' /etc/ssh/sshd_config.d/00-pve-baseline.conf");
    const drift = await lab.exec(['pve-baseline', 'check', '--json']);
    assert.equal(drift.exitCode, 1);
    const sshd = JSON.parse(drift.stdout).steps.find((s: { id: string }) => s.id === 'sshd-hardening');
    assert.equal(sshd.status, 'drift');
    assert.match(sshd.changes[0].reason, /PasswordAuthentication is yes \(wanted no\)/);
    const plain = await lab.exec(['pve-baseline', 'check']);
    assert.match(plain.stdout, /sshd-hardening\s+drift/);
    assert.match(plain.stdout, /PasswordAuthentication is yes \(wanted no\)/);
    await sh(lab, "sed -i 's/^PasswordAuthentication yes$/PasswordAuthentication no/' /etc/ssh/sshd_config.d/00-pve-baseline.conf");

    // revert puts the node back as it was: no drop-in, root's password works again.
    const reverted = await lab.exec(['pve-baseline', 'revert', 'sshd-hardening', '--yes']);
    assert.equal(reverted.exitCode, 0, reverted.stdout + reverted.stderr);
    assert.equal((await lab.exec(['test', '-e', '/etc/ssh/sshd_config.d/00-pve-baseline.conf'])).exitCode, 1);
    assert.ok(await rootPasswordLogin(lab), 'root logs in with the password again');
  });

  test('strict profile, root only from the cluster network: the proof falls back to the OpenSSH client (ssh2 has no post-quantum key exchange)', async () => {
    await freshNodeWithAdmin(lab);
    const network = lab.nodeAddress.replace(/\.\d+$/, '.0/24');
    const r = await apply(lab, answersFile(['profile: strict', 'root_login: networks', `root_networks: ${network}`, 'revert_seconds: 120']), 'sshd-hardening');
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ssh2 cannot negotiate these \(post-quantum key exchange\), so the automatic proof uses the OpenSSH client instead/);
    assert.match(r.stdout, /ok {3}probe: key exchange is one of the chosen: negotiated (mlkem768x25519-sha256|sntrup761x25519-sha512)/);
    assert.match(r.stdout, new RegExp(`ok {3}root from ${network.replace(/[./]/g, '\\$&')} logs in with a key only \\(cluster SSH\\)`));
    assert.doesNotMatch(r.stdout, /FAIL /);
    const confirm = await lab.ssh({ user: 'alice', privateKey: operator.private, input: `${PASSWORD}\n` }, "sudo -S -p '' pve-baseline confirm").catch((e: Error) => e);
    // ssh2 cannot reach a post-quantum-only server either: the operator confirms with the OpenSSH client.
    assert.ok(confirm instanceof Error, 'ssh2 cannot negotiate with the strict profile');
    const keyDir = mkdtempSync(join(tmpdir(), 'operator-'));
    writeFileSync(join(keyDir, 'id_ed25519'), operator.private, { mode: 0o600 });
    const viaOpenSsh = await execa('ssh', [...lab.sshClientArgs('alice', ['-i', join(keyDir, 'id_ed25519'), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes']), "sudo -S -p '' pve-baseline confirm"], { input: `${PASSWORD}\n`, reject: false });
    rmSync(keyDir, { recursive: true, force: true });
    assert.equal(viaOpenSsh.exitCode, 0, viaOpenSsh.stderr);
    assert.match(viaOpenSsh.stdout, /^Confirmed sshd-hardening/);
    const global = await sh(lab, 'sshd -T');
    assert.match(global, /^permitrootlogin no$/m);
    assert.match(global, /^kexalgorithms mlkem768x25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh\.com$/m);
    assert.match(global, /^requiredrsasize 3072$/m);
    assert.match(await sh(lab, `sshd -T -C user=root,addr=${lab.workstationAddress},host=ws`), /^permitrootlogin without-password$/m);
    assert.match(await sh(lab, 'sshd -T -C user=root,addr=192.0.2.9,host=elsewhere'), /^permitrootlogin no$/m);
  });

  test('the wizard over ssh -t: the countdown ends when the operator logs in from a new terminal with their own key', async () => {
    await freshNodeWithAdmin(lab);
      const wizard = wizardOverSsh(lab, [
      ...UP_TO_THE_RELOAD(120),
      { waitFor: COUNTDOWN, timeoutMs: 60_000 },
      { snapshot: 'countdown' },
      { waitFor: 'SSH server hardening: verified', timeoutMs: 60_000 },
      ...LATER_STEPS_SKIPPED,
      ...restOfTheWizard(KEYS.enter),
    ]);
    // The operator's second terminal, once the change is live.
    await waitUntil(async () => (await journalStep(lab))?.status === 'applied', 'the reload');
    assert.ok(await aliceKeyLogin(lab), 'alice logs in with her key from a new terminal');
    const loginAt = Date.now();
    await waitUntil(async () => (await journalStep(lab))?.status === 'verified', 'the step to be verified', 30_000);
    const verifiedAt = Date.parse((await journalStep(lab))!.history!.at(-1)!.at);
    const r = await wizard;
    assert.ok(r.ok, r.timedOut ? `${r.timedOut.reason}\n${r.timedOut.tail}` : r.plain);
    const countdown = r.snapshots.find((s) => s.name === 'countdown')!.screen.join('\n');
    assert.match(countdown, /Reverts in [0-9]:[0-5][0-9]/);
    assert.match(countdown, new RegExp(`ssh alice@${lab.nodeAddress.replace(/\./g, '\\.')}`));
    assert.match(countdown, /pve-baseline confirm/);
    assert.doesNotMatch(countdown, /keep without a second login/, 'over SSH the second login cannot be skipped');
    const note = (await journalStep(lab))!.history!.find((h) => h.status === 'verified')!.note!;
    assert.match(note, new RegExp(`a new login proved access: alice from ${lab.workstationAddress.replace(/\./g, '\\.')} \\(port \\d+\\) with ED25519 key SHA256:`));
    assert.equal(await rootPasswordLogin(lab), false);
    process.stderr.write(`measured: second-terminal login to step verified: ${verifiedAt - loginAt} ms\n`);
  });

  test('faults, each reverted by the node: the wizard SIGKILLed right after the reload, its session dropped, no login before the deadline', async () => {
    const latencies: number[] = [];

    // 1. SIGKILL right after the reload: no handler runs; the node's timer reverts.
    await freshNodeWithAdmin(lab);
    let before = await sshFiles(lab);
    const killed = wizardOverSsh(lab, [...UP_TO_THE_RELOAD(30), { waitExit: true, timeoutMs: 120_000 }]);
    await waitUntil(async () => (await journalStep(lab))?.status === 'applied', 'the reload');
    assert.equal((await lab.exec(['pkill', '-KILL', '-f', '^node /usr/local/bin/pve-baseline'])).exitCode, 0, 'the wizard was killed');
    await killed;
    latencies.push(await assertRevertedAsBefore(lab, before, 'SIGKILL'));

    // 2. The SSH session running the wizard drops during the countdown.
    await freshNodeWithAdmin(lab);
    before = await sshFiles(lab);
    const dropped = await wizardOverSsh(lab, [...UP_TO_THE_RELOAD(30), { waitFor: COUNTDOWN, timeoutMs: 60_000 }, { closePty: true }]);
    assert.ok(dropped.steps.some((s) => s.kind === 'closePty'), 'the session was dropped');
    latencies.push(await assertRevertedAsBefore(lab, before, 'session dropped'));

    // 3. Nobody logs in before the deadline: the wizard says so; the node has put it back.
    await freshNodeWithAdmin(lab);
    before = await sshFiles(lab);
    const silent = await wizardOverSsh(lab, [
      ...UP_TO_THE_RELOAD(30),
      { waitFor: COUNTDOWN, timeoutMs: 60_000 },
      // The screen through the window (which passes anyway): the countdown redrawn in place, nothing else on it.
      { snapshot: 'countdown-early' },
      { sleepMs: 8000 },
      { snapshot: 'countdown-middle' },
      { sleepMs: 8000 },
      { snapshot: 'countdown-late' },
      { waitFor: 'no new login before the deadline', timeoutMs: 60_000 },
      { waitFor: 'Addresses and networks that may manage this node', timeoutMs: 30_000 }, // the next step (the firewall); stop here
      { send: KEYS.ctrlC },
      { waitExit: true, timeoutMs: 20_000 },
    ]);
    assert.ok(silent.ok, silent.timedOut ? `${silent.timedOut.reason}\n${silent.timedOut.tail}` : silent.plain);
    const left: number[] = [];
    for (const name of ['countdown-early', 'countdown-middle', 'countdown-late']) {
      const screen = silent.snapshots.find((s) => s.name === name)!.screen;
      const lines = screen.filter((l) => /Reverts in [0-9]:[0-5][0-9]/.test(l));
      assert.equal(lines.length, 1, `${name}: the countdown drawn once, in place:\n${screen.join('\n')}`);
      const [, m, sec] = /Reverts in ([0-9]):([0-5][0-9])/.exec(lines[0]!)!;
      left.push(Number(m) * 60 + Number(sec));
    }
    assert.ok(left[0]! > left[1]! && left[1]! > left[2]!, `the countdown moves: ${left.join(', ')} s left`);
    // Node prints its warnings as "(node:PID) NameWarning: ...", and a stack trace names node:internal.
    assert.doesNotMatch(silent.plain, /\(node:\d+\)|MaxListenersExceeded|node:internal/, 'nothing but the wizard wrote to the terminal');
    latencies.push(await assertRevertedAsBefore(lab, before, 'no login'));
    assert.equal((await journalStep(lab))?.status, 'failed', 'the journal says it failed');
    process.stderr.write(`measured: revert latency after the deadline (kill, drop, silence): ${latencies.join(', ')} ms\n`);
  });

  test('killed while the probe key is installed: the node reverts and removes the probe line too', async () => {
    await freshNodeWithAdmin(lab);
    const before = await sshFiles(lab);
    const killed = wizardOverSsh(lab, [...UP_TO_THE_RELOAD(30), { waitExit: true, timeoutMs: 120_000 }]);
    await waitUntil(async () => (await lab.exec(['grep', '-q', 'pve-baseline-probe$', '/home/alice/.ssh/authorized_keys'])).exitCode === 0, 'the probe key', 60_000);
    assert.equal((await lab.exec(['pkill', '-KILL', '-f', '^node /usr/local/bin/pve-baseline'])).exitCode, 0, 'the wizard was killed');
    await killed;
    assert.match(await sh(lab, 'cat /home/alice/.ssh/authorized_keys'), /pve-baseline-probe$/m, 'the kill left the probe line behind');
    await assertRevertedAsBefore(lab, before, 'SIGKILL during the proof');
    assert.equal((await sh(lab, 'stat -c %a:%U:%G /home/alice/.ssh/authorized_keys')).trim(), '600:alice:alice');
  });

  test('the session drops during the countdown; the operator comes back as alice with her key and runs the wizard again: it sees that login and keeps the change', async () => {
    await freshNodeWithAdmin(lab);
    const dropped = await wizardOverSsh(lab, [...UP_TO_THE_RELOAD(120), { waitFor: COUNTDOWN, timeoutMs: 60_000 }, { closePty: true }]);
    assert.ok(dropped.steps.some((s) => s.kind === 'closePty'));
    await waitUntil(async () => (await lab.exec(['pgrep', '-f', '^node /usr/local/bin/pve-baseline'])).exitCode === 1, 'the wizard to end');
    assert.equal((await journalStep(lab))?.status, 'applied', 'still awaiting confirmation');
    const keyDir = mkdtempSync(join(tmpdir(), 'operator-'));
    writeFileSync(join(keyDir, 'id_ed25519'), operator.private, { mode: 0o600 });
    try {
      const back = await runInPty({
        argv: ['ssh', '-t', ...lab.sshClientArgs('alice', ['-i', join(keyDir, 'id_ed25519'), '-o', 'IdentitiesOnly=yes']), 'sudo', 'pve-baseline'],
        env: ptyEnv({ TERM: 'xterm-256color' }),
        script: [
          { waitFor: 'password for alice', timeoutMs: 20_000 },
          { send: `${PASSWORD}\r` },
          { waitFor: 'Nothing changes until you have seen the plan', timeoutMs: 20_000 },
          { snapshot: 'welcome' },
          { send: KEYS.enter },
          { waitFor: 'SSH server hardening: verified', timeoutMs: 60_000 },
          { waitFor: 'Addresses and networks that may manage this node', timeoutMs: 30_000 }, // the firewall: stop here
          { send: KEYS.ctrlC },
          { waitExit: true, timeoutMs: 20_000 },
        ],
        maxMs: 120_000,
      });
      assert.ok(back.ok, back.timedOut ? `${back.timedOut.reason}\n${back.timedOut.tail}` : back.plain);
      // sudo dropped SSH_CONNECTION; the session is still known as SSH (from the login shell above sudo).
      const welcome = back.snapshots.find((x) => x.name === 'welcome')!.screen.join('\n');
      assert.match(welcome, new RegExp(`Session +SSH from ${lab.workstationAddress.replace(/\./g, '\\.')}`));
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
    const record = await journalStep(lab);
    assert.equal(record?.status, 'verified');
    assert.match(record!.history!.at(-1)!.note!, new RegExp(`a new login proved access: alice from ${lab.workstationAddress.replace(/\./g, '\\.')}`));
    assert.equal((await lab.exec(['test', '-e', '/etc/ssh/sshd_config.d/00-pve-baseline.conf'])).exitCode, 0, 'the change stays');
    assert.equal(await sh(lab, `ls ${STATE}/revert/pending`), '', 'nothing is armed any more');
  });

  test('a reboot inside the window: the boot hook reverts before sshd starts', async () => {
    await freshNodeWithAdmin(lab);
    const before = await sshFiles(lab);
    const r = await apply(lab, answersFile(['revert_seconds: 300']), 'sshd-hardening');
    assert.match(r.stdout, /AWAITING CONFIRMATION/);
    assert.equal(await rootPasswordLogin(lab), false, 'hardened before the reboot');
    await lab.reboot();
    assert.equal(await sshFiles(lab), before, 'every file as before');
    assert.ok(await rootPasswordLogin(lab), 'root logs in with the password again');
    assert.match(await sh(lab, `cat ${STATE}/revert/*.result`), /^reverted at \S+ \(boot\)$/m);
    const status = await sh(lab, 'pve-baseline status');
    assert.match(status, /the node reverted it, unconfirmed: reverted at \S+ \(boot\)/);
    assert.doesNotMatch(status, /AWAITING CONFIRMATION/);
  });

  test('refused before the reload: a competing drop-in that sorts first, and an invalid line elsewhere (nothing reloaded)', async () => {
    await freshNodeWithAdmin(lab);
    await sh(lab, "printf 'PasswordAuthentication yes\\n' > /etc/ssh/sshd_config.d/00-aaa.conf");
    let before = await sshFiles(lab);
    const competing = await apply(lab, answersFile([]), 'sshd-hardening');
    assert.equal(competing.exitCode, 1);
    assert.match(competing.stdout, /refused before activating: sshd -T shows passwordauthentication no \(it shows yes: passwordauthentication is set first by \/etc\/ssh\/sshd_config\.d\/00-aaa\.conf:1 \("yes"\)\)/);
    assert.equal(await sshFiles(lab), before, 'every file as before');
    assert.ok(await rootPasswordLogin(lab));

    await freshNodeWithAdmin(lab);
    await sh(lab, "printf 'NoSuchKeyword yes\\n' > /etc/ssh/sshd_config.d/50-broken.conf");
    before = await sshFiles(lab);
    const reloads = async () => (await sh(lab, "journalctl -u ssh --no-pager -o cat | grep -c '^Reloading' || true")).trim();
    const reloadsBefore = await reloads();
    const invalid = await apply(lab, answersFile([]), 'sshd-hardening');
    assert.equal(invalid.exitCode, 1);
    assert.match(invalid.stdout, /refused before activating: sshd -t accepts the configuration \(\/etc\/ssh\/sshd_config\.d\/50-broken\.conf: line 1: Bad configuration option: NoSuchKeyword; .*terminating, 1 bad configuration options; nothing was reloaded\)/);
    assert.equal(await sshFiles(lab), before, 'every file as before');
    assert.equal(await reloads(), reloadsBefore, 'sshd was never reloaded');
    assert.ok(await rootPasswordLogin(lab));
  });

  test('pre-flight refusals, nothing changed: an RSA-2048 key under the strict profile, AllowGroups without the admin, AllowGroups elsewhere, AllowUsers in a Match block', async () => {
    await freshNodeWithAdmin(lab, rsa2048.public);
    let before = await sshFiles(lab);
    const strict = await apply(lab, answersFile(['profile: strict'], rsa2048.public), 'sshd-hardening');
    assert.equal(strict.exitCode, 1);
    assert.match(strict.stdout, /refused before any change: alice has an installed key the strict profile accepts \(RSA 2048 bits SHA256:\S+ old-laptop: RequiredRSASize 3072 refuses an RSA key of 2048 bits\. Install an ed25519 key \(the SSH key step\), or choose the compatible profile\)/);
    assert.doesNotMatch(strict.stdout, /Plan:/, 'the plan is not even offered');
    assert.equal(await sshFiles(lab), before);
    assert.equal((await lab.exec(['test', '-e', `${STATE}/revert/armed.json`])).exitCode, 1, 'nothing was armed');

    await freshNodeWithAdmin(lab);
    await sh(lab, 'groupadd sshusers');
    before = await sshFiles(lab);
    const groups = await apply(lab, answersFile(['allow_mode: groups', 'allow_groups: sshusers']), 'sshd-hardening');
    assert.equal(groups.exitCode, 1);
    assert.match(groups.stdout, /refused before any change: AllowGroups sshusers keeps alice \(alice is a member of alice, sudo, none of which is allowed/);
    assert.equal(await sshFiles(lab), before);

    // An AllowGroups line already in sshd_config would still apply next to our AllowUsers: caught before the reload.
    await sh(lab, "printf '\\nAllowGroups wheel\\n' >> /etc/ssh/sshd_config");
    before = await sshFiles(lab);
    const elsewhere = await apply(lab, answersFile(['allow_mode: users', 'revert_seconds: 120']), 'sshd-hardening');
    assert.equal(elsewhere.exitCode, 1);
    assert.match(elsewhere.stdout, /alice can still log in with a key from \S+ \(AllowGroups wheel does not include any group of alice/);
    assert.equal(await sshFiles(lab), before);

    // AllowUsers in a Match block replaces the list for the connections it matches: here it would shut alice out.
    await freshNodeWithAdmin(lab);
    const network = lab.nodeAddress.replace(/\.\d+$/, '.0/24');
    await sh(lab, `printf '\\nMatch Address ${network}\\n    AllowUsers bob\\n' >> /etc/ssh/sshd_config`);
    before = await sshFiles(lab);
    const matched = await apply(lab, answersFile([]), 'sshd-hardening');
    assert.equal(matched.exitCode, 1);
    assert.match(matched.stdout, /refused before activating: .*alice can still log in with a key from [\d.]+ \(AllowUsers bob does not include alice from [\d.]+\)/);
    assert.equal(await sshFiles(lab), before);
  });
}
