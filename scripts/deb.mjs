// `npm run deb`: builds dist/pve-baseline_VERSION_all.deb from the one-file
// bundle (scripts/build.mjs) and packaging/: /usr/sbin/pve-baseline, its man
// page and bash completion, the state directory, maintainer scripts that keep
// the journal and backups on remove and drop them on purge. No conffiles: the
// package ships no configuration, the steps write theirs.
//
// --prebuilt packages the bundle already built. PVE_BASELINE_DEB_VERSION overrides the version (a test builds a newer one
// to upgrade to). Files get SOURCE_DATE_EPOCH's time (or 0): the same input
// gives the same .deb.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const version = process.env.PVE_BASELINE_DEB_VERSION ?? pkg.version;
if (!/^[0-9][A-Za-z0-9.+~-]*$/.test(version)) throw new Error(`not a Debian version: ${version}`);
/** The files' time: SOURCE_DATE_EPOCH, else the last commit's (reproducible from a checkout). */
function sourceDate() {
  if (process.env.SOURCE_DATE_EPOCH) return Number(process.env.SOURCE_DATE_EPOCH);
  try {
    return Number(execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: root, encoding: 'utf8' }).trim());
  } catch {
    return Math.floor(Date.now() / 1000);
  }
}
const epoch = sourceDate();
/** Who built it: DEBFULLNAME and DEBEMAIL as Debian's tools read them, else the last commit's author. */
function maintainer() {
  if (process.env.DEBEMAIL) return `${process.env.DEBFULLNAME ?? 'pve-baseline'} <${process.env.DEBEMAIL}>`;
  return execFileSync('git', ['log', '-1', '--format=%an <%ae>'], { cwd: root, encoding: 'utf8' }).trim();
}
const MAINTAINER = maintainer();
const date = new Date(epoch * 1000).toUTCString().replace('GMT', '+0000');

// --prebuilt: package dist/pve-baseline.mjs as it is (tests, after npm test built it, must not rewrite it under other tests).
if (process.argv.includes('--prebuilt')) statSync(path.join(root, 'dist/pve-baseline.mjs'));
else execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { cwd: root, stdio: 'inherit' });

const stage = mkdtempSync(path.join(tmpdir(), 'pve-baseline-deb-'));
try {
  // The stage is the package's "/": 0755 as the real one.
  chmodSync(stage, 0o755);
  const put = (rel, content, mode = 0o644) => {
    const file = path.join(stage, rel);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    if (Buffer.isBuffer(content) || typeof content === 'string') writeFileSync(file, content);
    else copyFileSync(content.from, file);
    chmodSync(file, mode);
  };
  const packaging = (name) => readFileSync(path.join(root, 'packaging', name));
  // The bundle starts with `#!/usr/bin/env node`; Debian's nodejs provides node.
  put('usr/sbin/pve-baseline', { from: path.join(root, 'dist/pve-baseline.mjs') }, 0o755);
  put('usr/share/man/man8/pve-baseline.8.gz', gzipSync(Buffer.from(packaging('pve-baseline.8').toString('utf8').replaceAll('@VERSION@', version)), { level: 9 }));
  put('usr/share/bash-completion/completions/pve-baseline', packaging('bash-completion'));
  put('usr/share/doc/pve-baseline/copyright', packaging('copyright'));
  put('usr/share/lintian/overrides/pve-baseline', packaging('lintian-overrides'));
  put(
    'usr/share/doc/pve-baseline/changelog.gz',
    gzipSync(Buffer.from(`pve-baseline (${version}) unstable; urgency=medium\n\n  * Built from the pve-baseline repository (npm run deb).\n\n -- ${MAINTAINER}  ${date}\n`), { level: 9 }),
  );
  mkdirSync(path.join(stage, 'var/lib/pve-baseline'), { recursive: true });
  chmodSync(path.join(stage, 'var/lib/pve-baseline'), 0o700);
  const installedKiB = Math.ceil(du(stage) / 1024);
  put(
    'DEBIAN/control',
    [
      'Package: pve-baseline',
      `Version: ${version}`,
      'Architecture: all',
      `Maintainer: ${MAINTAINER}`,
      `Installed-Size: ${installedKiB}`,
      'Depends: nodejs (>= 20)',
      'Recommends: age, sqlite3',
      'Section: admin',
      'Priority: optional',
      'Description: security baseline wizard for Proxmox VE that never locks you out',
      ' An interactive wizard for Proxmox VE nodes: a named admin account and SSH',
      ' key, sshd hardening verified from a second session, the Proxmox firewall,',
      ' updates, two-factor login, least-privilege accounts and API tokens, and an',
      ' encrypted, drilled config backup; every change shown first, backed up and',
      ' reversible, and an access-policy document at the end.',
      '',
    ].join('\n'),
  );
  put('DEBIAN/postrm', packaging('postrm'), 0o755);
  put('DEBIAN/prerm', packaging('prerm'), 0o755);
  touchAll(stage, epoch);
  const out = path.join(root, 'dist', `pve-baseline_${version}_all.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, out], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } });
  console.log(`${path.relative(root, out)}: ${(statSync(out).size / 1024).toFixed(0)} KiB`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}

function du(dir) {
  let bytes = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    bytes += e.isDirectory() ? du(p) : statSync(p).size;
  }
  return bytes;
}

function touchAll(dir, seconds) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) touchAll(p, seconds);
    utimesSync(p, seconds, seconds);
  }
}
