/**
 * Every fixed fact of the lab in one place: names, addresses, paths.
 *
 * Network: a private /24 that exists only on the veth pair the lab creates.
 * The node lives in its own network namespace and has no default route, so
 * nothing it sends can leave the pair; the host side (the "workstation") only
 * ever talks to the node's address, from 10.77.7.1 or from one of the two
 * "remote" addresses below.
 */
import { join, resolve } from 'node:path';

const env = process.env;

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const LAB_DIR = join(REPO_ROOT, 'test', 'lab');
export const RECIPE_DIR = join(LAB_DIR, 'recipe');
export const STANDINS_DIR = join(LAB_DIR, 'standins');

/** Debian suite and mirror for the node (Debian's archive is the only network the build uses). */
export const SUITE = 'trixie';
export const MIRROR = env.PVE_LAB_MIRROR ?? 'http://deb.debian.org/debian';

export const NETNS = 'pve-baseline-lab';
/**
 * The lab's bridge on the host: the operator's workstation (its address sits
 * on the bridge). Every node and the backup host joins it with a veth pair of
 * its own, so they share one /24 as the machines of a real management
 * network do.
 */
export const HOST_IF = 'pvelab0';
/** node side of each node's veth pair, named like the bridge a Proxmox installer creates */
export const NODE_IF = 'vmbr0';
export const PREFIX_LEN = 24;
export const WORKSTATION_ADDRESS = env.PVE_LAB_WORKSTATION_ADDRESS ?? '10.77.7.1';
export const NODE_ADDRESS = env.PVE_LAB_NODE_ADDRESS ?? '10.77.7.2';
/**
 * Two more workstation-side addresses, OUTSIDE the node's local network (so
 * outside the management set Proxmox's firewall derives from it): a remote
 * operator (whom a `[IPSET management]` entry can let in) and an outsider
 * (whom nothing lets in). Both sit on the host end of the veth pair as /32
 * addresses (no route on the host); the node routes REMOTE_NETWORK back via
 * WORKSTATION_ADDRESS, so their traffic too never leaves the pair.
 */
export const REMOTE_NETWORK = env.PVE_LAB_REMOTE_NETWORK ?? '10.77.9.0/24';
export const REMOTE_OPERATOR_ADDRESS = env.PVE_LAB_REMOTE_OPERATOR_ADDRESS ?? '10.77.9.1';
export const OUTSIDER_ADDRESS = env.PVE_LAB_OUTSIDER_ADDRESS ?? '10.77.9.66';

export const HOSTNAME = 'pve1';
export const DOMAIN = 'lab.internal';
export const MACHINE_NAME = 'pve-baseline-lab';
/** root's password on a fresh node (the installer asks for one; this is the lab's) */
export const ROOT_PASSWORD = 'pve-lab-root';
/** the e-mail address the installer wrote into user.cfg */
export const ADMIN_EMAIL = 'admin@example.com';

/** built images, keyed by recipe hash; survives across runs and clones */
export const CACHE_DIR = env.PVE_LAB_CACHE ?? '/var/cache/pve-baseline-lab';
/** the node's disk: overlay upper/work dirs (wiped by reset) */
export const STATE_DIR = env.PVE_LAB_STATE ?? '/var/lib/pve-baseline-lab';
/** runtime: pid files, the merged root mount, logs, the lock */
export const RUN_DIR = env.PVE_LAB_RUN ?? '/run/pve-baseline-lab';

export const paths = {
  lock: join(RUN_DIR, 'lock'),
  state: join(RUN_DIR, 'state.json'),
} as const;

/** One node of the lab: its name, address, namespace, host-side veth end and where its disk and pid files live. */
export interface NodeSpec {
  hostname: string;
  address: string;
  netns: string;
  /** the host end of the node's veth pair, a port of HOST_IF */
  hostLink: string;
  machine: string;
  /** the node's disk: overlay upper/work dirs (wiped by reset) */
  diskDir: string;
  /** pid files, the merged root mount, logs */
  runDir: string;
  paths: {
    upper: string;
    work: string;
    diskStamp: string;
    root: string;
    supervisorPid: string;
    nspawnPid: string;
    stopFlag: string;
    consoleLog: string;
    supervisorLog: string;
    knownHosts: string;
  };
}

function nodeSpec(hostname: string, address: string, netns: string, hostLink: string, machine: string, diskDir: string, runDir: string): NodeSpec {
  return {
    hostname,
    address,
    netns,
    hostLink,
    machine,
    diskDir,
    runDir,
    paths: {
      upper: join(diskDir, 'upper'),
      work: join(diskDir, 'work'),
      diskStamp: join(diskDir, 'image'),
      root: join(runDir, 'root'),
      supervisorPid: join(runDir, 'supervisor.pid'),
      nspawnPid: join(runDir, 'nspawn.pid'),
      stopFlag: join(runDir, 'stop'),
      consoleLog: join(runDir, 'console.log'),
      supervisorLog: join(runDir, 'supervisor.log'),
      knownHosts: join(runDir, 'known_hosts'),
    },
  };
}

/** The node every test uses. */
export const PVE1 = nodeSpec(HOSTNAME, NODE_ADDRESS, NETNS, 'pvelab1', MACHINE_NAME, join(STATE_DIR, 'node'), RUN_DIR);
/** The second node, joined to pve1 in a stand-in cluster by `lab.cluster()` (cluster.ts). */
export const PVE2_ADDRESS = env.PVE_LAB_PVE2_ADDRESS ?? '10.77.7.4';
export const PVE2 = nodeSpec('pve2', PVE2_ADDRESS, 'pve-baseline-lab2', 'pvelab2', 'pve-baseline-lab2', join(STATE_DIR, 'pve2'), join(RUN_DIR, 'pve2'));
export const NODES = [PVE1, PVE2] as const;

/** PATH and locale inside the node for `exec` (a root login shell's). */
export const NODE_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  USER: 'root',
  LOGNAME: 'root',
  SHELL: '/bin/bash',
  LANG: 'en_US.UTF-8',
} as const;
