/**
 * The QR code component: every line of the code on one row, untouched (a
 * wrapped or cut line would not scan), and the secret in blocks of four for
 * a password manager, beside the code when there is room, else below it.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup } from 'ink-testing-library';
import { groupSecret, QrCode } from '../../screens/components/QrCode.tsx';
import { WidthContext } from '../../screens/components/Truncated.tsx';
import { Secret } from '../../src/system/secret.ts';
import { renderQr, type QrGlyphs } from '../../src/tfa/qr.ts';
import { qrMatrix } from '../../src/tfa/qr-matrix.ts';
import { proxmoxTotpUri } from '../../src/tfa/totp.ts';
import { renderScreen } from './helpers.tsx';

afterEach(() => cleanup());

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const GROUPED = 'JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP';
const URI = proxmoxTotpUri({ secret: new Secret(SECRET), userid: 'alice@pam' }).reveal();

function mount(glyphs: QrGlyphs, width: number, env?: NodeJS.ProcessEnv) {
  const lines = renderQr(qrMatrix(URI), { glyphs });
  const screen = renderScreen(
    <WidthContext.Provider value={width}>
      <QrCode lines={lines} secretText={SECRET} caption="Scan with your authenticator app" />
    </WidthContext.Provider>,
    env,
  );
  return { lines, screen };
}

/** The frame's rows, each cut to the QR's width from where the code starts. */
function qrRows(frame: string, lines: string[]): string[] {
  const rows = frame.split('\n');
  const first = rows.findIndex((row) => row.startsWith(lines[0]!));
  assert.ok(first >= 0, `the first QR line is not in:\n${frame}`);
  const width = Array.from(lines[0]!).length;
  return rows.slice(first, first + lines.length).map((row) => Array.from(row).slice(0, width).join(''));
}

test('groupSecret makes blocks of four', () => {
  assert.equal(groupSecret(SECRET), GROUPED);
  assert.equal(groupSecret('ABCDEF'), 'ABCD EF');
  assert.equal(groupSecret(''), '');
});

test('at 80 columns the code is intact and the grouped secret is below it', () => {
  const { lines, screen } = mount('unicode', 80);
  const frame = screen.frame();
  assert.ok(frame.startsWith('Scan with your authenticator app\n'), frame);
  assert.deepEqual(qrRows(frame, lines), lines);
  const rows = frame.split('\n');
  // Nothing beside the code: its rows are exactly its lines.
  for (const line of lines) assert.ok(rows.includes(line), `missing or changed: ${line}`);
  const after = rows.slice(rows.indexOf(lines.at(-1)!) + 1).join('\n');
  assert.match(after, /Or enter this secret:/);
  assert.ok(after.includes(GROUPED), frame);
  assert.ok(!frame.includes(SECRET), 'the secret is shown grouped, not in one block');
});

test('on a wide terminal the secret goes beside the code, which stays intact', () => {
  const { lines, screen } = mount('unicode', 120);
  const frame = screen.frame();
  assert.deepEqual(qrRows(frame, lines), lines);
  const rows = frame.split('\n');
  const first = rows.findIndex((row) => row.startsWith(lines[0]!));
  assert.ok(rows[first + 1]!.endsWith(GROUPED), frame);
  assert.equal(rows.filter((row) => row.includes(GROUPED)).length, 1);
});

test('console glyphs wider than the terminal are not wrapped or cut', () => {
  // 106 columns of console glyphs; ink-testing-library's terminal is 100 wide.
  const { lines, screen } = mount('console', 80, { TERM: 'linux', LANG: 'en_US.UTF-8', NO_COLOR: '1' });
  const frame = screen.frame();
  assert.ok(Array.from(lines[0]!).length > 100);
  assert.deepEqual(qrRows(frame, lines), lines);
  assert.ok(frame.includes(GROUPED), frame);
});
