/**
 * The interactive front-end: mounts the Ink tree once, hands the runner a
 * WizardStore as its Operator, and turns the outcome into an exit code.
 */
import { render } from 'ink';
import { OperatorStop, type Operator, type RunnerEvent, type StepResult } from '../src/engine/events.ts';
import type { NodeInfo } from '../src/system/detect.ts';
import type { Runner } from '../src/engine/runner.ts';
import { App } from './App.tsx';
import { WizardStore } from './state/wizard-store.ts';
import { makeTheme, ThemeContext } from './theme.ts';

export interface WizardOptions {
  node: NodeInfo;
  version: string;
  /** Things to say on the welcome screen (a stale lock removed, ...). */
  notes: string[];
  journalPath: string;
  backupsPath: string;
  createRunner: (operator: Operator, onEvent: (event: RunnerEvent) => void) => Runner;
  stdin?: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
  /** Called for a second Ctrl+C while a step runs: leave now. */
  onForceQuit?: () => void;
  /** The process's exit codes for each outcome: the entry point owns the numbers. */
  exitCodes: { ok: number; failed: number; interrupted: number };
}

export interface WizardExit {
  exitCode: number;
  results: StepResult[];
}


export async function runWizard(options: WizardOptions): Promise<WizardExit> {
  const store = new WizardStore();
  const runner = options.createRunner(store, store.onEvent);
  const resumeAt = runner.resumePoint();
  store.onEvent({ type: 'run-started', steps: runner.stepInfos(), ...(resumeAt ? { resumeAt } : {}) });

  // Ask for the start before the first render, so the first frame is the
  // welcome screen itself and not a banner that a second frame completes.
  const started = store.waitForStart();

  let interrupted = false;
  const onInterrupt = () => {
    if (interrupted && runner.stopRequested) {
      options.onForceQuit?.();
      return;
    }
    interrupted = true;
    store.interrupt(() => runner.requestStop());
  };

  const instance = render(
    <ThemeContext.Provider value={makeTheme(options.env)}>
      <App
        store={store}
        node={options.node}
        version={options.version}
        notes={options.notes}
        journalPath={options.journalPath}
        backupsPath={options.backupsPath}
        onInterrupt={onInterrupt}
      />
    </ThemeContext.Provider>,
    {
      ...(options.stdin ? { stdin: options.stdin } : {}),
      ...(options.stdout ? { stdout: options.stdout } : {}),
      exitOnCtrlC: false,
      // Console output must not reach the screen at all (Ink's patch would print
      // it above the frame): the entry point sends it, with Node's warnings and
      // stray stderr, to a log while the wizard runs.
      patchConsole: false,
      incrementalRendering: process.env.PVE_BASELINE_INCREMENTAL !== '0',
      maxFps: 20,
    },
  );

  let results: StepResult[] = [];
  let exitCode = options.exitCodes.ok;
  try {
    const start = await started;
    if (!start) {
      exitCode = interrupted ? options.exitCodes.interrupted : options.exitCodes.ok;
      store.onEvent({ type: 'run-finished', results: [], stopped: true });
    } else {
      results = await runner.run();
      exitCode = interrupted ? options.exitCodes.interrupted : results.some((r) => r.outcome === 'failed') ? options.exitCodes.failed : options.exitCodes.ok;
    }
  } catch (error) {
    if (!(error instanceof OperatorStop)) {
      instance.unmount();
      throw error;
    }
    exitCode = options.exitCodes.interrupted;
    store.onEvent({ type: 'run-finished', results: store.getState().finished, stopped: true });
  }
  // Let the last frame (summary) reach the terminal before unmounting.
  await new Promise((resolve) => setTimeout(resolve, 60));
  instance.unmount();
  await instance.waitUntilExit().catch(() => undefined);
  return { exitCode, results };
}
