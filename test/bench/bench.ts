/**
 * pve-baseline's benchmark: figures for the built bundle, each against its
 * target. Run with `npm run bench` (which builds dist/pve-baseline.mjs first).
 *
 *   startup        process start to the wizard's first frame (median of 11),
 *                  beside bare `node -e 0` (median of 11, spawn to exit)
 *   keypress       bytes written to an 80x24 terminal per plan-scroll keypress
 *   spinner        bytes per second while the progress spinner runs
 *   peak RSS       of the wizard (max over the startup runs)
 *   bundle size    of dist/pve-baseline.mjs
 *
 * Every run goes through test/support/pty.ts (a real pty, 80x24) with a fresh
 * PVE_BASELINE_STATE_DIR, TERM=xterm-256color, LANG=C.UTF-8 and no CI.
 *
 * SAFETY: the wizard runs for real on this machine. The scripts here press
 * Enter only on the welcome screen (which starts probing, read-only) and
 * never on the plan preview (which would apply it); they leave with `q`.
 *
 * Prints figures and a table; exits 0 whether or not targets are met, and 1
 * only when the bench itself broke (a run timed out, the bundle is missing).
 * Leaves no files behind.
 */
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: a plain .mjs build script, without type declarations
import { bundle } from '../../scripts/bundle.mjs';
import { bytesBetween, describeFailure, KEYS, ptyEnv, rawOutput, runInPty, type PtyResult, type PtyStep } from '../support/pty.ts';
import { PROGRESS_EVERY_MS } from '../../src/engine/apply.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUNDLE = path.join(ROOT, 'dist', 'pve-baseline.mjs');
const FIXTURE = path.join(ROOT, 'test', 'bench', 'spinner-fixture.tsx');

const RUNS = 11;
const WELCOME_TEXT = 'Nothing changes until you have seen the plan';
const PRESSES = 10;
const PRESS_GAP_MS = 150;
const SPINNER_SECONDS = 5;
const STEADY_FROM_MS = 1000;

const KiB = 1024;
const MiB = 1024 * 1024;
const TARGETS = {
  startupMs: 250,
  startupRatio: 5,
  keypressBytes: 4 * KiB,
  spinnerBytesPerSec: 1.5 * KiB,
  peakRssBytes: 100 * MiB,
  bundleBytes: 1.5 * MiB,
};

// ---------------------------------------------------------------------------

class BenchBroke extends Error {}

const temps: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
function cleanup(): void {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const fmt = {
  ms: (v: number) => `${v.toFixed(0)} ms`,
  bytes: (v: number) => (v >= MiB ? `${(v / MiB).toFixed(2)} MiB` : v >= KiB ? `${(v / KiB).toFixed(2)} KiB` : `${Math.round(v)} B`),
  rate: (v: number) => `${(v / KiB).toFixed(2)} KiB/s`,
  ratio: (v: number) => `${v.toFixed(2)}x`,
};

const BSU = '\u001b[?2026h';

function countOf(haystack: Buffer, needle: string): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}

function check(result: PtyResult, what: string): PtyResult {
  if (!result.ok || result.exitCode !== 0) throw new BenchBroke(`${what}:\n${describeFailure(result)}`);
  return result;
}

/** The wizard's environment: a fresh state dir, a plain xterm, no CI. */
function wizardEnv(): Record<string, string> {
  return ptyEnv({ PVE_BASELINE_STATE_DIR: tempDir('pve-baseline-bench-state-') });
}

// ---------------------------------------------------------------------------
// Startup and peak RSS

interface StartupFigures {
  wizardMs: number[];
  nodeMs: number[];
  rssKiB: number[];
  /** `pve-baseline --version`, spawn to exit: the cost of loading the bundle. */
  versionMs: number[];
  /** Spawn to the first byte of output. */
  firstByteMs: number[];
  /** Bytes written before the frame that has the welcome text (banner, empty first frames). */
  bytesBeforeWelcome: number[];
  framesToWelcome: number[];
  afterQuit: string[];
}

