/**
 * `npm run deb`: the package as dpkg and lintian see it. Built twice to show
 * the same commit gives the same bytes; its contents and control fields; its
 * maintainer scripts keep the state on remove and drop it on purge; lintian
 * finds nothing beyond the overrides the package documents. Installing,
 * upgrading and removing it on a node is test/lab/89-package.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ensureBundle } from '../support/bundle.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
await ensureBundle();
const VERSION = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')).version as string;
const DEB = `${ROOT}/dist/pve-baseline_${VERSION}_all.deb`;
const build = () => {
  execFileSync(process.execPath, [`${ROOT}/scripts/deb.mjs`, '--prebuilt'], { cwd: ROOT, stdio: 'ignore' });
  return createHash('sha256').update(readFileSync(DEB)).digest('hex');
};

test('npm run deb: the same commit gives the same package; /usr/sbin/pve-baseline, its man page and completion, a 0700 state directory, no conffiles', () => {
  assert.equal(build(), build(), 'reproducible');
  const contents = execFileSync('dpkg-deb', ['-c', DEB], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.split(/\s+/))
    .map((f) => `${f[0]} ${f.at(-1)}`);
  assert.ok(contents.includes('-rwxr-xr-x ./usr/sbin/pve-baseline'));
  assert.ok(contents.includes('-rw-r--r-- ./usr/share/man/man8/pve-baseline.8.gz'));
  assert.ok(contents.includes('-rw-r--r-- ./usr/share/bash-completion/completions/pve-baseline'));
  assert.ok(contents.includes('drwx------ ./var/lib/pve-baseline/'));
  assert.ok(contents.includes('drwxr-xr-x ./'));
  assert.ok(!contents.some((l) => / \.\/etc\//.test(l)), 'nothing in /etc: no conffiles');
  const field = (name: string) => execFileSync('dpkg-deb', ['-f', DEB, name], { encoding: 'utf8' }).trim();
  assert.equal(field('Package'), 'pve-baseline');
  assert.equal(field('Version'), VERSION);
  assert.equal(field('Architecture'), 'all');
  assert.equal(field('Depends'), 'nodejs (>= 20)');
  const sbin = execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./usr/sbin/pve-baseline | sha256sum', 'sh', DEB], { encoding: 'utf8' }).split(' ')[0];
  assert.equal(sbin, createHash('sha256').update(readFileSync(`${ROOT}/dist/pve-baseline.mjs`)).digest('hex'), 'the one-file bundle itself');
  const man = execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./usr/share/man/man8/pve-baseline.8.gz | gzip -dc', 'sh', DEB], { encoding: 'utf8' });
  assert.match(man, new RegExp(`^\\.TH PVE-BASELINE 8 .*"pve-baseline ${VERSION.replace(/\./g, '\\.')}"`, 'm'));
  for (const command of ['apply', 'check', 'status', 'revert', 'docs', 'confirm', 'backup']) assert.match(man, new RegExp(`^\\.B ${command}\\b`, 'm'), `the man page documents ${command}`);
  const postrm = execFileSync('sh', ['-c', 'dpkg-deb --ctrl-tarfile "$1" | tar -xOf - ./postrm', 'sh', DEB], { encoding: 'utf8' });
  assert.match(postrm, /if \[ "\$1" = purge \]; then\n\s+rm -rf \/var\/lib\/pve-baseline \/etc\/pve-baseline\nfi/);
});

test('lintian finds nothing but the documented overrides', { skip: existsSync('/usr/bin/lintian') ? false : 'lintian is not installed (test/lab/apt-packages.txt installs it)' }, () => {
  build();
  const out = execFileSync('lintian', ['--tag-display-limit', '0', '--show-overrides', DEB], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const tags = out.split('\n').filter((l) => /^[EWIPXO]: /.test(l));
  assert.deepEqual(tags, ['O: pve-baseline: maintainer-script-calls-systemctl [prerm:6]', 'O: pve-baseline: non-standard-dir-perm 0700 != 0755 [var/lib/pve-baseline/]']);
});
