/**
 * No traffic leaves the lab: while the workstation logs in and the node runs
 * apt-get update and name lookups, every packet on the lab's veth pair is
 * between the workstation and the node (captured with tcpdump on the host end).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { labOrSkip, sh } from './helpers.ts';
import { HOST_IF, NODE_ADDRESS, WORKSTATION_ADDRESS, ROOT_PASSWORD, PREFIX_LEN } from './config.ts';
import { run } from './sh.ts';

const lab = await labOrSkip();

if (lab) {
  test('the host routes the lab /24 to the lab veth only', async () => {
    const r = await run('ip', ['-4', 'route', 'show', 'dev', HOST_IF]);
    assert.equal(r.stdout.trim().split('\n').length, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`^${WORKSTATION_ADDRESS.replace(/\.\d+$/, '.0')}/${PREFIX_LEN} `));
    const links = await lab.exec(['ip', '-o', 'link']);
    assert.deepEqual(
      links.stdout.trim().split('\n').map((l) => l.split(':')[1]!.trim().replace(/@.*/, '')),
      ['lo', 'vmbr0'],
      'the node has lo and its end of the veth pair, nothing else',
    );
  });

  test('every packet on the veth pair is between the workstation and the node', async () => {
    const which = await run('sh', ['-c', 'command -v tcpdump']);
    assert.equal(which.exitCode, 0, 'tcpdump is needed (test/lab/apt-packages.txt)');
    const dump = spawn('tcpdump', ['-i', HOST_IF, '-nn', '-l', '-q', '-U'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    dump.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolveReady, reject) => {
      const t = setTimeout(() => reject(new Error('tcpdump did not start')), 10_000);
      dump.stderr.on('data', (d: Buffer) => {
        if (/listening on/.test(d.toString())) {
          clearTimeout(t);
          resolveReady();
        }
      });
    });
    try {
      // traffic the workstation causes, and traffic the node would send out if it could
      const r = await lab.ssh({ user: 'root', password: ROOT_PASSWORD }, 'getent hosts deb.debian.org; apt-get update -q >/dev/null 2>&1; true');
      assert.equal(r.exitCode, 0);
      await sh(lab, 'getent hosts enterprise.proxmox.com || true; ping -c 1 -W 1 ' + WORKSTATION_ADDRESS);
      await new Promise((r2) => setTimeout(r2, 500));
    } finally {
      dump.kill('SIGINT');
      await new Promise((r3) => dump.once('close', r3));
    }
    const lines = out.split('\n').filter(Boolean);
    const ipLines = lines.filter((l) => / IP /.test(l));
    assert.ok(ipLines.length > 10, `captured only ${ipLines.length} IP packets:\n${out}`);
    const allowed = new Set([WORKSTATION_ADDRESS, NODE_ADDRESS]);
    for (const l of ipLines) {
      const m = / IP (\d+\.\d+\.\d+\.\d+)(?:\.\d+)? > (\d+\.\d+\.\d+\.\d+)(?:\.\d+)?:/.exec(l);
      assert.ok(m, `unexpected packet: ${l}`);
      assert.ok(allowed.has(m[1]!) && allowed.has(m[2]!), `packet outside the lab pair: ${l}`);
    }
    for (const l of lines.filter((x) => !/ IP /.test(x))) assert.match(l, / ARP, /, `unexpected non-IP packet: ${l}`);
  });
}
