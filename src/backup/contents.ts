/**
 * What a config backup of a Proxmox VE node holds, each with why: enough to
 * rebuild the node's configuration on a reinstall (pmxcfs "Recovery": the
 * config.db, then hostname and hosts), and the facts that say what the node
 * was (versions, packages, boot, addresses) when it is gone.
 *
 * Paths are the node's; createArchive reads them under a root ('/' on the
 * node, a temporary directory in tests). A path that is missing is recorded
 * as absent in the manifest, never an error: not every node has fail2ban,
 * auditd, GRUB or systemd-boot.
 */

/** Where pmxcfs keeps its database (pve-cluster: database.c, opened by bdb_backend_open). */
export const CONFIG_DB_PATH = '/var/lib/pve-cluster/config.db';

/** The path of the consistent database copy inside the archive's top directory. */
export const ARCHIVE_CONFIG_DB = 'config.db';
/** Copied node files go under this directory of the archive, at their node path (files/etc/hosts). */
export const ARCHIVE_FILES_DIR = 'files';
/** Facts (command outputs) go here. */
export const ARCHIVE_FACTS_DIR = 'facts';
export const MANIFEST_NAME = 'manifest.json';
export const SUMS_NAME = 'SHA256SUMS';
export const RESTORE_NAME = 'RESTORE.txt';

export interface BackupSource {
  /** Absolute node path; a directory is copied whole. */
  path: string;
  why: string;
}

export const BACKUP_SOURCES: readonly BackupSource[] = [
  { path: '/etc/pve', why: 'the cluster filesystem as files (user.cfg, storage.cfg, firewall, guests, certificates): readable and restorable one file at a time' },
  { path: '/etc/corosync', why: 'corosync.conf and the cluster authkey' },
  { path: '/etc/network', why: 'interfaces and bridges: the node is unreachable without them' },
  { path: '/etc/hosts', why: "the node's name must resolve to its address (pmxcfs recovery adapts it)" },
  { path: '/etc/hostname', why: "the node's name, which names its directory in /etc/pve/nodes" },
  { path: '/etc/resolv.conf', why: 'name servers' },
  { path: '/etc/ssh', why: "sshd configuration and the host keys clients have pinned" },
  { path: '/root/.ssh', why: "root's keys; authorized_keys is a link into /etc/pve/priv, kept as a link" },
  { path: '/etc/apt', why: 'repositories, keys and preferences' },
  { path: '/etc/sysctl.d', why: 'kernel and network settings' },
  { path: '/etc/fail2ban', why: 'jails and filters' },
  { path: '/etc/audit', why: 'audit rules and auditd settings' },
  { path: '/etc/default/pveproxy', why: "pveproxy's host allow and deny lists and TLS settings" },
  { path: '/etc/vzdump.conf', why: 'backup job defaults' },
  { path: '/etc/kernel/cmdline', why: 'the kernel command line of systemd-boot nodes (proxmox-boot-tool)' },
  { path: '/etc/kernel/proxmox-boot-uuids', why: 'the ESPs proxmox-boot-tool keeps in sync' },
  { path: '/etc/default/grub', why: 'the kernel command line of GRUB nodes' },
  { path: '/etc/modprobe.d', why: 'module options and blacklists (e.g. IOMMU, ZFS ARC size)' },
  { path: '/etc/modules-load.d', why: 'modules loaded at boot' },
  { path: '/etc/systemd/system', why: 'local units, timers, drop-ins and what is enabled' },
];

export const JOURNAL_WHY = "pve-baseline's journal: which steps were applied, with which answers (never secrets)";
export const CONFIG_DB_WHY = "pmxcfs's database, copied with SQLite's online backup (the WAL's committed writes included): restoring it restores all of /etc/pve";

export interface FactCommand {
  /** File name under facts/. */
  file: string;
  argv: readonly string[];
  why: string;
}

export const BACKUP_FACTS: readonly FactCommand[] = [
  { file: 'pveversion.txt', argv: ['pveversion', '-v'], why: 'the Proxmox VE packages and versions to reinstall' },
  { file: 'dpkg-selections.txt', argv: ['dpkg', '--get-selections'], why: 'every installed package (dpkg --set-selections on the new node)' },
  { file: 'proxmox-boot-tool-status.txt', argv: ['proxmox-boot-tool', 'status'], why: 'how the node boots (GRUB or systemd-boot) and from which ESPs' },
  { file: 'ip-addresses.txt', argv: ['ip', '-br', 'a'], why: "the node's interfaces and addresses" },
];

/** Archive file names this module makes (and the only ones retention ever removes): NODE-config-YYYYMMDDTHHMMSSZ.tar.gz.age. */
export const ARCHIVE_NAME_RE = /^([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)-config-(\d{8}T\d{6}Z)\.tar\.gz\.age$/;

/** A node name as Proxmox allows it (a host name label): it names the archive and /etc/pve/nodes/NODE. */
export const NODE_NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function checkNodeName(node: string): void {
  if (!NODE_NAME_RE.test(node)) throw new Error(`"${node}" is not a node name (letters, digits and inner hyphens, at most 63)`);
}

/** 2026-11-22T09:05:01Z -> 20261122T090501Z */
export function archiveStamp(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

export function archiveName(node: string, now: Date): string {
  checkNodeName(node);
  return `${node}-config-${archiveStamp(now)}.tar.gz.age`;
}

/** The node and stamp of one of our archive names, or null for any other name. */
export function parseArchiveName(name: string): { node: string; stamp: string } | null {
  const m = ARCHIVE_NAME_RE.exec(name);
  return m ? { node: m[1]!, stamp: m[2]! } : null;
}

/**
 * Our archives among `names`, newest first (by the stamp in the name, not the
 * file's time, which a copy changes); only `node`'s when given.
 */
export function ourArchives(names: readonly string[], node?: string): string[] {
  return names
    .map((name) => ({ name, parsed: parseArchiveName(name) }))
    .filter((a): a is { name: string; parsed: { node: string; stamp: string } } => a.parsed !== null && (node === undefined || a.parsed.node === node))
    .sort((a, b) => (a.parsed.stamp < b.parsed.stamp ? 1 : a.parsed.stamp > b.parsed.stamp ? -1 : a.name < b.name ? 1 : -1))
    .map((a) => a.name);
}

/** The archives to remove so that the newest `keep` stay. */
export function beyondRetention(names: readonly string[], keep: number, node?: string): string[] {
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`keep must be a whole number of at least 1, not ${keep}`);
  return ourArchives(names, node).slice(keep);
}

/** The checksum file written beside an archive (sha256sum's format). */
export function checksumName(archive: string): string {
  return `${archive}.sha256`;
}
