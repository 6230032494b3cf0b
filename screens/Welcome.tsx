import { useState } from 'react';
import { Box, Text, useInput } from 'ink';
import type { NodeInfo } from '../src/system/detect.ts';
import { describeSession } from '../src/system/detect.ts';
import type { WizardState } from './state/wizard-reducer.ts';
import { KeyHints } from './components/KeyHints.tsx';
import { StepList } from './components/StepList.tsx';
import { Truncated } from './components/Truncated.tsx';
import { useTheme } from './theme.ts';

export interface WelcomeProps {
  state: WizardState;
  node: NodeInfo;
  notes: string[];
  rows: number;
  columns: number;
  onStart: (start: boolean) => void;
}

/**
 * ```
 *  Node      pve1 · Proxmox VE 9.1.2 · Debian 13 (trixie)
 *  Addresses 10.77.7.2/24 (eth0)
 *  Session   SSH from 10.77.7.1: keep this session open until the end
 *  Journal   first run on this node
 *
 *  ❯  1  Kernel and network sysctl settings                 [safe]
 *     2  ...
 *  Hardens kernel and network defaults that Proxmox does not need open.
 *
 *  Nothing changes until you have seen the plan and confirmed it.
 *  ↑↓ browse · enter start · q quit
 * ```
 */
export function Welcome({ state, node, notes, rows, columns, onStart }: WelcomeProps) {
  const theme = useTheme();
  const [cursor, setCursor] = useState(state.resumeAt?.index ?? 0);
  const steps = state.steps;
  useInput((input, key) => {
    if (key.upArrow || input === 'k') setCursor((c) => Math.max(0, c - 1));
    else if (key.downArrow || input === 'j') setCursor((c) => Math.min(steps.length - 1, c + 1));
    else if (key.return) onStart(true);
    else if (input === 'q') onStart(false);
  });
  const selected = steps[cursor];
  // The label column; what follows it has the rest of the width.
  const label = (text: string) => (
    <Box width={11} flexShrink={0}>
      <Text color={theme.color('muted')}>{text}</Text>
    </Box>
  );
  const pve = node.proxmox ? `Proxmox VE ${node.proxmox.version}` : 'not a Proxmox node';
  const debian = node.debian ? `Debian ${node.debian.version} (${node.debian.codename})` : 'unknown OS';
  const addresses = node.addresses.filter((a) => a.family === 'IPv4').map((a) => `${a.cidr} (${a.iface})`);
  const resume = state.resumeAt;
  const journal = resume
    ? `resuming at step ${resume.index + 1} of ${steps.length}: ${steps[resume.index]?.title ?? resume.stepId}`
    : steps.length && steps.every((s) => s.journaled === 'verified')
      ? 'every step was verified before; they will be re-checked'
      : 'first run on this node';
  // Rows used around the list: 4 facts, notes, 2 blank, summary, blank, 2 footer, 2 banner, 1 spare.
  const listHeight = Math.max(3, rows - 13 - notes.length - (node.proxmox ? 0 : 1));
  return (
    <Box flexDirection="column">
      <Box>
        {label('Node')}
        <Truncated width={columns - 11}>
          <Text bold>{node.hostname}</Text> · {pve} · {debian}
        </Truncated>
      </Box>
      <Box>
        {label('Addresses')}
        <Truncated width={columns - 11}>{addresses.join(', ') || 'none found'}</Truncated>
      </Box>
      <Box>
        {label('Session')}
        <Truncated width={columns - 11}>
          {describeSession(node.session)}
          {node.session.kind === 'ssh' ? <Text color={theme.color('muted')}>: keep this session open until the end</Text> : null}
        </Truncated>
      </Box>
      <Box>
        {label('Journal')}
        <Truncated width={columns - 11} color={resume ? theme.color('warn') : undefined}>
          {journal}
        </Truncated>
      </Box>
      {!node.proxmox ? (
        <Truncated width={columns} color={theme.color('warn')}>
          {theme.glyphs.warn} {node.rehearsal ? 'Lab node with Proxmox stand-ins' : 'This machine is not a Proxmox VE node; Proxmox steps will say so.'}
        </Truncated>
      ) : null}
      {notes.map((note, i) => (
        <Text key={i} color={theme.color('warn')} wrap="wrap">
          {theme.glyphs.info} {note}
        </Text>
      ))}
      <Box marginTop={1}>
        <StepList steps={steps} cursor={cursor} height={listHeight} width={columns} />
      </Box>
      <Truncated width={columns} color={theme.color('muted')}>
        {selected ? `${'   '}${selected.summary}` : ' '}
      </Truncated>
      <Box marginTop={1} flexDirection="column">
        <Text>Nothing changes until you have seen the plan and confirmed it.</Text>
        <KeyHints hints={[[theme.glyphs.arrow === '->' ? 'up/down' : '↑↓', 'browse'], ['enter', resume ? 'resume' : 'start'], ['q', 'quit']]} />
      </Box>
    </Box>
  );
}
