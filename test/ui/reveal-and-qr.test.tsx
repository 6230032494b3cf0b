/**
 * The wizard's side of issue 13: a question that shows a QR code (drawn in
 * the terminal's glyphs, or, when it does not fit, the secret alone and the
 * size the window needs), and values revealed once, gone after `w`.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup } from 'ink-testing-library';
import { App } from '../../screens/App.tsx';
import { pickQrGlyphs } from '../../screens/glyphs.ts';
import { WizardStore } from '../../screens/state/wizard-store.ts';
import type { AnswerRequest, StepInfo } from '../../src/engine/events.ts';
import { Secret } from '../../src/system/secret.ts';
import { renderQr, type QrGlyphs } from '../../src/tfa/qr.ts';
import { qrMatrix } from '../../src/tfa/qr-matrix.ts';
import { proxmoxTotpUri } from '../../src/tfa/totp.ts';
import { fakeNode, KEY, renderScreen, tick } from './helpers.tsx';

afterEach(() => cleanup());

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const GROUPED = 'JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP';
const URI = proxmoxTotpUri({ secret: new Secret(SECRET), userid: 'alice@pam' });

const STEPS: StepInfo[] = [{ id: 'tfa', title: 'Two-factor login for the web UI', summary: 'TOTP for the admin.', risk: 'safe', scope: 'node', journaled: 'pending' }];

const CODE_REQUEST: AnswerRequest = {
  stepId: 'tfa',
  stepTitle: 'Two-factor login for the web UI',
  question: { id: 'code', kind: 'text', prompt: 'The 6-digit code your app shows' },
  display: {
    // The runner fills in the matrix (src/engine/runner.ts), loading the QR library only then.
    qr: { text: URI, secretText: new Secret(SECRET), caption: 'Scan with your authenticator app', matrix: qrMatrix(URI.reveal()) },
    lines: ['Account alice@pam, issuer Proxmox.'],
  },
};

function mount(env?: NodeJS.ProcessEnv, stopRequests = { count: 0 }) {
  const store = new WizardStore();
  const screen = renderScreen(
    <App
      store={store}
      node={fakeNode()}
      version="0.1.0"
      notes={[]}
      journalPath="/var/lib/pve-baseline/journal.json"
      backupsPath="/var/lib/pve-baseline/backups"
      onInterrupt={() => store.interrupt(() => stopRequests.count++)}
    />,
    env,
  );
  store.onEvent({ type: 'run-started', steps: STEPS });
  store.onEvent({ type: 'step-started', stepId: 'tfa', index: 0 });
  return { store, screen };
}

/** The terminal's size as the wizard reads it (stdout.columns/rows, then a resize event). */
async function resize(stdout: NodeJS.EventEmitter, columns: number, rows: number) {
  Object.defineProperty(stdout, 'columns', { configurable: true, get: () => columns });
  Object.defineProperty(stdout, 'rows', { configurable: true, get: () => rows });
  stdout.emit('resize');
  await tick();
}

function qrLines(glyphs: QrGlyphs): string[] {
  return renderQr(qrMatrix(URI.reveal()), { glyphs });
}

/** The frame with its wrapped lines joined, for sentences. */
const flat = (frame: string) => frame.replace(/\s+/g, ' ');

/** True when every line of the code is in the frame, each on a row of its own start. */
function showsCode(frame: string, lines: string[]): boolean {
  const rows = frame.split('\n');
  const first = rows.findIndex((row) => row.startsWith(lines[0]!));
  return first >= 0 && lines.every((line, i) => rows[first + i]?.startsWith(line));
}

test('the QR glyphs follow the terminal: console on TERM=linux, ASCII without UTF-8, else Unicode', () => {
  assert.equal(pickQrGlyphs({ TERM: 'xterm-256color', LANG: 'en_US.UTF-8' }), 'unicode');
  assert.equal(pickQrGlyphs({ TERM: 'linux', LANG: 'C.UTF-8' }), 'console');
  assert.equal(pickQrGlyphs({ TERM: 'xterm', LANG: 'en_US.ISO-8859-1' }), 'ascii');
  assert.equal(pickQrGlyphs({ TERM: 'linux', LC_ALL: 'C' }), 'ascii');
  assert.equal(pickQrGlyphs({ TERM: 'vt100', LANG: 'C.UTF-8' }), 'ascii');
});

