import { Box, Text } from 'ink';
import type { StepResult } from '../src/engine/events.ts';
import { useTheme } from './theme.ts';

export interface SummaryProps {
  results: StepResult[];
  stopped: boolean;
  journalPath: string;
  backupsPath: string;
}

/**
 * ```
 *  Finished: 2 verified, 1 already compliant, 1 skipped.
 *  Journal  /var/lib/pve-baseline/journal.json
 *  Backups  /var/lib/pve-baseline/backups/
 *  Run pve-baseline check at any time to see drift; pve-baseline status shows the journal.
 * ```
 */
export function Summary({ results, stopped, journalPath, backupsPath }: SummaryProps) {
  const theme = useTheme();
  const count = (outcome: StepResult['outcome']) => results.filter((r) => r.outcome === outcome).length;
  const parts = [
    [count('verified'), 'verified'],
    [count('compliant'), 'already compliant'],
    [count('skipped'), 'skipped'],
    [count('not-applicable'), 'not applicable'],
    [count('failed'), 'failed'],
  ]
    .filter(([n]) => n)
    .map(([n, word]) => `${n} ${word}`);
  const failed = count('failed') > 0;
  if (results.length === 0) {
    return (
      <Box flexDirection="column" marginTop={1}>
        <Text bold>Left before any step ran: nothing was changed.</Text>
        <Text color={theme.color('muted')}>Run pve-baseline again whenever you are ready.</Text>
      </Box>
    );
  }
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text bold color={theme.color(failed ? 'fail' : stopped ? 'warn' : 'ok')}>
        {stopped ? 'Stopped' : 'Finished'}: {parts.join(', ') || 'nothing to do'}.
      </Text>
      <Text>
        <Text color={theme.color('muted')}>Journal </Text>
        {journalPath}
      </Text>
      <Text>
        <Text color={theme.color('muted')}>Backups </Text>
        {backupsPath}
      </Text>
      <Text color={theme.color('muted')} wrap="wrap">
        {stopped ? 'Run pve-baseline again to resume where it stopped. ' : ''}
        pve-baseline check shows drift at any time; pve-baseline status shows the journal.
      </Text>
    </Box>
  );
}
