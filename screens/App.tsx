import { useSyncExternalStore } from 'react';
import { Box, Static, useInput } from 'ink';
import type { NodeInfo } from '../src/system/detect.ts';
import type { WizardStore } from './state/wizard-store.ts';
import type { FinishedEntry } from './state/wizard-reducer.ts';
import { Banner } from './components/Banner.tsx';
import { WidthContext } from './components/Truncated.tsx';
import { FinishedStep } from './components/FinishedStep.tsx';
import { useTerminalSize } from './hooks/use-terminal-size.ts';
import { StepScreen } from './StepScreen.tsx';
import { Summary } from './Summary.tsx';
import { Welcome } from './Welcome.tsx';

export interface AppProps {
  store: WizardStore;
  node: NodeInfo;
  version: string;
  notes: string[];
  journalPath: string;
  backupsPath: string;
  /** Ctrl+C: the wizard decides whether that stops now or at the step boundary. */
  onInterrupt: () => void;
}

type StaticItem = { kind: 'banner' } | { kind: 'step'; entry: FinishedEntry };

/**
 * The wizard's root. What is finished goes into <Static> (written once, kept
 * in the scrollback); the live region below holds only the current screen,
 * sized to stay shorter than the terminal so Ink never clears the screen.
 */
export function App({ store, node, version, notes, journalPath, backupsPath, onInterrupt }: AppProps) {
  const state = useSyncExternalStore(store.subscribe, store.getState);
  const { columns, rows } = useTerminalSize();
  useInput((input, key) => {
    if (key.ctrl && input === 'c') onInterrupt();
  });
  const items: StaticItem[] = [{ kind: 'banner' }, ...state.finished.map((entry) => ({ kind: 'step' as const, entry }))];
  // Never draw in the last column: a full-width line leaves the cursor in the
  // terminal's deferred-wrap state and the next redraw lands one line off.
  const width = Math.min(columns, 100) - 1;
  const pending = state.pending;
  return (
    <WidthContext.Provider value={width}>
      <Box flexDirection="column" width={width}>
        <Static items={items}>
          {(item, i) =>
            item.kind === 'banner' ? (
              <Box key="banner" marginBottom={1}>
                <Banner version={version} node={node} width={width} />
              </Box>
            ) : (
              <FinishedStep key={`${item.entry.stepId}-${i}`} entry={item.entry} />
            )
          }
        </Static>
        {state.phase === 'welcome' && pending?.kind === 'start' ? (
          <Welcome state={state} node={node} notes={notes} rows={rows - 3} columns={width} onStart={pending.resolve} />
        ) : state.phase === 'running' ? (
          <StepScreen state={state} node={node} rows={rows - 1} />
        ) : state.phase === 'finished' && state.results ? (
          <Summary results={state.results} stopped={state.stopped} journalPath={journalPath} backupsPath={backupsPath} />
        ) : null}
      </Box>
    </WidthContext.Provider>
  );
}
