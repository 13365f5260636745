/* The demo page's paste box: read any article (text or a page's HTML) with the same player. */
(() => {
  "use strict";
  const form = document.getElementById("paste-form");
  const box = document.getElementById("paste-text");
  const error = document.getElementById("paste-error");
  const looksLikeHtml = (s) => /<\s*(html|body|article|p|div|h[1-6]|br|section|main)\b/i.test(s);

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = box.value.trim();
    error.textContent = "";
    if (!value) { error.textContent = "请先粘贴文章内容"; box.focus(); return; }
    if (!window.langdu) { error.textContent = "播放器尚未加载，请稍候再试"; return; }
    const what = looksLikeHtml(value) ? { html: value } : { text: value };
    window.langdu.read({
      ...what,
      into: document.getElementById("pasted"),
      mount: document.getElementById("pasted-player"),
    });
  });
})();
