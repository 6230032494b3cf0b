import { Box, Text } from 'ink';
import { useTextInput } from '../hooks/use-text-input.ts';
import { useTheme } from '../theme.ts';

export type TypedDecision = 'confirmed' | 'skip' | 'stop';

export interface TypedConfirmProps {
  /** What must be typed exactly, e.g. the node's hostname. */
  expected: string;
  onDecision: (decision: TypedDecision) => void;
  /** Set after a wrong entry. */
  error?: string;
  onMismatch?: (typed: string) => void;
}

/**
 * For changes that can cut access, one key is not enough: the person types
 * the node's name. "skip" and "stop" are words too, so no single stray key
 * can apply, skip or stop anything here.
 *
 * ```
 *  This change can lock you out. Type pve1 to apply, or skip or stop.
 *  › pve█
 * ```
 */
export function TypedConfirm({ expected, onDecision, error, onMismatch }: TypedConfirmProps) {
  const theme = useTheme();
  const { value, clear } = useTextInput((typed) => {
    const word = typed.trim();
    if (word === expected) return onDecision('confirmed');
    if (word === 'skip') return onDecision('skip');
    if (word === 'stop') return onDecision('stop');
    clear();
    onMismatch?.(word);
  });
  return (
    <Box flexDirection="column">
      <Text>
        <Text color={theme.color('fail')} bold>
          {theme.glyphs.warn} This change can lock you out.
        </Text>{' '}
        Type <Text bold>{expected}</Text> to apply, or <Text bold>skip</Text> or <Text bold>stop</Text>.
      </Text>
      <Text>
        <Text color={theme.color('accent')}>{theme.glyphs.pointer} </Text>
        {value}
        <Text inverse> </Text>
      </Text>
      {error ? <Text color={theme.color('fail')}>  {error}</Text> : null}
    </Box>
  );
}
