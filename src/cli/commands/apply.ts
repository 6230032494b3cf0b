/**
 * `pve-baseline apply --answers FILE [--yes] [--dry-run] [--only STEP,...]`:
 * the wizard's engine, unattended. Without --yes it only shows the plans.
 */
import path from 'node:path';
import type { AnyStep } from '../../engine/step.ts';
import { describeReboot } from '../../engine/reboot.ts';
import { describePostboot, readPostboot } from './postboot.ts';
import { AnswerError } from '../../engine/runner.ts';
import { describeNode } from '../../system/detect.ts';
import { FileRefusedError, readRegularFile } from '../../system/files.ts';
import { EXIT } from '../args.ts';
import { HeadlessOperator } from '../headless.ts';
import { plainEventPrinter, resultsSummary } from '../plain-output.ts';
import { backupAfterApply } from './backup.ts';
import { openJournal, type Runtime } from '../runtime.ts';
import { NOT_ROOT, printable, type Output } from './io.ts';
import { withLock } from './lock.ts';
import { createRunner, readOnlyJournal, type RunnerChoices } from './runner.ts';

/** An answers file is a page of YAML; anything larger is not one. */
const ANSWERS_MAX_BYTES = 1024 * 1024;

export interface ApplyOptions {
  answers: string;
  yes: boolean;
  dryRun: boolean;
  only?: string[];
}

export async function applyCommand(runtime: Runtime, steps: readonly AnyStep[], options: ApplyOptions, io: Output, version: string): Promise<number> {
  // Bytes, not text: the parser refuses a file that is not UTF-8 rather than reading replacement characters.
  let content: Uint8Array;
  try {
    content = await readRegularFile(options.answers, { maxBytes: ANSWERS_MAX_BYTES, what: 'the answers file' });
  } catch (error) {
    if (!(error instanceof FileRefusedError)) throw error;
    io.err(`pve-baseline: cannot read ${printable(error.message)}; nothing was changed.`);
    return EXIT.usage;
  }
  // The YAML parser is loaded only here, keeping it off the wizard's start-up path.
  const { AnswersFileError, parseAnswersFile } = await import('../answers.ts');
  let preset;
  try {
    preset = await parseAnswersFile(content, path.basename(options.answers), steps, { files: runtime.files });
  } catch (error) {
    if (!(error instanceof AnswersFileError)) throw error;
    io.err(`pve-baseline: the answers file has ${error.problems.length === 1 ? 'a problem' : `${error.problems.length} problems`}; nothing was changed:`);
    for (const p of error.problems) io.err(`  ${p}`);
    return EXIT.usage;
  }
  const unknown = options.only?.filter((id) => !steps.some((s) => s.id === id));
  if (unknown?.length) {
    io.err(`pve-baseline: --only: unknown step ${printable(unknown.join(', '))} (steps: ${steps.map((s) => s.id).join(', ')})`);
    return EXIT.usage;
  }
  const dryRun = options.dryRun || !options.yes;
  const run = () => runSteps(runtime, steps, options, preset, dryRun, io, version);
  if (dryRun) return run();
  if (!runtime.node.isRoot) {
    io.err(`pve-baseline: ${NOT_ROOT}`);
    return EXIT.notRoot;
  }
  return withLock(runtime, 'apply', io, (held) => {
    if (held.staleNote) io.err(`pve-baseline: ${held.staleNote}`);
    return run();
  });
}

async function runSteps(
  runtime: Runtime,
  steps: readonly AnyStep[],
  options: ApplyOptions,
  preset: RunnerChoices['presetAnswers'],
  dryRun: boolean,
  io: Output,
  version: string,
): Promise<number> {
  let total = 0;
  const runner = createRunner(runtime, steps, {
    journal: dryRun ? readOnlyJournal(runtime) : openJournal(runtime),
    operator: new HeadlessOperator(options.yes, io.out, new Set(Object.keys(preset ?? {}))),
    presetAnswers: preset,
    dryRun,
    onEvent: plainEventPrinter(io.out, () => total),
    ...(options.only ? { only: options.only } : {}),
  });
  total = runner.stepInfos().length;
  io.out(`pve-baseline ${version} ${dryRun ? 'dry run' : 'apply'} on ${describeNode(runtime.node)}${runtime.node.rehearsal ? ' [REHEARSAL]' : ''}`);
  const after = await readPostboot(runtime);
  if (after) io.out(describePostboot(after));
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
  if (!dryRun) await backupAfterApply(runtime, results);
  if (dryRun && results.some((r) => r.outcome === 'planned')) {
    io.out(options.dryRun ? 'Dry run: nothing was changed.' : 'Nothing was changed. Run again with --yes to apply these plans.');
  }
  // Unattended, a step left undone for want of an answer is a failure of the run, not a quiet skip.
  const unanswered = results.filter((r) => r.outcome === 'skipped' && r.reason?.startsWith('needs an answer for '));
  if (unanswered.length) {
    io.err(`pve-baseline: the answers file does not give: ${unanswered.map((r) => r.reason!.slice('needs an answer for '.length)).join(', ')}`);
  }
  if (results.some((r) => r.outcome === 'failed') || (!dryRun && unanswered.length)) return EXIT.failedOrDrift;
  const reboot = results.find((r) => r.reboot)?.reboot;
  if (reboot) {
    io.err(`pve-baseline: ${describeReboot(reboot)}: the node needs a reboot (${reboot.reason}). Reboot it, then run the same command again: it goes on after ${reboot.afterStep} (exit code ${EXIT.reboot}).`);
    return EXIT.reboot;
  }
  return EXIT.ok;
}
