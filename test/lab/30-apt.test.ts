/**
 * Offline packages: the node installs the wizard's Debian packages from its
 * local repository, with no network at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labOrSkip, sh } from './helpers.ts';

const lab = await labOrSkip();

if (lab) {
  await lab.reset();

  test('the node has no route off its /24 (and no name server)', async () => {
    assert.equal((await sh(lab, 'ip -4 route show default')).trim(), '');
    const r = await lab.exec(['ip', 'route', 'get', '203.0.113.1']); // a route lookup only: nothing is sent
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /unreachable/i);
    assert.doesNotMatch(await sh(lab, 'cat /etc/resolv.conf'), /^nameserver/m);
  });

  test('apt-get install sudo works offline', async () => {
    const r = await lab.exec(['apt-get', 'install', '-y', 'sudo'], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 120_000 });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(await sh(lab, 'sudo -V'), /^Sudo version /);
    assert.match(await sh(lab, "dpkg-query -W -f '${Status}' sudo"), /install ok installed/);
  });

  test('every offline package is installable (apt-get --simulate)', async () => {
    const r = await lab.exec(['apt-get', 'install', '--simulate', '-y', 'fail2ban', 'unattended-upgrades', 'apt-listchanges', 'auditd', 'ssh-audit'], { timeoutMs: 60_000 });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^Inst fail2ban /m);
  });

  test('apt-get update reaches only the local mirror; the enterprise repository fails as on an unsubscribed node', async () => {
    const r = await lab.exec(['apt-get', 'update'], { timeoutMs: 120_000 });
    assert.match(r.stdout, /http:\/\/deb\.debian\.org\/debian trixie InRelease/);
    assert.match(r.stdout + r.stderr, /enterprise\.proxmox\.com/);
  });
}
