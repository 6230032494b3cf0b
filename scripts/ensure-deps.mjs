// Makes a fresh Debian machine ready for `npm start` and `npm test`: the npm
// packages (npm ci) and, as root, the Debian packages the lab and the
// terminal tests need. Uses node's built-ins only, so it runs before
// node_modules exists. Does nothing when everything is there.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const run = (cmd, args, env = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`ensure-deps: ${cmd} ${args.join(' ')} failed (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
};

export const APT_PACKAGES = [
  ...readFileSync(new URL('../test/lab/apt-packages.txt', import.meta.url), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean),
  // Terminal tests and the benchmark drive the wizard in a real pseudo-terminal.
  'python3',
  // The revert's sh programs are checked with it (test/unit/revert-program.test.ts).
  'shellcheck',
];

function missingDebianPackages() {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\n', ...APT_PACKAGES], { encoding: 'utf8' });
  const installed = new Set(
    (r.stdout ?? '')
      .split('\n')
      .filter((l) => l.endsWith(' installed'))
      .map((l) => l.split(' ')[0]),
  );
  return APT_PACKAGES.filter((p) => !installed.has(p));
}

const missing = missingDebianPackages();
if (missing.length) {
  if (process.getuid?.() !== 0) {
    console.error(`ensure-deps: these Debian packages are missing and only root can install them: ${missing.join(' ')}`);
    console.error('  run as root, or: sudo apt-get install ' + missing.join(' '));
    process.exit(1);
  }
  console.error(`ensure-deps: installing ${missing.join(' ')}`);
  run('apt-get', ['update']);
  run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { DEBIAN_FRONTEND: 'noninteractive' });
}
if (!existsSync(new URL('../node_modules/.package-lock.json', import.meta.url))) {
  console.error('ensure-deps: npm ci');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}
