// The cluster view: an SVG ring of nodes (role, term, election timer), the links between them
// (click a link's half to cut that direction), messages in flight moving along the links, and
// the aligned log table below (entries coloured by term, commit and apply marks).
//
// Drag nodes apart to partition the cluster: nodes closer than a threshold form one group; the
// view calls `onPartition(groups)` when the grouping changes (one group = heal).

const SVG = 'http://www.w3.org/2000/svg';
const W = 800;
const H = 520;
const CX = W / 2;
const CY = H / 2 + 10;
const RING = 150;
const R = 38;

function el(name, attrs = {}, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

/** A term's colour: distinct hues for neighbouring terms. */
export function termColor(term) {
  if (!term) return 'hsl(0 0% 85%)';
  return `hsl(${(term * 137.5) % 360} 65% 72%)`;
}

/** An endpoint (`"n2"`, `2`, `"u1"`, `"c3"`) as a node id, or null for a client. */
export function nodeOf(endpoint) {
  if (typeof endpoint === 'number') return endpoint;
  const m = /^n(\d+)$/.exec(String(endpoint));
  return m ? Number(m[1]) : null;
}

const KIND_CLASS = {
  PreVote: 'vote', Vote: 'vote', PreVoteGranted: 'vote-ok', VoteGranted: 'vote-ok', PreVoteRefused: 'vote-no', VoteRefused: 'vote-no',
  Append: 'append', AppendOk: 'append-ok', AppendReject: 'append-no', Heartbeat: 'heartbeat', HeartbeatOk: 'heartbeat-ok',
  ReadIndex: 'read', ReadIndexOk: 'read', TimeoutNow: 'vote', Snapshot: 'append', SnapshotAck: 'append-ok',
  Request: 'client', Response: 'client',
};

export class ClusterView {
  constructor(svg, logTable, { onSelect, onPartition, onToggleCut }) {
    this.svg = svg;
    this.logTable = logTable;
    this.onSelect = onSelect;
    this.onPartition = onPartition;
    this.onToggleCut = onToggleCut;
    this.n = 0;
    this.pos = {};
    this.selected = null;
    this.box = { x: 0, y: 0, w: W, h: H };
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    // On narrow screens, zoom in on the ring (room is still left to drag a node away).
    new ResizeObserver(() => this.fitViewBox()).observe(svg);
    this.linkLayer = el('g', { class: 'links' }, svg);
    this.clientLayer = el('g', { class: 'clients' }, svg);
    this.msgLayer = el('g', { class: 'messages', 'aria-hidden': 'true' }, svg);
    this.nodeLayer = el('g', { class: 'nodes' }, svg);
    const c = el('g', { transform: `translate(${CX},${CY})` }, this.clientLayer);
    el('rect', { x: -34, y: -16, width: 68, height: 32, rx: 8, class: 'client-box' }, c);
    el('text', { y: 5, 'text-anchor': 'middle', class: 'client-label' }, c).textContent = 'clients';
  }

  fitViewBox() {
    const narrow = this.svg.clientWidth > 0 && this.svg.clientWidth < 600;
    const half = RING + R + 60;
    this.box = narrow ? { x: CX - half, y: CY - half, w: 2 * half, h: 2 * half } : { x: 0, y: 0, w: W, h: H };
    this.svg.setAttribute('viewBox', `${this.box.x} ${this.box.y} ${this.box.w} ${this.box.h}`);
    if (this.n) {
      for (let id = 1; id <= this.n; id++) this.pos[id] = this.clamp(this.pos[id]);
      this.placeNodes();
    }
  }

  clamp(p) {
    const m = R + 8;
    const b = this.box;
    return { x: Math.max(b.x + m, Math.min(b.x + b.w - m, p.x)), y: Math.max(b.y + m, Math.min(b.y + b.h - m, p.y)) };
  }

  /** Node positions on the ring (the cluster's resting layout). */
  ringPos(id) {
    const a = -Math.PI / 2 + ((id - 1) * 2 * Math.PI) / this.n;
    return { x: CX + RING * Math.cos(a), y: CY + RING * Math.sin(a) };
  }

  /** Distance under which two nodes count as one group when dragged. */
  threshold() {
    return 2 * RING * Math.sin(Math.PI / this.n) * 1.15;
  }

  resetLayout() {
    for (let id = 1; id <= this.n; id++) this.pos[id] = this.ringPos(id);
    this.placeNodes();
  }

  /** Puts each partition group on its own side of the stage (after loading a scenario). */
  layoutGroups(groups) {
    this.resetLayout();
    if (!groups || groups.length < 2) return;
    groups.forEach((g, gi) => {
      const b = this.box;
      const cx = b.x + 110 + (gi * (b.w - 220)) / Math.max(1, groups.length - 1);
      g.forEach((id, k) => {
        this.pos[id] = this.clamp({ x: cx + (k % 2) * 70 - 35 * (g.length > 1), y: b.y + 90 + Math.floor(k / 2) * 100 + (k % 2) * 50 });
      });
    });
    this.placeNodes();
  }

  build(n) {
    this.n = n;
    this.linkLayer.replaceChildren();
    this.nodeLayer.replaceChildren();
    this.links = {};
    for (let a = 1; a <= n; a++) {
      for (let b = 1; b <= n; b++) {
        if (a === b) continue;
        const g = el('g', { class: 'link', 'data-from': a, 'data-to': b }, this.linkLayer);
        const hit = el('line', { class: 'hit' }, g);
        const line = el('line', { class: 'wire' }, g);
        const mark = el('text', { class: 'cut-mark', 'text-anchor': 'middle' }, g);
        mark.textContent = '✕';
        const title = el('title', {}, g);
        title.textContent = `n${a} → n${b}: click to cut or restore this direction`;
        hit.addEventListener('click', () => this.onToggleCut(a, b));
        this.links[`${a}-${b}`] = { g, hit, line, mark };
      }
    }
    this.nodes = {};
    for (let id = 1; id <= n; id++) {
      const g = el('g', { class: 'node', tabindex: 0, role: 'button', 'data-node': id }, this.nodeLayer);
      const timer = el('circle', { r: R + 6, class: 'timer' }, g);
      const body = el('circle', { r: R, class: 'body' }, g);
      const name = el('text', { y: -8, class: 'name', 'text-anchor': 'middle' }, g);
      name.textContent = `n${id}`;
      const role = el('text', { y: 9, class: 'role', 'text-anchor': 'middle' }, g);
      const term = el('text', { y: 24, class: 'term', 'text-anchor': 'middle' }, g);
      const down = el('text', { y: 10, class: 'down-mark', 'text-anchor': 'middle' }, g);
      down.textContent = '✕';
      this.nodes[id] = { g, timer, body, role, term };
      this.attachDrag(g, id);
      g.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          e.stopPropagation();
          this.onSelect(id);
        }
      });
    }
    this.resetLayout();
  }

  attachDrag(g, id) {
    let start = null;
    g.addEventListener('pointerdown', (e) => {
      start = { x: e.clientX, y: e.clientY, moved: false };
      g.setPointerCapture(e.pointerId);
    });
    g.addEventListener('pointermove', (e) => {
      if (!start) return;
      if (Math.hypot(e.clientX - start.x, e.clientY - start.y) > 6) start.moved = true;
      if (!start.moved) return;
      const p = this.toSvg(e.clientX, e.clientY);
      this.pos[id] = this.clamp(p);
      this.placeNodes();
    });
    const end = () => {
      if (!start) return;
      const moved = start.moved;
      start = null;
      if (moved) this.onPartition(this.groups());
      else this.onSelect(id);
    };
    g.addEventListener('pointerup', end);
    g.addEventListener('pointercancel', end);
  }

  toSvg(x, y) {
    const pt = this.svg.createSVGPoint();
    pt.x = x;
    pt.y = y;
    return pt.matrixTransform(this.svg.getScreenCTM().inverse());
  }

  /** Groups of nodes by position (connected under the threshold distance). */
  groups() {
    const t = this.threshold();
    const seen = new Set();
    const out = [];
    for (let id = 1; id <= this.n; id++) {
      if (seen.has(id)) continue;
      const group = [];
      const todo = [id];
      seen.add(id);
      while (todo.length) {
        const a = todo.pop();
        group.push(a);
        for (let b = 1; b <= this.n; b++) {
          if (!seen.has(b) && Math.hypot(this.pos[a].x - this.pos[b].x, this.pos[a].y - this.pos[b].y) < t) {
            seen.add(b);
            todo.push(b);
          }
        }
      }
      out.push(group.sort((x, y) => x - y));
    }
    return out;
  }

  placeNodes() {
    for (let id = 1; id <= this.n; id++) {
      const p = this.pos[id];
      this.nodes[id].g.setAttribute('transform', `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`);
    }
    for (const key of Object.keys(this.links)) {
      const [a, b] = key.split('-').map(Number);
      const pa = this.pos[a];
      const pb = this.pos[b];
      const mx = (pa.x + pb.x) / 2;
      const my = (pa.y + pb.y) / 2;
      // a's half of the a–b line carries a → b (the sender's side).
      const { hit, line, mark } = this.links[key];
      for (const l of [hit, line]) {
        l.setAttribute('x1', pa.x.toFixed(1));
        l.setAttribute('y1', pa.y.toFixed(1));
        l.setAttribute('x2', mx.toFixed(1));
        l.setAttribute('y2', my.toFixed(1));
      }
      mark.setAttribute('x', ((pa.x + 2 * mx) / 3).toFixed(1));
      mark.setAttribute('y', ((pa.y + 2 * my) / 3 + 5).toFixed(1));
    }
  }

  endpointPos(endpoint) {
    const id = nodeOf(endpoint);
    return id && this.pos[id] ? this.pos[id] : { x: CX, y: CY };
  }

  /** Draws `state` (from `SimCluster.state()`). */
  render(state, highlight = {}) {
    if (state.nodes.length !== this.n) this.build(state.nodes.length);
    const cuts = new Set(state.net.cuts.map(([a, b]) => `${a}-${b}`));
    for (const [key, l] of Object.entries(this.links)) l.g.classList.toggle('cut', cuts.has(key));
    for (const node of state.nodes) {
      const v = this.nodes[node.id];
      const role = node.decommissioned ? 'Removed' : node.up ? (node.role ?? 'Recovering') : 'Down';
      const member = node.member ?? 'voter';
      v.g.setAttribute('class', `node ${role.toLowerCase()}${member !== 'voter' ? ' ' + member : ''}${this.selected === node.id ? ' selected' : ''}${highlight.nodes?.has(node.id) ? ' flagged' : ''}`);
      v.g.setAttribute('aria-label', `node ${node.id}: ${role}, ${member}, term ${node.term}, commit ${node.commit}${node.up ? '' : ', down'}`);
      // A follower that does not vote is shown as what it is.
      const shown = role === 'Follower' && member === 'learner' ? 'learner' : role === 'Follower' && member === 'outside' ? 'joining' : role === 'PreCandidate' ? 'pre-cand.' : role.toLowerCase();
      v.role.textContent = shown;
      v.term.textContent = node.up ? `term ${node.term}` : '';
      // Election timer: the arc shrinks as the timeout approaches (followers and candidates).
      const frac = node.up && node.role && node.role !== 'Leader' && node.election?.timeout ? Math.max(0, 1 - node.election.elapsed / node.election.timeout) : 0;
      const circ = 2 * Math.PI * (R + 6);
      v.timer.setAttribute('stroke-dasharray', `${(frac * circ).toFixed(1)} ${circ.toFixed(1)}`);
    }
    this.renderMessages(state);
    this.renderLogs(state);
  }

  /** Messages the network dropped (from the trace): shown briefly as a red ✕ near the sender. */
  addDrops(events) {
    this.drops ??= [];
    for (const e of events) if (e.type === 'drop') this.drops.push({ from: e.from, to: e.to, at: e.at });
    if (this.drops.length > 200) this.drops.splice(0, this.drops.length - 200);
  }

  renderMessages(state) {
    const now = state.now;
    const parts = [];
    const keep = 150;
    this.drops = (this.drops ?? []).filter((d) => d.at <= now && now - d.at < keep);
    for (const d of this.drops) {
      const a = this.endpointPos(d.from);
      const b = this.endpointPos(d.to);
      const x = a.x + (b.x - a.x) * 0.3;
      const y = a.y + (b.y - a.y) * 0.3;
      parts.push(`<text class="drop" x="${x.toFixed(1)}" y="${(y + 5).toFixed(1)}" text-anchor="middle" opacity="${(1 - (now - d.at) / keep).toFixed(2)}">✕</text>`);
    }
    for (const m of state.net.in_flight) {
      const span = Math.max(1, m.due - m.sent);
      const p = Math.max(0, Math.min(1, (now - m.sent) / span));
      const a = this.endpointPos(m.from);
      const b = this.endpointPos(m.to);
      const x = a.x + (b.x - a.x) * p;
      const y = a.y + (b.y - a.y) * p;
      const cls = KIND_CLASS[m.kind] ?? 'other';
      const r = /Ok|Granted|Refused|Reject|Response|Ack/.test(m.kind) ? 4 : 6;
      parts.push(`<circle class="msg ${cls}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r}"><title>${m.kind} ${m.from}→${m.to}</title></circle>`);
    }
    this.msgLayer.innerHTML = parts.join('');
  }

  /** The logs, aligned by index: the last `width` indexes of the longest log. */
  renderLogs(state, width = 24) {
    const last = Math.max(0, ...state.nodes.map((n) => n.last_index ?? 0));
    const from = Math.max(1, last - width + 1);
    const rows = [];
    const head = ['<tr><th scope="col">node</th>'];
    for (let i = from; i <= last; i++) head.push(`<th scope="col">${i}</th>`);
    head.push('</tr>');
    rows.push(head.join(''));
    for (const node of state.nodes) {
      const byIndex = new Map((node.log ?? []).map((e) => [e.index, e]));
      const tag = node.decommissioned ? ' (removed)' : node.member === 'learner' ? ' (learner)' : node.member === 'outside' ? ' (joining)' : '';
      const cells = [`<th scope="row">n${node.id}${tag}${node.up || node.decommissioned ? '' : ' ✕'}</th>`];
      for (let i = from; i <= last; i++) {
        const e = byIndex.get(i);
        if (!e) {
          const compacted = i < (node.first_index ?? 1) && i <= (node.last_index ?? 0);
          cells.push(`<td class="${compacted ? 'compacted' : 'empty'}"></td>`);
          continue;
        }
        const cls = [i <= node.commit ? 'committed' : 'uncommitted', i <= node.applied ? 'applied' : ''].join(' ');
        const text = String(e.text ?? '').replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('"', '&quot;');
        cells.push(`<td class="${cls}" style="background:${termColor(e.term)}" title="i${i} t${e.term}: ${text}${i <= node.commit ? ' (committed' + (i <= node.applied ? ', applied)' : ')') : ''}">${e.term}</td>`);
      }
      rows.push(`<tr class="${node.up ? '' : 'down'}">${cells.join('')}</tr>`);
    }
    this.logTable.innerHTML = rows.join('');
  }
}
