#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm install` (the prepare script) and by `npm start`.
import { main } from '../dist/cli/main.js';

main(process.argv).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
