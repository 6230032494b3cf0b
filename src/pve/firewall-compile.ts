/**
 * cluster.fw + host.fw -> the host's inbound chain (firewall-ir.ts), as
 * Firewall.pm builds PVEFW-HOST-IN: compile(), enable_host_firewall,
 * ruleset_chain_add_conn_filters / _ndp / _input_filters,
 * ruleset_add_group_rule + generate_group_rules (inlined here),
 * ruleset_generate_rule + $apply_macro, ruleset_add_chain_policy and the
 * standard chains PVEFW-Drop / PVEFW-Reject / PVEFW-reject. Plus a
 * first-match evaluator of that list. Pure: no I/O.
 *
 * What the model leaves out, on purpose: the outbound and forward chains,
 * guests' chains, TCP flag checks (`tcpflags`, and PVEFW-Drop's "new but not
 * SYN" drop), source address type BROADCAST (smurfs), logging, rate limits,
 * the raw table (synflood, conntrack helpers), and host names in
 * corosync.conf (only ring addresses that are IP addresses are used).
 */
import type { AddressSet, CompileInput, HostFirewall, IrRule, Match, Packet, PortRange, SimulateResult, Verdict } from './firewall-ir.ts';
import {
  applyMacro,
  canonicalCidr,
  firewallPath,
  formatRule,
  icmpTypeNumber,
  inAddressSet,
  isIcmpProto,
  parseFirewallFile,
  parseIpOrCidr,
  perlTrue,
  portRanges,
  protocolNumber,
  resolveAddressSpec,
  resolveIpset,
  unmapAddress,
  ipVersion,
  type ExpandedRule,
  type FwRule,
  type ParsedFirewall,
  type ResolvedAddresses,
} from './firewall-rules.ts';

// ---------------------------------------------------------------------------
// corosync.conf (PVE::Corosync parse_conf, for_all_corosync_addresses)

export interface CorosyncNode {
  name: string;
  /** ringN_addr / linkN_addr keys with their values, sorted by key. */
  addresses: [key: string, value: string][];
}

/** The nodelist and totem.transport of a corosync.conf. */
export function parseCorosyncConf(text: string): { nodes: CorosyncNode[]; transport?: string } {
  const nodes: CorosyncNode[] = [];
  let transport: string | undefined;
  const stack: string[] = [];
  let current: Record<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s*\{$/.exec(line))) {
      stack.push(m[1]!);
      if (stack.join('/') === 'nodelist/node') current = {};
      continue;
    }
    if (line === '}') {
      if (stack.join('/') === 'nodelist/node' && current) {
        const addresses = Object.keys(current)
          .filter((k) => /^(ring|link)\d+_addr$/.test(k))
          .sort()
          .map((k) => [k, current![k]!] as [string, string]);
        if (current.name) nodes.push({ name: current.name, addresses });
        current = undefined;
      }
      stack.pop();
      continue;
    }
    if ((m = /^(\S+?):\s*(.*)$/.exec(line))) {
      if (current) current[m[1]!] = m[2]!;
      else if (stack.join('/') === 'totem' && m[1] === 'transport') transport = m[2]!;
    }
  }
  nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { nodes, transport };
}

// ---------------------------------------------------------------------------
// compile

const ACCEPT: Verdict = 'ACCEPT';
const DROP: Verdict = 'DROP';

const ports = (spec: string): PortRange[] => (portRanges(spec) ?? []).map(([a, b]) => [a, b] as const);
const set = (include: string[], label: string): AddressSet => ({ include, exclude: [], label });
const fromResolved = (r: ResolvedAddresses): AddressSet => ({ include: [...r.include], exclude: [...r.exclude], label: r.label });

