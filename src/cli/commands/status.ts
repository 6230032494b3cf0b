/**
 * `pve-baseline status [--json]`: what the journal holds, and first of all
 * any change the node will revert unless someone confirms it.
 */
import { readStatus } from '../../backup/status.ts';
import { persistableAnswers, type AnyStep } from '../../engine/step.ts';
import { describeProof, type StepRecord } from '../../engine/journal.ts';
import { GUARD_PHASE_TEXT } from '../../engine/events.ts';
import { DATACENTER_RECORD, describeScope, nodeName, readDatacenterRecord, type DatacenterEntry } from '../../engine/datacenter.ts';
import { EXIT } from '../args.ts';
import type { Runtime } from '../runtime.ts';
import { printableOutput, type Output } from './io.ts';
import { readOnlyJournal } from './runner.ts';

export async function statusCommand(runtime: Runtime, steps: readonly AnyStep[], options: { json: boolean }, output: Output): Promise<number> {
  // The journal's text (errors, notes, answers) never reaches the terminal raw; JSON escapes it itself.
  const io = options.json ? output : printableOutput(output);
  const journal = readOnlyJournal(runtime);
  const records = withoutSecrets(journal.all(), steps);
  const { pendingReverts, revertIdOf, revertResult } = await import('../../engine/revert/index.ts');
  // Changes the node will put back unless someone confirms them: the first thing an operator must know.
  const listed = await pendingReverts(runtime.files, { stateDir: runtime.stateDir });
  // A damaged index is said first; the markers on disk still say what is pending.
  if (listed.indexError) io.err(`pve-baseline: ${listed.indexError.message}`);
  const damaged = listed.indexError ? EXIT.usage : EXIT.ok;
  const reverts = listed.map((p) => ({
    ...p,
    stepId: Object.entries(records).find(([, rec]) => armedRevertOf(rec, revertIdOf) === p.id)?.[0],
  }));
  // The config backup records its runs beside the journal (src/backup/status.ts).
  const backup = await readStatus(runtime.files, runtime.stateDir);
  // Which node applied each datacenter step, from the record every node of the cluster shares (src/engine/datacenter.ts).
  const datacenter = await readDatacenterRecord(runtime.files);
  const scopes = Object.fromEntries(steps.map((step) => [step.id, scopeOf(step, datacenter.entries[step.id], runtime)]));
  if (options.json) {
    io.out(JSON.stringify({ journal: journal.path, bootId: runtime.node.bootId, node: nodeName(runtime.node), steps: records, scopes, datacenterRecord: DATACENTER_RECORD, pendingReverts: reverts, configBackup: backup }, null, 2));
    return damaged;
  }
  for (const note of datacenter.notes) io.err(`pve-baseline: ${note}`);
  for (const p of reverts) {
    const when = new Date(p.deadline).toISOString();
    io.out(
      p.state === 'pending'
        ? `AWAITING CONFIRMATION: ${p.stepId ?? p.id}: the node reverts it at ${when} (${p.secondsLeft} s left) unless pve-baseline confirm runs from a new session.`
        : `INTERRUPTED REVERT: ${p.stepId ?? p.id}: a revert started and did not finish${p.result ? ` (${p.result.split('\n')[0]})` : ''}; the boot hook tries again, or run sh ${p.script} now.`,
    );
  }
  io.out(`Journal ${journal.path}`);
  if (journal.isEmpty) {
    io.out('No step has run on this node yet.');
    // Another node of the cluster may have applied the shared steps already.
    for (const step of steps) {
      const entry = step.scope === 'datacenter' ? datacenter.entries[step.id] : undefined;
      if (entry) io.out(`${step.id.padEnd(16)} ${describeScope('datacenter', entry, runtime.node)}`);
    }
    return damaged;
  }
  for (const step of steps) {
    const r = records[step.id];
    // Applied, unconfirmed, and the node has since put it back: the next run records it.
    const revertId = r ? armedRevertOf(r, revertIdOf) : undefined;
    const byTheNode = r?.status === 'applied' && revertId ? await revertResult(runtime.files, revertId, { stateDir: runtime.stateDir }) : null;
    printStep(runtime, step.id, r, byTheNode, io);
    io.out(`${' '.repeat(17)}${describeScope(step.scope, datacenter.entries[step.id], runtime.node)}`);
  }
  if (backup) {
    const { last, lastGood } = backup;
    io.out(`Config backup: the last run ${last.at} ${last.ok ? `succeeded${last.archive ? `: ${last.archive.name}` : ''}` : `FAILED: ${last.error ?? 'unknown'}`}`);
    if (!last.ok) io.out(`  the last good one: ${lastGood ? `${lastGood.at}${lastGood.archive ? `: ${lastGood.archive.name}` : ''}` : 'none'}`);
  }
  return damaged;
}

/** A step's scope in status --json: a node step is this node's; a datacenter step names the node the shared record holds, if any. */
function scopeOf(step: AnyStep, entry: DatacenterEntry | undefined, runtime: Runtime): { scope: 'node'; node: string } | { scope: 'datacenter'; appliedFrom?: { node: string; at: string } } {
  if (step.scope === 'node') return { scope: 'node', node: nodeName(runtime.node) };
  return { scope: 'datacenter', ...(entry ? { appliedFrom: { node: entry.node, at: entry.at } } : {}) };
}

/** The revert armed for a step's last guarded apply (journals before the guard record named it after the apply id). */
function armedRevertOf(record: StepRecord, revertIdOf: (applyId: string) => string): string | undefined {
  return record.guard?.revertId ?? (record.applyId !== undefined ? revertIdOf(record.applyId) : undefined);
}

function printStep(runtime: Runtime, stepId: string, r: StepRecord | undefined, byTheNode: string | null, io: Output): void {
  const indent = ' '.repeat(17);
  const status = r?.status ?? 'pending';
  const when = r ? `${r.updatedAt}${r.bootId !== runtime.node.bootId ? ' (before the last reboot)' : ''}` : '';
  io.out(`${stepId.padEnd(16)} ${status.padEnd(9)} ${when}`);
  if (r?.error) io.out(`${indent}${r.error}`);
  if (byTheNode?.startsWith('reverted')) io.out(`${indent}the node reverted it, unconfirmed: ${byTheNode}`);
  if (r?.guard) {
    const last = r.guard.phases.at(-1);
    io.out(`${indent}lockout protocol: ${GUARD_PHASE_TEXT[r.guard.phase]}${last ? ` at ${last.at}` : ''}${last?.detail ? ` (${last.detail})` : ''}`);
  }
  if (r?.proof) io.out(`${indent}access proven: ${describeProof(r.proof)}`);
  const answers = Object.entries(r?.answers ?? {});
  if (answers.length) io.out(`${indent}answers: ${answers.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}`);
  for (const f of r?.applied ?? []) if (f.kind === 'file') io.out(`${indent}backup of ${f.path}: ${f.backup.existed ? f.backup.copy : '(did not exist)'}`);
}

/**
 * The records as status shows them: a journal written by an older version
 * may still hold a secret answer (a password hash), which is never printed;
 * a step this version does not know keeps no answers, as which are secret
 * cannot be told.
 */
function withoutSecrets(records: Record<string, StepRecord>, steps: readonly AnyStep[]): Record<string, StepRecord> {
  return Object.fromEntries(
    Object.entries(records).map(([id, record]) => {
      const step = steps.find((s) => s.id === id);
      return [id, { ...record, answers: step ? persistableAnswers(step, record.answers) : {} }];
    }),
  );
}
