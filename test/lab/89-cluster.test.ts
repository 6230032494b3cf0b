/**
 * Issue 18, the cluster: pve2 joined to pve1 (lab.ts ensureCluster: one
 * /etc/pve, corosync.conf on both, Debian's corosync with knet between the
 * ring addresses, root's cluster key in priv/authorized_keys), then Ansible
 * (Debian's ansible-core, examples/ansible/site.yml) from the workstation
 * takes both fresh nodes to the baseline, one after the other:
 *
 * - the cluster is real: `pvecm status` shows two nodes and quorum on both;
 *   what one node writes to /etc/pve the other reads, and its config.db holds
 * - after the baseline: root's migration SSH (Proxmox's own ssh command line,
 *   SSHInfo.pm) from pve1 to pve2 and back works with the cluster key, a
 *   password login between them does not; corosync's ports answer only
 *   between the ring addresses (the workstation, inside the local network,
 *   and the outsider are dropped) and quorum holds under inbound DROP; the
 *   outsider is refused SSH and the web UI on both
 * - the datacenter steps on the second node are compliant without changes,
 *   applied from pve1, as status and check --json say
 * - killing Ansible between the apply and the confirm task leaves the node
 *   reverted by its own timer; running the playbook again finishes it
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, REPO } from '../support/bundle.ts';
import { armedReverts, journalStep, labOrSkip, revertedAt, sh, waitUntil } from './helpers.ts';
import { ensureCluster, KERNEL_N1, type Lab, type LabCluster } from './lab.ts';
import { proxmoxTotpUri } from '../../src/tfa/totp.ts';
import { newTotpSecret, totpCode } from '../../src/tfa/totp-codes.ts';

const base = await labOrSkip();

/** Proxmox's ssh for migration and `pvecm` between nodes (pve-cluster SSHInfo.pm ssh_info_to_command), run as root on `from`. */
function migrationSsh(from: Lab, to: Lab, extra: string[] = []): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return from.exec(
    ['/usr/bin/ssh', '-e', 'none', '-o', 'BatchMode=yes', '-o', `HostKeyAlias=${to.hostname}`, '-o', `UserKnownHostsFile=/etc/pve/nodes/${to.hostname}/ssh_known_hosts`, '-o', 'GlobalKnownHostsFile=none', ...extra, `root@${to.nodeAddress}`, 'hostname'],
    { timeoutMs: 90_000 },
  );
}

/** What the target says of the source when a connection between nodes fails: bans, firewall, sshd's log. */
async function whyNot(from: Lab, to: Lab): Promise<string> {
  const r = await to.exec(['sh', '-c', `fail2ban-client status sshd 2>&1; fail2ban-client status proxmox 2>&1; pve-firewall status; nft list ruleset 2>&1 | grep -n '${from.nodeAddress}' | head -20; journalctl -u ssh --no-pager -n 30 2>&1`]);
  return `on ${to.hostname}:\n${r.stdout}${r.stderr}`;
}

/** root's password over SSH from one node to the other (OpenSSH with SSH_ASKPASS: no sshpass on a node), key authentication off. */
async function passwordSsh(from: Lab, to: Lab, password: string): Promise<{ exitCode: number; stderr: string }> {
  await from.exec(['sh', '-c', 'umask 077; printf "#!/bin/sh\\necho \\"$1\\"\\n" "$1" > /root/.lab-askpass; chmod 700 /root/.lab-askpass', 'sh', password]);
  try {
    return await from.exec(
      ['setsid', '-w', 'ssh', '-o', 'BatchMode=no', '-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password,keyboard-interactive', '-o', 'NumberOfPasswordPrompts=1', '-o', `HostKeyAlias=${to.hostname}`, '-o', `UserKnownHostsFile=/etc/pve/nodes/${to.hostname}/ssh_known_hosts`, `root@${to.nodeAddress}`, 'hostname'],
      { env: { SSH_ASKPASS: '/root/.lab-askpass', SSH_ASKPASS_REQUIRE: 'force', DISPLAY: 'none' }, timeoutMs: 30_000 },
    );
  } finally {
    await from.exec(['rm', '-f', '/root/.lab-askpass']);
  }
}

