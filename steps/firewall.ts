/**
 * The Proxmox VE firewall on, inbound DROP, without shutting the operator out
 * (every seed: "enable the firewall"; every forum thread after it: "and then I
 * could not reach the web UI").
 *
 * What it sets, through pvesh so Proxmox's own locks apply:
 *   [IPSET management] in cluster.fw  the operator's address and the management networks; Proxmox
 *                                     opens 22, 8006, 3128 and 5900-5999 to it (and merges the local
 *                                     network in) by itself, so no port rules are needed
 *   IN Ping(ACCEPT)                   only when the operator wants ping answered
 *   host.fw enable: 1                 written out, though it is Proxmox's default
 *   cluster.fw enable: 1, policy_in: DROP   the one change that makes it live
 * The administrator's own rules, aliases and ipsets stay as they are, in their order.
 *
 * The lockout protocol (src/engine/guarded-apply.ts), with every pvesh call's
 * file backed up and restored byte for byte by the node's own revert:
 *   preflight       before anything is shown: the new rules, evaluated as Proxmox compiles them
 *                   (src/pve/firewall-compile.ts), keep the operator's address (and in a cluster every
 *                   peer) on 22 and 8006; `pve-firewall compile` finds no rule it would skip; an
 *                   nftables daemon older than 1.2.0 would replace the local network by the set
 *   staged          the ipset entries and the ping rule are written while the firewall is still off
 *   beforeActivate  `pve-firewall compile` on the staged files prints no warning
 *   activate        pvesh set /cluster/firewall/options --enable 1 --policy_in DROP (with its digest)
 *   verify          the options, the set and the daemon's state are as intended (read-only: `check`)
 *   prove           `pve-firewall simulate` from the operator's address to 22 and 8006 says ACCEPT;
 *                   Proxmox's simulator compiles nothing while the firewall is off (Firewall.pm
 *                   compile returns empty rulesets), so it can only run once the change is live
 *   access          a new SSH login from the operator's address and a request to 8006 from it
 *                   (pveproxy's access log), or `pve-baseline confirm` from a new session
 * If the files cannot be put back, the revert stops the firewall (`pve-firewall stop`) as a last resort.
 */
import type { Change, CommandChange } from '../src/engine/change.ts';
import type { Check, Step, StepContext } from '../src/engine/step.ts';
import { ask } from '../src/engine/questions.ts';
import { bullets, code, paragraph, table, type DocumentSection } from '../src/report/section.ts';
import { describeLogin, watchForLogin } from '../src/ssh/login-watch.ts';
import { describeWebRequest, watchForWebRequest } from '../src/pve/access-log.ts';
import { readCompileWarnings, readLocalnet, readStatus, simulateTcp, type FirewallStatus, type LocalNet } from '../src/pve/firewall-cli.ts';
import { compileHostFirewall, simulate } from '../src/pve/firewall-compile.ts';
import type { HostFirewall } from '../src/pve/firewall-ir.ts';
import { addressInCidrs, normaliseCidr, unmapAddress } from '../src/pve/firewall-rules.ts';
import { hostIn } from '../src/ssh/sshd-access.ts';
import { firewallModel, FIREWALL_FILES, ringPeers, type FirewallModel, type Peer } from '../src/pve/firewall-model.ts';

/** What a careful administrator opens to the management set: the ports Proxmox opens to it itself. */
export const MANAGEMENT_PORTS = [22, 8006] as const;
/** The first proxmox-firewall (nftables) that merges local_network into the management set. */
const NFT_MERGES_LOCAL_NETWORK = '1.2.0';

export type IcmpChoice = 'management' | 'anywhere' | 'none';

export type FirewallAnswers = {
  management: string[];
  icmp: IcmpChoice;
  cluster_networks?: string[];
  revert_seconds: number;
};

