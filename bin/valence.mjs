#!/usr/bin/env node
// The `valence` command. Users' workflows are TypeScript modules taken as written, so the CLI
// registers tsx's loader before it loads anything else.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../sdk/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
