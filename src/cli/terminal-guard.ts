/**
 * While the wizard owns the terminal, Ink redraws its frame in place by moving
 * the cursor back up over the lines it drew last time. Any other text on the
 * terminal (a Node warning, a library writing to stderr or to the console)
 * moves the frame down, and from then on every frame lands below the previous
 * one. The guard sends all such text to a log file instead, and gives
 * everything back when the wizard hands the terminal back.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { Console } from 'node:console';
import { Writable } from 'node:stream';

export interface TerminalGuardOptions {
  /** Receives each diverted piece of text (one warning, one write, one console call). */
  log: (source: 'warning' | 'stderr' | 'console', text: string) => void;
  /** What is guarded; the real process, its stderr and the global console unless a test says otherwise. */
  process?: NodeJS.Process;
  stderr?: NodeJS.WriteStream;
  console?: Console;
}

/** Undoes the guard (idempotent) and says how many pieces of text it diverted. */
export type ReleaseTerminal = () => number;

/** Methods of the global console that print something. */
const CONSOLE_METHODS = [
  'log', 'info', 'debug', 'warn', 'error', 'trace', 'dir', 'dirxml', 'table',
  'group', 'groupCollapsed', 'assert', 'count', 'timeEnd', 'timeLog',
] as const;

export function guardTerminal(options: TerminalGuardOptions): ReleaseTerminal {
  const proc = options.process ?? process;
  const stderr = options.stderr ?? proc.stderr;
  const target = (options.console ?? globalThis.console) as unknown as Record<string, unknown>;
  let diverted = 0;
  const divert = (source: 'warning' | 'stderr' | 'console', text: string) => {
    diverted++;
    try {
      options.log(source, text);
    } catch {
      // A log that cannot be written loses the text; the terminal still never gets it.
    }
  };

  // Node prints a warning from its own 'warning' listener (through
  // process.stderr). Taking that listener off is what stops the printing
  // (--no-warnings does the same); the warning itself is still emitted.
  const warningListeners = proc.listeners('warning') as ((warning: Error) => void)[];
  for (const listener of warningListeners) proc.removeListener('warning', listener);
  const onWarning = (warning: Error) => {
    const code = (warning as { code?: string }).code;
    const detail = (warning as { detail?: unknown }).detail;
    divert('warning', `${code ? `[${code}] ` : ''}${warning.name}: ${warning.message}${typeof detail === 'string' ? `\n${detail}` : ''}`);
  };
  proc.on('warning', onWarning);

  // Anything written to stderr, by a library or by console.error.
  const ownWrite = Object.getOwnPropertyDescriptor(stderr, 'write');
  const divertedWrite = (chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) || chunk instanceof Uint8Array ? Buffer.from(chunk).toString('utf8') : String(chunk);
    divert('stderr', text);
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') process.nextTick(done as () => void);
    return true;
  };
  Object.defineProperty(stderr, 'write', { value: divertedWrite, writable: true, configurable: true, enumerable: ownWrite?.enumerable ?? false });

  // console.log and friends write to stdout, which is Ink's: give them a console of their own.
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      divert('console', chunk.toString('utf8'));
      callback();
    },
  });
  const quiet = new Console({ stdout: sink, stderr: sink, colorMode: false }) as unknown as Record<string, unknown>;
  const consoleMethods = new Map<string, PropertyDescriptor | undefined>();
  for (const name of CONSOLE_METHODS) {
    const replacement = quiet[name];
    if (typeof replacement !== 'function') continue;
    consoleMethods.set(name, Object.getOwnPropertyDescriptor(target, name));
    Object.defineProperty(target, name, { value: replacement.bind(quiet), writable: true, configurable: true, enumerable: true });
  }

  let released = false;
  return () => {
    if (released) return diverted;
    released = true;
    for (const [name, descriptor] of consoleMethods) {
      if (descriptor) Object.defineProperty(target, name, descriptor);
      else delete target[name];
    }
    if (ownWrite) Object.defineProperty(stderr, 'write', ownWrite);
    else delete (stderr as { write?: unknown }).write;
    proc.removeListener('warning', onWarning);
    for (const listener of warningListeners) proc.on('warning', listener);
    return diverted;
  };
}

/**
 * A log sink for guardTerminal: appends timestamped entries to `file`,
 * created on the first entry with mode 0600, never through a symbolic link.
 * The file stays open until `close`.
 */
export function appendToLogFile(file: string, now: () => Date = () => new Date()): { log: TerminalGuardOptions['log']; close: () => void } {
  let fd: number | undefined;
  return {
    log(source, text) {
      fd ??= openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
      const body = text.endsWith('\n') ? text : `${text}\n`;
      writeSync(fd, `${now().toISOString()} ${source}: ${body}`);
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
