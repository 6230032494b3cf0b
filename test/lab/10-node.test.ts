/**
 * The node is real: systemd is running, transient timers fire, sshd answers
 * `sshd -T`, and a fresh node accepts root's password over SSH from the
 * workstation side; it is in a fresh Proxmox VE 9 installation's state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labOrSkip, sh } from './helpers.ts';
import { ADMIN_EMAIL, ROOT_PASSWORD } from './config.ts';

const lab = await labOrSkip();

if (lab) {
  await lab.reset();

  test('systemd in the node has booted and reports running', async () => {
    const r = await lab.exec(['systemctl', 'is-system-running']);
    assert.equal(r.stdout.trim(), 'running', r.stdout + r.stderr);
    assert.equal((await lab.exec(['cat', '/proc/1/comm'])).stdout.trim(), 'systemd');
    assert.equal((await sh(lab, 'systemctl is-active ssh.service')).trim(), 'active');
  });

  test('a transient timer armed with systemd-run fires', async () => {
    await sh(lab, 'rm -f /run/pve-lab-timer-fired');
    await sh(lab, 'systemd-run --quiet --collect --on-active=2 --timer-property=AccuracySec=100ms --unit=pve-lab-timer-test touch /run/pve-lab-timer-fired');
    assert.notEqual((await lab.exec(['test', '-e', '/run/pve-lab-timer-fired'])).exitCode, 0, 'fired too early');
    const deadline = Date.now() + 20_000;
    while ((await lab.exec(['test', '-e', '/run/pve-lab-timer-fired'])).exitCode !== 0) {
      assert.ok(Date.now() < deadline, 'the timer did not fire within 20 s');
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  test('sshd -T answers with the fresh-install policy', async () => {
    const t = await sh(lab, 'sshd -T');
    assert.match(t, /^permitrootlogin yes$/m);
    assert.match(t, /^passwordauthentication yes$/m);
    assert.match(t, /^kbdinteractiveauthentication no$/m);
    assert.match(t, /^usepam yes$/m);
    // the installer's only edit of Debian's sshd_config
    assert.match(await sh(lab, 'cat /etc/ssh/sshd_config'), /^PermitRootLogin yes$/m);
  });

  test('SSH from the workstation side: root with the password (ssh2)', async () => {
    const r = await lab.ssh({ user: 'root', password: ROOT_PASSWORD }, 'id -un; hostname; echo "$SSH_CONNECTION"');
    assert.equal(r.exitCode, 0, r.stderr);
    const [user, host, conn] = r.stdout.trim().split('\n');
    assert.equal(user, 'root');
    assert.equal(host, lab.hostname);
    assert.equal(conn?.split(' ')[0], lab.workstationAddress);
    assert.equal(conn?.split(' ')[2], lab.nodeAddress);
    await assert.rejects(lab.ssh({ user: 'root', password: 'wrong-password' }, 'true'), /authentication/i);
  });

  test('SSH from the workstation side: root with the password (OpenSSH client, sshpass)', () => {
    const r = spawnSync('sshpass', ['-e', 'ssh', ...lab.sshClientArgs('root', ['-o', 'PubkeyAuthentication=no']), 'hostname'], {
      env: { ...process.env, SSHPASS: ROOT_PASSWORD },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), lab.hostname);
  });

  test('SSH from the workstation side with a key: root\'s authorized_keys is the /etc/pve one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pve-lab-key-'));
    try {
      const key = join(dir, 'id_ed25519');
      assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'operator@workstation', '-f', key]).status, 0);
      const pub = readFileSync(`${key}.pub`, 'utf8');
      await lab.exec(['sh', '-c', 'cat >> /etc/pve/priv/authorized_keys'], { input: pub });
      const r = await lab.ssh({ user: 'root', privateKey: readFileSync(key) }, 'readlink /root/.ssh/authorized_keys');
      assert.equal(r.stdout.trim(), '/etc/pve/priv/authorized_keys');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await lab.reset();
    }
  });

  test('fresh-install state of a Proxmox VE 9 node', async () => {
    assert.equal((await sh(lab, 'hostname --fqdn')).trim(), lab.fqdn);
    assert.notEqual((await lab.exec(['dpkg-query', '-W', 'sudo'])).exitCode, 0, 'sudo must not be installed');
    assert.equal(
      await sh(lab, 'cat /etc/apt/sources.list.d/pve-enterprise.sources'),
      'Types: deb\nURIs: https://enterprise.proxmox.com/debian/pve\nSuites: trixie\nComponents: pve-enterprise\nSigned-By: /usr/share/keyrings/proxmox-archive-keyring.gpg\n',
    );
    assert.equal(await sh(lab, 'cat /etc/pve/user.cfg'), `user:root@pam:1:0:::${ADMIN_EMAIL}::\n`);
    assert.equal((await sh(lab, 'readlink /root/.ssh/authorized_keys')).trim(), '/etc/pve/priv/authorized_keys');
    // root's own RSA key is always in the cluster-wide authorized_keys
    const pub = (await sh(lab, 'cat /root/.ssh/id_rsa.pub')).trim();
    assert.ok((await sh(lab, 'cat /etc/pve/priv/authorized_keys')).includes(pub));
    // pmxcfs ownership and modes
    const modes = await sh(lab, 'stat -c "%U:%G %a %n" /etc/pve /etc/pve/user.cfg /etc/pve/priv /etc/pve/priv/authorized_keys /etc/pve/nodes/pve1/pve-ssl.key');
    assert.equal(
      modes,
      [
        'root:www-data 755 /etc/pve',
        'root:www-data 640 /etc/pve/user.cfg',
        'root:www-data 700 /etc/pve/priv',
        'root:www-data 600 /etc/pve/priv/authorized_keys',
        'root:www-data 640 /etc/pve/nodes/pve1/pve-ssl.key',
      ].join('\n') + '\n',
    );
    assert.equal((await sh(lab, 'readlink /etc/pve/local')).trim(), 'nodes/pve1');
    // no firewall files and no cluster on a fresh node
    assert.equal((await lab.exec(['test', '-e', '/etc/pve/firewall/cluster.fw'])).exitCode, 1);
    assert.equal((await lab.exec(['test', '-e', '/etc/pve/corosync.conf'])).exitCode, 1);
    assert.equal((await sh(lab, 'systemctl is-active pveproxy.service pve-firewall.service')).trim(), 'active\nactive');
  });
}
