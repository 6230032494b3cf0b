/**
 * A plan flattened into display lines, so the preview can scroll through
 * any number of changes and diffs inside a fixed-height region.
 */
import { apiParamsText, changeSymbol, commandWriteDiffs, describeReveal, unshownWrites, describeChange, describeGuard, formatArgv, unifiedDiff, type ApiChange, type CommandChange, type FileChange } from '../../src/engine/change.ts';
import type { Plan } from '../../src/engine/events.ts';

export type LineStyle = 'heading' | 'reason' | 'added' | 'removed' | 'hunk' | 'meta' | 'plain' | 'command';

export interface PlanLine {
  text: string;
  style: LineStyle;
}

function diffLines(change: FileChange): PlanLine[] {
  return unifiedDiff(change)
    .split('\n')
    .map((line) => {
      const style: LineStyle = line.startsWith('+++') || line.startsWith('---') ? 'meta' : line.startsWith('@@') ? 'hunk' : line.startsWith('+') ? 'added' : line.startsWith('-') ? 'removed' : 'plain';
      return { text: `    ${line}`, style };
    });
}

/** The files a command or an API call writes: each shown one's diff, then those not shown, with why. */
function writesLines(change: CommandChange | ApiChange): PlanLine[] {
  return [
    ...commandWriteDiffs(change).flatMap((write): PlanLine[] => [{ text: `    writes ${write.path}:`, style: 'reason' }, ...diffLines(write)]),
    ...unshownWrites(change).map((text): PlanLine => ({ text: `    ${text}`, style: 'reason' })),
  ];
}

export function planLines(plan: Plan): PlanLine[] {
  const lines: PlanLine[] = [];
  if (plan.guard) {
    for (const text of describeGuard(plan.guard)) lines.push({ text, style: 'reason' });
    lines.push({ text: '', style: 'plain' });
  }
  plan.changes.forEach((change, i) => {
    if (i > 0) lines.push({ text: '', style: 'plain' });
    lines.push({ text: `${changeSymbol(change)} ${describeChange(change)}`, style: 'heading' });
    lines.push({ text: `    why: ${change.reason}`, style: 'reason' });
    if (change.kind === 'file') {
      lines.push(...diffLines(change));
    } else if (change.kind === 'command') {
      lines.push({ text: `    argv: ${formatArgv(change.argv)}`, style: 'command' });
      if (change.input) lines.push({ text: '    stdin: (secret, not shown and not recorded)', style: 'reason' });
      if (change.undo) lines.push({ text: `    undo: ${formatArgv(change.undo)}`, style: 'reason' });
      if (change.reveal) lines.push({ text: `    ${describeReveal(change.reveal)}`, style: 'reason' });
      lines.push(...writesLines(change));
    } else if (change.kind === 'api') {
      lines.push({ text: `    params: ${apiParamsText(change)}`, style: 'command' });
      if (change.reveal) lines.push({ text: `    ${describeReveal(change.reveal)}`, style: 'reason' });
      lines.push(...writesLines(change));
    } else {
      lines.push({ text: `    argv: systemctl ${change.action} ${change.unit}`, style: 'command' });
    }
  });
  if (plan.notes?.length) {
    lines.push({ text: '', style: 'plain' });
    for (const text of plan.notes) lines.push({ text, style: 'reason' });
  }
  return lines;
}