async function startup(): Promise<StartupFigures> {
  const figures: StartupFigures = { wizardMs: [], nodeMs: [], rssKiB: [], versionMs: [], firstByteMs: [], bytesBeforeWelcome: [], framesToWelcome: [], afterQuit: [] };
  const wizardRun = () =>
    runInPty({
      argv: [process.execPath, BUNDLE],
      env: wizardEnv(),
      script: [{ waitFor: WELCOME_TEXT, timeoutMs: 10_000 }, { send: 'q' }, { waitExit: true, timeoutMs: 5_000 }],
    });
  const nodeRun = () => runInPty({ argv: [process.execPath, '-e', '0'], env: ptyEnv(), script: [{ waitExit: true, timeoutMs: 5_000 }] });
  // For the breakdown only: loading the bundle without Ink or the node probe.
  const versionRun = () => runInPty({ argv: [process.execPath, BUNDLE, '--version'], env: wizardEnv(), script: [{ waitExit: true, timeoutMs: 5_000 }] });
  // One unrecorded run of each first, so that neither pays for a cold page cache.
  check(await wizardRun(), 'wizard warm-up run');
  check(await nodeRun(), 'node -e 0 warm-up run');
  // Interleaved, so that drift in machine load hits both alike.
  for (let i = 0; i < RUNS; i++) {
    const w = check(await wizardRun(), `wizard startup run ${i + 1}`);
    figures.wizardMs.push(w.waits[0]!.matchedMs);
    figures.rssKiB.push(w.peakRssKiB ?? 0);
    figures.firstByteMs.push(w.chunks[0]?.[0] ?? Number.NaN);
    // Frames are bracketed by synchronized-update marks (ESC[?2026h ... ESC[?2026l).
    const raw = rawOutput(w);
    const at = raw.indexOf(WELCOME_TEXT);
    const frameStart = at >= 0 ? raw.lastIndexOf(BSU, at) : -1;
    if (frameStart >= 0) {
      figures.bytesBeforeWelcome.push(frameStart);
      figures.framesToWelcome.push(countOf(raw.subarray(0, frameStart), BSU));
    }
    figures.afterQuit.push(w.screen.filter((l) => l.trim()).join(' | '));
    const n = check(await nodeRun(), `node -e 0 run ${i + 1}`);
    figures.nodeMs.push(n.exitMs!);
    const v = check(await versionRun(), `--version run ${i + 1}`);
    figures.versionMs.push(v.exitMs!);
  }
  return figures;
}

// ---------------------------------------------------------------------------
// Bytes per navigation keypress

interface KeypressFigures {
  perPress: number[];
  total: number;
  fromLine: number;
  toLine: number;
  ofLines: number;
  rssKiB: number;
  screenClears: number;
  exitCode: number | null;
  frameHeight: number;
}

function previewRange(screen: string[]): { from: number; to: number; of: number } | undefined {
  for (const line of screen) {
    const m = line.match(/lines (\d+)-(\d+) of (\d+)/);
    if (m) return { from: Number(m[1]), to: Number(m[2]), of: Number(m[3]) };
  }
  return undefined;
}

async function keypress(): Promise<KeypressFigures> {
  const presses: PtyStep[] = [];
  for (let i = 0; i < PRESSES; i++) presses.push({ mark: `press-${i + 1}` }, { send: KEYS.down }, { sleepMs: PRESS_GAP_MS });
  const script: PtyStep[] = [
    { waitFor: WELCOME_TEXT, timeoutMs: 10_000 },
    // Let useInput subscribe before the one and only Enter, which starts the
    // run (probing is read-only). Enter is never sent once the plan is up.
    { sleepMs: 100 },
    { send: KEYS.enter, label: 'enter-on-welcome' },
    { waitFor: 'Plan:', timeoutMs: 15_000 },
    { sleepMs: 300 },
    { snapshot: 'before' },
    ...presses,
    { mark: 'after-last' },
    { snapshot: 'after' },
    // q on the plan: "stop here", nothing is applied.
    { send: 'q' },
    { waitExit: true, timeoutMs: 5_000 },
  ];
  const r = await runInPty({ argv: [process.execPath, BUNDLE], env: wizardEnv(), script });
  if (!r.ok) throw new BenchBroke(`keypress run:\n${describeFailure(r)}`);
  const marks = r.marks;
  const perPress = r.between.filter((b) => b.from.startsWith('press-')).map((b) => b.bytes);
  const first = marks.find((m) => m.name === 'press-1')!;
  const last = marks.find((m) => m.name === 'after-last')!;
  const before = previewRange(r.snapshots.find((s) => s.name === 'before')!.screen);
  const after = previewRange(r.snapshots.find((s) => s.name === 'after')!.screen);
  if (!before || !after) throw new BenchBroke(`keypress run: no "lines X-Y of Z" in the plan preview\n${r.snapshots.map((s) => s.screen.join('\n')).join('\n---\n')}`);
  const frameHeight = r.snapshots.find((s) => s.name === 'after')!.screen.filter((l) => l.trim()).length;
  return {
    perPress,
    total: last.offset - first.offset,
    fromLine: before.from,
    toLine: after.from,
    ofLines: after.of,
    rssKiB: r.peakRssKiB ?? 0,
    screenClears: r.screenClears,
    exitCode: r.exitCode,
    frameHeight,
  };
}

