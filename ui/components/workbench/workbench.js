// The annotator's workbench: one query, judged from the keyboard (mouse too), all in the browser.
//
// Python sends the query on screen as `data` (ui/components/workbench/view.py) and is asked only to
// save a submit, keep a draft, run a search, open another query or list the history (trigger
// values). The browser holds the query's work: every mark is shown at once (no server round trip),
// kept in localStorage at once and as a server draft about a second after the last change, so a
// reload, a dropped connection or a server restart loses nothing. Local state is reset only when
// Python sends a different query (`data.v` changes), never by a rerun a keystroke caused.

const KEYS = [
  ["← → ↑ ↓  or  h j k l", "move between cards"],
  ["Tab / Shift+Tab", "next / previous section (positives, candidates, search results)"],
  ["1 … 9, 0", "jump to card 1 … 10 of the section"],
  ["y  /  n  /  u", "relevant / not relevant / unsure (then the next positive)"],
  ["a", "every positive not judged yet is relevant"],
  ["Space", "toggle “relevant” on a candidate or search result"],
  ["c", "give the card's copies in the pool the same label (again: not)"],
  ["z", "zoom: the full image with its title and text"],
  ["m", "more like this (search the pool)"],
  ["/", "search the pool"],
  ["r", "rewrite the query (again: back to accept)"],
  ["x", "reject the query; 1 … 5 pick the reason"],
  ["Enter", "submit and open the next query (Ctrl+Enter in a text box)"],
  ["Backspace  or  Alt+Z", "undo: reopen the last submitted query"],
  ["p  /  s", "previous query / skip this one"],
  ["o", "history of your queries"],
  ["?", "this key map"],
  ["Esc", "close a panel or overlay, leave a text box"],
];
const LABEL_TEXT = { relevant: "Relevant", not_relevant: "Not relevant", unsure: "Unsure" };
const LABEL_SHORT = { relevant: "Yes", not_relevant: "No", unsure: "Unsure" };
const LABEL_ICON = { relevant: "✓", not_relevant: "✗", unsure: "?" };
const DRAFT_DELAY_MS = 700;
const PREPARING_RETRY_MS = 1500; // asking again while the server prepares pool search
const HEALTH_EVERY_MS = 2500;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

// An image that fails (a 401 in the moment between the login and the session cookie, a busy
// server) is asked for again a few times, later each time, before the card shows it grey.
function retryImages(root) {
  root.addEventListener("error", (e) => {
    const img = e.target;
    if (!(img instanceof HTMLImageElement) || !img.getAttribute("src")) return;
    const n = Number(img.dataset.retry || 0);
    if (n >= 5) return;
    img.dataset.retry = String(n + 1);
    setTimeout(() => {
      const url = new URL(img.src, location.href);
      url.searchParams.set("r", String(n + 1));
      img.src = url.href;
    }, 400 * (n + 1));
  }, true);
}

function token() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function store(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch (e) {
    /* private mode or full: the server draft still keeps the work */
  }
}

function load(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "null");
  } catch (e) {
    return null;
  }
}

class Workbench {
  constructor(root) {
    this.root = root;
    this.v = null;
    this.trigger = () => {};
    this.work = null;
    this.focus = { section: "pos", index: 0 };
    this.searchReq = 0;
    this.historyReq = 0;
    this.seenNotice = null;
    this.online = true;
    this.pending = null;
    this.build();
    this.onKey = (e) => this.key(e);
    document.addEventListener("keydown", this.onKey, true);
    this.onResize = () => this.fit();
    window.addEventListener("resize", this.onResize);
    this.health = setInterval(() => this.checkHealth(), HEALTH_EVERY_MS);
  }

  destroy() {
    document.removeEventListener("keydown", this.onKey, true);
    window.removeEventListener("resize", this.onResize);
    clearInterval(this.health);
    clearTimeout(this.draftTimer);
  }

  // ------------------------------------------------------------------ skeleton

