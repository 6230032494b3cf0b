/**
 * The bad-input suite: every case in test/cli/bad-input/cases.ts runs the CLI
 * (the built bundle), as root, in its own temporary directory with its own state
 * directory, bounded in time (killed when it hangs) and in memory
 * (prlimit --data), and must end with a documented exit code, a message
 * naming the field or the file, no stack trace, no raw control characters
 * on the terminal, and nothing changed: the case's directory (state dir and
 * planted paths) and the node's account and SSH files are snapshotted
 * (sha256, mode, owner, link target) before and after.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync } from 'node:fs';
import { chmod, lchown, lstat, mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile, open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CASES } from './bad-input/cases.ts';
import { ensureBundle } from '../support/bundle.ts';
import type { BadInputCase, Plant } from './bad-input/types.ts';

/** The one-file bundle, as it ships (npm test builds it first); it also starts in a fraction of tsx's time. */
let BUNDLE_FILE: string;
/** README "Exit codes" (74: an I/O error on output). 70 is an internal error: never right for bad input. */
const DOCUMENTED_EXITS = new Set([0, 1, 2, 3, 4, 74, 129, 130]);
const DEFAULT_TIMEOUT_MS = 20_000;
/**
 * Private writable memory the CLI may map (prlimit --data), far above what
 * any refusal needs. Not --as: V8 and WebAssembly reserve many GiB of
 * address space they never use, and node would not even start.
 */
const DATA_LIMIT_BYTES = 1024 * 1024 * 1024;
const OUTPUT_CAP = 1024 * 1024;
const NOBODY = 65534;
/** What root's tool must never change on the node, whatever it is given. */
const HOST_PATHS = ['/etc/passwd', '/etc/shadow', '/etc/group', '/etc/gshadow', '/etc/ssh', '/etc/sudoers.d', '/etc/sysctl.d', '/root/.ssh', '/root/pve-baseline'];
/** Standing in for what an operator must be told, never for a crash. */
const STACK_TRACE = /^\s+at /m;
const ERROR_PREFIX = /\b(TypeError|SyntaxError|RangeError|ReferenceError|EvalError|URIError)\b|FATAL ERROR|node:internal\//;
/** A raw control character on the operator's terminal (escape sequences from input, NULs): only tab and newline are fine. */
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f\x9b]/;

const isRoot = process.getuid?.() === 0;

// ------------------------------------------------------------ snapshots