/** The standard chains' drop/accept set (PVEFW-Drop / PVEFW-Reject) for one IP version, in order. */
function policySet(policy: 'DROP' | 'REJECT', v: 4 | 6): IrRule[] {
  const chain = policy === 'DROP' ? 'PVEFW-Drop' : 'PVEFW-Reject';
  const out: IrRule[] = [];
  const add = (match: Match, verdict: Verdict, what: string) =>
    out.push({ match: { ...match, family: v }, verdict, origin: `policy ${policy}: ${chain} ${what}`, fromFile: false });
  // PVEFW-reject in a REJECT set, or everywhere for IPv6 tcp/43
  const reject: Verdict = 'REJECT';
  if (v === 6) add({ proto: 'tcp', dports: [[43, 43]] }, reject, 'tcp/43');
  if (v === 4) {
    add({ destType: 'BROADCAST' }, DROP, 'broadcast');
    add({ destType: 'MULTICAST' }, DROP, 'multicast');
    add({ dest: set(['224.0.0.0/4'], '224.0.0.0/4') }, DROP, 'multicast 224.0.0.0/4');
    add({ proto: 'icmp', icmpType: 'fragmentation-needed' }, ACCEPT, 'icmp fragmentation-needed');
    add({ proto: 'icmp', icmpType: 'time-exceeded' }, ACCEPT, 'icmp time-exceeded');
  } else {
    add({ dest: set(['ff00::/8'], 'ff00::/8') }, DROP, 'multicast ff00::/8');
    add({ proto: 'icmpv6', icmpType: 'destination-unreachable' }, ACCEPT, 'icmpv6 destination-unreachable');
    add({ proto: 'icmpv6', icmpType: 'time-exceeded' }, ACCEPT, 'icmpv6 time-exceeded');
    add({ proto: 'icmpv6', icmpType: 'packet-too-big' }, ACCEPT, 'icmpv6 packet-too-big');
  }
  add({ ctState: ['invalid'] }, DROP, 'invalid');
  const smb: Verdict = policy === 'DROP' ? DROP : reject;
  add({ proto: 'udp', dports: [[135, 135], [445, 445]] }, smb, 'SMB udp 135,445');
  add({ proto: 'udp', dports: [[137, 139]] }, smb, 'SMB udp 137:139');
  add({ proto: 'udp', dports: [[1024, 65535]], sports: [[137, 137]] }, smb, 'SMB udp 1024:65535 from 137');
  add({ proto: 'tcp', dports: [[135, 135], [139, 139], [445, 445]] }, smb, 'SMB tcp 135,139,445');
  add({ proto: 'udp', dports: [[1900, 1900]] }, DROP, 'UPnP udp 1900');
  add({ proto: 'udp', sports: [[53, 53]] }, DROP, 'DNS replies udp from 53');
  return out;
}

function enabledState(cluster: ParsedFirewall, host: ParsedFirewall, now: number): { enabled: boolean; why?: string } {
  const enable = Number(cluster.options.get('enable') ?? '0');
  if (!enable) {
    const why =
      cluster.enableTimestamp !== undefined
        ? `cluster.fw: enable is a timestamp older than 60 s (${now - cluster.enableTimestamp} s ago)`
        : cluster.options.has('enable')
          ? 'cluster.fw: enable is 0'
          : 'cluster.fw: enable is not set (default 0)';
    return { enabled: false, why };
  }
  if (host.options.get('enable') === '0') return { enabled: false, why: 'host.fw: enable: 0' };
  return { enabled: true };
}

/**
 * The host's inbound rules as pve-firewall (iptables) compiles them, for
 * IPv4 and IPv6 in one list (rules carry `family` where they apply to one).
 * Rules with errors are skipped and reported in `warnings`, in Proxmox's
 * words. The list is built even when the firewall is disabled (`enabled`
 * false: then nothing is filtered), so a plan can be checked before enabling.
 */
