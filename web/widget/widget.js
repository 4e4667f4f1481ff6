/* bookchat reader widget: no dependencies. Add it with
 *   <script async src="https://API/widget.js" data-api="https://API"></script>
 * Optional: data-title, data-book (base URL that citation paths are joined to),
 * data-position ("right" | "left"), data-shortcut ("Alt+Shift+C"; "none": no shortcut).
 * A site's own token, whatever the load order (calls wait in the array until the script runs):
 *   window.bookchat = window.bookchat || []; bookchat.push(["setToken", token]);
 * Model and book text only ever reach the page through textContent, never as HTML. */
(function () {
  "use strict";
  if (window.bookchat && window.bookchat.version) return; // loaded twice
  var script = document.currentScript;
  var data = (script && script.dataset) || {};
  var scriptUrl = new URL((script && script.src) || location.href, location.href);
  var API = (data.api || scriptUrl.origin).replace(/\/+$/, "");
  var TITLE = data.title || "Ask the book";
  var BOOK = (data.book || "").replace(/\/+$/, "");
  var SIDE = data.position === "left" ? "left" : "right";
  var SHORTCUT = parseShortcut(data.shortcut === undefined ? "Alt+Shift+C" : data.shortcut);
  var KEY = "bookchat:" + API;
  var MAX_SELECTION = 20000;
  var WAIT_SECONDS = 25;
  var FAILS_BEFORE_POLLING = 2;
  var TERMINAL = { completed: 1, incomplete: 1, failed: 1, cancelled: 1 };

  // "Alt+Shift+C" -> {label, code, alt, shift, ctrl, meta}; null for "none" or a bad one.
  function parseShortcut(text) {
    var parts = String(text).split("+"), key = (parts.pop() || "").toUpperCase();
    var mods = { alt: false, shift: false, control: false, meta: false };
    var ok = /^[A-Z0-9]$/.test(key) && parts.every(function (p) {
      var m = p.trim().toLowerCase();
      return m in mods && !mods[m] && (mods[m] = true);
    });
    if (!ok || !(mods.alt || mods.control || mods.meta)) { // a bare key would eat typing
      if (!/^(none)?$/i.test(String(text))) console.warn("bookchat: ignoring data-shortcut", text);
      return null;
    }
    var label = ["Control", "Alt", "Shift", "Meta"].filter(function (m) {
      return mods[m.toLowerCase()];
    }).concat(key).join("+");
    return { label: label, code: (/\d/.test(key) ? "Digit" : "Key") + key, alt: mods.alt,
             shift: mods.shift, ctrl: mods.control, meta: mods.meta };
  }

  // ---- state kept across page loads ----
  var state = load();
  var siteToken = null;
  var running = null; // {jobId, controller, msg}
  var starting = false; // a job is being posted
  var selection = "";
  var warned = false; // the site owner was told about CORS_ORIGINS

  function load() {
    try {
      var saved = JSON.parse(localStorage.getItem(KEY) || "{}");
      return { guest: saved.guest || null, conversationId: saved.conversationId || null,
               messages: saved.messages || [], pending: saved.pending || null };
    } catch (e) {
      return { guest: null, conversationId: null, messages: [], pending: null };
    }
  }
  function save() {
    try { localStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }

  // ---- DOM helpers: text only ----
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  // ---- safe Markdown: paragraphs, lists, fenced code, inline code, bold, italic, links ----
  function safeHref(url) {
    if (/^https?:\/\//i.test(url)) return url;
    if (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.slice(0, 2) === "//") return null;
    return url; // relative to the page
  }
  function citationHref(c) {
    var url = c.url || "";
    if (/^https?:\/\//i.test(url)) return url;
    if (url.charAt(0) !== "/") return null;
    return BOOK + url;
  }
  var INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*)\*|\b_([^_\s][^_]*)_\b|\[([^\]]+)\]\(([^)\s]+)\)|\[(\d{1,3})\]/g;
  function inline(parent, text, citations) {
    var last = 0, m;
    INLINE.lastIndex = 0;
    while ((m = INLINE.exec(text))) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      last = INLINE.lastIndex;
      if (m[1]) parent.appendChild(el("code", { text: m[2] }));
      else if (m[3] || m[4]) inline(parent.appendChild(el("strong")), m[3] || m[4], citations);
      else if (m[5] || m[6]) inline(parent.appendChild(el("em")), m[5] || m[6], citations);
      else if (m[7]) {
        var href = safeHref(m[8]);
        if (href) {
          var a = parent.appendChild(el("a", { href: href, rel: "noopener noreferrer" }));
          if (/^https?:/i.test(href)) a.setAttribute("target", "_blank");
          inline(a, m[7], citations);
        } else parent.appendChild(document.createTextNode(m[0]));
      } else {
        var c = (citations || []).filter(function (x) { return String(x.n) === m[9]; })[0];
        var chref = c && citationHref(c);
        if (chref) {
          parent.appendChild(el("a", { href: chref, className: "bc-ref", text: "[" + m[9] + "]",
                                       title: c.title + (c.heading ? " › " + c.heading : "") }));
        } else parent.appendChild(document.createTextNode(m[0]));
      }
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }
  function renderMarkdown(text, citations) {
    var root = el("div", { className: "bc-md" });
    var lines = String(text || "").replace(/\r\n?/g, "\n").split("\n");
    var para = [], list = null, i = 0;
    function flush() {
      if (para.length) inline(root.appendChild(el("p")), para.join(" "), citations);
      para = [];
    }
    for (; i < lines.length; i++) {
      var line = lines[i];
      var fence = /^\s*(```|~~~)\s*([\w+-]*)/.exec(line);
      if (fence) {
        flush(); list = null;
        var code = [];
        for (i++; i < lines.length && lines[i].trim().indexOf(fence[1]) !== 0; i++) code.push(lines[i]);
        var pre = root.appendChild(el("pre"));
        pre.appendChild(el("code", fence[2] ? { text: code.join("\n"), "data-lang": fence[2] }
                                           : { text: code.join("\n") }));
        continue;
      }
      var item = /^\s*(?:([-*+])|(\d{1,9})[.)])\s+(.*)$/.exec(line);
      if (item) {
        flush();
        var tag = item[1] ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== tag) list = root.appendChild(el(tag));
        inline(list.appendChild(el("li")), item[3], citations);
        continue;
      }
      var heading = /^\s*#{1,6}\s+(.*)$/.exec(line);
      if (heading) {
        flush(); list = null;
        inline(root.appendChild(el("p", { className: "bc-h" })), heading[1], citations);
        continue;
      }
      if (!line.trim()) { flush(); list = null; continue; }
      if (list && /^\s{2,}\S/.test(line)) { // continuation of the last item
        inline(list.lastChild, " " + line.trim(), citations);
        continue;
      }
      list = null;
      para.push(line.trim());
    }
    flush();
    return root;
  }

  function icon(d, size) { // drawn without fonts or markup strings
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg"), path = document.createElementNS(ns, "path");
    svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("width", size);
    svg.setAttribute("height", size); svg.setAttribute("aria-hidden", "true");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", d);
    svg.appendChild(path);
    return svg;
  }
  var BUBBLE = "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z";
  var THUMB = "M2 10h4v11H2zM8 10l4-8c1.5 0 2.6 1.1 2.3 2.6L13.5 9H20a2 2 0 0 1 2 2.3l-1.4 7.6A2.5 " +
    "2.5 0 0 1 18.1 21H8z";

  // ---- the panel ----
  var ids = "bookchat-" + Math.random().toString(36).slice(2, 8);
  var host = el("div", { className: "bc-root bc-" + SIDE, "data-bookchat": "", role: "region",
                         "aria-label": "Chat: " + TITLE });
  var keys = SHORTCUT ? " (" + SHORTCUT.label + ")" : "";
  var launcher = el("button", { type: "button", className: "bc-launcher", "aria-haspopup": "dialog",
                                "aria-expanded": "false", "aria-controls": ids + "-panel",
                                "aria-label": "Open chat: " + TITLE + keys, title: TITLE + keys });
  if (SHORTCUT) launcher.setAttribute("aria-keyshortcuts", SHORTCUT.label);
  launcher.appendChild(icon(BUBBLE, "26"));
  var titleEl = el("h2", { id: ids + "-title", className: "bc-title", text: TITLE });
  var closeBtn = el("button", { type: "button", className: "bc-close", "aria-label": "Close chat",
                                text: "×" });
  var newBtn = el("button", { type: "button", className: "bc-small", text: "New chat" });
  var personalizeBtn = el("button", { type: "button", className: "bc-small",
                                      text: "Personalize this chapter" });
  var translateBtn = el("button", { type: "button", className: "bc-small", lang: "en",
                                    text: "Translate to Urdu" });
  var log = el("div", { className: "bc-log", role: "log", "aria-live": "polite",
                        "aria-label": "Conversation", tabindex: "0" });
  var notice = el("p", { className: "bc-notice", role: "status", "aria-live": "polite" });
  var chipText = el("span", { className: "bc-chip-text" });
  var chipClear = el("button", { type: "button", className: "bc-chip-clear",
                                 "aria-label": "Do not ask about the selection", text: "×" });
  var chip = el("div", { className: "bc-chip", hidden: "" }, [chipText, chipClear]);
  var input = el("textarea", { id: ids + "-input", className: "bc-input", rows: "2",
                               maxlength: "4000", placeholder: "Ask about the book…" });
  var label = el("label", { "for": ids + "-input", className: "bc-sr", text: "Your question" });
  var sendBtn = el("button", { type: "submit", className: "bc-send", text: "Send" });
  var cancelBtn = el("button", { type: "button", className: "bc-cancel", text: "Cancel",
                                 hidden: "" });
  var form = el("form", { className: "bc-form" }, [label, input, cancelBtn, sendBtn]);
  var panel = el("div", { id: ids + "-panel", className: "bc-panel", role: "dialog",
                          "aria-modal": "true", "aria-labelledby": ids + "-title", hidden: "" }, [
    el("div", { className: "bc-head" }, [titleEl, closeBtn]),
    el("div", { className: "bc-tools" }, [newBtn, personalizeBtn, translateBtn]),
    log, notice, chip, form]);
  var askBtn = el("button", { type: "button", className: "bc-ask", hidden: "",
                              text: "Ask about this" });
  host.appendChild(panel);
  host.appendChild(launcher);

  function mount() {
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = new URL("__BOOKCHAT_CSS_URL__", scriptUrl).href;
    document.head.appendChild(link);
    // First in the body, outside any app root (React's #__docusaurus), so the launcher is the
    // first Tab stop of a fresh page instead of the last after a long sidebar.
    document.body.insertBefore(host, document.body.firstChild);
    document.body.appendChild(askBtn);
    mounted = true;
    queued.splice(0).forEach(run); // the host's calls, a token first, before anything is sent
    window.dispatchEvent(new CustomEvent("bookchat:ready"));
    state.messages.forEach(function (m) { renderMessage(m); });
    if (state.pending) resumePending();
  }

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    host.classList.add("bc-open");
    input.focus();
    log.scrollTop = log.scrollHeight;
    syncRatings();
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    host.classList.remove("bc-open");
    launcher.focus();
  }
  launcher.addEventListener("click", function () { panel.hidden ? open() : close(); });
  document.addEventListener("keydown", function (e) {
    var k = SHORTCUT, t = e.target;
    if (!k || e.defaultPrevented || e.code !== k.code || e.altKey !== k.alt ||
        e.shiftKey !== k.shift || e.ctrlKey !== k.ctrl || e.metaKey !== k.meta) return;
    // Not while the reader types in the page's own fields (Option+Shift+C types a letter).
    if (t && t.nodeType === 1 && !host.contains(t) &&
        (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    e.preventDefault();
    panel.hidden ? open() : close();
  });
  closeBtn.addEventListener("click", close);
  // The open panel is a modal dialog: Tab and Shift+Tab cycle inside it, wherever focus was.
  document.addEventListener("keydown", function (e) {
    if (panel.hidden || e.defaultPrevented) return;
    var inside = panel.contains(document.activeElement);
    if (e.key === "Escape" && (inside || document.activeElement === document.body)) {
      e.preventDefault(); close(); return;
    }
    if (e.key !== "Tab") return;
    var focusable = Array.prototype.filter.call(
      panel.querySelectorAll("button, a[href], textarea, input, [tabindex='0']"),
      function (n) { return !n.disabled && n.getClientRects().length > 0; });
    if (!focusable.length) return;
    var first = focusable[0], last = focusable[focusable.length - 1];
    var at = focusable.indexOf(document.activeElement);
    if (e.shiftKey && (at <= 0)) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && (at < 0 || at === focusable.length - 1)) { e.preventDefault(); first.focus(); }
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  form.addEventListener("submit", function (e) { e.preventDefault(); submit(); });
  cancelBtn.addEventListener("click", cancel);
  chipClear.addEventListener("click", function () { setSelection(""); input.focus(); });
  newBtn.addEventListener("click", function () {
    if (running || starting) return;
    state.conversationId = null; state.messages = []; state.pending = null; save();
    log.textContent = ""; say("");
  });
  personalizeBtn.addEventListener("click", function () { chapterJob("personalize"); });
  translateBtn.addEventListener("click", function () { chapterJob("translate"); });

  function say(text) { notice.textContent = text; }
  function setBusy(busy) {
    // A control that is hidden or disabled while focused drops focus out of the dialog.
    var focused = document.activeElement;
    sendBtn.disabled = busy; cancelBtn.hidden = !busy;
    personalizeBtn.disabled = translateBtn.disabled = newBtn.disabled = busy;
    if (!panel.hidden && (focused === sendBtn || focused === cancelBtn) &&
        (focused.disabled || focused.hidden)) input.focus();
  }
  function setSelection(text) {
    selection = text;
    chip.hidden = !text;
    chipText.textContent = text ? "About: “" + (text.length > 80 ? text.slice(0, 80) + "…" : text) + "”" : "";
  }

  // Messages: {role, text, citations, sources, incomplete, jobId, status, selection?}
  function renderMessage(m) {
    var node = m.node;
    if (!node) {
      node = el("div", { className: "bc-msg bc-" + m.role });
      Object.defineProperty(m, "node", { value: node, enumerable: false, writable: true });
      log.appendChild(node);
    }
    node.textContent = "";
    if (m.selection) node.appendChild(el("blockquote", { className: "bc-quote", text: m.selection }));
    if (m.role === "user") node.appendChild(el("p", { text: m.text }));
    else node.appendChild(renderMarkdown(m.text, m.citations));
    if (m.role === "assistant") {
      node.setAttribute("data-status", m.status || "");
      node.setAttribute("aria-busy", TERMINAL[m.status] ? "false" : "true");
      if (m.status === "cancelled") node.appendChild(el("p", { className: "bc-meta", text: "Cancelled." }));
      if (m.error) node.appendChild(el("p", { className: "bc-meta bc-err", text: m.error }));
      if (m.status === "incomplete") {
        node.appendChild(el("p", { className: "bc-meta bc-cut", role: "note", text: cutOffNote(m.incomplete) }));
      }
      // What the answer cites, by its [n]; then what was only retrieved, set apart and quieter.
      if (m.citations && m.citations.length) node.appendChild(sourceList(m.citations, "ol", "bc-sources", "Sources"));
      if (m.sources && m.sources.length) {
        var more = el("details", { className: "bc-more" });
        more.appendChild(el("summary", { text: "Also retrieved, not cited (" + m.sources.length + ")" }));
        more.appendChild(sourceList(m.sources, "ul", "bc-uncited", "Also retrieved, not cited"));
        node.appendChild(more);
      }
      if (m.jobId && !m.chapter && (m.status === "completed" || m.status === "incomplete")) {
        node.appendChild(ratingBar(m));
      }
    }
    log.scrollTop = log.scrollHeight;
  }

  // ---- rating an answer: thumbs, then a reason and a comment on a thumbs down ----
  // m.feedback is the server's rating (saved with the messages); ui[jobId] is this page's only.
  var ui = {};
  var REASONS = [["wrong", "Wrong"], ["unclear", "Unclear"], ["not_in_book", "Not in the book"],
                 ["other", "Other"]];
  function ratingBar(m) {
    var fb = m.feedback, mine = ui[m.jobId] || {};
    var bar = el("div", { className: "bc-rate", role: "group", "aria-label": "Rate this answer" });
    [["up", "Helpful"], ["down", "Not helpful"]].forEach(function (t) {
      var on = !!fb && fb.rating === t[0];
      var b = el("button", { type: "button", className: "bc-thumb bc-" + t[0], title: t[1],
                             "aria-label": t[1], "aria-pressed": String(on) }, [icon(THUMB, "18")]);
      b.addEventListener("click", function () { rate(m, on ? null : { rating: t[0] }, t[0]); });
      bar.appendChild(b);
    });
    bar.appendChild(el("span", { className: "bc-meta", role: "status", text: mine.note || "" }));
    if (mine.asking) bar.appendChild(reasonForm(m));
    return bar;
  }
  function reasonForm(m) {
    var fb = m.feedback || {}, name = ids + "-why-" + m.jobId;
    var set = el("fieldset", { className: "bc-why" }, [el("legend", { text: "What was wrong?" })]);
    REASONS.forEach(function (r) {
      var radio = el("input", { type: "radio", name: name, value: r[0] });
      radio.checked = fb.reason === r[0];
      set.appendChild(el("label", {}, [radio, document.createTextNode(" " + r[1])]));
    });
    var note = el("textarea", { id: name + "-c", className: "bc-input", rows: "2", maxlength: "2000" });
    note.value = fb.comment || "";
    var form = el("form", { className: "bc-why-form" }, [set,
      el("label", { "for": name + "-c", text: "Comment (optional)" }), note,
      el("button", { type: "submit", className: "bc-small", text: "Send feedback" })]);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var picked = form.querySelector("input:checked");
      var body = { rating: "down", comment: note.value.trim() || null };
      if (picked) body.reason = picked.value;
      rate(m, body, "down");
    });
    return form;
  }
  // body null withdraws the rating; a bare thumbs down asks why (optional) before thanking.
  async function rate(m, body, which) {
    var path = "/v1/chat/jobs/" + m.jobId + "/feedback", mine = ui[m.jobId] = {};
    try {
      var res = await call(body ? "POST" : "DELETE", path, body);
      m.feedback = res.status === 204 ? null : await json(res);
      mine.asking = !!body && body.rating === "down" && !("comment" in body);
      mine.note = !body ? "Rating removed." : mine.asking ? "" : "Thanks for your feedback.";
    } catch (err) {
      mine.note = explain(err);
    }
    save(); renderMessage(m);
    var target = m.node.querySelector(mine.asking ? ".bc-why input" : ".bc-" + which);
    if (target) target.focus();
  }
  // The server's ratings win over the saved ones (another tab, another device): read once.
  var synced = false;
  async function syncRatings() {
    if (synced || !state.conversationId || !state.messages.some(function (m) { return m.jobId; })) return;
    synced = true;
    try {
      var conv = await json(await call("GET", "/v1/conversations/" + state.conversationId));
      conv.messages.forEach(function (s) {
        state.messages.forEach(function (m) {
          if (s.role !== "assistant" || m.role !== "assistant" || m.jobId !== s.job_id) return;
          if (JSON.stringify(m.feedback || null) === JSON.stringify(s.feedback)) return;
          m.feedback = s.feedback; renderMessage(m);
        });
      });
      save();
    } catch (e) { /* the saved ratings stand */ }
  }

  function sourceList(items, tag, className, label) {
    var list = el(tag, { className: className, "aria-label": label });
    items.forEach(function (c) {
      var href = citationHref(c);
      var name = c.title + (c.heading && c.heading !== c.title ? " › " + c.heading : "");
      var li = el("li", tag === "ol" ? { value: String(c.n) } : {});
      li.appendChild(href ? el("a", { href: href, className: "bc-cite", text: name })
                          : el("span", { text: name }));
      list.appendChild(li);
    });
    return list;
  }
  function cutOffNote(details) {
    var reason = details && details.reason;
    return "The answer was cut off" + (reason === "content_filter" ? " by the model's content filter."
      : reason === "max_output_tokens" ? ": it reached the length limit." : ".");
  }

  // ---- talking to the API ----
  function Problem(status, body, headers, url) {
    this.status = status; this.body = body || {}; this.headers = headers; this.url = url || "";
  }
  function explain(err) {
    if (!(err instanceof Problem)) {
      return navigator.onLine === false ? "You are offline. Reconnect and try again."
        : "Cannot reach the chat service. Check your connection and try again.";
    }
    // Another origin's page cannot read Retry-After (not exposed by CORS); the body has it too.
    var b = err.body, wait = Number(err.headers && err.headers.get("Retry-After")) || b.retry_after;
    if (b.code === "origin_refused" || b.code === "origin_not_allowed") {
      return "The chat is not enabled on this site.";
    }
    if (b.code === "token_quota_exceeded") {
      var at = b.resets_at ? new Date(b.resets_at) : null;
      return "You have used today's answer allowance. It resets " +
        (at && !isNaN(at) ? "at " + at.toLocaleString() : "tomorrow") + ".";
    }
    if (b.code === "guest_limit_reached") { // the reader may not have asked anything yet
      return "Guest chats from your network are used up for now: readers who share a " +
        "connection, like a class, share its guest chats. Sign in to ask, or try again at " +
        localTime(b.resets_at, wait) + ".";
    }
    var seconds = wait ? wait + (wait === 1 ? " second." : " seconds.") : "a minute.";
    if (err.status === 429 && b.code === "rate_limited" && /^jobs-/.test(b.scope || "")) {
      return "You are asking too quickly. Try again in " + seconds;
    }
    if (err.status === 429) return "The chat service is busy. Try again in " + seconds;
    if (err.status === 403 && /\/personalize$/.test(err.url)) {
      return "Sign in to personalize chapters: it uses your saved reader profile.";
    }
    if (b.code === "profile_required") {
      return "Save your reader profile first, then personalize this chapter.";
    }
    if (b.code === "model_not_configured") {
      return "This needs a generative model, and none is configured on this server.";
    }
    if (err.status === 503) {
      return (b.detail || "The answering service is unavailable.") + " Try again shortly.";
    }
    if (err.status === 401) return "Please sign in again.";
    return b.detail || b.title || "Something went wrong (" + err.status + ").";
  }
  // When to come back, as the reader's clock shows it (rounded up to the minute).
  function localTime(iso, wait) {
    var t = iso ? new Date(iso).getTime() : NaN;
    if (isNaN(t)) t = Date.now() + (wait || 60) * 1000;
    var at = new Date(Math.ceil(t / 60000) * 60000);
    var format = { hour: "numeric", minute: "2-digit" };
    if (at.toDateString() !== new Date().toDateString()) format.weekday = "short"; // past midnight
    return at.toLocaleString([], format);
  }
  // fetch(); when it fails, find out whether the server is down or refuses this site.
  async function send(url, options) {
    try {
      return await fetch(url, options);
    } catch (err) {
      if ((options.signal && options.signal.aborted) || navigator.onLine === false) throw err;
      if (await refusesThisSite()) throw new Problem(0, { code: "origin_refused" }, null, url);
      throw err;
    }
  }
  // CORS blocks look like network errors. /healthz tells them apart: read with CORS it fails
  // for a refused site or a server that is down; without ("no-cors", an opaque answer) only
  // for a server that is down.
  async function refusesThisSite() {
    var probe = API + "/healthz";
    try { await fetch(probe, { cache: "no-store" }); return false; } catch (e) { /* see below */ }
    try { await fetch(probe, { mode: "no-cors", cache: "no-store" }); } catch (e) { return false; }
    if (!warned) {
      warned = true;
      console.error("bookchat: " + API + " does not allow pages on " + location.origin + ". " +
        "Add this exact origin to CORS_ORIGINS on the bookchat server, e.g. CORS_ORIGINS='[\"" +
        location.origin + "\"]' (a JSON list of origins), and restart it. If it is listed, " +
        "something answered without CORS headers: a proxy's error page, or another server.");
    }
    return true;
  }
  async function token(renew) {
    if (siteToken) return siteToken;
    var g = state.guest;
    if (!renew && g && g.expires > Date.now() + 30000) return g.token;
    var res = await send(API + "/v1/auth/guest", { method: "POST" });
    var body = await res.json().catch(function () { return {}; });
    if (!res.ok) throw new Problem(res.status, body, res.headers, res.url);
    state.guest = { token: body.access_token, expires: Date.now() + (body.expires_in || 900) * 1000 };
    if (g) { state.conversationId = null; } // a new guest cannot read the old one's chats
    save();
    return state.guest.token;
  }
  async function call(method, path, body, extra, signal) {
    for (var attempt = 0; ; attempt++) {
      var headers = Object.assign({ Authorization: "Bearer " + (await token(attempt > 0)) }, extra || {});
      if (body) headers["Content-Type"] = "application/json";
      var res = await send(API + path, { method: method, headers: headers, signal: signal,
                                         body: body ? JSON.stringify(body) : undefined });
      if (res.status === 401 && attempt === 0 && !siteToken) continue;
      if (res.status === 401 && siteToken) window.dispatchEvent(new CustomEvent("bookchat:token-expired"));
      return res;
    }
  }
  async function json(res) {
    var body = await res.json().catch(function () { return {}; });
    if (!res.ok) throw new Problem(res.status, body, res.headers, res.url);
    return body;
  }

  async function submit() {
    var text = input.value.trim();
    if (!text || running || starting) return;
    var body = { message: text, page_url: pagePath() };
    if (state.conversationId) body.conversation_id = state.conversationId;
    if (selection) body.selected_text = selection;
    var user = { role: "user", text: text, selection: selection || undefined };
    var asked = selection;
    state.messages.push(user); renderMessage(user);
    input.value = ""; setSelection(""); say("");
    var key = randomKey();
    var started = await startJob(function () {
      return call("POST", "/v1/chat/jobs", body, { "Idempotency-Key": key });
    });
    if (!started) { // refused or unsent: give the question back to try again
      forget(user);
      if (!input.value) input.value = text;
      if (!selection) setSelection(asked);
    }
  }
  function forget(m) {
    state.messages = state.messages.filter(function (x) { return x !== m; });
    if (m.node && m.node.parentNode) m.node.parentNode.removeChild(m.node);
    save();
  }
  async function chapterJob(kind) {
    if (running || starting) return;
    var body = { page_url: pagePath() };
    if (kind === "translate") body.language = "ur";
    var user = { role: "user", text: kind === "translate" ? "Translate this chapter to Urdu"
                                                        : "Personalize this chapter for me" };
    state.messages.push(user); renderMessage(user); say("");
    open();
    var key = randomKey();
    var started = await startJob(function () {
      return call("POST", "/v1/chapters/" + kind, body, { "Idempotency-Key": key });
    }, true);
    if (!started) forget(user);
  }
  // Post a job and follow it; false when no job was made (refused, or the request never left).
  async function startJob(post, chapter) {
    var msg = { role: "assistant", text: "", citations: [], status: "queued", chapter: !!chapter };
    starting = true; setBusy(true);
    try {
      var job = await json(await post());
      if (job.conversation_id) state.conversationId = job.conversation_id;
      msg.jobId = job.id;
      state.messages.push(msg); renderMessage(msg);
      if (TERMINAL[job.status]) { finishFrom(msg, job); return true; }
      state.pending = { jobId: job.id }; save();
      await follow(msg);
    } catch (err) {
      stopped(msg, err);
    } finally {
      starting = false;
    }
    return !!msg.jobId;
  }
  function stopped(msg, err) { // following failed for good: free the widget, keep the job to resume
    running = null;
    setBusy(false);
    if (msg.jobId) { msg.error = explain(err); renderMessage(msg); }
    say(explain(err));
    save();
  }
  function resumePending() {
    var msg = state.messages.filter(function (m) { return m.jobId === state.pending.jobId; })[0];
    if (!msg) { state.pending = null; save(); return; }
    setBusy(true);
    follow(msg).catch(function (err) { stopped(msg, err); });
  }
  function finishFrom(msg, job) {
    msg.text = job.answer || msg.text;
    msg.citations = job.citations || msg.citations;
    msg.sources = job.sources || msg.sources;
    msg.incomplete = job.incomplete_details || null;
    msg.status = job.status;
    if (job.feedback !== undefined) msg.feedback = job.feedback;
    if (job.status === "failed") msg.error = (job.error && job.error.message) || "The answer failed.";
    done(msg);
  }
  function done(msg) {
    running = null; state.pending = null;
    setBusy(false); renderMessage(msg); save();
  }

  // Follow a job: stream its events, resume after drops, fall back to long-polling.
  // Network loss and 503s are waited out (the reader can cancel); other problems end it.
  async function follow(msg) {
    var controller = new AbortController(), signal = controller.signal;
    running = { jobId: msg.jobId, controller: controller, msg: msg };
    var ev = { last: null, text: "", attempt: 0, finished: false };
    var fails = 0, polling = false;
    while (!ev.finished) {
      if (signal.aborted) return;
      var before = ev.last, failed = false;
      try {
        if (polling) await poll(msg, ev, signal);
        else if ((await stream(msg, ev, signal)) === "not-a-stream") polling = true;
      } catch (err) {
        if (signal.aborted) return;
        if (streamsBusy(err)) { // the reader's other tabs hold its streams: wait for a slot
          say("Your other open answers are still streaming; this one follows when one ends…");
          await sleep(1000 * (Number(err.body.retry_after) || 5), signal);
          continue;
        }
        if (err instanceof Problem && err.status !== 503) throw err;
        failed = true;
        say(explain(err) + " Reconnecting…");
      }
      if (ev.finished || (polling && !failed)) { fails = 0; continue; }
      fails = ev.last !== before ? 0 : fails + 1; // progress resets the count
      if (fails >= FAILS_BEFORE_POLLING) polling = true; // streams keep failing: a proxy?
      await sleep(Math.min(4000, 500 * Math.pow(2, fails)), signal);
    }
    if (!signal.aborted) say("");
  }
  function streamsBusy(err) {
    return err instanceof Problem && err.status === 429 && err.body.code === "too_many_streams";
  }
  async function stream(msg, ev, signal) {
    var extra = { Accept: "text/event-stream" };
    if (ev.last) extra["Last-Event-ID"] = ev.last;
    var res = await call("GET", "/v1/chat/jobs/" + msg.jobId + "/events", null, extra, signal);
    if (!res.ok) await json(res);
    var type = res.headers.get("Content-Type") || "";
    if (type.indexOf("text/event-stream") !== 0 || !res.body) return "not-a-stream";
    say("");
    var reader = res.body.getReader(), decoder = new TextDecoder(), buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (signal.aborted) return "cancelled"; // read before the abort, arrived after it
      if (chunk.done) return "ended";
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
      var cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        var frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        apply(msg, ev, parseFrame(frame));
        if (ev.finished) { reader.cancel().catch(function () {}); return "done"; }
      }
    }
  }
  function parseFrame(frame) {
    var out = { id: null, event: "message", data: [] };
    frame.split("\n").forEach(function (line) {
      if (!line || line.charAt(0) === ":") return;
      var i = line.indexOf(":"), field = i < 0 ? line : line.slice(0, i);
      var value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "id") out.id = value;
      else if (field === "event") out.event = value;
      else if (field === "data") out.data.push(value);
    });
    return out;
  }
  function apply(msg, ev, f) {
    if (!f.data.length) return;
    var d;
    try { d = JSON.parse(f.data.join("\n")); } catch (e) { return; }
    var e = f.event;
    // The documented client rule: a reset drops partial text; older attempts' deltas are ignored;
    // the first done or error ends the stream (an operator's retry starts a fresh one).
    if ((e === "status" || e === "reset") && d.attempt) ev.attempt = Math.max(ev.attempt, +d.attempt);
    if (e === "reset") ev.text = "";
    else if (e === "delta" && (d.attempt === undefined || +d.attempt >= ev.attempt)) ev.text += d.text || "";
    else if (e === "citations") { msg.citations = d.citations || []; msg.sources = d.sources || []; }
    else if (e === "status" && d.status) msg.status = d.status;
    else if (e === "error" && d.retry) { say(explain(new Problem(503, d))); return; } // outage: resume
    else if (e === "error") {
      msg.status = "failed"; msg.error = d.message || d.detail || "The answer failed.";
      ev.finished = true;
    } else if (e === "done") {
      msg.status = d.status || "completed"; msg.incomplete = d.incomplete_details || null;
      ev.finished = true;
    }
    if (f.id) ev.last = f.id;
    msg.text = ev.text;
    if (ev.finished) done(msg); else renderMessage(msg);
  }
  async function poll(msg, ev, signal) {
    var job = await json(await call("GET", "/v1/chat/jobs/" + msg.jobId + "?wait=" + WAIT_SECONDS,
                                    null, null, signal));
    say("");
    if (TERMINAL[job.status]) { ev.finished = true; finishFrom(msg, job); return; }
    msg.text = job.answer || msg.text; msg.status = job.status; renderMessage(msg);
  }
  async function cancel() {
    if (!running || running.cancelling) return;
    var r = running;
    r.cancelling = true;
    try {
      var job = await json(await call("POST", "/v1/chat/jobs/" + r.jobId + "/cancel"));
      r.controller.abort(); // no text after this: the stream is dropped before it is read again
      if (running === r) finishFrom(r.msg, job);
      if (r.msg.status === "cancelled") say("Answer cancelled."); // the stream may have said so first
    } catch (err) {
      if (!(err instanceof Problem && err.status === 409)) say(explain(err)); // 409: it finished
    } finally {
      r.cancelling = false;
    }
  }
  function sleep(ms, signal) {
    return new Promise(function (resolve) {
      var t = setTimeout(resolve, ms);
      signal.addEventListener("abort", function () { clearTimeout(t); resolve(); });
    });
  }
  function randomKey() {
    return (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
  }
  // The page's path in the book: the part after data-book's own path, if the page is under it.
  function pagePath() {
    var base = BOOK ? new URL(BOOK + "/", location.href) : null;
    var path = location.pathname;
    if (base && base.origin === location.origin && path.indexOf(base.pathname) === 0) {
      path = "/" + path.slice(base.pathname.length);
    }
    return path.slice(0, 2048);
  }

  // ---- "Ask about this" ----
  function selectedText() {
    var sel = window.getSelection();
    if (!sel || sel.isCollapsed || !sel.rangeCount) return null;
    var node = sel.anchorNode;
    if (node && host.contains(node.nodeType === 1 ? node : node.parentNode)) return null;
    var text = sel.toString().trim();
    return text.length >= 3 ? { text: text.slice(0, MAX_SELECTION), range: sel.getRangeAt(0) } : null;
  }
  function placeAsk() {
    var found = selectedText();
    if (!found) { askBtn.hidden = true; return; }
    var rect = found.range.getBoundingClientRect();
    askBtn.style.top = Math.max(4, rect.bottom + window.scrollY + 6) + "px";
    askBtn.style.left = Math.max(4, Math.min(rect.left + window.scrollX,
                                             window.scrollX + document.documentElement.clientWidth - 140)) + "px";
    askBtn.hidden = false;
  }
  document.addEventListener("mouseup", function () { setTimeout(placeAsk, 0); });
  document.addEventListener("keyup", function (e) { if (e.shiftKey || e.key === "Shift") placeAsk(); });
  askBtn.addEventListener("mousedown", function (e) { e.preventDefault(); }); // keep the selection
  askBtn.addEventListener("click", function () {
    var found = selectedText();
    askBtn.hidden = true;
    if (!found) return;
    setSelection(found.text);
    open();
  });

  // ---- public API: window.bookchat, with the calls queued before the script ran ----
  var queued = Array.isArray(window.bookchat) ? window.bookchat.slice() : [];
  var mounted = false;
  var api = {
    version: 1,
    /** Use the site's own access token (null: back to a guest token). */
    setToken: function (t) {
      if ((t || null) !== siteToken) { state.conversationId = null; save(); } // not theirs to read
      siteToken = t || null;
    },
    open: open,
    close: close,
    /** Run calls like ["setToken", token], ["open"] or function (bookchat) {...}, in order. */
    push: function () {
      for (var i = 0; i < arguments.length; i++) {
        if (mounted) run(arguments[i]); else queued.push(arguments[i]);
      }
      return queued.length;
    },
  };
  function run(call) {
    try {
      if (typeof call === "function") call(api);
      else if (Array.isArray(call) && /^(setToken|open|close)$/.test(call[0])) {
        api[call[0]].apply(api, call.slice(1));
      } else console.warn("bookchat: unknown call", call);
    } catch (e) {
      console.error("bookchat: a queued call failed", e);
    }
  }
  window.bookchat = api;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
