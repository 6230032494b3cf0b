/**
 * The audit-log step on fakes: a node whose kernel audit system is modelled
 * in memory (`augenrules --load` reads rules.d and loads the rules,
 * `auditctl -l` lists them back in auditctl's own listing form), so verify
 * proves what the step wrote reached the kernel. Also: not applicable in a
 * container, the bounded rotation edited key by key, and the rules validator
 * (auditctl -R's rules) refusing bad lines. The lab node is a container, so
 * this is where the loaded rules are tested.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange, type FileChange } from '../../src/engine/change.ts';
import { AUDIT_RULES_FILE, AUDITD_CONF, auditLogStep, renderRules, RULE_LINES } from '../../steps/audit-log.ts';
import { editAuditdConf, parseAuditctlList, parseAuditLine, ruleIdentity, validateAuditRules } from '../../src/audit/rules.ts';
import { MemoryFiles } from '../fixtures/memory-files.ts';
import { scriptedExec, type Reply } from '../fixtures/scripted-exec.ts';
import { applyPlan, failed, runStep, stepContext } from '../fixtures/step-run.ts';
import { testNode } from '../fixtures/node.ts';

/** auditd.conf as the package ships it (audit-userspace init.d/auditd.conf, shortened). */
const SHIPPED_CONF = [
  '#',
  '# This file controls the configuration of the audit daemon',
  '#',
  '',
  'local_events = yes',
  'write_logs = yes',
  'log_file = /var/log/audit/audit.log',
  'log_group = adm',
  'log_format = ENRICHED',
  'flush = INCREMENTAL_ASYNC',
  'freq = 50',
  'max_log_file = 8',
  'num_logs = 5',
  'priority_boost = 4',
  'max_log_file_action = ROTATE',
  'space_left = 75',
  'disk_full_action = SUSPEND',
  '',
].join('\n');

/** Debian's rules.d/audit.rules. */
const SHIPPED_RULES = '## First rule - delete all\n-D\n\n## Increase the buffers to survive stress events.\n-b 8192\n\n--backlog_wait_time 60000\n\n## Set failure mode to syslog\n-f 1\n';

/** One rules-file line as `auditctl -l` lists it: -S all, keys as -F key= in syscall rules. */
function listed(line: string): string {
  const t = line.trim().split(/\s+/);
  if (t[0] === '-w') {
    const perms = t.includes('-p') ? t[t.indexOf('-p') + 1] : 'rwxa';
    const keys = t.flatMap((x, i) => (x === '-k' ? [` -k ${t[i + 1]}`] : [])).join('');
    return `-w ${t[1]} -p ${perms}${keys}`;
  }
  const syscalls = t.flatMap((x, i) => (x === '-S' ? [t[i + 1]] : []));
  const fields = t.flatMap((x, i) => (x === '-F' ? [` -F ${t[i + 1]}`] : [])).join('');
  const keys = t.flatMap((x, i) => (x === '-k' ? [` -F key=${t[i + 1]}`] : [])).join('');
  return `${t[0]} ${t[1]} -S ${syscalls.length ? syscalls.join(',') : 'all'}${fields}${keys}`;
}

interface FakeAuditOptions {
  installed?: boolean;
  container?: string;
  noLoginuid?: boolean;
  cmdline?: string;
  enabled?: number;
  auditdConf?: string;
  /** auditctl -s fails as it does when the kernel refuses the request. */
  statusFails?: boolean;
}

