/**
 * Every Proxmox VE message text pve-baseline knows, in ONE place
 * (from the pve-access-control, pve-common, pve-cluster, pve-manager and
 * pve-firewall sources).
 *
 * Texts are returned WITHOUT a trailing newline. Where Proxmox's Perl `die`s
 * with a trailing "\n" and that newline shows in the output (a parameter
 * error's message ends with it, which prints a blank line before the usage),
 * the caller adds it; see `PARAM_FORMAT_ERROR_ENDS_WITH_NEWLINE`.
 *
 * Entries marked [derived] were composed from the source code and have not
 * been seen on a live node; correct them here when one is.
 */

// --- name validation (Auth/Plugin.pm, AccessControl.pm, JSONSchema.pm) -----
export const msg = {
  userTooShort: (u: string) => `user name '${u}' is too short`,
  userTooLong: (u: string, len: number) => `user name '${u}' is too long (${len} > 64)`,
  userInvalid: (u: string) => `value '${u}' does not look like a valid user name`,
  tokenIdInvalid: (t: string) => `value '${t}' does not look like a valid token ID`,
  tokenSplitFailed: (t: string) => `'${t}' is not a valid token ID - not able to split into user and token parts`,
  realmInvalid: (r: string) => `realm '${r}' contains invalid characters`, // [derived]
  groupInvalid: (g: string) => `group name '${g}' contains invalid characters`,
  roleInvalid: (r: string) => `role name '${r}' contains invalid characters`,
  poolInvalid: (p: string) => `pool name '${p}' contains invalid characters`,
  poolTooDeep: (p: string) => `pool name '${p}' nested too deeply (max levels = 3)`,
  poolMustStartWithLetter: () => `pool name must start with a letter`,
  privInvalid: (p: string) => `invalid privilege '${p}'`,
  emailInvalid: () => `value does not look like a valid email address`, // [derived]
  vmidInvalid: () => `value does not look like a valid VM ID`, // [derived]
  storageIdInvalid: (s: string) => `storage ID '${s}' contains illegal characters`, // [derived]
  nodeInvalid: (n: string) => `value '${n}' does not look like a valid node name`, // [derived]

  // --- JSONSchema parameter verification (pve-common JSONSchema.pm) -------
  paramVerificationFailed: () => `Parameter verification failed.`,
  invalidFormat: (inner: string) => `invalid format - ${inner}`,
  typeCheckFailed: (type: string, value: string) => `type check ('${type}') failed - got '${value}'`,
  propertyMissing: () => `property is missing and it is not optional`,
  propertyNotDefined: () => `property is not defined in schema and the schema does not allow additional properties`,
  patternMismatch: () => `value does not match the regex pattern`,
  maxLength: (n: number) => `value may only be ${n} characters long`,
  minLength: (n: number) => `value must be at least ${n} characters long`,
  maximum: (n: number) => `value must have a maximum value of ${n}`,
  minimum: (n: number) => `value must have a minimum value of ${n}`,
  notInEnum: (v: string, values: readonly string[]) =>
    `value '${v}' does not have a value in the enumeration '${values.join(', ')}'`,
  requiresProperty: (p: string) => `missing property - '${p}' requires this property`,
  unableToParseOption: () => `unable to parse option`,
  unableToParseBoolean: () => `unable to parse boolean option`,
  notEnoughArguments: () => `not enough arguments`,
  tooManyArguments: () => `too many arguments`,
  // Getopt::Long warnings printed before "unable to parse option"
  getoptUnknown: (opt: string) => `Unknown option: ${opt}`,
  getoptAmbiguous: (opt: string, candidates: readonly string[]) =>
    `Option ${opt} is ambiguous (${candidates.join(', ')})`,
  getoptRequiresArgument: (opt: string) => `Option ${opt} requires an argument`,

  // --- CLIHandler -----------------------------------------------------------
  unknownCommand: (cmd: string) => `unknown command '${cmd}'`,
  incompleteCommand: (cmd: string) => `incomplete command '${cmd}'`,
  noCommandSpecified: () => `no command specified`,
  usageHeader: (exe: string) => `USAGE: ${exe} <COMMAND> [ARGS] [OPTIONS]`,
  errorPrefix: (m: string) => `ERROR: ${m}`,

  // --- lock_user_config error prefixes (API2/*.pm) --------------------------
  prefix: {
    createUser: 'create user failed',
    updateUser: 'update user failed',
    deleteUser: 'delete user failed',
    createGroup: 'create group failed',
    updateGroup: 'update group failed',
    deleteGroup: 'delete group failed',
    createRole: 'create role failed',
    updateRole: 'update role failed',
    deleteRole: 'delete role failed',
    acl: 'ACL update failed',
    createPool: 'create pool failed',
    updatePool: 'update pools failed',
    deletePool: 'delete pool failed',
    generateToken: 'generating token failed',
    updateToken: 'updating token info failed',
    deleteToken: 'deleting token failed',
  },

  // --- access-control API errors (API2/User.pm, Group.pm, Role.pm, ACL.pm, Pool.pm) --
  userExists: (u: string) => `user '${u}' already exists`,
  noSuchUser: (u: string) => `no such user ('${u}')`,
  noSuchGroup: (g: string) => `no such group '${g}'`,
  noSuchToken: (t: string, u: string) => `no such token '${t}' for user '${u}'`,
  tokenExists: () => `Token already exists.`,
  groupExists: (g: string) => `group '${g}' already exists`,
  groupMissing: (g: string) => `group '${g}' does not exist`,
  roleExists: (r: string) => `role '${r}' already exists`,
  roleMissing: (r: string) => `role '${r}' does not exist`,
  rolePveNamespace: () => `cannot use role ID starting with the (case-insensitive) 'PVE' namespace`,
  roleNotModifiable: (r: string) => `auto-generated role '${r}' cannot be modified`,
  roleNotDeletable: (r: string) => `auto-generated role '${r}' cannot be deleted`,
  userMissing: (u: string) => `user '${u}' does not exist`,
  aclNeedsMember: () => `either 'users', 'groups' or 'tokens' is required.`,
  aclInvalidPath: (p: string) => `invalid ACL path '${p}'`,
  poolExists: (p: string) => `pool '${p}' already exists`,
  poolMissing: (p: string) => `pool '${p}' does not exist`,
  poolNotEmptyVm: (p: string, vmid: string) => `pool '${p}' is not empty (contains VM ${vmid})`,
  poolNotEmptyStorage: (p: string, s: string) => `pool '${p}' is not empty (contains storage '${s}')`,
  vmAlreadyMember: (vmid: string) => `VM ${vmid} is already a pool member`,
  vmInOtherPool: (vmid: string, pool: string) => `VM ${vmid} belongs already to pool '${pool}'`,
  vmNotMember: (vmid: string) => `VM ${vmid} is not a pool member`,
  storageAlreadyMember: (s: string) => `Storage '${s}' is already a pool member`,
  storageNotMember: (s: string) => `Storage '${s}' is not a pool member`,
  passwordsDoNotMatch: () => `passwords do not match`,
  passwordPromptNew: () => `Enter new password: `,
  passwordPromptRetype: () => `Retype new password: `,
  userDisabled: (u: string) => `user '${u}' is disabled`,
  userExpired: (u: string) => `user '${u}' access expired`,
  tokenExpired: (t: string) => `token '${t}' access expired`,
  permissionCheckFailed: (what: string) => `Permission check failed (${what})`,
  /** PVE::Tools::run_command failure text, prefixed by its errmsg (pam realm: 'change password failed') [derived]. */
  commandFailed: (cmdline: string, code: number) => `command '${cmdline}' failed: exit code ${code}`,
  changePasswordFailed: 'change password failed',

  /** pveum's $print_perm_result (CLI/pveum.pm) after the 'ACL path' / 'Permissions' table */
  permsPropagateNote: () => `Permissions marked with '(*)' have the 'propagate' flag set.`,

  // --- user.cfg parser warnings (AccessControl.pm parse_user_config) ---------
  cfg: {
    ignoreLine: (line: string) => `user config - ignore config line: ${line}`,
    ignoreUserInvalid: (u: string) => `user config - ignore user '${u}' - invalid user name`,
    ignoreUserExpire: (u: string, e: string) => `user config - ignore user '${u}' - (illegal characters in expire '${e}')`,
    ignoreGroupInvalid: (g: string) => `user config - ignore group '${g}' - invalid characters in group name`,
    ignoreGroupMember: (u: string) => `user config - ignore invalid group member '${u}'`,
    ignoreRoleInvalid: (r: string) => `user config - ignore role '${r}' - invalid characters in role name`,
    ignorePriv: (p: string) => `user config - ignore invalid privilege '${p}'`,
    ignoreAclRoleName: (r: string) => `user config - ignore invalid role name '${r}' in acl`,
    ignoreAclRole: (r: string) => `user config - ignore invalid acl role '${r}'`,
    ignoreAclGroup: (g: string) => `user config - ignore invalid acl group '${g}'`,
    ignoreAclMember: (u: string) => `user config - ignore invalid acl member '${u}'`,
    ignoreAclToken: (t: string) => `user config - ignore invalid acl token '${t}'`,
    invalidAclUg: (ug: string) => `user config - invalid user/group '${ug}' in acl`,
    ignoreAclPath: (p: string) => `user config - ignore invalid path in acl '${p}'`,
    ignorePoolInvalid: (p: string) => `user config - ignore pool '${p}' - invalid characters in pool name`,
    ignoreVmid: (v: string, p: string) => `user config - ignore invalid vmid '${v}' in pool '${p}'`,
    ignoreDuplicateVmid: (v: string, p: string) => `user config - ignore duplicate vmid '${v}' in pool '${p}'`,
    ignoreStorage: (s: string, p: string) => `user config - ignore invalid storage '${s}' in pool '${p}'`,
    ignoreTokenInvalid: (t: string) => `user config - ignore invalid tokenid '${t}'`,
    ignoreTokenExpire: (t: string, e: string) => `user config - ignore token '${t}' - (illegal characters in expire '${e}')`,
    ignoreTokenNoUser: (t: string) => `user config - ignore token '${t}' - user does not exist`,
  },
  shadowInvalidLine: () => `pve shadow password: ignore invalid line`,
  tokenCfgInvalidLine: () => `skipping invalid token.cfg entry`,

  // --- pvesh (pve-manager PVE/CLI/pvesh.pm) --------------------------------
  noHandler: (cmd: string, path: string) => `no '${cmd}' handler for '${path}'`,

  // --- pvecm (pve-cluster) ----------------------------------------------------
  corosyncConfMissing: () =>
    `Error: Corosync config '/etc/pve/corosync.conf' does not exist - is this node part of a cluster?`,

  // --- pve-firewall (pve-firewall Service/pve_firewall.pm) ------------------
  /** pve-firewall status: 'Status: enabled/running', '... (pending changes)', 'Status: disabled/stopped' */
  firewallStatus: (enabled: boolean, running: boolean, pending: boolean) =>
    // pve_firewall.pm's status printer: "$enable/$status", pending changes only known while running
    `Status: ${enabled ? 'enabled' : 'disabled'}/${running ? 'running' : 'stopped'}${running && pending ? ' (pending changes)' : ''}`,
  firewallCantParseOption: (line: string) => `can't parse option '${line}'`,
} as const;

/**
 * Exit status of a Proxmox CLI tool that dies with an uncaught Perl error
 * [derived]: Perl's die exits with $! or ($? >> 8) when set, else 255. The
 * stand-ins use 255; `exit(-1)` in CLIHandler (unknown command) is 255 too.
 */
export const DIE_EXIT_CODE = 255;

/**
 * In a 400 "Parameter verification failed." error, format errors come from
 * verifier functions that `die "...\n"`, so the message ends with a newline and
 * PVE::Exception::stringify prints a blank line after it. Other schema errors
 * (type, length, pattern, "property is not defined ...") end without one.
 */
export const PARAM_FORMAT_ERROR_ENDS_WITH_NEWLINE = true;