test('a question with a QR code shows the code, its caption and the grouped secret above the prompt', async () => {
  const { store, screen } = mount();
  await resize(screen.stdout, 100, 50);
  const answer = store.answer(CODE_REQUEST);
  const frame = await screen.waitForText('The 6-digit code your app shows');
  const lines = qrLines('unicode');
  assert.ok(showsCode(frame, lines), `the code is not drawn whole:\n${frame}`);
  assert.match(frame, /Scan with your authenticator app/);
  assert.match(frame, /Or enter this secret:/);
  assert.ok(frame.includes(GROUPED), frame);
  assert.match(frame, /Account alice@pam, issuer Proxmox\./);
  assert.ok(!frame.includes('otpauth://'), 'the URI is encoded, never printed');
  assert.ok(!frame.includes('too small'), frame);
  // The code, then the prompt under it.
  assert.ok(frame.indexOf(lines.at(-1)!) < frame.indexOf('The 6-digit code your app shows'));
  await screen.press('4', '9', '2', '0', '3', '9', KEY.enter);
  assert.equal(await answer, '492039');
  screen.unmount();
});

test('on the Linux console the code is drawn with █ only, even wider than the wizard\'s 100 columns', async () => {
  const { store, screen } = mount({ TERM: 'linux', LANG: 'C.UTF-8', NO_COLOR: '1' });
  await resize(screen.stdout, 120, 80);
  void store.answer(CODE_REQUEST);
  const frame = await screen.waitForText('The 6-digit code your app shows');
  const lines = qrLines('console');
  assert.ok(Array.from(lines[0]!).length > 100);
  assert.ok(showsCode(frame, lines), `the console code is not drawn whole:\n${frame}`);
  assert.ok(!/[▀▄]/.test(frame), 'no half blocks on the console');
  screen.unmount();
});

test('a terminal too small for the code shows the secret alone and the size it needs', async () => {
  const { store, screen } = mount();
  await resize(screen.stdout, 80, 24);
  void store.answer(CODE_REQUEST);
  let frame = await screen.waitForText('The 6-digit code your app shows');
  assert.match(flat(frame), /The window is too small for the QR code: it needs 80×(\d+) \(columns×rows\), this one is 80×24\./);
  const needed = Number(/it needs 80×(\d+)/.exec(flat(frame))![1]);
  assert.ok(needed > qrLines('unicode').length + 5, `needs ${needed} rows: the code, its caption, the header and the prompt at least`);
  assert.match(flat(frame), /enter the secret in your app by hand/);
  assert.ok(frame.includes(GROUPED), frame);
  assert.ok(!frame.includes(qrLines('unicode')[1]!), 'no part of the code is drawn');
  assert.match(frame, /Account alice@pam, issuer Proxmox\./);
  assert.ok(frame.split('\n').length < 24, `the live region stays under the terminal's height:\n${frame}`);

  // Made as big as it says, the code appears.
  await resize(screen.stdout, 80, needed);
  frame = await screen.waitForText('Or enter this secret:');
  assert.ok(showsCode(frame, qrLines('unicode')), frame);
  assert.ok(frame.split('\n').length < needed, `the live region fits in ${needed} rows:\n${frame}`);
  screen.unmount();
});

test('a terminal too narrow for the code says how many columns it needs', async () => {
  const { store, screen } = mount({ TERM: 'linux', LANG: 'C.UTF-8', NO_COLOR: '1' });
  await resize(screen.stdout, 100, 80);
  void store.answer(CODE_REQUEST);
  const frame = await screen.waitForText('The 6-digit code your app shows');
  const width = Array.from(qrLines('console')[0]!).length;
  assert.match(flat(frame), new RegExp(`it needs ${width + 1}×80 \\(columns×rows\\), this one is 100×80`));
  assert.ok(frame.includes(GROUPED), frame);
  screen.unmount();
});

