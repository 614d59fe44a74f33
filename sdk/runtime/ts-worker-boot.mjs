// Entry of worker threads that run TypeScript modules from source: registers tsx's loader on
// this thread, then imports the real entry. Bundled handlers never use it.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
