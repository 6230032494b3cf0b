/**
 * Proxmox's repository API (pve-manager PVE/API2/APT.pm `repositories`,
 * `add_repository`, `change_repository`) as proxmox-apt implements it
 * (proxmox-rs proxmox-apt/src/api.rs, src/repositories/): the files parsed
 * into repositories, the digests, the infos, the standard repositories and
 * their handles, and the files the API writes back. Shared by the step (to
 * predict what `pvesh` will write, byte for byte) and the lab's stand-in
 * (test/lab/standins/lib/apt-repos.ts, which serves it to the lab's pvesh).
 *
 * proxmox-apt never edits a file in place: it parses the whole file into
 * repositories and writes all of them again (file.rs `write`), so comments
 * become `#`-lines before the next repository, values are joined by one
 * space, a comment after the last repository is dropped, and `Enabled: no`
 * becomes `Enabled: false`. Byte-preserving edits are src/apt/sources.ts.
 */
import { createHash } from 'node:crypto';

export type FileType = 'list' | 'sources';
export type PackageType = 'deb' | 'deb-src';

export interface AptOption {
  key: string;
  values: string[];
}

/** proxmox-apt-api-types APTRepository. */
export interface AptRepository {
  types: PackageType[];
  uris: string[];
  suites: string[];
  components: string[];
  options: AptOption[];
  comment: string;
  fileType: FileType;
  enabled: boolean;
}

export interface RepoFileError {
  path: string;
  error: string;
}

/** A parsed repository file: its repositories and the sha256 of its content. */
export interface RepoFile {
  path: string;
  fileType: FileType;
  repositories: AptRepository[];
  digest: Buffer;
}

export const SOURCES_LIST = '/etc/apt/sources.list';
export const SOURCES_LIST_D = '/etc/apt/sources.list.d';
export const APT_LISTS_DIR = '/var/lib/apt/lists';
export const PROXMOX_KEYRING = '/usr/share/keyrings/proxmox-archive-keyring.gpg';

class ParseError extends Error {}
const bail = (message: string): never => {
  throw new ParseError(message);
};

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
const trimAscii = (s: string): string => s.replace(/^[ \t\n\r\f\v]+|[ \t\n\r\f\v]+$/g, '');

function packageType(word: string): PackageType {
  if (word === 'deb' || word === 'deb-src') return word;
  return bail(`unknown variant \`${word}\`, expected \`deb\` or \`deb-src\``);
}

/** repository.rs `set_enabled`: a deb822 repository also gets (or updates) its `Enabled` option. */
export function setEnabled(repo: AptRepository, enabled: boolean): void {
  repo.enabled = enabled;
  if (repo.fileType !== 'sources') return;
  const value = enabled ? 'true' : 'false';
  const option = repo.options.find((o) => o.key === 'Enabled');
  if (option) option.values = [value];
  else repo.options.push({ key: 'Enabled', values: [value] });
}

const newRepo = (fileType: FileType): AptRepository => ({ types: [], uris: [], suites: [], components: [], options: [], comment: '', fileType, enabled: true });

