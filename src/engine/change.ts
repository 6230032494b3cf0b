/**
 * The Change model: what a step intends to do, as plain data. The plan
 * preview, the dry run, headless mode, the journal and the document are all
 * rendered from these objects, so a change must say everything the operator
 * needs to judge it: the file before and after, the exact argv, and why.
 */
import { createTwoFilesPatch } from 'diff';
import type { Secret } from '../system/secret.ts';
import type { Scope } from './step.ts';

/**
 * Every change may say whose it is (`scope`), when that differs from its
 * step's: in a cluster /etc/pve is shared, so a datacenter step's change is
 * everybody's, except one that writes a node's own file (the firewall's
 * `pvesh set /nodes/NODE/firewall/options`, which writes that node's host.fw).
 * Absent: the step's scope (src/engine/datacenter.ts changeScope).
 */
interface Scoped {
  scope?: Scope;
}

export interface FileOwner {
  uid: number;
  gid: number;
}

/** Write (or delete, when `after` is null) one file. */
export interface FileChange extends Scoped {
  kind: 'file';
  path: string;
  /** Content before the change; null when the file does not exist. */
  before: string | null;
  /** Content after the change; null deletes the file. */
  after: string | null;
  /** Mode for a new file (an existing file keeps its own). */
  mode?: number;
  /** Owner for a new file (an existing file keeps its own). */
  owner?: FileOwner;
  /**
   * The change goes live the moment the file is written (a daemon watches
   * it, e.g. the Proxmox firewall's files, or PAM reads it at the next
   * login). In a guarded plan its checks then run before the write.
   */
  activates?: true;
  reason: string;
}

/**
 * A file a command writes through a program that owns it (pvesh writing
 * /etc/pve/firewall/cluster.fw under Proxmox's lock): the preview shows it as
 * a diff, the engine backs it up before the command and refuses to run the
 * command when the file changed since the plan was made, and a revert puts it
 * back byte for byte. `after` is what the program is expected to write.
 */
export interface CommandWrite {
  path: string;
  before: string | null;
  /** What the program is expected to write; absent when it cannot be known or must not be shown (see `unshown`). */
  after?: string | null;
  /** Why the content is not shown (it holds secrets, or the program makes it up): the preview names the file and this. */
  unshown?: string;
}

/** Run one program with an argument array; never a shell. */
export interface CommandChange extends Scoped {
  kind: 'command';
  argv: string[];
  /** The files the command writes (see CommandWrite). */
  writes?: CommandWrite[];
  /** The command makes the change live (e.g. `pvesh set /cluster/firewall/options --enable 1`); see FileChange.activates. */
  activates?: true;
  /** Standard input, e.g. `chpasswd`'s "name:password" line. Never journaled. */
  input?: Secret;
  /**
   * Values to hide wherever the command's output goes, besides each line of
   * `input` (e.g. the password alone, in case a program echoes just that).
   */
  hide?: Secret[];
  /** The argv that undoes it, run on rollback (in reverse order). */
  undo?: string[];
  /**
   * The command reports its progress on fd 3 in a format the engine reads:
   * 'apt' for apt-get's `-o APT::Status-Fd=3` (overall percent, the package
   * being unpacked or configured, configuration files kept).
   */
  progress?: 'apt';
  /**
   * Keep the command's whole output in `<state>/logs/<log>-<apply id>.log`
   * (mode 0600), for a long one whose output the screen shows only the tail
   * of (an upgrade): its end is in the failure message, the rest there.
   */
  log?: string;
  /**
   * The command finishes even if pve-baseline does not (a dropped SSH
   * session, a killed wizard): cutting dpkg off half-way would leave
   * packages broken. It writes straight into its log (so `log` is required,
   * and `input`, whose secret could reach the file, is not allowed), the
   * journal names it while it runs, and the next run waits for it if it
   * still runs and says how it ended (src/engine/runner.ts).
   */
  survivesExit?: true;
  /**
   * A field of the command's JSON output to show once and never keep (a new
   * API token's secret from `pveum user token add --output-format json`):
   * the output then reaches neither the log nor an error message.
   */
  reveal?: Reveal;
  reason: string;
}

/**
 * A value a change hands out exactly once (recovery keys, a token's secret):
 * the wizard shows it and waits until the operator says it is written down;
 * `saveTo` also writes it to a file of the operator's (mode 0600), which is
 * how an unattended run may make it. Without `saveTo`, headless, the step
 * cannot run.
 */
