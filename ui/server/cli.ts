/**
 * `valence ui`: the CLI loads this module lazily (the SDK does not depend on the dashboard).
 * It connects the SDK client, starts the dashboard on 127.0.0.1, prints the URL (it opens
 * nothing), and runs until SIGINT/SIGTERM or `signal`.
 *
 * @module
 */
import { connect, type ConnectOptions } from '../../sdk/index.ts';
import { startDashboard } from './index.ts';

/** Options of {@link runDashboardCli}. */
export interface DashboardCliOptions {
  /** Where to connect: the CLI's --endpoint / --stack / --region, resolved. */
  readonly connect: ConnectOptions;
  /** @default 0 (a free port) */
  readonly port?: number;
  readonly stdout: (line: string) => void;
  /** Stops the server (tests); SIGINT and SIGTERM do too. */
  readonly signal?: AbortSignal;
}

/** Serves the dashboard until stopped; resolves with the exit code. */
export async function runDashboardCli(options: DashboardCliOptions): Promise<number> {
  const client = connect(options.connect);
  // Fail here, with the client's clear message, when there is no stack to show.
  await client.outputs();
  const onAws = !options.connect.endpoint;
  const region = options.connect.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const dashboard = await startDashboard({ client, port: options.port ?? 0, poll: onAws ? { consoleRegion: region } : {} });
  options.stdout(`valence ui: ${dashboard.url}`);
  options.stdout('Open that URL in a browser on this machine (it carries this start’s token). Ctrl-C stops the server.');
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    options.signal?.addEventListener('abort', stop, { once: true });
  });
  await dashboard.close();
  client.close();
  return 0;
}
