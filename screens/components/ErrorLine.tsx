import { Text } from 'ink';
import { useTheme } from '../theme.ts';

/** Why an answer was refused, under the prompt: "  ✖ must not be empty". */
export function ErrorLine({ message }: { message: string }) {
  const theme = useTheme();
  return (
    <Text color={theme.color('fail')}>
      {'  '}
      {theme.glyphs.fail} {message}
    </Text>
  );
}
