/**
 * The node's subscription, shared by the pvesubscription stand-in and the
 * lab's enterprise repository (pve-lab-mirror). Proxmox keeps it in
 * /etc/subscription (PVE::API2::Subscription read_etc_subscription: base64 of
 * the key and the shop's answer, with a checksum); the lab keeps the same
 * facts as JSON in that file, and the apt credentials where Proxmox writes
 * them (write_apt_auth).
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export const SUBSCRIPTION_FILE = process.env.PVE_LAB_SUBSCRIPTION ?? '/etc/subscription';
export const APT_AUTH_FILE = process.env.PVE_LAB_APT_AUTH ?? '/etc/apt/auth.conf.d/pve.conf';
export const PRICING_URL = 'https://www.proxmox.com/en/proxmox-virtual-environment/pricing';

export interface Subscription {
  status: 'active' | 'new' | 'notfound' | 'invalid' | 'expired' | 'suspended';
  key: string;
  serverid: string;
  checktime: number;
  regdate: string;
  nextduedate: string;
  level: string;
  productname: string;
  sockets: number;
  message?: string;
}

/** PVE::API2Tools::get_hwaddress: md5 of the node's RSA host key, upper case. */
export function serverId(): string {
  try {
    return createHash('md5').update(readFileSync('/etc/ssh/ssh_host_rsa_key.pub')).digest('hex').toUpperCase();
  } catch {
    return 'UNKNOWN';
  }
}

/** Physical CPU packages (/proc/cpuinfo `physical id`), at least 1. */
export function sockets(): number {
  try {
    const ids = new Set([...readFileSync('/proc/cpuinfo', 'utf8').matchAll(/^physical id\s*:\s*(\d+)/gm)].map((m) => m[1]));
    return Math.max(1, ids.size);
  } catch {
    return 1;
  }
}

export function readSubscription(): Subscription | undefined {
  try {
    return JSON.parse(readFileSync(SUBSCRIPTION_FILE, 'utf8')) as Subscription;
  } catch {
    return undefined;
  }
}

/** Key format (PVE::API2::Subscription's key pattern): pve + sockets + level, a dash, ten hex digits. */
export const KEY_PATTERN = /^pve([1248])([cbsp])-[0-9a-f]{10}$/;
const LEVELS: Record<string, string> = { c: 'Community', b: 'Basic', s: 'Standard', p: 'Premium' };

export function activate(key: string, now = new Date()): Subscription {
  const m = KEY_PATTERN.exec(key)!;
  const due = new Date(now);
  due.setUTCFullYear(due.getUTCFullYear() + 1);
  const day = (d: Date) => d.toISOString().slice(0, 10);
  const sub: Subscription = {
    status: 'active',
    key,
    serverid: serverId(),
    checktime: Math.floor(now.getTime() / 1000),
    regdate: `${day(now)} 00:00:00`,
    nextduedate: day(due),
    level: m[2]!,
    productname: `Proxmox VE ${LEVELS[m[2]!]} Subscription ${m[1]} CPU${m[1] === '1' ? '' : 's'}/year`,
    sockets: sockets(),
  };
  writeFileSync(SUBSCRIPTION_FILE, `${JSON.stringify(sub, null, 1)}\n`, { mode: 0o600 });
  // write_apt_auth: apt sends these to enterprise.proxmox.com (login = key, password = server id)
  mkdirSync(dirname(APT_AUTH_FILE), { recursive: true });
  writeFileSync(APT_AUTH_FILE, `machine enterprise.proxmox.com/debian\n login ${key}\n password ${sub.serverid}\n`, { mode: 0o600 });
  return sub;
}

export function removeSubscription(): void {
  rmSync(SUBSCRIPTION_FILE, { force: true });
  rmSync(APT_AUTH_FILE, { force: true });
}
