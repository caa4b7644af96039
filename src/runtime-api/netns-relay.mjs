// Runs inside a fresh network namespace (made by `unshare --net`), where only a
// loopback interface exists and nothing outside is reachable. It serves the Runtime
// API address the bootstrap expects by relaying each TCP connection to the Unix
// socket the real Runtime API listens on (sockets on the file system cross network
// namespaces), then runs the bootstrap and exits with its status.
//   argv: <unix socket> <port> <command> [args...] ; the command's environment is inherited.
import { spawn } from 'node:child_process';
import net from 'node:net';

const [socketPath, port, command, ...args] = process.argv.slice(2);
const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
});
server.listen(Number(port), '127.0.0.1', () => {
  const child = spawn(command, args, {
    stdio: 'inherit',
    env: { ...process.env, AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}` },
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => child.kill('SIGKILL'));
});
