/**
 * Text entry as a reducer plus an input hook (the @inkjs/ui structure), so
 * the editing rules are testable without a terminal. Append, Backspace (Ink 6
 * reports the DEL byte most terminals send as `delete`), Ctrl+U to clear,
 * Enter to submit. Control keys and arrows are left to other handlers.
 */
import { useReducer } from 'react';
import { useInput } from 'ink';

export type TextInputAction = { type: 'insert'; text: string } | { type: 'backspace' } | { type: 'clear' };

export function textInputReducer(value: string, action: TextInputAction): string {
  switch (action.type) {
    case 'insert':
      return value + action.text;
    case 'backspace':
      return Array.from(value).slice(0, -1).join('');
    case 'clear':
      return '';
  }
}

/**
 * @param multiline keep line breaks that arrive inside pasted text (a paste
 *   comes as one chunk; Enter on its own still submits)
 */
export function useTextInput(onSubmit: (value: string) => void, isActive = true, multiline = false): { value: string; clear: () => void } {
  const [value, dispatch] = useReducer(textInputReducer, '');
  useInput(
    (input, key) => {
      if (key.return) {
        onSubmit(value);
        return;
      }
      if (key.backspace || key.delete) return dispatch({ type: 'backspace' });
      if (key.ctrl && input === 'u') return dispatch({ type: 'clear' });
      if (key.ctrl || key.meta || key.escape || key.tab || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow || key.pageUp || key.pageDown) return;
      // One line pasted or typed ahead with its Enter ("alice\r") arrives as one chunk: take it and submit.
      if (!multiline && /[\r\n]/.test(input)) {
        const line = input.split(/[\r\n]/)[0]!.replace(/[\u0000-\u001f\u007f]/g, '');
        dispatch({ type: 'insert', text: line });
        onSubmit(value + line);
        return;
      }
      // A paste arrives as one chunk; keep printable characters (and its line breaks when multi-line).
      const text = multiline ? input.replace(/\r\n?/g, '\n') : input;
      const printable = text.replace(multiline ? /[\u0000-\u0009\u000b-\u001f\u007f]/g : /[\u0000-\u001f\u007f]/g, '');
      // A paste followed by Enter can arrive as one chunk ("key\r\r"): an empty line ends the input.
      if (multiline && /\n\n$/.test(value + printable) && (value + printable).trim()) {
        dispatch({ type: 'insert', text: printable });
        onSubmit((value + printable).trim());
        return;
      }
      if (printable) dispatch({ type: 'insert', text: printable });
    },
    { isActive },
  );
  return { value, clear: () => dispatch({ type: 'clear' }) };
}
