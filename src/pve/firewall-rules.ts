/**
 * The whole Proxmox VE firewall file, cluster.fw or host.fw, as pve-firewall's
 * Firewall.pm reads and writes it: [OPTIONS], [ALIASES], [IPSET name],
 * [RULES], [group name]. Plain data, no I/O (node:crypto only for digests).
 *
 * Followed sub by sub: generic_fw_config_parser, parse_clusterfw_option,
 * parse_hostfw_option, parse_alias, parse_fw_rule, verify_rule,
 * parse_address_list, parse_port_name_number_or_range, save_clusterfw_conf /
 * save_hostfw_conf ($format_options, $format_aliases, $format_ipsets,
 * $format_rules), copy_list_with_digest / copy_opject_with_digest, and the
 * API's CIDR handling (IPSet.pm create_ip: clean_cidr + parse_ip_or_cidr).
 *
 * Where a table comes from the node (/etc/services, /etc/protocols) it is
 * Debian netbase's, copied in below.
 */
import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';

export type FwFileKind = 'cluster' | 'host';

/** A rule as parse_fw_rule / verify_rule leave it (the API's field names, `icmp-type` as icmpType). */
export interface FwRule {
  /** `in`, `out`, `forward` or `group` (lower case, as Proxmox keeps it). */
  type: string;
  /** ACCEPT, DROP, REJECT, or the security group name for `group`. */
  action: string;
  /** The macro's preferred spelling (`ssh(ACCEPT)` is kept as `SSH`). */
  macro?: string;
  iface?: string;
  source?: string;
  dest?: string;
  proto?: string;
  dport?: string;
  sport?: string;
  log?: string;
  icmpType?: string;
  comment?: string;
  /** 1, or 0 for a rule written with a leading `|`. */
  enable: number;
  /** Set by verify_rule from the addresses, aliases or ICMP protocol. */
  ipversion?: 4 | 6;
  /** verify_rule's errors, by parameter: such a rule is kept in the file but never compiled. */
  errors?: Record<string, string>;
  /** 1-based line in the file it was read from. */
  line?: number;
}

export interface FwIpsetEntry {
  /** As written (an alias name stays an alias name). */
  cidr: string;
  nomatch?: boolean;
  comment?: string;
  errors?: Record<string, string>;
}

export interface FwIpset {
  /** Lower case: generic_fw_config_parser lower-cases the section name. */
  name: string;
  comment?: string;
  entries: FwIpsetEntry[];
}

export interface FwAlias {
  /** As written; the map key is the lower-cased name. */
  name: string;
  /** /32 and /128 stripped (parse_ip_or_cidr). */
  cidr: string;
  ipversion: 4 | 6;
  comment?: string;
}

export interface FwGroup {
  name: string;
  comment?: string;
  rules: FwRule[];
}

export interface ParsedFirewall {
  kind: FwFileKind;
  /** Values as Proxmox's option parsers return them (`int()`ed numbers, upper-case policies). */
  options: Map<string, string>;
  /** Cluster `enable` above 1 as written: a timestamp (options then hold 0 once it is more than 60 s old). */
  enableTimestamp?: number;
  /** By lower-cased name. Empty for host.fw (it has no [ALIASES]). */
  aliases: Map<string, FwAlias>;
  /** By lower-cased name, in file order. Empty for host.fw. */
  ipsets: Map<string, FwIpset>;
  rules: FwRule[];
  /** Security groups by lower-cased name (cluster.fw only). */
  groups: Map<string, FwGroup>;
  /** What pve-firewall prints (on the CLI: `compile`) for this file, in its words, one entry per problem. */
  warnings: string[];
}

export interface ParseOptions {
  /** For host.fw: the parsed cluster.fw its rules may reference (ipsets, aliases); default an empty one. */
  cluster?: ParsedFirewall;
  /** Seconds since the epoch, for cluster `enable: <timestamp>`; default now. */
  now?: number;
}

// ---------------------------------------------------------------------------
// tables (Firewall.pm)

/** [description, [proto, dport?, sport?][]] as in Firewall.pm $pve_fw_macros (imported from shorewall) */
type MacroDef = [desc: string, rules: [proto: string, dport?: string, sport?: string][]];

const MACROS_V4: Record<string, MacroDef> = {
  Amanda: ['Amanda Backup', [['udp', '10080'], ['tcp', '10080']]],
  Auth: ['Auth (identd) traffic', [['tcp', '113']]],
  BGP: ['Border Gateway Protocol traffic', [['tcp', '179']]],
  BitTorrent: ['BitTorrent traffic for BitTorrent 3.1 and earlier', [['tcp', '6881:6889'], ['udp', '6881']]],
  BitTorrent32: ['BitTorrent traffic for BitTorrent 3.2 and later', [['tcp', '6881:6999'], ['udp', '6881']]],
  CVS: ['Concurrent Versions System pserver traffic', [['tcp', '2401']]],
  Ceph: ['Ceph Storage Cluster traffic (Ceph Monitors, OSD & MDS Daemons)', [['tcp', '6789'], ['tcp', '3300'], ['tcp', '6800:7300']]],
  Citrix: ['Citrix/ICA traffic (ICA, ICA Browser, CGP)', [['tcp', '1494'], ['udp', '1604'], ['tcp', '2598']]],
  DAAP: ['Digital Audio Access Protocol traffic (iTunes, Rythmbox daemons)', [['tcp', '3689'], ['udp', '3689']]],
  DCC: ['Distributed Checksum Clearinghouse spam filtering mechanism', [['tcp', '6277']]],
  DHCPfwd: ['Forwarded DHCP traffic', [['udp', '67:68', '67:68']]],
  DNS: ['Domain Name System traffic (upd and tcp)', [['udp', '53'], ['tcp', '53']]],
  Distcc: ['Distributed Compiler service', [['tcp', '3632']]],
  FTP: ['File Transfer Protocol', [['tcp', '21']]],
  Finger: ['Finger protocol (RFC 742)', [['tcp', '79']]],
  GNUnet: ['GNUnet secure peer-to-peer networking traffic', [['tcp', '2086'], ['udp', '2086'], ['tcp', '1080'], ['udp', '1080']]],
  GRE: ['Generic Routing Encapsulation tunneling protocol', [['47']]],
  Git: ['Git distributed revision control traffic', [['tcp', '9418']]],
  HKP: ['OpenPGP HTTP key server protocol traffic', [['tcp', '11371']]],
  HTTP: ['Hypertext Transfer Protocol (WWW)', [['tcp', '80']]],
  HTTPS: ['Hypertext Transfer Protocol (WWW) over SSL', [['tcp', '443']]],
  ICPV2: ['Internet Cache Protocol V2 (Squid) traffic', [['udp', '3130']]],
  ICQ: ['AOL Instant Messenger traffic', [['tcp', '5190']]],
  IMAP: ['Internet Message Access Protocol', [['tcp', '143']]],
  IMAPS: ['Internet Message Access Protocol over SSL', [['tcp', '993']]],
  IPIP: ['IPIP capsulation traffic', [['94']]],
  IPsec: ['IPsec traffic', [['udp', '500', '500'], ['50']]],
  IPsecah: ['IPsec authentication (AH) traffic', [['udp', '500', '500'], ['51']]],
  IPsecnat: ['IPsec traffic and Nat-Traversal', [['udp', '500'], ['udp', '4500'], ['50']]],
  IRC: ['Internet Relay Chat traffic', [['tcp', '6667']]],
  Jetdirect: ['HP Jetdirect printing', [['tcp', '9100']]],
  L2TP: ['Layer 2 Tunneling Protocol traffic', [['udp', '1701']]],
  LDAP: ['Lightweight Directory Access Protocol traffic', [['tcp', '389']]],
  LDAPS: ['Secure Lightweight Directory Access Protocol traffic', [['tcp', '636']]],
  MDNS: ['Multicast DNS', [['udp', '5353']]],
  MSNP: ['Microsoft Notification Protocol', [['tcp', '1863']]],
  MSSQL: ['Microsoft SQL Server', [['tcp', '1433']]],
  Mail: ['Mail traffic (SMTP, SMTPS, Submission)', [['tcp', '25'], ['tcp', '465'], ['tcp', '587']]],
  Munin: ['Munin networked resource monitoring traffic', [['tcp', '4949']]],
  MySQL: ['MySQL server', [['tcp', '3306']]],
  NNTP: ['NNTP traffic (Usenet).', [['tcp', '119']]],
  NNTPS: ['Encrypted NNTP traffic (Usenet)', [['tcp', '563']]],
  NTP: ['Network Time Protocol (ntpd)', [['udp', '123']]],
  OSPF: ['OSPF multicast traffic', [['89']]],
  OpenVPN: ['OpenVPN traffic', [['udp', '1194']]],
  PCA: ['Symantec PCAnywere (tm)', [['udp', '5632'], ['tcp', '5631']]],
  PMG: ['Proxmox Mail Gateway web interface', [['tcp', '8006']]],
  POP3: ['POP3 traffic', [['tcp', '110']]],
  POP3S: ['Encrypted POP3 traffic', [['tcp', '995']]],
  PPtP: ['Point-to-Point Tunneling Protocol', [['47'], ['tcp', '1723']]],
  Ping: ['ICMP echo request', [['icmp', 'echo-request']]],
  PostgreSQL: ['PostgreSQL server', [['tcp', '5432']]],
  Printer: ['Line Printer protocol printing', [['tcp', '515']]],
  RDP: ['Microsoft Remote Desktop Protocol traffic', [['tcp', '3389']]],
  RIP: ['Routing Information Protocol (bidirectional)', [['udp', '520']]],
  RNDC: ['BIND remote management protocol', [['tcp', '953']]],
  Razor: ['Razor Antispam System', [['tcp', '2703']]],
  Rdate: ['Remote time retrieval (rdate)', [['tcp', '37']]],
  Rsync: ['Rsync server', [['tcp', '873']]],
  SANE: ['SANE network scanning', [['tcp', '6566']]],
  SMB: ['Microsoft SMB traffic', [['udp', '135,445'], ['udp', '137:139'], ['udp', '1024:65535', '137'], ['tcp', '135,139,445']]],
  SMBswat: ['Samba Web Administration Tool', [['tcp', '901']]],
  SMTP: ['Simple Mail Transfer Protocol', [['tcp', '25']]],
  SMTPS: ['Encrypted Simple Mail Transfer Protocol', [['tcp', '465']]],
  SNMP: ['Simple Network Management Protocol', [['udp', '161:162'], ['tcp', '161']]],
  SPAMD: ['Spam Assassin SPAMD traffic', [['tcp', '783']]],
  SPICEproxy: ['Proxmox VE SPICE display proxy traffic', [['tcp', '3128']]],
  SSH: ['Secure shell traffic', [['tcp', '22']]],
  SVN: ['Subversion server (svnserve)', [['tcp', '3690']]],
  SixXS: ['SixXS IPv6 Deployment and Tunnel Broker', [['tcp', '3874'], ['udp', '3740'], ['41'], ['udp', '5072,8374']]],
  Squid: ['Squid web proxy traffic', [['tcp', '3128']]],
  Submission: ['Mail message submission traffic', [['tcp', '587']]],
  Syslog: ['Syslog protocol (RFC 5424) traffic', [['udp', '514'], ['tcp', '514']]],
  TFTP: ['Trivial File Transfer Protocol traffic', [['udp', '69']]],
  Telnet: ['Telnet traffic', [['tcp', '23']]],
  Telnets: ['Telnet over SSL', [['tcp', '992']]],
  Time: ['RFC 868 Time protocol', [['tcp', '37']]],
  Trcrt: ['Traceroute (for up to 30 hops) traffic', [['udp', '33434:33524'], ['icmp', 'echo-request']]],
  VNC: ['VNC traffic for VNC display\'s 0 - 99', [['tcp', '5900:5999']]],
  VNCL: ['VNC traffic from Vncservers to Vncviewers in listen mode', [['tcp', '5500']]],
  Web: ['WWW traffic (HTTP and HTTPS)', [['tcp', '80'], ['tcp', '443']]],
  Webcache: ['Web Cache/Proxy traffic (port 8080)', [['tcp', '8080']]],
  Webmin: ['Webmin traffic', [['tcp', '10000']]],
  Whois: ['Whois (nicname, RFC 3912) traffic', [['tcp', '43']]],
};

