"""The status board's HTML page for TV screens: large type, high contrast, Chinese or
English, live over Server-Sent Events. One self-contained page (no external files), so
a screen needs nothing but the service."""

import base64
import functools
import io
import json
from typing import Any

LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "车间看板",
        "lounge_title": "车辆维修进度",
        "plate": "车牌",
        "advisor": "服务顾问",
        "technician": "技师",
        "stage": "状态",
        "promised": "承诺交车",
        "at_risk": "有延误风险",
        "overdue": "已超时",
        "live": "实时",
        "offline": "连接中断，正在重连…",
        "empty": "暂无在修车辆",
        "parts_eta": "配件预计",
        "draft": "待确认",
        "open": "待派工",
        "in_progress": "维修中",
        "waiting_parts": "等待配件",
        "qc": "质检中",
        "washing": "洗车中",
        "ready": "已完工",
        "settled": "待交车",
        "page": "页",
        "withdrawn": "此屏幕的访问权限已被撤销",
    },
    "en": {
        "title": "Workshop board",
        "lounge_title": "Your car's progress",
        "plate": "Plate",
        "advisor": "Advisor",
        "technician": "Technician",
        "stage": "Stage",
        "promised": "Promised",
        "at_risk": "At risk",
        "overdue": "Overdue",
        "live": "Live",
        "offline": "Connection lost, reconnecting…",
        "empty": "No cars in the workshop",
        "parts_eta": "Parts ETA",
        "draft": "Awaiting approval",
        "open": "Waiting to start",
        "in_progress": "In repair",
        "waiting_parts": "Waiting for parts",
        "qc": "Quality check",
        "washing": "Washing",
        "ready": "Finished",
        "settled": "Ready for pickup",
        "page": "page",
        "withdrawn": "This screen's access was withdrawn",
    },
}

_STYLE = """
:root { color-scheme: dark; }
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; background: #000; color: #fff;
  font-family: "BoardSans", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei",
  sans-serif; }
body { display: flex; flex-direction: column; font-size: 2.6vw; line-height: 1.25; }
header { display: flex; align-items: baseline; gap: 2vw; padding: 1vw 2vw;
  background: #111; border-bottom: 0.3vw solid #ffd400; }
header h1 { margin: 0; font-size: 3.4vw; color: #ffd400; flex: 1; }
#clock { font-size: 3vw; font-variant-numeric: tabular-nums; }
#status { font-size: 1.8vw; padding: 0.2vw 1vw; border-radius: 0.5vw; background: #0a7a2f; }
#status.offline { background: #b00020; }
main { flex: 1; overflow: hidden; padding: 0 1vw; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; }
th { text-align: left; font-size: 1.9vw; color: #bbb; font-weight: normal;
  padding: 0.6vw 1vw; border-bottom: 0.15vw solid #444; }
td { padding: 0.7vw 1vw; border-bottom: 0.1vw solid #333; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; font-weight: 600; }
td.plate { font-size: 3vw; letter-spacing: 0.1vw; }
td.time { font-variant-numeric: tabular-nums; }
tr.at_risk td { background: #5c0010; }
tr.overdue td { background: #8a0015; }
tr .flag { display: inline-block; margin-left: 0.8vw; padding: 0 0.6vw; font-size: 1.7vw;
  background: #ff3b3b; color: #fff; border-radius: 0.4vw; vertical-align: middle; }
.stage { display: inline-block; padding: 0 0.8vw; border-radius: 0.4vw; color: #000; }
.s-draft, .s-open { background: #9ecbff; }
.s-in_progress { background: #ffd400; }
.s-waiting_parts { background: #ff9f1a; }
.s-qc, .s-washing { background: #c6a2ff; }
.s-ready, .s-settled { background: #37d67a; }
#empty { text-align: center; color: #888; margin-top: 10vh; }
footer { padding: 0.4vw 2vw; font-size: 1.5vw; color: #888; text-align: right; }
#withdrawn { position: fixed; inset: 0; display: flex; align-items: center;
  justify-content: center; text-align: center; padding: 5vw; background: #000;
  color: #ffd400; font-size: 4.5vw; font-weight: 600; z-index: 10; }
#withdrawn[hidden] { display: none; }
"""