export interface Reveal {
  /** The response field that holds it (a string, or a list of strings). */
  field: string;
  title: string;
  advice: string;
  /** The file (mode 0600, root's) and its one line, with `{value}` where the value goes (e.g. `PVEAPIToken=svc@pve!ci={value}`). */
  saveTo?: { path: string; line: string };
}

/**
 * One call of the Proxmox API (/api2/json), made as a user who logs in with
 * their password: for what Proxmox lets only the user themselves do, or
 * where the values are secrets that must not appear in a process list
 * (a TOTP secret, a password). Secrets travel in the HTTPS body only.
 */
export interface ApiChange extends Scoped {
  kind: 'api';
  method: 'POST' | 'PUT' | 'DELETE';
  /** Under /api2/json, e.g. /access/tfa/alice@pam. */
  path: string;
  /** Body parameters; a Secret is sent but never shown, journaled or logged. */
  params: Record<string, string | Secret>;
  /** Who makes the call (logged in with this password, no second factor yet). */
  as: { user: string; password: Secret };
  /** The files the call writes (see CommandWrite): backed up, shown as diffs, restored by a revert. */
  writes?: CommandWrite[];
  /** The call makes the change live (see FileChange.activates). */
  activates?: true;
  /** A field of the response to show once and never keep (see Reveal). */
  reveal?: Reveal;
  reason: string;
}

export type ServiceAction = 'reload' | 'restart' | 'start' | 'stop' | 'enable' | 'disable';

export interface ServiceChange extends Scoped {
  kind: 'service';
  unit: string;
  action: ServiceAction;
  reason: string;
}

export type Change = FileChange | CommandChange | ServiceChange | ApiChange;

/** Whether a change goes live the moment it is applied (a file, command or API call marked `activates`). */
export function isActivating(change: Change): boolean {
  return change.kind !== 'service' && change.activates === true;
}

/** Every file a change writes: a file change's own path, or the files a command or an API call declares. */
export function writtenPaths(change: Change): string[] {
  if (change.kind === 'file') return [change.path];
  if (change.kind === 'command' || change.kind === 'api') return (change.writes ?? []).map((w) => w.path);
  return [];
}

/** A command's or an API call's declared writes as file changes, for the diffs a preview shows. */
export function commandWriteDiffs(change: CommandChange | ApiChange): FileChange[] {
  return (change.writes ?? []).filter((w) => !w.unshown && w.after !== undefined).map((w) => ({ kind: 'file', path: w.path, before: w.before, after: w.after ?? null, reason: change.reason }));
}

/** The declared writes whose content is not shown, one line each: "writes /etc/pve/priv/tfa.cfg (not shown: it holds secrets)". */
export function unshownWrites(change: CommandChange | ApiChange): string[] {
  return (change.writes ?? []).filter((w) => w.unshown || w.after === undefined).map((w) => `writes ${w.path} (not shown: ${w.unshown ?? 'the program decides its content'})`);
}

/** An API call as one line: `POST /api2/json/access/tfa/alice@pam as alice@pam`. */
export function describeApiCall(change: ApiChange): string {
  return `${change.method} /api2/json${change.path} as ${change.as.user}`;
}

