/**
 * Proxmox VE privileges and built-in roles.
 *
 * The lists are what `create_roles()` in pve-access-control's AccessControl.pm
 * produces from its `$privgroups` table: master (PVE 9, 9.0.3+) and
 * stable-bookworm (PVE 8.2.x). Plain data, no I/O.
 */

export type PveMajor = 8 | 9;

const csv = (s: string): readonly string[] => Object.freeze(s.split(','));

const PVE9_VM_ADMIN = csv(
  'VM.Allocate,VM.Audit,VM.Backup,VM.Clone,VM.Config.CDROM,VM.Config.CPU,VM.Config.Cloudinit,VM.Config.Disk,VM.Config.HWType,VM.Config.Memory,VM.Config.Network,VM.Config.Options,VM.Console,VM.GuestAgent.Audit,VM.GuestAgent.FileRead,VM.GuestAgent.FileSystemMgmt,VM.GuestAgent.FileWrite,VM.GuestAgent.Unrestricted,VM.Migrate,VM.PowerMgmt,VM.Replicate,VM.Snapshot,VM.Snapshot.Rollback',
);
const PVE8_VM_ADMIN = csv(
  'VM.Allocate,VM.Audit,VM.Backup,VM.Clone,VM.Config.CDROM,VM.Config.CPU,VM.Config.Cloudinit,VM.Config.Disk,VM.Config.HWType,VM.Config.Memory,VM.Config.Network,VM.Config.Options,VM.Console,VM.Migrate,VM.Monitor,VM.PowerMgmt,VM.Snapshot,VM.Snapshot.Rollback',
);

/** Privileges that only root-equivalent roles (Administrator) carry; not in PVEAdmin. */
export const ROOT_ONLY_PRIVILEGES = csv(
  'Mapping.Modify,Permissions.Modify,Realm.Allocate,Sys.AccessNetwork,Sys.Incoming,Sys.Modify,Sys.PowerMgmt',
);

const NON_VM_ADMIN = csv(
  'Datastore.Allocate,Datastore.AllocateSpace,Datastore.AllocateTemplate,Datastore.Audit,Group.Allocate,Mapping.Audit,Mapping.Use,Pool.Allocate,Pool.Audit,Realm.AllocateUser,SDN.Allocate,SDN.Audit,SDN.Use,Sys.Audit,Sys.Console,Sys.Syslog,User.Modify',
);

const sorted = (xs: Iterable<string>): readonly string[] => Object.freeze([...new Set(xs)].sort());

function rolesFor(vmAdmin: readonly string[], auditor: string, vmUser: string): Record<string, readonly string[]> {
  const pveAdmin = sorted([...NON_VM_ADMIN, ...vmAdmin]);
  return Object.freeze({
    Administrator: sorted([...pveAdmin, ...ROOT_ONLY_PRIVILEGES]),
    NoAccess: Object.freeze([]),
    PVEAdmin: pveAdmin,
    PVEAuditor: csv(auditor),
    PVEDatastoreAdmin: csv('Datastore.Allocate,Datastore.AllocateSpace,Datastore.AllocateTemplate,Datastore.Audit'),
    PVEDatastoreUser: csv('Datastore.AllocateSpace,Datastore.Audit'),
    PVEMappingAdmin: csv('Mapping.Audit,Mapping.Modify,Mapping.Use'),
    PVEMappingUser: csv('Mapping.Audit,Mapping.Use'),
    PVEPoolAdmin: csv('Pool.Allocate,Pool.Audit'),
    PVEPoolUser: csv('Pool.Audit'),
    PVESDNAdmin: csv('SDN.Allocate,SDN.Audit,SDN.Use'),
    PVESDNUser: csv('SDN.Audit,SDN.Use'),
    PVESysAdmin: csv('Sys.Audit,Sys.Console,Sys.Syslog'),
    PVETemplateUser: csv('VM.Audit,VM.Clone'),
    PVEUserAdmin: csv('Group.Allocate,Realm.AllocateUser,User.Modify'),
    PVEVMAdmin: vmAdmin,
    PVEVMUser: csv(vmUser),
  });
}

/** Built-in ("special") roles per major version: role id -> sorted privileges. */
export const BUILTIN_ROLES: Readonly<Record<PveMajor, Readonly<Record<string, readonly string[]>>>> = Object.freeze({
  9: rolesFor(
    PVE9_VM_ADMIN,
    'Datastore.Audit,Mapping.Audit,Pool.Audit,SDN.Audit,Sys.Audit,VM.Audit,VM.GuestAgent.Audit',
    'VM.Audit,VM.Backup,VM.Config.CDROM,VM.Config.Cloudinit,VM.Console,VM.GuestAgent.Audit,VM.GuestAgent.FileRead,VM.GuestAgent.FileSystemMgmt,VM.GuestAgent.FileWrite,VM.PowerMgmt',
  ),
  8: rolesFor(
    PVE8_VM_ADMIN,
    'Datastore.Audit,Mapping.Audit,Pool.Audit,SDN.Audit,Sys.Audit,VM.Audit',
    'VM.Audit,VM.Backup,VM.Config.CDROM,VM.Config.Cloudinit,VM.Console,VM.PowerMgmt',
  ),
});

/** Every valid privilege name per major version (= Administrator's privileges). */
export const PRIVILEGES: Readonly<Record<PveMajor, readonly string[]>> = Object.freeze({
  9: BUILTIN_ROLES[9].Administrator!,
  8: BUILTIN_ROLES[8].Administrator!,
});

const privSets: Record<PveMajor, ReadonlySet<string>> = {
  9: new Set(PRIVILEGES[9]),
  8: new Set(PRIVILEGES[8]),
};

export function isValidPrivilege(priv: string, major: PveMajor = 9): boolean {
  return privSets[major].has(priv);
}

export function isBuiltinRole(role: string): boolean {
  return Object.prototype.hasOwnProperty.call(BUILTIN_ROLES[9], role);
}

export function builtinRoleNames(): string[] {
  return Object.keys(BUILTIN_ROLES[9]).sort();
}
