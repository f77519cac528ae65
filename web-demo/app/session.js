// The page's model: one SimCluster (the real engine, in wasm), the play loop's clock, the
// event cursor, the recorded scenario and the timeline. Views subscribe with `on(fn)` and are
// called after anything changes; `onEvents(fn)` gets every new trace event once, in order.
//
// Time: the cluster runs in simulated milliseconds; `speed` is simulated ms per real second.
// Rewinding replays the scenario (seed + actions) from the start up to the chosen time, which
// is exact because the engine is deterministic.

/** The demo's cluster timing: slow enough to watch messages travel (see README). */
export const DEMO_DEFAULTS = {
  seed: 1,
  nodes: 5,
  tick_ms: 50,            // heartbeat every tick; election timeout random in [10, 20) ticks
  election_tick: 10,
  min_latency: 15,
  max_latency: 40,
  attempt_timeout_ms: 1500,
  give_up_ms: 12000,
};

export class Session {
  constructor(SimCluster) {
    this.SimCluster = SimCluster;
    this.c = null;
    this.speed = 100;           // simulated ms per real second
    this.playing = false;
    this.cursor = 0;            // next event number to hand to onEvents listeners
    this.full = null;           // the furthest timeline recorded (scenario), for the slider
    this.listeners = [];
    this.eventListeners = [];
    this.stopWhen = null;       // predicate on each new event: pause when it returns true
    this.stopWhenState = null;  // predicate on the state after a run: pause when true
    this.onStop = null;         // called once when a predicate paused the play loop
    this.carry = 0;             // fractional simulated ms not yet run
    this.lastCheck = null;
    this.checkDirty = true;
  }

  on(fn) { this.listeners.push(fn); }
  onEvents(fn) { this.eventListeners.push(fn); }
  changed() { for (const fn of this.listeners) fn(this); }

  /** A fresh cluster from a config (missing fields: DEMO_DEFAULTS). */
  start(config) {
    this.c?.free();
    this.c = new this.SimCluster({ ...DEMO_DEFAULTS, ...config });
    this.resetCursors();
    this.full = null;
    this.changed();
  }

  /** Replays a scenario to its end (or to `untilMs`). */
  load(scenario, untilMs) {
    const next = untilMs === undefined ? this.SimCluster.from_scenario(scenario) : this.SimCluster.from_scenario(scenario, untilMs);
    this.c?.free();
    this.c = next;
    this.resetCursors();
    this.changed();
  }

  resetCursors() {
    this.cursor = 0;
    this.carry = 0;
    this.lastCheck = null;
    this.checkDirty = true;
    this.emitEvents(true);
  }

  /** The furthest simulated time reached on this timeline (the slider's end). */
  end() {
    const now = this.c.now();
    return Math.max(now, this.full?.end.at ?? 0);
  }

  /** True when the view shows a rewound point with recorded actions still ahead. */
  rewound() {
    return this.full !== null && this.c.now() < this.full.end.at;
  }

  /** Rewinds (or fast-forwards) the timeline to `ms` by replaying from the seed. */
  seek(ms) {
    if (this.full === null || this.c.now() >= this.full.end.at) this.full = this.c.scenario();
    this.load(this.full, Math.min(ms, this.full.end.at));
  }

  /** Playing on from a rewound point: the engine replays the recorded future when it can
   *  (`pending_actions`); otherwise a new branch starts there and the future is forgotten. */
  branch() {
    if (this.rewound() && typeof this.c.pending_actions !== 'function') this.full = null;
  }

  /** Runs `ms` simulated ms (fractions carried), then notifies. */
  advance(ms) {
    this.carry += ms;
    const whole = Math.floor(this.carry);
    if (whole <= 0) return;
    this.carry -= whole;
    this.branch();
    if (this.stopWhen || this.stopWhenState) {
      // A tour waits for an event: go one event at a time so play stops exactly there.
      const target = this.c.now() + whole;
      while (this.playing && this.c.now() < target) {
        this.c.step();
        this.emitEvents(false);
        if (this.stopWhenState && this.stopWhenState(this.c.state({ log_tail: 0 }), this)) this.stopped();
      }
      this.changed();
      return;
    }
    this.c.run_for(whole);
    this.afterRun();
  }

  /** Runs until at least one event happens (the "step" button). */
  step() {
    this.branch();
    this.c.step();
    this.afterRun();
  }

  afterRun() {
    this.emitEvents(false);
    if (this.stopWhenState && this.stopWhenState(this.c.state({ log_tail: 0 }), this)) this.stopped();
    this.changed();
  }

  /** A stop predicate held: pause and tell whoever set it. */
  stopped() {
    this.stopWhen = null;
    this.stopWhenState = null;
    this.playing = false;
    const fn = this.onStop;
    this.onStop = null;
    fn?.();
    this.changed();
  }

  /** Takes a user action: `name` is a SimCluster method (crash, put, partition, ...). */
  act(name, ...args) {
    this.branch();
    const result = this.c[name](...args);
    this.full = null;
    this.emitEvents(false);
    this.changed();
    return result;
  }

  emitEvents(reset) {
    const events = reset ? [] : this.c.events_since(this.cursor);
    if (!reset && events.length) this.cursor = events[events.length - 1].i + 1;
    else if (reset) this.cursor = this.c.event_count();
    let stop = false;
    if (events.some((e) => e.type === 'return')) this.checkDirty = true;
    for (const fn of this.eventListeners) fn(events, reset);
    if (this.stopWhen) {
      for (const e of events) {
        if (this.stopWhen(e, this)) {
          stop = true;
          break;
        }
      }
    }
    if (stop) this.stopped();
  }

  /** The linearizability verdict, re-checked only when an op returned since the last call. */
  check() {
    if (this.lastCheck === null || this.checkDirty) {
      this.lastCheck = this.c.check();
      this.checkDirty = false;
    }
    return this.lastCheck;
  }
}

// --- Scenario <-> URL ------------------------------------------------------------------------

function toBase64Url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function fromBase64Url(text) {
  const s = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

/** The URL hash that replays `scenario` (JSON, base64url). */
export function scenarioHash(scenario) {
  return '#s=' + toBase64Url(new TextEncoder().encode(JSON.stringify(scenario)));
}

/** The scenario in a URL hash, or null; throws a readable error on a damaged link. */
export function parseScenarioHash(hash) {
  const m = /^#s=([A-Za-z0-9_-]+)$/.exec(hash);
  if (!m) return null;
  try {
    return JSON.parse(new TextDecoder().decode(fromBase64Url(m[1])));
  } catch (e) {
    throw new Error('the scenario in this link is damaged: ' + e.message);
  }
}
