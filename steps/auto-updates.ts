/**
 * Security updates arrive on their own; Proxmox VE releases stay supervised.
 *
 *   install   unattended-upgrades from the node's own repositories (apt-listchanges is not
 *             needed: the report goes by mail)
 *   drop-in   /etc/apt/apt.conf.d/52pve-baseline-unattended (src/apt/unattended.ts): Debian's
 *             security origins, Proxmox's when the operator chooses, Automatic-Reboot "false",
 *             Mail to the admin's address when one is known and the node can send mail,
 *             Remove-Unused-Dependencies; each line with its reason
 *   periodic  /etc/apt/apt.conf.d/20auto-upgrades switches the daily jobs on; Debian's own file
 *             is kept when it already does, otherwise written with Debian's own two lines
 *   timers    apt-daily.timer and apt-daily-upgrade.timer run those jobs (apt ships them
 *             enabled); enabled and started when they are not
 *   verify    `apt-config dump` for the merged settings (no reboot, daily jobs, the mail), and
 *             `unattended-upgrade --dry-run --debug`, whose "Allowed origins are:" line must
 *             list exactly the wanted origins
 *
 * Why Proxmox point releases are left out even when Proxmox's origin is allowed: a release
 * is meant to be taken whole (`apt-get dist-upgrade`, as pveupgrade runs it), and
 * unattended-upgrades takes it in part: it skips a package whose configuration file was
 * changed here (it would prompt) and whatever depends on that, and installs the rest, new
 * dependencies included. In the lab (test/lab/89-updates-unattended.test.ts) it installs
 * the new kernel and proxmox-default-kernel but holds back pve-manager (a changed
 * /etc/vzdump.conf) and with it proxmox-ve. Those go through the supervised upgrade.
 */
import type { Change } from '../src/engine/change.ts';
import type { Check, Step, StepContext } from '../src/engine/step.ts';
import { ask } from '../src/engine/questions.ts';
import { bullets, code, paragraph, table, type DocumentSection } from '../src/report/section.ts';
import {
  APT_CONF_DIR,
  aptBool,
  compareOrigins,
  DEBIAN_PERIODIC,
  DROPIN,
  parseAptConfigDump,
  parseDryRun,
  periodicDaily,
  periodicFileRight,
  periodicOverrides,
  PERIODIC_FILE,
  PERIODIC_KEYS,
  rebootOverrides,
  renderDropIn,
  substituteCodename,
  wantedPatterns,
  type AptConfig,
  type DryRun,
  type UnattendedSettings,
} from '../src/apt/unattended.ts';
import { adminAccountStep } from './admin-account.ts';

export type AutoUpdatesAnswers = {
  /** Also take updates from Proxmox's repositories unattended. */
  proxmox: boolean;
};

export interface AutoUpdatesFacts {
  installed: boolean;
  dropIn: string | null;
  periodicFile: string | null;
  /** The other files of /etc/apt/apt.conf.d, for settings read after ours. */
  otherConf: { name: string; text: string }[];
  /** `apt-config dump Unattended-Upgrade APT::Periodic`, or why it could not be read. */
  config: AptConfig | { error: string };
  timers: { unit: string; enabled: boolean; active: boolean }[];
  /** The admin account's email, when that step was given one. */
  adminEmail?: string;
  /** /usr/sbin/sendmail or /usr/bin/mail: what unattended-upgrade mails with (it logs an error without either). */
  mailer: boolean;
  /** Debian's codename, which unattended-upgrade puts in place of ${distro_codename}. */
  codename?: string;
  proxmox: boolean;
}

export const TIMERS = ['apt-daily.timer', 'apt-daily-upgrade.timer'] as const;
const MAILERS = ['/usr/sbin/sendmail', '/usr/bin/mail'];
const PACKAGE = 'unattended-upgrades';
const DRY_RUN_ARGV = ['unattended-upgrade', '--dry-run', '--debug'];
const CONFIG_ARGV = ['apt-config', 'dump', 'Unattended-Upgrade', 'APT::Periodic'];

async function installedPackage(ctx: StepContext, pkg: string): Promise<boolean> {
  const r = await ctx.exec.run(['dpkg-query', '-W', '-f', '${Status}', pkg], { timeoutMs: 30_000 });
  return r.exitCode === 0 && / ok installed$/.test(r.stdout.trim());
}

async function readConfig(ctx: StepContext): Promise<AptConfig | { error: string }> {
  const r = await ctx.exec.run(CONFIG_ARGV, { timeoutMs: 30_000 });
  if (r.exitCode !== 0) return { error: (r.stderr || r.stdout).trim() || `apt-config exited with ${r.exitCode}` };
  return parseAptConfigDump(r.stdout);
}

