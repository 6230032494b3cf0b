/**
 * fail2ban for SSH and the Proxmox web UI, reading the journal, never banning
 * the people who manage the node.
 *
 *   install    fail2ban from the node's own repositories (Debian 12 also python3-systemd,
 *              which its systemd backend needs); the commands run with
 *              DEBIAN_FRONTEND=noninteractive, as every command does (src/system/exec.ts)
 *   jails      /etc/fail2ban/jail.d/pve-baseline.local: [sshd] and [proxmox], backend systemd
 *   filter     /etc/fail2ban/filter.d/pve-baseline-proxmox.conf: pvedaemon's "authentication failure"
 *   journald   when MaxLevelStore drops info (sshd's failures), a drop-in puts it back, and journald restarts
 *   test       `fail2ban-client -t`, run as a command just before the restart: a step that cannot cut
 *              access has no guard to run checks in (AccessGuard.beforeActivate is for lockout steps),
 *              so a configuration fail2ban refuses stops the apply there, and the engine puts the files back
 *   restart    fail2ban.service, then verify asks the server itself which jails run and what they ignore
 *
 * The ignore list: loopback, the node's own addresses (the sshd step's proof sends dummy passwords
 * from here), in a cluster the other nodes' ring addresses (corosync.conf: root's SSH between nodes
 * must never be banned), the firewall step's management set and the addresses the operator trusts
 * (by default the SSH session's own address, when the management set does not hold it).
 */
import type { Change } from '../src/engine/change.ts';
import type { Check, Step, StepContext } from '../src/engine/step.ts';
import { ask, parseNetwork } from '../src/engine/questions.ts';
import type { NodeInfo } from '../src/system/detect.ts';
import { bullets, code, paragraph, table, type DocumentSection } from '../src/report/section.ts';
import { canonicalCidr, unmapAddress } from '../src/pve/firewall-rules.ts';
import { firewallStep } from './firewall.ts';
import { ringPeers } from '../src/pve/firewall-model.ts';
import { nodeName } from '../src/engine/datacenter.ts';

/** The cluster's nodes and their ring addresses (pmxcfs); absent on a single node. */
const COROSYNC_CONF = '/etc/pve/corosync.conf';
import {
  coveredBy,
  FILTER_FILE,
  iniSection,
  JAIL_FILE,
  JAILS,
  parseIgnoreList,
  parseJailList,
  parseJailStatus,
  renderFilterFile,
  renderJailFile,
  type Banaction,
  type JailStatus,
} from '../src/fail2ban/config.ts';
import { effectiveMaxLevelStore, INFO, JOURNALD_DROPIN, JOURNALD_DROPIN_DIR, parseCatConfig, renderJournaldDropIn, withDropIn, type JournaldFile } from '../src/fail2ban/journald.ts';

export type Fail2banAnswers = {
  trusted: string[];
  ssh_maxretry: number;
  web_maxretry: number;
  findtime_minutes: number;
  bantime_minutes: number;
};

export interface Fail2banFacts {
  installed: boolean;
  python3Systemd: boolean;
  jailFile: string | null;
  filterFile: string | null;
  /** The jails the running server has; null when it does not answer (not installed, stopped, broken). */
  running: string[] | null;
  enabled: boolean;
  journald: JournaldFile[] | { error: string };
  journaldDropIn: string | null;
  journaldDirExists: boolean;
  /** The node's own addresses. */
  own: string[];
  /** The other cluster nodes' ring addresses (corosync.conf); [] on a single node. */
  cluster: string[];
  /** The firewall step's management set, as it was answered, once that step is in force ([] until then). */
  management: string[];
  /** Where the operator's SSH session comes from; undefined on the console. */
  operator?: string;
}

const LOOPBACK = ['127.0.0.1/8', '::1'];

