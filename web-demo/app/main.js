// The demo's entry point: loads the wasm engine, builds the session, the cluster view, the
// panels and the tours, runs the play loop and keeps the URL in step with the scenario.
//
// URL: `#s=...` replays a shared scenario exactly (then pauses at its end); `?seed=N&nodes=N`
// starts a fresh cluster; `?tour=election` opens a tour; `?paused=1` starts paused.
// Tests read `window.demo` (see tests/harness.mjs and /web-demo/README.md).
import init, * as wasm from '/pkg/strata_wasm.js';
import { DEMO_DEFAULTS, Session, parseScenarioHash, scenarioHash } from './session.js';
import { ClusterView } from './view.js';
import { Panels } from './panels.js';
import { TOURS, TourRunner } from './tours.js';

const $ = (id) => document.getElementById(id);
const status = $('status');

function report(msg, isError = false) {
  status.textContent = msg;
  status.classList.toggle('error', isError);
}

async function boot() {
  try {
    await init();
  } catch (e) {
    report('The wasm engine is not built or failed to load: run `bash web-demo/run.sh`. (' + e.message + ')', true);
    throw e;
  }
  const version = wasm.version();
  $('engine-version').textContent = 'engine ' + version;
  if (typeof wasm.SimCluster !== 'function') {
    report('This build of the engine has no SimCluster yet: rebuild with `bash bindings/wasm/build.sh`.', true);
    window.demo = { ready: true, version, cluster: false };
    return;
  }

  const session = new Session(wasm.SimCluster);
  const view = new ClusterView($('cluster'), $('logs'), {
    onSelect: (id) => select(id),
    onPartition: (groups) => {
      if (groups.length > 1) session.act('partition', groups);
      else session.act('heal');
    },
    onToggleCut: (from, to) => {
      const cut = session.c.state({ log_tail: 0 }).net.cuts.some(([a, b]) => a === from && b === to);
      session.act(cut ? 'uncut' : 'cut', from, to);
    },
  });
  const panels = new Panels(session, view, { report, select: (id) => select(id) });
  session.onEvents((events, reset) => {
    panels.addEvents(events, reset);
    view.addDrops(events);
  });

  function select(id) {
    const n = session.c.state({ log_tail: 0 }).nodes.length;
    view.selected = id >= 1 && id <= n ? id : null;
    panels.nodeKey = null;
    panels.dirty = true;
    $('node-panel').open = true;
    render();
  }

  function fresh(config) {
    session.start(config);
    afterNewCluster();
  }

  function afterNewCluster() {
    const st = session.c.state({ log_tail: 0 });
    view.build(st.nodes.length);
    view.selected = null;
    panels.fillTargets(st.nodes.length);
    panels.nodeKey = null;
    const link = session.c.config();
    $('drop').value = link.drop_rate;
    $('drop-out').textContent = Math.round(link.drop_rate * 100) + '%';
    $('latency').value = link.max_latency;
    $('latency-out').textContent = `${link.min_latency}–${link.max_latency}`;
    $('export-golden').hidden = typeof session.c.golden !== 'function';
  }

  // --- time ---------------------------------------------------------------------------------
  let lastFrame = null;
  let lastUrl = 0;
  function frame(t) {
    if (session.playing && lastFrame !== null) {
      const dt = Math.min(0.1, (t - lastFrame) / 1000);
      try {
        session.advance(dt * session.speed);
      } catch (e) {
        session.playing = false;
        report('The engine stopped: ' + e.message, true);
      }
    }
    lastFrame = t;
    if (session.playing && t - lastUrl > 1000) {
      lastUrl = t;
      updateUrl();
    }
    // Paused and nothing changed: nothing to draw (keeps an idle tab idle).
    if (session.playing || panels.dirty) render();
    requestAnimationFrame(frame);
  }

  let renderedAt = -1;
  function render() {
    const st = session.c.state({ log_tail: 64 });
    view.render(st, highlight());
    const now = st.now;
    const end = session.end();
    const tl = $('timeline');
    tl.max = String(end);
    if (document.activeElement !== tl || renderedAt !== now) tl.value = String(now);
    $('clock').textContent = `${(now / 1000).toFixed(3)} s${session.rewound() ? ' (rewound)' : ''}`;
    $('play').textContent = session.playing ? '❚❚ Pause' : '▶ Play';
    $('play').setAttribute('aria-pressed', String(session.playing));
    if (renderedAt !== now || panels.dirty) panels.render(st);
    panels.dirty = false;
    renderedAt = now;
    document.body.dataset.leader = st.leader ?? '';
  }

  /** Nodes that served an op the checker flagged. */
  function highlight() {
    const check = session.lastCheck;
    if (!check || check.verdict !== 'violation') return {};
    const nodes = new Set();
    for (const id of check.violation.ops) {
      const op = session.c.op(id);
      if (op?.served_by) nodes.add(op.served_by);
    }
    return { nodes };
  }

  let marksKey = '';
  session.on(() => {
    panels.dirty = true;
    // Tick marks on the timeline at every recorded action (of the furthest timeline).
    const actions = (session.full ?? session.c.scenario()).actions;
    const key = actions.map((a) => a.at).join(',');
    if (key !== marksKey) {
      marksKey = key;
      $('action-marks').innerHTML = actions.map((a) => `<option value="${a.at}" label="${a.do}"></option>`).join('');
    }
  });

  function setPlaying(on) {
    session.playing = on;
    panels.dirty = true;
    if (!on) updateUrl();
  }

  function updateUrl() {
    history.replaceState(null, '', location.pathname + scenarioHash(session.c.scenario()));
  }

  $('play').addEventListener('click', () => setPlaying(!session.playing));
  $('step').addEventListener('click', () => {
    setPlaying(false);
    session.step();
    updateUrl();
  });
  $('speed').addEventListener('change', (e) => (session.speed = Number(e.target.value)));
  $('timeline').addEventListener('change', (e) => {
    setPlaying(false);
    try {
      session.seek(Number(e.target.value));
      afterRewind();
      updateUrl();
    } catch (err) {
      report('Rewind failed: ' + err.message, true);
    }
  });
  $('timeline').addEventListener('input', (e) => ($('clock').textContent = `→ ${(Number(e.target.value) / 1000).toFixed(3)} s`));

  function afterRewind() {
    view.selected = view.selected && view.selected <= view.n ? view.selected : null;
    panels.nodeKey = null;
  }

  // Every action updates the link so it can be shared at once.
  const act = session.act.bind(session);
  session.act = (...args) => {
    const r = act(...args);
    updateUrl();
    return r;
  };

  // --- header ---------------------------------------------------------------------------------
  $('copy-link').addEventListener('click', async () => {
    updateUrl();
    try {
      await navigator.clipboard.writeText(location.href);
      report('Link copied: it replays this run exactly.');
    } catch {
      report('Copy this address: it replays this run exactly.');
    }
  });
  $('export-scenario').addEventListener('click', () => download(`strata-scenario-seed${session.c.config().seed}.json`, JSON.stringify(session.c.scenario(), null, 2)));
  $('export-golden').addEventListener('click', () => {
    try {
      download(`cluster-seed${session.c.config().seed}.txt`, session.c.golden());
    } catch (e) {
      report('Export failed: ' + e.message, true);
    }
  });
  $('new-cluster').addEventListener('click', () => $('new-dialog').showModal());
  $('new-dialog').addEventListener('close', () => {
    if ($('new-dialog').returnValue !== 'ok') return;
    const f = new FormData($('new-form'));
    const config = { seed: Number(f.get('seed')), nodes: Number(f.get('nodes')) };
    if (f.get('workload')) config.workload = { clients: 2, ops: 100000, keys: 8, faults: false };
    tours.exit();
    try {
      fresh(config);
      setPlaying(true);
      updateUrl();
      report('');
    } catch (e) {
      report('Cannot start that cluster: ' + e.message, true);
    }
  });

  const tours = new TourRunner(session, view, {
    card: $('tour-card'),
    title: $('tour-title'),
    progress: $('tour-progress'),
    text: $('tour-text'),
    next: $('tour-next'),
    restart: $('tour-restart'),
    exit: $('tour-exit'),
    onStart: (config) => {
      fresh(config);
      session.playing = false;
      updateUrl();
    },
  });
  const tourSelect = $('tour-select');
  for (const t of TOURS) tourSelect.add(new Option(t.title, t.id));
  tourSelect.addEventListener('change', () => {
    if (tourSelect.value) tours.start(tourSelect.value);
    tourSelect.value = '';
  });

  // --- keyboard -------------------------------------------------------------------------------
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = e.target.tagName;
    if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || tag === 'BUTTON' || e.target.isContentEditable || $('new-dialog').open) return;
    const speeds = [...$('speed').options].map((o) => o.value);
    const id = view.selected;
    const k = e.key;
    if (k === ' ') setPlaying(!session.playing);
    else if (k === '.' || k === 'ArrowRight') $('step').click();
    else if (k === '[' || k === ']') {
      const i = Math.max(0, Math.min(speeds.length - 1, speeds.indexOf($('speed').value) + (k === ']' ? 1 : -1)));
      $('speed').value = speeds[i];
      session.speed = Number(speeds[i]);
    } else if (/^[1-9]$/.test(k)) select(Number(k));
    else if (k === 'c' && id) panels.nodeAction(id, 'crash');
    else if (k === 'r' && id) panels.nodeAction(id, 'restart');
    else if (k === 'i' && id) panels.isolate(id);
    else if (k === 'a') panels.addNode();
    else if (k === 't' && id) panels.nodeAction(id, 'transfer');
    else if (k === 'x' && id) panels.nodeAction(id, 'remove');
    else if (k === 'h') panels.heal();
    else if (k === 'p') panels.op('put');
    else if (k === 'g') panels.op('get');
    else if (k === 'Escape') select(0);
    else return;
    e.preventDefault();
  });

  // --- start ----------------------------------------------------------------------------------
  const params = new URLSearchParams(location.search);
  let scenario = null;
  try {
    scenario = parseScenarioHash(location.hash);
  } catch (e) {
    report(e.message, true);
  }
  if (scenario) {
    try {
      session.load(scenario);
      afterNewCluster();
      const groups = [...scenario.actions].reverse().find((a) => a.do === 'partition' || a.do === 'heal');
      if (groups?.do === 'partition') view.layoutGroups(groups.groups);
      report(`Replayed a shared scenario to ${(session.c.now() / 1000).toFixed(3)} s (seed ${scenario.config.seed}, ${scenario.actions.length} actions). Press Play to go on.`);
    } catch (e) {
      report('Cannot replay this link: ' + e.message, true);
      scenario = null;
    }
  }
  if (!scenario) {
    const config = {};
    for (const name of ['seed', 'nodes']) if (params.has(name)) config[name] = Number(params.get(name));
    try {
      fresh(config);
    } catch (e) {
      report('Bad parameters (' + e.message + '): using the defaults.', true);
      fresh({});
    }
    if (params.get('tour')) tours.start(params.get('tour'));
    else session.playing = params.get('paused') !== '1';
    if (!status.classList.contains('error')) report('');
  }
  if (params.has('speed')) {
    session.speed = Number(params.get('speed'));
    const opt = [...$('speed').options].find((o) => Number(o.value) === session.speed);
    if (opt) $('speed').value = opt.value;
  }
  requestAnimationFrame(frame);

  window.demo = {
    ready: true,
    version,
    session,
    view,
    tours,
    defaults: DEMO_DEFAULTS,
    get cluster() {
      return session.c;
    },
    state: () => session.c.state({ log_tail: 64 }),
    leader: () => session.c.state({ log_tail: 0 }).leader,
    digest: () => session.c.trace_digest(),
    check: () => session.check(),
  };
}

function download(name, text) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

boot();
