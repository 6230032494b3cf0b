/**
 * The command line: `pve-baseline [COMMAND] [OPTIONS]`, parsed with node's
 * own util.parseArgs. Usage errors name the option and what it wants.
 */
import { parseArgs } from 'node:util';

export type Command =
  | { name: 'wizard' }
  | { name: 'apply'; answers: string; yes: boolean; dryRun: boolean; only?: string[] }
  | { name: 'check'; json: boolean }
  | { name: 'status'; json: boolean }
  | { name: 'revert'; step: string; yes: boolean }
  | { name: 'docs'; out?: string }
  | { name: 'confirm' }
  /** What the unit after a requested reboot runs (src/engine/reboot.ts); not for people. */
  | { name: 'postboot' }
  | { name: 'backup'; drill: boolean; identity?: string }
  | { name: 'help' }
  | { name: 'version' };

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const EXIT = {
  ok: 0,
  /** A step failed, or `check` found drift. */
  failedOrDrift: 1,
  /** Usage error, invalid answers file, no terminal for the wizard, or `check` could not examine a step. */
  usage: 2,
  /** Another pve-baseline holds the lock. */
  locked: 3,
  /** Not root: nothing was changed. */
  notRoot: 4,
  /** A step needs a reboot (apply): reboot the node, then run the same command again; it goes on after that step. */
  reboot: 5,
  /** The output or a file could not be written (a full disk, a closed pipe, an immutable state directory): EX_IOERR of sysexits.h. */
  ioError: 74,
  hangup: 129,
  interrupted: 130,
} as const;

export const HELP = `pve-baseline: take a Proxmox VE node to a documented security baseline
without locking yourself out. Every change is shown before it is made,
backed up, and reversible.

Usage
  pve-baseline                         the wizard (needs a terminal; run as root)
  pve-baseline apply --answers FILE    unattended, from a YAML answers file
        [--yes]                        apply; without it, only show the plans
        [--dry-run]                    probe and plan, change nothing
        [--only STEP,...]              run only these steps
  pve-baseline check [--json]          read-only audit of every step
  pve-baseline status [--json]         what the journal holds
  pve-baseline revert STEP [--yes]     undo a step from its backups; without --yes, show how
  pve-baseline docs [--out FILE]       write the access-policy document from the node's state
  pve-baseline confirm                 from a NEW session: keep a change that could cut
                                       access (it reverts at its deadline otherwise)
  pve-baseline backup                  an encrypted config backup now, copied off the node
                                       and drilled (as the config-backup step set it up)
        [--drill]                      only the restore drill of the newest archive
        [--identity FILE]              the age identity, when it is not kept on the node
  pve-baseline --help | --version

Exit codes
  0    done, or compliant
  1    a step failed (and was rolled back), or check found drift
  2    usage error, invalid answers file, a file refused (a link, a device),
       a damaged journal, no terminal for the wizard, or check could not
       examine a step
  3    another pve-baseline is running on this node
  4    not root: nothing was changed
  5    apply: a step needs a reboot; reboot the node, then run the same
       command again (it goes on after that step)
  74   the output or a file could not be written (a full disk, a closed pipe,
       a read-only or immutable state directory)
  129  the terminal hung up (the journal stays consistent; run again to resume)
  130  stopped with Ctrl+C (run again to resume)
  70   an unexpected internal error (please report it with the output)

Files
  /var/lib/pve-baseline/journal.json   progress and answers (never secrets), mode 0600
  /var/lib/pve-baseline/backups/       every file as it was before its first change
  (PVE_BASELINE_STATE_DIR moves both.)

Environment
  NO_COLOR    no colours        TERM=linux    console-safe glyphs
`;

const COMMANDS = ['apply', 'check', 'status', 'revert', 'docs', 'confirm', 'backup', 'postboot', 'help', 'version'] as const;

export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        answers: { type: 'string', short: 'a' },
        yes: { type: 'boolean', short: 'y' },
        'dry-run': { type: 'boolean', short: 'n' },
        only: { type: 'string' },
        json: { type: 'boolean' },
        out: { type: 'string', short: 'o' },
        drill: { type: 'boolean' },
        identity: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional.*$/s, '.'));
  }
  const { values, positionals } = parsed;
  if (values.help) return { name: 'help' };
  if (values.version) return { name: 'version' };
  const [name, ...extra] = positionals;
  if (name === 'revert') {
    if (extra.length !== 1) throw new UsageError('revert wants exactly one step id, e.g. pve-baseline revert sysctl');
    for (const key of Object.keys(values)) if (key !== 'yes') throw new UsageError(`--${key} does not go with 'revert'`);
    return { name: 'revert', step: extra[0]!, yes: !!values.yes };
  }
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const allowed = (...names: string[]) => {
    for (const key of Object.keys(values)) {
      if (!names.includes(key)) throw new UsageError(`--${key} does not go with ${name ? `'${name}'` : 'the wizard'}`);
    }
  };
  switch (name) {
    case undefined:
      allowed();
      return { name: 'wizard' };
    case 'apply': {
      allowed('answers', 'yes', 'dry-run', 'only');
      if (!values.answers) throw new UsageError("apply needs --answers FILE (a YAML answers file; see 'pve-baseline --help')");
      if (values.yes && values['dry-run']) throw new UsageError('--yes and --dry-run contradict each other; pick one');
      const only = values.only
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (values.only !== undefined && !only?.length) throw new UsageError('--only wants a comma-separated list of step ids');
      return { name: 'apply', answers: values.answers, yes: !!values.yes, dryRun: !!values['dry-run'], ...(only ? { only } : {}) };
    }
    case 'check':
    case 'status':
      allowed('json');
      return { name, json: !!values.json };
    case 'confirm':
      allowed();
      return { name: 'confirm' };
    case 'postboot':
      allowed();
      return { name: 'postboot' };
    case 'backup':
      allowed('drill', 'identity');
      if (values.identity !== undefined && !values.identity) throw new UsageError('--identity wants the file that holds the age identity (AGE-SECRET-KEY-...)');
      return { name: 'backup', drill: !!values.drill, ...(values.identity ? { identity: values.identity } : {}) };
    case 'docs':
      allowed('out');
      return { name: 'docs', ...(values.out ? { out: values.out } : {}) };
    case 'help':
      return { name: 'help' };
    case 'version':
      return { name: 'version' };
    default:
      throw new UsageError(`unknown command '${name}' (commands: ${COMMANDS.join(', ')}; the wizard takes none)`);
  }
}
