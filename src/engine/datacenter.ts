/**
 * Which node applied a datacenter step, cluster-wide. A Proxmox cluster
 * shares /etc/pve (pmxcfs replicates it to every node): users, ACLs, tokens,
 * tfa.cfg and cluster.fw are the datacenter's, while sshd, host.fw and the
 * packages are each node's own. A step says which it is (`Step.scope`), and
 * a change may say otherwise for itself (`scope` on a change: the firewall's
 * host.fw call is per node).
 *
 * The record is one small JSON file in /etc/pve, so every node reads what
 * the others did:
 *
 *   /etc/pve/pve-baseline/datacenter.json
 *   { "schemaVersion": 1, "steps": { "firewall": { "node": "pve1", "at": "...", "applyId": "...", "changes": 3 } } }
 *
 * An entry is written when a datacenter step's datacenter-scope changes are
 * verified on a node (for a guarded step: kept, by the wizard or by
 * `pve-baseline confirm`), and removed when that node reverts the apply that
 * wrote it. `changes` is how many datacenter-scope changes that apply made; it
 * holds no answers and nothing secret. A damaged or foreign file is ignored
 * with a note, never a crash. Where /etc/pve does not exist (not a Proxmox
 * node, a rehearsal, unit tests) nothing is read or written.
 *
 * Between the apply and the confirmation of a guarded step the count waits
 * in the state directory (`datacenter-pending.json`, this node's own), so
 * `pve-baseline confirm`, which has no plan, records it all the same.
 */
import path from 'node:path';
import type { Change } from './change.ts';
import type { Scope } from './step.ts';
import type { NodeInfo } from '../system/detect.ts';
import type { Files } from '../system/files.ts';

export const PVE_DIR = '/etc/pve';
export const DATACENTER_RECORD = '/etc/pve/pve-baseline/datacenter.json';
const SCHEMA_VERSION = 1;
/** pmxcfs keeps files small; a record of a dozen steps is well under 4 KiB. */
const MAX_RECORD_BYTES = 64 * 1024;
const PENDING_FILE = 'datacenter-pending.json';

export interface DatacenterEntry {
  /** The node's name as Proxmox knows it (the host name up to the first dot). */
  node: string;
  /** ISO time the apply was verified (or kept). */
  at: string;
  applyId?: string;
  /** How many datacenter-scope changes that apply made. */
  changes: number;
}

export interface DatacenterRecord {
  entries: Record<string, DatacenterEntry>;
  /** What was wrong with the file, if anything (it was ignored in part or whole). */
  notes: string[];
  /** The file is a newer pve-baseline's: read nothing from it, and never write over it. */
  newer?: boolean;
}

/** The node's name as Proxmox uses it (PVE::INotify nodename: the host name up to the first dot). */
export function nodeName(node: Pick<NodeInfo, 'hostname'>): string {
  return node.hostname.split('.')[0]!;
}

/** A change's scope: its own, else its step's. */
export function changeScope(change: Change, step: { scope: Scope }): Scope {
  return change.scope ?? step.scope;
}

/** The datacenter-scope changes of a plan (none for a node step). */
export function datacenterChanges(step: { scope: Scope }, changes: readonly Change[]): Change[] {
  return changes.filter((c) => changeScope(c, step) === 'datacenter');
}

/** "2026-12-03 17:40 UTC" */
export function utcMinute(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')} UTC`;
}

/** "applied from pve1 on 2026-12-03 17:40 UTC" */
export function describeAppliedFrom(entry: Pick<DatacenterEntry, 'node' | 'at'>): string {
  return `applied from ${entry.node} on ${utcMinute(entry.at)}`;
}

const NODE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const STEP_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const APPLY_ID = /^[A-Za-z0-9._-]{1,128}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/;

function entryProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not an object';
  const e = value as Record<string, unknown>;
  if (typeof e.node !== 'string' || !NODE_NAME.test(e.node)) return 'has no valid node name';
  if (typeof e.at !== 'string' || !ISO_TIME.test(e.at) || Number.isNaN(Date.parse(e.at))) return 'has no valid time';
  if (e.applyId !== undefined && (typeof e.applyId !== 'string' || !APPLY_ID.test(e.applyId))) return 'has an invalid applyId';
  if (typeof e.changes !== 'number' || !Number.isInteger(e.changes) || e.changes < 0 || e.changes > 100_000) return 'has no valid count of changes';
  return undefined;
}

