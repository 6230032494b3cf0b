#!/usr/bin/env node
/**
 * pve-baseline's entry: reads argv, checks the terminal and the user, and
 * hands over to the wizard (Ink) or to a plain-text command.
 */
import path from 'node:path';
import { EXIT, HELP, parseCommand, UsageError, type Command } from '../src/cli/args.ts';
import { applyCommand } from '../src/cli/commands/apply.ts';
import { checkCommand } from '../src/cli/commands/check.ts';
import { describePostboot, postbootCommand, readPostboot } from '../src/cli/commands/postboot.ts';
import { backupAfterApply, backupCommand } from '../src/cli/commands/backup.ts';
import { confirmCommand } from '../src/cli/commands/confirm.ts';
import { docsCommand } from '../src/cli/commands/docs.ts';
import { NOT_ROOT, printable, type Output } from '../src/cli/commands/io.ts';
import { tryLock } from '../src/cli/commands/lock.ts';
import { revertCommand } from '../src/cli/commands/revert.ts';
import { createRunner } from '../src/cli/commands/runner.ts';
import { statusCommand } from '../src/cli/commands/status.ts';
import { createRuntime, openJournal, type Runtime } from '../src/cli/runtime.ts';
import { appendToLogFile, guardTerminal } from '../src/cli/terminal-guard.ts';
import { version } from '../src/cli/version.ts';
import { explainFailure, watchStandardOutput } from '../src/cli/failure.ts';
import type { Runner } from '../src/engine/runner.ts';
import type { StepResult } from '../src/engine/events.ts';
import { CATALOGUE } from '../steps/index.ts';

const io: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export const NO_TTY = `pve-baseline: the wizard needs a terminal, and this session has none (standard input or output is not a TTY).
  Over SSH, ask for one:    ssh -t root@NODE pve-baseline
  Unattended:               pve-baseline apply --answers FILE [--yes] [--dry-run]
  Read-only audit:          pve-baseline check`;

async function main(argv: string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`pve-baseline: ${printable(error.message)}\nTry 'pve-baseline --help'.`);
    return EXIT.usage;
  }
  // The wizard owns the terminal and handles its loss itself.
  if (command.name !== 'wizard') outputFailed = watchStandardOutput(io.err);
  switch (command.name) {
    case 'help':
      process.stdout.write(HELP);
      return EXIT.ok;
    case 'version':
      io.out(`pve-baseline ${version()}`);
      return EXIT.ok;
    case 'apply':
      return applyCommand(await createRuntime(), CATALOGUE, command, io, version());
    case 'check':
      return checkCommand(await createRuntime(), CATALOGUE, command, io);
    case 'status':
      return statusCommand(await createRuntime(), CATALOGUE, command, io);
    case 'revert':
      return revertCommand(await createRuntime(), CATALOGUE, command, io);
    case 'docs':
      return docsCommand(await createRuntime(), CATALOGUE, command, io, version());
    case 'confirm':
      return confirmCommand(await createRuntime(), io, { steps: CATALOGUE });
    case 'postboot':
      return postbootCommand(await createRuntime(), io);
    case 'backup':
      return backupCommand(await createRuntime(), command, io);
    case 'wizard':
      return wizard();
  }
}

async function wizard(): Promise<number> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    io.err(NO_TTY);
    return EXIT.usage;
  }
  // Start loading the UI now: its layout engine compiles WebAssembly off the
  // main thread while the node is probed, which shortens the wait for the first frame.
  const ui = import('../screens/wizard.tsx');
  ui.catch(() => undefined);
  const runtime = await createRuntime();
  if (!runtime.node.isRoot) {
    io.err(`pve-baseline: ${NOT_ROOT}`);
    return EXIT.notRoot;
  }
  const held = tryLock(runtime, 'wizard');
  if (!held.ok) {
    io.err(`pve-baseline: ${held.message}`);
    return EXIT.locked;
  }
  try {
    const after = await readPostboot(runtime);
    const notes = [...(held.staleNote ? [held.staleNote] : []), ...(after ? [describePostboot(after)] : [])];
    return await runWizardOn(runtime, notes, held.release, ui);
  } finally {
    held.release();
  }
}

