/**
 * apt's machine-readable progress, for an upgrade you can watch. Pure: no
 * process is run here; the caller feeds what apt writes.
 *
 *   status lines  what apt writes to APT::Status-Fd (apt's README.progress-reporting; the code that
 *                 writes them: apt-pkg/acquire.cc pkgAcquireStatus::Pulse for dlstatus,
 *                 apt-pkg/install-progress.cc PackageManagerProgressFd for pmstatus, pmerror and
 *                 pmconffile, apt-pkg/acquire-worker.cc Worker::MediaChange for media-change):
 *                   dlstatus:<item>:<percent>:<description>
 *                   pmstatus:<package>:<percent>:<description>
 *                   pmerror:<package or .deb>:<percent>:<message>
 *                   pmconffile:<conffile>:<percent>:'<current>' '<new>' <useredited> <distedited>
 *                   media-change: <media>:<drive>:<message>
 *   parser        fed arbitrary chunks (a line may arrive in pieces, a UTF-8 character split
 *                 between two reads), giving a progress model: phase, overall percent (never
 *                 going back), the package and what dpkg does with it, the download's own line,
 *                 the configuration files dpkg asked about, and the errors
 *                 (the engine reports it, src/engine/apply.ts; headless output throttles it,
 *                 src/cli/plain-output.ts)
 *   argv          the real upgrade (status on fd 3) and the simulation before it
 *   simulation    `apt-get -s dist-upgrade`: Inst, Conf, Remv and Purg lines into lists, and the
 *                 refusal when a core Proxmox package would be removed
 *
 * The descriptions are apt's English texts: every command runs with LC_ALL=C.UTF-8
 * (src/system/exec.ts), so apt does not translate them.
 */
import { StringDecoder } from 'node:string_decoder';

// --- the argv -------------------------------------------------------------------------------------

/**
 * The descriptor apt writes its status to. execa 9 gives a child more pipes than the
 * usual three (`stdio: ['ignore', 'pipe', 'pipe', 'pipe']`, then `subprocess.stdio[3]`
 * is a readable stream; test/unit/apt-progress.test.ts proves it with a real child),
 * so the status stays apart from dpkg's own output. apt marks the descriptor
 * close-on-exec before it starts dpkg (install-progress.cc StartDpkg), so maintainer
 * scripts never inherit it.
 */
export const STATUS_FD = 3;

/**
 * The supervised upgrade, as `pveupgrade` and Proxmox's documentation run it
 * (dist-upgrade: a Proxmox release adds and drops dependencies, which `upgrade` would hold
 * back), with:
 *   APT::Status-Fd        the machine-readable progress on its own descriptor
 *   Dpkg::Use-Pty=0       dpkg's output as plain lines, without the pseudo-terminal apt
 *                         otherwise opens for its progress bar
 *   --force-confdef       a configuration file the operator did not change takes the new
 *                         version silently (dpkg's default answer)
 *   --force-confold       one the operator changed is kept, the new one left beside it as
 *                         FILE.dpkg-dist; dpkg reports each on the status channel (pmconffile)
 *   -y                    no question on a terminal nobody watches
 * The commands' environment adds DEBIAN_FRONTEND=noninteractive (src/system/exec.ts).
 */
