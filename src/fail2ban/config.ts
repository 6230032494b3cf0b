/**
 * fail2ban's files as pve-baseline writes them, and `fail2ban-client`'s
 * output as it prints it (fail2ban/client/beautifier.py). Pure.
 */
import ipaddr from 'ipaddr.js';

export const JAIL_FILE = '/etc/fail2ban/jail.d/pve-baseline.local';
export const FILTER_NAME = 'pve-baseline-proxmox';
export const FILTER_FILE = `/etc/fail2ban/filter.d/${FILTER_NAME}.conf`;
export const JAILS = ['sshd', 'proxmox'] as const;
export type JailName = (typeof JAILS)[number];

/** Debian 12 and 13 both: Debian's unit is ssh.service, and OpenSSH 9.8 and later log from sshd-session. */
export const SSHD_JOURNALMATCH = '_SYSTEMD_UNIT=ssh.service + _COMM=sshd + _COMM=sshd-session';
export const PROXMOX_JOURNALMATCH = '_SYSTEMD_UNIT=pvedaemon.service';
export const PROXMOX_PORTS = 'https,http,8006';

export type Banaction = 'nftables-multiport' | 'iptables-multiport';

export interface JailSettings {
  ignoreip: string[];
  sshMaxretry: number;
  webMaxretry: number;
  findtimeMinutes: number;
  bantimeMinutes: number;
  banaction: Banaction;
}

const minutes = (n: number) => (n % 60 === 0 ? `${n / 60}h` : `${n}m`);

export function renderJailFile(s: JailSettings): string {
  const common = (maxretry: number) => [
    `maxretry = ${maxretry}`,
    `findtime = ${minutes(s.findtimeMinutes)}`,
    `bantime = ${minutes(s.bantimeMinutes)}`,
    `banaction = ${s.banaction}`,
    'ignoreself = true',
    `ignoreip = ${s.ignoreip.join(' ')}`,
  ];
  return [
    '# Written by pve-baseline (step "fail2ban"); the next run puts it back as the step wants it.',
    '# A .local file in jail.d: fail2ban reads jail.conf, jail.d/*.conf, jail.local, then jail.d/*.local,',
    "# the later value winning (jail.conf(5)), so these settings override Debian's jail.d/defaults-debian.conf,",
    '# and no package ships or rewrites a .local file, so an upgrade leaves it alone.',
    '#',
    '# Both jails read the journal (backend = systemd): Debian 12 and 13 have no /var/log/auth.log without rsyslog.',
    '# ignoreip: loopback, this node\'s own addresses (the sshd step proves "password refused" from here),',
    "# the firewall's management set and the operator's address: a ban must never cut the people who manage the node.",
    '# maxretry, findtime, bantime: the answers to the step\'s questions. SSH defaults to 4 failures, a little more than',
    '# one connection may make (MaxAuthTries 3); the web UI to 5, typed passwords and TOTP codes going wrong more often;',
    '# within 10 minutes; banned for 1 hour, so someone banned by mistake is back without the console.',
    `# banaction = ${s.banaction}: ${s.banaction === 'nftables-multiport' ? 'its own table (inet f2b-table) beside the Proxmox firewall\'s, which touches only the tables it generates' : 'iptables chains of its own (f2b-*), beside pve-firewall\'s'}.`,
    '',
    '[sshd]',
    'enabled = true',
    'backend = systemd',
    `journalmatch = ${SSHD_JOURNALMATCH}`,
    'port = ssh',
    ...common(s.sshMaxretry),
    '',
    '[proxmox]',
    'enabled = true',
    `filter = ${FILTER_NAME}`,
    'backend = systemd',
    `journalmatch = ${PROXMOX_JOURNALMATCH}`,
    `port = ${PROXMOX_PORTS}`,
    ...common(s.webMaxretry),
    '',
  ].join('\n');
}

/** The failregex of the web UI filter. */
export const PROXMOX_FAILREGEX = String.raw`^\s*(?:\S+ )?pvedaemon\[\d+\]: authentication failure; rhost=<ADDR> user=<F-USER>\S+</F-USER> msg=.*$`;

