/**
 * The right package repositories (issue 16, item 1): a fresh PVE 9 node has
 * the enterprise repository enabled, and without a subscription `apt update`
 * fails on it with 401. The step offers enterprise (with a subscription) or
 * no-subscription, for Proxmox VE and for Ceph, through Proxmox's own
 * repository API so the files are written as Proxmox writes them.
 *
 *   probe    `pvesubscription get` (missing: unknown), /etc/os-release, the repository files,
 *            `pvesh get /nodes/NODE/apt/repositories` (standard repositories, their status, the digest),
 *            whether Ceph is installed (PVE/Ceph/Tools.pm check_ceph_installed: /usr/bin/ceph), and
 *            which repositories apt has never fetched (/var/lib/apt/lists); read-only, nothing downloaded
 *   plan     `pvesh set .../apt/repositories --handle H` adds (or enables) the chosen repository in
 *            the file and format Proxmox uses (PVE 9: proxmox.sources, ceph.sources); `pvesh create
 *            ... --path P --index N --enabled 0` disables the other channels (`Enabled: false`: nothing
 *            is deleted). Each call carries the digest it expects and the file it writes, predicted
 *            byte for byte (src/apt/repositories.ts), so the preview shows diffs and the engine backs
 *            the files up. Debian's files, the subscription and its web-UI notice are never touched.
 *   verify   `apt-get update` exits 0 and names no failing repository; the chosen repositories are
 *            enabled and the other channels not; Debian's repositories enabled (non-free-firmware kept)
 */
import type { Change, CommandChange } from '../src/engine/change.ts';
import type { Check, Step, StepContext } from '../src/engine/step.ts';
import { ask } from '../src/engine/questions.ts';
import { bullets, code, paragraph, table, type DocumentSection } from '../src/report/section.ts';
import {
  addRepositoryHandle,
  applyWrites,
  APT_LISTS_DIR,
  changeRepository,
  codenameFromOsRelease,
  readRepositories,
  releaseFilename,
  SOURCES_LIST,
  SOURCES_LIST_D,
  standardEntries,
  standardEntryOf,
  standardStatus,
  type ApiWrite,
  type AptTree,
  type Channel,
  type RepositoriesResult,
} from '../src/apt/repositories.ts';
import { classifySource, describeClass, describeEntry } from '../src/apt/sources.ts';
import { explainFailure, parseAptUpdate } from '../src/apt/apt-update.ts';

export type SubscriptionStatus = 'active' | 'new' | 'notfound' | 'invalid' | 'expired' | 'suspended' | 'unknown';

export interface RepositoriesFacts {
  node: string;
  codename: string;
  subscription: { status: SubscriptionStatus; detail: string };
  tree: AptTree;
  /** Proxmox's API answer, or why there is none. */
  api: RepositoriesResult | { error: string };
  ceph: { installed: boolean; release: string | null };
  /** Enabled Proxmox and Ceph repositories apt holds no Release file of: never fetched (on a fresh node: the enterprise one, refused without a subscription). */
  unfetched: string[];
}

export type RepositoriesAnswers = {
  pve: 'enterprise' | 'no-subscription';
  ceph: 'enterprise' | 'no-subscription' | 'leave';
};

const apiPath = (node: string) => `/nodes/${node}/apt/repositories`;

/** `pvesubscription get`: "status: active" among "key: value" lines. */
export function parseSubscription(output: string): { status: SubscriptionStatus; detail: string } {
  const fields = new Map<string, string>();
  for (const line of output.split('\n')) {
    const m = /^(\w+):\s?(.*)$/.exec(line.trim());
    if (m) fields.set(m[1]!.toLowerCase(), m[2]!.trim());
  }
  const raw = (fields.get('status') ?? '').toLowerCase();
  const known: SubscriptionStatus[] = ['active', 'new', 'notfound', 'invalid', 'expired', 'suspended'];
  const status = known.includes(raw as SubscriptionStatus) ? (raw as SubscriptionStatus) : 'unknown';
  return { status, detail: fields.get('message') ?? (raw ? `status ${raw}` : 'no status line') };
}

/** `ceph --version`: "ceph version 19.2.1 (...) squid (stable)" -> squid. */
export function parseCephRelease(output: string): string | null {
  return /^ceph version \S+ \([^)]*\) ([a-z]+)/m.exec(output)?.[1] ?? null;
}