/**
 * fail2ban takes a moment after a (re)start before its socket answers; verify
 * waits for `fail2ban-client ping` (up to 15 s) when the service is active, so
 * it judges the running server, not its start-up. Returns at once when fail2ban
 * is not running at all.
 */
async function serverAnswers(ctx: StepContext): Promise<void> {
  if ((await ctx.exec.run(['systemctl', 'is-active', 'fail2ban.service'], { timeoutMs: 30_000 })).exitCode !== 0) return;
  for (let i = 0; i < 30; i++) {
    if ((await ctx.exec.run(['fail2ban-client', 'ping'], { timeoutMs: 10_000 })).stdout.includes('pong')) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Debian's major version: from /etc/os-release, else from Proxmox VE's (8 is Debian 12, 9 is Debian 13). */
export function debianMajor(node: NodeInfo): number | undefined {
  const v = Number.parseInt(node.debian?.version ?? '', 10);
  if (Number.isInteger(v)) return v;
  const byName: Record<string, number> = { bullseye: 11, bookworm: 12, trixie: 13, forky: 14 };
  if (node.debian?.codename && byName[node.debian.codename]) return byName[node.debian.codename];
  return node.proxmox ? node.proxmox.major + 4 : undefined;
}

/**
 * nftables on Debian 13 / PVE 9 (fail2ban's own `inet f2b-table`, beside proxmox-firewall's tables);
 * iptables on Debian 12 / PVE 8, where pve-firewall works with iptables and fail2ban adds chains of its own.
 */
export function banactionFor(node: NodeInfo): Banaction {
  const major = debianMajor(node);
  return major !== undefined && major < 13 ? 'iptables-multiport' : 'nftables-multiport';
}

/** Debian 12's fail2ban (1.0.2) needs python3-systemd for backend = systemd and does not pull it in everywhere. */
function packagesFor(node: NodeInfo): string[] {
  const major = debianMajor(node);
  return major !== undefined && major < 13 ? ['fail2ban', 'python3-systemd'] : ['fail2ban'];
}

/** The ignore list, in order, each entry once; an address inside a network already listed is left out. */
export function ignoreList(facts: Pick<Fail2banFacts, 'own' | 'management'> & Partial<Pick<Fail2banFacts, 'cluster'>>, answers: Pick<Fail2banAnswers, 'trusted'>): string[] {
  // The cluster's nodes: a ban of one would cut root's SSH between nodes (migration, pvecm).
  const candidates = [...LOOPBACK, ...facts.own, ...(facts.cluster ?? []), ...facts.management, ...answers.trusted];
  const seen = new Set<string>();
  const unique = candidates.filter((c) => {
    const key = canonicalCidr(c);
    if (key === undefined || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return unique.filter((c) => !unique.some((other) => other !== c && other.includes('/') && canonicalCidr(other) !== canonicalCidr(c) && coveredBy(c, [canonicalCidr(other)!])));
}

function settings(facts: Fail2banFacts, answers: Fail2banAnswers, node: NodeInfo) {
  return {
    ignoreip: ignoreList(facts, answers),
    sshMaxretry: answers.ssh_maxretry,
    webMaxretry: answers.web_maxretry,
    findtimeMinutes: answers.findtime_minutes,
    bantimeMinutes: answers.bantime_minutes,
    banaction: banactionFor(node),
  };
}

async function installedPackage(ctx: StepContext, pkg: string): Promise<boolean> {
  const r = await ctx.exec.run(['dpkg-query', '-W', '-f', '${Status}', pkg], { timeoutMs: 30_000 });
  return r.exitCode === 0 && / ok installed$/.test(r.stdout.trim());
}

async function runningJails(ctx: StepContext): Promise<string[] | null> {
  const r = await ctx.exec.run(['fail2ban-client', 'status'], { timeoutMs: 30_000 });
  return r.exitCode === 0 ? parseJailList(r.stdout) : null;
}

async function readJournald(ctx: StepContext): Promise<JournaldFile[] | { error: string }> {
  const r = await ctx.exec.run(['systemd-analyze', 'cat-config', 'systemd/journald.conf'], { timeoutMs: 30_000 });
  if (r.exitCode !== 0) return { error: (r.stderr || r.stdout).trim() || `systemd-analyze cat-config exited with ${r.exitCode}` };
  return parseCatConfig(r.stdout);
}

/** journald's MaxLevelStore with the plan's drop-in in place: the level and who sets it. */
function journaldAfter(facts: Fail2banFacts, withOurs: boolean) {
  if ('error' in facts.journald) return undefined;
  return effectiveMaxLevelStore(withOurs ? withDropIn(facts.journald, { path: JOURNALD_DROPIN, maxLevelStore: 'info' }) : facts.journald);
}

function journaldNeedsDropIn(facts: Fail2banFacts): boolean {
  const now = journaldAfter(facts, false);
  return now !== undefined && now.level < INFO;
}

async function probe(ctx: StepContext): Promise<Fail2banFacts> {
  const installed = await installedPackage(ctx, 'fail2ban');
  // The firewall's management set only once the firewall step is in force (applied or verified): `check` and a
  // dry run would otherwise see the answers it would be given, not what the node has.
  const firewallStatus = ctx.journalRecords()[firewallStep.id]?.status;
  const firewall = firewallStatus === 'verified' || firewallStatus === 'applied' ? ctx.answersOf(firewallStep) : {};
  const session = ctx.node.session;
  return {
    installed,
    python3Systemd: await installedPackage(ctx, 'python3-systemd'),
    jailFile: await ctx.files.read(JAIL_FILE),
    filterFile: await ctx.files.read(FILTER_FILE),
    running: installed ? await runningJails(ctx) : null,
    enabled: installed ? (await ctx.exec.run(['systemctl', 'is-enabled', 'fail2ban.service'], { timeoutMs: 30_000 })).stdout.trim() === 'enabled' : false,
    journald: await readJournald(ctx),
    journaldDropIn: await ctx.files.read(JOURNALD_DROPIN),
    journaldDirExists: (await ctx.files.meta(JOURNALD_DROPIN_DIR)) !== null,
    own: ctx.node.addresses.map((a) => unmapAddress(a.address)),
    cluster: ringPeers((await ctx.files.read(COROSYNC_CONF)) ?? '', nodeName(ctx.node)).map((p) => p.address),
    management: [...(firewall.management ?? [])],
    ...(session.kind === 'ssh' ? { operator: unmapAddress(session.clientAddress) } : {}),
  };
}

const threshold = <K extends string>(id: K, prompt: string, help: string, value: number, min: number, max: number, unit: string) =>
  ask.integer<Fail2banFacts, K>({ id, prompt, help, min, max, unit, detect: () => value });

export const fail2banStep: Step<Fail2banFacts, Fail2banAnswers> = {
  id: 'fail2ban',
  title: 'fail2ban for SSH and the web UI',
  summary: 'Bans addresses that keep failing to log in over SSH or to the web UI, never the management networks, this node or you.',
  scope: 'node',
  risk: 'disruptive',

  questions: [
    ask.words({
      id: 'trusted',
      prompt: 'Addresses fail2ban must never ban, besides the management networks and this node',
      help: "Loopback, this node's own addresses and the firewall's management set are always on the list. Your SSH session's address is offered when the management set does not hold it. Separated by spaces; may be empty.",
      what: 'an address or a network (e.g. 203.0.113.7 or 10.0.0.0/24)',
      pattern: /^[0-9A-Fa-f:.]+(\/\d{1,3})?$/,
      maxWordLength: 64,
      maxWords: 64,
      optional: true,
      check: (list) => {
        for (const word of list) {
          const network = parseNetwork(word);
          if ('problem' in network) return network.problem;
          if (network.prefix === 0) return `${JSON.stringify(word)} is every address: fail2ban would never ban anyone`;
        }
        return undefined;
      },
      detect: (facts) => (facts.operator && !coveredBy(facts.operator, [...facts.management, ...facts.own]) ? [facts.operator] : []),
    }),
    threshold(
      'ssh_maxretry',
      'Failed SSH logins before a ban',
      'Four: a little more than one connection can fail (the sshd step sets MaxAuthTries 3), so an agent offering a wrong key or two never bans you, while a scanner is banned on its second connection.',
      4,
      2,
      20,
      'failures',
    ),
    threshold(
      'web_maxretry',
      'Failed web UI logins before a ban',
      "Five: a password and a TOTP code typed in a browser go wrong more often than a key; Proxmox's own TOTP lock comes after 8 failures (the management set is never banned anyway).",
      5,
      2,
      20,
      'failures',
    ),
    threshold('findtime_minutes', 'Minutes in which the failures count', "Ten, fail2ban's own default: enough to catch a scanner, short enough that a few typos over a day never add up.", 10, 1, 1440, 'minutes'),
    threshold(
      'bantime_minutes',
      'Minutes a ban lasts',
      'One hour: long enough to make guessing pointless, short enough that someone banned by mistake from an address outside the list is back in within the hour without the console.',
      60,
      1,
      10080,
      'minutes',
    ),
  ],

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node (the proxmox jail reads pvedaemon)'),

  probe,

  preflight(facts, answers) {
    const checks: Check[] = [];
    const ignore = ignoreList(facts, answers);
    if (facts.operator) {
      const ok = coveredBy(facts.operator, ignore.map((c) => canonicalCidr(c)!));
      checks.push({
        label: `you (this session) at ${facts.operator} are never banned`,
        ok,
        ...(ok ? {} : { detail: "four mistyped logins would cut this very session (a ban drops the address's packets): add the address to the trusted addresses or the firewall's management set" }),
      });
    }
    if (journaldNeedsDropIn(facts)) {
      const after = journaldAfter(facts, true)!;
      checks.push({
        label: `journald keeps info messages once ${JOURNALD_DROPIN} is in place`,
        ok: after.level >= INFO,
        ...(after.level >= INFO ? {} : { detail: `${after.from} sets MaxLevelStore=${after.value} and is read after it: change that file first` }),
      });
    }
    return checks;
  },

  plan(facts, answers, node) {
    const changes: Change[] = [];
    const packages = packagesFor(node);
    const installing = !facts.installed || (packages.includes('python3-systemd') && !facts.python3Systemd);
    if (installing) {
      changes.push({
        kind: 'command',
        argv: ['apt-get', 'install', '-y', ...packages],
        // No undo: a rollback puts the files back and restarts fail2ban with Debian's own jails; removing the package could take what others need.
        reason: `fail2ban from the node's own repositories${packages.length > 1 ? ', and python3-systemd, which its journal backend needs on Debian 12' : ''}`,
      });
    }
    const wanted = renderJailFile(settings(facts, answers, node));
    const jailChange = facts.jailFile !== wanted;
    if (jailChange) {
      changes.push({ kind: 'file', path: JAIL_FILE, before: facts.jailFile, after: wanted, mode: 0o644, owner: { uid: 0, gid: 0 }, reason: `the sshd and proxmox jails, reading the journal; never banned: ${settings(facts, answers, node).ignoreip.join(' ')}` });
    }
    const filter = renderFilterFile();
    const filterChange = facts.filterFile !== filter;
    if (filterChange) {
      changes.push({ kind: 'file', path: FILTER_FILE, before: facts.filterFile, after: filter, mode: 0o644, owner: { uid: 0, gid: 0 }, reason: "pvedaemon's failed web UI and API logins (fail2ban's own proxmox filter is newer than Debian 13's fail2ban)" });
    }
    if (journaldNeedsDropIn(facts)) {
      const now = journaldAfter(facts, false)!;
      if (!facts.journaldDirExists) {
        // The engine writes files into directories that exist; this one does not on a fresh node.
        changes.push({ kind: 'command', argv: ['install', '-d', '-m', '0755', '-o', 'root', '-g', 'root', JOURNALD_DROPIN_DIR], reason: `the directory for journald's drop-ins` });
      }
      changes.push({
        kind: 'file',
        path: JOURNALD_DROPIN,
        before: facts.journaldDropIn,
        after: renderJournaldDropIn(),
        mode: 0o644,
        owner: { uid: 0, gid: 0 },
        reason: `${now.from ?? 'journald'} sets MaxLevelStore=${now.value}, which drops sshd's failed logins (logged at info) before fail2ban can read them`,
      });
      changes.push({ kind: 'service', unit: 'systemd-journald.service', action: 'restart', reason: 'journald reads MaxLevelStore when it starts' });
    }
    const missing = facts.running === null ? [...JAILS] : JAILS.filter((j) => !facts.running!.includes(j));
    if (installing || jailChange || filterChange || missing.length) {
      changes.push({
        kind: 'command',
        argv: ['fail2ban-client', '-t'],
        reason: 'fail2ban checks the whole configuration before the restart; if it refuses, nothing is restarted and the files are put back',
      });
      changes.push({
        kind: 'service',
        unit: 'fail2ban.service',
        action: 'restart',
        reason: missing.length && !(installing || jailChange || filterChange) ? `the running fail2ban lacks the ${missing.join(' and ')} jail${missing.length > 1 ? 's' : ''}` : 'fail2ban reads its jails when it starts',
      });
    }
    if (facts.installed && !facts.enabled) changes.push({ kind: 'service', unit: 'fail2ban.service', action: 'enable', reason: 'fail2ban starts again after a reboot' });
    return changes;
  },

  async verify(ctx, answers) {
    await serverAnswers(ctx);
    const facts = await probe(ctx);
    const s = settings(facts, answers, ctx.node);
    const checks: Check[] = [];
    for (const pkg of packagesFor(ctx.node)) checks.push({ label: `${pkg} is installed`, ok: pkg === 'fail2ban' ? facts.installed : facts.python3Systemd });
    checks.push(fileCheck(JAIL_FILE, facts.jailFile, renderJailFile(s)));
    checks.push(fileCheck(FILTER_FILE, facts.filterFile, renderFilterFile()));
    const level = journaldAfter(facts, false);
    checks.push(
      level === undefined
        ? { label: 'journald keeps info messages (MaxLevelStore)', ok: false, detail: (facts.journald as { error: string }).error }
        : { label: 'journald keeps info messages (MaxLevelStore)', ok: level.level >= INFO, ...(level.level >= INFO ? {} : { detail: `MaxLevelStore=${level.value}${level.from ? ` in ${level.from}` : ''}` }) },
    );
    const running = facts.running;
    const missing = running === null ? [...JAILS] : JAILS.filter((j) => !running.includes(j));
    checks.push({ label: `fail2ban-client status lists the ${JAILS.join(' and ')} jails`, ok: missing.length === 0, ...(missing.length ? { detail: running === null ? 'fail2ban does not answer' : `missing: ${missing.join(', ')}` } : {}) });
    const wantedIgnore = s.ignoreip.map((c) => canonicalCidr(c)!);
    for (const jail of JAILS) {
      const status = await jailStatus(ctx, jail);
      checks.push({ label: `fail2ban-client status ${jail} answers`, ok: !('error' in status), ...('error' in status ? { detail: status.error } : {}) });
      const r = await ctx.exec.run(['fail2ban-client', 'get', jail, 'ignoreip'], { timeoutMs: 30_000 });
      const live = r.exitCode === 0 ? parseIgnoreList(r.stdout) : null;
      if (live === null) {
        checks.push({ label: `the ${jail} jail never bans the management set and this node`, ok: false, detail: (r.stderr || r.stdout).trim() || 'fail2ban does not answer' });
        continue;
      }
      const held = live.map((l) => canonicalCidr(l) ?? l);
      const absent = wantedIgnore.filter((w) => !held.includes(w));
      checks.push({ label: `the ${jail} jail never bans the management set and this node (ignoreip)`, ok: absent.length === 0, ...(absent.length ? { detail: `not ignored: ${absent.join(', ')}` } : {}) });
    }
    return checks;
  },

  document: (ctx, answers) => fail2banDocument(ctx, answers),
};

function fileCheck(path: string, actual: string | null, wanted: string): Check {
  return { label: `${path} holds what the baseline intends`, ok: actual === wanted, ...(actual === null ? { detail: 'missing' } : actual !== wanted ? { detail: 'differs (changed by hand?)' } : {}) };
}

async function jailStatus(ctx: StepContext, jail: string): Promise<JailStatus | { error: string }> {
  const r = await ctx.exec.run(['fail2ban-client', 'status', jail], { timeoutMs: 30_000 });
  const parsed = r.exitCode === 0 ? parseJailStatus(r.stdout) : null;
  return parsed ?? { error: (r.stderr || r.stdout).trim() || `fail2ban-client status ${jail} exited with ${r.exitCode}` };
}

/** fail2ban's part of the access-policy document: the jails and their thresholds, who is never banned, who is banned now. */
export async function fail2banDocument(ctx: StepContext, _answers: Partial<Fail2banAnswers>): Promise<DocumentSection> {
  const facts = await probe(ctx);
  const evidence = ['dpkg-query -W fail2ban', `read ${JAIL_FILE}`, 'fail2ban-client status', ...JAILS.map((j) => `fail2ban-client status ${j}`)];
  if (!facts.installed) return { heading: 'fail2ban', blocks: [paragraph('fail2ban is not installed on this node: failed logins are not banned.')], evidence };
  const rows: string[][] = [];
  const bans: string[] = [];
  for (const jail of JAILS) {
    const conf = facts.jailFile ? iniSection(facts.jailFile, jail) : undefined;
    const status = facts.running?.includes(jail) ? await jailStatus(ctx, jail) : { error: 'not running' };
    const live = 'error' in status ? status.error : `${status.currentlyBanned} banned now (${status.totalBanned} since start), ${status.currentlyFailed} failing`;
    rows.push([jail, conf?.get('journalmatch') ?? '', conf?.get('maxretry') ?? '', conf?.get('findtime') ?? '', conf?.get('bantime') ?? '', conf?.get('banaction') ?? '', live]);
    if (!('error' in status)) bans.push(`${jail}: ${status.bannedIps.length ? status.bannedIps.map((ip) => code(ip)).join(', ') : 'none'}`);
  }
  const ignore = facts.jailFile ? (iniSection(facts.jailFile, 'sshd')?.get('ignoreip') ?? '') : '';
  return {
    heading: 'fail2ban',
    blocks: [
      paragraph(`Jails from ${code(JAIL_FILE)}, reading the journal; the web UI filter is ${code(FILTER_FILE)}. Running jails: ${facts.running ? facts.running.map((j) => code(j)).join(', ') || 'none' : 'fail2ban does not answer'}.`),
      table(['Jail', 'Journal match', 'Failures', 'Within', 'Ban for', 'Ban action', 'Now'], rows),
      bullets([
        `Never banned (ignoreip, and ignoreself): ${ignore ? ignore.split(/\s+/).map((c) => code(c)).join(', ') : 'not set by pve-baseline'}.`,
        `Banned now: ${bans.length ? bans.join('; ') : 'unknown'}.`,
        'Banned by mistake: from the console or another address, `fail2ban-client set JAIL unbanip ADDRESS`; or wait for the ban to end.',
      ]),
    ],
    evidence,
  };
}
