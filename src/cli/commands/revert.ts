/** `pve-baseline revert STEP [--yes]`: undo one step from what the journal recorded; shows the undo first, acts only with --yes. */
import { describeUndo } from '../../engine/apply.ts';
import { revertStep } from '../../engine/runner.ts';
import { keptAnswers, type AnyStep, type StepContext } from '../../engine/step.ts';
import { EXIT } from '../args.ts';
import { backupStore, openJournal, type Runtime } from '../runtime.ts';
import { NOT_ROOT, printable, type Output } from './io.ts';
import { withLock } from './lock.ts';
import { readOnlyJournal } from './runner.ts';

export async function revertCommand(runtime: Runtime, steps: readonly AnyStep[], options: { step: string; yes: boolean }, io: Output): Promise<number> {
  const step = steps.find((s) => s.id === options.step);
  if (!step) {
    io.err(`pve-baseline: revert: unknown step ${printable(options.step)} (steps: ${steps.map((s) => s.id).join(', ')})`);
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
  return withLock(runtime, `revert ${step.id}`, io, () => undoStep(runtime, step, io));
}

async function undoStep(runtime: Runtime, step: AnyStep, io: Output): Promise<number> {
  const journal = openJournal(runtime);
  const ctx: StepContext = {
    exec: runtime.exec,
    files: runtime.files,
    node: runtime.node,
    ...(runtime.api ? { api: runtime.api } : {}),
    log: (line: string) => io.out(`    | ${line}`),
    answersOf: (other) => keptAnswers(other, journal.step(other.id)?.answers),
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
}
