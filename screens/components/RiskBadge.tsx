import { Text } from 'ink';
import type { Risk } from '../../src/engine/step.ts';
import { RISK_HUE, useTheme } from '../theme.ts';

const LABEL: Record<Risk, string> = { safe: 'safe', disruptive: 'disruptive', lockout: 'LOCKOUT RISK', reboot: 'needs reboot' };

/** The tag's text, for a layout that must leave room for it. */
export function riskBadgeText(risk: Risk): string {
  return `[${LABEL[risk]}]`;
}

/** The risk of a step, as a short coloured tag: [safe], [LOCKOUT RISK], ... */
export function RiskBadge({ risk }: { risk: Risk }) {
  const { color } = useTheme();
  return (
    <Text color={color(RISK_HUE[risk])} bold={risk === 'lockout'}>
      {riskBadgeText(risk)}
    </Text>
  );
}
