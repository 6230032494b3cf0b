/**
 * The auto-updates step on fakes: what it installs and writes on a fresh
 * node, Debian's 20auto-upgrades kept when right and rewritten when not, the
 * Proxmox origin by choice, the admin's mail, refusals when a later file
 * would turn reboots on or the daily jobs off, and verify reading apt-config
 * and unattended-upgrade's dry run. Real origins and Release files are the
 * lab's business.
 *
 * The fake node answers like the real tools, derived, not captured:
 *   apt-config dump      merges the files of /etc/apt/apt.conf.d in name order as apt does for
 *                        the shapes used here (`Key "value";`, `Scope { "item"; };`, `#clear
 *                        Key;`, // comments), printed in Configuration::Dump's format
 *                        (`Key "value";`, list items as `Key:: "item";`)
 *   unattended-upgrade   --dry-run --debug prints its log messages as unattended-upgrade's
 *                        _setup_logging does with --debug (no prefix), the origins joined with
 *                        ", " and ${distro_codename} replaced; the legacy Allowed-Origins list
 *                        converted to "o=ID,a=CODENAME" (get_allowed_origins_legacy)
 *   50unattended-upgrades  Debian's file (unattended-upgrades data/50unattended-upgrades.Debian),
 *                        its comments shortened, as the package installs it
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange } from '../../src/engine/change.ts';
import { detectedDefault, validateAnswer } from '../../src/engine/questions.ts';
import {
  aptConfStatements,
  aptReadsFile,
  compareOrigins,
  DEBIAN_PERIODIC,
  DROPIN,
  normaliseOrigin,
  parseAptConfigDump,
  parseDryRun,
  periodicFileRight,
  PERIODIC_FILE,
  renderDropIn,
} from '../../src/apt/unattended.ts';
import { autoUpdatesStep, type AutoUpdatesAnswers } from '../../steps/auto-updates.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { scriptedExec, type ScriptedExec } from '../fixtures/scripted-exec.ts';
import { applyPlan, failed, runStep, stepContext } from '../fixtures/step-run.ts';
import { testNode } from '../fixtures/node.ts';

const CONF = '/etc/apt/apt.conf.d';
const DEBIAN_50 = `// Automatically upgrade packages from these (origin:archive) pairs
Unattended-Upgrade::Origins-Pattern {
        // Codename based matching:
        "origin=Debian,codename=\${distro_codename},label=Debian";
        "origin=Debian,codename=\${distro_codename},label=Debian-Security";
        "origin=Debian,codename=\${distro_codename}-security,label=Debian-Security";
};

// Python regular expressions, matching packages to exclude from upgrading
Unattended-Upgrade::Package-Blacklist {
    // The following matches all packages starting with linux-
//  "linux-";
};

// Automatically reboot *WITHOUT CONFIRMATION* if
//  the file /var/run/reboot-required is found after the upgrade
//Unattended-Upgrade::Automatic-Reboot "false";
`;

/** apt's own files on a fresh Debian 13 / PVE 9 node (the apt package's; no unattended-upgrades yet). */
const APT_BASE = {
  [`${CONF}/01autoremove`]: 'APT\n{\n  NeverAutoRemove\n  {\n\t"^firmware-linux.*";\n  };\n};\n',
  [`${CONF}/70debconf`]: '// Pre-configure all packages with debconf before they are installed.\nDPkg::Pre-Install-Pkgs {"/usr/sbin/dpkg-preconfigure --apt || true";};\n',
};

interface FakeState {
  installed: boolean;
  timers: Record<string, { enabled: boolean; active: boolean }>;
  lockHeld: boolean;
}

