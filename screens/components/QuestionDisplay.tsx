import { useMemo } from 'react';
import { Box, Text } from 'ink';
import type { QuestionDisplay as Display } from '../../src/engine/events.ts';
import { renderQr } from '../../src/tfa/qr.ts';
import { groupSecret, QrCode, QrLines } from './QrCode.tsx';
import { useWidth } from './Truncated.tsx';
import { useTerminalSize } from '../hooks/use-terminal-size.ts';
import { useTheme } from '../theme.ts';

export interface QuestionDisplayProps {
  display: Display;
  /** Rows this block may take without the live region outgrowing the terminal. */
  height: number;
}

/** Rows a text takes when wrapped to `width`. */
function wrappedRows(text: string, width: number): number {
  return text.split('\n').reduce((n, line) => n + Math.max(1, Math.ceil(Array.from(line).length / Math.max(1, width))), 0);
}

/**
 * What a question shows above its prompt (AnswerRequest.display): a QR code
 * with its secret as text, then plain lines. The secrets are revealed here,
 * into the frame, and nowhere else. A code that does not fit is not drawn
 * at all (a cut code does not scan): the secret alone, and the size the
 * window needs for the code.
 */
export function QuestionDisplayView({ display, height }: QuestionDisplayProps) {
  const theme = useTheme();
  const width = useWidth();
  const { columns, rows } = useTerminalSize();
  const qr = display.qr;
  const lines = useMemo(() => (qr?.matrix ? renderQr(qr.matrix, { glyphs: theme.qrGlyphs }) : []), [qr, theme.qrGlyphs]);
  const textRows = (display.lines ?? []).reduce((n, line) => n + wrappedRows(line, width), 0);
  const plainLines = (display.lines ?? []).map((line, i) => (
    <Text key={i} wrap="wrap">
      {line}
    </Text>
  ));
  if (!qr) return <Box flexDirection="column">{plainLines}</Box>;

  const secret = qr.secretText?.reveal() ?? '';
  const grouped = groupSecret(secret);
  const label = 'Or enter this secret:';
  const qrWidth = Math.max(0, ...lines.map((line) => Array.from(line).length));
  // As QrCode lays it out: the secret beside the code when it fits, else 3 rows below it.
  const beside = qrWidth + 3 + Math.max(label.length, grouped.length) <= width;
  const qrRows = 1 + lines.length + (secret && !beside ? 3 : 0);
  // The code may be wider than the wizard's 100 columns (the console's
  // glyphs): it then overflows into the terminal's own columns, never the last one.
  const fits = qrWidth <= columns - 1 && qrRows + textRows <= height;
  if (fits) {
    return (
      <Box flexDirection="column">
        {secret ? (
          <QrCode lines={lines} secretText={secret} caption={qr.caption} />
        ) : (
          <Box flexDirection="column">
            <Text>{qr.caption}</Text>
            <QrLines lines={lines} width={qrWidth} />
          </Box>
        )}
        {plainLines}
      </Box>
    );
  }
  const needColumns = Math.max(columns, qrWidth + 1);
  const needRows = Math.max(rows, rows + qrRows + textRows - height);
  return (
    <Box flexDirection="column">
      <Text color={theme.color('warn')} wrap="wrap">
        {theme.glyphs.warn} The window is too small for the QR code: it needs {needColumns}×{needRows} (columns×rows), this one is {columns}×{rows}.
        {secret ? ' Enlarge it, or enter the secret in your app by hand:' : ' Enlarge it to scan the code.'}
      </Text>
      {secret ? <Text bold>{grouped}</Text> : null}
      {plainLines}
    </Box>
  );
}
