/**
 * Issue 15 on the lab node: least privilege applied with pve-baseline from
 * answers files, and proven over HTTPS from the workstation side with the
 * lab's enforcement of Proxmox's permissions (the stand-ins' API, with
 * qemu-server's and pve-manager's checks on guests and pools).
 *
 * - access-model: the seed-004 web team. Betty sees and opens the console of
 *   the VMs in her pool and gets 403 elsewhere; Nancy power-manages both
 *   pools; Jim does not see Betty's pool. The document's per-path privileges
 *   equal GET /access/permissions cell for cell. A second run plans nothing;
 *   a user left out of the file is removed only with prune: true. Bad input
 *   is refused naming the field, and user.cfg is untouched.
 * - api-tokens: a monitoring token (PVEAuditor) reads /nodes and gets 403 on
 *   a write; it is refused once expired; a separated token without its own
 *   grant gets nothing; the secret is in the operator's file (0600) and in no
 *   journal, log or document; rotation gives a new secret, the old one is
 *   refused.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiCall, apiLogin, installBundle, labOrSkip, sh, STATE_DIR, waitUntil, type ApiAnswer } from './helpers.ts';
import type { Lab } from './lab.ts';

const lab = await labOrSkip();

const VMS: Record<string, string> = { '100': 'ext-web1', '101': 'ext-web2', '200': 'int-web1', '201': 'int-web2', '300': 'hr-db' };
const PASSWORDS = { 'betty@pve': 'Betty-Access-89', 'jim@pve': 'Jim-Access-89', 'nancy@pve': 'Nancy-Access-89' } as const;
type Person = keyof typeof PASSWORDS;

const MODEL = (jim = true, prune = false) => `access-model:
  access:
    roles:
      WebDev: [Mapping.Audit, Pool.Audit, VM.Audit, VM.Console]
      WebAppManager: [Mapping.Audit, Pool.Audit, VM.Audit, VM.PowerMgmt]
    users:
      betty@pve: { comment: "Betty: external web pages" }
${jim ? '      jim@pve: { comment: "Jim: internal web pages" }\n' : ''}      nancy@pve: { comment: "Nancy: web team manager" }
    groups:
      web-ext: { members: [betty@pve] }
      web-int: { members: [${jim ? 'jim@pve' : ''}] }
      web-managers: { members: [nancy@pve] }
    pools:
      ExtWebSer: { comment: External web servers, vms: [100, 101] }
      IntWebSer: { comment: Internal web servers, vms: [200, 201] }
    acl:
      - { path: /pool/ExtWebSer, roles: [WebDev], groups: [web-ext] }
      - { path: /pool/IntWebSer, roles: [WebDev], groups: [web-int] }
      - { path: /pool/ExtWebSer, roles: [WebAppManager], groups: [web-managers] }
      - { path: /pool/IntWebSer, roles: [WebAppManager], groups: [web-managers] }
${prune ? '  prune: true\n' : ''}`;

const TOKENS = `api-tokens:
  tokens:
    - account: svc-monitoring@pve
      token: metrics
      roles: [PVEAuditor]
      path: /
      expire_days: 180
      comment: Prometheus
      save_to: /root/svc-monitoring.token
`;

if (lab) {
  const node: Lab = lab;
  const N = node.hostname;
  const data = <T>(r: ApiAnswer) => r.json?.data as T;
  const vmids = (r: ApiAnswer) => data<{ vmid: number }[]>(r).map((v) => v.vmid).sort((a, b) => a - b);
  const answers = (name: string, text: string) => writeFileSync(join(node.rootDir, 'root', name), text, { mode: 0o600 });
  const pveBaseline = (...args: string[]) => node.exec(['pve-baseline', ...args]);
  const userCfg = () => readFileSync(join(node.rootDir, 'etc/pve/user.cfg'), 'utf8');
  const sessions = new Map<Person, { ticket: string; csrf: string }>();
  const get = (who: Person, path: string) => apiCall(node, 'GET', path, { ticket: sessions.get(who)!.ticket });
  const post = (who: Person, path: string) => apiCall(node, 'POST', path, { ticket: sessions.get(who)!.ticket, csrf: sessions.get(who)!.csrf, form: {} });

  after(async () => {
    for (const vmid of Object.keys(VMS)) await node.exec(['rm', '-f', `/etc/pve/nodes/${N}/qemu-server/${vmid}.conf`]);
    await node.exec(['rm', '-rf', '/run/pve-lab/qemu']);
  });

  test('the seed-004 web team from an answers file: the dry run shows each pveum command and who gains what; apply; a second run plans nothing', async () => {
    await node.reset();
    await installBundle(node);
    await waitUntil(async () => (await node.tcpProbe(8006, { timeoutMs: 800 })) === 'connected', 'pveproxy listening on 8006', 30_000);
    for (const [vmid, name] of Object.entries(VMS)) await sh(node, `printf 'name: ${name}\\nmemory: 512\\n' > /etc/pve/nodes/${N}/qemu-server/${vmid}.conf`);
    answers('access.yml', MODEL());
    const before = userCfg();

    const dry = await pveBaseline('apply', '--answers', '/root/access.yml', '--only', 'access-model');
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stdout, /argv: pveum role add WebDev --privs Mapping\.Audit,Pool\.Audit,VM\.Audit,VM\.Console/);
    assert.match(dry.stdout, /argv: pveum acl modify \/pool\/ExtWebSer --roles WebDev --groups web-ext --propagate 1/);
    assert.match(dry.stdout, /writes \/etc\/pve\/user\.cfg:\n.*\n.*\n(.*\n)*.*\+pool:ExtWebSer:External web servers:100,101::/);
    assert.match(dry.stdout, /betty@pve on \/vms\/100: nothing -> Mapping\.Audit, Pool\.Audit, VM\.Audit, VM\.Console/);
    assert.match(dry.stdout, /nancy@pve on \/vms\/200: nothing -> Mapping\.Audit, Pool\.Audit, VM\.Audit, VM\.PowerMgmt/);
    assert.doesNotMatch(dry.stdout, /on \/vms\/300:/, 'nobody gains anything on the guest outside the pools');
    assert.equal(userCfg(), before, 'a dry run changes nothing');

    const applied = await pveBaseline('apply', '--answers', '/root/access.yml', '--yes', '--only', 'access-model');
    assert.equal(applied.exitCode, 0, applied.stdout + applied.stderr);
    assert.match(applied.stdout, /=> verified/);
    assert.equal(applied.stdout.match(/argv: pveum /g)?.length, 19);
    assert.match(userCfg(), /^acl:1:\/pool\/ExtWebSer:@web-managers:WebAppManager:$/m);

    const again = await pveBaseline('apply', '--answers', '/root/access.yml', '--yes', '--only', 'access-model');
    assert.equal(again.exitCode, 0, again.stdout);
    assert.match(again.stdout, /=> compliant/);
    assert.doesNotMatch(again.stdout, /Plan:/);
  });

  test('over HTTPS: Betty sees and opens the consoles of her pool\'s VMs and gets 403 elsewhere; Nancy power-manages both pools; Jim does not see Betty\'s pool', async () => {
    for (const [user, password] of Object.entries(PASSWORDS) as [Person, string][]) {
      const r = await node.exec(['pveum', 'passwd', user], { input: `${password}\n${password}\n` });
      assert.equal(r.exitCode, 0, r.stderr);
      sessions.set(user, await apiLogin(node, user, password));
    }
    // Betty: her pool's guests, their status and console; nothing of Jim's pool or the HR guest.
    assert.deepEqual(vmids(await get('betty@pve', `/nodes/${N}/qemu`)), [100, 101]);
    assert.equal((await get('betty@pve', `/nodes/${N}/qemu/100/status/current`)).status, 200);
    const console = await post('betty@pve', `/nodes/${N}/qemu/101/vncproxy`);
    assert.equal(console.status, 200, console.reason);
    assert.match(String(data<{ ticket: string }>(console).ticket), /PVEVNC/);
    for (const vmid of ['200', '300']) {
      const denied = await post('betty@pve', `/nodes/${N}/qemu/${vmid}/vncproxy`);
      assert.deepEqual([denied.status, denied.reason], [403, `Permission check failed (/vms/${vmid}, VM.Console)`]);
    }
    assert.equal((await post('betty@pve', `/nodes/${N}/qemu/100/status/start`)).status, 403, 'WebDev does not power guests');
    assert.deepEqual(data<{ poolid: string }[]>(await get('betty@pve', '/pools')).map((p) => p.poolid), ['ExtWebSer']);

    // Nancy: power on both pools, not outside them.
    for (const vmid of ['100', '200']) {
      const started = await post('nancy@pve', `/nodes/${N}/qemu/${vmid}/status/start`);
      assert.equal(started.status, 200, `${vmid}: ${started.reason}`);
      assert.match(String(data(started)), new RegExp(`^UPID:${N}:.*:qmstart:${vmid}:nancy@pve:$`));
    }
    assert.equal((await post('nancy@pve', `/nodes/${N}/qemu/300/status/start`)).status, 403);
    assert.equal((await post('nancy@pve', `/nodes/${N}/qemu/100/vncproxy`)).status, 403, 'WebAppManager has no console');

    // Jim: his pool only, in every listing the web UI reads.
    assert.deepEqual(data<{ poolid: string }[]>(await get('jim@pve', '/pools')).map((p) => p.poolid), ['IntWebSer']);
    assert.equal((await get('jim@pve', '/pools/ExtWebSer')).status, 403);
    const resources = data<{ type: string; vmid?: number; pool?: string; id: string }[]>(await get('jim@pve', '/cluster/resources'));
    assert.deepEqual(resources.filter((r) => r.type === 'qemu').map((r) => r.vmid).sort(), [200, 201]);
    assert.ok(!resources.some((r) => r.id === '/pool/ExtWebSer'), 'Betty\'s pool is not among Jim\'s resources');
  });

  test('the document\'s privileges per user and path are what GET /access/permissions answers, cell for cell', async () => {
    const r = await pveBaseline('docs', '--out', '/root/policy.md');
    assert.equal(r.exitCode, 0, r.stderr);
    const doc = readFileSync(join(node.rootDir, 'root/policy.md'), 'utf8');
    const cells = [...doc.matchAll(/^- `([^`]+)` on `([^`]+)`: (.+)$/gm)].map((m) => ({ id: m[1]!, path: m[2]!, privileges: m[3]!.split(', ') }));
    const people = cells.filter((c) => c.id in PASSWORDS);
    assert.ok(people.length >= 12, `the document lists the web team's paths (${people.length})`);
    const root = await apiLogin(node, 'root@pam', node.rootPassword);
    for (const cell of people) {
      const answer = await apiCall(node, 'GET', `/access/permissions?userid=${encodeURIComponent(cell.id)}&path=${encodeURIComponent(cell.path)}`, { ticket: root.ticket });
      assert.equal(answer.status, 200);
      assert.deepEqual(Object.keys(data<Record<string, Record<string, number>>>(answer)[cell.path] ?? {}).sort(), [...cell.privileges].sort(), `${cell.id} on ${cell.path}`);
    }
    // And the other way round: every path where the API says Betty may do something is in the document.
    for (const path of ['/vms/100', '/vms/101', '/pool/ExtWebSer']) assert.ok(people.some((c) => c.id === 'betty@pve' && c.path === path), path);
    assert.ok(!people.some((c) => c.id === 'betty@pve' && (c.path === '/vms/200' || c.path === '/vms/300')));
    assert.match(doc, /^\| web-ext \| betty@pve \|/m);
    assert.match(doc, /pool `ExtWebSer`: guests 100, 101/);
  });

  test('a user left out of the file is removed only with prune: true (revert puts user.cfg and the realm\'s passwords back); bad input is refused naming the field and nothing changes', async () => {
    answers('access.yml', MODEL(false));
    const kept = await pveBaseline('apply', '--answers', '/root/access.yml', '--yes', '--only', 'access-model');
    assert.match(kept.stdout, /=> compliant/, 'not declared is not removed');
    assert.match(userCfg(), /^user:jim@pve:/m);

    answers('access.yml', MODEL(false, true));
    const before = userCfg();
    const pruned = await pveBaseline('apply', '--answers', '/root/access.yml', '--yes', '--only', 'access-model');
    assert.equal(pruned.exitCode, 0, pruned.stdout + pruned.stderr);
    assert.match(pruned.stdout, /argv: pveum user delete jim@pve/);
    assert.doesNotMatch(userCfg(), /jim@pve/);
    assert.doesNotMatch(readFileSync(join(node.rootDir, 'etc/pve/priv/shadow.cfg'), 'utf8'), /^jim:/m, 'his password went with him');
    const revert = await pveBaseline('revert', 'access-model', '--yes');
    assert.equal(revert.exitCode, 0, revert.stdout + revert.stderr);
    assert.match(readFileSync(join(node.rootDir, 'etc/pve/priv/shadow.cfg'), 'utf8'), /^jim:/m, 'revert puts the realm password back');
    assert.equal(userCfg(), before, 'and user.cfg byte for byte as it was before the prune');

    const untouched = userCfg();
    answers(
      'bad.yml',
      `access-model:
  access:
    roles:
      PVEWeb: [VM.Audit]
      Web: [VM.Audit, VM.Frobnicate]
    pools:
      P: { vms: [100, 999] }
    acl:
      - { path: /vms/1, roles: [Web], groups: [web-ext] }
`,
    );
    const bad = await pveBaseline('apply', '--answers', '/root/bad.yml', '--yes', '--only', 'access-model');
    assert.notEqual(bad.exitCode, 0);
    const said = bad.stdout + bad.stderr;
    for (const expected of [
      "bad.yml:3: access-model.access: roles.PVEWeb: a custom role's name must not start with PVE",
      "roles.Web: unknown privilege 'VM.Frobnicate'",
      "acl[0].path: '/vms/1' is not a path Proxmox grants on",
    ]) {
      assert.ok(said.includes(expected), `${expected}\n--- in ---\n${said}`);
    }
    assert.doesNotMatch(said, /\n\s+at /, 'no stack trace');
    assert.equal(userCfg(), untouched, 'nothing changed');
    // What only the node can tell (its guests) is checked once it has been read, before anything is planned.
    answers('bad.yml', 'access-model:\n  access:\n    pools:\n      P: { vms: [100, 999] }\n');
    const ghost = await pveBaseline('apply', '--answers', '/root/bad.yml', '--yes', '--only', 'access-model');
    assert.notEqual(ghost.exitCode, 0);
    assert.match(ghost.stdout + ghost.stderr, /access-model\.access: pools\.P\.vms: VM 999 does not exist on this node \(guests here: 100, 101, 200, 201, 300\)/);
    assert.doesNotMatch(ghost.stdout + ghost.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(userCfg(), untouched, 'nothing changed');
  });

  test('a monitoring token: PVEAuditor reads /nodes and gets 403 on a write; the secret only in the operator\'s file; refused once expired; a separated token without its own grant gets nothing; rotation', async () => {
    answers('tokens.yml', TOKENS);
    const r = await pveBaseline('apply', '--answers', '/root/tokens.yml', '--yes', '--only', 'api-tokens');
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /=> verified/);
    assert.equal(r.stdout.match(/argv: pveum /g)?.length, 4);
    const file = join(node.rootDir, 'root/svc-monitoring.token');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const header = readFileSync(file, 'utf8').trim();
    const m = /^PVEAPIToken=(svc-monitoring@pve!metrics)=([0-9a-f-]{36})$/.exec(header);
    assert.ok(m, header);
    const token = `${m[1]}=${m[2]}`;
    const secret = m[2]!;

    // The secret is nowhere else pve-baseline writes: not in its output, its state, the journal, the system log.
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret));
    const traces = await node.exec(['sh', '-c', `grep -rl -- "$1" ${STATE_DIR} /var/log /root/policy.md 2>/dev/null; journalctl --no-pager -q | grep -c -- "$1"`, 'sh', secret]);
    assert.equal(traces.stdout.trim(), '0', `found in: ${traces.stdout}`);

    const nodes = await apiCall(node, 'GET', '/nodes', { token });
    assert.equal(nodes.status, 200);
    assert.deepEqual(data<{ node: string }[]>(nodes).map((n) => n.node), [N]);
    assert.equal((await apiCall(node, 'GET', `/nodes/${N}/qemu`, { token })).status, 200);
    const write = await apiCall(node, 'PUT', `/nodes/${N}/config`, { token, form: { description: 'owned' } });
    assert.deepEqual([write.status, write.reason], [403, `Permission check failed (/nodes/${N}, Sys.Modify)`]);

    // A separated token without a grant of its own: nothing, though its account is an auditor.
    const bare = await node.exec(['pveum', 'user', 'token', 'add', 'svc-monitoring@pve', 'bare', '--privsep', '1', '--output-format', 'json']);
    const bareToken = `svc-monitoring@pve!bare=${String((JSON.parse(bare.stdout) as { value: string }).value)}`;
    assert.equal((await apiCall(node, 'GET', `/nodes/${N}/config`, { token: bareToken })).status, 403);
    assert.deepEqual(data(await apiCall(node, 'GET', '/access/permissions', { token: bareToken })), {});
    await node.exec(['pveum', 'user', 'token', 'delete', 'svc-monitoring@pve', 'bare']);

    // A second run plans nothing; then the token nears its expiry: rotated in place, the old secret refused.
    const again = await pveBaseline('apply', '--answers', '/root/tokens.yml', '--yes', '--only', 'api-tokens');
    assert.match(again.stdout, /=> compliant/);
    const soon = Math.floor(Date.now() / 1000) + 10 * 86_400;
    await node.exec(['pveum', 'user', 'token', 'modify', 'svc-monitoring@pve', 'metrics', '--expire', String(soon)]);
    const check = await pveBaseline('check');
    assert.match(check.stdout, /api-tokens\s+drift/);
    const rotated = await pveBaseline('apply', '--answers', '/root/tokens.yml', '--yes', '--only', 'api-tokens');
    assert.match(rotated.stdout, /argv: pveum user token modify svc-monitoring@pve metrics --regenerate 1/);
    const fresh = readFileSync(file, 'utf8').trim().replace(/^PVEAPIToken=/, '');
    assert.notEqual(fresh, token);
    assert.equal((await apiCall(node, 'GET', '/nodes', { token })).status, 401, 'the old secret is refused');
    assert.equal((await apiCall(node, 'GET', '/nodes', { token: fresh })).status, 200, 'the new one works, its grant kept');

    // Expired (the test sets its date in the past): refused.
    await node.exec(['pveum', 'user', 'token', 'modify', 'svc-monitoring@pve', 'metrics', '--expire', String(Math.floor(Date.now() / 1000) - 60)]);
    const expired = await apiCall(node, 'GET', '/nodes', { token: fresh });
    assert.equal(expired.status, 401);
    assert.match(await sh(node, 'journalctl -u pvedaemon.service -o cat --no-pager -n 20'), /authentication failure: token 'metrics' access expired/);
    assert.match((await pveBaseline('check')).stdout, /api-tokens\s+drift/);
  });
}
