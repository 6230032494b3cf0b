import { Box, Text, useInput } from 'ink';
import type { AccessDecision, AccessRequest } from '../../src/engine/events.ts';
import { formatCountdown, useCountdown } from '../hooks/use-countdown.ts';
import { KeyHints } from './KeyHints.tsx';
import { Spinner } from './Spinner.tsx';
import { Truncated, useWidth } from './Truncated.tsx';
import { useTheme } from '../theme.ts';

/** Under this many seconds the countdown turns warn-coloured. */
const HURRY_SECONDS = 30;

export const OPERATOR_REVERT_REASON = 'reverted by the operator before access was confirmed';

export interface AccessCountdownProps {
  request: AccessRequest;
  onDecision: (decision: AccessDecision) => void;
}

/** The deadline as a wall-clock time on this machine, HH:MM:SS. */
export function clockTime(epochMs: number): string {
  return new Date(epochMs).toTimeString().slice(0, 8);
}

/**
 * A lockout-risk change is live and the node will put it back on its own;
 * the proof (a new login, or `pve-baseline confirm`) arrives through the
 * store, so the only keys here are revert now and, on the console, keep.
 *
 * ```
 *  Prove you can still log in before the node puts the change back.
 *  Reverts in 2:57 (at 14:03:12)
 *    ● Open a new terminal and: ssh alice@10.77.7.2
 *    ● or, from a new session: pve-baseline confirm
 *  ⠹ Waiting for the login…
 *
 *  r revert now · k keep without a second login (console)
 * ```
 */
export function AccessCountdown({ request, onDecision }: AccessCountdownProps) {
  const theme = useTheme();
  const width = useWidth();
  const left = useCountdown(request.deadline);
  useInput((input, key) => {
    if (key.ctrl || key.meta) return; // Ctrl+C belongs to the app
    if (input === 'r') onDecision({ kind: 'revert', reason: OPERATOR_REVERT_REASON });
    else if (input === 'k' && request.maySkip) onDecision({ kind: 'skipped' });
  });
  return (
    <Box flexDirection="column">
      <Truncated bold>Prove you can still log in before the node puts the change back.</Truncated>
      <Truncated>
        Reverts in{' '}
        <Text bold color={left < HURRY_SECONDS ? theme.color('warn') : undefined}>
          {formatCountdown(left)}
        </Text>
        <Text color={theme.color('muted')}> (at {clockTime(request.deadline)})</Text>
      </Truncated>
      {request.instructions.map((line, i) => (
        <Truncated key={i}>
          {'  '}
          <Text color={theme.color('accent')}>{theme.glyphs.bullet}</Text> {line}
        </Truncated>
      ))}
      <Box>
        <Box flexShrink={0} marginRight={1}>
          <Spinner />
        </Box>
        <Truncated width={width - 2}>Waiting for the login{theme.glyphs.ellipsis}</Truncated>
      </Box>
      <Box marginTop={1}>
        <KeyHints hints={[['r', 'revert now'], ...(request.maySkip ? ([['k', 'keep without a second login (console)']] as [string, string][]) : [])]} />
      </Box>
    </Box>
  );
}
