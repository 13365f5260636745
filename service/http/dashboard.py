"""The listening dashboard's pages (`/dashboard`), drawn here: HTML with SVG charts made by
the server, nothing loaded from elsewhere. Every chart is an image with a text summary and
its figures again as a table, so a screen reader gets all of it."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import urlencode

from service.core.analytics import ArticleStats, DayFigures, Figures, Overview

_STYLE = """
:root { color-scheme: light; --ink: #1f2328; --muted: #57606a; --line: #d0d7de;
  --bar: #1f6feb; --heard: 31, 111, 235; font-family: system-ui, "PingFang SC",
  "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; color: var(--ink); }
body { margin: 0 auto; max-width: 72rem; padding: 1rem 1.5rem 3rem; line-height: 1.6; }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: baseline;
  justify-content: space-between; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.5rem; margin: .5rem 0; } h2 { font-size: 1.15rem; margin-top: 2rem; }
a { color: #0550ae; } a:focus-visible, button:focus-visible, input:focus-visible {
  outline: 3px solid #0969da; outline-offset: 2px; }
form { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
input, button { font: inherit; padding: .2rem .4rem; }
.totals { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr));
  gap: .75rem; margin: 1rem 0; padding: 0; }
.totals div { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .75rem; }
.totals dt { color: var(--muted); font-size: .9rem; } .totals dd { margin: 0;
  font-size: 1.4rem; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; } figcaption { color: var(--muted); font-size: .9rem; }
svg text { font-size: 11px; fill: var(--muted); }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .75rem; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
.article-text p { font-size: 1.1rem; }
.article-text .s { border-radius: 3px; padding: 0 1px; }
.legend { display: flex; align-items: center; gap: .5rem; color: var(--muted); }
.legend span.scale { width: 10rem; height: .8rem; border: 1px solid var(--line);
  background: linear-gradient(to right, rgba(var(--heard), .04), rgba(var(--heard), .7)); }
.note { color: var(--muted); }
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _duration(ms: int) -> str:
    minutes = ms // 60_000
    if minutes >= 60:
        return f"{minutes // 60}小时{minutes % 60}分"
    return f"{minutes}分{ms // 1000 % 60}秒"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


def _range_form(action: str, first: str, last: str) -> str:
    return (
        f'<form method="get" action="{escape(action)}" aria-label="日期范围">'
        f'<label>从 <input type="date" name="from" value="{first}"></label>'
        f'<label>到 <input type="date" name="to" value="{last}"></label>'
        '<button type="submit">查看</button></form>'
    )


def _totals(f: Figures) -> str:
    items = [
        ("播放", str(f.plays)),
        ("会话", str(f.sessions)),
        ("收听时长", _duration(f.listened_ms)),
        ("听完", _share(f.quartiles[3], f.plays)),
        ("播客下载", str(f.downloads)),
    ]
    cells = "".join(f"<div><dt>{k}</dt><dd>{escape(v)}</dd></div>" for k, v in items)
    return f'<dl class="totals">{cells}</dl>'


def bar_chart(
    bars: Sequence[tuple[str, float]], *, label: str, unit: str = "", width: int = 720
) -> str:
    """Vertical bars, one per (name, value), as an SVG image labelled `label`."""
    height, top, bottom, left = 180, 12, 28, 36
    peak = max((v for _, v in bars), default=0) or 1
    step = (width - left) / max(1, len(bars))
    parts = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}"'
        ' stroke="#d0d7de"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{peak:g}{escape(unit)}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">0</text>',
    ]
    every = max(1, len(bars) // 10)
    for i, (name, value) in enumerate(bars):
        h = (height - top - bottom) * value / peak
        x = left + i * step + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{step * 0.7:.1f}"'
            f' height="{h:.1f}" fill="var(--bar)"><title>{escape(name)}：{value:g}'
            f"{escape(unit)}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{height - 10}" text-anchor="middle">'
                f"{escape(name)}</text>"
            )
    return (
        f'<svg role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}"'
        f' width="100%" style="max-width:{width}px">{"".join(parts)}</svg>'
    )


