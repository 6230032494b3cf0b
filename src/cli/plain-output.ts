/**
 * Plain-text rendering of runner events, for headless mode, dry runs and
 * logs: no colours, no cursor movement, one line per fact, and the same plan
 * model the wizard shows.
 */
import { apiParamsText, changeSymbol, commandWriteDiffs, describeReveal, unshownWrites, describeChange, describeGuard, formatArgv, planSummaryLine, unifiedDiff, type ApiChange, type CommandChange } from '../engine/change.ts';
import { GUARD_PHASE_TEXT, type Plan, type RunnerEvent, type StepResult } from '../engine/events.ts';
import type { Check } from '../engine/step.ts';

export function planText(plan: Plan, indent = '  '): string[] {
  const out = [`${indent}${planSummaryLine(plan.changes)}`, ...(plan.guard ? describeGuard(plan.guard).map((l) => `${indent}${l}`) : [])];
  for (const change of plan.changes) {
    out.push(`${indent}${changeSymbol(change)} ${describeChange(change)}`, `${indent}    why: ${change.reason}`);
    if (change.kind === 'file') out.push(...unifiedDiff(change).split('\n').map((l) => `${indent}    ${l}`));
    if (change.kind === 'command') {
      out.push(`${indent}    argv: ${formatArgv(change.argv)}`);
      if (change.undo) out.push(`${indent}    undo: ${formatArgv(change.undo)}`);
      if (change.reveal) out.push(`${indent}    ${describeReveal(change.reveal)}`);
      out.push(...writesText(change, indent));
    }
    if (change.kind === 'api') {
      out.push(`${indent}    params: ${apiParamsText(change)}`);
      if (change.reveal) out.push(`${indent}    ${describeReveal(change.reveal)}`);
      out.push(...writesText(change, indent));
    }
  }
  for (const note of plan.notes ?? []) out.push(`${indent}${note}`);
  return out;
}

/** The files a command or an API call writes: each shown one's diff, then those not shown, with why. */
function writesText(change: CommandChange | ApiChange, indent: string): string[] {
  return [
    ...commandWriteDiffs(change).flatMap((write) => [`${indent}    writes ${write.path}:`, ...unifiedDiff(write).split('\n').map((l) => `${indent}    ${l}`)]),
    ...unshownWrites(change).map((line) => `${indent}    ${line}`),
  ];
}

function checkLines(checks: Check[] | undefined, indent: string, onlyFailed: boolean): string[] {
  return (checks ?? [])
    .filter((c) => !onlyFailed || !c.ok)
    .map((c) => `${indent}${c.ok ? 'ok  ' : 'FAIL'} ${c.label}${c.detail ? `: ${c.detail}` : ''}`);
}

/** Headless output prints a long command's progress at most this often (a log, not a screen). */
export const PLAIN_PROGRESS_EVERY_MS = 5_000;

/** A writer of events as lines; returns the function to hand the runner. */
export function plainEventPrinter(write: (line: string) => void, total: () => number, now: () => number = Date.now): (event: RunnerEvent) => void {
  const titles = new Map<string, string>();
  let progressAt = -Infinity;
  return (event) => {
    switch (event.type) {
      case 'change-progress':
        // The first report, then one every few seconds, and the last.
        if (!event.progress.done && now() - progressAt < PLAIN_PROGRESS_EVERY_MS) break;
        progressAt = event.progress.done ? -Infinity : now();
        write(`    ${event.progress.percent}% ${event.progress.label}`);
        break;
      case 'run-started':
        for (const s of event.steps) titles.set(s.id, s.title);
        break;
      case 'step-started':
        write(`[${event.index + 1}/${total()}] ${titles.get(event.stepId) ?? event.stepId}${event.previously === 'applying' ? ' (resuming an interrupted apply)' : ''}`);
        break;
      case 'step-planned':
        for (const line of planText(event.plan)) write(line);
        break;
      case 'step-applying':
        write('  applying');
        break;
      case 'output':
        // Progress counters (apt's "Reading database ... 45%") are for live screens; a log keeps the last.
        if (/\.\.\. \d{1,2}%$/.test(event.line)) break;
        write(`    | ${event.line}`);
        break;
      case 'step-finished': {
        const word = { compliant: 'compliant', verified: 'verified', failed: 'FAILED', skipped: 'skipped', 'not-applicable': 'not applicable', planned: 'would change', 'awaiting-confirmation': 'applied; AWAITING CONFIRMATION' }[event.outcome];
        write(`  => ${word}${event.reason ? `: ${event.reason}` : ''}`);
        // A failure, and a change awaiting confirmation, show every check: what was proven and what was not.
        for (const line of checkLines(event.checks, '     ', event.outcome !== 'failed' && event.outcome !== 'awaiting-confirmation')) write(line);
        break;
      }
      case 'guard-phase':
        write(`  lockout protocol: ${GUARD_PHASE_TEXT[event.phase]}${event.detail ? ` (${event.detail})` : ''}`);
        break;
      case 'stop-requested':
        write('stopping after the current step');
        break;
      default:
        break;
    }
  };
}

export function resultsSummary(results: StepResult[]): string {
  const count = (o: StepResult['outcome']) => results.filter((r) => r.outcome === o).length;
  const parts = (
    [
      ['verified', count('verified')],
      ['awaiting confirmation', count('awaiting-confirmation')],
      ['compliant', count('compliant')],
      ['would change', count('planned')],
      ['skipped', count('skipped')],
      ['not applicable', count('not-applicable')],
      ['failed', count('failed')],
    ] as const
  )
    .filter(([, n]) => n > 0)
    .map(([w, n]) => `${n} ${w}`);
  return `Summary: ${parts.join(', ') || 'no steps'}.`;
}
