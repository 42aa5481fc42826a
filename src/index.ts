// forklm's public surface, exported by name.
export { Engine, type EngineOptions, type EngineCounters, type StepResult } from './engine.js';
export { loadEngine, readModel, tokenizerFor, type LoadEngineOptions } from './engine_load.js';
export { generate, type GenerateOptions, type GenerateResult } from './generate.js';
export type { BranchEngine, SessionSource, SessionCounters, EngineInfo, CreatePathOptions, ForkOptions, PathView } from './branch/engine_api.js';

// The OpenAI-style surface: engine.completions.create(), engine.chat.completions.create() (src/api/).
export { Completions, ChatCompletions, type ChunkStream } from './api/completions.js';
export type { ApiHost, ChatTemplateInfo } from './api/host.js';
export type * from './api/types.js';
export { tokenText, tokenBytes } from './api/token_text.js';

// The engine in a Web Worker (pages): the same OpenAI-style surface, off the main thread (src/worker/).
export { createWorkerEngine, WorkerEngine, type WorkerEngineOptions, type WorkerCompletions, type WorkerChatCompletions, type LoadProgress, type WorkerLoadOptions, type WorkerModelInput, type WorkerStats } from './worker/client.js';
export { serveEngine, type WorkerScope } from './worker/host.js';

export { runEab, streamEab, type EabEvent, type EabOptions, type EabResult, type EabSample, type EabStats, type EabTreeNode } from './branch/eab.js';
export { EAB_DEFAULTS, eabParams, type EabParams, type PrunePolicy } from './branch/eab_params.js';
export { PathTree, type BranchPoint, type FinishReason, type TreeNode } from './branch/tree.js';
export {
  runPeaks,
  streamPeaks,
  peaksAccounting,
  type PeaksEvent,
  type PeaksOptions,
  type PeaksResult,
  type PeaksStats,
  type PeaksTrace,
  type PeaksAccounting,
} from './branch/peaks.js';
export { PEAKS_DEFAULTS, peaksParams, type PeaksParams } from './branch/peaks_params.js';
export { tokenConfidence, groupConfidences, lowestGroupConfidence, tailConfidence, findPeaks } from './branch/confidence.js';

export * from './analysis/index.js';

export { RemoteEngine, RemoteSession, type RemoteEngineOptions, type RemoteCounters, type RemoteStepResult, type ServerKind, type EntropyBounds } from './remote/index.js';

export { createGpu, type Gpu, type GpuOptions } from './gpu/device.js';
export { listAdapters, findAdapter } from './gpu/adapters.js';
export { parseAdapterChoice, type AdapterChoice, type AdapterKind } from './gpu/adapter_choice.js';
export type { RegisterBlocks, RegisterBlocksChoice } from './gpu/register_blocks.js';

export { loadModel, type LoadedModel, type ModelInput } from './model/load.js';
export { resolveModel, knownModelNames } from './model/resolve.js';
export type { ModelConfig } from './model/config.js';
export type { ModelActivations, ModelOptions } from './model/gpu_model.js';
export type { LlamaWeights } from './model/weights.js';
export type * from './model/spec.js';
export { FAMILIES, specSizes, layerKinds, parameterCount, validateSpec } from './model/spec.js';
export { ropeInvFreq } from './model/rope_freq.js';
export { specFromHf } from './model/hf_config.js';
export { specFromGguf } from './model/gguf_config.js';
export { supportedFamiliesText } from './model/families.js';
export { randomWeights, SMOLLM2_135M, QWEN25_05B } from './model/random_weights.js';

export { loadTokenizer, StreamDecoder, applyChatTemplate, encodeChat, encodeChatPrompt, type Tokenizer } from './tokenizer/index.js';
export { decodeContinuation } from './tokenizer/stream_decoder.js';
export { samplingParams, type SamplingParams } from './sample/params.js';
export type { TokenStatsRecord } from './sample/stats_record.js';

export { KvCache, PagePool } from './kv/index.js';
export { Scheduler, type StepPlan } from './sched/index.js';

export * from './errors.js';