/** A UDP echo on `node`'s port (a transient unit of the node's own systemd), for probing what the firewall lets through. */
async function udpEcho(node: Lab, port: number): Promise<void> {
  const unit = `lab-udp-echo-${port}`;
  await node.exec(['systemctl', 'stop', unit]);
  const r = await node.exec(['systemd-run', `--unit=${unit}`, '--collect', 'node', '-e', `const d=require('dgram').createSocket('udp4');d.on('message',(m,r)=>d.send(m,r.port,r.address));d.bind(${port})`]);
  assert.equal(r.exitCode, 0, r.stderr);
  await sh(node, `for i in $(seq 50); do ss -Hlun sport = :${port} | grep -q . && exit 0; sleep 0.1; done; exit 1`);
}

/** Does `to`'s UDP echo on `port` answer a datagram from node `from`? */
async function udpFromNode(from: Lab, to: Lab, port: number): Promise<boolean> {
  const script = `const d=require('dgram').createSocket('udp4');d.on('message',()=>{console.log('answered');process.exit(0)});d.send('probe',${port},'${to.nodeAddress}');setTimeout(()=>{console.log('silence');process.exit(0)},1500)`;
  const r = await from.exec(['node', '-e', script]);
  return r.stdout.trim() === 'answered';
}

/** Does `to`'s UDP echo answer a datagram from a workstation-side address? */
function udpFromWorkstation(to: Lab, port: number, fromAddress: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const done = (answered: boolean) => {
      clearTimeout(timer);
      s.close();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), 1500);
    s.on('message', () => done(true));
    s.on('error', reject);
    s.bind(0, fromAddress, () => s.send('probe', port, to.nodeAddress));
  });
}

if (base) {
  let cluster: LabCluster;

  test('two fresh nodes in a stand-in cluster: quorum on both, one /etc/pve, root\'s cluster key', async () => {
    cluster = await ensureCluster({ fresh: true });
    const { pve1, pve2 } = cluster;
    for (const node of [pve1, pve2]) {
      const status = await node.exec(['pvecm', 'status']);
      assert.equal(status.exitCode, 0, status.stderr);
      assert.match(status.stdout, /^Name:\s+pvelab$/m);
      assert.match(status.stdout, /^Nodes:\s+2$/m);
      assert.match(status.stdout, /^Quorate:\s+Yes$/m);
      assert.match(status.stdout, new RegExp(`^0x0+1\\s+1 ${pve1.nodeAddress.replace(/\./g, '\\.')}${node === pve1 ? ' \\(local\\)' : ''}$`, 'm'));
      assert.match(status.stdout, new RegExp(`^0x0+2\\s+1 ${pve2.nodeAddress.replace(/\./g, '\\.')}${node === pve2 ? ' \\(local\\)' : ''}$`, 'm'));
    }
    // what pve2 writes through Proxmox's tools pve1 reads, and pve1's config.db holds
    const add = await pve2.exec(['pveum', 'user', 'add', 'carol@pve', '--comment', 'made on pve2']);
    assert.equal(add.exitCode, 0, add.stderr);
    assert.match(await sh(pve1, 'pveum user list --output-format json'), /carol@pve/);
    await sh(pve1, `for i in $(seq 40); do sqlite3 /var/lib/pve-cluster/config.db "SELECT data FROM tree WHERE name = 'user.cfg'" | grep -q carol@pve && exit 0; sleep 0.25; done; exit 1`);
    assert.equal((await pve1.exec(['pveum', 'user', 'delete', 'carol@pve'])).exitCode, 0);
    // each node sees its own directory as /etc/pve/local
    assert.equal((await sh(pve2, 'readlink -f /etc/pve/local')).trim(), '/etc/pve/nodes/pve2');
    assert.equal((await sh(pve1, 'readlink -f /etc/pve/local')).trim(), '/etc/pve/nodes/pve1');
    // root's cluster key: both nodes' keys in the one authorized_keys, and migration SSH both ways
    const keys = await sh(pve1, 'cat /etc/pve/priv/authorized_keys');
    assert.match(keys, /root@pve1$/m);
    assert.match(keys, /root@pve2$/m);
    for (const [from, to] of [[pve1, pve2], [pve2, pve1]] as const) {
      const r = await migrationSsh(from, to);
      assert.equal(r.exitCode, 0, `${from.hostname} -> ${to.hostname}: ${r.stderr}`);
      assert.equal(r.stdout.trim(), to.hostname);
    }
    // a fresh node still takes root's password (PermitRootLogin yes, as the installer leaves it)
    const pw = await passwordSsh(pve1, pve2, pve2.rootPassword);
    assert.equal(pw.exitCode, 0, pw.stderr);
  });

  test('before the baseline corosync\'s ports, and any other, answer everyone (no firewall yet)', async () => {
    const { pve1, pve2 } = cluster;
    await udpEcho(pve2, 5404);
    assert.equal(await udpFromNode(pve1, pve2, 5404), true);
    assert.equal(await udpFromWorkstation(pve2, 5404, pve2.outsiderAddress), true);
  });
}