export function compileHostFirewall(input: CompileInput): HostFirewall {
  const now = input.now ?? Math.floor(Date.now() / 1000);
  const clusterName = firewallPath('cluster');
  const hostName = firewallPath('host', input.nodename);
  const cluster = parseFirewallFile(input.clusterFw, 'cluster', clusterName, { now });
  const host = parseFirewallFile(input.hostFw, 'host', hostName, { cluster, now });
  const warnings = [...cluster.warnings, ...host.warnings];
  const { enabled, why } = enabledState(cluster, host, now);

  // compile(): local_network is the alias if there is one, else the detected network; it joins management
  let localNetwork: string;
  const alias = cluster.aliases.get('local_network');
  if (alias) localNetwork = alias.cidr;
  else {
    try {
      localNetwork = parseIpOrCidr(input.detectedLocalNetwork || '127.0.0.0/8').cidr;
    } catch {
      warnings.push(`invalid detected local network '${input.detectedLocalNetwork}', using 127.0.0.0/8`);
      localNetwork = '127.0.0.0/8';
    }
  }
  const resolved = new Map<string, ResolvedAddresses>();
  for (const [name, s] of cluster.ipsets) resolved.set(name, resolveIpset(s, cluster, name === 'management' ? [localNetwork] : [], warnings));
  if (!resolved.has('management')) {
    resolved.set('management', resolveIpset({ name: 'management', entries: [] }, cluster, [localNetwork], warnings));
  }
  const management = fromResolved(resolved.get('management')!);

  const input_: IrRule[] = [];
  const push = (match: Match, verdict: Verdict, origin: string, fromFile = false) => input_.push({ match, verdict, origin, fromFile });

  push({ iface: 'lo' }, ACCEPT, 'implicit: loopback (-i lo)');
  // enable_host_firewall passes allow_invalid = 0: invalid is always dropped here (nf_conntrack_allow_invalid only affects forwarding)
  push({ ctState: ['invalid'] }, DROP, 'implicit: conntrack INVALID');
  push({ ctState: ['established', 'related'] }, ACCEPT, 'implicit: conntrack RELATED,ESTABLISHED');
  if (host.options.get('ndp') !== '0') {
    for (const t of ['router-solicitation', 'router-advertisement', 'neighbor-solicitation', 'neighbor-advertisement']) {
      push({ family: 6, proto: 'icmpv6', icmpType: t }, ACCEPT, `implicit: NDP ${t}`);
    }
  }
  const blacklist = resolved.get('blacklist');
  if (blacklist) push({ source: fromResolved(blacklist) }, DROP, 'implicit: ipset blacklist (PVEFW-blacklist)');
  if (host.options.get('nosmurfs') !== '0') {
    push({ family: 4, ctState: ['new'], source: set(['224.0.0.0/4'], '224.0.0.0/4') }, DROP, 'implicit: smurfs (PVEFW-smurfs)');
  }
  push({ proto: 'igmp' }, ACCEPT, 'implicit: igmp');

  const short = (file: 'cluster' | 'host') => (file === 'cluster' ? 'cluster.fw' : 'host.fw');
  const emitRule = (rule: FwRule, file: 'cluster' | 'host', via?: { iface?: string; origin: string }) => {
    const baseOrigin = `${short(file)} line ${rule.line ?? '?'}: ${formatRule({ ...rule, comment: undefined }, !via)}`;
    const origin = via ? `${baseOrigin} (group, via ${via.origin})` : baseOrigin;
    // a macro may differ per IP version (Ping: icmp / icmpv6), so it is expanded for each table
    const families: (4 | 6 | undefined)[] = rule.ipversion ? [rule.ipversion] : rule.macro ? [4, 6] : [undefined];
    for (const v of families) {
      try {
        const expanded: ExpandedRule[] = rule.macro ? applyMacro(rule, v) : [rule];
        const built: IrRule[] = [];
        for (const r of expanded) {
          const match: Match = {};
          const iface = via?.iface ?? r.iface;
          if (iface) match.iface = iface;
          if (r.source) match.source = fromResolved(resolveAddressSpec(r.source, cluster, resolved));
          if (r.dest) match.dest = fromResolved(resolveAddressSpec(r.dest, cluster, resolved));
          if (r.proto) {
            match.proto = r.proto === 'ipv6-icmp' ? 'icmpv6' : r.proto;
            if (isIcmpProto(r.proto)) {
              // ipt_rule_to_cmds: on icmp, dport holds the ICMP type
              if (r.dport !== undefined && r.dport !== '') match.icmpType = r.dport;
            } else if (perlTrue(r.dport)) match.dports = ports(r.dport); // `-dport 0` adds no match (ipt_rule_to_cmds)
            if (perlTrue(r.sport)) match.sports = ports(r.sport);
            if (r.icmpType) match.icmpType = r.icmpType;
          }
          const fam = v ?? (r.proto === 'icmp' ? 4 : r.proto === 'icmpv6' || r.proto === 'ipv6-icmp' ? 6 : undefined);
          if (fam) match.family = fam;
          built.push({ match, verdict: r.action as Verdict, origin, fromFile: true });
        }
        // ruleset_generate_rule: all of a rule's lines or none
        input_.push(...built);
      } catch (e) {
        warnings.push(`${origin}: ${(e as Error).message}`);
      }
    }
  };

  for (const [file, rules] of [['host', host.rules], ['cluster', cluster.rules]] as const) {
    for (const rule of rules) {
      if (!rule.enable || rule.errors) continue;
      if (rule.type === 'group') {
        const g = cluster.groups.get(rule.action);
        if (!g) {
          warnings.push(`no such security group '${rule.action}'`);
          continue;
        }
        const via = { iface: rule.iface, origin: `${short(file)} line ${rule.line ?? '?'}: ${formatRule({ ...rule, comment: undefined })}` };
        for (const gr of g.rules) {
          if (gr.type !== 'in' || !gr.enable || gr.errors) continue;
          emitRule(gr, 'cluster', via);
        }
      } else if (rule.type === 'in') {
        emitRule(rule, file);
      }
    }
  }

  for (const [port, what] of [
    ['8006', 'PVE API'],
    ['5900:5999', 'VNC console'],
    ['3128', 'SPICE proxy'],
    ['22', 'SSH'],
    ['60000:60050', 'migration'],
  ] as const) {
    push({ source: { ...management, include: [...management.include], exclude: [...management.exclude] }, proto: 'tcp', dports: ports(port) }, ACCEPT, `implicit: management tcp/${port} (${what})`);
  }

  if (input.corosyncConf !== undefined) {
    const conf = parseCorosyncConf(input.corosyncConf);
    if (conf.transport === 'udp') {
      push({ destType: 'MULTICAST', proto: 'udp', dports: [[5404, 5405]] }, ACCEPT, 'implicit: corosync multicast udp/5404:5405');
    }
    for (const v of [4, 6] as const) {
      // resolve_hostname_like_corosync: only IP literals here (host names are not resolved)
      const ip = (a: string) => (!a.includes('/') && ipVersion(a) === v ? canonicalCidr(a) : undefined);
      const local = new Map<string, string>();
      for (const n of conf.nodes) {
        if (n.name !== input.nodename) continue;
        for (const [k, a] of n.addresses) {
          const x = ip(a);
          if (x) local.set(k, x);
        }
      }
      for (const n of conf.nodes) {
        if (n.name === input.nodename) continue;
        for (const [k, a] of n.addresses) {
          const peer = ip(a);
          const dest = local.get(k);
          if (!peer || !dest) continue;
          push(
            { family: v, source: set([peer], peer), dest: set([dest], dest), proto: 'udp', dports: [[5404, 5405]] },
            ACCEPT,
            `implicit: corosync ${k} ${n.name} ${peer} -> ${dest}`,
          );
        }
      }
    }
  }

  const policyIn = (cluster.options.get('policy_in') as Verdict | undefined) || 'DROP';
  if (policyIn !== 'ACCEPT') for (const v of [4, 6] as const) input_.push(...policySet(policyIn, v));

  return {
    enabled,
    ...(why ? { disabledBecause: why } : {}),
    input: input_,
    policyIn,
    management,
    localNetwork,
    warnings,
  };
}

