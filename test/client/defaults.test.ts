// The SDK's defaults in a fresh shell: a child process with no AWS_* variables and a HOME of
// its own (with a written ~/.aws/config) connects with `connect({ endpoint })` alone. A
// loopback endpoint gets the test key pair, the region comes from the profile chain, and the
// AWS SDK's Node version notice is left to the user (valence does not hide it).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, type CliRun } from '../cli/helpers.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';

const SCRIPT = fileURLToPath(new URL('./fixtures/connect-fresh-shell.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSX = import.meta.resolve('tsx');

let h: RuntimeHarness;
let home: string;
beforeAll(async () => {
  h = await startHarness();
  home = mkdtempSync(join(tmpdir(), 'valence-home-'));
  mkdirSync(join(home, '.aws'));
  writeFileSync(join(home, '.aws', 'config'), `[default]\nregion = ${h.cloud.region}\n\n[profile other]\nregion = sa-east-1\n`);
}, 120_000);
afterAll(async () => {
  await h?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

/** A shell with nothing AWS in it but the HOME; the SDK's own warning switch is off too. */
function freshShell(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = cleanEnv({ HOME: home, USERPROFILE: home, ...extra });
  delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  return env;
}

function runScript(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, SCRIPT, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** An HTTP server on 127.0.0.1 that records the headers of each request and refuses it. */
async function recorder(): Promise<{ server: Server; endpoint: string; requests: IncomingHttpHeaders[] }> {
  const requests: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    requests.push(req.headers);
    req.resume();
    res.writeHead(400, { 'content-type': 'text/xml' });
    res.end('<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id x does not exist</Message></Error></ErrorResponse>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests };
}

describe('connect({ endpoint }) in a fresh shell', () => {
  it('dispatches and reads the typed result on a local cloud with no AWS_* variables', async () => {
    const env = freshShell();
    expect(Object.keys(env).filter((key) => key.startsWith('AWS_'))).toEqual([]);
    const run = await runScript([h.cloud.endpoint], env);
    expect(run.code, run.stderr).toBe(0);
    const printed = JSON.parse(run.stdout) as { id: string; result: number };
    expect(printed.result).toBe(16);
    // The dispatch is really in the cloud the parent started.
    expect(await h.client.getResult(printed.id)).toMatchObject({ lattice: 'chain', status: 'COMPLETED', result: 16 });
    // The AWS SDK's notice about Node < 22 reaches the user: valence does not silence it.
    if (Number(process.versions.node.split('.')[0]) < 22) expect(run.stderr).toMatch(/NodeVersionSupportWarning/);
    expect(run.stderr).not.toMatch(/CredentialsProviderError/);
  }, 120_000);

  it('signs with the test key pair and the region of the profile in ~/.aws/config', async () => {
    const { server, endpoint, requests } = await recorder();
    try {
      const run = await runScript([endpoint, 'outputs'], freshShell());
      expect(run.code, run.stderr).toBe(0);
      expect(requests.length).toBeGreaterThan(0);
      expect(requests[0]!.authorization).toMatch(new RegExp(`Credential=test/\\d{8}/${h.cloud.region}/cloudformation/aws4_request`));
      const other = await runScript([endpoint, 'outputs'], freshShell({ AWS_REGION: 'ap-south-1' }));
      expect(other.code, other.stderr).toBe(0);
      expect(requests.at(-1)!.authorization).toMatch(/Credential=test\/\d{8}\/ap-south-1\/cloudformation\//);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }, 120_000);

  it('takes the region from AWS_REGION first, then the named profile, then the default profile', async () => {
    const region = async (extra: Record<string, string>): Promise<string> => {
      const run = await runScript(['http://127.0.0.1:9', 'region'], freshShell(extra));
      expect(run.code, run.stderr).toBe(0);
      return (JSON.parse(run.stdout) as { region: string }).region;
    };
    expect(await region({})).toBe(h.cloud.region);
    expect(await region({ AWS_PROFILE: 'other' })).toBe('sa-east-1');
    expect(await region({ AWS_PROFILE: 'other', AWS_REGION: 'eu-north-1' })).toBe('eu-north-1');
  }, 120_000);
});
