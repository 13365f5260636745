/* langdu 朗读 player: the 智能朗读 button for a news page. No dependencies.
 *
 * Embed with one tag:
 *   <script src="https://reader.example/player/player.js" data-langdu-article="#content" defer></script>
 * or, for an article already posted:  data-langdu-id="<id>"
 * Optional: data-langdu-title="h1.title" (default: the page's first <h1>),
 *           data-langdu-voice="cmn-offline", data-langdu-voices (a picker of the voices the
 *           service has installed), and a placeholder element
 *           <div data-langdu-player></div> where the controls go (else a bar fixed to the
 *           bottom of the window, so the page never shifts; the page keeps room for it).
 * Listening analytics: the player reports play, pause, seek, speed, ended and the sentences
 * heard to the service (POST /v1/events, with navigator.sendBeacon when the page is hidden
 * or left, and every 30 s of a long listen), under a random id for this page view only: no
 * cookie, nothing stored in the browser. Off with Do Not Track, Global Privacy Control, or
 * data-langdu-analytics="off".
 * Script API: window.langdu.read({text | html, title?, into?, mount?}) reads other text
 * (the demo's paste box): `into` is where its sentences are shown and highlighted, `mount`
 * where the controls move while it is read.
 */
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script) return;
  const API = new URL(".", script.src).href.replace(/\/player\/$/, "/");
  const cfg = script.dataset;
  const SPEEDS = [0.75, 1, 1.25, 1.5, 2];
  const SPEED_KEY = "langdu.speed";
  const VOICE_KEY = "langdu.voice";
  const SLOW_MS = 6000;
  const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = new URL("player.css", script.src).href;
  document.head.appendChild(css);

  const el = (tag, attrs = {}, text = "") => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  };
  const fmt = (s) => {
    if (!isFinite(s) || s < 0) return "--:--";
    const m = Math.floor(s / 60), r = Math.floor(s % 60);
    return `${m}:${String(r).padStart(2, "0")}`;
  };
  const squash = (s) => s.replace(/\s+/g, "");
  // Icons drawn inline: no icon font to load, nothing that depends on the reader's fonts.
  const ICONS = {
    prev: "M6 5h2v14H6zM9.5 12 19 5v14z",
    next: "M16 5h2v14h-2zM5 5l9.5 7L5 19z",
    play: "M7 4.5v15L19.5 12z",
    pause: "M6.5 5h4v14h-4zM13.5 5h4v14h-4z",
    close: "M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z",
  };
  const icon = (name) => `<svg viewBox="0 0 24 24" width="1.25em" height="1.25em" aria-hidden="true" focusable="false"><path fill="currentColor" d="${ICONS[name]}"/></svg>`;

  /* ---- the widget ------------------------------------------------------------------ */
  const root = el("div", { class: "langdu", role: "region", "aria-label": "智能朗读播放器" });
  const start = el("button", { type: "button", class: "langdu-start", "aria-label": "智能朗读：朗读全文" }, "智能朗读");
  const controls = el("div", { class: "langdu-controls", hidden: "" });
  const prev = el("button", { type: "button", class: "langdu-prev", "aria-label": "上一句" });
  const play = el("button", { type: "button", class: "langdu-play", "aria-label": "暂停" });
  const next = el("button", { type: "button", class: "langdu-next", "aria-label": "下一句" });
  prev.innerHTML = icon("prev");
  play.innerHTML = icon("pause");
  next.innerHTML = icon("next");
  const seek = el("input", { type: "range", class: "langdu-seek", min: "0", max: "0", step: "1", value: "0", "aria-label": "播放进度", "aria-valuetext": "0:00" });
  const time = el("span", { class: "langdu-time", "aria-hidden": "true" }, "0:00 / --:--");
  const speedLabel = el("label", { class: "langdu-speed" });
  const speed = el("select", { "aria-label": "朗读速度" });
  for (const s of SPEEDS) speed.appendChild(el("option", { value: String(s) }, `${s}×`));
  speedLabel.append(speed);
  const close = el("button", { type: "button", class: "langdu-close", "aria-label": "关闭朗读" });
  close.innerHTML = icon("close");
  // The voices the service has installed, offered when the page asks for a picker.
  const voiceLabel = el("label", { class: "langdu-voice", hidden: "" });
  const voice = el("select", { "aria-label": "朗读语音" });
  voiceLabel.append(voice);
  const retry = el("button", { type: "button", class: "langdu-retry", hidden: "" }, "重试");
  const status = el("span", { class: "langdu-status", role: "status", "aria-live": "polite" });
  const audio = el("audio", { preload: "none" });
  controls.append(prev, play, next, seek, time, speedLabel, close);
  root.append(start, voiceLabel, controls, retry, status, audio);

  const mount = document.querySelector("[data-langdu-player]");
  if (mount) mount.appendChild(root);
  else {
    root.classList.add("langdu-floating");
    document.body.appendChild(root);
    // Keep the end of the page reachable above the bar (WCAG 2.4.11): room after the
    // content, scroll padding for scrolling to a target, and focus never left under it.
    const spacer = el("div", { class: "langdu-spacer", "aria-hidden": "true" });
    root.before(spacer);
    const reserve = () => {
      const h = root.offsetHeight;
      spacer.style.height = `${h}px`;
      document.documentElement.style.scrollPaddingBottom = `${h + 8}px`;
    };
    if (window.ResizeObserver) new ResizeObserver(reserve).observe(root);
    reserve();
    document.addEventListener("focusin", (e) => {
      const target = e.target;
      if (root.contains(target) || !target.getBoundingClientRect) return;
      // After the browser's own scrolling to the focused element, which ignores the bar.
      requestAnimationFrame(() => {
        const box = target.getBoundingClientRect(), top = root.getBoundingClientRect().top;
        if (box.bottom > top) window.scrollBy(0, box.bottom - top + 8);
      });
    });
  }

  let saved = parseFloat(localStorage.getItem(SPEED_KEY) || "1");
  if (!SPEEDS.includes(saved)) saved = 1;
  speed.value = String(saved);

  /* ---- state -------------------------------------------------------------------- */
  let article = null;        // {id, audio_url, timings_url}
  let timings = null;        // {duration_ms, sentences: [...]}, grows while synthesizing
  let final = false;         // timings (and the audio file) are complete
  let ranges = [];           // per sentence index {range, words: [Range|null]}, or null
  let current = -1;
  let currentWord = -1;      // the word being spoken inside the current sentence
  let slowTimer = 0;
  let pollTimer = 0;
  let resumeAt = null;       // our stream was cut by a voice change: resume at this sentence
  let source = null;         // other text to read (window.langdu.read), else the page's article
  let shown = 0;             // sentences of `source` written into source.into
  // Names this player to the service, so it can tell us where a cut stream resumes.
  const listener = Array.from(crypto.getRandomValues(new Uint8Array(12)),
    (b) => b.toString(16).padStart(2, "0")).join("");
  const named = (url) => url + (url.includes("?") ? "&" : "?") + "listener=" + listener;
  const live = (url) => !url.includes("/renders/");

  /* ---- listening analytics ------------------------------------------------------ */
  const analyticsOn = cfg.langduAnalytics !== "off" && navigator.doNotTrack !== "1"
    && window.doNotTrack !== "1" && navigator.globalPrivacyControl !== true;
  const session = Array.from(crypto.getRandomValues(new Uint8Array(12)),
    (b) => b.toString(16).padStart(2, "0")).join("");
  let pending = [];          // events not sent yet, of `reported` (an article id)
  let reported = null;
  let heardNow = new Set();  // sentences heard since the last progress report
  let listenedMs = 0;        // audio heard since then (at `listenedSpeed`)
  let listenedSpeed = 1;
  let lastAt = null;         // audio time at the last timeupdate while playing
  const posMs = () => Math.round(audio.currentTime * 1000);
  function progress() {
    if (!heardNow.size && listenedMs < 1) return;
    pending.push({ type: "progress", t: Date.now(), position_ms: posMs(), speed: listenedSpeed,
      listened_ms: Math.round(listenedMs), heard: [...heardNow] });
    heardNow = new Set();
    listenedMs = 0;
  }
  function flush() {
    if (!analyticsOn || !reported) return;
    progress();
    if (!pending.length) return;
    const body = JSON.stringify({ article: reported, session, client: "player", events: pending });
    pending = [];
    const url = `${API}v1/events`;
    // text/plain: a simple request, no CORS preflight (the service reads it as JSON).
    const blob = new Blob([body], { type: "text/plain;charset=UTF-8" });
    if (!(navigator.sendBeacon && navigator.sendBeacon(url, blob))) {
      fetch(url, { method: "POST", body, keepalive: true,
        headers: { "Content-Type": "text/plain;charset=UTF-8" } }).catch(() => {});
    }
  }
  function track(type, extra = {}) {
    if (!analyticsOn || !article || source) return;  // the page's article, not pasted text
    if (reported !== article.id) { flush(); reported = article.id; }
    if (type !== "play") progress();
    pending.push({ type, t: Date.now(), position_ms: posMs(), ...extra });
    if (pending.length >= 50) flush();
  }
  function listened() {
    if (!analyticsOn || !article || source || audio.paused || audio.seeking) { lastAt = null; return; }
    const now = audio.currentTime;
    if (lastAt !== null && now > lastAt && now - lastAt < 2) {
      if (audio.playbackRate !== listenedSpeed) { progress(); listenedSpeed = audio.playbackRate; }
      listenedMs += (now - lastAt) * 1000;
    }
    lastAt = now;
  }
  setInterval(() => { if (!audio.paused) flush(); }, 30000);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") flush(); });
  window.addEventListener("pagehide", flush);

  const say = (text) => { status.textContent = text; };
  const fail = (text) => {
    say(text);
    retry.hidden = false;
    start.disabled = false;
    root.classList.add("langdu-error");
    // The button pressed may be gone or disabled: never leave focus at the top of the page.
    if (!document.activeElement || document.activeElement === document.body) retry.focus();
  };

  /* ---- page text -> sentence ranges --------------------------------------------- */
  const scopes = () => {
    if (source) return source.into ? [source.into] : [];
    const out = [];
    const title = document.querySelector(cfg.langduTitle || "h1");
    if (title) out.push(title);
    const body = cfg.langduArticle ? document.querySelector(cfg.langduArticle) : null;
    if (body && !out.some((n) => n.contains(body))) out.push(body);
    return out;
  };

  function mapSentences() {
    // Every non-space character of the page's article text, with where it lives.
    const chars = [];
    for (const scope of scopes()) {
      const walker = document.createTreeWalker(scope, NodeFilter.SHOW_TEXT, {
        acceptNode: (n) => root.contains(n) || /^(SCRIPT|STYLE)$/.test(n.parentNode.nodeName)
          ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
      });
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const t = n.nodeValue;
        for (let i = 0; i < t.length; i++) if (!/\s/.test(t[i])) chars.push([n, i, t[i]]);
      }
    }
    const text = chars.map((c) => c[2]).join("");
    let cursor = 0;
    ranges = (timings ? timings.sentences : []).map((s) => {
      const want = squash(s.text);
      if (!want) return null;
      let at = text.indexOf(want, cursor);
      if (at < 0) at = text.indexOf(want);
      if (at < 0) return null;
      cursor = at + want.length;
      const range = document.createRange();
      const a = chars[at], b = chars[at + want.length - 1];
      range.setStart(a[0], a[1]);
      range.setEnd(b[0], b[1] + 1);
      // Each word's place on the page: its offset in the sentence's text, counted without
      // the spaces the page does not show.
      const squashed = [];
      let k = 0;
      for (const c of s.text) squashed.push(/\s/.test(c) ? k : k++);
      const words = (s.words || []).map((w) => {
        const from = squashed[w.offset], len = squash(w.text).length;
        if (from === undefined || !len || from + len > want.length) return null;
        const r = document.createRange();
        const x = chars[at + from], y = chars[at + from + len - 1];
        r.setStart(x[0], x[1]);
        r.setEnd(y[0], y[1] + 1);
        return r;
      });
      return { range, words };
    });
  }

  function highlightWord(index) {
    if (index === currentWord) return;
    currentWord = index;
    root.dataset.word = String(index);
    const range = index >= 0 && ranges[current] ? ranges[current].words[index] : null;
    if (!(window.CSS && CSS.highlights)) return;
    if (range) CSS.highlights.set("langdu-word", new Highlight(range));
    else CSS.highlights.delete("langdu-word");
  }

  const wordAt = (ms) => {
    const s = timings && timings.sentences[current];
    if (!s || !s.words) return -1;
    let found = -1;
    for (let i = 0; i < s.words.length; i++) {
      if (s.words[i].start_ms <= ms + 1) found = i; else break;
    }
    return found;
  };

  function highlight(index) {
    if (index >= 0 && !audio.paused && !source && article) heardNow.add(index);
    if (index === current) return;
    current = index;
    currentWord = -2;
    root.dataset.sentence = String(index);
    const range = ranges[index] ? ranges[index].range : null;
    if (window.CSS && CSS.highlights) {
      if (range) CSS.highlights.set("langdu-sentence", new Highlight(range));
      else CSS.highlights.delete("langdu-sentence");
    }
    if (index >= 0) say(`正在朗读第${index + 1}句`);
    if (!range) return;
    const box = range.getBoundingClientRect();
    const margin = window.innerHeight * 0.15;
    if (box.top < margin || box.bottom > window.innerHeight - margin) {
      const node = range.startContainer.parentElement;
      node.scrollIntoView({ block: "center", behavior: reduceMotion.matches ? "auto" : "smooth" });
    }
  }

  const sentenceAt = (ms) => {
    if (!timings) return -1;
    const list = timings.sentences;
    let found = -1;
    for (let i = 0; i < list.length; i++) {
      if (list[i].start_ms <= ms + 1) found = i; else break;
    }
    return found;
  };

  // Other text being read (the demo's paste box) is shown sentence by sentence as its
  // timings arrive, paragraph by paragraph, so that it can be highlighted and clicked.
  function showSource() {
    if (!source || !source.into || !timings || timings.sentences.length === shown) return;
    const paragraphs = [];
    let last = null;
    for (const s of timings.sentences) {
      if (!paragraphs.length || s.paragraph !== last) paragraphs.push([]);
      paragraphs[paragraphs.length - 1].push(s.text);
      last = s.paragraph;
    }
    source.into.replaceChildren(...paragraphs.map((texts) => el("p", {}, texts.join(""))));
    shown = timings.sentences.length;
  }

  // Forget the reading's timings and highlights (a new reading, or the player closed).
  function forgetReading() {
    clearTimeout(pollTimer);
    timings = null;
    final = false;
    ranges = [];
    shown = 0;
    current = -1;
    currentWord = -1;
    if (window.CSS && CSS.highlights) {
      CSS.highlights.delete("langdu-sentence");
      CSS.highlights.delete("langdu-word");
    }
  }

  /* ---- talking to the service --------------------------------------------------- */
  const chosenVoice = () => (voiceLabel.hidden ? cfg.langduVoice : voice.value) || undefined;

  async function post() {
    if (source) {
      const body = { title: source.title || undefined, voice: chosenVoice() };
      if (source.html) body.html = source.html; else body.text = source.text;
      return send(body);
    }
    if (cfg.langduId) {
      const res = await fetch(`${API}v1/articles/${encodeURIComponent(cfg.langduId)}`);
      if (!res.ok) throw new Error((await res.json().catch(() => ({}))).detail || `HTTP ${res.status}`);
      return res.json();
    }
    const parts = scopes();
    const titleNode = document.querySelector(cfg.langduTitle || "h1");
    const html = parts.map((n) => n.outerHTML).join("\n");
    const body = { html, title: titleNode ? titleNode.textContent.trim() : undefined, url: location.href };
    if (chosenVoice()) body.voice = chosenVoice();
    return send(body);
  }

  async function send(body) {
    const res = await fetch(`${API}v1/articles`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.detail || `HTTP ${res.status}`);
    return data;
  }

  async function loadTimings() {
    clearTimeout(pollTimer);
    try {
      const url = live(article.audio_url) ? named(article.timings_url) : article.timings_url;
      const res = await fetch(url, { cache: "no-store" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const wasFinal = final;
      const next = await res.json();
      if (next.resume_at != null) {
        // The voice failed after we heard part of it; the service reads the article again
        // in its fallback voice. Our stream ends cleanly after a whole sentence, and we
        // resume there. Until then the timings we have match what is playing.
        resumeAt = next.resume_at;
        return;
      }
      timings = next;
      final = res.headers.get("X-Langdu-Status") !== "synthesizing";
      showSource();
      mapSentences();
      seek.max = String(Math.floor(timings.duration_ms / 1000));
      if (final && !wasFinal && !audio.paused && audio.currentTime > 0 && !isFinite(audio.duration)) {
        // The live stream has become a stored file: reopen it so that seeking works.
        const at = audio.currentTime;
        audio.src = article.audio_url;
        audio.currentTime = at;
        audio.play().catch(() => {});
      }
    } catch (err) {
      // Timings are an extra: audio keeps playing; try again shortly.
    }
    // Soon after the start every sentence counts; later the audio is far ahead of the ear.
    if (!final && resumeAt === null) pollTimer = setTimeout(loadTimings, timings && timings.sentences.length > 3 ? 1500 : 250);
    render();
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function resumeInNewVoice() {
    // Carry on at the sentence after the last one heard, in the new reading, once it is
    // complete (the fallback voice is fast), without the reader pressing anything.
    const index = resumeAt;
    resumeAt = null;
    say("语音已切换，正在继续朗读…");
    let info = null;
    for (let i = 0; i < 600; i++) {
      try {
        const res = await fetch(`${API}v1/articles/${encodeURIComponent(article.id)}`, { cache: "no-store" });
        info = await res.json();
        if (info.status === "ready" || info.status === "failed") break;
      } catch (err) { /* keep trying */ }
      await sleep(500);
    }
    if (!info || info.status !== "ready") { fail("朗读失败，请点“重试”"); return; }
    article = info;
    timings = null;
    final = false;
    await loadTimings();
    if (!timings || index >= timings.sentences.length) { say("朗读完毕"); return; }
    audio.src = article.audio_url;
    audio.currentTime = timings.sentences[index].start_ms / 1000;
    audio.play().catch(() => fail("浏览器未能继续播放，请点“重试”"));
  }

  async function begin(atMs) {
    const from = document.activeElement;
    retry.hidden = true;
    root.classList.remove("langdu-error");
    start.disabled = true;
    say("正在准备朗读…");
    try {
      article = await post();
    } catch (err) {
      fail(err instanceof TypeError ? "无法连接朗读服务，请检查网络后重试" : `朗读失败：${err.message}`);
      return;
    }
    forgetReading();
    controls.hidden = false;
    // Focus goes to the control that replaced the one pressed, never to the top of the page.
    const now = document.activeElement;
    if (now !== voice && (!now || now === from || now === document.body || now === start || now === retry)) {
      play.focus();
    }
    start.hidden = true;
    resumeAt = null;
    audio.src = live(article.audio_url) ? named(article.audio_url) : article.audio_url;
    audio.playbackRate = parseFloat(speed.value);
    loadTimings();
    if (atMs) audio.currentTime = atMs / 1000;
    try {
      await audio.play();
    } catch (err) {
      fail("浏览器未能开始播放，请点“重试”");
      start.hidden = false;
      retry.focus();
      return;
    }
    start.disabled = false;
  }

  /* ---- rendering and events ----------------------------------------------------- */
  function render() {
    const t = audio.currentTime;
    const total = final && timings ? timings.duration_ms / 1000
      : (isFinite(audio.duration) ? audio.duration : NaN);
    time.textContent = `${fmt(t)} / ${fmt(total)}`;
    if (!seek.matches(":active")) seek.value = String(Math.floor(t));
    seek.setAttribute("aria-valuetext", `${fmt(t)}，共${fmt(total)}`);
    const label = audio.paused ? "播放" : "暂停";
    if (play.getAttribute("aria-label") !== label) {
      play.innerHTML = icon(audio.paused ? "play" : "pause");
      play.setAttribute("aria-label", label);
    }
    highlight(sentenceAt(t * 1000));
    highlightWord(wordAt(t * 1000));
  }

  // Words go by faster than timeupdate fires (4 times a second): follow them every frame.
  let following = false;     // one frame loop at a time, however often play fires
  const follow = () => {
    if (audio.paused) { following = false; return; }
    const ms = audio.currentTime * 1000;
    highlight(sentenceAt(ms));
    highlightWord(wordAt(ms));
    requestAnimationFrame(follow);
  };
  audio.addEventListener("play", () => {
    if (!following) { following = true; requestAnimationFrame(follow); }
  });

  function goTo(index) {
    if (!timings || !timings.sentences.length) return;
    const list = timings.sentences;
    const i = Math.max(0, Math.min(list.length - 1, index));
    audio.currentTime = list[i].start_ms / 1000;
    if (audio.paused) audio.play().catch(() => {});
    render();
  }

  function closePlayer() {
    audio.pause();
    flush();
    clearTimeout(slowTimer);
    audio.removeAttribute("src");
    audio.load();  // stops a live stream's download
    article = null;
    forgetReading();
    controls.hidden = true;
    retry.hidden = true;
    start.hidden = false;
    start.disabled = false;
    if (source && source.home) source.home.appendChild(root);  // back where the page put it
    source = null;
    delete root.dataset.sentence;
    root.dataset.playing = "false";
    start.focus();
    say("已关闭朗读");
  }

  async function loadVoices() {
    if (!("langduVoices" in cfg) || cfg.langduId) return;
    try {
      const res = await fetch(`${API}v1/voices`);
      if (!res.ok) return;
      const data = await res.json();
      // Voices that run on the service's own machine first; remote ones are marked.
      const list = data.voices.slice().sort((a, b) => Number(!!a.remote) - Number(!!b.remote));
      for (const v of list) {
        const label = `${v.name || v.id}${v.remote ? "（在线）" : ""}`;
        voice.appendChild(el("option", { value: v.id }, label));
      }
      const wanted = localStorage.getItem(VOICE_KEY) || cfg.langduVoice || data.default;
      voice.value = list.some((v) => v.id === wanted) ? wanted : data.default;
      voiceLabel.hidden = list.length < 2;
    } catch (err) { /* no picker: the service's default voice reads */ }
  }
  loadVoices();

  voice.addEventListener("change", () => {
    localStorage.setItem(VOICE_KEY, voice.value);
    const name = voice.selectedOptions[0] ? voice.selectedOptions[0].textContent : voice.value;
    if (article && !controls.hidden) { say(`已切换为${name}，从头朗读`); begin(0); }
    else say(`朗读语音：${name}`);
  });

  start.addEventListener("click", () => begin(0));
  close.addEventListener("click", closePlayer);
  retry.addEventListener("click", () => {
    if (article && audio.error) {
      play.focus();
      retry.hidden = true;
      audio.load();
      audio.play().catch(() => {});
    }
    else begin(0);
  });
  play.addEventListener("click", () => {
    if (audio.paused) audio.play().catch(() => fail("无法播放，请点“重试”")); else audio.pause();
  });
  prev.addEventListener("click", () => {
    // Like a music player: back to the start of this sentence, or to the one before it.
    const into = audio.currentTime * 1000 - (timings?.sentences[current]?.start_ms ?? 0);
    goTo(into > 1500 ? current : current - 1);
  });
  next.addEventListener("click", () => goTo(current + 1));
  seek.addEventListener("input", () => { audio.currentTime = parseFloat(seek.value); render(); });
  speed.addEventListener("change", () => {
    const v = parseFloat(speed.value);
    audio.playbackRate = v;
    localStorage.setItem(SPEED_KEY, String(v));
    say(`朗读速度 ${v}×`);
  });
  root.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !controls.hidden) { closePlayer(); e.preventDefault(); return; }
    if (e.target === seek || e.target === speed || e.target === voice || !article) return;
    if (e.key === "ArrowRight") { goTo(current + 1); e.preventDefault(); }
    else if (e.key === "ArrowLeft") { goTo(current - 1); e.preventDefault(); }
  });
  for (const ev of ["timeupdate", "play", "pause", "seeked", "durationchange"]) {
    audio.addEventListener(ev, render);
  }
  audio.addEventListener("timeupdate", listened);
  audio.addEventListener("play", () => {
    lastAt = null;
    track("play", { speed: audio.playbackRate, voice: article && (article.degraded || article.voice),
      degraded: !!(article && article.degraded) });
  });
  audio.addEventListener("pause", () => { listened(); track("pause"); lastAt = null; });
  audio.addEventListener("seeking", () => { listened(); lastAt = null; });
  audio.addEventListener("seeked", () => track("seek"));
  audio.addEventListener("ratechange", () => { listened(); track("speed", { speed: audio.playbackRate }); });
  audio.addEventListener("playing", () => {
    clearTimeout(slowTimer);
    root.classList.remove("langdu-error");
    root.dataset.playing = "true";
    if (current >= 0) say(`正在朗读第${current + 1}句`); else say("正在朗读");
  });
  audio.addEventListener("pause", () => { root.dataset.playing = "false"; say("已暂停"); });
  audio.addEventListener("waiting", () => {
    clearTimeout(slowTimer);
    slowTimer = setTimeout(() => say("网络较慢，正在缓冲…"), SLOW_MS);
  });
  audio.addEventListener("ended", async () => {
    root.dataset.playing = "false";
    if (!final && resumeAt === null) await loadTimings();  // was our stream cut?
    if (resumeAt !== null) { resumeInNewVoice(); return; }
    track("ended");
    flush();
    say("朗读完毕");
  });
  audio.addEventListener("error", () => {
    clearTimeout(slowTimer);
    fail("音频加载失败，请点“重试”");
  });

  // Clicking a sentence in the article (once reading has started) reads from there.
  document.addEventListener("click", (e) => {
    if (!article || !timings || root.contains(e.target) || e.target.closest("a, button, input, select, textarea")) return;
    if (!window.getSelection().isCollapsed) return;
    const pos = document.caretRangeFromPoint ? document.caretRangeFromPoint(e.clientX, e.clientY) : null;
    if (!pos) return;
    const index = ranges.findIndex((r) => r && r.range.isPointInRange(pos.startContainer, pos.startOffset));
    if (index >= 0) goTo(index);
  });

  // Read other text than the page's article with the same controls (the demo's paste box).
  function read(what) {
    if (!what || !(what.text || what.html)) throw new TypeError("langdu.read needs text or html");
    if (source && source.home) source.home.appendChild(root);
    source = { text: what.text, html: what.html, title: what.title, into: what.into || null,
      home: what.mount ? root.parentNode : null };
    if (what.into) what.into.replaceChildren();
    if (what.mount) what.mount.appendChild(root);
    start.focus();  // begin() hands focus on to the play control
    return begin(0);
  }

  window.langdu = { audio, listener, session, read, close: closePlayer, flush,
    get analytics() { return analyticsOn; }, get sentence() { return current; },
    get word() { return currentWord; },
    get article() { return article; } };
})();
