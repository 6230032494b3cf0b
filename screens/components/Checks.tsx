import { Box, Text } from 'ink';
import type { Check } from '../../src/engine/step.ts';
import { Truncated } from './Truncated.tsx';
import { useTheme } from '../theme.ts';

/** Verification results, one line each: ✔ label  detail. `width`: the columns the lines may take. */
export function Checks({ checks, limit = checks.length, width }: { checks: Check[]; limit?: number; width?: number }) {
  const theme = useTheme();
  // Failures first when space is short: they are what the person must read.
  const ordered = limit < checks.length ? [...checks].sort((a, b) => Number(a.ok) - Number(b.ok)) : checks;
  return (
    <Box flexDirection="column">
      {ordered.slice(0, limit).map((check, i) => (
        <Truncated key={i} width={width}>
          <Text color={theme.color(check.ok ? 'ok' : 'fail')}>{check.ok ? theme.glyphs.ok : theme.glyphs.fail} </Text>
          {check.label}
          {check.detail ? <Text color={theme.color('muted')}>  {check.detail}</Text> : null}
        </Truncated>
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
