// Buffer helpers. Every buffer gets a label with its shape so that validation errors name the tensor.

export const STORAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST, without needing GPUBufferUsage globals

/** A storage buffer of `byteLength` bytes (rounded up to 4), zero-initialised by WebGPU. */
export function createStorage(device: GPUDevice, byteLength: number, label: string): GPUBuffer {
  return device.createBuffer({ size: Math.max(4, Math.ceil(byteLength / 4) * 4), usage: STORAGE, label });
}

/** A storage buffer holding `data`. */
export function createStorageFrom(device: GPUDevice, data: ArrayBufferView, label: string): GPUBuffer {
  const buf = createStorage(device, data.byteLength, label);
  writeBuffer(device, buf, data);
  return buf;
}

/** A uniform buffer of `byteLength` bytes. */
export function createUniform(device: GPUDevice, byteLength: number, label: string): GPUBuffer {
  return device.createBuffer({ size: Math.ceil(byteLength / 16) * 16, usage: 0x40 | 0x8, label }); // UNIFORM | COPY_DST
}

/** queue.writeBuffer, padding the tail to 4 bytes as WebGPU requires. */
export function writeBuffer(device: GPUDevice, buf: GPUBuffer, data: ArrayBufferView | ArrayBuffer, offset = 0): void {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 === 0) {
    device.queue.writeBuffer(buf, offset, bytes as Uint8Array<ArrayBuffer>);
  } else {
    const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    padded.set(bytes);
    device.queue.writeBuffer(buf, offset, padded);
  }
}
