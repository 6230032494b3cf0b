import { Box, Text } from 'ink';
import type { NodeInfo } from '../src/system/detect.ts';
import { RISK_EXPLAINED } from '../src/engine/step.ts';
import type { WizardState } from './state/wizard-reducer.ts';
import { AccessCountdown } from './components/AccessCountdown.tsx';
import { DetailsPrompt } from './components/DetailsPrompt.tsx';
import { QuestionPrompt } from './components/QuestionPrompt.tsx';
import { StepSkip } from '../src/engine/events.ts';
import { ReviewPrompt } from './components/ReviewPrompt.tsx';
import { RevealPrompt } from './components/RevealPrompt.tsx';
import { RiskBadge, riskBadgeText } from './components/RiskBadge.tsx';
import { StepProgress } from './components/StepProgress.tsx';
import { RebootPrompt } from './components/RebootPrompt.tsx';
import { Truncated, useWidth } from './components/Truncated.tsx';
import { useTheme } from './theme.ts';

const PREVIOUSLY: Record<string, string> = {
  applying: 'This step was interrupted while applying; the node was re-read and the plan shows what is left.',
  applied: 'This step was applied but not yet verified when the last run ended.',
  failed: 'This step failed last time and was rolled back.',
  reverted: 'This step was reverted since it was last applied.',
};

export interface StepScreenProps {
  state: WizardState;
  node: NodeInfo;
  rows: number;
}

/**
 * The live region while a step runs: its header, then exactly one of the
 * question, the plan review, the access countdown, or progress.
 *
 * ```
 *  Step 1 of 4 · Kernel and network sysctl settings  [safe]
 *  Hardens kernel and network defaults that Proxmox does not need open.
 *
 *  Plan: 1 to create, 1 command to run.
 *  ...
 * ```
 */
export function StepScreen({ state, node, rows }: StepScreenProps) {
  const theme = useTheme();
  const width = useWidth();
  const index = state.steps.findIndex((s) => s.id === state.activeStepId);
  const step = state.steps[index];
  if (!step) return null;
  const pending = state.pending;
  const note = state.previously ? PREVIOUSLY[state.previously] : undefined;
  // Header (2) + note + stop banner + a spare row keep the live region under the terminal height.
  const bodyHeight = rows - 4 - (note ? 1 : 0) - (state.stopRequested ? 1 : 0);
  return (
    <Box flexDirection="column">
      {/* A long title is cut, never the risk badge after it. */}
      <Box>
        <Truncated width={width - riskBadgeText(step.risk).length - 1}>
          <Text color={theme.color('muted')}>
            Step {index + 1} of {state.steps.length} ·{' '}
          </Text>
          <Text bold>{step.title}</Text>
        </Truncated>
        <Box flexShrink={0} marginLeft={1}>
          <RiskBadge risk={step.risk} />
        </Box>
      </Box>
      <Truncated color={theme.color('muted')}>
        {step.summary} {step.risk !== 'safe' ? `(${RISK_EXPLAINED[step.risk]})` : ''}
      </Truncated>
      {note ? (
        <Truncated color={theme.color('warn')}>
          {theme.glyphs.info} {note}
        </Truncated>
      ) : null}
      {state.stopRequested ? (
        <Truncated color={theme.color('warn')} bold>
          Stopping after this step. Press Ctrl+C again to quit at once (the journal stays consistent).
        </Truncated>
      ) : null}
      <Box marginTop={1} flexDirection="column">
        {pending?.kind === 'answer' ? (
          <QuestionPrompt request={pending.request} height={bodyHeight - 1} onAnswer={pending.resolve} onSkip={() => pending.reject(new StepSkip())} />
        ) : pending?.kind === 'details' ? (
          <DetailsPrompt details={pending.details} onDecision={pending.resolve} />
        ) : pending?.kind === 'review' ? (
          <ReviewPrompt plan={pending.plan} hostname={node.hostname} height={bodyHeight - 1} onDecision={pending.resolve} />
        ) : pending?.kind === 'reveal' ? (
          <RevealPrompt request={pending.request} onDone={pending.resolve} />
        ) : pending?.kind === 'reboot' ? (
          <RebootPrompt request={pending.request} onDecision={pending.resolve} />
        ) : pending?.kind === 'access' ? (
          <AccessCountdown request={pending.request} onDecision={pending.resolve} />
        ) : state.activity ? (
          <StepProgress activity={state.activity} tail={state.tail} tailLines={Math.min(6, Math.max(0, bodyHeight - 3))} {...(state.progress ? { progress: state.progress } : {})} {...(state.guard ? { guardPhase: state.guard.phase } : {})} />
        ) : null}
      </Box>
    </Box>
  );
}
