/**
 * pveproxy stand-in (run by pveproxy.service in the lab node): listens on
 * port 8006 like Proxmox's API proxy so reachability (firewall) checks have
 * something to reach; it serves no web UI and no API.
 */
import { createServer } from 'node:http';

const server = createServer((_req, res) => {
  res.writeHead(501, { 'Content-Type': 'text/plain' });
  res.end('pve-baseline lab: pveproxy stand-in (no web UI, no API)\n');
});
server.listen(8006);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
