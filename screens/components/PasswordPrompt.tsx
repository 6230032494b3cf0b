import { useState } from 'react';
import { Box, Text } from 'ink';
import { TextPrompt } from './TextPrompt.tsx';
import { useTheme } from '../theme.ts';

export interface PasswordPromptProps {
  label: string;
  minLength: number;
  /** Refusal from the runner's validation of the previous attempt. */
  error?: string;
  onSubmit: (password: string) => void;
}

/**
 * Masked, typed twice. A mismatch or a short password starts over with the
 * reason; the value lives only in this component's state until submitted.
 */
export function PasswordPrompt({ label, minLength, error, onSubmit }: PasswordPromptProps) {
  const theme = useTheme();
  const [first, setFirst] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | undefined>(error);
  const [attempt, setAttempt] = useState(0);
  const restart = (message: string) => {
    setFirst(null);
    setProblem(message);
    setAttempt((a) => a + 1);
  };
  if (first === null) {
    return (
      <Box flexDirection="column">
        <TextPrompt
          key={`first-${attempt}`}
          label={label}
          mask
          {...(problem ? { error: problem } : {})}
          onSubmit={(value) => {
            if (Array.from(value).length < minLength) return restart(`must be at least ${minLength} characters long`);
            setProblem(undefined);
            setFirst(value);
          }}
        />
        <Text color={theme.color('muted')}>  typed characters are not shown; at least {minLength}</Text>
      </Box>
    );
  }
  return (
    <TextPrompt
      key={`again-${attempt}`}
      label={`${label} (again)`}
      mask
      onSubmit={(value) => {
        if (value !== first) return restart('the two passwords differ; type it again');
        onSubmit(value);
      }}
    />
  );
}
