// kerasml try: the page. Strokes are kept in unit coordinates (the canvas side is 1), as the iOS
// app keeps them, and sent to the server, which rasterises, prepares and reads them with kerasml's
// own code. Nothing here loads from the internet.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { card: null, strokes: [], active: null, pending: null, tab: "draw", photoReading: null };

// ---------------------------------------------------------------------------------- the server
async function call(path, options) {
  if (state.pending) state.pending.abort();            // a newer drawing replaces an older reading
  const controller = new AbortController();
  state.pending = controller;
  $("result").classList.add("busy");
  try {
    const response = await fetch(path, { ...options, signal: controller.signal });
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = { detail: `server error ${response.status}: ${text || response.statusText}` };
    }
    if (!response.ok) throw new Error(body.detail || `server error ${response.status}`);
    return body;
  } finally {
    if (state.pending === controller) {
      state.pending = null;
      $("result").classList.remove("busy");
    }
  }
}

function showError(error, headline = "Not read") {
  if (error.name === "AbortError") return;
  showReading({ kind: "error", headline, predictions: [], model_input: null });
  $("error").textContent = error.message;
  $("error").hidden = false;
}

// ------------------------------------------------------------------------------------ readings
function percent(p) {                                    // DigitKit's LabelFormat.percent
  if (!Number.isFinite(p)) return "–";
  const value = Math.min(Math.max(p, 0), 1) * 100;
  return value > 0 && value < 0.5 ? "<1%" : `${Math.round(value)}%`;
}

function showReading(reading) {
  $("error").hidden = true;
  $("headline").textContent = reading.headline;
  $("subline").textContent = reading.kind === "unsure"
    ? `The best guess is under ${percent(state.card.policy.minimum_confidence)} confidence.` : "";
  const list = $("guesses");
  const widest = Math.max(1, ...reading.predictions.map((guess) => guess.label.length));
  list.style.setProperty("--label-width", `${(Math.min(widest, 16) * 1.2 + 0.5).toFixed(1)}ch`);
  list.replaceChildren(...reading.predictions.map((guess, i) => {
    const item = document.createElement("li");
    if (i === 0 && reading.kind === "answer") item.classList.add("answer");
    item.innerHTML = '<span class="label"></span><span class="bar"><span></span></span><span class="percent"></span>';
    item.querySelector(".label").textContent = guess.label;
    item.querySelector(".bar span").style.width = `${(guess.probability * 100).toFixed(1)}%`;
    item.querySelector(".percent").textContent = percent(guess.probability);
    return item;
  }));
  $("input-figure").hidden = !reading.model_input;
  if (reading.model_input) $("model-input").src = reading.model_input;
}

function showEmpty() {
  showReading({ kind: "empty", headline: emptyHeadline(), predictions: [], model_input: null });
}

function emptyHeadline() {
  return state.tab === "draw" ? `Draw a ${state.card.noun}` : "Choose a photo or an image file";
}

// -------------------------------------------------------------------------------------- canvas
const pad = $("pad");
const ink = pad.getContext("2d");

function fitCanvas() {
  const side = pad.clientWidth;
  const scale = window.devicePixelRatio || 1;
  pad.width = pad.height = Math.round(side * scale);
  ink.setTransform(pad.width, 0, 0, pad.height, 0, 0);  // unit coordinates: the side is 1
  redraw();
}

function redraw() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, 1, 1);
  ink.strokeStyle = ink.fillStyle = "#fff";
  const width = state.card ? state.card.policy.line_width_fraction : 1 / 15;
  ink.lineWidth = width;
  ink.lineCap = ink.lineJoin = "round";
  for (const stroke of state.strokes) {
    if (stroke.length === 1) {
      ink.beginPath();
      ink.arc(stroke[0][0], stroke[0][1], width / 2, 0, 2 * Math.PI);
      ink.fill();
      continue;
    }
    ink.beginPath();
    ink.moveTo(...stroke[0]);
    for (const point of stroke.slice(1)) ink.lineTo(...point);
    ink.stroke();
  }
}

function unitPoint(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height];
}

pad.addEventListener("pointerdown", (event) => {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  state.active = event.pointerId;
  state.strokes.push([unitPoint(event)]);
  redraw();
});

pad.addEventListener("pointermove", (event) => {
  if (event.pointerId !== state.active) return;
  const stroke = state.strokes[state.strokes.length - 1];
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const each of events.length ? events : [event]) {
    const point = unitPoint(each);
    const last = stroke[stroke.length - 1];
    if (point[0] !== last[0] || point[1] !== last[1]) stroke.push(point);   // as Sketch.extendStroke
  }
  redraw();
});

function endStroke(event) {
  if (event.pointerId !== state.active) return;
  state.active = null;
  readDrawing();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

async function readDrawing() {
  if (!state.strokes.length) return showEmpty();
  try {
    showReading(await call("/api/read/strokes", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ canvas_side: 1, strokes: state.strokes }),
    }));
  } catch (error) {
    showError(error, "The drawing was not read");
  }
}

$("undo").addEventListener("click", () => {
  state.strokes.pop();
  redraw();
  readDrawing();
});

