import { Box, Text } from 'ink';
import type { Plan } from '../../src/engine/events.ts';
import { useTheme, type Theme } from '../theme.ts';
import { planSummaryLine } from '../../src/engine/change.ts';
import { planLines, type LineStyle } from './plan-lines.ts';
import { Truncated } from './Truncated.tsx';

function lineColor(style: LineStyle, theme: Theme): string | undefined {
  switch (style) {
    case 'added':
      return theme.color('added');
    case 'removed':
      return theme.color('removed');
    case 'hunk':
      return theme.color('hunk');
    case 'reason':
    case 'meta':
      return theme.color('muted');
    default:
      return undefined;
  }
}

export interface PlanPreviewProps {
  plan: Plan;
  /** First line shown (the caller owns scrolling). */
  offset: number;
  /** Lines available for the body. */
  height: number;
}

/**
 * ```
 *  Plan: 1 to create, 1 command to run.
 *  + create /etc/sysctl.d/90-pve-baseline.conf
 *      why: kernel pointers and dmesg are readable by any user
 *      --- /dev/null
 *      +++ b/etc/sysctl.d/90-pve-baseline.conf
 *      @@ -0,0 +1,3 @@
 *      +kernel.kptr_restrict = 2
 *                                                   lines 1-9 of 14 ↓
 * ```
 */
export function PlanPreview({ plan, offset, height }: PlanPreviewProps) {
  const theme = useTheme();
  const lines = planLines(plan);
  const body = Math.max(1, height);
  const start = Math.min(Math.max(0, offset), Math.max(0, lines.length - body));
  const shown = lines.slice(start, start + body);
  const more = lines.length > body;
  return (
    <Box flexDirection="column">
      <Text bold>{planSummaryLine(plan.changes)}</Text>
      {shown.map((line, i) => (
        <Truncated key={start + i} color={lineColor(line.style, theme)} bold={line.style === 'heading'}>
          {line.text || ' '}
        </Truncated>
      ))}
      {more ? (
        <Text color={theme.color('muted')}>
          lines {start + 1}-{start + shown.length} of {lines.length}
          {start + body < lines.length ? ` ${theme.glyphs.arrow} more below` : ''}
        </Text>
      ) : null}
    </Box>
  );
}

/** How far the preview can scroll. */
export function maxPlanOffset(plan: Plan, height: number): number {
  return Math.max(0, planLines(plan).length - Math.max(1, height));
}
