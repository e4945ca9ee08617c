// The comfort explorer: a form built from the service's OpenAPI schema (its fields, units and
// bounds are the API's, never written twice), /predict for one room and /predict/batch for the
// curve across air temperature. Plain DOM and SVG: no library, nothing from the network but the
// service itself.
"use strict";

const CLASSES = ["cool", "neutral", "warm"];
const SVG = "http://www.w3.org/2000/svg";
/** The fields shown first; the rest are in "optional context". */
const MAIN = ["ta", "tr", "rh", "vel", "met", "clo", "site"];
/** Air temperatures of the curve [°C]: 16 to 34 in steps of 0.5. */
const CURVE = Array.from({ length: 37 }, (_, i) => 16 + i * 0.5);
/** Presets: changes to the schema's example (an ordinary air-conditioned office in summer). */
const PRESETS = {
  "Summer office (air conditioned)": {},
  "Winter office (heated)": {
    ta: 21.5, tr: 21, rh: 35, vel: 0.05, clo: 1.0, t_mot_isd: 4, season: "winter",
    cooling_type: "mixed mode",
  },
  "Naturally ventilated classroom": {
    ta: 27.5, tr: 28, rh: 65, vel: 0.3, met: 1.2, clo: 0.5, t_mot_isd: 26,
    cooling_type: "naturally ventilated", building_type: "classroom",
  },
  "Warm, humid, still room": { ta: 30, tr: 31, rh: 75, vel: 0.05, clo: 0.8, t_mot_isd: 29 },
};

let schema = null; // the Observation schema: { properties, required, examples }

const $ = (id) => document.getElementById(id);
const pct = (p) => (p === null || p === undefined ? "–" : `${(100 * p).toFixed(1)} %`);

function el(tag, attrs = {}, text = "") {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text) node.textContent = text;
  return node;
}

/** A field's bounds and kind from its JSON schema (``anyOf`` with null when optional). */
function describe(name) {
  const prop = schema.properties[name];
  const typed = (prop.anyOf || [prop]).find((s) => s.type !== "null") || prop;
  return {
    name,
    required: schema.required.includes(name),
    description: prop.description || name,
    enum: typed.enum || null,
    numeric: typed.type === "number",
    min: typed.minimum,
    max: typed.maximum,
  };
}

function fieldFor(spec, value) {
  const wrap = el("div", { class: "field" });
  const label = el("label", { for: `f-${spec.name}` });
  label.append(el("b", {}, spec.name), ` ${spec.description}${spec.required ? "" : " (optional)"}`);
  let input;
  if (spec.enum) {
    input = el("select", { id: `f-${spec.name}`, name: spec.name });
    input.append(el("option", { value: "" }, "— not given —"));
    for (const option of spec.enum) input.append(el("option", { value: option }, option));
  } else {
    input = el("input", {
      id: `f-${spec.name}`, name: spec.name, type: spec.numeric ? "number" : "text",
      step: "any", inputmode: spec.numeric ? "decimal" : "text",
    });
    if (spec.min !== undefined) input.setAttribute("min", spec.min);
    if (spec.max !== undefined) input.setAttribute("max", spec.max);
  }
  if (spec.required) input.setAttribute("aria-required", "true");
  input.setAttribute("aria-describedby", `e-${spec.name}`);
  input.value = value ?? "";
  wrap.append(label, input, el("p", { id: `e-${spec.name}`, class: "error", role: "alert" }));
  return wrap;
}

function buildForm() {
  const example = (schema.examples || [{}])[0];
  for (const name of Object.keys(schema.properties)) {
    const box = MAIN.includes(name) ? $("main-fields") : $("more-fields");
    box.append(fieldFor(describe(name), example[name]));
  }
  for (const name of Object.keys(PRESETS)) $("preset").append(el("option", { value: name }, name));
  $("preset").addEventListener("change", () => applyPreset($("preset").value));
}

function applyPreset(name) {
  const values = { ...(schema.examples || [{}])[0], ...PRESETS[name] };
  for (const prop of Object.keys(schema.properties)) {
    $(`f-${prop}`).value = values[prop] ?? "";
  }
}