/** An API call's parameters as the preview shows them: secrets as [secret]. */
export function apiParamsText(change: ApiChange): string {
  return Object.entries(change.params)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? quoteArg(v) : '[secret]'}`)
    .join(' ');
}

/** What a change reveals, if anything. */
export function revealOf(change: Change): Reveal | undefined {
  return change.kind === 'command' || change.kind === 'api' ? change.reveal : undefined;
}

/** How the preview says what a change reveals: "shows its value once, in the wizard; never kept" (or where it is saved). */
export function describeReveal(reveal: Reveal): string {
  return reveal.saveTo
    ? `shows its ${reveal.field} once, in the wizard, and writes it to ${reveal.saveTo.path} (mode 0600); nothing else keeps it`
    : `shows its ${reveal.field} once, in the wizard; never kept`;
}

/** The service action that undoes another, when there is one. */
export function inverseServiceAction(action: ServiceAction): ServiceAction {
  switch (action) {
    case 'start':
      return 'stop';
    case 'stop':
      return 'start';
    case 'enable':
      return 'disable';
    case 'disable':
      return 'enable';
    default:
      return action; // reload/restart after a restore re-applies the old config
  }
}

/** The argv a service change runs. */
export function serviceArgv(change: ServiceChange): string[] {
  return ['systemctl', change.action, change.unit];
}

/** One short line, the way the step list and headless mode show a change. */
export function describeChange(change: Change): string {
  switch (change.kind) {
    case 'file':
      if (change.before === null) return `create ${change.path}`;
      if (change.after === null) return `delete ${change.path}`;
      return `edit ${change.path}`;
    case 'command':
      return `run ${formatArgv(change.argv)}${change.input ? ' (with input on stdin)' : ''}`;
    case 'service':
      return `${change.action} ${change.unit}`;
    case 'api':
      return `call ${describeApiCall(change)}`;
  }
}

/** Terraform-style action symbol: + create, ~ change, - delete, > run. */
export function changeSymbol(change: Change): '+' | '~' | '-' | '>' {
  if (change.kind === 'file') {
    if (change.before === null) return '+';
    if (change.after === null) return '-';
    return '~';
  }
  return change.kind === 'service' ? '~' : '>';
}

/** Quote an argv for display the way a POSIX shell user would read it. Display only. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map(quoteArg).join(' ');
}

function quoteArg(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Unified diff of a file change (jsdiff), with /dev/null for a missing side. */
export function unifiedDiff(change: FileChange, context = 3): string {
  const oldName = change.before === null ? '/dev/null' : `a${change.path}`;
  const newName = change.after === null ? '/dev/null' : `b${change.path}`;
  const patch = createTwoFilesPatch(oldName, newName, change.before ?? '', change.after ?? '', undefined, undefined, {
    context,
  });
  // Drop jsdiff's "Index:"/"====" preamble: operators know the git/diff -u form.
  return patch
    .split('\n')
    .filter((line) => !line.startsWith('Index: ') && !/^={10,}$/.test(line))
    .join('\n')
    .trimEnd();
}

/**
 * What a guarded plan's revert will do, one line each, for every place a plan
 * is shown (the wizard's preview, headless output, a dry run).
 */
export function describeGuard(guard: { windowSeconds: number; activation: 'on-write' | 'on-reload'; revertRuns: string[][]; cleanup: string[][]; lastResort?: string[][] }): string[] {
  const runs = guard.revertRuns.map(formatArgv).join('; ');
  return [
    `Under a revert the node owns: unless you prove access from a new session within ${guard.windowSeconds} s, the node puts every file back${runs ? ` and runs ${runs}` : ''}, even if this session drops or the node reboots.`,
    ...(guard.lastResort?.length ? [`Should a file not go back, the revert runs ${guard.lastResort.map(formatArgv).join('; ')} as a last resort.`] : []),
    guard.activation === 'on-write'
      ? 'Live as soon as it is applied: its checks run before the change that makes it live.'
      : 'Live when the service reloads: its checks run on the written files before the reload.',
    ...(guard.cleanup.length ? [`The revert also tidies: ${guard.cleanup.map(formatArgv).join('; ')}`] : []),
  ];
}

/** Counts for a Terraform-like summary line. */
export function summarize(changes: readonly Change[]): { create: number; change: number; remove: number; run: number; services: number } {
  const counts = { create: 0, change: 0, remove: 0, run: 0, services: 0 };
  for (const c of changes) {
    if (c.kind === 'service') {
      counts.services++;
      continue;
    }
    const s = changeSymbol(c);
    if (s === '+') counts.create++;
    else if (s === '-') counts.remove++;
    else if (s === '~') counts.change++;
    else counts.run++;
  }
  return counts;
}

/** "Plan: 1 to create, 2 to change, 1 command to run." in Terraform's manner. */
export function planSummaryLine(changes: readonly Change[]): string {
  const c = summarize(changes);
  const parts = [
    c.create ? `${c.create} to create` : '',
    c.change ? `${c.change} to change` : '',
    c.remove ? `${c.remove} to delete` : '',
    c.run ? `${c.run} command${c.run > 1 ? 's' : ''} to run` : '',
    c.services ? `${c.services} service action${c.services > 1 ? 's' : ''}` : '',
  ].filter(Boolean);
  return `Plan: ${parts.join(', ')}.`;
}
