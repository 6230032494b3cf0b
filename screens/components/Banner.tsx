import { Box, Text } from 'ink';
import type { NodeInfo } from '../../src/system/detect.ts';
import { useTheme } from '../theme.ts';

/**
 * ```
 *  pve-baseline 0.1.0  security baseline for Proxmox VE        REHEARSAL (lab node)
 *  ────────────────────────────────────────────────────────────────────────────────
 * ```
 */
export function Banner({ version, node, width }: { version: string; node: NodeInfo; width: number }) {
  const theme = useTheme();
  return (
    <Box flexDirection="column">
      <Box justifyContent="space-between" width={width}>
        <Text>
          <Text bold color={theme.color('accent')}>
            pve-baseline
          </Text>
          <Text color={theme.color('muted')}> {version}  security baseline for Proxmox VE</Text>
        </Text>
        {node.rehearsal ? (
          <Text bold color={theme.color('warn')}>
            REHEARSAL (lab node)
          </Text>
        ) : null}
      </Box>
      <Text color={theme.color('muted')}>{theme.glyphs.rule.repeat(Math.max(10, width))}</Text>
    </Box>
  );
}