const MACROS_V6: Record<string, MacroDef> = {
  DHCPv6: ['DHCPv6 traffic', [['udp', '546:547', '546:547']]],
  NeighborDiscovery: ['IPv6 neighbor solicitation, neighbor and router advertisement', [['icmpv6', 'router-solicitation'], ['icmpv6', 'router-advertisement'], ['icmpv6', 'neighbor-solicitation'], ['icmpv6', 'neighbor-advertisement']]],
  Ping: ['', [['icmpv6', 'echo-request']]],
  Trcrt: ['', [['udp', '33434:33524'], ['icmpv6', 'echo-request']]],
};

/** /etc/services (Debian netbase) first-column names: Firewall.pm get_etc_services reads only those. */
const SERVICES: Record<string, number> = Object.fromEntries(
  'tcpmux=1 echo=7 discard=9 systat=11 daytime=13 netstat=15 qotd=17 chargen=19 ftp-data=20 ftp=21 fsp=21 ssh=22 telnet=23 smtp=25 time=37 whois=43 tacacs=49 domain=53 bootps=67 bootpc=68 tftp=69 gopher=70 finger=79 http=80 kerberos=88 iso-tsap=102 acr-nema=104 pop3=110 sunrpc=111 auth=113 nntp=119 ntp=123 epmap=135 netbios-ns=137 netbios-dgm=138 netbios-ssn=139 imap2=143 snmp=161 snmp-trap=162 cmip-man=163 cmip-agent=164 mailq=174 xdmcp=177 bgp=179 smux=199 qmtp=209 z3950=210 ipx=213 ptp-event=319 ptp-general=320 pawserv=345 zserv=346 rpc2portmap=369 codaauth2=370 clearcase=371 ldap=389 svrloc=427 https=443 snpp=444 microsoft-ds=445 kpasswd=464 submissions=465 saft=487 isakmp=500 rtsp=554 nqs=607 asf-rmcp=623 qmqp=628 ipp=631 ldp=646 exec=512 biff=512 login=513 who=513 shell=514 syslog=514 printer=515 talk=517 ntalk=518 route=520 gdomap=538 uucp=540 klogin=543 kshell=544 dhcpv6-client=546 dhcpv6-server=547 afpovertcp=548 nntps=563 submission=587 ldaps=636 tinc=655 silc=706 kerberos-adm=749 domain-s=853 rsync=873 ftps-data=989 ftps=990 telnets=992 imaps=993 pop3s=995 socks=1080 proofd=1093 rootd=1094 openvpn=1194 rmiregistry=1099 lotusnote=1352 ms-sql-s=1433 ms-sql-m=1434 ingreslock=1524 datametrics=1645 sa-msg-port=1646 kermit=1649 groupwise=1677 l2f=1701 radius=1812 radius-acct=1813 cisco-sccp=2000 nfs=2049 gnunet=2086 rtcm-sc104=2101 gsigatekeeper=2119 gris=2135 cvspserver=2401 venus=2430 venus-se=2431 codasrv=2432 codasrv-se=2433 mon=2583 dict=2628 f5-globalsite=2792 gsiftp=2811 gpsd=2947 gds-db=3050 icpv2=3130 isns=3205 iscsi-target=3260 mysql=3306 ms-wbt-server=3389 nut=3493 distcc=3632 daap=3689 svn=3690 suucp=4031 sysrqd=4094 sieve=4190 epmd=4369 remctl=4373 f5-iquery=4353 ntske=4460 ipsec-nat-t=4500 iax=4569 mtn=4691 radmin-port=4899 sip=5060 sip-tls=5061 xmpp-client=5222 xmpp-server=5269 cfengine=5308 mdns=5353 postgresql=5432 freeciv=5556 amqps=5671 amqp=5672 x11=6000 x11-1=6001 x11-2=6002 x11-3=6003 x11-4=6004 x11-5=6005 x11-6=6006 x11-7=6007 gnutella-svc=6346 gnutella-rtr=6347 redis=6379 sge-qmaster=6444 sge-execd=6445 mysql-proxy=6446 babel=6696 ircs-u=6697 bbs=7000 afs3-fileserver=7000 afs3-callback=7001 afs3-prserver=7002 afs3-vlserver=7003 afs3-kaserver=7004 afs3-volser=7005 afs3-bos=7007 afs3-update=7008 afs3-rmtsys=7009 font-service=7100 http-alt=8080 puppet=8140 bacula-dir=9101 bacula-fd=9102 bacula-sd=9103 xmms2=9667 nbd=10809 zabbix-agent=10050 zabbix-trapper=10051 amanda=10080 dicom=11112 hkp=11371 db-lsp=17500 dcap=22125 gsidcap=22128 wnn6=22273 kerberos4=750 kerberos-master=751 passwd-server=752 krb-prop=754 zephyr-srv=2102 zephyr-clt=2103 zephyr-hm=2104 iprop=2121 supfilesrv=871 supfiledbg=1127 poppassd=106 moira-db=775 moira-update=777 moira-ureg=779 spamd=783 skkserv=1178 predict=1210 rmtcfg=1236 xtel=1313 xtelw=1314 zebrasrv=2600 zebra=2601 ripd=2602 ripngd=2603 ospfd=2604 bgpd=2605 ospf6d=2606 ospfapi=2607 isisd=2608 fax=4557 hylafax=4559 munin=4949 rplay=5555 nrpe=5666 nsca=5667 canna=5680 syslog-tls=6514 sane-port=6566 ircd=6667 zope-ftp=8021 tproxy=8081 omniorb=8088 clc-build-daemon=8990 xinetd=9098 git=9418 zope=9673 webmin=10000 kamanda=10081 amandaidx=10082 amidxtape=10083 sgi-cmsd=17001 sgi-crsd=17002 sgi-gcd=17003 sgi-cad=17004 binkp=24554 asp=27374 csync2=30865 dircproxy=57000 tfido=60177 fido=60179'.split(' ').map((kv) => { const [k, v] = kv.split('='); return [k!, Number(v)]; }),
);