// ---------------------------------------------------------------------------
// Ansible from the workstation: examples/ansible as an administrator runs it

const EXAMPLE = join(REPO, 'examples', 'ansible');
const REVERT_SECONDS = 45;

interface AnsibleProject {
  dir: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  adminKey: string;
}

/**
 * The administrator's side: an inventory of the two nodes (root with the
 * controller's key, host keys pinned), the vault with the admin's password
 * hash (ansible-vault), and the lab's values for what vars.yml leaves to the
 * site: the package, the admin's key, the management network, short revert
 * windows, the backup host.
 */
async function ansibleProject(c: LabCluster): Promise<AnsibleProject> {
  const dir = mkdtempSync(join(tmpdir(), 'pve-baseline-ansible-lab-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const keygen = (name: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', join(dir, name)]);
  keygen('controller');
  keygen('alice');
  // root's keys are cluster-wide (/etc/pve/priv/authorized_keys): one line reaches both nodes
  await c.pve1.exec(['sh', '-c', 'cat >> /etc/pve/priv/authorized_keys'], { input: readFileSync(join(dir, 'controller.pub')) });
  writeFileSync(join(dir, 'known_hosts'), [c.pve1, c.pve2].map((n) => readFileSync(n.node.paths.knownHosts, 'utf8')).join(''));
  writeFileSync(
    join(dir, 'inventory.ini'),
    [
      '[pve]',
      `pve1 ansible_host=${c.pve1.nodeAddress}`,
      `pve2 ansible_host=${c.pve2.nodeAddress}`,
      '[pve:vars]',
      'ansible_user=root',
      'ansible_python_interpreter=/usr/bin/python3',
      `ansible_ssh_private_key_file=${join(dir, 'controller')}`,
      `ansible_ssh_common_args='-o UserKnownHostsFile=${join(dir, 'known_hosts')} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'`,
      '',
    ].join('\n'),
  );
  mkdirSync(join(dir, 'group_vars', 'pve'), { recursive: true });
  const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: `${ADMIN_PASSWORD}\n` }).toString().trim();
  writeFileSync(join(dir, 'group_vars', 'pve', 'vault.yml'), `vault_pve_baseline_admin_password_hash: '${hash}'\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'vault-pass'), `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
  execFileSync('ansible-vault', ['encrypt', '--vault-password-file', join(dir, 'vault-pass'), join(dir, 'group_vars', 'pve', 'vault.yml')], { stdio: 'ignore' });
  assert.match(readFileSync(join(dir, 'group_vars', 'pve', 'vault.yml'), 'utf8'), /^\$ANSIBLE_VAULT;1\.1;AES256/, 'the hash is in the vault, encrypted');

  // the backup host takes both nodes' root keys (key_file /root/.ssh/id_rsa)
  const backup = base!.backupHost;
  await backup.clear();
  for (const n of [c.pve1, c.pve2]) backup.authorize(readFileSync(join(n.rootDir, 'root/.ssh/id_rsa.pub'), 'utf8').trim());
  const lab = {
    pve_baseline_deb: await deb(),
    pve_baseline_admin_pubkey_file: join(dir, 'alice.pub'),
    pve_baseline_sshd_hardening: { revert_seconds: REVERT_SECONDS },
    pve_baseline_firewall: { management: [`${c.pve1.workstationAddress}/32`], icmp: 'management', revert_seconds: REVERT_SECONDS },
    pve_baseline_repositories: { pve: 'no-subscription', ceph: 'no-subscription' },
    pve_baseline_config_backup: {
      destination: 'sftp',
      host: backup.address,
      port: backup.port,
      user: backup.user,
      remote_dir: '{{ inventory_hostname_short }}',
      host_key: backup.hostKeyFingerprint,
      key_file: '/root/.ssh/id_rsa',
      recipient: 'generate',
      keep: 3,
      schedule: 'weekly',
    },
  };
  writeFileSync(join(dir, 'lab-vars.json'), JSON.stringify(lab, null, 2));
  return {
    dir,
    adminKey: join(dir, 'alice'),
    args: ['-i', join(dir, 'inventory.ini'), join(EXAMPLE, 'site.yml'), '--vault-password-file', join(dir, 'vault-pass'), '-e', `@${join(dir, 'lab-vars.json')}`],
    env: {
      ...process.env,
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_FORCE_COLOR: '0',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-local'),
      // Ansible's default ControlPersist stays on (why the playbook resets the connection); its sockets live here
      ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, 'cp'),
    },
  };
}

