import { Box, Text, useInput } from 'ink';
import SelectInput from 'ink-select-input';
import type { AnswerRequest } from '../../src/engine/events.ts';
import { Secret } from '../../src/system/secret.ts';
import { PasswordPrompt } from './PasswordPrompt.tsx';
import { TextPrompt } from './TextPrompt.tsx';
import { useTheme } from '../theme.ts';
import { ErrorLine } from './ErrorLine.tsx';
import { QuestionDisplayView } from './QuestionDisplay.tsx';
import { useWidth } from './Truncated.tsx';
import { useTerminalSize } from '../hooks/use-terminal-size.ts';

export interface QuestionPromptProps {
  request: AnswerRequest;
  onAnswer: (value: unknown) => void;
  /** Esc: skip the whole step from one of its questions (some steps cannot be planned without their answers). */
  onSkip?: () => void;
  /** Rows the prompt may take (StepScreen's body); the terminal's height less the header when not given. */
  height?: number;
}

/** Rows the input itself takes below a display: the prompt line, the input, an error or hint line. */
const INPUT_ROWS = 4;

/** One question of a step, in the form its kind wants; the runner validates what comes back. */
export function QuestionPrompt({ request, onAnswer, onSkip, height }: QuestionPromptProps) {
  const theme = useTheme();
  useInput((_input, key) => {
    if (key.escape && onSkip) onSkip();
  });
  const width = useWidth();
  const { rows } = useTerminalSize();
  const { question, error, display } = request;
  const helpRows = question.help ? Math.ceil(question.help.length / Math.max(1, width)) : 0;
  // The step header and a spare row, as StepScreen counts them.
  const available = (height ?? rows - 5) - helpRows - INPUT_ROWS - (question.kind === 'select' ? question.choices.length : 0);
  return (
    <Box flexDirection="column">
      {question.help ? (
        <Text color={theme.color('muted')} wrap="wrap">
          {question.help}
        </Text>
      ) : null}
      {display ? <QuestionDisplayView display={display} height={available} /> : null}
      <QuestionInput key={`${question.id}-${error ?? ''}`} request={request} onAnswer={onAnswer} />
      {/* Text and password prompts show their own error under the input. */}
      {error && question.kind !== 'text' && question.kind !== 'password' ? <ErrorLine message={error} /> : null}
      {onSkip ? <Text color={theme.color('muted')}>Esc skips this step</Text> : null}
    </Box>
  );
}

function QuestionInput({ request, onAnswer }: QuestionPromptProps) {
  const { question, defaultValue, error } = request;
  switch (question.kind) {
    case 'text':
      return (
        <TextPrompt
          label={question.prompt}
          {...(typeof defaultValue === 'string' ? { defaultValue } : {})}
          {...(error ? { error } : {})}
          multiline={question.multiline ?? false}
          onSubmit={onAnswer}
        />
      );
    case 'password':
      return (
        <PasswordPrompt
          label={question.prompt}
          minLength={question.minLength}
          {...(error ? { error } : {})}
          onSubmit={(value) => onAnswer(new Secret(value))}
        />
      );
    case 'select': {
      const items = question.choices.map((c) => ({ key: c.value, value: c.value, label: c.hint ? `${c.label}  (${c.hint})` : c.label }));
      const initialIndex = Math.max(0, items.findIndex((i) => i.value === defaultValue));
      return (
        <Box flexDirection="column">
          <Text bold>? {question.prompt}</Text>
          <SelectInput items={items} initialIndex={initialIndex} onSelect={(item) => onAnswer(item.value)} />
        </Box>
      );
    }
    case 'confirm':
      return <ConfirmInput label={question.prompt} {...(typeof defaultValue === 'boolean' ? { defaultValue } : {})} onAnswer={onAnswer} />;
  }
}

function ConfirmInput({ label, defaultValue, onAnswer }: { label: string; defaultValue?: boolean; onAnswer: (v: boolean) => void }) {
  const theme = useTheme();
  useInput((input, key) => {
    if (key.return && defaultValue !== undefined) return onAnswer(defaultValue);
    const c = input.toLowerCase();
    if (c === 'y') onAnswer(true);
    if (c === 'n') onAnswer(false);
  });
  const hint = defaultValue === undefined ? 'y/n' : defaultValue ? 'Y/n' : 'y/N';
  return (
    <Text>
      <Text color={theme.color('accent')}>? </Text>
      <Text bold>{label}</Text>
      <Text color={theme.color('muted')}> ({hint})</Text>
    </Text>
  );
}
