/**
 * Run a program in a real pseudo-terminal and script it: a typed wrapper
 * around pty-driver.py (python3's pty module; no native node addon).
 *
 *   const r = await runInPty({
 *     argv: [process.execPath, 'dist/pve-baseline.mjs'],
 *     env: ptyEnv({ PVE_BASELINE_STATE_DIR: dir }),
 *     script: [{ waitFor: 'Nothing changes' }, { send: 'q' }, { waitExit: true }],
 *   });
 *   r.ok, r.exitCode, r.waits[0].matchedMs, r.plain, r.screen
 *
 * The driver never hangs: every wait has a timeout (5 s unless given), and
 * on a timeout it kills the child's process group and says which step it was.
 * runInPty resolves with that report; it rejects only when the driver itself
 * fails (python3 missing, a bad script).
 */
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const PTY_DRIVER = fileURLToPath(new URL('./pty-driver.py', import.meta.url));

/** Keys as a terminal sends them (normal cursor mode). */
export const KEYS = {
  up: '\u001b[A',
  down: '\u001b[B',
  right: '\u001b[C',
  left: '\u001b[D',
  pageUp: '\u001b[5~',
  pageDown: '\u001b[6~',
  enter: '\r',
  escape: '\u001b',
  tab: '\t',
  backspace: '\u007f',
  ctrlC: '\u0003',
  ctrlD: '\u0004',
} as const;

interface StepBase {
  /** Shown in the result's steps (and in timedOut.step). */
  label?: string;
}

export type PtyStep =
  /** Text (or, with regex: true, a Python regex with re.S) in the ANSI-stripped output since the previous waitFor match. */
  | (StepBase & { waitFor: string; regex?: boolean; timeoutMs?: number })
  /** Type these characters (UTF-8); e.g. KEYS.down, KEYS.ctrlC. */
  | (StepBase & { send: string; timeoutMs?: number })
  /** A named point; `between` reports the bytes and time between consecutive marks. */
  | (StepBase & { mark: string })
  /** Wait, reading output meanwhile. */
  | (StepBase & { sleepMs: number })
  /** Signal the child (group: true for its whole process group). */
  | (StepBase & { signal: NodeJS.Signals; group?: boolean })
  /** Change the terminal size (the kernel sends SIGWINCH). */
  | (StepBase & { resize: { cols: number; rows: number } })
  /** Record the screen as it is now (result.snapshots). */
  | (StepBase & { snapshot: string })
  /** Write the screen as it is now to a file, for the test to read while the run goes on. */
  | (StepBase & { screenTo: string })
  /** Wait for a file (the test writes it, e.g. a code it computed from the screen), send its content, remove it. */
  | (StepBase & { sendFromFile: string; timeoutMs?: number })
  /** Close the terminal's master side, as a dropped SSH link does (the child gets SIGHUP). */
  | (StepBase & { closePty: true })
  /** Wait for the child to exit. */
  | (StepBase & { waitExit: true; timeoutMs?: number });

export interface PtyOptions {
  argv: readonly string[];
  /** The child's whole environment (nothing is inherited); see ptyEnv(). */
  env: Record<string, string | undefined>;
  cols?: number;
  rows?: number;
  script: readonly PtyStep[];
  /** Upper bound for the whole run (default 120 s). */
  maxMs?: number;
}

export interface PtyWait {
  index: number;
  pattern: string;
  label?: string;
  /** Milliseconds from spawn (monotonic clock) to the match. */
  matchedMs: number;
  match: string;
}

export interface PtyMark {
  name: string;
  ms: number;
  /** Bytes of output before this mark. */
  offset: number;
}

export interface PtyStepRecord {
  index: number;
  kind: 'waitFor' | 'send' | 'mark' | 'sleepMs' | 'signal' | 'resize' | 'snapshot' | 'closePty' | 'waitExit';
  label?: string;
  startMs: number;
  endMs: number;
  bytesBefore: number;
  bytesAfter: number;
  timedOut?: boolean;
  /** A send after the child had exited. */
  notSent?: string;
  matchedMs?: number;
  match?: string;
}

