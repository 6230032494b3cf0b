/**
 * The Proxmox VE host firewall as plain data: what traffic directed at the
 * node itself meets, in order, once `cluster.fw` and `host.fw` are compiled
 * (pve-firewall's Firewall.pm `enable_host_firewall`). One ordered list of
 * inbound rules ending in the policy, with groups inlined and ipsets and
 * aliases resolved to addresses.
 *
 * Three readers share it: the firewall step's pre-flight (does the operator
 * keep 22 and 8006?), the lab's `pve-firewall simulate`, and the lab's
 * compiler to nftables. Outbound and guest traffic are not modelled.
 */

export type Verdict = 'ACCEPT' | 'DROP' | 'REJECT';

/** Addresses as an ipset holds them: a packet matches when it is in `include` and not in `exclude` (`!` nomatch entries). */
export interface AddressSet {
  /** CIDRs or single addresses, IPv4 and IPv6 mixed, normalised (host bits clear, no /32 or /128). */
  include: string[];
  exclude: string[];
  /** Where the set came from, for traces and comments: `+management`, `local_network`, `10.0.0.0/24`. */
  label: string;
}

/** A port list as Proxmox takes it (`22`, `5900:5999`, `80,443`): inclusive ranges. */
export type PortRange = readonly [from: number, to: number];

export interface Match {
  /** `-i`: the inbound interface name. */
  iface?: string;
  /** `tcp`, `udp`, `icmp`, `icmpv6`, `igmp`, ...; undefined = any. */
  proto?: string;
  dports?: PortRange[];
  sports?: PortRange[];
  /** ICMP type name or number (`echo-request`, `8`), with proto icmp/icmpv6. */
  icmpType?: string;
  source?: AddressSet;
  dest?: AddressSet;
  /** Destination address type, as iptables' addrtype: corosync multicast. */
  destType?: 'UNICAST' | 'MULTICAST' | 'BROADCAST' | 'LOCAL';
  /** Connection-tracking state. */
  ctState?: ('established' | 'related' | 'invalid' | 'new' | 'untracked')[];
  /** Only this IP version (an address set or an ICMP type implies one). */
  family?: 4 | 6;
}

export interface IrRule {
  match: Match;
  verdict: Verdict;
  /** Where it comes from, shown in traces and as the nftables rule comment: `host.fw line 7: IN SSH(ACCEPT)`, `implicit: management tcp/8006`. */
  origin: string;
  /** An administrator's rule (from a file) rather than one Proxmox adds itself. */
  fromFile: boolean;
}

export interface HostFirewall {
  /** cluster `enable` (a timestamp counts for 60 s) and host `enable` both on. */
  enabled: boolean;
  /** Why not, when not: `cluster.fw: enable is 0`, `host.fw: enable: 0`. */
  disabledBecause?: string;
  /** Inbound rules in the order the kernel meets them. */
  input: IrRule[];
  /** What happens to a packet no rule decides (cluster `policy_in`, default DROP). */
  policyIn: Verdict;
  /** The management set after `local_network` is merged in (as Proxmox compiles it). */
  management: AddressSet;
  localNetwork: string;
  /** Parse problems in Proxmox's words (`host.fw (line 3) - errors in rule parameters: ...`); those rules are skipped. */
  warnings: string[];
}

/** A packet directed at the node, as `pve-firewall simulate` takes it. */
export interface Packet {
  source: string;
  dest?: string;
  proto: string;
  dport?: number;
  sport?: number;
  iface?: string;
  icmpType?: string;
  destType?: Match['destType'];
  ctState?: 'new' | 'established' | 'related' | 'invalid';
}

export interface SimulateResult {
  verdict: Verdict;
  /** The rule that decided, or undefined when the policy did. */
  decidedBy?: IrRule;
  trace: string[];
}

/** What the compiler reads: the two files as they are (or would be), and what Proxmox detects on the node. */
export interface CompileInput {
  clusterFw: string | undefined;
  hostFw: string | undefined;
  /** The local network as `pve-firewall localnet` detects it (a CIDR); a `local_network` alias in cluster.fw wins. */
  detectedLocalNetwork: string;
  /** corosync.conf, for the corosync rules between ring addresses; absent on a single node. */
  corosyncConf?: string;
  nodename: string;
  /** Seconds since the epoch, for `enable: <timestamp>` (Proxmox's 60-second anti-lockout). */
  now?: number;
}
