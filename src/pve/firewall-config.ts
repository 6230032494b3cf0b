/**
 * Proxmox VE firewall files (pve-firewall's Firewall.pm): /etc/pve/firewall/cluster.fw
 * and /etc/pve/nodes/<node>/host.fw, at the level of their [OPTIONS] section.
 * Other sections are kept as written, in order. Plain data, no I/O.
 *
 * [derived] Proxmox writes options in Perl hash order (unpredictable); this
 * writer uses sorted order.
 */
import { msg } from './messages.ts';

export type FwKind = 'cluster' | 'host';

export interface FwConfig {
  options: Map<string, string>;
  /** every section but [OPTIONS]: header line and its body lines, verbatim */
  sections: { header: string; lines: string[] }[];
}

export interface FwParseResult {
  config: FwConfig;
  warnings: string[];
}

const LOG_LEVEL = /^(emerg|alert|crit|err|warning|notice|info|debug|nolog)$/;
const BOOL = /^[01]$/;
const NUM = /^\d+$/;

const CLUSTER_OPTIONS: Record<string, RegExp> = {
  enable: NUM,
  ebtables: BOOL,
  policy_in: /^(ACCEPT|DROP|REJECT)$/i,
  policy_out: /^(ACCEPT|DROP|REJECT)$/i,
  policy_forward: /^(ACCEPT|DROP|REJECT)$/i,
  log_ratelimit: /^\S+$/,
};

const HOST_OPTIONS: Record<string, RegExp> = {
  enable: BOOL,
  nosmurfs: BOOL,
  tcpflags: BOOL,
  ndp: BOOL,
  log_nf_conntrack: BOOL,
  nf_conntrack_allow_invalid: BOOL,
  protection_synflood: BOOL,
  nftables: BOOL,
  log_level_in: LOG_LEVEL,
  log_level_out: LOG_LEVEL,
  log_level_forward: LOG_LEVEL,
  tcp_flags_log_level: LOG_LEVEL,
  smurf_log_level: LOG_LEVEL,
  nf_conntrack_helpers: /^.*$/,
  nf_conntrack_max: NUM,
  nf_conntrack_tcp_timeout_established: NUM,
  nf_conntrack_tcp_timeout_syn_recv: NUM,
  protection_synflood_rate: NUM,
  protection_synflood_burst: NUM,
  protection_limit: NUM,
};

export const FW_OPTIONS: Record<FwKind, Record<string, RegExp>> = { cluster: CLUSTER_OPTIONS, host: HOST_OPTIONS };

export function parseFwConfig(raw: string | undefined, kind: FwKind, filename = `${kind}.fw`): FwParseResult {
  const config: FwConfig = { options: new Map(), sections: [] };
  const warnings: string[] = [];
  let section: string | undefined;
  let current: { header: string; lines: string[] } | undefined;
  const lines = (raw ?? '').split('\n');
  lines.forEach((rawLine, i) => {
    const line = rawLine.replace(/^[ \t]+|[ \t]+$/g, '');
    const header = /^\[([^\]]+)\]\s*(#.*)?$/.exec(line);
    if (header) {
      section = header[1]!.trim().toUpperCase();
      if (section === 'OPTIONS') {
        current = undefined;
      } else {
        current = { header: line, lines: [] };
        config.sections.push(current);
      }
      return;
    }
    if (current) {
      current.lines.push(rawLine);
      return;
    }
    if (line === '' || line.startsWith('#')) return;
    if (section !== 'OPTIONS') {
      warnings.push(`${filename} (line ${i + 1}): skip line - no section`);
      return;
    }
    const m = /^([a-z_]+):\s*(\S+)\s*$/.exec(line);
    const check = m ? FW_OPTIONS[kind][m[1]!] : undefined;
    if (!m || !check || !check.test(m[2]!)) {
      warnings.push(`${filename} (line ${i + 1}) - ${msg.firewallCantParseOption(line)}`);
      return;
    }
    const value = /^policy_/.test(m[1]!) ? m[2]!.toUpperCase() : m[2]!;
    config.options.set(m[1]!, value);
  });
  // drop trailing blank lines of each kept section; the writer adds its own separators
  for (const s of config.sections) while (s.lines.length && s.lines[s.lines.length - 1]!.trim() === '') s.lines.pop();
  return { config, warnings };
}

/** The file text, or null when the config is empty (Proxmox then deletes the file). */
export function writeFwConfig(config: FwConfig): string | null {
  let out = '';
  if (config.options.size > 0) {
    out += '[OPTIONS]\n\n';
    for (const key of [...config.options.keys()].sort()) out += `${key}: ${config.options.get(key)}\n`;
    out += '\n';
  }
  for (const s of config.sections) {
    out += `${s.header}\n`;
    const body = s.lines.join('\n');
    out += body.startsWith('\n') || body === '' ? body : `\n${body}`;
    out += '\n\n';
  }
  return out === '' ? null : out;
}

/**
 * Cluster `enable` as pve-firewall's rule compiler sees it: a value > 1 is a
 * timestamp and counts only while it is less than 60 s old.
 */
export function clusterFirewallEnabled(config: FwConfig, now = Math.floor(Date.now() / 1000)): boolean {
  const v = Number(config.options.get('enable') ?? '0');
  if (v > 1) return now - v <= 60;
  return v === 1;
}

/** Host firewall: active unless host.fw says `enable: 0`. */
export function hostFirewallEnabled(config: FwConfig | undefined): boolean {
  return config?.options.get('enable') !== '0';
}
