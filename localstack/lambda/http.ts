/**
 * Small HTTP plumbing shared by the Lambda, API Gateway and EventBridge emulations.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Reads a whole request body; the services here speak JSON with small bodies. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

/** Ends a response with a body and headers (content length set here). */
export function send(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...headers, 'Content-Length': String(bytes.length) });
  res.end(bytes);
}
