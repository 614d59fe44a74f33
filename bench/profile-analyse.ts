/**
 * Aggregates `.cpuprofile` files (from {@link startAllThreadsProfile} or `node --cpu-prof`)
 * by self time: per cost category of issue 18, per package or module, per function, and per
 * thread role. Used by bench/profile.ts; pure, so a directory of profiles taken elsewhere can
 * be analysed again.
 *
 * Attribution: a sample's self time goes to the category of its own frame when that frame is
 * decisive (a package or a valence file with a known role, or JSON.parse/stringify); otherwise
 * (Node internals, anonymous natives) to the nearest decisive caller, so `crypto.createHmac`
 * under `@smithy/signature-v4` counts as signing and a stream read under s3rver counts as
 * s3rver. Socket and HTTP-parser work that runs from the event loop with no valence or package
 * caller is HTTP: server side on the main thread, client side in worker threads.
 *
 * Bundles (the local cloud runs each handler as one esbuild bundle, see
 * localstack/handler-bundles.ts) are seen through their source maps: a frame in a bundle counts
 * as the package or valence file it was bundled from. Without that, the whole step handler, the
 * SDK included, would be one module. esbuild's own helpers (`__name` of `keepNames`) have no
 * source: they are {@link Category.BundleHelpers}.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { threadRoleOf, type ThreadRole } from './cpu-profile.ts';

/** The cost categories the issue asks for (and what is left over). */
export const Category = {
  SigV4Client: 'HTTP+SigV4: client signing (@smithy/signature-v4, hashing)',
  HttpClient: 'HTTP+SigV4: client HTTP (node-http-handler, sockets, parsing)',
  HttpServer: 'HTTP+SigV4: server HTTP (node http server, router, scope parsing)',
  Dynalite: 'dynalite / LevelDB',
  S3rver: 's3rver (Koa, file store)',
  Json: 'JSON / devalue',
  WorkerMessages: 'worker-thread messages + local Lambda runtime',
  StepFunctions: 'aws-local-stepfunctions + local Step Functions',
  StepHandler: "step handler's own code (sdk/runtime, lambdas)",
  SdkMiddleware: 'AWS SDK client middleware (serde, retries, checksums, endpoints)',
  Client: 'valence client + bench harness',
  Logging: 'logging (Powertools logger, sandbox stdout)',
  ModuleLoading: 'module loading (tsx, esbuild)',
  BundleHelpers: "esbuild's runtime helpers in bundles (keepNames' __name)",
  Gc: 'garbage collector',
  Program: '(program): native, not attributable',
  Other: 'other',
} as const;
/** One of {@link Category}. */
export type Category = (typeof Category)[keyof typeof Category];

type Rule = { readonly category: Category; readonly decisive: boolean };

