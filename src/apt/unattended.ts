/**
 * unattended-upgrades as pve-baseline sets it up, and what apt and
 * unattended-upgrade say back. Pure.
 *
 *   drop-in     /etc/apt/apt.conf.d/52pve-baseline-unattended: the origins (Debian security, and
 *               Proxmox's when the operator chooses), never a reboot, the admin's mail, unused
 *               dependencies removed; every line with its reason. Read after Debian's
 *               50unattended-upgrades, whose origin list it clears first (apt.conf(5) #clear:
 *               lists only grow otherwise), so the node follows this policy and not Debian's
 *               default, which also takes every stable point-release update (label=Debian)
 *   periodic    /etc/apt/apt.conf.d/20auto-upgrades, the file Debian's own package writes when
 *               automatic updates are enabled (unattended-upgrades postinst, with ucf): kept when
 *               it is right, else written with exactly Debian's two lines: the package's config
 *               script reads `APT::Periodic::Unattended-Upgrade "1";` from this file to keep its
 *               debconf answer (unattended-upgrades debian/config), so a later upgrade of the
 *               package keeps the jobs on, and ucf finds its own content
 *   apt-config  `apt-config dump Unattended-Upgrade APT::Periodic`: the settings as apt merged
 *               them from every file (apt-pkg/contrib/configuration.cc Configuration::Dump)
 *   dry run     `unattended-upgrade --dry-run --debug`: "Allowed origins are: ..." with
 *               ${distro_codename} already replaced (unattended-upgrade get_allowed_origins)
 */

export const DROPIN = '/etc/apt/apt.conf.d/52pve-baseline-unattended';
export const PERIODIC_FILE = '/etc/apt/apt.conf.d/20auto-upgrades';
export const APT_CONF_DIR = '/etc/apt/apt.conf.d';
/** Debian's own enabled 20auto-upgrades (unattended-upgrades data/20auto-upgrades), byte for byte. */
export const DEBIAN_PERIODIC = 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n';
export const PERIODIC_KEYS = ['APT::Periodic::Update-Package-Lists', 'APT::Periodic::Unattended-Upgrade'] as const;

/**
 * Debian's security archive, as Debian's own 50unattended-upgrades names it (both lines:
 * security updates are published under codename-security, and a point release folds them
 * into the release itself with the same label).
 */
export const DEBIAN_SECURITY_PATTERNS = [
  'origin=Debian,codename=${distro_codename},label=Debian-Security',
  'origin=Debian,codename=${distro_codename}-security,label=Debian-Security',
] as const;

/**
 * Proxmox's repositories: their Release files say `Origin: Proxmox` and the Debian codename
 * (proxmox.md 6.3; Suite is always "stable", so only the codename tells releases apart).
 * This also matches Proxmox's Ceph repositories of the same codename.
 */
export const PROXMOX_PATTERN = 'origin=Proxmox,codename=${distro_codename}';

export interface UnattendedSettings {
  /** Also take updates from Proxmox's repositories. */
  proxmox: boolean;
  /** Where reports go; undefined sends none. */
  mail?: string;
}

export function wantedPatterns(s: Pick<UnattendedSettings, 'proxmox'>): string[] {
  return [...DEBIAN_SECURITY_PATTERNS, ...(s.proxmox ? [PROXMOX_PATTERN] : [])];
}

/** The patterns as unattended-upgrade prints them, ${distro_codename} replaced (string.Template). */
export function substituteCodename(pattern: string, codename: string): string {
  return pattern.replaceAll('${distro_codename}', codename);
}

