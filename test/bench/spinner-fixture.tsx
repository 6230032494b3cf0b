/**
 * The bench's spinner load: the wizard's real progress line (spinner,
 * activity, counter, current command) and a one-line output tail, rendered
 * with the wizard's render options, for BENCH_SECONDS (default 5), then
 * unmounted. bench.ts bundles this the way scripts/build.mjs bundles the
 * wizard and counts the bytes it writes into a pty.
 *
 * PVE_BASELINE_INCREMENTAL=0 turns incremental rendering off, as it does in
 * screens/wizard.tsx, for comparison. BENCH_PROGRESS=1 adds an upgrade's
 * progress bar, moving as often as the engine reports (PROGRESS_EVERY_MS),
 * with a new package name each time: the worst case of the upgrade screen.
 */
import { render } from 'ink';
import { useEffect, useState } from 'react';
import { StepProgress } from '../../screens/components/StepProgress.tsx';
import { PROGRESS_EVERY_MS } from '../../src/engine/apply.ts';
import { makeTheme, ThemeContext } from '../../screens/theme.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? '5');
const durationMs = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 5000;

const PACKAGES = ['pve-manager', 'proxmox-kernel-6.14.11-1-pve-signed', 'qemu-server', 'pve-container', 'libpve-common-perl', 'proxmox-widget-toolkit'];

/** The upgrade's bar, moving at the engine's pace. */
function Upgrading() {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), PROGRESS_EVERY_MS);
    return () => clearInterval(timer);
  }, []);
  const pkg = PACKAGES[tick % PACKAGES.length]!;
  return (
    <StepProgress
      activity="applying"
      progress={{ total: 1, done: 0, current: 'apt-get -o APT::Status-Fd=3 ... dist-upgrade', detail: { percent: Math.min(99, tick), label: `${tick % 2 ? 'Configuring' : 'Unpacking'} ${pkg} (amd64)`, done: false } }}
      tail={[`Setting up ${pkg} ...`]}
      tailLines={5}
    />
  );
}

const instance = render(
  <ThemeContext.Provider value={makeTheme()}>
    {process.env.BENCH_PROGRESS === '1' ? (
      <Upgrading />
    ) : (
      <StepProgress
        activity="applying"
        progress={{ total: 3, done: 1, current: 'sysctl -p /etc/sysctl.d/90-pve-baseline.conf' }}
        tail={['some output line']}
        tailLines={5}
      />
    )}
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