export interface FirewallFacts {
  node: string;
  clusterFw: string | null;
  hostFw: string | null;
  localnet: LocalNet;
  /** What `pve-firewall compile` says of the files as they are now. */
  compile: { warnings: string[] } | { error: string };
  /** Which daemon enforces the rules: host.fw `nftables: 1` means proxmox-firewall. */
  daemon: 'iptables' | 'nftables';
  /** proxmox-firewall's package version, on an nftables node. */
  nftablesVersion?: string;
  corosyncConf: string | null;
  /** The other cluster nodes, each with the node's own network that holds it (or its address alone). */
  peers: (Peer & { network: string })[];
  status: FirewallStatus | { error: string };
  /** Where the operator is connected from (IPv4-mapped addresses unmapped); undefined on the console. */
  operator?: string;
}

// --- what the answers ask for ------------------------------------------------

/** The plan's state after each pvesh call, and the calls. */
function planned(facts: FirewallFacts, answers: FirewallAnswers): { model: FirewallModel; changes: CommandChange[] } {
  const model = firewallModel(facts.clusterFw, facts.hostFw);
  const changes: CommandChange[] = [];
  const wanted = wantedEntries(facts, answers);
  const clusterLive = model.clusterEnabled();

  // Each call writes a whole file; what it is expected to write is the model after it.
  const call = (argv: string[], file: 'cluster' | 'host', reason: string, edit: () => void, activates = false) => {
    const before = model.text(file);
    edit();
    changes.push({
      kind: 'command',
      argv,
      writes: [{ path: FIREWALL_FILES(facts.node)[file], before, after: model.text(file) }],
      reason,
      ...(activates ? { activates: true as const } : {}),
      // host.fw is this node's own file (/etc/pve/nodes/NODE/host.fw): a second node of the cluster still needs this call.
      ...(file === 'host' ? { scope: 'node' as const } : {}),
    });
  };

  if (!model.hasIpset('management')) {
    call(['pvesh', 'create', '/cluster/firewall/ipset', '--name', 'management', '--comment', 'pve-baseline: hosts that may manage the cluster'], 'cluster', 'the management IP set: Proxmox opens SSH, the web UI, SPICE and the consoles to it', () => model.addIpset('management', 'pve-baseline: hosts that may manage the cluster'));
  }
  // pvesh puts a new entry first (IPSet.pm create_ip unshifts it): added last to first, they read in the order given.
  const missing = wanted.filter((w) => !model.ipsetHas('management', w.cidr));
  for (const entry of [...missing].reverse()) {
    call(['pvesh', 'create', '/cluster/firewall/ipset/management', '--cidr', entry.cidr, '--comment', entry.comment], 'cluster', `${entry.cidr} may manage the node (${entry.why})`, () => model.addIpsetEntry('management', entry.cidr, entry.comment));
  }

  const ping = model.pingRule();
  const wantSource = answers.icmp === 'management' ? '+management' : undefined;
  const pingRight = answers.icmp === 'none' ? ping === undefined || !ping.ours : ping !== undefined && ping.source === wantSource;
  if (!pingRight) {
    if (ping?.ours) {
      call(['pvesh', 'delete', `/cluster/firewall/rules/${ping.pos}`], 'cluster', answers.icmp === 'none' ? 'ping is no longer answered' : 'the ping rule changes its source', () => model.deleteRule(ping.pos));
    }
    if (answers.icmp !== 'none') {
      const comment = `pve-baseline: ping from ${answers.icmp === 'management' ? 'the management set' : 'anywhere'}`;
      call(
        ['pvesh', 'create', '/cluster/firewall/rules', '--type', 'in', '--action', 'ACCEPT', '--macro', 'Ping', ...(wantSource ? ['--source', wantSource] : []), '--enable', '1', '--comment', comment],
        'cluster',
        `answer ping (ICMP echo) from ${answers.icmp === 'management' ? 'the management set' : 'anywhere'}; DROP would swallow it`,
        () => model.addPingRule(wantSource, comment),
      );
    }
  }

  if (model.option('host', 'enable') !== '1') {
    call(
      ['pvesh', 'set', `/nodes/${facts.node}/firewall/options`, '--enable', '1', '--digest', model.digest('host')],
      'host',
      'the node firewall on, written out (it is on by default, but only an explicit value survives a later default change)',
      () => model.setOption('host', 'enable', '1'),
      // With the cluster firewall already on, this is the call that makes the node's rules live.
      clusterLive,
    );
  }
  if (model.option('cluster', 'enable') !== '1' || model.option('cluster', 'policy_in') !== 'DROP') {
    call(
      ['pvesh', 'set', '/cluster/firewall/options', '--enable', '1', '--policy_in', 'DROP', '--digest', model.digest('cluster')],
      'cluster',
      'the firewall on for the datacenter, inbound DROP: only the management set, the rules and established connections get in',
      () => {
        model.setOption('cluster', 'enable', '1');
        model.setOption('cluster', 'policy_in', 'DROP');
      },
      true,
    );
  }
  return { model, changes };
}

