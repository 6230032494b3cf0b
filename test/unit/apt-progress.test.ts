/**
 * apt's status channel (src/apt/progress.ts): each kind of line, a whole
 * upgrade fed in arbitrary pieces, the overall percent, the throttle for
 * headless output, the argv, the extra pipe execa gives a child, the
 * fallback on standard output, and the simulated upgrade with its refusal.
 *
 * Where the fixtures come from:
 *   README     apt's README.progress-reporting, its examples verbatim (an older format:
 *              integer percents, and a pmerror with spaces and "%")
 *   CODE       built with the format strings of apt's current code: GetProgressFdString in
 *              apt-pkg/install-progress.cc (percent with std::fixed, precision 4), the
 *              descriptions of apt-pkg/deb/dpkgpm.cc, dlstatus from pkgAcquireStatus::Pulse
 *              (apt-pkg/acquire.cc), media-change from Worker::MediaChange
 *              (apt-pkg/acquire-worker.cc), and the conffile text dpkg sends
 *              (dpkg promptconfaction: "'%s' '%s' %i %i "). Not captured from a node.
 *   SIMULATE   `apt-get -s dist-upgrade` lines built with pkgSimulate::Describe's format
 *              (apt-pkg/algorithms.cc: "Inst NAME [CUR] (CAND REL [ARCH])") and the release
 *              strings of VerIterator::RelStr (Label:Version/Archive); not captured from a node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import {
  AptStatusParser,
  coreRemovals,
  distUpgradeArgv,
  isCorePackage,
  parseSimulation,
  parseStatusLine,
  parseStatusStream,
  simulateArgv,
  simulationRefusal,
  STATUS_FD,
  verbOf,
  type AptProgress,
} from '../../src/apt/progress.ts';

// README
const README_LINES = [
  'pmstatus:3dchess:20:Preparing 3dchess',
  'pmstatus:3dchess:40:Unpacking 3dchess',
  'pmstatus:3dchess:60:Preparing to configure 3dchess',
  'pmstatus:3dchess:80:Configuring 3dchess',
  'pmstatus:3dchess:100:Installed 3dchess',
  "pmerror: /var/cache/apt/archives/krecipes_0.8.1-0ubuntu1_i386.deb : 75% : trying to overwrite `/usr/share/doc/kde/HTML/en/krecipes/krectip.png', which is also in package krecipes-data ",
  'dlstatus:1:9.05654:Downloading file 1 of 3 (4m40s remaining)',
];

// CODE: a dist-upgrade of openssh-server (whose sshd_config was edited here) and pve-manager.
const UPGRADE = [
  'dlstatus:1:0.0000:Retrieving file 1 of 2',
  'dlstatus:1:38.5712:Retrieving file 1 of 2 (3s remaining)',
  'dlstatus:2:81.0034:Retrieving file 2 of 2 (1s remaining)',
  'dlstatus:2:100.0000:Retrieving file 2 of 2',
  'pmstatus:dpkg-exec:0.0000:Running dpkg',
  'pmstatus:openssh-server:0.0000:Preparing openssh-server (amd64)',
  'pmstatus:openssh-server:12.5000:Unpacking openssh-server (amd64)',
  'pmstatus:pve-manager:25.0000:Preparing pve-manager (amd64)',
  'pmstatus:pve-manager:37.5000:Unpacking pve-manager (amd64)',
  'pmstatus:openssh-server:50.0000:Preparing to configure openssh-server (amd64)',
  'pmstatus:openssh-server:50.0000:Configuring openssh-server (amd64)',
  "pmconffile:/etc/ssh/sshd_config:50.0000:'/etc/ssh/sshd_config' '/etc/ssh/sshd_config.dpkg-new' 1 1 ",
  'pmstatus:openssh-server:62.5000:Installed openssh-server (amd64)',
  'pmstatus:pve-manager:62.5000:Preparing to configure pve-manager (amd64)',
  'pmstatus:pve-manager:75.0000:Configuring pve-manager (amd64)',
  'pmstatus:pve-manager:87.5000:Installed pve-manager (amd64)',
  'pmstatus:man-db:87.5000:Running post-installation trigger man-db (amd64)',
  'pmstatus:man-db:100.0000:Installed man-db (amd64)',
].join('\n') + '\n';

test('each kind of status line, as apt writes it now and as its README shows it', () => {
  assert.deepEqual(parseStatusLine('dlstatus:2:43.2874:Retrieving file 2 of 3 (2s remaining)'), { kind: 'dlstatus', item: 2, percent: 43.2874, description: 'Retrieving file 2 of 3 (2s remaining)' });
  assert.deepEqual(parseStatusLine('pmstatus:pve-manager:37.5000:Unpacking pve-manager (amd64)'), { kind: 'pmstatus', package: 'pve-manager', percent: 37.5, description: 'Unpacking pve-manager (amd64)' });
  // dpkg's error text may hold colons (dpkgpm.cc splits dpkg's line in 4 for this reason); the package may be arch-qualified.
  assert.deepEqual(parseStatusLine("pmerror:libfoo1:amd64:33.3333:failed in buffer_write(fd) (10, ret=-1): backend dpkg-deb during `./usr/lib/x': No space left on device"), {
    kind: 'pmerror',
    package: 'libfoo1:amd64',
    percent: 33.3333,
    message: "failed in buffer_write(fd) (10, ret=-1): backend dpkg-deb during `./usr/lib/x': No space left on device",
  });
  assert.deepEqual(parseStatusLine("pmconffile:/etc/ssh/sshd_config:50.0000:'/etc/ssh/sshd_config' '/etc/ssh/sshd_config.dpkg-new' 1 1 "), {
    kind: 'pmconffile',
    conffile: '/etc/ssh/sshd_config',
    percent: 50,
    current: '/etc/ssh/sshd_config',
    new: '/etc/ssh/sshd_config.dpkg-new',
    userEdited: true,
    distEdited: true,
    raw: "'/etc/ssh/sshd_config' '/etc/ssh/sshd_config.dpkg-new' 1 1",
  });
  assert.deepEqual(parseStatusLine("media-change: Debian GNU/Linux 13 DVD-1:/media/cdrom/:Please insert the disc labeled: 'Debian GNU/Linux 13 DVD-1' in the drive '/media/cdrom/' and press [Enter]."), {
    kind: 'media-change',
    media: 'Debian GNU/Linux 13 DVD-1',
    drive: '/media/cdrom/',
    message: "Please insert the disc labeled: 'Debian GNU/Linux 13 DVD-1' in the drive '/media/cdrom/' and press [Enter].",
  });
  // README's older examples.
  const readme = README_LINES.map(parseStatusLine);
  assert.deepEqual(readme.map((l) => l.kind), ['pmstatus', 'pmstatus', 'pmstatus', 'pmstatus', 'pmstatus', 'pmerror', 'dlstatus']);
  assert.deepEqual(readme[5], {
    kind: 'pmerror',
    package: '/var/cache/apt/archives/krecipes_0.8.1-0ubuntu1_i386.deb',
    percent: 75,
    message: "trying to overwrite `/usr/share/doc/kde/HTML/en/krecipes/krectip.png', which is also in package krecipes-data",
  });
  // Not apt's: kept as unknown, never thrown.
  assert.equal(parseStatusLine('Setting up pve-manager (9.1.2) ...').kind, 'unknown');
  assert.equal(parseStatusLine('pmstatus:no-percent-here').kind, 'unknown');
  assert.equal(parseStatusLine('pmconffile:/etc/x:10.0000:garbled').kind, 'unknown');
});

test('what dpkg does, from apt\'s descriptions; the longest prefix decides', () => {
  assert.equal(verbOf('Preparing to configure pve-manager (amd64)'), 'configure');
  assert.equal(verbOf('Preparing pve-manager (amd64)'), 'unpack');
  assert.equal(verbOf('Preparing for removal of pve-kernel-6.2 (amd64)'), 'remove');
  assert.equal(verbOf('Running post-installation trigger man-db (amd64)'), 'trigger');
  assert.equal(verbOf('Running dpkg'), 'dpkg');
  assert.equal(verbOf('Installed pve-manager (amd64)'), 'configure');
  assert.equal(verbOf('Frobnicating x'), 'other');
});

test('a whole upgrade, fed in pieces of every size (a UTF-8 character split too), gives the same model; the percent never goes back', () => {
  const whole = parseStatusStream(UPGRADE, 0);
  assert.equal(whole.phase, 'install');
  assert.equal(whole.percent, 100);
  assert.deepEqual(whole.installed, ['openssh-server', 'pve-manager', 'man-db']);
  assert.deepEqual(whole.conffiles, [{ conffile: '/etc/ssh/sshd_config', package: 'openssh-server', userEdited: true, distEdited: true, outcome: 'kept-local' }]);
  assert.deepEqual(whole.errors, []);
  assert.equal(whole.lines, UPGRADE.trim().split('\n').length);
  assert.deepEqual(whole.unknown, []);

  const bytes = Buffer.from(`${UPGRADE}pmerror:tzdata:100.0000:Fehler beim Öffnen – naïve\n`, 'utf8');
  for (const size of [1, 2, 3, 7, 64, bytes.length]) {
    const parser = new AptStatusParser();
    const seen: number[] = [];
    for (let i = 0; i < bytes.length; i += size) {
      parser.feed(bytes.subarray(i, i + size));
      seen.push(parser.progress.percent);
    }
    const p = parser.finish(0);
    assert.deepEqual(p.errors, [{ package: 'tzdata', message: 'Fehler beim Öffnen – naïve' }], `chunks of ${size}`);
    assert.deepEqual(p.installed, whole.installed, `chunks of ${size}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `chunks of ${size}: ${seen[i - 1]} then ${seen[i]}`);
  }
});

test('the overall percent: the download takes the first fifth, the install the rest; without a download the install takes it all', () => {
  const p = new AptStatusParser();
  p.feed('dlstatus:1:50.0000:Retrieving file 1 of 2 (3s remaining)\n');
  assert.equal(p.progress.phase, 'download');
  assert.equal(p.progress.percent, 10);
  assert.equal(p.progress.download, 'Retrieving file 1 of 2 (3s remaining)');
  // A dlstatus that goes back (apt sets 0 while it expects more items) does not move the bar back.
  p.feed('dlstatus:1:0.0000:Retrieving file 1 of 3\n');
  assert.equal(p.progress.percent, 10);
  p.feed('pmstatus:dpkg-exec:0.0000:Running dpkg\n');
  assert.equal(p.progress.phase, 'install');
  assert.equal(p.progress.percent, 20);
  assert.equal(p.progress.package, undefined, 'dpkg-exec is not a package');
  assert.equal(p.progress.action, 'Running dpkg');
  p.feed('pmstatus:pve-manager:50.0000:Unpacking pve-manager (amd64)\n');
  assert.equal(p.progress.percent, 60);
  assert.equal(p.progress.package, 'pve-manager');
  assert.equal(p.progress.verb, 'unpack');

  const cached = new AptStatusParser();
  cached.feed('pmstatus:pve-manager:50.0000:Unpacking pve-manager (amd64)\n');
  assert.equal(cached.progress.percent, 50);
  const share = new AptStatusParser({ downloadShare: 0.5 });
  share.feed('dlstatus:1:50.0000:Retrieving file 1 of 1\n');
  assert.equal(share.progress.percent, 25);
  assert.throws(() => new AptStatusParser({ downloadShare: 1 }), /downloadShare/);
});

test('a failed run stops where it was; a last line without a line break still counts', () => {
  const p = new AptStatusParser();
  p.feed('pmstatus:pve-manager:40.0000:Unpacking pve-manager (amd64)\npmerror:pve-manager:40.0000:dependency problems - leaving unconfigured');
  assert.deepEqual(p.progress.errors, [], 'not complete yet');
  const done = p.finish(100);
  assert.deepEqual(done.errors, [{ package: 'pve-manager', message: 'dependency problems - leaving unconfigured' }]);
  assert.equal(done.percent, 40);
});

test('the upgrade and simulation argv; the status descriptor must be one apt uses', () => {
  assert.deepEqual(distUpgradeArgv(), ['apt-get', '-o', 'APT::Status-Fd=3', '-o', 'Dpkg::Use-Pty=0', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', '-y', 'dist-upgrade']);
  assert.equal(STATUS_FD, 3);
  assert.equal(distUpgradeArgv(1)[2], 'APT::Status-Fd=1');
  assert.throws(() => distUpgradeArgv(0), /positive integer/);
  assert.deepEqual(simulateArgv(), ['apt-get', '-s', 'dist-upgrade']);
});

test('execa gives a child a fourth descriptor as a pipe: the status arrives apart from stdout', async () => {
  const script = [
    'const fs = require("fs");',
    'process.stdout.write("Setting up pve-manager (9.1.2) ...\\n");',
    'fs.writeSync(3, "pmstatus:pve-manager:50.0000:Configur");',
    'fs.writeSync(3, "ing pve-manager (amd64)\\npmstatus:pve-manager:100.0000:Installed pve-manager (amd64)\\n");',
  ].join('\n');
  const child = execa(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], reject: false, stripFinalNewline: false, buffer: { stdout: true, stderr: true, fd3: false } });
  const parser = new AptStatusParser();
  const fd3 = child.stdio[3];
  assert.ok(fd3 && 'on' in fd3, 'stdio[3] is a stream');
  (fd3 as NodeJS.ReadableStream).on('data', (chunk: Buffer) => parser.feed(chunk));
  const result = await child;
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, 'Setting up pve-manager (9.1.2) ...\n');
  const p = parser.finish(result.exitCode ?? 1);
  assert.deepEqual(p.installed, ['pve-manager']);
  assert.equal(p.lines, 2);
  assert.deepEqual(p.unknown, []);
});

// SIMULATE
const SIMULATION = `NOTE: This is only a simulation!
      apt-get needs root privileges for real execution.
      Keep also in mind that locking is deactivated,
      so don't depend on the relevance to the real current situation!
Reading package lists...
Building dependency tree...
Reading state information...
Calculating upgrade...
The following packages have been kept back:
  proxmox-backup-client
The following packages will be upgraded:
  libssl3t64 openssh-server pve-manager
Inst libssl3t64 [3.5.1-1] (3.5.1-1+deb13u1 Debian-Security:13/stable-security [amd64])
Inst openssh-server [1:10.0p1-7] (1:10.0p1-7+deb13u1 Debian:13.2/stable, Debian-Security:13/stable-security [amd64]) []
Inst pve-manager [9.1.1] (9.1.2 Proxmox Debian Repository:stable [amd64])
Inst proxmox-kernel-6.17.2-1-pve-signed (6.17.2-1 Proxmox Debian Repository:stable [amd64])
Conf libssl3t64 (3.5.1-1+deb13u1 Debian-Security:13/stable-security [amd64])
Conf openssh-server (1:10.0p1-7+deb13u1 Debian:13.2/stable, Debian-Security:13/stable-security [amd64])
Conf pve-manager (9.1.2 Proxmox Debian Repository:stable [amd64])
Conf proxmox-kernel-6.17.2-1-pve-signed (6.17.2-1 Proxmox Debian Repository:stable [amd64])
3 upgraded, 1 newly installed, 0 to remove and 1 not upgraded.
`;

const REMOVING = `Inst libpve-common-perl [9.0.11] (9.1.0 Debian:13.2/stable [all])
Remv proxmox-ve [9.1.0]
Remv pve-manager [9.1.1]
Remv proxmox-kernel-6.14 [6.14.11-4]
Remv proxmox-kernel-6.14.8-2-pve-signed [6.14.8-2]
Purg pve-container [6.0.13]
Conf libpve-common-perl (9.1.0 Debian:13.2/stable [all])
1 upgraded, 0 newly installed, 5 to remove and 0 not upgraded.
`;

test('the simulated upgrade: Inst, Conf and Remv lines into lists, with versions, releases and the summary', () => {
  const sim = parseSimulation(SIMULATION);
  assert.deepEqual(sim.install.map((i) => i.package), ['libssl3t64', 'openssh-server', 'pve-manager', 'proxmox-kernel-6.17.2-1-pve-signed']);
  assert.deepEqual(sim.install[1], {
    package: 'openssh-server',
    current: '1:10.0p1-7',
    candidate: '1:10.0p1-7+deb13u1',
    releases: ['Debian:13.2/stable', 'Debian-Security:13/stable-security'],
    arch: 'amd64',
  });
  assert.deepEqual(sim.install[3], { package: 'proxmox-kernel-6.17.2-1-pve-signed', candidate: '6.17.2-1', releases: ['Proxmox Debian Repository:stable'], arch: 'amd64' }, 'a new package has no current version');
  assert.deepEqual(sim.configure.map((c) => [c.package, c.candidate, c.broken]), [
    ['libssl3t64', '3.5.1-1+deb13u1', false],
    ['openssh-server', '1:10.0p1-7+deb13u1', false],
    ['pve-manager', '9.1.2', false],
    ['proxmox-kernel-6.17.2-1-pve-signed', '6.17.2-1', false],
  ]);
  assert.deepEqual(sim.remove, []);
  assert.deepEqual(sim.keptBack, ['proxmox-backup-client']);
  assert.deepEqual(sim.summary, { upgraded: 3, newlyInstalled: 1, remove: 0, notUpgraded: 1 });
  assert.equal(simulationRefusal(sim), undefined);
  // apt 3.0's `apt` summary form.
  assert.deepEqual(parseSimulation('Summary:\n  Upgrading: 2, Installing: 0, Removing: 1, Not Upgrading: 0\n').summary, { upgraded: 2, newlyInstalled: 0, remove: 1, notUpgraded: 0 });
  assert.deepEqual(parseSimulation('Conf pve-manager broken\n Depends:libpve-common-perl\n').configure, [{ package: 'pve-manager', broken: true }]);
});

test('refused when a core package would go; a specific kernel image may', () => {
  const sim = parseSimulation(REMOVING);
  assert.deepEqual(sim.remove, [
    { package: 'proxmox-ve', current: '9.1.0', purge: false },
    { package: 'pve-manager', current: '9.1.1', purge: false },
    { package: 'proxmox-kernel-6.14', current: '6.14.11-4', purge: false },
    { package: 'proxmox-kernel-6.14.8-2-pve-signed', current: '6.14.8-2', purge: false },
    { package: 'pve-container', current: '6.0.13', purge: true },
  ]);
  assert.deepEqual(coreRemovals(sim), ['proxmox-ve', 'pve-manager', 'proxmox-kernel-6.14', 'pve-container']);
  assert.match(simulationRefusal(sim)!, /^the upgrade would remove proxmox-ve, pve-manager, proxmox-kernel-6\.14, pve-container: the APT repositories are probably wrong/);
  for (const name of ['proxmox-ve', 'qemu-server', 'pve-cluster', 'proxmox-default-kernel', 'pve-kernel-6.8', 'pve-manager:amd64']) assert.ok(isCorePackage(name), name);
  for (const name of ['proxmox-kernel-6.14.8-2-pve-signed', 'pve-kernel-6.8.12-4-pve', 'libpve-common-perl', 'proxmox-ve-extra']) assert.ok(!isCorePackage(name), name);
  assert.equal(simulationRefusal(parseSimulation('Remv proxmox-kernel-6.14.8-2-pve-signed [6.14.8-2]\n')), undefined);
});

