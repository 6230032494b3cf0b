import { Box, Text } from 'ink';
import { useTextInput } from '../hooks/use-text-input.ts';
import { useTheme } from '../theme.ts';
import { ErrorLine } from './ErrorLine.tsx';
import { Truncated } from './Truncated.tsx';

export interface TextPromptProps {
  label: string;
  /** Shown dimmed; Enter on an empty field takes it. */
  defaultValue?: string;
  /** Show one bullet per character instead of the text (passwords). */
  mask?: boolean;
  /** Keep pasted line breaks; each line is shown shortened. */
  multiline?: boolean;
  error?: string;
  onSubmit: (value: string) => void;
}

/**
 * ```
 *  ? Name of the admin account (alice) › bob█
 *    ✖ must not be empty
 * ```
 */
export function TextPrompt({ label, defaultValue, mask = false, multiline = false, error, onSubmit }: TextPromptProps) {
  const theme = useTheme();
  const { value } = useTextInput((v) => onSubmit(v.trim() === '' && defaultValue !== undefined ? defaultValue : v), true, multiline);
  const lines = multiline ? value.split('\n') : [value];
  const shown = mask ? '*'.repeat(Array.from(value).length) : (lines[lines.length - 1] ?? '');
  const earlier = lines.slice(0, -1).filter((l) => l.trim());
  return (
    <Box flexDirection="column">
      {earlier.slice(-4).map((line, i) => (
        <Truncated key={i} color={theme.color('muted')} position="middle">
          {`  ${line}`}
        </Truncated>
      ))}
      {earlier.length > 4 ? <Text color={theme.color('muted')}>  ({earlier.length} lines so far)</Text> : null}
      <Text>
        <Text color={theme.color('accent')}>? </Text>
        <Text bold>{label}</Text>
        {defaultValue !== undefined && !mask ? <Text color={theme.color('muted')}> ({defaultValue})</Text> : null}
        <Text color={theme.color('muted')}> {theme.glyphs.pointer} </Text>
        <Text>{shown}</Text>
        <Text inverse> </Text>
      </Text>
      {multiline ? <Text color={theme.color('muted')}>  paste one or more lines; Enter on its own when done</Text> : null}
      {error ? <ErrorLine message={error} /> : null}
    </Box>
  );
}
