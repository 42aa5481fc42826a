// The process of `npm run bench -- peers`'s shape part (peers_shape.ts shapeJobInChild): runs shapeJob on the job
// given as JSON in argv and prints its record as the last line of stdout (logs go to stderr).
import { shapeJob } from './peers_shape.js';

const job = JSON.parse(process.argv[process.argv.length - 1]) as Parameters<typeof shapeJob>[0];
console.log(JSON.stringify(await shapeJob(job)));
process.exit(0);