export function renderFilterFile(): string {
  return [
    '# Written by pve-baseline (step "fail2ban").',
    '# pvedaemon logs every failed login to the web UI or the API, at priority err, as',
    '#   authentication failure; rhost=ADDRESS user=USER@REALM msg=REASON',
    '# (pve-access-control, src/PVE/API2/AccessControl.pm, create_ticket). fail2ban\'s systemd backend',
    '# puts "HOSTNAME pvedaemon[PID]: " before it. <ADDR> also takes the IPv4-mapped form (::ffff:a.b.c.d).',
    "# Our own file: fail2ban's proxmox filter first shipped in 1.1.1, and Debian 13 has 1.1.0.",
    '',
    '[Definition]',
    `failregex = ${PROXMOX_FAILREGEX}`,
    'ignoreregex =',
    '',
    '[Init]',
    `journalmatch = ${PROXMOX_JOURNALMATCH}`,
    '',
  ].join('\n');
}

/** The `key = value` settings of one section of an INI file as fail2ban reads it (no continuation lines here). */
export function iniSection(text: string, name: string): Map<string, string> | undefined {
  let inside = false;
  let found: Map<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      inside = section[1] === name;
      if (inside) found ??= new Map();
      continue;
    }
    if (!inside || line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^([^=:\s]+)\s*[=:]\s*(.*)$/.exec(line);
    if (m) found!.set(m[1]!, m[2]!);
  }
  return found;
}

// --- fail2ban-client output ---------------------------------------------------

/** `fail2ban-client status`: the jails listed after "Jail list:", or null when it is not that output. */
export function parseJailList(stdout: string): string[] | null {
  const m = /^`- Jail list:\t?(.*)$/m.exec(stdout);
  if (!m) return null;
  return m[1]!.split(',').map((j) => j.trim()).filter(Boolean);
}

export interface JailStatus {
  jail: string;
  currentlyFailed: number;
  totalFailed: number;
  currentlyBanned: number;
  totalBanned: number;
  bannedIps: string[];
  journalMatches?: string;
}

/** `fail2ban-client status JAIL`, or null when it is not that output. */
export function parseJailStatus(stdout: string): JailStatus | null {
  const jail = /^Status for the jail: (\S+)$/m.exec(stdout)?.[1];
  if (!jail) return null;
  const field = (label: string) => new RegExp(`^[|\` ]*[|\`]- ${label}:\\t?(.*)$`, 'm').exec(stdout)?.[1]?.trim();
  const number = (label: string) => Number(field(label) ?? 'NaN');
  const banned = field('Banned IP list') ?? '';
  const matches = field('Journal matches');
  return {
    jail,
    currentlyFailed: number('Currently failed'),
    totalFailed: number('Total failed'),
    currentlyBanned: number('Currently banned'),
    totalBanned: number('Total banned'),
    bannedIps: banned.split(/\s+/).filter(Boolean),
    ...(matches !== undefined ? { journalMatches: matches } : {}),
  };
}

/** `fail2ban-client get JAIL ignoreip`: the list, [] for "No IP address/network is ignored", null otherwise. */
export function parseIgnoreList(stdout: string): string[] | null {
  if (/^No IP address\/network is ignored/m.test(stdout)) return [];
  if (!/^These IP addresses\/networks are ignored:/m.test(stdout)) return null;
  return stdout
    .split('\n')
    .map((l) => /^[|`]- (.+)$/.exec(l.trim())?.[1]?.trim())
    .filter((x): x is string => Boolean(x));
}

/** Whether `address` (an address or a network) lies inside one of `nets`. */
export function coveredBy(address: string, nets: readonly string[]): boolean {
  const [a = '', p] = address.split('/');
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(a);
    if (parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress()) parsed = parsed.toIPv4Address();
  } catch {
    return false;
  }
  const own = p === undefined ? (parsed.kind() === 'ipv4' ? 32 : 128) : Number(p);
  return nets.some((net) => {
    try {
      const [range, bits] = ipaddr.parseCIDR(net.includes('/') ? net : `${net}/${net.includes(':') ? 128 : 32}`);
      return range.kind() === parsed.kind() && bits <= own && parsed.match(range, bits);
    } catch {
      return false;
    }
  });
}