interface WantedEntry {
  cidr: string;
  comment: string;
  why: string;
}

function wantedEntries(facts: FirewallFacts, answers: FirewallAnswers): WantedEntry[] {
  const out: WantedEntry[] = [];
  const add = (cidr: string, why: string) => {
    if (!out.some((e) => e.cidr === cidr)) out.push({ cidr, why, comment: `pve-baseline: ${why}` });
  };
  for (const cidr of answers.management) add(cidr, cidr === facts.operator ? 'the operator address pve-baseline ran from' : 'management network');
  for (const cidr of answers.cluster_networks ?? []) add(cidr, 'cluster network');
  return out;
}

/** The intended files, compiled as Proxmox compiles them. */
function compiled(facts: FirewallFacts, clusterFw: string | null, hostFw: string | null, now?: number): HostFirewall {
  return compileHostFirewall({
    clusterFw: clusterFw ?? undefined,
    hostFw: hostFw ?? undefined,
    detectedLocalNetwork: facts.localnet.network ?? '127.0.0.0/8',
    nodename: facts.node,
    ...(facts.corosyncConf ? { corosyncConf: facts.corosyncConf } : {}),
    ...(now !== undefined ? { now } : {}),
  });
}

/** Who must keep 22 and 8006: the operator's address, and in a cluster every peer's. */
function mustReach(facts: FirewallFacts): { who: string; address: string }[] {
  return [...(facts.operator ? [{ who: 'you (this session)', address: facts.operator }] : []), ...facts.peers.map((p) => ({ who: `cluster node ${p.name}`, address: p.address }))];
}

/** 22 and 8006 from each address that must keep them, as the compiled rules decide. */
function reachChecks(fw: HostFirewall, facts: FirewallFacts): Check[] {
  return mustReach(facts).flatMap(({ who, address }) => portChecks(fw, address, `${who} at ${address} reach${who.startsWith('you') ? '' : 'es'}`));
}

/** tcp/22 and tcp/8006 from `address`, as the compiled rules decide: `LABEL tcp/PORT`, and what drops it. */
function portChecks(fw: HostFirewall, address: string, label: string): Check[] {
  return MANAGEMENT_PORTS.map((port) => {
    const r = simulate(fw, { source: address, proto: 'tcp', dport: port });
    const by = r.decidedBy ? r.decidedBy.origin : `the inbound policy (${fw.policyIn})`;
    return { label: `${label} tcp/${port}`, ok: r.verdict === 'ACCEPT', ...(r.verdict === 'ACCEPT' ? {} : { detail: `${r.verdict} by ${by}` }) };
  });
}

/** proxmox-firewall's version against the one that merges the local network (Debian versions: 1.1.2 < 1.2.0~1 < 1.2.0). */
function olderThan(version: string, wanted: string): boolean {
  const parts = (v: string) => v.split(/[^0-9]+/).filter(Boolean).map(Number);
  const a = parts(version);
  const b = parts(wanted);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  }
  return /~/.test(version);
}

