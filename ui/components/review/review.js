// The review page's judging surface: one disputed case, settled from the keyboard or the mouse.
//
// Streamlit re-invokes this default export whenever the `data` passed from Python changes; the
// DOM persists between runs. Local state (decisions, chosen text, focus, overlays) lives on the
// root element and is reset only when the case changes, so a rerun that lands between two fast
// keystrokes never wipes what the reviewer did. One trigger per intention goes back to Python:
// `save` (the decisions), `nav` ("prev" / "next") and `zoom` (an item id, when the image has no URL).
//
// Every text from the data is set with textContent: benchmark text is never markup.

const KEYMAP = [
  ["← → ↑ ↓  or  h l k j", "move the focus ring across the items in dispute"],
  ["y", "the focused item is relevant (focus moves on)"],
  ["n", "the focused item is not relevant (focus moves on)"],
  ["o", "keep the original text"],
  ["1 – 9", "pick a proposed rewrite"],
  ["e", "edit the text (Enter or Esc when done)"],
  ["x", "reject the query (then pick a reason: 1 – 5)"],
  ["Enter", "save and go to the next unsettled case"],
  ["p / s", "previous case / next case without saving"],
  ["z", "zoom the focused item: full-size image, title and text"],
  ["?", "show or hide this key map"],
  ["Esc", "close what is open"],
];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function key(label) {
  return el("kbd", { className: "rv-key", text: label, "aria-hidden": "true" });
}

// ------------------------------------------------------------------------------------------ state

function initialChoice(data) {
  const d = data.decided;
  if (!d || !d.kind) return null;
  return { kind: d.kind, revisionId: d.revision_id ?? null, reason: d.reason ?? null };
}

function reset(st, data) {
  st.caseId = data.case_id;
  st.focus = 0;
  st.decisions = {};
  for (const item of data.items) if (item.decision) st.decisions[item.item_id] = item.decision;
  st.choice = initialChoice(data);
  st.editText = data.original;
  st.note = "";
  st.overlay = null;
  st.zoomed = null;
  st.pending = false;
  st.localMessage = null;
}

function undecided(st) {
  return st.data.items.filter((item) => !st.decisions[item.item_id]);
}

function choiceText(st) {
  const c = st.choice;
  if (!c) return null;
  if (c.kind === "original") return st.data.original;
  if (c.kind === "rewrite") {
    const p = st.data.proposals.find((x) => x.revision_id === c.revisionId);
    return p ? p.text : null;
  }
  if (c.kind === "edit") return st.editText;
  return null;
}

// ----------------------------------------------------------------------------------------- render

