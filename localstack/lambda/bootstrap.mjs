// Entry of every Lambda sandbox (worker thread). Plain JavaScript because Node cannot load
// TypeScript before tsx is registered; everything after registration is TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./runtime.ts');
