/**
 * Test helpers for Ink screens (after Shopify CLI's): render inside the theme,
 * wait for frames by polling (never by sleeping a guessed time), press keys.
 */
import type { ReactElement } from 'react';
import { render } from 'ink-testing-library';
import { makeTheme, ThemeContext } from '../../screens/theme.ts';
import type { NodeInfo } from '../../src/system/detect.ts';

export const KEY = {
  up: '\u001B[A',
  down: '\u001B[B',
  pageDown: '\u001B[6~',
  enter: '\r',
  escape: '\u001B',
  ctrlC: '\u0003',
  backspace: '\u007F',
} as const;

const ANSI = /\u001B\[[0-9;?]*[A-Za-z]/g;

export function plain(frame: string | undefined): string {
  return (frame ?? '').replace(ANSI, '');
}

/** Yield to React's scheduler and Ink's input handling: setImmediate, then a timer turn. */
export const tick = () => new Promise<void>((resolve) => setImmediate(() => setTimeout(resolve, 0)));

export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await tick();
  }
}

export function renderScreen(tree: ReactElement, env: NodeJS.ProcessEnv = { TERM: 'xterm-256color', LANG: 'C.UTF-8', NO_COLOR: '1' }) {
  const instance = render(<ThemeContext.Provider value={makeTheme(env)}>{tree}</ThemeContext.Provider>);
  const frame = () => plain(instance.lastFrame());
  return {
    ...instance,
    frame,
    /** Wait until the frame contains `text`. */
    async waitForText(text: string | RegExp): Promise<string> {
      await waitFor(() => (typeof text === 'string' ? frame().includes(text) : text.test(frame())), `"${String(text)}" in:\n${frame()}`);
      return frame();
    },
    /** Type keys one at a time, each followed by a scheduler turn so handlers see fresh state. */
    async press(...keys: string[]): Promise<void> {
      await tick();
      for (const key of keys) {
        instance.stdin.write(key);
        await tick();
        await tick();
      }
    },
  };
}

export function fakeNode(overrides: Partial<NodeInfo> = {}): NodeInfo {
  return {
    hostname: 'pve1',
    proxmox: { version: '9.1.2', major: 9, line: 'pve-manager/9.1.2/0123456789abcdef (running kernel: 6.14.8-2-pve)' },
    debian: { codename: 'trixie', version: '13' },
    addresses: [{ iface: 'vmbr0', address: '10.77.7.2', cidr: '10.77.7.2/24', family: 'IPv4' }],
    session: { kind: 'ssh', clientAddress: '10.77.7.1', clientPort: 50022, serverAddress: '10.77.7.2', serverPort: 22 },
    term: 'xterm-256color',
    isRoot: true,
    bootId: 'test-boot',
    rehearsal: false,
    ...overrides,
  };
}
