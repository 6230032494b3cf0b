/**
 * Kernel and network sysctl settings that are safe on a Proxmox VE node.
 *
 * Generic hardening lists (dev-sec, Lynis) also turn off IP forwarding,
 * router advertisements and module loading; on a hypervisor those break
 * routed and NAT guests, SDN, SLAAC on the management address, ZFS and new
 * NICs. They are deliberately absent here, and the reasons are kept with the
 * settings so the wizard and the document can say so. Every value chosen can
 * be set back at runtime (no one-way switches such as modules_disabled).
 */
import type { Change } from '../src/engine/change.ts';
import type { Check, Step, StepContext } from '../src/engine/step.ts';
import { bullets, code, paragraph, table, type DocumentSection } from '../src/report/section.ts';

export const SYSCTL_FILE = '/etc/sysctl.d/90-pve-baseline.conf';

interface Setting {
  key: string;
  value: string;
  why: string;
}

const SETTINGS: Setting[] = [
  { key: 'kernel.kptr_restrict', value: '2', why: 'hide kernel addresses from everyone, which exploits use to defeat KASLR' },
  { key: 'kernel.dmesg_restrict', value: '1', why: 'only root may read the kernel log' },
  { key: 'kernel.yama.ptrace_scope', value: '1', why: 'a process may only trace its own children' },
  { key: 'fs.protected_fifos', value: '1', why: 'no writing into FIFOs owned by others in sticky directories such as /tmp' },
  { key: 'fs.protected_regular', value: '2', why: 'no opening files owned by others in sticky directories for writing' },
  { key: 'fs.suid_dumpable', value: '0', why: 'setuid programs leave no core dumps holding their secrets' },
  { key: 'net.ipv4.conf.all.accept_redirects', value: '0', why: 'ICMP redirects can reroute the node’s traffic' },
  { key: 'net.ipv4.conf.default.accept_redirects', value: '0', why: 'the same for interfaces created later (bridges, VLANs)' },
  { key: 'net.ipv4.conf.all.secure_redirects', value: '0', why: 'not even redirects from listed gateways' },
  { key: 'net.ipv4.conf.default.secure_redirects', value: '0', why: 'the same for interfaces created later' },
  { key: 'net.ipv6.conf.all.accept_redirects', value: '0', why: 'ICMPv6 redirects can reroute the node’s traffic' },
  { key: 'net.ipv6.conf.default.accept_redirects', value: '0', why: 'the same for interfaces created later' },
  { key: 'net.ipv4.conf.all.send_redirects', value: '0', why: 'the node is not a router for its LAN; guests route through it only by design' },
  { key: 'net.ipv4.conf.default.send_redirects', value: '0', why: 'the same for interfaces created later' },
  { key: 'net.ipv4.conf.all.accept_source_route', value: '0', why: 'source-routed packets let a sender choose the path' },
  { key: 'net.ipv4.conf.default.accept_source_route', value: '0', why: 'the same for interfaces created later' },
  { key: 'net.ipv6.conf.all.accept_source_route', value: '0', why: 'the same for IPv6' },
  { key: 'net.ipv4.conf.all.log_martians', value: '1', why: 'log packets with impossible source addresses' },
  { key: 'net.ipv4.icmp_echo_ignore_broadcasts', value: '1', why: 'no smurf amplification through broadcast pings' },
  { key: 'net.ipv4.icmp_ignore_bogus_error_responses', value: '1', why: 'do not log malformed ICMP errors (log flooding)' },
  { key: 'net.ipv4.tcp_syncookies', value: '1', why: 'survive SYN floods against the web UI (8006) and SSH' },
  { key: 'net.ipv4.tcp_rfc1337', value: '1', why: 'drop RST packets for connections in TIME-WAIT (RFC 1337)' },
];

/** Left alone on purpose; shown in the file so the next reader knows. */
export const NOT_TOUCHED = [
  'net.ipv4.ip_forward and IPv6 forwarding: routed/NAT guests and SDN need them',
  'accept_ra/autoconf: would drop SLAAC on the management interface',
  'kernel.modules_disabled: would stop ZFS, new NICs and PCI passthrough',
  'kernel.sysrq: the console keys are a recovery path',
];

interface SysctlFacts {
  file: string | null;
  /** Live value of each setting, null when this kernel has no such key or it cannot be set here. */
  live: Record<string, string | null>;
}

function procPath(key: string): string {
  return `/proc/sys/${key.replace(/\./g, '/')}`;
}

