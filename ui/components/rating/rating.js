// The rater's answer sheet, from the keyboard: 1–5 score the row in focus (then the next row),
// a / b / t pick the preference (or 1 … n the option in a preference study), Enter saves and opens
// the next trial. Every choice is also a button. Python saves (trigger "save") and sends the next.

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

class Sheet {
  constructor(root) {
    this.root = root;
    this.box = el("div", { class: "sheet", role: "form", "aria-label": "Your answer" });
    root.append(this.box);
    this.onKey = (e) => this.key(e);
    document.addEventListener("keydown", this.onKey, true);
    this.box.addEventListener("click", (e) => this.click(e));
  }

  destroy() {
    document.removeEventListener("keydown", this.onKey, true);
  }

  receive(data) {
    if (data.v !== this.v) {
      this.v = data.v;
      this.data = data;
      this.scores = JSON.parse(JSON.stringify(data.scores || {}));
      this.preference = data.preference || null;
      this.row = 0;
      this.render();
    }
    if (data.problem && data.problem.id !== this.problemId) {
      this.problemId = data.problem.id;
      this.msg.textContent = data.problem.text;
      this.box.classList.remove("saving");
    }
  }

  rows() {
    const d = this.data;
    return d.kind === "quality" ? d.criteria.flatMap((c) => d.labels.map((l) => [c, l])) : [];
  }

  render() {
    const d = this.data;
    this.box.replaceChildren();
    this.box.dataset.trial = d.v;
    if (d.kind === "quality") {
      const table = el("div", { class: "rows" });
      this.rows().forEach(([criterion, label], i) => {
        const buttons = d.scale.map((n) =>
          el("button", { "data-row": i, "data-score": n, "aria-pressed": String(this.scores[criterion]?.[label] === n), title: d.anchors[criterion]?.[n - 1] || "" }, String(n)));
        table.append(el("div", { class: "row", "data-row": i }, el("span", { class: "what", text: `${criterion} · query ${label}` }), el("span", { class: "scores" }, ...buttons)));
      });
      this.box.append(table);
      const prefs = [["A", "a", "A is better"], ["B", "b", "B is better"], ["tie", "t", "Tie"]];
      this.box.append(el("div", { class: "prefs", role: "radiogroup", "aria-label": "Which query is better?" },
        el("span", { class: "what", text: "Better for this target:" }),
        ...prefs.map(([v, key, text]) => el("button", { role: "radio", "data-pref": v, "aria-checked": String(this.preference === v) }, el("kbd", { text: key }), ` ${text}`))));
    } else {
      this.box.append(el("div", { class: "prefs", role: "radiogroup", "aria-label": "Which result is best?" },
        el("span", { class: "what", text: "Best result:" }),
        ...d.options.map((o, i) => el("button", { role: "radio", "data-pref": o, "aria-checked": String(this.preference === o) }, el("kbd", { text: String(i + 1) }), ` ${o}`))));
    }
    this.comment = el("input", { class: "comment", type: "text", maxlength: String(d.max_comment), placeholder: "Comment (optional; c)", "aria-label": "Comment" });
    this.comment.value = d.comment || "";
    this.msg = el("p", { class: "msg", role: "alert" });
    this.box.append(el("div", { class: "bottom" }, this.comment,
      el("button", { class: "save", "data-save": "1" }, "Save and next ⏎")), this.msg,
      el("p", { class: "hint", text: d.kind === "quality"
        ? "Keys: ↑ ↓ choose a row · 1–5 score it · a / b / t prefer · c comment · Enter save and next"
        : "Keys: 1 … 9 pick a result · c comment · Enter save and next" }));
    this.paint();
  }

  paint() {
    for (const row of this.box.querySelectorAll(".row")) row.toggleAttribute("aria-current", Number(row.dataset.row) === this.row);
    const rows = this.rows();
    for (const b of this.box.querySelectorAll("[data-score]")) {
      const [criterion, label] = rows[Number(b.dataset.row)];
      b.setAttribute("aria-pressed", String(this.scores[criterion]?.[label] === Number(b.dataset.score)));
    }
    for (const b of this.box.querySelectorAll("[data-pref]")) b.setAttribute("aria-checked", String(b.dataset.pref === this.preference));
  }

  score(row, n) {
    const [criterion, label] = this.rows()[row];
    (this.scores[criterion] = this.scores[criterion] || {})[label] = n;
    this.row = Math.min(row + 1, this.rows().length - 1);
    this.paint();
  }

  save() {
    const d = this.data;
    const missing = d.kind === "quality" && this.rows().some(([c, l]) => !this.scores[c]?.[l]);
    if (missing || !this.preference) {
      this.msg.textContent = d.kind === "quality"
        ? "Score both queries on every criterion and say which one is better (or a tie)."
        : "Pick the best result.";
      return;
    }
    this.msg.textContent = "Saving…";
    this.box.classList.add("saving");
    this.trigger("save", { v: d.v, scores: this.scores, preference: this.preference, comment: this.comment.value });
  }

  click(e) {
    const b = e.target.closest("button");
    if (!b) return;
    if (b.dataset.score) { this.row = Number(b.dataset.row); this.score(this.row, Number(b.dataset.score)); }
    else if (b.dataset.pref) { this.preference = b.dataset.pref; this.paint(); }
    else if (b.dataset.save) this.save();
  }

  key(e) {
    if (!this.box.isConnected || !this.data) return;
    const active = this.root.activeElement || document.activeElement;
    if (active && ["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName)) {
      if (active === this.comment && e.key === "Enter") { e.preventDefault(); this.save(); }
      if (active === this.comment && e.key === "Escape") this.comment.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key, d = this.data;
    const done = () => { e.preventDefault(); e.stopPropagation(); };
    if (k === "Enter") { done(); return this.save(); }
    if (k === "c") { done(); return this.comment.focus(); }
    if (d.kind === "quality") {
      if (k === "ArrowDown" || k === "j") { done(); this.row = Math.min(this.row + 1, this.rows().length - 1); return this.paint(); }
      if (k === "ArrowUp" || k === "k") { done(); this.row = Math.max(this.row - 1, 0); return this.paint(); }
      if (/^[1-5]$/.test(k) && d.scale.includes(Number(k))) { done(); return this.score(this.row, Number(k)); }
      const pref = { a: "A", b: "B", t: "tie" }[k];
      if (pref) { done(); this.preference = pref; return this.paint(); }
    } else if (/^[1-9]$/.test(k) && Number(k) <= d.options.length) {
      done();
      this.preference = d.options[Number(k) - 1];
      return this.paint();
    }
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let sheet = parentElement.__qsSheet;
  if (!sheet) {
    sheet = new Sheet(parentElement);
    parentElement.__qsSheet = sheet;
  }
  sheet.trigger = (name, value) => setTriggerValue(name, value);
  sheet.receive(data || {});
  return () => { sheet.destroy(); parentElement.__qsSheet = null; };
}