/** The Ceph release to configure: the installed one, else the one configured, else Proxmox's default for this Debian release (PVE/Ceph/Releases.pm). */
export function cephReleaseFor(facts: Pick<RepositoriesFacts, 'ceph' | 'tree' | 'codename'>): string {
  if (facts.ceph.release) return facts.ceph.release;
  for (const file of readRepositories(facts.tree).files) {
    for (const repo of file.repositories) {
      const c = classifySource(repo);
      if (c.kind === 'ceph' && repo.suites.includes(facts.codename)) return c.release;
    }
  }
  return facts.codename === 'bookworm' ? 'quincy' : 'squid';
}

async function readTree(ctx: StepContext): Promise<AptTree> {
  const files = new Map<string, string>();
  const others = new Map<string, 'dir' | 'other'>();
  const note = async (path: string) => {
    try {
      const content = await ctx.files.read(path);
      if (content !== null) files.set(path, content);
    } catch (error) {
      // a directory is skipped by the API; anything else unreadable is one of its errors
      others.set(path, (error as NodeJS.ErrnoException).code === 'EISDIR' ? 'dir' : 'other');
    }
  };
  await note(SOURCES_LIST);
  const names = await ctx.files.list(SOURCES_LIST_D);
  for (const name of names) await note(`${SOURCES_LIST_D}/${name}`);
  const dirMeta = await ctx.files.meta(SOURCES_LIST_D);
  return { files, others, listDir: names.length > 0 || dirMeta ? 'dir' : 'missing' };
}

async function readCodename(ctx: StepContext): Promise<string> {
  const text = await ctx.files.read('/etc/os-release');
  return (text ? codenameFromOsRelease(text) : null) ?? ctx.node.debian?.codename ?? 'trixie';
}

/** The chosen handles: PVE's, and Ceph's unless left as is. */
function wanted(facts: RepositoriesFacts, answers: RepositoriesAnswers): { pve: string; ceph: string | null } {
  return { pve: answers.pve, ceph: answers.ceph === 'leave' ? null : `ceph-${cephReleaseFor(facts)}-${answers.ceph}` };
}

const subscriptionWords = (s: RepositoriesFacts['subscription']) => (s.status === 'unknown' ? `unknown (${s.detail})` : s.status);

function addReason(facts: RepositoriesFacts, handle: string, channel: Channel): string {
  const sub = `the subscription is ${subscriptionWords(facts.subscription)}`;
  const what = handle.startsWith('ceph-') ? `the Ceph ${handle.replace(/^ceph-|-[a-z-]+$/g, '')} ${channel} repository` : `the Proxmox VE ${channel} repository`;
  return channel === 'enterprise' ? `${what}: ${sub}, and it gives Proxmox's tested updates` : `${what}: ${sub}, and it needs none to give updates`;
}

function disableReason(facts: RepositoriesFacts, what: string, channel: Channel, uri: string, suite: string, oneLine: boolean): string {
  const why =
    channel === 'enterprise'
      ? facts.subscription.status === 'active'
        ? 'another channel was chosen'
        : `without a subscription it refuses this node (401) and apt-get update fails${facts.unfetched.includes(`${uri} ${suite}`) ? '; apt has never fetched it' : ''}`
      : 'another channel was chosen';
  return `disable ${what} (${why}); ${oneLine ? 'commented out, it stays in its file' : 'Enabled: false keeps it in its file'} to enable again`;
}