const PACKAGE_RULES: ReadonlyArray<readonly [RegExp, Category]> = [
  [/^@smithy\/(signature-v4|hash-node|util-hex-encoding)$|^@aws-crypto\//, Category.SigV4Client],
  [/^@smithy\/(node-http-handler|fetch-http-handler)$/, Category.HttpClient],
  [/^(@smithy|@aws-sdk)\/|^(bowser|tslib|uuid)$/, Category.SdkMiddleware],
  [/^(dynalite|async|big\.js|buffer-crc32|lazy|level|lock|memory-level|abstract-level|functional-red-black-tree|module-error|level-supports|level-transcoder|maybe-combine-errors|is-buffer|once|buffer)$/, Category.Dynalite],
  [/^(s3rver|@koa\/.*|koa.*|busboy|dicer|streamsearch|commander|fs-extra|graceful-fs|jsonfile|universalify|winston.*|logform|fecha|triple-beam|@dabh\/.*|colors|@colors\/.*|statuses|http-errors|on-finished|ee-first|accepts|negotiator|mime-types|mime-db|type-is|media-typer|content-type|content-disposition|cache-content-type|http-assert|depd|destroy|encodeurl|escape-html|fresh|parseurl|vary|delegates|only|co|cookies|keygrip|tsscmp|humanize-number|passthrough-counter|bytes|path-to-regexp|methods|setprototypeof|toidentifier|inherits|safe-buffer|deep-equal|debug|ms|chalk|kuler|enabled|fn\.name|one-time|text-hex|color.*|stack-trace|safe-stable-stringify|readable-stream|string_decoder|util-deprecate)$/, Category.S3rver],
  [/^(aws-local-stepfunctions|jsonpath-plus|jsonata|jsep|@jsep-plugin\/.*|asl-validator|asl-path-validator|ajv|ajv-formats|fast-uri|fast-deep-equal|json-schema-traverse|p-limit|yocto-queue|wildcard-match)$/, Category.StepFunctions],
  [/^devalue$/, Category.Json],
  [/^(tsx|esbuild|@esbuild\/.*|get-tsconfig|resolve-pkg-maps|source-map-support)$/, Category.ModuleLoading],
  [/^esbuild:runtime$/, Category.BundleHelpers],
  [/^@aws-lambda-powertools\//, Category.Logging],
];
/** Packages two sides use (s3rver and the S3 client both use fast-xml-parser): the caller decides. */
const SHARED_PACKAGES = /^(fast-xml-parser|strnum|he|lodash|mnemonist|obliterator)$/;

const REPO_RULES: ReadonlyArray<readonly [RegExp, Category]> = [
  [/^localstack\/(server|sigv4|counters|faults|service|index|credentials|cloudformation|deploy)\.ts$|^localstack\/(core|wire|iam)\//, Category.HttpServer],
  [/^localstack\/dynamodb(\.ts$|\/)/, Category.Dynalite],
  [/^localstack\/s3(\.ts$|\/)/, Category.S3rver],
  [/^lambdas\/log\.ts$/, Category.Logging],
  [/^localstack\/stepfunctions\//, Category.StepFunctions],
  [/^localstack\/lambda\//, Category.WorkerMessages],
  [/^sdk\/runtime\/(electron-thread|electron-worker)\.ts$|^sdk\/runtime\/ts-worker-boot\.mjs$/, Category.WorkerMessages],
  [/^sdk\/runtime\/serialization\.ts$/, Category.Json],
  [/^(sdk\/runtime|lambdas|sdk\/model|sdk\/compiler)\/|^sdk\/(status|errors)\.ts$/, Category.StepHandler],
  [/^(sdk\/client|bench)\/|^sdk\/(aws|index)\.ts$/, Category.Client],
];

const NODE_SOFT: ReadonlyArray<readonly [RegExp, Category | 'http']> = [
  [/^node:_http_(client|agent)$/, Category.HttpClient],
  [/^node:_http_server$/, Category.HttpServer],
  [/^node:(_http_|http$|https$|net$|dns$|internal\/(stream_base_commons|net|http|streams|dns|url|timers|process\/task_queues|async_hooks|event_target|abort_controller)|stream$|events$|url$|timers$|internal\/util)/, 'http'],
  [/^node:(internal\/worker|worker_threads|internal\/per_context\/messageport)/, Category.WorkerMessages],
  [/^node:internal\/(modules|vm|process\/esm_loader)|^node:module$/, Category.ModuleLoading],
];

/** Where a frame's code lives: a package, a repo file, a Node module, or a native. */
export function moduleOf(url: string, functionName: string, repoRoots: readonly string[]): { module: string; kind: 'package' | 'repo' | 'node' | 'native' } {
  if (!url) return { module: `(native) ${functionName || '(anonymous)'}`, kind: 'native' };
  if (url.startsWith('node:')) return { module: url, kind: 'node' };
  if (url === BUNDLE_HELPER_URL) return { module: url, kind: 'package' };
  const path = url.startsWith('file:') ? safePath(url) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return { module: rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? path), kind: 'package' };
  }
  for (const root of repoRoots) if (path.startsWith(root)) return { module: path.slice(root.length), kind: 'repo' };
  return { module: path, kind: 'repo' };
}

/** A bundle's source map, read once per file; `null` when it has none. */
const sourceMaps = new Map<string, { readonly map: SourceMap; readonly dir: string } | null>();

function sourceMapOf(path: string): { readonly map: SourceMap; readonly dir: string } | null {
  let hit = sourceMaps.get(path);
  if (hit !== undefined) return hit;
  hit = null;
  const mapFile = `${path}.map`;
  if (path.endsWith('.mjs') && existsSync(mapFile)) {
    try {
      hit = { map: new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]), dir: dirname(mapFile) };
    } catch {
      hit = null;
    }
  }
  sourceMaps.set(path, hit);
  return hit;
}

/** A profile frame as the source it came from: a bundle's frame through its source map (see the module doc). */
function originalFrame(frame: ProfileNode['callFrame']): ProfileNode['callFrame'] {
  if (!frame.url.startsWith('file:') || !frame.url.endsWith('.mjs')) return frame;
  const bundle = sourceMapOf(safePath(frame.url));
  if (!bundle) return frame;
  const entry = bundle.map.findEntry(Math.max(0, frame.lineNumber), Math.max(0, frame.columnNumber ?? 0)) as { originalSource?: string; originalLine?: number };
  if (!entry.originalSource) return { ...frame, url: BUNDLE_HELPER_URL };
  const source = entry.originalSource.startsWith('file:') ? safePath(entry.originalSource) : isAbsolute(entry.originalSource) ? entry.originalSource : resolve(bundle.dir, entry.originalSource);
  return { ...frame, url: pathToFileURL(source).href, lineNumber: entry.originalLine ?? frame.lineNumber };
}
/** What {@link originalFrame} calls the code esbuild adds to a bundle (no source of its own). */
const BUNDLE_HELPER_URL = 'esbuild:runtime';

function safePath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    return url;
  }
}

