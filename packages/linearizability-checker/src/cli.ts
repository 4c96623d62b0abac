#!/usr/bin/env node
/** The paxkv-check command line. */
console.log('paxkv-check: not built yet');
