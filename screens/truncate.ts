/**
 * Cutting a line to a width with a chosen ellipsis. Ink's own truncation
 * always ends in "…" (U+2026), which the Linux console font may lack; the
 * console glyph set has "..." instead, and components/Truncated.tsx cuts with
 * that. Widths are measured a little generously (wide characters count two,
 * control characters one), so Ink never has to cut again after us.
 */

/** Columns a string takes: one per character, two for East Asian wide ones and emoji, none for combining marks. */
export function columns(text: string): number {
  let n = 0;
  for (const ch of text) n += charColumns(ch);
  return n;
}

function charColumns(ch: string): number {
  if (/[\p{Mn}\p{Me}\u200b-\u200f\ufe00-\ufe0f]/u.test(ch)) return 0;
  const cp = ch.codePointAt(0)!;
  const wide =
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd);
  return wide ? 2 : 1;
}

/** The longest start of `text` that fits in `width` columns. */
export function head(text: string, width: number): string {
  let out = '';
  let used = 0;
  for (const ch of text) {
    used += charColumns(ch);
    if (used > width) break;
    out += ch;
  }
  return out;
}

/** The longest end of `text` that fits in `width` columns. */
function tail(text: string, width: number): string {
  const chars = Array.from(text);
  let out = '';
  let used = 0;
  for (let i = chars.length - 1; i >= 0; i--) {
    used += charColumns(chars[i]!);
    if (used > width) break;
    out = chars[i]! + out;
  }
  return out;
}

/** `text` as it is when it fits in `width` columns, else its start, `ellipsis` and its end ("SHA256:Dl...c7E"). */
export function truncateMiddle(text: string, width: number, ellipsis: string): string {
  if (columns(text) <= width) return text;
  if (width <= columns(ellipsis)) return head(ellipsis, Math.max(0, width));
  const room = width - columns(ellipsis);
  const start = Math.ceil(room / 2);
  return head(text, start) + ellipsis + tail(text, room - start);
}