function ruleFor(url: string, functionName: string, repoRoots: readonly string[]): Rule | { readonly soft: Category | 'http' } | undefined {
  const { module, kind } = moduleOf(url, functionName, repoRoots);
  if (kind === 'native') {
    if (functionName === '(garbage collector)') return { category: Category.Gc, decisive: true };
    if (functionName === '(program)') return { category: Category.Program, decisive: true };
    if (/^(parse|stringify|JSONParse|JSONStringify)$/.test(functionName)) return { category: Category.Json, decisive: true };
    return undefined;
  }
  if (kind === 'package') {
    if (SHARED_PACKAGES.test(module)) return undefined;
    for (const [pattern, category] of PACKAGE_RULES) if (pattern.test(module)) return { category, decisive: true };
    return { category: Category.Other, decisive: true };
  }
  if (kind === 'repo') {
    for (const [pattern, category] of REPO_RULES) if (pattern.test(module)) return { category, decisive: true };
    return { category: Category.Other, decisive: true };
  }
  for (const [pattern, soft] of NODE_SOFT) if (pattern.test(module)) return { soft };
  return undefined;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber?: number };
  readonly children?: readonly number[];
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One row of a ranking. */
export interface CostRow {
  readonly name: string;
  readonly selfMs: number;
  /** Share of the CPU time (idle excluded) of the profiles analysed. */
  readonly share: number;
}

/** What {@link analyseProfiles} returns. */
export interface ProfileAnalysis {
  readonly files: number;
  /** Sampled CPU time, idle excluded, summed over threads (ms). */
  readonly cpuMs: number;
  /** Idle samples (ms), summed over threads: threads waiting. */
  readonly idleMs: number;
  readonly byCategory: readonly CostRow[];
  readonly byThreadRole: readonly (CostRow & { readonly threads: number; readonly categories: readonly CostRow[] })[];
  readonly byModule: readonly CostRow[];
  readonly byFunction: readonly CostRow[];
  /** JSON.parse/stringify and devalue time, by the category of the code that called it. */
  readonly jsonByCaller: readonly CostRow[];
  /** The costliest functions of each category (top 8). */
  readonly functionsByCategory: Readonly<Record<string, readonly CostRow[]>>;
}

