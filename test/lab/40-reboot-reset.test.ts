/**
 * Reboot and reset: a real `systemctl reboot` inside the node brings it back
 * with its state (and SSH) intact; reset returns a changed node to the
 * fresh-install state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labOrSkip, sh } from './helpers.ts';
import { ROOT_PASSWORD, ADMIN_EMAIL } from './config.ts';

const lab = await labOrSkip();

if (lab) {
  await lab.reset();

  test('after a reboot the node is back, its changes kept, and SSH works again', async () => {
    await sh(lab, 'echo kept > /root/survives-reboot && echo gone > /run/lost-on-reboot && pveum user add rebooter@pve');
    const pid1Before = (await sh(lab, 'stat -c %Z /proc/1')).trim();
    const seconds = await lab.reboot();
    process.stderr.write(`lab: reboot took ${seconds.toFixed(2)} s\n`);
    assert.equal((await sh(lab, 'systemctl is-system-running')).trim(), 'running');
    // a new boot: a new PID 1 and an empty /run
    assert.equal((await lab.exec(['test', '-e', '/run/lost-on-reboot'])).exitCode, 1, '/run survived: no real reboot');
    assert.ok(Number((await sh(lab, 'stat -c %Z /proc/1')).trim()) >= Number(pid1Before));
    assert.equal((await sh(lab, 'cat /root/survives-reboot')).trim(), 'kept');
    assert.match(await sh(lab, 'cat /etc/pve/user.cfg'), /^user:rebooter@pve:1:0::::::$/m);
    const r = await lab.ssh({ user: 'root', password: ROOT_PASSWORD }, 'cat /root/survives-reboot');
    assert.equal(r.stdout.trim(), 'kept');
  });

  test('reset returns a changed node to the fresh-install state', async () => {
    await sh(lab, [
      'echo changed > /root/changed',
      'pveum user add resetme@pve',
      "sed -i 's/^PermitRootLogin yes/PermitRootLogin no/' /etc/ssh/sshd_config",
      'rm /root/.ssh/authorized_keys',
      'DEBIAN_FRONTEND=noninteractive apt-get install -y -q sudo >/dev/null',
    ].join(' && '));
    const seconds = await lab.reset();
    process.stderr.write(`lab: reset took ${seconds.toFixed(2)} s\n`);
    assert.ok(seconds < 30, `reset took ${seconds} s`);
    assert.equal((await lab.exec(['test', '-e', '/root/changed'])).exitCode, 1);
    assert.equal(await sh(lab, 'cat /etc/pve/user.cfg'), `user:root@pam:1:0:::${ADMIN_EMAIL}::\n`);
    assert.match(await sh(lab, 'sshd -T'), /^permitrootlogin yes$/m);
    assert.equal((await sh(lab, 'readlink /root/.ssh/authorized_keys')).trim(), '/etc/pve/priv/authorized_keys');
    assert.notEqual((await lab.exec(['dpkg-query', '-W', 'sudo'])).exitCode, 0);
    const r = await lab.ssh({ user: 'root', password: ROOT_PASSWORD }, 'true');
    assert.equal(r.exitCode, 0);
  });
}
