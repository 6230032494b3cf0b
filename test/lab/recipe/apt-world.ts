/**
 * The lab's apt world, as data (build.ts builds it; changing this file rebuilds
 * the fresh-install layer): the repositories a fresh Proxmox VE 9 node lists,
 * served inside the node's own namespace by the pve-lab-mirror stand-in under
 * the real host names (/etc/hosts points them at loopback addresses), and the
 * packages built for the lab with dpkg-deb (no compiler: control files and a
 * few data files).
 *
 *   deb.debian.org/debian            trixie (the offline Debian packages), trixie-updates (empty),
 *                                    sid (only when a test adds it: the upgrade that removes proxmox-ve)
 *   security.debian.org/debian-security  trixie-security: a newer `less` (Debian's own package, re-versioned)
 *   download.proxmox.com/debian      pve trixie pve-no-subscription (N and N+1 of the Proxmox packages),
 *                                    ceph-squid trixie no-subscription (empty)
 *   enterprise.proxmox.com/debian    HTTPS; 401 Unauthorized unless the node has an active subscription
 *                                    (pvesubscription set), then the same packages as pve-enterprise
 *
 * Every Release file is signed: the Proxmox ones with the lab's Proxmox key
 * (the node's /usr/share/keyrings/proxmox-archive-keyring.gpg), the Debian ones
 * with the lab's Debian key (added to /usr/share/keyrings/debian-archive-keyring.gpg).
 */

/** The kernel the fresh node "runs" and the one the upgrade brings. */
export const KERNEL_N = '6.14.8-2-pve';
export const KERNEL_N1 = '6.14.11-1-pve';

/** Loopback addresses inside the node's namespace for the mirror's host names (/etc/hosts). */
export const MIRROR_HOSTS: Record<string, string> = {
  'enterprise.proxmox.com': '127.0.2.1',
  'download.proxmox.com': '127.0.2.2',
  'deb.debian.org': '127.0.2.3',
  'security.debian.org': '127.0.2.4',
};
/** The mirror's document root in the node: one directory per host name. */
export const MIRROR_ROOT = '/srv/pve-lab-repo';

export interface LabPackage {
  name: string;
  version: string;
  arch: 'all' | 'amd64';
  section: string;
  priority: 'optional' | 'important' | 'required';
  depends?: string;
  conflicts?: string;
  description: string;
  /** data files: path in the node -> content (a number: that many random bytes, so downloads take time) */
  files?: Record<string, string | number>;
  /** which of the files are conffiles */
  conffiles?: string[];
  /** maintainer scripts: name -> sh body */
  scripts?: Partial<Record<'postinst' | 'postrm', string>>;
}

const MAINTAINER = 'Proxmox Support Team <support@proxmox.com>';
export const PACKAGE_MAINTAINER = MAINTAINER;

/**
 * vzdump.conf as pve-manager ships it (all comments): a conffile the fresh node
 * has changed locally (provision.sh adds a bwlimit), and which version N+1
 * changes too, so the upgrade reports a kept configuration file.
 */
const vzdumpConf = (extra: string) =>
  `# vzdump default settings\n\n#tmpdir: DIR\n#dumpdir: DIR\n#storage: STORAGE_ID\n#mode: snapshot|suspend|stop\n#bwlimit: KBPS\n#performance: [max-workers=N][,pbs-entries-max=N]\n#ionice: PRI\n#lockwait: MINUTES\n#stopwait: MINUTES\n#stdexcludes: BOOLEAN\n#mailto: ADDRESSLIST\n#prune-backups: keep-INTERVAL=N[,...]\n#script: FILENAME\n#exclude-path: PATHLIST\n#pigz: N\n#notes-template: {{guestname}}\n#pbs-change-detection-mode: legacy|data|metadata\n#fleecing: enabled=BOOLEAN,storage=STORAGE_ID\n${extra}`;

/**
 * A kernel package: the image under /boot and its module directory (what
 * proxmox-boot-tool's stand-in lists), and a postinst that runs the
 * /etc/kernel/postinst.d hooks as Proxmox's kernel packages do (unattended-upgrades
 * installs one there that touches /run/reboot-required).
 */
