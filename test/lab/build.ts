/**
 * Building the lab node's images, cached by recipe hash:
 *
 * 1. base:  `debootstrap --variant=minbase` Debian 13 + recipe/base-packages.txt,
 *           then recipe/base.sh (locale, offline apt repository of
 *           recipe/offline-packages.txt). Slow (about a minute); rebuilt only
 *           when those files change.
 * 2. layer: an overlay upper dir on top of base holding the fresh-install state
 *           of a Proxmox VE 9 node: hostname, network, sshd as the installer
 *           leaves it, root's password and keys, /etc/pve, the Proxmox
 *           stand-ins (bundled with esbuild), and the apt world
 *           (recipe/apt-world.ts: the lab-built Proxmox packages, version N
 *           installed and N+1 available, the repositories indexed and signed
 *           with the lab's keys). Seconds; rebuilt when the stand-ins or the
 *           provisioning recipe change.
 *
 * The running node is a third overlay (lab.ts): lowerdir=layer:base, its own
 * upper dir being the node's disk, which `reset` wipes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { build as esbuild } from 'esbuild';
import {
  ADMIN_EMAIL,
  CACHE_DIR,
  DOMAIN,
  MIRROR,
  NODES,
  PREFIX_LEN,
  PVE1,
  RECIPE_DIR,
  REPO_ROOT,
  ROOT_PASSWORD,
  STANDINS_DIR,
  SUITE,
  type NodeSpec,
} from './config.ts';
import { run, runOk } from './sh.ts';
import {
  DEBIAN_POOL,
  MIRROR_HOSTS,
  MIRROR_ROOT,
  PACKAGE_MAINTAINER,
  PROXMOX_N,
  PROXMOX_N1,
  POOLS,
  RELEASES,
  REMOVAL_UPDATE,
  SECURITY_UPDATE,
  type LabPackage,
} from './recipe/apt-world.ts';

/** Bump when build.ts changes what an image contains. */
const BASE_VERSION = 1;
const LAYER_VERSION = 3;

/** The Proxmox tools the node gets, each bundled from test/lab/standins/<name>.ts */
export const STANDINS = ['pveum', 'pvesh', 'pveversion', 'pvecm', 'pve-firewall', 'pveproxy', 'pvedaemon', 'pvesubscription', 'proxmox-boot-tool', 'pve-lab-mirror', 'pmxcfs'] as const;
/** where each command's link goes (the others are services, run from STANDIN_LIBDIR by their units) */
const STANDIN_LINKS: Partial<Record<(typeof STANDINS)[number], string>> = {
  pveum: '/usr/bin/pveum',
  pvesh: '/usr/bin/pvesh',
  pveversion: '/usr/bin/pveversion',
  pvecm: '/usr/bin/pvecm',
  'pve-firewall': '/usr/bin/pve-firewall',
  pvesubscription: '/usr/bin/pvesubscription',
  'proxmox-boot-tool': '/usr/sbin/proxmox-boot-tool',
};
/** where the bundles live in the node; /usr/bin/<name> links to them */
export const STANDIN_LIBDIR = '/usr/lib/pve-baseline-lab';

export interface Images {
  baseHash: string;
  base: string; // rootfs dir
  layerHash: string;
  layer: string; // overlay upper dir
  /** seconds spent building now (0 when cached) */
  built: { base: number; layer: number };
}

type Log = (line: string) => void;

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out.sort();
}

function hashOf(files: string[], extra: string): string {
  const h = createHash('sha256');
  h.update(extra);
  for (const f of files) {
    h.update(`\0${relative(REPO_ROOT, f)}\0`);
    h.update(readFileSync(f));
  }
  return h.digest('hex').slice(0, 16);
}

const readList = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);

export function baseRecipe(): { hash: string; packages: string[]; offline: string[] } {
  const files = ['base-packages.txt', 'offline-packages.txt', 'base.sh'].map((f) => join(RECIPE_DIR, f));
  return {
    hash: hashOf(files, `base v${BASE_VERSION} ${SUITE} ${MIRROR}`),
    packages: readList(files[0]!),
    offline: readList(files[1]!),
  };
}

