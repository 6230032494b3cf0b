/**
 * Long lines on the Linux console: Ink's own truncation ends in "…" (U+2026),
 * which the console font may not have, so under the console glyph set the
 * wizard cuts lines itself and ends them with "...".
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup } from 'ink-testing-library';
import { Text } from 'ink';
import { StepScreen } from '../../screens/StepScreen.tsx';
import { Truncated, WidthContext } from '../../screens/components/Truncated.tsx';
import { WizardStore } from '../../screens/state/wizard-store.ts';
import { columns, truncateMiddle } from '../../screens/truncate.ts';
import type { StepInfo } from '../../src/engine/events.ts';
import { fakeNode, renderScreen } from './helpers.tsx';

afterEach(() => cleanup());

const CONSOLE_ENV = { TERM: 'linux', LANG: 'en_US.UTF-8', NO_COLOR: '1' };
const UNICODE_ENV = { TERM: 'xterm-256color', LANG: 'C.UTF-8', NO_COLOR: '1' };

const LONG: StepInfo = {
  id: 'long',
  title: 'A step whose title is far too long to fit on one line of a narrow terminal, however it is drawn',
  summary: 'A summary that goes on and on about what the step changes and why, well past the width the screen has to give it.',
  risk: 'lockout',
  scope: 'node',
  journaled: 'pending',
};

function stepScreen(width: number, env: NodeJS.ProcessEnv) {
  const store = new WizardStore();
  store.onEvent({ type: 'run-started', steps: [LONG] });
  store.onEvent({ type: 'step-started', stepId: 'long', index: 0 });
  return renderScreen(
    <WidthContext.Provider value={width}>
      <StepScreen state={store.getState()} node={fakeNode()} rows={24} />
    </WidthContext.Provider>,
    env,
  );
}

test('under TERM=linux the StepScreen header is cut with "...", never "…"', () => {
  const screen = stepScreen(60, CONSOLE_ENV);
  const frame = screen.frame();
  assert.ok(!frame.includes('\u2026'), `U+2026 in:\n${frame}`);
  const [header, summary] = frame.split('\n');
  // The title is cut and the risk badge after it stays.
  assert.equal(header, 'Step 1 of 1 · A step whose title is far to... [LOCKOUT RISK]');
  assert.ok(summary!.endsWith('...'), summary);
  assert.ok(summary!.startsWith('A summary that goes on'), summary);
  for (const line of [header!, summary!]) assert.ok(columns(line) <= 60, `wider than 60: ${line}`);
});

test('on a normal terminal Ink still cuts with "…"', () => {
  const screen = stepScreen(60, UNICODE_ENV);
  const [header, summary] = screen.frame().split('\n');
  assert.match(header!, /^Step 1 of 1 · A step whose title .*… \[LOCKOUT RISK\]$/);
  assert.match(summary!, /…$/);
});

test('Truncated keeps the styles of nested text and cuts where the width ends', () => {
  const screen = renderScreen(
    <WidthContext.Provider value={20}>
      <Truncated>
        <Text bold>bold part</Text> then plain text that is long
      </Truncated>
      <Truncated>short</Truncated>
      <Truncated width={8}>0123456789</Truncated>
      <Truncated position="middle" width={15}>
        SHA256:DlM0hhv8M3uVEjCSAVtKSzPLYkAZAy
      </Truncated>
    </WidthContext.Provider>,
    CONSOLE_ENV,
  );
  assert.deepEqual(screen.frame().split('\n'), ['bold part then pl...', 'short', '01234...', 'SHA256...YkAZAy']);
});

test('truncateMiddle keeps the start and the end', () => {
  assert.equal(truncateMiddle('0123456789', 10, '...'), '0123456789');
  assert.equal(truncateMiddle('0123456789', 9, '...'), '012...789');
  assert.equal(truncateMiddle('0123456789', 2, '...'), '..');
  assert.equal(columns('漢字ab'), 6);
});