// ---------------------------------------------------------------------------
// Spinner bytes per second

async function bundleFixture(): Promise<string> {
  const outfile = path.join(tempDir('pve-baseline-bench-fixture-'), 'spinner-fixture.mjs');
  await bundle({ entry: FIXTURE, outfile, version: 'bench', absWorkingDir: ROOT });
  return outfile;
}

interface SpinnerFigures {
  bytesPerSec: number;
  framesPerSec: number;
  bytesPerFrame: number;
  windowMs: number;
  sample: string;
}

async function spinner(fixture: string, incremental: boolean, progress = false): Promise<SpinnerFigures> {
  const r = await runInPty({
    argv: [process.execPath, fixture],
    env: ptyEnv({ BENCH_SECONDS: String(SPINNER_SECONDS), ...(incremental ? {} : { PVE_BASELINE_INCREMENTAL: '0' }), ...(progress ? { BENCH_PROGRESS: '1' } : {}) }),
    script: [
      { waitFor: 'Applying', timeoutMs: 10_000 },
      { waitExit: true, timeoutMs: SPINNER_SECONDS * 1000 + 10_000 },
    ],
  });
  check(r, `spinner fixture${incremental ? '' : ' (incremental rendering off)'}`);
  const end = r.exitMs!;
  const windowMs = end - STEADY_FROM_MS;
  const bytes = bytesBetween(r, STEADY_FROM_MS, end);
  const raw = rawOutput(r);
  const inWindow = r.chunks.filter(([t]) => t >= STEADY_FROM_MS && t <= end);
  const from = inWindow[0]?.[1] ?? raw.length;
  const to = inWindow.length ? inWindow.at(-1)![1] + inWindow.at(-1)![2] : raw.length;
  const frames = countOf(raw.subarray(from, to), BSU);
  // A typical frame: the one starting nearest the middle of the window.
  const middle = raw.indexOf(BSU, Math.floor((from + to) / 2));
  const next = middle >= 0 ? raw.indexOf(BSU, middle + BSU.length) : -1;
  const sample = middle >= 0 && next > middle ? raw.subarray(middle, next).toString('utf8') : '';
  return {
    bytesPerSec: bytes / (windowMs / 1000),
    framesPerSec: frames / (windowMs / 1000),
    bytesPerFrame: frames ? bytes / frames : 0,
    windowMs,
    sample,
  };
}

// ---------------------------------------------------------------------------

interface Row {
  figure: string;
  value: string;
  target: string;
  /** value / target, for "at most" targets */
  ratio?: number;
  met?: boolean;
  broke?: string;
}

