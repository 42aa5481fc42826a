// The mode picker and each mode's parameter form, built from the mode's defaults (so a parameter added to
// EAB_DEFAULTS or PEAKS_DEFAULTS shows up here by itself), and read back into typed values.
import { MODES, type Mode, type ModeSpec, type Params } from './modes.js';

export function modesHtml(checked: Mode): string {
  return (Object.keys(MODES) as Mode[])
    .map((m) => `<label><input type="radio" name="mode" value="${m}"${m === checked ? ' checked' : ''} /><span>${MODES[m].label}</span></label>`)
    .join('');
}

/** Number inputs step by 1 for integer defaults, except parameters whose values are fractions by nature. */
const FRACTIONAL = /threshold|prob|temperature|top_p|fraction/;

export function paramsHtml(spec: ModeSpec): string {
  return Object.entries(spec.defaults)
    .map(([k, v]) => {
      const id = `param-${k}`;
      const label = `<label for="${id}">${k.replace(/_/g, ' ')}</label>`;
      const options = spec.choices?.[k];
      if (options)
        return `${label}<select id="${id}" name="${k}">${options.map((o) => `<option${o === v ? ' selected' : ''}>${o}</option>`).join('')}</select>`;
      if (typeof v === 'boolean') return `${label}<input id="${id}" name="${k}" type="checkbox"${v ? ' checked' : ''} />`;
      const step = typeof v === 'number' && Number.isInteger(v) && !FRACTIONAL.test(k) ? '1' : 'any';
      return `${label}<input id="${id}" name="${k}" type="number" step="${step}" inputmode="decimal" value="${v ?? ''}"${v === null ? ' placeholder="auto"' : ''} />`;
    })
    .join('');
}

/** The form's values with the defaults' types; an empty field is the default (null for "auto"). */
export function readParams(form: ParentNode, spec: ModeSpec): Params {
  const out: Params = {};
  for (const [k, def] of Object.entries(spec.defaults)) {
    const el = form.querySelector<HTMLInputElement | HTMLSelectElement>(`[name="${k}"]`);
    const raw = el?.value.trim() ?? '';
    if (typeof def === 'boolean') out[k] = (el as HTMLInputElement | null)?.checked ?? def;
    else if (typeof def === 'string') out[k] = raw || def;
    else out[k] = raw === '' ? def : Number(raw);
  }
  return out;
}

/** Fills parameter fields from a query string (?max_new_tokens=16&early_stop=1), for shareable links. */
export function fillFromQuery(form: ParentNode, query: URLSearchParams): void {
  for (const [k, v] of query) {
    const el = form.querySelector<HTMLInputElement | HTMLSelectElement>(`[name="${k}"]`);
    if (el instanceof HTMLInputElement && el.type === 'checkbox') el.checked = v === 'true' || v === '1';
    else if (el) el.value = v;
  }
}
