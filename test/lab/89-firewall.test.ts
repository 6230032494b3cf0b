/**
 * Issue 12 on the lab node: the Proxmox firewall step, with the node's
 * pve-firewall stand-in enforcing cluster.fw + host.fw as nftables rules in
 * the node's own network namespace (test/lab/84-firewall-enforce.test.ts
 * proves the enforcement itself).
 *
 * Every connection comes from the workstation side: the operator from
 * 10.77.9.1, outside the node's local network (so only the management set
 * lets them in), an outsider from 10.77.9.66 (nothing lets them in).
 * "As before" means: both firewall files byte for byte as they were (or
 * still absent), and the operator and the outsider reach 22 and 8006 again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { KEYS, ptyEnv, runInPty, type PtyStep } from '../support/pty.ts';
import { adminAnswers, armedReverts, installBundle, journalStep as journalStepOf, labOrSkip, revertedAt, sh, restOfTheWizard, sshdQuestions, STATE_DIR as STATE, waitUntil, webGet } from './helpers.ts';
import type { Lab } from './lab.ts';
import { ADMIN_CLUSTER_FW, ADMIN_RULES_AFTER } from '../fixtures/fake-firewall.ts';

const lab = await labOrSkip();
const CLUSTER_FW = '/etc/pve/firewall/cluster.fw';
const HOST_FW = '/etc/pve/nodes/pve1/host.fw';

function answers(lines: string[]): string {
  return ['version: 1', 'firewall:', ...lines.map((l) => `  ${l}`), ''].join('\n');
}

/** Both firewall files by checksum ("absent" when missing). */
const fwFiles = (node: Lab) => sh(node, `for f in ${CLUSTER_FW} ${HOST_FW}; do if [ -e "$f" ]; then sha256sum "$f"; else echo "absent $f"; fi; done`);

/** `pve-baseline apply --only firewall` from an SSH session of root's, from the operator's address. */
function applyFrom(node: Lab, from: string, yaml: string) {
  writeFileSync(join(node.rootDir, 'root/answers.yml'), yaml, { mode: 0o600 });
  return node.ssh({ user: 'root', password: node.rootPassword, from, timeoutMs: 20_000 }, 'pve-baseline apply --answers /root/answers.yml --yes --only firewall');
}


async function reach(node: Lab, from: string): Promise<string> {
  const [ssh, web] = await Promise.all([node.tcpProbe(22, { from }), node.tcpProbe(8006, { from })]);
  return `22 ${ssh}, 8006 ${web}`;
}

const journalStep = (node: Lab) => journalStepOf(node, 'firewall');

/** The newest arming's deadline (epoch ms): an older, reverted one stays listed until the next run notes it. */
async function armedDeadline(node: Lab): Promise<number> {
  const index = await armedReverts(node);
  assert.ok(index.length >= 1, 'a revert is armed');
  return Math.max(...index.map((e) => e.deadline));
}

/** After a fault: the node reverts by itself within 5 s of its deadline, the files are as before, and everyone gets in as before. */
async function assertRevertedAsBefore(node: Lab, before: string, label: string, armedAfter: number): Promise<number> {
  const deadline = await armedDeadline(node);
  await waitUntil(async () => (await revertedAt(node, armedAfter)) !== undefined, `${label}: the node's revert`, Math.max(0, deadline - Date.now()) + 30_000);
  const latency = (await revertedAt(node, armedAfter))! - deadline;
  assert.ok(latency < 5000, `${label}: reverted ${latency} ms after the deadline (target: within 5 s)`);
  assert.equal(await fwFiles(node), before, `${label}: both firewall files byte for byte as before`);
  assert.equal(await reach(node, node.remoteOperatorAddress), '22 connected, 8006 connected', `${label}: the operator reaches SSH and the web UI`);
  await waitUntil(async () => (await reach(node, node.outsiderAddress)) === '22 connected, 8006 connected', `${label}: the firewall off again, as before`, 15_000);
  return latency;
}

async function freshNode(node: Lab): Promise<void> {
  await node.reset();
  await installBundle(node);
  await waitUntil(async () => (await reach(node, node.workstationAddress)) === '22 connected, 8006 connected', 'sshd and pveproxy after the reset', 30_000);
}

/** Until a new run of the step (a new revert id) has made the change live. */
async function untilLive(node: Lab, previous: string | undefined): Promise<void> {
  await waitUntil(async () => {
    const guard = (await journalStep(node))?.guard;
    return guard?.revertId !== previous && ['active', 'proven'].includes(guard?.phase ?? '');
  }, 'the enable', 60_000);
}

const OP_ONLY = ['management: 10.77.9.1', 'icmp: management'];
const ADMIN_ANSWERS = adminAnswers('correct horse battery staple');

