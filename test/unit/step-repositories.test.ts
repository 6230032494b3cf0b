/**
 * The repositories step on a fake node whose pvesh is the lab's stand-in
 * (test/lab/standins/lib/apt-repos.ts, Proxmox's repository API) run as a
 * program against a temporary root (PVE_LAB_APT_ROOT): each planned call's
 * predicted file against what the stand-in really wrote, a fresh PVE 9 node
 * without a subscription, a PVE 8 node's one-line files, a second plan that
 * is empty, verify with `apt-get update` as a fresh node answers it, and bad
 * answers named by their field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeChange, type CommandChange } from '../../src/engine/change.ts';
import type { Exec, ExecOptions, ExecResult } from '../../src/system/exec.ts';
import { runChecked } from '../../src/system/exec.ts';
import { parseAnswersFile } from '../../src/cli/answers.ts';
import { readRepositories } from '../../src/apt/repositories.ts';
import { classifySource } from '../../src/apt/sources.ts';
import { parseCephRelease, parseSubscription, repositoriesStep, type RepositoriesAnswers } from '../../steps/repositories.ts';
import { MappedFiles, NODE_NAME } from '../fixtures/fake-pveum.ts';
import { failed, stepContext } from '../fixtures/step-run.ts';
import { testNode } from '../fixtures/node.ts';
import type { NodeInfo } from '../../src/system/detect.ts';
import { CEPH_ENTERPRISE, DEBIAN_SOURCES, PVE_ENTERPRISE } from '../fixtures/apt-sources.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const NO_SUBSCRIPTION = 'message: There is no subscription key\nserverid: 0123456789ABCDEF0123456789ABCDEF\nstatus: notfound\nurl: https://www.proxmox.com/en/proxmox-virtual-environment/pricing\n';

interface AptNode {
  root: string;
  files: MappedFiles;
  exec: AptExec;
  node: NodeInfo;
  read(path: string): string | null;
  write(path: string, content: string): void;
  done(): void;
}

/**
 * pvesh is the stand-in against the root; pvesubscription answers as told;
 * apt-get update answers as a node does: 401 from every enabled
 * enterprise.proxmox.com repository when there is no subscription; ceph is
 * missing unless installed. Anything else is refused.
 */
class AptExec implements Exec {
  readonly argvs: string[][] = [];
  subscription = NO_SUBSCRIPTION;
  cephVersion: string | null = null;
  constructor(
    readonly root: string,
    readonly etcPve: string,
    readonly files: MappedFiles,
  ) {}

  async run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    this.argvs.push([...argv]);
    const out = (exitCode: number, stdout: string, stderr = ''): ExecResult => ({ argv: [...argv], exitCode, stdout, stderr });
    switch (argv[0]) {
      case 'pvesh': {
        const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/lab/standins/pvesh.ts', ...argv.slice(1)], {
          cwd: ROOT,
          env: { ...process.env, PVE_LAB_APT_ROOT: this.root, PVE_LAB_ETC_PVE: this.etcPve },
          encoding: 'utf8',
        });
        for (const line of `${r.stdout}${r.stderr}`.split('\n').filter(Boolean)) options.onLine?.(line);
        return out(r.status ?? 1, r.stdout, r.stderr);
      }
      case 'pvesubscription':
        return out(0, this.subscription);
      case 'ceph':
        return this.cephVersion === null ? { ...out(127, ''), notFound: true } : out(0, this.cephVersion);
      case 'apt-get':
        return this.aptUpdate();
      default:
        throw new Error(`not a program of this fake node: ${argv.join(' ')}`);
    }
  }

  async aptUpdate(): Promise<ExecResult> {
    const tree = { files: new Map<string, string>(), listDir: 'dir' as const };
    for (const name of await this.files.list('/etc/apt/sources.list.d')) tree.files.set(`/etc/apt/sources.list.d/${name}`, (await this.files.read(`/etc/apt/sources.list.d/${name}`))!);
    const main = await this.files.read('/etc/apt/sources.list');
    if (main !== null) tree.files.set('/etc/apt/sources.list', main);
    const active = /status: active/.test(this.subscription);
    const stdout: string[] = [];
    const stderr: string[] = [];
    let n = 0;
    for (const file of readRepositories(tree).files) {
      for (const repo of file.repositories.filter((r) => r.enabled)) {
        for (const suite of repo.suites) {
          const uri = repo.uris[0]!;
          n++;
          if (!active && uri.includes('enterprise.proxmox.com')) {
            stdout.push(`Err:${n} ${uri} ${suite} InRelease`, '  401  Unauthorized [IP: 66.70.154.82 443]');
            stderr.push(`E: Failed to fetch ${uri}/dists/${suite}/InRelease  401  Unauthorized [IP: 66.70.154.82 443]`, `E: The repository '${uri} ${suite} InRelease' is not signed.`);
          } else stdout.push(`Hit:${n} ${uri} ${suite} InRelease`);
        }
      }
    }
    stdout.push('Reading package lists...');
    return { argv: ['apt-get', 'update'], exitCode: stderr.length ? 100 : 0, stdout: `${stdout.join('\n')}\n`, stderr: stderr.length ? `${stderr.join('\n')}\n` : '' };
  }
}

