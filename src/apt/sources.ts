/**
 * APT's source files as the operator wrote them: deb822 `.sources` (PVE 9)
 * and one-line `.list` (PVE 8), read into entries with their place in the
 * file, and edited in place: disabling an entry touches its own lines only
 * (`Enabled: no` in a stanza, `# ` before a line) and every other byte stays
 * as it was, comments included. Each entry is classified: Debian (main,
 * updates, security, backports), Proxmox VE (enterprise, no-subscription,
 * test), Ceph (channel and release), or other.
 *
 * Entries are counted as proxmox-apt counts repositories (its parsers in
 * src/apt/repositories.ts decide what an entry is), so an entry's `index`
 * is the one Proxmox's API (`pvesh create .../apt/repositories --index`) takes.
 */
import { parseRepoFile, type AptRepository, type Channel, type FileType } from './repositories.ts';

export type SourceFormat = 'deb822' | 'one-line';

export interface SourceEntry {
  /** The repository's index in its file, as Proxmox's API counts them (from 0). */
  index: number;
  enabled: boolean;
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  /** Other fields or options, keys as written (Signed-By, Architectures, ...). */
  options: { key: string; values: string[] }[];
  /** First and last line (0-based, inclusive) in the document. */
  firstLine: number;
  lastLine: number;
}

export interface SourcesDocument {
  format: SourceFormat;
  /** The lines with their endings: joined, they are the file byte for byte. */
  lines: string[];
  entries: SourceEntry[];
  /** Why a part could not be read (the file is then not edited). */
  problems: string[];
}

export const formatOfPath = (path: string): SourceFormat | null => (path.endsWith('.sources') ? 'deb822' : path.endsWith('.list') ? 'one-line' : null);

function splitLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\n') {
      out.push(text.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

const isBlank = (line: string): boolean => /^[ \t\r\n\f\v]*$/.test(line);
const isComment = (line: string): boolean => /^[ \t]*#/.test(line);

function entryOf(repo: AptRepository, index: number, firstLine: number, lastLine: number): SourceEntry {
  return {
    index,
    enabled: repo.enabled,
    types: [...repo.types],
    uris: [...repo.uris],
    suites: [...repo.suites],
    components: [...repo.components],
    options: repo.options.filter((o) => o.key !== 'Enabled').map((o) => ({ key: o.key, values: [...o.values] })),
    firstLine,
    lastLine,
  };
}

/** Read a `.sources` or `.list` file into its entries, keeping every line. */
export function parseSourcesDocument(text: string, format: SourceFormat): SourcesDocument {
  const lines = splitLines(text);
  const doc: SourcesDocument = { format, lines, entries: [], problems: [] };
  const fileType: FileType = format === 'deb822' ? 'sources' : 'list';
  if (format === 'one-line') {
    lines.forEach((line, i) => {
      const parsed = parseRepoFile('-', fileType, line);
      if ('error' in parsed) doc.problems.push(`line ${i + 1}: ${parsed.error.replace(/^malformed entry on line 1 - /, '')}`);
      else for (const repo of parsed.repositories) doc.entries.push(entryOf(repo, doc.entries.length, i, i));
    });
    return doc;
  }
  // deb822: a stanza is a run of non-blank lines; one of only comments is a comment
  let start = -1;
  const flush = (end: number) => {
    if (start < 0) return;
    const block = lines.slice(start, end + 1).join('');
    const parsed = parseRepoFile('-', fileType, block);
    if ('error' in parsed) doc.problems.push(`lines ${start + 1}-${end + 1}: ${parsed.error.replace(/^malformed entry in stanza 1 - /, '')}`);
    else for (const repo of parsed.repositories) doc.entries.push(entryOf(repo, doc.entries.length, start, end));
    start = -1;
  };
  lines.forEach((line, i) => {
    if (isBlank(line)) flush(i - 1);
    else if (start < 0) start = i;
  });
  flush(lines.length - 1);
  return doc;
}

export const documentText = (doc: SourcesDocument): string => doc.lines.join('');

/**
 * The file with one entry enabled or disabled, every other byte unchanged:
 * in a stanza the `Enabled:` field is set (or `Enabled: no` added after its
 * last field), a one-line entry is commented out with `# ` (or its leading
 * `#` removed). Returns the text unchanged when the entry already is so.
 */
export function setEntryEnabled(doc: SourcesDocument, index: number, enabled: boolean): string {
  const entry = doc.entries.find((e) => e.index === index);
  if (!entry) throw new Error(`no entry ${index} in this file (it has ${doc.entries.length})`);
  if (entry.enabled === enabled) return documentText(doc);
  const lines = [...doc.lines];
  const eol = (line: string) => (line.endsWith('\r\n') ? '\r\n' : line.endsWith('\n') ? '\n' : '');
  if (doc.format === 'one-line') {
    const line = lines[entry.firstLine]!;
    lines[entry.firstLine] = enabled ? line.replace(/^([ \t]*)#+[ \t]*/, '$1') : line.replace(/^([ \t]*)/, '$1# ');
    return lines.join('');
  }
  const field = /^Enabled[ \t]*:/i;
  let enabledLine = -1;
  let lastField = entry.firstLine;
  for (let i = entry.firstLine; i <= entry.lastLine; i++) {
    if (isComment(lines[i]!)) continue;
    lastField = i;
    if (field.test(lines[i]!)) enabledLine = i;
  }
  const value = enabled ? 'yes' : 'no';
  if (enabledLine >= 0) {
    const line = lines[enabledLine]!;
    const key = /^[^:]*:/.exec(line)![0];
    lines[enabledLine] = `${key} ${value}${eol(line)}`;
    // a value folded onto following lines belongs to the old field: drop it
    while (enabledLine + 1 <= entry.lastLine && /^[ \t]/.test(lines[enabledLine + 1]!) && !isBlank(lines[enabledLine + 1]!)) lines.splice(enabledLine + 1, 1);
    return lines.join('');
  }
  const after = lines[lastField]!;
  const end = eol(after) || '\n';
  if (eol(after) === '') lines[lastField] = `${after}\n`;
  lines.splice(lastField + 1, 0, `Enabled: no${end}`);
  return lines.join('');
}

// ---------------------------------------------------------------------------
// what a repository is

export type DebianPart = 'main' | 'updates' | 'security' | 'backports' | 'proposed-updates';

export type SourceClass =
  | { kind: 'debian'; parts: DebianPart[] }
  | { kind: 'pve'; channel: Channel | null }
  | { kind: 'ceph'; channel: Channel | null; release: string }
  | { kind: 'other' };

const hostOf = (uri: string): string | null => {
  const m = /^[a-z+]+:\/\/(?:[^@/]*@)?([^/:]+)/i.exec(uri);
  return m ? m[1]!.toLowerCase() : null;
};
const isDebianHost = (host: string): boolean => host === 'debian.org' || host.endsWith('.debian.org');
const isProxmoxHost = (host: string): boolean => host === 'proxmox.com' || host.endsWith('.proxmox.com');

/** The PVE channel a component names: pve-enterprise, pve-no-subscription, pve-test (PVE 9) or pvetest (PVE 8). */
export function pveChannelOf(component: string): Channel | null {
  if (component === 'pve-enterprise') return 'enterprise';
  if (component === 'pve-no-subscription') return 'no-subscription';
  if (component === 'pve-test' || component === 'pvetest') return 'test';
  return null;
}

/** The Ceph channel a component names (enterprise, no-subscription, test; PVE 7's `main` was the no-subscription one). */
export function cephChannelOf(component: string): Channel | null {
  if (component === 'enterprise') return 'enterprise';
  if (component === 'no-subscription' || component === 'main') return 'no-subscription';
  if (component === 'test') return 'test';
  return null;
}

/** What a repository is, from its URIs, suites and components. */
export function classifySource(entry: Pick<SourceEntry, 'uris' | 'suites' | 'components'>): SourceClass {
  const hosts = entry.uris.map(hostOf).filter((h): h is string => h !== null);
  if (hosts.some(isProxmoxHost)) {
    const ceph = entry.uris.map((u) => /\/debian\/ceph-([a-z]+)\/?$/.exec(u)).find(Boolean);
    if (ceph) return { kind: 'ceph', release: ceph[1]!, channel: entry.components.map(cephChannelOf).find((c) => c !== null) ?? null };
    if (entry.uris.some((u) => /\/debian(\/pve)?\/?$/.test(u))) return { kind: 'pve', channel: entry.components.map(pveChannelOf).find((c) => c !== null) ?? null };
    return { kind: 'other' };
  }
  if (hosts.some(isDebianHost) || entry.uris.some((u) => /\/debian(-security)?\/?$/.test(u))) {
    const parts = new Set<DebianPart>();
    for (const suite of entry.suites) {
      if (/[-/](security|updates)$/.test(suite) && entry.uris.some((u) => /security/.test(u))) parts.add('security');
      else if (suite.endsWith('-security')) parts.add('security');
      else if (suite.endsWith('-updates')) parts.add('updates');
      else if (suite.endsWith('-backports')) parts.add('backports');
      else if (suite.endsWith('-proposed-updates')) parts.add('proposed-updates');
      else parts.add('main');
    }
    return { kind: 'debian', parts: [...parts] };
  }
  return { kind: 'other' };
}

/** One line about an entry: "deb http://deb.debian.org/debian trixie trixie-updates: main non-free-firmware". */
export function describeEntry(entry: Pick<SourceEntry, 'types' | 'uris' | 'suites' | 'components' | 'enabled'>): string {
  return `${entry.types.join(' ')} ${entry.uris.join(' ')} ${entry.suites.join(' ')}: ${entry.components.join(' ') || '(no components)'}${entry.enabled ? '' : ' (disabled)'}`;
}

/** A one-line name for what a class is: "Debian security", "Proxmox VE no-subscription", "Ceph squid enterprise". */
export function describeClass(c: SourceClass): string {
  switch (c.kind) {
    case 'debian':
      return `Debian ${c.parts.join(', ')}`;
    case 'pve':
      return `Proxmox VE ${c.channel ?? '(unknown channel)'}`;
    case 'ceph':
      return `Ceph ${c.release} ${c.channel ?? '(unknown channel)'}`;
    default:
      return 'other';
  }
}
