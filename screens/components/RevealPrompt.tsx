import { Box, Text, useInput } from 'ink';
import type { RevealRequest } from '../../src/engine/events.ts';
import { useTheme } from '../theme.ts';

export interface RevealPromptProps {
  request: RevealRequest;
  onDone: () => void;
}

/**
 * Values the operator sees exactly once (Operator.reveal): nothing keeps
 * them, so only `w` goes on, never Enter or another key pressed by habit.
 * ```
 *  Recovery keys for alice@pam
 *  4b1e-0c2f-9a7d-e315
 *  ...
 *  Write these down and keep them apart from your phone.
 *  Press w when you have written them down
 * ```
 */
export function RevealPrompt({ request, onDone }: RevealPromptProps) {
  const theme = useTheme();
  useInput((input) => {
    if (input === 'w' || input === 'W') onDone();
  });
  return (
    <Box flexDirection="column">
      <Text bold color={theme.color('accent')}>
        {request.title}
      </Text>
      <Box flexDirection="column" marginY={1} marginLeft={2}>
        {request.values.map((value, i) => (
          // The one place these values reach the screen.
          <Text key={i} bold wrap="wrap">
            {value.reveal()}
          </Text>
        ))}
      </Box>
      <Text color={theme.color('warn')} wrap="wrap">
        {theme.glyphs.warn} {request.advice}
      </Text>
      <Text wrap="wrap">{request.savedTo ? `They are not shown again; pve-baseline also wrote them to ${request.savedTo} (mode 0600), and nowhere else.` : 'They are not shown again and not saved anywhere.'}</Text>
      <Box marginTop={1}>
        <Text color={theme.color('accent')}>
          Press <Text bold>w</Text> when you have written them down
        </Text>
      </Box>
    </Box>
  );
}
