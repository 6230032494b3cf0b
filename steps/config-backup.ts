/**
 * A config backup that restores (issue 17; proxmox-steps.md B.7): encrypted,
 * off the node, drilled, on a timer. The work itself is `pve-baseline
 * backup` (src/backup/run.ts); this step sets it up and proves it once.
 *
 *   install   age (the standard tool: a restore never needs pve-baseline) and sqlite3
 *   identity  `age-keygen` into the state directory (0600) when the operator gives no
 *             recipient: kept on the node for the drills, and to be copied off it
 *   settings  /etc/pve-baseline/config-backup.json (0600): recipients, destination, the
 *             pinned host key, retention, schedule (src/backup/settings.ts)
 *   timer     pve-baseline-config-backup.{service,timer}, weekly or daily
 *   first run `pve-baseline backup`: archive, copy off the node, read back, drill
 *   verify    the settings, the timer, and the last run (recent, copied, drilled);
 *             `check` reads the same, so a backup host that went away shows there
 */
import path from 'node:path';
import type { Change } from '../src/engine/change.ts';
import type { AnswerDetails, Check, Step, StepContext } from '../src/engine/step.ts';
import { ask } from '../src/engine/questions.ts';
import { code, numbered, paragraph, table, type DocumentSection } from '../src/report/section.ts';
import {
  backupUnits,
  BACKUP_DIR_NAME,
  describeDestination,
  FINGERPRINT,
  parseSettings,
  isRecipient,
  renderSettings,
  SETTINGS_FILE,
  UNIT_NAME,
  type BackupSettings,
} from '../src/backup/settings.ts';
import { readStatus, staleAfterDays, type BackupStatus } from '../src/backup/status.ts';

const STATE_DIR = '/var/lib/pve-baseline';
export const BACKUP_DIR = path.join(STATE_DIR, BACKUP_DIR_NAME);
export const IDENTITY_FILE = path.join(BACKUP_DIR, 'identity.txt');
const SERVICE_FILE = `/etc/systemd/system/${UNIT_NAME}.service`;
const TIMER_FILE = `/etc/systemd/system/${UNIT_NAME}.timer`;
const TIMER = `${UNIT_NAME}.timer`;
/** Root's own keys, as Proxmox makes them (pvecm updatecerts makes id_rsa): offered for the SFTP login. */
const ROOT_KEYS = ['/root/.ssh/id_ed25519', '/root/.ssh/id_rsa'];
const PROGRAM_FALLBACK = '/usr/local/bin/pve-baseline';

export interface ConfigBackupFacts {
  node: string;
  settings: string | null;
  service: string | null;
  timer: string | null;
  timerEnabled: boolean;
  timerActive: boolean;
  age: boolean;
  sqlite3: boolean;
  identity: boolean;
  /** The state directory's config-backup directory exists (archives, the identity, the last result). */
  backupDir: boolean;
  /** Root's SSH keys that have a .pub beside them: path and public line. */
  rootKeys: { path: string; publicKey: string }[];
  status: BackupStatus | null;
  program: string;
}

export type ConfigBackupAnswers = {
  destination: 'sftp' | 'path';
  host?: string;
  port?: number;
  user?: string;
  remote_dir?: string;
  host_key?: string;
  key_file?: string;
  path?: string;
  /** An age recipient, or "generate" for an identity kept on the node. */
  recipient: string;
  keep: number;
  schedule: 'weekly' | 'daily';
};

async function installed(ctx: StepContext, program: string): Promise<boolean> {
  for (const dir of ['/usr/bin', '/bin', '/usr/local/bin']) if ((await ctx.files.meta(`${dir}/${program}`)) !== null) return true;
  return false;
}

async function unitState(ctx: StepContext, verb: 'is-enabled' | 'is-active'): Promise<boolean> {
  const r = await ctx.exec.run(['systemctl', verb, TIMER], { timeoutMs: 30_000 });
  return r.stdout.trim() === (verb === 'is-enabled' ? 'enabled' : 'active');
}