async function section<T>(name: string, run: () => Promise<T>, broken: Map<string, string>): Promise<T | undefined> {
  const started = Date.now();
  process.stdout.write(`\n== ${name}\n`);
  try {
    const result = await run();
    process.stdout.write(`   (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    return result;
  } catch (error) {
    const message = error instanceof BenchBroke ? error.message : ((error as Error)?.stack ?? String(error));
    broken.set(name, message);
    process.stdout.write(`   BROKE: ${message}\n`);
    return undefined;
  }
}

async function main(): Promise<number> {
  const started = Date.now();
  const broken = new Map<string, string>();
  const rows: Row[] = [];
  const notes: string[] = [];
  const atMost = (figure: string, measured: number, target: number, show: (v: number) => string): Row => ({
    figure,
    value: show(measured),
    target: `<= ${show(target)}`,
    ratio: measured / target,
    met: measured <= target,
  });

  console.log(`pve-baseline bench: ${path.relative(ROOT, BUNDLE)}, node ${process.version}, pty 80x24, TERM=xterm-256color`);
  if (!existsSync(BUNDLE)) {
    console.error(`bench: ${BUNDLE} is missing; run \`npm run build\` (npm run bench does)`);
    return 1;
  }

  // Bundle size
  const bundleBytes = statSync(BUNDLE).size;
  process.stdout.write(`\n== bundle size\n   ${bundleBytes.toLocaleString('en')} bytes (${fmt.bytes(bundleBytes)})\n`);
  rows.push({ ...atMost('bundle size', bundleBytes, TARGETS.bundleBytes, fmt.bytes), value: `${fmt.bytes(bundleBytes)} (${bundleBytes.toLocaleString('en')} B)` });

  // Startup + RSS
  const s = await section(`startup: first frame of the wizard vs node -e 0 (${RUNS} runs each, after 1 warm-up)`, startup, broken);
  if (s) {
    const wiz = median(s.wizardMs);
    const bare = median(s.nodeMs);
    const peak = Math.max(...s.rssKiB) * KiB;
    const list = (v: number[]) => v.map((x) => x.toFixed(0)).join(' ');
    console.log(`   wizard first frame, ms: ${list(s.wizardMs)}`);
    console.log(`     median ${fmt.ms(wiz)}, min ${fmt.ms(Math.min(...s.wizardMs))}, max ${fmt.ms(Math.max(...s.wizardMs))}`);
    console.log(`   node -e 0 to exit, ms:  ${list(s.nodeMs)}`);
    console.log(`     median ${fmt.ms(bare)}, min ${fmt.ms(Math.min(...s.nodeMs))}, max ${fmt.ms(Math.max(...s.nodeMs))}`);
    console.log(`   ratio wizard / bare node: ${fmt.ratio(wiz / bare)}`);
    console.log(`   breakdown: \`pve-baseline --version\` (load the bundle, print, exit) median ${fmt.ms(median(s.versionMs))}`);
    console.log(`   first byte of output: median ${fmt.ms(median(s.firstByteMs))} (the welcome follows ${fmt.ms(wiz - median(s.firstByteMs))} later)`);
    console.log(`   peak RSS per run, MiB: ${s.rssKiB.map((k) => (k / KiB).toFixed(1)).join(' ')}`);
    if (s.framesToWelcome.length) {
      console.log(`   frames (ESC[?2026h) before the one with the welcome: ${[...new Set(s.framesToWelcome)].join('/')}; bytes written before it: median ${median(s.bytesBeforeWelcome)}`);
    }
    const after = [...new Set(s.afterQuit)];
    console.log(`   screen after q: ${after.map((a) => JSON.stringify(a)).join(' or ')}`);
    rows.push(atMost('startup to first frame (median)', wiz, TARGETS.startupMs, fmt.ms));
    rows.push({ ...atMost('startup / bare node -e 0', wiz / bare, TARGETS.startupRatio, fmt.ratio), value: `${fmt.ratio(wiz / bare)} (${fmt.ms(wiz)} / ${fmt.ms(bare)})` });
    rows.push(atMost('peak RSS (max of startup runs)', peak, TARGETS.peakRssBytes, fmt.bytes));
    if (s.framesToWelcome.length && Math.min(...s.framesToWelcome) > 0) notes.push(`startup: ${Math.min(...s.framesToWelcome)} frame(s) before the welcome frame (two-phase first render)`);
  } else {
    rows.push({ figure: 'startup to first frame (median)', value: 'n/a', target: `<= ${fmt.ms(TARGETS.startupMs)}`, broke: 'startup' });
    rows.push({ figure: 'startup / bare node -e 0', value: 'n/a', target: `<= ${fmt.ratio(TARGETS.startupRatio)}`, broke: 'startup' });
    rows.push({ figure: 'peak RSS (max of startup runs)', value: 'n/a', target: `<= ${fmt.bytes(TARGETS.peakRssBytes)}`, broke: 'startup' });
  }

  // Keypress
  const k = await section(`keypress: plan preview, ${PRESSES} x Down, ${PRESS_GAP_MS} ms apart (Enter on welcome only; q to leave)`, keypress, broken);
  if (k) {
    const per = k.total / PRESSES;
    console.log(`   bytes per press: ${k.perPress.join(' ')}`);
    console.log(`   total ${k.total} B over ${PRESSES} presses = ${per.toFixed(0)} B/press`);
    console.log(`   preview scrolled from line ${k.fromLine} to line ${k.toLine} (of ${k.ofLines}); ${k.frameHeight} non-blank screen lines; screen clears: ${k.screenClears}`);
    console.log(`   peak RSS of this run: ${fmt.bytes(k.rssKiB * KiB)}; exit ${k.exitCode}`);
    if (k.toLine - k.fromLine !== PRESSES) notes.push(`keypress: expected the preview to move ${PRESSES} lines, it moved ${k.toLine - k.fromLine}`);
    if (k.screenClears) notes.push(`keypress: the screen was wiped ${k.screenClears} time(s) (Ink's clearTerminal fallback)`);
    rows.push(atMost('bytes per navigation keypress', per, TARGETS.keypressBytes, fmt.bytes));
  } else {
    rows.push({ figure: 'bytes per navigation keypress', value: 'n/a', target: `<= ${fmt.bytes(TARGETS.keypressBytes)}`, broke: 'keypress' });
  }

  // Spinner
  const sp = await section(`spinner: StepProgress for ${SPINNER_SECONDS} s, steady part from ${STEADY_FROM_MS} ms`, async () => {
    const fixture = await bundleFixture();
    const on = await spinner(fixture, true);
    const off = await spinner(fixture, false);
    const upgrade = await spinner(fixture, true, true);
    return { on, off, upgrade };
  }, broken);
  if (sp) {
    const { on, off } = sp;
    const visible = on.sample.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\r\n]/g, '');
    console.log(`   incremental (as the wizard): ${fmt.rate(on.bytesPerSec)} = ${on.framesPerSec.toFixed(1)} frames/s x ${on.bytesPerFrame.toFixed(0)} B/frame, over ${(on.windowMs / 1000).toFixed(2)} s`);
    console.log(`     one frame (${Buffer.byteLength(on.sample)} B, ${Buffer.byteLength(visible)} B of it text): ${JSON.stringify(on.sample)}`);
    console.log(`   for comparison, PVE_BASELINE_INCREMENTAL=0: ${fmt.rate(off.bytesPerSec)}, ${off.bytesPerFrame.toFixed(0)} B/frame (${fmt.ratio(off.bytesPerSec / on.bytesPerSec)} the incremental rate)`);
    rows.push(atMost('spinner bytes per second', on.bytesPerSec, TARGETS.spinnerBytesPerSec, fmt.rate));
    const { upgrade } = sp;
    console.log(`   an upgrade's bar moving ${(1000 / PROGRESS_EVERY_MS).toFixed(0)} times a second (the spinner stands still): ${fmt.rate(upgrade.bytesPerSec)} = ${upgrade.framesPerSec.toFixed(1)} frames/s x ${upgrade.bytesPerFrame.toFixed(0)} B/frame`);
    rows.push(atMost('upgrade progress bytes per second', upgrade.bytesPerSec, TARGETS.spinnerBytesPerSec, fmt.rate));
  } else {
    rows.push({ figure: 'spinner bytes per second', value: 'n/a', target: `<= ${fmt.rate(TARGETS.spinnerBytesPerSec)}`, broke: 'spinner' });
  }

  cleanup();

  // Table
  const head = ['figure', 'measured', 'target', 'of target', 'result'];
  const body = rows.map((r) => [r.figure, r.value, r.target, r.ratio !== undefined ? `${(r.ratio * 100).toFixed(0)}%` : '-', r.broke ? 'BROKE' : r.met ? 'met' : 'MISSED']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(`\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const row of body) console.log(line(row));
  for (const note of notes) console.log(`note: ${note}`);
  const met = rows.filter((r) => r.met && !r.broke).length;
  console.log(`\nbench took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`bench: ${met} of ${rows.length} targets met${broken.size ? ` (${broken.size} section(s) broke: ${[...broken.keys()].join('; ')})` : ''}`);
  return broken.size ? 1 : 0;
}

main().then(
  (code) => {
    cleanup();
    process.exitCode = code;
  },
  (error: unknown) => {
    cleanup();
    console.error(`bench: ${(error as Error)?.stack ?? String(error)}`);
    process.exitCode = 1;
  },
);
