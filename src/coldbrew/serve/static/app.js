// The try-it page: plain JavaScript over the JSON API, no build step.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { liked: [], titles: {}, timer: null, seq: 0 };
// Category names that mean the same thing across languages: one option filters on all of them.
const SAME_CATEGORY = [
  ["books", "图书", "书籍"], ["clothing", "服装", "衣服"], ["electronics", "数码", "电子产品"],
  ["kitchen", "厨具", "厨房"], ["outdoor", "户外"], ["sports", "运动"], ["shoes", "鞋靴", "鞋"],
  ["accessories", "配饰"], ["toys", "玩具"], ["beauty", "美妆", "个护"], ["food", "食品"],
];
const PLACEHOLDER = "Type something, give an attribute or a context, or like an item.";
const MAX_ATTRIBUTE_BOXES = 6;
const CONTEXT_BOXES = { text: "context-text", time: "context-time", location: "context-location" };

const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
if (fromHash) { sessionStorage.setItem("coldbrew-key", fromHash); history.replaceState(null, "", location.pathname); }
$("key").value = sessionStorage.getItem("coldbrew-key") || "";
$("key").addEventListener("change", () => sessionStorage.setItem("coldbrew-key", $("key").value));

function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }

function context() {
  // the context boxes that hold something, as the request's context (a time as typed: local)
  const out = {};
  for (const [key, id] of Object.entries(CONTEXT_BOXES)) if ($(id).value.trim()) out[key] = $(id).value.trim();
  return out;
}

function query() {
  const attributes = {};
  for (const box of document.querySelectorAll("#attributes input[data-attribute]")) {
    if (box.value.trim()) attributes[box.dataset.attribute] = box.value.trim();
  }
  const body = { k: 8, attributes, liked: state.liked, explain: true, relevance: true };
  const text = $("query").value.trim();
  if (text) body.text = text;
  if (Object.keys(context()).length) body.context = context();
  if ($("category").value) body.filters = { category: JSON.parse($("category").value) };
  return body;
}

function showPlaceholder() {
  state.seq++;  // an answer still on its way is for inputs that are gone
  $("took").textContent = "";
  $("results").replaceChildren(el("li", "muted", PLACEHOLDER));
}

async function refresh() {
  const body = query();
  if (!body.text && !body.context && !Object.keys(body.attributes).length && !body.liked.length) { showPlaceholder(); return; }
  const seq = ++state.seq, started = performance.now();
  const response = await fetch("/recommend", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const data = await response.json();
  if (seq !== state.seq) return;  // a newer request is on its way
  $("took").textContent = `(${Math.round(performance.now() - started)} ms)`;
  const list = $("results");
  list.replaceChildren();
  if (!response.ok) { list.append(el("li", "muted", data.detail)); return; }
  if (!data.items.length) list.append(el("li", "muted", "Nothing matches these filters."));
  for (const warning of data.warnings || []) list.append(el("li", "muted", `⚠ ${warning}`));
  for (const rec of data.items) {
    state.titles[rec.item_id] = rec.title;
    const li = el("li", "rec");
    li.dataset.id = rec.item_id;
    const score = el("span", "score", rec.score.toFixed(3));
    if (rec.relevance !== null && rec.relevance !== undefined) {
      score.append(el("span", "relevance", ` · better than ${Math.round(rec.relevance)}%`));
      score.title = "cosine · the share of the catalogue this item outscores for you";
    }
    li.append(el("span", "title", rec.title), score);
    const like = el("button", "like", "♥ like");
    like.type = "button";
    like.addEventListener("click", () => { state.liked.push(rec.item_id); showLiked(); refresh(); });
    li.append(like);
    if (rec.description) li.append(el("div", "muted", rec.description));
    if (rec.explanation) li.append(el("div", "why", rec.explanation.text));
    list.append(li);
  }
}

function showLiked() {
  const box = $("liked");
  box.replaceChildren();
  if (!state.liked.length) { box.append(el("span", "muted", "nothing yet — press ♥ on an item")); return; }
  for (const id of state.liked) box.append(el("span", "chip", state.titles[id] || id));
}

function soon() { clearTimeout(state.timer); state.timer = setTimeout(refresh, 250); }

async function addItem() {
  const item = { id: $("new-id").value.trim(), title: $("new-title").value.trim(), description: $("new-description").value.trim(), attributes: {} };
  if ($("new-category").value.trim()) item.attributes.category = $("new-category").value.trim();
  const response = await fetch("/items", { method: "POST", headers: { "content-type": "application/json", "x-api-key": $("key").value }, body: JSON.stringify(item) });
  const data = await response.json();
  $("status").textContent = response.ok ? `Saved “${item.title}”.` : `Not saved: ${data.detail}`;
  if (!response.ok) return;
  for (const id of ["new-id", "new-title", "new-category", "new-description"]) $(id).value = "";
  await loadMeta();
  refresh();
}

function categoryGroups(values) {
  // [label, values] per option: values of one SAME_CATEGORY group share an option
  const groups = new Map();
  for (const value of values) {
    const group = SAME_CATEGORY.find((names) => names.includes(value.toLowerCase()));
    const key = group ? group[0] : value;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(value);
  }
  return [...groups.values()].map((vals) => [vals.join(" · "), vals]);
}

function fillSelect(select, options, first) {
  const current = select.value;
  select.replaceChildren(el("option", "", first));
  select.firstChild.value = "";
  for (const [label, value] of options) { const o = el("option", "", label); o.value = value; select.append(o); }
  select.value = [...select.options].some((o) => o.value === current) ? current : "";
}

async function loadMeta() {
  const response = await fetch("/meta");
  if (!response.ok) return;
  const meta = await response.json();
  const categories = categoryGroups(meta.item_attributes.category || []);
  fillSelect($("category"), categories.map(([label, vals]) => [label, JSON.stringify(vals)]), "any category");
  showAttributeBoxes(meta.user_attributes || []);
}

function showAttributeBoxes(names) {
  // one free-text box per attribute name, the most common first; typed values are kept
  const row = $("attributes"), shown = new Set();
  for (const box of row.querySelectorAll("input[data-attribute]")) shown.add(box.dataset.attribute);
  for (const name of names.slice(0, MAX_ATTRIBUTE_BOXES)) {
    if (shown.has(name)) continue;
    const box = el("input");
    box.id = `attr-${name}`;
    box.dataset.attribute = name;
    box.placeholder = name;
    box.addEventListener("input", soon);
    const label = el("label", "", `${name} `);
    label.append(box);
    row.insertBefore(label, $("category").parentElement);
  }
}

$("query").addEventListener("input", soon);
for (const id of Object.values(CONTEXT_BOXES)) $(id).addEventListener("input", soon);
$("category").addEventListener("change", refresh);
$("clear-liked").addEventListener("click", () => { state.liked = []; showLiked(); refresh(); });
$("add-item").addEventListener("click", addItem);
loadMeta();
