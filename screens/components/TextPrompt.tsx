import { Box, Text } from 'ink';
import { useTextInput } from '../hooks/use-text-input.ts';
import { useTheme } from '../theme.ts';
import { ErrorLine } from './ErrorLine.tsx';

export interface TextPromptProps {
  label: string;
  /** Shown dimmed; Enter on an empty field takes it. */
  defaultValue?: string;
  /** Show one bullet per character instead of the text (passwords). */
  mask?: boolean;
  error?: string;
  onSubmit: (value: string) => void;
}

/**
 * ```
 *  ? Name of the admin account (alice) › bob█
 *    ✖ must not be empty
 * ```
 */
export function TextPrompt({ label, defaultValue, mask = false, error, onSubmit }: TextPromptProps) {
  const theme = useTheme();
  const { value } = useTextInput((v) => onSubmit(v === '' && defaultValue !== undefined ? defaultValue : v));
  const shown = mask ? '*'.repeat(Array.from(value).length) : value;
  return (
    <Box flexDirection="column">
      <Text>
        <Text color={theme.color('accent')}>? </Text>
        <Text bold>{label}</Text>
        {defaultValue !== undefined && !mask ? <Text color={theme.color('muted')}> ({defaultValue})</Text> : null}
        <Text color={theme.color('muted')}> {theme.glyphs.pointer} </Text>
        <Text>{shown}</Text>
        <Text inverse> </Text>
      </Text>
      {error ? <ErrorLine message={error} /> : null}
    </Box>
  );
}