// ---------------------------------------------------------------------------
// simulate

function devMatch(pattern: string, dev: string): boolean {
  return pattern.endsWith('+') ? dev.startsWith(pattern.slice(0, -1)) : pattern === dev;
}

function protoMatches(rule: string, pkt: string): boolean {
  if (rule === pkt) return true;
  const a = protocolNumber(rule === 'ipv6-icmp' ? 'icmpv6' : rule);
  const b = protocolNumber(pkt === 'ipv6-icmp' ? 'icmpv6' : pkt);
  return a !== undefined && a === b;
}

function icmpMatches(rule: string, pkt: string | undefined, proto: 'icmp' | 'icmpv6'): boolean {
  if (rule === 'any') return true;
  if (pkt === undefined) return false;
  if (rule === pkt) return true;
  const a = icmpTypeNumber(proto, rule);
  const b = icmpTypeNumber(proto, pkt);
  // a bare number or type name matches every code of that type; named codes only themselves
  return a !== undefined && a === b && (/^\d+$/.test(rule) || /^\d+$/.test(pkt));
}

const inPorts = (p: number | undefined, ranges: readonly PortRange[]) => p !== undefined && ranges.some(([a, b]) => p >= a && p <= b);

function destTypeOf(p: Packet, dest: string | undefined): NonNullable<Packet['destType']> {
  if (p.destType) return p.destType;
  if (!dest) return 'UNICAST';
  if (dest === '255.255.255.255') return 'BROADCAST';
  if (inAddressSet(dest, { include: ['224.0.0.0/4', 'ff00::/8'], exclude: [] })) return 'MULTICAST';
  return 'UNICAST';
}