/** /etc/protocols (Debian netbase) names and numbers, as Firewall.pm parse_protocol_file reads them. */
const PROTOCOLS: Record<string, number> = Object.fromEntries(
  'ip=0 hopopt=0 icmp=1 igmp=2 ggp=3 ipencap=4 st=5 tcp=6 egp=8 igp=9 pup=12 udp=17 hmp=20 xns-idp=22 rdp=27 iso-tp4=29 dccp=33 xtp=36 ddp=37 idpr-cmtp=38 ipv6=41 ipv6-route=43 ipv6-frag=44 idrp=45 rsvp=46 gre=47 esp=50 ah=51 skip=57 ipv6-icmp=58 ipv6-nonxt=59 ipv6-opts=60 rspf=73 vmtp=81 eigrp=88 ospf=89 ax.25=93 ipip=94 etherip=97 encap=98 pim=103 ipcomp=108 vrrp=112 l2tp=115 isis=124 sctp=132 fc=133 mobility-header=135 udplite=136 mpls-in-ip=137 manet=138 hip=139 shim6=140 wesp=141 rohc=142 ethernet=143 mptcp=262'.split(' ').map((kv) => { const [k, v] = kv.split('='); return [k!, Number(v)]; }),
);

/** Firewall.pm init_firewall_macros: lower-cased name -> preferred spelling. */
const MACRO_NAMES: Map<string, string> = new Map(
  [...Object.keys(MACROS_V4), ...Object.keys(MACROS_V6)].map((k) => [k.toLowerCase(), k] as const),
);

/** Macros that exist only in the IPv6 table apply only to IPv6 ($pve_fw_macro_ipversion). */
function macroIpversion(name: string): 4 | 6 | undefined {
  return MACROS_V4[name] ? undefined : MACROS_V6[name] ? 6 : undefined;
}

/** Every macro: name, description, and its rules (IPv4 table; IPv6 overrides where Proxmox has one). */
export function firewallMacros(): { name: string; description: string; rules: { proto: string; dport?: string; sport?: string }[]; v6?: { proto: string; dport?: string; sport?: string }[] }[] {
  const names = [...new Set([...Object.keys(MACROS_V4), ...Object.keys(MACROS_V6)])].sort();
  const conv = (d: MacroDef) => d[1].map(([proto, dport, sport]) => ({ proto, ...(dport !== undefined ? { dport } : {}), ...(sport !== undefined ? { sport } : {}) }));
  return names.map((name) => {
    const v4 = MACROS_V4[name];
    const v6 = MACROS_V6[name];
    return { name, description: (v4 ?? v6)![0] || (v6?.[0] ?? ''), rules: conv((v4 ?? v6)!), ...(v4 && v6 ? { v6: conv(v6) } : {}) };
  });
}

/** $PROTOCOLS_WITH_PORTS */
const PROTOCOLS_WITH_PORTS = new Set(['udp', '17', 'udplite', '136', 'tcp', '6', 'dccp', '33', 'sctp', '132']);

/** iptables -p icmp -h ($icmp_type_names), with the type number each name stands for (codes not modelled). */
const ICMP_TYPES: Record<string, number | undefined> = {
  any: undefined, 'echo-reply': 0, 'destination-unreachable': 3, 'network-unreachable': 3, 'host-unreachable': 3,
  'protocol-unreachable': 3, 'port-unreachable': 3, 'fragmentation-needed': 3, 'source-route-failed': 3,
  'network-unknown': 3, 'host-unknown': 3, 'network-prohibited': 3, 'host-prohibited': 3,
  'TOS-network-unreachable': 3, 'TOS-host-unreachable': 3, 'communication-prohibited': 3,
  'host-precedence-violation': 3, 'precedence-cutoff': 3, 'source-quench': 4, redirect: 5, 'network-redirect': 5,
  'host-redirect': 5, 'TOS-network-redirect': 5, 'TOS-host-redirect': 5, 'echo-request': 8,
  'router-advertisement': 9, 'router-solicitation': 10, 'time-exceeded': 11, 'ttl-zero-during-transit': 11,
  'ttl-zero-during-reassembly': 11, 'parameter-problem': 12, 'ip-header-bad': 12, 'required-option-missing': 12,
  'timestamp-request': 13, 'timestamp-reply': 14, 'address-mask-request': 17, 'address-mask-reply': 18,
};

/** ip6tables -p icmpv6 -h ($icmpv6_type_names) */
const ICMPV6_TYPES: Record<string, number> = {
  'destination-unreachable': 1, 'no-route': 1, 'communication-prohibited': 1, 'beyond-scope': 1,
  'address-unreachable': 1, 'port-unreachable': 1, 'failed-policy': 1, 'reject-route': 1, 'packet-too-big': 2,
  'time-exceeded': 3, 'ttl-zero-during-transit': 3, 'ttl-zero-during-reassembly': 3, 'parameter-problem': 4,
  'bad-header': 4, 'unknown-header-type': 4, 'unknown-option': 4, 'echo-request': 128, 'echo-reply': 129,
  'router-solicitation': 133, 'router-advertisement': 134, 'neighbor-solicitation': 135, 'neighbour-solicitation': 135,
  'neighbor-advertisement': 136, 'neighbour-advertisement': 136, redirect: 137,
};

/** The ICMP type number of a name or number for a protocol (undefined when unknown or `any`). */
export function icmpTypeNumber(proto: 'icmp' | 'icmpv6', type: string): number | undefined {
  if (/^\d+$/.test(type)) return Number(type);
  return proto === 'icmp' ? ICMP_TYPES[type] : ICMPV6_TYPES[type];
}

const isIcmpProto = (p: string | undefined) => p === 'icmp' || p === 'icmpv6' || p === 'ipv6-icmp';

/** $pve_fw_helpers (nf_conntrack_helpers) */
const CONNTRACK_HELPERS = new Set(['amanda', 'ftp', 'irc', 'netbios-ns', 'pptp', 'sane', 'sip', 'snmp', 'tftp']);

const SECURITY_GROUP_RE = /^[A-Za-z][A-Za-z0-9\-_]+$/;
const IPSET_NAME_RE = SECURITY_GROUP_RE;
const ALIAS_SRC = '[A-Za-z][A-Za-z0-9\\-_]+';
const MAX_ALIAS_NAME = 64;
const MAX_IPSET_NAME = 64;
const MAX_GROUP_NAME = 18;
const LOG_LEVELS = 'emerg|alert|crit|err|warning|notice|info|debug|nolog';

/** Protocol number of a name or number, or undefined (pve_fw_verify_protocol_spec's table; icmpv6 added as Proxmox does). */
export function protocolNumber(proto: string): number | undefined {
  if (proto === 'icmpv6') return 58;
  if (/^\d+$/.test(proto)) return Number(proto) <= 255 ? Number(proto) : undefined;
  return PROTOCOLS[proto];
}

function protoKnown(proto: string): boolean {
  if (proto === 'icmpv6') return true;
  if (PROTOCOLS[proto] !== undefined) return true;
  // byid: only numbers /etc/protocols lists
  return /^\d+$/.test(proto) && Object.values(PROTOCOLS).includes(Number(proto));
}

/** A service name from /etc/services, as a port (undefined when unknown). */
export function servicePort(name: string): number | undefined {
  return SERVICES[name];
}

// ---------------------------------------------------------------------------
// addresses

/** PVE::Tools $IPV4RE: four decimal octets, no leading zeros. */
const IPV4_RE = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

interface Addr {
  v: 4 | 6;
  n: bigint;
}

function parseAddr(s: string): Addr | undefined {
  if (IPV4_RE.test(s)) {
    return { v: 4, n: s.split('.').reduce((a, o) => (a << 8n) + BigInt(o), 0n) };
  }
  if (s.includes(':') && !s.includes('%') && ipaddr.IPv6.isValid(s)) {
    const bytes = ipaddr.IPv6.parse(s).toByteArray();
    return { v: 6, n: bytes.reduce((a, b) => (a << 8n) + BigInt(b), 0n) };
  }
  return undefined;
}

const bitsOf = (v: 4 | 6) => (v === 4 ? 32 : 128);

function addrToString(a: Addr): string {
  if (a.v === 4) return [24n, 16n, 8n, 0n].map((s) => String((a.n >> s) & 255n)).join('.');
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((a.n >> BigInt(i * 8)) & 255n));
  return ipaddr.fromByteArray(bytes).toString();
}