async function probe(ctx: StepContext): Promise<AutoUpdatesFacts> {
  const ours = new Set([DROPIN, PERIODIC_FILE].map((p) => p.split('/').pop()));
  const otherConf: { name: string; text: string }[] = [];
  for (const name of await ctx.files.list(APT_CONF_DIR)) {
    if (ours.has(name)) continue;
    const text = await ctx.files.read(`${APT_CONF_DIR}/${name}`);
    if (text !== null) otherConf.push({ name, text });
  }
  const timers = [];
  for (const unit of TIMERS) {
    const enabled = (await ctx.exec.run(['systemctl', 'is-enabled', unit], { timeoutMs: 30_000 })).stdout.trim() === 'enabled';
    const active = (await ctx.exec.run(['systemctl', 'is-active', unit], { timeoutMs: 30_000 })).stdout.trim() === 'active';
    timers.push({ unit, enabled, active });
  }
  let mailer = false;
  for (const m of MAILERS) if ((await ctx.files.meta(m)) !== null) mailer = true;
  const email = ctx.answersOf(adminAccountStep).email;
  return {
    installed: await installedPackage(ctx, PACKAGE),
    dropIn: await ctx.files.read(DROPIN),
    periodicFile: await ctx.files.read(PERIODIC_FILE),
    otherConf,
    config: await readConfig(ctx),
    timers,
    ...(email ? { adminEmail: email } : {}),
    mailer,
    ...(ctx.node.debian?.codename ? { codename: ctx.node.debian.codename } : {}),
    proxmox: ctx.node.proxmox !== null,
  };
}

/** What the drop-in holds for these facts and answers: mail only where it can be sent. */
export function settingsFor(facts: Pick<AutoUpdatesFacts, 'adminEmail' | 'mailer'>, answers: AutoUpdatesAnswers): UnattendedSettings {
  return { proxmox: answers.proxmox, ...(facts.adminEmail && facts.mailer ? { mail: facts.adminEmail } : {}) };
}

function fileCheck(path: string, actual: string | null, wanted: string): Check {
  return { label: `${path} holds what the baseline intends`, ok: actual === wanted, ...(actual === null ? { detail: 'missing' } : actual !== wanted ? { detail: 'differs (changed by hand?)' } : {}) };
}

/** The checks on the settings as apt merged them. */
function configChecks(config: AptConfig | { error: string }, settings: UnattendedSettings): Check[] {
  if ('error' in config) return [{ label: 'apt-config dump shows the settings apt uses', ok: false, detail: config.error }];
  const get = (k: string) => config.scalars.get(k);
  const checks: Check[] = [];
  const reboot = get('Unattended-Upgrade::Automatic-Reboot');
  checks.push({ label: 'no automatic reboot (Unattended-Upgrade::Automatic-Reboot)', ok: !aptBool(reboot, false), ...(aptBool(reboot, false) ? { detail: `set to "${reboot}"` } : {}) });
  for (const key of PERIODIC_KEYS) {
    const v = get(key);
    checks.push({ label: `${key} runs daily`, ok: periodicDaily(v), ...(periodicDaily(v) ? {} : { detail: v === undefined ? 'not set' : `"${v}"` }) });
  }
  const enable = get('APT::Periodic::Enable');
  if (!aptBool(enable, true)) checks.push({ label: 'APT::Periodic::Enable is not off', ok: false, detail: `"${enable}"` });
  const mail = get('Unattended-Upgrade::Mail');
  if (settings.mail) checks.push({ label: `reports are mailed to ${settings.mail}`, ok: mail === settings.mail, ...(mail === settings.mail ? {} : { detail: mail ? `Unattended-Upgrade::Mail is "${mail}"` : 'no Unattended-Upgrade::Mail' }) });
  const unused = get('Unattended-Upgrade::Remove-Unused-Dependencies');
  checks.push({ label: 'unused dependencies are removed (Unattended-Upgrade::Remove-Unused-Dependencies)', ok: aptBool(unused, false), ...(aptBool(unused, false) ? {} : { detail: unused === undefined ? 'not set' : `"${unused}"` }) });
  return checks;
}

