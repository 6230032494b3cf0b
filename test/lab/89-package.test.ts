/**
 * Issue 18, the Debian package, on the lab node (offline: its local apt
 * repository has nodejs and man-db): `apt install ./pve-baseline_*.deb`
 * puts pve-baseline in /usr/sbin, it runs and `man pve-baseline` works; a
 * newer build installed over it keeps the journal; remove keeps the journal
 * and backups, purge removes them.
 * Named 89 so it runs before 90-down, like the other lab files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBundle, REPO } from '../support/bundle.ts';
import { adminAnswers, labOrSkip, sh } from './helpers.ts';
import type { Lab } from './lab.ts';

const lab = await labOrSkip();
const VERSION = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
const NEWER = `${VERSION}+lab1`;

/** The package of this checkout's bundle, as `npm run deb` makes it; `version` for a newer build. */
async function deb(version = VERSION): Promise<string> {
  await ensureBundle();
  execFileSync(process.execPath, [join(REPO, 'scripts/deb.mjs'), '--prebuilt'], { cwd: REPO, stdio: 'ignore', env: { ...process.env, PVE_BASELINE_DEB_VERSION: version } });
  return join(REPO, 'dist', `pve-baseline_${version}_all.deb`);
}

if (lab) {
  const node: Lab = lab;
  const journal = () => readFileSync(join(node.rootDir, 'var/lib/pve-baseline/journal.json'), 'utf8');
  const installed = async () => (await node.exec(['dpkg-query', '-W', '-f', '${db:Status-Abbrev}${Version}', 'pve-baseline'])).stdout.trim();

  test('apt install ./pve-baseline_VERSION_all.deb offline: /usr/sbin/pve-baseline runs, applies a step, and man pve-baseline works', async () => {
    await node.reset();
    copyFileSync(await deb(), join(node.rootDir, 'root', `pve-baseline_${VERSION}_all.deb`));
    const r = await node.exec(['apt-get', 'install', '-y', `/root/pve-baseline_${VERSION}_all.deb`], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 120_000 });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.equal(await installed(), `ii ${VERSION}`);
    assert.equal((await sh(node, 'command -v pve-baseline')).trim(), '/usr/sbin/pve-baseline');
    assert.equal((await sh(node, 'pve-baseline --version')).trim(), `pve-baseline ${VERSION}`);
    assert.equal((await sh(node, 'stat -c %a /var/lib/pve-baseline')).trim(), '700');
    writeFileSync(join(node.rootDir, 'root/admin.yml'), adminAnswers('correct horse battery staple'), { mode: 0o600 });
    const apply = await node.exec(['pve-baseline', 'apply', '--answers', '/root/admin.yml', '--yes', '--only', 'admin-account'], { timeoutMs: 120_000 });
    assert.equal(apply.exitCode, 0, apply.stdout + apply.stderr);

    await sh(node, 'apt-get install -y -q man-db >/dev/null');
    const man = await node.exec(['man', '-P', 'cat', 'pve-baseline'], { env: { MANWIDTH: '100' } });
    assert.equal(man.exitCode, 0, man.stderr);
    const text = man.stdout.replace(/\s+/g, ' ');
    assert.match(text, /NAME pve-baseline - take a Proxmox VE node to a documented security baseline without locking yourself out/);
    assert.match(text, /confirm From a new session: keep a change that could cut access/);
    assert.equal((await node.exec(['bash', '-n', '/usr/share/bash-completion/completions/pve-baseline'])).exitCode, 0, 'the completion parses');
  });

  test('a newer build installed over it keeps the journal; remove keeps the journal and backups; purge removes them', async () => {
    const before = journal();
    copyFileSync(await deb(NEWER), join(node.rootDir, 'root', `pve-baseline_${NEWER}_all.deb`));
    const up = await node.exec(['apt-get', 'install', '-y', `/root/pve-baseline_${NEWER}_all.deb`], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 120_000 });
    assert.equal(up.exitCode, 0, up.stdout + up.stderr);
    assert.equal(await installed(), `ii ${NEWER}`);
    assert.equal(journal(), before, 'the journal untouched by the upgrade');
    assert.match(await sh(node, 'pve-baseline status'), /admin-account\s+verified/);

    const state = async () => sh(node, 'cd /var/lib/pve-baseline && find . -printf "%M %p\\n" | sort');
    const kept = await state();
    const removed = await node.exec(['apt-get', 'remove', '-y', 'pve-baseline'], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 120_000 });
    assert.equal(removed.exitCode, 0, removed.stdout + removed.stderr);
    assert.equal(await installed(), `rc ${NEWER}`);
    assert.equal((await node.exec(['test', '-e', '/usr/sbin/pve-baseline'])).exitCode, 1);
    assert.equal(journal(), before, 'remove keeps the journal');
    assert.equal(await state(), kept, 'and all else of the state: backups, logs, the config backups');

    const purged = await node.exec(['apt-get', 'purge', '-y', 'pve-baseline'], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 120_000 });
    assert.equal(purged.exitCode, 0, purged.stdout + purged.stderr);
    assert.equal((await node.exec(['test', '-e', '/var/lib/pve-baseline'])).exitCode, 1, 'purge removes the state');
    assert.equal(await installed(), '', 'nothing of the package is left');
  });
}
