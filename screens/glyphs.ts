/**
 * Two glyph sets. The Linux console (TERM=linux, also IPMI serial-over-LAN)
 * draws with a 256/512-glyph font that has box drawing but lacks ❯ ✔ ⚠ and
 * braille spinners, which show up as diamonds; there we use ASCII plus box
 * drawing. Everywhere else, Unicode.
 */
export interface Glyphs {
  ok: string;
  fail: string;
  warn: string;
  info: string;
  pointer: string;
  bullet: string;
  pending: string;
  skipped: string;
  arrow: string;
  ellipsis: string;
  rule: string;
  spinner: readonly string[];
  /** A progress bar's done and to-do cells. */
  barDone: string;
  barToDo: string;
  /** Ink <Box borderStyle>: 'round' draws ╭╮╰╯, 'single' ┌┐└┘ (both in the console font). */
  border: 'round' | 'single';
}

export const UNICODE: Glyphs = {
  ok: '✔',
  fail: '✖',
  warn: '⚠',
  info: 'ℹ',
  pointer: '❯',
  bullet: '●',
  pending: '○',
  skipped: '–',
  arrow: '→',
  ellipsis: '…',
  rule: '─',
  spinner: ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'],
  barDone: '█',
  barToDo: '░',
  border: 'round',
};

export const CONSOLE: Glyphs = {
  ok: '+',
  fail: 'x',
  warn: '!',
  info: 'i',
  pointer: '>',
  bullet: '*',
  pending: '.',
  skipped: '-',
  arrow: '->',
  ellipsis: '...',
  rule: '─',
  spinner: ['-', '\\', '|', '/'],
  barDone: '#',
  barToDo: '.',
  border: 'single',
};

/** Console glyphs for TERM=linux (and vt*), or when the locale is not UTF-8. */
export function pickGlyphs(env: NodeJS.ProcessEnv = process.env): Glyphs {
  const term = env.TERM ?? '';
  if (term === 'linux' || term.startsWith('vt') || term === 'dumb') return CONSOLE;
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  if (locale && !/utf-?8/i.test(locale) && locale !== 'C.UTF-8') return CONSOLE;
  return UNICODE;
}

/**
 * The glyphs a QR code is drawn with (src/tfa/qr.ts): 'console' on the Linux
 * console, whose font has █ but not the half blocks; 'ascii' where the
 * terminal cannot show Unicode at all (a locale that is not UTF-8, a vt*
 * or dumb serial terminal); 'unicode' everywhere else.
 */
export function pickQrGlyphs(env: NodeJS.ProcessEnv = process.env): 'unicode' | 'console' | 'ascii' {
  const term = env.TERM ?? '';
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  if (locale && !/utf-?8/i.test(locale)) return 'ascii';
  if (term === 'linux') return 'console';
  if (term.startsWith('vt') || term === 'dumb') return 'ascii';
  return 'unicode';
}
