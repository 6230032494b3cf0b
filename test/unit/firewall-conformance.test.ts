/**
 * The host firewall model (src/pve/firewall-compile.ts) against Proxmox's own
 * firewall tests (test/fixtures/conformance/pve-firewall, from
 * proxmox/pve-firewall's test/ folder, run upstream by fwtester.pl through
 * FirewallSimulator.pm).
 *
 * Every case whose destination is the host is run: `to => 'host'`, and a
 * case without `to`, which fwtester.pl expands to every zone but its source
 * (host, outside, nfvm, vm100, ct200), for the `host` zone. Proxmox's test
 * settings: local_network 172.16.1.0/24, host address 172.16.1.2, node
 * name `proxself` (fwtester.pl puts the local host name there), the fixtures'
 * corosync.conf. FirewallSimulator.pm's packet defaults: tcp, source
 * 100.100.1.2, destination the host, destination address type UNICAST.
 *
 * How a source zone becomes a packet: FirewallSimulator routes every packet
 * for the host through the bridge it arrives on, so `outside`, `nfvm` and
 * `vmbr0/eth0` are a packet on vmbr0, and a guest (`vm100`, `vm110`,
 * `ct200`, `vm100i1` ...) a packet on the bridge of its network device as
 * fwtester.pl's $vmdata configures it (vm100 net0 on vmbr0, net1 on vmbr1,
 * net2 on vmbr2; vm110 on vmbr1; the containers on vmbr0). Before that, a
 * guest's packet passes the guest's own outbound chain; the model has no
 * guest chains, so the few cases that chain decides are skipped below.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compileHostFirewall, simulate } from '../../src/pve/firewall-compile.ts';
import type { Packet } from '../../src/pve/firewall-ir.ts';

const DIR = fileURLToPath(new URL('../fixtures/conformance/pve-firewall/', import.meta.url));
const ZONES = ['host', 'outside', 'nfvm', 'vm100', 'ct200'];
const HOST_IP = '172.16.1.2';
const LOCAL_NETWORK = '172.16.1.0/24';

/** fwtester.pl's $vmdata: the bridge of each guest's network device. */
const GUEST_BRIDGES: Record<string, string[]> = {
  vm100: ['vmbr0', 'vmbr1', 'vmbr2'],
  vm101: ['vmbr0'],
  vm110: ['vmbr1'],
  ct200: ['vmbr0'],
  ct201: ['vmbr0'],
};

/**
 * Cases the guest's own outbound chain decides (ipfilter), which this model
 * of the host's input chain does not have: the host would accept them, the
 * guest's chain drops them before they reach the host.
 */
const SKIP: Record<string, string> = {
  'test-vm-ipfilter1 line 7': "vm100's ipset ipfilter-net0 (1.2.3.4, 1.2.3.5) drops source 1.2.3.3 in the guest's outbound chain",
  'test-vm-ipfilter1 line 10': "vm100's ipset ipfilter-net0 drops source 1.2.3.6 in the guest's outbound chain",
  'test-vm-ipfilter1 line 12': "vm100's empty ipset ipfilter-net2 drops everything from net2 in the guest's outbound chain",
  'test-vm-ipfilter1 line 13': "vm100's empty ipset ipfilter-net2 drops everything from net2 in the guest's outbound chain",
  'test-vm-ipfilter1 line 14': "vm100's empty ipset ipfilter-net2 drops everything from net2 in the guest's outbound chain",
  'test-vm-ipfilter1 line 15': "vm100's empty ipset ipfilter-net2 drops everything from net2 in the guest's outbound chain",
  'test-vm-ipfilter2 line 1': "ct200 has `ipfilter: 1`: only its own address 10.0.200.1 leaves the guest's outbound chain",
  'test-vm-ipfilter2 line 3': "ct200 has `ipfilter: 1`: only its own address 10.0.200.1 leaves the guest's outbound chain",
};

interface Case {
  dir: string;
  line: number;
  text: string;
  fields: Record<string, string | number>;
}

/** One line of a `tests` file: a Perl hash of strings and numbers. */
function parsePerlHash(line: string): Record<string, string | number> {
  const body = /^\{(.*)\}\s*$/.exec(line.trim());
  assert.ok(body, `not a test line: ${line}`);
  const out: Record<string, string | number> = {};
  const re = /(\w+)\s*=>\s*(?:'([^']*)'|"([^"]*)"|(\d+))\s*(,|$)/g;
  let rest = body[1]!.trim();
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(rest))) {
    out[m[1]!] = m[4] !== undefined ? Number(m[4]) : (m[2] ?? m[3])!;
    consumed += m[0].length;
  }
  rest = rest.replace(re, '').trim();
  assert.equal(rest, '', `unparsed part of test line: ${line}`);
  assert.ok(consumed > 0);
  return out;
}

