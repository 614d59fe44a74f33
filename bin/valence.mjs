#!/usr/bin/env node
// The `valence` command. Inside the repository it runs the TypeScript sources (through tsx);
// an installed package has no sources, only the build in dist/ (`npm run build`).
// Users' workflows are TypeScript modules taken as written, so tsx's loader is registered
// before anything else is loaded. In an installed package tsx is an optional peer
// dependency: without it, JavaScript workflows modules still load (and on Node 22.18+ so do
// TypeScript ones, through Node's own type stripping).
import { existsSync } from 'node:fs';

const source = new URL('../sdk/cli/main.ts', import.meta.url);
const fromSource = existsSync(source);
try {
  const { register } = await import('tsx/esm/api');
  register();
} catch (error) {
  if (fromSource || error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
}
const { main } = await import(fromSource ? source.href : new URL('../dist/sdk/cli/main.js', import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