/** The fresh-install layer of one node (its name, address and keys are in it). */
export function layerRecipe(baseHash: string, node: NodeSpec = PVE1): { hash: string } {
  const files = [
    ...listFiles(STANDINS_DIR).filter((f) => f.endsWith('.ts')),
    ...listFiles(join(REPO_ROOT, 'src', 'pve')),
    join(RECIPE_DIR, 'provision.sh'),
    join(RECIPE_DIR, 'apt-world.ts'),
    ...listFiles(join(RECIPE_DIR, 'files')),
  ];
  const extra = `layer v${LAYER_VERSION} base ${baseHash} ${node.hostname}.${DOMAIN} ${node.address}/${PREFIX_LEN} ${ROOT_PASSWORD} ${ADMIN_EMAIL}`;
  return { hash: hashOf(files, extra) };
}

export const baseDir = (hash: string) => join(CACHE_DIR, `base-${hash}`);
export const layerDir = (hash: string) => join(CACHE_DIR, `layer-${hash}`);

/** Mount points under `prefix` (deepest first), from /proc/mounts. */
export function mountsUnder(prefix: string): string[] {
  const lines = readFileSync('/proc/mounts', 'utf8').split('\n');
  const points = lines
    .map((l) => l.split(' ')[1])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === prefix || p.startsWith(`${prefix}/`));
  return points.sort((a, b) => b.length - a.length);
}

async function unmountAll(prefix: string): Promise<void> {
  for (const p of mountsUnder(prefix)) {
    const r = await run('umount', [p]);
    if (r.exitCode !== 0) await run('umount', ['-l', p]);
  }
}

