import { Box, Text, useInput } from 'ink';
import type { RebootRequest } from '../../src/engine/events.ts';
import { useTheme } from '../theme.ts';

export interface RebootPromptProps {
  request: RebootRequest;
  onDecision: (decision: 'now' | 'later') => void;
}

/**
 * A step needs a reboot (Operator.reboot). Only `r` reboots, never Enter by
 * habit; `l` goes on and leaves the need in the journal.
 * ```
 *  The node needs a reboot: kernel 6.14.11-1-pve is installed; 6.14.8-2-pve runs.
 *  Running guests stop with it: 100 (web1), 101 (web2)
 *  After the reboot, log in again and run pve-baseline: it goes on after this step.
 *  r reboot now · l later
 * ```
 */
export function RebootPrompt({ request, onDecision }: RebootPromptProps) {
  const theme = useTheme();
  useInput((input) => {
    if (input === 'r' || input === 'R') onDecision('now');
    if (input === 'l' || input === 'L') onDecision('later');
  });
  return (
    <Box flexDirection="column">
      <Text bold color={theme.color('warn')} wrap="wrap">
        {theme.glyphs.warn} The node needs a reboot: {request.reason}
      </Text>
      {request.expectKernel ? <Text wrap="wrap">It should come back running kernel {request.expectKernel}.</Text> : null}
      <Text wrap="wrap">{request.runningGuests?.length ? `Running guests stop with it, unless they start on boot or HA restarts them: ${request.runningGuests.join(', ')}` : 'No guest is running.'}</Text>
      {request.staleServices?.length ? <Text wrap="wrap">Services still running replaced code, restarted by the reboot: {request.staleServices.join(', ')}</Text> : null}
      <Text wrap="wrap">After the reboot a check runs once and the next login says what it found; run pve-baseline again and it goes on after this step, asking nothing twice.</Text>
      <Box marginTop={1}>
        <Text color={theme.color('accent')}>
          <Text bold>r</Text> reboot now · <Text bold>l</Text> later (the need stays in the journal; check reports it)
        </Text>
      </Box>
    </Box>
  );
}
