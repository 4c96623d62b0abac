/**
 * Worker thread entry: checks one partition per message with a built-in model.
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { handleWorkerRequest, type WorkerRequest } from './check.js';

parentPort?.on('message', (req: WorkerRequest) => {
  parentPort?.postMessage(handleWorkerRequest(req));
});