async function readLive(ctx: StepContext, key: string): Promise<string | null> {
  const path = procPath(key);
  const value = await ctx.files.read(path);
  if (value === null) return null;
  // In a container the kernel.* keys belong to the host and are read-only.
  if (!(await ctx.files.writable(path))) return null;
  return value.trim().split(/\s+/).join(' ');
}

/** The settings this node can take (its kernel has the key and lets us set it). */
function applicable(facts: SysctlFacts): Setting[] {
  return SETTINGS.filter((s) => facts.live[s.key] !== null && facts.live[s.key] !== undefined);
}

export function renderFile(settings: Setting[], skipped: string[]): string {
  const lines = ['# Written by pve-baseline (step "sysctl"). Safe for Proxmox VE; see the reasons below.', ''];
  for (const s of settings) lines.push(`# ${s.why}`, `${s.key} = ${s.value}`, '');
  lines.push('# Deliberately not set on a Proxmox VE node:', ...NOT_TOUCHED.map((n) => `#   ${n}`));
  if (skipped.length) lines.push('# Not settable on this node (absent or read-only here):', ...skipped.map((k) => `#   ${k}`));
  return `${lines.join('\n')}\n`;
}

export const sysctlStep: Step<SysctlFacts> = {
  id: 'sysctl',
  title: 'Kernel and network sysctl settings',
  summary: 'Hides kernel addresses, refuses ICMP redirects and source routing, keeps forwarding for guests.',
  scope: 'node',
  risk: 'safe',

  async probe(ctx) {
    const live: Record<string, string | null> = {};
    for (const s of SETTINGS) live[s.key] = await readLive(ctx, s.key);
    return { file: await ctx.files.read(SYSCTL_FILE), live };
  },

  notApplicable(facts) {
    return applicable(facts).length === 0 ? 'no setting can be changed here (/proc/sys is read-only: a container, or not root)' : undefined;
  },

  plan(facts) {
    const settings = applicable(facts);
    const skipped = SETTINGS.filter((s) => !settings.includes(s)).map((s) => s.key);
    const wanted = renderFile(settings, skipped);
    const changes: Change[] = [];
    if (facts.file !== wanted) {
      changes.push({
        kind: 'file',
        path: SYSCTL_FILE,
        before: facts.file,
        after: wanted,
        mode: 0o644,
        owner: { uid: 0, gid: 0 },
        reason: 'keeps the settings across reboots, each with its reason',
      });
    }
    const differing = settings.filter((s) => facts.live[s.key] !== s.value);
    if (differing.length) {
      changes.push({
        kind: 'command',
        argv: ['sysctl', '-p', SYSCTL_FILE],
        undo: ['sysctl', '-w', ...differing.map((s) => `${s.key}=${facts.live[s.key]}`)],
        reason: `sets ${differing.length} value${differing.length > 1 ? 's' : ''} now, without a reboot: ${differing.map((s) => s.key).join(', ')}`,
      });
    }
    return changes;
  },

  document: (ctx) => sysctlDocument(ctx),

  async verify(ctx) {
    const facts = await this.probe(ctx);
    const checks: Check[] = applicable(facts).map((s) => ({
      label: `${s.key} = ${s.value}`,
      ok: facts.live[s.key] === s.value,
      ...(facts.live[s.key] !== s.value ? { detail: `is ${facts.live[s.key]}` } : {}),
    }));
    checks.unshift({ label: `${SYSCTL_FILE} in place`, ok: facts.file !== null, ...(facts.file === null ? { detail: 'missing' } : {}) });
    return checks;
  },
};

/** The kernel settings' part of the access-policy document: each value in force against the baseline's, with its reason. */
export async function sysctlDocument(ctx: StepContext): Promise<DocumentSection> {
  const file = await ctx.files.read(SYSCTL_FILE);
  const rows: string[][] = [];
  for (const s of SETTINGS) {
    const live = await readLive(ctx, s.key);
    rows.push([`\`${s.key}\``, s.value, live === null ? 'not settable here' : live === s.value ? live : `${live} (differs)`, s.why]);
  }
  return {
    heading: 'Kernel and network settings',
    blocks: [
      paragraph(
        file === null
          ? `pve-baseline has not written ${code(SYSCTL_FILE)} on this node: the values in force are the kernel's and Proxmox VE's defaults.`
          : `${code(SYSCTL_FILE)} keeps these settings across reboots; the values in force are read from ${code('/proc/sys')}.`,
      ),
      table(['Setting', 'Baseline', 'In force', 'Why'], rows),
      paragraph('Deliberately not set on a Proxmox VE node:'),
      bullets(NOT_TOUCHED),
    ],
    evidence: [`read ${SYSCTL_FILE}`, 'read /proc/sys (each setting above)'],
  };
}