function finalTexts(facts: FirewallFacts, changes: readonly Change[]): { clusterFw: string | null; hostFw: string | null } {
  const files = FIREWALL_FILES(facts.node);
  const last = (path: string, fallback: string | null) => {
    let text = fallback;
    for (const c of changes) for (const w of c.kind === 'command' ? (c.writes ?? []) : []) if (w.path === path && w.after !== undefined) text = w.after;
    return text;
  };
  return { clusterFw: last(files.cluster, facts.clusterFw), hostFw: last(files.host, facts.hostFw) };
}

// --- the step ----------------------------------------------------------------

export const firewallStep: Step<FirewallFacts, FirewallAnswers> = {
  id: 'firewall',
  title: 'Proxmox firewall',
  summary: 'The datacenter and node firewall on with inbound DROP; SSH and the web UI stay open to your management networks, proven from a new session.',
  scope: 'datacenter',
  risk: 'lockout',

  questions: [
    ask.cidrs({
      id: 'management',
      prompt: 'Addresses and networks that may manage this node (SSH, web UI, consoles)',
      help: 'They go into the management IP set; Proxmox opens 22, 8006, 3128 and 5900-5999 to it and adds the local network itself. Your own address must be among them. Separated by spaces.',
      detect: (facts) => [...new Set([...(facts.operator ? [facts.operator] : []), ...(facts.localnet.network ? [facts.localnet.network] : [])])],
      maxNetworks: 64,
      normalise: normaliseCidr,
      everything: 'with the whole Internet in the management set the firewall keeps nobody out; give your networks instead',
    }),
    ask.select({
      id: 'icmp',
      prompt: 'Answer ping (ICMP echo)?',
      help: 'Inbound DROP swallows ping too. Monitoring usually wants it from the management networks; Proxmox needs none of it.',
      choices: [
        { value: 'management', label: 'From the management set', hint: 'monitoring and you' },
        { value: 'anywhere', label: 'From anywhere' },
        { value: 'none', label: 'Not at all', hint: 'the node stays silent' },
      ],
      detect: () => 'management',
    }),
    ask.cidrs({
      id: 'cluster_networks',
      prompt: 'Cluster networks (corosync, migration, root SSH between nodes)',
      help: 'Every peer node must be inside the management set or the local network, or the cluster breaks. Separated by spaces.',
      when: (_answers, facts) => facts.peers.length > 0,
      detect: (facts) => [...new Set(facts.peers.map((p) => p.network))],
      maxNetworks: 64,
      normalise: normaliseCidr,
      everything: 'give the cluster networks themselves',
    }),
    ask.revertWindow({
      id: 'revert_seconds',
      prompt: 'Seconds you have to prove access before the node switches the firewall back',
      help: 'The node restores both firewall files by itself unless you log in again and open the web UI in time, even if this session drops or the node reboots.',
    }),
  ],

  requires: (node) => (node.proxmox ? undefined : 'needs a Proxmox VE node'),

  async probe(ctx) {
    const node = ctx.node.hostname.split('.')[0]!;
    const files = FIREWALL_FILES(node);
    const hostFw = await ctx.files.read(files.host);
    const daemon = /^\s*nftables:\s*1\s*$/m.test(hostFw ?? '') ? 'nftables' : 'iptables';
    const corosyncConf = await ctx.files.read('/etc/pve/corosync.conf');
    let nftablesVersion: string | undefined;
    if (daemon === 'nftables') {
      const r = await ctx.exec.run(['dpkg-query', '-W', '-f', '${Version}', 'proxmox-firewall'], { timeoutMs: 30_000 });
      if (r.exitCode === 0 && r.stdout.trim()) nftablesVersion = r.stdout.trim();
    }
    return {
      node,
      clusterFw: await ctx.files.read(files.cluster),
      hostFw,
      localnet: await readLocalnet(ctx.exec),
      compile: await readCompileWarnings(ctx.exec),
      daemon,
      ...(nftablesVersion ? { nftablesVersion } : {}),
      corosyncConf,
      peers: (corosyncConf ? ringPeers(corosyncConf, node) : []).map((p) => ({ ...p, network: networkHolding(ctx, p.address) })),
      status: await readStatus(ctx.exec),
      ...(ctx.node.session.kind === 'ssh' ? { operator: unmapAddress(ctx.node.session.clientAddress) } : {}),
    };
  },

  plan(facts, answers) {
    return planned(facts, answers).changes;
  },

  preflight(facts, answers) {
    const checks: Check[] = [];
    if ('error' in facts.compile) checks.push({ label: 'pve-firewall compile reads the firewall files', ok: false, detail: facts.compile.error });
    else {
      const warnings = facts.compile.warnings;
      checks.push({
        label: 'pve-firewall compile finds no rule it would skip',
        ok: warnings.length === 0,
        ...(warnings.length ? { detail: `Proxmox skips these while DROP applies: ${warnings.join('; ')}. Fix or delete them first` } : {}),
      });
    }
    if (facts.daemon === 'nftables' && (!facts.nftablesVersion || olderThan(facts.nftablesVersion, NFT_MERGES_LOCAL_NETWORK))) {
      checks.push({
        label: `the nftables firewall merges the local network into the management set (proxmox-firewall ${NFT_MERGES_LOCAL_NETWORK} or later)`,
        ok: false,
        detail: `proxmox-firewall ${facts.nftablesVersion ?? '(version unknown)'} replaces the local network with the management set: update it first, or set nftables: 0 in host.fw`,
      });
    }
    const { changes } = planned(facts, answers);
    const after = finalTexts(facts, changes);
    const fw = compiled(facts, after.clusterFw, after.hostFw);
    if (fw.warnings.length) checks.push({ label: 'the new configuration parses without a warning', ok: false, detail: fw.warnings.join('; ') });
    if (!facts.operator) checks.push({ label: 'on the console: no remote address to keep open', ok: true, detail: 'the management set is what you gave' });
    checks.push(...reachChecks(fw, facts));
    return checks;
  },

  async verify(ctx, answers) {
    const facts = await this.probe(ctx);
    const model = firewallModel(facts.clusterFw, facts.hostFw);
    const checks: Check[] = [];
    const enable = model.option('cluster', 'enable') ?? '0';
    checks.push({
      label: 'the datacenter firewall is on (cluster.fw enable: 1)',
      ok: enable === '1',
      ...(enable === '1' ? {} : { detail: Number(enable) > 1 ? `enable: ${enable} is Proxmox's 60-second anti-lockout state: pending, not on` : `enable is ${enable}` }),
    });
    const policy = model.option('cluster', 'policy_in') ?? 'DROP (default)';
    checks.push({ label: 'inbound policy is DROP', ok: policy.startsWith('DROP'), ...(policy.startsWith('DROP') ? {} : { detail: `policy_in is ${policy}` }) });
    const host = model.option('host', 'enable');
    checks.push({ label: `the node firewall is on (host.fw enable: 1)`, ok: host === '1', ...(host === '1' ? {} : { detail: host === undefined ? 'not written out' : `enable is ${host}` }) });
    const missing = wantedEntries(facts, answers).filter((w) => !model.ipsetHas('management', w.cidr));
    checks.push({ label: 'the management set holds every management address', ok: missing.length === 0, ...(missing.length ? { detail: `missing: ${missing.map((m) => m.cidr).join(', ')}` } : {}) });
    const ping = model.pingRule();
    const pingOk = answers.icmp === 'none' ? !ping?.ours : ping !== undefined && ping.source === (answers.icmp === 'management' ? '+management' : undefined);
    checks.push({ label: `ping is answered ${answers.icmp === 'none' ? 'by no rule of ours' : answers.icmp === 'management' ? 'from the management set' : 'from anywhere'}`, ok: pingOk, ...(pingOk ? {} : { detail: ping ? `the rule reads: ${ping.text}` : 'no ping rule' }) });
    if ('error' in facts.compile) checks.push({ label: 'pve-firewall compile reads the files', ok: false, detail: facts.compile.error });
    else checks.push({ label: 'pve-firewall compile finds no rule it would skip', ok: facts.compile.warnings.length === 0, ...(facts.compile.warnings.length ? { detail: facts.compile.warnings.join('; ') } : {}) });
    checks.push(await daemonCheck(ctx, facts.status));
    // Everyone the set names keeps SSH and the web UI, whatever rule was added by hand since.
    const fw = compiled(facts, facts.clusterFw, facts.hostFw);
    for (const { address, label } of representatives(answers.management, facts.operator)) checks.push(...portChecks(fw, address, `${label} reaches`));
    return checks;
  },

  guard: {
    // The daemon re-reads the restored files at once instead of at its next loop.
    reload: [['systemctl', 'try-reload-or-restart', 'pve-firewall.service']],
    lastResort: [['pve-firewall', 'stop']],
    seconds: (answers) => answers.revert_seconds,

    async beforeActivate(ctx, answers, facts, changes) {
      // The staged calls are written: Proxmox parses them now (its parse warnings come whether the firewall is on or not).
      const compile = await readCompileWarnings(ctx.exec);
      const checks: Check[] =
        'error' in compile
          ? [{ label: 'pve-firewall compile reads the staged files', ok: false, detail: compile.error }]
          : [{ label: 'pve-firewall compile finds no rule it would skip', ok: compile.warnings.length === 0, ...(compile.warnings.length ? { detail: compile.warnings.join('; ') } : {}) }];
      const after = finalTexts(facts, changes);
      return [...checks, ...reachChecks(compiled(facts, after.clusterFw, after.hostFw), facts)];
    },

    async prove(ctx, _answers, facts) {
      if (facts.daemon === 'nftables') return [{ label: 'pve-firewall simulate', ok: true, detail: 'not available for the nftables daemon; the login and the web request prove it' }];
      const ipv4 = mustReach(facts).filter((m) => /^\d+\.\d+\.\d+\.\d+$/.test(m.address));
      const checks: Check[] = [];
      for (const { who, address } of ipv4) {
        for (const port of MANAGEMENT_PORTS) {
          const r = await simulateTcp(ctx.exec, address, port);
          const action = 'action' in r ? r.action : undefined;
          checks.push({ label: `pve-firewall simulate: ${who} at ${address} to tcp/${port}`, ok: action === 'ACCEPT', ...(action === 'ACCEPT' ? {} : { detail: 'error' in r ? r.error : `ACTION: ${action}` }) });
        }
      }
      return checks;
    },

    access(ctx, _answers, facts) {
      const node = ctx.node.session.kind === 'ssh' ? ctx.node.session.serverAddress : (facts.localnet.address ?? ctx.node.hostname);
      return {
        instructions: ['Keep this session open. From your workstation:', `1. log in again in a new terminal: ssh ${node}`, `2. open https://${node}:8006 in a new browser tab (or reload it)`],
        watch: async (since, signal) => {
          const [login, web] = await Promise.all([
            watchForLogin(ctx.exec, { since, timeoutMs: 24 * 3600_000, signal, methods: ['publickey', 'password', 'keyboard-interactive/pam', 'keyboard-interactive'], ...(facts.operator ? { from: facts.operator } : {}) }),
            facts.operator ? watchForWebRequest(ctx.exec, { from: facts.operator, since, signal }) : Promise.resolve(null),
          ]);
          if (!login || (facts.operator && !web)) return null;
          return { detail: `${describeLogin(login)}${web ? `; the web UI answered ${describeWebRequest(web)}` : ''}`, user: login.user, from: login.address, ...(login.fingerprint ? { fingerprint: login.fingerprint } : {}) };
        },
      };
    },
  },

  // The daemon re-reads the files on its own loop; this makes a revert take effect now.
  async afterRollback(ctx) {
    await ctx.exec.run(['systemctl', 'try-reload-or-restart', 'pve-firewall.service'], { timeoutMs: 60_000 });
  },

  document: (ctx) => firewallDocument(ctx),
};