function kernel(abi: string, version: string): LabPackage {
  return {
    name: `proxmox-kernel-${abi}-signed`,
    version,
    arch: 'amd64',
    section: 'kernel',
    priority: 'optional',
    description: `Proxmox Kernel Image (signed) (pve-baseline lab: no kernel inside)`,
    files: {
      // incompressible, so its download shows progress (and takes time under Lab.slowUpgrade)
      [`/boot/vmlinuz-${abi}`]: KERNEL_IMAGE_BYTES,
      [`/boot/System.map-${abi}`]: '',
      [`/lib/modules/${abi}/modules.order`]: '',
    },
    scripts: {
      // Lab.slowUpgrade: the time a real kernel's postinst spends (initramfs, boot entries)
      postinst: `if [ "$1" = configure ] && [ -s ${SLOW_POSTINST_FILE} ]; then\n  sleep "$(cat ${SLOW_POSTINST_FILE})"\nfi\nif [ "$1" = configure ] && [ -d /etc/kernel/postinst.d ]; then\n  run-parts --report --exit-on-error --arg=${abi} --arg=/boot/vmlinuz-${abi} /etc/kernel/postinst.d\nfi\n`,
      postrm: `if [ "$1" = remove ] && [ -d /etc/kernel/postrm.d ]; then\n  run-parts --report --exit-on-error --arg=${abi} --arg=/boot/vmlinuz-${abi} /etc/kernel/postrm.d\nfi\n`,
    },
  };
}

/** The size of a lab kernel image (random bytes). */
export const KERNEL_IMAGE_BYTES = 1024 * 1024;
/** Lab switches for a slower upgrade (Lab.slowUpgrade): the mirror's rate in bytes per second, a kernel postinst's seconds. */
export const THROTTLE_FILE = '/etc/pve-lab-mirror/throttle';
export const SLOW_POSTINST_FILE = '/etc/pve-lab/kernel-postinst-seconds';

/** Version N of the Proxmox packages: installed on the fresh node. */
export const PROXMOX_N: LabPackage[] = [
  kernel(KERNEL_N, '6.14.8-2'),
  {
    name: 'proxmox-default-kernel',
    version: '2.0.0',
    arch: 'all',
    section: 'admin',
    priority: 'optional',
    depends: `proxmox-kernel-${KERNEL_N}-signed`,
    description: 'Default Proxmox Kernel Image (pve-baseline lab)',
  },
  {
    name: 'pve-manager',
    version: '9.1.2',
    arch: 'amd64',
    section: 'admin',
    priority: 'optional',
    description: 'Proxmox Virtual Environment Management Tools (pve-baseline lab: the tools are stand-ins in /usr/lib/pve-baseline-lab)',
    files: { '/etc/vzdump.conf': vzdumpConf('') },
    conffiles: ['/etc/vzdump.conf'],
  },
  {
    name: 'proxmox-ve',
    version: '9.1.0',
    arch: 'all',
    section: 'admin',
    priority: 'optional',
    depends: 'pve-manager (>= 9.1.2), proxmox-default-kernel',
    description: 'Proxmox Virtual Environment (pve-baseline lab)',
  },
];

/** Version N+1: in the no-subscription (and, with a subscription, the enterprise) repository. */
export const PROXMOX_N1: LabPackage[] = [
  kernel(KERNEL_N1, '6.14.11-1'),
  { ...PROXMOX_N[1]!, version: '2.0.1', depends: `proxmox-kernel-${KERNEL_N1}-signed` },
  {
    ...PROXMOX_N[2]!,
    version: '9.1.3',
    files: { '/etc/vzdump.conf': vzdumpConf('#zstd: N\n') },
  },
  { ...PROXMOX_N[3]!, version: '9.1.1', depends: 'pve-manager (>= 9.1.3), proxmox-default-kernel' },
];

/** The installed Debian package re-versioned for Debian-Security (its data kept, its version raised as a stable update is). */
export const SECURITY_UPDATE = { name: 'less', suffix: '+deb13u1' } as const;