function fakeAudit(o: FakeAuditOptions = {}) {
  const files = new MemoryFiles();
  if (!o.noLoginuid) files.set('/proc/self/loginuid', '4294967295');
  files.set('/proc/cmdline', o.cmdline ?? 'BOOT_IMAGE=/boot/vmlinuz-6.14.8-2-pve root=/dev/mapper/pve-root ro quiet');
  const state = { installed: o.installed ?? false, active: false, loaded: [] as string[], hups: 0, loads: 0 };
  const unpack = () => {
    files.set(AUDITD_CONF, o.auditdConf ?? SHIPPED_CONF);
    files.set('/etc/audit/rules.d/audit.rules', SHIPPED_RULES);
    state.active = true;
  };
  const load = async (): Promise<Reply> => {
    if ((o.enabled ?? 1) === 2) return { exitCode: 1, stderr: 'The audit system is in immutable mode, no rule changes allowed\n' };
    const names = (await files.list('/etc/audit/rules.d')).filter((n) => n.endsWith('.rules')).sort();
    const lines: string[] = [];
    for (const name of names) lines.push(...((await files.read(`/etc/audit/rules.d/${name}`)) ?? '').split('\n'));
    state.loaded = [];
    for (const line of lines.map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
      if (line === '-D' || /^(-b|-f|-e|-r|--backlog_wait_time)\b/.test(line)) continue;
      const form = listed(line);
      if (state.loaded.includes(form)) return { exitCode: 1, stderr: 'Error sending add rule data request (Rule exists)\n' };
      state.loaded.push(form);
    }
    state.loads++;
    return { stdout: `enabled ${o.enabled ?? 1}\n` };
  };
  if (state.installed) unpack();
  const exec = scriptedExec([
    [['dpkg-query', '-W', '-f', '${Status}', 'auditd'], () => (state.installed ? { stdout: 'install ok installed' } : { exitCode: 1, stderr: 'dpkg-query: no packages found matching auditd\n' })],
    [['systemd-detect-virt', '--container'], () => (o.container ? { stdout: `${o.container}\n` } : { stdout: 'none\n', exitCode: 1 })],
    [['apt-get', 'install', '-y', 'auditd'], () => {
      state.installed = true;
      unpack();
      return { stdout: 'Setting up auditd ...\n' };
    }],
    [['auditctl', '-s'], () => {
      if (!state.installed) return { notFound: true };
      if (o.statusFails) return { exitCode: 255, stderr: 'Error sending status request (Operation not permitted)\n' };
      return { stdout: `enabled ${o.enabled ?? 1}\nfailure 1\npid ${state.active ? 412 : 0}\nrate_limit 0\nbacklog_limit 8192\nlost 0\nbacklog 0\nbacklog_wait_time 60000\nbacklog_wait_time_actual 0\nloginuid_immutable 0 unlocked\n` };
    }],
    [['auditctl', '-l'], () => (state.installed ? { stdout: state.loaded.length ? `${state.loaded.join('\n')}\n` : 'No rules\n' } : { notFound: true })],
    [['augenrules', '--load'], () => (state.installed ? load() : { notFound: true })],
    [['systemctl', 'is-active', 'auditd.service'], () => (state.active ? { stdout: 'active\n' } : { stdout: 'inactive\n', exitCode: 3 })],
    [['systemctl', 'start', 'auditd.service'], () => {
      state.active = true;
      return {};
    }],
    [['systemctl', 'kill', '--signal=HUP', 'auditd.service'], () => {
      state.hups++;
      return {};
    }],
  ]);
  return { files, exec, state, node: testNode };
}

test('a fresh node: install auditd, write the rules, load them; the kernel holds every rule; a second run plans nothing', async () => {
  const f = fakeAudit();
  const run = await runStep(auditLogStep, {}, f);
  assert.deepEqual(run.plan.map(describeChange), ['run apt-get install -y auditd', `create ${AUDIT_RULES_FILE}`, 'run augenrules --load']);
  assert.equal((run.plan[1] as FileChange).mode, 0o640);
  assert.deepEqual(failed(run.checks), []);
  assert.deepEqual(run.replan, []);
  // What auditctl -l lists is every rule of the file, in the listing's own form.
  const live = parseAuditctlList((await f.exec.run(['auditctl', '-l'])).stdout);
  assert.equal(live.length, RULE_LINES.length);
  assert.ok(f.state.loaded.includes('-a always,exit -S all -F dir=/etc/pve -F perm=wa -F auid!=unset -F key=pve-config'));
  assert.ok(f.state.loaded.includes('-w /etc/shadow -p wa -k identity'));
  f.exec.assertNoUnexpected();
});