  build() {
    const $ = (cls) => this.wb.querySelector(cls);
    this.wb = el("div", { class: "wb", role: "application", "aria-label": "Workbench" });
    this.wb.innerHTML = `
      <div class="banner" role="status" hidden></div>
      <header class="top">
        <div class="progress"><div class="bar"><span></span></div><b class="count"></b></div>
        <div class="meta"></div>
        <span class="hint" data-testid="suspicion-hint" title="How suspicious the rankers find this query's labels (0 to 1): a hint, not an answer" hidden></span>
        <nav class="actions">
          <button data-act="previous" title="Previous query (p)">← Previous</button>
          <button data-act="skip" title="Skip this query (s)">Skip</button>
          <button data-act="undo" title="Undo: reopen the last submitted query (Backspace)">↶ Undo</button>
          <button data-act="history" title="Your queries (o)">History</button>
          <button data-act="help" title="Key map (?)">? Keys</button>
        </nav>
      </header>
      <section class="query" aria-label="Query">
        <p class="qtext" data-testid="query-text"></p>
        <p class="qorig" hidden></p>
        <div class="refs"></div>
      </section>
      <div class="main">
        <section class="pane left" aria-label="Labelled positives">
          <h3 class="pos-title"></h3>
          <div class="list pos" role="list"></div>
          <h3 class="found-title" hidden>Added from search</h3>
          <div class="list found" role="list"></div>
        </section>
        <section class="pane right">
          <div class="tools">
            <input class="search" type="search" placeholder="Search the pool  ( / )" aria-label="Search the pool" maxlength="500">
            <div class="tabs" role="tablist">
              <button role="tab" data-tab="cand" aria-selected="true"></button>
              <button role="tab" data-tab="res" aria-selected="false" hidden></button>
            </div>
          </div>
          <div class="scroll">
            <div class="grid cand" role="list" aria-label="Candidates"></div>
            <div class="res-wrap" hidden><h3 class="res-label" aria-live="polite"></h3><div class="grid res" role="list" aria-label="Search results"></div></div>
          </div>
        </section>
      </div>
      <footer class="verdict" aria-label="The query itself">
        <div class="choices" role="radiogroup" aria-label="Verdict">
          <button role="radio" data-verdict="accept">✓ Accept</button>
          <button role="radio" data-verdict="reject">✗ Reject <kbd>x</kbd></button>
          <button role="radio" data-verdict="rewrite">✎ Rewrite <kbd>r</kbd></button>
        </div>
        <div class="panel reject" hidden>
          <div class="reasons" role="radiogroup" aria-label="Reason"></div>
          <input class="note" type="text" placeholder="Note (required for “other”)" aria-label="Note">
        </div>
        <div class="panel rewrite" hidden>
          <textarea class="rewrite-text" rows="2" aria-label="Rewritten query"></textarea>
          <span class="counter" aria-live="polite"></span>
        </div>
        <p class="msg" role="alert"></p>
        <button class="submit" data-act="submit" title="Submit and next (Enter)">Submit and next ⏎</button>
      </footer>
      <div class="overlay zoom" hidden role="dialog" aria-label="Zoom"><div class="box"><img alt=""><div class="ztext"><h3></h3><p></p></div></div></div>
      <div class="overlay help" hidden role="dialog" aria-label="Key map"><div class="box"><h3>Keys</h3><table></table><p class="guide"></p></div></div>
      <div class="overlay history" hidden role="dialog" aria-label="History"><div class="box">
        <h3>Your queries</h3><div class="filters"></div><ol class="entries"></ol><p class="more"></p></div></div>
      <div class="empty" hidden></div>`;
    this.root.append(this.wb);
    this.el = {
      banner: $(".banner"), count: $(".count"), bar: $(".bar span"), meta: $(".meta"), hint: $(".hint"),
      qtext: $(".qtext"), qorig: $(".qorig"), refs: $(".refs"), posTitle: $(".pos-title"),
      pos: $(".list.pos"), found: $(".list.found"), foundTitle: $(".found-title"), search: $(".search"),
      tabCand: $('[data-tab="cand"]'), tabRes: $('[data-tab="res"]'), scroll: $(".scroll"),
      cand: $(".grid.cand"), resWrap: $(".res-wrap"), resLabel: $(".res-label"), res: $(".grid.res"),
      left: $(".pane.left"), choices: $(".choices"), reject: $(".panel.reject"), reasons: $(".reasons"),
      note: $(".note"), rewrite: $(".panel.rewrite"), rewriteText: $(".rewrite-text"), counter: $(".counter"),
      msg: $(".msg"), zoom: $(".overlay.zoom"), help: $(".overlay.help"), history: $(".overlay.history"),
      empty: $(".empty"), main: $(".main"),
    };
    const table = this.wb.querySelector(".help table");
    for (const [k, what] of KEYS) table.append(el("tr", {}, el("td", {}, el("kbd", { text: k })), el("td", { text: what })));
    retryImages(this.wb);
    this.wb.addEventListener("click", (e) => this.click(e));
    this.el.search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.runSearch({ text: this.el.search.value });
      }
    });
    this.el.note.addEventListener("input", () => this.change(() => (this.work.note = this.el.note.value)));
    this.el.note.addEventListener("beforeinput", (e) => this.limit(e, this.el.note, this.limits.note, "note"));
    const rt = this.el.rewriteText;
    rt.addEventListener("beforeinput", (e) => this.limit(e, rt, this.limits.rewrite, "rewrite"));
    rt.addEventListener("input", () => {
      this.change(() => (this.work.rewrite = rt.value), false);
      this.countRewrite();
    });
    for (const box of [this.el.zoom, this.el.help, this.el.history]) {
      box.addEventListener("click", (e) => { if (e.target === box) this.closeOverlays(); });
    }
  }

  fit() {
    // The workbench fills the window below Streamlit's header; its panes scroll, the page does not.
    const top = this.wb.getBoundingClientRect().top + (this.root.host ? 0 : window.scrollY);
    this.wb.style.height = Math.max(420, window.innerHeight - Math.max(top, 0) - 8) + "px";
  }

  // ------------------------------------------------------------------ data from Python

  receive(data) {
    this.user = data.user;
    if (data.empty) {
      this.showEmpty(data);
    } else if (data.v !== this.v) {
      this.open(data);
    } else if (data.progress) {
      this.showProgress(data.progress);
    }
    this.v = data.v;
    if (data.prefetch) this.prefetch(data.prefetch);
    if (data.ack) this.acknowledge(data.ack);
    if (data.notice && data.notice.id !== this.seenNotice) {
      this.seenNotice = data.notice.id;
      this.notice(data.notice);
    }
    if (data.search && data.search.req === this.searchReq) this.showResults(data.search);
    if (data.history && data.history.req === this.historyReq) this.showHistory(data.history);
    this.resend();
  }

  prefetch(urls) {
    // Warm the browser's cache with the next query's first-screen images (they are cached for good).
    const key = urls.join("|");
    if (key === this.prefetched) return;
    this.prefetched = key;
    const warm = () => { for (const url of urls) { const img = new Image(); img.decoding = "async"; img.src = url; } };
    if (window.requestIdleCallback) requestIdleCallback(warm, { timeout: 1500 });
    else setTimeout(warm, 300);
  }

  showEmpty(data) {
    this.data = null;
    this.work = null;
    this.wb.classList.add("is-empty");
    this.el.empty.hidden = false;
    this.el.empty.textContent = data.empty;
    this.wb.dataset.queryId = "";
    if (data.progress) this.showProgress(data.progress);
  }

  open(data) {
    this.mark("data");
    this.data = data;
    this.wb.classList.remove("is-empty");
    this.el.empty.hidden = true;
    this.limits = data.limits;
    const q = data.query;
    this.aid = q.aid;
    this.localKey = `qs:wb:${data.user}:${q.aid}`;
    // The newest of: the answers stored, the server's draft, this browser's own copy.
    const saved = { labels: {}, added: {}, copies: {}, note: "", reason: null, rewrite: "", ...data.saved };
    let work = saved, seq = 0;
    if (data.draft && data.draft.work) { work = { ...saved, ...data.draft.work }; seq = data.draft.seq; }
    const local = load(this.localKey);
    if (local && local.seq > seq) { work = { ...saved, ...local.work }; seq = local.seq; }
    this.work = { labels: {}, added: {}, copies: {}, verdict: "accept", reason: null, note: "", rewrite: "", ...work };
    this.seq = Math.max(seq, Date.now());
    this.startedAt = performance.now();
    this.closeOverlays();
    this.el.search.value = "";
    this.render();
    this.focus = { section: data.positives.length ? "pos" : "cand", index: 0 };
    this.el.left.scrollTop = 0;
    this.el.scroll.scrollTop = 0;
    this.showTab("cand");
    this.paintFocus();
    this.message("");
    this.fit();
    this.markShown(q.aid);
  }

  markShown(aid) {
    // `data-shown` tells tests and the benchmark the query is fully on screen, images included.
    this.wb.dataset.queryId = String(aid);
    delete this.wb.dataset.shown;
    const imgs = [...this.el.pos.querySelectorAll("img"), ...[...this.el.cand.querySelectorAll("img")].slice(0, 10)];
    const done = imgs.map((img) => (img.complete ? Promise.resolve() : new Promise((ok) => {
      img.addEventListener("load", ok, { once: true });
      img.addEventListener("error", ok, { once: true });
    })));
    const timeout = new Promise((ok) => setTimeout(ok, 4000));
    this.mark("rendered");
    Promise.race([Promise.all(done), timeout]).then(() => {
      requestAnimationFrame(() => {
        if (this.aid !== aid) return;
        this.wb.dataset.shown = String(aid);
        this.mark("shown");
      });
    });
  }

  showProgress(p) {
    this.el.count.textContent = `${p.done} / ${p.total} done` + (p.skipped ? ` · ${p.skipped} skipped` : "");
    this.el.bar.style.width = `${p.total ? (100 * p.done) / p.total : 0}%`;
  }

  // ------------------------------------------------------------------ rendering

  render() {
    const d = this.data, q = d.query;
    this.showProgress(d.progress);
    this.el.meta.textContent = [q.ext_id, q.category, q.language, q.status === "done" ? "submitted before: editing" : ""]
      .filter(Boolean).join(" · ");
    this.el.hint.hidden = d.hint === undefined || d.hint === null;
    this.el.hint.textContent = this.el.hint.hidden ? "" : `suspicion ${d.hint.toFixed(2)}`;
    this.el.qtext.textContent = q.text;
    this.el.qorig.hidden = q.text === q.original;
    this.el.qorig.textContent = q.text === q.original ? "" : `Original: ${q.original}`;
    this.el.refs.replaceChildren(...q.refs.map((r) =>
      el("figure", { class: "ref" }, r.thumb ? el("img", { src: r.thumb, alt: r.title, loading: "eager" }) : el("span", { text: "no image" }),
        el("figcaption", { text: r.title }))));
    this.el.posTitle.textContent = d.positives.length ? `Labelled positives (${d.positives.length})` : "No labelled positive: add any relevant candidate";
    this.el.pos.replaceChildren(...d.positives.map((c, i) => this.positiveCard(c, i)));
    this.el.found.replaceChildren(...d.found.map((c, i) => this.toggleCard(c, i, "found")));
    this.el.foundTitle.hidden = !d.found.length;
    this.el.cand.replaceChildren(...d.candidates.map((c, i) => this.toggleCard(c, i, "cand")));
    this.el.tabCand.textContent = `Candidates (${d.candidates.length})`;
    if (!d.candidates.length) this.el.cand.append(el("p", { class: "none", text: "No ranked candidates yet: an admin runs the ranking job." }));
    this.el.res.replaceChildren();
    this.el.tabRes.hidden = true;
    this.el.reasons.replaceChildren(...d.reasons.map((r, i) =>
      el("button", { role: "radio", "data-reason": r.value, "aria-checked": "false" }, el("kbd", { text: String(i + 1) }), ` ${r.label}`)));
    this.el.note.value = this.work.note || "";
    this.el.rewriteText.value = this.work.rewrite || q.text;
    this.paintVerdict();
    this.paintCopied();
  }

  image(c) {
    return c.thumb
      ? el("img", { src: c.thumb, alt: "", loading: "lazy", decoding: "async", draggable: "false" })
      : el("span", { class: "noimg", text: c.image === "remote" ? "image not stored" : "no image" });
  }

  positiveCard(c, i) {
    const card = el("article", { class: "card pos", role: "listitem", "data-item": c.id, "data-section": "pos", "data-index": i, title: c.text },
      el("div", { class: "img" }, this.image(c)),
      el("div", { class: "body" }, el("h4", { text: c.title }),
        el("div", { class: "labels" }, ...["relevant", "not_relevant", "unsure"].map((label) =>
          el("button", { "data-label": label, "aria-pressed": "false", title: `${LABEL_TEXT[label]} (${label[0] === "n" ? "n" : label[0]})` },
            el("span", { class: "icon", text: LABEL_ICON[label] }), ` ${LABEL_SHORT[label]}`))),
        this.copiesButton(c)));
    card._data = c;
    this.paintPositive(card);
    return card;
  }

  toggleCard(c, i, section) {
    const extra = c.rank !== undefined
      ? el("p", { class: "score", text: `rank ${c.rank} · ${c.score} · ` + Object.entries(c.rankers || {}).map(([k, v]) => `${k} #${v}`).join(", ") })
      : null;
    const card = el("article", { class: `card ${section}`, role: "listitem", "data-item": c.id, "data-section": section, "data-index": i, title: c.text },
      el("div", { class: "img" }, this.image(c), el("span", { class: "badge", text: "✓ Relevant" })),
      el("div", { class: "body" }, el("h4", { text: c.title }), extra,
        el("div", { class: "card-actions" },
          el("button", { class: "mark", "aria-pressed": "false", title: "Relevant (Space)" }, "☐ Relevant"),
          el("button", { class: "like", title: "More like this (m)", "aria-label": "More like this" }, "≈ Like")),
        this.copiesButton(c)));
    card._data = c;
    this.paintToggle(card);
    return card;
  }

  paintPositive(card) {
    const label = this.work.labels[card.dataset.item] || null;
    card.dataset.label = label || "";
    for (const b of card.querySelectorAll("[data-label]")) b.setAttribute("aria-pressed", String(b.dataset.label === label));
    this.paintCopies(card);
  }

  // ------------------------------------------------------------------ copies in the pool

  copiesButton(c) {
    // "3 copies in the pool": once the card is judged, the same label can go to its copies (c).
    const n = (c.copies || []).length;
    return n ? el("button", { class: "copies", "data-copies": n, "aria-pressed": "false", disabled: true }) : null;
  }

  judged(id) {
    // The label a card carries now: a labelled positive's, or "relevant" for a marked candidate.
    return this.work.labels[id] || (this.work.added[id] ? "relevant" : null);
  }

  paintCopies(card) {
    const button = card.querySelector(".copies");
    if (!button) return;
    const n = Number(button.dataset.copies), label = this.judged(card.dataset.item);
    const on = !!(label && this.work.copies[card.dataset.item]);
    const noun = n === 1 ? "copy" : "copies";
    button.disabled = !label;
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? `${n} ${noun}: ${LABEL_SHORT[label].toLowerCase()} too ✓` : label ? `${n} ${noun} in the pool: same label? (c)` : `${n} ${noun} in the pool`;
    button.title = label ? `Give the ${n} ${noun} of this item in the pool the label “${LABEL_TEXT[label]}” too (c)` : `Judge the item first; then its ${noun} can take the same label`;
  }

  paintCopied() {
    // Cards on screen that take their label from a copy: marked, and positives labelled.
    const from = {};
    for (const card of this.wb.querySelectorAll(".card")) {
      const c = card._data;
      if (c && c.copies && this.work.copies[c.id] && this.judged(c.id)) for (const id of c.copies) from[id] = c.title;
    }
    for (const card of this.wb.querySelectorAll(".card")) {
      const of = from[card.dataset.item];
      card.classList.toggle("copied", !!of);
      if (of) card.dataset.copyOf = of; else delete card.dataset.copyOf;
    }
  }

  syncCopies(id) {
    // A card's label changed: its copies follow it (positives on screen take it at once), and
    // an unjudged card gives its copies nothing.
    const source = this.wb.querySelector(`.card[data-item="${id}"]`)?._data;
    const label = this.judged(id);
    if (!label) delete this.work.copies[id];
    else if (this.work.copies[id] && source) {
      const positives = new Set(this.data.positives.map((c) => String(c.id)));
      for (const copy of source.copies || []) if (positives.has(String(copy))) this.work.labels[copy] = label;
    }
  }

  copies(card) {
    if (!card) return;
    const id = card.dataset.item, c = card._data;
    if (!c || !(c.copies || []).length) return this.message("This item has no copies in the pool.");
    if (!this.judged(id)) return this.message("Judge the item first; then its copies can take the same label.", "problem");
    this.change(() => {
      if (this.work.copies[id]) delete this.work.copies[id];
      else this.work.copies[id] = true;
      this.syncCopies(id);
    }, false);
    this.repaintMarks();
  }

  repaintMarks() {
    for (const c of this.cards("pos")) this.paintPositive(c);
    for (const c of this.wb.querySelectorAll(".card:not(.pos)")) this.paintToggle(c);
    this.paintCopied();
  }

  paintToggle(card) {
    const on = !!this.work.added[card.dataset.item];
    card.classList.toggle("on", on);
    const mark = card.querySelector(".mark");
    mark.setAttribute("aria-pressed", String(on));
    mark.textContent = on ? "☑ Relevant" : "☐ Relevant";
    this.paintCopies(card);
  }

  paintVerdict() {
    const v = this.work.verdict;
    for (const b of this.el.choices.querySelectorAll("[data-verdict]")) b.setAttribute("aria-checked", String(b.dataset.verdict === v));
    this.wb.dataset.verdict = v;
    this.el.reject.hidden = v !== "reject";
    this.el.rewrite.hidden = v !== "rewrite";
    for (const b of this.el.reasons.querySelectorAll("[data-reason]")) b.setAttribute("aria-checked", String(b.dataset.reason === this.work.reason));
    this.countRewrite();
  }

  countRewrite() {
    const n = this.el.rewriteText.value.length, max = this.limits ? this.limits.rewrite : 0;
    this.el.counter.textContent = `${n.toLocaleString()} / ${max.toLocaleString()}`;
    this.el.counter.classList.toggle("full", n >= max);
  }

  // ------------------------------------------------------------------ focus

  cards(section) {
    const box = { pos: this.el.pos, cand: this.el.cand, res: this.el.res, found: this.el.found }[section];
    return box ? [...box.querySelectorAll(".card")] : [];
  }

  sections() {
    return ["pos", "found", "cand", "res"].filter((s) => this.cards(s).length && (s !== "res" || !this.el.resWrap.hidden));
  }

  current() {
    return this.cards(this.focus.section)[this.focus.index] || null;
  }

  paintFocus(scroll = true) {
    for (const c of this.wb.querySelectorAll(".card[aria-current]")) c.removeAttribute("aria-current");
    const card = this.current();
    if (!card) return;
    card.setAttribute("aria-current", "true");
    if (scroll) card.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  moveTo(section, index) {
    const list = this.cards(section);
    if (!list.length) return;
    if (section === "res" || section === "cand") this.showTab(section);
    this.focus = { section, index: Math.max(0, Math.min(index, list.length - 1)) };
    this.paintFocus();
  }

  columns(section) {
    const list = this.cards(section);
    if (list.length < 2) return 1;
    const top = list[0].offsetTop;
    const n = list.findIndex((c) => c.offsetTop !== top);
    return n < 0 ? list.length : n;
  }

  arrow(dx, dy) {
    const { section, index } = this.focus;
    const cols = section === "pos" || section === "found" ? 1 : this.columns(section);
    if (cols === 1 && dx !== 0) {
      const order = this.sections(), at = order.indexOf(section);
      const target = order[at + (dx > 0 ? 1 : -1)];
      if (target) this.moveTo(target, dx > 0 ? 0 : this.cards(target).length - 1);
      return;
    }
    if (dx < 0 && index % cols === 0) {
      const order = this.sections(), left = order[order.indexOf(section) - 1];
      if (left) return this.moveTo(left, 0);
    }
    let next = index + dx + dy * cols;
    if (next < 0 || next >= this.cards(section).length) {
      const order = this.sections(), at = order.indexOf(section);
      if (dy > 0 && order[at + 1]) return this.moveTo(order[at + 1], 0);
      if (dy < 0 && order[at - 1]) return this.moveTo(order[at - 1], this.cards(order[at - 1]).length - 1);
      next = Math.max(0, Math.min(next, this.cards(section).length - 1));
    }
    this.moveTo(section, next);
  }

  // ------------------------------------------------------------------ marking

  change(mutate, repaint = true) {
    if (!this.work) return;
    mutate();
    this.seq = Math.max(this.seq + 1, Date.now());
    if (repaint) this.paintVerdict();
    // The screen first; keeping a copy in this browser waits until the frame is drawn.
    if (!this.persistQueued) {
      this.persistQueued = true;
      const persist = () => {
        this.persistQueued = false;
        if (this.work) store(this.localKey, { work: this.work, seq: this.seq, aid: this.aid });
      };
      if (window.requestIdleCallback) requestIdleCallback(persist, { timeout: 250 });
      else setTimeout(persist, 50);
    }
    clearTimeout(this.draftTimer);
    this.draftTimer = setTimeout(() => this.sendDraft(), DRAFT_DELAY_MS);
  }

  sendDraft() {
    if (!this.work || !this.online) return;
    this.trigger("draft", { aid: this.aid, seq: this.seq, work: this.work });
  }

  label(card, label) {
    const id = card.dataset.item;
    this.change(() => {
      if (this.work.labels[id] === label && label !== "relevant") delete this.work.labels[id];
      else this.work.labels[id] = label;
      this.syncCopies(id);
    }, false);
    if (this.work.copies[id] || card._data?.copies) this.repaintMarks();
    else this.paintPositive(card);
  }

  toggle(card, value) {
    const id = card.dataset.item, section = card.dataset.section;
    const on = value === undefined ? !this.work.added[id] : value;
    this.change(() => {
      if (!on) delete this.work.added[id];
      else if (section === "cand") this.work.added[id] = { provenance: "candidate" };
      else this.work.added[id] = { provenance: "search", search: card._search || card._data?.search || "search" };
      this.syncCopies(id);
    }, false);
    for (const other of this.wb.querySelectorAll(`.card[data-item="${id}"]:not(.pos)`)) this.paintToggle(other);
    if (card._data?.copies) this.paintCopied();
  }

  verdict(v) {
    this.change(() => {
      this.work.verdict = this.work.verdict === v && v !== "accept" ? "accept" : v;
      if (this.work.verdict === "rewrite" && !this.work.rewrite) this.work.rewrite = this.data.query.text;
    });
    this.el.rewriteText.value = this.work.rewrite || this.data.query.text;
    this.countRewrite();
    if (this.work.verdict === "rewrite") this.el.rewriteText.focus();
    if (this.work.verdict === "reject" && this.work.reason === "other") this.el.note.focus();
  }

  reason(value) {
    this.change(() => { this.work.reason = value; });
    if (value === "other") this.el.note.focus();
  }

  limit(e, input, max, what) {
    // Refuse what would pass the limit, visibly: never truncate or revert silently.
    if (!e.inputType.startsWith("insert")) return;
    const incoming = e.data ?? (e.dataTransfer ? e.dataTransfer.getData("text/plain") : "") ?? "";
    const selected = input.selectionEnd - input.selectionStart;
    const after = input.value.length - selected + incoming.length;
    if (after > max) {
      e.preventDefault();
      const over = after - max;
      this.message(`The ${what} is limited to ${max.toLocaleString()} characters: ${over.toLocaleString()} more refused.`, "problem");
      input.classList.add("refused");
      setTimeout(() => input.classList.remove("refused"), 600);
    }
  }

  // ------------------------------------------------------------------ submit

  problems() {
    const w = this.work, d = this.data;
    const missing = d.positives.filter((c) => !w.labels[c.id]);
    if (missing.length && w.verdict !== "reject")
      return [`Label every labelled positive (${missing.length} left), or reject the query.`, () => this.moveTo("pos", d.positives.indexOf(missing[0]))];
    if (w.verdict === "reject" && !w.reason) return ["Say why the query is rejected: press 1 … 5.", () => this.el.reasons.querySelector("button")?.focus()];
    if (w.verdict === "reject" && w.reason === "other" && !(w.note || "").trim()) return ["A rejection for “other” needs a note.", () => this.el.note.focus()];
    if (w.verdict === "rewrite") {
      const text = (w.rewrite || "").trim();
      if (!text) return ["A rewrite needs the new query text.", () => this.el.rewriteText.focus()];
      if (text.length > this.limits.rewrite) return [`The rewrite is limited to ${this.limits.rewrite.toLocaleString()} characters.`, () => this.el.rewriteText.focus()];
      if (text === d.query.original.trim()) return ["The rewrite is the same as the query: change the text, or accept the query.", () => this.el.rewriteText.focus()];
    }
    return null;
  }

  submit() {
    if (!this.work || this.pending) return;
    const problem = this.problems();
    if (problem) {
      this.message(problem[0], "problem");
      problem[1]();
      return;
    }
    // The submit carries the work: a draft still due would land after it, on a submitted query.
    clearTimeout(this.draftTimer);
    this.pending = { aid: this.aid, v: this.v, token: token(), work: this.work, ms: Math.round(performance.now() - this.startedAt) };
    store(`qs:wb:${this.user}:pending`, this.pending);
    this.wb.classList.add("saving");
    this.message("Saving…");
    this.mark("submit");
    this.trigger("submit", this.pending);
  }

  mark(name) {
    // Timings for the browser benchmark (bench/bench_browser.py): what the annotator waits for.
    (window.__qsMarks = window.__qsMarks || []).push([name, performance.now(), this.aid]);
  }

  acknowledge(ack) {
    if (this.pending && ack.token === this.pending.token) {
      store(`qs:wb:${this.user}:${this.pending.aid}`, null);
      store(`qs:wb:${this.user}:pending`, null);
      this.pending = null;
      this.wb.classList.remove("saving");
    }
  }

  resend() {
    // A submit the server never answered (connection lost, server restarted) goes again, with the
    // same token: the server stores it once.
    if (this.pending || !this.user) return;
    const left = load(`qs:wb:${this.user}:pending`);
    if (left && left.token && this.online) {
      this.pending = left;
      this.message("Saving your last submit again…");
      this.trigger("submit", left);
    }
  }

  notice(n) {
    if (this.pending && n.token === this.pending.token) {
      if (n.kind === "retry") {
        const again = this.pending;
        this.message(n.text + " Retrying…", "problem");
        setTimeout(() => { if (this.pending === again) this.trigger("submit", again); }, 2000);
        return;
      }
      store(`qs:wb:${this.user}:pending`, null);
      this.pending = null;
      this.wb.classList.remove("saving");
    }
    this.message(n.text, n.kind === "saved" ? "" : n.kind === "training" ? "training" : "problem");
  }

  message(text, kind = "") {
    this.el.msg.textContent = text;
    this.el.msg.dataset.kind = kind;
  }

  // ------------------------------------------------------------------ search, history, zoom

  runSearch(query) {
    if (query.text !== undefined && !query.text.trim()) return;
    this.searchReq += 1;
    this.el.resWrap.hidden = false;
    this.el.tabRes.hidden = false;
    this.el.tabRes.textContent = "Search results …";
    this.el.resLabel.textContent = query.like ? `More like “${query.title}” …` : `Searching for “${query.text}” …`;
    this.el.res.replaceChildren();
    this.showTab("res");
    this.lastSearch = query;
    this.trigger("search", { req: this.searchReq, ...query });
  }

  showResults(s) {
    if (this.shownSearch === s.req) return;
    this.shownSearch = s.req;
    if (s.preparing) {
      // The server is preparing pool search in the background: say so, and ask again shortly
      // (unless another search or another query came meanwhile).
      this.el.resLabel.textContent = s.preparing;
      this.el.resWrap.dataset.preparing = "true";
      const req = s.req, query = this.lastSearch, v = this.v;
      setTimeout(() => {
        if (this.searchReq !== req || this.v !== v || !query) return;
        this.searchReq += 1;
        this.trigger("search", { req: this.searchReq, ...query });
      }, PREPARING_RETRY_MS);
      return;
    }
    delete this.el.resWrap.dataset.preparing;
    this.el.resLabel.textContent = s.error ? s.error : s.label;
    const positives = new Set(this.data.positives.map((c) => String(c.id)));
    const hits = (s.hits || []).filter((h) => !positives.has(String(h.id)));
    this.el.res.replaceChildren(...hits.map((h, i) => {
      const card = this.toggleCard(h, i, "res");
      card._search = s.source || s.label;
      return card;
    }));
    this.paintCopied();
    this.el.tabRes.textContent = `Search results (${hits.length})`;
    this.showTab("res");
    if (this.typing() === this.el.search) this.el.search.blur(); // the keys judge results now
    if (hits.length) this.moveTo("res", 0);
  }

  showTab(tab) {
    const res = tab === "res";
    this.el.cand.hidden = res;
    this.el.resWrap.hidden = !res;
    this.el.tabCand.setAttribute("aria-selected", String(!res));
    this.el.tabRes.setAttribute("aria-selected", String(res));
  }

  openHistory(show = "all", offset = 0) {
    this.historyReq += 1;
    this.historyShow = show;
    this.el.history.hidden = false;
    this.el.history.querySelector(".entries").replaceChildren(el("li", { text: "Loading …" }));
    this.trigger("history", { req: this.historyReq, show, offset });
  }

  showHistory(h) {
    const filters = this.el.history.querySelector(".filters");
    filters.replaceChildren(...["all", "accept", "reject", "rewrite", "skipped"].map((f) =>
      el("button", { "data-show": f, "aria-pressed": String(f === h.show) }, f)));
    const list = this.el.history.querySelector(".entries");
    list.replaceChildren(...h.entries.map((e, i) =>
      el("li", { "data-aid": e.aid, "data-index": i, tabindex: "-1" },
        el("b", { text: e.ext_id }), el("span", { class: "when", text: e.when }),
        el("span", { class: `tag ${e.verdict || e.status}`, text: e.verdict || e.status }), el("span", { class: "htext", text: e.text }))));
    if (!h.entries.length) list.append(el("li", { text: "Nothing here yet." }));
    const more = this.el.history.querySelector(".more");
    more.replaceChildren();
    if (h.offset + h.entries.length < h.total)
      more.append(el("button", { "data-more": h.offset + h.entries.length }, `Older (${h.total - h.offset - h.entries.length} more)`));
    this.historyIndex = 0;
    this.paintHistory();
  }

  paintHistory() {
    const items = [...this.el.history.querySelectorAll("li[data-aid]")];
    items.forEach((li, i) => li.toggleAttribute("aria-current", i === this.historyIndex));
    items[this.historyIndex]?.scrollIntoView({ block: "nearest" });
  }

  zoom(card) {
    const c = card?._data || this.data.positives.find((p) => String(p.id) === card?.dataset.item);
    if (!c) return;
    const img = this.el.zoom.querySelector("img");
    img.src = c.full || c.thumb || "";
    img.hidden = !c.full && !c.thumb;
    this.el.zoom.querySelector("h3").textContent = c.title;
    this.el.zoom.querySelector("p").textContent = c.text;
    this.el.zoom.hidden = false;
  }

  closeOverlays() {
    for (const box of [this.el.zoom, this.el.help, this.el.history]) box.hidden = true;
  }

  overlayOpen() {
    return !this.el.zoom.hidden || !this.el.help.hidden || !this.el.history.hidden;
  }

  nav(action, aid) {
    if (this.pending) return;
    this.closeOverlays();
    this.message("");
    this.trigger("nav", { action, aid, req: Date.now() });
  }

  // ------------------------------------------------------------------ connection

  checkHealth() {
    if (document.hidden) return;
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 2000);
    fetch("/_stcore/health", { cache: "no-store", signal: ctrl.signal })
      .then((r) => this.setOnline(r.ok))
      .catch(() => this.setOnline(false))
      .finally(() => clearTimeout(timer));
  }

  setOnline(ok) {
    if (ok === this.online) return;
    this.online = ok;
    this.el.banner.hidden = ok;
    this.el.banner.textContent = ok ? "" : "Not connected — your marks are kept in this browser and will be saved when it is back.";
    this.wb.classList.toggle("offline", !ok);
    if (ok) {
      if (this.pending) this.trigger("submit", this.pending);
      else if (this.work) this.sendDraft();
    }
  }

  // ------------------------------------------------------------------ input

  click(e) {
    const t = e.target.closest("button, .card, li[data-aid], img");
    if (!t || !this.wb.contains(t)) return;
    const card = e.target.closest(".card");
    if (t.dataset.act) {
      const act = t.dataset.act;
      if (act === "submit") return this.submit();
      if (act === "help") { this.el.help.hidden = false; return; }
      if (act === "history") return this.openHistory();
      return this.nav(act);
    }
    if (t.dataset.verdict) return this.verdict(t.dataset.verdict);
    if (t.dataset.reason) return this.reason(t.dataset.reason);
    if (t.dataset.tab) return this.showTab(t.dataset.tab);
    if (t.dataset.show) return this.openHistory(t.dataset.show);
    if (t.dataset.more) return this.openHistory(this.historyShow, Number(t.dataset.more));
    if (t.matches("li[data-aid]")) return this.nav("open", Number(t.dataset.aid));
    if (card) {
      this.focus = { section: card.dataset.section, index: Number(card.dataset.index) };
      this.paintFocus(false);
      if (t.dataset.label) return this.label(card, t.dataset.label);
      if (t.classList.contains("mark")) return this.toggle(card);
      if (t.classList.contains("like")) return this.like(card);
      if (t.classList.contains("copies")) return this.copies(card);
      if (t.tagName === "IMG") return this.zoom(card);
    }
  }

  like(card) {
    const c = card._data || this.data.positives.find((p) => String(p.id) === card.dataset.item);
    if (c) this.runSearch({ like: c.id, title: c.title });
  }

  typing() {
    const active = this.root.activeElement || document.activeElement;
    return active && (active.tagName === "INPUT" || active.tagName === "TEXTAREA") ? active : null;
  }

  key(e) {
    if (!this.wb.isConnected || e.defaultPrevented) return;
    const outside = document.activeElement && document.activeElement !== this.root.host &&
      ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
    if (outside) return; // a Streamlit widget elsewhere on the page has the keyboard
    const k = e.key, box = this.typing();
    if (box) {
      if (k === "Escape") { box.blur(); e.preventDefault(); e.stopPropagation(); }
      else if (k === "Enter" && (e.ctrlKey || e.metaKey || box.tagName === "INPUT") && box !== this.el.search) { e.preventDefault(); box.blur(); this.submit(); }
      return;
    }
    if (!this.work) {
      if (k === "o") { e.preventDefault(); this.openHistory(); }
      else if (k === "Backspace" || (e.altKey && k.toLowerCase() === "z")) { e.preventDefault(); this.nav("undo"); }
      return;
    }
    if (e.ctrlKey || e.metaKey) return;
    if (!this.el.history.hidden) return this.historyKey(e);
    if (this.overlayOpen()) {
      if (k === "Escape" || k === "z" || k === "?") { e.preventDefault(); this.closeOverlays(); }
      return;
    }
    const card = this.current();
    const handled = () => {
      e.preventDefault();
      e.stopPropagation(); // Streamlit's own hotkeys (r reruns the app) must not see our keys
    };
    if (e.altKey) {
      if (k.toLowerCase() === "z") { handled(); this.nav("undo"); }
      return;
    }
    switch (k) {
      case "ArrowLeft": case "h": handled(); return this.arrow(-1, 0);
      case "ArrowRight": case "l": handled(); return this.arrow(1, 0);
      case "ArrowUp": case "k": handled(); return this.arrow(0, -1);
      case "ArrowDown": case "j": handled(); return this.arrow(0, 1);
      case "Home": handled(); return this.moveTo(this.focus.section, 0);
      case "End": handled(); return this.moveTo(this.focus.section, 1e9);
      case "Tab": {
        handled();
        const order = this.sections(), at = order.indexOf(this.focus.section);
        const next = order[(at + (e.shiftKey ? order.length - 1 : 1)) % order.length];
        return this.moveTo(next, next === this.focus.section ? this.focus.index : 0);
      }
      case "y": case "n": case "u": {
        handled();
        if (!card) return;
        if (card.dataset.section === "pos") {
          this.label(card, { y: "relevant", n: "not_relevant", u: "unsure" }[k]);
          const next = this.data.positives.findIndex((c, i) => i > this.focus.index && !this.work.labels[c.id]);
          if (next >= 0) this.moveTo("pos", next);
          else if (this.focus.index < this.data.positives.length - 1) this.moveTo("pos", this.focus.index + 1);
        } else if (k !== "u") this.toggle(card, k === "y");
        return;
      }
      case " ": handled(); if (!card) return;
        return card.dataset.section === "pos" ? this.label(card, "relevant") : this.toggle(card);
      case "a": handled();
        this.change(() => { for (const c of this.data.positives) if (!this.work.labels[c.id]) this.work.labels[c.id] = "relevant"; }, false);
        this.repaintMarks();
        return;
      case "c": handled(); return this.copies(card);
      case "z": handled(); return this.zoom(card);
      case "m": handled(); if (card) this.like(card); return;
      case "/": handled(); this.el.search.focus(); this.el.search.select(); return;
      case "r": handled(); return this.verdict("rewrite");
      case "x": handled(); return this.verdict("reject");
      case "Enter": handled(); return this.submit();
      case "Backspace": handled(); return this.nav("undo");
      case "p": handled(); return this.nav("previous");
      case "s": handled(); return this.nav("skip");
      case "o": handled(); return this.openHistory();
      case "?": handled(); this.el.help.hidden = false; return;
      case "Escape": handled(); this.message(""); return;
      default:
        if (/^[0-9]$/.test(k)) {
          handled();
          if (this.work.verdict === "reject" && k !== "0" && Number(k) <= this.data.reasons.length)
            return this.reason(this.data.reasons[Number(k) - 1].value);
          return this.moveTo(this.focus.section, k === "0" ? 9 : Number(k) - 1);
        }
    }
  }

  historyKey(e) {
    const items = [...this.el.history.querySelectorAll("li[data-aid]")];
    const k = e.key;
    if (["ArrowDown", "j", "ArrowUp", "k", "Enter", "Escape", "o"].includes(k)) e.preventDefault();
    if (k === "ArrowDown" || k === "j") this.historyIndex = Math.min(items.length - 1, this.historyIndex + 1);
    else if (k === "ArrowUp" || k === "k") this.historyIndex = Math.max(0, this.historyIndex - 1);
    else if (k === "Enter" && items[this.historyIndex]) return this.nav("open", Number(items[this.historyIndex].dataset.aid));
    else if (k === "Escape" || k === "o") return this.closeOverlays();
    this.paintHistory();
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let app = parentElement.__qsWorkbench;
  if (!app) {
    app = new Workbench(parentElement);
    parentElement.__qsWorkbench = app;
  }
  app.trigger = (name, value) => setTriggerValue(name, value);
  app.receive(data || {});
  return () => {
    app.destroy();
    parentElement.__qsWorkbench = null;
  };
}
