#!/usr/bin/env node
/**
 * pve-baseline's entry: reads argv, checks the terminal and the user, and
 * hands over to the wizard (Ink) or to a plain-text command.
 */
import { EXIT, HELP, parseCommand, UsageError, type Command } from '../src/cli/args.ts';
import { applyCommand, checkCommand, confirmCommand, docsCommand, NOT_ROOT, revertCommand, statusCommand, type Output } from '../src/cli/commands.ts';
import { createRuntime, lock, openJournal, backupStore, type Runtime } from '../src/cli/runtime.ts';
import { version } from '../src/cli/version.ts';
import { Runner } from '../src/engine/runner.ts';
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
    io.err(`pve-baseline: ${error.message}\nTry 'pve-baseline --help'.`);
    return EXIT.usage;
  }
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
      return docsCommand(await createRuntime(), command, io, version());
    case 'confirm':
      return confirmCommand(await createRuntime(), io);
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
  const held = lock(runtime, 'wizard');
  if (!held.ok) {
    io.err(`pve-baseline: ${held.message}`);
    return EXIT.locked;
  }
  try {
    return await runWizardOn(runtime, held.staleNote ? [held.staleNote] : [], held.release, ui);
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
  // Raw mode from here on, before the first frame: a key pressed before Ink
  // subscribes must neither be echoed nor have its Enter turned into a newline.
  process.stdin.setRawMode(true);
  const result = await runWizard({
    node: runtime.node,
    version: version(),
    notes,
    journalPath: journal.path,
    backupsPath: runtime.backupsDir,
    createRunner: (operator, onEvent) =>
      (runner = new Runner({
        steps: CATALOGUE,
        journal,
        ctx: { exec: runtime.exec, files: runtime.files, node: runtime.node },
        backups: backupStore(runtime),
        operator,
        onEvent,
      })),
    // A second Ctrl+C: the terminal is fine, so exit normally and let Ink restore it.
    onForceQuit: () => {
      leave('a second Ctrl+C');
      process.exit(EXIT.interrupted);
    },
  });
  return result.exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    io.err(`pve-baseline: unexpected error: ${(error as Error)?.stack ?? String(error)}`);
    process.exitCode = 70;
  },
);