async function removeTree(dir: string): Promise<void> {
  await unmountAll(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** systemd-nspawn for build steps (no boot, no registration, host's cgroup). */
function nspawnArgs(root: string, extra: string[]): string[] {
  return ['-D', root, '--register=no', '--keep-unit', '-q', '--pipe', '--resolv-conf=off', '--timezone=off', '--link-journal=no', ...extra];
}

// ---------------------------------------------------------------------------
// base

async function buildBase(hash: string, packages: string[], offline: string[], log: Log): Promise<void> {
  const final = baseDir(hash);
  const tmp = `${final}.tmp`;
  await removeTree(tmp);
  mkdirSync(tmp, { recursive: true });
  const rootfs = join(tmp, 'rootfs');

  log(`debootstrap ${SUITE} (minbase + ${packages.length} packages) from ${MIRROR}`);
  await runOk('debootstrap', ['--variant=minbase', `--include=${packages.join(',')}`, SUITE, rootfs, MIRROR], { timeoutMs: 15 * 60_000 });

  log(`offline apt repository: ${offline.join(' ')}`);
  // base.sh needs Debian's archive: the build (only) shares the host's network
  await runOk('systemd-nspawn', nspawnArgs(rootfs, [`--bind-ro=${RECIPE_DIR}:/run/pve-lab-recipe`, '/bin/sh', '/run/pve-lab-recipe/base.sh', offline.join(' ')]), {
    timeoutMs: 15 * 60_000,
  });
  // debootstrap copied the host's resolver; the node gets its own in the layer
  rmSync(join(rootfs, 'etc', 'resolv.conf'), { force: true });

  // indexed and signed with the Release files of the lab's deb.debian.org in the layer (aptWorld)
  const debs = readdirSync(join(rootfs, MIRROR_ROOT.slice(1), DEBIAN_POOL)).filter((f) => f.endsWith('.deb'));
  log(`offline Debian pool holds ${debs.length} packages`);

  await removeTree(final);
  renameSync(tmp, final);
}

// ---------------------------------------------------------------------------
// key material of the fresh node (generated once per hostname, reused by layer builds)

async function ensureKeys(node: NodeSpec, log: Log): Promise<string> {
  const HOSTNAME = node.hostname;
  const NODE_ADDRESS = node.address;
  const dir = join(CACHE_DIR, `keys-${HOSTNAME}`);
  if (existsSync(join(dir, 'complete'))) return dir;
  log('generating the node\'s Proxmox keys and certificates (once)');
  rmSync(dir, { recursive: true, force: true });
  const p = (f: string) => join(dir, f);
  mkdirSync(p('etc-pve/priv'), { recursive: true });
  mkdirSync(p(`etc-pve/nodes/${HOSTNAME}`), { recursive: true });
  mkdirSync(p('root-ssh'), { recursive: true });
  const fqdn = `${HOSTNAME}.${DOMAIN}`;
  await runOk('openssl', ['genrsa', '-out', p('etc-pve/priv/authkey.key'), '2048']);
  await runOk('openssl', ['rsa', '-in', p('etc-pve/priv/authkey.key'), '-pubout', '-out', p('etc-pve/authkey.pub')]);
  await runOk('openssl', ['genrsa', '-out', p('etc-pve/pve-www.key'), '2048']);
  await runOk('openssl', ['genrsa', '-out', p('etc-pve/priv/pve-root-ca.key'), '4096']);
  const uuid = crypto.randomUUID();
  await runOk('openssl', [
    'req', '-batch', '-days', '3650', '-new', '-x509', '-nodes', '-key', p('etc-pve/priv/pve-root-ca.key'),
    '-out', p('etc-pve/pve-root-ca.pem'), '-subj', `/CN=Proxmox Virtual Environment/OU=${uuid}/O=PVE Cluster Manager CA/`,
  ]);
  await runOk('openssl', ['genrsa', '-out', p(`etc-pve/nodes/${HOSTNAME}/pve-ssl.key`), '2048']);
  const csr = p('node.csr');
  await runOk('openssl', [
    'req', '-batch', '-new', '-key', p(`etc-pve/nodes/${HOSTNAME}/pve-ssl.key`), '-out', csr,
    '-subj', `/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN=${fqdn}/`,
  ]);
  const ext = p('node.ext');
  writeFileSync(ext, `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=nonRepudiation,digitalSignature,keyEncipherment\nsubjectAltName=IP:127.0.0.1,IP:0:0:0:0:0:0:0:1,DNS:localhost,IP:${NODE_ADDRESS},DNS:${HOSTNAME},DNS:${fqdn}\n`);
  await runOk('openssl', [
    'x509', '-req', '-days', '730', '-in', csr, '-CA', p('etc-pve/pve-root-ca.pem'), '-CAkey', p('etc-pve/priv/pve-root-ca.key'),
    '-CAserial', p('etc-pve/priv/pve-root-ca.srl'), '-CAcreateserial', '-extfile', ext, '-out', p(`etc-pve/nodes/${HOSTNAME}/pve-ssl.pem`),
  ]);
  rmSync(csr);
  rmSync(ext);
  await runOk('ssh-keygen', ['-q', '-t', 'rsa', '-b', '4096', '-N', '', '-C', `root@${HOSTNAME}`, '-f', p('root-ssh/id_rsa')]);
  writeFileSync(p('complete'), new Date().toISOString());
  return dir;
}

// ---------------------------------------------------------------------------
// the apt world's keys (generated once, reused by layer builds): an OpenPGP key
// that signs the lab's Proxmox repositories and one for its Debian ones, and a
// CA whose certificate the node trusts for the mirror's HTTPS names

interface AptKeys {
  dir: string;
  gnupg: string;
  fpr: { proxmox: string; debian: string };
}

const gpgArgs = (home: string) => ['--homedir', home, '--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', ''];

async function ensureAptKeys(log: Log): Promise<AptKeys> {
  const dir = join(CACHE_DIR, 'keys-apt');
  const gnupg = join(dir, 'gnupg');
  const done = join(dir, 'complete');
  if (!existsSync(done)) {
    log('generating the lab\'s archive keys and mirror certificate (once)');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(gnupg, { recursive: true, mode: 0o700 });
    const fpr: Record<string, string> = {};
    const uids = {
      proxmox: 'Proxmox Trixie Release Key (pve-baseline lab) <lab@pve-baseline.invalid>',
      debian: 'Debian Archive Automatic Signing Key (pve-baseline lab) <lab@pve-baseline.invalid>',
    };
    try {
      for (const [name, uid] of Object.entries(uids)) {
        await runOk('gpg', [...gpgArgs(gnupg), '--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
        const list = await runOk('gpg', ['--homedir', gnupg, '--batch', '--with-colons', '--list-keys', `=${uid}`]);
        const f = /^fpr:+([0-9A-F]{40}):/m.exec(list.stdout)?.[1];
        if (!f) throw new Error(`no fingerprint for ${uid}`);
        fpr[name] = f;
        await runOk('gpg', ['--homedir', gnupg, '--batch', '--yes', '--output', join(dir, `${name}.pgp`), '--export', f]);
      }
    } finally {
      await run('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent']);
    }
    const p = (f: string) => join(dir, f);
    await runOk('openssl', ['req', '-batch', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-subj', '/CN=pve-baseline lab package mirrors CA/']);
    await runOk('openssl', ['req', '-batch', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('key.pem'), '-out', p('mirror.csr'), '-subj', '/CN=enterprise.proxmox.com/']);
    writeFileSync(p('mirror.ext'), `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\nsubjectAltName=${Object.keys(MIRROR_HOSTS).map((h) => `DNS:${h}`).join(',')}\n`);
    await runOk('openssl', ['x509', '-req', '-days', '3650', '-in', p('mirror.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-extfile', p('mirror.ext'), '-out', p('cert.pem')]);
    writeFileSync(p('fingerprints.json'), JSON.stringify(fpr) + '\n');
    writeFileSync(done, new Date().toISOString());
  }
  return { dir, gnupg, fpr: JSON.parse(readFileSync(join(dir, 'fingerprints.json'), 'utf8')) as AptKeys['fpr'] };
}

/** A lab package built with dpkg-deb: control, conffiles, maintainer scripts, data files. */
async function buildDeb(pkg: LabPackage, outDir: string, work: string): Promise<string> {
  const tree = join(work, `${pkg.name}_${pkg.version}`);
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(join(tree, 'DEBIAN'), { recursive: true });
  const control = [
    `Package: ${pkg.name}`,
    `Version: ${pkg.version}`,
    `Architecture: ${pkg.arch}`,
    `Maintainer: ${PACKAGE_MAINTAINER}`,
    `Section: ${pkg.section}`,
    `Priority: ${pkg.priority}`,
    ...(pkg.depends ? [`Depends: ${pkg.depends}`] : []),
    ...(pkg.conflicts ? [`Conflicts: ${pkg.conflicts}`] : []),
    `Description: ${pkg.description}`,
  ];
  writeFileSync(join(tree, 'DEBIAN', 'control'), control.join('\n') + '\n');
  if (pkg.conffiles?.length) writeFileSync(join(tree, 'DEBIAN', 'conffiles'), pkg.conffiles.join('\n') + '\n');
  for (const [name, body] of Object.entries(pkg.scripts ?? {})) {
    writeFileSync(join(tree, 'DEBIAN', name), `#!/bin/sh\nset -e\n${body}\nexit 0\n`, { mode: 0o755 });
  }
  for (const [path, content] of Object.entries(pkg.files ?? {})) {
    const f = join(tree, path.slice(1));
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, typeof content === 'number' ? randomBytes(content) : content, { mode: 0o644 });
  }
  mkdirSync(outDir, { recursive: true });
  const file = `${pkg.name}_${pkg.version.replace(/^\d+:/, '')}_${pkg.arch}.deb`;
  await runOk('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', tree, join(outDir, file)]);
  rmSync(tree, { recursive: true, force: true });
  return file;
}

/** A Debian package re-versioned (and given a Conflicts), its data untouched. */
async function reversion(deb: string, version: string, conflicts: string | undefined, outDir: string, work: string): Promise<string> {
  const tree = join(work, 'reversion');
  rmSync(tree, { recursive: true, force: true });
  await runOk('dpkg-deb', ['-R', deb, tree]);
  const controlFile = join(tree, 'DEBIAN', 'control');
  let control = readFileSync(controlFile, 'utf8').replace(/^Version: .*$/m, `Version: ${version}`);
  if (conflicts) control = control.replace(/^(Description: )/m, `Conflicts: ${conflicts}\n$1`);
  writeFileSync(controlFile, control);
  const name = /^Package: (\S+)$/m.exec(control)![1]!;
  const arch = /^Architecture: (\S+)$/m.exec(control)![1]!;
  mkdirSync(outDir, { recursive: true });
  const file = `${name}_${version.replace(/^\d+:/, '')}_${arch}.deb`;
  await runOk('dpkg-deb', ['-Zxz', '-b', tree, join(outDir, file)]);
  rmSync(tree, { recursive: true, force: true });
  return file;
}

/**
 * The repositories of recipe/apt-world.ts in the layer's /srv/pve-lab-repo/<host>/...:
 * packages, Packages indexes, Release files with the real ones' fields, signed
 * (InRelease and Release.gpg); the keyrings, the mirror's certificate and the
 * CA the node trusts. Returns the N packages provision.sh installs (node paths).
 */
async function aptWorld(merged: string, base: string, keys: AptKeys, log: Log): Promise<string[]> {
  const repo = join(merged, MIRROR_ROOT.slice(1));
  const work = join(merged, 'tmp', 'pve-lab-build');
  mkdirSync(work, { recursive: true });
  try {
    // the Proxmox packages: N and N+1, the same in the no-subscription and the enterprise pool
    const noSub = join(repo, 'download.proxmox.com/debian/pve', POOLS['download.proxmox.com/debian/pve trixie pve-no-subscription']!);
    const ent = join(repo, 'enterprise.proxmox.com/debian/pve', POOLS['enterprise.proxmox.com/debian/pve trixie pve-enterprise']!);
    const installDebs: string[] = [];
    for (const pkg of [...PROXMOX_N, ...PROXMOX_N1]) {
      const file = await buildDeb(pkg, noSub, work);
      mkdirSync(ent, { recursive: true });
      cpSync(join(noSub, file), join(ent, file));
      if (PROXMOX_N.includes(pkg)) installDebs.push(join(MIRROR_ROOT, relative(repo, noSub), file));
    }
    // Debian's `less`, re-versioned for Debian-Security and for the removal switch in unstable
    const pool = join(repo, DEBIAN_POOL);
    const orig = readdirSync(pool).find((f) => f.startsWith(`${SECURITY_UPDATE.name}_`) && f.endsWith('.deb'));
    if (!orig) throw new Error(`${SECURITY_UPDATE.name} is missing from the offline Debian pool (recipe/base.sh)`);
    const origVersion = decodeURIComponent(orig.split('_')[1]!);
    await reversion(join(pool, orig), `${origVersion}${SECURITY_UPDATE.suffix}`, undefined, join(repo, 'security.debian.org/debian-security', POOLS['security.debian.org/debian-security trixie-security main']!, 'l', SECURITY_UPDATE.name), work);
    await reversion(join(pool, orig), REMOVAL_UPDATE.version, REMOVAL_UPDATE.conflicts, join(repo, 'deb.debian.org/debian', POOLS['deb.debian.org/debian sid main']!), work);

    // indexes and signed Release files
    for (const rel of RELEASES) {
      const root = join(repo, rel.root);
      const dist = join(root, 'dists', rel.codename);
      for (const comp of rel.components) {
        const dir = join(dist, comp, 'binary-amd64');
        mkdirSync(dir, { recursive: true });
        const poolDir = POOLS[`${rel.root} ${rel.codename} ${comp}`];
        const index = poolDir ? (await runOk('apt-ftparchive', ['packages', poolDir], { cwd: root })).stdout : '';
        writeFileSync(join(dir, 'Packages'), index);
      }
      const release = await runOk(
        'apt-ftparchive',
        [
          '-o', `APT::FTPArchive::Release::Origin=${rel.origin}`,
          '-o', `APT::FTPArchive::Release::Label=${rel.label}`,
          '-o', `APT::FTPArchive::Release::Suite=${rel.suite}`,
          '-o', `APT::FTPArchive::Release::Codename=${rel.codename}`,
          ...(rel.version ? ['-o', `APT::FTPArchive::Release::Version=${rel.version}`] : []),
          '-o', 'APT::FTPArchive::Release::Architectures=amd64',
          '-o', `APT::FTPArchive::Release::Components=${rel.components.join(' ')}`,
          '-o', `APT::FTPArchive::Release::Description=${rel.description}`,
          'release', '.',
        ],
        { cwd: dist },
      );
      writeFileSync(join(dist, 'Release'), release.stdout);
      const signer = ['--local-user', keys.fpr[rel.key], '--digest-algo', 'SHA512', '--yes'];
      await runOk('gpg', [...gpgArgs(keys.gnupg), ...signer, '--clearsign', '--output', join(dist, 'InRelease'), join(dist, 'Release')]);
      await runOk('gpg', [...gpgArgs(keys.gnupg), ...signer, '--armor', '--detach-sign', '--output', join(dist, 'Release.gpg'), join(dist, 'Release')]);
    }
    await run('gpgconf', ['--homedir', keys.gnupg, '--kill', 'gpg-agent']);
    log(`apt world: ${RELEASES.length} signed repositories, ${PROXMOX_N.length + PROXMOX_N1.length} lab-built Proxmox packages`);

    // the node trusts the lab's keys where it trusts Proxmox's and Debian's
    const keyrings = join(merged, 'usr', 'share', 'keyrings');
    mkdirSync(keyrings, { recursive: true });
    cpSync(join(keys.dir, 'proxmox.pgp'), join(keyrings, 'proxmox-archive-keyring.gpg'));
    const debianKeyring = 'debian-archive-keyring.pgp';
    writeFileSync(join(keyrings, debianKeyring), Buffer.concat([readFileSync(join(base, 'usr/share/keyrings', debianKeyring)), readFileSync(join(keys.dir, 'debian.pgp'))]));
    // the mirror's certificate, and its CA among the system's (update-ca-certificates in provision.sh)
    const tls = join(merged, 'etc', 'pve-lab-mirror');
    mkdirSync(tls, { recursive: true, mode: 0o700 });
    cpSync(join(keys.dir, 'cert.pem'), join(tls, 'cert.pem'));
    cpSync(join(keys.dir, 'key.pem'), join(tls, 'key.pem'));
    chmodSync(join(tls, 'key.pem'), 0o600);
    const cas = join(merged, 'usr', 'local', 'share', 'ca-certificates');
    mkdirSync(cas, { recursive: true });
    cpSync(join(keys.dir, 'ca.pem'), join(cas, 'pve-baseline-lab-mirrors.crt'));
    return installDebs;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// layer

async function bundleStandins(outdir: string): Promise<void> {
  await esbuild({
    entryPoints: STANDINS.map((name) => join(STANDINS_DIR, `${name}.ts`)),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir,
    outExtension: { '.js': '.mjs' },
    banner: { js: '#!/usr/bin/node' },
    logLevel: 'error',
  });
  for (const name of STANDINS) chmodSync(join(outdir, `${name}.mjs`), 0o755);
}

async function buildLayer(hash: string, base: string, node: NodeSpec, log: Log): Promise<void> {
  const final = layerDir(hash);
  const tmp = `${final}.tmp`;
  await removeTree(tmp);
  const upper = join(tmp, 'upper');
  const work = join(tmp, 'work');
  const merged = join(tmp, 'merged');
  for (const d of [upper, work, merged]) mkdirSync(d, { recursive: true });
  const keys = await ensureKeys(node, log);

  log(`provisioning the fresh-install layer of ${node.hostname}`);
  await runOk('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${base},upperdir=${upper},workdir=${work}`, merged]);
  try {
    // the Proxmox stand-ins
    const lib = join(merged, STANDIN_LIBDIR.slice(1));
    mkdirSync(lib, { recursive: true });
    await bundleStandins(lib);
    for (const name of STANDINS) {
      const at = STANDIN_LINKS[name];
      if (!at) continue; // services, not commands
      const link = join(merged, at.slice(1));
      rmSync(link, { force: true });
      symlinkSync(`${STANDIN_LIBDIR}/${name}.mjs`, link);
    }
    // static files (unit files ...)
    cpSync(join(RECIPE_DIR, 'files'), merged, { recursive: true });
    // the repositories, the lab-built packages, the keys apt and the mirror need
    const installDebs = await aptWorld(merged, base, await ensureAptKeys(log), log);
    // key material the installer / first pveproxy start create
    cpSync(join(keys, 'etc-pve'), join(merged, 'etc', 'pve'), { recursive: true });
    mkdirSync(join(merged, 'root', '.ssh'), { recursive: true, mode: 0o700 });
    cpSync(join(keys, 'root-ssh'), join(merged, 'root', '.ssh'), { recursive: true });

    await runOk(
      'systemd-nspawn',
      nspawnArgs(merged, [
        '--private-network',
        // the node's name from the start (nspawn would name it after the directory: pvecm updatecerts writes nodes/<name>/)
        `--hostname=${node.hostname}`,
        `--bind-ro=${RECIPE_DIR}:/run/pve-lab-recipe`,
        `--setenv=NODE_HOSTNAME=${node.hostname}`,
        `--setenv=NODE_DOMAIN=${DOMAIN}`,
        `--setenv=NODE_ADDRESS=${node.address}`,
        `--setenv=NODE_PREFIX=${PREFIX_LEN}`,
        `--setenv=ROOT_PASSWORD=${ROOT_PASSWORD}`,
        `--setenv=ADMIN_EMAIL=${ADMIN_EMAIL}`,
        `--setenv=SUITE=${SUITE}`,
        `--setenv=LAB_INSTALL_DEBS=${installDebs.join(' ')}`,
        `--setenv=LAB_MIRROR_HOSTS=${Object.entries(MIRROR_HOSTS).map(([name, address]) => `${address} ${name}`).join(',')}`,
        '/bin/sh',
        '/run/pve-lab-recipe/provision.sh',
      ]),
      { timeoutMs: 5 * 60_000 },
    );
  } finally {
    await unmountAll(merged);
  }
  rmSync(work, { recursive: true, force: true });
  rmSync(merged, { recursive: true, force: true });
  await removeTree(final);
  renameSync(tmp, final);
}

/** Remove cached images other than the current ones, unless something has them mounted. */
async function prune(keep: Set<string>, log: Log): Promise<void> {
  if (!existsSync(CACHE_DIR)) return;
  const mounts = readFileSync('/proc/mounts', 'utf8');
  for (const name of readdirSync(CACHE_DIR)) {
    if (!/^(base|layer)-[0-9a-f]{16}(\.tmp)?$/.test(name) || keep.has(name)) continue;
    const dir = join(CACHE_DIR, name);
    if (mounts.includes(dir)) continue;
    log(`removing stale image ${name}`);
    await removeTree(dir);
  }
}

/** Build what is missing; return the images of `node` (pve1 unless told) for the current recipe. */
export async function ensureImages(log: Log = () => {}, node: NodeSpec = PVE1): Promise<Images> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const built = { base: 0, layer: 0 };
  const baseR = baseRecipe();
  const base = baseDir(baseR.hash);
  if (!existsSync(join(base, 'rootfs', 'etc', 'os-release')) || !existsSync(join(base, 'complete'))) {
    const t0 = performance.now();
    await buildBase(baseR.hash, baseR.packages, baseR.offline, log);
    built.base = (performance.now() - t0) / 1000;
    writeFileSync(join(base, 'complete'), JSON.stringify({ seconds: built.base, at: new Date().toISOString() }) + '\n');
    log(`base image built in ${built.base.toFixed(1)} s`);
  }
  const layerR = layerRecipe(baseR.hash, node);
  const layer = layerDir(layerR.hash);
  if (!existsSync(join(layer, 'complete'))) {
    const t0 = performance.now();
    await buildLayer(layerR.hash, join(base, 'rootfs'), node, log);
    built.layer = (performance.now() - t0) / 1000;
    writeFileSync(join(layer, 'complete'), JSON.stringify({ seconds: built.layer, at: new Date().toISOString() }) + '\n');
    log(`fresh-install layer built in ${built.layer.toFixed(1)} s`);
  }
  // every node's current layer stays: pve2's is built only for the cluster tests
  await prune(new Set([`base-${baseR.hash}`, ...NODES.map((n) => `layer-${layerRecipe(baseR.hash, n).hash}`)]), log);
  return { baseHash: baseR.hash, base: join(base, 'rootfs'), layerHash: layerR.hash, layer: join(layer, 'upper'), built };
}

/** Build times recorded when the current images were built (for status / README). */
export function recordedBuildSeconds(): { base?: number; layer?: number } {
  const read = (f: string) => {
    try {
      return (JSON.parse(readFileSync(f, 'utf8')) as { seconds: number }).seconds;
    } catch {
      return undefined;
    }
  };
  const b = baseRecipe();
  const out: { base?: number; layer?: number } = {};
  const base = read(join(baseDir(b.hash), 'complete'));
  const layer = read(join(layerDir(layerRecipe(b.hash).hash), 'complete'));
  if (base !== undefined) out.base = base;
  if (layer !== undefined) out.layer = layer;
  return out;
}
