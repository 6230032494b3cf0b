/**
 * The firewall file model (src/pve/firewall-rules.ts) and the host chain
 * compiler and evaluator (src/pve/firewall-compile.ts): parsing as
 * Firewall.pm does, Proxmox's warnings, CIDR normalisation, the writer, the
 * API digests, and the cases that decide whether an operator keeps access.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addressInCidrs,
  canonicalCidr,
  formatFirewallFile,
  formatRule,
  inAddressSet,
  ipsetDigest,
  normaliseCidr,
  optionsDigest,
  parseFirewallFile,
  rulesDigest,
  unmapAddress,
} from '../../src/pve/firewall-rules.ts';
import { compileHostFirewall, parseCorosyncConf, simulate } from '../../src/pve/firewall-compile.ts';
import type { CompileInput, Packet } from '../../src/pve/firewall-ir.ts';

const NOW = 1_800_000_000;

const CLUSTER = `# written by hand
[OPTIONS]

enable: 1
policy_in: DROP

[ALIASES]

Operator 203.0.113.7 # the admin's laptop
office 198.51.100.0/24

[IPSET management] # who may manage

203.0.113.7 # operator
!192.168.1.66 # printer
2001:db8::/64

[ipset webfarm]
office
10.9.0.0/16

[RULES]

IN SSH(ACCEPT) -source +management # ssh for admins
|IN HTTP(ACCEPT)
IN ACCEPT -source dc/office -p tcp -dport 8006
GROUP web -i vmbr0

[group web] # web servers

IN HTTPS(ACCEPT) -source +webfarm
OUT ACCEPT -p tcp -dport 80
`;

// ---------------------------------------------------------------------------
// parsing

test('parse: sections, aliases, ipsets with nomatch and comments, rules, groups', () => {
  const fw = parseFirewallFile(CLUSTER, 'cluster', undefined, { now: NOW });
  assert.deepEqual(fw.warnings, []);
  assert.deepEqual([...fw.options], [['enable', '1'], ['policy_in', 'DROP']]);
  assert.deepEqual(fw.aliases.get('operator'), { name: 'Operator', cidr: '203.0.113.7', ipversion: 4, comment: "the admin's laptop" });
  const mgmt = fw.ipsets.get('management')!;
  assert.equal(mgmt.comment, 'who may manage');
  assert.deepEqual(mgmt.entries, [
    { cidr: '203.0.113.7', comment: 'operator' },
    { cidr: '192.168.1.66', nomatch: true, comment: 'printer' },
    { cidr: '2001:db8::/64' },
  ]);
  assert.deepEqual(fw.ipsets.get('webfarm')!.entries.map((e) => e.cidr), ['office', '10.9.0.0/16']);
  assert.equal(fw.rules.length, 4);
  assert.deepEqual(fw.rules[0], { type: 'in', action: 'ACCEPT', macro: 'SSH', source: '+management', comment: 'ssh for admins', enable: 1, line: 24 });
  assert.equal(fw.rules[1]!.enable, 0);
  assert.equal(fw.rules[2]!.ipversion, 4, 'an alias gives its IP version');
  assert.deepEqual(fw.rules[3], { type: 'group', action: 'web', iface: 'vmbr0', enable: 1, line: 27 });
  const web = fw.groups.get('web')!;
  assert.equal(web.comment, 'web servers');
  assert.deepEqual(web.rules.map((r) => [r.type, r.macro ?? r.action]), [['in', 'HTTPS'], ['out', 'ACCEPT']]);
});

test('parse: macro names are case-insensitive and kept in Proxmox spelling; -p/--proto/--dport spellings', () => {
  const fw = parseFirewallFile('[RULES]\nIN ssh(ACCEPT)\nIN spiceproxy(DROP) --source 10.0.0.1\nIN ACCEPT --proto udp --dport 53\n', 'host', 'host.fw');
  assert.deepEqual(fw.warnings, []);
  assert.deepEqual(fw.rules.map((r) => formatRule(r)), ['IN SSH(ACCEPT)', 'IN SPICEproxy(DROP) -source 10.0.0.1', 'IN ACCEPT -p udp -dport 53']);
});

test('parse: Proxmox\'s warnings, word for word', () => {
  const text = [
    'enable: 1', // 1: before any section
    '[OPTIONS]',
    'enable: yes', // 3
    'bogus: 1', // 4
    '[RULES]',
    'IN', // 6: unable to parse rule
    'IN ACCEPT -p tcp -dport 22 -foo bar', // 7: parameters
    'IN ACCEPT -dport 80', // 8: dport without proto
    'IN ACCEPT -p tcp -dport 70000', // 9
    'IN ACCEPT -p tcp -source +management', // 10: no such ipset (host.fw with an empty cluster)
    'IN ALLOW -p tcp', // 11
    'IN NOPE(ACCEPT)', // 12
    'IN SSH(ACCEPT) -dport 2222 -p tcp', // 13: macro conflict
    'IN ACCEPT -source 10.0.0.11/24', // 14: host bits
    'IN ACCEPT -p icmp -icmp-type bogus', // 15
  ].join('\n');
  const fw = parseFirewallFile(text, 'host', 'host.fw');
  assert.deepEqual(fw.warnings, [
    'host.fw (line 1): skip line - no section',
    "host.fw (line 3): can't parse option 'enable: yes'",
    "host.fw (line 4): can't parse option 'bogus: 1'",
    'host.fw (line 6): unable to parse rule: IN',
    'host.fw (line 7): unable to parse rule parameters: -foo bar',
    "host.fw (line 8) - errors in rule parameters: IN ACCEPT -dport 80\n  dport: protocol '' does not support ports\n  proto: missing property - 'dport' requires this property",
    "host.fw (line 9) - errors in rule parameters: IN ACCEPT -p tcp -dport 70000\n  dport: invalid port '70000'",
    "host.fw (line 10) - errors in rule parameters: IN ACCEPT -p tcp -source +management\n  source: no such ipset 'management'",
    "host.fw (line 11) - errors in rule parameters: IN ALLOW -p tcp\n  action: unknown action 'ALLOW'",
    "host.fw (line 12) - errors in rule parameters: IN NOPE(ACCEPT)\n  macro: unknown macro 'NOPE'",
    "host.fw (line 13) - errors in rule parameters: IN SSH(ACCEPT) -dport 2222 -p tcp\n  dport: parameter 'dport' already define in macro (value = '22')",
    'host.fw (line 14) - errors in rule parameters: IN ACCEPT -source 10.0.0.11/24\n  source: invalid IP address: Invalid prefix 00001010000000000000000000001011/24',
    "host.fw (line 15) - errors in rule parameters: IN ACCEPT -p icmp -icmp-type bogus\n  icmp-type: invalid icmp-type 'bogus' for proto 'icmp'",
  ]);
  // dropped lines are gone, rules with errors are kept (and written back), as Proxmox does
  assert.equal(fw.rules.length, 8);
  assert.ok(fw.rules.every((r) => r.errors));
});

test('parse: ipset entry errors (duplicate, zero prefix, unknown alias) keep the entry and warn', () => {
  const fw = parseFirewallFile('[IPSET xs]\n10.0.0.1\n10.0.0.1/32\n0.0.0.0/0\nnosuch\n', 'cluster', 'cluster.fw');
  assert.deepEqual(fw.warnings, [
    "cluster.fw (line 3) - errors in ipset 'xs': 10.0.0.1/32\n  cidr: duplicate ipset entry for '10.0.0.1'",
    "cluster.fw (line 4) - errors in ipset 'xs': 0.0.0.0/0\n  cidr: a zero prefix is not allowed in ipset entries",
    "cluster.fw (line 5) - errors in ipset 'xs': nosuch\n  cidr: no such alias 'nosuch'",
  ]);
  assert.equal(fw.ipsets.get('xs')!.entries.length, 4);
});

test('parse: host.fw sees the cluster\'s ipsets and aliases; its own [IPSET] is not a section', () => {
  const cluster = parseFirewallFile('[IPSET management]\n10.0.0.1\n[ALIASES]\nbox 10.0.0.9\n', 'cluster', 'cluster.fw');
  const host = parseFirewallFile('[RULES]\nIN ACCEPT -source +management -p tcp -dport 22\nIN ACCEPT -source box\n[IPSET mine]\n', 'host', 'host.fw', { cluster });
  assert.equal(host.rules.length, 3);
  assert.ok(!host.rules[0]!.errors && !host.rules[1]!.errors);
  assert.equal(host.rules[1]!.ipversion, 4);
  assert.match(host.warnings[0]!, /^host\.fw \(line 4\) - errors in rule parameters: \[IPSET mine\]\n  type: invalid rule type '\[ipset' for rule_env 'host'/);
});

test('parse: cluster enable as a timestamp counts for 60 s', () => {
  const at = (age: number) => parseFirewallFile(`[OPTIONS]\nenable: ${NOW - age}\n`, 'cluster', 'cluster.fw', { now: NOW });
  assert.equal(at(30).options.get('enable'), String(NOW - 30));
  assert.equal(at(60).options.get('enable'), String(NOW - 60));
  assert.equal(at(61).options.get('enable'), '0');
  assert.equal(at(61).enableTimestamp, NOW - 61);
  assert.equal(parseFirewallFile('[OPTIONS]\nENABLE: 01\n', 'cluster').options.get('enable'), '1');
});

// ---------------------------------------------------------------------------
// addresses

test('normaliseCidr: as the API stores an ipset entry', () => {
  assert.equal(normaliseCidr('10.0.0.11/24'), '10.0.0.0/24');
  assert.equal(normaliseCidr('10.0.0.11/32'), '10.0.0.11');
  assert.equal(normaliseCidr('10.0.0.11'), '10.0.0.11');
  assert.equal(normaliseCidr('2001:DB8:0:0:0:0:0:1/128'), '2001:db8::1');
  assert.equal(normaliseCidr('2001:db8:0:0:1::7/64'), '2001:db8::/64');
  assert.equal(normaliseCidr('2001:DB8::1'), '2001:DB8::1', 'clean_cidr leaves a bare address as written');
  assert.throws(() => normaliseCidr('0.0.0.0/0'), /^Error: a zero prefix is not allowed in ipset entries$/);
  assert.throws(() => normaliseCidr('::/0'), /zero prefix/);
  assert.throws(() => normaliseCidr('10.0.0.1/33'), /value does not look like a valid IP address or CIDR network/);
  assert.throws(() => normaliseCidr('example.com'), /value does not look like a valid IP address or CIDR network/);
  assert.throws(() => normaliseCidr('010.0.0.1'), /valid IP/);
});

test('canonicalCidr, unmapAddress, addressInCidrs, inAddressSet', () => {
  assert.equal(canonicalCidr('2001:DB8::1'), '2001:db8::1');
  assert.equal(canonicalCidr('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(canonicalCidr('192.0.2.9/24'), '192.0.2.0/24');
  assert.equal(canonicalCidr('nope'), undefined);
  assert.equal(unmapAddress('::FFFF:192.0.2.1'), '192.0.2.1');
  assert.equal(unmapAddress('2001:db8::1'), '2001:db8::1');
  assert.ok(addressInCidrs('::ffff:10.1.2.3', ['10.0.0.0/8']));
  assert.ok(addressInCidrs('2001:db8::5', ['10.0.0.0/8', '2001:db8::/64']));
  assert.ok(!addressInCidrs('2001:db9::5', ['2001:db8::/64']));
  assert.ok(!addressInCidrs('10.0.0.1', ['::/1']), 'an IPv4 address is never in an IPv6 network');
  const set = { include: ['10.0.0.0/8', '10.1.2.0/24'], exclude: ['10.1.0.0/16'] };
  assert.ok(inAddressSet('10.2.0.1', set));
  assert.ok(!inAddressSet('10.1.9.9', set), 'nomatch /16 wins over the /8');
  assert.ok(inAddressSet('10.1.2.3', set), 'the more specific /24 wins over the nomatch /16 (ipset hash:net)');
  assert.ok(!inAddressSet('not-an-ip', set));
});

// ---------------------------------------------------------------------------
// writing

test('formatFirewallFile: Proxmox\'s layout (sorted sections, entries, options)', () => {
  const fw = parseFirewallFile(CLUSTER, 'cluster', undefined, { now: NOW });
  assert.equal(
    formatFirewallFile(fw),
    `[OPTIONS]

enable: 1
policy_in: DROP

[ALIASES]

office 198.51.100.0/24
Operator 203.0.113.7 # the admin's laptop

[IPSET management] # who may manage

!192.168.1.66 # printer
2001:db8::/64
203.0.113.7 # operator

[IPSET webfarm]

10.9.0.0/16
office

[RULES]

IN SSH(ACCEPT) -source +management # ssh for admins
|IN HTTP(ACCEPT)
IN ACCEPT -source dc/office -p tcp -dport 8006
GROUP web -i vmbr0

[group web] # web servers

IN HTTPS(ACCEPT) -source +webfarm
OUT ACCEPT -p tcp -dport 80

`,
  );
  assert.equal(formatFirewallFile(parseFirewallFile('', 'host')), null, 'an empty config is deleted');
  const host = parseFirewallFile('[OPTIONS]\nenable: 1\n[RULES]\n|IN DROP -i vmbr0 -p tcp -dport 22 -log info # block\n', 'host');
  assert.equal(formatFirewallFile(host), '[OPTIONS]\n\nenable: 1\n\n[RULES]\n\n|IN DROP -i vmbr0 -p tcp -dport 22 -log info # block\n\n');
});

test('formatFirewallFile round trip: parse(write(x)) is x, write is a fixed point', () => {
  for (const [text, kind] of [
    [CLUSTER, 'cluster'],
    ['[RULES]\nIN ACCEPT -p tcp -dport 22,80:90 -source 10.0.0.1-10.0.0.9\nGROUP g\nOUT REJECT -p udp -sport 53 -dest 2001:db8::/32\n', 'host'],
  ] as const) {
    const a = parseFirewallFile(text, kind, 'x.fw', { now: NOW });
    const written = formatFirewallFile(a)!;
    const b = parseFirewallFile(written, kind, 'x.fw', { now: NOW });
    const strip = (f: typeof a) => ({
      options: [...f.options],
      aliases: [...f.aliases].sort(),
      ipsets: [...f.ipsets].map(([k, s]) => [k, s.comment, [...s.entries].sort((x, y) => (x.cidr < y.cidr ? -1 : 1))]),
      rules: f.rules.map(({ line: _l, ...r }) => r),
      groups: [...f.groups].map(([k, g]) => [k, g.comment, g.rules.map(({ line: _l, ...r }) => r)]),
    });
    assert.deepEqual(strip(b), strip(a));
    assert.equal(formatFirewallFile(b), written);
  }
});

test('digests as the API computes them', () => {
  assert.equal(optionsDigest(new Map([['policy_in', 'DROP'], ['enable', '1']])), 'b5b4b38b0ccd39fc3c426236926bf532647addaf');
  assert.equal(optionsDigest({ enable: 1, policy_in: 'DROP' }), 'b5b4b38b0ccd39fc3c426236926bf532647addaf');
  assert.equal(ipsetDigest([{ cidr: '10.0.0.0/24', nomatch: true, comment: 'lan' }, { cidr: '10.0.0.5' }]), '184f70d8ec03088d36aca4dfae7f8dfb582d834d');
  const fw = parseFirewallFile('[RULES]\nIN ACCEPT -p tcp -dport 22\n', 'host');
  const changed = parseFirewallFile('[RULES]\nIN ACCEPT -p tcp -dport 23\n', 'host');
  assert.notEqual(rulesDigest(fw.rules), rulesDigest(changed.rules));
  assert.equal(rulesDigest(fw.rules), rulesDigest(parseFirewallFile('[RULES]\n\nIN   ACCEPT -p tcp -dport 22\n', 'host').rules));
});

// ---------------------------------------------------------------------------
// compile and simulate: keeping access

const base = (over: Partial<CompileInput> = {}): CompileInput => ({
  clusterFw: '[OPTIONS]\nenable: 1\n\n[IPSET management]\n203.0.113.7\n2001:db8::/64\n',
  hostFw: '[OPTIONS]\nenable: 1\n',
  detectedLocalNetwork: '192.168.1.0/24',
  nodename: 'pve1',
  now: NOW,
  ...over,
});
const tcp = (source: string, dport: number, extra: Partial<Packet> = {}): Packet => ({ source, dest: '192.168.1.2', proto: 'tcp', dport, iface: 'vmbr0', ...extra });

test('an operator in management keeps 22 and 8006; a stranger does not', () => {
  const fw = compileHostFirewall(base());
  assert.equal(fw.enabled, true);
  assert.deepEqual(fw.warnings, []);
  assert.deepEqual(fw.management.include, ['203.0.113.7', '2001:db8::/64', '192.168.1.0/24']);
  for (const port of [22, 8006, 3128, 5900, 60050]) assert.equal(simulate(fw, tcp('203.0.113.7', port)).verdict, 'ACCEPT', String(port));
  assert.equal(simulate(fw, tcp('192.168.1.50', 22)).verdict, 'ACCEPT', 'local_network joins management');
  assert.equal(simulate(fw, tcp('203.0.113.7', 80)).verdict, 'DROP');
  const stranger = simulate(fw, tcp('198.51.100.1', 22));
  assert.equal(stranger.verdict, 'DROP');
  assert.equal(stranger.decidedBy, undefined, 'the policy decided');
  assert.match(stranger.trace.at(-2)!, /no rule matched: policy_in DROP/);
  assert.equal(simulate(fw, tcp('198.51.100.1', 22, { ctState: 'established' })).verdict, 'ACCEPT', 'an open session survives');
});

test('an administrator\'s IN DROP rule before the management accepts cuts 22', () => {
  const fw = compileHostFirewall(base({ hostFw: '[OPTIONS]\nenable: 1\n[RULES]\nIN DROP -p tcp -dport 22 # no ssh\n' }));
  const r = simulate(fw, tcp('203.0.113.7', 22));
  assert.equal(r.verdict, 'DROP');
  assert.equal(r.decidedBy?.fromFile, true);
  assert.equal(r.decidedBy?.origin, 'host.fw line 4: IN DROP -p tcp -dport 22');
  assert.equal(simulate(fw, tcp('203.0.113.7', 8006)).verdict, 'ACCEPT');
  // host rules come before cluster rules
  const both = compileHostFirewall(
    base({ clusterFw: '[OPTIONS]\nenable: 1\n[RULES]\nIN ACCEPT -p tcp -dport 22\n', hostFw: '[RULES]\nIN REJECT -p tcp -dport 22 -source 10.0.0.0/8\n' }),
  );
  assert.equal(simulate(both, tcp('10.1.1.1', 22)).verdict, 'REJECT');
  assert.equal(simulate(both, tcp('10.1.1.1', 22, { proto: 'icmp', dport: undefined })).verdict, 'DROP');
  assert.equal(simulate(both, tcp('11.1.1.1', 22)).verdict, 'ACCEPT');
});

test('an unparsable rule is skipped with a warning and the DROP stays', () => {
  const fw = compileHostFirewall(base({ hostFw: '[RULES]\nIN ACCEPT -dport 22 -source 198.51.100.1\nIN ACCEPT -p tcp -dport 22 -bogus\n' }));
  assert.equal(fw.warnings.length, 2);
  assert.match(fw.warnings[0]!, /^\/etc\/pve\/nodes\/pve1\/host\.fw \(line 2\) - errors in rule parameters: IN ACCEPT -dport 22 -source 198\.51\.100\.1\n/);
  assert.equal(fw.warnings[1], '/etc/pve/nodes/pve1/host.fw (line 3): unable to parse rule parameters: -bogus');
  assert.equal(fw.input.filter((r) => r.fromFile).length, 0);
  assert.equal(simulate(fw, tcp('198.51.100.1', 22)).verdict, 'DROP');
});

test('IPv6 sources and IPv4-mapped sources', () => {
  const fw = compileHostFirewall(base());
  assert.equal(simulate(fw, tcp('2001:db8::42', 22, { dest: '2001:db8::2' })).verdict, 'ACCEPT');
  assert.equal(simulate(fw, tcp('2001:db9::42', 22, { dest: '2001:db8::2' })).verdict, 'DROP');
  assert.equal(simulate(fw, tcp('::ffff:203.0.113.7', 8006)).verdict, 'ACCEPT');
  assert.equal(simulate(fw, tcp('::ffff:198.51.100.9', 8006)).verdict, 'DROP');
  // NDP is accepted for IPv6 only
  const ns = { source: 'fe80::1', proto: 'icmpv6', icmpType: 'neighbor-solicitation', iface: 'vmbr0' };
  assert.equal(simulate(fw, ns).verdict, 'ACCEPT');
  const noNdp = compileHostFirewall(base({ hostFw: '[OPTIONS]\nndp: 0\n' }));
  assert.equal(simulate(noNdp, ns).verdict, 'DROP');
  // Ping is icmp for IPv4 and icmpv6 for IPv6
  const ping = compileHostFirewall(base({ hostFw: '[RULES]\nIN Ping(ACCEPT)\n' }));
  assert.equal(simulate(ping, { source: '198.51.100.1', proto: 'icmp', icmpType: 'echo-request' }).verdict, 'ACCEPT');
  assert.equal(simulate(ping, { source: '2001:db9::1', proto: 'icmpv6', icmpType: 'echo-request' }).verdict, 'ACCEPT');
  assert.equal(simulate(ping, { source: '2001:db9::1', proto: 'icmpv6', icmpType: 'echo-reply' }).verdict, 'DROP');
});

test('enable: cluster 0 or unset, stale timestamps and host enable: 0 disable; a fresh timestamp enables', () => {
  const on = (clusterEnable: string, hostFw?: string) => compileHostFirewall(base({ clusterFw: `[OPTIONS]\nenable: ${clusterEnable}\n`, hostFw }));
  assert.equal(on('1').enabled, true);
  assert.equal(on(String(NOW - 10)).enabled, true);
  assert.equal(on(String(NOW - 60)).enabled, true);
  const stale = on(String(NOW - 61));
  assert.equal(stale.enabled, false);
  assert.match(stale.disabledBecause!, /timestamp older than 60 s/);
  assert.equal(simulate(stale, tcp('198.51.100.1', 22)).verdict, 'ACCEPT', 'a disabled firewall filters nothing');
  assert.equal(on('0').disabledBecause, 'cluster.fw: enable is 0');
  assert.equal(compileHostFirewall(base({ clusterFw: undefined })).enabled, false);
  const hostOff = on('1', '[OPTIONS]\nenable: 0\n');
  assert.equal(hostOff.enabled, false);
  assert.equal(hostOff.disabledBecause, 'host.fw: enable: 0');
  assert.equal(on('1', undefined).enabled, true, 'host enable defaults to 1');
});

test('policy, blacklist, local_network alias, groups, corosync', () => {
  const fw = compileHostFirewall(
    base({
      clusterFw:
        '[OPTIONS]\nenable: 1\npolicy_in: REJECT\n[ALIASES]\nlocal_network 10.0.0.5\n[IPSET blacklist]\n203.0.113.0/24\n[IPSET management]\n203.0.113.7\n[RULES]\nGROUP admins -i vmbr1\n[group admins]\nIN ACCEPT -p tcp -dport 9000\n',
      corosyncConf: 'nodelist {\n  node {\n    name: pve1\n    ring0_addr: 10.0.0.5\n  }\n  node {\n    name: pve2\n    ring0_addr: 10.0.0.6\n  }\n}\ntotem {\n  transport: knet\n}\n',
    }),
  );
  assert.equal(fw.policyIn, 'REJECT');
  assert.equal(fw.localNetwork, '10.0.0.5');
  assert.deepEqual(fw.management.include, ['203.0.113.7', '10.0.0.5']);
  assert.equal(simulate(fw, tcp('203.0.113.7', 22)).verdict, 'DROP', 'the blacklist comes before management');
  assert.equal(simulate(fw, tcp('10.0.0.5', 22)).verdict, 'ACCEPT');
  assert.equal(simulate(fw, tcp('10.0.0.9', 22)).verdict, 'REJECT', 'the local /24 is not management when the alias names one host');
  assert.equal(simulate(fw, tcp('10.0.0.9', 9000)).verdict, 'REJECT', 'the group applies on vmbr1 only');
  assert.equal(simulate(fw, tcp('10.0.0.9', 9000, { iface: 'vmbr1' })).verdict, 'ACCEPT');
  assert.equal(simulate(fw, { source: '10.0.0.6', dest: '10.0.0.5', proto: 'udp', dport: 5405 }).verdict, 'ACCEPT');
  assert.equal(simulate(fw, { source: '10.0.0.7', dest: '10.0.0.5', proto: 'udp', dport: 5405 }).verdict, 'REJECT');
  assert.equal(simulate(fw, { source: '10.0.0.6', dest: '239.192.1.1', proto: 'udp', dport: 5405 }).verdict, 'DROP', 'no multicast with knet; REJECT drops multicast');
  assert.equal(simulate(fw, { source: '10.0.0.7', proto: 'udp', dport: 137 }).verdict, 'REJECT');
  assert.equal(simulate(fw, { source: '10.0.0.7', proto: 'udp', dport: 1900 }).verdict, 'DROP', 'UPnP is dropped even under REJECT');
  const open = compileHostFirewall(base({ clusterFw: '[OPTIONS]\nenable: 1\npolicy_in: ACCEPT\n' }));
  assert.equal(simulate(open, tcp('198.51.100.1', 25)).verdict, 'ACCEPT');
});

test('parseCorosyncConf reads the node list and transport', () => {
  const c = parseCorosyncConf('nodelist {\n node {\n  name: b\n  ring1_addr: 10.1.0.2\n  ring0_addr: 10.0.0.2\n }\n node {\n  name: a\n  link0_addr: 10.0.0.1\n }\n}\ntotem {\n  transport: udp\n  interface {\n    linknumber: 0\n  }\n}\n');
  assert.equal(c.transport, 'udp');
  assert.deepEqual(c.nodes, [
    { name: 'a', addresses: [['link0_addr', '10.0.0.1']] },
    { name: 'b', addresses: [['ring0_addr', '10.0.0.2'], ['ring1_addr', '10.1.0.2']] },
  ]);
});
