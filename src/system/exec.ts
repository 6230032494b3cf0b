/**
 * Running programs: always an argv array through execa, never a shell string,
 * so nothing an operator types can be read as shell syntax. Output is streamed
 * line by line to whoever is watching (the progress tail) and also returned.
 *
 * Every command has a time limit, so a hung pmxcfs (/etc/pve) or a dpkg lock
 * cannot hang the wizard: at the limit the command's whole process group is
 * stopped and the result says "timed out after N s: ARGV".
 */
import { closeSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { execa } from 'execa';
import type { Secret } from './secret.ts';

export interface ExecOptions {
  /** Standard input; a Secret is revealed only here, on its way into the pipe. */
  input?: string | Secret;
  env?: Record<string, string>;
  /** Called with each line of stdout and stderr as it arrives. */
  onLine?: (line: string) => void;
  /**
   * A fourth descriptor (fd 3) for a program's machine-readable status, as
   * apt writes it with `-o APT::Status-Fd=3`: its chunks as they arrive,
   * apart from the output meant for people.
   */
  onStatus?: (chunk: string) => void;
  /** The time limit; defaultTimeoutMs(argv) unless given. */
  timeoutMs?: number;
  cwd?: string;
  /** Run it so that it finishes even if pve-baseline does not (see Detached); takes no input. */
  detach?: Detached;
}

/**
 * A command that must not die with pve-baseline (apt and dpkg half-way
 * through an upgrade when the SSH session drops): its output goes to files,
 * not pipes (a pipe whose reader is gone kills the writer with SIGPIPE), it
 * is never signalled when pve-baseline exits, and it has no terminal to hang
 * up. The files are followed as they grow, so onLine and onStatus see what
 * they would see through pipes.
 */
export interface Detached {
  /** stdout and stderr are appended here (created 0600). */
  output: string;
  /** fd 3 is appended here when onStatus is given (created 0600). */
  status?: string;
  /** The process id, as soon as it runs: where to find it if this process ends first. */
  onStart?: (pid: number) => void;
}

export interface ExecResult {
  argv: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started at all (e.g. not installed). */
  notFound?: boolean;
  /** Set when the program was stopped at its time limit (exit code 124, as timeout(1) gives). */
  timedOut?: { afterMs: number };
}

export interface Exec {
  run(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
}

/** Environment every command gets: no pagers, no questions, C messages we can parse. */
const QUIET_ENV = {
  DEBIAN_FRONTEND: 'noninteractive',
  APT_LISTCHANGES_FRONTEND: 'none',
  SYSTEMD_PAGER: '',
  PAGER: 'cat',
  LC_ALL: 'C.UTF-8',
};

/** The limit for a command that names none: far above what a healthy node needs. */
export const DEFAULT_TIMEOUT_MS = 120_000;
/** Package installs download and unpack: they get longer by default. */
const SLOW_PROGRAMS: Record<string, number> = { 'apt-get': 1_800_000, apt: 1_800_000, dpkg: 1_800_000 };
/** After SIGTERM to the group, this long before SIGKILL. */
const KILL_GRACE_MS = 3_000;
/** After SIGKILL, this long before giving up on the process (stuck in the kernel) and returning anyway. */
const GIVE_UP_MS = 2_000;
/** The exit code of a command stopped at its limit, as timeout(1) reports it. */
export const TIMED_OUT_EXIT_CODE = 124;

export function defaultTimeoutMs(argv: readonly string[]): number {
  const program = (argv[0] ?? '').split('/').pop() ?? '';
  return SLOW_PROGRAMS[program] ?? DEFAULT_TIMEOUT_MS;
}

/** "timed out after 120 s: pveum user list" (what the operator reads). */
export function timedOutMessage(argv: readonly string[], afterMs: number): string {
  return `timed out after ${afterMs / 1000} s: ${argv.join(' ')}`;
}

/**
 * Process groups of the commands running now. Each command leads a group of
 * its own (so the limit stops whatever it started, too); if pve-baseline
 * exits while one runs, the group gets SIGTERM, as it would have from the
 * terminal.
 */
const runningGroups = new Set<number>();
let exitHookInstalled = false;

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already.
  }
}

function trackGroup(pid: number): void {
  runningGroups.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const group of runningGroups) signalGroup(group, 'SIGTERM');
  });
}

