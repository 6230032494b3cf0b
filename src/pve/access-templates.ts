/**
 * The access models the wizard offers, each in plain words (seeds 002-004):
 * filled in with the few names and guest ids the operator gives, they are
 * ordinary declarations (access-model.ts), checked and planned like one
 * from an answers file. Pure data and functions.
 */
import type { AccessModel } from './access-model.ts';
import type { PveMajor } from './privileges.ts';

export type AccessTemplateId = 'web-team' | 'vm-operators' | 'auditor' | 'backup-operator' | 'monitoring';

/** What a template asks for (the step's follow-up questions). */
export interface TemplateInput {
  /** Guest ids, for the web team's external and internal pools. */
  externalVms: string[];
  internalVms: string[];
  /** The people a team template puts in its group (user ids). */
  members: string[];
  /** The pool of a VM operator team, and its guests. */
  pool: string;
  vms: string[];
}

export interface AccessTemplate {
  id: AccessTemplateId;
  label: string;
  /** One line in the list. */
  hint: string;
  /** What it creates and why, for the help text and the document. */
  description: string;
  /** Which of TemplateInput it needs. */
  asks: readonly (keyof TemplateInput)[];
  build(input: TemplateInput, major: PveMajor): AccessModel;
}

const num = (ids: string[]) => ids.map(Number);

export const ACCESS_TEMPLATES: Record<AccessTemplateId, AccessTemplate> = {
  'web-team': {
    id: 'web-team',
    label: 'Web team (the seed-004 example)',
    hint: 'developers see and open the console of their pool\'s VMs; their manager may also power them',
    description:
      'Pools ExtWebSer and IntWebSer for the external and internal web servers; Betty (external) and Jim (internal) get WebDev on their pool, to watch the VMs and open their consoles; Nancy, their manager, gets WebAppManager on both, to start, stop and reboot them. Roles go to groups (web-ext, web-int, web-managers), and Pool.Audit is in both roles so the pools show in the web UI.',
    asks: ['externalVms', 'internalVms'],
    build(input, major) {
      // The seed's roles name VM.Monitor, which Proxmox VE 9 dropped (the QEMU monitor needs Sys.Audit there).
      const monitor = major === 8 ? ['VM.Monitor'] : [];
      return {
        roles: {
          WebDev: ['Mapping.Audit', 'Pool.Audit', 'VM.Audit', 'VM.Console', ...monitor].sort(),
          WebAppManager: ['Mapping.Audit', 'Pool.Audit', 'VM.Audit', 'VM.PowerMgmt', ...monitor].sort(),
        },
        users: {
          'betty@pve': { comment: 'Betty: external web pages' },
          'jim@pve': { comment: 'Jim: internal web pages' },
          'nancy@pve': { comment: 'Nancy: web team manager' },
        },
        groups: {
          'web-ext': { comment: 'External web developers', members: ['betty@pve'] },
          'web-int': { comment: 'Internal web developers', members: ['jim@pve'] },
          'web-managers': { comment: 'Web team managers', members: ['nancy@pve'] },
        },
        pools: {
          ExtWebSer: { comment: 'External web servers', vms: num(input.externalVms) },
          IntWebSer: { comment: 'Internal web servers', vms: num(input.internalVms) },
        },
        acl: [
          { path: '/pool/ExtWebSer', roles: ['WebDev'], groups: ['web-ext'], propagate: true },
          { path: '/pool/IntWebSer', roles: ['WebDev'], groups: ['web-int'], propagate: true },
          { path: '/pool/ExtWebSer', roles: ['WebAppManager'], groups: ['web-managers'], propagate: true },
          { path: '/pool/IntWebSer', roles: ['WebAppManager'], groups: ['web-managers'], propagate: true },
        ],
      };
    },
  },
  'vm-operators': {
    id: 'vm-operators',
    label: 'VM operator team scoped to a pool',
    hint: 'a team runs the VMs of one pool (console, power, backup, CD-ROM) and nothing else',
    description:
      'A pool holding the team\'s guests and a group vm-operators with PVEVMUser (console, power, backup, CD-ROM and cloud-init) and PVEPoolUser (to see the pool) on /pool/NAME: the team reaches only the guests in that pool.',
    asks: ['pool', 'vms', 'members'],
    build(input) {
      return {
        users: Object.fromEntries(input.members.map((m) => [m, {}])),
        groups: { 'vm-operators': { comment: `VM operators of pool ${input.pool}`, members: input.members } },
        pools: { [input.pool]: { comment: 'Guests the VM operator team runs', vms: num(input.vms) } },
        acl: [{ path: `/pool/${input.pool}`, roles: ['PVEPoolUser', 'PVEVMUser'], groups: ['vm-operators'], propagate: true }],
      };
    },
  },
  auditor: {
    id: 'auditor',
    label: 'Auditor (read-only)',
    hint: 'sees everything, changes nothing: PVEAuditor on /',
    description: 'A group auditors with PVEAuditor on / (the audit privileges of every area: guests, storage, nodes, pools, SDN, mappings): read-only access for reviews and compliance.',
    asks: ['members'],
    build(input) {
      return {
        users: Object.fromEntries(input.members.map((m) => [m, {}])),
        groups: { auditors: { comment: 'Read-only access for audits', members: input.members } },
        acl: [{ path: '/', roles: ['PVEAuditor'], groups: ['auditors'], propagate: true }],
      };
    },
  },
  'backup-operator': {
    id: 'backup-operator',
    label: 'Backup operator (seed 003)',
    hint: 'runs backups of every guest and nothing else: BackupAdmin on /',
    description: 'A custom role BackupAdmin (Datastore.AllocateSpace, Datastore.Audit, VM.Backup) for a group backup-team on /, as seed 003 sets it up: its members back up guests to storage and cannot change or delete them.',
    asks: ['members'],
    build(input) {
      return {
        roles: { BackupAdmin: ['Datastore.AllocateSpace', 'Datastore.Audit', 'VM.Backup'] },
        users: Object.fromEntries(input.members.map((m) => [m, {}])),
        groups: { 'backup-team': { comment: 'Backup operators', members: input.members } },
        acl: [{ path: '/', roles: ['BackupAdmin'], groups: ['backup-team'], propagate: true }],
      };
    },
  },
  monitoring: {
    id: 'monitoring',
    label: 'Monitoring service account',
    hint: 'svc-monitoring@pve with PVEAuditor on /, for a token (the API tokens step makes it)',
    description: 'The service account svc-monitoring@pve (realm pve, no password, so only its API tokens can act for it) with PVEAuditor on /: what Prometheus exporters and dashboards need to read, and nothing to change. The API tokens step gives it a token.',
    asks: [],
    build() {
      return {
        users: { 'svc-monitoring@pve': { comment: 'Monitoring (API tokens only)' } },
        acl: [{ path: '/', roles: ['PVEAuditor'], users: ['svc-monitoring@pve'], propagate: true }],
      };
    },
  },
};

export const TEMPLATE_IDS = Object.keys(ACCESS_TEMPLATES) as AccessTemplateId[];
