/**
 * The firewall step on fakes (test/fixtures/fake-firewall.ts): what it plans
 * through pvesh, that each call's expected file is what the API writes, the
 * refusals before anything changes, verify and the document. Enforcement
 * (packets really dropped) is proven in the lab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange, type CommandChange } from '../../src/engine/change.ts';
import { firewallStep, type FirewallAnswers } from '../../steps/firewall.ts';
import { ADMIN_CLUSTER_FW, ADMIN_RULES_AFTER, CLUSTER_FW, FakeFirewall, HOST_FW } from '../fixtures/fake-firewall.ts';
import { failed, stepContext } from '../fixtures/step-run.ts';
import { runChecked } from '../../src/system/exec.ts';

const OPERATOR = '10.77.9.1';
const answers = (o: Partial<FirewallAnswers> = {}): FirewallAnswers => ({ management: [OPERATOR, '10.77.7.0/24'], icmp: 'management', revert_seconds: 60, ...o });

async function planOn(fw: FakeFirewall, a: FirewallAnswers) {
  const ctx = stepContext(fw);
  const facts = await firewallStep.probe(ctx);
  return { ctx, facts, plan: firewallStep.plan(facts, a, ctx.node) as CommandChange[], preflight: firewallStep.preflight!(facts, a, ctx.node) };
}

/** Run each call as the engine does, checking that the file it writes is the one the plan showed. */
async function applyChecked(fw: FakeFirewall, plan: CommandChange[]): Promise<void> {
  for (const change of plan) {
    for (const w of change.writes ?? []) assert.equal(fw.text(w.path) ?? null, w.before, `${describeChange(change)}: the file is what the plan started from`);
    await runChecked(fw.exec, change.argv);
    for (const w of change.writes ?? []) assert.equal(fw.text(w.path) ?? null, w.after, `${describeChange(change)}: pvesh wrote what the plan showed`);
  }
}

test('a fresh node: the management set, a ping rule, the node and then the datacenter on, in that order; only the last call is live', async () => {
  const fw = new FakeFirewall({ operator: OPERATOR });
  const { plan, preflight } = await planOn(fw, answers());
  assert.deepEqual(failed(preflight), []);
  assert.deepEqual(
    plan.map((c) => c.argv.filter((a) => !/^[0-9a-f]{40}$/.test(a)).join(' ')),
    [
      'pvesh create /cluster/firewall/ipset --name management --comment pve-baseline: hosts that may manage the cluster',
      'pvesh create /cluster/firewall/ipset/management --cidr 10.77.7.0/24 --comment pve-baseline: management network',
      'pvesh create /cluster/firewall/ipset/management --cidr 10.77.9.1 --comment pve-baseline: the operator address pve-baseline ran from',
      'pvesh create /cluster/firewall/rules --type in --action ACCEPT --macro Ping --source +management --enable 1 --comment pve-baseline: ping from the management set',
      'pvesh set /nodes/pve1/firewall/options --enable 1 --digest',
      'pvesh set /cluster/firewall/options --enable 1 --policy_in DROP --digest',
    ],
  );
  assert.deepEqual(plan.map((c) => c.activates === true), [false, false, false, false, false, true], 'with the datacenter off, only its switch makes anything live');
  await applyChecked(fw, plan);
  assert.match(fw.text(CLUSTER_FW)!, /^enable: 1$/m);
  assert.match(fw.text(CLUSTER_FW)!, /^policy_in: DROP$/m);
  assert.match(fw.text(HOST_FW)!, /^enable: 1$/m);

  const ctx = stepContext(fw);
  assert.deepEqual(failed(await firewallStep.verify(ctx, answers())), []);
  assert.deepEqual(firewallStep.plan(await firewallStep.probe(ctx), answers(), ctx.node), [], 'a second run plans nothing');
  fw.exec.assertNoUnexpected();
});

test("the administrator's rules, aliases and ipsets are kept, in their order; a set that exists only gains entries", async () => {
  const clusterFw = ADMIN_CLUSTER_FW;
  const fw = new FakeFirewall({ operator: OPERATOR, clusterFw });
  const { plan, preflight } = await planOn(fw, answers());
  assert.deepEqual(failed(preflight), []);
  assert.ok(!plan.some((c) => c.argv.includes('--name')), 'the existing management set is used');
  await applyChecked(fw, plan);
  const after = fw.text(CLUSTER_FW)!;
  for (const kept of ['backup_server 10.77.7.50 # the PBS', '10.77.7.5 # jump host', '[IPSET monitoring]', '10.77.7.60']) assert.ok(after.includes(kept), `kept: ${kept}`);
  const rules = after.split('\n').filter((l) => /^\|?IN /.test(l));
  assert.deepEqual(rules, ADMIN_RULES_AFTER);
  fw.exec.assertNoUnexpected();
});

