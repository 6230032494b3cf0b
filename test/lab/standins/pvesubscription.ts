/**
 * pvesubscription stand-in (pve-manager PVE/CLI/pvesubscription.pm over
 * PVE/API2/Subscription.pm):
 *
 *   get           the API's answer as `key: value` lines, keys sorted (the CLI's printer); without a
 *                 key: message "There is no subscription key", serverid, status notfound, url (as the repositories step's fixture has it)
 *   set KEY       the lab does not ask Proxmox's shop: a key of the right form is active at once,
 *                 and apt's credentials for enterprise.proxmox.com are written (write_apt_auth)
 *   update        re-checks (nothing to do in the lab)
 *   delete        removes the key and apt's credentials
 *
 * Tests switch the node between "no subscription" and "active" with `set` and
 * `delete`. Texts not seen on a live node are [derived].
 */
import { activate, KEY_PATTERN, PRICING_URL, readSubscription, removeSubscription, serverId } from './lib/subscription.ts';

const [cmd, ...args] = process.argv.slice(2);

function print(info: Record<string, string | number | undefined>): void {
  for (const k of Object.keys(info).sort()) if (info[k] !== undefined) process.stdout.write(`${k}: ${info[k]}\n`);
}

function usage(): never {
  process.stderr.write(
    'USAGE: pvesubscription <COMMAND> [ARGS] [OPTIONS]\n\n       pvesubscription delete\n       pvesubscription get\n       pvesubscription set <key>\n       pvesubscription set-offline-key <data>\n       pvesubscription update  [OPTIONS]\n\n       pvesubscription help [<extra-args>] [OPTIONS]\n',
  );
  process.exit(255);
}

switch (cmd) {
  case 'get': {
    const sub = readSubscription();
    if (!sub) print({ message: 'There is no subscription key', serverid: serverId(), status: 'notfound', url: PRICING_URL });
    else print({ ...sub, url: PRICING_URL });
    break;
  }
  case 'set': {
    const key = args[0];
    if (key === undefined) {
      process.stderr.write('400 not enough arguments\npvesubscription set <key>\n');
      process.exit(255);
    }
    if (!KEY_PATTERN.test(key)) {
      process.stderr.write(`400 Parameter verification failed.\nkey: value does not match the regex pattern\n\npvesubscription set <key>\n`);
      process.exit(255);
    }
    activate(key);
    break;
  }
  case 'update':
    break;
  case 'delete':
    removeSubscription();
    break;
  default:
    usage();
}
