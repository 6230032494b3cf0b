/**
 * journald's MaxLevelStore, as `systemd-analyze cat-config
 * systemd/journald.conf` shows the configuration: each file that counts,
 * in the order journald reads it (the main file, then the drop-ins sorted by
 * file name whatever their directory), each after a `# /path` line. The last
 * assignment wins. Pure.
 *
 * Why it matters: fail2ban's systemd backend reads the journal, and sshd
 * logs failed logins at info. An "optimiser" that set MaxLevelStore=warning
 * leaves the sshd jail nothing to read (pvedaemon's failures are at err and
 * survive it).
 */

export const JOURNALD_DROPIN_DIR = '/etc/systemd/journald.conf.d';
export const JOURNALD_DROPIN = `${JOURNALD_DROPIN_DIR}/99-pve-baseline.conf`;

const LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;
/** syslog's number for a level name or digit; undefined when journald would not take it. */
export function levelNumber(value: string): number | undefined {
  const v = value.trim().toLowerCase();
  if (/^[0-7]$/.test(v)) return Number(v);
  const i = LEVELS.indexOf(v as (typeof LEVELS)[number]);
  return i < 0 ? undefined : i;
}
export const INFO = 6;

export interface JournaldFile {
  path: string;
  /** The last MaxLevelStore= in its [Journal] section, if any. */
  maxLevelStore?: string;
}

const HEADER = /^# (\/\S*journald\.conf(?:\.d\/\S+\.conf)?)\s*$/;

/** The files of `systemd-analyze cat-config systemd/journald.conf` output, in order. */
export function parseCatConfig(stdout: string): JournaldFile[] {
  const files: JournaldFile[] = [];
  let current: JournaldFile | undefined;
  let section = '';
  for (const raw of stdout.split('\n')) {
    const header = HEADER.exec(raw);
    if (header) {
      current = { path: header[1]! };
      files.push(current);
      section = '';
      continue;
    }
    const line = raw.trim();
    if (!current || line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sectionMatch = /^\[(.+)\]$/.exec(line);
    if (sectionMatch) {
      section = sectionMatch[1]!;
      continue;
    }
    const m = /^MaxLevelStore\s*=\s*(.*)$/.exec(line);
    if (m && section === 'Journal') current.maxLevelStore = m[1]!.trim();
  }
  return files;
}

const base = (path: string) => path.slice(path.lastIndexOf('/') + 1);
const isDropIn = (path: string) => path.includes('.conf.d/');

/**
 * The files in the order journald applies them, with `extra` (our drop-in,
 * as it would be written) in its place: a drop-in of the same name in /etc
 * hides the one in /run or /usr/lib.
 */
export function withDropIn(files: readonly JournaldFile[], extra?: JournaldFile): JournaldFile[] {
  const main = files.filter((f) => !isDropIn(f.path));
  const dropIns = files.filter((f) => isDropIn(f.path) && (!extra || base(f.path) !== base(extra.path)));
  if (extra) dropIns.push(extra);
  dropIns.sort((a, b) => (base(a.path) < base(b.path) ? -1 : base(a.path) > base(b.path) ? 1 : 0));
  return [...main, ...dropIns];
}

/** The MaxLevelStore in force and the file that sets it (journald's default is debug). */
export function effectiveMaxLevelStore(files: readonly JournaldFile[]): { value: string; level: number; from?: string } {
  let found: { value: string; level: number; from?: string } = { value: 'debug', level: 7 };
  for (const f of files) {
    if (f.maxLevelStore === undefined) continue;
    // An empty assignment resets to the default.
    const level = f.maxLevelStore === '' ? 7 : levelNumber(f.maxLevelStore);
    if (level !== undefined) found = { value: f.maxLevelStore || 'debug', level, from: f.path };
  }
  return found;
}

export function renderJournaldDropIn(): string {
  return [
    '# Written by pve-baseline (step "fail2ban").',
    "# fail2ban reads sshd's failed logins from the journal, and sshd logs them at info:",
    '# a lower MaxLevelStore (set here before, e.g. warning) would leave its jail blind.',
    '[Journal]',
    'MaxLevelStore=info',
    '',
  ].join('\n');
}
