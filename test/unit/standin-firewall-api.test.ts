/**
 * The lab's pvesh stand-in, firewall part (test/lab/standins/lib/api.ts):
 * ipsets and rules as pve-firewall's API2/Firewall/IPSet.pm and Rules.pm
 * handle them, and the options endpoints next to them, run as a program
 * against a temporary /etc/pve (PVE_LAB_ETC_PVE), checking the files it
 * writes byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFirewallFile } from '../../src/pve/firewall-rules.ts';
import { compileHostFirewall, simulate } from '../../src/pve/firewall-compile.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = hostname().split('.')[0]!;

function lab() {
  const etc = mkdtempSync(join(tmpdir(), 'pve-fw-api-'));
  const pvesh = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/lab/standins/pvesh.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, PVE_LAB_ETC_PVE: etc },
      encoding: 'utf8',
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const json = (...args: string[]) => {
    const r = pvesh(...args, '--output-format', 'json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const file = (rel: string) => (existsSync(join(etc, rel)) ? readFileSync(join(etc, rel), 'utf8') : undefined);
  return { etc, pvesh, json, file, done: () => rmSync(etc, { recursive: true, force: true }) };
}

const USAGE_CREATE_IP = 'pvesh create <api_path> --cidr <string> [OPTIONS] [FORMAT_OPTIONS]\n';

test('ipsets: create, entries normalised and written sorted, duplicates and /0 refused, delete with digest', () => {
  const { pvesh, json, file, done } = lab();
  try {
    assert.equal(pvesh('create', '/cluster/firewall/ipset', '--name', 'management', '--comment', 'admins').code, 0);
    const again = pvesh('create', '/cluster/firewall/ipset', '--name', 'management');
    assert.equal(again.code, 255);
    assert.match(again.stderr, /^400 Parameter verification failed\.\nname: IPSet 'management' already exists\n/);
    for (const cidr of ['10.0.0.11/24', '203.0.113.7/32', '2001:DB8:0:0::5/64']) {
      assert.equal(pvesh('create', '/cluster/firewall/ipset/management', '--cidr', cidr).code, 0, cidr);
    }
    assert.equal(pvesh('create', '/cluster/firewall/ipset/management', '--cidr', '192.168.1.66', '--nomatch', '1', '--comment', 'printer').code, 0);
    const dup = pvesh('create', '/cluster/firewall/ipset/management', '--cidr', '10.0.0.0/24');
    assert.deepEqual([dup.code, dup.stderr], [255, `400 Parameter verification failed.\ncidr: address '10.0.0.0/24' already exists\n${USAGE_CREATE_IP}`]);
    const zero = pvesh('create', '/cluster/firewall/ipset/management', '--cidr', '0.0.0.0/0');
    assert.deepEqual([zero.code, zero.stderr], [255, `400 Parameter verification failed.\ncidr: a zero prefix is not allowed in ipset entries\n${USAGE_CREATE_IP}`]);
    const bad = pvesh('create', '/cluster/firewall/ipset/management', '--cidr', '10.0.0.1/33');
    assert.equal(bad.code, 255);
    assert.match(bad.stderr, /cidr: invalid format - value does not look like a valid IP address or CIDR network\n/);
    const noset = pvesh('create', '/cluster/firewall/ipset/nosuch', '--cidr', '10.0.0.1');
    assert.deepEqual([noset.code, noset.stderr], [255, "no such IPSet 'nosuch'\n"]);

    assert.equal(
      file('firewall/cluster.fw'),
      '[IPSET management] # admins\n\n10.0.0.0/24\n!192.168.1.66 # printer\n2001:db8::/64\n203.0.113.7\n\n',
      'entries are written sorted by address (not by the ! mark), whatever the order they were added in',
    );
    // the API lists what it reads back: file order
    const list = json('get', '/cluster/firewall/ipset/management');
    assert.deepEqual(
      list.map((e: { cidr: string }) => e.cidr),
      ['10.0.0.0/24', '192.168.1.66', '2001:db8::/64', '203.0.113.7'],
    );
    assert.equal(list[1].nomatch, 1);
    assert.equal(list[1].comment, 'printer');
    assert.equal(new Set(list.map((e: { digest: string }) => e.digest)).size, 1);
    assert.deepEqual(json('get', '/cluster/firewall/ipset'), [{ name: 'management', comment: 'admins', digest: json('get', '/cluster/firewall/ipset')[0].digest }]);

    const stale = pvesh('delete', '/cluster/firewall/ipset/management/10.0.0.0%2F24', '--digest', '0'.repeat(40));
    assert.deepEqual([stale.code, stale.stderr], [255, 'detected modified configuration - file changed by other user? Try again.\n']);
    assert.equal(pvesh('delete', '/cluster/firewall/ipset/management/10.0.0.0%2F24', '--digest', list[0].digest).code, 0);
    assert.equal(file('firewall/cluster.fw'), '[IPSET management] # admins\n\n!192.168.1.66 # printer\n2001:db8::/64\n203.0.113.7\n\n');
    const notEmpty = pvesh('delete', '/cluster/firewall/ipset/management');
    assert.deepEqual([notEmpty.code, notEmpty.stderr], [255, "IPSet 'management' is not empty\n"]);
  } finally {
    done();
  }
});

test('rules: created first and disabled unless enable=1, verified as Proxmox does, deleted by pos with digest', () => {
  const { pvesh, json, file, done } = lab();
  try {
    assert.equal(pvesh('create', '/cluster/firewall/ipset', '--name', 'management').code, 0);
    assert.equal(pvesh('create', '/cluster/firewall/ipset/management', '--cidr', '203.0.113.7').code, 0);
    assert.equal(
      pvesh('create', '/cluster/firewall/rules', '--type', 'in', '--action', 'ACCEPT', '--proto', 'tcp', '--dport', '8006', '--source', '+management', '--enable', '1', '--comment', 'web gui').code,
      0,
    );
    assert.equal(pvesh('create', '/cluster/firewall/rules', '--type', 'in', '--action', 'ACCEPT', '--macro', 'ssh', '--source', '+management', '--enable', '1').code, 0);
    assert.equal(pvesh('create', '/cluster/firewall/rules', '--type', 'in', '--action', 'ACCEPT', '--macro', 'Ping', '--pos', '5').code, 0);
    const noProto = pvesh('create', '/cluster/firewall/rules', '--type', 'in', '--action', 'ACCEPT', '--dport', '22');
    assert.equal(noProto.code, 255);
    assert.match(noProto.stderr, /^400 Parameter verification failed\.\nproto: missing property - 'dport' requires this property\n/);
    const noSet = pvesh('create', `/nodes/${NODE}/firewall/rules`, '--type', 'in', '--action', 'DROP', '--proto', 'tcp', '--source', '+nosuch');
    assert.match(noSet.stderr, /^400 Parameter verification failed\.\nsource: no such ipset 'nosuch'\n/);
    const badPort = pvesh('create', '/cluster/firewall/rules', '--type', 'in', '--action', 'ACCEPT', '--proto', 'tcp', '--dport', '70000');
    assert.match(badPort.stderr, /^400 Parameter verification failed\.\ndport: invalid format - invalid port '70000'\n/);
    assert.equal(pvesh('create', `/nodes/${NODE}/firewall/rules`, '--type', 'in', '--action', 'DROP', '--proto', 'tcp', '--dport', '22', '--iface', 'vmbr9', '--enable', '1').code, 0);

    assert.equal(
      file('firewall/cluster.fw'),
      [
        '[IPSET management]',
        '',
        '203.0.113.7',
        '',
        '[RULES]',
        '',
        '|IN Ping(ACCEPT)',
        'IN SSH(ACCEPT) -source +management',
        'IN ACCEPT -source +management -p tcp -dport 8006 # web gui',
        '',
        '',
      ].join('\n'),
    );
    assert.equal(file(`nodes/${NODE}/host.fw`), '[RULES]\n\nIN DROP -i vmbr9 -p tcp -dport 22\n\n');

    const rules = json('get', '/cluster/firewall/rules');
    assert.deepEqual(rules.map((r: { pos: number; enable: number }) => [r.pos, r.enable]), [[0, 0], [1, 1], [2, 1]]);
    assert.equal(rules[2].comment, 'web gui');
    assert.equal(json('get', '/cluster/firewall/rules/1').macro, 'SSH');

    const stale = pvesh('delete', '/cluster/firewall/rules/0', '--digest', 'f'.repeat(40));
    assert.equal(stale.code, 255);
    assert.equal(pvesh('delete', '/cluster/firewall/rules/0', '--digest', rules[0].digest).code, 0);
    const gone = pvesh('delete', '/cluster/firewall/rules/7');
    assert.deepEqual([gone.code, gone.stderr], [255, 'no rule at position 7\n']);
    assert.equal(json('get', '/cluster/firewall/rules').length, 2);

    // the options endpoints rewrite the whole file and keep the rest
    assert.equal(pvesh('set', '/cluster/firewall/options', '--enable', '1', '--policy_in', 'DROP').code, 0);
    assert.equal(pvesh('set', `/nodes/${NODE}/firewall/options`, '--enable', '1').code, 0);
    const opts = json('get', '/cluster/firewall/options');
    assert.deepEqual(Object.keys(opts).sort(), ['digest', 'enable', 'policy_in']);
    const wrongDigest = pvesh('set', '/cluster/firewall/options', '--enable', '0', '--digest', 'a'.repeat(40));
    assert.equal(wrongDigest.code, 255);
    const cluster = file('firewall/cluster.fw')!;
    assert.ok(cluster.startsWith('[OPTIONS]\n\nenable: 1\npolicy_in: DROP\n\n[IPSET management]\n'), cluster);
    assert.equal(file(`nodes/${NODE}/host.fw`), '[OPTIONS]\n\nenable: 1\n\n[RULES]\n\nIN DROP -i vmbr9 -p tcp -dport 22\n\n');

    // what the stand-in wrote parses cleanly, and compiles to what the operator needs
    const parsed = parseFirewallFile(cluster, 'cluster');
    assert.deepEqual(parsed.warnings, []);
    const fw = compileHostFirewall({ clusterFw: cluster, hostFw: file(`nodes/${NODE}/host.fw`), detectedLocalNetwork: '192.168.1.0/24', nodename: NODE });
    assert.deepEqual(fw.warnings, []);
    assert.equal(simulate(fw, { source: '203.0.113.7', proto: 'tcp', dport: 8006, iface: 'vmbr0' }).verdict, 'ACCEPT');
    assert.equal(simulate(fw, { source: '203.0.113.7', proto: 'tcp', dport: 22, iface: 'vmbr9' }).verdict, 'DROP');
    assert.equal(simulate(fw, { source: '198.51.100.1', proto: 'tcp', dport: 8006, iface: 'vmbr0' }).verdict, 'DROP');
  } finally {
    done();
  }
});