const maskOf = (v: 4 | 6, len: number) => {
  const bits = BigInt(bitsOf(v));
  return len === 0 ? 0n : ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(len))) - 1n);
};

/** A network: address with host bits clear, and its prefix length. */
export interface Net {
  v: 4 | 6;
  n: bigint;
  len: number;
}

/** Parse `a.b.c.d`, `a.b.c.d/n`, IPv6 likewise; host bits are cleared. Undefined when not an address. */
export function parseNet(s: string): Net | undefined {
  const [ip, len, extra] = s.split('/');
  if (extra !== undefined || ip === undefined) return undefined;
  const a = parseAddr(ip);
  if (!a) return undefined;
  let l = bitsOf(a.v);
  if (len !== undefined) {
    if (!/^\d+$/.test(len) || Number(len) > bitsOf(a.v)) return undefined;
    l = Number(len);
  }
  return { v: a.v, n: a.n & maskOf(a.v, l), len: l };
}

export function netToString(net: Net): string {
  const a = addrToString({ v: net.v, n: net.n });
  return net.len === bitsOf(net.v) ? a : `${a}/${net.len}`;
}

export function netContains(net: Net, addr: Net): boolean {
  return net.v === addr.v && net.len <= addr.len && (addr.n & maskOf(net.v, net.len)) === net.n;
}

/** `a-b` as the smallest list of networks covering it (iptables' iprange match, as ipset-like data). */
export function rangeToNets(from: string, to: string): Net[] | undefined {
  const a = parseAddr(from);
  const b = parseAddr(to);
  if (!a || !b || a.v !== b.v || a.n > b.n) return undefined;
  const bits = bitsOf(a.v);
  const out: Net[] = [];
  let cur = a.n;
  while (cur <= b.n) {
    let len = bits;
    // grow the block while it stays aligned and inside the range
    while (len > 0) {
      const size = 1n << BigInt(bits - len + 1);
      if ((cur & (size - 1n)) !== 0n || cur + size - 1n > b.n) break;
      len--;
    }
    out.push({ v: a.v, n: cur, len });
    cur += 1n << BigInt(bits - len);
  }
  return out;
}

/** The address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) stands for; other addresses unchanged. */
export function unmapAddress(addr: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr.trim());
  if (m && IPV4_RE.test(m[1]!)) return m[1]!;
  if (addr.includes(':') && ipaddr.IPv6.isValid(addr)) {
    const p = ipaddr.IPv6.parse(addr);
    if (p.isIPv4MappedAddress()) return p.toIPv4Address().toString();
  }
  // Lower case, so that an address sshd or pveproxy logged compares equal to the one a session reports.
  return addr.trim().toLowerCase();
}

/** Net::IP's binary form, for its "Invalid prefix" message. */
function binary(a: Addr): string {
  return a.n.toString(2).padStart(bitsOf(a.v), '0');
}

/**
 * Firewall.pm parse_ip_or_cidr: an IP or CIDR (prefix not checked) with /32
 * or /128 stripped; the IP version. Throws Proxmox's message otherwise.
 */
export function parseIpOrCidr(cidr: string): { cidr: string; ipversion: 4 | 6 } {
  const [ip, len, extra] = cidr.split('/');
  const lenOk = len === undefined || /^\d+$/.test(len);
  if (extra === undefined && lenOk && ip !== undefined) {
    if (ip.includes(':') && parseAddr(ip)?.v === 6) return { cidr: cidr.replace(/\/128$/, ''), ipversion: 6 };
    if (IPV4_RE.test(ip)) return { cidr: cidr.replace(/\/32$/, ''), ipversion: 4 };
  }
  throw new Error('value does not look like a valid IP address or CIDR network');
}

/**
 * IPSet.pm create_ip's normalisation: clean_cidr (host bits cleared, an IPv6
 * network compressed and lower-cased) then parse_ip_or_cidr (/32 and /128
 * dropped). A bare IPv6 address is kept as written, as clean_cidr does.
 * Throws "value does not look like a valid IP address or CIDR network" for
 * anything that is not an address. A /0 passes (see normaliseCidr).
 */
export function cleanCidr(input: string): string {
  const s = input.trim();
  const [ip, len] = s.split('/');
  const a = ip !== undefined ? parseAddr(ip) : undefined;
  if (!a || (len !== undefined && (!/^\d+$/.test(len) || Number(len) > bitsOf(a.v))) || s.split('/').length > 2) {
    throw new Error('value does not look like a valid IP address or CIDR network');
  }
  let out = s;
  if (len) out = `${addrToString({ v: a.v, n: a.n & maskOf(a.v, Number(len)) })}/${len}`;
  return parseIpOrCidr(out).cidr;
}

/**
 * A CIDR as the API stores an ipset entry (cleanCidr: `10.0.0.11/24` ->
 * `10.0.0.0/24`, `/32` and `/128` dropped, IPv6 networks compressed), with
 * a /0 refused as create_ip refuses it: "a zero prefix is not allowed in
 * ipset entries".
 */
export function normaliseCidr(input: string): string {
  const out = cleanCidr(input);
  if (/\/0+$/.test(out)) throw new Error('a zero prefix is not allowed in ipset entries');
  return out;
}

/** A canonical form for comparing: network address, compressed lower-case IPv6, no /32 or /128. Undefined when not an address. */
export function canonicalCidr(input: string): string | undefined {
  const n = parseNet(unmapAddress(input.trim()));
  return n ? netToString(n) : undefined;
}

/**
 * Whether an address is in a list of CIDRs (IPv4 and IPv6 mixed; `::ffff:a.b.c.d` counts as IPv4).
 */
export function addressInCidrs(address: string, cidrs: readonly string[]): boolean {
  const a = parseNet(unmapAddress(address));
  if (!a) return false;
  return cidrs.some((c) => {
    const n = parseNet(c);
    return n !== undefined && netContains(n, a);
  });
}

/**
 * Whether an address is in an ipset as the kernel's hash:net type decides:
 * the most specific entry that contains it wins, and a `nomatch` entry (`!`)
 * means "not in the set". With no overlap between included and excluded
 * entries this is "in include and not in exclude".
 */
export function inAddressSet(address: string, set: { include: readonly string[]; exclude: readonly string[] }): boolean {
  const a = parseNet(unmapAddress(address));
  if (!a) return false;
  let best: { len: number; match: boolean } | undefined;
  const consider = (list: readonly string[], match: boolean) => {
    for (const c of list) {
      const n = parseNet(c);
      if (!n || !netContains(n, a)) continue;
      // equal prefixes: the later (nomatch) entry is the one ipset keeps
      if (!best || n.len > best.len || (n.len === best.len && !match)) best = { len: n.len, match };
    }
  };
  consider(set.include, true);
  consider(set.exclude, false);
  return best?.match ?? false;
}

/** The IP version of an address or CIDR, undefined when not one. */
export function ipVersion(address: string): 4 | 6 | undefined {
  return parseNet(unmapAddress(address))?.v;
}

// ---------------------------------------------------------------------------
// rule parameters (Firewall.pm)

/** parse_address_list: the IP version of a literal list, undefined for an ipset or alias; throws Proxmox's message. */
export function parseAddressList(str: string): 4 | 6 | undefined {
  if (/^\+\S+$/.test(str)) {
    if (str.length > MAX_IPSET_NAME + 1) throw new Error('ipset name too long');
    return undefined;
  }
  if (new RegExp(`^(dc/|guest/)?${ALIAS_SRC}$`).test(str)) {
    if (str.length > MAX_ALIAS_NAME) throw new Error('alias name too long');
    return undefined;
  }
  const elements = str.split(',').filter((e, i, all) => e !== '' || i < all.length - 1);
  if (str !== elements.join(',') || elements.some((e) => e === '')) throw new Error('extraneous commas in list');
  let ipversion: 4 | 6 | undefined;
  let range = false;
  for (const elem of elements) {
    const v = netIpVersion(elem);
    if (elem.includes('-')) range = true;
    if (ipversion && v !== ipversion) throw new Error(`detected mixed ipv4/ipv6 addresses in address list '${str}'`);
    ipversion = v;
  }
  if (range && elements.length > 1) throw new Error("you can't use a range in a list");
  return ipversion;
}

/** Net::IP->new on one element: an address, a CIDR with clear host bits, or a range. */
function netIpVersion(elem: string): 4 | 6 {
  const r = /^([^-\s]+)\s*-\s*([^-\s]+)$/.exec(elem);
  if (r) {
    const a = parseAddr(r[1]!);
    const b = parseAddr(r[2]!);
    if (!a || !b || a.v !== b.v) throw new Error(`invalid IP address: Invalid IP address ${elem}`);
    if (a.n > b.n) throw new Error(`invalid IP address: Begin address is greater than end address ${elem}`);
    return a.v;
  }
  const [ip, len, extra] = elem.split('/');
  const a = ip !== undefined && extra === undefined ? parseAddr(ip) : undefined;
  if (!a) throw new Error(`invalid IP address: Invalid IP address ${elem}`); // [derived] Net::IP::Error() wording
  if (len !== undefined) {
    if (!/^\d+$/.test(len) || Number(len) > bitsOf(a.v)) throw new Error(`invalid IP address: Invalid prefix length /${len}`);
    if ((a.n & maskOf(a.v, Number(len))) !== a.n) throw new Error(`invalid IP address: Invalid prefix ${binary(a)}/${len}`);
  }
  return a.v;
}

