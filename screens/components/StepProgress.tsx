import { Box, Text } from 'ink';
import type { Activity, Progress } from '../state/wizard-reducer.ts';
import { GUARD_PHASE_TEXT } from '../../src/engine/events.ts';
import type { GuardPhase } from '../../src/engine/journal.ts';
import { Spinner } from './Spinner.tsx';
import { Truncated, useWidth } from './Truncated.tsx';
import { useTheme } from '../theme.ts';

const ACTIVITY: Record<Activity, string> = {
  probing: 'Reading the current state',
  asking: 'Waiting for an answer',
  reviewing: 'Waiting for your decision',
  applying: 'Applying',
  verifying: 'Verifying',
  confirming: 'Waiting for proof of access',
  finishing: 'Finishing the step',
};

export interface StepProgressProps {
  activity: Activity;
  progress?: Progress;
  /** Recent command output; only the last `tailLines` are shown. */
  tail: string[];
  tailLines: number;
  /** Where the lockout protocol stands, for a change that can cut access. */
  guardPhase?: GuardPhase;
}

/**
 * ```
 *  ⠹ Applying 2/3  sysctl --system
 *    │ * Applying /etc/sysctl.d/90-pve-baseline.conf ...
 *    │ kernel.kptr_restrict = 2
 * ```
 */
export function StepProgress({ activity, progress, tail, tailLines, guardPhase }: StepProgressProps) {
  const theme = useTheme();
  const width = useWidth();
  const shown = tailLines > 0 ? tail.slice(-tailLines) : [];
  return (
    <Box flexDirection="column">
      <Box>
        <Box flexShrink={0} marginRight={1}>
          {/* A command with a bar of its own: the bar shows the motion, and a serial console is spared the spinner's frames. */}
          {progress?.detail ? <Text color={theme.color('accent')}>{theme.glyphs.bullet}</Text> : <Spinner />}
        </Box>
        <Truncated width={width - 2}>
          {ACTIVITY[activity]}
          {progress && progress.total > 0 ? (
            <Text color={theme.color('muted')}>
              {' '}
              {Math.min(progress.done + (progress.current ? 1 : 0), progress.total)}/{progress.total}
            </Text>
          ) : null}
          {progress?.current ? <Text>  {progress.current}</Text> : null}
          {guardPhase ? <Text color={theme.color('muted')}>  (revert: {GUARD_PHASE_TEXT[guardPhase]})</Text> : null}
        </Truncated>
      </Box>
      {progress?.detail ? <ProgressBar percent={progress.detail.percent} label={progress.detail.label} width={width} /> : null}
      {shown.map((line, i) => (
        <Truncated key={i} color={theme.color('muted')}>
          {'  │ '}
          {line || ' '}
        </Truncated>
      ))}
    </Box>
  );
}

/** Cells of the bar: wide enough to see it move, short enough to leave the label room on 80 columns. */
const BAR_CELLS = 24;

/**
 * A long command's own progress, one line:
 * ```
 *  [████████████░░░░░░░░░░░░]  48%  Unpacking pve-manager (amd64)
 * ```
 * Redrawn only when the runner reports (a few times a second at most).
 */
export function ProgressBar({ percent, label, width }: { percent: number; label: string; width: number }) {
  const theme = useTheme();
  const done = Math.max(0, Math.min(BAR_CELLS, Math.round((percent / 100) * BAR_CELLS)));
  return (
    <Truncated width={width}>
      {'  ['}
      <Text color={theme.color('accent')}>{theme.glyphs.barDone.repeat(done)}</Text>
      <Text color={theme.color('muted')}>{theme.glyphs.barToDo.repeat(BAR_CELLS - done)}</Text>
      {`] ${String(Math.floor(percent)).padStart(3)}%  `}
      {label}
    </Truncated>
  );
}
