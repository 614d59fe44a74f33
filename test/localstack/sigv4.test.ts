import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@aws-crypto/sha256-js';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StaticCredentialStore } from '../../localstack/core/credentials.ts';
import { parseCredentialScope, verifySignature } from '../../localstack/core/sigv4.ts';
import type { SignatureVerdict } from '../../localstack/core/sigv4.ts';

// A bare server that answers every request with the verdict on its signature, so the tests
// sign real HTTP requests exactly as clients do and observe what the server concluded.
let server: Server;
let port: number;
const store = new StaticCredentialStore([
  { accessKeyId: 'test', secretAccessKey: 'test' },
  { accessKeyId: 'AKIDALICE', secretAccessKey: 'alice-secret' },
]);
const verdicts: SignatureVerdict[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void verifySignature({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) }, store).then((verdict) => {
        verdicts.push(verdict);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ verdict, scope: parseCredentialScope(req) ?? null }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function signer(service: string, secretAccessKey = 'test', accessKeyId = 'test', region = 'us-east-1') {
  return new SignatureV4({ credentials: { accessKeyId, secretAccessKey }, region, service, sha256: Sha256, uriEscapePath: service !== 's3', applyChecksum: false });
}

function toQueryString(query: Record<string, string | string[] | null> | undefined): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query ?? {})) {
    for (const value of Array.isArray(v) ? v : [v ?? '']) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(value)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

async function send(request: HttpRequest, overrides: { body?: string; headers?: Record<string, string> } = {}) {
  const response = await fetch(`http://127.0.0.1:${port}${request.path}${toQueryString(request.query)}`, {
    method: request.method,
    headers: { ...(request.headers as Record<string, string>), ...overrides.headers },
    ...(request.method === 'GET' ? {} : { body: overrides.body ?? (request.body as string) }),
  });
  return (await response.json()) as { verdict: SignatureVerdict; scope: unknown };
}

function apiRequest(body: string, extra: Partial<ConstructorParameters<typeof HttpRequest>[0]> = {}) {
  return new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port,
    path: '/restapis/abc123/local/_user_request_/dispatches/d%3A1%20x/cancel',
    query: { reason: 'a b+c', tag: ['2', '1'] },
    headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/json' },
    body,
    ...extra,
  });
}

describe('parseCredentialScope', () => {
  it('reads the scope of an Authorization header', () => {
    const scope = parseCredentialScope({
      headers: { authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-2/states/aws4_request, SignedHeaders=host, Signature=ab' },
    });
    expect(scope).toEqual({ accessKeyId: 'AKID', date: '20260101', region: 'eu-west-2', service: 'states' });
  });

  it('reads the scope of a presigned URL', () => {
    const scope = parseCredentialScope({ headers: {}, url: '/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test%2F20260101%2Fus-east-1%2Fs3%2Faws4_request' });
    expect(scope).toEqual({ accessKeyId: 'test', date: '20260101', region: 'us-east-1', service: 's3' });
  });

  it('is undefined for unsigned and SigV2 requests', () => {
    expect(parseCredentialScope({ headers: {}, url: '/x' })).toBeUndefined();
    expect(parseCredentialScope({ headers: { authorization: 'AWS AKID:c2lnbmF0dXJl' } })).toBeUndefined();
  });
});

describe('verifySignature', () => {
  it('accepts a request signed by the AWS SDK client itself', async () => {
    verdicts.length = 0;
    const client = new DynamoDBClient({ endpoint: `http://127.0.0.1:${port}`, region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
    await client.send(new ListTablesCommand({})).catch(() => undefined);
    client.destroy();
    expect(verdicts[0]).toMatchObject({ ok: true, accessKeyId: 'test', scope: { region: 'eu-west-1', service: 'dynamodb' } });
  });

  it('accepts a signed execute-api call with an encoded path, repeated query keys and a body', async () => {
    const body = JSON.stringify({ taskIds: [1, 2], reason: 'ünïcode' });
    const signed = await signer('execute-api', 'alice-secret', 'AKIDALICE').sign(apiRequest(body));
    const { verdict } = await send(signed as HttpRequest);
    expect(verdict).toMatchObject({ ok: true, accessKeyId: 'AKIDALICE' });
  });

  it('refuses a wrong secret, an unknown key, a missing signature', async () => {
    const body = '{}';
    const wrongSecret = await signer('execute-api', 'not-the-secret').sign(apiRequest(body));
    expect((await send(wrongSecret as HttpRequest)).verdict).toMatchObject({ ok: false, code: 'Mismatch' });
    const unknown = await signer('execute-api', 'x', 'AKIDNOBODY').sign(apiRequest(body));
    expect((await send(unknown as HttpRequest)).verdict).toMatchObject({ ok: false, code: 'UnknownAccessKey' });
    expect((await send(apiRequest(body))).verdict).toMatchObject({ ok: false, code: 'Missing' });
  });

  it('refuses a request whose body or signed header was changed after signing', async () => {
    const signed = (await signer('execute-api').sign(apiRequest('{"taskIds":[1]}'))) as HttpRequest;
    expect((await send(signed, { body: '{"taskIds":[2]}' })).verdict).toMatchObject({ ok: false, code: 'Mismatch' });
    expect((await send(signed, { headers: { 'content-type': 'text/plain' } })).verdict).toMatchObject({ ok: false, code: 'Mismatch' });
  });

  it('refuses a body that does not match its declared x-amz-content-sha256', async () => {
    const signed = (await new SignatureV4({ credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, region: 'us-east-1', service: 'execute-api', sha256: Sha256, applyChecksum: true }).sign(
      apiRequest('{"a":1}'),
    )) as HttpRequest;
    expect((await send(signed, { body: '{"a":2}' })).verdict).toMatchObject({ ok: false, code: 'PayloadHashMismatch' });
  });

  it('refuses a signature older than 15 minutes', async () => {
    const signed = await signer('execute-api').sign(apiRequest('{}'), { signingDate: new Date(Date.now() - 20 * 60 * 1000) });
    expect((await send(signed as HttpRequest)).verdict).toMatchObject({ ok: false, code: 'Expired' });
  });

  it('accepts a presigned S3 URL and refuses it once expired', async () => {
    const request = new HttpRequest({
      method: 'GET',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port,
      path: '/bucket/some%20key/with~chars',
      query: { 'x-id': 'GetObject' },
      headers: { host: `127.0.0.1:${port}`, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    const presignOptions = { unhoistableHeaders: new Set(['x-amz-content-sha256']), unsignableHeaders: new Set(['x-amz-content-sha256']) };
    const fresh = await signer('s3').presign(request, { expiresIn: 60, ...presignOptions });
    delete fresh.headers['x-amz-content-sha256'];
    expect((await send(fresh as HttpRequest)).verdict).toMatchObject({ ok: true, scope: { service: 's3' } });
    const old = await signer('s3').presign(request, { expiresIn: 60, signingDate: new Date(Date.now() - 120_000), ...presignOptions });
    delete old.headers['x-amz-content-sha256'];
    expect((await send(old as HttpRequest)).verdict).toMatchObject({ ok: false, code: 'Expired' });
  });
});