/** Why a rule does not match the packet, or undefined when it matches. */
function mismatch(m: Match, p: Packet, family: 4 | 6, source: string, dest: string | undefined, destType: string): string | undefined {
  if (m.family && m.family !== family) return `IPv${m.family} only`;
  if (m.iface !== undefined && (p.iface === undefined || !devMatch(m.iface, p.iface))) return `interface is not ${m.iface}`;
  if (m.ctState && !m.ctState.includes(p.ctState ?? 'new')) return `state is not ${m.ctState.join(',')}`;
  if (m.proto !== undefined && !protoMatches(m.proto, p.proto)) return `protocol is not ${m.proto}`;
  if (m.dports && !inPorts(p.dport, m.dports)) return `dport not ${m.dports.map(([a, b]) => (a === b ? a : `${a}:${b}`)).join(',')}`;
  if (m.sports && !inPorts(p.sport, m.sports)) return `sport not ${m.sports.map(([a, b]) => (a === b ? a : `${a}:${b}`)).join(',')}`;
  if (m.icmpType !== undefined) {
    const proto = family === 4 ? 'icmp' : 'icmpv6';
    if (!icmpMatches(m.icmpType, p.icmpType ?? (p.dport !== undefined ? String(p.dport) : undefined), proto)) return `icmp type not ${m.icmpType}`;
  }
  if (m.source && !inAddressSet(source, m.source)) return `source not in ${m.source.label}`;
  if (m.dest && (dest === undefined || !inAddressSet(dest, m.dest))) return `dest not in ${m.dest.label}`;
  if (m.destType && m.destType !== destType) return `dest type is not ${m.destType}`;
  return undefined;
}

/**
 * What the host does with a packet addressed to it: the first rule of
 * fw.input that matches decides, else policy_in. IPv4 and IPv6; an
 * IPv4-mapped source (`::ffff:a.b.c.d`) counts as IPv4. A REJECT goes
 * through PVEFW-reject, which drops instead for ICMP, broadcast
 * destinations and multicast sources, as Proxmox's chain does.
 */
export function simulate(fw: HostFirewall, p: Packet): SimulateResult {
  const trace: string[] = [];
  const source = unmapAddress(p.source);
  const dest = p.dest !== undefined ? unmapAddress(p.dest) : undefined;
  const family = ipVersion(source) ?? (dest !== undefined ? ipVersion(dest) : undefined) ?? 4;
  const destType = destTypeOf(p, dest);
  trace.push(
    `packet: IPv${family} ${p.proto}${p.dport !== undefined ? ` dport ${p.dport}` : ''}${p.sport !== undefined ? ` sport ${p.sport}` : ''} from ${source}${dest ? ` to ${dest}` : ''}${p.iface ? ` on ${p.iface}` : ''} (${p.ctState ?? 'new'}, ${destType})`,
  );
  if (!fw.enabled) {
    trace.push(`firewall disabled (${fw.disabledBecause ?? 'disabled'}): ACCEPT`);
    return { verdict: 'ACCEPT', trace };
  }
  const finish = (v: Verdict, rule?: IrRule): SimulateResult => {
    let verdict = v;
    if (v === 'REJECT') {
      const isIcmp = family === 4 ? protoMatches('icmp', p.proto) : protoMatches('icmpv6', p.proto);
      const v4Silent = family === 4 && (destType === 'BROADCAST' || inAddressSet(source, { include: ['224.0.0.0/4'], exclude: [] }));
      if (isIcmp || v4Silent) {
        verdict = 'DROP';
        trace.push(`PVEFW-reject drops ${isIcmp ? 'ICMP' : 'broadcast/multicast'} instead of rejecting`);
      }
    }
    trace.push(`verdict: ${verdict}`);
    return { verdict, ...(rule ? { decidedBy: rule } : {}), trace };
  };
  for (let i = 0; i < fw.input.length; i++) {
    const rule = fw.input[i]!;
    const why = mismatch(rule.match, p, family, source, dest, destType);
    if (why === undefined) {
      trace.push(`#${i + 1} MATCH ${rule.origin} -> ${rule.verdict}`);
      return finish(rule.verdict, rule);
    }
    trace.push(`#${i + 1} skip  ${rule.origin} (${why})`);
  }
  trace.push(`no rule matched: policy_in ${fw.policyIn}`);
  return finish(fw.policyIn);
}