/** The node's own network that holds `address` (10.0.0.0/24 for 10.0.0.12), or the address alone. */
function networkHolding(ctx: StepContext, address: string): string {
  for (const a of ctx.node.addresses) {
    const prefix = a.cidr.split('/')[1];
    if (prefix === undefined) continue;
    const network = normaliseCidr(`${address}/${prefix}`);
    if (addressInCidrs(a.address, [network])) return network;
  }
  return normaliseCidr(address);
}

/** An address to test for each management entry: the entry itself, or the first address of a network. */
function representatives(management: readonly string[], operator: string | undefined): { address: string; label: string }[] {
  const out = operator ? [{ address: operator, label: `you (this session) at ${operator}` }] : [];
  for (const entry of management) {
    const [base = '', prefix] = entry.split('/');
    if (operator && base === operator) continue;
    const address = prefix === undefined ? base : hostIn(entry);
    out.push({ address, label: prefix === undefined ? `management address ${address}` : `a host of ${entry} (${address})` });
  }
  return out;
}

/** The daemon runs and has applied the files (it re-reads them every few seconds: wait for one loop). */
async function daemonCheck(ctx: StepContext, first: FirewallStatus | { error: string }): Promise<Check> {
  let status = first;
  for (let i = 0; i < 15 && !('error' in status) && status.pending; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    status = await readStatus(ctx.exec);
  }
  if ('error' in status) return { label: 'pve-firewall status', ok: false, detail: status.error };
  const ok = status.enabled && status.running && !status.pending;
  return { label: 'the firewall daemon runs and enforces the files', ok, ...(ok ? {} : { detail: status.line }) };
}