_SCRIPT = r"""
(() => {
  const cfg = JSON.parse(document.getElementById("board-data").textContent);
  const L = cfg.labels;
  const cards = new Map(cfg.cards.map((c) => [c.id, c]));
  const rows = document.getElementById("rows");
  const statusEl = document.getElementById("status");
  const pageEl = document.getElementById("page");
  let page = 0;
  const fmt = (iso, withDay) => {
    if (!iso) return "";
    const d = new Date(iso);
    const opts = { timeZone: cfg.timeZone, hour: "2-digit", minute: "2-digit", hour12: false };
    if (withDay) { opts.month = "2-digit"; opts.day = "2-digit"; }
    return new Intl.DateTimeFormat(cfg.lang, opts).format(d);
  };
  const dayOf = (d) => new Intl.DateTimeFormat("en-CA", { timeZone: cfg.timeZone }).format(d);
  const cell = (tr, cls, text) => {
    const td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  };
  function render() {
    const now = new Date();
    const list = [...cards.values()].sort((a, b) =>
      (a.promised_at || "9999").localeCompare(b.promised_at || "9999") || a.id.localeCompare(b.id));
    const first = rows.firstElementChild;
    const rowHeight = first ? first.offsetHeight : window.innerWidth * 0.055;
    const room = document.querySelector("main").clientHeight - rowHeight;
    const perPage = Math.max(1, Math.floor(room / rowHeight));
    const pages = Math.max(1, Math.ceil(list.length / perPage));
    page = page % pages;
    const shown = list.slice(page * perPage, (page + 1) * perPage);
    rows.replaceChildren();
    for (const c of shown) {
      const tr = document.createElement("tr");
      const finished = c.status === "ready" || c.status === "settled";
      const overdue = !finished && c.promised_at && new Date(c.promised_at) < now;
      tr.dataset.order = c.id;
      tr.dataset.status = c.status;
      if (c.at_risk) tr.classList.add("at_risk");
      if (overdue) tr.classList.add("overdue");
      cell(tr, "plate", c.plate || "");
      if (!cfg.lounge) {
        cell(tr, "advisor", c.advisor || "");
        cell(tr, "technician", (c.technicians || []).join(", "));
      }
      const stage = cell(tr, "stage-cell", "");
      const badge = document.createElement("span");
      badge.className = "stage s-" + c.status;
      badge.textContent = L[c.status] || c.status;
      stage.appendChild(badge);
      if (c.status === "waiting_parts" && c.parts_eta_at) {
        const eta = " " + L.parts_eta + " " + fmt(c.parts_eta_at, false);
        stage.appendChild(document.createTextNode(eta));
      }
      const when = c.promised_at ? new Date(c.promised_at) : null;
      const t = cell(tr, "time", when ? fmt(c.promised_at, dayOf(when) !== dayOf(now)) : "");
      if (!cfg.lounge && (c.at_risk || overdue)) {
        const flag = document.createElement("span");
        flag.className = "flag";
        flag.textContent = overdue ? L.overdue : L.at_risk;
        t.appendChild(flag);
      }
      rows.appendChild(tr);
    }
    document.getElementById("empty").hidden = list.length > 0;
    pageEl.textContent = pages > 1 ? `${page + 1} / ${pages} ${L.page}` : "";
  }
  function tick() {
    document.getElementById("clock").textContent = fmt(new Date().toISOString(), false);
  }
  function loadFont() {
    const screenToken = new URLSearchParams(location.search).get("access_token");
    const query = screenToken ? "?access_token=" + encodeURIComponent(screenToken) : "";
    const url = "/board/font.ttf" + query;
    new FontFace("BoardSans", `url(${url})`).load()
      .then((face) => { document.fonts.add(face); render(); })
      .catch(() => {});
  }
  let withdrawn = false;
  function withdraw() {
    // Revoked: show no cars any more, say why, and stay (no reconnect, no reload).
    withdrawn = true;
    cards.clear();
    render();
    document.getElementById("withdrawn").hidden = false;
  }
  function connect() {
    const params = new URLSearchParams(location.search);
    params.delete("lang");
    params.set("after", String(cfg.lastId));
    const es = new EventSource(cfg.eventsPath + "?" + params.toString());
    window.boardStream = es;
    es.onopen = () => {
      window.boardConnections = (window.boardConnections || 0) + 1;
      statusEl.textContent = L.live;
      statusEl.classList.remove("offline");
    };
    es.onerror = () => {
      if (withdrawn) return;
      statusEl.textContent = L.offline;
      statusEl.classList.add("offline");
      // A refused stream (expired token, server gone for long) is not retried by the
      // browser: reload the page after a while and start over.
      if (es.readyState === EventSource.CLOSED) setTimeout(() => location.reload(), 30000);
    };
    es.addEventListener("snapshot", (e) => {
      cards.clear();
      for (const c of JSON.parse(e.data).cards) cards.set(c.id, c);
      render();
    });
    es.addEventListener("card", (e) => {
      const d = JSON.parse(e.data);
      if (d.card) cards.set(d.id, d.card); else cards.delete(d.id);
      render();
    });
    es.addEventListener("revoked", () => {
      es.close();  // else the browser reconnects
      withdraw();
    });
    es.addEventListener("ping", () => {
      statusEl.textContent = L.live;
      statusEl.classList.remove("offline");
    });
  }
  loadFont();
  render();
  tick();
  setInterval(tick, 1000);
  setInterval(() => { page += 1; render(); }, 10000);
  window.addEventListener("resize", render);
  connect();
})();
"""