function aptNode(o: { files: Record<string, string>; codename?: string; major?: number }): AptNode {
  const base = mkdtempSync(join(tmpdir(), 'pve-apt-'));
  const root = join(base, 'root');
  const etcPve = join(base, 'etc-pve');
  mkdirSync(join(root, 'etc/apt/sources.list.d'), { recursive: true });
  mkdirSync(join(root, 'var/lib/apt/lists'), { recursive: true });
  mkdirSync(etcPve, { recursive: true });
  const write = (path: string, content: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  };
  const codename = o.codename ?? 'trixie';
  write('/etc/os-release', `PRETTY_NAME="Debian GNU/Linux"\nVERSION_CODENAME=${codename}\n`);
  for (const [path, content] of Object.entries(o.files)) write(path, content);
  const files = new MappedFiles(etcPve, root);
  const major = o.major ?? 9;
  return {
    root,
    files,
    exec: new AptExec(root, etcPve, files),
    node: { ...testNode, hostname: NODE_NAME, proxmox: { version: `${major}.1.2`, major, line: `pve-manager/${major}.1.2/0123456789abcdef` }, debian: { codename, version: major === 9 ? '13' : '12' } },
    read: (path) => {
      try {
        return readFileSync(join(root, path), 'utf8');
      } catch {
        return null;
      }
    },
    write,
    done: () => rmSync(base, { recursive: true, force: true }),
  };
}

async function planFor(n: AptNode, answers?: RepositoriesAnswers) {
  const ctx = stepContext({ exec: n.exec, files: n.files, node: n.node });
  const facts = await repositoriesStep.probe(ctx);
  const detected = answers ?? ({ pve: repositoriesStep.questions![0]!.detect!(facts as never), ceph: repositoriesStep.questions![1]!.detect!(facts as never) } as RepositoriesAnswers);
  return { ctx, facts, answers: detected, changes: repositoriesStep.plan(facts, detected, n.node) as CommandChange[] };
}

/** Run each call with the stand-in pvesh and compare every declared file with what it wrote. */
async function applyChecked(n: AptNode, changes: readonly CommandChange[]): Promise<void> {
  for (const change of changes) {
    assert.equal(change.kind, 'command');
    for (const w of change.writes ?? []) assert.equal(n.read(w.path), w.before, `before ${change.argv.join(' ')}: ${w.path}`);
    await runChecked(n.exec, change.argv);
    for (const w of change.writes ?? []) assert.equal(n.read(w.path), w.after, `${w.path} as predicted after ${change.argv.join(' ')}`);
  }
}