/**
 * parse_port_name_number_or_range: `22`, `5900:5999`, `80,443`, service
 * names; with dport=true an ICMP type name is accepted too. Throws
 * Proxmox's message; returns whether it is a list (multiport).
 */
export function parsePortSpec(str: string, dport: boolean): boolean {
  const elements = str.split(',');
  if (str !== elements.filter((e) => e !== '').join(',')) throw new Error('extraneous commas in list');
  let count = 0;
  let icmp = false;
  for (const item of elements) {
    let m: RegExpExecArray | null;
    if ((m = /^(\d+):(\d+)$/.exec(item))) {
      count += 2;
      const [p1, p2] = [Number(m[1]), Number(m[2])];
      if (p1 > 65535) throw new Error(`invalid port '${m[1]}'`);
      if (p2 > 65535) throw new Error(`invalid port '${m[2]}'`);
      if (p1 > p2) throw new Error(`backwards range '${m[1]}:${m[2]}' not allowed, did you mean '${m[2]}:${m[1]}'?`);
    } else if (/^\d+$/.test(item)) {
      count += 1;
      if (Number(item) > 65535) throw new Error(`invalid port '${item}'`);
    } else if (dport && (item in ICMP_TYPES || item in ICMPV6_TYPES)) {
      icmp = true;
    } else if (SERVICES[item] === undefined) {
      throw new Error(`invalid port '${item}'`);
    }
  }
  if (icmp && count > 0) throw new Error('ICMP ports not allowed in port range');
  if (count > 15) throw new Error('too many entries in port list (> 15 numbers)');
  return elements.length > 1;
}

/** A valid port spec as inclusive ranges (service names resolved); undefined for ICMP type names. */
export function portRanges(str: string): [number, number][] | undefined {
  const out: [number, number][] = [];
  for (const item of str.split(',')) {
    const m = /^(\d+):(\d+)$/.exec(item);
    if (m) out.push([Number(m[1]), Number(m[2])]);
    else if (/^\d+$/.test(item)) out.push([Number(item), Number(item)]);
    else if (SERVICES[item] !== undefined) out.push([SERVICES[item]!, SERVICES[item]!]);
    else return undefined;
  }
  return out;
}

/** PVE::JSONSchema pve_verify_iface */
function verifyIface(iface: string): string | undefined {
  return /^[a-z][a-z0-9_]{1,20}([:.]\d+)?$/i.test(iface) ? undefined : `invalid network interface name '${iface}'`;
}

export type RuleEnv = 'cluster' | 'host' | 'group';

const RULE_ENV_DIRECTIONS: Record<RuleEnv, string[]> = {
  cluster: ['in', 'out', 'forward', 'group'],
  host: ['in', 'out', 'forward', 'group'],
  group: ['in', 'out', 'forward'],
};

/** The ipsets and aliases a rule may name: the cluster's, and the file's own (a host.fw has none). */
export interface RuleScope {
  cluster?: Pick<ParsedFirewall, 'ipsets' | 'aliases'>;
  local?: Pick<ParsedFirewall, 'ipsets' | 'aliases'>;
}

class FatalRuleError extends Error {}

/**
 * verify_rule with $noerr: fills rule.errors (first error per parameter),
 * sets ipversion and the macro's preferred name. Throws only where Proxmox
 * dies outright (mixed IP versions through an alias).
 */
export function verifyRule(rule: FwRule, env: RuleEnv, scope: RuleScope): FwRule {
  const errors: Record<string, string> = { ...(rule.errors ?? {}) };
  let count = 0;
  const addError = (param: string, message: string) => {
    count++;
    if (errors[param] === undefined) errors[param] = message.replace(/\n$/, '');
  };
  let ipversion: 4 | 6 | undefined;
  const setIpVersion = (v: 4 | 6 | undefined) => {
    if (!v) return;
    if (ipversion && v !== ipversion) throw new FatalRuleError('detected mixed ipv4/ipv6 addresses in rule');
    ipversion = v;
  };
  const checkIpsetOrAlias = (name: 'source' | 'dest') => {
    const value = rule[name];
    if (!value) return;
    if (value.startsWith('+')) {
      const m = new RegExp(`^\\+(guest/|dc/|sdn/)?(${IPSET_NAME_RE.source.slice(1, -1)})$`).exec(value);
      if (m) {
        if (!scope.cluster?.ipsets.has(m[2]!) && !scope.local?.ipsets.has(m[2]!)) addError(name, `no such ipset '${m[2]}'`);
      } else addError(name, `invalid ipset name '${value}'`);
      return;
    }
    const m = new RegExp(`^(guest/|dc/)?(${ALIAS_SRC})$`).exec(value);
    if (m) {
      const sc = m[1] ?? '';
      const alias = m[2]!.toLowerCase();
      if (!scope.cluster?.aliases.has(alias) && !scope.local?.aliases.has(alias)) addError(name, `no such alias '${value}'`);
      let e: FwAlias | undefined;
      if (sc !== 'dc/') e = scope.local?.aliases.get(alias);
      if (sc !== 'guest/' && !e) e = scope.cluster?.aliases.get(alias);
      setIpVersion(e?.ipversion);
    }
  };

  const { type, action } = rule;
  if (!type) addError('type', 'missing property');
  if (!action) addError('action', 'missing property');
  if (type) {
    if (!RULE_ENV_DIRECTIONS[env].includes(type)) addError('type', `invalid rule type '${type}' for rule_env '${env}'`);
    if (type === 'in' || type === 'out' || type === 'forward') {
      if (type === 'forward' && action === 'REJECT') addError('action', 'cannot define REJECT rules on forward chain');
      if (action && !/^(ACCEPT|DROP|REJECT)$/.test(action)) addError('action', `unknown action '${action}'`);
    } else if (type === 'group') {
      if (env === 'group') addError('type', 'security groups not allowed');
      if (action && !SECURITY_GROUP_RE.test(action)) addError('action', 'invalid characters in security group name');
    } else addError('type', `unknown rule type '${type}'`);
  }
  if (pt(rule.iface)) {
    if (env === 'group') addError('type', 'parameter -i not allowed for this rule type');
    const e = verifyIface(rule.iface);
    if (e) addError('iface', e);
  }
  if (pt(rule.macro)) {
    const preferred = MACRO_NAMES.get(rule.macro.toLowerCase());
    if (preferred) rule.macro = preferred;
    else addError('macro', `unknown macro '${rule.macro}'`);
  }
  let isIcmp = false;
  if (pt(rule.proto)) {
    if (!protoKnown(rule.proto)) addError('proto', `unknown protocol '${rule.proto}'`);
    if (rule.proto === 'icmp') setIpVersion(4);
    if (rule.proto === 'icmpv6' || rule.proto === 'ipv6-icmp') setIpVersion(6);
    isIcmp = isIcmpProto(rule.proto);
  }
  if (pt(rule.dport)) {
    try {
      parsePortSpec(rule.dport, isIcmp);
    } catch (e) {
      addError('dport', (e as Error).message);
    }
    if (!rule.proto) addError('proto', "missing property - 'dport' requires this property");
    if (!PROTOCOLS_WITH_PORTS.has(rule.proto ?? '') && !isIcmp) addError('dport', `protocol '${rule.proto ?? ''}' does not support ports`);
  }
  if (pt(rule.icmpType)) {
    const proto = rule.proto ?? '';
    if (!isIcmp) addError('proto', "missing property - 'icmp-type' requires this property");
    if (pt(rule.dport)) addError('icmp-type', "'icmp-type' cannot be specified together with 'dport'");
    if (proto === 'icmp' && !(rule.icmpType in ICMP_TYPES)) addError('icmp-type', `invalid icmp-type '${rule.icmpType}' for proto 'icmp'`);
    else if ((proto === 'icmpv6' || proto === 'ipv6-icmp') && !(rule.icmpType in ICMPV6_TYPES)) {
      addError('icmp-type', `invalid icmp-type '${rule.icmpType}' for proto '${proto}'`);
    }
  }
  if (pt(rule.sport)) {
    try {
      parsePortSpec(rule.sport, false);
    } catch (e) {
      addError('sport', (e as Error).message);
    }
    if (!rule.proto) addError('proto', "missing property - 'sport' requires this property");
    if (!PROTOCOLS_WITH_PORTS.has(rule.proto ?? '')) addError('sport', `protocol '${rule.proto ?? ''}' does not support ports`);
  }
  for (const name of ['source', 'dest'] as const) {
    if (!pt(rule[name])) continue;
    try {
      setIpVersion(parseAddressList(rule[name]!));
    } catch (e) {
      if (e instanceof FatalRuleError) addError(name, e.message);
      else addError(name, (e as Error).message);
    }
    checkIpsetOrAlias(name);
  }
  if (ipversion) rule.ipversion = ipversion;
  if (rule.macro && count === 0) {
    try {
      applyMacro(rule, ipversion, true);
    } catch (e) {
      const pe = e as Error & { param?: string };
      addError(pe.param ?? 'macro', pe.message);
    }
  }
  if (count) rule.errors = errors;
  return rule;
}

