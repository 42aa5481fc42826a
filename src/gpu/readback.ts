// The one way data comes back from the GPU: copy into a MAP_READ staging buffer, map, copy out, unmap.
// Engines keep a staging buffer per result buffer (Readback) so the per-step readback allocates nothing on the GPU.
import type { Gpu } from './device.js';

export class Readback {
  private readonly staging: GPUBuffer;
  constructor(
    private readonly gpu: Gpu,
    readonly byteLength: number,
    label = 'readback',
  ) {
    this.staging = gpu.device.createBuffer({ size: Math.ceil(byteLength / 4) * 4, usage: 0x1 | 0x8, label }); // MAP_READ | COPY_DST
  }

  /** Queues the copy from `src` in `encoder`; call `read()` after submitting. */
  copyFrom(encoder: GPUCommandEncoder, src: GPUBuffer, bytes = this.byteLength, srcOffset = 0): void {
    encoder.copyBufferToBuffer(src, srcOffset, this.staging, 0, Math.ceil(bytes / 4) * 4);
  }

  /** Maps the staging buffer and returns a copy of its first `bytes` bytes. */
  async read(bytes = this.byteLength): Promise<ArrayBuffer> {
    this.gpu.checkLost();
    try {
      await this.staging.mapAsync(0x1); // GPUMapMode.READ
    } catch (err) {
      // A device lost mid-step rejects the map: give the loss a moment to be reported (createGpu's handler runs
      // first, it was registered first), then throw the typed DeviceLostError instead of the map's AbortError.
      await Promise.race([this.gpu.device.lost, new Promise((r) => setTimeout(r, 200))]);
      this.gpu.checkLost();
      throw err;
    }
    const out = this.staging.getMappedRange(0, Math.ceil(bytes / 4) * 4).slice(0, bytes);
    this.staging.unmap();
    return out;
  }

  destroy(): void {
    this.staging.destroy();
  }
}

/** One-off readback of a whole buffer region (tests, tools). */
export async function readBuffer(gpu: Gpu, src: GPUBuffer, bytes: number, srcOffset = 0): Promise<ArrayBuffer> {
  const rb = new Readback(gpu, bytes, `readback:${src.label}`);
  const enc = gpu.device.createCommandEncoder();
  rb.copyFrom(enc, src, bytes, srcOffset);
  gpu.device.queue.submit([enc.finish()]);
  try {
    return await rb.read(bytes);
  } finally {
    rb.destroy();
  }
}

export async function readF32(gpu: Gpu, src: GPUBuffer, count: number, offsetElems = 0): Promise<Float32Array> {
  return new Float32Array(await readBuffer(gpu, src, count * 4, offsetElems * 4));
}
export async function readU32(gpu: Gpu, src: GPUBuffer, count: number, offsetElems = 0): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(gpu, src, count * 4, offsetElems * 4));
}
