/**
 * Idempotent side effects. valence runs an electron at least once and records its result
 * exactly once: a retry (the electron's `retries`), or a re-run after an invocation crashed
 * between the electron's end and the COMPLETED write, runs the function again. An electron
 * that changes the world passes `taskContext().idempotencyKey` — the same for every attempt
 * of this node in this dispatch — to the service it changes, which then acts once.
 *
 * Here the "service" is a ledger directory: a charge is a file named by its key, written
 * with the exclusive flag, so a second attempt finds it and does not charge again.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { electron, lattice, taskContext } from '../sdk/index.ts';

/** Charges `cents` once per node and dispatch, however often it runs; the first attempt fails after charging. */
const charge = electron({ retries: 1 }, function charge(ledger: string, customer: string, cents: number) {
  const { idempotencyKey, attempt } = taskContext();
  mkdirSync(ledger, { recursive: true });
  appendFileSync(join(ledger, 'attempts.log'), `${customer} ${attempt} ${idempotencyKey}\n`);
  try {
    // The exclusive flag makes the write the idempotent operation: a repeat fails with EEXIST.
    writeFileSync(join(ledger, `${idempotencyKey}.charge`), `${customer} ${cents}\n`, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  // A crash after the side effect: the retry must not charge twice.
  if (attempt === 1) throw new Error('lost the connection after charging');
  return { customer, cents };
});

/** Two charges of one order: two nodes, two keys; each charged once although each ran twice. */
export const order = lattice({ name: 'order' }, (ledger: string) => [charge(ledger, 'ada', 500), charge(ledger, 'grace', 700)]);