/** The package of this checkout, as `npm run deb` builds it. */
async function deb(): Promise<string> {
  await ensureBundle();
  execFileSync(process.execPath, [join(REPO, 'scripts/deb.mjs'), '--prebuilt'], { cwd: REPO, stdio: 'ignore' });
  const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
  return join(REPO, 'dist', `pve-baseline_${version}_all.deb`);
}

/** Close the SSH masters Ansible left (ControlPersist) when it was killed: they are ours, found by their sockets. */
function closeControlMasters(p: AnsibleProject): void {
  const cp = join(p.dir, 'cp');
  if (!existsSync(cp)) return;
  for (const socket of readdirSync(cp)) spawnSync('ssh', ['-o', `ControlPath=${join(cp, socket)}`, '-O', 'exit', 'lab'], { stdio: 'ignore' });
}

/** ansible-playbook from the workstation; `killWhen`: SIGKILL its whole process group when its output matches. */
function ansiblePlaybook(p: AnsibleProject, opts: { killWhen?: RegExp; timeoutMs?: number } = {}): Promise<{ code: number | null; signal: string | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('ansible-playbook', p.args, { cwd: EXAMPLE, env: p.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let killed = false;
    const kill = () => {
      if (killed) return;
      killed = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    const timer = setTimeout(kill, opts.timeoutMs ?? 20 * 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (opts.killWhen?.test(out)) kill();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      writeFileSync(join(p.dir, `ansible-${Date.now()}.log`), out);
      resolve({ code, signal, out });
    });
  });
}

const ADMIN_PASSWORD = 'correct horse battery staple';