def render_page(
    *,
    cards: list[dict[str, Any]],
    last_id: int,
    lang: str,
    lounge: bool,
    branch: str,
    time_zone: str,
    events_path: str,
) -> str:
    labels = LABELS.get(lang, LABELS["zh-CN"])
    title = labels["lounge_title"] if lounge else labels["title"]
    data = {
        "cards": cards,
        "lastId": last_id,
        "labels": labels,
        "lang": lang,
        "lounge": lounge,
        "timeZone": time_zone,
        "eventsPath": events_path,
    }
    # "<" escaped so no text in a card can close the script element.
    payload = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    heads = [labels["plate"]]
    if not lounge:
        heads += [labels["advisor"], labels["technician"]]
    heads += [labels["stage"], labels["promised"]]
    head_html = "".join(f"<th>{h}</th>" for h in heads)
    branch_text = "".join(ch for ch in branch if ch.isalnum() or ch in "-_")
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {branch_text}</title>
<style>{_STYLE}</style>
</head>
<body>
<header><h1>{title}</h1><span id="status">{labels["live"]}</span><span id="clock"></span></header>
<main>
<table><thead><tr>{head_html}</tr></thead><tbody id="rows"></tbody></table>
<div id="empty" hidden>{labels["empty"]}</div>
</main>
<footer><span id="page"></span></footer>
<div id="withdrawn" hidden>{labels["withdrawn"]}</div>
<script type="application/json" id="board-data">{payload}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""


@functools.cache
def _withdrawn_font() -> str:
    """The board's face cut down to the glyphs of the withdrawn message (a few KB, as a
    data URL): a revoked screen may not load /board/font.ttf, and a TV without Chinese
    fonts would show empty boxes."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    from shared import pdf

    font = TTFont(io.BytesIO(pdf.font_ttf()))
    options = subset.Options()
    options.drop_tables += ["FFTM"]  # FontForge's timestamps: nothing to show
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(labels["withdrawn"] for labels in LABELS.values()))
    subsetter.subset(font)
    buffer = io.BytesIO()
    font.save(buffer)
    return "data:font/ttf;base64," + base64.b64encode(buffer.getvalue()).decode()


def render_withdrawn(lang: str) -> str:
    """What a revoked screen shows when it loads its page again (after a reload)."""
    labels = LABELS.get(lang, LABELS["zh-CN"])
    face = f'@font-face {{ font-family: "BoardSans"; src: url({_withdrawn_font()}); }}'
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{labels["withdrawn"]}</title>
<style>{face}{_STYLE}</style>
</head>
<body>
<div id="withdrawn">{labels["withdrawn"]}</div>
</body>
</html>
"""
