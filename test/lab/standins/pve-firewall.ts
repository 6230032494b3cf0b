/**
 * pve-firewall stand-in (pve-firewall's Service/pve_firewall.pm): the host
 * firewall compiled from /etc/pve/firewall/cluster.fw and
 * /etc/pve/nodes/<node>/host.fw (src/pve/firewall-compile.ts) and ENFORCED
 * with nftables in the node's network namespace (lib/firewall-nft.ts: one
 * table, `inet proxmox-firewall`, as the nftables proxmox-firewall daemon).
 *
 *   start [--debug]   the daemon; `--debug` keeps it in the foreground (PVE::Daemon),
 *                     which is what pve-firewall.service runs; without it: systemctl start
 *   stop              systemctl stop, and the table is removed (the daemon's shutdown
 *                     does it: "clear PVE-generated firewall rules")
 *   restart           systemctl reload-or-restart: a running daemon re-reads and applies now
 *                     (SIGHUP); returns once it has
 *   status            Status: enabled|disabled/running|stopped[ (pending changes)]
 *   compile           warnings to stderr, the nft script, detected changes|no changes[, firewall disabled]
 *   localnet          local hostname / IP / network, corosync peers
 *   simulate          Test packet: ... ACTION: ACCEPT|DROP|REJECT
 *
 * The daemon recompiles every 5 s (the nftables proxmox-firewall daemon's
 * loop; the Perl pve-firewall's `run` loops every 10 s) and applies when the
 * compiled script changed or the table is not what it applied. What it
 * applied is recorded under /run/pve-firewall/ so `status` and `compile` can
 * tell pending changes (Proxmox compares with the kernel's tables).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { DIE_EXIT_CODE, msg } from '../../../src/pve/messages.ts';
import { clusterFirewallEnabled, parseFwConfig } from '../../../src/pve/firewall-config.ts';
import { compileHostFirewall, simulate } from '../../../src/pve/firewall-compile.ts';
import { cleanCidr } from '../../../src/pve/firewall-rules.ts';
import type { HostFirewall, Packet } from '../../../src/pve/firewall-ir.ts';
import { nodename, readFile } from './lib/pmxcfs.ts';
import { getOptions, resolveCmd, runCli, type CmdTree, type Command } from './lib/cli.ts';
import { paramExc, PveError, type Params } from './lib/schema.ts';
import type { ApiMethod } from './lib/api.ts';
import { NFT_TABLE_REF, nftRemoveScript, renderNftScript, scriptHash } from './lib/firewall-nft.ts';

const UNIT = 'pve-firewall.service';
const STATE_DIR = process.env.PVE_LAB_FIREWALL_STATE ?? '/run/pve-firewall';
const APPLIED_HASH = `${STATE_DIR}/applied.sha256`;
const APPLIED_SCRIPT = `${STATE_DIR}/applied.nft`;
const PID_FILE = '/run/pve-firewall.pid';
/** the nftables proxmox-firewall daemon's loop (the Perl daemon's $updatetime is 10 s) */
const UPDATE_SECONDS = 5;

// ---------------------------------------------------------------------------
// what the node is

function readFileSyncSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** The address /etc/hosts gives the node name (remote_node_ip), and the network it sits in (local_network). */
function localAddress(): { ip: string; cidr: string } | undefined {
  const hosts = readFileSyncSafe('/etc/hosts');
  const name = nodename();
  const ip = hosts
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim().split(/\s+/))
    .find((f) => f.length > 1 && f.slice(1).some((h) => h === name || h.startsWith(`${name}.`)))?.[0];
  if (!ip) return undefined;
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.address === ip && a.cidr) return { ip, cidr: cleanCidr(a.cidr) };
    }
  }
  return { ip, cidr: '127.0.0.0/8' };
}

/** Firewall.pm local_network: detected, or 127.0.0.0/8 */
const detectedLocalNetwork = () => localAddress()?.cidr ?? '127.0.0.0/8';

function clusterEnabled(): boolean {
  return clusterFirewallEnabled(parseFwConfig(readFile('firewall/cluster.fw'), 'cluster').config);
}

function compileNow(): { fw: HostFirewall; script: string } {
  const node = nodename();
  const corosync = readFile('corosync.conf');
  const fw = compileHostFirewall({
    clusterFw: readFile('firewall/cluster.fw'),
    hostFw: readFile(`nodes/${node}/host.fw`),
    detectedLocalNetwork: detectedLocalNetwork(),
    ...(corosync !== undefined ? { corosyncConf: corosync } : {}),
    nodename: node,
    now: Math.floor(Date.now() / 1000),
  });
  return { fw, script: renderNftScript(fw) };
}