test('refused before anything changes: management that leaves the operator out (IPv4, IPv6, IPv4-mapped)', async () => {
  for (const operator of ['10.77.9.1', '::ffff:10.77.9.1', '2001:db8:9::1']) {
    const fw = new FakeFirewall({ operator });
    const { preflight } = await planOn(fw, answers({ management: ['10.77.8.0/24'] }));
    const shown = operator.replace('::ffff:', '');
    assert.deepEqual(
      failed(preflight).filter((f) => f.startsWith('you')),
      [`you (this session) at ${shown} reach tcp/22 (DROP by the inbound policy (DROP))`, `you (this session) at ${shown} reach tcp/8006 (DROP by the inbound policy (DROP))`],
      operator,
    );
    assert.deepEqual(fw.files.changed, [], 'nothing written');
    assert.deepEqual(fw.pvesh, [], 'no pvesh call');
  }
  // In the local network the operator is in the set anyway: Proxmox merges local_network into management.
  const local = new FakeFirewall({ operator: '10.77.7.1' });
  assert.deepEqual(failed((await planOn(local, answers({ management: ['10.77.8.0/24'] }))).preflight), []);
});

test('refused: an administrator rule that would drop the operator on 22, named with its line', async () => {
  const clusterFw = '[OPTIONS]\n\nenable: 0\n\n[RULES]\n\nIN DROP -p tcp -dport 22 # nobody gets SSH\n';
  const fw = new FakeFirewall({ operator: OPERATOR, clusterFw });
  const { preflight } = await planOn(fw, answers());
  const refusals = failed(preflight);
  assert.equal(refusals.length, 1, refusals.join('\n'));
  assert.match(refusals[0]!, /^you \(this session\) at 10\.77\.9\.1 reach tcp\/22 \(DROP by .*cluster\.fw.*IN DROP -p tcp -dport 22/);
});

test('refused: a rule Proxmox cannot parse (it would be skipped while DROP applies)', async () => {
  const hostFw = '[RULES]\n\nIN ACCEPT -dport 80 # dport without a protocol\n';
  const fw = new FakeFirewall({ operator: OPERATOR, hostFw });
  const { preflight } = await planOn(fw, answers());
  const refusals = failed(preflight);
  assert.ok(refusals.some((r) => r.startsWith('pve-firewall compile finds no rule it would skip (Proxmox skips these while DROP applies: ') && r.includes('host.fw')), refusals.join('\n'));
});

test('refused: an nftables daemon older than 1.2.0 (it replaces the local network with the set)', async () => {
  const hostFw = '[OPTIONS]\n\nnftables: 1\n';
  const old = await planOn(new FakeFirewall({ operator: OPERATOR, hostFw, nftablesVersion: '1.1.2' }), answers());
  assert.ok(failed(old.preflight).some((f) => f.includes('proxmox-firewall 1.1.2 replaces the local network')), failed(old.preflight).join('\n'));
  const current = await planOn(new FakeFirewall({ operator: OPERATOR, hostFw, nftablesVersion: '1.2.3' }), answers());
  assert.deepEqual(failed(current.preflight), []);
});

test('in a cluster: peers are offered as cluster networks, and a peer outside every set is refused', async () => {
  const corosyncConf = 'nodelist {\n  node {\n    name: pve1\n    nodeid: 1\n    ring0_addr: 10.77.7.2\n  }\n  node {\n    name: pve2\n    nodeid: 2\n    ring0_addr: 10.88.0.3\n  }\n}\n';
  const fw = new FakeFirewall({ operator: OPERATOR, corosyncConf });
  const ctx = stepContext(fw);
  const facts = await firewallStep.probe(ctx);
  const question = firewallStep.questions!.find((q) => q.id === 'cluster_networks')!;
  assert.equal(question.when?.({}, facts), true);
  assert.deepEqual(question.kind === 'text' && question.detect?.(facts), ['10.88.0.3']);
  const refused = firewallStep.preflight!(facts, answers(), ctx.node);
  assert.deepEqual(failed(refused).filter((f) => f.includes('pve2')), ['cluster node pve2 at 10.88.0.3 reaches tcp/22 (DROP by the inbound policy (DROP))', 'cluster node pve2 at 10.88.0.3 reaches tcp/8006 (DROP by the inbound policy (DROP))']);
  assert.deepEqual(failed(firewallStep.preflight!(facts, answers({ cluster_networks: ['10.88.0.3'] }), ctx.node)), []);
});

test("verify: Proxmox's pending anti-lockout timestamp is pending, not on; a hand-added DROP rule is named", async () => {
  const now = 1_800_000_000;
  const fw = new FakeFirewall({ operator: OPERATOR, now: () => now + 10 });
  const { plan } = await planOn(fw, answers());
  await applyChecked(fw, plan);
  const ctx = stepContext(fw);

  await fw.files.write(CLUSTER_FW, fw.text(CLUSTER_FW)!.replace('enable: 1', `enable: ${now}`));
  const pending = failed(await firewallStep.verify(ctx, answers()));
  assert.ok(pending.some((f) => f.includes(`enable: ${now} is Proxmox's 60-second anti-lockout state: pending, not on`)), pending.join('\n'));

  await fw.files.write(CLUSTER_FW, fw.text(CLUSTER_FW)!.replace(`enable: ${now}`, 'enable: 1').replace('[RULES]\n\n', '[RULES]\n\nIN DROP -p tcp -dport 8006 # web UI closed by hand\n'));
  const drift = failed(await firewallStep.verify(ctx, answers()));
  assert.ok(drift.some((f) => /you \(this session\) at 10\.77\.9\.1 reaches tcp\/8006 \(DROP by .*IN DROP -p tcp -dport 8006/.test(f)), drift.join('\n'));
  assert.ok(!drift.some((f) => f.includes('tcp/22')), 'SSH is still open');
});

test('ping: "not at all" removes only our own rule; "anywhere" has no source', async () => {
  const fw = new FakeFirewall({ operator: OPERATOR });
  await applyChecked(fw, (await planOn(fw, answers())).plan);
  const none = await planOn(fw, answers({ icmp: 'none' }));
  assert.deepEqual(none.plan.map(describeChange), ['run pvesh delete /cluster/firewall/rules/0']);
  await applyChecked(fw, none.plan);
  assert.doesNotMatch(fw.text(CLUSTER_FW)!, /Ping/);
  const anywhere = await planOn(fw, answers({ icmp: 'anywhere' }));
  await applyChecked(fw, anywhere.plan);
  assert.match(fw.text(CLUSTER_FW)!, /^IN Ping\(ACCEPT\) # pve-baseline: ping from anywhere$/m);
  assert.deepEqual(failed(await firewallStep.verify(stepContext(fw), answers({ icmp: 'anywhere' }))), []);
});

test('the management answer is kept as Proxmox stores it, and /0 is refused', async () => {
  const q = firewallStep.questions!.find((x) => x.id === 'management')!;
  const files = new FakeFirewall().files;
  const decoded = await q.codec!.decode('10.0.0.0/24 10.77.9.1/32 2001:DB8::1/128 10.0.0.0/24', {}, { files });
  assert.deepEqual(decoded, { ok: true, value: ['10.0.0.0/24', '10.77.9.1', '2001:db8::1'] });
  // Proxmox would silently turn 10.0.0.11/24 into the whole network; the operator is asked which they meant.
  assert.deepEqual(await q.codec!.decode('10.0.0.11/24', {}, { files }), { ok: false, message: '"10.0.0.11/24" has host bits set: the network is 10.0.0.0/24' });
  const everything = await q.codec!.decode('0.0.0.0/0', {}, { files });
  assert.equal(everything.ok, false);
});

test('the document: state, policy, daemon, the management set and every rule with its comment', async () => {
  const fw = new FakeFirewall({ operator: OPERATOR, hostFw: '[RULES]\n\nIN SSH(ACCEPT) -source 10.77.9.0/24 # admins VPN\n' });
  await applyChecked(fw, (await planOn(fw, answers())).plan);
  const section = await firewallStep.document!(stepContext(fw), answers());
  const md = JSON.stringify(section);
  assert.match(md, /Datacenter firewall: on/);
  assert.match(md, /Inbound policy: `DROP`/);
  assert.match(md, /iptables daemon \(pve-firewall\)/);
  assert.match(md, /`10\.77\.9\.1`/);
  assert.match(md, /IN SSH\(ACCEPT\) -source 10\.77\.9\.0\/24.*admins VPN/);
  assert.match(md, /IN Ping\(ACCEPT\) -source \+management.*pve-baseline: ping from the management set/);
});
