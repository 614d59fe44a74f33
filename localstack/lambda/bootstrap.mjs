// Entry of every Lambda sandbox (worker thread). Plain JavaScript because Node cannot load
// TypeScript before tsx is registered. A JavaScript handler (a bundle, as Lambda runs it) gets
// a JavaScript build of the runtime and no TypeScript loader at all (see plain-runtime.ts);
// otherwise tsx is registered and everything after it is TypeScript.
import { workerData } from 'node:worker_threads';

if (workerData?.runtimeUrl) {
  await import(workerData.runtimeUrl);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./runtime.ts');
}