/** apt's merge of apt.conf.d for the shapes these files use, in Configuration::Dump's format. */
async function fakeAptConfigDump(files: MemoryFiles, roots: string[]): Promise<string> {
  const scalars = new Map<string, string>();
  const lists = new Map<string, string[]>();
  for (const name of await files.list(CONF)) {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) continue;
    const text = (await files.read(`${CONF}/${name}`)) ?? '';
    let list: string | undefined;
    let depth = 0;
    for (const raw of text.split('\n')) {
      const line = raw.replace(/\/\/.*$/, '').trim();
      let m: RegExpExecArray | null;
      if (!line) continue;
      if ((m = /^#clear (\S+);$/.exec(line))) {
        lists.delete(m[1]!);
        for (const k of [...scalars.keys()]) if (k === m[1] || k.startsWith(`${m[1]}::`)) scalars.delete(k);
      } else if ((m = /^(\S+) \{$/.exec(line))) {
        depth++;
        list = depth === 1 ? m[1]! : undefined;
      } else if (/^\};$/.test(line)) {
        depth--;
        list = undefined;
      } else if (list && (m = /^"(.*)";$/.exec(line))) {
        lists.set(list, [...(lists.get(list) ?? []), m[1]!]);
      } else if (depth === 0 && (m = /^(\S+) "(.*)";$/.exec(line))) {
        scalars.set(m[1]!, m[2]!);
      }
    }
  }
  const out: string[] = [];
  for (const [k, v] of scalars) if (roots.some((r) => k.startsWith(`${r}::`))) out.push(`${k} "${v}";`);
  for (const [k, items] of lists) {
    if (!roots.some((r) => k.startsWith(`${r}::`))) continue;
    out.push(`${k} "";`, ...items.map((i) => `${k}:: "${i}";`));
  }
  return `${out.join('\n')}\n`;
}

function fakeDryRun(config: string, codename: string, state: FakeState): { stdout: string; exitCode?: number } {
  if (state.lockHeld) return { stdout: 'Starting unattended upgrades script\nLock could not be acquired (another package manager running?)\nCache lock can not be acquired, exiting\n', exitCode: 1 };
  const parsed = parseAptConfigDump(config);
  const legacy = (parsed.lists.get('Unattended-Upgrade::Allowed-Origins') ?? []).map((s) => {
    const [id, name] = s.split(':');
    return `o=${id},a=${name}`;
  });
  const patterns = [...legacy, ...(parsed.lists.get('Unattended-Upgrade::Origins-Pattern') ?? [])].map((p) => p.replaceAll('${distro_codename}', codename).replaceAll('${distro_id}', 'Debian'));
  return {
    stdout: [
      'Running on the development release? no',
      'Starting unattended upgrades script',
      `Allowed origins are: ${patterns.join(', ')}`,
      'Initial blacklist: ',
      'Initial whitelist (not strict): ',
      "Marking not allowed <apt_pkg.PackageFile object: filename:'/var/lib/apt/lists/download.proxmox.com_debian_pve_dists_trixie_pve-no-subscription_binary-amd64_Packages'  a=stable,c=pve-no-subscription,v=,o=Proxmox,l=Proxmox Debian Repository arch='amd64' site='download.proxmox.com' IndexType='Debian Package Index' Size=1431720 ID:3> with -32768 pin",
      'Checking: libssl3t64 ([<Origin component:\'main\' archive:\'stable-security\' origin:\'Debian\' label:\'Debian-Security\' site:\'security.debian.org\' isTrusted:True>])',
      'pkgs that look like they should be upgraded: libssl3t64',
      'Option --dry-run given, *not* performing real actions',
      'Packages that will be upgraded: libssl3t64 openssl',
      'All upgrades installed',
      '',
    ].join('\n'),
  };
}

class FakeNode {
  readonly files: MemoryFiles;
  readonly exec: ScriptedExec;
  readonly state: FakeState;
  node = testNode;