/** The dry run's origins against the wanted ones, ${distro_codename} replaced as unattended-upgrade does. */
export function originChecks(dry: DryRun, answers: AutoUpdatesAnswers, codename: string | undefined): Check[] {
  const label = 'unattended-upgrade --dry-run takes updates from exactly the wanted origins';
  if (dry.allowedOrigins === undefined) return [{ label, ok: false, detail: dry.problem ?? 'no "Allowed origins are:" line' }];
  if (!codename) return [{ label, ok: false, detail: "this node's Debian codename is unknown (/etc/os-release), so ${distro_codename} cannot be checked" }];
  const wanted = wantedPatterns(answers).map((p) => substituteCodename(p, codename));
  const { missing, extra } = compareOrigins(dry.allowedOrigins, wanted);
  const detail = [missing.length ? `missing: ${missing.join('; ')}` : '', extra.length ? `also allowed: ${extra.join('; ')}` : ''].filter(Boolean).join('; ');
  return [{ label, ok: !detail, ...(detail ? { detail } : {}) }];
}

async function dryRun(ctx: StepContext): Promise<DryRun> {
  // It reads the whole package cache and takes apt's lock, so it fails while apt-daily runs (the
  // output then says the lock could not be acquired). It changes no setting, but like the real run
  // it downloads the packages it would upgrade into apt's cache and appends to its own log
  // (unattended-upgrade main: fetcher.run() comes before the dry-run check; _setup_logging).
  const r = await ctx.exec.run(DRY_RUN_ARGV, { timeoutMs: 600_000 });
  if (r.notFound) return { packages: [], problem: 'unattended-upgrade is not installed' };
  return parseDryRun(r.stdout, r.stderr);
}

export const autoUpdatesStep: Step<AutoUpdatesFacts, AutoUpdatesAnswers> = {
  id: 'auto-updates',
  title: 'Unattended security updates',
  summary: "Debian's security updates (and, if you choose, Proxmox's) install themselves daily; the node never reboots on its own, and Proxmox VE releases stay with the supervised upgrade.",
  scope: 'node',
  risk: 'safe',

  questions: [
    ask.yesNo({
      id: 'proxmox',
      prompt: "Also install updates from Proxmox's repositories unattended?",
      help:
        "No by default, as Proxmox's own documentation advises: QEMU, the kernel and the Proxmox daemons then change only when you upgrade. " +
        'Yes takes fixes that need no new package; a Proxmox VE release (new or removed dependencies) still waits for the supervised upgrade, and the node never reboots on its own either way.',
      when: (_answers, facts) => facts.proxmox,
      detect: () => false,
    }),
  ],

  requires: (node) => (node.debian ? undefined : 'needs a Debian-based node (apt and unattended-upgrades)'),

  probe,

  preflight(facts) {
    const checks: Check[] = [];
    const periodic = periodicOverrides(facts.otherConf);
    checks.push({
      label: `no file read after ${PERIODIC_FILE} turns the daily jobs off`,
      ok: periodic.length === 0,
      ...(periodic.length ? { detail: `${periodic.map((o) => `${o.file} sets ${o.key} "${o.value}"`).join('; ')}: change or remove it first` } : {}),
    });
    const reboot = rebootOverrides(facts.otherConf);
    checks.push({
      label: `no file read after ${DROPIN} turns automatic reboots on`,
      ok: reboot.length === 0,
      ...(reboot.length ? { detail: `${reboot.map((o) => `${o.file} sets ${o.key} "${o.value}"`).join('; ')}: a hypervisor must not reboot on its own; change or remove it first` } : {}),
    });
    return checks;
  },

  plan(facts, answers) {
    const changes: Change[] = [];
    if (!facts.installed) {
      changes.push({
        kind: 'command',
        argv: ['apt-get', 'install', '-y', PACKAGE],
        // No undo: a rollback puts our files back; removing the package could take what others need.
        reason: "unattended-upgrades from the node's own repositories: installs updates from the allowed origins every day",
      });
    }
    const settings = settingsFor(facts, answers);
    const wanted = renderDropIn(settings);
    if (facts.dropIn !== wanted) {
      const mailNote = settings.mail ? `, reports to ${settings.mail}` : facts.adminEmail ? ` (no mail: neither ${MAILERS.join(' nor ')} is installed)` : '';
      changes.push({
        kind: 'file',
        path: DROPIN,
        before: facts.dropIn,
        after: wanted,
        mode: 0o644,
        owner: { uid: 0, gid: 0 },
        reason: `Debian security updates${answers.proxmox ? " and Proxmox's" : ''} unattended, never a reboot${mailNote}`,
      });
    }
    if (!periodicFileRight(facts.periodicFile)) {
      changes.push({
        kind: 'file',
        path: PERIODIC_FILE,
        before: facts.periodicFile,
        after: DEBIAN_PERIODIC,
        mode: 0o644,
        owner: { uid: 0, gid: 0 },
        reason:
          facts.periodicFile === null
            ? "switches the daily package-list update and unattended upgrade on, with Debian's own two lines"
            : "does not switch both daily jobs on: Debian's own two lines instead (what its package writes when automatic updates are enabled)",
      });
    }
    for (const t of facts.timers) {
      if (!t.enabled) changes.push({ kind: 'service', unit: t.unit, action: 'enable', reason: `${t.unit} runs apt's daily jobs (apt.systemd.daily); it is not enabled` });
      if (!t.active) changes.push({ kind: 'service', unit: t.unit, action: 'start', reason: `${t.unit} is not running: nothing would run until the next boot` });
    }
    return changes;
  },

  async verify(ctx, answers) {
    const facts = await probe(ctx);
    const settings = settingsFor(facts, answers);
    const checks: Check[] = [{ label: `${PACKAGE} is installed`, ok: facts.installed }];
    checks.push(fileCheck(DROPIN, facts.dropIn, renderDropIn(settings)));
    checks.push({ label: `${PERIODIC_FILE} switches both daily jobs on`, ok: periodicFileRight(facts.periodicFile), ...(facts.periodicFile === null ? { detail: 'missing' } : {}) });
    checks.push(...configChecks(facts.config, settings));
    for (const t of facts.timers) {
      checks.push({ label: `${t.unit} is enabled and running`, ok: t.enabled && t.active, ...(t.enabled && t.active ? {} : { detail: `${t.enabled ? 'enabled' : 'not enabled'}, ${t.active ? 'running' : 'not running'}` }) });
    }
    if (facts.installed) checks.push(...originChecks(await dryRun(ctx), answers, facts.codename));
    else checks.push({ label: 'unattended-upgrade --dry-run takes updates from exactly the wanted origins', ok: false, detail: `${PACKAGE} is not installed` });
    return checks;
  },

  document: (ctx, answers) => autoUpdatesDocument(ctx, answers),
};

