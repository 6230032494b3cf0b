/**
 * Failures the operator can act on end with a message and a documented exit
 * code, never a stack trace: a usage error, a file refused, a damaged
 * journal (2); a file or the output that could not be written (74).
 */
import { JournalCorruptError } from '../engine/journal.ts';
import { FileRefusedError } from '../system/files.ts';
import { EXIT, UsageError } from './args.ts';
import { printable } from './commands/io.ts';

export function explainFailure(error: unknown): { message: string; exitCode: number } | null {
  const known = knownFailure(error);
  return known && { ...known, message: printable(known.message) };
}

function knownFailure(error: unknown): { message: string; exitCode: number } | null {
  if (error instanceof UsageError || error instanceof FileRefusedError || error instanceof JournalCorruptError) {
    return { message: error.message, exitCode: EXIT.usage };
  }
  // A file the command had to write and could not (a full disk, an immutable or read-only state directory).
  const e = error as NodeJS.ErrnoException;
  if (e instanceof Error && typeof e.path === 'string' && e.code && FILE_ERRORS.has(e.code)) {
    return { message: `cannot ${e.syscall ? `${e.syscall} ` : 'use '}${e.path}: ${e.code}; the command stopped there.`, exitCode: EXIT.ioError };
  }
  return null;
}

const FILE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EPERM', 'EACCES', 'ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ELOOP', 'ENAMETOOLONG']);

/**
 * Standard output that fails (`check --json > /dev/full`, a closed pipe)
 * ends the command with 74, not 1, which `check` keeps for drift. The error
 * arrives as an event after the write; returns whether one came.
 */
export function watchStandardOutput(err: (line: string) => void): () => boolean {
  let failed = false;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    process.exitCode = EXIT.ioError;
    if (failed) return;
    failed = true;
    err(`pve-baseline: the output could not be written to standard output (${error.code ?? error.message}); it is incomplete.`);
  });
  // Nowhere is left to report a failing standard error to; the exit code says it.
  process.stderr.on('error', () => {
    process.exitCode = EXIT.ioError;
  });
  return () => failed;
}
