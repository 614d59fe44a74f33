/**
 * API Gateway resource paths: `{param}` matches one segment, a trailing `{param+}` matches
 * the rest, and a literal segment wins over a parameter, which wins over a greedy one.
 */
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** A resource path template prepared for matching. */
export interface CompiledRoute {
  /** The template as API Gateway shows it in `resource`, e.g. `/dispatches/{id}/cancel`. */
  readonly resource: string;
  readonly segments: readonly RouteSegment[];
}

/** One segment of a resource path template. */
export type RouteSegment =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'greedy'; readonly name: string };

/** A template that API Gateway would not accept. */
export class InvalidResourcePathError extends ValenceError {
  override readonly name = 'InvalidResourcePathError';
  constructor(message: string) {
    super(ErrorCode.LOCAL_CLOUD_INVALID_CONFIG, message);
  }
}

/** Parses a resource path template. */
export function compileRoute(path: string): CompiledRoute {
  if (!path.startsWith('/')) throw new InvalidResourcePathError(`resource path '${path}' must start with '/'`);
  const raw = path.split('/').filter(Boolean);
  const segments = raw.map((segment, index): RouteSegment => {
    const param = /^\{([A-Za-z0-9._-]+)(\+?)\}$/.exec(segment);
    if (!param) {
      if (/[{}]/.test(segment)) throw new InvalidResourcePathError(`bad path segment '${segment}' in '${path}'`);
      return { kind: 'literal', value: segment };
    }
    if (param[2] === '+') {
      if (index !== raw.length - 1) throw new InvalidResourcePathError(`greedy '{${param[1]}+}' must be the last segment of '${path}'`);
      return { kind: 'greedy', name: param[1]! };
    }
    return { kind: 'param', name: param[1]! };
  });
  return { resource: '/' + raw.join('/'), segments };
}

/** The best route for a method and a decoded request path, with its path parameters. */
export function matchRoute<R extends CompiledRoute & { readonly method: string }>(
  routes: readonly R[],
  method: string,
  path: string,
): { route: R; pathParameters: Record<string, string> } | undefined {
  const parts = path.split('/').filter(Boolean);
  let best: { route: R; pathParameters: Record<string, string>; score: number[] } | undefined;
  for (const route of routes) {
    if (route.method !== method && route.method !== 'ANY') continue;
    const matched = matchSegments(route.segments, parts);
    if (!matched) continue;
    // Specificity: literal segments first, then single parameters, then an exact method over ANY.
    const score = [
      ...route.segments.map((s) => (s.kind === 'literal' ? 2 : s.kind === 'param' ? 1 : 0)),
      route.method === method ? 1 : 0,
    ];
    if (!best || compareScores(score, best.score) > 0) best = { route, pathParameters: matched, score };
  }
  return best && { route: best.route, pathParameters: best.pathParameters };
}

function matchSegments(segments: readonly RouteSegment[], parts: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.kind === 'greedy') {
      if (i >= parts.length) return undefined;
      params[segment.name] = parts.slice(i).join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined) return undefined;
    if (segment.kind === 'literal' && segment.value !== part) return undefined;
    if (segment.kind === 'param') params[segment.name] = part;
  }
  return segments.length === parts.length ? params : undefined;
}

function compareScores(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const diff = (a[i] ?? -1) - (b[i] ?? -1);
    if (diff !== 0) return diff;
  }
  return 0;
}
