import { Box, Text } from 'ink';
import type { Check } from '../../src/engine/step.ts';
import { useTheme } from '../theme.ts';

/** Verification results, one line each: ✔ label  detail. */
export function Checks({ checks, limit = checks.length }: { checks: Check[]; limit?: number }) {
  const theme = useTheme();
  // Failures first when space is short: they are what the person must read.
  const ordered = limit < checks.length ? [...checks].sort((a, b) => Number(a.ok) - Number(b.ok)) : checks;
  return (
    <Box flexDirection="column">
      {ordered.slice(0, limit).map((check, i) => (
        <Text key={i} wrap="truncate-end">
          <Text color={theme.color(check.ok ? 'ok' : 'fail')}>{check.ok ? theme.glyphs.ok : theme.glyphs.fail} </Text>
          {check.label}
          {check.detail ? <Text color={theme.color('muted')}>  {check.detail}</Text> : null}
        </Text>
      ))}
      {checks.length > limit ? (
        <Text color={theme.color('muted')}>
          {'  '}
          {theme.glyphs.ellipsis} {checks.length - limit} more
        </Text>
      ) : null}
    </Box>
  );
}