function loadCases(): Case[] {
  const cases: Case[] = [];
  for (const dir of readdirSync(DIR).filter((d) => d.startsWith('test-')).sort()) {
    const lines = readFileSync(`${DIR}${dir}/tests`, 'utf8').split('\n');
    lines.forEach((text, i) => {
      if (/^\s*$/.test(text) || /^#/.test(text)) return;
      const fields = parsePerlHash(text);
      cases.push({ dir, line: i + 1, text: text.trim(), fields });
    });
  }
  return cases;
}

/** fwtester.pl run_tests: a missing `to` is every zone but `from` (and the reverse). */
function hostDirected(c: Case): { from: string; fields: Record<string, string | number> }[] {
  const { from, to } = c.fields as { from?: string; to?: string };
  if (to !== undefined && to !== 'host') return [];
  if (to === 'host' && from !== undefined) return [{ from, fields: c.fields }];
  if (to === 'host') return ZONES.filter((z) => z !== 'host').map((z) => ({ from: z, fields: { ...c.fields, from: z } }));
  // no `to`: every zone but `from`, the host among them
  return from !== undefined && from !== 'host' ? [{ from, fields: { ...c.fields, to: 'host' } }] : [];
}

function bridgeOf(from: string): string {
  if (from === 'outside' || from === 'nfvm') return 'vmbr0';
  const port = /^([a-zA-Z][a-zA-Z0-9]{0,9})\/\S+$/.exec(from);
  if (port) return port[1]!;
  const g = /^(vm|ct)(\d+)(?:i(\d))?$/.exec(from);
  assert.ok(g, `unknown zone ${from}`);
  const bridge = GUEST_BRIDGES[`${g[1]}${g[2]}`]?.[Number(g[3] ?? 0)];
  assert.ok(bridge, `no bridge for ${from}`);
  return bridge;
}

function packetFor(from: string, f: Record<string, string | number>): Packet {
  for (const k of Object.keys(f)) assert.ok(['from', 'to', 'action', 'id', 'proto', 'sport', 'dport', 'source', 'dest', 'dsttype'].includes(k), `unknown attribute '${k}'`);
  const p: Packet = {
    source: f.source !== undefined ? String(f.source) : '100.100.1.2',
    dest: f.dest !== undefined ? String(f.dest) : HOST_IP,
    proto: f.proto !== undefined ? String(f.proto) : 'tcp',
    iface: bridgeOf(from),
    ctState: 'new',
    destType: (f.dsttype as Packet['destType']) ?? 'UNICAST',
  };
  if (f.dport !== undefined) {
    if (typeof f.dport === 'number') p.dport = f.dport;
    else p.icmpType = f.dport; // FirewallSimulator.pm: an ICMP type travels in dport
  }
  if (f.sport !== undefined) p.sport = Number(f.sport);
  return p;
}

const corosyncConf = readFileSync(`${DIR}corosync.conf`, 'utf8');
const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined);

test('firewall conformance: every host-directed case of Proxmox VE\'s firewall tests', () => {
  const cases = loadCases();
  const compiled = new Map<string, ReturnType<typeof compileHostFirewall>>();
  let total = 0;
  let pass = 0;
  const failures: string[] = [];
  const skipped: string[] = [];
  const skipKeysUsed = new Set<string>();
  for (const c of cases) {
    for (const { from, fields } of hostDirected(c)) {
      total++;
      let fw = compiled.get(c.dir);
      if (!fw) {
        fw = compileHostFirewall({
          clusterFw: read(`${DIR}${c.dir}/cluster.fw`),
          hostFw: read(`${DIR}${c.dir}/host.fw`),
          detectedLocalNetwork: LOCAL_NETWORK,
          corosyncConf,
          nodename: 'proxself',
          now: 1_700_000_000,
        });
        compiled.set(c.dir, fw);
      }
      const key = `${c.dir} line ${c.line}`;
      const res = simulate(fw, packetFor(from, fields));
      const expected = String(fields.action);
      if (SKIP[key] !== undefined) {
        skipKeysUsed.add(key);
        skipped.push(`${key} (from ${from}): ${SKIP[key]}`);
        // a skip must still be a case the model gets wrong, else it should pass
        assert.notEqual(res.verdict, expected, `${key} is in the skip list but passes now: remove it`);
        continue;
      }
      if (res.verdict === expected) pass++;
      else failures.push(`${key} (from ${from}): ${c.text}\n  got ${res.verdict}, expected ${expected}\n  ${res.trace.join('\n  ')}`);
    }
  }
  console.log(`firewall conformance: ${pass} of ${total} host-directed cases pass (${skipped.length} skipped)`);
  for (const s of skipped) console.log(`  skipped ${s}`);
  assert.deepEqual([...skipKeysUsed].sort(), Object.keys(SKIP).sort(), 'every skip names a host-directed case');
  assert.ok(total >= 50, `expected the fixtures' host-directed cases, found ${total}`);
  assert.deepEqual(failures, []);
  assert.equal(pass + skipped.length, total);
});

test('firewall conformance: the fixtures parse without unexpected warnings', () => {
  // test-errors3's host.fw has a rule with dport but no protocol, on purpose
  const fw = compileHostFirewall({
    clusterFw: read(`${DIR}test-errors3/cluster.fw`),
    hostFw: read(`${DIR}test-errors3/host.fw`),
    detectedLocalNetwork: LOCAL_NETWORK,
    nodename: 'proxself',
  });
  assert.deepEqual(fw.warnings, [
    "/etc/pve/nodes/proxself/host.fw (line 4) - errors in rule parameters: IN ACCEPT -dport 80\n  dport: protocol '' does not support ports\n  proto: missing property - 'dport' requires this property",
  ]);
  for (const dir of ['test-basic1', 'test-default-rules1', 'test-group1', 'test-ipset1']) {
    const f = compileHostFirewall({
      clusterFw: read(`${DIR}${dir}/cluster.fw`),
      hostFw: read(`${DIR}${dir}/host.fw`),
      detectedLocalNetwork: LOCAL_NETWORK,
      corosyncConf,
      nodename: 'proxself',
    });
    assert.deepEqual(f.warnings, [], dir);
    assert.equal(f.enabled, true, dir);
  }
});