  constructor(o: { installed?: boolean; files?: Record<string, string>; timers?: FakeState['timers']; mailer?: boolean } = {}) {
    this.state = {
      installed: o.installed ?? false,
      timers: o.timers ?? { 'apt-daily.timer': { enabled: true, active: true }, 'apt-daily-upgrade.timer': { enabled: true, active: true } },
      lockHeld: false,
    };
    this.files = new MemoryFiles({ ...APT_BASE, ...(o.installed ? { [`${CONF}/50unattended-upgrades`]: DEBIAN_50, [PERIODIC_FILE]: DEBIAN_PERIODIC } : {}), ...(o.mailer === false ? {} : { '/usr/sbin/sendmail': '' }), ...o.files });
    const s = this.state;
    this.exec = scriptedExec([
      [['dpkg-query', '-W', '-f', '${Status}', 'unattended-upgrades'], () => (s.installed ? { stdout: 'install ok installed' } : { stdout: '', stderr: 'dpkg-query: no packages found matching unattended-upgrades', exitCode: 1 })],
      [
        ['apt-get', 'install', '-y', 'unattended-upgrades'],
        async () => {
          s.installed = true;
          // The postinst: Debian's 50unattended-upgrades, and 20auto-upgrades through ucf (debconf's default: enabled).
          await this.files.write(`${CONF}/50unattended-upgrades`, DEBIAN_50);
          if ((await this.files.read(PERIODIC_FILE)) === null) await this.files.write(PERIODIC_FILE, DEBIAN_PERIODIC);
          return { stdout: 'Setting up unattended-upgrades (2.12) ...\n' };
        },
      ],
      [(argv) => argv[0] === 'systemctl' && argv[1] === 'is-enabled', (argv) => ({ stdout: s.timers[argv[2]!]?.enabled ? 'enabled\n' : 'disabled\n', exitCode: s.timers[argv[2]!]?.enabled ? 0 : 1 })],
      [(argv) => argv[0] === 'systemctl' && argv[1] === 'is-active', (argv) => ({ stdout: s.timers[argv[2]!]?.active ? 'active\n' : 'inactive\n', exitCode: s.timers[argv[2]!]?.active ? 0 : 3 })],
      [
        (argv) => argv[0] === 'systemctl' && (argv[1] === 'enable' || argv[1] === 'start'),
        (argv) => {
          const t = s.timers[argv[2]!]!;
          if (argv[1] === 'enable') t.enabled = true;
          else t.active = true;
          return {};
        },
      ],
      [['apt-config', 'dump', 'Unattended-Upgrade', 'APT::Periodic'], async () => ({ stdout: await fakeAptConfigDump(this.files, ['Unattended-Upgrade', 'APT::Periodic']) })],
      [
        ['unattended-upgrade', '--dry-run', '--debug'],
        async () => (s.installed ? fakeDryRun(await fakeAptConfigDump(this.files, ['Unattended-Upgrade']), 'trixie', s) : { notFound: true }),
      ],
    ]);
  }

  text(path: string) {
    return this.files.read(path);
  }
}

const no: AutoUpdatesAnswers = { proxmox: false };
const yes: AutoUpdatesAnswers = { proxmox: true };
const admin = (email: string) => ({ 'admin-account': { name: 'alice', role: 'Administrator', email, comment: '' } });

async function planOn(f: FakeNode, a: AutoUpdatesAnswers, answersOf: Record<string, object> = {}) {
  const ctx = stepContext({ exec: f.exec, files: f.files, node: f.node, answersOf });
  const facts = await autoUpdatesStep.probe(ctx);
  return { ctx, facts, plan: autoUpdatesStep.plan(facts, a, ctx.node), preflight: autoUpdatesStep.preflight!(facts, a, ctx.node) };
}

