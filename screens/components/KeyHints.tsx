import { Text } from 'ink';
import { Truncated } from './Truncated.tsx';
import { useTheme } from '../theme.ts';

/** The keys that work right now, as "enter apply · s skip · q stop". */
export function KeyHints({ hints }: { hints: [key: string, action: string][] }) {
  const { color } = useTheme();
  return (
    <Truncated color={color('muted')}>
      {hints.map(([key, action], i) => (
        <Text key={key}>
          {i > 0 ? ' · ' : ''}
          <Text bold>{key}</Text> {action}
        </Text>
      ))}
    </Truncated>
  );
}
