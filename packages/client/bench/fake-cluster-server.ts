/**
 * Runs the client tests' fake 3-server cluster (real TCP on loopback) in its own process for the
 * client benchmark, so that server work does not share the client's event loop. Prints one JSON
 * line `{ "servers": ["127.0.0.1:port", ...] }` and runs until stdin closes.
 */
import { TcpFakeCluster } from '../test/fake-cluster.js';

const tcp = await TcpFakeCluster.start({ servers: 3, partitions: 16, replication: 3 });
tcp.cluster.record = false;
process.stdout.write(`${JSON.stringify({ servers: [...tcp.cluster.addresses.values()] })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void tcp.stop().then(() => process.exit(0));
});