/** The API calls that take the files to the answers, each with the file it writes as predicted. */
export function planCalls(facts: RepositoriesFacts, answers: RepositoriesAnswers): CommandChange[] {
  if ('error' in facts.api) throw new Error(`needs Proxmox's repository API: pvesh get ${apiPath(facts.node)} failed: ${facts.api.error}`);
  let tree = facts.tree;
  const first = readRepositories(tree);
  if (first.errors.length) throw new Error(`Proxmox cannot read ${first.errors.map((e) => `${e.path} (${e.error})`).join(', ')}: fix that file first`);
  if (first.digest !== facts.api.digest) {
    throw new Error(`Proxmox's API reads the repository files differently from pve-baseline (digest ${facts.api.digest} against ${first.digest}): not planning changes it cannot predict`);
  }
  const changes: CommandChange[] = [];
  const offered = standardEntries(facts.codename);
  const call = (argv: string[], writes: ApiWrite[], reason: string) => {
    if (writes.length === 0) return;
    changes.push({ kind: 'command', argv, writes: writes.map((w) => ({ path: w.path, before: w.before, after: w.after })), reason });
    tree = applyWrites(tree, writes);
  };
  const want = wanted(facts, answers);
  for (const handle of [want.pve, want.ceph]) {
    if (handle === null) continue;
    const entry = offered.find((e) => e.handle === handle);
    if (!entry) throw new Error(`Proxmox offers no repository ${handle} on Debian ${facts.codename} (offered: ${offered.map((e) => e.handle).join(', ')})`);
    const { files, digest } = readRepositories(tree);
    if (standardStatus(files, facts.codename).find((s) => s.handle === handle)?.status === true) continue;
    call(['pvesh', 'set', apiPath(facts.node), '--handle', handle, '--digest', digest], addRepositoryHandle(tree, facts.codename, handle, digest), addReason(facts, handle, entry.channel));
  }
  // every other channel of the same product that is enabled: disabled, never deleted
  const { files } = readRepositories(tree);
  for (const file of files) {
    file.repositories.forEach((repo, index) => {
      if (!repo.enabled) return;
      const entry = standardEntryOf(repo, facts.codename);
      if (!entry) return;
      const isPve = entry.product === 'pve';
      if (isPve ? entry.handle === want.pve : want.ceph === null || entry.handle === want.ceph) return;
      const digest = readRepositories(tree).digest;
      const what = isPve ? `the Proxmox VE ${entry.channel} repository` : `the ${entry.name} repository`;
      call(
        ['pvesh', 'create', apiPath(facts.node), '--path', file.path, '--index', String(index), '--enabled', '0', '--digest', digest],
        changeRepository(tree, file.path, index, false, digest),
        disableReason(facts, what, entry.channel, repo.uris[0] ?? '', facts.codename, file.fileType === 'list'),
      );
    });
  }
  return changes;
}

/** The chosen repositories enabled, the other channels not, from the files as Proxmox reads them. */
function stateChecks(tree: AptTree, codename: string, want: { pve: string; ceph: string | null }): Check[] {
  const { files, errors } = readRepositories(tree);
  const status = standardStatus(files, codename);
  const enabledOthers = (product: (h: string) => boolean, handle: string) => status.filter((s) => product(s.handle) && s.handle !== handle && s.status === true).map((s) => s.handle);
  const isCeph = (h: string) => h.startsWith('ceph-');
  const checks: Check[] = [
    { label: `The Proxmox VE ${want.pve} repository is enabled`, ok: status.find((s) => s.handle === want.pve)?.status === true, detail: errors.length ? `unreadable: ${errors.map((e) => e.path).join(', ')}` : `standard repositories: ${status.filter((s) => s.status !== undefined).map((s) => `${s.handle} ${s.status ? 'on' : 'off'}`).join(', ') || 'none configured'}` },
  ];
  const otherPve = enabledOthers((h) => !isCeph(h), want.pve);
  checks.push({ label: 'No other Proxmox VE channel is enabled', ok: otherPve.length === 0, ...(otherPve.length ? { detail: `enabled: ${otherPve.join(', ')}` } : {}) });
  if (want.ceph) {
    checks.push({ label: `The ${want.ceph} repository is enabled`, ok: status.find((s) => s.handle === want.ceph)?.status === true });
    const otherCeph = enabledOthers(isCeph, want.ceph);
    checks.push({ label: 'No other Ceph channel is enabled', ok: otherCeph.length === 0, ...(otherCeph.length ? { detail: `enabled: ${otherCeph.join(', ')}` } : {}) });
  }
  // Debian: main and security enabled; components as they were (non-free-firmware is never removed here)
  const debian = files.flatMap((f) => f.repositories.map((r) => ({ r, c: classifySource(r), path: f.path }))).filter((x) => x.c.kind === 'debian' && x.r.enabled && x.r.types.includes('deb'));
  const parts = new Set(debian.flatMap((x) => (x.c.kind === 'debian' ? x.c.parts : [])));
  const firmware = debian.filter((x) => x.r.components.includes('non-free-firmware')).length;
  checks.push({
    label: "Debian's repositories are enabled (main and security)",
    ok: parts.has('main') && parts.has('security'),
    detail: debian.length ? `${debian.map((x) => `${x.path}: ${describeEntry({ ...x.r, enabled: true })}`).join('; ')}${firmware ? '' : '; no non-free-firmware component (CPU microcode and firmware updates come from it)'}` : 'none enabled',
  });
  return checks;
}

