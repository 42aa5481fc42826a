// The worker script createWorkerEngine() starts by default: one engine, served to the page that started it.
import { serveEngine } from './host.js';

serveEngine(self as unknown as import('./host.js').WorkerScope);
