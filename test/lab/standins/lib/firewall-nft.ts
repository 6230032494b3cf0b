/**
 * The lab's pve-firewall stand-in enforces the host firewall with nftables:
 * a HostFirewall (src/pve/firewall-ir.ts) rendered as one `nft -f` script.
 *
 * Like the nftables proxmox-firewall daemon it owns exactly one table,
 * `table inet proxmox-firewall`, and touches nothing else. The script
 * replaces that table atomically (nft applies a file as one transaction:
 * `table X` + `delete table X` + the new table, so no packet ever sees an
 * empty or half-built ruleset). When the firewall is disabled the script
 * only deletes the table: no rules at all, as Proxmox's
 * `remove_pvefw_chains` leaves the host.
 *
 * The input chain: hook input, priority filter, policy accept; the IR's rules
 * in order, each carrying its origin as the rule comment; the cluster's
 * policy_in as the last rule. REJECT is done as Proxmox's PVEFW-reject chain
 * does it: a TCP reset for TCP, an ICMP "administratively prohibited"
 * otherwise. Address sets become named sets, IPv4 and IPv6 apart (an `inet`
 * set holds one address type), their `!` nomatch entries a second set the
 * rule excludes (`ip saddr @x ip saddr != @x-nomatch`), the way
 * proxmox-firewall names them (`v4-dc/management`, `v4-dc/management-nomatch`).
 *
 * Simplified: outbound and forward chains, logging, conntrack helpers and
 * the guests' bridge table are not rendered (the IR models host-directed
 * inbound traffic only).
 */
import { createHash } from 'node:crypto';
import type { AddressSet, HostFirewall, IrRule, Match, PortRange, Verdict } from '../../../../src/pve/firewall-ir.ts';

export const NFT_FAMILY = 'inet';
export const NFT_TABLE = 'proxmox-firewall';
export const NFT_TABLE_REF = `${NFT_FAMILY} ${NFT_TABLE}`;

/** nft refuses comments longer than 128 bytes (NFTNL_UDATA_COMMENT_MAXLEN). */
const COMMENT_MAX = 128;

/** Script that removes the table whether or not it exists (`table` creates it if missing, so `delete` cannot fail). */
export function nftRemoveScript(): string {
  return `table ${NFT_TABLE_REF}\ndelete table ${NFT_TABLE_REF}\n`;
}

/** sha256 of a script, for "has what is applied changed" */
export function scriptHash(script: string): string {
  return createHash('sha256').update(script).digest('hex');
}