function build(root, st) {
  const data = st.data;
  root.replaceChildren();
  root.dataset.caseId = String(data.case_id);

  const nav = el(
    "div",
    { className: "rv-nav" },
    el("button", { type: "button", "data-action": "prev", onclick: () => act(root, st, "prev") }, key("p"), " Previous"),
    el("button", { type: "button", "data-action": "next", onclick: () => act(root, st, "next") }, key("s"), " Next without saving"),
    el("button", { type: "button", "data-action": "keys", "aria-label": "Key map", onclick: () => toggle(root, st, "keys") }, key("?"), " Keys"),
  );
  const meta = [data.dataset, data.category || "no category", data.language || "language not given"].join(" · ");
  root.append(
    el(
      "header",
      { className: "rv-head" },
      el(
        "div",
        {},
        el("div", { className: "rv-pos", text: data.position }),
        el("div", { className: "rv-id" }, "Query ", el("strong", { "data-query-id": data.ext_id, text: data.ext_id }), " · " + meta),
        el("div", { className: "rv-why", text: "Why: " + data.kinds.join(", ") }),
      ),
      nav,
    ),
    el("div", { className: "rv-msg", role: "status", "aria-live": "polite" }),
  );

  // The query's text: the original, every proposal, an edit, or a rejection, side by side.
  const options = el("div", { className: "rv-options", role: "group", "aria-label": "The query's final text" });
  options.append(
    el(
      "button",
      { type: "button", className: "rv-opt", "data-choice": "original", onclick: () => choose(root, st, { kind: "original" }) },
      el("span", { className: "rv-opt-head" }, key("o"), " Keep the original"),
      el("span", { className: "rv-opt-text", text: data.original }),
    ),
  );
  data.proposals.forEach((p, n) => {
    options.append(
      el(
        "button",
        {
          type: "button",
          className: "rv-opt",
          "data-choice": "rewrite",
          "data-revision-id": p.revision_id,
          onclick: () => choose(root, st, { kind: "rewrite", revisionId: p.revision_id }),
        },
        el("span", { className: "rv-opt-head" }, n < 9 ? key(String(n + 1)) : null, " Proposed by " + p.by),
        el("span", { className: "rv-opt-text", text: p.text }),
      ),
    );
  });
  const editor = el("textarea", {
    className: "rv-editor",
    rows: 2,
    maxlength: 5000,
    "aria-label": "The query's new text",
    oninput: (e) => {
      st.editText = e.target.value;
    },
  });
  editor.value = st.editText;
  options.append(
    el(
      "div",
      { className: "rv-opt rv-opt-edit", "data-choice": "edit" },
      el("button", { type: "button", className: "rv-opt-head", "data-action": "edit", onclick: () => startEdit(root, st) }, key("e"), " Edit the text"),
      editor,
    ),
    el(
      "div",
      { className: "rv-opt rv-opt-reject", "data-choice": "reject" },
      el("button", { type: "button", className: "rv-opt-head", "data-action": "reject", onclick: () => toggle(root, st, "reject") }, key("x"), " Reject the query"),
      el("span", { className: "rv-opt-text rv-reason" }),
    ),
  );
  const verdicts = el("ul", { className: "rv-verdicts", "aria-label": "What each annotator decided" });
  for (const v of data.verdicts) {
    const line = v.who + ": " + v.verdict + (v.reason ? " · reason: " + v.reason : "") + (v.note ? " · note: " + v.note : "");
    verdicts.append(el("li", { text: line }));
  }
  root.append(el("section", { className: "rv-text" }, el("h3", { text: "The query" }), options, verdicts));

  // The items in dispute.
  const grid = el("div", { className: "rv-grid", role: "list" });
  data.items.forEach((item, n) => grid.append(card(root, st, item, n)));
  root.append(
    el(
      "section",
      { className: "rv-items" },
      el("h3", { text: `Items in dispute (${data.items.length})` }),
      el("p", { className: "rv-count", "data-role": "count", text: data.counts }),
      data.items.length ? grid : el("p", { className: "rv-empty", text: "No item is in dispute: decide the query." }),
    ),
  );

  const note = el("input", {
    className: "rv-note",
    type: "text",
    maxlength: 2000,
    placeholder: "Note for the record (optional)",
    "aria-label": "Note",
    oninput: (e) => {
      st.note = e.target.value;
    },
  });
  note.value = st.note;
  root.append(
    el(
      "footer",
      { className: "rv-foot" },
      note,
      el("span", { className: "rv-left", "data-role": "left" }),
      el("button", { type: "button", className: "rv-save", "data-action": "save", onclick: () => save(root, st) }, key("Enter"), " Save and next"),
    ),
  );
  root.append(overlays(root, st));
  refresh(root, st);
}

function card(root, st, item, n) {
  const thumb = item.thumb_url
    ? el("img", { src: item.thumb_url, alt: item.title || item.ext_id, loading: "lazy" })
    : el("span", { className: "rv-noimg", text: item.has_image ? "image: press z" : "no image" });
  const votes = el("ul", { className: "rv-votes" });
  for (const v of item.votes) votes.append(el("li", { text: v.who + ": " + v.label + (v.note ? " (" + v.note + ")" : "") }));
  const decide = el("div", { className: "rv-decide", role: "group", "aria-label": "Decision" });
  for (const [label, word, k] of [
    ["relevant", "Relevant", "y"],
    ["not_relevant", "Not relevant", "n"],
  ]) {
    decide.append(
      el(
        "button",
        { type: "button", "data-label": label, onclick: () => decideItem(root, st, n, label, false) },
        key(k),
        " " + word,
      ),
    );
  }
  return el(
    "article",
    {
      className: "rv-card",
      role: "listitem",
      "data-item-id": item.item_id,
      "data-ext-id": item.ext_id,
      onclick: () => {
        st.focus = n;
        refresh(root, st);
      },
    },
    el("button", { type: "button", className: "rv-thumb", "data-action": "zoom", "aria-label": "Zoom " + item.ext_id, onclick: () => zoom(root, st, n) }, thumb),
    el("div", { className: "rv-title", text: item.title || item.ext_id }),
    el("div", { className: "rv-body", text: item.text }),
    el("div", { className: "rv-role", text: item.role }),
    votes,
    decide,
  );
}