export function distUpgradeArgv(statusFd: number = STATUS_FD): string[] {
  if (!Number.isInteger(statusFd) || statusFd < 1) throw new Error(`the status descriptor must be a positive integer (apt ignores 0 and below), not ${statusFd}`);
  return ['apt-get', '-o', `APT::Status-Fd=${statusFd}`, '-o', 'Dpkg::Use-Pty=0', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', '-y', 'dist-upgrade'];
}

/** What the upgrade would do, without doing it: apt prints one Inst, Conf, Remv or Purg line per step. */
export function simulateArgv(): string[] {
  return ['apt-get', '-s', 'dist-upgrade'];
}

// --- one status line --------------------------------------------------------------------------------

export type StatusLine =
  | { kind: 'dlstatus'; item: number; percent: number; description: string }
  | { kind: 'pmstatus'; package: string; percent: number; description: string }
  | { kind: 'pmerror'; package: string; percent: number; message: string }
  | { kind: 'pmconffile'; conffile: string; percent: number; current: string; new: string; userEdited: boolean; distEdited: boolean; raw: string }
  | { kind: 'media-change'; media: string; drive: string; message: string }
  | { kind: 'unknown'; line: string };

const PREFIXES = ['dlstatus', 'pmstatus', 'pmerror', 'pmconffile'] as const;
/**
 * apt writes the percent with std::fixed and precision 4 ("12.5000"); older apt wrote plain
 * numbers ("20"), and README.progress-reporting's pmerror example has spaces and a "%" (" 75% ").
 */
const NUMBER = /^\s*\d+(?:\.\d+)?%?\s*$/;

const clampPercent = (n: number) => (Number.isFinite(n) ? Math.min(100, Math.max(0, n)) : 0);

/**
 * `<prefix>:<who>:<percent>:<text>`. The text may hold colons (a dpkg error such as
 * "failed in buffer_write(fd) (10, ret=-1): ..."), and so may <who> (pmerror and
 * pmconffile pass dpkg's name on as it came, "libfoo:amd64"): <who> ends at the first
 * field that is a number, which no package name or path apt sends here is.
 */
function splitFields(rest: string): { who: string; percent: number; text: string } | undefined {
  const fields = rest.split(':');
  for (let i = 1; i < fields.length - 1; i++) {
    if (NUMBER.test(fields[i]!)) return { who: fields.slice(0, i).join(':'), percent: clampPercent(Number(fields[i]!.trim().replace('%', ''))), text: fields.slice(i + 1).join(':') };
  }
  return undefined;
}

/** dpkg's conffile-prompt text as apt passes it on: `'current' 'new' useredited distedited ` (dpkg promptconfaction). */
function parseConffileText(text: string): { current: string; new: string; userEdited: boolean; distEdited: boolean } | undefined {
  const m = /^\s*'([^']*)'\s+'([^']*)'\s+(-?\d+)\s+(-?\d+)\s*$/.exec(text);
  if (!m) return undefined;
  return { current: m[1]!, new: m[2]!, userEdited: m[3] === '1', distEdited: m[4] === '1' };
}

/** One line of the status channel, without its line break. */
export function parseStatusLine(line: string): StatusLine {
  const text = line.replace(/\r?\n$/, '');
  if (text.startsWith('media-change:')) {
    // "media-change: " << Media << ":" << Drive << ":" << message (acquire-worker.cc)
    const [media = '', drive = '', ...message] = text.slice('media-change:'.length).trimStart().split(':');
    return { kind: 'media-change', media, drive, message: message.join(':') };
  }
  const colon = text.indexOf(':');
  const prefix = colon > 0 ? text.slice(0, colon) : '';
  if (!(PREFIXES as readonly string[]).includes(prefix)) return { kind: 'unknown', line: text };
  const fields = splitFields(text.slice(colon + 1));
  if (!fields) return { kind: 'unknown', line: text };
  switch (prefix as (typeof PREFIXES)[number]) {
    case 'dlstatus': {
      const item = Number(fields.who);
      return Number.isInteger(item) ? { kind: 'dlstatus', item, percent: fields.percent, description: fields.text } : { kind: 'unknown', line: text };
    }
    case 'pmstatus':
      return { kind: 'pmstatus', package: fields.who, percent: fields.percent, description: fields.text };
    case 'pmerror':
      return { kind: 'pmerror', package: fields.who.trim(), percent: fields.percent, message: fields.text.trim() };
    case 'pmconffile': {
      const c = parseConffileText(fields.text);
      return c ? { kind: 'pmconffile', conffile: fields.who.trim(), percent: fields.percent, ...c, raw: fields.text.trim() } : { kind: 'unknown', line: text };
    }
  }
}

// --- what dpkg is doing -------------------------------------------------------------------------------

export type Verb = 'unpack' | 'configure' | 'remove' | 'trigger' | 'dpkg' | 'other';

/**
 * apt's descriptions, longest first so "Preparing to configure" is not read as "Preparing"
 * (apt-pkg/deb/dpkgpm.cc: PackageProcessingOps and BuildPackagesProgressMap).
 */
const DESCRIPTIONS: [prefix: string, verb: Verb][] = [
  ['Running post-installation trigger ', 'trigger'],
  ['Preparing to completely remove ', 'remove'],
  ['Preparing for removal of ', 'remove'],
  ['Preparing to configure ', 'configure'],
  ['Noting disappearance of ', 'remove'],
  ['Completely removing ', 'remove'],
  ['Completely removed ', 'remove'],
  ['Configuring ', 'configure'],
  ['Installed ', 'configure'],
  ['Installing ', 'unpack'],
  ['Unpacking ', 'unpack'],
  ['Preparing ', 'unpack'],
  ['Removing ', 'remove'],
  ['Running dpkg', 'dpkg'],
];

export function verbOf(description: string): Verb {
  return DESCRIPTIONS.find(([prefix]) => description.startsWith(prefix))?.[1] ?? 'other';
}

/** The package name apt puts in pmstatus for the moment it starts dpkg ("Running dpkg"): not a package. */
const DPKG_EXEC = 'dpkg-exec';

// --- the progress model ----------------------------------------------------------------------------------

export type Phase = 'download' | 'install';

export interface ConffileReport {
  conffile: string;
  /** The package being configured when dpkg reported it (pmconffile names the file, not its package). */
  package?: string;
  userEdited: boolean;
  distEdited: boolean;
  /** What --force-confdef with --force-confold makes dpkg do (dpkg show_prompt). */
  outcome: 'kept-local' | 'took-new';
}

export interface AptError {
  package: string;
  message: string;
}

export interface AptProgress {
  phase: Phase;
  /** The whole run, 0 to 100, never going back. */
  percent: number;
  /** apt's own figures for each phase. */
  downloadPercent: number;
  installPercent: number;
  /** The package dpkg works on now, and what it does ("Unpacking pve-manager (amd64)"), as apt says it. */
  package?: string;
  action?: string;
  verb?: Verb;
  /** The download's own line ("Retrieving file 3 of 12 (4s remaining)"). */
  download?: string;
  /** Packages dpkg finished configuring ("Installed X"), in order. */
  installed: string[];
  conffiles: ConffileReport[];
  errors: AptError[];
  /** apt asked for a disc (a cdrom source): nobody can answer it here. */
  mediaChange?: string;
  /** Status lines read, and those not understood (kept for the log, never fatal). */
  lines: number;
  unknown: string[];
  done: boolean;
  exitCode?: number;
}

export interface ParserOptions {
  /**
   * The share of the overall percent given to the download when there is one
   * (default 0.2): a node's upgrade mostly waits on dpkg, not the network. With no
   * download at all (everything cached), the install takes the whole range.
   */
  downloadShare?: number;
}

const DEFAULT_DOWNLOAD_SHARE = 0.2;
const MAX_UNKNOWN_KEPT = 20;
/** A line this long without a break is not apt's: it is cut, so a stray stream cannot grow memory without bound. */
const MAX_LINE = 64 * 1024;

/**
 * Reads apt's status channel as it arrives. `feed` takes any chunk (Buffer or string)
 * and returns the complete lines it held, parsed; `end` reads what is left without a
 * line break; `finish` records apt's exit.
 */
export class AptStatusParser {
  readonly #decoder = new StringDecoder('utf8');
  readonly #share: number;
  #pending = '';
  #downloadSeen = false;
  readonly #state: AptProgress = { phase: 'download', percent: 0, downloadPercent: 0, installPercent: 0, installed: [], conffiles: [], errors: [], lines: 0, unknown: [], done: false };

  constructor(options: ParserOptions = {}) {
    const share = options.downloadShare ?? DEFAULT_DOWNLOAD_SHARE;
    if (!(share >= 0 && share < 1)) throw new Error(`downloadShare must be from 0 to below 1, not ${share}`);
    this.#share = share;
  }

  /** A copy of the model as it is now. */
  get progress(): AptProgress {
    const s = this.#state;
    return { ...s, installed: [...s.installed], conffiles: s.conffiles.map((c) => ({ ...c })), errors: s.errors.map((e) => ({ ...e })), unknown: [...s.unknown] };
  }

  feed(chunk: string | Uint8Array): StatusLine[] {
    this.#pending += typeof chunk === 'string' ? chunk : this.#decoder.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    const parts = this.#pending.split('\n');
    this.#pending = parts.pop() ?? '';
    if (this.#pending.length > MAX_LINE) {
      parts.push(this.#pending.slice(0, MAX_LINE));
      this.#pending = '';
    }
    return parts.map((p) => this.#apply(p));
  }

  /** The channel closed: a last line without its line break still counts. */
  end(): StatusLine[] {
    const rest = this.#pending + this.#decoder.end();
    this.#pending = '';
    return rest.trim() ? [this.#apply(rest)] : [];
  }

  /** apt exited: with 0 the run is complete, whatever the last status said. */
  finish(exitCode: number): AptProgress {
    this.end();
    const s = this.#state;
    s.done = true;
    s.exitCode = exitCode;
    if (exitCode === 0) {
      s.percent = 100;
      if (this.#downloadSeen || s.phase === 'download') s.downloadPercent = 100;
      s.installPercent = s.phase === 'install' ? 100 : s.installPercent;
    }
    return this.progress;
  }

  #overall(): number {
    const s = this.#state;
    if (s.phase === 'download') return s.downloadPercent * this.#share;
    return this.#downloadSeen ? this.#share * 100 + s.installPercent * (1 - this.#share) : s.installPercent;
  }

  #apply(raw: string): StatusLine {
    const line = parseStatusLine(raw.replace(/\r$/, ''));
    const s = this.#state;
    if (line.kind === 'unknown' && line.line.trim() === '') return line;
    s.lines++;
    switch (line.kind) {
      case 'dlstatus':
        // A download after dpkg started does not happen in one apt run; if it did, the install's figures stand.
        if (s.phase === 'download') {
          this.#downloadSeen = true;
          s.downloadPercent = Math.max(s.downloadPercent, line.percent);
          s.download = line.description;
        }
        break;
      case 'pmstatus':
        s.phase = 'install';
        s.installPercent = Math.max(s.installPercent, line.percent);
        s.verb = verbOf(line.description);
        s.action = line.description;
        if (line.package !== DPKG_EXEC) s.package = line.package;
        else delete s.package;
        if (line.description.startsWith('Installed ') && line.package !== DPKG_EXEC && !s.installed.includes(line.package)) s.installed.push(line.package);
        break;
      case 'pmerror':
        s.errors.push({ package: line.package, message: line.message });
        break;
      case 'pmconffile':
        s.conffiles.push({
          conffile: line.conffile,
          ...(s.package ? { package: s.package } : {}),
          userEdited: line.userEdited,
          distEdited: line.distEdited,
          // conffoptcells: changed here and by the distributor means keep (the default with --force-confdef);
          // a file dpkg asks about that the operator did not change takes the new one.
          outcome: line.userEdited ? 'kept-local' : 'took-new',
        });
        break;
      case 'media-change':
        s.mediaChange = line.message || `insert ${line.media} in ${line.drive}`;
        break;
      case 'unknown':
        if (s.unknown.length < MAX_UNKNOWN_KEPT) s.unknown.push(line.line.slice(0, 200));
        break;
    }
    s.percent = Math.max(s.percent, Math.round(this.#overall() * 10) / 10);
    return line;
  }
}

/** Parse a whole captured channel at once (a log, a test fixture). */
export function parseStatusStream(text: string, exitCode?: number, options?: ParserOptions): AptProgress {
  const parser = new AptStatusParser(options);
  parser.feed(text);
  return exitCode === undefined ? (parser.end(), parser.progress) : parser.finish(exitCode);
}

// --- the simulated upgrade ---------------------------------------------------------------------------

export interface SimulatedInstall {
  package: string;
  /** The installed version; absent for a new package. */
  current?: string;
  candidate?: string;
  /** Where the candidate comes from, as apt names the releases: "Debian:13.1/stable", "Proxmox Debian Repository:stable". */
  releases: string[];
  arch?: string;
}

export interface SimulatedRemoval {
  package: string;
  current?: string;
  purge: boolean;
}

export interface Simulation {
  install: SimulatedInstall[];
  configure: { package: string; candidate?: string; broken: boolean }[];
  remove: SimulatedRemoval[];
  summary?: { upgraded: number; newlyInstalled: number; remove: number; notUpgraded: number };
  /** "The following packages have been kept back:" and its list. */
  keptBack: string[];
}

/** `Name [cur] (cand Rel1, Rel2 [arch])` as pkgSimulate::Describe prints it (apt-pkg/algorithms.cc); anything after is the simulation's notes on breaks. */
function describe(text: string): { package: string; current?: string; candidate?: string; releases: string[]; arch?: string } {
  const name = /^(\S+)/.exec(text)?.[1] ?? '';
  let rest = text.slice(name.length);
  const out: { package: string; current?: string; candidate?: string; releases: string[]; arch?: string } = { package: name, releases: [] };
  const cur = /^ \[([^\]\s]+)\]/.exec(rest);
  if (cur) {
    out.current = cur[1]!;
    rest = rest.slice(cur[0].length);
  }
  const cand = /^ \((\S+) (.*?)\)(?= \[|$)/.exec(rest) ?? /^ \((\S+) (.*)\)/.exec(rest);
  if (cand) {
    out.candidate = cand[1]!;
    let rel = cand[2]!;
    const arch = / \[([^\]]+)\]$/.exec(rel);
    if (arch) {
      out.arch = arch[1]!;
      rel = rel.slice(0, arch.index);
    }
    out.releases = rel ? rel.split(', ').filter(Boolean) : [];
  }
  return out;
}

export function parseSimulation(stdout: string): Simulation {
  const sim: Simulation = { install: [], configure: [], remove: [], keptBack: [] };
  let inKeptBack = false;
  for (const line of stdout.split('\n')) {
    if (inKeptBack) {
      if (/^\s+\S/.test(line)) {
        sim.keptBack.push(...line.trim().split(/\s+/));
        continue;
      }
      inKeptBack = false;
    }
    if (/^The following packages have been kept back:/.test(line)) {
      inKeptBack = true;
      continue;
    }
    let m: RegExpExecArray | null;
    if ((m = /^Inst (.*)$/.exec(line))) {
      const d = describe(m[1]!);
      sim.install.push({ package: d.package, ...(d.current ? { current: d.current } : {}), ...(d.candidate ? { candidate: d.candidate } : {}), releases: d.releases, ...(d.arch ? { arch: d.arch } : {}) });
    } else if ((m = /^Conf (\S+) broken/.exec(line))) {
      sim.configure.push({ package: m[1]!, broken: true });
    } else if ((m = /^Conf (.*)$/.exec(line))) {
      const d = describe(m[1]!);
      sim.configure.push({ package: d.package, ...(d.candidate ? { candidate: d.candidate } : {}), broken: false });
    } else if ((m = /^(Remv|Purg) (.*)$/.exec(line))) {
      const d = describe(m[2]!);
      sim.remove.push({ package: d.package, ...(d.current ? { current: d.current } : {}), purge: m[1] === 'Purg' });
    } else if ((m = /^(\d+) upgraded, (\d+) newly installed, (?:.*?, )?(\d+) to remove and (\d+) not upgraded\./.exec(line))) {
      sim.summary = { upgraded: Number(m[1]), newlyInstalled: Number(m[2]), remove: Number(m[3]), notUpgraded: Number(m[4]) };
    } else if ((m = /^\s*Upgrading: (\d+), Installing: (\d+), (?:.*?, )?Removing: (\d+), Not Upgrading: (\d+)/.exec(line))) {
      // apt 3.0's `apt` prints this form (APT::Output-Version 30); apt-get keeps the older one unless configured.
      sim.summary = { upgraded: Number(m[1]), newlyInstalled: Number(m[2]), remove: Number(m[3]), notUpgraded: Number(m[4]) };
    }
  }
  return sim;
}

/**
 * The packages a Proxmox VE node must never lose in an upgrade. proxmox-ve is the meta-package
 * pve-apt-hook guards (removing it means the repositories are wrong, see proxmox-steps.md B.6);
 * the others are what it pulls in that the node cannot run without; a kernel meta-package
 * (proxmox-default-kernel, proxmox-kernel-X.Y, PVE 8's pve-kernel-X.Y) going means no new
 * kernels. A specific kernel image (proxmox-kernel-6.14.8-2-pve-signed) may go: that is
 * normal housekeeping.
 */
export const CORE_PACKAGES: readonly string[] = ['proxmox-ve', 'pve-manager', 'qemu-server', 'pve-container', 'pve-cluster', 'proxmox-default-kernel'];
const KERNEL_META = /^(?:proxmox|pve)-kernel-\d+\.\d+$/;

export function isCorePackage(name: string): boolean {
  const bare = name.split(':')[0]!;
  return CORE_PACKAGES.includes(bare) || KERNEL_META.test(bare);
}

/** The core packages the simulated upgrade would remove; [] when it may go ahead. */
export function coreRemovals(sim: Simulation): string[] {
  return sim.remove.filter((r) => isCorePackage(r.package)).map((r) => r.package.split(':')[0]!);
}

/** Why the upgrade must not run, from its simulation; undefined when it may. */
export function simulationRefusal(sim: Simulation): string | undefined {
  const core = coreRemovals(sim);
  if (core.length === 0) return undefined;
  return (
    `the upgrade would remove ${core.join(', ')}: the APT repositories are probably wrong (a Proxmox repository missing or disabled, ` +
    `or one for another Debian release); nothing was changed`
  );
}
