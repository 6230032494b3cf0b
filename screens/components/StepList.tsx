import { Box, Text } from 'ink';
import type { StepView } from '../state/wizard-reducer.ts';
import type { StepStatus } from '../../src/engine/journal.ts';
import { RiskBadge } from './RiskBadge.tsx';
import { Truncated } from './Truncated.tsx';
import { useTheme, type Theme } from '../theme.ts';

/** The glyph, hue and word for a step's state; before a run, what the journal says. */
export function stepMark(step: Pick<StepView, 'state' | 'journaled'>, theme: Theme): { glyph: string; hue: Parameters<Theme['color']>[0]; word: string } {
  const g = theme.glyphs;
  switch (step.state) {
    case 'active':
      return { glyph: g.pointer, hue: 'accent', word: 'in progress' };
    case 'verified':
      return { glyph: g.ok, hue: 'ok', word: 'verified' };
    case 'compliant':
      return { glyph: g.ok, hue: 'ok', word: 'compliant' };
    case 'failed':
      return { glyph: g.fail, hue: 'fail', word: 'failed' };
    case 'skipped':
      return { glyph: g.skipped, hue: 'warn', word: 'skipped' };
    case 'not-applicable':
      return { glyph: g.skipped, hue: 'muted', word: 'not applicable' };
    case 'planned':
      return { glyph: g.bullet, hue: 'warn', word: 'would change' };
    case 'awaiting-confirmation':
      return { glyph: g.warn, hue: 'warn', word: 'to confirm' };
    case 'pending':
      return journaledMark(step.journaled, theme);
  }
}

function journaledMark(status: StepStatus, theme: Theme) {
  const g = theme.glyphs;
  switch (status) {
    case 'verified':
      return { glyph: g.ok, hue: 'ok' as const, word: 'done before' };
    case 'applying':
    case 'applied':
      return { glyph: g.warn, hue: 'warn' as const, word: 'interrupted' };
    case 'failed':
      return { glyph: g.fail, hue: 'fail' as const, word: 'failed before' };
    case 'reverted':
      return { glyph: g.skipped, hue: 'muted' as const, word: 'reverted' };
    case 'pending':
      return { glyph: g.pending, hue: 'muted' as const, word: '' };
  }
}

export interface StepListProps {
  steps: StepView[];
  /** Index of the highlighted row, when the list is browsable. */
  cursor?: number;
  /** Rows available; the list scrolls to keep the cursor (or the active step) visible. */
  height?: number;
  width?: number;
}

/**
 * ```
 *  ✔  1  Kernel and network sysctl settings      compliant     [safe]
 *  ❯  2  Named admin account                     in progress   [safe]
 *  ○  3  sshd hardening                                        [LOCKOUT RISK]
 * ```
 */
export function StepList({ steps, cursor, height = steps.length, width = 80 }: StepListProps) {
  const theme = useTheme();
  const focus = cursor ?? Math.max(0, steps.findIndex((s) => s.state === 'active'));
  const visible = Math.max(1, Math.min(height, steps.length));
  const start = Math.min(Math.max(0, focus - Math.floor(visible / 2)), steps.length - visible);
  const titleWidth = Math.max(20, width - 40);
  return (
    <Box flexDirection="column">
      {steps.slice(start, start + visible).map((step, i) => {
        const index = start + i;
        const mark = stepMark(step, theme);
        const highlighted = cursor === index;
        return (
          <Box key={step.id}>
            <Text color={theme.color(highlighted ? 'accent' : mark.hue)}>{highlighted ? theme.glyphs.pointer : mark.glyph} </Text>
            <Text color={theme.color('muted')}>{String(index + 1).padStart(2)} </Text>
            <Box width={titleWidth}>
              <Truncated bold={highlighted} width={titleWidth}>
                {step.title}
              </Truncated>
            </Box>
            <Box width={15}>
              <Text color={theme.color(mark.hue)}>{mark.word}</Text>
            </Box>
            <RiskBadge risk={step.risk} />
          </Box>
        );
      })}
      {steps.length > visible ? (
        <Text color={theme.color('muted')}>
          {'   '}
          {start + visible}/{steps.length} steps shown {theme.glyphs.ellipsis}
        </Text>
      ) : null}
    </Box>
  );
}
