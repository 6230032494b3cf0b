/**
 * A QR code drawn with text, for enrolling an authenticator app from the
 * terminal. The matrix is the `qrcode` library's, at error correction M as
 * Proxmox's web UI draws it (proxmox-widget-toolkit src/window/AddTotp.js,
 * `correctLevel: QRCode.CorrectLevel.M`, src/tfa/qr-matrix.ts, loaded only
 * when a QR code is shown); this file only draws it.
 */

/** The light border every QR code needs around it, in modules (ISO/IEC 18004). */
export const QUIET_ZONE = 4;


/**
 * - `unicode`: half blocks, two module rows per line and one column per
 *   module, so modules come out square in a usual 1:2 character cell.
 * - `console`: the Linux console (TERM=linux). Debian's console-setup fonts
 *   (Lat15, Uni1-3: Fixed, VGA, Terminus) carry █ but neither ▀ nor ▄, so
 *   one line per module row and two █ per module to keep modules square.
 * - `ascii`: the same geometry with '#', for a serial line without UTF-8.
 */
export type QrGlyphs = 'unicode' | 'console' | 'ascii';

export interface RenderQrOptions {
  glyphs: QrGlyphs;
  /**
   * The terminal's background. Scanners want dark modules on a light ground
   * with a light quiet zone. A terminal draws a glyph in its foreground and
   * leaves a space in its background, so on a dark background (the default:
   * the Linux console, most SSH clients) the light modules and the quiet zone
   * are the ones drawn and the dark modules are left blank. `light` draws the
   * dark modules instead.
   */
  background?: 'dark' | 'light';
}

/** The matrix as lines of text, every line the same width. */
export function renderQr(matrix: boolean[][], { glyphs, background = 'dark' }: RenderQrOptions): string[] {
  // "lit": the terminal draws a glyph (foreground) here.
  const lit = (row: number, col: number): boolean => {
    const dark = matrix[row]?.[col];
    // Outside the matrix (the half line under an odd last row) is quiet zone: light.
    const light = dark === undefined ? true : !dark;
    return background === 'dark' ? light : !light;
  };
  const width = matrix[0]?.length ?? 0;
  const lines: string[] = [];
  if (glyphs === 'unicode') {
    for (let row = 0; row < matrix.length; row += 2) {
      let line = '';
      for (let col = 0; col < width; col++) {
        const top = lit(row, col);
        const bottom = lit(row + 1, col);
        line += top ? (bottom ? '█' : '▀') : bottom ? '▄' : ' ';
      }
      lines.push(line);
    }
    return lines;
  }
  const on = glyphs === 'console' ? '██' : '##';
  for (let row = 0; row < matrix.length; row++) {
    let line = '';
    for (let col = 0; col < width; col++) line += lit(row, col) ? on : '  ';
    lines.push(line);
  }
  return lines;
}