/** A value in apt.conf's syntax: a double-quoted string, which apt's parser ends at the next quote. */
function quoted(value: string): string {
  if (/["\n\r]/.test(value)) throw new Error(`an apt.conf value cannot hold a double quote or a line break: ${JSON.stringify(value)}`);
  return `"${value}"`;
}

export function renderDropIn(s: UnattendedSettings): string {
  const out = [
    '// Written by pve-baseline (step "auto-updates"); the next run puts it back as the step wants it.',
    '// Read after Debian\'s 50unattended-upgrades (files are read in name order), so these values win.',
    '//',
    '// Policy: security updates arrive unattended; Proxmox VE point releases stay with the supervised',
    '// upgrade (pve-baseline\'s upgrade step, or apt-get dist-upgrade), because unattended-upgrades would',
    '// apply a release in part: it holds back a package whose configuration file was changed here, and',
    '// whatever depends on it, and installs the rest. And the node never reboots on its own: guests would',
    '// stop with it.',
    '',
    '// The origin list is cleared first: apt only ever appends to a list, and Debian\'s default file also',
    '// allows label=Debian, every stable point-release update, not only security fixes.',
    '#clear Unattended-Upgrade::Origins-Pattern;',
    '// The older form of the same list (origin:archive); cleared so nothing else slips in through it.',
    '#clear Unattended-Upgrade::Allowed-Origins;',
    'Unattended-Upgrade::Origins-Pattern {',
    "  // Debian's security archive: fixes published for this release's codename-security",
    `  ${quoted(DEBIAN_SECURITY_PATTERNS[1])};`,
    '  // the same fixes once a Debian point release folds them into the release itself',
    `  ${quoted(DEBIAN_SECURITY_PATTERNS[0])};`,
  ];
  if (s.proxmox) {
    out.push(
      "  // Proxmox's repositories (Release files say Origin: Proxmox), chosen by the operator: fixed",
      '  // versions that need no new package; anything that does waits for the supervised upgrade',
      `  ${quoted(PROXMOX_PATTERN)};`,
    );
  }
  out.push(
    '};',
    '',
    '// Never reboot on its own: a hypervisor reboot stops every guest; when to reboot is the operator\'s decision.',
    'Unattended-Upgrade::Automatic-Reboot "false";',
    '',
  );
  if (s.mail) {
    out.push(
      "// The admin's address (from the admin account step): a report whenever something was upgraded or failed.",
      `Unattended-Upgrade::Mail ${quoted(s.mail)};`,
      'Unattended-Upgrade::MailReport "on-change";',
      '',
    );
  } else {
    out.push('// No mail: no admin address is known. Reports stay in /var/log/unattended-upgrades/.', '');
  }
  out.push(
    '// Packages installed only as dependencies and needed no longer are removed after an upgrade, as',
    '// apt autoremove would; what apt autoremove keeps (APT::NeverAutoRemove) is kept here too.',
    'Unattended-Upgrade::Remove-Unused-Dependencies "true";',
    '',
  );
  return out.join('\n');
}

// --- apt.conf as apt reads it ----------------------------------------------------------------------------

/** apt's boolean words (apt-pkg/contrib/strutl.cc StringToBool). */
export function aptBool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.trim().toLowerCase();
  if (['1', 'yes', 'true', 'with', 'on', 'enable'].includes(v)) return true;
  if (['0', 'no', 'false', 'without', 'off', 'disable'].includes(v)) return false;
  return fallback;
}

export interface AptConfig {
  /** A plain value, as the last file that set it left it. */
  scalars: Map<string, string>;
  /** A list's items, in order (`Key:: "item";` lines). */
  lists: Map<string, string[]>;
}

/**
 * `apt-config dump`: one `Full::Tag "value";` line per item; a list's items are
 * `Full::Tag:: "item";`, under a line for the list itself with an empty value.
 * apt quotes `=`, `"` and line breaks in a tag as %XX (QuoteString); values come raw.
 */
export function parseAptConfigDump(text: string): AptConfig {
  const scalars = new Map<string, string>();
  const lists = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^(\S+) "(.*)";$/.exec(line.trimEnd());
    if (!m) continue;
    const tag = m[1]!.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    const value = m[2]!;
    if (tag.endsWith('::')) {
      const key = tag.slice(0, -2);
      lists.set(key, [...(lists.get(key) ?? []), value]);
    } else {
      scalars.set(tag, value);
    }
  }
  return { scalars, lists };
}

/** apt.systemd.daily runs a job when its interval is a number of days above 0, or "always". */
export function periodicEnabled(value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.trim();
  return v === 'always' || (/^\d+$/.test(v) && Number(v) >= 1);
}

/** What the baseline wants of a periodic value: daily (Debian's "1") or every run ("always"). */
export function periodicDaily(value: string | undefined): boolean {
  return value !== undefined && ['1', 'always'].includes(value.trim());
}

/**
 * The flat `Key "value";` statements of one apt.conf file, with // and /* *\/ comments
 * dropped. Scopes (`APT { Periodic { ... } }`) are followed too. Enough to tell which file
 * sets a periodic value; apt-config dump stays the judge of the merged result.
 */