// ---------------------------------------------------------------------------
// the kernel side

function nft(args: string[], input?: string): { ok: boolean; out: string; err: string } {
  const r = spawnSync('nft', args, { input: input ?? '', encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function tablePresent(): boolean {
  return nft(['list', 'table', ...NFT_TABLE_REF.split(' ')]).ok;
}

function appliedHash(): string | undefined {
  return readFileSyncSafe(APPLIED_HASH).trim() || undefined;
}

function recordApplied(script: string): void {
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(`${APPLIED_SCRIPT}.tmp`, script);
  renameSync(`${APPLIED_SCRIPT}.tmp`, APPLIED_SCRIPT);
  writeFileSync(`${APPLIED_HASH}.tmp`, `${scriptHash(script)}\n`);
  renameSync(`${APPLIED_HASH}.tmp`, APPLIED_HASH);
}

function forgetApplied(): void {
  rmSync(APPLIED_HASH, { force: true });
  rmSync(APPLIED_SCRIPT, { force: true });
}

/** Does the kernel hold something other than what `script` would leave? */
function differs(fw: HostFirewall, script: string): boolean {
  return appliedHash() !== scriptHash(script) || tablePresent() !== fw.enabled;
}

function removeTable(): boolean {
  const r = nft(['-f', '-'], nftRemoveScript());
  forgetApplied();
  return r.ok;
}

function running(): boolean {
  return spawnSync('systemctl', ['is-active', '--quiet', UNIT]).status === 0;
}

function systemctl(verb: string): void {
  const r = spawnSync('systemctl', [verb, UNIT], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new PveError(`${verb} failed - systemctl ${verb} ${UNIT} exited ${r.status}\n`);
}

// ---------------------------------------------------------------------------
// the daemon (pve_firewall.pm `run`, proxmox-firewall's loop)

const log = (line: string) => process.stdout.write(`${line}\n`);

function summary(fw: HostFirewall): string {
  const own = fw.input.filter((r) => r.fromFile).length;
  return `${fw.input.length + 1} inbound rules (${own} from the files), policy_in ${fw.policyIn}, management ${[...fw.management.include, ...fw.management.exclude.map((e) => `!${e}`)].join(' ') || '-'}`;
}

function daemon(): void {
  const other = Number(readFileSyncSafe(PID_FILE).trim());
  if (other > 0 && other !== process.pid && existsSync(`/proc/${other}`) && readFileSyncSafe(`/proc/${other}/cmdline`).includes('pve-firewall')) {
    process.stderr.write("start failed - can't aquire lock '/var/run/pve-firewall.pid.lock' - Resource temporarily unavailable\n");
    process.exit(DIE_EXIT_CODE);
  }
  log('starting server');
  // the kernel may still hold a table from before (a daemon killed with SIGKILL): apply as if nothing were
  forgetApplied();
  let failedFor: string | undefined;
  let timer: NodeJS.Timeout | undefined;

  const update = (why: string) => {
    let compiled: { fw: HostFirewall; script: string };
    try {
      compiled = compileNow();
    } catch (e) {
      log(`status update error: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const { fw, script } = compiled;
    if (!differs(fw, script)) return;
    const r = nft(['-f', '-'], script);
    const hash = scriptHash(script);
    if (!r.ok) {
      if (failedFor !== hash) log(`status update error: nft -f failed, rules not applied: ${r.err.trim().split('\n').slice(0, 3).join(' | ')}`);
      failedFor = hash;
      return;
    }
    failedFor = undefined;
    recordApplied(script);
    if (fw.enabled) log(`${why}: applied table ${NFT_TABLE_REF}: ${summary(fw)} (sha256 ${hash.slice(0, 12)})`);
    else log(`${why}: firewall disabled (${fw.disabledBecause ?? 'disabled'}): table ${NFT_TABLE_REF} removed`);
  };

  const shutdown = () => {
    clearInterval(timer);
    log('server shutting down');
    log('clear PVE-generated firewall rules');
    if (!removeTable()) log(`removing table ${NFT_TABLE_REF} failed`);
    rmSync(PID_FILE, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // pve_firewall.pm `hup`: a restart request; the restarted daemon applies at once
  process.on('SIGHUP', () => {
    log('received signal HUP');
    forgetApplied();
    update('restart');
  });
  // the pid file says "signals are handled now" (`restart` waits for it: a HUP before would kill node)
  writeFileSync(PID_FILE, `${process.pid}\n`);
  update('start');
  timer = setInterval(() => update('update'), UPDATE_SECONDS * 1000);
}

// ---------------------------------------------------------------------------
// the commands

function printWarnings(fw: HostFirewall): void {
  for (const w of fw.warnings) process.stderr.write(`${w}\n`);
}

function corosyncPeers(conf: string, self: string): { name: string; ip: string; link: string }[] {
  // corosync.conf nodelist { node { name: x  ring0_addr: y } } (PVE::Corosync::for_all_corosync_addresses)
  const out: { name: string; ip: string; link: string }[] = [];
  const nodelist = /nodelist\s*\{([\s\S]*)/.exec(conf)?.[1] ?? '';
  for (const block of nodelist.split(/\bnode\s*\{/).slice(1)) {
    const body = block.split('}')[0] ?? '';
    const name = /^\s*name:\s*(\S+)/m.exec(body)?.[1];
    if (!name || name === self) continue;
    for (const m of body.matchAll(/^\s*(?:ring|link)(\d+)_addr:\s*(\S+)/gm)) out.push({ name, ip: m[2]!, link: m[1]! });
  }
  return out;
}

const bool = { type: 'boolean', optional: true } as const;
const method = (name: string, description: string, parameters: ApiMethod['parameters'], handler: (p: Params) => unknown): ApiMethod => ({
  name,
  path: name,
  method: 'GET',
  description,
  parameters,
  returns: { type: 'null' },
  handler,
});

const startCmd: Command = {
  method: method('start', 'Start the Proxmox VE firewall service.', { debug: { ...bool, default: 0 } }, () => {
    systemctl('start');
    return null;
  }),
};

const tree: CmdTree = {
  start: startCmd,
  stop: {
    method: method('stop', 'Stop the Proxmox VE firewall service.', {}, () => {
      systemctl('stop');
      // the daemon's shutdown removed it; when no daemon ran, remove it here
      removeTable();
      return null;
    }),
  },
  restart: {
    method: method('restart', 'Restart the Proxmox VE firewall service.', {}, () => {
      const pause = new Int32Array(new SharedArrayBuffer(4));
      // a daemon still starting has no SIGHUP handler yet: wait until it wrote its pid file
      for (let i = 0; i < 100 && running(); i++) {
        const main = spawnSync('systemctl', ['show', '-p', 'MainPID', '--value', UNIT], { encoding: 'utf8' }).stdout.trim();
        if (main !== '0' && readFileSyncSafe(PID_FILE).trim() === main) break;
        Atomics.wait(pause, 0, 0, 50);
      }
      systemctl('reload-or-restart');
      // lab: return once the restarted daemon has applied (at most 10 s), so a
      // `status` right after reads the new state rather than racing the SIGHUP
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && running()) {
        const { fw, script } = compileNow();
        if (!differs(fw, script)) break;
        Atomics.wait(pause, 0, 0, 100);
      }
      return null;
    }),
  },
  status: {
    method: method('status', 'Get firewall status.', {}, () => {
      const isRunning = running();
      const { fw, script } = compileNow();
      printWarnings(fw);
      process.stdout.write(`${msg.firewallStatus(clusterEnabled(), isRunning, isRunning && differs(fw, script))}\n`);
      return null;
    }),
  },
  compile: {
    method: method('compile', 'Compile and print firewall rules. This is useful for testing.', {}, () => {
      const { fw, script } = compileNow();
      printWarnings(fw);
      process.stdout.write(`nftables ruleset:\n${script}\n`);
      process.stdout.write(differs(fw, script) ? 'detected changes\n' : 'no changes\n');
      if (!clusterEnabled()) process.stdout.write('firewall disabled\n');
      return null;
    }),
  },
  localnet: {
    method: method('localnet', 'Print information about local network.', {}, () => {
      const local = localAddress();
      const cluster = parseFwConfig(readFile('firewall/cluster.fw'), 'cluster').config;
      const alias = cluster.sections
        .find((s) => /^\[ALIASES\]/i.test(s.header))
        ?.lines.map((l) => l.trim().split(/\s+/))
        .find((f) => f[0]?.toLowerCase() === 'local_network')?.[1];
      const name = nodename();
      const out = [`local hostname: ${name}`, `local IP address: ${local?.ip ?? ''}`, `network auto detect: ${detectedLocalNetwork()}`];
      out.push(alias ? `using user defined local_network: ${alias}` : `using detected local_network: ${detectedLocalNetwork()}`);
      const corosync = readFile('corosync.conf');
      if (corosync !== undefined) {
        out.push('', 'accepting corosync traffic from/to:');
        const peers = corosyncPeers(corosync, name);
        for (const p of peers) out.push(` - ${p.name}: ${p.ip} (link: ${p.link})`);
        if (peers.length === 0) out.push(' - no nodes found');
      }
      process.stdout.write(`${out.join('\n')}\n`);
      return null;
    }),
  },
  simulate: {
    method: method(
      'simulate',
      "Simulate firewall rules. This does not simulates the kernel 'routing' table, but simply assumes that routing from source zone to destination zone is possible.",
      {
        verbose: { ...bool, default: 0 },
        from: { type: 'string', pattern: '(host|outside|vm\\d+|ct\\d+|([a-zA-Z][a-zA-Z0-9]{0,9})/(\\S+))', optional: true, default: 'outside' },
        to: { type: 'string', pattern: '(host|outside|vm\\d+|ct\\d+|([a-zA-Z][a-zA-Z0-9]{0,9})/(\\S+))', optional: true, default: 'host' },
        protocol: { type: 'string', pattern: '(tcp|udp)', optional: true, default: 'tcp' },
        dport: { type: 'integer', minimum: 1, maximum: 65535, optional: true },
        sport: { type: 'integer', minimum: 1, maximum: 65535, optional: true },
        source: { type: 'string', format: 'ipv4', optional: true },
        dest: { type: 'string', format: 'ipv4', optional: true },
      },
      (p) => {
        const bad: Record<string, string> = {};
        for (const k of ['source', 'dest'] as const) {
          if (p[k] !== undefined && !isIPv4(String(p[k]))) bad[k] = `${msg.invalidFormat('value does not look like a valid IPv4 address')}\n`;
        }
        if (Object.keys(bad).length) paramExc(bad);
        const { fw } = compileNow();
        printWarnings(fw);
        const hostIp = localAddress()?.ip ?? '127.0.0.1';
        const test = {
          from: String(p.from ?? 'outside'),
          to: String(p.to ?? 'host'),
          proto: String(p.protocol ?? 'tcp'),
          source: p.source,
          dest: p.dest,
          dport: p.dport,
          sport: p.sport,
        };
        if (test.from === test.to) throw new PveError('from/to needs to be different\n');
        if (test.to !== 'host') throw new PveError(`pve-baseline lab: only traffic to the host is modelled (--to host), not '${test.to}'\n`);
        if (/^(vm|ct)\d+$/.test(test.from)) throw new PveError(`pve-baseline lab: the node has no guests ('${test.from}')\n`);
        process.stdout.write('Test packet:\n');
        for (const k of ['from', 'to', 'proto', 'source', 'dest', 'dport', 'sport'] as const) {
          if (test[k] !== undefined) process.stdout.write(`  ${k.padEnd(8)}: ${test[k]}\n`);
        }
        // FirewallSimulator simulate_firewall: from outside the packet enters the host on vmbr0; from host on lo
        const bridge = /^([a-zA-Z][a-zA-Z0-9]{0,9})\//.exec(test.from)?.[1];
        const packet: Packet = {
          source: test.source !== undefined ? String(test.source) : test.from === 'host' ? hostIp : '0.0.0.0',
          dest: test.dest !== undefined ? String(test.dest) : hostIp,
          proto: test.proto,
          iface: test.from === 'host' ? 'lo' : bridge ?? 'vmbr0',
          destType: 'UNICAST',
          ctState: 'new',
          ...(test.dport !== undefined ? { dport: Number(test.dport) } : {}),
          ...(test.sport !== undefined ? { sport: Number(test.sport) } : {}),
        };
        // a disabled firewall compiles no host chain: nothing stops the packet
        const res = fw.enabled ? simulate(fw, packet) : { verdict: 'ACCEPT' as const, trace: [`firewall disabled${fw.disabledBecause ? `: ${fw.disabledBecause}` : ''}`] };
        if (Number(p.verbose ?? 0) === 1) for (const t of res.trace) process.stdout.write(`${t.replace(/\n$/, '')}\n`);
        process.stdout.write(`ACTION: ${res.verdict}\n`);
        return null;
      },
    ),
  },
};

// `start --debug` is the daemon and never returns: everything else goes through the CLI handler
const argv = process.argv.slice(2);
const resolved = resolveCmd('pve-firewall', tree, argv);
let runDaemon = false;
if (resolved.def === startCmd) {
  try {
    const params = getOptions(startCmd.method.parameters, resolved.args, startCmd);
    runDaemon = params.debug === '1';
  } catch {
    /* runCli reports it */
  }
}
if (runDaemon) daemon();
else runCli('pve-firewall', tree, argv);
