// The side panels: the selected node (actions and its state), faults, clients with the live
// linearizability check, "under the log" (store shape, MVCC versions) and the event trace.
// Every button calls the real engine through `session.act(...)`.

const $ = (id) => document.getElementById(id);

/** At most `n` characters of a user string, for lists. */
function short(s, n = 24) {
  s = String(s ?? '');
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

function esc(s) {
  return String(s ?? '').replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/** What the node panel's "Slow disk" adds per disk request (ms) and "Failing disk" fails. */
const SLOW_DISK_MS = 50;
const FAILING_DISK_RATE = 0.3;

export class Panels {
  constructor(session, view, ui) {
    this.s = session;
    this.view = view;
    this.ui = ui; // { select(id), report(msg, isError) }
    this.traceLines = [];
    this.lastOpsHtml = '';
    this.wire();
  }

  wire() {
    const s = this.s;
    $('heal').addEventListener('click', () => this.heal());
    $('restart-all').addEventListener('click', () => {
      for (const n of s.c.state({ log_tail: 0 }).nodes) if (!n.up && !n.decommissioned) s.act('restart', n.id);
    });
    $('add-node').addEventListener('click', () => this.addNode());
    $('drop').addEventListener('change', (e) => s.act('set_link', { drop_rate: Number(e.target.value) }));
    $('drop').addEventListener('input', (e) => ($('drop-out').textContent = Math.round(e.target.value * 100) + '%'));
    const latency = () => {
      const max = Number($('latency').value);
      return { min_latency: Math.max(1, Math.round(max * 0.4)), max_latency: max };
    };
    $('latency').addEventListener('input', () => {
      const l = latency();
      $('latency-out').textContent = `${l.min_latency}–${l.max_latency}`;
    });
    $('latency').addEventListener('change', () => s.act('set_link', latency()));
    for (const kind of ['put', 'get', 'delete', 'cas']) $(`op-${kind}`).addEventListener('click', () => this.op(kind));
    $('client-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.op('put');
    });
    $('unsafe').addEventListener('change', () => this.syncTarget());
    $('hide-heartbeats').addEventListener('change', () => this.renderTrace());
    $('mvcc-key').addEventListener('input', () => this.renderUnder(true));
  }

  /** The node selector lists the cluster's nodes; unsafe reads need a fixed node. */
  fillTargets(n) {
    const t = $('target');
    const keep = t.value;
    t.innerHTML = '<option value="">any node</option>' + Array.from({ length: n }, (_, k) => `<option value="${k + 1}">n${k + 1}</option>`).join('');
    t.value = keep && Number(keep) <= n ? keep : '';
    this.syncTarget();
  }

  syncTarget() {
    const t = $('target');
    const unsafe = $('unsafe').checked;
    t.options[0].disabled = unsafe;
    if (unsafe && t.value === '') {
      const st = this.s.c.state({ log_tail: 0 });
      const follower = st.nodes.find((n) => n.up && n.role !== 'Leader') ?? st.nodes[0];
      t.value = String(follower.id);
    }
  }

  /** A new machine joins: the operator adds it as a learner, then promotes it. */
  addNode() {
    this.membership('add_node');
  }

  /** Runs a membership action, reporting a refusal (the last voter, too many machines, …). */
  membership(name, ...args) {
    try {
      const r = this.s.act(name, ...args);
      this.ui.report(name === 'add_node' ? `n${r} comes up with empty disks; the operator adds it as a learner, then promotes it to voter once it has caught up.` : '');
      if (name === 'add_node') this.ui.select(r);
    } catch (e) {
      this.ui.report(e.message, true);
    }
  }

  heal() {
    this.s.act('heal');
    this.view.resetLayout();
  }

  /** Issues a client operation from the form. */
  op(kind) {
    const key = $('key').value.trim();
    const value = $('value').value;
    const node = $('target').value ? Number($('target').value) : undefined;
    const opts = node ? { node } : {};
    try {
      if (!key) throw new Error('a key is needed');
      if (kind === 'put') this.s.act('put', key, value, opts);
      else if (kind === 'get') this.s.act('get', key, $('unsafe').checked ? { ...opts, unsafe: true } : opts);
      else if (kind === 'delete') this.s.act('delete', key, opts);
      else this.s.act('cas', key, $('expected').value === '' ? null : $('expected').value, value, opts);
      this.ui.report('');
    } catch (e) {
      this.ui.report(e.message, true);
    }
  }

  render(state) {
    if (state.nodes.length !== this.targetsFor) {
      this.targetsFor = state.nodes.length;
      this.fillTargets(state.nodes.length);
    }
    this.renderAdmin(state);
    this.renderNode(state);
    this.renderOps();
    this.renderUnder(false, state);
    $('digest').textContent = `digest ${this.s.c.trace_digest()}`;
  }

  /** The operator's membership requests (newest first) and the region's voters. */
  renderAdmin(state) {
    const m = state.membership;
    const ids = (v) => (v ?? []).map((n) => 'n' + n).join(', ') || '—';
    const admin = (state.admin ?? [])
      .slice(-5)
      .reverse()
      .map((a) => `<li>${esc(a.op)}: ${a.done_at === null || a.done_at === undefined ? `<span class="muted">running (${a.attempts} attempt${a.attempts === 1 ? '' : 's'})</span>` : a.error ? `<span class="err">refused: ${esc(a.error)}</span>` : '<span class="ok">done</span>'}</li>`)
      .join('');
    const html = `${m ? `<div class="small">voters ${ids(m.voters)}${m.voters_outgoing.length ? ` (joint with ${ids(m.voters_outgoing)})` : ''} · learners ${ids(m.learners)}${m.removed.length ? ` · removed ${ids(m.removed)}` : ''}</div>` : ''}${admin ? `<ol class="admin-ops" aria-label="Membership requests, newest first">${admin}</ol>` : ''}`;
    if ($('membership').innerHTML !== html) $('membership').innerHTML = html;
  }

  renderNode(state) {
    const id = this.view.selected;
    const node = id ? state.nodes.find((n) => n.id === id) : null;
    if (!node) {
      $('node-title').textContent = '(click a node, or press 1–9)';
      $('node-body').innerHTML = '';
      return;
    }
    $('node-title').textContent = `n${id}`;
    const cuts = state.net.cuts.filter(([a]) => a === id).map(([, b]) => b);
    const key = JSON.stringify([node.member, node.decommissioned, node.up, node.role, node.term, node.commit, node.applied, node.last_index, node.leader, node.vote, JSON.stringify(node.progress), cuts, JSON.stringify(node.disk)]);
    if (this.nodeKey === `${id}:${key}`) return;
    this.nodeKey = `${id}:${key}`;
    if (node.decommissioned) {
      $('node-body').innerHTML = `<p>n${id} was removed from the cluster: its machine is stopped for good (node ids are never reused).</p>`;
      return;
    }
    const role = node.up ? (node.role ?? 'recovering') : 'down';
    const member = node.member ?? 'voter';
    const facts = node.up
      ? `<dl class="facts"><dt>role</dt><dd>${esc(role)}</dd><dt>membership</dt><dd>${esc(member === 'outside' ? 'not in the region yet (joining)' : member)}</dd><dt>term</dt><dd>${node.term}</dd><dt>voted for</dt><dd>${node.vote ? 'n' + node.vote : '—'}</dd>
         <dt>knows leader</dt><dd>${node.leader ? 'n' + node.leader : '—'}</dd><dt>log</dt><dd>i${node.first_index}…i${node.last_index} (last term ${node.last_term})</dd>
         <dt>commit</dt><dd>i${node.commit}</dd><dt>applied</dt><dd>i${node.applied}</dd><dt>starts / crashes</dt><dd>${node.incarnation} / ${node.crashes}</dd></dl>`
      : `<p>n${id} is down (crashed ${node.crashes}×). Its disks keep what was synced.</p>`;
    const progress = node.progress
      ? `<table class="progress"><caption>Replication progress (leader's view)</caption><tr><th>peer</th><th>match</th><th>next</th><th>state</th></tr>${node.progress
          .map((p) => `<tr><td>n${p.peer}</td><td>${p.match}</td><td>${p.next}</td><td>${esc(p.state)}</td></tr>`)
          .join('')}</table>`
      : '';
    const buttons = node.up
      ? `<button type="button" data-act="crash" title="Crash; unsynced writes are lost (C)">Crash (lose unsynced)</button>
         <button type="button" data-act="crash-keep" title="The process dies, the OS keeps its page cache">Crash (keep OS cache)</button>
         <button type="button" data-act="isolate" title="Partition this node from all others (I)">Isolate</button>`
      : `<button type="button" data-act="restart" title="Restart (R)">Restart</button>`;
    const canLead = member === 'voter' && !(node.up && node.role === 'Leader');
    const inRegion = member === 'voter' || member === 'learner';
    const admin = `${canLead ? `<button type="button" data-admin="transfer" title="Ask the leader to hand leadership to n${id} (T)">Transfer leadership here</button>` : ''}${
      inRegion ? `<button type="button" data-admin="remove" title="Remove n${id} from the region; its machine then stops for good (X)">Remove node</button>` : ''
    }`;
    const d = node.disk;
    const slow = d.store_ms > 0 || d.log_ms > 0;
    const failing = d.error_rate > 0;
    const disk = `<div class="row small">disks: ${slow ? `store +${d.store_ms} ms, log +${d.log_ms} ms` : 'fast'}, ${failing ? `${Math.round(d.error_rate * 100)}% of writes fail` : 'healthy'}${d.failures ? ` · stopped ${d.failures}× on a failed write` : ''}
         <button type="button" data-disk="slow" aria-pressed="${slow}" title="Every request on this node's disks takes ${SLOW_DISK_MS} ms more">Slow disk</button>
         <button type="button" data-disk="failing" aria-pressed="${failing}" title="${Math.round(FAILING_DISK_RATE * 100)}% of this node's disk writes fail: it stops and restarts on its disks">Failing disk</button></div>`;
    const links = state.nodes
      .filter((n) => n.id !== id && !n.decommissioned)
      .map((n) => {
        const cut = cuts.includes(n.id);
        return `<button type="button" data-cut="${n.id}" aria-pressed="${cut}" class="${cut ? 'is-cut' : ''}" title="${cut ? 'Restore' : 'Cut'} the direction n${id} → n${n.id}">→ n${n.id}${cut ? ' ✕' : ''}</button>`;
      })
      .join('');
    const entries = node.up
      ? `<ol class="entries" aria-label="Newest log entries">${(node.log ?? [])
          .slice(-8)
          .reverse()
          .map((e) => `<li class="${e.index <= node.commit ? 'committed' : 'uncommitted'}"><span class="muted">i${e.index} t${e.term}</span> ${esc(e.text)}${e.index <= node.applied ? '' : e.index <= node.commit ? ' <span class="muted">(committed)</span>' : ' <span class="muted">(not committed)</span>'}</li>`)
          .join('')}</ol>`
      : '';
    $('node-body').innerHTML = `<div class="row">${buttons}</div>${admin ? `<div class="row">${admin}</div>` : ''}<div class="row small">links out (click to cut one direction): ${links}</div>${disk}${facts}${entries}${progress}`;
    for (const b of $('node-body').querySelectorAll('button[data-disk]')) {
      const on = b.getAttribute('aria-pressed') !== 'true';
      b.addEventListener('click', () =>
        this.s.act('set_disk', id, b.dataset.disk === 'slow' ? { store_ms: on ? SLOW_DISK_MS : 0, log_ms: on ? SLOW_DISK_MS : 0 } : { error_rate: on ? FAILING_DISK_RATE : 0 }),
      );
    }
    for (const b of $('node-body').querySelectorAll('button[data-act]')) b.addEventListener('click', () => this.nodeAction(id, b.dataset.act));
    for (const b of $('node-body').querySelectorAll('button[data-admin]')) b.addEventListener('click', () => this.nodeAction(id, b.dataset.admin));
    for (const b of $('node-body').querySelectorAll('button[data-cut]')) {
      b.addEventListener('click', () => this.s.act(b.getAttribute('aria-pressed') === 'true' ? 'uncut' : 'cut', id, Number(b.dataset.cut)));
    }
  }

  nodeAction(id, act) {
    const s = this.s;
    if (act === 'crash') s.act('crash', id, true);
    else if (act === 'crash-keep') s.act('crash', id, false);
    else if (act === 'restart') s.act('restart', id);
    else if (act === 'isolate') this.isolate(id);
    else if (act === 'transfer') this.membership('transfer_leader', id);
    else if (act === 'remove') this.membership('remove_node', id);
  }

  isolate(id) {
    const nodes = this.s.c.state({ log_tail: 0 }).nodes;
    const rest = nodes.filter((n) => n.id !== id && !n.decommissioned).map((n) => n.id);
    this.s.act('partition', [[id], rest]);
    this.view.layoutGroups([[id], rest]);
  }

  renderOps() {
    const ops = this.s.c.ops_since(0);
    const check = this.s.check();
    const bad = new Set(check.violation?.ops ?? []);
    const c = $('check');
    const html =
      check.verdict === 'linearizable'
        ? `<span class="ok">✓ linearizable</span> <span class="muted">${check.ops} ops on ${check.keys} keys checked</span>`
        : check.verdict === 'violation'
          ? `<span class="bad">✗ not linearizable on key ${esc(check.violation.key)}</span><pre>${esc(check.violation.explanation)}</pre>`
          : `<span class="muted">linearizability: ${esc(check.verdict)}</span>`;
    if (c.innerHTML !== html) c.innerHTML = html;
    c.dataset.verdict = check.verdict;
    const rows = ops
      .slice(-60)
      .reverse()
      .map((o) => {
        const what = o.kind === 'put' ? `put ${esc(short(o.key))}=${esc(short(o.value))}` : o.kind === 'cas' ? `cas ${esc(short(o.key))}: ${esc(short(o.expected ?? '(absent)'))}→${esc(short(o.value))}` : `${o.kind} ${esc(short(o.key))}`;
        const asked = o.node ? ` @n${o.node}` : '';
        let res = '<span class="muted">pending…</span>';
        if (o.done && o.result?.ok) {
          const val = o.kind === 'get' ? ` → ${o.result.value === null ? '(absent)' : esc(short(o.result.value))}` : o.kind === 'cas' ? (o.result.swapped ? ' → swapped' : ' → not swapped') : ' → ok';
          res = `${val} <span class="muted">by n${o.served_by ?? '?'}${o.result.revision ? ' at rev ' + o.result.revision : o.result.read_ts ? ' at ts ' + o.result.read_ts : ''}</span>`;
        } else if (o.done) {
          res = ` → <span class="err">${esc(o.result?.error ?? o.outcome)}</span> <span class="muted">(${esc(o.outcome)})</span>`;
        }
        return `<li class="${bad.has(o.id) ? 'violation' : ''}${o.unsafe ? ' unsafe' : ''}" data-op="${o.id}"><span class="muted">#${o.id} ${esc(o.session)} ${o.call}ms</span> ${what}${asked}${o.unsafe ? ' <em>unsafe</em>' : ''}${res}</li>`;
      })
      .join('');
    if (rows !== this.lastOpsHtml) {
      $('ops').innerHTML = rows;
      this.lastOpsHtml = rows;
    }
  }

  renderUnder(force, state) {
    if (!$('under-panel').open) return;
    state ??= this.s.c.state({ log_tail: 0 });
    const html = state.nodes
      .map((n) => {
        if (!n.up || !n.store) return `<tr><th>n${n.id}</th><td colspan="4" class="muted">down</td></tr>`;
        const st = n.store;
        const levels =
          st.levels
            .filter((l) => l.files > 0)
            .map((l) => `L${l.level}: ${(l.tables ?? []).map(([id, bytes]) => `<span class="sst" title="SSTable ${id}">#${id} ${bytes} B</span>`).join(' ') || `${l.files} file${l.files === 1 ? '' : 's'} (${l.bytes} B)`}`)
            .join('<br>') || '—';
        return `<tr><th>n${n.id}</th><td>${st.memtable_entries} entries<br>${st.memtable_bytes} B</td><td>${levels}</td><td>${st.flushes}</td><td>${st.compactions}</td></tr>`;
      })
      .join('');
    const table = `<table class="under"><tr><th>node</th><th>memtable</th><th>SST levels</th><th>flushes</th><th>compactions</th></tr>${html}</table>`;
    if (force || this.underHtml !== table) {
      $('under-body').innerHTML = table;
      this.underHtml = table;
    }
    const key = $('mvcc-key').value.trim();
    if (!key) return;
    if (!force && this.mvccAt === state.now) return;
    this.mvccAt = state.now;
    const versions = this.s.c.key_versions(key);
    $('mvcc-body').innerHTML =
      versions
        .map(
          (v) =>
            `<div><strong>n${v.node}</strong>${v.lock ? ' <span class="bad">locked</span>' : ''}: ${
              v.versions.map((x) => `<span class="ver">@${x.commit_ts} ${esc(x.kind)}${x.value !== null && x.value !== undefined ? ' ' + esc(x.value) : ''}</span>`).join(' ') || '<span class="muted">no versions</span>'
            }</div>`,
        )
        .join('') || '<span class="muted">no node is up</span>';
  }

  /** New trace events (from the session): keep the last lines, draw them. */
  addEvents(events, reset) {
    if (reset) this.traceLines = [];
    for (const e of events) this.traceLines.push(e);
    if (this.traceLines.length > 600) this.traceLines.splice(0, this.traceLines.length - 400);
    this.renderTrace();
  }

  renderTrace() {
    const hide = $('hide-heartbeats').checked;
    const lines = this.traceLines.filter((e) => !hide || (e.type !== 'deliver' && !/Heartbeat/.test(e.text)));
    const pre = $('trace');
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = lines
      .slice(-200)
      .map((e) => e.text)
      .join('\n');
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }
}