/** The observation the form describes: empty fields left out, numbers as numbers. */
function observation() {
  const out = {};
  for (const name of Object.keys(schema.properties)) {
    const raw = $(`f-${name}`).value.trim();
    if (raw === "") continue;
    out[name] = describe(name).numeric && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}

function clearErrors() {
  $("form-status").textContent = "";
  for (const node of document.querySelectorAll(".error")) node.textContent = "";
  for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

/** Show a 422's messages beside the fields at fault; the rest in the form's status line. */
function showErrors(detail) {
  const general = [];
  for (const problem of Array.isArray(detail) ? detail : [{ message: String(detail) }]) {
    const field = (problem.field || "").split(".").pop();
    const box = $(`e-${field}`);
    if (box) {
      box.textContent = problem.message;
      $(`f-${field}`).setAttribute("aria-invalid", "true");
    } else {
      general.push(problem.field ? `${problem.field}: ${problem.message}` : problem.message);
    }
  }
  $("form-status").textContent = general.join("; ") || "Please correct the fields marked.";
  const first = document.querySelector("[aria-invalid='true']");
  if (first) first.focus();
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    // the explorer's rooms are no occupant's: the monitors and retraining leave them out
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-Request-Kind": "explorer",
    },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  return { ok: response.ok, status: response.status, data };
}

function drawBars(probabilities) {
  const svg = $("bars");
  svg.replaceChildren(svg.querySelector("title"));
  CLASSES.forEach((name, i) => {
    const p = probabilities[name];
    const height = 110 * p;
    const x = 20 + i * 100;
    svg.append(
      el("svg:rect", { x, y: 120 - height, width: 80, height, class: `bar-${name}` }),
      el("svg:text", { x: x + 40, y: 114 - height, "text-anchor": "middle", class: "bar-label" }, pct(p)),
      el("svg:text", { x: x + 40, y: 140, "text-anchor": "middle", class: "bar-label" }, name),
    );
  });
}

function showAnswer(answer) {
  $("predicted-class").textContent = answer.predicted_class;
  $("prediction-set").textContent = `{${answer.prediction_set.join(", ")}}`;
  $("coverage").textContent = pct(answer.coverage);
  for (const name of CLASSES) {
    const node = $(`p-${name}`);
    node.textContent = pct(answer.probabilities[name]);
    node.dataset.value = answer.probabilities[name];
  }
  drawBars(answer.probabilities);
  $("dissatisfied").textContent = pct(answer.dissatisfied);
  $("ppd").textContent = answer.ppd === null ? "outside ISO's limits" : `${answer.ppd.toFixed(1)} %`;
  $("pmv").textContent = answer.pmv === null ? "outside ISO's limits" : `PMV ${answer.pmv.toFixed(2)}`;
  $("sensation-model").textContent = answer.predicted_class;
  $("acceptable").textContent = answer.unacceptable === null ? "–" : pct(1 - answer.unacceptable);
  const pref = answer.preference;
  $("preference").textContent = pref ? [pref.cooler, pref.no_change, pref.warmer].map(pct).join(" / ") : "–";
  $("notes").replaceChildren(...answer.notes.map((note) => el("li", {}, note)));
  $("model-version").textContent = answer.model_version;
  showAdaptation(answer);
  $("answer").hidden = false;
}

/** The site's adaptation beside the model's own answer, or why there is none. */
function showAdaptation(answer) {
  const site = $("f-site").value.trim();
  const adapted = answer.adaptation;
  $("adaptation").hidden = !site;
  $("adaptation-table").hidden = !adapted;
  if (!site) return;
  $("adaptation-site").textContent = site;
  if (!adapted) {
    $("adaptation-summary").textContent = "No adaptation: none of this site's occupants has voted on "
      + "this model's answers yet, or the site is switched off. The answer is the model's alone.";
    return;
  }
  $("adaptation-summary").textContent = `Adjusted by what ${adapted.votes} votes of this site's `
    + `occupants taught (up to vote ${adapted.version}).`;
  $("adapted-class").textContent = answer.predicted_class;
  $("zero-shot-class").textContent = adapted.zero_shot_class;
  for (const name of CLASSES) {
    $(`adapted-${name}`).textContent = pct(answer.probabilities[name]);
    $(`zero-shot-${name}`).textContent = pct(adapted.zero_shot[name]);
  }
}

/** Scale [a, b] onto [c, d]. */
const scale = (a, b, c, d) => (v) => c + ((v - a) * (d - c)) / (b - a);

function drawCurve(temperatures, answers) {
  const svg = $("curve");
  svg.replaceChildren(svg.querySelector("title"));
  const [left, right, top, bottom] = [48, 592, 16, 280];
  const x = scale(temperatures[0], temperatures[temperatures.length - 1], left, right);
  const y = scale(0, 1, bottom, top);
  const yPmv = scale(-3, 3, bottom, top);
  // where neutral is the model's most likely vote: shaded
  const neutral = temperatures.filter((_, i) => answers[i].predicted_class === "neutral");
  if (neutral.length) {
    const from = x(neutral[0]) - 4;
    const to = x(neutral[neutral.length - 1]) + 4;
    svg.append(el("svg:rect", { x: from, y: top, width: to - from, height: bottom - top, class: "neutral-band" }));
  }
  for (let p = 0; p <= 1.0001; p += 0.25) {
    svg.append(el("svg:line", { x1: left, x2: right, y1: y(p), y2: y(p), class: "grid" }),
      el("svg:text", { x: left - 6, y: y(p) + 4, "text-anchor": "end", class: "tick" }, `${p * 100}%`));
  }
  for (let v = -3; v <= 3; v += 1) {
    svg.append(el("svg:text", { x: right + 6, y: yPmv(v) + 4, class: "tick" }, `${v > 0 ? "+" : ""}${v}`));
  }
  for (let t = temperatures[0]; t <= temperatures[temperatures.length - 1]; t += 2) {
    svg.append(el("svg:text", { x: x(t), y: bottom + 16, "text-anchor": "middle", class: "tick" }, `${t}`));
  }
  svg.append(
    el("svg:line", { x1: left, x2: right, y1: bottom, y2: bottom, class: "axis" }),
    el("svg:text", { x: (left + right) / 2, y: bottom + 34, "text-anchor": "middle", class: "tick" },
      "operative temperature (tr = ta) [°C]"),
    el("svg:text", { x: right + 6, y: top - 4, class: "tick" }, "PMV"),
  );
  const series = [
    ["cool", (a) => y(a.probabilities.cool)],
    ["neutral", (a) => y(a.probabilities.neutral)],
    ["warm", (a) => y(a.probabilities.warm)],
    ["dissatisfied", (a) => (a.dissatisfied === null ? null : y(a.dissatisfied))],
    ["ppd", (a) => (a.ppd === null ? null : y(a.ppd / 100))],
    ["pmv", (a) => (a.pmv === null ? null : yPmv(Math.max(-3, Math.min(3, a.pmv))))],
  ];
  if (answers.some((a) => a.adaptation)) { // the model alone, beside the site's adaptation
    series.push(...CLASSES.map((name) => [`zero-shot-${name}`,
      (a) => y((a.adaptation ? a.adaptation.zero_shot : a.probabilities)[name])]));
  }
  for (const [name, at] of series) {
    const points = answers.map((a, i) => [x(temperatures[i]), at(a)]).filter(([, v]) => v !== null);
    svg.append(el("svg:polyline", {
      class: `line-${name}`, "data-series": name,
      points: points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" "),
    }));
  }
  svg.dataset.points = String(answers.length);
  const labels = {
    cool: "P(cool)", neutral: "P(neutral)", warm: "P(warm)", dissatisfied: "model: share dissatisfied",
    ppd: "ISO PPD (PMV's share dissatisfied)", pmv: "PMV (right axis)",
    "zero-shot-cool": "P(cool), model alone", "zero-shot-neutral": "P(neutral), model alone",
    "zero-shot-warm": "P(warm), model alone",
  };
  $("curve-legend").replaceChildren(...series.map(([name]) => {
    const item = el("span", { class: "legend-item" });
    item.append(el("span", { class: `swatch ${name}` }), labels[name]);
    return item;
  }));
  $("neutral-range").textContent = neutral.length
    ? `Neutral is the most likely vote from ${neutral[0]} to ${neutral[neutral.length - 1]} °C (model).`
    : "At no temperature of this range is neutral the most likely vote, by the model.";
}

async function showCurve(base) {
  const observations = CURVE.map((t) => ({ ...base, ta: t, tr: t }));
  const { ok, data } = await post("/predict/batch", { observations });
  if (!ok) return;
  $("curve-from").textContent = CURVE[0];
  $("curve-to").textContent = CURVE[CURVE.length - 1];
  drawCurve(CURVE, data.predictions);
  $("curve-section").hidden = false;
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  const body = observation();
  const { ok, status, data } = await post("/predict", body);
  if (!ok) {
    if (status === 422) showErrors(data.detail);
    else $("form-status").textContent = `The service answered ${status}: ${data.detail}`;
    return;
  }
  showAnswer(data);
  await showCurve(body);
  document.body.dataset.ready = "true";
}

async function start() {
  const api = await (await fetch("/openapi.json")).json();
  schema = api.components.schemas.Observation;
  buildForm();
  $("room").addEventListener("submit", submit);
  document.body.dataset.loaded = "true";
  const about = await (await fetch("/", { headers: { Accept: "application/json" } })).json();
  $("model-version").textContent = about.model_version || "not loaded";
}

document.addEventListener("DOMContentLoaded", start);