function overlays(root, st) {
  const keys = el("table", { className: "rv-keymap" });
  for (const [k, what] of KEYMAP) keys.append(el("tr", {}, el("th", { text: k }), el("td", { text: what })));
  const reasons = el("div", { className: "rv-reasons" });
  st.data.reasons.forEach((r, n) => {
    reasons.append(
      el(
        "button",
        { type: "button", "data-reason": r.value, onclick: () => reject(root, st, r.value) },
        key(String(n + 1)),
        " " + r.label,
      ),
    );
  });
  const close = (what) =>
    el("button", { type: "button", className: "rv-close", "aria-label": "Close " + what, onclick: () => toggle(root, st, null) }, key("Esc"), " Close");
  return el(
    "div",
    { className: "rv-overlays" },
    el("div", { className: "rv-overlay", "data-overlay": "keys", role: "dialog", "aria-label": "Key map", hidden: true }, el("h3", { text: "Keys" }), keys, close("key map")),
    el(
      "div",
      { className: "rv-overlay", "data-overlay": "reject", role: "dialog", "aria-label": "Why reject the query", hidden: true },
      el("h3", { text: "Why reject the query?" }),
      reasons,
      close("reasons"),
    ),
    el(
      "div",
      { className: "rv-overlay rv-zoom", "data-overlay": "zoom", role: "dialog", "aria-label": "Zoomed item", hidden: true },
      el("div", { className: "rv-zoom-img" }),
      el("h3", { className: "rv-zoom-title" }),
      el("p", { className: "rv-zoom-text" }),
      close("zoom"),
    ),
  );
}

