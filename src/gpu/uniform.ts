// A uniform struct is declared once, here in TypeScript; its WGSL text and its byte packing both come from that
// declaration, so the shader and the host can never disagree on field order. Only 4-byte scalars: they pack
// without padding, and a uniform buffer is rounded up to 16 bytes.

export type ScalarType = 'u32' | 'i32' | 'f32';

export interface UniformLayout<F extends string> {
  readonly name: string;
  readonly fields: readonly (readonly [F, ScalarType])[];
  /** Bytes, a multiple of 16. */
  readonly byteSize: number;
  /** `struct Name { a: u32, ... }` for the shader's prelude. */
  readonly wgsl: string;
  /** Packs values into a fresh buffer; every field must be given. */
  pack(values: Record<F, number>): ArrayBuffer;
  /** Packs into an existing buffer (reused across steps to avoid allocation). */
  packInto(target: ArrayBuffer, values: Record<F, number>): void;
}

export function defineUniform<F extends string>(
  name: string,
  fields: readonly (readonly [F, ScalarType])[],
): UniformLayout<F> {
  const byteSize = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const wgsl = `struct ${name} {\n${fields.map(([f, t]) => `  ${f}: ${t},`).join('\n')}\n}\n`;
  const packInto = (target: ArrayBuffer, values: Record<F, number>): void => {
    const view = new DataView(target);
    fields.forEach(([f, t], i) => {
      const v = values[f];
      if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`uniform ${name}.${f}: expected a number, got ${v}`);
      if (t === 'f32') view.setFloat32(i * 4, v, true);
      else if (t === 'i32') view.setInt32(i * 4, v, true);
      else {
        if (v < 0 || !Number.isInteger(v)) throw new TypeError(`uniform ${name}.${f}: expected a u32, got ${v}`);
        view.setUint32(i * 4, v, true);
      }
    });
  };
  return {
    name,
    fields,
    byteSize,
    wgsl,
    packInto,
    pack(values) {
      const b = new ArrayBuffer(byteSize);
      packInto(b, values);
      return b;
    },
  };
}