/** The record from the file's text: every valid entry, and a note for whatever was not. */
export function parseDatacenterRecord(text: string, file = DATACENTER_RECORD): DatacenterRecord {
  const ignored = (why: string): DatacenterRecord => ({ entries: {}, notes: [`${file} ${why}; it is ignored (it only says which node applied a datacenter step)`] });
  if (text.length > MAX_RECORD_BYTES) return ignored(`is larger than ${MAX_RECORD_BYTES / 1024} KiB`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return ignored('is not JSON');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return ignored('is not a JSON object');
  const { schemaVersion, steps } = data as Record<string, unknown>;
  if (typeof schemaVersion === 'number' && Number.isInteger(schemaVersion) && schemaVersion > SCHEMA_VERSION) {
    return { entries: {}, notes: [`${file} was written by a newer pve-baseline (schema ${schemaVersion}); it is left as it is`], newer: true };
  }
  if (schemaVersion !== SCHEMA_VERSION) return ignored('is not a pve-baseline record (no schemaVersion 1)');
  if (typeof steps !== 'object' || steps === null || Array.isArray(steps)) return ignored('has no steps object');
  const entries: Record<string, DatacenterEntry> = {};
  const notes: string[] = [];
  for (const [id, value] of Object.entries(steps)) {
    const shownId = STEP_ID.test(id) ? id : JSON.stringify(id.slice(0, 40)).replace(/[^\x20-\x7e]/g, '?');
    if (!STEP_ID.test(id)) {
      notes.push(`${file}: the entry ${shownId} is not a step id; it is ignored`);
      continue;
    }
    const problem = entryProblem(value);
    if (problem) {
      notes.push(`${file}: the entry for ${shownId} ${problem}; it is ignored`);
      continue;
    }
    const e = value as DatacenterEntry;
    entries[id] = { node: e.node, at: e.at, ...(e.applyId !== undefined ? { applyId: e.applyId } : {}), changes: e.changes };
  }
  return { entries, notes };
}

/** Whether this machine has the cluster file system's directory at all. */
async function hasPveDir(files: Pick<Files, 'meta'>): Promise<boolean> {
  try {
    return (await files.meta(PVE_DIR)) !== null;
  } catch {
    return false;
  }
}

/** The shared record; empty where /etc/pve does not exist or the file is missing. Never throws. */
export async function readDatacenterRecord(files: Pick<Files, 'read' | 'meta'>): Promise<DatacenterRecord> {
  if (!(await hasPveDir(files))) return { entries: {}, notes: [] };
  let text: string | null;
  try {
    text = await files.read(DATACENTER_RECORD);
  } catch (error) {
    return { entries: {}, notes: [`${DATACENTER_RECORD} could not be read (${(error as Error).message}); it is ignored`] };
  }
  return text === null ? { entries: {}, notes: [] } : parseDatacenterRecord(text);
}

/** The file's text for these entries, sorted by step id (a stable diff when pmxcfs replicates it). */
function recordText(entries: Record<string, DatacenterEntry>): string {
  const steps = Object.fromEntries(Object.entries(entries).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify({ schemaVersion: SCHEMA_VERSION, steps }, null, 2)}\n`;
}

/**
 * Change the record with `edit` and write it back atomically through `files`
 * (mode 0640, as pmxcfs keeps every file outside priv/). Returns what the
 * operator should be told (a damaged file replaced, a write that failed), or
 * nothing. Never throws: the record only describes; the step's work is done.
 */
async function editRecord(files: Files, edit: (entries: Record<string, DatacenterEntry>) => boolean): Promise<string[]> {
  if (!(await hasPveDir(files))) return [];
  const current = await readDatacenterRecord(files);
  if (current.newer) return current.notes;
  const entries = { ...current.entries };
  if (!edit(entries)) return [];
  try {
    await files.write(DATACENTER_RECORD, recordText(entries), { mode: 0o640 });
  } catch (error) {
    return [...current.notes, `${DATACENTER_RECORD} could not be written (${(error as Error).message}); the other nodes will not see which node applied this`];
  }
  return current.notes.map((n) => n.replace(/; it is ignored.*$/, '; it was replaced'));
}

/** Record that this node applied (and verified) a datacenter step's datacenter-scope changes. */
export function recordDatacenterApply(files: Files, node: Pick<NodeInfo, 'hostname'>, stepId: string, applied: { applyId?: string; changes: number; at?: Date }): Promise<string[]> {
  const entry: DatacenterEntry = {
    node: nodeName(node),
    at: (applied.at ?? new Date()).toISOString(),
    ...(applied.applyId !== undefined && APPLY_ID.test(applied.applyId) ? { applyId: applied.applyId } : {}),
    changes: applied.changes,
  };
  return editRecord(files, (entries) => {
    entries[stepId] = entry;
    return true;
  });
}

/**
 * Forget a step's entry when this node reverts the apply that wrote it. An
 * entry of another node, or of another apply (a later one of this node's
 * that changed only node settings), stays: what it describes is still there.
 */
export function forgetDatacenterApply(files: Files, node: Pick<NodeInfo, 'hostname'>, stepId: string, applyId: string | undefined): Promise<string[]> {
  return editRecord(files, (entries) => {
    const entry = entries[stepId];
    if (!entry || entry.node !== nodeName(node)) return false;
    if (entry.applyId !== undefined && entry.applyId !== applyId) return false;
    delete entries[stepId];
    return true;
  });
}

// --- between a guarded apply and its confirmation -----------------------------

type Pending = Record<string, { applyId: string; changes: number }>;

function pendingPath(stateDir: string): string {
  return path.join(stateDir, PENDING_FILE);
}

async function readPending(files: Pick<Files, 'read'>, stateDir: string): Promise<Pending> {
  try {
    const data: unknown = JSON.parse((await files.read(pendingPath(stateDir))) ?? '{}');
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return {};
    const out: Pending = {};
    for (const [id, v] of Object.entries(data as Record<string, unknown>)) {
      const p = v as { applyId?: unknown; changes?: unknown };
      if (STEP_ID.test(id) && typeof p?.applyId === 'string' && typeof p.changes === 'number' && Number.isInteger(p.changes) && p.changes >= 0) out[id] = { applyId: p.applyId, changes: p.changes };
    }
    return out;
  } catch {
    return {};
  }
}

async function writePending(files: Files, stateDir: string, pending: Pending): Promise<void> {
  if (Object.keys(pending).length) await files.write(pendingPath(stateDir), `${JSON.stringify(pending, null, 2)}\n`, { mode: 0o600 });
  else await files.remove(pendingPath(stateDir));
}

/**
 * Before a datacenter step applies datacenter-scope changes: remember how
 * many, under the apply's id, until the apply is verified or kept (then
 * `settleDatacenterApply` records it in /etc/pve). Nothing when there are none.
 */
export async function expectDatacenterApply(files: Files, stateDir: string, stepId: string, applyId: string, changes: number): Promise<string[]> {
  if (!(await hasPveDir(files))) return [];
  try {
    const pending = await readPending(files, stateDir);
    if (changes > 0) pending[stepId] = { applyId, changes };
    else if (pending[stepId]) delete pending[stepId];
    else return [];
    await writePending(files, stateDir, pending);
    return [];
  } catch (error) {
    return [`${pendingPath(stateDir)} could not be written (${(error as Error).message}); the other nodes will not see which node applied this`];
  }
}

/**
 * The one place an apply is recorded cluster-wide, wherever the step became
 * verified: the runner after a plain apply, the lockout protocol when a
 * change is kept, `pve-baseline confirm` from a new session. Records it when
 * this apply made datacenter-scope changes (as `expectDatacenterApply`
 * noted), and forgets the note.
 */
export async function settleDatacenterApply(files: Files, stateDir: string, node: Pick<NodeInfo, 'hostname'>, stepId: string, applyId: string | undefined): Promise<string[]> {
  if (applyId === undefined) return [];
  const pending = await readPending(files, stateDir);
  const expected = pending[stepId];
  if (!expected || expected.applyId !== applyId) return [];
  const notes = await recordDatacenterApply(files, node, stepId, { applyId, changes: expected.changes });
  delete pending[stepId];
  try {
    await writePending(files, stateDir, pending);
  } catch {
    // A stale note names an apply id that is never settled again: harmless.
  }
  return notes;
}

/** After a revert: the pending note of that apply goes too. */
export async function dropPendingDatacenterApply(files: Files, stateDir: string, stepId: string): Promise<void> {
  const pending = await readPending(files, stateDir);
  if (!pending[stepId]) return;
  delete pending[stepId];
  await writePending(files, stateDir, pending).catch(() => undefined);
}

/** What a step's scope says on this node, for status and the document: "this node (pve2)" or "datacenter-wide, applied from pve1 on ...". */
export function describeScope(scope: Scope, entry: DatacenterEntry | undefined, node: Pick<NodeInfo, 'hostname'>): string {
  if (scope === 'node') return `per node: this node (${nodeName(node)})`;
  if (!entry) return 'datacenter-wide: no node is recorded as having applied it';
  return `datacenter-wide: ${describeAppliedFrom(entry)}${entry.node === nodeName(node) ? ' (this node)' : ''}`;
}
