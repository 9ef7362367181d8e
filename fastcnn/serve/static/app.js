// fastcnn serve: draw on the canvas (mouse, pen or finger) or drop an image; every change is
// sent as a PNG to /api/classify and the answer (top classes, feature maps) drawn at once.
"use strict";

const canvas = document.getElementById("canvas");
const context = canvas.getContext("2d");
const dropZone = document.getElementById("drop-zone");
const message = document.getElementById("message");
const prediction = document.getElementById("prediction");
const mapsPanel = document.getElementById("maps-panel");
let maxUploadBytes = 10 * 1024 * 1024;
let drawing = false, last = null, sent = 0, shown = 0, throttle = null;

function clearCanvas() {
  context.fillStyle = "white";
  context.fillRect(0, 0, canvas.width, canvas.height);
}

function showMessage(text) {
  message.textContent = text;
  message.hidden = false;
  prediction.hidden = true;
  mapsPanel.hidden = true;
}

function percent(p) {
  return (100 * p).toFixed(p >= 0.995 || p < 0.001 ? 0 : 1) + "%";
}

function showResult(result) {
  message.hidden = true;
  document.getElementById("predicted").textContent = result.top[0].name;
  const top = document.getElementById("top");
  top.replaceChildren(...result.top.map(entry => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "class-name";
    name.textContent = entry.name;
    name.title = `class ${entry.index}`;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = (100 * entry.probability).toFixed(1) + "%";
    bar.append(fill);
    const value = document.createElement("span");
    value.className = "probability";
    value.textContent = percent(entry.probability);
    item.append(name, bar, value);
    return item;
  }));
  document.getElementById("seen").src = result.input;
  prediction.hidden = false;
  const maps = document.getElementById("maps");
  maps.replaceChildren(...result.feature_maps.map(map => {
    const figure = document.createElement("figure");
    const image = new Image();
    image.alt = `feature maps of ${map.layer}`;
    image.width = 420;  // every grid as wide, whatever its maps' size
    image.src = map.image;
    const caption = document.createElement("figcaption");
    const [channels, height, width] = map.shape;
    caption.textContent = `${map.layer}: ${channels} maps of ${height}×${width}`;
    figure.append(image, caption);
    return figure;
  }));
  mapsPanel.hidden = result.feature_maps.length === 0;
}

async function classify(body) {
  const number = ++sent;
  let answer;
  try {
    const response = await fetch("/api/classify", { method: "POST", body,
      headers: { "Content-Type": "application/octet-stream" } });
    const text = await response.text();
    try { answer = JSON.parse(text); } catch { answer = { error: `The server answered ${response.status} ${response.statusText}.` }; }
  } catch (error) {
    answer = { error: "The server cannot be reached: is `fastcnn serve` still running?" };
  }
  if (number < shown) return;  // a later request already answered
  shown = number;
  if (answer.error) showMessage(answer.error); else showResult(answer);
}

function classifyCanvas() {
  canvas.toBlob(blob => classify(blob), "image/png");
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return { x: (event.clientX - box.left) * canvas.width / box.width,
           y: (event.clientY - box.top) * canvas.height / box.height };
}

function stroke(to) {
  context.strokeStyle = "black";
  context.lineWidth = 20;
  context.lineCap = context.lineJoin = "round";
  context.beginPath();
  context.moveTo(last.x, last.y);
  context.lineTo(to.x, to.y);
  context.stroke();
  last = to;
}

canvas.addEventListener("pointerdown", event => {
  drawing = true;
  canvas.setPointerCapture(event.pointerId);
  last = point(event);
  stroke(last);
});
canvas.addEventListener("pointermove", event => {
  if (!drawing) return;
  stroke(point(event));
  // while drawing, at most five classifications a second
  if (throttle === null) throttle = setTimeout(() => { throttle = null; if (drawing) classifyCanvas(); }, 200);
});
function endStroke() {
  if (!drawing) return;
  drawing = false;
  classifyCanvas();
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function sendFile(file) {
  if (!file) return;
  if (file.size > maxUploadBytes) {
    showMessage(`The file is too large (${(file.size / 2 ** 20).toFixed(1)} MB); the limit is ` +
                `${Math.round(maxUploadBytes / 2 ** 20)} MB. Drop a smaller picture of one character.`);
    return;
  }
  createImageBitmap(file).then(bitmap => {  // show a picture the browser can decode
    clearCanvas();
    const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
    const w = bitmap.width * scale, h = bitmap.height * scale;
    context.drawImage(bitmap, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
  }).catch(() => {});
  classify(file);
}

document.getElementById("file").addEventListener("change", event => {
  sendFile(event.target.files[0]);
  event.target.value = "";
});
dropZone.addEventListener("dragover", event => { event.preventDefault(); dropZone.classList.add("dragging"); });
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", event => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  sendFile(event.dataTransfer.files[0]);
});
document.getElementById("clear").addEventListener("click", () => {
  clearCanvas();
  sent++;  // answers still on their way are for the old drawing
  shown = sent;
  message.hidden = prediction.hidden = mapsPanel.hidden = true;
});
document.getElementById("classify").addEventListener("click", classifyCanvas);

clearCanvas();
fetch("/api/info").then(response => response.json()).then(info => {
  maxUploadBytes = info.max_upload_bytes;
  document.getElementById("model-name").textContent = info.model;
  document.title = `fastcnn: ${info.model}`;
  const dataset = info.dataset ? `trained on ${info.dataset}` : "dataset unknown";
  document.getElementById("model-details").textContent =
    `${dataset} · ${info.classes.length} classes · ${info.backend} backend · ` +
    `classes: ${info.classes.join(", ")}`;
  document.body.dataset.ready = "true";
}).catch(() => showMessage("Cannot read the model's description from the server."));