test('a fresh PVE 9 node without a subscription: no-subscription added, enterprise disabled (Ceph too), predicted byte for byte; a second plan is empty', async () => {
  const n = aptNode({
    files: {
      '/etc/apt/sources.list.d/debian.sources': DEBIAN_SOURCES,
      '/etc/apt/sources.list.d/pve-enterprise.sources': PVE_ENTERPRISE,
      '/etc/apt/sources.list.d/ceph.sources': CEPH_ENTERPRISE,
    },
  });
  try {
    const { ctx, facts, answers, changes } = await planFor(n);
    assert.equal(facts.subscription.status, 'notfound');
    assert.deepEqual(answers, { pve: 'no-subscription', ceph: 'no-subscription' }, 'detected: no subscription, a Ceph repository enabled');
    assert.deepEqual(facts.unfetched.sort(), ['https://enterprise.proxmox.com/debian/ceph-squid trixie', 'https://enterprise.proxmox.com/debian/pve trixie']);

    // before: apt-get update fails on both enterprise repositories, and verify says why
    const before = await repositoriesStep.verify(ctx, answers);
    assert.match(failed(before)[0]!, /the enterprise repository https:\/\/enterprise\.proxmox\.com\/debian\/pve trixie refuses this node: it has no active subscription/);

    assert.deepEqual(
      changes.map((c) => describeChange(c).replace(/--digest [0-9a-f]{64}/, '--digest D')),
      [
        `run pvesh set /nodes/${NODE_NAME}/apt/repositories --handle no-subscription --digest D`,
        `run pvesh set /nodes/${NODE_NAME}/apt/repositories --handle ceph-squid-no-subscription --digest D`,
        `run pvesh create /nodes/${NODE_NAME}/apt/repositories --path /etc/apt/sources.list.d/ceph.sources --index 0 --enabled 0 --digest D`,
        `run pvesh create /nodes/${NODE_NAME}/apt/repositories --path /etc/apt/sources.list.d/pve-enterprise.sources --index 0 --enabled 0 --digest D`,
      ],
    );
    assert.match(changes[0]!.reason, /subscription is notfound/);
    assert.match(changes[3]!.reason, /without a subscription it refuses this node \(401\).*apt has never fetched it\); Enabled: false keeps it/);
    assert.deepEqual(changes[0]!.writes, [
      { path: '/etc/apt/sources.list.d/proxmox.sources', before: null, after: 'Types: deb\nURIs: http://download.proxmox.com/debian/pve\nSuites: trixie\nComponents: pve-no-subscription\nSigned-By: /usr/share/keyrings/proxmox-archive-keyring.gpg\n' },
    ]);
    assert.equal(changes[3]!.writes![0]!.after, `${PVE_ENTERPRISE}Enabled: false\n`);
    assert.deepEqual(repositoriesStep.preflight!(facts, answers, n.node), []);

    await applyChecked(n, changes);
    assert.equal(n.read('/etc/apt/sources.list.d/debian.sources'), DEBIAN_SOURCES, "Debian's file is untouched (non-free-firmware kept)");
    assert.equal(
      n.read('/etc/apt/sources.list.d/ceph.sources'),
      `${CEPH_ENTERPRISE}Enabled: false\n\nTypes: deb\nURIs: http://download.proxmox.com/debian/ceph-squid\nSuites: trixie\nComponents: no-subscription\nSigned-By: /usr/share/keyrings/proxmox-archive-keyring.gpg\n`,
    );
    assert.deepEqual(failed(await repositoriesStep.verify(ctx, answers)), []);
    assert.deepEqual((await planFor(n, answers)).changes, [], 'a second plan is empty');

    const doc = await repositoriesStep.document!(ctx, answers);
    const rows = doc!.blocks.find((b) => b.kind === 'table');
    assert.ok(rows && rows.kind === 'table');
    assert.deepEqual(
      rows.rows.map((r) => [r[1], r[2]]),
      [
        ['Ceph squid enterprise', 'disabled'],
        ['Ceph squid no-subscription', 'enabled'],
        ['Debian main, updates', 'enabled'],
        ['Debian security', 'enabled'],
        ['Proxmox VE no-subscription', 'enabled'],
        ['Proxmox VE enterprise', 'disabled'],
      ],
    );
  } finally {
    n.done();
  }
});

test('with an active subscription the enterprise repository is kept and nothing is planned; Ceph without Ceph installed is left as is', async () => {
  const n = aptNode({ files: { '/etc/apt/sources.list.d/debian.sources': DEBIAN_SOURCES, '/etc/apt/sources.list.d/pve-enterprise.sources': PVE_ENTERPRISE } });
  n.exec.subscription = 'status: active\nmessage: \n';
  try {
    const { answers, changes, ctx } = await planFor(n);
    assert.deepEqual(answers, { pve: 'enterprise', ceph: 'leave' });
    assert.deepEqual(changes, []);
    assert.deepEqual(failed(await repositoriesStep.verify(ctx, answers)), []);
  } finally {
    n.done();
  }
});

test('switching back to enterprise re-enables the disabled stanza (Enabled: true) and disables no-subscription', async () => {
  const n = aptNode({
    files: {
      '/etc/apt/sources.list.d/debian.sources': DEBIAN_SOURCES,
      '/etc/apt/sources.list.d/pve-enterprise.sources': `${PVE_ENTERPRISE}Enabled: no\n`,
      '/etc/apt/sources.list.d/proxmox.sources': 'Types: deb\nURIs: http://download.proxmox.com/debian/pve\nSuites: trixie\nComponents: pve-no-subscription\n',
    },
  });
  n.exec.subscription = 'status: active\n';
  try {
    const { changes } = await planFor(n);
    await applyChecked(n, changes);
    assert.equal(n.read('/etc/apt/sources.list.d/pve-enterprise.sources'), `${PVE_ENTERPRISE}Enabled: true\n`);
    assert.equal(n.read('/etc/apt/sources.list.d/proxmox.sources'), 'Types: deb\nURIs: http://download.proxmox.com/debian/pve\nSuites: trixie\nComponents: pve-no-subscription\nEnabled: false\n');
    assert.deepEqual((await planFor(n)).changes, []);
  } finally {
    n.done();
  }
});

