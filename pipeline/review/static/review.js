// trialstruct review page. Plain JS, no build step. Document text and model output reach the DOM
// only as text nodes (never innerHTML), so a trial text containing markup shows as text.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("review-data").textContent);
  const TYPES = ["Condition", "Drug", "Procedure", "Measurement", "Observation", "Device", "Person", "Visit"];
  const VIEWS = [["run", "Run"], ["gold", "vs gold"], ["overview", "Problems"], ["compare", "vs other run"], ["edit", "Edit"]];
  const PROBLEM_STATES = ["added", "changed"];
  const KINDS = [["fp", "false positive"], ["miss", "miss"], ["span", "span"], ["type", "type"],
    ["values", "value"], ["temporal", "time window"], ["negation", "negation"]];
  const ATTRIBUTE_LABELS = {values: "value", temporal: "time window", negation: "negation"};
  const STATUS_TEXT = {tp: "match", attr: "matches; value, time window or negation differs", partial: "span differs",
    type: "type differs", fp: "not in gold"};
  const state = {
    current: -1, view: "run", selected: null, bundles: Object.assign({}, DATA.bundles), visible: [],
    problems: [], problemIndex: -1, work: {}, accepted: {}, edits: {}, lastRange: null,
    reviewer: "", status: {text: "", error: false}, renderToken: 0,
    overview: {group: "document", sort: "f1", descending: false},
  };
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined && child !== "") node.append(child);
    }
    return node;
  }
  const clone = (x) => JSON.parse(JSON.stringify(x));
  const num = (x) => (x === null || x === undefined ? "–" : String(x));
  const usable = (part) => (part && !part.error ? part : null);

  // ---------- document list ----------
  function matches(doc) {
    const text = $("f-text").value.trim().toLowerCase();
    const kind = $("f-kind").value;
    const type = $("f-type").value;
    if (kind && !(doc.kinds[kind] > 0)) return false;
    if (type && !(doc.types[type] > 0)) return false;
    if ($("f-problems").checked && !(doc.problems > 0)) return false;
    if (!text) return true;
    const bundle = state.bundles[doc.doc_id];
    return [doc.doc_id, doc.title, bundle ? bundle.record.source_text : ""].join("\n").toLowerCase().includes(text);
  }

  function listItem(doc, i) {
    const badges = el("span", {class: "badges"},
      el("span", {class: "badge"}, `${doc.n_criteria} criteria`),
      el("span", {class: "badge"}, `${doc.n_entities} entities`));
    if (doc.warnings) badges.append(el("span", {class: "badge warn"}, `${doc.warnings} warnings`));
    if (doc.problems) badges.append(el("span", {class: "badge prob"}, `${doc.problems} problems`));
    if (doc.score) badges.append(el("span", {class: "badge score", title: "relaxed F1 against gold"}, `F1 ${doc.score.f1.toFixed(2)}`));
    if (doc.compare) {
      const c = doc.compare;
      badges.append(el("span", {class: "badge", title: "added / removed / changed vs other run"}, `+${c.added} −${c.removed} ~${c.changed}`));
    }
    const id = doc.href ? el("a", {href: doc.href, class: "id"}, doc.doc_id) : el("span", {class: "id"}, doc.doc_id);
    const li = el("li", {"data-doc": doc.doc_id, class: i === state.current ? "current" : null},
      id, el("span", {class: "title"}, doc.title || ""), badges);
    li.addEventListener("click", () => (doc.href ? (location.href = doc.href) : selectDoc(i)));
    return li;
  }

  function renderList() {
    state.visible = DATA.docs.map((_, i) => i).filter((i) => matches(DATA.docs[i]));
    $("doc-list").replaceChildren(...state.visible.map((i) => listItem(DATA.docs[i], i)));
    $("list-count").textContent = `${state.visible.length} of ${DATA.docs.length} documents`;
  }

  async function getBundle(docId) {
    if (!state.bundles[docId] && DATA.api) {
      const response = await fetch("/api/doc/" + encodeURIComponent(docId));
      if (!response.ok) throw new Error(`cannot load ${docId}: HTTP ${response.status}`);
      state.bundles[docId] = await response.json();
    }
    return state.bundles[docId];
  }

  async function selectDoc(i) {
    state.current = i;
    state.selected = null;
    state.problemIndex = -1;
    for (const li of $("doc-list").children) li.classList.toggle("current", li.dataset.doc === DATA.docs[i].doc_id);
    const li = $("doc-list").querySelector("li.current");
    if (li) li.scrollIntoView({block: "nearest"});
    await renderDoc();
    const first = $("source").querySelector("[data-criterion-id]");
    $("source-scroll").scrollTop = 0;
    if (first) first.scrollIntoView({block: "start"});
  }

  // ---------- highlights ----------
  function crosses(a, b) {
    return (a.start < b.start && b.start < a.end && a.end < b.end) || (b.start < a.start && a.start < b.end && b.end < a.end);
  }

  // Layer 0 holds the criteria and every entity that nests with them; an entity that crosses one
  // already placed goes to the first overlay layer where it nests, so each entity is one element.
  function assignLayers(criteria, items) {
    const layers = [[]];
    for (const c of criteria) if (!layers[0].some((o) => crosses(o, c))) layers[0].push(c);
    const sorted = items.slice().sort((a, b) => a.start - b.start || b.end - a.end);
    for (const item of sorted) {
      let k = 0;
      while (k < layers.length && layers[k].some((o) => crosses(o, item))) k++;
      if (k === layers.length) layers.push([]);
      layers[k].push(item);
    }
    return layers;
  }

  function buildLayer(text, items, k) {
    const root = el("div", {class: k ? "layer overlay" : "layer", "data-layer": k, "aria-hidden": k ? "true" : null});
    const sorted = items.slice().sort((a, b) => a.start - b.start || b.end - a.end || (b.isCriterion ? 1 : 0) - (a.isCriterion ? 1 : 0));
    const stack = [{end: text.length, node: root}];
    let pos = 0;
    const close = () => {
      const top = stack.pop();
      top.node.append(text.slice(pos, top.end));
      pos = top.end;
    };
    for (const item of sorted) {
      while (stack.length > 1 && stack[stack.length - 1].end <= item.start) close();
      const top = stack[stack.length - 1];
      top.node.append(text.slice(pos, item.start));
      pos = item.start;
      const node = item.make(k);
      top.node.append(node);
      stack.push({end: item.end, node});
    }
    while (stack.length > 1) close();
    root.append(text.slice(pos));
    return root;
  }

  function entityItems(record, bundle) {
    const gold = state.view === "gold" ? usable(bundle.gold) : null;
    const other = state.view === "compare" ? usable(bundle.compare) : null;
    const accepted = state.view === "edit" ? state.accepted[record.doc_id] || {} : {};
    const items = [];
    const add = (entity, attr, status) => items.push({start: entity.start, end: entity.end, make: (k) => entityNode(entity, attr, status, k)});
    for (const c of record.criteria) {
      for (const e of c.entities) {
        const status = gold ? gold.status[e.id] : other ? other.status[e.id] : accepted[e.id] ? "accepted" : null;
        add(e, {"data-entity-id": e.id}, status);
      }
    }
    if (gold) for (const e of gold.missed) add(e, {"data-gold-id": e.id}, "miss");
    if (other) for (const e of other.removed) add(e, {"data-other-id": e.id}, "removed");
    return items;
  }

  function entityNode(entity, attr, status, k) {
    const classes = ["ent", "t-" + entity.type];
    if (entity.negated) classes.push("neg");
    if (status === "miss" || status === "removed" || status === "accepted") classes.push(status);
    else if (status) classes.push("st-" + status);
    const node = el("span", Object.assign({class: classes.join(" "), "data-type": entity.type, "data-status": status}, attr));
    node.style.setProperty("--k", String(k));
    return node;
  }

  function renderSource(record, bundle) {
    const criteria = record.criteria.map((c) => ({
      start: c.start, end: c.end, isCriterion: true,
      make: () => el("span", {class: "crit k-" + c.kind, "data-criterion-id": c.id}),
    }));
    const layers = assignLayers(criteria, entityItems(record, bundle));
    $("source").replaceChildren(...layers.map((items, k) => buildLayer(record.source_text, items, k)));
    const kind = $("f-kind").value;
    $("source").classList.toggle("hide-kind-inclusion", kind === "exclusion");
    $("source").classList.toggle("hide-kind-exclusion", kind === "inclusion");
  }

  // ---------- document header, problems, criteria ----------
  function scoreText(name, c) {
    return `${name} P ${c.precision.toFixed(2)} R ${c.recall.toFixed(2)} F1 ${c.f1.toFixed(2)} (tp ${c.tp}, fp ${c.fp}, fn ${c.fn})`;
  }

  function renderHead(doc, bundle, record) {
    const head = $("doc-head");
    head.replaceChildren();
    if (DATA.mode === "doc") {
      const nav = el("div", {class: "nav"}, el("a", {href: DATA.nav.index}, "← index"));
      if (DATA.nav.prev) nav.append(el("a", {href: DATA.nav.prev, id: "nav-prev"}, "previous"));
      if (DATA.nav.next) nav.append(el("a", {href: DATA.nav.next, id: "nav-next"}, "next"));
      head.append(nav);
    }
    head.append(el("h2", null, doc.doc_id, doc.title ? ` — ${doc.title}` : ""));
    head.append(el("div", {class: "meta"},
      `${record.source.format} · ${record.source.path}${record.source.row ? ` row ${record.source.row}` : ""} · ` +
      `${record.criteria.length} criteria · ${record.criteria.reduce((n, c) => n + c.entities.length, 0)} entities · ` +
      `backend ${record.provenance.backend}${record.provenance.model ? ` (${record.provenance.model})` : ""}`));
    for (const w of record.warnings) head.append(el("div", {class: "warnings"}, "⚠ " + w));
    const gold = bundle.gold;
    if (state.view === "gold") {
      if (!gold) head.append(el("div", {class: "meta"}, "no gold record for this document"));
      else if (gold.error) head.append(el("div", {class: "warnings"}, gold.error));
      else head.append(el("div", {class: "meta", id: "gold-score"}, scoreText("strict", gold.strict), " · ", scoreText("relaxed", gold.relaxed)));
    }
    if (state.view === "compare") {
      const other = bundle.compare;
      if (!other) head.append(el("div", {class: "meta"}, "document absent from the other run"));
      else if (other.error) head.append(el("div", {class: "warnings"}, other.error));
      else head.append(el("div", {class: "meta", id: "compare-counts"},
        `vs other run: ${other.counts.added} added, ${other.counts.removed} removed, ${other.counts.changed} changed, ${other.counts.same} same`));
    }
  }

  function problemList(record, bundle) {
    const found = [];
    const gold = state.view === "gold" ? usable(bundle.gold) : null;
    if (gold) {
      return gold.problems.map((p) => ({
        kind: p.entity ? "entity" : "gold", id: p.entity || p.gold_entity, status: p.kind, label: p.label,
        entity: {type: p.type, text: p.text, start: p.start, end: p.end},
      }));
    }
    const part = state.view === "compare" ? usable(bundle.compare) : null;
    if (!part) return found;
    for (const c of record.criteria) {
      for (const e of c.entities) {
        const status = part.status[e.id];
        if (PROBLEM_STATES.includes(status)) found.push({kind: "entity", id: e.id, status, entity: e});
      }
    }
    for (const e of part.missed || []) found.push({kind: "gold", id: e.id, status: "miss", entity: e});
    for (const e of part.removed || []) found.push({kind: "other", id: e.id, status: "removed", entity: e});
    return found.sort((a, b) => a.entity.start - b.entity.start || a.entity.end - b.entity.end);
  }

  const STATUS_LEGEND = {
    gold: [["st-tp", "match"], ["st-attr", "value, time or negation differs"], ["st-partial", "span differs"],
      ["st-type", "type differs"], ["st-fp", "not in gold"], ["miss", "missed (gold only)"]],
    compare: [["st-same", "same"], ["st-changed", "changed"], ["st-added", "added"], ["removed", "removed (other run only)"]],
    edit: [["accepted", "accepted"]],
  };

  function renderStatusLegend() {
    const entries = STATUS_LEGEND[state.view] || [];
    $("status-legend").replaceChildren(...entries.map(([cls, label]) => el("span", {class: `ent t-Visit ${cls}`}, label)));
  }

  function renderProblems(record, bundle) {
    state.problems = problemList(record, bundle);
    const box = $("problems");
    box.replaceChildren();
    state.problems.forEach((p, index) => {
      const button = el("button", {type: "button", class: "st-" + p.status, "data-problem": p.status}, `${p.label || p.status}: ${p.entity.type} “${p.entity.text}”`);
      button.addEventListener("click", () => { state.problemIndex = index; select(p, true); });
      box.append(button);
    });
  }

  function valueText(v) {
    if (!v) return "—";
    const bounds = v.comparator === "between" ? `${num(v.low)}–${num(v.high)}` : `low ${num(v.low)} high ${num(v.high)}`;
    return `${v.comparator || "?"} ${bounds} ${v.unit || ""} ← “${v.text}”`;
  }

  function temporalText(t) {
    if (!t) return "—";
    return `${t.direction || "?"} ${t.anchor || "?"} days ${num(t.min_days)}–${num(t.max_days)} ← “${t.text}”`;
  }

  function renderCriteria(record) {
    const kind = $("f-kind").value;
    const items = record.criteria.map((c) => {
      const li = el("li", {"data-criterion-ref": c.id, class: `k-${c.kind}${c.parent ? " sub" : ""}`, hidden: Boolean(kind) && c.kind !== kind},
        el("span", {class: "cid"}, c.id), ` ${c.kind}${c.parent ? ` (in ${c.parent})` : ""} · ${c.start}–${c.end}`,
        el("span", {class: "ctext"}, c.text.length > 240 ? c.text.slice(0, 240) + "…" : c.text));
      for (const e of c.entities) {
        const extra = (e.negated ? " ¬" : "") + (e.value ? ` [${e.value.text}]` : "") + (e.temporal ? ` [${e.temporal.text}]` : "");
        li.append(el("span", {class: "chip t-" + e.type, "data-entity-ref": e.id, title: e.id}, `${e.type}: ${e.text}${extra}`));
      }
      return li;
    });
    $("criteria").replaceChildren(...items);
  }

  // ---------- selection and details ----------
  function lookup(ref, record, bundle) {
    if (!ref) return null;
    if (ref.kind === "criterion") {
      const c = record.criteria.find((x) => x.id === ref.id);
      return c ? {criterion: c, criterionId: c.id} : null;
    }
    if (ref.kind === "entity") {
      for (const c of record.criteria) {
        const e = c.entities.find((x) => x.id === ref.id);
        if (e) {
          const part = state.view === "gold" ? usable(bundle.gold) : state.view === "compare" ? usable(bundle.compare) : null;
          return {
            entity: e, criterionId: c.id, status: part ? part.status[e.id] : null,
            changes: part && part.changes ? part.changes[e.id] : null,
            goldMatch: part && part.counterpart ? part.counterpart[e.id] : null,
            differs: part && part.differs ? part.differs[e.id] || [] : [],
          };
        }
      }
      return null;
    }
    const list = ref.kind === "gold" ? (usable(bundle.gold) || {}).missed : (usable(bundle.compare) || {}).removed;
    const e = (list || []).find((x) => x.id === ref.id);
    return e ? {entity: e, criterionId: e.criterion, status: ref.kind === "gold" ? "missed (in gold only)" : "removed (in other run only)"} : null;
  }

  function nodeFor(ref) {
    const attr = {entity: "data-entity-id", gold: "data-gold-id", other: "data-other-id", criterion: "data-criterion-id"}[ref.kind];
    return $("source").querySelector(`.layer [${attr}="${CSS.escape(ref.id)}"]`);
  }

  function fieldsTable(info) {
    const rows = [];
    const row = (name, value) => rows.push(el("tr", null, el("th", null, name), el("td", null, String(value))));
    if (info.entity) {
      const e = info.entity;
      row("entity", e.id);
      row("type", e.type);
      row("text", e.text);
      row("offsets", `${e.start}–${e.end}`);
      row("negated", e.negated ? "yes" : "no");
      row("value", valueText(e.value));
      row("temporal", temporalText(e.temporal));
      row("alignment", e.alignment);
      row("criterion", info.criterionId);
      if (info.status) row("status", STATUS_TEXT[info.status] || info.status);
      if (info.goldMatch) {
        const g = info.goldMatch;
        row("gold has", `${g.type} “${g.text}” ${g.start}–${g.end} (${g.id})`);
        const gold = {values: valueText(g.value), temporal: temporalText(g.temporal), negation: g.negated ? "yes" : "no"};
        for (const name of info.differs || []) {
          rows.push(el("tr", {class: "differs", "data-differs": name}, el("th", null, `gold ${ATTRIBUTE_LABELS[name]}`), el("td", null, gold[name])));
        }
      }
      for (const [field, [before, after]] of Object.entries(info.changes || {})) {
        row(`changed ${field}`, `${JSON.stringify(before)} → ${JSON.stringify(after)}`);
      }
    } else {
      const c = info.criterion;
      row("criterion", c.id);
      row("kind", c.kind);
      row("parent", c.parent || "—");
      row("offsets", `${c.start}–${c.end}`);
      row("entities", c.entities.length);
    }
    return el("table", null, ...rows);
  }

  function renderDetails(info) {
    const details = $("details");
    if (!info) {
      details.replaceChildren(el("p", {class: "hint"}, "Hover or click a highlight or a criterion."));
      return;
    }
    const obj = info.entity || info.criterion;
    details.replaceChildren(fieldsTable(info), el("pre", {class: "json", id: "selection-json"}, JSON.stringify(obj, null, 2)));
  }

  async function showSelection(scroll) {
    const bundle = state.bundles[DATA.docs[state.current].doc_id];
    const record = shownRecord(bundle);
    for (const node of document.querySelectorAll(".selected, #criteria .current")) node.classList.remove("selected", "current");
    const info = lookup(state.selected, record, bundle);
    if (!info) state.selected = null;
    renderDetails(info);
    renderEditor(bundle);
    if (!info) return;
    const node = nodeFor(state.selected);
    if (node) {
      node.classList.add("selected");
      if (scroll) node.scrollIntoView({block: "center"});
    }
    const li = $("criteria").querySelector(`[data-criterion-ref="${CSS.escape(info.criterionId || "")}"]`);
    if (li) {
      li.classList.add("current");
      li.scrollIntoView({block: "nearest"});
    }
  }

  function select(ref, scroll) {
    state.selected = ref ? {kind: ref.kind, id: ref.id} : null;
    showSelection(scroll);
  }

  function refOf(node) {
    if (node.dataset.entityId !== undefined) return {kind: "entity", id: node.dataset.entityId};
    if (node.dataset.goldId !== undefined) return {kind: "gold", id: node.dataset.goldId};
    return {kind: "other", id: node.dataset.otherId};
  }

  function showTooltip(ev) {
    const tip = $("tooltip");
    const node = ev.target.closest && ev.target.closest(".ent");
    if (!node || state.current < 0) {
      tip.hidden = true;
      return;
    }
    const bundle = state.bundles[DATA.docs[state.current].doc_id];
    const info = lookup(refOf(node), shownRecord(bundle), bundle);
    if (!info) return;
    const e = info.entity;
    tip.textContent = `${e.type}${e.negated ? " (negated)" : ""}: “${e.text}”\n${e.id} in ${info.criterionId} · ${e.start}–${e.end} · ${e.alignment}` +
      `\nvalue: ${valueText(e.value)}\ntemporal: ${temporalText(e.temporal)}` + (info.status ? `\nstatus: ${info.status}` : "") +
      Object.entries(info.changes || {}).map(([f, [a, b]]) => `\nchanged ${f}: ${JSON.stringify(a)} → ${JSON.stringify(b)}`).join("") +
      (info.goldMatch ? `\ngold has: “${info.goldMatch.text}” ${info.goldMatch.start}–${info.goldMatch.end}` : "") +
      (info.differs && info.differs.length ? `\ndiffers from gold: ${info.differs.map((d) => ATTRIBUTE_LABELS[d]).join(", ")}` : "");
    tip.hidden = false;
    tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 380) + "px";
    tip.style.top = ev.clientY + 16 + "px";
  }

  // ---------- rendering one document ----------
  function shownRecord(bundle) {
    return state.view === "edit" ? workCopy(bundle).record : bundle.record;
  }

  async function renderDoc() {
    const token = ++state.renderToken;
    const overview = state.view === "overview";
    for (const id of ["doc-head", "status-legend", "problems", "source-scroll"]) $(id).hidden = overview;
    $("overview").hidden = !overview;
    if (overview) return renderOverview();
    if (state.current < 0) {
      $("source").replaceChildren(el("p", {class: "empty"}, DATA.docs.length ? "Pick a document." : "No documents in this run."));
      return;
    }
    const doc = DATA.docs[state.current];
    const bundle = await getBundle(doc.doc_id);
    if (token !== state.renderToken) return;
    const record = shownRecord(bundle);
    renderHead(doc, bundle, record);
    renderComment(doc, bundle);
    renderSource(record, bundle);
    renderStatusLegend();
    renderProblems(record, bundle);
    renderCriteria(record);
    showSelection(false);
  }

  function renderViews() {
    const nav = $("views");
    nav.replaceChildren();
    for (const [view, label] of VIEWS) {
      const available = view === "run" || (view === "gold" && DATA.has_gold) || (view === "compare" && DATA.has_compare) ||
        (view === "edit" && DATA.editable) || (view === "overview" && DATA.has_gold && DATA.mode !== "doc");
      if (!available) continue;
      const button = el("button", {type: "button", "data-view": view, class: view === state.view ? "active" : null}, label);
      button.addEventListener("click", () => setView(view));
      nav.append(button);
    }
  }

  function setView(view) {
    state.view = view;
    state.selected = null;
    state.problemIndex = -1;
    renderViews();
    renderDoc();
  }


  // ---------- problems overview (across documents) ----------
  function kindCounts(doc) {
    const counts = Object.assign({}, doc.problem_kinds || {});
    counts.total = Object.values(doc.problem_kinds || {}).reduce((a, b) => a + b, 0);
    return counts;
  }

  function openProblemDoc(docId) {
    const i = DATA.docs.findIndex((d) => d.doc_id === docId);
    if (i < 0) return;
    if (DATA.docs[i].href) {
      location.href = DATA.docs[i].href;
      return;
    }
    state.view = "gold";
    renderViews();
    selectDoc(i);
  }

  function sortHeader(key, label) {
    const o = state.overview;
    const mark = o.sort === key ? (o.descending ? " ▼" : " ▲") : "";
    const th = el("th", {"data-sort": key, class: "sortable", title: "sort"}, label + mark);
    th.addEventListener("click", () => {
      o.descending = o.sort === key ? !o.descending : key !== "f1" && key !== "doc_id";
      o.sort = key;
      renderOverview();
    });
    return th;
  }

  function documentTable() {
    const o = state.overview;
    const docs = DATA.docs.filter((d) => d.has_gold && d.score);
    const value = (d) => (o.sort === "f1" ? d.score.f1 : o.sort === "doc_id" ? d.doc_id : kindCounts(d)[o.sort] || 0);
    docs.sort((a, b) => {
      const x = value(a), y = value(b);
      const order = x < y ? -1 : x > y ? 1 : a.doc_id < b.doc_id ? -1 : 1;
      return o.descending ? -order : order;
    });
    const head = el("tr", null, sortHeader("doc_id", "document"), sortHeader("f1", "F1"), sortHeader("total", "problems"),
      ...KINDS.map(([kind, label]) => sortHeader(kind, label)), el("th", null, "comment"));
    const rows = docs.map((d) => {
      const counts = kindCounts(d);
      const tr = el("tr", {"data-doc": d.doc_id},
        el("td", {class: "id"}, d.doc_id), el("td", null, d.score.f1.toFixed(2)), el("td", null, String(counts.total)),
        ...KINDS.map(([kind]) => el("td", {"data-kind": kind, class: counts[kind] ? "n" : "zero"}, String(counts[kind] || 0))),
        el("td", {class: "comment"}, d.comment ? d.comment.text : ""));
      tr.addEventListener("click", () => openProblemDoc(d.doc_id));
      return tr;
    });
    const totals = {};
    for (const d of docs) for (const [k, n] of Object.entries(kindCounts(d))) totals[k] = (totals[k] || 0) + n;
    const foot = el("tr", {class: "totals"}, el("td", null, `${docs.length} documents`), el("td", null, ""),
      el("td", null, String(totals.total || 0)), ...KINDS.map(([kind]) => el("td", {"data-kind": kind}, String(totals[kind] || 0))), el("td", null, ""));
    return el("table", {id: "overview-docs"}, el("thead", null, head), el("tbody", null, ...rows), el("tfoot", null, foot));
  }

  const KIND_ROWS_SHOWN = 300;

  function kindGroups() {
    const f1 = Object.fromEntries(DATA.docs.map((d) => [d.doc_id, d.score ? d.score.f1 : null]));
    const groups = KINDS.map(([kind, label]) => {
      const rows = DATA.problems.filter((p) => p.kind === kind).sort((a, b) => f1[a.doc_id] - f1[b.doc_id] || a.start - b.start);
      const table = el("table", {class: "kind-rows"}, el("tr", null, ...["document", "F1", "criterion", "type", "text", "run", "gold"].map((h) => el("th", null, h))),
        ...rows.slice(0, KIND_ROWS_SHOWN).map((p) => {
          const tr = el("tr", {"data-doc": p.doc_id}, el("td", {class: "id"}, p.doc_id), el("td", null, f1[p.doc_id] === null ? "–" : f1[p.doc_id].toFixed(2)),
            el("td", null, p.criterion), el("td", null, p.type), el("td", null, p.text), el("td", null, p.run), el("td", null, p.gold));
          tr.addEventListener("click", () => openProblemDoc(p.doc_id));
          return tr;
        }));
      const more = rows.length > KIND_ROWS_SHOWN ? el("p", {class: "hint"}, `… ${rows.length - KIND_ROWS_SHOWN} more in the CSV`) : null;
      return el("details", {"data-kind": kind, open: rows.length > 0 && rows.length <= 50},
        el("summary", null, `${label} (${rows.length})`), table, more);
    });
    return el("div", {id: "overview-kinds"}, ...groups);
  }

  function renderOverview() {
    const o = state.overview;
    const group = el("select", {id: "overview-group"}, el("option", {value: "document"}, "by document"), el("option", {value: "kind"}, "by kind"));
    group.value = o.group;
    group.addEventListener("change", () => { o.group = group.value; renderOverview(); });
    const bar = el("div", {class: "overview-bar"}, el("strong", null, `Problems against gold: ${DATA.problems.length}`), " group ", group);
    if (DATA.problems_csv) bar.append(el("a", {id: "overview-csv", href: DATA.problems_csv, download: "problems.csv"}, "download CSV"));
    const how = o.group === "kind" ? "rows by the document's F1, lowest first" : "click a header to sort";
    bar.append(el("span", {class: "hint"}, `${how}; click a row to open the document`));
    $("overview").replaceChildren(bar, o.group === "kind" ? kindGroups() : documentTable());
  }

  // ---------- reviewer comment (beside gold, never in it) ----------
  function renderComment(doc, bundle) {
    const box = $("comment");
    const comment = bundle.comment;
    box.replaceChildren();
    if (!DATA.api) {
      box.hidden = !comment;
      if (comment) box.append(el("span", {class: "meta"}, `comment by ${comment.reviewer} (${comment.date}): `), el("span", {id: "comment-text"}, comment.text));
      return;
    }
    box.hidden = false;
    const text = el("textarea", {id: "comment-input", placeholder: "reviewer comment on this document (saved beside gold, not in it)", rows: 2});
    text.value = comment ? comment.text : "";
    const status = el("span", {id: "comment-status", class: "meta"}, comment ? `by ${comment.reviewer} on ${comment.date}` : "");
    box.append(text, button("save comment", "save-comment", () => saveComment(doc.doc_id, text.value, status)), status);
  }

  async function saveComment(docId, text, status) {
    const reply = await post("/api/comment/" + encodeURIComponent(docId), {text, reviewer: state.reviewer || ""});
    if (reply.error) {
      status.textContent = `not saved: ${reply.error}`;
      status.className = "meta error";
      return;
    }
    state.bundles[docId].comment = reply.comment;
    const doc = DATA.docs.find((d) => d.doc_id === docId);
    if (doc) doc.comment = reply.comment;
    status.textContent = reply.comment ? `saved: by ${reply.comment.reviewer} on ${reply.comment.date}` : "comment removed";
    status.className = "meta ok";
  }

  async function post(url, data) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-Review-Token": DATA.token},
        body: JSON.stringify(data),
      });
    } catch (err) {
      return {error: err.message};
    }
    const reply = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
    return response.ok ? reply : {error: reply.error || `HTTP ${response.status}`};
  }

  // ---------- keyboard ----------
  function moveDoc(step) {
    if (DATA.mode === "doc") {
      const target = step > 0 ? DATA.nav.next : DATA.nav.prev;
      if (target) location.href = target;
      return;
    }
    if (!state.visible.length) return;
    const pos = state.visible.indexOf(state.current);
    const next = state.visible[pos < 0 ? 0 : Math.min(Math.max(pos + step, 0), state.visible.length - 1)];
    if (next !== state.current) {
      if (DATA.docs[next].href) location.href = DATA.docs[next].href;
      else selectDoc(next);
    }
  }

  async function moveProblem(step) {
    const index = state.problemIndex + step;
    if (index >= 0 && index < state.problems.length) {
      state.problemIndex = index;
      select(state.problems[index], true);
      return;
    }
    if (DATA.mode !== "single" || !["gold", "compare"].includes(state.view)) return;
    const pos = state.visible.indexOf(state.current);
    for (let p = pos + step; p >= 0 && p < state.visible.length; p += step) {
      if (DATA.docs[state.visible[p]].problems > 0) {
        await selectDoc(state.visible[p]);
        if (state.problems.length) {
          state.problemIndex = step > 0 ? 0 : state.problems.length - 1;
          select(state.problems[state.problemIndex], true);
          return;
        }
      }
    }
  }

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target instanceof Element && ev.target.closest("input, textarea, select")) return;
    const actions = {
      j: () => moveDoc(1), ArrowDown: () => moveDoc(1), k: () => moveDoc(-1), ArrowUp: () => moveDoc(-1),
      n: () => moveProblem(1), p: () => moveProblem(-1), Escape: () => select(null),
    };
    if (!actions[ev.key]) return;
    ev.preventDefault();
    actions[ev.key]();
  }

  // ---------- editing (serve mode) ----------
  function workCopy(bundle) {
    const docId = bundle.record.doc_id;
    if (!state.work[docId]) {
      const gold = usable(bundle.gold);
      state.work[docId] = {base: gold ? "gold" : "run", record: clone(gold ? gold.record : bundle.record)};
    }
    return state.work[docId];
  }

  function selectionOffsets() {
    const selection = window.getSelection();
    if (!selection || !selection.rangeCount || selection.isCollapsed) return null;
    const range = selection.getRangeAt(0);
    const start = range.startContainer.nodeType === 1 ? range.startContainer : range.startContainer.parentElement;
    const layer = start && start.closest(".source .layer");
    if (!layer || !layer.contains(range.endContainer)) return null;
    const before = document.createRange();
    before.selectNodeContents(layer);
    before.setEnd(range.startContainer, range.startOffset);
    const offset = before.toString().length;
    return {start: offset, end: offset + range.toString().length};
  }

  function selectedEntity(record) {
    if (!state.selected || state.selected.kind !== "entity") return null;
    for (const c of record.criteria) {
      const e = c.entities.find((x) => x.id === state.selected.id);
      if (e) return {entity: e, criterion: c};
    }
    return null;
  }

  function nextEntityId(record, criterionId) {
    let n = 0;
    for (const c of record.criteria) {
      for (const e of c.entities) {
        const m = e.id.startsWith(criterionId + ".e") ? /^\d+$/.exec(e.id.slice(criterionId.length + 2)) : null;
        if (m) n = Math.max(n, Number(m[0]));
      }
    }
    return `${criterionId}.e${n + 1}`;
  }

  function setStatus(text, error) {
    state.status = {text, error: Boolean(error)};
    const line = document.querySelector("#editor .status");
    if (line) {
      line.textContent = text;
      line.className = "status " + (error ? "error" : "ok");
    }
  }

  function edited(docId, message, ref) {
    state.edits[docId] = (state.edits[docId] || 0) + 1;
    state.status = {text: message, error: false};
    if (ref !== undefined) state.selected = ref;
    renderDoc();
  }

  function addEntity(work, docId, type) {
    const range = state.lastRange;
    if (!range || range.end <= range.start) return setStatus("select the entity's text in the source first", true);
    const record = work.record;
    const inside = record.criteria.filter((c) => c.start <= range.start && range.end <= c.end);
    if (!inside.length) return setStatus("the selection is not inside a criterion", true);
    const criterion = inside.reduce((best, c) => (c.start >= best.start ? c : best));
    const entity = {
      id: nextEntityId(record, criterion.id), type, text: record.source_text.slice(range.start, range.end),
      start: range.start, end: range.end, negated: false, value: null, temporal: null, alignment: "exact",
    };
    criterion.entities.push(entity);
    criterion.entities.sort((a, b) => a.start - b.start || a.end - b.end);
    edited(docId, `added ${entity.id}`, {kind: "entity", id: entity.id});
  }

  function setSpan(found, work, docId) {
    const range = state.lastRange;
    if (!range || range.end <= range.start) return setStatus("select the new span in the source first", true);
    const e = found.entity;
    Object.assign(e, {start: range.start, end: range.end, text: work.record.source_text.slice(range.start, range.end), alignment: "exact"});
    const c = found.criterion;
    const outside = range.start < c.start || range.end > c.end;
    edited(docId, `span of ${e.id} is now ${e.start}–${e.end}` + (outside ? ` (outside criterion ${c.id})` : ""));
  }

  // ---------- value and time-window form ----------
  const FORMS = {
    value: {label: "Value", choice: ["comparator", ["", "<", "<=", ">", ">=", "=", "between"]],
      numbers: [["low", "low"], ["high", "high"]], words: [["unit", "unit"]]},
    temporal: {label: "Time window", choice: ["direction", ["", "before", "after", "during"]],
      numbers: [["min_days", "min days"], ["max_days", "max days"]], words: [["anchor", "anchor"]]},
  };

  // Where `text` sits: the remembered offsets when they still hold it, else its occurrence in the
  // criterion nearest to the entity; null when the criterion does not contain it.
  function locate(source, criterion, entity, text, hint) {
    if (hint && source.slice(hint.start, hint.end) === text) return {start: hint.start, end: hint.end};
    let best = null;
    for (let i = source.indexOf(text, criterion.start); i >= 0 && i + text.length <= criterion.end; i = source.indexOf(text, i + 1)) {
      if (!best || Math.abs(i - entity.start) < Math.abs(best.start - entity.start)) best = {start: i, end: i + text.length};
    }
    return best;
  }

  function attributeForm(name, part) {
    const spec = FORMS[name];
    const field = (key) => `${name}-${key}`;
    const text = el("input", {id: field("text"), class: "wide", placeholder: "text in the source (empty: none)", value: part ? part.text : ""});
    if (part) Object.assign(text.dataset, {start: part.start, end: part.end});
    const fromSelection = button("use selection", field("use-selection"), () => {
      const range = state.lastRange;
      if (!range || range.end <= range.start) return setStatus("select the text in the source first", true);
      const record = workCopy(state.bundles[DATA.docs[state.current].doc_id]).record;
      text.value = record.source_text.slice(range.start, range.end);
      Object.assign(text.dataset, {start: range.start, end: range.end});
    });
    const [choiceKey, options] = spec.choice;
    const choice = el("select", {id: field(choiceKey)}, ...options.map((o) => el("option", {value: o}, o || "—")));
    choice.value = part && part[choiceKey] ? part[choiceKey] : "";
    const input = ([key, label], type) => el("label", null, label + " ",
      el("input", {id: field(key), type, step: type === "number" ? "any" : null, value: part && part[key] != null ? part[key] : ""}));
    return el("fieldset", {id: `${name}-form`}, el("legend", null, spec.label),
      el("div", {class: "row"}, text, fromSelection),
      el("div", {class: "row"}, el("label", null, choiceKey + " ", choice),
        ...spec.numbers.map((n) => input(n, "number")), ...spec.words.map((w) => input(w, "text"))));
  }

  // The value or time window the form describes, or {error} naming what is wrong.
  function readAttribute(name, source, criterion, entity) {
    const spec = FORMS[name];
    const get = (key) => $(`${name}-${key}`).value.trim();
    const textInput = $(`${name}-text`);
    const text = textInput.value;
    if (!text.trim()) return {part: null};
    const hint = textInput.dataset.start !== undefined ? {start: Number(textInput.dataset.start), end: Number(textInput.dataset.end)} : null;
    const where = locate(source, criterion, entity, text, hint);
    if (!where) return {error: `${spec.label.toLowerCase()}: “${text}” is not in criterion ${criterion.id}`};
    const part = {text, start: where.start, end: where.end, [spec.choice[0]]: get(spec.choice[0]) || null};
    for (const [key, label] of spec.numbers) {
      const raw = get(key);
      if (raw !== "" && !Number.isFinite(Number(raw))) return {error: `${spec.label.toLowerCase()}: ${label} “${raw}” is not a number`};
      part[key] = raw === "" ? null : Number(raw);
    }
    for (const [key] of spec.words) part[key] = get(key) || null;
    return {part};
  }

  function applyFields(found, work, docId) {
    const read = {};
    for (const name of Object.keys(FORMS)) {
      read[name] = readAttribute(name, work.record.source_text, found.criterion, found.entity);
      if (read[name].error) return setStatus(read[name].error, true);
    }
    found.entity.value = read.value.part;
    found.entity.temporal = read.temporal.part;
    edited(docId, `value and time window of ${found.entity.id} updated`);
  }

  // The server keeps the gold's earlier annotation and appends a line with this reviewer, the date and these notes.
  async function saveGold(work, docId) {
    const record = clone(work.record);
    const accepted = Object.keys(state.accepted[docId] || {}).length;
    record.annotation = {
      method: "trialstruct review --serve",
      checked_by: state.reviewer || "reviewer",
      date: new Date().toISOString().slice(0, 10),
      notes: `${accepted} accepted, ${state.edits[docId] || 0} edits (from the ${work.base} record)`,
    };
    const reply = await post("/api/gold/" + encodeURIComponent(docId), record);
    if (reply.error) return setStatus(`not saved: ${reply.error}`, true);
    state.bundles[docId] = reply.bundle;
    DATA.problems = DATA.problems.filter((p) => p.doc_id !== docId).concat(
      (reply.bundle.gold.problems || []).map((p) => Object.assign({doc_id: docId}, p)));
    state.work[docId] = {base: "gold", record: clone(reply.bundle.gold.record)};
    state.edits[docId] = 0;
    DATA.docs[state.current] = reply.summary;
    DATA.has_gold = true;
    state.status = {text: `saved ${reply.path}` + (reply.previous ? `; previous version kept as ${reply.previous}` : ""), error: false};
    renderViews();
    renderList();
    renderDoc();
  }

  function button(label, id, action, disabled) {
    const b = el("button", {type: "button", id, disabled: Boolean(disabled)}, label);
    b.addEventListener("click", action);
    return b;
  }

  function typeSelect(id, value) {
    const s = el("select", {id}, ...TYPES.map((t) => el("option", {value: t}, t)));
    s.value = value;
    return s;
  }

  function renderEditor(bundle) {
    const box = $("editor");
    box.hidden = state.view !== "edit";
    if (box.hidden) return;
    const docId = bundle.record.doc_id;
    const work = workCopy(bundle);
    const found = selectedEntity(work.record);
    const gold = usable(bundle.gold);
    const newType = typeSelect("new-type", state.newType || "Condition");
    newType.addEventListener("change", () => (state.newType = newType.value));
    const rows = [
      el("div", {class: "row"}, `Editing a copy of the ${work.base} record.`,
        button("start from run", "base-run", () => { state.work[docId] = {base: "run", record: clone(bundle.record)}; edited(docId, "started from the run record", null); }),
        gold ? button("start from gold", "base-gold", () => { state.work[docId] = {base: "gold", record: clone(gold.record)}; edited(docId, "started from the gold record", null); }) : null),
      el("div", {class: "row"}, "Select text, then:", newType, button("add entity", "add-entity", () => addEntity(work, docId, newType.value))),
    ];
    if (found) {
      const e = found.entity;
      const retype = typeSelect("retype", e.type);
      retype.addEventListener("change", () => { e.type = retype.value; edited(docId, `${e.id} is now ${e.type}`); });
      const negated = el("input", {type: "checkbox", id: "negated", checked: e.negated});
      negated.addEventListener("change", () => { e.negated = negated.checked; edited(docId, `${e.id} negated: ${e.negated}`); });
      rows.push(
        el("div", {class: "row"}, el("strong", null, e.id), retype, el("label", null, negated, " negated")),
        el("div", {class: "row"},
          button("accept", "accept", () => {
            (state.accepted[docId] = state.accepted[docId] || {})[e.id] = true;
            state.status = {text: `${e.id} accepted as correct`, error: false};
            renderDoc();
          }),
          button("set span from selection", "set-span", () => setSpan(found, work, docId)),
          button("delete", "delete", () => {
            found.criterion.entities.splice(found.criterion.entities.indexOf(e), 1);
            edited(docId, `deleted ${e.id}`, null);
          })),
        attributeForm("value", e.value),
        attributeForm("temporal", e.temporal),
        el("div", {class: "row"}, button("apply value and time window", "apply-fields", () => applyFields(found, work, docId))));
    }
    const reviewer = el("input", {id: "reviewer", placeholder: "your name", value: state.reviewer});
    reviewer.addEventListener("input", () => (state.reviewer = reviewer.value));
    rows.push(el("div", {class: "row"}, reviewer, button("save as gold", "save-gold", () => saveGold(work, docId))));
    rows.push(el("div", {class: "status " + (state.status.error ? "error" : "ok"), id: "edit-status"}, state.status.text));
    box.replaceChildren(...rows);
  }

  // ---------- start ----------
  function init() {
    $("page-title").textContent = DATA.title;
    for (const type of TYPES) {
      $("f-type").append(el("option", {value: type}, type));
      const box = el("input", {type: "checkbox", checked: true, "data-type-toggle": type});
      box.addEventListener("change", () => document.body.classList.toggle("hide-" + type, !box.checked));
      $("legend").append(el("label", {class: "t-" + type}, box, el("span", {class: "swatch"}), type));
    }
    for (const id of ["f-text", "f-kind", "f-type", "f-problems"]) {
      $(id).addEventListener(id === "f-text" ? "input" : "change", () => {
        renderList();
        if (id === "f-kind" && state.current >= 0) renderDoc();
      });
    }
    const source = $("source");
    source.addEventListener("click", (ev) => {
      if (!window.getSelection().isCollapsed) return;
      const node = ev.target.closest("[data-entity-id],[data-gold-id],[data-other-id]");
      if (node) return select(refOf(node), false);
      const crit = ev.target.closest("[data-criterion-id]");
      if (crit) select({kind: "criterion", id: crit.dataset.criterionId}, false);
    });
    source.addEventListener("mousemove", showTooltip);
    source.addEventListener("mouseleave", () => ($("tooltip").hidden = true));
    $("criteria").addEventListener("click", (ev) => {
      const chip = ev.target.closest("[data-entity-ref]");
      if (chip) return select({kind: "entity", id: chip.dataset.entityRef}, true);
      const li = ev.target.closest("[data-criterion-ref]");
      if (li) select({kind: "criterion", id: li.dataset.criterionRef}, true);
    });
    document.addEventListener("selectionchange", () => {
      const range = selectionOffsets();
      if (range) state.lastRange = range;
    });
    document.addEventListener("keydown", onKey);
    renderViews();
    renderList();
    if (DATA.mode === "index") {
      $("source").replaceChildren(el("p", {class: "empty"}, "Pick a document: each one opens on its own page."));
      return;
    }
    if (state.visible.length) selectDoc(state.visible[0]);
    else renderDoc();
  }

  init();
})();