/** repository.rs `basic_check`. */
export function basicCheck(repo: AptRepository): string | undefined {
  if (repo.types.length === 0) return 'missing package type(s)';
  if (repo.uris.length === 0) return 'missing URI(s)';
  if (repo.suites.length === 0) return 'missing suite(s)';
  for (const uri of repo.uris) if (!uri.includes(':') || uri.length < 3) return `invalid URI: '${uri}'`;
  for (const suite of repo.suites) {
    if (!suite.endsWith('/') && repo.components.length === 0) return 'missing component(s)';
    if (suite.endsWith('/') && repo.components.length > 0) return `absolute suite '${suite}' does not allow component(s)`;
  }
  if (repo.fileType === 'list') {
    if (repo.types.length > 1) return 'more than one package type';
    if (repo.uris.length > 1) return 'more than one URI';
    if (repo.suites.length > 1) return 'more than one suite';
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// deb822 (sources_parser.rs)

/** APT's StringToBool as sources_parser.rs `string_to_bool` has it. */
function stringToBool(value: string, fallback: boolean): boolean {
  const v = trimAscii(value).toLowerCase();
  if (['1', 'yes', 'true', 'with', 'on', 'enable'].includes(v)) return true;
  if (['0', 'no', 'false', 'without', 'off', 'disable'].includes(v)) return false;
  return fallback;
}

const validKey = (key: string): boolean => !key.startsWith('-') && [...key].every((c) => (c >= '!' && c <= '9') || (c >= ';' && c <= '~'));

/** Rust's `{:?}` of a string, for the "got invalid line" message. */
const debugString = (s: string): string => JSON.stringify(s);

function parseSources(content: string): AptRepository[] {
  const repos: AptRepository[] = [];
  let comment = '';
  let stanzaNr = 1;
  const parseStanza = (block: string): AptRepository | null => {
    const repo = newRepo('sources');
    const joined = block.replaceAll('\n ', ' ').replaceAll('\n\t', ' ');
    let gotSomething = false;
    for (const raw of joined.split('\n')) {
      const line = trimAscii(raw);
      if (line === '') continue;
      if (line.startsWith('#')) {
        comment = `${comment}${line.slice(1)}\n`;
        continue;
      }
      const mid = line.indexOf(':');
      if (mid < 0) bail(`got invalid line - '${debugString(line)}'`);
      const key = trimAscii(line.slice(0, mid));
      const valueStr = line.slice(mid + 1);
      if (key === '') bail(`option has no key: '${line}'`);
      if (valueStr === '') continue; // ignored by APT
      if (!validKey(key)) continue; // ignored by APT
      const values = valueStr.split(/[ \t\n\r\f\v]+/).filter(Boolean);
      switch (key.toLowerCase()) {
        case 'types':
          repo.types = values.map(packageType);
          break;
        case 'uris':
          repo.uris = values;
          break;
        case 'suites':
          repo.suites = values;
          break;
        case 'components':
          repo.components = values;
          break;
        case 'enabled':
          setEnabled(repo, stringToBool(valueStr, true));
          break;
        default:
          repo.options.push({ key, values });
      }
      gotSomething = true;
    }
    if (!gotSomething) return null;
    repo.comment = comment;
    comment = '';
    return repo;
  };
  const tryStanza = (block: string) => {
    try {
      const repo = parseStanza(block);
      if (repo) {
        repos.push(repo);
        stanzaNr++;
      }
    } catch (error) {
      bail(`malformed entry in stanza ${stanzaNr} - ${(error as Error).message}`);
    }
  };
  let block = '';
  for (const line of splitLinesKeepEnd(content)) {
    block += line;
    if (trimAscii(line) === '') {
      tryStanza(block);
      block = '';
    }
  }
  tryStanza(block);
  return repos;
}

/** Lines as BufRead::read_line returns them: each with its "\n", the last possibly without. */
function splitLinesKeepEnd(content: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < content.length; i++) {
    if (content[i] === '\n') {
      out.push(content.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < content.length) out.push(content.slice(start));
  return out;
}

// ---------------------------------------------------------------------------
// one-line (list_parser.rs)

/** list_parser.rs SplitQuoteWord (APT's ParseQuoteWord): whitespace inside [] or "" does not split; quotes are dropped. */
class SplitQuoteWord {
  position = 0;
  constructor(readonly rest: string) {}
  next(): string | null {
    const rest = this.rest.slice(this.position);
    let start: number | null = null;
    let waitFor: string | null = null;
    for (let n = 0; n < rest.length; n++) {
      const c = rest[n]!;
      this.position++;
      if (waitFor !== null) {
        if (c === waitFor) waitFor = null;
        continue;
      }
      if (isSpace(c)) {
        if (start !== null) return rest.slice(start, n).replaceAll('"', '');
        continue;
      }
      if (start === null) start = n;
      if (c === '"') waitFor = '"';
      if (c === '[') waitFor = ']';
    }
    if (waitFor !== null) bail(`missing terminating '${waitFor}'`);
    return start !== null ? rest.slice(start).replaceAll('"', '') : null;
  }
}

function parseList(content: string): AptRepository[] {
  const state = { comment: '' };
  const parseOptions = (options: AptOption[], tokens: SplitQuoteWord) => {
    for (;;) {
      let option = tokens.next();
      if (option === null) bail("options not closed by ']'");
      let finished = false;
      if (option!.endsWith(']')) {
        option = option!.slice(0, -1);
        if (option === '') break;
        finished = true;
      }
      const mid = option!.indexOf('=');
      if (mid >= 0) {
        const key = option!.slice(0, mid);
        const value = option!.slice(mid + 1);
        if (key === '') bail(`option has no key: '${option}'`);
        if (value === '') bail(`option has no value: '${option}'`);
        options.push({ key, values: value.split(',') });
      } else if (option !== '') {
        bail(`got invalid option - '${option}'`);
      }
      if (finished) break;
    }
  };
  const parseOneLine = (input: string): AptRepository | null => {
    let line = trimAscii(input);
    if (line.startsWith('#')) {
      // a commented-out repository is a disabled one
      try {
        const repo = parseOneLine(line.slice(1));
        if (repo) {
          setEnabled(repo, false);
          return repo;
        }
      } catch {
        // a real comment
      }
    }
    const repo = newRepo('list');
    const hash = line.indexOf('#');
    if (hash >= 0) {
      state.comment = `${state.comment}${line.slice(hash + 1)}\n`;
      line = line.slice(0, hash);
    }
    const ws = [...line].findIndex(isSpace);
    if (ws < 0) return null; // an empty line
    repo.types.push(packageType(line.slice(0, ws)));
    line = line.slice(ws + 1).replace(/^[ \t\n\r\f\v]+/, '');
    let hasOptions = false;
    if (line.startsWith('[')) {
      line = line.slice(1);
      hasOptions = true;
    }
    const tokens = new SplitQuoteWord(line);
    if (hasOptions) parseOptions(repo.options, tokens);
    const uri = tokens.next();
    if (uri === null) bail('missing URI');
    repo.uris.push(uri!);
    const suite = tokens.next();
    if (suite === null) bail('missing suite');
    repo.suites.push(suite!);
    for (let t = tokens.next(); t !== null; t = tokens.next()) repo.components.push(t);
    repo.comment = state.comment;
    state.comment = '';
    return repo;
  };
  const repos: AptRepository[] = [];
  const lines = splitLinesKeepEnd(content);
  lines.forEach((line, i) => {
    try {
      const repo = parseOneLine(line);
      if (repo) repos.push(repo);
    } catch (error) {
      bail(`malformed entry on line ${i + 1} - ${(error as Error).message}`);
    }
  });
  return repos;
}

// ---------------------------------------------------------------------------
// files (file.rs)

/**
 * file.rs `APTRepositoryFile::new`: whether APT reads a file of this name
 * ('skip' for hidden, backup and dpkg files), its type, or why it is refused.
 */
export function fileTypeOf(path: string): FileType | 'skip' | { error: string } {
  const name = path.split('/').pop() ?? '';
  if (name === '') return { error: 'invalid path' };
  if (name.startsWith('.') || name.endsWith('~')) return 'skip';
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return { error: 'invalid extension' };
  const ext = name.slice(dot + 1);
  if (ext.startsWith('dpkg-') || ext.startsWith('ucf-') || ['disabled', 'bak', 'save', 'orig', 'distUpgrade'].includes(ext)) return 'skip';
  if (ext !== 'list' && ext !== 'sources') return { error: 'invalid extension' };
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) return { error: 'invalid characters in file name' };
  return ext;
}

const sha256 = (data: string | Buffer): Buffer => createHash('sha256').update(data).digest();

/** file.rs `parse`: the repositories of one file, each checked, or the file's error. */
export function parseRepoFile(path: string, fileType: FileType, content: string): RepoFile | RepoFileError {
  try {
    const repositories = fileType === 'list' ? parseList(content) : parseSources(content);
    repositories.forEach((repo, n) => {
      const problem = basicCheck(repo);
      if (problem) bail(`check for repository ${n + 1} - ${problem}`);
    });
    return { path, fileType, repositories, digest: sha256(content) };
  } catch (error) {
    if (error instanceof ParseError) return { path, error: error.message };
    throw error;
  }
}

/** proxmox-apt's `quote_for_one_line`. */
function quoteForOneLine(value: string): string {
  const s = value.replaceAll('"', '');
  let waitForBracket = false;
  for (const c of s) {
    if (waitForBracket) {
      if (c === ']') waitForBracket = false;
      continue;
    }
    if (isSpace(c)) return `"${s}"`;
    if (c === '[') waitForBracket = true;
  }
  return s;
}

/** repository.rs `write`: one repository in its file's format, comment lines first. */
export function renderRepository(repo: AptRepository): string {
  let out = '';
  if (repo.comment !== '') for (const line of repo.comment.split('\n').filter((l, i, all) => i < all.length - 1 || l !== '')) out += `#${line}\n`;
  if (repo.fileType === 'list') {
    if (!repo.enabled) out += '# ';
    out += `${repo.types[0]} `;
    if (repo.options.length) out += `[ ${repo.options.map((o) => `${quoteForOneLine(`${o.key}=${o.values.join(',')}`)} `).join('')}] `;
    out += `${quoteForOneLine(repo.uris[0]!)} ${quoteForOneLine(repo.suites[0]!)} `;
    out += `${repo.components.map(quoteForOneLine).join(' ')}\n`;
    return out;
  }
  out += `Types:${repo.types.map((t) => ` ${t}`).join('')}\n`;
  out += `URIs: ${repo.uris.join(' ')}\n`;
  out += `Suites: ${repo.suites.join(' ')}\n`;
  if (repo.components.length) out += `Components: ${repo.components.join(' ')}\n`;
  for (const o of repo.options) out += `${o.key}: ${o.values.join(' ')}\n`;
  return out;
}

/** file.rs `write`: every repository again, a blank line between them; null (the file is removed) when none is left. */
export function renderRepoFile(repositories: readonly AptRepository[]): string | null {
  if (repositories.length === 0) return null;
  return repositories.map(renderRepository).join('\n');
}

// ---------------------------------------------------------------------------
// Debian releases (proxmox-apt-api-types DebianCodename)

export const CODENAMES = ['lenny', 'squeeze', 'wheezy', 'jessie', 'stretch', 'buster', 'bullseye', 'bookworm', 'trixie', 'forky', 'duke'] as const;
/** Rank of a codename; an unknown one sorts above all known (as DebianCodename::Unknown does). */
export const codenameRank = (codename: string): number => {
  const i = (CODENAMES as readonly string[]).indexOf(codename);
  return i < 0 ? 255 : i + 1;
};
const isKnownCodename = (s: string): boolean => (CODENAMES as readonly string[]).includes(s);

/** release.rs `get_current_release_codename`: VERSION_CODENAME of /etc/os-release. */
export function codenameFromOsRelease(text: string): string | null {
  for (const line of text.split('\n')) {
    if (line.startsWith('VERSION_CODENAME=')) return line.slice('VERSION_CODENAME='.length).replace(/^["']+|["']+$/g, '');
  }
  return null;
}

// ---------------------------------------------------------------------------
// standard repositories (standard.rs)

export type Channel = 'enterprise' | 'no-subscription' | 'test';
export const CHANNELS: readonly Channel[] = ['enterprise', 'no-subscription', 'test'];

export interface StandardEntry {
  /** The handle as the API spells it: `no-subscription`, `ceph-squid-enterprise`. */
  handle: string;
  /** 'pve' or the Ceph release (`ceph-squid`). */
  product: string;
  channel: Channel;
  name: string;
  description: string;
  uri: string;
  /** Other URIs that identify it (PVE's old URI without /pve). */
  extraUris: string[];
  component: string;
  /** Other spellings of the component that identify it (PVE 8's `pvetest`). */
  extraComponents: string[];
  /** The Signed-By option written with it (none on PVE 8, whose proxmox-apt wrote none). */
  signedBy: string | null;
  fileDeb822: string;
  fileLegacy: string;
}

const ENTERPRISE_DOMAIN = 'https://enterprise.proxmox.com/debian';
const DOWNLOAD_DOMAIN = 'http://download.proxmox.com/debian';
const CHANNEL_INFO: Record<Channel, { title: string; domain: string; host: string; ceph: string }> = {
  enterprise: {
    title: 'Enterprise',
    domain: ENTERPRISE_DOMAIN,
    host: 'This is the default, stable, and recommended repository, available for all Proxmox subscription users.',
    ceph: 'This repository holds the production-ready Proxmox Ceph {name} packages.',
  },
  'no-subscription': {
    title: 'No-Subscription',
    domain: DOWNLOAD_DOMAIN,
    host: "This is the recommended repository for testing and non-production use. Its packages are not as heavily tested and validated as the production ready enterprise repository. You don't need a subscription key to access this repository.",
    ceph: 'This repository holds the Proxmox Ceph {name} packages intended for non-production use.',
  },
  test: {
    title: 'Test',
    domain: DOWNLOAD_DOMAIN,
    host: 'This repository contains the latest packages and is primarily used for test labs and by developers to test new features.',
    ceph: 'This repository contains the Ceph {name} packages before they are moved to the main repository.',
  },
};

/**
 * The Ceph releases proxmox-apt offers per Debian release: standard.rs
 * CEPH_RELEASES on trixie; on bookworm (PVE 8) the ones PVE/Ceph/Releases.pm
 * makes available for PVE 8 (simplified: PVE 8's older proxmox-apt is not in
 * the repository).
 */
export const CEPH_RELEASES: Record<string, readonly string[]> = { bookworm: ['quincy', 'reef', 'squid'], trixie: ['squid', 'tentacle'] };
const cephReleasesFor = (codename: string): readonly string[] => CEPH_RELEASES[codename] ?? (codenameRank(codename) > codenameRank('trixie') ? CEPH_RELEASES.trixie! : []);
const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * The standard repositories offered to PVE on `codename`, in the API's order
 * (PVE's channels, then each Ceph release's). Trixie and later as standard.rs
 * has them (Signed-By the Proxmox keyring, `pve-test`); bookworm as PVE 8
 * writes them (no Signed-By, `pvetest`).
 */
export function standardEntries(codename: string): StandardEntry[] {
  const modern = codenameRank(codename) >= codenameRank('trixie');
  const out: StandardEntry[] = [];
  for (const channel of CHANNELS) {
    const c = CHANNEL_INFO[channel];
    out.push({
      handle: channel,
      product: 'pve',
      channel,
      name: c.title,
      description: c.host,
      uri: `${c.domain}/pve`,
      extraUris: [c.domain],
      component: channel === 'test' && !modern ? 'pvetest' : `pve-${channel}`,
      extraComponents: channel === 'test' ? (modern ? ['pvetest'] : ['pve-test']) : [],
      signedBy: modern ? PROXMOX_KEYRING : null,
      fileDeb822: channel === 'enterprise' ? '/etc/apt/sources.list.d/pve-enterprise.sources' : '/etc/apt/sources.list.d/proxmox.sources',
      fileLegacy: channel === 'enterprise' ? '/etc/apt/sources.list.d/pve-enterprise.list' : SOURCES_LIST,
    });
  }
  for (const release of cephReleasesFor(codename)) {
    for (const channel of CHANNELS) {
      const c = CHANNEL_INFO[channel];
      out.push({
        handle: `ceph-${release}-${channel}`,
        product: `ceph-${release}`,
        channel,
        name: `Ceph ${capital(release)} ${c.title}`,
        description: c.ceph.replace('{name}', capital(release)),
        uri: `${c.domain}/ceph-${release}`,
        extraUris: [],
        component: channel,
        extraComponents: [],
        signedBy: modern ? PROXMOX_KEYRING : null,
        fileDeb822: '/etc/apt/sources.list.d/ceph.sources',
        fileLegacy: '/etc/apt/sources.list.d/ceph.list',
      });
    }
  }
  return out;
}

/**
 * standard.rs `is_referenced_by`: the repository is this standard one on
 * `codename` (type deb, the suite, a known component, a known URI). The
 * signed-by-key fallback for mirrors (an InRelease signed by Proxmox's key)
 * is not modelled.
 */
export function isReferencedBy(entry: StandardEntry, repo: AptRepository, codename: string): boolean {
  if (!repo.types.includes('deb')) return false;
  if (!repo.suites.includes(codename)) return false;
  if (!repo.components.some((c) => c === entry.component || entry.extraComponents.includes(c))) return false;
  const known = [entry.uri, ...entry.extraUris];
  return repo.uris.some((u) => known.includes(u.replace(/\/+$/, '')));
}

/** standard.rs `find_handle_for_repository`: which standard repository this is, if any. */
export function standardEntryOf(repo: AptRepository, codename: string): StandardEntry | undefined {
  return standardEntries(codename).find((e) => isReferencedBy(e, repo, codename));
}

/** standard.rs `to_repository`: the repository the API writes for a handle. */
export function standardRepository(entry: StandardEntry, codename: string): { repo: AptRepository; path: string } {
  const modern = codenameRank(codename) >= codenameRank('trixie');
  const repo = newRepo(modern ? 'sources' : 'list');
  repo.types = ['deb'];
  repo.uris = [entry.uri];
  repo.suites = [codename];
  repo.components = [entry.component];
  if (entry.signedBy) repo.options = [{ key: 'Signed-By', values: [entry.signedBy] }];
  return { repo, path: modern ? entry.fileDeb822 : entry.fileLegacy };
}

/** standard.rs `canonicalize_components_to_standard`: a legacy component spelling becomes the standard one; true when one changed. */
function canonicalizeComponents(repo: AptRepository, codename: string): boolean {
  const entry = standardEntryOf(repo, codename);
  if (!entry) return false;
  let changed = false;
  repo.components = repo.components.map((c) => {
    if (c !== entry.component && entry.extraComponents.includes(c)) {
      changed = true;
      return entry.component;
    }
    return c;
  });
  return changed;
}

// ---------------------------------------------------------------------------
// the node's files, as the API reads them (mod.rs `repositories`)

/** What the API reads: /etc/apt/sources.list and /etc/apt/sources.list.d/* with their contents. */
export interface AptTree {
  /** Regular files: path -> content. */
  files: ReadonlyMap<string, string>;
  /** Other entries under those names: a directory, or something that is neither (a device, a socket). */
  others?: ReadonlyMap<string, 'dir' | 'other'>;
  /** Whether /etc/apt/sources.list.d exists and is a directory ('other' otherwise; 'missing'). */
  listDir: 'dir' | 'missing' | 'other';
}

export interface Repositories {
  files: RepoFile[];
  errors: RepoFileError[];
  /** mod.rs `common_digest`, in hex: sha256 over the files' digests in path order. */
  digest: string;
}

/** mod.rs `repositories`: every file parsed, the ones that fail as errors, and the common digest. */
export function readRepositories(tree: AptTree): Repositories {
  const files: RepoFile[] = [];
  const errors: RepoFileError[] = [];
  const main = tree.files.get(SOURCES_LIST);
  if (main !== undefined) pushParsed(files, errors, parseRepoFile(SOURCES_LIST, 'list', main));
  else if (tree.others?.has(SOURCES_LIST)) errors.push({ path: SOURCES_LIST, error: 'not a regular file!' });
  if (tree.listDir === 'other') errors.push({ path: `${SOURCES_LIST_D}/`, error: 'not a directory!' });
  if (tree.listDir === 'dir') {
    const inDir = (p: string) => p.startsWith(`${SOURCES_LIST_D}/`) && !p.slice(SOURCES_LIST_D.length + 1).includes('/');
    const names = [...new Set([...tree.files.keys(), ...(tree.others?.keys() ?? [])])].filter(inDir).sort();
    for (const path of names) {
      const other = tree.others?.get(path);
      if (other === 'dir') continue;
      const type = fileTypeOf(path);
      if (type === 'skip') continue;
      if (typeof type === 'object') {
        errors.push({ path, error: type.error });
        continue;
      }
      const content = tree.files.get(path);
      if (content === undefined) {
        errors.push({ path, error: 'not a regular file' });
        continue;
      }
      pushParsed(files, errors, parseRepoFile(path, type, content));
    }
  }
  return { files, errors, digest: commonDigest(files) };
}

function pushParsed(files: RepoFile[], errors: RepoFileError[], parsed: RepoFile | RepoFileError): void {
  if ('error' in parsed) errors.push(parsed);
  else files.push(parsed);
}

/** mod.rs `common_digest`: invariant to file order. */
export function commonDigest(files: readonly RepoFile[]): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return sha256(Buffer.concat(sorted.map((f) => f.digest))).toString('hex');
}

// ---------------------------------------------------------------------------
// infos (file.rs `check_suites`, `check_uris`)

export interface RepoInfo {
  path: string;
  index: number;
  property?: string;
  kind: string;
  message: string;
}

function suiteVariant(suite: string): [string, string] {
  const n = suite.search(/[-/]/);
  return n < 0 ? [suite, ''] : [suite.slice(0, n), suite.slice(n)];
}

/** file.rs `check_suites`: old, unstable or misspelt suites. */
export function checkSuites(file: RepoFile, current: string): RepoInfo[] {
  const infos: RepoInfo[] = [];
  const currentRank = codenameRank(current);
  file.repositories.forEach((repo, index) => {
    if (!repo.types.includes('deb')) return;
    const security = repo.uris.some((uri) => {
      let u = uri.replace(/\/+$/, '');
      if (u.endsWith('debian-security')) u = u.slice(0, -'debian-security'.length);
      u = u.replace(/\/+$/, '');
      return u === 'http://security.debian.org' || u === 'https://security.debian.org';
    });
    const requireSuffix = security ? (currentRank >= codenameRank('bullseye') ? '-security' : '/updates') : null;
    const add = (kind: string, message: string) => infos.push({ path: file.path, index, property: 'Suites', kind, message });
    for (const suite of repo.suites) {
      const [base, suffix] = suiteVariant(suite);
      if (base === 'oldoldstable' || base === 'oldstable') add('warning', `old suite '${base}' configured!`);
      else if (['testing', 'unstable', 'experimental', 'sid'].includes(base)) add('warning', `suite '${base}' should not be used in production!`);
      else if (base === 'stable') add('warning', "use the name of the stable distribution instead of 'stable'!");
      if (!isKnownCodename(base)) continue;
      const rank = codenameRank(base);
      if (rank < currentRank) add('warning', `old suite '${base}' configured!`);
      if (isKnownCodename(current) && rank === currentRank + 1) add('ignore-pre-upgrade-warning', `suite '${base}' should not be used in production!`);
      else if (rank > currentRank) add('warning', `suite '${base}' should not be used in production!`);
      if (requireSuffix !== null && suffix !== requireSuffix) add('warning', `expected suite '${current}${requireSuffix}'`);
    }
  });
  return infos;
}

/** repository.rs `uri_to_filename` (APT's URItoFileName). */
export function uriToFilename(uri: string): string {
  let name = uri;
  const scheme = name.indexOf('://');
  if (scheme >= 0) name = name.slice(scheme + 3);
  if (uri.startsWith('http://') || uri.startsWith('https://')) {
    const at = name.indexOf('@');
    if (at >= 0) name = name.slice(at + 1);
  }
  if (name.endsWith('/')) name = name.slice(0, -1);
  const encode = '\\|{}[]<>"^~_=!@#$%^&*';
  let out = '';
  for (const b of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(b);
    out += b <= 0x20 || b >= 0x7f || encode.includes(c) ? `%${b.toString(16).padStart(2, '0')}` : c;
  }
  return out.replaceAll('/', '_');
}

/** repository.rs `release_filename`: the (In)Release file apt keeps in its lists for a URI and suite. */
export function releaseFilename(uri: string, suite: string, detached: boolean, listsDir = APT_LISTS_DIR): string {
  const file = detached ? 'Release' : 'InRelease';
  const base = uriToFilename(uri);
  if (suite === '/') return `${listsDir}/${base}_${file}`;
  if (suite === './') return `${listsDir}/${base}_._${file}`;
  return `${listsDir}/${base}_dists_${suite.replaceAll('/', '_')}_${file}`;
}

/** repository.rs `origin_from_uris`. */
export function originFromUris(repo: AptRepository): string | null {
  for (const uri of repo.uris) {
    const m = /^https?:\/\/([^/]*)/.exec(uri);
    if (!m) continue;
    let host = m[1]!;
    const at = host.indexOf('@');
    if (at >= 0) host = host.slice(at + 1);
    host = host.split(':')[0]!;
    if (host === 'proxmox.com' || host.endsWith('.proxmox.com')) return 'Proxmox';
    if (host === 'debian.org' || host.endsWith('.debian.org')) return 'Debian';
  }
  return null;
}

/** file.rs `check_uris`: each repository's origin, from apt's cached InRelease or its host. */
export function checkUris(file: RepoFile, readList: (path: string) => string | null): RepoInfo[] {
  const infos: RepoInfo[] = [];
  file.repositories.forEach((repo, index) => {
    let origin: string | null = null;
    search: for (const uri of repo.uris) {
      for (const suite of repo.suites) {
        const text = readList(releaseFilename(uri, suite, false)) ?? readList(releaseFilename(uri, suite, true));
        if (text === null) continue;
        for (const line of text.split('\n')) {
          if (line.startsWith('Origin:')) {
            origin = trimAscii(line.slice('Origin:'.length));
            break search;
          }
        }
      }
    }
    origin ??= originFromUris(repo);
    if (origin !== null) infos.push({ path: file.path, index, kind: 'origin', message: origin });
  });
  return infos;
}

// ---------------------------------------------------------------------------
// the API (api.rs)

/** How GET /nodes/{node}/apt/repositories answers (APT.pm `repositories`). */
export interface RepositoriesResult {
  files: { path: string; 'file-type': FileType; repositories: Record<string, unknown>[]; digest: number[] }[];
  errors: RepoFileError[];
  digest: string;
  infos: RepoInfo[];
  'standard-repos': { handle: string; status?: boolean; name: string; description: string }[];
}

/** An APTRepository as the API serialises it. */
export function repositoryJson(repo: AptRepository): Record<string, unknown> {
  return {
    ...(repo.types.length ? { Types: repo.types } : {}),
    ...(repo.uris.length ? { URIs: repo.uris } : {}),
    ...(repo.suites.length ? { Suites: repo.suites } : {}),
    ...(repo.components.length ? { Components: repo.components } : {}),
    ...(repo.options.length ? { Options: repo.options.map((o) => ({ Key: o.key, Values: o.values })) } : {}),
    ...(repo.comment ? { Comment: repo.comment } : {}),
    FileType: repo.fileType,
    Enabled: repo.enabled,
  };
}

/** mod.rs `standard_repositories`: the offered ones, each with its status when configured (enabled wins). */
export function standardStatus(files: readonly RepoFile[], codename: string): RepositoriesResult['standard-repos'] {
  return standardEntries(codename).map((entry) => {
    let status: boolean | undefined;
    for (const file of files) {
      for (const repo of file.repositories) {
        if (status === true) break;
        if (isReferencedBy(entry, repo, codename)) status = repo.enabled;
      }
    }
    return { handle: entry.handle, ...(status !== undefined ? { status } : {}), name: entry.name, description: entry.description };
  });
}

/** api.rs `list_repositories`. */
export function listRepositories(tree: AptTree, codename: string, readList: (path: string) => string | null): RepositoriesResult {
  const { files, errors, digest } = readRepositories(tree);
  return {
    files: files.map((f) => ({ path: f.path, 'file-type': f.fileType, repositories: f.repositories.map(repositoryJson), digest: [...f.digest] })),
    errors,
    digest,
    infos: files.flatMap((f) => [...checkSuites(f, codename), ...checkUris(f, readList)]),
    'standard-repos': standardStatus(files, codename),
  };
}

/** A file the API writes: its new content, or null when it removes it. */
export interface ApiWrite {
  path: string;
  before: string | null;
  after: string | null;
}

/** An error the API dies with (the text pvesh prints). */
export class AptApiError extends Error {}
const apiDie = (message: string): never => {
  throw new AptApiError(message);
};

export const MODIFIED = 'detected modified configuration - file changed by other user? Try again.';
const HANDLE_RE = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

function checkDigest(current: string, given: string | undefined): void {
  if (given === undefined) return;
  if (!/^[0-9a-fA-F]{64}$/.test(given)) apiDie(`invalid digest '${given}'`);
  if (given.toLowerCase() !== current) apiDie(MODIFIED);
}

const contentOf = (tree: AptTree, path: string): string | null => tree.files.get(path) ?? null;

function writeFile(tree: AptTree, file: { path: string; repositories: AptRepository[] }): ApiWrite {
  for (const [n, repo] of file.repositories.entries()) {
    const problem = basicCheck(repo);
    if (problem) apiDie(`proxmox-apt error for '${file.path}' - check for repository ${n + 1} - ${problem}`);
  }
  return { path: file.path, before: contentOf(tree, file.path), after: renderRepoFile(file.repositories) };
}

/**
 * api.rs `add_repository_handle` (PUT .../apt/repositories --handle): a
 * configured one is enabled (and a legacy component spelling fixed), else the
 * standard repository is appended to its file in the node's format.
 */
export function addRepositoryHandle(tree: AptTree, codename: string, handle: string, digest?: string): ApiWrite[] {
  const { files, errors, digest: current } = readRepositories(tree);
  checkDigest(current, digest);
  if (!HANDLE_RE.test(handle)) apiDie(`invalid APT repository handle: '${handle}'`);
  const entry = standardEntries(codename).find((e) => e.handle === handle);
  for (const file of files) {
    for (const repo of file.repositories) {
      if (!entry || !isReferencedBy(entry, repo, codename)) continue;
      const canonicalized = canonicalizeComponents(repo, codename);
      if (repo.enabled) return canonicalized ? [writeFile(tree, file)] : [];
      setEnabled(repo, true);
      return [writeFile(tree, file)];
    }
  }
  if (!entry) return apiDie(`no standard repository for handle '${handle}' on host product 'pve' and suite '${codename}'`);
  const { repo, path } = standardRepository(entry, codename);
  const error = errors.find((e) => e.path === path);
  if (error) apiDie(`unable to parse existing file ${error.path} - ${error.error}`);
  const file = files.find((f) => f.path === path);
  if (file) {
    file.repositories.push(repo);
    return [writeFile(tree, file)];
  }
  const type = fileTypeOf(path);
  if (typeof type !== 'string' || type === 'skip') return apiDie(`invalid path - ${path}`);
  return [writeFile(tree, { path, repositories: [repo] })];
}

/** api.rs `change_repository` (POST .../apt/repositories --path --index [--enabled]): the file is written again in any case. */
export function changeRepository(tree: AptTree, path: string, index: number, enabled: boolean | undefined, digest?: string): ApiWrite[] {
  const { files, errors, digest: current } = readRepositories(tree);
  checkDigest(current, digest);
  const error = errors.find((e) => e.path === path);
  if (error) apiDie(`unable to parse file ${error.path} - ${error.error}`);
  const file = files.find((f) => f.path === path);
  if (!file) return apiDie(`invalid path - ${path}`);
  const repo = file.repositories[index];
  if (!repo) return apiDie(`invalid index - ${index}`);
  if (enabled !== undefined) setEnabled(repo, enabled);
  return [writeFile(tree, file)];
}

/** A tree with the API's writes applied (for predicting the next call). */
export function applyWrites(tree: AptTree, writes: readonly ApiWrite[]): AptTree {
  const files = new Map(tree.files);
  let listDir = tree.listDir;
  for (const w of writes) {
    if (w.after === null) files.delete(w.path);
    else {
      files.set(w.path, w.after);
      if (w.path.startsWith(`${SOURCES_LIST_D}/`) && listDir === 'missing') listDir = 'dir';
    }
  }
  return { files, ...(tree.others ? { others: tree.others } : {}), listDir };
}