if (lab) {
  const OP = lab.remoteOperatorAddress;
  const OUT = lab.outsiderAddress;

  test('happy path, unattended: applied from 10.77.9.1 under a revert, confirmed from a new session; the outsider is dropped; check, drift, revert', async () => {
    await freshNode(lab);
    const before = await fwFiles(lab);
    assert.equal(before, `absent ${CLUSTER_FW}\nabsent ${HOST_FW}\n`, 'a fresh node has no firewall files');
    assert.equal(await reach(lab, OUT), '22 connected, 8006 connected', 'with the firewall off the outsider gets in');

    const r = await applyFrom(lab, OP, answers([...OP_ONLY, 'revert_seconds: 120']));
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /=> applied; AWAITING CONFIRMATION: confirm from a new session before \S+ \(pve-baseline confirm\), or the node reverts/);
    assert.doesNotMatch(r.stdout, /FAIL /);
    for (const proven of ['pve-firewall simulate: you (this session) at 10.77.9.1 to tcp/22', 'pve-firewall simulate: you (this session) at 10.77.9.1 to tcp/8006', 'the firewall daemon runs and enforces the files']) {
      assert.ok(r.stdout.includes(`ok   ${proven}`), `${proven}\n${r.stdout}`);
    }
    assert.match(r.stdout, /pvesh set \/cluster\/firewall\/options --enable 1 --policy_in DROP --digest [0-9a-f]{40}/);

    // Enforced: the operator and the local network in, the outsider dropped (no answer at all), ping as chosen.
    assert.equal(await reach(lab, OP), '22 connected, 8006 connected');
    assert.equal(await reach(lab, lab.workstationAddress), '22 connected, 8006 connected', 'the local network is in the management set (Proxmox merges it)');
    assert.equal(await reach(lab, OUT), '22 timed out, 8006 timed out', 'the outsider is dropped');
    assert.equal(await lab.ping({ from: OP }), true, 'the management set is answered');
    assert.equal(await lab.ping({ from: OUT }), false, 'the outsider is not');
    assert.equal(await webGet(lab, OP), 501, "the web UI's port answers the operator");

    // The proof from a new session, from the operator's address.
    const t0 = Date.now();
    const confirm = await lab.ssh({ user: 'root', password: lab.rootPassword, from: OP }, 'pve-baseline confirm');
    assert.equal(confirm.exitCode, 0, confirm.stderr);
    assert.match(confirm.stdout, /^Confirmed firewall: the change stays/);
    process.stderr.write(`measured: firewall, unattended confirm from a new session: ${Date.now() - t0} ms\n`);
    assert.equal((await journalStep(lab))?.status, 'verified');

    // A second run plans nothing; check calls it compliant.
    const again = await applyFrom(lab, OP, answers([...OP_ONLY, 'revert_seconds: 120']));
    assert.equal(again.exitCode, 0, again.stdout);
    assert.match(again.stdout, /Summary: 1 compliant\./);
    assert.doesNotMatch(again.stdout, /Plan:/);
    const check = await lab.exec(['pve-baseline', 'check', '--json']);
    assert.equal(JSON.parse(check.stdout).steps.find((s: { id: string }) => s.id === 'firewall').status, 'compliant', check.stdout);

    // A hand edit that closes the web UI: check exits 1 and names the rule.
    await sh(lab, `sed -i 's/^\\[RULES\\]$/[RULES]\\n\\nIN DROP -p tcp -dport 8006 # closed by hand/' ${CLUSTER_FW}`);
    const drift = await lab.exec(['pve-baseline', 'check']);
    assert.equal(drift.exitCode, 1, drift.stdout);
    assert.match(drift.stdout, /firewall\s+drift/);
    assert.match(drift.stdout, /firewall\s+drift\s+Proxmox firewall \(management address 10\.77\.9\.1 reaches tcp\/8006 \(DROP by cluster\.fw line \d+: IN DROP -p tcp -dport 8006\)\)/);
    await waitUntil(async () => (await lab.tcpProbe(8006, { from: OP })) === 'timed out', 'the daemon to apply the hand edit', 15_000);
    await sh(lab, `sed -i '/# closed by hand$/d' ${CLUSTER_FW}`);

    // revert: both files as before (absent), the outsider gets in again.
    const reverted = await lab.exec(['pve-baseline', 'revert', 'firewall', '--yes']);
    assert.equal(reverted.exitCode, 0, reverted.stdout + reverted.stderr);
    assert.equal(await fwFiles(lab), before);
    await waitUntil(async () => (await reach(lab, OUT)) === '22 connected, 8006 connected', 'the firewall off after the revert', 15_000);
  });

  test('refused before any change: a management set that leaves the operator out; a rule Proxmox cannot parse', async () => {
    await freshNode(lab);
    const before = await fwFiles(lab);
    const out = await applyFrom(lab, OP, answers(['management: 10.77.8.0/24', 'icmp: none', 'revert_seconds: 60']));
    assert.equal(out.exitCode, 1, out.stdout);
    assert.match(out.stdout, /FAIL you \(this session\) at 10\.77\.9\.1 reach tcp\/22: DROP by the inbound policy \(DROP\)/);
    assert.equal(await fwFiles(lab), before, 'nothing written');
    assert.equal((await lab.exec(['test', '-e', `${STATE}/revert/armed.json`])).exitCode === 0 ? (await sh(lab, `cat ${STATE}/revert/armed.json`)).trim() : '[]', '[]', 'no revert armed');

    await sh(lab, `mkdir -p /etc/pve/nodes/pve1 && printf '[RULES]\\n\\nIN ACCEPT -dport 80 # a port without a protocol\\n' > ${HOST_FW}`);
    const withBad = await fwFiles(lab);
    const bad = await applyFrom(lab, OP, answers([...OP_ONLY, 'revert_seconds: 60']));
    assert.equal(bad.exitCode, 1, bad.stdout);
    assert.match(bad.stdout, /FAIL pve-firewall compile finds no rule it would skip: Proxmox skips these while DROP applies: .*host\.fw \(line 3\)/);
    assert.equal(await fwFiles(lab), withBad, 'nothing written');
    await sh(lab, `rm -f ${HOST_FW}`);
  });

  test("the administrator's own rules, aliases and ipsets are kept, in their order", async () => {
    await freshNode(lab);
    const mine = ADMIN_CLUSTER_FW;
    writeFileSync(join(lab.rootDir, 'root/cluster.fw'), mine);
    await sh(lab, `install -m 0640 -g www-data /root/cluster.fw ${CLUSTER_FW}`);
    const r = await applyFrom(lab, OP, answers([...OP_ONLY, 'revert_seconds: 60']));
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    const after = await sh(lab, `cat ${CLUSTER_FW}`);
    assert.deepEqual(after.split('\n').filter((l) => /^\|?IN /.test(l)), ADMIN_RULES_AFTER);
    for (const kept of ['backup_server 10.77.7.50 # the PBS', '10.77.7.5 # jump host', '[IPSET monitoring]', '10.77.7.60']) assert.ok(after.includes(kept), kept);
    const confirm = await lab.ssh({ user: 'root', password: lab.rootPassword, from: OP }, 'pve-baseline confirm');
    assert.equal(confirm.exitCode, 0, confirm.stderr);
    assert.equal(await reach(lab, OUT), '22 timed out, 8006 timed out');
  });

  test('faults, each reverted by the node within its window: no confirmation, killed right after the enable, the session dropped, a reboot', async () => {
    await freshNode(lab);
    const before = await fwFiles(lab);
    const yaml = answers([...OP_ONLY, 'revert_seconds: 30']);
    const latencies: number[] = [];

    // 1. Nobody confirms: the run ends awaiting confirmation, the node reverts at the deadline.
    let armedAfter = Date.now();
    const unconfirmed = await applyFrom(lab, OP, yaml);
    assert.equal(unconfirmed.exitCode, 0, unconfirmed.stdout);
    assert.equal(await reach(lab, OUT), '22 timed out, 8006 timed out', 'live until the deadline');
    latencies.push(await assertRevertedAsBefore(lab, before, 'no confirmation', armedAfter));

    // 2. SIGKILL right after the enable: no handler runs; the node's timer reverts.
    armedAfter = Date.now();
    let previous = (await journalStep(lab))?.guard?.revertId;
    const killedRun = applyFrom(lab, OP, yaml).catch((e: Error) => e);
    await untilLive(lab, previous);
    assert.equal((await lab.exec(['pkill', '-KILL', '-f', '^node /usr/local/bin/pve-baseline apply'])).exitCode, 0, 'the run was killed');
    await killedRun;
    latencies.push(await assertRevertedAsBefore(lab, before, 'SIGKILL', armedAfter));

    // 3. The operator's SSH session drops right after the enable (the OpenSSH client killed on the workstation).
    armedAfter = Date.now();
    writeFileSync(join(lab.rootDir, 'root/answers.yml'), yaml, { mode: 0o600 });
    previous = (await journalStep(lab))?.guard?.revertId;
    const client = execa('sshpass', ['-e', 'ssh', '-tt', ...lab.sshClientArgs('root', ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password'], OP), 'pve-baseline apply --answers /root/answers.yml --yes --only firewall'], { env: { SSHPASS: lab.rootPassword }, reject: false });
    await untilLive(lab, previous);
    client.kill('SIGKILL');
    await client;
    latencies.push(await assertRevertedAsBefore(lab, before, 'session dropped', armedAfter));

    // 4. A reboot inside the window: the boot hook restores the files before the firewall starts.
    const rebooting = await applyFrom(lab, OP, answers([...OP_ONLY, 'revert_seconds: 300']));
    assert.equal(rebooting.exitCode, 0, rebooting.stdout);
    assert.equal(await reach(lab, OUT), '22 timed out, 8006 timed out');
    await lab.reboot();
    assert.equal(await fwFiles(lab), before, 'after the reboot: both files as before');
    await waitUntil(async () => (await reach(lab, OP)) === '22 connected, 8006 connected', 'the operator reaching sshd and pveproxy after the boot', 30_000);
    assert.equal(await reach(lab, OUT), '22 connected, 8006 connected', 'the firewall came up with the old files: off');
    assert.match(await sh(lab, 'pve-baseline status'), /firewall/);
    process.stderr.write(`measured: firewall revert latency after the deadline: ${latencies.join(', ')} ms\n`);
  });

  test('the wizard over ssh -t from 10.77.9.1: the countdown ends when the operator logs in again and opens the web UI', async () => {
    await freshNode(lab);
    // The admin steps done unattended first, as a real operator's earlier session would have.
    writeFileSync(join(lab.rootDir, 'root/admin.yml'), ADMIN_ANSWERS, { mode: 0o600 });
    const admin = await lab.exec(['pve-baseline', 'apply', '--answers', '/root/admin.yml', '--yes', '--only', 'admin-account,ssh-key,break-glass'], { timeoutMs: 120_000 });
    assert.equal(admin.exitCode, 0, admin.stdout + admin.stderr);
    const wizard = runInPty({
      argv: ['sshpass', '-e', 'ssh', '-t', ...lab.sshClientArgs('root', ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password'], OP), 'pve-baseline'],
      env: ptyEnv({ SSHPASS: lab.rootPassword, TERM: 'xterm-256color' }),
      script: wizardScript(),
      maxMs: 240_000,
    });
    await waitUntil(async () => (await journalStep(lab))?.status === 'applied', 'the enable', 180_000);
    await waitUntil(async () => (await reach(lab, OUT)) === '22 timed out, 8006 timed out', 'the daemon to apply the rules', 15_000);
    // The operator's second terminal and browser tab.
    const loginAt = Date.now();
    const login = await lab.ssh({ user: 'root', password: lab.rootPassword, from: OP }, 'true');
    assert.equal(login.exitCode, 0);
    assert.equal(await webGet(lab, OP), 501);
    await waitUntil(async () => (await journalStep(lab))?.status === 'verified', 'the step to be verified', 30_000);
    const verifiedAt = Date.parse((await journalStep(lab))!.history!.at(-1)!.at);
    const r = await wizard;
    assert.ok(r.ok, r.timedOut ? `${r.timedOut.reason}\n${r.timedOut.tail}` : r.plain);
    const countdown = r.snapshots.find((s) => s.name === 'countdown')!.screen.join('\n');
    assert.match(countdown, /Reverts in [0-9]:[0-5][0-9]/);
    assert.match(countdown, /https:\/\/10\.77\.7\.2:8006/);
    const note = (await journalStep(lab))!.history!.find((h) => h.status === 'verified')!.note!;
    assert.match(note, /a new login proved access: root from 10\.77\.9\.1 \(port \d+\) with password.*the web UI answered GET \/ from 10\.77\.9\.1/);
    process.stderr.write(`measured: firewall, operator's login to step verified: ${verifiedAt - loginAt} ms\n`);
  });
}

/** Welcome; the sshd step asked with its defaults and skipped; the firewall's defaults, the node's name typed; the countdown; the rest skipped. */
function wizardScript(): PtyStep[] {
  return [
    { waitFor: 'Nothing changes until you have seen the plan', timeoutMs: 20_000 },
    { send: KEYS.enter },
    ...sshdQuestions(120),
    { waitFor: 'to apply, or', timeoutMs: 30_000 },
    { send: 'skip\r' },
    { waitFor: 'Addresses and networks that may manage this node', timeoutMs: 30_000 },
    { send: KEYS.enter }, // the detected default: you, and the local network
    { waitFor: 'Answer ping' },
    { send: KEYS.enter },
    { waitFor: 'Seconds you have to prove access' },
    { send: '120\r' },
    { waitFor: 'to apply, or', timeoutMs: 30_000 },
    { send: 'pve1\r' },
    { waitFor: 'Prove you can still log in', timeoutMs: 60_000 },
    { snapshot: 'countdown' },
    { waitFor: 'Proxmox firewall: verified', timeoutMs: 60_000 },
    { waitFor: 'Addresses fail2ban must never ban', timeoutMs: 30_000 },
    { send: KEYS.escape }, // fail2ban and two-factor: skipped at their first question (86 and 89-two-factor prove them)
    { waitFor: 'Proxmox account to protect with a second factor', timeoutMs: 30_000 },
    { send: KEYS.escape },
    ...restOfTheWizard('s'),
  ];
}