/** Aggregates profiles; `role` names each file's thread role (default: from its file name). */
export function analyseProfiles(files: readonly { readonly path: string; readonly role: ThreadRole }[], options: { repoRoots?: readonly string[]; top?: number } = {}): ProfileAnalysis {
  const repoRoots = options.repoRoots ?? [fileURLToPath(new URL('../', import.meta.url))];
  const top = options.top ?? 25;
  const cat = new Map<string, number>();
  const mod = new Map<string, number>();
  const fn = new Map<string, number>();
  const jsonCaller = new Map<string, number>();
  const catFn = new Map<string, Map<string, number>>();
  const roles = new Map<ThreadRole, { ms: number; threads: number; cat: Map<string, number> }>();
  let cpu = 0;
  let idle = 0;
  const add = (m: Map<string, number>, k: string, v: number): void => {
    m.set(k, (m.get(k) ?? 0) + v);
  };
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file.path, 'utf8')) as CpuProfile;
    const role = roles.get(file.role) ?? { ms: 0, threads: 0, cat: new Map<string, number>() };
    roles.set(file.role, role);
    role.threads++;
    const byId = new Map<number, ProfileNode>();
    const parent = new Map<number, number>();
    for (const node of profile.nodes) {
      byId.set(node.id, { ...node, callFrame: originalFrame(node.callFrame) });
      for (const child of node.children ?? []) parent.set(child, node.id);
    }
    // Self time per node: the interval up to the next sample (the last one: up to endTime).
    const self = new Map<string, number>();
    let t = profile.startTime;
    const stamps: number[] = [];
    for (const delta of profile.timeDeltas) stamps.push((t += delta));
    for (let i = 0; i < profile.samples.length; i++) {
      const next = i + 1 < stamps.length ? stamps[i + 1]! : profile.endTime;
      const us = Math.max(0, next - stamps[i]!);
      add(self, String(profile.samples[i]), us);
    }
    const categoryCache = new Map<number, { category: Category; caller: Category }>();
    const categorize = (id: number): { category: Category; caller: Category } => {
      const hit = categoryCache.get(id);
      if (hit) return hit;
      let soft: Category | 'http' | undefined;
      let leafCategory: Category | undefined;
      let caller: Category | undefined;
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const frame = byId.get(cur)!.callFrame;
        const rule = ruleFor(frame.url, frame.functionName, repoRoots);
        if (!rule) continue;
        if ('soft' in rule) {
          soft ??= rule.soft;
          continue;
        }
        if (leafCategory === undefined) {
          leafCategory = rule.category;
          if (rule.category !== Category.Json) break;
          continue;
        }
        if (rule.category !== Category.Json) {
          caller = rule.category;
          break;
        }
      }
      const fallback = (): Category => {
        if (soft === undefined) return Category.Other;
        if (soft !== 'http') return soft;
        return file.role.startsWith('main') ? Category.HttpServer : Category.HttpClient;
      };
      const category = leafCategory ?? fallback();
      const result = { category, caller: caller ?? Category.Other };
      categoryCache.set(id, result);
      return result;
    };
    for (const [key, us] of self) {
      const id = Number(key);
      const node = byId.get(id)!;
      const ms = us / 1000;
      const { functionName, url, lineNumber } = node.callFrame;
      if (functionName === '(idle)' || functionName === '(root)') {
        idle += ms;
        continue;
      }
      cpu += ms;
      role.ms += ms;
      const { category, caller } = categorize(id);
      add(cat, category, ms);
      add(role.cat, category, ms);
      const { module } = moduleOf(url, functionName, repoRoots);
      add(mod, module, ms);
      const where = url.includes('/node_modules/') ? url.slice(url.lastIndexOf('/node_modules/') + 14) : module;
      const fnKey = `${functionName || '(anonymous)'} ${where}${url ? `:${lineNumber + 1}` : ''}`;
      add(fn, fnKey, ms);
      const perCat = catFn.get(category) ?? new Map<string, number>();
      catFn.set(category, perCat);
      add(perCat, fnKey, ms);
      if (category === Category.Json) add(jsonCaller, caller, ms);
    }
  }
  const rank = (m: Map<string, number>, limit = top): CostRow[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, ms]) => ({ name, selfMs: Math.round(ms * 10) / 10, share: Math.round((ms / Math.max(cpu, 1e-9)) * 1000) / 1000 }));
  return {
    files: files.length,
    cpuMs: Math.round(cpu),
    idleMs: Math.round(idle),
    byCategory: rank(cat, 50),
    byThreadRole: [...roles.entries()]
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([name, r]) => ({ name, threads: r.threads, selfMs: Math.round(r.ms), share: Math.round((r.ms / Math.max(cpu, 1e-9)) * 1000) / 1000, categories: rank(r.cat, 50) })),
    byModule: rank(mod),
    byFunction: rank(fn),
    jsonByCaller: rank(jsonCaller),
    functionsByCategory: Object.fromEntries([...catFn.entries()].map(([c, m]) => [c, rank(m, 8)])),
  };
}

/** The `.cpuprofile` files of a directory, each with its role from its file name. */
export function profilesIn(dir: string, label?: string): { path: string; role: ThreadRole }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile') && (label === undefined || f.startsWith(`${label}.`)))
    .sort()
    .map((f) => ({
      path: join(dir, f),
      role: f.includes('.main.') || /^CPU\./.test(f) ? ('main (local cloud + client)' as const) : f.includes('.lambda.') ? ('Lambda sandbox (step handler)' as const) : f.includes('.electron.') ? ('electron thread' as const) : f.includes('.module.') ? ('module loader hooks (tsx)' as const) : threadRoleOf(f),
    }));
}

/**
 * A ranking as a Markdown table. With `perNodeDivisor`, a ms-per-node column; with `scale` too
 * (measured process CPU ÷ sampled CPU), that column is scaled to the measured CPU: on a loaded
 * machine a runnable thread that waits for a core is still sampled, so sampled time overstates
 * CPU (shares stay comparable).
 */
export function costTable(title: string, rows: readonly CostRow[], perNodeDivisor?: number, scale = 1): string {
  const scaled = scale !== 1;
  const head = perNodeDivisor
    ? `| ${title} | sampled ms | ${scaled ? 'CPU ms / node (scaled)' : 'ms / node'} | share |\n|---|---:|---:|---:|`
    : `| ${title} | sampled ms | share |\n|---|---:|---:|`;
  const body = rows.map((r) =>
    perNodeDivisor
      ? `| ${r.name.replaceAll('|', '\\|')} | ${r.selfMs.toFixed(0)} | ${((r.selfMs * scale) / perNodeDivisor).toFixed(2)} | ${(r.share * 100).toFixed(1)}% |`
      : `| ${r.name.replaceAll('|', '\\|')} | ${r.selfMs.toFixed(0)} | ${(r.share * 100).toFixed(1)}% |`,
  );
  return [head, ...body].join('\n');
}
