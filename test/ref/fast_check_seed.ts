// vitest setup (node project): FORKLM_TEST_SEED replays fast-check properties too. Without it fast-check draws its own
// seed each run and prints it with any counterexample ("seed: N"); FORKLM_TEST_SEED=N reruns that draw.
import fc from 'fast-check';

const env = process.env.FORKLM_TEST_SEED;
if (env) fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: Number(env) });
