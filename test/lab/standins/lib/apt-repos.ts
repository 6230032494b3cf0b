/**
 * Proxmox's repository API for the lab's pvesh (pve-manager PVE/API2/APT.pm
 * `repositories`, `add_repository`, `change_repository`, which call
 * proxmox-apt's api.rs through Proxmox::RS::APT::Repositories): GET lists the
 * files, errors, infos, standard repositories and the digest; PUT --handle
 * adds or enables a standard repository; POST --path --index --enabled
 * toggles one. Files live under PVE_LAB_APT_ROOT (default /), so unit tests
 * run it against a temporary directory; they are written as proxmox-apt
 * writes them (the whole file again, through a temporary file and a rename).
 */
import { lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  addRepositoryHandle,
  APT_LISTS_DIR,
  AptApiError,
  changeRepository,
  codenameFromOsRelease,
  listRepositories,
  SOURCES_LIST,
  SOURCES_LIST_D,
  type ApiWrite,
  type AptTree,
} from '../../../../src/apt/repositories.ts';
import type { ApiMethod } from './api.ts';
import { nodename } from './pmxcfs.ts';
import { die, opt, type Params, type Prop } from './schema.ts';

const root = (): string => process.env.PVE_LAB_APT_ROOT || '/';
const real = (path: string): string => join(root(), path);

function kindOf(path: string): 'file' | 'dir' | 'other' | null {
  try {
    const st = lstatSync(real(path));
    return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
  } catch {
    return null;
  }
}

function readText(path: string): string | null {
  try {
    return readFileSync(real(path), 'utf8');
  } catch {
    return null;
  }
}

/** What proxmox-apt reads: sources.list and each entry of sources.list.d. */
function readTree(): AptTree {
  const files = new Map<string, string>();
  const others = new Map<string, 'dir' | 'other'>();
  const note = (path: string) => {
    const kind = kindOf(path);
    if (kind === 'file') files.set(path, readText(path) ?? '');
    else if (kind) others.set(path, kind);
  };
  note(SOURCES_LIST);
  const dirKind = kindOf(SOURCES_LIST_D);
  if (dirKind === 'dir') for (const name of readdirSync(real(SOURCES_LIST_D)).sort()) note(`${SOURCES_LIST_D}/${name}`);
  return { files, others, listDir: dirKind === 'dir' ? 'dir' : dirKind === null ? 'missing' : 'other' };
}

/** release.rs `get_current_release_codename`. */
function codename(): string {
  const text = readText('/etc/os-release');
  if (text === null) return die("unable to read '/etc/os-release' - No such file or directory (os error 2)");
  const name = codenameFromOsRelease(text);
  if (!name) return die("unable to parse codename from '/etc/os-release'");
  return name;
}

/** file.rs `write`: refuse when the file changed since it was read, else write a temporary file and rename it; no repository left removes the file. */
function apply(writes: readonly ApiWrite[]): void {
  for (const w of writes) {
    if (readText(w.path) !== w.before) die(`proxmox-apt error for '${w.path}' - digest mismatch`);
    if (w.after === null) {
      rmSync(real(w.path), { force: true });
      continue;
    }
    mkdirSync(dirname(real(w.path)), { recursive: true });
    // file.rs: set_extension("tmp") then set_extension(pid): proxmox.sources -> proxmox.<pid>
    const tmp = real(w.path).replace(/\.[^./]*$/, '') + `.${process.pid}`;
    try {
      writeFileSync(tmp, w.after);
      renameSync(tmp, real(w.path));
    } catch (error) {
      rmSync(tmp, { force: true });
      die(`proxmox-apt error for '${w.path}' - writing failed - ${(error as Error).message}`);
    }
  }
}

const apiCall = <T>(fn: () => T): T => {
  try {
    return fn();
  } catch (error) {
    if (error instanceof AptApiError) return die(error.message);
    throw error;
  }
};

function checkNode(p: Params): void {
  if (String(p.node) !== nodename()) die(`no such node '${p.node}'`);
}

const DIGEST: Prop = { type: 'string', maxLength: 80, optional: true, description: 'Digest to detect modifications.' };
const BASE = '/nodes/{node}/apt/repositories';

export const aptRepositoryMethods: ApiMethod[] = [
  {
    name: 'repositories',
    path: BASE,
    method: 'GET',
    description: 'Get APT repository information.',
    parameters: { node: opt.node() },
    returns: { type: 'object' },
    handler: (p, ctx) => {
      checkNode(p);
      ctx?.check(`/nodes/${p.node}`, ['Sys.Audit']);
      return apiCall(() => listRepositories(readTree(), codename(), (path) => (path.startsWith(`${APT_LISTS_DIR}/`) ? readText(path) : null)));
    },
  },
  {
    name: 'add_repository',
    path: BASE,
    method: 'PUT',
    description: 'Add a standard repository to the configuration',
    parameters: { node: opt.node(), handle: { type: 'string', description: 'Handle that identifies a repository.' }, digest: DIGEST },
    returns: { type: 'null' },
    handler: (p, ctx) => {
      checkNode(p);
      ctx?.check(`/nodes/${p.node}`, ['Sys.Modify']);
      apiCall(() => apply(addRepositoryHandle(readTree(), codename(), String(p.handle), p.digest === undefined ? undefined : String(p.digest))));
      return null;
    },
  },
  {
    name: 'change_repository',
    path: BASE,
    method: 'POST',
    description: 'Change the properties of a repository. Currently only allows enabling/disabling.',
    parameters: {
      node: opt.node(),
      path: { type: 'string', description: 'Path to the containing file.' },
      index: { type: 'integer', description: 'Index within the file (starting from 0).' },
      enabled: { type: 'boolean', optional: true, description: 'Whether the repository should be enabled or not.' },
      digest: DIGEST,
    },
    returns: { type: 'null' },
    handler: (p, ctx) => {
      checkNode(p);
      ctx?.check(`/nodes/${p.node}`, ['Sys.Modify']);
      const enabled = p.enabled === undefined ? undefined : String(p.enabled) === '1' || String(p.enabled) === 'true';
      apiCall(() => apply(changeRepository(readTree(), String(p.path), Number(p.index), enabled, p.digest === undefined ? undefined : String(p.digest))));
      return null;
    },
  },
];