test('a fresh PVE 9 node: install, our drop-in, Debian\'s 20auto-upgrades; the dry run lists exactly the security origins; a second run plans nothing', async () => {
  const f = new FakeNode();
  const before = await planOn(f, no, admin('alice@example.com'));
  assert.deepEqual(failed(before.preflight), []);
  assert.ok(failed(await autoUpdatesStep.verify(before.ctx, no)).includes('unattended-upgrades is installed'));

  const run = await runStep(autoUpdatesStep, no, { exec: f.exec, files: f.files, node: f.node, answersOf: admin('alice@example.com') });
  assert.deepEqual(run.plan.map(describeChange), ['run apt-get install -y unattended-upgrades', `create ${DROPIN}`, `create ${PERIODIC_FILE}`]);
  assert.deepEqual(failed(run.checks), []);
  assert.deepEqual(run.replan, [], 'a second run plans nothing');
  f.exec.assertNoUnexpected();

  const dropIn = (await f.text(DROPIN))!;
  assert.match(dropIn, /^#clear Unattended-Upgrade::Origins-Pattern;$/m);
  assert.match(dropIn, /^Unattended-Upgrade::Automatic-Reboot "false";$/m);
  assert.match(dropIn, /^Unattended-Upgrade::Mail "alice@example\.com";$/m);
  assert.match(dropIn, /^Unattended-Upgrade::Remove-Unused-Dependencies "true";$/m);
  assert.doesNotMatch(dropIn, /origin=Proxmox/);
  // Every setting has its reason on the line before it.
  const lines = dropIn.split('\n');
  lines.forEach((line, i) => {
    if (/^(Unattended-Upgrade::\S+ "|#clear|\s+")/.test(line) && !/^Unattended-Upgrade::MailReport/.test(line)) assert.match(lines[i - 1]!, /^\s*\/\//, `no reason above: ${line}`);
  });
  assert.equal(await f.text(PERIODIC_FILE), DEBIAN_PERIODIC, "Debian's own two lines");

  const dump = parseAptConfigDump((await f.exec.run(['apt-config', 'dump', 'Unattended-Upgrade', 'APT::Periodic'])).stdout);
  assert.deepEqual(dump.lists.get('Unattended-Upgrade::Origins-Pattern'), [
    'origin=Debian,codename=${distro_codename}-security,label=Debian-Security',
    'origin=Debian,codename=${distro_codename},label=Debian-Security',
  ], "Debian's label=Debian is cleared");
  const dry = parseDryRun((await f.exec.run(['unattended-upgrade', '--dry-run', '--debug'])).stdout);
  assert.deepEqual(dry.allowedOrigins, ['origin=Debian,codename=trixie-security,label=Debian-Security', 'origin=Debian,codename=trixie,label=Debian-Security']);
  assert.deepEqual(dry.packages, ['libssl3t64', 'openssl']);
});

test("Debian's defaults alone fail verify: label=Debian is allowed too; installed but unconfigured plans only our drop-in", async () => {
  const f = new FakeNode({ installed: true });
  const { ctx, plan } = await planOn(f, no);
  assert.deepEqual(plan.map(describeChange), [`create ${DROPIN}`], "Debian's 20auto-upgrades is right and kept");
  const problems = failed(await autoUpdatesStep.verify(ctx, no));
  assert.ok(problems.includes(`${DROPIN} holds what the baseline intends (missing)`));
  assert.ok(problems.includes('unattended-upgrade --dry-run takes updates from exactly the wanted origins (also allowed: origin=Debian,codename=trixie,label=Debian)'), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('unused dependencies are removed')));
  await applyPlan(plan, f);
  assert.deepEqual(failed(await autoUpdatesStep.verify(ctx, no)), []);
});

test("Proxmox's origin when chosen; changing the answer edits the drop-in; the question is asked only on Proxmox VE", async () => {
  const f = new FakeNode({ installed: true });
  const run = await runStep(autoUpdatesStep, yes, { exec: f.exec, files: f.files, node: f.node });
  assert.deepEqual(failed(run.checks), []);
  assert.match((await f.text(DROPIN))!, /^ {2}"origin=Proxmox,codename=\$\{distro_codename\}";$/m);
  const dry = parseDryRun((await f.exec.run(['unattended-upgrade', '--dry-run', '--debug'])).stdout);
  assert.ok(dry.allowedOrigins!.includes('origin=Proxmox,codename=trixie'));
  // Verified against "no", the Proxmox origin is one too many.
  const ctx = stepContext({ exec: f.exec, files: f.files, node: f.node });
  assert.ok(failed(await autoUpdatesStep.verify(ctx, no)).includes('unattended-upgrade --dry-run takes updates from exactly the wanted origins (also allowed: origin=Proxmox,codename=trixie)'));
  const back = await planOn(f, no);
  assert.deepEqual(back.plan.map(describeChange), [`edit ${DROPIN}`]);

  const question = autoUpdatesStep.questions!.find((q) => q.id === 'proxmox')!;
  assert.equal(detectedDefault(question, back.facts), false);
  assert.equal(question.when!({}, back.facts), true);
  assert.equal(question.when!({}, { ...back.facts, proxmox: false }), false);
  assert.deepEqual(await validateAnswer(question, 'yes'), { ok: true, value: true });
});

test('mail: none without an admin address; none, and said why, when the node has no mail program', async () => {
  const none = await planOn(new FakeNode({ installed: true }), no);
  const text = (none.plan[0] as { after: string }).after;
  assert.doesNotMatch(text, /Unattended-Upgrade::Mail/);
  assert.match(text, /No mail: no admin address is known/);

  const noMailer = await planOn(new FakeNode({ installed: true, mailer: false }), no, admin('alice@example.com'));
  const change = noMailer.plan[0] as { after: string; reason: string };
  assert.doesNotMatch(change.after, /Unattended-Upgrade::Mail/);
  assert.match(change.reason, /no mail: neither \/usr\/sbin\/sendmail nor \/usr\/bin\/mail is installed/);

  // The address changed in the admin account step: the drop-in follows, verify names the mail.
  const f = new FakeNode({ installed: true });
  await runStep(autoUpdatesStep, no, { exec: f.exec, files: f.files, node: f.node, answersOf: admin('alice@example.com') });
  const moved = await planOn(f, no, admin('ops@example.com'));
  assert.deepEqual(moved.plan.map(describeChange), [`edit ${DROPIN}`]);
  assert.ok(failed(await autoUpdatesStep.verify(moved.ctx, no)).includes('reports are mailed to ops@example.com (Unattended-Upgrade::Mail is "alice@example.com")'));
});

test("20auto-upgrades that switches a job off is rewritten with Debian's lines; a later file doing so is refused", async () => {
  const off = new FakeNode({ installed: true, files: { [PERIODIC_FILE]: 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "0";\n' } });
  const { ctx, plan } = await planOn(off, no);
  assert.deepEqual(plan.map(describeChange), [`create ${DROPIN}`, `edit ${PERIODIC_FILE}`]);
  assert.ok(failed(await autoUpdatesStep.verify(ctx, no)).includes('APT::Periodic::Unattended-Upgrade runs daily ("0")'));
  await applyPlan(plan, off);
  assert.deepEqual(failed(await autoUpdatesStep.verify(ctx, no)), []);

  const later = new FakeNode({ installed: true, files: { [`${CONF}/99local`]: '// ours\nAPT::Periodic::Unattended-Upgrade "0";\n' } });
  const refused = await planOn(later, no);
  assert.deepEqual(failed(refused.preflight), [
    `no file read after ${PERIODIC_FILE} turns the daily jobs off (${CONF}/99local sets APT::Periodic::Unattended-Upgrade "0": change or remove it first)`,
  ]);
  // A file apt never reads (a dpkg leftover) is not held against the node.
  const leftover = await planOn(new FakeNode({ installed: true, files: { [`${CONF}/99local.dpkg-old`]: 'APT::Periodic::Unattended-Upgrade "0";\n' } }), no);
  assert.deepEqual(failed(leftover.preflight), []);
});

test('a later file turning automatic reboots on is refused before anything changes, and verify sees it in apt-config', async () => {
  const f = new FakeNode({ installed: true, files: { [`${CONF}/99reboot`]: 'Unattended-Upgrade::Automatic-Reboot "true";\n' } });
  const { ctx, preflight } = await planOn(f, no);
  assert.deepEqual(failed(preflight), [
    `no file read after ${DROPIN} turns automatic reboots on (${CONF}/99reboot sets Unattended-Upgrade::Automatic-Reboot "true": a hypervisor must not reboot on its own; change or remove it first)`,
  ]);
  assert.ok(failed(await autoUpdatesStep.verify(ctx, no)).includes('no automatic reboot (Unattended-Upgrade::Automatic-Reboot) (set to "true")'));
  // One read before ours is overridden by ours: no refusal, and once applied no reboot.
  const early = new FakeNode({ installed: true, files: { [`${CONF}/10reboot`]: 'Unattended-Upgrade::Automatic-Reboot "yes";\n' } });
  const e = await planOn(early, no);
  assert.deepEqual(failed(e.preflight), []);
  await applyPlan(e.plan, early);
  assert.deepEqual(failed(await autoUpdatesStep.verify(e.ctx, no)), []);
});

test('timers off are enabled and started; a dry run that cannot take the lock fails verify, saying so', async () => {
  const f = new FakeNode({ installed: true, timers: { 'apt-daily.timer': { enabled: true, active: true }, 'apt-daily-upgrade.timer': { enabled: false, active: false } } });
  const { ctx, plan } = await planOn(f, no);
  assert.deepEqual(plan.map(describeChange), [`create ${DROPIN}`, 'enable apt-daily-upgrade.timer', 'start apt-daily-upgrade.timer']);
  await applyPlan(plan, f);
  assert.deepEqual(failed(await autoUpdatesStep.verify(ctx, no)), []);
  f.state.lockHeld = true;
  assert.deepEqual(failed(await autoUpdatesStep.verify(ctx, no)), ['unattended-upgrade --dry-run takes updates from exactly the wanted origins (Lock could not be acquired (another package manager running?))']);
});

test('the document states the policy and the settings apt uses', async () => {
  const f = new FakeNode({ installed: true });
  await runStep(autoUpdatesStep, yes, { exec: f.exec, files: f.files, node: f.node, answersOf: admin('alice@example.com') });
  const ctx = stepContext({ exec: f.exec, files: f.files, node: f.node, answersOf: admin('alice@example.com') });
  const doc = (await autoUpdatesStep.document!(ctx, { proxmox: true }))!;
  const text = JSON.stringify(doc);
  assert.equal(doc.heading, 'Unattended security updates');
  assert.match(text, /Proxmox VE point releases always go through the supervised upgrade/);
  assert.match(text, /never reboots on its own/);
  assert.match(text, /origin=Proxmox,codename=\$\{distro_codename\}/);
  assert.match(text, /alice@example\.com/);
  const fresh = await autoUpdatesStep.document!(stepContext({ exec: new FakeNode().exec, files: new FakeNode().files }), {});
  assert.match(JSON.stringify(fresh), /unattended-upgrades is not installed/);
});

test('apt.conf reading: statements in scopes and after comments, files apt skips, origins compared as unattended-upgrade matches them', () => {
  assert.deepEqual(aptConfStatements('APT {\n  Periodic {\n    Unattended-Upgrade "1"; // daily\n  };\n};\n/* APT::Periodic::Enable "0"; */\n# APT::Periodic::Enable "0";\nAPT::Periodic::Enable "1";\n'), [
    ['APT::Periodic::Unattended-Upgrade', '1'],
    ['APT::Periodic::Enable', '1'],
  ]);
  assert.deepEqual(aptConfStatements(renderDropIn({ proxmox: true, mail: 'a@b.c' })), [
    ['Unattended-Upgrade::Automatic-Reboot', 'false'],
    ['Unattended-Upgrade::Mail', 'a@b.c'],
    ['Unattended-Upgrade::MailReport', 'on-change'],
    ['Unattended-Upgrade::Remove-Unused-Dependencies', 'true'],
  ]);
  assert.throws(() => renderDropIn({ proxmox: false, mail: 'a"b@c.d' }), /double quote/);
  assert.equal(aptReadsFile('50unattended-upgrades'), true);
  for (const name of ['50unattended-upgrades.ucf-dist', '20auto-upgrades.dpkg-old', 'x.disabled', 'x~', 'has space']) assert.equal(aptReadsFile(name), false, name);
  assert.equal(periodicFileRight('APT::Periodic::Update-Package-Lists "always";\nAPT::Periodic::Unattended-Upgrade "1";\n'), true);
  assert.equal(periodicFileRight('APT::Periodic::Update-Package-Lists "7";\nAPT::Periodic::Unattended-Upgrade "1";\n'), false, 'weekly is not the baseline');
  assert.equal(periodicFileRight(null), false);
  assert.equal(normaliseOrigin('o=Debian, n=trixie,l=Debian-Security'), normaliseOrigin('origin=Debian,codename=trixie,label=Debian-Security'));
  assert.deepEqual(compareOrigins(['o=Debian,n=trixie-security,l=Debian-Security', 'o=Debian,a=stable'], ['origin=Debian,codename=trixie-security,label=Debian-Security', 'origin=Proxmox,codename=trixie']), {
    missing: ['origin=Proxmox,codename=trixie'],
    extra: ['o=Debian,a=stable'],
  });
  // apt-config dump quotes "=" in a tag as %3d.
  assert.equal(parseAptConfigDump('Weird::Key%3dx "v";\n').scalars.get('Weird::Key=x'), 'v');
  assert.equal(parseDryRun('', 'Traceback (most recent call last):\n').problem, 'Traceback (most recent call last):');
});