// Update every state-dependent attribute without rebuilding (cheap: runs on each keystroke).
function refresh(root, st) {
  const data = st.data;
  root.dataset.pending = String(st.pending);
  root.dataset.overlay = st.overlay || "";
  root.dataset.rejecting = String(!!st.choice && st.choice.kind === "reject");
  const cards = root.querySelectorAll(".rv-card");
  cards.forEach((node, n) => {
    const item = data.items[n];
    const decision = st.decisions[item.item_id] || null;
    node.setAttribute("aria-current", n === st.focus ? "true" : "false");
    node.dataset.decision = decision || "";
    node.querySelectorAll("[data-label]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.label === decision)));
  });
  const c = st.choice;
  root.querySelectorAll(".rv-opt").forEach((node) => {
    const kind = node.dataset.choice;
    let on = !!c && c.kind === kind;
    if (on && kind === "rewrite") on = Number(node.dataset.revisionId) === c.revisionId;
    node.setAttribute("aria-pressed", String(on));
    const button = node.matches("button") ? node : node.querySelector("button");
    if (button && button !== node) button.setAttribute("aria-pressed", String(on));
  });
  root.querySelector(".rv-opt-edit").dataset.open = String(!!c && c.kind === "edit");
  const reasonWord = c && c.kind === "reject" ? (data.reasons.find((r) => r.value === c.reason) || {}).label : "";
  root.querySelector(".rv-reason").textContent = reasonWord ? "Reason: " + reasonWord : "";
  const left = undecided(st).length;
  const rejecting = !!c && c.kind === "reject";
  root.querySelector("[data-role=left]").textContent = rejecting
    ? "Rejecting: the items need no decision."
    : left
      ? `${left} item${left === 1 ? "" : "s"} left to decide`
      : data.items.length
        ? "Every item decided."
        : "";
  const msg = st.localMessage || data.message;
  const box = root.querySelector(".rv-msg");
  box.textContent = st.pending ? "Saving…" : msg ? msg.text : "";
  box.dataset.kind = st.pending ? "info" : msg ? msg.kind : "";
  root.querySelectorAll(".rv-overlay").forEach((node) => {
    node.hidden = node.dataset.overlay !== st.overlay;
  });
}

// ---------------------------------------------------------------------------------------- actions

function say(root, st, kind, text) {
  st.localMessage = { kind, text };
  refresh(root, st);
}

function move(root, st, delta) {
  const n = st.data.items.length;
  if (!n) return;
  st.focus = Math.max(0, Math.min(n - 1, st.focus + delta));
  refresh(root, st);
  const node = root.querySelectorAll(".rv-card")[st.focus];
  if (node) node.scrollIntoView({ block: "nearest", inline: "nearest" });
}

function columns(root) {
  const grid = root.querySelector(".rv-grid");
  if (!grid) return 1;
  return Math.max(1, getComputedStyle(grid).gridTemplateColumns.split(" ").filter(Boolean).length);
}

function decideItem(root, st, n, label, advance) {
  const item = st.data.items[n];
  if (!item || st.pending) return;
  st.decisions[item.item_id] = label;
  st.localMessage = null;
  st.focus = n;
  if (advance) {
    const items = st.data.items;
    const next = items.findIndex((x, i) => i > n && !st.decisions[x.item_id]);
    const first = items.findIndex((x) => !st.decisions[x.item_id]);
    st.focus = next >= 0 ? next : first >= 0 ? first : Math.min(n + 1, items.length - 1);
  }
  move(root, st, 0);
}

function choose(root, st, choice) {
  if (st.pending) return;
  st.choice = { kind: choice.kind, revisionId: choice.revisionId ?? null, reason: null };
  st.localMessage = null;
  refresh(root, st);
}

function startEdit(root, st) {
  if (st.pending) return;
  const current = choiceText(st);
  if (!st.choice || st.choice.kind !== "edit") {
    st.editText = current ?? st.data.original;
    root.querySelector(".rv-editor").value = st.editText;
  }
  choose(root, st, { kind: "edit" });
  const editor = root.querySelector(".rv-editor");
  editor.focus();
  editor.setSelectionRange(editor.value.length, editor.value.length);
}

function reject(root, st, reason) {
  st.choice = { kind: "reject", revisionId: null, reason };
  st.overlay = null;
  st.localMessage = null;
  refresh(root, st);
}

function toggle(root, st, overlay) {
  st.overlay = st.overlay === overlay ? null : overlay;
  refresh(root, st);
}

function zoom(root, st, n) {
  const item = st.data.items[n];
  if (!item) return;
  st.focus = n;
  if (!item.full_url && item.has_image) {
    // No URL for the original here: Python shows it (st.image in a dialog).
    refresh(root, st);
    st.send("zoom", item.item_id);
    return;
  }
  const box = root.querySelector(".rv-zoom-img");
  box.replaceChildren(item.full_url ? el("img", { src: item.full_url, alt: item.title || item.ext_id }) : el("span", { text: "no image" }));
  root.querySelector(".rv-zoom-title").textContent = item.title || item.ext_id;
  root.querySelector(".rv-zoom-text").textContent = item.text;
  st.overlay = "zoom";
  refresh(root, st);
}

const NO_ANSWER_MS = 20000;

// Wait for the server's answer (new data); if none comes, say so and let the reviewer try again.
function send(root, st, name, value) {
  st.pending = true;
  st.localMessage = null;
  refresh(root, st);
  const asked = st.nonce;
  st.send(name, value);
  setTimeout(() => {
    if (st.pending && st.nonce === asked && root.isConnected) {
      st.pending = false;
      say(root, st, "error", "No answer from the server yet: nothing may have been saved. Try again.");
    }
  }, NO_ANSWER_MS);
}

function act(root, st, where) {
  if (st.pending) return;
  send(root, st, "nav", where);
}

function save(root, st) {
  if (st.pending) return;
  const c = st.choice;
  if (!c) return say(root, st, "error", "Choose the query's text (o, 1–9 or e) or reject it (x), then press Enter.");
  if (c.kind === "reject" && !c.reason) return toggle(root, st, "reject");
  const left = undecided(st);
  if (c.kind !== "reject" && left.length) {
    st.focus = st.data.items.indexOf(left[0]);
    move(root, st, 0);
    return say(root, st, "error", `Decide every item in dispute (${left.length} left), or reject the query.`);
  }
  let verdict = c.kind === "reject" ? "reject" : c.kind === "original" ? "accept" : "rewrite";
  let text = null;
  if (c.kind === "edit") {
    text = st.editText.trim();
    if (!text) return say(root, st, "error", "The edited text is empty: write the query, or keep the original (o).");
    if (text === st.data.original.trim()) verdict = "accept";
  }
  const items = {};
  if (c.kind !== "reject") for (const [id, label] of Object.entries(st.decisions)) items[id] = label;
  send(root, st, "save", {
    case_id: st.caseId,
    items,
    verdict,
    revision_id: c.kind === "rewrite" ? c.revisionId : null,
    rewrite_text: verdict === "rewrite" ? text : null,
    reason: c.kind === "reject" ? c.reason : null,
    note: st.note,
  });
}

// ------------------------------------------------------------------------------------------- keys

const TYPING = "input, textarea, select, [contenteditable=''], [contenteditable='true'], [role='combobox']";

function onKey(event, root, st) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
  const target = event.composedPath()[0];
  const inside = target instanceof Node && root.contains(target);
  const k = event.key;
  if (target instanceof Element && target.matches(TYPING)) {
    // Typing in the editor or the note: Enter and Esc finish it; everything else is text.
    if (inside && (k === "Escape" || (k === "Enter" && !event.shiftKey))) {
      event.preventDefault();
      target.blur();
    }
    return;
  }
  if (document.querySelector("[role='dialog']")) return; // a Streamlit dialog (the zoom) is open
  if (!inside && target instanceof Element && target.closest("button, a, [role='button']") && (k === "Enter" || k === " ")) return;
  if (!root.isConnected) return;

  const handled = handle(k, root, st);
  if (handled) {
    event.preventDefault();
    event.stopPropagation();
  }
}

