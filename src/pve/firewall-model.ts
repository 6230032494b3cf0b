/**
 * cluster.fw and host.fw as the firewall step edits them: the same edits the
 * pvesh calls make (an ipset, its entries, a rule, options), so each call's
 * expected file can be shown and checked before it runs. Parsing and writing
 * are Proxmox's (src/pve/firewall-rules.ts); plain data, no I/O.
 */
import { formatFirewallFile, formatRule, normaliseCidr, optionsDigest, parseFirewallFile, type FwRule, type ParsedFirewall } from './firewall-rules.ts';

export type FirewallFileKind = 'cluster' | 'host';

export function FIREWALL_FILES(node: string): Record<FirewallFileKind, string> {
  return { cluster: '/etc/pve/firewall/cluster.fw', host: `/etc/pve/nodes/${node}/host.fw` };
}

/** What the step's own rules and entries say in their comment, so it can tell them from the administrator's. */
export const OURS = 'pve-baseline';

export interface PingRule {
  /** Position in cluster.fw's [RULES], as pvesh numbers them. */
  pos: number;
  source: string | undefined;
  ours: boolean;
  text: string;
}

export interface DocumentRule {
  file: string;
  rule: string;
  comment?: string;
}

export interface FirewallModel {
  /** The file as the calls so far leave it (the original text until something changed it). */
  text(file: FirewallFileKind): string | null;
  /** An option as written; cluster `enable` gives a timestamp as the timestamp. */
  option(file: FirewallFileKind, key: string): string | undefined;
  setOption(file: FirewallFileKind, key: string, value: string): void;
  /** The digest GET .../firewall/options returns, which PUT checks. */
  digest(file: FirewallFileKind): string;
  /** The cluster firewall is on now (1, or a timestamp inside Proxmox's 60 s). */
  clusterEnabled(): boolean;
  hasIpset(name: string): boolean;
  ipsetHas(name: string, cidr: string): boolean;
  addIpset(name: string, comment: string): void;
  addIpsetEntry(name: string, cidr: string, comment: string): void;
  pingRule(): PingRule | undefined;
  addPingRule(source: string | undefined, comment: string): void;
  deleteRule(pos: number): void;
  rulesForDocument(): DocumentRule[];
}

export function firewallModel(clusterText: string | null, hostText: string | null, now?: number): FirewallModel {
  const opts = now === undefined ? {} : { now };
  const cluster = parseFirewallFile(clusterText ?? undefined, 'cluster', undefined, opts);
  const host = parseFirewallFile(hostText ?? undefined, 'host', undefined, { ...opts, cluster });
  const parsed: Record<FirewallFileKind, ParsedFirewall> = { cluster, host };
  const original: Record<FirewallFileKind, string | null> = { cluster: clusterText, host: hostText };
  const changed: Record<FirewallFileKind, boolean> = { cluster: false, host: false };
  const touch = (file: FirewallFileKind) => (changed[file] = true);
  const same = (a: string, b: string) => {
    try {
      return normaliseCidr(a) === normaliseCidr(b);
    } catch {
      return a === b;
    }
  };
  const isPing = (r: FwRule) => r.type === 'in' && r.enable === 1 && r.macro?.toLowerCase() === 'ping' && r.action === 'ACCEPT' && !r.iface && !r.dest && !r.errors;

  return {
    text: (file) => (changed[file] ? formatFirewallFile(parsed[file]) : original[file]),
    option(file, key) {
      if (file === 'cluster' && key === 'enable' && cluster.enableTimestamp !== undefined) return String(cluster.enableTimestamp);
      return parsed[file].options.get(key);
    },
    setOption(file, key, value) {
      parsed[file].options.set(key, value);
      if (file === 'cluster' && key === 'enable') delete cluster.enableTimestamp;
      touch(file);
    },
    digest: (file) => optionsDigest(parsed[file].options),
    clusterEnabled: () => Number(cluster.options.get('enable') ?? '0') >= 1,
    hasIpset: (name) => cluster.ipsets.has(name.toLowerCase()),
    ipsetHas: (name, cidr) => (cluster.ipsets.get(name.toLowerCase())?.entries ?? []).some((e) => !e.nomatch && !e.errors && same(e.cidr, cidr)),
    addIpset(name, comment) {
      cluster.ipsets.set(name.toLowerCase(), { name: name.toLowerCase(), comment, entries: [] });
      touch('cluster');
    },
    addIpsetEntry(name, cidr, comment) {
      const set = cluster.ipsets.get(name.toLowerCase());
      if (!set) throw new Error(`no ipset ${name}`);
      // IPSet.pm create_ip: normalised, put first
      set.entries.unshift({ cidr: normaliseCidr(cidr), comment });
      touch('cluster');
    },
    pingRule() {
      const found = cluster.rules.map((r, pos) => ({ r, pos })).filter(({ r }) => isPing(r));
      const pick = found.find(({ r }) => r.comment?.startsWith(OURS)) ?? found[0];
      return pick ? { pos: pick.pos, source: pick.r.source, ours: pick.r.comment?.startsWith(OURS) ?? false, text: formatRule(pick.r) } : undefined;
    },
    addPingRule(source, comment) {
      // Rules.pm create_rule without pos: the new rule goes first
      cluster.rules.unshift({ type: 'in', action: 'ACCEPT', macro: 'Ping', ...(source ? { source } : {}), enable: 1, comment });
      touch('cluster');
    },
    deleteRule(pos) {
      cluster.rules.splice(pos, 1);
      touch('cluster');
    },
    rulesForDocument() {
      const row = (file: string, r: FwRule, iface = true): DocumentRule => {
        const { comment, ...rest } = r;
        return { file, rule: formatRule(rest, iface), ...(comment ? { comment } : {}) };
      };
      return [
        ...host.rules.map((r) => row('host.fw', r)),
        ...cluster.rules.map((r) => row('cluster.fw', r)),
        ...[...cluster.groups.values()].flatMap((g) => g.rules.map((r) => row(`cluster.fw [group ${g.name}]`, r, false))),
      ];
    },
  };
}

export interface Peer {
  name: string;
  address: string;
}

/**
 * The other nodes of the cluster and their first ring address, from
 * corosync.conf's nodelist (`node { name: X ... ring0_addr: A }`). Ring
 * addresses given as host names are left out: they need resolving.
 */
export function ringPeers(corosyncConf: string, self: string): Peer[] {
  const peers: Peer[] = [];
  for (const block of corosyncConf.split(/\bnode\s*\{/).slice(1)) {
    const body = block.split('}')[0] ?? '';
    const name = /^\s*name:\s*(\S+)/m.exec(body)?.[1];
    const ring = /^\s*ring0_addr:\s*(\S+)/m.exec(body)?.[1];
    if (!name || !ring || name === self) continue;
    if (/^[0-9.]+$/.test(ring) || ring.includes(':')) peers.push({ name, address: ring });
  }
  return peers;
}