type Entry = { type: string; mode: number; uid: number; gid: number; size?: number; sha256?: string; target?: string; entries?: string[] };

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Every path under root (not following links), with what would show a change. */
async function snapshot(root: string, into: Map<string, Entry> = new Map()): Promise<Map<string, Entry>> {
  let st;
  try {
    st = await lstat(root);
  } catch {
    into.set(root, { type: 'absent', mode: 0, uid: 0, gid: 0 });
    return into;
  }
  const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  if (st.isSymbolicLink()) into.set(root, { type: 'symlink', ...base, target: await readlink(root) });
  else if (st.isFile()) into.set(root, { type: 'file', ...base, size: st.size, sha256: await sha256(root) });
  else if (st.isDirectory()) {
    const entries = (await readdir(root)).sort();
    into.set(root, { type: 'dir', ...base, entries });
    for (const name of entries) await snapshot(path.join(root, name), into);
  } else into.set(root, { type: st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chardev' : 'other', ...base });
  return into;
}

function differences(before: Map<string, Entry>, after: Map<string, Entry>): string[] {
  const out: string[] = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const a = JSON.stringify(before.get(key) ?? { type: 'absent' });
    const b = JSON.stringify(after.get(key) ?? { type: 'absent' });
    if (a !== b) out.push(`${key}: ${a.slice(0, 300)} -> ${b.slice(0, 300)}`);
  }
  return out;
}

// ------------------------------------------------------------ planting

function fill(text: string, dirs: { case: string; state: string }): string {
  return text.replaceAll('{case}', dirs.case).replaceAll('{state}', dirs.state);
}

async function plant(p: Plant, dirs: { case: string; state: string }, immutables: string[]): Promise<void> {
  const where = path.isAbsolute(p.path) ? p.path : path.join(dirs.case, p.path);
  await mkdir(path.dirname(where), { recursive: true });
  if (p.symlink !== undefined) await symlink(fill(p.symlink, dirs), where);
  else if (p.fifo) execFileSync('mkfifo', ['-m', (p.mode ?? 0o644).toString(8), where]);
  else if (p.dir) await mkdir(where, { recursive: true });
  else if (p.size) {
    const handle = await open(where, 'w');
    try {
      const chunk = Buffer.from(p.size.fill.repeat(Math.max(1, Math.floor((1024 * 1024) / p.size.fill.length))));
      for (let written = 0; written < p.size.bytes; ) {
        const n = Math.min(chunk.length, p.size.bytes - written);
        await handle.write(chunk, 0, n);
        written += n;
      }
    } finally {
      await handle.close();
    }
  } else {
    const content = p.content ?? '';
    await writeFile(where, typeof content === 'string' ? fill(content, dirs) : content);
  }
  if (p.symlink === undefined) await chmod(where, p.mode ?? (p.dir ? 0o755 : 0o644));
  if (p.owner === 'nobody') await lchown(where, NOBODY, NOBODY);
  if (p.immutable) {
    execFileSync('chattr', ['+i', where]);
    immutables.push(where);
  }
}

// ------------------------------------------------------------ running

interface Outcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

async function run(c: BadInputCase, dirs: { case: string; state: string }): Promise<Outcome> {
  const cli = [process.execPath, '--max-old-space-size=512', BUNDLE_FILE, ...c.argv.map((a) => fill(a, dirs))];
  const bounded = ['prlimit', `--data=${DATA_LIMIT_BYTES}`, '--', ...cli];
  // script(1) gives the wizard its terminal; -e passes the CLI's exit code on.
  const argv = c.tty ? ['script', '-qec', bounded.map(shellQuote).join(' '), '/dev/null'] : bounded;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LANG: 'C.UTF-8',
    PVE_BASELINE_STATE_DIR: dirs.state,
  };
  for (const [key, value] of Object.entries(c.env ?? {})) {
    if (value === null) delete env[key];
    else env[key] = fill(value, dirs);
  }
  // The runner itself needs a PATH to find prlimit; the CLI's own lack of one is set through env -u.
  const launcher = c.env?.PATH === null ? ['env', '-u', 'PATH', ...argv] : argv;
  if (c.env?.PATH === null) env.PATH = process.env.PATH ?? '/usr/bin:/bin';
  const full = c.stdoutToFull ? openSync('/dev/full', 'w') : null;
  const started = Date.now();
  try {
    return await new Promise<Outcome>((resolve) => {
      const child = spawn(launcher[0]!, launcher.slice(1), {
        cwd: dirs.case,
        env,
        detached: true,
        stdio: [c.stdin === undefined ? 'ignore' : 'pipe', full ?? 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (d: Buffer) => {
        if (stdout.length < OUTPUT_CAP) stdout += d.toString('utf8');
      });
      child.stderr?.on('data', (d: Buffer) => {
        if (stderr.length < OUTPUT_CAP) stderr += d.toString('utf8');
      });
      if (c.stdin !== undefined) child.stdin?.end(fill(c.stdin, dirs));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, c.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      child.on('close', (exitCode, signal) => {
        clearTimeout(timer);
        // Whatever the CLI left running in its process group goes too.
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // nothing left
        }
        resolve({ exitCode, signal, stdout, stderr, timedOut, ms: Date.now() - started });
      });
    });
  } finally {
    if (full !== null) closeSync(full);
  }
}

// ------------------------------------------------------------ judging

function judge(c: BadInputCase, r: Outcome, changed: string[], present: string[]): string[] {
  const e = c.expect;
  const problems: string[] = [];
  const wanted = Array.isArray(e.exit) ? e.exit : [e.exit];
  if (r.timedOut) problems.push(`hung: killed after ${c.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`);
  else if (r.exitCode === null) problems.push(`killed by ${r.signal}`);
  else {
    if (!wanted.includes(r.exitCode)) problems.push(`exit ${r.exitCode}, wanted ${wanted.join(' or ')}`);
    if (!DOCUMENTED_EXITS.has(r.exitCode)) problems.push(`exit ${r.exitCode} is not a documented exit code for bad input`);
  }
  const both = `${r.stderr}\n${r.stdout}`;
  const where = e.stream === 'stdout' ? r.stdout : e.stream === 'any' ? both : r.stderr;
  if (!e.message.test(where)) problems.push(`no message matching ${e.message} on ${e.stream ?? 'stderr'}`);
  if (STACK_TRACE.test(both)) problems.push('a stack trace reached the operator');
  if (ERROR_PREFIX.test(both)) problems.push(`an internal error name reached the operator: ${both.match(ERROR_PREFIX)![0]}`);
  // In a terminal the output holds the terminal's own carriage returns.
  const raw = c.tty ? both.replace(/\r/g, '') : both;
  if (RAW_CONTROL.test(raw)) problems.push(`a raw control character reached the terminal: ${JSON.stringify(raw.match(RAW_CONTROL)![0])}`);
  for (const f of e.forbid ?? []) if (f.test(both)) problems.push(`the output holds what it must never show: ${f}`);
  if (e.json) {
    try {
      JSON.parse(r.stdout);
    } catch {
      problems.push('standard output is not one JSON document');
    }
  }
  if (e.stdoutEmpty && r.stdout.trim() !== '') problems.push('standard output should be empty');
  for (const p of present) problems.push(`${p} exists afterwards`);
  for (const d of changed.slice(0, 10)) problems.push(`changed: ${d}`);
  if (changed.length > 10) problems.push(`... and ${changed.length - 10} more changes`);
  return problems;
}

function excerpt(text: string): string {
  const t = text.length > 1500 ? `${text.slice(0, 1500)}... (${text.length} characters)` : text;
  return JSON.stringify(t);
}

// ------------------------------------------------------------ the suite

let workRoot: string;
let hostBefore: Map<string, Entry>;

before(async () => {
  BUNDLE_FILE = await ensureBundle();
  workRoot = await mkdtemp(path.join(os.tmpdir(), 'pve-baseline-bad-input-'));
  await chmod(workRoot, 0o755);
  hostBefore = new Map();
  for (const p of HOST_PATHS) await snapshot(p, hostBefore);
});

after(async () => {
  if (workRoot) await rm(workRoot, { recursive: true, force: true });
});

test('the bad-input suite holds at least 150 cases, each named once', () => {
  assert.ok(CASES.length >= 150, `${CASES.length} cases`);
  const names = CASES.map((c) => c.name);
  assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), []);
});

