// The demo page: wires the form to a model, runs a mode, and redraws the tree, samples and stats as events arrive.
// The model loads and runs in a Web Worker (createWorkerEngine): the page only draws.
import { CancelledError, NoAdapterError } from '../src/errors.js';
import { FAMILY_EXAMPLES } from '../src/model/families.js';
import type { WorkerEngine } from '../src/worker/client.js';
import { MODES, type Mode, type ModeOutcome } from './modes.js';
import { openEngine, type ModelChoice } from './model_source.js';
import { fillFromQuery, modesHtml, paramsHtml, readParams } from './params_form.js';
import { samplesHtml, statsHtml, type SampleView, type StatsView } from './panels.js';
import { applyEvent, emptyTree, fullTokens, type TreeState } from './tree.js';
import { confidenceRange, renderLegendSvg, renderTreeSvg, type ColorBy } from './tree_svg.js';
import { TextCache } from './texts.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo: #${id} is missing from index.html`);
  return el as T;
};
const ui = {
  message: $('message'),
  form: $<HTMLFormElement>('controls'),
  hfRepo: $<HTMLInputElement>('hf-repo'),
  hfFamilies: $('hf-families'),
  files: $<HTMLInputElement>('files'),
  drop: $('drop'),
  dropText: $('drop-text'),
  load: $<HTMLButtonElement>('load'),
  progress: $('progress'),
  progressBar: $<HTMLProgressElement>('progress-bar'),
  progressText: $('progress-text'),
  modelStatus: $('model-status'),
  prompt: $<HTMLTextAreaElement>('prompt'),
  modes: $('modes'),
  modeHelp: $('mode-help'),
  params: $('params'),
  paramsBox: $<HTMLDetailsElement>('params-box'),
  run: $<HTMLButtonElement>('run'),
  stop: $<HTMLButtonElement>('stop'),
  colorBy: $<HTMLSelectElement>('color-by'),
  status: $('status'),
  tree: $('tree'),
  legend: $('legend'),
  samples: $('samples'),
  stats: $('stats'),
};
// The families the model spec reads, from the same table `forklm --help` prints.
ui.hfFamilies.textContent = Object.values(FAMILY_EXAMPLES).join('; ');

// Models are small enough to keep one at a time; the KV pool gets 64 MiB, plenty for 32 paths of a small model.
const ENGINE_OPTIONS = { maxSamples: 32, kvBudgetBytes: 64 << 20 };

let webgpu = false;
let engine: WorkerEngine | null = null;
let texts: TextCache | null = null;
let engineKey = '';
let pickedFiles: File[] = [];
let busy = false;
let abort: AbortController | null = null;

interface RunView {
  prompt: string;
  promptTokens: number;
  state: TreeState;
  samples: SampleView[];
  outcome: ModeOutcome | null;
  t0: number;
  rows0: number;
  steps0: number;
  forks: number;
  pruned: number;
  threshold?: number;
}
let view: RunView | null = null;

function showMessage(text: string | null, kind: 'error' | 'warning' = 'error'): void {
  ui.message.hidden = !text;
  ui.message.className = `message ${kind}`;
  ui.message.textContent = text ?? '';
  // The message sits above the controls; after a click far down the page it would go unseen.
  if (text) ui.message.scrollIntoView({ block: 'nearest' });
}

