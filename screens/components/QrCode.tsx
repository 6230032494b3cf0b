import { Box, Text } from 'ink';
import { useWidth } from './Truncated.tsx';
import { useTheme } from '../theme.ts';

export interface QrCodeProps {
  /** The QR code as src/tfa/qr.ts renderQr draws it, in the glyphs the terminal has. */
  lines: string[];
  /** The base32 secret, for a password manager or an app without a camera. */
  secretText: string;
  /** One short line above the code, e.g. "Scan with your authenticator app". */
  caption: string;
}

/** The secret in blocks of 4 characters, easier to read and type: "JBSW Y3DP EHPK ...". */
export function groupSecret(text: string): string {
  return (text.match(/.{1,4}/g) ?? []).join(' ');
}

/**
 * ```
 *  Scan with your authenticator app
 *  █████████████████████
 *  ████ ▄▄▄▄▄ █ ▀▄█ ▄▄▄   (each line exactly as given)
 *  ...
 *  Or enter this secret: JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP
 * ```
 * The secret goes beside the code when the width allows, else below it.
 * With colour on, the code is drawn white on black: renderQr's default
 * assumes a dark background, and this holds it on a light-themed terminal
 * too. Lines are never wrapped or cut: either would break the code.
 */
export function QrCode({ lines, secretText, caption }: QrCodeProps) {
  const theme = useTheme();
  const width = useWidth();
  const qrWidth = Math.max(0, ...lines.map((line) => Array.from(line).length));
  const grouped = groupSecret(secretText);
  const label = 'Or enter this secret:';
  const beside = qrWidth + 3 + Math.max(label.length, grouped.length) <= width;
  const secret = (
    <Box flexDirection="column" flexShrink={0} marginLeft={beside ? 3 : 0} marginTop={beside ? 0 : 1}>
      <Text color={theme.color('muted')}>{label}</Text>
      <Text bold>{grouped}</Text>
    </Box>
  );
  return (
    <Box flexDirection="column">
      <Text>{caption}</Text>
      <Box flexDirection={beside ? 'row' : 'column'}>
        {/* A fixed width that never shrinks, so Ink lays each line out on one row. */}
        <QrLines lines={lines} width={qrWidth} />
        {secret}
      </Box>
    </Box>
  );
}

/**
 * The QR code's lines, each on one row: a fixed width that never shrinks (so
 * Ink never wraps a line), drawn light on black so it scans on any terminal
 * theme (the terminal's own colours with NO_COLOR).
 */
export function QrLines({ lines, width }: { lines: string[]; width: number }) {
  const theme = useTheme();
  return (
    <Box flexDirection="column" flexShrink={0} width={width}>
      {lines.map((line, i) => (
        <Text key={i} wrap="truncate-end" color={theme.noColor ? undefined : 'whiteBright'} backgroundColor={theme.noColor ? undefined : 'black'}>
          {line}
        </Text>
      ))}
    </Box>
  );
}