/** The updates policy for the access-policy document: what updates itself, what never does, and why. */
export async function autoUpdatesDocument(ctx: StepContext, answers: { proxmox?: boolean }): Promise<DocumentSection> {
  const facts = await probe(ctx);
  const evidence = [`dpkg-query -W ${PACKAGE}`, `read ${DROPIN}`, `read ${PERIODIC_FILE}`, CONFIG_ARGV.join(' '), ...TIMERS.map((t) => `systemctl is-enabled ${t}`)];
  const policy = [
    'Debian security updates install themselves every day (apt-daily-upgrade.timer runs unattended-upgrade).',
    answers.proxmox
      ? "Updates from Proxmox's repositories install themselves too, as long as they need no new package and remove none."
      : "Proxmox's packages (QEMU, the kernel, the Proxmox daemons) change only in a supervised upgrade.",
    'Proxmox VE point releases always go through the supervised upgrade (`apt-get dist-upgrade`, as Proxmox documents it): unattended-upgrades would apply a release in part, holding back every package whose configuration file was changed here, and whatever depends on it.',
    'The node never reboots on its own: a reboot stops every guest. A new kernel or library waits for a reboot someone chooses.',
  ];
  if (!facts.installed) return { heading: 'Unattended security updates', blocks: [paragraph('unattended-upgrades is not installed: no update installs itself on this node.'), bullets(policy.slice(2))], evidence };
  const config = 'error' in facts.config ? undefined : facts.config;
  const origins = config ? [...(config.lists.get('Unattended-Upgrade::Origins-Pattern') ?? []), ...(config.lists.get('Unattended-Upgrade::Allowed-Origins') ?? [])] : [];
  const rows: string[][] = [
    ['Allowed origins', origins.length ? origins.map((o) => code(o)).join(', ') : config ? 'none' : 'unknown'],
    ['Automatic reboot', config ? (aptBool(config.scalars.get('Unattended-Upgrade::Automatic-Reboot'), false) ? 'yes' : 'never') : 'unknown'],
    ['Reports mailed to', config?.scalars.get('Unattended-Upgrade::Mail') ?? 'nobody (logs in /var/log/unattended-upgrades/)'],
    ['Unused dependencies removed', config ? (aptBool(config.scalars.get('Unattended-Upgrade::Remove-Unused-Dependencies'), false) ? 'yes' : 'no') : 'unknown'],
    ...PERIODIC_KEYS.map((k) => [k, config?.scalars.get(k) ?? 'not set']),
    ...facts.timers.map((t) => [t.unit, `${t.enabled ? 'enabled' : 'not enabled'}, ${t.active ? 'running' : 'not running'}`]),
  ];
  return {
    heading: 'Unattended security updates',
    blocks: [paragraph(`Settings as apt merges them (${code(CONFIG_ARGV.join(' '))}); ours are in ${code(DROPIN)}.`), table(['Setting', 'Value'], rows), bullets(policy)],
    evidence,
  };
}
