/**
 * The QR code's matrix, from the `qrcode` library: apart from src/tfa/qr.ts
 * (the drawing) so that the library is loaded (`await import`) only when a
 * QR code is shown, not with the first frame.
 */
// The library's core only: its entry point also loads the PNG, SVG and
// terminal renderers (pngjs among them), which the terminal drawing in qr.ts
// replaces; this keeps about 40 KB out of the bundle.
import QRCode from 'qrcode/lib/core/qrcode.js';
import { QUIET_ZONE } from './qr.ts';

/** The QR code for `text`: true for a dark module, quiet zone included. */
export function qrMatrix(text: string): boolean[][] {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: 'M' });
  const size = modules.size + 2 * QUIET_ZONE;
  return Array.from({ length: size }, (_, row) =>
    Array.from({ length: size }, (_, col) => {
      const r = row - QUIET_ZONE;
      const c = col - QUIET_ZONE;
      return r >= 0 && c >= 0 && r < modules.size && c < modules.size && Boolean(modules.get(r, c));
    }),
  );
}
