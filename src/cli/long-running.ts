import { InvalidArgumentError } from 'commander';

/** A `--port` value: 0 (any free one) to 65535. */
export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) throw new InvalidArgumentError('expected a TCP port, 0 (any free one) to 65535');
  return port;
}

/** Resolves when the process is asked to stop (Ctrl-C, SIGTERM): how a server command runs until interrupted. */
export const untilSignal = () =>
  new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