function setStatus(state: string, text: string): void {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function syncButtons(): void {
  ui.run.disabled = busy || !webgpu;
  ui.load.disabled = busy || !webgpu;
  ui.stop.disabled = !abort;
}

// ---- model ------------------------------------------------------------------------------------------------------

function source(): ModelChoice['kind'] {
  return (ui.form.querySelector<HTMLInputElement>('input[name=source]:checked')?.value ?? 'served') as ModelChoice['kind'];
}

function showSource(): void {
  const s = source();
  for (const el of ui.form.querySelectorAll<HTMLElement>('[data-source]')) el.hidden = el.dataset.source !== s;
}

function choice(): { choice: ModelChoice; key: string } {
  const s = source();
  if (s === 'hf') return { choice: { kind: 'hf', repo: ui.hfRepo.value }, key: `hf:${ui.hfRepo.value.trim()}` };
  if (s === 'files')
    return { choice: { kind: 'files', files: pickedFiles }, key: `files:${pickedFiles.map((f) => `${f.name}/${f.size}/${f.lastModified}`).join('|')}` };
  return { choice: { kind: 'served', name: 'stories260K' }, key: 'served:stories260K' };
}

function kib(n: number): string {
  return n < 1 << 20 ? `${(n / 1024).toFixed(0)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

async function ensureEngine(): Promise<WorkerEngine> {
  const { choice: c, key } = choice();
  if (engine && key === engineKey) return engine;
  void engine?.destroy();
  engine = null;
  texts = null;
  engineKey = '';
  ui.progress.hidden = false;
  setStatus('loading', 'Loading the model…');
  ui.modelStatus.textContent = '';
  try {
    const t0 = performance.now();
    const opened = await openEngine(c, {
      ...ENGINE_OPTIONS,
      onPhase: (p) => {
        if (p.phase === 'gpu') {
          ui.progressBar.removeAttribute('value');
          ui.progressText.textContent = 'uploading weights, compiling kernels…';
        } else if (p.phase === 'upload') {
          if (p.total) ui.progressBar.value = p.loaded / p.total;
          ui.progressText.textContent = `uploading weights: ${kib(p.loaded)}${p.total ? ` / ${kib(p.total)}` : ''}`;
        } else if (p.total) {
          ui.progressBar.value = p.loaded / p.total;
          ui.progressText.textContent = `${p.file}: ${kib(p.loaded)} / ${kib(p.total)}`;
        } else {
          ui.progressBar.removeAttribute('value');
          ui.progressText.textContent = `${p.file}: ${kib(p.loaded)}`;
        }
      },
    });
    engine = opened.engine;
    engineKey = key;
    texts = new TextCache(engine, scheduleRender);
    const cfg = engine.config;
    ui.modelStatus.textContent =
      `${opened.label}: ${cfg.family}, ${cfg.nLayers} layers, dim ${cfg.dim}, vocab ${cfg.vocabSize}; ` +
      `loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${engine.gpuName}, in a worker.`;
    setStatus('ready', 'Model ready.');
    return engine;
  } finally {
    ui.progress.hidden = true;
  }
}

// ---- modes and parameters ---------------------------------------------------------------------------------------

function currentMode(): Mode {
  return (ui.modes.querySelector<HTMLInputElement>('input:checked')?.value ?? 'eab') as Mode;
}

/** Offers the colourings the mode reports; keeps the current one when it can. */
function syncColorBy(mode: Mode): void {
  const measures = MODES[mode].measures;
  for (const o of ui.colorBy.options) o.disabled = !measures.includes(o.value as ColorBy);
  if (!measures.includes(ui.colorBy.value as ColorBy)) ui.colorBy.value = measures[0];
}

function showParams(): void {
  const mode = currentMode();
  ui.modeHelp.textContent = MODES[mode].help;
  ui.params.innerHTML = paramsHtml(MODES[mode]);
  syncColorBy(mode);
}

// ---- the run ----------------------------------------------------------------------------------------------------

let frame = 0;
function scheduleRender(): void {
  if (!frame) frame = requestAnimationFrame(() => {
    frame = 0;
    render();
  });
}

function liveStats(v: RunView, e: WorkerEngine): StatsView {
  let naive = 0;
  let sampleTokens = 0;
  let live = 0;
  for (const p of v.state.paths.values()) {
    if (p.end === null) live++;
    if (p.end === 'pruned') continue;
    const len = p.forkPos + p.tokens.length;
    naive += v.promptTokens + len;
    sampleTokens += len;
  }
  const ms = performance.now() - v.t0;
  const o = v.outcome?.stats;
  return {
    promptTokens: v.promptTokens,
    tokenSteps: o?.token_steps ?? e.stats.rows - v.rows0,
    naiveTokenSteps: o?.naive_token_steps ?? naive,
    pagesInUse: e.stats.pagesInUse,
    pagesPeak: o?.pages_peak ?? e.stats.pagesPeak,
    naivePages: o?.naive_pages ?? null,
    tokensPerS: o?.tokens_per_s ?? (ms > 0 ? (sampleTokens / ms) * 1000 : 0),
    generated: sampleTokens,
    forks: o?.forks ?? v.forks,
    pruned: o?.pruned ?? v.pruned,
    samples: o?.samples ?? v.samples.length,
    live,
    steps: o?.steps ?? e.stats.steps - v.steps0,
    ms: o?.ms ?? ms,
    done: v.outcome !== null,
  };
}

function render(): void {
  if (!view || !engine || !texts) return;
  const tx = texts;
  const scroll = ui.tree.scrollLeft;
  const colorBy = ui.colorBy.value as ColorBy;
  const range = confidenceRange(view.state);
  ui.legend.innerHTML = renderLegendSvg(colorBy, Math.min(ui.tree.clientWidth, 700), view.threshold, range);
  ui.tree.innerHTML = renderTreeSvg(view.state, {
    range,
    // Decoded in the worker; a segment not decoded yet is drawn without its label and redrawn when it is.
    decode: (ids) => tx.get(ids),
    colorBy,
    prompt: view.prompt,
    // Fits the panel; past 10 px a cell the tree scrolls sideways instead (long runs, phones).
    targetWidth: Math.max(ui.tree.clientWidth - 80, 200),
    threshold: view.threshold,
    legend: false,
  });
  ui.tree.scrollLeft = scroll;
  ui.samples.innerHTML = samplesHtml(view.samples, view.prompt);
  ui.stats.innerHTML = statsHtml(liveStats(view, engine));
}

async function run(): Promise<void> {
  if (busy) return;
  const mode = currentMode();
  const spec = MODES[mode];
  busy = true;
  showMessage(null);
  syncButtons();
  try {
    const e = await ensureEngine();
    const params = readParams(ui.params, spec);
    const prompt = ui.prompt.value;
    const ids = await e.encode(prompt);
    abort = new AbortController();
    syncButtons();
    view = {
      prompt,
      promptTokens: ids.length,
      state: emptyTree(),
      samples: [],
      outcome: null,
      t0: performance.now(),
      rows0: e.stats.rows,
      steps0: e.stats.steps,
      forks: 0,
      pruned: 0,
      threshold: typeof params.entropy_threshold === 'number' ? params.entropy_threshold : undefined,
    };
    setStatus('running', `Generating (${spec.label})…`);
    const v = view;
    const gen = spec.stream(e, ids, params, abort.signal);
    for (;;) {
      const r = await gen.next();
      if (r.done) {
        v.outcome = r.value;
        v.samples = r.value.samples.map((s) => ({ path: s.path, text: s.text, logProb: s.log_probability, tokens: s.tokens.length, finish: s.finish_reason }));
        break;
      }
      const ev = r.value;
      applyEvent(v.state, ev);
      if (ev.type === 'fork') v.forks += ev.children.length;
      else if (ev.type === 'prune') v.pruned++;
      else if (ev.type === 'finish') {
        if (ev.reason === 'pruned') v.pruned++;
        const toks = fullTokens(v.state, ev.path);
        const ids = toks.map((t) => t.id);
        // NaN until the result arrives when the mode streams no log-probabilities (peaks).
        const logProb = toks.reduce((a, t) => a + (t.logprob ?? Number.NaN), 0);
        const sample: SampleView = { path: ev.path, text: '', logProb, tokens: toks.length, finish: ev.reason };
        v.samples.push(sample);
        void e.decode([ev.reason === 'eos' ? ids.slice(0, -1) : ids]).then(([t]) => {
          sample.text ||= t;
          scheduleRender();
        });
      }
      scheduleRender();
    }
    render();
    const st = v.outcome!.stats;
    setStatus('done', `Done: ${st.samples} sample${st.samples === 1 ? '' : 's'} in ${(st.ms / 1000).toFixed(2)} s.`);
  } catch (err) {
    if (err instanceof CancelledError) {
      setStatus('stopped', 'Stopped.');
      for (const p of view?.state.paths.values() ?? []) p.end ??= 'stopped';
    } else if (err instanceof NoAdapterError) {
      setStatus('no-webgpu', 'No WebGPU adapter.');
      showMessage(err.message, 'warning');
    } else {
      setStatus('error', 'Failed.');
      showMessage(err instanceof Error ? err.message : String(err));
    }
    if (view) render();
  } finally {
    busy = false;
    abort = null;
    syncButtons();
  }
}

async function loadOnly(): Promise<void> {
  if (busy) return;
  busy = true;
  showMessage(null);
  syncButtons();
  try {
    await ensureEngine();
  } catch (err) {
    if (err instanceof NoAdapterError) {
      setStatus('no-webgpu', 'No WebGPU adapter.');
      showMessage(err.message, 'warning');
    } else {
      setStatus('error', 'The model did not load.');
      showMessage(err instanceof Error ? err.message : String(err));
    }
  } finally {
    busy = false;
    syncButtons();
  }
}

function takeFiles(list: FileList | null | undefined): void {
  if (!list || list.length === 0) return;
  pickedFiles = [...list];
  ui.dropText.textContent = pickedFiles.map((f) => `${f.name} (${kib(f.size)})`).join(', ');
  ui.form.querySelector<HTMLInputElement>('input[name=source][value=files]')!.checked = true;
  showSource();
  void loadOnly();
}

async function main(): Promise<void> {
  // On a phone the parameters start folded, so Generate is on the first screen.
  ui.paramsBox.open = !matchMedia('(max-width: 760px)').matches;
  // ?mode=eab&prompt=…&max_new_tokens=16 preselects the form (shareable links).
  const query = new URLSearchParams(location.search);
  const asked = query.get('mode') as Mode | null;
  ui.modes.innerHTML = modesHtml(asked && asked in MODES ? asked : 'eab');
  ui.prompt.value = query.get('prompt') ?? ui.prompt.value;
  showParams();
  fillFromQuery(ui.params, query);

  ui.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void run();
  });
  ui.stop.addEventListener('click', () => abort?.abort());
  ui.load.addEventListener('click', () => void loadOnly());
  ui.modes.addEventListener('change', showParams);
  ui.colorBy.addEventListener('change', render);
  for (const r of ui.form.querySelectorAll<HTMLInputElement>('input[name=source]')) r.addEventListener('change', showSource);
  ui.files.addEventListener('change', () => takeFiles(ui.files.files));
  // Files dropped anywhere on the page count; only the drop zone shows the hover state.
  document.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    ui.drop.classList.add('over');
  });
  document.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
  document.addEventListener('drop', (ev) => {
    ev.preventDefault();
    ui.drop.classList.remove('over');
    takeFiles(ev.dataTransfer?.files);
  });
  let resize = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resize);
    resize = window.setTimeout(render, 150);
  });

  if (!navigator.gpu) {
    showMessage('This browser has no WebGPU, which forklm needs to run the model. Use a recent Chrome or Edge (113+), Safari 18+, or Firefox 141+; on Linux start Chromium with --enable-unsafe-webgpu.', 'warning');
    setStatus('no-webgpu', 'No WebGPU.');
    syncButtons();
    return;
  }
  // The adapter itself is requested in the worker: a missing one comes back as a NoAdapterError from the load.
  webgpu = true;
  syncButtons();
  await loadOnly();
}

void main();
