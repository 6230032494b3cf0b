/**
 * The lab: a booted Debian 13 node (real systemd, real sshd) in a network
 * namespace of its own, reachable from the host side of a veth pair (the
 * operator's workstation). Programmatic API for tests, benchmarks and the
 * `npm run lab` command (cli.ts).
 *
 *   const lab = await ensureLab();            // build if needed, boot if needed (idempotent across processes)
 *   await lab.exec(['systemctl', 'is-system-running']);   // as root in the node (nsenter: works even when sshd is broken)
 *   await lab.ssh({ user: 'root', password: ROOT_PASSWORD }, 'id');   // a real SSH login from the workstation side
 *   await lab.reboot();   await lab.reset();   await down();
 *
 * State: images in CACHE_DIR, the node's disk (overlay upper dir) in
 * STATE_DIR, pids/mount/logs in RUN_DIR (config.ts).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, closeSync, copyFileSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Client, type ConnectConfig } from 'ssh2';
import {
  CACHE_DIR,
  HOST_IF,
  HOSTNAME,
  DOMAIN,
  LAB_DIR,
  MACHINE_NAME,
  NETNS,
  NODE_ADDRESS,
  NODE_ENV,
  NODE_IF,
  OUTSIDER_ADDRESS,
  PREFIX_LEN,
  REMOTE_NETWORK,
  REMOTE_OPERATOR_ADDRESS,
  ROOT_PASSWORD,
  RUN_DIR,
  STATE_DIR,
  WORKSTATION_ADDRESS,
  NODES,
  PVE1,
  PVE2,
  paths,
  type NodeSpec,
} from './config.ts';
import { ensureImages, mountsUnder, type Images } from './build.ts';
import { run, runOk, sleep, waitFor, type RunResult } from './sh.ts';
import { KERNEL_N, KERNEL_N1, REMOVAL_SOURCES, SLOW_POSTINST_FILE, THROTTLE_FILE } from './recipe/apt-world.ts';

export { NODE_ADDRESS, WORKSTATION_ADDRESS, REMOTE_OPERATOR_ADDRESS, OUTSIDER_ADDRESS, HOSTNAME, ROOT_PASSWORD };
/** The kernel a fresh node runs, and the one the upgrade installs (recipe/apt-world.ts). */
export { KERNEL_N, KERNEL_N1 };
/** A subscription key of the right form: `pvesubscription set` makes it active at once in the lab. */
export const LAB_SUBSCRIPTION_KEY = 'pve1c-0123456789';
/** Where the node records the kernel this boot "runs" (`uname -r` answers it). */
export const RUNNING_KERNEL_FILE = '/run/pve-lab/running-kernel';
export type { RunResult };

type Log = (line: string) => void;
const quiet: Log = () => {};

export interface ExecOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface SshOptions {
  user: string;
  password?: string;
  privateKey?: string | Buffer;
  passphrase?: string;
  input?: string;
  timeoutMs?: number;
  /** the workstation-side address to connect from (WORKSTATION_ADDRESS, REMOTE_OPERATOR_ADDRESS, OUTSIDER_ADDRESS) */
  from?: string;
}

/** What a TCP connection attempt met: an accepting port, a reset (REJECT or nothing listening), silence (DROP). */
export type TcpProbeResult = 'connected' | 'refused' | 'timed out' | 'unreachable';

export interface LabStatus {
  running: boolean;
  systemState?: string;
  hostname: string;
  nodeAddress: string;
  workstationAddress: string;
  netns: string;
  hostInterface: string;
  supervisorPid?: number;
  nspawnPid?: number;
  leaderPid?: number;
  images: { base: string; layer: string; current: boolean } | undefined;
  root: string;
  disk: string;
  buildSeconds?: { base?: number; layer?: number };
}

