// The remote engine: forklm's branching controllers over an existing server engine (llama.cpp server, vLLM, SGLang).
export { RemoteEngine, type RemoteEngineOptions } from './engine.js';
export { RemoteSession, type RemoteCounters, type RemoteStepResult } from './session.js';
export type { ServerKind } from './protocol.js';
export { remoteTokenStats, tailEntropyBounds, type EntropyBounds } from './token_stats.js';