export function aptConfStatements(text: string): [key: string, value: string][] {
  const noBlock = text.replace(/\/\*[\s\S]*?\*\//g, ' ');
  const clean = noBlock
    .split('\n')
    .map((line) => {
      // A // or # outside quotes ends the line (apt's ReadConfigFile), except #clear and #include.
      let quotes = 0;
      for (let i = 0; i < line.length; i++) {
        const ch = line[i];
        if (ch === '"') quotes++;
        else if (quotes % 2 === 0 && ch === '/' && line[i + 1] === '/') return line.slice(0, i);
        else if (quotes % 2 === 0 && ch === '#' && !/^#(clear|include)\b/.test(line.slice(i))) return line.slice(0, i);
      }
      return line;
    })
    .join('\n');
  const out: [string, string][] = [];
  const scope: string[] = [];
  const re = /\s*(?:([A-Za-z0-9_:.+\-#]+)\s*(?:"([^"]*)")?\s*([;{])|(\}\s*;?))/gy;
  let pos = 0;
  while (pos < clean.length) {
    re.lastIndex = pos;
    const m = re.exec(clean);
    if (!m) {
      // Something this reader does not follow (a list item without a key, say): skip to the next statement.
      const next = clean.slice(pos).search(/[;}]/);
      if (next < 0) break;
      pos += next + 1;
      continue;
    }
    pos = re.lastIndex;
    if (m[4]) {
      scope.pop();
      continue;
    }
    const key = m[1]!;
    if (m[3] === '{') {
      scope.push(key);
      continue;
    }
    if (key.startsWith('#') || m[2] === undefined) continue;
    out.push([[...scope, key].join('::'), m[2]]);
  }
  return out;
}

/**
 * Whether apt reads a file of apt.conf.d: names of letters, digits, `_`, `-` and `.` only,
 * and not the leftovers it ignores silently (Dir::Ignore-Files-Silently: *~, *.bak,
 * *.dpkg-*, *.ucf-*, *.save, *.orig, *.distUpgrade, *.disabled; apt-pkg/init.cc).
 */
export function aptReadsFile(name: string): boolean {
  return /^[A-Za-z0-9_.-]+$/.test(name) && !/(~|\.bak|\.dpkg-[a-z]+|\.ucf-[a-z]+|\.save|\.orig|\.distUpgrade|\.disabled)$/.test(name);
}

export interface Override {
  file: string;
  key: string;
  value: string;
}

/** The settings of the files apt reads after `name` (byte order, as apt sorts them), in that order. */
function settingsAfter(files: readonly { name: string; text: string }[], name: string): Override[] {
  return files
    .filter((f) => aptReadsFile(f.name) && f.name > name)
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((f) => aptConfStatements(f.text).map(([key, value]) => ({ file: `${APT_CONF_DIR}/${f.name}`, key, value })));
}

/** A later file in apt.conf.d that sets a periodic value to something other than daily: it would win over 20auto-upgrades. */
export function periodicOverrides(files: readonly { name: string; text: string }[]): Override[] {
  return settingsAfter(files, '20auto-upgrades').filter(
    (o) => ((PERIODIC_KEYS as readonly string[]).includes(o.key) && !periodicDaily(o.value)) || (o.key === 'APT::Periodic::Enable' && !aptBool(o.value, true)),
  );
}

/** A file read after our drop-in that turns automatic reboots back on. */
export function rebootOverrides(files: readonly { name: string; text: string }[]): Override[] {
  const ours = DROPIN.split('/').pop()!;
  return settingsAfter(files, ours).filter((o) => o.key === 'Unattended-Upgrade::Automatic-Reboot' && aptBool(o.value, false));
}

/** Whether 20auto-upgrades as it stands turns both jobs on daily (Debian's file, or one with the same effect). */
export function periodicFileRight(text: string | null): boolean {
  if (text === null) return false;
  const values = new Map(aptConfStatements(text));
  return PERIODIC_KEYS.every((k) => periodicDaily(values.get(k))) && aptBool(values.get('APT::Periodic::Enable'), true);
}

// --- what the node says ------------------------------------------------------------------------------------

export interface DryRun {
  /** The origins unattended-upgrade will take updates from, as it printed them; undefined when it never said. */
  allowedOrigins?: string[];
  /** Packages it would upgrade ("Packages that will be upgraded: ..."). */
  packages: string[];
  /** Why it stopped before listing the origins (the apt lock held, say). */
  problem?: string;
}

/**
 * `unattended-upgrade --dry-run --debug` output: the log messages on standard output,
 * without a prefix (its stdout handler has no formatter). The origins are joined with ", ".
 */
export function parseDryRun(stdout: string, stderr = ''): DryRun {
  const lines = `${stdout}\n${stderr}`.split('\n');
  const out: DryRun = { packages: [] };
  for (const line of lines) {
    const origins = /^Allowed origins are: ?(.*)$/.exec(line);
    if (origins) out.allowedOrigins = origins[1]!.trim() ? origins[1]!.trim().split(', ').map((o) => o.trim()) : [];
    const pkgs = /^Packages that will be upgraded: ?(.*)$/.exec(line);
    if (pkgs) out.packages = pkgs[1]!.trim().split(/\s+/).filter(Boolean);
  }
  if (out.allowedOrigins === undefined) {
    const said = lines.find((l) => /Lock could not be acquired|Cache lock can not be acquired|You need to be root|Traceback|Error/.test(l));
    out.problem = said?.trim() || 'it printed no "Allowed origins are:" line';
  }
  return out;
}

/** Compare origins as unattended-upgrade does not care about: spaces around the commas and key aliases (o=, n=, l=). */
export function normaliseOrigin(pattern: string): string {
  const alias: Record<string, string> = { o: 'origin', n: 'codename', l: 'label', a: 'archive', suite: 'archive', c: 'component' };
  return pattern
    .split(/(?<!\\),/)
    .map((part) => {
      const eq = part.indexOf('=');
      if (eq < 0) return part.trim();
      const key = part.slice(0, eq).trim();
      return `${alias[key] ?? key}=${part.slice(eq + 1).trim()}`;
    })
    .sort()
    .join(',');
}

/** What the dry run's list says against what is wanted: missing and extra origins. */
export function compareOrigins(seen: readonly string[], wanted: readonly string[]): { missing: string[]; extra: string[] } {
  const seenSet = new Set(seen.map(normaliseOrigin));
  const wantedSet = new Set(wanted.map(normaliseOrigin));
  return { missing: wanted.filter((w) => !seenSet.has(normaliseOrigin(w))), extra: seen.filter((s) => !wantedSet.has(normaliseOrigin(s))) };
}