/** The fields a macro expansion produces (the rule's own, with proto/dport/sport from the macro). */
export type ExpandedRule = Omit<FwRule, 'macro'>;

/**
 * $apply_macro: one rule per macro line, the rule's parameters merged in; a
 * parameter the macro already sets must agree. Empty for a macro of the other
 * IP version. Throws "parameter 'x' already define in macro (value = 'y')".
 */
export function applyMacro(rule: FwRule, ipversion: 4 | 6 | undefined, _verify = false): ExpandedRule[] {
  const name = rule.macro!;
  let def = MACROS_V4[name] ?? MACROS_V6[name];
  if (!def) throw new Error(`unknown macro '${name}'`);
  if (ipversion === 6 && MACROS_V6[name]) def = MACROS_V6[name]!;
  const required = macroIpversion(name);
  if (ipversion && required && ipversion !== required) return [];
  const out: ExpandedRule[] = [];
  for (const [proto, dport, sport] of def[1]) {
    const templ: Record<string, string> = { proto };
    if (dport !== undefined) templ.dport = dport;
    if (sport !== undefined) templ.sport = sport;
    const { macro: _m, ...rest } = rule;
    const r: ExpandedRule = { ...rest };
    for (const k of ['proto', 'dport', 'sport'] as const) {
      const v = rule[k];
      if (templ[k] !== undefined) {
        if (v !== undefined && v !== '' && v !== templ[k]) {
          const err = new Error(`parameter '${k}' already define in macro (value = '${templ[k]}')`) as Error & { param?: string };
          err.param = k;
          throw err;
        }
        r[k] = templ[k];
      }
    }
    out.push(r);
  }
  return out;
}

// ---------------------------------------------------------------------------
// options, aliases, rules, files

/** Perl truthiness of a string: defined, not '' and not '0'. */
const pt = (v: string | undefined): v is string => v !== undefined && v !== '' && v !== '0';

const int = (s: string) => String(Number.parseInt(s, 10));

/** parse_clusterfw_option; throws "can't parse option '<line>'". */
export function parseClusterOption(line: string, now: number): [string, string, number?] {
  let m: RegExpExecArray | null;
  if ((m = /^(enable):\s*(\d+)\s*$/i.exec(line))) {
    const value = Number.parseInt(m[2]!, 10);
    // a timestamp counts only while it is at most 60 s old (the anti-lockout window)
    if (value > 1 && now - value > 60) return ['enable', '0', value];
    return ['enable', String(value), value > 1 ? value : undefined];
  }
  if ((m = /^(ebtables):\s*(0|1)\s*$/i.exec(line))) return [m[1]!.toLowerCase(), int(m[2]!)];
  if ((m = /^(policy_(in|out|forward)):\s*(ACCEPT|DROP|REJECT)\s*$/i.exec(line))) return [m[1]!.toLowerCase(), m[3]!.toUpperCase()];
  if ((m = /^(log_ratelimit):\s*(\S+)\s*$/.exec(line))) return [m[1]!.toLowerCase(), m[2]!];
  throw new Error(`can't parse option '${line}'`);
}

/** parse_hostfw_option; throws "can't parse option '<line>'". */
export function parseHostOption(line: string): [string, string] {
  let m: RegExpExecArray | null;
  if ((m = /^(enable|nosmurfs|tcpflags|ndp|log_nf_conntrack|nf_conntrack_allow_invalid|protection_synflood|nftables):\s*(0|1)\s*$/i.exec(line))) {
    return [m[1]!.toLowerCase(), int(m[2]!)];
  }
  if ((m = new RegExp(`^(log_level_(?:in|out|forward)|tcp_flags_log_level|smurf_log_level):\\s*((${LOG_LEVELS})\\s*)?$`, 'i').exec(line))) {
    return [m[1]!.toLowerCase(), m[2] ? m[3]!.toLowerCase() : ''];
  }
  if ((m = /^(nf_conntrack_helpers):\s*(((\S+)[,]?)+)\s*$/i.exec(line))) {
    const value = m[2]!.toLowerCase();
    for (const h of value.split(',')) if (!CONNTRACK_HELPERS.has(h)) throw new Error(`unknown helper ${h}`);
    if (value !== value.split(',').join(',') || value.split(',').some((h) => h === '')) throw new Error('extraneous commas in list');
    return [m[1]!.toLowerCase(), value];
  }
  if ((m = /^(nf_conntrack_max|nf_conntrack_tcp_timeout_established|nf_conntrack_tcp_timeout_syn_recv|protection_synflood_rate|protection_synflood_burst|protection_limit):\s*(\d+)\s*$/i.exec(line))) {
    return [m[1]!.toLowerCase(), int(m[2]!)];
  }
  throw new Error(`can't parse option '${line}'`);
}

/** parse_alias: `name cidr [# comment]` (exactly one blank between); undefined when the line is not that. */
export function parseAlias(line: string): FwAlias | undefined {
  let comment: string | undefined;
  const c = /\s*#\s*(.*?)\s*$/.exec(line);
  if (c) {
    comment = c[1];
    line = line.slice(0, c.index);
  }
  const m = /^(\S+)\s(\S+)$/.exec(line);
  if (!m) return undefined;
  const { cidr, ipversion } = parseIpOrCidr(m[2]!);
  return { name: m[1]!, cidr, ipversion, ...(comment ? { comment } : {}) };
}

/**
 * parse_fw_rule: `[|]TYPE ACTION|MACRO(ACTION) [-i x] [-p x] [-dport x]
 * [-sport x] [-source x] [-dest x] [-log level] [-icmp-type x] [# comment]`,
 * then verify_rule. Throws "unable to parse rule: ..." / "unable to parse
 * rule parameters: ..." where Proxmox drops the line.
 */
export function parseFwRule(text: string, env: RuleEnv, scope: RuleScope): FwRule {
  let line = text;
  let comment: string | undefined;
  const c = /#\s*(.*?)\s*$/.exec(line);
  if (c) {
    comment = c[1];
    line = line.slice(0, c.index);
  }
  let enable = 1;
  if (line.startsWith('|')) {
    enable = 0;
    line = line.slice(1);
  }
  const head = /^(\S+)\s+(\S+)\s*/.exec(line);
  if (!head) throw new Error(`unable to parse rule: ${line}`);
  line = line.slice(head[0].length);
  const rule: FwRule = { type: head[1]!.toLowerCase(), action: head[2]!, enable };
  if (comment !== undefined) rule.comment = comment;
  if (rule.type === 'in' || rule.type === 'out' || rule.type === 'forward') {
    const mm = /^(\S+)\((ACCEPT|DROP|REJECT)\)$/.exec(rule.action);
    if (mm) {
      rule.macro = mm[1]!;
      rule.action = mm[2]!;
    }
  }
  const opts: [RegExp, keyof FwRule][] = [
    [/^(?:-p|--?proto) (\S+)\s*/, 'proto'],
    [/^--?dport (\S+)\s*/, 'dport'],
    [/^--?sport (\S+)\s*/, 'sport'],
    [/^--?source (\S+)\s*/, 'source'],
    [/^--?dest (\S+)\s*/, 'dest'],
    [new RegExp(`^--?log (${LOG_LEVELS})\\s*`), 'log'],
    [/^--?icmp-type (\S+)\s*/, 'icmpType'],
  ];
  outer: while (line.length) {
    const i = /^-i (\S+)\s*/.exec(line);
    if (i) {
      rule.iface = i[1]!;
      line = line.slice(i[0].length);
      continue;
    }
    if (rule.type === 'group') break;
    for (const [re, key] of opts) {
      const m = re.exec(line);
      if (m) {
        (rule as unknown as Record<string, string>)[key] = m[1]!;
        line = line.slice(m[0].length);
        continue outer;
      }
    }
    break;
  }
  if (line.length) throw new Error(`unable to parse rule parameters: ${line}`);
  return verifyRule(rule, env, scope);
}

/** The warning lines parse_fw_rule prints for a rule with errors (verbose, as `pve-firewall compile` runs). */
function ruleErrorWarning(prefix: string, orig: string, errors: Record<string, string>): string {
  return [`${prefix} - errors in rule parameters: ${orig}`, ...Object.keys(errors).sort().map((p) => `  ${p}: ${errors[p]}`)].join('\n');
}

function emptyFirewall(kind: FwFileKind): ParsedFirewall {
  return { kind, options: new Map(), aliases: new Map(), ipsets: new Map(), rules: [], groups: new Map(), warnings: [] };
}