function handle(k, root, st) {
  if (k === "Escape") {
    if (!st.overlay) return false;
    toggle(root, st, null);
    return true;
  }
  if (k === "?") return toggle(root, st, "keys"), true;
  if (st.overlay === "reject") {
    const n = Number(k);
    if (n >= 1 && n <= st.data.reasons.length) return reject(root, st, st.data.reasons[n - 1].value), true;
    return false;
  }
  if (st.overlay) return false;
  const cols = columns(root);
  switch (k) {
    case "ArrowLeft":
    case "h":
      return move(root, st, -1), true;
    case "ArrowRight":
    case "l":
      return move(root, st, 1), true;
    case "ArrowUp":
    case "k":
      return move(root, st, -cols), true;
    case "ArrowDown":
    case "j":
      return move(root, st, cols), true;
    case "y":
      return decideItem(root, st, st.focus, "relevant", true), true;
    case "n":
      return decideItem(root, st, st.focus, "not_relevant", true), true;
    case "o":
      return choose(root, st, { kind: "original" }), true;
    case "e":
      return startEdit(root, st), true;
    case "x":
      return toggle(root, st, "reject"), true;
    case "z":
      return zoom(root, st, st.focus), true;
    case "Enter":
      return save(root, st), true;
    case "p":
      return act(root, st, "prev"), true;
    case "s":
      return act(root, st, "next"), true;
    default: {
      const n = Number(k);
      if (Number.isInteger(n) && n >= 1 && n <= Math.min(9, st.data.proposals.length)) {
        return choose(root, st, { kind: "rewrite", revisionId: st.data.proposals[n - 1].revision_id }), true;
      }
      return false;
    }
  }
}

// ------------------------------------------------------------------------------------------ entry

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let root = parentElement.querySelector(".rv");
  if (!root) {
    root = el("div", { className: "rv" });
    parentElement.append(root);
    // A failed image (401 before the session cookie lands, a busy server) is asked for again.
    root.addEventListener("error", (e) => {
      const img = e.target;
      const n = Number(img.dataset?.retry || 0);
      if (img.tagName !== "IMG" || n >= 5) return;
      img.dataset.retry = String(n + 1);
      setTimeout(() => {
        const url = new URL(img.src, location.href);
        url.searchParams.set("r", String(n + 1));
        img.src = url.href;
      }, 400 * (n + 1));
    }, true);
  }
  const st = root.__review || (root.__review = { caseId: null, nonce: null });
  st.data = data;
  st.send = setTriggerValue;
  if (st.caseId !== data.case_id) reset(st, data);
  else if (st.nonce !== data.nonce) {
    st.pending = false; // the server answered (an error, or the same case again)
    st.localMessage = null;
  }
  st.nonce = data.nonce;
  const active = document.activeElement;
  const editing = active && active.shadowRoot === parentElement && parentElement.activeElement;
  build(root, st);
  if (editing && editing.classList && editing.classList.contains("rv-editor")) root.querySelector(".rv-editor").focus();

  if (root.__onKey) document.removeEventListener("keydown", root.__onKey);
  const listener = (event) => onKey(event, root, st);
  root.__onKey = listener;
  document.addEventListener("keydown", listener);
  return () => {
    document.removeEventListener("keydown", listener);
    if (root.__onKey === listener) root.__onKey = null;
  };
}
