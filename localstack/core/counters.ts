/**
 * Requests per service and operation.
 *
 * Benchmarks count the AWS calls a workflow node costs by reading these before and after a
 * run; in-process calls between services (Step Functions invoking Lambda) are recorded too,
 * because on AWS they are API calls that cost money and count against quotas.
 */

/** `{ service: { operation: requests } }`, e.g. `{ dynamodb: { PutItem: 3 } }`. */
export type CounterSnapshot = Record<string, Record<string, number>>;

/** A counter table that the router and the services write and tests read. */
export class RequestCounters {
  readonly #counts = new Map<string, Map<string, number>>();

  /** Records one call of `operation` on `service`. */
  record(service: string, operation: string): void {
    let byOperation = this.#counts.get(service);
    if (!byOperation) {
      byOperation = new Map();
      this.#counts.set(service, byOperation);
    }
    byOperation.set(operation, (byOperation.get(operation) ?? 0) + 1);
  }

  /** Calls of one operation, or of every operation of the service when none is named. */
  get(service: string, operation?: string): number {
    const byOperation = this.#counts.get(service);
    if (!byOperation) return 0;
    if (operation !== undefined) return byOperation.get(operation) ?? 0;
    let sum = 0;
    for (const n of byOperation.values()) sum += n;
    return sum;
  }

  /** Calls of every service. */
  total(): number {
    let sum = 0;
    for (const service of this.#counts.keys()) sum += this.get(service);
    return sum;
  }

  /** A plain copy, sorted by service and operation so that it diffs and prints stably. */
  snapshot(): CounterSnapshot {
    const out: CounterSnapshot = {};
    for (const service of [...this.#counts.keys()].sort()) {
      const byOperation = this.#counts.get(service) ?? new Map<string, number>();
      const entry: Record<string, number> = {};
      for (const operation of [...byOperation.keys()].sort()) entry[operation] = byOperation.get(operation) ?? 0;
      out[service] = entry;
    }
    return out;
  }

  /** Forgets every count. */
  reset(): void {
    this.#counts.clear();
  }
}

/** What changed between two snapshots: only the entries that grew, with their increase. */
export function diffCounters(before: CounterSnapshot, after: CounterSnapshot): CounterSnapshot {
  const out: CounterSnapshot = {};
  for (const [service, byOperation] of Object.entries(after)) {
    for (const [operation, n] of Object.entries(byOperation)) {
      const delta = n - (before[service]?.[operation] ?? 0);
      if (delta > 0) (out[service] ??= {})[operation] = delta;
    }
  }
  return out;
}
