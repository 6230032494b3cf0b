/**
 * The bench's spinner load: the wizard's real progress line (spinner,
 * activity, counter, current command) and a one-line output tail, rendered
 * with the wizard's render options, for BENCH_SECONDS (default 5), then
 * unmounted. bench.ts bundles this the way scripts/build.mjs bundles the
 * wizard and counts the bytes it writes into a pty.
 *
 * PVE_BASELINE_INCREMENTAL=0 turns incremental rendering off, as it does in
 * screens/wizard.tsx, for comparison.
 */
import { render } from 'ink';
import { StepProgress } from '../../screens/components/StepProgress.tsx';
import { makeTheme, ThemeContext } from '../../screens/theme.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? '5');
const durationMs = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 5000;

const instance = render(
  <ThemeContext.Provider value={makeTheme()}>
    <StepProgress
      activity="applying"
      progress={{ total: 3, done: 1, current: 'sysctl -p /etc/sysctl.d/90-pve-baseline.conf' }}
      tail={['some output line']}
      tailLines={5}
    />
  </ThemeContext.Provider>,
  {
    // The same options as screens/wizard.tsx.
    exitOnCtrlC: false,
    patchConsole: false,
    incrementalRendering: process.env.PVE_BASELINE_INCREMENTAL !== '0',
    maxFps: 20,
  },
);

setTimeout(() => {
  instance.unmount();
}, durationMs);

await instance.waitUntilExit().catch(() => undefined);
process.exit(0);