test('PVE 8: one-line files; no-subscription appended to /etc/apt/sources.list, the enterprise line commented out', async () => {
  const sourcesList = 'deb http://ftp.debian.org/debian bookworm main contrib\n\ndeb http://ftp.debian.org/debian bookworm-updates main contrib\n\n# security updates\ndeb http://security.debian.org bookworm-security main contrib\n';
  const n = aptNode({ codename: 'bookworm', major: 8, files: { '/etc/apt/sources.list': sourcesList, '/etc/apt/sources.list.d/pve-enterprise.list': 'deb https://enterprise.proxmox.com/debian/pve bookworm pve-enterprise\n' } });
  try {
    const { changes, answers, ctx } = await planFor(n);
    assert.deepEqual(answers, { pve: 'no-subscription', ceph: 'leave' });
    assert.deepEqual(
      changes.map((c) => c.writes!.map((w) => w.path)),
      [['/etc/apt/sources.list'], ['/etc/apt/sources.list.d/pve-enterprise.list']],
    );
    await applyChecked(n, changes);
    assert.equal(n.read('/etc/apt/sources.list'), `${sourcesList}\ndeb http://download.proxmox.com/debian/pve bookworm pve-no-subscription\n`);
    assert.equal(n.read('/etc/apt/sources.list.d/pve-enterprise.list'), '# deb https://enterprise.proxmox.com/debian/pve bookworm pve-enterprise\n');
    assert.match(changes[1]!.reason, /commented out, it stays in its file/);
    assert.deepEqual(failed(await repositoriesStep.verify(ctx, answers)), []);
    assert.deepEqual((await planFor(n, answers)).changes, []);
  } finally {
    n.done();
  }
});

test('a file changed after the plan: the stand-in refuses the stale digest and writes nothing', async () => {
  const n = aptNode({ files: { '/etc/apt/sources.list.d/debian.sources': DEBIAN_SOURCES, '/etc/apt/sources.list.d/pve-enterprise.sources': PVE_ENTERPRISE } });
  try {
    const { changes } = await planFor(n);
    n.write('/etc/apt/sources.list.d/extra.list', 'deb http://mirror.example/debian trixie main\n');
    const r = await n.exec.run(changes[0]!.argv);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /detected modified configuration - file changed by other user\? Try again\./);
    assert.equal(n.read('/etc/apt/sources.list.d/proxmox.sources'), null);
  } finally {
    n.done();
  }
});

test('bad answers are refused naming the field; preflight refuses enterprise without a subscription and "leave" with Ceph installed', async () => {
  await assert.rejects(parseAnswersFile('version: 1\nrepositories:\n  pve: community\n  ceph: leave\n', 'answers.yaml', [repositoriesStep]), /repositories\.pve/);
  await assert.rejects(parseAnswersFile('version: 1\nrepositories:\n  pve: no-subscription\n  ceph: maybe\n', 'answers.yaml', [repositoriesStep]), /repositories\.ceph/);
  const ok = await parseAnswersFile('version: 1\nrepositories:\n  pve: no-subscription\n  ceph: leave\n', 'answers.yaml', [repositoriesStep]);
  assert.deepEqual(ok.repositories, { pve: 'no-subscription', ceph: 'leave' });

  const n = aptNode({ files: { '/etc/apt/sources.list.d/debian.sources': DEBIAN_SOURCES, '/etc/apt/sources.list.d/pve-enterprise.sources': PVE_ENTERPRISE } });
  n.write('/usr/bin/ceph', '#!/bin/sh\n');
  n.exec.cephVersion = 'ceph version 19.2.3 (0123456789abcdef0123456789abcdef01234567) squid (stable)\n';
  try {
    const { facts } = await planFor(n, { pve: 'no-subscription', ceph: 'no-subscription' });
    assert.deepEqual(facts.ceph, { installed: true, release: 'squid' });
    const refusals = repositoriesStep.preflight!(facts, { pve: 'enterprise', ceph: 'leave' }, n.node).map((c) => c.label);
    assert.deepEqual(refusals, ['repositories.ceph: "leave" is only for a node without Ceph', 'repositories.pve: the enterprise repository needs an active subscription']);
    assert.equal(repositoriesStep.questions![1]!.detect!(facts as never), 'no-subscription', 'Ceph installed: never "leave" by default');
  } finally {
    n.done();
  }
});

test('pvesubscription and ceph --version are read as Proxmox prints them', () => {
  assert.deepEqual(parseSubscription(NO_SUBSCRIPTION), { status: 'notfound', detail: 'There is no subscription key' });
  assert.equal(parseSubscription('checktime: 1700000000\nkey: pve1c-0123456789\nstatus: Active\n').status, 'active');
  assert.equal(parseSubscription('garbage').status, 'unknown');
  assert.equal(parseCephRelease('ceph version 18.2.4 (e7ad5345525c7aa95470c26863873b581076945d) reef (stable)\n'), 'reef');
  assert.equal(classifySource({ uris: ['http://download.proxmox.com/debian/ceph-squid'], suites: ['trixie'], components: ['no-subscription'] }).kind, 'ceph');
});
