/**
 * The non-interactive commands: apply (answers file), check (read-only
 * audit) and status (the journal). Each returns an exit code and writes
 * plain text (or JSON) through `out`.
 */
import { chmod, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Operator, StepResult } from '../engine/events.ts';
import { Journal } from '../engine/journal.ts';
import { AnswerError, revertStep, Runner } from '../engine/runner.ts';
import { describeUndo } from '../engine/apply.ts';
import type { AnyStep } from '../engine/step.ts';
import { describeChange } from '../engine/change.ts';
import { describeNode } from '../system/detect.ts';
import { renderAccessPolicy } from '../report/access-policy.ts';
import { collectPolicyFacts } from '../report/facts.ts';
import { EXIT } from './args.ts';
import { HeadlessOperator } from './headless.ts';
import { plainEventPrinter, resultsSummary } from './plain-output.ts';
import { backupStore, lock, openJournal, type Runtime } from './runtime.ts';

export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
}

export const NOT_ROOT =
  'pve-baseline changes system files and must run as root; nothing was changed. Run it as root (on Proxmox VE you log in as root, or use sudo -i).';

export async function applyCommand(
  runtime: Runtime,
  steps: readonly AnyStep[],
  options: { answers: string; yes: boolean; dryRun: boolean; only?: string[] },
  io: Output,
  version: string,
): Promise<number> {
  let text: string;
  try {
    text = await readFile(options.answers, 'utf8');
  } catch (error) {
    io.err(`pve-baseline: cannot read the answers file ${options.answers}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    return EXIT.usage;
  }
  // The YAML parser is loaded only here, keeping it off the wizard's start-up path.
  const { AnswersFileError, parseAnswersFile } = await import('./answers.ts');
  let preset;
  try {
    preset = await parseAnswersFile(text, path.basename(options.answers), steps, { files: runtime.files });
  } catch (error) {
    if (!(error instanceof AnswersFileError)) throw error;
    io.err(`pve-baseline: the answers file has ${error.problems.length === 1 ? 'a problem' : `${error.problems.length} problems`}; nothing was changed:`);
    for (const p of error.problems) io.err(`  ${p}`);
    return EXIT.usage;
  }
  const unknown = options.only?.filter((id) => !steps.some((s) => s.id === id));
  if (unknown?.length) {
    io.err(`pve-baseline: --only: unknown step ${unknown.join(', ')} (steps: ${steps.map((s) => s.id).join(', ')})`);
    return EXIT.usage;
  }
  const dryRun = options.dryRun || !options.yes;
  if (!runtime.node.isRoot && !dryRun) {
    io.err(`pve-baseline: ${NOT_ROOT}`);
    return EXIT.notRoot;
  }
  const held = dryRun ? null : lock(runtime, 'apply');
  if (held && !held.ok) {
    io.err(`pve-baseline: ${held.message}`);
    return EXIT.locked;
  }
  if (held?.ok && held.staleNote) io.err(`pve-baseline: ${held.staleNote}`);
  try {
    const journal = dryRun ? readOnlyJournal(runtime) : openJournal(runtime);
    const operator: Operator = new HeadlessOperator(options.yes, io.out, new Set(Object.keys(preset ?? {})));
    let total = 0;
    const runner = new Runner({
      steps,
      journal,
      ctx: { exec: runtime.exec, files: runtime.files, node: runtime.node },
      backups: backupStore(runtime),
      operator,
      presetAnswers: preset,
      dryRun,
      onEvent: plainEventPrinter(io.out, () => total),
      ...(options.only ? { only: options.only } : {}),
    });
    total = runner.stepInfos().length;
    io.out(`pve-baseline ${version} ${dryRun ? 'dry run' : 'apply'} on ${describeNode(runtime.node)}${runtime.node.rehearsal ? ' [REHEARSAL]' : ''}`);
    let results;
    try {
      results = await runner.run();
    } catch (error) {
      if (error instanceof AnswerError) {
        io.err(`pve-baseline: ${options.answers}: ${error.message}`);
        return EXIT.usage;
      }
      throw error;
    }
    io.out(resultsSummary(results));
    if (dryRun && results.some((r) => r.outcome === 'planned')) {
      io.out(options.dryRun ? 'Dry run: nothing was changed.' : 'Nothing was changed. Run again with --yes to apply these plans.');
    }
    // Unattended, a step left undone for want of an answer is a failure of the run, not a quiet skip.
    const unanswered = results.filter((r) => r.outcome === 'skipped' && r.reason?.startsWith('needs an answer for '));
    if (unanswered.length) {
      io.err(`pve-baseline: the answers file does not give: ${unanswered.map((r) => r.reason!.slice('needs an answer for '.length)).join(', ')}`);
    }
    return results.some((r) => r.outcome === 'failed') || (!dryRun && unanswered.length) ? EXIT.failedOrDrift : EXIT.ok;
  } finally {
    if (held?.ok) held.release();
  }
}

/** What check and dry runs read: the journal as it is, never written. */
function readOnlyJournal(runtime: Runtime): Journal {
  return Journal.snapshot(runtime.stateDir, runtime.node.bootId);
}

/** What `check --json` prints. README.md ("The `check --json` contract") documents every field; keep the two together. */
export interface CheckReport {
  node: { hostname: string; proxmox: string | null; debian: string | null };
  compliant: boolean;
  steps: {
    id: string;
    title: string;
    status: CheckStatus;
    reason?: string;
    changes: { kind: string; summary: string; reason: string }[];
  }[];
}

export type CheckStatus = 'compliant' | 'drift' | 'not-applicable' | 'error';

/**
 * A failed step whose checks failed (verification, or a pre-flight refusing
 * its plan) found the node not as intended: that is drift. A failure without
 * checks means the step could not probe or plan at all: an error.
 */
function checkStatus(r: StepResult): CheckStatus {
  switch (r.outcome) {
    case 'compliant':
    case 'not-applicable':
      return r.outcome;
    case 'failed':
      return r.checks?.length ? 'drift' : 'error';
    default:
      return 'drift';
  }
}

/** Probe and plan every step with what the journal remembers (or detected defaults); change nothing. */
export async function checkCommand(runtime: Runtime, steps: readonly AnyStep[], options: { json: boolean }, io: Output): Promise<number> {
  const journal = readOnlyJournal(runtime);
  const plans = new Map<string, { kind: string; summary: string; reason: string }[]>();
  const runner = new Runner({
    steps,
    journal,
    ctx: { exec: runtime.exec, files: runtime.files, node: runtime.node },
    backups: backupStore(runtime),
    operator: new HeadlessOperator(false),
    dryRun: true,
    onEvent: (event) => {
      if (event.type === 'step-planned') {
        plans.set(
          event.plan.stepId,
          event.plan.changes.map((c) => ({ kind: c.kind, summary: describeChange(c), reason: c.reason })),
        );
      }
    },
  });
  const results = await runner.run();
  const report: CheckReport = {
    node: {
      hostname: runtime.node.hostname,
      proxmox: runtime.node.proxmox?.version ?? null,
      debian: runtime.node.debian ? `${runtime.node.debian.version} (${runtime.node.debian.codename})` : null,
    },
    compliant: results.every((r) => r.outcome === 'compliant' || r.outcome === 'not-applicable'),
    steps: results.map((r) => ({
      id: r.stepId,
      title: r.title,
      status: checkStatus(r),
      ...(r.reason ? { reason: r.reason } : {}),
      changes: plans.get(r.stepId) ?? [],
    })),
  };
  if (options.json) io.out(JSON.stringify(report, null, 2));
  else {
    io.out(`pve-baseline check on ${describeNode(runtime.node)}`);
    const width = Math.max(...report.steps.map((s) => s.id.length), 4);
    for (const s of report.steps) {
      io.out(`${s.id.padEnd(width)}  ${s.status.padEnd(14)}  ${s.title}${s.reason ? ` (${s.reason})` : ''}`);
      for (const c of s.changes) {
        io.out(`${' '.repeat(width + 18)}would ${c.summary}`);
        // Why: for a hand-edited file this names the settings that changed.
        io.out(`${' '.repeat(width + 20)}why: ${c.reason}`);
      }
    }
    io.out(report.compliant ? 'Compliant.' : `Drift in ${report.steps.filter((s) => s.status !== 'compliant' && s.status !== 'not-applicable').length} of ${report.steps.length} steps.`);
  }
  // 2 when some step could not be checked at all, even if others drift: the audit is incomplete.
  if (report.steps.some((s) => s.status === 'error')) return EXIT.usage;
  return report.compliant ? EXIT.ok : EXIT.failedOrDrift;
}

export async function statusCommand(runtime: Runtime, steps: readonly AnyStep[], options: { json: boolean }, io: Output): Promise<number> {
  const journal = readOnlyJournal(runtime);
  const records = journal.all();
  const { pendingReverts, revertIdOf, revertResult } = await import('../engine/revert-guard.ts');
  // Changes the node will put back unless someone confirms them: the first thing an operator must know.
  const reverts = (await pendingReverts(runtime.files, { stateDir: runtime.stateDir })).map((p) => ({
    ...p,
    stepId: Object.entries(records).find(([, rec]) => rec.applyId !== undefined && revertIdOf(rec.applyId) === p.id)?.[0],
  }));
  if (options.json) {
    io.out(JSON.stringify({ journal: journal.path, bootId: runtime.node.bootId, steps: records, pendingReverts: reverts }, null, 2));
    return EXIT.ok;
  }
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
    return EXIT.ok;
  }
  for (const step of steps) {
    const r = records[step.id];
    const status = r?.status ?? 'pending';
    const when = r ? `${r.updatedAt}${r.bootId !== runtime.node.bootId ? ' (before the last reboot)' : ''}` : '';
    io.out(`${step.id.padEnd(16)} ${status.padEnd(9)} ${when}`);
    if (r?.error) io.out(`${' '.repeat(17)}${r.error}`);
    // Applied, unconfirmed, and the node has since put it back: the next run records it.
    const byTheNode = r?.status === 'applied' && r.applyId ? await revertResult(runtime.files, revertIdOf(r.applyId), { stateDir: runtime.stateDir }) : null;
    if (byTheNode?.startsWith('reverted')) io.out(`${' '.repeat(17)}the node reverted it, unconfirmed: ${byTheNode}`);
    const answers = Object.entries(r?.answers ?? {});
    if (answers.length) io.out(`${' '.repeat(17)}answers: ${answers.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}`);
    const files = (r?.applied ?? []).filter((a) => a.kind === 'file');
    for (const f of files) if (f.kind === 'file') io.out(`${' '.repeat(17)}backup of ${f.path}: ${f.backup.existed ? f.backup.copy : '(did not exist)'}`);
  }
  return EXIT.ok;
}

/** Undo one step from what the journal recorded; shows the undo first, acts only with --yes. */
export async function revertCommand(runtime: Runtime, steps: readonly AnyStep[], options: { step: string; yes: boolean }, io: Output): Promise<number> {
  const step = steps.find((s) => s.id === options.step);
  if (!step) {
    io.err(`pve-baseline: revert: unknown step ${options.step} (steps: ${steps.map((s) => s.id).join(', ')})`);
    return EXIT.usage;
  }
  const record = readOnlyJournal(runtime).step(step.id);
  if (!record?.applied.length) {
    io.out(`Nothing to revert for ${step.id}: the journal holds no change of it${record ? ` (status ${record.status})` : ''}.`);
    return EXIT.ok;
  }
  io.out(`Reverting ${step.id} (${step.title}) ${options.yes ? 'does' : 'would do'} this, newest change first:`);
  for (const line of describeUndo(record.applied)) io.out(`  ${line}`);
  if (!options.yes) {
    io.out('Nothing was changed. Run again with --yes to revert.');
    return EXIT.ok;
  }
  if (!runtime.node.isRoot) {
    io.err(`pve-baseline: ${NOT_ROOT}`);
    return EXIT.notRoot;
  }
  const held = lock(runtime, `revert ${step.id}`);
  if (!held.ok) {
    io.err(`pve-baseline: ${held.message}`);
    return EXIT.locked;
  }
  try {
    const journal = openJournal(runtime);
    const ctx = {
      exec: runtime.exec,
      files: runtime.files,
      node: runtime.node,
      log: (line: string) => io.out(`    | ${line}`),
      answersOf: (id: string) => journal.step(id)?.answers ?? {},
      journalRecords: () => journal.all(),
    };
    const problems = await revertStep(step, { journal, backups: backupStore(runtime), ctx });
    if (problems.length) {
      journal.setStatus(step.id, 'failed', { error: `revert incomplete: ${problems.join('; ')}` });
      io.err(`pve-baseline: the revert of ${step.id} is incomplete; what is left stays recorded for another try:`);
      for (const p of problems) io.err(`  ${p}`);
      return EXIT.failedOrDrift;
    }
    journal.setStatus(step.id, 'reverted', { note: 'reverted by the operator' });
    io.out(`Reverted ${step.id}: the node is as it was before the step. pve-baseline check will now report it as drift.`);
    return EXIT.ok;
  } finally {
    held.release();
  }
}

/** The default place of the document: /root/pve-baseline/access-policy-HOST-DATE.md. */
export function defaultDocPath(hostname: string, date: string): string {
  return `/root/pve-baseline/access-policy-${hostname}-${date}.md`;
}

/** Write the access-policy document from what the node says now (mode 0600: it maps who can do what). */
export async function docsCommand(runtime: Runtime, options: { out?: string }, io: Output, version: string): Promise<number> {
  if (!runtime.node.isRoot) {
    io.err('pve-baseline: docs reads root-only files (/etc/shadow, /etc/pve/priv); run it as root.');
    return EXIT.notRoot;
  }
  const date = new Date().toISOString().slice(0, 10);
  const journal = readOnlyJournal(runtime);
  const facts = await collectPolicyFacts(runtime, journal.all(), journal.path);
  const text = renderAccessPolicy(facts, { date, version });
  const out = options.out ?? defaultDocPath(runtime.node.hostname, date);
  await mkdir(path.dirname(out), { recursive: true, mode: 0o700 });
  await runtime.files.write(out, text, { mode: 0o600 });
  await chmod(out, 0o600);
  io.out(`Wrote ${out} (${text.split('\n').length} lines, mode 0600).`);
  return EXIT.ok;
}

/**
 * `pve-baseline confirm`, run from a NEW session: that it could log in at all
 * is the proof. Disarms every pending revert (race-safe against the timer)
 * and, unless a wizard is still running and will record it itself, marks the
 * steps verified.
 */
export async function confirmCommand(runtime: Runtime, io: Output, options: { unitDir?: string } = {}): Promise<number> {
  if (!runtime.node.isRoot) {
    io.err(`pve-baseline: ${NOT_ROOT}`);
    return EXIT.notRoot;
  }
  const { disarmRevert, pendingReverts, revertIdOf } = await import('../engine/revert-guard.ts');
  const pending = await pendingReverts(runtime.files, { stateDir: runtime.stateDir });
  if (!pending.length) {
    io.out('Nothing is waiting for confirmation.');
    return EXIT.ok;
  }
  const held = lock(runtime, 'confirm');
  const journal = held.ok ? openJournal(runtime) : null;
  let failed = 0;
  try {
    for (const p of pending) {
      const r = await disarmRevert(runtime.exec, runtime.files, p.id, { stateDir: runtime.stateDir, ...(options.unitDir ? { unitDir: options.unitDir } : {}) });
      const stepId = journal ? Object.entries(journal.all()).find(([, rec]) => rec.applyId !== undefined && revertIdOf(rec.applyId) === p.id)?.[0] : undefined;
      if (!r.disarmed) {
        failed++;
        io.err(`pve-baseline: too late for ${stepId ?? p.id}: the node already reverted it (${r.reverted ?? 'reverting'})`);
        if (journal && stepId) {
          journal.clearApplied(stepId);
          journal.setStatus(stepId, 'failed', { error: `the node reverted the change before it was confirmed: ${r.reverted ?? ''}`.trim() });
        }
        continue;
      }
      if (journal && stepId) journal.setStatus(stepId, 'verified', { note: 'access confirmed from a new session (pve-baseline confirm)' });
      io.out(`Confirmed ${stepId ?? p.id}: the change stays; the revert set for ${new Date(p.deadline).toISOString()} is disarmed.`);
    }
  } finally {
    if (held.ok) held.release();
  }
  if (!held.ok) io.out('A wizard is running: it records the confirmation itself.');
  return failed ? EXIT.failedOrDrift : EXIT.ok;
}
