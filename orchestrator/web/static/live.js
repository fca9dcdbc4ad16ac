// Live updates for a running run's pages: server-sent events from /runs/RUN/stream.
// "changed": fetch the page's server-rendered live fragment again (throttled) and swap it in;
// "delta": append streamed text to the task's box (textContent only: model output is untrusted);
// "reset": that task's call finished (its text is in the transcript now); "end": last refresh.
(function () {
  "use strict";
  const body = document.body;
  const url = body.dataset.stream;
  if (!url || !window.EventSource) return;
  const live = document.getElementById("live");
  const panel = document.getElementById("stream");
  const badge = document.getElementById("live-state");
  const src = body.dataset.liveSrc;
  let timer = null;
  let inFlight = false;
  let again = false;

  async function refresh() {
    timer = null;
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      const response = await fetch(src, { headers: { "Accept": "text/html" } });
      if (response.ok && live) {
        live.innerHTML = await response.text();  // our own escaped template output
        body.dataset.refreshed = String(Number(body.dataset.refreshed || 0) + 1);
      }
    } catch (err) {
      // the server went away; the next event (or none) decides
    } finally {
      inFlight = false;
      if (again) { again = false; schedule(); }
    }
  }

  function schedule() {
    if (timer === null) timer = setTimeout(refresh, 250);
  }

  function box(taskId, label) {
    let section = panel.querySelector('section[data-task="' + CSS.escape(taskId) + '"]');
    if (!section) {
      section = document.createElement("section");
      section.className = "live-task";
      section.dataset.task = taskId;
      const title = document.createElement("h4");
      const link = document.createElement("a");
      link.href = location.pathname.split("/").slice(0, 3).join("/") + "/tasks/" + encodeURIComponent(taskId);
      link.textContent = (label ? label + " · " : "") + taskId;
      title.appendChild(link);
      const pre = document.createElement("pre");
      section.appendChild(title);
      section.appendChild(pre);
      panel.appendChild(section);
    }
    return section;
  }

  const events = new EventSource(url);
  events.addEventListener("open", function () { if (badge) badge.hidden = false; });
  events.addEventListener("changed", schedule);
  events.addEventListener("delta", function (e) {
    const d = JSON.parse(e.data);
    if (!panel) return;
    panel.hidden = false;
    const empty = document.getElementById("stream-empty");
    if (empty) empty.hidden = true;
    const section = box(d.task_id, d.label);
    section.classList.remove("done");
    section.querySelector("pre").appendChild(document.createTextNode(d.text));
  });
  events.addEventListener("reset", function (e) {
    const d = JSON.parse(e.data);
    const section = panel && panel.querySelector('section[data-task="' + CSS.escape(d.task_id) + '"]');
    if (section) section.classList.add("done");
    schedule();
  });
  events.addEventListener("end", function () {
    events.close();
    if (badge) { badge.textContent = "finished"; }
    body.dataset.ended = "1";
    refresh();
  });
})();