describe('bad input', { concurrency: 2 }, () => {
  CASES.forEach((c, index) => {
    test(c.name, { skip: isRoot ? false : 'needs root (run by npm test as root)', timeout: (c.timeoutMs ?? DEFAULT_TIMEOUT_MS) + 60_000 }, async () => {
      const caseDir = path.join(workRoot, `case-${String(index).padStart(3, '0')}`);
      await mkdir(caseDir, { mode: 0o755 });
      await chmod(caseDir, 0o755);
      const dirs = { case: caseDir, state: path.join(caseDir, 'state') };
      // tmp/ plays /tmp: world-writable and sticky, where any local user plants things.
      await mkdir(path.join(caseDir, 'tmp'));
      await chmod(path.join(caseDir, 'tmp'), 0o1777);
      const immutables: string[] = [];
      try {
        for (const p of c.plant ?? []) await plant(p, dirs, immutables);
        await mkdir(dirs.state, { recursive: true, mode: 0o700 }).catch(() => undefined);
        const watched = [caseDir, ...(c.plant ?? []).filter((p) => path.isAbsolute(p.path)).map((p) => p.path)];
        const caseBefore = new Map<string, Entry>();
        for (const w of watched) await snapshot(w, caseBefore);
        const hostAt = new Map<string, Entry>();
        for (const p of HOST_PATHS) await snapshot(p, hostAt);

        const r = await run(c, dirs);

        const caseAfter = new Map<string, Entry>();
        for (const w of watched) await snapshot(w, caseAfter);
        const hostAfter = new Map<string, Entry>();
        for (const p of HOST_PATHS) await snapshot(p, hostAfter);
        const changed = [...differences(caseBefore, caseAfter), ...differences(hostAt, hostAfter)];
        const present: string[] = [];
        for (const a of c.expect.absent ?? []) {
          if (await lstat(path.join(caseDir, a)).then(() => true, () => false)) present.push(a);
        }
        const problems = judge(c, r, changed, present);
        if (problems.length) {
          assert.fail(
            [`${c.name}: ${problems.length} problem${problems.length > 1 ? 's' : ''}`, ...problems.map((p) => `  - ${p}`), `  argv: ${JSON.stringify(c.argv).slice(0, 300)}`, `  exit ${r.exitCode}${r.signal ? ` (${r.signal})` : ''} after ${r.ms} ms`, `  stderr: ${excerpt(r.stderr)}`, `  stdout: ${excerpt(r.stdout)}`].join('\n'),
          );
        }
      } finally {
        for (const i of immutables) execFileSync('chattr', ['-i', i]);
        await rm(caseDir, { recursive: true, force: true });
      }
    });
  });
});

test('nothing on the node changed over the whole suite', { skip: isRoot ? false : 'needs root' }, async () => {
  const hostAfter = new Map<string, Entry>();
  for (const p of HOST_PATHS) await snapshot(p, hostAfter);
  assert.deepEqual(differences(hostBefore, hostAfter), []);
});