async function probe(ctx: StepContext): Promise<ConfigBackupFacts> {
  const rootKeys: ConfigBackupFacts['rootKeys'] = [];
  for (const key of ROOT_KEYS) {
    const pub = await ctx.files.read(`${key}.pub`).catch(() => null);
    if (pub && (await ctx.files.meta(key)) !== null) rootKeys.push({ path: key, publicKey: pub.trim() });
  }
  return {
    node: ctx.node.hostname,
    settings: await ctx.files.read(SETTINGS_FILE),
    service: await ctx.files.read(SERVICE_FILE),
    timer: await ctx.files.read(TIMER_FILE),
    timerEnabled: await unitState(ctx, 'is-enabled'),
    timerActive: await unitState(ctx, 'is-active'),
    age: (await installed(ctx, 'age')) && (await installed(ctx, 'age-keygen')),
    sqlite3: await installed(ctx, 'sqlite3'),
    identity: (await ctx.files.meta(IDENTITY_FILE)) !== null,
    backupDir: (await ctx.files.meta(BACKUP_DIR)) !== null,
    rootKeys,
    status: await readStatus(ctx.files, STATE_DIR),
    program: ctx.program ?? PROGRAM_FALLBACK,
  };
}

/** The settings these answers make. */
export function settingsFor(answers: ConfigBackupAnswers): BackupSettings {
  const generate = answers.recipient === 'generate';
  return {
    version: 1,
    recipients: generate ? [] : [answers.recipient],
    ...(generate ? { identityFile: IDENTITY_FILE } : {}),
    keep: answers.keep,
    destination:
      answers.destination === 'sftp'
        ? { kind: 'sftp', host: answers.host!, port: answers.port ?? 22, user: answers.user!, dir: answers.remote_dir!, hostKey: answers.host_key!, keyFile: answers.key_file! }
        : { kind: 'path', dir: answers.path! },
    schedule: answers.schedule,
  };
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const REMOTE_DIR = /^[A-Za-z0-9._/-]{1,200}$/;

const sftp = (a: Record<string, unknown>) => a.destination === 'sftp';

/** The host key as the backup host presents it now, for the operator to compare before it is pinned. */
async function fetchHostKey(answers: Record<string, unknown>): Promise<string | { problem: string }> {
  const { probeHostKey } = await import('../src/backup/remote.ts');
  try {
    return await probeHostKey({ host: String(answers.host), port: Number(answers.port ?? 22) });
  } catch (error) {
    return { problem: `could not read the host key of ${String(answers.host)}:${String(answers.port ?? 22)}: ${(error as Error).message}` };
  }
}

export const configBackupStep: Step<ConfigBackupFacts, ConfigBackupAnswers> = {
  id: 'config-backup',
  title: 'Config backup, off the node',
  summary: 'An encrypted backup of /etc/pve (its database), the network, SSH, APT and this baseline, copied off the node, read back and restore-drilled, weekly.',
  scope: 'node',
  risk: 'safe',

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node (its config.db)'),

  probe,

  questions: [
    ask.select({
      id: 'destination',
      prompt: 'Where does the backup go, off this node?',
      help: 'The only copy must never be on the node itself. The archive is encrypted before it leaves.',
      choices: [
        { value: 'sftp', label: 'A backup host over SFTP', hint: 'its host key is shown and pinned' },
        { value: 'path', label: 'A mounted directory', hint: 'NFS, CIFS, a USB disk: not the node\'s own disk' },
      ],
      detect: () => 'sftp',
    }),
    ask.text({ id: 'host', prompt: 'Backup host (name or IPv4 address)', when: sftp, maxLength: 253, check: (v) => (HOSTNAME.test(v) || IPV4.test(v) ? undefined : 'wants a host name or an IPv4 address') }),
    ask.integer({ id: 'port', prompt: 'Its SSH port', when: sftp, min: 1, max: 65535, detect: () => 22 }),
    ask.text({ id: 'user', prompt: 'The user pve-baseline logs in as there', when: sftp, maxLength: 32, detect: () => 'pve-backup', check: (v) => (USER.test(v) ? undefined : 'wants a user name (a-z, 0-9, _ and -)') }),
    ask.text({
      id: 'remote_dir',
      prompt: 'Directory on the backup host (relative to the login\'s home or chroot)',
      when: sftp,
      maxLength: 200,
      detect: (facts) => `pve-config/${facts.node}`,
      check: (v) => (REMOTE_DIR.test(v) && !v.split('/').includes('..') ? undefined : 'wants a path of letters, digits, . _ - and /, without ..'),
    }),
    ask.text({
      id: 'host_key',
      prompt: "The backup host's SSH key fingerprint (SHA256:...), or fetch to read it from the host and compare it",
      help: 'On the backup host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub. It is pinned: a host that later shows another key is refused.',
      when: sftp,
      maxLength: 60,
      detect: () => 'fetch',
      resolve: async (value, ctx, answers) => {
        if (value !== 'fetch') return value;
        // Read now and pinned only once a person compared it (the details below).
        if (ctx.from !== 'typed') return { problem: 'an answers file must give the fingerprint itself (SHA256:...): a key read from the host now would be trusted unseen' };
        return fetchHostKey(answers);
      },
      check: (v) => (FINGERPRINT.test(v) ? undefined : "wants the host key's SHA256 fingerprint, as ssh-keygen -lf prints it (SHA256: and 43 characters)"),
      details: async (value): Promise<AnswerDetails> => ({
        title: 'The backup host presents this key; it is pinned from now on',
        items: [{ heading: 'Host key', fields: [['fingerprint', value]], warning: 'Compare it with ssh-keygen -lf on the backup host itself before you accept it.' }],
      }),
    }),
    ask.text({
      id: 'key_file',
      prompt: 'The SSH key pve-baseline logs in with (its .pub goes into the backup user\'s authorized_keys)',
      when: sftp,
      maxLength: 200,
      detect: (facts) => facts.rootKeys[0]?.path,
      check: (v) => (v.startsWith('/') ? undefined : 'wants an absolute path to a private key with its .pub beside it'),
      details: async (value, ctx): Promise<AnswerDetails> => {
        const pub = (await ctx.files.read(`${value}.pub`))?.trim();
        return {
          title: 'Authorize this key on the backup host before the first backup runs',
          items: [{ heading: value, fields: [['public key', pub ?? `(no ${value}.pub)`]], ...(pub ? {} : { warning: `make one: ssh-keygen -t ed25519 -f ${value}` }) }],
        };
      },
    }),
    ask.text({ id: 'path', prompt: 'The mounted directory the archives go to', when: (a) => a.destination === 'path', maxLength: 200, check: (v) => (v.startsWith('/') && !v.split('/').includes('..') ? undefined : 'wants an absolute path without ..') }),
    ask.text({
      id: 'recipient',
      prompt: 'Encrypt to (an age recipient age1..., or an SSH public key), or Enter to make an identity kept on this node',
      help: 'With a recipient of yours, only you can open the archives (drills then need --identity). A made identity is kept on the node for the drills, and must also be kept off it.',
      maxLength: 800,
      detect: () => 'generate',
      check: (v) => (v === 'generate' || isRecipient(v) ? undefined : 'wants an age recipient (age1...), an ssh-ed25519 or ssh-rsa public key, or "generate"'),
    }),
    ask.integer({ id: 'keep', prompt: 'Archives to keep, here and at the destination', min: 1, max: 365, detect: () => 7 }),
    ask.select({
      id: 'schedule',
      prompt: 'How often',
      choices: [
        { value: 'weekly', label: 'Weekly', hint: 'and after every pve-baseline apply' },
        { value: 'daily', label: 'Daily' },
      ],
      detect: () => 'weekly',
    }),
  ],

  preflight(facts, answers) {
    if (answers.destination !== 'sftp') return [];
    const key = facts.rootKeys.find((k) => k.path === answers.key_file);
    return [{ label: `the SSH key ${answers.key_file} has its public half beside it`, ok: key !== undefined, ...(key ? {} : { detail: `no ${answers.key_file} with a .pub among root's keys: make one with ssh-keygen -t ed25519 -f ${answers.key_file}` }) }];
  },

  plan(facts, answers) {
    const changes: Change[] = [];
    const missing = [...(facts.age ? [] : ['age']), ...(facts.sqlite3 ? [] : ['sqlite3'])];
    if (missing.length) {
      changes.push({ kind: 'command', argv: ['apt-get', 'install', '-y', ...missing], reason: `${missing.join(' and ')} from the node's own repositories: age encrypts (and opens) the archives as anyone can without pve-baseline; sqlite3 copies config.db consistently` });
    }
    if (answers.recipient === 'generate' && !facts.identity) {
      if (!facts.backupDir) changes.push({ kind: 'command', argv: ['install', '-d', '-m', '0700', BACKUP_DIR], reason: 'where the identity, the archives and the last result are kept (root only)' });
      changes.push({
        kind: 'command',
        argv: ['age-keygen', '-o', IDENTITY_FILE],
        writes: [{ path: IDENTITY_FILE, before: null, unshown: 'a new age identity (secret)' }],
        reason: `an age identity to encrypt to, kept in ${IDENTITY_FILE} (0600) for the drills; COPY IT OFF THE NODE (a password manager): without it no archive opens`,
      });
    }
    const settings = renderSettings(settingsFor(answers));
    if (facts.settings !== settings) changes.push({ kind: 'file', path: SETTINGS_FILE, before: facts.settings, after: settings, mode: 0o600, owner: { uid: 0, gid: 0 }, reason: `what pve-baseline backup does: ${describeDestination(settingsFor(answers).destination)}, keep ${answers.keep}, ${answers.schedule}` });
    const units = backupUnits(facts.program, answers.schedule);
    const unitsChanged = facts.service !== units.service || facts.timer !== units.timer;
    if (facts.service !== units.service) changes.push({ kind: 'file', path: SERVICE_FILE, before: facts.service, after: units.service, mode: 0o644, owner: { uid: 0, gid: 0 }, reason: 'the unit that runs pve-baseline backup' });
    if (facts.timer !== units.timer) changes.push({ kind: 'file', path: TIMER_FILE, before: facts.timer, after: units.timer, mode: 0o644, owner: { uid: 0, gid: 0 }, reason: `runs it ${answers.schedule} (a run missed while the node was off happens at the next boot)` });
    if (unitsChanged) changes.push({ kind: 'command', argv: ['systemctl', 'daemon-reload'], reason: 'systemd reads the new units' });
    if (unitsChanged || !facts.timerEnabled || !facts.timerActive) changes.push({ kind: 'command', argv: ['systemctl', 'enable', '--now', TIMER], undo: ['systemctl', 'disable', '--now', TIMER], reason: 'the timer on from now and after every boot' });
    if (changes.length || !facts.status?.last.ok) {
      const why = facts.status && !facts.status.last.ok ? `the last run (${facts.status.last.at}) failed: ${facts.status.last.error ?? 'unknown'}; a backup now` : 'the first backup now';
      changes.push({ kind: 'command', argv: [facts.program, 'backup'], log: 'config-backup', reason: `${why}: archived, encrypted, copied off the node, read back and drilled, so the setup is proven before it is left to the timer` });
    }
    return changes;
  },

  async verify(ctx, answers) {
    const facts = await probe(ctx);
    const settings = renderSettings(settingsFor(answers));
    const units = backupUnits(facts.program, answers.schedule);
    const checks: Check[] = [
      { label: `${SETTINGS_FILE} holds what the baseline intends`, ok: facts.settings === settings, ...(facts.settings === null ? { detail: 'missing' } : facts.settings !== settings ? { detail: 'differs (changed by hand?)' } : {}) },
      { label: `${TIMER} is enabled and waiting`, ok: facts.timerEnabled && facts.timerActive && facts.timer === units.timer && facts.service === units.service, ...(facts.timerEnabled && facts.timerActive ? {} : { detail: `enabled: ${facts.timerEnabled}, active: ${facts.timerActive}` }) },
    ];
    return [...checks, ...statusChecks(facts.status, answers.schedule, new Date())];
  },

  async document(ctx) {
    const text = await ctx.files.read(SETTINGS_FILE);
    if (!text) return undefined;
    let settings: BackupSettings;
    try {
      settings = parseSettings(text);
    } catch {
      return undefined;
    }
    return backupSection(settings, await readStatus(ctx.files, STATE_DIR), ctx.node.hostname);
  },
};

/** The last run, as verify and check judge it: it ran, recently, and its copy and drill passed. */
export function statusChecks(status: BackupStatus | null, schedule: BackupSettings['schedule'], now: Date): Check[] {
  if (!status) return [{ label: 'a backup has run', ok: false, detail: 'none yet: pve-baseline backup' }];
  const last = status.last;
  const limit = staleAfterDays(schedule);
  const checks: Check[] = [
    { label: 'the last backup run succeeded', ok: last.ok, ...(last.ok ? { detail: `${last.at}: ${last.archive?.name ?? ''}` } : { detail: `${last.at}: ${last.error ?? 'failed'}${status.lastGood ? `; the last good one: ${status.lastGood.at}` : ''}` }) },
    { label: `the last good backup is recent (${limit} days at most)`, ok: !!status.lastGood && (now.getTime() - Date.parse(status.lastGood.at)) / 86_400_000 <= limit, ...(status.lastGood ? { detail: `${status.lastGood.at}` } : { detail: 'no good backup yet' }) },
  ];
  if (last.copy) checks.push({ label: `copied off the node (${last.copy.where})`, ok: last.copy.ok, ...(last.copy.detail ? { detail: last.copy.detail } : {}) });
  if (last.drill) checks.push({ label: `the restore drill of the ${last.drill.source} copy passed`, ok: last.drill.ok, ...(last.drill.ok ? {} : { detail: last.drill.checks.filter((c) => !c.ok).map((c) => `${c.label}${c.detail ? `: ${c.detail}` : ''}`).join('; ') }) });
  return checks;
}

/** The document's section: what is backed up, where, the last archive, and how to restore it without pve-baseline. */
export function backupSection(settings: BackupSettings, status: BackupStatus | null, node: string): DocumentSection {
  const good = status?.lastGood;
  const where = describeDestination(settings.destination);
  const identity = settings.identityFile ? `the age identity in ${code(settings.identityFile)} (and its copy off the node)` : 'your age identity (the archives are encrypted to your recipient)';
  return {
    heading: 'Config backup and restore',
    blocks: [
      paragraph(
        `pve-baseline backs up this node's configuration ${settings.schedule}, and after every apply: a consistent copy of ${code('/var/lib/pve-cluster/config.db')} (SQLite's online backup, integrity-checked), the ${code('/etc/pve')} files, the network, SSH host keys, APT, and this baseline's own files, with a manifest of every file's SHA-256. The archive is encrypted with age, kept here (the last ${settings.keep}) and copied to ${code(where)}, read back and compared, and drilled: decrypted, every checksum checked, the database integrity-checked, and user.cfg, storage.cfg and the firewall files read from the database and compared with the live node.`,
      ),
      table(
        ['', ''],
        [
          ['last good archive', good?.archive ? code(good.archive.name) : 'none yet'],
          ['taken', good?.at ?? ''],
          ['SHA-256 (encrypted file)', good?.archive ? code(good.archive.sha256) : ''],
          ['kept at', good?.archive ? `${code(path.dirname(good.archive.path))} and ${code(where)}` : code(where)],
          ['opens with', identity],
        ],
      ),
      paragraph('Restore without pve-baseline (single node; proxmox-steps.md B.7, the pmxcfs recovery procedure):'),
      numbered([
        `${code(`age -d -i IDENTITY ARCHIVE | tar -xz -C /root/restore`)}, then ${code('cd /root/restore && sha256sum -c SHA256SUMS')}`,
        `${code('sqlite3 config.db "PRAGMA integrity_check"')} must print ${code('ok')}`,
        `on the (re)installed node, with nothing running on it: ${code('systemctl stop pve-cluster')}; ${code('install -m 0600 config.db /var/lib/pve-cluster/config.db')}`,
        `put back ${code('/etc/hostname')} and ${code('/etc/hosts')} from ${code('files/')} (the node must have its old name: its /etc/pve/nodes/${node} is in the database), and ${code('/etc/network/interfaces')} if the hardware is the same`,
        `${code('reboot')}, then check ${code('pvecm status')} (if clustered), ${code('pveum user list')}, the firewall, and the guests' disks (not in this backup)`,
      ]),
      paragraph(
        `In a cluster, never put an older config.db under a live member: it would diverge from the others. Restore single files from ${code('files/etc/pve')} with pvesh or by hand, or remove the node from the cluster and join it again.`,
      ),
    ],
  };
}