export const repositoriesStep: Step<RepositoriesFacts, RepositoriesAnswers> = {
  id: 'repositories',
  title: 'Package repositories',
  summary: 'The Proxmox VE and Ceph repositories this node may use (enterprise with a subscription, no-subscription without), set through Proxmox\'s own API, so apt-get update succeeds.',
  scope: 'node',
  risk: 'safe',

  questions: [
    ask.select({
      id: 'pve',
      prompt: 'Which Proxmox VE repository?',
      help: 'Enterprise needs an active subscription (without one it refuses the node with 401 and apt-get update fails); no-subscription needs none. The other one is disabled (Enabled: false), not deleted.',
      choices: [
        { value: 'enterprise', label: 'Enterprise', hint: 'tested updates; needs a subscription' },
        { value: 'no-subscription', label: 'No-subscription', hint: 'no subscription needed; less tested' },
      ],
      detect: (facts) => (facts.subscription.status === 'active' ? 'enterprise' : 'no-subscription'),
    }),
    ask.select({
      id: 'ceph',
      prompt: 'Which Ceph repository?',
      help: 'Ceph\'s packages come from their own repository with the same channels. "Leave as is" is only for a node without Ceph installed.',
      choices: [
        { value: 'enterprise', label: 'Enterprise', hint: 'needs a subscription' },
        { value: 'no-subscription', label: 'No-subscription' },
        { value: 'leave', label: 'Leave as is', hint: 'only without Ceph installed' },
      ],
      detect: (facts) => {
        const enabledCeph = readRepositories(facts.tree).files.some((f) => f.repositories.some((r) => r.enabled && classifySource(r).kind === 'ceph'));
        if (!facts.ceph.installed && !enabledCeph) return 'leave';
        return facts.subscription.status === 'active' ? 'enterprise' : 'no-subscription';
      },
    }),
  ],

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node (pvesh, pvesubscription)'),

  async probe(ctx) {
    const node = ctx.node.hostname;
    const sub = await ctx.exec.run(['pvesubscription', 'get']);
    const subscription = sub.notFound ? { status: 'unknown' as const, detail: 'pvesubscription is not installed' } : sub.exitCode === 0 ? parseSubscription(sub.stdout) : { status: 'unknown' as const, detail: (sub.stderr || sub.stdout).trim().split('\n')[0] || `pvesubscription exited ${sub.exitCode}` };
    const codename = await readCodename(ctx);
    const tree = await readTree(ctx);
    const r = await ctx.exec.run(['pvesh', 'get', apiPath(node), '--output-format', 'json']);
    let api: RepositoriesFacts['api'];
    if (r.exitCode !== 0) api = { error: (r.stderr || r.stdout).trim().split('\n')[0] || `exit ${r.exitCode}` };
    else {
      try {
        api = JSON.parse(r.stdout) as RepositoriesResult;
        if (typeof api.digest !== 'string' || !Array.isArray(api['standard-repos'])) api = { error: 'its answer has no digest or standard-repos' };
      } catch {
        api = { error: 'its answer is not JSON' };
      }
    }
    // PVE/Ceph/Tools.pm check_ceph_installed: /usr/bin/ceph, and no install in progress
    const installed = (await ctx.files.meta('/usr/bin/ceph')) !== null && (await ctx.files.meta('/run/pve-ceph-install-flag')) === null;
    let release: string | null = null;
    if (installed) {
      const v = await ctx.exec.run(['ceph', '--version']);
      if (v.exitCode === 0) release = parseCephRelease(v.stdout);
    }
    const lists = new Set((await ctx.files.list(APT_LISTS_DIR)).map((n) => `${APT_LISTS_DIR}/${n}`));
    const unfetched: string[] = [];
    for (const file of readRepositories(tree).files) {
      for (const repo of file.repositories) {
        const kind = classifySource(repo).kind;
        if (!repo.enabled || (kind !== 'pve' && kind !== 'ceph')) continue;
        for (const uri of repo.uris) {
          for (const suite of repo.suites) {
            if (!lists.has(releaseFilename(uri, suite, false)) && !lists.has(releaseFilename(uri, suite, true))) unfetched.push(`${uri.replace(/\/+$/, '')} ${suite}`);
          }
        }
      }
    }
    return { node, codename, subscription, tree, api, ceph: { installed, release }, unfetched };
  },

  preflight(facts, answers) {
    const checks: Check[] = [];
    if (answers.ceph === 'leave' && facts.ceph.installed) {
      checks.push({ label: 'repositories.ceph: "leave" is only for a node without Ceph', ok: false, detail: `Ceph ${facts.ceph.release ?? ''} is installed here: choose enterprise or no-subscription` });
    }
    for (const [field, channel] of [['pve', answers.pve], ['ceph', answers.ceph]] as const) {
      if (channel === 'enterprise' && facts.subscription.status !== 'active' && facts.subscription.status !== 'unknown') {
        checks.push({ label: `repositories.${field}: the enterprise repository needs an active subscription`, ok: false, detail: `pvesubscription says ${facts.subscription.status} (${facts.subscription.detail}); without one apt-get update fails on it with 401` });
      }
    }
    return checks;
  },

  plan(facts, answers): Change[] {
    return planCalls(facts, answers);
  },

  preview(facts) {
    const lines: string[] = [`Subscription: ${subscriptionWords(facts.subscription)}.`];
    if (facts.unfetched.length) lines.push(`apt has never fetched: ${facts.unfetched.join(', ')}.`);
    return lines;
  },

  async verify(ctx, answers) {
    const checks: Check[] = [];
    const r = await ctx.exec.run(['apt-get', 'update']);
    const failures = parseAptUpdate(`${r.stdout}\n${r.stderr}`);
    checks.push({
      label: 'apt-get update succeeds for every repository',
      ok: r.exitCode === 0 && failures.length === 0,
      detail: failures.length ? failures.map(explainFailure).join('; ') : r.exitCode === 0 ? 'no failing repository' : `exit ${r.exitCode}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join('; ')}`,
    });
    const tree = await readTree(ctx);
    const codename = await readCodename(ctx);
    const installed = (await ctx.files.meta('/usr/bin/ceph')) !== null;
    let release: string | null = null;
    if (answers.ceph !== 'leave' && installed) {
      const v = await ctx.exec.run(['ceph', '--version']);
      if (v.exitCode === 0) release = parseCephRelease(v.stdout);
    }
    const ceph = answers.ceph === 'leave' ? null : `ceph-${cephReleaseFor({ ceph: { installed, release }, tree, codename })}-${answers.ceph}`;
    return [...checks, ...stateChecks(tree, codename, { pve: answers.pve, ceph })];
  },

  async document(ctx, answers) {
    const tree = await readTree(ctx);
    const codename = await readCodename(ctx);
    const { files } = readRepositories(tree);
    const rows: string[][] = [];
    for (const file of files) {
      file.repositories.forEach((repo, index) => {
        const c = classifySource(repo);
        const why =
          c.kind === 'debian'
            ? "Debian's packages" + (c.parts.includes('security') ? ' and security fixes' : '')
            : c.kind === 'pve' || c.kind === 'ceph'
              ? c.channel === 'enterprise'
                ? 'tested updates for nodes with a subscription'
                : c.channel === 'no-subscription'
                  ? 'updates without a subscription'
                  : c.channel === 'test'
                    ? 'packages before their release'
                    : 'a Proxmox repository'
              : 'added on this node';
        rows.push([code(`${file.path}#${index}`), describeClass(c), repo.enabled ? 'enabled' : 'disabled', `${repo.uris.join(' ')} ${repo.suites.join(' ')} ${repo.components.join(' ')}`, repo.enabled ? why : 'kept disabled (Enabled: false / commented out), not deleted']);
      });
    }
    const chosen = answers.pve ? `The baseline chose the Proxmox VE ${answers.pve} repository${answers.ceph && answers.ceph !== 'leave' ? ` and the Ceph ${answers.ceph} repository` : ''}.` : 'pve-baseline has not set the repositories on this node.';
    return {
      heading: 'Package repositories',
      blocks: [
        paragraph(`${chosen} Enterprise repositories are for nodes with a subscription; without one they refuse the node and apt-get update fails, so the no-subscription ones are used instead. Other channels are disabled, never deleted. Proxmox's packaged files (including the web UI's subscription notice) are not modified.`),
        table(['entry', 'what', 'state', 'source', 'why'], rows),
        bullets([`Debian release: ${codename}`, `Set through Proxmox's API (${code(`pvesh get ${apiPath(ctx.node.hostname)}`)}), as the web UI's Repositories panel does.`]),
      ],
      evidence: [`read ${SOURCES_LIST} and ${SOURCES_LIST_D}/`],
    } satisfies DocumentSection;
  },
};
