/**
 * What node is this, and how is the operator connected? Read once at start;
 * everything here is cheap (one short command, a few small files).
 */
import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import type { Exec } from './exec.ts';

export type Session =
  | { kind: 'ssh'; clientAddress: string; clientPort: number; serverAddress: string; serverPort: number }
  | { kind: 'console'; tty?: string }
  | { kind: 'unknown' };

export interface ProxmoxInfo {
  /** e.g. "9.1.2" */
  version: string;
  major: number;
  /** Raw `pveversion` line, for the evidence appendix. */
  line: string;
}

export interface NodeInfo {
  hostname: string;
  /** Proxmox VE version, or null on a machine that is not a Proxmox node. */
  proxmox: ProxmoxInfo | null;
  /** Debian codename from /etc/os-release (trixie, bookworm, ...). */
  debian: { codename: string; version: string } | null;
  addresses: { iface: string; address: string; cidr: string; family: 'IPv4' | 'IPv6' }[];
  session: Session;
  term: string;
  isRoot: boolean;
  bootId: string;
  /** Set by the lab's rehearsal: the node is a stand-in, not a real Proxmox node. */
  rehearsal: boolean;
}

/** Parse `pveversion` output: "pve-manager/9.1.2/abcdef0123456789 (running kernel: ...)". */
export function parsePveversion(output: string): ProxmoxInfo | null {
  const line = output.split('\n').find((l) => l.startsWith('pve-manager/'));
  const match = line?.match(/^pve-manager\/(\d+)\.(\d+)(?:[.-]\d+)*/);
  if (!line || !match) return null;
  const version = line.split('/')[1] ?? '';
  return { version, major: Number(match[1]), line: line.trim() };
}

/** SSH_CONNECTION is "client-ip client-port server-ip server-port". */
export function parseSshConnection(value: string | undefined): Session | null {
  const parts = value?.trim().split(/\s+/);
  if (!parts || parts.length !== 4) return null;
  const [clientAddress, clientPort, serverAddress, serverPort] = parts as [string, string, string, string];
  return { kind: 'ssh', clientAddress, clientPort: Number(clientPort), serverAddress, serverPort: Number(serverPort) };
}

/**
 * SSH_CONNECTION of the nearest ancestor process that has one: `sudo`
 * resets the environment, but the login shell it was started from still
 * holds it (/proc/PID/environ; root may read every process's).
 */
export function ancestorSshConnection(start = process.ppid, read: (file: string) => string | null = (f) => readOr(f, null)): string | undefined {
  let pid = start;
  for (let depth = 0; depth < 16 && pid > 1; depth++) {
    const environ = read(`/proc/${pid}/environ`);
    const found = environ?.split('\0').find((e) => e.startsWith('SSH_CONNECTION='));
    if (found) return found.slice('SSH_CONNECTION='.length);
    // The parent is the 4th field of /proc/PID/stat, after the command name in parentheses.
    const stat = read(`/proc/${pid}/stat`);
    const parent = stat ? Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) : NaN;
    if (!Number.isInteger(parent)) return undefined;
    pid = parent;
  }
  return undefined;
}

/**
 * A terminal that is the machine's own: a virtual console (/dev/tty1), a
 * serial line (/dev/ttyS0, /dev/ttyAMA0, IPMI serial-over-LAN), a hypervisor
 * console (/dev/hvc0), or /dev/console. A pseudo-terminal (/dev/pts/N) never
 * is, whatever TERM says: SSH, tmux, screen and `machinectl shell` all give one.
 */
export const CONSOLE_TTY = /^\/dev\/(tty[0-9]+|ttyS[0-9]+|ttyAMA[0-9]+|hvc[0-9]+|console)$/;

/**
 * How the operator is connected. On the console a change to sshd cannot cut
 * the session, so the second-login proof may be skipped there: "console" is
 * therefore claimed only when it is certain (standard input is a console
 * device, and nothing says SSH, tmux or screen). Anything else is SSH or
 * unknown, where the proof is required. TERM says nothing about the
 * connection (TERM=linux is kept inside tmux and by hand); it only chooses
 * the glyphs.
 */
export function detectSession(env: NodeJS.ProcessEnv, tty?: string, ancestors: () => string | undefined = () => undefined): Session {
  const ssh = parseSshConnection(env.SSH_CONNECTION) ?? parseSshConnection(ancestors());
  if (ssh) return ssh;
  const viaSsh = Boolean(env.SSH_CONNECTION || env.SSH_CLIENT || env.SSH_TTY);
  const inMultiplexer = Boolean(env.TMUX || env.STY);
  if (tty && CONSOLE_TTY.test(tty) && !viaSsh && !inMultiplexer) return { kind: 'console', tty };
  return { kind: 'unknown' };
}

export function parseOsRelease(text: string): { codename: string; version: string } | null {
  const fields = Object.fromEntries(
    text
      .split('\n')
      .map((l) => l.match(/^([A-Z_]+)=(["']?)(.*)\2$/))
      .filter((m): m is RegExpMatchArray => m !== null)
      .map((m) => [m[1], m[3]]),
  );
  if (!fields.VERSION_CODENAME) return null;
  return { codename: fields.VERSION_CODENAME, version: fields.VERSION_ID ?? '' };
}

function readOr<T extends string | null>(file: string, fallback: T): string | T {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** The terminal on standard input (/dev/pts/0, /dev/tty1, ...), when there is one. */
function ttyName(): string | undefined {
  if (!process.stdin.isTTY) return undefined;
  try {
    return readlinkSync('/proc/self/fd/0');
  } catch {
    return undefined;
  }
}

export function localAddresses(): NodeInfo['addresses'] {
  const out: NodeInfo['addresses'] = [];
  for (const [iface, list] of Object.entries(os.networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv6' && a.address.startsWith('fe80:')) continue;
      out.push({ iface, address: a.address, cidr: a.cidr ?? a.address, family: a.family as 'IPv4' | 'IPv6' });
    }
  }
  return out;
}

export async function detectNode(exec: Exec, env: NodeJS.ProcessEnv = process.env): Promise<NodeInfo> {
  const pve = await exec.run(['pveversion']).catch(() => null);
  return {
    hostname: os.hostname(),
    proxmox: pve && pve.exitCode === 0 ? parsePveversion(pve.stdout) : null,
    debian: parseOsRelease(readOr('/etc/os-release', '')),
    addresses: localAddresses(),
    session: detectSession(env, ttyName(), ancestorSshConnection),
    term: env.TERM ?? '',
    isRoot: process.getuid?.() === 0,
    bootId: readOr('/proc/sys/kernel/random/boot_id', 'unknown').trim(),
    rehearsal: env.PVE_BASELINE_REHEARSAL === '1',
  };
}

/** A one-line description of the node for headers and logs. */
export function describeNode(node: NodeInfo): string {
  const pve = node.proxmox ? `Proxmox VE ${node.proxmox.version}` : 'not a Proxmox node';
  const debian = node.debian ? `Debian ${node.debian.version || node.debian.codename}` : 'unknown OS';
  return `${node.hostname} · ${pve} · ${debian}`;
}

export function describeSession(session: Session): string {
  switch (session.kind) {
    case 'ssh':
      return `SSH from ${session.clientAddress}`;
    case 'console':
      return session.tty ? `console (${session.tty})` : 'console';
    case 'unknown':
      return 'local terminal';
  }
}
