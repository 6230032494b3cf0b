import { Box, Text } from 'ink';
import type { FinishedEntry } from '../state/wizard-reducer.ts';
import { stepMark } from './StepList.tsx';
import { Checks } from './Checks.tsx';
import { useWidth } from './Truncated.tsx';
import { useTheme } from '../theme.ts';

/**
 * A finished step as it stays in the scrollback:
 * ```
 *  ✔ Kernel and network sysctl settings: verified (2 changes)
 *    ✔ kernel.kptr_restrict is 2
 * ```
 */
export function FinishedStep({ entry }: { entry: FinishedEntry }) {
  const theme = useTheme();
  const width = useWidth();
  const mark = stepMark({ state: entry.outcome, journaled: 'pending' }, theme);
  const changes = entry.changes ? ` (${entry.changes} change${entry.changes > 1 ? 's' : ''})` : '';
  const showChecks = entry.checks && (entry.outcome === 'verified' || entry.outcome === 'failed');
  return (
    <Box flexDirection="column">
      <Text wrap="wrap">
        <Text color={theme.color(mark.hue)}>{mark.glyph} </Text>
        <Text bold>{entry.title}</Text>: <Text color={theme.color(mark.hue)}>{mark.word}</Text>
        {changes}
        {entry.reason ? <Text color={theme.color('muted')}> {theme.glyphs.arrow} {entry.reason}</Text> : null}
      </Text>
      {showChecks ? (
        <Box marginLeft={2}>
          <Checks checks={entry.checks!} limit={entry.outcome === 'failed' ? entry.checks!.length : 6} width={width - 2} />
        </Box>
      ) : null}
    </Box>
  );
}
