import { Text } from 'ink';
import { useTheme } from '../theme.ts';

/** The keys that work right now, as "enter apply · s skip · q stop". */
export function KeyHints({ hints }: { hints: [key: string, action: string][] }) {
  const { color } = useTheme();
  return (
    <Text color={color('muted')} wrap="truncate-end">
      {hints.map(([key, action], i) => (
        <Text key={key}>
          {i > 0 ? ' · ' : ''}
          <Text bold>{key}</Text> {action}
        </Text>
      ))}
    </Text>
  );
}
