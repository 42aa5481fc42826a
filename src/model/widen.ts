// ModelWeights with every matrix as f32 values on the host: for float64 references, the legacy LlamaWeights view and
// tests. The GPU path never calls this (it uploads matrices as stored, gpu_weights.ts).
import { matrixF32, type WeightMatrix } from '../weights/stored_matrix.js';
import type { LayerWeights, ModelWeights } from './spec.js';

/** Layer and model weights whose matrices are Float32Array. */
export type F32Layer = { [K in keyof LayerWeights]: LayerWeights[K] extends WeightMatrix ? Float32Array : LayerWeights[K] extends WeightMatrix | null ? Float32Array | null : LayerWeights[K] };
export interface F32Weights extends Omit<ModelWeights, 'embed' | 'posEmbed' | 'lmHead' | 'layers'> {
  embed: Float32Array;
  posEmbed: Float32Array | null;
  lmHead: Float32Array;
  layers: F32Layer[];
}

/** Every matrix widened to f32 (one array per distinct matrix: a tied lm_head stays the embedding's array). */
export function widenWeights(w: ModelWeights): F32Weights {
  const seen = new Map<WeightMatrix, Float32Array>();
  const f = (m: WeightMatrix): Float32Array => {
    let a = seen.get(m);
    if (!a) seen.set(m, (a = matrixF32(m)));
    return a;
  };
  const g = (m: WeightMatrix | null) => (m === null ? null : f(m));
  return {
    ...w,
    embed: f(w.embed),
    posEmbed: g(w.posEmbed),
    lmHead: f(w.lmHead),
    layers: w.layers.map((l) => ({ ...l, wq: f(l.wq), wk: f(l.wk), wv: f(l.wv), wo: f(l.wo), wGate: g(l.wGate), wUp: f(l.wUp), wDown: f(l.wDown) })),
  };
}