let project: AnsibleProject;
if (base) {
  let cluster: LabCluster;

  test('Ansible killed between the apply and the confirm task: pve1 reverts by itself; nothing of it stays', async () => {
    cluster = await ensureCluster();
    const { pve1 } = cluster;
    project = await ansibleProject(cluster);
    const sshdBefore = await sh(pve1, 'sshd -T | sort | sha256sum');
    const started = Date.now();
    // the apply of the access steps has returned; the confirm task has not run
    const run = await ansiblePlaybook(project, { killWhen: /TASK \[Apply \(access\): what it said\]/ });
    closeControlMasters(project);
    assert.equal(run.signal, 'SIGKILL', run.out.slice(-3000));
    assert.match(run.out, /ok: \[pve1\][\s\S]*TASK \[Apply \(access\): what it said\]/);
    assert.doesNotMatch(run.out, /pve2/, 'serial 1: pve2 was not touched');
    const armed = await armedReverts(pve1);
    assert.ok(armed.length >= 1, 'the node owns a revert for what awaits confirmation');
    assert.notEqual(await sh(pve1, 'sshd -T | sort | sha256sum'), sshdBefore, 'the sshd change is live');

    // nobody confirms: the node reverts on its own timer
    const firewallOff = async () => /disabled/.test((await pve1.exec(['pve-firewall', 'status'])).stdout);
    // reverted: the sshd drop-in gone, the firewall off, and (its daemon's next loop) the outsider let in again
    await waitUntil(
      async () => !existsSync(join(pve1.rootDir, 'etc/ssh/sshd_config.d/00-pve-baseline.conf')) && (await firewallOff()) && (await pve1.tcpProbe(22, { from: pve1.outsiderAddress, timeoutMs: 1000 })) === 'connected',
      'the node\'s own revert',
      (REVERT_SECONDS + 60) * 1000,
    );
    assert.ok((await revertedAt(pve1, started)) !== undefined, 'the node\'s revert says so in its journal');
    process.stderr.write(`measured: Ansible killed, pve1 reverted after ${((Date.now() - started) / 1000).toFixed(0)} s (windows of ${REVERT_SECONDS} s)\n`);
    assert.equal(await sh(pve1, 'sshd -T | sort | sha256sum'), sshdBefore, 'sshd as it was');
    assert.ok(await firewallOff(), 'the firewall is off again');
    const root = await pve1.ssh({ user: 'root', password: pve1.rootPassword, from: pve1.outsiderAddress }, 'true');
    assert.equal(root.exitCode, 0, 'root\'s password works again, from anywhere (as before)');
  });

  test('ansible-playbook takes both nodes to the baseline, one after the other; the second node\'s datacenter steps are compliant without changes', async () => {
    const { pve1, pve2 } = cluster;
    const t0 = Date.now();
    const run = await ansiblePlaybook(project);
    closeControlMasters(project);
    process.stderr.write(`measured: ansible-playbook, both nodes from the killed run to the baseline: ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    assert.equal(run.code, 0, run.out.slice(-6000));
    assert.match(run.out, /PLAY RECAP[\s\S]*pve1\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0/);
    assert.match(run.out, /pve2\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0/);
    // one node after the other: every task of pve1 before the first of pve2
    assert.ok(run.out.lastIndexOf('[pve1]') < run.out.indexOf('[pve2]'), 'serial 1');
    assert.match(run.out, /pve1 follows the baseline/);
    assert.match(run.out, /pve2 follows the baseline/);
    // the upgrade needed a reboot on each: Ansible's reboot module did it, and the kernel is the new one
    assert.match(run.out, /TASK \[Round \d: reboot, as a step asked\][\s\S]*changed: \[pve1\]/);
    assert.match(run.out, /TASK \[Round \d: reboot, as a step asked\][\s\S]*changed: \[pve2\]/);
    for (const n of [pve1, pve2]) assert.equal(await n.runningKernel(), KERNEL_N1);

    // the datacenter steps: made from pve1, on pve2 compliant with nothing applied
    for (const id of ['access-model', 'api-tokens']) {
      const onPve2 = await journalStep(pve2, id);
      assert.equal(onPve2?.status, 'verified', `${id} on pve2`);
      assert.deepEqual(onPve2?.applied ?? [], [], `${id}: pve2 changed nothing`);
      assert.ok(((await journalStep(pve1, id))?.applied ?? []).length > 0, `${id}: pve1 made it`);
    }
  });
}

if (base) {
  test('after the baseline: root\'s migration SSH between the nodes with the cluster key; root\'s password refused between them and from outside', async () => {
    const { pve1, pve2 } = await ensureCluster();
    // fail2ban never bans the other node: a ban would cut exactly this
    for (const [node, peer] of [[pve1, pve2], [pve2, pve1]] as const) {
      for (const jail of ['sshd', 'proxmox']) assert.match(await sh(node, `fail2ban-client get ${jail} ignoreip`), new RegExp(`[|\`]- ${peer.nodeAddress.replace(/\./g, '\\.')}$`, 'm'), `${node.hostname}'s ${jail} jail ignores ${peer.hostname}`);
    }
    for (const [from, to] of [[pve1, pve2], [pve2, pve1]] as const) {
      const t0 = Date.now();
      const r = await migrationSsh(from, to);
      process.stderr.write(`measured: migration ssh ${from.hostname} -> ${to.hostname}: ${Date.now() - t0} ms\n`);
      assert.equal(r.exitCode, 0, `${from.hostname} -> ${to.hostname}: ${r.stderr}\n${await whyNot(from, to)}`);
      assert.equal(r.stdout.trim(), to.hostname);
      const pw = await passwordSsh(from, to, to.rootPassword);
      assert.notEqual(pw.exitCode, 0, `root's password from ${from.hostname} to ${to.hostname} is refused`);
      assert.match(pw.stderr, /Permission denied/);
    }
    for (const n of [pve1, pve2]) {
      await assert.rejects(n.ssh({ user: 'root', password: n.rootPassword, timeoutMs: 10_000 }, 'true'), /authentication methods failed|All configured authentication methods failed/, `root's password on ${n.hostname} from the workstation`);
    }
  });

  test('after the baseline: corosync\'s ports answer only between the ring addresses, quorum holds under inbound DROP, the outsider is refused on both', async () => {
    const { pve1, pve2 } = await ensureCluster();
    for (const n of [pve1, pve2]) {
      assert.match(await sh(n, 'pve-firewall status'), /^Status: enabled\/running$/m);
      const status = await sh(n, 'pvecm status');
      assert.match(status, /^Quorate:\s+Yes$/m, `${n.hostname} quorate with the firewall on`);
      assert.match(status, /^Nodes:\s+2$/m);
    }
    await udpEcho(pve2, 5404);
    await udpEcho(pve2, 5406);
    assert.equal(await udpFromNode(pve1, pve2, 5404), true, 'corosync\'s port answers the other ring address');
    assert.equal(await udpFromNode(pve1, pve2, 5406), false, 'a port beside it does not');
    assert.equal(await udpFromWorkstation(pve2, 5404, pve2.workstationAddress), false, 'the workstation, inside the local network but no ring address, is dropped');
    assert.equal(await udpFromWorkstation(pve2, 5404, pve2.outsiderAddress), false, 'the outsider is dropped');
    for (const n of [pve1, pve2]) {
      for (const port of [22, 8006]) assert.equal(await n.tcpProbe(port, { from: n.outsiderAddress, timeoutMs: 1000 }), 'timed out', `${n.hostname}:${port} from the outsider`);
      assert.equal(await n.tcpProbe(22, { from: n.workstationAddress }), 'connected', `${n.hostname}:22 from the management address`);
    }
  });

  test('status, check --json and the document on pve2 name pve1 for the datacenter steps; once a person enrols the second factor on pve1, both nodes are compliant', async () => {
    const { pve1, pve2 } = await ensureCluster();
    const check = async (n: Lab) => JSON.parse((await n.exec(['pve-baseline', 'check', '--json'], { timeoutMs: 180_000 })).stdout) as { compliant: boolean; steps: { id: string; status: string; scope?: string; reason?: string; appliedFrom?: { node: string } }[] };
    const before = await check(pve2);
    for (const id of ['firewall', 'access-model', 'api-tokens']) {
      const s = before.steps.find((x) => x.id === id)!;
      assert.equal(s.scope, 'datacenter');
      assert.equal(s.status, 'compliant', `${id}: ${s.reason}`);
      assert.equal(s.appliedFrom?.node, 'pve1', id);
    }
    assert.equal(before.steps.find((x) => x.id === 'sshd-hardening')?.scope, 'node');
    const twoFactor = before.steps.find((x) => x.id === 'two-factor')!;
    assert.equal(twoFactor.status, 'drift');
    assert.match(twoFactor.reason ?? '', /needs the wizard/);
    const status = await sh(pve2, 'pve-baseline status');
    assert.match(status, /datacenter-wide: applied from pve1/);
    assert.match(status, /per node: this node \(pve2\)/);

    // Alice enrols her phone on pve1 (as in the web UI: Proxmox's API with her password and a code)
    const secret = newTotpSecret();
    const uri = proxmoxTotpUri({ secret, userid: 'alice@pam', issuer: 'Proxmox - pve1' }).reveal();
    const enrol = await pve1.exec(['pvesh', 'create', '/access/tfa/alice@pam', '--type', 'totp', '--description', 'phone', '--totp', uri, '--value', totpCode(secret), '--password', ADMIN_PASSWORD]);
    assert.equal(enrol.exitCode, 0, enrol.stderr);
    const recovery = await pve1.exec(['pvesh', 'create', '/access/tfa/alice@pam', '--type', 'recovery', '--password', ADMIN_PASSWORD, '--output-format', 'json']);
    assert.equal(recovery.exitCode, 0, recovery.stderr);
    // The next run of the playbook writes each node's document anew (the node changed): then both are compliant.
    const rerun = await ansiblePlaybook(project);
    closeControlMasters(project);
    assert.equal(rerun.code, 0, rerun.out.slice(-6000));
    for (const n of ['pve1', 'pve2']) assert.match(rerun.out, new RegExp(`TASK \\[What a person still has to do[^\\]]*\\] \\*+\\nskipping: \\[${n}\\]`), `nothing is left for a person on ${n}`);
    for (const n of [pve1, pve2]) {
      const after = await check(n);
      assert.equal(after.compliant, true, `${n.hostname}: ${JSON.stringify(after.steps.filter((s) => s.status !== 'compliant' && s.status !== 'not-applicable'))}`);
    }
    const doc = await sh(pve2, 'pve-baseline docs --out /root/policy.md >/dev/null && cat /root/policy.md');
    assert.match(doc, /node pve2/);
    assert.match(doc, /datacenter-wide: pve1/);
  });
}