test('reveal: the title, each value on its own line, the advice; only w goes on, and the values leave the state', async () => {
  const { store, screen } = mount();
  const values = ['4b1e-0c2f-9a7d-e315', '77d0-1a4e-b2c9-05f3', 'e0a9-3c71-d4b8-6f22'];
  let done = false;
  const revealed = store.reveal({ stepId: 'tfa', title: 'Recovery keys for alice@pam', advice: 'Write these down and keep them apart from your phone.', values: values.map((v) => new Secret(v)) }).then(() => {
    done = true;
  });
  let frame = await screen.waitForText('Press w when you have written them down');
  assert.match(frame, /Recovery keys for alice@pam/);
  for (const value of values) assert.match(frame, new RegExp(`^\\s*${value}\\s*$`, 'm'), `${value} on a line of its own:\n${frame}`);
  assert.match(frame, /Write these down and keep them apart from your phone\./);

  await screen.press(KEY.enter, 'y', ' ', 'q');
  assert.equal(done, false, 'only w continues');
  assert.equal(store.getState().pending?.kind, 'reveal');

  await screen.press('w');
  await revealed;
  assert.equal(done, true);
  assert.equal(store.getState().pending, undefined);
  frame = screen.frame();
  for (const value of values) assert.ok(!frame.includes(value), `${value} still on screen:\n${frame}`);
  const state = store.getState() as unknown as Record<string, unknown>;
  const seen = new Set<unknown>();
  const holds = (v: unknown): boolean => {
    if (v instanceof Secret) return values.includes(v.reveal());
    if (typeof v === 'string') return values.some((x) => v.includes(x));
    if (!v || typeof v !== 'object' || seen.has(v)) return false;
    seen.add(v);
    return Object.values(v).some(holds);
  };
  assert.equal(holds(state), false, 'no value is left in the wizard state');
  screen.unmount();
});

test('reveal: Ctrl+C keeps the values on screen and stops after the step; w still goes on', async () => {
  const stops = { count: 0 };
  const { store, screen } = mount(undefined, stops);
  const revealed = store.reveal({ stepId: 'tfa', title: 'Recovery keys', advice: 'Write these down.', values: [new Secret('4b1e-0c2f-9a7d-e315')] });
  await screen.waitForText('Press w when you have written them down');
  await screen.press(KEY.ctrlC);
  assert.equal(stops.count, 1);
  assert.equal(store.getState().pending?.kind, 'reveal');
  assert.match(screen.frame(), /4b1e-0c2f-9a7d-e315/);
  await screen.press('w');
  await revealed;
  screen.unmount();
});

test('reveal: a value also saved to the operator\'s file says where, and only there', async () => {
  const { store, screen } = mount();
  const revealed = store.reveal({ stepId: 'api-tokens', title: 'The secret of svc-ci@pve!ci', advice: 'Shown once.', values: [new Secret('6f1c0c5e-8d3b-4b8e-9b1a-0d2f0e4c3a21')], savedTo: '/root/ci.token' });
  const frame = await screen.waitForText('Press w when you have written them down');
  assert.match(flat(frame), /They are not shown again; pve-baseline also wrote them to \/root\/ci\.token \(mode 0600\), and nowhere else\./);
  assert.doesNotMatch(frame, /not saved anywhere/);
  await screen.press('w');
  await revealed;
  screen.unmount();
});

test('reboot: what the step found, the guests that stop, and only r reboots; l is later; Ctrl+C is later and stops', async () => {
  const stops = { count: 0 };
  const { store, screen } = mount(undefined, stops);
  const request = { stepId: 'upgrade', stepTitle: 'Upgrade', reason: 'kernel 6.14.11-1-pve is installed; 6.14.8-2-pve runs', expectKernel: '6.14.11-1-pve', runningGuests: ['100 (web1)'] };
  const decided = store.reboot(request);
  const frame = flat(await screen.waitForText('reboot now'));
  assert.match(frame, /The node needs a reboot: kernel 6\.14\.11-1-pve is installed; 6\.14\.8-2-pve runs/);
  assert.match(frame, /It should come back running kernel 6\.14\.11-1-pve\./);
  assert.match(frame, /Running guests stop with it, unless they start on boot or HA restarts them: 100 \(web1\)/);
  await screen.press(KEY.enter, 'y', ' ');
  assert.equal(store.getState().pending?.kind, 'reboot', 'no habit key reboots');
  await screen.press('r');
  assert.equal(await decided, 'now');

  const later = store.reboot(request);
  await screen.waitForText('reboot now');
  await screen.press('l');
  assert.equal(await later, 'later');

  const stopped = store.reboot(request);
  await screen.waitForText('reboot now');
  await screen.press(KEY.ctrlC);
  assert.equal(await stopped, 'later');
  assert.equal(stops.count, 1);
  screen.unmount();
});