def reach_chart(reach: Sequence[float], *, label: str, width: int = 720) -> str:
    """The share of plays that heard each sentence, as a line over the sentences."""
    height, top, bottom, left = 160, 10, 24, 40
    n = len(reach)
    if not n:
        return ""
    step = (width - left) / max(1, n - 1)
    points = " ".join(
        f"{left + i * step:.1f},{top + (height - top - bottom) * (1 - r):.1f}"
        for i, r in enumerate(reach)
    )
    return (
        f'<svg role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}"'
        f' width="100%" style="max-width:{width}px">'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}"'
        ' stroke="#d0d7de"/>'
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">100%</text>'
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">0</text>'
        f'<text x="{left}" y="{height - 6}">第1句</text>'
        f'<text x="{width}" y="{height - 6}" text-anchor="end">第{n}句</text>'
        f'<polyline points="{points}" fill="none" stroke="var(--bar)" stroke-width="2"/>'
        "</svg>"
    )


def _days_table(days: Sequence[DayFigures]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{d.day}</th><td>{d.figures.plays}</td>'
        f"<td>{d.figures.sessions}</td><td>{_duration(d.figures.listened_ms)}</td></tr>"
        for d in days
    )
    return (
        '<table><caption>每日数字</caption><thead><tr><th scope="col">日期</th>'
        '<th scope="col">播放</th><th scope="col">会话</th><th scope="col">收听时长</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def overview_page(o: Overview) -> str:
    """`/dashboard`: plays over time and the most-listened articles."""
    period = urlencode({"from": o.first, "to": o.last})
    peak = max(o.days, key=lambda d: d.figures.plays, default=None)
    summary = f"{o.first} 至 {o.last} 每日播放次数，共 {o.figures.plays} 次"
    if peak and o.figures.plays:
        summary += f"，最多的一天是 {peak.day}（{peak.figures.plays} 次）"
    chart = bar_chart([(d.day[5:], d.figures.plays) for d in o.days], label=summary)
    rows = "".join(
        f'<tr><td><a href="/dashboard/articles/{a.article_id}?{period}">'
        f"{escape(a.title or a.article_id)}</a></td><td>{a.figures.plays}</td>"
        f"<td>{a.figures.sessions}</td><td>{_duration(a.figures.listened_ms)}</td>"
        f"<td>{_share(a.figures.quartiles[1], a.figures.plays)}</td>"
        f"<td>{_share(a.figures.quartiles[3], a.figures.plays)}</td></tr>"
        for a in o.articles
    )
    articles = (
        "<table><caption>收听最多的文章</caption><thead><tr>"
        '<th scope="col">文章</th><th scope="col">播放</th><th scope="col">会话</th>'
        '<th scope="col">收听时长</th><th scope="col">听过一半</th>'
        f'<th scope="col">听完</th></tr></thead><tbody>{rows}</tbody></table>'
        if o.articles
        else '<p class="note">这段时间还没有人收听。</p>'
    )
    body = (
        f"<header><h1>朗读统计</h1>{_range_form('/dashboard', o.first, o.last)}</header><main>"
        f'<section aria-labelledby="t-total"><h2 id="t-total">总览</h2>{_totals(o.figures)}'
        "</section>"
        f'<section aria-labelledby="t-days"><h2 id="t-days">每日播放</h2>'
        f"<figure>{chart}<figcaption>{escape(summary)}</figcaption></figure>"
        f"{_days_table(o.days)}</section>"
        f'<section aria-labelledby="t-top"><h2 id="t-top">文章</h2>{articles}'
        f'<p><a href="/v1/stats?{period}&amp;format=csv">下载 CSV</a></p></section></main>'
    )
    return _page("朗读统计", body)


def _where_they_leave(stats: ArticleStats) -> str:
    reach = stats.reach
    if not stats.figures.plays or not reach:
        return "还没有人收听这篇文章。"
    half = next((i for i, r in enumerate(reach) if r < 0.5), None)
    drops = [(reach[i] - reach[i + 1], i + 1) for i in range(len(reach) - 1)]
    drop, at = max(drops, default=(0.0, 0))
    said = (
        f"半数听众在第{half + 1}句之前离开。" if half is not None else "过半的听众听到了最后一句。"
    )
    if drop > 0:
        said += f"流失最多的是第{at + 1}句之前（少了{drop * 100:.0f}%）。"
    return said


def article_page(stats: ArticleStats) -> str:
    """`/dashboard/articles/{id}`: the article's text, each sentence shaded by the share
    of plays that heard it, with the figures as charts and tables."""
    period = urlencode({"from": stats.first, "to": stats.last})
    f = stats.figures
    reach = stats.reach
    quarters = [
        (f"{q}%", round(100 * n / f.plays) if f.plays else 0)
        for q, n in zip((25, 50, 75, 100), f.quartiles, strict=True)
    ]
    quarter_summary = "，".join(f"{v}%的播放到达{q}" for q, v in quarters)
    leave = _where_they_leave(stats)
    paragraphs: dict[int, list[str]] = {}
    for i, ((paragraph, text), heard, r) in enumerate(
        zip(stats.sentences, stats.heard, reach, strict=True)
    ):
        alpha = 0.04 + 0.66 * r
        paragraphs.setdefault(paragraph, []).append(
            f'<span class="s" data-sentence="{i}" data-reach="{r:.4f}"'
            f' style="background-color: rgba(var(--heard), {alpha:.3f})"'
            f' title="第{i + 1}句：{r * 100:.0f}% 的播放听到（{heard}次）">{escape(text)}</span>'
        )
    text = "".join(f"<p>{''.join(spans)}</p>" for _, spans in sorted(paragraphs.items()))
    sentence_rows = "".join(
        f'<tr><th scope="row">{i + 1}</th><td class="text">{escape(t)}</td><td>{h}</td>'
        f"<td>{r * 100:.0f}%</td></tr>"
        for i, ((_, t), h, r) in enumerate(zip(stats.sentences, stats.heard, reach, strict=True))
    )
    voice = escape(stats.voice) + (
        f"（现由后备语音 {escape(stats.degraded)} 朗读）" if stats.degraded else ""
    )
    body = (
        f"<header><h1>{escape(stats.title or stats.article_id)}</h1>"
        f"{_range_form(f'/dashboard/articles/{stats.article_id}', stats.first, stats.last)}"
        f'</header><p><a href="/dashboard?{period}">← 全部文章</a> · 语音：{voice}</p><main>'
        f'<section aria-labelledby="t-total"><h2 id="t-total">总览</h2>{_totals(f)}</section>'
        f'<section aria-labelledby="t-quarters"><h2 id="t-quarters">完成度</h2><figure>'
        f"{bar_chart(quarters, label=quarter_summary, unit='%', width=360)}"
        f"<figcaption>{escape(quarter_summary)}</figcaption></figure></section>"
        f'<section aria-labelledby="t-reach"><h2 id="t-reach">逐句收听</h2>'
        f'<p id="leave"><strong>{escape(leave)}</strong></p>'
        f"<figure>{reach_chart(reach, label='每句的收听比例：' + leave)}</figure>"
        '<p class="legend" aria-hidden="true">没人听到 <span class="scale"></span> 都听到了</p>'
        f'<div class="article-text">{text}</div>'
        f"<table><caption>每句的收听比例</caption><thead><tr>"
        '<th scope="col">句</th><th scope="col">文字</th><th scope="col">听到的会话</th>'
        f'<th scope="col">比例</th></tr></thead><tbody>{sentence_rows}</tbody></table>'
        f"{_days_table(stats.days)}"
        f'<p><a href="/v1/articles/{stats.article_id}/stats?{period}&amp;format=csv">'
        "下载逐句 CSV</a></p></section></main>"
    )
    return _page(f"朗读统计：{stats.title or stats.article_id}", body)
