import { useState } from 'react';
import { Box, Text, useInput } from 'ink';
import type { Plan, Review } from '../../src/engine/events.ts';
import { KeyHints } from './KeyHints.tsx';
import { maxPlanOffset, PlanPreview } from './PlanPreview.tsx';
import { TypedConfirm } from './TypedConfirm.tsx';
import { useTheme } from '../theme.ts';

export interface ReviewPromptProps {
  plan: Plan;
  /** The node's name: what a lockout-risk plan asks to be typed. */
  hostname: string;
  /** Lines available for the whole prompt. */
  height: number;
  onDecision: (review: Review) => void;
}

/**
 * The plan, scrollable, and the decision. Safe and disruptive plans take a
 * key (enter applies); lockout-risk plans take the typed node name.
 */
export function ReviewPrompt({ plan, hostname, height, onDecision }: ReviewPromptProps) {
  const theme = useTheme();
  const typed = plan.risk === 'lockout';
  const bodyHeight = Math.max(3, height - (typed ? 5 : 3));
  const [offset, setOffset] = useState(0);
  const [mismatch, setMismatch] = useState<string | undefined>();
  const max = maxPlanOffset(plan, bodyHeight);
  useInput((input, key) => {
    if (key.upArrow) return setOffset((o) => Math.max(0, o - 1));
    if (key.downArrow) return setOffset((o) => Math.min(max, o + 1));
    if (key.pageUp) return setOffset((o) => Math.max(0, o - bodyHeight));
    if (key.pageDown || (!typed && input === ' ')) return setOffset((o) => Math.min(max, o + bodyHeight));
    if (typed) return;
    if (key.return) return onDecision('apply');
    if (input === 's') return onDecision('skip');
    if (input === 'q') return onDecision('stop');
  });
  return (
    <Box flexDirection="column">
      <PlanPreview plan={plan} offset={offset} height={bodyHeight} />
      <Box marginTop={1} flexDirection="column">
        {typed ? (
          <TypedConfirm
            expected={hostname}
            {...(mismatch !== undefined ? { error: `"${mismatch}" is not ${hostname}; nothing was changed` } : {})}
            onMismatch={setMismatch}
            onDecision={(d) => onDecision(d === 'confirmed' ? 'apply' : d)}
          />
        ) : (
          <KeyHints
            hints={[
              ['enter', 'apply'],
              ['s', 'skip this step'],
              ['q', 'stop here'],
              ...(max > 0 ? ([[`${theme.glyphs.arrow === '->' ? 'up/down' : '↑↓'}`, 'scroll']] as [string, string][]) : []),
            ]}
          />
        )}
      </Box>
    </Box>
  );
}
