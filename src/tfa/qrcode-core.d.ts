/**
 * Types for the core of the `qrcode` library (qr-matrix.ts imports it alone,
 * without the renderers its entry point loads): what @types/qrcode declares
 * for `create`, under the core module's own path.
 */
declare module 'qrcode/lib/core/qrcode.js' {
  import type { QRCode, QRCodeOptions } from 'qrcode';
  export function create(text: string, options?: QRCodeOptions): QRCode;
  const core: { create: typeof create };
  export default core;
}
