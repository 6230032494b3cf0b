import { useEffect, useState } from 'react';
import { Text } from 'ink';
import { useTheme } from '../theme.ts';

/**
 * A spinner that changes one character about eight times a second. With
 * incremental rendering only that line is redrawn, which keeps a slow serial
 * console (about 11 KB/s) comfortable.
 */
export function Spinner({ interval = 125 }: { interval?: number }) {
  const { glyphs, color } = useTheme();
  const [frame, setFrame] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setFrame((f) => (f + 1) % glyphs.spinner.length), interval);
    return () => clearInterval(timer);
  }, [glyphs.spinner.length, interval]);
  return <Text color={color('accent')}>{glyphs.spinner[frame]}</Text>;
}