async function runWizardOn(runtime: Runtime, notes: string[], releaseLock: () => void, ui: Promise<typeof import('../screens/wizard.tsx')>): Promise<number> {
  const journal = openJournal(runtime);
  let runner: Runner | undefined;
  // Leaving on a signal: every journal write is already atomic and made as
  // each change happens, so the record is consistent; note why we stopped,
  // free the lock, and go.
  const leave = (reason: string) => {
    const step = runner?.currentStep;
    if (step && journal.status(step) === 'applying') journal.setStatus(step, 'applying', { note: `interrupted by ${reason}` });
    releaseLock();
  };
  // A dropped SSH link or a closed terminal: the terminal is gone, so nothing
  // may be written to it (restoring its mode would abort Node). Die by the
  // signal's default action, as a shell expects (exit status 128 + signal).
  const onSignal = (signal: NodeJS.Signals) => () => {
    leave(signal);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  };
  process.on('SIGHUP', onSignal('SIGHUP'));
  process.on('SIGTERM', onSignal('SIGTERM'));
  // The hang-up often shows first as the end of input (a raw-mode terminal
  // only ends when it hangs up) or as a write error, before the signal is
  // handled: treat them alike. Otherwise Node would find nothing left to wait
  // for, exit normally, and abort while restoring the vanished terminal.
  const onTerminalGone = onSignal('SIGHUP');
  process.stdin.on('end', onTerminalGone);
  process.stdin.on('error', onTerminalGone);
  process.stdout.on('error', onTerminalGone);
  const { runWizard } = await ui;
  // From the first frame to the last, nothing but Ink may write to the
  // terminal: a Node warning or a library's stray output would push the frame
  // down and every later frame would be drawn below the last one.
  const logFile = path.join(runtime.stateDir, 'wizard.log');
  let finished: StepResult[] = [];
  const log = appendToLogFile(logFile);
  const releaseTerminal = guardTerminal({ log: log.log });
  try {
    // Raw mode from here on, before the first frame: a key pressed before Ink
    // subscribes must neither be echoed nor have its Enter turned into a newline.
    process.stdin.setRawMode(true);
    const result = await runWizard({
      node: runtime.node,
      version: version(),
      exitCodes: { ok: EXIT.ok, failed: EXIT.failedOrDrift, interrupted: EXIT.interrupted },
      notes,
      journalPath: journal.path,
      backupsPath: runtime.backupsDir,
      createRunner: (operator, onEvent) =>
        (runner = createRunner(runtime, CATALOGUE, {
          journal,
          operator,
          onEvent: (event) => {
            if (event.type === 'run-finished') finished = event.results;
            onEvent(event);
          },
        })),
      // A second Ctrl+C: the terminal is fine, so exit normally and let Ink restore it.
      onForceQuit: () => {
        leave('a second Ctrl+C');
        process.exit(EXIT.interrupted);
      },
    });
    await backupAfterApply(runtime, finished).catch(() => undefined);
    return result.exitCode;
  } finally {
    const diverted = releaseTerminal();
    log.close();
    if (diverted) io.err(`pve-baseline: ${diverted} message${diverted === 1 ? '' : 's'} from Node or a library went to ${logFile} instead of the screen.`);
  }
}

let outputFailed = () => false;

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = outputFailed() ? EXIT.ioError : code;
  },
  (error: unknown) => {
    const known = explainFailure(error);
    if (known) {
      io.err(`pve-baseline: ${known.message}`);
      process.exitCode = known.exitCode;
      return;
    }
    io.err(`pve-baseline: unexpected error: ${(error as Error)?.stack ?? String(error)}`);
    process.exitCode = 70;
  },
);
