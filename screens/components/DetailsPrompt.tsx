import { Box, Text, useInput } from 'ink';
import type { AnswerDetails } from '../../src/engine/step.ts';
import { KeyHints } from './KeyHints.tsx';
import { Truncated, useWidth } from './Truncated.tsx';
import { useTheme } from '../theme.ts';

export interface DetailsPromptProps {
  details: AnswerDetails;
  onDecision: (accept: boolean) => void;
}

/**
 * What an answer turned out to be, to confirm before going on:
 * ```
 *  This key will let you log in as the admin:
 *  Key 1
 *    Type         ssh-ed25519
 *    Size         256 bits
 *    Fingerprint  SHA256:DlM0hhv8M3uVEjCSAVtKSzPLYkAZAy+aenzgRPKAc7E
 *    Comment      operator@laptop
 *  y use it · n type it again
 * ```
 */
export function DetailsPrompt({ details, onDecision }: DetailsPromptProps) {
  const theme = useTheme();
  const columns = useWidth();
  useInput((input, key) => {
    if (input === 'y' || input === 'Y' || key.return) onDecision(true);
    else if (input === 'n' || input === 'N') onDecision(false);
  });
  const width = Math.max(...details.items.flatMap((i) => i.fields.map(([label]) => label.length)), 4) + 2;
  return (
    <Box flexDirection="column">
      <Text bold>{details.title}</Text>
      {details.items.map((item, i) => (
        <Box key={i} flexDirection="column" marginTop={i ? 1 : 0}>
          <Text color={theme.color('accent')}>{item.heading}</Text>
          {item.fields.map(([label, value]) => (
            <Box key={label}>
              <Box width={width + 2} flexShrink={0}>
                <Text color={theme.color('muted')}>  {label}</Text>
              </Box>
              <Truncated position="middle" width={columns - width - 2}>
                {value}
              </Truncated>
            </Box>
          ))}
          {item.warning ? (
            <Text color={theme.color('warn')} wrap="wrap">
              {'  '}
              {theme.glyphs.warn} {item.warning}
            </Text>
          ) : null}
        </Box>
      ))}
      <Box marginTop={1}>
        <KeyHints hints={[['y', 'yes, use this'], ['n', 'no, answer again']]} />
      </Box>
    </Box>
  );
}
