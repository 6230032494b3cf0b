/**
 * pve-firewall stand-in: `status` and `localnet` (pve-firewall's Service/pve_firewall.pm).
 * It compiles no rules; "running" means the lab's pve-firewall.service runs.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { DIE_EXIT_CODE, msg } from '../../../src/pve/messages.ts';
import { clusterFirewallEnabled, parseFwConfig } from '../../../src/pve/firewall-config.ts';
import { nodename, readFile } from './lib/pmxcfs.ts';

const cmd = process.argv[2];

function running(): boolean {
  return spawnSync('systemctl', ['is-active', '--quiet', 'pve-firewall.service']).status === 0;
}

function localAddress(): { ip: string; cidr: string } | undefined {
  // the address /etc/hosts gives the node name, and the network it sits in
  const hosts = readFileSyncSafe('/etc/hosts');
  const name = nodename();
  const ip = hosts
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim().split(/\s+/))
    .find((f) => f.length > 1 && f.slice(1).some((h) => h === name || h.startsWith(`${name}.`)))?.[0];
  if (!ip) return undefined;
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.address === ip && a.cidr) {
        const [addr, len] = a.cidr.split('/') as [string, string];
        const n = addr.split('.').reduce((x, o) => (x << 8) + Number(o), 0) >>> 0;
        const mask = Number(len) === 0 ? 0 : (~0 << (32 - Number(len))) >>> 0;
        const net = n & mask;
        return { ip, cidr: `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${len}` };
      }
    }
  }
  return { ip, cidr: '127.0.0.0/8' };
}

function readFileSyncSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

if (cmd === 'status') {
  const cluster = parseFwConfig(readFile('firewall/cluster.fw'), 'cluster').config;
  process.stdout.write(`${msg.firewallStatus(clusterFirewallEnabled(cluster), running(), false)}\n`);
  process.exit(0);
} else if (cmd === 'localnet') {
  const local = localAddress();
  const cluster = parseFwConfig(readFile('firewall/cluster.fw'), 'cluster').config;
  const alias = cluster.sections
    .find((s) => /^\[ALIASES\]/i.test(s.header))
    ?.lines.map((l) => l.trim().split(/\s+/))
    .find((f) => f[0]?.toLowerCase() === 'local_network')?.[1];
  process.stdout.write(`local hostname: ${nodename()}\n`);
  process.stdout.write(`local IP address: ${local?.ip ?? ''}\n`);
  process.stdout.write(`network auto detect: ${local?.cidr ?? '127.0.0.0/8'}\n`);
  process.stdout.write(alias ? `using user defined local_network: ${alias}\n` : `using detected local_network: ${local?.cidr ?? '127.0.0.0/8'}\n`);
  process.exit(0);
} else {
  process.stderr.write(`${msg.errorPrefix(cmd === undefined ? msg.noCommandSpecified() : msg.unknownCommand(`pve-firewall ${cmd}`))}\n`);
  process.stderr.write(`${msg.usageHeader('pve-firewall')}\n       pve-firewall localnet\n       pve-firewall status\n`);
  process.exit(DIE_EXIT_CODE);
}