/** Splits a stream's chunks into lines for onLine; `end` gives the last, unfinished one. */
function lineSplitter(onLine: (line: string) => void): { write: (chunk: string) => void; end: () => void } {
  let pending = '';
  return {
    write: (chunk) => {
      pending += chunk;
      const lines = pending.split(/\r?\n|\r/);
      pending = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    },
    end: () => {
      if (pending) onLine(pending);
      pending = '';
    },
  };
}

/** How often a detached command's files are read for what it wrote. */
const FOLLOW_EVERY_MS = 100;

/**
 * Reads what is appended to a file from its current end on, every
 * FOLLOW_EVERY_MS; `stop` reads the rest and gives everything read.
 */
async function followFile(file: string, onChunk: (text: string) => void): Promise<{ stop: () => Promise<string> }> {
  const handle = await open(file, 'r');
  let offset = (await handle.stat()).size;
  const decoder = new StringDecoder('utf8');
  const seen: string[] = [];
  const buffer = Buffer.alloc(64 * 1024);
  let reading: Promise<void> = Promise.resolve();
  const readMore = async () => {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
      if (bytesRead === 0) return;
      offset += bytesRead;
      const text = decoder.write(buffer.subarray(0, bytesRead));
      seen.push(text);
      onChunk(text);
    }
  };
  const timer = setInterval(() => {
    reading = reading.then(readMore).catch(() => undefined);
  }, FOLLOW_EVERY_MS);
  return {
    stop: async () => {
      clearInterval(timer);
      await reading;
      await readMore().catch(() => undefined);
      const rest = decoder.end();
      if (rest) {
        seen.push(rest);
        onChunk(rest);
      }
      await handle.close();
      return seen.join('');
    },
  };
}

/** The limits' timings; tests shorten them. */
export interface ExecLimits {
  /** The limit of a command that names none (instead of defaultTimeoutMs(argv)). */
  defaultMs?: number;
  killGraceMs?: number;
  giveUpMs?: number;
}

export class LocalExec implements Exec {
  readonly #limits: ExecLimits;

  constructor(limits: ExecLimits = {}) {
    this.#limits = limits;
  }