/** The paths Proxmox names in its warnings. */
export function firewallPath(kind: FwFileKind, nodename = 'localhost'): string {
  return kind === 'cluster' ? '/etc/pve/firewall/cluster.fw' : `/etc/pve/nodes/${nodename}/host.fw`;
}

/**
 * Parse a whole cluster.fw or host.fw as generic_fw_config_parser does.
 * Lines that Proxmox drops (unparsable rules and options, lines outside a
 * section) are left out and reported in `warnings`; rules and ipset entries
 * with errors are kept (with `errors`), reported, and never compiled.
 * For host.fw pass the parsed cluster.fw in `opts.cluster`: its rules may
 * only name the cluster's ipsets and aliases (without it: none exist).
 */
export function parseFirewallFile(text: string | undefined, kind: FwFileKind, filename = firewallPath(kind), opts: ParseOptions = {}): ParsedFirewall {
  const res = emptyFirewall(kind);
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (!text) return res;
  // cluster.fw is parsed with itself as the cluster config: an ipset or alias is known once its section was read
  const scope: RuleScope = kind === 'cluster' ? { cluster: res, local: res } : { cluster: opts.cluster ?? emptyFirewall('cluster'), local: res };
  const warn = (s: string) => res.warnings.push(s);
  let section: 'options' | 'aliases' | 'groups' | 'rules' | 'ipset' | undefined;
  let group: string | undefined;
  let seen = new Set<string>();
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.replace(/^[ \t]+|[ \t\r]+$/g, '');
    const linenr = i + 1;
    if (line.startsWith('#') || /^\s*$/.test(line)) return;
    const prefix = `${filename} (line ${linenr})`;
    let m: RegExpExecArray | null;
    if (/^\[options\]$/i.test(line)) {
      section = 'options';
      return;
    }
    if (kind === 'cluster' && /^\[aliases\]$/i.test(line)) {
      section = 'aliases';
      return;
    }
    if (kind === 'cluster' && (m = /^\[group\s+(\S+)\]\s*(?:#\s*(.*?)\s*)?$/i.exec(line))) {
      const name = m[1]!.toLowerCase();
      const err = name.length > MAX_GROUP_NAME ? 'security group name too long' : !SECURITY_GROUP_RE.test(name) ? `invalid security group name '${name}'` : undefined;
      if (err) {
        section = group = undefined;
        warn(`${prefix}: ${err}`);
        return;
      }
      section = 'groups';
      group = name;
      res.groups.set(name, { name, rules: [], ...(m[2] ? { comment: m[2] } : {}) });
      return;
    }
    if (/^\[rules\]$/i.test(line)) {
      section = 'rules';
      return;
    }
    if (kind === 'cluster' && (m = /^\[ipset\s+(\S+)\]\s*(?:#\s*(.*?)\s*)?$/i.exec(line))) {
      const name = m[1]!.toLowerCase();
      const err = name.length > MAX_IPSET_NAME ? 'ipset name too long' : !IPSET_NAME_RE.test(name) ? `invalid ipset name '${name}'` : undefined;
      if (err) {
        section = group = undefined;
        warn(`${prefix}: ${err}`);
        return;
      }
      section = 'ipset';
      group = name;
      res.ipsets.set(name, { name, entries: [], ...(m[2] ? { comment: m[2] } : {}) });
      seen = new Set();
      return;
    }
    if (!section) {
      warn(`${prefix}: skip line - no section`);
      return;
    }
    if (section === 'options') {
      try {
        if (kind === 'cluster') {
          const [k, v, ts] = parseClusterOption(line, now);
          res.options.set(k, v);
          if (k === 'enable') res.enableTimestamp = ts;
        } else {
          const [k, v] = parseHostOption(line);
          res.options.set(k, v);
        }
      } catch (e) {
        warn(`${prefix}: ${(e as Error).message}`);
      }
    } else if (section === 'aliases') {
      try {
        const a = parseAlias(line);
        // Perl: parse_alias returns undef and the alias is stored under '' with a Perl warning
        if (!a) warn(`${prefix}: Use of uninitialized value in lc (alias line not "name cidr")`);
        else res.aliases.set(a.name.toLowerCase(), a);
      } catch (e) {
        warn(`${prefix}: ${(e as Error).message}`);
      }
    } else if (section === 'rules' || section === 'groups') {
      try {
        const rule = parseFwRule(line, section === 'groups' ? 'group' : kind, section === 'groups' ? { cluster: scope.cluster } : scope);
        rule.line = linenr;
        if (rule.errors) warn(ruleErrorWarning(prefix, line, rule.errors));
        if (section === 'rules') res.rules.push(rule);
        else res.groups.get(group!)!.rules.push(rule);
      } catch (e) {
        warn(`${prefix}: ${(e as Error).message}`);
      }
    } else if (section === 'ipset') {
      let body = line;
      let comment: string | undefined;
      const c = /#\s*(.*?)\s*$/.exec(body);
      if (c) {
        comment = c[1];
        body = body.slice(0, c.index);
      }
      const em = /^(!)?\s*(\S+)\s*$/.exec(body);
      const nomatch = !!em?.[1];
      let cidr = em?.[2] ?? body.trim();
      const errors: Record<string, string> = {};
      try {
        const am = new RegExp(`^(dc/|guest/)?(${ALIAS_SRC}$)`).exec(cidr);
        if (am) {
          const sc = am[1] ?? '';
          const alias = am[2]!.toLowerCase();
          let e: FwAlias | undefined;
          // resolve_alias: for cluster.fw both scopes are the file itself
          if (sc !== 'dc/') e = res.aliases.get(alias);
          if (sc !== 'guest/' && !e) e = scope.cluster?.aliases.get(alias);
          if (!e) throw new Error(`no such alias '${am[2]}'`);
        } else cidr = parseIpOrCidr(cidr).cidr;
        if (seen.has(cidr)) throw new Error(`duplicate ipset entry for '${cidr}'`);
      } catch (e) {
        errors.cidr = (e as Error).message;
      }
      if (/\/0+$/.test(cidr)) errors.cidr = 'a zero prefix is not allowed in ipset entries';
      const entry: FwIpsetEntry = { cidr };
      if (nomatch) entry.nomatch = true;
      if (comment) entry.comment = comment;
      if (Object.keys(errors).length) {
        entry.errors = errors;
        warn([`${prefix} - errors in ipset '${group}': ${line}`, ...Object.keys(errors).sort().map((p) => `  ${p}: ${errors[p]}`)].join('\n'));
      }
      res.ipsets.get(group!)!.entries.push(entry);
      seen.add(cidr);
    }
  });
  return res;
}

// ---------------------------------------------------------------------------
// writing ($format_* and save_clusterfw_conf / save_hostfw_conf)

const goodComment = (c: string | undefined): c is string => !!c && !/^\s*$/.test(c);

/** $format_rules: one line per rule; `-i` only where allowed (not in groups). */
export function formatRule(rule: FwRule, allowIface = true): string {
  if (!['in', 'out', 'forward', 'group'].includes(rule.type)) throw new Error(`unknown rule type '${rule.type}'`);
  let raw = rule.enable === 0 ? '|' : '';
  raw += rule.type.toUpperCase();
  raw += rule.macro ? ` ${rule.macro}(${rule.action})` : ` ${rule.action}`;
  if (allowIface && pt(rule.iface)) raw += ` -i ${rule.iface}`;
  if (rule.type !== 'group') {
    if (pt(rule.source)) raw += ` -source ${rule.source}`;
    if (pt(rule.dest)) raw += ` -dest ${rule.dest}`;
    if (pt(rule.proto)) raw += ` -p ${rule.proto}`;
    if (pt(rule.dport)) raw += ` -dport ${rule.dport}`;
    if (pt(rule.sport)) raw += ` -sport ${rule.sport}`;
    if (pt(rule.log)) raw += ` -log ${rule.log}`;
    if (rule.icmpType !== undefined && rule.icmpType !== '') raw += ` -icmp-type ${rule.icmpType}`;
  }
  if (goodComment(rule.comment)) raw += ` # ${rule.comment}`;
  return raw;
}

// Perl's string sort (byte order) for ASCII keys is JavaScript's default sort.
const sorted = <T>(keys: Iterable<T>) => [...keys].sort();

/**
 * The file as save_clusterfw_conf / save_hostfw_conf write it, or null when
 * it would be empty (Proxmox then deletes the file). Sections: [OPTIONS],
 * [ALIASES], [IPSET x] (sorted by name, entries sorted by cidr, duplicates
 * dropped), [RULES], [group x] (sorted); host.fw only [OPTIONS] and [RULES].
 *
 * Options: Proxmox writes them in Perl hash order, which changes from run to
 * run; this writer sorts them so that its output is stable.
 */
export function formatFirewallFile(fw: Pick<ParsedFirewall, 'kind' | 'options' | 'aliases' | 'ipsets' | 'rules' | 'groups'>): string | null {
  let raw = '';
  if (fw.options.size) {
    raw += '[OPTIONS]\n\n';
    for (const k of sorted(fw.options.keys())) raw += `${k}: ${fw.options.get(k)}\n`;
    raw += '\n';
  }
  if (fw.kind === 'cluster') {
    if (fw.aliases.size) {
      raw += '[ALIASES]\n\n';
      for (const k of sorted(fw.aliases.keys())) {
        const e = fw.aliases.get(k)!;
        raw += `${e.name} ${e.cidr}${goodComment(e.comment) ? ` # ${e.comment}` : ''}\n`;
      }
      raw += '\n';
    }
    for (const name of sorted(fw.ipsets.keys())) {
      const set = fw.ipsets.get(name)!;
      raw += set.comment ? `[IPSET ${name}] # ${set.comment}\n\n` : `[IPSET ${name}]\n\n`;
      const byCidr = new Map<string, FwIpsetEntry>();
      for (const e of set.entries) if (!byCidr.has(e.cidr)) byCidr.set(e.cidr, e); // "ignoring duplicate ipset entry"
      for (const cidr of sorted(byCidr.keys())) {
        const e = byCidr.get(cidr)!;
        raw += `${e.nomatch ? '!' : ''}${e.cidr}${goodComment(e.comment) ? ` # ${e.comment}` : ''}\n`;
      }
      raw += '\n';
    }
  }
  if (fw.rules.length) {
    raw += '[RULES]\n\n';
    for (const r of fw.rules) raw += `${formatRule(r, true)}\n`;
    raw += '\n';
  }
  if (fw.kind === 'cluster') {
    for (const name of sorted(fw.groups.keys())) {
      const g = fw.groups.get(name)!;
      raw += g.comment ? `[group ${name}] # ${g.comment}\n\n` : `[group ${name}]\n\n`;
      for (const r of g.rules) raw += `${formatRule(r, false)}\n`;
      raw += '\n';
    }
  }
  return raw === '' ? null : raw;
}

// ---------------------------------------------------------------------------
// digests (copy_opject_with_digest, copy_list_with_digest)

/** GET .../firewall/options digest: sha1 over "key:value\n" of the sorted options (copy_opject_with_digest). */
export function optionsDigest(options: Map<string, string> | Record<string, string | number>): string {
  const entries = options instanceof Map ? [...options] : Object.entries(options).map(([k, v]) => [k, String(v)] as const);
  const map = new Map(entries);
  const h = createHash('sha1');
  for (const k of sorted(map.keys())) h.update(`${k}:${map.get(k)}\n`, 'utf8');
  return h.digest('hex');
}

/** copy_list_with_digest: sha1 over "key:value\n" of each item's sorted scalar keys, in list order. */
export function listDigest(list: readonly Record<string, unknown>[]): string {
  const h = createHash('sha1');
  for (const item of list) {
    for (const k of sorted(Object.keys(item))) {
      const v = item[k];
      if (v === undefined || v === null || typeof v === 'object') continue;
      h.update(`${k}:${typeof v === 'boolean' ? (v ? 1 : 0) : String(v)}\n`, 'utf8');
    }
  }
  return h.digest('hex');
}

/** A rule as the API returns it (GET .../rules, without pos and digest). */
export function ruleToApi(rule: FwRule): Record<string, string | number> {
  const out: Record<string, string | number> = { type: rule.type, action: rule.action, enable: rule.enable };
  const keys: [keyof FwRule, string][] = [
    ['macro', 'macro'], ['iface', 'iface'], ['source', 'source'], ['dest', 'dest'], ['proto', 'proto'],
    ['dport', 'dport'], ['sport', 'sport'], ['log', 'log'], ['icmpType', 'icmp-type'], ['comment', 'comment'], ['ipversion', 'ipversion'],
  ];
  for (const [k, api] of keys) if (rule[k] !== undefined) out[api] = rule[k] as string | number;
  return out;
}

/** An ipset entry as the API returns it. */
export function ipsetEntryToApi(e: FwIpsetEntry): Record<string, string | number> {
  return { cidr: e.cidr, ...(e.nomatch ? { nomatch: 1 } : {}), ...(e.comment !== undefined ? { comment: e.comment } : {}) };
}

/** The digest GET /cluster/firewall/rules (or a host's) returns. */
export const rulesDigest = (rules: readonly FwRule[]) => listDigest(rules.map(ruleToApi));
/** The digest GET /cluster/firewall/ipset/{name} returns. */
export const ipsetDigest = (entries: readonly FwIpsetEntry[]) => listDigest(entries.map(ipsetEntryToApi));
/** The digest GET /cluster/firewall/ipset returns (IPSet.pm $get_ipset_list: name and comment, sorted by name). */
export const ipsetListDigest = (ipsets: Map<string, FwIpset>) =>
  listDigest(sorted(ipsets.keys()).map((n) => ({ name: n, ...(ipsets.get(n)!.comment ? { comment: ipsets.get(n)!.comment } : {}) })));

// ---------------------------------------------------------------------------
// resolving rule addresses (ipt_gen_src_or_dst_match, generate_ipset_chains)

/** Addresses an ipset or rule address stands for: nets to include and `nomatch` nets to exclude. */
export interface ResolvedAddresses {
  include: string[];
  exclude: string[];
  label: string;
}

/**
 * An ipset's members as compile_ipsets / generate_ipset_chains load them:
 * entries with errors skipped, aliases resolved (the cluster's), every CIDR
 * normalised (host bits clear, no /32 or /128; the kernel does the same).
 * `extra` entries are appended (compile() adds local_network to management).
 */
export function resolveIpset(set: FwIpset, cluster: Pick<ParsedFirewall, 'aliases'>, extra: string[] = [], warnings?: string[]): ResolvedAddresses {
  const include: string[] = [];
  const exclude: string[] = [];
  const add = (cidr: string, nomatch: boolean) => {
    const c = canonicalCidr(cidr);
    if (!c) {
      warnings?.push(`ipset '${set.name}': invalid entry '${cidr}'`);
      return;
    }
    const [to, other] = nomatch ? [exclude, include] : [include, exclude];
    // generate_ipset_chains keeps one entry per cidr (the last one read)
    const i = other.indexOf(c);
    if (i >= 0) other.splice(i, 1);
    if (!to.includes(c)) to.push(c);
  };
  for (const e of set.entries) {
    if (e.errors) continue;
    const am = new RegExp(`^(dc/|guest/)?(${ALIAS_SRC})$`).exec(e.cidr);
    if (am) {
      const a = cluster.aliases.get(am[2]!.toLowerCase());
      if (!a) {
        warnings?.push(`no such alias '${am[2]}'`);
        continue;
      }
      add(a.cidr, !!e.nomatch);
    } else add(e.cidr, !!e.nomatch);
  }
  for (const x of extra) add(x, false);
  return { include, exclude, label: `+${set.name}` };
}

/**
 * A rule's -source/-dest as addresses: `+ipset` (only the cluster's, as a
 * host rule sees them), an alias (`dc/` or plain: the cluster's), a range,
 * a comma list, or one address/CIDR. Throws "no such ipset 'x'" / "no such
 * alias 'x'" as ipt_gen_src_or_dst_match does.
 */
export function resolveAddressSpec(
  spec: string,
  cluster: Pick<ParsedFirewall, 'aliases' | 'ipsets'>,
  resolvedIpsets: Map<string, ResolvedAddresses>,
): ResolvedAddresses {
  if (spec.startsWith('+')) {
    const m = new RegExp(`^\\+(guest/|dc/|sdn/)?(${ALIAS_SRC})$`).exec(spec);
    if (!m) throw new Error(`invalid security group name '${spec}'`);
    const scope = m[1] ?? '';
    const set = scope === 'guest/' || scope === 'sdn/' ? undefined : resolvedIpsets.get(m[2]!);
    if (!set) throw new Error(`no such ipset '${m[2]}'`);
    return set;
  }
  const am = new RegExp(`^(dc/|guest/)?(${ALIAS_SRC})$`).exec(spec);
  if (am) {
    const e = am[1] === 'guest/' ? undefined : cluster.aliases.get(am[2]!.toLowerCase());
    if (!e) throw new Error(`no such alias '${spec}'`);
    return { include: [canonicalCidr(e.cidr) ?? e.cidr], exclude: [], label: e.name };
  }
  const r = /^([^-]+)-([^-]+)$/.exec(spec);
  if (r) {
    const nets = rangeToNets(r[1]!, r[2]!);
    if (!nets) throw new Error(`invalid address range '${spec}'`);
    return { include: nets.map(netToString), exclude: [], label: spec };
  }
  const include = spec.split(',').map((s) => canonicalCidr(s));
  if (include.some((s) => s === undefined)) throw new Error(`invalid address '${spec}'`);
  return { include: include as string[], exclude: [], label: spec };
}

export { isIcmpProto, pt as perlTrue };