// ---------------------------------------------------------------------------
// processes

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function alive(pid: number | undefined): pid is number {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    // a zombie is not alive
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function procStat(pid: number): { comm: string; ppid: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const m = /^\d+ \((.*)\) \S+ (\d+)/s.exec(s);
    return m ? { comm: m[1]!, ppid: Number(m[2]) } : undefined;
  } catch {
    return undefined;
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** pids from our pid files, only if they still are our processes (never signal a recycled pid) */
function supervisorPid(node: NodeSpec = PVE1): number | undefined {
  const pid = readPid(node.paths.supervisorPid);
  return alive(pid) && cmdline(pid).includes('supervisor.sh') && cmdline(pid).includes(`${node.paths.root} `) ? pid : undefined;
}

function nspawnPid(node: NodeSpec = PVE1): number | undefined {
  const pid = readPid(node.paths.nspawnPid);
  return alive(pid) && procStat(pid)?.comm === 'systemd-nspawn' && cmdline(pid).includes(`${node.paths.root} `) ? pid : undefined;
}

/** the node's PID 1: systemd, a child of the current systemd-nspawn */
function leaderPid(node: NodeSpec = PVE1): number | undefined {
  const nspawn = nspawnPid(node);
  if (!alive(nspawn)) return undefined;
  for (const pid of allPids()) {
    const st = procStat(pid);
    if (st?.ppid !== nspawn || st.comm !== 'systemd') continue;
    try {
      const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim().split(/\s+/);
      if (nspid && nspid.length > 1 && nspid[nspid.length - 1] === '1') return pid;
    } catch {
      /* gone */
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// the cross-process lock (mkdir; the owner's pid inside; stale when the owner died)

async function withLock<T>(fn: () => Promise<T>, log: Log): Promise<T> {
  mkdirSync(RUN_DIR, { recursive: true });
  const owner = join(paths.lock, 'pid');
  let waited = false;
  for (;;) {
    try {
      mkdirSync(paths.lock);
      writeFileSync(owner, String(process.pid));
      break;
    } catch {
      const pid = readPid(owner);
      if (pid === process.pid) return fn(); // re-entrant
      if (!alive(pid)) {
        // stale (or its owner is between mkdir and writing its pid: give it a moment)
        await sleep(200);
        if (!alive(readPid(owner))) rmSync(paths.lock, { recursive: true, force: true });
        continue;
      }
      if (!waited) log(`waiting for another lab command (pid ${pid})`);
      waited = true;
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(paths.lock, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// network: a bridge on the host holding the workstation's addresses; each node a
// namespace of its own joined to it by a veth pair; IPv6 off everywhere; a node
// routes only the workstation's "remote" /24 (REMOTE_NETWORK) beyond its own,
// back to the bridge

function netnsExists(node: NodeSpec = PVE1): boolean {
  return existsSync(`/run/netns/${node.netns}`);
}

function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/** a port of the lab's bridge? */
function onBridge(link: string): boolean {
  try {
    return readlinkSync(`/sys/class/net/${link}/master`).endsWith(`/${HOST_IF}`);
  } catch {
    return false;
  }
}

/**
 * The workstation: a bridge with its address and the remote operator's and
 * the outsider's (/32, no route on the host). The host's netfilter is kept off
 * the bridge (br_netfilter would otherwise pass the lab's frames through the
 * host's own iptables rules).
 */
async function ensureBridge(): Promise<void> {
  if (!linkExists(HOST_IF)) {
    await runOk('ip', ['link', 'add', HOST_IF, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'nf_call_iptables', '0', 'nf_call_ip6tables', '0', 'nf_call_arptables', '0']);
    await runOk('sysctl', ['-q', '-w', `net.ipv6.conf.${HOST_IF}.disable_ipv6=1`]);
    await runOk('ip', ['addr', 'add', `${WORKSTATION_ADDRESS}/${PREFIX_LEN}`, 'dev', HOST_IF]);
    await runOk('ip', ['link', 'set', HOST_IF, 'up']);
  }
  for (const a of [REMOTE_OPERATOR_ADDRESS, OUTSIDER_ADDRESS]) await runOk('ip', ['addr', 'replace', `${a}/32`, 'dev', HOST_IF]);
}

/** A veth pair from the bridge into a namespace of its own, named `inside` there; IPv6 off on both ends. */
async function vethIntoNamespace(hostLink: string, netns: string, inside: string): Promise<void> {
  await runOk('ip', ['netns', 'add', netns]);
  await run('ip', ['link', 'del', hostLink]);
  await runOk('ip', ['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', inside, 'netns', netns]);
  await runOk('sysctl', ['-q', '-w', `net.ipv6.conf.${hostLink}.disable_ipv6=1`]);
  await runOk('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
  await runOk('ip', ['link', 'set', hostLink, 'master', HOST_IF]);
  await runOk('ip', ['link', 'set', hostLink, 'up']);
}

/** The bridge, and the node's namespace on it (kept when it is there: it outlives the node's reboots). */
async function createNetwork(node: NodeSpec = PVE1): Promise<void> {
  await ensureBridge();
  if (netnsExists(node) && onBridge(node.hostLink)) {
    await nodeRoutes(node); // a namespace made before they existed gets them too
    return;
  }
  await destroyNodeNetwork(node);
  await vethIntoNamespace(node.hostLink, node.netns, NODE_IF);
  const inNs = (...args: string[]) => runOk('ip', ['-n', node.netns, ...args]);
  await inNs('addr', 'add', `${node.address}/${PREFIX_LEN}`, 'dev', NODE_IF);
  await inNs('link', 'set', 'lo', 'up');
  await inNs('link', 'set', NODE_IF, 'up');
  await nodeRoutes(node);
}

/**
 * In the node's namespace a route for the remote /24 via the workstation. Set
 * from the host side; the namespace outlives the node's reboots (nspawn joins
 * it, and nothing in the node configures vmbr0), so the route does too.
 */
async function nodeRoutes(node: NodeSpec): Promise<void> {
  await runOk('ip', ['-n', node.netns, 'route', 'replace', REMOTE_NETWORK, 'via', WORKSTATION_ADDRESS, 'dev', NODE_IF]);
}

async function killNamespace(netns: string): Promise<void> {
  if (!existsSync(`/run/netns/${netns}`)) return;
  // anything still running in the namespace is the lab's own
  const pids = await run('ip', ['netns', 'pids', netns]);
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await run('ip', ['netns', 'del', netns]);
}

async function destroyNodeNetwork(node: NodeSpec): Promise<void> {
  await killNamespace(node.netns);
  if (linkExists(node.hostLink)) await run('ip', ['link', 'del', node.hostLink]);
}

/** every node's namespace and veth pair, then the bridge */
async function destroyNetwork(): Promise<void> {
  for (const node of [PVE2, PVE1]) await destroyNodeNetwork(node);
  if (linkExists(HOST_IF)) await run('ip', ['link', 'del', HOST_IF]);
}

// ---------------------------------------------------------------------------
// the node's root: overlay of its disk (upper) on the fresh-install layer and the base

function diskImage(node: NodeSpec): string | undefined {
  try {
    return readFileSync(node.paths.diskStamp, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function wipeDisk(node: NodeSpec = PVE1): void {
  rmSync(node.diskDir, { recursive: true, force: true });
}

async function mountRoot(images: Images, node: NodeSpec = PVE1): Promise<void> {
  const { paths: np } = node;
  if (mountsUnder(np.root).includes(np.root)) return;
  const stamp = `${images.baseHash}:${images.layerHash}`;
  if (diskImage(node) !== stamp) wipeDisk(node); // the disk belongs to other images: start fresh
  mkdirSync(np.upper, { recursive: true });
  mkdirSync(np.work, { recursive: true });
  mkdirSync(np.root, { recursive: true });
  writeFileSync(np.diskStamp, `${stamp}\n`);
  await runOk('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${images.layer}:${images.base},upperdir=${np.upper},workdir=${np.work}`, np.root]);
}

async function unmountRoot(node: NodeSpec = PVE1): Promise<void> {
  // pve1's root holds pve2's root mount point (RUN_DIR/pve2/root is not under RUN_DIR/root), so only its own
  for (const p of mountsUnder(node.paths.root)) {
    const r = await run('umount', [p]);
    if (r.exitCode !== 0) await run('umount', ['-l', p]);
  }
}

function mountedImages(node: NodeSpec = PVE1): { base: string; layer: string } | undefined {
  const line = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[1] === node.paths.root);
  const lower = /lowerdir=([^,]+)/.exec(line ?? '')?.[1];
  if (!lower) return undefined;
  const [layer, base] = lower.split(':') as [string, string];
  return { layer, base };
}

// ---------------------------------------------------------------------------
// boot and stop

function nspawnArgs(node: NodeSpec, binds: readonly string[]): string[] {
  return [
    '-b',
    '-D', node.paths.root,
    '--register=no',
    '--keep-unit',
    `--network-namespace-path=/run/netns/${node.netns}`,
    // root on a Proxmox node configures its own network and firewall: the node's
    // pve-firewall applies nftables rules. The namespace is the lab's own, so
    // this reaches nothing of the host's network.
    '--capability=CAP_NET_ADMIN',
    `--machine=${node.machine}`,
    '--console=read-only',
    '--resolv-conf=off',
    '--timezone=off',
    '--link-journal=no',
    ...binds.map((b) => `--bind=${b}`),
  ];
}

/** `binds`: host:node paths bound in (pve2's shared /etc/pve) */
function startSupervisor(node: NodeSpec = PVE1, binds: readonly string[] = []): void {
  mkdirSync(node.runDir, { recursive: true });
  rmSync(node.paths.stopFlag, { force: true });
  const out = openSync(node.paths.consoleLog, 'a');
  const child = spawn('/bin/bash', [join(LAB_DIR, 'supervisor.sh'), node.runDir, ...nspawnArgs(node, binds)], {
    detached: true,
    stdio: ['ignore', out, out],
    // The node has a network namespace of its own, so its /proc/sys/net is its
    // own too: make that (and only that) writable, as on a real node, so the
    // sysctl step can set network keys. kernel.* stays read-only: it is the host's.
    env: { ...process.env, SYSTEMD_NSPAWN_API_VFS_WRITABLE: 'network' },
  });
  child.unref();
  closeSync(out);
}

function running(node: NodeSpec = PVE1): boolean {
  return supervisorPid(node) !== undefined && nspawnPid(node) !== undefined;
}

/** wait for a systemd in the node that has finished booting, and for sshd to accept connections */
async function waitBooted(timeoutMs = 90_000, node: NodeSpec = PVE1): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1000, deadline - Date.now());
  await waitFor(`${node.hostname}'s systemd`, left(), () => (leaderPid(node) ? true : undefined));
  const state = await waitFor('systemd to finish booting', left(), async () => {
    const r = await execIn(['systemctl', 'is-system-running', '--wait'], { timeoutMs: left() }, node);
    const s = r.stdout.trim();
    return ['running', 'degraded', 'maintenance'].includes(s) ? s : undefined;
  }, 200);
  await waitFor(`sshd on ${node.hostname}`, left(), () => tcpOpen(node.address, 22), 100);
  writeKnownHosts(node);
  return state;
}

function tcpOpen(host: string, port: number): Promise<true | undefined> {
  return new Promise((resolveOpen) => {
    const s = connect({ host, port, timeout: 1000 });
    s.once('connect', () => {
      s.destroy();
      resolveOpen(true);
    });
    s.once('error', () => resolveOpen(undefined));
    s.once('timeout', () => {
      s.destroy();
      resolveOpen(undefined);
    });
  });
}

/** power the node off: TERM makes systemd-nspawn shut it down cleanly; KILL after the grace time */
async function stopNode(graceMs = 30_000, node: NodeSpec = PVE1): Promise<void> {
  if (!existsSync(node.runDir)) return;
  writeFileSync(node.paths.stopFlag, '');
  const sup = supervisorPid(node);
  const nsp = nspawnPid(node);
  if (alive(sup)) process.kill(sup, 'SIGTERM');
  else if (alive(nsp)) process.kill(nsp, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while ((alive(sup) || alive(nsp)) && Date.now() < deadline) await sleep(100);
  for (const pid of [nsp, sup]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  while (alive(sup) || alive(nsp)) await sleep(50);
  rmSync(node.paths.supervisorPid, { force: true });
  rmSync(node.paths.nspawnPid, { force: true });
  rmSync(node.paths.stopFlag, { force: true });
  // the nspawn's propagation directory on the host
  rmSync(`/run/systemd/nspawn/propagate/${node.machine}`, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// running things in the node

function nsenterArgs(pid: number, argv: readonly string[], env: Record<string, string> = {}): string[] {
  const vars = Object.entries({ ...NODE_ENV, ...env }).map(([k, v]) => `${k}=${v}`);
  return ['-t', String(pid), '-m', '-u', '-i', '-n', '-p', '-C', '-r', '-w', '--', '/usr/bin/env', '-i', ...vars, ...argv];
}

async function execIn(argv: readonly string[], opts: ExecOptions = {}, node: NodeSpec = PVE1): Promise<RunResult> {
  const pid = leaderPid(node);
  if (!pid) throw new Error(`the lab node ${node.hostname} is not running (npm run lab -- up)`);
  return run('nsenter', nsenterArgs(pid, argv, opts.env), opts);
}

function writeKnownHosts(node: NodeSpec = PVE1): void {
  const dir = join(node.paths.root, 'etc', 'ssh');
  const lines = readdirSync(dir)
    .filter((f) => /^ssh_host_.*_key\.pub$/.test(f))
    .map((f) => readFileSync(join(dir, f), 'utf8').trim().split(/\s+/).slice(0, 2).join(' '))
    .map((k) => `${node.address} ${k}\n`);
  writeFileSync(node.paths.knownHosts, lines.join(''));
}

/** the node's host keys, as raw key blobs (to verify ssh2 connections) */
function hostKeyBlobs(node: NodeSpec = PVE1): Buffer[] {
  const dir = join(node.paths.root, 'etc', 'ssh');
  return readdirSync(dir)
    .filter((f) => /^ssh_host_.*_key\.pub$/.test(f))
    .map((f) => Buffer.from(readFileSync(join(dir, f), 'utf8').trim().split(/\s+/)[1] ?? '', 'base64'));
}


// ---------------------------------------------------------------------------
// the backup host: an SFTP-only OpenSSH server the node reaches at BACKUP_HOST_ADDRESS.
// Its own machine as far as the node can tell: a network namespace of its own,
// joined to the lab's bridge by a veth pair of its own, and its own root, an overlay on the node's base image (Debian
// 13's sshd, run chrooted there; nothing of the host's ssh is used or started).

/** the backup host's address, inside the node's local network */
export const BACKUP_HOST_ADDRESS = process.env.PVE_LAB_BACKUP_ADDRESS ?? '10.77.7.3';
export const BACKUP_NETNS = 'pve-baseline-backup';
/** the one account: key only, SFTP only, chrooted */
export const BACKUP_USER = 'pvebackup';
/** ChrootDirectory (root-owned); the user's home inside it is BACKUP_REMOTE_DIR */
const BACKUP_CHROOT = '/srv/backup';
/** where an SFTP session starts and may write, as the client sees it */
export const BACKUP_REMOTE_DIR = '/upload';
const BACKUP_LINK = 'pvelabbk';
const BACKUP_CONF_DIR = '/etc/ssh/pve-lab-backup';
const backupPaths = {
  upper: join(STATE_DIR, 'backup', 'upper'),
  work: join(STATE_DIR, 'backup', 'work'),
  stamp: join(STATE_DIR, 'backup', 'image'),
  root: join(RUN_DIR, 'backup-root'),
  pid: join(RUN_DIR, 'backup-sshd.pid'),
  log: join(RUN_DIR, 'backup-sshd.log'),
  keys: join(CACHE_DIR, 'keys-backup'),
} as const;

const BACKUP_SSHD_CONFIG = `# pve-baseline lab: the backup host (lab.ts). SFTP only, key only, chrooted.
Port 22
ListenAddress ${BACKUP_HOST_ADDRESS}
HostKey ${BACKUP_CONF_DIR}/ssh_host_ed25519_key
PidFile none
UsePAM no
PermitRootLogin no
AllowUsers ${BACKUP_USER}
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile ${BACKUP_CONF_DIR}/authorized_keys/%u
StrictModes yes
ChrootDirectory ${BACKUP_CHROOT}
ForceCommand internal-sftp
Subsystem sftp internal-sftp
AllowTcpForwarding no
AllowAgentForwarding no
AllowStreamLocalForwarding no
X11Forwarding no
PermitTunnel no
PermitTTY no
LogLevel VERBOSE
`;

function backupSshdPid(): number | undefined {
  const pid = readPid(backupPaths.pid);
  return alive(pid) && cmdline(pid).includes(`${BACKUP_CONF_DIR}/sshd_config`) ? pid : undefined;
}

function backupNetnsExists(): boolean {
  return existsSync(`/run/netns/${BACKUP_NETNS}`);
}

/** the host key, generated once (ssh-keygen on the workstation side), kept across resets like the node's */
async function ensureBackupHostKey(): Promise<{ key: string; pub: string }> {
  const key = join(backupPaths.keys, 'ssh_host_ed25519_key');
  if (!existsSync(`${key}.pub`)) {
    rmSync(backupPaths.keys, { recursive: true, force: true });
    mkdirSync(backupPaths.keys, { recursive: true, mode: 0o700 });
    await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@backup.lab.internal', '-f', key]);
  }
  return { key, pub: readFileSync(`${key}.pub`, 'utf8').trim() };
}

async function mountBackupRoot(baseRootfs: string, baseHash: string): Promise<void> {
  const mounted = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === backupPaths.root);
  if (mounted && mounted.includes(`lowerdir=${baseRootfs},`)) return;
  if (mounted) await runOk('umount', [backupPaths.root]);
  let stamp: string | undefined;
  try {
    stamp = readFileSync(backupPaths.stamp, 'utf8').trim();
  } catch {
    /* none */
  }
  if (stamp !== baseHash) rmSync(join(STATE_DIR, 'backup'), { recursive: true, force: true }); // another base: start empty
  for (const d of [backupPaths.upper, backupPaths.work, backupPaths.root]) mkdirSync(d, { recursive: true });
  writeFileSync(backupPaths.stamp, `${baseHash}\n`);
  await runOk('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${baseRootfs},upperdir=${backupPaths.upper},workdir=${backupPaths.work}`, backupPaths.root]);
}

/** sshd's configuration, host key, the account and its chroot (idempotent) */
async function provisionBackupRoot(): Promise<void> {
  const r = (p: string) => join(backupPaths.root, p.slice(1));
  const { key } = await ensureBackupHostKey();
  mkdirSync(r(`${BACKUP_CONF_DIR}/authorized_keys`), { recursive: true, mode: 0o755 });
  copyFileSync(key, r(`${BACKUP_CONF_DIR}/ssh_host_ed25519_key`));
  chmodSync(r(`${BACKUP_CONF_DIR}/ssh_host_ed25519_key`), 0o600);
  copyFileSync(`${key}.pub`, r(`${BACKUP_CONF_DIR}/ssh_host_ed25519_key.pub`));
  writeFileSync(r(`${BACKUP_CONF_DIR}/sshd_config`), BACKUP_SSHD_CONFIG, { mode: 0o644 });
  if (!readFileSync(r('/etc/passwd'), 'utf8').split('\n').some((l) => l.startsWith(`${BACKUP_USER}:`))) {
    // '*': no password, but not locked (sshd without PAM refuses a locked account's keys too)
    await runOk('chroot', [backupPaths.root, 'useradd', '-U', '-M', '-d', BACKUP_REMOTE_DIR, '-s', '/usr/sbin/nologin', '-p', '*', BACKUP_USER]);
  }
  const ids = readFileSync(r('/etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${BACKUP_USER}:`))!.split(':');
  // ChrootDirectory must be root's and writable by nobody else; the user writes below it
  mkdirSync(r(BACKUP_CHROOT), { recursive: true });
  chownSync(r(BACKUP_CHROOT), 0, 0);
  chmodSync(r(BACKUP_CHROOT), 0o755);
  const home = r(`${BACKUP_CHROOT}${BACKUP_REMOTE_DIR}`);
  mkdirSync(home, { recursive: true });
  chownSync(home, Number(ids[2]), Number(ids[3]));
  chmodSync(home, 0o750);
  const ak = r(`${BACKUP_CONF_DIR}/authorized_keys/${BACKUP_USER}`);
  if (!existsSync(ak)) writeFileSync(ak, '', { mode: 0o644 });
}

/** its namespace and its veth pair on the lab's bridge (which must exist) */
async function createBackupNetwork(): Promise<void> {
  if (backupNetnsExists() && onBridge(BACKUP_LINK)) return;
  await destroyBackupNetwork();
  await vethIntoNamespace(BACKUP_LINK, BACKUP_NETNS, 'eth0');
  const inNs = (...args: string[]) => runOk('ip', ['-n', BACKUP_NETNS, ...args]);
  await inNs('addr', 'add', `${BACKUP_HOST_ADDRESS}/${PREFIX_LEN}`, 'dev', 'eth0');
  await inNs('link', 'set', 'lo', 'up');
  await inNs('link', 'set', 'eth0', 'up');
}

async function destroyBackupNetwork(): Promise<void> {
  await killNamespace(BACKUP_NETNS); // all in it the backup host's (sshd and its sessions)
  if (linkExists(BACKUP_LINK)) await run('ip', ['link', 'del', BACKUP_LINK]);
}

/** sshd listening in the backup namespace? (its /proc/<pid>/net/tcp is that namespace's) */
function backupListening(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/net/tcp`, 'utf8')
      .split('\n')
      .some((l) => / [0-9A-F]{8}:0016 00000000:0000 0A /.test(l));
  } catch {
    return false;
  }
}

/** start the backup host (idempotent); the lab's network must exist */
async function startBackupHost(images: Images): Promise<void> {
  if (backupSshdPid() !== undefined && backupNetnsExists()) {
    const mounted = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === backupPaths.root);
    if (mounted?.includes(`lowerdir=${images.base},`)) return;
    await stopBackupHost();
  }
  await mountBackupRoot(images.base, images.baseHash);
  await provisionBackupRoot();
  await createBackupNetwork();
  const out = openSync(backupPaths.log, 'a');
  // `ip netns exec` and chroot exec in turn: the pid is sshd's. -D: no daemon, -e: log to the file
  const child = spawn('ip', ['netns', 'exec', BACKUP_NETNS, 'chroot', backupPaths.root, '/usr/sbin/sshd', '-D', '-e', '-f', `${BACKUP_CONF_DIR}/sshd_config`], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  child.unref();
  closeSync(out);
  writeFileSync(backupPaths.pid, `${child.pid}\n`);
  await waitFor('the backup host\'s sshd', 15_000, () => {
    const pid = backupSshdPid();
    if (pid === undefined && !alive(child.pid)) throw new Error(`the backup host's sshd exited: ${readFileSync(backupPaths.log, 'utf8').slice(-2000)}`);
    return pid !== undefined && backupListening(pid) ? true : undefined;
  }, 50);
}

/** stop sshd and its sessions, delete its namespace, unmount its root (its disk stays) */
async function stopBackupHost(): Promise<void> {
  const pid = backupSshdPid();
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) await sleep(20);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(backupPaths.pid, { force: true });
  await destroyBackupNetwork();
  for (const p of mountsUnder(backupPaths.root)) {
    const r = await run('umount', [p]);
    if (r.exitCode !== 0) await run('umount', ['-l', p]);
  }
}

/** SHA256 fingerprint of an OpenSSH public key line, as `ssh-keygen -lf` prints it */
export function sshFingerprint(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The backup host as tests and the backup feature's lab runs see it (`lab.backupHost`):
 * the node reaches `user@address:port` over SFTP (key only; sessions start in
 * `remoteDir`, the only writable place); `dir` is that directory seen from the
 * workstation side (read, write, delete there freely while the lab is up).
 */
export class BackupHost {
  readonly address = BACKUP_HOST_ADDRESS;
  readonly port = 22;
  readonly user = BACKUP_USER;
  /** where an SFTP session starts and may write, as the client sees it (the chroot's /upload) */
  readonly remoteDir = BACKUP_REMOTE_DIR;
  /** the same directory on the workstation side */
  readonly dir = join(backupPaths.root, BACKUP_CHROOT.slice(1), BACKUP_REMOTE_DIR.slice(1));
  /** sshd's log (-e), for a failing test's diagnosis */
  readonly logFile = backupPaths.log;

  constructor(private readonly images: () => Promise<Images>) {}

  private pub(): string {
    const f = join(backupPaths.keys, 'ssh_host_ed25519_key.pub');
    if (!existsSync(f)) throw new Error('the backup host has no host key yet (start the lab)');
    return readFileSync(f, 'utf8').trim();
  }

  /** 'SHA256:...' as `ssh-keygen -lf` prints it for the host key */
  get hostKeyFingerprint(): string {
    return sshFingerprint(this.pub());
  }

  /** the host key in known_hosts form: `10.77.7.3 ssh-ed25519 AAAA...` */
  get hostKeyLine(): string {
    return `${this.address} ${this.pub().split(/\s+/).slice(0, 2).join(' ')}`;
  }

  private authorizedKeysFile(): string {
    const f = join(backupPaths.root, BACKUP_CONF_DIR.slice(1), 'authorized_keys', BACKUP_USER);
    if (!existsSync(f)) throw new Error('the backup host is not running (start the lab)');
    return f;
  }

  /** let a key log in (one OpenSSH public key line, e.g. the contents of id_ed25519.pub) */
  authorize(publicKeyLine: string): void {
    const line = publicKeyLine.trim();
    if (!/^(ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+( .*)?$/.test(line) || line.includes('\n')) throw new Error(`not an OpenSSH public key line: ${line.slice(0, 60)}`);
    appendFileSync(this.authorizedKeysFile(), `${line}\n`);
  }

  /** the authorized key lines */
  authorizedKeys(): string[] {
    return readFileSync(this.authorizedKeysFile(), 'utf8').split('\n').filter(Boolean);
  }

  /** no authorized keys, an empty upload directory, reachable */
  async clear(): Promise<void> {
    writeFileSync(this.authorizedKeysFile(), '');
    for (const f of readdirSync(this.dir)) rmSync(join(this.dir, f), { recursive: true, force: true });
    await this.setReachable(true);
  }

  /**
   * false: everything sent to it is dropped (nftables in its namespace: a
   * connection attempt times out, as to a host that is down or firewalled);
   * true: answers again. A restart of the host (start/stop, reset) makes it reachable.
   */
  async setReachable(on: boolean): Promise<void> {
    if (!backupNetnsExists()) throw new Error('the backup host is not running');
    const nft = (input: string) => run('ip', ['netns', 'exec', BACKUP_NETNS, 'chroot', backupPaths.root, 'nft', '-f', '-'], { input });
    await nft('table inet pve-lab-unreachable\ndelete table inet pve-lab-unreachable\n');
    if (!on) {
      const r = await nft('table inet pve-lab-unreachable {\n  chain input { type filter hook input priority 0; policy drop; }\n}\n');
      if (r.exitCode !== 0) throw new Error(`nft: ${r.stderr}`);
    }
  }

  /** is sshd running? */
  get running(): boolean {
    return backupSshdPid() !== undefined;
  }

  /** start it (idempotent; the lab does at up, reset and ensureLab) */
  async start(): Promise<void> {
    if (!linkExists(HOST_IF)) throw new Error('the lab network is down (ensureLab first)');
    await startBackupHost(await this.images());
  }

  /** stop it (sshd and its sessions, its namespace, its root's mount); its files stay until reset */
  stop(): Promise<void> {
    return stopBackupHost();
  }
}

// ---------------------------------------------------------------------------
// the Lab

export class Lab {
  readonly nodeAddress: string;
  readonly workstationAddress = WORKSTATION_ADDRESS;
  /** outside the node's local network: a remote operator, and an outsider (config.ts) */
  readonly remoteOperatorAddress = REMOTE_OPERATOR_ADDRESS;
  readonly outsiderAddress = OUTSIDER_ADDRESS;
  readonly hostname: string;
  readonly fqdn: string;
  readonly rootPassword = ROOT_PASSWORD;
  /** the node's root filesystem as seen from the host (read or plant files) */
  readonly rootDir: string;
  /** seconds spent building images by the ensureLab() that created this object */
  built: { base: number; layer: number } = { base: 0, layer: 0 };
  /** seconds the last boot (up, reset or reboot) took until sshd answered */
  lastBootSeconds = 0;
  /** the backup host: an SFTP server the node reaches (see BackupHost) */
  readonly backupHost = new BackupHost(() => ensureImages(this.log));

  constructor(
    private readonly log: Log = quiet,
    /** which node this handle drives: pve1, or pve2 of `cluster()` */
    readonly node: NodeSpec = PVE1,
  ) {
    this.nodeAddress = node.address;
    this.hostname = node.hostname;
    this.fqdn = `${node.hostname}.${DOMAIN}`;
    this.rootDir = node.paths.root;
  }

  /** run argv as root in the node (no shell; exit code, stdout, stderr) */
  exec(argv: readonly string[], opts: ExecOptions = {}): Promise<RunResult> {
    return execIn(argv, opts, this.node);
  }

  /** argv for running a command in the node with your own stdio (nsenter ...) */
  execArgv(argv: readonly string[], env: Record<string, string> = {}): string[] {
    const pid = leaderPid(this.node);
    if (!pid) throw new Error('the lab node is not running');
    return ['nsenter', ...nsenterArgs(pid, argv, env)];
  }

  /** log in over SSH from the workstation side (ssh2) and run a command */
  ssh(opts: SshOptions, command: string): Promise<RunResult> {
    const keys = hostKeyBlobs(this.node);
    const address = this.nodeAddress;
    return new Promise((resolveSsh, reject) => {
      const conn = new Client();
      const timer = setTimeout(() => {
        conn.end();
        reject(new Error(`ssh ${opts.user}@${address}: timed out`));
      }, opts.timeoutMs ?? 30_000);
      const cfg: ConnectConfig = {
        host: address,
        port: 22,
        ...(opts.from !== undefined ? { localAddress: opts.from } : {}),
        username: opts.user,
        readyTimeout: opts.timeoutMs ?? 30_000,
        hostVerifier: (key: Buffer) => keys.some((k) => k.equals(key)),
      };
      if (opts.password !== undefined) cfg.password = opts.password;
      if (opts.privateKey !== undefined) cfg.privateKey = opts.privateKey;
      if (opts.passphrase !== undefined) cfg.passphrase = opts.passphrase;
      conn
        .on('ready', () => {
          conn.exec(command, (err, stream) => {
            if (err) {
              clearTimeout(timer);
              conn.end();
              reject(err);
              return;
            }
            const out: Buffer[] = [];
            const errOut: Buffer[] = [];
            let code = -1;
            let signal: string | null = null;
            stream.on('data', (d: Buffer) => out.push(d));
            stream.stderr.on('data', (d: Buffer) => errOut.push(d));
            stream.on('exit', (c: number | null, s?: string) => {
              code = c ?? -1;
              signal = s ?? null;
            });
            stream.on('close', () => {
              clearTimeout(timer);
              conn.end();
              resolveSsh({
                exitCode: code,
                signal: signal as NodeJS.Signals | null,
                stdout: Buffer.concat(out).toString('utf8'),
                stderr: Buffer.concat(errOut).toString('utf8'),
              });
            });
            stream.end(opts.input ?? '');
          });
        })
        .on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        })
        .connect(cfg);
    });
  }

  /** arguments for the OpenSSH client from the workstation side (known_hosts pinned to the node's keys); `from`: the source address (-b) */
  sshClientArgs(user: string, extra: string[] = [], from?: string): string[] {
    writeKnownHosts(this.node);
    return [
      ...(from !== undefined ? ['-b', from] : []),
      // OpenSSH keeps the first value of an option: the caller's come first so they can override these
      ...extra,
      '-o', `UserKnownHostsFile=${this.node.paths.knownHosts}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'ConnectTimeout=10',
      '-o', 'LogLevel=ERROR',
      `${user}@${this.nodeAddress}`,
    ];
  }

  /**
   * Try a TCP connection from a workstation-side address to the node's port:
   * `connected`, `refused` (a reset: a REJECT rule, or nothing listens),
   * `timed out` (no answer within timeoutMs: a DROP), `unreachable` (an ICMP
   * error). Only ever to the node's address.
   */
  tcpProbe(port: number, opts: { from?: string; timeoutMs?: number } = {}): Promise<TcpProbeResult> {
    const timeoutMs = opts.timeoutMs ?? 1500;
    return new Promise((resolveProbe) => {
      const s = connect({ host: this.nodeAddress, port, timeout: timeoutMs, ...(opts.from !== undefined ? { localAddress: opts.from } : {}) });
      const done = (r: TcpProbeResult) => {
        clearTimeout(timer);
        s.destroy();
        resolveProbe(r);
      };
      // `timeout` is idle time; a hard deadline as well, so a half-open connect cannot hang the test
      const timer = setTimeout(() => done('timed out'), timeoutMs + 200);
      s.once('connect', () => done('connected'));
      s.once('timeout', () => done('timed out'));
      s.once('error', (e: NodeJS.ErrnoException) =>
        done(e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'ETIMEDOUT' ? 'timed out' : 'unreachable'),
      );
    });
  }

  /** One ICMP echo from a workstation-side address to the node: answered within timeoutS seconds? */
  async ping(opts: { from?: string; timeoutS?: number } = {}): Promise<boolean> {
    const r = await run('ping', ['-n', '-q', '-c', '1', '-W', String(opts.timeoutS ?? 1), ...(opts.from !== undefined ? ['-I', opts.from] : []), this.nodeAddress]);
    return r.exitCode === 0;
  }

  /** `systemctl reboot` inside the node; resolves once it is back and sshd answers */
  async reboot(timeoutMs = 120_000): Promise<number> {
    const before = leaderPid(this.node);
    const t0 = performance.now();
    await execIn(['systemctl', 'reboot'], { timeoutMs: 30_000 }, this.node).catch(() => undefined);
    await waitFor(`${this.hostname} to go down and come back`, timeoutMs, () => {
      const now = leaderPid(this.node);
      return now && now !== before ? now : undefined;
    });
    await waitBooted(timeoutMs, this.node);
    this.lastBootSeconds = (performance.now() - t0) / 1000;
    return this.lastBootSeconds;
  }

  /** back to the fresh-install state: stop, wipe the node's disk, boot */
  async reset(): Promise<number> {
    if (this.node !== PVE1) throw new Error(`reset is pve1's: ${this.hostname} is reset with the cluster (lab.cluster({ fresh: true }))`);
    return withLock(async () => {
      const t0 = performance.now();
      const images = await ensureImages(this.log);
      // a cluster ends with a reset: pve2 shares pve1's /etc/pve
      await removeSecondNode();
      if (running()) await stopNode();
      await unmountRoot();
      wipeDisk();
      // the backup host too: empty, no authorized keys
      await stopBackupHost();
      rmSync(join(STATE_DIR, 'backup'), { recursive: true, force: true });
      // A new namespace too: its network sysctls are kernel state a fresh node starts without.
      await destroyNodeNetwork(PVE1);
      await createNetwork();
      await mountRoot(images);
      startSupervisor();
      await startBackupHost(images);
      await waitBooted();
      this.lastBootSeconds = (performance.now() - t0) / 1000;
      return this.lastBootSeconds;
    }, this.log);
  }

  status(): Promise<LabStatus> {
    return status();
  }

  // --- the apt world (recipe/apt-world.ts, README "The apt world") ---------------------

  /** `pvesubscription set` (active at once: enterprise.proxmox.com then serves this node) or `delete` (notfound). */
  async setSubscription(active: boolean): Promise<void> {
    const r = await execIn(active ? ['pvesubscription', 'set', LAB_SUBSCRIPTION_KEY] : ['pvesubscription', 'delete'], {}, this.node);
    if (r.exitCode !== 0) throw new Error(`pvesubscription: ${r.stderr}`);
  }

  /**
   * Adds (or removes) Debian unstable to the node's sources: its newer `less`
   * conflicts with proxmox-ve, so `apt-get dist-upgrade` would remove
   * proxmox-ve. Run `apt-get update` afterwards.
   */
  async removalRepository(on: boolean): Promise<void> {
    const file = join(this.rootDir, REMOVAL_SOURCES);
    if (!on) {
      rmSync(file, { force: true });
      return;
    }
    writeFileSync(
      file,
      'Types: deb\nURIs: http://deb.debian.org/debian/\nSuites: sid\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
      { mode: 0o644 },
    );
  }

  /**
   * A slower upgrade, for tests that watch its progress: the package servers
   * send `bytesPerSecond`, a lab kernel's postinst takes `kernelPostinstSeconds`
   * (a real one builds an initramfs). No argument: full speed again.
   */
  slowUpgrade(opts?: { bytesPerSecond?: number; kernelPostinstSeconds?: number }): void {
    const set = (path: string, value: number | undefined) => {
      const file = join(this.rootDir, path);
      if (value === undefined) rmSync(file, { force: true });
      else {
        mkdirSync(join(file, '..'), { recursive: true });
        writeFileSync(file, `${value}\n`);
      }
    };
    set(THROTTLE_FILE, opts?.bytesPerSecond);
    set(SLOW_POSTINST_FILE, opts?.kernelPostinstSeconds);
  }

  /** `uname -r` in the node: the kernel this boot runs (the newest installed at boot, or the pinned one). */
  async runningKernel(): Promise<string> {
    return (await execIn(['uname', '-r'], {}, this.node)).stdout.trim();
  }

  /** Pretend the node now runs `kernel` (until its next boot, which chooses again). */
  async setRunningKernel(kernel: string): Promise<void> {
    const r = await execIn(['sh', '-c', 'mkdir -p /run/pve-lab && printf "%s\\n" "$1" > /run/pve-lab/running-kernel', 'sh', kernel], {}, this.node);
    if (r.exitCode !== 0) throw new Error(`setRunningKernel: ${r.stderr}`);
  }
}

// ---------------------------------------------------------------------------
// the second node and the stand-in cluster: pve2 joined to pve1 as `pvecm add`
// leaves it. One /etc/pve (pve1's directory, bound into pve2: what pmxcfs
// replicates is simply shared), corosync.conf in both /etc/corosync and in
// /etc/pve, one authkey, Debian's corosync running on both (knet over the
// lab's bridge, udp/5405): `pvecm status` shows two nodes and quorum for real,
// and a firewall that drops corosync between the ring addresses breaks it.

export const CLUSTER_NAME = 'pvelab';
const CLUSTER_KEYS = join(CACHE_DIR, 'keys-cluster');

/** corosync.conf after `pvecm create pvelab` on pve1 and `pvecm add` from pve2 (PVE::Corosync create_conf; config_version 2 after the join) */
export function corosyncConf(): string {
  const node = (n: NodeSpec, id: number) => `  node {\n    name: ${n.hostname}\n    nodeid: ${id}\n    quorum_votes: 1\n    ring0_addr: ${n.address}\n  }\n`;
  return [
    'logging {\n  debug: off\n  to_syslog: yes\n}\n',
    `nodelist {\n${node(PVE1, 1)}${node(PVE2, 2)}}\n`,
    'quorum {\n  provider: corosync_votequorum\n}\n',
    `totem {\n  cluster_name: ${CLUSTER_NAME}\n  config_version: 2\n  interface {\n    linknumber: 0\n  }\n  ip_version: ipv4-6\n  link_mode: passive\n  secauth: on\n  version: 2\n}\n`,
  ].join('\n');
}

/** the cluster's corosync authkey (pvecm create runs corosync-keygen: 256 random bytes), made once */
function clusterAuthkey(): Buffer {
  const file = join(CLUSTER_KEYS, 'authkey');
  if (!existsSync(file)) {
    mkdirSync(CLUSTER_KEYS, { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(256), { mode: 0o400 });
  }
  return readFileSync(file);
}

function plant(root: string, path: string, content: string | Buffer, mode: number, gid = 0): void {
  const file = join(root, path.slice(1));
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, content, { mode });
  chmodSync(file, mode);
  chownSync(file, 0, gid);
}

/** pmxcfs presents /etc/pve as root:www-data (Debian's www-data is gid 33) */
const WWW_DATA_GID = 33;

/** stop pve2 and remove it: its disk, its namespace (pve1 stays as it is) */
async function removeSecondNode(log: Log = quiet): Promise<void> {
  if (supervisorPid(PVE2) !== undefined || nspawnPid(PVE2) !== undefined) {
    log('powering pve2 off');
    await stopNode(30_000, PVE2);
  }
  await unmountRoot(PVE2);
  wipeDisk(PVE2);
  await destroyNodeNetwork(PVE2);
  rmSync(PVE2.paths.knownHosts, { force: true });
}

/** `corosync-quorumtool -s` on the node says Quorate: Yes */
async function quorate(node: NodeSpec): Promise<boolean> {
  const r = await execIn(['corosync-quorumtool', '-s'], { timeoutMs: 10_000 }, node).catch(() => undefined);
  return !!r && /^Quorate:\s+Yes$/m.test(r.stdout);
}

export interface LabCluster {
  name: string;
  pve1: Lab;
  pve2: Lab;
}

/**
 * pve1 (ensureLab) and pve2 joined to it, both quorate. Idempotent: a running
 * cluster is reused as it is; `fresh` resets pve1 first (which removes pve2)
 * and joins a fresh pve2. pve1's `reset()` and `down()` end the cluster.
 */
export async function ensureCluster(opts: { log?: Log; fresh?: boolean } = {}): Promise<LabCluster> {
  const log = opts.log ?? quiet;
  const pve1 = await ensureLab({ log });
  if (opts.fresh) await pve1.reset();
  const pve2 = new Lab(log, PVE2);
  await withLock(async () => {
    const joined = existsSync(join(PVE1.paths.root, 'etc/corosync/corosync.conf'));
    if (joined && running(PVE2) && leaderPid(PVE2)) {
      await waitBooted(90_000, PVE2);
    } else {
      await removeSecondNode(log);
      const images = await ensureImages(log, PVE2);
      await createNetwork(PVE2);
      await mountRoot(images, PVE2);
      // what `pvecm create` did on pve1 and `pvecm add` does for pve2
      const conf = corosyncConf();
      const authkey = clusterAuthkey();
      for (const node of [PVE1, PVE2]) {
        plant(node.paths.root, '/etc/corosync/corosync.conf', conf, 0o644);
        plant(node.paths.root, '/etc/corosync/authkey', authkey, 0o400);
      }
      const etcPve = join(PVE1.paths.root, 'etc', 'pve');
      plant(PVE1.paths.root, '/etc/pve/corosync.conf', conf, 0o640, WWW_DATA_GID);
      // the joining node's directory (its certificate) moves into the cluster's /etc/pve
      cpSync(join(images.layer, 'etc', 'pve', 'nodes', PVE2.hostname), join(etcPve, 'nodes', PVE2.hostname), { recursive: true });
      await runOk('chown', ['-R', `0:${WWW_DATA_GID}`, join(etcPve, 'nodes', PVE2.hostname)]);
      // pve2 takes the cluster's configuration database (pmxcfs syncs it at the join): its own is gone
      for (const f of ['config.db', 'config.db-wal', 'config.db-shm']) rmSync(join(PVE2.paths.root, 'var/lib/pve-cluster', f), { force: true });
      // pvecm create restarts pve-cluster: pve1's pmxcfs is now a member's
      const restarted = await execIn(['systemctl', 'restart', 'pve-cluster'], { timeoutMs: 30_000 }, PVE1);
      if (restarted.exitCode !== 0) throw new Error(`pve-cluster on pve1: ${restarted.stderr}`);
      startSupervisor(PVE2, [`${etcPve}:/etc/pve`]);
      const t0 = performance.now();
      const state = await waitBooted(90_000, PVE2);
      pve2.lastBootSeconds = (performance.now() - t0) / 1000;
      log(`node pve2 booted in ${pve2.lastBootSeconds.toFixed(1)} s (systemd: ${state})`);
      const started = await execIn(['systemctl', 'start', 'corosync'], { timeoutMs: 30_000 }, PVE1);
      if (started.exitCode !== 0) throw new Error(`corosync on pve1: ${started.stderr}`);
    }
    await waitFor('both nodes quorate (corosync-quorumtool -s)', 60_000, async () => ((await quorate(PVE1)) && (await quorate(PVE2)) ? true : undefined), 250);
  }, log);
  return { name: CLUSTER_NAME, pve1, pve2 };
}

/**
 * Build if needed, boot if needed; returns a handle on the running node.
 * Idempotent across processes: a node already running on the current images
 * is reused as it is (call `reset()` for the fresh-install state).
 */
export async function ensureLab(opts: { log?: Log } = {}): Promise<Lab> {
  const log = opts.log ?? quiet;
  const lab = new Lab(log);
  await withLock(async () => {
    const images = await ensureImages(log);
    lab.built = images.built;
    const mounted = mountedImages();
    const current = mounted?.layer === images.layer && mounted.base === images.base;
    if (running() && current && leaderPid()) {
      await startBackupHost(images);
      await waitBooted();
      return;
    }
    if (running() || mounted) {
      log(current ? 'restarting the node' : 'the node runs on outdated images: restarting it fresh');
      await removeSecondNode(log); // it shares pve1's /etc/pve
      await stopNode();
      await unmountRoot();
    }
    const t0 = performance.now();
    await createNetwork();
    await mountRoot(images);
    startSupervisor();
    await startBackupHost(images);
    const state = await waitBooted();
    lab.lastBootSeconds = (performance.now() - t0) / 1000;
    log(`node ${HOSTNAME} booted in ${lab.lastBootSeconds.toFixed(1)} s (systemd: ${state})`);
  }, log);
  return lab;
}

/** Stop everything the lab started: the node, its supervisor, the mount, the namespace and veth pair. */
export async function down(opts: { log?: Log } = {}): Promise<void> {
  const log = opts.log ?? quiet;
  await withLock(async () => {
    await removeSecondNode(log);
    if (supervisorPid() !== undefined || nspawnPid() !== undefined) {
      log('powering the node off');
      await stopNode();
    }
    await unmountRoot();
    await stopBackupHost();
    await destroyNetwork();
    rmSync(PVE1.paths.knownHosts, { force: true });
    rmSync(paths.state, { force: true });
  }, log);
}

export async function status(): Promise<LabStatus> {
  const mounted = mountedImages();
  const st: LabStatus = {
    running: running() && !!leaderPid(),
    hostname: HOSTNAME,
    nodeAddress: NODE_ADDRESS,
    workstationAddress: WORKSTATION_ADDRESS,
    netns: NETNS,
    hostInterface: HOST_IF,
    images: undefined,
    root: PVE1.paths.root,
    disk: PVE1.paths.upper,
  };
  const sup = supervisorPid();
  const nsp = nspawnPid();
  if (sup) st.supervisorPid = sup;
  if (nsp) st.nspawnPid = nsp;
  const leader = leaderPid();
  if (leader) st.leaderPid = leader;
  if (st.running) {
    const r = await execIn(['systemctl', 'is-system-running'], { timeoutMs: 10_000 }).catch(() => undefined);
    if (r) st.systemState = r.stdout.trim();
  }
  if (mounted) {
    const { baseRecipe, layerRecipe, baseDir, layerDir } = await import('./build.ts');
    const b = baseRecipe();
    const current = mounted.base === join(baseDir(b.hash), 'rootfs') && mounted.layer === join(layerDir(layerRecipe(b.hash).hash), 'upper');
    st.images = { base: mounted.base, layer: mounted.layer, current };
  }
  const { recordedBuildSeconds } = await import('./build.ts');
  st.buildSeconds = recordedBuildSeconds();
  return st;
}

/** What of the lab still exists on the host (used by `down`'s tests: all empty after down). */
export async function leftovers(): Promise<{ netns: boolean; veth: boolean; mounts: string[]; processes: string[] }> {
  const mounts = [...mountsUnder(RUN_DIR), ...mountsUnder(STATE_DIR), ...mountsUnder(CACHE_DIR)];
  const processes: string[] = [];
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    const cl = cmdline(pid).trim();
    if (!cl) continue;
    const mine =
      NODES.some((n) => cl.includes(n.paths.root) || (cl.startsWith('systemd-nspawn') && cl.includes(n.machine))) ||
      cl.includes(backupPaths.root) ||
      cl.includes(join(LAB_DIR, 'supervisor.sh'));
    let inNs = false;
    try {
      const ns = readlinkSync(`/proc/${pid}/ns/net`);
      inNs = [...NODES.map((n) => n.netns), BACKUP_NETNS].some((netns) => existsSync(`/run/netns/${netns}`) && ns === `net:[${statSync(`/run/netns/${netns}`).ino}]`);
    } catch {
      /* gone */
    }
    if (mine || inNs) processes.push(`${pid} ${cl}`);
  }
  return {
    netns: NODES.some((n) => netnsExists(n)) || backupNetnsExists(),
    veth: [HOST_IF, BACKUP_LINK, ...NODES.map((n) => n.hostLink)].some(linkExists),
    mounts,
    processes,
  };
}

/** Is this a machine the lab can run on? (root, systemd-nspawn, overlayfs, network namespaces) */
export async function labSupport(): Promise<{ ok: boolean; reason?: string }> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the lab needs root (network namespaces, mounts, systemd-nspawn)' };
  for (const tool of ['systemd-nspawn', 'debootstrap', 'nsenter', 'ip']) {
    const r = await run('sh', ['-c', `command -v ${tool}`]);
    if (r.exitCode !== 0) return { ok: false, reason: `${tool} is not installed (see test/lab/apt-packages.txt)` };
  }
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return { ok: false, reason: 'the kernel has no overlayfs' };
  return { ok: true };
}
