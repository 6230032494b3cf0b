/**
 * Colour and glyphs in one place, chosen once at start and passed down by
 * context. NO_COLOR (no-color.org) turns every colour off; bold and dim stay,
 * because they carry structure, not hue.
 */
import { createContext, useContext } from 'react';
import { pickGlyphs, pickQrGlyphs, type Glyphs } from './glyphs.ts';
import type { Risk } from '../src/engine/step.ts';

type Hue = 'accent' | 'ok' | 'fail' | 'warn' | 'muted' | 'added' | 'removed' | 'hunk';

const HUES: Record<Hue, string> = {
  accent: 'cyan',
  ok: 'green',
  fail: 'red',
  warn: 'yellow',
  muted: 'gray',
  added: 'green',
  removed: 'red',
  hunk: 'cyan',
};

export const RISK_HUE: Record<Risk, Hue> = { safe: 'ok', disruptive: 'warn', lockout: 'fail', reboot: 'warn' };

export interface Theme {
  glyphs: Glyphs;
  /** How a QR code is drawn here (pickQrGlyphs). */
  qrGlyphs: 'unicode' | 'console' | 'ascii';
  /** A colour name for Ink's <Text color>, or undefined when colour is off. */
  color: (hue: Hue) => string | undefined;
  noColor: boolean;
}

export function makeTheme(env: NodeJS.ProcessEnv = process.env): Theme {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return { glyphs: pickGlyphs(env), qrGlyphs: pickQrGlyphs(env), color: (hue) => (noColor ? undefined : HUES[hue]), noColor };
}

export const ThemeContext = createContext<Theme>(makeTheme({ TERM: 'xterm-256color', LANG: 'C.UTF-8' }));

export function useTheme(): Theme {
  return useContext(ThemeContext);
}
