/**
 * The QR code as text: each glyph set is turned back into the pixels a phone
 * would see on a terminal, and a real decoder (jsQR, told not to try the
 * inverted image) must read the exact URI back. Inverting the wrong way,
 * losing the quiet zone or dropping a line makes it unreadable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import jsqr from 'jsqr';
import { Secret } from '../../src/system/secret.ts';
import { QUIET_ZONE, renderQr, type QrGlyphs } from '../../src/tfa/qr.ts';
import { qrMatrix } from '../../src/tfa/qr-matrix.ts';
import { proxmoxTotpUri } from '../../src/tfa/totp.ts';

const URI = proxmoxTotpUri({ secret: new Secret('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'), userid: 'alice@pam' }).reveal();
/** As the web UI would name it: issuer "Proxmox - HOSTNAME" (AddTotp.js issuerName). */
const LONG_URI = proxmoxTotpUri({
  secret: new Secret('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'),
  userid: 'administrator@corp-ad',
  issuer: 'Proxmox - pve-node-01.example.com',
}).reveal();

// jsqr is CommonJS with an ES-style default in its types; module.exports.default is the function.
const jsQR = jsqr.default;

/** Pixels per module side. */
const SCALE = 6;

/**
 * The screen as a scanner sees it: a glyph's ink in the terminal's
 * foreground, everything else its background. Half blocks cover the top or
 * bottom half of a cell; in the console and ASCII sets one module is two
 * cells wide and one tall.
 */
function pixels(lines: string[], glyphs: QrGlyphs, background: 'dark' | 'light') {
  const cols = Array.from(lines[0]!).length;
  const cellW = glyphs === 'unicode' ? SCALE : SCALE / 2;
  const cellH = glyphs === 'unicode' ? 2 * SCALE : SCALE;
  const width = cols * cellW;
  const height = lines.length * cellH;
  const [ink, ground] = background === 'dark' ? [255, 0] : [0, 255];
  const data = new Uint8ClampedArray(width * height * 4);
  lines.forEach((line, row) => {
    const chars = Array.from(line);
    assert.equal(chars.length, cols, `line ${row} is ${chars.length} wide, not ${cols}`);
    chars.forEach((ch, col) => {
      // Which halves of the cell the glyph fills.
      const fill: Record<string, [boolean, boolean]> = { ' ': [false, false], '█': [true, true], '▀': [true, false], '▄': [false, true], '#': [true, true] };
      const halves = fill[ch];
      assert.ok(halves, `unexpected glyph ${JSON.stringify(ch)} for ${glyphs}`);
      for (let y = 0; y < cellH; y++) {
        const on = y < cellH / 2 ? halves[0] : halves[1];
        for (let x = 0; x < cellW; x++) {
          const i = ((row * cellH + y) * width + col * cellW + x) * 4;
          data.fill(on ? ink : ground, i, i + 3);
          data[i + 3] = 255;
        }
      }
    });
  });
  return { data, width, height };
}

function decode(lines: string[], glyphs: QrGlyphs, background: 'dark' | 'light' = 'dark'): string | undefined {
  const { data, width, height } = pixels(lines, glyphs, background);
  return jsQR(data, width, height, { inversionAttempts: 'dontInvert' })?.data;
}

/** The modules as the screen shows them (dark = true), sampled at each module's centre. */
function modulesSeen(lines: string[], glyphs: QrGlyphs, background: 'dark' | 'light' = 'dark'): boolean[][] {
  const { data, width, height } = pixels(lines, glyphs, background);
  return Array.from({ length: Math.floor(height / SCALE) }, (_, r) =>
    Array.from({ length: Math.floor(width / SCALE) }, (_, c) => data[((r * SCALE + SCALE / 2) * width + c * SCALE + SCALE / 2) * 4]! < 128),
  );
}

/**
 * Scans as `uri`: a decoder reads it, and every module is where the matrix
 * has it (a decoder's error correction can hide a lost row; this cannot).
 */
