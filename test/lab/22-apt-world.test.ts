/**
 * The lab's apt world itself (recipe/apt-world.ts, README "The apt world"), on
 * a fresh node: the enterprise repositories fail `apt-get update` with 401 as
 * on a node without a subscription (and serve it once one is active), the
 * no-subscription one works; the simulated dist-upgrade lists version N+1
 * and a new kernel; the real one keeps a changed configuration file and
 * makes the new kernel bootable (proxmox-boot-tool), which a reboot then
 * runs (`uname -r`) unless a kernel is pinned; unattended-upgrades' dry run
 * selects Debian-Security; the removal switch makes the simulation remove
 * proxmox-ve. Ends with a reset, so later files get a fresh node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labOrSkip, sh } from './helpers.ts';
import { KERNEL_N, KERNEL_N1, LAB_SUBSCRIPTION_KEY } from './lab.ts';
import { PROXMOX_N, PROXMOX_N1 } from './recipe/apt-world.ts';
import { parseAptUpdate } from '../../src/apt/apt-update.ts';
import { distUpgradeArgv, parseSimulation, simulateArgv, simulationRefusal } from '../../src/apt/progress.ts';
import { parseKernelList } from '../../steps/upgrade.ts';

const lab = await labOrSkip();

const ENTERPRISE_PVE = 'https://enterprise.proxmox.com/debian/pve';
const ENTERPRISE_CEPH = 'https://enterprise.proxmox.com/debian/ceph-squid';
const NOSUB_PVE = 'http://download.proxmox.com/debian/pve';
const REPOS_API = '/nodes/pve1/apt/repositories';
const installedVersion = async (pkg: string) => (await lab!.exec(['dpkg-query', '-W', '-f', '${Version}', pkg])).stdout;
const kernelList = async () => sh(lab!, 'proxmox-boot-tool kernel list');

if (lab) {
  process.stderr.write(`measured: lab images built now: base ${lab.built.base.toFixed(1)} s, layer ${lab.built.layer.toFixed(1)} s (0 = cached)\n`);
  await lab.reset();

  test('the fresh node: Debian (deb822, non-free-firmware), PVE and Ceph enterprise, version N installed, kernel N running, no subscription', async () => {
    const debian = await sh(lab, 'cat /etc/apt/sources.list.d/debian.sources');
    assert.match(debian, /^URIs: http:\/\/deb\.debian\.org\/debian\/\nSuites: trixie trixie-updates\nComponents: main contrib non-free-firmware$/m);
    assert.match(debian, /^URIs: http:\/\/security\.debian\.org\/debian-security\/\nSuites: trixie-security\nComponents: main contrib non-free-firmware$/m);
    assert.match(await sh(lab, 'cat /etc/apt/sources.list.d/pve-enterprise.sources'), new RegExp(`^URIs: ${ENTERPRISE_PVE}\\nSuites: trixie\\nComponents: pve-enterprise\\nSigned-By: /usr/share/keyrings/proxmox-archive-keyring.gpg$`, 'm'));
    assert.match(await sh(lab, 'cat /etc/apt/sources.list.d/ceph.sources'), new RegExp(`^URIs: ${ENTERPRISE_CEPH}\\nSuites: trixie\\nComponents: enterprise$`, 'm'));
    assert.equal((await lab.exec(['test', '-e', '/etc/apt/sources.list'])).exitCode, 1, 'no one-line sources.list');
    for (const p of PROXMOX_N) assert.equal(await installedVersion(p.name), p.version, p.name);
    assert.doesNotMatch((await lab.exec(['dpkg-query', '-W', '-f', '${Status}', 'unattended-upgrades'])).stdout, /install ok installed/);
    assert.equal(await lab.runningKernel(), KERNEL_N);
    assert.equal(await kernelList(), `Manually selected kernels:\nNone.\n\nAutomatically selected kernels:\n${KERNEL_N}\n`);
    const sub = await sh(lab, 'pvesubscription get');
    assert.match(sub, /^message: There is no subscription key\nserverid: [0-9A-F]{32}\nstatus: notfound\nurl: https:\/\/www\.proxmox\.com\/en\/proxmox-virtual-environment\/pricing\n$/);
    assert.match(await sh(lab, 'cat /etc/vzdump.conf'), /^bwlimit: 100000$/m, 'a conffile the administrator changed');
  });

  test('apt-get update: both enterprise repositories fail with 401 Unauthorized, Debian and Debian-Security work', async () => {
    const t0 = performance.now();
    const r = await lab.exec(['apt-get', 'update'], { timeoutMs: 120_000 });
    process.stderr.write(`measured: apt-get update on the fresh node: ${Math.round(performance.now() - t0)} ms\n`);
    const out = r.stdout + r.stderr;
    assert.equal(r.exitCode, 100, out);
    assert.match(r.stdout, new RegExp(`^Err:\\d+ ${ENTERPRISE_PVE} trixie InRelease\\n  401  Unauthorized \\[IP: 127\\.0\\.2\\.1 443\\]$`, 'm'));
    assert.match(r.stderr, new RegExp(`^E: Failed to fetch ${ENTERPRISE_PVE}/dists/trixie/InRelease  401  Unauthorized \\[IP: 127\\.0\\.2\\.1 443\\]$`, 'm'));
    assert.match(r.stderr, new RegExp(`^E: The repository '${ENTERPRISE_PVE} trixie InRelease' is not signed\\.$`, 'm'));
    for (const ok of ['http://deb.debian.org/debian trixie InRelease', 'http://deb.debian.org/debian trixie-updates InRelease', 'http://security.debian.org/debian-security trixie-security InRelease']) {
      assert.match(r.stdout, new RegExp(`^(Hit|Get):\\d+ ${ok.replace(/\./g, '\\.')}`, 'm'), ok);
    }
    const failures = parseAptUpdate(out);
    assert.deepEqual(failures.map((f) => `${f.uri} ${f.suite} ${f.problem}`).sort(), [`${ENTERPRISE_CEPH} trixie unauthorized`, `${ENTERPRISE_PVE} trixie unauthorized`]);
  });

  test('with an active subscription the enterprise repositories serve the node (apt sends the key from auth.conf.d); without, 401 again', async () => {
    await lab.setSubscription(true);
    try {
      assert.match(await sh(lab, 'pvesubscription get'), new RegExp(`^key: ${LAB_SUBSCRIPTION_KEY}$[\\s\\S]*^status: active$`, 'm'));
      assert.match(await sh(lab, 'cat /etc/apt/auth.conf.d/pve.conf'), new RegExp(`^machine enterprise\\.proxmox\\.com/debian\\n login ${LAB_SUBSCRIPTION_KEY}\\n password [0-9A-F]{32}$`, 'm'));
      const r = await lab.exec(['apt-get', 'update'], { timeoutMs: 120_000 });
      assert.equal(r.exitCode, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^(Get|Hit):\\d+ ${ENTERPRISE_PVE} trixie InRelease`, 'm'));
      assert.match((await sh(lab, 'apt-cache policy proxmox-ve')).replace(/\s+/g, ' '), new RegExp(`Candidate: ${PROXMOX_N1[3]!.version} .*${ENTERPRISE_PVE} trixie/pve-enterprise`));
    } finally {
      await lab.setSubscription(false);
    }
    assert.match(await sh(lab, 'pvesubscription get'), /^status: notfound$/m);
    const r = await lab.exec(['apt-get', 'update'], { timeoutMs: 120_000 });
    assert.equal(r.exitCode, 100);
    assert.match(r.stdout, /401 {2}Unauthorized/);
  });

  test('no-subscription through the repository API: apt-get update clean once the enterprise entries are disabled', async () => {
    for (const handle of ['no-subscription', 'ceph-squid-no-subscription']) await sh(lab, `pvesh set ${REPOS_API} --handle ${handle}`);
    const api = JSON.parse(await sh(lab, `pvesh get ${REPOS_API} --output-format json`)) as { digest: string; files: { path: string; repositories: { URIs: string[] }[] }[] };
    for (const [path, uri] of [['/etc/apt/sources.list.d/pve-enterprise.sources', ENTERPRISE_PVE], ['/etc/apt/sources.list.d/ceph.sources', ENTERPRISE_CEPH]] as const) {
      const file = api.files.find((f) => f.path === path)!;
      const index = file.repositories.findIndex((r) => r.URIs.includes(uri));
      const digest = (JSON.parse(await sh(lab, `pvesh get ${REPOS_API} --output-format json`)) as { digest: string }).digest;
      await sh(lab, `pvesh create ${REPOS_API} --path ${path} --index ${index} --enabled 0 --digest ${digest}`);
    }
    const r = await lab.exec(['apt-get', 'update'], { timeoutMs: 120_000 });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /^(Err|E|W):/m);
    assert.match(r.stdout, new RegExp(`^(Get|Hit):\\d+ ${NOSUB_PVE} trixie InRelease`, 'm'));
    assert.match(r.stdout, /^(Get|Hit):\d+ http:\/\/download\.proxmox\.com\/debian\/ceph-squid trixie InRelease/m);
    // the Release file says what Proxmox's says
    const release = await sh(lab, 'apt-cache policy');
    assert.match(release, /o=Proxmox,a=stable,n=trixie,l=Proxmox Debian Repository,c=pve-no-subscription/);
    assert.match(release, /o=Debian,a=stable-security,n=trixie-security,l=Debian-Security,c=main/);
  });

  test('apt-get -s dist-upgrade: N+1 of every Proxmox package and the new kernel, the security update, nothing removed', async () => {
    const r = await lab.exec(simulateArgv(), { timeoutMs: 120_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    const sim = parseSimulation(r.stdout);
    const byName = new Map(sim.install.map((p) => [p.package, p]));
    for (const [i, n] of PROXMOX_N.entries()) {
      const next = PROXMOX_N1[i]!;
      if (next.name !== n.name) {
        assert.equal(byName.get(next.name)?.current, undefined, `${next.name} is new`);
        assert.equal(byName.get(next.name)?.candidate, next.version);
      } else {
        assert.equal(byName.get(n.name)?.current, n.version, n.name);
        assert.equal(byName.get(n.name)?.candidate, next.version, n.name);
      }
    }
    assert.match(r.stdout, new RegExp(`^Inst proxmox-kernel-${KERNEL_N1.replace(/\./g, '\\.')}-signed \\(6\\.14\\.11-1 Proxmox Debian Repository:stable \\[amd64\\]\\)$`, 'm'));
    assert.match(byName.get('less')?.candidate ?? '', /\+deb13u1$/);
    assert.deepEqual(sim.remove, []);
    assert.equal(simulationRefusal(sim), undefined);
  });

  test('the removal switch: Debian unstable in the sources makes the simulation remove proxmox-ve; off again, it does not', async () => {
    await lab.removalRepository(true);
    try {
      assert.equal((await lab.exec(['apt-get', 'update'], { timeoutMs: 120_000 })).exitCode, 0);
      const r = await lab.exec(simulateArgv(), { timeoutMs: 120_000 });
      assert.match(r.stdout, /^Remv proxmox-ve \[9\.1\.0\]$/m);
      assert.match(r.stdout, /^Inst less \[668-1\] \(685-1 Debian:unstable \[amd64\]\)$/m);
      assert.match(simulationRefusal(parseSimulation(r.stdout)) ?? '', /would remove proxmox-ve/);
    } finally {
      await lab.removalRepository(false);
    }
    await sh(lab, 'apt-get update -q');
    assert.doesNotMatch((await lab.exec(simulateArgv())).stdout, /^Remv /m);
  });

  test('unattended-upgrades installs from the offline archive; its dry run selects the Debian-Security origin only', async () => {
    const inst = await lab.exec(['apt-get', 'install', '-y', 'unattended-upgrades'], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 180_000 });
    assert.equal(inst.exitCode, 0, inst.stdout + inst.stderr);
    const r = await lab.exec(['unattended-upgrade', '--dry-run', '--debug'], { timeoutMs: 120_000 });
    const out = r.stdout + r.stderr;
    assert.equal(r.exitCode, 0, out);
    assert.match(out, /Allowed origins are: .*origin=Debian,codename=trixie-security,label=Debian-Security/);
    assert.match(out, /^Checking: less=668-1\+deb13u1 \(\[<Origin component:'main' archive:'stable-security' origin:'Debian' label:'Debian-Security' site:'security\.debian\.org' isTrusted:True>\]\)$/m);
    assert.match(out, /^pkgs that look like they should be upgraded: less$/m);
    assert.doesNotMatch(out, /pkgs that look like they should be upgraded: .*(proxmox|pve)/);
    assert.equal(await installedVersion('less'), '668-1', 'a dry run changes nothing');
  });

  test('the real dist-upgrade (apt status on fd 3, slowed down): the changed conffile kept, N+1 installed, the new kernel bootable, still running N', async () => {
    // slowed as a test that watches the progress would: 1 MiB of kernel at 512 KiB/s, a 1 s postinst
    lab.slowUpgrade({ bytesPerSecond: 512 * 1024, kernelPostinstSeconds: 1 });
    const t0 = performance.now();
    let r;
    try {
      r = await lab.exec(['sh', '-c', '"$@" 3>/tmp/apt-status', 'sh', ...distUpgradeArgv()], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 300_000 });
    } finally {
      lab.slowUpgrade();
    }
    const ms = Math.round(performance.now() - t0);
    process.stderr.write(`measured: the lab's dist-upgrade (5 packages, slowed: 512 KiB/s, 1 s kernel postinst): ${ms} ms\n`);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.ok(ms >= 2500, `the slowed upgrade took ${ms} ms`);
    const status = await sh(lab, 'cat /tmp/apt-status');
    const downloadPercents = new Set([...status.matchAll(/^dlstatus:\d+:([\d.]+):/gm)].map((m) => m[1]));
    assert.ok(downloadPercents.size >= 3, `download progress moves: ${[...downloadPercents].join(' ')}`);
    assert.match(status, /^pmconffile:\/etc\/vzdump\.conf:[\d.]+:'\/etc\/vzdump\.conf' '\/etc\/vzdump\.conf\.dpkg-new' 1 1 ?$/m);
    assert.match(status, new RegExp(`^pmstatus:proxmox-kernel-${KERNEL_N1.replace(/\./g, '\\.')}-signed:[\\d.]+:Installed `, 'm'));
    assert.match(r.stdout + r.stderr, /Configuration file '\/etc\/vzdump\.conf'\n ==> Modified \(by you or by a script\) since installation\.\n ==> Package distributor has shipped an updated version\.\n ==> Keeping old config file as default\./);
    assert.match(await sh(lab, 'cat /etc/vzdump.conf'), /^bwlimit: 100000$/m);
    assert.match(await sh(lab, 'cat /etc/vzdump.conf.dpkg-dist'), /^#zstd: N$/m);
    for (const p of PROXMOX_N1) assert.equal(await installedVersion(p.name), p.version, p.name);
    assert.equal(await kernelList(), `Manually selected kernels:\nNone.\n\nAutomatically selected kernels:\n${KERNEL_N}\n${KERNEL_N1}\n`);
    assert.equal(parseKernelList(await kernelList()).newest, KERNEL_N1);
    assert.equal(await lab.runningKernel(), KERNEL_N, 'the running kernel changes only with a reboot');
    // the kernel's postinst ran /etc/kernel/postinst.d, where unattended-upgrades' hook asks for a reboot
    assert.equal((await lab.exec(['test', '-e', '/run/reboot-required'])).exitCode, 0);
    assert.equal((await lab.exec(['dpkg', '--audit'])).stdout, '');
    assert.doesNotMatch((await lab.exec(simulateArgv())).stdout, /^Inst /m, 'nothing left to upgrade');
  });

  test('a reboot runs the newest kernel; a pinned kernel wins (kernel list says so); a next-boot pin holds for one boot', async () => {
    await lab.reboot();
    assert.equal(await lab.runningKernel(), KERNEL_N1, 'uname -r after the reboot');
    assert.equal(await sh(lab, 'uname -s'), 'Linux\n', 'other uname options are the real ones');
    await sh(lab, `proxmox-boot-tool kernel pin ${KERNEL_N}`);
    assert.equal(await kernelList(), `Manually selected kernels:\nNone.\n\nAutomatically selected kernels:\n${KERNEL_N}\n${KERNEL_N1}\n\nPinned kernel:\n${KERNEL_N}\n`);
    assert.equal(parseKernelList(await kernelList()).pinned, KERNEL_N);
    await lab.reboot();
    assert.equal(await lab.runningKernel(), KERNEL_N, 'the pinned kernel runs');
    await sh(lab, 'proxmox-boot-tool kernel unpin');
    await sh(lab, `proxmox-boot-tool kernel pin ${KERNEL_N} --next-boot`);
    assert.match(await kernelList(), new RegExp(`\\nKernel pinned on next-boot:\\n${KERNEL_N}\\n$`));
    await lab.reboot();
    assert.equal(await lab.runningKernel(), KERNEL_N, 'the next-boot pin for this boot');
    assert.doesNotMatch(await kernelList(), /next-boot/, 'and consumed');
    await lab.reboot();
    assert.equal(await lab.runningKernel(), KERNEL_N1);
    const unknown = await lab.exec(['proxmox-boot-tool', 'kernel', 'pin', '9.9.9-9-pve']);
    assert.notEqual(unknown.exitCode, 0);
  });

  test('the services the postboot check expects are up after the reboots; the guest list the upgrade reads answers', async () => {
    for (const unit of ['pve-cluster.service', 'pvedaemon.service', 'pveproxy.service', 'pve-firewall.service', 'pve-lab-mirror.service']) {
      assert.equal((await lab.exec(['systemctl', 'is-active', unit])).stdout.trim(), 'active', unit);
    }
    assert.deepEqual(JSON.parse(await sh(lab, 'pvesh get /cluster/resources --type vm --output-format json')), []);
  });

  test('reset: a fresh node again (kernel N, version N, enterprise sources)', async () => {
    await lab.reset();
    assert.equal(await lab.runningKernel(), KERNEL_N);
    assert.equal(await installedVersion('proxmox-ve'), PROXMOX_N[3]!.version);
    assert.equal((await lab.exec(['test', '-e', '/etc/apt/sources.list.d/proxmox.sources'])).exitCode, 1);
  });
}