// --- the document ------------------------------------------------------------

export async function firewallDocument(ctx: StepContext): Promise<DocumentSection> {
  const facts = await firewallStep.probe(ctx);
  const model = firewallModel(facts.clusterFw, facts.hostFw);
  const fw = compiled(facts, facts.clusterFw, facts.hostFw);
  const enable = model.option('cluster', 'enable') ?? '0';
  const state = enable === '1' ? 'on' : Number(enable) > 1 ? `pending (enable: ${enable}, Proxmox's 60-second anti-lockout; not on)` : 'off';
  const status = 'error' in facts.status ? `unknown (${facts.status.error})` : facts.status.line;
  const rules = model.rulesForDocument();
  return {
    heading: 'Firewall',
    blocks: [
      bullets([
        `Datacenter firewall: ${state}; node firewall on ${facts.node}: ${model.option('host', 'enable') === '0' ? 'off' : 'on'}.`,
        `Inbound policy: ${code(fw.policyIn)}; outbound: ${code(model.option('cluster', 'policy_out') ?? 'ACCEPT')}.`,
        `Enforced by the ${facts.daemon === 'nftables' ? 'nftables daemon (proxmox-firewall)' : 'iptables daemon (pve-firewall)'}; ${code('pve-firewall status')}: ${status}.`,
        `Management set (SSH 22, web UI 8006, SPICE 3128, consoles 5900-5999): ${fw.management.include.map((c) => code(c)).join(', ') || 'empty'}; the local network ${code(fw.localNetwork)} is merged in by Proxmox.`,
        'Connections already open survive a change (connection tracking); to get back in from the console: `pve-firewall stop`, or set `enable: 0` in `/etc/pve/firewall/cluster.fw`.',
      ]),
      rules.length
        ? table(['File', 'Rule', 'Comment'], rules.map((r) => [r.file, `\`${r.rule}\``, r.comment ?? '']))
        : paragraph('No rules beyond what Proxmox adds itself (the management set, corosync between the ring addresses, established connections).'),
    ],
    evidence: ['pve-firewall status', 'pve-firewall localnet', 'pve-firewall compile', 'read /etc/pve/firewall/cluster.fw', `read /etc/pve/nodes/${facts.node}/host.fw`],
  };
}
