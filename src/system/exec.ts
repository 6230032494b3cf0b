/**
 * Running programs: always an argv array through execa, never a shell string,
 * so nothing an operator types can be read as shell syntax. Output is streamed
 * line by line to whoever is watching (the progress tail) and also returned.
 */
import { execa } from 'execa';
import type { Secret } from '../engine/secret.ts';

export interface ExecOptions {
  /** Standard input; a Secret is revealed only here, on its way into the pipe. */
  input?: string | Secret;
  env?: Record<string, string>;
  /** Called with each line of stdout and stderr as it arrives. */
  onLine?: (line: string) => void;
  timeoutMs?: number;
  cwd?: string;
}

export interface ExecResult {
  argv: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started at all (e.g. not installed). */
  notFound?: boolean;
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

export class LocalExec implements Exec {
  async run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const [file, ...args] = argv;
    if (!file) throw new Error('exec: empty argv');
    const input = options.input === undefined ? undefined : typeof options.input === 'string' ? options.input : options.input.reveal();
    const child = execa(file, args, {
      reject: false,
      shell: false,
      stripFinalNewline: false,
      env: { ...QUIET_ENV, ...options.env },
      ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
      ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    if (options.onLine) {
      const onLine = options.onLine;
      for (const stream of [child.stdout, child.stderr]) {
        let pending = '';
        stream?.on('data', (chunk: Buffer) => {
          pending += chunk.toString('utf8');
          const lines = pending.split(/\r?\n|\r/);
          pending = lines.pop() ?? '';
          for (const line of lines) onLine(line);
        });
        stream?.on('end', () => {
          if (pending) onLine(pending);
        });
      }
    }
    const result = await child;
    const notFound = (result as { code?: string }).code === 'ENOENT';
    return {
      argv: [...argv],
      exitCode: result.exitCode ?? (notFound ? 127 : 1),
      stdout: String(result.stdout ?? ''),
      // execa gives '' (not undefined) for a program that could not be started.
      stderr: String(result.stderr ?? '') || (notFound ? `${file}: command not found` : ''),
      ...(notFound ? { notFound } : {}),
    };
  }
}

/** A failed command, with what it printed: the operator needs the reason, not a stack. */
export class CommandError extends Error {
  constructor(readonly result: ExecResult) {
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