export interface PtyResult {
  argv: string[];
  cols: number;
  rows: number;
  pid: number | null;
  /** The script ran to its end, nothing timed out, and the child was not killed. */
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds from spawn to exit, when it exited. */
  exitMs: number | null;
  /** The script ended without waitExit and the child had to be killed. */
  killedAtEnd: boolean;
  /** The driver killed the child (timeout, error or killedAtEnd). */
  killed: boolean;
  timedOut: null | {
    index: number;
    kind: PtyStepRecord['kind'];
    step: PtyStep;
    reason: string;
    /** The last 2000 characters of plain output. */
    tail: string;
  };
  /** A driver-side error: the command could not be run, or the script was malformed. */
  error: string | null;
  waits: PtyWait[];
  marks: PtyMark[];
  between: { from: string; to: string; bytes: number; ms: number }[];
  steps: PtyStepRecord[];
  totalBytes: number;
  /** Peak resident set of the child in KiB (getrusage RUSAGE_CHILDREN after it exited). */
  peakRssKiB: number | null;
  /** Every read: [ms since spawn, offset, length]. */
  chunks: [number, number, number][];
  outputBase64: string;
  /** The output with escapes stripped (a line break where the cursor changed line). */
  plain: string;
  /** The final screen, as a terminal of cols x rows would show it (lines right-trimmed). */
  screen: string[];
  /** Lines that scrolled off the top. */
  scrollback: string[];
  /** How often the screen was wiped (ESC[2J / ESC[3J). */
  screenClears: number;
  snapshots: { name: string; ms: number; screen: string[] }[];
}

/** The raw bytes the program wrote. */
export function rawOutput(result: PtyResult): Buffer {
  return Buffer.from(result.outputBase64, 'base64');
}

/** Output bytes the program wrote between two times (ms since spawn). */
export function bytesBetween(result: PtyResult, fromMs: number, toMs = Number.POSITIVE_INFINITY): number {
  let total = 0;
  for (const [t, , len] of result.chunks) if (t >= fromMs && t <= toMs) total += len;
  return total;
}

/**
 * A clean terminal environment: PATH and HOME from this process, the given
 * TERM and LANG, and the extras; no CI (which makes Ink render nothing until
 * exit) and nothing else inherited.
 */
export function ptyEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: process.env.HOME ?? '/root',
    TERM: 'xterm-256color',
    LANG: 'C.UTF-8',
    ...extra,
  };
  delete env.CI;
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

export async function runInPty(options: PtyOptions): Promise<PtyResult> {
  const { argv, env, cols = 80, rows = 24, script, maxMs = 120_000 } = options;
  if (!argv.length) throw new Error('runInPty: argv is empty');
  const childEnv = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  const spec = { script, env: childEnv };
  const driver = await execa(
    'python3',
    [PTY_DRIVER, '--cols', String(cols), '--rows', String(rows), '--max-ms', String(maxMs), '--', ...argv],
    {
      input: JSON.stringify(spec),
      reject: false,
      stripFinalNewline: true,
      maxBuffer: 512 * 1024 * 1024,
      // The driver has its own limits; this only guards against the driver itself hanging.
      timeout: maxMs + 30_000,
      killSignal: 'SIGKILL',
    },
  );
  if (driver.exitCode !== 0 || !driver.stdout) {
    throw new Error(`pty-driver failed (${driver.exitCode ?? driver.signal}): ${driver.stderr || driver.stdout || driver.message}`);
  }
  try {
    return JSON.parse(driver.stdout) as PtyResult;
  } catch {
    throw new Error(`pty-driver printed no JSON: ${driver.stdout.slice(0, 500)}\n${driver.stderr}`);
  }
}

/** A one-paragraph description of a failed run, for assertion messages. */
export function describeFailure(result: PtyResult): string {
  const parts = [`${result.argv.join(' ')}: exit ${result.exitCode ?? result.signal ?? 'none'}`];
  if (result.error) parts.push(`error: ${result.error}`);
  if (result.timedOut) parts.push(`step ${result.timedOut.index} (${result.timedOut.kind}) timed out: ${result.timedOut.reason}`);
  if (result.killedAtEnd) parts.push('the script ended before the program did; it was killed');
  parts.push(`last output:\n${result.timedOut?.tail ?? result.plain.slice(-2000)}`);
  return parts.join('\n');
}