/**
 * The removal switch: Debian's unstable suite holding a newer `less` (the
 * same package re-versioned) that conflicts with proxmox-ve, as when a node is
 * pointed at the wrong Debian release: `apt-get dist-upgrade` then removes
 * proxmox-ve. Only a test adds the suite (Lab.removalRepository(true)).
 */
export const REMOVAL_UPDATE = { name: 'less', version: '685-1', conflicts: 'proxmox-ve' } as const;
/** The sources file that adds it. */
export const REMOVAL_SOURCES = '/etc/apt/sources.list.d/debian-unstable.sources';

export interface RepoRelease {
  /** host/path of the repository root (what the sources file's URI points at) */
  root: string;
  suite: string;
  codename: string;
  origin: string;
  label: string;
  components: string[];
  /** the key that signs it */
  key: 'proxmox' | 'debian';
  description: string;
  /** further fields, e.g. NotAutomatic */
  version?: string;
}

export const RELEASES: RepoRelease[] = [
  { root: 'deb.debian.org/debian', suite: 'stable', codename: 'trixie', origin: 'Debian', label: 'Debian', components: ['main', 'contrib', 'non-free-firmware', 'non-free'], key: 'debian', version: '13.2', description: 'Debian 13.2 Released 15 November 2025' },
  { root: 'deb.debian.org/debian', suite: 'stable-updates', codename: 'trixie-updates', origin: 'Debian', label: 'Debian', components: ['main', 'contrib', 'non-free-firmware', 'non-free'], key: 'debian', description: 'Debian 13 - Updates' },
  { root: 'deb.debian.org/debian', suite: 'unstable', codename: 'sid', origin: 'Debian', label: 'Debian', components: ['main', 'contrib', 'non-free-firmware', 'non-free'], key: 'debian', description: 'Debian x.y Unstable - Not Released' },
  { root: 'security.debian.org/debian-security', suite: 'stable-security', codename: 'trixie-security', origin: 'Debian', label: 'Debian-Security', components: ['main', 'contrib', 'non-free-firmware', 'non-free'], key: 'debian', version: '13', description: 'Debian 13 - Security Updates' },
  { root: 'download.proxmox.com/debian/pve', suite: 'stable', codename: 'trixie', origin: 'Proxmox', label: 'Proxmox Debian Repository', components: ['pve-no-subscription'], key: 'proxmox', description: 'Proxmox VE no-subscription repository (pve-baseline lab)' },
  { root: 'download.proxmox.com/debian/ceph-squid', suite: 'stable', codename: 'trixie', origin: 'Proxmox', label: 'Proxmox Debian Repository', components: ['no-subscription'], key: 'proxmox', description: 'Proxmox Ceph Squid no-subscription repository (pve-baseline lab)' },
  { root: 'enterprise.proxmox.com/debian/pve', suite: 'stable', codename: 'trixie', origin: 'Proxmox', label: 'Proxmox Debian Repository', components: ['pve-enterprise'], key: 'proxmox', description: 'Proxmox VE enterprise repository (pve-baseline lab)' },
  { root: 'enterprise.proxmox.com/debian/ceph-squid', suite: 'stable', codename: 'trixie', origin: 'Proxmox', label: 'Proxmox Debian Repository', components: ['enterprise'], key: 'proxmox', description: 'Proxmox Ceph Squid enterprise repository (pve-baseline lab)' },
];

/** Which pool (relative to the repository root) each repository's component indexes; the others are empty. */
export const POOLS: Record<string, string> = {
  'deb.debian.org/debian trixie main': 'pool/main',
  'deb.debian.org/debian sid main': 'pool/lab-sid',
  'security.debian.org/debian-security trixie-security main': 'pool/updates/main',
  'download.proxmox.com/debian/pve trixie pve-no-subscription': 'pool/pve-no-subscription',
  'enterprise.proxmox.com/debian/pve trixie pve-enterprise': 'pool/pve-enterprise',
};
/** The offline Debian packages (base.sh puts them there), relative to MIRROR_ROOT. */
export const DEBIAN_POOL = 'deb.debian.org/debian/pool/main';
