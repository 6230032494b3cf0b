// Runs the test suites with node's own test runner, one file at a time (the
// lab's node is shared between its files, which run in name order), and ends
// with the runner's summary (tests, pass, fail) for CI to read.
//
//   node scripts/test.mjs              every suite
//   node scripts/test.mjs unit ui      only those
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const SUITES = ['unit', 'ui', 'cli', 'support', 'lab'];
const wanted = process.argv.slice(2);
const unknown = wanted.filter((s) => !SUITES.includes(s));
if (unknown.length) {
  console.error(`unknown suite: ${unknown.join(', ')} (suites: ${SUITES.join(', ')})`);
  process.exit(2);
}

function testFiles(dir) {
  let entries;
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return testFiles(full);
    return /\.test\.tsx?$/.test(name) ? [full] : [];
  });
}

const files = (wanted.length ? wanted : SUITES).flatMap((suite) => testFiles(path.join('test', suite)));
if (!files.length) {
  console.error('no test files found');
  process.exit(1);
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', '--test-timeout=900000', ...files],
  { stdio: 'inherit', env: { ...process.env, FORCE_COLOR: '0' } },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
