/**
 * A command an earlier run left running (CommandChange.survivesExit: an
 * upgrade whose SSH session dropped). The next run finds it by the journal's
 * record, waits for it while it still runs, following its log, and then says
 * how it ended; the step is probed afterwards, on what the command left.
 */
import { formatArgv } from './change.ts';
import type { RunningCommand } from './journal.ts';
import type { Files } from '../system/files.ts';

/** How often a running command is looked at while the next run waits for it. */
export const WAIT_EVERY_MS = 500;

/** "apt-get ... dist-upgrade (pid 4321, started 2026-12-03T14:02:11Z)" */
export function describeRunning(running: RunningCommand): string {
  return `${formatArgv(running.argv)} (pid ${running.pid}, started ${running.startedAt})`;
}

/** True while that very process still runs: same boot, and its pid still runs the same argv. */
export async function stillRunning(running: RunningCommand, files: Pick<Files, 'read'>, bootId: string): Promise<boolean> {
  if (running.bootId !== bootId) return false;
  const cmdline = await files.read(`/proc/${running.pid}/cmdline`).catch(() => null);
  return cmdline !== null && cmdline.replace(/\0$/, '') === running.argv.join('\0');
}

/**
 * Waits until the command ends, passing on each line its log gains (it is
 * read whole each time: a log of one upgrade, written while the operator
 * watches, stays small enough for that).
 */
export async function waitForEnd(
  running: RunningCommand,
  env: { files: Pick<Files, 'read'>; bootId: string; onLine: (line: string) => void; sleep?: (ms: number) => Promise<void> },
): Promise<void> {
  const sleep = env.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let shown = ((await env.files.read(running.log)) ?? '').lastIndexOf('\n') + 1;
  const showNew = async (all: boolean) => {
    const text = (await env.files.read(running.log)) ?? '';
    const end = all ? text.length : text.lastIndexOf('\n') + 1;
    if (end <= shown) return;
    for (const line of text.slice(shown, end).split('\n')) if (line) env.onLine(line);
    shown = end;
  };
  while (await stillRunning(running, env.files, env.bootId)) {
    await showNew(false);
    await sleep(WAIT_EVERY_MS);
  }
  await showNew(true);
}

/**
 * What the run says about it, as far as it knows: whether it waited for the
 * end itself, and whether the node rebooted meanwhile (which may have cut
 * the command off). Its exit code is not known: nobody was there to see it.
 */
export async function howItEnded(running: RunningCommand, files: Pick<Files, 'read'>, seen: { bootId: string; waited: boolean }): Promise<string> {
  const lines = ((await files.read(running.log)) ?? '').trimEnd().split('\n');
  const last = lines.at(-1) ?? '';
  const lastLine = last && !last.startsWith('$ ') ? ` (its last line: "${last}")` : '';
  const end =
    running.bootId !== seen.bootId
      ? 'the node has rebooted since, which may have cut it off'
      : seen.waited
        ? 'it ran on without it, and this run waited for its end'
        : 'it has ended since';
  return `an earlier pve-baseline ended while ${describeRunning(running)} ran; ${end}${lastLine}; its whole output is in ${running.log}`;
}
