/**
 * The shape of one bad-input case (test/cli/bad-input/cases.ts holds them,
 * test/cli/bad-input.test.ts runs them). Every string in argv, env, stdin,
 * symlink targets and text content may hold {case} (the case's own temporary
 * directory, also the working directory) and {state} (its state directory).
 */

/** Something put on disk before the run, relative to {case} unless absolute. */
export interface Plant {
  path: string;
  /** A regular file with this content (text is written as UTF-8). */
  content?: string | Uint8Array;
  /** A regular file of this many bytes, `fill` repeated (for huge files). */
  size?: { bytes: number; fill: string };
  symlink?: string;
  fifo?: true;
  dir?: true;
  /** Default 0644 for files, 0755 for directories (a symlink has none). */
  mode?: number;
  /** Who owns it: 'nobody' (uid 65534) plays the unprivileged local user who planted it. Default root. */
  owner?: 'root' | 'nobody';
  /** chattr +i: not even root may write it (removed again before cleanup). */
  immutable?: true;
}

export interface Expectation {
  /** The exit code, or the codes any of which is right. */
  exit: number | number[];
  /** What the message must say: it names the field or the file. */
  message: RegExp;
  /** Where the message is: stderr (default), stdout, or either (JSON modes). */
  stream?: 'stderr' | 'stdout' | 'any';
  /** Standard output must be one JSON document. */
  json?: true;
  /** Standard output must be empty (a refused JSON mode prints no JSON). */
  stdoutEmpty?: true;
  /** Must appear nowhere in the output (echoed secrets, file contents). */
  forbid?: RegExp[];
  /** Paths (relative to {case}) that must not exist afterwards. */
  absent?: string[];
}

export interface BadInputCase {
  name: string;
  group: 'answers' | 'answers-path' | 'keys-path' | 'arguments' | 'environment' | 'output' | 'journal' | 'revert-index' | 'docs';
  argv: string[];
  /** Added to the base environment (PATH, HOME, LANG, PVE_BASELINE_STATE_DIR={state}); null removes a variable. */
  env?: Record<string, string | null>;
  plant?: Plant[];
  stdin?: string;
  /** Standard output goes to /dev/full (a full disk) instead of a pipe. */
  stdoutToFull?: true;
  /** Run inside a pseudo-terminal (script(1)), as the wizard wants. */
  tty?: true;
  /** Killed after this long (default 20 s): a case that needs it has hung. */
  timeoutMs?: number;
  expect: Expectation;
}