// Ctrl-Z (Cmd-Z on a Mac) undoes the last stroke, as in any drawing program.
document.addEventListener("keydown", (event) => {
  if (state.tab === "draw" && (event.ctrlKey || event.metaKey) && event.key === "z") {
    event.preventDefault();
    $("undo").click();
  }
});

$("clear").addEventListener("click", () => {
  if (state.pending) state.pending.abort();
  state.strokes = [];
  redraw();
  showEmpty();
});

// --------------------------------------------------------------------------------------- photo
async function readPhoto(blob) {
  if (!blob) return;
  const limit = state.card.limits.max_upload_bytes;
  if (blob.size > limit) {
    return showError(new Error(`the file is ${(blob.size / 1048576).toFixed(1)} MB; the limit is ${limit / 1048576} MB`));
  }
  try {
    const reading = await call("/api/read/photo", {
      method: "POST",
      headers: { "Content-Type": blob.type || "application/octet-stream" },
      body: blob,
    });
    state.photoReading = reading;
    showReading(reading);
    showSteps(reading.steps, reading.notes);
  } catch (error) {
    state.photoReading = null;
    showSteps([], []);
    showError(error, "The photo was not read");
  }
}

function showSteps(steps, notes) {
  $("steps").replaceChildren(...steps.map((step) => {
    const figure = document.createElement("figure");
    const image = document.createElement("img");
    image.src = step.image;
    image.alt = step.name;
    image.onload = () => image.classList.toggle("pixels", image.naturalWidth <= 64);
    const caption = document.createElement("figcaption");
    caption.textContent = step.name;
    figure.append(image, caption);
    return figure;
  }));
  $("notes").replaceChildren(...notes.map((note) => {
    const item = document.createElement("li");
    item.textContent = note;
    return item;
  }));
}

$("file").addEventListener("change", (event) => readPhoto(event.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  readPhoto(event.dataTransfer.files[0]);
});

// getUserMedia exists only in secure contexts (localhost counts) of browsers that have a camera API.
const video = $("video");
$("camera-start").addEventListener("click", async () => {
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    await video.play();
    video.hidden = $("camera-snap").hidden = false;
    $("camera-start").hidden = true;
  } catch (error) {
    $("camera-note").textContent = `The camera is not available: ${error.message}`;
    $("camera-note").hidden = false;
  }
});
function stopCamera() {
  if (!video.srcObject) return;
  for (const track of video.srcObject.getTracks()) track.stop();
  video.srcObject = null;
  video.hidden = $("camera-snap").hidden = true;
  $("camera-start").hidden = false;
}

$("camera-snap").addEventListener("click", () => {
  const frame = document.createElement("canvas");
  frame.width = video.videoWidth;
  frame.height = video.videoHeight;
  frame.getContext("2d").drawImage(video, 0, 0);
  frame.toBlob(readPhoto, "image/png");
});

// ------------------------------------------------------------------------------- tabs and card
// Each tab shows its own reading: the drawing's (read again) or the last photo's.
function selectTab(name) {
  if (state.pending) state.pending.abort();
  if (name !== "photo") stopCamera();
  state.tab = name;
  for (const tab of ["draw", "photo"]) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(tab).hidden = tab !== name;
  }
  if (name === "draw") {
    fitCanvas();
    readDrawing();
  } else if (state.photoReading) {
    showReading(state.photoReading);
  } else {
    showEmpty();
  }
}
$("tab-draw").addEventListener("click", () => selectTab("draw"));
$("tab-photo").addEventListener("click", () => selectTab("photo"));

function showCard(card) {
  $("model-name").textContent = card.name;
  const rows = [
    ["Description", card.description], ["Author", card.author], ["Licence", card.license],
    ["Version", card.version], ["Input", card.input],
    ["Labels", card.labels.length > 12 ? `${card.labels.length}: ${card.labels.slice(0, 12).join(", ")}, …`
                                       : card.labels.join(", ")],
    ["Test accuracy", card.test_accuracy == null ? "" : `${(card.test_accuracy * 100).toFixed(2)}%`],
    ["Dataset", card.dataset], ["Architecture", card.architecture],
    ["Framework", `${card.framework}, run by the ${card.runtime}`],
  ];
  $("card").replaceChildren(...rows.filter(([, value]) => value).flatMap(([title, value]) => {
    const term = document.createElement("dt");
    const detail = document.createElement("dd");
    term.textContent = title;
    detail.textContent = value;
    return [term, detail];
  }));
}

async function start() {
  try {
    state.card = await call("/api/model");
  } catch (error) {
    return showError(error, "The model could not be loaded");
  }
  showCard(state.card);
  if (state.card.mode === "photo") $("tab-draw").hidden = true;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    $("camera-start").disabled = true;
    $("camera-note").textContent = "This browser offers no camera here; choose a file instead.";
    $("camera-note").hidden = false;
  }
  selectTab(state.card.mode === "drawing" ? "draw" : "photo");
  window.addEventListener("resize", fitCanvas);
}

// For tests and the curious: the strokes as sent, in unit coordinates.
window.kerasmlTry = { strokes: () => JSON.parse(JSON.stringify(state.strokes)) };
start();