  async run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const [file, ...args] = argv;
    if (!file) throw new Error('exec: empty argv');
    const limitMs = options.timeoutMs ?? this.#limits.defaultMs ?? defaultTimeoutMs(argv);
    const killGraceMs = this.#limits.killGraceMs ?? KILL_GRACE_MS;
    const giveUpMs = this.#limits.giveUpMs ?? GIVE_UP_MS;
    if (!(limitMs > 0) || !Number.isFinite(limitMs)) throw new Error(`exec: timeoutMs must be a positive number of milliseconds, not ${limitMs}`);
    const input = options.input === undefined ? undefined : typeof options.input === 'string' ? options.input : options.input.reveal();
    const detach = options.detach;
    if (detach && input !== undefined) throw new Error('exec: a detached command takes no input (its output goes to a file, unscrubbed)');
    // A detached command writes into files opened here (O_APPEND: the follower and others may append too).
    const fds: number[] = [];
    const fileFd = (file: string) => {
      const fd = openSync(file, 'a', 0o600);
      fds.push(fd);
      return fd;
    };
    const outputFd = detach ? fileFd(detach.output) : undefined;
    const statusFd = detach && options.onStatus ? fileFd(detach.status ?? `${detach.output}.status`) : undefined;
    // A detached command's output reaches onLine from its file; the others' from their pipes (below).
    const outputLines = detach ? lineSplitter(options.onLine ?? (() => undefined)) : undefined;
    const followers = detach
      ? await Promise.all([
          followFile(detach.output, outputLines!.write),
          ...(statusFd !== undefined && options.onStatus ? [followFile(detach.status ?? `${detach.output}.status`, options.onStatus)] : []),
        ])
      : [];
    const child = execa(file, args, {
      reject: false,
      shell: false,
      stripFinalNewline: false,
      // A process group of its own (and no controlling terminal: nothing can
      // prompt on the wizard's screen), so the limit can stop all of it.
      detached: true,
      env: { ...QUIET_ENV, ...options.env },
      ...(input === undefined ? {} : { input }),
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(outputFd !== undefined
        ? // Descriptors given to the child as they are (execa accepts them; its types only list 3 to 9).
          { stdio: (statusFd !== undefined ? ['ignore', outputFd, outputFd, statusFd] : ['ignore', outputFd, outputFd]) as unknown as ['ignore', 'pipe', 'pipe'] }
        : // fd 3 only when asked for, read as it comes and never buffered into the result.
          options.onStatus
          ? { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', 'pipe'] as const, buffer: { fd3: false } }
          : input === undefined
            ? { stdin: 'ignore' as const }
            : {}),
    });
    for (const fd of fds) closeSync(fd);
    if (!detach && options.onStatus) {
      const onStatus = options.onStatus;
      const decoder = new StringDecoder('utf8');
      const status = child.stdio[3] as NodeJS.ReadableStream | undefined;
      status?.on('data', (chunk: Buffer) => onStatus(decoder.write(chunk)));
      status?.on('end', () => {
        const rest = decoder.end();
        if (rest) onStatus(rest);
      });
    }
    const pid = child.pid;
    // A detached command is left running when pve-baseline exits; the others get SIGTERM with it.
    if (pid !== undefined && !detach) trackGroup(pid);
    if (pid !== undefined) detach?.onStart?.(pid);
    if (!detach && options.onLine) {
      const onLine = options.onLine;
      for (const stream of [child.stdout, child.stderr]) {
        const lines = lineSplitter(onLine);
        const decoder = new StringDecoder('utf8');
        stream?.on('data', (chunk: Buffer) => lines.write(decoder.write(chunk)));
        stream?.on('end', () => {
          lines.write(decoder.end());
          lines.end();
        });
      }
    }

    let timedOut = false;
    const timers: NodeJS.Timeout[] = [];
    let giveUp: () => void = () => undefined;
    const givenUp = new Promise<null>((resolve) => (giveUp = () => resolve(null)));
    timers.push(
      setTimeout(() => {
        timedOut = true;
        if (pid === undefined) return;
        signalGroup(pid, 'SIGTERM');
        timers.push(
          setTimeout(() => {
            signalGroup(pid, 'SIGKILL');
            timers.push(setTimeout(giveUp, giveUpMs));
          }, killGraceMs),
        );
      }, limitMs),
    );
    let result: Awaited<typeof child> | null;
    try {
      result = await Promise.race([child, givenUp]);
    } finally {
      for (const timer of timers) clearTimeout(timer);
      if (pid !== undefined) runningGroups.delete(pid);
    }
    // A detached command's output is what its file gained while it ran.
    const [followed] = await Promise.all(followers.map((f) => f.stop()));
    outputLines?.end();

    const notFound = (result as { code?: string } | null)?.code === 'ENOENT';
    const stdout = detach ? (followed ?? '') : String(result?.stdout ?? '');
    // execa gives '' (not undefined) for a program that could not be started.
    const stderr = String(result?.stderr ?? '') || (notFound ? `${file}: command not found` : '');
    if (timedOut) {
      const message = timedOutMessage(argv, limitMs);
      return {
        argv: [...argv],
        exitCode: TIMED_OUT_EXIT_CODE,
        stdout,
        stderr: stderr && !stderr.endsWith('\n') ? `${stderr}\n${message}` : `${stderr}${message}`,
        timedOut: { afterMs: limitMs },
      };
    }
    return {
      argv: [...argv],
      exitCode: result?.exitCode ?? (notFound ? 127 : 1),
      stdout,
      stderr,
      ...(notFound ? { notFound } : {}),
    };
  }
}

/** A failed command, with what it printed: the operator needs the reason, not a stack. */
export class CommandError extends Error {
  constructor(readonly result: ExecResult) {
    if (result.timedOut) {
      // The last stderr line is the timeout itself; what came before it may say why.
      const message = timedOutMessage(result.argv, result.timedOut.afterMs);
      const before = (result.stderr.endsWith(message) ? result.stderr.slice(0, -message.length) : result.stderr).trim() || result.stdout.trim();
      super(`${message}${before ? `\n${before.split('\n').slice(-5).join('\n')}` : ''}`);
      this.name = 'CommandError';
      return;
    }
    const output = (result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n');
    super(`${result.argv.join(' ')} exited with ${result.exitCode}${output ? `: ${output}` : ''}`);
    this.name = 'CommandError';
  }
}

/** Run and throw a CommandError unless it exits 0. */
export async function runChecked(exec: Exec, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
  const result = await exec.run(argv, options);
  if (result.exitCode !== 0) throw new CommandError(result);
  return result;
}