function scansAs(lines: string[], glyphs: QrGlyphs, uri: string, background: 'dark' | 'light' = 'dark'): boolean {
  if (decode(lines, glyphs, background) !== uri) return false;
  const matrix = qrMatrix(uri);
  const seen = modulesSeen(lines, glyphs, background);
  // Half blocks draw an odd matrix's last half line as quiet zone.
  const rows = glyphs === 'unicode' && matrix.length % 2 === 1 ? seen.slice(0, -1) : seen;
  return JSON.stringify(rows) === JSON.stringify(matrix);
}

const MODES: QrGlyphs[] = ['unicode', 'console', 'ascii'];

test('each glyph set decodes to the exact URI from a dark-background terminal', () => {
  for (const uri of [URI, LONG_URI]) {
    const matrix = qrMatrix(uri);
    for (const glyphs of MODES) {
      const lines = renderQr(matrix, { glyphs });
      assert.equal(decode(lines, glyphs), uri, glyphs);
      assert.ok(scansAs(lines, glyphs, uri), glyphs);
    }
  }
});

test('each glyph set uses only the glyphs its terminal has', () => {
  const matrix = qrMatrix(URI);
  assert.match(renderQr(matrix, { glyphs: 'unicode' }).join(''), /^[█▀▄ ]+$/u);
  // Debian's console fonts (Lat15, Uni1-3) have the full block but no half blocks.
  assert.match(renderQr(matrix, { glyphs: 'console' }).join(''), /^[█ ]+$/u);
  assert.match(renderQr(matrix, { glyphs: 'ascii' }).join(''), /^[# ]+$/);
});

test('with background: light the dark modules are drawn, and it decodes on a light terminal', () => {
  const matrix = qrMatrix(URI);
  for (const glyphs of MODES) assert.ok(scansAs(renderQr(matrix, { glyphs, background: 'light' }), glyphs, URI, 'light'), glyphs);
});

test('the wrong inversion, a missing quiet zone or a dropped line does not scan', () => {
  const matrix = qrMatrix(URI);
  for (const glyphs of MODES) {
    // Drawn for a light terminal, seen on a dark one: a negative image.
    assert.equal(decode(renderQr(matrix, { glyphs, background: 'light' }), glyphs, 'dark'), undefined, `${glyphs} inverted`);
    const lines = renderQr(matrix, { glyphs });
    const middle = Math.floor(lines.length / 2);
    assert.equal(scansAs([...lines.slice(0, middle), ...lines.slice(middle + 1)], glyphs, URI), false, `${glyphs} line dropped`);
    // A line repeated is as wrong.
    assert.equal(scansAs([...lines.slice(0, middle), lines[middle]!, ...lines.slice(middle)], glyphs, URI), false, `${glyphs} line repeated`);
  }
  // The quiet zone is light, so it is drawn: the outer lines are solid.
  const unicode = renderQr(matrix, { glyphs: 'unicode' });
  assert.match(unicode[0]!, /^█+$/u);
  assert.match(unicode.at(-1)!, /^█+$/u);
});

test('the matrix has the 4-module quiet zone and error correction M', () => {
  const matrix = qrMatrix(URI);
  const size = matrix.length;
  assert.ok(matrix.every((row) => row.length === size));
  for (let i = 0; i < size; i++) {
    for (let q = 0; q < QUIET_ZONE; q++) {
      for (const [r, c] of [[q, i], [size - 1 - q, i], [i, q], [i, size - 1 - q]] as const) assert.equal(matrix[r]![c], false, `(${r},${c})`);
    }
  }
  // The finder pattern's dark corner sits just inside the quiet zone.
  assert.equal(matrix[QUIET_ZONE]![QUIET_ZONE], true);
  // Version 7 (45 modules) holds this 123-byte URI at level M; at level L it would be version 6.
  assert.equal(size - 2 * QUIET_ZONE, 45);
});

test('a realistic URI fits an 80-column terminal in half blocks', () => {
  for (const uri of [URI, LONG_URI]) {
    const lines = renderQr(qrMatrix(uri), { glyphs: 'unicode' });
    const width = Array.from(lines[0]!).length;
    assert.ok(width <= 80, `${width} columns for ${uri.length} characters`);
    assert.equal(lines.length, Math.ceil(qrMatrix(uri).length / 2));
  }
});
