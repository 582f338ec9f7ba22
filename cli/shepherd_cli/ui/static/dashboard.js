/* Shepherd dashboard: renders the pages' JSON, draws the charts (uPlot), and refreshes the endpoint
   page while a rollout runs. Read-only: every request is a GET. */
"use strict";
const Shepherd = (() => {
  const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const el = (id) => document.getElementById(id);
  const pct = (weight, total) => (weight == null || !total ? "-" : `${(100 * weight / total).toFixed(1)}%`);
  // Units everywhere: latency in ms (ModelLatency is in microseconds: the server converts), rates in %.
  const ms = (value) => (value == null ? "-" : `${Number(value).toFixed(value >= 100 ? 0 : 1)} ms`);
  const percent = (value) => (value == null ? "-" : `${Number(value).toFixed(Math.abs(value) >= 10 ? 1 : 2)}%`);
  const hhmm = (t) => new Date(t * 1000).toISOString().slice(11, 16);
  const terminal = new Set(["COMPLETED", "FAILED", "ROLLED_BACK"]);
  const palette = ["#3b6ea5", "#c2410c", "#15803d", "#7c3aed", "#b45309"];
  const charts = {};

  // Time axes in UTC "HH:MM" at least 70 px apart, and a y axis wide enough for its unit: no label
  // runs into its neighbour.
  const timeAxis = {space: 70, values: (u, ticks) => ticks.map(hhmm)};
  const yAxis = (label, format) => ({label, size: 70, values: (u, ticks) => ticks.map(format)});

  function chart(key, target, options, data) {
    if (charts[key]) charts[key].destroy();
    target.innerHTML = "";
    const width = Math.max(320, Math.min(960, target.clientWidth || 800));
    charts[key] = new uPlot({width, height: 240, ...options}, data, target);
    target.dataset.points = String(data[0].length);
    return charts[key];
  }

  /* one line per variant over the same minutes (the endpoint's metrics, its instances) */
  function variantChart(key, target, title, label, format, times, rows, field, stepped, floor) {
    const withData = rows.filter((row) => row[field].some((v) => v != null));
    if (!times.length || !withData.length) {
      target.innerHTML = `<p class="empty">${esc(title)}: no data yet.</p>`;
      target.dataset.points = "0";
      return;
    }
    const names = [...new Set(withData.map((row) => row.variant_name))];  // a variant's lines share its colour
    chart(key, target, {
      title,
      // from 0 up to a little above the highest value (at least `floor`): a flat 0% is a line at the bottom
      scales: {x: {time: true}, y: {range: (u, min, max) => [0, Math.max(floor || 1, (max || 0) * 1.15)]}},
      axes: [timeAxis, yAxis(label, format)],
      series: [{value: (u, t) => (t == null ? "-" : hhmm(t))},
               ...withData.map((row) => ({label: row.label || row.variant_name, stroke: palette[names.indexOf(row.variant_name) % palette.length], width: 2,
                 value: (u, v) => format(v), spanGaps: false, ...(row.count === "desired" ? {dash: [6, 4]} : {}),
                 ...(stepped ? {paths: uPlot.paths.stepped({align: 1})} : {})}))],
    }, [times, ...withData.map((row) => row[field])]);
    // each line's latest value as the legend says it (units included), for readers and tests alike
    target.dataset.latest = withData.map((row) => `${row.label || row.variant_name}: ${format([...row[field]].reverse().find((v) => v != null))}`).join("; ");
  }

  /* --- models: a manifest metric across versions, the versions serving now marked --- */
  function metricChart(key, section, versions) {
    const select = section && section.querySelector(".metric-choice");
    if (!select) return;
    const draw = () => {
      const rows = versions.filter((v) => select.value in v.metrics).sort((a, b) => a.version - b.version);
      const xs = rows.map((v) => v.version);
      const ys = rows.map((v) => v.metrics[select.value]);
      const serving = rows.map((v) => (v.live || v.serving ? v.metrics[select.value] : null));
      chart(key, section.querySelector(".metric-chart"), {
        title: `${select.value} by version`,
        scales: {x: {time: false}},
        axes: [{label: "version", space: 40, values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? `v${t}` : ""))}, yAxis(select.value, (t) => String(Number(t.toPrecision(4))))],
        series: [{label: "version", value: (u, v) => (v == null ? "-" : `v${v}`)}, {label: select.value, stroke: "#3b6ea5", points: {size: 7}},
                 {label: "serving now", stroke: "transparent", points: {size: 13, stroke: "#1a7f37", fill: "#1a7f37"}}],
      }, [xs, ys, serving]);
    };
    select.addEventListener("change", draw);
    draw();
  }

  function modelsPage(data) {
    for (const model of data.models) {
      metricChart(`metric-${model.model_name}`, document.querySelector(`section[data-model="${CSS.escape(model.model_name)}"]`), model.versions);
    }
  }

  function modelPage(data) {
    metricChart(`metric-${data.model_name}`, document.querySelector("section.model-chart"), data.chart);
  }

  /* --- the candidate's traffic over time, with markers --- */
  function timeline(key, target, list, timelineData) {
    list.innerHTML = "";
    if (!timelineData || !timelineData.points.length) {
      target.innerHTML = "<p>No traffic change recorded yet.</p>";
      target.dataset.points = "0";
      return;
    }
    const xs = timelineData.points.map((p) => p.t);
    const ys = timelineData.points.map((p) => p.percent);
    const markerAt = new Map();
    for (const marker of timelineData.markers) {
      const t = Date.parse(marker.at) / 1000;
      markerAt.set(t, marker);
      list.insertAdjacentHTML("beforeend", `<li class="marker ${esc(marker.kind)}"><time>${esc(marker.at.slice(11, 19))}</time> ${esc(marker.label)}</li>`);
    }
    const allX = [...new Set([...xs, ...markerAt.keys()])].sort((a, b) => a - b);
    const valueAt = (t) => { let v = null; for (let i = 0; i < xs.length && xs[i] <= t; i++) v = ys[i]; return v; };
    const line = allX.map((t) => (xs.includes(t) ? ys[xs.indexOf(t)] : valueAt(t)));
    const marks = allX.map((t) => (markerAt.has(t) ? (valueAt(t) ?? 0) : null));
    chart(key, target, {
      scales: {y: {range: [0, 100]}},
      axes: [timeAxis, yAxis("candidate traffic", (t) => `${t}%`)],
      series: [{value: (u, t) => (t == null ? "-" : hhmm(t))},
               {label: "candidate traffic", stroke: "#3b6ea5", width: 2, paths: uPlot.paths.stepped({align: 1}), points: {size: 5}, value: (u, v) => (v == null ? "-" : `${v}%`)},
               {label: "events", stroke: "transparent", points: {size: 11, stroke: "#c2410c", fill: "#fed7aa"}, value: (u, v) => (v == null ? "-" : `${v}%`)}],
    }, [allX, line, marks]);
  }

  /* --- endpoint: variants, rollout progress, timeline, incident; refreshed while a rollout runs --- */
  function renderEndpoint(data) {
    const endpoint = data.endpoint;
    const rollout = data.rollout;
    const body = el("variants").querySelector("tbody");
    body.innerHTML = "";
    const variants = endpoint ? endpoint.variants : [];
    const totalCurrent = variants.reduce((sum, v) => sum + (v.current_weight || 0), 0);
    const totalDesired = variants.reduce((sum, v) => sum + (v.desired_weight || 0), 0);
    for (const v of variants) {
      const role = v.role;  // shepherd.rollouts.variant_roles, as `shepherd status` shows it
      body.insertAdjacentHTML("beforeend",
        `<tr class="variant" data-variant="${esc(v.variant_name)}" data-role="${esc(role)}"><td>${esc(v.variant_name)}</td><td>${v.version ? "v" + esc(v.version) : "-"}</td>` +
        `<td>${esc(role)}</td><td>${pct(v.current_weight, totalCurrent)}</td><td>${pct(v.desired_weight, totalDesired)}</td><td>${esc(v.instance_count ?? "-")}</td></tr>`);
    }
    el("endpoint-status").textContent = endpoint ? `SageMaker: ${endpoint.status}${endpoint.failure_reason ? " (" + endpoint.failure_reason + ")" : ""}` : "The endpoint does not exist in SageMaker.";
    if (rollout) {
      const plan = rollout.plan.map((s, i) => `<li class="${i + 1 === rollout.step ? "current" : ""}">${s.percent}% · bake ${s.bake_seconds}s</li>`).join("");
      el("rollout").innerHTML =
        `<p><a href="/endpoints/${esc(data.endpoint_name)}/rollouts/${esc(rollout.rollout_id)}">${esc(rollout.rollout_id)}</a>: ${esc(rollout.model_name)} v${esc(rollout.version)}` +
        `${rollout.previous_version ? " replacing v" + esc(rollout.previous_version) : ""} · phase <span class="badge ${esc(rollout.phase.toLowerCase())}" id="phase">${esc(rollout.phase)}</span>` +
        ` · step ${esc(rollout.step)}/${esc(rollout.steps)} · candidate at ${esc(rollout.current_percent ?? 0)}% of target ${esc(rollout.target_percent)}%</p>` +
        bakeHtml(rollout, data.now) +
        `<ol class="plan">${plan}</ol>${rollout.failure_reason ? `<p class="error">${esc(rollout.failure_reason)}</p>` : ""}`;
    } else {
      el("rollout").innerHTML = "<p>No rollout on this endpoint.</p>";
    }
    el("alarms").innerHTML = data.alarms && data.alarms.length
      ? "<h3>Gating alarms</h3><ul>" + data.alarms.map((a) => `<li class="alarm state-${esc(a.state.toLowerCase())}">${esc(a.alarm_name)}: <strong>${esc(a.state)}</strong></li>`).join("") + "</ul>"
      : "";
    const serving = data.serving;
    el("serving").innerHTML = serving
      ? `Serving now: <a href="/models/${esc(serving.model_name)}/versions/${esc(serving.version)}"><strong>${esc(serving.model_name)} v${esc(serving.version)}</strong></a> (${esc(serving.percent)}% of the traffic)`
      : "No variant takes traffic now.";
    el("verdict").innerHTML = verdictHtml(data.endpoint_name, data.verdict);
    timeline("timeline", el("timeline-chart"), el("markers"), data.timeline);
    renderCharts(data.charts);
    el("incidents").innerHTML = incidentsHtml(data.endpoint_name, data.incidents || []);
    el("rollouts").innerHTML = (data.rollouts || []).map((r) =>
      `<li><a href="/endpoints/${esc(data.endpoint_name)}/rollouts/${esc(r.rollout_id)}">${esc(r.rollout_id)}</a> v${esc(r.version)}${r.previous_version ? " replacing v" + esc(r.previous_version) : ""} <span class="badge ${esc(r.phase.toLowerCase())}">${esc(r.phase)}</span></li>`).join("");
  }

  /* requests, error rate and latency per variant over the last hour; instances over the rollouts */
  function renderCharts(charts) {
    if (!charts) return;
    const m = charts.metrics || {minutes: [], variants: []};
    el("metrics-note").textContent = m.unavailable ? `CloudWatch metrics unavailable: ${m.unavailable}` : "";
    variantChart("requests", el("requests-chart"), "Requests per minute", "requests / min", (v) => (v == null ? "-" : Number(v).toFixed(0)), m.minutes, m.variants, "requests");
    variantChart("errors", el("errors-chart"), "5xx error rate", "5xx errors (%)", percent, m.minutes, m.variants, "error_rate_percent", false, 1);
    variantChart("latency", el("latency-chart"), "Latency p99", "p99 latency (ms)", ms, m.minutes, m.variants, "latency_p99_ms");
    const inst = charts.instances || {times: [], variants: []};
    variantChart("instances", el("instances-chart"), "Instances (as configured; now as SageMaker reports)", "instances",
      (v) => (v == null ? "-" : Number.isInteger(v) ? String(v) : ""), inst.times, inst.variants, "instances", true, 2);
    capacityChart(charts.capacity);
  }

  /* current (solid) and desired (dashed) instances per variant, as SageMaker reported them (instance_counts.py) */
  function capacityChart(capacity) {
    const c = capacity || {times: [], variants: []};
    el("capacity-note").textContent = c.unavailable ? `Recorded instance counts unavailable: ${c.unavailable}` : "";
    variantChart("capacity", el("capacity-chart"), "Instances per variant (current solid, desired dashed)", "instances",
      (v) => (v == null ? "-" : Number.isInteger(v) ? String(v) : ""), c.times, c.variants, "instances", true, 2);
  }

  /* the judge's verdict on the current step, per metric, in words and units */
  function verdictHtml(endpointName, verdict) {
    if (!verdict) return "<p>No canary verdict (no step judged yet, or no judge on this rollout).</p>";
    const link = `/endpoints/${esc(endpointName)}/rollouts/${esc(verdict.rollout_id)}`;
    return `<p>${verdict.final ? "Last verdict" : "Current verdict"} at ${esc(verdict.percent)}% (step ${esc(verdict.step)}): ` +
      `<span class="badge ${esc(String(verdict.verdict).toLowerCase())}" id="verdict-outcome">${esc(verdict.verdict)}</span>` +
      ` after ${esc(verdict.minutes)} min${verdict.decision ? " → " + esc(verdict.decision) : ""} · <a href="${link}">canary report</a></p>` +
      (verdict.waiting ? `<p class="waiting">Waiting: ${esc(verdict.waiting)}</p>` : "") +
      metricsTable(verdict.metrics || []);
  }

  function metricsTable(metrics) {
    return `<table class="verdict"><thead><tr><th>metric</th><th>verdict</th><th>baseline</th><th>candidate</th><th>effect</th><th>interval</th><th>limit</th><th>samples</th></tr></thead><tbody>` +
      metrics.map((m) => { const t = m.shown; return `<tr data-metric="${esc(m.name)}"><td>${esc(m.name)}</td><td><span class="badge ${esc(String(m.verdict).toLowerCase())}">${esc(m.verdict)}</span></td>` +
        `<td title="${esc(t.compared)}">${esc(t.baseline)}</td><td title="${esc(t.compared)}">${esc(t.candidate)}</td><td>${esc(t.effect)}</td><td>${esc(t.interval)}</td><td>${esc(t.limit)}</td>` +
        `<td>${esc(m.samples)}${t.decided_in ? " · " + esc(t.decided_in) : ""}</td></tr>`; }).join("") + "</tbody></table>";
  }

  function incidentsHtml(endpointName, incidents) {
    if (!incidents.length) return "<p>No incident on this endpoint.</p>";
    return `<ol class="incidents">` + incidents.map((i) =>
      `<li class="incident"><a href="/endpoints/${esc(endpointName)}/rollouts/${esc(i.rollout_id)}">${esc(i.flipped_at.slice(0, 19).replace("T", " "))}</a>: ` +
      `v${esc(i.version)} rolled back to v${esc(i.restored_version)} by the ${esc(i.cause)} <span class="kv">${esc(i.trigger)}</span>` +
      `${i.seconds_to_flip != null ? ", traffic back " + esc(i.seconds_to_flip.toFixed(1)) + " s " + esc(i.since) : ""}<br><small>${esc(i.state_reason)}</small></li>`).join("") + "</ol>";
  }

  function bakeHtml(rollout, now) {
    if (terminal.has(rollout.phase) || !rollout.step_started_at || !rollout.bake_seconds || !now) return "";
    const left = Math.max(0, Date.parse(rollout.step_started_at) / 1000 + rollout.bake_seconds - Date.parse(now) / 1000);
    return `<p id="bake">Bake started ${esc(rollout.step_started_at.slice(11, 19))}: ${Math.round(left)} s of ${esc(rollout.bake_seconds)} s left</p>`;
  }

  function incidentHtml(incident) {
    if (!incident) return "<p>None.</p>";
    return `<dl class="incident"><dt>trigger</dt><dd>${esc(incident.cause)}: ${esc(incident.trigger)}</dd>` +
      `<dt>reason</dt><dd>${esc(incident.state_reason)}</dd><dt>restored</dt><dd>v${esc(incident.restored_version)} (from v${esc(incident.version)})</dd>` +
      `<dt>flipped at</dt><dd>${esc(incident.flipped_at)}${incident.seconds_to_flip != null ? " · " + esc(incident.seconds_to_flip.toFixed(1)) + " s " + esc(incident.since) : ""}</dd></dl>`;
  }

  function endpointPage(initial, refreshMs) {
    let updates = 0;
    const state = el("refresh-state");
    const show = (data) => {
      renderEndpoint(data);
      document.body.dataset.updates = String(updates++);
      const running = data.rollout && !terminal.has(data.rollout.phase);
      state.textContent = running ? `live · refreshing every ${refreshMs / 1000}s` : "";
      return running;
    };
    let running = show(initial);
    const poll = async () => {
      try {
        const response = await fetch(`/api/endpoints/${encodeURIComponent(initial.endpoint_name)}`);
        if (response.ok) running = show(await response.json());
        else state.textContent = `not refreshed: ${(await response.json()).error || response.status}`;
      } catch (error) { state.textContent = `refresh failed: ${error}`; }
      setTimeout(poll, running ? refreshMs : refreshMs * 5);
    };
    setTimeout(poll, refreshMs);
  }

  /* --- canary report: per metric, baseline vs candidate per minute, and the verdict --- */
  function rolloutPage(data) {
    timeline("timeline", el("timeline-chart"), el("markers"), data.timeline);
    el("incident").innerHTML = incidentHtml(data.incident);
    const analysis = el("analysis");
    if (!data.analysis || !data.analysis.length) {
      analysis.innerHTML = "<p>No canary analysis was recorded for this rollout.</p>";
      return;
    }
    data.analysis.forEach((step, s) => {
      const metrics = step.metrics || [];
      const thresholds = Object.entries(step.thresholds_ms || {});
      // Words from the server (analysis_view.evidence_text), the same as `shepherd status` prints.
      const shown = (m) => m.shown || {baseline: fmt(m.baseline), candidate: fmt(m.candidate), effect: fmt(m.relative_effect),
        interval: m.interval ? m.interval.map(fmt).join(" … ") : "-", limit: "-", compared: "", decided_in: ""};
      analysis.insertAdjacentHTML("beforeend",
        `<h3>Step ${esc(step.step ?? s + 1)}${step.percent != null ? " (" + esc(step.percent) + "%)" : ""}: <span class="badge ${esc(String(step.verdict).toLowerCase())}">${esc(step.verdict)}</span></h3>` +
        (step.waiting ? `<p class="waiting">Waiting: ${esc(step.waiting)}</p>` : "") +
        (thresholds.length ? `<p>Latency thresholds (the baseline's, from before the step): ${thresholds.map(([name, ms]) => `${esc(name)} ${esc(Number(ms).toFixed(1))} ms`).join(", ")}. ` +
          "Latency is judged as the share of requests slower than the threshold; the candidate's threshold is higher by its limit.</p>" : "") +
        `<table><thead><tr><th>metric</th><th>verdict</th><th>samples</th><th>baseline</th><th>candidate</th><th>effect</th><th>interval</th><th>limit</th><th>rule</th></tr></thead><tbody>` +
        metrics.map((m) => { const t = shown(m); return `<tr><td>${esc(m.name)}</td><td><span class="badge ${esc(String(m.verdict).toLowerCase())}">${esc(m.verdict)}</span></td><td>${esc(m.samples)}</td>` +
          `<td title="${esc(t.compared)}">${esc(t.baseline)}</td><td title="${esc(t.compared)}">${esc(t.candidate)}</td><td>${esc(t.effect)}</td><td>${esc(t.interval)}</td><td>${esc(t.limit)}</td>` +
          `<td>${esc(m.rule)}${t.decided_in ? " (" + esc(t.decided_in) + ")" : ""}</td></tr>`; }).join("") +
        "</tbody></table>");
      metrics.filter((m) => m.series && m.series.baseline && m.series.candidate).forEach((m, i) => {
        const box = document.createElement("div");
        box.className = "chart";
        analysis.appendChild(box);
        const n = Math.min(m.series.baseline.length, m.series.candidate.length);
        const unit = m.series.label && m.series.label.endsWith("(ms)") ? ms : (v) => (v == null ? "-" : fmt(v));
        chart(`analysis-${s}-${i}`, box, {
          title: `${m.name}: baseline vs candidate per minute`,
          scales: {x: {time: false}},
          axes: [{label: "minute judged", space: 40}, yAxis(m.series.label || m.name, unit)],
          series: [{label: "minute"}, {label: "baseline", stroke: "#6b7280", value: (u, v) => unit(v)}, {label: "candidate", stroke: "#c2410c", value: (u, v) => unit(v)}],
        }, [[...Array(n).keys()].map((k) => k + 1), m.series.baseline.slice(0, n), m.series.candidate.slice(0, n)]);
      });
    });
  }

  const fmt = (value) => (value == null ? "-" : typeof value === "number" ? (Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3)) : esc(value));

  return {modelsPage, modelPage, endpointPage, rolloutPage};
})();