test('the rules file: every watch the baseline wants, each with a key and its reason, and nothing auditctl -R would refuse', () => {
  const text = renderRules();
  assert.deepEqual(validateAuditRules(text), []);
  for (const path of ['/etc/passwd', '/etc/shadow', '/etc/group', '/etc/gshadow', '/etc/sudoers', '/etc/sudoers.d', '/etc/ssh/sshd_config', '/etc/ssh/sshd_config.d', '/etc/pam.d', '/etc/network', '/etc/apt/sources.list', '/etc/apt/sources.list.d', '/etc/fail2ban']) {
    assert.ok(RULE_LINES.some((l) => l.startsWith(`-w ${path} -p wa -k `)), `watches ${path}`);
  }
  assert.ok(RULE_LINES.includes('-a always,exit -F dir=/etc/pve -F perm=wa -F auid!=unset -k pve-config'));
  const lines = text.split('\n');
  for (const rule of RULE_LINES) {
    assert.match(rule, / -k [a-z0-9-]+$/, `${rule} has a key`);
    assert.match(lines[lines.indexOf(rule) - 1]!, /^# \S/, `${rule} follows its reason`);
  }
  assert.match(text, /auid!=unset keeps only processes of a login session/);
});

test('drift: a rule missing from the kernel plans augenrules --load; an edited file is put back', async () => {
  const f = fakeAudit();
  await runStep(auditLogStep, {}, f);
  f.state.loaded = f.state.loaded.filter((l) => !l.startsWith('-w /etc/sudoers.d '));
  const ctx = stepContext(f);
  const facts = await auditLogStep.probe(ctx);
  const plan = auditLogStep.plan(facts, {}, ctx.node);
  assert.deepEqual(plan.map(describeChange), ['run augenrules --load']);
  assert.match(failed(await auditLogStep.verify(ctx, {})).join('\n'), /the kernel holds all \d+ rules \(auditctl -l\) \(missing: -w \/etc\/sudoers\.d -p wa -k sudoers\)/);
  await applyPlan(plan, f);
  assert.deepEqual(failed(await auditLogStep.verify(ctx, {})), []);

  await f.files.write(AUDIT_RULES_FILE, renderRules().replace('-w /etc/pam.d -p wa -k pam\n', ''));
  const again = auditLogStep.plan(await auditLogStep.probe(ctx), {}, ctx.node);
  assert.deepEqual(again.map(describeChange), [`edit ${AUDIT_RULES_FILE}`, 'run augenrules --load']);
});

test('not applicable, honestly: in a container, on a kernel without audit, booted with audit=0, or when auditctl -s is refused', async () => {
  const cases: [FakeAuditOptions, RegExp][] = [
    [{ container: 'systemd-nspawn' }, /container \(systemd-detect-virt: systemd-nspawn\).*refuses audit requests/],
    [{ container: 'lxc', installed: true }, /container \(systemd-detect-virt: lxc\)/],
    [{ noLoginuid: true }, /no audit support \(no \/proc\/self\/loginuid\)/],
    [{ cmdline: 'root=/dev/sda1 ro audit=0 quiet' }, /booted with audit=0/],
    [{ installed: true, statusFails: true }, /auditctl -s cannot reach the kernel audit system \(Error sending status request \(Operation not permitted\)\)/],
  ];
  for (const [options, reason] of cases) {
    const f = fakeAudit(options);
    const ctx = stepContext(f);
    const facts = await auditLogStep.probe(ctx);
    assert.match(auditLogStep.notApplicable!(facts, ctx.node) ?? '', reason, JSON.stringify(options));
    assert.deepEqual(f.files.changed, []);
  }
  const bare = fakeAudit();
  assert.equal(auditLogStep.notApplicable!(await auditLogStep.probe(stepContext(bare)), bare.node), undefined);
});

test('unbounded logs: only the keys that break the bound are edited, in place; auditd re-reads on SIGHUP', async () => {
  const conf = SHIPPED_CONF.replace('num_logs = 5', 'num_logs = 0').replace('max_log_file_action = ROTATE', 'max_log_file_action = keep_logs');
  const f = fakeAudit({ installed: true, auditdConf: conf });
  const ctx = stepContext(f);
  const plan = auditLogStep.plan(await auditLogStep.probe(ctx), {}, ctx.node);
  assert.deepEqual(plan.map(describeChange), [`create ${AUDIT_RULES_FILE}`, `edit ${AUDITD_CONF}`, 'run systemctl kill --signal=HUP auditd.service', 'run augenrules --load']);
  const edit = plan[1] as FileChange;
  assert.equal(edit.after, SHIPPED_CONF);
  assert.match(edit.reason, /max_log_file_action = ROTATE, num_logs = 5/);
  await applyPlan(plan, f);
  assert.equal(f.state.hups, 1);
  assert.deepEqual(failed(await auditLogStep.verify(ctx, {})), []);
  // A bound far too large is brought back to auditd's own.
  assert.equal(editAuditdConf('max_log_file = 900\nnum_logs = 50\n', { max_log_file: '8', num_logs: '5' }), 'max_log_file = 8\nnum_logs = 5\n');
  const huge = fakeAudit({ installed: true, auditdConf: SHIPPED_CONF.replace('max_log_file = 8', 'max_log_file = 900') });
  const hugePlan = auditLogStep.plan(await auditLogStep.probe(stepContext(huge)), {}, huge.node);
  assert.equal((hugePlan.find((c) => c.kind === 'file' && c.path === AUDITD_CONF) as FileChange).after, SHIPPED_CONF);
  // A missing key is added at the end; comments and other keys stay byte for byte.
  assert.equal(editAuditdConf('# mine\nlog_file = /x\n', { num_logs: '5' }), '# mine\nlog_file = /x\nnum_logs = 5\n');
});

test('after a rollback auditd re-reads the restored auditd.conf and the restored rules are loaded again', async () => {
  const f = fakeAudit({ installed: true });
  await runStep(auditLogStep, {}, f);
  await f.files.remove(AUDIT_RULES_FILE); // what the engine's rollback does with a file that did not exist
  const log: string[] = [];
  await auditLogStep.afterRollback!(stepContext(f, log));
  assert.equal(f.state.hups, 1);
  assert.deepEqual(parseAuditctlList((await f.exec.run(['auditctl', '-l'])).stdout), [], 'only what rules.d holds now is loaded');
  assert.deepEqual(log, []);
});

test('locked rules (-e 2) are refused before anything is shown', async () => {
  const f = fakeAudit({ installed: true, enabled: 2 });
  const ctx = stepContext(f);
  const checks = auditLogStep.preflight!(await auditLogStep.probe(ctx), {}, ctx.node);
  assert.deepEqual(failed(checks), ['the audit rules can be changed now (auditctl -s says enabled 2: the rules are locked (-e 2) until the next reboot; reboot, then run this step)']);
});

test('the rules validator refuses what auditctl -R refuses, naming the line', () => {
  const bad: [string, RegExp][] = [
    ['-w etc/passwd -p wa -k identity', /absolute path/],
    ['-w /etc/passwd -p wz -k identity', /-p wants some of r, w, x, a/],
    ['-w /etc/passwd -p ww -k identity', /-p wants some of r, w, x, a, each once/],
    ['-w /etc/passwd -k', /-k wants a key/],
    ['-w "/etc/my file" -p wa', /quote/],
    ['-a always,exit -F dir=/etc/pve -F perm=wa -k pve -w /etc/x', /-w must start the line/],
    ['-a always -F dir=/etc/pve', /wants one action \(always, never\) and one list/],
    ['-a sometimes,exit -F dir=/etc/pve', /wants one action/],
    ['-a always,exit -F dir=etc/pve -F perm=wa', /-F dir must be an absolute path/],
    ['-a always,exit -F dir=/etc/pve -F perm=q', /-F perm=q: wants some of r, w, x, a/],
    ['-a always,exit -F colour=red', /-F colour: not a field auditctl knows/],
    ['-a always,exit -F auid', /no operator/],
    ['-a always,exit -F auid!=', /no value/],
    ['-a always,exit -F arch=b65 -S openat', /not an architecture/],
    ['-a always,exit', /would record every system call/],
    ['-a always,user -S openat', /-S does not apply to the user list/],
    ['-S openat -k x', /not an option|-S belongs to a -a rule/],
    ['-e 3', /-e wants one value/],
    ['-D now', /-D takes no value/],
    ['--delete-everything', /not an option auditctl -R takes/],
    [`-w /etc/passwd -p wa -k ${'k'.repeat(257)}`, /the kernel takes at most 256/],
  ];
  for (const [line, problem] of bad) {
    const found = validateAuditRules(`# a comment\n\n${line}\n`);
    assert.equal(found.length, 1, `${line}: ${JSON.stringify(found)}`);
    assert.equal(found[0]!.line, 3);
    assert.match(found[0]!.problem, problem, line);
  }
  const dup = validateAuditRules('-w /etc/passwd -p wa -k identity\n-w /etc/passwd -p aw -k identity\n');
  assert.deepEqual(dup.map((p) => [p.line, p.problem]), [[2, 'the same rule as line 1: auditctl -R stops there ("Rule exists")']]);
  // What Debian ships and common rules pass.
  assert.deepEqual(validateAuditRules(`${SHIPPED_RULES}-e 1\n-a always,exit -F arch=b64 -S init_module,finit_module -F auid>=1000 -F auid!=unset -k modules\n-a exit,always -F path=/usr/bin/sudo -F perm=x -k priv\n`), []);
});

test('a file rule and its auditctl -l listing are the same rule, in either version of the listing', () => {
  const fromFile = parseAuditLine('-a always,exit -F dir=/etc/pve -F perm=aw -F auid!=unset -k pve-config');
  for (const listing of ['-a always,exit -S all -F dir=/etc/pve -F perm=wa -F auid!=unset -F key=pve-config', '-a always,exit -S all -F dir=/etc/pve -F perm=wa -F auid!=-1 -F key=pve-config']) {
    const fromList = parseAuditLine(listing);
    assert.ok(fromFile && !('problem' in fromFile) && fromList && !('problem' in fromList));
    assert.equal(ruleIdentity(fromFile), ruleIdentity(fromList));
  }
  const other = parseAuditLine('-a always,exit -S all -F dir=/etc/pve -F perm=wa -F key=pve-config');
  assert.ok(other && !('problem' in other) && fromFile && !('problem' in fromFile));
  assert.notEqual(ruleIdentity(other), ruleIdentity(fromFile), 'without auid!=unset it is another rule');
  assert.deepEqual(parseAuditctlList('No rules\n'), []);
});

test('the document: the rules in force with their keys and reasons, and the log bound', async () => {
  const f = fakeAudit();
  await runStep(auditLogStep, {}, f);
  const md = JSON.stringify(await auditLogStep.document!(stepContext(f), {}));
  assert.match(md, new RegExp(`${RULE_LINES.length} audit rules in force`));
  assert.match(md, /"`-w \/etc\/sudoers -p wa -k sudoers`","sudoers","sudo policy changed"/);
  assert.match(md, /auid!=unset -k pve-config`","pve-config"/);
  assert.match(md, /num_logs = 5/);
  const container = fakeAudit({ container: 'systemd-nspawn' });
  assert.match(JSON.stringify(await auditLogStep.document!(stepContext(container), {})), /not used on this node: this node runs in a container/);
});