/** A string nft reads back as it was: printable ASCII, no double quote, at most 128 bytes. */
export function nftString(s: string): string {
  let out = s.replace(/"/g, "'").replace(/[^\x20-\x7e]/g, '?');
  if (out.length > COMMENT_MAX) out = `${out.slice(0, COMMENT_MAX - 3)}...`;
  return `"${out}"`;
}

type Family = 4 | 6;

const familyOf = (addr: string): Family => (addr.includes(':') ? 6 : 4);

function entries(list: string[], fam: Family): string[] {
  return list.filter((a) => familyOf(a) === fam);
}

/** The families a set can match: those with at least one included entry. */
function setFamilies(set: AddressSet): Family[] {
  return ([4, 6] as const).filter((f) => entries(set.include, f).length > 0);
}

// --- ICMP types: iptables' names (what Proxmox's `-icmp-type` takes) as type[/code] numbers ---

const ICMP4: Record<string, string> = {
  'echo-reply': '0', 'destination-unreachable': '3', 'network-unreachable': '3/0', 'host-unreachable': '3/1',
  'protocol-unreachable': '3/2', 'port-unreachable': '3/3', 'fragmentation-needed': '3/4', 'source-route-failed': '3/5',
  'network-unknown': '3/6', 'host-unknown': '3/7', 'network-prohibited': '3/9', 'host-prohibited': '3/10',
  'tos-network-unreachable': '3/11', 'tos-host-unreachable': '3/12', 'communication-prohibited': '3/13',
  'host-precedence-violation': '3/14', 'precedence-cutoff': '3/15', 'source-quench': '4', redirect: '5',
  'network-redirect': '5/0', 'host-redirect': '5/1', 'tos-network-redirect': '5/2', 'tos-host-redirect': '5/3',
  'echo-request': '8', 'router-advertisement': '9', 'router-solicitation': '10', 'time-exceeded': '11',
  'ttl-zero-during-transit': '11/0', 'ttl-zero-during-reassembly': '11/1', 'parameter-problem': '12',
  'ip-header-bad': '12/0', 'required-option-missing': '12/1', 'timestamp-request': '13', 'timestamp-reply': '14',
  'address-mask-request': '17', 'address-mask-reply': '18',
};

const ICMP6: Record<string, string> = {
  'destination-unreachable': '1', 'no-route': '1/0', 'communication-prohibited': '1/1', 'beyond-scope': '1/2',
  'address-unreachable': '1/3', 'port-unreachable': '1/4', 'failed-policy': '1/5', 'reject-route': '1/6',
  'packet-too-big': '2', 'time-exceeded': '3', 'ttl-zero-during-transit': '3/0', 'ttl-zero-during-reassembly': '3/1',
  'parameter-problem': '4', 'bad-header': '4/0', 'unknown-header-type': '4/1', 'unknown-option': '4/2',
  'echo-request': '128', 'echo-reply': '129', 'router-solicitation': '133', 'router-advertisement': '134',
  'neighbour-solicitation': '135', 'neighbor-solicitation': '135', 'neighbour-advertisement': '136',
  'neighbor-advertisement': '136', redirect: '137',
};

function icmpMatch(proto: 'icmp' | 'icmpv6', type: string): string {
  const table = proto === 'icmp' ? ICMP4 : ICMP6;
  const num = /^\d+(\/\d+)?$/.test(type) ? type : table[type.toLowerCase()];
  if (num === undefined || type.toLowerCase() === 'any') return '';
  const [t, c] = num.split('/');
  return `${proto} type ${t}${c !== undefined ? ` ${proto} code ${c}` : ''}`;
}

// --- protocols: nft keywords for the common ones, numbers otherwise (no /etc/protocols needed) ---

const PROTO_NUM: Record<string, number> = {
  icmp: 1, igmp: 2, ipencap: 4, tcp: 6, egp: 8, udp: 17, ipv6: 41, gre: 47, esp: 50, ah: 51,
  'ipv6-icmp': 58, icmpv6: 58, ospf: 89, pim: 103, vrrp: 112, l2tp: 115, sctp: 132, udplite: 136,
};

function l4proto(proto: string): string {
  const p = proto.toLowerCase();
  if (p === 'tcp' || p === 'udp' || p === 'icmp') return p;
  if (p === 'icmpv6' || p === 'ipv6-icmp') return 'ipv6-icmp';
  return String(PROTO_NUM[p] ?? p);
}

const portList = (ports: PortRange[]): string => {
  const items = ports.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`));
  return items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`;
};

// --- sets ---

interface NamedSet {
  /** base name without the `v4-` / `v6-` prefix */
  base: string;
  set: AddressSet;
  used: Set<string>; // `v4`, `v6`, `v4-nomatch`, `v6-nomatch`
}

class SetRegistry {
  private byKey = new Map<string, NamedSet>();
  private names = new Set<string>();
  private counter = 0;

  get(set: AddressSet): NamedSet {
    const key = JSON.stringify([set.label, [...set.include].sort(), [...set.exclude].sort()]);
    let named = this.byKey.get(key);
    if (!named) {
      // `+management` -> dc/management (proxmox-firewall's datacenter ipset names); literals get a number
      const m = /^\+?([A-Za-z][A-Za-z0-9_-]*)$/.exec(set.label);
      let base = m ? `dc/${m[1]!.toLowerCase()}` : `addr${++this.counter}`;
      if (this.names.has(base)) base = `${base}-${++this.counter}`;
      this.names.add(base);
      named = { base, set, used: new Set() };
      this.byKey.set(key, named);
    }
    return named;
  }

  all(): NamedSet[] {
    return [...this.byKey.values()];
  }
}

function addrMatch(reg: SetRegistry, dir: 'saddr' | 'daddr', set: AddressSet, fam: Family): string[] {
  const named = reg.get(set);
  const v = `v${fam}`;
  const ip = fam === 4 ? 'ip' : 'ip6';
  named.used.add(v);
  const out = [`${ip} ${dir} @${v}-${named.base}`];
  if (entries(set.exclude, fam).length > 0) {
    named.used.add(`${v}-nomatch`);
    out.push(`${ip} ${dir} != @${v}-${named.base}-nomatch`);
  }
  return out;
}

function renderSet(name: string, fam: Family, list: string[], label: string): string {
  const lines = [
    `\tset ${name} {`,
    `\t\ttype ${fam === 4 ? 'ipv4_addr' : 'ipv6_addr'}`,
    '\t\tflags interval',
    '\t\tauto-merge',
    `\t\tcomment ${nftString(label)}`,
  ];
  if (list.length > 0) lines.push(`\t\telements = { ${list.join(', ')} }`);
  lines.push('\t}');
  return lines.join('\n');
}

// --- rules ---

/** The families a rule must be written for; undefined = one rule for both. */
function ruleFamilies(m: Match): Family[] | undefined {
  if (!m.source && !m.dest) return m.family ? [m.family] : undefined;
  let fams: Family[] = m.family ? [m.family] : [4, 6];
  for (const s of [m.source, m.dest]) if (s) fams = fams.filter((f) => setFamilies(s).includes(f));
  // nothing can match (an empty set, or v4 against v6): still write the rule once, its empty set matches nothing
  if (fams.length === 0) fams = [m.family ?? 4];
  return fams;
}

function matchExprs(reg: SetRegistry, m: Match, fam: Family | undefined): string[] {
  const out: string[] = [];
  if (m.iface) out.push(`iifname ${nftString(m.iface.replace(/\+$/, '*'))}`);
  if (fam !== undefined && !m.source && !m.dest) out.push(`meta nfproto ${fam === 4 ? 'ipv4' : 'ipv6'}`);
  if (m.source && fam !== undefined) out.push(...addrMatch(reg, 'saddr', m.source, fam));
  if (m.dest && fam !== undefined) out.push(...addrMatch(reg, 'daddr', m.dest, fam));
  if (m.destType) out.push(`fib daddr type ${m.destType.toLowerCase()}`);
  if (m.ctState?.length) out.push(`ct state ${m.ctState.length === 1 ? m.ctState[0] : `{ ${m.ctState.join(', ')} }`}`);
  const proto = m.proto ? l4proto(m.proto) : undefined;
  const hasPorts = !!(m.dports?.length || m.sports?.length);
  if (proto === 'tcp' || proto === 'udp') {
    if (m.sports?.length) out.push(`${proto} sport ${portList(m.sports)}`);
    if (m.dports?.length) out.push(`${proto} dport ${portList(m.dports)}`);
    if (!hasPorts) out.push(`meta l4proto ${proto}`);
  } else if (proto === 'icmp' || proto === 'ipv6-icmp') {
    const name = proto === 'icmp' ? 'icmp' : 'icmpv6';
    const t = m.icmpType ? icmpMatch(name, m.icmpType) : '';
    out.push(t || `meta l4proto ${proto}`);
  } else if (proto !== undefined) {
    out.push(`meta l4proto ${proto}`);
    if (m.sports?.length) out.push(`th sport ${portList(m.sports)}`);
    if (m.dports?.length) out.push(`th dport ${portList(m.dports)}`);
  } else if (hasPorts) {
    // ports without a protocol: any protocol with ports (Proxmox requires -p with ports; the IR may not)
    out.push('meta l4proto { tcp, udp, sctp, udplite }');
    if (m.sports?.length) out.push(`th sport ${portList(m.sports)}`);
    if (m.dports?.length) out.push(`th dport ${portList(m.dports)}`);
  }
  return out;
}

/** The statements for a verdict; REJECT without a known protocol needs two rules (TCP reset, else ICMP). */
function verdictVariants(verdict: Verdict, proto: string | undefined): { extra: string; stmt: string }[] {
  if (verdict === 'ACCEPT') return [{ extra: '', stmt: 'accept' }];
  if (verdict === 'DROP') return [{ extra: '', stmt: 'drop' }];
  const p = proto ? l4proto(proto) : undefined;
  if (p === 'tcp') return [{ extra: '', stmt: 'reject with tcp reset' }];
  if (p !== undefined) return [{ extra: '', stmt: 'reject with icmpx admin-prohibited' }];
  return [
    { extra: 'meta l4proto tcp', stmt: 'reject with tcp reset' },
    { extra: '', stmt: 'reject with icmpx admin-prohibited' },
  ];
}

function renderRule(reg: SetRegistry, rule: IrRule): string[] {
  const lines: string[] = [];
  const fams = ruleFamilies(rule.match);
  for (const fam of fams ?? [undefined]) {
    const exprs = matchExprs(reg, rule.match, fam);
    for (const v of verdictVariants(rule.verdict, rule.match.proto)) {
      const parts = [...exprs, ...(v.extra ? [v.extra] : []), v.stmt, `comment ${nftString(rule.origin)}`];
      lines.push(`\t\t${parts.join(' ')}`);
    }
  }
  return lines;
}

/**
 * The `nft -f` script for a compiled host firewall: replaces `table inet
 * proxmox-firewall` as one transaction, or only deletes it when the firewall
 * is disabled.
 */
export function renderNftScript(fw: HostFirewall): string {
  const head = `# pve-firewall (pve-baseline lab): host firewall, inbound\n${nftRemoveScript()}`;
  if (!fw.enabled) return `${head}# firewall disabled${fw.disabledBecause ? `: ${fw.disabledBecause.replace(/\n/g, ' ')}` : ''}\n`;
  const reg = new SetRegistry();
  const ruleLines: string[] = [];
  for (const rule of fw.input) ruleLines.push(...renderRule(reg, rule));
  ruleLines.push(
    ...renderRule(reg, { match: {}, verdict: fw.policyIn, origin: `policy_in ${fw.policyIn}`, fromFile: false }),
  );
  const setBlocks: string[] = [];
  for (const named of reg.all()) {
    for (const fam of [4, 6] as const) {
      const v = `v${fam}`;
      if (named.used.has(v)) setBlocks.push(renderSet(`${v}-${named.base}`, fam, entries(named.set.include, fam), named.set.label));
      if (named.used.has(`${v}-nomatch`)) {
        setBlocks.push(renderSet(`${v}-${named.base}-nomatch`, fam, entries(named.set.exclude, fam), `${named.set.label} nomatch`));
      }
    }
  }
  return [
    head.trimEnd(),
    `table ${NFT_TABLE_REF} {`,
    ...setBlocks,
    '\tchain input {',
    '\t\ttype filter hook input priority filter; policy accept;',
    ...ruleLines,
    '\t}',
    '}',
    '',
  ].join('\n');
}
